"""Which rules, exceptions and parameter periods a rulebook's examples exercise (`rulelang
test --coverage`).

Every expectation of every example is explained, as a reviewer would read it; the trees
say which rules and exceptions were considered (evaluated on a day they are in force), which
applied (their own condition held and their formula gave the value), and which parameter
values were read, with the period of each. What the rulebook declares itself and no example
reaches is listed, with its place.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from ..language.diagnostics import DataError, EvaluationError
from .api import Rulebook
from .examples import example_evaluator, expected_record


@attrs.frozen
class Uncovered:
    """A rule, exception or parameter period no example reaches."""

    what: str  # "rule", "exception", "parameter period"
    name: str
    where: str  # FILE:LINE


@attrs.frozen
class Coverage:
    rulebook: str
    rules: int  # rules and exceptions the rulebook declares
    applied: int  # of them, those that apply in some example
    exceptions: int
    considered: int  # exceptions considered in some example
    periods: int  # parameter values (one period each) the rulebook declares
    read: int
    never_applies: tuple  # of Uncovered
    never_considered: tuple
    never_read: tuple

    @property
    def percent(self) -> Decimal:
        """The share of rules and exceptions that apply in some example: what --min-coverage
        holds a rulebook to (exact, compared with the threshold as written)."""
        return Decimal(100) if not self.rules else Decimal(100 * self.applied) / Decimal(self.rules)


def coverage(book: Rulebook) -> Coverage:
    applied, considered, read = set(), set(), set()
    for example in book.checked.examples:
        try:
            evaluator = example_evaluator(book, example)
        except DataError:
            continue  # `test` reports it; an example that cannot run covers nothing
        for expectation in example.expectations:
            output = book.program.outputs.get(expectation.output)
            record = expected_record(evaluator, output.table, expectation.record_id) if output else None
            if record is None:
                continue
            try:
                tree = evaluator.explain(expectation.output, record)
            except EvaluationError:
                continue
            for node in tree.walk():
                if node.kind in ("rule", "exception") and node.facts.get("in_force"):
                    considered.add(node.label)
                    # An exception applies when it gives the value, through a deeper one too.
                    if node.facts.get("applied") or node.kind == "exception" and node.value is not None:
                        applied.add(node.label)
                elif node.kind == "parameter" and node.facts.get("parameter"):
                    read.add((node.facts["parameter"], node.facts.get("valid_from"), node.facts.get("valid_to")))
    own = book.checked.chain[-1].path
    rules = {label: info for label, info in book.checked.rules.items() if info.decl.span.file == own}
    exceptions = {label: info for label, info in rules.items() if info.decl.is_exception}
    periods = []
    for name, info in book.checked.parameters.items():
        for value in info.values:
            if value.decl.span.file == own:
                start = value.valid_from.isoformat() if value.valid_from else None
                end = value.valid_until.isoformat() if value.valid_until else None
                periods.append(((name, start, end), value.decl.span.location))
    return Coverage(
        book.id, len(rules), sum(label in applied for label in rules), len(exceptions),
        sum(label in considered for label in exceptions), len(periods), sum(key in read for key, _ in periods),
        tuple(Uncovered("exception" if info.decl.is_exception else "rule", label, info.decl.span.location)
              for label, info in rules.items() if label not in applied),
        tuple(Uncovered("exception", label, info.decl.span.location)
              for label, info in exceptions.items() if label not in considered),
        tuple(Uncovered("parameter period", f"{name} {start or 'the beginning'} – {end or 'further notice'}", where)
              for (name, start, end), where in periods if (name, start, end) not in read))
