"""Lower a checked rulebook to SQL: the same rules, run on a columnar engine.

The query is written in DuckDB's dialect and transpiled by sqlglot for Spark. Its shape:
one chain of CTEs per table, each layer adding one computed column (a definition, an
output, or one rule of an output's default-logic tree) and the joins it needs.

Numbers are exact. Every number is a pair (numerator, denominator) of 64-bit integers:
money and integers have denominator 1, input decimals 10^6, literals their own; the
denominator is a compile-time constant except after a division. Rounding is written in
integer arithmetic with the mode the rulebook names, exactly as `values.round_amount`.
Default logic is one column per rule: its value (NULL when it gives none), the label that
decided, and whether a conflict arose anywhere below it.

Beside each value runs its *basis*: the weakest status (as a rank of `BASIS_ORDER`) of the
parameter values it read, with the interpreter's short-circuits and default logic, so that
every line item says how firm it is exactly as its explanation does. Most bases are known
while lowering (one parameter value all month) and cost nothing per row.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from fractions import Fraction
from typing import Callable, Optional, Union

import attrs

from ..evaluation.compiler import Program
from ..evaluation.explanation import RANK
from ..language import syntax as s
from ..language.checker import CheckedRulebook
from ..language.checker.dates import in_force as holds_on, overlap
from ..language.checker.model import names_own_key
from ..language.typesystem import Type
from ..language.values import AMOUNT_TOO_LARGE, MAX_AMOUNT_ORE
from .intake import resolved_references, row_columns
from .sql import DECIMAL_SCALE, FAR_FUTURE, date_literal, quote, text_literal

# SQL that is read, not worked out (see Lowering.bound): a column of the row, as it is or as a
# 128-bit number, or a constant.
READ_SQL = re.compile(r't\."[^"]+"|CAST\(t\."[^"]+" AS HUGEINT\)|CAST\(-?\d+ AS BIGINT\)|TRUE|FALSE|NULL|\'[^\']*\'')
OWN_DATES = "own dates"  # a query of every record of a dated table, each on its own date
NUMERIC = ("money", "unrounded", "integer", "decimal")


def pays_itself(checked: CheckedRulebook, output: str) -> bool:
    """An output paid to its own record's key (a clinic's compensation to the clinic) gives
    clinic-level lines, which carry no record id."""
    decl = checked.outputs[output].decl
    return names_own_key(decl.payee, checked.tables[decl.table].decl.key, checked.resolved)


def too_large(amount: str) -> str:
    """Whether an amount in öre is beyond what one line may pay (values.MAX_AMOUNT_ORE)."""
    return f"abs({amount}) > {MAX_AMOUNT_ORE}"


class NotLowerable(Exception):
    """A construct the SQL backend does not support; evaluate with the interpreter instead."""


@attrs.frozen
class Basis:
    """The weakest status rank of the parameter values a value read: a constant known while
    lowering (`const`, None for none), or per row (`sql`, NULL for none) with the largest
    rank it can take (`most`)."""

    const: Optional[int] = None
    sql: Optional[str] = None
    most: Optional[int] = None

    @property
    def dynamic(self) -> bool:
        return self.sql is not None

    @property
    def ceiling(self) -> int:
        """The largest rank it can take; -1 for none."""
        top = self.most if self.dynamic else self.const
        return -1 if top is None else top

    @property
    def text(self) -> str:
        if self.dynamic:
            return self.sql
        return "CAST(NULL AS INTEGER)" if self.const is None else str(self.const)


NO_BASIS = Basis()


def greatest(*bases: Basis) -> Basis:
    """The basis of a value that read all of these: the weakest of them."""
    known = max((b.const for b in bases if not b.dynamic and b.const is not None), default=None)
    floor = -1 if known is None else known
    varying = [b for b in bases if b.dynamic and b.ceiling > floor]
    if not varying:
        return Basis(known)
    parts = ([str(known)] if known is not None else []) + [b.sql for b in varying]
    sql = parts[0] if len(parts) == 1 else f"GREATEST({', '.join(parts)})"
    return Basis(None, sql, max(floor, *(b.ceiling for b in varying)))


def either(condition: str, when_true: Basis, when_false: Basis) -> Basis:
    """The basis of a value that read `when_true` if `condition` holds, else `when_false`."""
    if when_true == when_false:
        return when_true
    most = max(when_true.ceiling, when_false.ceiling)
    return Basis(None, f"(CASE WHEN {condition} THEN {when_true.text} ELSE {when_false.text} END)",
                 None if most < 0 else most)


def first_of(pairs: list) -> Basis:
    """The basis of the first of several values that is not NULL: [(value SQL, basis)]."""
    if all(b == pairs[0][1] for _, b in pairs):
        return pairs[0][1]
    cases = " ".join(f"WHEN {v} IS NOT NULL THEN {b.text}" for v, b in pairs)
    most = max(b.ceiling for _, b in pairs)
    return Basis(None, f"(CASE {cases} END)", None if most < 0 else most)


def column_basis(basis: Basis, column: str) -> tuple:
    """(columns to add, the basis as read back from the layer): a per-row basis is a column."""
    if not basis.dynamic:
        return [], basis
    return [(column, basis.sql)], Basis(None, f"t.{quote(column)}", basis.most)


@attrs.frozen
class Val:
    """A lowered value: SQL text, for numbers the denominator (an int, or SQL text), and the
    basis of the parameter values it read."""

    sql: str
    den: Union[int, str, None] = None
    basis: Basis = NO_BASIS
    # For an id read from a record: (the table whose record it names, SQL of that record's
    # `__line`), where the intake resolved it (resolved_references); a join on it compares
    # numbers rather than text.
    row: Optional[tuple] = None

    @property
    def numeric(self) -> bool:
        return self.den is not None


def _den_sql(den) -> str:
    return str(den) if isinstance(den, int) else f"({den})"


def align(a: Val, b: Val) -> tuple:
    """Two numbers over one denominator (static when both are)."""
    if isinstance(a.den, int) and isinstance(b.den, int):
        common = math.lcm(a.den, b.den)
        return (_scale(a.sql, common // a.den), _scale(b.sql, common // b.den), common)
    return (f"({a.sql}) * {_den_sql(b.den)}", f"({b.sql}) * {_den_sql(a.den)}",
            f"{_den_sql(a.den)} * {_den_sql(b.den)}")


def _scale(sql: str, factor: int) -> str:
    return sql if factor == 1 else f"(({sql}) * CAST({factor} AS BIGINT))"


def to_whole(v: Val) -> str:
    """A number whose denominator is 1 (money, integers), as SQL."""
    if v.den == 1:
        return v.sql
    raise NotLowerable("an amount that is not whole öre where money was expected")


def floor_div(a: str, b: str) -> str:
    """⌊a / b⌋ for b > 0, whatever the engine's integer division does with negatives."""
    return f"(CASE WHEN ({a}) >= 0 THEN ({a}) // ({b}) ELSE -((-({a}) + ({b}) - 1) // ({b})) END)"


# Numbers are computed in 128 bits (see `field_val`), but DuckDB divides 128-bit integers in
# software, ten times slower than 64-bit ones: a numerator small enough that the rounding's
# doubling cannot overflow 64 bits is divided as BIGINT, others as they are. Exact either way.
NARROW_BELOW = 2 ** 61


def divided(n: str, den, whole: Callable[[str, str], str]) -> str:
    """`whole(n, d)`, an integer division of `n` by the denominator `den` (an int, or SQL
    text), done in 64 bits for the values of `n` that fit (see NARROW_BELOW)."""
    if not isinstance(den, int) or den >= NARROW_BELOW:
        return whole(n, _den_sql(den))
    return (f"(CASE WHEN abs({n}) < {NARROW_BELOW} THEN {whole(f'CAST({n} AS BIGINT)', str(den))} "
            f"ELSE {whole(n, str(den))} END)")


