"""The Python intake of records in memory (`columnar/small_intake.py`) equals the intake in
SQL (`columnar/intake.py`): the same typed records, and the same refusals with the same
words, on generated input for every table of every rulebook: valid values, malformed ones,
missing fields, defaults, references to records that are there, missing or refused,
repeated ids and overlapping history rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import rulelang
from rulelang.columnar.intake import find_sources
from rulelang.columnar.records import dataset_in_database, dataset_in_python, in_memory
from rulelang.language.diagnostics import DataError

BOOKS = ["stockholm/hlv-2016", "stockholm/hlv-2021", "stockholm/kroninnovation-2016",
         "vastra-gotaland/vg-primarvard", "skaraborg/narvard-2014", "jamtland/patientmiljarden-2018"]
_LOADED: dict = {}

# What no shipped rulebook has: money, integer keys and references to them, a history by an
# integer key, and a default of every kind (a decimal default is held in millionths).
EVERY_KIND = """
enum tier: low, high

table units
  key unit_no
  field unit_no: integer
  field label: text optional
  field tier: tier optional
  field note: text default "none"
  field share: decimal default 0.125
  field opened: date default 2020-01-01
  field budget: money default 100 kr

table claims
  key claim_id
  field claim_id: text
  field unit_no: units
  field amount: money
  field refunded: money optional
  field hours: integer default 8
  field rate: decimal optional
  field urgent: boolean default false

table unit_managers
  history of units by unit_no from starts until ends
  field unit_no: units
  field manager: text
  field starts: date
  field ends: date optional

output total: money per claims

rule claimed defines total
  then amount
