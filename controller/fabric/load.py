"""Read a fabric file: YAML (with line numbers), then schema, then cross-field checks.

Every problem found is reported at once, each with its field path and, where the YAML
says, its line, so a user fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .checks import check_spec
from .errors import FabricError, FabricIssue
from .model import Fabric, build_fabric, plan_line_systems
from .schema import FabricSpec


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or mapping",
                key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (first on line {seen[key]})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def format_path(loc: tuple) -> str:
    """('dci_links', 1, 'a') -> 'dci_links[1].a'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The line of the YAML node at `loc`, or of its nearest ancestor that exists."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:  # an unknown key: point at the key itself
                child = next((k for k, _ in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _message(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing required field"
    if kind == "literal_error":
        return f"{error['msg'][0].lower()}{error['msg'][1:]} (got {error['input']!r})"
    if kind == "string_pattern_mismatch":
        return (f"{error['input']!r} is not a valid name: use letters, digits, '-', '_' and '.',"
                " starting with a letter or digit")
    return f"{error['msg'][0].lower()}{error['msg'][1:]} (got {error['input']!r})"


def _schema_issues(exc: ValidationError, root: yaml.Node | None) -> list[FabricIssue]:
    issues = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        # pydantic reports a missing field at the field; say which mapping lacks it.
        issues.append(FabricIssue(format_path(loc), _message(error), _line_of(root, loc)))
    return issues


def parse_fabric(text: str, source: str = "<fabric>") -> Fabric:
    """Parse and check a fabric file's text; raise FabricError listing every problem."""
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise FabricError(source, [FabricIssue("", f"YAML syntax error: {exc.problem}", line)]) \
            from None
    if not isinstance(data, dict):
        raise FabricError(source, [FabricIssue(
            "", "a fabric file must be a YAML mapping with name, sites and dci_links")])
    try:
        spec = FabricSpec.model_validate(data)
    except ValidationError as exc:
        raise FabricError(source, _schema_issues(exc, root)) from None
    # Optics planning reads only each link's own fields, so it runs even when references
    # are broken: one pass reports everything.
    plans, optics_issues = plan_line_systems(spec)
    issues = check_spec(spec) + optics_issues
    if not issues:
        fabric = build_fabric(spec, plans)
    if issues:
        raise FabricError(source, [
            FabricIssue(i.path, i.message, i.line or _line_of(root, _parse_path(i.path)))
            for i in issues])
    return fabric


def _parse_path(path: str) -> tuple:
    """'dci_links[1].a' -> ('dci_links', 1, 'a'): to find the line of a semantic issue."""
    loc: list = []
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(loc)


def load_fabric(path: str | Path) -> Fabric:
    """Read and check the fabric file at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FabricError(str(path), [FabricIssue("", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise FabricError(str(path), [FabricIssue(
            "", f"not a UTF-8 text file (byte {exc.start}): a fabric file is YAML text")]) from None
    return parse_fabric(text, str(path))
