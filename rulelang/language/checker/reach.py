"""What one record's evaluation can read beyond its reach, found before any data is read.

A record's reach is the record, every record its ids name (and theirs, to the end), the
history rows of each of those, and the rows of other tables that name the record itself (a
clinic's listings and visits). Explaining one line of a region-sized settlement loads only
that. A sum or count is right over the reach only when it is *anchored*: its condition
requires, in a conjunct, that the row names the record explained (`l.clinic_id = clinic_id`
on a clinic) or is a record the record names. Any other sum, a region's mean, a clinic's
count read from a visit, a person's visits counted from one of them, may read rows outside
the reach, so its table must be loaded whole. So may a history looked up by a text key.

Parameters are folded where a branch or an equation depends on them: a condition that is
the same under every value the parameter holds in any period (or the value a run assumes)
decides its branch, so `if hälsofrämjande_räknas_per = mottagning then clinic_id else …`
counts a clinic's own listings, and under the assumption `koncern` its koncern's, whose
rows do not name the clinic.
"""

from __future__ import annotations

from typing import Optional

from .. import syntax as s

START = ("start",)  # the record explained

# How many combinations of parameter values one comparison may be folded over.
MAX_FOLDED_VALUES = 64


def beyond_reach(checked, output: str, assumed: dict) -> frozenset:
    """The tables the evaluation of `output` for one record may read beyond the record's
    reach (see the module), under every value its parameters hold or `assumed` gives."""
    return Reach(checked, assumed).of_output(output)


