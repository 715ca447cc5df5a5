"""The parser: the grammar itself, positioned syntax errors, literals and spans, robustness."""

from __future__ import annotations

import datetime as dt
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rulebook_factory import write_rulebook

import rulelang
from rulelang.language import parser, syntax
from rulelang.language.diagnostics import RulebookError
from rulelang.language.parser import parse_rulebook

FILE = "book.md"

# A small literate rulebook: prose, a header block, then a heading and the block under test.
# The block under test starts on line 12 of the file, so every position below is counted in
# the whole Markdown file, not in the block.
PREFIX = (
    "# Test rulebook\n"                 # 1
    "\n"                                # 2
    "Some prose before the rules.\n"    # 3
    "\n"                                # 4
    "```rulelang\n"                     # 5
    'rulebook "test/x"\n'               # 6
    "```\n"                             # 7
    "\n"                                # 8
    "## 1 Provision\n"                  # 9
    "\n"                                # 10
    "```rulelang\n"                     # 11
)
FIRST_BODY_LINE = 12

DECLARATIONS = """\
enum visit_mode: physical, video, phone
table visits
  key visit_id
  dated by date
  field visit_id: text
  field date: date
  field mode: visit_mode
parameter belopp: money
  value 300 kr from 2021-02-01 status verified cite "seed.txt"
output tillägg: money per visits default 0 kr
"""


def document(body: str) -> str:
    return PREFIX + body + "\n```\n"


def parse(body: str) -> syntax.RulebookSyntax:
    return parse_rulebook(document(body), FILE)


def parse_error(body: str) -> RulebookError:
    with pytest.raises(RulebookError) as caught:
        parse(body)
    return caught.value


def only_diagnostic(error: RulebookError):
    assert len(error.diagnostics) == 1, error.format()
    return error.diagnostics[0]


def statements_of(body: str, kind):
    return [s for s in parse(body).statements if isinstance(s, kind)]


def definition_expr(expression: str):
    (decl,) = statements_of(f"definition d = {expression}", syntax.DefinitionDecl)
    return decl.expr


# --------------------------------------------------------------------------- the grammar


def test_grammar_is_a_strict_lalr_grammar_without_conflicts():
    # strict=True makes Lark refuse shift/reduce conflicts and colliding terminals.
    built = parser.build_parser(strict=True)
    assert built.options.parser == "lalr"
    assert built.options.lexer == "basic"


def test_shipped_parser_tables_match_the_grammar():
    tables = Path(parser.__file__).with_name(parser.TABLES_FILE)
    stored = json.loads(tables.read_text(encoding="utf-8"))
    assert stored["grammar_sha256"] == parser.grammar_digest()


def test_the_tables_are_read_back_with_every_number_key_a_number_again():
    """read_tables turns back only the maps it knows Lark keys by number; reading every
    object with a hook must give the same tables, so no number key anywhere is left a text."""
    text = Path(parser.__file__).with_name(parser.TABLES_FILE).read_text(encoding="utf-8")
    every = json.loads(text, object_pairs_hook=lambda pairs: {int(k) if k.isdigit() else k: v for k, v in pairs})
    assert parser.read_tables(text) == every


def test_the_parser_loaded_from_the_tables_builds_the_same_trees_as_a_fresh_one():
    block = DECLARATIONS + "rule r defines tillägg when mode = physical then belopp * 2 rounded down to öre"
    assert parser.lark_parser().parse(block) == parser.build_parser().parse(block)


POSITION_FIELDS = ("line", "column", "end_line", "end_column", "start_pos", "end_pos", "container_line",
                   "container_column", "container_end_line", "container_end_column", "empty")


def _positions(tree):
    return [(node.data, [getattr(node.meta, name, None) for name in POSITION_FIELDS]) for node in tree.iter_subtrees()]


