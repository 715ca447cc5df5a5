"""Start-up: each verb imports what it needs and no more (issue 11, item 8).

Each case runs in a fresh interpreter: what a module imports is only visible before anything
else has imported it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import rulelang

HEAVY = ("lark", "markdown_it", "duckdb", "sqlglot", "z3", "pyspark", "rulelang.language.parser",
         "rulelang.language.syntax", "rulelang.evaluation.evaluator", "rulelang.columnar.settlement")


def imported_after(code: str, **env: str) -> set:
    """The heavy modules loaded once `code` has run in a new interpreter (with `env` set)."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_package_loads_nothing_heavy():
    assert imported_after("import rulelang") == set()


def test_the_command_line_loads_nothing_heavy_until_a_verb_runs():
    assert imported_after("import rulelang.interfaces.cli") == set()
    assert imported_after(
        "from rulelang.interfaces.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass") == set()


def test_a_usage_error_is_reported_without_loading_the_parser():
    code = ("import contextlib, io\nfrom rulelang.interfaces.cli import main\n"
            "with contextlib.redirect_stderr(io.StringIO()):\n    assert main(['settle']) == 2")
    assert imported_after(code) == set()


def test_check_loads_the_parser_but_not_the_engines(tmp_path):
    """A file not parsed before needs the parser; one parsed before (parsed.py) does not."""
    code = ("import contextlib, io\nfrom rulelang.interfaces.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['check', 'stockholm/hlv-2021']) == 0")
    parser = {"lark", "markdown_it", "rulelang.language.parser"}
    engines = {"duckdb", "pyspark", "rulelang.columnar.settlement"}
    first, again = (imported_after(code, RULELANG_CACHE_DIR=str(tmp_path)) for _ in range(2))
    assert parser <= first and not first & engines
    assert not again & (parser | engines)


@pytest.mark.parametrize("name", rulelang.__all__)
def test_every_public_name_is_there_when_named(name):
    value = getattr(rulelang, name)
    assert name in dir(rulelang)
    assert getattr(value, "__name__", name) == name  # the thing itself, not its module


def test_the_public_names_are_the_lazily_imported_ones():
    assert sorted(rulelang.__all__) == sorted(rulelang._PUBLIC)


def test_a_public_name_is_the_object_its_module_defines():
    from rulelang.columnar.settlement import SettlementError
    from rulelang.interfaces.api import load
    from rulelang.interfaces.render import render

    assert rulelang.load is load and rulelang.render is render and rulelang.SettlementError is SettlementError


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        rulelang.nothing_here  # noqa: B018
