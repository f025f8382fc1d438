"""The transceivers' gNMI server on a static optical state (no emulation): read and set
with an independent client (pygnmicli, PyPI pygnmi's CLI), subscribe with the
controller's client, and export what it receives as metrics."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from optical_helpers import zrplus_fabric
from prometheus_client import CollectorRegistry, generate_latest
from pygnmi.spec.v080 import gnmi_pb2, gnmi_pb2_grpc

from dcilab.emulation.transceivers import TransceiverAgent
from dcilab.gnmi import GnmiClientError, TransceiverClient
from dcilab.gnmi.client import _path, wait_until
from dcilab.metrics.optical import OpticalCollector

PYGNMICLI = Path(sys.executable).with_name("pygnmicli")
COMPONENT = "/components/component[name=dc1-dc2.w1]/optical-channel"


@pytest.fixture
def agent(tmp_path):
    fabric, _ = zrplus_fabric(tmp_path)
    with TransceiverAgent(fabric, apply_effects=False, reconfiguration_s=3.0,
                          tick_s=0.1) as agent:
        yield agent


def pygnmicli(agent, tmp_path, *args):
    """Run pygnmicli against the agent; return its printed JSON documents."""
    assert PYGNMICLI.exists() or shutil.which("pygnmicli")
    done = subprocess.run([str(PYGNMICLI), "-t", agent.gnmi_address, "-i", "-u", "x", "-p", "x",
                           *args], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out, docs, depth, start = done.stdout, [], 0, None
    for i, ch in enumerate(out):                  # the JSON documents among its chatter
        if ch == "{":
            depth += 1
            start = i if depth == 1 else start
        elif ch == "}":
            depth -= 1
            if depth == 0:
                docs.append(json.loads(out[start:i + 1]))
    return docs


def values(docs):
    out = {}
    for doc in docs:
        for note in doc.get("notification", [doc.get("update", {})]):
            for update in note.get("update", []):
                out[update["path"]] = update["val"]
    return out


def test_pygnmicli_reads_a_transceiver(agent, tmp_path):
    docs = pygnmicli(agent, tmp_path, "-o", "get", "--gnmi-path-target", "dc1-gw1",
                     "-x", f"{COMPONENT}/state")
    got = values(docs)
    base = "components/component[name=dc1-dc2.w1]/optical-channel/state"
    status = agent.state.statuses()[("dc1-dc2.w1", "dc1-gw1")]
    assert got[f"{base}/operational-mode"] == 2             # 400ZR+ 400G
    assert got[f"{base}/frequency"] == round(status.transceiver.frequency_thz * 1e6)
    assert got[f"{base}/osnr/instant"] == pytest.approx(status.reading.osnr_db, abs=0.01)
    ber = values(pygnmicli(agent, tmp_path, "-o", "get", "--gnmi-path-target", "dc1-gw1", "-x",
                           "/terminal-device/logical-channels/channel[index=2]/otn/state/pre-fec-ber/instant"))
    assert list(ber.values()) == [pytest.approx(status.reading.prefec_ber, rel=1e-5)]


def test_pygnmicli_sets_the_operational_mode(agent, tmp_path):
    (tmp_path / "mode.json").write_text("3")               # 400ZR+ 300G DP-8QAM
    pygnmicli(agent, tmp_path, "-o", "set-update", "-x", f"{COMPONENT}/config/operational-mode",
              "-f", str(tmp_path / "mode.json"))
    statuses = agent.state.statuses()
    assert {statuses[("dc1-dc2.w1", gw)].mode.name for gw in ("dc1-gw1", "dc2-gw1")} == {"300G"}
    assert agent.state.effects()["dc1-dc2.w1"].dark          # reconfiguring
    assert wait_until(lambda: not agent.state.effects()["dc1-dc2.w1"].dark, 5)
    assert agent.state.effects()["dc1-dc2.w1"].rate_gbps == 300
    got = values(pygnmicli(agent, tmp_path, "-o", "get", "--gnmi-path-target", "dc2-gw1",
                           "-x", f"{COMPONENT}/state/operational-mode"))
    assert list(got.values()) == [3]


def test_pygnmicli_subscribe_once_ends_with_sync(agent, tmp_path):
    docs = pygnmicli(agent, tmp_path, "-o", "subscribe-once", "-x",
                     "/terminal-device/logical-channels/channel/otn/state/q-value/instant")
    assert docs[-1] == {"sync_response": True}
    updates = [u for d in docs[:-1] for u in d["update"]["update"]]
    assert len(updates) == 4                                 # 2 wavelengths x 2 gateways


def stub(agent):
    channel = grpc.insecure_channel(agent.gnmi_address)
    return channel, gnmi_pb2_grpc.gNMIStub(channel)


def test_errors_carry_status_codes_and_say_why(agent):
    channel, gnmi = stub(agent)
    with channel:
        with pytest.raises(grpc.RpcError) as bad:
            gnmi.Set(gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(
                path=_path(f"{COMPONENT}/config/operational-mode"),
                val=gnmi_pb2.TypedValue(json_val=b"1"))]), timeout=5)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "operational-mode 1 is not a mode of 400ZR+" in bad.value.details()
        with pytest.raises(grpc.RpcError) as bad:
            gnmi.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="dc9-gw1"),
                                         path=[_path("/components")]), timeout=5)
        assert bad.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as bad:
            gnmi.Set(gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(
                path=_path(f"{COMPONENT}/config/frequency"),
                val=gnmi_pb2.TypedValue(json_val=b"193100000"))]), timeout=5)
        assert "only operational-mode is writable" in bad.value.details()


def test_a_set_is_all_or_nothing_and_a_refused_ramp_changes_nothing(agent):
    """An optical tester's findings: a Set of two modes, the second for an unknown
    wavelength, answered INVALID_ARGUMENT yet changed the first; a NaN ramp was refused
    and kept, and then every later degradation was refused with its message."""
    mode = f"{COMPONENT}/config/operational-mode"
    before = agent.state.statuses()[("dc1-dc2.w1", "dc1-gw1")].mode
    channel, gnmi = stub(agent)
    span = "/line-systems/line-system[name=dc1-dc2]/spans/span[index=1]/config/extra-loss"
    with channel:
        with pytest.raises(grpc.RpcError) as bad:
            gnmi.Set(gnmi_pb2.SetRequest(update=[
                gnmi_pb2.Update(path=_path(mode), val=gnmi_pb2.TypedValue(json_val=b"3")),
                gnmi_pb2.Update(path=_path(mode.replace("dc1-dc2.w1", "zz.w9")),
                                val=gnmi_pb2.TypedValue(json_val=b"3"))]), timeout=5)
        assert "unknown wavelength 'zz.w9'" in bad.value.details()
        assert agent.state.statuses()[("dc1-dc2.w1", "dc1-gw1")].mode == before
        with pytest.raises(grpc.RpcError) as bad:
            gnmi.Set(gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(
                path=_path(span), val=gnmi_pb2.TypedValue(
                    json_val=b'{"value": 3, "ramp-s": NaN}'))]), timeout=5)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert not agent.state.ramping()
        gnmi.Set(gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(
            path=_path(span), val=gnmi_pb2.TypedValue(json_val=b"2"))]), timeout=5)
        assert agent.state.line_state("dc1-dc2").span_extra_loss_db[0] == 2.0


def test_a_loss_of_signal_while_the_link_is_down_clears_the_readings(agent):
    """An optical re-tester's: dark at +37 dB (its OSNR still read), then no light at
    +45 dB: the client kept the last OSNR, so the metrics showed it through the loss."""
    client = TransceiverClient(agent.gnmi_address).start()
    key = ("dc1-dc2.w1", "dc1-gw1")

    def reading():
        return client.readings().get(key)
    try:
        agent.state.degrade_span("dc1-dc2", 2, 37.0)
        assert wait_until(lambda: reading() is not None and reading().link_up is False
                          and reading().osnr_db is not None, 10)
        agent.state.degrade_span("dc1-dc2", 2, 45.0)
        assert wait_until(lambda: reading().osnr_db is None, 10)
        assert reading().link_up is False
    finally:
        client.stop()


def test_line_system_knobs_ramp_and_restore_over_gnmi(agent):
    channel, gnmi = stub(agent)
    span = "/line-systems/line-system[name=dc1-dc2]/spans/span[index=2]/config/extra-loss"
    with channel:
        gnmi.Set(gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(
            path=_path(span), val=gnmi_pb2.TypedValue(
                json_val=json.dumps({"value": 3.0, "ramp-s": 60}).encode()))]), timeout=5)
        assert agent.state.ramping()
        gnmi.Set(gnmi_pb2.SetRequest(delete=[_path("/line-systems/line-system[name=dc1-dc2]")]),
                 timeout=5)
        assert not agent.state.ramping()
        assert agent.state.line_state("dc1-dc2").span_extra_loss_db == (0.0,) * 5


def test_controller_client_follows_the_stream_and_changes_modes(agent):
    client = TransceiverClient(agent.gnmi_address).start()
    try:
        assert client.connected.wait(10)
        assert wait_until(lambda: len(client.readings()) == 4 and all(
            r.prefec_ber is not None and r.mode_id == 2 for r in client.readings().values()), 10)
        reading = client.readings()[("dc1-dc2.w1", "dc2-gw1")]
        truth = agent.state.statuses()[("dc1-dc2.w1", "dc2-gw1")].reading
        assert reading.prefec_ber == pytest.approx(truth.prefec_ber, rel=1e-5)
        assert client.gsnr_db(reading) == pytest.approx(truth.gsnr_db, abs=0.01)
        assert reading.link_up is True

        # a span degrades: the stream (SAMPLE, 1 s) shows the BER rise within seconds
        agent.state.degrade_span("dc1-dc2", 1, 2.0)
        worse = agent.state.statuses()[("dc1-dc2.w1", "dc2-gw1")].reading.prefec_ber
        assert worse > truth.prefec_ber
        assert wait_until(lambda: client.readings()[("dc1-dc2.w1", "dc2-gw1")].prefec_ber
                          == pytest.approx(worse, rel=1e-5), 5)

        assert client.set_mode("dc1-dc2.w2", "200G") == 4
        assert wait_until(lambda: client.mode_changes().get("dc1-dc2.w2") == 1, 5)
        assert client.mode_changes().get("dc1-dc2.w1", 0) == 0
        with pytest.raises(GnmiClientError, match="has no mode '500G'"):
            client.set_mode("dc1-dc2.w1", "500G")

        registry = CollectorRegistry()
        collector = OpticalCollector(client, agent.fabric)
        registry.register(collector)
        text = generate_latest(registry).decode()
        labels = 'link="dc1-dc2",site_a="dc1",site_b="dc2",wavelength="dc1-dc2.w2"'
        assert f"dcilab_wavelength_mode_changes_total{{{labels}}} 1.0" in text
        assert "dcilab_wavelength_reported_gsnr_db{" in text and "dcilab_wavelength_prefec_ber{" in text
        # what `dcilab links` shows with --gnmi: each wavelength's worse end, as the metric
        margins = collector.margins()
        assert set(margins) <= {"dc1-dc2.w1", "dc1-dc2.w2"} and "dc1-dc2.w1" in margins
        metric = f'dcilab_wavelength_reported_margin_db{{{labels.replace("w2", "w1")}}} '
        [line] = [l for l in text.splitlines() if l.startswith(metric)]
        assert float(line.split()[-1]) == pytest.approx(margins["dc1-dc2.w1"], abs=0.05)
        # in bits/s, as every link figure is (it was Gb/s beside them: an SRE tester's)
        metric = f'dcilab_wavelength_reported_rate_bps{{{labels.replace("w2", "w1")}}} '
        [line] = [l for l in text.splitlines() if l.startswith(metric)]
        assert float(line.split()[-1]) in (100e9, 200e9, 300e9, 400e9)
    finally:
        client.stop()


def test_client_waits_for_a_server_that_is_not_there_yet(tmp_path):
    fabric, _ = zrplus_fabric(tmp_path)
    from dcilab.lab import free_port
    port = free_port()
    client = TransceiverClient(f"127.0.0.1:{port}").start()
    try:
        assert not client.connected.wait(0.5)
        with TransceiverAgent(fabric, address=f"127.0.0.1:{port}", apply_effects=False):
            assert client.connected.wait(15)
    finally:
        client.stop()


def test_fault_functions_degrade_with_a_ramp_and_restore(agent):
    from dcilab.emulation.optical_faults import OpticalFaultError, degrade, restore
    degrade("dc1-dc2", span=4, extra_loss_db=5.0, amplifier=2, nf_db=7.0, ramp_s=0,
            address=agent.gnmi_address)
    line = agent.state.line_state("dc1-dc2")
    assert line.span_extra_loss_db[3] == 5.0 and line.amplifier_nf_db[1] == 7.0
    degrade("dc1-dc2", span=1, extra_loss_db=6.0, ramp_s=30, address=agent.gnmi_address)
    assert agent.state.ramping()
    restore("dc1-dc2", address=agent.gnmi_address)
    assert not agent.state.ramping()
    assert agent.state.line_state("dc1-dc2").span_extra_loss_db == (0.0,) * 5
    with pytest.raises(OpticalFaultError, match="span 7 does not exist.*INVALID_ARGUMENT"):
        degrade("dc1-dc2", span=7, extra_loss_db=1.0, address=agent.gnmi_address)
    with pytest.raises(OpticalFaultError, match="unknown line system 'x'"):
        restore("x", address=agent.gnmi_address)


def test_dcilab_fault_degrade_is_a_fault_listed_and_restored_with_the_others(agent, tmp_path):
    """`dcilab fault degrade` (Faults.degrade): the agent's line degrades, the fault is in
    the run's fault file for `list`, and `restore` (by line or all) repairs the optics."""
    from dcilab.emulation.faults import DEGRADE, FaultError, FaultInputError, Faults
    faults = Faults(agent.fabric, 42.0, state_path=tmp_path / "faults.json",
                    gnmi_address=agent.gnmi_address)
    fault = faults.degrade("dc1-dc2", span=2, extra_loss_db=6.0, amplifier=None, nf_db=None,
                           launch_power_dbm=None, ramp_s=0.0)
    assert fault.describe() == "dc1-dc2: degraded: span 2 +6 dB loss"
    assert agent.state.line_state("dc1-dc2").span_extra_loss_db[1] == 6.0
    # given again, the new figures replace the old (not "already has this fault"), and
    # another knob joins them: one fault per line says what it is now
    faults.degrade("dc1-dc2", span=2, extra_loss_db=3.0, ramp_s=60.0)
    faults.degrade("dc1-dc2", amplifier=1, nf_db=7.0, ramp_s=60.0)
    [now] = faults.list()
    assert now.kind == DEGRADE and now.since == fault.since
    assert now.describe() == ("dc1-dc2: degraded: span 2 +3 dB loss, amplifier 1 noise figure "
                              "7 dB, reached over 60 s")
    with pytest.raises(FaultInputError, match=r"'dc1-dc2.w1' is a wavelength of dc1-dc2"):
        faults.degrade("dc1-dc2.w1", span=1, extra_loss_db=1.0)
    with pytest.raises(FaultInputError, match="span 9 does not exist"):
        faults.degrade("dc1-dc2", span=9, extra_loss_db=1.0)
    assert faults.list() == [now]                       # a refused one is not recorded
    # a wavelength's restore leaves its line's optics; the line's repairs them
    with pytest.raises(FaultError, match="dc1-dc2.w1 has no fault to restore"):
        faults.restore("dc1-dc2.w1")
    assert agent.state.ramping()
    undone = faults.restore("dc1-dc2")
    assert [f.kind for f in undone] == [DEGRADE] and faults.list() == []
    assert agent.state.line_state("dc1-dc2").span_extra_loss_db == (0.0,) * 5
    assert not agent.state.ramping()
    without = Faults(agent.fabric, 42.0, state_path=tmp_path / "other.json")
    with pytest.raises(FaultError, match="start it with gNMI"):
        without.degrade("dc1-dc2", span=1, extra_loss_db=1.0)


