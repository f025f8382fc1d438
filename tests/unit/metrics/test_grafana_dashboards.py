"""deploy/grafana: every dashboard parses, every panel queries Prometheus, and every query
names only metrics, labels and variables that exist. (No Grafana server here: the
integration test evaluates each query against a real Prometheus.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from test_prometheus_rules import (BUILTIN_LABELS, BUILTIN_SERIES, exported, labels_in, rules,
                                   series_in)

REPO = Path(__file__).resolve().parents[3]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])          # collapsed rows


def datasource_uid() -> str:
    provisioning = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [ds] = provisioning["datasources"]
    assert ds["type"] == "prometheus"
    return ds["uid"]


def test_the_four_dashboards_exist_with_unique_uids_and_titles():
    assert {p.stem for p in DASHBOARDS} == {"dcilab-dci-overview", "dcilab-optics",
                                             "dcilab-reservations", "dcilab-controller"}
    uids = [load(p)["uid"] for p in DASHBOARDS]
    titles = [load(p)["title"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_has_a_promql_target_on_the_provisioned_datasource(path):
    dashboard = load(path)
    uid = datasource_uid()
    ids = [p["id"] for p in panels(dashboard)]
    assert len(set(ids)) == len(ids)
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        targets = panel.get("targets", [])
        assert targets, f"{path.name}: panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] == uid
        for target in targets:
            assert target["expr"].strip(), f"{path.name}: {panel['title']!r} empty query"
            assert target.get("datasource", panel["datasource"])["uid"] == uid
        refs = [t["refId"] for t in targets]
        assert len(set(refs)) == len(refs)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_queries_name_only_exported_metrics_labels_and_defined_variables(path):
    dashboard = load(path)
    names, labels = exported()
    recorded = {r["record"] for g in rules()["groups"] for r in g["rules"] if "record" in r}
    defined = {v["name"] for v in dashboard["templating"]["list"]} | GRAFANA_VARIABLES
    known_labels = labels | BUILTIN_LABELS
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            unknown = series_in(expr) - names - recorded - BUILTIN_SERIES
            assert not unknown, (path.name, panel["title"], unknown)
            assert labels_in(expr) <= known_labels, (path.name, panel["title"], expr)
            used = set(re.findall(r"\$\{?(\w+)", expr))
            assert used <= defined, (path.name, panel["title"], used - defined)
            legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            assert legend_labels <= known_labels, (path.name, panel["title"], legend_labels)


def test_variables_query_exported_series():
    names, labels = exported()
    for path in DASHBOARDS:
        for var in load(path)["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"]["query"])
            assert m, var
            assert series_in(m.group(1)) <= names | BUILTIN_SERIES
            assert m.group(2) in labels | BUILTIN_LABELS


def test_provisioning_points_at_the_mounted_dashboards_and_prometheus():
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dcilab.yml").read_text())["providers"]
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    grafana, prometheus = compose["services"]["grafana"], compose["services"]["prometheus"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./grafana/dashboards"] == providers[0]["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    for source in mounts:
        assert (REPO / "deploy" / source).exists(), source
    for volume in prometheus["volumes"]:
        if volume.startswith("./"):
            assert (REPO / "deploy" / volume.split(":")[0]).exists(), volume
    assert "host.docker.internal:host-gateway" in prometheus["extra_hosts"]
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"


def test_committed_dashboards_are_what_the_code_generates():
    """deploy/grafana/dashboards is generated by dcilab.metrics.dashboards (grafana-foundation-sdk)."""
    from dcilab.metrics import dashboards
    stale = dashboards.stale_files(GRAFANA / "dashboards")
    assert not stale, (f"stale dashboards: {', '.join(stale)}; run "
                       "`.venv/bin/python -m dcilab.metrics.dashboards`")


def test_a_new_panel_flows_into_the_next_free_place():
    from dcilab.metrics.dashboards import Q, _layout, stat, timeseries
    panels = (timeseries("a", "s", Q("x")), stat("b", None, Q("y"), w=4),
              timeseries("c", "s", Q("z"), w=16), stat("d", None, Q("w"), w=4, h=6))
    assert [(p.title, x, y) for p, x, y in _layout(panels)] == [
        ("a", 0, 0), ("b", 12, 0), ("c", 0, 8), ("d", 16, 8)]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_series_a_panel_selects_is_the_chosen_controllers(path):
    """One Prometheus may scrape several controllers: "Switches connected" summed them
    all (an SRE tester's). Each dashboard has a single-valued controller variable, and
    every selector of every query (and of the link variable) is scoped to it."""
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["instance"]["query"]["query"] == \
        'label_values(up{job="dcilab-controller"}, instance)'
    assert not variables["instance"].get("multi") and not variables["instance"].get("includeAll")
    queries = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    if "link" in variables:                          # label_values(SELECTOR, link)
        queries.append(variables["link"]["query"]["query"][len("label_values("):].rsplit(",", 1)[0])
    for expr in queries:
        for name in series_in(expr):
            for m in re.finditer(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr):
                assert expr[m.end():].startswith('{instance="$instance"'), (path.name, expr)


def test_without_the_sdk_the_generator_says_what_to_install(monkeypatch, capsys):
    """An outside tester ran `python -m dcilab.metrics.dashboards --check` from a wheel
    (the SDK is a test extra): a traceback. Now one line naming what to install."""
    import builtins

    from dcilab.metrics import dashboards
    real_import = builtins.__import__

    def no_sdk(name, *args, **kwargs):
        if name.startswith("grafana_foundation_sdk"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_sdk)
    assert dashboards.main(["--check"]) == 2
    assert "needs grafana-foundation-sdk" in capsys.readouterr().err
