"""Explaining one record of a directory loads only that record's reach (columnar/intake.py,
narrow_to_focus), and whole every table the output may read beyond it
(language/checker/reach.py). A sum the reach cannot hold, a clinic's count read from one
of its visits, a person's visits counted from one of them, a region's total, must not be
summed over what happened to be loaded: that would be a wrong amount, silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from regions import EXAMPLES, MONTHS, as_directory, regions
from rulebook_factory import load

import rulelang
from rulelang.columnar import intake
from rulelang.columnar.settlement import month_bounds

ROOT = Path(__file__).resolve().parent.parent

SHAPES = '''
enum enhet: egen, alla

parameter räknas_per: enhet
  value egen status interpretation cite "the clinic's own listed persons"

table clinics
  key clinic_id
  field clinic_id: text

table persons
  key person_id
  field person_id: text
  field clinic_id: clinics

table visits
  key visit_id
  field visit_id: text
  field person_id: persons
  field clinic_id: clinics

definition listade per clinics = count p in persons where p.clinic_id = clinic_id
definition räknade per clinics = if räknas_per = egen then listade else count p in persons
definition besök_av_personen per persons = count v in visits where v.person_id = person_id
definition besök_i_regionen = count v in visits
definition besökarens_poster per visits = count p in persons where p.person_id = person_id

output per_klinik: money per clinics
rule r1 defines per_klinik then 10 kr * listade

output per_klinik_räknad: money per clinics
rule r2 defines per_klinik_räknad then 1 kr * räknade

output per_besök: money per visits
rule r3 defines per_besök then 1 kr * clinic_id.listade

output per_besök_av_personen: money per visits
rule r4 defines per_besök_av_personen then 1 kr * person_id.besök_av_personen

output per_person_i_regionen: money per persons
rule r5 defines per_person_i_regionen then 1 kr * besök_i_regionen

output per_besökare: money per visits
rule r6 defines per_besökare then 1 kr * besökarens_poster
'''

# Clinics A and B; P1 and P2 listed at A, P3 at B; P1 visits B (V1) and A (V2), P2 A (V3), P3 B (V4).
REGION = {
    "clinics": [{"clinic_id": "A"}, {"clinic_id": "B"}],
    "persons": [{"person_id": "P1", "clinic_id": "A"}, {"person_id": "P2", "clinic_id": "A"},
                {"person_id": "P3", "clinic_id": "B"}],
    "visits": [{"visit_id": "V1", "person_id": "P1", "clinic_id": "B"},
               {"visit_id": "V2", "person_id": "P1", "clinic_id": "A"},
               {"visit_id": "V3", "person_id": "P2", "clinic_id": "A"},
               {"visit_id": "V4", "person_id": "P3", "clinic_id": "B"}],
}


@pytest.fixture
def in_part(monkeypatch):
    """Every table loaded in part around the record, as a region's large tables are."""
    monkeypatch.setattr(intake, "FOCUS_WHOLE_TABLE_ROWS", 0)


