"""Coherent pluggable transceivers: their operating modes and where each figure comes from.

Every figure is paired with its source. Where no public source exists the source string
starts with "assumption" and says why the number was chosen; override it with
`Catalog.with_overrides`. Power and price are per transceiver module: a wavelength needs
two modules, one at each end.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class OpticsError(ValueError):
    """An optics figure, line or plan that cannot work; the message says why and what would."""


class OverrideError(OpticsError):
    """A module override that does not make sense, at `keys` under `modules:` (the module,
    then 'modes' and the mode, when the error is in one)."""

    def __init__(self, message: str, keys: tuple[str, ...]):
        super().__init__(message)
        self.keys = keys


# Slot widths on the ITU-T G.694.1 flexible grid are whole multiples of 12.5 GHz.
SLOT_GRANULARITY_GHZ = 12.5

_OIF_400ZR = "OIF 400ZR IA"
_OPENZR = "OpenZR+ MSA rev 3"
_GNPY_ZR400G = "GNPy extra_eqpt_config.json, ZR400G tx_osnr"
_OIF_800ZR = "OIF 800ZR (2024)"
_OPENROADM = "OpenROADM MSA operational-mode catalog (131 GBd)"
_GUOLIAN = "Guolian Securities 2024-10-07 (LightCounting)"
_USER = "user override"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Mode:
    """One operating mode of a transceiver, e.g. 400ZR+ at 300G DP-8QAM.

    `rate_gbps` is the client (payload) rate; `line_rate_gbps` includes FEC and framing.
    `width_ghz` is the slot the mode occupies on the flexible grid; `required_osnr_db` is
    per 0.1 nm at the FEC threshold, before any system margin.
    """

    name: str
    rate_gbps: int
    line_rate_gbps: float
    baud_gbd: float
    modulation: str
    fec: str
    width_ghz: float
    required_osnr_db: float
    cd_tolerance_ps_nm: float
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        def bad(problem: str) -> OpticsError:
            return OpticsError(f"mode {self.name}: {problem}")

        for name in ("line_rate_gbps", "baud_gbd", "width_ghz", "required_osnr_db",
                     "cd_tolerance_ps_nm"):
            if not _is_number(getattr(self, name)):
                raise bad(f"{name} must be a finite number, got {getattr(self, name)!r}")
        rate = self.rate_gbps
        if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
            raise bad(f"rate_gbps must be a positive whole number, got {rate!r}")
        if self.line_rate_gbps < rate:
            raise bad(f"line_rate_gbps {self.line_rate_gbps} is below rate_gbps {rate}")
        if self.baud_gbd <= 0:
            raise bad(f"baud_gbd must be > 0, got {self.baud_gbd}")
        slots = self.width_ghz / SLOT_GRANULARITY_GHZ
        if self.width_ghz <= 0 or abs(slots - round(slots)) > 1e-9:
            raise bad(f"width_ghz must be a positive multiple of 12.5 GHz, got {self.width_ghz}")
        if self.width_ghz < self.baud_gbd:
            raise bad(f"width_ghz {self.width_ghz} is narrower than the {self.baud_gbd} GBd signal")
        if self.cd_tolerance_ps_nm < 0:
            raise bad(f"cd_tolerance_ps_nm must be >= 0, got {self.cd_tolerance_ps_nm}")
        for name in ("modulation", "fec"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad(f"{name} must be a non-empty string")

    def source_of(self, figure: str) -> str:
        """Where `figure` (a field name) comes from."""
        return dict(self.sources)[figure]


@dataclass(frozen=True)
class Module:
    """A transceiver module (e.g. 400ZR+) and its modes, highest rate first.

    `tx_osnr_db` is the transmitter's own noise, per 0.1 nm. `power_w` and `price_usd` are
    per module. `dsp_latency_us` is what the transmitter at one end and the receiver at the
    other add to a wavelength's one-way latency (DSP, interleaving and FEC decoding).
    """

    name: str
    modes: tuple[Mode, ...]
    tx_osnr_db: float
    power_w: float
    price_usd: float
    dsp_latency_us: float
    reach_km: float | None = None
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        where = f"module {self.name}"
        if not self.modes:
            raise OpticsError(f"{where}: needs at least one mode")
        names = [mode.name for mode in self.modes]
        if len(set(names)) != len(names):
            raise OpticsError(f"{where}: mode names repeat: {', '.join(names)}")
        # Mode selection walks the modes in order, so keep them highest rate first.
        object.__setattr__(self, "modes", tuple(sorted(self.modes, key=lambda m: -m.rate_gbps)))
        for name in ("tx_osnr_db", "power_w", "price_usd", "dsp_latency_us"):
            if not _is_number(getattr(self, name)):
                raise OpticsError(
                    f"{where}: {name} must be a finite number, got {getattr(self, name)!r}")
        for name in ("power_w", "price_usd", "dsp_latency_us"):
            if getattr(self, name) < 0:
                raise OpticsError(f"{where}: {name} must be >= 0, got {getattr(self, name)}")
        if self.reach_km is not None and not (_is_number(self.reach_km) and self.reach_km > 0):
            raise OpticsError(f"{where}: reach_km must be a positive number, got {self.reach_km!r}")

    @property
    def mode_names(self) -> tuple[str, ...]:
        return tuple(mode.name for mode in self.modes)

    def mode(self, name: str) -> Mode:
        """The mode called `name`; OpticsError listing this module's modes otherwise."""
        for mode in self.modes:
            if mode.name == name:
                return mode
        raise OpticsError(f"{self.name} has no mode {name!r}{_meant(name, self.mode_names)}; "
                          f"its modes are {', '.join(self.mode_names)}")

    def source_of(self, figure: str) -> str:
        """Where `figure` (a field name) comes from."""
        return dict(self.sources)[figure]


