"""The controller's gNMI client for the fabric's ZR transceivers.

It subscribes (STREAM, SAMPLE every second) to every transceiver's optical-channel and OTN
state, keeps the latest reading per wavelength and gateway, and changes a wavelength's mode
with gNMI Set on `operational-mode` at both ends. It knows the transceivers only through
the protocol: wavelengths are the components' names, gateways the notifications' targets,
and mode ids are learnt from /terminal-device/operational-modes. A dropped stream is
re-opened with backoff, so the controller may start before the emulation.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import grpc
from pygnmi.spec.v080 import gnmi_pb2, gnmi_pb2_grpc

log = logging.getLogger("dcilab.gnmi")

SAMPLE_INTERVAL_NS = 1_000_000_000
MAX_BACKOFF_S = 2.0
_SUBSCRIBED = (
    "/components/component/optical-channel/state",
    "/terminal-device/logical-channels/channel/state",
    "/terminal-device/logical-channels/channel/logical-channel-assignments",
    "/terminal-device/logical-channels/channel/otn/state",
)
# "400ZR+ 300G: DP-8QAM, 60.1385 GBd, oFEC", as the emulation describes its modes.
_MODE_DESCRIPTION = re.compile(r"^(?P<module>\S+) (?P<mode>[^:]+):[^,]*, (?P<baud>[\d.]+) GBd")


class GnmiClientError(RuntimeError):
    pass


@dataclass(frozen=True)
class GnmiSecurity:
    """How to reach a device's gNMI server that asks for it: TLS with the CA that signed
    its certificate (and, for mutual TLS, our certificate and key), PEM bytes; a username
    and password, sent as gNMI's `username`/`password` metadata on every call (only with
    TLS: they would cross the network in clear). The emulation's agent takes neither."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    username: str | None = None
    password: str | None = None

    def channel(self, address: str, options: list) -> grpc.Channel:
        if self.ca is None:
            return grpc.insecure_channel(address, options=options)
        credentials = grpc.ssl_channel_credentials(self.ca, self.key, self.cert)
        return grpc.secure_channel(address, credentials, options=options)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self.username is None:
            return ()
        return (("username", self.username), ("password", self.password or ""))


@dataclass(frozen=True)
class TransceiverReading:
    """The latest state one gateway reports for one wavelength."""

    wavelength: str
    gateway: str
    mode_id: int | None = None
    frequency_mhz: int | None = None
    osnr_db: float | None = None
    prefec_ber: float | None = None
    q_db: float | None = None
    esnr_db: float | None = None
    link_up: bool | None = None
    timestamp_ns: int = 0


@dataclass
class _Gateway:
    channels: dict[int, str] = field(default_factory=dict)     # logical channel -> wavelength
    pending: dict[int, dict[str, object]] = field(default_factory=dict)


_KEY = re.compile(r"\[([^=\]]+)=([^\]]*)\]")


def _path(text: str) -> gnmi_pb2.Path:
    """'/a/b[k=v]/c' as a gNMI Path (values must not contain '/' or ']')."""
    elems = []
    for part in filter(None, text.split("/")):
        elems.append(gnmi_pb2.PathElem(name=part.split("[", 1)[0], key=dict(_KEY.findall(part))))
    return gnmi_pb2.Path(elem=elems)


def _value(value: gnmi_pb2.TypedValue) -> object:
    kind = value.WhichOneof("value")
    raw = getattr(value, kind) if kind else None
    if kind in ("json_val", "json_ietf_val"):
        return json.loads(raw)
    return raw


