"""Render results and explanation trees as text for people, JSON for tools, HTML for reviewers."""

from __future__ import annotations

import html
import json
from typing import Iterable

from .explanation import Explanation
from .evaluator import Result


def to_json_text(document) -> str:
    """Stable JSON: same document, same bytes."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# ------------------------------------------------------------------------ results


def results_document(rulebook_id: str, version: str, results: Iterable[Result]) -> dict:
    return {
        "rulebook": {"id": rulebook_id, "version": version},
        "results": [
            {"table": r.table, "record": r.record, "output": r.output, "value": r.json_value,
             "provision": r.provision}
            for r in results
        ],
    }


def results_text(results: list) -> str:
    if not results:
        return "no records to evaluate\n"
    rows = [(r.table, r.record, r.output, r.text_value, r.provision) for r in results]
    headers = ("table", "record", "output", "value", "provision")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers[:-1])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)) + "  provision"]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3])]
        lines.append("  ".join(cells) + "  " + row[4])
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ explanations


def _shown(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "—"
    return str(value)


def _line(node: Explanation) -> str:
    facts = node.facts
    kind = node.kind
    if kind == "output":
        unit = " kr" if facts.get("type") == "money" else ""
        head = (f"{node.label} = {_shown(node.value)}{unit}   [{facts.get('table')} {facts.get('record')}, "
                f"{facts.get('date')}]")
        if facts.get("paid_to"):
            head += f"  paid to {facts['paid_to']}"
        return head
    if kind in ("rule", "exception"):
        reason = facts.get("reason", "does not apply")
        if facts.get("repealed_by"):
            reason += f" by {facts['repealed_by']}"
        mark = "✔ applies" if facts.get("applied") else f"✘ {reason}"
        return f"{kind} {node.label}: {mark}" + (f" → {_shown(node.value)}" if facts.get("applied") else "")
    if kind == "parameter":
        period = (f"{facts.get('valid_from') or '…'} – {facts.get('valid_to') or '…'}"
                  if facts.get("valid_from") or facts.get("valid_to") else "always")
        return f"parameter {node.label} = {_shown(node.value)}  (in force {period}, {facts.get('status')})"
    if kind == "input":
        return f"input {node.label} = {_shown(node.value)}  (record {facts.get('record')})"
    if kind == "rounding":
        return f"{node.label}: {facts.get('before')} → {_shown(node.value)}"
    if kind == "lookup":
        found = facts.get("record")
        period = f", in force {facts.get('valid_from')} – {facts.get('valid_to') or '…'}" if found else ""
        return f"lookup {node.label} = {found or 'none'}{period}"
    if kind == "definition" and facts.get("explained_above"):
        return f"definition {node.label} → {_shown(node.value)}  (explained above)"
    if kind in ("condition", "formula", "criterion", "definition", "default"):
        formula = facts.get("formula")
        prefix = {"condition": "when", "formula": "then", "criterion": "criterion",
                  "definition": f"definition {node.label} =", "default": "default"}[kind]
        body = node.label if kind != "definition" else formula
        shown = f"   ({formula})" if formula and formula != body and kind != "definition" else ""
        return f"{prefix} {body} → {_shown(node.value)}{shown}"
    return f"{kind} {node.label} = {_shown(node.value)}"


def explanation_text(root: Explanation) -> str:
    """An indented tree, each provision cited once where it first matters."""
    lines: list[str] = []

    def visit(node: Explanation, depth: int):
        pad = "  " * depth
        lines.append(pad + _line(node))
        if node.kind in ("output", "rule", "exception", "parameter", "definition") and node.provision \
                and not node.facts.get("explained_above"):
            lines.append(pad + f"  § {node.provision}  [{node.source}]")
        for child in node.children:
            visit(child, depth + 1)

    visit(root, 0)
    return "\n".join(lines) + "\n"


def explanation_json(root: Explanation) -> str:
    return to_json_text(root.to_dict())


_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.2rem; border-left: 1px solid #ddd; }
li { margin: .25rem 0; }
.kind { font-size: .75rem; text-transform: uppercase; color: #666; margin-right: .4rem; }
.value { font-weight: 600; }
.applied { color: #0a7c2f; } .not-applied { color: #9a3412; }
.provision { display: block; font-size: .85rem; color: #444; }
.source { font-family: monospace; font-size: .8rem; color: #888; }
details > summary { cursor: pointer; }
"""


def explanation_html(root: Explanation, title: str = "") -> str:
    """A self-contained page: collapsible tree, provisions and sources beside every value."""

    def item(node: Explanation) -> str:
        facts = node.facts
        css = ""
        if node.kind in ("rule", "exception"):
            css = "applied" if facts.get("applied") else "not-applied"
        text = html.escape(_line(node))
        parts = [f'<span class="kind">{html.escape(node.kind)}</span>',
                 f'<span class="value {css}">{text}</span>']
        if node.provision:
            parts.append(f'<span class="provision">§ {html.escape(node.provision)}</span>')
        if node.source:
            parts.append(f'<span class="source">{html.escape(node.source)}</span>')
        inner = "".join(parts)
        if node.children:
            kids = "".join(item(child) for child in node.children)
            return f"<li><details open><summary>{inner}</summary><ul>{kids}</ul></details></li>"
        return f"<li>{inner}</li>"

    heading = html.escape(title or f"{root.label} = {_shown(root.value)}")
    return ("<!DOCTYPE html>\n<html lang=\"sv\"><head><meta charset=\"utf-8\">"
            f"<title>{heading}</title><style>{_HTML_STYLE}</style></head><body>"
            f"<h1>{heading}</h1><ul class=\"tree\">{item(root)}</ul></body></html>\n")


# ------------------------------------------------------------------------ settlements


def settlement_text(summary: dict) -> str:
    """The totals a person checks after a run: per clinic, per component, and the record count."""
    lines = [f"{summary['rulebook']['id']} {summary['rulebook']['version']}: settlement {summary['month']} "
             f"on {summary['engine']}, {summary['seconds']} s", ""]
    width = max([len("clinic")] + [len(c["clinic_id"] or "") for c in summary["clinics"]])
    amount_width = max([len("amount (kr)")] + [len(c["amount"]) for c in summary["clinics"]] + [len(summary["total"])])
    lines.append(f"{'clinic'.ljust(width)}  {'amount (kr)'.rjust(amount_width)}  lines")
    for clinic in summary["clinics"]:
        lines.append(f"{(clinic['clinic_id'] or '').ljust(width)}  {clinic['amount'].rjust(amount_width)}  {clinic['lines']}")
    lines.append(f"{'total'.ljust(width)}  {summary['total'].rjust(amount_width)}  {summary['lines']}")
    lines.append("")
    for component in summary["components"]:
        lines.append(f"  {component['component']}: {component['amount']} kr in {component['lines']} lines")
    lines.append("")
    for count in summary["records"]:
        other = f" + {count['other_months']} of other months" if count["other_months"] else ""
        lines.append(f"  {count['table']}: {count['read']} records in = {count['used']} used + "
                     f"{count['rejected']} rejected{other}")
    lines.append(f"line items: {summary['output']}; rejected records: {summary['rejected_output']}")
    return "\n".join(lines) + "\n"
