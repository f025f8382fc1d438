"""Planning a DCI link: mode, spectrum and the figures (GNPy's) of every wavelength on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import DEFAULT_CATALOG, Catalog, OpticsError
from .line import AUTO, LineSystem
from .modes import check_mode, select_mode
from .spectrum import first_fit

# Each wavelength needs a transceiver module at both ends.
MODULES_PER_WAVELENGTH = 2


@dataclass(frozen=True)
class Channel:
    """One wavelength of a DCI link: where it sits on the grid and how it fares.

    `gsnr_db` (ASE + NLI + transmitter noise) and `osnr_ase_db` (ASE + transmitter noise,
    no NLI) are GNPy's, per 0.1 nm. `margin_db` is the GSNR above the mode's required OSNR,
    before the system margin is taken off, so a feasible channel shows at least the line's
    `margin_db`.
    """

    name: str
    index: int
    frequency_thz: float
    module: str
    mode: str
    rate_gbps: int
    gsnr_db: float
    osnr_ase_db: float
    required_osnr_db: float
    margin_db: float
    dispersion_ps_nm: float
    latency_ms: float
    width_ghz: float

    @property
    def osnr_db(self) -> float:
        """The OSNR an optical spectrum analyser would show: `osnr_ase_db` (no NLI).

        Kept for API v1's `osnr_db` and the `dcilab_wavelength_osnr_db` metric; modes are
        judged on `gsnr_db`.
        """
        return self.osnr_ase_db

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the only place figures are rounded."""
        return {
            "name": self.name,
            "index": self.index,
            "frequency_thz": round(self.frequency_thz, 6),
            "width_ghz": round(self.width_ghz, 3),
            "module": self.module,
            "mode": self.mode,
            "rate_gbps": self.rate_gbps,
            "gsnr_db": round(self.gsnr_db, 3),
            "osnr_ase_db": round(self.osnr_ase_db, 3),
            "required_osnr_db": round(self.required_osnr_db, 3),
            "margin_db": round(self.margin_db, 3),
            "dispersion_ps_nm": round(self.dispersion_ps_nm, 3),
            "latency_ms": round(self.latency_ms, 6),
        }


@dataclass(frozen=True)
class LinkPlan:
    """The plan of one DCI link: its line, its mode, and its wavelengths in grid order."""

    name: str
    module: str
    mode: str
    spans: int
    span_km: float
    span_loss_db: float
    launch_power_dbm: float
    launch_power_auto: bool
    latency_ms: float
    capacity_gbps: int
    power_w: float
    cost_usd: float
    channels: tuple[Channel, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the only place figures are rounded."""
        return {
            "name": self.name,
            "module": self.module,
            "mode": self.mode,
            "spans": self.spans,
            "span_km": round(self.span_km, 3),
            "span_loss_db": round(self.span_loss_db, 3),
            "launch_power_dbm": round(self.launch_power_dbm, 3),
            "launch_power_auto": self.launch_power_auto,
            "latency_ms": round(self.latency_ms, 6),
            "capacity_gbps": self.capacity_gbps,
            "power_w": round(self.power_w, 3),
            "cost_usd": round(self.cost_usd, 2),
            "wavelengths": [channel.to_dict() for channel in self.channels],
        }


def plan_link(name: str, module: str, wavelengths: int, line: LineSystem,
              mode: str | None = None, catalog: Catalog = DEFAULT_CATALOG) -> LinkPlan:
    """Plan a DCI link: choose the mode, place the wavelengths, and total the cost.

    Parameters
    ----------
    name
        The link's name; wavelength k (from 1) is called ``f"{name}.w{k}"``.
    module
        Transceiver module, one of the catalog's names (e.g. "400ZR+").
    wavelengths
        How many wavelengths the link carries, all on the same module and mode.
    line
        The line system (spans, amplifiers, fibre, band).
    mode
        Force a mode instead of choosing the highest-rate feasible one.
    catalog
        Transceiver figures, possibly overridden.

    Returns
    -------
    LinkPlan
        Spectrum is assigned first fit from the low edge of the band (C before L); GNPy
        propagates exactly those wavelengths, so each has its own GSNR (the mid-band ones
        suffer most NLI); all share the mode, dispersion and latency.

    Raises
    ------
    OpticsError
        A bad number, unknown module or mode, no feasible mode, or too many wavelengths for
        the band; the message says which and, where it can, what would work.
    """
    if not isinstance(name, str) or not name:
        raise OpticsError(f"name must be a non-empty string, got {name!r}")
    if not isinstance(wavelengths, int) or isinstance(wavelengths, bool) or wavelengths < 1:
        raise OpticsError(f"wavelengths must be a whole number >= 1, got {wavelengths!r}")
    transceiver = catalog.module(module)
    chosen = select_mode(module, line, mode, catalog, wavelengths)
    slots = first_fit(wavelengths, chosen.width_ghz, line.band)
    qot = check_mode(transceiver, chosen, line, wavelengths).qot

    latency_ms = (line.propagation_latency_us + transceiver.dsp_latency_us) / 1000.0
    channels = tuple(
        Channel(
            name=f"{name}.w{k}",
            index=k,
            frequency_thz=slot.frequency_thz,
            module=transceiver.name,
            mode=chosen.name,
            rate_gbps=chosen.rate_gbps,
            gsnr_db=gsnr,
            osnr_ase_db=osnr_ase,
            required_osnr_db=chosen.required_osnr_db,
            margin_db=gsnr - chosen.required_osnr_db,
            dispersion_ps_nm=line.dispersion_ps_nm,
            latency_ms=latency_ms,
            width_ghz=chosen.width_ghz,
        )
        for k, (slot, gsnr, osnr_ase) in enumerate(
            zip(slots, qot.gsnr_db, qot.osnr_ase_db, strict=True), start=1)
    )
    modules = MODULES_PER_WAVELENGTH * wavelengths
    return LinkPlan(
        name=name,
        module=transceiver.name,
        mode=chosen.name,
        spans=line.spans,
        span_km=line.span_length_km,
        span_loss_db=line.span_loss_db,
        launch_power_dbm=qot.launch_power_dbm,
        launch_power_auto=line.launch_power_dbm == AUTO,
        latency_ms=latency_ms,
        capacity_gbps=sum(channel.rate_gbps for channel in channels),
        power_w=modules * transceiver.power_w,
        cost_usd=modules * transceiver.price_usd,
        channels=channels,
    )
