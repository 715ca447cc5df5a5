"""Stockholm FFU 2021 (stockholm/hlv-2021): every effective date from both sides, and the
provisions' invariants on generated visits.

Three clinics: A and B in koncern K1, C in K2. P1 is listed at A, P3 is listed nowhere.
Amounts are the provisions' own: 300 kr add-on and deduction (STH21.6.1–6.4), 110 kr
grundersättning and 425 kr for psychologists (STH21.5), 115 kr from 2022. Before 2021-02-01
visits are paid under the 2016 model the rulebook amends (stockholm/hlv-2016, STH16.6): an
illustrative 250 kr for a physical doctor visit, 125 kr for other professions, 0 kr for
video and telephone contacts.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

import rulelang

KR = 100  # öre per krona
CLINICS = [{"clinic_id": "A", "koncern_id": "K1"}, {"clinic_id": "B", "koncern_id": "K1"},
           {"clinic_id": "C", "koncern_id": "K2"}]
PERSONS = [{"person_id": p, "birth_date": "1960-01-01", "sex": "F"} for p in ("P1", "P3")]
LISTINGS = [{"person_id": "P1", "clinic_id": "A", "listed_from": "2015-01-01"}]


@pytest.fixture(scope="module")
def book():
    return rulelang.load("stockholm/hlv-2021")


def visit(day, *, person="P1", clinic="C", mode="physical", place="clinic", assignment="general",
          profession="doctor"):
    return {"visit_id": "V", "person_id": person, "clinic_id": clinic, "date": str(day), "mode": mode,
            "place": place, "assignment": assignment, "profession": profession}


def data_of(**kwargs):
    return {"clinics": CLINICS, "persons": PERSONS, "listings": LISTINGS, "visits": [visit(**kwargs)]}


def value(book, output, **kwargs):
    return book.evaluate_record(data_of(**kwargs), output, "V").value


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@pytest.mark.parametrize("date, expected", [("2021-01-31", 0), ("2021-02-01", 300 * KR)])
def test_physical_add_on_for_another_clinics_patient_starts_2021_02_01(book, date, expected):
    # STH21.6.1: a physical visit at C by P1 (listed at A) gives C 300 kr from 2021-02-01.
    assert value(book, "tilläggsersättning", day=day(date)) == expected


@pytest.mark.parametrize("date, expected", [("2021-01-31", 0), ("2021-02-01", 300 * KR),
                                            ("2023-04-30", 300 * KR), ("2023-05-01", 0)])
def test_video_add_on_runs_from_2021_02_01_to_2023_04_30(book, date, expected):
    # STH21.6.2 with STH21.7 read as ending the video add-on only.
    assert value(book, "tilläggsersättning", day=day(date), mode="video", place="home") == expected


@pytest.mark.parametrize("date, expected", [("2021-08-31", 0), ("2021-09-01", -300 * KR)])
def test_deduction_starts_2021_09_01(book, date, expected):
    # STH21.6.4: the listing clinic A loses 300 kr for P1's physical visit at C.
    assert value(book, "avdrag", day=day(date)) == expected


@pytest.mark.parametrize("date, profession, expected", [
    ("2021-02-01", "doctor", 110 * KR), ("2021-02-01", "psychologist", 425 * KR),
    ("2021-12-31", "nurse", 110 * KR), ("2022-01-01", "nurse", 115 * KR),
    ("2022-01-01", "psychologist", 425 * KR)])
def test_visit_compensation(book, date, profession, expected):
    assert value(book, "besöksersättning", day=day(date), profession=profession) == expected


@pytest.mark.parametrize("date, mode, profession, expected", [
    # 2021-01-31: the 2016 model (STH16.6), inherited. No fee is netted (STH16.9a reading).
    ("2021-01-31", "physical", "doctor", 250 * KR),      # besöksersättning_per_yrke[doctor]
    ("2021-01-31", "physical", "nurse", 125 * KR),       # besöksersättning_per_yrke[nurse]
    ("2021-01-31", "physical", "psychologist", 125 * KR),
    ("2021-01-31", "video", "doctor", 0),                # exception digital_kontakt: 0 kr
    ("2021-01-31", "phone", "nurse", 0),
    # 2021-02-01: besök is repealed; grundersättning 110 kr for every kind of visit (STH21.5).
    ("2021-02-01", "physical", "doctor", 110 * KR),
    ("2021-02-01", "physical", "nurse", 110 * KR),
    ("2021-02-01", "video", "doctor", 110 * KR),
    ("2021-02-01", "phone", "nurse", 110 * KR),
    ("2021-02-01", "physical", "psychologist", 425 * KR),  # exception psykologbesök
    ("2021-02-01", "video", "psychologist", 425 * KR),
])
def test_visit_compensation_on_both_sides_of_2021_02_01(book, date, mode, profession, expected):
    place = "clinic" if mode == "physical" else "home"
    assert value(book, "besöksersättning", day=day(date), mode=mode, place=place,
                 profession=profession) == expected


def test_the_2016_visit_compensation_cites_the_2016_rulebook_until_2021_01_31(book):
    result = book.evaluate_record(data_of(day=day("2021-01-31")), "besöksersättning", "V")
    assert result.value == 250 * KR
    assert result.provision.startswith("STH16.6 ")
    assert result.source.startswith("rulebooks/stockholm/hlv-2016.md:")
    assert result.payee == "C"  # paid to the clinic that performed the visit
    result = book.evaluate_record(data_of(day=day("2021-02-01")), "besöksersättning", "V")
    assert result.value == 110 * KR
    assert result.provision.startswith("STH21.5 ")
    assert result.source.startswith("rulebooks/stockholm/hlv-2021.md:")


def rules_of(tree) -> dict:
    return {c.label: c for c in tree.children if c.kind == "rule"}


def test_explanation_of_a_2021_02_01_visit_shows_besok_repealed_and_grundersattning_applied(book):
    tree = book.explain(data_of(day=day("2021-02-01")), "besöksersättning", "V")
    assert tree.value == "110.00"
    assert tree.facts["decided_by"] == "grundersättning"
    rules = rules_of(tree)
    assert set(rules) == {"besök", "grundersättning"}
    besök = rules["besök"]
    assert besök.facts["in_force"] is False and besök.facts["applied"] is False
    assert besök.facts["reason"] == "repealed from 2021-02-01"
    assert besök.facts["valid_from"] == "2016-01-01" and besök.facts["valid_to"] == "2021-01-31"
    assert besök.facts["rulebook"] == "stockholm/hlv-2016"
    assert besök.provision.startswith("STH16.6 ")  # the rule keeps its own provision
    # The repeal is cited to the provision that makes it, in the 2021 rulebook.
    assert besök.facts["repealed_by"].startswith("STH21.5 Ersättning flyttas från besöksersättning")
    assert "[stockholm/hlv-2021, rulebooks/stockholm/hlv-2021.md:" in besök.facts["repealed_by"]
    assert besök.children == []  # a rule not in force is not looked into
    grund = rules["grundersättning"]
    assert grund.facts["applied"] is True and grund.facts["in_force"] is True
    assert grund.value == "110.00"
    assert grund.provision.startswith("STH21.5 ")
    assert grund.facts["rulebook"] == "stockholm/hlv-2021"
    # Neither the psychologist's exception nor reading 12's for telephone contacts applies.
    exceptions = {c.label: c.facts["applied"] for c in grund.children if c.kind == "exception"}
    assert exceptions == {"psykologbesök": False, "telefonkontakt_utan_besöksersättning": False}


def test_explanation_of_a_2021_01_31_visit_shows_besok_applied_and_grundersattning_not_yet(book):
    tree = book.explain(data_of(day=day("2021-01-31")), "besöksersättning", "V")
    assert tree.value == "250.00"
    assert tree.facts["decided_by"] == "besök"
    rules = rules_of(tree)
    assert rules["besök"].facts["applied"] is True and rules["besök"].facts["in_force"] is True
    assert "repealed_by" not in rules["besök"].facts  # not yet repealed on that day
    assert rules["grundersättning"].facts["in_force"] is False
    assert rules["grundersättning"].facts["reason"] == "not in force on 2021-01-31"
    (digital,) = [c for c in rules["besök"].children if c.kind == "exception"]
    assert digital.label == "digital_kontakt" and digital.facts["applied"] is False


@pytest.mark.parametrize("date, expected", [("2021-01-31", 300 * KR), ("2021-02-01", 300 * KR)])
def test_unlisted_patients_physical_visit_add_on_on_both_sides_of_2021_02_01(book, date, expected):
    assert value(book, "tilläggsersättning", day=day(date), person="P3") == expected


def test_the_deduction_is_paid_to_the_listing_clinic_and_the_add_on_to_the_performing_clinic(book):
    data = {"clinics": CLINICS, "persons": PERSONS, "listings": LISTINGS,
            "visits": [visit(day=day("2021-09-01"))]}
    # Persons and clinics carry no date: they are evaluated on `on`; the visit on its own date.
    results = {r.output: r for r in book.evaluate(data, on=day("2021-09-30")) if r.table == "visits"}
    assert set(results) == {"besöksersättning", "patientavgift", "tilläggsersättning", "avdrag"}
    assert results["avdrag"].payee == "A"
    assert results["tilläggsersättning"].payee == "C"
    assert results["avdrag"].json_value == "-300.00"
    assert results["besöksersättning"].payee == "C"
    assert results["patientavgift"].payee is None  # the fee is paid to no clinic
    assert results["avdrag"].date == day("2021-09-01")


# ------------------------------------------------------------------------ generated visits

visits = st.fixed_dictionaries({
    "person": st.sampled_from(["P1", "P3"]),
    "clinic": st.sampled_from(["A", "B", "C"]),
    "mode": st.sampled_from(["physical", "video", "phone"]),
    "place": st.sampled_from(["clinic", "home", "other"]),
    "assignment": st.sampled_from(["general", "home_care", "psychosocial"]),
    "profession": st.sampled_from(["doctor", "nurse", "psychologist", "therapist", "other"]),
    "day": st.dates(min_value=dt.date(2021, 2, 1), max_value=dt.date(2024, 12, 31)),
})


@settings(max_examples=300, deadline=None)
@given(v=visits)
def test_every_visit_gets_exactly_the_provisions_amounts(book, v):
    """No combination of mode, place, assignment and listing ever conflicts, and each amount
    is what the provisions say, computed here independently of the rulebook."""
    add_on = value(book, "tilläggsersättning", **v)
    deduction = value(book, "avdrag", **v)
    fee = value(book, "besöksersättning", **v)

    listed_at = "A" if v["person"] == "P1" else None
    koncern = {"A": "K1", "B": "K1", "C": "K2"}
    general = v["assignment"] == "general"  # UPT 300 only (STH21.6.6–6.7)
    elsewhere = listed_at is not None and listed_at != v["clinic"]
    same_koncern = listed_at is not None and koncern[listed_at] == koncern[v["clinic"]]
    at_clinic = v["place"] == "clinic"

    expected_add_on = 0
    if general and v["mode"] == "physical" and v["place"] != "home" and (elsewhere or listed_at is None):
        # STH21.6.1 or STH16.12; reading 2 (literal): at the clinic or another place, not a home visit.
        expected_add_on = 300 * KR
    if general and v["mode"] == "video" and listed_at != v["clinic"] and not same_koncern \
            and v["day"] <= dt.date(2023, 4, 30):
        expected_add_on = 300 * KR  # STH21.6.2
    expected_deduction = 0
    if general and v["mode"] == "physical" and at_clinic and elsewhere and v["day"] >= dt.date(2021, 9, 1):
        expected_deduction = -300 * KR  # STH21.6.4–6.5
    expected_fee = 425 * KR if v["profession"] == "psychologist" else (
        110 * KR if v["day"] <= dt.date(2021, 12, 31) else 115 * KR)

    assert (add_on, deduction, fee) == (expected_add_on, expected_deduction, expected_fee)


early_visits = st.fixed_dictionaries({
    "person": st.sampled_from(["P1", "P3"]),
    "clinic": st.sampled_from(["A", "B", "C"]),
    "mode": st.sampled_from(["physical", "video", "phone"]),
    "place": st.sampled_from(["clinic", "home", "other"]),
    "assignment": st.sampled_from(["general", "home_care", "psychosocial"]),
    "profession": st.sampled_from(["doctor", "nurse", "psychologist", "therapist", "other"]),
    "day": st.dates(min_value=dt.date(2016, 1, 1), max_value=dt.date(2021, 1, 31)),
})


@settings(max_examples=200, deadline=None)
@given(v=early_visits)
def test_every_visit_before_2021_02_01_gets_the_2016_amounts(book, v):
    """Before the FFU 2021 only the inherited 2016 visit compensation and the 2016 add-on for
    unlisted patients (STH16.12) pay; computed independently."""
    add_on = value(book, "tilläggsersättning", **v)
    deduction = value(book, "avdrag", **v)
    fee = value(book, "besöksersättning", **v)

    unlisted = v["person"] == "P3"
    # STH16.12 (illustrative 300 kr until 2021-01-31): an unlisted patient's physical visit,
    # wherever it is and whatever the assignment (the exclusions of STH21.6.6 start with the
    # FFU 2021); no video add-on before 2021 (reading S2). STH21.6.1–6.2 start 2021-02-01,
    # the deduction (STH21.6.4) 2021-09-01.
    expected_add_on = 300 * KR if (unlisted and v["mode"] == "physical") else 0
    # STH16.6: 250 kr for a doctor, 125 kr for other professions, 0 kr for a digital contact.
    expected_fee = 0 if v["mode"] != "physical" else (250 * KR if v["profession"] == "doctor" else 125 * KR)

    assert (add_on, deduction, fee) == (expected_add_on, 0, expected_fee)
