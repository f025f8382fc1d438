"""`dcilab train` after a fault: each flow's fair share of the DCI that is left (a detour
when a pair's line systems are all down), the flows re-paced at it, and the steps compared
with the planner on that DCI."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcilab.bench.training import DciWatch
from dcilab.fabric import load_fabric
from dcilab.fabric.model import scaled_mbps
from dcilab.plan import parse_job, plan_job
from dcilab.plan.fabric_out import fabric_yaml
from dcilab.plan.workload import (SyncFlow, directed_capacity_gbps, fabric_prediction,
                                  fair_shares, pair_gbps_now, share_mbps, sync_flows)

JOBS = Path(__file__).resolve().parents[3] / "jobs"


def _planned(name: str, tmp_path):
    path = JOBS / name
    job = parse_job(path.read_text(), str(path))
    out = tmp_path / "fabric.yaml"
    out.write_text(fabric_yaml(plan_job(job)))
    return job, load_fabric(out)


def test_on_the_whole_fabric_the_fair_shares_are_the_pairs_capacity_over_its_flows(tmp_path):
    job, fabric = _planned("25b-data-3dc-400zr.yaml", tmp_path)
    flows = sync_flows(job, fabric, 1.0)
    shares = fair_shares(flows, directed_capacity_gbps(fabric))
    assert [scaled_mbps(fabric, g) for g in shares] == pytest.approx(share_mbps(fabric, flows))
    # ... and what each pair then carries is its capacity: the planner's own input
    loaded = pair_gbps_now(job, flows, shares)
    whole = fabric.capacity_by_site_pair()
    assert loaded == {k: pytest.approx(whole[tuple(sorted(k))]) for k in loaded}


def _mesh_flows(per: int) -> list[SyncFlow]:
    return [SyncFlow(f"{a}{i}", f"{b}{i}", 1000, (a, b))
            for a, b in (("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c"), ("c", "b"))
            for i in range(per)]


def test_a_pair_whose_line_systems_are_all_down_shares_the_detour_max_min():
    per, c = 4, 400.0
    dci = {(x, y): c for x in "abc" for y in "abc" if x != y}
    flows = _mesh_flows(per)
    assert fair_shares(flows, dci) == pytest.approx([c / per] * len(flows))
    dci[("a", "b")] = dci[("b", "a")] = 0.0        # a-b cut: its flows go through c
    shares = dict(zip(((f.pair, f.src) for f in flows), fair_shares(flows, dci)))
    # a->c carries a's own 4 flows to c and the 4 detoured a->b ones: each half its share
    for pair in (("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")):
        assert [shares[(pair, f"{pair[0]}{i}")] for i in range(per)] == \
            pytest.approx([c / (2 * per)] * per)


def test_half_a_pairs_wavelengths_lost_halves_its_flows_and_only_theirs():
    dci = {(x, y): 400.0 for x in "abc" for y in "abc" if x != y}
    dci[("a", "b")] = 200.0                         # one direction only
    flows = _mesh_flows(2)
    shares = fair_shares(flows, dci)
    for f, g in zip(flows, shares):
        assert g == pytest.approx(100.0 if f.pair == ("a", "b") else 200.0)


def test_a_pair_with_no_way_left_gets_nothing():
    flows = [SyncFlow("a0", "b0", 10, ("a", "b")), SyncFlow("b0", "a0", 10, ("b", "a"))]
    assert fair_shares(flows, {("a", "b"): 0.0, ("b", "a"): 400.0}) == [0.0, 400.0]


class _Scripted(DciWatch):
    """The controller's answers, one per sync (None: it did not answer)."""

    def __init__(self, views, *args):
        super().__init__("unused", *args)
        self.views = list(views)

    def _read(self):
        return self.views.pop(0)


