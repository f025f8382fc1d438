"""The Grafana dashboards, as code (grafana-foundation-sdk), from the metric names in names.py.

    .venv/bin/python -m dcilab.metrics.dashboards            # rewrite deploy/grafana/dashboards
    .venv/bin/python -m dcilab.metrics.dashboards --check    # exit 1 if the JSON is stale

Adding a panel is one line in a dashboard's `panels`, e.g. for a new gauge in names.py:

    timeseries("Pre-FEC BER", "sci", Q(f"{n.WAVELENGTH_PREFEC_BER}{{link=~\"$link\"}}", "{{wavelength}}")),

then regenerate. Panels flow left to right in rows of 24 columns (`w`, default 12). Every
panel query is evaluated on a real Prometheus by tests/integration/test_prometheus.py, and
tests/unit/metrics checks that each names only exported metrics and labels.
The output depends on the SDK's version (pinned in pyproject.toml): regenerate after
upgrading it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import names as n
from ..resources import deploy_dir

DATASOURCE_UID = "dcilab-prometheus"        # deploy/grafana/provisioning/datasources
TAG = "dcilab"
LINK = '{link=~"$link"}'                    # the dashboards' DCI link variable
DCI = '{kind="dci", link=~"$link"}'
PAIR = "{{site_a}}→{{site_b}}"
WAVE = "{{wavelength}} " + PAIR
LOAD_STEPS = (("green", None), ("yellow", 0.7), ("red", 0.9))
MARGIN_STEPS = (("red", None), ("yellow", 1), ("green", 2))
UP_STEPS = (("red", None), ("green", 1))
ZERO_IS_GOOD = (("green", None), ("red", 1))


# Every dashboard shows one controller, chosen by its `instance` variable: one Prometheus
# may scrape several (fabrics), and a panel summed or listed them all together (an SRE
# tester's). Every series a query selects is scoped to it when the JSON is built: by
# equality, the variable being single-valued (as a regex, unescaped, an IPv6 address,
# `[::1]:9108`, matched nothing, and three stats read a reassuring 0).
INSTANCE = 'instance="$instance"'


def _series_names() -> frozenset[str]:
    """The series dashboards can select: names.py's, with the suffixes Prometheus gives
    counters, histograms and info metrics; the recording rules'; Prometheus' own."""
    base = [v for k, v in vars(n).items() if k.isupper() and isinstance(v, str)
            and (v.startswith("dcilab_") or ":" in v)]
    return frozenset([f"{name}{suffix}" for name in base
                      for suffix in ("", "_total", "_bucket", "_count", "_sum", "_info")]
                     + ["up", "ALERTS", "scrape_duration_seconds", "scrape_samples_scraped"])


_SELECTOR = re.compile(r"(?<![\w:\"])(%s)(?![\w:])(\{\s*\}?)?" % "|".join(
    sorted(map(re.escape, _series_names()), key=len, reverse=True)))


def scoped(expr: str) -> str:
    """`expr` with the chosen controller's matcher in each of its series selectors."""
    def one(m: re.Match) -> str:
        braces = m.group(2) or ""
        if braces.rstrip().endswith("}"):           # `{}` or nothing: a selector of its own
            return f"{m.group(1)}{{{INSTANCE}}}"
        if braces:                                   # `{a="b"...`: first in the matchers
            return f"{m.group(1)}{{{INSTANCE}, "
        return f"{m.group(1)}{{{INSTANCE}}}"
    return _SELECTOR.sub(one, expr)


@dataclass(frozen=True)
class Q:
    """One PromQL query of a panel and its legend."""
    expr: str
    legend: str = ""
    table: bool = False           # a table's query: instant, format table


@dataclass(frozen=True)
class Panel:
    kind: str                     # timeseries | stat | bargauge | table | state-timeline
    title: str
    unit: str | None
    queries: tuple[Q, ...]
    w: int = 12
    h: int = 8
    description: str = ""
    min: float | None = None
    max: float | None = None
    decimals: int | None = None   # else Grafana picks them from the size (191 THz: none)
    steps: tuple = ()             # thresholds: (colour, from value), the first from None
    mappings: dict = field(default_factory=dict)   # value -> (text, colour or None)
    options: dict = field(default_factory=dict)    # per kind, see _panel()


