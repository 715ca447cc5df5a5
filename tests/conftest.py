"""Settings shared by every test module."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from rulelang.language.deep import RECURSION_LIMIT

ROOT = Path(__file__).resolve().parent.parent

# rulelang raises the recursion limit when it first runs a command (see rulelang/language/deep.py);
# raised here before any test, hypothesis sees it unchanged from test to test.
sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))

# Parsed rulebooks (rulelang/language/parsed.py) are kept in a folder of this run's own, never
# in the user's: every run starts with none. Commands run as subprocesses inherit it; the
# tests of the cache itself set their own.
_PARSED = tempfile.mkdtemp(prefix="rulelang-test-parsed-")
os.environ["RULELANG_CACHE_DIR"] = _PARSED
atexit.register(shutil.rmtree, _PARSED, ignore_errors=True)


@pytest.fixture
def at_repo_root(monkeypatch):
    """Rulebook ids are looked up under ./rulebooks, and sources in explanations are paths
    relative to the working directory: a module that relies on either runs from the repo
    root (`pytestmark = pytest.mark.usefixtures("at_repo_root")`)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("RULELANG_PATH", raising=False)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, driven by Playwright, for the browser tests (browser_support.py)."""
    from browser_support import CHROMIUM, FLAGS

    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()
