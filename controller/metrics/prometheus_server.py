"""A local Prometheus scraping the controller: for `dcilab demo --prometheus` and the tests.

Runs the Debian `prometheus` binary (2.42) as our child, with its data in `workdir`, a
1 s scrape interval and the alerting and recording rules of deploy/prometheus/rules.yml
(shipped in the package). Stopped by PID, never by name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from ..resources import deploy_dir
from ..sockets import free_port
from .names import JOB          # the job name the shipped config and dashboards use


class PrometheusError(RuntimeError):
    pass


def local_config(targets: list[str], scrape_interval: str = "1s",
                 rule_files: list[str] = ()) -> dict:
    """The configuration of a local Prometheus scraping `targets` (HOST:PORT each)."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                   "scrape_timeout": scrape_interval},
        "rule_files": list(rule_files),
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
    }


def start_prometheus(targets: list[str], workdir: Path, port: int = 0,
                     scrape_interval: str = "1s", ready_timeout_s: float = 30.0):
    """Start Prometheus scraping `targets`; return (proc, url) once it answers /-/ready.

    `workdir` receives prometheus.yml, rules.yml, data/ and prometheus.log.
    `port` 0 picks a free port. The caller stops it with `stop_prometheus(proc)`.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        raise PrometheusError("prometheus is not installed: apt-get install -y prometheus")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(deploy_dir() / "prometheus" / "rules.yml", workdir / "rules.yml")
    rule_files = ["rules.yml"]
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(local_config(targets, scrape_interval, rule_files),
                                     sort_keys=False))
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(workdir / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d",
         "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    proc.dcilab_log = workdir / "prometheus.log"
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PrometheusError(f"prometheus exited with status {proc.returncode}:\n"
                                  + (workdir / "prometheus.log").read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as reply:
                if reply.status == 200:
                    return proc, url
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    stop_prometheus(proc)
    raise PrometheusError(f"prometheus did not become ready on {url} in {ready_timeout_s:g} s")


def stop_prometheus(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM our Prometheus child, SIGKILL it after `grace_s`; by PID only."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def query(url: str, expr: str, timeout_s: float = 10.0) -> list[dict]:
    """Evaluate an instant PromQL query; return its result (a list of series)."""
    data = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query", data=data, timeout=timeout_s) as r:
            body = json.load(r)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
        raise PrometheusError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
    result = body["data"]["result"]
    return result if body["data"]["resultType"] in ("vector", "matrix") else [result]
