"""A rulebook as a page of the docs site: its own text (prose and highlighted rules) as the
lawyer reads it, then what the rules declare, generated from the rulebook itself so that the
page cannot disagree with it: every parameter value with its period, status and citation;
the readings with their alternatives; and an index of provisions and what each carries."""

from __future__ import annotations

from ...language import syntax as s
from ...language.checker.dates import period
from ...language.values import rows_text, to_text


def _cell(text) -> str:
    """Text for a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _value(info, value) -> str:
    if not info.key_types:
        return to_text(value.value, info.type)
    return "<br>".join(_cell(row) for row in rows_text(value.value, info.type))


def _alternatives(info, checked) -> str:
    kind = info.type.kind
    default = info.values[-1].value if info.values else None
    if kind == "boolean":
        return "false" if default else "true"
    if kind == "enum":
        return ", ".join(v for v in checked.enums[info.type.name].values if v != default)
    return "another value (`assuming` in an example, or for a run)"


def rulebook_page(book) -> str:
    """The page's Markdown for a loaded rulebook (`rulelang.load`)."""
    checked = book.checked
    own = checked.chain[-1]
    text = own.text.rstrip("\n")
    lines = [text, "", "---", "",
             f"*The sections below are generated from `{own.path}` (version {book.version}).*", ""]

    lines += ["## Parameter values", "",
              "Every value this rulebook declares, with the period it is in force, its status and its "
              "citation (statuses: seed, verified, derived, interpretation, illustrative).", "",
              "| parameter | in force | value | status | citation | line |", "|---|---|---|---|---|---|"]
    readings = []
    for name, info in checked.parameters.items():
        for value in info.values:
            if value.decl.span.file != own.path:
                continue
            lines.append(f"| `{name}` | {period(value.valid_from, value.valid_until)} | {_value(info, value)} | {value.decl.status} | "
                         f"{_cell(value.decl.cite or '')} | {value.decl.span.line} |")
            if value.decl.status == "interpretation" and (name, info) not in readings:
                readings.append((name, info))
    lines.append("")

    lines += ["## Readings", ""]
    if readings:
        lines += ["The questions the sources leave open, each answered by a parameter of status "
                  "`interpretation`; a run or an example may assume an alternative.", "",
                  "| parameter | default | alternatives | citation | provision |", "|---|---|---|---|---|"]
        for name, info in readings:
            default = info.values[-1]
            lines.append(f"| `{name}` | {_cell(to_text(default.value, info.type) if not info.key_types else '(rows)')} | "
                         f"{_cell(_alternatives(info, checked))} | {_cell(default.decl.cite or '')} | "
                         f"{_cell(info.decl.provision.heading)} |")
    else:
        lines.append("This rulebook has no readings of its own.")
    lines.append("")

    lines += ["## Index of provisions", "",
              "Each section that carries statements, with what it declares (line numbers in the rulebook).", ""]
    carried: dict = {}
    for statement in own.statements:
        kind = s.statement_kind(statement)
        if kind in ("statement", "example", "rulebook header", "according to"):
            continue
        carried.setdefault(statement.provision.heading, []).append(
            f"{kind} `{s.statement_name(statement)}` ({statement.span.line})")
    for heading, items in carried.items():
        lines.append(f"- **{_cell(heading)}**: " + ", ".join(items))
    lines.append("")
    return "\n".join(lines)
