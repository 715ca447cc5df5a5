"""Find rulebooks by id or path and read the chain of rulebooks one amends."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Optional

import attrs

from .diagnostics import Diagnostic, NotFound, RulebookError
from .parser import parse_rulebook
from .syntax import RulebookSyntax, Span

SUFFIX = ".md"
MAX_AMENDMENT_DEPTH = 16
SOURCES_FOLDER = "sources"  # held source documents, beside the rulebooks that quote them


def search_roots() -> list[Path]:
    """Where rulebook ids are looked up, first match wins.

    `RULELANG_PATH` (directories separated as in PATH), then `rulebooks/` in the working
    directory, then the rulebooks shipped with rulelang.
    """
    roots = [Path(p) for p in os.environ.get("RULELANG_PATH", "").split(os.pathsep) if p]
    roots.append(Path.cwd() / "rulebooks")
    package = Path(__file__).resolve().parent.parent  # rulelang/
    roots.append(package / "rulebooks")          # installed wheel
    roots.append(package.parent / "rulebooks")   # source checkout
    unique: list[Path] = []
    for root in roots:
        if root.is_dir() and root.resolve() not in [u.resolve() for u in unique]:
            unique.append(root)
    return unique


# A rulebook id: names of letters, digits, `_` and `-`, separated by `/`: never `..`, never
# absolute, so an id resolves only to a file under a search root.
RULEBOOK_ID = re.compile(r"^[\w-]+(/[\w-]+)*$")


def locate(reference: str, roots: Optional[Iterable[Path]] = None,
           allow_path: bool = True) -> tuple[Path, Optional[str]]:
    """A rulebook's file and, when found by id, that id. With `allow_path` (a rulebook named
    on the command line or in the API) a path to a file is taken as it is; a reference inside
    a rulebook (`amends`) is an id and resolves only under the search roots."""
    if allow_path:
        candidate = Path(reference)
        if candidate.is_file():
            return candidate, None
    if not RULEBOOK_ID.match(reference):
        raise NotFound(f"{reference!r} is not a rulebook id (names of letters, digits, _ and - separated by /, "
                       "such as stockholm/hlv-2021)")
    for root in roots if roots is not None else search_roots():
        path = root / (reference + SUFFIX)
        if path.is_file() and path.resolve().is_relative_to(root.resolve()):
            return path, reference
    looked = ", ".join(str(r) for r in (roots if roots is not None else search_roots()))
    raise NotFound(f"no rulebook {reference!r} (looked for {reference}{SUFFIX} in {looked or 'no directory'})")


def all_rulebook_ids(roots: Optional[Iterable[Path]] = None) -> list[str]:
    """The ids of every rulebook under the search roots, sorted."""
    ids = set()
    for root in roots if roots is not None else search_roots():
        for path in root.rglob("*" + SUFFIX):
            if path.name.lower() != "readme.md":
                ids.add(path.relative_to(root).with_suffix("").as_posix())
    return sorted(ids)


def display_path(path: Path) -> str:
    """How a rulebook file is named in errors and explanations: relative to the working
    directory when it lies below it, so the same run prints the same bytes on any machine."""
    try:
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix() \
            if path.resolve().is_relative_to(Path.cwd()) else path.resolve().as_posix()
    except ValueError:
        return str(path)


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RulebookError([Diagnostic("error", f"the file is not UTF-8 text ({error.reason})",
                                        Span(display_path(path), 1, 1, 1, 1))]) from None


def source_folders(path: Path) -> list[Path]:
    """Where a rulebook's held documents are looked up: a `sources/` folder in the rulebook's
    own folder or any folder above it, then in each search root."""
    folders = [folder / SOURCES_FOLDER for folder in path.resolve().parents]
    folders += [root / SOURCES_FOLDER for root in search_roots()]
    unique: list[Path] = []
    for folder in folders:
        if folder.is_dir() and folder.resolve() not in unique:
            unique.append(folder.resolve())
    return unique


def read_documents(header, path: Path) -> dict:
    """The text of every source the header names as a file, by name; None where none is found.
    Only a bare file name is looked up, and only inside a `sources/` folder."""
    documents: dict = {}
    folders = None
    for source in header.sources if header is not None else ():
        if not source.names_a_file or source.document in documents:
            continue
        if folders is None:
            folders = source_folders(path)
        documents[source.document] = None
        for folder in folders:
            candidate = folder / source.document
            if candidate.is_file():
                try:
                    documents[source.document] = candidate.read_text(encoding="utf-8")
                except UnicodeDecodeError as error:
                    raise RulebookError([Diagnostic(
                        "error", f"the source document {display_path(candidate)} is not UTF-8 text "
                                 f"({error.reason})", source.span)]) from None
                break
    return documents


def load_chain(reference: str) -> list[RulebookSyntax]:
    """The rulebook and every rulebook it amends, the oldest first."""
    chain: list[RulebookSyntax] = []
    seen: list[str] = []
    current: Optional[str] = reference
    amended_at: Optional[Span] = None
    while current is not None:
        try:
            path, found_id = locate(current, allow_path=amended_at is None)
        except NotFound as error:
            if amended_at is None:
                raise
            raise RulebookError([Diagnostic("error", str(error), amended_at)]) from None
        text = read(path)
        syntax = parse_rulebook(text, display_path(path))
        header = syntax.header
        if header is None:
            raise RulebookError([Diagnostic(
                "error", "the rulebook has no `rulebook \"id\"` header block",
                Span(syntax.path, 1, 1, 1, 1))], {syntax.path: text})
        if found_id is not None and header.id != found_id:
            raise RulebookError([Diagnostic(
                "error", f"the header says {header.id!r} but the file is rulebook {found_id!r}; "
                         "a rulebook's id is its path under rulebooks/", header.span)], {syntax.path: text})
        if header.id in seen:
            raise RulebookError([Diagnostic(
                "error", "amendments form a cycle: " + " → ".join(seen + [header.id]), header.span)],
                {syntax.path: text})
        if len(seen) >= MAX_AMENDMENT_DEPTH:
            raise RulebookError([Diagnostic(
                "error", f"more than {MAX_AMENDMENT_DEPTH} rulebooks amend one another", header.span)])
        seen.append(header.id)
        chain.append(attrs.evolve(syntax, documents=read_documents(header, path)))
        current = header.amends
        amended_at = header.span
    chain.reverse()
    return chain
