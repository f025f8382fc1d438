"""`dcilab reserve | release | reservations | links | elephants`: talk to a running
controller over gRPC.

Every failure is one line on stderr and exit status 1: a refusal carries the server's
status and message, an unreachable server says where it was looked for. A token or TLS
file that cannot be used is bad input: exit status 2. With --json, results and errors
are one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
import time
from datetime import datetime, timezone

# A client of the API: what it needs of the wire, not the controller's code, so that a
# call loads in a fifth of a second, not 0.9 s of CPU (an outside tester's `dcilab
# switches` polled while a controller restarted starved Open vSwitch's BFD on a 2-core lab).
from ..addresses import host_port
from ..api.client import (DEFAULT_SERVER, ApiError, Client, Unreachable, as_dict,
                          state_name)
from ..api.defaults import MAX_PAGE_SIZE
from ..api.tls import (ServerError, certificate_dates_problem, client_tls_problem, read_pem,
                       read_token_file)
from .failure import USAGE, json_failure
from ..api.v1 import fabric_pb2 as fpb
from ..api.v1 import path_pb2 as ppb
from ..argtypes import checked, file_name, file_path
from ..emulation.cleanup import Manifest, live_owner
from .stopping import Terminated


def _names(enum, prefix: str) -> tuple[str, ...]:
    """A wire enum's values by name, lower case, without its prefix and UNSPECIFIED
    (the API's conversion checks that they are the controller's)."""
    return tuple(name.removeprefix(prefix).lower() for name in enum.keys()
                 if not name.endswith("_UNSPECIFIED"))


STATES = _names(ppb.ReservationState, "RESERVATION_STATE_")
KINDS = _names(fpb.LinkKind, "LINK_KIND_")           # argparse shows these in its choices
PROTECTIONS = tuple(p.upper() for p in _names(ppb.Protection, "PROTECTION_"))


class _UsageError(Exception):
    pass


# -- the parsers ------------------------------------------------------------------------

def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument("--server", default=None, metavar="HOST:PORT", type=server_address,
                   help=f"the controller's gRPC address (default: that of the dcilab emulation "
                        f"running on this machine, a `demo`, `lab` or `train`, else "
                        f"{DEFAULT_SERVER})")
    g.add_argument("--json", action="store_true", help="print one JSON object")
    g.add_argument("--token-file", metavar="FILE", type=file_path,
                   help="file holding the bearer token the server wants for changes")
    g.add_argument("--tls", action="store_true",
                   help="use TLS, trusting the system's CAs (implied by --tls-ca)")
    g.add_argument("--tls-ca", metavar="PEM", type=file_name,
                   help="CA certificate to trust the server by")
    g.add_argument("--tls-cert", metavar="PEM", type=file_name, help="client certificate (mutual TLS)")
    g.add_argument("--tls-key", metavar="PEM", type=file_name, help="client private key (mutual TLS)")
    g.add_argument("--timeout", type=_timeout, default=10.0, metavar="S",
                   help="give up on a call (each page of a listing is one) after S "
                        "seconds, waits for the server's read budget included (default 10)")
    return p


# Target schemes gRPC takes before an address (unix: ones are passed on as they are).
GRPC_SCHEMES = frozenset({"dns", "ipv4", "ipv6", "vsock", "xds", "google-c2p"})


def server_address(text: str) -> str:
    """HOST:PORT (IPv6 as [::1]:PORT) or a gRPC unix: target; a port out of range would
    be taken modulo 65536 by gRPC, an empty host fill the screen with its logs, and a
    scheme or a lone bracket (`http://...`, `[::1`) be read as a host that was never
    reached, "it may have been booked" (a hostile tester's)."""
    if text.startswith(("unix:", "unix-abstract:")):
        return text
    host, _, port = text.rpartition(":")
    if host.lower() in GRPC_SCHEMES:        # gRPC reads "dns:47001" as a target, not a host
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r} ({host}: is a "
                                         f"gRPC target scheme)")
    if not _digits(port) or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port from 1 to 65535, "
                                         f"got {text!r}")
    host_port(text)
    return text


