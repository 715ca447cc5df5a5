"""Room for deep rulebooks: evaluation, explanation and lowering follow a rulebook's nesting
recursively. `check` bounds it (expressions 64 levels, chains of definitions 64 long), and
work runs in a thread whose stack holds the deepest rulebook `check` accepts.

The threads are made once and kept: starting a thread with a large stack costs more than
explaining one visit, and a server explains thousands a second."""

from __future__ import annotations

import os
import queue
import sys
import threading
from concurrent.futures import Future, TimeoutError as Waiting

STACK_BYTES = 512 * 1024 * 1024  # reserved, not used: a thread's stack grows as it is needed
RECURSION_LIMIT = 200_000
WORKERS = max(2, min(8, (os.cpu_count() or 1) + 2))  # Python runs one at a time; a few keep the cores fed


class _DeepThreads:
    """Daemon threads with deep stacks, started on first use, taking work from one queue."""

    def __init__(self):
        self.work: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.started = 0
        self.idle = 0
        self.local = threading.local()

    def submit(self, function, *args, **kwargs) -> Future:
        future: Future = Future()
        self.work.put((future, function, args, kwargs))
        with self.lock:
            if self.idle == 0 and self.started < WORKERS:
                self._start()
        return future

    def in_worker(self) -> bool:
        return getattr(self.local, "deep", False)

    def _start(self) -> None:
        previous = threading.stack_size(STACK_BYTES)
        try:
            threading.Thread(target=self._serve, name=f"rulelang-{self.started + 1}", daemon=True).start()
        finally:
            threading.stack_size(previous)
        self.started += 1

    def _serve(self) -> None:
        self.local.deep = True
        while True:
            with self.lock:
                self.idle += 1
            future, function, args, kwargs = self.work.get()
            with self.lock:
                self.idle -= 1
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args, **kwargs))
                except BaseException as error:  # handed to the caller as it is
                    future.set_exception(error)
                del future, function, args, kwargs  # nothing of a request outlives it


_THREADS = _DeepThreads()


def submit_deep(function, *args, **kwargs) -> Future:
    """`function(*args, **kwargs)` on a deep-stack thread, as a Future (a server awaits it)."""
    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
    return _THREADS.submit(function, *args, **kwargs)


def run_deep(function, *args, **kwargs):
    """`function(*args, **kwargs)` on a thread with a deep stack; its result or its exception.
    An interrupt (Ctrl-C) reaches the caller at once; the workers are daemons and end with
    the process. Called from a deep thread, it runs there."""
    if _THREADS.in_worker():
        return function(*args, **kwargs)
    future = submit_deep(function, *args, **kwargs)
    while True:
        try:
            return future.result(0.1)
        except Waiting:
            continue
