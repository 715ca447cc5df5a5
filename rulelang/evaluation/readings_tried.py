"""What each reading an amount read would change: the amount evaluated again under every
alternative of every reading the evaluation read, one reading at a time.

An explanation's basis says an amount rests on readings of the source's wording, but a
reading read is not always a reading that matters: a video visit's condition may test a
reading about physical visits and fail either way. A reviewer wants to know which
readings decide this amount and what it would be if the policy writer answered otherwise.

Only readings the evaluation read are tried: evaluation is a function of the values it
reads, so a parameter it never read cannot change its result. The explanation's tree holds
everything the evaluation read (every rule and exception considered, sums with what their
contributors read), so its nodes name the candidates. Each alternative is evaluated by an
evaluator of its own over the same records, with the run's assumptions kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from ..language.diagnostics import EvaluationError
from ..language.values import to_json
from .explanation import Explanation


def readings_read(root: Explanation) -> dict:
    """{name: its first parameter node, or None} of the parameters read anywhere in the tree
    whose value was an interpretation, and of those a sum's filter may have read untraced
    (Explanation.may_read), by name. One walk of the tree."""
    read: dict = {}
    for node in root.walk():
        if node.uses:
            for name, status in node.uses.items():
                if status == "interpretation":
                    read.setdefault(name, None)
        for name in node.may_read:
            read.setdefault(name, None)
        if node.kind == "parameter" and node.label in read and read[node.label] is None:
            read[node.label] = node
    return read  # in the order first read


def readings_tried(evaluator, output: str, record: dict, root: Explanation) -> list[dict]:
    """`[{name, value, source, on_decision_path, alternatives, changes}]` for every reading
    the explanation `root` read (but those the run assumes), in the order first read.

    An alternative is `{value, result, provision, source, paid_to?}`: the output under it and
    the rule that decides it; `{value, result: None, error}` when it cannot be computed.
    `on_decision_path`: the amount rests on the reading (rests_on). `changes`: true when an
    alternative gives another result, pays another payee or cannot be computed, false when
    none does, null when there is nothing to try (a number or date no example works
    otherwise, or `untried` says why)."""
    read = readings_read(root)
    if not read:
        return []
    program = evaluator.program
    record_date = evaluator.frame_for(program.outputs[output].table, record).date
    tried = []
    for name, node in read.items():
        # The value read: the one in force in the period its node shows (a reading read `as of`
        # another date), else on the record's date.
        period = (node.facts.get("valid_from") or node.facts.get("valid_to")) if node is not None else None
        reading = program.reading(name, dt.date.fromisoformat(period) if period else record_date)
        if reading is None or name in evaluator.assumptions:
            continue  # not an interpretation where it was read (a filter may read others), or set for the run
        param_type = program.parameters[name].type
        untried = beyond_what_was_loaded(evaluator, output, reading)
        alternatives = []
        for value in reading.alternative_values if untried is None else ():
            entry: dict = {"value": to_json(value, param_type)}
            try:
                result = evaluator.assuming(name, value).evaluate(output, record)
                entry.update(result=result.json_value, provision=result.provision, source=result.source)
                if result.payee is not None:
                    entry["paid_to"] = result.payee
            except EvaluationError as error:
                entry["result"] = None
                entry["error"] = error.message
            alternatives.append(entry)
        paid_to = root.facts.get("paid_to")
        changes = (any("error" in a or a["result"] != root.value or a.get("paid_to") != paid_to for a in alternatives)
                   if alternatives else None)
        taken = node.value if node is not None else to_json(reading.value, param_type)
        entry = {"name": name, "value": taken, "source": reading.source,
                 "on_decision_path": name in root.uses, "alternatives": alternatives, "changes": changes}
        if untried is not None:
            entry["untried"] = untried
        tried.append(entry)
    return tried


def beyond_what_was_loaded(evaluator, output: str, reading) -> Optional[str]:
    """Why the alternatives of `reading` (a Reading) cannot be tried on a dataset loaded in part (a
    focus on one record of a directory), or None: under an alternative the output may read
    rows of a table beyond the record's reach (CheckedRulebook.beyond_reach; the koncern's
    listings rather than the clinic's), of which only those in reach were loaded."""
    partial = evaluator.dataset.partial
    if not partial:
        return None
    checked = evaluator.program.checked
    beyond, needs = set(), []
    for text, value in zip(reading.alternatives, reading.alternative_values):
        tables = checked.beyond_reach(output, {**evaluator.assumptions, reading.name: value}) & partial
        if tables:
            beyond |= tables
            needs.append(f"--assume {reading.name}={text}")
    if not beyond:
        return None
    return (f"not tried: under another reading it may read {', '.join(sorted(beyond))} beyond the records this "
            f"one names, and only those were loaded; explain with {' or '.join(needs)} to load them, or price "
            "each alternative over the whole input with rulelang readings --data")
