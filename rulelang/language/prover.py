"""Prove, before anything runs, that the rules and exceptions of a rulebook cannot conflict.

At one level of default logic (the rules of an output, or the exceptions to one rule) two
rules that both give a value for the same record on the same date must give the same value,
or evaluation stops with a conflict. The checker refuses identical conditions; this stage
proves the general case with an SMT solver (Z3): for each pair of one level, it asks for a
record (its fields, the fields of the records it refers to, and its date) on which both
apply with different values. None: the pair is proven. One: a conflict, reported with the
record as a witness. It also asks, for each exception, whether it can apply at all.

What the solver is given is exact for enums, booleans, text, integer, decimal and money
arithmetic and comparisons, dates, `at least N of`, `if`, `otherwise`, and the parameter
values in force on each date (rows and periods included). A reading (a yes/no or enum parameter whose value is an interpretation) is
an input: a run may assume another alternative, so every one is proven. What it is not (a sum over other
records, a function such as `age`, a rounding, another output) becomes an unknown value,
so the answer can only be weaker: a pair proven with unknowns is proven; a witness that
rests on an unknown is not trusted, and the pair is listed as not proven, naming the
unknowns, never passed in silence.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Optional

import attrs

from . import syntax as s
from .checker import CheckedRulebook
from .checker.dates import period
from .diagnostics import Diagnostic
from .generator import generate
from .typesystem import BOOLEAN, DATE

SOLVER_TIMEOUT_MS = 2000  # per question; an answer not found in time is "not proven"
MAX_INLINE_DEPTH = 32  # definitions inlined into one another, at most


@attrs.frozen
class Unknown:
    """Something the solver treats as any value: what it stands for, and why."""

    text: str
    reason: str


class _Encoding:
    """The formulas of one table's rules: every input a variable, every definition inlined."""

    def __init__(self, z3, checked: CheckedRulebook, table: str):
        self.z3 = z3
        self.checked = checked
        self.table = table
        self.date = z3.Int("@date")  # the day the record is evaluated on
        self.inputs: dict = {}  # name → (variable, Type): what a witness shows
        dated_by = checked.tables[table].decl.dated_by if table in checked.tables else None
        if dated_by:  # a dated record is evaluated on its own date: one variable
            self.inputs[dated_by] = (self.date, DATE)
        self.unknowns: dict = {}  # name → (variable, Unknown)
        self.depth = 0

    # ---- sorts and constants
    def sort(self, value_type):
        z3 = self.z3
        kind = value_type.kind
        if kind == "boolean":
            return z3.BoolSort()
        if kind in ("date", "enum"):
            return z3.IntSort()
        if kind in ("integer", "decimal", "money", "unrounded"):
            return z3.RealSort()
        return z3.StringSort()

    def constant(self, value, value_type):
        z3 = self.z3
        kind = value_type.kind
        if value is None:
            return self.unknown(f"none:{value_type}", "none", value_type)
        if kind == "boolean":
            return z3.BoolVal(bool(value))
        if kind == "date":
            return z3.IntVal(value.toordinal())
        if kind == "enum":
            return z3.IntVal(self.checked.enums[value_type.name].values.index(value))
        if kind in ("integer", "decimal", "money", "unrounded"):
            fraction = Fraction(value)
            return z3.RealVal(f"{fraction.numerator}/{fraction.denominator}")
        return z3.StringVal(str(value))

    def input(self, name: str, value_type):
        if name not in self.inputs:
            self.inputs[name] = (self.z3.Const(name, self.sort(value_type)), value_type)
        return self.inputs[name][0]

    def missing(self, name: str):
        """Whether an input is none: an input of its own."""
        key = f"{name} is none"
        if key not in self.inputs:
            self.inputs[key] = (self.z3.Bool(key), None)
        return self.inputs[key][0]

    def unknown(self, text: str, reason: str, value_type):
        key = f"?{text}"
        if key not in self.unknowns:
            self.unknowns[key] = (self.z3.Const(key, self.sort(value_type)), Unknown(text, reason))
        return self.unknowns[key][0]

    def type_of(self, e: s.Expr):
        return self.checked.types[id(e)]

    # ---- expressions
    def term(self, e: s.Expr, prefix: str = ""):
        """The formula of expression `e` read on a record whose inputs are named `prefix`+field."""
        method = getattr(self, "_" + type(e).__name__.lower(), None)
        if method is None:
            return self.unknown(prefix + generate(e), "not modelled", self.type_of(e))
        return method(e, prefix)

    def _literal(self, e: s.Literal, prefix: str):
        if e.kind == "none":
            return self.unknown("none", "none", self.type_of(e))
        return self.constant(e.value, self.type_of(e))

    def _name(self, e: s.Name, prefix: str):
        resolution = self.checked.resolved[id(e)]
        kind = resolution[0]
        value_type = self.type_of(e)
        if kind == "enum":
            return self.constant(resolution[2], value_type)
        if kind == "evaluation_date":
            return self.date
        if kind == "parameter":
            return self.parameter(resolution[1], None, self.date)
        if kind == "field":
            return self.input(prefix + resolution[2], value_type)
        if kind == "definition":
            _, table, name = resolution
            return self.inline((table, name), prefix if table is not None else "")
        return self.unknown(prefix + e.name, f"{kind} {e.name}", value_type)

    def inline(self, key: tuple, prefix: str):
        """A definition's formula, read on the record `prefix` names."""
        info = self.checked.definitions[key]
        return self.nested(lambda: self.term(info.decl.expr, prefix), info.type)

    def _fieldaccess(self, e: s.FieldAccess, prefix: str):
        kind, table, name = self.checked.resolved[id(e)]
        path = prefix + generate(e.target) + "."
        if kind == "field":
            return self.input(path + name, self.type_of(e))
        if kind == "definition":
            return self.inline((table, name), path)
        return self.unknown(path + name, f"the output {name} of another record", self.type_of(e))

    def _lookup(self, e: s.Lookup, prefix: str):
        keys = [(self.term(k, prefix), k) for k in e.keys]
        return self.parameter(e.target.name, keys, self.date)

    def _asof(self, e: s.AsOf, prefix: str):
        date = self.term(e.date, prefix)
        target = e.target
        if isinstance(target, s.Lookup):
            return self.parameter(target.target.name, [(self.term(k, prefix), k) for k in target.keys], date)
        return self.parameter(target.name, None, date)

    def parameter(self, name: str, keys: Optional[list], date):
        """The value in force on `date` (and, keyed, in the row the keys match) as a chain of
        `if`s over the parameter's periods and rows; where none holds, an unknown."""
        z3 = self.z3
        info = self.checked.parameters[name]
        if is_reading(info):
            return self.input(f"reading {name}", info.type)
        result = self.unknown(f"{name} where it has no value", f"no value of {name} holds", info.type)
        for value in reversed(info.values):
            in_force = []
            if value.valid_from is not None:
                in_force.append(date >= value.valid_from.toordinal())
            if value.valid_until is not None:
                in_force.append(date <= value.valid_until.toordinal())
            if keys is None:
                result = z3.If(z3.And(*in_force), self.constant(value.value, info.type), result)
                continue
            for row_keys, row_value in reversed(value.value):
                matches = list(in_force)
                for (low, high, enum_value), (key, node) in zip(row_keys, keys):
                    if enum_value is not None:
                        matches.append(key == self.constant(enum_value, self.type_of(node).required()))
                    elif low is not None:
                        matches.append(key >= low)
                        if high is not None:
                            matches.append(key <= high)
                result = z3.If(z3.And(*matches), self.constant(row_value, info.type), result)
        return result

    def _unary(self, e: s.Unary, prefix: str):
        operand = self.term(e.operand, prefix)
        return self.z3.Not(operand) if e.op == "not" else -operand

    def _binary(self, e: s.Binary, prefix: str):
        z3 = self.z3
        op = e.op
        for side, other in ((e.left, e.right), (e.right, e.left)):
            if isinstance(side, s.Literal) and side.kind == "none" and op in ("=", "!="):
                missing = self.missing_of(other, prefix)
                return missing if op == "=" else z3.Not(missing)
        left, right = self.term(e.left, prefix), self.term(e.right, prefix)
        if op == "and":
            return z3.And(left, right)
        if op == "or":
            return z3.Or(left, right)
        if op in ("=", "!="):
            # `=` compares with none too: none equals none, and a value never equals none.
            left_none, right_none = self.missing_of(e.left, prefix), self.missing_of(e.right, prefix)
            equal = z3.If(left_none, right_none, z3.And(z3.Not(right_none), left == right))
            return equal if op == "=" else z3.Not(equal)
        operations = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
                      ">=": lambda a, b: a >= b, "+": lambda a, b: a + b, "-": lambda a, b: a - b,
                      "*": lambda a, b: a * b, "/": lambda a, b: a / b}
        if op in operations:
            return operations[op](left, right)
        return self.unknown(prefix + generate(e), f"the operator {op}", self.type_of(e))

    def missing_of(self, e: s.Expr, prefix: str):
        """Whether `e` is none, as the evaluator decides it: a required value never is; an
        optional field or a history row is an input of its own; a field of a record that is
        none is none; a computed value is none where what it is computed from is."""
        z3 = self.z3
        value_type = self.checked.types.get(id(e))
        if isinstance(e, s.Literal):
            return z3.BoolVal(e.kind == "none")
        if value_type is not None and not value_type.optional and value_type.kind != "none":
            return z3.BoolVal(False)
        resolution = self.checked.resolved.get(id(e))
        if isinstance(e, s.Name) and resolution and resolution[0] == "field":
            return self.missing(prefix + resolution[2])
        if isinstance(e, s.Name) and resolution and resolution[0] == "definition":
            _, table, name = resolution
            return self.nested(lambda: self.missing_of(self.checked.definitions[(table, name)].decl.expr,
                                                       prefix if table is not None else ""))
        if isinstance(e, s.FieldAccess) and resolution and resolution[0] in ("field", "definition"):
            kind, table, name = resolution
            path = prefix + generate(e.target) + "."
            through = self.missing_of(e.target, prefix)
            if kind == "field":
                return z3.Or(through, self.missing(path + name))
            return z3.Or(through, self.nested(
                lambda: self.missing_of(self.checked.definitions[(table, name)].decl.expr, path)))
        if isinstance(e, s.HistoryLookup):  # no row in force, or no key to look up by
            return z3.Or(self.missing_of(e.key, prefix), self.missing(prefix + generate(e)))
        if isinstance(e, s.Otherwise):
            return z3.And(self.missing_of(e.operand, prefix), self.missing_of(e.fallback, prefix))
        if isinstance(e, s.If):
            return z3.If(self.term(e.condition, prefix), self.missing_of(e.then, prefix),
                         self.missing_of(e.otherwise, prefix))
        return self.unknown(f"{prefix}{generate(e)} is none", "whether a computed value is none", BOOLEAN)

    def nested(self, encode, value_type=BOOLEAN):
        """A definition's formula inlined one level deeper, or an unknown past the limit."""
        if self.depth >= MAX_INLINE_DEPTH:
            return self.unknown("a definition nested too deep", "definitions nested too deep", value_type)
        self.depth += 1
        try:
            return encode()
        finally:
            self.depth -= 1

    def _isnone(self, e: s.IsNone, prefix: str):
        missing = self.missing_of(e.operand, prefix)
        return self.z3.Not(missing) if e.negated else missing

    def _member(self, e: s.Member, prefix: str):
        operand = self.term(e.operand, prefix)
        found = self.z3.Or(*[operand == self.term(item, prefix) for item in e.items])
        return self.z3.Not(found) if e.negated else found

    def _otherwise(self, e: s.Otherwise, prefix: str):
        return self.z3.If(self.missing_of(e.operand, prefix), self.term(e.fallback, prefix),
                          self.term(e.operand, prefix))

    def _if(self, e: s.If, prefix: str):
        return self.z3.If(self.term(e.condition, prefix), self.term(e.then, prefix), self.term(e.otherwise, prefix))

    def _atleast(self, e: s.AtLeast, prefix: str):
        return self.count(e.criteria, prefix) >= e.threshold

    def _counttrue(self, e: s.CountTrue, prefix: str):
        return self.z3.ToReal(self.count(e.criteria, prefix))

    def count(self, criteria: tuple, prefix: str):
        z3 = self.z3
        return z3.Sum(*[z3.If(self.term(c, prefix), 1, 0) for c in criteria])

    def _call(self, e: s.Call, prefix: str):
        z3 = self.z3
        args = [self.term(a, prefix) for a in e.args]
        if e.function in ("min", "max") and args:
            result = args[0]
            for arg in args[1:]:
                result = z3.If(arg < result if e.function == "min" else arg > result, arg, result)
            return result
        if e.function == "floor":
            return z3.ToReal(z3.ToInt(args[0]))
        return self.unknown(prefix + generate(e), f"the function {e.function}", self.type_of(e))


