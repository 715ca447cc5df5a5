"""The files of one run, put in place together: all of them or none.

A settlement writes line items, totals and rejected records. Each is written to a hidden
temporary file beside its target; when all are complete, a journal naming them is written
and synced, each is renamed into place, and the journal is removed. A run killed between
two renames leaves the journal: the next run to the same target finishes the renames
before it starts, so the set a reader finds is always one run's. Runs to the same target
take turns (an exclusive lock on a hidden lock file beside it), and each run removes the
temporary files that killed runs left.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional


class OutputSet:
    """`with OutputSet([a, b, c]) as files:` write `files.temporary(a)` …, then `files.commit()`."""

    def __init__(self, targets: list):
        self.targets = [Path(t) for t in targets]
        first = self.targets[0]
        self.lock_path = first.with_name(f".{first.name}.lock")
        self.journal = first.with_name(f".{first.name}.commit")
        self._lock: Optional[int] = None
        self._committing = False  # the journal is written: the set goes in place whole
        self._committed = False

    def __enter__(self) -> "OutputSet":
        self.targets[0].parent.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # another run to this target finishes first
        self.recover()
        for target in self.targets:  # left by killed runs: no live run writes them while we hold the lock
            for stale in target.parent.glob(f".{target.name}.*.tmp"):
                stale.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._committing and not self._committed:
            self.recover()  # interrupted while putting the set in place: finish it
        elif not self._committed:
            for target in self.targets:
                self.temporary(target).unlink(missing_ok=True)
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

    def temporary(self, target: Path) -> Path:
        return Path(target).with_name(f".{Path(target).name}.{os.getpid()}.tmp")

    def commit(self) -> None:
        """Every temporary file is complete: put them all in place."""
        pairs = [(str(self.temporary(t)), str(t)) for t in self.targets]
        for temporary, _ in pairs:
            _sync(Path(temporary))
        with open(self.journal, "w", encoding="utf-8") as handle:
            json.dump(pairs, handle)
            handle.flush()
            os.fsync(handle.fileno())
        self._committing = True
        _sync_directory(self.targets[0].parent)
        self._finish(pairs)
        self._committed = True

    def recover(self) -> None:
        """Finish the renames of a run that was killed while putting its files in place."""
        if not self.journal.exists():
            return
        try:
            pairs = json.loads(self.journal.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            pairs = []  # a journal cut short was never complete: its run had not begun to rename
        self._finish([(t, f) for t, f in pairs if Path(t).exists() or Path(f).exists()])

    def _finish(self, pairs: list) -> None:
        for temporary, final in pairs:
            if Path(temporary).exists():
                os.replace(temporary, final)
        _sync_directory(self.targets[0].parent)
        self.journal.unlink(missing_ok=True)


def _sync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def scratch_directory(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary directory named by this process, after removing those of processes that
    no longer run (a killed run cannot remove its own)."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{prefix}*"):
        pid = old.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
