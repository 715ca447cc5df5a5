"""Monthly settlement of a whole region: intake, line items on a columnar engine, output.

Intake reads the four tables as text (CSV, Parquet or JSON), types every value in SQL with
the rulebook's declared types, and sets aside every record that cannot be used, with its
reason: a malformed value, a missing field, a duplicate id, a reference to a record that is
missing or itself set aside, overlapping listings. The rest is settled by the lowered rule
plan (`lowering.py`) on DuckDB, or on Spark. Output appears whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Callable, Optional

import attrs

from .api import Rulebook
from .data import read_json
from .diagnostics import DataError, EvaluationError, RecordProblem
from .explanation import BASIS_ORDER
from .lowering import DECIMAL_SCALE, Lowering, date_literal, pays_itself, quote, text_literal

LINE_COLUMNS = ("clinic_id", "month", "component", "amount", "provision", "record_id", "basis")
MEMORY_LIMIT = "2500MB"  # DuckDB's share; RULELANG_MEMORY_LIMIT overrides it
REJECT_COLUMNS = ("table", "record_id", "file", "line", "reason", "data")


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


@attrs.frozen
class TableCount:
    """read = used + rejected + other_months: every record given is accounted for."""

    table: str
    read: int
    used: int
    rejected: int
    other_months: int = 0  # records of a dated table that are dated outside the month


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


# ------------------------------------------------------------------------ intake


def _source_files(data: Path, tables: list) -> dict:
    """table → (kind, path) for a directory of .csv/.parquet files or one JSON file."""
    if data.is_file() and data.suffix.lower() == ".json":
        return {t: ("json", data) for t in tables}
    if not data.is_dir():
        raise SettlementError(f"{data}: no such directory or JSON file")
    found = {}
    for table in tables:
        for kind in ("parquet", "csv"):
            path = data / f"{table}.{kind}"
            if path.exists():
                found[table] = (kind, path)
                break
    return found


def _sql_path(path: Path) -> str:
    return text_literal(str(path))


class Intake:
    """Loads and checks the input tables in a DuckDB connection; leaves clean typed tables
    under the tables' own names and every refused record in `rejected`."""

    def __init__(self, con, book: Rulebook, data: Path, month: Optional[tuple] = None,
                 month_only: frozenset = frozenset()):
        self.con = con
        self.book = book
        self.checked = book.checked
        self.data = data
        self.counts: dict[str, TableCount] = {}
        self.native: set = set()  # (table, field) read from Parquet in its declared type
        self.month = month  # (first, last) day of the month settled
        # Dated tables of which the settlement reads only the month's records (see
        # `Lowering.month_only_tables`); records another table refers to are always checked.
        referred = {field_type.name for info in self.checked.tables.values()
                    for field_type, _ in info.fields.values() if field_type.kind == "ref"}
        self.month_only = set(month_only) - referred if month else set()

    def run(self, begin: Callable[[str], None] = lambda message: None) -> None:
        """Check every table, calling `begin` as each one starts."""
        tables = self.table_order()
        sources = _source_files(self.data, tables)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE rejected ({', '.join(f'{quote(c)} VARCHAR' for c in REJECT_COLUMNS)})")
        for table in tables:
            begin(f"checking {table}")
            absent = table not in sources or (sources[table][0] == "json" and
                                              table not in self.json_tables(sources[table][1]))
            if absent:
                if not self.checked.tables[table].decl.optional:
                    where = (f"no {table!r} key" if self.data.is_file() else
                             f"no {table}.csv or {table}.parquet")
                    raise SettlementError(
                        f"{self.data}: the rulebook needs the table {table}, and there is {where}; a table "
                        "without records is written as an empty list or a file with only its header line")
                self.empty(table)
                continue
            kind, path = sources[table]
            if self.raw(table, kind, path):
                self.typed(table, str(path))
            else:
                self.empty(table)

    def table_order(self) -> list:
        """Tables that others refer to first, so references can be checked against clean rows."""
        order, seen = [], set()

        def visit(name):
            if name in seen:
                return
            seen.add(name)
            info = self.checked.tables[name]
            for field_type, _ in info.fields.values():
                if field_type.kind == "ref":
                    visit(field_type.name)
            if info.decl.history:
                visit(info.decl.history.of_table)
            order.append(name)

        for name in self.checked.tables:
            visit(name)
        return order

    def empty(self, table: str) -> None:
        columns = [f"{quote(name)} {self.sql_type(t)}" for name, (t, _) in self.checked.tables[table].fields.items()]
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(table)} ({', '.join(columns)}, __id VARCHAR, __line BIGINT)")
        self.counts[table] = TableCount(table, 0, 0, 0)

    @staticmethod
    def sql_type(field_type) -> str:
        return {"date": "DATE", "decimal": "BIGINT", "money": "BIGINT", "integer": "BIGINT",
                "boolean": "BOOLEAN"}.get(field_type.kind, "VARCHAR")

    def raw(self, table: str, kind: str, path: Path) -> bool:
        """The table's declared columns as text, with line numbers, in the view raw_<table> (a
        table for JSON input); False when the input gives the table no rows at all."""
        fields = self.checked.tables[table].fields
        raw = quote(f"raw_{table}")
        if kind in ("csv", "parquet"):
            if kind == "csv":
                source = (f"read_csv({_sql_path(path)}, all_varchar = true, header = true, "
                          "strict_mode = false, null_padding = true)")
                line = "CAST(row_number() OVER () + 1 AS BIGINT)"
            else:
                source = f"read_parquet({_sql_path(path)}, file_row_number = true)"
                line = "CAST(file_row_number + 1 AS BIGINT)"  # free, where a window would sort
            described = {r[0]: r[1] for r in self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            columns = []
            for name, (field_type, decl) in fields.items():
                if name not in described:
                    if field_type.optional or decl.default is not None:
                        columns.append(f"CAST(NULL AS VARCHAR) AS {quote(name)}")
                        continue
                    raise SettlementError(f"{path}: table {table} has no column {name}")
                if described[name] in ("DOUBLE", "FLOAT"):
                    raise SettlementError(f"{path}: column {name} is a binary floating-point number; "
                                          "write decimals as text or DECIMAL so that they stay exact")
                if self.natively_typed(described[name], field_type):
                    columns.append(f"{quote(name)} AS {quote(name)}")  # already the declared type
                    self.native.add((table, name))
                else:
                    columns.append(f"{_trimmed_sql(f'CAST({quote(name)} AS VARCHAR)')} AS {quote(name)}")
            # Parquet is read again cheaply (only the columns asked for); CSV is parsed once.
            made = "VIEW" if kind == "parquet" else "TABLE"
            self.con.execute(f"CREATE OR REPLACE TEMP {made} {raw} AS SELECT {', '.join(columns)}, "
                             f"{line} AS __line FROM {source}")
            return True
        rows = self.json_tables(path).get(table, [])
        if not rows:
            return False
        names = list(fields)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {raw} "
                         f"({', '.join(f'{quote(c)} VARCHAR' for c in names)}, __line BIGINT)")
        values = [[_trimmed(_json_text(row.get(c))) if isinstance(row, dict) else None for c in names] + [line]
                  for _, line, row in rows]
        self.con.executemany(f"INSERT INTO {raw} VALUES ({', '.join('?' for _ in range(len(names) + 1))})", values)
        return True

    @staticmethod
    def natively_typed(source_type: str, field_type) -> bool:
        """A Parquet column that already holds values of the declared type needs no text check."""
        kind = field_type.kind
        return (kind == "date" and source_type == "DATE" or kind == "boolean" and source_type == "BOOLEAN"
                or kind == "integer" and source_type in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT"))

    def json_tables(self, path: Path) -> dict:
        if not hasattr(self, "_json"):
            try:
                self._json = read_json(path)
            except DataError as error:
                raise SettlementError(error.format()) from None
        return self._json

    def typed(self, table: str, file: str) -> None:
        info = self.checked.tables[table]
        raw = quote(f"raw_{table}")
        reasons, converted, values = [], [], []
        for name, (field_type, decl) in info.fields.items():
            column = f"r.{quote(name)}"  # already trimmed, empty as NULL, in raw_<table>
            value = column
            if (table, name) not in self.native:
                conversion, expected = self.conversion(column, field_type.required())
                if conversion != column:
                    # Converted once, in an inner query, and read by both the value and the reason.
                    converted.append(f"{conversion} AS {quote('__typed_' + name)}")
                    value = f"r.{quote('__typed_' + name)}"
                    reasons.append((f"({column} IS NOT NULL AND {value} IS NULL)",
                                    f"'{name}: expected {expected}, got ' || chr(39) || {column} || chr(39)"))
            if not field_type.optional and decl.default is None:
                reasons.append((f"{column} IS NULL", f"'missing field {name}'"))
            if decl.default is not None:
                value = f"COALESCE({value}, {self.default_sql(decl.default.value, field_type)})"
            values.append(f"{value} AS {quote(name)}")
        key = info.decl.key
        joins = []
        for name, (field_type, _) in info.fields.items():
            if field_type.kind == "ref" and field_type.name != table and field_type.name in self.counts:
                target = field_type.name
                target_key = self.checked.tables[target].decl.key
                # One join per reference, read by both the test and the message (two NOT EXISTS
                # would be two joins). The target's ids are unique, so no row is repeated.
                alias = f"ref_{len(joins)}"
                joins.append(f"LEFT JOIN (SELECT {quote(target_key)} AS k FROM {quote(target)}) AS {alias} "
                             f"ON {alias}.k = r.{quote(name)}")
                reasons.append((f"(r.{quote(name)} IS NOT NULL AND {alias}.k IS NULL)",
                                f"'{name} ' || chr(39) || r.{quote(name)} || chr(39) || "
                                f"' is not a usable {target} record'"))
        # The reason text is built only for rows with a problem; most rows have none.
        problem = " OR ".join(condition for condition, _ in reasons)
        text = ", ".join(f"CASE WHEN {condition} THEN {message} END" for condition, message in reasons)
        reason = f"(CASE WHEN {problem} THEN concat_ws('; ', {text}) END)" if reasons else "CAST(NULL AS VARCHAR)"
        stage = quote(f"stage_{table}")
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT {', '.join(values)}, "
            f"r.__line AS __line, {reason} AS __reason "
            f"FROM (SELECT *{''.join(', ' + c for c in converted)} FROM {raw} AS r) AS r {' '.join(joins)} "
            f"WHERE {self.in_month(table)}")
        if key:  # unique among every record of a month-only table, not only the month's
            self.duplicates(table, stage, key, raw if table in self.month_only else stage)
        history = info.decl.history
        if history is not None:
            self.overlaps(table, stage, history)
        # The values as given, for rejected records only: nothing a user gave is lost.
        checked, used = self.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE __reason IS NULL) FROM {stage}").fetchone()
        (read,) = self.con.execute(f"SELECT count(*) FROM {raw}").fetchone() \
            if table in self.month_only else (checked,)
        data_json = "json_object(" + ", ".join(f"{text_literal(n)}, r.{quote(n)}" for n in info.fields) + ")"
        if checked > used:
            self.con.execute(
                f"INSERT INTO rejected SELECT {text_literal(table)}, {self.record_id(table, 's')}, {text_literal(file)}, "
                f"CAST(s.__line AS VARCHAR), s.__reason, CAST({data_json} AS VARCHAR) "
                f"FROM {stage} AS s JOIN {raw} AS r ON r.__line = s.__line WHERE s.__reason IS NOT NULL")
        fields = ", ".join(quote(n) for n in info.fields)
        # The record id is made only where it is read (a keyless table's is '#' and its line).
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(table)} AS SELECT {fields}, "
                         f"{self.record_id(table, stage)} AS __id, __line FROM {stage} WHERE __reason IS NULL")
        self.counts[table] = TableCount(table, read, used, checked - used, read - checked)

    def record_id(self, table: str, row: str) -> str:
        """A record's id: its key, or '#' and its line where it has none (or no key field)."""
        key = self.checked.tables[table].decl.key
        by_line = f"'#' || CAST({row}.__line AS VARCHAR)"
        return f"COALESCE({row}.{quote(key)}, {by_line})" if key else by_line

    def in_month(self, table: str) -> str:
        """Which records of a table to check and settle: for a month-only table, all but those
        with a valid date outside the month (a missing or malformed date is checked, and so
        rejected); for any other table, all. Ids are still checked against every record."""
        if table not in self.month_only:
            return "TRUE"
        field = self.checked.tables[table].decl.dated_by
        column = f"r.{quote(field)}"
        first, last = (date_literal(day) for day in self.month)
        if (table, field) not in self.native:
            column = f"r.{quote('__typed_' + field)}"  # NULL when missing or malformed
        return f"({column} IS NULL OR {column} BETWEEN {first} AND {last})"

    def duplicates(self, table: str, stage: str, key: str, among: str) -> None:
        """Of records that share an id, the first (by line) keeps it; the later ones in the stage
        are set aside. Ids are counted first: a file without repeats (the usual case) needs
        no search, and the search hashes only the ids the stage holds."""
        k = quote(key)
        ids = f"(SELECT {k} FROM {stage} WHERE {k} IS NOT NULL)"
        sharing = f"count({k})" if among == stage else f"count(*) FILTER (WHERE {k} IN {ids})"
        (repeats,) = self.con.execute(
            f"SELECT (SELECT {sharing} FROM {among}) - (SELECT count(DISTINCT {k}) FROM {stage})").fetchone()
        if not repeats:
            return
        message = f"'two {table} records have the id ' || s.{k}"
        self.con.execute(f"""
            UPDATE {stage} AS s SET __reason = concat_ws('; ', s.__reason, {message}) FROM (
              SELECT {k} AS k, min(__line) AS first_line FROM {among}
              WHERE {k} IN {ids} GROUP BY 1 HAVING count(*) > 1) AS dup
            WHERE dup.k = s.{k} AND s.__line > dup.first_line""")

    def overlaps(self, table: str, stage: str, history) -> None:
        """Of two rows of one key in force on the same day, the later-starting is set aside."""
        by, start = quote(history.by_field), quote(history.from_field)
        end = f"COALESCE({quote(history.until_field)}, DATE '9999-12-31')" if history.until_field else "DATE '9999-12-31'"
        self.con.execute(
            f"UPDATE {stage} SET __reason = 'ends before it starts' WHERE __reason IS NULL AND {end} < {start}")
        self.con.execute(f"""
            UPDATE {stage} SET __reason = o.reason FROM (
              SELECT __line, {by} AS who, 'overlaps the {table} row at line ' || CAST(prev_line AS VARCHAR)
                     || ' of ' || {text_literal(history.by_field)} || ' ' || {by} AS reason
              FROM (SELECT __line, {by}, {start} AS s,
                           max({end}) OVER (PARTITION BY {by} ORDER BY {start}, __line
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end,
                           last_value(__line) OVER (PARTITION BY {by} ORDER BY {start}, __line
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_line
                    FROM {stage} WHERE __reason IS NULL AND {by} IN (
                        SELECT {by} FROM {stage} WHERE __reason IS NULL GROUP BY 1 HAVING count(*) > 1))
              WHERE prev_end IS NOT NULL AND prev_end >= s) AS o
            WHERE {stage}.__line = o.__line""")

    def conversion(self, column: str, field_type) -> tuple:
        """(the value of a text column in its declared type, NULL where the text is malformed;
        what was expected). Numbers are checked by pattern first: exact decimals only."""
        kind = field_type.kind
        if kind == "date":
            return (f"(CASE WHEN regexp_full_match({column}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
                    f"THEN TRY_CAST({column} AS DATE) END)", "a date YYYY-MM-DD")
        if kind == "decimal":
            digits = len(str(DECIMAL_SCALE)) - 1
            return (f"(CASE WHEN regexp_full_match({column}, '[+-]?[0-9]{{1,12}}([.][0-9]{{1,{digits}}})?') "
                    f"THEN {_scaled_integer(column, digits)} END)",
                    f"a decimal number with at most {digits} decimals")
        if kind == "money":
            return (f"(CASE WHEN regexp_full_match({column}, '[+-]?[0-9]{{1,15}}([.][0-9]{{1,2}})?') "
                    f"THEN {_scaled_integer(column, 2)} END)",
                    "an amount in kronor with at most two decimals (whole öre)")
        if kind == "integer":
            return (f"(CASE WHEN regexp_full_match({column}, '[+-]?[0-9]{{1,15}}') THEN CAST({column} AS BIGINT) END)",
                    "a whole number")
        if kind == "boolean":
            return f"(CASE lower({column}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END)", "true or false"
        if kind == "enum":
            values = self.checked.enums[field_type.name].values
            return (f"(CASE WHEN {column} IN ({', '.join(text_literal(v) for v in values)}) THEN {column} END)",
                    f"one of {', '.join(values)}")
        return column, "text"

    @staticmethod
    def default_sql(value, field_type) -> str:
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if field_type.kind == "decimal":
            from fractions import Fraction
            return str(int(Fraction(value) * DECIMAL_SCALE))
        if isinstance(value, int):
            return str(value)
        if isinstance(value, dt.date):
            return f"DATE '{value.isoformat()}'"
        return text_literal(str(value))


