"""Monthly settlement of a whole region: intake, line items on a columnar engine, output.

The intake (`intake.py`) reads the tables and sets aside every record that cannot be used,
with its reason; the rest is settled by the lowered rule plan (`lowering.py`) on DuckDB, or
on Spark. Output appears whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

import attrs

from .api import Rulebook
from .diagnostics import DataError
from .explanation import BASIS_ORDER
from .intake import Intake, TableCount, find_sources
from .lowering import Lowering, pays_itself
from .outputset import OutputSet, scratch_directory
from .progress import ProgressReport
from .sql import quote, text_literal
from .values import AMOUNT_TOO_LARGE

LINE_COLUMNS = ("clinic_id", "month", "component", "amount", "provision", "record_id", "basis")
MEMORY_LIMIT = "2500MB"  # DuckDB's share; RULELANG_MEMORY_LIMIT overrides it


class SettlementError(Exception):
    """The settlement cannot run: unreadable input, or a rulebook that fails on the data."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    match = re.fullmatch(r"(\d{4})-(\d{2})", month or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise SettlementError(f"--month must be YYYY-MM, not {month!r}")
    first = dt.date(int(match.group(1)), int(match.group(2)), 1)
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return first, last


@attrs.define
class Settlement:
    """The outcome of one run: where the files are, and the counts and totals to report."""

    rulebook: str
    version: str
    month: str
    engine: str
    out: Path
    rejected_out: Path
    counts: list
    totals: list  # (clinic_id, amount in öre, lines)
    components: list  # (component, amount in öre, lines)
    lines: int
    seconds: float
    phases: dict = attrs.Factory(dict)  # phase → seconds: intake, rules, output
    bases: list = attrs.Factory(list)  # (basis or "", amount in öre, lines): how firm the money is
    warnings: list = attrs.Factory(list)  # the rulebook's warnings that hold for this input
    totals_out: Optional[Path] = None

    def to_dict(self) -> dict:
        from .values import format_money
        return {
            "rulebook": {"id": self.rulebook, "version": self.version},
            "month": self.month, "engine": self.engine,
            "output": str(self.out), "totals_output": str(self.totals_out),
            "rejected_output": str(self.rejected_out),
            "records": [attrs.asdict(c) for c in self.counts],
            "lines": self.lines,
            "components": [{"component": c, "amount": format_money(a), "lines": n} for c, a, n in self.components],
            "clinics": [{"clinic_id": c, "amount": format_money(a), "lines": n} for c, a, n in self.totals],
            "total": format_money(sum(a for _, a, _ in self.totals)),
            "bases": [{"basis": b or None, "amount": format_money(a), "lines": n} for b, a, n in self.bases],
            "warnings": [{"warning": w.name, "message": w.message, "provision": w.provision, "source": w.source}
                         for w in self.warnings],
            "seconds": round(self.seconds, 3),
            "phases": {name: round(seconds, 3) for name, seconds in self.phases.items()},
        }


# ------------------------------------------------------------------------ engines


# Of the rows the rules give (one per record and component), only those that pay something
# or went wrong matter. Spark filters before sending rows back; DuckDB keeps every row in
# `lines` and filters when reading it, since a filter on the amount would be pushed down
# into the rule layers and evaluate every rule twice.
WORTH_KEEPING = "amount <> 0 OR amount IS NULL OR error IS NOT NULL"