_timeout = checked(float, lambda v: 0 < v <= 86_400, "a number of seconds",
                   "must be seconds over 0, at most 86400")
# What the server streams at (ListLinks' watch refuses other intervals; elephants are
# polled by the client at the same bounds, so one client cannot spend the read budget).
_interval = checked(float, lambda v: 0.1 <= v <= 3600, "a number of seconds",
                    "must be seconds from 0.1 to 3600")


# What the wire carries (a protobuf Duration, an int32): beyond, the request cannot be
# sent at all, so the server has no say; within, the server's limits and messages apply.
MAX_WIRE_SECONDS = 315_576_000_000
INT32 = (-(1 << 31), (1 << 31) - 1)
_seconds = checked(float, lambda v: 0 <= v <= MAX_WIRE_SECONDS, "a number of seconds",
                   f"must be a number of seconds from 0 to {MAX_WIRE_SECONDS}")
_int32 = checked(int, lambda v: INT32[0] <= v <= INT32[1], "a whole number",
                 f"must be from {INT32[0]} to {INT32[1]}")
_page_size = checked(int, lambda v: 0 <= v <= MAX_PAGE_SIZE, "a whole number",
                     f"must be from 0 (the server's default) to {MAX_PAGE_SIZE}")


def register(sub) -> None:
    common = _common()
    p = sub.add_parser("reserve", parents=[common], help="reserve bandwidth between two hosts",
                       description="Reserve bandwidth on one path from SRC to DST. Refused "
                                   "(exit 1) when no path has room; the message names the "
                                   "bottleneck link or wavelength.")
    p.add_argument("src", metavar="SRC", help="source host, e.g. dc1-h1")
    p.add_argument("dst", metavar="DST", help="destination host, e.g. dc2-h1")
    # Not validated here: the server's message for a bad value is the one to show.
    p.add_argument("--gbps", type=float, required=True, metavar="N", help="bandwidth in Gb/s")
    p.add_argument("--max-latency-ms", type=float, metavar="X",
                   help="refuse paths with more latency than this")
    p.add_argument("--duration", type=_seconds, default=0.0, metavar="S",
                   help="expire after S seconds (default, or 0: until released)")
    p.add_argument("--request-id", default="", metavar="ID",
                   help="idempotency key: retrying with the same ID books nothing twice "
                        "(default: a new one, named if the call is cut short)")
    p.add_argument("--priority", type=_int32, default=0, metavar="P",
                   help="after a failure, reservations are restored by protection class "
                        "(PROTECTED and RESTORABLE before NONE), then highest priority first, "
                        "then oldest; default 0")
    p.add_argument("--protocol", metavar="P",
                   help="reserve only this IP protocol of the pair's traffic (tcp, udp or a "
                        "number); matched, pinned and metered on its own")
    p.add_argument("--dport", metavar="LO[-HI]",
                   help="with --protocol tcp or udp: only these destination ports")
    p.add_argument("--dscp", metavar="N",
                   help="reserve only the pair's traffic marked with this DSCP value (0-63)")
    p.add_argument("--protection", choices=PROTECTIONS,
                   type=str.upper, default="",
                   help="NONE: restored after RESTORABLE ones; RESTORABLE (default): moved "
                        "to a path with room on failure; PROTECTED: with a reserved standby "
                        "path sharing no line system or SRLG, taken by the switch itself")
    p.set_defaults(run=run_reserve)

    p = sub.add_parser("release", parents=[common], help="release a reservation",
                       description="Release a reservation and the bandwidth it holds.")
    p.add_argument("reservation_id", metavar="ID", help="the reservation's id, e.g. r-1a2b3c")
    p.set_defaults(run=run_release)

    p = sub.add_parser("reservations", parents=[common], help="list reservations",
                       description="List the controller's live reservations (PENDING, ACTIVE and "
                                   "DEGRADED), oldest first, fetched page by page; --all adds "
                                   "the ended ones the controller still keeps "
                                   "(`dcilab controller --history-days`). With an ID, that "
                                   "one reservation, live or ended.")
    p.add_argument("reservation_id", nargs="?", metavar="ID",
                   help="show only this reservation, e.g. r-1a2b3c (with --watch: watch it)")
    p.add_argument("--state", choices=STATES, type=str.lower,
                   help="only those in this state (any case: active or ACTIVE)")
    p.add_argument("--watch", nargs="?", const="", metavar="ID",
                   help="keep printing every change of state or path (of reservation ID, or "
                        "of all) until interrupted")
    p.add_argument("--all", action="store_true", help="ended reservations too")
    p.add_argument("--page-size", type=_page_size, default=0, metavar="N",
                   help="reservations per call (default: the server's, 100; at most 1000)")
    p.set_defaults(run=run_reservations)

    p = sub.add_parser("links", parents=[common], help="show the load on every link",
                       description="Show every direction of every link: capacity, measured "
                                   "rate, utilization and reserved bandwidth.")
    p.add_argument("--kind", choices=KINDS, help="only links of this kind")
    p.add_argument("--site", default="", help="only links with an end in this site")
    p.add_argument("--watch", action="store_true", help="keep printing until interrupted")
    p.add_argument("--interval", type=_interval, metavar="S",
                   help="with --watch: seconds between updates at least (default 1; 0.1 "
                        "to 3600); each is paid from the server's read budget as a listing, "
                        "which may space them further")
    p.set_defaults(run=run_links)

    p = sub.add_parser("switches", parents=[common],
                       help="show every switch of the fabric file: connected, and what of it "
                            "does not match the file",
                       description="Show every switch of the fabric file: its site and role, "
                                   "whether it is connected over OpenFlow, and what of it does "
                                   "not match the file: ports it lacks or has beyond the file, "
                                   "and cables at its ports that lead elsewhere than the file "
                                   "says (those ports are out of service until the cable is "
                                   "right). Exit 1 when a switch is not connected or has a "
                                   "problem, so that a script can wait for a clean fabric.")
    p.add_argument("--site", default="", help="only the switches of this site")
    p.set_defaults(run=run_switches)

    p = sub.add_parser("elephants", parents=[common],
                       help="show the elephants and the wavelengths that carry each",
                       description="Show the elephant flows the controller found at the "
                                   "leaves: their rate, what carries each and the wavelength "
                                   "it takes on every DCI hop (byte counters cannot tell "
                                   "flows sharing a line system apart; this can). A "
                                   "reservation's rules carry its pair's traffic (or the "
                                   "part its selector names) before any pin; under loadaware "
                                   "an elephant is pinned, under shortest it takes its site "
                                   "pair's one route, under ecmp it is hashed.")
    p.add_argument("--site", default="", help="only elephants with an end in this site")
    p.add_argument("--watch", action="store_true",
                   help="ask again every --interval until interrupted, printing each answer "
                        "(with --json, one line each)")
    p.add_argument("--interval", type=_interval, metavar="S",
                   help="with --watch: seconds between answers (default 1; 0.1 to 3600)")
    p.set_defaults(run=run_elephants)


