"""The Python API as a tool embedding the evaluator uses it: load a rulebook, build a data
set from records, evaluate, explain, and catch rulelang's own errors.

Money values are integer öre: 300 kr = 30000 öre. Expected amounts are worked out from the
provisions of rulebooks/stockholm/hlv-2021.md and of rulebooks/stockholm/hlv-2016.md, which it
amends (tables, the listing compensation, the patient fees and the 2016 visit compensation).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from rulebook_factory import MINI, load

import rulelang

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "stockholm-2021.json"


pytestmark = pytest.mark.usefixtures("at_repo_root")


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


def walk(node: dict):
    """A to_dict() explanation tree's nodes, depth first."""
    yield node
    for child in node["children"]:
        yield from walk(child)


OUTPUTS = ["listningsersättning", "besöksersättning", "målrelaterad_ersättning", "patientavgift",
           "hälsofrämjande_insatser", "tilläggsersättning", "avdrag", "samordningsersättning",
           "samverkansersättning", "uppfyller_kravet_för_barn_och_unga", "vårdgarantibonus"]
VISIT_OUTPUTS = ["besöksersättning", "patientavgift", "tilläggsersättning", "avdrag"]
SEPT_30 = dt.date(2021, 9, 30)


def test_load_gives_the_rulebook_facts(book):
    assert isinstance(book, rulelang.Rulebook)
    assert book.id == "stockholm/hlv-2021"
    assert book.version == "2021.5"
    assert book.title.startswith("Förfrågningsunderlag husläkarverksamhet")
    # The 2016 outputs it inherits come first, in the amended rulebook's order, then its own.
    assert book.outputs == OUTPUTS
    assert Path(book.path).name == "hlv-2021.md"


def test_load_by_path_is_the_same_rulebook():
    by_path = rulelang.load(str(ROOT / "rulebooks" / "stockholm" / "hlv-2021.md"))
    assert by_path.id == "stockholm/hlv-2021"
    assert by_path.outputs == OUTPUTS


def test_evaluate_records_values_in_ore_and_payees(book):
    data = book.dataset(records(
        # P1 (listed at A) at C, physical at the clinic, 2021-09-15.
        visit("V1", "P1", "C", "2021-09-15"),
        # P2 (listed at C, K2) by video at A (K1), 2021-03-02.
        visit("V3", "P2", "A", "2021-03-02", mode="video", place="home"),
        # P3 (unlisted), a psychologist in the psychosocial assignment at C, 2021-10-05.
        visit("V4", "P3", "C", "2021-10-05", assignment="psychosocial", profession="psychologist"),
    ))
    results = book.evaluate(data, on=SEPT_30)
    assert all(isinstance(r, rulelang.Result) for r in results)
    # 4 visit outputs × 3 visits + 1 person output × 3 persons + 6 clinic outputs × 3 clinics.
    assert len(results) == 4 * 3 + 1 * 3 + 6 * 3
    assert [r.output for r in results if r.table == "visits"] == [o for o in VISIT_OUTPUTS for _ in range(3)]
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

    # STH16.9 (inherited): the patient fee is 200 kr for P1 (71) seeing a doctor, 0 kr for a
    # video contact, 100 kr for a psychologist (P3 is 22); the fee is paid to no one.
    assert [(got[(v, "patientavgift")].value, got[(v, "patientavgift")].payee) for v in ("V1", "V3", "V4")] \
        == [(20000, None), (0, None), (10000, None)]
    assert got[("V1", "patientavgift")].provision.startswith("STH16.9 ")
    assert got[("V1", "patientavgift")].source.startswith("rulebooks/stockholm/hlv-2016.md:")
    # The visits keep their own dates; --on dates the persons and clinics.
    assert got[("V3", "besöksersättning")].date == dt.date(2021, 3, 2)
    assert got[("P1", "listningsersättning")].date == SEPT_30
    assert got[("A", "vårdgarantibonus")].date == SEPT_30


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
    from_path = by_key(book.evaluate(EXAMPLE, on=SEPT_30))
    from_text = by_key(book.evaluate(str(EXAMPLE), on=SEPT_30))
    assert len(from_path) == 41  # 4 outputs × 5 visits + 1 × 3 persons + 6 × 3 clinics
    assert {k: r.value for k, r in from_path.items()} == {k: r.value for k, r in from_text.items()}
    # V5: P2 (listed at C) physical home visit at B: home visits give neither add-on (STH21.6.6)
    # nor deduction (STH21.6.5); besöksersättning 110 kr.
    assert from_path[("V5", "tilläggsersättning")].value == 0
    assert from_path[("V5", "avdrag")].value == 0
    assert from_path[("V5", "avdrag")].provision.startswith("STH21.6.5 ")
    assert from_path[("V5", "besöksersättning")].value == 11000


