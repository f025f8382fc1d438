"""GNPy run the way its own examples run it, written here independently of dcilab.optics.

The test's own equipment file (written to a temporary directory, loaded with
`load_equipment`), a network given as GNPy JSON with one amplifier type per noise figure,
a `PathRequest` describing a uniform spectrum from the first channel's centre, GNPy's
`design_network`, `compute_constrained_path` and `propagate` (what
`gnpy.tools.worker_utils.transmission_simulation` calls). Nothing is imported from
dcilab, so a wiring mistake in dcilab.optics (a padded span, a power offset, the SI
transmit power overriding the launch power, a wrong bandwidth conversion) shows up as a
difference.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Reference:
    gsnr_01nm: list[float]       # per channel, ASE + NLI + transmitter, per 0.1 nm
    osnr_ase_01nm: list[float]
    gsnr_signal: list[float]     # in the signal bandwidth


def _equipment(nf_db: float, dispersion_ps_nm_km: float, first_thz: float, last_thz: float,
               baud_gbd: float, slot_ghz: float, roll_off: float, tx_osnr_db: float) -> dict:
    return {
        "Edfa": [{"type_variety": "ref-amp", "type_def": "fixed_gain", "nf0": nf_db,
                  "gain_min": 0, "gain_flatmax": 40, "p_max": 40,
                  "f_min": 186.0e12, "f_max": 196.2e12,
                  "out_voa_auto": False, "allowed_for_design": False}],
        # SSMF as in GNPy's eqpt_config.json except for the dispersion asked for.
        "Fiber": [{"type_variety": "ref-fibre", "dispersion": dispersion_ps_nm_km * 1e-6,
                   "effective_area": 83e-12, "pmd_coef": 0}],
        "Span": [{"power_mode": True, "delta_power_range_db": [0, 0, 0.5],
                  "max_fiber_lineic_loss_for_raman": 0.25, "target_extended_gain": 0,
                  "max_length": 150, "length_units": "km", "max_loss": 28, "padding": 0,
                  "EOL": 0, "con_in": 0, "con_out": 0}],
        "Roadm": [{"type_variety": "default", "target_pch_out_db": -20, "add_drop_osnr": 100,
                   "pmd": 0, "pdl": 0,
                   "restrictions": {"preamp_variety_list": [], "booster_variety_list": []}}],
        "SI": [{"f_min": first_thz * 1e12, "f_max": last_thz * 1e12, "baud_rate": baud_gbd * 1e9,
                "spacing": slot_ghz * 1e9, "power_dbm": 0, "power_range_db": [0, 0, 1],
                "roll_off": roll_off, "tx_osnr": tx_osnr_db, "sys_margins": 0}],
        "Transceiver": [{"type_variety": "ref-trx",
                         "frequency": {"min": 186.0e12, "max": 196.2e12},
                         "mode": [{"format": "ref", "baud_rate": baud_gbd * 1e9, "OSNR": 10,
                                   "bit_rate": 100e9, "roll_off": roll_off,
                                   "tx_osnr": tx_osnr_db, "min_spacing": slot_ghz * 1e9,
                                   "cost": 1}]}],
    }


def gnpy_reference(*, fiber_km: float, span_km: float, channels: int, baud_gbd: float,
                   slot_ghz: float, launch_dbm: float, roll_off: float = 0.15,
                   tx_osnr_db: float = 34.0, nf_db: float = 5.5,
                   attenuation_db_per_km: float = 0.22, dispersion_ps_nm_km: float = 17.0,
                   first_thz: float | None = None) -> Reference:
    """GNPy's figures for `channels` uniform channels from the low C-band edge.

    Spans: N = ceil(fiber_km / span_km) equal ones, each followed by an amplifier.
    """
    from gnpy.core.network import design_network
    from gnpy.core.parameters import SimParams
    from gnpy.core.utils import dbm2watt
    from gnpy.tools.json_io import load_equipment, network_from_json
    from gnpy.topology.request import PathRequest, compute_constrained_path, propagate

    spans = max(1, math.ceil(fiber_km / span_km - 1e-9))
    length = fiber_km / spans
    if first_thz is None:
        first_thz = 191.3 + slot_ghz / 2000       # the slot's low edge on 191.3 THz
    last_thz = first_thz + (channels - 1) * slot_ghz / 1000
    with _LOCK, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eqpt.json"
        path.write_text(json.dumps(_equipment(nf_db, dispersion_ps_nm_km, first_thz, last_thz,
                                              baud_gbd, slot_ghz, roll_off, tx_osnr_db)))
        equipment = load_equipment(path)
        SimParams.set_params({"nli_params": {"method": "gn_model_analytic"},
                              "raman_params": {"flag": False}})
        elements = [{"uid": "site-a", "type": "Transceiver"}]
        connections = []
        previous = "site-a"
        for k in range(1, spans + 1):
            elements += [
                {"uid": f"fibre-{k}", "type": "Fiber", "type_variety": "ref-fibre",
                 "params": {"length": length, "length_units": "km",
                            "loss_coef": attenuation_db_per_km, "con_in": 0, "con_out": 0}},
                {"uid": f"edfa-{k}", "type": "Edfa", "type_variety": "ref-amp",
                 "operational": {"delta_p": 0, "tilt_target": 0, "out_voa": 0}},
            ]
            connections += [{"from_node": previous, "to_node": f"fibre-{k}"},
                            {"from_node": f"fibre-{k}", "to_node": f"edfa-{k}"}]
            previous = f"edfa-{k}"
        elements.append({"uid": "site-b", "type": "Transceiver"})
        connections.append({"from_node": previous, "to_node": "site-b"})
        network = network_from_json({"elements": elements, "connections": connections},
                                    equipment)
        power = dbm2watt(launch_dbm)
        request = PathRequest(
            request_id="ref", trx_type="ref-trx", trx_mode="ref", source="site-a",
            destination="site-b", bidir=False, nodes_list=["site-b"], loose_list=["STRICT"],
            format="ref", path_bandwidth=0, effective_freq_slot=None, nb_channel=channels,
            power=power, tx_power=power, baud_rate=baud_gbd * 1e9, spacing=slot_ghz * 1e9,
            f_min=first_thz * 1e12, f_max=last_thz * 1e12, roll_off=roll_off,
            tx_osnr=tx_osnr_db, OSNR=10, bit_rate=100e9, penalties={},
            min_spacing=slot_ghz * 1e9, cost=1, equalization_offset_db=0)
        design_network(request, network, equipment, set_connector_losses=True, verbose=False)
        route = compute_constrained_path(network, request)
        propagate(route, request, equipment)
        receiver = route[-1]
        assert len(receiver.snr_01nm) == channels
        return Reference(gsnr_01nm=[float(x) for x in receiver.snr_01nm],
                         osnr_ase_01nm=[float(x) for x in receiver.osnr_ase_01nm],
                         gsnr_signal=[float(x) for x in receiver.snr])