class TransceiverClient:
    """Subscribes to one gNMI server (the emulation's, or a device's) and keeps its state."""

    def __init__(self, address: str, on_update: Callable[[TransceiverReading], None] | None = None,
                 timeout_s: float = 5.0, security: GnmiSecurity | None = None):
        self.address = address
        security = security or GnmiSecurity()
        self._metadata = security.metadata
        self.timeout_s = timeout_s
        self.on_update = on_update
        self.lock = threading.Lock()
        self._readings: dict[tuple[str, str], TransceiverReading] = {}
        # (wavelength, gateway) -> the fields the notification being read has set
        self._sampled: dict[tuple[str, str], set[str]] = {}
        self._gateways: dict[str, _Gateway] = {}
        self._modes: dict[int, tuple[str, str]] = {}      # id -> (module, mode)
        self._baud: dict[int, float] = {}                 # id -> GBd
        self._mode_changes: dict[str, int] = {}
        self._wavelength_mode: dict[str, int] = {}
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._call = None
        # gRPC's own reconnect backoff grows to 2 minutes; the emulation may start after
        # the controller, so keep retries within a second or two.
        self._channel = security.channel(address, options=[
            ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 1000)])
        self._stub = gnmi_pb2_grpc.gNMIStub(self._channel)
        self._thread: threading.Thread | None = None

    # -- what the controller reads ------------------------------------------------------

    def readings(self) -> dict[tuple[str, str], TransceiverReading]:
        """The latest reading of every transceiver, by (wavelength, gateway)."""
        with self.lock:
            return dict(self._readings)

    def wavelength(self, name: str) -> list[TransceiverReading]:
        with self.lock:
            return [r for (w, _), r in self._readings.items() if w == name]

    def mode_changes(self) -> dict[str, int]:
        """How often each wavelength's mode (agreed by both ends) was seen to change."""
        with self.lock:
            return dict(self._mode_changes)

    def gsnr_db(self, reading: TransceiverReading) -> float | None:
        """GSNR in the signal bandwidth, from the reported OSNR (0.1 nm) and the symbol
        rate of the reported mode: GSNR = OSNR − 10·log10(baud / 12.5 GHz)."""
        with self.lock:
            baud = self._baud.get(reading.mode_id) if reading.mode_id is not None else None
        if baud is None or reading.osnr_db is None:
            return None
        return reading.osnr_db - 10.0 * math.log10(baud / 12.5)

    def mode_name(self, mode_id: int | None) -> tuple[str, str] | None:
        """(module, mode) of an operational-mode id, as the device describes it."""
        with self.lock:
            return self._modes.get(mode_id) if mode_id is not None else None

    # -- changing a mode ----------------------------------------------------------------

    def set_mode(self, wavelength: str, mode: str) -> int:
        """Set `wavelength`'s transceivers at both ends to `mode` (e.g. "300G"); returns the
        operational-mode id used. Raises GnmiClientError with the device's reason."""
        ends = self.wavelength(wavelength)
        if not ends:
            raise GnmiClientError(f"no transceiver reports wavelength {wavelength!r}")
        self._learn_modes()
        current = next((e.mode_id for e in ends if e.mode_id is not None), None)
        module = self.mode_name(current)[0] if self.mode_name(current) else None
        with self.lock:
            ids = [i for i, (mod, name) in self._modes.items()
                   if name == mode and (module is None or mod == module)]
        if not ids:
            raise GnmiClientError(f"wavelength {wavelength} ({module}) has no mode {mode!r}")
        updates = [gnmi_pb2.Update(
            path=_path(f"/components/component[name={wavelength}]/optical-channel/config/"
                       f"operational-mode"),
            val=gnmi_pb2.TypedValue(json_val=json.dumps(ids[0]).encode()))]
        for end in sorted(e.gateway for e in ends):
            request = gnmi_pb2.SetRequest(prefix=gnmi_pb2.Path(target=end), update=updates)
            try:
                self._stub.Set(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.RpcError as exc:
                raise GnmiClientError(f"gNMI Set of {wavelength} on {end} failed: "
                                      f"{exc.code().name}: {exc.details()}") from None
        log.info("set %s to %s (operational-mode %d) on %s", wavelength, mode, ids[0],
                 ", ".join(sorted(e.gateway for e in ends)))
        return ids[0]

    def _learn_modes(self) -> None:
        with self.lock:
            if self._modes:
                return
        request = gnmi_pb2.GetRequest(path=[_path("/terminal-device/operational-modes")],
                                      encoding=gnmi_pb2.Encoding.JSON)
        try:
            reply = self._stub.Get(request, timeout=self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise GnmiClientError(f"gNMI Get of operational modes failed: {exc.code().name}: "
                                  f"{exc.details()}") from None
        modes, baud = {}, {}
        for notification in reply.notification:
            for update in notification.update:
                if update.path.elem[-1].name == "description":
                    mode_id = int(update.path.elem[2].key["mode-id"])
                    found = _MODE_DESCRIPTION.match(str(_value(update.val)))
                    if found:
                        modes[mode_id] = (found["module"], found["mode"])
                        baud[mode_id] = float(found["baud"])
        with self.lock:
            self._modes, self._baud = modes, baud

    # -- the subscription ---------------------------------------------------------------

    def start(self) -> "TransceiverClient":
        self._thread = threading.Thread(target=self._run, name="gnmi-client", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._channel.close()

    def _request(self) -> gnmi_pb2.SubscribeRequest:
        return gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
            mode=gnmi_pb2.SubscriptionList.STREAM, encoding=gnmi_pb2.Encoding.JSON,
            subscription=[gnmi_pb2.Subscription(path=_path(p), mode=gnmi_pb2.SubscriptionMode.SAMPLE,
                                                sample_interval=SAMPLE_INTERVAL_NS)
                          for p in _SUBSCRIBED]))

    def _run(self) -> None:
        backoff, warned = 0.2, False
        while not self._stop.is_set():
            try:
                self._learn_modes()
                self._call = self._stub.Subscribe(iter([self._request()]),
                                                  metadata=self._metadata)
                for response in self._call:
                    if response.sync_response:
                        if not self.connected.is_set():
                            log.info("gNMI subscription to %s in sync", self.address)
                        self.connected.set()
                        backoff, warned = 0.2, False
                    elif response.HasField("update"):
                        self._notification(response.update)
            except (grpc.RpcError, GnmiClientError) as exc:
                if self._stop.is_set():
                    return
                code = exc.code().name if isinstance(exc, grpc.RpcError) else ""
                detail = exc.details() if isinstance(exc, grpc.RpcError) else str(exc)
                # once per outage at warning level; the retries that follow at debug
                (log.debug if warned else log.warning)(
                    "gNMI %s: %s; retrying every %.0f s at most", self.address,
                    f"{code}: {detail}" if code else detail, MAX_BACKOFF_S)
                warned = True
            self.connected.clear()
            self._stop.wait(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _notification(self, notification: gnmi_pb2.Notification) -> None:
        gateway = notification.prefix.target
        changed: set[tuple[str, str]] = set()
        with self.lock:
            gw = self._gateways.setdefault(gateway, _Gateway())
            self._sampled = {}
            for update in notification.update:
                key = self._apply(gw, gateway, update, notification.timestamp)
                if key:
                    changed.add(key)
            self._clear_unmeasured()
            for key in changed:
                self._count_mode_change(key[0])
            latest = [self._readings[key] for key in changed]
        if self.on_update:
            for reading in latest:
                self.on_update(reading)

    def _apply(self, gw: _Gateway, gateway: str, update: gnmi_pb2.Update,
               timestamp: int) -> tuple[str, str] | None:
        elems = update.path.elem
        names = [e.name for e in elems]
        value = _value(update.val)
        if names[:2] == ["components", "component"] and names[2:4] == ["optical-channel", "state"]:
            wavelength = elems[1].key.get("name", "")
            leaf = names[4:]
            fields = {("operational-mode",): "mode_id", ("frequency",): "frequency_mhz",
                      ("osnr", "instant"): "osnr_db"}
            name = fields.get(tuple(leaf))
            return self._set(gateway, wavelength, name, value, timestamp) if name else None
        if names[:3] == ["terminal-device", "logical-channels", "channel"]:
            index = int(elems[2].key.get("index", "0"))
            leaf = tuple(names[3:])
            if leaf == ("logical-channel-assignments", "assignment", "state", "optical-channel"):
                gw.channels[index] = str(value)
                for name, pending in gw.pending.pop(index, {}).items():
                    self._set(gateway, str(value), name, pending, timestamp)
                return None
            fields = {("otn", "state", "pre-fec-ber", "instant"): "prefec_ber",
                      ("otn", "state", "q-value", "instant"): "q_db",
                      ("otn", "state", "esnr", "instant"): "esnr_db",
                      ("state", "link-state"): "link_up"}
            name = fields.get(leaf)
            if name is None:
                return None
            if name == "link_up":
                value = value == "UP"
            wavelength = gw.channels.get(index)
            if wavelength is None:                 # its assignment comes later in the stream
                gw.pending.setdefault(index, {})[name] = value
                return None
            return self._set(gateway, wavelength, name, value, timestamp)
        return None

    def _clear_unmeasured(self) -> None:
        """A sample sends only what is measured: an optical channel sampled without its
        OSNR measures none now. Kept, the last reading stood through a loss of signal that
        came while the link was already down (an optical re-tester's). Only the OSNR: it
        shares its subtree with the operational mode, which every sample carries, while a
        target may send the OTN counters in a notification of their own."""
        for key, names in self._sampled.items():
            if "mode_id" in names and "osnr_db" not in names and key in self._readings:
                self._readings[key] = replace(self._readings[key], osnr_db=None)

    def _set(self, gateway: str, wavelength: str, name: str, value: object,
             timestamp: int) -> tuple[str, str]:
        key = (wavelength, gateway)
        self._sampled.setdefault(key, set()).add(name)
        reading = self._readings.get(key) or TransceiverReading(wavelength, gateway)
        changes = {name: value}
        if name == "link_up" and value is False and reading.link_up is not False:
            # A receiver whose link went down measures what it still can (the OSNR of light
            # it cannot decode), no more: its last readings are not kept as if current. A
            # sample sends only what is measured, so what comes after this is.
            changes.update(osnr_db=None, prefec_ber=None, q_db=None, esnr_db=None)
        self._readings[key] = replace(reading, **changes, timestamp_ns=timestamp)
        return key

    def _count_mode_change(self, wavelength: str) -> None:
        ends = [r.mode_id for (w, _), r in self._readings.items() if w == wavelength]
        if len(ends) < 2 or None in ends or len(set(ends)) != 1:
            return                                 # not yet known at both ends, or changing
        before = self._wavelength_mode.get(wavelength)
        if before is not None and before != ends[0]:
            self._mode_changes[wavelength] = self._mode_changes.get(wavelength, 0) + 1
        self._wavelength_mode[wavelength] = ends[0]


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()
