"""Traffic selectors: a reservation that names its traffic is matched, pinned and metered
on its own, through the simulated flow tables of three-site (see test_repathing).

By hand: three-site's frankfurt-amsterdam line system has three 400ZR wavelengths
(360 Gb/s reservable each); scale 1e-4, so a 300 Gb/s meter polices 30000 kb/s.
"""

from __future__ import annotations

import pytest
from controller_lab import ControllerLab
from fabric_helpers import tcp_packet
from fakeoftable import Outcome
from test_repathing import THREE_SITES

from dcilab.core.reservation_rules import PRIORITY_DSCP, PRIORITY_PORTS
from dcilab.fabric import parse_fabric
from dcilab.te.reservations import (AdmissionError, ReservationBook, ReservationRequest,
                                    Selector, State)

SRC, DST = "fra-h1", "ams-h1"
IPERF = Selector(ip_proto=6, port_min=5201, port_max=5300)
EF = Selector(dscp=46)


@pytest.fixture
def fabric():
    return parse_fabric(THREE_SITES)


@pytest.fixture
def lab(fabric):
    lab = ControllerLab(fabric, reservable_fraction=0.9)
    lab.bring_up_all()
    return lab


def packet(lab, **fields):
    s, d = lab.fabric.hosts[SRC], lab.fabric.hosts[DST]
    return {**tcp_packet(s, d), **fields}


def followed(lab, pkt):
    """(switch hops, meter at the ingress leaf) of a packet of the pair."""
    s, d = lab.fabric.hosts[SRC], lab.fabric.hosts[DST]
    paths = lab.net.trace(lab.dpid(s.leaf), s.port, pkt)
    assert len(paths) == 1 and paths[0].outcome is Outcome.EGRESS
    assert paths[0].end == (lab.dpid(d.leaf), d.port)
    return ([(h.dpid, h.out_port) for h in paths[0].hops],
            lab.table(s.leaf).meter_for(pkt))


def hops_of(lab, res):
    return [(lab.dpid(h.switch), h.out_port) for h in res.hops]


def waves(res):
    return [h.wavelength for h in res.hops if h.wavelength]


def test_selected_traffic_has_its_own_path_and_meter(lab):
    agg = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 300.0), "agg", 0.0)).changed[0]
    sel = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 300.0, selector=IPERF),
                                   "iperf", 0.0)).changed[-1]
    lab.ack_all()
    # Both could not fit on one 360 Gb/s wavelength: the pair's reservations take two.
    assert waves(agg) != waves(sel)
    assert sel.meter_id != agg.meter_id
    for port in (5201, 5250, 5300):
        assert followed(lab, packet(lab, tcp_dst=port)) == (hops_of(lab, sel), sel.meter_id)
    for port in (5200, 5301, 80):
        assert followed(lab, packet(lab, tcp_dst=port)) == (hops_of(lab, agg), agg.meter_id)
    udp = {**packet(lab), "ip_proto": 17, "udp_dst": 5201}
    udp.pop("tcp_dst"), udp.pop("tcp_src")
    assert followed(lab, udp) == (hops_of(lab, agg), agg.meter_id)
    meter = lab.table("fra-leaf1").meters[sel.meter_id]
    assert [b.rate for b in meter.bands] == [30000]
    assert lab.ctl.book.get("iperf").state is State.ACTIVE


def test_a_dscp_selector_and_priority_between_selectors(lab):
    agg = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 10.0), "agg", 0.0)).changed[0]
    ef = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 20.0, selector=EF), "ef",
                                  0.0)).changed[0]
    ports = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 30.0, selector=IPERF),
                                     "p", 0.0)).changed[0]
    assert len({agg.meter_id, ef.meter_id, ports.meter_id}) == 3
    assert followed(lab, packet(lab, ip_dscp=46, tcp_dst=80))[1] == ef.meter_id
    assert followed(lab, packet(lab, ip_dscp=0, tcp_dst=80))[1] == agg.meter_id
    # A packet both select goes to the protocol selector (documented priority).
    assert followed(lab, packet(lab, ip_dscp=46, tcp_dst=5201))[1] == ports.meter_id


def test_same_selector_is_one_aggregate_and_release_removes_only_its_rules(lab):
    a = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 10.0), "agg", 0.0)).changed[0]
    s1 = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 20.0, selector=IPERF), "s1",
                                  0.0)).changed[0]
    s2 = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 30.0, selector=IPERF), "s2",
                                  0.0)).changed[-1]
    assert s1.meter_id == s2.meter_id and s1.hops == s2.hops
    meter = lab.table("fra-leaf1").meters[s1.meter_id]
    assert [b.rate for b in meter.bands] == [5000]            # 50 Gb/s x 1e-4 = 5e6 b/s
    lab.send(lab.ctl.end("s1"))
    assert [b.rate for b in lab.table("fra-leaf1").meters[s1.meter_id].bands] == [3000]
    lab.send(lab.ctl.end("s2"))
    assert s1.meter_id not in lab.table("fra-leaf1").meters
    assert followed(lab, packet(lab, tcp_dst=5201)) == (hops_of(lab, a), a.meter_id)
    # No pin of the selector is left anywhere.
    for name in lab.fabric.switches:
        assert not [e for e in lab.table(name).flows()
                    if e.priority in (PRIORITY_DSCP, PRIORITY_PORTS)], name


