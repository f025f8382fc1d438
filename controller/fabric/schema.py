"""The fabric file's schema: the names users write, with their defaults.

Unknown fields are an error everywhere (a typo must not silently fall back to a default).
Checks that need more than one field (references between sites and links, address space)
live in `checks.py`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo,
                      field_validator)

from ..optics.line import MIN_AMPLIFIER_NF_DB

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def _launch_power(value: object) -> float | str:
    # One clear message instead of one per member of a union.
    if value == "auto":
        return value
    if (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and -10 <= value <= 10):
        return float(value)
    raise ValueError("must be a number of dBm per wavelength from -10 to 10, or auto")


LaunchPower = Annotated[float | Literal["auto"], BeforeValidator(_launch_power)]


# Beyond these a figure is a typo, and GNPy would run for minutes on it (one element per
# span): once round the Earth, in spans of 80 km.
MAX_FIBRE_KM = 40_000.0
MAX_SPANS = 500
# A line system is at least one of the 65 536 links load.py allows; a list is refused by
# its length before any entry is validated (so 100 000 broken entries cost one message).
MAX_LINE_SYSTEMS = 16384
MAX_SITES = 254                 # a site's number is an octet of its hosts' addresses
MIN_SCALE = 1e-9
# 1 Pb/s: `dcilab plan` sizes a site's fabric to its traffic (12 Tb/s for a 300B-parameter
# job on 16 sites), and at the default scale this is still a 100 Gb/s emulated link;
# beyond, a figure is a typo (1e308 gave an "inf Mb/s" emulated rate). Module figures as
# the job file bounds them (plan/schema.py).
MAX_FABRIC_GBPS = 1_000_000.0
MAX_MODULE_POWER_W = 1e5
MAX_MODULE_PRICE_USD = 1e8
MAX_MODULE_OVERRIDES = 64
MAX_MODE_OVERRIDES = 16
MAX_DSP_LATENCY_US = 1e4        # 10 ms: far beyond any DSP and FEC, yet a number
MAX_OSNR_DB = 60.0
MAX_SLOT_GHZ = 1000.0
MAX_MODE_RATE_GBPS = 10_000
MAX_CD_TOLERANCE_PS_NM = 1e6


class _Strict(BaseModel):
    # strict: `spines: true` or `wavelengths: 2.5` are mistakes, not 1 and 2;
    # no inf/nan: a rate of .inf would make every figure downstream meaningless.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SiteSpec(_Strict):
    """A data center: a leaf-spine fabric plus the DCI gateways that join it to other sites."""

    name: str = Field(pattern=NAME_PATTERN, max_length=48)
    spines: int = Field(ge=1, le=64)
    leaves: int = Field(ge=1, le=255)
    hosts_per_leaf: int = Field(ge=1, le=254)
    gateways: int = Field(default=1, ge=1, le=64)
    fabric_gbps: float = Field(default=400.0, gt=0, le=MAX_FABRIC_GBPS,
                               description="intra-site and host link rate")


class DciLinkSpec(_Strict):
    """A DCI line system: one fibre pair between two sites carrying `wavelengths` ZR channels."""

    name: str = Field(pattern=NAME_PATTERN, max_length=48)
    a: str
    b: str
    fiber_km: float = Field(gt=0, le=MAX_FIBRE_KM)
    module: str
    wavelengths: int = Field(ge=1, le=1024)      # a band holds at most a few hundred
    # Which gateway of each site terminates the link (1-based); default round-robin.
    a_gateway: int | None = Field(default=None, ge=1)
    b_gateway: int | None = Field(default=None, ge=1)
    # Line-system model (issue 3); defaults are the planning figures in REFERENCE.md.
    mode: str | None = None
    span_km: float = Field(default=80.0, ge=1.0, le=MAX_FIBRE_KM)
    attenuation_db_per_km: float = Field(default=0.22, gt=0, le=1.0)
    amplifier_nf_db: float = Field(default=5.5, ge=MIN_AMPLIFIER_NF_DB, le=20.0)
    # Per wavelength into every span, dBm; "auto": the best for the lit spectrum (GNPy).
    launch_power_dbm: LaunchPower = 0.0
    margin_db: float = Field(default=2.0, ge=0, le=20.0)
    # > 0 (and attenuation > 0): the GN model of nonlinear interference needs them.
    dispersion_ps_nm_km: float = Field(default=17.0, ge=0.1, le=40.0)
    band: Literal["C", "C+L"] = "C"
    # Shared risk link groups: ducts or conduits this fibre shares with others (a backhoe
    # cuts them together). Protection avoids the line systems sharing one.
    srlg: list[Annotated[str, Field(pattern=NAME_PATTERN, max_length=48)]] = Field(
        default_factory=list, max_length=64)


    @field_validator("span_km")
    @classmethod
    def _spans_bounded(cls, span_km: float, info: ValidationInfo) -> float:
        fiber_km = info.data.get("fiber_km")
        spans = math.ceil(fiber_km / span_km - 1e-9) if fiber_km else 0
        if spans > MAX_SPANS:
            raise ValueError(f"{spans} spans of at most {span_km:g} km over fiber_km "
                             f"{fiber_km:g}; at most {MAX_SPANS} spans (GNPy models each one)")
        return span_km


class ModeOverride(_Strict):
    """Override a mode's figures (the 100G OpenZR+ mode's 50 GHz slot is an assumption;
    a vendor's datasheet may give another required OSNR or dispersion tolerance), or add a
    mode the catalog lacks, with every figure (an 800ZR+'s 400G fallback, say, from its
    datasheet: the public sources give only 800G)."""

    rate_gbps: int | None = Field(default=None, ge=1, le=MAX_MODE_RATE_GBPS)
    line_rate_gbps: float | None = Field(default=None, gt=0, le=2 * MAX_MODE_RATE_GBPS)
    baud_gbd: float | None = Field(default=None, gt=0, le=MAX_SLOT_GHZ)
    modulation: Literal["DP-QPSK", "DP-8QAM", "DP-16QAM", "PCS-16QAM"] | None = None
    fec: Literal["CFEC", "oFEC"] | None = None
    width_ghz: float | None = Field(default=None, gt=0, le=MAX_SLOT_GHZ)
    required_osnr_db: float | None = Field(default=None, ge=0, le=MAX_OSNR_DB)
    cd_tolerance_ps_nm: float | None = Field(default=None, ge=0, le=MAX_CD_TOLERANCE_PS_NM)


class ModuleOverride(_Strict):
    """Override catalog figures that have no public source (prices, 800G power, DSP/FEC
    latency, 800G transmitter OSNR, the 100G slot), or that a datasheet gives otherwise."""

    power_w: float | None = Field(default=None, gt=0, le=MAX_MODULE_POWER_W)
    price_usd: float | None = Field(default=None, ge=0, le=MAX_MODULE_PRICE_USD)
    dsp_latency_us: float | None = Field(default=None, ge=0, le=MAX_DSP_LATENCY_US)
    tx_osnr_db: float | None = Field(default=None, gt=0, le=MAX_OSNR_DB)
    modes: dict[str, ModeOverride] | None = Field(default=None, max_length=MAX_MODE_OVERRIDES)


class FabricSpec(_Strict):
    """The whole fabric file."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    # At least 1e-9 (an 800G wavelength as 800 b/s): a subnormal scale made every rate
    # measured (counter / scale) infinite (an outside tester's 5e-324).
    scale: float = Field(default=1.0e-4, ge=MIN_SCALE, le=1.0,
                         description="emulated bit rate = real bit rate x scale")
    sites: list[SiteSpec] = Field(min_length=1, max_length=MAX_SITES)
    dci_links: list[DciLinkSpec] = Field(default_factory=list, max_length=MAX_LINE_SYSTEMS)
    modules: dict[str, ModuleOverride] = Field(default_factory=dict,
                                               max_length=MAX_MODULE_OVERRIDES)
