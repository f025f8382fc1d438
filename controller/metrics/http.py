"""`/metrics` over HTTP, served by the controller process on its own threads, bounded.

Fifty scrapers must not slow the calls that book capacity: the exposition is rendered at
most once per `min_interval_s` (every scraper in that window gets the same bytes, as a
Prometheus scrape interval is seconds anyway), and connections are bounded in total and
per client address; one beyond is answered 503 at once, without a thread.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .collector import FabricCollector

log = logging.getLogger("dcilab.metrics")

DEFAULT_METRICS_ADDRESS = ("127.0.0.1", 9108)
MAX_CONNECTIONS = 16
MAX_CONNECTIONS_PER_CLIENT = 8
MIN_RENDER_INTERVAL_S = 0.5


class _Handler(BaseHTTPRequestHandler):
    server: "MetricsServer"
    timeout = 10                        # a client that sends nothing gives its slot back

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404, "only /metrics is served here")
            return
        body = self.server.exposition()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:   # noqa: A002 (the base class's name)
        pass


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, registry: CollectorRegistry,
                 max_connections: int = MAX_CONNECTIONS,
                 per_client: int = MAX_CONNECTIONS_PER_CLIENT,
                 min_interval_s: float = MIN_RENDER_INTERVAL_S):
        super().__init__(address, _Handler)
        self.registry = registry
        self.max_connections, self.per_client = max_connections, per_client
        self.min_interval_s = min_interval_s
        self._slots = threading.Lock()
        self._open: dict[str, int] = {}
        self._render = threading.Lock()
        self._body, self._rendered_at = b"", -1e18
        self.refused = 0
        self.renders = 0

    def exposition(self) -> bytes:
        """The registry's text, rendered at most once per min_interval_s."""
        with self._render:
            if time.monotonic() - self._rendered_at >= self.min_interval_s:
                self._body = generate_latest(self.registry)
                self._rendered_at = time.monotonic()
                self.renders += 1
            return self._body

    def process_request(self, request, client_address) -> None:
        client = client_address[0]
        with self._slots:
            busy = (sum(self._open.values()) >= self.max_connections
                    or self._open.get(client, 0) >= self.per_client)
            if not busy:
                self._open[client] = self._open.get(client, 0) + 1
            else:
                self.refused += 1
        if busy:
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\n"
                                b"Content-Length: 0\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._slots:
                client = client_address[0]
                self._open[client] -= 1
                if not self._open[client]:
                    del self._open[client]


def start_metrics_server(service, host: str = "127.0.0.1", port: int = 9108,
                         registry: CollectorRegistry | None = None,
                         include_host_links: bool = False, **limits):
    """Serve `service`'s metrics on http://host:port/metrics; return (server, bound port).

    `registry` is normally `Metrics().registry`, the one the service's observer counts
    into; the fabric collector is added to it. Without one a fresh registry holds the
    collector alone. Port 0 binds a free port. `limits`: MetricsServer's. Stop with
    `stop_metrics_server(server)`.
    """
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(FabricCollector(service, include_host_links=include_host_links))
    server = MetricsServer((host, port), registry, **limits)
    threading.Thread(target=server.serve_forever, name="dcilab-metrics", daemon=True).start()
    bound = server.server_address[1]
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return server, bound


def stop_metrics_server(server, timeout_s: float = 5.0) -> None:
    """Stop serving and close the socket."""
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    server.server_close()
