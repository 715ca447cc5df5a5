"""Parameter values: each period's value, its status and citation, keyed rows, and
periods that overlap."""

from __future__ import annotations

import datetime as dt
import sys

import attrs

from .. import syntax as s
from ..diagnostics import did_you_mean as _suggest
from ..typesystem import STATUSES, Type
from .model import ParamInfo, Scope


def overlap(a_from, a_until, b_from, b_until) -> bool:
    lo = max(a_from or dt.date.min, b_from or dt.date.min)
    hi = min(a_until or dt.date.max, b_until or dt.date.max)
    return lo <= hi


def in_force(valid_from, valid_until, date) -> bool:
    """Whether a period (None: open at that end) holds `date`."""
    return (valid_from is None or valid_from <= date) and (valid_until is None or date <= valid_until)


def period(valid_from, valid_until) -> str:
    start = valid_from.isoformat() if valid_from else "the beginning"
    end = valid_until.isoformat() if valid_until else "further notice"
    return f"{start} – {end}"


class Dates:
    """Parameter values: each period's constant, status and citation; keyed rows; periods.

    A part of Checker: it shares the checker's state and reports through it."""

    def constant(self, expr: s.Expr, expected: Type, what: str):
        if isinstance(expr, s.Name) and expected.kind == "enum":
            self.expect_value(expr, Scope(None), expected, what)
            return expr.name
        if not isinstance(expr, s.Literal):
            self.error(f"{what} must be a constant (a literal such as 300 kr or 2021-02-01)", expr.span)
            return None
        self.expect_value(expr, Scope(None), expected, what)
        if expr.kind == "integer" and expected.kind == "decimal":
            from fractions import Fraction
            return Fraction(expr.value)
        if isinstance(expr, s.Literal) and expr.kind == "none":
            return None
        return expr.value

    def check_parameter(self, info: ParamInfo) -> None:
        name = info.decl.name
        if not info.values:
            self.error(f"parameter {name} has no value", info.decl.span)
        resolved = []
        for value in info.values:
            decl = value.decl
            if decl.status is None:
                self.error(f"a value of {name} needs a status: one of {', '.join(STATUSES)}", decl.span)
            elif decl.status not in STATUSES:
                self.error(f"unknown status {decl.status}" + _suggest(decl.status, STATUSES), decl.span)
            if decl.cite is not None and not decl.cite.strip():
                self.error(f"an empty `cite` cites nothing: name where the source gives this value of {name} "
                           "(a section, a page, a table)", decl.span)
            elif decl.cite is None and decl.status == "verified":  # seed: provenance.py checks its cite
                self.error(f"a {decl.status} value of {name} needs a citation: add `cite \"…\"` naming where "
                           "the source gives it", decl.span,
                           "a value no source gives is `interpretation` or `illustrative`")
            elif decl.cite is None:
                self.warn(f"a value of {name} cites no source (add `cite \"…\"`)", decl.span)
            if decl.valid_from and decl.valid_until and decl.valid_from > decl.valid_until:
                self.error(f"a value of {name} ends ({decl.valid_until}) before it starts ({decl.valid_from})",
                           decl.span)
            if not info.key_types:
                if decl.rows or decl.value is None:
                    self.error(f"parameter {name} has one value per period; rows belong to a parameter "
                               f"declared `by` a key", decl.span)
                    continue
                constant = self.constant(decl.value, info.type, f"the value of {name}")
            else:
                if decl.value is not None or not decl.rows:
                    self.error(f"parameter {name} is keyed by {info.keys_shown}: give its value as rows "
                               "(`row 0 to 6: 150 kr`)", decl.span)
                    continue
                constant = tuple(self.check_row(name, info, row) for row in decl.rows)
                self.check_rows_disjoint(name, decl.rows)
            resolved.append(attrs.evolve(value, value=constant))
        info.values = resolved
        self.check_gaps(name, info.values)
        for i, a in enumerate(info.values):
            for b in info.values[i + 1:]:
                if overlap(a.valid_from, a.valid_until, b.valid_from, b.valid_until):
                    self.error(
                        f"values of parameter {name} overlap: {period(a.valid_from, a.valid_until)} "
                        f"and {period(b.valid_from, b.valid_until)}", b.decl.span,
                        f"the other value is at {a.decl.span}")

    def check_gaps(self, name: str, values: list) -> None:
        """A day between two periods of a parameter has no value: a record dated then cannot be
        settled. Reported where the later period begins."""
        dated = sorted(values, key=lambda v: v.valid_from or dt.date.min)
        for before, after in zip(dated, dated[1:]):
            if before.valid_until is None or after.valid_from is None:
                continue
            first_missing = before.valid_until + dt.timedelta(days=1)
            if after.valid_from > first_missing:
                last_missing = after.valid_from - dt.timedelta(days=1)
                self.warn(f"parameter {name} has no value from {first_missing} to {last_missing}: a record "
                          "dated then cannot be settled", after.decl.span,
                          f"the value before the gap is at {before.decl.span}; end it on {last_missing}, "
                          f"or start this one on {first_missing}, unless the gap is meant")

    def check_row(self, name: str, info: ParamInfo, row: s.ParamRow):
        """A row as (keys, constant); each key checked against its dimension's type."""
        if len(row.keys) != len(info.key_types):
            self.error(f"parameter {name} is keyed by {info.keys_shown}; this row gives "
                       f"{len(row.keys)} key(s)", row.span)
        for key, key_type in zip(row.keys, info.key_types):
            if key_type.kind == "error":
                continue
            if key.low is None and key.enum_value is None:  # `any`
                continue
            if key.enum_value is not None:
                if key_type.kind != "enum" or key.enum_value not in self.enums[key_type.name].values:
                    self.error(f"{key.enum_value} is not a value of {key_type}", key.span)
            elif key_type.kind == "enum":
                self.error(f"this key is {key_type}; a row names one of its values", key.span)
            elif key.high is not None and key.low > key.high:
                self.error(f"the range {key.low} to {key.high} is empty", key.span)
        keys = tuple((k.low, k.high, k.enum_value) for k in row.keys)
        return (keys, self.constant(row.value, info.type, f"a row of {name}"))

    def check_rows_disjoint(self, name: str, rows: tuple) -> None:
        """Two rows overlap when every one of their keys overlaps."""
        def overlaps(a: s.RowKey, b: s.RowKey) -> bool:
            if str(a) == "any" or str(b) == "any":
                return True
            if a.enum_value is not None or b.enum_value is not None:
                return a.enum_value == b.enum_value
            a_high = a.high if a.high is not None else sys.maxsize  # "and over"
            b_high = b.high if b.high is not None else sys.maxsize
            return a.low <= b_high and b.low <= a_high

        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if len(a.keys) == len(b.keys) and all(overlaps(x, y) for x, y in zip(a.keys, b.keys)):
                    self.error(f"rows of parameter {name} overlap", b.span, f"the other row is at {a.span}")
