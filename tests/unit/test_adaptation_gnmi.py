"""Rate adaptation end to end over real gNMI, without an emulation: the transceivers'
gNMI server on an optical state (no data plane), the controller's gNMI client, and a
controller service with no switch connected. A span degrades; the wavelength is drained,
changed to a lower mode over gNMI Set, and back in use at the new rate; repaired, it goes
back up once the margin has held."""

import time

from optical_helpers import zrplus_fabric

from dcilab.app.adaptation import RateAdaptation
from dcilab.app.service import ControllerService
from dcilab.core.adaptation import Phase, Policy
from dcilab.emulation.transceivers import TransceiverAgent
from dcilab.gnmi import TransceiverClient
from dcilab.gnmi.client import wait_until

W = "dc1-dc2.w1"


def test_degrading_span_steps_the_mode_down_after_a_drain_then_back_up(tmp_path):
    fabric, _ = zrplus_fabric(tmp_path)
    link = next(l for l in fabric.wavelengths() if l.wavelength == W)
    with TransceiverAgent(fabric, apply_effects=False, reconfiguration_s=1.0,
                          tick_s=0.1) as agent:
        client = TransceiverClient(agent.gnmi_address).start()
        service = ControllerService.standalone(fabric)
        adaptation = RateAdaptation(service, client, Policy(hold_s=3.0, drain_s=0.5),
                                    interval_s=0.1)
        seen: list[tuple[Phase, bool, str]] = []

        def mode_at_agent():
            return {s.mode.name for (w, _), s in agent.state.statuses().items() if w == W}

        try:
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
        finally:
            client.stop()
