"""Reading a fabric file: most tests are "this file must fail with this message".

Each bad file is a small change to a known-good fabric, so the one thing wrong with it is
the thing under test; the error must name the field path and say what is wrong.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from dcilab.fabric import FabricError, load_fabric, parse_fabric

# Two sites, two line systems between them (so `dci_links[1]` exists).
GOOD = {
    "name": "t",
    "sites": [
        {"name": "dc1", "spines": 2, "leaves": 2, "hosts_per_leaf": 2, "gateways": 2},
        {"name": "dc2", "spines": 2, "leaves": 2, "hosts_per_leaf": 2, "gateways": 2},
    ],
    "dci_links": [
        {"name": "l1", "a": "dc1", "b": "dc2", "fiber_km": 80, "module": "400ZR",
         "wavelengths": 4},
        {"name": "l2", "a": "dc1", "b": "dc2", "fiber_km": 60, "module": "400ZR",
         "wavelengths": 2},
    ],
}


def text_of(data) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def changed(edit) -> str:
    """The good fabric's text after `edit(data)` has changed a copy of it."""
    data = copy.deepcopy(GOOD)
    edit(data)
    return text_of(data)


def issues_of(text: str, source: str = "f.yaml"):
    with pytest.raises(FabricError) as info:
        parse_fabric(text, source)
    return info.value.issues


def issue_at(text: str, *paths: str):
    """The one issue reported at any of `paths` (several spellings may be acceptable)."""
    issues = issues_of(text)
    found = [i for i in issues if i.path in paths]
    assert found, f"no issue at {paths}; got {[i.to_dict() for i in issues]}"
    return found[0]


def test_the_good_fabric_is_good():
    fabric = parse_fabric(text_of(GOOD))
    assert len(fabric.spec.dci_links) == 2


# --- bad files: (edit, acceptable paths, words the message must contain) ---------------

def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(data):
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


def _delete(*keys):
    def edit(data):
        node = data
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return edit


def _rename(*keys_and_new):
    *keys, new = keys_and_new

    def edit(data):
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[new] = node.pop(keys[-1])
    return edit


def _both(*edits):
    def edit(data):
        for e in edits:
            e(data)
    return edit