def test_the_watch_re_paces_when_the_dci_changes_and_back_when_it_is_whole(tmp_path):
    job, fabric = _planned("10b-data-2dc.yaml", tmp_path)
    flows = sync_flows(job, fabric, fabric.scale * 5, 4)
    first = [0.95 * m for m in share_mbps(fabric, flows)]
    whole = directed_capacity_gbps(fabric)
    half = {d: g / 2 for d, g in whole.items()}
    said = []
    watch = _Scripted([whole, half, half, None, whole], job, fabric, flows, 5.0, first,
                      said.append)
    assert watch(1) is None                                 # as paced: nothing to do
    paces = watch(2)
    assert paces == pytest.approx([p / 2 for p in first])
    assert watch(3) is None and watch(4) is None            # unchanged; no answer: as it was
    assert watch(5) == first                                # whole again
    assert sorted(watch.notes) == [2, 3, 4]
    note = watch.notes[2]
    intact = fabric_prediction(job, fabric, 5.0)
    assert note["predicted_step_s"] > intact.step_time_s
    # the sync on half the capacity takes twice as long
    exposed = note["predicted_step_s"] - intact.step_time_s + intact.exposed_s
    assert exposed + job.spec.step.overlap_s * 5 == pytest.approx(2 * intact.sync_s, rel=1e-3)
    assert "dc-a-dc-b 200 of 400 Gb/s" in note["dci"]
    assert note["pace_mbps_by_direction"] == {
        "dc-a->dc-b": pytest.approx(first[0] / 2, rel=1e-3),
        "dc-b->dc-a": pytest.approx(first[-1] / 2, rel=1e-3)}
    assert any("step 2: the DCI is not the fabric's: dc-a-dc-b 200 of 400 Gb/s" in m
               for m in said)
    assert any("step 5: the DCI is whole again; flows back at their first pace" in m
               for m in said)
    # unpaced flows (--pacing none) are left alone, and still compared
    unpaced = _Scripted([half], job, fabric, flows, 5.0, None, said.append)
    assert unpaced(1) is None and 1 in unpaced.notes


def test_a_pair_left_with_no_way_keeps_its_pace_and_has_no_prediction(tmp_path):
    job, fabric = _planned("10b-data-2dc.yaml", tmp_path)
    flows = sync_flows(job, fabric, fabric.scale * 5, 4)
    first = [0.95 * m for m in share_mbps(fabric, flows)]
    said = []
    cut = {d: 0.0 for d in directed_capacity_gbps(fabric)}
    watch = _Scripted([cut], job, fabric, flows, 5.0, first, said.append)
    assert watch(1) == first                    # not 0, which would lift every cap
    assert watch.notes[1]["predicted_step_s"] is None
    assert "a site pair has no way left: its sync cannot end" in said[0]


def test_flows_are_paced_no_faster_than_whole_flows_fit_the_wavelengths_left():
    """A reviewer: after a cut the flows were paced at the capacity left over their count,
    which overfills a wavelength wherever they do not divide over those left (8 flows on
    3 wavelengths: 3 flows' pace on one)."""
    from dcilab.plan.hardware import whole_flow_share
    assert whole_flow_share([400.0] * 3, 8) == pytest.approx(400 / 3)
    assert whole_flow_share([400.0] * 4, 8) == pytest.approx(200.0)
    assert whole_flow_share([800.0] * 4 + [400.0], 4) == pytest.approx(800.0)
    assert whole_flow_share([800.0] * 4 + [400.0], 8) == pytest.approx(400.0)
    assert whole_flow_share([], 8) == 0.0
    flows = [SyncFlow(f"a{i}", f"b{i}", 1000, ("a", "b")) for i in range(8)]
    dci = {("a", "b"): 1200.0, ("b", "a"): 1200.0}
    assert fair_shares(flows, dci) == pytest.approx([150.0] * 8)        # the sum alone
    assert fair_shares(flows, dci, {("a", "b"): [400.0] * 3}) == pytest.approx([400 / 3] * 8)


class _ScriptedWaves(_Scripted):
    def _read(self):
        now, self._waves_read = self.views.pop(0)
        return now


def test_the_watch_re_paces_on_the_wavelengths_left_not_their_sum(tmp_path):
    job, fabric = _planned("10b-data-2dc.yaml", tmp_path)
    flows = sync_flows(job, fabric, fabric.scale * 5, 8)
    first = [0.95 * m for m in share_mbps(fabric, flows)]
    three = {d: 300.0 for d in directed_capacity_gbps(fabric)}
    waves = {d: [100.0] * 3 for d in three}
    watch = _ScriptedWaves([(three, waves)], job, fabric, flows, 5.0, first, lambda m: None)
    paces = watch(1)
    assert paces == pytest.approx([0.95 * scaled_mbps(fabric, 100.0 / 3)] * len(flows))
    assert paces[0] < 0.95 * scaled_mbps(fabric, 300.0 / 8)