def _meant(name: object, names: tuple[str, ...]) -> str:
    """' (did you mean X?)' for a name that differs from one of `names` by case, else ''."""
    folded = str(name).casefold()
    close = [known for known in names if known.casefold() == folded]
    return f" (did you mean {close[0]!r}?)" if close else ""


_MODULE_FIGURES = ("tx_osnr_db", "power_w", "price_usd", "dsp_latency_us")
_MODE_FIGURES = ("rate_gbps", "line_rate_gbps", "baud_gbd", "modulation", "fec", "width_ghz",
                 "required_osnr_db", "cd_tolerance_ps_nm")


@dataclass(frozen=True)
class Catalog:
    """The transceiver modules a plan may use, looked up by name."""

    modules: tuple[Module, ...]

    def __post_init__(self) -> None:
        names = [module.name for module in self.modules]
        if len(set(names)) != len(names):
            raise OpticsError(f"catalog: module names repeat: {', '.join(names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(module.name for module in self.modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.modules)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def module(self, name: str) -> Module:
        """The module called `name`; OpticsError listing the catalog's modules otherwise."""
        for module in self.modules:
            if module.name == name:
                return module
        raise OpticsError(f"unknown module {name!r}{_meant(name, self.names)}; valid modules "
                          f"are {', '.join(self.names)}")

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Catalog:
        """A new catalog with some figures replaced; this one is left unchanged.

        Parameters
        ----------
        overrides
            ``{module: {figure: value}}`` for the module figures (tx_osnr_db, power_w,
            price_usd, dsp_latency_us), and ``{module: {"modes": {mode: {figure: value}}}}``
            for the mode figures (rate_gbps, line_rate_gbps, baud_gbd, modulation, fec,
            width_ghz, required_osnr_db, cd_tolerance_ps_nm). An overridden figure's source
            becomes "user override".

        Raises
        ------
        OpticsError
            An unknown module, mode or figure (the message lists the valid ones), or a value
            the module or mode rejects.
        """
        replaced = {module.name: module for module in self.modules}
        for module_name, figures in overrides.items():
            try:
                replaced[module_name] = self._overridden(module_name, figures)
            except OverrideError:
                raise
            except OpticsError as exc:
                raise OverrideError(str(exc), (str(module_name),)) from None
        return Catalog(tuple(replaced[name] for name in self.names))

    def _overridden(self, module_name: str, figures: Any) -> Module:
        module = self.module(module_name)
        if not isinstance(figures, Mapping):
            raise OpticsError(f"override for {module_name} must be a mapping of figures")
        changes: dict[str, Any] = {}
        modes = {mode.name: mode for mode in module.modes}
        for figure, value in figures.items():
            if figure == "modes":
                if not isinstance(value, Mapping):
                    raise OpticsError(
                        f"override {module_name}.modes must map mode names to figures")
                for mode_name, mode_figures in value.items():
                    try:
                        modes[mode_name] = _override_mode(module, mode_name, mode_figures)
                    except OpticsError as exc:
                        raise OverrideError(str(exc), (module_name, "modes",
                                                       str(mode_name))) from None
            elif figure in _MODULE_FIGURES:
                changes[figure] = value
            else:
                raise OpticsError(
                    f"unknown figure {figure!r} for module {module_name}; valid figures are "
                    f"{', '.join(_MODULE_FIGURES)} (and 'modes' for {', '.join(_MODE_FIGURES)})")
        sources = dict(module.sources) | {figure: _USER for figure in changes}
        return dataclasses.replace(
            module, modes=tuple(modes.values()), sources=tuple(sources.items()), **changes)


# Bits per symbol, both polarisations, of the uniform formats a mode of one's own may use
# (the shaping of PCS-16QAM is modelled for 800ZR+ at 800G only: see optics/ber.py).
_BITS_PER_SYMBOL = {"DP-QPSK": 4, "DP-8QAM": 6, "DP-16QAM": 8}


def _override_mode(module: Module, mode_name: str, figures: Any) -> Mode:
    if not isinstance(figures, Mapping):
        raise OpticsError(
            f"override {module.name}.modes.{mode_name} must be a mapping of figures")
    unknown = [figure for figure in figures if figure not in _MODE_FIGURES]
    if unknown:
        raise OpticsError(
            f"unknown figure {unknown[0]!r} for mode {module.name} {mode_name}; valid figures are "
            f"{', '.join(_MODE_FIGURES)}")
    if mode_name not in module.mode_names:
        return _new_mode(module, mode_name, figures)
    mode = module.mode(mode_name)
    sources = dict(mode.sources) | {figure: _USER for figure in figures}
    return dataclasses.replace(mode, sources=tuple(sources.items()), **figures)


def _new_mode(module: Module, mode_name: str, figures: Mapping[str, Any]) -> Mode:
    """A mode `module` lacks, every figure given (a datasheet's, so all "user override")."""
    where = f"new mode {module.name} {mode_name}"
    missing = [figure for figure in _MODE_FIGURES if figure not in figures]
    if missing or _meant(mode_name, module.mode_names):
        try:
            module.mode(mode_name)             # its message: the modes, a name meant by case
        except OpticsError as exc:
            if not missing:
                raise
            raise OpticsError(f"{exc}; to add it as a new mode, give every figure: missing "
                              f"{', '.join(missing)}") from None
    if mode_name != f"{figures['rate_gbps']}G":
        raise OpticsError(f"{where}: a mode is named by its rate: rate_gbps "
                          f"{figures['rate_gbps']} is mode {figures['rate_gbps']}G")
    bits = _BITS_PER_SYMBOL.get(figures["modulation"])
    if bits is None:
        raise OpticsError(f"{where}: modulation {figures['modulation']}: a mode added here "
                          f"is one of {', '.join(_BITS_PER_SYMBOL)} (PCS-16QAM is modelled "
                          f"for the shaping of 800ZR+ at 800G only)")
    if figures["line_rate_gbps"] > bits * figures["baud_gbd"] + 1e-9:
        raise OpticsError(f"{where}: line_rate_gbps {figures['line_rate_gbps']:g} is more "
                          f"than {figures['modulation']} carries at {figures['baud_gbd']:g} "
                          f"GBd ({bits * figures['baud_gbd']:g} Gb/s)")
    return Mode(name=mode_name, **figures,
                sources=tuple((figure, _USER) for figure in _MODE_FIGURES))


def _sourced(**figures: tuple[Any, str]) -> dict[str, Any]:
    """Split ``figure=(value, source)`` pairs into dataclass arguments plus their sources."""
    arguments = {name: value for name, (value, _) in figures.items()}
    arguments["sources"] = tuple((name, source) for name, (_, source) in figures.items())
    return arguments


def _mode(name: str, **figures: tuple[Any, str]) -> Mode:
    return Mode(name=name, **_sourced(**figures))


def _module(name: str, modes: tuple[Mode, ...], **figures: tuple[Any, str]) -> Module:
    return Module(name=name, modes=modes, **_sourced(**figures))


# DSP/FEC latency (assumption; no public figure found). CFEC (400ZR) is a staircase code with
# a short interleaver and few decoding iterations; oFEC (OpenZR+, 800ZR, OpenROADM) is a
# block-convolutional soft-decision code with a longer decoding window and more iterations,
# which buys its ~1.5 dB extra coding gain with latency. Both sit beside a chromatic-
# dispersion equaliser whose buffer is short at DCI reach. A few µs either way.
_CFEC_LATENCY = (2.0, "assumption: CFEC Tx+Rx DSP and decoding, short staircase interleaver")
_OFEC_LATENCY = (4.0, "assumption: oFEC Tx+Rx DSP, longer soft-decision window than CFEC")
# Transmitter OSNR: GNPy gives 34 dB for ZR400G; the 800G modules reuse it.
_TX_OSNR_800 = (34.0, "assumption: GNPy's 34 dB ZR400G tx_osnr, no 800G figure published")

_400ZR = _module(
    "400ZR",
    modes=(
        _mode(
            "400G",
            rate_gbps=(400, _OIF_400ZR),
            line_rate_gbps=(478.75, _OIF_400ZR),
            baud_gbd=(59.84375, _OIF_400ZR),
            modulation=("DP-16QAM", _OIF_400ZR),
            fec=("CFEC", _OIF_400ZR + ", pre-FEC BER < 1.25e-2"),
            width_ghz=(75.0, _OIF_400ZR + ": 64 channels at 75 GHz"),
            required_osnr_db=(26.0, _OIF_400ZR),
            cd_tolerance_ps_nm=(2400.0, _OIF_400ZR),
        ),
    ),
    tx_osnr_db=(34.0, _GNPY_ZR400G),
    # The datasheet range is 15-20 W with no typical value: plan with the top of it.
    power_w=(20.0, "OIF 400ZR IA and vendor datasheets: 15-20 W, upper end taken"),
    price_usd=(3230.0, _GUOLIAN + ", 400ZR 2023"),
    dsp_latency_us=_CFEC_LATENCY,
    # Its dispersion tolerance alone would take it to 141 km of standard fibre.
    reach_km=(120.0, _OIF_400ZR + ": amplified point-to-point links of 80-120 km"),
)

_400ZR_PLUS = _module(
    "400ZR+",
    modes=(
        _mode(
            "400G",
            rate_gbps=(400, _OPENZR),
            line_rate_gbps=(481.1, _OPENZR),
            baud_gbd=(60.1385, _OPENZR + "; GNPy ZR400G"),
            modulation=("DP-16QAM", _OPENZR),
            fec=("oFEC", _OPENZR + ", pre-FEC BER 2.0e-2"),
            width_ghz=(75.0, _OPENZR + "; GNPy ZR400G min spacing 75 GHz"),
            required_osnr_db=(24.0, _OPENZR + "; GNPy ZR400G"),
            cd_tolerance_ps_nm=(20000.0, _OPENZR),
        ),
        _mode(
            "300G",
            rate_gbps=(300, _OPENZR),
            line_rate_gbps=(360.8, _OPENZR),
            baud_gbd=(60.1385, _OPENZR),
            modulation=("DP-8QAM", _OPENZR),
            fec=("oFEC", _OPENZR),
            width_ghz=(75.0, _OPENZR),
            required_osnr_db=(21.0, _OPENZR),
            cd_tolerance_ps_nm=(40000.0, _OPENZR),
        ),
        _mode(
            "200G",
            rate_gbps=(200, _OPENZR),
            line_rate_gbps=(240.6, _OPENZR),
            baud_gbd=(60.1385, _OPENZR),
            modulation=("DP-QPSK", _OPENZR),
            fec=("oFEC", _OPENZR),
            width_ghz=(75.0, _OPENZR),
            required_osnr_db=(16.0, _OPENZR),
            cd_tolerance_ps_nm=(50000.0, _OPENZR),
        ),
        _mode(
            "100G",
            rate_gbps=(100, _OPENZR),
            line_rate_gbps=(120.3, _OPENZR),
            baud_gbd=(30.069, _OPENZR),
            modulation=("DP-QPSK", _OPENZR),
            fec=("oFEC", _OPENZR),
            # 30 GBd occupies ~33-36 GHz with its roll-off; 37.5 GHz would leave no guard
            # for ROADM filter narrowing, so take the 50 GHz slot of the legacy 100G grid.
            width_ghz=(50.0, "assumption: 30 GBd plus roll-off and filter guard fits 50 GHz"),
            required_osnr_db=(12.5, _OPENZR),
            cd_tolerance_ps_nm=(100000.0, _OPENZR),
        ),
    ),
    tx_osnr_db=(34.0, _GNPY_ZR400G),
    power_w=(21.0, _OPENZR + " vendor datasheets: 21 W typical, 22.5 W max"),
    # No public price: ZR+ adds higher launch power and oFEC to the same DSP generation as
    # 400ZR, and sells at a premium; take 400ZR's $3,230 plus 25 %.
    price_usd=(4040.0, "assumption: 400ZR price $3,230 + 25 % ZR+ premium, no public figure"),
    dsp_latency_us=_OFEC_LATENCY,
)

_800ZR = _module(
    "800ZR",
    modes=(
        _mode(
            "800G",
            rate_gbps=(800, _OIF_800ZR),
            # bits x baud, FEC included, as every other mode's line rate (8 x 118.2);
            # REFERENCE.md's 845.1 Gb/s is below that, the rate before the FEC
            line_rate_gbps=(945.6, _OIF_800ZR + ": DP-16QAM at 118.2 GBd"),
            baud_gbd=(118.2, _OIF_800ZR),
            modulation=("DP-16QAM", _OIF_800ZR),
            fec=("oFEC", _OIF_800ZR),
            width_ghz=(150.0, _OIF_800ZR + ": 32 channels at 150 GHz in the C-band"),
            required_osnr_db=(27.0, _OIF_800ZR),
            cd_tolerance_ps_nm=(2400.0, _OIF_800ZR),
        ),
    ),
    tx_osnr_db=_TX_OSNR_800,
    power_w=(30.0, "assumption: ~30 W from a vendor FAQ (weak source)"),
    price_usd=(4800.0, _GUOLIAN + ", 800G ZR 2024"),
    dsp_latency_us=_OFEC_LATENCY,
    reach_km=(120.0, _OIF_800ZR + ": amplified point-to-point links of 80-120 km"),
)

_800ZR_PLUS = _module(
    "800ZR+",
    modes=(
        _mode(
            "800G",
            rate_gbps=(800, _OPENROADM),
            line_rate_gbps=(945.6, "800ZR's, at 3.60 bit per symbol and polarisation"),
            baud_gbd=(131.3, _OPENROADM),
            modulation=("PCS-16QAM", _OPENROADM),
            fec=("oFEC", _OPENROADM),
            width_ghz=(150.0, _OPENROADM),
            required_osnr_db=(25.1, _OPENROADM),
            cd_tolerance_ps_nm=(20000.0, _OPENROADM),
        ),
    ),
    tx_osnr_db=_TX_OSNR_800,
    power_w=(30.0, "assumption: ~30 W (weak source), as 800ZR"),
    # As for 400ZR+: 800ZR's $4,800 plus the same 25 % ZR+ premium.
    price_usd=(6000.0, "assumption: 800ZR price $4,800 + 25 % ZR+ premium, no public figure"),
    dsp_latency_us=_OFEC_LATENCY,
)

DEFAULT_CATALOG = Catalog((_400ZR, _400ZR_PLUS, _800ZR, _800ZR_PLUS))
MODULE_NAMES: tuple[str, ...] = DEFAULT_CATALOG.names
