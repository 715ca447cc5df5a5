"""A Pygments lexer for rulelang, so that code blocks are highlighted in the docs site, in
HTML explanations and in any tool that uses Pygments (registered by the `pygments.lexers`
entry point as `rulelang`). Its words are the grammar's (language/grammar.lark)."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from ..language.literate import STATEMENT_KEYWORDS

STATEMENTS = tuple(sorted(STATEMENT_KEYWORDS))
CLAUSES = ("title", "version", "in", "force", "from", "until", "amends", "replaced", "source", "to", "this", "key",
           "optional", "dated", "by", "history", "of", "field", "default", "value", "status", "cite", "row", "and",
           "over", "per", "paid", "defines", "when", "then", "says", "using", "on", "assuming", "given", "expect",
           "any", "as")
OPERATORS = ("and", "or", "not", "is", "none", "if", "else", "sum", "count", "for", "where", "rounded", "half",
             "up", "down", "toward", "zero", "away", "otherwise", "at", "least", "number", "öre", "kronor")
CONSTANTS = ("true", "false")
STATUSES = ("seed", "verified", "derived", "interpretation", "illustrative")


class RulelangLexer(RegexLexer):
    name = "rulelang"
    aliases = ["rulelang", "rl"]
    filenames = []  # rulebooks are Markdown; their fenced blocks name the language
    mimetypes = ["text/x-rulelang"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"([^"\\\n]|\\["\\n])*"', String.Double),
            (r"[0-9]{4}-[0-9]{2}-[0-9]{2}", Number.Other),  # a date
            (r"([0-9]+(?:\.[0-9]+)?)(\s*)(kr|kronor)(?!\w)", bygroups(Number, Whitespace, Keyword.Type)),
            (r"([0-9]+(?:\.[0-9]+)?)(\s*)(%)", bygroups(Number, Whitespace, Keyword.Type)),
            (r"[0-9]+\.[0-9]+|[0-9]+", Number),
            (words(STATEMENTS, suffix=r"\b"), Keyword.Declaration),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(STATUSES, prefix=r"(?<=status )", suffix=r"\b"), Name.Decorator),
            (words(OPERATORS, suffix=r"\b"), Operator.Word),
            (words(CLAUSES, suffix=r"\b"), Keyword),
            (r"(?![0-9])\w+(?=\()", Name.Function),
            (r"(?![0-9])\w+", Name),
            (r"<=|>=|!=|≠|≤|≥|<|>|=|\+|-|\*|/|×", Operator),
            (r"[()\[\]{},:.]", Punctuation),
            (r".", Text),
        ],
    }