def timeseries(title, unit, *queries, **kw) -> Panel:
    return Panel("timeseries", title, unit, queries, **kw)


def stat(title, unit, *queries, **kw) -> Panel:
    return Panel("stat", title, unit, queries, **kw)


def bargauge(title, unit, *queries, **kw) -> Panel:
    return Panel("bargauge", title, unit, queries, **kw)


def ratio(**kw) -> dict:
    """A 0..1 panel coloured by load."""
    return {"min": 0, "max": 1, "steps": LOAD_STEPS} | kw


@dataclass(frozen=True)
class Dashboard:
    uid: str
    file: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    link_variable: bool = False


def quantiles(histogram: str) -> tuple[Q, Q]:
    """p50 and p99 over the 5 minutes before each point: events are rare (a restoration,
    a reservation now and then), and over the rate interval (20 s) the panel was empty
    but for a blip after each (an SRE tester's)."""
    def q(p):
        return (f"histogram_quantile({p}, sum by (le) "
                f"(rate({n.bucket(histogram)}[5m])))")
    return Q(q(0.5), "p50 (5 min)"), Q(q(0.99), "p99 (5 min)")


def per_minute(counter: str, by: str = "") -> str:
    """Events a minute: an increase over the rate interval changes with the zoom, and
    reads 3.1 for 3 events (extrapolated)."""
    grouping = f" by ({by})" if by else ""
    return f"60 * sum{grouping} (rate({n.total(counter)}[$__rate_interval]))"


