"""The natural demand of elephant flows, as Hedera estimates it.

A flow's current rate says what the network lets it have, not what it wants: a flow stuck
behind a collision looks small. Placing flows by their current rates therefore keeps
collisions in place. Hedera instead estimates each flow's *natural demand*, the max-min
fair rate it would get if it were limited only by the NICs of its sender and receiver
(as if the network were one non-blocking switch), and places flows by that.

References
----------
M. Al-Fares, S. Radhakrishnan, B. Raghavan, N. Huang, A. Vahdat, "Hedera: Dynamic Flow
Scheduling for Data Center Networks", NSDI 2010, section 4.2 ("Demand Estimation",
Figure 7).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

# Two estimates closer than this (fraction of a NIC) are the same: the loop has converged.
_TOLERANCE = 1e-12


def estimate_demands(flows: Sequence[tuple[Hashable, Hashable]],
                     max_iterations: int = 1000) -> list[float]:
    """The natural demand of each flow, as a fraction of its hosts' NIC rate.

    Hedera's iterative estimator: senders split their spare NIC capacity equally among
    their flows whose demand is not yet known (``est_src``); receivers whose incoming
    flows ask for more than one NIC's worth cap them at the max-min fair share of the
    receiver, those flows becoming *receiver-limited* and converged (``est_dst``).
    The two steps repeat until no estimate changes. All NICs have the same rate, as in
    the paper; multiply by it to get bits per second.

    Parameters
    ----------
    flows
        ``(src_host, dst_host)`` of every flow; a host pair may appear several times
        (several connections, e.g. RoCE queue pairs, each its own flow).
    max_iterations
        Safety bound on the number of ``est_src`` / ``est_dst`` rounds; the estimator
        converges in a few rounds in practice (at most one per distinct bottleneck).

    Returns
    -------
    list of float
        Demand of each flow in the order given, each in (0, 1].

    Examples
    --------
    One sender, four receivers: the sender's NIC is the limit.

    >>> estimate_demands([("a", "b"), ("a", "c"), ("a", "d"), ("a", "e")])
    [0.25, 0.25, 0.25, 0.25]

    Three senders into one receiver: the receiver's NIC is the limit.

    >>> [round(d, 6) for d in estimate_demands([("a", "d"), ("b", "d"), ("c", "d")])]
    [0.333333, 0.333333, 0.333333]
    """
    n = len(flows)
    demand = [0.0] * n
    converged = [False] * n
    by_src: dict[Hashable, list[int]] = defaultdict(list)
    by_dst: dict[Hashable, list[int]] = defaultdict(list)
    for i, (src, dst) in enumerate(flows):
        by_src[src].append(i)
        by_dst[dst].append(i)

    for _ in range(max_iterations):
        before = list(demand)
        for members in by_src.values():
            _estimate_sender(members, demand, converged)
        for members in by_dst.values():
            _estimate_receiver(members, demand, converged)
        if all(abs(a - b) <= _TOLERANCE for a, b in zip(before, demand)):
            break
    return demand


def _estimate_sender(members: list[int], demand: list[float], converged: list[bool]) -> None:
    """Hedera ``est_src``: share what converged flows leave of the NIC among the others."""
    known = sum(demand[i] for i in members if converged[i])
    unknown = [i for i in members if not converged[i]]
    if not unknown:
        return
    share = max(0.0, 1.0 - known) / len(unknown)
    for i in unknown:
        demand[i] = share


def _estimate_receiver(members: list[int], demand: list[float], converged: list[bool]) -> None:
    """Hedera ``est_dst``: cap an oversubscribed receiver's flows at its max-min fair share.

    Flows asking less than the fair share keep their demand (they are sender-limited);
    the rest are receiver-limited, get what the others leave, and are converged.
    """
    if sum(demand[i] for i in members) <= 1.0 + _TOLERANCE:
        return
    limited = set(members)
    sender_limited = 0.0
    share = 1.0 / len(members)
    while True:
        below = {i for i in limited if demand[i] < share}
        if not below:
            break
        sender_limited += sum(demand[i] for i in below)
        limited -= below
        share = (1.0 - sender_limited) / len(limited)
    for i in limited:
        demand[i] = share
        converged[i] = True
