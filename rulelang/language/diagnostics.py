"""Errors and warnings a user can act on: a position in a file or a record id, never a traceback."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Iterable, Optional

import attrs

if TYPE_CHECKING:  # in annotations only: the CLI reports errors without loading the syntax tree's classes
    from .syntax import Span


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest known name, or nothing when none is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


SHOWN_LINE = 120  # characters of a source line shown under a diagnostic


@attrs.frozen
class Diagnostic:
    """A problem in a rulebook, at a span."""

    severity: str  # "error" or "warning"
    message: str
    span: Optional[Span]
    notes: tuple = ()

    def to_dict(self) -> dict:
        """The diagnostic for tools (`check --format json`, the HTTP API): where, how bad, what."""
        span = self.span
        return {"file": span.file if span else None, "line": span.line if span else None,
                "column": span.column if span else None, "end_line": span.end_line if span else None,
                "end_column": span.end_column if span else None, "severity": self.severity,
                "message": self.message, "notes": list(self.notes)}

    def as_error(self) -> "Diagnostic":
        """The same problem as an error (`check --strict`: where money is at stake, a warning
        stops the rulebook as an error does)."""
        return attrs.evolve(self, severity="error") if self.severity == "warning" else self

    def format(self, sources: Optional[dict] = None) -> str:
        """`FILE:LINE:COLUMN: error: MESSAGE`, then the source line with a caret under the spot."""
        where = str(self.span) if self.span else "<rulebook>"
        lines = [f"{where}: {self.severity}: {self.message}"]
        text = (sources or {}).get(self.span.file) if self.span else None
        if text is not None:
            source_lines = text.splitlines()
            if 1 <= self.span.line <= len(source_lines):
                line = source_lines[self.span.line - 1]
                column = self.span.column
                width = 1
                if self.span.end_line == self.span.line:
                    width = max(1, self.span.end_column - column)
                if len(line) > SHOWN_LINE:  # a window of a long line around the spot
                    start = max(0, min(column - 1 - SHOWN_LINE // 2, len(line) - SHOWN_LINE))
                    line = ("…" if start else "") + line[start:start + SHOWN_LINE] + \
                        ("…" if start + SHOWN_LINE < len(line) else "")
                    column = column - start + (1 if start else 0)
                    width = min(width, SHOWN_LINE - column + 2)
                lines.append(f"    {line}")
                lines.append("    " + " " * (column - 1) + "^" * max(1, width))
        lines.extend(f"    note: {note}" for note in self.notes)
        return "\n".join(lines)


class Error(Exception):
    """What rulelang raises for anything a user gave it (a rulebook, data, a name, a date):
    one base for tools that embed it. A bug in rulelang is not an Error."""


class InvalidArgument(Error, ValueError):
    """An argument rulelang cannot use as given (a date that is no date, a month that is no
    month): the caller's mistake, said with the fix."""


class RulebookError(Error):
    """A rulebook that cannot be used: it carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Optional[dict] = None):
        self.diagnostics = tuple(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(d.format(self.sources) for d in self.diagnostics)


@attrs.frozen
class RecordProblem:
    """A problem with one input record: `FILE: record ID: error: MESSAGE`."""

    file: str
    record: str
    message: str

    def format(self) -> str:
        if not self.record:  # the file as a whole
            return f"{self.file}: error: {self.message}"
        return f"{self.file}: record {self.record}: error: {self.message}"


class DataError(Error):
    """Input data that cannot be used as given; lists every bad record, not only the first."""

    def __init__(self, problems: Iterable[RecordProblem]):
        self.problems = tuple(problems)
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(p.format() for p in self.problems)


class EvaluationError(Error):
    """A rulebook that fails on particular data: a conflict, no applicable rule, a missing value.

    `kind` is "rulebook" when the rulebook is at fault (exit 1) and "data" when the input is
    (a date no parameter value covers, a record that is not there; exit 2).
    """

    def __init__(self, message: str, *, kind: str, file: str = "", record: str = "",
                 span: Optional[Span] = None):
        self.message = message
        self.kind = kind
        self.file = file
        self.record = record
        self.span = span
        super().__init__(self.format())

    def format(self) -> str:
        where = f" (rule at {self.span})" if self.span else ""
        if self.record:
            return f"{self.file or '<input>'}: record {self.record}: error: {self.message}{where}"
        return f"{self.span or '<rulebook>'}: error: {self.message}"


class NotFound(Error, LookupError):
    """A rulebook, output or record that is not there: a usage error (exit 2), not a rulebook error."""
