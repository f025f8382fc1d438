"""A gRPC server that answers ReservePath and ReleasePath from a canned reservation: the
ceiling any Python gRPC server reaches on this machine, against which `dcilab bench --api`
judges the controller in the same run (the issue's target: at least 0.8 of it).

    python -m dcilab.api.canned PORT [CPU]

Same server set-up as the controller's (`api.server.create_server`: thread pool of
DEFAULT_WORKERS, the same options), pinned to CPU if given; it prints `serving` once
listening and runs until killed.
"""

from __future__ import annotations

import os
import sys
from concurrent import futures

import grpc

from .defaults import DEFAULT_WORKERS
from .v1 import fabric_pb2, fabric_pb2_grpc, path_pb2, path_pb2_grpc

CANNED = path_pb2.Reservation(
    reservation_id="r-canned", state=path_pb2.RESERVATION_STATE_PENDING, src_host="a-h1",
    dst_host="b-h1", bandwidth_gbps=1.0, latency_ms=0.4, meter_id=1,
    hops=[path_pb2.ReservedHop(switch=f"s{i}", out_port=i, link=f"l{i}") for i in range(7)])


class CannedPaths(path_pb2_grpc.PathServiceServicer):
    def ReservePath(self, request, context):
        return path_pb2.ReservePathResponse(reservation=CANNED)

    def ReleasePath(self, request, context):
        return path_pb2.ReleasePathResponse(reservation=CANNED)


class CannedFabric(fabric_pb2_grpc.FabricServiceServicer):
    def GetFabric(self, request, context):
        return fabric_pb2.GetFabricResponse(fabric=fabric_pb2.Fabric(name="canned"))


def main(argv: list[str]) -> int:
    port = int(argv[0])
    if len(argv) > 1:
        os.sched_setaffinity(0, {int(argv[1])})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=DEFAULT_WORKERS),
                         options=[("grpc.so_reuseport", 0)])
    path_pb2_grpc.add_PathServiceServicer_to_server(CannedPaths(), server)
    fabric_pb2_grpc.add_FabricServiceServicer_to_server(CannedFabric(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("serving", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