# ------------------------------------------------------- persons and clinics: evaluated on a date


def test_persons_and_clinics_carry_no_date_so_evaluate_needs_on(book):
    # listningsersättning is the first output and P1 the first person: nothing to date P1 by.
    with pytest.raises(rulelang.EvaluationError) as caught:
        book.evaluate(EXAMPLE)
    assert caught.value.kind == "data"
    assert caught.value.record == "P1"
    assert "no date" in caught.value.message and "listningsersättning" in caught.value.message
    with pytest.raises(rulelang.EvaluationError):
        book.explain(EXAMPLE, "vårdgarantibonus", "A")
    # The visit outputs alone need no date: every visit is dated by its own `date`.
    results = book.evaluate(EXAMPLE, outputs=VISIT_OUTPUTS)
    assert len(results) == 4 * 5 and {r.table for r in results} == {"visits"}


def test_listing_compensation_per_person_of_the_example_on_2021_09_30(book):
    results = by_key(book.evaluate(EXAMPLE, on=SEPT_30, outputs=["listningsersättning"]))
    assert list(results) == [("P1", "listningsersättning"), ("P2", "listningsersättning"),
                             ("P3", "listningsersättning")]
    # STH16.3–16.4 on the last day of the month, 2021-09-30, with the 2021 illustrative age
    # table of STH21.5; no CNI given (0 × 20 kr); no ACG weight given, so 1.00 × 60 kr.
    # P1 (born 1950-03-14) is 71: band 65–74, 240 kr + 0 kr + 60 kr = 300 kr, to A where P1 is listed.
    p1 = results[("P1", "listningsersättning")]
    assert (p1.value, p1.json_value, p1.payee) == (30000, "300.00", "A")
    assert (p1.table, p1.date) == ("persons", SEPT_30)
    assert p1.provision.startswith("STH16.4 ")
    assert p1.source.startswith("rulebooks/stockholm/hlv-2016.md:")
    # P2 (born 1985-11-02) is 35: band 20–49, 120 kr + 0 kr + 60 kr = 180 kr, to C.
    p2 = results[("P2", "listningsersättning")]
    assert (p2.value, p2.json_value, p2.payee) == (18000, "180.00", "C")
    # P3 is listed nowhere: the output's default 0 kr (declared in STH16.2), paid to no one.
    p3 = results[("P3", "listningsersättning")]
    assert (p3.value, p3.json_value, p3.payee) == (0, "0.00", None)
    assert p3.provision.startswith("STH16.2 ")


def test_clinic_outputs_of_the_example_on_2021_09_30(book):
    results = by_key(book.evaluate(EXAMPLE, on=SEPT_30))
    for clinic in ("A", "B", "C"):
        # No quality points (STH16.10), not coordinating (STH21.1), care guarantee not met
        # (STH21.3): every clinic output is its default 0 kr, paid to the clinic itself.
        for output in ("målrelaterad_ersättning", "samordningsersättning", "vårdgarantibonus"):
            result = results[(clinic, output)]
            assert (result.table, result.value, result.payee) == ("clinics", 0, clinic), (clinic, output)


