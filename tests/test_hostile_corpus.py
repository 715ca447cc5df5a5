"""A generated corpus of damaged input and mutated rulebooks: thousands of inputs a run.

Each generated case goes through the command line as a user's would, and must end with
exit 0, 1 or 2 (never 3, never a traceback); an error names the file it concerns; no
temporary file is left; and a settlement accounts for every record it was given — per
table `read = used + rejected + other months`, the rejected file holds the rejected ones,
and where the damage keeps the file's shape, `read` equals what an independent reader
(Python's csv and json modules) counts.

The named cases of the same defects are in `test_hostile_input.py`.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest
from cli_support import run_cli
from hypothesis import HealthCheck, given, settings, strategies as st

ROOT = Path(__file__).resolve().parent.parent
BOOK = "stockholm/hlv-2021"
MONTH = "2021-09"
EXAMPLE = json.loads((ROOT / "examples/stockholm-2021.json").read_text(encoding="utf-8"))
TABLES = ("clinics", "persons", "listings", "visits")


def corpus(examples: int):
    """How many generated inputs a test of the corpus runs."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
COUNTS = {"inputs": 0}


pytestmark = pytest.mark.usefixtures("at_repo_root")


def run(*argv) -> tuple:
    """The command as a user runs it: (exit status, standard output, standard error)."""
    code, out, err = run_cli(*argv)
    COUNTS["inputs"] += 1
    assert code in (0, 1, 2), (code, err)
    for stream in (out, err):
        assert "Traceback" not in stream and "internal error" not in stream, stream
    return code, out, err


def no_temporaries(directory: Path) -> None:
    assert [p.name for p in directory.rglob("*") if p.name.endswith((".tmp", ".commit"))] == []


