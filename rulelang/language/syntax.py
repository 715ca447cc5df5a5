"""The syntax tree of a rulebook: frozen attrs classes, a source span on every node.

Nothing here knows about types, money or evaluation; later stages read these nodes and
point back at their spans.
"""

from __future__ import annotations

import datetime as dt
import re
from fractions import Fraction
from typing import Optional, Union

import attrs

HELD_FILE_NAME = re.compile(r"^\w[\w.-]*\.(?:txt|md)$")


@attrs.frozen
class Span:
    """Where a node stands in its rulebook file (1-based lines and columns)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def location(self) -> str:
        """`FILE:LINE`, the form explanations cite."""
        return f"{self.file}:{self.line}"


@attrs.frozen
class Quotation:
    """Words of a source quoted in a section's prose (`*"…"*`), where they stand in the file."""

    text: str
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Source:
    """A document a rulebook encodes, declared once in its header and cited by `key`.

    `document` is a file name when the rulebook keeps the document's text (a *held*
    document, in a `sources/` folder), otherwise a citation of a public document."""

    key: str
    document: str
    title: Optional[str]
    span: Span = attrs.field(eq=False)

    @property
    def names_a_file(self) -> bool:
        """A bare file name (`001_d4b7588c97b7b524.txt`): a document the rulebook must hold.
        Anything else (`Läkartidningen 2022-10`, an address) cites a document it does not."""
        return HELD_FILE_NAME.match(self.document) is not None


@attrs.frozen
class Provision:
    """The section a statement stands under: its citation in errors and explanations.

    A section's words come from the sources it names (`according to …`, or a section above
    it does), or it is the rulebook's own text (`according to this rulebook`): a reading,
    a helper definition, a note. `quotes` are the source's words its prose quotes."""

    rulebook: str
    heading: str
    line: int = 0  # the heading's line in the file; 0 before any heading
    sources: tuple = ()  # of Source
    own: bool = False
    quotes: tuple = ()  # of Quotation

    @property
    def attributed(self) -> bool:
        return bool(self.sources) or self.own

    @property
    def document(self) -> Optional[str]:
        """The document the section's words come from; None for the rulebook's own text."""
        return self.sources[0].document if self.sources else None

    @property
    def documents(self) -> tuple:
        return tuple(source.document for source in self.sources)

    @property
    def quote(self) -> Optional[str]:
        """The source's words the section quotes, one quotation a line; None when it quotes
        none, and always for the rulebook's own text (its quotations are not its provision)."""
        if self.own or not self.quotes:
            return None
        return "\n".join(q.text for q in self.quotes)

    @property
    def citation(self) -> str:
        if self.sources:
            return f"{self.heading} ({'; '.join(self.documents)})"
        if self.own:
            return f"{self.heading} ({self.rulebook}, the rulebook's own text)"
        return self.heading


# ----------------------------------------------------------------------------- expressions


@attrs.frozen
class Literal:
    """A constant: money in integer öre, decimals as exact fractions."""

    kind: str  # money, integer, decimal, date, text, boolean, none
    value: Union[int, Fraction, dt.date, str, bool, None]
    text: str
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Name:
    name: str
    span: Span = attrs.field(eq=False)


@attrs.frozen
class FieldAccess:
    target: "Expr"
    field: str
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Lookup:
    """`parameter[key, …]`: a row of a keyed parameter (an age band; sex and age)."""

    target: "Expr"
    keys: tuple
    span: Span = attrs.field(eq=False)


@attrs.frozen
class HistoryLookup:
    """`listings[person_id on date]`: the history record in force on a date."""

    target: "Expr"
    key: "Expr"
    on: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class AsOf:
    """`belopp as of first_day_of_month(date)`: a parameter (or a row of one) read with the
    value in force on another date than the record's."""

    target: "Expr"  # a parameter's Name, or a Lookup of one
    date: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Unary:
    op: str  # "-" or "not"
    operand: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Binary:
    op: str  # + - * / and or = != < <= > >=
    left: "Expr"
    right: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class IsNone:
    operand: "Expr"
    negated: bool
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Member:
    operand: "Expr"
    items: tuple
    negated: bool
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Rounded:
    operand: "Expr"
    mode: str  # half up, down, up, toward zero, away from zero
    unit: str  # öre, kronor
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Otherwise:
    operand: "Expr"
    fallback: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Call:
    function: str
    args: tuple
    span: Span = attrs.field(eq=False)


