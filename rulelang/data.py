"""Read input records (JSON or CSV) into typed values, reporting every bad record by id.

Money arrives as decimal text or JSON numbers and becomes integer öre without ever
passing through binary floating point; a fraction of an öre is an error. Nothing is
dropped silently: each unusable record is reported with its file and id.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Optional

import attrs

from .checker import CheckedRulebook
from .diagnostics import DataError, RecordProblem
from .typesystem import Type

DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DECIMAL_PATTERN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
ID_FIELD = "__id__"


class _Refused(Exception):
    pass


@attrs.define
class TableData:
    """The records of one table, by id, with a per-key index for history tables."""

    name: str
    file: str
    records: list
    by_id: dict
    history: Optional[dict] = None  # key → records sorted by start
    rejected: set = attrs.Factory(set)  # ids of records given but refused (already reported)

    def find(self, record_id: str) -> Optional[dict]:
        """A record by its id: the key, or `#N` for a table without one."""
        found = self.by_id.get(record_id)
        if found is None:
            found = next((r for r in self.records if r[ID_FIELD] == record_id), None)
        return found


@attrs.define
class Dataset:
    tables: dict
    files: list

    def table(self, name: str) -> Optional[TableData]:
        return self.tables.get(name)


# ------------------------------------------------------------------------ reading raw rows


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def read_json(path: Path) -> dict:
    """`{"table": [records]}`; numbers are kept exact (never float), NaN and Infinity refused."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle, parse_float=Decimal, parse_int=int, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, UnicodeDecodeError) as error:
        raise DataError([RecordProblem(str(path), "-", f"not valid JSON: {error}")]) from None
    if not isinstance(document, dict) or not all(isinstance(v, list) for v in document.values()):
        raise DataError([RecordProblem(str(path), "-", 'expected {"<table>": [records], …}')])
    return {name: [(str(path), i + 1, row) for i, row in enumerate(rows)] for name, rows in document.items()}


def read_csv(path: Path) -> list:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = []
        for row in reader:
            if None in row:
                # Keep the values that have a column, so the error names the record by its key.
                named = {k: v for k, v in row.items() if k is not None and v not in ("", None)}
                rows.append((str(path), reader.line_num, {**named, "__broken__": "more values than columns"}))
                continue
            rows.append((str(path), reader.line_num, {k: (v if v != "" else None) for k, v in row.items()}))
        return rows


def _table_files(directory: Path) -> dict:
    """table → file for a directory of `<table>.parquet` / `<table>.csv` files (Parquet first)."""
    files = {}
    for suffix in ("csv", "parquet"):
        for file in sorted(directory.glob(f"*.{suffix}")):
            files[file.stem] = file
    return files


def _duckdb_rows(con, file: Path, where: str = "") -> list:
    """Rows of a CSV or Parquet file as text, exactly as written; binary floats are refused."""
    source = (f"read_parquet('{_sql_text(file)}')" if file.suffix == ".parquet"
              else f"read_csv('{_sql_text(file)}', all_varchar = true, header = true)")
    described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    floats = [name for name, kind, *_ in described if kind in ("DOUBLE", "FLOAT")]
    if floats:
        raise DataError([RecordProblem(str(file), "-", f"column {floats[0]} is a binary floating-point number; "
                                       "write decimals as text or DECIMAL so that they stay exact")])
    names = [name for name, *_ in described]
    casts = ", ".join(f'CAST("{n}" AS VARCHAR)' for n in names)
    offset = 1 if file.suffix == ".csv" else 0
    rows = con.execute(f"SELECT {casts}, line FROM (SELECT *, row_number() OVER () + {offset} AS line "
                       f"FROM {source}) {where} ORDER BY line").fetchall()
    return [(str(file), row[-1], {n: v for n, v in zip(names, row[:-1]) if v is not None}) for row in rows]


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


FOCUS_WHOLE_TABLE_ROWS = 50_000