def write_csv(directory: Path, tables: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        columns = list(dict.fromkeys(k for row in rows for k in row)) or ["x"]
        with open(directory / f"{name}.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return directory


def settled_and_accounted(data: Path, out_dir: Path, counted: dict = None) -> tuple:
    """Settle `data`; when it settles, every record is accounted for."""
    out = out_dir / "s.csv"
    code, out_text, err = run("settle", BOOK, "--month", MONTH, "--data", data, "--out", out, "--format", "json")
    if code == 0:
        summary = json.loads(out_text)
        rejected = list(csv.DictReader(open(out.with_name("s-rejected.csv"), encoding="utf-8", newline="")))
        for count in summary["records"]:
            assert count["read"] == count["used"] + count["rejected"] + count["other_months"], count
            assert count["rejected"] == sum(1 for r in rejected if r["table"] == count["table"]), count
            if counted and count["table"] in counted:
                assert count["read"] == counted[count["table"]], (count, counted)
    else:
        assert err.strip() and "error" in err
        assert not out.exists() or code == 0
    no_temporaries(out_dir)
    return code, err


# ------------------------------------------------------------------------ values a record may hold

WEIRD_VALUES = st.one_of(
    st.sampled_from(["", " ", "0", "-0", "1e400", "NaN", "Infinity", "0000-01-01", "2021-02-30", "9999-12-31",
                     "999999999999.999999", "-999999999999999.99", "9" * 40, "true", "FALSE", "yes",
                     "=HYPERLINK(\"x\")", "+1", "@x", "-1", "\t", "\r", "\x00", "\x1b[2J", "\u202e", "ÅÄÖ",
                     "P1", "A", "C", "physical", "video", "home", "psychosocial", "doctor", "2021-09-15",
                     "a\nb", "\"quoted\"", ",", ";", "\\", "'; DROP TABLE visits; --", "x\" AS VARCHAR) --"]),
    st.text(max_size=20),
    st.integers(min_value=-10 ** 20, max_value=10 ** 20).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=8).map(str),
    st.dates().map(str),
)


@st.composite
def damaged_values(draw) -> dict:
    """The example region with some values replaced: the CSV's shape stays, the values do not."""
    tables = json.loads(json.dumps(EXAMPLE))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        table = draw(st.sampled_from(TABLES))
        if not tables[table]:
            continue
        row = draw(st.sampled_from(tables[table]))
        field = draw(st.sampled_from(sorted(row) + ["extra_column"]))
        row[field] = draw(WEIRD_VALUES)
    if draw(st.booleans()):
        table = draw(st.sampled_from(TABLES))
        tables[table] = tables[table] + [dict(draw(st.sampled_from(tables[table])))] if tables[table] else []
    return tables


@corpus(150)
@given(tables=damaged_values())
def test_damaged_values_in_csv_are_each_used_or_rejected(tmp_path_factory, tables):
    root = tmp_path_factory.mktemp("values")
    data = write_csv(root / "data", tables)
    counted = {}
    for name in TABLES:
        with open(data / f"{name}.csv", encoding="utf-8", newline="") as handle:
            counted[name] = sum(1 for row in csv.reader(handle) if row) - 1
    code, err = settled_and_accounted(data, root / "out", counted)
    assert code in (0, 2)
    if code == 2:
        assert str(data) in err or "record" in err


@corpus(200)
@given(tables=damaged_values(), verb=st.sampled_from(["eval", "explain"]))
def test_damaged_values_are_refused_by_eval_naming_the_record(tmp_path_factory, tables, verb):
    data = tmp_path_factory.mktemp("eval") / "region.json"
    data.write_text(json.dumps(tables, ensure_ascii=False), encoding="utf-8")
    if verb == "eval":
        code, _, err = run("eval", BOOK, "--input", data, "--on", "2021-09-30")
    else:
        code, _, err = run("explain", BOOK, "--input", data, "--output", "avdrag", "--record", "V1")
    if code != 0:
        assert err.strip()
        first = err.strip().splitlines()[0]
        assert first.startswith((str(data), "rulelang: error:")), first


# ------------------------------------------------------------------------ bytes


@st.composite
def damaged_bytes(draw) -> tuple:
    """A table's file with bytes deleted, inserted or replaced, cut short, or given blank lines."""
    table = draw(st.sampled_from(TABLES))
    path_bytes = bytearray()
    buffer = io.StringIO()
    rows = EXAMPLE[table]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, columns)
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    path_bytes.extend(buffer.getvalue().encode("utf-8"))
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "blank", "duplicate"]))
        at = draw(st.integers(min_value=0, max_value=max(0, len(path_bytes) - 1)))
        if kind == "delete" and path_bytes:
            del path_bytes[at:at + draw(st.integers(1, 8))]
        elif kind == "insert":
            path_bytes[at:at] = draw(st.sampled_from([b",", b'"', b"\n", b"\r\n", b";", b"\x00", b"\xff",
                                                      b"\xc3", b"x" * 200, b'""', b"\t", b"\xef\xbb\xbf"]))
        elif kind == "replace" and path_bytes:
            path_bytes[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del path_bytes[at:]
        elif kind == "blank":
            path_bytes[at:at] = b"\n\n"
        elif kind == "duplicate":
            lines = bytes(path_bytes).split(b"\n")
            line = draw(st.sampled_from(lines))
            path_bytes.extend(b"\n" + line)
    return table, bytes(path_bytes)


def evaluated(data: Path) -> None:
    """`eval` of damaged input: handled, and a refusal names the input."""
    code, _, err = run("eval", BOOK, "--input", data, "--on", "2021-09-30")
    if code == 2:
        assert str(data) in err or err.startswith("rulelang: error:"), err


@corpus(300)
@given(damage=damaged_bytes(), verb=st.sampled_from(["settle", "eval"]))
def test_damaged_csv_bytes_never_crash_and_every_record_is_accounted_for(tmp_path_factory, damage, verb):
    table, content = damage
    root = tmp_path_factory.mktemp("bytes")
    data = write_csv(root / "data", EXAMPLE)
    (data / f"{table}.csv").write_bytes(content)
    if verb == "settle":
        code, err = settled_and_accounted(data, root / "out")
        if code == 2:
            assert str(data) in err, err
    else:
        evaluated(data)


# ------------------------------------------------------------------------ JSON

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 30, 10 ** 30) | st.text(max_size=10)
    | st.sampled_from(["2021-09-15", "P1", "A", "physical", "1e400", "\ud800"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


@st.composite
def damaged_documents(draw):
    """A JSON document whose shape or values are wrong in some place."""
    document = json.loads(json.dumps(EXAMPLE))
    kind = draw(st.sampled_from(["value", "record", "table", "top", "drop"]))
    table = draw(st.sampled_from(TABLES))
    if kind == "value" and document[table]:
        row = draw(st.sampled_from(document[table]))
        row[draw(st.sampled_from(sorted(row)))] = draw(JSON_VALUES)
    elif kind == "record":
        document[table].append(draw(JSON_VALUES))
    elif kind == "table":
        document[table] = draw(JSON_VALUES)
    elif kind == "top":
        return draw(JSON_VALUES)
    else:
        del document[table]
    return document


@corpus(300)
@given(document=damaged_documents(), verb=st.sampled_from(["settle", "eval"]))
def test_damaged_json_never_crashes_and_every_record_is_accounted_for(tmp_path_factory, document, verb):
    root = tmp_path_factory.mktemp("json")
    data = root / "region.json"
    data.write_text(json.dumps(document, ensure_ascii=True), encoding="utf-8")
    if verb == "settle":
        counted = None
        if isinstance(document, dict) and all(isinstance(document.get(t), list) for t in TABLES):
            counted = {t: len(document[t]) for t in TABLES}
        code, err = settled_and_accounted(data, root / "out", counted)
        if code == 2:
            assert str(data) in err, err
    else:
        evaluated(data)


# ------------------------------------------------------------------------ Parquet


@corpus(80)
@given(table=st.sampled_from(TABLES), column_type=st.sampled_from(["VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE",
                                                                     "DECIMAL(18, 3)", "INTEGER[]"]),
       cut=st.one_of(st.none(), st.floats(min_value=0.0, max_value=0.99)))
def test_parquet_of_other_types_or_cut_short_never_crashes(tmp_path_factory, table, column_type, cut):
    import duckdb

    root = tmp_path_factory.mktemp("parquet")
    data = write_csv(root / "data", EXAMPLE)
    source = data / f"{table}.csv"
    target = data / f"{table}.parquet"
    columns = next(csv.reader(open(source, encoding="utf-8")))
    column = random.Random(str((table, column_type))).choice(columns)
    casts = ", ".join(f"TRY_CAST({json.dumps(c)} AS {column_type}) AS {json.dumps(c)}" if c == column else json.dumps(c)
                      for c in columns)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE given AS SELECT * FROM read_csv('{source}', all_varchar = true)")
    con.execute(f"COPY (SELECT {casts} FROM given) TO '{target}' (FORMAT parquet)")
    con.close()
    source.unlink()
    if cut is not None:
        content = target.read_bytes()
        target.write_bytes(content[: int(len(content) * cut)])
    code, err = settled_and_accounted(data, root / "out")
    if code == 2:
        assert str(data) in err, err


# ------------------------------------------------------------------------ rulebooks

RULEBOOKS = {path: (ROOT / path).read_text(encoding="utf-8") for path in
             ("rulebooks/stockholm/hlv-2021.md", "rulebooks/skaraborg/narvard-2014.md",
              "rulebooks/jamtland/patientmiljarden-2018.md")}
TOKENS = ["rule", "exception", "to", "when", "then", "from", "until", "amend", "repeal", "definition", "per",
          "output", "parameter", "value", "status", "cite", "if", "else", "and", "or", "not", "(", ")", "{", "}",
          ",", ":", "=", "kr", "%", "\"", "`", "```", "```rulelang", "#", "\n", "  ", "sum of", "count",
          "according to", "this rulebook", "warning", "says", "0", "-1", "1e400", "9" * 30, "2021-02-30",
          "amends \"/etc/passwd\"", "\u202e", "bel\u043epp", "\x00"]


@st.composite
def mutated_rulebooks(draw) -> tuple:
    path = draw(st.sampled_from(sorted(RULEBOOKS)))
    text = RULEBOOKS[path]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "swap"]))
        if kind == "insert":
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return Path(path).name, text


@corpus(1000)
@given(book=mutated_rulebooks())
def test_a_mutated_rulebook_is_checked_never_crashes(tmp_path_factory, book):
    name, text = book
    root = tmp_path_factory.mktemp("book")
    path = root / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, out, err = run("check", path)
    if code == 1:
        assert f"{path}:" in err or "error:" in err


def test_the_corpus_ran_thousands_of_inputs():
    """Run last in this file: the generated tests above gave this many inputs to rulelang."""
    if COUNTS["inputs"] == 0:
        pytest.skip("run with the corpus above (pytest tests/test_hostile_corpus.py)")
    print(f"\nhostile corpus: {COUNTS['inputs']} inputs, each handled (exit 0, 1 or 2, no traceback)")
    assert COUNTS["inputs"] >= 2000
