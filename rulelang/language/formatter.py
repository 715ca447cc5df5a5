"""Canonical layout of a rulebook's code blocks (`rulelang fmt`); the prose is not touched.

Like gofmt, the formatter keeps the author's line breaks and canonicalises the rest: every
statement starts at the block's margin; the clauses of a statement (`value`, `field`,
`when`, `then`, `given`, `expect`…) stand at their fixed depth, and `row`, `status` and
`cite` under a value one level deeper; a continuation line of an expression moves with the
clause it continues, so what the author aligned stays aligned. Within a line, one space
separates tokens, none stands inside brackets or before `,` `:` `.`, a call or lookup
touches its name, a unary minus touches its operand, and amounts read `300 kr`, `10 %`.
Trailing spaces go, tabs become spaces, and at most one blank line separates statements.

A block is rewritten only when its new text parses to the same syntax tree as the old: the
formatter can change how a rulebook looks, never what it says. Formatting is idempotent.
Blocks inside a list or a block quote are left as they are.
"""

from __future__ import annotations

import re
from typing import Optional

import attrs

from . import literate
from .diagnostics import Diagnostic, RulebookError
from .parser import parse_block
from .syntax import Provision, Span

INDENT = "  "

# Clauses that continue a statement, at one indent; those that continue a value, at two.
CLAUSES = frozenset({"value", "field", "key", "dated", "history", "optional", "when", "then", "from", "until",
                     "given", "expect", "using", "assuming", "on", "title", "version", "source", "amends", "replaced",
                     "in", "says", "default", "paid", "by"})
VALUE_CLAUSES = frozenset({"row", "status", "cite"})

_TOKEN = re.compile(r"""
    (?P<string>"([^"\\\n]|\\["\\n])*")
  | (?P<comment>\#[^\n]*)
  | (?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})
  | (?P<money>[0-9]+(?:\.[0-9]+)?)[ \t]*(?P<unit>kr|kronor)(?!\w)
  | (?P<percent>[0-9]+(?:\.[0-9]+)?)[ \t]*%
  | (?P<number>[0-9]+(?:\.[0-9]+)?)
  | (?P<name>(?![0-9])\w+)
  | (?P<operator><=|>=|!=|≠|≤|≥|<|>|=|\+|-|\*|/|×)
  | (?P<punctuation>[()\[\]{},:.])
  | (?P<space>[ \t]+)
  | (?P<other>.)
""", re.VERBOSE)

# Words of the language (they are reserved): a `(` after one of them opens a group, not a call.
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "none", "true", "false", "if", "then", "else", "when",
                      "from", "until", "to", "of", "on", "per", "by", "at", "least", "number", "sum", "count",
                      "for", "where", "rounded", "otherwise", "as", "any"}) | literate.STATEMENT_KEYWORDS


@attrs.frozen
class Token:
    kind: str
    text: str


def _tokens(line: str) -> Optional[list]:
    """The tokens of one line, spaces dropped; None when the line holds something the
    language does not (it is then left as written)."""
    tokens = []
    for match in _TOKEN.finditer(line):
        kind = match.lastgroup
        if kind == "space":
            continue
        if kind == "other":
            return None
        if match.group("money") is not None:
            tokens.append(Token("amount", f"{match.group('money')} {match.group('unit')}"))
        elif match.group("percent") is not None:
            tokens.append(Token("amount", f"{match.group('percent')} %"))
        elif kind == "unit":
            continue
        else:
            tokens.append(Token(kind, match.group()))
    return tokens


def _operand_ends(token: Token) -> bool:
    """Whether a token ends an operand (so a `-` after it subtracts, a `(` after it calls)."""
    if token.kind in ("string", "date", "amount", "number"):
        return True
    if token.kind == "name":
        return token.text not in KEYWORDS or token.text in ("none", "true", "false")
    return token.text in (")", "]", "}")


def _spaced(tokens: list) -> str:
    """One line's tokens with canonical spaces between them."""
    out = ""
    previous: Optional[Token] = None
    unary = False
    for token in tokens:
        if previous is None:
            out = token.text
        else:
            space = " "
            if token.text in (",", ":", ")", "]", "}", ".") or previous.text in ("(", "[", "{", ".") or unary:
                space = ""
            elif token.text == "[":
                space = ""
            elif token.text == "(" and previous.kind == "name" and previous.text not in KEYWORDS:
                space = ""  # a call
            out += space + token.text
        unary = token.text == "-" and (previous is None or not _operand_ends(previous))
        previous = token
    return out


