"""Read a fabric file: YAML (with line numbers), then schema, then cross-field checks.

Every problem found is reported at once, each with its field path and, where the YAML
says, its line, so a user fixes a file in one pass instead of one error per run.

A fabric file is input from anyone, so reading one is bounded before it is expensive: the
file's size, then (on the node graph libyaml composed, before any Python object is built)
its nesting depth, its size with every alias expanded and the length of its numbers, then
(on the schema-valid spec, before expansion) how many switches, hosts and links it would
expand to. The file is parsed once, by libyaml (CSafeLoader).
"""

from __future__ import annotations

import datetime

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import ValidationError

from ..files import not_regular
from ..optics import DEFAULT_CATALOG, OpticsError
from .checks import check_spec
from .errors import MAX_ISSUES, FabricError, FabricIssue
from .model import Fabric, build_fabric, plan_line_systems
from .schema import (MAX_LINE_SYSTEMS, MAX_MODE_OVERRIDES, MAX_MODULE_OVERRIDES, MAX_SITES,
                     DciLinkSpec, FabricSpec, ModeOverride, ModuleOverride, SiteSpec)


MAX_FILE_BYTES = 4 << 20            # the largest repository fabric is under 1 KiB
MAX_DEPTH = 32                       # a fabric file nests 4 deep
MAX_NODES = 500_000                  # YAML nodes with aliases expanded (an alias bomb)
MAX_NUMBER_CHARS = 40                # longer digits than any sane figure
MAX_SWITCHES = 4096
MAX_HOSTS = 16384
MAX_LINKS = 65536                    # host, fabric and DCI (one per wavelength)

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml: ~10x faster


class _UniqueKeyLoader(_BaseLoader):
    """libyaml's SafeLoader that refuses a key given twice in one mapping (PyYAML keeps
    the last). Merge keys (`<<: *site`) work as in YAML 1.1: a key of the mapping itself
    overrides a merged one."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_mapping(loader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue          # `<<: *site`: merged by construct_mapping, own keys winning
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
# YAML 1.1 reads 1e-4, 8e1 and 1.0e9 as strings (it wants a dot and a sign: 1.0e+9); YAML
# 1.2 and everyone who writes a scale or a parameter count take them as numbers.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


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


def _shown(value) -> str:
    """A value for a message, cut short: errors never echo a megabyte of input."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}... ({len(text)} characters)"


