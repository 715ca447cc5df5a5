"""The semantics the rulebooks' fidelity rests on, and the rulebooks' answers on cases written
from their sources: a rulebook's `in force from`, the dates on which records read through a
reference or a sum are evaluated (the same in the interpreter and in SQL), optional tables,
warnings about the input as a whole, and amounts that must agree between rulebooks.

Expected amounts are the provisions' arithmetic, written out in the comments.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from regions import csv_rows, interpreter_rows
from rulebook_factory import write_rulebook

import rulelang
from rulelang.columnar.settlement import SettlementError, settle
from rulelang.interfaces.cli import main
from rulelang.language.diagnostics import EvaluationError, RulebookError

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("at_repo_root")


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def settled_and_interpreted(book, region: dict, month: str, directory: Path) -> tuple:
    """The month's line items as DuckDB writes them, and as the interpreter computes them."""
    out = directory / "out.csv"
    settle(book, month, Path(write(directory, "data.json", json.dumps(region))), out)
    return csv_rows(out), interpreter_rows(book, region, month)


def book_of(directory: Path, body: str) -> rulelang.Rulebook:
    """A one-section rulebook in force from 2021-01-01."""
    return rulelang.load(str(write_rulebook(directory, body, in_force="2021-01-01")))


# ------------------------------------------------------------------------ in force from

IN_FORCE = '''table claims
  key claim_id
  dated by date
  field claim_id: text
  field date: date

parameter belopp: money
  value 100 kr status illustrative cite "x"

output ersättning: money per claims
rule ersätt defines ersättning then belopp

output med_standardvärde: money per claims default 0 kr
rule ersätt_med_standard defines med_standardvärde then belopp

output tidig: money per claims
rule tidig_regel defines tidig from 2020-06-01 then belopp
'''


def test_a_rule_without_a_start_is_in_force_from_its_rulebooks_start(tmp_path):
    book = book_of(tmp_path, IN_FORCE)
    data = {"claims": [{"claim_id": "FÖRE", "date": "2020-12-31"}, {"claim_id": "PÅ", "date": "2021-01-01"}]}
    assert book.evaluate_record(data, "ersättning", "PÅ").value == 100_00
    with pytest.raises(EvaluationError) as raised:
        book.evaluate_record(data, "ersättning", "FÖRE")
    assert raised.value.message == ("no rule gives ersättning on 2020-12-31: its rules are in force "
                                    "2021-01-01 – …")
    # An output with a default gives it before the start: the rule is not in force.
    assert book.evaluate_record(data, "med_standardvärde", "FÖRE").value == 0
    explanation = book.explain(data, "med_standardvärde", "FÖRE")
    (rule,) = [c for c in explanation.children if c.kind == "rule"]
    assert rule.facts["in_force"] is False and rule.facts["valid_from"] == "2021-01-01"


def test_a_parameter_value_without_a_start_has_none_before_the_rulebooks_start(tmp_path):
    book = book_of(tmp_path, IN_FORCE)
    data = {"claims": [{"claim_id": "SOMMAR", "date": "2020-07-01"}]}
    # The rule says it is in force from 2020-06-01, but the value it reads starts 2021-01-01.
    with pytest.raises(EvaluationError) as raised:
        book.evaluate_record(data, "tidig", "SOMMAR")
    assert "belopp has no value on 2020-07-01" in raised.value.message