def collect_lines(con, rows: str, provisions: list, tables: list) -> None:
    """The table `lines`: the rows of the rules, with each line's provision. Component and
    provision are enums (the provision's text is long and repeats on millions of lines), in
    text order, so that sorting by them sorts by their text. Where a row went wrong, the
    problem names its source record."""
    components = sorted({component for component, _, _ in provisions})
    texts = sorted({text for _, _, text in provisions})
    con.execute(f"CREATE TYPE component_name AS ENUM ({', '.join(text_literal(c) for c in components)})")
    con.execute(f"CREATE TYPE provision_text AS ENUM ({', '.join(text_literal(t) for t in texts)})")
    con.execute(f"CREATE TYPE basis_status AS ENUM ({', '.join(text_literal(b) for b in ('', *BASIS_ORDER))})")
    con.execute("CREATE TEMP TABLE provisions (component VARCHAR, decided INTEGER, provision provision_text)")
    con.executemany("INSERT INTO provisions VALUES (?, ?, ?)", provisions)
    table_of = "CASE l.component " + " ".join(f"WHEN {text_literal(c)} THEN {text_literal(t)}" for c, t in tables) + " END"
    # A line's basis is a rank of BASIS_ORDER; NULL (no parameter value) is written empty.
    statuses = " ".join(f"WHEN {rank} THEN {text_literal(status)}" for rank, status in enumerate(BASIS_ORDER))
    con.execute(f"""CREATE TEMP TABLE lines AS
        SELECT l.clinic_id, CAST(l.component AS component_name) AS component, l.amount, p.provision,
               COALESCE(l.record_id, '') AS record_id,
               CAST(CASE l.basis {statuses} ELSE '' END AS basis_status) AS basis, l.error, l.source_line,
               CASE WHEN l.error IS NOT NULL OR l.amount IS NULL THEN
                    {table_of} || ' record ' ||
                    COALESCE(l.source_record, l.record_id, l.clinic_id) || ': ' || l.component || ': ' ||
                    COALESCE(l.error, 'no value') END AS problem
        FROM {rows} AS l LEFT JOIN provisions AS p ON p.component = l.component AND p.decided = l.decided""")


def run_spark(con, sql: str, tables: list, workdir: Path) -> None:
    """The same plan on Apache Spark (local mode): clean tables go over as Parquet."""
    import sqlglot
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("rulelang")
             .config("spark.sql.ansi.enabled", "true")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4")
             # A rulebook's plan is one query of many layers (a layer per level of rules and
             # per definition, a branch per output): more than Spark's default 100 passes.
             .config("spark.sql.analyzer.maxIterations", "10000")
             .config("spark.sql.optimizer.maxIterations", "10000")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    for table in tables:
        path = workdir / f"{table}.parquet"
        con.execute(f"COPY {quote(table)} TO {text_literal(str(path))} (FORMAT parquet)")
        spark.read.parquet(str(path)).createOrReplaceTempView(table)
    spark_sql = sqlglot.transpile(f"SELECT * FROM ({sql}) WHERE {WORTH_KEEPING}", read="duckdb", write="spark")[0]
    # Spark has no 128-bit integer; DECIMAL(38, 0) holds the same numbers (ANSI mode errs on overflow).
    spark_sql = spark_sql.replace("INT128", "DECIMAL(38, 0)")
    try:
        rows = spark.sql(spark_sql).collect()
    except Exception as error:  # Spark's own errors come as Java exceptions through py4j
        if isinstance(error, KeyboardInterrupt):
            raise
        first = next((line.strip() for line in str(error).splitlines() if line.strip() and not
                      line.strip().startswith(("at ", "An error occurred"))), type(error).__name__)
        overflow = "ARITHMETIC_OVERFLOW" in str(error) or "overflow" in first.lower()
        raise SettlementError(f"Spark could not settle the month: {first.lstrip(': ')}", 2 if overflow else 1) \
            from None
    con.execute("CREATE OR REPLACE TEMP TABLE raw_lines (clinic_id VARCHAR, component VARCHAR, amount BIGINT, "
                "decided INTEGER, record_id VARCHAR, error VARCHAR, source_record VARCHAR, basis INTEGER, "
                "source_line BIGINT)")
    if rows:
        con.executemany("INSERT INTO raw_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [tuple(None if v is None else (int(v) if i in (2, 3, 7, 8) else str(v)) for i, v in enumerate(r))
                         for r in rows])


# ------------------------------------------------------------------------ running


def output_paths(month: str, out: Optional[Path], data: Path) -> tuple:
    """(line items, totals, rejected records): where a run writes, refused when it would write
    onto its own input."""
    out = Path(out) if out else Path(f"settlement-{month}.parquet")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise SettlementError(f"--out must end in .csv or .parquet, not {out.name}")
    paths = (out, out.with_name(out.stem + "-totals.csv"), out.with_name(out.stem + "-rejected.csv"))
    given = Path(data).resolve()
    for path in paths:
        target = path.resolve()
        if target == given or (given.is_dir() and target.is_relative_to(given)):
            raise SettlementError(f"--out {out} would write {path.name} into the input {data}; "
                                  "write the settlement outside the data it reads")
    return paths


