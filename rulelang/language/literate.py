"""Split a literate rulebook (Markdown) into sections: headings, prose, quotations, code.

The provision text is ordinary Markdown prose; rules stand in fenced blocks whose info
string is `rulelang`. The heading a block stands under is the citation of every
statement in it. A quotation of a source is an emphasis whose text stands in double
quotes, `*"Från och med den 1 februari 2021 …"*`: those are the words an explanation
shows beside the rules of the section.
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Iterator, Optional

import attrs

CODE_LANGUAGE = "rulelang"

_NEWLINE = re.compile(r"\r\n?|\n")  # the line breaks markdown-it counts lines by
OPENING_QUOTES = '"“„”'
CLOSING_QUOTES = '"”“'
_QUOTE_START = re.compile(r"[*_][" + OPENING_QUOTES + "]")


@attrs.frozen
class CodeBlock:
    """The text of one fenced block, with the line (1-based) its first line stands on."""

    text: str
    first_line: int
    heading: str
    heading_level: int
    section: int = 0  # index into `sections(text)`


@attrs.frozen
class QuotedWords:
    """A quotation in the prose: its words (markup removed, lines joined) and where it opens."""

    text: str
    line: int
    column: int
    end_line: int


@attrs.frozen
class Section:
    """A heading and the prose under it, up to the next heading of any level.

    Section 0 is the text before the first heading. `parent` is the nearest section above
    with a lower level: a section's attribution covers the sections nested in it."""

    heading: str
    level: int
    line: int
    prose: str
    parent: Optional[int] = None
    quotes: tuple = ()  # of QuotedWords


@attrs.frozen
class FenceProblem:
    """A fence that hides rules from the reader of the rulebook: fenced under a name close to
    `rulelang` but not it, or never closed. `line` and `column` are where the fence opens."""

    line: int
    column: int
    message: str


@attrs.frozen
class LooseText:
    """Text outside any `rulelang` block that begins with a statement keyword: a paragraph,
    an indented block or a fence with no info string. It may be rules that the author meant to
    fence; the parser says whether it reads as rulelang."""

    text: str
    first_line: int


@attrs.frozen
class Document:
    """A literate rulebook as Markdown: its sections, its `rulelang` blocks, and what around
    them may hide rules (see FenceProblem, LooseText)."""

    sections: list
    blocks: list
    fence_problems: list
    loose: list


# The words a rulelang statement begins with (grammar.lark, `statement`).
STATEMENT_KEYWORDS = frozenset({"rulebook", "according", "enum", "table", "parameter", "amend", "definition",
                                "output", "rule", "repeal", "exception", "warning", "data", "example"})


def sections(text: str) -> list[Section]:
    """The sections of a document, in order, section 0 being the text before any heading."""
    return document(text).sections


def code_blocks(text: str) -> Iterator[CodeBlock]:
    """Every `rulelang` block of a Markdown document, in order, with its section."""
    yield from document(text).blocks


def close_to_rulelang(info: str) -> bool:
    """An info string that is not `rulelang` but was surely meant to be: another case, a
    hyphen or space inside, a letter missing or doubled (`Rulelang`, `rule-lang`, `rulelan`)."""
    if info == CODE_LANGUAGE or not info:
        return False
    squeezed = re.sub(r"[\W_]+", "", info.lower())
    return squeezed == CODE_LANGUAGE or difflib.SequenceMatcher(None, squeezed, CODE_LANGUAGE).ratio() >= 0.8


def _closed(token, file_lines: list) -> bool:
    """Whether a fence has its closing line: markdown-it runs an unclosed fence to the end of
    the file, and a fence that meets another fence's opening line swallowed that block."""
    last = file_lines[token.map[1] - 1] if token.map[1] - 1 < len(file_lines) else ""
    last = re.sub(r"^[\s>]*", "", last).strip()  # a fence may stand in a block quote
    char = token.markup[0]
    closes = (token.map[1] - token.map[0] >= 2 and last.startswith(token.markup)
              and set(last) == {char})
    opens_another = any(re.match(r"[\s>]*(```+|~~~+)\s*\S", line)
                        for line in file_lines[token.map[0] + 1:token.map[1] - 1])
    return closes and not opens_another


def _fence_problem(token, info: str, file_lines: list) -> Optional[FenceProblem]:
    line = token.map[0] + 1
    column = len(file_lines[token.map[0]]) - len(file_lines[token.map[0]].lstrip()) + 1
    if info.split(" ")[0] != CODE_LANGUAGE and close_to_rulelang(info):
        return FenceProblem(line, column, f"a block fenced as `{info}` is not read as rules; only blocks "
                                          f"fenced as `{CODE_LANGUAGE}` are: write {token.markup}{CODE_LANGUAGE}")
    if info.split(" ")[0] == CODE_LANGUAGE and not _closed(token, file_lines):
        end = token.map[1]
        return FenceProblem(line, column, f"this {token.markup}{CODE_LANGUAGE} block is never closed: without "
                                          f"its closing {token.markup} it runs on over the text below it "
                                          f"(to line {end}); close it where its rules end")
    return None


def _loose(token, inline, file_lines: list) -> Optional[LooseText]:
    """Text outside the rules that begins with a statement keyword (see LooseText)."""
    if token.type == "paragraph_open" and inline is not None and inline.map:
        first, last = inline.map
    elif token.type == "code_block" or (token.type == "fence" and not token.info.strip()):
        first, last = token.map
        if token.type == "fence":
            first, last = first + 1, last - 1
    else:
        return None
    lines = file_lines[first:last]
    words = " ".join(lines).split()
    if not words or words[0] not in STATEMENT_KEYWORDS:
        return None
    return LooseText("\n".join(lines), first + 1)


