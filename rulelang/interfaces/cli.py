"""The `rulelang` command: check, test, eval, explain.

Exit status: 0 success; 1 the rulebook has errors or an example fails; 2 bad usage or bad
input data; 3 an internal error (a bug in rulelang, reported without a traceback).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

from ..language.deep import run_deep
from ..language.diagnostics import (
    DataError,
    EvaluationError,
    InvalidArgument,
    NotFound,
    RulebookError,
    did_you_mean,
)

if TYPE_CHECKING:
    from .api import Rulebook

# The parser, the checker, the evaluator and the engines are imported by the verbs that use
# them: `rulelang --help` and a usage error need none (see rulelang/__init__.py).

EXIT_OK, EXIT_RULEBOOK, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


UsageError = InvalidArgument  # bad usage: exit 2, as the API raises it


def _date(text: str) -> dt.date:
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rulelang", description="Rules as code for Swedish primary-care compensation.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    check = verbs.add_parser("check", help="parse and check rulebooks (all under rulebooks/ when none is named)")
    check.add_argument("rulebooks", nargs="*", metavar="RULEBOOK")
    check.add_argument("--strict", action="store_true", help="warnings are errors (exit 1)")
    check.add_argument("--format", choices=("text", "json"), default="text", help="json: diagnostics for tools")

    test = verbs.add_parser("test", help="run the examples written inside rulebooks")
    test.add_argument("rulebooks", nargs="*", metavar="RULEBOOK")
    test.add_argument("-k", dest="only", help="only examples whose title contains this text")
    test.add_argument("--assume", action="append", default=[], metavar="NAME=VALUE",
                          help="set a parameter for this run (repeatable), e.g. a reading's alternative")
    test.add_argument("--coverage", action="store_true",
                      help="list the rules, exceptions and parameter periods no example exercises")
    test.add_argument("--min-coverage", type=_percent, metavar="N",
                      help="fail when fewer than N %% of a rulebook's rules and exceptions apply in an example")

    evaluate = verbs.add_parser("eval", help="evaluate every output for every record in FILE")
    evaluate.add_argument("rulebook", metavar="RULEBOOK")
    evaluate.add_argument("--input", required=True, metavar="FILE")
    evaluate.add_argument("--on", type=_date, metavar="DATE")
    evaluate.add_argument("--assume", action="append", default=[], metavar="NAME=VALUE",
                          help="set a parameter for this run (repeatable), e.g. a reading's alternative")
    evaluate.add_argument("--format", choices=("text", "json", "jsonl"), default="text",
                          help="jsonl: one result per line, streamed as computed (for region-size input)")

    explain = verbs.add_parser("explain", help="the explanation tree of one output")
    explain.add_argument("rulebook", metavar="RULEBOOK")
    explained = explain.add_mutually_exclusive_group(required=True)
    explained.add_argument("--input", metavar="FILE")
    explained.add_argument("--example", metavar="TITLE",
                           help="explain a record of one of the rulebook's examples (its records, date and assumptions)")
    explain.add_argument("--output", required=True, metavar="NAME")
    explain.add_argument("--record", metavar="ID")
    explain.add_argument("--on", type=_date, metavar="DATE")
    explain.add_argument("--assume", action="append", default=[], metavar="NAME=VALUE",
                          help="set a parameter for this run (repeatable), e.g. a reading's alternative")
    explain.add_argument("--format", choices=("text", "json", "html"), default="text")
    explain.add_argument("--full", action="store_true",
                         help="text and HTML show the whole tree, not only the decision path (JSON always has it)")

    settle = verbs.add_parser("settle", help="monthly settlement of every clinic (DuckDB in-process by default)")
    settle.add_argument("rulebook", metavar="RULEBOOK")
    settle.add_argument("--month", required=True, metavar="YYYY-MM")
    settle.add_argument("--data", required=True, metavar="PATH")
    settle.add_argument("--out", metavar="FILE")
    settle.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    settle.add_argument("--assume", action="append", default=[], metavar="NAME=VALUE",
                          help="set a parameter for this run (repeatable), e.g. a reading's alternative")
    settle.add_argument("--format", choices=("text", "json"), default="text")

    diff = verbs.add_parser("diff", help="what changed between two rulebooks, or two revisions of one (ID@REVISION)")
    diff.add_argument("old", metavar="OLD", help="a rulebook id or file; ID@REVISION for a git revision")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--format", choices=("text", "json", "html"), default="text")
    diff.add_argument("--out", metavar="FILE", help="write the report here (default: standard output)")

    impact = verbs.add_parser("impact", help="the money a change moves in a month, per clinic and component")
    impact.add_argument("old", metavar="OLD", help="a rulebook id or file; ID@REVISION for a git revision")
    impact.add_argument("new", metavar="NEW", help="the changed rulebook (may be OLD, with --assume)")
    impact.add_argument("--data", required=True, metavar="PATH")
    impact.add_argument("--month", required=True, metavar="YYYY-MM")
    impact.add_argument("--assume", action="append", default=[], metavar="NAME=VALUE",
                        help="set a parameter of NEW for the run (repeatable)")
    impact.add_argument("--format", choices=("text", "json", "csv", "html"), default="text")
    impact.add_argument("--out", metavar="FILE", help="write the report here (default: standard output)")
    impact.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    impact.add_argument("--largest", type=_count, default=10, metavar="N",
                        help="list the N lines that changed most (default 10)")

    readings = verbs.add_parser("readings", help="a rulebook's readings of its sources, and with data the money each moves")
    readings.add_argument("rulebook", metavar="RULEBOOK")
    readings.add_argument("--data", metavar="PATH")
    readings.add_argument("--month", metavar="YYYY-MM")
    readings.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    readings.add_argument("--format", choices=("text", "json"), default="text")

    serve = verbs.add_parser("serve", help="HTTP API and review workbench (binds to 127.0.0.1)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_positive, default=8000)
    serve.add_argument("--data", action="append", default=[], metavar="NAME=PATH",
                       help="a data set requests may name (repeatable); requests never name paths")
    serve.add_argument("--token", metavar="TOKEN",
                       help="require Authorization: Bearer TOKEN (default: $RULELANG_TOKEN); needed off localhost")
    serve.add_argument("--workers", type=_positive, default=None, metavar="N",
                       help="server processes sharing the port (default: one a core, at most 4)")

    demo = verbs.add_parser("demo-data", help="write a synthetic region in the settlement format")
    demo.add_argument("--out", required=True, metavar="DIR")
    demo.add_argument("--persons", type=_positive, default=None, metavar="N")
    demo.add_argument("--seed", type=int, default=1, metavar="S")
    demo.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    demo.add_argument("--clinics", type=_positive, default=None, metavar="N",
                      help="number of clinics (default: one per 11,100 persons)")
    demo.add_argument("--months", type=_months, metavar="YYYY-MM:YYYY-MM",
                      help="the months with visits (default 2021-08:2021-10); listings move with them")
    demo.add_argument("--national", action="store_true",
                      help="Sweden's size: 10.5 million persons and 1,150 clinics (about 5 GB of memory, 300 MB of Parquet)")
    fmt = verbs.add_parser("fmt", help="canonical layout of rulebooks' code blocks; prose untouched")
    fmt.add_argument("rulebooks", nargs="*", metavar="RULEBOOK")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 when a rulebook is not formatted")

    verbs.add_parser("lsp", help="language server (LSP) on standard input and output, for editors")

    example_data = verbs.add_parser("example-data", help="write the records of one of a rulebook's examples as an input file")
    example_data.add_argument("rulebook", metavar="RULEBOOK")
    example_data.add_argument("--example", required=True, metavar="TITLE",
                              help="the example's title, or a part of it that only one title has")
    example_data.add_argument("--out", metavar="FILE", help="a .json file (default: standard output)")
    return parser


def _months(text: str) -> tuple:
    from .demo import month_range

    try:
        return month_range(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0, 1, 2, …)")
    return int(text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# Characters a terminal acts on rather than shows: C0 and C1 controls (but the line break and
# the tab) and the bidirectional overrides that reorder what follows them.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """Text for a terminal: a control character from the input is written as its escape
    (`\\x1b`), so input cannot move the cursor, change colours or hide what follows."""
    return _UNSHOWABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                           else f"\\u{ord(m.group()):04x}", text)


def _out(text: str, raw: bool = False) -> None:
    """Standard output: text for people (escaped), or JSON and HTML for tools (`raw`, which
    escape in their own way)."""
    sys.stdout.write(text if raw else shown(text))


def _err(text: str) -> None:
    text = shown(text)
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def _load(reference: str) -> Rulebook:
    from .api import Rulebook

    try:
        return Rulebook.load(reference)
    except NotFound as error:
        raise UsageError(str(error)) from None


def _assumed(book: Rulebook, args) -> dict:
    """The run's `--assume NAME=VALUE`s, type-checked; a usage error naming the fix."""
    from ..language.assumptions import AssumptionError

    try:
        return book.assume(getattr(args, "assume", None) or [])
    except AssumptionError as error:
        raise UsageError(str(error)) from None


