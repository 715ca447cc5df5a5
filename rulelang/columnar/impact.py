"""The money a rule change moves: one month settled under two rulebooks (or one rulebook
with and without assumptions) in one engine session, and the two sets of line items compared.

The data is read and checked once when both rulebooks declare the same tables (the usual
case: a revision, an amendment, a flipped reading); otherwise each side's intake runs in the
same session. Both rule plans run over the same checked tables; their line items are joined
line by line (a line is a record of a component's table and the component: its place in
its input file says which), so every changed line is known with both amounts and can be
explained on either side.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import attrs

from ..language.diagnostics import DataError
from ..language.values import format_money, to_text
from .intake import find_sources
from .outputset import scratch_directory
from .settlement import SettlementError, engine_ready, engine_session, month_bounds, plan
from .sql import quote, text_literal

if TYPE_CHECKING:
    from ..interfaces.api import Rulebook

# A word the shell takes as it is (letters of any script included): written without quotes.
PLAIN_WORD = re.compile(r"[\w@%+=:,./-]+")
DEFAULT_LARGEST = 10  # changed lines listed with both amounts and their explain commands


@attrs.frozen
class Side:
    """One side of the comparison: a rulebook as the user named it, and assumptions."""

    book: Rulebook
    name: str  # as named on the command line: an id, `ID@REVISION` or a path
    assumptions: dict = attrs.Factory(dict)  # parameter → value (Rulebook.assume)

    def shown_assumptions(self) -> dict:
        return {name: to_text(value, self.book.program.parameters[name].type)
                for name, value in sorted(self.assumptions.items())}

    def explain_command(self, data: str, component: str, record: str, on: dt.date) -> Optional[str]:
        """The command that explains this side's amount of one line; None when this side has
        no such output (it pays nothing)."""
        if component not in self.book.program.outputs:
            return None
        words = ["rulelang", "explain", self.name, "--input", data, "--output", component,
                 "--record", record, "--on", on.isoformat()]
        for name, value in self.shown_assumptions().items():
            words += ["--assume", f"{name}={value}"]
        return " ".join(word if PLAIN_WORD.fullmatch(word) else shlex.quote(word) for word in words)


@attrs.define
class ChangedLine:
    """A line whose amount (or payee) differs: amounts in öre, 0 where a side has no line."""

    component: str
    record_id: str  # the record to explain (for a clinic-level line, the clinic)
    old_clinic: Optional[str]
    new_clinic: Optional[str]
    old: int
    new: int
    explain: tuple = ()  # (command on the old side, on the new side); None for a side without the output

    @property
    def delta(self) -> int:
        return self.new - self.old


@attrs.define(repr=False)
class Impact:
    """What changing OLD to NEW does to one month's settlement."""

    old: str
    new: str
    old_version: str
    new_version: str
    month: str
    engine: str
    assumptions: dict  # the new side's assumptions, as text
    components: list  # (component, old öre, new öre)
    clinics: list  # (clinic_id, component, old öre, new öre): every clinic and component
    lines_changed: int
    largest: list  # ChangedLine, the largest changes first
    data_reads: int  # 1: the data was read and checked once for both sides
    rejected: int  # records the intake could not use (as settle reports them)
    seconds: float
    phases: dict = attrs.Factory(dict)

    def __repr__(self) -> str:
        return (f"<Impact {self.old} → {self.new} {self.month}: {self.lines_changed} lines changed, "
                f"delta {self.total_new - self.total_old} öre>")

    @property
    def total_old(self) -> int:
        return sum(old for _, old, _ in self.components)

    @property
    def total_new(self) -> int:
        return sum(new for _, _, new in self.components)

    def to_dict(self) -> dict:
        """The JSON of `impact --format json` (CONTRACT): amounts as kronor strings."""
        return {
            "old": self.old, "new": self.new, "month": self.month, "assumptions": dict(self.assumptions),
            "total_delta": format_money(self.total_new - self.total_old),
            "lines_changed": self.lines_changed,
            "clinics": [{"clinic_id": c, "component": k, "old": format_money(o), "new": format_money(n),
                         "delta": format_money(n - o)} for c, k, o, n in self.clinics],
            "largest": [{"record_id": line.record_id, "component": line.component,
                         "clinic_id": line.new_clinic if line.new_clinic is not None else line.old_clinic,
                         "old": format_money(line.old), "new": format_money(line.new),
                         "delta": format_money(line.delta), "explain": list(line.explain)}
                        for line in self.largest],
            "versions": {"old": self.old_version, "new": self.new_version},
            "engine": self.engine,
            "total_old": format_money(self.total_old), "total_new": format_money(self.total_new),
            "components": [{"component": c, "old": format_money(o), "new": format_money(n),
                            "delta": format_money(n - o)} for c, o, n in self.components],
            "data_reads": self.data_reads, "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "phases": {name: round(seconds, 3) for name, seconds in self.phases.items()},
        }


