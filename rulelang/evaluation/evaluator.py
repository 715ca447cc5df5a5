"""Evaluate outputs for records, with default logic and, on request, a full explanation.

Default logic (as in Catala): a rule in force whose condition holds gives its value
unless one of its exceptions applies, and an applicable exception overrides it.
Applicable rules at one level that disagree are a conflict naming both provisions; when
no rule applies the output's declared default is used, and without one it is an error.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterator, Optional

import attrs

from ..language.checker.dates import in_force
from ..language.diagnostics import EvaluationError
from ..language.generator import Worked
from ..language.syntax import Span, row_key_text
from ..language.typesystem import Type
from ..language.values import AMOUNT_TOO_LARGE, MAX_AMOUNT_ORE, to_json, to_text
from .compiler import Citation, CompiledRule, Program, Reads, Trace
from .data import DEFAULTED_FIELD, ID_FIELD, Dataset
from .explanation import FORMAT, NO_USES, Explanation, merged, rests_on, weakest
from .readings_tried import readings_tried

ASSUMED_CITE = "assumed by the example"

_EMPTY = object()  # a rule that gives no value here


@attrs.frozen(repr=False)
class Result:
    """One output of one record: its value, in contract JSON form too, and the deciding provision."""

    table: str
    record: str
    output: str
    value: object
    type: Type
    provision: str
    source: str
    payee: Optional[str]
    date: Optional[dt.date]

    def __repr__(self) -> str:
        return f"<Result {self.table} {self.record} {self.output} = {self.text_value}>"

    def to_dict(self) -> dict:
        """As `eval --format json` gives it (CONTRACT): the value in JSON form, then the
        payee, the date it was evaluated on and the deciding rule's FILE:LINE."""
        return {"table": self.table, "record": self.record, "output": self.output, "value": self.json_value,
                "provision": self.provision, "payee": self.payee,
                "date": self.date.isoformat() if self.date else None, "source": self.source}

    @property
    def json_value(self):
        return to_json(self.value, self.type)

    @property
    def text_value(self) -> str:
        return to_text(self.value, self.type)