def _warnings(book: Rulebook) -> None:
    for warning in book.warnings:
        _err(warning.format(book.checked.sources))


def _references(args) -> list:
    """The rulebooks named, or every one found (a usage error when there are none)."""
    from ..language.loader import all_rulebook_ids

    references = args.rulebooks or all_rulebook_ids()
    if not references:
        raise UsageError("no rulebooks found (looked in ./rulebooks and RULELANG_PATH)")
    return references


def cmd_check(args) -> int:
    references = _references(args)
    status = EXIT_OK
    checked, found = [], []
    for reference in references:
        try:
            book = _load(reference)
        except RulebookError as error:
            diagnostics, sources, book = list(error.diagnostics), error.sources, None
        else:
            diagnostics, sources = list(book.warnings) + book.proof(), book.checked.sources
        if args.strict:
            diagnostics = [d.as_error() for d in diagnostics]
        failed = book is None or any(d.severity == "error" for d in diagnostics)
        status = EXIT_RULEBOOK if failed else status
        found.extend({**d.to_dict(), "rulebook": reference} for d in diagnostics)
        checked.append({"rulebook": reference, "id": book.id if book else None,
                        "version": book.version if book else None, "ok": not failed,
                        "errors": sum(d.severity == "error" for d in diagnostics),
                        "warnings": sum(d.severity == "warning" for d in diagnostics)})
        if args.format == "json":
            continue
        for diagnostic in diagnostics:
            _err(diagnostic.format(sources))
        if book is not None and not failed:
            _out(f"{book.id} {book.version}: ok ({len(book.program.outputs)} outputs, "
                 f"{len(book.program.rules)} rules, {len(book.program.parameters)} parameters)\n")
        elif book is not None:
            _out(f"{book.id} {book.version}: {checked[-1]['errors']} error(s)"
                 + (" (warnings taken as errors: --strict)" if args.strict else "") + "\n")
    if args.format == "json":
        _out(json.dumps({"rulebooks": checked, "diagnostics": found}, ensure_ascii=False, indent=2) + "\n",
             raw=True)
    return status