def test_every_node_of_every_shipped_rulebook_has_the_position_lark_itself_gives():
    """The parser hands a passed-through child back without Lark's position bookkeeping
    (parser._Positions); every node of every block of every shipped rulebook, with the
    parentheses, empty options and one-child rules they hold, must be placed as Lark places it."""
    from rulelang.language import literate
    from rulelang.language.loader import all_rulebook_ids, locate

    lark_own = parser.build_parser()
    assert type(lark_own.parser.parser.parser.callbacks[next(iter(lark_own.rules))]).__name__ == "PropagatePositions"
    quicker = parser.lark_parser()
    assert all(type(c) is parser._Positions for c in quicker.parser.parser.parser.callbacks.values())
    nodes = 0
    for rulebook in all_rulebook_ids():
        for block in literate.document(locate(rulebook)[0].read_text(encoding="utf-8")).blocks:
            ours, theirs = _positions(quicker.parse(block.text)), _positions(lark_own.parse(block.text))
            assert ours == theirs, rulebook
            nodes += len(ours)
    assert nodes > 5000


# --------------------------------------------------------------------------- positioned syntax errors


def test_missing_then_points_at_the_value_that_follows_the_condition():
    body = DECLARATIONS + "rule fysiskt defines tillägg when mode = physical belopp"
    diagnostic = only_diagnostic(parse_error(body))
    # The rule is the 11th line of the body: line 12 + 10 = 22; `belopp` starts in column 51.
    assert (diagnostic.span.line, diagnostic.span.column) == (22, 51)
    assert (diagnostic.span.end_line, diagnostic.span.end_column) == (22, 57)
    assert diagnostic.message.startswith("unexpected 'belopp'; expected ")
    assert str(diagnostic.span) == "book.md:22:51"


def test_missing_then_at_the_end_of_the_block_says_then_is_expected():
    diagnostic = only_diagnostic(parse_error("rule fysiskt defines tillägg when mode = physical"))
    assert diagnostic.message == "unexpected end of the block; expected 'then'"
    # At the end of a block Lark reports the last token read: `physical`, in column 42.
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 42)


def test_bad_character_is_reported_where_it_stands():
    diagnostic = only_diagnostic(parse_error("definition d = 1 @ 2"))
    assert diagnostic.message == "unexpected character '@'"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 18)


def test_bad_character_error_formats_with_file_line_column_and_caret():
    error = parse_error("definition d = 1 @ 2")
    assert error.format().splitlines() == [
        "book.md:12:18: error: unexpected character '@'",
        "    definition d = 1 @ 2",
        "                     ^",
    ]


def test_unclosed_paren_at_the_end_of_the_block_points_at_the_last_token():
    diagnostic = only_diagnostic(parse_error("definition d = (1 + 2"))
    assert diagnostic.message == "unexpected end of the block; expected ')'"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 21)


def test_unclosed_paren_followed_by_a_statement_points_at_that_statement():
    diagnostic = only_diagnostic(parse_error("definition d = (1 + 2\ndefinition e = 3"))
    assert diagnostic.message == "unexpected 'definition'; expected ')'"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE + 1, 1)
    assert diagnostic.span.end_column == 1 + len("definition")


def test_impossible_date_is_positioned_on_the_date():
    body = "parameter p: money\n  value 300 kr from 2021-02-30 status seed"
    diagnostic = only_diagnostic(parse_error(body))
    assert diagnostic.message == "2021-02-30 is not a date in the calendar"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE + 1, 21)
    assert diagnostic.span.end_column == 21 + len("2021-02-30")


def test_impossible_date_in_the_rulebook_header_is_positioned_too():
    text = "# T\n\n```rulelang\nrulebook \"t/x\"\n  in force from 2021-13-01\n```\n"
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(text, FILE)
    diagnostic = only_diagnostic(caught.value)
    assert diagnostic.message == "2021-13-01 is not a date in the calendar"
    assert (diagnostic.span.line, diagnostic.span.column) == (5, 17)


def test_money_with_a_fraction_of_an_ore_is_refused_where_it_stands():
    body = "parameter p: money\n  value 0.005 kr status seed"
    diagnostic = only_diagnostic(parse_error(body))
    assert diagnostic.message == "0.005 kr has a fraction of an öre; money is exact to the öre"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE + 1, 9)


