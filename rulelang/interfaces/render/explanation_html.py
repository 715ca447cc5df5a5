"""An explanation as a self-contained HTML page for review: readable without JavaScript,
printable, every value escaped.

The page opens with what the amount is and what it rests on, then the decision path (the
provisions with the source's words, the worked formulas, the exceptions that did not apply,
definitions, sums with all their contributors, parameter values with their citations,
inputs), then the whole tree, collapsible, where "explained above" links to the place.
"""

from __future__ import annotations

import html
from typing import Optional

from ...evaluation.decision import DecisionPath, decision_path
from ...evaluation.explanation import BASIS_ORDER, Explanation
from .explanation_text import (
    amount_unit,
    input_shown,
    period,
    reading_outcomes,
    shown,
    why_it_did_not_decide,
    with_unit,
)

STYLE = """
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d0d4d9; --ok: #0a7c2f; --no: #9a3412; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1.5rem; color: var(--ink); line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid var(--line); } h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.headline { border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.2rem; }
.about { color: var(--muted); margin: 0 0 .6rem; }
.basis { font-weight: 600; }
.replaced { color: #9a3412; font-weight: 600; }
table.readings caption { text-align: left; font-weight: 600; margin-bottom: .2rem; }
.differs { font-weight: 600; } .untried { color: var(--muted); }
.basis-illustrative { border: 3px solid #b91c1c; background: #fef2f2; }
.basis-illustrative .basis { color: #b91c1c; }
.basis-assumed, .basis-interpretation { border-left: 6px solid #b45309; }
.status { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .8rem;
          border: 1px solid var(--line); }
.status-illustrative { background: #fee2e2; border-color: #b91c1c; }
.status-interpretation, .status-assumed { background: #fef3c7; border-color: #b45309; }
.status-seed, .status-verified { background: #dcfce7; border-color: #15803d; }
.status-derived { background: #e0f2fe; border-color: #0369a1; }
blockquote.provision { margin: .4rem 0 .6rem; padding: .4rem .9rem; border-left: 4px solid #64748b;
                       background: #f8fafc; }
blockquote.provision .heading { font-weight: 600; margin: 0; }
blockquote.provision .words { font-style: italic; margin: .3rem 0; }
blockquote.provision .held { color: var(--muted); margin: .3rem 0; }
blockquote.provision footer { color: var(--muted); font-size: .85rem; }
.provision-again { color: var(--muted); font-size: .85rem; margin: .2rem 0; }
.applied { color: var(--ok); } .not-applied { color: var(--no); }
code, .formula, .source { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9rem; }
ol.steps { margin: .1rem 0 .3rem; padding-left: 1.4rem; list-style: none; }
ol.steps li::before { content: "→ "; color: var(--muted); }
table { border-collapse: collapse; margin: .4rem 0 1rem; width: 100%; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f1f5f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.period { white-space: nowrap; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.2rem; border-left: 1px solid var(--line); }
ul.tree li { margin: .2rem 0; }
.kind { font-size: .72rem; text-transform: uppercase; color: var(--muted); margin-right: .4rem; }
details > summary { cursor: pointer; }
:target { background: #fff7cc; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  details::details-content { content-visibility: visible; display: block; }
  details > summary { list-style: none; }
  a { color: inherit; text-decoration: none; }
  blockquote, tr, .step { break-inside: avoid; }
  .screen-only { display: none; }
}
"""

# Optional: open every section for printing, and restore afterwards. Reading needs none of it.
SCRIPT = """
(function () {
  var closed = [];
  window.addEventListener("beforeprint", function () {
    closed = Array.prototype.filter.call(document.querySelectorAll("details"), function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () { closed.forEach(function (d) { d.open = false; }); });
})();
"""


def e(value) -> str:
    return html.escape(shown(value) if not isinstance(value, str) else value)


def explanation_html(root: Explanation, title: str = "", full: bool = False) -> str:
    """A self-contained page: the decision path, then the whole tree (open with `full`)."""
    return html_page(e(title or root.label), explanation_section(root, full))


def explanation_section(root: Explanation, full: bool = False) -> str:
    """The explanation as HTML to place in a page (the workbench's explanation view)."""
    path = decision_path(root)
    page = _Page()
    body = [_headline(root), _path(path, page), _tree_section(root, page, full)]
    return "".join(body) + f"<script>{SCRIPT}</script>"


def html_page(title: str, body: str, style: str = "") -> str:
    """A self-contained page: the reviewer's style (and `style`), nothing fetched. `title`
    and `body` are HTML, escaped by the caller."""
    return ("<!DOCTYPE html>\n<html lang=\"sv\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{title}</title><style>{STYLE}{style}</style></head><body>{body}</body></html>\n")


