"""A rulebook as a page of the docs site: its own text (prose and highlighted rules) as the
lawyer reads it, then what the rules declare, generated from the rulebook itself so that the
page cannot disagree with it: every parameter value with its period, status and citation;
the readings with their alternatives; and an index of provisions and what each carries."""

from __future__ import annotations

from ...language import syntax as s
from ...language.values import to_text

KINDS = {s.RuleDecl: "rule", s.ParameterDecl: "parameter", s.DefinitionDecl: "definition",
         s.OutputDecl: "output", s.TableDecl: "table", s.EnumDecl: "enum", s.WarningDecl: "warning",
         s.Repeal: "repeal", s.DataDecl: "data", s.ExampleDecl: "example"}


def _cell(text) -> str:
    """Text for a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _period(value) -> str:
    start = value.valid_from.isoformat() if value.valid_from else "the beginning"
    end = value.valid_until.isoformat() if value.valid_until else "further notice"
    return f"{start} – {end}"


def _value(info, value) -> str:
    if not info.key_types:
        return to_text(value.value, info.type)
    rows = []
    for keys, row_value in value.value:
        shown = ", ".join(enum if enum is not None else ("any" if low is None else
                          f"{low} to {high}" if high is not None else f"{low} and over")
                          for low, high, enum in keys)
        rows.append(f"{shown}: {to_text(row_value, info.type)}")
    return "<br>".join(_cell(row) for row in rows)


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
            lines.append(f"| `{name}` | {_period(value)} | {_value(info, value)} | {value.decl.status} | "
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
        kind = KINDS.get(type(statement))
        if kind is None:
            continue
        if isinstance(statement, s.RuleDecl):
            kind = "exception" if statement.is_exception else "rule"
            name = statement.label
        elif isinstance(statement, s.ExampleDecl):
            continue
        elif isinstance(statement, s.Repeal):
            name = statement.label
        else:
            name = statement.name
        carried.setdefault(statement.provision.heading, []).append(f"{kind} `{name}` ({statement.span.line})")
    for heading, items in carried.items():
        lines.append(f"- **{_cell(heading)}**: " + ", ".join(items))
    lines.append("")
    return "\n".join(lines)
