"""What the explanation of a sum or count rests on: what its contributors read, each once.

A sum's contributors are evaluated recording what they read rather than traced in full
(a region's clinic has thousands of them), so each test here holds one part of what a
traced evaluation of every contributor would show: the status of every parameter value a
contributor read, on its decision path when it reads another record's output; nothing a
left-out record's filter read (that is `may_read`); each parameter value and common
definition read, as a node of its own; and a run's assumptions as what they are.
"""

from __future__ import annotations

import datetime as dt

from rulebook_factory import load

ON = dt.date(2021, 6, 1)

BOOK = '''
table clinics
  key clinic_id
  field clinic_id: text
table visits
  key visit_id
  field visit_id: text
  field clinic_id: clinics
  field kind: text
  field n: integer

parameter besök_fysiskt: money
  value 100 kr status verified cite "fysiskt besök"
parameter besök_digitalt: money
  value 50 kr status interpretation cite "digitalt besök"
parameter lägsta_n: integer
  value 2 status derived cite "lägsta n"
parameter hembesök_tillägg: money
  value 7 kr status illustrative cite "tillägg för hembesök"
parameter hembesök_räknas: boolean
  value true status interpretation cite "hembesök räknas"

definition dagens_gräns = lägsta_n

definition ersättning per visits =
  if kind = "fysiskt" then besök_fysiskt else besök_digitalt

output besöksersättning: money per visits
rule fast defines besöksersättning
  when kind != "hem"
  then ersättning
rule hem defines besöksersättning
  when hembesök_räknas and kind = "hem"
  then hembesök_tillägg

output summa: money per clinics
rule summa defines summa then sum of v.ersättning for v in visits where v.clinic_id = clinic_id

output räknade: integer per clinics
rule räknade defines räknade then count v in visits where v.clinic_id = clinic_id and v.n >= dagens_gräns

output utbetalt: money per clinics
rule utbetalt defines utbetalt then sum of v.besöksersättning for v in visits where v.clinic_id = clinic_id

output grannar: integer per clinics
rule grannar defines grannar then sum of v.likadana for v in visits where v.clinic_id = clinic_id

output två_summor: money per clinics
rule två_summor defines två_summor
  then (sum of v.ersättning for v in visits where v.clinic_id = clinic_id)
    + (sum of v.ersättning for v in visits where v.clinic_id = clinic_id and v.n >= 2)

definition likadana per visits =
  count w in visits where w.kind = kind and w.n >= lägsta_n
'''

DATA = {
    "clinics": [{"clinic_id": "A"}, {"clinic_id": "B"}, {"clinic_id": "C"}],
    "visits": [
        {"visit_id": "1", "clinic_id": "A", "kind": "fysiskt", "n": 1},
        {"visit_id": "2", "clinic_id": "A", "kind": "fysiskt", "n": 3},
        {"visit_id": "3", "clinic_id": "B", "kind": "digitalt", "n": 1},
        {"visit_id": "4", "clinic_id": "C", "kind": "hem", "n": 5},
    ],
}


def explained(tmp_path, output: str, clinic: str, **kwargs):
    book = load(tmp_path, BOOK)
    root = book.explain(DATA, output, clinic, on=ON, **kwargs)
    (aggregate,) = [node for node in root.walk() if node.kind == "aggregate"]
    return root, aggregate


def parameters_shown(aggregate) -> dict:
    return {node.label: node.value for node in aggregate.children if node.kind == "parameter"}


def test_a_sum_rests_on_what_its_contributors_read_and_not_on_other_records(tmp_path):
    # Clinic A's two physical visits read besök_fysiskt; B's digital visit reads besök_digitalt.
    root, aggregate = explained(tmp_path, "summa", "A")
    assert aggregate.value == "200.00"  # 100 kr + 100 kr
    assert root.facts["rests_on"] == {"verified": ["besök_fysiskt"]}
    assert parameters_shown(aggregate) == {"besök_fysiskt": "100.00"}
    assert [c["record"] for c in aggregate.facts["contributors"]] == ["1", "2"]
    root, aggregate = explained(tmp_path, "summa", "B")
    assert aggregate.value == "50.00"
    assert root.facts["rests_on"] == {"interpretation": ["besök_digitalt"]}


