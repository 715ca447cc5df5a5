"""`eval` at the scale of a region: every output of every record, computed by the lowered
plan in DuckDB and streamed out row by row, with memory bounded by DuckDB's limit.

The same values as the interpreter gives (the differential tests hold them so), for
rulebooks the lowering supports; `Streamed.unsupported` says why when it does not, and
`eval` then evaluates record by record. A record the plan cannot value is evaluated again
by the interpreter, so its error is the interpreter's, word for word.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from ..evaluation.evaluator import Result
from ..language.diagnostics import DataError, EvaluationError
from .intake import Intake, bounded_database, find_sources
from .lowering import Lowering, NotLowerable
from .outputset import scratch_directory
from .progress import ProgressReport
from .sql import text_literal

if TYPE_CHECKING:  # a rulebook as the API gives it; this stage needs only its parts
    from ..interfaces.api import Rulebook

BATCH = 10_000
EVERY_DATE = (dt.date(1, 1, 1), dt.date(9999, 12, 31))
PROVISION_KEY = ', "provision": '


def plan(book: Rulebook, on: Optional[dt.date]) -> tuple:
    """(lowering, SQL of every result); NotLowerable when the rulebook's plan cannot be written."""
    lowering = Lowering(book.checked, book.program, *EVERY_DATE)
    return lowering, lowering.results_sql(on)


def stream_results(book: Rulebook, data, on: Optional[dt.date],
                   progress: Optional[Callable[[str, float], None]] = None) -> Iterator[Result]:
    """Every output of every record, in rulebook then input order, as they are computed.
    Raises NotLowerable (before reading anything), DataError for refused input, and
    EvaluationError at the first record that cannot be valued."""
    outputs = list(book.program.outputs.values())
    for number, record_id, text, den, rule, _, payee, on_date in _rows(book, data, on, progress):
        output = outputs[number]
        yield Result(output.table, record_id, output.name, _value(text, den, output.type.kind), output.type,
                     rule.provision if rule else output.provision, rule.source if rule else output.source,
                     payee, dt.date.fromisoformat(on_date) if on_date else None)


def stream_json_lines(book: Rulebook, data, on: Optional[dt.date],
                      progress: Optional[Callable[[str, float], None]] = None,
                      latest: Optional[list] = None) -> Iterator[str]:
    """The same results as `stream_results`, each as the JSON line `eval --format jsonl`
    writes; DuckDB writes the line itself for all but exact fractions, so a region's millions
    of results pass through Python as text. With `latest` (a list of one item), the latest
    date a result was evaluated on is kept in it, as ISO text."""
    outputs = list(book.program.outputs.values())
    for number, record_id, text, den, rule, line, payee, on_date in _rows(book, data, on, progress, lines=True):
        if latest is not None:
            keep_latest(latest, on_date)
        if line is None:
            output = outputs[number]
            line = json.dumps(Result(output.table, record_id, output.name, _value(text, den, output.type.kind),
                                     output.type, rule.provision if rule else output.provision,
                                     rule.source if rule else output.source, payee,
                                     dt.date.fromisoformat(on_date) if on_date else None).to_dict(),
                              ensure_ascii=False)
        yield line + "\n"


def keep_latest(latest: list, day: Optional[str]) -> None:
    """Keep in `latest` (a list of one item) the later of it and `day` (ISO text; None: none)."""
    if day and (latest[0] is None or day > latest[0]):
        latest[0] = day


def _rows(book: Rulebook, data, on, progress, lines: bool = False) -> Iterator[tuple]:
    """(output number, record id, value text, denominator, deciding rule, JSON line or None,
    payee, date evaluated on as text)."""
    lowering, sql = plan(book, on)
    sources = find_sources(data, book.checked)
    outputs = list(book.program.outputs.values())
    rules = {lowering.rule_code(label): rule for label, rule in book.program.rules.items()}
    with scratch_directory("rulelang-spill-") as spill:
        con = bounded_database(spill)
        intake = Intake(con, book.checked, sources)
        report = ProgressReport(con, progress, len(intake.table_order()) + 1)
        try:
            intake.run(report.begin)
            problems = intake.problems()
            if problems:
                raise DataError(problems)
            report.begin("evaluating")
            ordered = f"SELECT * FROM ({sql}) ORDER BY output_no, place"
            query = (_lines_sql(ordered, outputs, lowering.result_provisions()) if lines else
                     f"SELECT output_no, record_id, value, den, decided, error, NULL AS line, payee, on_date "
                     f"FROM ({ordered})")
            cursor = con.execute(query)
            while True:
                rows = cursor.fetchmany(BATCH)
                if not rows:
                    break
                for number, record_id, text, den, decided, error, line, payee, on_date in rows:
                    if error is not None or text is None:
                        _fail(book, data, on, outputs[number], record_id, error)
                    yield number, record_id, text, den, rules.get(decided), line, payee, on_date
            report.finish()
        finally:
            report.stop()
            con.close()