def test_paths_match_with_wildcards_and_missing_keys():
    from dcilab.emulation.openconfig import elem, matches
    leaf = (elem("components"), elem("component", name="a.w1"), elem("optical-channel"),
            elem("state"), elem("osnr"), elem("avg"))
    assert matches((elem("components"),), leaf)
    assert matches((elem("components"), elem("component")), leaf)            # any name
    assert matches((elem("components"), elem("component", name="*"), elem("*"),
                    elem("state")), leaf)
    assert matches((elem("components"), elem("..."), elem("avg")), leaf)
    assert not matches((elem("components"), elem("component", name="a.w2")), leaf)
    assert not matches(leaf + (elem("deeper"),), leaf)


def test_an_injected_dark_transceiver_or_cut_shows_over_gnmi(tmp_path):
    """`dcilab fault` (another process) writes the run's fault file; the agent reads it:
    a dark transceiver's laser is off and both ends' links are down, a cut takes both
    links down with the lasers on, and restoring brings them back."""
    from dcilab.emulation.faults import CUT, DARK, Fault, FaultBook
    fabric, _ = zrplus_fabric(tmp_path)
    book = FaultBook(tmp_path / "faults.json", run_stamp=42.0)
    with TransceiverAgent(fabric, apply_effects=False, tick_s=0.05, faults_run=42.0,
                          faults_path=book.path) as agent:
        client = TransceiverClient(agent.gnmi_address).start()
        try:
            def seen(wavelength):
                return {gw: r.link_up for (w, gw), r in client.readings().items()
                        if w == wavelength}

            def power(gateway, wavelength, stat="instant"):
                path = _path(f"/components/component[name={wavelength}]/optical-channel/"
                             f"state/output-power/{stat}")
                with grpc.insecure_channel(agent.gnmi_address) as channel:
                    answer = gnmi_pb2_grpc.gNMIStub(channel).Get(gnmi_pb2.GetRequest(
                        prefix=gnmi_pb2.Path(target=gateway), path=[path],
                        encoding=gnmi_pb2.JSON_IETF), timeout=5)
                # RFC 7951: a decimal64 is a string in JSON_IETF
                return float(json.loads(answer.notification[0].update[0].val.json_ietf_val))

            assert wait_until(lambda: seen("dc1-dc2.w1") == {"dc1-gw1": True, "dc2-gw1": True}, 10)
            with book.locked() as data:
                data["faults"].append(Fault(DARK, "dc1-dc2.w1", ["dc1-dc2.w1"], 0.0, end="dc2"))
                data["faults"].append(Fault(CUT, "dc1-dc2.w2", ["dc1-dc2.w2"], 0.0))
            assert wait_until(lambda: seen("dc1-dc2.w1") == {"dc1-gw1": False, "dc2-gw1": False}
                              and set(seen("dc1-dc2.w2").values()) == {False}, 10)
            # No light, nothing measured: no OSNR, BER or Q kept from before, so the
            # controller's margin metrics and alerts have nothing stale to show.
            assert all(r.osnr_db is None and r.prefec_ber is None and r.q_db is None
                       for r in client.wavelength("dc1-dc2.w1") + client.wavelength("dc1-dc2.w2"))
            registry = CollectorRegistry()
            registry.register(OpticalCollector(client, fabric))
            text = generate_latest(registry).decode()
            assert 'dcilab_wavelength_reported_margin_db{link="dc1-dc2",site_a="dc1",site_b="dc2",wavelength="dc1-dc2.w1"}' not in text
            # nor a rate: a dark or cut wavelength carries nothing, whatever its mode
            rate_w1 = 'dcilab_wavelength_reported_rate_bps{link="dc1-dc2",site_a="dc1",site_b="dc2",wavelength="dc1-dc2.w1"}'
            rate_w2 = rate_w1.replace("w1", "w2")
            assert rate_w1 not in text and rate_w2 not in text
            assert power("dc2-gw1", "dc1-dc2.w1") == -40.0          # its laser off
            # over the statistics' window (10 s): it was on a moment ago
            assert power("dc2-gw1", "dc1-dc2.w1", "min") == -40.0
            assert power("dc2-gw1", "dc1-dc2.w1", "max") > -10.0
            assert -40.0 < power("dc2-gw1", "dc1-dc2.w1", "avg") < -10.0
            assert power("dc1-gw1", "dc1-dc2.w1") > -10.0           # the far one still on
            assert power("dc1-gw1", "dc1-dc2.w2") > -10.0           # a cut: lasers on
            with book.locked() as data:                              # restored
                data["faults"].clear()
            assert wait_until(lambda: set(seen("dc1-dc2.w1").values()) == {True}
                              and set(seen("dc1-dc2.w2").values()) == {True}, 10)
            assert wait_until(lambda: all(r.osnr_db is not None and r.prefec_ber is not None
                                          for r in client.wavelength("dc1-dc2.w1")), 10)
            text = generate_latest(registry).decode()
            assert rate_w1 in text and rate_w2 in text
            assert power("dc2-gw1", "dc1-dc2.w1") > -10.0
            # another run's file is not this run's faults
            other = FaultBook(book.path, run_stamp=7.0)
            with other.locked() as data:
                data["faults"].append(Fault(CUT, "dc1-dc2.w1", ["dc1-dc2.w1"], 0.0))
            # once the agent has read that file and the client has had a sample since
            assert wait_until(lambda: agent._faults_seen == book.path.stat().st_mtime_ns, 10)
            stamp = max(r.timestamp_ns for r in client.wavelength("dc1-dc2.w1"))
            assert wait_until(lambda: min(r.timestamp_ns for r in client.wavelength(
                "dc1-dc2.w1")) > stamp, 10)
            assert set(seen("dc1-dc2.w1").values()) == {True}
        finally:
            client.stop()