def engine_ready(engine: str) -> None:
    """An engine that cannot run here is a setup error named before any work is done."""
    if engine == "duckdb":
        return
    if engine != "spark":
        raise SettlementError(f"unknown engine {engine!r}; use duckdb or spark")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SettlementError("--engine spark needs pyspark: pip install 'rulelang[spark]'") from None
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        raise SettlementError("--engine spark needs Java (a JDK 17 or later on PATH, or JAVA_HOME)") from None


@functools.lru_cache(maxsize=32)
def plan(book: Rulebook, first: dt.date, last: dt.date) -> tuple:
    """The month's lowered plan (line items and warnings), the same for every run of one
    rulebook and month: made once per process."""
    lowering = Lowering(book.checked, book.program, first, last)
    sql = lowering.line_items_sql()
    checks = Lowering(book.checked, book.program, first, last)
    return lowering, sql, checks, checks.warnings_sql()


def settle(book: Rulebook, month: str, data: Path, out: Optional[Path] = None, engine: str = "duckdb",
           progress: Optional[Callable[[str, float], None]] = None) -> Settlement:
    """Settle one month: write line items, totals and rejected records (all of them or none),
    return counts and totals. `progress` is told what the run is doing and the fraction done
    (see ProgressReport)."""
    started = time.perf_counter()
    first, last = month_bounds(month)
    data = Path(data)
    out, totals_out, rejected_out = output_paths(month, out, data)
    engine_ready(engine)
    phases, mark = {}, time.perf_counter()
    lowering, sql, checks, warnings_sql = plan(book, first, last)
    try:
        sources = find_sources(data, book.checked)
    except DataError as error:
        raise SettlementError(error.format()) from None
    try:
        with OutputSet([out, totals_out, rejected_out]) as files:
            with scratch_directory("rulelang-spill-") as spill:
                result = _settle(book, month, engine, sources, lowering, sql, checks, warnings_sql, spill, files,
                                 progress, phases, mark)
            files.commit()
    except OSError as error:
        raise SettlementError(f"cannot write the settlement to {out}: {error.strerror or error}") from None
    counts, totals, components, lines, bases, raised = result
    return Settlement(book.id, book.version, month, engine, out, rejected_out, counts, totals, components, lines,
                      time.perf_counter() - started, phases, bases, raised, totals_out)


def _settle(book, month, engine, sources, lowering, sql, checks, warnings_sql, spill, files, progress,
            phases, mark) -> tuple:
    """The run itself, in its own DuckDB with bounded memory, writing to the temporary files."""
    import duckdb

    first, last = month_bounds(month)
    out, totals_out, rejected_out = files.targets
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    # Bounded memory: past the limit DuckDB spills to disk instead of growing.
    con.execute(f"SET memory_limit = {text_literal(os.environ.get('RULELANG_MEMORY_LIMIT', MEMORY_LIMIT))}")
    con.execute(f"SET temp_directory = {text_literal(spill)}")
    intake = Intake(con, book.checked, sources, (first, last), lowering.month_only_tables() - checks.read_whole)
    report = ProgressReport(con, progress, len(intake.table_order()) + 2)
    try:
        try:
            intake.run(report.begin)
        except DataError as error:
            raise SettlementError(error.format()) from None
        phases["intake"], mark = time.perf_counter() - mark, time.perf_counter()
        report.begin(f"settling {month} on {engine}")
        if engine == "duckdb":
            collect_lines(con, f"({sql})", lowering.provisions(), lowering.component_tables())
        else:
            with scratch_directory("rulelang-spark-") as workdir:
                run_spark(con, sql, intake.table_order(), Path(workdir))
            collect_lines(con, "raw_lines", lowering.provisions(), lowering.component_tables())
        check_errors(con)
        raised = raised_warnings(con, book, warnings_sql)
        phases["rules"], mark = time.perf_counter() - mark, time.perf_counter()
        report.begin("writing output")
        # Sorted as it is written, by component and then by the record's place in its input
        # file: a total order (one line per record and component), so the same input gives
        # the same bytes, and nearly the order the plan gives them in, so sorting is cheap.
        # The totals file gives each clinic's amounts; the line items give the records.
        write(con, f"SELECT clinic_id, {text_literal(month)} AS month, component, {kronor_sql()} AS amount, "
                   f"provision, record_id, basis, source_line FROM lines WHERE amount <> 0",
              files.temporary(out), parquet=out.suffix.lower() == ".parquet",
              text=("clinic_id", "component", "provision", "record_id"), order="component, source_line",
              hidden=("source_line",))
        totals_query, totals_order = totals_sql(book, lowering, month)
        write(con, totals_query, files.temporary(totals_out), parquet=False, text=("clinic_id", "component"),
              order=totals_order)
        write(con, "SELECT * FROM rejected", files.temporary(rejected_out), parquet=False,
              text=("table", "record_id", "file", "reason", "data"), order='"table", CAST(line AS BIGINT), record_id')
        # Totals per clinic, per component and per basis, in one pass over the lines.
        grouped = con.execute(
            "SELECT clinic_id, CAST(component AS VARCHAR), CAST(basis AS VARCHAR), GROUPING(clinic_id), "
            "GROUPING(component), CAST(sum(amount) AS HUGEINT), count(*) FROM lines WHERE amount <> 0 "
            "GROUP BY GROUPING SETS ((clinic_id), (component), (basis)) ORDER BY 1, component, basis").fetchall()
        totals = [(c, a, n) for c, _, _, gc, _, a, n in grouped if gc == 0]
        components = [(k, a, n) for _, k, _, gc, gk, a, n in grouped if gc == 1 and gk == 0]
        bases = [(b, a, n) for _, _, b, gc, gk, a, n in grouped if gc == 1 and gk == 1]
        lines = sum(count for _, _, count in totals)
        report.finish()
    finally:
        report.stop()
        con.close()
    phases["output"] = time.perf_counter() - mark
    return [intake.counts[t] for t in intake.table_order()], totals, components, lines, bases, raised


