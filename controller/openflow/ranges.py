"""A range of L4 ports as masked matches: OpenFlow matches a port exactly or under a
bit mask (OVS supports masked tcp_dst/udp_dst), never a range. Any range lo..hi is the
union of aligned power-of-two blocks, each one (value, mask); the greedy split below
gives the fewest such blocks (at most 2 x 16 - 2 = 30 for 16-bit ports)."""

from __future__ import annotations

PORT_BITS = 16


def port_range_masks(lo: int, hi: int, bits: int = PORT_BITS) -> list[tuple[int, int]]:
    """[(value, mask)] whose matches together cover exactly the ports lo..hi (inclusive),
    disjoint, in ascending order. ValueError if the range is empty or out of bounds."""
    top = (1 << bits) - 1
    if not 0 <= lo <= hi <= top:
        raise ValueError(f"port range {lo}..{hi} is not within 0..{top}")
    out = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << bits       # the largest block aligned at lo ...
        while lo + size - 1 > hi:                  # ... that does not pass hi
            size >>= 1
        out.append((lo, top & ~(size - 1)))
        lo += size
    return out
