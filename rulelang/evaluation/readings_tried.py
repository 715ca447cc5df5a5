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

from ..language.assumptions import readings
from ..language.diagnostics import EvaluationError
from ..language.values import to_json
from .explanation import Explanation


def readings_read(root: Explanation) -> list[str]:
    """The parameters read anywhere in the tree whose value was an interpretation, sorted."""
    return sorted({name for node in root.walk() for name, status in node.uses.items()
                   if status == "interpretation"})


def readings_tried(evaluator, output: str, record: dict, root: Explanation) -> list[dict]:
    """`[{name, value, source, alternatives: [{value, result[, error]}], changes}]` for every
    reading the explanation `root` read: `changes` is true when an alternative gives another
    result (or none can be computed), false when every one gives the same, and null for a
    reading without named alternatives (a number or a date: any value could be assumed)."""
    from .evaluator import Evaluator

    names = readings_read(root)
    if not names:
        return []
    program = evaluator.program
    date = evaluator.frame_for(program.outputs[output].table, record).date
    in_force = {r.name: r for r in readings(program.checked, date)}
    latest = {r.name: r for r in readings(program.checked)}  # one read `as of` another date
    tried = []
    for name in names:
        reading = in_force.get(name) or latest.get(name)
        if reading is None:
            continue
        param_type = program.parameters[name].type
        alternatives = []
        for value in reading.alternative_values:
            other = Evaluator(program, evaluator.dataset, evaluator.on, {**evaluator.assumptions, name: value},
                              evaluator.assumed_by)
            entry: dict = {"value": to_json(value, param_type)}
            try:
                entry["result"] = other.evaluate(output, record).json_value
            except EvaluationError as error:
                entry["result"] = None
                entry["error"] = error.message
            alternatives.append(entry)
        changes = (any("error" in a or a["result"] != root.value for a in alternatives)
                   if alternatives else None)
        tried.append({"name": name, "value": _taken(root, name, reading), "source": reading.source,
                      "alternatives": alternatives, "changes": changes})
    return tried


def _taken(root: Explanation, name: str, reading):
    """The reading's value as the explanation shows it (its first parameter node)."""
    return next((node.value for node in root.walk() if node.kind == "parameter" and node.label == name),
                reading.default)
