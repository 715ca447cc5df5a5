"""The Python API for tools that embed the evaluator.

    import rulelang
    book = rulelang.load("stockholm/hlv-2021")
    data = book.dataset({"visits": [...], "persons": [...], ...})   # or a path
    result = book.evaluate_record(data, "tilläggsersättning", "V1")
    result.value, result.json_value, result.provision
    book.explain(data, "tilläggsersättning", "V1").to_dict()
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
from ..language.diagnostics import DataError, EvaluationError, NotFound, RecordProblem
from ..language.loader import load_chain

DataSource = Union[str, Path, dict, Dataset]


class Rulebook:
    """A loaded, checked and compiled rulebook, ready to evaluate records."""

    def __init__(self, checked: CheckedRulebook, program: Program):
        self.checked = checked
        self.program = program

    @classmethod
    def load(cls, reference: str) -> "Rulebook":
        """Load by id (`stockholm/hlv-2021`) or file path.

        Raises NotFound when there is no such rulebook and RulebookError when it has errors.
        """
        checked = check(load_chain(reference))
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

        `focus` = (table, record id) loads from a directory only what that record's
        evaluation reads: how one line of a region-sized settlement is explained."""
        if isinstance(source, Dataset):
            return source
        from ..columnar.records import (
            load_dataset,  # the intake: only when data is read
        )

        return load_dataset(source, self.checked, focus)

    def evaluator(self, data: DataSource, on: Optional[dt.date] = None, focus: Optional[tuple] = None,
                  assumptions: Optional[dict] = None) -> Evaluator:
        """An evaluator over `data`; `assumptions` (see `assume`) replace parameters' values."""
        if assumptions:
            return Evaluator(self.program, self.dataset(data, focus), on, assumptions, ASSUMED_FOR_THE_RUN)
        return Evaluator(self.program, self.dataset(data, focus), on)

    def assume(self, given: list) -> dict:
        """`NAME=VALUE` texts as assumptions for a run, type-checked like rulebook values
        (language/assumptions.py); AssumptionError naming the fix."""
        return assumptions(self.checked, given)

    # ---- evaluation
    def evaluate(self, data: DataSource, *, on: Optional[dt.date] = None,
                 outputs: Optional[list] = None) -> list[Result]:
        """Every output (or those named) for every record of its table."""
        return run_deep(lambda: list(self.evaluator(data, on).evaluate_all(outputs)))

    def evaluate_record(self, data: DataSource, output: str, record: str,
                        on: Optional[dt.date] = None) -> Result:
        evaluator = self.evaluator(data, on)
        return run_deep(evaluator.evaluate, output, self.record(evaluator, output, record))

    def explain(self, data: DataSource, output: str, record: str,
                on: Optional[dt.date] = None) -> Explanation:
        evaluator = self.evaluator(data, on)
        return run_deep(evaluator.explain, output, self.record(evaluator, output, record))

    def input_warnings(self, data: DataSource, on: dt.date) -> list:
        """The rulebook's warnings (`warning … when … says …`) that hold for `data` as a whole on
        `on`: input that does not look like what a provision assumes. Each has `name`,
        `message`, `provision` and `source`."""
        return self.evaluator(data, on).raised_warnings(on)

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
    return Rulebook.load(reference)


__all__ = ["Rulebook", "load", "Result", "Explanation", "DataError", "EvaluationError", "NotFound"]