def read_focused(directory: Path, checked: CheckedRulebook, table: str, record_id: str) -> dict:
    """Only the records one record's evaluation can read, from a large directory of tables.

    Starting from the record: the records its ids name, the history rows of every record
    included, the rows that name the starting record itself (a clinic's listings and
    visits), and small tables whole. Enough for the rulebooks' navigation and aggregates,
    so that one line of a region-sized settlement is explained without loading the region.
    """
    import duckdb

    files = _table_files(directory)
    con = duckdb.connect()
    keys: dict[str, set] = {name: set() for name in checked.tables}
    rows: dict[str, dict] = {name: {} for name in checked.tables}

    def fetch(name: str, where: str) -> list:
        if name not in files:
            return []
        return _duckdb_rows(con, files[name], where)

    def add(name: str, found: list) -> None:
        key = checked.tables[name].decl.key
        for file, line, row in found:
            rows[name][(file, line)] = (file, line, row)
            if key and row.get(key) is not None:
                keys[name].add(str(row[key]))

    def quoted(values) -> str:
        return ", ".join("'" + str(v).replace("'", "''") + "'" for v in sorted(values))

    for name, file in files.items():
        if name in checked.tables and con.execute(
                f"SELECT count(*) FROM '{_sql_text(file)}'").fetchone()[0] <= FOCUS_WHOLE_TABLE_ROWS:
            add(name, fetch(name, ""))
    start_key = checked.tables[table].decl.key
    if start_key:
        add(table, fetch(table, f"WHERE \"{start_key}\" = '{record_id.replace(chr(39), chr(39) * 2)}'"))
        for name, info in checked.tables.items():  # rows that name the starting record
            for field, (field_type, _) in info.fields.items():
                if field_type.kind == "ref" and field_type.name == table and name != table:
                    add(name, fetch(name, f"WHERE \"{field}\" = '{record_id.replace(chr(39), chr(39) * 2)}'"))
    for _ in range(4):  # follow ids and histories until nothing new comes in
        before = sum(len(r) for r in rows.values())
        wanted: dict[str, set] = {name: set() for name in checked.tables}
        for name, info in checked.tables.items():
            refs = [(field, field_type.name) for field, (field_type, _) in info.fields.items()
                    if field_type.kind == "ref" and checked.tables[field_type.name].decl.key]
            for _, _, row in rows[name].values():
                for field, target in refs:
                    if row.get(field) is not None and str(row[field]) not in keys[target]:
                        wanted[target].add(str(row[field]))
        for target, ids in wanted.items():  # one query per table, not one per id
            if ids:
                add(target, fetch(target, f"WHERE \"{checked.tables[target].decl.key}\" IN ({quoted(ids)})"))
        for name, info in checked.tables.items():
            history = info.decl.history
            if history is not None and keys[history.of_table]:
                add(name, fetch(name, f"WHERE \"{history.by_field}\" IN ({quoted(keys[history.of_table])})"))
        if sum(len(r) for r in rows.values()) == before:
            break
    con.close()
    return {name: sorted(found.values(), key=lambda r: (r[0], r[1])) for name, found in rows.items() if found}


def read_raw(path: Path) -> dict:
    """Rows per table from a JSON file or a directory of `<table>.csv` / `<table>.parquet` files."""
    path = Path(path)
    if path.is_dir():
        files = _table_files(path)
        if not files:
            raise DataError([RecordProblem(str(path), "-", "the directory holds no .csv or .parquet tables")])
        tables = {}
        con = None
        for name, file in files.items():
            if file.suffix == ".csv":
                tables[name] = read_csv(file)
            else:
                import duckdb

                con = con or duckdb.connect()
                tables[name] = _duckdb_rows(con, file)
        return tables
    if not path.exists():
        raise DataError([RecordProblem(str(path), "-", "no such file or directory")])
    if path.suffix.lower() == ".csv":
        return {path.stem: read_csv(path)}
    return read_json(path)


