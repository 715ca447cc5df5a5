"""Find rulebooks by id or path and read the chain of rulebooks one amends."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import subprocess
from pathlib import Path
from typing import Iterable, Iterator, Optional

import attrs

from .diagnostics import Diagnostic, NotFound, RulebookError
from .parsed import parsed_once
from .syntax import RulebookSyntax, Span

SUFFIX = ".md"
MAX_AMENDMENT_DEPTH = 16
SOURCES_FOLDER = "sources"  # held source documents, beside the rulebooks that quote them


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while a rulebook is loaded, then as it was. Loading
    makes a hundred thousand short-lived objects (tokens, trees, nodes), freed by reference
    counting; their number set off a full collection, a walk of every live object, that was
    a sixth of the load."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
           allow_path: bool = True, revision: Optional[Revision] = None) -> tuple[Path, Optional[str]]:
    """A rulebook's file and, when found by id, that id. With `allow_path` (a rulebook named
    on the command line or in the API) a path to a file is taken as it is; a reference inside
    a rulebook (`amends`) is an id and resolves only under the search roots. With a
    `revision`, the file is one that existed at that revision."""
    exists = (lambda path: path.is_file()) if revision is None else (lambda path: revision.read(path) is not None)
    if allow_path:
        candidate = Path(reference)
        if exists(candidate):
            return candidate, None
    if not RULEBOOK_ID.match(reference):
        raise NotFound(f"{reference!r} is not a rulebook id (names of letters, digits, _ and - separated by /, "
                       "such as stockholm/hlv-2021)")
    for root in roots if roots is not None else search_roots():
        path = root / (reference + SUFFIX)
        if path.resolve().is_relative_to(root.resolve()) and exists(path):
            return path, reference
    looked = ", ".join(str(r) for r in (roots if roots is not None else search_roots()))
    at = f" at revision {revision.name}" if revision is not None else ""
    raise NotFound(f"no rulebook {reference!r}{at} (looked for {reference}{SUFFIX} in {looked or 'no directory'})")


def all_rulebook_ids(roots: Optional[Iterable[Path]] = None) -> list[str]:
    """The ids of every rulebook under the search roots, sorted."""
    ids = set()
    for root in roots if roots is not None else search_roots():
        for path in root.rglob("*" + SUFFIX):
            if path.name.lower() != "readme.md":
                ids.add(path.relative_to(root).with_suffix("").as_posix())
    return sorted(ids)


# `stockholm/hlv-2021@HEAD~1`: a rulebook as it was at a git revision of the folder it is in.
REVISION = re.compile(r"^(?P<reference>[^@]+)@(?P<revision>[\w./~^{}:-]+)$")


def split_revision(reference: str) -> tuple[str, Optional[str]]:
    """(rulebook id or path, git revision or None) of `ID@REVISION`."""
    match = REVISION.match(reference)
    if match is None or match.group("revision").startswith("-"):
        return reference, None
    return match.group("reference"), match.group("revision")


def _git(folder: Path, *arguments: str) -> Optional[str]:
    """Standard output of a git command run in `folder`; None when git fails or is absent."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