DASHBOARDS = (
    Dashboard("dcilab-dci", "dcilab-dci-overview", "dcilab / DCI overview",
              "Load on every wavelength of every DCI link, in real (unscaled) units, and what "
              "is reserved on it.", link_variable=True, panels=(
        timeseries("Utilization per wavelength", "percentunit", Q(n.LINK_UTILIZATION + DCI, WAVE), w=16, h=9,
                   description="Measured rate over real capacity, per wavelength and direction, "
                               "from the controller's last poll.", **ratio()),
        bargauge("Utilization now", "percentunit", Q(n.LINK_UTILIZATION + DCI, WAVE), w=8, h=9,
                 description="The same, as bars: a wavelength in red is above 90 %.",
                 **ratio(options={"display": "gradient", "unfilled": True})),
        timeseries("Reserved against used, per wavelength", "bps",
                   Q(n.LINK_RESERVED_BPS + DCI, WAVE + " reserved"),
                   Q(f"8 * rate({n.total(n.LINK_TRANSMIT_BYTES)}{DCI}[$__rate_interval])", WAVE + " used"), h=9,
                   description="Bandwidth held by live reservations, and bits actually sent "
                               "(from the byte counters), per direction."),
        timeseries("Site pairs: capacity, reserved, used", "bps", Q(n.SITE_PAIR_CAPACITY, PAIR + " capacity"),
                   Q(n.SITE_PAIR_RESERVED, PAIR + " reserved"), Q(n.SITE_PAIR_TRANSMIT, PAIR + " used"), h=9,
                   description="Recording rules of deploy/prometheus/rules.yml, summed over every "
                               "wavelength between two sites."),
        timeseries("Site pair DCI utilization", "percentunit", Q(n.SITE_PAIR_UTILIZATION, PAIR + " used"),
                   Q(n.SITE_PAIR_RESERVED_RATIO, PAIR + " reserved"),
                   description="Share of all DCI capacity between two sites that is used and "
                               "reserved.", **ratio()),
        stat("Wavelengths up", "percentunit",
             Q(f"sum by (link) ({n.LINK_UP}{DCI}) / count by (link) ({n.LINK_UP}{DCI})", "{{link}}"), w=4,
             description="Share of wavelength directions whose both gateway ports are up.",
             min=0, max=1, steps=(("red", None), ("green", 0.99)), options={"background": True}),
        bargauge("Busiest intra-site links", "percentunit",
                 Q(f'topk(5, {n.LINK_KIND_MAX_UTILIZATION}{{kind="fabric"}})', "{{link}}"), w=8,
                 description="Highest utilization of any direction, per leaf-spine or "
                             "gateway-spine link.", **ratio(options={"display": "gradient"})),
    )),
    Dashboard("dcilab-optics", "dcilab-optics", "dcilab / Optics",
              "The optical plan of every wavelength: OSNR against its mode's requirement, "
              "margin, mode and grid frequency.", link_variable=True, panels=(
        bargauge("Margin per wavelength", "dB", Q(n.WAVELENGTH_MARGIN_NOW + LINK, "{{wavelength}}"), h=9,
                 description="GSNR above the OSNR the running mode requires: reported by the "
                             "receivers with --gnmi, else the plan's. Under 1 dB raises "
                             "DcilabWavelengthMarginLow. A wavelength down has no margin and "
                             "no bar: 'Wavelengths down' counts those.", min=-3,
                 steps=MARGIN_STEPS),
        timeseries("GSNR against requirement", "dB", Q(n.WAVELENGTH_GSNR_DB + LINK, "{{wavelength}} GSNR"),
                   Q(n.WAVELENGTH_REQUIRED_OSNR_DB + LINK, "{{wavelength}} required"), h=9,
                   description="Modelled GSNR (0.1 nm: amplifier noise and fibre nonlinearity, "
                               "what the margin is taken from) and the requirement of the "
                               "chosen mode."),
        Panel("table", "Mode and frequency per wavelength", None,
              (Q(n.info(n.WAVELENGTH_MODE) + LINK, table=True),
               Q(f"{n.WAVELENGTH_FREQUENCY_HZ}{LINK} / 1000000000000", table=True)), w=24, h=10,
              decimals=4,                    # channels 75 GHz apart: 191.3375, 191.4125
              description="Module, operating mode, line rate and ITU-T G.694.1 centre "
                          "frequency of every wavelength.",
              options={"columns": ("link", "wavelength", "module", "mode", "rate_gbps", "Value #B"),
                       "hide": ("Time", "Value #A", "__name__", "job", "instance", "site_a",
                                "site_b"),
                       "rename": {"Value #B": "frequency THz", "rate_gbps": "Gb/s"}}),
        stat("Lowest margin", "dB", Q(f"min({n.WAVELENGTH_MARGIN_NOW}{LINK})", "lowest margin"), w=6, h=5,
             description="The weakest wavelength that is up: its margin as the receivers "
                         "report it in the mode they run (with --gnmi), else as modelled. "
                         "Under 1 dB raises DcilabWavelengthMarginLow. Wavelengths down are "
                         "not in it: see 'Wavelengths down'.", steps=MARGIN_STEPS,
             options={"background": True}),
        # An SRE saw "Lowest margin 5.21 dB" in green with two of four wavelengths cut or
        # dark: a down wavelength has no margin, so it left the margin panels silently.
        stat("Wavelengths down", None,
             Q(f"sum by (link) (1 - min by (link, wavelength) ({n.LINK_UP}{DCI}))", "{{link}}"),
             w=6, h=5,
             description="Wavelengths with either direction down (cut, transceiver dark, "
                         "changing mode), per DCI link: they have no margin above.",
             steps=ZERO_IS_GOOD, options={"background": True}),
        stat("Wavelengths planned", None,
             Q(f"count by (link) ({n.WAVELENGTH_FREQUENCY_HZ}{LINK})", "{{link}}"), w=6, h=5,
             description="Wavelengths the optical plan lights per DCI link, up or not (the DCI "
                         "overview's 'Wavelengths up' says how many are)."),
        timeseries("Reported GSNR (gNMI)", "dB", Q(n.WAVELENGTH_REPORTED_GSNR_DB + LINK, "{{wavelength}} reported"),
                   Q(n.WAVELENGTH_GSNR_DB + LINK, "{{wavelength}} planned"), h=9,
                   description="What the receivers report over gNMI (worse end, 0.1 nm), against "
                               "the plan's GSNR from GNPy. Needs `dcilab controller --gnmi`."),
        timeseries("Reported margin in the running mode (gNMI)", "dB",
                   Q(n.WAVELENGTH_REPORTED_MARGIN_DB + LINK, "{{wavelength}}"), h=9, steps=MARGIN_STEPS,
                   description="Reported OSNR above the required OSNR of the mode the transceivers "
                               "run; the FEC threshold is at 0 dB. Rate adaptation (--adapt) steps "
                               "down below 1 dB; falling under 2 dB raises "
                               "DcilabWavelengthMarginFalling."),
        timeseries("Pre-FEC BER (gNMI)", "sci", Q(n.WAVELENGTH_PREFEC_BER + LINK, "{{wavelength}}"), w=8,
                   description="Pre-FEC bit error ratio the receivers report (worse end); errors "
                               "get through the FEC once it passes the mode's threshold."),
        timeseries("Q factor (gNMI)", "dB", Q(n.WAVELENGTH_Q_FACTOR_DB + LINK, "{{wavelength}}"), w=8,
                   description="Q factor the receivers report (worse end), from the pre-FEC BER."),
        timeseries("Mode rate (gNMI)", "bps", Q(n.WAVELENGTH_REPORTED_RATE_BPS + LINK, "{{wavelength}}"),
                   w=8, description="Client rate of the mode both ends run; a gap is a mode change "
                                    "(the wavelength is dark while it reconfigures)."),
        stat("Mode changes (1 h)", None,
             Q(f"sum by (link) (increase({n.total(n.WAVELENGTH_MODE_CHANGES)}{LINK}[1h]))", "{{link}}"),
             w=8, description="Operational-mode changes seen over gNMI in the last hour, per DCI "
                              "link: more than a few is flapping."),
        stat("Capacity per DCI link", "bps",
             Q(f'sum by (link) ({n.LINK_CAPACITY_BPS}{{kind="dci", direction="a-b", link=~"$link"}} '
               f'* {n.LINK_UP}{{kind="dci", direction="a-b", link=~"$link"}})',
               "{{link}}"), h=5, description="Sum of the line rates of its wavelengths that are "
                                             "up, one direction: a cut or dark one offers nothing."),
    )),
    Dashboard("dcilab-reservations", "dcilab-reservations", "dcilab / Reservations and steering",
              "Bandwidth reservations admitted over gRPC, and elephant flows steered onto "
              "wavelengths.", panels=(
        timeseries("Reservations by state", "short", Q(n.RESERVATIONS, "{{state}}"),
                   description="Reservations by state: live (PENDING, ACTIVE, DEGRADED), "
                               "and ended ones the history still keeps (RELEASED, EXPIRED)."),
        stat("Active reservations", "short", Q(n.RESERVATIONS + '{state="ACTIVE"}', "active"), w=4),
        stat("Refused in range", "short",
             Q(f'sum(increase({n.total(n.RESERVATION_REQUESTS)}{{result="refused"}}[$__range]))', "refused"),
             w=4, description="Requests refused for lack of capacity over the dashboard's time "
                              "range.", steps=(("green", None), ("orange", 1)),
             options={"background": True}),
        stat("Elephant flows", "short", Q(n.ELEPHANT_FLOWS, "elephants"), w=4),
        stat("PROTECTED without a standby", "short", Q(n.RESERVATIONS_UNPROTECTED, "unprotected"),
             w=4, description="PROTECTED reservations a failure left on their primary alone: "
                              "the next cut of it is not survived by the switches "
                              "(DcilabReservationsUnprotected).", steps=ZERO_IS_GOOD,
             options={"background": True}),
        timeseries("Live reservations by protection", "short",
                   Q(n.RESERVATIONS_LIVE, "{{protection}}"), w=8,
                   description="NONE, RESTORABLE and PROTECTED reservations that hold bandwidth "
                               "or wait for it."),
        timeseries("Requests by result", "reqps",
                   Q(f"sum by (result) (rate({n.total(n.RESERVATION_REQUESTS)}[$__rate_interval]))", "{{result}}"),
                   description="admitted, retried (a request_id's retry, answered with its "
                               "first reservation), refused (no room now), precondition (could "
                               "never fit as asked), invalid, conflict (a request_id reused "
                               "with other parameters), not_found, unauthenticated, "
                               "unavailable and internal (the change could not be saved)."),
        timeseries("Reserve latency", "s", *quantiles(n.RESERVE_DURATION),
                   description="Time to answer a reservation request (empty until a request "
                               "is made)."),
        timeseries("Elephant placements by policy", "ops",
                   Q(f"sum by (policy) (rate({n.total(n.FLOW_PLACEMENTS)}[$__rate_interval]))", "{{policy}}"),
                   description="Placements per second: ecmp, shortest, loadaware."),
        timeseries("Path compute latency", "s", *quantiles(n.PATH_COMPUTE_DURATION),
                   description="Time to compute a path or a placement."),
        timeseries("Reserved share of DCI capacity per site pair", "percentunit",
                   Q(n.SITE_PAIR_RESERVED_RATIO, PAIR), w=24,
                   description="Admission keeps this under the reservable fraction (0.9 by "
                               "default).", **ratio()),
    )),
    Dashboard("dcilab-controller", "dcilab-controller", "dcilab / Controller health",
              "Is the controller scraped, are the switches of the fabric file connected, is "
              "OpenFlow healthy.", panels=(
        stat("Controller scraped", None, Q(f'up{{job="{n.JOB}"}}', "{{instance}}"), w=4, h=6,
             description="1 when Prometheus can scrape /metrics.", steps=UP_STEPS,
             mappings={0: ("DOWN", None), 1: ("UP", None)}, options={"background": True}),
        stat("Switches connected", "short", Q(f"sum({n.SWITCH_CONNECTED})", "connected"),
             Q(f"count({n.SWITCH_CONNECTED})", "in the fabric file"), w=4, h=6),
        stat("Switches disconnected", "short", Q(f"count({n.SWITCH_CONNECTED} == 0) or vector(0)",
                                                 "disconnected"),
             w=4, h=6, steps=ZERO_IS_GOOD, options={"background": True}),
        stat("Wiring problems", "short",
             Q(f"sum({n.SWITCH_WIRING_PROBLEMS}) or vector(0)", "problems"), w=4, h=6,
             description="Ports a switch lacks or has beyond the fabric file, and cables "
                         "leading elsewhere than it says (counted at both ends); `dcilab "
                         "switches` names each.", steps=ZERO_IS_GOOD,
             options={"background": True}),
        stat("Alerts firing", "short",
             Q('count(ALERTS{alertstate="firing", alertname=~"Dcilab.*"}) or vector(0)', "firing"),
             w=4, h=6, description="dcilab alerts of rules.yml now firing.", steps=ZERO_IS_GOOD,
             options={"background": True}),
        stat("Emulation scale", "none", Q(n.EMULATION_SCALE, "scale"), w=4, h=6,
             description="Emulated bit rate over real bit rate; every metric is in real units."),
        Panel("state-timeline", "Switch connections", None, (Q(n.SWITCH_CONNECTED, "{{switch}}"),),
              w=24, h=10, description="Per switch of the fabric file: connected over OpenFlow "
                                      "or not.", steps=UP_STEPS,
              mappings={0: ("disconnected", "red"), 1: ("connected", "green")}),
        timeseries("OpenFlow messages sent", "ops",
                   Q(f"rate({n.total(n.OPENFLOW_SENT)}[$__rate_interval])", "sent"), w=8,
                   description="FlowMods, GroupMods and the rest, per second."),
        timeseries("OpenFlow errors", "cpm", Q(per_minute(n.OPENFLOW_ERRORS), "errors"), w=8,
                   description="Error messages switches sent back, a minute. Any is a bug or "
                               "a switch mismatch."),
        timeseries("Failure events", "cpm", Q(per_minute(n.FAILURE_EVENTS, "kind"), "{{kind}}"),
                   w=8,
                   description="Links down, links back in use, switches lost, as the controller "
                               "saw them. A link is back once its hold-down has passed: one "
                               "that fails again meanwhile adds a down and no up, so downs can "
                               "outnumber ups."),
        timeseries("Restoration time", "s", *quantiles(n.RESTORATION_DURATION), w=8,
                   description="From a failure seen to every affected route and reservation "
                               "moved (empty until a failure)."),
        timeseries("Links held down", "short",
                   Q(f"max_over_time({n.LINKS_HELD_DOWN}[$__rate_interval])", "held down"), w=8,
                   description="Back from a failure, not used again until they stay up "
                               "(flap damping); the most in each interval, as a hold-down "
                               "of a second or two falls between scrapes."),
        timeseries("Reads refused for load", "cpm",
                   Q(per_minute(n.READS_REFUSED, "kind"), "{{kind}}"), w=8,
                   description="Read calls beyond the read budget, watch streams beyond the "
                               "bound, /metrics scrapes answered 503, a minute."),
        # What the two alerts of a controller that stopped working read (an SRE tester
        # found them behind critical alerts and on no panel).
        timeseries("State file wait", "s", Q(f"max by (instance) ({n.STATE_FILE_WAIT})",
                                             "{{instance}}"), w=8,
                   description="The oldest change waiting for its commit, or read waiting for "
                               "the disk: 0 unless the disk is slow or hung. 10 s raises "
                               "DcilabStateFileStalled.", steps=(("green", None), ("red", 10))),
        timeseries("OpenFlow events queued", "short",
                   Q(f"max by (instance) ({n.OPENFLOW_EVENTS_QUEUED})", "{{instance}}"), w=8,
                   description="Switch events (replies, port changes, packets in) waiting for "
                               "the controller, 128 at most: full for a minute raises "
                               "DcilabOpenFlowStuck.", steps=(("green", None), ("red", 100))),
        stat("Controller up for", "s",
             Q(f"time() - {n.CONTROLLER_START_TIME}", "{{instance}}"), w=8,
             description="Since the controller process started: a restart shows as a reset "
                         "(a fresh one shows links down until its switches describe their "
                         "ports)."),
        # One series per direction: a link counts once, up only if both ways are (an SRE
        # tester read 64 of four-dc-ring's 32 fabric links).
        timeseries("Links up", "short",
                   Q(f"sum by (kind) (min by (link, wavelength, kind) ({n.LINK_UP}))", "{{kind}} up"),
                   Q(f"count by (kind) (min by (link, wavelength, kind) ({n.LINK_UP}))", "{{kind}} total"),
                   w=8, description="Links up in both directions (a wavelength counts "
                                    "once), of all links, by kind."),
        timeseries("Scrape duration", "s", Q(f'scrape_duration_seconds{{job="{n.JOB}"}}', "{{instance}}"),
                   h=6, description="How long /metrics takes; the collector reads the "
                                    "controller's snapshot at each scrape."),
        timeseries("Series exported", "short",
                   Q(f'scrape_samples_scraped{{job="{n.JOB}"}}', "{{instance}}"), h=6,
                   description="Samples per scrape: grows with links and wavelengths, never "
                               "with flows."),
    )),
)


