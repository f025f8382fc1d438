"""The transceivers' gNMI server against clients a collector or a careless script would be
(an outside gNMI tester's findings): paths that cost too much, too many streams, typos,
readings that go away, and the spec's subscription and encoding options."""

import json
import queue
import threading

import grpc
import pytest
from optical_helpers import zrplus_fabric
from pygnmi.spec.v080 import gnmi_pb2, gnmi_pb2_grpc

from dcilab.emulation import openconfig
from dcilab.emulation.gnmi_server import serve_gnmi
from dcilab.emulation.transceivers import TransceiverAgent
from dcilab.gnmi.client import _path, wait_until

OSNR = "/components/component[name=dc1-dc2.w1]/optical-channel/state/osnr"


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    fabric, _ = zrplus_fabric(tmp_path_factory.mktemp("gnmi"))
    with TransceiverAgent(fabric, apply_effects=False, reconfiguration_s=3.0,
                          tick_s=0.1) as agent:
        yield agent


@pytest.fixture
def gnmi(agent):
    with grpc.insecure_channel(agent.gnmi_address) as channel:
        yield gnmi_pb2_grpc.gNMIStub(channel)


class Stream:
    """A Subscribe call read by a thread into a queue; closed by `cancel`."""

    def __init__(self, stub, subscription_list: gnmi_pb2.SubscriptionList):
        self.call = stub.Subscribe(iter([gnmi_pb2.SubscribeRequest(subscribe=subscription_list)]),
                                   timeout=60)
        self.got: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for response in self.call:
                self.got.put(response)
        except grpc.RpcError as exc:
            self.got.put(exc)

    def next(self, timeout=10.0):
        return self.got.get(timeout=timeout)

    def until(self, predicate, timeout=15.0):
        """The first response `predicate` accepts (RpcErrors are raised)."""
        deadline = threading.Event()
        threading.Timer(timeout, deadline.set).start()
        while not deadline.is_set():
            try:
                response = self.got.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(response, grpc.RpcError):
                raise response
            if predicate(response):
                return response
        raise AssertionError("not seen in time")

    def cancel(self):
        self.call.cancel()


class _Silent:
    """A request iterator that sends nothing until the call ends."""

    def __iter__(self):
        return self

    def __next__(self):
        threading.Event().wait(30)
        raise StopIteration


def stream_of(*paths, mode=gnmi_pb2.SubscriptionMode.SAMPLE, target="dc1-gw1", **options):
    return gnmi_pb2.SubscriptionList(
        prefix=gnmi_pb2.Path(target=target), mode=gnmi_pb2.SubscriptionList.STREAM,
        encoding=gnmi_pb2.JSON, subscription=[
            gnmi_pb2.Subscription(path=_path(p), mode=mode, **options) for p in paths])


def test_a_path_of_many_wildcards_costs_time_linear_in_its_length(monkeypatch):
    """`/.../.../ ... /x` (8 of them) took 4.5 s, 12 took 200 s: every split tried again."""
    calls = []
    real = openconfig._elem_matches
    monkeypatch.setattr(openconfig, "_elem_matches", lambda *a: calls.append(1) or real(*a))
    e = openconfig.elem
    leaf = (e("components"), e("component", name="a.w1"), e("optical-channel"), e("state"),
            e("osnr"), e("avg"))
    request = (e("..."),) * 30 + (e("x"),)
    assert not openconfig.matches(request, leaf)
    assert len(calls) <= len(leaf) + 1                 # each element of the path once
    assert openconfig.matches((e("..."),) * 30 + (e("avg"),), leaf)
    assert openconfig.matches((e("..."), e("osnr"), e("..."), e("avg")), leaf)
    assert openconfig.matches((e("components"), e("..."), e("state"), e("*"), e("...")), leaf)
    assert not openconfig.matches((e("..."), e("state"), e("..."), e("state")), leaf)


