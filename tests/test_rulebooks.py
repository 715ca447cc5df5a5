"""The six rulebooks of the contract: each checks cleanly, its examples pass, every value
says where it comes from, and its examples make every one of its rules and exceptions apply."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rulelang
from rulelang.interfaces.coverage import coverage
from rulelang.interfaces.examples import run_examples
from rulelang.language.loader import all_rulebook_ids
from rulelang.language.typesystem import STATUSES

CONTRACT_IDS = [
    "jamtland/patientmiljarden-2018",
    "skaraborg/narvard-2014",
    "stockholm/hlv-2016",
    "stockholm/hlv-2021",
    "stockholm/kroninnovation-2016",
    "vastra-gotaland/vg-primarvard",
]


def test_every_rulebook_of_the_contract_exists_and_no_other():
    assert all_rulebook_ids() == CONTRACT_IDS


@pytest.fixture(scope="module", params=CONTRACT_IDS)
def book(request):
    return rulelang.load(request.param)


def test_the_rulebook_checks_without_warnings(book):
    assert [w.format() for w in book.warnings] == []


def test_every_example_passes(book):
    outcomes = run_examples(book)
    assert outcomes, "a rulebook without examples"
    assert [(o.title, o.failures) for o in outcomes if not o.passed] == []


def test_every_parameter_value_has_a_status_and_a_citation(book):
    for name, parameter in book.program.parameters.items():
        for value in parameter.values:
            assert value.status in STATUSES, (name, value.source)
            assert value.cite, (name, value.source)


def test_every_own_output_is_expected_in_some_example(book):
    own = {name for name, output in book.program.outputs.items() if output.rulebook == book.id}
    expected = {e.output for example in book.checked.examples for e in example.expectations}
    assert own - expected == set()


def test_every_own_rule_and_exception_applies_in_some_example(book):
    """Examples are worked cases: each provision of the rulebook must be seen deciding once
    (`rulelang test --min-coverage 100`)."""
    report = coverage(book)
    assert report.never_applies == () and report.never_considered == ()
    assert report.percent == 100.0


def test_illustrative_values_are_never_called_anything_else(book):
    """Values the rulebook's prose calls illustrative carry that status (the reverse is checked
    by reading): a citation saying 'illustrativ' must be status illustrative."""
    for name, parameter in book.program.parameters.items():
        for value in parameter.values:
            if "illustrativ" in (value.cite or "").lower():
                assert value.status == "illustrative", (name, value.source)


READINGS_DOC = Path(__file__).resolve().parent.parent / "docs" / "rulebooks.md"


def documented(heading: str) -> dict:
    """(rulebook short name, parameter) → the row's text, for the table under `heading`."""
    text = READINGS_DOC.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    section = section[:section.index("\n\n#", 1)] if "\n\n#" in section[1:] else section
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 3 or not line.startswith("|"):
            continue
        for name in re.findall(r"`([^`]+)`", " ".join(cells[1:3])):
            rows[(cells[0], name)] = line
    return rows


def own_interpretations(book) -> dict:
    """The book's own parameters with a value of status interpretation: name → all of them are."""
    own = {s.name for s in book.checked.chain[-1].statements if type(s).__name__ == "ParameterDecl"}
    found = {}
    for name, parameter in book.program.parameters.items():
        statuses = [v.status for v in parameter.values]
        if name in own and "interpretation" in statuses:
            found[name] = all(status == "interpretation" for status in statuses)
    return found


def test_the_docs_list_every_reading_and_every_inferred_value(book):
    short = book.id.split("/")[1]
    listed = {name for (rulebook, name) in {**documented("## Readings"), **documented("### Values inferred")}
              if short.startswith(rulebook)}
    assert sorted(set(own_interpretations(book)) - listed) == []


def test_every_documented_reading_has_an_example_of_its_alternative(book):
    short = book.id.split("/")[1]
    assumed = {a.parameter for example in book.checked.examples for a in example.assumptions}
    readings = {name: row for (rulebook, name), row in documented("## Readings").items() if short.startswith(rulebook)}
    assert readings, book.id
    without = [name for name, row in readings.items() if name not in assumed and "tests/test_fidelity.py" not in row]
    assert without == []


def test_the_docs_name_every_source_a_rulebook_declares(book):
    """The Sources table of docs/rulebooks.md names each document a rulebook's header declares."""
    header = book.checked.chain[-1].text
    titles = re.findall(r'^  source \S+ (?:"[^"]+" )?"([^"]+)"', header, re.M)
    assert titles, book.id
    docs = READINGS_DOC.read_text(encoding="utf-8")
    assert [title for title in titles if title not in docs] == []
