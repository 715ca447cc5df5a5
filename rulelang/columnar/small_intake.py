"""The intake of a few records in memory, in Python: what one API request or one example gives.

The intake (`intake.py`) types and checks records in SQL, which is what a region's month
needs; for the eleven records of an HTTP request its thirty statements cost ~70 ms, a
hundred times the evaluation. Here the same records pass the same checks in the same order
and are refused with the same words: the value rules (patterns, what was expected, how a
value is shown) are `intake.py`'s own constants, and `tests/test_small_intake.py` holds the
two intakes equal, record by record and message by message, on generated input for every
rulebook's tables.

What is checked, table by table (tables that others name first): a record that is not an
object or a value that is not a single value; each field's value against its declared type;
a missing required field; an id that names no clean record of its table (or one that was
refused); two records with one id (the first keeps it); two history rows of one key in
force on one day.
"""

from __future__ import annotations

import datetime as dt
import re
from fractions import Fraction
from typing import Optional

from ..evaluation.data import DEFAULTED_FIELD, ID_FIELD
from ..language.checker import CheckedRulebook
from ..language.diagnostics import RecordProblem
from .intake import (
    DATE_PATTERN,
    DECIMAL_PLACES,
    DECIMAL_SCALE,
    FRACTION_OF_AN_ORE,
    NUMBER_PATTERNS,
    SHOWN_CHARACTERS,
    expected_value,
    raw_record,
    value_kind,
)

_PATTERNS = {kind: re.compile(pattern) for kind, pattern in NUMBER_PATTERNS.items()}
_DATE = re.compile(DATE_PATTERN)
_FRACTION_OF_AN_ORE = re.compile(FRACTION_OF_AN_ORE)
_END_OF_TIME = dt.date(9999, 12, 31)


def _scaled(text: str, places: int) -> int:
    """A decimal text (checked by its pattern) as an integer of 10^-places units, exactly."""
    whole, _, fraction = text.lstrip("+-").partition(".")
    units = int(whole) * 10 ** places + (int(fraction.ljust(places, "0")) if fraction else 0)
    return -units if text.startswith("-") else units


def _converted(kind: str, text: str, enum_values: tuple):
    """A trimmed, non-empty text in its kind; None where it is malformed."""
    if kind in ("decimal", "money", "integer"):
        if not _PATTERNS[kind].fullmatch(text):
            return None
        if kind == "integer":
            return int(text)
        if kind == "money":
            return _scaled(text, 2)
        return Fraction(_scaled(text, DECIMAL_PLACES), DECIMAL_SCALE)
    if kind == "date":
        if not _DATE.fullmatch(text) or text < "0001-01-01":
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower())
    if kind == "enum":
        return text if text in enum_values else None
    return text


def _shown(text: str) -> str:
    """A value as a message quotes it (intake._shown_sql)."""
    cut = text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS - 3] + "..."
    return f"'{cut}'"


def _as_text(value) -> str:
    """A typed value as SQL's CAST(… AS VARCHAR) writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Fraction):  # a decimal is held in millionths
        return str(int(value * DECIMAL_SCALE))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _default(literal, field_type):
    """A field's declared default as the intake holds it (intake.default_sql)."""
    value = literal.value
    if field_type.kind == "decimal" and not isinstance(value, bool):
        return Fraction(int(Fraction(value) * DECIMAL_SCALE), DECIMAL_SCALE)
    if isinstance(value, (bool, int, dt.date)):
        return value
    return str(value)


class _Row:
    __slots__ = ("file", "line", "raw", "values", "reasons", "defaulted")

    def __init__(self, file: str, line: int):
        self.file, self.line = file, line
        self.raw: dict = {}
        self.values: dict = {}
        self.reasons: list = []
        self.defaulted: list = []  # fields not given, set to their declared default

    @property
    def reason(self) -> Optional[str]:
        return "; ".join(self.reasons) if self.reasons else None


def check_records(checked: CheckedRulebook, sources: dict, table_order: list) -> tuple:
    """({table: clean records in order, as `intake.typed_records` gives them}, [RecordProblem])
    for sources that are all records in memory."""
    clean_keys: dict = {}  # table → ids of its clean records
    refused_keys: dict = {}  # table → ids of its refused records
    clean: dict = {}
    refused: list = []
    for table in table_order:
        source = sources.get(table)
        rows = _checked_rows(checked, table, source.rows if source is not None else [], clean_keys, refused_keys)
        key = checked.tables[table].decl.key
        records, keys, bad = [], set(), set()
        for row in rows:
            record_id = (_as_text(row.values[key]) if key and row.values[key] is not None else f"#{row.line}")
            if row.reasons:
                if key:
                    bad.add(row.values[key])
                refused.append((row.line, table, RecordProblem(row.file, record_id,
                                                               f"{row.reason} ({_place(table, row.line)})")))
                continue
            record = dict(row.values)
            record[ID_FIELD] = record_id
            if row.defaulted:
                record[DEFAULTED_FIELD] = frozenset(row.defaulted)
            records.append(record)
            if key:
                keys.add(row.values[key])
        clean[table], clean_keys[table], refused_keys[table] = records, keys, bad
    order = {table: i for i, table in enumerate(table_order)}
    # Table by table, then by line; a record without a line last (SQL's NULLS LAST).
    refused.sort(key=lambda entry: (order[entry[1]], not entry[0], entry[0] or 0))
    return clean, [problem for _, _, problem in refused]


