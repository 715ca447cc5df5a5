"""`eval --format jsonl`: every result streamed from the lowered plan in DuckDB, the same
values, provisions and order as the interpreter gives (`--format json`), the same errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cli_support import run_cli
from hypothesis import HealthCheck, given, settings, strategies as st
from regions import regions, write_region

import rulelang
from rulelang.columnar.streaming import plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "stockholm/hlv-2016": ("examples/stockholm-2016.json", "2016-03-31"),
    "stockholm/hlv-2021": ("examples/stockholm-2021.json", "2021-09-30"),
    "stockholm/kroninnovation-2016": ("examples/kroninnovation-2016.json", "2016-03-31"),
    "vastra-gotaland/vg-primarvard": ("examples/vastra-gotaland-2017.json", "2017-03-15"),
    "skaraborg/narvard-2014": ("examples/skaraborg-2014.json", "2014-06-01"),
    "jamtland/patientmiljarden-2018": ("examples/jamtland-2018.json", "2018-06-30"),
}


pytestmark = pytest.mark.usefixtures("at_repo_root")


run = run_cli  # (exit status, standard output, standard error)


def both(book: str, data, on: str) -> tuple:
    """(results of `eval --format json`, results of `eval --format jsonl`, exit statuses, errors)."""
    code_json, out_json, err_json = run("eval", book, "--input", data, "--on", on, "--format", "json")
    code_lines, out_lines, err_lines = run("eval", book, "--input", data, "--on", on, "--format", "jsonl")
    whole = json.loads(out_json)["results"] if code_json == 0 else None
    lines = [json.loads(line) for line in out_lines.splitlines()] if code_lines == 0 else None
    return whole, lines, (code_json, code_lines), (err_json, err_lines)


@pytest.mark.parametrize("book", sorted(EXAMPLES))
def test_every_rulebook_streams_what_the_interpreter_gives(book):
    data, on = EXAMPLES[book]
    loaded = rulelang.load(book)
    plan(loaded, dt.date.fromisoformat(on))  # it lowers: the stream is the plan's
    whole, lines, codes, errors = both(book, data, on)
    assert codes == (0, 0), errors
    assert lines == whole and len(lines) >= 3
    # Each result says whom it pays, the date it was evaluated on and the deciding rule's place.
    assert list(lines[0]) == ["table", "record", "output", "value", "provision", "payee", "date", "source"]
    assert all(r["date"] for r in lines) and all(":" in r["source"] for r in lines)
    assert any(r["payee"] for r in lines) == any(o.payee is not None for o in loaded.program.outputs.values())


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_regions_stream_what_the_interpreter_gives(tmp_path_factory, data):
    book = data.draw(st.sampled_from(["stockholm/hlv-2021", "vastra-gotaland/vg-primarvard", "stockholm/hlv-2016"]))
    month = {"stockholm/hlv-2021": "2021-09", "vastra-gotaland/vg-primarvard": "2017-03",
             "stockholm/hlv-2016": "2016-12"}[book]
    region = data.draw(regions(month))
    path = write_region(region, tmp_path_factory.mktemp("region"))
    whole, lines, codes, errors = both(book, path, f"{month}-28")
    assert codes[0] == codes[1], errors
    if codes[0] == 0:
        assert lines == whole
    else:  # the same error, word for word
        assert errors[0].splitlines()[0] == errors[1].splitlines()[0]


def test_a_record_that_fails_fails_the_stream_with_the_interpreters_words(tmp_path):
    document = json.loads((ROOT / "examples/stockholm-2021.json").read_text(encoding="utf-8"))
    document["visits"][0]["date"] = "2015-06-01"  # before any rule of the model is in force
    path = tmp_path / "region.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    whole, lines, codes, errors = both("stockholm/hlv-2021", path, "2021-09-30")
    assert codes == (2, 2)
    assert errors[1].strip().splitlines()[-1] == errors[0].strip().splitlines()[0]
    assert "record V1" in errors[1] and "2015-06-01" in errors[1]


def test_refused_input_is_refused_by_the_stream_as_by_eval(tmp_path):
    document = json.loads((ROOT / "examples/stockholm-2021.json").read_text(encoding="utf-8"))
    document["persons"][0]["birth_date"] = "1950-02-30"
    path = tmp_path / "region.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    whole, lines, codes, errors = both("stockholm/hlv-2021", path, "2021-09-30")
    assert codes == (2, 2) and errors[0] == errors[1]
