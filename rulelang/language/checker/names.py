"""Names: every declaration collected once, across the rulebooks one amends; tables and
fields checked; look-alike names and invisible characters warned about."""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional

import attrs

from .. import syntax as s
from ..diagnostics import did_you_mean as _suggest
from ..typesystem import (
    PRIMITIVE_TYPES,
    Type,
)
from .model import (
    BUILTINS,
    ERROR,
    EVALUATION_DATE,
    DefinitionInfo,
    OutputInfo,
    ParamInfo,
    ParamValueInfo,
    RuleInfo,
    Scope,
    TableInfo,
    names_own_key,
)

# Characters that change how text is shown without being seen (bidirectional overrides and
# isolates, zero-width characters): a rulebook that holds one is warned about.
HIDDEN_CONTROLS = {
    "\u202a": "left-to-right embedding", "\u202b": "right-to-left embedding", "\u202c": "pop directional formatting",
    "\u202d": "left-to-right override", "\u202e": "right-to-left override", "\u2066": "left-to-right isolate",
    "\u2067": "right-to-left isolate", "\u2068": "first strong isolate", "\u2069": "pop directional isolate",
    "\u200b": "zero width space", "\u200c": "zero width non-joiner", "\u200d": "zero width joiner",
    "\u200e": "left-to-right mark", "\u200f": "right-to-left mark", "\u2060": "word joiner",
}

HIDDEN_CONTROL = re.compile("[" + "".join(HIDDEN_CONTROLS) + "]")


def _script(char: str) -> str:
    """The script of a letter (LATIN, CYRILLIC, GREEK, …), from its Unicode name; '' otherwise."""
    if not char.isalpha():
        return ""
    import unicodedata

    return unicodedata.name(char, "").split(" ")[0]


def _scripts(name: str) -> set:
    return {script for script in map(_script, name) if script}


def as_history(values: tuple) -> list:
    """A parameter's values as a history: a value with no `until` ends the day before the next
    value of the same declaration begins (`value 110 kr from 2021-01-01` then `value 115 kr
    from 2022-01-01`: the first is in force until 2021-12-31). An explicit `until` is kept as
    written, so a gap or an overlap it makes is reported, not mended."""
    ordered = sorted(values, key=lambda v: v.valid_from or dt.date.min)
    history = []
    for index, value in enumerate(ordered):
        until = value.valid_until
        later = [v.valid_from for v in ordered[index + 1:] if v.valid_from is not None
                 and (value.valid_from is None or v.valid_from > value.valid_from)]
        if until is None and later:
            until = min(later) - dt.timedelta(days=1)
        history.append(ParamValueInfo(value, value.valid_from, until, None))
    return history


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


class Names:
    """Names: what each statement declares, collected once across the amendment chain.

    A part of Checker: it shares the checker's state and reports through it."""

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
        # Looked for character by character only in a text that holds one (a tenth of a
        # load went on reading every character of every file in Python).
        lines = layer.text.splitlines() if HIDDEN_CONTROL.search(layer.text) else []
        for line_number, line in enumerate(lines, start=1):
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
            new_values = as_history(decl.values)
            for old in existing.values:
                pieces = [(old.valid_from, old.valid_until)]
                for new in new_values:
                    pieces = [p for piece in pieces for p in _subtract(piece, new.valid_from, new.valid_until)]
                kept.extend(attrs.evolve(old, valid_from=f, valid_until=u) for f, u in pieces)
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
        values = as_history(decl.values)
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
            scope = Scope(decl.table)
            self._current = ("output", decl.table, decl.name)
            if decl.default is not None:
                self.expect_value(decl.default, scope, output.type, f"the default of {decl.name}")
            if decl.payee is not None:
                payee = self.expr(decl.payee, scope)
                # A record's own key is its id, text or a whole number (a clinic paid per clinic).
                own_key = names_own_key(decl.payee, self.tables[decl.table].decl.key, self.resolved)
                if payee.kind not in ("ref", "text", "error") and not (own_key and payee.kind == "integer"):
                    self.error(f"`paid to` names the record that receives the amount (an id); this is {payee}",
                               decl.payee.span)
            self._current = None
        # A warning is about the input as a whole: no record of its own, like a definition of no table.
        for warning in self.data_warnings.values():
            self.expect_condition(warning.condition, Scope(None), f"the condition of warning {warning.name}")

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
                    self.expect_value(field.default, Scope(None), field_type.required(),
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
