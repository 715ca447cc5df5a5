"""The review workbench of `rulelang serve`: server-rendered pages, no build step, nothing
fetched from the network, usable with the keyboard alone and printable.

A lawyer walks from a region's month to one line: the settlements (start one), a clinic's
total by component, its lines filtered by component, basis or record, and the explanation
of a line (decision path, the source's words, citations, contributors of sums). Beside it:
the rulebook reader (the rulebook's text with every parameter value, status and citation
and its readings), and the diff and impact views.
"""

from __future__ import annotations

import csv
import html
import re
from decimal import Decimal
from typing import Optional
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ..language.diagnostics import Error
from ..language.values import format_money
from .render.explanation_html import explanation_section, html_page
from .server import Service, problem_status

WORKBENCH_STYLE = """
nav.top { display: flex; gap: 1.2rem; align-items: baseline; border-bottom: 1px solid var(--line);
          padding-bottom: .5rem; margin-bottom: 1rem; }
nav.top a { font-weight: 600; }
nav.crumbs { color: var(--muted); margin-bottom: .8rem; }
a:focus, button:focus, input:focus, select:focus { outline: 3px solid #2563eb; outline-offset: 2px; }
form.inline { display: flex; gap: .6rem; flex-wrap: wrap; align-items: end; margin: .6rem 0 1rem; }
form.inline label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
.status-running, .status-queued { color: #b45309; } .status-done { color: var(--ok); } .status-failed { color: var(--no); }
.reader pre { background: #f8fafc; border: 1px solid var(--line); padding: .6rem; overflow-x: auto; margin: 0 0 .6rem; }
section.provision { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); column-gap: 1.5rem; }
section.provision > .prose { grid-column: 1; } section.provision > .rules { grid-column: 2; }
section.provision.no-rules { display: block; }
table.wide { display: block; overflow-x: auto; }
@media (max-width: 60rem) { section.provision { display: block; } }
@media print { nav.top, form.inline { display: none; } }
"""


def e(value) -> str:
    return html.escape("" if value is None else str(value))


def page(title: str, body: str, crumbs: Optional[list] = None, refresh: bool = False) -> HTMLResponse:
    nav = ('<nav class="top" aria-label="workbench"><a href="/">rulelang workbench</a>'
           '<a href="/#settlements">settlements</a><a href="/#rulebooks">rulebooks</a>'
           '<a href="/ui/diff">diff</a><a href="/ui/impact">impact</a><a href="/openapi.json">API (OpenAPI)</a></nav>')
    trail = ""
    if crumbs:
        trail = '<nav class="crumbs" aria-label="where you are">' + " › ".join(
            f'<a href="{e(href)}">{e(text)}</a>' if href else e(text) for text, href in crumbs) + "</nav>"
    document = html_page(e(title), f"{nav}{trail}<main>{body}</main>", WORKBENCH_STYLE)
    if refresh:  # a page that follows a running settlement reloads itself; no script needed
        document = document.replace("<head>", '<head><meta http-equiv="refresh" content="2">', 1)
    return HTMLResponse(document)


def kronor(amount) -> str:
    return format_money(int(Decimal(str(amount)) * 100))


