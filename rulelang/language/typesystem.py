"""The types of rulelang values and the unit rules of arithmetic on them.

Money is integer öre. Multiplying money by a rate gives an *unrounded amount*, which
must be rounded by a named mode before it can be paid, compared or stored.
"""

from __future__ import annotations

from typing import Optional

import attrs

PRIMITIVES = ("money", "decimal", "integer", "boolean", "date", "text")
ROUNDING_MODES = ("half up", "down", "up", "toward zero", "away from zero")
STATUSES = ("seed", "verified", "derived", "interpretation", "illustrative")


@attrs.frozen
class Type:
    kind: str  # a primitive, "unrounded", "enum", "ref", "row", "record", "none"
    name: Optional[str] = None  # enum or table name
    optional: bool = False

    def __str__(self) -> str:
        base = {
            "unrounded": "unrounded amount",
            "enum": f"{self.name}",
            "ref": f"{self.name} id",
            "row": f"{self.name} record",
            "record": f"{self.name} record",
            "none": "none",
        }.get(self.kind, self.kind)
        return f"optional {base}" if self.optional and self.kind != "none" else base

    def required(self) -> "Type":
        return attrs.evolve(self, optional=False)

    def maybe(self) -> "Type":
        return attrs.evolve(self, optional=True)

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("money", "unrounded", "integer", "decimal")

    @property
    def is_record(self) -> bool:
        return self.kind in ("ref", "row", "record")


MONEY = Type("money")
UNROUNDED = Type("unrounded")
DECIMAL = Type("decimal")
INTEGER = Type("integer")
BOOLEAN = Type("boolean")
DATE = Type("date")
TEXT = Type("text")
NONE = Type("none", optional=True)

PRIMITIVE_TYPES = {t.kind: t for t in (MONEY, DECIMAL, INTEGER, BOOLEAN, DATE, TEXT)}


class UnitError(Exception):
    """Two operands whose units do not combine; the checker points at both."""


def arithmetic(op: str, left: Type, right: Type) -> Type:
    """The type of `left op right` for + - * /, or UnitError saying why there is none."""
    lk, rk = left.kind, right.kind
    money_like = ("money", "unrounded")
    plain = ("integer", "decimal")
    if op in "+-":
        if lk in money_like and rk in money_like:
            return UNROUNDED if "unrounded" in (lk, rk) else MONEY
        if lk in plain and rk in plain:
            return DECIMAL if "decimal" in (lk, rk) else INTEGER
        if lk in money_like or rk in money_like:
            return _refuse(f"cannot {'add' if op == '+' else 'subtract'} {left} and {right}: "
                           "money only adds to money")
        return _refuse(f"cannot {'add' if op == '+' else 'subtract'} {left} and {right}")
    if op == "*":
        if lk in money_like and rk in money_like:
            return _refuse("cannot multiply money by money")
        if lk in money_like or rk in money_like:
            money_side, other = (lk, rk) if lk in money_like else (rk, lk)
            if other == "integer":
                return MONEY if money_side == "money" else UNROUNDED
            if other == "decimal":
                return UNROUNDED
            return _refuse(f"cannot multiply {left} by {right}")
        if lk in plain and rk in plain:
            return DECIMAL if "decimal" in (lk, rk) else INTEGER
        return _refuse(f"cannot multiply {left} by {right}")
    if op == "/":
        if lk in money_like and rk in money_like:
            return DECIMAL
        if lk in money_like and rk in plain:
            return UNROUNDED
        if lk in plain and rk in plain:
            return DECIMAL
        return _refuse(f"cannot divide {left} by {right}")
    raise ValueError(op)


def _refuse(message: str) -> Type:
    raise UnitError(message)


def comparable(left: Type, right: Type, ordered: bool) -> bool:
    """Whether two values can be compared (ordered: with < and >, not only =)."""
    if ordered and (left.optional or right.optional):
        return False
    lk, rk = left.kind, right.kind
    if "none" in (lk, rk):
        return not ordered and (left.optional or right.optional)
    if lk in ("integer", "decimal") and rk in ("integer", "decimal"):
        return True
    if {lk, rk} <= {"money", "unrounded"}:
        return True
    if ordered:
        return lk == rk and lk in ("money", "date", "integer", "decimal", "text")
    if lk == "ref" and rk == "text" or lk == "text" and rk == "ref":
        return True
    if {lk, rk} == {"ref", "row"}:
        return False  # a record is not its id: compare the id (`p.person_id = person_id`)
    if lk in ("ref", "row", "record") and rk in ("ref", "row", "record"):
        return left.name == right.name or _id_compatible(left, right)
    return lk == rk and left.name == right.name


def _id_compatible(left: Type, right: Type) -> bool:
    return left.kind == "ref" and right.kind == "ref"


def unify(left: Type, right: Type) -> Optional[Type]:
    """The type both branches of an `if` (or a value and its fallback) fit, if any."""
    if left.kind == "none":
        return right.maybe()
    if right.kind == "none":
        return left.maybe()
    optional = left.optional or right.optional
    if left.required() == right.required():
        return attrs.evolve(left, optional=optional)
    if {left.kind, right.kind} <= {"integer", "decimal"}:
        return Type("decimal", optional=optional)
    if {left.kind, right.kind} <= {"money", "unrounded"}:
        return Type("unrounded", optional=optional)
    return None


def assignable(value: Type, target: Type) -> bool:
    """Whether a value of type `value` may stand where `target` is declared."""
    if value.kind == "none":
        return target.optional
    if value.optional and not target.optional:
        return False
    if value.kind == target.kind and value.name == target.name:
        return True
    if value.kind == "integer" and target.kind == "decimal":
        return True
    if value.kind in ("text", "integer") and target.kind == "ref":
        return True  # an id written as a literal: text, or a number for an integer key
    return False
