"""The intake: input records into typed, checked tables, the same way for every verb.

`eval`, `explain`, the examples of `rulelang test` and `settle` all read input here, so one
set of rules says what a valid value is. Input is a directory of `<table>.csv`,
`<table>.csv.gz` or `<table>.parquet` files, one such file, one JSON file
`{"table": [records]}`, or records in memory (the Python API). Every value is read as text
and typed in SQL (DuckDB, or Spark through `spark.py`) with the declared types; decimals and money never pass
through binary floating point.

Every record given is accounted for: used, or set aside in the table `rejected` with its
reason and its values as given (a malformed value, a missing field, a duplicate id, a
reference to a record that is missing or itself set aside, overlapping history rows, a CSV
row with the wrong number of values). What cannot be read at all — a missing table, a file
that is not UTF-8, a damaged Parquet file, two files for one table — is an `InputError`
naming the file.

Column names, file names and values reach SQL only quoted (`sql.quote`, `sql.text_literal`)
or as bound parameters: a file cannot inject SQL.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import attrs

from ..evaluation.data import DEFAULTED_FIELD, ID_FIELD
from ..language.checker import CheckedRulebook
from ..language.diagnostics import DataError, RecordProblem
from .sql import DECIMAL_SCALE, date_literal, engine_setting, quote, text_literal

REJECT_COLUMNS = ("table", "record_id", "file", "line", "reason", "data")
MAX_LINE_BYTES = 64 * 1024 * 1024  # a CSV line (one record) may be this long
MAX_JSON_DEPTH = 64  # a JSON document nests tables, records and values: a few levels suffice
TABLE_FILE = re.compile(r"^(?P<stem>[^.]+)\.(?P<suffix>.+)$")
READABLE = {"csv": "csv", "csv.gz": "csv", "parquet": "parquet"}


class InputError(DataError):
    """Input that cannot be read at all (a missing table, a damaged file): names the file."""

    def __init__(self, file: str, message: str):
        super().__init__([RecordProblem(file, "", message)])


@attrs.frozen
class TableSource:
    """Where one table's records come from: a CSV or Parquet file, or rows in memory."""

    table: str
    kind: str  # "csv", "parquet" or "rows"
    display: str  # the file as the user named it
    path: Optional[Path] = None
    rows: Optional[list] = None  # [(file, line, record)] for "rows"


@attrs.frozen
class TableCount:
    """read = used + rejected + other_months: every record given is accounted for."""

    table: str
    read: int
    used: int
    rejected: int
    other_months: int = 0  # records of a dated table that are dated outside the month


# ------------------------------------------------------------------------ what a valid value is
# One definition for both intakes: in SQL here, in Python for a few records in memory
# (`small_intake.py`); a differential test holds the two equal.

DATE_PATTERN = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
DECIMAL_PLACES = len(str(DECIMAL_SCALE)) - 1
# (most digits before the point, most after it) of a number written as text
NUMBER_DIGITS = {"decimal": (12, DECIMAL_PLACES), "money": (15, 2), "integer": (15, 0)}
NUMBER_PATTERNS = {kind: f"[+-]?[0-9]{{1,{whole}}}" + (f"([.][0-9]{{1,{places}}})?" if places else "")
                   for kind, (whole, places) in NUMBER_DIGITS.items()}
FRACTION_OF_AN_ORE = "[+-]?[0-9]*[.][0-9]{3,}"
SHOWN_CHARACTERS = 60  # a value longer than this is cut in messages
TRIMMED_PARTS = r"\1\2\3"  # what trimmed_pattern keeps: one of its three groups, the others empty
DICTIONARY_ENCODINGS = ("PLAIN_DICTIONARY", "RLE_DICTIONARY")
READ_AS_STORED = ("decimal", "money", "integer", "enum")  # the kinds Intake.stored_value reads


def one_dictionary_page(pages) -> bool:
    """Whether a column chunk's pages (Parquet's encoding stats) hold its values as one data
    page of dictionary entries. DuckDB's writer keeps values that repeat so; a chunk of
    several pages (Arrow's writer starts one every 20,000 rows) DuckDB reads row by row for
    the most part, and there a function of the value costs what it costs on any text."""
    data = [page for page in pages or () if page["page_type"] != "DICTIONARY_PAGE"]
    return len(data) == 1 and data[0]["count"] == 1 and data[0]["encoding"] in DICTIONARY_ENCODINGS


def trimmed_pattern(kept: str) -> str:
    """A text as the raw table keeps it (_trimmed_sql), as one pattern for regexp_replace:
    one that begins or ends with a space loses the spaces (Unicode's, as DuckDB's trim) at
    both ends. What is left is kept (TRIMMED_PARTS) when it matches `kept`, a pattern
    without groups; any other text matches the last alternative, which keeps nothing."""
    return rf"(?s)^(?: \p{{Zs}}*({kept})\p{{Zs}}*|\p{{Zs}}*({kept})\p{{Zs}}* |({kept}))$|^.*$"


def value_kind(field_type, checked: CheckedRulebook) -> str:
    """The kind a field's values have in a table: a reference holds the kind of the key it
    names (a number for an integer key)."""
    if field_type.kind == "ref":
        target = checked.tables.get(field_type.name)
        key = target.decl.key if target is not None else None
        if key and key in target.fields and target.fields[key][0].kind == "integer":
            return "integer"
        return "text"
    return field_type.kind


def expected_value(kind: str, field_type, checked: CheckedRulebook) -> str:
    """What a value of this kind must look like, as a refusal says it."""
    if kind == "enum":
        return f"one of {', '.join(checked.enums[field_type.name].values)}"
    return {"date": "a date YYYY-MM-DD in the calendar",
            "decimal": f"a decimal number (at most 12 digits before the point and {DECIMAL_PLACES} after)",
            "money": "an amount in kronor (at most 15 digits, and two decimals: whole öre)",
            "integer": "a whole number (at most 15 digits)",
            "boolean": "true or false"}.get(kind, "text")


def resolved_references(checked: CheckedRulebook) -> dict:
    """The references the intake resolves to the record they name, as {(table, field): the
    column holding that record's `__line`}: those naming another table by a text key, when
    that table is taken in first (table_order). The intake checks such a reference by a
    join, which finds the line, and keeps it: a reader of the clean tables can then find the
    record by a number rather than by its text."""
    order = {name: place for place, name in enumerate(table_order(checked))}
    resolved = {}
    for table, info in checked.tables.items():
        for name, (field_type, _) in info.fields.items():
            target = checked.tables.get(field_type.name) if field_type.kind == "ref" else None
            if (target is not None and field_type.name != table and target.decl.key
                    and order[field_type.name] < order[table] and value_kind(field_type, checked) == "text"):
                resolved[(table, name)] = f"__row_{name}"
    return resolved


def row_columns(resolved: dict, table: str) -> list:
    """The columns of `table` holding the line of the record a reference names, of
    `resolved` (resolved_references)."""
    return [column for (of, _), column in resolved.items() if of == table]


def table_order(checked: CheckedRulebook) -> list:
    """Tables that others refer to first, so references can be checked against clean rows."""
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        info = checked.tables[name]
        for field_type, _ in info.fields.values():
            if field_type.kind == "ref":
                visit(field_type.name)
        if info.decl.history:
            visit(info.decl.history.of_table)
        order.append(name)

    for name in checked.tables:
        visit(name)
    return order


# ------------------------------------------------------------------------ finding the tables