def test_streams_are_bounded_and_never_starve_get_set_or_capabilities(agent):
    """Sixteen open subscriptions took every server thread: Capabilities, Get and the
    fault command's Set waited until they ended (DEADLINE_EXCEEDED)."""
    server, port, stop = serve_gnmi(agent.state, max_streams=2)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gnmi_pb2_grpc.gNMIStub(channel)
            streams = [Stream(stub, stream_of(OSNR)) for _ in range(2)]
            for s in streams:
                s.until(lambda r: r.sync_response)
            refused = Stream(stub, stream_of(OSNR))
            error = refused.next()
            assert isinstance(error, grpc.RpcError)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "2 subscriptions are open, the most this server serves" in error.details()
            for _ in range(12):       # more than the threads left for them, one after another
                assert stub.Capabilities(gnmi_pb2.CapabilityRequest(), timeout=5).gNMI_version
            assert stub.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="dc1-gw1"),
                                                path=[_path(OSNR)]), timeout=5).notification
            # a call that has not sent its subscription yet holds a thread as well: counted
            silent = stub.Subscribe(_Silent(), timeout=10)
            with pytest.raises(grpc.RpcError) as full:
                next(silent)
            assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # a closed stream makes room for another
            streams[0].cancel()
            again = None
            for _ in range(50):
                again = Stream(stub, stream_of(OSNR))
                first = again.next()
                if not isinstance(first, grpc.RpcError):
                    break
                threading.Event().wait(0.1)            # the cancelled one's end is seen
            assert not isinstance(first, grpc.RpcError), first
            again.cancel()
            streams[1].cancel()
    finally:
        stop.set()
        server.stop(1).wait(5)


def test_a_path_that_never_exists_is_refused_and_one_not_measured_now_is_taken(agent, gnmi):
    """A typo in a subscription gave a sync and then silence for good; in a Get of two
    paths, the good one's data and no word about the other."""
    bad = "/components/component[name=dc1-dc2.w1]/optical-channel/state/osnrr"
    with pytest.raises(grpc.RpcError) as refused:
        gnmi.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="dc1-gw1"),
                                     path=[_path(OSNR), _path(bad)]), timeout=5)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert refused.value.details() == f"no data at {bad}"
    error = Stream(gnmi, stream_of(OSNR, bad)).next()
    assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == f"nothing is served at {bad}"
    # the same reading while no light arrives: not there now, yet a good path
    agent.state.degrade_span("dc1-dc2", 1, 60.0)
    try:
        assert wait_until(lambda: not agent.state.statuses()[("dc1-dc2.w1", "dc1-gw1")].signal
                          or agent.state.statuses()[("dc1-dc2.w1", "dc1-gw1")].no_light, 10)
        stream = Stream(gnmi, stream_of(OSNR, mode=gnmi_pb2.SubscriptionMode.ON_CHANGE))
        assert stream.until(lambda r: True).sync_response           # nothing to send yet
        stream.cancel()
    finally:
        agent.state.restore("dc1-dc2")


def test_on_change_sends_a_delete_when_a_reading_goes_away(agent, gnmi):
    """A subscriber kept OSNR 29.5 dB and its BER for a wavelength that was dark."""
    stream = Stream(gnmi, stream_of(OSNR, mode=gnmi_pb2.SubscriptionMode.ON_CHANGE))
    try:
        first = stream.next()
        assert {u.path.elem[-1].name for u in first.update.update} == set(openconfig.STAT_NAMES)
        agent.state.degrade_span("dc1-dc2", 1, 60.0)            # no light arrives
        gone = stream.until(lambda r: r.HasField("update") and len(r.update.delete) > 0)
        assert gone.update.prefix.target == "dc1-gw1"
        assert {d.elem[-1].name for d in gone.update.delete} == set(openconfig.STAT_NAMES)
        assert all(d.elem[-2].name == "osnr" for d in gone.update.delete)
        agent.state.restore("dc1-dc2")
        back = stream.until(lambda r: r.HasField("update") and len(r.update.update) > 0)
        assert {u.path.elem[-1].name for u in back.update.update} == set(openconfig.STAT_NAMES)
    finally:
        agent.state.restore("dc1-dc2")
        stream.cancel()


def test_subscription_options_as_the_spec_says(agent, gnmi):
    sample = gnmi_pb2.SubscriptionMode.SAMPLE
    # updates_only: no initial data, the sync first
    only = gnmi_pb2.SubscriptionList(
        prefix=gnmi_pb2.Path(target="dc1-gw1"), mode=gnmi_pb2.SubscriptionList.STREAM,
        updates_only=True, subscription=[gnmi_pb2.Subscription(path=_path(OSNR), mode=sample,
                                                               sample_interval=10**9)])
    stream = Stream(gnmi, only)
    assert stream.next().sync_response
    stream.cancel()
    # a heartbeat sends the values on change would not (they do not change here)
    beat = Stream(gnmi, stream_of("/components/component[name=dc1-dc2.w1]/state/name",
                                  mode=gnmi_pb2.SubscriptionMode.ON_CHANGE,
                                  heartbeat_interval=300_000_000))
    try:
        assert beat.next().update.update                 # initial
        assert beat.next().sync_response
        again = beat.next(timeout=5)
        assert json.loads(again.update.update[0].val.json_val) == "dc1-dc2.w1"
    finally:
        beat.cancel()
    # a heartbeat of 1 ns is taken as the fastest sampling, not a spinning thread
    spin = Stream(gnmi, stream_of("/components/component[name=dc1-dc2.w1]/state/name",
                                  mode=gnmi_pb2.SubscriptionMode.ON_CHANGE,
                                  heartbeat_interval=1))
    try:
        threading.Event().wait(1.0)
        assert spin.got.qsize() <= 2 + 12                # initial, sync, ~10 beats a second
    finally:
        spin.cancel()
    # an interval past a day: refused, not a traceback and UNKNOWN
    error = Stream(gnmi, stream_of(OSNR, sample_interval=2**64 - 1)).next()
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sample_interval" in error.details() and "more than a day" in error.details()


