"""The review workbench of `rulelang serve` in a real browser (headless Chromium driven by
Playwright, against the server on a local port): from the settlements to a clinic's total,
to one avdrag line, to its explanation with the quoted provision and citation; "explained
above" goes to its place; the print view renders; the rulebook reader, diff and impact
views. A screenshot per view is kept in $RULELANG_ARTIFACTS when it is set.

Needs a Chromium binary, as tests/test_browser.py; where there is none these are skipped."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from browser_support import keep, needs_chromium

from rulelang.interfaces.demo import write_demo_region

pytestmark = [needs_chromium, pytest.mark.usefixtures("at_repo_root")]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The workbench on a free local port, serving a small demo region as `demo`."""
    import uvicorn

    from rulelang.interfaces.http import create_app
    from rulelang.interfaces.server import Service

    region = tmp_path_factory.mktemp("workbench-region")
    write_demo_region(region, persons=2000, seed=5, file_format="parquet")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    import os
    previous = os.getcwd()
    os.chdir(ROOT)  # rulebook ids are looked up under ./rulebooks
    config = uvicorn.Config(create_app(Service({"demo": region})), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(100):
        if running.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)
    os.chdir(previous)


@pytest.fixture(scope="module")
def settled(browser, server):
    """A settlement started from the workbench's form, followed until it is done."""
    page = browser.new_page()
    page.goto(server + "/")
    keep(page, "workbench-index")
    page.select_option("select[name=rulebook]", "stockholm/hlv-2021")
    page.fill("input[name=month]", "2021-09")
    page.click("button:has-text('Settle')")
    page.wait_for_selector("h2:has-text('Clinics')", timeout=60_000)  # the page reloads itself until done
    url = page.url
    keep(page, "workbench-settlement")
    page.close()
    return url


def test_from_a_clinics_total_to_one_avdrag_line_and_its_explanation(browser, server, settled):
    page = browser.new_page()
    page.goto(settled)
    assert "done" in page.inner_text("main")
    first_clinic = page.locator("table >> nth=0").locator("tbody tr >> nth=1").locator("td >> nth=0")
    clinic = first_clinic.inner_text().strip()
    first_clinic.locator("a").click()
    page.wait_for_selector(f"h1:has-text('Lines of clinic {clinic}')")
    page.select_option("select[name=component]", "avdrag")
    page.click("button:has-text('Filter')")
    page.wait_for_selector("td:has-text('-300.00')")
    keep(page, "workbench-lines")
    row = page.locator("table tr:has(td:has-text('avdrag')) >> nth=0")
    record = row.locator("td >> nth=0").inner_text().strip()
    row.locator("a").click()
    page.wait_for_selector(f"h1:has-text('avdrag för {record}')")
    text = page.inner_text("main")
    assert "avdrag = -300.00 kr" in text
    assert "STH21.6.4" in text  # the provision, with the source's words quoted
    assert "Från den 1 september 2021 ger varje fysiskt besök" in text
    assert "001_d4b7588c97b7b524.txt" in text  # the citation
    assert page.locator("nav.crumbs a", has_text=f"clinic {clinic}").count() == 1
    keep(page, "workbench-explanation")
    # "explained above" goes to its place, in the whole tree (a section that opens)
    page.locator("section.whole > details > summary").click()
    link = page.get_by_role("link", name="explained above").first
    target = link.get_attribute("href")
    link.click()
    assert page.evaluate("location.hash") == target and page.locator(target).is_visible()
    page.emulate_media(media="print")
    keep(page, "workbench-explanation-print")
    assert not page.locator("nav.top").is_visible()  # the print view leaves the navigation out
    page.close()


def test_search_by_record_id_finds_its_lines(browser, settled):
    page = browser.new_page()
    page.goto(settled)
    page.goto(settled + "/lines?component=avdrag")
    record = page.locator("table tr:has(td:has-text('avdrag')) >> nth=0").locator("td >> nth=0").inner_text().strip()
    page.goto(settled)
    page.fill("input[name=record]", record)
    page.press("input[name=record]", "Enter")  # the keyboard alone
    page.wait_for_selector("h1:has-text('Lines')")
    rows = page.locator("table tr:has(td)")
    assert rows.count() >= 1 and all(record in rows.nth(i).inner_text() for i in range(rows.count()))
    page.close()


def test_the_rulebook_reader_diff_and_impact_views(browser, server):
    page = browser.new_page()
    page.goto(server + "/")
    page.click("a:has-text('stockholm/hlv-2021')")
    page.wait_for_selector("h2:has-text('Parameter values')")
    text = page.inner_text("main")
    assert "avdrag_fysiskt_besök" in text and "Readings" in text and "seed" in text
    # Prose and the rules that encode it side by side: the rule block right of its provision's words.
    section = page.locator("section.provision:has(h3:has-text('STH21.6.4'))")
    prose, rules = section.locator(".prose").bounding_box(), section.locator(".rules pre").first.bounding_box()
    assert rules["x"] > prose["x"] + prose["width"] / 2 and abs(rules["y"] - prose["y"]) < prose["height"]
    keep(page, "workbench-reader")
    page.goto(server + "/ui/diff?old=stockholm/hlv-2016&new=stockholm/hlv-2021")
    assert "avdrag" in page.inner_text("main") and page.locator("h2:has-text('outputs')").count() == 1
    keep(page, "workbench-diff")
    page.goto(server + "/ui/impact?old=stockholm/hlv-2016&new=stockholm/hlv-2021&data=demo&month=2021-09")
    page.wait_for_selector("svg.chart")
    assert "Per component" in page.inner_text("main")
    keep(page, "workbench-impact")
    page.close()


def test_every_control_is_reached_with_the_keyboard(browser, server):
    page = browser.new_page()
    page.goto(server + "/")
    reached = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.tagName + ':' + (document.activeElement.name || "
                                  "document.activeElement.textContent.trim())"))
    assert {"SELECT:rulebook", "SELECT:data", "INPUT:month", "BUTTON:Settle"} <= reached
    page.close()
