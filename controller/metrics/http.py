"""`/metrics` over HTTP, served by the controller process on its own threads."""

from __future__ import annotations

import logging
import threading

from prometheus_client import CollectorRegistry, start_http_server

from .collector import FabricCollector

log = logging.getLogger("dcilab.metrics")


def start_metrics_server(service, host: str = "127.0.0.1", port: int = 9108,
                         registry: CollectorRegistry | None = None,
                         include_host_links: bool = False):
    """Serve `service`'s metrics on http://host:port/metrics; return (server, bound port).

    `registry` is normally `Metrics().registry`, the one the service's observer counts
    into; the fabric collector is added to it. Without one a fresh registry holds the
    collector alone. Port 0 binds a free port. Stop with `stop_metrics_server(server)`.
    """
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(FabricCollector(service, include_host_links=include_host_links))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    bound = server.server_address[1]
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return server, bound


def stop_metrics_server(server, timeout_s: float = 5.0) -> None:
    """Stop serving and close the socket."""
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    server.server_close()
