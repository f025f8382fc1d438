"""The one place GNPy is called: build a point-to-point line, design it, propagate a spectrum.

GNPy (Telecom Infra Project, BSD-3) is imported here and only when a QoT is first computed,
because importing it takes about 2 s. Its traps, measured (REFERENCE.md), and how each is
avoided:

- the equipment library is read from a JSON file with `load_equipment` (our packaged
  `gnpy_equipment.json`), the public route;
- its SI entry has no `tx_power_dbm`, which would override the launch power asked for;
- auto-design is pinned: `delta_power_range_db` [0, 0, 0.5], `padding` 0, connector losses
  0, and every amplifier has `delta_p` 0, so each span is launched at exactly the launch
  power and each amplifier's gain is exactly the loss of the span before it;
- `SimParams` is process-global and propagation writes onto the network's elements, so a
  fresh network is built for every computation and the whole computation holds `_LOCK`,
  with the simulation parameters set explicitly (GN model, analytic, no Raman/SRS);
- roll-off is chosen so that baud × (1 + roll-off) fits the slot (GNPy enforces it);
- GNPy's `snr` is in the signal bandwidth (the baud rate) and `snr_01nm` in 12.5 GHz
  (0.1 nm at 1550 nm); the two differ by 10·log10(baud / 12.5 GHz). Both are returned.

The line: transmitter → (fibre span → EDFA) × N → receiver. The first span is launched by
the transmitter side (a booster is implied, not modelled), and the transmitter's own noise
(`tx_osnr`, per 0.1 nm) is added at the receiver, as GNPy's `propagate` does.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

EQUIPMENT_FILE = "gnpy_equipment.json"
AMPLIFIER_TYPE = "dcilab-edfa"
FIBER_TYPE = "SSMF"
REFERENCE_BANDWIDTH_HZ = 12.5e9   # 0.1 nm at 1550 nm, the OSNR convention
# The GN model's fibre nonlinearity: γ follows from GNPy's SSMF effective area (83 µm²).
_SIM_PARAMS = {"nli_params": {"method": "gn_model_analytic"}, "raman_params": {"flag": False}}

# GNPy and its network objects are shared state: one computation at a time.
_LOCK = threading.Lock()
_loaded: dict[str, object] = {}


@dataclass(frozen=True)
class Line:
    """What GNPy needs of a line: its spans, amplifiers, fibre and launch power.

    `span_extra_loss_db` and `amplifier_nf_db` hold one value per span / amplifier.
    """

    span_km: tuple[float, ...]
    span_extra_loss_db: tuple[float, ...]
    amplifier_nf_db: tuple[float, ...]
    attenuation_db_per_km: float
    dispersion_ps_nm_km: float


@dataclass(frozen=True)
class Carriers:
    """The lit spectrum: one entry per wavelength, all of one mode."""

    frequency_thz: tuple[float, ...]
    baud_gbd: float
    slot_ghz: float
    roll_off: float
    tx_osnr_db: float


@dataclass(frozen=True)
class Propagated:
    """GNPy's figures at the receiver, per carrier, in dB.

    `*_01nm` are per 0.1 nm (12.5 GHz); the others in the signal bandwidth. `gsnr*` include
    ASE, NLI and the transmitter's noise; `osnr_ase*` ASE and the transmitter's noise.
    `snr_ase_line` and `snr_nli_line` are the line's own ASE and NLI, signal bandwidth,
    without the transmitter: what launch-power scaling needs.
    """

    gsnr_01nm: tuple[float, ...]
    osnr_ase_01nm: tuple[float, ...]
    gsnr: tuple[float, ...]
    snr_ase_line: tuple[float, ...]
    snr_nli_line: tuple[float, ...]


def _gnpy():
    """Import GNPy and load the equipment library, once."""
    if not _loaded:
        # GNPy logs design choices at INFO/WARNING; the figures are what matter here.
        logging.getLogger("gnpy").setLevel(logging.ERROR)
        from gnpy.core.info import create_arbitrary_spectral_information
        from gnpy.core.network import design_network
        from gnpy.core.parameters import SimParams, TransceiverRole
        from gnpy.core.utils import dbm2watt
        from gnpy.tools.json_io import Model_fg, load_equipment, network_from_json
        from gnpy.topology.request import PathRequest

        with resources.as_file(resources.files(__package__) / EQUIPMENT_FILE) as path:
            equipment = load_equipment(path)
        _loaded.update(
            equipment=equipment, spectrum=create_arbitrary_spectral_information,
            design=design_network, sim_params=SimParams, role=TransceiverRole,
            dbm2watt=dbm2watt, nf_model=Model_fg, network=network_from_json,
            request=PathRequest)
    return _loaded


def preload() -> None:
    """Import GNPy and read the equipment library now rather than at the first QoT."""
    _gnpy()


# Where propagations may run instead of here: a helper process that imported GNPy beside a
# command's own work (dcilab.qot_helper). It answers None when it cannot.
delegate: Callable[[Line, Carriers, float], Propagated | None] | None = None


def _network_json(line: Line, nf_model) -> dict:
    elements: list[dict] = [{"uid": "tx", "type": "Transceiver"}]
    connections = []
    previous = "tx"
    dispersion_s_m2 = line.dispersion_ps_nm_km * 1e-6   # ps/(nm·km) → s/m²
    for k, (km, extra, nf) in enumerate(
            zip(line.span_km, line.span_extra_loss_db, line.amplifier_nf_db), start=1):
        elements.append({
            "uid": f"span{k}", "type": "Fiber", "type_variety": FIBER_TYPE,
            "params": {"length": km, "length_units": "km",
                       "loss_coef": line.attenuation_db_per_km, "dispersion": dispersion_s_m2,
                       "att_in": extra, "con_in": 0.0, "con_out": 0.0}})
        elements.append({
            "uid": f"amp{k}", "type": "Edfa", "type_variety": AMPLIFIER_TYPE,
            "params": {"nf_model": nf_model(nf)},
            "operational": {"delta_p": 0.0, "tilt_target": 0.0, "out_voa": 0.0}})
        connections += [{"from_node": previous, "to_node": f"span{k}"},
                        {"from_node": f"span{k}", "to_node": f"amp{k}"}]
        previous = f"amp{k}"
    elements.append({"uid": "rx", "type": "Transceiver"})
    connections.append({"from_node": previous, "to_node": "rx"})
    return {"elements": elements, "connections": connections}


def propagate(line: Line, carriers: Carriers, launch_power_dbm: float) -> Propagated:
    """Build, design and propagate one line with GNPy; figures at the receiver."""
    if delegate is not None:
        done = delegate(line, carriers, launch_power_dbm)
        if done is not None:
            return done
    import numpy as np                     # GNPy's own dependency, loaded with it
    # A line beyond physics (100 dB/km, a 1000 dB noise figure) overflows in numpy: the
    # caller says so from the non-finite result, without numpy's warnings on stderr.
    with _LOCK, warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        g = _gnpy()
        g["sim_params"].set_params(_SIM_PARAMS)
        equipment = g["equipment"]
        network = g["network"](_network_json(line, g["nf_model"]), equipment)
        power_w = g["dbm2watt"](launch_power_dbm)
        spacing_hz = carriers.slot_ghz * 1e9
        # GNPy sorts carriers by frequency and answers in that order; ours may not be
        # sorted (C first, then L at lower frequencies): hand them sorted, answer in ours.
        order = sorted(range(len(carriers.frequency_thz)),
                       key=lambda i: carriers.frequency_thz[i])
        frequency_hz = [carriers.frequency_thz[i] * 1e12 for i in order]
        reference = g["request"](
            request_id="dcilab", trx_type="", trx_mode="", source="tx", destination="rx",
            bidir=False, nodes_list=["rx"], loose_list=["STRICT"], format="",
            path_bandwidth=0, effective_freq_slot=None, nb_channel=len(frequency_hz),
            power=power_w, tx_power=power_w, baud_rate=carriers.baud_gbd * 1e9,
            spacing=spacing_hz, f_min=min(frequency_hz), f_max=max(frequency_hz),
            roll_off=carriers.roll_off, tx_osnr=carriers.tx_osnr_db, OSNR=None,
            bit_rate=None, penalties={}, min_spacing=spacing_hz, cost=0)
        g["design"](reference, network, equipment, set_connector_losses=False, verbose=False)
        nodes = {node.uid: node for node in network.nodes()}
        path = [nodes["tx"]]
        for k in range(1, len(line.span_km) + 1):
            path += [nodes[f"span{k}"], nodes[f"amp{k}"]]
        path.append(nodes["rx"])
        spectrum = g["spectrum"](
            frequency_hz, pch=power_w, baud_rate=carriers.baud_gbd * 1e9,
            tx_osnr=carriers.tx_osnr_db, tx_power=power_w, slot_width=spacing_hz,
            roll_off=carriers.roll_off)
        # The steps of gnpy.topology.request.propagate, on a spectrum of our own carriers
        # (first-fit centres, possibly in two bands), which a PathRequest cannot describe.
        spectrum = path[0](spectrum, role=g["role"].EMITTER)
        for element in path[1:-1]:
            spectrum = element(spectrum)
        receiver = path[-1]
        receiver(spectrum, role=g["role"].RECEIVER)
        receiver.update_snr(spectrum.tx_osnr)
        def ours(values) -> tuple[float, ...]:
            out = [0.0] * len(order)
            for value, i in zip(values, order, strict=True):
                out[i] = float(value)
            return tuple(out)
        return Propagated(
            gsnr_01nm=ours(receiver.snr_01nm), osnr_ase_01nm=ours(receiver.osnr_ase_01nm),
            gsnr=ours(receiver.snr), snr_ase_line=ours(receiver.raw_osnr_ase),
            snr_nli_line=ours(receiver.raw_osnr_nli))
