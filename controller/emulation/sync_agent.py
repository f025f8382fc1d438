"""One persistent TCP flow of a training job's sync, run inside an emulated host's namespace
(stdlib only, so it starts fast and costs little CPU).

    python -m dcilab.emulation.sync_agent recv --port P --bytes N
    python -m dcilab.emulation.sync_agent send --dst IP --port P [--sport S] [--cc NAME]
                                               [--pace-mbps R] --bytes N

NCCL opens its connections once and keeps them for the whole job, so every step's sync
travels on the same 5-tuples. So do these flows: the receiver listens on port P, prints
`listening`, accepts one connection and, for every N bytes it receives, prints one JSON
line `{"first": t, "last": t}` (when that burst's first and last bytes arrived). The sender
connects (from source port S, or one the kernel picks, as NCCL's do), prints `connected`,
then for every line on its standard input sends one burst of N bytes and prints
`{"start": t, "sent": t}`; a line `go R` first sets its pace to R Mb/s (0: none), as a
NIC's rate follows the fabric when a wavelength is lost, and a line `pace R` sets it at
once, in the middle of a burst too (a wavelength lost during a sync). Times are
time.monotonic(): one clock in every namespace, the runner's too. Both stop when their
input or connection ends. `--cc` picks the sender's TCP congestion control (the kernel's
default, cubic, otherwise). `--pace-mbps` caps the sender's rate with the kernel's TCP
pacing (SO_MAX_PACING_RATE: packets spaced in time, no fq qdisc needed), as a RoCE NIC's
rate limiter holds each queue pair at the rate its congestion control settled on.
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import sys
import threading
import time

CHUNK = 64 * 1024
SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47)   # Linux; Python lacks the name


def _say(obj) -> None:
    sys.stdout.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    sys.stdout.flush()


def recv(args) -> int:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", args.port))
    server.listen(1)
    _say("listening")
    conn, _ = server.accept()
    server.close()
    buf = bytearray(CHUNK)
    left, first = args.bytes, None
    while True:
        n = conn.recv_into(buf)
        if n == 0:
            return 0
        now = time.monotonic()
        while n > 0:                   # a burst ends inside this read (or goes on)
            if first is None:
                first = now
            taken = min(n, left)
            left -= taken
            n -= taken
            if left == 0:
                _say({"first": first, "last": now})
                left, first = args.bytes, None


def send(args) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.cc:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, args.cc.encode())
        except OSError as exc:
            _say(f"congestion control {args.cc!r}: {exc.strerror}")
            return 2
    if args.pace_mbps > 0:
        _pace(sock, args.pace_mbps)
    sock.bind(("0.0.0.0", args.sport))        # one connection: the same 5-tuple every step
    deadline = time.monotonic() + 10.0
    while True:
        try:
            sock.connect((args.dst, args.port))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    _say("connected")
    payload = memoryview(bytes(CHUNK))
    bursts: queue.Queue[list[str] | None] = queue.Queue()     # one item a burst
    threading.Thread(target=_read_commands, args=(sock, bursts), daemon=True).start()
    while bursts.get() is not None:
        start, left = time.monotonic(), args.bytes
        while left > 0:
            n = min(left, CHUNK)
            sock.sendall(payload[:n])
            left -= n
        _say({"start": start, "sent": time.monotonic()})
    sock.close()
    return 0


def _read_commands(sock: socket.socket, bursts: "queue.Queue[list[str] | None]") -> None:
    """Standard input, read beside the bursts, each line's rate set here in input order
    (the socket option applies to the packets not yet sent): `pace R` at once, `go [R]`
    before its burst is queued (set by the bursts' thread, a `go R` then `pace R2` ended
    at R: a reviewer's). None once the input ends."""
    for line in sys.stdin:
        words = line.split()
        if len(words) > 1:
            try:
                _pace(sock, float(words[1]))
            except (OSError, ValueError):
                pass         # closing (nothing left to pace), or not a rate: as it was
        if words[:1] != ["pace"]:
            bursts.put(words)
    bursts.put(None)


def _pace(sock: socket.socket, mbps: float) -> None:
    """Cap the sending rate at `mbps` (bytes per second of IP packets, a u32 in the
    kernel's oldest form of the option, whose all-ones, -1 as Python's C int, is "no
    cap"); 0 lifts the cap."""
    rate = min(int(mbps * 1e6 / 8), 2**31 - 1) if mbps > 0 else -1
    sock.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, rate)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sync_agent")
    sub = parser.add_subparsers(dest="role", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--bytes", type=int, required=True)
    s = sub.add_parser("send")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--sport", type=int, default=0)
    s.add_argument("--cc", default="", help="TCP congestion control (default: the kernel's)")
    s.add_argument("--pace-mbps", type=float, default=0.0,
                   help="cap the sending rate, Mb/s of IP packets (default: no cap)")
    s.add_argument("--bytes", type=int, required=True)
    args = parser.parse_args(argv)
    return recv(args) if args.role == "recv" else send(args)


if __name__ == "__main__":
    sys.exit(main())