def is_reading(info) -> bool:
    """A reading: a yes/no or enum parameter whose value is an interpretation. A run may set
    another alternative (`assuming`), so the proof covers every one: it is an input."""
    return (not info.key_types and info.type.kind in ("boolean", "enum")
            and any(v.decl.status == "interpretation" for v in info.values))


# ------------------------------------------------------------------------ rules and levels


def _period(info) -> tuple:
    """A rule's first and last day in force; a repeal ends it the day before the repeal."""
    until = info.decl.valid_until
    if info.repealed_by is not None:
        last = info.repealed_by.from_date - dt.timedelta(days=1)
        until = last if until is None else min(until, last)
    return info.decl.valid_from, until


def _meet(a: tuple, b: tuple) -> bool:
    return max(a[0] or dt.date.min, b[0] or dt.date.min) <= min(a[1] or dt.date.max, b[1] or dt.date.max)


class _Rules:
    """A rule's formulas: when it gives a value (its period and condition, or one of its
    exceptions), and which value (its exceptions' before its own), as the evaluator decides."""

    def __init__(self, encoding: _Encoding, checked: CheckedRulebook):
        self.encoding = encoding
        self.checked = checked
        self._applies: dict = {}
        self._value: dict = {}

    def in_force(self, label: str):
        z3, date = self.encoding.z3, self.encoding.date
        start, end = _period(self.checked.rules[label])
        parts = []
        if start is not None:
            parts.append(date >= start.toordinal())
        if end is not None:
            parts.append(date <= end.toordinal())
        return z3.And(*parts)

    def applies(self, label: str):
        if label not in self._applies:
            z3 = self.encoding.z3
            info = self.checked.rules[label]
            condition = info.decl.condition
            own = z3.BoolVal(True) if condition is None else self.encoding.term(condition)
            self._applies[label] = z3.And(self.in_force(label),
                                          z3.Or(*[self.applies(e) for e in info.exceptions], own))
        return self._applies[label]

    def value(self, label: str):
        if label not in self._value:
            z3 = self.encoding.z3
            info = self.checked.rules[label]
            value = self.encoding.term(info.decl.value)
            for exception in reversed(info.exceptions):
                value = z3.If(self.applies(exception), self.value(exception), value)
            self._value[label] = value
        return self._value[label]