class _Page:
    """What the page has shown already: provisions quoted once, ids given once."""

    def __init__(self):
        self.quoted: set = set()
        self.ids: set = set()

    def provision(self, node: Explanation) -> str:
        if not node.provision:
            return ""
        first = node.provision not in self.quoted
        self.quoted.add(node.provision)
        if not first:  # quoted above: name it again, briefly
            return (f'<p class="provision-again">§ {e(node.provision)} · '
                    f'<span class="source">{e(node.source)}</span></p>')
        parts = [f'<p class="heading">§ {e(node.provision)}</p>']
        if node.quote:
            parts += [f'<p class="words">“{e(line)}”</p>' for line in node.quote.split("\n")]
        elif node.document:
            parts.append('<p class="held">The rulebook does not hold this document\'s words.</p>')
        footer = [e(node.document)] if node.document else []
        footer.append(f'<span class="source">{e(node.source)}</span>')
        parts.append(f"<footer>{' · '.join(footer)}</footer>")
        return f'<blockquote class="provision">{"".join(parts)}</blockquote>'

    def id_for(self, anchor: Optional[str]) -> str:
        if not anchor or anchor in self.ids:
            return ""
        self.ids.add(anchor)
        return f' id="{e(anchor)}"'


def _headline(root: Explanation) -> str:
    facts = root.facts
    basis = facts.get("basis") or "none"
    about = [f"{facts.get('table')} {facts.get('record')}", f"{facts.get('date')}"]
    if facts.get("paid_to"):
        about.append(f"paid to {facts['paid_to']}")
    about.append(f"rulebook {facts.get('rulebook')}")
    unit = amount_unit(root)
    rows = "".join(f'<tr><td><span class="status status-{e(status)}">{e(status)}</span></td>'
                   f'<td>{", ".join(f"<code>{e(n)}</code>" for n in names)}</td></tr>'
                   for status, names in (facts.get("rests_on") or {}).items())
    replaced = (f'<p class="replaced">⚠ {e(facts["replaced_by"]["message"])}</p>'
                if facts.get("replaced_by") else "")
    rests = (f'<table class="rests-on"><tr><th>status</th><th>parameter values the amount rests on</th></tr>'
             f"{rows}</table>") if rows else "<p>It rests on no parameter value.</p>"
    return (f'<header class="headline basis-{e(basis)}"><h1>{e(root.label)} = {e(root.value)}{unit}</h1>'
            f'<p class="about">{" · ".join(e(a) for a in about)}</p>'
            f'<p class="basis">{e(facts.get("headline", ""))}</p>{replaced}{rests}{_readings(root)}'
            f'<p class="screen-only"><small>Statuses from firmest to weakest: {", ".join(BASIS_ORDER)}.'
            "</small></p></header>")


def _readings(root: Explanation) -> str:
    """A row for each alternative of each reading the amount read: what it would give."""
    if not root.facts.get("readings"):
        return ""
    rows = []
    for reading, other, outcome, differs in reading_outcomes(root):
        name = f"<code>{e(reading['name'])}</code>"
        if not reading["on_decision_path"]:
            name += " <small>(read off the decision path)</small>"
        tried = "—" if other is None else e(shown(other["value"]))
        kind = {True: "differs", False: "same", None: "untried"}[differs]
        rows.append(f"<tr><td>{name}</td><td>{e(shown(reading['value']))}</td><td>{tried}</td>"
                    f'<td class="{kind}">{e(outcome)}</td></tr>')
    return ('<table class="readings"><caption>Under another reading of the source (each tried alone, the '
            'others as taken)</caption><tr><th>reading</th><th>taken</th><th>tried</th><th>the amount</th></tr>'
            f"{''.join(rows)}</table>")


def _worked(label: str, node: Explanation, outcome: Optional[str] = None) -> str:
    steps = []
    if node.worked is not None:
        formula = node.worked.formula
        if formula != label:
            steps.append(formula)
        if node.kind in ("formula", "definition", "default", "rounding"):
            steps.extend(node.worked.steps)
    if outcome is not None and (not steps or steps[-1] != outcome):
        steps.append(outcome)
    items = "".join(f'<li class="formula">{e(s)}</li>' for s in steps)
    return f'<span class="formula">{e(label)}</span><ol class="steps">{items}</ol>'


