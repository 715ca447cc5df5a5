"""Monthly settlement of a whole region: intake, line items on a columnar engine, output.

The intake (`intake.py`) reads the tables and sets aside every record that cannot be used,
with its reason; the rest is settled by the lowered rule plan (`lowering.py`) on DuckDB, or
on Spark. Output appears whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import attrs

from .api import Rulebook
from .diagnostics import DataError
from .explanation import BASIS_ORDER
from .intake import Intake, TableCount, find_sources
from .lowering import Lowering, pays_itself
from .sql import quote, text_literal

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

    def to_dict(self) -> dict:
        from .values import format_money
        return {
            "rulebook": {"id": self.rulebook, "version": self.version},
            "month": self.month, "engine": self.engine,
            "output": str(self.out), "rejected_output": str(self.rejected_out),
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


def collect_lines(con, rows: str, provisions: list) -> None:
    """The table `lines`: the rows of the rules, with each line's provision. Component and
    provision are enums (the provision's text is long and repeats on millions of lines), in
    text order, so that sorting by them sorts by their text. Where a row went wrong, the
    problem names its source record."""
    components = sorted({component for component, _, _ in provisions})
    texts = sorted({text for _, _, text in provisions})
    con.execute(f"CREATE TYPE component_name AS ENUM ({', '.join(text_literal(c) for c in components)})")
    con.execute(f"CREATE TYPE provision_text AS ENUM ({', '.join(text_literal(t) for t in texts)})")
    con.execute(f"CREATE TYPE basis_status AS ENUM ({', '.join(text_literal(b) for b in ('', *BASIS_ORDER))})")
    con.execute("CREATE TEMP TABLE provisions (component VARCHAR, decided VARCHAR, provision provision_text)")
    con.executemany("INSERT INTO provisions VALUES (?, ?, ?)", provisions)
    # A line's basis is a rank of BASIS_ORDER; NULL (no parameter value) is written empty.
    statuses = " ".join(f"WHEN {rank} THEN {text_literal(status)}" for rank, status in enumerate(BASIS_ORDER))
    con.execute(f"""CREATE TEMP TABLE lines AS
        SELECT l.clinic_id, CAST(l.component AS component_name) AS component, l.amount, p.provision,
               COALESCE(l.record_id, '') AS record_id,
               CAST(CASE l.basis {statuses} ELSE '' END AS basis_status) AS basis, l.error,
               CASE WHEN l.error IS NOT NULL OR l.amount IS NULL THEN l.source_table || ' record ' ||
                    l.source_record || ': ' || l.component || ': ' || COALESCE(l.error, 'no value') END AS problem
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
             .getOrCreate())
    for table in tables:
        path = workdir / f"{table}.parquet"
        con.execute(f"COPY {quote(table)} TO {text_literal(str(path))} (FORMAT parquet)")
        spark.read.parquet(str(path)).createOrReplaceTempView(table)
    spark_sql = sqlglot.transpile(f"SELECT * FROM ({sql}) WHERE {WORTH_KEEPING}", read="duckdb", write="spark")[0]
    rows = spark.sql(spark_sql).collect()
    con.execute("CREATE OR REPLACE TEMP TABLE raw_lines (clinic_id VARCHAR, component VARCHAR, amount BIGINT, "
                "decided VARCHAR, record_id VARCHAR, error VARCHAR, source_record VARCHAR, source_table VARCHAR, "
                "basis INTEGER)")
    if rows:
        con.executemany("INSERT INTO raw_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [tuple(None if v is None else (int(v) if i in (2, 8) else str(v)) for i, v in enumerate(r))
                         for r in rows])


# ------------------------------------------------------------------------ running


class ProgressReport:
    """How far a run has come, as (what it is doing, fraction done) to a callback: one step
    per table checked, one for the rules, one for the output, and within a step DuckDB's own
    estimate of the statement running, polled from a thread. The fraction never goes back."""

    def __init__(self, con, report: Optional[Callable[[str, float], None]], steps: int):
        self.con, self.report, self.steps = con, report, steps
        self.step, self.message, self.done = 0, "", 0.0
        self.stopped = threading.Event()
        self.thread = None
        if report is not None:
            con.execute("SET enable_progress_bar = true")  # tracked, not printed
            con.execute("SET enable_progress_bar_print = false")
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()

    def begin(self, message: str) -> None:
        self.step, self.message = self.step + 1, message
        self._send(0.0)

    def finish(self) -> None:
        """The run is complete."""
        self.stop()
        self.message = "done"
        self._send(1.0, whole=True)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()

    def _poll(self) -> None:
        while not self.stopped.wait(0.25):
            within = self.con.query_progress()
            if within >= 0:
                self._send(min(within, 99.0) / 100)

    def _send(self, within: float, whole: bool = False) -> None:
        if self.report is None:
            return
        done = 1.0 if whole else min(1.0, (self.step - 1 + within) / self.steps)
        self.done = max(self.done, done)
        self.report(self.message, self.done)


