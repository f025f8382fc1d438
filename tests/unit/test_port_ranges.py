"""Port ranges as masked matches: exhaustively on small widths, and spot checks at 16 bits."""

from __future__ import annotations

import pytest

from dcilab.openflow.ranges import port_range_masks


def covered(blocks, bits):
    return {p for p in range(1 << bits) for value, mask in blocks if p & mask == value}


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6])
def test_every_range_is_covered_exactly_and_disjointly(bits):
    for lo in range(1 << bits):
        for hi in range(lo, 1 << bits):
            blocks = port_range_masks(lo, hi, bits)
            got = covered(blocks, bits)
            assert got == set(range(lo, hi + 1)), (lo, hi, blocks)
            sizes = [(1 << bits) >> bin(mask).count("1") for _, mask in blocks]
            assert sum(sizes) == hi - lo + 1          # disjoint: the sizes add up
            assert len(blocks) <= max(1, 2 * bits - 2)
            for value, mask in blocks:
                assert value & ~mask == 0             # values are aligned to their masks


@pytest.mark.parametrize("lo,hi,expected", [
    (5201, 5201, [(5201, 0xFFFF)]),
    (0, 65535, [(0, 0)]),
    (1024, 2047, [(1024, 0xFC00)]),
    (5200, 5203, [(5200, 0xFFFC)]),
    (1, 65535, None),
])
def test_sixteen_bit_ranges(lo, hi, expected):
    blocks = port_range_masks(lo, hi)
    if expected is not None:
        assert blocks == expected
    else:
        assert len(blocks) == 16
        assert blocks[0] == (1, 0xFFFF) and blocks[-1] == (32768, 0x8000)


@pytest.mark.parametrize("lo,hi", [(10, 9), (-1, 5), (0, 65536)])
def test_empty_or_out_of_bounds_ranges_are_refused(lo, hi):
    with pytest.raises(ValueError, match="port range"):
        port_range_masks(lo, hi)
