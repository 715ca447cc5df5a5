"""The input records an evaluation reads, typed, by table and id.

They are read and checked by the intake (`columnar/records.py`), the same way settlement
reads them: money becomes integer öre and decimals exact fractions without passing through
binary floating point, and every record the intake refuses is reported with its file and id.
"""

from __future__ import annotations

from typing import Optional

import attrs

ID_FIELD = "__id__"  # a record's id (its key, or #line) in the records evaluation reads
# The fields a record did not give, which hold their declared default (a frozenset; absent
# when it gave every field): an explanation shows such a value as the default, not as input.
DEFAULTED_FIELD = "__defaulted__"


@attrs.define(repr=False)
class TableData:
    """The records of one table, by id, with a per-key index for history tables."""

    name: str
    file: str
    records: list
    by_id: dict
    history: Optional[dict] = None  # key → records sorted by start

    def __repr__(self) -> str:
        return f"<TableData {self.name}: {len(self.records)} records from {self.file}>"

    def find(self, record_id: str) -> Optional[dict]:
        """A record by its id as written (`V1`, `1494`): the key, or `#N` for a table without one."""
        found = self.by_id.get(record_id)
        if found is None:  # an integer key is held as a number; `#N` names a keyless record
            found = next((r for r in self.records if r[ID_FIELD] == record_id), None)
        return found


@attrs.define(repr=False)
class Dataset:
    tables: dict
    files: list
    # Tables of which only the records one record's evaluation reads were loaded (a focus on
    # a directory): a sum over one of them is a sum over what was loaded.
    partial: frozenset = frozenset()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}: {len(table.records)} records" for name, table in self.tables.items())
        return f"<Dataset {shown or 'no tables'}>"

    def table(self, name: str) -> Optional[TableData]:
        return self.tables.get(name)