# -- building with grafana-foundation-sdk -------------------------------------------------

def _layout(panels: tuple[Panel, ...]):
    """(panel, x, y): left to right, a new row when the next does not fit in 24 columns."""
    x = y = row_h = 0
    for panel in panels:
        if x + panel.w > 24:
            x, y, row_h = 0, y + row_h, 0
        yield panel, x, y
        x, row_h = x + panel.w, max(row_h, panel.h)


def _panel(spec: Panel, panel_id: int, x: int, y: int):
    from grafana_foundation_sdk.builders import (bargauge, common, dashboard, prometheus,
                                                 stat, statetimeline, table, timeseries)
    from grafana_foundation_sdk.models import common as cm
    from grafana_foundation_sdk.models import dashboard as m

    source = m.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
    builder = {"timeseries": timeseries, "stat": stat, "bargauge": bargauge, "table": table,
               "state-timeline": statetimeline}[spec.kind].Panel()
    builder.id(panel_id).title(spec.title).datasource(source).grid_pos(
        m.GridPos(h=spec.h, w=spec.w, x=x, y=y))
    if spec.description:
        builder.description(spec.description)
    if spec.unit:
        builder.unit(spec.unit)
    if spec.min is not None:
        builder.min(spec.min)
    if spec.max is not None:
        builder.max(spec.max)
    if spec.decimals is not None:
        builder.decimals(spec.decimals)
    if spec.steps:
        builder.thresholds(dashboard.ThresholdsConfig().mode(m.ThresholdsMode.ABSOLUTE).steps(
            [m.Threshold(color=colour, value=value) for colour, value in spec.steps]))
    if spec.mappings:
        builder.mappings([m.ValueMap(options={
            str(value): m.ValueMappingResult(text=text, color=colour)
            for value, (text, colour) in spec.mappings.items()})])
    instant = spec.kind != "timeseries" and spec.kind != "state-timeline"
    for ref, q in zip("ABCDEFGH", spec.queries):
        target = (prometheus.Dataquery().ref_id(ref).datasource(source).expr(scoped(q.expr))
                  .editor_mode("code").legend_format(q.legend or "__auto"))
        target.instant() if instant else target.range()
        if q.table:
            target.format("table")
        builder.with_target(target)
    last = common.ReduceDataOptions().calcs(["lastNotNull"]).values(False).fields("")
    options = spec.options
    if spec.kind == "stat":
        builder.reduce_options(last)
        if options.get("background"):
            builder.color_mode(cm.BigValueColorMode.BACKGROUND)
    elif spec.kind == "bargauge":
        builder.reduce_options(last).orientation(cm.VizOrientation.HORIZONTAL).display_mode(
            cm.BarGaugeDisplayMode(options.get("display", "basic")))
        if options.get("unfilled"):
            builder.show_unfilled(True)
    elif spec.kind == "state-timeline":
        builder.show_value(cm.VisibilityMode.NEVER).merge_values(True)
    elif spec.kind == "table":
        builder.show_header(True)
        builder.with_transformation(m.DataTransformerConfig(id_val="merge", options={}))
        builder.with_transformation(m.DataTransformerConfig(id_val="organize", options={
            "excludeByName": dict.fromkeys(options["hide"], True),
            "renameByName": options["rename"],
            "indexByName": {name: i for i, name in enumerate(options["columns"])}}))
    return builder