def _message(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing required field"
    if kind == "literal_error":
        return f"{error['msg'][0].lower()}{error['msg'][1:]} (got {_shown(error['input'])})"
    if kind == "value_error":             # our own validators: their message as it is
        return f"{error['ctx']['error']} (got {_shown(error['input'])})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        # pydantic names its class ("instance of SiteSpec"), which the file never shows
        what = "a mapping" if kind == "dict_type" else "a mapping of fields"
        return f"expected {what} (got {_shown(error['input'])})"
    if kind == "too_long" and isinstance(error.get("ctx"), dict):
        return _too_long(error["loc"], error["ctx"]["actual_length"], error["ctx"]["max_length"])
    if kind == "too_short" and isinstance(error.get("ctx"), dict):
        what = _ENTRIES.get(error["loc"][-1] if error["loc"] else "", "entries")
        least = error["ctx"]["min_length"]
        if least == 1:                         # "at least 1 sites"
            what = what.removesuffix("s") if what != "entries" else "entry"
        return f"has {error['ctx']['actual_length']}; at least {least} {what}"
    if kind == "string_type" and isinstance(error.get("input"), (bool, int, float,
                                                                 datetime.date)):
        # YAML read `yes` or `2026-01-01` as a boolean or a date, and Python's repr of it
        # said nothing a user could act on (a hostile tester's)
        return (f"expected text, but YAML reads this as a {_YAML_KIND[type(error['input'])]}"
                f": put it in quotes")
    if kind == "string_pattern_mismatch":
        return (f"{_shown(error['input'])} is not a valid name: use letters, digits, '-', '_' and '.',"
                " starting with a letter or digit")
    return f"{error['msg'][0].lower()}{error['msg'][1:]} (got {_shown(error['input'])})"


_YAML_KIND = {bool: "boolean", int: "number", float: "number", datetime.date: "date",
              datetime.datetime: "timestamp"}
_ENTRIES = {"dci_links": "line systems", "sites": "sites", "srlg": "risk groups",
            "modules": "module overrides", "modes": "mode overrides"}


def _too_long(loc: tuple, length: int | None, limit: int) -> str:
    what = _ENTRIES.get(loc[-1] if loc else "", "entries")
    return f"{length} {what}; at most {limit}"


def _known_fields(model, loc: tuple) -> list[str]:
    """The field names of the mapping at `loc` under `model` (a pydantic model), following
    lists, dicts and optionals; [] where the path leaves the models."""
    keyed = False                             # the next part is a key of a mapping
    for part in loc:
        if isinstance(part, int) or keyed:    # a list entry or a mapping's value: same model
            keyed = False
            continue
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        inner = _model_in(field.annotation)
        if inner is None:
            return []
        model, keyed = inner, _maps_to_models(field.annotation)
    return list(model.model_fields)


def _maps_to_models(annotation) -> bool:
    """Whether an annotation is a mapping (`dict[str, ModuleOverride]`, or that | None)."""
    return typing.get_origin(annotation) is dict or any(
        typing.get_origin(arg) is dict for arg in typing.get_args(annotation))


def _model_in(annotation):
    """The pydantic model an annotation holds (`list[SiteSpec]`, `X | None`, ...), or None."""
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _schema_issues(exc: ValidationError, root: yaml.Node | None, prefix: tuple = (),
                   limit: int | None = None, model=None) -> list[FabricIssue]:
    """The issues of a validation error (its first `limit`), located under `prefix`. With
    the `model` validated, an unknown field close to a known one says "did you mean"."""
    issues = []
    for error in exc.errors()[:limit]:
        # a mapping's key that its own check refused: pydantic adds "[key]" to where it is
        loc = prefix + tuple(part for part in error["loc"] if part != "[key]")
        # pydantic reports a missing field at the field; say which mapping lacks it.
        message = _message(error)
        if model is not None and error["type"] == "extra_forbidden" and error["loc"]:
            known = _known_fields(model, tuple(error["loc"][:-1]))
            close = difflib.get_close_matches(str(error["loc"][-1]), known, 1, 0.6)
            if close:
                message += f"; did you mean {close[0]!r}?"
        issues.append(FabricIssue(format_path(loc), message, _line_of(root, loc)))
    return issues


def _line(node) -> int:
    return node.start_mark.line + 1


def _bound(root: yaml.Node, what: str = "a fabric file") -> FabricIssue | None:
    """The first limit the node graph breaks: depth, size with aliases expanded (an alias
    is the node it names met again, so a walk counts it again; the walk stops at the
    limit, so an alias bomb costs no more than a large file), or a number's length.
    Iterative: a deeply nested file must not overflow the stack here."""
    visits = 0
    stack = [(root, 1)]
    scalar, mapping = yaml.ScalarNode, yaml.MappingNode
    while stack:
        node, depth = stack.pop()
        visits += 1
        if visits > MAX_NODES:
            return FabricIssue("", f"expands to more than {MAX_NODES} YAML nodes (aliases "
                                   f"expanded): too large for {what}", _line(node))
        if depth > MAX_DEPTH:
            return FabricIssue("", f"nested more than {MAX_DEPTH} levels deep", _line(node))
        cls, value = node.__class__, node.value
        if cls is scalar:
            if len(value) > MAX_NUMBER_CHARS and node.tag in _NUMBER_TAGS:
                return FabricIssue("", f"a number of {len(value)} characters: at most "
                                       f"{MAX_NUMBER_CHARS}", _line(node))
        elif cls is mapping:
            for key, item in value:
                stack.append((key, depth + 1))
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in value)
    return None


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _expanded_size(spec: FabricSpec) -> list[FabricIssue]:
    """What the spec would expand to, against the limits (before expanding it)."""
    switches = sum(s.spines + s.leaves + s.gateways for s in spec.sites)
    hosts = sum(s.leaves * s.hosts_per_leaf for s in spec.sites)
    links = (hosts + sum(s.spines * (s.leaves + s.gateways) for s in spec.sites)
             + sum(d.wavelengths for d in spec.dci_links))
    return [FabricIssue("", f"the fabric expands to {n} {what}; at most {limit}")
            for n, what, limit in ((switches, "switches", MAX_SWITCHES),
                                   (hosts, "hosts", MAX_HOSTS),
                                   (links, "links (host, fabric and wavelengths)", MAX_LINKS))
            if n > limit]


_MAPPINGS = {FabricSpec: "a fabric file", SiteSpec: "a site", DciLinkSpec: "a DCI link",
             ModuleOverride: "a module override", ModeOverride: "a mode override"}


