"""The explanation tree: data first (JSON, golden-tested), rendered as text or HTML later.

Every node has `kind`, `label`, `value`, `provision`, `source` and `children`, as the
contract fixes; a node with a provision also has `document` and `quote` (the source's
words); some kinds add facts of their own (a parameter's validity, whether an exception
applied, the record an input came from). A node also knows, without saying so in JSON,
which parameter values its value rests on (`uses`: name → status): the root turns them
into `rests_on` and `basis`.
"""

from __future__ import annotations

from typing import Optional

import attrs

FORMAT = "rulelang.explanation/2"

# From firmest to weakest: what a figure's status says of how far a reader can rely on it.
BASIS_ORDER = ("seed", "verified", "derived", "interpretation", "assumed", "illustrative")
RANK = {status: rank for rank, status in enumerate(BASIS_ORDER)}

NO_USES: dict = {}  # shared by the many nodes that rest on no parameter; never mutated


@attrs.define(slots=True, repr=False)
class Explanation:
    kind: str  # output, rule, exception, default, condition, formula, input, parameter,
    #            definition, lookup, rounding, criteria, criterion, aggregate
    label: str
    value: object  # already in the contract's JSON form
    provision: Optional[str] = None
    source: Optional[str] = None
    children: list = attrs.Factory(list)
    facts: dict = attrs.Factory(dict)
    document: Optional[str] = None  # the document the provision's words come from
    quote: Optional[str] = None  # the words of the source the rulebook quotes for it
    worked: object = None  # a generator.Worked: the formula with values, and its steps
    uses: dict = NO_USES  # parameter name → status of the value used; not in JSON
    # Parameters evaluation may also have read without tracing them (a sum's filter on the
    # records it left out); what the amount rests on does not include them. Not in JSON.
    may_read: frozenset = frozenset()

    def __repr__(self) -> str:
        return f"<Explanation {self.kind} {self.label} = {self.value!r}, {len(self.children)} children>"

    def to_dict(self) -> dict:
        node: dict = {}
        if "format" in self.facts:  # the root: its headline, what it rests on and its format first
            node.update((key, self.facts[key]) for key in ROOT_FIRST if key in self.facts)
        node.update({"kind": self.kind, "label": self.label, "value": self.value,
                     "provision": self.provision, "source": self.source})
        if self.provision is not None:
            node["document"] = self.document
            node["quote"] = self.quote
        node.update((key, value) for key, value in self.facts.items() if key not in node)
        if self.worked is not None:
            node["formula"] = self.worked.formula
            if self.kind in STEPPED:
                node["steps"] = self.worked.steps
        node["children"] = [child.to_dict() for child in self.children]
        return node

    def walk(self):
        """This node and every node below it, depth first (by a stack: a tree is walked once
        an explanation to find the readings it read, and nested generators cost a call a level)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            if node.children:
                stack.extend(reversed(node.children))


ROOT_FIRST = ("headline", "basis", "rests_on", "readings", "format")

# Nodes whose formula is arithmetic a reader may want worked out step by step.
STEPPED = ("formula", "definition", "default", "rounding")


def merged(*uses: dict) -> dict:
    """The union of several `uses`, without copying when one of them holds everything."""
    present = [u for u in uses if u]
    if not present:
        return NO_USES
    if len(present) == 1:
        return present[0]
    result: dict = {}
    for u in present:
        result.update(u)
    return result


def rests_on(uses: dict) -> dict:
    """`{status: [parameter names]}`, firmest status first, names sorted."""
    grouped: dict = {}
    for name, status in sorted(uses.items()):
        grouped.setdefault(status, []).append(name)
    return {status: grouped[status] for status in BASIS_ORDER if status in grouped}


def weakest(statuses) -> Optional[str]:
    """The weakest of some statuses (the basis of what rests on them); None for none."""
    ranked = [RANK.get(s, len(BASIS_ORDER)) for s in statuses if s is not None]
    if not ranked:
        return None
    rank = max(ranked)
    return BASIS_ORDER[rank] if rank < len(BASIS_ORDER) else None