def test_on_dates_persons_and_clinics_but_visits_keep_their_own_date(book):
    september = by_key(book.evaluate(EXAMPLE, on=SEPT_30))
    january_2020 = by_key(book.evaluate(EXAMPLE, on=dt.date(2020, 1, 1)))
    visits = lambda results: {k: (r.value, r.date, r.payee) for k, r in results.items() if r.table == "visits"}
    assert len(visits(september)) == 20
    assert visits(september) == visits(january_2020)
    # On 2020-01-01 the month ends 2020-01-31 and the 2016 illustrative age table is in force:
    # P1 is 69: band 65–74, 200 kr + 1.00 × 60 kr (ACG from 2017) = 260 kr;
    # P2 is 34: band 20–49, 100 kr + 60 kr = 160 kr.
    assert january_2020[("P1", "listningsersättning")].value == 26000
    assert january_2020[("P2", "listningsersättning")].value == 16000
    assert january_2020[("P1", "listningsersättning")].date == dt.date(2020, 1, 1)


def test_listing_compensation_follows_the_last_day_of_the_month(book):
    persons = [
        {"person_id": "Q1", "birth_date": "1971-10-31", "sex": "F"},  # turns 50 on 2021-10-31
        {"person_id": "Q2", "birth_date": "1985-11-02", "sex": "M", "cni": "1.5", "acg_weight": "1.40"},
        {"person_id": "Q3", "birth_date": "1985-11-02", "sex": "M"},
        {"person_id": "Q4", "birth_date": "1985-11-02", "sex": "F", "cni": "0.3333"},
    ]
    listings = [
        {"person_id": "Q1", "clinic_id": "A", "listed_from": "2015-01-01"},
        # Q2 moves from A to C on 2021-10-20; Q3 leaves A on 2021-10-19 for no clinic.
        {"person_id": "Q2", "clinic_id": "A", "listed_from": "2015-01-01", "listed_to": "2021-10-19"},
        {"person_id": "Q2", "clinic_id": "C", "listed_from": "2021-10-20"},
        {"person_id": "Q3", "clinic_id": "A", "listed_from": "2015-01-01", "listed_to": "2021-10-19"},
        {"person_id": "Q4", "clinic_id": "B", "listed_from": "2015-01-01"},
    ]
    data = book.dataset({"clinics": CLINICS, "persons": persons, "listings": listings})

    def listing(on: str) -> dict:
        results = book.evaluate(data, on=dt.date.fromisoformat(on), outputs=["listningsersättning"])
        return {r.record: (r.json_value, r.payee) for r in results}

    # September 2021 (month ends 2021-09-30), 2021 table. Q2 and Q3 are 35, Q1 is 49.
    assert listing("2021-09-30") == {
        "Q1": ("180.00", "A"),  # band 20–49: 120 kr + 1.00 × 60 kr
        "Q2": ("234.00", "A"),  # 120 kr + 1.5 × 20 kr + 1.40 × 60 kr = 120 + 30 + 84
        "Q3": ("180.00", "A"),  # 120 kr + 60 kr
        "Q4": ("186.67", "B"),  # 120 kr + 0.3333 × 20 kr + 60 kr = 186.666 kr, rounded half up
    }
    # Any day of October is judged on 2021-10-31.
    assert listing("2021-10-01") == {
        "Q1": ("216.00", "A"),  # 50 on 2021-10-31: band 50–64, 156 kr + 60 kr
        "Q2": ("234.00", "C"),  # listed at C on 2021-10-31, so paid to C
        "Q3": ("0.00", None),   # listed at A on 2021-10-01, but nowhere on 2021-10-31
        "Q4": ("186.67", "B"),
    }
    # January 2021 (month ends 2021-01-31): the 2016 illustrative table, band 20–49 = 100 kr.
    assert listing("2021-01-15") == {
        "Q1": ("160.00", "A"),  # 100 kr + 60 kr
        "Q2": ("214.00", "A"),  # 100 + 30 + 84
        "Q3": ("160.00", "A"),
        "Q4": ("166.67", "B"),  # 100 + 6.666 + 60 = 166.666
    }
    # The amended 2021 table is in force from 2021-02-01.
    assert listing("2021-02-01")["Q1"] == ("180.00", "A")


