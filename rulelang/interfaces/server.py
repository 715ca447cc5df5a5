"""`rulelang serve`: the HTTP API for other tools and the review workbench for lawyers, in
one process (FastAPI on uvicorn).

The API speaks the CLI's JSON (CONTRACT §4) and its error messages, as
`application/problem+json`. It is safe by default: it binds to 127.0.0.1; it changes
nothing (settlements are written to its own scratch directory); a request names rulebooks by
id and data by the names given with `--data NAME=PATH`, never by path; bodies, records and
listed lines are bounded; bound to another interface it needs a token. Rulebook text sent to
`/check` is parsed and checked, never run as Python.

The workbench pages are in `workbench.py`; this module holds the state they share with the
API (rulebooks, data sets, settlements).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import attrs

from ..language.diagnostics import (
    Error,
    EvaluationError,
    InvalidArgument,
    NotFound,
    RulebookError,
)
from ..language.loader import RULEBOOK_ID, all_rulebook_ids, locate
from .api import Rulebook

MAX_BODY = 4_000_000  # bytes of a request body
MAX_RECORDS = 20_000  # records in one evaluate or explain request
MAX_PAGE = 1_000  # line items in one page
PROGRESS_EVERY = 0.25  # seconds between saves of a running settlement's progress

try:
    import fcntl
except ImportError:  # Windows: one process serves (default_workers)
    fcntl = None
LOCAL = ("127.0.0.1", "localhost", "::1")


class Unauthorised(Error):
    """A request without the token the server was started with."""


class TooLarge(Error):
    """A request body or record count beyond the server's limits."""


@attrs.define
class SettlementRun:
    """A settlement the server runs: its request, how far it is, and its outcome. Kept as a
    JSON file in the server's scratch directory (SettlementLedger), so that every worker
    process of one server sees every settlement."""

    id: str
    rulebook: str
    data: str
    month: str
    assume: dict
    directory: Path
    status: str = "queued"  # queued, running, done, failed
    progress: float = 0.0
    step: str = ""
    error: Optional[str] = None
    summary: Optional[dict] = None  # the Settlement's to_dict(), when done
    totals_out: Optional[str] = None  # its totals file, when done

    @property
    def out(self) -> Path:
        return self.directory / f"settlement-{self.month}.parquet"

    def to_dict(self) -> dict:
        summary = dict(self.summary) if self.summary is not None else None
        if summary is not None:  # where the server keeps its files is its own business
            for key in ("output", "totals_output", "rejected_output"):
                summary.pop(key, None)
        return {"id": self.id, "rulebook": self.rulebook, "data": self.data, "month": self.month,
                "assume": dict(self.assume), "status": self.status, "progress": round(self.progress, 3),
                "step": self.step, "error": self.error, "summary": summary}