def mount(app: FastAPI, service: Service) -> None:
    """The workbench's pages, on the API's app."""

    def failure(error: Error, title: str) -> HTMLResponse:
        response = page(title, f'<h1>{e(title)}</h1><p class="not-applied">{e(error)}</p>')
        response.status_code = problem_status(error)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request):
        response = _index(service)
        token = request.query_params.get("token")
        if service.token is not None and token:  # a browser keeps the token for the pages after
            response.set_cookie("rulelang_token", token, httponly=True, samesite="strict")
        return response

    @app.get("/ui/rulebooks/{rulebook_id:path}", response_class=HTMLResponse, include_in_schema=False)
    def reader(rulebook_id: str):
        try:
            return _reader(service, rulebook_id)
        except Error as error:
            return failure(error, "No such rulebook")

    @app.post("/ui/settlements", include_in_schema=False)
    async def start(request: Request):
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        try:
            run = service.start_settlement(form.get("rulebook", ""), form.get("data", ""), form.get("month", ""))
        except Error as error:
            return failure(error, "The settlement cannot start")
        return RedirectResponse(f"/ui/settlements/{run.id}", status_code=303)

    @app.get("/ui/settlements/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def settlement(run_id: str):
        try:
            return _settlement(service, run_id)
        except Error as error:
            return failure(error, "No such settlement")

    @app.get("/ui/settlements/{run_id}/lines", response_class=HTMLResponse, include_in_schema=False)
    def lines(run_id: str, clinic: Optional[str] = None, component: Optional[str] = None,
              basis: Optional[str] = None, record: Optional[str] = None, offset: int = 0):
        try:
            # `none`: the lines that rest on no parameter value (their basis is written empty)
            basis = "" if basis == "none" else basis or None
            return _lines(service, run_id, clinic or None, component or None, basis, record or None, offset)
        except Error as error:
            return failure(error, "The lines cannot be shown")

    @app.get("/ui/settlements/{run_id}/explain", response_class=HTMLResponse, include_in_schema=False)
    def explanation(run_id: str, component: str, record: str, clinic: Optional[str] = None):
        try:
            run = service.settlement(run_id)
            tree = service.explain_line(run_id, component, record)
        except Error as error:
            return failure(error, "The line cannot be explained")
        crumbs = [("settlements", "/#settlements"), (f"{run.rulebook} {run.month}", f"/ui/settlements/{run_id}")]
        if clinic:
            crumbs.append((f"clinic {clinic}", f"/ui/settlements/{run_id}/lines?{urlencode({'clinic': clinic})}"))
        crumbs.append((f"{component} for {record}", None))
        return page(f"{component} för {record}", f"<h1>{e(component)} för {e(record)}</h1>"
                    + explanation_section(tree), crumbs)

    @app.get("/ui/diff", response_class=HTMLResponse, include_in_schema=False)
    def diff(old: str = "", new: str = ""):
        form = _pair_form("/ui/diff", old, new)
        if not old or not new:
            return page("Diff", "<h1>What changed between two rulebooks</h1>" + form)
        try:
            from ..language.diff import diff_document
            from .render.diff import diff_html

            document = diff_document(old, service.rulebook(old).checked, new, service.rulebook(new).checked)
        except Error as error:
            return failure(error, "No diff")
        return page(f"Diff {old} → {new}", form + _inner(diff_html(document)))

    @app.get("/ui/impact", response_class=HTMLResponse, include_in_schema=False)
    def impact(old: str = "", new: str = "", data: str = "", month: str = ""):
        form = _pair_form("/ui/impact", old, new, data, month, service)
        if not (old and new and data and month):
            return page("Impact", "<h1>The money a change moves</h1>" + form)
        try:
            from .render.impact import impact_html

            result = service.impact(old, new, data, month)
        except Error as error:
            return failure(error, "No impact")
        return page(f"Impact {old} → {new}", form + _inner(impact_html(result.to_dict())))


def _inner(document: str) -> str:
    """The body of a whole page a renderer wrote, to place in a workbench page."""
    return document[document.index("<body>") + len("<body>"):document.rindex("</body>")]


def _index(service: Service) -> HTMLResponse:
    ids = service.rulebook_ids()
    options = "".join(f'<option value="{e(i)}"{" selected" if i == "stockholm/hlv-2021" else ""}>{e(i)}</option>'
                      for i in ids)
    data_options = "".join(f'<option value="{e(n)}">{e(n)}</option>' for n in sorted(service.data))
    body = ["<h1>Review workbench</h1>",
            '<h2 id="settlements">Settlements</h2>']
    if service.data:
        body.append('<form class="inline" method="post" action="/ui/settlements">'
                    f'<label>rulebook<select name="rulebook">{options}</select></label>'
                    f'<label>data<select name="data">{data_options}</select></label>'
                    '<label>month<input name="month" value="2021-09" pattern="[0-9]{4}-[0-9]{2}" required></label>'
                    '<button type="submit">Settle</button></form>')
    else:
        body.append("<p>No data sets: start the server with <code>--data NAME=PATH</code> to settle.</p>")
    runs = service.settlements()
    if runs:
        body.append("<table><tr><th>settlement</th><th>rulebook</th><th>data</th><th>month</th><th>status</th></tr>")
        for run in reversed(runs):
            body.append(f'<tr><td><a href="/ui/settlements/{e(run.id)}">{e(run.id)}</a></td><td>{e(run.rulebook)}</td>'
                        f'<td>{e(run.data)}</td><td>{e(run.month)}</td>'
                        f'<td class="status-{e(run.status)}">{e(run.status)}</td></tr>')
        body.append("</table>")
    body.append('<h2 id="rulebooks">Rulebooks</h2><ul>')
    for rulebook_id in ids:
        body.append(f'<li><a href="/ui/rulebooks/{quote(rulebook_id)}">{e(rulebook_id)}</a></li>')
    body.append("</ul>")
    return page("rulelang workbench", "".join(body))


def _reader(service: Service, rulebook_id: str) -> HTMLResponse:
    from markdown_it import MarkdownIt

    from .render.rulebook_page import rulebook_page

    book = service.rulebook(rulebook_id)
    text = MarkdownIt("commonmark", {"html": False}).enable("table").render(rulebook_page(book))
    return page(f"{book.id} {book.version}", f'<div class="reader">{side_by_side(text)}</div>',
                [("rulebooks", "/#rulebooks"), (book.id, None)])


def side_by_side(rendered: str) -> str:
    """The rulebook's HTML cut at its headings into sections, each with its prose on the left
    and the rules that encode it (its code blocks) on the right."""
    sections = []
    for chunk in re.split(r"(?=<h[1-6][ >])", rendered):
        rules = re.findall(r"<pre>.*?</pre>", chunk, re.S)
        prose = re.sub(r"<pre>.*?</pre>\n?", "", chunk, flags=re.S)
        kind = "provision" if rules else "provision no-rules"
        sections.append(f'<section class="{kind}"><div class="prose">{prose}</div>'
                        f'<div class="rules">{"".join(rules)}</div></section>')
    return "".join(sections)


def _settlement(service: Service, run_id: str) -> HTMLResponse:
    run = service.settlement(run_id)
    crumbs = [("settlements", "/#settlements"), (f"{run.rulebook} {run.month}", None)]
    head = (f"<h1>{e(run.rulebook)}: {e(run.month)} on {e(run.data)}</h1>"
            f'<p>Status: <span class="status-{e(run.status)}">{e(run.status)}</span>')
    if run.status in ("queued", "running"):
        return page(f"Settling {run.month}", head + f" — {run.progress:.0%} {e(run.step)}</p>"
                    "<p>This page reloads itself every two seconds.</p>", crumbs, refresh=True)
    if run.status == "failed":
        return page("Settlement failed", head + f'</p><p class="not-applied">{e(run.error)}</p>', crumbs)
    summary = run.summary
    body = [head + f" — {summary['lines']} lines, total <strong>{e(summary['total'])} kr</strong></p>"]
    body.append(f'<form class="inline" method="get" action="/ui/settlements/{e(run_id)}/lines">'
                '<label>find a record<input name="record" placeholder="V000606533" required></label>'
                '<button type="submit">Find its lines</button></form>')
    with open(run.totals_out, encoding="utf-8", newline="") as handle:
        totals = list(csv.DictReader(handle))
    components = [c["component"] for c in summary["components"]]
    body.append("<h2>Clinics</h2><table class=\"wide\"><tr><th>clinic</th><th>total (kr)</th>"
                + "".join(f"<th>{e(c)}</th>" for c in components) + "</tr>")
    per_clinic: dict = {}
    for row in totals:
        per_clinic.setdefault(row["clinic_id"], {})[row["component"]] = row["amount"]
    for clinic in summary["clinics"]:
        cid = clinic["clinic_id"]
        cells = "".join(
            f'<td class="num"><a href="/ui/settlements/{e(run_id)}/lines?{e(urlencode({"clinic": cid, "component": c}))}">'
            f'{e(per_clinic.get(cid, {}).get(c, "0.00"))}</a></td>' for c in components)
        body.append(f'<tr><td><a href="/ui/settlements/{e(run_id)}/lines?{e(urlencode({"clinic": cid}))}">{e(cid)}</a>'
                    f'</td><td class="num">{e(clinic["amount"])}</td>{cells}</tr>')
    body.append("</table><h2>Components</h2><table><tr><th>component</th><th>amount (kr)</th><th>lines</th></tr>")
    for component in summary["components"]:
        body.append(f'<tr><td>{e(component["component"])}</td><td class="num">{e(component["amount"])}</td>'
                    f'<td class="num">{component["lines"]}</td></tr>')
    body.append("</table><h2>Basis</h2><table><tr><th>basis</th><th>amount (kr)</th><th>lines</th></tr>")
    for basis in summary["bases"]:
        link = f"/ui/settlements/{run_id}/lines?{urlencode({'basis': basis['basis'] or 'none'})}"
        body.append(f'<tr><td><a href="{e(link)}">{e(basis["basis"] or "none")}</a></td>'
                    f'<td class="num">{e(basis["amount"])}</td><td class="num">{basis["lines"]}</td></tr>')
    body.append("</table>")
    return page(f"{run.rulebook} {run.month}", "".join(body), crumbs)


PAGE = 50


def _lines(service: Service, run_id: str, clinic, component, basis, record, offset: int) -> HTMLResponse:
    run = service.settlement(run_id)
    found = service.lines(run_id, clinic, component, basis, record, max(offset, 0), PAGE)
    filters = {k: v for k, v in (("clinic", clinic), ("component", component),
                                 ("basis", "none" if basis == "" else basis), ("record", record)) if v}
    crumbs = [("settlements", "/#settlements"), (f"{run.rulebook} {run.month}", f"/ui/settlements/{run_id}")]
    if clinic:
        crumbs.append((f"clinic {clinic}", f"/ui/settlements/{run_id}/lines?{urlencode({'clinic': clinic})}"))
    crumbs.append(("lines", None))
    components = [c["component"] for c in run.summary["components"]]
    options = '<option value="">every component</option>' + "".join(
        f'<option value="{e(c)}"{" selected" if c == component else ""}>{e(c)}</option>' for c in components)
    body = [f"<h1>Lines{' of clinic ' + e(clinic) if clinic else ''}</h1>",
            f'<form class="inline" method="get" action="/ui/settlements/{e(run_id)}/lines">'
            f'<input type="hidden" name="clinic" value="{e(clinic)}">'
            f'<label>component<select name="component">{options}</select></label>'
            f'<label>basis<input name="basis" value="{e("none" if basis == "" else basis)}"></label>'
            f'<label>record<input name="record" value="{e(record)}"></label>'
            '<button type="submit">Filter</button></form>',
            f"<p>{found['total']} line(s)" + (f"; {found['offset'] + 1}–{found['offset'] + len(found['lines'])} shown"
                                               if found["lines"] else "") + "</p>"]
    if found["lines"]:
        body.append("<table><tr><th>record</th><th>component</th><th>amount (kr)</th><th>basis</th><th>clinic</th>"
                    "<th>provision</th></tr>")
        for line in found["lines"]:
            explained = line["record_id"] or line["clinic_id"]
            link = (f"/ui/settlements/{run_id}/explain?"
                    + urlencode({"component": line["component"], "record": explained, "clinic": line["clinic_id"]}))
            body.append(f'<tr><td><a href="{e(link)}">{e(explained)}</a></td><td>{e(line["component"])}</td>'
                        f'<td class="num">{e(line["amount"])}</td><td>{e(line["basis"])}</td>'
                        f'<td>{e(line["clinic_id"])}</td><td>{e(line["provision"])}</td></tr>')
        body.append("</table>")
    pages = []
    if found["offset"] > 0:
        pages.append(f'<a href="?{e(urlencode({**filters, "offset": max(found["offset"] - PAGE, 0)}))}" rel="prev">'
                     "← previous</a>")
    if found["offset"] + PAGE < found["total"]:
        pages.append(f'<a href="?{e(urlencode({**filters, "offset": found["offset"] + PAGE}))}" rel="next">next →</a>')
    body.append(f'<nav aria-label="pages">{" · ".join(pages)}</nav>')
    return page("Lines", "".join(body), crumbs)


def _pair_form(action: str, old: str, new: str, data: str = "", month: str = "",
               service: Optional[Service] = None) -> str:
    fields = (f'<label>old<input name="old" value="{e(old or "stockholm/hlv-2016")}" required></label>'
              f'<label>new<input name="new" value="{e(new or "stockholm/hlv-2021")}" required></label>')
    if service is not None:
        options = "".join(f'<option value="{e(n)}"{" selected" if n == data else ""}>{e(n)}</option>'
                          for n in sorted(service.data))
        fields += (f'<label>data<select name="data">{options}</select></label>'
                   f'<label>month<input name="month" value="{e(month or "2021-09")}" required></label>')
    return f'<form class="inline" method="get" action="{action}">{fields}<button type="submit">Compare</button></form>'
