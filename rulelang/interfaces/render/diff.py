"""What changed between two rulebooks (`rulelang diff`), from its JSON document: text for a
reviewer at a terminal and a self-contained HTML page. Each side of a change is a list of
`attribute: value` lines; a changed thing shows the lines that differ, old (-) and new (+)."""

from __future__ import annotations

import html

from .explanation_html import html_page

TITLES = {"table": "tables", "output": "outputs", "parameter": "parameters", "reading": "readings",
          "definition": "definitions", "rule": "rules", "exception": "exceptions",
          "provision": "provisions (quoted words and sources)"}
MARKS = {"added": "+", "removed": "-", "changed": "~"}


def attribute_lines(described: dict, cited: bool = False) -> list:
    """A side of a change as `attribute: value` lines, without where it is written; a
    parameter's values one line each (period: value, status, cite), with `cited` followed by
    the value's FILE:LINE (the lines are compared without it)."""
    lines = []
    for key, value in described.items():
        if key in ("source", "repealed_at"):
            continue
        if key == "values":
            for v in value:
                cite = f"; {v['cite']}" if v.get("cite") else ""
                where = f"  [{v['source']}]" if cited else ""
                lines.append(f"{v['period']}: {v['value']} ({v['status'] or 'no status'}{cite}){where}")
        elif key == "quotes":
            lines += [f"quote: \"{quote}\"" for quote in value]
        elif key == "fields":
            lines += [f"field {field}" for field in value]
        elif isinstance(value, list):
            lines.append(f"{key}: {', '.join(str(v) for v in value) or '(none)'}")
        elif value is not None:
            lines.append(f"{key}: {value}")
    return lines


def _where(change: dict) -> str:
    old = (change["old"] or {}).get("source")
    new = (change["new"] or {}).get("source")
    if old and new:
        return f"{old} → {new}"
    return old or new or ""


def diff_text(document: dict) -> str:
    d = document
    changes = d["changes"]
    lines = [f"diff {d['old']} ({d['versions']['old']}) → {d['new']} ({d['versions']['new']}): "
             + (f"{len(changes)} change(s)" if changes else "no changes")]
    kind = None
    for change in changes:
        if change["kind"] != kind:
            kind = change["kind"]
            lines += ["", TITLES[kind]]
        lines.append(f"  {MARKS[change['change']]} {change['name']}   [{_where(change)}]")
        old, new = (attribute_lines(side) if side else [] for side in (change["old"], change["new"]))
        old_cited, new_cited = (attribute_lines(side, True) if side else [] for side in (change["old"], change["new"]))
        if change["change"] == "changed":
            lines += [f"      - {cited}" for line, cited in zip(old, old_cited) if line not in new]
            lines += [f"      + {cited}" for line, cited in zip(new, new_cited) if line not in old]
        else:
            lines += [f"      {line}" for line in (new_cited or old_cited)]
        if change["change"] == "changed" and change["old"].get("repealed_at") != change["new"].get("repealed_at") \
                and change["new"].get("repealed_at"):
            lines.append(f"      repealed at {change['new']['repealed_at']}")
    return "\n".join(lines) + "\n"


def _e(value) -> str:
    return html.escape(str(value))


def _side(described, other, mark: str) -> str:
    if not described:
        return "<td></td>"
    lines, cited = attribute_lines(described), attribute_lines(described, True)
    others = attribute_lines(other) if other else None
    items = "".join(f'<li class="{"differs" if others is not None and line not in others else ""}">{_e(shown)}</li>'
                    for line, shown in zip(lines, cited))
    source = f'<div class="source">{_e(described.get("source", ""))}</div>'
    return f'<td class="{mark}"><ul class="attributes">{items}</ul>{source}</td>'


DIFF_STYLE = """
td.old .differs { background: #fee2e2; } td.new .differs { background: #dcfce7; }
ul.attributes { margin: 0; padding-left: 1rem; }
.change-added { color: #0a7c2f; } .change-removed { color: #9a3412; } .change-changed { color: #1d4ed8; }
"""


def diff_html(document: dict) -> str:
    d = document
    title = f"Diff: {d['old']} → {d['new']}"
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="about">{_e(d["old"])} version {_e(d["versions"]["old"])} against {_e(d["new"])} version '
            f'{_e(d["versions"]["new"])}: {len(d["changes"])} change(s). Each side cites its file and line; '
            "what differs is marked.</p>"]
    if not d["changes"]:
        body.append("<p>No changes: the two rulebooks say the same.</p>")
    kind = None
    for change in d["changes"]:
        if change["kind"] != kind:
            if kind is not None:
                body.append("</table>")
            kind = change["kind"]
            body.append(f"<h2>{_e(TITLES[kind])}</h2><table><tr><th>name</th><th>change</th>"
                        f"<th>{_e(d['old'])}</th><th>{_e(d['new'])}</th></tr>")
        body.append(f'<tr><td><code>{_e(change["name"])}</code></td>'
                    f'<td class="change-{_e(change["change"])}">{_e(change["change"])}</td>'
                    f'{_side(change["old"], change["new"], "old")}{_side(change["new"], change["old"], "new")}</tr>')
    if kind is not None:
        body.append("</table>")
    return html_page(_e(title), "".join(body), DIFF_STYLE)
