"""The money a change moves (`rulelang impact`), from its JSON document: text for a person at
a terminal, CSV of every clinic and component for a spreadsheet, and a self-contained HTML
report with a chart of the per-clinic deltas (SVG written here: no script, no network)."""

from __future__ import annotations

import csv
import html
import io
from decimal import Decimal

from .explanation_html import html_page

CHART_CLINICS = 60  # the chart shows the clinics with the largest changes; the table has all
TEXT_CLINICS = 10


def _signed(amount: str) -> str:
    return amount if amount.startswith("-") else "+" + amount


def _per_clinic(document: dict) -> list:
    """(clinic, old, new, delta) as Decimals per clinic, all components together, in clinic order."""
    per: dict = {}
    for row in document["clinics"]:
        old, new = per.get(row["clinic_id"], (Decimal(0), Decimal(0)))
        per[row["clinic_id"]] = (old + Decimal(row["old"]), new + Decimal(row["new"]))
    return [(clinic, old, new, new - old) for clinic, (old, new) in per.items()]


def _largest_clinics(document: dict, count: int) -> list:
    moved = [row for row in _per_clinic(document) if row[3] != 0]
    return sorted(moved, key=lambda row: -abs(row[3]))[:count]


def _assumed(document: dict) -> str:
    return ", ".join(f"{name} = {value}" for name, value in document["assumptions"].items())


def impact_text(document: dict) -> str:
    d = document
    lines = [f"impact of {d['old']} ({d['versions']['old']}) → {d['new']} ({d['versions']['new']}): "
             f"settlement {d['month']} on {d['engine']}, {d['seconds']} s", ""]
    if d["assumptions"]:
        lines[-1:-1] = [f"ASSUMED on the new side, not the rulebook's own values: {_assumed(d)}"]
    lines.append(f"total: {d['total_old']} kr → {d['total_new']} kr, {_signed(d['total_delta'])} kr; "
                 f"{d['lines_changed']} line(s) changed")
    lines.append("")
    rows = [(c["component"], c["old"], c["new"], _signed(c["delta"])) for c in d["components"]]
    lines += _table(("component", "old (kr)", "new (kr)", "delta (kr)"), rows)
    lines.append("")
    clinics = _largest_clinics(d, TEXT_CLINICS)
    moved = sum(1 for row in _per_clinic(d) if row[3] != 0)
    if clinics:
        lines.append(f"clinics with the largest changes ({len(clinics)} of {moved} whose amount changed):")
        lines += _table(("clinic", "old (kr)", "new (kr)", "delta (kr)"),
                        [(c, f"{o:.2f}", f"{n:.2f}", _signed(f"{t:.2f}")) for c, o, n, t in clinics])
        lines.append("")
    if d["largest"]:
        lines.append("lines with the largest changes, and how to explain each side:")
        for line in d["largest"]:
            lines.append(f"  {line['component']} for {line['record_id']} (clinic {line['clinic_id']}): "
                         f"{line['old']} → {line['new']} kr ({_signed(line['delta'])})")
            for side, command in zip(("old", "new"), line["explain"]):
                lines.append(f"    {side}: {command or 'no such output on this side'}")
        lines.append("")
    if d["data_reads"] > 1:
        lines.append("the two rulebooks declare different tables: the data was read and checked for each")
    if d["rejected"]:
        lines.append(f"{d['rejected']} record(s) could not be used (settle writes each with its reason)")
    return "\n".join(lines) + "\n"