class SettlementLedger:
    """The settlements of one server, one JSON file each under `scratch/runs/`, numbered from a
    counter kept under a file lock: worker processes share them. A settlement runs only
    while it holds `scratch/settling.lock`: one at a time across the workers, since each
    uses the machine's cores."""

    def __init__(self, scratch: Path):
        self.directory = scratch / "runs"
        self.directory.mkdir(exist_ok=True)
        self.counter = scratch / "runs.counter"
        self.settling_file = scratch / "settling.lock"
        self.threads_settling = threading.Lock()  # the file lock is per process; this is per thread

    def new_number(self) -> int:
        with _file_lock(self.directory / ".lock"):
            number = int(self.counter.read_text() or 0) + 1 if self.counter.exists() else 1
            self.counter.write_text(str(number))
        return number

    def save(self, run: SettlementRun) -> None:
        saved = attrs.asdict(run)
        saved["directory"] = str(run.directory)
        path = self.directory / f"{run.id}.json"
        part = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        part.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
        os.replace(part, path)  # a reader sees the old state or the new, never half

    def get(self, run_id: str) -> Optional[SettlementRun]:
        if not re.fullmatch(r"s[0-9]+", run_id):
            return None
        try:
            saved = json.loads((self.directory / f"{run_id}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        saved["directory"] = Path(saved["directory"])
        return SettlementRun(**saved)

    def all(self) -> list:
        numbers = sorted(int(p.stem[1:]) for p in self.directory.glob("s*.json") if p.stem[1:].isdigit())
        return [run for run in (self.get(f"s{n}") for n in numbers) if run is not None]

    @contextlib.contextmanager
    def settling(self):
        with self.threads_settling, _file_lock(self.settling_file):
            yield


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock on a file, across processes (fcntl), released when the block ends."""
    with open(path, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


class Service:
    """What the server knows: the data sets it may read, the rulebooks it has loaded, the
    settlements it has run (in `scratch`, shared by a server's worker processes). Shared by
    the API and the workbench."""

    def __init__(self, data: Optional[dict] = None, token: Optional[str] = None, scratch: Optional[Path] = None):
        self.data = {name: Path(path) for name, path in (data or {}).items()}
        self.token = token
        self.books: dict = {}
        self.books_lock = threading.Lock()
        if scratch is None:  # its own, removed with it; worker processes are given their server's
            self._scratch = tempfile.TemporaryDirectory(prefix="rulelang-serve-")
            scratch = Path(self._scratch.name)
        self.scratch = Path(scratch)
        self.ledger = SettlementLedger(self.scratch)

    # ---- rulebooks
    def rulebook_ids(self) -> list:
        return all_rulebook_ids()

    def rulebook(self, rulebook_id: str) -> Rulebook:
        """A rulebook by id (never a path), loaded once and again when one of its files (or of
        the rulebooks it amends) changes."""
        if not RULEBOOK_ID.match(rulebook_id):
            raise NotFound(f"{rulebook_id!r} is not a rulebook id (names of letters, digits, _ and - "
                           "separated by /, such as stockholm/hlv-2021)")
        with self.books_lock:
            cached = self.books.get(rulebook_id)
        if cached is not None and cached[0] == _stamps(cached[1]):
            return cached[1]  # its files are where they were, unchanged (a removed one is None)
        locate(rulebook_id, allow_path=False)  # NotFound before anything is read
        book = Rulebook.load(rulebook_id, allow_path=False)
        with self.books_lock:
            self.books[rulebook_id] = (_stamps(book), book)
        return book

    # ---- data sets
    def data_set(self, name: str) -> Path:
        if name not in self.data:
            known = ", ".join(sorted(self.data)) or "none (start the server with --data NAME=PATH)"
            raise NotFound(f"no data set {name!r}; the server has: {known}")
        return self.data[name]

    # ---- settlements
    def start_settlement(self, rulebook_id: str, data: str, month: str, assume: Optional[dict] = None) -> SettlementRun:
        from ..columnar.settlement import month_bounds, settle

        book = self.rulebook(rulebook_id)
        path = self.data_set(data)
        month_bounds(month)  # a month that is no month is refused before anything runs (422)
        assumed = book.assume(assume or {})
        number = self.ledger.new_number()
        run = SettlementRun(f"s{number}", rulebook_id, data, month, dict(assume or {}), self.scratch / f"s{number}")
        run.directory.mkdir()
        self.ledger.save(run)
        saved_at = [0.0]

        def progress(step: str, done: float) -> None:
            run.step, run.progress = step, done
            if time.monotonic() - saved_at[0] > PROGRESS_EVERY:
                self.ledger.save(run)
                saved_at[0] = time.monotonic()

        def work() -> None:
            with self.ledger.settling():
                run.status = "running"
                self.ledger.save(run)
                try:
                    result = settle(book, month, path, run.out, "duckdb", progress, assumed)
                    run.summary, run.totals_out = result.to_dict(), str(result.totals_out)
                    run.status, run.progress, run.step = "done", 1.0, "done"
                except Error as error:
                    run.status, run.error = "failed", str(error)
                except Exception as error:  # a bug: reported on the run, not lost in a thread
                    run.status, run.error = "failed", f"internal error: {type(error).__name__}: {error}"
                self.ledger.save(run)

        threading.Thread(target=work, name=f"settlement {run.id}", daemon=True).start()
        return run

    def impact(self, old: str, new: str, data: str, month: str, assume: Optional[dict] = None, largest: int = 10):
        """The Impact of NEW (with `assume`) against OLD on a data set, one at a time with the
        settlements (each uses the machine's cores)."""
        from ..columnar.impact import Side, impact

        old_book, new_book = self.rulebook(old), self.rulebook(new)
        with self.ledger.settling():
            return impact(Side(old_book, old), Side(new_book, new, new_book.assume(assume or {})), month,
                          self.data_set(data), largest=largest)

    def settlements(self) -> list:
        """Every settlement this server has run, oldest first."""
        return self.ledger.all()

    def settlement(self, run_id: str) -> SettlementRun:
        run = self.ledger.get(run_id)
        if run is None:
            raise NotFound(f"no settlement {run_id!r}")
        return run

    def finished(self, run_id: str) -> SettlementRun:
        run = self.settlement(run_id)
        if run.status != "done":
            raise InvalidArgument(f"settlement {run_id} is {run.status}" + (f": {run.error}" if run.error else ""))
        return run

    def lines(self, run_id: str, clinic: Optional[str] = None, component: Optional[str] = None,
              basis: Optional[str] = None, record: Optional[str] = None, offset: int = 0,
              limit: int = 100) -> dict:
        """A page of a settlement's line items, in the file's order, filtered (every filter a
        bound parameter, never SQL text)."""
        import duckdb

        from ..columnar.settlement import LINE_IDS, LINE_IDS_AS_TEXT

        run = self.finished(run_id)
        if not 0 < limit <= MAX_PAGE or offset < 0:
            raise InvalidArgument(f"limit is 1 to {MAX_PAGE} and offset 0 or more")
        # Ids as text, as the CLI's JSON gives them, whether the file holds them as numbers or text.
        texts = dict(zip(LINE_IDS, LINE_IDS_AS_TEXT))
        where, parameters = [], [str(run.out)]
        for column, value in (("clinic_id", clinic), ("component", component), ("basis", basis),
                              ("record_id", record)):
            if value is not None:
                where.append(f"{texts.get(column, column)} = ?")
                parameters.append(value)
        condition = f"WHERE {' AND '.join(where)}" if where else ""
        con = duckdb.connect()
        try:
            (total,) = con.execute(f"SELECT count(*) FROM read_parquet(?) {condition}", parameters).fetchone()
            rows = con.execute(
                f"SELECT {texts['clinic_id']}, month, component, CAST(amount AS VARCHAR), provision, "
                f"{texts['record_id']}, basis "
                f"FROM read_parquet(?, file_row_number = true) {condition} ORDER BY file_row_number "
                f"LIMIT {int(limit)} OFFSET {int(offset)}", parameters).fetchall()
        finally:
            con.close()
        columns = ("clinic_id", "month", "component", "amount", "provision", "record_id", "basis")
        return {"total": int(total), "offset": offset, "limit": limit,
                "lines": [dict(zip(columns, row)) for row in rows]}

    def explain_line(self, run_id: str, component: str, record: str, full: bool = True):
        """The explanation of one line of a finished settlement: the record's evaluation on the
        month's last day (a dated record on its own date), under the run's assumptions."""
        from ..columnar.settlement import month_bounds

        run = self.finished(run_id)
        book = self.rulebook(run.rulebook)
        if component not in book.program.outputs:
            raise NotFound(f"rulebook {book.id} has no output {component!r}; it has: {', '.join(book.outputs)}")
        assumed = book.assume(run.assume)
        evaluator = book.evaluator(self.data_set(run.data), month_bounds(run.month)[1],
                                   book.focus(component, record, assumed), assumed)
        return evaluator.explain(component, book.record(evaluator, component, record))


def _stamps(book: Rulebook) -> tuple:
    """When each file of a rulebook's amendment chain last changed (None: it is gone)."""
    stamps = []
    for syntax in book.checked.chain:
        path = Path(syntax.path)
        stamps.append(path.stat().st_mtime_ns if path.is_file() else None)
    return tuple(stamps)


# ------------------------------------------------------------------------ evaluate and explain


def evaluation_json(service: "Service", kind: str, rulebook_id: str, request: dict) -> bytes:
    """An evaluate or explain request's answer, the CLI's JSON document as bytes; a rulelang
    Error for what cannot be answered (the API turns it into a problem document)."""
    import orjson

    book = service.rulebook(rulebook_id)
    if kind == "evaluate":
        from .render import results_document

        results = book.evaluate(request["data"], on=request.get("on"), assume=request.get("assume"))
        document = results_document(book.id, book.version, results)
    else:
        document = book.explain(request["data"], request["output"], request["record"], request.get("on"),
                                request.get("assume")).to_dict()
    # orjson: FastAPI's encoder would walk an explanation's tree again, json.dumps is 10× slower.
    return orjson.dumps(document)


def default_workers() -> int:
    """One server process a core, at most four; one where processes cannot lock files
    (Windows), since they share the settlements through files."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if fcntl is None else max(1, min(cores, 4))


def problem_status(error: Exception) -> int:
    """The HTTP status of a rulelang error: the CLI's exit status, in HTTP's words."""
    if isinstance(error, Unauthorised):
        return 401
    if isinstance(error, TooLarge):
        return 413
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, RulebookError):
        return 500  # a served rulebook that does not check: the server's side
    if isinstance(error, EvaluationError) and error.kind == "rulebook":
        return 409  # the rulebook fails on this data (a conflict, no rule applies)
    if isinstance(error, Error):  # data, dates, assumptions, a month: the caller's (the CLI's exit 2)
        return 422
    return 500


def problem(status: int, title: str, detail: str) -> dict:
    """An RFC 9457 problem document."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


def token_matches(expected: Optional[str], given: Optional[str]) -> bool:
    return expected is None or (given is not None and hmac.compare_digest(expected.encode(), given.encode()))