class Reach:
    def __init__(self, checked, assumed: dict):
        self.checked = checked
        self.assumed = assumed
        self.beyond: set = set()
        self.walked: set = set()  # (definition or output, row) already walked
        # A worklist, not recursion: a chain of definitions may be as deep as 64 × 64 levels.
        self.pending: list = []  # (expression, row, table) to walk

    def of_output(self, output: str) -> frozenset:
        self.walk_output(self.checked.outputs[output].decl.table, output, START)
        while self.pending:
            self.walk(*self.pending.pop())
        return frozenset(self.beyond)

    # ---- the walk: every expression the output may evaluate, each with the record it is about
    def walk_output(self, table, name: str, row) -> None:
        if ("output", name, row) not in self.walked:
            self.walked.add(("output", name, row))
            payee = self.checked.outputs[name].decl.payee  # an explanation says whom it is paid to
            self.pending.extend((e, row, table) for e in [*self.checked.output_expressions(name), payee]
                                if e is not None)

    def walk_definition(self, table, name: str, row) -> None:
        if ("definition", table, name, row) not in self.walked:
            self.walked.add(("definition", table, name, row))
            self.pending.append((self.checked.definitions[(table, name)].decl.expr, row, table))

    def walk(self, e, row, table) -> None:
        """One expression; what it contains goes on the worklist. `row`: the record that
        names of `table` are about (START, or None for another)."""
        if isinstance(e, s.Aggregate):
            if not self.anchored(e, row, table):
                self.beyond.add(e.table)
        elif isinstance(e, s.If):
            taken = self.condition(e.condition)
            self.pending.append((e.condition, row, table))
            if taken is None or True in taken:
                self.pending.append((e.then, row, table))
            if taken is None or False in taken:
                self.pending.append((e.otherwise, row, table))
            return
        elif isinstance(e, s.HistoryLookup):
            # A reference's record is in the reach, and so are its history rows; so is the
            # record explained, by its own id. Another text key may name any record.
            key = self.checked.types.get(id(e.key))
            history = self.checked.tables[e.target.name].decl.history
            own = row == START and history.of_table == table and self.denoted(e.key, row, None) == ("key", START)
            if not own and (key is None or key.kind != "ref"):
                self.beyond.add(e.target.name)
        resolution = self.checked.resolved.get(id(e)) if isinstance(e, (s.Name, s.FieldAccess)) else None
        if resolution is not None and resolution[0] in ("definition", "output"):
            kind, owner, name = resolution
            # A name of the record's own table is about the same record; through a field
            # access (`clinic_id.listade`, `l.räknas`) it is about another.
            same = isinstance(e, s.Name) and owner is not None
            about = row if same else None
            if kind == "definition":
                self.walk_definition(owner, name, about)
            else:
                self.walk_output(owner, name, about)
        self.pending.extend((child, row, table) for child in s.children(e))

    # ---- anchored sums
    def anchored(self, e: s.Aggregate, row, table) -> bool:
        """Whether every row the aggregate may count is in the reach: the record is the one
        explained and a conjunct of the condition equates the row's reference to it, or the
        row's own id to a reference of the record."""
        if row != START:
            return False
        for conjunct in s.conjuncts(e.where):
            if not (isinstance(conjunct, s.Binary) and conjunct.op == "="):
                continue
            sides = {self.denoted(conjunct.left, row, e.var), self.denoted(conjunct.right, row, e.var)}
            for side in sides:
                if side is None:
                    continue
                # the row names the record explained
                if side[:2] == ("ref", "var") and side[3] == table != e.table and ("key", START) in sides:
                    return True
                # the row is a record the record explained names
                if side == ("key", "var") and any(o is not None and o[:2] == ("ref", START) and o[3] == e.table
                                                  for o in sides):
                    return True
        return False

    def denoted(self, e, row, var: Optional[str], depth: int = 0) -> Optional[tuple]:
        """What id an expression is, where it can be told: ("key", R) the id of record R
        (START or "var", the aggregate's row), ("ref", R, field, table) the id that R's
        field names; None otherwise. Definitions are followed and parameters folded."""
        if depth > 32:
            return None
        checked = self.checked
        if isinstance(e, s.If):
            taken = self.condition(e.condition)
            branches = [b for b, v in ((e.then, True), (e.otherwise, False)) if taken is None or v in taken]
            found = {self.denoted(b, row, var, depth + 1) for b in branches}
            return found.pop() if len(found) == 1 else None
        resolution = checked.resolved.get(id(e)) if isinstance(e, (s.Name, s.FieldAccess)) else None
        if resolution is None:
            return None
        if var is not None and isinstance(e, s.Name) and resolution == ("var", var):
            return ("key", "var")
        if var is not None and isinstance(e, s.FieldAccess) and isinstance(e.target, s.Name) \
                and checked.resolved.get(id(e.target)) == ("var", var):
            of, inner = "var", None  # a member of the aggregate's row
        elif isinstance(e, s.Name):
            of, inner = row, None  # a member of the record the names are about
        else:
            of, inner = None, self.denoted(e.target, row, var, depth + 1)
        kind = resolution[0]
        if kind == "field":
            _, owner, field = resolution
            info = checked.tables.get(owner)
            if info is None:
                return None
            if inner is not None:  # `x.clinic_id` of an id x: the same id when it is the key
                named = inner[3] if inner[0] == "ref" else None
                return inner if named == owner and field == info.decl.key else None
            if of is None:
                return None
            if field == info.decl.key:
                return ("key", of)
            field_type = info.fields[field][0]
            return ("ref", of, field, field_type.name) if field_type.kind == "ref" else None
        if kind == "definition" and of is not None:
            _, owner, name = resolution
            about = of if owner is not None else None
            return self.denoted(checked.definitions[(owner, name)].decl.expr, about, var, depth + 1) \
                if about is not None else None
        return None

    # ---- folding parameters
    def condition(self, e, depth: int = 0) -> Optional[frozenset]:
        """The truth values a condition can take when parameters and constants decide it;
        None when it depends on the record (or is not a truth value: an assumption given
        untyped decides nothing)."""
        found = self.values(e, depth)
        return found if found is not None and found <= {True, False} else None

    def values(self, e, depth: int = 0) -> Optional[frozenset]:
        """Every value `e` can take, when it depends only on parameters and constants (every
        value a parameter holds in any period, or the one assumed); None otherwise."""
        if depth > 32:
            return None
        if isinstance(e, s.Literal):
            return frozenset([e.value])
        if isinstance(e, s.Unary) and e.op == "not":
            inner = self.condition(e.operand, depth + 1)
            return None if inner is None else frozenset(not v for v in inner)
        if isinstance(e, s.Binary) and e.op in ("and", "or"):
            left, right = self.condition(e.left, depth + 1), self.condition(e.right, depth + 1)
            decided = frozenset([e.op == "or"])  # one side may decide alone: false and …, true or …
            if decided in (left, right):
                return decided
            if left is None or right is None:
                return None
            combine = (lambda a, b: a and b) if e.op == "and" else (lambda a, b: a or b)
            return frozenset(combine(a, b) for a in left for b in right)
        if isinstance(e, s.Binary) and e.op in ("=", "!="):
            left, right = self.values(e.left, depth + 1), self.values(e.right, depth + 1)
            if left is None or right is None or len(left) * len(right) > MAX_FOLDED_VALUES:
                return None
            return frozenset((a == b) == (e.op == "=") for a in left for b in right)
        if isinstance(e, s.If):
            taken = self.condition(e.condition, depth + 1)
            if taken is None:
                return None
            found: set = set()
            for branch, value in ((e.then, True), (e.otherwise, False)):
                if value in taken:
                    inner = self.values(branch, depth + 1)
                    if inner is None:
                        return None
                    found |= inner
            return frozenset(found)
        resolution = self.checked.resolved.get(id(e)) if isinstance(e, s.Name) else None
        if resolution is None:
            return None
        if resolution[0] == "parameter":
            name = resolution[1]
            info = self.checked.parameters[name]
            if info.key_types or not info.values:
                return None
            held = frozenset(v.value for v in info.values)
            if name not in self.assumed:
                return held
            # An assumption not given as the parameter's values are held (a text for a
            # boolean or an amount) folds nothing: it could compare wrongly.
            assumed = self.assumed[name]
            return frozenset([assumed]) if {type(v) for v in held} == {type(assumed)} else None
        if resolution[0] == "enum":
            return frozenset([resolution[2]])
        if resolution[0] == "definition":  # the checker refuses cycles; depth bounds the rest
            return self.values(self.checked.definitions[resolution[1:]].decl.expr, depth + 1)
        return None

