"""The fabric collector over a fake service: names, types, labels, real units, and links
that leave the snapshot leaving the output."""

from __future__ import annotations

from collections import Counter

import math
import time
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dcilab.metrics import FabricCollector, Metrics
from dcilab.te.load import LoadTracker
from test_prometheus_rules import read_once
from dcilab.te.reservations import Protection, State

from fabric_helpers import topology

FORBIDDEN_LABELS = {"dc", "datacenter", "region", "cluster", "flow", "flow_id", "src_host",
                    "dst_host", "host_pair", "src_ip", "dst_ip", "reservation_id"}
LINK_LABELS = {"link", "wavelength", "site_a", "site_b", "direction", "kind", "src", "dst"}

EXPECTED_TYPES = {
    "dcilab_failure_events": "counter",
    "dcilab_restoration_duration_seconds": "histogram",
    "dcilab_link_capacity_bps": "gauge",
    "dcilab_link_transmit_bytes": "counter",
    "dcilab_link_receive_bytes": "counter",
    "dcilab_link_utilization_ratio": "gauge",
    "dcilab_link_reserved_bps": "gauge",
    "dcilab_link_up": "gauge",
    "dcilab_link_drained": "gauge",
    "dcilab_links_held_down": "gauge",
    "dcilab_wavelength_osnr_db": "gauge",
    "dcilab_wavelength_gsnr_db": "gauge",
    "dcilab_wavelength_required_osnr_db": "gauge",
    "dcilab_wavelength_margin_db": "gauge",
    "dcilab_wavelength_frequency_hz": "gauge",
    "dcilab_wavelength_mode_info": "gauge",     # an info metric: gauge at 1 in text format
    "dcilab_reservations": "gauge",
    "dcilab_reservations_live": "gauge",
    "dcilab_reservations_unprotected": "gauge",
    "dcilab_elephant_flows": "gauge",
    "dcilab_switch_connected": "gauge",
    "dcilab_switch_wiring_problems": "gauge",
    "dcilab_emulation_scale": "gauge",
    "dcilab_controller_start_time_seconds": "gauge",
    "dcilab_state_file_wait_seconds": "gauge",
    "dcilab_state_file_failing": "gauge",
    "dcilab_openflow_events_queued": "gauge",
    "dcilab_reservation_requests": "counter",
    "dcilab_reservation_releases": "counter",
    "dcilab_reserve_duration_seconds": "histogram",
    "dcilab_reads_refused": "counter",
    "dcilab_flow_placements": "counter",
    "dcilab_path_compute_duration_seconds": "histogram",
    "dcilab_openflow_messages_sent": "counter",
    "dcilab_openflow_errors": "counter",
}


class FakeReservation:
    def __init__(self, state, protection=Protection.RESTORABLE, standby=True):
        self.state = state
        self.protection = protection
        self.standby = standby


class FakeService:
    """The slice of ControllerService the collector reads."""

    def __init__(self, fabric, loads=None, reservations=(), status=None, elephants=0,
                 modes=None):
        self.fabric = fabric
        self.modes = modes or {}
        self.loads = loads
        self.reservations = list(reservations)
        self.status = status if status is not None else {s: True for s in fabric.switches}
        self.elephants = elephants
        self.waited, self.backlog, self.failing = 0.0, 0, False
        self.tracker = read_once(LoadTracker(fabric), fabric)

    def link_loads(self, kinds=None):
        return self.loads if self.loads is not None else self.tracker.snapshot()

    def wavelength_modes(self):
        return dict(self.modes)

    def reservation_counts(self):
        return Counter(r.state for r in self.reservations)

    def protection_counts(self):
        return Counter(r.protection for r in self.reservations if r.state.live)

    def unprotected_count(self):
        return sum(1 for r in self.reservations if r.protection == Protection.PROTECTED
                   and r.state in (State.PENDING, State.ACTIVE) and not r.standby)

    def state_file_wait(self):
        return self.waited

    def state_file_failing(self):
        return self.failing

    def openflow_backlog(self):
        return self.backlog

    def switch_status(self):
        return dict(self.status)

    def elephant_count(self):
        return self.elephants

    def held_down_count(self):
        return 0

    def wiring_problems(self):
        return {'dc1-gw1': ['cables crossed: dc1-gw1 port 3 reaches dc1-spine2 port 5']}


@pytest.fixture(scope="module")
def fabric():
    return topology("two-dc")


