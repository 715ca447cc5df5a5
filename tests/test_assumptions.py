"""`--assume NAME=VALUE`: a parameter set for one run, type-checked like a rulebook value,
shown as assumed in explanations, recorded in the settlement's summary, and taken alike by
the interpreter and the SQL settlement."""

from __future__ import annotations

import csv
import json

import pytest
from regions import money_text

import rulelang
from rulelang.columnar.settlement import interpreter_line_items, settle
from rulelang.interfaces.cli import main
from rulelang.interfaces.demo import write_demo_region
from rulelang.language.assumptions import AssumptionError

BOOK = "stockholm/hlv-2021"
EXAMPLE = "From 2021-09-01 the listing clinic loses"


@pytest.fixture(scope="module")
def book():
    return rulelang.load(BOOK)


@pytest.mark.parametrize("given, said", [
    ("avdrag_fysiskt_besok=350 kr", "no parameter avdrag_fysiskt_besok; did you mean 'avdrag_fysiskt_besök'?"),
    ("avdrag_fysiskt_besök=350", "avdrag_fysiskt_besök is money; write a value such as 350 kr"),
    ("koncern_undantag_fysiska_besök=ja", "koncern_undantag_fysiska_besök is boolean; write a value such as true"),
    ("listningsersättning_per_ålder=1 kr", "listningsersättning_per_ålder is keyed by integer"),
    ("avdrag_fysiskt_besök", "--assume takes NAME=VALUE"),
])
def test_an_assumption_is_checked_like_a_rulebook_value(book, given, said):
    with pytest.raises(AssumptionError, match=said.replace("?", r"\?")):
        book.assume([given])


def test_assumed_values_are_held_as_the_evaluator_holds_values(book):
    assert book.assume(["avdrag_fysiskt_besök=350 kr", "koncern_undantag_fysiska_besök=true"]) == {
        "avdrag_fysiskt_besök": 35000, "koncern_undantag_fysiska_besök": True}


def test_explain_shows_an_assumed_value_as_assumed_for_the_run(capsys, tmp_path):
    out = tmp_path / "example.json"
    assert main(["example-data", BOOK, "--example", EXAMPLE, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["explain", BOOK, "--input", str(out), "--output", "avdrag", "--record", "V1",
                 "--assume", "avdrag_fysiskt_besök=350 kr", "--format", "json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["value"] == "-350.00" and tree["basis"] == "assumed"
    (node,) = [n for n in _nodes(tree) if n["kind"] == "parameter" and n["label"] == "avdrag_fysiskt_besök"]
    assert (node["status"], node["cite"]) == ("assumed", "assumed for this run (--assume)")


def test_a_bad_assumption_is_a_usage_error(capsys):
    assert main(["eval", BOOK, "--input", "examples/stockholm-2021.json", "--on", "2021-09-30",
                 "--assume", "koncern_undantag_fysiska_besök=ja"]) == 2
    assert "write a value such as true or false" in capsys.readouterr().err


def test_test_runs_the_examples_under_the_assumption(capsys):
    # The examples expect the rulebook's own readings; an example with its own `assuming`
    # keeps its premise. Assuming the koncern exemption for physical visits changes one.
    assert main(["test", BOOK, "--assume", "koncern_undantag_fysiska_besök=true"]) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL ") == 1


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    directory = tmp_path_factory.mktemp("assumed-region")
    write_demo_region(directory, persons=3000, seed=4, file_format="csv")
    return directory


def test_settle_under_an_assumption_gives_the_interpreters_lines_and_records_it(book, region, tmp_path, capsys):
    assumed = book.assume(["avdrag_fysiskt_besök=350 kr", "koncern_undantag_fysiska_besök=true"])
    out = tmp_path / "lines.csv"
    result = settle(book, "2021-09", region, out, assumptions=assumed)
    with open(out, encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.reader(handle)][1:]
    expected = [[clinic, month, component, money_text(amount), provision, record, basis] for
                clinic, month, component, amount, provision, record, basis in
                interpreter_line_items(book, book.dataset(region), "2021-09", assumed)]
    assert rows == expected
    deductions = [row for row in rows if row[2] == "avdrag"]
    assert deductions and all(row[3] == "-350.00" and row[6] == "assumed" for row in deductions)
    assert result.to_dict()["assumptions"] == {"avdrag_fysiskt_besök": "350.00 kr",
                                               "koncern_undantag_fysiska_besök": "true"}
    assert main(["settle", BOOK, "--month", "2021-09", "--data", str(region), "--out", str(tmp_path / "s.csv"),
                 "--assume", "avdrag_fysiskt_besök=350 kr"]) == 0
    assert "ASSUMED for this run, not the rulebook's own values: avdrag_fysiskt_besök = 350.00 kr" in \
        capsys.readouterr().out


def _nodes(tree: dict):
    yield tree
    for child in tree.get("children", ()):
        yield from _nodes(child)