# Each named rounding mode as an integer division of n by d > 0 (SQL texts), whatever the
# engine's integer division does with negatives; the same as `values.round_amount`.
WHOLE_BY_MODE: dict = {
    "down": floor_div,
    "up": lambda n, d: f"(-{floor_div(f'-({n})', d)})",
    "toward zero": lambda n, d: f"(CASE WHEN ({n}) >= 0 THEN ({n}) // ({d}) ELSE -((-({n})) // ({d})) END)",
    "away from zero": lambda n, d: (f"(CASE WHEN ({n}) >= 0 THEN (({n}) + ({d}) - 1) // ({d}) "
                                    f"ELSE -((-({n}) + ({d}) - 1) // ({d})) END)"),
    "half up": lambda n, d: (f"(CASE WHEN ({n}) >= 0 THEN (2 * ({n}) + ({d})) // (2 * ({d})) "
                             f"ELSE -((2 * (-({n})) + ({d})) // (2 * ({d}))) END)"),
}


def round_sql(v: Val, mode: str, unit_ore: int) -> str:
    """A number of öre rounded to whole `unit_ore` by a named mode, in integer arithmetic."""
    if mode not in WHOLE_BY_MODE:
        raise NotLowerable(f"rounding mode {mode}")
    den = v.den * unit_ore if isinstance(v.den, int) else f"{_den_sql(v.den)} * {unit_ore}"
    rounded = divided(v.sql, den, WHOLE_BY_MODE[mode])
    return rounded if unit_ore == 1 else f"({rounded} * {unit_ore})"


def constant(value, value_type: Type) -> Val:
    """A rulebook constant (a parameter value, a literal) as SQL."""
    if value is None:
        return Val("NULL", 1 if value_type.kind in NUMERIC else None)
    kind = value_type.kind
    if kind in NUMERIC:
        fraction = Fraction(value)
        return Val(f"CAST({fraction.numerator} AS BIGINT)", fraction.denominator)
    if kind == "boolean":
        return Val("TRUE" if value else "FALSE")
    if kind == "date":
        return Val(date_literal(value))
    return Val(text_literal(str(value)))


class TableQuery:
    """The CTE chain of one table: a base relation and one layer per computed column."""

    def __init__(self, lowering: "Lowering", table: str, name: str, base_sql: str,
                 fixed_date: Optional[dt.date], in_month: bool = False):
        self.lowering = lowering
        self.table = table
        self.name = name
        self.fixed_date = fixed_date
        self.in_month = in_month  # every row's own date lies in the month (see Lowering.within)
        self.ctes: list[tuple[str, str]] = []
        self.columns: dict[tuple, Val] = {}  # (kind, name) → column of the last layer
        self._alias = 0
        self._layer = None  # (columns added, select, from) of the last CTE while it is a layer that may grow
        self.append((f"{name}__0", base_sql))

    def append(self, cte: tuple) -> None:
        """CTEs are written in the order they are made, so each comes after what it reads."""
        self.ctes.append(cte)
        self.lowering.ctes.append(cte)

    @property
    def current(self) -> str:
        return self.ctes[-1][0]

    def date(self) -> Val:
        if self.fixed_date is not None:
            return Val(date_literal(self.fixed_date))
        return Val("t.__date")

    def add_layer(self, columns: list, joins: list) -> None:
        """A new CTE: every column so far, plus `columns` [(name, sql)], over `joins`. Columns
        that join nothing and read nothing the last layer added join that layer instead, when
        it is the last CTE made: DuckDB parses, binds and optimises each layer's `t.*` anew,
        and a chain half as deep is planned in less time."""
        select = ", ".join(f"{sql} AS {quote(col)}" for col, sql in columns)
        names = [col for col, _ in columns]
        if (not joins and self._layer is not None and self.lowering.ctes[-1] is self.ctes[-1]
                and not any(quote(added) in sql for added in self._layer[0] for _, sql in columns)):
            added, head, tail = self._layer
            self.ctes[-1] = self.lowering.ctes[-1] = (self.current, f"{head}, {select}{tail}")
            self._layer = (added + names, f"{head}, {select}", tail)
            return
        head, tail = f"SELECT t.*, {select}", f" FROM {self.current} AS t {' '.join(joins)}"
        self.append((f"{self.name}__{len(self.ctes)}", head + tail))
        self._layer = (names, head, tail)

    def alias(self, prefix: str) -> str:
        self._alias += 1
        return f"{prefix}{len(self.ctes)}_{self._alias}"


