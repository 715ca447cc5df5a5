"""Golden tests of `rulelang explain --format json` for three records of
examples/stockholm-2021.json.

The golden files in tests/golden/ were generated once with

    RULELANG_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden.py

and reviewed by eye against the provisions of rulebooks/stockholm/hlv-2021.md and of
rulebooks/stockholm/hlv-2016.md, which it amends (since the amendment the inputs cite the
table fields declared in hlv-2016.md; the values and the shape of the trees did not change).
Each test also asserts the facts that matter on the tree itself, and every node's source
line is checked against the rulebook text, so a golden file regenerated from a wrong
evaluator does not pass by confirming itself.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import rulelang
from rulelang import render
from rulelang.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
BOOK = "stockholm/hlv-2021"
EXAMPLE = "examples/stockholm-2021.json"
UPDATE = os.environ.get("RULELANG_UPDATE_GOLDEN") == "1"

CASES = {
    "avdrag-V1": ("avdrag", "V1"),
    "tillaggsersattning-V3": ("tilläggsersättning", "V3"),
    "tillaggsersattning-V4": ("tilläggsersättning", "V4"),
}


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    # Sources in the tree are paths relative to the working directory: run from the repo root.
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("RULELANG_PATH", raising=False)


def explain_cli(capsys, output: str, record: str) -> str:
    code = main(["explain", BOOK, "--input", EXAMPLE, "--output", output, "--record", record,
                 "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    return captured.out


def golden(name: str, produced: str) -> str:
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(produced, encoding="utf-8")
    return path.read_text(encoding="utf-8")


def walk(node):
    yield node
    for child in node["children"]:
        yield from walk(child)


def child(node, kind: str, label: str):
    found = [c for c in node["children"] if c["kind"] == kind and c["label"] == label]
    assert len(found) == 1, (kind, label, [(c["kind"], c["label"]) for c in node["children"]])
    return found[0]


def nodes(tree, kind: str, label: str) -> list:
    return [n for n in walk(tree) if n["kind"] == kind and n["label"] == label]


def source_line(node) -> tuple[str, str]:
    """The rulebook file a node cites and the text of the line it cites."""
    match = re.fullmatch(r"(rulebooks/stockholm/hlv-20(?:16|21)\.md):(\d+)", node["source"])
    assert match, node["source"]
    lines = (ROOT / match.group(1)).read_text(encoding="utf-8").splitlines()
    return match.group(1), lines[int(match.group(2)) - 1].strip()


@pytest.mark.parametrize("name", list(CASES))
def test_every_golden_node_cites_the_line_it_comes_from(name):
    """Regenerated golden files carry new line numbers: check each against the rulebooks."""
    tree = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    for node in walk(tree):
        file, line = source_line(node)
        kind, label = node["kind"], node["label"]
        if kind in ("rule", "exception"):
            assert line.startswith(f"{kind} {label} "), (label, line)
        elif kind == "output":
            # The output cites what decided it: the deciding rule or exception.
            assert re.match(rf"(rule|exception) {node['decided_by']} ", line), line
        elif kind == "condition":
            assert line.startswith("when "), line
        elif kind == "formula":
            assert line.startswith("then "), line
        elif kind == "parameter":
            assert line.startswith("value "), line
        elif kind == "definition":
            assert line.startswith(f"definition {label} "), line
        elif kind == "lookup":
            assert label in line, (label, line)
        elif kind == "input":
            # The tables are the 2016 rulebook's, inherited by the 2021 one.
            assert file == "rulebooks/stockholm/hlv-2016.md", node["source"]
            assert line.startswith(f"field {label.split('.')[1]}: "), line
        if kind != "input":
            # Nothing that decides these outputs is inherited: all of it is STH21.6 and the
            # 2021 interpretations.
            assert file == "rulebooks/stockholm/hlv-2021.md", (kind, label)


@pytest.mark.parametrize("name", list(CASES))
def test_explanation_matches_golden(capsys, name):
    output, record = CASES[name]
    produced = explain_cli(capsys, output, record)
    assert produced == golden(name, produced)


@pytest.mark.parametrize("name", list(CASES))
def test_explanation_is_byte_identical_across_runs_and_loads(capsys, name):
    output, record = CASES[name]
    first = explain_cli(capsys, output, record)
    second = explain_cli(capsys, output, record)
    assert first == second
    # Two separately loaded Rulebook objects, through the API, give the same bytes as the CLI.
    book_a = rulelang.load(BOOK)
    book_b = rulelang.load(BOOK)
    assert book_a is not book_b and book_a.program is not book_b.program
    text_a = render.explanation_json(book_a.explain(EXAMPLE, output, record))
    text_b = render.explanation_json(book_b.explain(EXAMPLE, output, record))
    assert text_a == text_b == first
    # Explaining again on the same book (after other explanations) changes nothing.
    book_a.explain(EXAMPLE, "avdrag", "V5")
    assert render.explanation_json(book_a.explain(EXAMPLE, output, record)) == first


def test_golden_avdrag_v1():
    """V1: P1 (listed at A) has a physical visit at the clinic C on 2021-09-15, general
    assignment. STH21.6.4: from 2021-09-01 each physical visit of an own listed patient at
    another clinic gives a deduction of 300 kr → −300.00, charged to A (the listing clinic).
    None of the exceptions applies: the koncern exemption is off (reading 1) and A (K1) and C
    (K2) differ anyway; the visit is at the clinic, not home care, not psychosocial."""
    tree = json.loads((GOLDEN / "avdrag-V1.json").read_text(encoding="utf-8"))
    assert tree["kind"] == "output" and tree["label"] == "avdrag"
    assert tree["value"] == "-300.00"
    assert tree["record"] == "V1" and tree["date"] == "2021-09-15"
    assert tree["paid_to"] == "A"
    assert tree["decided_by"] == "avdrag_fysiskt_besök_hos_annan"
    assert tree["provision"].startswith("STH21.6.4 ")
    rule = child(tree, "rule", "avdrag_fysiskt_besök_hos_annan")
    assert rule["applied"] is True and rule["value"] == "-300.00"
    assert rule["valid_from"] == "2021-09-01" and rule["valid_to"] is None
    exceptions = {c["label"]: c for c in rule["children"] if c["kind"] == "exception"}
    assert set(exceptions) == {"avdrag_inom_koncernen", "avdrag_besök_i_hemmet_eller_annan_plats",
                               "hemsjukvårdsbesök", "psykosociala_uppdraget"}
    assert all(e["applied"] is False and e["value"] is None for e in exceptions.values())
    assert exceptions["avdrag_besök_i_hemmet_eller_annan_plats"]["provision"].startswith("STH21.6.5 ")
    assert exceptions["psykosociala_uppdraget"]["provision"].startswith("STH21.6.6 ")
    condition = [c for c in rule["children"] if c["kind"] == "condition"]
    assert len(condition) == 1 and condition[0]["value"] is True
    formula = [c for c in rule["children"] if c["kind"] == "formula"]
    assert len(formula) == 1 and formula[0]["value"] == "-300.00"
    # The parameter: 300 kr from 2021-09-01, no end date, cited to the seed.
    (param,) = nodes(tree, "parameter", "avdrag_fysiskt_besök")
    assert param["value"] == "300.00"
    assert (param["valid_from"], param["valid_to"], param["status"]) == ("2021-09-01", None, "seed")
    # The listing found on the visit date is P1's listing at A, open since 2015-01-01.
    (lookup,) = [n for n in walk(tree) if n["kind"] == "lookup"]
    assert lookup["on"] == "2021-09-15" and lookup["valid_from"] == "2015-01-01" and lookup["valid_to"] is None
    inputs = {(n["label"], n["record"]): n["value"] for n in walk(tree) if n["kind"] == "input"}
    assert inputs[("visits.clinic_id", "V1")] == "C"
    assert inputs[("listings.clinic_id", lookup["record"])] == "A"


def test_golden_tillaggsersattning_v3():
    """V3: P2 (listed at C, koncern K2) has a video visit with A (koncern K1) on 2021-03-02.
    STH21.6.2: a video visit by a patient not listed at the clinic nor in its koncern gives
    300 kr (value 2021-02-01 – 2023-04-30) → 300.00, paid to A. STH21.6.1 (physical) and
    STH21.6.3 (unlisted) do not hold; no exception applies."""
    tree = json.loads((GOLDEN / "tillaggsersattning-V3.json").read_text(encoding="utf-8"))
    assert tree["value"] == "300.00"
    assert tree["paid_to"] == "A"
    assert tree["decided_by"] == "videobesök_utanför_koncernen"
    assert tree["provision"].startswith("STH21.6.2 ")
    rules = {c["label"]: c for c in tree["children"] if c["kind"] == "rule"}
    assert set(rules) == {"fysiskt_besök_av_annans_listade", "videobesök_utanför_koncernen", "olistad_patient"}
    assert rules["videobesök_utanför_koncernen"]["applied"] is True
    assert rules["fysiskt_besök_av_annans_listade"]["applied"] is False
    assert rules["fysiskt_besök_av_annans_listade"]["reason"] == "its condition does not hold"
    assert rules["olistad_patient"]["applied"] is False
    assert not any(n["applied"] for n in walk(tree) if n["kind"] == "exception")
    (param,) = nodes(tree, "parameter", "tilläggsersättning_videobesök")
    assert param["value"] == "300.00"
    assert (param["valid_from"], param["valid_to"]) == ("2021-02-01", "2023-04-30")
    # Not listed here (C ≠ A) and not in A's koncern (K2 ≠ K1).
    (listed_here,) = [n for n in nodes(tree, "definition", "listad_här") if not n.get("explained_above")]
    assert listed_here["value"] is False
    (in_koncern,) = [n for n in nodes(tree, "definition", "listad_inom_koncernen")
                     if not n.get("explained_above")]
    assert in_koncern["value"] is False


def test_golden_tillaggsersattning_v4():
    """V4: P3 (listed nowhere) has a physical visit at C on 2021-10-05 in the psychosocial
    assignment. STH21.6.3 would pay 300 kr for an unlisted patient's physical visit, but
    STH21.6.6 excludes the psychosocial assignment → 0.00, decided by the exception
    psykosociala_uppdraget. The home-visit and home-care exceptions do not apply."""
    tree = json.loads((GOLDEN / "tillaggsersattning-V4.json").read_text(encoding="utf-8"))
    assert tree["value"] == "0.00"
    assert tree["paid_to"] == "C"
    assert tree["decided_by"] == "psykosociala_uppdraget"
    assert tree["provision"].startswith("STH21.6.6 ")
    rules = {c["label"]: c for c in tree["children"] if c["kind"] == "rule"}
    olistad = rules["olistad_patient"]
    assert olistad["applied"] is False and olistad["overridden_by"] == "psykosociala_uppdraget"
    excs = {c["label"]: c for c in olistad["children"] if c["kind"] == "exception"}
    assert excs["psykosociala_uppdraget"]["applied"] is True
    assert excs["psykosociala_uppdraget"]["value"] == "0.00"
    assert excs["hembesök"]["applied"] is False
    assert excs["hemsjukvårdsbesök"]["applied"] is False
    assert excs["olistad_besök_på_annan_plats"]["applied"] is False
    # Every exception that applies anywhere in the tree is the psychosocial one.
    assert {n["label"] for n in walk(tree) if n["kind"] == "exception" and n["applied"]} == {"psykosociala_uppdraget"}
    assert not any(n["kind"] == "default" for n in tree["children"])
