"""How far a long run has come: the step it is on and DuckDB's own estimate within it."""

from __future__ import annotations

import threading
from typing import Callable, Optional


class ProgressReport:
    """How far a run has come, as (what it is doing, fraction done) to a callback: one step
    per table checked, one for the rules, one for the output, and within a step DuckDB's own
    estimate of the statement running, polled from a thread. The fraction never goes back."""

    def __init__(self, con, report: Optional[Callable[[str, float], None]], steps: int):
        self.con, self.report, self.steps = con, report, steps
        self.step, self.message, self.done = 0, "", 0.0
        self.stopped = threading.Event()
        self.thread = None
        if report is not None:
            con.execute("SET enable_progress_bar = true")  # tracked, not printed
            con.execute("SET enable_progress_bar_print = false")
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()

    def begin(self, message: str) -> None:
        self.step, self.message = self.step + 1, message
        self._send(0.0)

    def finish(self) -> None:
        """The run is complete."""
        self.stop()
        self.message = "done"
        self._send(1.0, whole=True)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()

    def _poll(self) -> None:
        while not self.stopped.wait(0.25):
            within = self.con.query_progress()
            if within >= 0:
                self._send(min(within, 99.0) / 100)

    def _send(self, within: float, whole: bool = False) -> None:
        if self.report is None:
            return
        done = 1.0 if whole else min(1.0, (self.step - 1 + within) / self.steps)
        self.done = max(self.done, done)
        self.report(self.message, self.done)
