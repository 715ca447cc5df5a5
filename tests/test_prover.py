"""The conflict prover: two rules or exceptions of one level that can both apply to one record
on one date with different values are found before anything runs, with the record as a
witness; pairs that exclude each other are proven; what the solver cannot see is listed as
not proven; exceptions that can never apply are named.

Each witness is checked on the interpreter: evaluating the record it describes stops with
the conflict the prover predicted."""

from __future__ import annotations

import re

import pytest
from rulebook_factory import write_rulebook

import rulelang
from rulelang.interfaces.cli import main
from rulelang.language.diagnostics import EvaluationError
from rulelang.language.loader import all_rulebook_ids

VISITS = """\
enum visit_mode: physical, video
table visits
  key visit_id
  dated by date
  field visit_id: text
  field date: date
  field mode: visit_mode
  field age: integer
  field listed: boolean
output tillägg: money per visits default 0 kr
parameter belopp: money
  value 300 kr from 2021-02-01 status illustrative cite "x"
  value 350 kr from 2022-01-01 status illustrative cite "x"
rule fysiskt defines tillägg from 2021-02-01 when mode = physical then belopp
"""


def proof(tmp_path, body: str) -> tuple:
    book = rulelang.load(str(write_rulebook(tmp_path, VISITS + body)))
    return book, book.proof()


def witness(diagnostic) -> dict:
    """The fields of the record a conflict names (`for example: date = …, age = 0, …`)."""
    note = next(n for n in diagnostic.notes if n.startswith(("for example:", "a record it could not rule out:")))
    fields = note.split(":", 1)[1].rsplit(" (", 1)[0]
    return dict(part.split(" = ", 1) for part in fields.strip().split(", "))


def test_overlapping_exceptions_are_a_conflict_with_a_witness_the_interpreter_confirms(tmp_path):
    book, found = proof(tmp_path, "exception barn to fysiskt when age < 6 then 150 kr\n"
                                  "exception ungdom to fysiskt when age < 18 then 0 kr\n")
    (conflict,) = found
    assert conflict.severity == "error"
    assert conflict.message.startswith("conflict: barn (")
    assert "and ungdom (" in conflict.message and "different values of tillägg" in conflict.message
    text = (tmp_path / "book.md").read_text(encoding="utf-8").splitlines()
    assert conflict.span.line == next(n for n, line in enumerate(text, 1) if line.startswith("exception ungdom"))
    record = witness(conflict)
    assert int(record["age"]) < 6 and record["date"] >= "2021-02-01"
    assert "(barn gives 150.00 kr, ungdom gives 0.00 kr)" in conflict.notes[0]
    visit = {"visit_id": "V1", "date": record["date"], "mode": "physical", "age": int(record["age"]),
             "listed": True}
    with pytest.raises(EvaluationError, match="conflict: tillägg is 150.00 kr by barn"):
        book.evaluate_record({"visits": [visit]}, "tillägg", "V1")


def test_exceptions_that_exclude_each_other_are_proven(tmp_path):
    _, found = proof(tmp_path, "exception barn to fysiskt when age < 6 then 150 kr\n"
                               "exception ungdom to fysiskt when age >= 6 and age < 18 then 0 kr\n")
    assert found == []


def test_rules_that_agree_or_never_meet_in_time_are_proven(tmp_path):
    _, found = proof(tmp_path, "exception a to fysiskt when age < 6 then 0 kr\n"
                               "exception b to fysiskt when listed then 0 kr\n"
                               "exception c to fysiskt until 2021-06-30 when age > 60 and not listed then 10 kr\n"
                               "exception d to fysiskt from 2021-07-01 when age > 60 and not listed then 20 kr\n")
    assert found == []


def test_enum_values_exclude_each_other(tmp_path):
    _, found = proof(tmp_path, "rule video defines tillägg from 2021-02-01 when mode = video then 100 kr\n")
    assert found == []


def test_a_conflict_that_only_a_later_parameter_value_opens_is_found_on_that_date(tmp_path):
    # The age limit is 6 until 2021-12-31 and 7 from 2022: only then does a 6-year-old meet both.
    _, found = proof(tmp_path, 'parameter gräns: integer\n'
                               '  value 6 from 2021-01-01 status illustrative cite "x"\n'
                               '  value 7 from 2022-01-01 status illustrative cite "x"\n'
                               "exception barn to fysiskt when age < gräns then 150 kr\n"
                               "exception större to fysiskt when age >= 6 then 0 kr\n")
    (conflict,) = found
    record = witness(conflict)
    assert record["date"] >= "2022-01-01" and record["age"] == "6"