class Frame:
    """Where an expression is evaluated: a record of a table, on a date, with bound variables."""

    __slots__ = ("evaluator", "table", "record", "date", "vars")


    def __init__(self, evaluator: "Evaluator", table, record, date, variables=None):
        self.evaluator = evaluator
        self.table = table
        self.record = record
        self.date = date
        self.vars = variables or {}

    # ---- errors
    def data_error(self, message: str, span: Optional[Span] = None) -> EvaluationError:
        return EvaluationError(message, kind="data", file=self.evaluator.file_of(self.table),
                               record=self.record_id, span=span)

    @property
    def record_id(self) -> str:
        return self.record[ID_FIELD] if self.record else ""

    def bind(self, var: str, record: dict) -> "Frame":
        return Frame(self.evaluator, self.table, self.record, self.date, {**self.vars, var: record})

    def recording(self) -> "Frame":
        """The same frame on its evaluator's recorder (Evaluator.recorder)."""
        return Frame(self.evaluator.recorder, self.table, self.record, self.date, self.vars)

    # ---- data
    def table_data(self, name: str, span: Optional[Span]):
        data = self.evaluator.dataset.table(name)
        if data is None:
            raise self.data_error(f"the input has no {name} table, which this rule needs", span)
        return data

    def record_of(self, handle_type: Type, handle, syntax_node):
        if handle_type.kind in ("row", "record"):
            return handle
        data = self.table_data(handle_type.name, syntax_node.span)
        record = data.by_id.get(handle)
        if record is None:
            raise self.data_error(f"{handle_type.name} {handle!r} is not in the input", syntax_node.span)
        return record

    def records(self, table: str, syntax_node) -> list:
        return self.table_data(table, syntax_node.span).records

    def history(self, table: str, key, date: dt.date, syntax_node):
        data = self.table_data(table, syntax_node.span)
        history = self.evaluator.program.checked.tables[table].decl.history
        for row in data.history.get(key, ()):
            start = row[history.from_field]
            if start > date:
                break
            end = row.get(history.until_field) if history.until_field else None
            if end is None or date <= end:
                return row
        return None

    # ---- parameters
    def parameter(self, name: str, trace: Optional[Trace], syntax_node, key=_EMPTY,
                  on: Optional[dt.date] = None):
        """The parameter's value in force on the record's date, or on `on` (`as of`)."""
        evaluator = self.evaluator
        param = evaluator.program.parameters[name]
        date = self.date if on is None else on
        reads = evaluator.reads if trace is None else None  # recording (Evaluator.recorder)
        if name in evaluator.assumptions:
            value, chosen, row_label = evaluator.assumptions[name], None, None
        else:
            value, chosen, row_label = self.value_in_force(name, param, date, key, syntax_node)
        if trace is not None or reads is not None:
            node, node_key = evaluator.parameter_node(name, chosen, value, key, row_label, on)
            if reads is not None:
                reads.add(node)
            else:
                trace.add(node, key=node_key)
        return value

    def value_in_force(self, name: str, param, date: Optional[dt.date], key, syntax_node) -> tuple:
        """(value, the dated value it is of, the label of its row when keyed) of a parameter
        on `date`, or a data error naming what is missing."""
        if date is None:
            raise self.data_error(f"no date to pick the value of {name} by; give --on DATE", syntax_node.span)
        chosen = None
        for candidate in param.values:
            if in_force(candidate.valid_from, candidate.valid_until, date):
                chosen = candidate
                break
        if chosen is None:
            periods = ", ".join(f"{v.valid_from or '…'} – {v.valid_until or '…'}" for v in param.values)
            raise self.data_error(f"parameter {name} has no value on {date} (it has values for {periods})",
                                  syntax_node.span)
        if not param.keyed:
            return chosen.value, chosen, None
        row = _pick_row(chosen.value, key)
        if row is None:
            shown = ", ".join("none" if k is None else str(k) for k in key)
            raise self.data_error(f"parameter {name} has no row for {shown} on {date}", syntax_node.span)
        row_keys, value = row
        return value, chosen, ", ".join(row_key_text(k) for k in row_keys)

    # ---- inputs and computed values
    def explain_input(self, trace: Trace, table: str, record: dict, field: str, label: str, value_type: Type):
        field_decl = self.evaluator.program.checked.tables[table].fields[field][1]
        facts = {"record": record[ID_FIELD], "table": table, "file": self.evaluator.file_of(table)}
        if field in record.get(DEFAULTED_FIELD, ()):
            facts["defaulted"] = True  # not given: the field's declared default
        trace.add(Explanation("input", label, to_json(record[field], value_type), None,
                              field_decl.span.location, [], facts),
                  key=("input", table, record[ID_FIELD], field))

    def computed(self, kind: str, table: Optional[str], name: str, record: Optional[dict], trace):
        evaluator = self.evaluator
        frame = self if record is self.record and table == self.table else evaluator.frame_read(table, record, self.date)
        if trace is None and not evaluator.plain:
            if evaluator.reads is not None:
                return evaluator.recorded(kind, table, name, record, frame)
            holder = evaluator.holder(kind, table, name)
            if holder is not evaluator:  # the same value as under the evaluator it tries a value beside
                return Frame(holder, frame.table, frame.record, frame.date, frame.vars).computed(
                    kind, table, name, record, None)
        if kind == "output":
            if trace is None:
                return evaluator.output_value(name, frame)
            value, node = evaluator.explain_output(name, frame)
            trace.add(node, key=("output", table, record[ID_FIELD] if record else None, name))
            return value
        definition = evaluator.program.definitions[(table, name)]
        if trace is None:
            memo_key = (table, name, record[ID_FIELD] if record else None, frame.date)
            memo = evaluator.memo
            if memo_key in memo:
                return memo[memo_key]
            value = memo[memo_key] = definition.run(frame, None)
            return value
        key = ("definition", table, record[ID_FIELD] if record else None, name, frame.date)
        explained = evaluator.explained
        anchor = _anchor(key)
        if key in explained:
            # Explained in full once per tree; later uses point back to it.
            value, uses = explained[key]
            facts = {"explained_above": True, "anchor": anchor, "rulebook": definition.rulebook}
            if record is not None:
                facts["record"] = record[ID_FIELD]
            trace.add(_cited(Explanation("definition", name, to_json(value, definition.type), None,
                                         definition.source, [], facts, uses=uses), definition.citation), key=key)
            return value
        inner = Trace()
        value = definition.run(frame, inner)
        inner.values[id(definition.syntax)] = (value, definition.type)
        explained[key] = (value, inner.uses)
        # Kept for plain evaluation too: the readings tried next evaluate it again (holder).
        evaluator.memo.setdefault((table, name, record[ID_FIELD] if record else None, frame.date), value)
        facts = {"anchor": anchor, "rulebook": definition.rulebook}
        if record is not None:
            facts["record"] = record[ID_FIELD]
        trace.add(_cited(Explanation("definition", name, to_json(value, definition.type), None,
                                     definition.source, inner.nodes, facts, worked=Worked(definition.syntax, inner.values),
                                     uses=inner.uses), definition.citation), key=key)
        return value

    def history_record_id(self, found):
        return None if found is None else found[ID_FIELD]

    def explain_history(self, trace, inner, table, label, key, date, found, syntax_node):
        history = self.evaluator.program.checked.tables[table].decl.history
        facts = {"table": table, "key": str(key), "on": _iso(date),
                 "record": found[ID_FIELD] if found else None}
        if found is not None:
            facts["valid_from"] = _iso(found[history.from_field])
            facts["valid_to"] = _iso(found.get(history.until_field)) if history.until_field else None
        value = found[ID_FIELD] if found else None
        trace.add(Explanation("lookup", label, value, None, syntax_node.span.location, inner.nodes, facts,
                              uses=inner.uses))
        trace.absorb(inner)
        trace.values[id(syntax_node)] = f"{table} row {found[ID_FIELD]}" if found else "none"


