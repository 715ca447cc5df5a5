"""`repeal rule L from DATE` / `repeal exception L from DATE`: an amending rulebook ends a rule
or exception it inherits. The rule keeps its own provision for the dates it was in force;
from the repeal date it is out of force, and explanations name the repealing provision.

Two small rulebooks in a RULELANG_PATH directory (as the amendment tests of
tests/test_checker.py set them up): repeal/base, and amendments of it written per test.
Money values are integer öre: 100 kr = 10000 öre.
"""

from __future__ import annotations

import pytest
from rulebook_factory import rulebook_library

import rulelang
from rulelang.language.diagnostics import RulebookError

KR = 100  # öre per krona

BASE = '''\
# Base

```rulelang
rulebook "repeal/base"
  version "1" source src "Test source base"
according to src
```

## B1 Grundbelopp

```rulelang
table items
  key id
  dated by date
  field id: text
  field date: date
  field a: boolean

output x: money per items

rule r defines x
  from 2020-01-01
  then 100 kr

exception e to r
  when a
  then 50 kr
```
'''


def amendment(rulebook_id: str, body: str, amends: str = "repeal/base", heading: str = "A1 Nytt belopp") -> str:
    return f'''\
# Amendment

```rulelang
rulebook "{rulebook_id}"
  version "2"
  amends "{amends}" source src "Test source amend"
according to src
```

## {heading}

```rulelang
{body}
```
'''


