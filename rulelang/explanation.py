"""The explanation tree: data first (JSON, golden-tested), rendered as text or HTML later.

Every node has `kind`, `label`, `value`, `provision`, `source` and `children`, as the
contract fixes; some kinds add facts of their own (a parameter's validity, whether an
exception applied, the record an input came from).
"""

from __future__ import annotations

from typing import Optional

import attrs


@attrs.define
class Explanation:
    kind: str  # output, rule, exception, default, condition, formula, input, parameter,
    #            definition, lookup, rounding, criteria, criterion, aggregate
    label: str
    value: object  # already in the contract's JSON form
    provision: Optional[str] = None
    source: Optional[str] = None
    children: list = attrs.Factory(list)
    facts: dict = attrs.Factory(dict)

    def to_dict(self) -> dict:
        node = {"kind": self.kind, "label": self.label, "value": self.value,
                "provision": self.provision, "source": self.source}
        node.update(self.facts)
        node["children"] = [child.to_dict() for child in self.children]
        return node

    def walk(self):
        """This node and every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()
