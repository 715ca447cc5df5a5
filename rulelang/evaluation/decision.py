"""The decision path of an explanation: what a reader needs to see why an amount is what it is.

The explanation tree holds every rule and exception considered. The decision path keeps
the rules and exceptions whose value became the output's (marked `decides`), each with its
condition and formula worked out, one line per exception considered that did not apply and
per other rule of the output, and the definitions, parameter values, inputs and sums they
read, each once. Renderers draw it as text or HTML; the JSON keeps the whole tree.
"""

from __future__ import annotations

from typing import Optional

import attrs

from .explanation import Explanation

RULE_KINDS = ("rule", "exception")


@attrs.frozen
class Step:
    """A rule or exception on the path: the node, and the exceptions to it that did not apply.
    Only the last step applies; those above it are overridden by the step below them, and
    what they read is not part of the path (the amount does not rest on it)."""

    node: Explanation
    condition: Optional[Explanation]
    formula: Optional[Explanation]
    passed_over: tuple  # exception nodes considered that gave no value


@attrs.frozen
class DecisionPath:
    root: Explanation
    steps: tuple  # of Step, from the root rule down to the one that gave the value
    default: Optional[Explanation]  # when no rule applied
    other_rules: tuple  # root rules that did not decide
    outputs: tuple  # DecisionPath of each other output read (a maximum another amount splits)
    definitions: tuple  # definition nodes, each once, in the order first read
    parameters: tuple  # parameter nodes, each once
    inputs: tuple  # (table, record, [(field, value, defaulted)]) in the order read
    lookups: tuple  # history lookups
    aggregates: tuple  # sums and counts, with their contributors
    criteria: tuple  # `at least N of` nodes


def decision_path(root: Explanation, read: Optional["_Reading"] = None) -> DecisionPath:
    """The decision path of an output's explanation. What it reads is collected into `read`
    (shared with the paths of the outputs it reads, so that each thing is listed once)."""
    outermost = read is None
    read = read if read is not None else _Reading()
    rules = [c for c in root.children if c.kind in RULE_KINDS]
    default = next((c for c in root.children if c.kind == "default"), None)
    steps: list[Step] = []
    node = next((c for c in rules if c.facts.get("decides")), None)
    while node is not None:
        exceptions = [c for c in node.children if c.kind == "exception"]
        deciding = next((c for c in exceptions if c.facts.get("decides")), None)
        steps.append(Step(node, _child(node, "condition"), _child(node, "formula"),
                          tuple(c for c in exceptions if c is not deciding)))
        node = deciding
    others = tuple(c for c in rules if not c.facts.get("decides"))
    for step in steps:
        if not step.node.facts.get("applied"):
            continue  # overridden: an exception below it gives the value, whatever it reads
        for part in (step.condition, step.formula):
            if part is not None:
                read.visit(part)
        for exception in step.passed_over:
            read.visit(exception)
    if default is not None:
        read.visit(default)
        for rule in others:
            read.visit(rule)
    if not outermost:
        return DecisionPath(root, tuple(steps), default, others, (), (), (), (), (), (), ())
    outputs = tuple(decision_path(node, read) for node in read.outputs)
    return DecisionPath(root, tuple(steps), default, others, outputs, tuple(read.definitions),
                        tuple(read.parameters), tuple(read.input_rows()), tuple(read.lookups),
                        tuple(read.aggregates), tuple(read.criteria))


def _child(node: Explanation, kind: str) -> Optional[Explanation]:
    return next((c for c in node.children if c.kind == kind), None)


class _Reading:
    """Collects what the nodes of a path read, each once, depth first."""

    def __init__(self):
        self.outputs: list = []
        self.definitions: list = []
        self.parameters: list = []
        self.lookups: list = []
        self.aggregates: list = []
        self.criteria: list = []
        self._inputs: dict = {}
        self._seen: set = set()

    def visit(self, node: Explanation) -> None:
        kind = node.kind
        if kind == "definition" and not node.facts.get("explained_above"):
            self._once(("definition", node.facts.get("anchor")), node, self.definitions)
        elif kind == "parameter":
            self._once(("parameter", node.label), node, self.parameters)
        elif kind == "input":
            fields = self._inputs.setdefault((node.facts.get("table"), node.facts.get("record")), {})
            fields.setdefault(node.label.split(".", 1)[-1], (node.value, bool(node.facts.get("defaulted"))))
        elif kind == "lookup":
            self._once(("lookup", node.label, node.facts.get("key")), node, self.lookups)
        elif kind == "aggregate":
            self._once(("aggregate", node.source, node.label), node, self.aggregates)
        elif kind == "criteria":
            self._once(("criteria", node.source), node, self.criteria)
        elif kind == "output":
            # Another output read (a maximum this amount splits): its own decision path only.
            key = ("output", node.label, node.facts.get("record"))
            if key not in self._seen:
                self._seen.add(key)
                self.outputs.append(node)
            return
        for child in node.children:
            self.visit(child)

    def _once(self, key, node: Explanation, into: list) -> None:
        if key not in self._seen:
            self._seen.add(key)
            into.append(node)

    def input_rows(self) -> list:
        return [(table, record, [(name, value, defaulted) for name, (value, defaulted) in fields.items()])
                for (table, record), fields in self._inputs.items()]
