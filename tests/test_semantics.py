"""Default logic: exceptions override, disagreeing rules conflict, no value is an error.

Each property is checked on small rulebooks over a table `items` with three flags a, b, c
and an integer n, evaluated on a fixed date.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st
from rulebook_factory import ITEMS, load

import rulelang

ON = dt.date(2021, 6, 1)
flags = st.booleans()
amounts = st.integers(min_value=-10_000, max_value=10_000)


def kronor(ore: int) -> str:
    """An öre amount written as a rulelang money literal: -199 → `-1.99 kr`."""
    sign = "-" if ore < 0 else ""
    return f"{sign}{abs(ore) // 100}.{abs(ore) % 100:02d} kr"


def evaluate(book, output: str = "x", **fields):
    record = {"id": "R1", "a": False, "b": False, "c": False, "n": 0}
    record.update(fields)
    return book.evaluate_record({"items": [record]}, output, "R1", on=ON)


@pytest.fixture(scope="module")
def override_book(tmp_path_factory):
    # base gives 100 kr when a; exception e1 gives 7 kr when b; e2, an exception to e1, gives 3 kr when c.
    return load(tmp_path_factory.mktemp("override"), ITEMS + '''
output x: money per items default 1 kr
rule base defines x when a then 100 kr
exception e1 to base when b then 7 kr
exception e2 to e1 when c then 3 kr
''')


@settings(max_examples=60, deadline=None)
@given(a=flags, b=flags, c=flags)
def test_an_applicable_exception_overrides_what_it_is_an_exception_to(override_book, a, b, c):
    # Catala's default logic: the deepest applicable exception decides; its base's condition
    # does not matter. Without any, the base rule when its condition holds, else the default.
    if c:
        expected = 300
    elif b:
        expected = 700
    elif a:
        expected = 100_00
    else:
        expected = 100
    result = evaluate(override_book, a=a, b=b, c=c)
    assert result.value == expected


def test_the_explanation_says_which_exception_applied_and_which_did_not(override_book):
    tree = override_book.explain({"items": [{"id": "R1", "a": True, "b": True, "c": False, "n": 0}]},
                                 "x", "R1", on=ON)
    (base,) = tree.children
    assert base.label == "base" and base.value == "7.00"
    (e1,) = [c for c in base.children if c.kind == "exception"]
    assert e1.facts["applied"] is True
    (e2,) = [c for c in e1.children if c.kind == "exception"]
    assert e2.facts["applied"] is False
    assert tree.facts["decided_by"] == "e1"


@pytest.fixture(scope="module")
def two_roots(tmp_path_factory):
    return load(tmp_path_factory.mktemp("roots"), ITEMS + '''
output x: money per items
rule first defines x when a then 10 kr
rule second defines x when b then 20 kr
rule third defines x when c then 10 kr
''')


@settings(max_examples=60, deadline=None)
@given(a=flags, b=flags, c=flags)
def test_rules_at_one_level_that_disagree_are_a_conflict_naming_both(two_roots, a, b, c):
    values = {v for flag, v in ((a, 1000), (b, 2000), (c, 1000)) if flag}
    if not values:
        with pytest.raises(rulelang.EvaluationError) as raised:
            evaluate(two_roots, a=a, b=b, c=c)
        assert raised.value.kind == "rulebook"
        assert "no rule gives x" in raised.value.message
    elif len(values) > 1:
        with pytest.raises(rulelang.EvaluationError) as raised:
            evaluate(two_roots, a=a, b=b, c=c)
        message = raised.value.message
        assert raised.value.kind == "rulebook"
        assert message.startswith("conflict: x is ")
        assert "second" in message and ("first" in message or "third" in message)
        assert "1 Provision (Test source test-source)" in message
    else:
        # first and third agree on 10 kr: no conflict.
        assert evaluate(two_roots, a=a, b=b, c=c).value == values.pop()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=-5, max_value=5), value=amounts, fallback=amounts)
def test_a_default_is_used_exactly_when_no_rule_applies(tmp_path_factory, n, value, fallback):
    book = load(tmp_path_factory.mktemp("default"), ITEMS + f'''
output x: money per items default {kronor(fallback)}
rule positive defines x when n > 0 then {kronor(value)}
''')
    expected = value if n > 0 else fallback
    assert evaluate(book, n=n).value == expected


def test_a_rule_is_only_in_force_between_its_dates(tmp_path):
    book = load(tmp_path, ITEMS + '''
output x: money per items default 0 kr
rule window defines x from 2021-02-01 until 2021-08-31 when a then 300 kr
''')
    row = {"id": "R1", "a": True, "b": False, "c": False, "n": 0}
    for day, expected in ((dt.date(2021, 1, 31), 0), (dt.date(2021, 2, 1), 30000),
                          (dt.date(2021, 8, 31), 30000), (dt.date(2021, 9, 1), 0)):
        assert book.evaluate_record({"items": [row]}, "x", "R1", on=day).value == expected, day


def test_exceptions_that_agree_do_not_conflict(tmp_path):
    book = load(tmp_path, ITEMS + '''
output x: money per items default 0 kr
rule base defines x then 300 kr
exception one to base when a then 0 kr
exception two to base when b then 0 kr
exception three to base when c then 5 kr
''')
    assert evaluate(book, a=True, b=True).value == 0
    with pytest.raises(rulelang.EvaluationError, match="conflict: x is 0.00 kr by one"):
        evaluate(book, a=True, c=True)


def test_a_dated_parameter_picks_the_value_in_force_on_the_record_date(tmp_path):
    book = load(tmp_path, '''
table visits
  key visit_id
  dated by date
  field visit_id: text
  field date: date
parameter fee: money
  value 110 kr from 2021-02-01 until 2021-12-31 status verified cite "a"
  value 115 kr from 2022-01-01 status verified cite "b"
output x: money per visits
rule r defines x then fee
''')
    data = {"visits": [{"visit_id": "D", "date": "2021-12-31"}, {"visit_id": "J", "date": "2022-01-01"},
                       {"visit_id": "E", "date": "2021-01-31"}]}
    assert book.evaluate_record(data, "x", "D").value == 110_00
    assert book.evaluate_record(data, "x", "J").value == 115_00
    with pytest.raises(rulelang.EvaluationError) as raised:
        book.evaluate_record(data, "x", "E")
    assert raised.value.kind == "data"
    assert "parameter fee has no value on 2021-01-31" in raised.value.message


def test_money_times_a_rate_is_rounded_by_the_named_mode(tmp_path):
    book = load(tmp_path, ITEMS + '''
parameter share: decimal
  value 0.125 status illustrative cite "x"
output nearest: money per items
output rounded_down: money per items
rule r1 defines nearest then 10.01 kr * share rounded half up to öre
rule r2 defines rounded_down then 10.01 kr * share rounded down to öre
''')
    # 1001 öre × 0.125 = 125.125 öre: half up → 125 öre (not a tie); down → 125 öre.
    assert evaluate(book, output="nearest").value == 125
    assert evaluate(book, output="rounded_down").value == 125
    book2 = load(tmp_path, ITEMS + '''
output x: money per items
rule r defines x then 0.25 kr * 50 % rounded half up to öre
''', name="tie")
    # 25 öre × 0.5 = 12.5 öre: a tie, half up → 13 öre.
    assert evaluate(book2).value == 13


def test_at_least_n_of_counts_the_criteria_that_hold(tmp_path):
    book = load(tmp_path, ITEMS + '''
output eligible: boolean per items
rule r defines eligible then at least 2 of (a, b, c, n >= 3)
''')
    assert evaluate(book, output="eligible", a=True, n=3).value is True
    assert evaluate(book, output="eligible", a=True).value is False
    tree = book.explain({"items": [{"id": "R1", "a": True, "b": False, "c": True, "n": 1}]},
                        "eligible", "R1", on=ON)
    criteria = next(node for node in tree.walk() if node.kind == "criteria")
    assert [c.value for c in criteria.children] == [True, False, True, False]
    assert criteria.facts == {"held": 2, "threshold": 2}


def test_keyed_parameter_picks_the_age_band(tmp_path):
    book = load(tmp_path, '''
table persons
  key person_id
  field person_id: text
  field birth_date: date
parameter capitation: money by integer
  value from 2016-01-01 status illustrative cite "DOMAIN 1.H"
    row 0 to 6: 150 kr
    row 7 to 84: 100 kr
    row 85 and over: 400 kr
output x: money per persons
rule r defines x then capitation[age(birth_date, evaluation_date)]
''')
    data = {"persons": [{"person_id": "six", "birth_date": "2010-01-31"},
                        {"person_id": "seven", "birth_date": "2010-01-30"},
                        {"person_id": "old", "birth_date": "1931-01-31"}]}
    on = dt.date(2017, 1, 30)
    # On 2017-01-30 a person born 2010-01-31 is 6 (band 0–6), one born 2010-01-30 is 7.
    assert book.evaluate_record(data, "x", "six", on=on).value == 150_00
    assert book.evaluate_record(data, "x", "seven", on=on).value == 100_00
    assert book.evaluate_record(data, "x", "old", on=on).value == 400_00


def test_sum_and_count_over_related_records(tmp_path):
    book = load(tmp_path, '''
table clinics
  key clinic_id
  field clinic_id: text
table visits
  key visit_id
  field visit_id: text
  field clinic_id: clinics
  field fee: money
output total: money per clinics
output visit_count: integer per clinics
rule t defines total then sum of v.fee for v in visits where v.clinic_id = clinic_id
rule n defines visit_count then count v in visits where v.clinic_id = clinic_id
''')
    data = {"clinics": [{"clinic_id": "A"}, {"clinic_id": "B"}],
            "visits": [{"visit_id": "1", "clinic_id": "A", "fee": "110"},
                       {"visit_id": "2", "clinic_id": "A", "fee": "-300"},
                       {"visit_id": "3", "clinic_id": "B", "fee": "425.50"}]}
    on = dt.date(2021, 1, 1)
    assert book.evaluate_record(data, "total", "A", on=on).value == 110_00 - 300_00
    assert book.evaluate_record(data, "total", "B", on=on).value == 425_50
    assert book.evaluate_record(data, "visit_count", "A", on=on).value == 2


TWO_KEYS = '''
enum sex: F, M
table persons
  key person_id
  field person_id: text
  field sex: sex
  field birth_date: date
parameter poäng: decimal by sex, integer
  value from 2016-01-01 status illustrative cite "viktlista"
    row F, 0 to 19: 1.1
    row F, 20 and over: 1.3
    row M, 0 to 19: 1.0
    row M, 20 and over: 1.2
output x: decimal per persons
rule r defines x then poäng[sex, age(birth_date, evaluation_date)]
'''


def test_a_parameter_keyed_by_sex_and_age_picks_the_row_matching_both(tmp_path):
    book = load(tmp_path, TWO_KEYS)
    data = {"persons": [{"person_id": "f19", "sex": "F", "birth_date": "1997-01-01"},
                        {"person_id": "f20", "sex": "F", "birth_date": "1996-01-01"},
                        {"person_id": "m20", "sex": "M", "birth_date": "1996-01-01"}]}
    on = dt.date(2016, 6, 1)
    from fractions import Fraction
    assert book.evaluate_record(data, "x", "f19", on=on).value == Fraction("1.1")
    assert book.evaluate_record(data, "x", "f20", on=on).value == Fraction("1.3")
    assert book.evaluate_record(data, "x", "m20", on=on).value == Fraction("1.2")
    tree = book.explain(data, "x", "m20", on=on)
    parameter = next(n for n in tree.walk() if n.kind == "parameter")
    assert parameter.label == "poäng[M, 20 and over]"
    assert parameter.facts["row"] == "M, 20 and over" and parameter.facts["key"] == "M, 20"


def test_two_key_rows_overlap_only_when_every_key_overlaps(tmp_path):
    # Same age band, other sex: no overlap. Same sex, overlapping ages: an error.
    body = TWO_KEYS.replace("    row M, 20 and over: 1.2\n", "    row M, 20 and over: 1.2\n    row F, 15 to 25: 9.9\n")
    with pytest.raises(rulelang.RulebookError) as raised:
        load(tmp_path, body)
    messages = [d.message for d in raised.value.diagnostics]
    assert messages == ["rows of parameter poäng overlap", "rows of parameter poäng overlap"]


def test_a_lookup_needs_one_key_per_dimension(tmp_path):
    with pytest.raises(rulelang.RulebookError) as raised:
        load(tmp_path, TWO_KEYS.replace("poäng[sex, age(birth_date, evaluation_date)]", "poäng[sex]"))
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.message == "parameter poäng is keyed by sex, integer; give 2 key(s)"


def test_add_days_moves_a_date_by_whole_days(tmp_path):
    book = load(tmp_path, '''
table months
  key id
  field id: text
  field day: date
output month_before_ends: date per months
rule r defines month_before_ends then add_days(first_day_of_month(day), -1)
''')
    data = {"months": [{"id": "mar", "day": "2016-03-15"}, {"id": "jan", "day": "2017-01-31"}]}
    on = dt.date(2017, 1, 1)
    assert book.evaluate_record(data, "month_before_ends", "mar", on=on).value == dt.date(2016, 2, 29)
    assert book.evaluate_record(data, "month_before_ends", "jan", on=on).value == dt.date(2016, 12, 31)


def test_a_parameter_may_hold_an_enum_value(tmp_path):
    book = load(tmp_path, ITEMS + '''
enum basis: points, persons
parameter computed_on: basis
  value points until 2016-12-31 status interpretation cite "a reading"
  value persons from 2017-01-01 status interpretation cite "another reading"
output x: money per items
rule r defines x then if computed_on = points then 1 kr else 2 kr
''')
    row = {"id": "R1", "a": False, "b": False, "c": False, "n": 0}
    assert book.evaluate_record({"items": [row]}, "x", "R1", on=dt.date(2016, 12, 31)).value == 100
    assert book.evaluate_record({"items": [row]}, "x", "R1", on=dt.date(2017, 1, 1)).value == 200
    with pytest.raises(rulelang.RulebookError, match="the value of computed_on must be basis"):
        load(tmp_path, ITEMS + '''
enum basis: points, persons
parameter computed_on: basis
  value 3 status interpretation cite "x"
output x: money per items
rule r defines x then if computed_on = points then 1 kr else 2 kr
''', name="bad")
