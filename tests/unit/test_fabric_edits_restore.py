"""A fabric edited between two runs on one state file: a fibre made longer puts a
reservation's path over its latency bound (an operator's was kept 0.13 ms over it,
reporting the old latency, while the API refused the same bound to new requests)."""

from __future__ import annotations

import logging
from dataclasses import replace

from controller_lab import ControllerLab

from dcilab.app.service import ControllerService
from dcilab.core import FabricController
from dcilab.store.sqlite import ReservationStore
from dcilab.fabric import parse_fabric
from dcilab.te.reservations import Protection, ReservationRequest, State

PROTECTED = Protection.PROTECTED

FABRIC = """
name: ops
sites:
  - {{name: a, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 1}}
  - {{name: b, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 1}}
dci_links:
  - {{name: la, a: a, b: b, fiber_km: {la}, module: 400ZR, wavelengths: 1}}
  - {{name: lb, a: a, b: b, fiber_km: {lb}, module: 400ZR, wavelengths: 1}}
"""


def fabric(la: float, lb: float = 100):
    return parse_fabric(FABRIC.format(la=la, lb=lb))


def reserved_on_la(path, bound: float) -> str:
    service = ControllerService.standalone(fabric(80), path)
    res = service.reserve(ReservationRequest("a-h1", "b-h1", 100, max_latency_ms=bound))
    assert [h.wavelength for h in res.hops if h.wavelength] == ["la.w1"]
    service.close()
    return res.reservation_id


def test_a_restored_path_reports_the_latency_of_the_fibre_as_it_is_now(tmp_path, caplog):
    path = tmp_path / "state.db"
    rid = reserved_on_la(path, bound=0.45)
    before = ControllerService.standalone(fabric(80), path)
    saved = before.get(rid).latency_ms
    before.close()
    caplog.set_level(logging.INFO, logger="dcilab")
    service = ControllerService.standalone(fabric(118), path)      # la: 38 km longer
    try:
        now = service.get(rid)
        assert now.latency_ms == service.core.book.path_latency(now) > saved + 0.15
        assert [r.latency_ms for r in service.list() if r.reservation_id == rid] == \
            [now.latency_ms]                                   # the state file says so too
        assert f"reservation {rid}: its path takes {now.latency_ms:.3f} ms since the " \
               f"fabric changed, over its max_latency_ms 0.45" in caplog.text
    finally:
        service.close()
    again = ControllerService.standalone(fabric(118), path)
    try:
        assert again.get(rid).latency_ms == now.latency_ms
    finally:
        again.close()


def over_bound_lab(lb_km: float, bound: float):
    """A reservation booked on la (80 km) with `bound`, restored once la is 118 km."""
    old = ControllerLab(fabric(80)).bring_up_all()
    res = old.send(old.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100,
                                                      max_latency_ms=bound), "r1", 0.0)).changed[0]
    lab = ControllerLab(fabric(118, lb_km))
    lab.ctl.restore(replace(res, latency_ms=lab.ctl.book.path_latency(res)))   # as at start
    for name in lab.fabric.switches:
        lab.connect(name)
    lab.ack_all()
    lab.send(lab.ctl.tick(1.0))
    lab.ack_all()
    return lab


def test_a_path_over_its_bound_moves_within_it_once_the_switches_are_there():
    lab = over_bound_lab(lb_km=90, bound=0.5)      # lb is now the shorter line system
    res = lab.ctl.book.get("r1")
    assert [h.wavelength for h in res.hops if h.wavelength] == ["lb.w1"]
    assert res.state is State.ACTIVE and res.latency_ms <= 0.5


def test_a_path_over_its_bound_with_none_within_it_is_degraded_saying_why():
    lab = over_bound_lab(lb_km=118, bound=0.45)
    res = lab.ctl.book.get("r1")
    assert res.state is State.DEGRADED
    assert res.reason.startswith("its path takes 0.")
    assert "since the fabric changed, over its max_latency_ms 0.45" in res.reason
    assert lab.ctl.book.reserved_total() == 0


def test_a_standby_sharing_an_srlg_with_its_primary_since_an_edit_is_dropped_and_said(
        tmp_path, caplog):
    """An operator put la and lb in one duct: a PROTECTED reservation restored as
    protected, standby over the duct, `dcilab_reservations_unprotected` 0."""
    path = tmp_path / "state.db"
    service = ControllerService.standalone(fabric(80), path)
    res = service.reserve(ReservationRequest("a-h1", "b-h1", 100, protection=PROTECTED))
    assert [h.wavelength for h in res.standby if h.wavelength] == ["lb.w1"]
    service.close()
    ducted = FABRIC.replace("wavelengths: 1}}", "wavelengths: 1, srlg: [duct1]}}")
    caplog.set_level(logging.INFO, logger="dcilab")
    service = ControllerService.standalone(parse_fabric(ducted.format(la=80, lb=100)), path)
    try:
        now = service.get(res.reservation_id)
        assert now.standby == () and now.request.protection is PROTECTED
        assert service.unprotected_count() == 1
        assert [r.standby for r in service.list()] == [()]      # so the state file says
        assert (f"reservation {res.reservation_id}: its standby shares srlg duct1 with its "
                f"primary since the fabric changed") in caplog.text
    finally:
        service.close()


