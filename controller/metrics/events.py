"""Event metrics: what the controller does, counted as it happens.

`Metrics` is the observer `ControllerService` calls. Every labelled counter is created with
all its label values up front, so `rate()` and `increase()` return series (at 0) from the
first scrape, and a later first event is a visible step rather than a series appearing.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               disable_created_metrics)

from ..te.placement import Policy
from . import names

log = logging.getLogger("dcilab.metrics")

# No `…_created` series: served in the text format, Prometheus stores each as a gauge of
# its own that nothing reads (an outside tester counted 22).
disable_created_metrics()

# unavailable / internal: the change could not be saved (disk full, read-only / otherwise)
# and was taken back. not_found and unauthenticated count ReleasePath and GetReservation
# calls for unknown ids and calls without the right token, so guessing shows.
# refused: no room now (RESOURCE_EXHAUSTED); precondition: it could never fit as asked
# (FAILED_PRECONDITION), so a refusal alert counts only the first. retried: a request_id's
# retry, answered with its first attempt's reservation; conflict: a request_id reused with
# other parameters (ALREADY_EXISTS); abandoned: its caller's deadline passed before it was
# booked, nothing booked (DEADLINE_EXCEEDED).
REQUEST_RESULTS = ("admitted", "retried", "refused", "precondition", "invalid", "conflict",
                   "abandoned", "not_found", "unauthenticated", "unavailable", "internal")
# released: ended by this call; retried: already over (answered as it ended); invalid: no
# id, or one no reservation could have (too long, unprintable).
RELEASE_RESULTS = ("released", "retried", "invalid", "not_found", "unavailable", "internal")
# Reads refused for load: a read call beyond the read budget, a watch stream beyond the
# bound, a /metrics scrape beyond its rate or connections (answered 503).
READ_REFUSALS = ("read_budget", "watch_streams", "scrape")
PLACEMENT_POLICIES = tuple(Policy)
FAILURE_EVENTS = ("link_down", "link_up", "switch_down")

# Admission and path computation take about a millisecond; a slow one tens of ms. The
# top buckets catch what waits on a slow disk or a large restoration (2.5 s was the
# highest, and everything slower read as 2.5 s).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The observer of `ControllerService`; its metrics live in `self.registry`.

    Each instance has its own CollectorRegistry (never the process-global one), so tests
    can make several. Observer methods never raise: an unexpected label value is counted
    under that value and logged once, since a metric must not break a reservation.
    """

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests_total = Counter(
            names.RESERVATION_REQUESTS, "Reservation requests, by outcome.",
            labelnames=("result",), registry=r)
        self.releases_total = Counter(
            names.RESERVATION_RELEASES, "Release requests, by outcome.",
            labelnames=("result",), registry=r)
        self.reserve_duration = Histogram(
            names.RESERVE_DURATION,
            "Time to answer a reservation request, seconds.", buckets=LATENCY_BUCKETS,
            registry=r)
        self.reads_refused_total = Counter(
            names.READS_REFUSED, "Reads refused for load, by kind: read calls beyond the "
            "read budget (read_budget), watch streams beyond their bound (watch_streams), "
            "/metrics scrapes beyond their rate or connections (scrape, answered 503).",
            labelnames=("kind",), registry=r)
        self._reads_refused = {kind: self.reads_refused_total.labels(kind=kind)
                               for kind in READ_REFUSALS}
        self.placements_total = Counter(
            names.FLOW_PLACEMENTS, "Elephant flows placed, by steering policy.",
            labelnames=("policy",), registry=r)
        self.path_compute_duration = Histogram(
            names.PATH_COMPUTE_DURATION,
            "Time to compute a path or a placement, seconds.", buckets=LATENCY_BUCKETS,
            registry=r)
        self.openflow_sent_total = Counter(
            names.OPENFLOW_SENT, "OpenFlow messages sent to switches.", registry=r)
        self.openflow_errors_total = Counter(
            names.OPENFLOW_ERRORS, "OpenFlow error messages received from switches.",
            registry=r)
        self.failures_total = Counter(
            names.FAILURE_EVENTS, "Failures and recoveries the controller acted on, by "
            "kind: link_down, link_up (back in use once its hold-down passed; one that "
            "fails again meanwhile counts another down and no up), switch_down. A link is a "
            "wavelength or an intra-site link; not labelled by name, so the series stay "
            "few.", labelnames=("kind",), registry=r)
        self.restoration_duration = Histogram(
            names.RESTORATION_DURATION,
            "Time for the controller to compute what a failure or recovery changes "
            "(routes, groups, moved reservations and elephants), seconds: one sample per "
            "failure or recovery, or per group of them handled together (the ports of one "
            "cut reported within a tick), not counting the wait for the tick that places "
            "its reservations and elephants. The messages go out once the reservations it "
            "changed are saved. The switches' fast-failover groups act before this, "
            "without the controller.",
            buckets=LATENCY_BUCKETS, registry=r)
        # The alert rules leave a controller's first minutes out of the link flap count:
        # a fresh controller shows links down until its switches describe their ports.
        Gauge(names.CONTROLLER_START_TIME, "When this controller started, seconds since "
              "the Unix epoch.", registry=r).set(time.time())
        for kind in FAILURE_EVENTS:
            self.failures_total.labels(kind=kind)
        # The children of the known labels, looked up once (labels() costs more than inc()).
        self._requests = {result: self.requests_total.labels(result=result)
                          for result in REQUEST_RESULTS}
        self._releases = {result: self.releases_total.labels(result=result)
                          for result in RELEASE_RESULTS}
        for policy in PLACEMENT_POLICIES:
            self.placements_total.labels(policy=policy)
        self._warned: set[tuple[str, str]] = set()

    def _known(self, what: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed and (what, value) not in self._warned:
            self._warned.add((what, value))
            log.warning("metrics: unexpected %s %r (expected one of %s)", what, value,
                        ", ".join(allowed))

    # -- the observer interface ---------------------------------------------------------

    def reservation_request(self, result: str, seconds: float) -> None:
        """A reservation request was answered with `result` after `seconds`."""
        self._request(result).inc()
        self.reserve_duration.observe(max(0.0, seconds))

    def request_refused(self, result: str) -> None:
        """A call was refused before any work (`not_found`, `unauthenticated`)."""
        self._request(result).inc()

    def release_request(self, result: str) -> None:
        """A release request was answered with `result` (RELEASE_RESULTS)."""
        self._child(self.releases_total, self._releases, "result", result,
                    RELEASE_RESULTS).inc()

    def read_refused(self, kind: str) -> None:
        """A read was refused for load (READ_REFUSALS)."""
        self._child(self.reads_refused_total, self._reads_refused, "kind", kind,
                    READ_REFUSALS).inc()

    def _request(self, result: str):
        return self._child(self.requests_total, self._requests, "result", result,
                           REQUEST_RESULTS)

    def _child(self, counter, known: dict, label: str, value: str, allowed: tuple[str, ...]):
        """The child of `counter` for `value` (looked up once for the `allowed` ones)."""
        child = known.get(value)
        if child is None:
            self._known(label, value, allowed)
            child = counter.labels(**{label: value})
        return child

    def placement(self, policy: str) -> None:
        """An elephant flow was placed by `policy`."""
        self._known("policy", policy, PLACEMENT_POLICIES)
        self.placements_total.labels(policy=policy).inc()

    def path_compute(self, seconds: float) -> None:
        self.path_compute_duration.observe(max(0.0, seconds))

    def openflow_sent(self, count: int) -> None:
        if count > 0:
            self.openflow_sent_total.inc(count)

    def openflow_error(self) -> None:
        self.openflow_errors_total.inc()

    def failure(self, kind: str, name: str) -> None:
        """The controller saw `kind` (link_down, link_up, switch_down) happen to `name`."""
        self._known("failure kind", kind, FAILURE_EVENTS)
        self.failures_total.labels(kind=kind).inc()

    def restoration(self, seconds: float) -> None:
        self.restoration_duration.observe(max(0.0, seconds))
