"""Records for the interpreter, read by the intake as settlement reads them: a file, a
directory or `{"table": [records]}` becomes a typed Dataset, or a DataError naming every
record refused."""

from __future__ import annotations

from typing import Optional

from ..evaluation.data import Dataset, TableData
from ..language.checker import CheckedRulebook
from ..language.diagnostics import DataError
from .intake import Intake, find_sources, typed_records


def load_dataset(source, checked: CheckedRulebook, focus: Optional[tuple] = None,
                 display: str = "<records>") -> Dataset:
    """Typed records from a file, a directory or `{"table": [records]}`, read by the intake
    (`intake.py`) as settlement reads them; DataError listing every record it refused.
    With `focus` = (table, record id), only what that record's evaluation reads; records in
    memory are named `display` in messages."""
    sources = find_sources(source, checked, display)
    con = _database().cursor()  # its own temporary tables, dropped when it closes
    try:
        intake = Intake(con, checked, sources, focus=focus)
        intake.run()
        problems = intake.problems()
        if problems:
            raise DataError(problems)
        tables = {}
        for name, info in checked.tables.items():
            if name not in sources and not info.decl.optional:
                continue  # records in memory may leave a table out; a rule that needs it says so
            source_of = sources.get(name)
            records = typed_records(con, checked, name)
            key = info.decl.key
            # By the key's own value (a number for an integer key), as references hold it.
            by_id = {record[key]: record for record in records} if key else {}
            tables[name] = TableData(name, source_of.display if source_of else "", records, by_id)
        _index_histories(tables, checked)
    finally:
        con.close()
    return Dataset(tables, [display if isinstance(source, dict) else str(source)])


_DATABASE = None


def _database():
    """One in-memory DuckDB per process for evaluation's intakes: a connection costs ~10 ms,
    a cursor on it (with temporary tables of its own) well under one."""
    global _DATABASE
    if _DATABASE is None:
        import duckdb

        _DATABASE = duckdb.connect()
    return _DATABASE


def _index_histories(tables: dict, checked: CheckedRulebook) -> None:
    """Each history's rows per key, by start date (the intake refused overlapping rows)."""
    for name, data in tables.items():
        history = checked.tables[name].decl.history
        if history is None:
            continue
        index: dict = {}
        for record in data.records:
            index.setdefault(record[history.by_field], []).append(record)
        for rows in index.values():
            rows.sort(key=lambda r: r[history.from_field])
        data.history = index
