"""The gRPC server: dcilab.v1 services, health checking and reflection, optional TLS (and
mutual TLS) and an optional bearer token for the calls that change state.

    server, port = create_server(service, "127.0.0.1:0")   # bound and started
    ...
    server.stop(grace=5).wait()                             # graceful stop

Read calls stay open with a token configured: the token protects who may book capacity,
not who may look at the fabric. Use TLS whenever a token is used beyond localhost, or the
token crosses the network in clear.
"""

from __future__ import annotations

import hmac
import logging
import ssl
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from .defaults import DEFAULT_WATCH_STREAMS, DEFAULT_WORKERS
from .servicers import FabricServicer, PathServicer, ReadBudget, Streams, _open_stream
from .tls import ServerError, certificate_dates_problem, client_ca_problem, no_passphrase, read_pem
from .v1 import fabric_pb2, fabric_pb2_grpc, path_pb2, path_pb2_grpc

log = logging.getLogger("dcilab.api")
SERVICE_NAMES = (fabric_pb2.DESCRIPTOR.services_by_name["FabricService"].full_name,
                 path_pb2.DESCRIPTOR.services_by_name["PathService"].full_name)
MUTATING_METHODS = frozenset({"/dcilab.v1.PathService/ReservePath",
                              "/dcilab.v1.PathService/ReleasePath"})
DEFAULT_GRACE_S = 5.0
@dataclass(frozen=True)
class TlsConfig:
    """PEM bytes. With `client_ca`, clients must present a certificate signed by it."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: str | Path, key: str | Path,
                   client_ca: str | Path | None = None) -> "TlsConfig":
        config = cls(read_pem(cert, "TLS certificate"), read_pem(key, "TLS key"),
                     read_pem(client_ca, "TLS client CA") if client_ca else None)
        # gRPC would only say "Failed to bind to address" for a bad certificate or key:
        # check them here, with OpenSSL, and say which file is wrong.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key, password=no_passphrase)
        except ssl.SSLError as exc:
            raise ServerError(f"TLS certificate {cert} and key {key} are not a usable PEM "
                              f"certificate chain and its private key ({exc.reason or exc})"
                              ) from None
        problem = certificate_dates_problem(config.cert_chain, cert)
        if problem:
            raise ServerError(problem)
        if client_ca:
            try:
                context.load_verify_locations(cafile=str(client_ca))
            except (ssl.SSLError, ValueError) as exc:
                raise ServerError(f"TLS client CA {client_ca} is not a PEM certificate "
                                  f"({getattr(exc, 'reason', None) or exc})") from None
            problem = client_ca_problem(config.client_ca, client_ca)
            if problem:
                raise ServerError(problem)
        return config

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)], root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """UNAUTHENTICATED for a mutating call without `authorization: Bearer <token>`."""

    def __init__(self, token: str, methods=MUTATING_METHODS, on_deny=None):
        self._expected = token.encode()
        self._methods = methods
        self._on_deny = on_deny or (lambda: None)    # counted, so token guessing shows

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method not in self._methods:
            return continuation(handler_call_details)
        given = [v for k, v in (handler_call_details.invocation_metadata or ())
                 if k == "authorization"]
        if not given:
            self._on_deny()
            return _deny(f"{handler_call_details.method.rsplit('/', 1)[-1]} needs "
                         f"'authorization: Bearer <token>' metadata")
        value = given[0].encode() if isinstance(given[0], str) else given[0]
        scheme, _, credentials = value.partition(b" ")
        # The scheme is case-insensitive (RFC 7235 section 2.1); the token is not.
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials, self._expected):
            self._on_deny()
            return _deny("the bearer token was not accepted")
        return continuation(handler_call_details)


def _deny(message: str) -> grpc.RpcMethodHandler:
    def abort(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
    return grpc.unary_unary_rpc_method_handler(abort)


class _Malformed:
    """What a request body that is not the method's message parses to."""

    def __init__(self, why: str):
        self.why = why


