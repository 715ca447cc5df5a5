"""Records for the interpreter, read by the intake as settlement reads them: a file, a
directory or `{"table": [records]}` becomes a typed Dataset, or a DataError naming every
record refused."""

from __future__ import annotations

from typing import Optional

from ..evaluation.data import Dataset, TableData
from ..language.checker import CheckedRulebook
from ..language.diagnostics import DataError
from .intake import FOCUS_WHOLE_TABLE_ROWS, Intake, find_sources, table_order, typed_records
from .small_intake import check_records


def load_dataset(source, checked: CheckedRulebook, focus: Optional[tuple] = None,
                 display: str = "<records>") -> Dataset:
    """Typed records from a file, a directory or `{"table": [records]}`, read by the intake
    (`intake.py`) as settlement reads them; DataError listing every record it refused.
    With `focus` = (table, record id[, tables to load whole]), only what that record's
    evaluation reads (Dataset.partial names the tables loaded in part); records in
    memory are named `display` in messages. Records in memory (an API request, an example,
    a JSON file) are checked in Python (`small_intake.py`, held equal to the intake)."""
    sources = find_sources(source, checked, display)
    if in_memory(sources, focus):
        return dataset_in_python(sources, checked, source, display)
    return dataset_in_database(sources, checked, source, display, focus)


def in_memory(sources: dict, focus: Optional[tuple]) -> bool:
    """Whether every table is records in memory, each kept whole by a focus (intake.
    FOCUS_WHOLE_TABLE_ROWS): then the Python intake reads them exactly as the database would."""
    return all(s.kind == "rows" for s in sources.values()) and (
        focus is None or all(len(s.rows) <= FOCUS_WHOLE_TABLE_ROWS for s in sources.values()))


def dataset_in_python(sources: dict, checked: CheckedRulebook, source, display: str) -> Dataset:
    order = table_order(checked)
    records, problems = check_records(checked, sources, order)
    if problems:
        raise DataError(problems)
    return _dataset(checked, sources, lambda name: records[name], source, display)


def dataset_in_database(sources: dict, checked: CheckedRulebook, source, display: str,
                        focus: Optional[tuple] = None) -> Dataset:
    con = _database().cursor()  # its own temporary tables, dropped when it closes
    try:
        intake = Intake(con, checked, sources, focus=focus)
        intake.run()
        problems = intake.problems()
        if problems:
            raise DataError(problems)
        return _dataset(checked, sources, lambda name: typed_records(con, checked, name, name in intake.staged),
                        source, display, frozenset(intake.partial))
    finally:
        con.close()


def _dataset(checked: CheckedRulebook, sources: dict, records_of, source, display: str,
             partial: frozenset = frozenset()) -> Dataset:
    tables = {}
    for name, info in checked.tables.items():
        if name not in sources and not info.decl.optional:
            continue  # records in memory may leave a table out; a rule that needs it says so
        source_of = sources.get(name)
        records = records_of(name)
        key = info.decl.key
        # By the key's own value (a number for an integer key), as references hold it.
        by_id = {record[key]: record for record in records} if key else {}
        tables[name] = TableData(name, source_of.display if source_of else "", records, by_id)
    _index_histories(tables, checked)
    return Dataset(tables, [display if isinstance(source, dict) else str(source)], partial)


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