def same_tables(old: Rulebook, new: Rulebook) -> bool:
    """Whether both rulebooks declare the same tables with the same fields, types and keys:
    then one intake serves both."""
    def shape(book: Rulebook) -> dict:
        return {name: (info.decl.key, info.decl.dated_by,
                       {field: str(field_type) for field, (field_type, *_rest) in info.fields.items()})
                for name, info in book.checked.tables.items()}
    return shape(old) == shape(new)


def impact(old: Side, new: Side, month: str, data: Path, engine: str = "duckdb",
           largest: int = DEFAULT_LARGEST, progress: Optional[Callable[[str, float], None]] = None) -> Impact:
    """Settle `month` of `data` under both sides in one engine session and compare."""
    started = time.perf_counter()
    first, last = month_bounds(month)
    data = Path(data)
    engine_ready(engine)
    plans = [plan(side.book, first, last, tuple(sorted(side.assumptions.items()))) for side in (old, new)]
    shared = same_tables(old.book, new.book)
    try:
        sources = [find_sources(data, side.book.checked) for side in ((new,) if shared else (old, new))]
    except DataError as error:
        raise SettlementError(error.format()) from None
    month_only = [lowering.month_only_tables() - checks.read_whole for lowering, _, checks, _ in plans]
    phases, mark = {}, time.perf_counter()
    with scratch_directory("rulelang-spill-") as spill:
        first_intake = (new if shared else old).book.checked
        with engine_session(first_intake, engine, sources[0], (first, last),
                            month_only[0] & month_only[1] if shared else month_only[0], spill, progress,
                            2 if shared else 3) as session:
            session.check_input()
            rejected = sum(c.rejected for c in session.intake.counts.values())
            phases["intake"], mark = time.perf_counter() - mark, time.perf_counter()
            for number, (side, into) in enumerate(((old, "old_lines"), (new, "new_lines"))):
                if number == 1 and not shared:  # the new rulebook reads its own tables
                    session.report.begin(f"checking the input for {side.name}")
                    session.intake = session.intake_of(new.book.checked, sources[1], month_only[1])
                    session.check_input()
                    rejected = max(rejected, sum(c.rejected for c in session.intake.counts.values()))
                session.report.begin(f"settling {month} under {side.name}")
                lowering, sql, _, _ = plans[number]
                try:
                    session.lines(lowering, sql, into)
                except SettlementError as error:
                    raise SettlementError(f"under {side.name}: {error}", error.exit_code) from None
            phases["rules"], mark = time.perf_counter() - mark, time.perf_counter()
            compared = compare(session.db, old, new, plans[0][0], plans[1][0], largest, enums=session.spark is None)
            session.report.finish()
    phases["compare"] = time.perf_counter() - mark
    components, clinics, lines_changed, changed = compared
    for line in changed:
        line.explain = (old.explain_command(str(data), line.component, line.record_id, last),
                        new.explain_command(str(data), line.component, line.record_id, last))
    return Impact(old.name, new.name, old.book.version, new.book.version, month, engine,
                  new.shown_assumptions(), components, clinics, lines_changed, changed, 1 if shared else 2,
                  rejected, time.perf_counter() - started, phases)