def cmd_test(args) -> int:
    from .examples import run_examples

    references = _references(args)
    passed = failed = 0
    broken = False
    reports = []
    for reference in references:
        try:
            book = _load(reference)
        except RulebookError as error:
            _err(error.format())
            broken = True
            continue
        _warnings(book)
        for finding in book.proof():
            _err(finding.format(book.checked.sources))
            broken = broken or finding.severity == "error"
        for outcome in run_examples(book, args.only, _assumed(book, args)):
            if outcome.passed:
                passed += 1
                _out(f"PASS {book.id}: {outcome.title}\n")
            else:
                failed += 1
                _out(f"FAIL {book.id}: {outcome.title}\n")
                for failure in outcome.failures:
                    _out(f"    {failure}\n")
        if args.coverage or args.min_coverage is not None:
            from .coverage import coverage

            reports.append(coverage(book))
    _out(f"{passed} passed, {failed} failed\n")
    below = []
    for report in reports:
        _out(_coverage_text(report))
        if args.min_coverage is not None and report.percent < args.min_coverage:
            below.append(report)
    for report in below:
        _err(f"{report.rulebook}: error: {report.percent:.1f} % of its rules and exceptions apply in an example; "
             f"--min-coverage asks for {args.min_coverage:g} %")
    return EXIT_RULEBOOK if failed or broken or below else EXIT_OK


def _coverage_text(report) -> str:
    lines = [f"coverage {report.rulebook}: {report.applied}/{report.rules} rules and exceptions apply "
             f"({report.percent:.0f} %), {report.considered}/{report.exceptions} exceptions considered, "
             f"{report.read}/{report.periods} parameter periods read"]
    for heading, items in (("applies in no example", report.never_applies),
                           ("never considered", report.never_considered),
                           ("read by no example", report.never_read)):
        lines.extend(f"    {item.where}: {item.what} {item.name}: {heading}" for item in items)
    return "\n".join(lines) + "\n"


