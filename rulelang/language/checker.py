"""Check a rulebook before anything runs: names, types and units, dates, exceptions, cycles.

The checker merges a rulebook with the rulebooks it amends, resolves every name, gives
every expression a type, and reports each problem as a positioned diagnostic. It knows
nothing of evaluation or rendering; it hands the compiler a `CheckedRulebook`.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Iterable, Optional

import attrs

from . import provenance
from . import syntax as s
from .diagnostics import Diagnostic, RulebookError
from .diagnostics import did_you_mean as _suggest
from .typesystem import (
    BOOLEAN,
    DATE,
    DECIMAL,
    INTEGER,
    MONEY,
    NONE,
    PRIMITIVE_TYPES,
    STATUSES,
    TEXT,
    UNROUNDED,
    Type,
    UnitError,
    arithmetic,
    assignable,
    comparable,
    unify,
)

ERROR = Type("error")
EVALUATION_DATE = "evaluation_date"
MAX_EXCEPTION_DEPTH = 32

# name → (argument kinds or None for "same numeric type", result)
BUILTINS = {
    "age": ((DATE, DATE), INTEGER),
    "year": ((DATE,), INTEGER),
    "month": ((DATE,), INTEGER),
    "day": ((DATE,), INTEGER),
    "first_day_of_month": ((DATE,), DATE),
    "last_day_of_month": ((DATE,), DATE),
    "days_between": ((DATE, DATE), INTEGER),
    "add_days": ((DATE, INTEGER), DATE),
    "floor": ((DECIMAL,), INTEGER),
    "lower": ((TEXT,), TEXT),
    "trim": ((TEXT,), TEXT),
    "min": (None, None),
    "max": (None, None),
}
BUILTIN_HELP = {
    "age": "age(birth_date, on): whole years completed on a date",
    "days_between": "days_between(from, to): days from the first date to the second",
    "add_days": "add_days(date, days): the date so many days later (earlier when negative)",
    "floor": "floor(decimal): the whole number at or below it (22.5 → 22; −0.5 → −1)",
    "lower": "lower(text): the text in small letters, to compare what people write in any case",
    "trim": "trim(text): the text without spaces at either end",
}


@attrs.define
class TableInfo:
    decl: s.TableDecl
    fields: dict  # name → (Type, FieldDecl)


@attrs.frozen
class ParamValueInfo:
    """A parameter value with the period it is in force (clipped where an amendment overrides it)."""

    decl: s.ParamValue
    valid_from: Optional[dt.date]
    valid_until: Optional[dt.date]
    value: object  # a constant, or for keyed parameters a tuple of (low, high, enum, constant)


@attrs.define
class ParamInfo:
    decl: s.ParameterDecl
    type: Type
    key_types: tuple  # one Type per key; empty for a parameter with one value per period
    values: list

    @property
    def keys_shown(self) -> str:
        return ", ".join(str(t) for t in self.key_types)


@attrs.define
class DefinitionInfo:
    decl: s.DefinitionDecl
    type: Type = ERROR
    busy: bool = False  # being typed now: a use inside its own value is a cycle, reported later
    typed: bool = False


@attrs.define
class OutputInfo:
    decl: s.OutputDecl
    type: Type
    roots: list = attrs.Factory(list)  # labels of rules that are not exceptions


@attrs.define
class RuleInfo:
    decl: s.RuleDecl
    output: Optional[str]
    exceptions: list = attrs.Factory(list)  # labels of exceptions to this rule
    repealed_by: Optional[s.Repeal] = None
    outputs: tuple = ()  # every output it decides (an exception may override rules of several)


@attrs.define
class CheckedRulebook:
    """A rulebook merged with what it amends, every name resolved and every expression typed."""

    id: str
    header: s.RulebookHeader
    chain: list  # RulebookSyntax, oldest first
    enums: dict
    tables: dict
    parameters: dict
    definitions: dict  # (table or None, name) → DefinitionInfo
    outputs: dict
    rules: dict
    data: dict
    examples: list
    data_warnings: dict  # name → WarningDecl: checks of the input as a whole
    types: dict  # id(expression) → Type
    resolved: dict  # id(name or field access) → resolution tuple
    warnings: list
    sources: dict  # file → text

    @property
    def version(self) -> str:
        return self.header.version or ""


def _overlap(a_from, a_until, b_from, b_until) -> bool:
    lo = max(a_from or dt.date.min, b_from or dt.date.min)
    hi = min(a_until or dt.date.max, b_until or dt.date.max)
    return lo <= hi


def _period(valid_from, valid_until) -> str:
    start = valid_from.isoformat() if valid_from else "the beginning"
    end = valid_until.isoformat() if valid_until else "further notice"
    return f"{start} – {end}"


@attrs.define
class _Scope:
    table: Optional[str]
    vars: dict = attrs.Factory(dict)  # binder name → table

    def bind(self, var: str, table: str) -> "_Scope":
        return _Scope(self.table, {**self.vars, var: table})


# Characters that change how text is shown without being seen (bidirectional overrides and
# isolates, zero-width characters): a rulebook that holds one is warned about.
HIDDEN_CONTROLS = {
    "\u202a": "left-to-right embedding", "\u202b": "right-to-left embedding", "\u202c": "pop directional formatting",
    "\u202d": "left-to-right override", "\u202e": "right-to-left override", "\u2066": "left-to-right isolate",
    "\u2067": "right-to-left isolate", "\u2068": "first strong isolate", "\u2069": "pop directional isolate",
    "\u200b": "zero width space", "\u200c": "zero width non-joiner", "\u200d": "zero width joiner",
    "\u200e": "left-to-right mark", "\u200f": "right-to-left mark", "\u2060": "word joiner",
}


def _script(char: str) -> str:
    """The script of a letter (LATIN, CYRILLIC, GREEK, …), from its Unicode name; '' otherwise."""
    if not char.isalpha():
        return ""
    import unicodedata

    return unicodedata.name(char, "").split(" ")[0]


def _scripts(name: str) -> set:
    return {script for script in map(_script, name) if script}


# How long a chain of definitions and outputs reading one another may be: evaluation follows
# it depth first, and explanations show it whole.
MAX_DEFINITION_DEPTH = 64


class Checker:
    def __init__(self, chain: list):
        self.chain = chain
        self.rulebook = chain[-1]
        self.diagnostics: list[Diagnostic] = []
        self.enums: dict[str, s.EnumDecl] = {}
        self.enum_values: dict[str, list[str]] = {}
        self.tables: dict[str, TableInfo] = {}
        self.parameters: dict[str, ParamInfo] = {}
        self.definitions: dict[tuple, DefinitionInfo] = {}
        self.outputs: dict[str, OutputInfo] = {}
        self.rules: dict[str, RuleInfo] = {}
        self.data: dict[str, s.DataDecl] = {}
        self.examples: list[s.ExampleDecl] = []
        self.data_warnings: dict[str, s.WarningDecl] = {}
        self.types: dict[int, Type] = {}
        self.resolved: dict[int, tuple] = {}
        self.used_parameters: set[str] = set()
        self.dependencies: dict[tuple, set] = {}
        self._current: Optional[tuple] = None

    # ------------------------------------------------------------------ reporting
    def error(self, message: str, span: Optional[s.Span], *notes: str) -> None:
        self.diagnostics.append(Diagnostic("error", message, span, tuple(notes)))

    def warn(self, message: str, span: Optional[s.Span], *notes: str) -> None:
        self.diagnostics.append(Diagnostic("warning", message, span, tuple(notes)))

    # ------------------------------------------------------------------ entry
    def check(self) -> CheckedRulebook:
        for layer_index, layer in enumerate(self.chain):
            own = layer_index == len(self.chain) - 1
            self.collect(layer, own)
            provenance.check_layer(layer, self.error, self.warn)
            if own:
                self.diagnostics.extend(layer.warnings)
        self.check_declarations()
        self.check_rules()
        self.check_cycles()
        self.check_examples()
        for name, info in self.parameters.items():
            if name not in self.used_parameters:
                self.warn(f"parameter {name} is never used", info.decl.span)
        sources = {layer.path: layer.text for layer in self.chain}
        errors = [d for d in self.diagnostics if d.severity == "error"]
        if errors:
            raise RulebookError(sorted(self.diagnostics, key=_diagnostic_order), sources)
        header = self.rulebook.header
        return CheckedRulebook(
            id=header.id, header=header, chain=self.chain, enums=self.enums, tables=self.tables,
            parameters=self.parameters, definitions=self.definitions, outputs=self.outputs,
            rules=self.rules, data=self.data, examples=self.examples, data_warnings=self.data_warnings,
            types=self.types,
            resolved=self.resolved,
            warnings=[d for d in self.diagnostics if d.severity == "warning"], sources=sources)

    # ------------------------------------------------------------------ collecting declarations
    def declare(self, name: str, span: s.Span, what: str, table: Optional[str] = None) -> bool:
        """Register a name once: names are unique, but per-table definitions only per table."""
        if name in PRIMITIVE_TYPES or name in BUILTINS or name == EVALUATION_DATE:
            self.error(f"{name} is a built-in name and cannot be declared", span)
            return False
        scripts = _scripts(name)
        if len(scripts) > 1:
            # `belopp` with a Cyrillic о is another name that looks the same (a homoglyph).
            letters = ", ".join(f"{c} U+{ord(c):04X} ({_script(c).title()})" for c in dict.fromkeys(name)
                                if _script(c) and _script(c) != "LATIN")
            self.warn(f"{what} {name} mixes letters of {' and '.join(sorted(s.title() for s in scripts))}: "
                      f"{letters}; it only looks like a name written in one script", span)
        earlier = None
        for registry in (self.enums, self.tables, self.parameters, self.outputs, self.data_warnings):
            if name in registry:
                item = registry[name]
                earlier = getattr(item, "decl", item).span
        for (def_table, def_name), info in self.definitions.items():
            if def_name == name and (table is None or def_table is None or def_table == table):
                earlier = info.decl.span
        if earlier is not None:
            self.error(f"{what} {name} is already declared at {earlier}", span)
            return False
        return True

    def collect(self, layer: s.RulebookSyntax, own: bool) -> None:
        for line_number, line in enumerate(layer.text.splitlines(), start=1):
            for column, char in enumerate(line, start=1):
                if char in HIDDEN_CONTROLS:
                    self.warn(f"an invisible control character U+{ord(char):04X} ({HIDDEN_CONTROLS[char]}) "
                              "stands here; it can make the text read otherwise than it runs",
                              s.Span(layer.path, line_number, column, line_number, column + 1))
        repeals = []
        start = layer.header.in_force_from if layer.header is not None else None
        for statement in layer.statements:
            statement = _from_rulebook_start(statement, start)
            if isinstance(statement, s.EnumDecl):
                if self.declare(statement.name, statement.span, "enum"):
                    self.enums[statement.name] = statement
                    seen = set()
                    for value in statement.values:
                        if value in seen:
                            self.error(f"enum {statement.name} lists {value} twice", statement.span)
                        seen.add(value)
                        self.enum_values.setdefault(value, []).append(statement.name)
            elif isinstance(statement, s.TableDecl):
                if self.declare(statement.name, statement.span, "table"):
                    self.tables[statement.name] = TableInfo(statement, {})
            elif isinstance(statement, s.ParameterDecl):
                self.collect_parameter(statement)
            elif isinstance(statement, s.DefinitionDecl):
                if self.declare(statement.name, statement.span, "definition", statement.table or None):
                    self.definitions[(statement.table, statement.name)] = DefinitionInfo(statement)
            elif isinstance(statement, s.OutputDecl):
                if self.declare(statement.name, statement.span, "output"):
                    self.outputs[statement.name] = OutputInfo(statement, ERROR)
            elif isinstance(statement, s.RuleDecl):
                self.collect_rule(statement)
            elif isinstance(statement, s.WarningDecl):
                if self.declare(statement.name, statement.span, "warning"):
                    self.data_warnings[statement.name] = statement
            elif isinstance(statement, s.Repeal):
                repeals.append(statement)  # after the layer's own rules, so order does not matter
            elif isinstance(statement, s.DataDecl):
                if statement.name in self.data:
                    self.error(f"data {statement.name} is already declared at {self.data[statement.name].span}",
                               statement.span)
                self.data[statement.name] = statement
            elif isinstance(statement, s.ExampleDecl):
                if own:
                    self.examples.append(statement)
        for repeal in repeals:
            self.collect_repeal(repeal)

    def collect_parameter(self, decl: s.ParameterDecl) -> None:
        existing = self.parameters.get(decl.name)
        if decl.amend:
            if existing is None:
                self.error(f"amend parameter {decl.name}: there is no such parameter to amend"
                           + _suggest(decl.name, self.parameters), decl.span)
                return
            # The amendment's values win on the dates they cover; the older values keep the rest.
            kept = []
            for old in existing.values:
                pieces = [(old.valid_from, old.valid_until)]
                for new in decl.values:
                    pieces = [p for piece in pieces for p in _subtract(piece, new.valid_from, new.valid_until)]
                kept.extend(attrs.evolve(old, valid_from=f, valid_until=u) for f, u in pieces)
            new_values = [ParamValueInfo(v, v.valid_from, v.valid_until, None) for v in decl.values]
            existing.values = sorted(kept + new_values, key=lambda v: v.valid_from or dt.date.min)
            existing.decl = attrs.evolve(existing.decl, values=tuple(v.decl for v in existing.values))
            return
        if existing is not None and existing.decl.provision.rulebook != decl.provision.rulebook:
            self.error(f"parameter {decl.name} is already declared at {existing.decl.span}", decl.span,
                       "write `amend parameter` to change a parameter of an amended rulebook")
            return
        if not self.declare(decl.name, decl.span, "parameter"):
            return
        param_type = self.type_named(decl.type_name, decl.span)
        key_types = tuple(self.type_named(name, decl.span) for name in decl.key_types)
        for key_type in key_types:
            if key_type.kind not in ("integer", "enum", "error"):
                self.error(f"a parameter can be keyed by integer ranges or enums, not by {key_type}", decl.span)
        values = [ParamValueInfo(v, v.valid_from, v.valid_until, None) for v in decl.values]
        self.parameters[decl.name] = ParamInfo(decl, param_type, key_types, values)

    def collect_rule(self, decl: s.RuleDecl) -> None:
        existing = self.rules.get(decl.label)
        if decl.amend:
            what = "exception" if decl.is_exception else "rule"
            if existing is None:
                self.error(f"amend {what} {decl.label}: there is no such {what} to amend"
                           + _suggest(decl.label, self.rules), decl.span)
                return
            if existing.decl.is_exception != decl.is_exception:
                self.error(f"{decl.label} is {'an exception' if existing.decl.is_exception else 'a rule'}; "
                           f"write `amend {'exception' if existing.decl.is_exception else 'rule'}`", decl.span)
                return
            if not decl.is_exception and existing.decl.output != decl.output:
                self.error(f"amend rule {decl.label} defines {decl.output}, but the rule it amends "
                           f"defines {existing.decl.output}", decl.span)
                return
            existing.decl = decl
            return
        if existing is not None:
            kind = "exception" if existing.decl.is_exception else "rule"
            note = (f"write `amend {kind}` to change a{'n' if kind == 'exception' else ''} {kind} "
                    "of an amended rulebook"
                    if existing.decl.provision.rulebook != decl.provision.rulebook else "")
            self.error(f"rule {decl.label} is already declared at {existing.decl.span}", decl.span,
                       *([note] if note else []))
            return
        self.rules[decl.label] = RuleInfo(decl, decl.output)

    def collect_repeal(self, repeal: s.Repeal) -> None:
        existing = self.rules.get(repeal.label)
        if existing is None:
            self.error(f"repeal {repeal.kind} {repeal.label}: there is no such {repeal.kind}"
                       + _suggest(repeal.label, self.rules), repeal.span)
            return
        if existing.decl.is_exception != (repeal.kind == "exception"):
            right = "exception" if existing.decl.is_exception else "rule"
            self.error(f"{repeal.label} is {'an' if right == 'exception' else 'a'} {right}; "
                       f"write `repeal {right}`", repeal.span)
            return
        if existing.decl.provision.rulebook == repeal.provision.rulebook:
            self.error(f"{repeal.kind} {repeal.label} is this rulebook's own; give it an `until` instead",
                       repeal.span)
            return
        if existing.repealed_by is not None:
            self.error(f"{repeal.kind} {repeal.label} is already repealed at {existing.repealed_by.span}",
                       repeal.span)
            return
        last_day = repeal.from_date - dt.timedelta(days=1)
        until = existing.decl.valid_until
        if until is not None and until <= last_day:
            self.warn(f"{repeal.kind} {repeal.label} already ends on {until}; repealing it from "
                      f"{repeal.from_date} changes nothing", repeal.span)
            return
        existing.decl = attrs.evolve(existing.decl, valid_until=min(until, last_day) if until else last_day)
        existing.repealed_by = repeal

    # ------------------------------------------------------------------ declarations
    def type_named(self, name: Optional[str], span: s.Span) -> Type:
        if name is None:
            return ERROR
        if name in PRIMITIVE_TYPES:
            return PRIMITIVE_TYPES[name]
        if name in self.enums:
            return Type("enum", name)
        if name in self.tables:
            return Type("ref", name)
        self.error(f"unknown type {name}" + _suggest(name, [*PRIMITIVE_TYPES, *self.enums, *self.tables]), span)
        return ERROR

    def check_declarations(self) -> None:
        for table in self.tables.values():
            self.check_table(table)
        for param in self.parameters.values():
            self.check_parameter(param)
        for (table, name), info in self.definitions.items():
            if table is not None and table not in self.tables:
                self.error(f"unknown table {table}" + _suggest(table, self.tables), info.decl.span)
        for output in self.outputs.values():
            decl = output.decl
            output.type = self.type_named(decl.type_name, decl.span)
            if decl.table not in self.tables:
                self.error(f"unknown table {decl.table}" + _suggest(decl.table, self.tables), decl.span)
        # Definitions are typed on first use so that definitions may use each other in any order.
        for key, info in self.definitions.items():
            self.definition_type(key)
        for output in self.outputs.values():
            decl = output.decl
            if decl.table not in self.tables:
                continue
            scope = _Scope(decl.table)
            self._current = ("output", decl.table, decl.name)
            if decl.default is not None:
                self.expect_value(decl.default, scope, output.type, f"the default of {decl.name}")
            if decl.payee is not None:
                payee = self.expr(decl.payee, scope)
                if payee.kind not in ("ref", "text", "error"):
                    self.error(f"`paid to` names the record that receives the amount (an id); this is {payee}",
                               decl.payee.span)
            self._current = None
        # A warning is about the input as a whole: no record of its own, like a definition of no table.
        for warning in self.data_warnings.values():
            self.expect_condition(warning.condition, _Scope(None), f"the condition of warning {warning.name}")

    def check_table(self, info: TableInfo) -> None:
        decl = info.decl
        for field in decl.fields:
            if field.name in info.fields:
                self.error(f"table {decl.name} declares field {field.name} twice", field.span)
                continue
            field_type = self.type_named(field.type_name, field.span)
            if field.optional and field.default is None:
                field_type = field_type.maybe()
            info.fields[field.name] = (field_type, field)
            if field.default is not None:
                if not isinstance(field.default, s.Literal):
                    self.error("a field's default is a constant", field.default.span)
                else:
                    self.expect_value(field.default, _Scope(None), field_type.required(),
                                      f"the default of {decl.name}.{field.name}")
        def need(field_name: Optional[str], kind: Optional[str], role: str, span: s.Span, table=None):
            if field_name is None:
                return
            if field_name not in info.fields:
                self.error(f"{role} {field_name} is not a field of {decl.name}"
                           + _suggest(field_name, info.fields), span)
                return
            field_type = info.fields[field_name][0]
            if kind and field_type.kind not in (kind, "error"):
                self.error(f"{role} {field_name} must be a {kind} field; it is {field_type}", span)
            if table and field_type.kind == "ref" and field_type.name != table:
                self.error(f"{role} {field_name} must be a {table} id; it is {field_type}", span)
        need(decl.key, None, "key", decl.span)
        if decl.key and decl.key in info.fields and info.fields[decl.key][0].optional:
            self.error(f"key {decl.key} cannot be optional", decl.span)
        elif decl.key and decl.key in info.fields and info.fields[decl.key][0].kind not in ("text", "integer", "error"):
            self.error(f"key {decl.key} must be a text or integer field (an id); it is {info.fields[decl.key][0]}",
                       decl.span)
        need(decl.dated_by, "date", "`dated by`", decl.span)
        history = decl.history
        if history is not None:
            if history.of_table not in self.tables:
                self.error(f"unknown table {history.of_table}" + _suggest(history.of_table, self.tables),
                           history.span)
            need(history.by_field, "ref", "history key", history.span, history.of_table)
            need(history.from_field, "date", "history start", history.span)
            need(history.until_field, "date", "history end", history.span)

    def constant(self, expr: s.Expr, expected: Type, what: str):
        if isinstance(expr, s.Name) and expected.kind == "enum":
            self.expect_value(expr, _Scope(None), expected, what)
            return expr.name
        if not isinstance(expr, s.Literal):
            self.error(f"{what} must be a constant (a literal such as 300 kr or 2021-02-01)", expr.span)
            return None
        self.expect_value(expr, _Scope(None), expected, what)
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
            if decl.cite is None:
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
        for i, a in enumerate(info.values):
            for b in info.values[i + 1:]:
                if _overlap(a.valid_from, a.valid_until, b.valid_from, b.valid_until):
                    self.error(
                        f"values of parameter {name} overlap: {_period(a.valid_from, a.valid_until)} "
                        f"and {_period(b.valid_from, b.valid_until)}", b.decl.span,
                        f"the other value is at {a.decl.span}")

    def check_row(self, name: str, info: ParamInfo, row: s.ParamRow):
        """A row as (keys, constant); each key checked against its dimension's type."""
        if len(row.keys) != len(info.key_types):
            self.error(f"parameter {name} is keyed by {info.keys_shown}; this row gives "
                       f"{len(row.keys)} key(s)", row.span)
        for key, key_type in zip(row.keys, info.key_types):
            if key_type.kind == "error":
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
            if a.enum_value is not None or b.enum_value is not None:
                return a.enum_value == b.enum_value
            a_high = a.high if a.high is not None else sys.maxsize  # "and over"
            b_high = b.high if b.high is not None else sys.maxsize
            return a.low <= b_high and b.low <= a_high

        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if len(a.keys) == len(b.keys) and all(overlaps(x, y) for x, y in zip(a.keys, b.keys)):
                    self.error(f"rows of parameter {name} overlap", b.span, f"the other row is at {a.span}")

    def definition_type(self, key: tuple) -> Type:
        info = self.definitions[key]
        if info.typed or info.busy:
            return info.type
        decl = info.decl
        if decl.table is not None and decl.table not in self.tables:
            return ERROR
        info.busy = True
        previous = self._current
        self._current = ("definition", decl.table, decl.name)
        value_type = self.expr(decl.expr, _Scope(decl.table))
        self._current = previous
        info.busy = False
        if decl.type_name is not None:
            declared = self.type_named(decl.type_name, decl.span)
            if value_type.kind != "error" and not assignable(value_type, declared):
                self.error(f"definition {decl.name} is declared {declared} but its value is {value_type}",
                           decl.expr.span)
            value_type = declared if declared.kind != "error" else value_type
        self.refuse_unrounded(decl.expr, value_type, f"definition {decl.name}")
        info.type = value_type
        info.typed = True
        return value_type

    def refuse_unrounded(self, expr: s.Expr, value_type: Type, what: str) -> None:
        if value_type.kind == "unrounded":
            self.error(f"{what} is money times a rate and must say how it rounds: "
                       f"add `rounded half up to öre` (or another named mode)", expr.span)

    def expect_value(self, expr: s.Expr, scope: _Scope, expected: Type, what: str) -> None:
        actual = self.expr(expr, scope, expected)
        if ERROR in (actual, expected):
            return
        self.refuse_unrounded(expr, actual, what)
        if actual.kind != "unrounded" and not assignable(actual, expected):
            self.error(f"{what} must be {expected}; this is {actual}", expr.span)

    # ------------------------------------------------------------------ rules and exceptions
    def check_rules(self) -> None:
        for label, info in self.rules.items():
            decl = info.decl
            if not decl.is_exception:
                if decl.output not in self.outputs:
                    self.error(f"rule {label} defines unknown output {decl.output}"
                               + _suggest(decl.output, self.outputs), decl.span)
                    continue
                self.outputs[decl.output].roots.append(label)
                info.outputs = (decl.output,)
        for label, info in self.rules.items():
            decl = info.decl
            if decl.is_exception:
                outputs = set()
                for parent in decl.exception_to:
                    if parent not in self.rules:
                        self.error(f"exception {label} is an exception to unknown rule {parent}"
                                   + _suggest(parent, self.rules), decl.span)
                        continue
                    self.rules[parent].exceptions.append(label)
                    outputs.add(self.output_of(parent))
                outputs.discard(None)
                known = sorted(o for o in outputs if o in self.outputs)
                shapes = {(self.outputs[o].decl.table, self.outputs[o].type) for o in known}
                if len(shapes) > 1:
                    self.error(f"exception {label} overrides rules of outputs of different tables or types: "
                               + ", ".join(known), decl.span)
                info.output = known[0] if known and len(shapes) == 1 else None
                info.outputs = tuple(known) if len(shapes) == 1 else ()
        for label, info in self.rules.items():
            if info.output is None or info.output not in self.outputs:
                continue
            output = self.outputs[info.output]
            decl = info.decl
            scope = _Scope(output.decl.table)
            self._current = ("output", output.decl.table, output.decl.name)
            if decl.valid_from and decl.valid_until and decl.valid_from > decl.valid_until \
                    and info.repealed_by is None:
                self.error(f"rule {label} ends ({decl.valid_until}) before it starts ({decl.valid_from})", decl.span)
            if decl.condition is not None:
                self.expect_condition(decl.condition, scope, f"the condition of {label}")
            self.expect_value(decl.value, scope, output.type, f"the value of {label}")
            self._current = None
        for output in self.outputs.values():
            self.check_siblings([self.rules[label].decl for label in output.roots])
        for info in self.rules.values():
            self.check_siblings([self.rules[label].decl for label in info.exceptions])

    def output_of(self, label: str) -> Optional[str]:
        """The output a rule defines, following an exception's parents up to a rule."""
        seen, queue = set(), [label]
        while queue:
            current = queue.pop(0)
            if current in seen or current not in self.rules:
                continue
            seen.add(current)
            decl = self.rules[current].decl
            if not decl.is_exception:
                return decl.output
            queue.extend(decl.exception_to)
        return None

    def check_siblings(self, decls: list) -> None:
        """Two rules at one level with the same condition in overlapping periods can never be told apart."""
        for i, a in enumerate(decls):
            for b in decls[i + 1:]:
                if a.condition == b.condition and _overlap(a.valid_from, a.valid_until, b.valid_from, b.valid_until):
                    what = "exceptions" if a.is_exception else "rules"
                    self.error(f"{what} {a.label} and {b.label} have identical conditions; "
                               "one of them can never decide alone", b.span,
                               f"{a.label} is at {a.span} ({a.provision.citation})")

    def expect_condition(self, expr: s.Expr, scope: _Scope, what: str) -> None:
        actual = self.expr(expr, scope)
        if actual.kind == "error":
            return
        if actual != BOOLEAN:
            self.error(f"{what} must be a boolean; this is {actual}", expr.span)

    # ------------------------------------------------------------------ cycles
    def depend(self, target: tuple) -> None:
        if self._current is not None:
            self.dependencies.setdefault(self._current, set()).add(target)

    def check_cycles(self) -> None:
        """Definitions and outputs that read each other in a circle, and chains of them longer
        than evaluation follows: walked without recursion, so any rulebook can be checked."""
        graph = {node: sorted(targets, key=str) for node, targets in self.dependencies.items()}
        state: dict[tuple, int] = {}
        depth: dict[tuple, int] = {}
        reported = set()
        for root in sorted(graph, key=str):
            if root in state:
                continue
            state[root], path, stack = 1, [root], [(root, iter(graph.get(root, ())))]
            while stack:
                node, children = stack[-1]
                nxt = next(children, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                    depth[node] = 1 + max((depth.get(c, 0) for c in graph.get(node, ())), default=0)
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.error("definitions depend on each other in a cycle: "
                                   + " → ".join(n[2] for n in cycle), self.span_of(nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(graph.get(nxt, ()))))
        if not reported and depth and max(depth.values()) > MAX_DEFINITION_DEPTH:
            deepest = max(sorted(depth, key=str), key=lambda n: depth[n])
            chain, node = [deepest], deepest
            while graph.get(node):
                node = max(graph[node], key=lambda n: depth.get(n, 0))
                chain.append(node)
            shown = " → ".join(n[2] for n in chain[:3]) + " → … → " + chain[-1][2]
            self.error(f"{deepest[2]} reads a chain of {depth[deepest]} definitions and outputs ({shown}); "
                       f"a chain may be at most {MAX_DEFINITION_DEPTH} long: combine steps", self.span_of(deepest))
        # Exceptions that override one another in a circle never finish. An exception may
        # override several rules, so every parent is followed, not only the first.
        reported = set()
        for label in self.rules:
            cycle = self.exception_cycle(label)
            if cycle is not None and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                self.error("exceptions override each other in a cycle: " + " → ".join(cycle),
                           self.rules[label].decl.span)
        if not reported:
            self.check_exception_depth()

    def check_exception_depth(self) -> None:
        """Evaluation descends one level per exception; bound how deep exceptions may nest."""
        level: dict[str, int] = {}
        for start in self.rules:
            stack = [start]
            while stack:
                label = stack[-1]
                if label in level:
                    stack.pop()
                    continue
                parents = [p for p in self.rules[label].decl.exception_to if p in self.rules]
                pending = [p for p in parents if p not in level]
                if pending:
                    stack.extend(pending)
                    continue
                stack.pop()
                level[label] = 1 + max((level[p] for p in parents), default=-1)
                if level[label] == MAX_EXCEPTION_DEPTH + 1:
                    self.error(f"exceptions nest deeper than {MAX_EXCEPTION_DEPTH} levels; "
                               "restructure them as separate rules", self.rules[label].decl.span)

    def exception_cycle(self, label: str) -> Optional[list]:
        """A path of `exception … to` links from `label` back to itself, if there is one."""
        came_from = {label: None}
        stack = [label]
        while stack:
            current = stack.pop()
            parents = self.rules[current].decl.exception_to
            if label in parents:
                path = [current]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return path[::-1] + [label]
            for parent in reversed(parents):  # depth first, in the order the parents are named
                if parent in self.rules and parent not in came_from:
                    came_from[parent] = current
                    stack.append(parent)
        return None

    def span_of(self, node: tuple) -> Optional[s.Span]:
        kind, table, name = node
        if kind == "definition":
            return self.definitions[(table, name)].decl.span
        return self.outputs[name].decl.span

    # ------------------------------------------------------------------ examples
    def check_examples(self) -> None:
        for data in self.data.values():
            for given in data.givens:
                self.check_given(given)
        for example in self.examples:
            if example.using and example.using not in self.data:
                self.error(f"unknown data {example.using}" + _suggest(example.using, self.data), example.span)
            for given in example.givens:
                self.check_given(given)
            assumed = set()
            for assumption in example.assumptions:
                param = self.parameters.get(assumption.parameter)
                if param is None:
                    self.error(f"unknown parameter {assumption.parameter}"
                               + _suggest(assumption.parameter, self.parameters), assumption.span)
                    continue
                if param.key_types:
                    self.error(f"parameter {assumption.parameter} is keyed; an example can assume only "
                               "a parameter with one value", assumption.span)
                    continue
                if assumption.parameter in assumed:
                    self.error(f"the example assumes {assumption.parameter} twice", assumption.span)
                assumed.add(assumption.parameter)
                self.constant(assumption.value, param.type, f"the assumed {assumption.parameter}")
            for expectation in example.expectations:
                output = self.outputs.get(expectation.output)
                if output is None:
                    self.error(f"unknown output {expectation.output}" + _suggest(expectation.output, self.outputs),
                               expectation.span)
                    continue
                if not isinstance(expectation.value, (s.Literal, s.Name)):
                    self.error("an expected value is a constant, not an expression", expectation.value.span)
                    continue
                self.expect_value(expectation.value, _Scope(None), output.type,
                                  f"the expected {expectation.output}")

    def check_given(self, given: s.Given) -> None:
        table = self.tables.get(given.table)
        if table is None:
            self.error(f"unknown table {given.table}" + _suggest(given.table, self.tables), given.span)
            return
        for record in given.records:
            for name, value, span in record.fields:
                if name not in table.fields:
                    self.error(f"{given.table} has no field {name}" + _suggest(name, table.fields), span)
                    continue
                field_type = table.fields[name][0]
                if not isinstance(value, (s.Literal, s.Name)):
                    self.error("an example gives constants, not expressions", value.span)
                    continue
                self.expect_value(value, _Scope(None), field_type, f"{given.table}.{name}")

    # ------------------------------------------------------------------ expressions
    def expr(self, e: s.Expr, scope: _Scope, expected: Optional[Type] = None) -> Type:
        """The type of `e`; `expected` lets a bare enum value be read as a value of that enum."""
        if expected is not None and expected.kind == "enum" and isinstance(e, s.Name):
            result = self._enum_in_context(e, scope, expected)
        else:
            result = getattr(self, "_" + type(e).__name__.lower())(e, scope)
        self.types[id(e)] = result
        return result

    def _enum_in_context(self, e: s.Name, scope: _Scope, expected: Type) -> Type:
        shadowed = e.name in scope.vars or (
            scope.table in self.tables and (e.name in self.tables[scope.table].fields
                                            or (scope.table, e.name) in self.definitions))
        if not shadowed and e.name in self.enums[expected.name].values:
            self.resolved[id(e)] = ("enum", expected.name, e.name)
            return Type("enum", expected.name)
        return self._name(e, scope)

    def pair(self, left: s.Expr, right: s.Expr, scope: _Scope) -> tuple:
        """Type two compared operands, letting an enum on one side decide a bare value on the other."""
        if isinstance(left, s.Name) and left.name in self.enum_values and not isinstance(right, s.Name):
            right_type = self.expr(right, scope)
            return self.expr(left, scope, right_type), right_type
        left_type = self.expr(left, scope)
        return left_type, self.expr(right, scope, left_type)

    def _literal(self, e: s.Literal, scope) -> Type:
        return NONE if e.kind == "none" else PRIMITIVE_TYPES[e.kind]

    def _name(self, e: s.Name, scope: _Scope) -> Type:
        name = e.name
        if name in scope.vars:
            self.resolved[id(e)] = ("var", name)
            return Type("row", scope.vars[name])
        table = scope.table
        if table is not None:
            found = self.member_of(table, name, e)
            if found is not None:
                return found
        if (None, name) in self.definitions:
            self.resolved[id(e)] = ("definition", None, name)
            self.depend(("definition", None, name))
            return self.definition_type((None, name))
        if name in self.parameters:
            param = self.parameters[name]
            if param.key_types:
                self.error(f"parameter {name} is keyed by {param.keys_shown}: write {name}[…]", e.span)
                return ERROR
            self.used_parameters.add(name)
            self.resolved[id(e)] = ("parameter", name)
            return param.type
        if name == EVALUATION_DATE:
            self.resolved[id(e)] = ("evaluation_date",)
            return DATE
        if name in self.enum_values:
            owners = self.enum_values[name]
            if len(owners) > 1:
                self.error(f"{name} is a value of several enums ({', '.join(owners)})", e.span)
                return ERROR
            self.resolved[id(e)] = ("enum", owners[0], name)
            return Type("enum", owners[0])
        candidates = [*self.parameters, *self.enum_values, *scope.vars, EVALUATION_DATE]
        candidates += [n for (t, n) in self.definitions if t in (None, table)]
        if table is not None and table in self.tables:
            candidates += [*self.tables[table].fields, *(o for o, i in self.outputs.items() if i.decl.table == table)]
        where = f" in {table}" if table else ""
        self.error(f"unknown name {name}{where}" + _suggest(name, candidates), e.span)
        return ERROR

    def member_of(self, table: str, name: str, node) -> Optional[Type]:
        """A field, definition or output of a table's record, resolved for `node`."""
        info = self.tables.get(table)
        if info is None:
            return ERROR
        if name in info.fields:
            self.resolved[id(node)] = ("field", table, name)
            return info.fields[name][0]
        if (table, name) in self.definitions:
            self.resolved[id(node)] = ("definition", table, name)
            self.depend(("definition", table, name))
            return self.definition_type((table, name))
        output = self.outputs.get(name)
        if output is not None and output.decl.table == table:
            self.resolved[id(node)] = ("output", table, name)
            self.depend(("output", table, name))
            return output.type
        return None

    def _fieldaccess(self, e: s.FieldAccess, scope: _Scope) -> Type:
        target = self.expr(e.target, scope)
        if target.kind == "error":
            return ERROR
        if not target.is_record:
            self.error(f"{target} has no fields; .{e.field} needs a record or an id", e.span)
            return ERROR
        found = self.member_of(target.name, e.field, e)
        if found is None:
            info = self.tables[target.name]
            candidates = [*info.fields, *(n for (t, n) in self.definitions if t == target.name),
                          *(o for o, i in self.outputs.items() if i.decl.table == target.name)]
            self.error(f"{target.name} has no field {e.field}" + _suggest(e.field, candidates), e.span)
            return ERROR
        if found.kind == "error":
            return ERROR
        return found.maybe() if target.optional else found

    def _lookup(self, e: s.Lookup, scope: _Scope) -> Type:
        if not isinstance(e.target, s.Name) or e.target.name not in self.parameters:
            self.error("[…] looks up a row of a parameter declared `by` a key", e.span)
            return ERROR
        param = self.parameters[e.target.name]
        self.used_parameters.add(param.decl.name)
        self.resolved[id(e.target)] = ("parameter", param.decl.name)
        if not param.key_types:
            self.error(f"parameter {param.decl.name} has no key; use it without […]", e.span)
            return ERROR
        if len(e.keys) != len(param.key_types):
            self.error(f"parameter {param.decl.name} is keyed by {param.keys_shown}; "
                       f"give {len(param.key_types)} key(s)", e.span)
            return ERROR
        for key_node, key_type in zip(e.keys, param.key_types):
            key = self.expr(key_node, scope, key_type)
            if key.kind != "error" and key_type.kind != "error" and (key.optional or key.required() != key_type):
                self.error(f"parameter {param.decl.name} is keyed by {param.keys_shown}; this key is {key}",
                           key_node.span)
        return param.type

    def _historylookup(self, e: s.HistoryLookup, scope: _Scope) -> Type:
        target = e.target
        table = self.tables.get(target.name) if isinstance(target, s.Name) else None
        if table is None or table.decl.history is None:
            self.error("[… on …] looks up a history table (one declared `history of`)", e.span)
            return ERROR
        self.resolved[id(target)] = ("table", target.name)
        history = table.decl.history
        key = self.expr(e.key, scope)
        # An optional key (a listing clinic that may be none) finds no row when it is none.
        if key.kind != "error" and (key.kind not in ("ref", "text")
                                    or key.kind == "ref" and key.name != history.of_table):
            self.error(f"{target.name} is a history of {history.of_table}; the key must be a "
                       f"{history.of_table} id, not {key}", e.key.span)
        on = self.expr(e.on, scope)
        if on.kind != "error" and on != DATE:
            self.error(f"the date of a history lookup must be a date; this is {on}", e.on.span)
        return Type("record", target.name, optional=True)

    def _unary(self, e: s.Unary, scope: _Scope) -> Type:
        operand = self.expr(e.operand, scope)
        if operand.kind == "error":
            return ERROR
        if e.op == "not":
            if operand != BOOLEAN:
                self.error(f"`not` needs a boolean; this is {operand}", e.operand.span)
                return ERROR
            return BOOLEAN
        if not operand.is_numeric or operand.optional:
            self.error(f"cannot negate {operand}", e.operand.span)
            return ERROR
        return operand

    def _binary(self, e: s.Binary, scope: _Scope) -> Type:
        if e.op in ("=", "!="):
            left, right = self.pair(e.left, e.right, scope)
        else:
            left = self.expr(e.left, scope)
            right = self.expr(e.right, scope)
        if ERROR in (left, right):
            return ERROR
        if e.op in ("and", "or"):
            for side, t in ((e.left, left), (e.right, right)):
                if t != BOOLEAN:
                    self.error(f"`{e.op}` needs booleans; this is {t}", side.span)
            return BOOLEAN
        if e.op in ("=", "!=", "<", "<=", ">", ">="):
            ordered = e.op not in ("=", "!=")
            if not comparable(left, right, ordered):
                self.error(f"cannot compare {left} with {right}" +
                           (" (an optional value can only be compared with =, or given a fallback with `otherwise`)"
                            if ordered and (left.optional or right.optional) else ""),
                           e.span, f"left operand at {e.left.span}", f"right operand at {e.right.span}")
            for side, t in ((e.left, left), (e.right, right)):
                self.refuse_unrounded(side, t, "a compared amount")
            return BOOLEAN
        if left.optional or right.optional:
            side = e.left if left.optional else e.right
            self.error(f"this value may be none; give a fallback with `otherwise` before using it in {e.op}",
                       side.span)
            return ERROR
        try:
            return arithmetic(e.op, left, right)
        except UnitError as problem:
            self.error(str(problem), e.span, f"left operand ({left}) at {e.left.span}",
                       f"right operand ({right}) at {e.right.span}")
            return ERROR

    def _isnone(self, e: s.IsNone, scope: _Scope) -> Type:
        operand = self.expr(e.operand, scope)
        if operand.kind != "error" and not operand.optional:
            self.error(f"this {operand} is never none", e.operand.span)
        return BOOLEAN

    def _member(self, e: s.Member, scope: _Scope) -> Type:
        operand = self.expr(e.operand, scope)
        for item in e.items:
            t = self.expr(item, scope, operand)
            if ERROR not in (operand, t) and not comparable(operand, t, False):
                self.error(f"cannot compare {operand} with {t}", item.span)
        return BOOLEAN

    def _rounded(self, e: s.Rounded, scope: _Scope) -> Type:
        operand = self.expr(e.operand, scope)
        if operand.kind == "error":
            return ERROR
        if operand.kind not in ("money", "unrounded") or operand.optional:
            self.error(f"only amounts of money are rounded; this is {operand}", e.operand.span)
            return ERROR
        return MONEY

    def _otherwise(self, e: s.Otherwise, scope: _Scope) -> Type:
        operand = self.expr(e.operand, scope)
        fallback = self.expr(e.fallback, scope)
        if ERROR in (operand, fallback):
            return ERROR
        if not operand.optional:
            self.error(f"this {operand} is never none, so `otherwise` never applies", e.operand.span)
        joined = unify(operand.required(), fallback)
        if joined is None:
            self.error(f"the fallback is {fallback} but the value is {operand.required()}", e.fallback.span)
            return ERROR
        return joined

    def _call(self, e: s.Call, scope: _Scope) -> Type:
        args = [self.expr(a, scope) for a in e.args]
        if e.function not in BUILTINS:
            self.error(f"unknown function {e.function}" + _suggest(e.function, BUILTINS), e.span)
            return ERROR
        if ERROR in args:
            return ERROR
        params, result = BUILTINS[e.function]
        if params is None:  # min, max
            if len(args) < 2:
                self.error(f"{e.function} takes two or more values", e.span)
                return ERROR
            joined = args[0]
            for arg, node in zip(args[1:], e.args[1:]):
                joined = unify(joined, arg) if joined else None
                if joined is None or not joined.is_numeric and joined.kind != "date" or joined.optional:
                    self.error(f"{e.function} needs values of one kind (amounts, numbers or dates)", node.span)
                    return ERROR
            self.refuse_unrounded(e, joined, f"the {e.function} of amounts")
            return joined
        if len(args) != len(params):
            self.error(f"{e.function} takes {len(params)} value(s); "
                       + BUILTIN_HELP.get(e.function, f"{e.function}({', '.join(str(p) for p in params)})"), e.span)
            return ERROR
        for arg, node, expected in zip(args, e.args, params):
            if arg != expected:
                self.error(f"{e.function} needs {expected} here; this is {arg}", node.span)
                return ERROR
        return result

    def _if(self, e: s.If, scope: _Scope) -> Type:
        self.expect_condition(e.condition, scope, "the condition of `if`")
        then = self.expr(e.then, scope)
        otherwise = self.expr(e.otherwise, scope)
        if ERROR in (then, otherwise):
            return ERROR
        joined = unify(then, otherwise)
        if joined is None:
            self.error(f"the branches of `if` differ: {then} and {otherwise}", e.span)
            return ERROR
        return joined

    def _criteria(self, criteria: tuple, scope: _Scope) -> None:
        for criterion in criteria:
            self.expect_condition(criterion, scope, "a criterion")

    def _atleast(self, e: s.AtLeast, scope: _Scope) -> Type:
        self._criteria(e.criteria, scope)
        if e.threshold > len(e.criteria):
            self.error(f"at least {e.threshold} of {len(e.criteria)} criteria can never hold", e.span)
        return BOOLEAN

    def _counttrue(self, e: s.CountTrue, scope: _Scope) -> Type:
        self._criteria(e.criteria, scope)
        return INTEGER

    def _aggregate(self, e: s.Aggregate, scope: _Scope) -> Type:
        if e.table not in self.tables:
            self.error(f"unknown table {e.table}" + _suggest(e.table, self.tables), e.span)
            return ERROR
        inner = scope.bind(e.var, e.table)
        if e.where is not None:
            self.expect_condition(e.where, inner, "the `where` of an aggregate")
        if e.function == "count":
            return INTEGER
        value = self.expr(e.expr, inner)
        if value.kind == "error":
            return ERROR
        if not value.is_numeric or value.optional:
            self.error(f"sum of needs amounts or numbers; this is {value}", e.expr.span)
            return ERROR
        self.refuse_unrounded(e.expr, value, "a summed amount")
        return value


def _subtract(piece: tuple, cut_from, cut_until) -> list:
    """The parts of period `piece` outside [cut_from, cut_until]."""
    start, end = piece
    lo, hi = start or dt.date.min, end or dt.date.max
    c_lo, c_hi = cut_from or dt.date.min, cut_until or dt.date.max
    if c_hi < lo or c_lo > hi:
        return [piece]
    parts = []
    if c_lo > lo:
        parts.append((start, c_lo - dt.timedelta(days=1)))
    if c_hi < hi:
        parts.append((c_hi + dt.timedelta(days=1), end))
    return parts


def _from_rulebook_start(statement, start: Optional[dt.date]):
    """A rule, exception or parameter value without a start of its own is in force from its
    rulebook's `in force from` date; what an amending rulebook inherits keeps its own dates."""
    if start is None:
        return statement
    if isinstance(statement, s.RuleDecl) and statement.valid_from is None:
        return attrs.evolve(statement, valid_from=start)
    if isinstance(statement, s.ParameterDecl) and any(v.valid_from is None for v in statement.values):
        return attrs.evolve(statement, values=tuple(
            attrs.evolve(v, valid_from=start) if v.valid_from is None else v for v in statement.values))
    return statement


def _diagnostic_order(d: Diagnostic):
    span = d.span
    return (span.file, span.line, span.column) if span else ("", 0, 0)


def check(chain: list) -> CheckedRulebook:
    """Check a rulebook (the last of `chain`) with the rulebooks it amends."""
    return Checker(chain).check()
