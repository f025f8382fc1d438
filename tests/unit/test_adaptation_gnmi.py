"""Rate adaptation end to end over real gNMI, without an emulation: the transceivers'
gNMI server on an optical state (no data plane), the controller's gNMI client, and a
controller service with no switch connected. A span degrades; the wavelength is drained,
changed to a lower mode over gNMI Set, and back in use at the new rate; repaired, it goes
back up once the margin has held."""

import contextlib
import time

import pytest
from optical_helpers import zrplus_fabric

from dcilab.app.adaptation import RateAdaptation
from dcilab.app.service import ControllerService
from dcilab.core.adaptation import Phase, Policy
from dcilab.emulation.transceivers import TransceiverAgent
from dcilab.gnmi import TransceiverClient
from dcilab.gnmi.client import wait_until

W = "dc1-dc2.w1"


@contextlib.contextmanager
def adapting(fabric, policy: Policy):
    """The transceivers' gNMI server on an optical state (no data plane), a standalone
    service, and rate adaptation between them: (agent, client, service, adaptation)."""
    with TransceiverAgent(fabric, apply_effects=False, reconfiguration_s=1.0,
                          tick_s=0.1) as agent:
        client = TransceiverClient(agent.gnmi_address).start()
        service = ControllerService.standalone(fabric)
        try:
            yield agent, client, service, RateAdaptation(service, client, policy,
                                                         interval_s=0.1)
        finally:
            client.stop()


def test_degrading_span_steps_the_mode_down_after_a_drain_then_back_up(tmp_path):
    fabric, _ = zrplus_fabric(tmp_path)
    link = next(l for l in fabric.wavelengths() if l.wavelength == W)
    with adapting(fabric, Policy(hold_s=3.0, drain_s=0.5)) as (agent, client, service, adaptation):
        seen: list[tuple[Phase, bool, str]] = []

        def mode_at_agent():
            return {s.mode.name for (w, _), s in agent.state.statuses().items() if w == W}

        assert wait_until(lambda: len(client.readings()) == 4, 10)
        adaptation.step()
        assert adaptation.changes == []                     # 2.9 dB margin: nothing to do
        agent.state.degrade_span("dc1-dc2", 1, 6.6)    # ~0.8 dB in 400G: low, not urgent
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
                adaptation.changes and adaptation.adapter.phase(W) == Phase.IN_SERVICE
                and service.core.engine.usable(link)):
            adaptation.step()
            seen.append((adaptation.adapter.phase(W), service.core.engine.usable(link),
                         "/".join(sorted(mode_at_agent()))))
            time.sleep(0.1)
        change = adaptation.changes[0]
        assert (change.wavelength, change.from_mode, change.to_mode) == (W, "400G", "300G")
        # one wavelength of the line system at a time: w2 waits until w1 is back
        # (drain 0.5 s + reconfiguration 1 s)
        assert all(c.at >= change.at + 1.5 for c in adaptation.changes[1:])
        # drained before the transceivers changed mode, and in use only after
        first_300 = next(i for i, s in enumerate(seen) if "300G" in s[2])
        assert all(not usable for _, usable, _ in seen[:first_300] [-3:])
        assert seen[first_300 - 1][0] == Phase.DRAINING or not seen[first_300 - 1][1]
        assert mode_at_agent() == {"300G"}
        assert service.core.engine.rate_gbps(link) == 300
        assert service.core.engine.usable(link)
        # repaired: back to 400G once the margin has held for hold_s, and only once
        agent.state.restore("dc1-dc2")
        assert wait_until(lambda: (adaptation.step(), mode_at_agent() == {"400G"}
                                   and service.core.engine.rate_gbps(link) == 400)[1], 20,
                          step_s=0.1)
        mine = [c for c in adaptation.changes if c.wavelength == W]
        assert [c.to_mode for c in mine] == ["300G", "400G"]
        assert mine[1].at - mine[0].at >= 3.0
        for _ in range(40):                          # no more changes of w1 once stable
            adaptation.step()
            time.sleep(0.05)
        assert len([c for c in adaptation.changes if c.wavelength == W]) == 2


def test_a_sudden_loss_too_deep_to_decode_still_steps_the_mode_down(tmp_path):
    """An outside tester: 14 dB of extra loss at once (no ramp) took both wavelengths dark
    in 400G, where their receivers read nothing, so nothing stepped them down, though
    200G would have carried them: they stayed dark until the line was repaired. A receiver
    that gets light it cannot decode still reads its OSNR."""
    fabric, _ = zrplus_fabric(tmp_path)
    links = [l for l in fabric.wavelengths() if l.line_system == "dc1-dc2"]
    with adapting(fabric, Policy(hold_s=60.0, drain_s=0.2)) as (agent, client, service, adaptation):
        assert wait_until(lambda: len(client.readings()) == 4, 10)
        agent.state.degrade_span("dc1-dc2", 1, 14.0)
        statuses = agent.state.statuses()
        assert all(s.dark and s.signal for s in statuses.values())     # dark in 400G
        assert wait_until(lambda: (adaptation.step(), all(
            service.core.engine.usable(l) and service.core.engine.rate_gbps(l) < 400
            and adaptation.adapter.phase(l.wavelength) == Phase.IN_SERVICE
            for l in links))[1], 20, step_s=0.1)
        modes = {s.mode.name for s in agent.state.statuses().values()}
        assert len(modes) == 1 and modes < {"300G", "200G", "100G"}
        assert not any(s.dark for s in agent.state.statuses().values())
        assert {(c.from_mode, c.to_mode) for c in adaptation.changes} == {("400G", *modes)}