def _place(table: str, line) -> str:
    return f"{table}, record {line}" if line else table


def _checked_rows(checked: CheckedRulebook, table: str, given: list, clean_keys: dict, refused_keys: dict) -> list:
    info = checked.tables[table]
    fields = info.fields
    rows = []
    names = list(fields)
    for file, line, record in given:
        row = _Row(file, line)
        texts, reason = raw_record(table, names, record)
        row.raw = dict(zip(names, texts))
        if reason:
            row.reasons.append(reason)
        rows.append(row)
    # A reference's kind is its target key's; whether a field is optional does not change it.
    kinds = {name: value_kind(field_type, checked) for name, (field_type, _) in fields.items()}
    for row in rows:
        _type_values(checked, row, fields, kinds)
    references = []
    for name, (field_type, _) in fields.items():
        target = field_type.name if field_type.kind == "ref" else None
        if target is not None and target != table and checked.tables[target].decl.key:
            references.append((name, target))
            for row in rows:
                given_value = row.values[name]
                if row.raw[name] is not None and (given_value is None or given_value not in clean_keys[target]):
                    row.reasons.append(f"{name} {_shown(row.raw[name])} is not a record of {target}")
    for name, target in references:  # an id of a refused record says so (intake.naming_refused)
        if not refused_keys[target]:
            continue
        for row in rows:
            value = row.values[name]
            if row.reasons and value is not None and value in refused_keys[target]:
                text = row.reason.replace(f"{name} '{_as_text(value)}' is not a record of {target}",
                                          f"{name} '{_as_text(value)}' names a {target} record that has errors")
                row.reasons = [text]
    key = info.decl.key
    if key:
        first_line: dict = {}  # the first record (by line) of an id keeps it
        for row in rows:
            value = row.values[key]
            if value is not None:
                first_line[value] = min(first_line.get(value, row.line), row.line)
        for row in rows:
            value = row.values[key]
            if value is not None and row.line > first_line[value]:
                row.reasons.append(f"two {table} records have the id {_as_text(value)}")
    if info.decl.history is not None:
        _overlaps(table, rows, info.decl.history)
    return rows


def _type_values(checked: CheckedRulebook, row: _Row, fields: dict, kinds: dict) -> None:
    """Each field's value in its declared type, the reasons in the intake's order: for each
    field, a malformed value, then a missing one (intake.Intake.typed)."""
    has_pre = bool(row.reasons)
    for name, (field_type, decl) in fields.items():
        text = row.raw[name]
        kind = kinds[name]
        value = None
        if text is not None:
            enum_values = checked.enums[field_type.name].values if kind == "enum" else ()
            value = _converted(kind, text, enum_values)
            if value is None:
                row.reasons.append(_refusal(name, text, kind, field_type, checked))
        if not field_type.optional and decl.default is None and text is None and not has_pre:
            row.reasons.append(f"missing field {name}")
        if text is None and decl.default is not None:
            value = _default(decl.default, field_type)
            row.defaulted.append(name)
        row.values[name] = value


def _refusal(name: str, text: str, kind: str, field_type, checked: CheckedRulebook) -> str:
    """intake.Intake.refusal, in Python."""
    shown = _shown(text)
    if kind == "money" and _FRACTION_OF_AN_ORE.fullmatch(text):
        return f"{name}: {shown} has a fraction of an öre"
    if kind == "date" and _DATE.fullmatch(text):
        return f"{name}: {shown} is not a date in the calendar"
    if kind == "enum":
        values = ", ".join(checked.enums[field_type.name].values)
        return f"{name}: {shown} is not a {field_type.name} (one of {values})"
    return f"{name}: expected {expected_value(kind, field_type, checked)}, got {shown}"


def _overlaps(table: str, rows: list, history) -> None:
    """intake.Intake.overlaps, in Python: an end before its start; then, of two rows of one key
    in force on one day, the later-starting (all judged on the rows as they stood)."""
    by, start_field, until_field = history.by_field, history.from_field, history.until_field

    def end(row: _Row) -> dt.date:
        until = row.values.get(until_field) if until_field else None
        return until if until is not None else _END_OF_TIME

    if until_field:
        for row in rows:
            start = row.values[start_field]
            if not row.reasons and start is not None and end(row) < start:
                row.reasons.append(f"{until_field} {_as_text(end(row))} is before {start_field} {_as_text(start)}")
    groups: dict = {}
    for row in rows:
        if not row.reasons and row.values[by] is not None:
            groups.setdefault(row.values[by], []).append(row)
    found = []
    for who, group in groups.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda r: (r.values[start_field] is None, r.values[start_field] or _END_OF_TIME, r.line))
        latest_end = None
        previous = None
        for row in group:
            start = row.values[start_field]
            if latest_end is not None and start is not None and latest_end >= start:
                found.append((row, f"{table} of {by} '{_as_text(who)}' overlap: #{previous.line} and #{row.line} "
                                   f"are both in force on {_as_text(start)}"))
            latest_end = end(row) if latest_end is None else max(latest_end, end(row))
            previous = row
    for row, reason in found:
        row.reasons = [reason]
