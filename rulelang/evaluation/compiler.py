"""Compile a checked rulebook into an evaluable tree of Python closures.

Nothing a user wrote is ever passed to `eval` or `exec`: every expression becomes a
closure `run(frame, trace)` built from the typed syntax tree. `trace` is None on the
fast path; when explaining, it collects the explanation nodes of what was looked at.
Labels, citations and value formatters are all worked out here, once, not per record.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
from fractions import Fraction
from typing import Callable, Optional

import attrs

from ..language import syntax as s
from ..language.assumptions import reading_of
from ..language.checker import CheckedRulebook
from ..language.generator import Worked, generate
from ..language.provenance import quoted_document
from ..language.typesystem import Type
from ..language.values import round_amount, to_json
from .data import ID_FIELD
from .explanation import NO_USES, Explanation, merged

Run = Callable[[object, Optional["Trace"]], object]


class Trace:
    """What an explained evaluation looked at: child nodes, the value of each syntax node
    evaluated (text, or (value, Type) formatted only when shown), and the parameter values
    it rests on."""

    __slots__ = ("nodes", "values", "uses", "_seen")

    def __init__(self):
        self.nodes: list[Explanation] = []
        self.values: dict[int, object] = {}
        self.uses: dict = NO_USES
        self._seen: set = set()

    def add(self, node: Explanation, key=None) -> None:
        """Add a child once: a name used twice in one formula is explained once."""
        if key is not None:
            if key in self._seen:
                return
            self._seen.add(key)
        self.nodes.append(node)
        if node.uses:
            self.uses = merged(self.uses, node.uses)

    def absorb(self, inner: "Trace") -> None:
        """Take over what an inner trace looked at, without its nodes (they hang below a node
        of their own)."""
        self.values.update(inner.values)
        if inner.uses:
            self.uses = merged(self.uses, inner.uses)


class Reads:
    """What an evaluation read that the explanation of a sum keeps of each contributor,
    gathered without tracing it (a region's sum has thousands): the status of each parameter
    value it rests on (`uses`, as a Trace's), and, by (kind, label), the first node of each
    parameter value and each definition not of one record. An Evaluator in recording mode
    (Evaluator.recorder) fills the Reads it is given."""

    __slots__ = ("uses", "nodes")

    def __init__(self):
        self.uses: dict = NO_USES
        self.nodes: dict = {}

    def add(self, node: Explanation) -> None:
        """A parameter value read, as its node."""
        self.nodes.setdefault((node.kind, node.label), node)
        self.uses = merged(self.uses, node.uses)

    def merge(self, other: "Reads") -> None:
        if other.uses:
            self.uses = merged(self.uses, other.uses)
        for key, node in other.nodes.items():
            self.nodes.setdefault(key, node)

    def absorb(self, node: Explanation) -> None:
        """What an explained node read: its `uses`, and the parameter values and definitions
        not of one record (nor explained above it) anywhere below it."""
        self.uses = merged(self.uses, node.uses)
        for found in node.walk():
            if found.kind == "parameter" or (found.kind == "definition" and "record" not in found.facts
                                             and not found.facts.get("explained_above")):
                self.nodes.setdefault((found.kind, found.label), found)


@attrs.frozen
class Citation:
    """What an explanation says of a provision: its citation (`heading (document)`), the
    rulebook it belongs to, the document its words come from and the words quoted."""

    text: str
    rulebook: str
    document: Optional[str]
    quote: Optional[str]


class Cited:
    """What stands under a provision: its citation text and rulebook, from its `citation`."""

    __slots__ = ()

    @property
    def provision(self) -> str:
        return self.citation.text

    @property
    def rulebook(self) -> str:
        return self.citation.rulebook


@attrs.frozen
class CompiledValue(Cited):
    """A dated parameter value, ready to pick by date."""

    value: object
    valid_from: Optional[dt.date]
    valid_until: Optional[dt.date]
    status: Optional[str]
    cite: Optional[str]
    citation: Citation
    source: str


@attrs.define
class CompiledParameter:
    name: str
    type: Type
    keyed: bool
    values: list  # CompiledValue, sorted by start


@attrs.define
class CompiledDefinition(Cited):
    name: str
    table: Optional[str]
    type: Type
    run: Run
    label: str
    citation: Citation
    source: str
    syntax: s.Expr


@attrs.define
class CompiledWarning(Cited):
    """A check of the input as a whole (no record of its own), reported when it holds."""

    name: str
    run: Run
    label: str  # the condition as written
    message: str
    citation: Citation
    source: str


@attrs.define
class CompiledRule(Cited):
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
    citation: Citation
    source: str
    repealed_by: Optional[str] = None  # the repealing provision, cited from its first day
    repealed_from: Optional[dt.date] = None


@attrs.define
class CompiledOutput(Cited):
    name: str
    table: str
    type: Type
    roots: list  # labels
    default: Optional[Run]
    default_syntax: Optional[s.Expr]
    payee: Optional[Run]
    citation: Citation
    source: str


@attrs.define
class Program:
    """The evaluable form of a rulebook."""

    checked: CheckedRulebook
    parameters: dict
    definitions: dict  # (table, name) → CompiledDefinition
    outputs: dict
    rules: dict
    warnings: dict = attrs.Factory(dict)  # name → CompiledWarning
    _reads: dict = attrs.field(factory=dict, init=False, repr=False, eq=False)
    _readings: dict = attrs.field(factory=dict, init=False, repr=False, eq=False)

    @property
    def id(self) -> str:
        return self.checked.id

    def reading(self, name: str, on: dt.date):
        """The parameter as a reading on `on` (assumptions.reading_of), or None; kept, since
        every explanation asks again for each reading it read."""
        key = (name, on)
        if key not in self._readings:
            self._readings[key] = reading_of(self.checked, name, on)
        return self._readings[key]

    def reads(self, kind: str, table: Optional[str], name: str) -> frozenset:
        """The parameters a definition, output or rule (with its exceptions) may read, through
        everything it names, every branch included (CheckedRulebook.parameters_read); worked
        out at its first use."""
        key = (kind, table, name)
        found = self._reads.get(key)
        if found is None:
            checked = self.checked
            if kind == "rule":
                rule = self.rules[name]
                found = checked.parameters_read([rule.condition_syntax, rule.value_syntax]).union(
                    *(self.reads("rule", None, label) for label in rule.exceptions))
            else:
                found = checked.parameters_read([checked.definitions[(table, name)].decl.expr]
                                                if kind == "definition" else checked.output_expressions(name))
            self._reads[key] = found
        return found


class Compiler:
    def __init__(self, checked: CheckedRulebook):
        self.checked = checked
        self.sources = checked.sources
        self._lines: dict[str, list[str]] = {}
        self._documents = {layer.header.id: layer.documents for layer in checked.chain if layer.header}
        self._citations: dict = {}

    def citation(self, provision: s.Provision) -> Citation:
        """One Citation per provision: the document is the one its quotations stand in."""
        key = (provision.rulebook, provision.line)
        found = self._citations.get(key)
        if found is None:
            documents = self._documents.get(provision.rulebook, {})
            found = self._citations[key] = Citation(
                provision.citation, provision.rulebook, quoted_document(provision, documents),
                provision.quote)
        return found

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
                self.citation(decl.provision), decl.span.location, decl.expr)
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
                list(info.exceptions), self.citation(decl.provision),
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
                self.citation(decl.provision), decl.span.location)
        warnings = {
            name: CompiledWarning(name, self.expr(decl.condition), self.text_of(decl.condition.span), decl.message,
                                  self.citation(decl.provision), decl.span.location)
            for name, decl in checked.data_warnings.items()}
        return Program(checked, parameters, definitions, outputs, rules, warnings)

    def parameter(self, info) -> CompiledParameter:
        values = []
        for value in info.values:
            decl = value.decl
            constant = value.value
            values.append(CompiledValue(
                constant, value.valid_from, value.valid_until, decl.status, decl.cite,
                self.citation(decl.provision), decl.span.location))
        values.sort(key=lambda v: v.valid_from or dt.date.min)
        return CompiledParameter(info.decl.name, info.type, bool(info.key_types), values)

    # ------------------------------------------------------------------ expressions
    def expr(self, e: s.Expr) -> Run:
        return getattr(self, "_" + type(e).__name__.lower())(e)

    def shown(self, e: s.Expr, value, trace) -> None:
        """Remember a node's value, for the formula with values put in (formatted when shown)."""
        trace.values[id(e)] = (value, self.type_of(e))

    def recorded(self, e: s.Expr, run: Run) -> Run:
        """`run`, remembering its value when explaining: an operation's step in a formula."""
        value_type = self.type_of(e)
        key = id(e)

        def operation(frame, trace):
            value = run(frame, trace)
            if trace is not None:
                trace.values[key] = (value, value_type)
            return value
        return operation

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

    def _asof(self, e: s.AsOf) -> Run:
        target = e.target
        name = (target.target if isinstance(target, s.Lookup) else target).name
        keys = [self.expr(k) for k in target.keys] if isinstance(target, s.Lookup) else None
        date = self.expr(e.date)
        shown = self.shown

        def as_of(frame, trace):
            day = date(frame, trace)
            if day is None:
                raise frame.data_error(f"no date to read {name} on: the date of `as of` is none", e.date.span)
            if keys is None:
                value = frame.parameter(name, trace, e, on=day)
            else:
                value = frame.parameter(name, trace, e, tuple(key(frame, trace) for key in keys), on=day)
            if trace is not None:
                shown(e, value, trace)
            return value
        return as_of

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
        key, value_type = id(e), self.type_of(e)
        negate = e.op == "not"

        def unary(frame, trace):
            value = (not operand(frame, trace)) if negate else -operand(frame, trace)
            if trace is not None:
                trace.values[key] = (value, value_type)
            return value
        return unary

    def _binary(self, e: s.Binary) -> Run:
        left, right = self.expr(e.left), self.expr(e.right)
        op = e.op
        key, value_type = id(e), self.type_of(e)
        # Both short-circuit, explained or not: an explanation shows what was looked at.
        if op == "and":
            def both(frame, trace):
                value = left(frame, trace) and right(frame, trace)
                if trace is not None:
                    trace.values[key] = (value, value_type)
                return value
            return both
        if op == "or":
            def either(frame, trace):
                value = left(frame, trace) or right(frame, trace)
                if trace is not None:
                    trace.values[key] = (value, value_type)
                return value
            return either
        if op == "/":
            # money / money is a rate: öre cancel out. Everything else keeps its unit.
            span = e.span

            def divide(frame, trace):
                numerator, denominator = left(frame, trace), right(frame, trace)
                if denominator == 0:
                    raise frame.data_error(f"division by zero in {generate(e)}", span)
                value = Fraction(numerator) / denominator
                if trace is not None:
                    trace.values[key] = (value, value_type)
                return value
            return divide
        if op == "*" and value_type.kind in ("unrounded", "decimal"):
            def function(a, b):
                return Fraction(a) * b
        else:
            function = _OPERATORS[op]

        def binary(frame, trace):
            value = function(left(frame, trace), right(frame, trace))
            if trace is not None:
                trace.values[key] = (value, value_type)
            return value
        return binary

    def _isnone(self, e: s.IsNone) -> Run:
        operand = self.expr(e.operand)
        negated = e.negated
        return self.recorded(e, lambda frame, trace: (operand(frame, trace) is None) != negated)

    def _member(self, e: s.Member) -> Run:
        operand = self.expr(e.operand)
        items = [self.expr(i) for i in e.items]
        negated = e.negated
        constant = all(isinstance(i, (s.Literal, s.Name)) and
                       (isinstance(i, s.Literal) or self.checked.resolved[id(i)][0] == "enum") for i in e.items)
        if constant:
            fixed = frozenset(item(None, None) for item in items)
            return self.recorded(e, lambda frame, trace: (operand(frame, trace) in fixed) != negated)
        return self.recorded(
            e, lambda frame, trace: (operand(frame, trace) in {item(frame, trace) for item in items}) != negated)

    def _rounded(self, e: s.Rounded) -> Run:
        operand = self.expr(e.operand)
        mode, unit = e.mode, e.unit
        operand_type = self.type_of(e.operand)
        value_type = self.type_of(e)
        label = f"rounded {mode} to {unit}"
        source = e.span.location

        def rounded(frame, trace):
            if trace is None:
                return round_amount(operand(frame, None), mode, unit)
            inner = Trace()
            exact = operand(frame, inner)
            result = round_amount(exact, mode, unit)
            trace.absorb(inner)
            node = Explanation("rounding", label, to_json(result, value_type), None, source, inner.nodes,
                               {"before": to_json(exact, operand_type), "mode": mode, "unit": unit},
                               worked=Worked(e, inner.values), uses=inner.uses)
            inner.values[id(e)] = (result, value_type)
            trace.add(node)
            trace.values[id(e)] = (result, value_type)
            return result
        return rounded

    def _otherwise(self, e: s.Otherwise) -> Run:
        operand, fallback = self.expr(e.operand), self.expr(e.fallback)

        def otherwise(frame, trace):
            value = operand(frame, trace)
            return fallback(frame, trace) if value is None else value
        return self.recorded(e, otherwise)

    def _call(self, e: s.Call) -> Run:
        args = [self.expr(a) for a in e.args]
        function = _FUNCTIONS[e.function]
        if len(args) == 1:
            (only,) = args
            return self.recorded(e, lambda frame, trace: function(only(frame, trace)))
        if len(args) == 2:
            first, second = args
            return self.recorded(e, lambda frame, trace: function(first(frame, trace), second(frame, trace)))
        return self.recorded(e, lambda frame, trace: function(*[a(frame, trace) for a in args]))

    def _if(self, e: s.If) -> Run:
        condition, then, otherwise = self.expr(e.condition), self.expr(e.then), self.expr(e.otherwise)
        return self.recorded(
            e, lambda frame, trace: then(frame, trace) if condition(frame, trace) else otherwise(frame, trace))

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
            held, nodes, uses = _explain_criteria(frame, compiled, trace)
            result = held >= threshold
            trace.add(Explanation("criteria", label, result, None, source, nodes,
                                  {"held": held, "threshold": threshold}, uses=uses))
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
            held, nodes, uses = _explain_criteria(frame, compiled, trace)
            trace.add(Explanation("criteria", label, str(held), None, source, nodes, {"held": held}, uses=uses))
            trace.values[id(e)] = str(held)
            return held
        return count_true

    def _aggregate(self, e: s.Aggregate) -> Run:
        expr = self.expr(e.expr) if e.expr is not None else None
        where = self.expr(e.where) if e.where is not None else None
        var, table, function = e.var, e.table, e.function
        label = self.text_of(e.span)
        value_type = self.type_of(e)
        contribution_type = self.type_of(e.expr) if e.expr is not None else value_type
        references = [name for name, (field_type, _) in self.checked.tables[table].fields.items()
                      if field_type.kind == "ref"]
        source = e.span.location

        def aggregate(frame, trace):
            if trace is not None:
                return explained_aggregate(frame, trace)
            if frame.evaluator.reads is not None:  # recording a contributor of an explained sum
                count, total, _ = recorded_contributions(frame, None)
                return count if function == "count" else total
            total, count = 0, 0
            for record in frame.records(table, e):
                inner = frame.bind(var, record)
                if where is not None and not where(inner, None):
                    continue
                count += 1
                if expr is not None:
                    total += expr(inner, None)
            return count if function == "count" else total

        def recorded_contributions(frame, contributors: Optional[list]):
            """(count, total, what the contributing records read) over a frame of an Evaluator
            recording (Evaluator.recorder): a record the filter leaves out adds nothing, as an
            explanation shows only the contributors (what the filter may read on the others is
            `may_read`). Each contributor is appended to `contributors` when given."""
            evaluator = frame.evaluator
            outer, gathered = evaluator.reads, Reads()
            total, count = 0, 0
            try:
                for record in frame.records(table, e):
                    inner = frame.bind(var, record)
                    evaluator.reads = read = Reads()
                    if where is not None and not where(inner, None):
                        continue
                    value = expr(inner, None) if expr is not None else 1
                    count += 1
                    total += value
                    gathered.merge(read)
                    if contributors is not None:
                        contributor = {"table": table, "record": record[ID_FIELD],
                                       "value": to_json(value, contribution_type)}
                        for name in references:
                            contributor[name] = record.get(name)
                        contributors.append(contributor)
            finally:
                evaluator.reads = outer
            if outer is not None:
                outer.merge(gathered)
            return count, total, gathered

        # What the filter may read on the records it leaves out, which an explanation does not
        # trace (readings_tried tries it too): CheckedRulebook.parameters_read, at the first explanation.
        filter_reads: list = []

        def explained_aggregate(frame, trace):
            """The same sum or count, listing every contributing record, and the parameter
            values and common definitions the contributions and their conditions read (each
            once), with the status of every value they rest on. The contributors are evaluated
            recording what they read (recorded_contributions), not traced: only this stays in
            the tree, and a region's clinic has thousands of them."""
            contributors: list = []
            count, total, read = recorded_contributions(frame.recording(), contributors)
            result = count if function == "count" else total
            facts = {"records": count, "on": frame.date.isoformat() if frame.date else None,
                     "contributors": contributors}
            node = Explanation("aggregate", label, to_json(result, value_type), None, source,
                               [read.nodes[key] for key in sorted(read.nodes)], facts, uses=read.uses)
            if where is not None:
                if not filter_reads:
                    filter_reads.append(self.checked.parameters_read([e.where]))
                node.may_read = filter_reads[0]
            trace.add(node)
            trace.values[id(e)] = (result, value_type)
            return result
        return aggregate


_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "=": operator.eq,
              "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _explain_criteria(frame, compiled, trace):
    held, nodes, uses = 0, [], NO_USES
    for run, syntax_node, text in compiled:
        inner = Trace()
        value = run(frame, inner)
        held += bool(value)
        nodes.append(Explanation("criterion", text, bool(value), None, syntax_node.span.location, inner.nodes,
                                 worked=Worked(syntax_node, inner.values), uses=inner.uses))
        trace.absorb(inner)
        uses = merged(uses, inner.uses)
    return held, nodes, uses


def _age(birth: dt.date, on: dt.date) -> int:
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years


@functools.lru_cache(maxsize=4096)
def _last_day_of_month(d: dt.date) -> dt.date:
    """Cached: a sum over a region's records reads it once a record, for few distinct days."""
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
    "floor": math.floor,
    "lower": str.lower,
    "trim": lambda text: text.strip(" "),  # spaces only, as SQL's trim
    "min": min,
    "max": max,
}


def compile_rulebook(checked: CheckedRulebook) -> Program:
    return Compiler(checked).compile()
