"""Render results and explanation trees as text for people, JSON for tools, HTML for reviewers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Iterable

from ...evaluation.evaluator import Result
from ...evaluation.explanation import Explanation
from .explanation_html import explanation_html
from .explanation_text import explanation_text

__all__ = ["explanation_html", "explanation_json", "explanation_text", "readings_text", "render",
           "results_document", "results_text", "settlement_text", "to_json_text"]

FORMATS = {"explanation": ("text", "json", "html"), "settlement": ("text", "json"), "results": ("text", "json"),
           "impact": ("text", "json", "csv", "html")}


def render(thing, format: str = "text", *, full: bool = False, title: str = "") -> str:
    """What the CLI prints, for an Explanation (text, json, html; `full`: the whole tree in
    text and HTML), a Settlement (text, json), a list of Results (text, json) or an Impact
    (text, json, csv, html)."""
    from ...columnar.impact import Impact
    from ...columnar.settlement import Settlement
    from ...language.diagnostics import InvalidArgument

    if isinstance(thing, Explanation):
        kind = "explanation"
    elif isinstance(thing, Settlement):
        kind = "settlement"
    elif isinstance(thing, Impact):
        kind = "impact"
    elif isinstance(thing, list) and all(isinstance(r, Result) for r in thing):
        kind = "results"
    else:
        raise InvalidArgument(f"cannot render a {type(thing).__name__}: give an Explanation, a Settlement, "
                              "an Impact or a list of Results")
    if format not in FORMATS[kind]:
        article = "an" if kind[0] in "aeiou" else "a"
        raise InvalidArgument(f"{article} {kind} renders as {', '.join(FORMATS[kind])}, not {format!r}")
    if kind == "explanation":
        if format == "json":
            return explanation_json(thing)
        return explanation_html(thing, title, full) if format == "html" else explanation_text(thing, full)
    if kind == "results":
        return to_json_text({"results": [r.to_dict() for r in thing]}) if format == "json" else results_text(thing)
    document = thing.to_dict()
    if format == "json":
        return to_json_text(document)
    if kind == "settlement":
        return settlement_text(document)
    from .impact import impact_csv, impact_html, impact_text
    return {"text": impact_text, "csv": impact_csv, "html": impact_html}[format](document)


def to_json_text(document) -> str:
    """Stable JSON: same document, same bytes."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# ------------------------------------------------------------------------ results


def results_document(rulebook_id: str, version: str, results: Iterable[Result]) -> dict:
    return {
        "rulebook": {"id": rulebook_id, "version": version},
        "results": [r.to_dict() for r in results],
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


def explanation_json(root: Explanation) -> str:
    """The whole tree, every node and every fact (contract §3, `explain --format json`)."""
    return to_json_text(root.to_dict())


# ------------------------------------------------------------------------ settlements


def settlement_text(summary: dict) -> str:
    """The totals a person checks after a run: per clinic, per component, and the record count."""
    lines = [f"{summary['rulebook']['id']} {summary['rulebook']['version']}: settlement {summary['month']} "
             f"on {summary['engine']}, {summary['seconds']} s", ""]
    if summary.get("assumptions"):
        lines[-1:-1] = ["ASSUMED for this run, not the rulebook's own values: "
                        + ", ".join(f"{name} = {value}" for name, value in summary["assumptions"].items())]
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
    if summary.get("bases"):
        lines.append("basis (the weakest status of the values a line rests on):")
        whole = sum(abs(Decimal(b["amount"])) for b in summary["bases"]) or Decimal(1)
        for basis in summary["bases"]:
            name = basis["basis"] or "none (no parameter value)"
            share = abs(Decimal(basis["amount"])) / whole * 100
            warning = "   ← made-up figures, not real ones" if basis["basis"] == "illustrative" else ""
            lines.append(f"  {name}: {basis['amount']} kr ({share:.1f} %) in {basis['lines']} lines{warning}")
        lines.append("")
    if summary.get("warnings"):
        lines.append("warnings (the input does not look like what the rulebook assumes):")
        for warning in summary["warnings"]:
            lines.append(f"  ! {warning['warning']}: {warning['message']}")
            lines.append(f"    § {warning['provision']}  [{warning['source']}]")
        lines.append("")
    for count in summary["records"]:
        other = f" + {count['other_months']} of other months" if count["other_months"] else ""
        lines.append(f"  {count['table']}: {count['read']} records in = {count['used']} used + "
                     f"{count['rejected']} rejected{other}")
    lines.append(f"line items: {summary['output']}; totals: {summary['totals_output']}; "
                 f"rejected records: {summary['rejected_output']}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ readings


def readings_text(document: dict) -> str:
    """Every reading: its answer, the alternatives, where it is written, and with data the
    money each alternative moves in the month."""
    d = document
    if not d["readings"]:
        return f"{d['rulebook']} {d['version']}: no readings (no parameter has the status interpretation)\n"
    priced = any("impact" in r for r in d["readings"])
    lines = [f"{d['rulebook']} {d['version']}: {len(d['readings'])} reading(s)"
             + (f" in force in {d['month']}" if d["month"] else "")
             + ("; the money each alternative moves that month, against the rulebook's own answer" if priced else ""),
             ""]
    for reading in d["readings"]:
        lines.append(f"{reading['name']} = {reading['default']}   [{reading['source']}]")
        lines.append(f"  § {reading['provision']}")
        if reading["cite"]:
            lines.append(f"  cite: {reading['cite']}")
        if not reading["alternatives"]:
            lines.append(f"  alternatives: any other value; price one with: rulelang impact {d['rulebook']} "
                         f"{d['rulebook']} --data DATA --month YYYY-MM --assume {reading['name']}=VALUE")
        for alternative in reading["alternatives"]:
            moved = reading.get("impact", {}).get(alternative)
            money = "" if moved is None else f": {moved if moved.startswith('-') else '+' + moved} kr"
            lines.append(f"  alternative {alternative}{money}")
        lines.append("")
    return "\n".join(lines)
