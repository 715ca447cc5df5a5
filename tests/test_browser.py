"""The HTML explanation in a real browser (headless Chromium driven by Playwright): it
renders, the source's words and the citations are visible, sections collapse and open,
"explained above" goes to its place, and the print view shows every section.

Needs a Chromium binary (Debian: `apt-get install chromium`; `.ci/run` installs it). Where
there is none the tests are skipped with that reason, shown by pytest's summary.
Screenshots of each view are written to $RULELANG_ARTIFACTS when it is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_support import keep, needs_chromium

from rulelang.interfaces.cli import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = needs_chromium


def page_of(capsys, tmp_path: Path, name: str, *args: str) -> Path:
    monkey_cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = main(["explain", *args, "--format", "html"])
    finally:
        os.chdir(monkey_cwd)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    path = tmp_path / f"{name}.html"
    path.write_text(captured.out, encoding="utf-8")
    return path


@pytest.fixture
def avdrag(browser, capsys, tmp_path):
    path = page_of(capsys, tmp_path, "avdrag", "stockholm/hlv-2021", "--input", "examples/stockholm-2021.json",
                   "--output", "avdrag", "--record", "V1")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(path.as_uri())
    yield page
    page.close()


def test_the_page_renders_with_the_amount_the_words_and_the_citations(avdrag):
    page = avdrag
    assert page.title() == "stockholm/hlv-2021: avdrag för V1"
    assert page.locator("h1").inner_text() == "avdrag = -300.00 kr"
    assert "basis: interpretation" in page.locator(".headline .basis").inner_text()
    # The provision's words, with the document they come from.
    words = page.get_by_text("Från den 1 september 2021 ger varje fysiskt besök som görs av egen listad patient")
    assert words.first.is_visible()
    assert page.locator("blockquote.provision footer").first.inner_text().startswith("001_d4b7588c97b7b524.txt")
    # A figure's citation, unit, period and status.
    row = page.locator("table.parameters tr", has=page.locator("code", has_text="avdrag_fysiskt_besök"))
    assert row.first.is_visible()
    cells = [c.strip() for c in row.first.locator("td").all_inner_texts()]
    assert cells[1:5] == ["300.00 kr", "2021-09-01 – 2023-04-30", "seed", "001_d4b7588c97b7b524.txt: ett avdrag på 300 kronor"]
    keep(page, "explanation-decision-path")


def test_sections_collapse_and_open(avdrag):
    page = avdrag
    whole = page.locator("section.whole > details")
    tree = whole.locator("ul.tree")
    assert not tree.is_visible()  # the whole tree is closed by default: the decision path comes first
    whole.locator("> summary").click()
    assert tree.is_visible()
    keep(page, "explanation-whole-tree")
    rule = tree.locator("details", has=page.locator("summary", has_text="avdrag_fysiskt_besök_hos_annan")).first
    inner = rule.locator("> ul")
    assert inner.is_visible()
    rule.locator("> summary").click()
    assert not inner.is_visible()
    rule.locator("> summary").click()
    assert inner.is_visible()


def test_explained_above_links_to_the_definition(avdrag):
    page = avdrag
    page.locator("section.whole > details > summary").click()
    link = page.get_by_role("link", name="explained above").first
    target = link.get_attribute("href")
    assert target.startswith("#def-visits-V1-")
    link.click()
    assert page.evaluate("location.hash") == target
    assert page.locator(target).is_visible()
    assert page.locator(f"{target}:target").count() == 1


def test_a_sum_lists_every_contributor_in_a_section_that_opens(browser, capsys, tmp_path):
    path = page_of(capsys, tmp_path, "vg", "vastra-gotaland/vg-primarvard", "--input",
                   "examples/vastra-gotaland-2017.json", "--output", "vårdtyngd", "--record", "V1",
                   "--on", "2017-03-15")
    page = browser.new_page()
    page.goto(path.as_uri())
    sums = page.locator("section.path details.sum")
    rows = sums.locator("table tr")
    assert not rows.first.is_visible()
    sums.locator("> summary").click()
    assert rows.count() == 4  # the header and the three listings counted
    assert [r.strip() for r in rows.nth(1).locator("td").all_inner_texts()] == ["listings", "#1", "V1", "A", "0.48"]
    keep(page, "explanation-sum-contributors")
    page.close()


def test_the_print_view_shows_every_section(avdrag):
    page = avdrag
    page.emulate_media(media="print")
    # Closed sections print open: the whole tree is on paper without a click.
    assert page.locator("section.whole ul.tree").is_visible()
    pdf = page.pdf()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    keep(page, "explanation-print")