# ------------------------------------------------------------------------ typing values


def _money(raw) -> int:
    if isinstance(raw, bool):
        raise _Refused("expected an amount, got a boolean")
    if isinstance(raw, (int, Decimal)):
        amount = Decimal(raw)
    elif isinstance(raw, str) and DECIMAL_PATTERN.match(raw.strip()):
        amount = Decimal(raw.strip())
    else:
        raise _Refused(f"expected an amount such as 300 or 300.00, got {raw!r}")
    ore = amount * 100
    if ore != ore.to_integral_value():
        raise _Refused(f"{raw} has a fraction of an öre")
    return int(ore)


def _decimal(raw) -> Fraction:
    if isinstance(raw, bool):
        raise _Refused("expected a number, got a boolean")
    if isinstance(raw, (int, Decimal)):
        return Fraction(Decimal(raw))
    if isinstance(raw, str) and DECIMAL_PATTERN.match(raw.strip()):
        return Fraction(Decimal(raw.strip()))
    raise _Refused(f"expected a decimal number, got {raw!r}")


def _integer(raw) -> int:
    if isinstance(raw, bool):
        raise _Refused("expected a whole number, got a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, Decimal) and raw == raw.to_integral_value():
        return int(raw)
    if isinstance(raw, str) and re.match(r"^[+-]?\d+$", raw.strip()):
        return int(raw.strip())
    raise _Refused(f"expected a whole number, got {raw!r}")


def _boolean(raw) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise _Refused(f"expected true or false, got {raw!r}")


def _date(raw) -> dt.date:
    if not isinstance(raw, str) or not DATE_PATTERN.match(raw.strip()):
        raise _Refused(f"expected a date YYYY-MM-DD, got {raw!r}")
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise _Refused(f"{raw} is not a date in the calendar") from None


def _text(raw) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise _Refused(f"expected text, got {raw!r}")
    return str(raw)


CONVERTERS = {"money": _money, "decimal": _decimal, "integer": _integer, "boolean": _boolean,
              "date": _date, "text": _text, "ref": _text}


def convert(raw, field_type: Type, enums: dict):
    """One raw value (text or JSON) as the runtime value of its declared type."""
    if field_type.kind == "enum":
        values = enums[field_type.name].values
        if not isinstance(raw, str) or raw.strip() not in values:
            raise _Refused(f"{raw!r} is not a {field_type.name} (one of {', '.join(values)})")
        return raw.strip()
    return CONVERTERS[field_type.kind](raw)


# ------------------------------------------------------------------------ building the data set


def build_dataset(raw_tables: dict, checked: CheckedRulebook, files: Iterable[str] = ()) -> Dataset:
    """Type every record of every declared table; raise DataError listing all bad records."""
    problems: list[RecordProblem] = []
    tables: dict[str, TableData] = {}
    for name, rows in raw_tables.items():
        info = checked.tables.get(name)
        if info is None:
            continue  # extra tables are allowed and ignored, like extra columns
        tables[name] = _build_table(name, rows, info, checked, problems)
    for name, info in checked.tables.items():
        if name not in tables and info.decl.optional:
            tables[name] = _build_table(name, [], info, checked, problems)  # absent: no records
    _check_references(tables, checked, problems)
    _index_histories(tables, checked, problems)
    if problems:
        raise DataError(problems)
    return Dataset(tables, list(files))


def _record_id(row: dict, key: Optional[str], line: int) -> str:
    if key and isinstance(row.get(key), (str, int)) and not isinstance(row.get(key), bool) and str(row[key]).strip():
        return str(row[key]).strip()
    return f"#{line}"


def _build_table(name, rows, info, checked, problems) -> TableData:
    decl = info.decl
    records, by_id, rejected = [], {}, set()
    file = rows[0][0] if rows else ""
    for file, line, row in rows:
        if not isinstance(row, dict):
            problems.append(RecordProblem(file, f"#{line}", f"a {name} record must be an object"))
            continue
        record_id = _record_id(row, decl.key, line)
        if "__broken__" in row:
            problems.append(RecordProblem(file, record_id, f"broken CSV row at line {line}: {row['__broken__']}"))
            rejected.add(record_id)
            continue
        record = {ID_FIELD: record_id}
        bad = False
        for field_name, (field_type, field_decl) in info.fields.items():
            raw = row.get(field_name)
            if raw is None:
                if field_decl.default is not None:
                    record[field_name] = field_decl.default.value
                elif field_type.optional:
                    record[field_name] = None
                else:
                    problems.append(RecordProblem(file, record_id, f"missing field {field_name} ({name})"))
                    bad = True
                continue
            try:
                record[field_name] = convert(raw, field_type.required(), checked.enums)
            except _Refused as refused:
                problems.append(RecordProblem(file, record_id, f"{field_name}: {refused}"))
                bad = True
        if bad:
            rejected.add(record_id)
            continue
        if decl.key:
            if record_id in by_id:
                problems.append(RecordProblem(file, record_id, f"two {name} records have the id {record_id}"))
                continue
            by_id[record_id] = record
        records.append(record)
    return TableData(name, file, records, by_id, rejected=rejected)


def _check_references(tables: dict, checked: CheckedRulebook, problems: list) -> None:
    """Every id a record gives must name a record of its table, when that table is given."""
    for name, data in tables.items():
        info = checked.tables[name]
        refs = [(f, t.name) for f, (t, _) in info.fields.items() if t.kind == "ref"]
        for field_name, target in refs:
            target_data = tables.get(target)
            if target_data is None or not checked.tables[target].decl.key:
                continue
            for record in data.records:
                value = record.get(field_name)
                if value is not None and value not in target_data.by_id and value in target_data.rejected:
                    problems.append(RecordProblem(
                        data.file, record[ID_FIELD],
                        f"{field_name} {value!r} names a {target} record that has errors ({target_data.file})"))
                elif value is not None and value not in target_data.by_id:
                    problems.append(RecordProblem(
                        data.file, record[ID_FIELD],
                        f"{field_name} {value!r} is not a record of {target} ({target_data.file})"))


def _index_histories(tables: dict, checked: CheckedRulebook, problems: list) -> None:
    """Sort each history by start date and refuse two rows of one key in force on one day."""
    for name, data in tables.items():
        history = checked.tables[name].decl.history
        if history is None:
            continue
        index: dict = {}
        for record in data.records:
            start, end = record[history.from_field], record.get(history.until_field) if history.until_field else None
            if end is not None and end < start:
                problems.append(RecordProblem(data.file, record[ID_FIELD],
                                              f"{history.until_field} {end} is before {history.from_field} {start}"))
                continue
            index.setdefault(record[history.by_field], []).append(record)
        for key, rows in index.items():
            rows.sort(key=lambda r: r[history.from_field])
            for earlier, later in zip(rows, rows[1:]):
                end = earlier.get(history.until_field) if history.until_field else None
                if end is None or end >= later[history.from_field]:
                    problems.append(RecordProblem(
                        data.file, later[ID_FIELD],
                        f"{name} of {history.by_field} {key!r} overlap: {earlier[ID_FIELD]} "
                        f"from {earlier[history.from_field]} and {later[ID_FIELD]} from {later[history.from_field]}"))
        data.history = index


def load_dataset(path, checked: CheckedRulebook, focus: Optional[tuple] = None) -> Dataset:
    """Typed records from a file or directory; with `focus` = (table, record id) and a
    directory, only what that record's evaluation reads (see `read_focused`)."""
    path = Path(path)
    if focus is not None and path.is_dir():
        return build_dataset(read_focused(path, checked, *focus), checked, [str(path)])
    return build_dataset(read_raw(path), checked, [str(path)])