def _iso(value: Optional[dt.date]) -> Optional[str]:
    return value.isoformat() if value else None


def _unit(value_type: Type) -> Optional[str]:
    """The unit a value is written in: kronor for money; other values have none."""
    return "kr" if value_type.kind in ("money", "unrounded") else None


def _cited(node: Explanation, citation: Citation) -> Explanation:
    """A node with its provision: the citation, the document its words come from, the words."""
    node.provision = citation.text
    node.document = citation.document
    node.quote = citation.quote
    return node


def _anchor(key: tuple) -> str:
    """A stable name for a definition explained in a tree, for "(explained above)" links."""
    _, table, record, name, _ = key
    return "-".join(str(part) for part in ("def", table, record, name) if part is not None)


def _key_matches(key: tuple, value) -> bool:
    low, high, enum_value = key
    if enum_value is not None:
        return value == enum_value
    if low is None:  # `any`: every value of the key, but not a missing one
        return value is not None
    return value is not None and low <= value and (high is None or value <= high)


def _pick_row(rows: tuple, keys: tuple):
    """The row whose every key matches; rows are checked to be disjoint, so at most one does."""
    for row_keys, value in rows:
        if all(_key_matches(k, v) for k, v in zip(row_keys, keys)):
            return row_keys, value
    return None


