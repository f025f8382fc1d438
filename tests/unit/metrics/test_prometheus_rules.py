"""deploy/prometheus: the shipped config, the rules and their promtool unit tests, checked
with the real promtool; and every rule refers only to metrics and labels that exist."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dcilab.metrics import FabricCollector, Metrics
from dcilab.metrics.prometheus_server import JOB, local_config
from dcilab.te.load import LoadTracker

from fabric_helpers import topology

from dcilab.gnmi.client import TransceiverReading
from dcilab.metrics.optical import OpticalCollector

REPO = Path(__file__).resolve().parents[3]
PROM = REPO / "deploy" / "prometheus"
ALERTS = {"DcilabControllerDown", "DcilabWavelengthUtilizationHigh", "DcilabWavelengthMarginLow",
          "DcilabSwitchDisconnected", "DcilabReservationsRefused", "DcilabLinkDown",
          "DcilabReservationDegraded", "DcilabWavelengthMarginFalling", "DcilabLinkFlapping",
          "DcilabReservationsUnprotected", "DcilabSwitchMiswired", "DcilabStateFileFailing",
          "DcilabStateFileStalled", "DcilabOpenFlowStuck", "DcilabControllerAbsent",
          "DcilabWavelengthMarginCollapsing"}
# Series Prometheus itself makes, and labels it adds.
BUILTIN_SERIES = {"up", "ALERTS", "scrape_duration_seconds", "scrape_samples_scraped"}
BUILTIN_LABELS = {"job", "instance", "le", "alertname", "alertstate", "__name__"}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: apt-get install -y prometheus")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return path


def run(*args, cwd=PROM):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def rules() -> dict:
    return yaml.safe_load((PROM / "rules.yml").read_text())


def test_promtool_check_config_of_the_shipped_file(promtool):
    done = run(promtool, "check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_check_rules(promtool):
    done = run(promtool, "check", "rules", "rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_test_rules(promtool):
    done = run(promtool, "test", "rules", "rules_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_local_config_of_demo_and_tests_is_valid(promtool, tmp_path):
    shutil.copy(PROM / "rules.yml", tmp_path / "rules.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(
        local_config(["127.0.0.1:9108"], "1s", ["rules.yml"])))
    done = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shipped_and_local_configs_scrape_the_same_job():
    shipped = yaml.safe_load((PROM / "prometheus.yml").read_text())
    [job] = shipped["scrape_configs"]
    assert job["job_name"] == JOB
    assert job["static_configs"][0]["targets"] == ["host.docker.internal:9108"]
    assert shipped["rule_files"] == ["rules.yml"]
    assert local_config(["x:1"])["scrape_configs"][0]["job_name"] == JOB


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    alerts = {r["alert"] for g in rules()["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == ALERTS
    tests = yaml.safe_load((PROM / "rules_test.yml").read_text())["tests"]
    firing, quiet = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == alerts, f"no firing test for {alerts - firing}"
    assert quiet == alerts, f"no quiet test for {alerts - quiet}"


def test_every_recording_rule_has_a_unit_test():
    recorded = {r["record"] for g in rules()["groups"] for r in g["rules"] if "record" in r}
    tests = yaml.safe_load((PROM / "rules_test.yml").read_text())["tests"]
    tested = {c["expr"] for case in tests for c in case.get("promql_expr_test", [])}
    assert recorded <= tested, recorded - tested


def test_every_aggregation_and_join_keeps_the_instance():
    """One Prometheus may scrape several controllers: a rule that drops `instance` added
    their figures together and paged without naming the controller (an SRE tester's)."""
    for group in rules()["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule.get("alert")
            expr = rule["expr"]
            aggregations = re.findall(r"\b(sum|max|min|count|avg)\s*(by\s*\([^)]*\))?\s*\(", expr)
            for op, by in aggregations:
                assert "instance" in by, (name, op, by or "over everything")
            for on in re.findall(r"\bon\s*\(([^)]*)\)", expr):
                assert "instance" in on, (name, f"on ({on})")


def test_every_alert_has_severity_summary_and_description():
    for group in rules()["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["severity"] in ("info", "warning", "critical")
                assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# -- names and labels exist -----------------------------------------------------------------

def read_once(tracker: LoadTracker, fabric) -> LoadTracker:
    """`tracker` once every switch's counters are read (byte totals not read yet are left
    out of the scrape)."""
    for switch in fabric.switches:
        tracker.sample(switch, {port: (0, 0) for port in fabric.ports(switch)}, 0.0)
    return tracker


def exported() -> tuple[set[str], set[str]]:
    """(series names, label names) the controller exports, from a fake-service scrape."""
    fabric = topology("two-dc")

    class Service:
        def __init__(self):
            self.fabric = fabric

        def link_loads(self, kinds=None):
            return read_once(LoadTracker(fabric), fabric).snapshot()

        def wavelength_modes(self):
            return {}

        def reservation_counts(self):
            return {}

        def protection_counts(self):
            return {}

        def unprotected_count(self):
            return 0

        def state_file_wait(self):
            return 0.0

        def state_file_failing(self):
            return False

        def openflow_backlog(self):
            return 0

        def switch_status(self):
            return {}

        def elephant_count(self):
            return 0

        def held_down_count(self):
            return 0

        def wiring_problems(self):
            return {'dc1-gw1': ['cables crossed: dc1-gw1 port 3 reaches dc1-spine2 port 5']}

    metrics = Metrics()
    metrics.registry.register(FabricCollector(Service()))

    class Optical:               # what the gNMI client holds: both ends of one wavelength
        def readings(self):
            w = next(fabric.wavelengths()).wavelength
            return {(w, end): TransceiverReading(w, end, mode_id=1, osnr_db=25.0,
                                                 prefec_ber=1e-4, q_db=11.0, link_up=True)
                    for end in ("gw-a", "gw-b")}

        def mode_changes(self):
            return {}

        def mode_name(self, mode_id):
            return ("400ZR+", "400G")

    metrics.registry.register(OpticalCollector(Optical(), fabric))
    families = text_string_to_metric_families(generate_latest(metrics.registry).decode())
    names, labels = set(), set()
    for family in families:
        for s in family.samples:
            names.add(s.name)
            labels.update(s.labels)
    return names, labels


NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROMQL_WORDS = {"sum", "max", "min", "count", "avg", "by", "without", "on", "ignoring",
                "group_left", "group_right", "rate", "increase", "histogram_quantile", "topk",
                "bottomk", "or", "and", "unless", "vector", "time", "bool", "offset",
                "max_over_time", "min_over_time", "deriv", "avg_over_time", "abs", "clamp_min",
                "clamp_max", "label_replace", "scalar", "irate", "delta", "sort_desc"}


def series_in(expr: str) -> set[str]:
    """Metric names an expression selects (crude: identifiers not followed by '(')."""
    expr = re.sub(r'"[^"]*"', '""', expr)                  # drop string literals
    expr = re.sub(r"\{[^}]*\}", "{}", expr)                 # and matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)                # and ranges
    expr = re.sub(r"\boffset\s+-?[0-9a-z]+", "", expr)       # and offsets
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    found = set()
    for m in NAME_RE.finditer(expr):
        word = m.group()
        rest = expr[m.end():].lstrip()
        if word in PROMQL_WORDS or rest.startswith("(") or re.fullmatch(r"\d.*", word):
            continue
        if word.startswith("$"):
            continue
        found.add(word)
    return found


def labels_in(expr: str) -> set[str]:
    used = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        used.update(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        used.update(x.strip() for x in group.split(",") if x.strip())
    return used


def test_rules_use_only_exported_metrics_and_labels():
    names, labels = exported()
    recorded = {r["record"] for g in rules()["groups"] for r in g["rules"] if "record" in r}
    for group in rules()["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"]
            unknown = series_in(expr) - names - recorded - BUILTIN_SERIES
            assert not unknown, (rule.get("record") or rule.get("alert"), unknown)
            assert labels_in(expr) <= labels | BUILTIN_LABELS, expr