def _levels(checked: CheckedRulebook, output: str) -> list:
    """The levels of an output: its rules, and the exceptions to each rule (nested too), each
    with the rules above it: an exception is considered only on a day they are all in force."""
    levels, seen = [], set()
    pending = [((), list(checked.outputs[output].roots))]
    while pending:
        above, level = pending.pop()
        if len(level) > 1:
            levels.append((above, level))
        for label in level:
            if label not in seen:
                seen.add(label)
                exceptions = checked.rules[label].exceptions
                if exceptions:
                    pending.append(((*above, label), list(exceptions)))
    return levels


# ------------------------------------------------------------------------ witnesses


def _shown(model, variable, value_type, checked: CheckedRulebook) -> Optional[str]:
    value = model.eval(variable, model_completion=True)
    if value_type is None:  # whether an input is none
        return None
    kind = value_type.kind
    try:
        if kind == "boolean":
            return "true" if str(value) == "True" else "false"
        if kind == "date":
            return dt.date.fromordinal(max(1, value.as_long())).isoformat()
        if kind == "enum":
            values = checked.enums[value_type.name].values
            index = value.as_long()
            return values[index] if 0 <= index < len(values) else None
        if kind in ("integer", "decimal", "money", "unrounded"):
            fraction = Fraction(value.numerator_as_long(), value.denominator_as_long())
            exact = Decimal(fraction.numerator) / Decimal(fraction.denominator)
            if kind == "money":
                return f"{(exact / 100).quantize(Decimal('0.01'))} kr"
            return str(fraction.numerator) if fraction.denominator == 1 else f"{exact.normalize()}"
        return '"' + value.as_string() + '"'
    except (AttributeError, ValueError):
        return str(value)


