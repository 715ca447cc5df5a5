"""Chromium for the browser tests, driven by Playwright: where the binary is, how it is
started on a closed network (conftest.py's `browser` fixture), and screenshots kept as
artifacts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = next((path for path in (os.environ.get("RULELANG_CHROMIUM"), shutil.which("chromium"),
                                   shutil.which("chromium-browser"), shutil.which("google-chrome"))
                 if path), None)
# A closed network: no background requests, no first-run pages (as the machine's notes advise).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install chromium)")


def keep(page, name: str) -> None:
    """A screenshot of the view as a test artifact."""
    directory = os.environ.get("RULELANG_ARTIFACTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)