def test_detoured_flows_are_paced_for_whole_flows_on_every_hop_of_the_detour():
    """A re-tester: with a pair's line cut, its 5 flows went round another site paced at
    the detour's capacity over them, two on one wavelength of it: ~680 drops a sync."""
    flows = [SyncFlow(f"n{i}", f"s{i}", 1000, ("n", "s")) for i in range(5)]
    dci = {("n", "e"): 1200.0, ("e", "s"): 1200.0, ("n", "s"): 0.0}
    waves = {("n", "e"): [400.0] * 3, ("e", "s"): [400.0] * 3}
    assert fair_shares(flows, dci) == pytest.approx([240.0] * 5)           # the sum alone
    assert fair_shares(flows, dci, waves) == pytest.approx([200.0] * 5)    # 2 on one of 3


def test_a_pair_whose_line_the_routes_pass_by_is_paced_for_the_way_round():
    """A re-tester's ring: the 300 km pair's sync went round the others, paced for its own
    line (2 153-4 229 drops a sync). Over the stretch (loadaware's 1.5, hashed routes' 1.0)
    its flows take the shortest way, and share it with the pairs whose lines that is."""
    per = 4
    flows = [SyncFlow(f"{a}{i}", f"{b}{i}", 1000, (a, b))
             for a, b in (("a", "c"), ("a", "b"), ("b", "c")) for i in range(per)]
    dci = {(x, y): 400.0 for x in "abc" for y in "abc" if x != y}
    waves = {d: [400.0] for d in dci}

    def shares(a_c_ms: float, max_stretch: float) -> dict:
        latency = {d: 10.0 for d in dci} | {("a", "c"): a_c_ms, ("c", "a"): a_c_ms}
        got = fair_shares(flows, dci, waves, latency, max_stretch)
        return {pair: got[i * per] for i, pair in enumerate((("a", "c"), ("a", "b"),
                                                               ("b", "c")))}
    # its own line within the stretch: each pair alone on its line, 100 a flow
    assert shares(25.0, 1.5) == pytest.approx({("a", "c"): 100.0, ("a", "b"): 100.0,
                                               ("b", "c"): 100.0})
    # over it (50 ms > 1.5 x 20), or beyond the shortest under hashed routes: a-c's flows
    # cross a-b and b-c with theirs, 8 flows a hop
    for a_c_ms, max_stretch in ((50.0, 1.5), (25.0, 1.0)):
        assert shares(a_c_ms, max_stretch) == pytest.approx({("a", "c"): 50.0,
                                                             ("a", "b"): 50.0,
                                                             ("b", "c"): 50.0})
    # without latencies, as before: every pair on its own line
    assert fair_shares(flows, dci, waves) == pytest.approx([100.0] * len(flows))


def test_the_stretch_is_inclusive_and_a_cut_pair_takes_the_latency_shortest_detour():
    flows = [SyncFlow(f"{a}{i}", f"{b}{i}", 1000, (a, b))
             for a, b in (("a", "b"), ("a", "d"), ("a", "c")) for i in range(4)]
    dci = {(x, y): 400.0 for x in "abcd" for y in "abcd" if x != y}
    waves = {d: [400.0] for d in dci}
    latency = {d: 10.0 for d in dci}
    latency |= {("a", "d"): 5.0, ("d", "b"): 5.0, ("a", "b"): 15.0}
    # a-b at exactly 1.5 x the way through d (10 ms): still its own line, as the placer's <=
    assert fair_shares(flows, dci, waves, latency, 1.5) == pytest.approx([100.0] * 12)
    dci[("a", "b")] = 0.0                          # a-b cut: round by d, the shorter way
    got = fair_shares(flows, dci, waves, latency, 1.5)
    assert got[:8] == pytest.approx([50.0] * 8)    # a->d carries a-b's 4 and a-d's 4
    assert got[8:] == pytest.approx([100.0] * 4)   # a-c alone


def test_each_policy_paces_for_the_ways_its_routes_take():
    """On a triangle whose a-c line is 1.25 x the way through b: loadaware steers a-c's
    flows onto it, hashed routes send them through b (`policy_stretch`)."""
    from dcilab.bench.training import policy_stretch
    from dcilab.fabric import parse_fabric
    fabric = parse_fabric("""
name: stretched
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 2}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 2}
  - {name: c, spines: 1, leaves: 1, hosts_per_leaf: 2}
dci_links:
  - {name: a-b, a: a, b: b, fiber_km: 100, module: 400ZR+, wavelengths: 1}
  - {name: b-c, a: b, b: c, fiber_km: 100, module: 400ZR+, wavelengths: 1}
  - {name: a-c, a: a, b: c, fiber_km: 250, module: 400ZR+, wavelengths: 1}
""")
    flows = [SyncFlow(f"{a}-h{i % 2 + 1}", f"{b}-h{i % 2 + 1}", 1000, (a, b))
             for a, b in (("a", "c"), ("a", "b"), ("b", "c")) for i in range(4)]
    steered = share_mbps(fabric, flows, policy_stretch("loadaware"))
    hashed = share_mbps(fabric, flows, policy_stretch("ecmp"))
    assert policy_stretch("shortest") == policy_stretch("ecmp") == 1.0
    assert len(set(steered)) == 1 and len(set(hashed)) == 1     # 4 a line, then 8 a hop
    assert hashed[0] == pytest.approx(steered[0] / 2)