@functools.lru_cache(maxsize=1)
def _markdown():
    """The CommonMark reader, imported when a file is first read (a file parsed before is
    not read again: parsed.py), not with this module, which quotations use too."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def document(text: str) -> Document:
    """A document's sections and its `rulelang` blocks, read in one pass."""
    tokens = _markdown().parse(text)
    file_lines = _NEWLINE.split(text)
    heads = [(0, "", 0, 0)]  # (token index, heading, level, 0-based line)
    fence_problems: list[FenceProblem] = []
    loose: list[LooseText] = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            heads.append((index, tokens[index + 1].content.strip(), int(token.tag[1:]), token.map[0]))
        if token.type == "fence":
            problem = _fence_problem(token, token.info.strip(), file_lines)
            if problem is not None:
                fence_problems.append(problem)
        if token.type in ("paragraph_open", "code_block", "fence"):
            found = _loose(token, tokens[index + 1] if index + 1 < len(tokens) else None, file_lines)
            if found is not None:
                loose.append(found)
    fenced = {n for t in tokens if t.type == "fence" for n in range(t.map[0], t.map[1])}
    unclosed = {p.line for p in fence_problems}

    result: list[Section] = []
    blocks: list[CodeBlock] = []
    for number, (start_token, title, level, start) in enumerate(heads):
        end_token = heads[number + 1][0] if number + 1 < len(heads) else len(tokens)
        end = heads[number + 1][3] if number + 1 < len(heads) else len(file_lines)
        body_from = start + 1 if number else 0
        body = [line for n, line in enumerate(file_lines[body_from:end], start=body_from) if n not in fenced]
        parent = None
        for earlier in range(number - 1, -1, -1):
            if result[earlier].level < level:
                parent = earlier
                break
        quotes: list[QuotedWords] = []
        for index in range(start_token + (3 if number else 0), end_token):
            token = tokens[index]
            if token.type == "inline" and token.map and tokens[index - 1].type != "heading_open":
                quotes.extend(_quotations(token, file_lines))
            elif (token.type == "fence" and token.info.strip().split(" ")[0] == CODE_LANGUAGE
                  and token.map[0] + 1 not in unclosed):
                first_line = token.map[0] + 2
                blocks.append(CodeBlock(_in_place(token.content, file_lines, first_line), first_line,
                                        title, level, number))
        result.append(Section(title, level, start + 1 if number else 0, "\n".join(body).strip(),
                              parent, tuple(quotes)))
    return Document(result, blocks, fence_problems, loose)


def _quotations(inline, file_lines: list) -> list[QuotedWords]:
    """The quotations among one paragraph's inline tokens, located in the file's lines."""
    found: list[str] = []
    depth, words = 0, []
    for child in inline.children or ():
        if child.type == "em_open":
            if depth == 0:
                words = []
            depth += 1
        elif child.type == "em_close":
            depth -= 1
            if depth == 0:
                quoted = _unquoted("".join(words))
                if quoted is not None:
                    found.append(quoted)
        elif depth:
            if child.type in ("text", "code_inline"):
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
    if not found:
        return []
    first, last = inline.map
    raw = "\n".join(file_lines[first:last])
    openings = list(_QUOTE_START.finditer(raw))
    located = []
    for number, words_text in enumerate(found):
        offset = openings[number].start() if number < len(openings) else 0
        line = first + raw.count("\n", 0, offset)
        column = offset - (raw.rfind("\n", 0, offset) + 1) + 1
        located.append(QuotedWords(words_text, line + 1, column, line + 1 + words_text.count("\n")))
    return located


def _unquoted(text: str) -> Optional[str]:
    """The words between the double quotes of an emphasis, or None when it is not a quotation."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) >= 2 and text[0] in OPENING_QUOTES and text[-1] in CLOSING_QUOTES:
        return text[1:-1].strip()
    return None


def _in_place(content: str, file_lines: list, first_line: int) -> str:
    """A block's text with each line padded back to the column it stands at in the file.

    markdown-it strips the indentation of a fence in a list item and the `> ` of a block
    quote from the content; without the padding every column in an error would be off.
    """
    lines = content.split("\n")
    for i, line in enumerate(lines):
        number = first_line - 1 + i
        original = file_lines[number] if number < len(file_lines) else ""
        if line and len(original) > len(line) and original.endswith(line):
            lines[i] = " " * (len(original) - len(line)) + line
    return "\n".join(lines)


# ------------------------------------------------------------------------ matching quotations

_MARKUP = re.compile(r"<[^>]+>|[*_]")
# List bullets of slides and PDFs (and the private-use symbols PDF fonts draw them with):
# layout, not words.
_BULLETS = re.compile("[•▪●◦\ue000-\uf8ff]")
_GAP = re.compile(r"\[(?:\.\.\.|…)\]")


def normalised(text: str) -> str:
    """Text as quotations are compared: markup and list bullets removed, typographic quotes
    and dashes plain, whitespace collapsed."""
    text = _BULLETS.sub(" ", _MARKUP.sub("", text))
    text = text.translate(str.maketrans({"“": '"', "”": '"', "„": '"', "’": "'", "–": "-", "—": "-",
                                         "\u00a0": " "}))
    return re.sub(r"\s+", " ", text).strip()


@functools.lru_cache(maxsize=32)
def _normalised_document(document: str) -> str:
    """A held document normalised once: every quotation and cite of a rulebook is searched
    in the same few documents of some hundred kilobytes each."""
    return normalised(document)


def quoted_in(words: str, document: str) -> bool:
    """Whether quoted words stand in a document verbatim: every piece between `[...]` gaps,
    in order (the document normalised as the words are)."""
    haystack = _normalised_document(document)
    position = 0
    for piece in _GAP.split(words):
        piece = normalised(piece)
        if not piece:
            continue
        found = haystack.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    return True
