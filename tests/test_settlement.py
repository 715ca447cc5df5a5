"""Monthly settlement: the SQL engines give the interpreter's line items to the öre, every
record is either used or rejected with its reason, and output is whole and reproducible."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from regions import (
    REGION_MONTH,
    csv_rows,
    interpreter_rows,
    money_text,
    region_month_regions,
    regions,
    write_region,
    write_region_month_parquet,
)
from spark_support import needs_spark

import rulelang
from rulelang.columnar.settlement import SettlementError, month_bounds, settle
from rulelang.interfaces.cli import main
from rulelang.interfaces.demo import write_demo_region

ROOT = Path(__file__).resolve().parent.parent
MONTHS = {
    "stockholm/hlv-2021": ["2021-01", "2021-02", "2021-08", "2021-09", "2021-12", "2022-01"],
    "stockholm/kroninnovation-2016": ["2016-03", "2016-12", "2017-01"],
    "vastra-gotaland/vg-primarvard": ["2016-12", "2017-01", "2017-03"],
    "stockholm/hlv-2016": ["2016-01", "2016-12", "2017-01"],
}


@pytest.fixture(scope="module")
def books():
    return {rid: rulelang.load(rid) for rid in MONTHS}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_duckdb_gives_the_interpreters_line_items(books, tmp_path_factory, data):
    """On generated regions — month edges, listing changes, sister clinics, unlisted patients,
    every mode, place and assignment — DuckDB and the interpreter agree line by line."""
    rid = data.draw(st.sampled_from(sorted(MONTHS)))
    month = data.draw(st.sampled_from(MONTHS[rid]))
    region = data.draw(regions(month))
    directory = tmp_path_factory.mktemp("region")
    out = directory / "out.csv"
    settle(books[rid], month, write_region(region, directory), out)
    assert csv_rows(out) == interpreter_rows(books[rid], region, month)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    write_demo_region(directory, persons=3000, seed=7)
    return directory




@needs_spark
def test_spark_gives_the_same_line_items_as_duckdb(books, demo, tmp_path):
    """The same lowered plan on Apache Spark (local mode): identical bytes, for a rulebook
    with history lookups and exceptions and one with aggregates over listings."""
    # hlv-2021 pays per visit and person (hundreds of lines); VG per clinic and component.
    for rid, month, at_least in (("stockholm/hlv-2021", "2021-09", 100), ("vastra-gotaland/vg-primarvard", "2017-03", 10)):
        duck, spark = tmp_path / f"{rid.replace('/', '-')}-duckdb.csv", tmp_path / f"{rid.replace('/', '-')}-spark.csv"
        settle(books[rid], month, demo, duck, engine="duckdb")
        settle(books[rid], month, demo, spark, engine="spark")
        assert duck.read_bytes() == spark.read_bytes()
        assert len(csv_rows(duck)) > at_least


@needs_spark
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_spark_gives_the_interpreters_line_items_on_generated_regions(books, tmp_path_factory, data):
    month = data.draw(st.sampled_from(["2021-08", "2021-09"]))
    region = data.draw(regions(month))
    directory = tmp_path_factory.mktemp("spark")
    out = directory / "out.csv"
    settle(books["stockholm/hlv-2021"], month, write_region(region, directory), out, engine="spark")
    assert csv_rows(out) == interpreter_rows(books["stockholm/hlv-2021"], region, month)


def test_a_settled_line_is_explained_with_the_same_amount(books, demo, tmp_path):
    out = tmp_path / "settlement.csv"
    settle(books["stockholm/hlv-2021"], "2021-09", demo, out)
    rows = csv_rows(out)
    picked = {}
    for clinic, month, component, amount, provision, record, basis in rows:
        picked.setdefault(component, (clinic, amount, provision, record, basis))
    assert {"avdrag", "tilläggsersättning", "besöksersättning", "listningsersättning"} <= set(picked)
    for component, (clinic, amount, provision, record, basis) in picked.items():
        if not record:
            continue
        table = books["stockholm/hlv-2021"].program.outputs[component].table
        book = books["stockholm/hlv-2021"]
        evaluator = book.evaluator(demo, month_bounds("2021-09")[1], focus=book.focus(component, record))
        tree = evaluator.explain(component, evaluator.dataset.table(table).by_id[record])
        assert (tree.value, tree.facts["paid_to"], tree.provision, tree.facts["basis"] or "") == \
            (amount, clinic, provision, basis), component


# --------------------------------------------------------------------------- intake


def region_with_problems() -> dict:
    return {
        "clinics": [{"clinic_id": "A", "koncern_id": "K1"}, {"clinic_id": "B", "koncern_id": "K2"},
                    {"clinic_id": "A", "koncern_id": "K9"}],
        "persons": [{"person_id": "P1", "birth_date": "1950-01-01", "sex": "F"},
                    {"person_id": "P2", "birth_date": "1950-02-30", "sex": "F"},
                    {"person_id": "P3", "birth_date": "1960-01-01", "sex": "X"},
                    {"person_id": "P4", "birth_date": "1960-01-01", "sex": "M", "acg_weight": "1.1234567"},
                    {"person_id": "P5", "birth_date": "1960-01-01", "sex": "M"}],
        "listings": [{"person_id": "P1", "clinic_id": "A", "listed_from": "2015-01-01", "listed_to": None},
                     {"person_id": "P1", "clinic_id": "B", "listed_from": "2021-01-01", "listed_to": None},
                     {"person_id": "P2", "clinic_id": "A", "listed_from": "2015-01-01"},
                     {"person_id": "P5", "clinic_id": "Z", "listed_from": "2015-01-01"}],
        "visits": [{"visit_id": "V1", "person_id": "P1", "clinic_id": "B", "date": "2021-09-10", "mode": "physical",
                    "place": "clinic", "assignment": "general", "profession": "doctor"},
                   {"visit_id": "V2", "person_id": "P9", "clinic_id": "B", "date": "2021-09-10", "mode": "physical",
                    "place": "clinic", "assignment": "general", "profession": "doctor"},
                   {"visit_id": "V3", "person_id": "P1", "clinic_id": "B", "date": "2021-09-10", "mode": "teleport",
                    "place": "clinic", "assignment": "general", "profession": "doctor"},
                   {"visit_id": "V4", "person_id": "P1", "clinic_id": "B", "date": "2021-09-10", "mode": "physical",
                    "place": "clinic", "assignment": "general"}],
    }


def test_every_unusable_record_is_rejected_with_its_reason_and_none_is_lost(books, tmp_path):
    data = tmp_path / "region.json"
    data.write_text(json.dumps(region_with_problems()), encoding="utf-8")
    out = tmp_path / "settlement-2021-09.csv"
    result = settle(books["stockholm/hlv-2021"], "2021-09", data, out)
    with open(result.rejected_out, encoding="utf-8", newline="") as handle:
        rejected = {(row["table"], row["record_id"]): row for row in csv.DictReader(handle)}
    reasons = {key: row["reason"] for key, row in rejected.items()}
    assert reasons == {
        ("clinics", "A"): "two clinics records have the id A",
        ("persons", "P2"): "birth_date: '1950-02-30' is not a date in the calendar",
        ("persons", "P3"): "sex: 'X' is not a sex (one of F, M)",
        ("persons", "P4"): "acg_weight: expected a decimal number (at most 12 digits before the point and 6 after), "
                           "got '1.1234567'",
        ("listings", "#2"): "listings of person_id 'P1' overlap: #1 and #2 are both in force on 2021-01-01",
        ("listings", "#3"): "person_id 'P2' names a persons record that has errors",
        ("listings", "#4"): "clinic_id 'Z' is not a record of clinics",
        ("visits", "V2"): "person_id 'P9' is not a record of persons",
        ("visits", "V3"): "mode: 'teleport' is not a visit_mode (one of physical, video, phone)",
        ("visits", "V4"): "missing field profession",
    }
    # Nothing a user gave is lost: the rejected row carries the values as given.
    assert json.loads(rejected[("persons", "P2")]["data"])["birth_date"] == "1950-02-30"
    counts = {c.table: (c.read, c.used, c.rejected) for c in result.counts}
    assert counts == {"clinics": (3, 2, 1), "persons": (5, 2, 3), "listings": (4, 1, 3), "visits": (4, 1, 3),
                      "koncern_memberships": (0, 0, 0)}  # optional, not given: no records
    for read, used, rejected_count in counts.values():
        assert read == used + rejected_count
    # V1 is settled: P1 is listed at A (the overlapping listing at B was set aside): 300 kr to B.
    assert ["B", "2021-09", "tilläggsersättning", "300.00"] == csv_rows(out)[-1][:4]


def region_over_three_months() -> dict:
    visit = {"person_id": "P1", "clinic_id": "B", "mode": "physical", "place": "clinic",
             "assignment": "general", "profession": "doctor"}
    return {
        "clinics": [{"clinic_id": "A", "koncern_id": "K1"}, {"clinic_id": "B", "koncern_id": "K2"}],
        "persons": [{"person_id": "P1", "birth_date": "1950-01-01", "sex": "F"}],
        "listings": [{"person_id": "P1", "clinic_id": "A", "listed_from": "2015-01-01"}],
        "visits": [{**visit, "visit_id": "A1", "date": "2021-08-31", "mode": "teleport"},
                   {**visit, "visit_id": " S1 ", "person_id": "P1 ", "mode": " physical", "date": "2021-09-01"},
                   {**visit, "visit_id": "S2", "date": "2021-09-31"},
                   {**visit, "visit_id": "S3", "date": None},
                   {**visit, "visit_id": "A1", "date": "2021-09-30"},
                   {**visit, "visit_id": "O1", "date": "2021-10-01"},
                   {**visit, "visit_id": "S4", "place": "   ", "date": "2021-09-02"}],
    }


@pytest.mark.parametrize("form", ["json", "csv", "parquet"])
def test_records_of_other_months_are_counted_but_not_settled(books, tmp_path, form):
    """A visit dated in another month cannot change this month's lines: it is counted, not
    checked (the August visit's bad mode is August's business). A visit without a usable
    date is rejected, and an id is unique across every month. Surrounding spaces are not
    part of a value, and a value of spaces is missing."""
    import duckdb

    region = region_over_three_months()
    data = write_region(region, tmp_path)
    if form != "json":
        data = tmp_path / "region"
        data.mkdir()
        con = duckdb.connect()
        for table, rows in region.items():
            columns = sorted({c for row in rows for c in row})
            con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} VARCHAR' for c in columns)})")
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in columns)})",
                            [[row.get(c) for c in columns] for row in rows])
            if form == "parquet" and table == "visits":  # dates as Parquet dates, as demo-data writes
                con.execute("ALTER TABLE visits ALTER date TYPE DATE USING TRY_CAST(date AS DATE)")
            con.execute(f"COPY {table} TO '{data / (table + '.' + form)}' "
                        f"({'FORMAT parquet' if form == 'parquet' else 'HEADER true'})")
    result = settle(books["stockholm/hlv-2021"], "2021-09", data, tmp_path / "out.csv")
    with open(result.rejected_out, encoding="utf-8", newline="") as handle:
        reasons = {row["record_id"]: row["reason"] for row in csv.DictReader(handle) if row["table"] == "visits"}
    impossible = ("missing field date" if form == "parquet"  # a Parquet date cannot be 2021-09-31
                  else "date: '2021-09-31' is not a date in the calendar")
    assert reasons == {"S2": impossible, "S3": "missing field date", "A1": "two visits records have the id A1",
                       "S4": "missing field place"}
    (visits,) = [c for c in result.counts if c.table == "visits"]
    assert (visits.read, visits.used, visits.rejected, visits.other_months) == (7, 1, 4, 2)
    # S1: P1 is listed at A, the visit is at B: 110 kr visit fee and 300 kr add-on to B, 300 kr off A.
    visit_lines = {(r[0], r[2], r[3]) for r in csv_rows(tmp_path / "out.csv") if r[5] == "S1"}
    assert visit_lines == {("B", "besöksersättning", "110.00"), ("B", "tilläggsersättning", "300.00"),
                           ("A", "avdrag", "-300.00")}
    assert not [r for r in csv_rows(tmp_path / "out.csv") if r[5] in ("A1", "O1")]


def test_the_same_input_gives_byte_identical_output(books, demo, tmp_path):
    first, second = tmp_path / "one.csv", tmp_path / "two.csv"
    settle(books["stockholm/hlv-2021"], "2021-09", demo, first)
    settle(books["stockholm/hlv-2021"], "2021-09", demo, second)
    assert first.read_bytes() == second.read_bytes()


def test_outputs_appear_together_or_not_at_all(books, demo, tmp_path):
    """A run killed between putting its line items and its other files in place leaves its
    journal and temporary files; the next run to the same target first puts the rest of that
    set in place, so a reader never finds one run's line items beside another run's rejected
    records. A run that fails leaves no file of its own."""
    from rulelang.columnar.outputset import OutputSet

    out = tmp_path / "settlement.csv"
    settle(books["stockholm/hlv-2021"], "2021-09", demo, out)
    targets = [out, tmp_path / "settlement-totals.csv", tmp_path / "settlement-rejected.csv"]
    first = {t.name: t.read_bytes() for t in targets}
    # The state a run killed after its first rename leaves: the journal, the line items in
    # place, the two other files still temporary (here: this run's, marked).
    killed = OutputSet(targets)
    pairs = [(str(killed.temporary(t)), str(t)) for t in targets]
    for temporary, final in pairs:
        Path(temporary).write_bytes(b"from the killed run " + Path(final).name.encode())
    killed.journal.write_text(json.dumps(pairs), encoding="utf-8")
    os.replace(pairs[0][0], pairs[0][1])
    with OutputSet(targets):  # what the next run does first
        pass
    assert {t.name: t.read_bytes() for t in targets} == {t.name: b"from the killed run " + t.name.encode()
                                                         for t in targets}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".settlement.csv.lock", "settlement-rejected.csv", "settlement-totals.csv", "settlement.csv"]
    # A run that fails before writing leaves no file of its own behind, and the set stays.
    with pytest.raises(SettlementError):
        settle(books["stockholm/hlv-2021"], "2021-09", tmp_path / "nowhere", out)
    assert out.read_bytes() == b"from the killed run settlement.csv"
    settle(books["stockholm/hlv-2021"], "2021-09", demo, out)
    assert {t.name: t.read_bytes() for t in targets} == first
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".commit"))]


def test_parquet_output_holds_exact_decimal_amounts(books, demo, tmp_path):
    import duckdb

    csv_out, parquet_out = tmp_path / "s.csv", tmp_path / "s.parquet"
    settle(books["stockholm/hlv-2021"], "2021-09", demo, csv_out)
    settle(books["stockholm/hlv-2021"], "2021-09", demo, parquet_out)
    con = duckdb.connect()
    (kind,) = con.execute(f"SELECT typeof(amount) FROM '{parquet_out}' LIMIT 1").fetchone()
    assert kind == "DECIMAL(18,2)"
    rows = con.execute(f"SELECT clinic_id, month, component, CAST(amount AS VARCHAR), provision, record_id, "
                       f"CAST(basis AS VARCHAR) FROM '{parquet_out}'").fetchall()
    assert [list(r) for r in rows] == csv_rows(csv_out)


def test_a_bad_month_and_a_missing_directory_are_usage_errors(books, tmp_path):
    with pytest.raises(SettlementError, match="--month must be YYYY-MM"):
        settle(books["stockholm/hlv-2021"], "2021-13", tmp_path, tmp_path / "x.csv")
    with pytest.raises(SettlementError, match="nowhere: error: no such file or directory"):
        settle(books["stockholm/hlv-2021"], "2021-09", tmp_path / "nowhere", tmp_path / "x.csv")


# --------------------------------------------------------------------------- the commands


def test_settle_prints_totals_that_add_up(demo, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["settle", "stockholm/hlv-2021", "--month", "2021-09", "--data", str(demo),
                 "--out", str(out), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = csv_rows(out)
    total = sum(int(r[3].replace(".", "").replace("-", "")) * (-1 if r[3].startswith("-") else 1) for r in rows)
    assert summary["total"] == money_text(total)
    assert summary["lines"] == len(rows)
    assert {c["clinic_id"] for c in summary["clinics"]} == {r[0] for r in rows}
    for count in summary["records"]:
        assert count["read"] == count["used"] + count["rejected"] + count["other_months"]
    # The demo region's visits span three months; only the settled month's are checked.
    (visits,) = [c for c in summary["records"] if c["table"] == "visits"]
    assert visits["other_months"] > 0 and visits["used"] > 0
    assert set(summary["phases"]) == {"intake", "rules", "output"}
    assert sum(summary["phases"].values()) <= summary["seconds"] + 0.01


def test_settle_text_summary(demo, tmp_path, capsys):
    assert main(["settle", "stockholm/hlv-2021", "--month", "2021-09", "--data", str(demo),
                 "--out", str(tmp_path / "s.csv")]) == 0
    text = capsys.readouterr().out
    assert "visits: " in text and "records in = " in text and "total" in text


def test_demo_data_is_the_same_for_the_same_seed(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path / "a"), "--persons", "500", "--seed", "3"]) == 0
    assert main(["demo-data", "--out", str(tmp_path / "b"), "--persons", "500", "--seed", "3"]) == 0
    assert main(["demo-data", "--out", str(tmp_path / "c"), "--persons", "500", "--seed", "4"]) == 0
    for table in ("clinics", "persons", "listings", "visits"):
        a = (tmp_path / "a" / f"{table}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{table}.parquet").read_bytes()
    assert (tmp_path / "a" / "visits.parquet").read_bytes() != (tmp_path / "c" / "visits.parquet").read_bytes()
    assert "persons.parquet: 500 records" in capsys.readouterr().out


def test_demo_data_takes_a_number_of_clinics_and_has_a_national_size(tmp_path, capsys):
    import duckdb

    from rulelang.interfaces.demo import NATIONAL_CLINICS, NATIONAL_PERSONS

    assert main(["demo-data", "--out", str(tmp_path / "a"), "--persons", "2000", "--clinics", "1150"]) == 0
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{tmp_path}/a/clinics.parquet'").fetchone()[0] == 1150
    # Visits go to clinics of the table, four-digit numbers included.
    (unknown,) = con.execute(f"SELECT count(*) FROM '{tmp_path}/a/visits.parquet' WHERE clinic_id NOT IN "
                             f"(SELECT clinic_id FROM '{tmp_path}/a/clinics.parquet')").fetchone()
    assert unknown == 0
    assert (NATIONAL_PERSONS, NATIONAL_CLINICS) == (10_500_000, 1_150)  # Sweden's primary care


def test_demo_data_looks_like_a_region(demo):
    import duckdb

    con = duckdb.connect()
    persons = con.execute(f"SELECT count(*) FROM '{demo}/persons.parquet'").fetchone()[0]
    listed = con.execute(f"SELECT count(DISTINCT person_id) FROM '{demo}/listings.parquet'").fetchone()[0]
    moved = con.execute(f"SELECT count(*) FROM '{demo}/listings.parquet' WHERE listed_to IS NOT NULL").fetchone()[0]
    modes = dict(con.execute(f"SELECT mode, count(*) FROM '{demo}/visits.parquet' GROUP BY mode").fetchall())
    assert persons == 3000 and 0.9 < listed / persons < 1.0
    assert moved > 0  # listing churn
    assert modes["physical"] > modes["video"] > 0 and modes["phone"] > 0


CONFLICTING = '''# Test

```rulelang
rulebook "test/settle"
  version "1" source src "Test source test"
according to src
```

## 1 Ersättning

```rulelang
enum visit_mode: physical, video
table clinics
  key clinic_id
  field clinic_id: text
table visits
  key visit_id
  dated by date
  field visit_id: text
  field clinic_id: clinics
  field date: date
  field mode: visit_mode
output fee: money per visits paid to clinic_id
rule a defines fee from 2021-01-01 when mode = physical then 100 kr
rule b defines fee from 2021-01-01 when mode = physical or mode = video then 200 kr
```
'''


def write_visits(directory: Path, visits: list) -> Path:
    path = directory / "data.json"
    path.write_text(json.dumps({"clinics": [{"clinic_id": "A"}], "visits": visits}), encoding="utf-8")
    return path


def visit(visit_id: str, date: str, mode: str) -> dict:
    return {"visit_id": visit_id, "clinic_id": "A", "date": date, "mode": mode}


def test_a_conflict_found_in_sql_fails_the_run_naming_the_record(tmp_path, capsys):
    book = tmp_path / "book.md"
    book.write_text(CONFLICTING, encoding="utf-8")
    data = write_visits(tmp_path, [visit("V1", "2021-03-01", "video"), visit("V2", "2021-03-02", "physical")])
    out = tmp_path / "s.csv"
    # V1 (video) gets 200 kr from b alone; V2 (physical) gets 100 kr from a and 200 kr from b.
    assert main(["settle", str(book), "--month", "2021-03", "--data", str(data), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "visits record V2: fee: conflict" in err and "V1" not in err
    assert not out.exists()


def test_a_month_no_rule_covers_is_an_input_error(tmp_path, capsys):
    book = tmp_path / "book.md"
    book.write_text(CONFLICTING.replace("rule b defines fee from 2021-01-01 when mode = physical or mode = video then 200 kr\n", ""),
                    encoding="utf-8")
    data = write_visits(tmp_path, [visit("V1", "2020-12-31", "physical")])
    assert main(["settle", str(book), "--month", "2020-12", "--data", str(data),
                 "--out", str(tmp_path / "s.csv")]) == 2
    assert "visits record V1: fee: no rule in force" in capsys.readouterr().err


def test_a_rulebook_that_pays_no_one_cannot_be_settled(tmp_path, capsys):
    # Jämtland's outputs are amounts per region for a year, paid to no clinic.
    assert main(["settle", "jamtland/patientmiljarden-2018", "--month", "2018-06",
                 "--data", str(tmp_path / "data"), "--out", str(tmp_path / "s.csv")]) == 1
    assert capsys.readouterr().err == ("rulelang: error: jamtland/patientmiljarden-2018 cannot be settled on "
                                       "duckdb: the rulebook has no output paid to anyone\n")


def test_a_missing_value_inside_an_aggregate_stops_the_run_as_the_interpreter_does(books, tmp_path, capsys):
    """A person listed before birth has no row in VG's weight list. The interpreter refuses;
    SQL's SUM would skip the NULL and pay a wrong amount without a word — it must refuse too."""
    region = {"clinics": [{"clinic_id": "C0", "koncern_id": "K"}],
              "persons": [{"person_id": "P0", "birth_date": "2018-01-01", "sex": "F"},
                          {"person_id": "P1", "birth_date": "1950-01-01", "sex": "M"}],
              "listings": [{"person_id": "P0", "clinic_id": "C0", "listed_from": "2010-01-01"},
                           {"person_id": "P1", "clinic_id": "C0", "listed_from": "2010-01-01"}],
              "visits": []}
    vg = books["vastra-gotaland/vg-primarvard"]
    with pytest.raises(rulelang.EvaluationError, match="has no row for F, -1"):
        interpreter_rows(vg, region, "2017-03")
    data = write_region(region, tmp_path)
    assert main(["settle", "vastra-gotaland/vg-primarvard", "--month", "2017-03", "--data", str(data),
                 "--out", str(tmp_path / "s.csv")]) == 2
    assert "clinics record C0: ålder_och_kön: a value is missing" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_a_condition_on_a_parameter_without_a_value_stops_the_run(tmp_path, capsys):
    book = tmp_path / "book.md"
    book.write_text(CONFLICTING.replace(
        "rule a defines fee from 2021-01-01 when mode = physical then 100 kr\n"
        "rule b defines fee from 2021-01-01 when mode = physical or mode = video then 200 kr\n",
        "parameter pays_video: boolean\n  value true until 2021-01-31 status verified cite \"x\"\n"
        "rule a defines fee from 2021-01-01 when mode = video and pays_video then 100 kr\n"
        "rule b defines fee from 2021-01-01 when mode = physical then 200 kr\n"), encoding="utf-8")
    data = write_visits(tmp_path, [visit("V1", "2021-03-01", "video"), visit("V2", "2021-03-02", "physical")])
    loaded = rulelang.load(str(book))
    with pytest.raises(rulelang.EvaluationError, match="parameter pays_video has no value on 2021-03-01"):
        loaded.evaluate_record(json.loads(data.read_text()), "fee", "V1")
    assert main(["settle", str(book), "--month", "2021-03", "--data", str(data),
                 "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "visits record V1: fee: a value is missing" in err and "V2" not in err


def test_decimals_money_integers_and_booleans_are_typed_exactly(tmp_path):
    """Each text value becomes its declared type with no rounding: decimals as millionths,
    money as öre, at the edges of what each type accepts; anything else is rejected."""
    import duckdb
    from rulebook_factory import load

    from rulelang.columnar.intake import Intake, find_sources

    book = load(tmp_path, '''
table things
  key id
  field id: text
  field share: decimal
  field fee: money
  field n: integer
  field flag: boolean

output belopp: money per things

rule avgift defines belopp
  then fee
''')
    good = [("a", "7", "12.5", "-3", "true", 7_000_000, 1250, -3, True),
            ("b", "-0.25", "-0.01", "0", "FALSE", -250_000, -1, 0, False),
            ("c", "0.000001", "999999999999999.99", "+15", "True", 1, 99_999_999_999_999_999, 15, True),
            ("d", "-999999999999.999999", "-1", "999999999999999", "false",
             -999_999_999_999_999_999, -100, 999_999_999_999_999, False)]
    bad = {"e": ("1.0000001", "1", "1", "true"), "f": ("1", "0.001", "1", "true"),
           "g": ("1", "1", "1.5", "true"), "h": ("1", "1", "1", "yes"), "i": ("1e3", "1", "1", "true"),
           "j": ("1", "1,5", "1", "true")}
    rows = [dict(zip(("id", "share", "fee", "n", "flag"), row[:5])) for row in good]
    rows += [dict(zip(("id", "share", "fee", "n", "flag"), (key,) + values)) for key, values in bad.items()]
    data = tmp_path / "things.json"
    data.write_text(json.dumps({"things": rows}), encoding="utf-8")
    con = duckdb.connect()
    intake = Intake(con, book.checked, find_sources(data, book.checked))
    intake.run()
    typed = con.execute("SELECT id, share, fee, n, flag FROM things ORDER BY id").fetchall()
    assert typed == [(row[0],) + row[5:] for row in good]
    rejected = {record: reason for record, reason in
                con.execute("SELECT record_id, reason FROM rejected").fetchall()}
    assert set(rejected) == set(bad)
    assert rejected["f"] == "fee: '0.001' has a fraction of an öre"
    assert rejected["g"] == "n: expected a whole number (at most 15 digits), got '1.5'"


def test_progress_is_reported_per_step_and_never_goes_back(books, demo, tmp_path):
    reports = []
    settle(books["stockholm/hlv-2021"], "2021-09", demo, tmp_path / "s.csv",
           progress=lambda message, done: reports.append((message, done)))
    messages = [message for message, _ in reports]
    for step in ("checking clinics", "checking persons", "checking listings", "checking visits",
                 "settling 2021-09 on duckdb", "writing output"):
        assert step in messages
    fractions = [done for _, done in reports]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and reports[-1] == ("done", 1.0)


def test_a_terminal_watching_settle_sees_a_progress_bar(demo, tmp_path, monkeypatch, capsys):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["settle", "stockholm/hlv-2021", "--month", "2021-09", "--data", str(demo),
                 "--out", str(tmp_path / "s.csv")]) == 0
    drawn = terminal.getvalue()
    assert "[" + "#" * 30 + "] 100%  done" in drawn
    assert "checking persons" in drawn and drawn.endswith("\r\033[K")  # the bar is cleared
    assert "[" not in capsys.readouterr().out.splitlines()[0]  # stdout holds the summary alone



# ------------------------------------------------------------------------ lines straight from the plan


@pytest.fixture(scope="module")
def region_month_book():
    return rulelang.load(str(REGION_MONTH))


def parquet_rows(path: Path) -> list:
    import duckdb

    return [[str(value) for value in row] for row in
            duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(region=region_month_regions())
def test_lines_written_straight_from_the_plan_are_the_interpreters(region_month_book, tmp_path_factory, region):
    """Payees that are a table's records: DuckDB writes the paying lines straight from the
    plan (Parquet, and CSV through it), with no table of lines. Both hold the interpreter's
    lines; the totals have a row per clinic of the table and component, zeros included,
    each the sum of its lines."""
    from decimal import Decimal

    directory = tmp_path_factory.mktemp("region-month")
    data = write_region(region, directory)
    # The interpreter gives a payee as its typed id; the files hold ids as text.
    expected = [[str(row[0]), *row[1:]] for row in interpreter_rows(region_month_book, region, "2021-09")]
    settle(region_month_book, "2021-09", data, directory / "out.csv")
    assert csv_rows(directory / "out.csv") == expected
    settled = settle(region_month_book, "2021-09", data, directory / "out.parquet")
    assert parquet_rows(directory / "out.parquet") == expected
    assert settled.lines == len(expected)
    components = sorted(["kapitering", "besöksavgift_till_mottagningen", "tilläggsersättning", "avdrag"])
    clinics = sorted(c["clinic_id"] for c in region["clinics"])
    totals = csv_rows(directory / "out-totals.csv")
    assert [(row[0], row[2]) for row in totals] == [(str(c), k) for c in clinics for k in components]
    for clinic, _, component, amount, lines in totals:
        mine = [Decimal(row[3]) for row in expected if row[0] == clinic and row[2] == component]
        assert (Decimal(amount), int(lines)) == (sum(mine, Decimal("0.00")), len(mine))


def test_a_line_that_goes_wrong_stops_the_write_and_every_problem_is_named(region_month_book, tmp_path):
    """A person born after the month has no age band: the write straight from the plan
    stops, and the run reports both such persons as a settlement of the lines would,
    leaving no output behind."""
    person = {"listed_clinic": 1, "acg_weight": "1", "in_home_care": False}
    region = {"clinics": [{"clinic_id": 1, "koncern_id": 1}],
              "persons": [{"person_id": 101, "birth_date": "2021-10-05", **person},
                          {"person_id": 102, "birth_date": "1980-02-01", **person},
                          {"person_id": 103, "birth_date": "2022-01-01", **person}],
              "visits": []}
    data = write_region(region, tmp_path)
    for out in ("out.parquet", "out.csv"):
        with pytest.raises(SettlementError) as raised:
            settle(region_month_book, "2021-09", data, tmp_path / out)
        message = str(raised.value)
        assert message.startswith("2 amount(s) could not be settled"), message
        assert "persons record 101: kapitering" in message and "persons record 103: kapitering" in message
        assert "102" not in message and raised.value.exit_code == 2
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["region.json"]




def settled_files(book, data: Path, out: Path) -> dict:
    """What a settlement wrote: a CSV's bytes, a Parquet file's schema and rows."""
    import duckdb

    settle(book, "2021-09", data, out)
    files = {}
    for path in out.parent.iterdir():
        if path.suffix == ".parquet":
            files[path.name] = (duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall(),
                                duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall())
        elif not path.name.endswith(".lock"):
            files[path.name] = path.read_bytes()
    return files


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_the_table_of_lines_and_the_straight_write_give_the_same_files(region_month_book, tmp_path, monkeypatch,
                                                                          suffix):
    """A month too large for the straight write (STRAIGHT_WRITE_ROWS), and one where DuckDB
    runs out of memory writing straight, are settled through a table of the lines: the same
    bytes in every file as the straight write."""
    import duckdb

    from rulelang.columnar import settlement

    data = write_region_month_parquet(tmp_path / "data")
    straight = settled_files(region_month_book, data, tmp_path / "straight" / f"out.{suffix}")
    monkeypatch.setattr(settlement, "STRAIGHT_WRITE_ROWS", 0)
    assert settled_files(region_month_book, data, tmp_path / "table" / f"out.{suffix}") == straight
    monkeypatch.undo()
    tried = []
    real_write = settlement.write

    def out_of_memory_when_straight(db, query, *args, **kwargs):
        if "error(" in query:
            tried.append(query)
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
        return real_write(db, query, *args, **kwargs)

    monkeypatch.setattr(settlement, "write", out_of_memory_when_straight)
    assert settled_files(region_month_book, data, tmp_path / "spilled" / f"out.{suffix}") == straight
    assert len(tried) == 1 and len(straight) == 3


def test_an_id_repeated_in_another_month_is_found_where_ids_are_read_as_text(region_month_book, tmp_path):
    """Integer visit ids given as JSON text: the search for repeats among every visit read
    (the month holds only some) compares typed ids, and the later record is rejected."""
    person = {"person_id": 101, "birth_date": "1980-02-01", "listed_clinic": 1, "acg_weight": "1",
              "in_home_care": False}
    visit = {"person_id": 101, "clinic_id": 1, "kind": "physical", "profession": "doctor"}
    region = {"clinics": [{"clinic_id": 1, "koncern_id": 1}], "persons": [person],
              "visits": [{"visit_id": 5000, "date": "2021-08-15", **visit},
                         {"visit_id": 5001, "date": "2021-09-02", **visit},
                         {"visit_id": 5000, "date": "2021-09-10", **visit}]}
    settled = settle(region_month_book, "2021-09", write_region(region, tmp_path), tmp_path / "out.csv")
    rejected = csv_rows(tmp_path / "out-rejected.csv")
    assert [(row[0], row[1], row[4]) for row in rejected] == [("visits", "5000", "two visits records have the id 5000")]
    assert [row[5] for row in csv_rows(tmp_path / "out.csv") if row[2] == "besöksavgift_till_mottagningen"] == ["5001"]
    visits = next(c for c in settled.counts if c.table == "visits")
    assert (visits.read, visits.used, visits.rejected) == (3, 1, 1)


# ------------------------------------------------------------------------ rounding in the plan

ROUNDING_MODES = ("down", "up", "toward zero", "away from zero", "half up")


def exact_rounding(n: int, d: int, mode: str) -> int:
    """The whole number n / d rounded by `mode`, in Python's unbounded integers."""
    sign, magnitude = (1 if n >= 0 else -1), abs(n)
    if mode == "down":
        return n // d
    if mode == "up":
        return -((-n) // d)
    if mode == "toward zero":
        return sign * (magnitude // d)
    if mode == "away from zero":
        return sign * (-((-magnitude) // d))
    return sign * ((2 * magnitude + d) // (2 * d))  # half up: a half goes away from zero


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(n=st.one_of(st.integers(-10 ** 9, 10 ** 9), st.integers(-2 ** 120, 2 ** 120),
                   st.integers(-2 ** 61 - 10 ** 7, -2 ** 61 + 10 ** 7), st.integers(2 ** 61 - 10 ** 7, 2 ** 61 + 10 ** 7),
                   st.integers(2 ** 62, 2 ** 63 - 1), st.integers(-2 ** 63, -2 ** 62)),
       den=st.sampled_from([1, 3, 7, 1_000_000, 10_000_000, 2 ** 40 + 1]),
       unit=st.sampled_from([1, 100]), mode=st.sampled_from(ROUNDING_MODES))
def test_the_plan_rounds_as_the_provision_says_in_64_and_128_bits(n, den, unit, mode):
    """Rounding divides in 64 bits where the value fits and in 128 bits where it does not
    (NARROW_BELOW); both give the exact rounding, either side of the boundary."""
    import duckdb

    from rulelang.columnar.lowering import Val, round_sql

    sql = round_sql(Val(f"CAST('{n}' AS HUGEINT)", den), mode, unit)
    ((got,),) = duckdb.sql(f"SELECT CAST(({sql}) AS VARCHAR)").fetchall()
    assert int(got) == exact_rounding(n, den * unit, mode) * unit


def test_every_clinic_of_the_clinics_table_has_its_totals_rows(books, tmp_path):
    """hlv-2021 pays clinics: by reference (a visit's clinic, a person's listing clinic) and,
    for its per-clinic outputs, the clinic's own key. Either way the payees are the clinics
    table's records, so a clinic with no line at all still has a row of 0.00 per component."""
    import duckdb

    write_demo_region(tmp_path / "data", persons=300, seed=5)
    clinics = tmp_path / "data" / "clinics.parquet"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE c AS SELECT * FROM read_parquet('{clinics}')")
    con.execute("INSERT INTO c SELECT * REPLACE ('HLM-QUIET' AS clinic_id) FROM c LIMIT 1")
    con.execute(f"COPY c TO '{clinics}' (FORMAT parquet)")
    book = books["stockholm/hlv-2021"]
    settle(book, "2021-09", tmp_path / "data", tmp_path / "out.parquet")
    components = sorted(o.name for o in book.program.outputs.values() if o.payee is not None and o.type.kind == "money")
    quiet = [row for row in csv_rows(tmp_path / "out-totals.csv") if row[0] == "HLM-QUIET"]
    assert [row[2] for row in quiet] == components
    # No one is listed there and no visit was made there: its per-person and per-visit
    # components are rows of zero (its per-clinic ones pay it as any clinic).
    by_record = {o.name for o in book.program.outputs.values() if o.table in ("persons", "visits")}
    assert by_record and all(row[3:] == ["0.00", "0"] for row in quiet if row[2] in by_record)
    (listed,) = con.execute("SELECT count(*) FROM c").fetchone()
    assert len({row[0] for row in csv_rows(tmp_path / "out-totals.csv")}) == listed


@pytest.mark.parametrize("straight", [True, False])
def test_parquet_line_items_keep_the_declared_type_of_their_ids_and_a_csv_holds_text(tmp_path, monkeypatch,
                                                                                      straight):
    """Ids that name an integer key are BIGINT in the Parquet line items (line_ids), so the
    lines join the input's own ids as they are; a clinic-level line's record is NULL there,
    and empty in the CSV of the same month, which holds text as it always did. Month,
    component, provision and basis are plain UTF-8 text whatever enums DuckDB sorted them
    as, and the amount a DECIMAL(18, 2): on the straight write and on the table of lines."""
    import duckdb
    from rulebook_factory import write_integer_clinics

    from rulelang.columnar import settlement

    if not straight:
        monkeypatch.setattr(settlement, "STRAIGHT_WRITE_ROWS", 0)
    book, data = write_integer_clinics(tmp_path)
    out = tmp_path / "out.parquet"
    settle(book, "2021-09", data, out)
    schema = duckdb.sql(f"SELECT name, type, converted_type, precision, scale FROM parquet_schema('{out}') "
                        "WHERE name <> 'duckdb_schema'").fetchall()
    assert [row[0] for row in schema] == ["clinic_id", "month", "component", "amount", "provision", "record_id", "basis"]
    types = {row[0]: row[1:] for row in schema}
    assert types["clinic_id"][:2] == types["record_id"][:2] == ("INT64", "INT_64"), schema
    assert all(types[name][:2] == ("BYTE_ARRAY", "UTF8") for name in ("month", "component", "provision", "basis"))
    assert types["amount"] == ("INT64", "DECIMAL", 18, 2)
    # Persons 100 and 7 (kod 1) get 5 kr each at their clinics, in file order; then clinic 9
    # gets 100 kr, a clinic-level line without a record.
    lines = duckdb.sql(f"SELECT clinic_id, component, CAST(amount AS VARCHAR), record_id, "
                       f"typeof(month) FROM read_parquet('{out}')").fetchall()
    assert lines == [(10, "ersättning", "5.00", 100, "VARCHAR"), (9, "ersättning", "5.00", 7, "VARCHAR"),
                     (9, "grundbelopp", "100.00", None, "VARCHAR")]
    settle(book, "2021-09", data, tmp_path / "out.csv")
    provision = "1 Provision (Test source test-source)"
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        f'10,2021-09,ersättning,5.00,{provision},100,""', f'9,2021-09,ersättning,5.00,{provision},7,""',
        f'9,2021-09,grundbelopp,100.00,{provision},"",""']


def test_text_ids_stay_text_in_the_parquet_line_items_a_clinic_level_record_empty(books, demo, tmp_path):
    """hlv-2021 keys its tables by text: the Parquet line items hold the ids as text, and a
    clinic-level line (målrelaterad ersättning, say) has an empty record id, not NULL, as before."""
    import duckdb

    out = tmp_path / "out.parquet"
    settle(books["stockholm/hlv-2021"], "2021-09", demo, out)
    types = dict(duckdb.sql(f"SELECT name, type FROM parquet_schema('{out}')").fetchall())
    assert types["clinic_id"] == types["record_id"] == "BYTE_ARRAY"
    counted = duckdb.sql(f"SELECT count(*) FILTER (WHERE record_id = ''), count(*) FILTER (WHERE record_id IS NULL) "
                         f"FROM read_parquet('{out}')").fetchall()[0]
    assert counted[0] > 0 and counted[1] == 0


def test_a_straight_write_keeps_the_lines_in_the_order_of_their_records_across_row_groups(region_month_book, tmp_path):
    """DuckDB sorts the lines on several threads and writes them in row groups of 122,880
    (write_lines), the ids as the numbers they are. 300,000 persons whose
    ids are not in file order (a permutation) give 300,000 capitation lines, which must
    come out in the persons' file order, each paid to the person's listing clinic."""
    import duckdb

    data = tmp_path / "data"
    data.mkdir()
    con = duckdb.connect()
    persons = 300_000
    con.execute(f"""COPY (SELECT CAST(c AS INTEGER) AS clinic_id, CAST(c AS INTEGER) AS koncern_id
                          FROM range(1, 51) AS t(c)) TO '{data / 'clinics.parquet'}' (FORMAT parquet)""")
    con.execute(f"""COPY (SELECT CAST(p * 7919 % {persons} + 1 AS BIGINT) AS person_id, DATE '1970-06-01' AS birth_date,
                                 CAST(1 + p * 31 % 50 AS INTEGER) AS listed_clinic,
                                 CAST(1 AS DECIMAL(6, 4)) AS acg_weight, FALSE AS in_home_care
                          FROM range(0, {persons}) AS t(p)) TO '{data / 'persons.parquet'}' (FORMAT parquet)""")
    con.execute(f"""COPY (SELECT CAST(1 AS BIGINT) AS visit_id, CAST(1 AS BIGINT) AS person_id, CAST(1 AS INTEGER) AS clinic_id,
                                 DATE '2021-09-01' AS date, 'physical' AS kind, 'doctor' AS profession)
                    TO '{data / 'visits.parquet'}' (FORMAT parquet)""")
    out = tmp_path / "out.parquet"
    settle(region_month_book, "2021-09", data, out)
    (groups,) = con.execute(f"SELECT count(DISTINCT row_group_id) FROM parquet_metadata('{out}')").fetchone()
    assert groups >= 3
    written = con.execute(f"SELECT record_id, clinic_id FROM read_parquet('{out}') "
                          "WHERE component = 'kapitering'").fetchall()
    given = [(p * 7919 % persons + 1, 1 + p * 31 % 50) for p in range(persons)]
    assert written == given


def test_text_payees_beyond_the_enum_bound_are_carried_as_text_with_the_same_lines(books, demo, region_month_book,
                                                                                  tmp_path, monkeypatch):
    """A straight write carries text payees (hlv-2021's HSA ids) as an enum of the clinics'
    ids (line_types) up to MAX_PAYEE_ENUM of them, and as text beyond: the files are the
    same either way. Whole-number payees are carried as the numbers they are, never an enum."""
    import duckdb

    from rulelang.columnar import settlement

    enums = []
    real = settlement.line_types

    def recorded(*args, **kwargs):
        enums.append(kwargs.get("payees"))
        return real(*args, **kwargs)

    monkeypatch.setattr(settlement, "line_types", recorded)
    book = books["stockholm/hlv-2021"]
    settle(book, "2021-09", demo, tmp_path / "enum.parquet")
    clinics = len(enums[-1])
    assert clinics > 1
    monkeypatch.setattr(settlement, "MAX_PAYEE_ENUM", clinics - 1)
    settle(book, "2021-09", demo, tmp_path / "text.parquet")
    assert enums[-1] is None
    rows = [duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path / name}')").fetchall()
            for name in ("enum.parquet", "text.parquet")]
    assert len(rows[0]) > 100 and rows[0] == rows[1]
    assert csv_rows(tmp_path / "enum-totals.csv") == csv_rows(tmp_path / "text-totals.csv")
    settle(region_month_book, "2021-09", write_region_month_parquet(tmp_path / "data"), tmp_path / "numbers.parquet")
    assert enums[-1] is None


def test_record_ids_are_carried_as_numbers_only_where_every_line_has_a_whole_number_key(region_month_book, books):
    """Lowering.record_ids_are_numbers: the region-month rulebook's lines come from persons
    and visits keyed by integers; hlv-2021's from tables keyed by text."""
    from rulelang.columnar.lowering import Lowering

    first, last = month_bounds("2021-09")
    assert Lowering(region_month_book.checked, region_month_book.program, first, last).record_ids_are_numbers()
    hlv = books["stockholm/hlv-2021"]
    assert not Lowering(hlv.checked, hlv.program, first, last).record_ids_are_numbers()


# ------------------------------------------------------------------------ repeated ids counted in an array

@pytest.mark.parametrize("spread", [1, 1000])
def test_a_repeated_whole_number_id_is_found_whether_the_ids_fill_their_range_or_not(region_month_book, tmp_path,
                                                                                       spread):
    """Person ids 1 to 5000 are counted in a bit array indexed by the id
    (Intake.distinct_ids); ids 1000 to 5,000,000 in a hash table (they fill a thousandth of their range): either way the later record of a
    repeated person id and of a repeated visit id is rejected (the 5001st person and the
    31st visit given) and the first is settled."""
    people = [{"person_id": p * spread, "birth_date": "1980-02-01", "listed_clinic": 1, "acg_weight": "1",
               "in_home_care": False} for p in range(1, 5001)]
    repeated_person = {**people[6], "birth_date": "1950-05-05"}  # id 7 again, born earlier
    visits = [{"visit_id": v * spread, "person_id": spread, "clinic_id": 1, "date": "2021-09-10",
               "kind": "physical", "profession": "doctor"} for v in range(1, 31)]
    repeated_visit = {**visits[2], "profession": "nurse"}  # id 3 again
    region = {"clinics": [{"clinic_id": 1, "koncern_id": 1}], "persons": [*people, repeated_person],
              "visits": [*visits, repeated_visit]}
    settled = settle(region_month_book, "2021-09", write_region(region, tmp_path), tmp_path / "out.csv")
    rejected = [(row[0], row[1], row[3], row[4]) for row in csv_rows(tmp_path / "out-rejected.csv")]
    assert rejected == [("persons", str(7 * spread), "5001", f"two persons records have the id {7 * spread}"),
                        ("visits", str(3 * spread), "31", f"two visits records have the id {3 * spread}")]
    lines = csv_rows(tmp_path / "out.csv")
    capitation = [row for row in lines if row[2] == "kapitering"]
    # The first person 7 (born 1980: 41 on 2021-09-01, 80 kr × weight 1) is the one settled.
    assert [row[3] for row in capitation if row[5] == str(7 * spread)] == ["80.00"]
    # The first visit 3 (physical, doctor: 200 kr) is the one settled, once.
    assert [row[3] for row in lines if row[2] == "besöksavgift_till_mottagningen" and row[5] == str(3 * spread)] \
        == ["200.00"]
    counts = {c.table: (c.read, c.used, c.rejected) for c in settled.counts}
    assert counts["persons"] == (5001, 5000, 1) and counts["visits"] == (31, 30, 1)


@pytest.mark.parametrize("spread", [1, 1000])
def test_a_reference_is_checked_in_a_bit_array_or_a_join_with_the_same_reasons(region_month_book, tmp_path,
                                                                                 monkeypatch, spread):
    """Person ids 1 to 5000 (but 4000) fill their range: a visit's person is looked up in a
    bit array of the usable ids (Intake.found_in_an_array); ids a thousand apart are joined.
    Either way a visit naming an id below the range, above it, in a gap, or a person refused
    for its own error is rejected with the same reason, and the others are settled."""
    from rulelang.columnar.intake import Intake

    arrays = []
    real = Intake.found_in_an_array

    def recorded(self, target, key, given):
        found = real(self, target, key, given)
        arrays.append((target, found is not None))
        return found

    monkeypatch.setattr(Intake, "found_in_an_array", recorded)
    people = [{"person_id": p * spread, "birth_date": "1980-02-01", "listed_clinic": 1,
               "acg_weight": "x" if p == 9 else "1", "in_home_care": False} for p in range(1, 5001) if p != 4000]

    def visit(number: int, person: int) -> dict:
        return {"visit_id": number, "person_id": person, "clinic_id": 1, "date": "2021-09-10", "kind": "physical",
                "profession": "doctor"}

    visits = [visit(1, 0), visit(2, 5001 * spread), visit(3, 4000 * spread), visit(4, 9 * spread),
              visit(5, 5000 * spread), visit(6, spread)]
    region = {"clinics": [{"clinic_id": 1, "koncern_id": 1}], "persons": people, "visits": visits}
    settle(region_month_book, "2021-09", write_region(region, tmp_path), tmp_path / "out.csv")
    assert ("persons", spread == 1) in arrays and ("clinics", True) in arrays
    rejected = {(row[0], row[1]): row[4] for row in csv_rows(tmp_path / "out-rejected.csv")}
    assert rejected.pop(("persons", str(9 * spread))).startswith("acg_weight: ")
    assert rejected == {("visits", "1"): "person_id '0' is not a record of persons",
                        ("visits", "2"): f"person_id '{5001 * spread}' is not a record of persons",
                        ("visits", "3"): f"person_id '{4000 * spread}' is not a record of persons",
                        ("visits", "4"): f"person_id '{9 * spread}' names a persons record that has errors"}
    fees = [row[5] for row in csv_rows(tmp_path / "out.csv") if row[2] == "besöksavgift_till_mottagningen"]
    assert fees == ["5", "6"]


def test_ids_are_counted_in_a_bit_array_only_when_they_fill_most_of_their_range(region_month_book):
    """Different ids are counted as the bits set in a bit array indexed by the id when they
    are whole numbers whose range is at most DENSE_IDS times the ids and at most
    2^ARRAY_BITS places (Intake.distinct_ids), else in a hash table; the count is the same
    either way, repeated ids counted once."""
    import duckdb

    from rulelang.columnar.intake import ARRAY_BITS, DENSE_IDS, Intake

    con = duckdb.connect()
    intake = Intake(con, region_month_book.checked, {})

    def counted(ids_sql: str, key: str = "person_id") -> tuple:
        con.execute(f"CREATE OR REPLACE TEMP TABLE stage AS SELECT {key} FROM ({ids_sql})")
        sql = intake.distinct_ids("persons", "stage", key)
        return "bit_count" in sql, con.execute(sql).fetchone()[0]

    # 100,000 ids from 1, five of them given twice: 100,000 different ids.
    assert counted("SELECT range AS person_id FROM range(1, 100001) UNION ALL "
                   "SELECT range AS person_id FROM range(1, 6)") == (True, 100_000)
    # The same ids spread DENSE_IDS apart still fill a quarter of their range.
    assert counted(f"SELECT range * {DENSE_IDS} AS person_id FROM range(1, 100001)") == (True, 100_000)
    # One step wider, or a few ids far apart: a hash table.
    assert counted(f"SELECT range * {DENSE_IDS + 1} AS person_id FROM range(1, 100001)") == (False, 100_000)
    assert counted("SELECT * FROM (VALUES (1), (5000000), (1)) AS t(person_id)") == (False, 2)
    # A range past 2^ARRAY_BITS places, however full: no array.
    wide = (1 << ARRAY_BITS) // 3 + 10
    assert counted(f"SELECT range * 3 AS person_id FROM range({wide})") == (False, wide)
    # No ids at all; and ids that are not whole numbers (hlv-2021's persons have text ids).
    assert counted("SELECT CAST(NULL AS BIGINT) AS person_id") == (False, 0)
    intake = Intake(con, rulelang.load("stockholm/hlv-2021").checked, {})
    assert counted("SELECT CAST(range AS VARCHAR) AS person_id FROM range(1, 1001)") == (False, 1000)


@pytest.mark.parametrize("refused", [False, True])
def test_the_array_that_counted_the_ids_checks_references_while_no_record_is_refused(region_month_book, tmp_path,
                                                                                       monkeypatch, refused):
    """The bit array that counted the persons' ids (Intake.distinct_ids) is the one a visit's
    person is looked up in while every person is usable; once one is refused, the array is
    made again from the usable persons. Either way the references get the same reasons."""
    from rulelang.columnar.intake import Intake

    made = []
    real = Intake.id_array

    def recorded(self, target, key):
        reused = target in self.stage_arrays and target not in self.refused
        made.append((target, reused))
        return real(self, target, key)

    monkeypatch.setattr(Intake, "id_array", recorded)
    people = [{"person_id": p, "birth_date": "1980-02-01", "listed_clinic": 1,
               "acg_weight": "x" if refused and p == 9 else "1", "in_home_care": False}
              for p in range(1, 5001) if p != 4000]
    visits = [{"visit_id": v, "person_id": person, "clinic_id": 1, "date": "2021-09-10", "kind": "physical",
               "profession": "doctor"} for v, person in enumerate([0, 5001, 4000, 9, 5000, 1], start=1)]
    region = {"clinics": [{"clinic_id": 1, "koncern_id": 1}], "persons": people, "visits": visits}
    settle(region_month_book, "2021-09", write_region(region, tmp_path), tmp_path / "out.csv")
    assert ("persons", not refused) in made
    rejected = {(row[0], row[1]): row[4] for row in csv_rows(tmp_path / "out-rejected.csv")}
    expected = {("visits", "1"): "person_id '0' is not a record of persons",
                ("visits", "2"): "person_id '5001' is not a record of persons",
                ("visits", "3"): "person_id '4000' is not a record of persons"}
    if refused:
        assert rejected.pop(("persons", "9")).startswith("acg_weight: ")
        expected[("visits", "4")] = "person_id '9' names a persons record that has errors"
    assert rejected == expected
    fees = [row[5] for row in csv_rows(tmp_path / "out.csv") if row[2] == "besöksavgift_till_mottagningen"]
    assert fees == (["5", "6"] if refused else ["4", "5", "6"])


AGE_BANDS = '''
table clinics
  key clinic_id
  field clinic_id: text

table persons
  key person_id
  field person_id: text
  field birth_date: date
  field listed_clinic: clinics
  field weight: decimal
  field home_care: boolean

parameter per_age: money by integer
  value from 2021-01-01 status illustrative cite "x"
    row 0 to 5: 120 kr
    row 6 to 64: 80 kr
    row 65 and over: 150 kr

output capitation: money per persons paid to listed_clinic

rule at_home defines capitation
  when home_care
  then per_age[age(birth_date, first_day_of_month(evaluation_date))] * weight * 110 % rounded half up to öre

rule not_at_home defines capitation
  when not home_care
  then if weight > 1 then per_age[age(birth_date, first_day_of_month(evaluation_date))] * weight rounded half up to öre
       else per_age[age(birth_date, first_day_of_month(evaluation_date))]
'''


def test_a_lookup_key_and_a_rounded_product_are_worked_out_once_a_record(tmp_path):
    """DuckDB shares no subexpression under a CASE, so the plan binds an age used as a lookup
    key, and the product under a rounding, to a column of their own (Lowering.bound): once
    per query, whichever rule or branch reads them, with the interpreter's amounts."""
    import datetime as dt

    from rulebook_factory import load

    from rulelang.columnar.lowering import Lowering

    book = load(tmp_path, AGE_BANDS)
    sql = Lowering(book.checked, book.program, dt.date(2021, 9, 1), dt.date(2021, 9, 30)).line_items_sql()
    # One age for both rules and the branch (the year of birth read once), and one column for
    # each of the two rounded products.
    assert sql.count('year(t."birth_date")') == 1
    assert sql.count('* CAST(t."weight" AS HUGEINT)') == 2
    persons = [  # (id, born, weight, home care): ages on 2021-09-01
        ("P1", "1950-03-15", "1.2", True),  # 71: 150 kr × 1.2 × 110 % = 198.00 kr
        ("P2", "2018-09-02", "0.75", False),  # 2 (3 the next day): 120 kr, weight not above 1
        ("P3", "1990-01-01", "1.333333", False),  # 31: 80 kr × 1.333333 = 106.66664 → 106.67 kr
        ("P4", "2015-09-01", "1.5", True),  # 6 that day: 80 kr × 1.5 × 110 % = 132.00 kr
        ("P5", "1940-12-31", "0.123457", True),  # 80: 150 kr × 0.123457 × 110 % = 20.370405 → 20.37 kr
    ]
    region = {"clinics": [{"clinic_id": "A"}],
              "persons": [{"person_id": p, "birth_date": born, "listed_clinic": "A", "weight": weight,
                           "home_care": home} for p, born, weight, home in persons]}
    (tmp_path / "data").mkdir()
    out = tmp_path / "out.csv"
    settle(book, "2021-09", write_region(region, tmp_path / "data"), out)
    rows = csv_rows(out)
    assert [(row[5], row[3]) for row in rows] == [("P1", "198.00"), ("P2", "120.00"), ("P3", "106.67"),
                                                  ("P4", "132.00"), ("P5", "20.37")]
    assert rows == interpreter_rows(book, region, "2021-09")


FOLLOW_UPS = '''
table clinics
  key clinic_id
  field clinic_id: text

table visits
  key visit_id
  dated by date
  field visit_id: text
  field clinic_id: clinics
  field date: date
  field follows: visits optional

parameter fee: money
  value 100 kr from 2021-01-01 until 2021-08-31 status illustrative cite "x"
  value 150 kr from 2021-09-01 until 2021-09-14 status illustrative cite "x"
  value 200 kr from 2021-09-15 status illustrative cite "x"

definition own_fee per visits = fee

output payment: money per visits paid to clinic_id

rule first_visit defines payment
  when follows is none
  then own_fee

rule follow_up defines payment
  when follows is not none
  then own_fee + (follows.own_fee otherwise 0 kr)
'''


def test_a_record_read_on_its_own_date_outside_the_month_finds_the_value_then_in_force(tmp_path):
    """A visit reads the fee of the visit it follows on that visit's own date, which may lie
    before the month: the value in force then is found, as the interpreter finds it (the
    plan once left out values not in force in the month, and a follow-up of an August visit
    lost its August fee). A value in force the whole month is no test of each visit's date;
    one that changes within it is."""
    import datetime as dt

    from rulebook_factory import load

    from rulelang.columnar.lowering import Lowering

    book = load(tmp_path, FOLLOW_UPS)
    region = {"clinics": [{"clinic_id": "A"}], "visits": [
        {"visit_id": "V0", "clinic_id": "A", "date": "2021-08-20", "follows": None},
        {"visit_id": "V1", "clinic_id": "A", "date": "2021-09-02", "follows": "V0"},
        {"visit_id": "V2", "clinic_id": "A", "date": "2021-09-20", "follows": "V1"},
        {"visit_id": "V3", "clinic_id": "A", "date": "2021-09-16", "follows": None}]}
    (tmp_path / "data").mkdir()
    out = tmp_path / "out.csv"
    settle(book, "2021-09", write_region(region, tmp_path / "data"), out)
    rows = csv_rows(out)
    # V1: 150 kr on 2021-09-02 and V0's 100 kr of 2021-08-20; V2: 200 kr on 2021-09-20 and
    # V1's 150 kr; V3: 200 kr on 2021-09-16. V0 lies before the month: no line of its own.
    assert [(row[5], row[3]) for row in rows] == [("V1", "250.00"), ("V2", "350.00"), ("V3", "200.00")]
    assert rows == interpreter_rows(book, region, "2021-09")
    september = (dt.date(2021, 9, 1), dt.date(2021, 9, 30))
    sql = Lowering(book.checked, book.program, *september).line_items_sql()
    assert "t.__date >= DATE '2021-09-15'" in sql  # the change within the month
    region_month = rulelang.load(str(REGION_MONTH))
    sql = Lowering(region_month.checked, region_month.program, *september).line_items_sql()
    assert "DATE '2020-01-01'" not in sql  # fees and rules in force since 2020: no test per visit


FOLLOW_UPS_AND_CLINIC_RATES = FOLLOW_UPS.replace('''table clinics
  key clinic_id
  field clinic_id: text
''', '''table clinics
  key clinic_id
  field clinic_id: text

parameter clinic_rate: money
  value 10 kr from 2021-01-01 until 2021-09-09 status illustrative cite "x"
  value 20 kr from 2021-09-10 status illustrative cite "x"

definition rate_of_the_day per clinics = clinic_rate
''').replace("then own_fee\n", "then own_fee + clinic_id.rate_of_the_day\n")


@st.composite
def follow_up_visits(draw) -> dict:
    """Visits from July to October, each following none or an earlier-listed visit."""
    import datetime as dt

    count = draw(st.integers(1, 12))
    visits = []
    for number in range(count):
        day = draw(st.dates(min_value=dt.date(2021, 7, 25), max_value=dt.date(2021, 10, 5)))
        follows = draw(st.one_of(st.none(), st.integers(0, number - 1))) if number else None
        visits.append({"visit_id": f"V{number}", "clinic_id": draw(st.sampled_from(["A", "B"])),
                       "date": day.isoformat(), "follows": None if follows is None else f"V{follows}"})
    return {"clinics": [{"clinic_id": "A"}, {"clinic_id": "B"}], "visits": visits}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(region=follow_up_visits())
def test_records_read_on_their_own_or_their_readers_dates_settle_as_the_interpreter_does(tmp_path_factory, region):
    """Visits of July to October, each perhaps following another (read on that visit's own
    date, inside or outside the month), and a clinic's rate read on each visit's date (a
    value that changes within the month): DuckDB gives the interpreter's lines."""
    from rulebook_factory import load

    assert "then own_fee + clinic_id.rate_of_the_day\n" in FOLLOW_UPS_AND_CLINIC_RATES
    directory = tmp_path_factory.mktemp("follow")
    book = load(directory, FOLLOW_UPS_AND_CLINIC_RATES)
    (directory / "data").mkdir()
    out = directory / "out.csv"
    settle(book, "2021-09", write_region(region, directory / "data"), out)
    assert csv_rows(out) == interpreter_rows(book, region, "2021-09")


RESOLVED = '''
table clinics
  key clinic_id
  field clinic_id: text

table persons
  key person_id
  field person_id: text
  field birth_date: date

table listings
  history of persons by person_id from listed_from until listed_to
  field person_id: persons
  field clinic_id: clinics
  field listed_from: date
  field listed_to: date optional

table visits
  key visit_id
  dated by date
  field visit_id: text
  field person_id: persons
  field clinic_id: clinics
  field date: date

parameter per_age: money by integer
  value from 2021-01-01 status illustrative cite "x"
    row 0 to 64: 80 kr
    row 65 and over: 150 kr

definition listed_at per persons = listings[person_id on last_day_of_month(evaluation_date)].clinic_id
definition visitor_listed_at per visits = listings[person_id on date].clinic_id

output capitation: money per persons default 0 kr paid to listed_at
output visit_fee: money per visits default 0 kr paid to clinic_id

rule listed defines capitation
  when listed_at is not none
  then per_age[age(birth_date, last_day_of_month(evaluation_date))]

rule another_clinics_patient defines visit_fee
  when visitor_listed_at is not none and not (visitor_listed_at = clinic_id)
  then per_age[age(person_id.birth_date, date)]
'''


def test_text_ids_are_joined_by_the_line_of_the_record_they_name(tmp_path):
    """A reference by a text id is resolved by the intake's check to the line of the record
    it names, and the plan joins on that line (a number) rather than on the text: a person's
    listings, a visit's person and listing. The record joined is the one the id names among
    the clean records: the first of two with one id, never a refused one."""
    import datetime as dt

    from rulebook_factory import load

    from rulelang.columnar.intake import resolved_references
    from rulelang.columnar.lowering import Lowering

    book = load(tmp_path, RESOLVED)
    assert resolved_references(book.checked) == {
        ("listings", "person_id"): "__row_person_id", ("listings", "clinic_id"): "__row_clinic_id",
        ("visits", "person_id"): "__row_person_id", ("visits", "clinic_id"): "__row_clinic_id"}
    sql = Lowering(book.checked, book.program, dt.date(2021, 9, 1), dt.date(2021, 9, 30)).line_items_sql()
    assert '."__row_person_id" = t.__line' in sql.replace('t."__line"', "t.__line")  # a person's listings
    assert '.__line = t."__row_person_id"' in sql  # a visit's person
    assert '."__row_person_id" = t."__row_person_id"' in sql  # a visit's listing
    region = {
        "clinics": [{"clinic_id": "A"}, {"clinic_id": "B"}],
        "persons": [{"person_id": "P1", "birth_date": "1950-05-01"},
                    {"person_id": "P2", "birth_date": "1990-01-01"},
                    {"person_id": "P1", "birth_date": "2000-01-01"},  # the id again: refused
                    {"person_id": "P3", "birth_date": "1960-13-01"}],  # no such date: refused
        "listings": [{"person_id": "P1", "clinic_id": "A", "listed_from": "2020-01-01", "listed_to": None},
                     {"person_id": "P2", "clinic_id": "B", "listed_from": "2019-01-01", "listed_to": "2021-09-10"},
                     {"person_id": "P2", "clinic_id": "A", "listed_from": "2021-09-11", "listed_to": None},
                     {"person_id": "P3", "clinic_id": "A", "listed_from": "2020-01-01", "listed_to": None}],
        "visits": [{"visit_id": "V1", "person_id": "P1", "clinic_id": "B", "date": "2021-09-03"},
                   {"visit_id": "V2", "person_id": "P2", "clinic_id": "A", "date": "2021-09-05"},
                   {"visit_id": "V3", "person_id": "P2", "clinic_id": "A", "date": "2021-09-20"},
                   {"visit_id": "V4", "person_id": "P3", "clinic_id": "B", "date": "2021-09-21"}]}
    (tmp_path / "data").mkdir()
    out = tmp_path / "out.csv"
    settle(book, "2021-09", write_region(region, tmp_path / "data"), out)
    rows = csv_rows(out)
    # Capitation on 2021-09-30: P1 (the first record, born 1950-05-01) is 71, listed at A:
    # 150 kr; P2 (31) is listed at A from 2021-09-11: 80 kr. Visit fees: V1, P1 at B while
    # listed at A, 71 on 2021-09-03: 150 kr to B; V2, P2 at A while listed at B (until
    # 2021-09-10), 31: 80 kr to A; V3, P2 at A where listed since 2021-09-11: no fee.
    assert sorted((row[2], row[5], row[0], row[3]) for row in rows) == [
        ("capitation", "P1", "A", "150.00"), ("capitation", "P2", "A", "80.00"),
        ("visit_fee", "V1", "B", "150.00"), ("visit_fee", "V2", "A", "80.00")]
    clean = {"clinics": region["clinics"], "persons": region["persons"][:2], "listings": region["listings"][:3],
             "visits": region["visits"][:3]}
    assert rows == interpreter_rows(book, clean, "2021-09")
    rejected = {(row[0], row[1]): row[4] for row in csv_rows(tmp_path / "out-rejected.csv")}
    assert rejected[("persons", "P1")] == "two persons records have the id P1"
    assert rejected[("listings", "#4")] == "person_id 'P3' names a persons record that has errors"
    assert rejected[("visits", "V4")] == "person_id 'P3' names a persons record that has errors"


def test_references_resolved_are_those_to_a_text_key_of_a_table_taken_in_before():
    """Whole-number ids are joined as they are (a number already; their references are
    checked against a bit array, which finds no line), and so is a reference to the table's
    own records or to one taken in after it."""
    from rulelang.columnar.intake import resolved_references, table_order

    for book in (rulelang.load(str(REGION_MONTH)), rulelang.load("stockholm/hlv-2021")):
        checked = book.checked
        order = table_order(checked)
        for (table, field), column in resolved_references(checked).items():
            target = checked.tables[table].fields[field][0].name
            key = checked.tables[target].decl.key
            assert column == f"__row_{field}"
            assert target != table and order.index(target) < order.index(table)
            assert checked.tables[target].fields[key][0].kind != "integer"
    assert not resolved_references(rulelang.load(str(REGION_MONTH)).checked)


def test_overlapping_history_rows_are_found_by_the_line_of_the_record_they_name(tmp_path):
    """The search for overlapping listings groups them by the line of the person they name
    (an array indexed by it, DuckDB's perfect hash aggregate, for that one statement): the
    later-starting of two listings of one person in force on one day is set aside, listings
    of different persons never meet, and the engine's setting is as it was afterwards."""
    import duckdb
    from rulebook_factory import load

    from rulelang.columnar.intake import Intake, find_sources

    book = load(tmp_path, RESOLVED)
    region = {"clinics": [{"clinic_id": "A"}, {"clinic_id": "B"}],
              "persons": [{"person_id": p, "birth_date": "1980-01-01"} for p in ("P1", "P2", "P3")],
              "listings": [
                  {"person_id": "P1", "clinic_id": "A", "listed_from": "2020-01-01", "listed_to": "2021-06-30"},
                  {"person_id": "P2", "clinic_id": "B", "listed_from": "2020-03-01", "listed_to": None},
                  {"person_id": "P1", "clinic_id": "B", "listed_from": "2021-06-30", "listed_to": None},  # meets #1
                  {"person_id": "P3", "clinic_id": "A", "listed_from": "2021-01-01", "listed_to": None},
                  {"person_id": "P3", "clinic_id": "B", "listed_from": "2021-07-01", "listed_to": None}],
              "visits": []}
    data = write_region(region, tmp_path)
    con = duckdb.connect()
    (before,) = con.execute("SELECT current_setting('perfect_ht_threshold')").fetchone()
    Intake(con, book.checked, find_sources(data, book.checked)).run()
    assert con.execute("SELECT current_setting('perfect_ht_threshold')").fetchone() == (before,)
    assert con.execute("SELECT record_id, reason FROM rejected ORDER BY record_id").fetchall() == [
        ("#3", "listings of person_id 'P1' overlap: #1 and #3 are both in force on 2021-06-30"),
        ("#5", "listings of person_id 'P3' overlap: #4 and #5 are both in force on 2021-07-01")]
    assert con.execute("SELECT __line, person_id, __row_person_id FROM listings ORDER BY __line").fetchall() == [
        (1, "P1", 1), (2, "P2", 2), (4, "P3", 3)]


def test_text_a_parquet_file_keeps_as_a_dictionary_is_read_as_stored_with_the_same_values(demo, tmp_path):
    """Weights, sex and a visit's kinds repeat, so a Parquet writer keeps each as a
    dictionary of its different values; the intake reads those as stored
    (Intake.dictionary_texts, Intake.stored_value), and a file that keeps every value plain
    row by row. Both give the same typed records and the same refusals, spaces around a
    value, a decimal comma, too many decimals and an unknown kind included."""
    import duckdb

    from rulelang.columnar.intake import Intake, find_sources

    book = rulelang.load("stockholm/hlv-2021")
    con = duckdb.connect()
    for table in ("clinics", "persons", "listings", "visits"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{demo / (table + '.parquet')}')")
    con.execute("""INSERT INTO persons VALUES
        ('P-SPACED', DATE '1980-05-05', ' F', ' 1.25', '1.00 ', false, false),
        ('P-NBSP', DATE '1980-05-05', 'M', '  1.5 ', ' 1.5', false, false),
        ('P-COMMA', DATE '1980-05-05', 'F', '1,25', '1.00', false, false),
        ('P-PLACES', DATE '1980-05-05', 'f', '1.1234567', '+2', false, false),
        ('P-EMPTY', DATE '1980-05-05', 'F', '  ', '', false, false)""")
    con.execute("""INSERT INTO visits VALUES
        ('V-SPACED', 'P00000005', 'HLM001', DATE '2021-09-03', ' physical ', 'clinic', 'general', 'doctor'),
        ('V-ODD', 'P00000005', 'HLM001', DATE '2021-09-04', 'telepathy', 'clinic', ' general', 'doctor ')""")
    intakes = {}
    for stored, options in (("dictionary", ""), ("plain", ", DICTIONARY_SIZE_LIMIT 0")):
        directory = tmp_path / stored
        directory.mkdir()
        for table in ("clinics", "persons", "listings", "visits"):
            con.execute(f"COPY {table} TO '{directory / (table + '.parquet')}' (FORMAT parquet{options})")
        db = duckdb.connect()
        intake = Intake(db, book.checked, find_sources(directory, book.checked), month_bounds("2021-09"))
        intake.run()
        typed = {table: db.execute(f"SELECT * EXCLUDE (__id) FROM {table} ORDER BY __line").fetchall()
                 for table in ("persons", "visits")}
        refused = db.execute("SELECT \"table\", record_id, line, reason, data FROM rejected "
                             "ORDER BY \"table\", record_id").fetchall()
        intakes[stored] = (intake.stored, typed, refused)
    assert intakes["dictionary"][0] == {("persons", "sex"), ("persons", "acg_weight"), ("persons", "cni"),
                                        ("visits", "mode"), ("visits", "place"), ("visits", "assignment"),
                                        ("visits", "profession")}
    assert intakes["plain"][0] == set()
    assert intakes["dictionary"][1:] == intakes["plain"][1:]
    typed, refused = intakes["dictionary"][1:]
    weights = {row[0]: row[3:5] for row in typed["persons"] if row[0].startswith("P-")}
    # In millionths. Spaces around a value go where a space begins or ends it (a no-break
    # space alone is kept, and makes no number); the weights are optional.
    assert weights == {"P-SPACED": (1_250_000, 1_000_000), "P-EMPTY": (None, None)}
    decimal = "expected a decimal number (at most 12 digits before the point and 6 after)"
    assert {(table, record): reason for table, record, _, reason, _ in refused if "-" in record} == {
        ("persons", "P-NBSP"): f"cni: {decimal}, got '\u00a01.5'",
        ("persons", "P-COMMA"): f"acg_weight: {decimal}, got '1,25'",
        ("persons", "P-PLACES"): f"sex: 'f' is not a sex (one of F, M); acg_weight: {decimal}, got '1.1234567'",
        ("visits", "V-ODD"): "mode: 'telepathy' is not a visit_mode (one of physical, video, phone); profession: "
                             "'doctor\u00a0' is not a profession (one of doctor, nurse, psychologist, therapist, other)"}
    assert [row[4:6] for row in typed["visits"] if row[0] == "V-SPACED"] == [("physical", "clinic")]


def test_only_a_column_chunk_of_one_dictionary_page_is_read_as_stored():
    """DuckDB reads a column chunk of one dictionary page as a dictionary, but a chunk of
    many pages (Arrow starts one every 20,000 rows) row by row for the most part, where the
    conversion as stored would cost more than the usual one (intake.one_dictionary_page)."""
    from rulelang.columnar.intake import one_dictionary_page

    dictionary = {"page_type": "DICTIONARY_PAGE", "encoding": "PLAIN", "count": 1}

    def data(encoding, count=1):
        return {"page_type": "DATA_PAGE", "encoding": encoding, "count": count}

    assert one_dictionary_page([dictionary, data("PLAIN_DICTIONARY")])  # DuckDB's writer
    assert one_dictionary_page([dictionary, data("RLE_DICTIONARY")])  # Arrow's, in one page
    assert not one_dictionary_page([dictionary, data("RLE_DICTIONARY", 50)])  # Arrow's, a million rows
    assert not one_dictionary_page([dictionary, data("RLE_DICTIONARY"), data("PLAIN")])  # fell back to plain
    assert not one_dictionary_page([data("PLAIN")])
    assert not one_dictionary_page([dictionary])
    assert not one_dictionary_page(None)  # a writer that keeps no page statistics


def test_columns_that_read_nothing_of_the_layer_before_share_its_layer():
    """DuckDB plans each layer of a chain anew (its `t.*`, its projections), so columns that
    join nothing and read nothing the last layer added are written into that layer: the
    hlv-2021 month is 34 layers, not 53, and planned in less time. No layer reads a column
    it adds itself: such a column waits for a layer of its own. (That the lines stay the
    interpreter's is held by the differential tests.)"""
    import datetime as dt
    import re

    from rulelang.columnar.lowering import Lowering

    book = rulelang.load("stockholm/hlv-2021")
    sql = Lowering(book.checked, book.program, dt.date(2021, 9, 1), dt.date(2021, 9, 30)).line_items_sql()
    layers = re.findall(r'"\w+__\d+" AS \(SELECT t\.\*, (.*?) FROM \w+ AS t', sql)
    assert 10 < len(layers) <= 40
    for select in layers:
        added = set(re.findall(r' AS "(\w+)"', select))
        assert not set(re.findall(r't\."(\w+)"', select)) & added
