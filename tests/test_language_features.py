"""Language features a workload written from scratch needs: parameter histories, rows that
match any value of a key, and parameters read on another date than the record's. Each is
checked on the interpreter, and the DuckDB settlement is checked to give the interpreter's
line items to the öre (a differential test), since both read the same checked rulebook."""

from __future__ import annotations

import pytest
from regions import csv_rows, interpreter_rows

import rulelang
from rulelang.columnar.settlement import settle

BOOK = '''# Besöksersättning

```rulelang
rulebook "test/features"
  version "1" source src "Test source"
according to src
```

## 1 Ersättning

```rulelang
enum kind: physical, video, home_visit
enum profession: doctor, nurse, other
table clinics
  key clinic_id
  field clinic_id: text
table visits
  key visit_id
  dated by date
  field visit_id: text
  field clinic_id: clinics
  field date: date
  field kind: kind
  field profession: profession

# A history: each value ends the day before the next begins.
parameter grundbelopp: money
  value 100 kr from 2021-01-01 status illustrative cite "s"
  value 150 kr from 2021-03-15 status illustrative cite "s"
  value 200 kr from 2021-06-01 status illustrative cite "s"

# A home visit pays 500 kr whoever makes it (`any` profession).
parameter besöksbelopp: money by kind, profession
  value from 2021-01-01 status illustrative cite "s"
    row physical, doctor: 200 kr
    row physical, nurse: 120 kr
    row physical, other: 100 kr
    row video, any: 80 kr
    row home_visit, any: 500 kr

output grund: money per visits paid to clinic_id
rule grund_efter_datum defines grund then grundbelopp

output besök: money per visits paid to clinic_id
rule besök_efter_slag defines besök then besöksbelopp[kind, profession]

# The amount in force on the first of the visit's month.
output månadsgrund: money per visits paid to clinic_id
rule månadsgrund_första_dagen defines månadsgrund then grundbelopp as of first_day_of_month(date)
```
'''

VISITS = [
    # (id, date, kind, profession)
    ("V1", "2021-02-10", "physical", "doctor"),
    ("V2", "2021-03-14", "video", "nurse"),
    ("V3", "2021-03-15", "home_visit", "other"),
    ("V4", "2021-03-31", "home_visit", "doctor"),
    ("V5", "2021-06-01", "physical", "nurse"),
    ("V6", "2021-06-30", "video", "other"),
]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "features.md"
    path.write_text(BOOK, encoding="utf-8")
    return rulelang.load(str(path))


def region(visits=VISITS) -> dict:
    return {"clinics": [{"clinic_id": "A"}],
            "visits": [{"visit_id": v, "clinic_id": "A", "date": d, "kind": k, "profession": p}
                       for v, d, k, p in visits]}


def value(book, output: str, visit_id: str) -> int:
    return book.evaluate_record(region(), output, visit_id).value


@pytest.mark.parametrize("visit_id, kronor", [("V1", 100), ("V2", 100), ("V3", 150), ("V4", 150), ("V5", 200),
                                              ("V6", 200)])
def test_successive_values_form_a_history(book, visit_id, kronor):
    # 100 kr until 2021-03-14, 150 kr from 2021-03-15 until 2021-05-31, 200 kr from 2021-06-01.
    assert value(book, "grund", visit_id) == kronor * 100


@pytest.mark.parametrize("visit_id, kronor", [("V1", 200), ("V2", 80), ("V3", 500), ("V4", 500), ("V5", 120),
                                              ("V6", 80)])
def test_a_row_with_any_matches_every_value_of_its_key(book, visit_id, kronor):
    assert value(book, "besök", visit_id) == kronor * 100


@pytest.mark.parametrize("visit_id, kronor", [("V1", 100), ("V2", 100), ("V3", 100), ("V4", 100), ("V5", 200),
                                              ("V6", 200)])
def test_a_parameter_read_as_of_the_first_of_the_month(book, visit_id, kronor):
    # V3 and V4 are in March: on 2021-03-01 the 100 kr value is in force, though 150 kr is on their dates.
    assert value(book, "månadsgrund", visit_id) == kronor * 100


def test_the_explanation_shows_the_value_in_force_on_the_date_read(book):
    tree = book.explain(region(), "månadsgrund", "V4").to_dict()
    parameters = [n for n in _nodes(tree) if n["kind"] == "parameter"]
    assert [(n["label"], n["value"], n["valid_from"], n["valid_to"]) for n in parameters] == [
        ("grundbelopp", "100.00", "2021-01-01", "2021-03-14")]


@pytest.mark.parametrize("month", ["2021-02", "2021-03", "2021-06"])
def test_duckdb_settles_each_feature_as_the_interpreter_does(book, tmp_path, month):
    directory = tmp_path / "data"
    directory.mkdir()
    import json
    (directory / "region.json").write_text(json.dumps(region()), encoding="utf-8")
    out = tmp_path / "lines.csv"
    settle(book, month, directory / "region.json", out)
    rows = csv_rows(out)
    assert rows == interpreter_rows(book, region(), month)
    assert {row[2] for row in rows} == {"grund", "besök", "månadsgrund"}


def refusal(tmp_path, old: str, new: str) -> str:
    """What `check` says of BOOK with `old` written as `new`."""
    path = tmp_path / "features.md"
    path.write_text(BOOK.replace(old, new), encoding="utf-8")
    with pytest.raises(rulelang.RulebookError) as caught:
        rulelang.load(str(path))
    return caught.value.format()


def test_a_row_with_any_overlaps_every_other_row_of_its_key(tmp_path):
    said = refusal(tmp_path, "    row video, any: 80 kr\n", "    row video, any: 80 kr\n    row video, nurse: 90 kr\n")
    assert "rows of parameter besöksbelopp overlap" in said


def test_as_of_reads_only_parameters(tmp_path):
    said = refusal(tmp_path, "then grundbelopp as of first_day_of_month(date)", "then grund as of first_day_of_month(date)")
    assert "`as of` reads a parameter on another date; this is not a parameter" in said


def test_as_of_takes_a_date(tmp_path):
    said = refusal(tmp_path, "then grundbelopp as of first_day_of_month(date)", "then grundbelopp as of kind")
    assert "`as of` takes a date; this is kind" in said


def _nodes(tree: dict):
    yield tree
    for child in tree.get("children", ()):
        yield from _nodes(child)
