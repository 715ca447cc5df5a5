"""Compile a checked rulebook into an evaluable tree of Python closures.

Nothing a user wrote is ever passed to `eval` or `exec`: every expression becomes a
closure `run(frame, trace)` built from the typed syntax tree. `trace` is None on the
fast path; when explaining, it collects the explanation nodes of what was looked at.
Labels, citations and value formatters are all worked out here, once, not per record.
"""

from __future__ import annotations

import datetime as dt
import operator
from fractions import Fraction
from typing import Callable, Optional

import attrs

from . import syntax as s
from .checker import CheckedRulebook
from .diagnostics import EvaluationError
from .explanation import Explanation
from .generator import generate
from .typesystem import Type
from .values import round_amount, to_json, to_text

Run = Callable[[object, Optional["Trace"]], object]


class Trace:
    """What an explained evaluation looked at: child nodes, and shown values per syntax node."""

    __slots__ = ("nodes", "values", "_seen")

    def __init__(self):
        self.nodes: list[Explanation] = []
        self.values: dict[int, str] = {}
        self._seen: set = set()

    def add(self, node: Explanation, key=None) -> None:
        """Add a child once: a name used twice in one formula is explained once."""
        if key is not None:
            if key in self._seen:
                return
            self._seen.add(key)
        self.nodes.append(node)


@attrs.frozen
class CompiledValue:
    """A dated parameter value, ready to pick by date."""

    value: object
    valid_from: Optional[dt.date]
    valid_until: Optional[dt.date]
    status: Optional[str]
    cite: Optional[str]
    provision: str
    rulebook: str
    source: str


@attrs.define
class CompiledParameter:
    name: str
    type: Type
    keyed: bool
    values: list  # CompiledValue, sorted by start


@attrs.define
class CompiledDefinition:
    name: str
    table: Optional[str]
    type: Type
    run: Run
    label: str
    provision: str
    rulebook: str
    source: str
    syntax: s.Expr


@attrs.define
class CompiledRule:
    label: str
    is_exception: bool
    output: str
    valid_from: Optional[dt.date]
    valid_until: Optional[dt.date]
    condition: Optional[Run]
    condition_syntax: Optional[s.Expr]
    condition_label: str
    value: Run
    value_syntax: s.Expr
    value_label: str
    exceptions: list  # labels
    provision: str
    rulebook: str
    source: str
    repealed_by: Optional[str] = None  # the repealing provision, cited from its first day
    repealed_from: Optional[dt.date] = None


@attrs.define
class CompiledOutput:
    name: str
    table: str
    type: Type
    roots: list  # labels
    default: Optional[Run]
    default_syntax: Optional[s.Expr]
    payee: Optional[Run]
    provision: str
    rulebook: str
    source: str


@attrs.define
class Program:
    """The evaluable form of a rulebook."""

    checked: CheckedRulebook
    parameters: dict
    definitions: dict  # (table, name) → CompiledDefinition
    outputs: dict
    rules: dict

    @property
    def id(self) -> str:
        return self.checked.id