def test_money_with_trailing_zeros_beyond_the_ore_is_exact_and_accepted():
    assert definition_expr("0.050 kr").value == 5


def test_every_syntax_error_of_every_block_is_reported_in_file_order():
    text = (
        "# T\n"                           # 1
        "\n"                              # 2
        "```rulelang\n"                   # 3
        "definition a = 1 @ 2\n"          # 4
        "```\n"                           # 5
        "\n"                              # 6
        "Prose between blocks.\n"         # 7
        "\n"                              # 8
        "```rulelang\n"                   # 9
        "\n"                              # 10
        "definition b = 2021-02-30\n"     # 11
        "```\n"
    )
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(text, FILE)
    found = [(d.span.line, d.span.column, d.message) for d in caught.value.diagnostics]
    assert found == [
        (4, 18, "unexpected character '@'"),
        (11, 16, "2021-02-30 is not a date in the calendar"),
    ]


def test_code_blocks_in_other_languages_are_prose():
    text = "# T\n\n```python\ndefinition d = 1 @ 2\n```\n\n```rulelang\nrulebook \"t/x\"\n```\n"
    book = parse_rulebook(text, FILE)
    assert book.header.id == "t/x"
    assert book.statements == ()


@pytest.mark.parametrize(
    "text, line",
    [
        pytest.param("# T\n\n- item\n\n  ```rulelang\n  definition d = 1 @ 2\n  ```\n", 6, id="in-a-list-item"),
        pytest.param("# T\n\n> ```rulelang\n> definition d = 1 @ 2\n> ```\n", 4, id="in-a-block-quote"),
        pytest.param("# T\n\n   ```rulelang\n   definition d = 1 @ 2\n   ```\n", 4, id="indented-fence"),
        pytest.param("# T\n\n1. a\n2. b\n   ```rulelang\n   definition d = 1 @ 2\n   ```\n", 6,
                     id="in-a-numbered-list"),
        pytest.param("# T\r\n\r\n```rulelang\r\ndefinition d = 1 @ 2\r\n```\r\n", 4, id="crlf-lines"),
        pytest.param("# T\n\n~~~rulelang\ndefinition d = 1 @ 2\n~~~\n", 4, id="tilde-fence"),
    ],
)
def test_error_columns_are_columns_of_the_file_wherever_the_fence_stands(text, line):
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(text, FILE)
    diagnostic = only_diagnostic(caught.value)
    assert diagnostic.message == "unexpected character '@'"
    assert diagnostic.span.line == line
    file_line = re.split(r"\r\n?|\n", text)[line - 1]
    assert file_line[diagnostic.span.column - 1] == "@"


# --------------------------------------------------------------------------- limits


def test_deeply_nested_expression_is_refused_with_the_limit_not_a_recursion_error():
    expression = "(1 + " * 200 + "1" + ")" * 200
    diagnostic = only_diagnostic(parse_error(f"definition d = {expression}"))
    assert parser.MAX_EXPRESSION_DEPTH == 64
    assert diagnostic.message == "expression nested deeper than 64 levels; split it into definitions"
    # Nodes are built from the inside out; the 65th addition from the inside is the 136th
    # `(1 + ` from the left, whose `1` stands at column 16 + 5 × 135 + 1.
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 16 + 5 * 135 + 1)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("not " * 200 + "true", id="not"),
        pytest.param("1 + " * 200 + "1", id="left-assoc-sum"),
        pytest.param("min(" * 200 + "1" + ", 1)" * 200, id="calls"),
        pytest.param("if true then " * 200 + "1" + " else 2" * 200, id="if"),
    ],
)
def test_every_kind_of_200_level_nesting_hits_the_depth_limit(expression):
    diagnostic = only_diagnostic(parse_error(f"definition d = {expression}"))
    assert diagnostic.message.startswith("expression nested deeper than 64 levels")
    assert diagnostic.span.line == FIRST_BODY_LINE


def _right_nested_sum(levels: int) -> str:
    """`1 + (1 + (… (1 + 1)))`: `levels` additions, each the right operand of the one before."""
    return "1 + (" * (levels - 1) + "1 + 1" + ")" * (levels - 1)


