"""The `rulelang` command as users and scripts see it (CONTRACT §3): verbs, output shapes,
exit codes (0 ok; 1 rulebook errors or a failing example; 2 bad usage or bad input data)
and error lines on stderr (`FILE:LINE:COLUMN: error: …`, `FILE: record ID: error: …`),
never a Python traceback.

Expected amounts are worked out from the provisions of rulebooks/stockholm/hlv-2021.md and
of rulebooks/stockholm/hlv-2016.md, which it amends, not taken from a run of the code.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rulebook_factory import MINI

from rulelang.interfaces.cli import main

ROOT = Path(__file__).resolve().parent.parent
BOOK = "stockholm/hlv-2021"
BOOK_FILE = ROOT / "rulebooks" / "stockholm" / "hlv-2021.md"
BASE_FILE = ROOT / "rulebooks" / "stockholm" / "hlv-2016.md"  # the rulebook hlv-2021 amends
EXAMPLE = "examples/stockholm-2021.json"
ON = "2021-09-30"  # persons and clinics carry no date: `eval` of the example needs --on
NEEDS_ON = ("rulelang: error: these outputs are evaluated per record of a table without dates, "
            "so they need --on DATE: ")
MONEY = re.compile(r"^-?\d+\.\d{2}$")


pytestmark = pytest.mark.usefixtures("at_repo_root")


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    return code, captured.out, captured.err


def example_data() -> dict:
    return json.loads((ROOT / EXAMPLE).read_text(encoding="utf-8"))


def write_json(path: Path, document) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# A one-table rulebook with a money input field: the Stockholm tables carry no money, so
# money parsing (exact decimals, öre fractions, wrong types) is checked through this one.


# ---------------------------------------------------------------------------------- check


def test_check_ok(capsys):
    code, out, err = run(capsys, "check", BOOK)
    assert code == 0
    assert err == ""
    # The header says version "2021.5".
    assert out.startswith("stockholm/hlv-2021 2021.5: ok")


def test_check_without_names_checks_every_rulebook_under_rulebooks(capsys):
    code, out, err = run(capsys, "check")
    assert code == 0, err
    assert any(line.startswith("stockholm/hlv-2021 2021.5: ok") for line in out.splitlines())


def test_check_broken_rulebook_reports_file_line_column(capsys, tmp_path):
    broken = tmp_path / "broken.md"
    text = MINI.replace("  then amount * 2", "  then amount +")
    broken.write_text(text, encoding="utf-8")
    bad_line = text.splitlines().index("  then amount +") + 1
    code, out, err = run(capsys, "check", str(broken))
    assert code == 1
    assert "ok" not in out
    first = err.splitlines()[0]
    match = re.match(r"^(.+):(\d+):(\d+): error: (.+)$", first)
    assert match, first
    assert Path(match.group(1)).resolve() == broken.resolve()
    assert int(match.group(2)) == bad_line
    assert int(match.group(3)) >= 1


def test_check_reports_an_undefined_name_at_its_place(capsys, tmp_path):
    broken = tmp_path / "undefined.md"
    text = MINI.replace("then amount * 2", "then amount * faktor")
    broken.write_text(text, encoding="utf-8")
    line_no = text.splitlines().index("  then amount * faktor") + 1
    code, out, err = run(capsys, "check", str(broken))
    assert code == 1
    assert re.search(rf"^.*undefined\.md:{line_no}:\d+: error: .*faktor", err, re.M), err


GAPPED = MINI.replace("  then amount * 2", "  then amount * 2 + tillägg") + """
## M2 Tillägg

