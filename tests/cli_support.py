"""Running rulelang's command line inside the test process."""

from __future__ import annotations

import contextlib
import io

from rulelang.interfaces.cli import main


def run_cli(*argv) -> tuple:
    """A command as a user runs it, in this process: (exit status, standard output,
    standard error)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()
