"""Parse rulebook text into the syntax tree (Lark, LALR), keeping a span on every node.

The LALR tables are built from `grammar.lark` once and shipped as `parser_tables.json`
(plain JSON, no pickle), because building them takes ~300 ms and loading them ~15 ms.
`python -m rulelang.parser` rebuilds the file; a test keeps it in step with the grammar.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

import attrs
from lark import Lark, Token, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.grammar import Rule
from lark.lexer import TerminalDef

from . import literate
from .diagnostics import Diagnostic, RulebookError, did_you_mean
from .syntax import (
    Aggregate,
    AsOf,
    Assumption,
    AtLeast,
    Attribution,
    Binary,
    Call,
    CountTrue,
    DataDecl,
    DefinitionDecl,
    EnumDecl,
    ExampleDecl,
    Expectation,
    FieldAccess,
    FieldDecl,
    Given,
    HistoryClause,
    HistoryLookup,
    If,
    IsNone,
    Literal,
    Lookup,
    Member,
    Name,
    Otherwise,
    OutputDecl,
    ParameterDecl,
    ParamRow,
    ParamValue,
    Provision,
    Quotation,
    RecordLiteral,
    Repeal,
    Rounded,
    RowKey,
    RulebookHeader,
    RulebookSyntax,
    RuleDecl,
    Source,
    Span,
    TableDecl,
    Unary,
    WarningDecl,
    statement_kind,
)

GRAMMAR_FILE = "grammar.lark"
TABLES_FILE = "parser_tables.json"
PARSER_OPTIONS = dict(parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=True)

MAX_FILE_BYTES = 2_000_000
MAX_EXPRESSION_DEPTH = 64
MAX_STATEMENTS = 5_000

# Readable names for the terminals a syntax error may expect.
TERMINAL_NAMES = {
    "NAME": "a name", "STRING": "a quoted text", "DATE": "a date (YYYY-MM-DD)",
    "INT": "a whole number", "DECIMAL": "a decimal number", "MONEY": "an amount (300 kr)",
    "PERCENT": "a percentage (80 %)", "COMPARE": "a comparison (=, <, …)",
    "EQ": "'='", "PLUS": "'+'", "MUL_OP": "* or /", "ROUND_UNIT": "öre or kronor",
    "$END": "the end of the block", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
    "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','", "COLON": "':'",
    "DOT": "'.'", "MINUS": "'-'",
}


def _grammar_text() -> str:
    return resources.files(__package__).joinpath(GRAMMAR_FILE).read_text(encoding="utf-8")


def grammar_digest() -> str:
    return hashlib.sha256(_grammar_text().encode("utf-8")).hexdigest()


def read_tables(text: str) -> dict:
    """The stored tables as Lark wrote them: JSON made every number key a text, and the
    maps Lark keys by number are put back (the parse states and their actions, the tokens,
    the memo). Only those are walked: a hook on every JSON object doubled the read."""
    stored = json.loads(text)
    parser = stored["data"]["parser"]["parser"]
    parser["states"] = {int(state): {int(token): action for token, action in actions.items()}
                        for state, actions in parser["states"].items()}
    for holder, key in ((parser, "tokens"), (stored, "memo")):
        holder[key] = {int(number): value for number, value in holder[key].items()}
    return stored


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The LALR parser: from the shipped tables when they match the grammar, else built."""
    try:
        stored = read_tables(resources.files(__package__).joinpath(TABLES_FILE).read_text(encoding="utf-8"))
        if stored.get("grammar_sha256") == grammar_digest():
            return _with_quicker_positions(
                Lark._load_from_dict(stored["data"], stored["memo"], propagate_positions=True))
    except (FileNotFoundError, ValueError, KeyError):
        pass
    return _with_quicker_positions(build_parser())


def _first_position(children):
    """Where the first child with a position is (Lark's rule: a non-empty tree, or a token)."""
    for child in children:
        if isinstance(child, Tree):
            if not child.meta.empty:
                return child.meta
        elif isinstance(child, Token):
            return child
    return None


