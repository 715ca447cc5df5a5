"""The HTTP API of `rulelang serve` (FastAPI): the CLI's JSON over HTTP, its messages as
`application/problem+json`. The state it serves is a `server.Service`; the workbench's pages
are mounted beside it (`workbench.py`)."""

from __future__ import annotations

from typing import Any, Optional

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..language.checker.dates import period
from ..language.diagnostics import Error, NotFound, RulebookError
from ..language.values import rows_text, to_text
from .server import (
    MAX_BODY,
    MAX_RECORDS,
    Service,
    TooLarge,
    evaluation_json,
    problem,
    problem_status,
    token_matches,
)

PROBLEM = "application/problem+json"
Records = dict[str, list[dict[str, Any]]]


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: Records = Field(description="records by table, as in an input file: {table: [records]}")
    on: Optional[str] = Field(None, description="the date (YYYY-MM-DD) for records without a date of their own")
    assume: dict[str, str] = Field(default_factory=dict, description="parameter → value for this request")


class ExplainRequest(EvaluateRequest):
    output: str
    record: str
    full: bool = Field(False, description="accepted for symmetry with the CLI; JSON always has the whole tree")


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="a rulebook's text (literate Markdown)")


class SettlementRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rulebook: str
    data: str = Field(description="the name of a data set the server was started with (--data NAME=PATH)")
    month: str = Field(description="YYYY-MM")
    assume: dict[str, str] = Field(default_factory=dict)


class ImpactRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    old: str
    new: str
    data: str
    month: str
    assume: dict[str, str] = Field(default_factory=dict)
    largest: int = Field(10, ge=0, le=100)


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(problem(status, title, detail), status_code=status, media_type=PROBLEM)


