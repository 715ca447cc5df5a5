"""Stockholm FFU 2021 (stockholm/hlv-2021): every effective date from both sides, and the
provisions' invariants on generated visits.

Three clinics: A and B in koncern K1, C in K2. P1 is listed at A, P3 is listed nowhere.
Amounts are the provisions' own: 300 kr add-on and deduction (STH21.6.1–6.4), 110 kr
grundersättning and 425 kr for psychologists (STH21.5), 115 kr from 2022.
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


def value(book, output, **kwargs):
    data = {"clinics": CLINICS, "persons": PERSONS, "listings": LISTINGS, "visits": [visit(**kwargs)]}
    return book.evaluate_record(data, output, "V").value


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


def test_visit_compensation_before_2021_02_01_is_not_this_rulebooks(book):
    # Visits before the FFU 2021 are paid under the 2016 model; this rulebook refuses to guess.
    with pytest.raises(rulelang.EvaluationError, match="no rule gives besöksersättning on 2021-01-31"):
        value(book, "besöksersättning", day=day("2021-01-31"))


@pytest.mark.parametrize("date, expected", [("2021-01-31", 300 * KR), ("2021-02-01", 300 * KR)])
def test_unlisted_patients_physical_visit_add_on_on_both_sides_of_2021_02_01(book, date, expected):
    assert value(book, "tilläggsersättning", day=day(date), person="P3") == expected


def test_the_deduction_is_paid_to_the_listing_clinic_and_the_add_on_to_the_performing_clinic(book):
    data = {"clinics": CLINICS, "persons": PERSONS, "listings": LISTINGS,
            "visits": [visit(day=day("2021-09-01"))]}
    results = {r.output: r for r in book.evaluate(data)}
    assert results["avdrag"].payee == "A"
    assert results["tilläggsersättning"].payee == "C"
    assert results["avdrag"].json_value == "-300.00"


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
    if general and v["mode"] == "physical" and at_clinic and (elsewhere or listed_at is None):
        expected_add_on = 300 * KR  # STH21.6.1 or STH21.6.3 (reading 2: at the clinic only)
    if general and v["mode"] == "video" and listed_at != v["clinic"] and not same_koncern \
            and v["day"] <= dt.date(2023, 4, 30):
        expected_add_on = 300 * KR  # STH21.6.2
    expected_deduction = 0
    if general and v["mode"] == "physical" and at_clinic and elsewhere and v["day"] >= dt.date(2021, 9, 1):
        expected_deduction = -300 * KR  # STH21.6.4–6.5
    expected_fee = 425 * KR if v["profession"] == "psychologist" else (
        110 * KR if v["day"] <= dt.date(2021, 12, 31) else 115 * KR)

    assert (add_on, deduction, fee) == (expected_add_on, expected_deduction, expected_fee)