def test_nesting_exactly_at_the_limit_is_accepted():
    expr = definition_expr(_right_nested_sum(parser.MAX_EXPRESSION_DEPTH))
    depth = 0
    while isinstance(expr, syntax.Binary):
        depth, expr = depth + 1, expr.right
    assert depth == 64


def test_nesting_one_past_the_limit_is_refused():
    diagnostic = only_diagnostic(parse_error("definition d = " + _right_nested_sum(parser.MAX_EXPRESSION_DEPTH + 1)))
    assert diagnostic.message == "expression nested deeper than 64 levels; split it into definitions"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 16)


def test_parentheses_alone_do_not_nest():
    assert definition_expr("(" * 300 + "7" + ")" * 300).value == 7


def test_absurdly_deep_nesting_is_a_positioned_error_not_a_recursion_error():
    diagnostic = only_diagnostic(parse_error("definition d = " + "not " * 5000 + "true"))
    assert diagnostic.message == "expression nested deeper than 64 levels; split it into definitions"
    # At the part of the expression where the nesting passes what can be read.
    assert diagnostic.span.line == FIRST_BODY_LINE and 16 < diagnostic.span.column < 16 + 4 * 5000


def test_a_number_too_long_to_read_is_a_positioned_error():
    diagnostic = only_diagnostic(parse_error("definition d = " + "9" * 5000))
    assert diagnostic.message.startswith("the number 99999")
    assert "is too long" in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 16)


def test_an_amount_too_long_to_read_is_a_positioned_error():
    diagnostic = only_diagnostic(parse_error("definition d = " + "9" * 5000 + " kr"))
    assert "is too long" in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 16)


def test_a_file_larger_than_the_limit_is_refused_at_its_first_line():
    text = document("# " + "x" * parser.MAX_FILE_BYTES)
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(text, FILE)
    diagnostic = only_diagnostic(caught.value)
    assert diagnostic.message == "the rulebook is larger than 2 MB"
    assert str(diagnostic.span) == "book.md:1:1"


def test_too_many_statements_are_refused():
    body = "\n".join(f"definition d{i} = {i}" for i in range(parser.MAX_STATEMENTS + 1))
    diagnostic = only_diagnostic(parse_error(body))
    assert diagnostic.message == (
        f"the rulebook has {parser.MAX_STATEMENTS + 2} statements; the limit is {parser.MAX_STATEMENTS}")
    assert str(diagnostic.span) == "book.md:1:1"


def test_a_second_rulebook_header_is_an_error_at_the_second():
    diagnostic = only_diagnostic(parse_error('rulebook "again"'))
    assert diagnostic.message == "a rulebook has one `rulebook` header; this is a second"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 1)


def test_a_header_clause_given_twice_is_an_error():
    text = '# T\n\n```rulelang\nrulebook "t/x"\n  version "1"\n  version "2"\n```\n'
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(text, FILE)
    diagnostic = only_diagnostic(caught.value)
    assert diagnostic.message == "the rulebook header says `version` twice"
    assert (diagnostic.span.line, diagnostic.span.column) == (4, 1)


def test_an_output_clause_given_twice_is_an_error():
    diagnostic = only_diagnostic(parse_error("output o: money per visits default 0 kr default 1 kr"))
    assert diagnostic.message == "output o says `default` twice"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 1)


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    "text, kind, value",
    [
        ("300 kr", "money", 300 * 100),
        ("300 kronor", "money", 300 * 100),
        ("300kr", "money", 300 * 100),
        ("110.50 kr", "money", 110 * 100 + 50),
        ("110.5 kr", "money", 110 * 100 + 50),
        ("0.01 kr", "money", 1),
        ("-300 kr", "money", -300 * 100),
        ("-110.50 kr", "money", -(110 * 100 + 50)),
        ("80 %", "decimal", Fraction(4, 5)),
        ("80%", "decimal", Fraction(4, 5)),
        ("12.5 %", "decimal", Fraction(1, 8)),
        ("0.333", "decimal", Fraction(333, 1000)),
        ("-1.5", "decimal", Fraction(-3, 2)),
        ("42", "integer", 42),
        ("-42", "integer", -42),
        ("2021-02-01", "date", dt.date(2021, 2, 1)),
        ("2024-02-29", "date", dt.date(2024, 2, 29)),
        ('"a \\"quoted\\" text"', "text", 'a "quoted" text'),
        ("true", "boolean", True),
        ("false", "boolean", False),
        ("none", "none", None),
    ],
)
def test_literals_are_read_exactly(text, kind, value):
    literal = definition_expr(text)
    assert isinstance(literal, syntax.Literal)
    assert (literal.kind, literal.value) == (kind, value)
    assert type(literal.value) is type(value)