# A line's key on both sides packs (component and its table, numbered) with the record's
# place in its input file into one integer: a join on one integer column is several times
# faster than on text (9 s against 3 s for a national month).
PLACE_BITS = 40


def keyed_lines(lines: str, lowering, numbers: dict, enums: bool) -> str:
    """A side's paying lines: the packed key, the payee and the amount in öre. `numbers`:
    (component, table) → its number, the same on both sides. With DuckDB's `enums` the
    component is an enum in name order (collect_lines): its number is looked up by the
    enum's code; otherwise by its text."""
    tables = dict(lowering.component_tables())
    if enums:
        codes = [numbers[(c, tables[c])] for c in sorted({c for c, _, _ in lowering.provisions()})]
        number = f"CAST([{', '.join(str(code) for code in codes)}][enum_code(component) + 1] AS BIGINT)"
    else:
        number = ("CAST(CASE component " + " ".join(f"WHEN {text_literal(c)} THEN {numbers[(c, t)]}"
                                                    for c, t in tables.items()) + " END AS BIGINT)")
    return (f"SELECT {number} * {2 ** PLACE_BITS} + source_line AS k, clinic_id, amount "
            f"FROM {quote(lines)} WHERE amount <> 0")


def compare(db, old: Side, new: Side, old_lowering, new_lowering, largest: int, enums: bool = True) -> tuple:
    """(components, clinics × components, number of changed lines, the largest changes),
    computed where the lines are; only sums and the listed lines come back."""
    pairs = sorted({pair for lowering in (old_lowering, new_lowering) for pair in lowering.component_tables()})
    numbers = {pair: number for number, pair in enumerate(pairs, 1)}
    db.execute(
        "CREATE TEMP TABLE changed AS SELECT COALESCE(o.k, n.k) AS k, "
        "o.clinic_id AS old_clinic, n.clinic_id AS new_clinic, "
        "CAST(COALESCE(o.amount, 0) AS BIGINT) AS old_amount, CAST(COALESCE(n.amount, 0) AS BIGINT) AS new_amount "
        f"FROM ({keyed_lines('old_lines', old_lowering, numbers, enums)}) AS o "
        f"FULL OUTER JOIN ({keyed_lines('new_lines', new_lowering, numbers, enums)}) AS n ON o.k = n.k "
        "WHERE COALESCE(o.amount, 0) <> COALESCE(n.amount, 0) OR o.clinic_id IS DISTINCT FROM n.clinic_id")
    (lines_changed,) = db.execute("SELECT count(*) FROM changed").fetchone()
    rows = db.execute(
        "SELECT k, old_clinic, new_clinic, old_amount, new_amount FROM changed "
        f"ORDER BY abs(new_amount - old_amount) DESC, k LIMIT {int(largest)}").fetchall() if largest > 0 else []
    listed = [(pairs[(int(k) >> PLACE_BITS) - 1][0], int(k) & (2 ** PLACE_BITS - 1)) for k, *_ in rows]
    records = listed_records(db, listed)
    changed = [ChangedLine(component, records.get((component, place), ""), o, n, int(a), int(b))
               for (component, place), (_, o, n, a, b) in zip(listed, rows)]
    sums = {}
    for side, lines in (("old", "old_lines"), ("new", "new_lines")):
        sums[side] = {(clinic, component): int(amount) for clinic, component, amount in db.execute(
            f"SELECT clinic_id, CAST(component AS VARCHAR), CAST(sum(amount) AS INT128) FROM {quote(lines)} "
            "WHERE amount <> 0 GROUP BY clinic_id, CAST(component AS VARCHAR)").fetchall()}
    names = [o.name for o in old_lowering.settled_outputs()]
    names += [o.name for o in new_lowering.settled_outputs() if o.name not in names]
    payees = set()
    for lowering in (old_lowering, new_lowering):
        table = lowering.payee_table()
        if table is not None:
            payees |= {str(row[0]) for row in db.execute(f"SELECT __id FROM {quote(table)}").fetchall()}
    payees |= {clinic for side in sums.values() for clinic, _ in side if clinic is not None}
    numbers = old_lowering.payees_are_numbers() and new_lowering.payees_are_numbers()
    ordered = sorted(payees, key=lambda c: (int(c), c) if numbers and c.lstrip("-").isdigit() else (0, c))
    clinics = [(clinic, component, sums["old"].get((clinic, component), 0), sums["new"].get((clinic, component), 0))
               for clinic in ordered for component in names]
    components = [(component, sum(o for c, k, o, _ in clinics if k == component),
                   sum(n for c, k, _, n in clinics if k == component)) for component in names]
    return components, clinics, int(lines_changed), changed


