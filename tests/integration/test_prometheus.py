"""A real Prometheus scraping the real controller of an emulated fabric carrying traffic:
every PromQL of every dashboard panel and every recording rule must parse and return
series. (Grafana is not available here; this is how the dashboards are checked.)"""

from __future__ import annotations

import json
import re
import time

import yaml

from dcilab.api.client import ApiError, Client
from dcilab.emulation.traffic import iperf_concurrent
from dcilab.fabric import load_fabric
from dcilab.lab import Lab
from dcilab.metrics.prometheus_server import (PrometheusError, query, start_prometheus,
                                              stop_prometheus)

from conftest import REPO, TOPOLOGIES

DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
# Grafana's built-in variables, with values that fit a 1 s scrape and a minute of data.
BUILTINS = {"__rate_interval": "30s", "__interval": "5s", "__range": "2m", "__range_s": "120",
            "__interval_ms": "5000"}


def quiet(_msg: str) -> None:
    pass


def wait_for(url: str, expr: str, timeout_s: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = query(url, expr)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"no series for {expr!r} after {timeout_s:g} s")
        time.sleep(0.5)


def grafana_regex_escape(value: str) -> str:
    """As Grafana escapes a multi-value variable inside a PromQL regex matcher."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", value)


def variable_values(url: str, dashboard: dict) -> dict[str, str]:
    """Each `label_values(expr, label)` variable, evaluated with the variables before it
    (the link's takes the controller's): a multi-valued one's values as a regex, a
    single-valued one's one value (this test scrapes one controller), as it is."""
    values = {}
    for var in dashboard["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"]["query"])
        assert m, var
        found = sorted({s["metric"].get(m.group(2))
                        for s in query(url, substitute(m.group(1), values))} - {None})
        assert found, f"{dashboard['title']}: variable ${var['name']} has no values"
        if var.get("multi"):
            values[var["name"]] = "(" + "|".join(grafana_regex_escape(v) for v in found) + ")"
        else:
            [values[var["name"]]] = found
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    def one(m):
        name = m.group(1) or m.group(2)
        assert name in values, f"unknown variable ${name} in {expr!r}"
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)


def test_every_dashboard_query_and_recording_rule_returns_series(tmp_path, no_leftovers):
    path = TOPOLOGIES / "two-dc.yaml"
    fabric = load_fabric(path)
    # gnmi: the optics panels that show what the transceivers report need the stream
    with Lab(fabric, path, say=quiet, gnmi=True) as lab:   # --metrics on
        metrics_port = lab.controller.metrics_port  # a free port Lab picked for it
        prometheus, url = start_prometheus([f"127.0.0.1:{metrics_port}"], tmp_path / "prom")
        try:
            assert wait_for(url, 'up{job="dcilab-controller"} == 1')
            # Admissions over gRPC: one admitted, one that could never fit (no path could
            # ever carry 2 Tb/s: FAILED_PRECONDITION), one refused for lack of room now
            # (each 400G wavelength reserves 360 Gb/s: a fifth 250 finds none, though the
            # 1440 in all would hold it).
            with Client(f"127.0.0.1:{lab.controller.grpc_port}") as client:
                client.reserve("dc1-h2", "dc2-h4", 100)
                try:
                    client.reserve("dc1-h1", "dc2-h1", 2000)
                    raise AssertionError("a 2 Tb/s reservation was admitted")
                except ApiError as exc:
                    assert exc.code == "FAILED_PRECONDITION"
                codes = []
                for src, dst in (("dc1-h1", "dc2-h1"), ("dc1-h2", "dc2-h2"), ("dc1-h3", "dc2-h3"),
                                 ("dc1-h4", "dc2-h4"), ("dc1-h1", "dc2-h2")):
                    try:
                        client.reserve(src, dst, 250)
                        codes.append("OK")
                    except ApiError as exc:
                        codes.append(exc.code)
                assert codes == ["OK"] * 4 + ["RESOURCE_EXHAUSTED"], codes
            [result] = iperf_concurrent(lab.emulation, [("dc1-h1", "dc2-h3")], duration_s=5)
            assert result.error is None
            # Until Prometheus has scraped two polls made after the traffic ended.
            wait_for(url, f'timestamp(up{{job="dcilab-controller"}}) > {time.time() + 2.5}')

            # The traffic shows in real units, compared with what iperf3 measured in this
            # run (a busy machine lowers both): the peak of the 1 s polls is about the 5 s
            # average or more; a 5 s rate() of counters that move once a poll, sampled once
            # a second, catches less of it (measured: 57 % of iperf3's figure).
            measured = result.bits_per_second / fabric.scale            # real bit/s
            [peak] = wait_for(url, 'max(max_over_time(dcilab_link_utilization_ratio{kind="dci"}[1m]))')
            assert 0.7 * measured / 400e9 < float(peak["value"][1]) <= 1.1, (peak, measured)
            [sent] = query(url, 'max(max_over_time((8 * rate(dcilab_link_transmit_bytes_total{kind="dci"}[5s]))[1m:1s]))')
            assert 0.4 * measured < float(sent["value"][1]) < 1.1 * 400e9, (sent, measured)
            [connected] = query(url, "sum(dcilab_switch_connected)")
            assert float(connected["value"][1]) == len(fabric.switches)
            [admitted] = query(url, 'dcilab_reservation_requests_total{result="admitted"}')
            [refused] = query(url, 'dcilab_reservation_requests_total{result="refused"}')
            [never] = query(url, 'dcilab_reservation_requests_total{result="precondition"}')
            assert float(admitted["value"][1]) == 5 and float(refused["value"][1]) == 1
            assert float(never["value"][1]) == 1
            [active] = query(url, 'dcilab_reservations{state=~"ACTIVE|PENDING"} > 0')
            assert float(active["value"][1]) >= 1

            # Every recording rule, its expression and its recorded series.
            failures = []
            groups = yaml.safe_load(RULES.read_text())["groups"]
            for rule in (r for g in groups for r in g["rules"]):
                if "record" in rule:
                    for expr in (rule["expr"], rule["record"]):
                        try:
                            if not query(url, expr):
                                failures.append(f"rules.yml {rule['record']}: {expr!r} -> no series")
                        except PrometheusError as exc:
                            failures.append(f"rules.yml {rule['record']}: {exc}")
                else:
                    try:
                        query(url, rule["expr"])            # an alert: must parse
                    except PrometheusError as exc:
                        failures.append(f"rules.yml {rule['alert']}: {exc}")

            # Every query of every panel of every dashboard.
            checked = 0
            for dash_path in DASHBOARDS:
                dashboard = json.loads(dash_path.read_text())
                values = {**BUILTINS, **variable_values(url, dashboard)}
                for panel in dashboard["panels"]:
                    for target in panel.get("targets", []):
                        expr = substitute(target["expr"], values)
                        where = f"{dash_path.name} / {panel['title']} / {target['refId']}"
                        checked += 1
                        try:
                            if not query(url, expr):
                                failures.append(f"{where}: {expr!r} -> no series")
                        except PrometheusError as exc:
                            failures.append(f"{where}: {exc}")
            assert checked >= 30
            assert not failures, "\n".join(failures)
        finally:
            stop_prometheus(prometheus)
        assert prometheus.poll() is not None
