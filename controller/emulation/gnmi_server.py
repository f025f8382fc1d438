"""gNMI for the emulated ZR transceivers: Capabilities, Get, Set and Subscribe.

Built on grpcio with the gNMI protos PyPI `pygnmi` ships (`pygnmi.spec.v080`); the tree
it serves is in `openconfig`. Subscribe supports STREAM (SAMPLE and TARGET_DEFINED at
their sample interval, 1 s by default, as often as 0.1 s for 0; ON_CHANGE sends what
changed; a leaf gone, a receiver's reading when the light is lost, is sent as a delete;
`updates_only`, `suppress_redundant` and `heartbeat_interval` as the gNMI spec says) and
ONCE; not POLL. Values go out as JSON, numbers as JSON numbers, or as JSON_IETF
(RFC 7951: decimal64 and 64-bit integers as strings) when asked.

A server thread serves each open stream for its life, so open streams are bounded
(`MAX_STREAMS`, refused beyond with RESOURCE_EXHAUSTED) and a few threads stay for Get,
Set and Capabilities whatever subscribers do.

It runs on an `OpticalState` alone, so it serves a fabric without an emulation (tests, a
static lab); `TransceiverAgent` (transceivers.py) adds the clock and the data plane.
"""

from __future__ import annotations

import json
import logging
import math
import hmac
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent import futures
from decimal import Decimal

import grpc
from pygnmi.spec.v080 import gnmi_pb2, gnmi_pb2_grpc

from ..optics import OpticsError
from .openconfig import (LINE_SYSTEMS_TARGET, Elem, Leaf, all_leaves, elem, gateways, matches,
                         path_text, schema)
from .optical_state import OpticalState

log = logging.getLogger("dcilab.gnmi")

GNMI_VERSION = "0.8.0"
DEFAULT_SAMPLE_S = 1.0
MIN_SAMPLE_S = 0.1
MAX_SAMPLE_S = 86400.0        # a day; beyond it a client asks for no samples at all
MAX_STREAMS = 24              # e.g. 8 gateways x 2 subscriptions of a collector, and more
UNARY_WORKERS = 8             # threads no stream can take
ORIGINS = ("", "openconfig")
MAX_PATHS = 100               # paths in a Get, subscriptions in a list: each costs a walk
MAX_ELEMS = 64                # elements in a path (the deepest leaf has 9)
NAMED_AT_MOST = 5             # bad paths an error names (gRPC refuses long trailers)
_MODELS = (("openconfig-platform", "0.24.0"), ("openconfig-terminal-device", "1.9.0"),
           ("openconfig-transport-types", "0.24.0"))


class GnmiError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def to_elems(path: gnmi_pb2.Path) -> tuple[Elem, ...]:
    """A gNMI Path as elements; module prefixes ("oc-opt-term:optical-channel") are
    dropped. Only the OpenConfig origin is served, and only `elem` (not the deprecated
    `element` strings, which read as the root and returned everything)."""
    if path.origin not in ORIGINS:
        raise GnmiError(grpc.StatusCode.UNIMPLEMENTED,
                        f"origin {path.origin[:40]!r} is not served; use openconfig (or none)")
    if path.element and not path.elem:
        raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                        "Path.element (deprecated since gNMI 0.4) is not served; use Path.elem")
    if len(path.elem) > MAX_ELEMS:
        raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"a path of {len(path.elem)} elements; at most {MAX_ELEMS}")
    elems: list[Elem] = []
    for e in path.elem:
        name = e.name.split(":", 1)[-1]
        if name == "..." and elems and elems[-1][0] == "...":
            continue                            # "/.../..." is "/..."
        elems.append((name, tuple(sorted(e.key.items()))))
    return tuple(elems)


def _bounded(paths: Sequence, what: str) -> None:
    if len(paths) > MAX_PATHS:
        raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"{len(paths)} {what}; at most {MAX_PATHS} in one request")


def _named(texts: list[str]) -> str:
    """Paths for an error message, the first few (its trailer has a size limit)."""
    more = len(texts) - NAMED_AT_MOST
    return ", ".join(texts[:NAMED_AT_MOST]) + (f" and {more} more" if more > 0 else "")


