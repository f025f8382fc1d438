"""FabricService, health checking and graceful stop through a real gRPC server."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from api_helpers import write_race_fabric
from controller_lab import ControllerLab
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dcilab.api.client import ApiError, Client
from dcilab.api.server import create_server
from dcilab.api.servicers import Streams
from dcilab.api.v1 import fabric_pb2, fabric_pb2_grpc, path_pb2, path_pb2_grpc
from dcilab.app.service import ControllerService
from dcilab.fabric import load_fabric
from dcilab.te.elephants import FlowKey
from dcilab.te.reservations import ReservationRequest


def test_get_fabric_describes_the_file(client, service):
    fabric = client.fabric()
    assert fabric.name == "race" and fabric.scale == 1e-5
    assert [s.name for s in fabric.sites] == ["dc1", "dc2"]
    assert fabric.sites[0].hosts == 8 and fabric.sites[0].fabric_gbps == 10000
    assert len(fabric.switches) == len(service.fabric.switches)
    assert not any(sw.connected for sw in fabric.switches)      # standalone: none connected
    leaf = next(sw for sw in fabric.switches if sw.name == "dc1-leaf1")
    assert leaf.role == fabric_pb2.SWITCH_ROLE_LEAF and leaf.dpid == service.fabric.switches[
        "dc1-leaf1"].dpid
    host = next(h for h in fabric.hosts if h.name == "dc2-h5")
    assert (host.leaf, host.port, host.ip) == ("dc2-leaf2", 1, "10.2.2.5")
    [line] = fabric.line_systems
    assert (line.name, line.module, line.mode, line.capacity_gbps) == ("dc1-dc2", "400ZR",
                                                                      "400G", 400)
    [w] = line.wavelengths
    assert w.name == "dc1-dc2.w1" and w.frequency_thz == pytest.approx(191.3, abs=0.1)
    dci = [l for l in fabric.links if l.kind == fabric_pb2.LINK_KIND_DCI]
    assert [(l.name, l.wavelength, l.line_system) for l in dci] == [
        ("dc1-dc2.w1", "dc1-dc2.w1", "dc1-dc2")]


def test_list_links_every_direction_and_filters(client, service):
    loads = client.links()
    assert len(loads) == 2 * len(service.fabric.links)
    assert {(l.link, l.src) for l in loads} == {
        (link.name, end.node) for link in service.fabric.links for end in (link.a, link.b)}
    [forward, backward] = client.links("dci")
    assert (forward.src, forward.dst, forward.capacity_bps) == ("dc1-gw1", "dc2-gw1", 400e9)
    assert forward.mode == backward.mode == "400G"          # the plan's, until adapted
    assert {l.mode for l in client.links("host")} == {""}
    service.apply(lambda core: core.engine.set_rate("dc1-dc2.w1", 300.0, "300G") and None)
    assert [(l.mode, l.capacity_bps) for l in client.links("dci")] == [("300G", 300e9)] * 2
    assert (backward.site_a, backward.site_b) == ("dc2", "dc1")
    assert all(l.site_a == "dc2" or l.site_b == "dc2" for l in client.links(site="dc2"))
    assert len(client.links("host", "dc1")) == 16
    with pytest.raises(ApiError) as err:
        client.links(site="dc7")
    assert err.value.code == "INVALID_ARGUMENT" and "dc7" in err.value.message


def test_watch_streams_at_the_interval_and_shows_new_reservations(client):
    updates = client.watch_links(0.1, "dci")
    first = next(updates)
    assert [l.reserved_bps for l in first.link_loads] == [0, 0]
    client.reserve("dc1-h1", "dc2-h1", 36)
    # Updates sent before it may wait in the stream's buffers: read on until it shows.
    deadline = time.monotonic() + 10.0
    for shown in updates:
        if shown.link_loads[0].reserved_bps == 36e9:
            break
        assert time.monotonic() < deadline, "the new reservation never showed"
    gap = next(updates).time.ToNanoseconds() - shown.time.ToNanoseconds()
    assert 0.08e9 < gap < 1.0e9
    updates.close()


@pytest.mark.parametrize("seconds", [0.01, 0.099, 7200])
def test_watch_interval_out_of_bounds_is_invalid_argument(client, seconds):
    with pytest.raises(ApiError) as err:
        next(client.watch_links(seconds))
    assert err.value.code == "INVALID_ARGUMENT" and "interval" in err.value.message


def test_a_malformed_interval_or_kind_is_invalid_argument_naming_the_field(port):
    import grpc
    from google.protobuf.duration_pb2 import Duration

    from dcilab.api.v1 import fabric_pb2, fabric_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = fabric_pb2_grpc.FabricServiceStub(channel)
        for request, words in (
                (fabric_pb2.WatchLinkLoadRequest(interval=Duration(seconds=1, nanos=-5)),
                 ("interval: not a valid Duration",)),
                (fabric_pb2.WatchLinkLoadRequest(kind=99), ("kind: unknown link kind 99",)),
                (fabric_pb2.ListLinksRequest(kind=99), ("kind:", "3 dci"))):
            call = (stub.WatchLinkLoad if isinstance(request, fabric_pb2.WatchLinkLoadRequest)
                    else stub.ListLinks)
            with pytest.raises(grpc.RpcError) as err:
                answer = call(request, timeout=10)
                next(iter(answer)) if call is stub.WatchLinkLoad else answer
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert all(w in err.value.details() for w in words), err.value.details()


def _open_stream(client: Client):
    """A started stream; retried while a cancelled one of this client is still ending."""
    deadline = time.monotonic() + 5
    while True:
        updates = client.watch_links(0.1)
        try:
            next(updates)
            return updates
        except ApiError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_watch_ends_when_the_client_cancels(serve):
    port = serve(max_watch_streams=2)             # one per client address
    with Client(f"127.0.0.1:{port}") as c, Client(f"127.0.0.1:{port}") as d:
        for _ in range(5):                    # each cancelled stream gives its slot back
            _open_stream(c).close()
        a = _open_stream(c)
        with pytest.raises(ApiError) as err:  # one per client, whatever its connections
            next(d.watch_links(0.1))
        assert err.value.code == "RESOURCE_EXHAUSTED" and "1 per client" in err.value.message
        a.close()
        _open_stream(d).close()


def test_streams_are_bounded_in_total_and_per_client():
    streams = Streams(3, per_client=2)
    mine = [streams.open("ipv4:10.0.0.1"), streams.open("ipv4:10.0.0.1")]
    assert all(mine) and streams.open("ipv4:10.0.0.1") is None       # per client
    other = streams.open("ipv4:10.0.0.2")
    assert other is not None and streams.open("ipv4:10.0.0.3") is None   # in total
    streams.done(mine[0])
    assert streams.open("ipv4:10.0.0.3") is not None
    assert Streams(4).per_client == 2 and Streams(1).per_client == 1


def _health(port: int, service: str = "") -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@pytest.mark.parametrize("name", ["", "dcilab.v1.FabricService", "dcilab.v1.PathService"])
def test_health_serving(port, name):
    assert _health(port, name) == "SERVING"


def test_graceful_stop_ends_streams_at_once_unavailable_and_refuses_new_calls(service):
    """Both kinds of stream end at once, and UNAVAILABLE: an OK end would tell a client
    its watched reservation ended, or that there is nothing more to watch."""
    server, port = create_server(service, max_watch_streams=6)   # three for one client
    res = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 1.0))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    streams = {
        "links": fabric_pb2_grpc.FabricServiceStub(channel).WatchLinkLoad(
            fabric_pb2.WatchLinkLoadRequest()),
        "one": path_pb2_grpc.PathServiceStub(channel).WatchReservations(
            path_pb2.WatchReservationsRequest(reservation_id=res.reservation_id)),
        "all": path_pb2_grpc.PathServiceStub(channel).WatchReservations(
            path_pb2.WatchReservationsRequest())}
    streaming = {name: threading.Event() for name in streams}
    codes: dict[str, grpc.StatusCode] = {}

    def watch(name):
        try:
            for _ in streams[name]:
                streaming[name].set()
            codes[name] = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            codes[name] = exc.code()

    threads = [threading.Thread(target=watch, args=(name,)) for name in streams]
    for thread in threads:
        thread.start()
    assert all(event.wait(10) for event in streaming.values())  # all open at the stop
    started = time.monotonic()
    server.stop(grace=10).wait(timeout=10)
    assert time.monotonic() - started < 2.0         # no stream held the grace period
    for thread in threads:
        thread.join(5)
    channel.close()
    assert codes == {name: grpc.StatusCode.UNAVAILABLE for name in streams}
    with Client(f"127.0.0.1:{port}", timeout=2) as c, pytest.raises(Exception) as err:
        c.fabric()
    assert "cannot reach dcilab controller" in str(err.value)


def test_second_server_on_the_same_port_is_refused(service, port):
    from dcilab.api.tls import ServerError
    with pytest.raises(ServerError) as err:
        create_server(service, f"127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in str(err.value)


def test_graceful_stop_lets_a_call_in_flight_finish(service):
    class Slow:
        """The real service, with reserve taking half a second."""
        fabric = service.fabric

        def __getattr__(self, name):
            return getattr(service, name)

        def reserve(self, request, wanted=None):
            in_flight.set()
            time.sleep(0.5)
            return service.reserve(request, wanted)

    in_flight = threading.Event()

    server, port = create_server(Slow())
    result = {}

    def call():
        with Client(f"127.0.0.1:{port}") as c:
            result["res"] = c.reserve("dc1-h1", "dc2-h1", 1)

    thread = threading.Thread(target=call)
    thread.start()
    assert in_flight.wait(10)                       # the call is in the servicer
    assert server.stop(grace=5).wait(5)
    thread.join(5)
    assert result["res"].reservation_id


def test_a_fabric_whose_links_answer_in_more_than_4_mb_still_lists(tmp_path):
    """64 sites of 50 leaves (39 000 links, inside the file's limits): ListLinks and
    GetFabric answer in one message each, over gRPC's default 4 MB; the client reads
    them, its watch stream too."""
    from dcilab.app.service import ControllerService
    from dcilab.fabric import parse_fabric
    sites = "".join(f"  - {{name: s{i}, spines: 8, leaves: 50, hosts_per_leaf: 4, "
                    f"gateways: 2}}\n" for i in range(64))
    links = "".join(f"  - {{name: l{i}, a: s{i}, b: s{(i + 1) % 64}, fiber_km: 80, "
                    f"module: 400ZR, wavelengths: 1}}\n" for i in range(64))
    service = ControllerService.standalone(parse_fabric(f"name: wide\nsites:\n{sites}"
                                                        f"dci_links:\n{links}"))
    server, port = create_server(service, "127.0.0.1:0")
    try:
        with Client(f"127.0.0.1:{port}", timeout=60) as client:
            listed = client.links()
            assert fabric_pb2.ListLinksResponse(link_loads=listed).ByteSize() > 4 << 20
            assert len(client.fabric().links) > 30_000
            first = next(iter(client.watch_links(1.0)))
            assert len(first.link_loads) == len(listed)
    finally:
        server.stop(grace=1).wait()


def test_list_elephants_names_each_pin_and_filters_by_site(tmp_path):
    """Over real gRPC: a controller whose switches (simulated) are up, two elephants
    found at dc1-leaf1, pinned by loadaware, both directions of their hop named."""
    fabric = load_fabric(write_race_fabric(tmp_path))
    lab = ControllerLab(fabric, policy="loadaware").bring_up_all()
    leaf = lab.dpid("dc1-leaf1")
    e1 = FlowKey(fabric.hosts["dc1-h1"].ip, fabric.hosts["dc2-h5"].ip, 6, 40001, 5201)
    e2 = FlowKey(fabric.hosts["dc1-h2"].ip, fabric.hosts["dc2-h6"].ip, 17, 40002, 4791)
    # 50 Gb/s real at scale 1e-5: 62 500 emulated bytes/s, over 0.1 x 400 Gb/s.
    for t in range(3):
        lab.send(lab.ctl.flow_stats(leaf, {e1: 62_500 * t, e2: 62_500 * t}, float(t)))
    assert set(lab.ctl.steering.pinned) == {e1, e2}
    service = ControllerService(lab.ctl)
    server, port = create_server(service, "127.0.0.1:0")
    try:
        with Client(f"127.0.0.1:{port}") as client:
            answer = client.elephants()
            assert answer.policy == "loadaware"
            assert [(e.src_host, e.dst_host, e.ip_proto, e.src_port, e.dst_port)
                    for e in answer.elephants] == [("dc1-h1", "dc2-h5", 6, 40001, 5201),
                                                   ("dc1-h2", "dc2-h6", 17, 40002, 4791)]
            for e in answer.elephants:
                assert e.rate_bps == pytest.approx(50e9) and e.demand_bps > 0 and not e.idle
                assert [(h.wavelength, h.line_system, h.src, h.dst) for h in e.hops] == [
                    ("dc1-dc2.w1", "dc1-dc2", "dc1-gw1", "dc2-gw1")]
                assert (e.carrier, e.reservation_id) == (fabric_pb2.CARRIER_PINNED, "")
            # e2's pair reserves: its rules come before the pin, and the answer says so.
            lab.send(lab.ctl.reserve(ReservationRequest("dc1-h2", "dc2-h6", 10.0), "r1", 3.0))
            _, e = client.elephants().elephants
            assert (e.carrier, e.reservation_id) == (fabric_pb2.CARRIER_RESERVATION, "r1")
            assert len(client.elephants("dc2").elephants) == 2
            with pytest.raises(ApiError) as err:
                client.elephants("dc7")
            assert err.value.code == "INVALID_ARGUMENT" and "dc7" in err.value.message
    finally:
        server.stop(grace=1).wait()
        service.close()


def test_list_elephants_of_a_standalone_controller_is_empty(client):
    answer = client.elephants()
    assert answer.policy == "loadaware" and list(answer.elephants) == []