def totals_sql(book: Rulebook, lowering: Lowering, month: str) -> tuple:
    """One row per clinic and component, zeros included: every clinic of the table the
    payees name (or every payee, when they name none), every settled component; sorted by
    clinic (integer ids as numbers) and component."""
    components = [o.name for o in lowering.settled_outputs()]
    table = lowering.payee_table()
    order = "CAST(clinic_id AS BIGINT)" if lowering.payees_are_numbers() else "clinic_id"
    if table is not None:
        payees = f"SELECT __id AS clinic_id FROM {quote(table)}"
    else:
        payees = "SELECT DISTINCT clinic_id FROM lines WHERE clinic_id IS NOT NULL"
    listed = ", ".join(f"({text_literal(c)})" for c in components)
    grouped = (f"SELECT p.clinic_id, {text_literal(month)} AS month, c.component, "
               f"CAST(CAST(COALESCE(sum(l.amount), 0) AS DECIMAL(38, 0)) * CAST(0.01 AS DECIMAL(38, 2)) "
               f"AS DECIMAL(38, 2)) AS amount, count(l.amount) FILTER (WHERE l.amount <> 0) AS lines "
               f"FROM ({payees}) AS p CROSS JOIN (VALUES {listed}) AS c(component) "
               f"LEFT JOIN lines AS l ON l.clinic_id = p.clinic_id AND CAST(l.component AS VARCHAR) = c.component "
               f"GROUP BY ALL")
    return grouped, f"{order}, component"


def raised_warnings(con, book: Rulebook, sql: Optional[str]) -> list:
    """The rulebook's warnings that hold for the input, checked on the intake's tables (with
    Spark too: a warning reads the input, not the line items)."""
    if sql is None:
        return []
    row = con.execute(sql).fetchone()
    raised = []
    for warning, holds in zip(book.program.warnings.values(), row):
        if holds is None:
            raise SettlementError(f"warning {warning.name} ({warning.provision}, {warning.source}) "
                                  "could not be checked: a value it reads is missing")
        if holds:
            raised.append(warning)
    return raised


