"""Parsed rulebook files kept by their content (rulelang/language/parsed.py): a file read again
gives the very tree its parse gave, every span included; anything else is parsed again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attr
import pytest
from rulebook_factory import write_rulebook

import rulelang
from rulelang.language import loader, parsed
from rulelang.language.diagnostics import RulebookError
from rulelang.language.parser import parse_rulebook

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "rulebooks").rglob("*.md"))
SHIPPED = [path for path in SHIPPED if path.parent.name != "sources" and path.name != "README.md"]

BODY = '''parameter fee: money
  value 300 kr from 2021-02-01 status illustrative cite "x"

table visits
  key visit_id
  field visit_id: text

output payment: money per visits

rule pay defines payment
  then fee
'''


def everything(tree) -> dict:
    """Every field of a tree, those left out of equality (spans, the text) included."""
    return attr.asdict(tree, retain_collection_types=True)


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A cache folder of the test's own."""
    kept = tmp_path / "cache"
    monkeypatch.setenv("RULELANG_CACHE_DIR", str(kept))
    return kept


def entries(folder: Path) -> list:
    return sorted((folder / "syntax").glob("*" + parsed.ENTRY_SUFFIX)) if (folder / "syntax").exists() else []


def test_shipped_rulebooks_exist():
    assert len(SHIPPED) >= 6


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_an_entry_gives_back_every_field_of_every_shipped_rulebook(path):
    text = path.read_text(encoding="utf-8")
    tree = parse_rulebook(text, str(path))
    back = parsed.decode(parsed.encode(tree))
    assert everything(back) == everything(tree)
    assert type(back.statements) is tuple and back.statements  # a tuple stays a tuple


def test_a_file_read_again_comes_from_its_entry_as_its_parse_gave_it(tmp_path, folder, monkeypatch):
    path = write_rulebook(tmp_path, BODY)
    first = loader.load_chain(str(path))
    assert len(entries(folder)) == 1

    def no_parse(text, shown_as):
        raise AssertionError("parsed again")

    monkeypatch.setattr(loader, "parse_rulebook", no_parse)
    again = loader.load_chain(str(path))
    assert [everything(tree) for tree in again] == [everything(tree) for tree in first]
    book = rulelang.load(str(path))  # checked and compiled from the entry: 300 kr from 2021-02-01
    (result,) = book.evaluate({"visits": [{"visit_id": "V1"}]}, on="2021-03-01")
    assert result.value == 30000


def test_an_edited_file_or_another_name_finds_no_entry(tmp_path, folder):
    path = write_rulebook(tmp_path, BODY)
    loader.load_chain(str(path))
    path.write_text(path.read_text(encoding="utf-8").replace("300 kr", "350 kr"), encoding="utf-8")
    (chain,) = loader.load_chain(str(path))
    assert "350 kr" in chain.text and len(entries(folder)) == 2
    parameter = next(s for s in chain.statements if getattr(s, "name", None) == "fee")
    assert parameter.values[0].value.value == 35000  # öre: the edit, not the entry of 300 kr
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    (copy / "book.md").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (moved,) = loader.load_chain(str(copy / "book.md"))
    assert len(entries(folder)) == 3
    assert moved.statements[0].span.file.endswith("elsewhere/book.md")  # spans name the file read


def test_a_damaged_entry_is_parsed_again_and_written_anew(tmp_path, folder):
    path = write_rulebook(tmp_path, BODY)
    (first,) = loader.load_chain(str(path))
    (entry,) = entries(folder)
    for damage in (b"", b"not compressed", entry.read_bytes()[:-10]):
        entry.write_bytes(damage)
        (again,) = loader.load_chain(str(path))
        assert everything(again) == everything(first)
        assert parsed.read_entry(entry, first.text) is not None  # kept again, whole


@pytest.mark.parametrize("stored", [
    ["Nothing", 1, 2],  # a class not in the tree's list
    ["Span", "book.md", 1],  # a class with fields missing
    ["tuple", ["os.system", "true"]],  # a name that is not a tree class is never looked up elsewhere
    ["list"],  # valid, but not a rulebook
    {"a": 1},
    [],  # no tag at all
    ["fraction", 1, 0],
    ["date", "2021-02-30"],
    ["dict", ["list"], 1],  # a key that cannot be one
])
def test_an_entry_that_is_not_a_tree_is_not_used(tmp_path, stored):
    import json
    import zlib

    entry = tmp_path / ("x" + parsed.ENTRY_SUFFIX)
    entry.write_bytes(zlib.compress(json.dumps(stored).encode()))
    assert parsed.read_entry(entry, "") is None


