"""An explanation as text for a person: the decision path by default, the whole tree on request.

Every provision shown is cited once with its heading, the rulebook line, the source's words
and the document they come from; every parameter value with its unit, period, status and
citation; every formula with the values put in and worked out step by step.
"""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Optional

from ...evaluation.decision import DecisionPath, decision_path
from ...evaluation.explanation import Explanation

WIDTH = 100  # a formula and its steps on one line up to this width, else one step a line
CONTRIBUTORS_SHOWN = 5  # the largest contributions of a sum listed in text; JSON has them all


def explanation_text(root: Explanation, full: bool = False) -> str:
    """The decision path (or with `full`, the whole tree) as indented text."""
    lines = _head(root)
    if full:
        _Tree(lines).visit(root, 0)
    else:
        _path(decision_path(root), lines)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ shared pieces


def shown(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "none"
    return str(value)


def input_shown(name: str, value, defaulted: bool = False) -> str:
    """`field = value`; a value the record did not give says it is the field's default."""
    return f"{name} = {shown(value)}" + (" (not given: the field's default)" if defaulted else "")


def with_unit(node: Explanation, value=None) -> str:
    value = node.value if value is None else value
    unit = node.facts.get("unit")
    return f"{shown(value)} {unit}" if unit and value is not None else shown(value)


def period(node: Explanation) -> str:
    start, end = node.facts.get("valid_from"), node.facts.get("valid_to")
    if not start and not end:
        return "always"
    return f"{start or '…'} – {end or '…'}"


def worked(label: str, node: Explanation, outcome: Optional[str] = None) -> list[str]:
    """`label → formula with values → step → … → result`, on one line when it fits: each
    arrow is one evaluation, the values read put in, then one level of operations."""
    parts = [label]
    if node.worked is not None:
        formula = node.worked.formula
        if formula != parts[-1]:
            parts.append(formula)
        if node.kind in ("formula", "definition", "default", "rounding"):
            parts.extend(node.worked.steps)
    if outcome is not None and parts[-1] != outcome:
        parts.append(outcome)
    one = " → ".join(parts)
    if len(one) <= WIDTH:
        return [one]
    return [parts[0]] + [f"   → {p}" for p in parts[1:]]


def parameter_lines(node: Explanation) -> list[str]:
    facts = node.facts
    lines = [f"{node.label} = {with_unit(node)} · {facts.get('status')} · in force {period(node)}"]
    if facts.get("cite"):
        lines.append(f"   cite: {facts['cite']}")
    return lines


def contributors_lines(node: Explanation) -> list[str]:
    facts = node.facts
    lines = [f"{node.label} = {shown(node.value)} over {facts.get('records')} record(s), evaluated on {facts.get('on')}"]
    contributors = facts.get("contributors") or []
    ranked = heapq.nlargest(CONTRIBUTORS_SHOWN, contributors, key=_size)  # sorted(…, reverse=True)[:n]
    for item in ranked:
        refs = ", ".join(f"{k} {v}" for k, v in item.items() if k not in ("table", "record", "value") and v)
        lines.append(f"   {item['table']} {item['record']}{f' ({refs})' if refs else ''}: {item['value']}")
    if len(contributors) > len(ranked):
        lines.append(f"   and {len(contributors) - len(ranked)} more (all are in the JSON and HTML)")
    return lines


def _size(item: dict):
    """A contribution's size, exactly (a clinic's sum has thousands: parsed as decimals)."""
    try:
        return abs(Decimal(str(item["value"]).rstrip("…")))
    except ArithmeticError:  # not a number (a yes/no)
        return 0


def _head(root: Explanation) -> list[str]:
    facts = root.facts
    lines = [facts.get("headline") or f"{root.label} = {shown(root.value)}"]
    about = []
    if facts.get("paid_to"):
        about.append(f"paid to {facts['paid_to']}")
    about.append(f"rulebook {facts.get('rulebook')}")
    lines.append("  " + " · ".join(about))
    if facts.get("replaced_by"):
        lines.append(f"  ⚠ {facts['replaced_by']['message']}")
    grouped = facts.get("rests_on") or {}
    if grouped:
        lines.append("  rests on: " + " · ".join(f"{status} {', '.join(names)}" for status, names in grouped.items()))
    if facts.get("readings"):
        lines.append("  under another reading of the source (each tried alone, the others as taken):")
        for reading, other, outcome, _ in reading_outcomes(root):
            off = "" if reading["on_decision_path"] else "  · read off the decision path"
            if other is None:
                lines.append(f"    {reading['name']} = {shown(reading['value'])}: {outcome}{off}")
            else:
                lines.append(f"    if {reading['name']} = {shown(other['value'])} (taken: {shown(reading['value'])}): "
                             f"{outcome}{off}")
    return lines


def amount_unit(root: Explanation) -> str:
    """` kr` after an amount of money, nothing after another value."""
    return " kr" if root.facts.get("type") == "money" and root.value is not None else ""


def reading_outcomes(root: Explanation):
    """(reading, alternative or None, what the amount is under it, whether that differs: True,
    False, or None when not tried) for each alternative of each reading the explanation tried
    (readings_tried); a reading with no alternative to try once, with None."""
    unit = amount_unit(root)
    paid_to = root.facts.get("paid_to")
    for reading in root.facts.get("readings") or ():
        if reading.get("untried"):
            yield reading, None, reading["untried"], None
        elif not reading["alternatives"]:
            yield (reading, None, "no alternative worked in the rulebook's examples, not tried; "
                                  f"try one with --assume {reading['name']}=VALUE", None)
        for other in reading["alternatives"]:
            amount = f"{shown(other.get('result'))}{unit}"
            if "error" in other:
                yield reading, other, f"cannot be computed: {other['error']}", True
            elif other["result"] != root.value:
                yield reading, other, f"{amount} instead of {shown(root.value)}{unit}", True
            elif other.get("paid_to") != paid_to:
                yield (reading, other, f"{amount}, the same amount, but paid to {other.get('paid_to')} instead of "
                                       f"{paid_to}", True)
            elif other.get("source") not in (None, root.source):
                yield (reading, other, f"{amount}, the same amount, but decided under § {other['provision']} "
                                       f"[{other['source']}]", False)
            else:
                yield reading, other, f"{amount}, the same", False


class _Provisions:
    """Cites each provision once: its heading and line, then the source's words."""

    def __init__(self):
        self.seen: set = set()

    def lines(self, node: Explanation, indent: str) -> list[str]:
        if not node.provision or node.provision in self.seen:
            return []
        self.seen.add(node.provision)
        lines = [f"{indent}§ {node.provision}  [{node.source}]"]
        if node.quote:
            lines.extend(f'{indent}    "{quoted}"' for quoted in node.quote.split("\n"))
        elif node.document:
            lines.append(f"{indent}    (the rulebook does not hold this document's words)")
        return lines


# ------------------------------------------------------------------------ the decision path


def _path(path: DecisionPath, lines: list[str]) -> None:
    provisions = _Provisions()
    lines.append("")
    if not path.steps:
        default = path.default
        # The section cited is where the output is declared, not words that order the default.
        declared = default is not None and default.provision
        lines.append("no rule applies: the output's default" + (", declared with the output in" if declared else ""))
        if default is not None:
            lines.extend(provisions.lines(default, "  "))
            lines.extend("  " + line for line in worked("default", default))
    for step in path.steps:
        node = step.node
        if not node.facts.get("applied"):
            lines.append(f"{node.kind} {node.label}: {node.facts.get('reason')}")
            continue
        lines.append(f"✔ {node.kind} {node.label} applies · in force {period(node)}")
        lines.extend(_applying(step, provisions, "  "))
        for exception in step.passed_over:
            lines.extend(_passed_over(exception, provisions, "  ", deeper=True))
    if path.other_rules:
        lines.append(f"other rules for {path.root.label}:")
        for rule in path.other_rules:
            lines.extend(_passed_over(rule, provisions, "  ", deeper=path.default is not None))
    _reads(path, provisions, lines)


def _output_read(path: DecisionPath, provisions: _Provisions) -> list[str]:
    """Another output this one reads: its value and how its deciding rule worked it out."""
    root = path.root
    unit = amount_unit(root)
    applying = next((step for step in path.steps if step.node.facts.get("applied")), None)
    if applying is None:
        lines = [f"  {root.label} = {shown(root.value)}{unit}: no rule applies, the default"]
        if path.default is not None:
            lines.extend("     " + line for line in worked("default", path.default))
        return lines
    node = applying.node
    return [f"  {root.label} = {shown(root.value)}{unit} by {node.kind} {node.label}",
            *_applying(applying, provisions, "     ")]


def _applying(step, provisions: _Provisions, indent: str) -> list[str]:
    """The rule that applies: its provision (the first time), its condition and its formula."""
    lines = provisions.lines(step.node, indent)
    if step.condition is not None:
        lines.extend(indent + line for line in worked(f"when {step.condition.label}", step.condition,
                                                      shown(step.condition.value)))
    if step.formula is not None:
        lines.extend(indent + line for line in worked(f"then {step.formula.label}", step.formula))
    return lines


def why_it_did_not_decide(node: Explanation) -> str:
    """Why a rule or exception on the path did not give the amount, in one line: for a
    condition that did not hold, the condition as written, then (when it says more) with the
    values it read, then its value."""
    facts = node.facts
    if facts.get("applied"):
        return "applies too, with the same value"
    reason = facts.get("reason", "does not apply")
    if facts.get("repealed_by"):
        reason += f" by {facts['repealed_by']}"
    condition = next((c for c in node.children if c.kind == "condition"), None)
    if condition is None or not facts.get("in_force") or reason != "its condition does not hold":
        return reason
    steps = [condition.label]
    if condition.worked is not None and condition.worked.formula not in steps:
        steps.append(condition.worked.formula)
    if shown(condition.value) != steps[-1]:
        steps.append(shown(condition.value))
    return " → ".join(steps)


def _passed_over(node: Explanation, provisions: _Provisions, indent: str, deeper: bool) -> list[str]:
    """A rule or exception that did not decide, and why, in a line or two; with `deeper`, the
    exceptions to it too (they are on the path when the amount rests on its not applying)."""
    reason = why_it_did_not_decide(node)
    mark = "=" if node.value is not None else "✘"  # `=`: gives the same value, so no conflict
    lines = [f"{indent}{mark} {node.kind} {node.label}: {reason}"]
    lines.extend(provisions.lines(node, indent + "  "))
    if deeper:
        for exception in (c for c in node.children if c.kind == "exception" and c.facts.get("in_force")):
            lines.extend(_passed_over(exception, provisions, indent + "  ", deeper))
    return lines


def _reads(path: DecisionPath, provisions: _Provisions, lines: list[str]) -> None:
    if path.outputs:
        lines.append("outputs read")
        for read in path.outputs:
            lines.extend(_output_read(read, provisions))
    if path.definitions:
        lines.append("definitions")
        for node in path.definitions:
            where = f" (of {node.facts['record']})" if node.facts.get("record") and path.root.facts.get(
                "record") != node.facts.get("record") else ""
            lines.extend("  " + line for line in worked(f"{node.label}{where}: {node.worked.written}", node))
            lines.extend(provisions.lines(node, "     "))
    if path.lookups:
        lines.append("looked up")
        for node in path.lookups:
            found = node.facts.get("record")
            during = f", in force {period(node)}" if found else ""
            lines.append(f"  {node.label} on {node.facts.get('on')} = {found or 'none'}{during}")
    if path.criteria:
        lines.append("criteria")
        for node in path.criteria:
            lines.append(f"  {node.label}: {node.facts.get('held')} hold → {shown(node.value)}")
            for criterion in node.children:
                mark = "✔" if criterion.value else "✘"
                formula = criterion.worked.formula if criterion.worked is not None else criterion.label
                lines.append(f"    {mark} {criterion.label}" + (f" = {formula}" if formula != criterion.label else ""))
    if path.aggregates:
        lines.append("sums")
        for node in path.aggregates:
            lines.extend("  " + line for line in contributors_lines(node))
    if path.parameters:
        lines.append("parameters")
        for node in path.parameters:
            lines.extend("  " + line for line in parameter_lines(node))
            lines.extend(provisions.lines(node, "     "))
    if path.inputs:
        lines.append("inputs")
        for table, record, fields in path.inputs:
            lines.append(f"  {table} {record}: " + ", ".join(input_shown(*field) for field in fields))


# ------------------------------------------------------------------------ the whole tree


class _Tree:
    """Today's whole tree, one node a line, each provision cited once."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.provisions = _Provisions()

    def visit(self, node: Explanation, depth: int) -> None:
        pad = "  " * depth
        self.lines.extend(pad + line for line in self.node_lines(node))
        if node.kind in ("output", "rule", "exception", "parameter", "definition") and \
                not node.facts.get("explained_above"):
            self.lines.extend(self.provisions.lines(node, pad + "  "))
        for child in node.children:
            self.visit(child, depth + 1)

    def node_lines(self, node: Explanation) -> list[str]:
        facts, kind = node.facts, node.kind
        if kind == "output":
            return [f"output {node.label} = {shown(node.value)}{amount_unit(node)}"]
        if kind in ("rule", "exception"):
            if facts.get("applied"):
                return [f"{kind} {node.label}: ✔ applies → {shown(node.value)} · in force {period(node)}"]
            reason = facts.get("reason", "does not apply")
            if facts.get("repealed_by"):
                reason += f" by {facts['repealed_by']}"
            return [f"{kind} {node.label}: ✘ {reason}"]
        if kind == "parameter":
            return ["parameter " + line if i == 0 else line for i, line in enumerate(parameter_lines(node))]
        if kind == "input":
            shown_input = input_shown(node.label, node.value, facts.get("defaulted"))
            return [f"input {shown_input}  (record {facts.get('record')})"]
        if kind == "lookup":
            found = facts.get("record")
            during = f", in force {facts.get('valid_from')} – {facts.get('valid_to') or '…'}" if found else ""
            return [f"lookup {node.label} = {found or 'none'}{during}"]
        if kind == "definition" and facts.get("explained_above"):
            return [f"definition {node.label} → {shown(node.value)}  (explained above)"]
        if kind == "aggregate":
            return ["aggregate " + line if i == 0 else line for i, line in enumerate(contributors_lines(node))]
        if kind == "criteria":
            return [f"{node.label}: {facts.get('held')} hold → {shown(node.value)}"]
        prefix = {"condition": "when", "formula": "then", "criterion": "criterion", "definition": "definition",
                  "default": "default", "rounding": "rounding"}.get(kind, kind)
        label = node.label
        if kind == "rounding" and node.worked is not None:
            label = node.worked.written
        elif kind == "definition" and node.worked is not None:
            label = f"{node.label}: {node.worked.written}"
        outcome = shown(node.value) if kind in ("condition", "criterion") else None
        return worked(f"{prefix} {label}", node, outcome)