BAD = {
    "unknown top-level field": (_set("colour", "blue"), ["colour"], ["unknown"]),
    "unknown site field (typo spine)": (_rename("sites", 0, "spines", "spine"),
                                        ["sites[0].spine"], ["unknown"]),
    "unknown link field": (_set("dci_links", 1, "fibre_km", 3), ["dci_links[1].fibre_km"],
                           ["unknown"]),
    "unknown module override field": (_set("modules", {"400ZR": {"watts": 3}}),
                                      ["modules.400ZR.watts"], ["unknown"]),
    "missing site field": (_delete("sites", 1, "leaves"), ["sites[1].leaves"], ["missing"]),
    "missing link field": (_delete("dci_links", 1, "module"), ["dci_links[1].module"],
                           ["missing"]),
    "missing top-level name": (_delete("name"), ["name"], ["missing"]),
    "missing sites": (_delete("sites"), ["sites"], ["missing"]),
    "wrong type spines: two": (_set("sites", 0, "spines", "two"), ["sites[0].spines"],
                               ["two", "integer"]),
    "wrong type fiber_km": (_set("dci_links", 1, "fiber_km", "far"), ["dci_links[1].fiber_km"],
                            ["far"]),
    "sites not a list": (_set("sites", "dc1"), ["sites"], ["dc1"]),
    "no sites": (_set("sites", []), ["sites"], ["1"]),
    "zero spines": (_set("sites", 0, "spines", 0), ["sites[0].spines"], ["0"]),
    "zero leaves": (_set("sites", 1, "leaves", 0), ["sites[1].leaves"], ["0"]),
    "negative hosts_per_leaf": (_set("sites", 0, "hosts_per_leaf", -2),
                                ["sites[0].hosts_per_leaf"], ["-2"]),
    "zero gateways": (_set("sites", 0, "gateways", 0), ["sites[0].gateways"], ["0"]),
    "negative fabric_gbps": (_set("sites", 0, "fabric_gbps", -400), ["sites[0].fabric_gbps"],
                             ["-400"]),
    "zero fiber_km": (_set("dci_links", 1, "fiber_km", 0), ["dci_links[1].fiber_km"], ["0"]),
    "negative fiber_km": (_set("dci_links", 1, "fiber_km", -80), ["dci_links[1].fiber_km"],
                          ["-80"]),
    # Beyond physics: refused at once, not minutes of GNPy over a million spans.
    "fiber_km beyond the Earth": (_set("dci_links", 1, "fiber_km", 1e9),
                                  ["dci_links[1].fiber_km"], ["40000"]),
    "a million spans": (_both(_set("dci_links", 1, "fiber_km", 1000),
                              _set("dci_links", 1, "span_km", 1.5)),
                        ["dci_links[1].span_km"], ["667 spans", "at most 500 spans"]),
    "attenuation beyond any fibre": (_set("dci_links", 1, "attenuation_db_per_km", 100.0),
                                     ["dci_links[1].attenuation_db_per_km"], ["1"]),
    "noise figure beyond any amplifier": (_set("dci_links", 1, "amplifier_nf_db", 1000),
                                          ["dci_links[1].amplifier_nf_db"], ["20"]),
    "noise figure below an EDFA's quantum limit": (
        _set("dci_links", 1, "amplifier_nf_db", 2), ["dci_links[1].amplifier_nf_db"], ["3"]),
    "dispersion next to nothing": (_set("dci_links", 1, "dispersion_ps_nm_km", 1e-300),
                                   ["dci_links[1].dispersion_ps_nm_km"], ["0.1"]),
    "zero wavelengths": (_set("dci_links", 1, "wavelengths", 0), ["dci_links[1].wavelengths"],
                         ["0"]),
    "zero span_km": (_set("dci_links", 1, "span_km", 0), ["dci_links[1].span_km"], ["0"]),
    "zero scale": (_set("scale", 0), ["scale"], ["0"]),
    "negative scale": (_set("scale", -1e-4), ["scale"], ["-0.0001"]),
    "scale above 1": (_set("scale", 2), ["scale"], ["2"]),
    "zero gateway pin": (_set("dci_links", 1, "a_gateway", 0), ["dci_links[1].a_gateway"],
                         ["0"]),
    "negative module power": (_set("modules", {"400ZR": {"power_w": -3}}),
                              ["modules.400ZR.power_w"], ["-3"]),
    "unknown site in a": (_set("dci_links", 1, "a", "dc9"), ["dci_links[1].a"], ["dc9"]),
    "unknown site in b": (_set("dci_links", 0, "b", "dc7"), ["dci_links[0].b"], ["dc7"]),
    "a == b": (_set("dci_links", 1, "b", "dc1"),
               ["dci_links[1]", "dci_links[1].a", "dci_links[1].b"], ["dc1"]),
    "duplicate site name": (_both(_set("sites", 1, "name", "dc1"),
                                  _set("dci_links", 0, "b", "dc1")),
                            ["sites[1].name"], ["dc1"]),
    "duplicate link name": (_set("dci_links", 1, "name", "l1"), ["dci_links[1].name"], ["l1"]),
    "a risk group listed twice": (_set("dci_links", 0, "srlg", ["duct", "bridge", "duct"]),
                                  ["dci_links[0].srlg[2]"], ["duct", "twice"]),
    "a_gateway beyond the site's gateways": (_set("dci_links", 1, "a_gateway", 3),
                                             ["dci_links[1].a_gateway"], ["dc1", "3", "2"]),
    "b_gateway beyond the site's gateways": (_set("dci_links", 0, "b_gateway", 5),
                                             ["dci_links[0].b_gateway"], ["dc2", "5", "2"]),
    "too many hosts (2 x 128 = 256)": (_set("sites", 1, "hosts_per_leaf", 128),
                                       ["sites[1]", "sites[1].hosts_per_leaf"],
                                       ["256", "254"]),
    "too many hosts (255 leaves x 1)": (_both(_set("sites", 0, "leaves", 255),
                                              _set("sites", 0, "hosts_per_leaf", 1)),
                                        ["sites[0]", "sites[0].leaves"], ["255", "254"]),
    "sites not all connected": (lambda data: data["sites"].append(
                                    {"name": "dc3", "spines": 1, "leaves": 1, "hosts_per_leaf": 1}),
                                ["dci_links"], ["dc3"]),
    "two sites without DCI links": (_set("dci_links", []), ["dci_links"], ["dc1", "dc2"]),
    "unknown module": (_set("dci_links", 1, "module", "400ZRX"),
                       ["dci_links[1]", "dci_links[1].module"], ["400ZRX", "400ZR+", "800ZR"]),
    "400ZR over 200 km (dispersion)": (_set("dci_links", 1, "fiber_km", 200), ["dci_links[1]"],
                                       ["3400", "2400", "ps/nm"]),
    "65 x 400ZR in the C band": (_set("dci_links", 1, "wavelengths", 65),
                                 ["dci_links[1]", "dci_links[1].wavelengths"], ["65", "64"]),
    "unknown mode": (_set("dci_links", 1, "mode", "300G"), ["dci_links[1]", "dci_links[1].mode"],
                     ["300G", "400G"]),
    "unknown modules override name": (_set("modules", {"400ZRX": {"power_w": 3}}),
                                      ["modules", "modules.400ZRX"], ["400ZRX"]),
    "bad band": (_set("dci_links", 1, "band", "X"), ["dci_links[1].band"], ["X", "C+L"]),
    "site name with a space": (_both(_set("sites", 0, "name", "dc 1")),
                               ["sites[0].name"], ["dc 1"]),
    "site name with a slash": (_set("sites", 1, "name", "dc/2"), ["sites[1].name"], ["dc/2"]),
    "site name starting with a dash": (_set("sites", 1, "name", "-dc2"), ["sites[1].name"],
                                       ["-dc2"]),
    "link name with a colon": (_set("dci_links", 0, "name", "l:1"), ["dci_links[0].name"],
                               ["l:1"]),
    "fabric name with a space": (_set("name", "my fabric"), ["name"], ["my fabric"]),
    "site name of 49 characters": (_set("sites", 1, "name", "d" * 49), ["sites[1].name"],
                                   ["48"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_names_the_field_and_the_problem(case):
    edit, paths, words = BAD[case]
    issue = issue_at(changed(edit), *paths)
    for word in words:
        assert word in issue.message, (case, issue)


def test_a_typo_for_a_required_field_reports_both_the_unknown_and_the_missing_field():
    issues = issues_of(changed(_rename("sites", 0, "spines", "spine")))
    assert {i.path for i in issues} >= {"sites[0].spine", "sites[0].spines"}
    [typo] = [i for i in issues if i.path == "sites[0].spine"]
    assert typo.message == "unknown field; did you mean 'spines'?"


@pytest.mark.parametrize("edit, path, meant", [
    (_rename("dci_links", 0, "fiber_km", "fibre_km"), "dci_links[0].fibre_km", "fiber_km"),
    (_set("scal", 1e-4), "scal", "scale"),
    (_set("sites", 1, "gatways", 2), "sites[1].gatways", "gateways"),
    (_set("dci_links", 0, "spn_km", 50), "dci_links[0].spn_km", "span_km"),
])
def test_an_unknown_field_close_to_a_known_one_says_which(edit, path, meant):
    assert issue_at(changed(edit), path).message == f"unknown field; did you mean {meant!r}?"
    nothing_close = issue_at(changed(_set("sites", 1, "colour", "red")), "sites[1].colour")
    assert nothing_close.message == "unknown field"


def test_an_infinite_rate_is_an_error():
    # fiber_km: .inf is refused (the optics want finite figures); a rate must be finite too,
    # or `check --json` prints Infinity, which is not JSON.
    issue_at(changed(_set("sites", 0, "fabric_gbps", float("inf"))), "sites[0].fabric_gbps")


def test_every_problem_in_the_file_is_reported_at_once_schema():
    text = changed(_both(_set("sites", 0, "spine", 2),
                         _set("sites", 1, "spines", "two"),
                         _set("dci_links", 1, "band", "X"),
                         _delete("dci_links", 0, "module")))
    paths = {i.path for i in issues_of(text)}
    assert paths >= {"sites[0].spine", "sites[1].spines", "dci_links[1].band",
                     "dci_links[0].module"}


def test_a_link_the_schema_refuses_says_its_unknown_module_too():
    """A new user's: the module's error came only after the field typo was mended."""
    text = changed(_both(_rename("dci_links", 0, "fiber_km", "fibre_km"),
                         _set("dci_links", 0, "module", "400ZRR")))
    assert "unknown module '400ZRR'" in issue_at(text, "dci_links[0].module").message
    issue_at(text, "dci_links[0].fibre_km")


def test_every_problem_in_the_file_is_reported_at_once_references():
    text = changed(_both(_set("sites", 1, "hosts_per_leaf", 200),
                         _set("dci_links", 1, "name", "l1"),
                         _set("dci_links", 1, "a_gateway", 9),
                         _set("dci_links", 0, "b", "nowhere")))
    paths = {i.path for i in issues_of(text)}
    assert {"dci_links[1].name", "dci_links[1].a_gateway", "dci_links[0].b"} <= paths
    assert paths & {"sites[1]", "sites[1].hosts_per_leaf"}


def test_every_problem_in_the_file_is_reported_at_once_references_and_optics():
    # An unknown site in one link and an infeasible line in another: independent problems,
    # both must be reported so the user fixes the file in one pass.
    text = changed(_both(_set("dci_links", 0, "b", "nowhere"),
                         _set("dci_links", 1, "fiber_km", 200)))
    paths = {i.path for i in issues_of(text)}
    assert {"dci_links[0].b", "dci_links[1]"} <= paths


def test_error_text_names_file_path_and_problem():
    with pytest.raises(FabricError) as info:
        parse_fabric(changed(_set("dci_links", 1, "a", "dc9")), "fabrics/mine.yaml")
    text = str(info.value)
    line = next(l for l in text.splitlines() if "dci_links[1].a" in l)
    assert line.startswith("fabrics/mine.yaml")
    assert "dc9" in line
    assert info.value.source == "fabrics/mine.yaml"


# --- line numbers -----------------------------------------------------------------------

SYNTAX_ERROR = """\
name: t
sites:
  - name: dc1
    spines: 2
    leaves: 2: 3
    hosts_per_leaf: 2
"""


def test_yaml_syntax_error_has_its_line():
    issues = issues_of(SYNTAX_ERROR)
    assert len(issues) == 1
    assert issues[0].line == 5
    assert "YAML" in issues[0].message
    assert "f.yaml:5" in str(FabricError("f.yaml", issues))


def test_unclosed_flow_sequence_is_a_syntax_error_not_a_crash():
    issues = issues_of("name: t\nsites: [\n  {name: dc1, spines: 1\n")
    assert len(issues) == 1 and issues[0].line is not None


def test_a_tab_for_indentation_is_a_syntax_error_on_its_line():
    text = "name: t\nsites:\n  - name: dc1\n\tspines: 2\n"
    assert issues_of(text)[0].line == 4


DUPLICATE_KEY = """\
name: t
sites:
  - name: dc1
    spines: 2
    leaves: 2
    spines: 3
    hosts_per_leaf: 2
"""


def test_duplicated_key_is_an_error_with_both_lines():
    issues = issues_of(DUPLICATE_KEY)
    assert len(issues) == 1
    assert issues[0].line == 6
    assert "spines" in issues[0].message
    assert "4" in issues[0].message  # where it was first given


def test_duplicated_top_level_key():
    issues = issues_of("name: t\nname: u\nsites: []\n")
    assert issues[0].line == 2 and "name" in issues[0].message


MERGED_SITES = """\
name: t
sites:
  - &site {name: dc1, spines: 1, leaves: 1, hosts_per_leaf: 1}
  - <<: *site
    name: dc2
    leaves: 2
dci_links:
  - {name: l1, a: dc1, b: dc2, fiber_km: 40, module: 400ZR, wavelengths: 1}
"""


def test_a_merge_key_copies_a_site_and_its_own_keys_win():
    fabric = parse_fabric(MERGED_SITES)
    dc2 = next(s for s in fabric.spec.sites if s.name == "dc2")
    assert (dc2.spines, dc2.leaves, dc2.hosts_per_leaf) == (1, 2, 1)


def test_a_merge_of_something_not_a_mapping_and_a_key_twice_beside_a_merge_are_errors():
    issues = issues_of(MERGED_SITES.replace("<<: *site", "<<: 5"))
    assert issues[0].line == 4 and "merg" in issues[0].message
    issues = issues_of(MERGED_SITES.replace("leaves: 2", "name: dc3"))
    assert issues[0].line == 6 and "'name' appears twice" in issues[0].message


UNKNOWN_FIELD_AT_LINE_7 = """\
name: t
sites:
  - name: dc1
    spines: 1
    leaves: 1
    hosts_per_leaf: 1
    colour: blue
"""


def test_schema_issues_carry_the_line_of_the_field():
    issue = issue_at(UNKNOWN_FIELD_AT_LINE_7, "sites[0].colour")
    assert issue.line == 7


def test_reference_issues_carry_the_line_of_the_field():
    text = """\
name: t
sites:
  - {name: dc1, spines: 1, leaves: 1, hosts_per_leaf: 1}
  - {name: dc2, spines: 1, leaves: 1, hosts_per_leaf: 1}
dci_links:
  - name: l1
    a: dc1
    b: dc3
    fiber_km: 10
    module: 400ZR
    wavelengths: 1
"""
    assert issue_at(text, "dci_links[0].b").line == 8


def test_a_complex_yaml_key_is_an_error_not_a_crash():
    # PyYAML's own SafeLoader reports "found unhashable key"; the duplicate-key check must too.
    issues = issues_of("name: t\n[a, b]: 1\n")
    assert issues and issues[0].line == 2


# --- not a fabric at all ------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n# only a comment\n", "- a\n- b\n", "hello\n", "42\n"],
                         ids=["empty", "comment only", "a list", "a string", "a number"])
def test_not_a_mapping(text):
    issues = issues_of(text)
    assert len(issues) == 1
    assert "mapping" in issues[0].message


def test_file_not_found(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(FabricError) as info:
        load_fabric(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
    assert "No such file" in info.value.issues[0].message


def test_a_directory_is_not_a_fabric_file(tmp_path):
    with pytest.raises(FabricError) as info:
        load_fabric(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_a_file_that_is_not_utf8_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(FabricError) as info:
        load_fabric(path)
    assert str(path) in str(info.value)


def test_load_fabric_reads_a_good_file(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(text_of(GOOD))
    assert load_fabric(path).name == "t"
    assert load_fabric(str(path)).name == "t"


@pytest.mark.parametrize("name", ["two-dc.yaml", "four-dc-ring.yaml"])
def test_repository_topologies_load(name):
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    fabric = load_fabric(root / "topologies" / name)
    assert fabric.name == name.removesuffix(".yaml")


def test_exponents_without_a_dot_or_sign_are_numbers():
    # YAML 1.1 reads 1e-4 and 8e1 as strings; people write them for scales and lengths.
    text = text_of(GOOD).replace("fiber_km: 80", "fiber_km: 8e1")
    fabric = parse_fabric("scale: 1e-4\n" + text)
    assert fabric.spec.scale == 1e-4 and fabric.spec.dci_links[0].fiber_km == 80.0