def _percent(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, not {text!r}") from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, not {text!r}")
    return value


def _need_on(book: Rulebook, evaluator, outputs) -> None:
    """Refuse before evaluating anything when some records carry no date and --on is not given."""
    if evaluator.on is not None:
        return
    undated = []
    for name in outputs:
        table = book.program.outputs[name].table
        data = evaluator.dataset.table(table)
        if data is not None and data.records and not book.checked.tables[table].decl.dated_by:
            undated.append(f"{name} (per {table})")
    if undated:
        raise UsageError("these outputs are evaluated per record of a table without dates, so they need "
                         f"--on DATE: {', '.join(undated)}")


def cmd_eval(args) -> int:
    from . import render  # imported by the verbs that print what they compute

    book = _load(args.rulebook)
    assumed = _assumed(book, args)
    if args.format == "jsonl":
        return _eval_streamed(book, args, assumed)
    evaluator = book.evaluator(args.input, args.on, assumptions=assumed)
    _need_on(book, evaluator, book.outputs)
    results = list(evaluator.evaluate_all())
    if args.format == "json":
        _out(render.to_json_text(render.results_document(book.id, book.version, results)), raw=True)
    else:
        _out(render.results_text(results))
    _replaced(book, max((r.date for r in results if r.date is not None), default=None))
    return EXIT_OK


def _replaced(book: Rulebook, last_day, compared_with: Optional[Rulebook] = None) -> None:
    """A warning when a run reaches a day on which the rulebook's model is replaced; none
    when it is compared with the rulebook that replaced it (impact), which is the point."""
    replaced = book.checked.replaced_on(last_day)
    if replaced is not None and (compared_with is None or replaced.replaced_by != compared_with.id):
        _warn(replaced)


def _warn(warning) -> None:
    """A warning of a run (a rulebook's `warning`, a replaced model) on stderr."""
    _err(f"{warning.source}: warning: {warning.name}: {warning.message}")


def _eval_streamed(book: Rulebook, args, assumed: dict) -> int:
    """`eval --format jsonl`: results as they are computed, one JSON object a line. On the
    lowered plan in DuckDB when the rulebook has one (memory bounded, a progress bar on a
    terminal), else by the interpreter."""
    import json

    from ..columnar.streaming import NotLowerable, keep_latest, stream_json_lines

    def line(text: str) -> None:
        _out(text, raw=True)

    def as_line(result) -> str:
        return json.dumps(result.to_dict(), ensure_ascii=False) + "\n"

    # The latest date a result was evaluated on, as ISO text, kept only for a rulebook that
    # says it was replaced: whether the run reached the day it was.
    latest: Optional[list] = [None] if book.checked.header.replaced_by is not None else None

    def as_lines(results) -> Iterator[str]:
        for result in results:
            if latest is not None and result.date is not None:
                keep_latest(latest, result.date.isoformat())
            yield as_line(result)

    try:
        undated = [o.name for o in book.program.outputs.values()
                   if not book.checked.tables[o.table].decl.dated_by]
        if undated and args.on is None:
            raise UsageError("these outputs are evaluated per record of a table without dates, so they need "
                             f"--on DATE: {', '.join(undated)}")
        try:
            if assumed:  # the interpreter takes the run's assumptions; the streamed plan does not yet
                raise NotLowerable("assumptions for the run")
            results = stream_json_lines(book, args.input, args.on, _progress if sys.stderr.isatty() else None,
                                        latest)
            first = next(results, None)
        except NotLowerable:
            evaluator = book.evaluator(args.input, args.on, assumptions=assumed)
            results = as_lines(evaluator.evaluate_all())
            first = next(results, None)
        finally:
            _status("")
        if first is not None:
            line(first)
        for result in results:
            line(result)
    finally:
        _status("")
    if latest is not None and latest[0] is not None:
        _replaced(book, dt.date.fromisoformat(latest[0]))
    return EXIT_OK