def test_json_ietf_is_rfc_7951_and_get_takes_type_origin_models_and_prefixed_names(gnmi):
    state = "/components/component[name=dc1-dc2.w1]/optical-channel/state"

    def get(path, **kw):
        answer = gnmi.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="dc1-gw1"),
                                              path=[path], **kw), timeout=5)
        return {"/".join(e.name for e in u.path.elem[2:]): u.val
                for n in answer.notification for u in n.update}

    ietf = get(_path(state), encoding=gnmi_pb2.JSON_IETF)
    assert isinstance(json.loads(ietf["optical-channel/state/frequency"].json_ietf_val), str)
    assert isinstance(json.loads(ietf["optical-channel/state/osnr/avg"].json_ietf_val), str)
    assert isinstance(json.loads(ietf["optical-channel/state/operational-mode"].json_ietf_val),
                      int)
    plain = get(_path(state))
    # the same value either way (the frequency: the readings move between two Gets)
    assert int(json.loads(ietf["optical-channel/state/frequency"].json_ietf_val)) == \
        json.loads(plain["optical-channel/state/frequency"].json_val)
    # a module prefix on any element
    prefixed = _path("/components/component[name=dc1-dc2.w1]/oc-opt-term:optical-channel/state")
    assert get(prefixed).keys() == plain.keys()
    # CONFIG: only config leaves; OPERATIONAL: no echo of them
    component = _path("/components/component[name=dc1-dc2.w1]")
    assert all("/config/" in k for k in get(component, type=gnmi_pb2.GetRequest.CONFIG))
    operational = get(component, type=gnmi_pb2.GetRequest.OPERATIONAL)
    assert "optical-channel/state/osnr/avg" in operational
    assert "optical-channel/state/frequency" not in operational
    for path, code, said in (
            (gnmi_pb2.Path(origin="cli", elem=[gnmi_pb2.PathElem(name="components")]),
             grpc.StatusCode.UNIMPLEMENTED, "origin 'cli' is not served"),
            (gnmi_pb2.Path(element=["components"]), grpc.StatusCode.INVALID_ARGUMENT,
             "Path.element (deprecated since gNMI 0.4) is not served")):
        with pytest.raises(grpc.RpcError) as bad:
            get(path)
        assert bad.value.code() == code and said in bad.value.details()
    with pytest.raises(grpc.RpcError) as bad:
        get(component, use_models=[gnmi_pb2.ModelData(name="acme-optics")])
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "acme-optics not served" in bad.value.details()


def test_a_gateway_lists_the_modes_of_its_own_modules_only(gnmi):
    answer = gnmi.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="dc1-gw1"), path=[
        _path("/terminal-device/operational-modes/mode/state/description")]), timeout=5)
    modes = [json.loads(u.val.json_val) for n in answer.notification for u in n.update]
    assert modes and all(m.startswith("400ZR+ ") for m in modes), modes


def test_set_says_replace_for_a_replace_and_an_unknown_target_is_not_found(agent, gnmi):
    mode = _path("/components/component[name=dc1-dc2.w1]/optical-channel/config/operational-mode")
    now = agent.state.statuses()[("dc1-dc2.w1", "dc1-gw1")].mode_id
    answer = gnmi.Set(gnmi_pb2.SetRequest(replace=[gnmi_pb2.Update(
        path=mode, val=gnmi_pb2.TypedValue(json_val=str(now).encode()))]), timeout=5)
    assert [r.op for r in answer.response] == [gnmi_pb2.UpdateResult.REPLACE]
    with pytest.raises(grpc.RpcError) as bad:
        gnmi.Set(gnmi_pb2.SetRequest(prefix=gnmi_pb2.Path(target="nosuch"), update=[
            gnmi_pb2.Update(path=mode, val=gnmi_pb2.TypedValue(json_val=b"2"))]), timeout=5)
    assert bad.value.code() == grpc.StatusCode.NOT_FOUND
    assert "unknown target 'nosuch'" in bad.value.details()