@attrs.frozen
class Revision:
    """A git revision of the repository a rulebook lives in: its files are read from there."""

    name: str  # as the user wrote it (HEAD~1, v2021.2, a commit)
    commit: str  # the commit it names, in full

    def read(self, path: Path) -> Optional[str]:
        """The file's text at this revision; None when it did not exist then."""
        top = _git(path.parent if path.parent.exists() else Path.cwd(), "rev-parse", "--show-toplevel")
        if top is None:
            return None
        relative = path.resolve().relative_to(Path(top.strip()).resolve()).as_posix() \
            if path.resolve().is_relative_to(Path(top.strip()).resolve()) else None
        if relative is None:
            return None
        try:
            done = subprocess.run(["git", "-C", top.strip(), "show", f"{self.commit}:{relative}"],
                                  capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        try:
            return done.stdout.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RulebookError([Diagnostic("error", f"the file is not UTF-8 text at {self.name} ({error.reason})",
                                            Span(f"{display_path(path)}@{self.name}", 1, 1, 1, 1))]) from None


def resolve_revision(name: str, near: Path) -> Revision:
    """The commit `name` names in the git repository that holds `near`; NotFound otherwise."""
    folder = near if near.is_dir() else near.parent
    while not folder.exists():
        folder = folder.parent
    if _git(folder, "rev-parse", "--show-toplevel") is None:
        raise NotFound(f"@{name}: {display_path(near)} is not in a git repository (or git is not installed)")
    commit = _git(folder, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    if commit is None:
        raise NotFound(f"@{name}: no such git revision in the repository of {display_path(near)}")
    return Revision(name, commit.strip())


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


def parse_rulebook(text: str, shown_as: str) -> RulebookSyntax:
    """The parser's parse_rulebook, imported (with Lark and Markdown-it) only when a file is
    parsed: a file parsed before is read from its entry (parsed.py)."""
    from .parser import parse_rulebook as parse

    return parse(text, shown_as)


def load_chain(reference: str, allow_path: bool = True) -> list[RulebookSyntax]:
    """The rulebook and every rulebook it amends, the oldest first. `ID@REVISION` (or
    `PATH@REVISION`) reads the rulebook, and the rulebooks it amends, as they were at that git
    revision; their files are then named `FILE@REVISION` in diagnostics and citations."""
    current, revision_name = split_revision(reference)
    revision = None
    if revision_name is not None:
        near = Path(current) if Path(current).exists() else (search_roots() or [Path.cwd()])[0]
        revision = resolve_revision(revision_name, near)
    return _chain(current, None, revision, allow_path)


def load_text_chain(text: str, name: str = "<string>") -> list[RulebookSyntax]:
    """A rulebook given as text (named `name` in diagnostics) and every rulebook it amends,
    found by id, the oldest first."""
    return _chain(None, (text, name), None)


def _chain(current: Optional[str], given: Optional[tuple], revision: Optional[Revision],
           allow_path: bool = True) -> list[RulebookSyntax]:
    """Follow `amends` from the rulebook `current` names (or the text `given`: (text, name))."""
    chain: list[RulebookSyntax] = []
    seen: list[str] = []
    amended_at: Optional[Span] = None
    while current is not None or given is not None:
        found_id = None
        text_given = given is not None
        if given is not None:
            (text, shown_as), given, path = given, None, Path.cwd() / "rulebook.md"
        else:
            try:
                path, found_id = locate(current, allow_path=allow_path and amended_at is None, revision=revision)
            except NotFound as error:
                if amended_at is None:
                    raise
                raise RulebookError([Diagnostic("error", str(error), amended_at)]) from None
            if revision is None:
                text, shown_as = read(path), display_path(path)
            else:
                text, shown_as = revision.read(path) or "", f"{display_path(path)}@{revision.name}"
        # A file is parsed once for its text (parsed.py); text given directly (an editor's,
        # a request's) is parsed each time and kept nowhere.
        syntax = parse_rulebook(text, shown_as) if text_given else parsed_once(text, shown_as, parse_rulebook)
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
        if amended_at is None and revision is None and header.replaced_by is not None:
            _replacing_found(header, syntax.path, text)
        seen.append(header.id)
        chain.append(attrs.evolve(syntax, documents=read_documents(header, path)))
        current = header.amends
        amended_at = header.span
    chain.reverse()
    return chain


def _replacing_found(header, file: str, text: str) -> None:
    """The rulebook a `replaced by` names is one that can be run instead (found by id)."""
    try:
        locate(header.replaced_by[0], allow_path=False)
    except NotFound as error:
        raise RulebookError([Diagnostic("error", f"replaced by {header.replaced_by[0]!r}: {error}", header.span)],
                            {file: text}) from None
