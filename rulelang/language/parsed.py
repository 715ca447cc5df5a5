"""Parsed rulebook files kept by their content, so that a file read again is not parsed again.

Parsing is most of loading a rulebook: Lark's lexer and LALR loop are pure Python, about
nine tenths of the time hlv-2021 with its base takes to load. The syntax tree of a file
depends only on its text, the name it is shown by (every span names it) and rulelang's own
parsing code, and an entry is found by a hash of all three (`entry_key`): an edited file,
another name or another rulelang finds no entry and is parsed, so an entry is never stale.

An entry is data, not code: the tree as JSON whose objects are named from a fixed list (the
syntax tree's classes and the diagnostic), compressed, in a folder of the user's own
(`RULELANG_CACHE_DIR`, else `$XDG_CACHE_HOME/rulelang`, else `~/.cache/rulelang`; `off`
keeps none). Nothing is unpickled. An entry that is missing, damaged or not readable is
parsed again; a folder that cannot be written is simply not used; a file with a syntax
error is never kept (its diagnostics are made fresh each time), and where the parser's own
sources cannot be read (an install of bytecode alone) nothing is kept. The folder keeps at
most MAX_ENTRIES files, the least recently used removed first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import tempfile
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import attrs

from . import diagnostics, syntax

# Changes when the form of an entry changes, so that older entries are not read.
FORMAT = "rulelang parsed syntax 1"
MAX_ENTRIES = 256
ENTRY_SUFFIX = ".json.z"


def cache_folder() -> Optional[Path]:
    """Where entries are kept (see the module's docstring); None when kept nowhere."""
    chosen = os.environ.get("RULELANG_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rulelang"


@functools.lru_cache(maxsize=1)
def code_digest() -> Optional[str]:
    """A hash of the code that makes a syntax tree: every module and the grammar of this
    package (not the checker's), read once a process. None where they cannot be read."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(FORMAT.encode())
    files = sorted([*here.glob("*.py"), *here.glob("*.lark")])
    if not {"parser.py", "syntax.py", "grammar.lark"} <= {path.name for path in files}:
        return None  # installed without its sources (bytecode only): no way to tell versions apart
    try:
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def entry_key(text: str, shown_as: str) -> Optional[str]:
    code = code_digest()
    if code is None:
        return None
    named = f"{code}\0{shown_as}\0{text}"  # a file name may hold surrogates (undecodable bytes)
    return hashlib.sha256(named.encode("utf-8", "surrogatepass")).hexdigest()


def parsed_once(text: str, shown_as: str,
                parse: Callable[[str, str], syntax.RulebookSyntax]) -> syntax.RulebookSyntax:
    """The syntax tree of the file `text` shown as `shown_as`: from its entry when there is
    one, else `parse(text, shown_as)`, which is then kept. `parse`'s errors pass through."""
    folder, key = cache_folder(), entry_key(text, shown_as)
    if folder is None or key is None:
        return parse(text, shown_as)
    entry = folder / "syntax" / (key + ENTRY_SUFFIX)
    found = read_entry(entry, text)
    if found is not None:
        return found
    tree = parse(text, shown_as)
    write_entry(entry, tree)
    return tree


# ---------------------------------------------------------------------------- the entry's form

def _classes() -> dict:
    """The classes an entry may name: the attrs classes of the syntax tree and the diagnostic,
    each built from its fields in order (none is left out of __init__)."""
    found: dict = {}
    for module in (syntax, diagnostics):
        for name, value in vars(module).items():
            if isinstance(value, type) and attrs.has(value) and value.__module__ == module.__name__:
                fields = attrs.fields(value)
                assert name not in found and all(f.init and not f.kw_only for f in fields), name
                found[name] = (value, tuple(f.name for f in fields))
    return found


CLASSES = _classes()
FIELDS = {cls: (name, fields) for name, (cls, fields) in CLASSES.items()}


def encode(value):
    """A value of the tree as JSON: plain values as they are, the rest as a list led by a tag."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is tuple:
        return ["tuple", *map(encode, value)]
    if kind is list:
        return ["list", *map(encode, value)]
    if kind is dict:
        return ["dict", *(encode(part) for item in value.items() for part in item)]
    if kind is Fraction:
        return ["fraction", value.numerator, value.denominator]
    if kind is dt.date:
        return ["date", value.isoformat()]
    if kind in FIELDS:
        name, fields = FIELDS[kind]
        return [name, *(encode(getattr(value, field)) for field in fields)]
    raise TypeError(f"a syntax tree does not hold a {kind.__name__}")


def decode(value):
    """The value `encode` gave; for anything else an error (read_entry lists which)."""
    if type(value) is not list:
        return value
    return DECODERS[value[0]](value)


def _decoded_object(cls, count: int):
    def made(value):
        if len(value) != count:
            raise ValueError(f"{cls.__name__} has {count - 1} fields, not {len(value) - 1}")
        return cls(*[decode(part) for part in value[1:]])
    return made


def _decoded_dict(value):
    items = [decode(part) for part in value[1:]]
    return dict(zip(items[::2], items[1::2]))


# The tag that leads a list → what makes its value (a class's fields come in order).
DECODERS = {
    "tuple": lambda value: tuple([decode(part) for part in value[1:]]),
    "list": lambda value: [decode(part) for part in value[1:]],
    "dict": _decoded_dict,
    "fraction": lambda value: Fraction(*value[1:]),
    "date": lambda value: dt.date.fromisoformat(*value[1:]),
    **{name: _decoded_object(cls, len(fields) + 1) for name, (cls, fields) in CLASSES.items()},
}


def read_entry(entry: Path, text: str) -> Optional[syntax.RulebookSyntax]:
    """The tree kept in `entry` (the file's text is not kept: `text` is put back), or None."""
    try:
        stored = entry.read_bytes()
    except OSError:
        return None
    try:
        tree = decode(json.loads(zlib.decompress(stored)))
        if type(tree) is not syntax.RulebookSyntax:
            return None
    except (ValueError, KeyError, IndexError, TypeError, ArithmeticError, RecursionError, zlib.error):
        return None  # not an entry this code wrote: parsed again
    with contextlib.suppress(OSError):
        os.utime(entry)  # recently used: kept longest
    return attrs.evolve(tree, text=text)


def write_entry(entry: Path, tree: syntax.RulebookSyntax) -> None:
    """Keep `tree` in `entry`, written whole or not at all; then the folder pruned. A folder
    that cannot be written (read-only, full, removed meanwhile) is not an error: the tree
    was parsed and is used, only not kept."""
    try:
        # ASCII, every other character escaped: a lone surrogate (an undecodable byte in a
        # file's name) comes back as it was.
        stored = zlib.compress(json.dumps(encode(attrs.evolve(tree, text="")), separators=(",", ":")).encode(), 1)
    except (TypeError, ValueError):  # a tree holding what an entry cannot: parsed each time
        return
    with contextlib.suppress(OSError):
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, part = tempfile.mkstemp(dir=entry.parent, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(stored)
            os.replace(part, entry)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(part)  # left only where the write failed
        prune(entry.parent)


def prune(folder: Path) -> None:
    """At most MAX_ENTRIES entries in `folder`: the least recently used go first."""
    entries = sorted(folder.glob("*" + ENTRY_SUFFIX), key=lambda path: path.stat().st_mtime)
    for old in entries[:max(0, len(entries) - MAX_ENTRIES)]:
        old.unlink()
