"""Monthly settlement of a whole region: intake, line items on a columnar engine, output.

The intake (`intake.py`) reads the tables and sets aside every record that cannot be used,
with its reason; the rest is settled by the lowered rule plan (`lowering.py`) on DuckDB, or
on Spark. Output appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional

import attrs

from ..evaluation.explanation import BASIS_ORDER
from ..language.diagnostics import DataError, Error
from ..language.values import AMOUNT_TOO_LARGE, to_text
from .intake import REJECT_COLUMNS, Intake, bounded_database, find_sources
from .lowering import Lowering, pays_itself
from .outputset import OutputSet, scratch_directory
from .progress import ProgressReport
from .sql import engine_setting, quote, text_literal

if TYPE_CHECKING:  # a rulebook as the API gives it; this stage needs only its parts
    from ..interfaces.api import Rulebook

LINE_COLUMNS = ("clinic_id", "month", "component", "amount", "provision", "record_id", "basis")
TOTALS_COLUMNS = ("clinic_id", "month", "component", "amount", "lines")
LINE_IDS = ("clinic_id", "record_id")
LINE_TEXTS = ("clinic_id", "component", "provision", "record_id")  # a spreadsheet could read them as formulas
# Lines are written by component and then by the record's place in its input file: a total
# order (one line per record and component), so the same input gives the same bytes.
LINE_ORDER = "component, source_line"
# A line that went wrong stops a write straight from the plan with this error (write_lines).
STOPPED = "rulelang: a line item cannot be settled"
# The plan's rows (records × settled outputs) up to which DuckDB writes the lines straight
# from the plan. There the plan's joins and the sort of the lines share the memory limit at
# once: the region-month peer's 5.4 M rows peak at 770 MiB, but a national month of hlv-2021
# (18 M rows, 13.5 M lines) ran out of 2.5 GB, where a table of the lines first spills.
STRAIGHT_WRITE_ROWS = 8_000_000
# The most payees (a region's clinics: Sweden has about 1,150) whose ids a straight write
# carries as an enum (write_lines, line_types); more are carried as text.
MAX_PAYEE_ENUM = 10_000


class SettlementError(Error):
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


@attrs.define(repr=False)
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
    phases: dict = attrs.Factory(dict)  # phase → seconds: intake, rules (line items computed and written), output
    bases: list = attrs.Factory(list)  # (basis or "", amount in öre, lines): how firm the money is
    warnings: list = attrs.Factory(list)  # the rulebook's warnings that hold for this input
    totals_out: Optional[Path] = None
    assumptions: dict = attrs.Factory(dict)  # parameter → value as text, set for the run (--assume)

    def __repr__(self) -> str:
        return (f"<Settlement {self.rulebook} {self.month} on {self.engine}: {len(self.totals)} clinics, "
                f"{self.lines} lines, to {self.out}>")

    def to_dict(self) -> dict:
        from ..language.values import format_money
        return {
            "rulebook": {"id": self.rulebook, "version": self.version},
            "month": self.month, "engine": self.engine, "assumptions": dict(self.assumptions),
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
# or went wrong matter: the others are dropped before the lines are kept or written, on
# either engine (worth_keeping).
WORTH_KEEPING = "amount <> 0 OR amount IS NULL OR error IS NOT NULL"


def worth_keeping(lowering: Lowering, sql: str) -> str:
    """The plan's rows (`sql`) that matter (WORTH_KEEPING), as a query: all of them where no
    table names the payees (Lowering.payee_table), whose set is then found among the lines,
    zero ones included (totals_sql)."""
    keep = WORTH_KEEPING if lowering.payee_table() is not None else "TRUE"
    return f"SELECT * FROM ({sql}) WHERE {keep}"


def line_types(con, provisions: list, into: str, enums: bool = True, payees: Optional[list] = None) -> tuple:
    """(payee, component, provision, basis) types of the lines `into`: on DuckDB (`enums`)
    enums in text order (the provision's text is long and repeats on millions of lines;
    sorting by an enum sorts by its text), made here; elsewhere text. The payee is an enum
    of `payees` (the ids of the table the payees name) when they are given, else text: a
    line then carries its clinic as a small number through the sort, and the Parquet
    writer writes each row group's clinics from the enum, not by hashing each line's text."""
    if not enums:
        return "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR"
    names = ("payee", "component", "provision", "basis")
    values = (payees, sorted({component for component, _, _ in provisions}),
              sorted({text for _, _, text in provisions}), ["", *BASIS_ORDER])
    types = tuple("VARCHAR" if listed is None else quote(f"{into}_{name}") for name, listed in zip(names, values))
    for name, listed in zip(types, values):
        if listed is not None:
            con.execute(f"CREATE TYPE {name} AS ENUM ({', '.join(text_literal(v) for v in listed)})")
    return types


def lines_select(rows: str, provisions: list, tables: list, types: tuple, numbers: tuple = (False, False),
                 payees: Optional[str] = None) -> str:
    """The rows of the rules with each line's payee, provision and basis as text (of
    `types`, see line_types); where a row went wrong, the problem, naming its source record.
    The payee and the record id are text (a clinic-level line's record empty), but for
    those `numbers` names (payees, record ids: declared_ids), which are kept as the plan
    carries them: BIGINT, a clinic-level line's record NULL (line_ids). With `payees`
    (Lowering.payee_ids_sql; for text payees) a payee is looked up there as the payee
    type's value, an enum, rather than cast from text one line at a time."""
    as_payee, as_component, as_provision, as_basis = types
    payee_number, record_number = numbers
    record = "l.record_id" if record_number else record_text_sql("l.record_id")
    payee = "l.clinic_id" if payee_number else "CAST(l.clinic_id AS VARCHAR)"
    joined = ""
    if payees is not None:  # a payee not found there: a line that cannot be settled
        payee = "pe.payee"
        joined = (f" LEFT JOIN (SELECT id, CAST(__id AS {as_payee}) AS payee FROM ({payees})) AS pe "
                  "ON pe.id = l.clinic_id")
    # The provisions, a few dozen rows, as a table written in the query.
    listed = ", ".join(f"({text_literal(c)}, {int(d)}, CAST({text_literal(t)} AS {as_provision}))"
                       for c, d, t in provisions) or f"(NULL, NULL, CAST(NULL AS {as_provision}))"
    table_of = "CASE l.component " + " ".join(f"WHEN {text_literal(c)} THEN {text_literal(t)}" for c, t in tables) + " END"
    # A line's basis is a rank of BASIS_ORDER; NULL (no parameter value) is written empty.
    statuses = " ".join(f"WHEN {rank} THEN {text_literal(status)}" for rank, status in enumerate(BASIS_ORDER))
    return f"""SELECT {payee} AS clinic_id, CAST(l.component AS {as_component}) AS component, l.amount, p.provision,
               {record} AS record_id,
               CAST(CASE l.basis {statuses} ELSE '' END AS {as_basis}) AS basis, l.error, l.source_line,
               l.source_record,
               CASE WHEN l.error IS NOT NULL OR l.amount IS NULL THEN
                    {table_of} || ' record ' ||
                    COALESCE(l.source_record, CAST(l.record_id AS VARCHAR), CAST(l.clinic_id AS VARCHAR)) || ': ' ||
                    l.component || ': ' || COALESCE(l.error, 'no value') END AS problem
        FROM {rows} AS l LEFT JOIN (VALUES {listed}) AS p(component, decided, provision)
          ON p.component = l.component AND p.decided = l.decided{joined}"""


def record_text_sql(record: str) -> str:
    """A line's record id as text: empty for a clinic-level line."""
    return f"COALESCE(CAST({record} AS VARCHAR), '')"


# The line ids (LINE_IDS) as text, and as numbers from text (see line_ids).
LINE_IDS_AS_TEXT = ("CAST(clinic_id AS VARCHAR)", record_text_sql("record_id"))
LINE_IDS_AS_NUMBERS = ("CAST(clinic_id AS BIGINT)", "CAST(NULLIF(record_id, '') AS BIGINT)")


def declared_ids(lowering: Lowering) -> tuple:
    """(payees, record ids): whether each is a whole-number key, which the Parquet line
    items hold as a number (line_ids)."""
    return lowering.payees_are_numbers(), lowering.record_ids_are_numbers()


def line_ids(numbers: tuple, parquet: bool, given_as_text: bool) -> tuple:
    """(clinic_id, record_id) as the line items file holds them, over lines that give them
    as text (a clinic-level line's record empty) or, unless `given_as_text`, as a Parquet
    file of lines holds them. Parquet keeps the type of the key an id names (`numbers`,
    declared_ids): a whole-number key is a BIGINT, and a clinic-level line's record is then
    NULL, so the lines join the input's own ids as they are; text ids are text, a
    clinic-level line's record empty. A CSV holds text either way."""
    ids = []
    for column, number, as_number, as_text in zip(LINE_IDS, numbers, LINE_IDS_AS_NUMBERS, LINE_IDS_AS_TEXT):
        wanted, given = number and parquet, number and not given_as_text  # held as a number?
        ids.append(column if wanted == given else as_number if wanted else as_text)
    return tuple(ids)


def collect_lines(con, rows: str, provisions: list, tables: list, enums: bool = True, into: str = "lines") -> None:
    """The table `into` (`lines`): the rows of the rules, with each line's provision
    (lines_select, with the types of line_types)."""
    types = line_types(con, provisions, into, enums)
    con.execute(f"CREATE TEMP TABLE {quote(into)} AS {lines_select(rows, provisions, tables, types)}")


class EngineSession:
    """One engine's session over one month of input: the intake reads and checks the data
    once, then any number of rule plans give their line items over the same checked tables
    (a settlement runs one; an impact two). On DuckDB, or on Spark (`engine`)."""

    def __init__(self, checked, engine: str, sources: dict, bounds: tuple, month_only: set, spill: str,
                 progress: Optional[Callable[[str, float], None]], steps: int):
        self.con = bounded_database(spill)
        self.spill, self.bounds = spill, bounds
        self.spark = None  # Spark's tables, when Spark settles
        if engine == "spark":
            from .spark import SparkTables, spark_session
            self.spark = SparkTables(spark_session())
        self.intake = self.intake_of(checked, sources, month_only)
        self.report = ProgressReport(self.con, progress, len(self.intake.table_order()) + steps)

    def intake_of(self, checked, sources: dict, month_only: set) -> Intake:
        """The intake of these tables: on Spark when Spark settles and every table is Parquet,
        else on DuckDB (then the checked tables go over to Spark, see check_input)."""
        if self.spark is not None and all(source.kind == "parquet" for source in sources.values()):
            from .spark import SparkIntake
            return SparkIntake(self.spark, checked, sources, self.bounds, month_only)
        return Intake(self.con, checked, sources, self.bounds, month_only)

    @property
    def db(self):
        """Where the data is: DuckDB, or Spark's tables."""
        return self.spark or self.con

    def check_input(self) -> None:
        """Read and check every table; records that cannot be used go to `rejected`."""
        try:
            self.intake.run(self.report.begin)
        except DataError as error:
            raise SettlementError(error.format()) from None
        if self.spark is not None and self.intake.con is self.con:
            # Checked by DuckDB (CSV, records in memory): the clean tables go over as Parquet.
            for table in [*self.intake.table_order(), "rejected"]:
                path = Path(self.spill) / f"checked-{table}.parquet"
                self.con.execute(f"COPY {quote(table)} TO {text_literal(str(path))} (FORMAT parquet)")
                self.spark.register(table, self.spark.spark.read.parquet(str(path)), materialised=False)

    def lines(self, lowering: Lowering, sql: str, into: str = "lines") -> None:
        """The table `into`: the plan's line items (collect_lines), checked (check_errors)."""
        if self.spark is None:
            collect_lines(self.con, f"({worth_keeping(lowering, sql)})", lowering.provisions(),
                          lowering.component_tables(), into=into)
        else:
            self.spark.execute(f"CREATE TEMP TABLE {quote('raw_' + into)} AS {worth_keeping(lowering, sql)}")
            collect_lines(self.spark, quote("raw_" + into), lowering.provisions(), lowering.component_tables(),
                          enums=False, into=into)
        check_errors(self.db, into)

    def settle_lines(self, lowering: Lowering, sql: str, month: str, path: Path, parquet: bool) -> None:
        """The month's paying lines written to `path` (Parquet or CSV), and their sums per
        clinic, component and basis in the table `sums`, which the totals file and the
        summary are made from. Where payees are a table's records and the month is not too
        large (straight), DuckDB writes the lines straight from the plan (write_lines): a
        table of millions of lines cost as much as the rules. Otherwise (Spark; payees found
        among the lines, zero ones included; a national month) the lines are a table first."""
        numbers = declared_ids(lowering)
        if self.straight(lowering):
            written = path if parquet else Path(self.spill) / "lines.parquet"
            if self.write_lines(lowering, sql, month, written, numbers):
                from_file = f"read_parquet({text_literal(str(written))})"
                self.con.execute(sums_sql(from_file, "CAST(amount * 100 AS BIGINT)"))
                if not parquet:  # the CSV from the Parquet file, in its order (one thread keeps it)
                    clinic, record = line_ids(numbers, False, given_as_text=False)
                    as_text = f"SELECT * REPLACE ({clinic} AS clinic_id, {record} AS record_id) FROM {from_file}"
                    with one_thread(self.con):
                        write(self.con, as_text, LINE_COLUMNS, path, False, LINE_TEXTS, None, self.spill)
                return
        self.lines(lowering, sql)
        self.db.execute(sums_sql("lines WHERE amount <> 0", "amount"))
        ids = line_ids(numbers, parquet, given_as_text=True)
        write(self.db, paying_lines(month, "lines WHERE amount <> 0", self.spark is None, ids), LINE_COLUMNS, path,
              parquet, LINE_TEXTS, LINE_ORDER, self.spill)

    def straight(self, lowering: Lowering) -> bool:
        """Whether DuckDB writes the lines straight from the plan (see STRAIGHT_WRITE_ROWS)."""
        rows = sum(self.intake.counts[table].used for _, table in lowering.component_tables()
                   if table in self.intake.counts)
        return self.spark is None and lowering.payee_table() is not None and rows <= STRAIGHT_WRITE_ROWS

    def write_lines(self, lowering: Lowering, sql: str, month: str, path: Path, numbers: tuple) -> bool:
        """The plan's paying lines written to the Parquet file `path` as they are computed;
        False when DuckDB ran out of memory doing so (a table of the lines, which spills,
        then settles the month). A line that went wrong (no value, an error, no payee) stops
        the write (DuckDB's error()); the plan then runs again into a table, whose check
        (check_errors) reports every problem as the table path does. The ids that are
        `numbers` (declared_ids) are written as the plan carries them."""
        import duckdb

        provisions, tables = lowering.provisions(), lowering.component_tables()
        payee_ids, payees = lowering.payee_ids_sql(), []
        if not numbers[0]:  # text payees: an enum of the payee table's ids
            payees = [row[0] for row in self.con.execute(
                f"SELECT __id FROM ({payee_ids}) ORDER BY __id LIMIT {MAX_PAYEE_ENUM + 1}").fetchall()]
        enum_payees = 0 < len(payees) <= MAX_PAYEE_ENUM  # else the payees are carried as text (or numbers)
        types = line_types(self.con, provisions, "straight", payees=payees if enum_payees else None)
        rows = lines_select(f"({worth_keeping(lowering, sql)})", provisions, tables, types, numbers,
                            payees=payee_ids if enum_payees else None)
        # Payees are a table's records here (straight): every line left pays something or went wrong.
        guarded = (f"({rows}) AS l WHERE CASE WHEN problem IS NOT NULL OR clinic_id IS NULL OR provision IS NULL "
                   f"THEN error({text_literal(STOPPED)}) ELSE TRUE END")
        # The lines in order: the Parquet writer keeps the order of what it is given.
        ordered = f"SELECT * FROM ({paying_lines(month, guarded)}) AS l ORDER BY {LINE_ORDER}"
        try:
            write(self.con, ordered, LINE_COLUMNS, path, True, LINE_TEXTS, None, self.spill)
        except duckdb.OutOfMemoryException:
            return False
        except duckdb.Error as error:
            if STOPPED not in str(error):
                raise
            self.lines(lowering, sql, into="stopped")
            raise AssertionError("a line stopped the write, but the lines show no problem") from None
        return True

    def close(self) -> None:
        self.report.stop()
        self.con.close()
        if self.spark is not None:
            self.spark.close()


@contextlib.contextmanager
def engine_session(*args) -> Iterator[EngineSession]:
    """An EngineSession (its arguments), closed at the end; what Spark raises over the data
    is a SettlementError (exit 2 for an amount too large, 1 otherwise)."""
    session = EngineSession(*args)
    try:
        yield session
    except Exception as error:
        if session.spark is None:
            raise
        from .spark import is_overflow, is_spark_error, spark_error
        if not is_spark_error(error):
            raise
        raise SettlementError(f"Spark could not settle the month: {spark_error(error)}",
                              2 if is_overflow(error) else 1) from None
    finally:
        session.close()


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
def plan(book: Rulebook, first: dt.date, last: dt.date, assumed: tuple = ()) -> tuple:
    """The month's lowered plan (line items and warnings), the same for every run of one
    rulebook, month and set of assumptions (`assumed`: (parameter, value) pairs): made once
    per process."""
    lowering = Lowering(book.checked, book.program, first, last, dict(assumed))
    sql = lowering.line_items_sql()
    checks = Lowering(book.checked, book.program, first, last, dict(assumed))
    return lowering, sql, checks, checks.warnings_sql()


def settle(book: Rulebook, month: str, data: Path, out: Optional[Path] = None, engine: str = "duckdb",
           progress: Optional[Callable[[str, float], None]] = None,
           assumptions: Optional[dict] = None) -> Settlement:
    """Settle one month: write line items, totals and rejected records (all of them or none),
    return counts and totals. `progress` is told what the run is doing and the fraction done
    (see ProgressReport). `assumptions` (Rulebook.assume) replace parameters' values for the
    run; the summary records them, and the lines resting on them have the basis `assumed`."""
    started = time.perf_counter()
    first, last = month_bounds(month)
    data = Path(data)
    out, totals_out, rejected_out = output_paths(month, out, data)
    engine_ready(engine)
    phases, mark = {}, time.perf_counter()
    assumed = tuple(sorted((assumptions or {}).items()))
    lowering, sql, checks, warnings_sql = plan(book, first, last, assumed)
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
    replaced = book.checked.replaced_on(last)  # a day of the month on or after the rulebook's replacement
    if replaced is not None:
        raised = [replaced, *raised]
    shown = {name: to_text(value, book.program.parameters[name].type) for name, value in assumed}
    return Settlement(book.id, book.version, month, engine, out, rejected_out, counts, totals, components, lines,
                      time.perf_counter() - started, phases, bases, raised, totals_out, shown)


def _settle(book, month, engine, sources, lowering, sql, checks, warnings_sql, spill, files, progress,
            phases, mark) -> tuple:
    """The run itself, in its own DuckDB with bounded memory (or on Spark), writing to the
    temporary files."""
    first, last = month_bounds(month)
    out, totals_out, rejected_out = files.targets
    month_only = lowering.month_only_tables() - checks.read_whole
    with engine_session(book.checked, engine, sources, (first, last), month_only, spill, progress, 2) as session:
        db, report, intake = session.db, session.report, session.intake
        session.check_input()
        phases["intake"], mark = time.perf_counter() - mark, time.perf_counter()
        report.begin(f"settling {month} on {engine}")
        session.settle_lines(lowering, sql, month, files.temporary(out), out.suffix.lower() == ".parquet")
        sums = db.execute("SELECT clinic_id, component, basis, amount, lines FROM sums").fetchall()
        raised = raised_warnings(db, book, warnings_sql)
        phases["rules"], mark = time.perf_counter() - mark, time.perf_counter()
        report.begin("writing output")
        # The totals file gives each clinic's amounts; the line items give the records.
        totals_query, totals_order = totals_sql(book, lowering, month)
        write(db, totals_query, TOTALS_COLUMNS, files.temporary(totals_out), parquet=False,
              text=("clinic_id", "component"), order=totals_order, scratch=spill)
        write(db, "SELECT * FROM rejected", REJECT_COLUMNS, files.temporary(rejected_out), parquet=False,
              text=("table", "record_id", "file", "reason", "data"), order='"table", CAST(line AS BIGINT), record_id',
              scratch=spill)
        # Totals per clinic, per component and per basis, from the sums (a few rows a clinic).
        totals, components, bases = (summed(sums, by) for by in (0, 1, 2))
        lines = sum(count for _, _, count in totals)
        report.finish()
    phases["output"] = time.perf_counter() - mark
    return [intake.counts[t] for t in intake.table_order()], totals, components, lines, bases, raised


def summed(sums: list, by: int) -> list:
    """(key, amount in öre, lines) per value of column `by` of the sums (clinic, component,
    basis), in the key's order."""
    grouped: dict = {}
    for row in sums:
        amount, lines = grouped.get(row[by], (0, 0))
        grouped[row[by]] = (amount + int(row[3]), lines + int(row[4]))
    return [(key, amount, lines) for key, (amount, lines) in
            sorted(grouped.items(), key=lambda item: (item[0] is None, item[0]))]


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
               f"AS DECIMAL(38, 2)) AS amount, CAST(COALESCE(sum(l.lines), 0) AS BIGINT) AS lines "
               f"FROM ({payees}) AS p CROSS JOIN (VALUES {listed}) AS c(component) "
               f"LEFT JOIN sums AS l ON l.clinic_id = p.clinic_id AND l.component = c.component "
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


def check_errors(con, lines: str = "lines") -> None:
    """A rulebook that fails on some records (a conflict, a date without a value) fails the run."""
    lines = quote(lines)
    problems = con.execute(f"SELECT problem, error FROM {lines} WHERE problem IS NOT NULL "
                           "ORDER BY problem LIMIT 20").fetchall()
    if problems:
        (count,) = con.execute(f"SELECT count(*) FROM {lines} WHERE problem IS NOT NULL").fetchone()
        data_side = all(e in ("no rule in force", "a value is missing", AMOUNT_TOO_LARGE) or e is None
                        for _, e in problems)
        raise SettlementError(f"{count} amount(s) could not be settled; explain a record to see why:\n  "
                              + "\n  ".join(problem for problem, _ in problems), 2 if data_side else 1)
    missing_payee, undocumented = con.execute(
        "SELECT count(*) FILTER (WHERE clinic_id IS NULL), count(*) FILTER (WHERE provision IS NULL) "
        f"FROM {lines} WHERE amount <> 0").fetchone()
    if missing_payee:
        raise SettlementError(f"{missing_payee} line(s) have an amount but no clinic to pay it to", 1)
    if undocumented:  # every deciding rule has a provision (`Lowering.provisions`): a bug
        components = con.execute(f"SELECT DISTINCT CAST(component AS VARCHAR) FROM {lines} "
                                 "WHERE provision IS NULL AND amount <> 0").fetchall()
        raise AssertionError(f"no provision for {components}")


def one_thread(con):
    """DuckDB on one thread for the statements inside, then as many as before: a copy
    without an order keeps its source's order only so."""
    return engine_setting(con, "threads", 1)


def sums_sql(lines: str, ore: str) -> str:
    """The table `sums`: the paying lines of `lines` (a table or file, with any condition)
    summed per clinic (its id as text, as the tables' `__id`), component and basis; `ore` is
    a line's amount in öre there."""
    return ("CREATE TEMP TABLE sums AS SELECT CAST(clinic_id AS VARCHAR) AS clinic_id, "
            "CAST(component AS VARCHAR) AS component, "
            f"CAST(basis AS VARCHAR) AS basis, CAST(sum({ore}) AS INT128) AS amount, count(*) AS lines "
            f"FROM {lines} GROUP BY ALL")


def paying_lines(month: str, lines: str, enums: bool = True, ids: tuple = LINE_IDS) -> str:
    """The line items' columns (LINE_COLUMNS, amounts in kronor) and each line's place, of the
    lines `lines` (a table or query, with the condition that keeps the paying ones). On
    DuckDB (`enums`) the month is a one-value enum, as component, provision and basis are
    (line_types): the same text in the file, but the Parquet writer no longer hashes the
    same ten letters once a line (a tenth of writing the lines). `ids`: the clinic and record
    ids as written (line_ids)."""
    value = text_literal(month)
    as_month = f"CAST({value} AS ENUM ({value}))" if enums else value
    clinic, record = ids
    return (f"SELECT {clinic} AS clinic_id, {as_month} AS month, component, {kronor_sql()} AS amount, "
            f"provision, {record} AS record_id, basis, source_line FROM {lines}")


def kronor_sql() -> str:
    """Öre as kronor with exactly two decimals: a decimal shift in 64-bit decimals, no
    rounding, no float (an amount beyond 10^16 kr stops the write with an error)."""
    return "CAST(CAST(amount AS DECIMAL(18, 0)) * CAST(0.01 AS DECIMAL(18, 2)) AS DECIMAL(18, 2))"


# The first characters (=, +, -, @, tab, carriage return) that make a spreadsheet read a
# value as a formula, by code point (`ascii` reads one number; `left` made a text a row).
FORMULA_STARTS = "61, 43, 45, 64, 9, 13"


def write(db, query: str, columns: tuple, path: Path, parquet: bool, text: tuple, order: Optional[str],
          scratch: str) -> None:
    """One output file of the query's `columns`, in the order `order` (over the query's
    columns, written or not; None: the query's own, which DuckDB's Parquet writer keeps and
    its CSV writer only on one thread),
    by DuckDB or by Spark. In CSV, a text value that a spreadsheet would take for a formula
    (it begins with =, +, -, @, a tab or a carriage return) is written with a leading
    apostrophe, as OWASP recommends; Parquet holds values as they are."""
    selected = []
    for column in columns:
        c = quote(column)
        if not parquet and column in text:
            value = f"CAST({c} AS VARCHAR)"
            selected.append(f"CASE WHEN ascii({value}) IN ({FORMULA_STARTS}) THEN chr(39) || {value} ELSE {c} END AS {c}")
        else:
            selected.append(c)
    # The order is the outermost clause: an order inside a subquery is kept only by what keeps
    # order around it (a projection, as write_lines uses; not a join, nor Spark).
    select = f"SELECT {', '.join(selected)} FROM ({query}) AS q" + (f" ORDER BY {order}" if order else "")
    import duckdb

    if not isinstance(db, duckdb.DuckDBPyConnection):  # Spark's tables write their own files
        db.write_file(select, path, parquet, Path(scratch))
        return
    options = "(FORMAT parquet)" if parquet else "(FORMAT csv, HEADER true)"
    try:
        db.execute(f"COPY ({select}) TO {text_literal(str(path))} {options}")
    except duckdb.IOException as error:  # a full disk, a directory that cannot be written
        raise OSError(str(error).strip().splitlines()[0]) from None


# ------------------------------------------------------------------------ the interpreter, for comparison


def interpreter_line_items(book: Rulebook, dataset, month: str, assumptions: Optional[dict] = None) -> list[tuple]:
    """The month's line items computed record by record by the interpreter, in the same order
    and form as the SQL engines write them: (clinic_id, month, component, öre, provision,
    record_id, basis), by component and then by the record's place in its input. The basis is
    the one each line's explanation states."""
    from ..evaluation.evaluator import Evaluator

    first, last = month_bounds(month)
    evaluator = Evaluator(book.program, dataset, last, assumptions)
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
