"""Run the examples written inside a rulebook (`rulelang test`)."""

from __future__ import annotations

from typing import Iterator, Optional

import attrs

from ..columnar.records import load_dataset
from ..evaluation.evaluator import Evaluator
from ..language import syntax as s
from ..language.assumptions import assumed_constant
from ..language.diagnostics import DataError, EvaluationError
from ..language.values import to_json, to_text
from .api import Rulebook


@attrs.frozen
class ExampleOutcome:
    title: str
    span: s.Span
    failures: tuple  # of str

    @property
    def passed(self) -> bool:
        return not self.failures


def _raw_records(givens, checked) -> dict:
    """Example records as input rows, in the contract's JSON form, so they are checked like input."""
    tables: dict = {}
    for given in givens:
        info = checked.tables[given.table]
        rows = tables.setdefault(given.table, [])
        for record in given.records:
            row = {}
            for name, value, _ in record.fields:
                if isinstance(value, s.Name):  # an enum value
                    row[name] = value.name
                elif value.kind == "none":
                    row[name] = None
                else:
                    row[name] = to_json(value.value, info.fields[name][0].required())
            rows.append((f"{record.span.file}:{record.span.line}", len(rows) + 1, row))
    return tables


def _givens(book: Rulebook, example: s.ExampleDecl) -> list:
    """What an example gives: its `using` data, then its own `given`s."""
    givens = list(book.checked.data[example.using].givens) if example.using else []
    return givens + list(example.givens)


def example_records(book: Rulebook, example: s.ExampleDecl) -> dict:
    """The example's records as input: `{"table": [records]}` in the contract's JSON form,
    what `eval --input` and `settle --data` read."""
    return {table: [row for _, _, row in rows] for table, rows in _raw_records(_givens(book, example),
                                                                                book.checked).items()}


def example_evaluator(book: Rulebook, example: s.ExampleDecl, on=None, run: Optional[dict] = None) -> Evaluator:
    """An evaluator over the example's records (checked like input), its date (or `on`) and
    assumptions.

    Raises DataError when the example's own records are not valid input."""
    checked = book.checked
    dataset = load_dataset(_raw_records(_givens(book, example), checked), checked, display=example.span.file)
    assumptions = dict(run or {})  # the run's (--assume); the example's own premises win
    for assumption in example.assumptions:
        value_type = book.program.parameters[assumption.parameter].type
        assumptions[assumption.parameter] = assumed_constant(assumption, value_type)
    return Evaluator(book.program, dataset, on or example.on, assumptions)


def expected_record(evaluator: Evaluator, output_table: str, record_id: str) -> Optional[dict]:
    data = evaluator.dataset.table(output_table)
    return data.find(record_id) if data is not None else None


def explained_examples(book: Rulebook) -> Iterator[tuple]:
    """(example, expectation, explanation tree) for every expectation of every example of the
    rulebook: the worked cases, explained as a reviewer would read them."""
    for example in book.checked.examples:
        evaluator = example_evaluator(book, example)
        for expectation in example.expectations:
            output = book.program.outputs[expectation.output]
            record = expected_record(evaluator, output.table, expectation.record_id)
            yield example, expectation, evaluator.explain(expectation.output, record)


def run_example(book: Rulebook, example: s.ExampleDecl, run: Optional[dict] = None) -> ExampleOutcome:
    failures = []
    try:
        evaluator = example_evaluator(book, example, run=run)
    except DataError as error:
        return ExampleOutcome(example.title, example.span, tuple(p.format() for p in error.problems))
    for expectation in example.expectations:
        output = book.program.outputs[expectation.output]
        record = expected_record(evaluator, output.table, expectation.record_id)
        where = f"{expectation.span}"
        if record is None:
            failures.append(f"{where}: no {output.table} record {expectation.record_id!r} in the example")
            continue
        expected = expectation.value.name if isinstance(expectation.value, s.Name) \
            else expectation.value.value
        try:
            result = evaluator.evaluate(expectation.output, record)
        except EvaluationError as error:
            failures.append(f"{where}: {expectation.output} of {expectation.record_id!r}: {error.message}")
            continue
        if result.value != expected:
            failures.append(
                f"{where}: expected {expectation.output} of {expectation.record_id!r} = "
                f"{to_text(expected, output.type)}, got {to_text(result.value, output.type)} "
                f"(decided by {result.provision}, {result.source})")
    return ExampleOutcome(example.title, example.span, tuple(failures))


def run_examples(book: Rulebook, only: Optional[str] = None, run: Optional[dict] = None) -> list[ExampleOutcome]:
    """Every example (with `only`, those whose title has it), under the run's assumptions."""
    return [run_example(book, e, run) for e in book.checked.examples if only is None or only in e.title]
