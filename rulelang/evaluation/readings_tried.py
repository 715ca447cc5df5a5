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

from ..language.assumptions import reading_of
from ..language.diagnostics import EvaluationError
from ..language.values import to_json
from .explanation import Explanation


def readings_read(root: Explanation) -> dict:
    """{name: the value its first parameter node shows (or None)} of the parameters read
    anywhere in the tree whose value was an interpretation, by name. One walk of the tree."""
    read: dict = {}
    for node in root.walk():
        if node.uses:
            for name, status in node.uses.items():
                if status == "interpretation" and name not in read:
                    read[name] = None
        if node.kind == "parameter" and read.get(node.label) is None and node.label in read:
            read[node.label] = node.value
    return dict(sorted(read.items()))


def readings_tried(evaluator, output: str, record: dict, root: Explanation) -> list[dict]:
    """`[{name, value, source, alternatives: [{value, result[, error]}], changes}]` for every
    reading the explanation `root` read: `changes` is true when an alternative gives another
    result (or none can be computed), false when every one gives the same, and null for a
    reading without named alternatives (a number or a date: any value could be assumed)."""
    read = readings_read(root)
    if not read:
        return []
    program = evaluator.program
    date = evaluator.frame_for(program.outputs[output].table, record).date
    tried = []
    for name, shown in read.items():
        # In force on the record's date; else the latest (a reading read `as of` another date).
        reading = reading_of(program.checked, name, date) or reading_of(program.checked, name)
        if reading is None:
            continue
        param_type = program.parameters[name].type
        alternatives = []
        for value in reading.alternative_values:
            entry: dict = {"value": to_json(value, param_type)}
            try:
                entry["result"] = evaluator.assuming(name, value).evaluate(output, record).json_value
            except EvaluationError as error:
                entry["result"] = None
                entry["error"] = error.message
            alternatives.append(entry)
        changes = (any("error" in a or a["result"] != root.value for a in alternatives)
                   if alternatives else None)
        tried.append({"name": name, "value": reading.default if shown is None else shown, "source": reading.source,
                      "alternatives": alternatives, "changes": changes})
    return tried