class _Positions:
    """Lark's PropagatePositions, with the same result, a quarter less time: a rule that
    passes its one child through (`?rule`, most of an expression's precedence levels) is
    handed back at once, its position already what Lark would make it. The start and the
    end are written out one after the other: a helper over attribute names took back half
    of what this saves."""

    __slots__ = ("node_builder",)

    def __init__(self, node_builder):
        self.node_builder = node_builder

    def __call__(self, children):
        node = self.node_builder(children)
        if len(children) == 1 and node is children[0] or not isinstance(node, Tree):
            return node
        meta = node.meta
        first = _first_position(children)
        if first is not None:
            line = getattr(first, "container_line", first.line)
            column = getattr(first, "container_column", first.column)
            start = getattr(first, "container_start_pos", first.start_pos)
            if not hasattr(meta, "line"):
                meta.line, meta.column, meta.start_pos, meta.empty = line, column, start, False
            meta.container_line, meta.container_column, meta.container_start_pos = line, column, start
        last = _first_position(reversed(children))
        if last is not None:
            line = getattr(last, "container_end_line", last.end_line)
            column = getattr(last, "container_end_column", last.end_column)
            end = getattr(last, "container_end_pos", last.end_pos)
            if not hasattr(meta, "end_line"):
                meta.end_line, meta.end_column, meta.end_pos, meta.empty = line, column, end, False
            meta.container_end_line, meta.container_end_column, meta.container_end_pos = line, column, end
        return node


def _with_quicker_positions(parser: Lark) -> Lark:
    """The parser with each rule's PropagatePositions swapped for _Positions (a test holds
    the positions equal); a Lark whose insides differ is left as it is."""
    from lark.parse_tree_builder import PropagatePositions

    try:
        callbacks = parser.parser.parser.parser.callbacks
    except AttributeError:
        return parser
    if isinstance(callbacks, dict):
        for rule, callback in callbacks.items():
            if type(callback) is PropagatePositions and callback.node_filter is None:
                callbacks[rule] = _Positions(callback.node_builder)
    return parser


def build_parser(strict: bool = False) -> Lark:
    return Lark(_grammar_text(), strict=strict, **PARSER_OPTIONS)


def write_tables(path: Optional[Path] = None) -> Path:
    """Rebuild `parser_tables.json` from the grammar."""
    parser = build_parser()
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    target = path or Path(__file__).with_name(TABLES_FILE)
    target.write_text(
        json.dumps({"grammar_sha256": grammar_digest(), "data": data, "memo": memo},
                   separators=(",", ":"), sort_keys=True),
        encoding="utf-8",
    )
    return target


class _Positioned(Exception):
    """A problem found while building the tree, with the span it concerns."""

    def __init__(self, message: str, span: Span):
        super().__init__(message)
        self.message = message
        self.span = span


MONEY_PATTERN = re.compile(r"^([0-9]+)(?:\.([0-9]+))?\s*(?:kr|kronor)$")