def _depth(first: str) -> Optional[int]:
    if first in literate.STATEMENT_KEYWORDS:
        return 0
    if first in CLAUSES:
        return 1
    if first in VALUE_CLAUSES:
        return 2
    return None


def format_block(text: str) -> str:
    """A code block's text in canonical layout (see the module's docstring): the same lines,
    runs of blank lines squeezed to one and none at either end."""
    entries = []  # ("blank",) | ("comment", indent, text) | ("code", indent, tokens or None, text)
    for line in text.replace("\t", "    ").split("\n"):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if not stripped:
            entries.append(("blank",))
        elif stripped.startswith("#"):
            entries.append(("comment", indent, stripped))
        else:
            entries.append(("code", indent, _tokens(stripped), stripped))
    # Each code line's new indent; a continuation line moves as far as its clause moved.
    placed: dict = {}
    shift = 0
    for index, entry in enumerate(entries):
        if entry[0] != "code":
            continue
        _, indent, tokens, _ = entry
        depth = _depth(tokens[0].text) if tokens else None
        if depth is not None:
            placed[index] = len(INDENT) * depth
            shift = placed[index] - indent
        else:
            placed[index] = max(len(INDENT), indent + shift)
    # A comment line stands as the code line after it stands when that line starts a statement
    # or clause, else moves as far as that line did.
    lines: list = []
    for index, entry in enumerate(entries):
        if entry[0] == "blank":
            if lines and lines[-1] != "":
                lines.append("")
            continue
        if entry[0] == "code":
            _, indent, tokens, stripped = entry
            lines.append(" " * placed[index] + (_spaced(tokens) if tokens is not None else stripped))
            continue
        _, indent, comment = entry
        after = next((i for i in range(index + 1, len(entries)) if entries[i][0] == "code"), None)
        if after is None:
            lines.append(" " * indent + comment)
            continue
        code_indent, tokens = entries[after][1], entries[after][2]
        starts = tokens and _depth(tokens[0].text) is not None
        lines.append(" " * (placed[after] if starts else max(0, indent + placed[after] - code_indent)) + comment)
    while lines and lines[-1] == "":
        lines.pop()
    while lines and lines[0] == "":
        lines.pop(0)
    return "\n".join(lines)


_PROVISION = Provision("", "", 0)


def _meaning(node):
    """A syntax tree as values, without where its nodes stand or how a literal was spelled
    (`300kr` and `300 kr` are one amount)."""
    if isinstance(node, Span):
        return None
    if attrs.has(type(node)):
        return (type(node).__name__, tuple((field.name, _meaning(getattr(node, field.name)))
                                           for field in attrs.fields(type(node))
                                           if field.name not in ("span", "provision", "text")))
    if isinstance(node, (tuple, list)):
        return tuple(_meaning(item) for item in node)
    return node


def _same_statements(old: str, new: str) -> bool:
    try:
        return _meaning(parse_block(old, "<old>", 0, _PROVISION)) == _meaning(parse_block(new, "<new>", 0, _PROVISION))
    except RulebookError:
        return False


@attrs.frozen
class Formatted:
    text: str
    changed_blocks: int
    kept_blocks: tuple  # first lines of blocks left as written (they would not parse the same)


def format_rulebook(text: str, path: str = "<rulebook>") -> Formatted:
    """The rulebook's text with every `rulelang` block at the margin in canonical layout.
    Raises RulebookError, at places in `path`, when a block does not parse (nothing is
    formatted then)."""
    lines = text.split("\n")
    read = literate.document(text)
    if read.fence_problems:
        raise RulebookError([Diagnostic("error", problem.message, Span(path, problem.line, problem.column,
                                                                       problem.line, problem.column + 3))
                             for problem in read.fence_problems], {path: text})
    changed, kept = 0, []
    replacements = []
    for block in read.blocks:
        start = block.first_line - 1  # 0-based index of the block's first line
        fence = lines[start - 1]
        if fence[:1] not in ("`", "~"):  # indented, in a list or a block quote: left as written
            continue
        count = block.text.count("\n")  # the content ends with the line before the closing fence
        original = "\n".join(lines[start:start + count])
        try:  # a block that does not parse is an error
            parse_block(original, path, start, _PROVISION)
        except RulebookError as error:
            raise RulebookError(error.diagnostics, {path: text}) from None
        new = format_block(original)
        if new == original:
            continue
        if not _same_statements(original, new):
            kept.append(block.first_line)
            continue
        replacements.append((start, count, new))
        changed += 1
    for start, count, new in reversed(replacements):
        lines[start:start + count] = new.split("\n")
    return Formatted("\n".join(lines), changed, tuple(kept))