def _witness(model, encoding: _Encoding, checked: CheckedRulebook, formula) -> str:
    """The record on which both rules apply: its date and every input the formula reads, in
    name order; an input that is none is shown as none."""
    parts = [f"date = {_shown(model, encoding.date, DATE, checked)}"]
    read = {str(name) for name in _constants(encoding.z3, formula)}
    for name in sorted(encoding.inputs):
        variable, value_type = encoding.inputs[name]
        if variable is encoding.date or str(variable) not in read:
            continue
        if value_type is None:  # whether an input is none: shown with the input, or alone for a row
            base = name[:-len(" is none")]
            if base not in encoding.inputs and str(model.eval(variable, model_completion=True)) == "True":
                parts.append(f"{base} = none")
            continue
        missing = encoding.inputs.get(f"{name} is none")
        if missing is not None and str(model.eval(missing[0], model_completion=True)) == "True":
            parts.append(f"{name} = none")
            continue
        shown = _shown(model, variable, value_type, checked)
        if shown is not None:
            parts.append(f"{name} = {shown}")
    return ", ".join(parts)


def _rests_on(z3, model, encoding: _Encoding, formula) -> list:
    """The unknowns a witness rests on: none when the formula holds for the witness's inputs
    whatever values the unknowns take (then the witness is a real record), else those the
    formula reads."""
    fixed = [variable == model.eval(variable, model_completion=True) for variable, _ in encoding.inputs.values()]
    fixed.append(encoding.date == model.eval(encoding.date, model_completion=True))
    answer, _ = _solve(z3, z3.And(*fixed, z3.Not(formula)))
    if answer == z3.unsat:
        return []
    names = {str(d) for d in _constants(z3, formula)}
    return [unknown for key, (_, unknown) in sorted(encoding.unknowns.items()) if key in names] or \
        [Unknown("the solver's answer", "not decided in time")]


