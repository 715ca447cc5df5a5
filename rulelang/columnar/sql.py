"""SQL text that every stage writing SQL shares: quoted identifiers and literals, and how
input values are represented in SQL. Identifiers and literals are always quoted here, never
pasted: column names and values come from files other organisations write."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

DECIMAL_SCALE = 10 ** 6  # input decimals are stored as integers of millionths
FAR_FUTURE = "DATE '9999-12-31'"


def quote(name: str) -> str:
    """An identifier, whatever characters it holds: `"` doubled inside double quotes."""
    return '"' + name.replace('"', '""') + '"'


def text_literal(value: str) -> str:
    """A string literal, whatever characters it holds: `'` doubled inside single quotes."""
    return "'" + value.replace("'", "''") + "'"


def date_literal(value: dt.date) -> str:
    return f"DATE '{value.isoformat()}'"


@contextlib.contextmanager
def engine_setting(con, name: str, value: int) -> Iterator[None]:
    """A DuckDB setting (a whole number) for the statements inside, then as it was."""
    (before,) = con.execute("SELECT current_setting(?)", [name]).fetchone()
    con.execute(f"SET {name} = {int(value)}")
    try:
        yield
    finally:
        con.execute(f"SET {name} = {int(before)}")