def _path(path: DecisionPath, page: _Page) -> str:
    parts = ['<section class="path"><h2>Decision path</h2>']
    if not path.steps and path.default is not None:
        declared = ", declared with the output in" if path.default.provision else ""
        parts.append(f"<h3>No rule applies: the output's default{declared}</h3>")
        parts.append(page.provision(path.default))
        parts.append(_worked("default", path.default))
    for step in path.steps:
        node = step.node
        if not node.facts.get("applied"):
            parts.append(f'<p class="step">{e(node.kind)} <code>{e(node.label)}</code>: '
                         f'{e(node.facts.get("reason"))}</p>')
            continue
        parts.append(f'<article class="step"><h3 class="applied">✔ {e(node.kind)} <code>{e(node.label)}</code> '
                     f'applies <small>· in force {e(period(node))}</small></h3>{_applying(step, page)}')
        if step.passed_over:
            parts.append("<h4>Exceptions considered that did not apply</h4><ul>")
            parts.extend(_passed_over(x, page) for x in step.passed_over)
            parts.append("</ul>")
        parts.append("</article>")
    if path.other_rules:
        parts.append(f"<h3>Other rules for <code>{e(path.root.label)}</code></h3><ul>")
        parts.extend(_passed_over(rule, page) for rule in path.other_rules)
        parts.append("</ul>")
    parts.append(_reads(path, page))
    parts.append("</section>")
    return "".join(parts)


def _applying(step, page: _Page) -> str:
    """The rule that applies: its provision (quoted the first time), its condition and formula."""
    parts = [page.provision(step.node), "<dl>"]
    if step.condition is not None:
        parts.append(f"<dt>when</dt><dd>{_worked(step.condition.label, step.condition, shown(step.condition.value))}</dd>")
    if step.formula is not None:
        parts.append(f"<dt>then</dt><dd>{_worked(step.formula.label, step.formula)}</dd>")
    parts.append("</dl>")
    return "".join(parts)


def _passed_over(node: Explanation, page: _Page) -> str:
    reason = why_it_did_not_decide(node)
    mark = "=" if node.value is not None else "✘"
    return (f'<li><span class="not-applied">{mark} {e(node.kind)} <code>{e(node.label)}</code></span>: '
            f'<span class="formula">{e(reason)}</span>{page.provision(node)}</li>')


def _reads(path: DecisionPath, page: _Page) -> str:
    parts = []
    if path.outputs:
        parts.append("<h3>Outputs read</h3>")
        for read in path.outputs:
            root = read.root
            unit = amount_unit(root)
            applying = next((step for step in read.steps if step.node.facts.get("applied")), None)
            if applying is None:
                parts.append(f"<p><code>{e(root.label)}</code> = {e(root.value)}{unit}: no rule applies, the default</p>")
                continue
            node = applying.node
            parts.append(f'<article class="step"><p><code>{e(root.label)}</code> = <strong>{e(root.value)}{unit}'
                         f"</strong> by {e(node.kind)} <code>{e(node.label)}</code></p>{_applying(applying, page)}"
                         "</article>")
    if path.definitions:
        parts.append('<h3>Definitions</h3><table class="definitions"><tr><th>definition</th><th>worked out</th><th>provision</th></tr>')
        for node in path.definitions:
            label = node.label + (f" (of {node.facts['record']})" if node.facts.get("record") and
                                  node.facts.get("record") != path.root.facts.get("record") else "")
            written = node.worked.written if node.worked is not None else ""
            parts.append(f"<tr><td><code>{e(label)}</code></td><td>{_worked(written, node)}</td>"
                         f"<td>{page.provision(node)}</td></tr>")
        parts.append("</table>")
    if path.lookups:
        parts.append("<h3>Looked up</h3><ul>")
        for node in path.lookups:
            found = node.facts.get("record")
            during = f", in force {period(node)}" if found else ""
            parts.append(f"<li><code>{e(node.label)}</code> on {e(node.facts.get('on'))}: "
                         f"{e(found or 'none')}{e(during)}</li>")
        parts.append("</ul>")
    if path.criteria:
        parts.append("<h3>Criteria</h3>")
        for node in path.criteria:
            parts.append(f"<p>{e(node.label)}: {e(node.facts.get('held'))} hold → <strong>{e(node.value)}</strong></p><ul>")
            for criterion in node.children:
                mark = "✔" if criterion.value else "✘"
                parts.append(f"<li>{mark} <code>{e(criterion.label)}</code></li>")
            parts.append("</ul>")
    if path.aggregates:
        parts.append("<h3>Sums</h3>")
        parts.extend(_contributors(node) for node in path.aggregates)
    if path.parameters:
        parts.append('<h3>Parameter values</h3><table class="parameters"><tr><th>parameter</th><th>value</th>'
                     "<th>in force</th><th>status</th><th>cite</th><th>provision</th></tr>")
        for node in path.parameters:
            status = node.facts.get("status")
            parts.append(f'<tr><td><code>{e(node.label)}</code></td><td class="num">{e(with_unit(node))}</td>'
                         f"<td class=\"period\">{e(period(node))}</td>"
                         f'<td><span class="status status-{e(status)}">{e(status)}</span></td>'
                         f"<td>{e(node.facts.get('cite') or '')}</td><td>{page.provision(node)}</td></tr>")
        parts.append("</table>")
    if path.inputs:
        parts.append('<h3>Inputs</h3><table class="inputs"><tr><th>record</th><th>fields read</th></tr>')
        for table, record, fields in path.inputs:
            read = ", ".join(input_shown(*field) for field in fields)
            parts.append(f"<tr><td>{e(table)} {e(record)}</td><td>{e(read)}</td></tr>")
        parts.append("</table>")
    return "".join(parts)


