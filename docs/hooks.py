"""MkDocs hooks: every rulebook under rulebooks/ becomes a page of the site, generated at
build time from the rulebook itself (rulelang.interfaces.render.rulebook_page), and is
listed under "Rulebooks" in the navigation."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def _rulebooks():
    import rulelang
    from rulelang.language.loader import all_rulebook_ids

    previous = Path.cwd()
    os.chdir(ROOT)  # rulebook ids and the files they name are read from the project's root
    try:
        return [(rulebook, rulelang.load(rulebook)) for rulebook in all_rulebook_ids([ROOT / "rulebooks"])]
    finally:
        os.chdir(previous)


def on_config(config):
    pages = [{book.checked.header.title or rulebook: f"rulebooks/{rulebook}.md"} for rulebook, book in _rulebooks()]
    nav = config["nav"]
    for index, entry in enumerate(nav):
        if isinstance(entry, dict) and "Rulebooks" in entry:
            overview = entry["Rulebooks"]
            nav[index] = {"Rulebooks": [{"Overview": overview} if isinstance(overview, str) else overview, *pages]}
    return config


def on_files(files, config):
    from rulelang.interfaces.render.rulebook_page import rulebook_page

    for rulebook, book in _rulebooks():
        files.append(File.generated(config, f"rulebooks/{rulebook}.md", content=rulebook_page(book)))
    return files