class _Registrar:
    """Stands in for the grpc.Server that the generated add_*Servicer_to_server functions
    register on, and registers their handlers with a request parser that never raises: a
    body that is not the request message is answered INVALID_ARGUMENT by the handler
    (gRPC's own answer is INTERNAL and a traceback in the log for every such call, a way
    for any client to fill the controller's log)."""

    def __init__(self, server: grpc.Server, on_malformed):
        self._server = server
        self._on_malformed = on_malformed
        self._generic: list = []

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._generic.extend(handlers)      # replaced by add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        tolerant = {name: self._tolerant(f"{service}/{name}", h) for name, h in handlers.items()}
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, tolerant),))
        self._server.add_registered_method_handlers(service, tolerant)
        self._generic.clear()

    def finish(self) -> None:
        """Generated code that registers generic handlers only: register them as they are."""
        if self._generic:
            self._server.add_generic_rpc_handlers(tuple(self._generic))

    def _tolerant(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.request_streaming:
            return handler
        parse = handler.request_deserializer
        behaviour = handler.unary_unary or handler.unary_stream
        on_malformed = self._on_malformed

        def parse_or_say_why(data: bytes):
            try:
                return parse(data)
            except Exception as exc:         # DecodeError, or anything else a parser raises
                return _Malformed(str(exc) or type(exc).__name__)

        def guarded(request, context):
            if isinstance(request, _Malformed):
                on_malformed()
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"the request body is not a {method.rsplit('/', 1)[-1]} request "
                              f"message: {request.why[:64]}")
            return behaviour(request, context)
        kind = "unary_unary" if handler.unary_unary else "unary_stream"
        return handler._replace(request_deserializer=parse_or_say_why, **{kind: guarded})


class ApiServer:
    """A started grpc.Server with the pieces a graceful stop needs."""

    def __init__(self, server: grpc.Server, health_servicer: health.HealthServicer,
                 streams: Streams, port: int):
        self.grpc_server = server
        self.health = health_servicer
        self.streams = streams
        self.port = port

    def stop(self, grace: float | None = DEFAULT_GRACE_S) -> threading.Event:
        """Report NOT_SERVING, end the watch streams, refuse new calls, let the calls in
        flight finish for up to `grace` seconds, then cancel them. Returns an Event set
        when everything has stopped."""
        self.health.enter_graceful_shutdown()
        self.streams.close()
        return self.grpc_server.stop(grace)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self.grpc_server.wait_for_termination(timeout)


class _BoundedReflection(reflection.ReflectionServicer):
    """Server reflection (grpcurl's), its streams counted with the watch streams: each
    holds a server thread while open, and sixteen idle ones took every thread ReservePath
    had (an outside reviewer)."""

    def __init__(self, names, service, streams: Streams):
        super().__init__(names)
        self._service, self._streams = service, streams

    def ServerReflectionInfo(self, request_iterator, context):
        wake = _open_stream(self._streams, self._service, context)
        try:
            yield from super().ServerReflectionInfo(request_iterator, context)
        finally:
            self._streams.done(wake)


def create_server(service, address: str = "127.0.0.1:0", tls: TlsConfig | None = None,
                  token: str | None = None, max_workers: int = DEFAULT_WORKERS,
                  max_watch_streams: int = DEFAULT_WATCH_STREAMS,
                  read_budget: ReadBudget | None = None
                  ) -> tuple[ApiServer, int]:
    """Serve `service` (a ControllerService) on `address`; returns the started server and
    the port it bound (useful with port 0). Read calls spend from `read_budget` (default:
    ReadBudget()); watch streams (WatchLinkLoad, WatchReservations) are `max_watch_streams`
    at most, half of them per client address, each on a thread of its own beyond the
    `max_workers` that serve calls."""
    observer = getattr(service, "observer", None)
    on_deny = ((lambda: observer.request_refused("unauthenticated"))
               if observer is not None else None)
    interceptors = [BearerTokenInterceptor(token, on_deny=on_deny)] if token else []
    budget = read_budget if read_budget is not None else ReadBudget()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers + max_watch_streams,
                                   thread_name_prefix="dcilab-grpc"),
        interceptors=interceptors,
        # Without this, a second server on the same port would silently share it.
        options=[("grpc.so_reuseport", 0)])
    streams = Streams(max_watch_streams)
    registrar = _Registrar(server, (lambda: observer.request_refused("invalid"))
                           if observer is not None else (lambda: None))
    fabric_pb2_grpc.add_FabricServiceServicer_to_server(
        FabricServicer(service, streams, budget), registrar)
    path_pb2_grpc.add_PathServiceServicer_to_server(PathServicer(service, budget, streams),
                                                    registrar)
    registrar.finish()
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(_BoundedReflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), service, streams), server)
    try:
        port = (server.add_secure_port(address, tls.credentials()) if tls
                else server.add_insecure_port(address))
    except RuntimeError as exc:
        raise ServerError(f"cannot listen for gRPC on {address}: {exc}") from None
    if port == 0:
        raise ServerError(f"cannot listen for gRPC on {address}: address in use or invalid")
    server.start()
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return ApiServer(server, health_servicer, streams, port), port