def test_money_is_integer_ore_and_decimals_are_exact_fractions():
    assert definition_expr("0.10 kr").value == 10
    assert isinstance(definition_expr("0.1").value, Fraction)
    assert definition_expr("0.1").value == Fraction(1, 10)  # not the binary float 0.1


def test_kr_glued_to_a_name_is_not_money():
    # `300 krona` is the number 300 followed by the name `krona`, which does not parse.
    diagnostic = only_diagnostic(parse_error("definition d = 300 krona"))
    assert diagnostic.message.startswith("unexpected 'krona'")
    assert diagnostic.span.column == 20


def test_negation_of_a_non_literal_is_a_unary_node():
    expr = definition_expr("-belopp")
    assert isinstance(expr, syntax.Unary) and expr.op == "-"
    assert expr.operand == syntax.Name("belopp", None)


def test_comparisons_do_not_chain():
    diagnostic = only_diagnostic(parse_error("definition d = a < b < c"))
    assert diagnostic.message.startswith("unexpected '<'")
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 22)


def test_unicode_operators_mean_the_ascii_ones():
    assert definition_expr("a × b") == definition_expr("a * b")
    assert definition_expr("a ≤ b") == definition_expr("a <= b")
    assert definition_expr("a ≥ b") == definition_expr("a >= b")
    assert definition_expr("a ≠ b") == definition_expr("a != b")


def test_multiplication_binds_tighter_than_addition_and_rounding_applies_to_the_whole_sum():
    expr = definition_expr("a + b * c rounded half up to öre")
    assert isinstance(expr, syntax.Rounded)
    assert (expr.mode, expr.unit) == ("half up", "öre")
    assert expr.operand == syntax.Binary(
        "+", syntax.Name("a", None), syntax.Binary("*", syntax.Name("b", None), syntax.Name("c", None), None), None)


def test_comments_are_ignored():
    expr = definition_expr("1 # one\n + 2 # two")
    assert expr == syntax.Binary("+", syntax.Literal("integer", 1, "1", None),
                                 syntax.Literal("integer", 2, "2", None), None)


def test_keywords_are_reserved():
    diagnostic = only_diagnostic(parse_error("definition rule = 1"))
    assert diagnostic.message == "'rule' is a reserved word of the language and cannot be used as a name here"
    assert (diagnostic.span.line, diagnostic.span.column) == (FIRST_BODY_LINE, 12)


# --------------------------------------------------------------------------- spans


def _walk(expr):
    yield expr
    for child in syntax.children(expr):
        yield from _walk(child)


def _source_of(text: str, span: syntax.Span) -> str:
    lines = text.split("\n")
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1:span.end_column - 1]
    parts = [lines[span.line - 1][span.column - 1:]]
    parts += lines[span.line:span.end_line - 1]
    parts.append(lines[span.end_line - 1][:span.end_column - 1])
    return "\n".join(parts)


SPAN_BODY = DECLARATIONS + """\
definition rate = 80 %
rule fysiskt defines tillägg
  from 2021-02-01
  when mode = physical and not (date < 2021-03-01)
  then belopp * rate
    rounded half up to öre
exception video to fysiskt when mode in {video, phone} then -110.50 kr
definition ålder per visits = days_between(2021-01-01, date) otherwise 0
"""


