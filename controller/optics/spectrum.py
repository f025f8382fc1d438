"""The ITU-T G.694.1 flexible grid and first-fit spectrum assignment.

Frequencies are whole MHz (ints) so that 6.25 GHz steps never drift; THz only at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from .catalog import OpticsError

GRID_ANCHOR_MHZ = 193_100_000   # G.694.1: f = 193.1 THz + n × 6.25 GHz
CENTRE_STEP_MHZ = 6_250
SLOT_STEP_MHZ = 12_500          # slot width = m × 12.5 GHz


@dataclass(frozen=True)
class Band:
    """A contiguous band of spectrum, [low_mhz, high_mhz)."""

    name: str
    low_mhz: int
    high_mhz: int

    @property
    def width_mhz(self) -> int:
        return self.high_mhz - self.low_mhz


# C-band 191.3-196.1 THz, the OIF 400ZR channel plan's range (4.8 THz).
C_BAND = Band("C", 191_300_000, 196_100_000)
# L-band taken as 186.1-190.9 THz: the same 4.8 THz, with a 400 GHz guard below the C-band
# for the C/L splitter's transition. Both edges lie on the 6.25 GHz grid.
L_BAND = Band("L", 186_100_000, 190_900_000)
# "C+L" fills the C-band first, then the L-band: C is where every ZR module is specified.
BANDS = MappingProxyType({"C": (C_BAND,), "C+L": (C_BAND, L_BAND)})


@dataclass(frozen=True)
class Slot:
    """A frequency slot on the flexible grid: centre n and width m in G.694.1 terms."""

    band: str
    centre_mhz: int
    width_mhz: int

    @property
    def n(self) -> int:
        return (self.centre_mhz - GRID_ANCHOR_MHZ) // CENTRE_STEP_MHZ

    @property
    def m(self) -> int:
        return self.width_mhz // SLOT_STEP_MHZ

    @property
    def low_mhz(self) -> int:
        return self.centre_mhz - self.width_mhz // 2

    @property
    def high_mhz(self) -> int:
        return self.centre_mhz + self.width_mhz // 2

    @property
    def frequency_thz(self) -> float:
        return self.centre_mhz / 1e6


def width_mhz(width_ghz: float) -> int:
    """A slot width in whole MHz; OpticsError unless it is a positive multiple of 12.5 GHz."""
    mhz = round(width_ghz * 1000)
    if mhz <= 0 or abs(width_ghz * 1000 - mhz) > 1e-6 or mhz % SLOT_STEP_MHZ:
        raise OpticsError(f"slot width {width_ghz} GHz is not a positive multiple of 12.5 GHz")
    return mhz


def _bands(band: str) -> tuple[Band, ...]:
    try:
        return BANDS[band]
    except KeyError:
        raise OpticsError(f"unknown band {band!r}; valid bands are {', '.join(BANDS)}") from None


def slots_that_fit(width_ghz: float, band: str = "C") -> int:
    """How many slots of `width_ghz` fit side by side in `band` (a full load, for QoT)."""
    width = width_mhz(width_ghz)
    return sum(part.width_mhz // width for part in _bands(band))


def first_fit(count: int, width_ghz: float, band: str = "C") -> tuple[Slot, ...]:
    """Assign `count` equal slots from the low edge of each band up, as GNPy's first fit does.

    Slot k of width w in a band starting at f0 is centred on f0 + k·w + w/2. A slot is
    m × 12.5 GHz wide, so its half-width is m × 6.25 GHz and a band edge on the grid puts
    every centre on the grid too; this is checked, not assumed.

    Parameters
    ----------
    count
        Wavelengths wanted (>= 1).
    width_ghz
        Slot width, a multiple of 12.5 GHz.
    band
        "C", or "C+L" to fill the C-band first and then the L-band.

    Raises
    ------
    OpticsError
        More wavelengths than fit: the message says how many fit at this width in this band.
    """
    width = width_mhz(width_ghz)
    parts = _bands(band)
    fit = sum(part.width_mhz // width for part in parts)
    if count > fit:
        raise OpticsError(
            f"{count} wavelengths of {width_ghz:g} GHz do not fit in the {band} band: "
            f"only {fit} fit; ask for at most {fit}"
            + ("" if band == "C+L" else " or use band C+L"))
    slots: list[Slot] = []
    for part in parts:
        for k in range(min(part.width_mhz // width, count - len(slots))):
            centre = part.low_mhz + k * width + width // 2
            if (centre - GRID_ANCHOR_MHZ) % CENTRE_STEP_MHZ:
                raise OpticsError(f"centre {centre / 1e6} THz is off the 6.25 GHz grid")
            slots.append(Slot(part.name, centre, width))
    return tuple(slots)
