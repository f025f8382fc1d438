"""gNMI for the emulated ZR transceivers: Capabilities, Get, Set and Subscribe.

Built on grpcio with the gNMI protos PyPI `pygnmi` ships (`pygnmi.spec.v080`); the tree
it serves is in `openconfig`. Subscribe supports STREAM (SAMPLE and TARGET_DEFINED at
their sample interval, 1 s by default; ON_CHANGE sends what changed) and ONCE. Values go
out as JSON (or JSON_IETF when asked), numbers as JSON numbers.

It runs on an `OpticalState` alone, so it serves a fabric without an emulation (tests, a
static lab); `TransceiverAgent` (transceivers.py) adds the clock and the data plane.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent import futures

import grpc
from pygnmi.spec.v080 import gnmi_pb2, gnmi_pb2_grpc

from ..optics import OpticsError
from .openconfig import (LINE_SYSTEMS_TARGET, Elem, Leaf, all_leaves, elem, gateways, matches,
                         path_text)
from .optical_state import OpticalState

log = logging.getLogger("dcilab.gnmi")

GNMI_VERSION = "0.8.0"
DEFAULT_SAMPLE_S = 1.0
MIN_SAMPLE_S = 0.1
_MODELS = (("openconfig-platform", "0.24.0"), ("openconfig-terminal-device", "1.9.0"),
           ("openconfig-transport-types", "0.24.0"))


class GnmiError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def to_elems(path: gnmi_pb2.Path) -> tuple[Elem, ...]:
    """A gNMI Path as elements; a module prefix on the first element ("oc-platform:x") is
    dropped, as is the origin."""
    elems = []
    for i, e in enumerate(path.elem):
        name = e.name.split(":", 1)[-1] if i == 0 else e.name
        elems.append((name, tuple(sorted(e.key.items()))))
    return tuple(elems)


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


def encode(value: object, encoding: int) -> gnmi_pb2.TypedValue:
    data = json.dumps(value).encode()
    if encoding == gnmi_pb2.Encoding.JSON_IETF:
        return gnmi_pb2.TypedValue(json_ietf_val=data)
    return gnmi_pb2.TypedValue(json_val=data)


class TransceiverServicer(gnmi_pb2_grpc.gNMIServicer):
    """Adapts gNMI requests to an `OpticalState`."""

    def __init__(self, state: OpticalState, stop: threading.Event):
        self.state = state
        self.stop = stop
        self.targets = gateways(state)

    # -- helpers ------------------------------------------------------------------------

    def _leaves(self, target: str) -> list[Leaf]:
        if target and target not in self.targets:
            raise GnmiError(grpc.StatusCode.NOT_FOUND,
                            f"unknown target {target!r}; targets are the gateways "
                            f"{', '.join(sorted(self.targets))} (or empty for all)")
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
        requests = [base + to_elems(p) for p in paths] or [base]
        return [leaf for leaf in leaves if any(matches(r, leaf.path) for r in requests)]

    @staticmethod
    def _notifications(leaves: Sequence[Leaf], encoding: int) -> list[gnmi_pb2.Notification]:
        now = time.time_ns()
        by_target: dict[str, list[Leaf]] = {}
        for leaf in leaves:
            by_target.setdefault(leaf.target, []).append(leaf)
        return [gnmi_pb2.Notification(
            timestamp=now, prefix=gnmi_pb2.Path(target=target),
            update=[gnmi_pb2.Update(path=to_path(leaf.path), val=encode(leaf.value, encoding))
                    for leaf in group]) for target, group in by_target.items()]

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
            leaves = self._select(request.prefix, request.path)
            if not leaves:
                raise GnmiError(grpc.StatusCode.NOT_FOUND, "no data at " + ", ".join(
                    path_text(to_elems(request.prefix) + to_elems(p)) for p in request.path))
        except GnmiError as exc:
            self._abort(context, exc)
        return gnmi_pb2.GetResponse(notification=self._notifications(leaves, encoding))

    def Set(self, request, context):
        results = []
        done: list[tuple] = []              # log lines, said once the whole Set is taken
        try:
            with self.state.transaction():            # all of it, or nothing
                for path in request.delete:
                    results.append(self._delete(request.prefix, path))
                for update in list(request.replace) + list(request.update):
                    results.append(self._update(request.prefix, update, done))
            for line in done:
                log.info(*line)
        except GnmiError as exc:
            self._abort(context, exc)
        except OpticsError as exc:
            self._abort(context, GnmiError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)))
        return gnmi_pb2.SetResponse(prefix=request.prefix, response=results,
                                    timestamp=time.time_ns())

    def _update(self, prefix: gnmi_pb2.Path, update: gnmi_pb2.Update,
                done: list[tuple]) -> gnmi_pb2.UpdateResult:
        elems = to_elems(prefix) + to_elems(update.path)
        value = decode(update.val)
        names = [name for name, _ in elems]
        keys = [dict(k) for _, k in elems]
        target = prefix.target or update.path.target
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
            self._line_system_update(elems, value, where, done)
        else:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{where} is not writable; writable: components/component[name=W]/"
                            f"optical-channel/config/operational-mode and line-systems/...")
        return gnmi_pb2.UpdateResult(path=update.path, op=gnmi_pb2.UpdateResult.UPDATE)

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
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {value!r} is not a number")
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
        if [name for name, _ in elems] != ["line-systems", "line-system"]:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{path_text(elems)}: only /line-systems/line-system[name=L] can be "
                            f"deleted (restores it as designed)")
        self.state.restore(dict(elems[1][1]).get("name", ""))
        return gnmi_pb2.UpdateResult(path=path, op=gnmi_pb2.UpdateResult.DELETE)

    def Subscribe(self, request_iterator, context):
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        try:
            if not first.HasField("subscribe"):
                raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                                "the first SubscribeRequest must carry a subscription list")
            yield from self._subscribe(first.subscribe, context)
        except GnmiError as exc:
            self._abort(context, exc)

    def _subscribe(self, sub: gnmi_pb2.SubscriptionList, context) -> Iterator:
        encoding = self._encoding(sub.encoding)
        mode = sub.mode
        if mode == gnmi_pb2.SubscriptionList.POLL:
            raise GnmiError(grpc.StatusCode.UNIMPLEMENTED, "POLL is not served; use STREAM or ONCE")
        subscriptions = list(sub.subscription) or [gnmi_pb2.Subscription()]
        self._select(sub.prefix, [s.path for s in subscriptions])   # validates the target

        def send(leaves):
            for notification in self._notifications(leaves, encoding):
                yield gnmi_pb2.SubscribeResponse(update=notification)

        initial = self._select(sub.prefix, [s.path for s in subscriptions])
        yield from send(initial)
        yield gnmi_pb2.SubscribeResponse(sync_response=True)
        if mode == gnmi_pb2.SubscriptionList.ONCE:
            return
        done = threading.Event()
        context.add_callback(done.set)
        intervals = []
        for s in subscriptions:
            if s.mode == gnmi_pb2.SubscriptionMode.ON_CHANGE:
                intervals.append(None)
            else:
                seconds = s.sample_interval / 1e9 if s.sample_interval else DEFAULT_SAMPLE_S
                intervals.append(max(MIN_SAMPLE_S, seconds))
        last = {(leaf.target, leaf.path): leaf.value for leaf in initial}
        start = time.monotonic()
        due = [start + (i if i else 0.0) for i in intervals]
        while not done.is_set() and not self.stop.is_set():
            now = time.monotonic()
            wake = min(d if i else now + 0.5 for d, i in zip(due, intervals))
            if done.wait(max(0.0, wake - now)) or self.stop.is_set():
                break
            now = time.monotonic()
            out: dict[tuple, Leaf] = {}
            current = self._leaves(sub.prefix.target)          # one snapshot per wake-up
            for k, (s, interval) in enumerate(zip(subscriptions, intervals)):
                leaves = self._select(sub.prefix, [s.path], current)
                if interval is None:
                    leaves = [l for l in leaves if last.get((l.target, l.path)) != l.value]
                elif now >= due[k]:
                    due[k] += interval * max(1, int((now - due[k]) // interval) + 1)
                else:
                    continue
                for leaf in leaves:
                    out[(leaf.target, leaf.path)] = leaf
            if out:
                last.update({key: leaf.value for key, leaf in out.items()})
                yield from send(list(out.values()))


def _whole_number(value: object, where: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"{where}: expected a whole number, got {value!r}")
    return value


def serve_gnmi(state: OpticalState, address: str = "127.0.0.1:0", max_workers: int = 16):
    """Start a gNMI server on `address` for `state`; return (server, bound port, stop event).

    Port 0 binds a free port. Each open subscription holds a worker thread. Stop with
    `stop.set(); server.stop(grace)`.
    """
    stop = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="gnmi"))
    gnmi_pb2_grpc.add_gNMIServicer_to_server(TransceiverServicer(state, stop), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen for gNMI on {address}")
    server.start()
    log.debug("gNMI for %d transceivers on %s", len(state.transceivers),
             address.rsplit(":", 1)[0] + f":{port}")
    return server, port, stop


__all__ = ["GnmiError", "LINE_SYSTEMS_TARGET", "TransceiverServicer", "elem", "serve_gnmi"]
