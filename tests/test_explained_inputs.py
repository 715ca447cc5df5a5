"""An explanation shows the inputs it read as the record gave them: a field the record did
not give, which holds its declared default, says so rather than passing as input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import rulelang
from rulelang.interfaces import render

ROOT = Path(__file__).resolve().parent.parent
BOOK = "skaraborg/narvard-2014"
ON = "2014-06-01"
# FYRA gives no palliative criteria: `end_of_life_conversation_held` is declared
# `boolean default false`. GIVEN says false outright.
FYRA = {"patient_id": "FYRA", "birth_date": "1930-05-01", "chronic_diagnoses": 3, "admissions_12m": 3,
        "standing_medications": 2, "manages_personal_care": True, "home_care": True,
        "municipality": "Lidköpings kommun", "residence": "own_home", "medical_interventions": 3}
GIVEN = {**FYRA, "patient_id": "GIVEN", "end_of_life_conversation_held": False}


@pytest.fixture(scope="module")
def book():
    return rulelang.load(BOOK)


def inputs(tree) -> dict:
    return {(n.facts["record"], n.label.split(".", 1)[-1]): n for n in tree.walk() if n.kind == "input"}


def write_csv(directory: Path, records: list) -> Path:
    names = sorted({name for record in records for name in record})
    with open(directory / "patients.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, names)
        writer.writeheader()
        for record in records:
            writer.writerow({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in record.items()})
    return directory


@pytest.mark.parametrize("reader", ["records in memory", "a CSV directory"])
def test_a_field_not_given_is_shown_as_its_default(book, tmp_path, reader):
    data = {"patients": [FYRA, GIVEN]} if reader == "records in memory" else str(write_csv(tmp_path, [FYRA, GIVEN]))
    for record, defaulted in (("FYRA", True), ("GIVEN", False)):
        tree = book.explain(data, "palliativt_team", record, on=ON)
        assert tree.value is False  # not held: the palliative team needs the conversation (NVS.2)
        node = inputs(tree)[(record, "end_of_life_conversation_held")]
        assert node.value is False
        assert bool(node.facts.get("defaulted")) is defaulted
        assert "defaulted" not in inputs(tree)[(record, "birth_date")].facts
        text = render.explanation_text(tree)
        assert ("end_of_life_conversation_held = false (not given: the field's default)" in text) is defaulted
        html = render.explanation_html(tree, record, full=True)
        assert ("(not given: the field&#x27;s default)" in html) is defaulted


def test_the_json_marks_the_default_on_the_input_node(book):
    tree = book.explain({"patients": [FYRA]}, "palliativt_team", "FYRA", on=ON)
    document = json.loads(render.explanation_json(tree))
    found = []

    def walk(node):
        if node["kind"] == "input" and node["label"].endswith("end_of_life_conversation_held"):
            found.append(node)
        for child in node["children"]:
            walk(child)

    walk(document)
    assert found and all(node["defaulted"] is True for node in found)


def test_a_value_given_empty_is_not_given(book, tmp_path):
    # An empty CSV cell, like a missing column, gives no value: the default stands, and says so.
    directory = write_csv(tmp_path, [{**FYRA, "end_of_life_conversation_held": ""}])
    tree = book.explain(str(directory), "palliativt_team", "FYRA", on=ON)
    assert inputs(tree)[("FYRA", "end_of_life_conversation_held")].facts.get("defaulted") is True


def test_explain_on_a_directory_reads_only_the_record_and_still_marks_the_default(tmp_path, capsys):
    from rulelang.interfaces.cli import main

    directory = write_csv(tmp_path, [FYRA, GIVEN])
    assert main(["explain", BOOK, "--input", str(directory), "--output", "palliativt_team", "--record", "FYRA",
                 "--on", ON]) == 0
    out = capsys.readouterr().out
    assert "patients FYRA: " in out
    assert "end_of_life_conversation_held = false (not given: the field's default)" in out