def _scaled_integer(column: str, scale: int) -> str:
    """A decimal text with at most `scale` decimals (and at most 18 digits) as an integer of
    10^-scale units, exactly and without 128-bit arithmetic: DECIMAL(18, scale) holds it in
    64 bits; multiplying there is exact while the product fits, and beyond that dropping
    the point of its printed form (which shows every decimal place) scales it."""
    value = f"CAST({column} AS DECIMAL(18, {scale}))"
    return (f"(CASE WHEN abs({value}) < {10 ** (18 - 2 * scale)} THEN CAST({value} * {10 ** scale} AS BIGINT) "
            f"ELSE CAST(replace(CAST({value} AS VARCHAR), '.', '') AS BIGINT) END)")


def _trimmed_sql(text: str) -> str:
    """Text without surrounding spaces, empty as NULL; trimmed only where a space is there to
    trim (most values have none, and testing is cheaper than copying)."""
    return f"NULLIF(CASE WHEN {text} LIKE ' %' OR {text} LIKE '% ' THEN trim({text}) ELSE {text} END, '')"


def _trimmed(text: Optional[str]) -> Optional[str]:
    return None if text is None or not text.strip() else text.strip()


def _json_text(value) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


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
        con.execute(f"COPY {quote(table)} TO {_sql_path(path)} (FORMAT parquet)")
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
    intake = Intake(con, book, Path(data), (first, last), lowering.month_only_tables() - checks.read_whole)
    report = ProgressReport(con, progress, len(intake.table_order()) + 2)
    try:
        intake.run(report.begin)
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
        con.execute(f"COPY ({select}) TO {_sql_path(temporary)} {options}")
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