@attrs.frozen
class If:
    condition: "Expr"
    then: "Expr"
    otherwise: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class AtLeast:
    """`at least N of (c1, c2, …)`: how many criteria hold, against a threshold."""

    threshold: int
    criteria: tuple
    span: Span = attrs.field(eq=False)


@attrs.frozen
class CountTrue:
    criteria: tuple
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Aggregate:
    """`sum of E for v in T where C` or `count v in T where C`."""

    function: str  # sum, count
    expr: Optional["Expr"]
    var: str
    table: str
    where: Optional["Expr"]
    span: Span = attrs.field(eq=False)


Expr = Union[
    Literal, Name, FieldAccess, Lookup, HistoryLookup, AsOf, Unary, Binary, IsNone, Member,
    Rounded, Otherwise, Call, If, AtLeast, CountTrue, Aggregate,
]

EXPRESSION_TYPES = (
    Literal, Name, FieldAccess, Lookup, HistoryLookup, AsOf, Unary, Binary, IsNone, Member,
    Rounded, Otherwise, Call, If, AtLeast, CountTrue, Aggregate,
)


def conjuncts(expr: Optional[Expr]) -> list:
    """The parts of `a and b and …` in source order (none for no condition)."""
    found, stack = [], [expr] if expr is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, Binary) and node.op == "and":
            stack.extend([node.right, node.left])
        else:
            found.append(node)
    return found


def children(expr: Expr) -> tuple:
    """The direct sub-expressions of an expression, in source order."""
    if isinstance(expr, (Literal, Name)):
        return ()
    if isinstance(expr, FieldAccess):
        return (expr.target,)
    if isinstance(expr, Lookup):
        return (expr.target, *expr.keys)
    if isinstance(expr, HistoryLookup):
        return (expr.target, expr.key, expr.on)
    if isinstance(expr, AsOf):
        return (expr.target, expr.date)
    if isinstance(expr, (Unary, Rounded)):
        return (expr.operand,)
    if isinstance(expr, IsNone):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    if isinstance(expr, Member):
        return (expr.operand, *expr.items)
    if isinstance(expr, Otherwise):
        return (expr.operand, expr.fallback)
    if isinstance(expr, Call):
        return tuple(expr.args)
    if isinstance(expr, If):
        return (expr.condition, expr.then, expr.otherwise)
    if isinstance(expr, (AtLeast, CountTrue)):
        return tuple(expr.criteria)
    if isinstance(expr, Aggregate):
        return tuple(e for e in (expr.expr, expr.where) if e is not None)
    raise TypeError(f"not an expression: {expr!r}")


# ----------------------------------------------------------------------------- statements


@attrs.frozen
class Attribution:
    """`according to KEY, …` or `according to this rulebook`: where a section's words come
    from. It covers its section and the sections nested below, unless they say otherwise."""

    keys: tuple  # source keys; empty for the rulebook's own text
    own: bool
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class RulebookHeader:
    id: str
    title: Optional[str]
    version: Optional[str]
    in_force_from: Optional[dt.date]
    amends: Optional[str]
    sources: tuple
    # (rulebook id, date): from that date the model this rulebook encodes is replaced by that
    # rulebook; running this one on a later date is warned of (RulebookHeader.replaced_on).
    replaced_by: Optional[tuple]
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class EnumDecl:
    name: str
    values: tuple
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class FieldDecl:
    name: str
    type_name: str
    optional: bool
    default: Optional[Expr]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class HistoryClause:
    """A table that records, per key, which row holds on which dates (a listing)."""

    of_table: str
    by_field: str
    from_field: str
    until_field: Optional[str]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class TableDecl:
    """A table of input records. An `optional` table may be absent from the input: then it
    has no records (a history of koncern memberships that a region may not keep)."""

    name: str
    key: Optional[str]
    dated_by: Optional[str]
    history: Optional[HistoryClause]
    fields: tuple
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)
    optional: bool = False


@attrs.frozen
class RowKey:
    """One key of a parameter row: a closed or open integer range, an enum value, or `any`
    (all three None): every value of the key."""

    low: Optional[int]
    high: Optional[int]
    enum_value: Optional[str]
    span: Span = attrs.field(eq=False)

    def __str__(self) -> str:
        return row_key_text((self.low, self.high, self.enum_value))


def statement_kind(statement) -> str:
    """How a statement is named in messages, outlines and indexes: `rule`, `exception`,
    `parameter`, `example`…"""
    if isinstance(statement, RuleDecl):
        return "exception" if statement.is_exception else "rule"
    return _STATEMENT_KINDS.get(type(statement).__name__, "statement")