def _constants(z3, formula) -> set:
    found, stack, seen = set(), [formula], set()
    while stack:
        node = stack.pop()
        if node.get_id() in seen:
            continue
        seen.add(node.get_id())
        if z3.is_const(node) and node.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            found.add(node.decl().name())
        stack.extend(node.children())
    return found


# ------------------------------------------------------------------------ the proof


def prove(checked: CheckedRulebook) -> list[Diagnostic]:
    """Every conflict the solver can show (an error, with its witness), every pair it could
    not prove (a warning naming why), and every exception that can never apply (a warning),
    for the rulebook's own rules and what they meet of the rulebooks it amends."""
    import z3

    diagnostics: list[Diagnostic] = []
    for output in checked.outputs:
        table = checked.outputs[output].decl.table
        encoding = _Encoding(z3, checked, table)
        rules = _Rules(encoding, checked)
        for above, level in _levels(checked, output):
            reached = z3.And(*[rules.in_force(label) for label in above])
            for index, first in enumerate(level):
                for second in level[index + 1:]:
                    finding = _prove_pair(z3, checked, encoding, rules, output, first, second, reached)
                    if finding is not None:
                        diagnostics.append(finding)
        diagnostics.extend(_never_applies(z3, checked, encoding, rules, output))
    return diagnostics