@pytest.fixture(scope="module")
def monkeypatch_module():
    """in_part for a module-scoped test (hypothesis runs one test many times)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(intake, "FOCUS_WHOLE_TABLE_ROWS", 0)
        yield patch


def focused(book, data: str, output: str, record: str, on: str, assumed: dict = None):
    """The explanation of one record loaded as `explain --record` loads it (Rulebook.focus)."""
    focus = book.focus(output, record, assumed)
    evaluator = book.evaluator(data, on, focus, assumptions=assumed)
    return evaluator, evaluator.explain(output, book.record(evaluator, output, record))


@pytest.mark.parametrize("output, beyond", [
    ("per_klinik", set()),  # the persons that name the clinic: in its reach
    ("per_klinik_räknad", set()),  # räknas_per is `egen` in every period: the same
    ("per_besök", {"persons"}),  # the visit's clinic's listed persons do not name the visit
    ("per_besök_av_personen", {"visits"}),  # nor do the person's other visits
    ("per_person_i_regionen", {"visits"}),  # every visit of the region
    ("per_besökare", set()),  # the person the visit names: in its reach
])
def test_what_an_output_may_read_beyond_one_record(tmp_path, output, beyond):
    book = load(tmp_path, SHAPES)
    assert book.checked.beyond_reach(output) == beyond


def test_an_assumed_value_can_take_a_sum_beyond_the_record(tmp_path):
    book = load(tmp_path, SHAPES)
    assert book.checked.beyond_reach("per_klinik_räknad", {"räknas_per": "alla"}) == {"persons"}
    assert book.checked.beyond_reach("per_klinik_räknad", {"räknas_per": "egen"}) == set()


@pytest.mark.parametrize("output, record, assumed, expected", [
    ("per_klinik", "A", None, "20.00"),  # P1 and P2: 2 × 10 kr
    ("per_klinik_räknad", "A", None, "2.00"),  # A's own two: 2 × 1 kr
    ("per_klinik_räknad", "A", {"räknas_per": "alla"}, "3.00"),  # every listed person: 3 × 1 kr
    ("per_besök", "V1", None, "1.00"),  # V1 is at B, which has P3 listed: 1 × 1 kr
    ("per_besök_av_personen", "V1", None, "2.00"),  # P1 made V1 and V2: 2 × 1 kr
    ("per_person_i_regionen", "P3", None, "4.00"),  # four visits in the region: 4 × 1 kr
    ("per_besökare", "V1", None, "1.00"),  # one person is V1's: 1 × 1 kr
])
def test_one_record_of_a_directory_is_explained_with_the_amount_of_the_whole(tmp_path, in_part, output, record,
                                                                           assumed, expected):
    book = load(tmp_path, SHAPES)
    data = as_directory(REGION, tmp_path / "region")
    evaluator, tree = focused(book, data, output, record, "2021-01-01", assumed)
    assert tree.value == expected
    assert book.evaluate_record(REGION, output, record, on="2021-01-01", assume=assumed).json_value == expected
    # What the reach could not hold was loaded whole; the rest only in part.
    assert evaluator.dataset.partial == {"clinics", "persons", "visits"} - book.focus(output, record, assumed)[2]


def test_ids_are_followed_to_the_end_of_a_chain(tmp_path, in_part):
    # t1 → t2 → … → t7: six steps from the record to the amount, each table two rows.
    tables = "\n".join(f"table t{i}\n  key id\n  field id: text\n  field next: t{i + 1}\n" for i in range(1, 7))
    body = tables + "table t7\n  key id\n  field id: text\n  field amount: money\n\n" \
        "output belopp: money per t1\nrule r defines belopp then next.next.next.next.next.next.amount\n"
    book = load(tmp_path, body)
    data = {f"t{i}": [{"id": f"a{i}", "next": f"a{i + 1}"}, {"id": f"b{i}", "next": f"b{i + 1}"}] for i in range(1, 7)}
    data["t7"] = [{"id": "a7", "amount": "70"}, {"id": "b7", "amount": "7"}]
    _, tree = focused(book, as_directory(data, tmp_path / "chain"), "belopp", "b1", "2021-01-01")
    assert tree.value == "7.00"  # b1 → b2 → … → b7, whose amount is 7 kr


def test_a_record_without_a_key_is_found_by_its_line(tmp_path, in_part):
    book = load(tmp_path, "table rader\n  field belopp: money\n\noutput dubbelt: money per rader\n"
                          "rule r defines dubbelt then belopp * 2\n")
    data = as_directory({"rader": [{"belopp": "5"}, {"belopp": "8"}]}, tmp_path / "rader")
    _, tree = focused(book, data, "dubbelt", "#3", "2021-01-01")  # the second record, on the file's third line
    assert tree.value == "16.00"  # 8 kr × 2


HISTORY = '''
table clinics
  key clinic_id
  field clinic_id: text

table persons
  key person_id
  field person_id: text
  field partner: text optional

table listings
  history of persons by person_id from listed_from until listed_to
  field person_id: persons
  field clinic_id: clinics
  field listed_from: date
  field listed_to: date optional

output egen: money per persons default 0 kr
rule r1 defines egen when listings[person_id on evaluation_date].clinic_id = "A" then 5 kr

output partnerns: money per persons default 0 kr
rule r2 defines partnerns when listings[partner on evaluation_date].clinic_id = "A" then 5 kr
'''


def test_a_history_looked_up_by_a_text_key_is_loaded_whole(tmp_path, in_part):
    # A person's own listing is in reach (the record, by its own id); the partner's, looked
    # up by a text that names another person, is not.
    book = load(tmp_path, HISTORY)
    assert book.checked.beyond_reach("egen") == set()
    assert book.checked.beyond_reach("partnerns") == {"listings"}
    data = as_directory({
        "clinics": [{"clinic_id": "A"}, {"clinic_id": "B"}],
        "persons": [{"person_id": "P1", "partner": "P2"}, {"person_id": "P2", "partner": None}],
        "listings": [{"person_id": "P1", "clinic_id": "B", "listed_from": "2020-01-01", "listed_to": None},
                     {"person_id": "P2", "clinic_id": "A", "listed_from": "2020-01-01", "listed_to": None}],
    }, tmp_path / "history")
    assert focused(book, data, "egen", "P1", "2021-01-01")[1].value == "0.00"  # P1 is listed at B
    assert focused(book, data, "partnerns", "P1", "2021-01-01")[1].value == "5.00"  # P2 at A




@pytest.mark.parametrize("rulebook_id, example, on", EXAMPLES)
def test_every_record_of_every_example_is_explained_in_part_as_in_whole(tmp_path, in_part, rulebook_id, example,
                                                                      on):
    book = rulelang.load(rulebook_id)
    data = json.loads((ROOT / "examples" / example).read_text(encoding="utf-8"))
    directory = as_directory(data, tmp_path / "region")
    results = book.evaluate(data, on=on)
    assert results
    for result in results:
        _, tree = focused(book, directory, result.output, result.record, on)
        assert tree.value == result.json_value, (result.output, result.record)


def test_no_output_of_a_shipped_rulebook_reads_beyond_its_record_under_its_own_values():
    # What keeps `explain --record` on a region small: every sum is anchored to the record.
    for rulebook_id, _, _ in EXAMPLES:
        book = rulelang.load(rulebook_id)
        assert {o: book.checked.beyond_reach(o) for o in book.outputs} == dict.fromkeys(book.outputs, frozenset())
    # The readings that sum beyond it: S8's koncern, V4's region-wide mean weight.
    assert rulelang.load("stockholm/hlv-2016").checked.beyond_reach(
        "hälsofrämjande_insatser", {"hälsofrämjande_räknas_per": "koncern"}) == {"listings"}
    assert rulelang.load("vastra-gotaland/vg-primarvard").checked.beyond_reach(
        "vårdtyngd", {"acg_vikter_normaliseras": True}) == {"listings"}


def test_a_chain_of_definitions_as_deep_as_the_language_allows_is_walked(tmp_path):
    # 60 definitions, each 55 additions deep over the one before: the walk is a worklist, so
    # the Python stack does not bound it (the API calls it on the caller's thread).
    chain = "\n".join(f"definition d{i} per items = " + " + ".join([f"d{i - 1}" if i else "1"] + ["1"] * 55)
                      for i in range(60))
    book = load(tmp_path, "table items\n  key id\n  field id: text\n\n" + chain +
                "\n\noutput x: money per items\nrule r defines x then 1 kr * d59\n")
    assert book.focus("x", "A") == ("items", "A", frozenset())


def test_whom_an_amount_is_paid_to_is_read_too(tmp_path, in_part):
    # A payee chosen by a count over the region (A when it has two listed or more) reads
    # every person, whatever record is explained.
    body = SHAPES + '''
definition störst = if (count p in persons where p.clinic_id = "A") >= 2 then "A" else "B"
output till_störst: money per visits paid to störst
rule r7 defines till_störst then 1 kr
'''
    book = load(tmp_path, body)
    assert book.checked.beyond_reach("till_störst") == {"persons"}
    _, tree = focused(book, as_directory(REGION, tmp_path / "region"), "till_störst", "V4", "2021-01-01")
    assert tree.facts["paid_to"] == "A"  # P1 and P2 are listed at A: 2 ≥ 2


# Each rulebook that reads a region, with the generated months it is in force in.
REGION_BOOKS = {"stockholm/hlv-2021": [m for m in MONTHS if m >= "2021-02"],
                "stockholm/hlv-2016": MONTHS,
                "stockholm/kroninnovation-2016": ["2016-12", "2017-03"],
                "vastra-gotaland/vg-primarvard": ["2016-12", "2017-03"]}


@pytest.fixture(scope="module")
def region_books():
    return {rulebook_id: rulelang.load(rulebook_id) for rulebook_id in REGION_BOOKS}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_record_of_a_generated_region_is_explained_in_part_as_in_whole(region_books, tmp_path_factory,
                                                                             monkeypatch_module, data):
    """On generated regions (sister clinics, koncern memberships changing in the month,
    listings changing at its edges), an output of a record loaded in part, as explain loads
    it from a directory, is the output over the whole region; also under one of the
    rulebook's readings answered otherwise, which may take a sum beyond the record."""
    from rulelang.language.assumptions import readings

    rulebook_id = data.draw(st.sampled_from(sorted(REGION_BOOKS)))
    book = region_books[rulebook_id]
    month = data.draw(st.sampled_from(REGION_BOOKS[rulebook_id]))
    region = data.draw(regions(month))
    on = month_bounds(month)[1].isoformat()
    directory = as_directory(region, tmp_path_factory.mktemp("region"), book)
    alternatives = [(r.name, v) for r in readings(book.checked, month_bounds(month)[1]) for v in r.alternatives]
    assumed = dict([data.draw(st.sampled_from(alternatives))]) if alternatives and data.draw(st.booleans()) else None
    try:
        results = book.evaluate(region, on=on, assume=assumed)
    except rulelang.Error:
        return  # a region this rulebook refuses (or cannot value) whole is refused in part too; not this test's
    for result in data.draw(st.lists(st.sampled_from(results), max_size=4, unique_by=lambda r: (r.output, r.record))
                            if results else st.just([])):
        _, tree = focused(book, directory, result.output, result.record, on, book.assume(assumed))
        assert tree.value == result.json_value, (result.output, result.record, assumed)