GROWN = """
name: ops
sites:
  - {{name: a, spines: 1, leaves: {leaves}, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 1600}}
  - {{name: b, spines: 1, leaves: 1, hosts_per_leaf: 3, gateways: 1, fabric_gbps: 1600}}
dci_links:
  - {{name: la, a: a, b: b, fiber_km: 80, module: 400ZR, wavelengths: {la}}}
  - {{name: lb, a: a, b: b, fiber_km: 100, module: 400ZR, wavelengths: 1}}
"""


def grown(leaves: int = 1, la: int = 2):
    return parse_fabric(GROWN.format(leaves=leaves, la=la))


def test_paths_a_fabric_edit_took_away_are_placed_again_when_asked(tmp_path, caplog):
    """An operator's: a wavelength removed refused the start, and a leaf added to a site
    (its spine's ports renumbered) made every reservation across it unfit; only dropping
    them (--state-discard) would start, though all had room. Unasked, the start is still
    refused (a record edited behind the store's back must not pass), and says how."""
    path = tmp_path / "state.db"
    service = ControllerService.standalone(grown(la=2), path)
    made = [service.reserve(ReservationRequest(f"a-h{i}", f"b-h{i}", 200)) for i in (1, 2)]
    made.append(service.reserve(ReservationRequest("a-h1", "b-h1", 50)))   # h1's aggregate
    assert {h.wavelength for r in made for h in r.hops if h.wavelength} == {"la.w1", "la.w2"}
    service.close()
    import pytest

    from dcilab.store.sqlite import StoreError
    with pytest.raises(StoreError) as exc:
        ControllerService.standalone(grown(leaves=2, la=1), path)
    assert "3 reservation(s) do not fit fabric 'ops'" in str(exc.value)
    assert "--state-repath places again those whose path it no longer has" in str(exc.value)
    caplog.set_level(logging.INFO, logger="dcilab")
    service = ControllerService.standalone(grown(leaves=2, la=1), path,   # both edits
                                           repath_unfit=True)
    try:
        now = {r.reservation_id: r for r in service.list()}
        assert set(now) == {r.reservation_id for r in made}             # none dropped
        for before in made:
            after = service.get(before.reservation_id)
            assert now[before.reservation_id] == after                  # as the file says
            assert after.state is State.PENDING and after.meter_id == before.meter_id
            assert after.created_at == before.created_at
        first, second, joined = (service.get(r.reservation_id) for r in made)
        assert joined.hops == first.hops                                 # one aggregate
        assert {h.wavelength for r in (first, second) for h in r.hops if h.wavelength} == \
            {"la.w1", "lb.w1"}
        assert "placed again on this fabric" in caplog.text
    finally:
        service.close()


def test_a_path_taken_away_with_no_room_left_still_refuses_the_start_saying_so(tmp_path):
    path = tmp_path / "state.db"
    service = ControllerService.standalone(grown(la=2), path)
    for i in (1, 2, 3):                         # 360 + 360 + 300 Gb/s: la.w1, la.w2, lb.w1
        service.reserve(ReservationRequest(f"a-h{i % 2 + 1}", f"b-h{i}", 300 + 60 * (i < 3)))
    service.close()
    import pytest

    from dcilab.store.sqlite import StoreError
    with pytest.raises(StoreError) as exc:
        ControllerService.standalone(grown(la=1), path, repath_unfit=True)
    assert "1 reservation(s) do not fit fabric 'ops'" in str(exc.value)
    assert "; not placed again on this fabric: " in str(exc.value)


def test_placed_again_as_admission_places_moving_others_aside(tmp_path, caplog):
    """A re-tester's: placed again oldest first and only by moving their own aggregate,
    the 90 Gb/s reservations spread over the wavelengths and the last 270 found none (a
    layout that had fitted as it was)."""
    path = tmp_path / "state.db"
    service = ControllerService.standalone(grown(la=3), path)
    made = []
    for dst in ("b-h1", "b-h2", "b-h3"):    # best fit: each wavelength 90 + 270 = 360
        for src, gbps in (("a-h1", 90), ("a-h2", 270)):
            made.append(service.reserve(ReservationRequest(src, dst, gbps)))
    service.close()
    caplog.set_level(logging.INFO, logger="dcilab")
    service = ControllerService.standalone(grown(leaves=2, la=3), path, repath_unfit=True)
    try:
        assert {r.reservation_id for r in service.list()} == {r.reservation_id for r in made}
        assert all(r.state is State.PENDING for r in service.list())
        book = service.core.book
        assert all(bps <= book.capacity_bps(d) + 1 for d, bps in book.reserved.items())
    finally:
        service.close()


