"""dcilab.v1 servicers: each method turns a request into one ControllerService call and its
answer (or AdmissionError) into a response (or a status code with the human message)."""

from __future__ import annotations

import threading
import time

import grpc

from ..te.reservations import AdmissionError
from . import convert
from .v1 import fabric_pb2 as fpb
from .v1 import fabric_pb2_grpc
from .v1 import path_pb2 as ppb
from .v1 import path_pb2_grpc

STATUS = {AdmissionError.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
          AdmissionError.EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
          AdmissionError.NOT_FOUND: grpc.StatusCode.NOT_FOUND}

DEFAULT_INTERVAL_S = 1.0
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 3600.0


def _abort(context: grpc.ServicerContext, exc: AdmissionError):
    context.abort(STATUS.get(exc.code, grpc.StatusCode.UNKNOWN), exc.message)


def _answer(context: grpc.ServicerContext, call, *args):
    """The service's answer, or the call aborted with the status its refusal maps to."""
    try:
        return call(*args)
    except AdmissionError as exc:
        _abort(context, exc)


class Streams:
    """The open Watch* streams: bounded in number (each holds a server thread), and
    woken to end at once when the server stops."""

    def __init__(self, limit: int):
        self._slots = threading.BoundedSemaphore(limit)
        self.limit = limit
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._wakes: set[threading.Event] = set()

    def open(self) -> threading.Event | None:
        if self.closed.is_set() or not self._slots.acquire(blocking=False):
            return None
        wake = threading.Event()
        with self._lock:
            self._wakes.add(wake)
        return wake

    def done(self, wake: threading.Event) -> None:
        with self._lock:
            self._wakes.discard(wake)
        self._slots.release()

    def close(self) -> None:
        self.closed.set()
        with self._lock:
            for wake in self._wakes:
                wake.set()


def _open_stream(streams: Streams, context) -> threading.Event:
    wake = streams.open()
    if wake is None:
        if streams.closed.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the server is stopping")
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                      f"this server serves at most {streams.limit} watch streams at once")
    return wake


class FabricServicer(fabric_pb2_grpc.FabricServiceServicer):
    def __init__(self, service, streams: Streams):
        self.service = service
        self.streams = streams

    def GetFabric(self, request, context):
        return fpb.GetFabricResponse(
            fabric=convert.fabric(self.service.fabric, self.service.switch_status()))

    def _loads(self, kind: int, site: str) -> list[fpb.LinkLoad]:
        return [convert.link_load(l) for l in self.service.link_loads()
                if (not kind or convert.LINK_KIND[l.kind] == kind)
                and (not site or site in (l.site_a, l.site_b))]

    def _check_filter(self, request, context) -> None:
        if request.kind and request.kind not in convert.LINK_KIND_NAME:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown link kind {request.kind}")
        if request.site and request.site not in {s.name for s in self.service.fabric.sites}:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"site: fabric {self.service.fabric.name!r} has no site "
                          f"{request.site!r}")

    def ListLinks(self, request, context):
        self._check_filter(request, context)
        return fpb.ListLinksResponse(link_loads=self._loads(request.kind, request.site))

    def WatchLinkLoad(self, request, context):
        self._check_filter(request, context)
        interval = (request.interval.ToNanoseconds() / 1e9 if request.HasField("interval")
                    else DEFAULT_INTERVAL_S)
        if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"interval must be between {MIN_INTERVAL_S:g} s and "
                          f"{MAX_INTERVAL_S:g} s, got {interval:g} s")
        wake = _open_stream(self.streams, context)
        try:
            context.add_callback(wake.set)      # the client cancelled or went away
            while context.is_active() and not self.streams.closed.is_set():
                now = time.time()
                yield fpb.WatchLinkLoadResponse(
                    time=convert.timestamp(now),
                    link_loads=self._loads(request.kind, request.site))
                wake.wait(interval)
        finally:
            self.streams.done(wake)


class PathServicer(path_pb2_grpc.PathServiceServicer):
    def __init__(self, service, streams: Streams | None = None):
        self.service = service
        self.streams = streams or Streams(16)

    def WatchReservations(self, request, context):
        if request.reservation_id:
            _answer(context, self.service.get, request.reservation_id)   # NOT_FOUND early
        wake = _open_stream(self.streams, context)
        try:
            context.add_callback(wake.set)
            with self.service.watch(request.reservation_id) as watch:
                while context.is_active() and not self.streams.closed.is_set():
                    for res in watch.drain():
                        yield ppb.WatchReservationsResponse(reservation=convert.reservation(res))
                    if watch.overflowed:
                        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      "this client fell too far behind; watch again")
                    watch.wait(wake, timeout=1.0)
        finally:
            self.streams.done(wake)

    def ReservePath(self, request, context):
        res = _answer(context, self.service.reserve, convert.reservation_request(request))
        return ppb.ReservePathResponse(reservation=convert.reservation(res))

    def ReleasePath(self, request, context):
        res = _answer(context, self.service.release, request.reservation_id)
        return ppb.ReleasePathResponse(reservation=convert.reservation(res))

    def GetReservation(self, request, context):
        res = _answer(context, self.service.get, request.reservation_id)
        return ppb.GetReservationResponse(reservation=convert.reservation(res))

    def ListReservations(self, request, context):
        if request.state and request.state not in convert.STATE_OF:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"unknown reservation state {request.state}")
        state = convert.STATE_OF.get(request.state)
        return ppb.ListReservationsResponse(
            reservations=[convert.reservation(r) for r in self.service.list(state)])