def scrape(service, metrics: Metrics | None = None, **kw) -> dict:
    """name -> Metric family, parsed back from the text exposition."""
    registry = metrics.registry if metrics else CollectorRegistry()
    registry.register(FabricCollector(service, **kw))
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(families, name, **labels):
    fam_name = name.removesuffix("_total")
    return [s for s in families[fam_name].samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def one(families, name, **labels):
    found = samples(families, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_every_family_is_exported_with_its_type(fabric):
    families = scrape(FakeService(fabric), Metrics())
    types = {name: f.type for name, f in families.items() if not name.endswith("_created")}
    assert types == EXPECTED_TYPES


def test_counters_carry_total_and_info_carries_value_one(fabric):
    families = scrape(FakeService(fabric), Metrics())
    names = {s.name for f in families.values() for s in f.samples}
    for name, kind in EXPECTED_TYPES.items():
        if kind == "counter":
            assert f"{name}_total" in names and name not in names
    info = samples(families, "dcilab_wavelength_mode_info")
    assert info and {s.value for s in info} == {1.0}


def test_one_series_per_direction_of_every_wavelength_and_intra_site_link(fabric):
    families = scrape(FakeService(fabric))
    series = samples(families, "dcilab_link_capacity_bps")
    non_host = [l for l in fabric.links if l.kind != "host"]
    assert len(series) == 2 * len(non_host) == 2 * (8 + 8 + 4)   # leaf-spine, gw-spine, λ
    assert {s.labels["kind"] for s in series} == {"fabric", "dci"}
    keys = {(s.labels["link"], s.labels["wavelength"], s.labels["direction"]) for s in series}
    assert len(keys) == len(series), "link, wavelength, direction must identify a series"
    for s in series:
        assert set(s.labels) == LINK_LABELS
        assert s.labels["direction"] in ("a-b", "b-a")


def test_host_links_are_left_out_unless_asked_for(fabric):
    hosts = [l for l in fabric.links if l.kind == "host"]
    default = scrape(FakeService(fabric))
    assert not samples(default, "dcilab_link_up", kind="host")
    included = scrape(FakeService(fabric), include_host_links=True)
    assert len(samples(included, "dcilab_link_up", kind="host")) == 2 * len(hosts)


def test_wavelength_labels_name_the_dci_link_sites_and_direction(fabric):
    w1 = next(l for l in fabric.wavelengths() if l.wavelength.endswith(".w1"))
    families = scrape(FakeService(fabric))
    ab = one(families, "dcilab_link_capacity_bps", wavelength=w1.wavelength, direction="a-b")
    assert ab.labels == {"link": "dc1-dc2-a", "wavelength": "dc1-dc2-a.w1", "site_a": "dc1",
                         "site_b": "dc2", "direction": "a-b", "kind": "dci",
                         "src": "dc1-gw1", "dst": "dc2-gw1"}
    ba = one(families, "dcilab_link_capacity_bps", wavelength=w1.wavelength, direction="b-a")
    assert (ba.labels["site_a"], ba.labels["site_b"]) == ("dc2", "dc1")
    assert ab.value == ba.value == 400e9     # real capacity, not the emulated 40 Mb/s
    spine = one(families, "dcilab_link_capacity_bps", link="dc1-leaf1~spine1", direction="a-b")
    assert spine.labels["wavelength"] == "" and spine.labels["kind"] == "fabric"
    assert spine.value == 800e9
    # an intra-site link's sites are one: src and dst say which switch sends (an SRE's)
    assert (spine.labels["src"], spine.labels["dst"]) == ("dc1-leaf1", "dc1-spine1")


def test_bytes_are_counters_in_real_units_and_utilization_uses_real_capacity(fabric):
    service = FakeService(fabric)
    service.tracker = LoadTracker(fabric)                 # nothing read yet
    w1 = next(l for l in fabric.wavelengths() if l.wavelength.endswith(".w1"))
    gw_a, port_a = w1.a.node, w1.a.port
    gw_b, port_b = w1.b.node, w1.b.port
    # one second of 20 Mb/s emulated (= 200 Gb/s real at scale 1e-4), a -> b
    service.tracker.sample(gw_a, {port_a: (0, 0)}, now=10.0)
    service.tracker.sample(gw_b, {port_b: (0, 0)}, now=10.0)
    service.tracker.sample(gw_a, {port_a: (2_500_000, 0)}, now=11.0)
    service.tracker.sample(gw_b, {port_b: (0, 2_400_000)}, now=11.0)
    families = scrape(service)
    labels = dict(wavelength=w1.wavelength, direction="a-b")
    assert one(families, "dcilab_link_transmit_bytes_total", **labels).value == 2.5e10
    assert one(families, "dcilab_link_receive_bytes_total", **labels).value == 2.4e10
    # Utilization is what arrived (2.4 MB in 1 s = 192 Gb/s real) over 400 Gb/s.
    assert one(families, "dcilab_link_utilization_ratio", **labels).value == pytest.approx(0.48)
    assert one(families, "dcilab_link_utilization_ratio", wavelength=w1.wavelength,
               direction="b-a").value == 0.0
    assert one(families, "dcilab_link_up", **labels).value == 1.0   # both gateways reported
    spine = one(families, "dcilab_link_up", link="dc1-leaf1~spine1", direction="a-b")
    assert spine.value == 0.0                                      # never reported
    # ... and has no byte totals: a 0 there, from a restarted controller before its first
    # poll, was a counter reset to Prometheus, and rate() spiked (a re-tester's)
    for name in ("dcilab_link_transmit_bytes_total", "dcilab_link_receive_bytes_total"):
        assert not samples(families, name, link="dc1-leaf1~spine1")
        assert samples(families, name, **labels)


def test_reserved_and_up_come_from_the_snapshot(fabric):
    loads = LoadTracker(fabric).snapshot()
    w2 = next(l for l in fabric.wavelengths() if l.wavelength.endswith(".w2"))
    loads = [replace(x, reserved_bps=1.5e11, up=True) if x.link == w2.name and x.src == w2.b.node
             else x for x in loads]
    families = scrape(FakeService(fabric, loads=loads))
    ba = dict(wavelength=w2.wavelength, direction="b-a")
    assert one(families, "dcilab_link_reserved_bps", **ba).value == 1.5e11
    assert one(families, "dcilab_link_up", **ba).value == 1.0
    assert one(families, "dcilab_link_reserved_bps", wavelength=w2.wavelength,
               direction="a-b").value == 0.0


def test_a_link_missing_from_the_snapshot_disappears(fabric):
    service = FakeService(fabric, loads=read_once(LoadTracker(fabric), fabric).snapshot())
    registry = CollectorRegistry()
    registry.register(FabricCollector(service))
    before = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert samples(before, "dcilab_link_transmit_bytes_total", wavelength="dc1-dc2-a.w3")
    service.loads = [x for x in service.loads if x.link != "dc1-dc2-a.w3"]
    after = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    for name in ("dcilab_link_capacity_bps", "dcilab_link_transmit_bytes_total",
                 "dcilab_link_receive_bytes_total", "dcilab_link_utilization_ratio",
                 "dcilab_link_reserved_bps", "dcilab_link_up"):
        assert not samples(after, name, wavelength="dc1-dc2-a.w3"), name
        assert len(samples(after, name)) == len(samples(before, name)) - 2


def test_optics_of_every_wavelength(fabric):
    families = scrape(FakeService(fabric))
    for link in fabric.wavelengths():
        ch = link.channel
        key = dict(link="dc1-dc2-a", wavelength=ch.name)
        assert one(families, "dcilab_wavelength_osnr_db", **key).value == pytest.approx(ch.osnr_db)
        assert one(families, "dcilab_wavelength_gsnr_db", **key).value == pytest.approx(ch.gsnr_db)
        assert ch.gsnr_db < ch.osnr_db      # NLI: GSNR is the ASE-only OSNR less something
        assert one(families, "dcilab_wavelength_margin_db", **key).value == pytest.approx(ch.margin_db)
        assert one(families, "dcilab_wavelength_required_osnr_db", **key).value == \
            pytest.approx(ch.required_osnr_db)
        assert one(families, "dcilab_wavelength_frequency_hz", **key).value == \
            pytest.approx(ch.frequency_thz * 1e12)
        info = one(families, "dcilab_wavelength_mode_info", **key)
        assert info.labels == {"link": "dc1-dc2-a", "wavelength": ch.name, "site_a": "dc1",
                               "site_b": "dc2", "module": "400ZR",
                               "mode": ch.mode, "rate_gbps": "400"}
    first = one(families, "dcilab_wavelength_frequency_hz", wavelength="dc1-dc2-a.w1")
    assert 191e12 < first.value < 197e12


def test_a_wavelength_shows_the_mode_it_runs_now_not_its_plans():
    # A 400ZR+ wavelength moved to 300G (rate adaptation, or an operator's gNMI Set): its
    # mode, rate, requirement and margin follow; the plan's GSNR stays.
    ring = topology("four-dc-ring")
    link = next(l for l in ring.wavelengths() if l.channel.module == "400ZR+"
                and l.channel.mode == "400G")
    ch = link.channel
    slower = ring.catalog.module("400ZR+").mode("300G")
    families = scrape(FakeService(ring, modes={link.name: ("300G", 300.0)}))
    key = dict(wavelength=ch.name)
    info = one(families, "dcilab_wavelength_mode_info", **key)
    assert (info.labels["mode"], info.labels["rate_gbps"]) == ("300G", "300")
    assert one(families, "dcilab_wavelength_required_osnr_db", **key).value == \
        pytest.approx(slower.required_osnr_db) != ch.required_osnr_db
    assert one(families, "dcilab_wavelength_margin_db", **key).value == pytest.approx(
        ch.margin_db + ch.required_osnr_db - slower.required_osnr_db)
    assert one(families, "dcilab_wavelength_gsnr_db", **key).value == pytest.approx(ch.gsnr_db)


def test_every_reservation_state_is_present_even_at_zero(fabric):
    reservations = [FakeReservation(State.ACTIVE), FakeReservation(State.ACTIVE),
                    FakeReservation(State.RELEASED)]
    families = scrape(FakeService(fabric, reservations=reservations))
    got = {s.labels["state"]: s.value for s in samples(families, "dcilab_reservations")}
    assert got == {"PENDING": 0, "ACTIVE": 2, "DEGRADED": 0, "RELEASED": 1, "EXPIRED": 0}


def test_live_reservations_by_protection_class_every_class_present(fabric):
    reservations = [FakeReservation(State.ACTIVE, Protection.PROTECTED),
                    FakeReservation(State.PENDING, Protection.PROTECTED),
                    FakeReservation(State.RELEASED, Protection.NONE)]
    families = scrape(FakeService(fabric, reservations=reservations))
    got = {s.labels["protection"]: s.value
           for s in samples(families, "dcilab_reservations_live")}
    assert got == {"NONE": 0, "RESTORABLE": 0, "PROTECTED": 2}
    assert [s.value for s in samples(families, "dcilab_reservations_unprotected")] == [0]
    reservations.append(FakeReservation(State.ACTIVE, Protection.PROTECTED, standby=False))
    families = scrape(FakeService(fabric, reservations=reservations))
    assert [s.value for s in samples(families, "dcilab_reservations_unprotected")] == [1]


def test_every_switch_of_the_file_is_reported_connected_or_not(fabric):
    status = {"dc1-leaf1": True, "dc2-gw2": False}          # the rest never connected
    families = scrape(FakeService(fabric, status=status, elephants=3))
    got = {s.labels["switch"]: s.value for s in samples(families, "dcilab_switch_connected")}
    assert set(got) == set(fabric.switches)
    assert got["dc1-leaf1"] == 1.0 and sum(got.values()) == 1.0
    assert one(families, "dcilab_elephant_flows").value == 3
    wiring = {s.labels["switch"]: s.value
              for s in samples(families, "dcilab_switch_wiring_problems")}
    assert set(wiring) == set(fabric.switches)
    assert wiring["dc1-gw1"] == 1.0 and sum(wiring.values()) == 1.0
    scale = samples(families, "dcilab_emulation_scale")
    assert len(scale) == 1 and scale[0].value == 1e-4 and scale[0].labels == {}


def test_the_wait_for_the_state_file_is_exported_as_the_service_measures_it(fabric):
    service = FakeService(fabric)
    assert one(scrape(service), "dcilab_state_file_wait_seconds").value == 0.0
    service.waited = 12.5
    assert one(scrape(service), "dcilab_state_file_wait_seconds").value == 12.5
    service.backlog = 128
    assert one(scrape(service), "dcilab_openflow_events_queued").value == 128
    assert one(scrape(service), "dcilab_state_file_failing").value == 0.0
    service.failing = True
    assert one(scrape(service), "dcilab_state_file_failing").value == 1.0


def test_the_start_time_is_when_the_metrics_began(fabric):
    before = time.time()
    families = scrape(FakeService(fabric), Metrics())
    [start] = samples(families, "dcilab_controller_start_time_seconds")
    assert before <= start.value <= time.time()


def test_no_forbidden_label_anywhere(fabric):
    metrics = Metrics()
    metrics.reservation_request("admitted", 0.001)
    metrics.placement("loadaware")
    families = scrape(FakeService(fabric, reservations=[FakeReservation(State.PENDING)]),
                      metrics, include_host_links=True)
    for family in families.values():
        assert family.name.startswith("dcilab_")
        for s in family.samples:
            assert not FORBIDDEN_LABELS & set(s.labels), (s.name, s.labels)
            assert not any("flow" in k or "pair" in k for k in s.labels), (s.name, s.labels)


def test_registering_does_not_read_the_service(fabric):
    class NotReady(FakeService):
        def link_loads(self, kinds=None):
            raise AssertionError("read at registration")
    registry = CollectorRegistry()
    registry.register(FabricCollector(NotReady(fabric)))   # must not raise


def test_values_are_finite(fabric):
    families = scrape(FakeService(fabric), Metrics())
    for family in families.values():
        for s in family.samples:
            if not s.name.endswith("_bucket"):
                assert math.isfinite(s.value), s
