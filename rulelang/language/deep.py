"""Room for deep rulebooks: evaluation, explanation and lowering follow a rulebook's nesting
recursively. `check` bounds it (expressions 64 levels, chains of definitions 64 long), and
work runs in a thread whose stack holds the deepest rulebook `check` accepts."""

from __future__ import annotations

import sys
import threading

STACK_BYTES = 512 * 1024 * 1024  # reserved, not used: a thread's stack grows as it is needed
RECURSION_LIMIT = 200_000


def run_deep(function, *args, **kwargs):
    """`function(*args, **kwargs)` in a thread with a deep stack; its result or its exception.
    An interrupt (Ctrl-C) reaches the caller at once; the worker is a daemon and ends with
    the process."""
    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
    outcome: dict = {}

    def work():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # handed to the caller as it is
            outcome["error"] = error

    previous = threading.stack_size(STACK_BYTES)
    try:
        worker = threading.Thread(target=work, name="rulelang", daemon=True)
        worker.start()
    finally:
        threading.stack_size(previous)
    while worker.is_alive():
        worker.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