def build(spec: Dashboard) -> dict:
    """The dashboard as Grafana's JSON model (a dict)."""
    from grafana_foundation_sdk.builders import dashboard
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import dashboard as m

    board = (dashboard.Dashboard(spec.title).uid(spec.uid).description(spec.description)
             .tags([TAG]).editable().refresh("10s").time("now-30m", "now").timezone("browser")
             .tooltip(m.DashboardCursorSync.CROSSHAIR)
             .link(dashboard.DashboardLink("dcilab").type(m.DashboardLinkType.DASHBOARDS)
                   .tags([TAG]).as_dropdown(True)))
    board.with_variable(
        dashboard.QueryVariable("instance").label("controller")
        .query({"query": f'label_values(up{{job="{n.JOB}"}}, instance)', "refId": "instance"})
        .datasource(m.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID))
        .refresh(m.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(m.VariableSort.ALPHABETICAL_ASC))
    if spec.link_variable:
        query = f'label_values({n.LINK_CAPACITY_BPS}{{{INSTANCE}, kind="dci"}}, link)'
        board.with_variable(
            dashboard.QueryVariable("link").label("DCI link")
            .query({"query": query, "refId": "link"})
            .datasource(m.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID))
            .refresh(m.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True)
            .all_value(".*").sort(m.VariableSort.ALPHABETICAL_ASC))
    for panel_id, (panel, x, y) in enumerate(_layout(spec.panels), start=1):
        board.with_panel(_panel(panel, panel_id, x, y))
    data = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    # Grafana's model has these lists even when empty; the SDK leaves them out.
    data.setdefault("templating", {}).setdefault("list", [])
    data.setdefault("annotations", {}).setdefault("list", [])
    return data