class _ToSyntax:
    """Lark's parse tree → frozen syntax nodes, with spans moved to the file's own lines."""

    def __init__(self, file: str, line_offset: int, provision: Provision):
        self.file = file
        self.line_offset = line_offset
        self.provision = provision
        self.depth: dict[int, int] = {}

    def transform(self, tree: Tree):
        """Bottom up: the method named by each rule gets the node's position and its children
        transformed (a rule without one stays a tree). Lark's Transformer does the same but
        wraps each method anew on every call (v_args), a third of the time it took."""
        children = [self.transform(child) if isinstance(child, Tree) else child for child in tree.children]
        method = getattr(self, tree.data, None)
        if method is None:
            return Tree(tree.data, children, tree.meta)
        return method(tree.meta, children)

    # ---- positions
    def span(self, meta) -> Span:
        if getattr(meta, "empty", False) or not hasattr(meta, "line"):
            return Span(self.file, self.line_offset + 1, 1, self.line_offset + 1, 1)
        return Span(self.file, meta.line + self.line_offset, meta.column,
                    meta.end_line + self.line_offset, meta.end_column)

    def token_span(self, token: Token) -> Span:
        return Span(self.file, token.line + self.line_offset, token.column,
                    token.end_line + self.line_offset, token.end_column)

    def nest(self, node, *parts):
        """Record the nesting depth of an expression; refuse absurdly deep ones."""
        depth = 1 + max((self.depth.get(id(p), 0) for p in parts), default=0)
        if depth > MAX_EXPRESSION_DEPTH:
            raise _Positioned(
                f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels; split it into definitions",
                node.span)
        self.depth[id(node)] = depth
        return node

    # ---- literals
    def whole_number(self, digits: str, token: Token) -> int:
        """`int(digits)`, but a number too long for Python to read is the author's error, not a crash."""
        try:
            return int(digits)
        except ValueError:
            shown = digits if len(digits) <= 12 else digits[:12] + "…"
            raise _Positioned(f"the number {shown} is too long ({len(digits)} digits)",
                              self.token_span(token)) from None

    def money(self, meta, children):
        token = children[0]
        match = MONEY_PATTERN.match(str(token).strip())
        whole, fraction = match.group(1), match.group(2) or ""
        if len(fraction) > 2 and fraction[2:].strip("0"):
            raise _Positioned(f"{token} has a fraction of an öre; money is exact to the öre",
                              self.token_span(token))
        ore = self.whole_number(whole, token) * 100 + int((fraction + "00")[:2])
        return Literal("money", ore, str(token), self.token_span(token))

    def percent(self, meta, children):
        token = children[0]
        number = str(token).rstrip("% \t")
        return Literal("decimal", Fraction(Decimal(number)) / 100, str(token), self.token_span(token))

    def decimal(self, meta, children):
        token = children[0]
        return Literal("decimal", Fraction(Decimal(str(token))), str(token), self.token_span(token))

    def integer(self, meta, children):
        token = children[0]
        return Literal("integer", self.whole_number(str(token), token), str(token), self.token_span(token))

    def date(self, meta, children):
        token = children[0]
        return Literal("date", self.parse_date(token), str(token), self.token_span(token))

    def text(self, meta, children):
        token = children[0]
        return Literal("text", self.unquote(token), str(token), self.token_span(token))

    def true(self, meta, children):
        return Literal("boolean", True, "true", self.span(meta))

    def false(self, meta, children):
        return Literal("boolean", False, "false", self.span(meta))

    def none(self, meta, children):
        return Literal("none", None, "none", self.span(meta))

    def parse_date(self, token: Token) -> dt.date:
        try:
            return dt.date.fromisoformat(str(token))
        except ValueError:
            raise _Positioned(f"{token} is not a date in the calendar", self.token_span(token)) from None

    @staticmethod
    def unquote(token: Token) -> str:
        return str(token)[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")

    # ---- expressions
    def name(self, meta, children):
        return Name(str(children[0]), self.span(meta))

    def field_access(self, meta, children):
        target, field = children
        return self.nest(FieldAccess(target, str(field), self.span(meta)), target)

    def lookup(self, meta, children):
        target, *keys = children
        return self.nest(Lookup(target, tuple(keys), self.span(meta)), target, *keys)

    def history_lookup(self, meta, children):
        target, key, on = children
        return self.nest(HistoryLookup(target, key, on, self.span(meta)), target, key, on)

    def as_of(self, meta, children):
        target, date = children
        return self.nest(AsOf(target, date, self.span(meta)), target, date)

    def negate(self, meta, children):
        _, operand = children
        if isinstance(operand, Literal) and operand.kind in ("money", "integer", "decimal"):
            return Literal(operand.kind, -operand.value, "-" + operand.text, self.span(meta))
        return self.nest(Unary("-", operand, self.span(meta)), operand)

    def not_(self, meta, children):
        (operand,) = children
        return self.nest(Unary("not", operand, self.span(meta)), operand)

    def _binary(self, op, meta, left, right):
        return self.nest(Binary(op, left, right, self.span(meta)), left, right)

    def arith(self, meta, children):
        left, op, right = children
        return self._binary({"×": "*"}.get(str(op), str(op)), meta, left, right)

    def compare(self, meta, children):
        left, op, right = children
        return self._binary({"≠": "!=", "≤": "<=", "≥": ">="}.get(str(op), str(op)), meta, left, right)

    def and_(self, meta, children):
        return self._binary("and", meta, *children)

    def or_(self, meta, children):
        return self._binary("or", meta, *children)

    def is_none(self, meta, children):
        return self.nest(IsNone(children[0], False, self.span(meta)), children[0])

    def is_not_none(self, meta, children):
        return self.nest(IsNone(children[0], True, self.span(meta)), children[0])

    def set_literal(self, meta, children):
        return tuple(children)

    def member(self, meta, children):
        operand, items = children
        return self.nest(Member(operand, items, False, self.span(meta)), operand, *items)

    def not_member(self, meta, children):
        operand, items = children
        return self.nest(Member(operand, items, True, self.span(meta)), operand, *items)

    def round_mode(self, meta, children):
        return " ".join(str(c) for c in children)

    def round_unit(self, meta, children):
        return str(children[0])

    def rounded(self, meta, children):
        operand, mode, unit = children
        return self.nest(Rounded(operand, mode, str(unit), self.span(meta)), operand)

    def otherwise(self, meta, children):
        operand, fallback = children
        return self.nest(Otherwise(operand, fallback, self.span(meta)), operand, fallback)

    def call(self, meta, children):
        function, *args = children
        args = tuple(a for a in args if a is not None)
        return self.nest(Call(str(function), args, self.span(meta)), *args)

    def if_(self, meta, children):
        return self.nest(If(*children, self.span(meta)), *children)

    def at_least(self, meta, children):
        threshold, *criteria = children
        return self.nest(AtLeast(self.whole_number(str(threshold), threshold), tuple(criteria), self.span(meta)),
                         *criteria)

    def count_true(self, meta, children):
        return self.nest(CountTrue(tuple(children), self.span(meta)), *children)

    def aggregate_filter(self, meta, children):
        return children[0]

    def sum_of(self, meta, children):
        expr, var, table, *where = children
        where = where[0] if where else None
        parts = [p for p in (expr, where) if p is not None]
        return self.nest(Aggregate("sum", expr, str(var), str(table), where, self.span(meta)), *parts)

    def count_of(self, meta, children):
        var, table, *where = children
        where = where[0] if where else None
        parts = [where] if where is not None else []
        return self.nest(Aggregate("count", None, str(var), str(table), where, self.span(meta)), *parts)

    # ---- rulebook header
    def title(self, meta, children):
        return ("title", self.unquote(children[0]))

    def version(self, meta, children):
        return ("version", self.unquote(children[0]))

    def in_force_from(self, meta, children):
        return ("in_force_from", self.parse_date(children[0]))

    def amends(self, meta, children):
        return ("amends", self.unquote(children[0]))

    def replaced_by(self, meta, children):
        return ("replaced_by", (self.unquote(children[0]), self.parse_date(children[1])))

    def source(self, meta, children):
        names = [c for c in children if c.type == "NAME"]
        texts = [self.unquote(c) for c in children if c.type == "STRING"]
        if not names:
            raise _Positioned(f"a source needs a short name that sections cite it by: "
                              f"source NAME \"{texts[0]}\" \"title\"", self.span(meta))
        return ("source", Source(str(names[0]), texts[0], texts[1] if len(texts) > 1 else None,
                                 self.span(meta)))

    def according_to(self, meta, children):
        return Attribution(tuple(str(c) for c in children), False, self.span(meta), self.provision)

    def according_to_rulebook(self, meta, children):
        return Attribution((), True, self.span(meta), self.provision)

    def rulebook_decl(self, meta, children):
        ident, *clauses = children
        found = {"title": None, "version": None, "in_force_from": None, "amends": None, "replaced_by": None}
        sources = []
        for key, value in clauses:
            if key == "source":
                sources.append(value)
            elif found[key] is not None:
                raise _Positioned(f"the rulebook header says `{key.replace('_', ' ')}` twice", self.span(meta))
            else:
                found[key] = value
        return RulebookHeader(self.unquote(ident), found["title"], found["version"],
                              found["in_force_from"], found["amends"], tuple(sources), found["replaced_by"],
                              self.span(meta), self.provision)

    # ---- declarations
    def enum_decl(self, meta, children):
        name, *values = children
        return EnumDecl(str(name), tuple(str(v) for v in values), self.span(meta), self.provision)

    def table_key(self, meta, children):
        return ("key", str(children[0]))

    def table_dated(self, meta, children):
        return ("dated_by", str(children[0]))

    def table_optional(self, meta, children):
        return ("optional", True)

    def table_history(self, meta, children):
        of_table, by_field, from_field, *until = children
        return ("history", HistoryClause(str(of_table), str(by_field), str(from_field),
                                         str(until[0]) if until else None, self.span(meta)))

    def field_optional(self, meta, children):
        return ("optional", True)

    def field_default(self, meta, children):
        return ("default", children[0])

    def field_decl(self, meta, children):
        name, type_name, *options = children
        opts = dict(options)
        return FieldDecl(str(name), str(type_name), bool(opts.get("optional")) or "default" in opts,
                         opts.get("default"), self.span(meta))

    def table_decl(self, meta, children):
        name, *rest = children
        clauses = {k: v for k, v in (c for c in rest if isinstance(c, tuple))}
        fields = tuple(c for c in rest if isinstance(c, FieldDecl))
        return TableDecl(str(name), clauses.get("key"), clauses.get("dated_by"),
                         clauses.get("history"), fields, self.span(meta), self.provision,
                         bool(clauses.get("optional")))

    def param_key(self, meta, children):
        return ("key", tuple(str(c) for c in children))

    def valid_from(self, meta, children):
        return ("from", self.parse_date(children[0]))

    def valid_until(self, meta, children):
        return ("until", self.parse_date(children[0]))

    def validity(self, meta, children):
        return dict(children)

    def value_status(self, meta, children):
        return ("status", str(children[0]))

    def value_cite(self, meta, children):
        return ("cite", self.unquote(children[0]))

    def range_closed(self, meta, children):
        return RowKey(self.whole_number(str(children[0]), children[0]),
                      self.whole_number(str(children[1]), children[1]), None, self.span(meta))

    def range_open(self, meta, children):
        return RowKey(self.whole_number(str(children[0]), children[0]), None, None, self.span(meta))

    def row_any(self, meta, children):
        return RowKey(None, None, None, self.span(meta))

    def row_enum(self, meta, children):
        return RowKey(None, None, str(children[0]), self.span(meta))

    def param_row(self, meta, children):
        *keys, value = children
        return ParamRow(tuple(keys), value, self.span(meta))

    def param_value(self, meta, children):
        value, rows, validity, meta_items = None, [], {}, {}
        for child in children:
            if isinstance(child, ParamRow):
                rows.append(child)
            elif isinstance(child, dict):
                validity = child
            elif isinstance(child, tuple) and child and child[0] in ("status", "cite"):
                meta_items[child[0]] = child[1]
            elif child is not None:
                value = child
        return ParamValue(value, tuple(rows), validity.get("from"), validity.get("until"),
                          meta_items.get("status"), meta_items.get("cite"), self.span(meta),
                          self.provision)

    def parameter_decl(self, meta, children):
        name, type_name, *rest = children
        keys = next((c[1] for c in rest if isinstance(c, tuple) and c[0] == "key"), ())
        values = tuple(c for c in rest if isinstance(c, ParamValue))
        return ParameterDecl(str(name), str(type_name), keys, values, False, self.span(meta), self.provision)

    def amend_parameter(self, meta, children):
        name, *values = children
        return ParameterDecl(str(name), None, (), tuple(values), True, self.span(meta), self.provision)

    def per_table(self, meta, children):
        return ("per", str(children[0]))

    def definition_decl(self, meta, children):
        name, *rest = children
        table = next((c[1] for c in rest if isinstance(c, tuple)), None)
        names = [c for c in rest if isinstance(c, Token) and c.type == "NAME"]
        expr = rest[-1]
        return DefinitionDecl(str(name), table, str(names[0]) if names else None, expr,
                              self.span(meta), self.provision)

    def output_default(self, meta, children):
        return ("default", children[0])

    def output_payee(self, meta, children):
        return ("payee", children[0])

    def output_decl(self, meta, children):
        name, type_name, (_, table), *clauses = children
        opts = {}
        for key, value in clauses:
            if key in opts:
                raise _Positioned(f"output {name} says `{key}` twice", self.span(meta))
            opts[key] = value
        return OutputDecl(str(name), str(type_name), table, opts.get("default"), opts.get("payee"),
                          self.span(meta), self.provision)

    def rule_condition(self, meta, children):
        return ("when", children[0])

    def rule_body(self, meta, children):
        validity, *rest = children
        condition = next((c[1] for c in rest if isinstance(c, tuple)), None)
        return validity, condition, rest[-1]

    def rule_decl(self, meta, children, amend=False):
        label, output, (validity, condition, value) = children
        return RuleDecl(str(label), str(output), (), validity.get("from"), validity.get("until"),
                        condition, value, amend, self.span(meta), self.provision)

    def amend_rule(self, meta, children):
        return self.rule_decl(meta, children, amend=True)

    def exception_decl(self, meta, children, amend=False):
        label, *parents, (validity, condition, value) = children
        return RuleDecl(str(label), None, tuple(str(p) for p in parents), validity.get("from"),
                        validity.get("until"), condition, value, amend, self.span(meta), self.provision)

    def warning_decl(self, meta, children):
        name, condition, message = children
        return WarningDecl(str(name), condition, self.unquote(message), self.span(meta), self.provision)

    def repeal_rule(self, meta, children, kind="rule"):
        label, date = children
        return Repeal(kind, str(label), self.parse_date(date), self.span(meta), self.provision)

    def repeal_exception(self, meta, children):
        return self.repeal_rule(meta, children, kind="exception")

    def amend_exception(self, meta, children):
        return self.exception_decl(meta, children, amend=True)

    # ---- examples
    def field_value(self, meta, children):
        name, value = children
        return (str(name), value, self.token_span(name))

    def record_literal(self, meta, children):
        return RecordLiteral(tuple(c for c in children if c is not None), self.span(meta))

    def given(self, meta, children):
        table, *records = children
        return Given(str(table), tuple(records), self.span(meta))

    def data_decl(self, meta, children):
        name, *givens = children
        return DataDecl(str(name), tuple(givens), self.span(meta), self.provision)

    def example_using(self, meta, children):
        return ("using", str(children[0]))

    def example_on(self, meta, children):
        return ("on", self.parse_date(children[0]))

    def assumption(self, meta, children):
        name, _, value = children
        return Assumption(str(name), value, self.span(meta))

    def example_assuming(self, meta, children):
        return ("assuming", tuple(children))

    def expectation(self, meta, children):
        output, record, _, value = children
        return Expectation(str(output), self.unquote(record), value, self.span(meta))

    def example_decl(self, meta, children):
        title, *rest = children
        opts = dict(c for c in rest if isinstance(c, tuple) and c[0] != "assuming")
        # `assuming` may be one line of several, or several lines.
        assumptions = tuple(a for c in rest if isinstance(c, tuple) and c[0] == "assuming" for a in c[1])
        givens = tuple(c for c in rest if isinstance(c, Given))
        expectations = tuple(c for c in rest if isinstance(c, Expectation))
        return ExampleDecl(self.unquote(title), opts.get("using"), opts.get("on"), assumptions,
                           givens, expectations, self.span(meta), self.provision)

    def start(self, meta, children):
        return list(children)


EXPRESSION_START = {"NAME", "INT", "MONEY", "DATE", "STRING"}


def _describe_expected(expected) -> str:
    """What could have stood here: keywords first (they say most), then an expression, then punctuation."""
    expected = set(expected)
    words = sorted(f"'{t.lower()}'" for t in expected if t.isalpha() and t not in TERMINAL_NAMES)
    others = []
    if EXPRESSION_START <= expected:
        others.append("an expression")
        expected -= EXPRESSION_START | {"DECIMAL", "PERCENT", "MINUS", "LPAR", "NOT", "IF", "TRUE", "FALSE",
                                        "NONE", "AT", "NUMBER", "SUM", "COUNT"}
    others += sorted({TERMINAL_NAMES[t] for t in expected if t in TERMINAL_NAMES})
    others += sorted(f"'{t.lower()}'" for t in expected
                     if not t.isalpha() and t not in TERMINAL_NAMES and not t.startswith("__"))
    names = [n for n in words if n.strip("'").upper() in expected] + others
    if not names:
        return ""
    if len(names) > 8:
        names = names[:8] + ["…"]
    return "; expected " + ", ".join(names)


def _syntax_diagnostic(error: UnexpectedInput, file: str, line_offset: int, text: str = "") -> Diagnostic:
    line = getattr(error, "line", 1) or 1
    column = getattr(error, "column", 1) or 1
    if line < 1:
        line, column = 1, 1
    span = Span(file, line + line_offset, column, line + line_offset, column + 1)
    if isinstance(error, UnexpectedCharacters):
        message = f"unexpected character {error.char!r}"
        hint = _swedish_habit(text, error.pos_in_stream, error.char)
        if hint:
            message += f"; {hint}"
    elif isinstance(error, UnexpectedEOF):
        message = "the block ends too early" + _describe_expected(error.expected)
    elif isinstance(error, UnexpectedToken):
        token = error.token
        shown = "end of the block" if token.type == "$END" else repr(str(token))
        if token.type != "$END":
            span = Span(file, line + line_offset, column, token.end_line + line_offset
                        if token.end_line else line + line_offset,
                        token.end_column or column + 1)
        hint = _swedish_habit(text, token.start_pos, str(token)) if token.type != "$END" else None
        if hint:
            message = f"unexpected {shown}; {hint}"
        elif "NAME" in error.expected and str(token).isidentifier() and token.type != "NAME":
            message = f"{str(token)!r} is a reserved word of the language and cannot be used as a name here"
        else:
            message = f"unexpected {shown}" + _describe_expected(error.expected)
    else:
        message = "syntax error"
    return Diagnostic("error", message, span)


# Swedish words for the language's connectives, as a Swedish writer types them.
SWEDISH_CONNECTIVES = {"och": "and", "eller": "or", "inte": "not"}
_SPACES = re.compile("[ \u00a0]")


def _swedish_habit(text: str, start, found: str) -> Optional[str]:
    """What to write instead, where a parse error comes from a Swedish way of writing: a
    decimal comma (`110,50`), a space between thousands (`40 000`), `och`/`eller`/`inte`."""
    if start is None or not text or not found:
        return None
    before, after = text[:start], text[start + len(found):]
    if found[0] == "," and before[-1:].isdigit():
        part = re.match(r"\d+", found[1:] or after)
        if part:
            whole = re.search(r"\d+$", before).group()
            return f"a decimal is written with a point: {whole}.{part.group()}, not {whole},{part.group()}"
    if found[0].isdigit() and re.search("\\d[ \u00a0]$", before):
        whole = re.search("[\\d \u00a0]*\\d[ \u00a0]$", before).group().strip()
        digits = re.match(r"\d+", found).group()
        joined = _SPACES.sub("", whole) + digits
        return f"a number is written without spaces between its digits: {joined}, not {whole} {digits}"
    word = found.split()[0] if found.split() else found
    if word in SWEDISH_CONNECTIVES:
        return f"the language's words are English: write `{SWEDISH_CONNECTIVES[word]}`, not `{word}`"
    previous = re.search(r"(\w+)\s+$", before)
    if previous and previous.group(1) in SWEDISH_CONNECTIVES:
        said = previous.group(1)
        return f"the language's words are English: write `{SWEDISH_CONNECTIVES[said]}`, not `{said}`"
    return None


# After a syntax error, parsing resumes at the next line that begins with a statement keyword,
# so that one run reports the errors of every statement; this many at most per block.
MAX_SYNTAX_ERRORS = 20
_STATEMENT_START = re.compile(r"^[ \t]*(" + "|".join(sorted(literate.STATEMENT_KEYWORDS)) + r")\b")


def parse_block(text: str, file: str, line_offset: int, provision: Provision) -> list:
    """Parse one code block; raise RulebookError with a positioned diagnostic on bad text,
    one for each statement that has an error."""
    diagnostics: list = []
    remaining: Optional[str] = text
    while remaining is not None and len(diagnostics) < MAX_SYNTAX_ERRORS:
        try:
            tree = lark_parser().parse(remaining)
            _refuse_deep_trees(tree, file, line_offset)
            statements = _ToSyntax(file, line_offset, provision).transform(tree)
            if not diagnostics:
                return statements
            break
        except UnexpectedInput as error:
            diagnostics.append(_syntax_diagnostic(error, file, line_offset, remaining))
            error_line = getattr(error, "line", 1) or 1
        except _Positioned as problem:
            diagnostics.append(Diagnostic("error", problem.message, problem.span))
            error_line = problem.span.line - line_offset
        remaining = _after_line(remaining, error_line)
    raise RulebookError(diagnostics)


def _after_line(text: str, line: int) -> Optional[str]:
    """The text from the first statement that begins below `line` (1-based), the lines before
    it blanked so that positions stay those of the block; None when no statement follows."""
    lines = text.split("\n")
    for number in range(max(line, 1), len(lines)):
        if _STATEMENT_START.match(lines[number]):
            return "\n" * number + "\n".join(lines[number:])
    return None


# The parse tree of one expression level is a few nodes deep; a tree deeper than this holds
# an expression nested deeper than MAX_EXPRESSION_DEPTH, refused before the (recursive)
# transform reaches it.
MAX_TREE_DEPTH = 4 * MAX_EXPRESSION_DEPTH


def _refuse_deep_trees(tree, file: str, line_offset: int) -> None:
    """Walk the parse tree without recursion; refuse, where it starts, a part nested too deep."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            meta = node.meta
            line = getattr(meta, "line", 1)
            column = getattr(meta, "column", 1)
            raise _Positioned(f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels; "
                              "split it into definitions",
                              Span(file, line + line_offset, column, line + line_offset, column + 1))
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def parse_rulebook(text: str, path: str) -> RulebookSyntax:
    """Parse a whole literate rulebook file. Every syntax error in every block is reported."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise RulebookError([Diagnostic(
            "error", f"the rulebook is larger than {MAX_FILE_BYTES // 1_000_000} MB",
            Span(path, 1, 1, 1, 1))], {path: text})
    statements, diagnostics = [], []
    rulebook_id = Path(path).stem
    read = literate.document(text)
    sections, blocks = read.sections, read.blocks
    for problem in read.fence_problems:
        diagnostics.append(Diagnostic("error", problem.message,
                                      Span(path, problem.line, problem.column, problem.line, problem.column + 3)))
    for block in blocks:
        section = sections[block.section]
        provision = Provision(rulebook_id, section.heading or Path(path).name, section.line)
        try:
            statements.extend(parse_block(block.text, path, block.first_line - 1, provision))
        except RulebookError as error:
            diagnostics.extend(error.diagnostics)
    if diagnostics:
        raise RulebookError(diagnostics, {path: text})
    if len(statements) > MAX_STATEMENTS:
        raise RulebookError([Diagnostic(
            "error", f"the rulebook has {len(statements)} statements; the limit is {MAX_STATEMENTS}",
            Span(path, 1, 1, 1, 1))], {path: text})
    headers = [s for s in statements if isinstance(s, RulebookHeader)]
    if len(headers) > 1:
        raise RulebookError([Diagnostic("error", "a rulebook has one `rulebook` header; this is a second",
                                        headers[1].span)], {path: text})
    header = headers[0] if headers else None
    body = tuple(s for s in statements if not isinstance(s, RulebookHeader))
    rulebook_id = header.id if header is not None else rulebook_id
    provisions = _provisions(sections, body, header, rulebook_id, path, diagnostics)
    if diagnostics:
        raise RulebookError(diagnostics, {path: text})
    body = tuple(_with_provision(s, provisions[s.provision.line]) for s in body)
    if header is not None:
        header = _with_provision(header, provisions[header.provision.line])
    return RulebookSyntax(path, header, body, text, tuple(provisions.values()),
                          warnings=tuple(_rules_outside_blocks(read.loose, path)))


