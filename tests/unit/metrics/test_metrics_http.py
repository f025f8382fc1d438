"""`/metrics` over HTTP on a port of our own: port 0 works and reports the bound port."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from dcilab.metrics import Metrics, start_metrics_server, stop_metrics_server
from dcilab.te.load import LoadTracker

from fabric_helpers import topology


class Service:
    def __init__(self):
        self.fabric = topology("two-dc")
        self._tracker = LoadTracker(self.fabric)

    def link_loads(self):
        return self._tracker.snapshot()

    def reservation_counts(self):
        return {}

    def protection_counts(self):
        return {}

    def switch_status(self):
        return {}

    def elephant_count(self):
        return 0


def get(port: int, path: str = "/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return reply.status, reply.headers.get("Content-Type"), reply.read().decode()


def test_port_zero_serves_collector_and_events_on_the_bound_port():
    metrics = Metrics()
    metrics.openflow_sent(3)
    server, port = start_metrics_server(Service(), "127.0.0.1", 0, registry=metrics.registry)
    try:
        assert port > 0
        status, ctype, text = get(port)
        assert status == 200 and ctype.startswith("text/plain")
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"dcilab_link_utilization_ratio", "dcilab_openflow_messages_sent",
                "dcilab_switch_connected"} <= names
        assert "dcilab_openflow_messages_sent_total 3.0" in text
    finally:
        stop_metrics_server(server)


def test_two_servers_side_by_side_and_a_stopped_one_is_gone():
    s1, p1 = start_metrics_server(Service(), "127.0.0.1", 0)
    s2, p2 = start_metrics_server(Service(), "127.0.0.1", 0, registry=Metrics().registry)
    try:
        assert p1 != p2
        assert "dcilab_reservation_requests_total" not in get(p1)[2]   # collector alone
        assert "dcilab_reservation_requests_total" in get(p2)[2]
    finally:
        stop_metrics_server(s1)
        stop_metrics_server(s2)
    import socket
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", p1)) != 0
