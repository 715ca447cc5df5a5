"""The Python API as a tool that embeds rulelang uses it: the README's snippet runs as
written, one base exception, dates as text, compact reprs, public settle, render and loads,
and type hints a checker accepts."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest

import rulelang

pytestmark = pytest.mark.usefixtures("at_repo_root")

ROOT = Path(__file__).resolve().parent.parent
BOOK = "stockholm/hlv-2021"
EXAMPLE = "examples/stockholm-2021.json"


@pytest.fixture(scope="module")
def book():
    return rulelang.load(BOOK)


def test_the_readme_python_snippet_runs_as_written():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API"):]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, "README.md", "exec"), {})
    out = printed.getvalue()
    assert "P1 listningsersättning 300.00 A" in out  # the persons valued on 2021-09-30
    assert "avdrag = -350.00 kr" in out  # the explanation under the assumed 350 kr
    assert "'2021-09-31' is not a date" in out


def test_every_error_a_caller_can_cause_is_a_rulelang_error(book):
    for error in (rulelang.RulebookError, rulelang.DataError, rulelang.EvaluationError, rulelang.NotFound,
                  rulelang.InvalidArgument, rulelang.AssumptionError, rulelang.SettlementError):
        assert issubclass(error, rulelang.Error)
    data = book.dataset(EXAMPLE)
    causes = [lambda: rulelang.load("stockholm/none"), lambda: book.evaluate(data, on="30/09/2021"),
              lambda: book.evaluate_record(data, "avdrag", "V999"), lambda: book.explain(data, "no_output", "V1"),
              lambda: book.evaluate(data, on="2021-09-30", assume={"avdrag_fysiskt_besök": "lots"}),
              lambda: rulelang.loads("# no header\n"), lambda: book.dataset({"visits": [{"visit_id": 1}]}),
              lambda: book.settle("2021-13", "demo"), lambda: rulelang.render(object())]
    for cause in causes:
        with pytest.raises(rulelang.Error):
            cause()


def test_dates_are_dates_or_iso_text(book):
    data = book.dataset(EXAMPLE)
    as_text = book.evaluate(data, on="2021-09-30")
    as_date = book.evaluate(data, on=dt.date(2021, 9, 30))
    assert [r.to_dict() for r in as_text] == [r.to_dict() for r in as_date]
    with pytest.raises(rulelang.InvalidArgument, match="give a datetime.date or the text YYYY-MM-DD"):
        book.evaluate(data, on="2021-9-30")


def test_reprs_are_compact(book):
    data = book.dataset(EXAMPLE)
    assert repr(book) == "<Rulebook stockholm/hlv-2021 2021.5: 11 outputs, 36 rules, 40 parameters>"
    assert repr(data).startswith("<Dataset clinics: 3 records, persons: 3 records") and len(repr(data)) < 200
    result = book.evaluate_record(data, "avdrag", "V1")
    assert repr(result) == "<Result visits V1 avdrag = -300.00 kr>"
    assert repr(book.explain(data, "avdrag", "V1")).startswith("<Explanation output avdrag = '-300.00'")


def test_results_say_payee_date_and_source(book):
    result = book.evaluate_record(book.dataset(EXAMPLE), "avdrag", "V1").to_dict()
    assert list(result) == ["table", "record", "output", "value", "provision", "payee", "date", "source"]
    assert (result["value"], result["payee"], result["date"]) == ("-300.00", "A", "2021-09-15")
    assert result["source"].startswith("rulebooks/stockholm/hlv-2021.md:")


def test_render_gives_what_the_cli_prints(book, capsys):
    from rulelang.interfaces.cli import main

    tree = book.explain(book.dataset(EXAMPLE), "avdrag", "V1")
    for format in ("text", "json", "html"):
        assert main(["explain", BOOK, "--input", EXAMPLE, "--output", "avdrag", "--record", "V1",
                     "--format", format]) == 0
        printed = capsys.readouterr().out
        assert rulelang.render(tree, format, title=f"{BOOK}: avdrag för V1") == printed
    with pytest.raises(rulelang.InvalidArgument, match="an explanation renders as text, json, html"):
        rulelang.render(tree, "csv")


def test_loads_reads_a_rulebook_from_text_and_follows_what_it_amends():
    text = (ROOT / "rulebooks" / "stockholm" / "hlv-2021.md").read_text(encoding="utf-8")
    loaded = rulelang.loads(text, "proposal.md")
    assert loaded.id == BOOK and [s.path for s in loaded.checked.chain] == [
        "rulebooks/stockholm/hlv-2016.md", "proposal.md"]
    explained = loaded.explain(loaded.dataset(EXAMPLE), "avdrag", "V1").to_dict()
    assert explained["value"] == "-300.00" and explained["source"].startswith("proposal.md:")
    with pytest.raises(rulelang.RulebookError, match="proposal.md:1:1: error: the rulebook has no"):
        rulelang.loads("# a heading only\n", "proposal.md")


def test_settle_is_public_and_renders(book, tmp_path):
    from rulelang.interfaces.demo import write_demo_region

    write_demo_region(tmp_path / "region", persons=800, seed=2, file_format="csv")
    settled = rulelang.settle(book, "2021-09", tmp_path / "region", tmp_path / "out.csv",
                              assume={"avdrag_fysiskt_besök": "350 kr"})
    assert repr(settled).startswith("<Settlement stockholm/hlv-2021 2021-09 on duckdb:")
    summary = json.loads(rulelang.render(settled, "json"))
    assert summary["assumptions"] == {"avdrag_fysiskt_besök": "350.00 kr"}
    assert (tmp_path / "out-totals.csv").exists()
    assert "ASSUMED for this run" in rulelang.render(settled)


def test_the_public_api_type_checks():
    from mypy import api

    out, err, status = api.run(["--ignore-missing-imports", "--follow-imports=silent", "--no-error-summary",
                                str(ROOT / "rulelang" / "__init__.py"), str(ROOT / "rulelang" / "interfaces" / "api.py")])
    assert status == 0, out + err
    assert (ROOT / "rulelang" / "py.typed").exists()  # tools that import rulelang see its hints


def test_deep_work_from_many_threads_gets_its_own_result_or_error_on_kept_threads():
    """Evaluation runs on kept deep-stack threads (language/deep.py): called from sixteen
    threads at once, each call gets its own answer or its own exception, a call from a deep
    thread runs where it is, and no thread is started per call."""
    import threading

    from rulelang.language import deep

    def work(n):
        if n % 5 == 0:
            raise ValueError(f"refused {n}")
        assert deep.run_deep(lambda: threading.current_thread().name) == threading.current_thread().name
        return n * n

    answers: dict = {}

    def caller(n):
        try:
            answers[n] = deep.run_deep(work, n)
        except ValueError as error:
            answers[n] = str(error)

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(16)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert answers == {n: f"refused {n}" if n % 5 == 0 else n * n for n in range(16)}
    before = threading.active_count()
    for n in range(1, 50):
        assert deep.run_deep(work, n if n % 5 else n + 1) in (n * n, (n + 1) * (n + 1))
    assert threading.active_count() == before
    assert deep._THREADS.started <= deep.WORKERS