# -- running ----------------------------------------------------------------------------

def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return read_pem(path, what)
    except ServerError as exc:
        raise _UsageError(str(exc)) from None


def _check_tls_files(ca: str | None, cert: str | None, key: str | None) -> None:
    problem = client_tls_problem(
        ca, cert, key, f"--tls-ca {ca} is not a PEM CA certificate",
        f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate and its private key")
    if problem:
        raise _UsageError(problem)


def connect(args) -> Client:
    """A Client from the connection flags."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise _UsageError("--tls-cert and --tls-key go together")
    try:
        token = read_token_file(args.token_file) if args.token_file else None
    except ServerError as exc:
        raise _UsageError(str(exc)) from None
    ca, cert, key = (_read(args.tls_ca, "CA file"), _read(args.tls_cert, "certificate"),
                     _read(args.tls_key, "key"))
    _check_tls_files(args.tls_ca, args.tls_cert, args.tls_key)
    if cert and (problem := certificate_dates_problem(cert, args.tls_cert,
                                                      refused_by="the server")):
        raise _UsageError(problem.replace("TLS certificate", "--tls-cert", 1))
    client = Client(args.server, token=token, tls=args.tls, ca=ca, cert=cert, key=key,
                    timeout=args.timeout, read_patience=args.timeout)
    client.on_read_wait = _ReadWaits()
    return client


class _ReadWaits:
    """Says on stderr, at most every 5 s, that reads are being paced by the server."""

    def __init__(self):
        self._said = -math.inf

    def __call__(self, seconds: float) -> None:
        if time.monotonic() - self._said >= 5.0:
            self._said = time.monotonic()
            print(f"dcilab: the server's read budget is spent (other clients on this address "
                  f"share it); waiting {seconds:.1f} s as it asks", file=sys.stderr)


def running_server() -> str | None:
    """The gRPC address of the controller of the demo, lab or train running on this machine,
    said on stderr (it may be another user's: a new user's reserve went to another's lab
    without a word)."""
    manifest = Manifest.load()
    address = manifest.services.get("grpc") if live_owner(manifest) else None
    if address:
        print(f"dcilab: the controller of emulation {manifest.fabric} "
              f"({manifest.fabric_path or 'bundled'}, pid {manifest.owner_pid}) at {address}; "
              f"--server picks another", file=sys.stderr)
    return address


def _run(args, body) -> int:
    """Run `body(client)`; turn every failure into one line and exit status 1 (2 for a
    token or TLS file that cannot be used)."""
    guessed = False                   # no --server, and no demo or lab to take it from
    if args.server is None:
        args.server = running_server()
        guessed = args.server is None
        args.server = args.server or DEFAULT_SERVER
    try:
        with connect(args) as client:
            return body(client) or 0
    except (ApiError, Unreachable, _UsageError) as exc:
        code = getattr(exc, "code", "UNAVAILABLE" if isinstance(exc, Unreachable) else "USAGE")
        if args.json:
            json_failure(code, str(exc))
        elif isinstance(exc, ApiError):
            print(f"dcilab {args.command}: refused ({code}): {exc}", file=sys.stderr)
        else:
            hint = ("; no dcilab demo or lab runs on this machine: start one (`dcilab lab`, "
                    "as root) or `dcilab controller`, or give --server ADDRESS"
                    if guessed and isinstance(exc, Unreachable) else "")
            print(f"dcilab {args.command}: {exc}{hint}", file=sys.stderr)
        # A bad token or TLS file is bad input, as a bad flag is (README: exit statuses).
        return 2 if isinstance(exc, _UsageError) else 1


def _path(res, hops=None) -> str:
    parts = []
    for hop in res.hops if hops is None else hops:
        parts.append(hop.switch)
        if hop.wavelength:
            parts.append(f"[{hop.wavelength}]")
    return " > ".join([res.src_host, *parts, res.dst_host])


def _when(seconds: float, now: float | None = None) -> str:
    """A local time of day, with its date unless it is today (an expiry years away read
    as a time of day tonight)."""
    at = datetime.fromtimestamp(seconds)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    return f"{at:%H:%M:%S}" if at.date() == today else f"{at:%Y-%m-%d %H:%M:%S}"


def _describe(res) -> str:
    ends = (f", expires {_when(res.expire_time.ToNanoseconds() / 1e9)}"
            if res.HasField("expire_time") else "")
    # the reason of a DEGRADED one, or of one dropped at a start (RELEASED)
    label = "degraded" if state_name(res) == "DEGRADED" else "why"
    why = f"\n  {label}: {res.degraded_reason}" if res.degraded_reason else ""
    priority = f", priority {res.priority}" if res.priority else ""
    protection = ppb.Protection.Name(res.protection).removeprefix("PROTECTION_")
    protection = "RESTORABLE" if protection == "UNSPECIFIED" else protection
    standby = (f"\n  standby: {_path(res, res.standby_hops)}" if res.standby_hops else "")
    if (protection == "PROTECTED" and not res.standby_hops and not res.degraded_reason
            and any(h.wavelength for h in res.hops)):
        # Not only room: the disjoint ways may be down, or beyond the latency bound.
        standby = ("\n  standby: none: a failure or an edit of the fabric took it, and no "
                   "path disjoint from the primary is up with room (within the bound, if one "
                   "is set); sought again when a link returns or room is released")
    # A DEGRADED reservation holds no path: the one shown is where it was (a tester read
    # it as the route its traffic takes).
    path = ("last path (carried best effort now)" if res.state == ppb.RESERVATION_STATE_DEGRADED
            else "path")
    # As `ovs-ofctl dump-flows BRIDGE` takes it, for the rules its switches hold.
    rules = (f"\n  rules: cookie=0x{res.cookie:x}/-1" if res.cookie and res.state in (
        ppb.RESERVATION_STATE_PENDING, ppb.RESERVATION_STATE_ACTIVE) else "")
    return (f"{res.reservation_id} {state_name(res)}: {res.src_host} -> {res.dst_host}"
            f"{_traffic(res)}, {res.bandwidth_gbps:g} Gb/s, {res.latency_ms:.3f} ms, "
            f"{protection}{priority}{ends}\n"
            f"  {path}: {_path(res)}{standby}{rules}{why}")


PROTOCOLS = {"tcp": 6, "udp": 17}
WIRE_UINT32 = 1 << 32
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}


def _selector(args):
    """The --protocol/--dport/--dscp options as a TrafficSelector (None: the whole pair);
    ValueError with what is wrong. The server checks the values themselves, those the
    wire can carry: a negative or huge number cannot be sent (protobuf's "Value out of
    range" named no option), and port 0 is the wire's "every port" (it reserved all TCP)."""
    if args.protocol is None and args.dport is None and args.dscp is None:
        return None
    sel = ppb.TrafficSelector()
    if args.dscp is not None:
        # ASCII digits only: int() takes "６" too, which --dport refused (a hostile tester's)
        if not _digits(args.dscp.removeprefix("-")):
            raise ValueError(f"--dscp: expected a whole number, got {args.dscp!r}")
        if not 0 <= int(args.dscp) < WIRE_UINT32:
            raise ValueError(f"--dscp: a DSCP value is 0-63, got {args.dscp}")
        sel.dscp = int(args.dscp)
    if args.protocol is not None:
        name = args.protocol.lower()
        if name not in PROTOCOLS and not (_digits(name) and int(name) < WIRE_UINT32):
            raise ValueError(f"--protocol: {args.protocol!r} is not tcp, udp or an IP "
                             "protocol number")
        sel.ip_protocol = PROTOCOLS.get(name) or int(name)
    if args.dport is not None:
        if sel.ip_protocol not in PROTOCOLS.values():
            raise ValueError("--dport needs --protocol tcp or --protocol udp")
        lo, dash, hi = args.dport.partition("-")
        # "80-" was taken as 80 (a hostile tester's): a dash needs its HI
        if not (_digits(lo) and (not dash or _digits(hi))) or int(lo) == 0 \
                or int(hi or lo) >= WIRE_UINT32:
            raise ValueError(f"--dport: {args.dport!r} is not a port (1-65535) or LO-HI range")
        sel.dst_port_min, sel.dst_port_max = int(lo), int(hi or lo)
    return sel


def _digits(text: str) -> bool:
    """0-9 only: str.isdigit takes "٣" and "¹" too (one booked tcp dport 3)."""
    return text.isascii() and text.isdigit()


def _traffic(res) -> str:
    if not res.HasField("selector"):
        return ""
    sel = res.selector
    if sel.HasField("dscp"):
        return f" [dscp {sel.dscp}]"
    name = {v: k for k, v in PROTOCOLS.items()}.get(sel.ip_protocol, f"proto {sel.ip_protocol}")
    if sel.dst_port_max:
        ports = (str(sel.dst_port_min) if sel.dst_port_min == sel.dst_port_max
                 else f"{sel.dst_port_min}-{sel.dst_port_max}")
        return f" [{name} dport {ports}]"
    return f" [{name}]"


def run_reserve(args) -> int:
    try:
        selector = _selector(args)
    except ValueError as exc:
        if args.json:
            json_failure(USAGE, str(exc))
        else:
            print(f"dcilab reserve: {exc}", file=sys.stderr)
        return 2

    # Always a request_id: a call cut short (its deadline, a lost connection) may have
    # been booked, and only a retry with the same id can tell without booking twice.
    request_id = args.request_id or f"cli-{secrets.token_hex(8)}"

    def body(client):
        try:
            res = client.reserve(args.src, args.dst, args.gbps, args.max_latency_ms,
                                 args.duration, request_id, args.priority, selector,
                                 args.protection)
        except Unreachable as exc:
            # never sent: nothing to find (a name that does not resolve neither)
            if any(never in str(exc) for never in ("failed to connect", "errors resolving",
                                                   "DNS resolution failed")):
                raise
            raise Unreachable(f"{exc}; it may have been booked: the same command with "
                              f"--request-id {request_id} answers it if it was, or books "
                              f"it once") from None
        ended = res.state in (ppb.RESERVATION_STATE_RELEASED, ppb.RESERVATION_STATE_EXPIRED)
        if args.json:
            print(json.dumps(as_dict(res), indent=2))
        elif ended:
            # A retry answers the request_id's first booking, ended since: "reserved" and
            # exit 0 told a script it held something (a README reviewer's).
            print(f"not reserved: --request-id {request_id} was booked before, and that "
                  f"reservation has ended (a new request needs a new id)\n"
                  f"{_describe(res)}", file=sys.stderr)
        else:
            print(f"reserved {_describe(res)}")
        return 1 if ended else 0
    return _run(args, body)


def run_release(args) -> int:
    def body(client):
        res = client.release(args.reservation_id)
        print(json.dumps(as_dict(res), indent=2) if args.json else f"released {_describe(res)}")
    return _run(args, body)


def _one_reservation(args) -> None:
    """`reservations ID`: with `--watch`, that one watched (`--state` filters a watch); with
    a listing's option, refused."""
    if not args.reservation_id:
        raise _UsageError("an empty ID: give a reservation's id, e.g. r-1a2b3c")
    listing = [flag for flag, given in (("--state", args.state and args.watch is None),
                                        ("--all", args.all), ("--page-size", args.page_size))
               if given]
    if listing:
        raise _UsageError(f"{listing[0]} lists reservations; an ID shows one")
    if args.watch:
        raise _UsageError("give the ID once: after --watch, or alone")
    if args.watch is not None:
        args.watch = args.reservation_id


def run_reservations(args) -> int:
    def body(client):
        if args.reservation_id is not None:
            _one_reservation(args)
        if args.reservation_id is not None and args.watch is None:
            res = client.get(args.reservation_id)
            print(json.dumps(as_dict(res), indent=2) if args.json else _describe(res))
            return
        if args.watch is not None:
            last = None
            try:
                for res in client.watch_reservations(args.watch):
                    last = res
                    if args.state and state_name(res) != args.state.upper():
                        continue
                    print(json.dumps(as_dict(res)) if args.json
                          else f"[{datetime.now():%H:%M:%S.%f}"[:-3] + f"] {_describe(res)}",
                          flush=True)
            except Terminated:          # SIGTERM: the command's own end, exit 143
                raise
            except KeyboardInterrupt:   # Ctrl-C: the watcher is done watching
                return
            if args.watch and last is not None and state_name(last) in ("RELEASED", "EXPIRED"):
                return                  # one reservation, over: its stream ends there
            raise Unreachable(f"the controller at {args.server} ended the stream")
        pages = client.reservation_pages(args.state, args.all, args.page_size)
        if args.json:
            found = [r for page in pages for r in page]
            print(json.dumps({"reservations": [as_dict(r) for r in found]}, indent=2))
            return
        count = 0
        try:
            for page in pages:                 # printed as they come: a long history streams
                for res in page:
                    print(_describe(res), flush=False)
                count += len(page)
        except (ApiError, Unreachable):
            if count:                          # a reader of stdout alone must not be misled
                sys.stdout.flush()
                print(f"dcilab reservations: the listing is incomplete: it stopped after "
                      f"{count} reservation(s)", file=sys.stderr)
            raise
        if not count:
            print("no reservations" + (f" in state {args.state}" if args.state
                                       else "" if args.all else " live (--all: ended ones too)"))
    return _run(args, body)


def _links_table(loads) -> str:
    """One row per link direction; after whether it is up, a wavelength's mode now (rate
    adaptation changes it, and its capacity with it) and its margin in that mode (reported
    over gNMI when the controller reads its transceivers, else the plan's). "held": up,
    but not in use yet (held down after a flap, or drained for a mode change)."""
    rows = [f"{'link':<26} {'from':<14} {'to':<14} {'Gb/s':>7} {'rate Gb/s':>10} "
            f"{'util':>6} {'reserved':>9}  up   {'mode':<5} margin dB"]
    for l in loads:
        margin = f"{l.margin_db:>9.2f}" if l.HasField("margin_db") else ""
        up = "no" if not l.up else "yes" if l.in_service else "held"
        rows.append((f"{l.link:<26} {l.src:<14} {l.dst:<14} {l.capacity_bps / 1e9:>7g} "
                     f"{l.rate_bps / 1e9:>10.3f} {l.utilization_ratio:>6.1%} "
                     f"{l.reserved_bps / 1e9:>9g}  {up:<4} "
                     f"{l.mode:<5} {margin}").rstrip())
    return "\n".join(rows)


def _watch_interval(args) -> None:
    """--interval is --watch's: alone it would be ignored without a word."""
    if args.interval is not None and not args.watch:
        raise _UsageError("--interval needs --watch")
    args.interval = args.interval or 1.0


def run_links(args) -> int:
    def body(client):
        _watch_interval(args)
        if not args.watch:
            loads = client.links(args.kind, args.site)
            print(json.dumps({"link_loads": [as_dict(l) for l in loads]}, indent=2)
                  if args.json else _links_table(loads))
            return
        try:
            for update in client.watch_links(args.interval, args.kind, args.site):
                if args.json:
                    print(json.dumps(as_dict(update)), flush=True)
                else:
                    when = datetime.fromtimestamp(update.time.ToNanoseconds() / 1e9)
                    print(f"[{when:%H:%M:%S.%f}"[:-3] + "]")
                    print(_links_table(update.link_loads) + "\n", flush=True)
        except Terminated:
            raise
        except KeyboardInterrupt:
            pass
        else:
            raise Unreachable(f"the controller at {args.server} ended the stream")
    return _run(args, body)


def _role(sw) -> str:
    return fpb.SwitchRole.Name(sw.role).removeprefix("SWITCH_ROLE_").lower()


def _switch_json(sw) -> dict:
    """As `dcilab check --json` names a switch (hex datapath id, role in lower case), so
    that a script may join the two."""
    return {"name": sw.name, "site": sw.site, "role": _role(sw), "dpid": f"{sw.dpid:#018x}",
            "connected": sw.connected, "problems": list(sw.problems)}


def _switches_table(switches) -> str:
    """One row per switch; each problem on a line of its own under it."""
    rows = [f"{'switch':<20} {'site':<12} {'role':<8} connected  problems"]
    for sw in switches:
        role = _role(sw)
        rows.append(f"{sw.name:<20} {sw.site:<12} {role:<8} {'yes' if sw.connected else 'no':<9}  "
                    f"{len(sw.problems) or 'none'}")
        rows += [f"    {problem}" for problem in sw.problems]
    return "\n".join(rows)


def run_switches(args) -> int:
    def body(client):
        fabric = client.fabric()
        switches = [sw for sw in fabric.switches if not args.site or sw.site == args.site]
        if args.site and not switches:
            # the fabric is the server's: refused as `links --site` is (exit 1, not 2)
            raise ApiError("INVALID_ARGUMENT",
                           f"site: fabric {fabric.name!r} has no site {args.site!r}; its sites: "
                           + ", ".join(s.name for s in fabric.sites))
        print(json.dumps({"switches": [_switch_json(sw) for sw in switches]}, indent=2)
              if args.json else _switches_table(switches))
        return 0 if all(sw.connected and not sw.problems for sw in switches) else 1
    return _run(args, body)


def _elephants_table(answer) -> str:
    """One row per elephant: its flow, rate, demand estimate and what carries it where."""
    if not answer.elephants:
        return f"no elephants (policy {answer.policy})"
    flows = [f"{PROTOCOL_NAMES.get(e.ip_proto, str(e.ip_proto))} {e.src_ip}:{e.src_port} > "
             f"{e.dst_ip}:{e.dst_port}" for e in answer.elephants]
    hosts = [f"{e.src_host} > {e.dst_host}" for e in answer.elephants]
    # as wide as the longest (site names of any length), at least as wide as before
    fw, hw = max(44, *map(len, flows)), max(22, *map(len, hosts))
    rows = [f"{'flow':<{fw}} {'hosts':<{hw}} {'rate Gb/s':>9} {'demand':>7}  carried by"]
    for e, flow, pair in zip(answer.elephants, flows, hosts):
        demand = f"{e.demand_bps / 1e9:>7.0f}" if e.demand_bps else f"{'':>7}"
        rows.append(f"{flow:<{fw}} {pair:<{hw}} {e.rate_bps / 1e9:>9.1f} {demand}  "
                    f"{_carried_by(e, answer.policy)}" + ("  (idle, pin held)" if e.idle else ""))
    return "\n".join(rows)


def _carried_by(e, policy: str) -> str:
    path = (" > ".join(f"{hop.wavelength} ({hop.src} > {hop.dst})" for hop in e.hops)
            or "no DCI hop")
    if e.carrier == fpb.CARRIER_PINNED:
        return f"its pin: {path}"
    if e.carrier == fpb.CARRIER_SHORTEST:
        return f"the shortest route: {path}"
    if e.carrier == fpb.CARRIER_RESERVATION:
        return f"reservation {e.reservation_id}: {path}"
    if e.carrier == fpb.CARRIER_RESERVATION_IF_MARKED:
        unmarked = path if e.hops else f"hashed over the shortest routes ({policy})"
        return (f"reservation {e.reservation_id} if its packets carry its DSCP, else "
                f"{unmarked}")
    if policy == "loadaware":
        return "not pinned: hashed over the shortest routes (no live route when found)"
    return f"hashed over the shortest routes ({policy})"


def run_elephants(args) -> int:
    def body(client):
        _watch_interval(args)
        def stamped(answer) -> dict:
            """With the time it was asked, as `links --json --watch` gives, one shape
            whether watched or not (an outside tester's)."""
            when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return {"time": when, **as_dict(answer)}
        if not args.watch:
            answer = client.elephants(args.site)
            print(json.dumps(stamped(answer), indent=2) if args.json
                  else _elephants_table(answer))
            return
        try:
            while True:                   # a poll: the answer is read-budgeted, not streamed
                asked = time.monotonic()
                answer = client.elephants(args.site)
                if args.json:
                    print(json.dumps(stamped(answer)), flush=True)
                else:
                    print(f"[{datetime.now():%H:%M:%S.%f}"[:-3] + "]")
                    print(_elephants_table(answer) + "\n", flush=True)
                time.sleep(max(0.0, args.interval - (time.monotonic() - asked)))
        except Terminated:
            raise
        except KeyboardInterrupt:
            pass
    return _run(args, body)