def statement_name(statement) -> str:
    """What a statement declares or is about: a rule's label, an example's title, a name."""
    for attribute in ("label", "title", "name", "id"):
        value = getattr(statement, attribute, None)
        if isinstance(value, str):
            return value
    return ""


_STATEMENT_KINDS = {"Repeal": "repeal", "ExampleDecl": "example", "ParameterDecl": "parameter",
                    "OutputDecl": "output", "TableDecl": "table", "EnumDecl": "enum", "DefinitionDecl": "definition",
                    "DataDecl": "data", "WarningDecl": "warning", "RulebookHeader": "rulebook header",
                    "Attribution": "according to"}


def row_key_text(key: tuple) -> str:
    """A row key (low, high, enum value) as a rulebook writes it: `physical`, `0 to 6`,
    `85 and over`, `any`."""
    low, high, enum_value = key
    if enum_value is not None:
        return enum_value
    if low is None:
        return "any"
    return f"{low} to {high}" if high is not None else f"{low} and over"


@attrs.frozen
class ParamRow:
    """One row of a keyed parameter: one key per dimension, and the value."""

    keys: tuple  # of RowKey
    value: Expr
    span: Span = attrs.field(eq=False)


@attrs.frozen
class ParamValue:
    value: Optional[Expr]
    rows: tuple
    valid_from: Optional[dt.date]
    valid_until: Optional[dt.date]
    status: Optional[str]
    cite: Optional[str]
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class ParameterDecl:
    name: str
    type_name: Optional[str]  # None for `amend parameter`
    key_types: tuple  # type names of the keys; empty for a parameter with one value per period
    values: tuple
    amend: bool
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class DefinitionDecl:
    name: str
    table: Optional[str]
    type_name: Optional[str]
    expr: Expr
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class OutputDecl:
    name: str
    type_name: str
    table: str
    default: Optional[Expr]
    payee: Optional[Expr]
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class WarningDecl:
    """A condition on the input as a whole that, when it holds, is reported with a message:
    input that the rules read but that does not look like what the provision assumes."""

    name: str
    condition: Expr
    message: str
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class RuleDecl:
    """A labelled definition of an output; an exception names the labels it overrides."""

    label: str
    output: Optional[str]  # None for exceptions: the output comes from what they override
    exception_to: tuple
    valid_from: Optional[dt.date]
    valid_until: Optional[dt.date]
    condition: Optional[Expr]
    value: Expr
    amend: bool
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)

    @property
    def is_exception(self) -> bool:
        return bool(self.exception_to)


@attrs.frozen
class Repeal:
    """`repeal rule L from DATE`: an amending rulebook ends an inherited rule or exception.

    The rule keeps its own provision for the dates it was in force; explanations name the
    repealing provision for the dates after."""

    kind: str  # "rule" or "exception"
    label: str
    from_date: dt.date
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class RecordLiteral:
    fields: tuple  # of (name, Expr, Span)
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Given:
    table: str
    records: tuple
    span: Span = attrs.field(eq=False)


@attrs.frozen
class DataDecl:
    name: str
    givens: tuple
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


@attrs.frozen
class Expectation:
    output: str
    record_id: str
    value: Expr
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Assumption:
    """`assuming parameter = value`: an example worked under another reading of a parameter."""

    parameter: str
    value: Expr
    span: Span = attrs.field(eq=False)


@attrs.frozen
class ExampleDecl:
    title: str
    using: Optional[str]
    on: Optional[dt.date]
    assumptions: tuple
    givens: tuple
    expectations: tuple
    span: Span = attrs.field(eq=False)
    provision: Provision = attrs.field(eq=False)


Statement = Union[
    RulebookHeader, Attribution, EnumDecl, TableDecl, ParameterDecl, DefinitionDecl, OutputDecl,
    RuleDecl, Repeal, WarningDecl, DataDecl, ExampleDecl,
]


@attrs.frozen
class RulebookSyntax:
    """One parsed rulebook file: its header and statements, before any checking."""

    path: str
    header: Optional[RulebookHeader]
    statements: tuple
    text: str = attrs.field(eq=False, repr=False)
    # Every section's provision, prose-only sections included (their quotations are checked too).
    provisions: tuple = attrs.field(eq=False, repr=False, default=())
    # The text of each held source document by name (None: named as a file but not found).
    documents: dict = attrs.field(eq=False, repr=False, factory=dict)
    # What reading the Markdown found worth a warning (rules written outside a block).
    warnings: tuple = attrs.field(eq=False, repr=False, default=())