class Evaluator:
    """Evaluates a compiled rulebook over one data set; values are memoised per record and date."""

    def __init__(self, program: Program, dataset: Dataset, on: Optional[dt.date] = None,
                 assumptions: Optional[dict] = None, assumed_by: str = ASSUMED_CITE):
        self.program = program
        self.dataset = dataset
        self.on = on
        self.assumptions = assumptions or {}  # parameter → value, replacing its dated values
        self.assumed_by = assumed_by  # who set the assumptions, as explanations cite them
        self.memo: dict = {}
        self._output_memo: dict = {}
        self.explained: dict = {}  # definitions already explained in the tree being built
        self._assuming: dict = {}  # (parameter, value) → the evaluator under that assumption too
        self.reads: Optional[Reads] = None  # where a recorder puts what it reads (recorder)
        self._recorder: Optional[Evaluator] = None
        self._recorded: dict = {}  # a recorder's computed values, with what each read
        self.base: Optional[Evaluator] = None  # the evaluator this one tries other values beside (assuming)
        self.decided: dict = {}  # (rule, record, date) → what an explanation found it gives (decide)
        self._holders: dict = {}  # (kind, table, name) → its holder
        self.tried: frozenset = frozenset()  # the parameters it assumes beyond its base's
        self.plain = True  # neither a recorder nor trying a value beside a base: computes all itself

    def assuming(self, name: str, value) -> "Evaluator":
        """An evaluator of the same records with `name` also assumed `value` (an explanation's
        readings_tried), kept so that what it computes serves the next record explained."""
        key = (name, value)
        if key not in self._assuming:
            trial = self._assuming[key] = Evaluator(self.program, self.dataset, self.on,
                                                    {**self.assumptions, name: value}, self.assumed_by)
            trial.base, trial.tried, trial.plain = self, frozenset([name]), False
        return self._assuming[key]

    def holder(self, kind: str, table: Optional[str], name: str) -> "Evaluator":
        """The evaluator whose memo holds a definition's or output's value for this one: its
        base's (and so on) while the value reads none of the parameters assumed beyond it
        (Program.reads), since evaluation is a function of the values it reads; else its own."""
        key = (kind, table, name)
        found = self._holders.get(key)
        if found is None:
            found, reads = self, self.program.reads(kind, table, name)
            while found.base is not None and not (found.tried & reads):
                found = found.base
            self._holders[key] = found
        return found

    @property
    def recorder(self) -> "Evaluator":
        """An evaluator of the same records and assumptions that records what an untraced
        evaluation reads (Reads) wherever `reads` is set: the contributors of an explained sum
        are evaluated on it. Its values are memoised with what they read (recorded), so that
        the next sum of the same explanation reuses them, and shared with this evaluator's
        plain memo, which the readings tried beside it read (holder)."""
        if self._recorder is None:
            recorder = self._recorder = Evaluator(self.program, self.dataset, self.on, self.assumptions,
                                                  self.assumed_by)
            recorder._recorder, recorder.plain = recorder, False
            recorder.memo = self.memo  # the same values: plain evaluation and the readings tried reuse them
        return self._recorder

    def recorded(self, kind: str, table: Optional[str], name: str, record: Optional[dict], frame: Frame):
        """A definition's or output's value for a recording frame, adding what it read to
        `reads`. An output is explained, since what it rests on is its decision path's; so is
        a definition not of one record, whose node an explained sum shows."""
        key = (kind, table, name, record[ID_FIELD] if record else None, frame.date)  # memo's key after kind
        found = self._recorded.get(key)
        if found is None:
            outer, outer_explained = self.reads, self.explained
            self.reads = read = Reads()
            try:
                if kind == "output" or table is None:
                    self.reads, self.explained = None, {}
                    trace = Trace()
                    value = frame.computed(kind, table, name, record, trace)
                    read.absorb(trace.nodes[0])
                else:
                    value = self.program.definitions[(table, name)].run(frame, None)
                    self.memo.setdefault(key[1:], value)
            finally:
                self.reads, self.explained = outer, outer_explained
            found = self._recorded[key] = (value, read)
        value, read = found
        self.reads.merge(read)
        return value

    def parameter_node(self, name: str, chosen, value, key, row_label: Optional[str],
                       on: Optional[dt.date]) -> tuple:
        """The explanation node of a parameter value read (chosen: its dated value, None when the
        run assumes it) and the key a trace shows it once by."""
        program = self.program
        param = program.parameters[name]
        if chosen is None:
            node = Explanation("parameter", name, to_json(value, param.type), None, None, [],
                               {"valid_from": None, "valid_to": None, "status": "assumed", "cite": self.assumed_by,
                                "unit": _unit(param.type), "rulebook": program.id},
                               uses={name: "assumed"})
            return node, ("parameter", name, None)
        facts = {"valid_from": _iso(chosen.valid_from), "valid_to": _iso(chosen.valid_until),
                 "status": chosen.status, "cite": chosen.cite, "unit": _unit(param.type),
                 "rulebook": chosen.rulebook, "parameter": name}
        if param.keyed:
            facts.update({"key": ", ".join(str(k) for k in key), "row": row_label})
        node = _cited(Explanation("parameter", name if row_label is None else f"{name}[{row_label}]",
                                  to_json(value, param.type), None, chosen.source, [], facts,
                                  uses={name: chosen.status}), chosen.citation)
        return node, (("parameter", name, row_label) if on is None else ("parameter", name, row_label, on))

    def file_of(self, table: Optional[str]) -> str:
        data = self.dataset.table(table) if table else None
        return data.file if data else (self.dataset.files[0] if self.dataset.files else "<input>")

    def frame_for(self, table: str, record: dict) -> Frame:
        decl = self.program.checked.tables[table].decl
        date = record.get(decl.dated_by) if decl.dated_by else None
        return Frame(self, table, record, date or self.on)

    def frame_read(self, table: Optional[str], record: Optional[dict], reading_date) -> Frame:
        """Where another record's definition or output is evaluated when a record reads it
        (through a reference or in a sum): on the record's own date when its table is dated,
        otherwise on the date of the record that reads it."""
        decl = self.program.checked.tables[table].decl if table else None
        if decl is not None and decl.dated_by and record is not None and record.get(decl.dated_by) is not None:
            return Frame(self, table, record, record[decl.dated_by])
        return Frame(self, table, record, reading_date)

    # ---- default logic
    def decide(self, rule: CompiledRule, frame: Frame):
        """The value a rule gives with its exceptions, or _EMPTY; with the label that decided.
        Under a value tried beside a base evaluator's (assuming), a rule that reads none of
        the values tried gives what it gave there, when the base has worked it out."""
        if self.base is not None:
            holder = self.holder("rule", None, rule.label)
            if holder is not self:
                decided = holder.decided.get((rule.label, frame.record_id, frame.date))
                if decided is not None:
                    return decided
        date = frame.date
        if not _in_force(rule, date):
            return _EMPTY, None
        value, decided_by = self.decide_level(rule.exceptions, frame, rule.output)
        if value is not _EMPTY:
            return value, decided_by
        if rule.condition is None or rule.condition(frame, None):
            return rule.value(frame, None), rule.label
        return _EMPTY, None

    def decide_level(self, labels: list, frame: Frame, output: str):
        return self.combine(((*self.decide(self.program.rules[label], frame),) for label in labels),
                            frame, output)

    def combine(self, decided, frame: Frame, output: str):
        """One level of default logic: the first value given, unless another rule of the level
        gives a different one (a conflict). `decided` yields (value, label) pairs."""
        found, found_by = _EMPTY, None
        for value, by in decided:
            if value is _EMPTY:
                continue
            if found is not _EMPTY and value != found:
                self.conflict(output, frame, found_by, found, by, value)
            if found is _EMPTY:
                found, found_by = value, by
        return found, found_by

    def conflict(self, output: str, frame: Frame, first: str, first_value, second: str, second_value):
        rules = self.program.rules
        value_type = self.program.outputs[output].type
        a, b = rules[first], rules[second]
        raise EvaluationError(
            f"conflict: {output} is {to_text(first_value, value_type)} by {first} ({a.provision}, {a.source}) "
            f"and {to_text(second_value, value_type)} by {second} ({b.provision}, {b.source}); "
            "make one an exception to the other",
            kind="rulebook", file=self.file_of(frame.table), record=frame.record_id)

    def output_value(self, name: str, frame: Frame):
        key = (name, frame.record_id, frame.date)
        memo = self._output_memo
        if key in memo:
            return memo[key][0]
        result = memo[key] = self._output(name, frame)
        return result[0]

    def _output(self, name: str, frame: Frame):
        output = self.program.outputs[name]
        value, decided_by = self.decide_level(output.roots, frame, name)
        if value is _EMPTY:
            if output.default is None:
                self.no_value(output, frame)
            return output.default(frame, None), None
        return value, decided_by

    def no_value(self, output, frame: Frame):
        """No rule gives a value and there is no default. When no rule of the output is even in
        force on the date, the date lies outside the rulebook (bad input, exit 2); otherwise the
        rulebook leaves a case open (exit 1)."""
        rules = self.program.rules
        in_force = [label for label in output.roots if _in_force(rules[label], frame.date)]
        if not in_force:
            periods = ", ".join(sorted({f"{_iso(r.valid_from) or '…'} – {_iso(r.valid_until) or '…'}"
                                        for r in (rules[label] for label in output.roots)}))
            raise EvaluationError(
                f"no rule gives {output.name} on {frame.date}: its rules are in force {periods}",
                kind="data", file=self.file_of(frame.table), record=frame.record_id)
        raise EvaluationError(
            f"no rule gives {output.name} on {frame.date} and it declares no default "
            f"({output.provision}, {output.source}); rules in force: {', '.join(in_force)}",
            kind="rulebook", file=self.file_of(frame.table), record=frame.record_id)

    def evaluate(self, name: str, record: dict) -> Result:
        """The value of one output for one record of its table."""
        output = self.program.outputs[name]
        frame = self.frame_for(output.table, record)
        self.need_date(frame, output)
        key = (name, frame.record_id, frame.date)
        if key not in self._output_memo:
            self._output_memo[key] = self._output(name, frame)
        value, decided_by = self._output_memo[key]
        if output.type.kind == "money" and value is not None and abs(value) > MAX_AMOUNT_ORE:
            raise EvaluationError(f"{name}: {AMOUNT_TOO_LARGE}", kind="data", file=self.file_of(frame.table),
                                  record=frame.record_id)
        rule = self.program.rules.get(decided_by) if decided_by else None
        payee = output.payee(frame, None) if output.payee is not None else None
        return Result(output.table, frame.record_id, name, value, output.type,
                      rule.provision if rule else output.provision,
                      rule.source if rule else output.source, payee, frame.date)

    def need_date(self, frame: Frame, output) -> None:
        if frame.date is None:
            raise EvaluationError(
                f"record has no date and no evaluation date was given (--on DATE, or on= in the API), "
                f"so {output.name} cannot be evaluated",
                kind="data", file=self.file_of(frame.table), record=frame.record_id)

    def evaluate_all(self, outputs: Optional[list] = None) -> Iterator[Result]:
        """Every output for every record of its table, in rulebook then input order."""
        names = outputs or list(self.program.outputs)
        for name in names:
            output = self.program.outputs[name]
            data = self.dataset.table(output.table)
            if data is None:
                continue
            for record in data.records:
                yield self.evaluate(name, record)

    def raised_warnings(self, date: dt.date) -> list:
        """The rulebook's warnings whose condition holds for the input as a whole on `date`."""
        frame = Frame(self, None, None, date)
        return [warning for warning in self.program.warnings.values() if warning.run(frame, None)]

    # ---- explanation
    def explain(self, name: str, record: dict) -> Explanation:
        """The explanation tree of one output for one record. Its root says what the value
        rests on: the parameter values on its decision path, by status, and the weakest."""
        output = self.program.outputs[name]
        frame = self.frame_for(output.table, record)
        self.need_date(frame, output)
        self.explained = {}
        try:
            root = self.explain_output(name, frame)[1]
        finally:
            self.explained = {}
        grouped = rests_on(root.uses)
        basis = weakest(root.uses.values())
        tried = readings_tried(self, name, record, root)
        root.facts = {"format": FORMAT, "headline": headline(root, basis, grouped, tried), "basis": basis,
                      "rests_on": grouped, "readings": tried, **root.facts}
        replaced = self.program.checked.replaced_on(frame.date)
        if replaced is not None:
            root.facts["replaced_by"] = replaced.to_dict()
        return root

    def explain_output(self, name: str, frame: Frame):
        output = self.program.outputs[name]
        children: list = []
        found, found_by = self.combine(self.explained_level(output.roots, frame, output, children), frame, name)
        citation, source = output.citation, output.source
        if found is _EMPTY:
            if output.default is None:
                self._output(name, frame)  # raises the same error as the fast path
            trace = Trace()
            found = output.default(frame, trace)
            trace.values[id(output.default_syntax)] = (found, output.type)
            default = _cited(Explanation("default", "no rule applies: the default", to_json(found, output.type),
                                         None, output.source, trace.nodes,
                                         worked=Worked(output.default_syntax, trace.values), uses=trace.uses),
                             output.citation)
            # The default stands because no rule applied: it rests on each of them not applying.
            uses = merged(*(child.uses for child in children), default.uses)
            children.append(default)
        else:
            rule = self.program.rules[found_by]
            citation, source = rule.citation, rule.source
            decider = _first_giving(children)
            _mark_decision_path(decider)
            uses = decider.uses
        facts = {"table": output.table, "record": frame.record_id, "date": _iso(frame.date),
                 "rulebook": self.program.id, "decided_by": found_by, "type": str(output.type)}
        if output.payee is not None:
            facts["paid_to"] = output.payee(frame, None)
        return found, _cited(Explanation("output", name, to_json(found, output.type), None, source, children, facts,
                                         uses=uses), citation)

    def explained_level(self, labels: list, frame: Frame, output, children: list):
        """(value, label) of each rule of a level, its explanation appended to `children`."""
        for label in labels:
            value, by, node = self.explain_rule(self.program.rules[label], frame, output)
            children.append(node)
            self.decided[(label, frame.record_id, frame.date)] = (value, by)  # what decide gives
            yield value, by

    def explain_rule(self, rule: CompiledRule, frame: Frame, output):
        """A rule's or exception's node. What its value rests on follows default logic: when an
        exception gives the value, that exception's; otherwise the rule's own condition and
        formula, and each of its exceptions not applying."""
        kind = "exception" if rule.is_exception else "rule"
        date = frame.date
        facts = {"applied": False, "decides": False, "in_force": _in_force(rule, date),
                 "valid_from": _iso(rule.valid_from), "valid_to": _iso(rule.valid_until),
                 "rulebook": rule.rulebook}
        children: list[Explanation] = []
        if not facts["in_force"]:
            facts["reason"] = f"not in force on {date}"
            if rule.repealed_from and date and date >= rule.repealed_from:
                facts["reason"] = f"repealed from {rule.repealed_from}"
                facts["repealed_by"] = rule.repealed_by
            return _EMPTY, None, _cited(Explanation(kind, rule.label, None, None, rule.source, children, facts),
                                        rule.citation)
        found, found_by = self.combine(self.explained_level(rule.exceptions, frame, output, children),
                                       frame, rule.output)
        exceptions = list(children)
        holds = True
        condition_uses = NO_USES
        if rule.condition is not None:
            trace = Trace()
            holds = bool(rule.condition(frame, trace))
            condition_uses = trace.uses
            children.append(_cited(Explanation(
                "condition", rule.condition_label, holds, None, rule.condition_syntax.span.location,
                trace.nodes, worked=Worked(rule.condition_syntax, trace.values), uses=trace.uses), rule.citation))
        if found is not _EMPTY:
            # An applicable exception decides whatever the rule's own condition (default logic);
            # the condition is shown so that a reader sees whether the rule itself would apply.
            facts["overridden_by"] = found_by
            facts["reason"] = (f"overridden by exception {found_by}" if holds else
                               f"its condition does not hold; exception {found_by} gives the value")
            return found, found_by, _cited(Explanation(kind, rule.label, to_json(found, output.type), None,
                                                       rule.source, children, facts,
                                                       uses=_first_giving(exceptions).uses), rule.citation)
        not_applying = merged(*(node.uses for node in exceptions), condition_uses)
        if not holds:
            facts["reason"] = "its condition does not hold"
            return _EMPTY, None, _cited(Explanation(kind, rule.label, None, None, rule.source, children, facts,
                                                    uses=not_applying), rule.citation)
        trace = Trace()
        value = rule.value(frame, trace)
        trace.values[id(rule.value_syntax)] = (value, output.type)
        children.append(_cited(Explanation(
            "formula", rule.value_label, to_json(value, output.type), None, rule.value_syntax.span.location,
            trace.nodes, worked=Worked(rule.value_syntax, trace.values), uses=trace.uses), rule.citation))
        facts["applied"] = True
        return value, rule.label, _cited(Explanation(kind, rule.label, to_json(value, output.type), None,
                                                     rule.source, children, facts,
                                                     uses=merged(not_applying, trace.uses)), rule.citation)


