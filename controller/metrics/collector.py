"""The fabric collector: what the controller knows now, read at every scrape.

Switch stats come from the controller's latest snapshot (`service.link_loads()`), so a link
that leaves the snapshot leaves the output at the next scrape: nothing is registered or
unregistered when labels change, and nothing stale lingers (client_python's "custom
collector" pattern, not faucet's gauges-for-counters).

Label scheme, the same on every link and wavelength family:

  link        the DCI link (line system) of a wavelength, e.g. ``dc1-dc2-a``; for an
              intra-site link its own name, e.g. ``dc1-leaf1~spine2``
  wavelength  the wavelength, e.g. ``dc1-dc2-a.w1``; "" on an intra-site link
  site_a      site of the sending end
  site_b      site of the receiving end
  direction   ``a-b`` when traffic leaves the link's `a` end (as the fabric file names it),
              else ``b-a``
  kind        ``fabric`` or ``dci``

(link, wavelength, direction) identifies a series. The optical families of a wavelength
(`dcilab_wavelength_*`) have no direction; there site_a and site_b are the DCI link's `a`
and `b` sites as the fabric file names them. Host access links are left out by
default: there is one per host (thousands of GPU servers in a real fabric) against tens of
fabric and DCI links, each would add a dozen series, their name is a host name, and host
NICs are better watched by node exporters. Pass ``include_host_links=True`` in a small lab.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    InfoMetricFamily)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ..fabric.model import DCI, FABRIC
from ..te.load import required_osnr_db
from ..te.reservations import Protection, State
from . import names

RESERVATION_STATES = tuple(state.value for state in State)
# src and dst: the switches at the sending and receiving end (an intra-site link's sites
# are one, so direction alone did not say which switch sends).
LINK_LABELS = ("link", "wavelength", "site_a", "site_b", "direction", "kind", "src", "dst")
WAVELENGTH_LABELS = ("link", "wavelength", "site_a", "site_b")
NETWORK_LINK_KINDS = frozenset({FABRIC, DCI})


class ServiceView(Protocol):
    """What the collector reads from the controller (controller/app/service.py)."""

    fabric: object

    def link_loads(self, kinds: frozenset[str] | None = None) -> list: ...
    def reservation_counts(self) -> dict: ...
    def switch_status(self) -> dict[str, bool]: ...
    def elephant_count(self) -> int: ...
    def held_down_count(self) -> int: ...
    def protection_counts(self) -> dict: ...
    def unprotected_count(self) -> int: ...
    def state_file_wait(self) -> float: ...
    def state_file_failing(self) -> bool: ...
    def openflow_backlog(self) -> int: ...


def _state_name(state) -> str:
    return getattr(state, "value", state)


class LinkFamily(Metric):
    """One link family, its samples made only when asked for: one per (labels, load) row,
    valued `value(load)`. The /metrics renderer (http.TextRenderer) writes its text from
    the rows instead, a series' labels rendered once for all scrapes: building thousands of
    samples was most of a large fabric's render."""

    def __init__(self, family: Metric, rows: list[tuple[tuple[str, ...], object]], value):
        super().__init__(family.name, family.documentation, family.type, family.unit)
        self._family, self.rows, self.value = family, rows, value
        self._samples = None
        self.sample_name = family.name + ("_total" if family.type == "counter" else "")

    @property
    def samples(self) -> list:
        if self._samples is None:
            for labels, load in self.rows:
                self._family.add_metric(list(labels), self.value(load))
            self._samples = self._family.samples
        return self._samples

    @samples.setter
    def samples(self, samples: list) -> None:
        self._samples = samples if samples else None