def line_of(text: str, start: str) -> int:
    """The number of the one line of `text` that starts with `start`."""
    (number,) = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(start)]
    return number


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A RULELANG_PATH directory holding repeal/base.md; returns a function that adds rulebooks."""
    return rulebook_library(tmp_path / "library", monkeypatch, "repeal/base", BASE)


def items(date: str, a: bool = False) -> dict:
    return {"items": [{"id": "I", "date": date, "a": a}]}


REPLACE = "repeal rule r from 2021-01-01\n\nrule ny defines x\n  from 2021-01-01\n  then 200 kr"


# --------------------------------------------------------------------------- evaluation


def test_a_repealed_rule_gives_way_to_the_amendments_rule_on_the_repeal_date(library):
    file = library("repeal/amend", amendment("repeal/amend", REPLACE))
    book = rulelang.load("repeal/amend")
    assert book.warnings == []

    # The last day before the repeal: the base's r, 100 kr, cited to the base's heading.
    before = book.evaluate_record(items("2020-12-31"), "x", "I")
    assert before.value == 100 * KR
    assert before.provision == "B1 Grundbelopp (Test source base)"
    assert before.source == f"{library.base}:{line_of(BASE, 'rule r defines x')}"
    # From the repeal date: the amendment's ny, 200 kr, cited to the amendment's heading.
    after = book.evaluate_record(items("2021-01-01"), "x", "I")
    assert after.value == 200 * KR
    assert after.provision == "A1 Nytt belopp (Test source amend)"
    assert after.source == f"{file}:{line_of(amendment('repeal/amend', REPLACE), 'rule ny defines x')}"


def test_the_exceptions_of_a_repealed_rule_go_with_it(library):
    library("repeal/amend", amendment("repeal/amend", REPLACE))
    book = rulelang.load("repeal/amend")
    # e overrides r with 50 kr while r is in force; from 2021-01-01 only ny (200 kr) is left.
    assert book.evaluate_record(items("2020-12-31", a=True), "x", "I").value == 50 * KR
    assert book.evaluate_record(items("2021-01-01", a=True), "x", "I").value == 200 * KR


def test_before_any_rule_is_in_force_the_repeal_shows_as_the_end_of_the_period(library):
    library("repeal/amend", amendment("repeal/amend", REPLACE))
    book = rulelang.load("repeal/amend")
    # x has no default; on 2019-12-31 neither r (from 2020-01-01) nor ny is in force.
    with pytest.raises(rulelang.EvaluationError) as caught:
        book.evaluate_record(items("2019-12-31"), "x", "I")
    assert caught.value.kind == "data"
    assert caught.value.message == ("no rule gives x on 2019-12-31: its rules are in force "
                                    "2020-01-01 – 2020-12-31, 2021-01-01 – …")


def test_the_repealed_rulebook_itself_is_unchanged(library):
    library("repeal/amend", amendment("repeal/amend", REPLACE))
    rulelang.load("repeal/amend")
    base = rulelang.load("repeal/base")
    # Without the amendment r is in force with no end: 100 kr on 2021-01-01 too.
    result = base.evaluate_record(items("2021-01-01"), "x", "I")
    assert (result.value, result.provision) == (100 * KR, "B1 Grundbelopp (Test source base)")


def test_the_explanation_names_the_repeal_from_the_repeal_date(library):
    text = amendment("repeal/amend", REPLACE)
    file = library("repeal/amend", text)
    book = rulelang.load("repeal/amend")

    tree = book.explain(items("2021-01-01"), "x", "I")
    rules = {c.label: c for c in tree.children if c.kind == "rule"}
    assert set(rules) == {"r", "ny"}
    r = rules["r"]
    assert r.value is None
    assert r.facts["in_force"] is False and r.facts["applied"] is False
    assert r.facts["reason"] == "repealed from 2021-01-01"
    assert (r.facts["valid_from"], r.facts["valid_to"]) == ("2020-01-01", "2020-12-31")
    assert r.facts["rulebook"] == "repeal/base"
    assert r.provision == "B1 Grundbelopp (Test source base)"  # its own provision, not the repeal's
    # The repealing provision: heading, rulebook and the place of the `repeal` line.
    assert r.facts["repealed_by"] == (f"A1 Nytt belopp (Test source amend) [repeal/amend, "
                                      f"{file}:{line_of(text, 'repeal rule r')}]")
    assert rules["ny"].facts["applied"] is True and rules["ny"].value == "200.00"
    assert tree.facts["decided_by"] == "ny"

    # The day before, r is in force and applies; nothing names the repeal yet.
    tree = book.explain(items("2020-12-31"), "x", "I")
    rules = {c.label: c for c in tree.children if c.kind == "rule"}
    assert rules["r"].facts["applied"] is True and rules["r"].value == "100.00"
    assert "repealed_by" not in rules["r"].facts
    assert rules["ny"].facts["reason"] == "not in force on 2020-12-31"


def test_repeal_exception_ends_only_the_exception(library):
    text = amendment("repeal/amend", "repeal exception e from 2021-01-01", heading="A2 Inget avdrag")
    library("repeal/amend", text)
    book = rulelang.load("repeal/amend")
    # e gives 50 kr until 2020-12-31; from 2021-01-01 r gives its 100 kr whatever a is.
    assert book.evaluate_record(items("2020-12-31", a=True), "x", "I").value == 50 * KR
    assert book.evaluate_record(items("2021-01-01", a=True), "x", "I").value == 100 * KR
    tree = book.explain(items("2021-01-01", a=True), "x", "I")
    (e,) = [n for n in tree.walk() if n.kind == "exception"]
    assert e.label == "e" and e.facts["in_force"] is False
    assert e.facts["reason"] == "repealed from 2021-01-01"
    assert e.facts["repealed_by"].startswith("A2 Inget avdrag (Test source amend) [repeal/amend, ")
    assert tree.facts["decided_by"] == "r"


def test_a_repeal_before_the_rules_own_end_moves_the_end_earlier(library):
    base_until = BASE.replace("  from 2020-01-01\n  then 100 kr", "  from 2020-01-01 until 2021-06-30\n  then 100 kr")
    assert base_until != BASE
    (library.root / "repeal" / "base.md").write_text(base_until, encoding="utf-8")
    library("repeal/amend", amendment("repeal/amend", "repeal rule r from 2021-01-01"))
    book = rulelang.load("repeal/amend")
    # r would run until 2021-06-30; the repeal ends it on 2020-12-31. x has no default.
    assert book.evaluate_record(items("2020-12-31"), "x", "I").value == 100 * KR
    with pytest.raises(rulelang.EvaluationError, match="in force 2020-01-01 – 2020-12-31$"):
        book.evaluate_record(items("2021-01-01"), "x", "I")


# ------------------------------------------------------------------------------ checker


def only_error(rulebook_id: str):
    with pytest.raises(RulebookError) as caught:
        rulelang.load(rulebook_id)
    errors = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert len(errors) == 1, "\n".join(d.format() for d in errors)
    return errors[0]


def test_repealing_an_unknown_label_suggests_the_closest(library):
    text = amendment("repeal/amend", "repeal rule rr from 2021-01-01")
    file = library("repeal/amend", text)
    error = only_error("repeal/amend")
    assert error.message == "repeal rule rr: there is no such rule; did you mean 'r'?"
    assert str(error.span) == f"{file}:{line_of(text, 'repeal rule rr')}:1"


def test_repeal_rule_of_an_exception_says_to_write_repeal_exception(library):
    text = amendment("repeal/amend", "repeal rule e from 2021-01-01")
    file = library("repeal/amend", text)
    error = only_error("repeal/amend")
    assert error.message == "e is an exception; write `repeal exception`"
    assert str(error.span) == f"{file}:{line_of(text, 'repeal rule e')}:1"


def test_repeal_exception_of_a_rule_says_to_write_repeal_rule(library):
    text = amendment("repeal/amend", "repeal exception r from 2021-01-01")
    file = library("repeal/amend", text)
    error = only_error("repeal/amend")
    assert error.message == "r is a rule; write `repeal rule`"
    assert str(error.span) == f"{file}:{line_of(text, 'repeal exception r')}:1"


def test_repealing_a_rule_of_the_same_rulebook_says_to_give_it_an_until(library):
    # `own` has a condition so that it does not duplicate r's (no condition) from 2021.
    text = amendment("repeal/amend", "rule own defines x\n  from 2021-01-01\n  when a\n  then 1 kr\n\n"
                                     "repeal rule own from 2022-01-01")
    file = library("repeal/amend", text)
    error = only_error("repeal/amend")
    assert error.message == "rule own is this rulebook's own; give it an `until` instead"
    assert str(error.span) == f"{file}:{line_of(text, 'repeal rule own')}:1"


def test_repealing_twice_names_the_first_repeal(library):
    text = amendment("repeal/amend", "repeal rule r from 2021-01-01\nrepeal rule r from 2022-01-01")
    file = library("repeal/amend", text)
    error = only_error("repeal/amend")
    first = line_of(text, "repeal rule r from 2021-01-01")
    assert error.message == f"rule r is already repealed at {file}:{first}:1"
    assert str(error.span) == f"{file}:{line_of(text, 'repeal rule r from 2022-01-01')}:1"


def test_repealing_again_in_a_later_amendment_names_the_first_repeal(library):
    first_text = amendment("repeal/amend", REPLACE)
    first = library("repeal/amend", first_text)
    text = amendment("repeal/again", "repeal rule r from 2022-01-01", amends="repeal/amend")
    file = library("repeal/again", text)
    error = only_error("repeal/again")
    assert error.message == f"rule r is already repealed at {first}:{line_of(first_text, 'repeal rule r')}:1"
    assert str(error.span) == f"{file}:{line_of(text, 'repeal rule r')}:1"


def test_a_repeal_may_stand_before_the_rule_it_names_in_the_same_rulebook(library):
    # Order within a rulebook does not matter: the own-rule check still applies.
    text = amendment("repeal/order", "repeal rule own from 2021-01-01\n\nrule own defines x\n"
                                     "  from 2021-01-01\n  then 1 kr")
    library("repeal/order", text)
    with pytest.raises(RulebookError) as raised:
        rulelang.load("repeal/order")
    first, second = raised.value.diagnostics
    assert first.message == "rule own is this rulebook's own; give it an `until` instead"
    # With r not repealed, both unconditioned rules are in force from 2021: also refused.
    assert second.message == "rules r and own have identical conditions; one of them can never decide alone"


BASE_ENDED = BASE.replace("  from 2020-01-01\n  then 100 kr", "  from 2018-01-01 until 2019-06-30\n  then 100 kr")


def test_a_repeal_after_the_rule_has_ended_changes_nothing_and_says_so(library):
    (library.root / "repeal" / "base.md").write_text(BASE_ENDED, encoding="utf-8")
    text = amendment("repeal/late", "repeal rule r from 2021-01-01")
    file = library("repeal/late", text)
    book = rulelang.load("repeal/late")
    (warning,) = book.warnings
    assert warning.message == "rule r already ends on 2019-06-30; repealing it from 2021-01-01 changes nothing"
    assert str(warning.span) == f"{file}:{line_of(text, 'repeal rule r')}:1"
    # The rule keeps its own end, and is not reported as repealed.
    assert book.evaluate_record(items("2019-06-30"), "x", "I").value == 100 * KR
    assert book.program.rules["r"].repealed_by is None


def test_text_explanations_name_the_repealing_provision(library):
    library("repeal/amend", amendment("repeal/amend", REPLACE))
    from rulelang.interfaces.render import explanation_text

    book = rulelang.load("repeal/amend")
    text = explanation_text(book.explain(items("2021-01-01"), "x", "I"))
    assert "✘ rule r: repealed from 2021-01-01 by A1 Nytt belopp (Test source amend) [repeal/amend," in text
