"""The documentation builds, and every rulelang block in it is valid syntax."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rulelang.language import literate
from rulelang.language.loader import all_rulebook_ids
from rulelang.language.parser import parse_block
from rulelang.language.syntax import Provision

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_rulelang_block_in_the_docs_parses(page):
    blocks = list(literate.code_blocks(page.read_text(encoding="utf-8")))
    for block in blocks:
        statements = parse_block(block.text, str(page), block.first_line - 1,
                                 Provision("docs", block.heading))
        assert statements, f"{page.name}:{block.first_line}: an empty rulelang block"


def test_the_language_reference_shows_every_statement_kind():
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    for keyword in ("rulebook", "enum", "table", "parameter", "definition", "output", "rule",
                    "exception", "amend parameter", "amend rule", "repeal rule", "data", "example"):
        assert f"\n{keyword} " in text, keyword


def test_the_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "language" / "index.html").exists()
    # Every rulebook is a page, its rules highlighted by rulelang's own lexer.
    for rulebook in all_rulebook_ids():
        page = (tmp_path / "rulebooks" / rulebook / "index.html").read_text(encoding="utf-8")
        assert '<span class="kd">rulebook</span>' in page, rulebook
        assert "Parameter values" in page and "Index of provisions" in page


@pytest.mark.parametrize("rulebook", all_rulebook_ids())
def test_a_rulebook_page_lists_every_value_and_reading_the_rulebook_declares(rulebook):
    import rulelang
    from rulelang.interfaces.render.rulebook_page import rulebook_page

    book = rulelang.load(rulebook)
    page = rulebook_page(book)
    own = book.checked.chain[-1]
    assert page.startswith(own.text.rstrip("\n"))  # the rulebook's own words, untouched
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    for name, info in book.checked.parameters.items():
        for value in info.values:
            if value.decl.span.file == own.path:
                start = value.valid_from.isoformat() if value.valid_from else "the beginning"
                assert any(row.startswith(f"| `{name}` | {start} – ") and f"| {value.decl.status} |" in row
                           and row.endswith(f"| {value.decl.span.line} |") for row in rows), (name, start)
    readings = page[page.index("## Readings"):page.index("## Index of provisions")]
    for name, info in book.checked.parameters.items():
        if any(v.decl.status == "interpretation" and v.decl.span.file == own.path for v in info.values):
            assert f"| `{name}` |" in readings, name
    index = page[page.index("## Index of provisions"):]
    for rule in (st for st in own.statements if type(st).__name__ == "RuleDecl"):
        assert f"`{rule.label}` ({rule.span.line})" in index


def test_the_pygments_lexer_is_registered_and_reads_the_language():
    from pygments import lex
    from pygments.lexers import get_lexer_by_name
    from pygments.token import Comment, Keyword, Name, Number, Operator, String

    tokens = [(kind, text) for kind, text in
              lex('rule r defines y from 2021-02-01 when age(b, d) < 6 then 300 kr  # why\n'
                  '  value 1 kr status seed cite "x"', get_lexer_by_name("rulelang")) if text.strip()]
    assert (Keyword.Declaration, "rule") in tokens and (Keyword, "defines") in tokens
    assert (Number.Other, "2021-02-01") in tokens and (Name.Function, "age") in tokens
    assert (Operator, "<") in tokens and (Keyword.Type, "kr") in tokens
    assert (Comment.Single, "# why") in tokens and (String.Double, '"x"') in tokens
    assert (Name.Decorator, "seed") in tokens


def test_the_readme_shows_the_explanation_rulelang_gives(capsys, monkeypatch):
    """The README's text view is what `rulelang explain` prints today, byte for byte."""
    from rulelang.interfaces.cli import main

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("RULELANG_PATH", raising=False)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```\navdrag = -300.00 kr") + 4
    shown = readme[start:readme.index("```\n", start)]
    assert main(["explain", "stockholm/hlv-2021", "--input", "examples/stockholm-2021.json",
                 "--output", "avdrag", "--record", "V1"]) == 0
    assert capsys.readouterr().out == shown