def to_path(elems: Sequence[Elem]) -> gnmi_pb2.Path:
    return gnmi_pb2.Path(elem=[gnmi_pb2.PathElem(name=name, key=dict(keys))
                               for name, keys in elems])


def decode(value: gnmi_pb2.TypedValue) -> object:
    kind = value.WhichOneof("value")
    if kind in ("json_val", "json_ietf_val"):
        try:
            return json.loads(getattr(value, kind))
        except ValueError:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"value is not JSON: {getattr(value, kind)[:80]!r}") from None
    if kind in ("string_val", "ascii_val"):
        return getattr(value, kind)
    if kind in ("int_val", "uint_val", "float_val", "double_val", "bool_val"):
        return getattr(value, kind)
    raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported value type {kind}")


# Leaves typed uint64 in OpenConfig (the rest of the whole numbers are 16 or 32 bits).
_UINT64 = frozenset({"frequency"})


def encode(value: object, encoding: int, leaf: str = "") -> gnmi_pb2.TypedValue:
    if encoding == gnmi_pb2.Encoding.JSON_IETF:
        # RFC 7951 section 6.1: decimal64 (every reading here) and 64-bit integers are
        # strings, so no decoder rounds them through a double.
        if isinstance(value, float) or (leaf in _UINT64 and isinstance(value, int)):
            # decimal64's text has no exponent (RFC 7950 9.3.2): 4.1e-07 is 0.00000041
            value = format(Decimal(repr(value)), "f") if isinstance(value, float) \
                else str(value)
        return gnmi_pb2.TypedValue(json_ietf_val=json.dumps(value).encode())
    return gnmi_pb2.TypedValue(json_val=json.dumps(value).encode())