def test_a_sync_an_outage_held_up_waits_for_its_flows_past_the_repair(tmp_path):
    """An ML-infra tester's: a 37 s cut of the one line system in a sync; its flows, in
    TCP's backed-off retransmissions, came 18-28 s after the repair, one past the sync's
    80 s limit, and the run ended. While a pair has no way the deadline keeps ahead, and
    then holds the grace past the repair; a sync no outage touched keeps its own."""
    job, fabric = _planned("10b-data-2dc.yaml", tmp_path)
    flows = sync_flows(job, fabric, fabric.scale * 5, 4)
    whole = directed_capacity_gbps(fabric)
    cut = {d: 0.0 for d in whole}
    said = []
    now = [0.0]
    watch = _Scripted([whole, cut, cut, whole, whole], job, fabric, flows, 5.0, None,
                      said.append)
    later = watch.during_sync(1, lambda paces: None, 120.0, clock=lambda: now[0])
    assert later() is None                           # whole: the sync's own deadline
    now[0] = 0.2
    assert later() is None and len(watch.views) == 4     # asked every 0.25 s at most
    now[0] = 10.0
    assert later() == 12.0                           # cut: always a little ahead
    now[0] = 50.0
    assert later() == 52.0
    now[0] = 60.0
    assert later() == 180.0                          # a way again at 60 s: 120 s more
    assert "the sync waits up to 120 s more" in said[-1]
    now[0] = 61.0
    assert later() == 180.0
    fresh = _Scripted([whole] * 3, job, fabric, flows, 5.0, None, said.append)
    quiet = fresh.during_sync(1, lambda paces: None, 120.0, clock=lambda: now[0])
    assert quiet() is None



def test_a_change_during_a_sync_re_paces_the_flows_at_once_and_back_when_whole(tmp_path):
    """An ML-infra tester's: a wavelength cut in the middle of a sync was paced for only
    at the next one, and that sync's flows overran what was left (1 167-1 864 drops
    against 0-35). The watch now re-paces them within a second of the controller saying
    so, and the step is left out of the steady figures."""
    job, fabric = _planned("10b-data-2dc.yaml", tmp_path)
    flows = sync_flows(job, fabric, fabric.scale * 5, 4)
    first = [0.95 * m for m in share_mbps(fabric, flows)]
    whole = directed_capacity_gbps(fabric)
    half = {d: g / 2 for d, g in whole.items()}
    said, paced, now = [], [], [0.0]
    watch = _Scripted([whole, whole, half, half, whole, whole], job, fabric, flows, 5.0,
                      first, said.append)
    assert watch(1) is None                                   # the sync starts intact
    later = watch.during_sync(1, paced.append, 120.0, clock=lambda: now[0])
    assert later() is None and paced == []                    # unchanged: nothing sent
    now[0] = 1.0
    assert later() is None                                    # half now: a way is left
    assert paced == [pytest.approx([p / 2 for p in first])]
    assert "step 1, during its sync: the DCI is not the fabric's: dc-a-dc-b 200 of 400 " \
        "Gb/s; flows re-paced at" in said[-1]
    now[0] = 2.0
    later()
    assert len(paced) == 1                                    # the same: not sent again
    now[0] = 3.0
    later()
    assert paced[-1] == first and said[-1].endswith("the DCI is whole again; flows re-paced "
                                                    f"at {first[0]:.3g} Mb/s")
    assert watch.during == {1: ["dc-a-dc-b 200 of 400 Gb/s", "whole again"]}
    assert 1 not in watch.notes
    # the next sync starts as the last read left it: whole, paced for already
    assert watch(2) is None and 2 not in watch.notes and len(paced) == 2
    said.clear()
    # unpaced flows (--pacing none) are not paced, but the change is told and kept
    unpaced = _Scripted([half], job, fabric, flows, 5.0, None, said.append)
    unpaced.during_sync(3, paced.append, 120.0, clock=lambda: now[0])()
    assert len(paced) == 2 and unpaced.during == {3: ["dc-a-dc-b 200 of 400 Gb/s"]}
    # the next step starts on the DCI that change left: said, with the planner on it
    # (a tester's: it started silently)
    unpaced.views = [half]
    assert unpaced(4) is None and 4 in unpaced.notes
    assert "step 4: the DCI is not the fabric's: dc-a-dc-b 200 of 400 Gb/s; the planner on " \
        "the DCI as it is" in said[-1]