```rulelang
according to mini
parameter tillägg: money
  value 1 kr from 2021-01-01 until 2021-03-31 status illustrative cite "m"
  value 2 kr from 2021-05-01 status illustrative cite "m"
```
"""


def test_check_strict_makes_a_warning_an_error(capsys, tmp_path):
    path = tmp_path / "gapped.md"
    path.write_text(GAPPED, encoding="utf-8")
    code, out, err = run(capsys, "check", str(path))
    assert code == 0, err
    assert "warning: parameter tillägg has no value from 2021-04-01 to 2021-04-30" in err
    code, out, err = run(capsys, "check", "--strict", str(path))
    assert code == 1
    assert "error: parameter tillägg has no value from 2021-04-01 to 2021-04-30" in err
    assert "ok" not in out


def test_check_json_gives_every_diagnostic_for_tools(capsys, tmp_path):
    gapped = tmp_path / "gapped.md"
    gapped.write_text(GAPPED, encoding="utf-8")
    broken = tmp_path / "broken.md"
    broken.write_text(MINI.replace("  then amount * 2", "  then amount * 110,50"), encoding="utf-8")
    code, out, err = run(capsys, "check", "--format", "json", str(gapped), str(broken))
    assert code == 1
    assert err == ""
    report = json.loads(out)
    assert [(r["rulebook"], r["ok"], r["errors"], r["warnings"]) for r in report["rulebooks"]] == [
        (str(gapped), True, 0, 1), (str(broken), False, 1, 0)]
    gap, comma = report["diagnostics"]
    assert gap["severity"] == "warning" and gap["message"].startswith("parameter tillägg has no value")
    assert comma["severity"] == "error" and "110.50" in comma["message"]
    line = MINI.splitlines().index("  then amount * 2") + 1
    assert (comma["line"], comma["column"]) == (line, len("  then amount * 110") + 1)
    assert set(gap) >= {"file", "line", "column", "severity", "message"}


def test_check_unknown_rulebook_is_usage_error(capsys):
    code, out, err = run(capsys, "check", "stockholm/no-such-book")
    assert code == 2
    assert "stockholm/no-such-book" in err
    assert out == ""


# ----------------------------------------------------------------------------------- test


def test_test_runs_every_example_and_ends_with_the_summary(capsys):
    code, out, err = run(capsys, "test", BOOK)
    lines = out.splitlines()
    n_examples = BOOK_FILE.read_text(encoding="utf-8").count('\nexample "')
    assert n_examples >= 10
    assert code == 0
    assert lines[-1] == f"{n_examples} passed, 0 failed"
    assert all(line.startswith("PASS stockholm/hlv-2021: ") for line in lines[:-1])
    assert len(lines) == n_examples + 1


def test_test_filter_by_title(capsys):
    # Three examples have "telephone" in their title: reading 3, reading 12's alternative and
    # reading 3's, in the file's order.
    code, out, err = run(capsys, "test", BOOK, "-k", "telephone")
    assert code == 0
    assert out.splitlines() == [
        "PASS stockholm/hlv-2021: A telephone contact gives no add-on and no deduction (reading 3) but is a visit",
        "PASS stockholm/hlv-2021: Reading 12, alternative: a telephone contact gives no visit payment",
        "PASS stockholm/hlv-2021: Reading 3, alternative: telephone contacts count as video visits",
        "3 passed, 0 failed"]
    # The filter is a plain substring of the title.
    code, out, err = run(capsys, "test", BOOK, "-k", "A telephone contact")
    assert code == 0
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_test_with_a_wrong_expectation_fails(capsys, tmp_path):
    text = BOOK_FILE.read_text(encoding="utf-8")
    wrong = 'expect besöksersättning of "JAN" = 116 kr'
    assert text.count('expect besöksersättning of "JAN" = 115 kr') == 1
    copy_path = tmp_path / "hlv-2021.md"
    copy_path.write_text(text.replace('expect besöksersättning of "JAN" = 115 kr', wrong), encoding="utf-8")
    n_examples = text.count('\nexample "')
    code, out, err = run(capsys, "test", str(copy_path))
    assert code == 1
    lines = out.splitlines()
    assert "FAIL stockholm/hlv-2021: Visit compensation: 110 kr, psychologists 425 kr, 115 kr from 2022" in lines
    # 2022-01-01 is under grundersättning_per_besök's second value, 115 kr.
    assert "expected besöksersättning of 'JAN' = 116.00 kr, got 115.00 kr" in out
    assert lines[-1] == f"{n_examples - 1} passed, 1 failed"
    assert sum(line.startswith("FAIL ") for line in lines) == 1


def test_test_of_a_broken_rulebook_exits_1(capsys, tmp_path):
    broken = tmp_path / "broken.md"
    broken.write_text(MINI.replace("  then amount * 2", "  then amount +"), encoding="utf-8")
    code, out, err = run(capsys, "test", str(broken))
    assert code == 1
    assert re.search(r"broken\.md:\d+:\d+: error: ", err)


# ---------------------------------------------------------------------------------- eval

# Worked out from the provisions for examples/stockholm-2021.json. Clinics: A, B in koncern
# K1, C in K2. P1 listed at A, P2 at C, P3 nowhere. The visit values are those of the visit's
# own date, whatever --on says.
EXPECTED = {
    # V1: P1 (listed at A) at C, physical at the clinic, general, doctor, 2021-09-15.
    ("V1", "besöksersättning"): "110.00",    # STH21.5: 110 kr 2021-02-01..2021-12-31, not a psychologist
    ("V1", "tilläggsersättning"): "300.00",  # STH21.6.1: physical visit of another clinic's patient, 300 kr
    ("V1", "avdrag"): "-300.00",             # STH21.6.4: from 2021-09-01, −300 kr to the listing clinic
    # V2: P1 (listed at A, K1) at B (K1), video, 2021-09-15.
    ("V2", "besöksersättning"): "110.00",    # STH21.5: 110 kr
    ("V2", "tilläggsersättning"): "0.00",    # STH21.6.2 needs a patient listed outside the koncern: K1 = K1
    ("V2", "avdrag"): "0.00",                # STH21.6.4 needs a physical visit
    # V3: P2 (listed at C, K2) at A (K1), video, 2021-03-02.
    ("V3", "besöksersättning"): "110.00",    # STH21.5: 110 kr
    ("V3", "tilläggsersättning"): "300.00",  # STH21.6.2: video, listed outside A's koncern (K2 ≠ K1), 300 kr
    ("V3", "avdrag"): "0.00",                # not physical, and before 2021-09-01
    # V4: P3 (unlisted) at C, physical at the clinic, psychosocial, psychologist, 2021-10-05.
    ("V4", "besöksersättning"): "425.00",    # STH21.5 exception psykologbesök: 425 kr
    ("V4", "tilläggsersättning"): "0.00",    # STH21.6.3 would give 300 kr; STH21.6.6 psychosocial → 0 kr
    ("V4", "avdrag"): "0.00",                # unlisted: no deduction; STH21.6.6 anyway
    # V5: P2 (listed at C) at B, physical in the home, general, doctor, 2021-10-05.
    ("V5", "besöksersättning"): "110.00",    # STH21.5: 110 kr
    ("V5", "tilläggsersättning"): "0.00",    # STH21.6.1 would give 300 kr; STH21.6.6 hembesök → 0 kr
    ("V5", "avdrag"): "0.00",                # STH21.6.4 would give −300 kr; STH21.6.5 home visit → 0 kr
}

# The patient fee of each visit (STH16.9, inherited; 2016 levels until 2022, fee not netted):
# 200 kr for a doctor, 100 kr otherwise, 0 kr for a video contact; patients are 18–84.
EXPECTED_FEES = {
    ("V1", "patientavgift"): "200.00",  # P1 (71), physical, doctor
    ("V2", "patientavgift"): "0.00",    # video
    ("V3", "patientavgift"): "0.00",    # video
    ("V4", "patientavgift"): "100.00",  # P3 (22), psychologist: sjukvårdande behandling
    ("V5", "patientavgift"): "200.00",  # P2 (35), doctor at home; not a home-care patient
}

# With --on 2021-09-30 (the month's last day): the listing compensation of STH16.3–16.4 with
# the 2021 age table (STH21.5): age band + CNI × 20 kr (no CNI given) + ACG weight (1.00 when
# not given) × 60 kr. No clinic has quality points, coordinates, takes part in collaboration
# or met the care guarantee; none is eligible for health promotion (STH16.11) or meets the
# requirement for children and young people (STH21.4, from 2021-12-01 only).
CLINIC_MONEY = ("målrelaterad_ersättning", "samordningsersättning", "samverkansersättning", "vårdgarantibonus")
CLINIC_ELIGIBILITY = ("hälsofrämjande_insatser", "uppfyller_kravet_för_barn_och_unga")
EXPECTED_ON = {
    ("P1", "listningsersättning"): "300.00",  # 71: band 65–74, 240 kr + 0 + 60 kr
    ("P2", "listningsersättning"): "180.00",  # 35: band 20–49, 120 kr + 0 + 60 kr
    ("P3", "listningsersättning"): "0.00",    # listed nowhere: the default
    **{(clinic, output): "0.00" for clinic in "ABC" for output in CLINIC_MONEY},
    **{(clinic, output): False for clinic in "ABC" for output in CLINIC_ELIGIBILITY},
}
TABLE_OF = {"listningsersättning": "persons", **{o: "clinics" for o in CLINIC_MONEY + CLINIC_ELIGIBILITY}}

# The provision that decides each non-trivial value (section heading the amount comes from).
EXPECTED_PROVISION = {
    ("V1", "besöksersättning"): "STH21.5 ",
    ("V4", "besöksersättning"): "STH21.5 ",
    ("V1", "tilläggsersättning"): "STH21.6.1 ",
    ("V3", "tilläggsersättning"): "STH21.6.2 ",
    ("V4", "tilläggsersättning"): "STH21.6.6 ",
    ("V5", "tilläggsersättning"): "STH21.6.6 ",
    ("V1", "avdrag"): "STH21.6.4 ",
    ("V5", "avdrag"): "STH21.6.5 ",
    ("V4", "avdrag"): "STH21.6.6 ",
    # No rule applies: the output's own default (0 kr), cited where the output is declared:
    # the add-on since the 2016 model (STH16.12), the deduction in STH21.6.
    ("V2", "tilläggsersättning"): "STH16.12 ",
    ("V2", "avdrag"): "STH21.6 ",
}


def test_eval_json_matches_the_contract_shape_and_values(capsys):
    code, out, err = run(capsys, "eval", BOOK, "--input", EXAMPLE, "--on", ON, "--format", "json")
    assert code == 0
    assert err == ""
    assert out.endswith("\n")
    document = json.loads(out)
    assert set(document) == {"rulebook", "results"}
    assert document["rulebook"] == {"id": "stockholm/hlv-2021", "version": "2021.5"}
    results = document["results"]
    assert len(results) == 41  # 4 outputs × 5 visits + 1 × 3 persons + 6 × 3 clinics
    for result in results:
        # The contract's fields, then whom the value pays, the date it was valued on and the rule's place.
        assert list(result) == ["table", "record", "output", "value", "provision", "payee", "date", "source"]
        assert result["table"] == TABLE_OF.get(result["output"], "visits")
        if result["output"] in CLINIC_ELIGIBILITY:
            assert isinstance(result["value"], bool), result
        else:
            assert isinstance(result["value"], str) and MONEY.match(result["value"]), result
        # Every provision names the document its words come from, or the rulebook whose own text it is.
        assert re.search(r" \((\d{3}_\w+\.txt|Vårdgivarguiden|SLL|1177|stockholm/hlv-20\d\d, the rulebook's own text)",
                         result["provision"]), result["provision"]
    # Outputs in rulebook order (inherited first), records in input order.
    assert [r["output"] for r in results][::5][:2] == ["listningsersättning", "besöksersättning"]
    assert [(r["table"], r["record"]) for r in results[:4]] == [("persons", "P1"), ("persons", "P2"),
                                                               ("persons", "P3"), ("visits", "V1")]
    got = {(r["record"], r["output"]): r["value"] for r in results}
    assert got == {**EXPECTED, **EXPECTED_FEES, **EXPECTED_ON}
    assert provision_of(results, "V1", "patientavgift").startswith("STH16.9 ")
    assert provision_of(results, "P1", "listningsersättning").startswith("STH16.4 ")
    assert provision_of(results, "P3", "listningsersättning").startswith("STH16.2 ")  # the default
    assert provision_of(results, "A", "vårdgarantibonus").startswith("STH21.3 ")
    provisions = {(r["record"], r["output"]): r["provision"] for r in results}
    for key, prefix in EXPECTED_PROVISION.items():
        assert provisions[key].startswith(prefix), (key, provisions[key])
    # Money is written as the contract writes it, sign included.
    assert '"value": "-300.00"' in out and '"value": "300.00"' in out


def provision_of(results, record, output):
    (provision,) = [r["provision"] for r in results if (r["record"], r["output"]) == (record, output)]
    return provision


def test_eval_text_shows_values(capsys):
    code, out, err = run(capsys, "eval", BOOK, "--input", EXAMPLE, "--on", ON)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["table", "record", "output", "value", "provision"]
    rows = {}
    for line in lines[1:]:
        table, record, output, value, provision = re.split(r"\s{2,}", line.strip(), maxsplit=4)
        assert table == TABLE_OF.get(output, "visits"), line
        rows[(record, output)] = (value, provision)
    assert {key: value for key, (value, _) in rows.items()} == {
        k: (str(v).lower() if isinstance(v, bool) else f"{v} kr")
        for k, v in {**EXPECTED, **EXPECTED_FEES, **EXPECTED_ON}.items()}
    assert rows[("V1", "avdrag")][1].startswith("STH21.6.4 ")
    assert rows[("P1", "listningsersättning")][1].startswith("STH16.4 ")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_eval_without_on_refuses_before_evaluating_anything(capsys, fmt):
    code, out, err = run(capsys, "eval", BOOK, "--input", EXAMPLE, "--format", fmt)
    assert code == 2
    assert out == ""
    # Every output per persons or clinics is named, in rulebook order; no visit output is.
    assert err == NEEDS_ON + ("listningsersättning (per persons), målrelaterad_ersättning (per clinics), "
                              "hälsofrämjande_insatser (per clinics), samordningsersättning (per clinics), "
                              "samverkansersättning (per clinics), uppfyller_kravet_för_barn_och_unga (per clinics), "
                              "vårdgarantibonus (per clinics)\n")


def test_eval_without_on_is_fine_when_no_undated_record_is_there(capsys, tmp_path):
    # --on is asked for only when a table without dates has records to evaluate: with every
    # table empty there is nothing to date and nothing to refuse.
    data = example_data()
    data["persons"] = []
    data["clinics"] = []
    data["listings"] = []
    data["visits"] = []
    path = write_json(tmp_path / "empty.json", data)
    code, out, err = run(capsys, "eval", BOOK, "--input", str(path), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["results"] == []


def test_eval_on_dates_persons_and_clinics_and_visits_keep_their_own_date(capsys):
    code, september, err = run(capsys, "eval", BOOK, "--input", EXAMPLE, "--format", "json", "--on", ON)
    assert code == 0, err
    code, january, err = run(capsys, "eval", BOOK, "--input", EXAMPLE, "--format", "json", "--on", "2020-01-01")
    assert code == 0, err
    september, january = json.loads(september)["results"], json.loads(january)["results"]
    # Visits are dated by their own `date`; --on only dates the undated records.
    visit_rows = lambda results: [r for r in results if r["table"] == "visits"]
    assert len(visit_rows(september)) == 20
    assert visit_rows(january) == visit_rows(september)
    # On 2020-01-01 (month end 2020-01-31, 2016 illustrative table): P1 is 69, band 65–74,
    # 200 kr + 1.00 × 60 kr = 260 kr; P2 is 34, band 20–49, 100 kr + 60 kr = 160 kr.
    persons = {r["record"]: r["value"] for r in january if r["table"] == "persons"}
    assert persons == {"P1": "260.00", "P2": "160.00", "P3": "0.00"}


@pytest.mark.parametrize("bad", ["2021-02-30", "2021-6-1", "yesterday"])
def test_eval_bad_on_date_is_usage_error(capsys, bad):
    code, out, err = run(capsys, "eval", BOOK, "--input", EXAMPLE, "--on", bad)
    assert code == 2
    assert out == ""
    assert "not a date" in err and bad in err


@pytest.mark.parametrize("argv", [
    [],                                               # no verb
    ["eval", BOOK],                                   # --input is required
    ["eval", BOOK, "--input", EXAMPLE, "--format", "xml"],
    ["explain", BOOK, "--input", EXAMPLE],            # --output is required
    ["frobnicate"],
])
def test_bad_usage_exits_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "usage:" in err or "error:" in err


def test_eval_unknown_rulebook_is_usage_error(capsys):
    code, out, err = run(capsys, "eval", "stockholm/hlv-1999", "--input", EXAMPLE)
    assert code == 2
    assert "stockholm/hlv-1999" in err
    assert out == ""


def test_eval_missing_input_file_is_data_error(capsys):
    code, out, err = run(capsys, "eval", BOOK, "--input", "examples/no-such-file.json")
    assert code == 2
    assert err.startswith("examples/no-such-file.json: ")
    assert "error:" in err


# -------------------------------------------------------------------------------- explain


def walk(node):
    yield node
    for child in node["children"]:
        yield from walk(child)


def test_explain_text(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "avdrag", "--record", "V1")
    assert code == 0
    lines = out.splitlines()
    # −300 kr (STH21.6.4), charged to A where P1 is listed; it rests on readings 1, 4 and 6
    # (the exclusion of out-of-county patients, the 2016 rulebook's S3).
    assert lines[0].startswith("avdrag = -300.00 kr [visits V1, 2021-09-15] — basis: interpretation")
    assert lines[1] == "  paid to A · rulebook stockholm/hlv-2021"
    assert lines[2] == ("  rests on: seed avdrag_fysiskt_besök · interpretation koncern_undantag_fysiska_besök, "
                        "listning_på_besöksdagen, utomlänspatienter_undantas")
    assert "✔ rule avdrag_fysiskt_besök_hos_annan applies · in force 2021-09-01 – …" in lines
    assert "  then -avdrag_fysiskt_besök → -300.00 kr" in lines
    # The condition as written, then with the values it read, then its value.
    assert ("  ✘ exception avdrag_besök_i_hemmet_eller_annan_plats: mode = physical and place != clinic "
            "→ physical = physical and clinic ≠ clinic → false") in lines
    assert "  ✘ exception utomlänspatient: utomlänsbesök → false" in lines
    assert "  avdrag_fysiskt_besök = 300.00 kr · seed · in force 2021-09-01 – 2023-04-30" in lines
    assert "     cite: 001_d4b7588c97b7b524.txt: ett avdrag på 300 kronor" in lines
    # Each provision is cited once, with the source's words.
    assert out.count("§ STH21.6.4 ") == 1
    assert ('      "Från den 1 september 2021 ger varje fysiskt besök som görs av egen listad patient hos '
            'annan husläkarmottagning ett avdrag på 300 kronor."') in lines
    assert out.count("§ STH21.6.6 ") == 1


def test_explain_full_text_is_the_whole_tree(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "avdrag", "--record", "V1",
                         "--full")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("avdrag = -300.00 kr [visits V1, 2021-09-15] — basis: interpretation")
    assert "  rule avdrag_fysiskt_besök_hos_annan: ✔ applies → -300.00 · in force 2021-09-01 – …" in lines
    assert "    exception avdrag_besök_i_hemmet_eller_annan_plats: ✘ its condition does not hold" in lines
    assert "          definition listningsmottagning → A  (explained above)" in lines
    assert out.count("§ STH21.6.4 ") == 1


def test_explain_json_tree_nodes(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "tilläggsersättning",
                         "--record", "V3", "--format", "json")
    assert code == 0
    tree = json.loads(out)
    lines_of = {"rulebooks/stockholm/hlv-2021.md": BOOK_FILE.read_text(encoding="utf-8").splitlines(),
                "rulebooks/stockholm/hlv-2016.md": BASE_FILE.read_text(encoding="utf-8").splitlines()}
    kinds = set()
    files = set()
    for node in walk(tree):
        kinds.add(node["kind"])
        for key in ("kind", "label", "value", "provision", "source", "children"):
            assert key in node, (key, node["kind"], node["label"])
        match = re.fullmatch(r"(.+):(\d+)", node["source"])
        assert match, node["source"]
        # Every node cites the 2021 rulebook or the 2016 one it amends.
        assert match.group(1) in lines_of, node["source"]
        files.add(match.group(1))
        line = lines_of[match.group(1)][int(match.group(2)) - 1].strip()
        if node["kind"] == "input":
            # An input cites its field's declaration: the tables are inherited from 2016.
            assert match.group(1) == "rulebooks/stockholm/hlv-2016.md", node["source"]
            assert line.startswith(f"field {node['label'].split('.')[1]}: "), line
        elif match.group(1) == "rulebooks/stockholm/hlv-2016.md" and node["provision"]:
            # What is inherited from 2016: the add-on for unlisted patients (STH16.12), the
            # listing helpers and readings S1–S3, each under a 2016 provision.
            assert node["provision"].startswith(("STH16.12", "Tolkningar", "Listning på besöksdagen")), \
                (node["kind"], node["label"], node["provision"])
        if node["kind"] in ("rule", "exception"):
            # The source line is the rule's own declaration.
            assert line.startswith(f"{node['kind']} {node['label']} "), (node["label"], line)
            assert isinstance(node["applied"], bool)
        if node["kind"] == "parameter":
            assert "valid_from" in node and "valid_to" in node
            assert line.startswith("value "), line
        if node["kind"] == "exception":
            assert "applied" in node
    assert {"output", "rule", "exception", "condition", "formula", "parameter", "input", "definition"} <= kinds
    assert files == set(lines_of)
    # 300 kr from STH21.6.2 to A, the clinic that performed the visit.
    assert tree["value"] == "300.00"
    assert tree["paid_to"] == "A"
    assert tree["provision"].startswith("STH21.6.2 ")
    params = [n for n in walk(tree) if n["kind"] == "parameter" and n["label"] == "tilläggsersättning_videobesök"]
    # 2021 rests on the 2022 source by interpretation (STH21.6.2).
    assert params and all((p["valid_from"], p["valid_to"], p["status"]) == ("2021-02-01", "2021-12-31", "interpretation")
                          for p in params)


def test_explain_json_exception_nodes_say_whether_they_applied(capsys):
    # V5 is a home visit: hembesök (STH21.6.6) overrides the 300 kr add-on of STH21.6.1.
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "tilläggsersättning",
                         "--record", "V5", "--format", "json")
    assert code == 0
    tree = json.loads(out)
    assert tree["value"] == "0.00"
    exceptions = [n for n in walk(tree) if n["kind"] == "exception"]
    applied = {n["label"] for n in exceptions if n["applied"]}
    assert applied == {"hembesök"}
    assert {n["label"] for n in exceptions if not n["applied"]} >= {"psykosociala_uppdraget", "hemsjukvårdsbesök"}


def assert_well_formed(page: str) -> None:
    """Every element the page opens it closes, in order (void elements aside)."""
    from html.parser import HTMLParser

    void = {"meta", "br", "hr", "img", "input", "link"}
    stack: list = []

    class Checker(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag not in void:
                stack.append(tag)

        def handle_endtag(self, tag):
            assert stack and stack[-1] == tag, (tag, stack[-5:])
            stack.pop()

    Checker().feed(page)
    assert stack == []


def test_explain_html_is_a_full_document(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "tilläggsersättning",
                         "--record", "V3", "--format", "html")
    assert code == 0
    assert out.startswith("<!DOCTYPE html>")
    assert out.rstrip().endswith("</html>")
    assert_well_formed(out)
    for tag in ("html", "head", "title", "body", "ul", "li", "details", "blockquote", "table"):
        assert re.search(rf"<{tag}[ >]", out), tag
    assert '<meta charset="utf-8">' in out
    assert "<title>stockholm/hlv-2021: tilläggsersättning för V3</title>" in out
    assert "§ STH21.6.2 " in out
    # The olistad_patient condition holds `date < 2021-02-01`: escaped, never raw markup.
    assert "date &lt; 2021-02-01" in out
    assert "date < 2021-02-01" not in out


def test_explain_of_a_person_output_needs_on(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "listningsersättning",
                         "--record", "P1")
    assert code == 2
    assert out == ""
    assert err == NEEDS_ON + "listningsersättning (per persons)\n"  # only the output asked for
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "listningsersättning",
                         "--record", "P1", "--on", ON, "--format", "json")
    assert code == 0, err
    tree = json.loads(out)
    # P1 is 71 on 2021-09-30: 240 kr + 0 × 20 kr + 1.00 × 60 kr = 300 kr, to A (STH16.4).
    assert (tree["table"], tree["record"], tree["date"]) == ("persons", "P1", ON)
    assert (tree["value"], tree["paid_to"]) == ("300.00", "A")
    assert tree["provision"].startswith("STH16.4 ")
    assert tree["source"].startswith("rulebooks/stockholm/hlv-2016.md:")


def test_explain_of_a_visit_keeps_the_visit_date_whatever_on_says(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "avdrag", "--record", "V1",
                         "--on", "2020-01-01", "--format", "json")
    assert code == 0, err
    tree = json.loads(out)
    # V1 is dated 2021-09-15: STH21.6.4 is in force, −300 kr to A.
    assert (tree["date"], tree["value"], tree["paid_to"]) == ("2021-09-15", "-300.00", "A")


def test_explain_needs_record_when_there_are_several(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "avdrag")
    assert code == 2
    assert out == ""
    assert "5 visits records" in err and "--record" in err


def test_explain_single_record_needs_no_record_option(capsys, tmp_path):
    data = example_data()
    data["visits"] = [v for v in data["visits"] if v["visit_id"] == "V1"]
    path = write_json(tmp_path / "one.json", data)
    code, out, err = run(capsys, "explain", BOOK, "--input", str(path), "--output", "avdrag", "--format", "json")
    assert code == 0, err
    tree = json.loads(out)
    assert tree["record"] == "V1" and tree["value"] == "-300.00"


def test_explain_unknown_output(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "bonus", "--record", "V1")
    assert code == 2
    assert "'bonus'" in err
    assert "tilläggsersättning" in err  # lists the outputs there are


def test_explain_unknown_record(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--input", EXAMPLE, "--output", "avdrag", "--record", "V99")
    assert code == 2
    assert err.strip() == f"{EXAMPLE}: record V99: error: no visits record has this id"


def test_explain_unknown_record_of_a_directory_loaded_in_part(capsys, tmp_path, monkeypatch):
    # Loading in part around a record the directory lacks keeps none of its table: that is
    # an unknown record, named with its file, not an input without visits.
    from regions import as_directory

    from rulelang.columnar import intake

    monkeypatch.setattr(intake, "FOCUS_WHOLE_TABLE_ROWS", 0)
    region = as_directory(json.loads(Path(EXAMPLE).read_text(encoding="utf-8")), tmp_path / "region")
    code, out, err = run(capsys, "explain", BOOK, "--input", region, "--output", "avdrag", "--record", "V99")
    assert code == 2
    assert err.strip() == f"{tmp_path / 'region' / 'visits.csv'}: record V99: error: no visits record has this id"


def test_explain_unknown_rulebook(capsys):
    code, out, err = run(capsys, "explain", "stockholm/nope", "--input", EXAMPLE, "--output", "avdrag")
    assert code == 2
    assert "stockholm/nope" in err


# ------------------------------------------------------------------------- bad input data


def mutated(tmp_path: Path, change) -> Path:
    data = example_data()
    change(data)
    return write_json(tmp_path / "input.json", data)


def visit(data, visit_id):
    return next(v for v in data["visits"] if v["visit_id"] == visit_id)


def remove(record, field):
    del record[field]


BAD_DATA = {
    "wrong type": (
        lambda d: d["persons"].append({"person_id": "P9", "birth_date": "1970-01-01", "sex": "M",
                                       "acg_weight": "abc"}),
        "P9", "acg_weight: expected a decimal number (at most 12 digits before the point and 6 after), got 'abc'"),
    "unknown enum value": (
        lambda d: visit(d, "V1").update(mode="teleport"),
        "V1", "mode: 'teleport' is not a visit_mode"),
    "impossible date": (
        lambda d: visit(d, "V2").update(date="2021-02-30"),
        "V2", "date: '2021-02-30' is not a date in the calendar"),
    "missing required field": (
        lambda d: remove(visit(d, "V3"), "profession"),
        "V3", "missing field profession"),
    "duplicate id": (
        lambda d: d["visits"].append(dict(visit(d, "V4"), date="2021-10-06")),
        "V4", "two visits records have the id V4"),
    "unknown person": (
        lambda d: visit(d, "V5").update(person_id="P7"),
        "V5", "person_id 'P7' is not a record of persons"),
    "overlapping listings": (
        # A second listing of P1 from 2020-01-01 while the first (from 2015) is open: the third listing.
        lambda d: d["listings"].append({"person_id": "P1", "clinic_id": "B", "listed_from": "2020-01-01",
                                        "listed_to": None}),
        "#3", "listings of person_id 'P1' overlap"),
    "listing ends before it starts": (
        lambda d: d["listings"][1].update(listed_to="2017-01-01"),
        "#2", "listed_to 2017-01-01 is before listed_from 2018-05-01"),
    "number for text enum": (
        lambda d: visit(d, "V1").update(place=3),
        "V1", "place: '3' is not a visit_place"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_input_record(capsys, tmp_path, case):
    change, record, message = BAD_DATA[case]
    path = mutated(tmp_path, change)
    code, out, err = run(capsys, "eval", BOOK, "--input", str(path))
    assert code == 2
    assert out == ""
    lines = error_lines(err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: record {record}: error: "), lines[0]
    assert message in lines[0]


def test_all_bad_records_are_reported(capsys, tmp_path):
    def change(d):
        visit(d, "V1").update(mode="teleport")
        visit(d, "V4").update(date="2021-13-01")
    path = mutated(tmp_path, change)
    code, out, err = run(capsys, "eval", BOOK, "--input", str(path), "--format", "json")
    assert code == 2
    assert out == ""
    lines = error_lines(err)
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: record V1: error: mode: ")
    assert lines[1].startswith(f"{path}: record V4: error: date: ")


def test_records_naming_a_bad_record_say_so(capsys, tmp_path):
    # P1 is bad; the listing and the visits naming P1 cannot be used either, and are reported
    # as naming a bad record, not as naming a person who is not there.
    path = mutated(tmp_path, lambda d: d["persons"][0].update(sex="X"))
    code, out, err = run(capsys, "eval", BOOK, "--input", str(path))
    assert code == 2
    lines = error_lines(err)
    assert lines[0] == f"{path}: record P1: error: sex: 'X' is not a sex (one of F, M) (persons, record 1)"
    dependants = {line.split(": record ")[1].split(":")[0] for line in lines[1:]}
    assert dependants == {"#1", "V1", "V2"}  # P1's listing and both of P1's visits
    assert all("'P1' names a persons record that has errors" in line for line in lines[1:])
    assert "is not a record of persons" not in err


def test_broken_csv_row(capsys, tmp_path):
    (tmp_path / "clinics.csv").write_text("clinic_id,koncern_id\nA,K1\nB,K1\nC,K2\n", encoding="utf-8")
    (tmp_path / "persons.csv").write_text("person_id,birth_date,sex\nP1,1950-03-14,F\nP2,1985-11-02,M\n",
                                          encoding="utf-8")
    (tmp_path / "listings.csv").write_text("person_id,clinic_id,listed_from,listed_to\nP1,A,2015-01-01,\n",
                                           encoding="utf-8")
    visits = ("visit_id,person_id,clinic_id,date,mode,place,assignment,profession\n"
              "V1,P1,C,2021-09-15,physical,clinic,general,doctor\n"
              "V2,P2,B,2021-09-15,physical,clinic,general,doctor,EXTRA\n")
    (tmp_path / "visits.csv").write_text(visits, encoding="utf-8")
    code, out, err = run(capsys, "eval", BOOK, "--input", str(tmp_path), "--on", ON)
    assert code == 2
    assert out == ""
    lines = error_lines(err)
    assert len(lines) == 1
    assert lines[0].startswith(f"{tmp_path / 'visits.csv'}: record V2: error: ")
    assert "line 3" in lines[0] and "more values than columns" in lines[0]

    # Without the broken row the same directory evaluates: V1 as in the JSON example.
    (tmp_path / "visits.csv").write_text(visits.splitlines(keepends=True)[0] + visits.splitlines(keepends=True)[1],
                                         encoding="utf-8")
    code, out, err = run(capsys, "eval", BOOK, "--input", str(tmp_path), "--format", "json", "--on", ON)
    assert code == 0, err
    results = json.loads(out)["results"]
    got = {(r["record"], r["output"]): r["value"] for r in results if r["table"] == "visits"}
    assert got == {key: value for key, value in {**EXPECTED, **EXPECTED_FEES}.items() if key[0] == "V1"}
    # The persons from CSV are evaluated on --on as from JSON: P1 (listed at A) 300 kr as in
    # EXPECTED_ON; P2 has no listing in these files, so the default 0 kr.
    persons = {r["record"]: r["value"] for r in results if r["output"] == "listningsersättning"}
    assert persons == {"P1": "300.00", "P2": "0.00"}


@pytest.mark.parametrize("text, message", [
    ('{"clinics": [', "not valid JSON"),
    ('{"clinics": [{"clinic_id": "A", "koncern_id": NaN}]}', "NaN"),
    ('{"clinics": [{"clinic_id": "A", "koncern_id": "K1", "quality_points": Infinity}]}', "Infinity"),
    ('[1, 2]', "expected"),
])
def test_invalid_json(capsys, tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "eval", BOOK, "--input", str(path))
    assert code == 2
    assert out == ""
    lines = error_lines(err)
    assert len(lines) == 1
    # The file as a whole cannot be read: the error names the file, not a record.
    assert lines[0].startswith(f"{path}: error: ")
    assert message in lines[0]


def test_money_input_is_exact_and_fractions_of_an_ore_are_refused(capsys, tmp_path):
    book = tmp_path / "mini.md"
    book.write_text(MINI, encoding="utf-8")
    bad = tmp_path / "claims.json"
    bad.write_text('{"claims": ['
                   '{"claim_id": "K1", "date": "2021-03-01", "amount": "300.005"},'
                   '{"claim_id": "K2", "date": "2021-03-01", "amount": "abc"},'
                   '{"claim_id": "K3", "date": "2021-03-01", "amount": "12.50"}]}', encoding="utf-8")
    code, out, err = run(capsys, "eval", str(book), "--input", str(bad))
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 2  # both bad records, and not the good K3
    assert lines[0].startswith(f"{bad}: record K1: error: amount: ") and "fraction of an öre" in lines[0]
    assert lines[1].startswith(f"{bad}: record K2: error: amount: ") and "'abc'" in lines[1]

    good = tmp_path / "good.json"
    # 1.15 as a JSON number is not exact in binary floating point; read exactly it is 115 öre.
    good.write_text('{"claims": ['
                    '{"claim_id": "K3", "date": "2021-03-01", "amount": "12.50"},'
                    '{"claim_id": "K4", "date": "2021-03-01", "amount": 1.15},'
                    '{"claim_id": "K5", "date": "2021-03-01", "amount": 0.1}]}', encoding="utf-8")
    code, out, err = run(capsys, "eval", str(book), "--input", str(good), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["rulebook"] == {"id": "test/mini", "version": "1"}
    # dubbel: amount × 2 → 12.50 × 2 = 25.00; 1.15 × 2 = 2.30; 0.10 × 2 = 0.20.
    assert {r["record"]: r["value"] for r in document["results"]} == {"K3": "25.00", "K4": "2.30", "K5": "0.20"}


def test_record_before_any_rule_is_in_force(capsys, tmp_path):
    # besöksersättning has no default; its rules are in force from 2016-01-01 (besök, 2016
    # model) and from 2021-02-01 (grundersättning). A visit on 2015-12-31 gets no value: the
    # date lies outside the rulebooks, bad input (exit 2), and the command says which record
    # and output, not crash.
    path = mutated(tmp_path, lambda d: visit(d, "V1").update(date="2015-12-31"))
    code, out, err = run(capsys, "eval", BOOK, "--input", str(path), "--on", ON)
    assert code == 2
    assert out == ""
    lines = error_lines(err)
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: record V1: error: no rule gives besöksersättning on 2015-12-31: ")
    assert "2016-01-01 – 2021-01-31" in lines[0] and "2021-02-01 – …" in lines[0]


def test_explain_record_before_any_rule_is_in_force(capsys, tmp_path):
    path = mutated(tmp_path, lambda d: visit(d, "V1").update(date="2015-12-31"))
    code, out, err = run(capsys, "explain", BOOK, "--input", str(path), "--output", "besöksersättning",
                         "--record", "V1")
    assert code == 2
    assert out == ""
    assert err.startswith(f"{path}: record V1: error: no rule gives besöksersättning on 2015-12-31")


def test_a_case_the_rulebook_leaves_open_exits_1_and_a_date_outside_its_rules_exits_2(capsys, tmp_path):
    # dubbel of MINI, from 2021-02-01 and only for positive amounts; the output has no default.
    book = tmp_path / "open.md"
    book.write_text(MINI.replace("  then amount * 2", "  from 2021-02-01\n  when amount > 0 kr\n  then amount * 2"),
                    encoding="utf-8")
    claims = lambda date, amount: write_json(
        tmp_path / "claims.json", {"claims": [{"claim_id": "K1", "date": date, "amount": amount}]})
    # In force, but the condition does not hold and there is no default: the rulebook's gap.
    code, out, err = run(capsys, "eval", str(book), "--input", str(claims("2021-02-01", "0.00")))
    assert code == 1
    assert out == ""
    assert "record K1: error: no rule gives ersättning on 2021-02-01 and it declares no default" in err
    # The day before the rule starts: the date is outside the rulebook, bad input.
    code, out, err = run(capsys, "eval", str(book), "--input", str(claims("2021-01-31", "5.00")))
    assert code == 2
    assert out == ""
    assert "record K1: error: no rule gives ersättning on 2021-01-31: its rules are in force 2021-02-01 – …" in err
    # And when the rule applies: 5.00 × 2 = 10.00.
    code, out, err = run(capsys, "eval", str(book), "--input", str(claims("2021-02-01", "5.00")), "--format", "json")
    assert code == 0, err
    assert [r["value"] for r in json.loads(out)["results"]] == ["10.00"]


# ------------------------------------------------------------------------------ subprocess


def test_python_dash_m_rulelang_check():
    proc = subprocess.run([sys.executable, "-m", "rulelang", "check", BOOK], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("stockholm/hlv-2021 2021.5: ok")
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- examples reusable

EXAMPLE_TITLE = "From 2021-09-01 the listing clinic loses"


def test_example_data_writes_an_examples_records_as_input_that_eval_reads(capsys, tmp_path):
    out = tmp_path / "example.json"
    code, stdout, err = run(capsys, "example-data", BOOK, "--example", EXAMPLE_TITLE, "--out", str(out))
    assert code == 0, err
    records = json.loads(out.read_text(encoding="utf-8"))
    assert {"clinics", "persons", "listings", "visits"} <= set(records)
    assert [v["visit_id"] for v in records["visits"]] == ["V31", "V1"]
    code, stdout, err = run(capsys, "eval", BOOK, "--input", str(out), "--on", "2021-09-30", "--format", "json")
    assert code == 0, err
    results = {(r["record"], r["output"]): r["value"] for r in json.loads(stdout)["results"]}
    # The example expects avdrag of V1 (2021-09-01) = -300 kr and of V31 (2021-08-31) = 0 kr.
    assert results[("V1", "avdrag")] == "-300.00" and results[("V31", "avdrag")] == "0.00"


def test_explain_an_examples_record_directly(capsys):
    code, out, err = run(capsys, "explain", BOOK, "--example", EXAMPLE_TITLE, "--output", "avdrag", "--record", "V1")
    assert code == 0, err
    assert out.startswith("avdrag = -300.00 kr [visits V1, 2021-09-01]")


def test_an_unknown_example_is_a_usage_error_naming_the_closest(capsys):
    code, out, err = run(capsys, "example-data", BOOK, "--example", "From 2021-09-01 the listing clinic looses 300 kr "
                                                                   "for its patient's physical visit elsewhere")
    assert code == 2
    assert 'did you mean "From 2021-09-01 the listing clinic loses 300 kr' in err


def test_demo_data_writes_other_months(capsys, tmp_path):
    import duckdb

    region = tmp_path / "region"
    code, out, err = run(capsys, "demo-data", "--out", str(region), "--persons", "3000", "--format", "csv",
                         "--months", "2016-01:2016-03")
    assert code == 0, err
    con = duckdb.connect()
    first, last, months = con.execute(
        f"SELECT min(date), max(date), count(DISTINCT date_trunc('month', date)) "
        f"FROM read_csv('{region / 'visits.csv'}')").fetchone()
    assert (str(first)[:7], str(last)[:7], months) == ("2016-01", "2016-03", 3)
    # Listings move with the months: most visitors are listed on the day of their visit.
    (listed,) = con.execute(
        f"SELECT avg(CASE WHEN l.person_id IS NOT NULL THEN 1 ELSE 0 END) "
        f"FROM read_csv('{region / 'visits.csv'}') v LEFT JOIN read_csv('{region / 'listings.csv'}') l "
        f"ON l.person_id = v.person_id AND l.listed_from <= v.date "
        f"AND coalesce(l.listed_to, DATE '9999-12-31') >= v.date").fetchone()
    assert listed > 0.85  # without moving them, about 0.6 (listings would start until 2021)
    code, out, err = run(capsys, "settle", "stockholm/hlv-2016", "--month", "2016-02", "--data", str(region),
                         "--out", str(tmp_path / "s.csv"))
    assert code == 0, err


@pytest.mark.parametrize("months", ["2016-13:2016-14", "2016-05:2016-01", "2016-01:2016-02:2016-03"])
def test_demo_data_refuses_months_it_cannot_read(capsys, tmp_path, months):
    code, out, err = run(capsys, "demo-data", "--out", str(tmp_path), "--months", months)
    assert code == 2 and "--months" in err
