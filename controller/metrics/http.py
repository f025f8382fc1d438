"""`/metrics` over HTTP, served by the controller process on its own threads, bounded.

Fifty scrapers must not slow the calls that book capacity: the exposition is rendered
about once per `min_interval_s`, timed from a render's start with a tenth to spare (every
scraper in that window gets the same bytes, as a Prometheus scrape interval is seconds
anyway; one scraping at that interval gets a new render each time), and gzipped once
for those that ask for it as Prometheus does (a 160-switch fabric's 1 MB of text is 47
kB: sending 1 MB to ten scrapers at once kept the controller's CPU in the kernel for
milliseconds); scrapes are bounded in rate and open connections in number, in total
and per client address. One beyond is answered `503 Retry-After: 1..3` at once, from
the accepting thread, without parsing its request.
"""

from __future__ import annotations

import gzip
import logging
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString

from ..addresses import address_text
from .collector import LINK_LABELS, FabricCollector, LinkFamily

log = logging.getLogger("dcilab.metrics")

MAX_CONNECTIONS = 16
MAX_CONNECTIONS_PER_CLIENT = 8
MIN_RENDER_INTERVAL_S = 1.0             # the finest scrape interval we ship (the demo's)
# ... or longer, so that rendering takes at most this share of the controller's time.
MAX_RENDER_SHARE = 0.01
# A scrape this part of the render interval after the last render's start renders anew.
RENDER_DUE = 0.9
# Prometheus scrapes a target every 15 s or so: 20/s serves hundreds of them.
MAX_SCRAPES_PER_SECOND = 20.0
MAX_SCRAPES_PER_SECOND_PER_CLIENT = 10.0
# The request line and headers within this long of the connection: the socket's timeout
# bounds one read only, so a client sending a header every few seconds held its slot for
# as long as it liked (a security reviewer's 16 such kept every scrape at 503).
REQUEST_S = 5.0


# Told to come back after 1, 2 or 3 s, at random: scrapers refused together would
# otherwise all come back in the same millisecond, a burst of work every second.
_REFUSALS = tuple(f"HTTP/1.0 503 Service Unavailable\r\nRetry-After: {s}\r\n"
                  f"Content-Length: 0\r\n\r\n".encode() for s in (1, 2, 3))


class _Handler(BaseHTTPRequestHandler):
    server: "MetricsServer"
    timeout = 10                        # a client that sends nothing gives its slot back
    request_s = REQUEST_S

    def setup(self) -> None:
        super().setup()
        self._deadline = threading.Timer(self.request_s, self._cut_off)
        self._deadline.daemon = True
        self._deadline.start()

    def _cut_off(self) -> None:
        """The request is not in yet: its connection ends (the blocked read returns)."""
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def parse_request(self) -> bool:
        done = super().parse_request()      # the request line and headers are read here
        self._deadline.cancel()             # the answer is the socket timeout's to bound
        return done

    def finish(self) -> None:
        self._deadline.cancel()
        super().finish()

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404, "only /metrics is served here")
            return
        gzipped = gzip_wanted(self.headers.get("Accept-Encoding", ""))
        body = self.server.exposition(gzipped)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:   # noqa: A002 (the base class's name)
        pass


