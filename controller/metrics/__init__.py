"""Prometheus metrics of the controller: a collector over its snapshot, and event counters.

Wiring (controller/cli):

    metrics = Metrics()                                   # its own CollectorRegistry
    service = ControllerService(..., observer=metrics)
    server, port = start_metrics_server(service, host, port, registry=metrics.registry)
"""

from .collector import RESERVATION_STATES, FabricCollector
from .events import LATENCY_BUCKETS, PLACEMENT_POLICIES, REQUEST_RESULTS, Metrics
from .http import start_metrics_server, stop_metrics_server

__all__ = [
    "FabricCollector", "LATENCY_BUCKETS", "Metrics",
    "PLACEMENT_POLICIES", "REQUEST_RESULTS", "RESERVATION_STATES", "start_metrics_server",
    "stop_metrics_server",
]