def test_at_least_n_of_is_counted_exactly(tmp_path):
    # At least two of three, against neither of the first two: never both.
    _, found = proof(tmp_path, "exception två to fysiskt when at least 2 of (listed, age > 60, age < 6) then 10 kr\n"
                               "exception ingen to fysiskt when not listed and age <= 60 then 20 kr\n")
    assert found == []


def test_a_reading_is_proven_for_every_alternative(tmp_path):
    # The reading is false in the rulebook; a run may assume true, and then both apply.
    _, found = proof(tmp_path, 'parameter barn_undantas: boolean\n'
                               '  value false status interpretation cite "x"\n'
                               "exception undantag to fysiskt when barn_undantas and age < 18 then 0 kr\n"
                               "exception små to fysiskt when age < 3 then 100 kr\n")
    (conflict,) = found
    assert conflict.severity == "error"
    assert witness(conflict)["reading barn_undantas"] == "true"


def test_what_the_solver_cannot_see_is_listed_as_not_proven(tmp_path):
    _, found = proof(tmp_path, "exception många to fysiskt when (count v in visits where v.date = date) > 2 "
                               "then 10 kr\n"
                               "exception barn to fysiskt when age < 6 then 150 kr\n")
    (finding,) = found
    assert finding.severity == "warning"
    assert finding.message.startswith("not proven: många (") and " and barn (" in finding.message
    assert any("count v in visits where v.date = date (not modelled)" in note for note in finding.notes), finding.notes


@pytest.mark.parametrize("exception, why", [
    ("exception omöjlig to fysiskt when age < 6 and age > 10 then 10 kr",
     "no record meets its condition on a day the rule it overrides is in force"),
    ("exception förr to fysiskt until 2020-12-31 when listed then 10 kr",
     "its period the beginning – 2020-12-31 never meets that of fysiskt (2021-02-01 – further notice)"),
])
def test_an_exception_that_can_never_apply_is_named(tmp_path, exception, why):
    _, found = proof(tmp_path, exception + "\n")
    (finding,) = found
    assert finding.severity == "warning"
    assert re.match(r"exception \w+ can never apply: ", finding.message)
    assert finding.message.endswith(why)


def test_a_new_exception_to_an_inherited_rule_is_proven_against_the_rulebook_it_amends(tmp_path, monkeypatch):
    # An exception to the add-on for unlisted patients gives that rule a value for every
    # physical visit, listed patients' too: there it meets the inherited add-on for another
    # clinic's listed patient (300 kr), which the evaluator would find only on real data.
    monkeypatch.setenv("RULELANG_PATH", str(tmp_path))
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "tillagg.md").write_text('''# Amendment

```rulelang
rulebook "test/tillagg"
  version "1"
  amends "stockholm/hlv-2021"
according to this rulebook
```

## Barn

```rulelang
exception barn_fysiskt to olistad_patient when mode = physical then 150 kr
```
''', encoding="utf-8")
    book = rulelang.load("test/tillagg")
    errors = [d for d in book.proof() if d.severity == "error"]
    assert all(d.message.startswith("conflict: ") for d in errors)
    (conflict,) = [d for d in errors if d.message.startswith("conflict: olistad_patient (")]
    assert "fysiskt_besök_av_annans_listade (" in conflict.message
    # It also meets the inherited exceptions to olistad_patient (home visits pay nothing, …).
    assert any("barn_fysiskt (" in d.message and "hembesök (" in d.message for d in errors)
    record = witness(conflict)
    assert record["mode"] == "physical" and record["date"] >= "2021-02-01"


def test_the_six_rulebooks_are_proven_conflict_free():
    for rulebook in all_rulebook_ids():
        assert rulelang.load(rulebook).proof() == [], rulebook


def test_check_fails_on_a_conflict_and_test_reports_it(tmp_path, capsys):
    path = write_rulebook(tmp_path, VISITS + "exception barn to fysiskt when age < 6 then 150 kr\n"
                                             "exception ungdom to fysiskt when age < 18 then 0 kr\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: conflict: barn (" in err and "note: for example: date = " in err
    assert main(["test", str(path)]) == 1
    assert "error: conflict: barn (" in capsys.readouterr().err