def test_a_file_with_an_error_is_never_kept_and_says_so_each_time(tmp_path, folder):
    path = write_rulebook(tmp_path, BODY.replace("then fee", "then fee +"))
    messages = []
    for _ in range(2):
        with pytest.raises(RulebookError) as raised:
            loader.load_chain(str(path))
        messages.append([str(d) for d in raised.value.diagnostics])
    assert messages[0] == messages[1] and messages[0]
    assert entries(folder) == []


def test_text_given_directly_is_not_kept(folder):
    text = write_rulebook(folder.parent, BODY).read_text(encoding="utf-8")
    loader.load_text_chain(text, "<editor>")
    assert entries(folder) == []


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RULELANG_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = write_rulebook(tmp_path, BODY)
    loader.load_chain(str(path))
    assert parsed.cache_folder() is None and not (tmp_path / "xdg").exists()


def test_the_default_folder_is_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("RULELANG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert parsed.cache_folder() == tmp_path / "xdg" / "rulelang"
    loader.load_chain(str(write_rulebook(tmp_path, BODY)))
    assert len(entries(tmp_path / "xdg" / "rulelang")) == 1
    assert (tmp_path / "xdg" / "rulelang" / "syntax").stat().st_mode & 0o077 == 0  # the user's alone


def test_a_folder_that_cannot_be_written_is_not_used(tmp_path, monkeypatch):
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("RULELANG_CACHE_DIR", str(blocked))
    path = write_rulebook(tmp_path, BODY)
    (tree,) = loader.load_chain(str(path))
    assert tree.header.id == "test/book"
    assert blocked.read_text(encoding="utf-8") == "not a folder"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".part"] == []


def test_the_folder_keeps_the_most_recently_used_entries(tmp_path, folder, monkeypatch):
    monkeypatch.setattr(parsed, "MAX_ENTRIES", 3)
    paths = [write_rulebook(tmp_path, BODY.replace("300 kr", f"{300 + n} kr"), name=f"book{n}") for n in range(5)]
    for number, path in enumerate(paths[:3]):
        loader.load_chain(str(path))
        for entry in entries(folder):  # an older file time for each older entry
            os.utime(entry, (entry.stat().st_atime, entry.stat().st_mtime - 10))
    loader.load_chain(str(paths[0]))  # used again: now the most recent
    for path in paths[3:]:
        loader.load_chain(str(path))
    kept = {parsed.read_entry(entry, "").path for entry in entries(folder)}
    assert len(kept) == 3
    assert {Path(p).name for p in kept} == {"book0.md", "book3.md", "book4.md"}


def test_a_rulebook_read_before_loads_without_lark_or_markdown(tmp_path):
    """A new process that finds its entries parses nothing: the parser, Lark and Markdown-it
    are not even imported (they are most of a command's start)."""
    env = {**os.environ, "RULELANG_CACHE_DIR": str(tmp_path / "cache")}
    probe = ("import sys, rulelang\nrulelang.load('stockholm/hlv-2021')\n"
             "print(sorted(m for m in ('lark', 'markdown_it', 'rulelang.language.parser') if m in sys.modules))")
    runs = [subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env,
                           timeout=120) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.strip() == "['lark', 'markdown_it', 'rulelang.language.parser']"  # parsed
    assert runs[1].stdout.strip() == "[]"  # read from the entries


def test_a_name_with_an_undecodable_byte_is_kept_and_read_back(tmp_path, folder):
    """A file name may hold bytes that are not UTF-8 (read as lone surrogates): its spans
    name it, and its entry gives them back as they were."""
    text = write_rulebook(tmp_path, BODY).read_text(encoding="utf-8")
    shown = "book\udcff.md"
    tree = parse_rulebook(text, shown)
    entry = folder / ("x" + parsed.ENTRY_SUFFIX)
    parsed.write_entry(entry, tree)
    back = parsed.read_entry(entry, text)
    assert back is not None and everything(back) == everything(tree)
    assert back.statements[0].span.file == shown
    assert parsed.entry_key(text, shown) != parsed.entry_key(text, "book.md")


def test_without_the_parsers_sources_nothing_is_kept(tmp_path, folder, monkeypatch):
    """Installed as bytecode alone, rulelang cannot tell one version of its parser from
    another: it keeps no trees rather than read back a tree another version made."""
    monkeypatch.setattr(parsed, "__file__", str(tmp_path / "elsewhere" / "parsed.py"))
    parsed.code_digest.cache_clear()
    try:
        assert parsed.code_digest() is None
        loader.load_chain(str(write_rulebook(tmp_path, BODY)))
        assert entries(folder) == []
    finally:
        parsed.code_digest.cache_clear()