def find_sources(data: Union[str, Path, dict], checked: CheckedRulebook, display: str = "<records>") -> dict:
    """table → TableSource for every table the input gives that the rulebook declares; an
    InputError for input that cannot be read, and for a file or directory that lacks a table
    the rulebook needs. Records in memory (the API, an example) may leave tables out: the
    evaluation names a table it needs and does not have."""
    if isinstance(data, dict):
        return _record_sources(data, display, checked, require=False)
    path = Path(data)
    if path.is_dir():
        sources = _directory_sources(path, checked)
        where = str(path)
    elif path.is_file():
        name = path.name.lower()
        if name.endswith(".json"):
            return _record_sources(read_json(path), str(path), checked)
        match = TABLE_FILE.match(path.name)
        suffix = match.group("suffix").lower() if match else ""
        if suffix not in READABLE:
            raise InputError(str(path), "not a JSON, CSV (.csv, .csv.gz) or Parquet file")
        table = match.group("stem")
        sources = {table: TableSource(table, READABLE[suffix], str(path), path)} if table in checked.tables else {}
        where = str(path)
    else:
        raise InputError(str(path), "no such file or directory")
    _require(sources, checked, where, "a table without records is a file with only its header line")
    return sources


def _directory_sources(directory: Path, checked: CheckedRulebook) -> dict:
    found: dict[str, list] = {}
    for file in sorted(directory.iterdir()):
        match = TABLE_FILE.match(file.name)
        if not match or not file.is_file():
            continue
        table = next((t for t in checked.tables if t.lower() == match.group("stem").lower()), None)
        if table is None:
            continue  # a table the rulebook does not read
        suffix = match.group("suffix").lower()
        if suffix not in READABLE:
            raise InputError(str(file), f"cannot read a .{suffix} file: give table {table} as {table}.csv, "
                                        f"{table}.csv.gz or {table}.parquet")
        found.setdefault(table, []).append(file)
    sources = {}
    for table, files in found.items():
        if len(files) > 1:
            raise InputError(str(directory), f"table {table} is given twice ({', '.join(f.name for f in files)}); "
                                             "keep one file per table")
        file = files[0]
        sources[table] = TableSource(table, READABLE[TABLE_FILE.match(file.name).group("suffix").lower()],
                                     str(file), file)
    return sources


def _require(sources: dict, checked: CheckedRulebook, where: str, hint: str) -> None:
    missing = [t for t, info in checked.tables.items() if t not in sources and not info.decl.optional]
    if missing:
        names = ", ".join(missing)
        raise InputError(where, f"the rulebook needs the table{'s' if len(missing) > 1 else ''} {names}, "
                                f"which the input does not give; {hint}")


def _record_sources(document: dict, display: str, checked: CheckedRulebook, require: bool = True) -> dict:
    if not isinstance(document, dict):
        raise InputError(display, 'expected {"<table>": [records], …}')
    sources = {}
    for table, rows in document.items():
        if table not in checked.tables:
            continue  # extra tables are allowed and ignored, like extra columns
        if not isinstance(rows, list):
            raise InputError(display, f'table {table} must be a list of records, as in {{"{table}": [{{…}}]}}')
        listed = [row if isinstance(row, tuple) else (display, i + 1, row) for i, row in enumerate(rows)]
        sources[table] = TableSource(table, "rows", display, rows=listed)
    if require:
        _require(sources, checked, display, "a table without records is an empty list")
    return sources


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def read_json(path: Path) -> dict:
    """`{"table": [records]}`; numbers are kept exact (never float), NaN and Infinity refused."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise InputError(str(path), f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                                    f"{error.start}); save the file as UTF-8") from None
    except OSError as error:
        raise InputError(str(path), f"cannot be read: {error.strerror}") from None
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise InputError(str(path), f"JSON nested {depth} levels deep; input records nest at most "
                                    f"{MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_float=Decimal, parse_int=int, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as error:
        raise InputError(str(path), f"not valid JSON: {error}") from None


def _json_depth(text: str) -> int:
    """How deep brackets nest, outside strings: checked before parsing, which recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


# ------------------------------------------------------------------------ CSV as written


@attrs.frozen
class CsvDialect:
    """The dialect of a CSV file, declared rather than sniffed from the data: comma-separated
    (semicolon when the header line has semicolons and no comma, as Excel writes in Sweden),
    double quotes, UTF-8 with or without a byte-order mark, a header line."""

    delimiter: str
    columns: tuple  # the header's names


def csv_dialect(path: Path) -> CsvDialect:
    try:
        with _open_bytes(path) as handle:
            first = handle.readline(MAX_LINE_BYTES)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(str(path), f"cannot be read: {error}") from None
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8):]
    try:
        header = first.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise InputError(str(path), f"not UTF-8 text (byte {first[error.start]:#04x} in the header line); "
                                    "save the file as UTF-8") from None
    if "\r" in header:
        raise InputError(str(path), "its lines end with a lone carriage return (as old Mac OS wrote them); "
                                    "save it with line ends \\n or \\r\\n")
    if not header.strip():
        raise InputError(str(path), "no header line: the first line names the columns")
    delimiter = ";" if ";" in header and "," not in header else ","
    try:
        columns = tuple(name.strip() for name in next(csv.reader([header], delimiter=delimiter)))
    except csv.Error as error:
        raise InputError(str(path), f"the header line cannot be read as CSV: {error}") from None
    seen = set()
    for name in columns:
        if name in seen:
            raise InputError(str(path), f"the header names column {name!r} twice")
        seen.add(name)
    if any(not name for name in columns):
        raise InputError(str(path), "the header has a column without a name")
    return CsvDialect(delimiter, columns)


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def csv_source_sql(path: Path, dialect: CsvDialect, rejects: str) -> str:
    """read_csv with the declared dialect: every column text, rows that do not parse set
    aside in `rejects` (with their line and text) instead of stopping the read."""
    columns = "{" + ", ".join(f"{text_literal(name)}: 'VARCHAR'" for name in dialect.columns) + "}"
    return (f"read_csv({text_literal(str(path))}, header = false, skip = 1, columns = {columns}, "
            f"delim = {text_literal(dialect.delimiter)}, quote = '\"', escape = '\"', auto_detect = false, "
            f"ignore_errors = true, store_rejects = true, rejects_table = {text_literal(rejects)}, "
            f"rejects_scan = {text_literal(rejects + '_scan')}, max_line_size = {MAX_LINE_BYTES})")


def csv_record_lines(path: Path, dialect: CsvDialect, good: int, bad: int) -> tuple:
    """The line each record starts on, in file order: (lines of the rows DuckDB read, lines of
    the rows it set aside). A record may span lines (a quoted newline) and blank lines are
    skipped, so a record's place in the file is not its line; read only when a record is
    reported."""
    good_lines, bad_lines = [], []
    csv.field_size_limit(MAX_LINE_BYTES)
    try:
        _scan_records(path, dialect, good, bad, good_lines, bad_lines)
    except (csv.Error, OSError, EOFError):
        pass  # the lines found so far; a record past them is reported by its place
    return good_lines, bad_lines


def _scan_records(path: Path, dialect: CsvDialect, good: int, bad: int, good_lines: list, bad_lines: list) -> None:
    with _open_bytes(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=dialect.delimiter)
        next(reader, None)
        start = reader.line_num + 1
        for row in reader:
            if row:
                intact = len(row) == len(dialect.columns) and not any(_escaped(v) for v in row)
                (good_lines if intact else bad_lines).append(start)
                if len(good_lines) >= good and len(bad_lines) >= bad:
                    break
            start = reader.line_num + 1


def _escaped(value: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in value)


# ------------------------------------------------------------------------ records in memory


