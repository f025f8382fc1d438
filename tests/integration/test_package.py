"""dcilab as a user gets it: the wheel built from this tree, installed (not editable) into a
fresh virtualenv, run from a directory that has nothing of the repository.

Slow (a wheel build and its install, with the dependencies this run has hard-linked into
the venv) and the demo needs root, so it is an integration test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO
from dcilab.sockets import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin directory, working directory) of a fresh venv holding the built wheel."""
    root = tmp_path_factory.mktemp("package")
    dist, venv, work = root / "dist", root / "venv", root / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    [wheel] = dist.glob("dcilab-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    if _link_dependencies(venv):
        # The wheel alone, then pip's own word that every requirement it declares is met.
        done = subprocess.run([*pip, "install", "-q", "--no-deps", str(wheel)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        checked = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    else:
        # The pip cache and the configured indexes make this an install of files already here.
        done = subprocess.run([*pip, "install", "-q", str(wheel)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin", work


def _link_dependencies(venv) -> bool:
    """Hard-link this test run's installed dependencies into the fresh venv, leaving out
    dcilab itself (its editable hook and metadata). Unpacking 650 MB of them again from
    pip's cache took 80 s of the suite; the project's own install (`make setup`) already
    proves pip resolves them. False where links cannot be made (another file system)."""
    source = Path(sysconfig.get_paths()["purelib"])
    target = venv / source.relative_to(Path(sys.prefix))
    linked = []
    try:
        for entry in source.iterdir():
            if entry.name.startswith(("__editable__", "dcilab")) or entry.name == "__pycache__" \
                    or (target / entry.name).exists():        # the venv's own pip stays
                continue
            linked.append(target / entry.name)
            if entry.is_dir() and not entry.is_symlink():
                shutil.copytree(entry, target / entry.name, copy_function=os.link)
            else:
                os.link(entry, target / entry.name, follow_symlinks=False)
    except OSError:
        for path in linked:                                   # back to the bare venv
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return False
    return True


def _env() -> dict:
    # Nothing may reach back into the source tree.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _run(installed, *args, timeout=600) -> subprocess.CompletedProcess:
    bin_dir, work = installed
    return subprocess.run([str(bin_dir / "dcilab"), *args], cwd=work, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_the_installed_package_is_not_the_source_tree(installed):
    bin_dir, work = installed
    where = subprocess.run([str(bin_dir / "python"), "-c", "import dcilab; print(dcilab.__file__)"],
                           cwd=work, env=_env(), capture_output=True, text=True, check=True)
    assert "site-packages" in where.stdout and str(REPO) not in where.stdout


def test_check_a_bundled_topology_by_name(installed):
    done = _run(installed, "check", "two-dc", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["name"] == "two-dc" and summary["wavelength_count"] == 4
    assert "site-packages" in summary["file"]
    ring = _run(installed, "check", "four-dc-ring.yaml")
    assert ring.returncode == 0 and "fabric 'four-dc-ring' is valid" in ring.stdout
    missing = _run(installed, "check", "no-such-fabric")
    assert missing.returncode == 2 and "no-such-fabric: cannot read" in missing.stderr


def test_bench_reads_its_bundled_fabrics(installed):
    done = _run(installed, "bench", "--json", "--time-limit", "2", "--elephants", "20")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert {"two-dc", "four-dc-ring"} <= {s["scenario"].split("/")[0] for s in report["scenarios"]}


def test_controller_serves_a_bundled_topology(installed):
    bin_dir, work = installed
    openflow, grpc_port, metrics = free_ports(3)
    proc = subprocess.Popen(
        [str(bin_dir / "dcilab"), "controller", "--topology", "two-dc",
         "--openflow", f"127.0.0.1:{openflow}", "--grpc", f"127.0.0.1:{grpc_port}",
         "--metrics", f"127.0.0.1:{metrics}", "--state", str(work / "state.db")],
        cwd=work, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        body = ""
        while "dcilab_wavelength_osnr_db" not in body:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no metrics within 60 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.2)
        assert 'wavelength="dc1-dc2-a.w1"' in body
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_demo_runs_from_anywhere(installed, no_leftovers):
    done = _run(installed, "demo", "--duration", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "56/56 pairs answered, 0.0% loss" in done.stdout
    assert "everything stopped and removed" in done.stdout