def _table(headers: tuple, rows: list) -> list:
    widths = [max(len(h), *(len(str(row[i])) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    for row in rows:
        out.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                             for i, (v, w) in enumerate(zip(row, widths))))
    return out


IMPACT_CSV_COLUMNS = ("clinic_id", "month", "component", "old", "new", "delta")


def impact_csv(document: dict) -> str:
    """Every clinic and component, zeros included, as settle's totals are; a text cell that a
    spreadsheet would take for a formula gets a leading apostrophe, as settle writes them."""
    def cell(text: str) -> str:
        return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(IMPACT_CSV_COLUMNS)
    for row in document["clinics"]:
        writer.writerow((cell(row["clinic_id"]), document["month"], cell(row["component"]), row["old"], row["new"],
                         row["delta"]))
    return out.getvalue()


IMPACT_STYLE = """
.delta-up { color: #0a7c2f; } .delta-down { color: #9a3412; }
svg.chart { width: 100%; height: auto; font-family: system-ui, sans-serif; font-size: 11px; }
svg.chart .up { fill: #15803d; } svg.chart .down { fill: #b45309; }
svg.chart .axis { stroke: #5f6368; stroke-width: 1; }
.banner { border-left: 6px solid #b45309; background: #fef3c7; padding: .5rem .9rem; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _delta_cell(amount: str) -> str:
    kind = "delta-down" if amount.startswith("-") else "delta-up" if Decimal(amount) else ""
    return f'<td class="num {kind}">{_e(_signed(amount))}</td>'


def _chart(document: dict) -> str:
    """Horizontal bars, one per clinic whose amount changed (the largest first), around zero."""
    clinics = _largest_clinics(document, CHART_CLINICS)
    if not clinics:
        return "<p>No clinic's amount changed.</p>"
    bar, gap, label, width = 14, 4, 110, 760
    widest = max(abs(t) for _, _, _, t in clinics)
    half = Decimal(width - label - 90) / 2
    zero = label + half
    height = len(clinics) * (bar + gap) + gap
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="change per clinic, the {len(clinics)} largest">']
    for number, (clinic, old, new, delta) in enumerate(clinics):
        y = gap + number * (bar + gap)
        length = abs(delta) / widest * half if widest else Decimal(0)
        x = zero if delta >= 0 else zero - length
        kind = "up" if delta >= 0 else "down"
        text_x = zero + length + 4 if delta >= 0 else zero - length - 4
        anchor = "start" if delta >= 0 else "end"
        parts.append(f'<text x="{label - 6}" y="{y + bar - 3}" text-anchor="end">{_e(clinic)}</text>'
                     f'<rect class="{kind}" x="{x:.1f}" y="{y}" width="{max(length, Decimal(1)):.1f}" height="{bar}">'
                     f'<title>{_e(clinic)}: {old:.2f} → {new:.2f} kr ({_signed(f"{delta:.2f}")})</title></rect>'
                     f'<text x="{text_x:.1f}" y="{y + bar - 3}" text-anchor="{anchor}">{_signed(f"{delta:.2f}")}</text>')
    parts.append(f'<line class="axis" x1="{zero}" y1="0" x2="{zero}" y2="{height}"/></svg>')
    return "".join(parts)


def impact_html(document: dict) -> str:
    d = document
    title = f"Impact: {d['old']} → {d['new']}, {d['month']}"
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="about">{_e(d["old"])} version {_e(d["versions"]["old"])} against {_e(d["new"])} version '
            f'{_e(d["versions"]["new"])}; the month {_e(d["month"])} settled under both on {_e(d["engine"])} '
            f'(data read {"once" if d["data_reads"] == 1 else "once per rulebook"}).</p>']
    if d["assumptions"]:
        body.append(f'<p class="banner">ASSUMED on the new side, not the rulebook\'s own values: '
                    f'{_e(_assumed(d))}</p>')
    body.append(f'<div class="headline"><p>Total {_e(d["total_old"])} kr → {_e(d["total_new"])} kr: '
                f'<strong>{_e(_signed(d["total_delta"]))} kr</strong>; {d["lines_changed"]} line(s) changed.</p></div>')
    body.append("<h2>Per component</h2><table><tr><th>component</th><th>old (kr)</th><th>new (kr)</th>"
                "<th>delta (kr)</th></tr>")
    for c in d["components"]:
        body.append(f'<tr><td>{_e(c["component"])}</td><td class="num">{_e(c["old"])}</td>'
                    f'<td class="num">{_e(c["new"])}</td>{_delta_cell(c["delta"])}</tr>')
    body.append("</table>")
    moved = sum(1 for row in _per_clinic(d) if row[3] != 0)
    shown_count = min(moved, CHART_CLINICS)
    body.append(f"<h2>Per clinic</h2><p class=\"about\">The change of each clinic's month, all components "
                f"together: the {shown_count} largest of the {moved} clinics whose amount changed.</p>")
    body.append(_chart(d))
    if d["largest"]:
        body.append("<h2>Lines with the largest changes</h2><table><tr><th>component</th><th>record</th>"
                    "<th>clinic</th><th>old (kr)</th><th>new (kr)</th><th>delta (kr)</th><th>explain</th></tr>")
        for line in d["largest"]:
            body.append(f'<tr><td>{_e(line["component"])}</td><td>{_e(line["record_id"])}</td>'
                        f'<td>{_e(line["clinic_id"])}</td><td class="num">{_e(line["old"])}</td>'
                        f'<td class="num">{_e(line["new"])}</td>{_delta_cell(line["delta"])}'
                        "<td>" + "<br>".join(f"<code>{_e(command)}</code>" if command else "no such output"
                                             for command in line["explain"]) + "</td></tr>")
        body.append("</table>")
    body.append("<h2>Every clinic and component</h2><details><summary>the table</summary><table><tr><th>clinic</th>"
                "<th>component</th><th>old (kr)</th><th>new (kr)</th><th>delta (kr)</th></tr>")
    for row in d["clinics"]:
        body.append(f'<tr><td>{_e(row["clinic_id"])}</td><td>{_e(row["component"])}</td>'
                    f'<td class="num">{_e(row["old"])}</td><td class="num">{_e(row["new"])}</td>'
                    f'{_delta_cell(row["delta"])}</tr>')
    body.append("</table></details>")
    return html_page(_e(title), "".join(body), IMPACT_STYLE)
