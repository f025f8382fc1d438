"""Where the controller carried each elephant (its pin, its route or a reservation) while
traffic runs, asked over its API.

A table built from byte counters alone cannot tell which of several flows leaving one
gateway over one line system took which wavelength; the controller knows where it pinned
each. Its answer (`ListElephants`) is read every `interval_s` during a run, and every pin
seen of each flow kept: with no pin hold, an elephant's pin is gone once it ends.
"""

from __future__ import annotations

import threading

from ..api.client import ApiError, Client, Unreachable

# (source host, source port, destination host, destination port): an iperf3 flow's data
# stream (its control connection, to the same server port, never becomes an elephant).
FlowEnds = tuple[str, int, str, int]
# Per DCI hop, in order: (wavelength link name, the gateway it leaves by).
PinnedPath = tuple[tuple[str, str], ...]


class PinWatcher:
    """Polls the controller's elephants in a thread between `with` and its end."""

    def __init__(self, server: str, interval_s: float = 0.5, timeout_s: float = 2.0):
        self.server, self.interval_s, self.timeout_s = server, interval_s, timeout_s
        # every pin seen of each flow, oldest first: a flow moved mid-run crossed each
        self.pins: dict[FlowEnds, list[PinnedPath]] = {}
        self.failure: str | None = None     # why no answer came, if none did
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pin-watcher", daemon=True)

    def __enter__(self) -> "PinWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 1)

    def _run(self) -> None:
        answered = False
        with Client(self.server, timeout=self.timeout_s,
                    read_patience=self.timeout_s) as client:
            while True:
                try:
                    self.read(client.elephants())
                    answered = True
                except (ApiError, Unreachable) as exc:   # a busy read budget: next time
                    if not answered:
                        self.failure = str(exc)
                else:
                    self.failure = None
                if self._stop.wait(self.interval_s):
                    return

    def read(self, answer) -> None:
        """Keep each elephant's hops from one ListElephants answer (a pin's, a route's or
        a reservation's); one listed without hops is hashed now (its pin lost with no
        live route left): forgotten."""
        for e in answer.elephants:
            if e.ip_proto != 6:
                continue
            ends = (e.src_host, e.src_port, e.dst_host, e.dst_port)
            if e.hops:
                path = tuple((hop.wavelength, hop.src) for hop in e.hops)
                seen = self.pins.setdefault(ends, [])
                if not seen or seen[-1] != path:
                    seen.append(path)
            else:
                self.pins.pop(ends, None)
