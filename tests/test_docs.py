"""The documentation builds, and every rulelang block in it is valid syntax."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rulelang.language import literate
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
