"""Sequence-numbered UDP probes, run inside an emulated host's namespace (stdlib only, so
it starts fast and costs little CPU).

    python -m dcilab.emulation.probe_agent send --rate 1000 --duration 30 --out F \
        --stream ID,NAME,DST_IP,DST_PORT,SRC_PORT [--stream ...]
    python -m dcilab.emulation.probe_agent recv --port P --out F

The sender sends sequence number n of every stream at t0 + n / rate (a late tick is sent at
once, so numbers stay tied to the schedule). Each packet carries its stream's ID (unique
among all senders), its sequence number and the time it was sent. The receiver records,
per stream, each number's arrival time. Both stop at SIGTERM (or the sender at --duration)
and write JSON to --out; the receiver writes its numbers (a million or more in a long run)
as raw arrays to --out.bin, in the order and at the offsets its JSON gives, since encoding
them as JSON took over 10 s on a busy machine. Clocks: time.time() in every namespace is
the same clock, so send, arrival and fault times compare directly.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time
from array import array

PACKET = struct.Struct("!IId")      # stream ID, sequence number, send time
# What the receiver keeps per stream: sequence numbers, arrival and send times (array codes)
ARRAY_TYPES = ("I", "d", "d")
PAD = b"\0" * 22                    # 42-byte UDP payload: a 84-byte IP packet, like ping
# What one probe puts on a wavelength: the IP packet and its Ethernet header (what the
# wavelength's shaper counts).
WIRE_BYTES = 14 + 20 + 8 + PACKET.size + len(PAD)


_stopping = False


def _stop(*_):
    global _stopping
    _stopping = True


def send(args) -> dict:
    streams = []
    for spec in args.stream:
        i, name, ip, dport, sport = spec.split(",")
        i = int(i)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", int(sport)))    # a fixed 5-tuple: one path through the hashes
        sock.setblocking(False)
        streams.append((i, name, (ip, int(dport)), sock))
    interval = 1.0 / args.rate
    t0 = time.time() + 0.05
    n, errors = 0, 0
    end = t0 + args.duration if args.duration else float("inf")
    while not _stopping:
        due = t0 + n * interval
        if due >= end:
            break
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        now = time.time()
        for i, _name, addr, sock in streams:
            try:
                sock.sendto(PACKET.pack(i, n, now) + PAD, addr)
            except OSError:          # no route, buffer full: the packet is lost
                errors += 1
        n += 1
    return {"t0": t0, "rate": args.rate, "sent": n, "send_errors": errors,
            "streams": [{"id": i, "name": name, "dst": list(addr)}
                        for i, name, addr, _ in streams]}


def recv(args) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    sock.bind(("0.0.0.0", args.port))
    seqs: dict[int, array] = {}
    arrivals: dict[int, array] = {}
    sent_at: dict[int, array] = {}

    def take(data: bytes) -> None:
        now = time.time()
        if len(data) < PACKET.size:
            return
        i, n, t = PACKET.unpack_from(data)
        if i not in seqs:
            seqs[i], arrivals[i], sent_at[i] = (array(t) for t in ARRAY_TYPES)
        seqs[i].append(n)
        arrivals[i].append(now)
        sent_at[i].append(t)

    sock.settimeout(0.1)        # to notice SIGTERM when nothing arrives
    while not _stopping:
        try:
            take(sock.recv(2048))
        except socket.timeout:
            continue
    # What the socket holds when told to stop had arrived: counted, not lost (a receiver
    # behind on a busy machine left its buffer's tail unread).
    sock.setblocking(False)
    while True:
        try:
            take(sock.recv(2048))
        except BlockingIOError:
            break
    return {"port": args.port,
            "streams": {str(i): (seqs[i], arrivals[i], sent_at[i]) for i in seqs}}


def write_arrays(result: dict, out: str) -> dict:
    """Write each stream's (seq, arrival, sent_at) arrays, native byte order, to `out`;
    the result with, per stream, how many numbers and where its arrays start."""
    index, offset = {}, 0
    with open(out, "wb") as f:
        for i, arrays in result["streams"].items():
            index[i] = {"count": len(arrays[0]), "offsets": []}
            for a in arrays:
                index[i]["offsets"].append(offset)
                a.tofile(f)
                offset += len(a) * a.itemsize
    return {**result, "streams": index, "types": list(ARRAY_TYPES)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="probe_agent")
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("send")
    s.add_argument("--rate", type=float, default=1000.0)
    s.add_argument("--duration", type=float, default=0.0, help="0: until SIGTERM")
    s.add_argument("--stream", action="append", required=True)
    s.add_argument("--out", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.role == "recv":
        print("listening", flush=True)      # the caller waits for this line
    result = send(args) if args.role == "send" else recv(args)
    if args.role == "recv":
        result = write_arrays(result, args.out + ".bin")
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