def _lines_sql(ordered: str, outputs: list, provisions: list) -> str:
    """Each result's JSON line, written by DuckDB over the ordered results (a projection, so
    the order stays): kronor with two decimals, whole numbers and text as strings, booleans
    as they are; the provision's text is a constant per output and rule, not a join. An exact
    fraction (a decimal output) is left to Python (`line` NULL)."""
    texts: dict = {}
    for number, code, provision, source in provisions:
        texts.setdefault(number, []).append(
            (code, json.dumps(provision, ensure_ascii=False), json.dumps(source, ensure_ascii=False)))
    kinds = []
    for number, output in enumerate(outputs):
        kind = output.type.kind
        if kind == "money":
            value = ("'\"' || CAST(CAST(CAST(r.value AS HUGEINT) AS DECIMAL(38, 0)) * CAST(0.01 AS DECIMAL(38, 2)) "
                     "AS DECIMAL(38, 2)) || '\"'")
        elif kind == "boolean":
            value = "r.value"
        elif kind in ("decimal", "unrounded", "integer"):
            value = "CASE WHEN r.den = '1' THEN to_json(r.value) END"  # a fraction: Python writes it
        else:
            value = "to_json(r.value)"
        head = text_literal(json.dumps({"table": output.table}, ensure_ascii=False)[:-1] + ', "record": ')
        middle = text_literal(', "output": ' + json.dumps(output.name, ensure_ascii=False) + ', "value": ')
        # The provision, then the payee and date of the row, then the rule's FILE:LINE: the
        # order of Result.to_dict.
        provision = "CASE r.decided " + " ".join(
            f"WHEN {code} THEN {text_literal(PROVISION_KEY + text + ', ' + chr(34) + 'payee' + chr(34) + ': ')}"
            for code, text, _ in texts[number]) + " END"
        source = "CASE r.decided " + " ".join(
            f"WHEN {code} THEN {text_literal(', ' + chr(34) + 'source' + chr(34) + ': ' + where + '}')}"
            for code, _, where in texts[number]) + " END"
        payee_and_date = ("COALESCE(to_json(r.payee), 'null') || ', \"date\": ' || "
                          "COALESCE(to_json(r.on_date), 'null')")
        kinds.append(f"WHEN {number} THEN {head} || to_json(r.record_id) || {middle} || {value} || {provision} "
                     f"|| {payee_and_date} || {source}")
    line = f"CASE r.output_no {' '.join(kinds)} END"
    return (f"SELECT r.output_no, r.record_id, r.value, r.den, r.decided, r.error, "
            f"CASE WHEN r.error IS NULL AND r.value IS NOT NULL THEN {line} END AS line, r.payee, r.on_date "
            f"FROM ({ordered}) AS r")


def _value(text: str, den: Optional[str], kind: str):
    """A result as the interpreter holds it, from the plan's text: money in öre, numbers as
    exact fractions, booleans, dates, text."""
    if kind == "boolean":
        return text == "true"
    if kind == "date":
        return dt.date.fromisoformat(text)
    if den is not None:
        value = Fraction(int(text), int(den))
        return int(value) if kind in ("money", "integer") and value.denominator == 1 else value
    return text


def _fail(book: Rulebook, data, on, output, record_id: str, error: Optional[str]) -> None:
    """The record the plan could not value, evaluated by the interpreter (which says why)."""
    evaluator = book.evaluator(data, on, focus=book.focus(output.name, record_id))
    record = book.record(evaluator, output.name, record_id)
    evaluator.evaluate(output.name, record)  # raises the interpreter's error, word for word
    raise EvaluationError(f"{output.name}: {error or 'no value'}", kind="data",
                          file=evaluator.file_of(output.table), record=record_id)


__all__ = ["NotLowerable", "plan", "stream_json_lines", "stream_results"]