def _json_text(value) -> tuple:
    """(text, problem): a JSON value as the text a CSV file would hold, or why it cannot be one."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, Decimal):
        return (str(value) if value.is_finite() else None), (None if value.is_finite() else "not a number")
    if isinstance(value, Fraction):  # a decimal written in a rulebook's example
        return _fraction_text(value), None
    if isinstance(value, float):
        return None, "a binary floating-point number; write decimals as text so that they stay exact"
    if isinstance(value, dt.date):
        return value.isoformat(), None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None, "not valid text (it holds a lone UTF-16 surrogate)"
        return value, None
    return None, f"expected a single value, got {'a list' if isinstance(value, list) else 'an object'}"


def raw_record(table: str, names: list, record) -> tuple:
    """([each field's value as trimmed text, or None], the reason found before typing, or
    None): a record in memory as a CSV row would give it. A record that is not an object, or a
    value that is not a single value, is kept with its reason, to be reported with the rest."""
    problems = []
    if not isinstance(record, dict):
        problems.append(f"a {table} record must be an object, not {json.dumps(record, default=str)[:40]}")
        record = {}
    texts = []
    for name in names:
        text, problem = _json_text(record.get(name))
        if problem:
            problems.append(f"{name}: {problem}")
        texts.append(_trimmed(text))
    return texts, "; ".join(problems) or None


def _fraction_text(value: Fraction) -> str:
    decimal = Decimal(value.numerator) / Decimal(value.denominator)
    return format(decimal, "f")


# ------------------------------------------------------------------------ the intake


class Intake:
    """Loads and checks input tables in a DuckDB connection; leaves clean typed tables under
    the tables' own names (with `__id` and `__line`) and every refused record in `rejected`."""

    def __init__(self, con, checked: CheckedRulebook, sources: dict, month: Optional[tuple] = None,
                 month_only: Iterable[str] = frozenset(), focus: Optional[tuple] = None):
        self.con = con
        self.checked = checked
        self.sources = sources
        self.counts: dict[str, TableCount] = {}
        self.native: set = set()  # (table, field) read from Parquet in its declared type
        self.scaled: set = set()  # of those, decimals scaled to integers (given as __given_<field>)
        self.stored: set = set()  # (table, field) of text a Parquet file keeps as a dictionary (read as stored)
        self.dialects: dict[str, CsvDialect] = {}
        self.malformed: dict[str, list] = {}  # table → CSV rows the reader set aside
        self.staged: set = set()  # tables checked record by record (an absent or empty one is not)
        self.refused: set = set()  # tables of which some record was refused
        self.id_arrays: dict = {}  # table → its usable ids as a bit array (id_array), or None
        self.partial: set = set()  # tables a focus kept only part of (narrow_to_focus)
        self.stage_arrays: dict = {}  # table → the bit array that counted its stage's ids (distinct_ids)
        self.enum_types: dict = {}  # a rulebook's enum → its DuckDB ENUM (enum_type)
        self.month = month  # (first, last) day of the month settled
        self.focus = focus  # (table, record id): only what that record's evaluation reads
        # Dated tables of which the settlement reads only the month's records (see
        # `Lowering.month_only_tables`); records another table refers to are always checked.
        referred = {field_type.name for info in checked.tables.values()
                    for field_type, _ in info.fields.values() if field_type.kind == "ref"}
        self.month_only = set(month_only) - referred if month else set()
        self.resolved = resolved_references(checked)

    # ---- running
    def run(self, begin: Callable[[str], None] = lambda message: None) -> None:
        """Check every table, calling `begin` as each one starts."""
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE rejected "
                         f"({', '.join(f'{quote(c)} VARCHAR' for c in REJECT_COLUMNS)})")
        tables = self.table_order()
        given = [t for t in tables if t in self.sources and self.raw(t, self.sources[t])]
        if self.focus is not None:
            self.narrow_to_focus(given)
        for table in tables:
            begin(f"checking {table}")
            if table in given:
                self.typed(table)
            else:
                self.empty(table)

    def table_order(self) -> list:
        return table_order(self.checked)

    def empty(self, table: str) -> None:
        columns = [f"{quote(name)} {self.sql_type(t)}" for name, (t, _) in self.checked.tables[table].fields.items()]
        rows = "".join(f", {quote(column)} BIGINT" for column in row_columns(self.resolved, table))
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(table)} "
                         f"({', '.join(columns)}, __id VARCHAR, __line BIGINT{rows})")
        self.counts[table] = TableCount(table, 0, 0, 0)

    def value_kind(self, field_type) -> str:
        return value_kind(field_type, self.checked)

    def sql_type(self, field_type) -> str:
        kind = self.value_kind(field_type)
        if kind == "enum":
            return self.enum_type(field_type.name)
        return {"date": "DATE", "decimal": "BIGINT", "money": "BIGINT", "integer": "BIGINT",
                "boolean": "BOOLEAN"}.get(kind, "VARCHAR")

    def parquet_relation(self, source: TableSource) -> str:
        """A Parquet file as rows with their places (`file_row_number`, from 0)."""
        return f"read_parquet({text_literal(str(source.path))}, file_row_number = true)"

    def execute(self, source: TableSource, sql: str, parameters=None):
        """A statement that reads a user's file: its failures name the file (exit 2). Errors in
        the statement itself (parsing, binding) are bugs and stay so."""
        import duckdb

        try:
            return self.con.execute(sql, parameters) if parameters is not None else self.con.execute(sql)
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.InternalException):
            raise
        except duckdb.Error as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InputError(source.display, f"cannot be read: {first}") from None

    # ---- raw text
    def raw(self, table: str, source: TableSource) -> bool:
        """The table's declared columns as trimmed text (empty as NULL), with the record's
        place (`__line`), file (`__file`) and any reason found before typing (`__pre`), in
        raw_<table>; False when the input gives the table no rows at all."""
        if source.kind == "rows":
            return self.raw_rows(table, source)
        fields = self.checked.tables[table].fields
        raw = quote(f"raw_{table}")
        if source.kind == "csv":
            dialect = self.dialects[table] = csv_dialect(source.path)
            from_ = csv_source_sql(source.path, dialect, f"rejects_{table}")
            line = "CAST(row_number() OVER () + 1 AS BIGINT)"
            described = {name: "VARCHAR" for name in dialect.columns}
        else:
            from_ = self.parquet_relation(source)
            line = "CAST(file_row_number + 1 AS BIGINT)"  # free, where a window would sort
            described = {r[0]: r[1] for r in self.execute(source, f"DESCRIBE SELECT * FROM {from_}").fetchall()}
        dictionaries = self.dictionary_texts(source) if source.kind == "parquet" else set()
        columns = []
        for name, (field_type, decl) in fields.items():
            if name not in described:
                if field_type.optional or decl.default is not None:
                    columns.append(f"CAST(NULL AS VARCHAR) AS {quote(name)}")
                    continue
                hint = ""
                if source.kind == "csv" and len(described) == 1 and (";" in next(iter(described)) or
                                                                    "\t" in next(iter(described))):
                    hint = "; columns are separated by commas (or semicolons)"
                raise InputError(source.display, f"table {table} has no column {name}{hint}")
            if described[name] in ("DOUBLE", "FLOAT"):
                raise InputError(source.display, f"column {name} is a binary floating-point number; "
                                                 "write decimals as text or DECIMAL so that they stay exact")
            native = self.native_column(described[name], field_type, quote(name))
            if native is not None:
                columns.append(f"{native} AS {quote(name)}")  # already of the declared type
                self.native.add((table, name))
                if native != quote(name):  # scaled: a rejected record shows the value as given
                    columns.append(f"CAST({quote(name)} AS VARCHAR) AS {quote('__given_' + name)}")
                    self.scaled.add((table, name))
            else:
                columns.append(f"{_trimmed_sql(f'CAST({quote(name)} AS VARCHAR)')} AS {quote(name)}")
                if (name in dictionaries and described[name] == "VARCHAR"
                        and self.value_kind(field_type) in READ_AS_STORED):
                    columns.append(f"{quote(name)} AS {quote('__stored_' + name)}")  # as stored: see stored_value
                    self.stored.add((table, name))
        columns += [f"{line} AS __line", f"{text_literal(source.display)} AS __file", "CAST(NULL AS VARCHAR) AS __pre"]
        # Parquet is read again cheaply (only the columns asked for); CSV is parsed once.
        made = "VIEW" if source.kind == "parquet" else "TABLE"
        self.execute(source, f"CREATE OR REPLACE TEMP {made} {raw} AS SELECT {', '.join(columns)} FROM {from_}")
        return True

    def raw_rows(self, table: str, source: TableSource) -> bool:
        """Records in memory (a JSON file, the API, an example) as the same raw text table,
        loaded column by column. A record that is not an object, or a value that is not a
        single value, is kept with its reason: it is reported with the others."""
        if not source.rows:
            return False
        names = list(self.checked.tables[table].fields)
        columns: dict[str, list] = {name: [] for name in names}
        lines, files, reasons = [], [], []
        for file, line, row in source.rows:
            texts, reason = raw_record(table, names, row)
            for name, text in zip(names, texts):
                columns[name].append(text)
            lines.append(line)
            files.append(file)
            reasons.append(reason)
        parameters = {f"c{i}": columns[name] for i, name in enumerate(names)}
        parameters.update(lines=lines, files=files, reasons=reasons)
        selected = [f"unnest($c{i}::VARCHAR[]) AS {quote(name)}" for i, name in enumerate(names)]
        self.execute(source, f"CREATE OR REPLACE TEMP TABLE {quote(f'raw_{table}')} AS SELECT "
                             f"{', '.join(selected + ['unnest($lines::BIGINT[]) AS __line', 'unnest($files::VARCHAR[]) AS __file', 'unnest($reasons::VARCHAR[]) AS __pre'])}",
                     parameters)
        return True

    def dictionary_texts(self, source: TableSource) -> set:
        """The text columns a Parquet file keeps, in every row group, as one page of
        dictionary entries (one_dictionary_page): DuckDB reads those as a dictionary of the
        different values and which one each row has, and a function of such a column alone
        is worked out once a different value (stored_value)."""
        rows = self.execute(source, f"SELECT path_in_schema, type, encoding_stats FROM parquet_metadata("
                                    f"{text_literal(str(source.path))})").fetchall()
        kept, other = set(), set()
        for name, stored_type, pages in rows:
            (kept if stored_type == "BYTE_ARRAY" and one_dictionary_page(pages) else other).add(name)
        return kept - other

    def stored_value(self, column: str, field_type) -> str:
        """The value of a text column as stored (not yet trimmed) in its declared type, one
        of READ_AS_STORED; NULL where the text, trimmed as the raw table trims it, is not one.
        Written with functions alone, which DuckDB works out once a different value of a
        dictionary rather than once a row: on 2.4 M persons' two weights and sex 0.04 s
        against 0.29 s (the row-by-row `conversion`, the same values: a test holds them equal)."""
        kind = self.value_kind(field_type)
        if kind == "enum":
            trimmed = f"regexp_replace({column}, '{trimmed_pattern('.*?')}', '{TRIMMED_PARTS}')"
            return f"TRY_CAST({trimmed} AS {self.enum_type(field_type.name)})"
        kept = NUMBER_PATTERNS[kind].replace("(", "(?:")  # without groups of its own
        number = f"regexp_replace({column}, '{trimmed_pattern(kept)}', '{TRIMMED_PARTS}')"  # '' if none
        if kind == "integer":
            return f"TRY_CAST({number} AS BIGINT)"
        places = NUMBER_DIGITS[kind][1]
        return f"TRY_CAST({_units_printed(f'TRY_CAST({number} AS DECIMAL(18, {places}))')} AS BIGINT)"

    def native_column(self, source_type: str, field_type, column: str) -> Optional[str]:
        """A Parquet column that already holds values of the declared type, as that type,
        without a text check; None when its values must be checked as text. A DECIMAL
        column whose places fit is scaled exactly (a weight DECIMAL(6, 4) to millionths)."""
        kind = self.value_kind(field_type)
        if (kind == "date" and source_type == "DATE" or kind == "boolean" and source_type == "BOOLEAN"
                or kind == "integer" and source_type in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT")):
            return column
        decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", source_type)
        if decimal and kind in ("decimal", "money"):
            width, places = int(decimal.group(1)), int(decimal.group(2))
            scale, digits = (DECIMAL_SCALE, 12) if kind == "decimal" else (100, 15)
            if places <= len(str(scale)) - 1 and width - places <= digits:
                return f"CAST({column} * {scale} AS BIGINT)"  # exact: the places fit the scale
        return None

    # ---- one record's reach
    def narrow_to_focus(self, given: list) -> None:
        """Keep of each raw table only what one record's evaluation can read: the record, the
        records its ids name, the history rows of every record kept, the rows that name the
        starting record (a clinic's listings and visits), and small tables whole; so one line
        of a region-sized settlement is explained without loading the region."""
        table, record_id, *asked = self.focus
        kept_whole = asked[0] if asked else frozenset()  # tables the caller needs whole
        tables = self.checked.tables
        keep = {name: f"keep_{name}" for name in given}
        # Each kept row's line and the ids it holds (its key, its references), as evaluation
        # reads them: following them reads the kept rows, not the region's table again.
        held = {name: [field for field, (field_type, _) in tables[name].fields.items()
                       if field == tables[name].decl.key or field_type.kind == "ref" and field_type.name in keep
                       and tables[field_type.name].decl.key] for name in given}
        for name in given:
            whole = name in kept_whole or self.con.execute(
                f"SELECT count(*) <= {FOCUS_WHOLE_TABLE_ROWS} FROM {quote('raw_' + name)}").fetchone()[0]
            if not whole:
                self.partial.add(name)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(keep[name])} AS {self.kept_ids(name, held)} "
                             f"WHERE {'TRUE' if whole else 'FALSE'}")
        start_key = tables[table].decl.key
        if not start_key and table in keep:  # a record without a key is named by its line (record_id)
            self.keep_where(table, keep, held, "'#' || CAST(__line AS VARCHAR) = ?", [record_id])
        if start_key and table in keep:
            self.keep_where(table, keep, held, f"{self.id_text(table, start_key)} = ?", [record_id])
            for name in given:  # rows that name the starting record
                for field, (field_type, _) in tables[name].fields.items():
                    if field_type.kind == "ref" and field_type.name == table and name != table:
                        self.keep_where(name, keep, held, f"{self.id_text(name, field)} = ?", [record_id])
        # Follow ids and histories until nothing new comes in: from a table only when it kept
        # more rows since its ids were last followed. Each table a step adds to is scanned
        # once a step, for every id that names its rows.
        followed: dict = {}  # table → rows kept when its ids were last followed
        sought: dict = {}  # (table, id column as read) → its tables of ids looked for, and new (not_yet_sought)
        while True:
            grown = {name: size for name in given if (size := self.kept_rows(keep[name])) != followed.get(name, 0)}
            if not grown:
                break
            followed.update(grown)
            named: dict = {}  # table → {its id column as read: the kept ids that name its rows}
            for name in grown:
                for field, (field_type, _) in tables[name].fields.items():  # the records its ids name
                    target = field_type.name if field_type.kind == "ref" else None
                    if target in keep and tables[target].decl.key:
                        named.setdefault(target, {}).setdefault(
                            self.id_text(target, tables[target].decl.key), []).append(
                            f"SELECT {quote('id_' + field)} FROM {quote(keep[name])}")
                for history_table in given:  # the history rows of its records
                    history = tables[history_table].decl.history
                    if history is not None and history.of_table == name and tables[name].decl.key:
                        named.setdefault(history_table, {}).setdefault(
                            self.id_text(history_table, history.by_field), []).append(
                            f"SELECT {quote('id_' + tables[name].decl.key)} FROM {quote(keep[name])}")
            for target, columns in named.items():
                wanted = [condition for column, ids in columns.items()
                          if (condition := self.not_yet_sought(target, column, ids, sought)) is not None]
                if wanted:
                    self.keep_where(target, keep, held, " OR ".join(wanted), [])
        for made in sought.values():
            for name in made:
                self.con.execute(f"DROP TABLE IF EXISTS {quote(name)}")
        for name in given:
            raw = quote("raw_" + name)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote('focused_' + name)} AS SELECT r.* FROM {raw} AS r "
                             f"WHERE r.__line IN (SELECT __line FROM {quote(keep[name])})")
            self.con.execute(f"DROP {'VIEW' if self.sources[name].kind == 'parquet' else 'TABLE'} {raw}")
            self.con.execute(f"ALTER TABLE {quote('focused_' + name)} RENAME TO {quote('raw_' + name)}")

    def id_text(self, table: str, field: str, alias: str = "") -> str:
        """An id column of a raw table as evaluation reads it, as text: an integer key or a
        reference to one as the number it is ('01' names clinic 1), a text id as given."""
        column = f"{alias}{quote(field)}"
        if (table, field) not in self.native:
            column = self.conversion(column, self.checked.tables[table].fields[field][0].required())[0]
        return f"CAST({column} AS VARCHAR)"

    def not_yet_sought(self, table: str, column: str, ids: list, sought: dict) -> Optional[str]:
        """The condition on `column` (an id column of `table` as read) that finds the rows the
        ids of the queries `ids` name, leaving out the ids looked for there before (every
        row they name is kept already); None when no id is new. `sought` holds, for each
        (table, column), the tables of the ids looked for and of the new ones."""
        if (table, column) not in sought:
            number = len(sought)
            sought[(table, column)] = (f"sought_{table}_{number}", f"fresh_{table}_{number}")
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(sought[(table, column)][0])} (i VARCHAR)")
        looked_for, fresh = (quote(name) for name in sought[(table, column)])
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {fresh} AS SELECT DISTINCT i FROM ({' UNION ALL '.join(ids)}) "
                         f"AS given(i) WHERE i IS NOT NULL AND i NOT IN (SELECT i FROM {looked_for})")
        if not self.kept_rows(sought[(table, column)][1]):
            return None
        self.con.execute(f"INSERT INTO {looked_for} SELECT i FROM {fresh}")
        return f"{column} IN (SELECT i FROM {fresh})"

    def kept_ids(self, name: str, held: dict) -> str:
        """The line and the ids (held) of the rows of raw table `name`, as a query to add a
        condition to."""
        ids = "".join(f", {self.id_text(name, field)} AS {quote('id_' + field)}" for field in held[name])
        return f"SELECT __line{ids} FROM {quote('raw_' + name)}"

    def keep_where(self, name: str, keep: dict, held: dict, condition: str, parameters: list) -> None:
        """Keep the rows of table `name` that meet `condition`, with the ids they hold."""
        self.con.execute(f"INSERT INTO {quote(keep[name])} {self.kept_ids(name, held)} WHERE ({condition}) "
                         f"AND __line NOT IN (SELECT __line FROM {quote(keep[name])})", parameters)

    def kept_rows(self, kept: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM {quote(kept)}").fetchone()[0]

    # ---- typing and checking
    def typed(self, table: str) -> None:
        info = self.checked.tables[table]
        raw = quote(f"raw_{table}")
        reasons, converted, values = [("r.__pre IS NOT NULL", "r.__pre")], [], []
        typed_values = {}
        for name, (field_type, decl) in info.fields.items():
            column = f"r.{quote(name)}"  # already trimmed, empty as NULL, in raw_<table>
            value = column
            if (table, name) not in self.native:
                stored = f"r.{quote('__stored_' + name)}" if (table, name) in self.stored else None
                conversion, expected = self.conversion(column, field_type.required(), stored)
                if conversion != column:
                    # Converted once, in an inner query, and read by both the value and the reason.
                    converted.append(f"{conversion} AS {quote('__typed_' + name)}")
                    value = f"r.{quote('__typed_' + name)}"
                    reasons.append((f"({column} IS NOT NULL AND {value} IS NULL)",
                                    self.refusal(name, column, field_type.required(), expected)))
            if not field_type.optional and decl.default is None:
                reasons.append((f"({column} IS NULL AND r.__pre IS NULL)", text_literal(f"missing field {name}")))
            if decl.default is not None:
                value = f"COALESCE({value}, {self.default_sql(decl.default.value, field_type)})"
            typed_values[name] = value
            values.append(f"{value} AS {quote(name)}")
        key = info.decl.key
        joins, refers, rows = [], [], []
        for name, (field_type, _) in info.fields.items():
            target = field_type.name if field_type.kind == "ref" else None
            if target is not None and target != table and target in self.counts and self.checked.tables[target].decl.key:
                target_key = self.checked.tables[target].decl.key
                given = typed_values[name]
                found = self.found_in_an_array(target, target_key, given)
                if found is None:
                    # One join per reference, read by both the test and the message (two NOT
                    # EXISTS would be two joins). The target's ids are unique: no row repeats.
                    # A text id keeps the line of the record it names (resolved_references).
                    alias = f"ref_{len(joins)}"
                    joins.append(f"LEFT JOIN (SELECT {quote(target_key)} AS k, __line AS line FROM {quote(target)}) "
                                 f"AS {alias} ON {alias}.k = {given}")
                    found = f"{alias}.k IS NOT NULL"
                    if (table, name) in self.resolved:
                        rows.append(f"{alias}.line AS {quote(self.resolved[(table, name)])}")
                named = f"{text_literal(name + ' ')} || chr(39) || {_shown_sql(f'r.{quote(name)}')} || chr(39)"
                reasons.append((f"(r.{quote(name)} IS NOT NULL AND NOT ({found}))",
                                f"{named} || {text_literal(f' is not a record of {target}')}"))
                refers.append((name, target, target_key, given))
        if len(rows) != len(row_columns(self.resolved, table)):  # resolved_references promised every one
            raise AssertionError(f"references of {table} left unresolved")
        # The reason text is built only for rows with a problem; most rows have none.
        problem = " OR ".join(condition for condition, _ in reasons)
        text = ", ".join(f"CASE WHEN {condition} THEN {message} END" for condition, message in reasons)
        reason = f"(CASE WHEN {problem} THEN concat_ws('; ', {text}) END)"
        stage = quote(f"stage_{table}")
        self.staged.add(table)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT {', '.join(values + rows)}, "
            f"r.__line AS __line, {reason} AS __reason "
            f"FROM (SELECT *{''.join(', ' + c for c in converted)} FROM {raw} AS r) AS r {' '.join(joins)} "
            f"WHERE {self.in_month(table)}")
        for name, target, target_key, given in refers:
            self.naming_refused(stage, name, target, target_key)
        read = staged = None
        if table in self.month_only:
            (read,) = self.con.execute(f"SELECT count(*) FROM {raw}").fetchone()
            (staged,) = self.con.execute(f"SELECT count(*) FROM {stage}").fetchone()
        if key:  # unique among every record of a month-only table, not only the month's
            # (when the month holds every record, the stage is all of them: no search in raw,
            # where a key read as text is typed as the stage's is)
            among, among_key = stage, quote(key)
            if table in self.month_only and staged < read:
                among = raw
                if (table, key) not in self.native:
                    among_key = self.conversion(quote(key), info.fields[key][0].required())[0]
            self.duplicates(table, stage, key, among, among_key)
        history = info.decl.history
        if history is not None:
            self.overlaps(table, stage, history)
        checked, used = self.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE __reason IS NULL) FROM {stage}").fetchone()
        if checked > used:
            self.refused.add(table)
        if read is None:
            read = checked
        # The values as given, for rejected records only: nothing a user gave is lost.
        given = {n: f"r.{quote('__given_' + n if (table, n) in self.scaled else n)}" for n in info.fields}
        data_json = "json_object(" + ", ".join(f"{text_literal(n)}, {given[n]}" for n in info.fields) + ")"
        if checked > used:
            self.con.execute(
                f"INSERT INTO rejected SELECT {text_literal(table)}, {self.record_id(table, 's')}, r.__file, "
                f"CAST(s.__line AS VARCHAR), s.__reason, CAST({data_json} AS VARCHAR) "
                f"FROM {stage} AS s JOIN {raw} AS r ON r.__line = s.__line WHERE s.__reason IS NOT NULL")
        malformed = self.malformed_rows(table)
        if self.sources[table].kind == "csv" and (checked > used or malformed):
            self.place_csv_records(table, malformed)
        fields = ", ".join(quote(n) for n in info.fields)
        lines = "".join(f", {quote(column)}" for column in row_columns(self.resolved, table))
        # The record id is made only where it is read (a keyless table's is '#' and its line).
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(table)} AS SELECT {fields}, "
                         f"{self.record_id(table, stage)} AS __id, __line{lines} FROM {stage} WHERE __reason IS NULL")
        self.counts[table] = TableCount(table, read + malformed, used, checked - used + malformed, read - checked)

    def naming_refused(self, stage: str, name: str, target: str, target_key: str) -> None:
        """An id that names a record the intake refused says so, rather than that the record
        is not there. Looked for only when the referred table refused some (rarely)."""
        if target not in self.refused:
            return
        self.con.execute(
            f"UPDATE {stage} AS s SET __reason = replace(s.__reason, "
            f"{text_literal(name + ' ')} || chr(39) || CAST(s.{quote(name)} AS VARCHAR) || chr(39) || "
            f"{text_literal(' is not a record of ' + target)}, "
            f"{text_literal(name + ' ')} || chr(39) || CAST(s.{quote(name)} AS VARCHAR) || chr(39) || "
            f"{text_literal(' names a ' + target + ' record that has errors')}) "
            f"WHERE s.__reason IS NOT NULL AND s.{quote(name)} IN "
            f"(SELECT {quote(target_key)} FROM {quote('stage_' + target)} WHERE __reason IS NOT NULL)")

    def malformed_rows(self, table: str) -> int:
        """CSV rows that do not parse (too many or too few values, an unclosed quote), set
        aside by the reader: each is rejected with its text. Bytes that are not UTF-8 make
        the whole file unreadable: it was saved in another encoding."""
        source = self.sources[table]
        if source.kind != "csv":
            return 0
        rejects = quote(f"rejects_{table}")
        rows = self.con.execute(f"SELECT error_type, error_message, csv_line, byte_position FROM {rejects} "
                                "ORDER BY byte_position").fetchall()
        if not rows:
            return 0
        if any(kind == "INVALID ENCODING" for kind, *_ in rows):
            raise InputError(source.display, "not UTF-8 text (saved in another encoding, such as Latin-1 or "
                                             "Windows-1252); save the file as UTF-8")
        self.malformed[table] = rows
        return len(rows)

    def place_csv_records(self, table: str, malformed: int) -> None:
        """The file line of each record of a CSV table that is reported (the rows read are
        numbered in order; blank lines and quoted newlines make that differ from the line),
        and the malformed rows, each with its line, its key where the row gives it, and its
        text as written."""
        source, dialect = self.sources[table], self.dialects[table]
        rows = self.con.execute("SELECT CAST(line AS BIGINT) FROM rejected WHERE \"table\" = ?", [table]).fetchall()
        needed = max((line - 1 for (line,) in rows), default=0)  # __line is the row's place + 1 (the header)
        good, bad = csv_record_lines(source.path, dialect, needed, malformed)
        if rows and good:  # none when damaged bytes stop Python's reader at once: places stay
            self.con.execute("CREATE OR REPLACE TEMP TABLE line_places (place BIGINT, line BIGINT)")
            self.con.executemany("INSERT INTO line_places VALUES (?, ?)",
                                 [(place + 2, line) for place, line in enumerate(good)])
            self.con.execute("UPDATE rejected SET line = CAST(p.line AS VARCHAR) FROM line_places AS p "
                             "WHERE rejected.\"table\" = ? AND CAST(rejected.line AS BIGINT) = p.place", [table])
        key = self.checked.tables[table].decl.key
        column = dialect.columns.index(key) if key in dialect.columns else None
        inserted = []
        for index, (kind, message, text, position) in enumerate(self.malformed.get(table, [])):
            line = bad[index] if index < len(bad) else None
            try:
                values = next(csv.reader([(text or "").replace("\r", " ")], delimiter=dialect.delimiter), [])
            except csv.Error:
                values = []
            given = values[column].strip() if column is not None and column < len(values) else ""
            record = given or (f"#{line}" if line else f"byte {position}")
            inserted.append((table, record, source.display, str(line) if line else None,
                             f"a malformed CSV row: {_reject_reason(kind, message)}",
                             json.dumps({"csv_line": text}, ensure_ascii=False)))
        if inserted:
            self.con.executemany("INSERT INTO rejected VALUES (?, ?, ?, ?, ?, ?)", inserted)

    def record_id(self, table: str, row: str) -> str:
        """A record's id: its key, or '#' and its line where it has none (or no key field)."""
        key = self.checked.tables[table].decl.key
        by_line = f"'#' || CAST({row}.__line AS VARCHAR)"
        return f"COALESCE(CAST({row}.{quote(key)} AS VARCHAR), {by_line})" if key else by_line

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
        return f"(r.__pre IS NOT NULL OR {column} IS NULL OR {column} BETWEEN {first} AND {last})"

    def duplicates(self, table: str, stage: str, key: str, among: str, among_key: str) -> None:
        """Of records that share an id, the first (by line) keeps it; the later ones in the stage
        are set aside. Ids are counted first: a file without repeats (the usual case) needs
        no search, and the search hashes only the ids the stage holds. `among` is the table
        searched (the stage, or every record read), `among_key` the typed id there."""
        k = quote(key)
        ids = f"(SELECT {k} FROM {stage} WHERE {k} IS NOT NULL)"
        sharing = f"count({k})" if among == stage else f"count(*) FILTER (WHERE {among_key} IN {ids})"
        (repeats,) = self.con.execute(
            f"SELECT (SELECT {sharing} FROM {among}) - ({self.distinct_ids(table, stage, key)})").fetchone()
        if not repeats:
            return
        message = f"{text_literal('two ' + table + ' records have the id ')} || s.{k}"
        self.con.execute(f"""
            UPDATE {stage} AS s SET __reason = concat_ws('; ', s.__reason, {message}) FROM (
              SELECT {among_key} AS k, min(__line) AS first_line FROM {among}
              WHERE {among_key} IN {ids} GROUP BY 1 HAVING count(*) > 1) AS dup
            WHERE dup.k = s.{k} AND s.__line > dup.first_line""")

    def distinct_ids(self, table: str, stage: str, key: str) -> str:
        """SQL for the number of different ids `key` in `stage`. Whole-number ids that fill
        most of their range (1 to n with a few gaps, as a register numbers its records;
        dense_ids) are the bits set in a bit array indexed by the id (bitstring_agg): on the
        workload's 2.4 M persons 24 ms, against 61 ms for DuckDB's perfect hash aggregate and
        174 ms for a hash table. The array is kept as the table's bit array of usable ids
        (id_array) while no record is refused. Other ids are counted in a hash table."""
        array = self.bit_array(table, key, stage)
        if array is None:
            return f"SELECT count(DISTINCT {quote(key)}) FROM {stage}"
        self.stage_arrays[table] = array
        return f"SELECT bit_count(getvariable({text_literal(array[0])}))"

    def dense_ids(self, table: str, key: str, rows: str) -> Optional[tuple]:
        """(least, greatest) of the ids `key` of `table` in `rows` (a stage or a view), when
        they are whole numbers that fill enough of their range for an array (dense_range)."""
        if self.value_kind(self.checked.tables[table].fields[key][0]) != "integer":
            return None
        k = quote(key)
        low, high, ids = self.con.execute(f"SELECT min({k}), max({k}), count({k}) FROM {rows}").fetchone()
        return (low, high) if dense_range(low, high, ids) else None

    def found_in_an_array(self, target: str, key: str, given: str) -> Optional[str]:
        """SQL that is true where the id `given` names a usable record of `target`, read from
        a bit array of its ids, when they are whole numbers that fill most of their range (as
        for counting, see dense_range); None otherwise, and the reference is checked by a
        join. A join builds a hash table of every id of the target (2.4 M persons) and probes
        it for each record that refers to it, in the order read: on one thread where the file
        is one row group, 0.33 s of the workload's visits. The bit array took 12 ms to make,
        and the visits' check went from 0.52 to 0.25 s."""
        if target not in self.id_arrays:
            self.id_arrays[target] = self.id_array(target, key)
        if self.id_arrays[target] is None:
            return None
        variable, low, high = self.id_arrays[target]
        return (f"CASE WHEN {given} BETWEEN {low} AND {high} THEN get_bit(getvariable({text_literal(variable)}), "
                f"CAST({given} - {low} AS INTEGER)) = 1 ELSE FALSE END")

    def id_array(self, target: str, key: str) -> Optional[tuple]:
        """(session variable, least id, greatest id) of a bit array of the ids of `target`'s
        usable records, made when they are dense (dense_ids); None when they are not. Where
        no record of `target` was refused, its usable ids are the stage's, whose array
        counted them (distinct_ids)."""
        if target in self.stage_arrays and target not in self.refused:
            return self.stage_arrays[target]
        return self.bit_array(target, key, quote(target))

    def bit_array(self, table: str, key: str, rows: str) -> Optional[tuple]:
        """(session variable, least id, greatest id) of a bit array of the ids `key` of
        `table` in `rows`, made when they are dense (dense_ids); None when they are not."""
        span = self.dense_ids(table, key, rows)
        if span is None:
            return None
        low, high = span
        variable = f"ids_of_{table}"
        self.con.execute(f"SET VARIABLE {quote(variable)} = "
                         f"(SELECT bitstring_agg({quote(key)}, {low}, {high}) FROM {rows})")
        return variable, low, high

    def overlaps(self, table: str, stage: str, history) -> None:
        """Of two rows of one key in force on the same day, the later-starting is set aside.
        Rows are grouped by the line of the record the key names where the intake resolved
        it (a number, hashed more cheaply than its text), else by the key."""
        by, start = quote(history.by_field), quote(history.from_field)
        resolved = self.resolved.get((table, history.by_field))
        group = quote(resolved or history.by_field)
        end = f"COALESCE({quote(history.until_field)}, DATE '9999-12-31')" if history.until_field else "DATE '9999-12-31'"
        if history.until_field:
            self.con.execute(
                f"UPDATE {stage} SET __reason = {text_literal(history.until_field + ' ')} || "
                f"CAST({quote(history.until_field)} AS VARCHAR) || {text_literal(' is before ' + history.from_field + ' ')} "
                f"|| CAST({start} AS VARCHAR) WHERE __reason IS NULL AND {end} < {start}")
        with self.lines_grouped(resolved is not None):
            self.con.execute(f"""
            UPDATE {stage} SET __reason = o.reason FROM (
              SELECT __line, {by} AS who,
                     {text_literal(f'{table} of {history.by_field} ')} || chr(39) || {by} || chr(39)
                     || ' overlap: #' || CAST(prev_line AS VARCHAR) || ' and #' || CAST(__line AS VARCHAR)
                     || ' are both in force on ' || CAST(s AS VARCHAR) AS reason
              FROM (SELECT __line, {by}, {start} AS s,
                           max({end}) OVER (PARTITION BY {group} ORDER BY {start}, __line
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end,
                           last_value(__line) OVER (PARTITION BY {group} ORDER BY {start}, __line
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_line
                    FROM {stage} WHERE __reason IS NULL AND {group} IN (
                        SELECT {group} FROM {stage} WHERE __reason IS NULL GROUP BY 1 HAVING count(*) > 1))
              WHERE prev_end IS NOT NULL AND prev_end >= s) AS o
            WHERE {stage}.__line = o.__line""")

    def lines_grouped(self, lines: bool):
        """For a statement that groups rows by the line of a record (numbers from 1 to about
        the table's size): DuckDB's perfect hash aggregate, an array indexed by the number,
        up to 2^LINES_GROUPED_BITS lines (Stockholm's 2.4 M persons; a national table falls
        back to hashing). The listings' search for persons with more than one went from
        0.19 to 0.12 s."""
        if not lines:
            return contextlib.nullcontext()
        return engine_setting(self.con, "perfect_ht_threshold", LINES_GROUPED_BITS)

    def conversion(self, column: str, field_type, stored: Optional[str] = None) -> tuple:
        """(the value of a text column in its declared type, NULL where the text is malformed;
        what was expected). Numbers are checked by pattern first: exact decimals only. Given
        the column as a Parquet file stores it (`stored`, see dictionary_texts), the value
        is read from that (stored_value), the same value worked out once a dictionary entry."""
        kind = self.value_kind(field_type)
        expected = expected_value(kind, field_type, self.checked)
        if stored is not None:
            return self.stored_value(stored, field_type), expected
        if kind == "date":
            # Years 0001–9999, as a calendar date (2021-02-30 is not one).
            return (f"(CASE WHEN regexp_full_match({column}, '{DATE_PATTERN}') "
                    f"AND {column} >= '0001-01-01' THEN TRY_CAST({column} AS DATE) END)", expected)
        if kind in ("decimal", "money"):
            return (f"(CASE WHEN {_number_text_sql(column, kind)} "
                    f"THEN {_scaled_integer(column, DECIMAL_PLACES if kind == 'decimal' else 2)} END)", expected)
        if kind == "integer":
            return f"(CASE WHEN {_number_text_sql(column, kind)} THEN CAST({column} AS BIGINT) END)", expected
        if kind == "boolean":
            return f"(CASE lower({column}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END)", expected
        if kind == "enum":
            return self.enum_value(column, field_type.name), expected
        return column, expected

    def enum_value(self, column: str, name: str) -> str:
        """A text as a value of the enum `name`, NULL when it is not one: cast to its DuckDB
        ENUM (enum_type)."""
        return f"TRY_CAST({column} AS {self.enum_type(name)})"

    def enum_type(self, name: str) -> str:
        """The DuckDB ENUM of a rulebook's enum, made at its first use: a value not among its
        members casts to NULL (so is refused), and the rules compare one byte a record rather
        than its text. A temporary type, named by its members too: a process's intakes share
        one database (records.py), and two rulebooks may give one enum name other members."""
        if name not in self.enum_types:
            members = self.checked.enums[name].values
            digest = hashlib.sha256("\n".join(members).encode("utf-8")).hexdigest()[:16]
            made = self.enum_types[name] = quote(f"enum_{name}_{digest}")
            values = ", ".join(text_literal(v) for v in members)
            self.con.execute(f"CREATE TEMP TYPE IF NOT EXISTS {made} AS ENUM ({values})")
        return self.enum_types[name]

    def refusal(self, name: str, column: str, field_type, expected: str) -> str:
        """The message for a value that is not of its declared type, saying what is wrong
        where one pattern tells (a fraction of an öre, a day not in the calendar)."""
        shown = f"chr(39) || {_shown_sql(column)} || chr(39)"
        general = f"{text_literal(name + ': expected ' + expected + ', got ')} || {shown}"
        kind = self.value_kind(field_type)
        if kind == "money":
            return (f"(CASE WHEN regexp_full_match({column}, '{FRACTION_OF_AN_ORE}') "
                    f"THEN {text_literal(name + ': ')} || {shown} || ' has a fraction of an öre' ELSE {general} END)")
        if kind == "date":
            return (f"(CASE WHEN regexp_full_match({column}, '{DATE_PATTERN}') "
                    f"THEN {text_literal(name + ': ')} || {shown} || ' is not a date in the calendar' ELSE {general} END)")
        if kind == "enum":
            values = ", ".join(self.checked.enums[field_type.name].values)
            return (f"{text_literal(name + ': ')} || {shown} || "
                    f"{text_literal(f' is not a {field_type.name} (one of {values})')}")
        return general

    @staticmethod
    def default_sql(value, field_type) -> str:
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if field_type.kind == "decimal":
            return str(int(Fraction(value) * DECIMAL_SCALE))
        if isinstance(value, int):
            return str(value)
        if isinstance(value, dt.date):
            return date_literal(value)
        return text_literal(str(value))

    # ---- what was refused
    def problems(self, limit: Optional[int] = None) -> list:
        """The refused records, as RecordProblems in table and line order."""
        order = " ".join(f"WHEN {text_literal(t)} THEN {i}" for i, t in enumerate(self.table_order()))
        rows = self.con.execute(
            f'SELECT file, record_id, reason, "table", line FROM rejected ORDER BY CASE "table" {order} END, '
            f'CAST(line AS BIGINT) NULLS LAST' + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        def place(table: str, line) -> str:
            if not line:
                return table
            in_memory = table in self.sources and self.sources[table].kind == "rows"
            return f"{table}, {'record' if in_memory else 'line'} {line}"

        return [RecordProblem(file, record, f"{reason} ({place(table, line)})") for file, record, reason, table, line in rows]


FOCUS_WHOLE_TABLE_ROWS = 50_000
# Ids counted or looked up in an array (see dense_range): a range at most this many times the
# ids, and at most 2^ARRAY_BITS places (32 M; 10 M ids over 30 M places were counted in
# 0.2 s at a peak of 252 MB for the whole process, against 1.0 s and 543 MB hashed).
DENSE_IDS = 4
ARRAY_BITS = 25
LINES_GROUPED_BITS = 22  # see Intake.lines_grouped
MEMORY_LIMIT = "2500MB"  # DuckDB's share in a run over a region; RULELANG_MEMORY_LIMIT overrides it


def dense_range(low: Optional[int], high: Optional[int], ids: int) -> bool:
    """Whether whole-number ids from `low` to `high` (`ids` of them) fill enough of their
    range to be counted or looked up in an array indexed by the id: at most DENSE_IDS
    places an id, at most 2^ARRAY_BITS places (with one for no id) in all."""
    return bool(ids) and high - low + 1 <= DENSE_IDS * ids and (high - low + 2).bit_length() <= ARRAY_BITS


def bounded_database(spill: str):
    """A DuckDB connection for a run over a region's data: bounded memory (past the limit
    DuckDB spills to `spill` instead of growing) and rows kept in the order they are read."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    con.execute(f"SET memory_limit = {text_literal(os.environ.get('RULELANG_MEMORY_LIMIT', MEMORY_LIMIT))}")
    con.execute(f"SET temp_directory = {text_literal(spill)}")
    return con


def _reject_reason(kind: str, message: str) -> str:
    counts = re.findall(r"\d+", message or "")
    if kind in ("TOO MANY COLUMNS", "MISSING COLUMNS") and len(counts) >= 2:
        more = "more" if kind == "TOO MANY COLUMNS" else "fewer"
        return f"{more} values than columns (the header has {counts[0]}, the row {counts[1]})"
    if kind == "LINE SIZE OVER MAXIMUM":
        return f"longer than {MAX_LINE_BYTES // (1024 * 1024)} MB"
    return message.strip().splitlines()[0] if message else kind.lower()


def _number_text_sql(text: str, kind: str) -> str:
    """Whether a text is a number of `kind` as its pattern (NUMBER_PATTERNS) says, with the
    pattern's answer. Text of digits and at most one point (nearly every value) is judged by
    its lengths and the point's place: a pattern costs DuckDB more per value than the cast
    that follows it (0.06 s against 0.035 s for 2.4 M weights). Any other text, a sign
    included, is left to the pattern."""
    whole, places = NUMBER_DIGITS[kind]
    if not places:
        return (f"(CASE WHEN rtrim({text}, '0123456789') = '' THEN length({text}) BETWEEN 1 AND {whole} "
                f"ELSE regexp_full_match({text}, '{NUMBER_PATTERNS[kind]}') END)")
    point = f"strpos({text}, '.')"
    # Digits after one point are trimmed up to it: the rest is as long as the point's place
    # (0 with no point). A second point, or one at either end, fails the lengths.
    return (f"(CASE WHEN rtrim({text}, '0123456789.') = '' "
            f"THEN length(rtrim({text}, '0123456789')) = {point} AND CASE {point} "
            f"WHEN 0 THEN length({text}) BETWEEN 1 AND {whole} "
            f"ELSE {point} BETWEEN 2 AND {whole + 1} AND length({text}) - {point} BETWEEN 1 AND {places} END "
            f"ELSE regexp_full_match({text}, '{NUMBER_PATTERNS[kind]}') END)")


def _scaled_integer(column: str, scale: int) -> str:
    """A decimal text with at most `scale` decimals (and at most 18 digits) as an integer of
    10^-scale units, exactly and without 128-bit arithmetic: DECIMAL(18, scale) holds it in
    64 bits; multiplying there is exact while the product fits, and beyond that dropping
    the point of its printed form (which shows every decimal place) scales it."""
    value = f"CAST({column} AS DECIMAL(18, {scale}))"
    return (f"(CASE WHEN abs({value}) < {10 ** (18 - 2 * scale)} THEN CAST({value} * {10 ** scale} AS BIGINT) "
            f"ELSE CAST({_units_printed(value)} AS BIGINT) END)")


def _units_printed(decimal: str) -> str:
    """A DECIMAL(18, s) value as the text of its number of 10^-s units: it is printed with
    every one of its s decimal places, so without the point it is that number."""
    return f"replace(CAST({decimal} AS VARCHAR), '.', '')"


def _trimmed_sql(text: str) -> str:
    """Text without surrounding spaces, empty as NULL; trimmed only where a space is there to
    trim (most values have none, and testing is cheaper than copying)."""
    return f"NULLIF(CASE WHEN {text} LIKE ' %' OR {text} LIKE '% ' THEN trim({text}) ELSE {text} END, '')"


def _shown_sql(column: str) -> str:
    """A value as a message shows it: at most 60 characters."""
    text = f"CAST({column} AS VARCHAR)"
    return (f"(CASE WHEN length({text}) > {SHOWN_CHARACTERS} THEN left({text}, {SHOWN_CHARACTERS - 3}) || '...' "
            f"ELSE {text} END)")


def _trimmed(text: Optional[str]) -> Optional[str]:
    return None if text is None or not text.strip() else text.strip()


# ------------------------------------------------------------------------ reading typed rows


def typed_records(con, checked: CheckedRulebook, table: str, staged: bool = True) -> list:
    """The clean records of a table as runtime values: money in öre, decimals as fractions;
    each names the fields it did not give, which hold their default (DEFAULTED_FIELD), read
    from the table's records as given (`raw_<table>`, there when the table was `staged`)."""
    fields = checked.tables[table].fields
    names = list(fields)
    scale = [DECIMAL_SCALE if fields[n][0].kind == "decimal" else None for n in names]
    defaults = [n for n, (_, decl) in fields.items() if decl.default is not None] if staged else []
    given = [f"r.{quote(n)} IS NULL" for n in defaults]
    rows = con.execute(f"SELECT {', '.join('t.' + quote(n) for n in names)}"
                       f"{''.join(', ' + g for g in given)}, t.__id FROM {quote(table)} AS t "
                       + (f"JOIN {quote('raw_' + table)} AS r ON r.__line = t.__line " if defaults else "")
                       + "ORDER BY t.__line").fetchall()
    records = []
    width = len(names)
    for row in rows:
        record = {name: (Fraction(value, scale[i]) if scale[i] and value is not None else value)
                  for i, (name, value) in enumerate(zip(names, row))}
        record[ID_FIELD] = row[-1]
        defaulted = [name for name, missing in zip(defaults, row[width:-1]) if missing]
        if defaulted:
            record[DEFAULTED_FIELD] = frozenset(defaulted)
        records.append(record)
    return records
