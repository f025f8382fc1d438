"""When a link that came back may be used again: the anti-flap hold-down.

A link this controller saw up and then lost is a failure; back, it is held down (a last
resort for routes, not offered to placement or admission) until it has stayed up
HOLD_DOWN_S, doubled for each flap within FLAP_WINDOW_S, up to HOLD_DOWN_MAX_S
(open-kilda's anti-flap filter waits 1 s / 3 s / 7 s), so a flapping fibre never makes
routes oscillate. A link never seen up since this controller started (a BFD session still
coming up, a fibre cut before it started) is no failure it saw: its first light is used at
once. Bookkeeping only: the controller tells the path engine.
"""

from __future__ import annotations

HOLD_DOWN_S = 1.0
HOLD_DOWN_MAX_S = 30.0
FLAP_WINDOW_S = 60.0


class LinkDamping:
    """Which links have been up, their recent losses, and the hold-downs running."""

    def __init__(self):
        self._seen_up: set[str] = set()
        self._downs: dict[str, list[float]] = {}       # link -> losses within the window
        self._held_until: dict[str, float] = {}

    def seen_up(self, link: str) -> bool:
        return link in self._seen_up

    def lit(self, link: str) -> bool:
        """`link` is up and used at once; whether that is its first light."""
        first = link not in self._seen_up
        self._seen_up.add(link)
        return first

    def lost(self, link: str, now: float) -> None:
        """`link`, seen up before, went down at `now`."""
        self._downs[link] = [t for t in self._downs.get(link, [])
                             if now - t < FLAP_WINDOW_S] + [now]

    def hold(self, link: str, now: float) -> float:
        """`link` is back from a loss at `now`: held down this long (see `released`)."""
        flaps = len(self._downs.get(link, []))
        hold = min(HOLD_DOWN_MAX_S, HOLD_DOWN_S * 2 ** max(0, flaps - 1))
        self._held_until[link] = now + hold
        return hold

    def cancel(self, link: str) -> bool:
        """No hold-down for `link` any more (down again, or its dark spell was planned);
        whether it had one."""
        return self._held_until.pop(link, None) is not None

    def released(self, now: float) -> list[str]:
        """The links whose hold-down is over at `now`, forgotten here."""
        done = [link for link, until in self._held_until.items() if now >= until]
        for link in done:
            del self._held_until[link]
        return done

    def held(self) -> dict[str, float]:
        """Links held down, with when they will be used again."""
        return dict(self._held_until)
