"""`replaced by ID from DATE` in a rulebook's header: the model it encodes is no longer in
force from that day. Running it on a later day still computes (a reviewer may want the old
model's amounts), but every run says so: the explanation, `eval`, `settle` and `impact`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rulebook_factory import rulebook_library

import rulelang
from rulelang.interfaces.cli import main
from rulelang.interfaces.demo import write_demo_region
from rulelang.language.diagnostics import RulebookError

EXAMPLE = "examples/stockholm-2021.json"
MESSAGE = ("stockholm/hlv-2016 was replaced by stockholm/hlv-2021 from 2021-02-01; amounts dated from then "
           "follow the replaced model, not the one in force")

pytestmark = pytest.mark.usefixtures("at_repo_root")


def test_the_2016_model_says_it_was_replaced_when_explained_after_2021_02_01():
    book = rulelang.load("stockholm/hlv-2016")
    assert book.checked.header.replaced_by[0] == "stockholm/hlv-2021"
    tree = book.explain(EXAMPLE, "tilläggsersättning", "V1")  # 2021-09-15
    assert tree.facts["replaced_by"] == {"by": "stockholm/hlv-2021", "from": "2021-02-01", "message": MESSAGE}
    from rulelang.interfaces import render
    assert f"  ⚠ {MESSAGE}" in render.explanation_text(tree).splitlines()[:4]
    assert '<p class="replaced">' in render.explanation_html(tree, "V1")


def test_the_day_before_and_a_rulebook_that_amends_it_are_not_replaced():
    old = rulelang.load("stockholm/hlv-2016")
    # A visit is judged on its own date: V1 moved to the day before is not replaced.
    data = json.loads(open(EXAMPLE, encoding="utf-8").read())
    data["visits"][0]["date"] = "2021-01-31"
    assert "replaced_by" not in old.explain(data, "tilläggsersättning", "V1").facts
    data["visits"][0]["date"] = "2021-02-01"
    assert "replaced_by" in old.explain(data, "tilläggsersättning", "V1").facts
    # hlv-2021 amends hlv-2016 and is the model in force: only the header of the rulebook run counts.
    assert "replaced_by" not in rulelang.load("stockholm/hlv-2021").explain(EXAMPLE, "avdrag", "V1").facts


def test_eval_warns_on_stderr_only_when_a_record_is_on_or_after_the_day(capsys):
    assert main(["eval", "stockholm/hlv-2016", "--input", EXAMPLE, "--on", "2021-09-30"]) == 0
    err = capsys.readouterr().err
    assert err == f"rulebooks/stockholm/hlv-2016.md:19: warning: replaced: {MESSAGE}\n"
    assert main(["eval", "stockholm/hlv-2016", "--input", "examples/stockholm-2016.json", "--on", "2016-03-15"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("assume", [[], ["--assume", "listning_på_besöksdagen=false"]])
def test_eval_as_json_lines_warns_too(capsys, assume):
    # Streamed from the lowered plan, or (with an assumption) by the interpreter.
    assert main(["eval", "stockholm/hlv-2016", "--input", EXAMPLE, "--on", "2021-09-30", "--format", "jsonl",
                 *assume]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") > 10
    assert captured.err.endswith(f"rulebooks/stockholm/hlv-2016.md:19: warning: replaced: {MESSAGE}\n")
    assert main(["eval", "stockholm/hlv-2016", "--input", "examples/stockholm-2016.json", "--on", "2016-03-15",
                 "--format", "jsonl", *assume]) == 0
    assert "replaced" not in capsys.readouterr().err


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    directory = tmp_path_factory.mktemp("replaced-region")
    write_demo_region(directory, persons=400, seed=3, file_format="csv",
                      months=(dt.date(2021, 1, 1), dt.date(2021, 9, 1)))
    return directory


def test_settle_reports_the_replacement_among_its_warnings(region, tmp_path, capsys):
    assert main(["settle", "stockholm/hlv-2016", "--month", "2021-09", "--data", str(region),
                 "--out", str(tmp_path / "lines.parquet"), "--format", "json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["warnings"][0] == {"warning": "replaced", "message": MESSAGE, "provision": None,
                                      "source": "rulebooks/stockholm/hlv-2016.md:19"}
    assert f"warning: replaced: {MESSAGE}" in captured.err
    # January 2021 ends before the replacement: no warning.
    assert main(["settle", "stockholm/hlv-2016", "--month", "2021-01", "--data", str(region),
                 "--out", str(tmp_path / "january.parquet"), "--format", "json"]) == 0
    assert all(w["warning"] != "replaced" for w in json.loads(capsys.readouterr().out)["warnings"])


def test_impact_of_a_model_against_its_replacement_does_not_warn_but_against_another_does(region, capsys):
    assert main(["impact", "stockholm/hlv-2016", "stockholm/hlv-2021", "--month", "2021-09",
                 "--data", str(region), "--format", "json"]) == 0
    assert "replaced" not in capsys.readouterr().err
    assert main(["impact", "stockholm/kroninnovation-2016", "stockholm/hlv-2016", "--month", "2021-09",
                 "--data", str(region), "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert "stockholm/kroninnovation-2016 was replaced by stockholm/hlv-2021 from 2021-02-01" in err
    assert MESSAGE in err


HEADER = '''# Base

```rulelang
rulebook "{id}"
  version "1"
  in force from 2020-01-01
  {clause}
```
'''


@pytest.mark.parametrize("clause, said", [
    ('replaced by "t/base" from 2021-01-01', "rulebook t/base cannot be replaced by itself"),
    ('replaced by "t/other" from 2020-01-01',
     "rulebook t/base is replaced on 2020-01-01, not after it comes into force on 2020-01-01"),
    ('replaced by "t/nowhere" from 2021-01-01', "replaced by 't/nowhere'"),
])
def test_a_replacement_that_cannot_be_is_an_error_at_the_header(tmp_path, monkeypatch, clause, said):
    add = rulebook_library(tmp_path, monkeypatch, "t/other", HEADER.format(id="t/other", clause=""))
    path = add("t/base", HEADER.format(id="t/base", clause=clause))
    with pytest.raises(RulebookError) as raised:
        rulelang.load("t/base")
    (diagnostic,) = [d for d in raised.value.diagnostics if d.severity == "error"]
    assert said in diagnostic.message
    assert (diagnostic.span.file, diagnostic.span.line) == (path, 4)


def test_the_clause_is_kept_by_the_formatter(tmp_path, monkeypatch, capsys):
    add = rulebook_library(tmp_path, monkeypatch, "t/other", HEADER.format(id="t/other", clause=""))
    add("t/base", HEADER.format(id="t/base", clause='replaced by "t/other" from 2021-01-01'))
    assert rulelang.load("t/base").checked.header.replaced_by == ("t/other", dt.date(2021, 1, 1))
    assert main(["fmt", "--check", str(tmp_path / "t" / "base.md")]) == 0, capsys.readouterr()
