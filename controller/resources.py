"""The files the commands read, found with importlib.resources wherever dcilab is installed.

The fabric files, the Prometheus and Grafana files and the proto live at the repository
root (topologies/, deploy/, proto/) and are installed as the packages dcilab.topologies,
dcilab.deploy and dcilab.proto (pyproject.toml maps them), so a wheel carries them and an
editable install reads them in place.
"""

from __future__ import annotations

import argparse

from importlib.resources import files
from pathlib import Path

DEFAULT_TOPOLOGY = "two-dc"


def _directory(package: str) -> Path:
    # Installed as files (a wheel, or editable), never zipped: Mininet, Prometheus and
    # protoc are given these as paths.
    return Path(str(files(package)))


def topologies_dir() -> Path:
    return _directory("dcilab.topologies")


def deploy_dir() -> Path:
    return _directory("dcilab.deploy")


def jobs_dir() -> Path:
    """The example training jobs (jobs/ in the repository)."""
    return _directory("dcilab.jobs")


def proto_dir() -> Path:
    """The proto root (the directory holding dcilab/v1/*.proto)."""
    return _directory("dcilab.proto")


def bundled_topologies() -> list[str]:
    """Names of the fabric files shipped with dcilab (e.g. two-dc, four-dc-ring)."""
    return sorted(p.stem for p in topologies_dir().glob("*.yaml"))


def bundled_jobs() -> list[str]:
    """Names of the training job files shipped with dcilab (e.g. 10b-data-2dc)."""
    return sorted(p.stem for p in jobs_dir().glob("*.yaml"))


def shipped_hint(path: str | Path, kind: str = "fabric") -> str:
    """For a message about a file that is not there: a line naming the bundled fabrics
    (or jobs, `kind="job"`) that could be given by name instead; "" if the file exists."""
    if Path(path).exists():
        return ""
    names = bundled_topologies() if kind == "fabric" else bundled_jobs()
    return f"\n{kind}s shipped with dcilab: {', '.join(names)}"


def _bundled(name_or_path: str | Path, directory: Path) -> Path:
    """A file given as a path, or as the name of one shipped in `directory` (`two-dc` or
    `two-dc.yaml`, also `topologies/two-dc.yaml` from outside the repository). A path that
    exists wins; anything else is returned unchanged, so that loading it reports the file
    that cannot be read."""
    if str(name_or_path) == "":           # Path("") is ".", and "." was named (a tester's)
        raise argparse.ArgumentTypeError("an empty file name")
    path = Path(name_or_path)
    if path.exists():
        return path
    if path.parent == Path(".") or path.parent == Path(directory.name):
        bundled = directory / (path.stem + ".yaml")
        if path.suffix in ("", ".yaml") and bundled.is_file():
            return bundled
    return path


def topology_path(name_or_path: str | Path) -> Path:
    """A fabric file given as a path, or as the name of a bundled one."""
    return _bundled(name_or_path, topologies_dir())


def topology_arg(text: str) -> str:
    """argparse `type=` for a fabric file argument: a path, or a bundled fabric's name."""
    return str(topology_path(text))


def job_arg(text: str) -> str:
    """argparse `type=` for a job file argument: a path, or a bundled job's name."""
    return str(_bundled(text, jobs_dir()))
