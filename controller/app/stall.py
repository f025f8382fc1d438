"""When to say that the state file holds the controller up. Every change waits for its
commit before its switch messages go (memory follows the disk), so a disk that hangs in
fsync stops the switches' programming, failures' re-routes included: said once a change
has waited `warn_s`, again every `repeat_s` while it lasts, and once when it is over."""

from __future__ import annotations

WARN_S = 5.0
REPEAT_S = 30.0


class StallWatch:
    def __init__(self, path: str, warn_s: float = WARN_S, repeat_s: float = REPEAT_S):
        self.path = path
        self.warn_s = warn_s
        self.repeat_s = repeat_s
        self._said_at: float | None = None      # when the stall was last said
        self._longest = 0.0

    def check(self, waited: float, now: float) -> tuple[str, str] | None:
        """(level, text) to log now, given how long the oldest change not yet durable
        has `waited` (0: none waits); None: nothing to say."""
        if waited >= self.warn_s:
            self._longest = max(self._longest, waited)
            if self._said_at is not None and now - self._said_at < self.repeat_s:
                return None
            self._said_at = now
            return ("warning", f"the state file {self.path} has not finished a commit for "
                               f"{waited:.0f} s (a hung or very slow disk?): new reservations "
                               f"and every switch message queued behind it, failures' "
                               f"re-routes included, wait for it")
        if self._said_at is None:
            return None
        longest, self._said_at, self._longest = self._longest, None, 0.0
        return ("info", f"the state file {self.path} commits again (changes waited up to "
                        f"{longest:.0f} s); switch programming goes on")