"""


def book(rulebook_id: str, tmp_path_factory=None):
    if rulebook_id not in _LOADED:
        if rulebook_id == "every-kind":
            from rulebook_factory import write_rulebook

            directory = tmp_path_factory.mktemp("every-kind")
            _LOADED[rulebook_id] = rulelang.load(str(write_rulebook(directory, EVERY_KIND)))
        else:
            _LOADED[rulebook_id] = rulelang.load(rulebook_id)
    return _LOADED[rulebook_id]


HISTORY_DAYS = ["2021-01-01", "2021-04-01", "2021-04-02", "2021-09-15"]
DAYS = ["2021-01-01", "2021-03-31", "2021-04-01", "2021-09-15", "2021-12-31", "2022-06-30"]
WRONG = st.sampled_from(["", "  ", "abc", "9" * 70, "ö" * 61, "y" * 60, "1e3", "1,5", "0x10", "--1", "+", "١٢", "nan", "∞", "true"])
ODD = st.sampled_from([1.5, [1], {"a": 1}, Decimal("NaN"), "\ud800"])
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF) | st.sampled_from(" \t\n\u00a0é漢🇸"), max_size=70)


def values(kind: str, field_type, checked, pools: dict, careful: bool = False):
    """A value as a caller might send it for a field of this kind: mostly well formed, and
    only well formed when `careful`."""
    if field_type.kind == "ref":
        target_pool = pools.get(field_type.name, ["X1"])
        good = st.sampled_from(target_pool) | st.sampled_from([str(v) for v in target_pool])
        return good if careful else st.one_of(good, good, st.sampled_from(["nobody", 999, "  X1 "]), WRONG)
    if kind == "integer":
        good = st.integers(-10, 100) | st.integers(-10, 100).map(str) | st.sampled_from(["+7", " 12 ", "007"])
        return good if careful else st.one_of(good, good, st.sampled_from([10 ** 15, 10 ** 16, str(10 ** 15), True]),
                                              WRONG)
    if kind == "decimal":
        good = (st.decimals(-1000, 1000, places=4).map(str) | st.decimals(-5, 5, places=6)
                | st.sampled_from(["1", "-0", "+0.5", "0.1234567", "123456789012.5", "1234567890123", "1."]))
        return good if careful else st.one_of(good, good, st.integers(-3, 3), st.fractions(max_denominator=8), WRONG)
    if kind == "money":
        good = (st.integers(-10 ** 6, 10 ** 6) | st.decimals(-1000, 1000, places=2).map(str)
                | st.sampled_from(["300.5", "300.123", "-0.001", "999999999999999", "9999999999999999", ".5"]))
        return good if careful else st.one_of(good, good, st.decimals(-10, 10, places=3), WRONG)
    if kind == "date":
        good = st.sampled_from(DAYS) | st.dates(dt.date(2020, 1, 1), dt.date(2023, 1, 1))
        return good if careful else st.one_of(good, good, st.sampled_from(
            ["2021-02-30", "0000-01-01", "0001-01-01", "21-09-30", " 2021-09-01 ", "2021-9-1", "2021-13-01"]), WRONG)
    if kind == "boolean":
        good = st.booleans() | st.sampled_from(["true", "FALSE", " True "])
        return good if careful else st.one_of(good, good, st.sampled_from(["yes", 1, 0, "ja"]), WRONG)
    if kind == "enum":
        members = list(checked.enums[field_type.name].values)
        good = st.sampled_from(members)
        return good if careful else st.one_of(good, good, st.sampled_from([m.upper() for m in members]
                                                                          + [" " + members[0]]), TEXT)
    return st.one_of(TEXT, st.sampled_from(["A1", "B2", "x" * 80]), st.integers(0, 9))


@st.composite
def inputs(draw, checked):
    """{table: [records]} for every table (or some left out), with ids from small pools so
    that references hit, miss and repeat."""
    from rulelang.columnar.intake import table_order, value_kind

    pools: dict = {}
    document: dict = {}
    careful = draw(st.integers(0, 3)) == 0  # a document a careful caller sends: only its ids may clash
    for table in table_order(checked):
        info = checked.tables[table]
        key = info.decl.key
        if key:
            integer = value_kind(info.fields[key][0], checked) == "integer"
            pools[table] = list(range(1, 5)) if integer else [f"{table[:1].upper()}{i}" for i in range(1, 5)]
        if draw(st.integers(0, 9)) == 0:
            continue  # a table left out
        history = info.decl.history
        records = []
        for _ in range(draw(st.integers(0, 5))):
            if not careful and draw(st.integers(0, 30)) == 0:
                records.append(draw(st.sampled_from([[], "V1", 3, None])))
                continue
            record = {}
            for name, (field_type, decl) in info.fields.items():
                leave_out = (not careful and draw(st.integers(0, 12)) == 0) or (decl.default is not None and draw(st.booleans()))
                if leave_out:
                    continue
                kind = value_kind(field_type.required(), checked)
                if name == key:
                    strategy = st.sampled_from(pools[table]) | st.sampled_from([str(v) for v in pools[table]])
                    value = draw(strategy if careful else st.one_of(strategy, strategy, strategy, WRONG))
                elif history is not None and name in (history.from_field, history.until_field):
                    # Rows that meet, touch and overlap; a careful caller gives every start.
                    starts = careful and name == history.from_field
                    value = draw(st.sampled_from(HISTORY_DAYS) if starts else st.sampled_from(HISTORY_DAYS) | st.none())
                elif history is not None and name == history.by_field and careful:
                    value = draw(st.sampled_from(pools[history.of_table][:2]))
                elif not careful and draw(st.integers(0, 25)) == 0:
                    value = draw(ODD)
                else:
                    value = draw(values(kind, field_type, checked, pools, careful))
                record[name] = value
            records.append(record)
        document[table] = records
    return document


def both(checked, document: dict):
    """What each intake makes of the document: ("records", tables) or ("refused", problems)."""
    outcomes = []
    for intake in (dataset_in_python, dataset_in_database):
        sources = find_sources(document, checked)
        try:
            data = intake(sources, checked, document, "<records>")
        except DataError as error:
            outcomes.append(("refused", [(p.file, p.record, p.message) for p in error.problems]))
        else:
            outcomes.append(("records", {name: (t.file, t.records, sorted(t.by_id, key=repr), t.history)
                                         for name, t in data.tables.items()}))
    return outcomes


@pytest.mark.parametrize("rulebook_id", BOOKS + ["every-kind"])
def test_the_python_intake_equals_the_intake_in_sql(rulebook_id, tmp_path_factory):
    checked = book(rulebook_id, tmp_path_factory).checked

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(inputs(checked))
    def check(document):
        in_python, in_database = both(checked, document)
        assert in_python == in_database

    check()


def test_the_generated_input_reaches_both_outcomes_and_every_kind_of_refusal(tmp_path_factory):
    """The generator is not all valid or all refused: across a fixed sample of documents the
    intakes accept some and refuse others, for each kind of reason the intake gives."""
    seen_outcomes, reasons = set(), set()
    markers = ("expected", "missing field", "is not a record of", "have the id", "overlap", "is before",
               "is not a date in the calendar", "fraction of an öre", "must be an object", "floating-point",
               "names a", "is not a tier")
    for rulebook_id in ("stockholm/hlv-2021", "every-kind"):
        checked = book(rulebook_id, tmp_path_factory).checked

        @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(inputs(checked))
        def sample(document):
            in_python, _ = both(checked, document)
            seen_outcomes.add(in_python[0])
            if in_python[0] == "refused":
                reasons.update(m for _, _, message in in_python[1] for m in markers if m in message)

        sample()
    assert seen_outcomes == {"records", "refused"}
    assert reasons == set(markers)


def test_records_in_memory_take_the_python_intake_and_files_the_database(tmp_path):
    checked = book("stockholm/hlv-2021").checked
    sources = find_sources({"clinics": [{"clinic_id": "C1"}]}, checked)
    assert in_memory(sources, None)
    assert in_memory(sources, ("clinics", "C1"))  # a table this small is kept whole by a focus
    for table, info in checked.tables.items():  # a region's files, headers only
        (tmp_path / f"{table}.csv").write_text(",".join(info.fields) + "\n", encoding="utf-8")
    assert not in_memory(find_sources(tmp_path, checked), None)


def test_a_refused_visit_is_named_with_its_place_and_every_reason(tmp_path_factory):
    """A day not in the calendar, and a clinic that is not in the input: both said, in the
    intake's order (fields first, then references), and the record's place."""
    checked = book("stockholm/hlv-2021").checked
    document = {"clinics": [{"clinic_id": "A", "koncern_id": "K1"}],
                "persons": [{"person_id": "P1", "birth_date": "1950-03-14", "sex": "F"}],
                "listings": [],
                "visits": [{"visit_id": "V1", "person_id": "P1", "clinic_id": "Z", "date": "2021-09-31",
                            "mode": "physical", "place": "clinic", "assignment": "general",
                            "profession": "doctor"}]}
    in_python, in_database = both(checked, document)
    assert in_python == in_database == ("refused", [
        ("<records>", "V1", "date: '2021-09-31' is not a date in the calendar; "
                            "clinic_id 'Z' is not a record of clinics (visits, record 1)")])


def test_money_and_decimals_are_exact_and_defaults_fill_in(tmp_path_factory):
    """12.34 kronor is 1234 öre; 0.1234567 is refused (six decimals at most) and 0.123456 is
    123456/1000000; a left-out decimal default 0.125 is 1/8; integer ids stay numbers."""
    checked = book("every-kind", tmp_path_factory).checked
    document = {"units": [{"unit_no": "7"}],
                "claims": [{"claim_id": "C1", "unit_no": 7, "amount": "12.34", "rate": "0.123456"}]}
    sources = find_sources(document, checked)
    data = dataset_in_python(sources, checked, document, "<records>")
    unit, = data.table("units").records
    claim, = data.table("claims").records
    assert (unit["unit_no"], unit["share"], unit["budget"], unit["note"]) == (7, Fraction(1, 8), 100 * 100, "none")
    assert (claim["amount"], claim["rate"], claim["hours"], claim["urgent"]) == (1234, Fraction(123456, 10 ** 6), 8,
                                                                                  False)
    assert data.table("units").find("7") is unit
    document["claims"][0]["rate"] = "0.1234567"
    in_python, in_database = both(checked, document)
    assert in_python == in_database
    assert in_python[0] == "refused" and "rate: expected a decimal number" in in_python[1][0][2]


# Texts near a number: digits, points, signs, an exponent, a separator, a space, an Arabic
# digit. Most are malformed; the edges (a point first or last, two points, one digit too
# many before or after the point, the empty text) are among them.
NUMBER_LIKE = st.text(st.sampled_from("0123456789.+-e_ ٣"), max_size=22) | st.sampled_from(
    ["", ".", "0", ".5", "5.", "1..2", "1.2.3", "123456789012", "1234567890123", "123456789012345",
     "1234567890123456", "123456789012.123456", "1234567890123.5", "123456789012.1234567",
     "1.12", "1.123", "+1.5", "-0", "1e3", "1_000", "٣"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(NUMBER_LIKE, min_size=1, max_size=300))
def test_a_number_text_is_judged_in_sql_as_its_pattern_judges_it(texts):
    """The SQL intake judges text of digits and one point by its lengths, not by the
    pattern (`_number_text_sql`); its verdict equals the pattern's, which the Python intake
    applies, for every kind of number."""
    import re

    import duckdb

    from rulelang.columnar.intake import NUMBER_DIGITS, NUMBER_PATTERNS, _number_text_sql

    con = duckdb.connect()
    for kind in NUMBER_DIGITS:
        judged = con.execute(f"SELECT t, {_number_text_sql('t', kind)} FROM unnest(?::VARCHAR[]) AS u(t)",
                             [texts]).fetchall()
        assert [(text, verdict) for text, verdict in judged] == [
            (text, re.fullmatch(NUMBER_PATTERNS[kind], text) is not None) for text in texts], kind


# Texts as a Parquet file may store them: number-like, with spaces of every kind around
# (ASCII, no-break, ideographic; a tab and a newline, which are not trimmed), an enum's
# members in other cases, and nothing at all.
STORED_LIKE = st.text(st.sampled_from("0123456789.+-e_ \u00a0\u3000\t\nlowhigLOW٣"), max_size=16) | st.sampled_from(
    ["", " ", "low", " low", "low ", "\u00a0low", "\u00a0low ", " \u00a0low", " \u00a0low\u00a0", "\u3000 high",
     " high\u3000", "\tlow", "LOW", "lo w",
     " 1.5", "1.5 ", "\u00a01.5", " \u00a01.5\u00a0", "1.5\n", "+2", "-0", ".5", "1.", "1,25", "1.1234567",
     "12.34", "12.345", "123456789012.123456", "1234567890123", "123456789012345", "1234567890123456",
     "1234567890123.12"])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(STORED_LIKE, min_size=1, max_size=300))
def test_a_text_read_as_stored_gets_the_value_the_trimmed_text_gets(texts, tmp_path_factory):
    """A dictionary-encoded Parquet text is read as stored (Intake.stored_value: functions
    alone, worked out once a different value) rather than trimmed and converted row by row
    (Intake.conversion over _trimmed_sql); both give the same value, or none, for every kind
    read so: a decimal, money, an integer, an enum member."""
    import duckdb

    from rulelang.columnar.intake import Intake, _trimmed_sql

    checked = book("every-kind", tmp_path_factory).checked
    con = duckdb.connect()
    intake = Intake(con, checked, {})
    fields = {"decimal": ("claims", "rate"), "money": ("claims", "amount"), "integer": ("claims", "hours"),
              "enum": ("units", "tier")}
    for kind, (table, field) in fields.items():
        field_type = checked.tables[table].fields[field][0].required()
        assert intake.value_kind(field_type) == kind
        as_stored = intake.stored_value("t", field_type)
        trimmed = intake.conversion(_trimmed_sql("t"), field_type)[0]
        compared = con.execute(f"SELECT t, {as_stored}, {trimmed} FROM unnest(?::VARCHAR[]) AS u(t)",
                               [texts]).fetchall()
        assert [(text, stored) for text, stored, _ in compared] == [(text, row) for text, _, row in compared], kind