def settle(book: Rulebook, month: str, data: Path, out: Optional[Path] = None, engine: str = "duckdb",
           progress: Optional[Callable[[str, float], None]] = None) -> Settlement:
    """Settle one month: write line items and rejected records, return counts and totals.
    `progress` is told what the run is doing and the fraction done (see ProgressReport)."""
    import duckdb

    started = time.perf_counter()
    first, last = month_bounds(month)
    out = Path(out) if out else Path(f"settlement-{month}.csv")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise SettlementError(f"--out must end in .csv or .parquet, not {out.name}")
    rejected_out = out.with_name(out.stem + "-rejected.csv")
    spill = tempfile.TemporaryDirectory(prefix="rulelang-spill-")
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    # Bounded memory: past the limit DuckDB spills to disk instead of growing.
    con.execute(f"SET memory_limit = {text_literal(os.environ.get('RULELANG_MEMORY_LIMIT', MEMORY_LIMIT))}")
    con.execute(f"SET temp_directory = {text_literal(spill.name)}")
    phases, mark = {}, time.perf_counter()
    lowering = Lowering(book.checked, book.program, first, last)
    sql = lowering.line_items_sql()
    checks = Lowering(book.checked, book.program, first, last)
    warnings_sql = checks.warnings_sql()
    try:
        sources = find_sources(Path(data), book.checked)
    except DataError as error:
        raise SettlementError(error.format()) from None
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
            collect_lines(con, f"({sql})", lowering.provisions())
        elif engine == "spark":
            with tempfile.TemporaryDirectory(prefix="rulelang-spark-") as workdir:
                run_spark(con, sql, intake.table_order(), Path(workdir))
            collect_lines(con, "raw_lines", lowering.provisions())
        else:
            raise SettlementError(f"unknown engine {engine!r}; use duckdb or spark")
        check_errors(con)
        raised = raised_warnings(con, book, warnings_sql)
        phases["rules"], mark = time.perf_counter() - mark, time.perf_counter()
        report.begin("writing output")
        # Sorted as it is written; the order (clinic, component, record) is total, so the same
        # input gives the same bytes. The few payees sort as an enum in text order: integers
        # sort faster than text.
        con.execute("CREATE TYPE payee AS ENUM (SELECT DISTINCT clinic_id FROM lines WHERE amount <> 0 ORDER BY 1)")
        write_atomically(con, f"SELECT clinic_id, {text_literal(month)} AS month, component, amount, provision, "
                              f"record_id, basis FROM lines WHERE amount <> 0 "
                              f"ORDER BY CAST(clinic_id AS payee), component, record_id", out, money=True)
        write_atomically(con, "SELECT * FROM rejected ORDER BY \"table\", CAST(line AS BIGINT), record_id",
                         rejected_out, money=False, always_csv=True)
        # Totals per clinic, per component and per basis, in one pass over the lines.
        grouped = con.execute(
            "SELECT clinic_id, CAST(component AS VARCHAR), CAST(basis AS VARCHAR), GROUPING(clinic_id), "
            "GROUPING(component), CAST(sum(amount) AS BIGINT), count(*) FROM lines WHERE amount <> 0 "
            "GROUP BY GROUPING SETS ((clinic_id), (component), (basis)) ORDER BY 1, component, basis").fetchall()
        totals = [(c, a, n) for c, _, _, gc, _, a, n in grouped if gc == 0]
        components = [(k, a, n) for _, k, _, gc, gk, a, n in grouped if gc == 1 and gk == 0]
        bases = [(b, a, n) for _, _, b, gc, gk, a, n in grouped if gc == 1 and gk == 1]
        lines = sum(count for _, _, count in totals)
        report.finish()
    finally:
        report.stop()
        con.close()
        spill.cleanup()
    phases["output"] = time.perf_counter() - mark
    return Settlement(book.id, book.version, month, engine, out, rejected_out,
                      [intake.counts[t] for t in intake.table_order()], totals, components, lines,
                      time.perf_counter() - started, phases, bases, raised)


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
        data_side = all(e in ("no rule in force", "a value is missing") or e is None for _, e in problems)
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


def write_atomically(con, query: str, path: Path, money: bool, always_csv: bool = False) -> None:
    """Write to a hidden file beside the target and rename it into place: whole or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    parquet = path.suffix.lower() == ".parquet" and not always_csv
    if money:
        select = (f"SELECT clinic_id, month, component, {kronor_sql()} AS amount, "
                  f"provision, record_id, basis FROM ({query})")
    else:
        select = query
    options = "(FORMAT parquet)" if parquet else "(FORMAT csv, HEADER true)"
    try:
        con.execute(f"COPY ({select}) TO {text_literal(str(temporary))} {options}")
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


# ------------------------------------------------------------------------ the interpreter, for comparison


def interpreter_line_items(book: Rulebook, dataset, month: str) -> list[tuple]:
    """The month's line items computed record by record by the interpreter, in the same order
    and form as the SQL engines write them: (clinic_id, month, component, öre, provision,
    record_id, basis). The basis is the one each line's explanation states."""
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
        for record in table.records:
            if decl.dated_by and not first <= record[decl.dated_by] <= last:
                continue
            result = evaluator.evaluate(output.name, record)
            if result.value == 0:
                continue
            record_id = "" if clinic_level else (record["__id__"] if decl.key else "")
            basis = evaluator.explain(output.name, record).facts["basis"] or ""
            lines.append((result.payee, month, output.name, result.value, result.provision, record_id, basis))
    return sorted(lines, key=lambda line: (line[0], line[2], line[5], line[4]))