def test_placed_again_in_restorations_order_class_then_priority(tmp_path):
    """A re-tester's: a NONE reservation of priority 0, older, took the room of a
    RESTORABLE one of priority 9; --state-discard then ended the RESTORABLE one."""
    path = tmp_path / "state.db"
    service = ControllerService.standalone(grown(la=2), path)
    service.reserve(ReservationRequest("a-h1", "b-h1", 360))              # la.w1 full
    low = service.reserve(ReservationRequest("a-h1", "b-h2", 180,
                                             protection=Protection.NONE))
    high = service.reserve(ReservationRequest("a-h2", "b-h2", 180, priority=9))
    assert {h.wavelength for r in (low, high) for h in r.hops if h.wavelength} == {"la.w2"}
    service.close()
    smaller = GROWN.replace("module: 400ZR, wavelengths: 1}}",
                            "module: 400ZR+, wavelengths: 1, mode: 200G}}")
    fabric = parse_fabric(smaller.format(leaves=1, la=1))        # la.w2 gone, lb 200G
    service = ControllerService(FabricController(fabric), store=ReservationStore(
        path, fabric="ops"), drop_unfit=True, repath_unfit=True)
    try:
        assert service.get(high.reservation_id).state is State.PENDING
        assert service.get(low.reservation_id).state is State.RELEASED
    finally:
        service.close()


def test_a_protected_standby_over_its_bound_since_an_edit_is_dropped_and_said(tmp_path,
                                                                            caplog):
    path = tmp_path / "state.db"
    service = ControllerService.standalone(fabric(80, 90), path)
    res = service.reserve(ReservationRequest("a-h1", "b-h1", 100, max_latency_ms=0.6,
                                             protection=PROTECTED))
    assert [h.wavelength for h in res.standby if h.wavelength] == ["lb.w1"]
    service.close()
    caplog.set_level(logging.INFO, logger="dcilab")
    service = ControllerService.standalone(fabric(80, 140), path)    # lb 50 km longer
    try:
        assert service.get(res.reservation_id).standby == ()
        assert "its standby takes" in caplog.text and "over its max_latency_ms 0.6" in caplog.text
    finally:
        service.close()


def test_the_start_logs_where_each_placed_again_ended_and_nothing_when_refused(tmp_path,
                                                                              caplog):
    """A re-tester's: a "placed again (w1)" line named a path its reservation had left (moved
    aside for a later one), those moved aside were only counted, and a refused start still
    logged per-reservation warnings though it ran and saved nothing."""
    import re

    path = tmp_path / "state.db"
    service = ControllerService.standalone(grown(la=4), path)
    fa = service.reserve(ReservationRequest("a-h1", "b-h3", 360))
    fb = service.reserve(ReservationRequest("a-h2", "b-h3", 360))
    service.reserve(ReservationRequest("a-h1", "b-h2", 360))
    service.reserve(ReservationRequest("a-h2", "b-h1", 200))
    service.reserve(ReservationRequest("a-h2", "b-h1", 150))
    service.release(fa.reservation_id)
    service.reserve(ReservationRequest("a-h1", "b-h1", 160))
    service.release(fb.reservation_id)
    service.close()
    caplog.set_level(logging.INFO, logger="dcilab")
    import pytest

    from dcilab.store.sqlite import StoreError
    with pytest.raises(StoreError):
        ControllerService.standalone(grown(la=3), path)
    assert "reservation r-" not in caplog.text                 # refused: nothing said
    caplog.clear()
    service = ControllerService.standalone(grown(la=3), path, repath_unfit=True)
    try:
        lines = re.findall(r"reservation (r-\w+): .*placed again on this fabric \(([^)]*)\)",
                           caplog.text)
        lines += re.findall(r"reservation (r-\w+) moved aside to (\S+) ", caplog.text)
        assert lines
        for rid, where in lines:
            res = service.get(rid)
            assert where == " > ".join(h.wavelength for h in res.hops if h.wavelength)
    finally:
        service.close()


def test_a_path_gone_whose_bound_no_path_meets_now_is_kept_over_it_as_an_intact_one(
        tmp_path, caplog):
    """A re-tester's: a bounded reservation whose path was "gone" only because an edit
    renumbered a port was refused (admission held it to a bound no path met after the
    fibre grew), where the same reservation on an intact path is kept, over its bound, and
    moved within it or DEGRADED at the first restoration."""
    path = tmp_path / "state.db"
    service = ControllerService.standalone(grown(la=2), path)
    service.reserve(ReservationRequest("a-h1", "b-h1", 360))                  # la.w1
    res = service.reserve(ReservationRequest("a-h2", "b-h2", 100, max_latency_ms=0.45))
    assert [h.wavelength for h in res.hops if h.wavelength] == ["la.w2"]
    service.close()
    longer = GROWN.replace("fiber_km: 80", "fiber_km: 118")
    caplog.set_level(logging.INFO, logger="dcilab")
    service = ControllerService(FabricController(parse_fabric(longer.format(leaves=1, la=1))),
                                store=ReservationStore(path, fabric="ops"), repath_unfit=True)
    try:
        now = service.get(res.reservation_id)
        assert now.state is State.PENDING and now.latency_ms > 0.45
        assert service.core.book.over_bound(now)
        assert "placed again on this fabric" in caplog.text
    finally:
        service.close()