def listed_records(db, listed: list) -> dict:
    """(component, place in the input file) → the record to explain (for a clinic-level
    line, the clinic), for the few listed lines, looked up on either side."""
    if not listed:
        return {}
    places = ", ".join(str(place) for place in sorted({place for _, place in listed}))
    found = {}
    for lines in ("old_lines", "new_lines"):
        for component, place, record in db.execute(
                f"SELECT CAST(component AS VARCHAR), source_line, COALESCE(NULLIF(record_id, ''), source_record, "
                f"clinic_id) FROM {quote(lines)} WHERE source_line IN ({places}) AND amount <> 0").fetchall():
            found.setdefault((component, int(place)), str(record))
    return found


def price_readings(book: Rulebook, readings: list, month: str, data: Path, engine: str = "duckdb",
                   progress: Optional[Callable[[str, float], None]] = None) -> dict:
    """The money each alternative of each reading moves in `month` (öre, the month's total
    under the alternative less the total under the rulebook's own answer), as
    {reading: {alternative: öre}}. One engine session: the data is read and checked once,
    then the rule plan runs once with the rulebook's answers and once per alternative."""
    first, last = month_bounds(month)
    engine_ready(engine)
    variants = [(reading.name, alternative) for reading in readings for alternative in reading.alternatives]
    assumed = [{}] + [book.assume([f"{name}={alternative}"]) for name, alternative in variants]
    plans = [plan(book, first, last, tuple(sorted(a.items()))) for a in assumed]
    try:
        sources = find_sources(Path(data), book.checked)
    except DataError as error:
        raise SettlementError(error.format()) from None
    month_only = set.intersection(*(lowering.month_only_tables() - checks.read_whole
                                    for lowering, _, checks, _ in plans))
    totals = []
    with scratch_directory("rulelang-spill-") as spill:
        with engine_session(book.checked, engine, sources, (first, last), month_only, spill, progress,
                            len(plans)) as session:
            session.check_input()
            for number, (lowering, sql, _, _) in enumerate(plans):
                name = "the rulebook's own readings" if number == 0 else "=".join(variants[number - 1])
                session.report.begin(f"settling {month} with {name}")
                into = f"variant_{number}_lines"
                try:
                    session.lines(lowering, sql, into)
                except SettlementError as error:
                    raise SettlementError(f"with {name}: {error}", error.exit_code) from None
                (total,) = session.db.execute(f"SELECT CAST(COALESCE(sum(amount), 0) AS INT128) FROM {quote(into)} "
                                              "WHERE amount <> 0").fetchone()
                totals.append(int(total))
                session.db.execute(f"DROP TABLE {quote(into)}")
            session.report.finish()
    priced: dict = {}
    for (name, alternative), total in zip(variants, totals[1:]):
        priced.setdefault(name, {})[alternative] = total - totals[0]
    return priced
