"""Write an expression back as rulelang text, optionally with values put in for names.

A table from node type to function, as in sqlglot's generator. Explanations use it to show
a formula with the actual values: `110.00 kr + 300.00 kr`.
"""

from __future__ import annotations

from typing import Callable, Optional

from . import syntax as s
from .values import to_text

# Binding strength, loosest first; a child looser than its parent gets parentheses.
PRECEDENCE = {"or": 1, "and": 2, "not": 3, "compare": 4, "rounded": 5, "otherwise": 6,
              "+": 7, "-": 7, "*": 8, "/": 8, "neg": 9, "postfix": 10, "atom": 11}
SHOWN_OP = {"!=": "≠", "<=": "≤", ">=": "≥", "*": "×"}

Leaf = Callable[[s.Expr], Optional[str]]


def _level(e: s.Expr) -> int:
    if isinstance(e, s.Binary):
        if e.op in ("and", "or"):
            return PRECEDENCE[e.op]
        if e.op in ("=", "!=", "<", "<=", ">", ">="):
            return PRECEDENCE["compare"]
        return PRECEDENCE[e.op]
    if isinstance(e, s.Unary):
        return PRECEDENCE["not"] if e.op == "not" else PRECEDENCE["neg"]
    if isinstance(e, (s.IsNone, s.Member)):
        return PRECEDENCE["compare"]
    if isinstance(e, s.Rounded):
        return PRECEDENCE["rounded"]
    if isinstance(e, s.Otherwise):
        return PRECEDENCE["otherwise"]
    if isinstance(e, (s.FieldAccess, s.Lookup, s.HistoryLookup, s.AsOf)):
        return PRECEDENCE["postfix"]
    if isinstance(e, (s.If, s.Aggregate)):
        return 0
    return PRECEDENCE["atom"]


def generate(e: s.Expr, leaf: Optional[Leaf] = None) -> str:
    """Rulelang text for `e`; `leaf` may replace a name or lookup by its value's text."""
    if leaf is not None:
        shown = leaf(e)
        if shown is not None:
            return shown
    return _GENERATORS[type(e)](e, leaf)


def _wrap(child: s.Expr, parent_level: int, leaf: Optional[Leaf], strict: bool = False) -> str:
    if leaf is not None:
        shown = leaf(child)
        if shown is not None:  # a value stands alone: no parentheses
            return shown
    text = _GENERATORS[type(child)](child, leaf)
    level = _level(child)
    if level < parent_level or (strict and level == parent_level):
        return f"({text})"
    return text


def _binary(e: s.Binary, leaf) -> str:
    level = _level(e)
    op = SHOWN_OP.get(e.op, e.op)
    if e.op == "or":
        # `a or (b and c)`: correct without parentheses, but nobody should have to know that.
        level = PRECEDENCE["and"] + 1
    return f"{_wrap(e.left, level, leaf)} {op} {_wrap(e.right, level, leaf, strict=True)}"


def _list(items, leaf) -> str:
    return ", ".join(generate(i, leaf) for i in items)


