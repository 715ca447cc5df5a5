"""What if, and what changed: `impact` (the money a change moves, from one engine session),
`readings` (the money each reading moves), `diff` (what changed, citing both sides) and
rulebooks at a git revision (`ID@REVISION`)."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import subprocess
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from cli_support import run_cli
from hypothesis import HealthCheck, given, settings
from regions import regions, write_region
from spark_support import needs_spark

import rulelang
from rulelang.columnar.impact import Side, impact
from rulelang.columnar.settlement import interpreter_line_items
from rulelang.interfaces.demo import write_demo_region

pytestmark = pytest.mark.usefixtures("at_repo_root")

ROOT = Path(__file__).resolve().parent.parent
OLD, NEW = "stockholm/hlv-2016", "stockholm/hlv-2021"
MONTH = "2021-09"


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    directory = tmp_path_factory.mktemp("impact-region")
    write_demo_region(directory, persons=3000, seed=4, file_format="csv")
    return directory


def _impact_json(*argv) -> dict:
    code, out, err = run_cli("impact", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def _settled(book: str, region: Path, out: Path) -> tuple:
    """(totals rows, line items keyed by component and record) of one settle run."""
    code, _, err = run_cli("settle", book, "--month", MONTH, "--data", region, "--out", out)
    assert code == 0, err
    with open(out.with_name(out.stem + "-totals.csv"), encoding="utf-8", newline="") as handle:
        totals = {(row["clinic_id"], row["component"]): Decimal(row["amount"]) for row in csv.DictReader(handle)}
    with open(out, encoding="utf-8", newline="") as handle:
        lines = {(row["component"], row["record_id"] or row["clinic_id"]): (row["clinic_id"], Decimal(row["amount"]))
                 for row in csv.DictReader(handle)}
    return totals, lines


# ------------------------------------------------------------------------ impact


def test_impact_of_the_2021_revision_is_the_difference_of_two_settlements(region, tmp_path):
    old_totals, old_lines = _settled(OLD, region, tmp_path / "old.csv")
    new_totals, new_lines = _settled(NEW, region, tmp_path / "new.csv")
    report = _impact_json(OLD, NEW, "--data", region, "--month", MONTH, "--largest", "5")
    # Every clinic and component, each delta the new settlement's total less the old one's.
    clinics = {(row["clinic_id"], row["component"]): row for row in report["clinics"]}
    assert set(clinics) == set(old_totals) | set(new_totals)
    for key, row in clinics.items():
        old, new = old_totals.get(key, Decimal(0)), new_totals.get(key, Decimal(0))
        assert (Decimal(row["old"]), Decimal(row["new"]), Decimal(row["delta"])) == (old, new, new - old), key
    per_component = Counter()
    for (clinic, component), amount in new_totals.items():
        per_component[component] += amount
    for (clinic, component), amount in old_totals.items():
        per_component[component] -= amount
    assert {c["component"]: Decimal(c["delta"]) for c in report["components"]} == dict(per_component)
    assert Decimal(report["total_delta"]) == sum(per_component.values())
    # The revision moves money: the 2021 deduction and bonus exist only in the new rulebook.
    assert Decimal(report["total_delta"]) != 0
    assert {c["component"]: c["old"] for c in report["components"]}["avdrag"] == "0.00"
    # Lines changed: those whose amount (or payee) differs, counted from the two line files.
    changed = {key for key in set(old_lines) | set(new_lines)
               if old_lines.get(key, (None, 0)) != new_lines.get(key, (None, 0))}
    assert report["lines_changed"] == len(changed)
    # The largest changes, each with both amounts as the settlements wrote them, largest first.
    largest = report["largest"]
    assert len(largest) == 5
    deltas = [abs(Decimal(line["delta"])) for line in largest]
    assert deltas == sorted(deltas, reverse=True)
    assert deltas[0] == max(abs(new_lines.get(k, (None, 0))[1] - old_lines.get(k, (None, 0))[1]) for k in changed)
    for line in largest:
        key = (line["component"], line["record_id"])
        assert Decimal(line["old"]) == old_lines.get(key, (None, Decimal(0)))[1]
        assert Decimal(line["new"]) == new_lines.get(key, (None, Decimal(0)))[1]


def test_each_largest_change_comes_with_commands_that_explain_both_amounts(region):
    report = _impact_json(OLD, NEW, "--data", region, "--month", MONTH, "--largest", "3")
    assert any(None in line["explain"] for line in report["largest"])  # an output only 2021 has
    for line in report["largest"]:
        for book, command, amount in zip((OLD, NEW), line["explain"], (line["old"], line["new"])):
            if command is None:  # that side has no such output: it pays nothing
                assert amount == "0.00" and line["component"] not in rulelang.load(book).outputs
                continue
            words = shlex.split(command)
            assert words[:2] == ["rulelang", "explain"]
            code, out, err = run_cli(*words[1:], "--format", "json")
            assert code == 0, err
            assert json.loads(out)["value"] == amount


def test_impact_of_a_rulebook_on_itself_is_zero(region):
    report = _impact_json(NEW, NEW, "--data", region, "--month", MONTH)
    assert report["total_delta"] == "0.00" and report["lines_changed"] == 0 and report["largest"] == []
    assert all(row["delta"] == "0.00" for row in report["clinics"])
    assert report["data_reads"] == 1  # the same tables: the data is read and checked once


def test_an_assumption_prices_an_amendment_before_it_is_written(region, tmp_path):
    # The video add-on raised from 300 kr to 350 kr: 50 kr more on each line the video rule decides.
    book = rulelang.load(NEW)
    video = book.program.rules["videobesök_utanför_koncernen"].provision
    _, lines_by_key = _settled(NEW, region, tmp_path / "lines.csv")
    with open(tmp_path / "lines.csv", encoding="utf-8", newline="") as handle:
        video_lines = [row for row in csv.DictReader(handle)
                       if row["component"] == "tilläggsersättning" and row["provision"] == video]
    assert video_lines and all(row["amount"] == "300.00" for row in video_lines)
    report = _impact_json(NEW, NEW, "--data", region, "--month", MONTH, "--assume",
                          "tilläggsersättning_videobesök=350 kr")
    assert Decimal(report["total_delta"]) == Decimal(50) * len(video_lines)
    assert report["lines_changed"] == len(video_lines)
    assert report["assumptions"] == {"tilläggsersättning_videobesök": "350.00 kr"}
    assert {c["component"] for c in report["components"] if c["delta"] != "0.00"} == {"tilläggsersättning"}
    # The new side's explain command carries the assumption; the old side's does not.
    old_command, new_command = report["largest"][0]["explain"]
    assert "--assume" not in old_command and "--assume 'tilläggsersättning_videobesök=350.00 kr'" in new_command
    code, out, _ = run_cli("impact", NEW, NEW, "--data", region, "--month", MONTH,
                           "--assume", "tilläggsersättning_videobesök=350 kr")
    assert code == 0 and "ASSUMED on the new side, not the rulebook's own values: " \
                         "tilläggsersättning_videobesök = 350.00 kr" in out


def test_impact_as_csv_and_html(region, tmp_path):
    code, out, _ = run_cli("impact", OLD, NEW, "--data", region, "--month", MONTH, "--format", "csv")
    assert code == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["clinic_id", "month", "component", "old", "new", "delta"]
    report = _impact_json(OLD, NEW, "--data", region, "--month", MONTH)
    assert [r[0] for r in rows[1:]] == [c["clinic_id"] for c in report["clinics"]]
    assert all(Decimal(r[5]) == Decimal(r[4]) - Decimal(r[3]) for r in rows[1:])
    page = tmp_path / "impact.html"
    code, _, err = run_cli("impact", OLD, NEW, "--data", region, "--month", MONTH, "--format", "html",
                           "--out", page)
    assert code == 0 and f"wrote {page}" in err
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<script src" not in text
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched
    clinic, delta = max(((c, sum(Decimal(r["delta"]) for r in report["clinics"] if r["clinic_id"] == c))
                         for c in {r["clinic_id"] for r in report["clinics"]}), key=lambda item: abs(item[1]))
    assert f"{clinic}: " in text and (f"+{delta:.2f}" if delta >= 0 else f"{delta:.2f}") in text


@pytest.mark.parametrize("argv, said", [
    (["--month", "2021-13"], "--month must be YYYY-MM"),
    (["--month", MONTH, "--assume", "tilläggsersättning_videobesök=350"], "is money; write a value such as 350 kr"),
])
def test_impact_refuses_bad_usage(region, argv, said):
    code, _, err = run_cli("impact", NEW, NEW, "--data", region, *argv)
    assert code == 2 and said in err and "Traceback" not in err


def _interpreter_impact(old_book, new_book, dataset, month: str, assumptions=None) -> tuple:
    """(per clinic and component: new less old öre, lines changed), record by record."""
    sides = []
    for book, assumed in ((old_book, None), (new_book, assumptions)):
        sides.append({(component, record or clinic): (clinic, amount) for clinic, _, component, amount, _, record, _
                      in interpreter_line_items(book, dataset, month, assumed)})
    deltas = Counter()
    for number, lines in enumerate(sides):
        for (component, _), (clinic, amount) in lines.items():
            deltas[(clinic, component)] += amount if number else -amount
    changed = sum(1 for key in set(sides[0]) | set(sides[1]) if sides[0].get(key) != sides[1].get(key))
    return {key: delta for key, delta in deltas.items() if delta}, changed


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(region=regions(MONTH))
def test_impact_on_duckdb_is_the_interpreters(region, tmp_path_factory):
    old_book, new_book = rulelang.load(OLD), rulelang.load(NEW)
    path = write_region(region, tmp_path_factory.mktemp("generated"))
    expected, changed = _interpreter_impact(old_book, new_book, new_book.dataset(path), MONTH)
    result = impact(Side(old_book, OLD), Side(new_book, NEW), MONTH, path)
    got = {(clinic, component): new - old for clinic, component, old, new in result.clinics if new != old}
    assert got == expected
    assert result.lines_changed == changed


@needs_spark
def test_impact_on_spark_is_duckdbs_and_the_interpreters(tmp_path):
    data = tmp_path / "region"
    write_demo_region(data, persons=1500, seed=9, file_format="parquet")
    old_book, new_book = rulelang.load(OLD), rulelang.load(NEW)
    assumed = new_book.assume(["avdrag_fysiskt_besök=350 kr"])
    results = [impact(Side(old_book, OLD), Side(new_book, NEW, assumed), MONTH, data, engine=engine, largest=20)
               for engine in ("duckdb", "spark")]
    documents = [r.to_dict() for r in results]
    for document in documents:
        for varying in ("engine", "seconds", "phases"):
            document.pop(varying)
    assert documents[0] == documents[1]
    expected, changed = _interpreter_impact(old_book, new_book, new_book.dataset(data), MONTH, assumed)
    got = {(clinic, component): new - old for clinic, component, old, new in results[1].clinics if new != old}
    assert got == expected and results[1].lines_changed == changed
    itself = impact(Side(new_book, NEW), Side(new_book, NEW), MONTH, data, engine="spark")
    assert itself.total_new == itself.total_old and itself.lines_changed == 0


# ------------------------------------------------------------------------ readings


def test_readings_lists_every_reading_with_default_alternatives_and_cite():
    code, out, err = run_cli("readings", NEW, "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["rulebook"] == NEW
    by_name = {r["name"]: r for r in document["readings"]}
    reading = by_name["koncern_undantag_fysiska_besök"]
    assert (reading["default"], reading["alternatives"]) == ("false", ["true"])
    declared = (ROOT / "rulebooks/stockholm/hlv-2021.md").read_text(encoding="utf-8").splitlines()
    line = declared.index("parameter koncern_undantag_fysiska_besök: boolean") + 2  # its value, the next line
    assert reading["cite"].startswith("Tolkning 1") and reading["source"] == f"rulebooks/stockholm/hlv-2021.md:{line}"
    assert "impact" not in reading  # no data, no money
    # Inherited readings are listed too. A number's alternatives are the values the examples
    # (here the 2016 rulebook's "The missing ACG weight, alternative reading") assume for it;
    # a number no example works otherwise lists none.
    assert by_name["listning_på_besöksdagen"]["source"].startswith("rulebooks/stockholm/hlv-2016.md:")
    assert by_name["acg_vikt_när_den_saknas"]["alternatives"] == ["0.8"]
    assert by_name["patientavgift_läkarbesök"]["alternatives"] == []


def test_readings_with_data_price_each_alternative_as_impact_does(region):
    code, out, err = run_cli("readings", NEW, "--data", region, "--month", MONTH, "--format", "json")
    assert code == 0, err
    readings = json.loads(out)["readings"]
    moved = [r for r in readings if any(v != "0.00" for v in r.get("impact", {}).values())]
    assert moved, "some reading moves money in the demo region"
    for reading in moved[:2] + [r for r in readings if r["alternatives"]][:1]:
        for alternative, kronor in reading["impact"].items():
            report = _impact_json(NEW, NEW, "--data", region, "--month", MONTH,
                                  "--assume", f"{reading['name']}={alternative}")
            assert report["total_delta"] == kronor
    assert all("impact" not in r or r["impact"] == {} for r in readings if not r["alternatives"])
    code, out, _ = run_cli("readings", NEW, "--data", region, "--month", MONTH)
    (alternative, kronor), = list(moved[0]["impact"].items())[:1]
    signed = kronor if kronor.startswith("-") else "+" + kronor
    assert code == 0 and f"alternative {alternative}: {signed} kr" in out


def test_readings_with_data_needs_a_month(region):
    code, _, err = run_cli("readings", NEW, "--data", region)
    assert code == 2 and "--data needs --month" in err


def test_the_readings_table_for_the_demo_region_is_in_the_docs(tmp_path):
    # The table in docs/rulebooks.md is what the command prints today on the README's demo region.
    code, _, err = run_cli("demo-data", "--out", tmp_path / "demo")
    assert code == 0, err
    code, out, err = run_cli("readings", NEW, "--data", tmp_path / "demo", "--month", MONTH, "--format", "json")
    assert code == 0, err
    rows = [f"| `{r['name']}` | {r['default']} | {alternative} | "
            f"{kronor if kronor.startswith('-') else '+' + kronor} | {r['source'].rsplit('/', 1)[-1]} |"
            for r in json.loads(out)["readings"] for alternative, kronor in r["impact"].items()]
    page = (ROOT / "docs" / "rulebooks.md").read_text(encoding="utf-8")
    assert "rulelang readings stockholm/hlv-2021 --data demo --month 2021-09" in page
    header = "| parameter | the rulebook's answer | alternative | moves in 2021-09 (kr) | written at |\n|---|---|---|---|---|\n"
    assert header + "\n".join(rows) + "\n\n" in page
    assert any(not row.endswith("| +0.00 | " + row.rsplit("| ", 2)[-1]) for row in rows)


# ------------------------------------------------------------------------ diff


def test_diff_of_the_2021_revision_names_what_changed_citing_both_sides():
    code, out, err = run_cli("diff", OLD, NEW, "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["old"], document["new"]) == (OLD, NEW)
    changes = {(c["kind"], c["name"]): c for c in document["changes"]}
    avdrag = changes[("output", "avdrag")]
    assert avdrag["change"] == "added" and avdrag["old"] is None
    assert avdrag["new"]["source"].startswith("rulebooks/stockholm/hlv-2021.md:")
    repealed = changes[("rule", "besök")]
    assert repealed["change"] == "changed"
    assert repealed["old"]["period"] == "2016-01-01 – further notice" and "repealed_from" not in repealed["old"]
    assert repealed["new"]["repealed_from"] == "2021-02-01"
    assert repealed["new"]["repealed_at"].startswith("rulebooks/stockholm/hlv-2021.md:")
    table = changes[("parameter", "listningsersättning_per_ålder")]
    assert [v["period"] for v in table["new"]["values"]] == ["2016-01-01 – 2021-01-31", "2021-02-01 – further notice"]
    assert table["new"]["values"][1]["source"].startswith("rulebooks/stockholm/hlv-2021.md:")
    assert changes[("reading", "koncern_undantag_fysiska_besök")]["change"] == "added"
    quoted = changes[("provision", "STH21.6.8 Koncern (stockholm/hlv-2021)")]
    assert quoted["new"]["quotes"] == ["med koncern menas mottagningar som endera tillhör samma ägare eller "
                                       "samma organisation"]
    kinds = {c["kind"] for c in document["changes"]}
    assert kinds <= {"parameter", "rule", "exception", "provision", "reading", "output", "table", "definition"}


def test_diff_of_a_rulebook_with_itself_is_empty():
    code, out, _ = run_cli("diff", NEW, NEW, "--format", "json")
    assert code == 0 and json.loads(out)["changes"] == []
    code, out, _ = run_cli("diff", NEW, NEW)
    assert code == 0 and "no changes" in out


def test_diff_as_html_is_one_self_contained_page(tmp_path):
    code, out, _ = run_cli("diff", OLD, NEW, "--format", "html")
    assert code == 0 and out.startswith("<!DOCTYPE html>")
    assert "http://" not in out and "https://" not in out
    assert "rulebooks/stockholm/hlv-2021.md:" in out and "<h2>outputs</h2>" in out


# ------------------------------------------------------------------------ ID@REVISION


@pytest.fixture
def amended(tmp_path, monkeypatch):
    """A git repository of rulebooks in which hlv-2021 is amended and not yet committed: the
    video add-on is 350 kr from 2021-02-01 instead of 300 kr."""
    if shutil.which("git") is None:
        pytest.fail("these tests need git")
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "rulebooks", repo / "rulebooks")
    git = ["git", "-C", str(repo), "-c", "user.name=rulelang", "-c", "user.email=rulelang@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "as decided"], check=True)
    path = repo / "rulebooks" / "stockholm" / "hlv-2021.md"
    text = path.read_text(encoding="utf-8")
    before = "value 300 kr from 2021-02-01 until 2021-12-31 status interpretation"
    assert before in text
    path.write_text(text.replace(before, before.replace("300 kr", "350 kr")), encoding="utf-8")
    monkeypatch.chdir(repo)
    return repo


def test_diff_against_the_last_commit_shows_the_amendment(amended):
    code, out, err = run_cli("diff", f"{NEW}@HEAD", NEW, "--format", "json")
    assert code == 0, err
    (change,) = json.loads(out)["changes"]
    assert (change["kind"], change["name"], change["change"]) == ("parameter", "tilläggsersättning_videobesök", "changed")
    assert change["old"]["values"][0]["value"] == "300.00 kr" and change["new"]["values"][0]["value"] == "350.00 kr"
    text = (amended / "rulebooks" / "stockholm" / "hlv-2021.md").read_text(encoding="utf-8").splitlines()
    line = 1 + next(n for n, row in enumerate(text) if "value 350 kr from 2021-02-01 until 2021-12-31" in row)
    assert change["old"]["values"][0]["source"] == f"rulebooks/stockholm/hlv-2021.md@HEAD:{line}"
    assert change["new"]["values"][0]["source"] == f"rulebooks/stockholm/hlv-2021.md:{line}"


def test_pricing_an_amendment_in_two_commands(amended, region):
    # amend (the fixture), then impact: the same money as assuming the new value on the old text.
    by_revision = _impact_json(f"{NEW}@HEAD", NEW, "--data", region, "--month", MONTH)
    by_assumption = _impact_json(f"{NEW}@HEAD", f"{NEW}@HEAD", "--data", region, "--month", MONTH,
                                 "--assume", "tilläggsersättning_videobesök=350 kr")
    assert Decimal(by_revision["total_delta"]) > 0
    assert by_revision["clinics"] == by_assumption["clinics"]
    assert by_revision["lines_changed"] == by_assumption["lines_changed"]
    old_command = by_revision["largest"][0]["explain"][0]
    assert old_command.startswith(f"rulelang explain {NEW}@HEAD ")
    code, out, err = run_cli(*shlex.split(old_command)[1:], "--format", "json")
    assert code == 0, err
    assert json.loads(out)["source"].startswith("rulebooks/stockholm/hlv-2021.md@HEAD:")


@pytest.mark.parametrize("reference, said", [
    (f"{NEW}@no-such-revision", "no such git revision"),
    ("stockholm/hlv-2099@HEAD", "no rulebook 'stockholm/hlv-2099' at revision HEAD"),
])
def test_a_revision_that_is_not_there_is_a_usage_error(amended, reference, said):
    code, _, err = run_cli("diff", reference, NEW)
    assert code == 2 and said in err and "Traceback" not in err


def test_rulebooks_declaring_different_tables_each_read_the_data_in_the_same_session(region, tmp_path):
    # A copy of the 2016 model whose clinics have one more (optional) field: its intake is its
    # own, so the data is read for each side; the rules are the same, so nothing moves.
    text = (ROOT / "rulebooks" / "stockholm" / "hlv-2016.md").read_text(encoding="utf-8")
    field = "  field pilot: boolean default false\n"
    assert field in text
    changed = tmp_path / "hlv-2016-wider.md"
    changed.write_text(text.replace(field, field + "  field region_note: text optional\n"), encoding="utf-8")
    report = _impact_json(OLD, changed, "--data", region, "--month", MONTH)
    assert report["data_reads"] == 2
    assert report["total_delta"] == "0.00" and report["lines_changed"] == 0
    code, out, _ = run_cli("diff", OLD, changed)
    assert code == 0 and "\n      + field region_note: text optional\n" in out
    assert "field pilot: boolean default false" not in out  # only what differs