def test_overlapping_selectors_and_bad_selectors_are_refused_clearly(fabric):
    book = ReservationBook(fabric)
    book.admit(ReservationRequest(SRC, DST, 10.0, selector=IPERF), "a", 0.0)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest(SRC, DST, 10.0,
                                      selector=Selector(6, 5300, 5400)), "b", 0.0)
    assert info.value.code == AdmissionError.INVALID
    assert "overlaps tcp dport 5201-5300 of reservation a" in info.value.message
    # Disjoint ones, another protocol, or another pair are fine.
    book.admit(ReservationRequest(SRC, DST, 10.0, selector=Selector(6, 5301, 5400)), "c", 0.0)
    book.admit(ReservationRequest(SRC, DST, 10.0, selector=Selector(17, 5201, 5300)), "d", 0.0)
    book.admit(ReservationRequest(SRC, "ams-h2", 10.0, selector=Selector(6, 1, 65535)), "e",
               0.0)
    for bad, words in [(Selector(6, 10, 5), "1 <= min <= max"),
                       (Selector(1, 10, 20), "needs ip_protocol 6"),
                       (Selector(0), "ip_protocol must be 1-255"),
                       (Selector(dscp=64), "dscp must be 0-63"),
                       (Selector(6, dscp=10), "not both")]:
        with pytest.raises(AdmissionError) as info:
            book.admit(ReservationRequest(SRC, DST, 1.0, selector=bad), "x", 0.0)
        assert info.value.code == AdmissionError.INVALID and words in info.value.message


def test_selector_protection_and_standby_survive_the_store_and_the_api(tmp_path, fabric):
    import dataclasses

    from dcilab.api import convert
    from dcilab.store.sqlite import ReservationStore
    from dcilab.te.reservations import Protection, ReservedHop

    book = ReservationBook(fabric)
    res = book.admit(ReservationRequest(SRC, DST, 10.0, selector=IPERF,
                                        protection=Protection.NONE), "a", 0.0)
    res = dataclasses.replace(res, standby=(ReservedHop("fra-leaf1", 3, "x", None),))
    ef = book.admit(ReservationRequest(SRC, DST, 10.0, selector=EF), "b", 0.0)
    plain = book.admit(ReservationRequest(SRC, DST, 10.0), "c", 0.0)
    with ReservationStore(tmp_path / "s.db") as store:
        store.save_many([res, ef, plain])
        assert store.load_live() == [res, ef, plain]
    for r in (res, ef, plain):
        msg = convert.reservation(r)
        back = convert.reservation_request(
            convert.ppb.ReservePathRequest(src_host=SRC, dst_host=DST, bandwidth_gbps=10.0,
                                           selector=msg.selector if msg.HasField("selector")
                                           else None, protection=msg.protection))
        assert back.selector == r.request.selector
        assert back.protection == r.request.protection
    assert convert.reservation(res).protection == convert.ppb.PROTECTION_NONE
    assert [h.switch for h in convert.reservation(res).standby_hops] == ["fra-leaf1"]
    # Unset on the wire is RESTORABLE.
    unset = convert.reservation_request(convert.ppb.ReservePathRequest(src_host=SRC))
    assert unset.protection is Protection.RESTORABLE and unset.selector is None


def test_an_aggregate_past_one_wavelength_is_refused_with_the_way_out(fabric):
    """A pair's reservations without a selector are one aggregate on one path: past one
    wavelength's 360 Gb/s they are refused while the others stand empty, and the refusal
    says why and what to do; the same request with a selector of its own is admitted on
    another wavelength."""
    book = ReservationBook(fabric, 0.9)
    for i in range(7):
        book.admit(ReservationRequest(SRC, DST, 50.0), f"a{i}", 0.0)
    with pytest.raises(AdmissionError) as err:
        book.admit(ReservationRequest(SRC, DST, 50.0), "a7", 0.0)
    assert err.value.code == AdmissionError.EXHAUSTED
    assert "free counts, where they are, the 350.000 Gb/s the pair's 7 reservation(s) hold" \
        in err.value.message
    assert "traffic selector of its own" in err.value.message
    res = book.admit(ReservationRequest(SRC, DST, 50.0, selector=IPERF), "s", 0.0)
    waves = {h.wavelength for h in res.hops if h.wavelength}
    assert waves and waves.isdisjoint(h.wavelength for h in book.get("a0").hops)
    # Asked again, the refusal stands without a new search, and says its figures are old
    # (the selector's reservation took room since: an outside tester read stale numbers).
    with pytest.raises(AdmissionError) as again:
        book.admit(ReservationRequest(SRC, DST, 50.0), "a8", 0.0)
    assert again.value.message == ("50 Gb/s: 50 Gb/s was refused for this pair and nothing "
                                   "was released or moved since; then: " + err.value.message)
