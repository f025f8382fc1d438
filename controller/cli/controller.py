"""`dcilab controller --topology FILE`: the os-ken controller, standalone, with its gRPC API
and Prometheus metrics, serving with or without switches connected."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from ..addresses import address_text, host_port
from ..argtypes import AT_LEAST_ONE, SECONDS, checked, file_name, file_path
from ..fabric import FabricError, load_fabric
from ..resources import bundled_topologies, shipped_hint, topology_arg
from ..te.elephants import PIN_HOLD_S
from ..te.placement import DEFAULT_MAX_STRETCH, Policy
from .progress import optical_model
from .stopping import StopSignal, on_stop_signals

log = logging.getLogger("dcilab.controller")


_ANY_HOST = ("", "0.0.0.0", "::", "*")


def _shared_ports(args) -> list[str]:
    """Listeners given one port: the second would fail to bind, or (OpenFlow's, bound late
    by os-ken) start while switches reach the other service and never connect."""
    named = [(option, getattr(args, option.strip("-"), None))
             for option in ("--openflow", "--grpc", "--metrics")]
    named = [(option, a) for option, a in named if a is not None and a[1] != 0]
    return [f"{first} {address_text(a[0] or '*', a[1])} and {second} "
            f"{address_text(b[0] or '*', b[1])} are one listening address: give each its own port"
            for i, (first, a) in enumerate(named) for second, b in named[i + 1:]
            if a[1] == b[1] and (a[0] in _ANY_HOST or b[0] in _ANY_HOST
                                 or _addresses(a[0]) & _addresses(b[0]))]


def _addresses(host: str) -> set[str]:
    """The addresses a listen host stands for (`localhost` is 127.0.0.1 and ::1)."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return {host}
    return found | {a.removeprefix("::ffff:") for a in found}


def _loopback_only(host: str) -> bool:
    """Whether a listen host is reachable from this machine alone."""
    addresses = _addresses(host)
    try:
        return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                                       for a in addresses)
    except ValueError:
        return False


# Shorter than this, a bearer token can be guessed (128 bits as hex is 32 characters).
MIN_TOKEN_CHARS = 16


def token_warnings(path: Path, token: str) -> list[str]:
    """What makes a token file weak: a short token, or a file others may read (a hostile
    tester's 5-character token in a mode 644 file started without a word)."""
    said = []
    if len(token) < MIN_TOKEN_CHARS:
        said.append(f"token file {path}: its token has {len(token)} characters, under "
                    f"{MIN_TOKEN_CHARS}: it can be guessed (`openssl rand -hex 32` makes one)")
    try:
        mode = path.stat().st_mode
    except OSError:
        return said
    if mode & 0o077:
        said.append(f"token file {path}: mode {mode & 0o777:o} lets other users read the "
                    f"token (chmod 600)")
    return said


def exposure_warnings(grpc_host: str, openflow_host: str, tls: bool, token: bool
                      ) -> list[str]:
    """What a start beyond this machine leaves open (a security reviewer's: a bind to
    0.0.0.0 with a token and no TLS said nothing, and the token crossed the network in
    clear)."""
    said = []
    if not _loopback_only(grpc_host):
        if not tls:
            said.append(f"the gRPC API listens on {grpc_host}, beyond this machine, without "
                        f"TLS: requests, answers" + (" and the token" if token else "")
                        + " cross the network in clear (--tls-cert, --tls-key)")
        if not token:
            said.append(f"the gRPC API listens on {grpc_host}, beyond this machine, without "
                        f"--token-file: anyone who reaches it may reserve and release")
    if not _loopback_only(openflow_host):
        said.append(f"OpenFlow listens on {openflow_host}, beyond this machine: OpenFlow "
                    f"has no authentication here, and whatever reaches the port may connect "
                    f"as a switch of the fabric (the first connection of a datapath id is "
                    f"kept): keep it on a management network")
    return said