_GENERATORS = {
    s.Literal: lambda e, leaf: e.text,
    s.Name: lambda e, leaf: e.name,
    s.FieldAccess: lambda e, leaf: f"{_wrap(e.target, PRECEDENCE['postfix'], leaf)}.{e.field}",
    s.Lookup: lambda e, leaf: f"{_wrap(e.target, PRECEDENCE['postfix'], leaf)}[{_list(e.keys, leaf)}]",
    s.HistoryLookup: lambda e, leaf: (f"{_wrap(e.target, PRECEDENCE['postfix'], leaf)}"
                                      f"[{generate(e.key, leaf)} on {generate(e.on, leaf)}]"),
    s.AsOf: lambda e, leaf: (f"{_wrap(e.target, PRECEDENCE['postfix'], leaf)} as of "
                             f"{_wrap(e.date, PRECEDENCE['atom'], leaf)}"),
    s.Unary: lambda e, leaf: (f"not {_wrap(e.operand, PRECEDENCE['not'], leaf)}" if e.op == "not"
                              else f"-{_wrap(e.operand, PRECEDENCE['neg'], leaf)}"),
    s.Binary: _binary,
    s.IsNone: lambda e, leaf: (f"{_wrap(e.operand, PRECEDENCE['rounded'], leaf)} is "
                               f"{'not ' if e.negated else ''}none"),
    s.Member: lambda e, leaf: (f"{_wrap(e.operand, PRECEDENCE['rounded'], leaf)} "
                               f"{'not in' if e.negated else 'in'} {{{_list(e.items, leaf)}}}"),
    s.Rounded: lambda e, leaf: f"{_wrap(e.operand, PRECEDENCE['otherwise'], leaf)} rounded {e.mode} to {e.unit}",
    s.Otherwise: lambda e, leaf: (f"{_wrap(e.operand, PRECEDENCE['+'], leaf)} otherwise "
                                  f"{_wrap(e.fallback, PRECEDENCE['+'], leaf)}"),
    s.Call: lambda e, leaf: f"{e.function}({_list(e.args, leaf)})",
    s.If: lambda e, leaf: (f"if {generate(e.condition, leaf)} then {generate(e.then, leaf)} "
                           f"else {generate(e.otherwise, leaf)}"),
    s.AtLeast: lambda e, leaf: f"at least {e.threshold} of ({_list(e.criteria, leaf)})",
    s.CountTrue: lambda e, leaf: f"number of ({_list(e.criteria, leaf)})",
    s.Aggregate: lambda e, leaf: (
        (f"sum of {generate(e.expr, leaf)} for {e.var} in {e.table}" if e.function == "sum"
         else f"count {e.var} in {e.table}")
        + (f" where {generate(e.where, leaf)}" if e.where is not None else "")),
}


# ------------------------------------------------------------------------ worked formulas

def _arithmetic(e: s.Expr) -> bool:
    """Whether a formula computes with numbers (worth working out step by step)."""
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, s.Binary) and node.op in ("+", "-", "*", "/") or isinstance(node, s.Rounded) or \
                isinstance(node, s.Call) and node.function in ("min", "max"):
            return True
        if not isinstance(node, _READ):
            stack.extend(s.children(node))
    return False


# Values a formula reads, put in at its first step; operations are worked out after them.
_READ = (s.Name, s.FieldAccess, s.Lookup, s.HistoryLookup, s.AsOf, s.Aggregate, s.AtLeast, s.CountTrue)


class Worked:
    """A formula as evaluated: written with the values it read put in, then worked out one
    level of operations at a time (innermost first) down to its result.

        then tillägg + ersättning × vikt rounded half up to öre
          = 300.00 kr + 20.00 kr × 2.0 rounded half up to öre
          = 300.00 kr + 40.00 kr rounded half up to öre
          = 340.00 kr rounded half up to öre
          = 340.00 kr

    `shown` maps id(syntax node) to the text of its value or to (value, Type); built while
    explaining, read only when the explanation is rendered."""

    __slots__ = ("expr", "shown", "_steps", "_heights", "_texts")

    def __init__(self, expr: s.Expr, shown: dict):
        self.expr = expr
        self.shown = shown
        self._steps: Optional[list] = None
        self._heights: dict = {}
        self._texts: dict = {}  # id(expression) → its value as text, or None

    @property
    def written(self) -> str:
        """The formula as the rulebook writes it."""
        return generate(self.expr)

    @property
    def formula(self) -> str:
        """The formula with the values it read put in."""
        return self._at(0)

    @property
    def steps(self) -> list:
        """Each level of operations worked out, after `formula`, ending in the result. Only
        arithmetic is worked out level by level; a condition or a choice goes to its result."""
        if self._steps is None:
            steps: list = []
            last = self.formula
            levels = range(1, self._height(self.expr) + 1) if _arithmetic(self.expr) else [self._height(self.expr)]
            for level in levels:
                text = self._at(level)
                if text != last:
                    steps.append(text)
                    last = text
            self._steps = steps
        return self._steps

    def _text(self, e: s.Expr) -> Optional[str]:
        key = id(e)
        if key in self._texts:
            return self._texts[key]
        value = self.shown.get(key)
        text = self._texts[key] = value if value is None or isinstance(value, str) else to_text(*value)
        return text

    def _at(self, level: int) -> str:
        return generate(self.expr, lambda e: self._text(e) if self._height(e) <= level else None)

    def _height(self, e: s.Expr) -> int:
        known = self._heights.get(id(e))
        if known is None:
            if isinstance(e, (s.Literal, *_READ)):
                known = 0
            else:
                known = 1 + max((self._height(c) for c in s.children(e)), default=0)
            self._heights[id(e)] = known
        return known