class TransceiverServicer(gnmi_pb2_grpc.gNMIServicer):
    """Adapts gNMI requests to an `OpticalState`."""

    def __init__(self, state: OpticalState, stop: threading.Event,
                 max_streams: int = MAX_STREAMS):
        self.state = state
        self.stop = stop
        self.targets = gateways(state)
        self.schema = schema(state)          # what may be asked for, measured now or not
        self.max_streams = max_streams
        self._streams = threading.BoundedSemaphore(max_streams)

    # -- helpers ------------------------------------------------------------------------

    def _known(self, target: str) -> None:
        """NOT_FOUND for a target that is none of the gateways ("": all of them)."""
        if target and target not in self.targets:
            raise GnmiError(grpc.StatusCode.NOT_FOUND,
                            f"unknown target {target!r}; targets are the gateways "
                            f"{', '.join(sorted(self.targets))} (or empty for all)")

    def _leaves(self, target: str) -> list[Leaf]:
        self._known(target)
        return all_leaves(self.state, target)

    @staticmethod
    def _encoding(encoding: int) -> int:
        if encoding not in (gnmi_pb2.Encoding.JSON, gnmi_pb2.Encoding.JSON_IETF):
            raise GnmiError(grpc.StatusCode.UNIMPLEMENTED,
                            "only JSON and JSON_IETF encodings are served")
        return encoding

    def _select(self, prefix: gnmi_pb2.Path, paths: Sequence[gnmi_pb2.Path],
                leaves: list[Leaf] | None = None) -> list[Leaf]:
        """The leaves under any of `paths` (below `prefix`); `leaves` to choose from, or
        the prefix target's current ones."""
        base = to_elems(prefix)
        leaves = self._leaves(prefix.target) if leaves is None else leaves
        return _under([base + to_elems(p) for p in paths] or [base], leaves)

    def _unknown(self, prefix: gnmi_pb2.Path, paths: Sequence[gnmi_pb2.Path],
                 leaves: list[Leaf]) -> list[str]:
        """Those of `paths` (below `prefix`) under which none of `leaves` lies, as text."""
        base = to_elems(prefix)
        wanted = [base + to_elems(p) for p in paths] or [base]
        return [path_text(r) for r in wanted
                if not any(leaf.target == (prefix.target or leaf.target)
                           and matches(r, leaf.path) for leaf in leaves)]

    @staticmethod
    def _notifications(leaves: Sequence[Leaf], encoding: int,
                       gone: Sequence[tuple[str, tuple]] = ()) -> list[gnmi_pb2.Notification]:
        """Notifications per target: `leaves` as updates, `gone` (target, path) as deletes."""
        now = time.time_ns()
        by_target: dict[str, tuple[list, list]] = {}
        for leaf in leaves:
            by_target.setdefault(leaf.target, ([], []))[0].append(gnmi_pb2.Update(
                path=to_path(leaf.path), val=encode(leaf.value, encoding, leaf.path[-1][0])))
        for target, path in gone:
            by_target.setdefault(target, ([], []))[1].append(to_path(path))
        return [gnmi_pb2.Notification(timestamp=now, prefix=gnmi_pb2.Path(target=target),
                                      update=updates, delete=deletes)
                for target, (updates, deletes) in by_target.items()]

    @staticmethod
    def _abort(context, exc: GnmiError):
        context.abort(exc.code, str(exc))

    # -- RPCs ---------------------------------------------------------------------------

    def Capabilities(self, request, context):
        return gnmi_pb2.CapabilityResponse(
            supported_models=[gnmi_pb2.ModelData(name=n, organization="OpenConfig working group",
                                                 version=v) for n, v in _MODELS],
            supported_encodings=[gnmi_pb2.Encoding.JSON, gnmi_pb2.Encoding.JSON_IETF],
            gNMI_version=GNMI_VERSION)

    def Get(self, request, context):
        try:
            encoding = self._encoding(request.encoding)
            self._models(request.use_models)
            _bounded(request.path, "paths")
            current = _of_type(self._leaves(request.prefix.target), request.type)
            # Every path must find data, as one alone must: a typo among good paths was
            # answered with the good ones and no word.
            missing = self._unknown(request.prefix, request.path, current)
            if missing:
                raise GnmiError(grpc.StatusCode.NOT_FOUND, "no data at " + _named(missing))
            leaves = self._select(request.prefix, request.path, current)
        except GnmiError as exc:
            self._abort(context, exc)
        return gnmi_pb2.GetResponse(notification=self._notifications(leaves, encoding))

    @staticmethod
    def _models(models: Sequence[gnmi_pb2.ModelData]) -> None:
        served = {name for name, _ in _MODELS}
        unknown = sorted({m.name for m in models} - served)
        if unknown:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"use_models: {', '.join(unknown)[:200]} not served; served: "
                            f"{', '.join(sorted(served))}")

    def Set(self, request, context):
        results = []
        done: list[tuple] = []              # log lines, said once the whole Set is taken
        try:
            with self.state.transaction():            # all of it, or nothing
                for path in request.delete:
                    results.append(self._delete(request.prefix, path))
                for op, updates in ((gnmi_pb2.UpdateResult.REPLACE, request.replace),
                                    (gnmi_pb2.UpdateResult.UPDATE, request.update)):
                    for update in updates:
                        results.append(self._update(request.prefix, update, done, op))
            for line in done:
                log.info(*line)
        except GnmiError as exc:
            self._abort(context, exc)
        except OpticsError as exc:
            self._abort(context, GnmiError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)))
        return gnmi_pb2.SetResponse(prefix=request.prefix, response=results,
                                    timestamp=time.time_ns())

    def _update(self, prefix: gnmi_pb2.Path, update: gnmi_pb2.Update,
                done: list[tuple], op: int) -> gnmi_pb2.UpdateResult:
        elems = to_elems(prefix) + to_elems(update.path)
        value = decode(update.val)
        names = [name for name, _ in elems]
        keys = [dict(k) for _, k in elems]
        target = prefix.target or update.path.target
        if target:
            self._known(target)             # NOT_FOUND, as for Get
        where = path_text(elems)
        if names[:2] == ["components", "component"] and names[2:4] == ["optical-channel", "config"]:
            leaf = names[4] if len(names) > 4 else None
            if leaf is None and isinstance(value, dict):      # the config container
                value = {k.split(":")[-1]: v for k, v in value.items()}
                if set(value) - {"operational-mode"}:
                    raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"{where}: only operational-mode is writable")
                leaf, value = "operational-mode", value.get("operational-mode")
            if leaf != "operational-mode":
                raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{where}: only operational-mode is writable here")
            mode = _whole_number(value, where)
            wavelength = keys[1].get("name", "")
            changed = self.state.set_mode(wavelength, mode, gateway=target or None)
            done.append(("gNMI Set %s = %d on %s (changed on %s)", where, mode,
                         target or "both ends", ", ".join(changed) or "none"))
        elif names[:2] == ["line-systems", "line-system"]:
            self._line_system_target(target, where)
            self._line_system_update(elems, value, where, done)
        else:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{where} is not writable; writable: components/component[name=W]/"
                            f"optical-channel/config/operational-mode and line-systems/...")
        return gnmi_pb2.UpdateResult(path=update.path, op=op)

    def _line_system_target(self, target: str, where: str) -> None:
        """Line systems are on no gateway: target "" (as a Get finds them)."""
        if target:
            self._known(target)
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{where}: the line systems are on no gateway; give no target")

    def _line_system_update(self, elems, value, where: str, done: list[tuple]) -> None:
        names = [name for name, _ in elems]
        keys = [dict(k) for _, k in elems]
        ramp_s = 0.0
        if isinstance(value, dict):
            ramp_s = value.get("ramp-s", 0.0)
            if "value" not in value or not isinstance(ramp_s, (int, float)):
                raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{where}: give a number or {{\"value\": X, \"ramp-s\": S}}")
            value = value["value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not _finite(value):
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{where}: {str(value)[:40]} is not a finite number")
        line = keys[1].get("name", "")
        tail = names[2:]
        if tail == ["config", "launch-power"]:
            self.state.set_launch_power(line, value, ramp_s)
        elif tail == ["spans", "span", "config", "extra-loss"]:
            self.state.degrade_span(line, _whole_number(keys[3].get("index"), where), value, ramp_s)
        elif tail == ["amplifiers", "amplifier", "config", "noise-figure"]:
            self.state.set_amplifier_nf(line, _whole_number(keys[3].get("index"), where), value,
                                        ramp_s)
        else:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT, f"{where} is not a line-system knob")
        done.append(("gNMI Set %s = %s over %s s", where, value, ramp_s))

    def _delete(self, prefix: gnmi_pb2.Path, path: gnmi_pb2.Path) -> gnmi_pb2.UpdateResult:
        elems = to_elems(prefix) + to_elems(path)
        self._line_system_target(prefix.target or path.target, path_text(elems))
        if [name for name, _ in elems] != ["line-systems", "line-system"]:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{path_text(elems)}: only /line-systems/line-system[name=L] can be "
                            f"deleted (restores it as designed)")
        self.state.restore(dict(elems[1][1]).get("name", ""))
        return gnmi_pb2.UpdateResult(path=path, op=gnmi_pb2.UpdateResult.DELETE)

    def Subscribe(self, request_iterator, context):
        # Counted from the call's start: one that has sent nothing yet holds a thread too
        # (a re-tester's 32 silent calls stalled every Get), and ONCE ones while they last.
        if not self._streams.acquire(blocking=False):
            self._abort(context, GnmiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self.max_streams} subscriptions are open, the most this server serves; "
                f"close one, or subscribe to more paths in one"))
        try:
            try:
                first = next(request_iterator)
            except StopIteration:
                return
            if not first.HasField("subscribe"):
                raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                                "the first SubscribeRequest must carry a subscription list")
            yield from self._subscribe(first.subscribe, context)
        except GnmiError as exc:
            self._abort(context, exc)
        finally:
            self._streams.release()

    def _subscribe(self, sub: gnmi_pb2.SubscriptionList, context) -> Iterator:
        encoding = self._encoding(sub.encoding)
        self._models(sub.use_models)
        mode = sub.mode
        if mode == gnmi_pb2.SubscriptionList.POLL:
            raise GnmiError(grpc.StatusCode.UNIMPLEMENTED, "POLL is not served; use STREAM or ONCE")
        subscriptions = list(sub.subscription) or [gnmi_pb2.Subscription()]
        _bounded(subscriptions, "subscriptions")
        paths = [s.path for s in subscriptions]
        self._known(sub.prefix.target)
        wanted = [to_elems(sub.prefix) + to_elems(p) for p in paths]    # each, once
        # A path nothing can ever lie under is a typo: said now, not silence for good. A
        # reading not measured now (no light) is a good path: it comes back with the light.
        unknown = self._unknown(sub.prefix, paths, self.schema)
        if unknown:
            raise GnmiError(grpc.StatusCode.NOT_FOUND, "nothing is served at " + _named(unknown))
        intervals = [_interval(s) for s in subscriptions] if mode == _STREAM else []

        def send(leaves, gone=()):
            for notification in self._notifications(leaves, encoding, gone):
                yield gnmi_pb2.SubscribeResponse(update=notification)

        initial = self._select(sub.prefix, paths)
        if not sub.updates_only:
            yield from send(initial)
        yield gnmi_pb2.SubscribeResponse(sync_response=True)
        if mode == gnmi_pb2.SubscriptionList.ONCE:
            return
        done = threading.Event()
        context.add_callback(done.set)
        last = {(leaf.target, leaf.path): leaf.value for leaf in initial}
        start = time.monotonic()
        due = [start + (i if i else 0.0) for i in intervals]
        # as often as samples at most: a heartbeat of 1 ns would spin a thread
        beats = [max(MIN_SAMPLE_S, s.heartbeat_interval / 1e9) if s.heartbeat_interval
                 else None for s in subscriptions]
        beat_due = [start + b if b else None for b in beats]
        while not done.is_set() and not self.stop.is_set():
            now = time.monotonic()
            wake = min(min(d if i else now + 0.5 for d, i in zip(due, intervals)),
                       min((b for b in beat_due if b is not None), default=now + 0.5))
            if done.wait(max(0.0, wake - now)) or self.stop.is_set():
                break
            now = time.monotonic()
            out: dict[tuple, Leaf] = {}
            gone: set[tuple] = set()
            current = self._leaves(sub.prefix.target)          # one snapshot per wake-up
            present = {(leaf.target, leaf.path) for leaf in current}
            missing = [key for key in last if key not in present]   # usually none
            for k, (s, interval) in enumerate(zip(subscriptions, intervals)):
                beat = beat_due[k] is not None and now >= beat_due[k]
                sample = interval is not None and now >= due[k]
                if sample:     # also when a heartbeat falls due with it: one send, not two
                    due[k] += interval * max(1, int((now - due[k]) // interval) + 1)
                elif interval is not None and not beat:
                    continue
                if beats[k] and (beat or (sample and not s.suppress_redundant)):
                    # every value just went out: the next heartbeat is a whole one away
                    beat_due[k] = now + beats[k]
                leaves = _under([wanted[k]], current)
                if not beat and (interval is None or s.suppress_redundant):
                    leaves = [l for l in leaves if last.get((l.target, l.path)) != l.value]
                for leaf in leaves:
                    out[(leaf.target, leaf.path)] = leaf
                gone.update(key for key in missing if matches(wanted[k], key[1]))
            for key in gone:
                del last[key]
            if out or gone:
                last.update({key: leaf.value for key, leaf in out.items()})
                yield from send(list(out.values()), sorted(gone))
        if self.stop.is_set() and not done.is_set():
            # Not an OK end: a collector that does not retry after one would stop watching.
            raise GnmiError(grpc.StatusCode.UNAVAILABLE, "the transceivers' server is stopping")


_STREAM = gnmi_pb2.SubscriptionList.STREAM


def _under(requests: Sequence[tuple[Elem, ...]], leaves: list[Leaf]) -> list[Leaf]:
    """The leaves at or under any of `requests`."""
    return [leaf for leaf in leaves if any(matches(r, leaf.path) for r in requests)]


def _interval(sub: gnmi_pb2.Subscription) -> float | None:
    """Seconds between samples (None: on change). 0 is the fastest served, as the gNMI spec
    says; TARGET_DEFINED samples every second."""
    if sub.mode == gnmi_pb2.SubscriptionMode.ON_CHANGE:
        return None
    if sub.mode == gnmi_pb2.SubscriptionMode.TARGET_DEFINED:
        return DEFAULT_SAMPLE_S
    seconds = sub.sample_interval / 1e9
    if seconds > MAX_SAMPLE_S:
        raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"sample_interval {sub.sample_interval} ns is more than a day "
                        f"({MAX_SAMPLE_S * 1e9:.0f} ns)")
    return max(MIN_SAMPLE_S, seconds)


def _of_type(leaves: list[Leaf], kind: int) -> list[Leaf]:
    """The leaves a Get's `type` asks for: CONFIG under a config container, STATE under a
    state one, OPERATIONAL the state that is not config's echo."""
    if kind == gnmi_pb2.GetRequest.CONFIG:
        return [leaf for leaf in leaves if any(name == "config" for name, _ in leaf.path)]
    if kind in (gnmi_pb2.GetRequest.STATE, gnmi_pb2.GetRequest.OPERATIONAL):
        state = [leaf for leaf in leaves if any(name == "state" for name, _ in leaf.path)]
        if kind == gnmi_pb2.GetRequest.STATE:
            return state
        config = {leaf.path for leaf in leaves if any(name == "config" for name, _ in leaf.path)}
        return [leaf for leaf in state if tuple(("config" if name == "state" else name, keys)
                                                for name, keys in leaf.path) not in config]
    return leaves


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:                       # an integer of hundreds of digits
        return False


def _whole_number(value: object, where: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():    # not "²"
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"{where}: expected a whole number, got {value!r}")
    return value


class _Login(grpc.ServerInterceptor):
    """gNMI's username/password metadata, checked on every call, as a device does."""

    def __init__(self, username: str, password: str):
        self._wanted = (username.encode(), password.encode())

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "username or password wrong")
        self._refused = grpc.unary_unary_rpc_method_handler(refuse)

    def intercept_service(self, continuation, details):
        given = dict(details.invocation_metadata)
        ok = all(hmac.compare_digest(given.get(k, "").encode(), v)
                 for k, v in zip(("username", "password"), self._wanted))
        if ok:
            return continuation(details)
        handler = continuation(details)
        if handler is not None and handler.stream_stream:
            def refuse_stream(iterator, context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "username or password wrong")
            return grpc.stream_stream_rpc_method_handler(refuse_stream)
        return self._refused