def cmd_explain(args) -> int:
    from . import render  # imported by the verbs that print what they compute

    book = _load(args.rulebook)
    if args.output not in book.program.outputs:
        raise UsageError(f"rulebook {book.id} has no output {args.output!r}; it has: {', '.join(book.outputs)}")
    table = book.program.outputs[args.output].table
    assumed = _assumed(book, args)
    focus = book.focus(args.output, args.record, assumed) if args.record is not None else None
    if args.example is not None:
        from .examples import example_evaluator

        example = _example(book, args.example)
        evaluator = example_evaluator(book, example, args.on, assumed)
        if args.record is None:  # the record the example expects this output of, when it names one
            expected = {e.record_id for e in example.expectations if e.output == args.output}
            if len(expected) == 1:
                args.record = expected.pop()
    else:
        evaluator = book.evaluator(args.input, args.on, focus, assumptions=assumed)
    _need_on(book, evaluator, [args.output])
    if args.record is None:
        data = evaluator.dataset.table(table)
        if data is None or not data.records:
            raise UsageError(f"the input has no {table} records to explain {args.output} for")
        if len(data.records) > 1:
            raise UsageError(f"the input has {len(data.records)} {table} records; name one with --record ID")
        record = data.records[0]
    else:  # a record the input lacks is named, with its file (a focus loads none of the table then)
        record = book.record(evaluator, args.output, args.record)
    tree = evaluator.explain(args.output, record)
    if args.format == "json":
        _out(render.explanation_json(tree), raw=True)
    elif args.format == "html":
        _out(render.explanation_html(tree, f"{book.id}: {args.output} för {record['__id__']}", args.full), raw=True)
    else:
        _out(render.explanation_text(tree, args.full))
    return EXIT_OK


PROGRESS_WIDTH = 30


