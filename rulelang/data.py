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


def read_raw(path: Path) -> dict:
    """Rows per table from a JSON file or a directory of `<table>.csv` files."""
    path = Path(path)
    if path.is_dir():
        tables = {}
        for csv_path in sorted(path.glob("*.csv")):
            tables[csv_path.stem] = read_csv(csv_path)
        if not tables:
            raise DataError([RecordProblem(str(path), "-", "the directory holds no .csv tables")])
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


def load_dataset(path, checked: CheckedRulebook) -> Dataset:
    return build_dataset(read_raw(Path(path)), checked, [str(path)])