def gzip_wanted(accept_encoding: str) -> bool:
    """True if the Accept-Encoding header names gzip with a q-value above 0 (RFC 9110:
    q=0 means "not acceptable")."""
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() != "gzip":
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    # Connections waiting to be accepted (5 by default): beyond it the kernel drops a
    # scraper's SYN and the scraper retries 1, 3, 7 s later; accepted, it gets 503 at once.
    request_queue_size = 128

    def __init__(self, address, registry: CollectorRegistry,
                 max_connections: int = MAX_CONNECTIONS,
                 per_client: int = MAX_CONNECTIONS_PER_CLIENT,
                 min_interval_s: float = MIN_RENDER_INTERVAL_S,
                 rate: float = MAX_SCRAPES_PER_SECOND,
                 rate_per_client: float = MAX_SCRAPES_PER_SECOND_PER_CLIENT,
                 on_refused=None):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.on_refused = on_refused or (lambda: None)     # counted, so throttling shows
        self.rate, self.rate_per_client = rate, rate_per_client
        self._tokens: dict[str, list[float]] = {}     # client -> [tokens, when filled]
        self.registry = registry
        self.max_connections, self.per_client = max_connections, per_client
        self.min_interval_s = min_interval_s
        self._slots = threading.Lock()
        self._open: dict[str, int] = {}
        self._render = threading.Lock()
        self._body, self._rendered_at = b"", -1e18
        self._gzipped: bytes | None = None
        self._interval = min_interval_s * RENDER_DUE
        self._text = TextRenderer()
        self.renders = 0

    def connections(self) -> int:
        """Connections holding a slot now (accepted, their handler not yet done)."""
        with self._slots:
            return sum(self._open.values())

    def exposition(self, gzipped: bool = False) -> bytes:
        """The registry's text (gzipped: compressed, as Prometheus asks for it), rendered
        about once per min_interval_s (a tenth early allowed), and at most MAX_RENDER_SHARE
        of the controller's CPU time (a large fabric's render takes tens of ms)."""
        with self._render:
            # Timed from the render's start, with a tenth to spare: stamped at its end, a
            # scrape every second came a few ms early every other time and got the last
            # body, so counters moved every 2 s and rate() over 4 s swung by a third (an
            # SRE tester's).
            started = time.monotonic()
            if started - self._rendered_at >= self._interval:
                cpu = time.thread_time()
                self._body = self._text.render(self.registry)
                self._gzipped = None
                took = time.thread_time() - cpu
                self._rendered_at = started
                self._interval = max(self.min_interval_s * RENDER_DUE,
                                     took / MAX_RENDER_SHARE)
                self.renders += 1
            if not gzipped:
                return self._body
            if self._gzipped is None:         # 1 MB of text: 47 kB in 1.5 ms at level 1
                self._gzipped = gzip.compress(self._body, compresslevel=1, mtime=0)
            return self._gzipped

    def process_request(self, request, client_address) -> None:
        client = client_address[0]
        with self._slots:
            busy = (sum(self._open.values()) >= self.max_connections
                    or self._open.get(client, 0) >= self.per_client
                    or not self._spend(client))
            if not busy:
                self._open[client] = self._open.get(client, 0) + 1
        if busy:
            self.on_refused()
            try:
                request.sendall(_REFUSALS[random.randrange(len(_REFUSALS))])
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _spend(self, client: str) -> bool:
        """One scrape from the client's bucket and the total's (token buckets whose burst
        is one second's worth); caller holds _slots."""
        now = time.monotonic()
        if len(self._tokens) > 4096:
            self._tokens = {k: b for k, b in self._tokens.items() if now - b[1] < 60}
        buckets = [(self._tokens.setdefault(client, [self.rate_per_client, now]),
                    self.rate_per_client),
                   (self._tokens.setdefault("", [self.rate, now]), self.rate)]
        for bucket, rate in buckets:
            bucket[0] = min(rate, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
        if any(bucket[0] < 1 for bucket, _ in buckets):
            return False
        for bucket, _ in buckets:
            bucket[0] -= 1
        return True

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._slots:
                client = client_address[0]
                self._open[client] -= 1
                if not self._open[client]:
                    del self._open[client]


class TextRenderer:
    """prometheus_client's `generate_latest`, byte for byte, at a fraction of its cost:
    a sample's line is made once per (name, labels, value) and kept, since most series of
    a fabric (capacities, optics, idle links) keep their value from scrape to scrape,
    and the library escapes and validates every label of every sample every time. The
    cache keeps only the lines of the last render. Families with OpenMetrics-only
    samples (_created, ...) go through the library."""

    def __init__(self):
        self._lines: dict[tuple, str] = {}
        self._prefixes: dict[tuple, str] = {}      # (sample name, labels) -> 'name{...} '
        self._values: dict[float, str] = {}

    def render(self, registry) -> bytes:
        out: list[str] = []
        lines, kept = self._lines, {}
        prefixes, kept_prefixes = self._prefixes, {}
        values, kept_values = self._values, {}
        for metric in registry.collect():
            name, kind = metric.name, metric.type
            if isinstance(metric, LinkFamily):
                # Straight from the rows: each series' labels were rendered before.
                out.append(_header(metric))
                sample, value_of = metric.sample_name, metric.value
                for labels, load in metric.rows:
                    key = (sample, labels)
                    prefix = kept_prefixes.get(key) or prefixes.get(key)
                    if prefix is None:
                        prefix = _sample_prefix(sample, zip(LINK_LABELS, labels))
                    kept_prefixes[key] = prefix
                    value = value_of(load)
                    if value:                     # (0.0 and -0.0 are one key, not one text)
                        text = kept_values.get(value) or values.get(value)
                        if text is None:
                            text = floatToGoString(value)
                        kept_values[value] = text
                    else:
                        text = floatToGoString(value)
                    out.append(f"{prefix}{text}\n")
                continue
            special = {f"{name}_created", f"{name}_gsum", f"{name}_gcount"}
            if kind not in ("counter", "gauge", "histogram", "summary", "info", "unknown") \
                    or any(s.name in special for s in metric.samples):
                out.append(generate_latest(_One(metric)).decode("utf-8"))
                continue
            out.append(_header(metric))
            for sample in metric.samples:
                if sample.timestamp is not None:
                    out.append(generate_latest(_One(metric, [sample])).decode("utf-8")
                               .split("\n", 2)[2])
                    continue
                key = (sample.name, tuple(sample.labels.items()), sample.value)
                line = kept.get(key) or lines.get(key)
                if line is None:
                    line = _sample_line(sample)
                kept[key] = line
                out.append(line)
        self._lines, self._prefixes, self._values = kept, kept_prefixes, kept_values
        return "".join(out).encode("utf-8")


class _One:
    """A registry of one family (for the library's own rendering of it)."""

    def __init__(self, metric, samples=None):
        self._metric = metric
        if samples is not None:
            copy = type(metric).__new__(type(metric))
            copy.__dict__.update(metric.__dict__)
            copy.samples = samples
            self._metric = copy

    def collect(self):
        return [self._metric]


def _header(metric) -> str:
    shown = metric.name + {"counter": "_total", "info": "_info"}.get(metric.type, "")
    kind = {"info": "gauge", "unknown": "untyped"}.get(metric.type, metric.type)
    escaped = openmetrics.escape_metric_name(shown, openmetrics.UNDERSCORES)
    doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {escaped} {doc}\n# TYPE {escaped} {kind}\n"


def _sample_prefix(name: str, labels) -> str:
    """A sample's line up to its value: `name{label="value",...} `, labels sorted."""
    text = ",".join(f'{openmetrics.escape_label_name(k, openmetrics.UNDERSCORES)}="'
                    f'{openmetrics._escape(v, openmetrics.ALLOWUTF8, False)}"'
                    for k, v in sorted(labels))
    name = openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES)
    return f"{name}{{{text}}} " if text else f"{name} "


def _sample_line(sample) -> str:
    return f"{_sample_prefix(sample.name, sample.labels.items())}" \
           f"{floatToGoString(sample.value)}\n"


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
    observer = getattr(service, "observer", None)
    on_refused = getattr(observer, "read_refused", None)
    server = MetricsServer((host, port), registry,
                           on_refused=(lambda: on_refused("scrape")) if on_refused else None,
                           **limits)
    threading.Thread(target=server.serve_forever, name="dcilab-metrics", daemon=True).start()
    bound = server.server_address[1]
    log.info("metrics on http://%s/metrics", address_text(host, bound))
    return server, bound


def stop_metrics_server(server, timeout_s: float = 5.0) -> None:
    """Stop serving and close the socket."""
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    server.server_close()