def test_a_stream_ends_unavailable_when_the_server_stops(agent):
    """Streams ended OK when the emulation stopped: a collector would stop watching."""
    server, port, stop = serve_gnmi(agent.state)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stream = Stream(gnmi_pb2_grpc.gNMIStub(channel), stream_of(OSNR))
        stream.until(lambda r: r.sync_response)
        stop.set()
        ended = None
        for _ in range(100):
            item = stream.next()
            if isinstance(item, grpc.RpcError):
                ended = item
                break
        server.stop(1).wait(5)
    assert ended is not None and ended.code() == grpc.StatusCode.UNAVAILABLE
    assert "the transceivers' server is stopping" in ended.details()


def test_a_request_of_too_many_paths_is_refused_and_an_error_names_a_few(gnmi):
    """A re-tester's 1000 paths took a minute of the server's CPU; 400 unknown ones made
    an error longer than gRPC's trailer limit (RESOURCE_EXHAUSTED, the cause lost)."""
    component = "/components/component[name=dc1-dc2.w1]/state/name"
    many = [_path(component)] * 101
    with pytest.raises(grpc.RpcError) as bad:
        gnmi.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="dc1-gw1"), path=many),
                 timeout=5)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.details() == "101 paths; at most 100 in one request"
    unknown = [_path(f"/components/component[name=nope{i}]") for i in range(60)]
    with pytest.raises(grpc.RpcError) as bad:
        gnmi.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="dc1-gw1"), path=unknown),
                 timeout=5)
    assert bad.value.code() == grpc.StatusCode.NOT_FOUND
    assert bad.value.details().endswith("and 55 more")
    # "/.../.../..." is "/...": 30 of them cost as one
    deep = gnmi_pb2.Path(elem=[gnmi_pb2.PathElem(name="...")] * 30 + [
        gnmi_pb2.PathElem(name="name")])
    answer = gnmi.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="dc1-gw1"),
                                          path=[deep]), timeout=5)
    assert any(u.path.elem[-1].name == "name" for n in answer.notification for u in n.update)


def test_json_ietf_decimal64_has_no_exponent():
    from dcilab.emulation.gnmi_server import encode
    assert json.loads(encode(4.136821e-07, gnmi_pb2.JSON_IETF, "instant").json_ietf_val) == \
        "0.0000004136821"
    assert json.loads(encode(-12.5, gnmi_pb2.JSON_IETF, "avg").json_ietf_val) == "-12.5"
    assert json.loads(encode(4.136821e-07, gnmi_pb2.JSON, "instant").json_val) == 4.136821e-07


def test_a_heartbeat_due_with_a_sample_sends_it_once(gnmi):
    stream = Stream(gnmi, stream_of("/components/component[name=dc1-dc2.w1]/state/name",
                                    sample_interval=300_000_000,
                                    heartbeat_interval=300_000_000))
    try:
        threading.Event().wait(1.6)
        got = []
        while not stream.got.empty():
            got.append(stream.got.get())
        samples = [r for r in got if r.HasField("update")]
        assert 2 <= len(samples) <= 8, len(samples)     # ~6 in 1.6 s, not ~12
    finally:
        stream.cancel()


def test_set_refuses_odd_numbers_and_targets_with_reasons(gnmi):
    mode = _path("/components/component[name=dc1-dc2.w1]/optical-channel/config/operational-mode")
    span = _path("/line-systems/line-system[name=dc1-dc2]/spans/span[index=1]/config/extra-loss")
    line = _path("/line-systems/line-system[name=dc1-dc2]")
    for request, code, said in (
            (gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(
                path=mode, val=gnmi_pb2.TypedValue(string_val="\u00b2"))]),
             grpc.StatusCode.INVALID_ARGUMENT, "expected a whole number"),
            (gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(
                path=span, val=gnmi_pb2.TypedValue(json_val=b"1" + b"0" * 400))]),
             grpc.StatusCode.INVALID_ARGUMENT, "is not a finite number"),
            (gnmi_pb2.SetRequest(prefix=gnmi_pb2.Path(target="nosuch"), delete=[line]),
             grpc.StatusCode.NOT_FOUND, "unknown target 'nosuch'"),
            (gnmi_pb2.SetRequest(prefix=gnmi_pb2.Path(target="dc1-gw1"), update=[
                gnmi_pb2.Update(path=span, val=gnmi_pb2.TypedValue(json_val=b"1"))]),
             grpc.StatusCode.INVALID_ARGUMENT, "the line systems are on no gateway")):
        with pytest.raises(grpc.RpcError) as bad:
            gnmi.Set(request, timeout=5)
        assert bad.value.code() == code and said in bad.value.details(), bad.value.details()
