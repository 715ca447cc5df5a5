"""An explanation tries every reading of the source's wording that the amount read: the
amount again under each alternative, so a reviewer sees which readings decide it and what
it would be if the policy writer answered otherwise (evaluation/readings_tried.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from regions import EXAMPLES, as_directory
from rulebook_factory import ITEMS, load

import rulelang
from rulelang.interfaces import render
from rulelang.language.assumptions import readings

ROOT = Path(__file__).resolve().parent.parent
BOOK = "stockholm/hlv-2021"
EXAMPLE = str(ROOT / "examples" / "stockholm-2021.json")



@pytest.fixture(scope="module")
def book():
    return rulelang.load(BOOK)


def outcomes(reading: dict) -> list:
    """(alternative, result) of each alternative tried."""
    return [(a["value"], a["result"]) for a in reading["alternatives"]]


def tried(tree) -> dict:
    return {reading["name"]: reading for reading in tree.facts["readings"]}


def test_a_deduction_no_other_reading_changes_says_so(book):
    # V1: P1, listed at A (koncern K1), visits C (koncern K2) physically at the clinic on
    # 2021-09-15. STH21.6.4: 300 kr off the listing clinic. Under each alternative:
    # the koncern exemption for physical visits needs the same koncern (K1 ≠ K2); the
    # listing on the month's last day is still A; P1 has no county code, so whether
    # out-of-county patients are excepted does not arise. Each gives -300.00 kr.
    tree = book.explain(EXAMPLE, "avdrag", "V1")
    assert tree.value == "-300.00"
    readings_ = tried(tree)
    assert set(readings_) == {"koncern_undantag_fysiska_besök", "listning_på_besöksdagen",
                              "utomlänspatienter_undantas"}
    assert readings_["koncern_undantag_fysiska_besök"]["value"] is False
    assert outcomes(readings_["koncern_undantag_fysiska_besök"]) == [(True, "-300.00")]
    assert all(r["changes"] is False for r in readings_.values())
    assert tree.facts["headline"].endswith("). The same under each other reading tried, one at a time.")
    assert all(r["on_decision_path"] for r in readings_.values())
    assert readings_["listning_på_besöksdagen"]["source"].startswith("rulebooks/stockholm/hlv-2016.md:")


def test_the_reading_that_decides_an_add_on_is_named_with_the_amount_it_would_give(book):
    # V4: P3 is listed nowhere and sees C's psychologist physically on 2021-10-05, in the
    # psychosocial assignment. Reading 9 (taken) excepts the add-on for unlisted patients
    # there too: 0 kr. Its alternative pays STH16.12's add-on, 300 kr from 2021-02-01.
    tree = book.explain(EXAMPLE, "tilläggsersättning", "V4")
    assert tree.value == "0.00"
    reading = tried(tree)["undantagen_även_för_olistade"]
    assert reading["value"] is True
    assert outcomes(reading) == [(False, "300.00")]
    assert reading["changes"] is True
    assert [name for name, r in tried(tree).items() if r["changes"]] == ["undantagen_även_för_olistade"]
    assert tree.facts["headline"].endswith(". Another reading of undantagen_även_för_olistade changes it.")
    text = render.explanation_text(tree)
    assert "    if undantagen_även_för_olistade = false (taken: true): 300.00 kr instead of 0.00 kr\n" in text
    html = render.explanation_html(tree, "V4")
    assert '<td class="differs">300.00 kr instead of 0.00 kr</td>' in html


def test_a_reading_read_only_by_an_overridden_rule_is_tried_too(book):
    # What a rule off the decision path reads is not what the amount rests on, but another
    # answer could still let that rule through. For V4, the exception for visits within the
    # koncern, to the rule for other clinics' listed patients, reads the koncern reading: it
    # is tried (the same 0 kr) without being in rests_on.
    tree = book.explain(EXAMPLE, "tilläggsersättning", "V4")
    assert "koncern_undantag_fysiska_besök" in tried(tree)
    assert "koncern_undantag_fysiska_besök" not in tree.facts["rests_on"].get("interpretation", [])
    assert tried(tree)["koncern_undantag_fysiska_besök"]["on_decision_path"] is False
    assert ("if koncern_undantag_fysiska_besök = true (taken: false): 0.00 kr, the same  · read off the decision path"
            in render.explanation_text(tree))


def test_the_same_amount_decided_by_another_rule_says_which(book):
    # The rulebook's example: P1, listed at A, visits A. No rule for deductions applies (a
    # visit at one's own clinic): 0 kr, the output's default. Under reading 1's alternative
    # the koncern exemption for physical visits, an exception, applies as exceptions do
    # whatever their rule's condition (default logic): still 0 kr, now decided by
    # avdrag_inom_koncernen under STH21.6.4.
    from rulelang.interfaces.examples import explained_examples

    (tree,) = [tree for example, expectation, tree in explained_examples(book)
               if example.title.startswith("A visit at the patient's own clinic") and expectation.output == "avdrag"]
    assert tree.value == "0.00" and tree.facts["decided_by"] is None
    (alternative,) = tried(tree)["koncern_undantag_fysiska_besök"]["alternatives"]
    assert alternative["result"] == "0.00"
    assert alternative["provision"].startswith("STH21.6.4 ")
    assert tried(tree)["koncern_undantag_fysiska_besök"]["changes"] is False
    assert ("if koncern_undantag_fysiska_besök = true (taken: false): 0.00 kr, the same amount, but decided under "
            "§ STH21.6.4 ") in render.explanation_text(tree)


def test_the_same_deduction_charged_to_another_clinic_is_a_change(book):
    # P1 is listed at A until 2021-09-20 and at D (koncern K3) from 2021-09-21, and visits C
    # physically on 2021-09-15. STH21.6.4: 300 kr off the listing clinic, A on the visit
    # day (reading S1). Under S1's alternative the listing of the month's last day decides:
    # the same 300 kr, but off D. An amount paid by another clinic is not the same.
    data = json.loads((ROOT / "examples" / "stockholm-2021.json").read_text(encoding="utf-8"))
    data["clinics"].append({"clinic_id": "D", "koncern_id": "K3"})
    data["listings"][0]["listed_to"] = "2021-09-20"
    data["listings"].append({"person_id": "P1", "clinic_id": "D", "listed_from": "2021-09-21", "listed_to": None})
    tree = book.explain(data, "avdrag", "V1")
    assert (tree.value, tree.facts["paid_to"]) == ("-300.00", "A")
    reading = tried(tree)["listning_på_besöksdagen"]
    (alternative,) = reading["alternatives"]
    assert (alternative["result"], alternative["paid_to"]) == ("-300.00", "D")
    assert reading["changes"] is True
    assert ("if listning_på_besöksdagen = false (taken: true): -300.00 kr, the same amount, but paid to D instead "
            "of A") in render.explanation_text(tree)
    assert "another reading of listning_på_besöksdagen changes it" in tree.facts["headline"].lower()


def test_a_parameter_the_run_assumes_is_not_tried(book):
    # Assumed for the run, a reading is the run's premise, not a reading to try: its value is
    # shown as assumed, and trying "the other" value would undo the assumption.
    tree = book.explain(EXAMPLE, "avdrag", "V1", assume=["koncern_undantag_fysiska_besök=true"])
    assert "koncern_undantag_fysiska_besök" not in tried(tree)
    region = json.loads((ROOT / "examples" / "stockholm-2016.json").read_text(encoding="utf-8"))
    region["clinics"].append({"clinic_id": "B", "koncern_id": "K1"})
    old = rulelang.load("stockholm/hlv-2016")
    tree = old.explain(region, "hälsofrämjande_insatser", "A", on="2016-06-30",
                       assume=["hälsofrämjande_räknas_per=koncern", "hälsofrämjande_fler_listade_än=0"])
    assert "hälsofrämjande_räknas_per" not in tried(tree)  # read by a sum's filter, and assumed


def test_a_regions_maximum_under_the_other_reading_of_the_table():
    # Jämtland 2018 (reading J3): taken, the formula to the öre, 12 569 845.66 kr, half of it
    # to patient contracts: 6 284 922.83 kr. The alternative takes the table's 12.6 Mkr,
    # half of it 6 300 000.00 kr. The share (J4) is a number, tried at the 60 % its example
    # works: 40 % of 12 569 845.66 kr to patient contracts, 5 027 938.26 kr.
    book = rulelang.load("jamtland/patientmiljarden-2018")
    tree = book.explain(str(ROOT / "examples" / "jamtland-2018.json"), "patientkontrakt", "Z", on="2018-06-30")
    assert tree.value == "6284922.83"
    readings_ = tried(tree)
    assert outcomes(readings_["tabellen_även_2018"]) == [(True, "6300000.00")]
    assert outcomes(readings_["andel_förstärkt_vårdgaranti"]) == [("0.6", "5027938.26")]
    assert readings_["andel_förstärkt_vårdgaranti"]["changes"] is True


def test_the_runs_own_assumptions_hold_under_each_alternative(book, tmp_path):
    # Assumed: 350 kr off. Each alternative is tried with that assumption kept (-350.00 kr),
    # and the assumed value is not itself a reading to try.
    tree = book.explain(EXAMPLE, "avdrag", "V1", assume=["avdrag_fysiskt_besök=350 kr"])
    assert tree.value == "-350.00"
    assert {r["alternatives"][0]["result"] for r in tree.facts["readings"]} == {"-350.00"}
    assert "avdrag_fysiskt_besök" not in tried(tree)


def test_an_alternative_that_cannot_be_evaluated_says_why_and_counts_as_a_change(tmp_path):
    small = load(tmp_path, ITEMS + '''
parameter läsning: boolean
  value false status interpretation
    cite "Tolkning: det lägre beloppet"
parameter belopp: money
  value 100 kr from 2020-01-01 until 2020-12-31 status illustrative
    cite "ett belopp för 2020"
output x: money per items default 0 kr
rule r defines x when a then if läsning then belopp else 10 kr
''')
    tree = small.explain({"items": [{"id": "R1", "a": True, "b": False, "c": False, "n": 0}]}, "x", "R1",
                         on="2021-06-01")
    assert tree.value == "10.00"
    (reading,) = tree.facts["readings"]
    (alternative,) = reading["alternatives"]
    assert alternative["value"] is True and alternative["result"] is None
    assert "belopp has no value on 2021-06-01" in alternative["error"]
    assert reading["changes"] is True
    assert "(taken: false): cannot be computed: " in render.explanation_text(tree)


def test_a_number_is_tried_at_the_values_the_examples_work_and_otherwise_not(tmp_path):
    body = ITEMS + '''
parameter andel: decimal
  value 50 % status interpretation
    cite "Tolkning: hälften"
output x: money per items default 0 kr
rule r defines x when a then 100 kr * andel rounded half up to öre
'''
    record = {"items": [{"id": "R1", "a": True, "b": False, "c": False, "n": 0}]}
    (alone,) = load(tmp_path, body).explain(record, "x", "R1", on="2021-06-01").facts["readings"]
    assert (alone["alternatives"], alone["changes"]) == ([], None)
    worked = body + '''
example "the alternative: 60 %"
  on 2021-06-01
  assuming andel = 60 %
  given items: {id: "R1", a: true, b: false, c: false, n: 0}
  expect x of "R1" = 60 kr
'''
    book = load(tmp_path, worked, name="worked")
    tree = book.explain(record, "x", "R1", on="2021-06-01")
    # 100 kr × 50 % = 50.00 kr taken; 100 kr × 60 % = 60.00 kr under the example's value.
    assert tree.value == "50.00"
    assert outcomes(tree.facts["readings"][0]) == [("0.6", "60.00")]
    text = render.explanation_text(load(tmp_path, body, name="alone").explain(record, "x", "R1", on="2021-06-01"))
    assert "andel = 0.5: no alternative worked in the rulebook's examples, not tried" in text


def test_an_amount_that_reads_no_reading_tries_none(tmp_path):
    small = load(tmp_path, ITEMS + '''
parameter läsning: boolean
  value false status interpretation
    cite "Tolkning"
output x: money per items default 0 kr
rule r defines x when a and läsning then 10 kr
''')
    # `a and läsning` reads the reading only when a holds (conditions short-circuit).
    tree = small.explain({"items": [{"id": "R1", "a": False, "b": False, "c": False, "n": 0}]}, "x", "R1",
                         on="2021-06-01")
    assert tree.facts["readings"] == []
    assert "under another reading" not in render.explanation_text(tree)
    read = small.explain({"items": [{"id": "R1", "a": True, "b": False, "c": False, "n": 0}]}, "x", "R1",
                         on="2021-06-01")
    assert outcomes(read.facts["readings"][0]) == [(True, "10.00")]


def test_a_reading_read_by_a_sums_filter_on_the_records_it_left_out_is_tried():
    # Reading S8 stands in the filter of STH16.11's counts. Clinic B (koncern K1, like A)
    # has no listing of its own: no listing passes its filter, so nothing traced reads S8,
    # yet under the alternative A's P1 (CNI 1.5) counts for B: 1 > 0 listed, relative CNI
    # 1.5 > 1.20 → eligible. The limit is taken as 0 so that one person shows it.
    book = rulelang.load("stockholm/hlv-2016")
    data = json.loads((ROOT / "examples" / "stockholm-2016.json").read_text(encoding="utf-8"))
    data["clinics"].append({"clinic_id": "B", "koncern_id": "K1"})
    tree = book.explain(data, "hälsofrämjande_insatser", "B", on="2016-06-30",
                        assume=["hälsofrämjande_fler_listade_än=0"])
    assert tree.value is False
    reading = tried(tree)["hälsofrämjande_räknas_per"]
    assert reading["value"] == "mottagning"
    assert outcomes(reading) == [("koncern", True)]
    assert reading["changes"] is True


def test_a_reading_read_as_of_another_date_is_tried_from_the_value_read_there(tmp_path):
    small = load(tmp_path, ITEMS + '''
enum nivå: lågt, mellan, högt
parameter läsning: nivå
  value lågt until 2020-12-31 status interpretation
    cite "Tolkning: lågt t.o.m. 2020"
  value mellan from 2021-01-01 status verified
    cite "ett verifierat värde"
output x: money per items default 0 kr
rule r defines x when läsning as of 2020-06-01 = lågt then 10 kr
''')
    # Read on 2020-06-01, where the value is the interpretation `lågt`; on the record's date
    # (2021) the value is verified and no reading. Its alternatives are the others of 2020.
    tree = small.explain({"items": [{"id": "R1", "a": True, "b": False, "c": False, "n": 0}]}, "x", "R1",
                         on="2021-06-01")
    (reading,) = tree.facts["readings"]
    assert reading["value"] == "lågt"
    assert outcomes(reading) == [("mellan", "0.00"), ("högt", "0.00")]
    assert reading["changes"] is True


def koncern_region(directory: Path) -> str:
    """stockholm-2016.json with a clinic B in A's koncern K1 and P5 (CNI 1.3) listed there,
    as CSV files: a directory, which explain loads in part around the record explained."""
    data = json.loads((ROOT / "examples" / "stockholm-2016.json").read_text(encoding="utf-8"))
    data["clinics"].append({"clinic_id": "B", "koncern_id": "K1"})
    data["persons"].append({"person_id": "P5", "birth_date": "1960-01-01", "sex": "F", "cni": "1.3"})
    data["listings"].append({"person_id": "P5", "clinic_id": "B", "listed_from": "2015-01-01", "listed_to": None})
    return as_directory(data, directory)


def test_on_a_directory_loaded_in_part_a_reading_that_reads_beyond_the_record_is_not_tried(tmp_path, monkeypatch,
                                                                                              capsys):
    # A focus loads of a large table only the rows in the record's reach (here: every table,
    # as if each were a region's). A's counts then hold A's listings alone: right for the
    # answer taken (the clinic's own), wrong for the koncern alternative, whose listings do
    # not name A. So that alternative is not tried there; the others, which count A's own,
    # are. A run that assumes the koncern loads the listings whole: K1 then has P1 (CNI 1.5)
    # and P5 (CNI 1.3), 2 listed, relative CNI 1.4.
    from rulelang.columnar import intake
    from rulelang.interfaces.cli import main

    monkeypatch.setattr(intake, "FOCUS_WHOLE_TABLE_ROWS", 0)
    region = str(koncern_region(tmp_path))
    args = ["explain", "stockholm/hlv-2016", "--input", region, "--output", "hälsofrämjande_insatser",
            "--record", "A", "--on", "2016-06-30"]
    untried = "not tried: under another reading it may read listings beyond the records this one names"
    assert main([*args, "--format", "json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    reading = {r["name"]: r for r in tree["readings"]}["hälsofrämjande_räknas_per"]
    assert reading["alternatives"] == [] and reading["changes"] is None
    assert reading["untried"].startswith(untried)
    assert "explain with --assume hälsofrämjande_räknas_per=koncern to load them" in reading["untried"]
    assert main([*args, "--format", "html"]) == 0
    assert f'<td class="untried">{untried}' in capsys.readouterr().out
    # With more than 0 listed enough, the relative CNI is read: A's alone, P1's 1.5, which
    # is over 1.2 (taken) but not over 1.5 (the other reading). Tried over A's listings.
    assert main([*args, "--assume", "hälsofrämjande_fler_listade_än=0", "--format", "json"]) == 0
    own = {r["name"]: r for r in json.loads(capsys.readouterr().out)["readings"]}
    assert own["hälsofrämjande_räknas_per"]["untried"].startswith(untried)
    assert "untried" not in own["hög_relativ_cni_över"]
    assert outcomes(own["hög_relativ_cni_över"]) == [("1.5", False)]
    assert own["hög_relativ_cni_över"]["changes"] is True
    assert outcomes(own["cni_saknas_räknas_som_noll"]) == [(True, True)]
    assert main([*args, "--assume", "hälsofrämjande_fler_listade_än=0",
                 "--assume", "hälsofrämjande_räknas_per=koncern", "--format", "json"]) == 0
    whole = json.loads(capsys.readouterr().out)

    def counts(node):
        if node["kind"] == "aggregate":
            yield node["label"].split(" ", 1)[0], node["value"]
        for child in node["children"]:
            yield from counts(child)

    assert ("count", "2") in set(counts(whole))  # P1 and P5: the koncern's two listed persons
    assert whole["value"] is True


@pytest.mark.parametrize("rulebook_id, example, on", EXAMPLES)
def test_a_reading_the_evaluation_did_not_read_changes_nothing(rulebook_id, example, on):
    """Only readings the explanation read are tried: evaluation is a function of what it
    reads. Held here for every output and record of every example: each reading in force
    that was not tried gives the same value under each of its alternatives."""
    book = rulelang.load(rulebook_id)
    data = str(ROOT / "examples" / example)
    in_force = [r for r in readings(book.checked, dt.date.fromisoformat(on)) if r.alternative_values]
    assert in_force
    checked = 0
    for result in book.evaluate(data, on=on):
        tree = book.explain(data, result.output, result.record, on=on)
        names = set(tried(tree))
        for reading in in_force:
            if reading.name in names:
                continue
            for alternative in reading.alternatives:
                other = book.evaluate_record(data, result.output, result.record, on=on,
                                             assume=[f"{reading.name}={alternative}"])
                assert other.json_value == json.loads(json.dumps(tree.value)), (result, reading.name)
                checked += 1
    assert checked > 0


@pytest.mark.parametrize("rulebook_id, example, on", EXAMPLES)
def test_each_reading_tried_gives_what_a_run_assuming_it_gives(rulebook_id, example, on):
    """A reading is tried beside the explanation's own evaluation, reusing the values and
    rule outcomes that read none of the reading (Evaluator.holder). Held here for every
    output and record of every example: each alternative tried gives what a run of its
    own, assuming that alternative from the start, gives."""
    book = rulelang.load(rulebook_id)
    data = str(ROOT / "examples" / example)
    checked = 0
    for result in book.evaluate(data, on=on):
        tree = book.explain(data, result.output, result.record, on=on)
        for reading in tree.facts["readings"]:
            for alternative in reading["alternatives"]:
                value, kind = alternative["value"], book.program.parameters[reading["name"]].type.kind
                text = ("true" if value else "false") if kind == "boolean" else (
                    f"{value} kr" if kind == "money" else str(value))
                assume = [f"{reading['name']}={text}"]
                try:
                    alone = book.evaluate_record(data, result.output, result.record, on=on, assume=assume)
                except rulelang.EvaluationError as error:
                    assert alternative["result"] is None and alternative["error"] == error.message
                else:
                    assert alternative["result"] == json.loads(json.dumps(alone.json_value)), (result, assume)
                    assert alternative.get("paid_to") == alone.payee
                checked += 1
    assert checked > 0
