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

    def check(self, waited: float, now: float, running: bool = True
              ) -> tuple[str, str] | None:
        """(level, text) to log now, given how long the oldest change not yet durable,
        or read of the file, has `waited` (0: none waits) and whether the disk has a
        commit or a read `running`; None: nothing to say."""
        if waited >= self.warn_s:
            self._longest = max(self._longest, waited)
            if self._said_at is not None and now - self._said_at < self.repeat_s:
                return None
            self._said_at = now
            if not running:
                # No disk to blame: a commit no thread leads (a soak tester's wedge was
                # said as a slow disk).
                return ("error", f"changes have waited {waited:.0f} s for the state file "
                                 f"{self.path} while no commit runs: the controller is stuck "
                                 f"(a bug: please report it, with this log); new reservations "
                                 f"and switch messages wait")
            return ("warning", f"the state file {self.path} has not answered a commit or a "
                               f"read for {waited:.0f} s (a hung or very slow disk?): new "
                               f"reservations and every switch message queued behind a "
                               f"commit, failures' re-routes included, wait for it")
        if self._said_at is None:
            return None
        longest, self._said_at, self._longest = self._longest, None, 0.0
        return ("info", f"the state file {self.path} commits again (changes waited up to "
                        f"{longest:.0f} s); switch programming goes on")