def test_a_pair_cut_off_during_a_sync_keeps_its_pace_and_says_so(tmp_path):
    """A tester's: "flows re-paced at 2.28 Mb/s" was said of flows whose pair had no way
    left, which keep their pace (0 would lift it)."""
    job, fabric = _planned("10b-data-2dc.yaml", tmp_path)
    flows = sync_flows(job, fabric, fabric.scale * 5, 4)
    first = [0.95 * m for m in share_mbps(fabric, flows)]
    cut = {d: 0.0 for d in directed_capacity_gbps(fabric)}
    said, paced = [], []
    watch = _Scripted([cut], job, fabric, flows, 5.0, first, said.append)
    watch._out_read = ["dc-a-dc-b.w1"]
    watch.during_sync(1, paced.append, 120.0, clock=lambda: 0.0)()
    assert paced == [first]
    # half left, then none: the flows keep the half's pace (not their first: a re-tester's)
    half = {d: g / 2 for d, g in directed_capacity_gbps(fabric).items()}
    again = _Scripted([half, cut], job, fabric, flows, 5.0, first, said.append)
    clock = [0.0]
    later = again.during_sync(1, paced.append, 120.0, clock=lambda: clock[0])
    later()
    clock[0] = 1.0
    later()
    assert paced[-1] == paced[-2] == pytest.approx([p / 2 for p in first])
    assert said[-1].endswith("its flows keep their pace until one returns")
    assert said[-3] == ("step 1, during its sync: the DCI is not the fabric's: dc-a-dc-b 0 of "
                        "400 Gb/s (dc-a-dc-b.w1 out of service); a site pair has no way left: "
                        "its flows keep their pace until one returns")


def test_an_outage_wait_ends_when_the_controller_says_nothing_for_the_grace(tmp_path):
    """A reviewer's: with a pair cut off and the controller gone for good, the deadline
    moved ahead for ever and the sync never ended."""
    job, fabric = _planned("10b-data-2dc.yaml", tmp_path)
    flows = sync_flows(job, fabric, fabric.scale * 5, 4)
    cut = {d: 0.0 for d in directed_capacity_gbps(fabric)}
    now = [0.0]
    watch = _Scripted([cut] + [None] * 200, job, fabric, flows, 5.0, None, lambda m: None)
    later = watch.during_sync(1, lambda paces: None, 120.0, clock=lambda: now[0])
    assert later() == 2.0                            # cut off, the controller says so
    now[0] = 100.0
    assert later() == 102.0                          # no answer since: still waiting
    now[0] = 119.0
    assert later() == 120.0                          # ... up to the grace since the last
    now[0] = 130.0
    assert later() == 120.0                          # answer, and no longer


def test_a_controller_unreachable_gets_a_fresh_channel_next_time(tmp_path):
    """A reviewer's: one channel kept for the run backed off its reconnection (22 s
    after a 40 s outage); the watch drops it when the controller cannot be reached."""
    from dcilab.sockets import free_port
    job, fabric = _planned("10b-data-2dc.yaml", tmp_path)
    flows = sync_flows(job, fabric, fabric.scale * 5, 4)
    said = []
    watch = DciWatch(f"127.0.0.1:{free_port()}", job, fabric, flows, 5.0, None, said.append)
    try:
        assert watch._read() is None and watch._client is None
        assert watch._read() is None and len(said) == 1       # said once an outage
    finally:
        watch.close()


def test_a_flow_is_waited_for_to_the_deadline_as_it_moves():
    import subprocess
    import time

    from dcilab.emulation.training import _one_line_each
    procs = [subprocess.Popen(["sh", "-c", "sleep 1.5; echo done"], stdout=subprocess.PIPE)
             for _ in range(2)]
    try:
        start = time.monotonic()
        assert _one_line_each(procs[:1], start + 0.3) == [None]          # a fixed one passes
        # an outage's: kept half a second ahead (the flow ends at 1.5 s; bounded at 60 s
        # so that a busy machine's slow start cannot fail it)
        assert _one_line_each(procs[1:], lambda: min(time.monotonic() + 0.5,
                                                      start + 60.0)) == ["done"]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            proc.stdout.close()
