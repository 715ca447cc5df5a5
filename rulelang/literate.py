"""Split a literate rulebook (Markdown) into its code blocks, each under its heading.

The provision text is ordinary Markdown prose; rules stand in fenced blocks whose info
string is `rulelang`. The heading a block stands under is the citation of every
statement in it.
"""

from __future__ import annotations

import re
from typing import Iterator

import attrs
from markdown_it import MarkdownIt

CODE_LANGUAGE = "rulelang"

_markdown = MarkdownIt("commonmark")
_NEWLINE = re.compile(r"\r\n?|\n")  # the line breaks markdown-it counts lines by


@attrs.frozen
class CodeBlock:
    """The text of one fenced block, with the line (1-based) its first line stands on."""

    text: str
    first_line: int
    heading: str
    heading_level: int


@attrs.frozen
class Section:
    """A heading and the prose under it, up to the next heading: for renderers of the law text."""

    heading: str
    level: int
    line: int
    prose: str


def code_blocks(text: str) -> Iterator[CodeBlock]:
    """Every `rulelang` block of a Markdown document, in order, with its nearest heading."""
    heading, level = "", 0
    tokens = _markdown.parse(text)
    file_lines = _NEWLINE.split(text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            heading = tokens[index + 1].content.strip()
            level = int(token.tag[1:])
        elif token.type == "fence" and token.info.strip().split(" ")[0] == CODE_LANGUAGE:
            first_line = token.map[0] + 2
            yield CodeBlock(_in_place(token.content, file_lines, first_line), first_line, heading, level)


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


def sections(text: str) -> list[Section]:
    """The headings of a document with the prose that stands under each."""
    lines = text.splitlines()
    result: list[Section] = []
    tokens = _markdown.parse(text)
    heads = [
        (tokens[i + 1].content.strip(), int(t.tag[1:]), t.map[0])
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]
    fences = [(t.map[0], t.map[1]) for t in tokens if t.type == "fence"]
    for i, (title, level, start) in enumerate(heads):
        end = heads[i + 1][2] if i + 1 < len(heads) else len(lines)
        body = [
            line
            for n, line in enumerate(lines[start + 1:end], start=start + 1)
            if not any(a <= n < b for a, b in fences)
        ]
        result.append(Section(title, level, start + 1, "\n".join(body).strip()))
    return result