def test_every_literal_and_name_span_covers_exactly_its_source_text():
    text = document(SPAN_BODY)
    book = parse_rulebook(text, FILE)
    expressions = []
    for statement in book.statements:
        if isinstance(statement, syntax.RuleDecl):
            expressions += [statement.condition, statement.value]
        elif isinstance(statement, syntax.DefinitionDecl):
            expressions.append(statement.expr)
        elif isinstance(statement, syntax.ParameterDecl):
            expressions += [v.value for v in statement.values]
    checked = 0
    for root in filter(None, expressions):
        for node in _walk(root):
            source = _source_of(text, node.span)
            if isinstance(node, syntax.Literal):
                assert source == node.text, node
                checked += 1
            elif isinstance(node, syntax.Name):
                assert source == node.name, node
                checked += 1
    assert checked == 15


def test_compound_spans_run_from_the_first_operand_to_the_last():
    text = document(SPAN_BODY)
    book = parse_rulebook(text, FILE)
    rule = next(s for s in book.statements if isinstance(s, syntax.RuleDecl) and s.label == "fysiskt")
    assert _source_of(text, rule.condition.span) == "mode = physical and not (date < 2021-03-01)"
    assert _source_of(text, rule.value.span) == "belopp * rate\n    rounded half up to öre"
    assert (rule.span.line, rule.span.column) == (FIRST_BODY_LINE + 11, 1)
    assert (rule.value.span.line, rule.value.span.end_line) == (FIRST_BODY_LINE + 14, FIRST_BODY_LINE + 15)


def test_statements_know_the_heading_and_rulebook_they_stand_under():
    book = parse(SPAN_BODY)
    rule = next(s for s in book.statements if isinstance(s, syntax.RuleDecl))
    assert rule.provision.heading == "1 Provision"
    assert rule.provision.rulebook == "test/x"


# --------------------------------------------------------------------------- robustness


def _check_diagnostics(text: str) -> None:
    """Parsing `text` either works or raises RulebookError whose diagnostics point into the file."""
    try:
        parse_rulebook(text, FILE)
    except RulebookError as error:
        assert error.diagnostics
        line_count = len(re.split(r"\r\n?|\n", text))
        for diagnostic in error.diagnostics:
            assert diagnostic.message.strip()
            assert diagnostic.severity == "error"
            span = diagnostic.span
            assert span is not None and span.file == FILE
            assert 1 <= span.line <= line_count
            assert span.column >= 1
            assert span.end_line >= span.line
        assert error.format().startswith(f"{FILE}:")


KEYWORDS = sorted(
    t.pattern.value for t in parser.lark_parser().terminals if t.pattern.type == "str")

NAMES = st.from_regex(r"[a-zåäö_][a-zåäö_0-9]{0,6}", fullmatch=True)
NUMBERS = st.integers(min_value=0, max_value=10**7).map(str)
DECIMALS = st.tuples(st.integers(0, 9999), st.integers(0, 9999)).map(lambda p: f"{p[0]}.{p[1]}")
MONEY = st.tuples(NUMBERS, st.sampled_from(["", ".5", ".50", ".005", ".123"]),
                  st.sampled_from([" kr", "kr", " kronor"])).map("".join)
PERCENT = st.tuples(st.integers(0, 200), st.sampled_from([" %", "%", ".5 %"])).map(lambda p: f"{p[0]}{p[1]}")
DATES = st.tuples(st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99)).map(
    lambda p: f"{p[0]:04d}-{p[1]:02d}-{p[2]:02d}")
STRINGS = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters='"\\\n'),
                  max_size=8).map(lambda s: f'"{s}"')  # files are UTF-8: no lone surrogates
PUNCTUATION = st.sampled_from(["<", "<=", ">", ">=", "!=", "≠", "≤", "≥", "*", "/", "×", "%",
                               "@", "#c\n", "\n", "\t", "  ", "`", "\\", '"', "{", "}"])
TOKEN = st.one_of(st.sampled_from(KEYWORDS), NAMES, NUMBERS, DECIMALS, MONEY, PERCENT, DATES,
                  STRINGS, PUNCTUATION)