def _oversized(data: dict) -> list[FabricIssue]:
    """Mappings with more keys, and lists with more entries, than the schema allows,
    refused before pydantic reports on each (an error per unknown key or broken entry:
    500 000 of them cost 500 MB). pydantic refuses an over-long list itself before
    validating its entries; an over-full mapping it does not."""
    issues = []

    def fields(loc: tuple, mapping, model) -> None:
        # More keys than fields are counted, not each given to pydantic (an error per key
        # over nested mappings is tens of thousands); the first unknown ones are named.
        if isinstance(mapping, dict) and len(mapping) > len(model.model_fields):
            what = _MAPPINGS[model]
            unknown = [k for k in mapping if k not in model.model_fields]
            issues.append(FabricIssue(format_path(loc), (
                f"{len(mapping)} fields; {what} has at most {len(model.model_fields)} "
                f"({', '.join(model.model_fields)}); unknown: "
                f"{', '.join(str(k)[:40] for k in unknown[:3])}"
                + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""))))

    fields((), data, FabricSpec)
    for field, model, limit in (("sites", SiteSpec, MAX_SITES), ("dci_links", DciLinkSpec,
                                                          MAX_LINE_SYSTEMS)):
        entries = data.get(field)
        if isinstance(entries, list) and len(entries) <= limit:
            for i, entry in enumerate(entries):
                fields((field, i), entry, model)
    modules = data.get("modules")
    if isinstance(modules, dict):
        if len(modules) > MAX_MODULE_OVERRIDES:
            issues.append(FabricIssue("modules", _too_long(("modules",), len(modules),
                                                           MAX_MODULE_OVERRIDES)))
        else:
            for name, entry in modules.items():
                fields(("modules", str(name)), entry, ModuleOverride)
                modes = entry.get("modes") if isinstance(entry, dict) else None
                if isinstance(modes, dict) and len(modes) > MAX_MODE_OVERRIDES:
                    loc = ("modules", str(name), "modes")
                    issues.append(FabricIssue(format_path(loc), _too_long(
                        loc, len(modes), MAX_MODE_OVERRIDES)))
                elif isinstance(modes, dict):
                    for mode, figures in modes.items():
                        fields(("modules", str(name), "modes", str(mode)), figures, ModeOverride)
    return issues


def _validated(data: dict, root: yaml.Node | None, source: str) -> FabricSpec:
    """The schema-valid spec, or FabricError with the first MAX_ISSUES problems and the
    count of the rest. Line systems are validated one at a time, so 16 384 broken ones
    (each with 64 bad risk groups) never hold all their errors at once."""
    issues = _oversized(data)
    if issues:
        raise FabricError(source, [FabricIssue(i.path, i.message, _line_of(root, _parse_path(i.path)))
                                   for i in issues])
    links = data.get("dci_links")
    apart = isinstance(links, list) and len(links) <= MAX_LINE_SYSTEMS
    rest = {**data, "dci_links": []} if apart else data
    unlisted = 0
    spec = None
    try:
        spec = FabricSpec.model_validate(rest)
    except ValidationError as exc:
        issues = _schema_issues(exc, root, model=FabricSpec)
    # Keep the file's order: fields before dci_links, the links, then modules and extras.
    first = [_parse_path(i.path)[:1] in (("name",), ("scale",), ("sites",)) for i in issues]
    before = [i for i, is_first in zip(issues, first) if is_first]
    after = [i for i, is_first in zip(issues, first) if not is_first]
    validated = []
    for i, link in enumerate(links if apart else ()):
        try:
            validated.append(DciLinkSpec.model_validate(link))
        except ValidationError as exc:
            room = max(0, MAX_ISSUES + 1 - len(before))
            found = (_schema_issues(exc, root, ("dci_links", i), room, model=DciLinkSpec)
                     if room else [])
            before += found
            unlisted += exc.error_count() - len(found)
            before += _unknown_module(link, i, root, data)
    if before or after or unlisted:
        raise FabricError(source, before + after, unlisted)
    # Each part validated once: the line systems join the rest as they were validated
    # (FabricSpec has no check across its fields; check_spec does those).
    return spec.model_copy(update={"dci_links": validated}) if apart else spec


def _unknown_module(link: object, i: int, root: yaml.Node | None, data: dict
                    ) -> list[FabricIssue]:
    """A link the schema refused may name an unknown module too: said with its other
    errors, not after they are mended (a new user's). With `modules:` the catalog is the
    planner's to judge."""
    name = link.get("module") if isinstance(link, dict) else None
    if not isinstance(name, str) or "modules" in data:
        return []
    try:
        DEFAULT_CATALOG.module(name)
    except OpticsError as exc:
        loc = ("dci_links", i, "module")
        return [FabricIssue(f"dci_links[{i}].module", str(exc), _line_of(root, loc))]
    return []


# A file this small is composed at once; a larger one is first counted as events, which
# libyaml streams in constant memory: 4 MiB of `[1,1,...]` composed took 820 MB and 8 s
# before the node limit could refuse it (an outside tester).
PRESCAN_BYTES = 64 << 10


