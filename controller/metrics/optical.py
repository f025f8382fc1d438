"""Optical telemetry of the wavelengths, as the gNMI adapter last received it.

A custom collector over the gNMI client's latest readings (no state of its own): a
wavelength whose transceivers stop reporting leaves the output. Each wavelength has two
receivers, one per end; the series give the worse of the two (lower GSNR and Q, higher
BER), since that end decides whether the wavelength carries traffic. Labels are the other
`dcilab_wavelength_*` families' (link, wavelength, site_a, site_b).

`dcilab_wavelength_gsnr_db` is the optical plan's (modelled, FabricCollector); what the
transceivers report is `dcilab_wavelength_reported_gsnr_db`, in the same unit (per 0.1 nm:
a receiver's OSNR estimate counts nonlinear interference as noise, so it is the GSNR).
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from . import names as n
from .collector import WAVELENGTH_LABELS


class OpticalView(Protocol):
    """What the collector reads from the gNMI client (controller/gnmi/client.py)."""

    def readings(self) -> dict: ...
    def mode_changes(self) -> dict[str, int]: ...
    def mode_name(self, mode_id: int | None) -> tuple[str, str] | None: ...


class OpticalCollector(Collector):
    def __init__(self, optical: OpticalView, fabric):
        self.optical = optical
        self.catalog = fabric.catalog
        self._labels = {link.wavelength: [link.line_system or link.name, link.wavelength,
                                          link.site_a, link.site_b]
                        for link in fabric.wavelengths()}

    def collect(self):
        gsnr = GaugeMetricFamily(
            n.WAVELENGTH_REPORTED_GSNR_DB,
            "GSNR the wavelength's receivers report over gNMI (their OSNR), dB (0.1 nm), "
            "worse end.", labels=WAVELENGTH_LABELS)
        ber = GaugeMetricFamily(
            n.WAVELENGTH_PREFEC_BER,
            "Pre-FEC bit error ratio reported by the wavelength's receivers (worse end).",
            labels=WAVELENGTH_LABELS)
        q = GaugeMetricFamily(
            n.WAVELENGTH_Q_FACTOR_DB,
            "Q-factor reported by the wavelength's receivers, dB (worse end).",
            labels=WAVELENGTH_LABELS)
        changes = CounterMetricFamily(
            n.WAVELENGTH_MODE_CHANGES,
            "Changes of the wavelength's operational mode seen over gNMI (both ends agreed), "
            "counted as the transceivers take it: its capacity and dcilab_wavelength_mode_info "
            "follow once it is back in use.",
            labels=WAVELENGTH_LABELS)
        margin = GaugeMetricFamily(
            n.WAVELENGTH_REPORTED_MARGIN_DB,
            "Reported OSNR above the required OSNR of the mode the transceivers run, dB "
            "(worse end); the FEC threshold is at 0 dB. Rate adaptation steps down below its "
            "threshold (1 dB by default).", labels=WAVELENGTH_LABELS)
        rate = GaugeMetricFamily(
            n.WAVELENGTH_REPORTED_RATE_BPS,
            "Client rate of the operational mode both ends of the wavelength report, bits/s "
            "(absent while they disagree, during a mode change, and while either end's link "
            "is down: a cut or dark wavelength carries nothing).", labels=WAVELENGTH_LABELS)
        ends: dict[str, list] = {}
        for (wavelength, _gateway), reading in self.optical.readings().items():
            ends.setdefault(wavelength, []).append(reading)
        for wavelength, readings in ends.items():
            labels = self._labels.get(wavelength)
            if labels is None:               # not in the fabric file: nothing to name it by
                continue
            gsnrs = [r.osnr_db for r in readings if r.osnr_db is not None]
            if gsnrs:
                gsnr.add_metric(labels, min(gsnrs))
            bers = [r.prefec_ber for r in readings if r.prefec_ber is not None]
            if bers:
                ber.add_metric(labels, max(bers))
            qs = [r.q_db for r in readings if r.q_db is not None]
            if qs:
                q.add_metric(labels, min(qs))
            margins = [m for m in map(self._margin, readings) if m is not None]
            if margins:
                margin.add_metric(labels, min(margins))
            modes = {self.optical.mode_name(r.mode_id) for r in readings}
            up = all(r.link_up is not False for r in readings)     # None: not heard yet
            if up and len(readings) >= 2 and len(modes) == 1 and None not in modes:
                (module, mode), = modes
                if module in self.catalog and mode in self.catalog.module(module).mode_names:
                    rate.add_metric(labels, self.catalog.module(module).mode(mode).rate_gbps * 1e9)
        counts = self.optical.mode_changes()
        for wavelength, labels in self._labels.items():
            changes.add_metric(labels, counts.get(wavelength, 0))
        return [gsnr, ber, q, margin, rate, changes]

    def margins(self) -> dict[str, float]:
        """Wavelength -> its reported margin in the mode it runs, the worse end (dB)."""
        worst: dict[str, float] = {}
        for (wavelength, _gateway), reading in self.optical.readings().items():
            margin = self._margin(reading)
            if margin is not None and wavelength in self._labels:
                worst[wavelength] = min(margin, worst.get(wavelength, margin))
        return worst

    def _margin(self, reading) -> float | None:
        named = self.optical.mode_name(reading.mode_id)
        if named is None or reading.osnr_db is None or named[0] not in self.catalog:
            return None
        module = self.catalog.module(named[0])
        if named[1] not in module.mode_names:
            return None
        return reading.osnr_db - module.mode(named[1]).required_osnr_db

    def describe(self):
        return []
