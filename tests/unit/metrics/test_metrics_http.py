"""`/metrics` over HTTP on a port of our own: port 0 works and reports the bound port."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from dcilab.metrics import Metrics, start_metrics_server, stop_metrics_server
from dcilab.metrics.scrape import samples
from dcilab.te.load import LoadTracker

from fabric_helpers import topology


class Service:
    def __init__(self):
        self.fabric = topology("two-dc")
        self._tracker = LoadTracker(self.fabric)

    def link_loads(self, kinds=None):
        return self._tracker.snapshot()

    def wavelength_modes(self):
        return {}

    def reservation_counts(self):
        return {}

    def protection_counts(self):
        return {}

    def unprotected_count(self):
        return 0

    def state_file_wait(self):
        return 0.0

    def state_file_failing(self):
        return False

    def openflow_backlog(self):
        return 0

    def switch_status(self):
        return {}

    def elephant_count(self):
        return 0

    def held_down_count(self):
        return 0

    def wiring_problems(self):
        return {}


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


def test_fifty_scrapers_share_renders_and_extra_connections_get_503():
    """Renders are shared (at most one per interval) and connections bounded in total and
    per client: a held-open connection beyond the bound is answered 503 at once."""
    import socket
    import threading
    server, port = start_metrics_server(Service(), "127.0.0.1", 0, max_connections=4,
                                        per_client=3, min_interval_s=60, rate=1000,
                                        rate_per_client=1000)
    try:
        codes = []

        def scrape():
            try:
                codes.append(get(port)[0])
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
        threads = [threading.Thread(target=scrape) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert codes.count(200) >= 3 and set(codes) <= {200, 503}
        assert server.renders == 1                       # one render served them all

        def slots_taken(n: int) -> None:
            deadline = time.monotonic() + 5
            while server.connections() != n:
                assert time.monotonic() < deadline, (server.connections(), n)
                time.sleep(0.01)
        # The scrapers' handlers may still hold slots after their clients have their
        # answer (a CI run's extra connection then got a slot of its own, and no 503).
        slots_taken(0)
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        try:
            slots_taken(3)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
                assert extra.recv(64).startswith(b"HTTP/1.0 503")
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 5
        while True:                                      # the slots come back
            try:
                assert get(port)[0] == 200
                break
            except urllib.error.HTTPError:
                assert time.monotonic() < deadline
    finally:
        stop_metrics_server(server)


def test_scrapes_beyond_the_rate_get_503_with_retry_after():
    server, port = start_metrics_server(Service(), "127.0.0.1", 0, rate=5, rate_per_client=3)
    try:
        codes = []
        for _ in range(10):
            try:
                codes.append(get(port)[0])
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
                # 1 to 3 s, at random: refused scrapers do not come back all at once
                assert exc.headers.get("Retry-After") in ("1", "2", "3")
        assert codes.count(200) in (3, 4) and codes.count(503) >= 6   # 3/s per client
    finally:
        stop_metrics_server(server)


def test_gzip_when_asked_as_prometheus_does_the_same_text():
    import gzip
    server, port = start_metrics_server(Service(), "127.0.0.1", 0)
    try:
        plain = get(port)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                         headers={"Accept-Encoding": "deflate, gzip;q=0.9"})
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.headers["Content-Encoding"] == "gzip"
            text = gzip.decompress(reply.read())
        # Both within the render interval: the same render, compressed or not.
        assert plain[0] == 200 and b"dcilab_link_capacity_bps" in text
        assert text.decode() == plain[2]
        # HEAD: the headers of a GET, no body.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", method="HEAD")
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 200 and reply.read() == b""
            assert int(reply.headers["Content-Length"]) == len(plain[2].encode())
        # q=0 says "not gzip" (RFC 9110).
        for header in ("gzip;q=0", "gzip; q=0.0", "identity"):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                             headers={"Accept-Encoding": header})
            with urllib.request.urlopen(request, timeout=5) as reply:
                assert reply.headers.get("Content-Encoding") is None, header
                assert reply.headers["Vary"] == "Accept-Encoding"
                assert reply.read().decode() == plain[2]
    finally:
        stop_metrics_server(server)


def test_scrape_reads_one_metric_and_waits_out_a_503():
    metrics = Metrics()
    metrics.failure("link_down", "dc1-dc2-a.w1")
    server, port = start_metrics_server(Service(), "127.0.0.1", 0, registry=metrics.registry,
                                        rate=1, rate_per_client=1)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        first = dict((s["kind"], v) for s, v in samples(url, "dcilab_failure_events_total"))
        assert first["link_down"] == 1.0 and first["link_up"] == 0.0
        # The second scrape within the second is refused with Retry-After; samples retries.
        assert samples(url, "dcilab_links_held_down") == [({}, 0.0)]
    finally:
        stop_metrics_server(server)


def test_rendered_text_is_prometheus_clients_byte_for_byte_as_loads_change():
    """The renderer writes link families from their rows and keeps lines between renders:
    its bytes must stay generate_latest's as values, reservations and traffic change."""
    from prometheus_client import generate_latest

    from dcilab.app.service import ControllerService
    from dcilab.metrics.collector import FabricCollector
    from dcilab.metrics.http import TextRenderer
    from dcilab.te.reservations import ReservationRequest

    fabric = topology("two-dc")
    for include_hosts in (False, True):
        metrics = Metrics()
        service = ControllerService.standalone(fabric, observer=metrics)
        metrics.registry.register(FabricCollector(service, include_host_links=include_hosts))
        renderer = TextRenderer()
        hosts = sorted(fabric.hosts)
        switch = sorted(fabric.switches)[0]
        ports = sorted({e.port for link in fabric.links for e in (link.a, link.b)
                        if e.node == switch})
        for step in range(4):
            service.core.load.sample(switch, {p: (step * 10**9 + p, step * 7**9)
                                              for p in ports}, float(step))
            text = renderer.render(metrics.registry)
            assert text == generate_latest(metrics.registry), (include_hosts, step)
            if step < 3:
                service.reserve(ReservationRequest(hosts[step], hosts[-1 - step],
                                                   0.5 + step))
        assert b'dcilab_link_reserved_bps{' in text and b"e+09" in text