def serve_gnmi(state: OpticalState, address: str = "127.0.0.1:0",
               max_streams: int = MAX_STREAMS, tls: tuple[bytes, bytes] | None = None,
               login: tuple[str, str] | None = None):
    """Start a gNMI server on `address` for `state`; return (server, bound port, stop event).

    Port 0 binds a free port. Each open subscription holds a worker thread, and at most
    `max_streams` are open: `UNARY_WORKERS` more serve Get, Set and Capabilities. Stop with
    `stop.set(); server.stop(grace)`. `tls`: (certificate chain, key), PEM; `login`:
    (username, password) every call must carry, as a device's agent asks (the emulation's
    own agent, on 127.0.0.1, takes neither).
    """
    stop = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_streams + UNARY_WORKERS,
                                                    thread_name_prefix="gnmi"),
                         interceptors=[_Login(*login)] if login else None)
    gnmi_pb2_grpc.add_gNMIServicer_to_server(TransceiverServicer(state, stop, max_streams),
                                             server)
    if tls is not None:
        chain, key = tls
        port = server.add_secure_port(address, grpc.ssl_server_credentials([(key, chain)]))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen for gNMI on {address}")
    server.start()
    log.debug("gNMI for %d transceivers on %s", len(state.transceivers),
             address.rsplit(":", 1)[0] + f":{port}")
    return server, port, stop


__all__ = ["GnmiError", "LINE_SYSTEMS_TARGET", "TransceiverServicer", "elem", "serve_gnmi"]
