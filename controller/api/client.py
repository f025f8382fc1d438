"""A small dcilab.v1 client for the CLI and the API bench.

Errors come out as two exceptions with one-line messages, never a gRPC traceback:
`Unreachable` (no server there, TLS handshake failed, deadline passed) and `ApiError` (the
server answered with a refusal: its status code name and its human message).
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import grpc
from google.protobuf import json_format

from .v1 import fabric_pb2 as fpb
from .v1 import fabric_pb2_grpc
from .v1 import path_pb2 as ppb
from .v1 import path_pb2_grpc
from .wire import duration

DEFAULT_SERVER = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 10.0
# A read the server's budget refuses is retried as told, each wait at most MAX_READ_WAIT_S,
# for this long in all: readers sharing one address take turns rather than give up.
READ_PATIENCE_S = 60.0
MAX_READ_WAIT_S = 5.0
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Unreachable(Exception):
    pass


class ApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code           # e.g. RESOURCE_EXHAUSTED
        self.message = message


def as_dict(message) -> dict:
    """A message as JSON-ready dict, field names as in the .proto, defaults included."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


@contextlib.contextmanager
def _carried(field: str, value):
    """ValueError naming `field` for a value its protobuf type cannot hold."""
    try:
        yield
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field} {value!r} cannot be sent in a request: out of the "
                         f"field's range") from None


MAX_REPLY_BYTES = 64 << 20