def _first_giving(nodes: list) -> Explanation:
    """The first rule or exception node of a level that gives a value: the one that decides."""
    return next(node for node in nodes if node.kind in ("rule", "exception") and node.value is not None)


def _mark_decision_path(node: Explanation) -> None:
    """Mark the rules and exceptions whose value became the output's, from the root down."""
    while node is not None:
        node.facts["decides"] = True
        node = next((child for child in node.children if child.kind == "exception" and child.value is not None),
                    None)


BASIS_WORDS = {
    "seed": "the source document's own figures",
    "verified": "figures verified in public sources",
    "derived": "figures derived from sources",
    "interpretation": "readings of the source's wording",
    "assumed": "values assumed for this run, not the rulebook's own",
    "illustrative": "values made up so that the rules can run, not real figures",
}


def headline(root: Explanation, basis: Optional[str], grouped: dict, tried: list = ()) -> str:
    """The first line of every rendering: the value, whose it is, what it rests on, and
    whether another reading of the source (readings_tried) would change it."""
    unit = " kr" if root.facts.get("type") == "money" else ""
    value = root.value if root.value is not None else "none"
    shown = "true" if value is True else "false" if value is False else f"{value}{unit}"
    where = f"{root.facts.get('table')} {root.facts.get('record')}, {root.facts.get('date')}"
    changing = [r["name"] for r in tried if r["changes"]]
    if changing:
        other = f". Another reading of {', '.join(changing)} changes it."
    elif any(r["changes"] is False for r in tried):
        other = ". The same under each other reading tried, one at a time."
    else:
        other = ""
    if basis is None:
        return f"{root.label} = {shown} [{where}] — basis: none (rests on no parameter value){other}"
    label = basis.upper() if basis == "illustrative" else basis
    return (f"{root.label} = {shown} [{where}] — basis: {label} (rests on {BASIS_WORDS.get(basis, basis)}: "
            f"{', '.join(grouped[basis])}){other}")


def _in_force(rule: CompiledRule, date: Optional[dt.date]) -> bool:
    if date is None:
        return rule.valid_from is None and rule.valid_until is None
    return in_force(rule.valid_from, rule.valid_until, date)