def test_explain_listing_compensation_shows_the_inherited_rule_and_the_amended_table(book):
    tree = book.explain(EXAMPLE, "listningsersättning", "P1", on=SEPT_30).to_dict()
    assert (tree["value"], tree["paid_to"], tree["date"]) == ("300.00", "A", "2021-09-30")
    assert tree["rulebook"] == "stockholm/hlv-2021"
    assert tree["decided_by"] == "listning_viktad_efter_ålder_cni_och_acg"
    nodes = list(walk(tree))
    (rule,) = [n for n in nodes if n["kind"] == "rule"]
    assert rule["applied"] is True and rule["rulebook"] == "stockholm/hlv-2016"
    assert rule["provision"].startswith("STH16.4 ")
    # The age band comes from the table as amended by STH21.5 of the 2021 rulebook.
    (age_band,) = [n for n in nodes if n["kind"] == "parameter" and n["label"].startswith("listningsersättning_per_ålder")]
    assert age_band["label"] == "listningsersättning_per_ålder[65 to 74]"
    assert age_band["value"] == "240.00" and age_band["valid_from"] == "2021-02-01"
    assert age_band["rulebook"] == "stockholm/hlv-2021" and age_band["provision"].startswith("STH21.5 ")
    (month_end,) = [n for n in nodes if n["kind"] == "definition" and n["label"] == "månadsskifte"
                    and not n.get("explained_above")]
    assert month_end["value"] == "2021-09-30"
    (age,) = [n for n in nodes if n["kind"] == "definition" and n["label"] == "ålder_vid_månadsskiftet"]
    assert age["value"] == "71"


def test_dataset_is_reusable_and_money_inputs_are_exact(tmp_path):
    # A rulebook with a money input field: amounts must be read exactly, never via float.
    path = tmp_path / "mini.md"
    path.write_text(MINI, encoding="utf-8")
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
    assert param.facts["valid_from"] == "2021-09-01" and param.facts["valid_to"] == "2023-04-30"


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
    assert text.splitlines()[0] == ("<records>: record V1: error: date: '2021-02-30' is not a date in the calendar "
                                    "(visits, record 1)")
    assert len(text.splitlines()) == 3


def test_unknown_record_is_a_data_error(book):
    data = book.dataset(records(visit("V1", "P1", "C", "2021-09-15")))
    with pytest.raises(rulelang.DataError) as caught:
        book.evaluate_record(data, "avdrag", "V7")
    assert caught.value.problems[0].record == "V7"
    with pytest.raises(rulelang.DataError):
        book.explain(data, "avdrag", "V7")


def test_no_rule_in_force_is_a_data_error(book):
    # besöksersättning has no default. Its rules are besök (STH16.6, from 2016-01-01, repealed
    # from 2021-02-01) and grundersättning (STH21.5, from 2021-02-01): on 2015-12-31 neither is
    # in force, so the date lies outside the rulebooks, which is bad input (kind "data").
    data = book.dataset(records(visit("V1", "P1", "C", "2015-12-31")))
    with pytest.raises(rulelang.EvaluationError) as caught:
        book.evaluate_record(data, "besöksersättning", "V1")
    error = caught.value
    assert error.kind == "data"
    assert error.record == "V1"
    assert error.message.startswith("no rule gives besöksersättning on 2015-12-31: its rules are in force ")
    # The repeal shows as the end of besök's period.
    assert "2016-01-01 – 2021-01-31" in error.message and "2021-02-01 – …" in error.message
    # The outputs with a default (0 kr) still evaluate for that date: STH21.6.1 is not yet in
    # force on 2015-12-31, so no add-on.
    assert book.evaluate_record(data, "tilläggsersättning", "V1").value == 0
    # Evaluating every output stops at the same error.
    with pytest.raises(rulelang.EvaluationError, match="no rule gives besöksersättning on 2015-12-31"):
        book.evaluate(data, on=SEPT_30)