TOKEN_TEXT = st.lists(TOKEN, max_size=40).map(" ".join)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.text())
def test_arbitrary_text_in_a_block_gives_only_positioned_rulebook_errors(body):
    _check_diagnostics(document(body))


@PROPERTY
@given(TOKEN_TEXT)
def test_grammar_like_token_soup_gives_only_positioned_rulebook_errors(body):
    _check_diagnostics(document(body))


@PROPERTY
@given(st.lists(TOKEN_TEXT, min_size=1, max_size=4))
def test_token_soup_in_several_blocks_gives_only_positioned_rulebook_errors(bodies):
    text = "# T\n\n" + "\n\nProse.\n\n".join(f"```rulelang\n{b}\n```" for b in bodies) + "\n"
    _check_diagnostics(text)


MARKDOWN_LINE = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=30),
    st.sampled_from(["# Heading", "## 2 Sub", "- item", "1. item", "> quote", "    indented code",
                     "```", "```python", "~~~", "<div>", "</div>", "---", "***", "| a | b |", "",
                     "<!-- comment", "-->", "[link]: http://x", "*emphasis*"]),
)
MARKDOWN = st.lists(MARKDOWN_LINE, max_size=8).map(lambda lines: "\n".join(lines))


@PROPERTY
@given(MARKDOWN, st.text())
def test_arbitrary_markdown_around_a_block_gives_only_positioned_rulebook_errors(prose, body):
    _check_diagnostics(prose + "\n\n```rulelang\n" + body + "\n```\n\n" + prose)


@PROPERTY
@given(MARKDOWN, MARKDOWN, st.integers(0, 5))
def test_a_bad_character_is_found_at_its_line_and_column_whatever_markdown_surrounds_it(before, after, blank):
    # Prose that is not itself an open fence or HTML block leaves the rulelang block intact.
    text = before + "\n\n```rulelang\n" + "\n" * blank + "definition d = 1 @ 2\n```\n\n" + after
    try:
        parse_rulebook(text, FILE)
    except RulebookError as error:
        diagnostic = only_diagnostic(error)
        assert diagnostic.message == "unexpected character '@'"
        line = text.split("\n")[diagnostic.span.line - 1]
        assert line[diagnostic.span.column - 1] == "@"
    else:
        # Only an unclosed fence or an HTML block in the prose above can swallow the block.
        assert "```" in before or "~~~" in before or "<" in before


def test_the_shipped_rulebook_parses_and_loads():
    book = rulelang.load("stockholm/hlv-2021")
    assert book.id == "stockholm/hlv-2021"
    assert "tilläggsersättning" in book.outputs


def test_assumptions_may_be_written_on_one_line_or_on_several():
    one_line = 'example "e" on 2021-03-01 assuming a = 1, b = true given t: {x: 1} expect o of "1" = 1'
    several = 'example "e" on 2021-03-01 assuming a = 1 assuming b = true given t: {x: 1} expect o of "1" = 1'
    for body in (one_line, several):
        (example,) = statements_of(body, syntax.ExampleDecl)
        assert [a.parameter for a in example.assumptions] == ["a", "b"]


def test_a_warning_holds_its_name_condition_and_message():
    (warning,) = statements_of('warning för_få when 1 < 2 says "too few"', syntax.WarningDecl)
    assert (warning.name, warning.message) == ("för_få", "too few")
    assert isinstance(warning.condition, syntax.Binary) and warning.condition.op == "<"


# ------------------------------------------------------------------------ nothing silently ignored


@pytest.mark.parametrize("info", ["rule-lang", "Rulelang", "RULELANG", "rulelan", "rule_lang", "rule lang"])
def test_a_block_fenced_under_a_name_close_to_rulelang_is_an_error_at_its_fence(info):
    text = PREFIX.replace("## 1 Provision\n\n```rulelang\n", f"## 1 Provision\n\n```{info}\n") + \
        "definition d = 1\n```\n"
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(text, FILE)
    diagnostic = only_diagnostic(caught.value)
    assert (diagnostic.span.line, diagnostic.span.column) == (11, 1)
    assert f"a block fenced as `{info}` is not read as rules" in diagnostic.message
    assert "write ```rulelang" in diagnostic.message