def test_narvard_does_not_judge_patients_before_2014(capsys):
    code = main(["eval", "skaraborg/narvard-2014", "--input", "examples/skaraborg-2014.json",
                 "--on", "2013-06-01", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 2
    assert "no rule gives närsjukvårdsteam on 2013-06-01: its rules are in force 2014-03-13" in captured.err
    assert "Traceback" not in captured.err


def test_vg_primarvard_pays_nothing_before_2009_10_01():
    book = rulelang.load("vastra-gotaland/vg-primarvard")
    data = json.loads((ROOT / "examples/vastra-gotaland-2017.json").read_text(encoding="utf-8"))
    data["visits"] = [{"visit_id": "TIDIG", "person_id": "A", "clinic_id": "V1", "date": "2009-09-30",
                       "mode": "physical", "place": "clinic", "assignment": "general", "profession": "doctor"},
                      {"visit_id": "START", "person_id": "A", "clinic_id": "V2", "date": "2009-10-01",
                       "mode": "physical", "place": "clinic", "assignment": "general", "profession": "doctor"}]
    with pytest.raises(EvaluationError) as raised:
        book.evaluate_record(data, "patientavgift", "TIDIG")
    assert "2009-09-30" in raised.value.message
    # From the start: A, listed nowhere in October 2009, pays the other-unit fee, 200 kr.
    assert book.evaluate_record(data, "patientavgift", "START").value == 200_00


def test_hlv_2021_pays_a_2016_visit_by_the_2016_provision():
    """hlv-2021 inherits the unlisted add-on of the 2016 model with its dates: a 2016 visit
    gets the 2016 amount under the 2016 provision, not 2021's 300 kr under 2021's."""
    book = rulelang.load("stockholm/hlv-2021")
    data = unlisted_visits(["2016-03-01"])
    result = book.evaluate_record(data, "tilläggsersättning", "U2016-03-01")
    assert result.value == 300_00  # the 2016 value, illustrative
    assert result.provision.startswith("STH16.12 ")
    explanation = book.explain(data, "tilläggsersättning", "U2016-03-01")
    assert explanation.facts["basis"] == "illustrative"


# ------------------------------------------------------------------------ the unlisted add-on


def unlisted_visits(dates: list, place: str = "clinic") -> dict:
    """A clinic C and a person U listed nowhere, with one physical visit at C on each date."""
    return {
        "clinics": [{"clinic_id": "C", "koncern_id": "K"}],
        "persons": [{"person_id": "U", "birth_date": "1970-01-01", "sex": "F"}],
        "listings": [],
        "visits": [{"visit_id": f"U{day}", "person_id": "U", "clinic_id": "C", "date": day, "mode": "physical",
                    "place": place, "assignment": "general", "profession": "doctor"} for day in dates],
    }


def test_the_same_unlisted_visit_gets_the_same_add_on_under_2016_and_2021():
    """STH16.12 belongs to the 2016 model and hlv-2021 inherits it: on every date both
    rulebooks pay the same for an unlisted patient's physical visit at the clinic, citing
    the same provision (2021's exceptions concern home visits and assignments, not this)."""
    dates = ["2016-03-01", "2019-11-30", "2021-01-31", "2021-02-01", "2021-09-15", "2022-05-05", "2023-06-01"]
    data = unlisted_visits(dates)
    old, new = rulelang.load("stockholm/hlv-2016"), rulelang.load("stockholm/hlv-2021")
    for day in dates:
        before = old.evaluate_record(data, "tilläggsersättning", f"U{day}")
        after = new.evaluate_record(data, "tilläggsersättning", f"U{day}")
        assert before.value == after.value == 300_00, day
        assert before.provision == after.provision and before.provision.startswith("STH16.12 ")


def test_an_out_of_county_patient_gets_no_add_on_and_causes_no_deduction():
    """Reading 6 / S3: a person registered in another county (county 03, not Stockholm's
    01) is paid for under the Riksavtal: no unlisted add-on, no add-on for another clinic's
    listed patient, no deduction for the listing clinic."""
    book = rulelang.load("stockholm/hlv-2021")
    data = {
        "clinics": [{"clinic_id": "A", "koncern_id": "K1"}, {"clinic_id": "C", "koncern_id": "K2"}],
        "persons": [{"person_id": "UT", "birth_date": "1970-01-01", "sex": "F", "county_code": "03"},
                    {"person_id": "LISTAD_UT", "birth_date": "1970-01-01", "sex": "F", "county_code": "03"},
                    {"person_id": "HEMMA", "birth_date": "1970-01-01", "sex": "F", "county_code": "01"}],
        "listings": [{"person_id": "LISTAD_UT", "clinic_id": "A", "listed_from": "2020-01-01", "listed_to": None},
                     {"person_id": "HEMMA", "clinic_id": "A", "listed_from": "2020-01-01", "listed_to": None}],
        "visits": [{"visit_id": v, "person_id": p, "clinic_id": "C", "date": "2021-09-15", "mode": "physical",
                    "place": "clinic", "assignment": "general", "profession": "doctor"}
                   for v, p in (("V_UT", "UT"), ("V_LISTAD_UT", "LISTAD_UT"), ("V_HEMMA", "HEMMA"))],
    }
    assert book.evaluate_record(data, "tilläggsersättning", "V_UT").value == 0
    assert book.evaluate_record(data, "tilläggsersättning", "V_LISTAD_UT").value == 0
    assert book.evaluate_record(data, "avdrag", "V_LISTAD_UT").value == 0
    # Registered in Stockholm's county: 300 kr to C, −300 kr to A (STH21.6.1, STH21.6.4).
    assert book.evaluate_record(data, "tilläggsersättning", "V_HEMMA").value == 300_00
    assert book.evaluate_record(data, "avdrag", "V_HEMMA").value == -300_00


# ------------------------------------------------------------------------ Stockholm's provisions


def listed_clinic(persons: int, cni: str) -> dict:
    return {
        "clinics": [{"clinic_id": "H", "koncern_id": "K"}],
        "persons": [{"person_id": f"P{i}", "birth_date": "1970-01-01", "sex": "F", "cni": cni}
                    for i in range(persons)],
        "listings": [{"person_id": f"P{i}", "clinic_id": "H", "listed_from": "2015-01-01", "listed_to": None}
                     for i in range(persons)],
        "visits": [],
    }


def test_halsoframjande_needs_more_than_5000_listed_and_a_high_relative_cni():
    """STH16.11: more than 5 000 listed persons and a high relative CNI (reading S4: above
    1.20). 5 001 persons with CNI 1.5: 5 001 > 5 000 and 1.5 > 1.20 → eligible; 5 000 are
    not more than 5 000; 5 001 persons with CNI 1.2 are not above 1.20."""
    book = rulelang.load("stockholm/hlv-2016")
    on = dt.date(2016, 6, 30)
    assert book.evaluate_record(listed_clinic(5001, "1.5"), "hälsofrämjande_insatser", "H", on=on).value is True
    assert book.evaluate_record(listed_clinic(5000, "1.5"), "hälsofrämjande_insatser", "H", on=on).value is False
    assert book.evaluate_record(listed_clinic(5001, "1.2"), "hälsofrämjande_insatser", "H", on=on).value is False


def test_kroninnovation_raises_the_listing_share_of_the_same_population():
    """The pilot gives "en större del av ersättningen ... för listningen". One person, 3 years
    old (band 0–6: 150 kr), ACG 1.00, listed at the pilot clinic K, and one doctor visit
    (250 kr, no fee for a child) in March 2016.
    hlv-2016: listing 150 kr, visit 250 kr: the listing's share is 150 / 400 = 37.5 %.
    Kroninnovation: 150 kr × 26/21 × (20 % + 80 % × 1.00) = 3900/21 kr = 185.714… → 185.71 kr;
    the visit is paid as before, 250 kr: the share is 185.71 / 435.71 ≈ 42.6 %."""
    data = {
        "clinics": [{"clinic_id": "K", "koncern_id": "SLSO", "pilot": True}],
        "persons": [{"person_id": "BARN", "birth_date": "2013-02-01", "sex": "F", "acg_weight": "1.00"}],
        "listings": [{"person_id": "BARN", "clinic_id": "K", "listed_from": "2014-01-01", "listed_to": None}],
        "visits": [{"visit_id": "B1", "person_id": "BARN", "clinic_id": "K", "date": "2016-03-10",
                    "mode": "physical", "place": "clinic", "assignment": "general", "profession": "doctor"}],
    }
    on = dt.date(2016, 3, 31)
    shares = {}
    for rid, listing_expected in (("stockholm/hlv-2016", 150_00), ("stockholm/kroninnovation-2016", 185_71)):
        book = rulelang.load(rid)
        listing = book.evaluate_record(data, "listningsersättning", "BARN", on=on).value
        visit = book.evaluate_record(data, "besöksersättning", "B1").value
        assert (listing, visit) == (listing_expected, 250_00), rid
        shares[rid] = Decimal(listing) / Decimal(listing + visit)
    assert shares["stockholm/kroninnovation-2016"] > shares["stockholm/hlv-2016"]


# ------------------------------------------------------------------------ dates of records read

READ_DATES = '''table clinics
  key clinic_id
  field clinic_id: text
table visits
  key visit_id
  dated by date
  field visit_id: text
  field clinic_id: clinics
  field date: date

parameter sats: money
  value 100 kr until 2021-03-14 status illustrative cite "x"
  value 150 kr from 2021-03-15 status illustrative cite "x"

definition besöksbelopp per visits = sats
definition klinikens_sats per clinics = sats

output månadssumma: money per clinics paid to clinic_id
rule summa defines månadssumma
  then sum of v.besöksbelopp for v in visits
    where v.clinic_id = clinic_id and v.date >= first_day_of_month(evaluation_date)
      and v.date <= last_day_of_month(evaluation_date)

output med_klinikens_sats: money per visits paid to clinic_id
rule klinikens defines med_klinikens_sats then clinic_id.klinikens_sats
'''

READ_DATES_DATA = {"clinics": [{"clinic_id": "A"}],
                   "visits": [{"visit_id": "V1", "clinic_id": "A", "date": "2021-03-10"},
                              {"visit_id": "V2", "clinic_id": "A", "date": "2021-03-20"}]}


def test_a_summed_record_is_read_on_its_own_date_and_a_referenced_one_on_the_readers(tmp_path):
    """The rate changes on 2021-03-15 (100 kr → 150 kr). The clinic's March sum, evaluated on
    2021-03-31, reads each visit on the visit's date: 100 kr + 150 kr = 250 kr (not 2 × 150 kr).
    A visit reading its clinic's (undated) definition reads it on the visit's date: V1 100 kr,
    V2 150 kr."""
    book = book_of(tmp_path, READ_DATES)
    assert book.evaluate_record(READ_DATES_DATA, "månadssumma", "A", on=dt.date(2021, 3, 31)).value == 250_00
    assert book.evaluate_record(READ_DATES_DATA, "med_klinikens_sats", "V1").value == 100_00
    assert book.evaluate_record(READ_DATES_DATA, "med_klinikens_sats", "V2").value == 150_00


def test_sql_reads_records_on_the_same_dates_as_the_interpreter(tmp_path):
    settled, expected = settled_and_interpreted(book_of(tmp_path, READ_DATES), READ_DATES_DATA, "2021-03", tmp_path)
    assert settled == expected
    assert [(row[2], row[3], row[5]) for row in expected] == [
        ("med_klinikens_sats", "100.00", "V1"), ("med_klinikens_sats", "150.00", "V2"), ("månadssumma", "250.00", "")]


# ------------------------------------------------------------------------ built-in functions

FUNCTIONS = '''table clinics
  key clinic_id
  field clinic_id: text
  field kommun: text
  field poäng: decimal

output i_lidköping: money per clinics paid to clinic_id
rule lidköping defines i_lidköping
  then if lower(trim(kommun)) in {"lidköping", "lidköpings kommun", "1494"} then 1 kr else 0 kr

output hela_poäng: money per clinics paid to clinic_id
rule hela defines hela_poäng then 1 kr * floor(poäng)
'''


def test_lower_trim_and_floor_agree_in_the_interpreter_and_in_sql(tmp_path):
    """floor rounds toward minus infinity in both engines: 22.5 → 22, −0.5 → −1; lower and
    trim make "  LIDKÖPINGS KOMMUN " and "Lidköping" the same place; "Lidkoping" is not."""
    book = book_of(tmp_path, FUNCTIONS)
    region = {"clinics": [{"clinic_id": "A", "kommun": "  LIDKÖPINGS KOMMUN ", "poäng": "22.5"},
                          {"clinic_id": "B", "kommun": "Lidköping", "poäng": "-0.5"},
                          {"clinic_id": "C", "kommun": "1494", "poäng": "3"},
                          {"clinic_id": "D", "kommun": "Lidkoping", "poäng": "0.99"}]}
    on = dt.date(2021, 3, 31)
    assert [book.evaluate_record(region, "i_lidköping", c, on=on).value for c in "ABCD"] == [100, 100, 100, 0]
    assert [book.evaluate_record(region, "hela_poäng", c, on=on).value for c in "ABCD"] == [2200, -100, 300, 0]
    settled, expected = settled_and_interpreted(book, region, "2021-03", tmp_path)
    assert settled == expected


# ------------------------------------------------------------------------ optional tables


def test_koncern_memberships_may_be_missing_and_listings_may_not(tmp_path):
    data = json.loads((ROOT / "examples/stockholm-2021.json").read_text(encoding="utf-8"))
    assert "koncern_memberships" not in data
    book = rulelang.load("stockholm/hlv-2021")
    result = settle(book, "2021-09", Path(write(tmp_path, "with.json", json.dumps(data))), tmp_path / "with.csv")
    counts = {c.table: (c.read, c.used) for c in result.counts}
    assert counts["koncern_memberships"] == (0, 0)
    del data["listings"]
    with pytest.raises(SettlementError) as raised:
        settle(book, "2021-09", Path(write(tmp_path, "without.json", json.dumps(data))), tmp_path / "without.csv")
    assert "listings" in str(raised.value)


def test_a_dated_koncern_membership_decides_the_koncern_on_the_visit_day():
    """P2 is listed at C (koncern K2 in its clinic record). From 2021-09-01 C belongs to K1,
    A's koncern: a video visit by P2 at A in August is outside A's koncern (300 kr, STH21.6.2),
    one in September is inside it (no add-on)."""
    book = rulelang.load("stockholm/hlv-2021")
    data = {
        "clinics": [{"clinic_id": "A", "koncern_id": "K1"}, {"clinic_id": "C", "koncern_id": "K2"}],
        "persons": [{"person_id": "P2", "birth_date": "1970-01-01", "sex": "F"}],
        "listings": [{"person_id": "P2", "clinic_id": "C", "listed_from": "2020-01-01", "listed_to": None}],
        "koncern_memberships": [{"clinic_id": "C", "koncern_id": "K1", "member_from": "2021-09-01",
                                 "member_until": None}],
        "visits": [{"visit_id": v, "person_id": "P2", "clinic_id": "A", "date": d, "mode": "video",
                    "place": "clinic", "assignment": "general", "profession": "doctor"}
                   for v, d in (("AUG", "2021-08-20"), ("SEP", "2021-09-20"))],
    }
    assert book.evaluate_record(data, "tilläggsersättning", "AUG").value == 300_00
    assert book.evaluate_record(data, "tilläggsersättning", "SEP").value == 0


# ------------------------------------------------------------------------ warnings


def vg_region(weights: dict) -> dict:
    data = json.loads((ROOT / "examples/vastra-gotaland-2017.json").read_text(encoding="utf-8"))
    for person in data["persons"]:
        if person["person_id"] in weights:
            person["acg_weight"] = weights[person["person_id"]]
    return data


def test_vg_warns_when_the_listed_persons_mean_weight_is_far_from_one(tmp_path, capsys):
    """On the listing day 2017-02-28 A, B and C are listed at V1 and D at V2. With A 1.2,
    B 2.0 and C, D without a weight (1.00, reading V3) the mean is (1.2 + 2.0 + 1 + 1) / 4 =
    1.30, more than 0.05 from 1.00: the settlement warns. With A 0.9 and B 1.1 it is
    (0.9 + 1.1 + 1 + 1) / 4 = 1.00: no warning."""
    book = rulelang.load("vastra-gotaland/vg-primarvard")
    on = dt.date(2017, 3, 31)
    far, near = vg_region({}), vg_region({"A": "0.9", "B": "1.1"})
    assert [w.name for w in book.input_warnings(far, on)] == ["medelvikten_är_inte_ett"]
    assert book.input_warnings(near, on) == []
    # The same in SQL, reported beside the settlement, in its JSON and on standard error.
    result = settle(book, "2017-03", Path(write(tmp_path, "far.json", json.dumps(far))), tmp_path / "far.csv")
    (warning,) = result.warnings
    assert warning.provision.startswith("6.1.3 ") and "reading V4" in warning.message
    assert result.to_dict()["warnings"][0]["warning"] == "medelvikten_är_inte_ett"
    near_result = settle(book, "2017-03", Path(write(tmp_path, "near.json", json.dumps(near))),
                         tmp_path / "near.csv")
    assert near_result.warnings == []
    code = main(["settle", "vastra-gotaland/vg-primarvard", "--month", "2017-03",
                 "--data", str(tmp_path / "far.json"), "--out", str(tmp_path / "cli.csv")])
    captured = capsys.readouterr()
    assert code == 0
    assert "warning: medelvikten_är_inte_ett: the mean ACG weight" in captured.err
    assert "! medelvikten_är_inte_ett" in captured.out


WARNING_BOOK = '''table clinics
  key clinic_id
  field clinic_id: text
  field poäng: decimal

{body}
'''


@pytest.mark.parametrize("body, message", [
    ('warning w when 1 + 1 says "x"', "the condition of warning w must be a boolean; this is integer"),
    ('warning w when poäng > 1 says "x"', "unknown name poäng"),
    ('output w: boolean per clinics\nrule r defines w then true\nwarning w when true says "x"',
     "warning w is already declared"),
])
def test_a_warning_is_a_boolean_about_the_input_as_a_whole(tmp_path, body, message):
    with pytest.raises(RulebookError) as raised:
        book_of(tmp_path, WARNING_BOOK.format(body=body))
    assert any(message in d.message for d in raised.value.diagnostics), raised.value.diagnostics


def test_a_wider_tolerance_silences_the_vg_weight_warning():
    """Reading V4's tolerance, alternative: at 0.50 a mean of 1.30 is close enough."""
    from fractions import Fraction

    from rulelang.evaluation.evaluator import Evaluator

    book = rulelang.load("vastra-gotaland/vg-primarvard")
    on = dt.date(2017, 3, 31)
    dataset = book.dataset(vg_region({}))
    assert Evaluator(book.program, dataset, on, {"medelviktens_tolerans": Fraction(1, 2)}).raised_warnings(on) == []
    assert [w.name for w in Evaluator(book.program, dataset, on).raised_warnings(on)] == ["medelvikten_är_inte_ett"]