def _too_many_events(text: str, what: str) -> FabricIssue | None:
    """Past MAX_NODES before anything is composed: every node is one or two events."""
    if len(text) <= PRESCAN_BYTES:
        return None
    limit = 2 * MAX_NODES + 4                # stream and document start and end
    try:
        for count, _ in enumerate(yaml.parse(text, Loader=_BaseLoader), 1):
            if count > limit:
                return FabricIssue("", f"has more than {MAX_NODES} YAML nodes: {what} "
                                       f"is at most {MAX_NODES}")
    except yaml.YAMLError:
        return None                           # composing says where, with its line
    return None


def _read_yaml(text: str, source: str, what: str = "a fabric file"):
    """(root node, data): composed once by libyaml, bounded, then constructed. Job files
    are read the same way (`what` names the kind of file in messages)."""
    if len(text) > MAX_FILE_BYTES:
        raise FabricError(source, [FabricIssue(
            "", f"{len(text)} characters: {what} is at most {MAX_FILE_BYTES} bytes")])
    too_many = _too_many_events(text, what)
    if too_many is not None:
        raise FabricError(source, [too_many])
    loader = _UniqueKeyLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise FabricError(source, [FabricIssue(
                "", f"YAML syntax error: {exc.problem}", mark.line + 1 if mark else None)]) \
                from None
        except yaml.reader.ReaderError as exc:   # a NUL or other unprintable character
            line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
            what_char = (f"character U+{exc.character:04X}" if isinstance(exc.character, int)
                         else f"character {exc.character!r}")
            raise FabricError(source, [FabricIssue(
                "", f"not a YAML text: {what_char} is not allowed in YAML (a control "
                    f"character)", line)]) from None
        except yaml.YAMLError as exc:
            raise FabricError(source, [FabricIssue(
                "", f"not a YAML text: {' '.join(str(exc).split())[:200]}")]) from None
        if root is None:
            return None, None
        problem = _bound(root, what)
        if problem is not None:
            raise FabricError(source, [problem])
        try:
            return root, loader.construct_document(root)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise FabricError(source, [FabricIssue(
                "", f"YAML error: {exc.problem}", mark.line + 1 if mark else None)]) from None
        except (ValueError, TypeError, RecursionError) as exc:
            raise FabricError(source, [FabricIssue(
                "", f"cannot read a value: {' '.join(str(exc).split())[:200]}")]) from None
    finally:
        loader.dispose()


def parse_fabric(text: str, source: str = "<fabric>",
                 progress: Callable[[int, int], None] | None = None) -> Fabric:
    """Parse and check a fabric file's text; raise FabricError listing every problem.
    `progress(done, total)`: line systems through the optical model so far."""
    root, data = _read_yaml(text, source)
    if not isinstance(data, dict):
        raise FabricError(source, [FabricIssue(
            "", "a fabric file must be a YAML mapping with name, sites and dci_links")])
    if "dci_links" not in data and {"model", "distances_km"} <= data.keys():
        raise FabricError(source, [FabricIssue(
            "", "this is a training job file (it has model and distances_km), not a fabric: "
                "`dcilab plan` plans it, and its --fabric-out writes a fabric for it")])
    spec = _validated(data, root, source)
    too_large = _expanded_size(spec)
    if too_large:
        raise FabricError(source, too_large)
    # Optics planning reads only each link's own fields, so it runs even when references
    # are broken: one pass reports everything.
    plans, optics_issues = plan_line_systems(spec, progress)
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


def load_fabric(path: str | Path, progress: Callable[[int, int], None] | None = None
                ) -> Fabric:
    """Read and check the fabric file at `path`."""
    return parse_fabric(read_text(path), str(path), progress)


def read_text(path: str | Path, what: str = "a fabric file") -> str:
    """The UTF-8 text of the YAML file at `path` (a fabric or job file, as `what` says),
    read up to the size limit; FabricError naming the file if it cannot be."""
    try:
        _regular(path, os.stat(path).st_mode)
        # O_NONBLOCK: were it swapped for a FIFO since, opening must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:            # at most the limit, whatever it has become
            _regular(path, os.fstat(fd).st_mode)
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise FabricError(str(path), [FabricIssue(
                "", f"over {MAX_FILE_BYTES} bytes: {what} is at most that")])
        return raw.decode("utf-8")
    except OSError as exc:
        raise FabricError(str(path), [FabricIssue("", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise FabricError(str(path), [FabricIssue(
            "", f"not a UTF-8 text file (byte {exc.start}): {what} is YAML text")]) from None


def _regular(path: str | Path, mode: int) -> None:
    """FabricError unless `mode` is a regular file's: a FIFO would block the read forever
    and /dev/zero never end it."""
    kind = not_regular(mode)
    if kind is not None:
        raise FabricError(str(path), [FabricIssue(
            "", f"cannot read: {kind}, not a regular file; give the path of a YAML file")])