@pytest.mark.parametrize("info", ["python", "text", "json", "rulebook"])
def test_blocks_in_other_languages_stay_prose(info):
    text = PREFIX + "definition d = 1\n```\n\n```" + info + "\nsomething = 1\n```\n"
    assert parse_rulebook(text, FILE).statements


def test_an_unclosed_fence_is_reported_at_the_line_that_opened_it_not_at_the_prose_below():
    text = PREFIX + "definition d = 1\n\n## 2 Next provision\n\nProse, not rules.\n\n" \
        "```rulelang\ndefinition e = 2\n```\n"
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(text, FILE)
    diagnostic = only_diagnostic(caught.value)
    assert diagnostic.span.line == 11
    assert "this ```rulelang block is never closed" in diagnostic.message


def test_an_unclosed_fence_at_the_end_of_the_file_is_reported_where_it_opens():
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(PREFIX + "definition d = 1 @ 2\n", FILE)
    assert only_diagnostic(caught.value).span.line == 11


def test_an_example_written_after_the_closing_fence_is_a_warning_where_it_stands():
    text = PREFIX + "definition d = 1\n```\n\n" + \
        'example "after the fence"\n  expect d of "X" = 1\n\nrule of thumb: prose that merely begins like a rule.\n'
    book = parse_rulebook(text, FILE)
    (warning,) = book.warnings
    assert warning.severity == "warning"
    assert warning.span.line == 15  # the line of `example`
    assert "reads as rulelang (example) but stands outside a ```rulelang block" in warning.message


def test_rules_in_a_fence_without_a_language_are_a_warning():
    text = PREFIX + "definition d = 1\n```\n\n```\nrule r defines d then 2\n```\n"
    (warning,) = parse_rulebook(text, FILE).warnings
    assert warning.span.line == 16 and "(rule)" in warning.message


def test_the_warning_for_rules_outside_a_block_reaches_check(tmp_path):
    path = write_rulebook(tmp_path, "definition d = 1")
    with path.open("a", encoding="utf-8") as text:
        text.write('\nexample "after the fence"\n  expect d of "X" = 1\n')
    book = rulelang.load(str(path))
    assert any("outside a ```rulelang block" in w.message for w in book.warnings)


# ------------------------------------------------------------------------ every error, with Swedish habits named


@pytest.mark.parametrize("body, hint", [
    ("definition d = 110,50 kr", "a decimal is written with a point: 110.50, not 110,50"),
    ("definition d = 40 000 kr", "a number is written without spaces between its digits: 40000, not 40 000"),
    ("definition d = 1 > 0 och 2 > 1", "write `and`, not `och`"),
    ("definition d = 1 > 0 eller 2 > 1", "write `or`, not `eller`"),
    ("definition d = inte 1 > 0", "write `not`, not `inte`"),
])
def test_a_swedish_way_of_writing_gets_the_rulelang_way_named(body, hint):
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(PREFIX + body + "\n```\n", FILE)
    diagnostic = only_diagnostic(caught.value)
    assert diagnostic.span.line == FIRST_BODY_LINE
    assert hint in diagnostic.message


def test_every_statement_with_a_syntax_error_is_reported_in_one_run():
    body = ("parameter rule: money\n  value 1 kr from 2021-01-01\n"
            "definition fine = 1\n"
            "parameter table: money\n  value 1 kr from 2021-01-01\n"
            "definition d = 110,50 kr\n")
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(PREFIX + body + "```\n", FILE)
    found = [(d.span.line, d.message) for d in caught.value.diagnostics]
    assert [line for line, _ in found] == [FIRST_BODY_LINE, FIRST_BODY_LINE + 3, FIRST_BODY_LINE + 5]
    assert "'rule' is a reserved word" in found[0][1]
    assert "'table' is a reserved word" in found[1][1]
    assert "110.50" in found[2][1]