def _status(text: str) -> None:
    """One line on stderr, redrawn in place, when a person is watching a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{text}")
        sys.stderr.flush()


def _progress(message: str, done: float) -> None:
    filled = round(done * PROGRESS_WIDTH)
    _status(f"[{'#' * filled}{'-' * (PROGRESS_WIDTH - filled)}] {done:4.0%}  {message}")


class _Failed(Exception):
    """A run on an engine failed; its message is printed and `exit_code` returned."""

    def __init__(self, exit_code: int):
        self.exit_code = exit_code


def _on_engine(book: Rulebook, engine: str, run):
    """`run()` on a columnar engine, with progress on a terminal; its failures printed as
    errors (_Failed carries the exit status)."""
    from ..columnar.lowering import NotLowerable
    from ..columnar.settlement import SettlementError

    try:
        return run(_progress if sys.stderr.isatty() else None)
    except SettlementError as error:
        message = str(error)
        # Input errors already say `FILE: error: …` (or `FILE: record ID: error: …`).
        _err(message if ": error: " in message.split("\n", 1)[0] else f"rulelang: error: {message}")
        raise _Failed(error.exit_code) from None
    except NotLowerable as error:
        _err(f"rulelang: error: {book.id} cannot be settled on {engine}: {error}")
        raise _Failed(EXIT_RULEBOOK) from None
    finally:
        _status("")


def cmd_settle(args) -> int:
    from ..columnar.settlement import settle
    from . import render  # imported by the verbs that print what they compute

    book = _load(args.rulebook)
    assumed = _assumed(book, args)
    result = _on_engine(book, args.engine, lambda progress: settle(
        book, args.month, Path(args.data), Path(args.out) if args.out else None, args.engine, progress, assumed))
    if args.format == "json":
        _out(render.to_json_text(result.to_dict()), raw=True)
    else:
        _out(render.settlement_text(result.to_dict()))
    for warning in result.warnings:
        _warn(warning)
    rejected = sum(c.rejected for c in result.counts)
    if rejected:
        _err(f"rulelang: {rejected} record(s) could not be used; each is in {result.rejected_out} with its reason")
    return EXIT_OK


def cmd_impact(args) -> int:
    from ..columnar.impact import Side, impact
    from .render.impact import impact_csv, impact_html, impact_text

    old, new = _load(args.old), _load(args.new)
    assumed = _assumed(new, args)
    result = _on_engine(new, args.engine, lambda progress: impact(
        Side(old, args.old), Side(new, args.new, assumed), args.month, Path(args.data), args.engine, args.largest,
        progress))
    document = result.to_dict()
    if args.format == "json":
        from . import render
        text = render.to_json_text(document)
    else:
        text = {"text": impact_text, "csv": impact_csv, "html": impact_html}[args.format](document)
    _report(text, args.out, raw=args.format != "text")
    if result.rejected:
        _err(f"rulelang: {result.rejected} record(s) could not be used; settle writes each with its reason")
    from ..columnar.settlement import month_bounds

    _replaced(old, month_bounds(args.month)[1], compared_with=new)
    if new.id != old.id:  # one rulebook under an assumption: one warning
        _replaced(new, month_bounds(args.month)[1], compared_with=old)
    return EXIT_OK


def _report(text: str, out: Optional[str], raw: bool) -> None:
    """A report to standard output, or whole to the file `out`."""
    if out is None:
        _out(text, raw=raw)
        return
    from ..columnar.outputset import OutputSet

    try:
        with OutputSet([Path(out)]) as files:
            files.temporary(Path(out)).write_text(text, encoding="utf-8")
            files.commit()
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror or error}") from None
    _err(f"rulelang: wrote {out}")


def cmd_diff(args) -> int:
    from ..language.diff import diff_document
    from . import render
    from .render.diff import diff_html, diff_text

    document = diff_document(args.old, _load(args.old).checked, args.new, _load(args.new).checked)
    text = {"json": render.to_json_text, "html": diff_html, "text": diff_text}[args.format](document)
    _report(text, args.out, raw=args.format != "text")
    return EXIT_OK


def cmd_serve(args) -> int:
    import os

    from .server import LOCAL, default_workers, fcntl

    data = {}
    for given in args.data:
        name, separator, path = given.partition("=")
        if not separator:  # `--data demo`: the directory is its own name
            name, path = Path(given).name, given
        if not Path(path).is_dir():
            raise UsageError(f"--data {given}: {path} is not a directory of tables")
        data[name.strip()] = Path(path).resolve()
    token = args.token or os.environ.get("RULELANG_TOKEN") or None
    if args.host not in LOCAL and token is None:
        raise UsageError(f"--host {args.host} serves other machines: give --token TOKEN (or RULELANG_TOKEN), "
                         "or bind to 127.0.0.1")
    try:
        import uvicorn  # noqa: F401

        from .serving import serve
    except ImportError:
        raise UsageError("serve needs FastAPI and uvicorn: pip install 'rulelang[serve]'") from None
    workers = args.workers if args.workers is not None else default_workers()
    if workers > 1 and fcntl is None:
        raise UsageError("--workers: on Windows one process serves (the processes would share files without locks)")
    _err(f"rulelang: serving on http://{args.host}:{args.port}/ (data: {', '.join(data) or 'none'}; "
         f"{workers} process{'es' if workers != 1 else ''}); Ctrl-C stops")
    serve(data, token, args.host, args.port, workers)
    return EXIT_OK


def cmd_readings(args) -> int:
    from ..columnar.impact import price_readings
    from ..columnar.settlement import month_bounds
    from ..language.assumptions import readings
    from ..language.values import format_money
    from . import render

    book = _load(args.rulebook)
    if args.data is not None and args.month is None:
        raise UsageError("--data needs --month YYYY-MM: the month whose money the readings move")
    on = None
    if args.month is not None:
        from ..columnar.settlement import SettlementError
        try:
            on = month_bounds(args.month)[1]
        except SettlementError as error:
            raise UsageError(str(error)) from None
    found = readings(book.checked, on)
    priced = None
    if args.data is not None:
        priced = _on_engine(book, args.engine, lambda progress: price_readings(
            book, [r for r in found if r.priceable], args.month, Path(args.data), args.engine, progress))
    entries = []
    for reading in found:
        entry = {"name": reading.name, "default": reading.default, "alternatives": list(reading.alternatives),
                 "cite": reading.cite, "provision": reading.provision, "source": reading.source}
        if priced is not None:
            entry["impact"] = {alternative: format_money(priced.get(reading.name, {}).get(alternative, 0))
                               for alternative in reading.alternatives}
        entries.append(entry)
    document = {"rulebook": book.id, "version": book.version, "month": args.month, "readings": entries}
    if args.format == "json":
        _out(render.to_json_text(document), raw=True)
    else:
        _out(render.readings_text(document))
    return EXIT_OK


def _example(book: Rulebook, title: str):
    """The example with this title, or the only one whose title contains it."""
    examples = book.checked.examples
    found = [e for e in examples if e.title == title] or [e for e in examples if title in e.title]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"rulebook {book.id} has no example titled {title!r}"
                         + did_you_mean(title, [e.title for e in examples]))
    raise UsageError(f"{len(found)} examples of {book.id} have {title!r} in their title; give more of it:\n  "
                     + "\n  ".join(e.title for e in found))


def cmd_example_data(args) -> int:
    from ..language.generator import generate
    from .examples import example_records

    book = _load(args.rulebook)
    example = _example(book, args.example)
    records = example_records(book, example)
    text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if args.out is None:
        _out(text, raw=True)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {args.out}: {error.strerror or error}") from None
        _out(f"{args.out}: {sum(len(rows) for rows in records.values())} records of example {example.title!r}\n")
    if example.on is not None or example.assumptions:
        said = [f"--on {example.on}"] if example.on is not None else []
        said += [f"assuming {a.parameter} = {generate(a.value)}" for a in example.assumptions]
        _err("note: the example is evaluated with " + ", ".join(said) + "; `explain --example` applies them")
    return EXIT_OK


def cmd_fmt(args) -> int:
    from ..language.formatter import format_rulebook
    from ..language.loader import display_path, locate, read

    references = _references(args)
    status, unformatted = EXIT_OK, 0
    for reference in references:
        try:
            path, _ = locate(reference)
        except NotFound as error:
            raise UsageError(str(error)) from None
        shown_path = display_path(path)
        try:
            text = read(path)
            result = format_rulebook(text, shown_path)
        except RulebookError as error:
            _err(error.format())
            _err(f"{shown_path}: not formatted: it does not parse")
            status = EXIT_RULEBOOK
            continue
        for line in result.kept_blocks:
            _err(f"{shown_path}:{line}: warning: this block is left as written: its canonical layout would not "
                 "read the same")
        if result.text == text:
            continue
        unformatted += 1
        if args.check:
            _out(f"would reformat {shown_path} ({result.changed_blocks} block(s))\n")
            status = EXIT_RULEBOOK
        else:
            path.write_text(result.text, encoding="utf-8")
            _out(f"reformatted {shown_path} ({result.changed_blocks} block(s))\n")
    if not unformatted:
        _out(f"{len(references)} rulebook(s) already formatted\n")
    return status


def cmd_lsp(args) -> int:
    try:
        from .lsp import serve
        serve()
    except ImportError as error:
        raise UsageError(f"rulelang lsp needs pygls: pip install 'rulelang[lsp]' ({error})") from None
    return EXIT_OK


def cmd_demo_data(args) -> int:
    from .demo import (
        DEFAULT_PERSONS,
        NATIONAL_CLINICS,
        NATIONAL_PERSONS,
        write_demo_region,
    )

    out = Path(args.out)
    persons = args.persons or (NATIONAL_PERSONS if args.national else DEFAULT_PERSONS)
    clinics = args.clinics or (NATIONAL_CLINICS if args.national and not args.persons else None)
    _status("writing the demo region …")
    counts = write_demo_region(out, persons, args.seed, args.format, clinics=clinics, months=args.months or ())
    _status("")
    for table, count in counts.items():
        _out(f"{out / (table + '.' + args.format)}: {count} records\n")
    return EXIT_OK


COMMANDS = {"check": cmd_check, "test": cmd_test, "eval": cmd_eval, "explain": cmd_explain,
            "settle": cmd_settle, "impact": cmd_impact, "readings": cmd_readings,
            "diff": cmd_diff, "serve": cmd_serve, "demo-data": cmd_demo_data, "example-data": cmd_example_data, "fmt": cmd_fmt, "lsp": cmd_lsp}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) and EXIT_USAGE
    try:
        if args.verb == "serve":  # on the main thread, which alone may handle signals; it runs deep itself
            return cmd_serve(args)
        return run_deep(COMMANDS[args.verb], args)
    except _Failed as failed:
        return failed.exit_code
    except (UsageError, NotFound) as error:
        _err(f"rulelang: error: {error}")
        return EXIT_USAGE
    except RulebookError as error:
        _err(error.format())
        return EXIT_RULEBOOK
    except DataError as error:
        _err(error.format())
        return EXIT_USAGE
    except EvaluationError as error:
        _err(error.format())
        return EXIT_USAGE if error.kind == "data" else EXIT_RULEBOOK
    except KeyboardInterrupt:
        _err("rulelang: interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug: say so plainly, without a traceback
        _err(f"rulelang: internal error: {type(error).__name__}: {error} (please report this)")
        return EXIT_INTERNAL


def run() -> None:
    sys.exit(main())
