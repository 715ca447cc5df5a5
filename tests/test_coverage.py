"""`rulelang test --coverage`: the rules and exceptions no example applies, the exceptions no
example considers, the parameter periods no example reads; `--min-coverage` fails a rulebook
below the share asked for."""

from __future__ import annotations

from rulebook_factory import write_rulebook

import rulelang
from rulelang.interfaces.cli import main
from rulelang.interfaces.coverage import coverage

BODY = """\
enum visit_mode: physical, video
table visits
  key visit_id
  dated by date
  field visit_id: text
  field date: date
  field mode: visit_mode
  field age: integer
output tillägg: money per visits default 0 kr
parameter belopp: money
  value 300 kr from 2021-02-01 status illustrative cite "x"
  value 350 kr from 2022-01-01 status illustrative cite "x"
rule fysiskt defines tillägg from 2021-02-01 when mode = physical then belopp
rule video defines tillägg from 2021-02-01 when mode = video then 100 kr
exception barn to fysiskt when mode = physical and age < 6 then 150 kr
exception senare to video from 2023-01-01 when mode = video and age > 80 then 0 kr

example "A physical visit in 2021 gives 300 kr, a child's 150 kr"
  given visits: {visit_id: "V1", date: 2021-03-01, mode: physical, age: 40},
                {visit_id: "V2", date: 2021-03-01, mode: physical, age: 3}
  expect tillägg of "V1" = 300 kr
  expect tillägg of "V2" = 150 kr
"""


def test_coverage_names_what_no_example_reaches(tmp_path):
    path = write_rulebook(tmp_path, BODY)
    report = coverage(rulelang.load(str(path)))
    # fysiskt and barn apply; video never (no video visit); senare is never even considered.
    assert (report.rules, report.applied) == (4, 2)
    assert report.percent == 50.0
    assert [(u.what, u.name) for u in report.never_applies] == [("rule", "video"), ("exception", "senare")]
    assert [(u.what, u.name) for u in report.never_considered] == [("exception", "senare")]
    assert [u.name for u in report.never_read] == ["belopp 2022-01-01 – further notice"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert report.never_applies[0].where.endswith(f":{lines.index(next(x for x in lines if x.startswith('rule video'))) + 1}")


def test_test_coverage_prints_the_report_and_min_coverage_fails_below_it(tmp_path, capsys):
    path = str(write_rulebook(tmp_path, BODY))
    assert main(["test", "--coverage", path]) == 0
    out = capsys.readouterr().out
    assert "1 passed, 0 failed" in out
    assert "coverage test/book: 2/4 rules and exceptions apply (50 %), 1/2 exceptions considered, " \
           "1/2 parameter periods read" in out
    assert ": rule video: applies in no example" in out
    assert ": parameter period belopp 2022-01-01 – further notice: read by no example" in out
    assert main(["test", "--min-coverage", "50", path]) == 0
    capsys.readouterr()
    assert main(["test", "--min-coverage", "75", path]) == 1
    err = capsys.readouterr().err
    assert "test/book: error: 50.0 % of its rules and exceptions apply in an example; " \
           "--min-coverage asks for 75 %" in err


def test_min_coverage_takes_a_percentage(tmp_path, capsys):
    assert main(["test", "--min-coverage", "120", str(write_rulebook(tmp_path, BODY))]) == 2
    assert "expected a percentage from 0 to 100" in capsys.readouterr().err