def cpu_list(text: str) -> set[int]:
    """'0,2-3' -> {0, 2, 3}, checked against the machine's CPU count (whether the
    process may use them is known only when it pins itself)."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            low, high = int(first), int(last if dash else first)    # "0-" is no range
            if high < low:
                raise ValueError
            cpus.update(range(low, high + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CPUs like 1 or 0,2-3 (a range low to "
                                         f"high), got {text!r}") from None
    count = os.cpu_count() or 1
    if not cpus or not cpus <= set(range(count)):
        raise argparse.ArgumentTypeError(
            f"CPUs {text!r}: this machine has CPUs 0-{count - 1}")
    return cpus


def register(sub) -> None:
    from ..api.defaults import (DEFAULT_MAX_LIVE, DEFAULT_READS_PER_S, DEFAULT_WATCH_STREAMS,
                                DEFAULT_WORKERS)
    from ..store.location import default_state_path
    p = sub.add_parser("controller", help="run the SDN controller for a fabric file",
                       description="Run the os-ken controller for a fabric file. It knows every "
                                   "switch, port and host from the file, checks what connects, "
                                   "programs latency-shortest forwarding, admits path "
                                   "reservations over gRPC and exports Prometheus metrics. It "
                                   "serves with no switch connected.")
    p.add_argument("--topology", required=True, metavar="FILE", type=topology_arg,
                   help=f"fabric file (YAML), or the name of one shipped with dcilab "
                        f"({', '.join(bundled_topologies())})")
    p.add_argument("--openflow", type=host_port, default=("127.0.0.1", 6653),
                   metavar="HOST:PORT", help="OpenFlow listen address (default 127.0.0.1:6653)")
    p.add_argument("--grpc", type=host_port, default=("127.0.0.1", 50051), metavar="HOST:PORT",
                   help="gRPC API listen address (default 127.0.0.1:50051)")
    p.add_argument("--metrics", type=host_port, default=("127.0.0.1", 9108), metavar="HOST:PORT",
                   help="Prometheus /metrics listen address (default 127.0.0.1:9108)")
    p.add_argument("--state", type=file_path, default=None, metavar="PATH",
                   help=f"reservation database, SQLite, one per fabric (default "
                        f"{default_state_path('<fabric name>')}). One controller at a time "
                        f"holds it; it records its fabric")
    other = p.add_mutually_exclusive_group()
    other.add_argument("--state-migrate", action="store_true",
                       help="the --state file was written for another fabric: keep its "
                            "reservations for this one (each is checked against it; start "
                            "is refused if one does not fit)")
    other.add_argument("--state-discard", action="store_true",
                       help="the --state file was written for another fabric: drop its "
                            "reservations and start afresh; of this fabric: end those that no "
                            "longer fit it (an edited fabric file), RELEASED with why")
    p.add_argument("--state-repath", action="store_true",
                   help="reservations whose saved path this fabric no longer has (a "
                        "wavelength removed, a site grown: an edited fabric file) are placed "
                        "again, as admission would place them, keeping their ids; those no "
                        "path has room for still stop the start (or, with --state-discard, "
                        "end)")
    p.add_argument("--history-days", type=float, default=30.0, metavar="D",
                   help="keep ended reservations (for `dcilab reservations --all`) this many "
                        "days (default 30; 0: none)")
    p.add_argument("--max-reservations", type=int, default=DEFAULT_MAX_LIVE, metavar="N",
                   help=f"refuse new reservations while N are live (default "
                        f"{DEFAULT_MAX_LIVE}: a client looping on ReservePath cannot fill "
                        f"the state file, nor make a restart slow)")
    p.add_argument("--reservable-fraction", type=float, default=0.9, metavar="F",
                   help="share of each link's capacity that reservations may take (default 0.9)")
    p.add_argument("--poll-interval", type=float, default=1.0, metavar="S",
                   help="seconds between port statistics polls (default 1)")
    p.add_argument("--gather", type=float, default=3.0, metavar="S",
                   help="at start, program the switches together once all have connected, "
                        "or S seconds after the first did (default 3; 0: each as it "
                        "connects). Switches still running a previous controller's rules "
                        "then disagree about a link that changed meanwhile for the "
                        "milliseconds between their commits, not the seconds between "
                        "their connections")
    add_steering_arguments(p)
    p.add_argument("--no-protection", action="store_true",
                   help="install no protection in the switches (no watched buckets, no "
                        "fast-failover detours): only the controller reacts to a failure. The "
                        "baseline `dcilab bench --faults` compares with")
    p.add_argument("--tls-cert", type=file_path, metavar="PEM",
                   help="serve gRPC over TLS with this certificate (PEM)")
    p.add_argument("--tls-key", type=file_path, metavar="PEM",
                   help="the certificate's private key (PEM)")
    p.add_argument("--tls-client-ca", type=file_path, metavar="PEM",
                   help="require client certificates signed by this CA (mutual TLS)")
    p.add_argument("--token-file", type=file_path, metavar="FILE",
                   help="require `authorization: Bearer <token>` on mutating gRPC calls")
    p.add_argument("--grpc-workers", type=int, default=DEFAULT_WORKERS, metavar="N",
                   help=f"threads serving gRPC calls (default {DEFAULT_WORKERS}); calls "
                        f"wait for their commit on these, so more let one fsync cover more")
    p.add_argument("--watch-streams", type=int, default=DEFAULT_WATCH_STREAMS, metavar="N",
                   help=f"watch streams (WatchLinkLoad, WatchReservations) open at once, half "
                        f"of them per client address (default {DEFAULT_WATCH_STREAMS}); each "
                        f"holds a thread of its own")
    p.add_argument("--reads-per-second", type=float, default=DEFAULT_READS_PER_S, metavar="R",
                   help=f"read calls served per second, in total (default "
                        f"{DEFAULT_READS_PER_S:g}; a page of 100 reservations counts 2, "
                        f"GetReservation a tenth); beyond, RESOURCE_EXHAUSTED with the "
                        f"seconds to wait")
    p.add_argument("--reads-per-second-per-client", type=float, default=DEFAULT_READS_PER_S,
                   metavar="R", help=f"the same per client address (default "
                                     f"{DEFAULT_READS_PER_S:g})")
    p.add_argument("--cpu", type=cpu_list, default=None, metavar="LIST",
                   help="pin the controller to these CPUs, e.g. 1 or 0,2-3 (as taskset -c). "
                        "Python runs one thread at a time, and handing that turn between "
                        "cores costs more than the work: on one core of two the API serves "
                        "far more calls (see `dcilab bench --api`)")
    p.add_argument("--gnmi", type=host_port, default=None, metavar="HOST:PORT",
                   help="subscribe to the transceivers' gNMI server there (the emulation's, "
                        "or a device's) and export their GSNR, pre-FEC BER and mode changes; "
                        "a mode they run (both ends) sets the wavelength's capacity "
                        "as metrics; reconnects until it answers")
    p.add_argument("--gnmi-tls-ca", metavar="PEM", type=file_name,
                   help="with --gnmi: reach it over TLS, trusting the CA in this file (a "
                        "device's agent; the emulation's takes plain gRPC on 127.0.0.1)")
    p.add_argument("--gnmi-tls-cert", metavar="PEM", type=file_name,
                   help="with --gnmi-tls-ca: our certificate, for a device that asks for one")
    p.add_argument("--gnmi-tls-key", metavar="PEM", type=file_name, help="the key of --gnmi-tls-cert")
    p.add_argument("--gnmi-username", metavar="NAME",
                   help="with --gnmi-tls-ca: gNMI's username metadata on every call")
    p.add_argument("--gnmi-password-file", metavar="FILE", type=file_name,
                   help="with --gnmi-username: the password, read from this file (one line)")
    add_adaptation_arguments(p)
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="default info")
    p.set_defaults(run=run)


def gnmi_security_problem(args) -> str | None:
    """What of the gNMI security options does not hold together (None: all does)."""
    if (args.gnmi_tls_ca or args.gnmi_username) and not args.gnmi:
        return "--gnmi-tls-ca and --gnmi-username need --gnmi"
    if bool(args.gnmi_tls_cert) != bool(args.gnmi_tls_key) or (
            args.gnmi_tls_cert and not args.gnmi_tls_ca):
        return "--gnmi-tls-cert and --gnmi-tls-key go together, and need --gnmi-tls-ca"
    if bool(args.gnmi_username) != bool(args.gnmi_password_file):
        return "--gnmi-username and --gnmi-password-file go together"
    if args.gnmi_username and not args.gnmi_tls_ca:
        return ("--gnmi-username needs --gnmi-tls-ca: the password would cross the network "
                "in clear")
    return None


def read_gnmi_security(args):
    """The gNMI client's TLS material and login, read and checked now (ServerError or
    OSError naming the file), or None without --gnmi-tls-ca."""
    if not args.gnmi_tls_ca:
        return None
    from ..api.tls import ServerError, client_tls_problem, read_pem, read_small_file
    from ..gnmi import GnmiSecurity
    ca = read_pem(args.gnmi_tls_ca, "gNMI TLS CA")
    cert = key = None
    if args.gnmi_tls_cert:
        cert, key = (read_pem(args.gnmi_tls_cert, "gNMI TLS certificate"),
                     read_pem(args.gnmi_tls_key, "gNMI TLS key"))
    problem = client_tls_problem(
        args.gnmi_tls_ca, args.gnmi_tls_cert, args.gnmi_tls_key,
        f"gNMI TLS CA {args.gnmi_tls_ca} is not a PEM certificate",
        f"gNMI TLS certificate {args.gnmi_tls_cert} and key {args.gnmi_tls_key} are not a "
        f"usable PEM certificate chain and its private key")
    if problem:
        raise ServerError(problem)
    password = None
    if args.gnmi_password_file:
        try:
            password = read_small_file(args.gnmi_password_file, "gNMI password file",
                                       4096).decode().rstrip("\r\n")
        except UnicodeDecodeError:
            raise ServerError(f"gNMI password file {args.gnmi_password_file} is not UTF-8 "
                              f"text") from None
        if not password:
            raise ServerError(f"gNMI password file {args.gnmi_password_file} is empty")
    return GnmiSecurity(ca=ca, cert=cert, key=key, username=args.gnmi_username,
                        password=password)


def add_adaptation_arguments(p) -> None:
    """The rate adaptation options (shared with `dcilab demo` and `lab`)."""
    from ..core.adaptation import (DEFAULT_DRAIN_S, DEFAULT_HOLD_S, DEFAULT_HYSTERESIS_DB,
                                   DEFAULT_MISMATCH_S, DEFAULT_THRESHOLD_DB)
    p.add_argument("--adapt", action="store_true",
                   help="with --gnmi: rate adaptation. A wavelength whose margin (reported "
                        "OSNR above its mode's required OSNR) falls below --margin-threshold-db, "
                        "or that went dark in its mode with light still arriving, is drained, "
                        "then moved to the highest mode that keeps the margin, instead of "
                        "failing; it moves back up once a higher mode's margin has held (see "
                        "README, Rate adaptation)")
    p.add_argument("--margin-threshold-db", type=float, default=DEFAULT_THRESHOLD_DB, metavar="DB",
                   help=f"step down below this margin (default {DEFAULT_THRESHOLD_DB:g} dB)")
    p.add_argument("--hysteresis-db", type=float, default=DEFAULT_HYSTERESIS_DB, metavar="DB",
                   help=f"step up only with this much more margin than the threshold "
                        f"(default {DEFAULT_HYSTERESIS_DB:g} dB)")
    p.add_argument("--hold-s", type=float, default=DEFAULT_HOLD_S, metavar="S",
                   help=f"... held this long without a dip (default {DEFAULT_HOLD_S:g} s)")
    p.add_argument("--drain-s", type=float, default=DEFAULT_DRAIN_S, metavar="S",
                   help=f"seconds between draining a wavelength and changing its mode "
                        f"(default {DEFAULT_DRAIN_S:g})")
    p.add_argument("--mismatch-s", type=float, default=DEFAULT_MISMATCH_S, metavar="S",
                   help=f"with --gnmi: a wavelength whose two transceivers run different "
                        f"modes (one end set by hand) is dark; after this long the "
                        f"controller sets both alike (--adapt) or says so once "
                        f"(default {DEFAULT_MISMATCH_S:g} s)")


def adaptation_problem(args) -> str | None:
    """Rate adaptation options given without --adapt would be ignored: said instead."""
    from ..core.adaptation import (DEFAULT_DRAIN_S, DEFAULT_HOLD_S, DEFAULT_HYSTERESIS_DB,
                                   DEFAULT_THRESHOLD_DB)
    given = [flag for flag, value, default in (
        ("--margin-threshold-db", args.margin_threshold_db, DEFAULT_THRESHOLD_DB),
        ("--hysteresis-db", args.hysteresis_db, DEFAULT_HYSTERESIS_DB),
        ("--hold-s", args.hold_s, DEFAULT_HOLD_S), ("--drain-s", args.drain_s, DEFAULT_DRAIN_S))
        if value != default]
    if given and not args.adapt:
        return f"{', '.join(given)} set{'s' if len(given) == 1 else ''} rate adaptation, " \
               f"which only --adapt turns on"
    from ..core.adaptation import Policy
    problems = Policy(args.margin_threshold_db, args.hysteresis_db, args.hold_s,
                      args.drain_s, mismatch_s=args.mismatch_s).problems()
    # every one at once (the first alone left the rest to later tries: a re-tester's)
    return f"rate adaptation: {'; '.join(problems)}" if problems else None


def adaptation_options(args) -> list[str]:
    """The rate adaptation options of parsed `args`, as arguments for `dcilab controller`."""
    # The wait for ends that disagree applies without --adapt too (the warning's).
    mismatch = ["--mismatch-s", str(args.mismatch_s)]
    if not args.adapt:
        return mismatch
    return ["--adapt", "--margin-threshold-db", str(args.margin_threshold_db),
            "--hysteresis-db", str(args.hysteresis_db), "--hold-s", str(args.hold_s),
            "--drain-s", str(args.drain_s), *mismatch]


DEFAULT_ELEPHANT_FRACTION, DEFAULT_ELEPHANT_POLLS = 0.1, 2


def add_steering_arguments(p) -> None:
    """The elephant steering options (shared with `dcilab demo`)."""
    p.add_argument("--policy", choices=[p.value for p in Policy], default=Policy.LOADAWARE.value,
                   help="where elephant flows go: ecmp (static 5-tuple hash over equal-cost "
                        "paths and wavelengths), shortest (one path, one wavelength per site "
                        "pair), loadaware (each elephant pinned where utilization is lowest; "
                        "default)")
    p.add_argument("--elephant-fraction", default=DEFAULT_ELEPHANT_FRACTION,
                   type=checked(float, lambda v: 0 < v <= 1, "a number", "must be in (0, 1]"),
                   metavar="F", help="a flow is an elephant at this share of its wavelength's "
                                     f"rate (default {DEFAULT_ELEPHANT_FRACTION:g})")
    p.add_argument("--elephant-polls", type=AT_LEAST_ONE, default=DEFAULT_ELEPHANT_POLLS,
                   metavar="N",
                   help=f"... for this many consecutive polls (default "
                        f"{DEFAULT_ELEPHANT_POLLS})")
    p.add_argument("--max-stretch", default=DEFAULT_MAX_STRETCH, metavar="X",
                   type=checked(float, lambda v: 1 <= v <= 100, "a number",
                                "must be in [1, 100]"),
                   help="loadaware considers paths up to X times the shortest latency "
                        f"(default {DEFAULT_MAX_STRETCH:g})")
    p.add_argument("--pin-hold", type=SECONDS, default=PIN_HOLD_S, metavar="S",
                   help="periodic elephants come back: loadaware keeps an idle elephant's "
                        "pin (and its room) this many seconds, longer than a training step, "
                        "so a returning flow takes its wavelength from the first packet "
                        "(default 0: off, an ended elephant is unpinned at once; "
                        "`dcilab train` holds them 3 steps)")


def steering_options(args) -> list[str]:
    """The steering options of parsed `args`, as arguments for `dcilab controller`."""
    return ["--policy", args.policy, "--elephant-fraction", str(args.elephant_fraction),
            "--elephant-polls", str(args.elephant_polls), "--max-stretch", str(args.max_stretch),
            "--pin-hold", str(args.pin_hold)]


def _check_free(what: str, host: str, port: int) -> str | None:
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return (f"dcilab controller: cannot listen for {what} on "
                    f"{address_text(host, port)}: {exc.strerror}")
    return None


def run(args) -> int:
    state_dir = args.state.parent if args.state is not None else None
    for bad, text in ((not 0 < args.reservable_fraction <= 1, "--reservable-fraction must be in (0, 1]"),
                      (not 0 <= args.gather <= 600, "--gather must be in [0, 600] s"),
                      (not 0 < args.poll_interval <= 3600,
                       "--poll-interval must be in (0, 3600] s"),
                      (not 1 <= args.grpc_workers <= 1024,
                       "--grpc-workers must be between 1 and 1024"),
                      (not 1 <= args.watch_streams <= 256,
                       "--watch-streams must be between 1 and 256"),
                      # a call at least every 100 s: slower, a refusal's retry-after would
                      # be a number of hundreds of digits
                      (not 0.01 <= args.reads_per_second <= 1e6
                       or not 0.01 <= args.reads_per_second_per_client <= 1e6,
                       "--reads-per-second and --reads-per-second-per-client must be in "
                       "[0.01, 1000000]"),
                      (not 0 <= args.history_days <= 36500,
                       "--history-days must be between 0 and 36500"),
                      (not 1 <= args.max_reservations <= 10_000_000,
                       "--max-reservations must be between 1 and 10000000"),
                      (args.adapt and not args.gnmi, "--adapt needs --gnmi (the transceivers "
                                                     "are read and set over gNMI)"),
                      (gnmi_security_problem(args) is not None, gnmi_security_problem(args)),
                      (adaptation_problem(args) is not None, adaptation_problem(args)),
                      (bool(args.tls_cert) != bool(args.tls_key)
                       or bool(args.tls_client_ca and not args.tls_cert),
                       "--tls-cert and --tls-key go together, and --tls-client-ca needs them"),
                      # a typo must not create directories (the default path's are made)
                      (state_dir is not None and not state_dir.is_dir(),
                       f"--state: {state_dir} is not a directory" if state_dir is not None
                       and state_dir.exists() else f"--state: directory {state_dir} does "
                       "not exist"),
                      *((True, clash) for clash in _shared_ports(args))):
        if bad:
            print(f"dcilab controller: {text}", file=sys.stderr)
            return 2
    from ..core.adaptation import Policy as AdaptationPolicy
    adaptation_policy = AdaptationPolicy(args.margin_threshold_db, args.hysteresis_db,
                                         args.hold_s, args.drain_s, mismatch_s=args.mismatch_s)
    try:
        fabric = load_fabric(args.topology, optical_model("controller"))
    except FabricError as exc:
        print(f"{exc}{shipped_hint(args.topology)}", file=sys.stderr)
        return 2
    for what, addr in (("OpenFlow", args.openflow), ("gRPC", args.grpc),
                       ("metrics", args.metrics)):
        problem = _check_free(what, *addr)
        if problem:                 # the operator must give another address: as bad input
            print(problem, file=sys.stderr)
            return 2
    # The serving parts load only once the options hold: a refusal answers at once.
    from ..api.server import TlsConfig, create_server
    from ..api.tls import ServerError, read_token_file
    from ..api.servicers import ReadBudget
    from ..app.runner import start_openflow
    from ..app.service import ControllerService
    from ..core import FabricController
    from ..metrics import Metrics, start_metrics_server
    from ..store.sqlite import (DISCARD, MIGRATE, REFUSE, ReservationStore, StoreError,
                                default_state_path)
    try:
        gnmi_security = read_gnmi_security(args)
        tls = (TlsConfig.from_files(args.tls_cert, args.tls_key, args.tls_client_ca)
               if args.tls_cert else None)
        token = read_token_file(args.token_file) if args.token_file else None
    except (ServerError, OSError, ValueError) as exc:
        print(f"dcilab controller: {exc}", file=sys.stderr)
        return 2
    state_path = args.state or default_state_path(fabric.name)
    other = MIGRATE if args.state_migrate else DISCARD if args.state_discard else REFUSE
    # A state file that stops the start exits 2, whatever the cause (damaged, not ours,
    # held, full, read-only): the operator must act on it before a retry can work.
    try:
        store = ReservationStore(state_path, fabric=fabric.name, other_fabric=other)
    except StoreError as exc:
        print(f"dcilab controller: {exc}", file=sys.stderr)
        return 2

    if args.cpu:
        try:
            os.sched_setaffinity(0, args.cpu)   # before any thread starts: all inherit it
        except OSError as exc:
            print(f"dcilab controller: cannot run on CPUs {sorted(args.cpu)}: {exc.strerror}",
                  file=sys.stderr)
            return 1
    stop = threading.Event()
    signalled = StopSignal()
    on_stop_signals(signalled)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        # not if ignored from the start (`cmd &` in a script): Ctrl-C of the foreground
        # job, a lab beside this controller, would stop it (a CLI auditor's)
        signal.signal(signal.SIGINT, signalled)
    metrics = Metrics()
    core = FabricController(fabric, args.reservable_fraction, policy=args.policy,
                            elephant_fraction=args.elephant_fraction,
                            elephant_polls=args.elephant_polls, max_stretch=args.max_stretch,
                            pin_hold_s=args.pin_hold, gather_s=args.gather,
                            protection=not args.no_protection)
    try:
        service = ControllerService(core, store=store, observer=metrics,
                                    history_s=args.history_days * 86400,
                                    drop_unfit=other == DISCARD,
                                    repath_unfit=args.state_repath,
                                    max_live=args.max_reservations)
    except StoreError as exc:
        store.close()
        print(f"dcilab controller: {exc}", file=sys.stderr)
        return 2
    if store.previous_fabric and other == MIGRATE:     # said once its records fit
        log.warning("state file %s: kept the reservations of fabric %r for fabric %r",
                    state_path, store.previous_fabric, fabric.name)
    elif store.discarded:
        log.warning("state file %s: dropped its %d reservation records of fabric %r",
                    state_path, store.discarded, store.previous_fabric)
    log.info("fabric %s: %d switches, %d hosts, %d wavelengths; policy %s; reservations in %s",
             fabric.name, len(fabric.switches), len(fabric.hosts),
             sum(1 for _ in fabric.wavelengths()), args.policy, state_path)
    if args.gnmi:
        from ..gnmi import TransceiverClient
        from ..metrics.optical import OpticalCollector
        optical = TransceiverClient(address_text(*args.gnmi), security=gnmi_security).start()
        optical_collector = OpticalCollector(optical, fabric)
        metrics.registry.register(optical_collector)
        service.reported_margins = optical_collector.margins      # `links` shows them too
        log.info("gNMI: subscribing to transceivers at %s", address_text(*args.gnmi))
        if args.adapt:
            from ..app.adaptation import RateAdaptation
            RateAdaptation(service, optical, adaptation_policy).start()
            log.info("rate adaptation on: below %.1f dB of margin a wavelength changes mode",
                     args.margin_threshold_db)
            single = sorted({l.channel.module for l in fabric.wavelengths() if l.channel
                             and len(fabric.catalog.module(l.channel.module).modes) < 2})
            if single:        # a re-tester's degraded 400ZR line flapped, adaptation silent
                log.warning("rate adaptation cannot change the mode of wavelengths of %s: "
                            "the module has one mode; a failing margin there is for BFD "
                            "and restoration", ", ".join(single))
        else:       # a mode set by someone else still changes what a wavelength carries
            # (rate adaptation follows those too, on wavelengths it is not changing)
            from ..app.adaptation import ModeFollower
            ModeFollower(service, optical, mismatch_s=args.mismatch_s).start()
    for warning in exposure_warnings(args.grpc[0], args.openflow[0], tls is not None,
                                     token is not None) + (
            token_warnings(args.token_file, token) if token is not None else []):
        log.warning("%s", warning)
    start_metrics_server(service, *args.metrics, registry=metrics.registry)
    server, grpc_port = create_server(service, address_text(*args.grpc), tls=tls,
                                      token=token, max_workers=args.grpc_workers,
                                      max_watch_streams=args.watch_streams,
                                      read_budget=ReadBudget(args.reads_per_second_per_client,
                                                             args.reads_per_second))
    log.info("gRPC API listening on %s%s", address_text(args.grpc[0], grpc_port),
             " (TLS)" if tls else "")
    start_openflow(service, *args.openflow, poll_interval_s=args.poll_interval, stop_event=stop)
    # The fabric model, the apps and the restored reservations live as long as the
    # process: move them out of the collector's sight, or each full collection walks them
    # all (a ~90 ms stall of every call, measured on the 512-host bench fabric).
    gc.collect()
    gc.freeze()
    # A thread wanting the GIL waits up to this long for the one holding it (5 ms by
    # default): a reservation waits behind a /metrics render or a listing for far less.
    sys.setswitchinterval(0.0005)
    signalled.wait(stop)
    log.info("stopping")
    server.stop(grace=2).wait(3)
    with service.lock:
        service.close()
    log.info("stopped: the state file %s is closed, every change in it",
             getattr(service.store, "path", "(none)"))
    logging.shutdown()
    # os-ken's native hub threads cannot be stopped from outside; state is on disk.
    os._exit(0)