class Lowering:
    """SQL for the line items of one month: every output that is paid to someone."""

    def __init__(self, checked: CheckedRulebook, program: Program, first: dt.date, last: dt.date,
                 assumptions: Optional[dict] = None):
        self.checked = checked
        self.program = program
        self.assumptions = dict(assumptions or {})  # parameter → value for every date (--assume)
        self.first = first
        self.last = last
        self.queries: dict[tuple, TableQuery] = {}
        self.ctes: list[tuple[str, str]] = []  # every CTE, in the order made
        self.read_whole: set = set()  # tables read beyond their own records of the month
        self.resolved = resolved_references(checked)  # (table, field) → column of the line it names
        # tables whose records such references name: their key is read with its line (field_val)
        self.named_by_line = {checked.tables[table].fields[field][0].name for table, field in self.resolved}

    # ------------------------------------------------------------------ relations
    def table_query(self, table: str, fixed_date) -> TableQuery:
        """The query of a table's records on a fixed date (undated contexts), each on its own
        date (a dated table's records in the month: `None`), or every record of a dated table
        each on its own date (`OWN_DATES`: records read from another record)."""
        key = (table, fixed_date)
        if fixed_date is not None:
            self.read_whole.add(table)
        if key not in self.queries:
            decl = self.checked.tables[table].decl
            if fixed_date is None or fixed_date == OWN_DATES:
                date_field = quote(decl.dated_by)
                name = table if fixed_date is None else f"{table}_own"
                base = f"SELECT r.*, r.{date_field} AS __date FROM {quote(table)} AS r"
                if fixed_date is None:
                    base += f" WHERE r.{date_field} BETWEEN {date_literal(self.first)} AND {date_literal(self.last)}"
                query = TableQuery(self, table, quote(name)[1:-1], base, None, in_month=fixed_date is None)
            else:
                name = f"{table}_{fixed_date.strftime('%Y%m%d')}"
                query = TableQuery(self, table, quote(name)[1:-1], f"SELECT r.* FROM {quote(table)} AS r", fixed_date)
            self.queries[key] = query
        return self.queries[key]

    def read_query(self, table: str, reading: TableQuery) -> TableQuery:
        """The query in which another record's definitions are evaluated when `reading`'s rows
        read them: a dated table's records on their own dates, others on the reader's date."""
        if self.checked.tables[table].decl.dated_by:
            return self.table_query(table, OWN_DATES)
        if reading.fixed_date is None:
            return self.on_readers_dates(table, reading)
        return self.table_query(table, reading.fixed_date)

    def on_readers_dates(self, table: str, reading: TableQuery) -> TableQuery:
        """An undated table's records on each date a record of `reading` falls on: the rows a
        reader's own date picks (joined on key and date), as the interpreter evaluates them."""
        key = (table, ("dates of", reading.name))
        if key not in self.queries:
            self.read_whole.add(table)
            dates = f"SELECT DISTINCT __date FROM {quote(reading.ctes[0][0])}"
            self.queries[key] = TableQuery(
                self, table, quote(f"{table}_on_{reading.name}")[1:-1],
                f"SELECT r.*, d.__date FROM {quote(table)} AS r CROSS JOIN ({dates}) AS d", None,
                in_month=reading.in_month)
        return self.queries[key]

    def settled_outputs(self) -> list:
        """The outputs that are paid to someone: the components of a settlement."""
        return [o for o in self.program.outputs.values() if o.payee is not None and o.type.kind == "money"]

    def line_items_sql(self) -> str:
        """One row per record and settled output: payee (a BIGINT where payees are whole
        numbers, see payees_are_numbers, else text), component, amount in öre, the number
        of the deciding rule, record id (none for a record paid to itself: a clinic-level line;
        a BIGINT where every record id is a whole number, see record_ids_are_numbers, else text),
        any error, the record of a keyless table, the basis, and the record's place in its file
        (the order of lines within a clinic and component)."""
        selects = []
        numbered = self.record_ids_are_numbers()
        payee_type = "BIGINT" if self.payees_are_numbers() else "VARCHAR"
        for output in self.settled_outputs():
            decl = self.checked.tables[output.table].decl
            query = self.table_query(output.table, None if decl.dated_by else self.last)
            self.ensure(query, ("output", output.name))
            self.ensure_payee(query, output.name)
            value = query.columns[("output", output.name)]
            by = query.columns[("output_by", output.name)]
            error = query.columns[("output_error", output.name)]
            payee = query.columns[("payee", output.name)]
            if not decl.key or self.pays_itself(output.name):
                record = f"CAST(NULL AS {'BIGINT' if numbered else 'VARCHAR'})"
            else:
                record = f"CAST(t.{quote(decl.key)} AS BIGINT)" if numbered else "t.__id"
            # The record a problem is reported for: its id, or for a clinic-level line the clinic
            # (the payee); only a table without a key needs a column of its own for it.
            source = "CAST(NULL AS VARCHAR)" if decl.key else "t.__id"
            amount = to_whole(value)
            beyond = too_large(amount)
            selects.append(
                f"SELECT CAST({payee.sql} AS {payee_type}) AS clinic_id, {text_literal(output.name)} AS component, "
                f"CAST(CASE WHEN {beyond} THEN NULL ELSE {amount} END AS BIGINT) AS amount, "
                f"CAST(COALESCE({by.sql}, 0) AS INTEGER) AS decided, {record} AS record_id, "
                f"CASE WHEN {beyond} THEN {text_literal(AMOUNT_TOO_LARGE)} ELSE {error.sql} END AS error, "
                f"{source} AS source_record, CAST({value.basis.text} AS INTEGER) AS basis, "
                f"CAST(t.__line AS BIGINT) AS source_line "
                f"FROM {query.current} AS t")
        if not selects:
            raise NotLowerable("the rulebook has no output paid to anyone")
        return self.with_layers("\nUNION ALL\n".join(selects))

    def results_sql(self, on: Optional[dt.date]) -> str:
        """Every output of every record, as `eval` gives them: one row per record and output,
        (output number in the rulebook, the record's place, its id, the value as text, the
        value's denominator, the number of the deciding rule, any error, the payee, the date
        evaluated on as text). Records of a dated table are evaluated on their own dates, the
        others on `on`."""
        selects = []
        for number, output in enumerate(self.program.outputs.values()):
            decl = self.checked.tables[output.table].decl
            if not decl.dated_by and on is None:
                raise NotLowerable(f"{output.name} is evaluated per record of {output.table}, which needs --on")
            query = self.table_query(output.table, None if decl.dated_by else on)
            self.ensure(query, ("output", output.name))
            payee = "CAST(NULL AS VARCHAR)"
            if output.payee is not None:
                self.ensure_payee(query, output.name)
                payee = f"CAST({query.columns[('payee', output.name)].sql} AS VARCHAR)"
            value = query.columns[("output", output.name)]
            by = query.columns[("output_by", output.name)]
            error = query.columns[("output_error", output.name)]
            kind = output.type.kind
            if kind == "boolean":
                text = f"CASE WHEN {value.sql} THEN 'true' WHEN NOT {value.sql} THEN 'false' END"
            elif kind == "date":
                text = f"strftime({value.sql}, '%Y-%m-%d')"
            else:
                text = f"CAST({value.sql} AS VARCHAR)"
            den = f"CAST({_den_sql(value.den)} AS VARCHAR)" if value.numeric else "CAST(NULL AS VARCHAR)"
            if kind == "money" and value.numeric:
                error = Val(f"CASE WHEN {too_large(to_whole(value))} "
                            f"THEN {text_literal(AMOUNT_TOO_LARGE)} ELSE {error.sql} END")
            selects.append(
                f"SELECT {number} AS output_no, CAST(t.__line AS BIGINT) AS place, t.__id AS record_id, "
                f"{text} AS value, {den} AS den, CAST(COALESCE({by.sql}, 0) AS INTEGER) AS decided, "
                f"{error.sql} AS error, {payee} AS payee, strftime({query.date().sql}, '%Y-%m-%d') AS on_date "
                f"FROM {query.current} AS t")
        if not selects:
            raise NotLowerable("the rulebook has no outputs")
        return self.with_layers("\nUNION ALL\n".join(selects))

    def warnings_sql(self) -> Optional[str]:
        """One row with a boolean column per warning of the rulebook: whether it holds for the
        input as a whole on the month's last day (NULL: a value it needs is missing)."""
        if not self.program.warnings:
            return None
        query = TableQuery(self, None, "whole_input", "SELECT 1 AS __one", self.last)
        joins: list = []
        columns = [(f"w__{name}", self.lower(self.checked.data_warnings[name].condition, query, {}, joins).sql)
                   for name in self.program.warnings]
        query.add_layer(columns, joins)
        return self.with_layers(f"SELECT {', '.join(quote(column) for column, _ in columns)} "
                                f"FROM {quote(query.current)}")

    def with_layers(self, query: str) -> str:
        """`query` over every layer the lowering has written, as one statement."""
        return "WITH " + ",\n".join(f"{quote(n)} AS ({sql})" for n, sql in self.ctes) + "\n" + query

    def pays_itself(self, output: str) -> bool:
        return pays_itself(self.checked, output)

    def payee_table(self) -> Optional[str]:
        """The table whose records the settled outputs pay (clinics), when they all pay one:
        each payee names a record of it, or is its own key (an output per clinic paid to
        its clinic_id)."""
        tables = set()
        for output in self.settled_outputs():
            if self.pays_itself(output.name):
                tables.add(output.table)
                continue
            found = self.checked.types.get(id(self.checked.outputs[output.name].decl.payee))
            tables.add(found.name if found is not None and found.kind == "ref" else None)
        return next(iter(tables)) if len(tables) == 1 and None not in tables else None

    def record_ids_are_numbers(self) -> bool:
        """Whether every line's record id is a whole-number key (persons, visits): the plan
        then carries it as a BIGINT, and the line items make it text (its digits, as the
        table's `__id`) once they are sorted, since a sort carries a number more cheaply
        than its text (write_lines)."""
        keyed = [self.checked.tables[o.table] for o in self.settled_outputs()
                 if self.checked.tables[o.table].decl.key and not self.pays_itself(o.name)]
        return bool(keyed) and all(table.fields[table.decl.key][0].kind == "integer" for table in keyed)

    def payees_are_numbers(self) -> bool:
        """Whether payee ids are integers (they sort as numbers, and the plan carries them as
        BIGINT: a sort and a join carry a number more cheaply than its text)."""
        table = self.payee_table()
        key = self.checked.tables[table].decl.key if table else None
        return bool(key) and self.checked.tables[table].fields[key][0].kind == "integer"

    def payee_ids_sql(self) -> Optional[str]:
        """Every record of the payee table as (`id`, as the plan carries its payees; `__id`,
        its id as text); None when no one table names the payees."""
        table = self.payee_table()
        if table is None:
            return None
        key = quote(self.checked.tables[table].decl.key)
        carried = f"CAST({key} AS BIGINT)" if self.payees_are_numbers() else "__id"
        return f"SELECT {carried} AS id, __id FROM {quote(table)}"

    def month_only_tables(self) -> set:
        """Dated tables of which the query (once written) reads only the records dated in the
        month: their other records cannot change this month's line items."""
        return {table for table, fixed_date in self.queries if fixed_date is None} - self.read_whole

    def component_tables(self) -> list:
        """(component, the table whose records give its lines)."""
        return [(o.name, o.table) for o in self.settled_outputs()]

    def rule_code(self, label: str) -> int:
        """A rule's number in the plan (1, 2, …; 0 is an output's default): the plan carries
        which rule decided each line as a small integer, not its label."""
        return sorted(self.program.rules).index(label) + 1

    def result_provisions(self) -> list:
        """(output number, number of the deciding rule, provision, FILE:LINE) for every output
        and rule that can decide it, and (output number, 0, the output's own provision and
        FILE:LINE)."""
        rows = []
        for number, output in enumerate(self.program.outputs.values()):
            rows.append((number, 0, output.provision, output.source))
            for label, rule in self.program.rules.items():
                if output.name in self.checked.rules[label].outputs:
                    rows.append((number, self.rule_code(label), rule.provision, rule.source))
        return rows

    def provisions(self) -> list:
        """(component, number of the deciding rule, provision) for every rule that can decide
        a settled output, and (component, 0, the output's own provision) for its default."""
        rows = []
        for output in self.settled_outputs():
            rows.append((output.name, 0, output.provision))
            for label, rule in self.program.rules.items():
                if output.name in self.checked.rules[label].outputs:
                    rows.append((output.name, self.rule_code(label), rule.provision))
        return rows

    def ensure_payee(self, query: TableQuery, output: str) -> None:
        key = ("payee", output)
        if key in query.columns:
            return
        joins: list = []
        value = self.lower(self.checked.outputs[output].decl.payee, query, {}, joins)  # its basis: not the line's
        column = f"p__{output}"
        query.add_layer([(column, value.sql)], joins)
        query.columns[key] = Val(f"t.{quote(column)}")

    # ------------------------------------------------------------------ computed columns
    def ensure(self, query: TableQuery, item: tuple) -> None:
        """Make a definition or output of the query's table a column of its last layer."""
        if item in query.columns:
            return
        kind, name = item
        if kind == "definition":
            decl = self.checked.definitions[(query.table, name)].decl
            joins: list = []
            value = self.lower(decl.expr, query, {}, joins)
            self.add_value_column(query, item, f"d__{name}", value, joins)
        elif kind == "output":
            self.ensure_output(query, name)
        else:
            raise AssertionError(item)

    def add_value_column(self, query: TableQuery, item: tuple, column: str, value: Val, joins: list) -> None:
        columns = [(column, value.sql)]
        den = value.den
        if isinstance(den, str):
            columns.append((column + "__den", den))
            den = f"t.{quote(column + '__den')}"
        basis_columns, basis = column_basis(value.basis, column + "__b")
        query.add_layer(columns + basis_columns, joins)
        query.columns[item] = Val(f"t.{quote(column)}", den, basis)

    def ensure_output(self, query: TableQuery, name: str) -> None:
        output = self.program.outputs[name]
        decl = self.checked.outputs[name].decl
        roots, (value, by, problem) = self.ensure_level(query, output.roots, output)
        joins: list = []
        decided = first_of([(r.sql, r.basis) for r in roots]) if roots else NO_BASIS
        if decl.default is not None:
            default = self.lower(decl.default, query, {}, joins)
            final = f"COALESCE({value}, {self.as_den(default, roots[0] if roots else default)})" \
                if roots else default.sql
            # The default stands because no rule applied: it rests on each of them not applying.
            fallback = greatest(*(r.basis for r in roots), default.basis)
        else:
            final = value if roots else "NULL"
            fallback = greatest(*(r.basis for r in roots))
        basis = either(f"({value}) IS NOT NULL", decided, fallback) if roots else fallback
        in_force = " OR ".join(f"({self.in_force(self.program.rules[l], query)})" for l in output.roots) or "FALSE"
        error = (f"COALESCE({problem}, CASE WHEN ({final}) IS NULL THEN "
                 f"(CASE WHEN {in_force} THEN 'no rule applies' ELSE 'no rule in force' END) END)")
        column = f"o__{name}"
        basis_columns, basis = column_basis(basis, column + "__b")
        query.add_layer([(column, final), (column + "__by", by if roots else "NULL"),
                         (column + "__err", error)] + basis_columns, joins)
        den = roots[0].den if roots else 1
        query.columns[("output", name)] = Val(f"t.{quote(column)}", den, basis)
        query.columns[("output_by", name)] = Val(f"t.{quote(column + '__by')}")
        query.columns[("output_error", name)] = Val(f"t.{quote(column + '__err')}")

    def as_den(self, value: Val, like: Val) -> str:
        if not value.numeric:
            return value.sql
        if value.den == like.den:
            return value.sql
        if isinstance(value.den, int) and isinstance(like.den, int) and like.den % value.den == 0:
            return _scale(value.sql, like.den // value.den)
        raise NotLowerable("values of one output over different denominators")

    def ensure_level(self, query: TableQuery, labels: list, output) -> tuple:
        """The rule columns of one level (an output's roots, a rule's exceptions), and their
        combined value, deciding label and problem. The rules of a level do not read one
        another, so they are one layer (after their exceptions' layers): a thousand sibling
        rules are one query step, not a thousand nested ones."""
        pending = [label for label in dict.fromkeys(labels) if ("rule", label) not in query.columns]
        for label in pending:  # the exceptions first: each rule's value reads them
            self.ensure_level(query, self.program.rules[label].exceptions, output)
        columns, joins = [], []
        for label in pending:
            if ("rule", label) not in query.columns:
                self.rule_columns(query, label, output, columns, joins)
        if columns:
            query.add_layer(columns, joins)
        values = [query.columns[("rule", label)] for label in labels]
        bys = [query.columns[("rule_by", label)] for label in labels]
        problems = [query.columns[("rule_problem", label)] for label in labels]
        return values, self.level(values, bys, problems)

    def level(self, values: list, bys: list, problems: list) -> tuple:
        """The value, deciding label and problem of rules at one level. A problem is NULL, or the
        text of what went wrong below: 'conflict' (rules disagree) or 'a value is missing'."""
        if not values:
            return "NULL", "NULL", "CAST(NULL AS VARCHAR)"
        value = values[0].sql if len(values) == 1 else f"COALESCE({', '.join(v.sql for v in values)})"
        by = "(CASE " + " ".join(f"WHEN {v.sql} IS NOT NULL THEN {b.sql}" for v, b in zip(values, bys)) + " END)"
        parts = [p.sql for p in problems]
        if len(values) > 1:
            # Rules that apply disagree when their values are not all one: the least and the
            # greatest of the values given (both skip NULLs) differ. Linear in the rules.
            listed = ", ".join(v.sql for v in values)
            parts.append(f"CASE WHEN least({listed}) <> greatest({listed}) THEN 'conflict' END")
        return value, by, (f"COALESCE({', '.join(parts)})" if len(parts) > 1 else parts[0])

    def in_force(self, rule, query: TableQuery) -> str:
        if query.fixed_date is not None:  # decided now, not per row
            return "TRUE" if holds_on(rule.valid_from, rule.valid_until, query.fixed_date) else "FALSE"
        return " AND ".join(self.within(query, None, rule.valid_from, rule.valid_until)) or "TRUE"

    def within(self, query: TableQuery, on: Optional[Val], valid_from, valid_until) -> list:
        """The SQL tests that the date a row is evaluated on (`on`, or its query's date) lies
        from `valid_from` until `valid_until` (either may be None). Where that date is the
        row's own and every row's lies in the month, a bound every day of the month meets
        is no test: a fee in force since 2020 is not compared with each visit's date."""
        whole_month = on is None and query.in_month
        date = query.date().sql if on is None else on.sql
        tests = []
        if valid_from and not (whole_month and valid_from <= self.first):
            tests.append(f"{date} >= {date_literal(valid_from)}")
        if valid_until and not (whole_month and valid_until >= self.last):
            tests.append(f"{date} <= {date_literal(valid_until)}")
        return tests

    def rule_columns(self, query: TableQuery, label: str, output, columns: list, joins: list) -> None:
        """One rule's value, deciding label, problem and basis, as columns (and their joins) of
        the layer its level adds; its exceptions are columns already."""
        rule = self.program.rules[label]
        decl = self.checked.rules[label].decl
        children, (exc_value, exc_by, exc_problem) = self.ensure_level(query, rule.exceptions, output)
        lowered_condition = self.lower(decl.condition, query, {}, joins) if decl.condition is not None else None
        condition = lowered_condition.sql if lowered_condition is not None else "TRUE"
        condition_basis = lowered_condition.basis if lowered_condition is not None else NO_BASIS
        value = self.lower(decl.value, query, {}, joins)
        value_basis = value.basis
        den = value.den
        if children:
            common = children[0].den
            if any(c.den != common for c in children) or (value.numeric and value.den != common):
                if all(isinstance(c.den, int) for c in children) and isinstance(value.den, int):
                    common = math.lcm(value.den, *(c.den for c in children))
                    exc_value = "COALESCE(" + ", ".join(_scale(c.sql, common // c.den) for c in children) + ")"
                    value = Val(_scale(value.sql, common // value.den), common)
                    den = common
                else:
                    raise NotLowerable("exceptions over different denominators")
        in_force = self.in_force(rule, query)
        # What the rule's value rests on (as its explanation says): the first exception that
        # gives the value; otherwise its condition, its formula if it applies, and each of its
        # exceptions not applying.
        not_applying = greatest(*(c.basis for c in children), condition_basis)
        own_basis = greatest(not_applying, either(f"({condition})", value_basis, NO_BASIS))
        if children:
            own_basis = either(f"({exc_value}) IS NOT NULL", first_of([(c.sql, c.basis) for c in children]),
                               own_basis)
        basis = either(f"({in_force})", own_basis, NO_BASIS) if in_force != "TRUE" else own_basis
        own = f"CASE WHEN ({condition}) THEN {value.sql} END"
        # A condition or value that comes out NULL had a parameter without a value on the
        # date or a lookup without a row: the interpreter stops there, and so must this.
        missing = (f"CASE WHEN ({condition}) IS NULL OR (({condition}) AND ({value.sql}) IS NULL) "
                   f"THEN 'a value is missing' END")
        column = f"r__{label}"
        if children:
            val_sql = f"(CASE WHEN {in_force} THEN COALESCE({exc_value}, {own}) END)"
            by_sql = (f"(CASE WHEN {in_force} THEN (CASE WHEN {exc_value} IS NOT NULL THEN {exc_by} "
                      f"WHEN ({condition}) THEN {self.rule_code(label)} END) END)")
            problem_sql = (f"(CASE WHEN {in_force} THEN COALESCE({exc_problem}, "
                           f"CASE WHEN {exc_value} IS NULL THEN {missing} END) END)")
        else:
            val_sql = f"(CASE WHEN {in_force} THEN {own} END)"
            by_sql = f"(CASE WHEN {in_force} AND ({condition}) THEN {self.rule_code(label)} END)"
            problem_sql = f"(CASE WHEN {in_force} THEN {missing} END)"
        basis_columns, basis = column_basis(basis, column + "__b")
        columns.extend([(column, val_sql), (column + "__by", by_sql), (column + "__p", problem_sql)] + basis_columns)
        query.columns[("rule", label)] = Val(f"t.{quote(column)}", den, basis)
        query.columns[("rule_by", label)] = Val(f"t.{quote(column + '__by')}")
        query.columns[("rule_problem", label)] = Val(f"t.{quote(column + '__p')}")

    # ------------------------------------------------------------------ expressions
    def type_of(self, e: s.Expr) -> Type:
        return self.checked.types[id(e)]

    def lower(self, e: s.Expr, query: TableQuery, env: dict, joins: list) -> Val:
        """SQL for `e` on a row `t` of `query`; `env` maps aggregate variables to row aliases."""
        method = getattr(self, "_" + type(e).__name__.lower(), None)
        if method is None:
            raise NotLowerable(type(e).__name__)
        return method(e, query, env, joins)

    def _literal(self, e: s.Literal, query, env, joins) -> Val:
        if e.kind == "none":
            return Val("NULL")
        return constant(e.value, self.type_of(e) if e.kind != "decimal" else Type("decimal"))

    def field_val(self, alias, table: str, field: str) -> Val:
        """A field of a record, from its alias (`t`, a join's alias) or a function giving the
        column of a field (a record carried as columns, see `navigation`)."""
        field_type = self.checked.tables[table].fields[field][0]
        column = alias if callable(alias) else (lambda name: f"{alias}.{quote(name)}")
        sql = column(field)
        # Numbers are computed in 128 bits: an amount times a rate times a weight cannot
        # overflow before it is rounded to the line's amount (which is checked, see `amount`).
        if field_type.kind == "decimal":
            return Val(f"CAST({sql} AS HUGEINT)", DECIMAL_SCALE)
        if field_type.kind in ("money", "integer"):
            return Val(f"CAST({sql} AS HUGEINT)", 1)
        if (table, field) in self.resolved:
            return Val(sql, row=(field_type.name, column(self.resolved[(table, field)])))
        if field == self.checked.tables[table].decl.key and table in self.named_by_line:
            return Val(sql, row=(table, column("__line")))
        return Val(sql)

    def _name(self, e: s.Name, query: TableQuery, env: dict, joins: list) -> Val:
        resolution = self.checked.resolved[id(e)]
        kind = resolution[0]
        if kind == "enum":
            return Val(text_literal(resolution[2]))
        if kind == "var":
            return Val(env[resolution[1]][0])
        if kind == "evaluation_date":
            return query.date()
        if kind == "parameter":
            return self.parameter(resolution[1], query, None)
        if kind == "field":
            _, table, field = resolution
            return self.field_val("t", table, field)
        if kind in ("definition", "output"):
            _, table, name = resolution
            if table is None:  # a definition of no table: inline, on this row's date
                decl = self.checked.definitions[(None, name)].decl
                return self.lower(decl.expr, query, env, joins)
            if table != query.table:
                raise NotLowerable(f"{kind} {name} of {table} used from {query.table}")
            self.ensure(query, (kind, name))
            return query.columns[(kind, name)]
        raise NotLowerable(str(resolution))

    def parameter(self, name: str, query: TableQuery, keys: Optional[list], on: Optional[Val] = None) -> Val:
        """The value in force on the row's date, or on the date `on` (`as of`)."""
        parameter = self.program.parameters[name]
        value_type = parameter.type
        if name in self.assumptions:  # one value for every date, as the interpreter takes it
            return attrs.evolve(constant(self.assumptions[name], value_type), basis=Basis(RANK["assumed"]))
        fixed_date = query.fixed_date if on is None else None
        whens = []
        # Where every row's date lies in the month, values not in force then never apply, and
        # one value in force all month is a constant (so `if` on it is decided here). A date
        # given by `as of`, or records read on their own dates, may lie outside the month:
        # every value is a candidate.
        in_month = on is None and query.in_month
        values = [v for v in parameter.values
                  if not in_month or overlap(v.valid_from, v.valid_until, self.first, self.last)]
        if in_month and not parameter.keyed and len(values) == 1 and not self.within(
                query, None, values[0].valid_from, values[0].valid_until):
            return attrs.evolve(constant(values[0].value, value_type), basis=Basis(RANK[values[0].status]))
        ranks = []  # (in force, rank of the value's status)
        for value in values:
            in_force = self.within(query, on, value.valid_from, value.valid_until)
            if fixed_date is not None:  # decided now, not per row
                if not holds_on(value.valid_from, value.valid_until, fixed_date):
                    continue
                in_force = []
            ranks.append((" AND ".join(in_force) or "TRUE", RANK[value.status]))
            if parameter.keyed:
                for row_keys, row_value in value.value:
                    conditions = list(in_force) + [self.row_key_sql(k, key) for k, key in zip(row_keys, keys)]
                    lowered = constant(row_value, value_type)
                    whens.append((" AND ".join(conditions) or "TRUE", lowered))
            else:
                whens.append((" AND ".join(in_force) or "TRUE", constant(value.value, value_type)))
        if not whens:
            return Val("NULL", 1 if value_type.kind in NUMERIC else None)
        if len({rank for _, rank in ranks}) == 1:
            basis = Basis(ranks[0][1])
        else:
            basis = Basis(None, "(CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in ranks) + " END)",
                          max(r for _, r in ranks))
        if value_type.kind in NUMERIC:
            common = math.lcm(*(v.den for _, v in whens))
            cases = " ".join(f"WHEN {c} THEN {_scale(v.sql, common // v.den)}" for c, v in whens)
            return Val(f"(CASE {cases} END)", common, basis)
        cases = " ".join(f"WHEN {c} THEN {v.sql}" for c, v in whens)
        return Val(f"(CASE {cases} END)", None, basis)

    def row_key_sql(self, row_key: tuple, key: Val) -> str:
        low, high, enum_value = row_key
        if enum_value is not None:
            return f"{key.sql} = {text_literal(enum_value)}"
        if low is None:  # `any`
            return f"({key.sql}) IS NOT NULL"
        whole = f"({key.sql})" if key.den == 1 else f"(({key.sql}) / {_den_sql(key.den)})"
        parts = [f"{whole} >= {low}"]
        if high is not None:
            parts.append(f"{whole} <= {high}")
        return " AND ".join(parts)

    def _asof(self, e: s.AsOf, query, env, joins) -> Val:
        date = self.lower(e.date, query, env, joins)
        target = e.target
        if isinstance(target, s.Lookup):
            keys = [self.lower(k, query, env, joins) for k in target.keys]
            found = self.parameter(target.target.name, query, keys, on=date)
            return attrs.evolve(found, basis=greatest(date.basis, *(k.basis for k in keys), found.basis))
        found = self.parameter(target.name, query, None, on=date)
        return attrs.evolve(found, basis=greatest(date.basis, found.basis))

    def _lookup(self, e: s.Lookup, query, env, joins) -> Val:
        keys = [self.bound(self.lower(k, query, env, joins), query, env, joins) for k in e.keys]
        found = self.parameter(e.target.name, query, keys)
        return attrs.evolve(found, basis=greatest(*(k.basis for k in keys), found.basis))

    def bound(self, value: Val, query: TableQuery, env: dict, joins: list) -> Val:
        """`value` as a column of a layer of its own, when it is worked out rather than read
        (READ_SQL) and reads nothing joined for the layer being built (nor an aggregate's
        variables). DuckDB shares no subexpression under a CASE: an age used as a lookup key
        was worked out again for each row of the table it is looked up in, and the product
        under a rounding again in each of the rounding's branches, dozens of times a record
        in all. Bound, each is worked out once a record, and an expression bound twice in
        one query is one column. A bound value is worked out for every record, also where
        the rule reading it does not apply; it reads only the record and the parameters, so
        nothing in it can fail but an arithmetic overflow, far beyond any amount a line holds."""
        if env or joins or READ_SQL.fullmatch(value.sql):
            return value
        item = ("bound", value.sql)
        if item not in query.columns:
            number = sum(1 for kind, _ in query.columns if kind == "bound")
            self.add_value_column(query, item, f"b__{number}", value, [])
        return query.columns[item]

    def record_alias(self, target: s.Expr, query: TableQuery, env: dict, joins: list) -> tuple:
        """(alias, table, basis) of the row a record-valued expression designates, joining it in."""
        target_type = self.type_of(target)
        if isinstance(target, s.Name) and self.checked.resolved[id(target)][0] == "var":
            return env[target.name][1], target_type.name, NO_BASIS
        if isinstance(target, s.HistoryLookup):
            alias, basis = self.history_join(target, query, env, joins)
            return alias, target_type.name, basis
        if target_type.kind == "ref" and not env:
            return self.navigation(query, target)
        if target_type.kind == "ref":
            key = self.lower(target, query, env, joins)
            table = target_type.name
            alias = query.alias("j")
            self.read_whole.add(table)
            joins.append(f"LEFT JOIN {quote(table)} AS {alias} ON {self.names_record(alias, table, key)}")
            return alias, table, key.basis
        raise NotLowerable(f"navigation from {target_type}")

    def navigation(self, query: TableQuery, target: s.Expr) -> tuple:
        """The record a reference of the row names (`person_id`, `person_id.listed_clinic`),
        joined once per query and carried as columns: every rule and definition that reads
        a field of it reads those columns, not a join of its own (three reads of the person
        of a visit are one join of persons, not three)."""
        key = ("record", target)  # syntax nodes compare by structure, not position
        if key not in query.columns:
            joins: list = []
            value = self.lower(target, query, {}, joins)
            table = self.type_of(target).name
            alias = query.alias("n")
            self.read_whole.add(table)
            joins.append(f"LEFT JOIN {quote(table)} AS {alias} ON {self.names_record(alias, table, value)}")
            prefix = f"{alias}__"
            lines = ["__line"] if table in self.named_by_line else []
            fields = list(self.checked.tables[table].fields) + ["__id"] + lines + row_columns(self.resolved, table)
            query.add_layer([(prefix + field, f"{alias}.{quote(field)}") for field in fields], joins)
            query.columns[key] = (prefix, table, value.basis)
        prefix, table, basis = query.columns[key]
        return (lambda field: f"t.{quote(prefix + field)}"), table, basis

    def names_record(self, alias: str, table: str, key: Val) -> str:
        """The join condition of the record of `table` (joined as `alias`) that the id `key`
        names: by its line where the intake resolved the id (Val.row), else by its key. On
        the demo region's 2.4 M persons, joins on lines took the rules from 1.9 to 1.65 s."""
        if key.row is not None and key.row[0] == table:
            return f"{alias}.__line = {key.row[1]}"
        return f"{alias}.{quote(self.checked.tables[table].decl.key)} = {key.sql}"

    def history_join(self, e: s.HistoryLookup, query: TableQuery, env: dict, joins: list) -> tuple:
        """(alias, basis) of the history row in force on a date, joined in."""
        table = e.target.name
        history = self.checked.tables[table].decl.history
        key = self.lower(e.key, query, env, joins)
        on = self.lower(e.on, query, env, joins)
        alias = query.alias("h")
        self.read_whole.add(table)
        until = (f"COALESCE({alias}.{quote(history.until_field)}, {FAR_FUTURE})"
                 if history.until_field else FAR_FUTURE)
        by = f"{alias}.{quote(history.by_field)} = {key.sql}"
        resolved = self.resolved.get((table, history.by_field))
        named = self.checked.tables[table].fields[history.by_field][0].name  # the table the rows belong to
        if resolved is not None and key.row is not None and key.row[0] == named:
            by = f"{alias}.{quote(resolved)} = {key.row[1]}"  # the line of the record both name
        joins.append(f"LEFT JOIN {quote(table)} AS {alias} ON {by} "
                     f"AND {alias}.{quote(history.from_field)} <= {on.sql} AND {until} >= {on.sql}")
        return alias, greatest(key.basis, on.basis)

    def _historylookup(self, e: s.HistoryLookup, query, env, joins) -> Val:
        alias, basis = self.history_join(e, query, env, joins)
        return Val(f"{alias}.__id", None, basis)

    def _fieldaccess(self, e: s.FieldAccess, query: TableQuery, env: dict, joins: list) -> Val:
        kind, table, name = self.checked.resolved[id(e)]
        alias, target_table, target_basis = self.record_alias(e.target, query, env, joins)
        if kind == "field":
            return attrs.evolve(self.field_val(alias, target_table, name), basis=target_basis)
        # A definition of another table's record, from the query that evaluates it on its date.
        other = self.read_query(table, query)
        self.ensure(other, (kind, name))
        column = other.columns[(kind, name)]
        joined = query.alias("d")
        key_field = self.checked.tables[table].decl.key or "__id"
        target_key = alias(key_field) if callable(alias) else f"{alias}.{quote(key_field)}"
        on = f"{joined}.{quote(key_field)} = {target_key}"
        if other.fixed_date is None and not self.checked.tables[table].decl.dated_by:
            on += f" AND {joined}.__date = {query.date().sql}"  # the row for the reader's date
        joins.append(f"LEFT JOIN {quote(other.current)} AS {joined} ON {on}")
        den = column.den.replace("t.", f"{joined}.", 1) if isinstance(column.den, str) else column.den
        basis = column.basis
        if basis.dynamic:
            basis = attrs.evolve(basis, sql=basis.sql.replace("t.", f"{joined}.", 1))
        return Val(column.sql.replace("t.", f"{joined}.", 1), den, greatest(target_basis, basis))

    def _unary(self, e: s.Unary, query, env, joins) -> Val:
        operand = self.lower(e.operand, query, env, joins)
        if e.op == "not":
            return Val(f"(NOT {operand.sql})", None, operand.basis)
        return Val(f"(-{operand.sql})", operand.den, operand.basis)

    def _binary(self, e: s.Binary, query, env, joins) -> Val:
        left = self.lower(e.left, query, env, joins)
        right = self.lower(e.right, query, env, joins)
        return attrs.evolve(self._binary_value(e, left, right), basis=self._binary_basis(e.op, left, right))

    @staticmethod
    def _binary_basis(op: str, left: Val, right: Val) -> Basis:
        """`and` and `or` read their right side only when the left does not decide, as the
        interpreter evaluates them; every other operation reads both sides."""
        both = greatest(left.basis, right.basis)
        if op == "and":
            return either(f"({left.sql})", both, left.basis)
        if op == "or":
            return either(f"({left.sql})", left.basis, both)
        return both

    def _binary_value(self, e: s.Binary, left: Val, right: Val) -> Val:
        op = e.op
        if op in ("and", "or"):
            return Val(f"({left.sql} {op.upper()} {right.sql})")
        if op in ("=", "!=", "<", "<=", ">", ">="):
            if left.numeric and right.numeric:
                a, b, _ = align(left, right)
            else:
                a, b = left.sql, right.sql
            optional = self.type_of(e.left).optional or self.type_of(e.right).optional
            if op == "=":
                return Val(f"({a} IS NOT DISTINCT FROM {b})" if optional else f"({a} = {b})")
            if op == "!=":
                return Val(f"({a} IS DISTINCT FROM {b})" if optional else f"({a} <> {b})")
            return Val(f"({a} {op} {b})")
        if op in "+-":
            a, b, den = align(left, right)
            return Val(f"({a} {op} {b})", den)
        if op == "*":
            den = left.den * right.den if isinstance(left.den, int) and isinstance(right.den, int) \
                else f"{_den_sql(left.den)} * {_den_sql(right.den)}"
            return Val(f"({left.sql} * {right.sql})", den)
        if op == "/":
            # (a/b) / (c/d) = (a·d) / (b·c), with the sign moved to the numerator.
            numerator = f"({left.sql} * {_den_sql(right.den)})"
            denominator = f"({_den_sql(left.den)} * {right.sql})"
            return Val(f"(CASE WHEN {denominator} < 0 THEN -{numerator} ELSE {numerator} END)",
                       f"NULLIF(ABS({denominator}), 0)")
        raise NotLowerable(op)

    def _isnone(self, e: s.IsNone, query, env, joins) -> Val:
        operand = self.lower(e.operand, query, env, joins)
        return Val(f"({operand.sql} IS {'NOT ' if e.negated else ''}NULL)", None, operand.basis)

    def _member(self, e: s.Member, query, env, joins) -> Val:
        operand = self.lower(e.operand, query, env, joins)
        items = [self.lower(i, query, env, joins) for i in e.items]
        return Val(f"({operand.sql} {'NOT ' if e.negated else ''}IN ({', '.join(i.sql for i in items)}))", None,
                   greatest(operand.basis, *(i.basis for i in items)))

    def _rounded(self, e: s.Rounded, query, env, joins) -> Val:
        operand = self.bound(self.lower(e.operand, query, env, joins), query, env, joins)
        return Val(round_sql(operand, e.mode, 100 if e.unit == "kronor" else 1), 1, operand.basis)

    def _otherwise(self, e: s.Otherwise, query, env, joins) -> Val:
        value = self.lower(e.operand, query, env, joins)
        fallback = self.lower(e.fallback, query, env, joins)
        basis = greatest(value.basis, either(f"({value.sql}) IS NULL", fallback.basis, NO_BASIS))
        if value.numeric:
            a, b, den = align(value, fallback)
            return Val(f"COALESCE({a}, {b})", den, basis)
        return Val(f"COALESCE({value.sql}, {fallback.sql})", None, basis)

    def _if(self, e: s.If, query, env, joins) -> Val:
        condition = self.lower(e.condition, query, env, joins)
        if condition.sql in ("TRUE", "FALSE"):  # decided by the rulebook alone: one branch only
            taken = self.lower(e.then if condition.sql == "TRUE" else e.otherwise, query, env, joins)
            basis = greatest(condition.basis, taken.basis)
            if not taken.numeric and self.type_of(e).kind in NUMERIC:
                return Val(taken.sql, 1, basis)  # `none` where the other branch is a number
            return attrs.evolve(taken, basis=basis)
        then = self.lower(e.then, query, env, joins)
        otherwise = self.lower(e.otherwise, query, env, joins)
        basis = greatest(condition.basis, either(f"({condition.sql})", then.basis, otherwise.basis))
        if then.numeric or otherwise.numeric:
            then, otherwise = (v if v.numeric else Val(v.sql, 1) for v in (then, otherwise))
            if isinstance(then.den, int) and isinstance(otherwise.den, int):
                a, b, den = align(then, otherwise)
                return Val(f"(CASE WHEN {condition.sql} THEN {a} ELSE {b} END)", den, basis)
            # A branch over a denominator of its own: the branch not taken must not take part, or
            # its zero or NULL denominator would void the one taken.
            return Val(f"(CASE WHEN {condition.sql} THEN {then.sql} ELSE {otherwise.sql} END)",
                       f"CASE WHEN {condition.sql} THEN {_den_sql(then.den)} ELSE {_den_sql(otherwise.den)} END",
                       basis)
        return Val(f"(CASE WHEN {condition.sql} THEN {then.sql} ELSE {otherwise.sql} END)", None, basis)

    def _call(self, e: s.Call, query, env, joins) -> Val:
        args = [self.lower(a, query, env, joins) for a in e.args]
        return attrs.evolve(self._call_value(e, args), basis=greatest(*(a.basis for a in args)))

    def _call_value(self, e: s.Call, args: list) -> Val:
        f = e.function
        if f == "age":
            born, on = args[0].sql, args[1].sql
            return Val(f"(year({on}) - year({born}) - CASE WHEN month({on}) * 100 + dayofmonth({on}) "
                       f"< month({born}) * 100 + dayofmonth({born}) THEN 1 ELSE 0 END)", 1)
        if f in ("year", "month"):
            return Val(f"{f}({args[0].sql})", 1)
        if f == "day":
            return Val(f"dayofmonth({args[0].sql})", 1)
        if f == "last_day_of_month":
            return Val(f"last_day({args[0].sql})")
        if f == "first_day_of_month":
            return Val(f"({args[0].sql} - CAST(dayofmonth({args[0].sql}) - 1 AS INTEGER))")
        if f in ("lower", "trim"):
            return Val(f"{f}({args[0].sql})")
        if f == "floor":
            return Val(divided(args[0].sql, args[0].den, floor_div), 1)
        if f == "add_days":
            return Val(f"({args[0].sql} + CAST({to_whole(args[1])} AS INTEGER))")
        if f in ("min", "max"):
            function = "LEAST" if f == "min" else "GREATEST"
            if args[0].numeric:
                if not all(isinstance(a.den, int) for a in args):
                    raise NotLowerable(f"{f} of divided numbers")
                common = math.lcm(*(a.den for a in args))
                return Val(f"{function}({', '.join(_scale(a.sql, common // a.den) for a in args)})", common)
            return Val(f"{function}({', '.join(a.sql for a in args)})")
        raise NotLowerable(f"function {f}")

    def _criteria(self, criteria, query, env, joins) -> tuple:
        """(number of criteria that hold, as SQL; basis): every criterion is evaluated."""
        lowered = [self.lower(c, query, env, joins) for c in criteria]
        return (" + ".join(f"(CASE WHEN {c.sql} THEN 1 ELSE 0 END)" for c in lowered),
                greatest(*(c.basis for c in lowered)))

    def _atleast(self, e: s.AtLeast, query, env, joins) -> Val:
        held, basis = self._criteria(e.criteria, query, env, joins)
        return Val(f"(({held}) >= {e.threshold})", None, basis)

    def _counttrue(self, e: s.CountTrue, query, env, joins) -> Val:
        held, basis = self._criteria(e.criteria, query, env, joins)
        return Val(f"({held})", 1, basis)

    def _aggregate(self, e: s.Aggregate, query: TableQuery, env: dict, joins: list) -> Val:
        """A sum or count over related records, grouped by the record it relates to and joined in."""
        correlation, inner_filter = self.split_correlation(e)
        if query.fixed_date is None:
            raise NotLowerable("an aggregate over records with dates of their own")
        inner = self.table_query(e.table, query.fixed_date)
        inner_env = {e.var: ("t", "t")}
        inner_joins: list = []
        # Without a `v.x = …` tie to the outer record, the sum is over the whole table (a region's
        # total): one row, joined to every record.
        inner_key = self.lower(correlation[0], inner, inner_env, inner_joins) if correlation else None
        lowered_filters = [self.lower(c, inner, inner_env, inner_joins) for c in inner_filter]
        filters = [f.sql for f in lowered_filters]
        # A contributor met every condition, so it read what each of them reads.
        contribution = greatest(*([inner_key.basis] if inner_key else []), *(f.basis for f in lowered_filters))
        if e.function == "sum":
            value = self.lower(e.expr, inner, inner_env, inner_joins)
            if not isinstance(value.den, int):
                raise NotLowerable("a sum of divided numbers")
            # SQL's SUM skips NULLs; a contribution without a value must not vanish silently.
            aggregate = f"CASE WHEN count(*) FILTER (WHERE ({value.sql}) IS NULL) = 0 THEN COALESCE(SUM({value.sql}), 0) END"
            den = value.den
            contribution = greatest(contribution, value.basis)
        else:
            aggregate, den = "COUNT(*)", 1
        name = f"agg_{len(self.ctes) + 1}"
        where = " AND ".join(filters) or "TRUE"
        basis_column = f", MAX({contribution.sql}) AS __b" if contribution.dynamic else ""
        alias = query.alias("a")
        read = Basis(None, f"{alias}.__b", contribution.most) if contribution.dynamic else contribution
        if inner_key is None:
            self.ctes.append((name, f"SELECT {aggregate} AS __v, COUNT(*) AS __n{basis_column} "
                                    f"FROM {inner.current} AS t {' '.join(inner_joins)} WHERE {where}"))
            joins.append(f"CROSS JOIN {quote(name)} AS {alias}")
            basis = either(f"{alias}.__n = 0", NO_BASIS, read)
            return Val(f"{alias}.__v", den, basis)
        self.ctes.append((name, f"SELECT {inner_key.sql} AS __k, {aggregate} AS __v{basis_column} "
                                f"FROM {inner.current} AS t "
                                f"{' '.join(inner_joins)} WHERE {where} GROUP BY {inner_key.sql}"))
        outer_key = self.lower(correlation[1], query, env, joins)
        joins.append(f"LEFT JOIN {quote(name)} AS {alias} ON {alias}.__k = {outer_key.sql}")
        # Only the records that contribute count: without any, the sum read no parameter value.
        basis = either(f"{alias}.__k IS NULL", NO_BASIS, greatest(read, outer_key.basis))
        return Val(f"(CASE WHEN {alias}.__k IS NULL THEN 0 ELSE {alias}.__v END)", den, basis)

    def split_correlation(self, e: s.Aggregate) -> tuple:
        """The `v.x = outer` conjunct that ties an aggregate's records to the outer record (None
        for a sum over the whole table), and the conjuncts that concern the inner records only."""
        correlation, rest = None, []
        for node in s.conjuncts(e.where):
            if correlation is None and isinstance(node, s.Binary) and node.op == "=":
                left_inner, right_inner = self.mentions_var(node.left, e.var), self.mentions_var(node.right, e.var)
                if left_inner and not right_inner:
                    correlation = (node.left, node.right)
                    continue
                if right_inner and not left_inner:
                    correlation = (node.right, node.left)
                    continue
            if self.mentions_outer(node):
                raise NotLowerable("an aggregate whose condition ties records to the outer record "
                                   "other than by one equality")
            rest.append(node)
        return correlation, rest

    def mentions_var(self, expr: s.Expr, var: str) -> bool:
        return any(isinstance(n, s.Name) and self.checked.resolved.get(id(n)) == ("var", var) for n in _walk(expr))

    def mentions_outer(self, expr: s.Expr) -> bool:
        """Whether an expression reads the outer record (a field, definition or output of it)."""
        for node in _walk(expr):
            if isinstance(node, s.Name):
                resolution = self.checked.resolved.get(id(node))
                if resolution and resolution[0] in ("field", "output") or \
                        resolution and resolution[0] == "definition" and resolution[1] is not None:
                    return True
        return False


def _walk(expr: s.Expr):
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(s.children(node))