def test_what_a_filter_read_on_a_record_it_left_out_is_not_rested_on(tmp_path):
    # Visit 1 (n = 1) is left out by n >= 2 after reading lägsta_n through dagens_gräns;
    # visit 2 (n = 3) counts. Clinic B's only visit (n = 1) is left out: B rests on nothing.
    root, aggregate = explained(tmp_path, "räknade", "A")
    assert aggregate.value == "1"
    assert root.facts["rests_on"] == {"derived": ["lägsta_n"]}
    shown = {(node.kind, node.label) for node in aggregate.children}
    assert shown == {("parameter", "lägsta_n"), ("definition", "dagens_gräns")}
    root, aggregate = explained(tmp_path, "räknade", "B")
    assert aggregate.value == "0"
    assert root.facts["rests_on"] == {}
    assert aggregate.children == []
    assert "lägsta_n" in aggregate.may_read


def test_a_contributors_output_rests_on_its_decision_path_only(tmp_path):
    # Visit 4 is a home visit: rule `hem` decides (hembesök_räknas, hembesök_tillägg); rule
    # `fast` does not apply, and its formula (besök_fysiskt or besök_digitalt) is not read.
    root, aggregate = explained(tmp_path, "utbetalt", "C")
    assert aggregate.value == "7.00"
    assert root.facts["rests_on"] == {"interpretation": ["hembesök_räknas"], "illustrative": ["hembesök_tillägg"]}
    assert parameters_shown(aggregate) == {"hembesök_räknas": True, "hembesök_tillägg": "7.00"}
    # Clinic A: rule `fast` decides for both visits. Rule `hem` reads hembesök_räknas and does
    # not apply: the value is shown, as read, but the amount does not rest on it.
    root, aggregate = explained(tmp_path, "utbetalt", "A")
    assert aggregate.value == "200.00"
    assert root.facts["rests_on"] == {"verified": ["besök_fysiskt"]}
    assert parameters_shown(aggregate) == {"besök_fysiskt": "100.00", "hembesök_räknas": True}


def test_a_sum_inside_a_contributor_rests_on_its_own_contributors_only(tmp_path):
    # Clinic A's visits are physical; each counts the physical visits with n >= 2: visit 2
    # alone, so each contributes 1 and the sum is 2. lägsta_n is read for visits 1 and 2,
    # and only visit 2 counts, so the sum rests on it; the other visits' kinds leave them out
    # before it is read.
    root, aggregate = explained(tmp_path, "grannar", "A")
    assert aggregate.value == "2"
    assert root.facts["rests_on"] == {"derived": ["lägsta_n"]}
    # Clinic C's home visit counts itself (n = 5 >= 2).
    root, aggregate = explained(tmp_path, "grannar", "C")
    assert aggregate.value == "1"
    assert root.facts["rests_on"] == {"derived": ["lägsta_n"]}
    # Clinic B's digital visit has n = 1: it counts none, and nothing is rested on.
    root, aggregate = explained(tmp_path, "grannar", "B")
    assert aggregate.value == "0"
    assert root.facts["rests_on"] == {}


def test_a_second_sum_over_the_same_records_rests_on_what_they_read_too(tmp_path):
    # Each visit's ersättning is worked out once for the explanation; the second sum reads it
    # again and rests on besök_fysiskt as much as the first: 200 kr + 100 kr (visit 2 alone).
    book = load(tmp_path, BOOK)
    root = book.explain(DATA, "två_summor", "A", on=ON)
    assert root.value == "300.00"
    sums = [node for node in root.walk() if node.kind == "aggregate"]
    assert [node.value for node in sums] == ["200.00", "100.00"]
    for node in sums:
        assert node.uses == {"besök_fysiskt": "verified"}
        assert parameters_shown(node) == {"besök_fysiskt": "100.00"}


def test_a_value_the_run_assumes_is_shown_as_assumed_in_a_sum(tmp_path):
    book = load(tmp_path, BOOK)
    root = book.explain(DATA, "summa", "A", on=ON, assume={"besök_fysiskt": "120 kr"})
    (aggregate,) = [node for node in root.walk() if node.kind == "aggregate"]
    assert aggregate.value == "240.00"  # 120 kr + 120 kr
    assert root.facts["rests_on"] == {"assumed": ["besök_fysiskt"]}
    (shown,) = [node for node in aggregate.children if node.kind == "parameter"]
    assert (shown.value, shown.facts["status"]) == ("120.00", "assumed")


def test_the_sums_of_one_explanation_agree_with_evaluation(tmp_path):
    book = load(tmp_path, BOOK)
    for output in ("summa", "räknade", "utbetalt", "grannar", "två_summor"):
        for clinic in ("A", "B", "C"):
            root = book.explain(DATA, output, clinic, on=ON)
            assert root.value == book.evaluate_record(DATA, output, clinic, on=ON).json_value
