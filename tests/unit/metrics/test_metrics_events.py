"""The observer the controller service calls: counters pre-initialized, histograms in
seconds with millisecond buckets, one registry per instance."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from dcilab.metrics import LATENCY_BUCKETS, PLACEMENT_POLICIES, REQUEST_RESULTS, Metrics

OBSERVER_METHODS = ("reservation_request", "placement", "path_compute", "openflow_sent",
                    "openflow_error")


def value(metrics: Metrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels or None)


def test_the_observer_interface():
    metrics = Metrics()
    for name in OBSERVER_METHODS:
        assert callable(getattr(metrics, name)), name


def test_every_result_and_policy_is_there_from_the_start():
    metrics = Metrics()
    for result in ("admitted", "refused", "invalid", "not_found", "unauthenticated"):
        assert value(metrics, "dcilab_reservation_requests_total", result=result) == 0.0
    for policy in ("ecmp", "shortest", "loadaware"):
        assert value(metrics, "dcilab_flow_placements_total", policy=policy) == 0.0
    assert set(REQUEST_RESULTS) == {"admitted", "retried", "refused", "precondition", "invalid",
                                    "conflict", "abandoned", "not_found", "unauthenticated",
                                    "unavailable", "internal"}
    assert set(PLACEMENT_POLICIES) == {"ecmp", "shortest", "loadaware"}
    assert value(metrics, "dcilab_openflow_messages_sent_total") == 0.0
    assert value(metrics, "dcilab_openflow_errors_total") == 0.0
    assert value(metrics, "dcilab_reserve_duration_seconds_count") == 0.0
    assert value(metrics, "dcilab_path_compute_duration_seconds_count") == 0.0


def test_reservation_requests_count_by_result_and_time_in_seconds():
    metrics = Metrics()
    metrics.reservation_request("admitted", 0.0012)
    metrics.reservation_request("admitted", 0.0004)
    metrics.reservation_request("refused", 0.03)
    assert value(metrics, "dcilab_reservation_requests_total", result="admitted") == 2
    assert value(metrics, "dcilab_reservation_requests_total", result="refused") == 1
    assert value(metrics, "dcilab_reservation_requests_total", result="invalid") == 0
    assert value(metrics, "dcilab_reserve_duration_seconds_count") == 3
    assert value(metrics, "dcilab_reserve_duration_seconds_sum") == pytest.approx(0.0316)
    assert value(metrics, "dcilab_reserve_duration_seconds_bucket", le="0.0005") == 1
    assert value(metrics, "dcilab_reserve_duration_seconds_bucket", le="0.0025") == 2
    assert value(metrics, "dcilab_reserve_duration_seconds_bucket", le="+Inf") == 3


def test_latency_buckets_resolve_milliseconds():
    assert LATENCY_BUCKETS == tuple(sorted(LATENCY_BUCKETS))
    assert sum(1 for b in LATENCY_BUCKETS if b <= 0.01) >= 6     # sub-10 ms resolution
    assert LATENCY_BUCKETS[0] <= 0.0005 and LATENCY_BUCKETS[-1] >= 1.0


def test_placements_path_compute_and_openflow():
    metrics = Metrics()
    metrics.placement("loadaware")
    metrics.placement("loadaware")
    metrics.placement("ecmp")
    metrics.path_compute(0.002)
    metrics.openflow_sent(12)
    metrics.openflow_sent(0)
    metrics.openflow_error()
    assert value(metrics, "dcilab_flow_placements_total", policy="loadaware") == 2
    assert value(metrics, "dcilab_flow_placements_total", policy="ecmp") == 1
    assert value(metrics, "dcilab_flow_placements_total", policy="shortest") == 0
    assert value(metrics, "dcilab_path_compute_duration_seconds_count") == 1
    assert value(metrics, "dcilab_path_compute_duration_seconds_bucket", le="0.0025") == 1
    assert value(metrics, "dcilab_openflow_messages_sent_total") == 12
    assert value(metrics, "dcilab_openflow_errors_total") == 1


def test_an_unexpected_value_is_counted_not_raised(caplog):
    metrics = Metrics()
    metrics.placement("random")
    metrics.placement("random")
    metrics.reservation_request("weird", -1.0)     # a clock step must not break a request
    assert value(metrics, "dcilab_flow_placements_total", policy="random") == 2
    assert value(metrics, "dcilab_reserve_duration_seconds_sum") == 0.0
    assert sum("unexpected policy" in r.message for r in caplog.records) == 1


def test_instances_are_independent_and_leave_the_global_registry_alone():
    before = {m.name for m in REGISTRY.collect()}
    a, b = Metrics(), Metrics()
    a.openflow_error()
    assert value(a, "dcilab_openflow_errors_total") == 1
    assert value(b, "dcilab_openflow_errors_total") == 0
    assert {m.name for m in REGISTRY.collect()} == before
    assert not any(name.startswith("dcilab") for name in before)


def test_releases_count_by_outcome_through_the_service():
    from dcilab.app.service import ControllerService
    from dcilab.te.reservations import AdmissionError, ReservationRequest

    from fabric_helpers import topology

    metrics = Metrics()
    fabric = topology("two-dc")
    service = ControllerService.standalone(fabric, observer=metrics)
    hosts = sorted(fabric.hosts)
    res = service.reserve(ReservationRequest(hosts[0], hosts[-1], 1.0))
    service.release(res.reservation_id)
    service.release(res.reservation_id)         # already over: answered as it ended
    with pytest.raises(AdmissionError):
        service.release("r-000000000000")

    def released(result):
        return value(metrics, "dcilab_reservation_releases_total", result=result)
    assert (released("released"), released("retried"), released("not_found"),
            released("internal")) == (1, 1, 1, 0)
    # releases are not reservation requests: those count ReservePath's outcomes
    assert value(metrics, "dcilab_reservation_requests_total", result="admitted") == 1
