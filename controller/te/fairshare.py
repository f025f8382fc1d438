"""Max-min fair rates of flows on fixed paths, and when a set of sized flows completes.

A flow-level model of congestion control: every flow gets its max-min fair share of the
links it crosses, computed by progressive filling (all rates rise together; a link that
fills freezes the flows crossing it). When a flow finishes, the others' rates are
recomputed. A collective completes when its last flow does.

References
----------
D. Bertsekas, R. Gallager, "Data Networks", 2nd ed., Prentice Hall 1992, section 6.5.2
(max-min fairness, the progressive filling algorithm).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_SATURATED = 1e-9        # a link with less than this fraction of its capacity left is full
_FINISHED = 1e-9         # a flow with less than this fraction of its bits left has finished


class _Network:
    """Flows x links incidence (as index pairs), built once for repeated fair shares."""

    def __init__(self, paths: Sequence[Sequence[Hashable]], capacity: Mapping[Hashable, float]):
        index: dict[Hashable, int] = {}
        links, flows = [], []
        for f, path in enumerate(paths):
            for link in dict.fromkeys(path):          # a flow counts once per link
                if link not in capacity:
                    raise KeyError(f"flow {f} crosses {link!r}, which has no capacity")
                links.append(index.setdefault(link, len(index)))
                flows.append(f)
        self.capacity = np.array([float(capacity[l]) for l in index])
        if np.any(self.capacity <= 0):
            raise ValueError("every link needs a positive capacity")
        self.link_of = np.array(links, dtype=np.intp)
        self.flow_of = np.array(flows, dtype=np.intp)
        self.n_flows = len(paths)
        self.unconstrained = np.bincount(self.flow_of, minlength=self.n_flows) == 0

    def rates(self, active: np.ndarray) -> np.ndarray:
        """Max-min fair rates of the `active` flows (others get 0); inf for a pathless flow."""
        rate = np.zeros(self.n_flows)
        rate[active & self.unconstrained] = np.inf
        rising = active & ~self.unconstrained
        spare = self.capacity.copy()
        level = 0.0
        entries = np.flatnonzero(rising[self.flow_of])     # (link, flow) pairs still rising
        while entries.size:
            links, flows = self.link_of[entries], self.flow_of[entries]
            crossing = np.bincount(links, minlength=len(spare))
            with np.errstate(divide="ignore", invalid="ignore"):
                room = np.where(crossing > 0, spare / crossing, np.inf)
            step = room.min()
            level += step
            spare -= crossing * step
            full = (crossing > 0) & (spare <= _SATURATED * self.capacity)
            frozen = flows[full[links]]
            rate[frozen] = level
            rising[frozen] = False
            entries = entries[rising[flows]]
        return rate


def max_min_rates(paths: Sequence[Sequence[Hashable]],
                  capacity: Mapping[Hashable, float]) -> list[float]:
    """Max-min fair rate of each flow, by progressive filling.

    Parameters
    ----------
    paths
        The links (any hashable ids) each flow crosses.
    capacity
        Capacity of every link crossed, in any rate unit; rates come back in it.

    Returns
    -------
    list of float
        Each flow's rate; ``inf`` for a flow that crosses no link.

    Examples
    --------
    Bertsekas & Gallager's example: a long flow over three unit links, each shared with
    one short flow, gets 1/2, as does every short flow.

    >>> max_min_rates([["l1", "l2", "l3"], ["l1"], ["l2"], ["l3"]],
    ...               {"l1": 1.0, "l2": 1.0, "l3": 1.0})
    [0.5, 0.5, 0.5, 0.5]
    """
    if not paths:
        return []
    return _Network(paths, capacity).rates(np.ones(len(paths), dtype=bool)).tolist()


@dataclass(frozen=True)
class Completion:
    """When each flow finished (s from the start), and when the last one did."""

    finish_s: tuple[float, ...]

    @property
    def makespan_s(self) -> float:
        return max(self.finish_s, default=0.0)


def completion_times(sizes_bytes: Sequence[float], paths: Sequence[Sequence[Hashable]],
                     capacity_bps: Mapping[Hashable, float]) -> Completion:
    """Finish time of every flow, all starting at once, under max-min fair sharing.

    Between two finishes, rates are the max-min fair rates of the flows still running;
    when a flow finishes they are recomputed (flows finishing together finish in one
    event).

    Parameters
    ----------
    sizes_bytes
        Bytes each flow carries.
    paths
        Links each flow crosses.
    capacity_bps
        Capacity of every link crossed, bits per second.
    """
    if not paths:
        return Completion(())
    net = _Network(paths, capacity_bps)
    left = np.array(sizes_bytes, dtype=float) * 8.0
    total = np.maximum(left, 1.0)
    finish = np.zeros(len(left))
    running = (left > 0) & ~net.unconstrained     # a flow crossing no link is done at once
    now = 0.0
    while running.any():
        rate = net.rates(running)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.where(running, left / rate, np.inf)
        step = eta.min()
        now += step
        left[running] -= rate[running] * step
        done = running & (left <= _FINISHED * total)
        finish[done] = now
        running &= ~done
    return Completion(tuple(finish.tolist()))
