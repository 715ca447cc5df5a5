"""The Python API as a tool embedding the evaluator uses it: load a rulebook, build a data
set from records, evaluate, explain, and catch rulelang's own errors.

Money values are integer öre: 300 kr = 30000 öre. Expected amounts are worked out from the
provisions of rulebooks/stockholm/hlv-2021.md.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

import rulelang

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "stockholm-2021.json"


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("RULELANG_PATH", raising=False)


@pytest.fixture(scope="module")
def book():
    # Loaded from the repo root (sources are shown relative to the working directory).
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        patch.delenv("RULELANG_PATH", raising=False)
        return rulelang.load("stockholm/hlv-2021")


CLINICS = [{"clinic_id": "A", "koncern_id": "K1"}, {"clinic_id": "B", "koncern_id": "K1"},
           {"clinic_id": "C", "koncern_id": "K2"}]
PERSONS = [{"person_id": "P1", "birth_date": "1950-03-14", "sex": "F"},
           {"person_id": "P2", "birth_date": "1985-11-02", "sex": "M"},
           {"person_id": "P3", "birth_date": "1999-06-30", "sex": "F"}]
LISTINGS = [{"person_id": "P1", "clinic_id": "A", "listed_from": "2015-01-01", "listed_to": None},
            {"person_id": "P2", "clinic_id": "C", "listed_from": "2018-05-01"}]


def visit(visit_id, person, clinic, date, mode="physical", place="clinic", assignment="general",
          profession="doctor"):
    return {"visit_id": visit_id, "person_id": person, "clinic_id": clinic, "date": date, "mode": mode,
            "place": place, "assignment": assignment, "profession": profession}


def records(*visits):
    return {"clinics": CLINICS, "persons": PERSONS, "listings": LISTINGS, "visits": list(visits)}


def by_key(results):
    return {(r.record, r.output): r for r in results}


def test_load_gives_the_rulebook_facts(book):
    assert isinstance(book, rulelang.Rulebook)
    assert book.id == "stockholm/hlv-2021"
    assert book.version == "2021.1"
    assert book.title.startswith("Förfrågningsunderlag husläkarverksamhet")
    assert book.outputs == ["besöksersättning", "tilläggsersättning", "avdrag"]
    assert Path(book.path).name == "hlv-2021.md"


def test_load_by_path_is_the_same_rulebook():
    by_path = rulelang.load(str(ROOT / "rulebooks" / "stockholm" / "hlv-2021.md"))
    assert by_path.id == "stockholm/hlv-2021"
    assert by_path.outputs == ["besöksersättning", "tilläggsersättning", "avdrag"]


def test_evaluate_records_values_in_ore_and_payees(book):
    data = book.dataset(records(
        # P1 (listed at A) at C, physical at the clinic, 2021-09-15.
        visit("V1", "P1", "C", "2021-09-15"),
        # P2 (listed at C, K2) by video at A (K1), 2021-03-02.
        visit("V3", "P2", "A", "2021-03-02", mode="video", place="home"),
        # P3 (unlisted), a psychologist in the psychosocial assignment at C, 2021-10-05.
        visit("V4", "P3", "C", "2021-10-05", assignment="psychosocial", profession="psychologist"),
    ))
    results = book.evaluate(data)
    assert all(isinstance(r, rulelang.Result) for r in results)
    assert len(results) == 9  # 3 outputs × 3 visits
    got = by_key(results)

    # STH21.6.1: 300 kr = 30000 öre to the performing clinic C.
    r = got[("V1", "tilläggsersättning")]
    assert r.value == 30000 and r.json_value == "300.00"
    assert r.payee == "C"
    assert r.provision.startswith("STH21.6.1 ")
    assert r.table == "visits" and r.date == dt.date(2021, 9, 15)
    # STH21.6.4: from 2021-09-01, −300 kr = −30000 öre, charged to A where P1 is listed.
    r = got[("V1", "avdrag")]
    assert r.value == -30000 and r.json_value == "-300.00"
    assert r.payee == "A"
    assert r.provision.startswith("STH21.6.4 ")
    assert r.source.startswith("rulebooks/stockholm/hlv-2021.md:")
    # STH21.5: 110 kr = 11000 öre to C.
    r = got[("V1", "besöksersättning")]
    assert (r.value, r.json_value, r.payee) == (11000, "110.00", "C")

    # STH21.6.2: video by a patient listed outside A's koncern: 30000 öre to A.
    r = got[("V3", "tilläggsersättning")]
    assert (r.value, r.json_value, r.payee) == (30000, "300.00", "A")
    assert r.provision.startswith("STH21.6.2 ")
    # No deduction for a video visit (nor before 2021-09-01); it would be charged to C.
    r = got[("V3", "avdrag")]
    assert (r.value, r.json_value, r.payee) == (0, "0.00", "C")

    # STH21.5 exception: psychologist 425 kr = 42500 öre.
    r = got[("V4", "besöksersättning")]
    assert (r.value, r.json_value) == (42500, "425.00")
    # STH21.6.6: the psychosocial assignment gives no add-on.
    r = got[("V4", "tilläggsersättning")]
    assert r.value == 0 and r.provision.startswith("STH21.6.6 ")
    # An unlisted patient has no listing clinic to charge.
    assert got[("V4", "avdrag")].value == 0
    assert got[("V4", "avdrag")].payee is None


def test_evaluate_named_outputs_only(book):
    data = book.dataset(records(visit("V1", "P1", "C", "2021-09-15"), visit("V2", "P1", "A", "2021-09-15")))
    results = book.evaluate(data, outputs=["avdrag"])
    # V2 is at P1's own clinic A: no deduction.
    assert [(r.record, r.output, r.value) for r in results] == [("V1", "avdrag", -30000), ("V2", "avdrag", 0)]


def test_evaluate_record(book):
    data = book.dataset(records(visit("V1", "P1", "C", "2021-08-31"), visit("V2", "P1", "C", "2021-09-01")))
    # The deduction starts on 2021-09-01: the day before there is none.
    assert book.evaluate_record(data, "avdrag", "V1").value == 0
    assert book.evaluate_record(data, "avdrag", "V2").value == -30000
    # The add-on is paid on both days (from 2021-02-01).
    assert book.evaluate_record(data, "tilläggsersättning", "V1").value == 30000


def test_evaluate_from_a_file_path_and_a_path_string(book):
    from_path = by_key(book.evaluate(EXAMPLE))
    from_text = by_key(book.evaluate(str(EXAMPLE)))
    assert {k: r.value for k, r in from_path.items()} == {k: r.value for k, r in from_text.items()}
    # V5: P2 (listed at C) physical home visit at B: home visits give neither add-on (STH21.6.6)
    # nor deduction (STH21.6.5); besöksersättning 110 kr.
    assert from_path[("V5", "tilläggsersättning")].value == 0
    assert from_path[("V5", "avdrag")].value == 0
    assert from_path[("V5", "avdrag")].provision.startswith("STH21.6.5 ")
    assert from_path[("V5", "besöksersättning")].value == 11000


def test_dataset_is_reusable_and_money_inputs_are_exact(tmp_path):
    # A rulebook with a money input field: amounts must be read exactly, never via float.
    path = tmp_path / "mini.md"
    path.write_text('''# Mini

```rulelang
rulebook "test/mini"
  version "1"
  source "mini.txt"
```

## M1 Belopp

```rulelang
table claims
  key claim_id
  dated by date
  field claim_id: text
  field date: date
  field amount: money

output ersättning: money per claims

rule dubbel defines ersättning
  then amount * 2
```
''', encoding="utf-8")
    mini = rulelang.load(str(path))
    data = mini.dataset({"claims": [
        {"claim_id": "K1", "date": "2021-03-01", "amount": "1.15"},
        {"claim_id": "K2", "date": "2021-03-01", "amount": Decimal("0.10")},
        {"claim_id": "K3", "date": "2021-03-01", "amount": 300},
    ]})
    # amount × 2: 1.15 kr = 115 öre → 230; 0.10 kr = 10 öre → 20; 300 kr = 30000 öre → 60000.
    assert {r.record: r.value for r in mini.evaluate(data)} == {"K1": 230, "K2": 20, "K3": 60000}
    assert {r.record: r.json_value for r in mini.evaluate(data)} == {"K1": "2.30", "K2": "0.20", "K3": "600.00"}

    with pytest.raises(rulelang.DataError) as caught:
        mini.dataset({"claims": [
            {"claim_id": "K1", "date": "2021-03-01", "amount": "300.005"},  # a fraction of an öre
            {"claim_id": "K2", "date": "2021-03-01", "amount": 1.15},       # a binary float
            {"claim_id": "K3", "date": "2021-03-01", "amount": "12.00"},
        ]})
    problems = caught.value.problems
    assert [p.record for p in problems] == ["K1", "K2"]
    assert "fraction of an öre" in problems[0].message
    assert problems[1].message.startswith("amount: ")


def test_explain_to_dict(book):
    data = book.dataset(records(visit("V1", "P1", "C", "2021-09-15")))
    explanation = book.explain(data, "avdrag", "V1")
    assert isinstance(explanation, rulelang.Explanation)
    tree = explanation.to_dict()
    assert json.loads(json.dumps(tree)) == tree  # plain JSON data
    assert tree["kind"] == "output" and tree["label"] == "avdrag"
    assert tree["value"] == "-300.00" and tree["paid_to"] == "A"
    assert tree["decided_by"] == "avdrag_fysiskt_besök_hos_annan"
    assert tree["source"] == "rulebooks/stockholm/hlv-2021.md:" + str(
        (ROOT / "rulebooks/stockholm/hlv-2021.md").read_text(encoding="utf-8").splitlines()
        .index("rule avdrag_fysiskt_besök_hos_annan defines avdrag") + 1)
    kinds = {node.kind for node in explanation.walk()}
    assert {"output", "rule", "exception", "condition", "formula", "parameter"} <= kinds
    (param,) = [n for n in explanation.walk() if n.kind == "parameter" and n.label == "avdrag_fysiskt_besök"]
    assert param.value == "300.00"
    assert param.facts["valid_from"] == "2021-09-01" and param.facts["valid_to"] is None


def test_data_errors_list_every_bad_record(book):
    bad = records(visit("V1", "P1", "C", "2021-02-30"), visit("V2", "P1", "C", "2021-09-15", mode="teleport"),
                  visit("V3", "P9", "C", "2021-09-15"))
    with pytest.raises(rulelang.DataError) as caught:
        book.dataset(bad)
    problems = caught.value.problems
    assert [p.record for p in problems] == ["V1", "V2", "V3"]
    assert "2021-02-30" in problems[0].message
    assert "teleport" in problems[1].message
    assert "P9" in problems[2].message
    text = str(caught.value)
    assert text.splitlines()[0] == "<records>: record V1: error: date: 2021-02-30 is not a date in the calendar"
    assert len(text.splitlines()) == 3


def test_unknown_record_is_a_data_error(book):
    data = book.dataset(records(visit("V1", "P1", "C", "2021-09-15")))
    with pytest.raises(rulelang.DataError) as caught:
        book.evaluate_record(data, "avdrag", "V7")
    assert caught.value.problems[0].record == "V7"
    with pytest.raises(rulelang.DataError):
        book.explain(data, "avdrag", "V7")


def test_no_value_in_force_is_an_evaluation_error(book):
    # besöksersättning's only rule starts 2021-02-01 and the output has no default.
    data = book.dataset(records(visit("V1", "P1", "C", "2021-01-15")))
    with pytest.raises(rulelang.EvaluationError) as caught:
        book.evaluate(data)
    error = caught.value
    assert error.record == "V1"
    assert "besöksersättning" in error.message and "2021-01-15" in error.message
    assert error.kind in ("rulebook", "data")
    # The outputs with a default (0 kr) still evaluate for that date: STH21.6.1 is not yet in
    # force on 2021-01-15, so no add-on.
    assert book.evaluate_record(data, "tilläggsersättning", "V1").value == 0


def test_broken_rulebook_is_a_rulebook_error(tmp_path):
    path = tmp_path / "broken.md"
    path.write_text('''# Broken

```rulelang
rulebook "test/broken"
  version "1"
  source "x.txt"
```

## 1 Fel

```rulelang
output x: money per nothing
```
''', encoding="utf-8")
    with pytest.raises(rulelang.RulebookError) as caught:
        rulelang.load(str(path))
    diagnostics = caught.value.diagnostics
    assert diagnostics and all(d.severity == "error" for d in diagnostics)
    assert diagnostics[0].span.line == 12  # the `output` line
    assert "nothing" in caught.value.format()


def test_errors_are_exceptions_exported_at_top_level():
    for name in ("DataError", "RulebookError", "EvaluationError"):
        assert issubclass(getattr(rulelang, name), Exception)
        assert name in rulelang.__all__