def _rules_outside_blocks(loose: list, path: str) -> list:
    """A warning for each text outside the `rulelang` blocks that reads as rulelang statements
    (an example written after the closing fence, rules in an unmarked fence): they are not
    part of the rulebook, and nothing else would say so."""
    found = []
    for text in loose:
        try:
            statements = parse_block(text.text, path, text.first_line - 1, Provision("", "", 0))
        except RulebookError:
            continue
        if statements:
            kinds = ", ".join(dict.fromkeys(statement_kind(st) for st in statements))
            found.append(Diagnostic(
                "warning", f"this text reads as rulelang ({kinds}) but stands outside a ```rulelang block, "
                           "so it is not part of the rulebook; fence it as ```rulelang, or reword it as prose",
                Span(path, text.first_line, 1, text.first_line, 2)))
    return found


def _provisions(sections: list, body: tuple, header: Optional[RulebookHeader], rulebook_id: str,
                path: str, diagnostics: list) -> dict:
    """Each section's provision (by heading line): its heading, the sources its words come
    from (its own `according to`, or the nearest section above it that has one) and the
    quotations in its prose."""
    sources: dict = {}
    for source in header.sources if header is not None else ():
        if source.key in sources:
            diagnostics.append(Diagnostic("error", f"source {source.key} is declared twice; the first is at "
                                                   f"{sources[source.key].span}", source.span))
        sources.setdefault(source.key, source)
    said: dict = {}  # section line → Attribution
    for statement in body:
        if isinstance(statement, Attribution):
            line = statement.provision.line
            if line in said:
                diagnostics.append(Diagnostic(
                    "error", f"this section already says where its words come from, at {said[line].span}",
                    statement.span))
                continue
            said[line] = statement
            for key in statement.keys:
                if key not in sources:
                    known = ", ".join(sorted(sources)) or "none: declare them in the header with `source`"
                    diagnostics.append(Diagnostic(
                        "error", f"no source {key} is declared in the rulebook header"
                                 f"{did_you_mean(key, sources)}; the sources are {known}", statement.span))
    provisions: dict = {}
    for index, section in enumerate(sections):
        attribution, at = None, index
        while at is not None and attribution is None:
            attribution = said.get(sections[at].line)
            at = sections[at].parent
        cited = tuple(sources[k] for k in attribution.keys if k in sources) if attribution else ()
        quotes = tuple(Quotation(q.text, Span(path, q.line, q.column, q.end_line, q.column + 2))
                       for q in section.quotes)
        provisions[section.line] = Provision(
            rulebook_id, section.heading or Path(path).name, section.line, cited,
            bool(attribution and attribution.own), quotes)
    return provisions


def _with_provision(statement, provision: Provision):
    """A statement under its section's provision, once the header and attributions are read."""
    if isinstance(statement, ParameterDecl):
        values = tuple(attrs.evolve(v, provision=provision) for v in statement.values)
        return attrs.evolve(statement, provision=provision, values=values)
    return attrs.evolve(statement, provision=provision)


if __name__ == "__main__":
    print(f"wrote {write_tables()}")