def check_errors(con) -> None:
    """A rulebook that fails on some records (a conflict, a date without a value) fails the run."""
    problems = con.execute("SELECT problem, error FROM lines WHERE problem IS NOT NULL "
                           "ORDER BY problem LIMIT 20").fetchall()
    if problems:
        (count,) = con.execute("SELECT count(*) FROM lines WHERE problem IS NOT NULL").fetchone()
        data_side = all(e in ("no rule in force", "a value is missing", AMOUNT_TOO_LARGE) or e is None
                        for _, e in problems)
        raise SettlementError(f"{count} amount(s) could not be settled; explain a record to see why:\n  "
                              + "\n  ".join(problem for problem, _ in problems), 2 if data_side else 1)
    (missing_payee,) = con.execute("SELECT count(*) FROM lines WHERE clinic_id IS NULL AND amount <> 0").fetchone()
    if missing_payee:
        raise SettlementError(f"{missing_payee} line(s) have an amount but no clinic to pay it to", 1)
    undocumented = con.execute("SELECT DISTINCT CAST(component AS VARCHAR) FROM lines "
                               "WHERE provision IS NULL AND amount <> 0").fetchall()
    if undocumented:  # every deciding rule has a provision (`Lowering.provisions`): a bug
        raise AssertionError(f"no provision for {undocumented}")


def kronor_sql() -> str:
    """Öre as kronor with exactly two decimals: a decimal shift in 64-bit decimals, no
    rounding, no float (an amount beyond 10^16 kr stops the write with an error)."""
    return "CAST(CAST(amount AS DECIMAL(18, 0)) * CAST(0.01 AS DECIMAL(18, 2)) AS DECIMAL(18, 2))"


def write(con, query: str, path: Path, parquet: bool, text: tuple, order: str, hidden: tuple = ()) -> None:
    """One output file, written by DuckDB, in the order `order` (over the query's columns;
    `hidden` ones are sorted by but not written). In CSV, a text value that a spreadsheet
    would take for a formula (it begins with =, +, -, @, a tab or a carriage return) is
    written with a leading apostrophe, as OWASP recommends; Parquet holds values as they are."""
    import duckdb

    clauses = []
    if hidden:
        clauses.append(f"EXCLUDE ({', '.join(quote(c) for c in hidden)})")
    if not parquet:
        first = "left(CAST({0} AS VARCHAR), 1) IN ('=', '+', '-', '@', chr(9), chr(13))"
        clauses.append("REPLACE (" + ", ".join(
            f"CASE WHEN {first.format(quote(c))} THEN chr(39) || CAST({quote(c)} AS VARCHAR) "
            f"ELSE {quote(c)} END AS {quote(c)}" for c in text) + ")")
    # The order is the outermost clause: an order inside a subquery is not kept by the query around it.
    select = f"SELECT * {' '.join(clauses)} FROM ({query}) ORDER BY {order}"
    options = "(FORMAT parquet)" if parquet else "(FORMAT csv, HEADER true)"
    try:
        con.execute(f"COPY ({select}) TO {text_literal(str(path))} {options}")
    except duckdb.IOException as error:  # a full disk, a directory that cannot be written
        raise OSError(str(error).strip().splitlines()[0]) from None


# ------------------------------------------------------------------------ the interpreter, for comparison


def interpreter_line_items(book: Rulebook, dataset, month: str) -> list[tuple]:
    """The month's line items computed record by record by the interpreter, in the same order
    and form as the SQL engines write them: (clinic_id, month, component, öre, provision,
    record_id, basis), by component and then by the record's place in its input. The basis is
    the one each line's explanation states."""
    from .evaluator import Evaluator

    first, last = month_bounds(month)
    evaluator = Evaluator(book.program, dataset, last)
    lines = []
    for output in book.program.outputs.values():
        if output.payee is None or output.type.kind != "money":
            continue
        table = dataset.table(output.table)
        if table is None:
            continue
        decl = book.checked.tables[output.table].decl
        clinic_level = pays_itself(book.checked, output.name)
        for place, record in enumerate(table.records):
            if decl.dated_by and not first <= record[decl.dated_by] <= last:
                continue
            result = evaluator.evaluate(output.name, record)
            if result.value == 0:
                continue
            record_id = "" if clinic_level else (record["__id__"] if decl.key else "")
            basis = evaluator.explain(output.name, record).facts["basis"] or ""
            lines.append((place, (result.payee, month, output.name, result.value, result.provision, record_id, basis)))
    # As settle writes them: by component, then by the record's place in its input.
    return [line for _, line in sorted(lines, key=lambda item: (item[1][2], item[0]))]