def test_without_adaptation_the_controller_follows_a_mode_an_operator_sets(tmp_path):
    """`controller --gnmi` without --adapt: a gNMI Set from elsewhere changes what the
    wavelength carries; capacity, admission and the links listing follow it, seen while
    the wavelength is still dark from the change."""
    from dcilab.app.adaptation import ModeFollower
    from dcilab.te.reservations import AdmissionError, ReservationRequest
    fabric, _ = zrplus_fabric(tmp_path)
    link = next(l for l in fabric.wavelengths() if l.wavelength == W)
    with TransceiverAgent(fabric, apply_effects=False, reconfiguration_s=8.0,
                          tick_s=0.1) as agent:
        client = TransceiverClient(agent.gnmi_address).start()
        operator = TransceiverClient(agent.gnmi_address).start()
        service = ControllerService.standalone(fabric)
        follower = ModeFollower(service, client, interval_s=0.1)
        try:
            # Both clients have heard every transceiver: the operator's Set is refused
            # for a wavelength it has not heard of yet (a reviewer saw it fail 1 in 3).
            assert wait_until(lambda: len(client.readings()) == 4
                              and len(operator.readings()) == 4, 10)
            follower.step()
            assert service.core.engine.rate_gbps(link) == 400       # as planned: nothing
            operator.set_mode(W, "300G")
            assert wait_until(lambda: (follower.step(),
                                       service.core.engine.rate_gbps(link) == 300)[1], 10,
                              step_s=0.1)
            assert service.core.engine.mode(link) == "300G"
            dark = {s.dark for (w, _), s in agent.state.statuses().items() if w == W}
            assert dark == {True}               # followed while it still reconfigures
            capacity = {l.capacity_bps for l in service.link_loads() if l.link == link.name}
            assert capacity == {300e9}
            # 270 G reservable on w1 now, 360 G on w2: 300 G can only take w2
            first = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 300.0))
            assert {h.wavelength for h in first.hops if h.wavelength} == {"dc1-dc2.w2"}
            service.release(first.reservation_id)
            w2 = next(l for l in fabric.wavelengths() if l.wavelength == "dc1-dc2.w2")
            service.apply(lambda core: core.wavelength_mode("dc1-dc2.w2", "300G", 300.0))
            with pytest.raises(AdmissionError, match="270.000 Gb/s reservable"):
                service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 280.0))
            assert service.core.engine.rate_gbps(w2) == 300
        finally:
            operator.stop()
            client.stop()


def test_with_adaptation_the_controller_follows_a_mode_it_did_not_set(tmp_path):
    """An optical tester's finding: under --adapt an operator's Set to 300G left the
    controller counting 400G (only without --adapt was it followed), and a 350 G
    reservation was admitted on a wavelength shaped at 300G."""
    fabric, _ = zrplus_fabric(tmp_path)
    link = next(l for l in fabric.wavelengths() if l.wavelength == W)
    with adapting(fabric, Policy(hold_s=3600.0)) as (agent, client, service, adaptation):
        operator = TransceiverClient(agent.gnmi_address).start()
        try:
            assert wait_until(lambda: len(client.readings()) == 4
                              and len(operator.readings()) == 4, 10)
            operator.set_mode(W, "300G")
            assert wait_until(lambda: (adaptation.step(),
                                       service.core.engine.rate_gbps(link) == 300)[1], 10,
                              step_s=0.1)
            assert service.core.engine.mode(link) == "300G"
            assert adaptation.adapter.phase(W) is Phase.IN_SERVICE
        finally:
            operator.stop()


def test_a_mode_set_at_one_end_only_is_set_at_both_once_they_have_disagreed(tmp_path, caplog):
    """An optical tester: a gNMI Set to one gateway's transceiver only left the wavelength
    dark for good, the controller silent. With adaptation both ends are set to one mode
    once they have disagreed for `mismatch_s`; without, the controller says, once, that
    the wavelength is dark until they agree."""
    from dcilab.app.adaptation import ModeFollower
    fabric, _ = zrplus_fabric(tmp_path)
    link = next(l for l in fabric.wavelengths() if l.wavelength == W)
    gateway = next(l.a.node for l in fabric.wavelengths() if l.wavelength == W)

    def modes_at_agent():
        return {s.mode.name for (w, _), s in agent.state.statuses().items() if w == W}

    caplog.set_level("INFO", logger="dcilab")
    with adapting(fabric, Policy(hold_s=3600.0, drain_s=0.2, mismatch_s=1.0)) as (
            agent, client, service, adaptation):
        follower = ModeFollower(service, client, interval_s=0.1, mismatch_s=0.5)
        assert wait_until(lambda: len(client.readings()) == 4, 10)
        agent.state.set_mode(W, "300G", gateway=gateway)
        assert wait_until(lambda: (follower.step(), "its transceivers run different modes "
                                   "(300G and 400G)" in caplog.text)[1], 10, step_s=0.1)
        assert caplog.text.count("run different modes") == 1       # said once
        assert modes_at_agent() == {"300G", "400G"}                 # the follower sets none
        assert wait_until(lambda: (adaptation.step(), len(modes_at_agent()) == 1
                                   and adaptation.adapter.phase(W) == Phase.IN_SERVICE
                                   and service.core.engine.usable(link))[1], 20, step_s=0.1)
        # 400G if both ends read their OSNR when it was decided (2.9 dB of margin), else
        # the safer end's 300G; capacity follows whichever
        [change] = [c for c in adaptation.changes if c.wavelength == W]
        assert change.from_mode == "300G/400G" and {change.to_mode} == modes_at_agent()
        assert service.core.engine.rate_gbps(link) == int(change.to_mode[:-1])
