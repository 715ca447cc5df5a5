"""Runtime values: exact money (integer öre), exact rates (fractions), named rounding.

Money is an `int` of öre. An unrounded amount (money × rate) is a `Fraction` of öre and
is only ever turned into money by `round_amount`, with a mode the rulebook names.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction
from typing import Union

from .syntax import row_key_text
from .typesystem import Type

Number = Union[int, Fraction]

UNIT_ORE = {"öre": 1, "kronor": 100}

# The largest amount one output (one line of a settlement) may hold: ±10^15 kr. Beyond it,
# an amount is refused the same way by the interpreter and by every SQL engine; totals are
# carried in 128 bits, to ±10^17 kr and beyond.
MAX_AMOUNT_ORE = 10 ** 17
AMOUNT_TOO_LARGE = "an amount beyond ±10^15 kr, the largest a line may hold"


def round_amount(amount: Number, mode: str, unit: str) -> int:
    """Round an amount in öre to whole öre or whole kronor by a named mode; returns öre."""
    step = UNIT_ORE[unit]
    q = Fraction(amount) / step
    floor, ceil = math.floor(q), math.ceil(q)
    if floor == ceil:
        whole = floor
    elif mode == "down":
        whole = floor
    elif mode == "up":
        whole = ceil
    elif mode == "toward zero":
        whole = floor if q > 0 else ceil
    elif mode == "away from zero":
        whole = ceil if q > 0 else floor
    elif mode == "half up":
        # Half up as Swedish practice uses it: halves round away from zero (−0.5 → −1).
        twice = q * 2
        if twice == math.floor(twice) and abs(q - floor) == Fraction(1, 2):
            whole = ceil if q > 0 else floor
        else:
            whole = round(q)  # not a tie, so banker's rounding cannot differ
    else:
        raise ValueError(f"unknown rounding mode {mode!r}")
    return whole * step


def format_money(ore: int) -> str:
    """`300.00`: kronor with exactly two decimals, as the contract writes money."""
    sign = "-" if ore < 0 else ""
    ore = abs(ore)
    return f"{sign}{ore // 100}.{ore % 100:02d}"


def format_fraction(value: Number, places: int = 10) -> str:
    """A decimal string; exact when the fraction terminates, else cut at `places` with `…`."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        text = format(exact, "f")
        return text
    scaled = value * 10 ** places
    whole = math.floor(scaled) if scaled >= 0 else math.ceil(scaled)
    text = format(Decimal(whole).scaleb(-places), "f").rstrip("0")
    return text + "…"


def format_unrounded(ore: Number) -> str:
    """An amount in öre that may hold a fraction of an öre, in kronor, with at least the two
    decimals of money (`120.00`, `148.1472`)."""
    text = format_fraction(Fraction(ore) / 100)
    whole, point, decimals = text.partition(".")
    if not decimals.endswith("…") and len(decimals) < 2:
        return f"{whole}.{decimals.ljust(2, '0')}"
    return text


def to_json(value, value_type: Type):
    """The contract's JSON form: money as a two-decimal string, numbers as decimal strings."""
    if value is None:
        return None
    kind = value_type.kind
    if kind == "money":
        return format_money(value)
    if kind == "unrounded":
        return format_unrounded(value)
    if kind == "boolean":
        return bool(value)
    if kind in ("integer", "decimal"):
        return format_fraction(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):  # a record found in a history
        return value.get("__id__")
    return str(value)


def rows_text(rows: tuple, value_type: Type) -> list:
    """A keyed parameter's rows, each as `keys: value` (`0 to 6: 150.00 kr`)."""
    return [f"{', '.join(row_key_text(key) for key in keys)}: {to_text(value, value_type)}" for keys, value in rows]


def to_text(value, value_type: Type) -> str:
    """The form people read: `300.00 kr`, `true`, `2021-02-01`."""
    if value is None:
        return "none"
    kind = value_type.kind
    if kind == "money":
        return f"{format_money(value)} kr"
    if kind == "unrounded":
        return f"{format_unrounded(value)} kr"
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("ref", "text"):
        return f'"{value}"'
    json_form = to_json(value, value_type)
    return str(json_form)