def _contributors(node: Explanation) -> str:
    facts = node.facts
    contributors = facts.get("contributors") or []
    extra = sorted({k for item in contributors for k in item if k not in ("table", "record", "value")})
    head = "".join(f"<th>{e(k)}</th>" for k in ["table", "record", *extra, "value"])
    rows = "".join("<tr>" + "".join(f"<td>{e(item.get(k) or '')}</td>" for k in ["table", "record", *extra])
                   + f'<td class="num">{e(item.get("value"))}</td></tr>' for item in contributors)
    return (f'<details class="sum"><summary><code>{e(node.label)}</code> = <strong>{e(node.value)}</strong> '
            f"over {e(facts.get('records'))} record(s), evaluated on {e(facts.get('on'))}</summary>"
            f"<table><tr>{head}</tr>{rows}</table></details>")


# ------------------------------------------------------------------------ the whole tree


def _tree_section(root: Explanation, page: _Page, full: bool) -> str:
    opened = " open" if full else ""
    return (f'<section class="whole"><h2>The whole explanation</h2><details{opened}>'
            f"<summary>Every rule and exception considered, every value read</summary>"
            f'<ul class="tree">{_item(root, page)}</ul></details></section>')


def _item(node: Explanation, page: _Page) -> str:
    facts = node.facts
    css = ""
    if node.kind in ("rule", "exception"):
        css = "applied" if facts.get("applied") else "not-applied"
    if node.kind == "definition" and facts.get("explained_above"):
        line = (f'<span class="kind">definition</span><code>{e(node.label)}</code> → {e(node.value)} '
                f'(<a href="#{e(facts.get("anchor"))}">explained above</a>)')
        return f"<li>{line}</li>"
    ident = page.id_for(facts.get("anchor")) if node.kind == "definition" else ""
    line = f'<span class="kind">{e(node.kind)}</span><span class="{css}">{_tree_line(node)}</span>'
    if node.provision and node.kind in ("output", "rule", "exception", "parameter", "definition"):
        line += page.provision(node)
    if node.children:
        kids = "".join(_item(child, page) for child in node.children)
        return f"<li{ident}><details open><summary>{line}</summary><ul>{kids}</ul></details></li>"
    return f"<li{ident}>{line}</li>"


def _tree_line(node: Explanation) -> str:
    facts, kind = node.facts, node.kind
    if kind in ("rule", "exception"):
        if facts.get("applied"):
            return f"<code>{e(node.label)}</code>: ✔ applies → {e(node.value)} · in force {e(period(node))}"
        reason = facts.get("reason", "does not apply")
        if facts.get("repealed_by"):
            reason += f" by {facts['repealed_by']}"
        return f"<code>{e(node.label)}</code>: ✘ {e(reason)}"
    if kind == "parameter":
        return (f"<code>{e(node.label)}</code> = {e(with_unit(node))} · "
                f'<span class="status status-{e(facts.get("status"))}">{e(facts.get("status"))}</span> · '
                f"in force {e(period(node))}" + (f" · cite: {e(facts['cite'])}" if facts.get("cite") else ""))
    if kind == "input":
        return f"<code>{e(input_shown(node.label, node.value, facts.get('defaulted')))}</code> " \
               f"(record {e(facts.get('record'))})"
    if kind == "lookup":
        return f"<code>{e(node.label)}</code> = {e(facts.get('record') or 'none')}"
    if kind == "aggregate":
        return _contributors(node)
    if kind in ("condition", "formula", "definition", "default", "rounding", "criterion"):
        label = node.label if kind != "rounding" else (node.worked.written if node.worked else node.label)
        outcome = shown(node.value) if kind in ("condition", "criterion") else None
        if kind == "definition":
            return f"<code>{e(node.label)}</code>: {_worked(node.worked.written, node)}"
        return _worked(label, node, outcome)
    return f"<code>{e(node.label)}</code> = {e(node.value)}"