class Compiler:
    def __init__(self, checked: CheckedRulebook):
        self.checked = checked
        self.sources = checked.sources
        self._lines: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ helpers
    def text_of(self, span: s.Span) -> str:
        """The expression exactly as the rulebook writes it."""
        lines = self._lines.get(span.file)
        if lines is None:
            lines = self._lines[span.file] = self.sources.get(span.file, "").splitlines()
        if not lines or span.line > len(lines):
            return ""
        if span.line == span.end_line:
            return lines[span.line - 1][span.column - 1:span.end_column - 1]
        first = lines[span.line - 1][span.column - 1:]
        middle = lines[span.line:span.end_line - 1]
        last = lines[span.end_line - 1][:span.end_column - 1]
        return " ".join(part.strip() for part in [first, *middle, last])

    def type_of(self, e: s.Expr) -> Type:
        return self.checked.types[id(e)]

    # ------------------------------------------------------------------ program
    def compile(self) -> Program:
        checked = self.checked
        parameters = {name: self.parameter(info) for name, info in checked.parameters.items()}
        definitions = {}
        for key, info in checked.definitions.items():
            decl = info.decl
            definitions[key] = CompiledDefinition(
                decl.name, decl.table, info.type, self.expr(decl.expr), self.text_of(decl.expr.span),
                decl.provision.citation, decl.provision.rulebook, decl.span.location, decl.expr)
        rules = {}
        for label, info in checked.rules.items():
            if info.output is None:
                continue
            decl = info.decl
            rules[label] = CompiledRule(
                label, decl.is_exception, info.output, decl.valid_from, decl.valid_until,
                self.expr(decl.condition) if decl.condition is not None else None, decl.condition,
                self.text_of(decl.condition.span) if decl.condition is not None else "",
                self.expr(decl.value), decl.value, self.text_of(decl.value.span),
                list(info.exceptions), decl.provision.citation, decl.provision.rulebook,
                decl.span.location,
                (f"{info.repealed_by.provision.citation} [{info.repealed_by.provision.rulebook}, "
                 f"{info.repealed_by.span.location}]") if info.repealed_by else None,
                info.repealed_by.from_date if info.repealed_by else None)
        outputs = {}
        for name, info in checked.outputs.items():
            decl = info.decl
            outputs[name] = CompiledOutput(
                name, decl.table, info.type, list(info.roots),
                self.expr(decl.default) if decl.default is not None else None, decl.default,
                self.expr(decl.payee) if decl.payee is not None else None,
                decl.provision.citation, decl.provision.rulebook, decl.span.location)
        return Program(checked, parameters, definitions, outputs, rules)

    def parameter(self, info) -> CompiledParameter:
        values = []
        for value in info.values:
            decl = value.decl
            constant = value.value
            values.append(CompiledValue(
                constant, value.valid_from, value.valid_until, decl.status, decl.cite,
                decl.provision.citation, decl.provision.rulebook, decl.span.location))
        values.sort(key=lambda v: v.valid_from or dt.date.min)
        return CompiledParameter(info.decl.name, info.type, bool(info.key_types), values)

    # ------------------------------------------------------------------ expressions
    def expr(self, e: s.Expr) -> Run:
        return getattr(self, "_" + type(e).__name__.lower())(e)

    def shown(self, e: s.Expr, value, trace) -> None:
        """Remember how a leaf's value reads, for the formula with values put in."""
        trace.values[id(e)] = to_text(value, self.type_of(e))

    def _literal(self, e: s.Literal) -> Run:
        value = e.value
        if e.kind == "decimal":
            value = Fraction(value)
        return lambda frame, trace: value

    def _name(self, e: s.Name) -> Run:
        resolution = self.checked.resolved[id(e)]
        kind = resolution[0]
        value_type = self.type_of(e)
        shown = self.shown
        if kind == "enum":
            constant = resolution[2]
            return lambda frame, trace: constant
        if kind == "var":
            var = resolution[1]
            return lambda frame, trace: frame.vars[var]
        if kind == "evaluation_date":
            def evaluation_date(frame, trace):
                if trace is not None:
                    shown(e, frame.date, trace)
                return frame.date
            return evaluation_date
        if kind == "parameter":
            name = resolution[1]
            def parameter(frame, trace):
                value = frame.parameter(name, trace, e)
                if trace is not None:
                    shown(e, value, trace)
                return value
            return parameter
        if kind == "field":
            _, table, field = resolution
            label = f"{table}.{field}"
            def field_value(frame, trace):
                value = frame.record[field]
                if trace is not None:
                    shown(e, value, trace)
                    frame.explain_input(trace, table, frame.record, field, label, value_type)
                return value
            return field_value
        if kind in ("definition", "output"):
            _, table, name = resolution
            def computed(frame, trace):
                value = frame.computed(kind, table, name, frame.record if table else None, trace)
                if trace is not None:
                    shown(e, value, trace)
                return value
            return computed
        raise AssertionError(resolution)

    def _fieldaccess(self, e: s.FieldAccess) -> Run:
        target = self.expr(e.target)
        target_type = self.type_of(e.target)
        kind, table, name = self.checked.resolved[id(e)]
        value_type = self.type_of(e)
        shown = self.shown
        label = f"{table}.{name}"

        def access(frame, trace):
            handle = target(frame, trace)
            if handle is None:
                value = None
            else:
                record = frame.record_of(target_type, handle, e)
                if kind == "field":
                    value = record[name]
                    if trace is not None:
                        frame.explain_input(trace, table, record, name, label, value_type)
                else:
                    value = frame.computed(kind, table, name, record, trace)
            if trace is not None:
                shown(e, value, trace)
            return value
        return access

    def _lookup(self, e: s.Lookup) -> Run:
        name = e.target.name
        keys = [self.expr(k) for k in e.keys]
        shown = self.shown

        def lookup(frame, trace):
            key_values = tuple(key(frame, trace) for key in keys)
            value = frame.parameter(name, trace, e, key_values)
            if trace is not None:
                shown(e, value, trace)
            return value
        return lookup

    def _historylookup(self, e: s.HistoryLookup) -> Run:
        table = e.target.name
        key = self.expr(e.key)
        on = self.expr(e.on)
        label = self.text_of(e.span)
        shown = self.shown

        def history(frame, trace):
            inner = None if trace is None else Trace()
            key_value = key(frame, inner)
            date = on(frame, inner)
            found = frame.history(table, key_value, date, e)
            if trace is not None:
                shown(e, found, trace)
                frame.explain_history(trace, inner, table, label, key_value, date, found, e)
            return found
        return history

    def _unary(self, e: s.Unary) -> Run:
        operand = self.expr(e.operand)
        if e.op == "not":
            return lambda frame, trace: not operand(frame, trace)
        return lambda frame, trace: -operand(frame, trace)

    def _binary(self, e: s.Binary) -> Run:
        left, right = self.expr(e.left), self.expr(e.right)
        op = e.op
        # Both short-circuit, explained or not: an explanation shows what was looked at.
        if op == "and":
            return lambda frame, trace: left(frame, trace) and right(frame, trace)
        if op == "or":
            return lambda frame, trace: left(frame, trace) or right(frame, trace)
        if op in ("=", "!="):
            negate = op == "!="
            return lambda frame, trace: (left(frame, trace) == right(frame, trace)) != negate
        compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}.get(op)
        if compare is not None:
            return lambda frame, trace: compare(left(frame, trace), right(frame, trace))
        result_type = self.type_of(e)
        left_type, right_type = self.type_of(e.left), self.type_of(e.right)
        if op == "+":
            return lambda frame, trace: left(frame, trace) + right(frame, trace)
        if op == "-":
            return lambda frame, trace: left(frame, trace) - right(frame, trace)
        if op == "*":
            if result_type.kind in ("unrounded", "decimal"):
                return lambda frame, trace: Fraction(left(frame, trace)) * right(frame, trace)
            return lambda frame, trace: left(frame, trace) * right(frame, trace)
        if op == "/":
            # money / money is a rate: öre cancel out. Everything else keeps its unit.
            span = e.span

            def divide(frame, trace):
                numerator, denominator = left(frame, trace), right(frame, trace)
                if denominator == 0:
                    raise frame.data_error(f"division by zero in {generate(e)}", span)
                return Fraction(numerator) / denominator
            return divide
        raise AssertionError(op)

    def _isnone(self, e: s.IsNone) -> Run:
        operand = self.expr(e.operand)
        if e.negated:
            return lambda frame, trace: operand(frame, trace) is not None
        return lambda frame, trace: operand(frame, trace) is None

    def _member(self, e: s.Member) -> Run:
        operand = self.expr(e.operand)
        items = [self.expr(i) for i in e.items]
        negated = e.negated
        constant = all(isinstance(i, (s.Literal, s.Name)) and
                       (isinstance(i, s.Literal) or self.checked.resolved[id(i)][0] == "enum") for i in e.items)
        if constant:
            fixed = frozenset(item(None, None) for item in items)
            return lambda frame, trace: (operand(frame, trace) in fixed) != negated
        return lambda frame, trace: (operand(frame, trace) in {item(frame, trace) for item in items}) != negated

    def _rounded(self, e: s.Rounded) -> Run:
        operand = self.expr(e.operand)
        mode, unit = e.mode, e.unit
        operand_type = self.type_of(e.operand)
        label = f"rounded {mode} to {unit}"
        source = e.span.location

        def rounded(frame, trace):
            if trace is None:
                return round_amount(operand(frame, None), mode, unit)
            inner = Trace()
            exact = operand(frame, inner)
            result = round_amount(exact, mode, unit)
            trace.values.update(inner.values)
            trace.add(Explanation(
                "rounding", label, to_json(result, self.type_of(e)), None, source, inner.nodes,
                {"before": to_json(exact, operand_type), "mode": mode, "unit": unit,
                 "formula": generate(e.operand, lambda x: inner.values.get(id(x)))}))
            trace.values[id(e)] = to_text(result, self.type_of(e))
            return result
        return rounded

    def _otherwise(self, e: s.Otherwise) -> Run:
        operand, fallback = self.expr(e.operand), self.expr(e.fallback)

        def otherwise(frame, trace):
            value = operand(frame, trace)
            return fallback(frame, trace) if value is None else value
        return otherwise

    def _call(self, e: s.Call) -> Run:
        args = [self.expr(a) for a in e.args]
        function = _FUNCTIONS[e.function]
        if len(args) == 1:
            (only,) = args
            return lambda frame, trace: function(only(frame, trace))
        if len(args) == 2:
            first, second = args
            return lambda frame, trace: function(first(frame, trace), second(frame, trace))
        return lambda frame, trace: function(*[a(frame, trace) for a in args])

    def _if(self, e: s.If) -> Run:
        condition, then, otherwise = self.expr(e.condition), self.expr(e.then), self.expr(e.otherwise)
        return lambda frame, trace: then(frame, trace) if condition(frame, trace) else otherwise(frame, trace)

    def criteria(self, criteria: tuple) -> list:
        return [(self.expr(c), c, self.text_of(c.span)) for c in criteria]

    def _atleast(self, e: s.AtLeast) -> Run:
        compiled = self.criteria(e.criteria)
        threshold = e.threshold
        label = f"at least {threshold} of {len(compiled)} criteria"
        source = e.span.location

        def at_least(frame, trace):
            if trace is None:
                return sum(1 for run, _, _ in compiled if run(frame, None)) >= threshold
            held, nodes = _explain_criteria(frame, compiled, trace)
            result = held >= threshold
            trace.add(Explanation("criteria", label, result, None, source, nodes,
                                  {"held": held, "threshold": threshold}))
            trace.values[id(e)] = "true" if result else "false"
            return result
        return at_least

    def _counttrue(self, e: s.CountTrue) -> Run:
        compiled = self.criteria(e.criteria)
        label = f"number of {len(compiled)} criteria that hold"
        source = e.span.location

        def count_true(frame, trace):
            if trace is None:
                return sum(1 for run, _, _ in compiled if run(frame, None))
            held, nodes = _explain_criteria(frame, compiled, trace)
            trace.add(Explanation("criteria", label, str(held), None, source, nodes, {"held": held}))
            trace.values[id(e)] = str(held)
            return held
        return count_true

    def _aggregate(self, e: s.Aggregate) -> Run:
        expr = self.expr(e.expr) if e.expr is not None else None
        where = self.expr(e.where) if e.where is not None else None
        var, table, function = e.var, e.table, e.function
        label = self.text_of(e.span)
        value_type = self.type_of(e)
        source = e.span.location

        def aggregate(frame, trace):
            total, count = 0, 0
            for record in frame.records(table, e):
                inner = frame.bind(var, record)
                if where is not None and not where(inner, None):
                    continue
                count += 1
                if expr is not None:
                    total += expr(inner, None)
            result = count if function == "count" else total
            if trace is not None:
                trace.add(Explanation("aggregate", label, to_json(result, value_type), None, source, [],
                                      {"records": count}))
                trace.values[id(e)] = to_text(result, value_type)
            return result
        return aggregate


def _explain_criteria(frame, compiled, trace):
    held, nodes = 0, []
    for run, syntax_node, text in compiled:
        inner = Trace()
        value = run(frame, inner)
        held += bool(value)
        nodes.append(Explanation("criterion", text, bool(value), None, syntax_node.span.location, inner.nodes,
                                 {"formula": generate(syntax_node, lambda x: inner.values.get(id(x)))}))
        trace.values.update(inner.values)
    return held, nodes


def _age(birth: dt.date, on: dt.date) -> int:
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years


def _last_day_of_month(d: dt.date) -> dt.date:
    following = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


_FUNCTIONS = {
    "age": _age,
    "year": lambda d: d.year,
    "month": lambda d: d.month,
    "day": lambda d: d.day,
    "first_day_of_month": lambda d: d.replace(day=1),
    "last_day_of_month": _last_day_of_month,
    "days_between": lambda a, b: (b - a).days,
    "add_days": lambda d, n: d + dt.timedelta(days=n),
    "min": min,
    "max": max,
}


def compile_rulebook(checked: CheckedRulebook) -> Program:
    return Compiler(checked).compile()