def test_a_request_dripped_header_by_header_is_cut_off_at_its_deadline(monkeypatch):
    """The socket's timeout bounds one read: a client sending a header every few seconds
    kept its slot for good, and a few such kept every scrape at 503 (a security
    reviewer's). The request line and headers now come within REQUEST_S, or the
    connection ends."""
    import socket
    import time

    from dcilab.metrics import http

    monkeypatch.setattr(http._Handler, "request_s", 1.0, raising=False)
    server, port = start_metrics_server(Service(), "127.0.0.1", 0, max_connections=2,
                                        per_client=2)
    try:
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(b"GET /metrics HTTP/1.0\r\n")
        started, cut = time.monotonic(), False
        while time.monotonic() - started < 6:
            try:
                slow.sendall(b"X-Drip: 1\r\n")
                slow.settimeout(0.4)
                if slow.recv(64) == b"":                  # closed by the server
                    cut = True
                    break
            except socket.timeout:
                continue
            except OSError:
                cut = True
                break
        assert cut and time.monotonic() - started < 4, "a dripping request kept its slot"
        slow.close()
        assert get(port)[0] == 200                        # a normal scrape is served
    finally:
        stop_metrics_server(server)


def test_a_scrape_every_interval_gets_a_new_render_each_time(monkeypatch):
    """An SRE tester's: stamped at a render's end, a scrape every second (the demo's)
    came a few ms early every other time and got the last body: counters moved every
    2 s, and rate() over 4 s swung between 69 and 138 Gb/s for a steady 103."""
    from prometheus_client import CollectorRegistry

    from dcilab.metrics import http
    now = [100.0]
    monkeypatch.setattr(http.time, "monotonic", lambda: now[0])
    server = http.MetricsServer(("127.0.0.1", 0), CollectorRegistry(), min_interval_s=1.0)
    try:
        render = server._text.render

        def slow_render(registry):          # a render takes 5 ms of the clock
            now[0] += 0.005
            return render(registry)
        monkeypatch.setattr(server._text, "render", slow_render)
        for scrape in range(5):
            now[0] = 100.0 + scrape * 1.0
            server.exposition()
        assert server.renders == 5
        now[0] += 0.5                       # within the interval: the same body
        server.exposition()
        assert server.renders == 5
    finally:
        server.server_close()