INTEGER_KEYS = '''
table clinics
  key clinic_id
  field clinic_id: integer
  field grundbelopp: money

table persons
  key person_id
  field person_id: text
  field clinic_id: clinics

definition listade per clinics = count p in persons where p.clinic_id.clinic_id = clinic_id

output per_klinik: money per clinics
rule r1 defines per_klinik then 1 kr * listade

output klinikens_grundbelopp: money per persons
rule r2 defines klinikens_grundbelopp then clinic_id.grundbelopp
'''


def test_an_integer_id_written_another_way_names_the_same_record(tmp_path, in_part):
    # Evaluation reads '01' as clinic 1, so the focus must too: P0's listing counts for
    # clinic 1, and P0's clinic is loaded with it.
    book = load(tmp_path, INTEGER_KEYS)
    data = as_directory({"clinics": [{"clinic_id": "1", "grundbelopp": "40"}, {"clinic_id": "2", "grundbelopp": "50"}],
                         "persons": [{"person_id": "P0", "clinic_id": "01"}, {"person_id": "P1", "clinic_id": "1"},
                                     {"person_id": "P2", "clinic_id": "2"}]}, tmp_path / "region")
    assert focused(book, data, "per_klinik", "1", "2021-01-01")[1].value == "2.00"  # P0 and P1: 2 × 1 kr
    assert focused(book, data, "klinikens_grundbelopp", "P0", "2021-01-01")[1].value == "40.00"  # clinic 1's


def test_an_assumption_not_given_as_its_type_decides_no_branch(tmp_path):
    # `assume` types 'false' as False; the text 'false' is no truth value, so it decides
    # neither branch, and both are walked (before, neither was: a sum was missed).
    body = SHAPES + """
parameter ohne: boolean
  value true status interpretation cite "a reading"

output villkorad: money per clinics
rule r7 defines villkorad then 1 kr * (if ohne and true then 0 else count p in persons)
"""
    book = load(tmp_path, body)
    assert book.checked.beyond_reach("villkorad") == set()  # true in every period: the count is never read
    assert book.checked.beyond_reach("villkorad", book.assume({"ohne": "false"})) == {"persons"}
    assert book.checked.beyond_reach("villkorad", {"ohne": "false"}) == {"persons"}
    # Nor in a comparison: 'true' = true would fold to false and skip the count that true reads.
    compared = load(tmp_path, body.replace("if ohne and true then 0 else count p in persons",
                                           "if ohne = true then count p in persons else 0"), name="compared")
    assert compared.checked.beyond_reach("villkorad", {"ohne": "true"}) == {"persons"}
    assert compared.checked.beyond_reach("villkorad", compared.assume({"ohne": "false"})) == set()
