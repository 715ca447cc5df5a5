"""`rulelang serve`: the HTTP API (FastAPI's TestClient), the CLI's JSON and messages over
HTTP, safe by default, the OpenAPI document committed, and schemathesis against it."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from cli_support import run_cli
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from rulelang.interfaces.demo import write_demo_region
from rulelang.interfaces.http import create_app
from rulelang.interfaces.server import MAX_BODY, MAX_RECORDS, Service

pytestmark = pytest.mark.usefixtures("at_repo_root")

ROOT = Path(__file__).resolve().parent.parent
BOOK = "stockholm/hlv-2021"
EXAMPLE = ROOT / "examples" / "stockholm-2021.json"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    directory = tmp_path_factory.mktemp("served-region")
    write_demo_region(directory, persons=2000, seed=5, file_format="parquet")
    return directory


@pytest.fixture(scope="module")
def client(region):
    return TestClient(create_app(Service({"demo": region})))


@pytest.fixture(scope="module")
def records():
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def _unfiled(tree):
    """An explanation without the names of the input files its records came from."""
    if isinstance(tree, dict):
        return {k: None if k == "file" else _unfiled(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unfiled(v) for v in tree]
    return tree


def _problem(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"]
    return body["detail"]


# ------------------------------------------------------------------------ the CLI's JSON over HTTP


def test_rulebooks_are_listed_with_titles_and_versions(client):
    listed = {r["id"]: r for r in client.get("/rulebooks").json()["rulebooks"]}
    assert listed[BOOK]["version"] == "2021.5" and listed[BOOK]["title"]
    assert len(listed) == 6


def test_a_rulebook_gives_outputs_tables_and_parameters_over_time(client):
    described = client.get(f"/rulebooks/{BOOK}").json()
    assert "avdrag" in {o["name"] for o in described["outputs"]}
    assert {t["name"] for t in described["tables"]} >= {"visits", "persons", "clinics"}
    (table,) = [p for p in described["parameters"] if p["name"] == "listningsersättning_per_ålder"]
    assert [v["period"] for v in table["values"]] == ["2016-01-01 – 2021-01-31", "2021-02-01 – further notice"]
    (deduction,) = [p for p in described["parameters"] if p["name"] == "avdrag_fysiskt_besök"]
    assert deduction["values"][0]["status"] == "seed" and "300 kronor" in deduction["values"][0]["cite"]


def test_evaluate_is_eval_json(client, records):
    code, out, _ = run_cli("eval", BOOK, "--input", EXAMPLE, "--on", "2021-09-30", "--format", "json")
    assert code == 0
    answer = client.post(f"/rulebooks/{BOOK}/evaluate", json={"data": records, "on": "2021-09-30"})
    assert answer.status_code == 200 and answer.json() == json.loads(out)


def test_a_large_request_is_answered_on_a_worker_thread_as_a_small_one_is(client, records):
    """Up to INLINE_RECORDS records are evaluated on the event loop's thread, more on a
    worker thread: the answer is the same either way (eval of the same records)."""
    from rulelang import load
    from rulelang.interfaces.http import INLINE_RECORDS
    from rulelang.interfaces.render import results_document

    many = json.loads(json.dumps(records))
    visit = many["visits"][0]
    many["visits"] = [dict(visit, visit_id=f"V{i}") for i in range(INLINE_RECORDS + 1)]
    book = load(BOOK)
    expected = json.loads(json.dumps(results_document(book.id, book.version, book.evaluate(many, on="2021-09-30"))))
    answer = client.post(f"/rulebooks/{BOOK}/evaluate", json={"data": many, "on": "2021-09-30"})
    assert answer.status_code == 200 and answer.json() == expected
    assert len(answer.json()["results"]) > INLINE_RECORDS


def test_explain_is_explain_json_and_takes_assumptions(client, records):
    code, out, _ = run_cli("explain", BOOK, "--input", EXAMPLE, "--output", "avdrag", "--record", "V1",
                           "--assume", "avdrag_fysiskt_besök=350 kr", "--format", "json")
    assert code == 0
    answer = client.post(f"/rulebooks/{BOOK}/explain", json={
        "data": records, "output": "avdrag", "record": "V1", "assume": {"avdrag_fysiskt_besök": "350 kr"}})
    # The same tree; the records' file is the request's (`<records>`) rather than the example's.
    assert answer.status_code == 200 and _unfiled(answer.json()) == _unfiled(json.loads(out))
    assert "<records>" in json.dumps(answer.json())
    assert answer.json()["value"] == "-350.00" and answer.json()["basis"] == "assumed"


def test_check_gives_every_diagnostic_with_its_place(client):
    text = (ROOT / "rulebooks" / "stockholm" / "hlv-2021.md").read_text(encoding="utf-8")
    assert client.post("/check", json={"text": text}).json() == {"diagnostics": []}
    broken = text.replace("then -avdrag_fysiskt_besök", "then -avdrag_fysiskt_besok", 1)
    found = client.post("/check", json={"text": broken}).json()["diagnostics"]
    (diagnostic,) = [d for d in found if "avdrag_fysiskt_besok" in d["message"]]
    assert diagnostic["severity"] == "error"
    assert diagnostic["file"] == "<request>" and diagnostic["line"] > 1 and diagnostic["column"] > 1


def test_errors_are_problems_with_the_clis_messages(client, records):
    code, _, err = run_cli("explain", BOOK, "--input", EXAMPLE, "--output", "avdrag", "--record", "V99")
    detail = _problem(client.post(f"/rulebooks/{BOOK}/explain",
                                  json={"data": records, "output": "avdrag", "record": "V99"}), 422)
    # The CLI's message, word for word, naming the request's records where the CLI names its file.
    assert code == 2 and detail.replace("<records>", str(EXAMPLE)) in err
    assert "no rulebook 'stockholm/none'" in _problem(client.get("/rulebooks/stockholm/none"), 404)
    assert "is not a date" in _problem(client.post(f"/rulebooks/{BOOK}/evaluate",
                                                   json={"data": records, "on": "2021-09-31"}), 422)
    assert "data" in _problem(client.post(f"/rulebooks/{BOOK}/evaluate", json={"on": "2021-09-30"}), 422)


# ------------------------------------------------------------------------ safe by default


@pytest.mark.parametrize("path", ["/rulebooks/..%2F..%2Fetc%2Fpasswd", "/rulebooks/%2Fetc%2Fpasswd",
                                  "/rulebooks/rulebooks%2Fstockholm%2Fhlv-2021.md"])
def test_a_request_names_rulebooks_by_id_never_by_path(client, path):
    assert "is not a rulebook id" in _problem(client.get(path), 404) or client.get(path).status_code == 404


def test_a_request_names_data_never_by_path(client, region):
    detail = _problem(client.post("/settlements", json={"rulebook": BOOK, "data": str(region), "month": "2021-09"}),
                      404)
    assert "no data set" in detail and "demo" in detail
    detail = _problem(client.post(f"/rulebooks/{BOOK}/evaluate", json={"data": str(EXAMPLE)}), 422)
    assert "data" in detail


def test_bodies_and_records_are_bounded(client):
    big = {"visits": [{"visit_id": f"V{i}"} for i in range(MAX_RECORDS + 1)]}
    assert "the limit is" in _problem(client.post(f"/rulebooks/{BOOK}/evaluate", json={"data": big}), 413)
    too_long = b'{"text": "' + b"x" * (MAX_BODY + 1) + b'"}'
    _problem(client.post("/check", content=too_long, headers={"content-type": "application/json"}), 413)


def test_a_token_is_needed_when_the_server_has_one(region, records):
    guarded = TestClient(create_app(Service({"demo": region}, token="s3cret")))
    _problem(guarded.get("/rulebooks"), 401)
    _problem(guarded.get("/rulebooks", headers={"authorization": "Bearer wrong"}), 401)
    assert guarded.get("/rulebooks", headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert guarded.get("/rulebooks?token=s3cret").status_code == 200
    assert guarded.get("/rulebooks", headers={"cookie": "rulelang_token=s3cret"}).status_code == 200
    _problem(guarded.get("/rulebooks", headers={"cookie": "rulelang_token=other"}), 401)
    _problem(guarded.post(f"/rulebooks/{BOOK}/explain", json={"data": records, "output": "avdrag",
                                                              "record": "V1"}), 401)


def test_serve_refuses_another_interface_without_a_token(tmp_path):
    code, _, err = run_cli("serve", "--host", "0.0.0.0")
    assert code == 2 and "give --token" in err
    code, _, err = run_cli("serve", "--data", f"demo={tmp_path / 'absent'}")
    assert code == 2 and "is not a directory" in err


# ------------------------------------------------------------------------ settlements


def _settled(client, rulebook: str = BOOK, data: str = "demo", **request) -> dict:
    run = client.post("/settlements", json={"rulebook": rulebook, "data": data, "month": "2021-09", **request})
    assert run.status_code == 202, run.text
    for _ in range(600):
        state = client.get(f"/settlements/{run.json()['id']}").json()
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError("the settlement did not finish")


def test_a_settlement_runs_and_its_totals_are_the_clis(client, region, tmp_path):
    state = _settled(client)
    assert state["status"] == "done" and state["progress"] == 1.0
    code, _, err = run_cli("settle", BOOK, "--month", "2021-09", "--data", region, "--out", tmp_path / "s.parquet")
    assert code == 0, err
    with open(tmp_path / "s-totals.csv", encoding="utf-8", newline="") as handle:
        expected = list(csv.DictReader(handle))
    assert client.get(f"/settlements/{state['id']}/totals").json()["totals"] == expected
    assert "output" not in state["summary"]  # where the server keeps files is not said
    assert state["summary"]["total"] == f"{sum(__import__('decimal').Decimal(r['amount']) for r in expected):.2f}"


def test_lines_are_paged_and_filtered_and_each_explains(client, region):
    state = _settled(client)
    run = state["id"]
    page = client.get(f"/settlements/{run}/lines", params={"component": "avdrag", "limit": 5}).json()
    assert page["total"] > 5 and len(page["lines"]) == 5
    assert all(line["component"] == "avdrag" and line["amount"] == "-300.00" for line in page["lines"])
    following = client.get(f"/settlements/{run}/lines", params={"component": "avdrag", "limit": 5, "offset": 5}).json()
    assert {line["record_id"] for line in following["lines"]}.isdisjoint({line["record_id"] for line in page["lines"]})
    record = page["lines"][0]["record_id"]
    (only,) = client.get(f"/settlements/{run}/lines", params={"record": record, "component": "avdrag"}).json()["lines"]
    tree = client.get(f"/settlements/{run}/explain", params={"component": "avdrag", "record": record}).json()
    assert tree["value"] == only["amount"] and tree["basis"] == only["basis"]
    code, out, _ = run_cli("explain", BOOK, "--input", region, "--output", "avdrag", "--record", record,
                           "--on", "2021-09-30", "--format", "json")
    assert code == 0 and json.loads(out) == tree
    _problem(client.get(f"/settlements/{run}/lines", params={"limit": 5000}), 422)
    _problem(client.get("/settlements/s999"), 404)


def test_a_settlement_under_an_assumption_says_so(client):
    state = _settled(client, assume={"avdrag_fysiskt_besök": "350 kr"})
    assert state["summary"]["assumptions"] == {"avdrag_fysiskt_besök": "350.00 kr"}
    bad = client.post("/settlements", json={"rulebook": BOOK, "data": "demo", "month": "2021-09",
                                            "assume": {"avdrag_fysiskt_besök": "350"}})
    assert "write a value such as 350 kr" in _problem(bad, 422)


def test_worker_processes_share_settlements_through_the_scratch_directory(region, tmp_path):
    """Two services over one scratch directory, as `serve --workers 2` runs them: a settlement
    started by one is listed, followed and paged by the other; numbers never repeat."""
    first = TestClient(create_app(Service({"demo": region}, scratch=tmp_path)))
    second = TestClient(create_app(Service({"demo": region}, scratch=tmp_path)))
    started = first.post("/settlements", json={"rulebook": BOOK, "data": "demo", "month": "2021-09"}).json()
    for _ in range(600):
        state = second.get(f"/settlements/{started['id']}").json()
        if state["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert state["status"] == "done", state
    assert second.get(f"/settlements/{started['id']}/lines", params={"limit": 3}).json()["total"] > 0
    other = second.post("/settlements", json={"rulebook": BOOK, "data": "demo", "month": "2021-09"}).json()
    assert other["id"] != started["id"]
    listed = [run["id"] for run in first.get("/settlements").json()["settlements"]]
    assert listed == [started["id"], other["id"]]


def test_serve_with_two_workers_answers_on_one_port_and_stops_whole(region, records):
    """`rulelang serve --workers 2` as a user starts it: both processes answer on the port
    (each explains as the library does, and sees a settlement the other ran); SIGTERM stops
    the server and its workers (the port refuses), and its scratch directory is removed."""
    import signal
    import socket
    import threading

    import httpx

    from rulelang import load

    scratch_before = _scratch_directories()
    server, port = _started_server("--workers", "2", "--data", f"demo={region}")
    base = f"http://127.0.0.1:{port}"
    try:
        expected = _unfiled(load(BOOK).explain(records, "avdrag", "V1").to_dict())
        workers = [pid for pid in _children(server.pid) if b"spawn_main" in _cmdline(pid)]
        assert len(workers) == 2
        before = {pid: _cpu_ticks(pid) for pid in workers}
        answers = []

        def client() -> None:  # eight at once: while one process is busy, the other accepts
            with httpx.Client(base_url=base, timeout=60) as http:
                for _ in range(25):
                    answers.append(http.post(f"/rulebooks/{BOOK}/explain",
                                             json={"data": records, "output": "avdrag", "record": "V1"}))

        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        assert len(answers) == 200
        assert all(a.status_code == 200 and _unfiled(a.json()) == expected for a in answers)
        worked = {pid: _cpu_ticks(pid) - before[pid] for pid in workers}
        assert all(ticks >= 5 for ticks in worked.values()), worked  # both did work (50 ms and more)
        run = httpx.post(base + "/settlements", json={"rulebook": BOOK, "data": "demo", "month": "2021-09"}).json()
        for _ in range(600):
            state = httpx.get(f"{base}/settlements/{run['id']}").json()  # from either process
            if state["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert state["status"] == "done", state
        totals = [httpx.get(f"{base}/settlements/{run['id']}/totals").json()["totals"] for _ in range(6)]
        assert all(t == totals[0] and t for t in totals)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            time.sleep(0.1)
        except OSError:
            break
    else:
        raise AssertionError("a worker still answers after the server stopped")
    assert _scratch_directories() <= scratch_before
    assert "2 processes" in server.stderr.read()


def _started_server(*options: str) -> tuple:
    """`rulelang serve` in its own process on a free port, once it answers: (process, port)."""
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rulelang", "serve", "--port", str(port), *options],
                              cwd=ROOT, stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/rulebooks", timeout=5)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, port


def _scratch_directories() -> set:
    import tempfile

    return set(Path(tempfile.gettempdir()).glob("rulelang-serve-*"))


def _children(pid: int) -> list:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_diff_and_impact_are_the_clis(client, region):
    code, out, _ = run_cli("diff", "stockholm/hlv-2016", BOOK, "--format", "json")
    assert client.get("/diff", params={"old": "stockholm/hlv-2016", "new": BOOK}).json() == json.loads(out)
    answer = client.post("/impact", json={"old": "stockholm/hlv-2016", "new": BOOK, "data": "demo",
                                          "month": "2021-09", "largest": 3}).json()
    code, out, _ = run_cli("impact", "stockholm/hlv-2016", BOOK, "--data", region, "--month", "2021-09",
                           "--largest", "3", "--format", "json")
    expected = json.loads(out)
    for varying in ("seconds", "phases"):
        answer.pop(varying), expected.pop(varying)
    for line in expected["largest"]:  # the server names its data set, not its path
        line["explain"] = [c.replace(str(region), "demo") if c else c for c in line["explain"]]
    assert answer == expected


# ------------------------------------------------------------------------ the OpenAPI document


def test_the_openapi_document_is_served_and_committed(client):
    served = client.get("/openapi.json").json()
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert served == committed, "regenerate: python -m rulelang.interfaces.http > docs/openapi.json"
    assert {"/rulebooks", "/rulebooks/{rulebook_id}", "/rulebooks/{rulebook_id}/evaluate",
            "/rulebooks/{rulebook_id}/explain", "/check", "/settlements"} <= set(served["paths"])


# ------------------------------------------------------------------------ schemathesis


def _schema():
    import schemathesis

    service = Service({"demo": ROOT / "examples"})  # a name requests may use; no settlement will find tables
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(service))


schema = _schema()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_the_openapi_document_allows_makes_the_server_fail(case):
    from schemathesis.checks import not_a_server_error

    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:  # every refusal is a problem document
        kind = response.headers.get("content-type") or [""]
        assert (kind[0] if isinstance(kind, list) else kind).startswith(PROBLEM), (response.status_code, response.text)


def test_a_changed_rulebook_is_served_as_it_now_reads(tmp_path, monkeypatch):
    # The server reloads a rulebook when one of its files changes, the base it amends included.
    import shutil

    shutil.copytree(ROOT / "rulebooks", tmp_path / "rulebooks")
    monkeypatch.chdir(tmp_path)
    client = TestClient(create_app(Service()))
    records = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    body = {"data": records, "output": "avdrag", "record": "V1"}
    assert "Tolkning 1 (reviderad)" not in client.post(f"/rulebooks/{BOOK}/explain", json=body).text
    path = tmp_path / "rulebooks" / "stockholm" / "hlv-2021.md"
    text = path.read_text(encoding="utf-8")
    assert 'cite "Tolkning 1:' in text
    path.write_text(text.replace('cite "Tolkning 1:', 'cite "Tolkning 1 (reviderad):', 1), encoding="utf-8")
    import os
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a later stamp, whatever the clock's grain
    assert "Tolkning 1 (reviderad)" in client.post(f"/rulebooks/{BOOK}/explain", json=body).text


def test_no_page_the_server_serves_fetches_from_the_network(client):
    # The workbench and its pages work offline: no script, style or font from elsewhere.
    for path in ("/", f"/ui/rulebooks/{BOOK}", "/ui/diff?old=stockholm/hlv-2016&new=stockholm/hlv-2021"):
        text = client.get(path).text
        assert "<script src" not in text and "<link" not in text and "cdn" not in text.lower()
    assert client.get("/docs").status_code == 404  # no Swagger page: it would fetch its scripts


def test_the_workbench_filters_lines_by_basis_none_included(client):
    state = _settled(client)
    run = state["id"]
    bases = {b["basis"]: b["lines"] for b in state["summary"]["bases"]}
    page = client.get(f"/ui/settlements/{run}/lines", params={"basis": "interpretation"}).text
    assert f"<p>{bases['interpretation']} line(s)" in page
    # `none` lists the lines that rest on no parameter value (written with an empty basis), not every line.
    page = client.get(f"/ui/settlements/{run}/lines", params={"basis": "none"}).text
    assert f"<p>{bases.get(None, 0)} line(s)" in page
    assert client.get(f"/settlements/{run}/lines", params={"basis": ""}).json()["total"] == bases.get(None, 0)


def test_serve_in_one_process_stops_on_sigterm_and_leaves_no_scratch(records):
    import signal

    import httpx

    scratch_before = _scratch_directories()
    server, port = _started_server("--workers", "1")
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/rulebooks/{BOOK}/explain",
                            json={"data": records, "output": "avdrag", "record": "V1"}, timeout=60)
        assert answer.status_code == 200 and answer.json()["value"] == "-300.00"
        assert len(_scratch_directories() - scratch_before) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert _scratch_directories() <= scratch_before
    assert "1 process)" in server.stderr.read()


def test_whole_number_ids_are_paged_and_filtered_as_text(tmp_path, monkeypatch):
    """The region-month rulebook keys its tables by integers, which the Parquet line items
    hold as BIGINTs (settlement.line_ids); the page of lines gives them as text, as the CLI's
    JSON does, and filters by them as text. Person 100 (the first of the file) is listed at
    clinic 1 and earns it one capitation line."""
    from regions import REGION_MONTH, write_region_month_parquet
    from rulebook_factory import rulebook_library

    rulebook_library(tmp_path / "library", monkeypatch, "benchmark/region-month",
                     REGION_MONTH.read_text(encoding="utf-8"))
    data = write_region_month_parquet(tmp_path / "data")
    served = TestClient(create_app(Service({"rm": data})))
    state = _settled(served, "benchmark/region-month", "rm")
    assert state["status"] == "done", state
    lines = f"/settlements/{state['id']}/lines"
    (line,) = served.get(lines, params={"record": "100", "component": "kapitering"}).json()["lines"]
    assert (line["clinic_id"], line["record_id"]) == ("1", "100")
    clinic = served.get(lines, params={"clinic": "1", "limit": 1000}).json()
    assert clinic["total"] > 0 and {item["clinic_id"] for item in clinic["lines"]} == {"1"}
    assert all(isinstance(item["record_id"], str) and item["record_id"] for item in clinic["lines"])
