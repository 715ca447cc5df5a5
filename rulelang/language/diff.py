"""What changed between two checked rulebooks (two rulebooks, or two revisions of one):
parameter values with their periods, status and citation; rules and exceptions (condition,
value, period, repeal); definitions; outputs; tables; the quoted words of provisions; and
the readings. Compared as the rulebooks are in force, each with what it amends: a value
an amendment overrides is the amendment's. Every entry cites both sides (FILE:LINE)."""

from __future__ import annotations

from typing import Optional

import attrs

from . import syntax as s
from .assumptions import readings
from .checker import CheckedRulebook
from .checker.dates import period
from .generator import generate
from .values import rows_text, to_text

KINDS = ("table", "output", "parameter", "reading", "definition", "rule", "exception", "provision")


@attrs.frozen
class Change:
    """One difference: `old` and `new` describe each side (None where the thing is absent)."""

    kind: str  # one of KINDS
    name: str
    change: str  # added, removed, changed
    old: Optional[dict]
    new: Optional[dict]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "change": self.change, "old": self.old, "new": self.new}


def _where(span: s.Span) -> str:
    return f"{span.file}:{span.line}"


def _parameter(info) -> dict:
    values = []
    for value in info.values:
        shown = (to_text(value.value, info.type) if not info.key_types
                 else "; ".join(rows_text(value.value, info.type)))
        values.append({"period": period(value.valid_from, value.valid_until), "value": shown,
                       "status": value.decl.status, "cite": value.decl.cite, "source": _where(value.decl.span)})
    return {"type": str(info.type), "values": values, "provision": info.decl.provision.heading,
            "source": _where(info.decl.span)}


def _rule(info) -> dict:
    decl = info.decl
    described = {"output": info.output, "when": generate(decl.condition) if decl.condition is not None else None,
                 "value": generate(decl.value), "period": period(decl.valid_from, decl.valid_until),
                 "provision": decl.provision.heading, "source": _where(decl.span)}
    if decl.exception_to:
        described["exception_to"] = list(decl.exception_to)
    if info.repealed_by is not None:
        described["repealed_from"] = info.repealed_by.from_date.isoformat()
        described["repealed_at"] = _where(info.repealed_by.span)
    return described


def _definition(info) -> dict:
    decl = info.decl
    return {"table": decl.table, "value": generate(decl.expr), "type": str(info.type),
            "provision": decl.provision.heading, "source": _where(decl.span)}


def _output(info) -> dict:
    decl = info.decl
    return {"type": decl.type_name, "table": decl.table,
            "default": generate(decl.default) if decl.default is not None else None,
            "payee": generate(decl.payee) if decl.payee is not None else None,
            "provision": decl.provision.heading, "source": _where(decl.span)}


def _table(info) -> dict:
    decl = info.decl
    return {"key": decl.key, "dated_by": decl.dated_by,
            "fields": [f"{f.name}: {f.type_name}" + (f" default {generate(f.default)}" if f.default is not None
                                                     else " optional" if f.optional else "") for f in decl.fields],
            "source": _where(decl.span)}


def _provisions(checked: CheckedRulebook) -> dict:
    """`heading (rulebook)` → the provision's quoted words and sources, for every provision
    that carries a rule, parameter or other declaration (examples are not provisions)."""
    found: dict = {}
    for syntax in checked.chain:
        for statement in syntax.statements:
            provision = getattr(statement, "provision", None)
            if provision is None or not provision.heading or s.statement_kind(statement) == "example":
                continue
            found[f"{provision.heading} ({provision.rulebook})"] = {
                "quotes": [quote.text for quote in provision.quotes],
                "sources": [source.document for source in provision.sources],
                "source": f"{syntax.path}:{provision.line}"}
    return found


def _reading(reading) -> dict:
    return {"default": reading.default, "alternatives": list(reading.alternatives), "cite": reading.cite,
            "provision": reading.provision, "source": reading.source}


def _same(old: dict, new: dict) -> bool:
    """Two descriptions say the same thing: where they are written does not count."""
    def meaning(described):
        if isinstance(described, dict):
            return {k: meaning(v) for k, v in described.items() if k not in ("source", "repealed_at")}
        if isinstance(described, list):
            return [meaning(v) for v in described]
        return described
    return meaning(old) == meaning(new)


def diff(old: CheckedRulebook, new: CheckedRulebook) -> list[Change]:
    """Every change from `old` to `new`, by kind (KINDS order), then in `new`'s order of
    declaration (removed things last, in `old`'s order)."""
    rules = lambda checked, exception: {label: info for label, info in checked.rules.items()  # noqa: E731
                                        if bool(info.decl.exception_to) == exception}
    sides = {
        "table": (old.tables, new.tables, _table),
        "output": (old.outputs, new.outputs, _output),
        "parameter": (old.parameters, new.parameters, _parameter),
        "reading": ({r.name: r for r in readings(old)}, {r.name: r for r in readings(new)}, _reading),
        "definition": ({_definition_name(k): v for k, v in old.definitions.items()},
                       {_definition_name(k): v for k, v in new.definitions.items()}, _definition),
        "rule": (rules(old, False), rules(new, False), _rule),
        "exception": (rules(old, True), rules(new, True), _rule),
        "provision": (_provisions(old), _provisions(new), lambda described: described),
    }
    changes = []
    for kind in KINDS:
        before, after, describe = sides[kind]
        for name, item in after.items():
            described = describe(item)
            if name not in before:
                changes.append(Change(kind, name, "added", None, described))
                continue
            was = describe(before[name])
            if not _same(was, described):
                changes.append(Change(kind, name, "changed", was, described))
        for name, item in before.items():
            if name not in after:
                changes.append(Change(kind, name, "removed", describe(item), None))
    return changes


def diff_document(old_name: str, old: CheckedRulebook, new_name: str, new: CheckedRulebook) -> dict:
    """`diff --format json` (CONTRACT): the rulebooks as named, their versions, every change."""
    return {"old": old_name, "new": new_name, "versions": {"old": old.version, "new": new.version},
            "changes": [change.to_dict() for change in diff(old, new)]}


def _definition_name(key: tuple) -> str:
    table, name = key
    return f"{table}.{name}" if table else name
