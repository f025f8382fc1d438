"""Read a job file's text: YAML (with line numbers), then schema, then cross-field checks.

As for fabric files, every problem is reported at once with its field path and line; the
YAML handling (libyaml, one parse, size, depth and alias limits, duplicate keys, line
lookup, pydantic messages) is the fabric loader's. `parse_job` is pure; `read_job` reads
the file (as `fabric.load.read_text` reads a fabric file).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from ..fabric.errors import FabricError, FabricIssue
from ..fabric.load import _line_of, _parse_path, _read_yaml, _schema_issues, read_text
from ..optics import DEFAULT_CATALOG
from .schema import JobSpec

JobIssue = FabricIssue


class JobError(ValueError):
    """A job file that cannot be planned; carries every issue found, not just the first."""

    def __init__(self, source: str, issues: list[JobIssue]):
        self.source = source
        self.issues = list(issues)
        super().__init__("\n".join(issue.format(source) for issue in self.issues))


@dataclass(frozen=True)
class Job:
    """A checked job: its spec, and the fibre distance of every site pair it gave."""

    spec: JobSpec
    distances: dict[frozenset, float]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def site_names(self) -> list[str]:
        return [s.name for s in self.spec.sites]

    def km(self, a: str, b: str) -> float:
        return self.distances[frozenset((a, b))]


def read_job(path) -> Job:
    """The checked job at `path`; JobError (naming the file) if it cannot be read or used."""
    try:
        text = read_text(path, "a job file")
    except FabricError as exc:
        raise JobError(exc.source, exc.issues) from None
    return parse_job(text, str(path))


def parse_job(text: str, source: str = "<job>") -> Job:
    """Parse and check a job file's text; raise JobError listing every problem."""
    try:
        root, data = _read_yaml(text, source, "a job file")
    except FabricError as exc:
        raise JobError(source, exc.issues) from None
    if not isinstance(data, dict):
        raise JobError(source, [JobIssue(
            "", "a job file must be a YAML mapping with name, model, sites, distances_km, "
                "step and target_compute_utilization")])
    if "model" not in data and "dci_links" in data:
        raise JobError(source, [JobIssue(
            "", "this is a fabric file (it has dci_links), not a training job: "
                "`dcilab check` checks it, `dcilab train FABRIC --job JOB` runs a job on it")])
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise JobError(source, _schema_issues(exc, root, model=JobSpec)) from None
    distances, issues = _check(spec)
    if issues:
        raise JobError(source, [
            JobIssue(i.path, i.message, _key_line(root, _parse_path(_near(root, i.path))))
            for i in issues])
    return Job(spec, distances)


# A section that is missing has no line: point at the field that asks for it.
NEAR = {"diloco": "sync", "pipeline": "across_sites"}


def _near(root: yaml.Node, path: str) -> str:
    """Where to point for `path`: itself if the file has it (a section given without the
    field that asks for it was said at line 1: an ML-infra tester's), else `NEAR`'s."""
    given = isinstance(root, yaml.MappingNode) and any(k.value == path for k, _ in root.value)
    return path if given else NEAR.get(path, path)


def _key_line(root: yaml.Node, loc: tuple) -> int | None:
    """The line of the key at `loc` (of its nearest ancestor that exists): where a reader
    looks for a field, rather than where its value starts."""
    line, node = None, root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == part), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        else:
            return _line_of(root, loc)
    return line if line is not None else _line_of(root, loc)


def needed_pairs(spec: JobSpec) -> list[tuple[str, str]]:
    """The site pairs the job's traffic crosses, in ring order: (site, its successor).

    Data parallel is a ring over the sites (two sites: one pair, both directions);
    a pipeline is a chain of stages, one site after the other.
    """
    names = [s.name for s in spec.sites]
    if spec.across_sites == "pipeline":
        return list(zip(names, names[1:]))
    if len(names) == 2:
        return [(names[0], names[1])]
    return [(names[i], names[(i + 1) % len(names)]) for i in range(len(names))]


def _check(spec: JobSpec) -> tuple[dict[frozenset, float], list[JobIssue]]:
    issues: list[JobIssue] = []
    names = [s.name for s in spec.sites]
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            issues.append(JobIssue(f"sites[{i}].name",
                                   f"name {name!r} is already used by sites[{first[name]}]"))
        first.setdefault(name, i)

    distances: dict[frozenset, float] = {}
    named: set[frozenset] = set()       # given, even if wrongly (said once, not as missing)
    for a, row in spec.distances_km.items():
        if a not in first:
            issues.append(JobIssue(f"distances_km.{a}",
                                   f"unknown site {a!r} (sites: {', '.join(names)})"))
            continue
        for b, km in row.items():
            where = f"distances_km.{a}.{b}"
            named.add(frozenset((a, b)))
            if b not in first:
                issues.append(JobIssue(where, f"unknown site {b!r} (sites: {', '.join(names)})"))
            elif a == b:
                issues.append(JobIssue(where, "a distance joins two different sites"))
            elif frozenset((a, b)) in distances:
                if distances[frozenset((a, b))] != float(km):    # the same figure twice is fine
                    issues.append(JobIssue(
                        where, f"the distance between {a} and {b} is given twice, as "
                               f"{distances[frozenset((a, b))]:g} and {km:g} km"))
            else:
                distances[frozenset((a, b))] = float(km)
    if len(first) == len(names):        # the pairs a job needs are known: all said at once
        for a, b in needed_pairs(spec):
            if frozenset((a, b)) not in named:
                issues.append(JobIssue(
                    "distances_km", f"missing the fibre route length between {a} and {b} "
                                    f"(write `{a}: {{{b}: KM}}`)"))

    if spec.target_compute_utilization == 1 and spec.step.overlap_s == 0:
        issues.append(JobIssue("target_compute_utilization",
                               "1 means the sync hides entirely in the compute it overlaps: "
                               "give step.overlap_s (> 0), or a utilization under 1"))
    if spec.sync == "diloco" and spec.diloco is None:
        issues.append(JobIssue("diloco", "sync: diloco needs a `diloco` section with "
                                         "inner_steps and bytes_per_parameter"))
    if spec.sync != "diloco" and spec.diloco is not None:
        issues.append(JobIssue("diloco", "a `diloco` section is only read with sync: diloco"))
    if spec.across_sites == "pipeline":
        if spec.pipeline is None:
            issues.append(JobIssue("pipeline", "across_sites: pipeline needs a `pipeline` section "
                                               "with micro_batches, tokens_per_micro_batch, "
                                               "hidden and bytes_per_value"))
        if spec.sync == "diloco":
            issues.append(JobIssue("sync", "a pipeline across sites syncs its gradients inside "
                                           "each site; sync: diloco applies to data parallel"))
    elif spec.pipeline is not None:
        issues.append(JobIssue("pipeline", "a `pipeline` section is only read with "
                                           "across_sites: pipeline"))
    if spec.step.overlap_s > spec.step.compute_s:
        issues.append(JobIssue("step.overlap_s", f"the sync can overlap at most the step's "
                                                 f"compute ({spec.step.compute_s:g} s), got "
                                                 f"{spec.step.overlap_s:g} s"))

    if not [m for m in DEFAULT_CATALOG.names
            if spec.modules.get(m) is None or spec.modules[m].available]:
        issues.append(JobIssue("modules", "every module is marked unavailable"))
    return distances, issues