def render(spec: Dashboard) -> str:
    return json.dumps(build(spec), indent=2, ensure_ascii=False) + "\n"


def dashboards_dir() -> Path:
    return deploy_dir() / "grafana" / "dashboards"


def stale_files(out_dir: Path | None = None) -> list[str]:
    """Dashboard files that differ from (or are missing in) `out_dir`, or should not be there."""
    out_dir = out_dir or dashboards_dir()
    wanted = {f"{spec.file}.json": render(spec) for spec in DASHBOARDS}
    stale = [name for name, text in wanted.items()
             if not (out_dir / name).exists() or (out_dir / name).read_text() != text]
    return stale + sorted(p.name for p in out_dir.glob("*.json") if p.name not in wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcilab.metrics.dashboards",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="only report whether the committed dashboards are current")
    args = parser.parse_args(argv)
    try:
        import grafana_foundation_sdk  # noqa: F401  (a development extra, not installed with dcilab)
    except ImportError:
        print("python -m dcilab.metrics.dashboards needs grafana-foundation-sdk, which dcilab "
              "installs only for development: `pip install 'dcilab[test]'` (a checkout's "
              "`make setup` has it); the dashboards dcilab ships are already built",
              file=sys.stderr)
        return 2
    if args.check:
        stale = stale_files()
        if stale:
            print(f"stale dashboards in {dashboards_dir()}: {', '.join(stale)}; run "
                  "`python -m dcilab.metrics.dashboards`", file=sys.stderr)
            return 1
        print("dashboards are current")
        return 0
    for spec in DASHBOARDS:
        path = dashboards_dir() / f"{spec.file}.json"
        path.write_text(render(spec))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
