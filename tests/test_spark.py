"""Settlement end to end on Apache Spark (local mode) against DuckDB: Parquet input read,
typed and checked by Spark, rejected records, line items and totals written by Spark, the
same bytes as DuckDB's."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from spark_support import needs_spark

import rulelang
from rulelang.columnar.settlement import SettlementError, settle
from rulelang.interfaces.demo import write_demo_region

pytestmark = needs_spark

MONTH = "2021-09"


@pytest.fixture(scope="module")
def book():
    return rulelang.load("stockholm/hlv-2021")


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A demo region as Parquet with records of every kind the intake refuses: a value that
    is not of its type, a missing field, an id given twice, an id naming no record, a
    reference to a refused record, overlapping listings, a visit of an unknown kind."""
    clean = tmp_path_factory.mktemp("clean")
    write_demo_region(clean, persons=1500, seed=11)
    directory = tmp_path_factory.mktemp("damaged")
    con = duckdb.connect()
    for table in ("clinics", "persons", "listings", "visits"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{clean / (table + '.parquet')}')")
    con.execute("""INSERT INTO persons VALUES
        ('P-BAD-WEIGHT', DATE '1980-05-05', 'F', '1,25', '1.00', false, false),  -- decimal comma
        ('P-NO-BIRTH', NULL, 'M', '1.00', '1.00', false, false),                -- missing field
        ('P00000003', DATE '1990-01-01', 'F', '1.00', '1.00', false, false)     -- id given twice""")
    con.execute("""INSERT INTO listings VALUES
        ('P-NOBODY', 'HLM001', DATE '2020-01-01', NULL),                          -- names no person
        ('P-BAD-WEIGHT', 'HLM001', DATE '2020-01-01', NULL),                      -- names a refused one
        ('P00000004', 'HLM002', DATE '2021-09-10', NULL)                          -- overlaps the first""")
    con.execute("""INSERT INTO visits VALUES
        ('V-BAD-MODE', 'P00000005', 'HLM001', DATE '2021-09-03', 'telepathy', 'clinic', 'general', 'doctor'),
        ('V-NO-CLINIC', 'P00000005', 'NOWHERE', DATE '2021-09-04', 'visit', 'clinic', 'general', 'doctor'),
        ('=cmd|calc', 'P00000005', 'HLM001', DATE '2021-09-05', 'visit', 'clinic', 'general', 'doctor')""")
    for table in ("clinics", "persons", "listings", "visits"):
        con.execute(f"COPY {table} TO '{directory / (table + '.parquet')}' (FORMAT parquet)")
    return directory


def _settled(book, data, directory, name, engine):
    out = directory / f"{name}.csv"
    result = settle(book, MONTH, data, out, engine=engine)
    return result, [out, out.with_name(f"{name}-totals.csv"), out.with_name(f"{name}-rejected.csv")]


def test_spark_checks_and_settles_parquet_input_as_duckdb_does(book, damaged, tmp_path):
    """Line items, totals and rejected records: the same bytes from both engines."""
    duck, duck_files = _settled(book, damaged, tmp_path, "duck", "duckdb")
    spark, spark_files = _settled(book, damaged, tmp_path, "spark", "spark")
    for ours, theirs in zip(duck_files, spark_files):
        assert ours.read_bytes() == theirs.read_bytes(), ours.name
    rejected = spark_files[2].read_text(encoding="utf-8")
    for record in ("P-BAD-WEIGHT", "P-NO-BIRTH", "P00000003", "P-NOBODY", "V-BAD-MODE", "V-NO-CLINIC"):
        assert record in rejected
    assert "names a persons record that has errors" in rejected
    assert "overlap" in rejected
    assert spark.counts == duck.counts  # read, used, rejected, other months: every record accounted for
    assert spark.totals == duck.totals and spark.components == duck.components and spark.bases == duck.bases


def test_spark_writes_the_same_parquet_line_items(book, damaged, tmp_path):
    settle(book, MONTH, damaged, tmp_path / "duck.parquet")
    settle(book, MONTH, damaged, tmp_path / "spark.parquet", engine="spark")
    con = duckdb.connect()
    ours = con.execute(f"SELECT * FROM read_parquet('{tmp_path / 'duck.parquet'}')").fetchall()
    theirs = con.execute(f"SELECT * FROM read_parquet('{tmp_path / 'spark.parquet'}')").fetchall()
    assert len(ours) > 1000 and ours == theirs
    # Spark wrote into scratch space; only the output set (and its lock) is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "duck-rejected.csv", "duck-totals.csv", "duck.parquet", "spark-rejected.csv", "spark-totals.csv", "spark.parquet"]


def test_an_unreadable_parquet_file_is_named_on_spark(book, damaged, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(damaged, data)
    (data / "visits.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(SettlementError) as raised:
        settle(book, MONTH, data, tmp_path / "out.csv", engine="spark")
    assert "visits.parquet" in str(raised.value)
    assert not (tmp_path / "out.csv").exists()


def test_a_payee_named_by_no_table_has_its_totals_row_on_spark_too(tmp_path):
    """Paid to a text field: the payees are those the lines name, one with only zero
    amounts included (a row of 0.00), on both engines."""
    import json

    from rulebook_factory import write_rulebook

    body = ("table persons\n  key person_id\n  field person_id: text\n  field clinic_id: text\n"
            "  field kod: integer\n")
    outputs = "output o: money per persons default 0 kr paid to clinic_id\nrule r defines o when kod = 1 then 5 kr\n"
    book = rulelang.load(str(write_rulebook(tmp_path, body + outputs, in_force="2021-01-01")))
    data = tmp_path / "persons.json"
    data.write_text(json.dumps({"persons": [{"person_id": "P1", "clinic_id": "A", "kod": 1},
                                            {"person_id": "P2", "clinic_id": "B", "kod": 2}]}), encoding="utf-8")
    settle(book, MONTH, data, tmp_path / "duck.csv")
    settle(book, MONTH, data, tmp_path / "spark.csv", engine="spark")
    totals = (tmp_path / "spark-totals.csv").read_text(encoding="utf-8")
    assert totals == (tmp_path / "duck-totals.csv").read_text(encoding="utf-8")
    assert "B,2021-09,o,0.00,0" in totals


def test_payees_of_a_table_give_the_same_files_on_spark_as_duckdbs_straight_write(tmp_path):
    """The region-month rulebook pays a clinics table's records: DuckDB writes the lines
    straight from the plan, Spark makes a table of them first. Typed Parquet input with a
    visit of another month, one naming no person and an id given twice: the same line items
    (Parquet and CSV), totals and rejected records from both."""
    from regions import REGION_MONTH, write_region_month_parquet

    region_month = rulelang.load(str(REGION_MONTH))
    data = write_region_month_parquet(tmp_path / "data")
    con = duckdb.connect()
    for suffix in ("csv", "parquet"):
        duck = settle(region_month, MONTH, data, tmp_path / f"duck.{suffix}")
        spark = settle(region_month, MONTH, data, tmp_path / f"spark.{suffix}", engine="spark")
        assert (duck.totals, duck.components, duck.bases, duck.counts) == (spark.totals, spark.components, spark.bases, spark.counts)
        for name in ("-totals.csv", "-rejected.csv") + ((".csv",) if suffix == "csv" else ()):
            assert (tmp_path / f"duck{name}").read_bytes() == (tmp_path / f"spark{name}").read_bytes(), name
    ours = con.execute(f"SELECT * FROM read_parquet('{tmp_path / 'duck.parquet'}')").fetchall()
    assert len(ours) > 800 and ours == con.execute(f"SELECT * FROM read_parquet('{tmp_path / 'spark.parquet'}')").fetchall()
    rejected = (tmp_path / "duck-rejected.csv").read_text(encoding="utf-8")
    assert "is not a record of persons" in rejected and "two visits records have the id 5010" in rejected


def test_whole_number_ids_are_written_as_numbers_by_spark_as_by_duckdb(tmp_path):
    """Spark writes the line items from a table of lines whose ids are text, and makes
    whole-number ids BIGINTs for Parquet (settlement.line_ids), a clinic-level line's
    record NULL: the same typed rows as DuckDB's straight write, and the same CSV."""
    from rulebook_factory import write_integer_clinics

    book, data = write_integer_clinics(tmp_path)
    con = duckdb.connect()
    rows = {}
    for engine in ("duckdb", "spark"):
        settle(book, MONTH, data, tmp_path / engine / "lines.parquet", engine=engine)
        settle(book, MONTH, data, tmp_path / engine / "lines.csv", engine=engine)
        rows[engine] = con.execute(f"SELECT clinic_id, component, CAST(amount AS VARCHAR), record_id "
                                   f"FROM read_parquet('{tmp_path / engine / 'lines.parquet'}')").fetchall()
    assert rows["spark"] == rows["duckdb"] == [(10, "ersättning", "5.00", 100), (9, "ersättning", "5.00", 7),
                                               (9, "grundbelopp", "100.00", None)]
    assert (tmp_path / "spark" / "lines.csv").read_bytes() == (tmp_path / "duckdb" / "lines.csv").read_bytes()


def test_local_spark_leaves_nothing_in_the_working_directory(tmp_path):
    """Spark makes its warehouse directory when its catalog starts; rulelang keeps no tables
    there, so local mode puts it in a temporary directory of the run, not in the user's."""
    import subprocess
    import sys

    data, work = tmp_path / "region", tmp_path / "work"
    write_demo_region(data, persons=300, seed=5)
    work.mkdir()
    done = subprocess.run([sys.executable, "-m", "rulelang", "settle", "stockholm/hlv-2021", "--month", MONTH,
                           "--data", str(data), "--out", str(tmp_path / "out" / "lines.parquet"), "--engine", "spark"],
                          cwd=work, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "lines.parquet").exists()
    assert list(work.iterdir()) == []