class Guard:
    """ASGI middleware, before anything else reads the request: without the server's token
    (bearer, the cookie set by `/?token=`, or `?token=`) a request is refused (401); a body
    beyond `limit` bytes is refused (413) before it is read whole, whether or not it says
    its length. Plain ASGI: it costs microseconds a request."""

    def __init__(self, app, limit: int, token: Optional[str]):
        self.app, self.limit, self.token = app, limit, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.token is not None and not token_matches(self.token, _given_token(scope)):
            return await _problem(401, "Unauthorized", "this server needs its token: Authorization: Bearer TOKEN")(
                scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _problem(413, "Payload Too Large",
                                  f"the request body is more than {self.limit} bytes")(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge(f"the request body is more than {self.limit} bytes")
            return message

        return await self.app(scope, counted, send)


def _given_token(scope) -> Optional[str]:
    request = Request(scope)
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip() or \
        request.cookies.get("rulelang_token") or request.query_params.get("token")


def create_app(service: Service) -> FastAPI:
    """The API and the workbench over `service`."""
    # No Swagger or ReDoc pages: they load their scripts from a CDN, and the server fetches nothing.
    app = FastAPI(title="rulelang", version=_version(), docs_url=None, redoc_url=None,
                  description="Rules as code for Swedish primary-care compensation: evaluate, explain, check, "
                              "settle, diff and price rulebooks. JSON as the CLI's (CONTRACT §3); errors as "
                              "application/problem+json with the CLI's messages.")
    app.state.service = service

    @app.exception_handler(Error)
    async def rulelang_error(request: Request, error: Error):
        status = problem_status(error)
        message = error.format() if hasattr(error, "format") else str(error)
        return _problem(status, _title(status), message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        return _problem(422, "Unprocessable Content", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return _problem(error.status_code, _title(error.status_code), str(error.detail))

    # ---- rulebooks
    @app.get("/rulebooks", summary="Every rulebook the server can load: id, title, version")
    def rulebooks() -> dict:
        listed = []
        for rulebook_id in service.rulebook_ids():
            try:
                book = service.rulebook(rulebook_id)
                listed.append({"id": book.id, "title": book.title, "version": book.version})
            except Error as error:  # listed with why it cannot be served
                listed.append({"id": rulebook_id, "title": None, "version": None, "error": str(error)})
        return {"rulebooks": listed}

    @app.post("/rulebooks/{rulebook_id:path}/evaluate", summary="Every output of every record, as eval --format json")
    async def evaluate(rulebook_id: str, request: EvaluateRequest) -> dict:
        return await _answered(service, "evaluate", rulebook_id, request)

    @app.post("/rulebooks/{rulebook_id:path}/explain", summary="The explanation of one output, as explain --format json")
    async def explain(rulebook_id: str, request: ExplainRequest) -> dict:
        return await _answered(service, "explain", rulebook_id, request)

    @app.get("/rulebooks/{rulebook_id:path}", summary="A rulebook's outputs, tables and parameters over time")
    def rulebook(rulebook_id: str) -> dict:
        return describe(service.rulebook(rulebook_id))

    @app.post("/check", summary="Check a rulebook's text: every diagnostic, with file, line and column")
    def check_text(request: CheckRequest) -> dict:
        return {"diagnostics": check_diagnostics(request.text)}

    # ---- settlements
    @app.post("/settlements", status_code=202, summary="Start settling a month of a configured data set")
    def start(request: SettlementRequest) -> dict:
        return service.start_settlement(request.rulebook, request.data, request.month, request.assume).to_dict()

    @app.get("/settlements", summary="The settlements this server has run")
    def settlements() -> dict:
        return {"settlements": [run.to_dict() for run in service.settlements()]}

    @app.get("/settlements/{run_id}", summary="A settlement's progress, and when done its summary")
    def settlement(run_id: str) -> dict:
        return service.settlement(run_id).to_dict()

    @app.get("/settlements/{run_id}/totals", summary="Totals per clinic and component, as the totals file")
    def totals(run_id: str) -> dict:
        import csv

        run = service.finished(run_id)
        with open(run.totals_out, encoding="utf-8", newline="") as handle:
            return {"totals": list(csv.DictReader(handle))}

    @app.get("/settlements/{run_id}/lines", summary="A page of line items, filtered")
    def lines(run_id: str, clinic: Optional[str] = None, component: Optional[str] = None,
              basis: Optional[str] = None, record: Optional[str] = None,
              offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)) -> dict:
        return service.lines(run_id, clinic, component, basis, record, offset, limit)

    @app.get("/settlements/{run_id}/explain", summary="The explanation of one line item")
    def explain_line(run_id: str, component: str, record: str) -> dict:
        return service.explain_line(run_id, component, record).to_dict()

    # ---- what changed and what it costs
    @app.get("/diff", summary="What changed between two rulebooks, as diff --format json")
    def diff(old: str, new: str) -> dict:
        from ..language.diff import diff_document

        return diff_document(old, service.rulebook(old).checked, new, service.rulebook(new).checked)

    @app.post("/impact", summary="The money a change moves in a month, as impact --format json")
    def impact(request: ImpactRequest = Body(...)) -> dict:
        document = service.impact(request.old, request.new, request.data, request.month, request.assume,
                                  request.largest).to_dict()
        for line in document["largest"]:  # the server's data is named, not a path
            line["explain"] = [None if c is None else c.replace(str(service.data_set(request.data)), request.data)
                               for c in line["explain"]]
        return document

    from .workbench import mount

    mount(app, service)
    app.add_middleware(Guard, limit=MAX_BODY, token=service.token)
    return app


INLINE_RECORDS = 500  # a request this small is answered on the event loop's own thread


async def _answered(service: Service, kind: str, rulebook_id: str, request: BaseModel) -> Response:
    """An evaluate or explain request (server.evaluation_json): a few records (a visit and
    what it names) where the request was read, since handing them to another thread costs
    more than evaluating them; a larger request on a worker thread, so that it does not hold
    up the others."""
    count = sum(len(records) for records in request.data.values())
    if count > MAX_RECORDS:
        raise TooLarge(f"{count} records in one request; the limit is {MAX_RECORDS}")
    given = dict(request)  # its fields, not copied
    if count <= INLINE_RECORDS:
        answer = evaluation_json(service, kind, rulebook_id, given)
    else:
        answer = await run_in_threadpool(evaluation_json, service, kind, rulebook_id, given)
    return Response(answer, media_type="application/json")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _version() -> str:
    from .. import __version__

    return __version__


def describe(book) -> dict:
    """A rulebook's facts for tools: outputs, tables, parameters with their values over time."""
    checked = book.checked
    parameters = []
    for name, info in checked.parameters.items():
        values = [{"valid_from": v.valid_from.isoformat() if v.valid_from else None,
                   "valid_to": v.valid_until.isoformat() if v.valid_until else None,
                   "period": period(v.valid_from, v.valid_until),
                   "value": rows_text(v.value, info.type) if info.key_types else to_text(v.value, info.type),
                   "status": v.decl.status, "cite": v.decl.cite,
                   "source": f"{v.decl.span.file}:{v.decl.span.line}"} for v in info.values]
        parameters.append({"name": name, "type": str(info.type), "keys": [str(k) for k in info.key_types],
                           "provision": info.decl.provision.heading, "values": values})
    outputs = [{"name": name, "type": str(info.type), "table": info.decl.table,
                "paid": info.decl.payee is not None, "provision": info.decl.provision.heading,
                "source": f"{info.decl.span.file}:{info.decl.span.line}"} for name, info in checked.outputs.items()]
    tables = [{"name": name, "key": info.decl.key, "dated_by": info.decl.dated_by,
               "fields": [{"name": field, "type": str(field_type)} for field, (field_type, _) in info.fields.items()]}
              for name, info in checked.tables.items()]
    return {"id": book.id, "title": book.title, "version": book.version, "outputs": outputs, "tables": tables,
            "parameters": parameters}


def check_diagnostics(text: str, name: str = "<request>") -> list:
    """Every diagnostic of a rulebook's text (errors and warnings), as `check --format json`
    gives them. The text is parsed and checked, never run."""
    from .api import Rulebook

    try:
        book = Rulebook.loads(text, name)
    except RulebookError as error:
        found = list(error.diagnostics)
    except NotFound as error:
        return [{"file": name, "line": 1, "column": 1, "severity": "error", "message": str(error)}]
    else:
        found = list(book.warnings) + book.proof()  # as `rulelang check`: the conflict prover too
    return [d.to_dict() for d in found]



if __name__ == "__main__":  # the committed OpenAPI document: python -m rulelang.interfaces.http > docs/openapi.json
    import json
    import sys

    sys.stdout.write(json.dumps(create_app(Service()).openapi(), ensure_ascii=False, indent=2) + "\n")