class Client:
    def __init__(self, server: str = DEFAULT_SERVER, *, token: str | None = None,
                 tls: bool = False, ca: bytes | None = None, cert: bytes | None = None,
                 key: bytes | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 read_patience: float = READ_PATIENCE_S):
        """`tls` (or `ca`) for TLS; `ca` None trusts the system roots; `cert` and `key`
        present a client certificate (mutual TLS). `timeout` bounds each call;
        `read_patience` bounds a read in all, with the waits the server's read budget asks."""
        self.server = server
        self.timeout = timeout
        self.read_patience = read_patience
        self.read_retries = 0          # reads the server's read budget made wait
        self.on_read_wait = lambda seconds: None    # told before each such wait
        # Its own connection (gRPC shares them between channels by default), so that one
        # Client's watch stream never holds up another's calls. The server bounds reads and
        # streams per client address: every Client on a host shares those.
        options = [("grpc.use_local_subchannel_pool", 1),
                   # ListLinks and GetFabric answer in one message: past gRPC's default 4 MB
                   # from about 35 000 links, 8 MB at the fabric file's 65 536.
                   ("grpc.max_receive_message_length", MAX_REPLY_BYTES)]
        self.tls, self.client_cert = bool(tls or ca or cert), bool(cert)
        if self.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                                 certificate_chain=cert)
            self.channel = grpc.secure_channel(server, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(server, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.fabric_stub = fabric_pb2_grpc.FabricServiceStub(self.channel)
        self.path_stub = path_pb2_grpc.PathServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method, request, mutating: bool = False):
        try:
            return method(request, timeout=self.timeout,
                          metadata=self._metadata if mutating else None)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def _read(self, method, request):
        """A read call, waited for and retried when the server's read budget says so
        (RESOURCE_EXHAUSTED with `retry-after-s`), for up to `read_patience` in all."""
        deadline = time.monotonic() + self.read_patience
        while True:
            try:
                return method(request, timeout=max(0.001, min(self.timeout,
                                                              deadline - time.monotonic())))
            except grpc.RpcError as exc:
                self._wait_as_told(exc, deadline)

    def _wait_as_told(self, exc: grpc.RpcError, deadline: float) -> None:
        """Wait as a read refused by the budget is told to, if it may still be asked
        again before `deadline`; else raise the call's error."""
        wait = dict(exc.trailing_metadata() or ()).get("retry-after-s")
        if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or wait is None:
            raise self._error(exc) from None
        wait = min(float(wait), MAX_READ_WAIT_S)
        if time.monotonic() + wait > deadline:
            raise self._error(exc) from None
        self.read_retries += 1
        self.on_read_wait(wait)
        time.sleep(wait)

    def wait_connected(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Until the channel is connected (no call made); Unreachable if not in time."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise Unreachable(f"cannot reach {self.server} within {timeout_s:g} s") from None

    def _error(self, exc: grpc.RpcError) -> Exception:
        code, details = exc.code(), exc.details() or ""
        answered = any(k == "dcilab-state-file-error"
                       for k, _ in (exc.trailing_metadata() or ()))
        if code in _UNREACHABLE and not answered:
            details = " ".join(details.split()).removesuffix(": OK")   # OpenSSL's "no error"
            # A deadline may pass on a server that got the call (a re-tester read "cannot
            # reach" for a call that was booked): said as what is known.
            what = (f"no answer from dcilab controller at {self.server} within "
                    f"{self.timeout:g} s (it may not be reachable, or be busy)"
                    if code == grpc.StatusCode.DEADLINE_EXCEEDED
                    else f"cannot reach dcilab controller at {self.server}")
            return Unreachable(f"{what}: {details or code.name}{self._tls_hint(details)}")
        return ApiError(code.name, details or code.name.lower().replace("_", " "))

    def _tls_hint(self, details: str) -> str:
        """What a TLS mismatch most likely is: gRPC says only "Socket closed" for a
        plaintext client at a TLS server, or a TLS client without the certificate a
        mutual-TLS server asks for (or with one it does not accept)."""
        if "Socket closed" in details:
            if not self.tls:
                return ("; if the server serves TLS, connect with TLS (--tls-ca CA.pem), and "
                        "if it asks for client certificates, give --tls-cert and --tls-key")
            return ("; if the server asks for client certificates (mutual TLS), it may not "
                    "accept this one (another CA's, or expired)" if self.client_cert else
                    "; if the server asks for client certificates (mutual TLS), give "
                    "--tls-cert and --tls-key")
        if "Hostname Verification Check failed" in details:
            host = self.server.rpartition(":")[0] or self.server
            return (f"; the server's certificate does not name {host}: connect by a name or "
                    f"address it lists (`openssl s_client -connect {self.server} </dev/null "
                    f"| openssl x509 -noout -ext subjectAltName` shows them)")
        if "certificate has expired" in details:
            return "; the server's certificate (or one of its chain) has expired: renew it"
        if "handshake failed" in details.lower():
            return ("; the server's certificate is not one the CA given (--tls-ca, or the "
                    "system's) vouches for, or the server does not serve TLS")
        return ""

    # -- paths ---------------------------------------------------------------------------

    def reserve(self, src: str, dst: str, gbps: float, max_latency_ms: float | None = None,
                duration_s: float = 0.0, request_id: str = "",
                priority: int = 0, selector: ppb.TrafficSelector | None = None,
                protection: str = "") -> ppb.Reservation:
        """`protection`: NONE, RESTORABLE or PROTECTED; empty: the server's default.
        ValueError naming the field for a value the request cannot carry (a duration
        beyond a protobuf Duration, a priority beyond int32, an unknown protection)."""
        request = ppb.ReservePathRequest(src_host=src, dst_host=dst, bandwidth_gbps=gbps,
                                         request_id=request_id, selector=selector)
        if protection and f"PROTECTION_{protection}" not in ppb.Protection.keys():
            raise ValueError(f"protection must be NONE, RESTORABLE or PROTECTED, got "
                             f"{protection!r}")
        if protection:
            request.protection = ppb.Protection.Value(f"PROTECTION_{protection}")
        with _carried("priority", priority):
            request.priority = priority
        if max_latency_ms is not None:
            with _carried("max_latency_ms", max_latency_ms):
                request.max_latency_ms = max_latency_ms
        if duration_s:
            with _carried("duration_s", duration_s):
                request.duration.CopyFrom(duration(duration_s))
        return self._call(self.path_stub.ReservePath, request, mutating=True).reservation

    def release(self, reservation_id: str) -> ppb.Reservation:
        return self._call(self.path_stub.ReleasePath,
                          ppb.ReleasePathRequest(reservation_id=reservation_id),
                          mutating=True).reservation

    def get(self, reservation_id: str) -> ppb.Reservation:
        return self._read(self.path_stub.GetReservation,
                          ppb.GetReservationRequest(reservation_id=reservation_id)).reservation

    def reservations(self, state: str | None = None, show_ended: bool = False,
                     page_size: int = 0) -> list[ppb.Reservation]:
        """Every reservation (of `state`; live ones only unless `show_ended`), page by
        page."""
        return [r for page in self.reservation_pages(state, show_ended, page_size)
                for r in page]

    def reservation_pages(self, state: str | None = None, show_ended: bool = False,
                          page_size: int = 0) -> Iterator[list[ppb.Reservation]]:
        """ListReservations, following next_page_token to the last page."""
        value = ppb.ReservationState.Value(f"RESERVATION_STATE_{state.upper()}") if state else 0
        token = ""
        while True:
            reply = self._read(self.path_stub.ListReservations, ppb.ListReservationsRequest(
                state=value, show_ended=show_ended, page_size=page_size, page_token=token))
            yield list(reply.reservations)
            token = reply.next_page_token
            if not token:
                return

    def watch_reservations(self, reservation_id: str = "") -> Iterator[ppb.Reservation]:
        """Each reservation as it is now, then every change, until the caller stops. A
        watch the read budget refuses (its opening costs as a lookup or a listing) is
        asked again as told, as `_read` does."""
        request = ppb.WatchReservationsRequest(reservation_id=reservation_id)
        deadline = time.monotonic() + self.read_patience
        while True:
            stream = self.path_stub.WatchReservations(request)
            try:
                first = next(stream)
            except StopIteration:
                return
            except grpc.RpcError as exc:
                stream.cancel()
                self._wait_as_told(exc, deadline)
                continue
            yield first.reservation
            yield from self._stream(stream, lambda update: update.reservation)
            return

    def _stream(self, stream, pick):
        try:
            for update in stream:
                yield pick(update)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise self._error(exc) from None
        finally:
            stream.cancel()

    # -- fabric --------------------------------------------------------------------------

    def fabric(self) -> fpb.Fabric:
        return self._read(self.fabric_stub.GetFabric, fpb.GetFabricRequest()).fabric

    def links(self, kind: str | None = None, site: str = "") -> list[fpb.LinkLoad]:
        request = fpb.ListLinksRequest(kind=_kind(kind), site=site)
        return list(self._read(self.fabric_stub.ListLinks, request).link_loads)

    def elephants(self, site: str = "") -> fpb.ListElephantsResponse:
        """The policy and every elephant the controller knows, with its pinned hops."""
        return self._read(self.fabric_stub.ListElephants, fpb.ListElephantsRequest(site=site))

    def watch_links(self, interval_s: float, kind: str | None = None,
                    site: str = "") -> Iterator[fpb.WatchLinkLoadResponse]:
        """Updates until the caller stops iterating (which cancels the stream)."""
        request = fpb.WatchLinkLoadRequest(interval=duration(interval_s),
                                           kind=_kind(kind), site=site)
        stream = self.fabric_stub.WatchLinkLoad(request)   # no deadline: it runs until cancelled
        yield from self._stream(stream, lambda update: update)


def state_name(res: ppb.Reservation) -> str:
    """PENDING, ACTIVE, DEGRADED, RELEASED or EXPIRED."""
    return ppb.ReservationState.Name(res.state).removeprefix("RESERVATION_STATE_")


def _kind(kind: str | None) -> int:
    return fpb.LinkKind.Value(f"LINK_KIND_{kind.upper()}") if kind else 0