class FabricCollector(Collector):
    """Reads `service` at each scrape; keeps no state of its own but the fabric's layout."""

    def __init__(self, service: ServiceView, include_host_links: bool = False):
        self.service = service
        self.include_host_links = include_host_links
        fabric = service.fabric
        self._links = {link.name: link for link in fabric.links}

    # -- link families ------------------------------------------------------------------

    def _link_labels(self, load) -> list[str] | None:
        link = self._links.get(load.link)
        if link is None:                  # not in the file: nothing sensible to name it by
            return None
        if link.kind == "host" and not self.include_host_links:
            return None
        direction = "a-b" if load.src == link.a.node else "b-a"
        return [link.line_system or link.name, load.wavelength or "", load.site_a,
                load.site_b, direction, load.kind, load.src, load.dst]

    def _link_families(self) -> Iterable:
        capacity = GaugeMetricFamily(
            names.LINK_CAPACITY_BPS,
            "Real (unscaled) capacity of one direction of a link, bits per second.",
            labels=LINK_LABELS)
        tx = CounterMetricFamily(
            names.LINK_TRANSMIT_BYTES,
            "Bytes sent into the link by its sending end, real units (emulated / scale).",
            labels=LINK_LABELS)
        rx = CounterMetricFamily(
            names.LINK_RECEIVE_BYTES,
            "Bytes received from the link at its receiving end, real units (emulated / scale).",
            labels=LINK_LABELS)
        util = GaugeMetricFamily(
            names.LINK_UTILIZATION,
            "Measured rate over real capacity over the controller's last poll interval: 0..1, "
            "and a little over 1 at full load (the bytes between two readings over the time "
            "between their replies' arrival, which jitters by a few ms).",
            labels=LINK_LABELS)
        reserved = GaugeMetricFamily(
            names.LINK_RESERVED_BPS,
            "Bandwidth held by live reservations on this direction, bits per second.",
            labels=LINK_LABELS)
        up = GaugeMetricFamily(
            names.LINK_UP, "1 when both ends of the link are connected and their ports up.",
            labels=LINK_LABELS)
        drained = GaugeMetricFamily(
            names.LINK_DRAINED,
            "1 while the controller keeps a wavelength out of use for a mode change (rate "
            "adaptation): it may go dark meanwhile, which is no failure.", labels=LINK_LABELS)
        # Host links are half the links of a large fabric: not even snapshotted.
        rows = []
        for load in self.service.link_loads(None if self.include_host_links
                                            else NETWORK_LINK_KINDS):
            labels = self._link_labels(load)
            if labels is not None:
                rows.append((tuple(labels), load))
        # A total not read yet is left out, not 0: a restarted controller's zeros before its
        # first poll were a counter reset to Prometheus, and rate() spiked (a re-tester's
        # 1.3 Tb/s on a 400G wavelength).
        sent = [(labels, load) for labels, load in rows if load.transmit_counted]
        received = [(labels, load) for labels, load in rows if load.receive_counted]
        return (LinkFamily(capacity, rows, lambda load: load.capacity_bps),
                LinkFamily(tx, sent, lambda load: load.transmit_bytes_total),
                LinkFamily(rx, received, lambda load: load.receive_bytes_total),
                LinkFamily(util, rows, lambda load: load.utilization_ratio),
                LinkFamily(reserved, rows, lambda load: load.reserved_bps),
                LinkFamily(up, rows, lambda load: 1.0 if load.up else 0.0),
                LinkFamily(drained, rows, lambda load: 1.0 if load.drained else 0.0))

    # -- wavelength families (the optical plan) -----------------------------------------

    def _wavelength_families(self) -> Iterable:
        osnr = GaugeMetricFamily(
            names.WAVELENGTH_OSNR_DB,
            "Modeled OSNR of the wavelength: ASE and transmitter noise, no NLI (GNPy), dB (0.1 nm).",
            labels=WAVELENGTH_LABELS)
        gsnr = GaugeMetricFamily(
            names.WAVELENGTH_GSNR_DB,
            "Modeled GSNR of the wavelength: ASE, NLI and transmitter noise (GNPy), dB (0.1 nm).",
            labels=WAVELENGTH_LABELS)
        required = GaugeMetricFamily(
            names.WAVELENGTH_REQUIRED_OSNR_DB,
            "OSNR its operating mode requires, dB (0.1 nm).", labels=WAVELENGTH_LABELS)
        margin = GaugeMetricFamily(
            names.WAVELENGTH_MARGIN_DB,
            "GSNR above the mode's required OSNR, dB.", labels=WAVELENGTH_LABELS)
        freq = GaugeMetricFamily(
            names.WAVELENGTH_FREQUENCY_HZ,
            "Centre frequency of the wavelength on the ITU-T G.694.1 grid, hertz.",
            labels=WAVELENGTH_LABELS)
        mode = InfoMetricFamily(
            names.WAVELENGTH_MODE, "Transceiver module and operating mode of the wavelength.",
            labels=("link", "wavelength", "site_a", "site_b", "module", "mode", "rate_gbps"))
        # The mode each runs now (rate adaptation, or its transceivers, may have changed
        # it): the plan's GSNR against that mode's requirement.
        running = self.service.wavelength_modes()
        catalog = self.service.fabric.catalog
        for link in self._links.values():
            ch = link.channel
            if ch is None:
                continue
            name, rate = running.get(link.name, (ch.mode, ch.rate_gbps))
            needs = required_osnr_db(link, name, catalog)
            labels = [link.line_system or link.name, ch.name, link.site_a, link.site_b]
            osnr.add_metric(labels, ch.osnr_db)
            gsnr.add_metric(labels, ch.gsnr_db)
            if needs is not None:               # a mode the catalog has (it always should)
                required.add_metric(labels, needs)
                margin.add_metric(labels, ch.gsnr_db - needs)
            freq.add_metric(labels, ch.frequency_thz * 1e12)
            mode.add_metric(labels, {
                "module": ch.module, "mode": name or ch.mode, "rate_gbps": f"{rate:g}"})
        return osnr, gsnr, required, margin, freq, mode

    # -- controller state ---------------------------------------------------------------

    def _state_families(self) -> Iterable:
        reservations = GaugeMetricFamily(
            names.RESERVATIONS, "Reservations by state: live (PENDING, ACTIVE, DEGRADED), "
            "and ended ones the history still keeps (RELEASED, EXPIRED).",
            labels=("state",))
        counts = dict.fromkeys(RESERVATION_STATES, 0)
        for state, n in self.service.reservation_counts().items():
            counts[_state_name(state)] = counts.get(_state_name(state), 0) + n
        for state, n in counts.items():
            reservations.add_metric([state], n)
        # Live ones by protection class: three series, apart from the per-state history
        # (the store counts ended reservations by state only).
        protection = GaugeMetricFamily(
            names.RESERVATIONS_LIVE, "Live reservations (pending, active, degraded) "
            "by protection class.", labels=("protection",))
        live = self.service.protection_counts()
        for cls in Protection:
            protection.add_metric([cls.value], live.get(cls, 0))
        unprotected = GaugeMetricFamily(
            names.RESERVATIONS_UNPROTECTED, "PROTECTED reservations carried on their primary "
            "without a standby: a failure took it and no standby has had room since (one is "
            "sought again when a link returns or room is released).",
            value=self.service.unprotected_count())
        elephants = GaugeMetricFamily(
            names.ELEPHANT_FLOWS, "Flows currently classified as elephants.",
            value=self.service.elephant_count())
        held = GaugeMetricFamily(
            names.LINKS_HELD_DOWN, "Links back from a failure but held down (a last resort "
            "for routes, not offered to elephants or reservations) until they stay up.",
            value=self.service.held_down_count())
        connected = GaugeMetricFamily(
            names.SWITCH_CONNECTED,
            "1 when the switch of the fabric file is connected over OpenFlow.",
            labels=("switch",))
        status = dict.fromkeys(self.service.fabric.switches, False)
        status.update(self.service.switch_status())
        for switch, ok in status.items():
            connected.add_metric([switch], 1.0 if ok else 0.0)
        wiring = GaugeMetricFamily(
            names.SWITCH_WIRING_PROBLEMS,
            "What of the switch does not match the fabric file: ports it lacks or has beyond "
            "the file (while connected), and cables at its ports leading elsewhere than the "
            "file says (out of service until right). `dcilab switches` names each.",
            labels=("switch",))
        problems = self.service.wiring_problems()
        for switch in status:
            wiring.add_metric([switch], float(len(problems.get(switch, ()))))
        scale = GaugeMetricFamily(
            names.EMULATION_SCALE,
            "Emulated bit rate over real bit rate (the fabric file's `scale`).",
            value=self.service.fabric.scale)
        waiting = GaugeMetricFamily(
            names.STATE_FILE_WAIT,
            "How long the oldest change not yet sent, or read of the state file, has waited "
            "for the disk: 0 but for a moment. Reservations and every switch message behind "
            "a commit (failures' re-routes too) wait for it; a hung disk stops them all.",
            value=self.service.state_file_wait())
        failing = GaugeMetricFamily(
            names.STATE_FILE_FAILING,
            "1 while the last commit of the state file failed (a full or read-only disk, "
            "the file removed): reservations, releases and expiries are not saved until "
            "one succeeds; 0 once one does.",
            value=1.0 if self.service.state_file_failing() else 0.0)
        backlog = GaugeMetricFamily(
            names.OPENFLOW_EVENTS_QUEUED,
            "OpenFlow events (switch replies, port changes, packets in) waiting for the "
            "controller's app; its queue holds 128: full for long, the controller has "
            "stopped handling its switches, however connected they still show.",
            value=self.service.openflow_backlog())
        return (reservations, protection, unprotected, elephants, held, connected, wiring,
                scale, waiting, failing, backlog)

    def collect(self):
        yield from self._link_families()
        yield from self._wavelength_families()
        yield from self._state_families()

    def describe(self):
        # Names only, so registering does not call the service (it may not be ready yet).
        return []