def _solve(z3, formula):
    solver = z3.Solver()
    solver.set("timeout", SOLVER_TIMEOUT_MS)
    solver.add(formula)
    return solver.check(), solver


def _prove_pair(z3, checked, encoding, rules, output, first, second, reached) -> Optional[Diagnostic]:
    a, b = checked.rules[first], checked.rules[second]
    if not _meet(_period(a), _period(b)):
        return None
    if a.decl.value == b.decl.value and not a.exceptions and not b.exceptions:
        return None  # the same value whenever both apply
    formula = z3.And(reached, rules.applies(first), rules.applies(second), rules.value(first) != rules.value(second))
    answer, solver = _solve(z3, formula)
    if answer == z3.unsat:
        return None
    later = b if (b.decl.span.file, b.decl.span.line) >= (a.decl.span.file, a.decl.span.line) else a
    earlier = a if later is b else b
    both = (f"{earlier.decl.label} ({earlier.decl.provision.citation}, {earlier.decl.span.location}) and "
            f"{later.decl.label} ({later.decl.provision.citation}, {later.decl.span.location})")
    if answer == z3.unknown:
        return Diagnostic("warning", f"not proven: the solver found no answer in {SOLVER_TIMEOUT_MS} ms to whether "
                                     f"{both} can both apply to one {encoding.table} record with different values "
                                     f"of {output}", later.decl.span)
    model = solver.model()
    unknowns = _rests_on(z3, model, encoding, formula)
    witness = _witness(model, encoding, checked, formula)
    values = (f"{earlier.decl.label} gives {_shown(model, rules.value(earlier.decl.label), checked.outputs[output].type, checked)}, "
              f"{later.decl.label} gives {_shown(model, rules.value(later.decl.label), checked.outputs[output].type, checked)}")
    if unknowns:
        return Diagnostic(
            "warning", f"not proven: {both} may both apply to one {encoding.table} record with different values of "
                       f"{output}; the proof needs what the solver cannot see", later.decl.span,
            ("it treats as any value: " + "; ".join(f"{u.text} ({u.reason})" for u in unknowns[:6]),
             f"a record it could not rule out: {witness} ({values})",
             "make one an exception to the other, or write their conditions so they exclude each other"))
    return Diagnostic(
        "error", f"conflict: {both} both apply to one {encoding.table} record with different values of {output}",
        later.decl.span,
        (f"for example: {witness} ({values})", "make one an exception to the other, or narrow one's condition"))


def _never_applies(z3, checked, encoding, rules, output) -> list:
    """An exception that cannot give a value while any rule it overrides is in force: its
    period or its condition never meets its rule's."""
    found = []
    for label, info in checked.rules.items():
        if not info.decl.is_exception or output not in (info.outputs or (info.output,)):
            continue
        parents = [p for p in info.decl.exception_to if p in checked.rules]
        if not parents:
            continue
        if not any(_meet(_period(info), _period(checked.rules[p])) for p in parents):
            found.append(Diagnostic("warning", f"exception {label} can never apply: its period "
                                               f"{period(*_period(info))} never meets that of "
                                               + ", ".join(f"{p} ({period(*_period(checked.rules[p]))})"
                                                           for p in parents), info.decl.span))
            continue
        formula = z3.And(z3.Or(*[rules.in_force(p) for p in parents]), rules.applies(label))
        answer, _ = _solve(z3, formula)
        if answer == z3.unsat:
            found.append(Diagnostic("warning", f"exception {label} can never apply: no record meets its condition "
                                               "on a day the rule it overrides is in force", info.decl.span))
    return found
