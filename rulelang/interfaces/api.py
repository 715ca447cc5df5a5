"""The Python API for tools that embed the evaluator.

    import rulelang
    book = rulelang.load("stockholm/hlv-2021")
    data = book.dataset({"visits": [...], "persons": [...], ...})   # or a path
    result = book.evaluate_record(data, "tilläggsersättning", "V1")
    result.value, result.json_value, result.provision
    book.explain(data, "tilläggsersättning", "V1").to_dict()
    rulelang.render(book.explain(data, "avdrag", "V1"), "html")
    book.settle("2021-09", "demo")                                   # a month of a region

Everything a caller can get wrong raises a `rulelang.Error` (RulebookError, DataError,
EvaluationError, NotFound, InvalidArgument, SettlementError, AssumptionError); dates are
`datetime.date` or ISO text (`"2021-09-30"`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional, Union

from ..evaluation.compiler import Program, compile_rulebook
from ..evaluation.data import Dataset
from ..evaluation.evaluator import Evaluator, Result
from ..evaluation.explanation import Explanation
from ..language.assumptions import ASSUMED_FOR_THE_RUN, assumptions
from ..language.checker import CheckedRulebook, check
from ..language.deep import run_deep
from ..language.diagnostics import DataError, EvaluationError, InvalidArgument, NotFound, RecordProblem
from ..language.loader import collector_paused, load_chain, load_text_chain

DataSource = Union[str, Path, dict, Dataset]
DateLike = Union[dt.date, str, None]
Assumed = Optional[dict]  # parameter name → value as a rulebook writes it ("350 kr", "true")


def as_date(on: DateLike) -> Optional[dt.date]:
    """A date given as `datetime.date` or ISO text; InvalidArgument for anything else."""
    if on is None or type(on) is dt.date:
        return on
    if isinstance(on, str) and len(on) == 10:
        try:
            return dt.date.fromisoformat(on)
        except ValueError:
            pass
    raise InvalidArgument(f"{on!r} is not a date: give a datetime.date or the text YYYY-MM-DD")


class Rulebook:
    """A loaded, checked and compiled rulebook, ready to evaluate records."""

    def __init__(self, checked: CheckedRulebook, program: Program):
        self.checked = checked
        self.program = program

    def __repr__(self) -> str:
        return (f"<Rulebook {self.id} {self.version}: {len(self.program.outputs)} outputs, "
                f"{len(self.program.rules)} rules, {len(self.program.parameters)} parameters>")

    @classmethod
    def load(cls, reference: str, allow_path: bool = True) -> "Rulebook":
        """Load by id (`stockholm/hlv-2021`) or, with `allow_path`, file path.

        Raises NotFound when there is no such rulebook and RulebookError when it has errors.
        """
        with collector_paused():
            checked = check(load_chain(reference, allow_path))
            return cls(checked, compile_rulebook(checked))

    @classmethod
    def loads(cls, text: str, name: str = "<string>") -> "Rulebook":
        """A rulebook from its text (a literate Markdown rulebook); `name` is how errors and
        explanations name its file. What it amends is found by id, as for a file."""
        with collector_paused():
            checked = check(load_text_chain(text, name))
            return cls(checked, compile_rulebook(checked))

    # ---- facts
    @property
    def id(self) -> str:
        return self.checked.id

    @property
    def version(self) -> str:
        return self.checked.version

    @property
    def title(self) -> str:
        return self.checked.header.title or ""

    @property
    def path(self) -> str:
        return self.checked.chain[-1].path

    @property
    def outputs(self) -> list[str]:
        return list(self.program.outputs)

    @property
    def warnings(self) -> list:
        return list(self.checked.warnings)

    def proof(self) -> list:
        """What the conflict prover finds (language/prover.py): a conflict between two rules of
        one level, with a record on which both apply (an error); a pair it could not prove and
        an exception that can never apply (warnings). Empty: proven."""
        from ..language.prover import prove  # the solver: only when a proof is asked for

        return prove(self.checked)

    # ---- data
    def dataset(self, source: DataSource, focus: Optional[tuple] = None) -> Dataset:
        """Typed, checked input records from a file, a directory or `{"table": [records]}`.

        `focus` = (table, record id[, tables to load whole]), as `focus` gives it, loads from
        a directory only what that record's evaluation reads: how one line of a region-sized
        settlement is explained."""
        if isinstance(source, Dataset):
            return source
        from ..columnar.records import (
            load_dataset,  # the intake: only when data is read
        )

        return load_dataset(source, self.checked, focus)

    def focus(self, output: str, record_id: str, assumptions: Optional[dict] = None) -> tuple:
        """What to load from a directory to explain one output of one record (`dataset`):
        the record's reach (what it names, what names it, their histories), and whole every
        table the output may read beyond it under the parameters' values or `assumptions`
        (typed, as `assume` gives them; CheckedRulebook.beyond_reach: a region's sum, a
        clinic's count read from a visit)."""
        table = self.program.outputs[output].table
        return (table, record_id, self.checked.beyond_reach(output, assumptions))

    def evaluator(self, data: DataSource, on: DateLike = None, focus: Optional[tuple] = None,
                  assumptions: Optional[dict] = None) -> Evaluator:
        """An evaluator over `data`; `assumptions` (see `assume`) replace parameters' values."""
        on = as_date(on)
        if assumptions:
            return Evaluator(self.program, self.dataset(data, focus), on, assumptions, ASSUMED_FOR_THE_RUN)
        return Evaluator(self.program, self.dataset(data, focus), on)

    def assume(self, given: Union[list, dict, None]) -> dict:
        """`NAME=VALUE` texts (or {NAME: VALUE text}) as assumptions for a run, type-checked
        like rulebook values (language/assumptions.py); AssumptionError naming the fix."""
        if isinstance(given, dict):
            given = [f"{name}={value}" for name, value in given.items()]
        return assumptions(self.checked, given or [])

    # ---- evaluation
    def evaluate(self, data: DataSource, *, on: DateLike = None, outputs: Optional[list] = None,
                 assume: Assumed = None) -> list[Result]:
        """Every output (or those named) for every record of its table; records without a
        date of their own (persons, clinics) are evaluated on `on`."""
        evaluator = self.evaluator(data, on, assumptions=self.assume(assume))
        return run_deep(lambda: list(evaluator.evaluate_all(outputs)))

    def evaluate_record(self, data: DataSource, output: str, record: str,
                        on: DateLike = None, assume: Assumed = None) -> Result:
        evaluator = self.evaluator(data, on, assumptions=self.assume(assume))
        return run_deep(evaluator.evaluate, output, self.record(evaluator, output, record))

    def explain(self, data: DataSource, output: str, record: str,
                on: DateLike = None, assume: Assumed = None) -> Explanation:
        evaluator = self.evaluator(data, on, assumptions=self.assume(assume))
        return run_deep(evaluator.explain, output, self.record(evaluator, output, record))

    def settle(self, month: str, data: Union[str, Path], out: Union[str, Path, None] = None,
               engine: str = "duckdb", assume: Assumed = None):
        """Settle a month of a region (a directory of tables): line items, totals and rejected
        records written beside `out` (default `settlement-YYYY-MM.parquet`); returns the
        Settlement (its `to_dict()` is `settle --format json`)."""
        from ..columnar.settlement import settle  # the columnar engine: only when settling

        return settle(self, month, Path(data), Path(out) if out is not None else None, engine,
                      assumptions=self.assume(assume))

    def input_warnings(self, data: DataSource, on: DateLike) -> list:
        """The rulebook's warnings (`warning … when … says …`) that hold for `data` as a whole on
        `on`: input that does not look like what a provision assumes. Each has `name`,
        `message`, `provision` and `source`."""
        day = as_date(on)
        if day is None:
            raise InvalidArgument("input_warnings needs the date the input is checked on")
        return self.evaluator(data, day).raised_warnings(day)

    def record(self, evaluator: Evaluator, output: str, record_id: str) -> dict:
        """The record of `output`'s table with this id; NotFound or DataError when there is none."""
        if output not in self.program.outputs:
            raise NotFound(f"rulebook {self.id} has no output {output!r}; it has: {', '.join(self.outputs)}")
        table = self.program.outputs[output].table
        data = evaluator.dataset.table(table)
        if data is None:
            raise DataError([RecordProblem(evaluator.file_of(None), record_id, f"the input has no {table} table")])
        found = data.find(record_id)
        if found is None:
            raise DataError([RecordProblem(data.file, record_id, f"no {table} record has this id")])
        return found


def load(reference: str) -> Rulebook:
    """A rulebook by id (`stockholm/hlv-2021`, `stockholm/hlv-2021@HEAD`) or file path."""
    return Rulebook.load(reference)


def loads(text: str, name: str = "<string>") -> Rulebook:
    """A rulebook from its text; see Rulebook.loads."""
    return Rulebook.loads(text, name)


def settle(book: Rulebook, month: str, data: Union[str, Path], out: Union[str, Path, None] = None,
           engine: str = "duckdb", assume: Assumed = None):
    """A month's settlement; see Rulebook.settle."""
    return book.settle(month, data, out, engine, assume)


__all__ = ["Rulebook", "load", "loads", "settle", "Result", "Explanation", "DataError", "EvaluationError",
           "NotFound"]