def test_no_value_tells_a_date_outside_the_rules_from_a_case_the_rulebook_leaves_open(tmp_path):
    # The only rule starts 2021-02-01 and the output has no default.
    path = tmp_path / "open.md"
    path.write_text('''# Open

```rulelang
rulebook "test/open"
  version "1" source src "Test source open"
according to src
```

## O1 Belopp

```rulelang
table claims
  key claim_id
  dated by date
  field claim_id: text
  field date: date
  field flag: boolean

output x: money per claims

rule r defines x
  from 2021-02-01
  when flag
  then 300 kr
```
''', encoding="utf-8")
    book = rulelang.load(str(path))
    data = book.dataset({"claims": [
        {"claim_id": "K1", "date": "2021-01-31", "flag": True},
        {"claim_id": "K2", "date": "2021-02-01", "flag": False},
        {"claim_id": "K3", "date": "2021-02-01", "flag": True},
    ]})
    # K1: the day before r starts no rule is in force: bad input data.
    with pytest.raises(rulelang.EvaluationError) as caught:
        book.evaluate_record(data, "x", "K1")
    assert (caught.value.kind, caught.value.record) == ("data", "K1")
    assert caught.value.message == "no rule gives x on 2021-01-31: its rules are in force 2021-02-01 – …"
    # K2: r is in force but its condition does not hold and there is no default: the
    # rulebook leaves the case open.
    with pytest.raises(rulelang.EvaluationError) as caught:
        book.evaluate_record(data, "x", "K2")
    assert (caught.value.kind, caught.value.record) == ("rulebook", "K2")
    assert caught.value.message.startswith("no rule gives x on 2021-02-01 and it declares no default (O1 Belopp")
    assert caught.value.message.endswith("rules in force: r")
    # K3: r applies: 300 kr.
    assert book.evaluate_record(data, "x", "K3").value == 30000


def test_broken_rulebook_is_a_rulebook_error(tmp_path):
    path = tmp_path / "broken.md"
    path.write_text('''# Broken

```rulelang
rulebook "test/broken"
  version "1" source src "Test source x"
according to src
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


@pytest.mark.parametrize("enabled", [True, False])
def test_loading_leaves_the_cycle_collector_as_it_found_it(enabled):
    """Loading pauses Python's cycle collector (collector_paused); afterwards, and after a
    rulebook with an error, it is on or off as the caller had it, and it was off meanwhile."""
    import gc

    from rulelang.language import parser as parser_module

    seen = []
    real = parser_module.parse_block

    def parse_block(*args):
        seen.append(gc.isenabled())
        return real(*args)

    (gc.enable if enabled else gc.disable)()
    try:
        parser_module.parse_block, saved = parse_block, parser_module.parse_block
        try:
            rulelang.load("stockholm/hlv-2021")
            assert gc.isenabled() is enabled
            with pytest.raises(rulelang.RulebookError):
                rulelang.loads(MINI.replace("rulebook", "rulebok", 1))
            assert gc.isenabled() is enabled
        finally:
            parser_module.parse_block = saved
    finally:
        gc.enable()
    assert seen and not any(seen)


def test_two_rulebooks_with_one_enum_name_check_their_own_members(tmp_path):
    """The intakes of one process share a database (records.py) and an enum field is cast
    to a DuckDB ENUM: a rulebook whose `mode` has a member another rulebook's `mode` lacks
    still accepts it, read after the other, and the other still refuses it."""
    body = '''
enum mode: {members}
table visits
  key visit_id
  field visit_id: text
  field mode: mode
output fee: money per visits
rule fee defines fee then if mode = physical then 100 kr else 50 kr
'''
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "visits.csv").write_text("visit_id,mode\nV1,physical\nV2,phone\n", encoding="utf-8")
    data = str(tmp_path / "data")
    on = dt.date(2021, 9, 1)
    narrow = load(tmp_path, body.format(members="physical, video"), name="narrow")
    wide = load(tmp_path, body.format(members="physical, video, phone"), name="wide")
    with pytest.raises(rulelang.DataError, match="mode: 'phone' is not a mode"):
        narrow.evaluate_record(data, "fee", "V1", on=on)
    assert wide.evaluate_record(data, "fee", "V2", on=on).value == 50_00  # not physical: 50 kr
    with pytest.raises(rulelang.DataError, match="mode: 'phone' is not a mode"):
        narrow.evaluate_record(data, "fee", "V1", on=on)
