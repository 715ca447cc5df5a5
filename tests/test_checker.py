"""The checker: every check reports its message at the line and column of what it is about.

Each test writes a small literate rulebook to a temporary directory and loads it through the
public API. The block under test starts on line 12 of the file; the shared declarations fill
lines 12–21, so a test's own first line is line 22.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rulebook_factory import rulebook_library

import rulelang
from rulelang.language import parser
from rulelang.language.diagnostics import Diagnostic, RulebookError
from rulelang.language.loader import display_path

HEADER = '''\
# Test rulebook

```rulelang
rulebook "test/x"
  version "1" source src "Test source seed"
according to src
```

## 1 Provision

```rulelang
'''

# Lines 12–21 of every test rulebook.
DECLARATIONS = '''\
enum visit_mode: physical, video, phone
table visits
  key visit_id
  dated by date
  field visit_id: text
  field date: date
  field mode: visit_mode
parameter belopp: money
  value 300 kr from 2021-02-01 status verified cite "seed.txt"
output tillägg: money per visits default 0 kr
'''
OWN_FIRST_LINE = 22

# A rule every rulebook needs so that `belopp` is used; a test's own lines follow it.
RULE = "rule fysiskt defines tillägg from 2021-02-01 when mode = physical then belopp\n"


class Draft:
    """A test rulebook on disk."""

    def __init__(self, directory: Path, body: str, declarations: str = DECLARATIONS, name: str = "book"):
        self.path = directory / f"{name}.md"
        self.text = HEADER + declarations + body + "\n```\n"
        self.path.write_text(self.text, encoding="utf-8")
        self.file = display_path(self.path)

    def load(self) -> rulelang.Rulebook:
        return rulelang.load(str(self.path))

    def error(self) -> RulebookError:
        with pytest.raises(RulebookError) as caught:
            self.load()
        return caught.value

    def errors(self) -> list:
        return [d for d in self.error().diagnostics if d.severity == "error"]

    def only_error(self) -> Diagnostic:
        errors = self.errors()
        assert len(errors) == 1, "\n".join(d.format() for d in errors)
        return errors[0]

    def at(self, line: int, column: int) -> str:
        return f"{self.file}:{line}:{column}"

    def text_at(self, diagnostic: Diagnostic) -> str:
        """The source the diagnostic's span covers (on its first line)."""
        span = diagnostic.span
        line = self.text.split("\n")[span.line - 1]
        end = span.end_column - 1 if span.end_line == span.line else len(line)
        return line[span.column - 1:end]


def visit(mode: str = "physical", date: str = "2021-03-01") -> dict:
    return {"visits": [{"visit_id": "V1", "date": date, "mode": mode}]}


# --------------------------------------------------------------------------- a well-formed rulebook


def test_the_skeleton_rulebook_checks_and_pays_300_kr_for_a_physical_visit(tmp_path):
    draft = Draft(tmp_path, RULE + "exception video to fysiskt when mode = video then 0 kr")
    book = draft.load()
    assert book.warnings == []
    assert book.evaluate_record(visit("physical"), "tillägg", "V1").value == 300 * 100
    assert book.evaluate_record(visit("video"), "tillägg", "V1").value == 0
    assert book.evaluate_record(visit("physical", "2021-01-31"), "tillägg", "V1").value == 0  # default


def test_a_checker_error_formats_as_file_line_column_with_the_source_line_and_a_caret(tmp_path):
    draft = Draft(tmp_path, "definition d per visits = belop")
    assert draft.error().format().splitlines()[-3:] == [
        f"{draft.file}:22:27: error: unknown name belop in visits; did you mean 'belopp'?",
        "    definition d per visits = belop",
        "                              ^^^^^",
    ]


# --------------------------------------------------------------------------- names


def test_unknown_name_suggests_the_closest_name(tmp_path):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg when mode = physical then belop")
    error = draft.only_error()
    assert error.message == "unknown name belop in visits; did you mean 'belopp'?"
    assert str(error.span) == draft.at(22, 56)
    assert draft.text_at(error) == "belop"


def test_unknown_name_without_a_close_match_makes_no_suggestion(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = zzzzzz")
    error = draft.only_error()
    assert error.message == "unknown name zzzzzz in visits"
    assert str(error.span) == draft.at(23, 27)


CLINICS = DECLARATIONS + '''\
table clinics
  key clinic_id
  field clinic_id: text
  field name: text
'''


def test_unknown_field_via_dot_suggests_the_closest_field(tmp_path):
    # Lines 12–25 are the declarations with a clinics table; `visits` gains a clinic reference.
    declarations = CLINICS.replace("  field mode: visit_mode\n", "  field mode: visit_mode\n  field clinic: clinics\n")
    draft = Draft(tmp_path, RULE + "definition d per visits = clinic.nme", declarations)
    error = draft.only_error()
    assert error.message == "clinics has no field nme; did you mean 'name'?"
    assert str(error.span) == draft.at(28, 27)
    assert draft.text_at(error) == "clinic.nme"


def test_field_access_on_a_value_that_is_not_a_record(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = mode.colour")
    error = draft.only_error()
    assert error.message == "visit_mode has no fields; .colour needs a record or an id"
    assert str(error.span) == draft.at(23, 27)


def test_unknown_type_suggests_the_closest_type(tmp_path):
    draft = Draft(tmp_path, RULE + 'parameter rate: decimel\n  value 0.5 status verified cite "s"\n'
                                   "definition d per visits = rate")
    error = draft.only_error()
    assert error.message == "unknown type decimel; did you mean 'decimal'?"
    assert str(error.span) == draft.at(23, 1)


def test_unknown_field_type_points_at_the_field(tmp_path):
    declarations = DECLARATIONS.replace("  field mode: visit_mode\n", "  field mode: visit_mod\n")
    draft = Draft(tmp_path, RULE, declarations)
    error = draft.only_error()
    assert error.message == "unknown type visit_mod; did you mean 'visit_mode'?"
    assert str(error.span) == draft.at(18, 3)
    assert draft.text_at(error) == "field mode: visit_mod"


def test_unknown_table_of_an_output(tmp_path):
    draft = Draft(tmp_path, RULE + "output extra: money per visit")
    error = draft.only_error()
    assert error.message == "unknown table visit; did you mean 'visits'?"
    assert str(error.span) == draft.at(23, 1)


def test_unknown_table_of_a_definition(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visit = 1")
    error = draft.only_error()
    assert error.message == "unknown table visit; did you mean 'visits'?"
    assert str(error.span) == draft.at(23, 1)


def test_unknown_table_of_an_aggregate(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = count v in visit")
    error = draft.only_error()
    assert error.message == "unknown table visit; did you mean 'visits'?"
    assert str(error.span) == draft.at(23, 27)
    assert draft.text_at(error) == "count v in visit"


def test_unknown_function_suggests_the_closest_built_in(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = mni(1, 2)")
    error = draft.only_error()
    assert error.message == "unknown function mni; did you mean 'min'?"
    assert str(error.span) == draft.at(23, 27)
    assert draft.text_at(error) == "mni(1, 2)"


def test_unknown_function_without_a_close_match(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = quux(1)")
    error = draft.only_error()
    assert error.message == "unknown function quux"
    assert str(error.span) == draft.at(23, 27)


def test_a_name_declared_twice_points_at_the_second_and_names_the_first(tmp_path):
    draft = Draft(tmp_path, RULE + 'parameter belopp: money\n  value 1 kr status verified cite "s"')
    error = draft.only_error()
    assert error.message == f"parameter belopp is already declared at {draft.at(19, 1)}"
    assert str(error.span) == draft.at(23, 1)


def test_a_built_in_name_cannot_be_declared(tmp_path):
    draft = Draft(tmp_path, RULE + "definition age = 1")
    error = draft.only_error()
    assert error.message == "age is a built-in name and cannot be declared"
    assert str(error.span) == draft.at(23, 1)


def test_an_amount_is_paid_to_an_id_a_records_own_whole_number_key_included(tmp_path):
    """`paid to` names an id: text, a reference, or a record's own key, which may be a
    whole number (clinics keyed by integers paid per clinic); any other integer is refused
    at its own line and column."""
    clinics = ("table clinics\n  key clinic_id\n  field clinic_id: integer\n  field listade: integer\n"
               "output grund: money per clinics default 0 kr paid to clinic_id\n"
               "rule g defines grund then 100 kr\n")
    book = Draft(tmp_path, RULE + clinics, name="own").load()
    assert book.evaluate_record({"clinics": [{"clinic_id": 9, "listade": 5}]}, "grund", "9", on="2021-09-30").payee == 9
    draft = Draft(tmp_path, RULE + clinics.replace("paid to clinic_id", "paid to listade"), name="other")
    error = draft.only_error()
    assert error.message == "`paid to` names the record that receives the amount (an id); this is integer"
    assert (error.span.line, draft.text_at(error)) == (OWN_FIRST_LINE + 5, "listade")


# --------------------------------------------------------------------------- units


def test_money_plus_integer_is_an_error_whose_notes_point_at_both_operands(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = belopp + 1")
    error = draft.only_error()
    assert error.message == "cannot add money and integer: money only adds to money"
    assert str(error.span) == draft.at(23, 27)
    assert draft.text_at(error) == "belopp + 1"
    assert error.notes == (
        f"left operand (money) at {draft.at(23, 27)}",
        f"right operand (integer) at {draft.at(23, 36)}",
    )


def test_money_minus_a_rate_is_an_error(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = belopp - 80 %")
    error = draft.only_error()
    assert error.message == "cannot subtract money and decimal: money only adds to money"
    assert str(error.span) == draft.at(23, 27)


def test_money_times_money_is_an_error(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = belopp * belopp")
    error = draft.only_error()
    assert error.message == "cannot multiply money by money"
    assert str(error.span) == draft.at(23, 27)
    assert error.notes == (
        f"left operand (money) at {draft.at(23, 27)}",
        f"right operand (money) at {draft.at(23, 36)}",
    )


def test_money_times_a_rate_without_rounding_must_say_how_it_rounds(tmp_path):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg when mode = physical then belopp * 80 %")
    error = draft.only_error()
    assert error.message == ("the value of fysiskt is money times a rate and must say how it rounds: "
                             "add `rounded half up to öre` (or another named mode)")
    assert str(error.span) == draft.at(22, 56)
    assert draft.text_at(error) == "belopp * 80 %"


def test_money_times_a_rate_in_a_definition_must_round_too(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = belopp * 80 %")
    error = draft.only_error()
    assert error.message.startswith("definition d is money times a rate and must say how it rounds")
    assert str(error.span) == draft.at(23, 27)


@pytest.mark.parametrize("mode, ore", [("half up", 3704), ("down", 3703)])
def test_money_times_a_rate_rounded_to_ore_is_accepted_and_rounds_by_its_mode(tmp_path, mode, ore):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg when mode = physical "
                            f"then belopp * 12.345 % rounded {mode} to öre")
    book = draft.load()
    # 300 kr × 12.345 % = 30000 öre × 0.12345 = 3703.5 öre.
    assert book.evaluate_record(visit(), "tillägg", "V1").value == ore


def test_money_times_an_integer_is_money(tmp_path):
    book = Draft(tmp_path, "rule fysiskt defines tillägg when mode = physical then belopp * 2").load()
    assert book.evaluate_record(visit(), "tillägg", "V1").value == 2 * 300 * 100


def test_comparing_money_with_an_integer_is_an_error(tmp_path):
    draft = Draft(tmp_path, RULE + "definition d per visits = belopp > 2")
    error = draft.only_error()
    assert error.message == "cannot compare money with integer"
    assert str(error.span) == draft.at(23, 27)
    assert error.notes == (f"left operand at {draft.at(23, 27)}", f"right operand at {draft.at(23, 36)}")


def test_comparing_an_enum_with_a_number_is_an_error(tmp_path):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg when mode = 3 then belopp")
    error = draft.only_error()
    assert error.message == "cannot compare visit_mode with integer"
    assert str(error.span) == draft.at(22, 35)


def test_comparing_a_date_with_text_is_an_error(tmp_path):
    draft = Draft(tmp_path, RULE + 'definition d per visits = date < "2021-01-01"')
    error = draft.only_error()
    assert error.message == "cannot compare date with text"
    assert str(error.span) == draft.at(23, 27)


def test_comparing_a_record_with_an_id_is_an_error_that_names_the_key(tmp_path):
    # `p = person_id` was accepted and always false: a record is not its id.
    declarations = DECLARATIONS.replace("  field mode: visit_mode\n", "  field mode: visit_mode\n  field person_id: persons\n")
    declarations += "table persons\n  key person_id\n  field person_id: text\n"
    draft = Draft(tmp_path, RULE + "definition d per visits = count p in persons where p = person_id", declarations)
    error = draft.only_error()
    assert error.message == ("cannot compare persons record with persons id (a record is not its id: compare its "
                             "key, `p.person_id`)")
    assert draft.text_at(error) == "p = person_id"


def test_a_rule_condition_that_is_not_boolean(tmp_path):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg when date then belopp")
    error = draft.only_error()
    assert error.message == "the condition of fysiskt must be a boolean; this is date"
    assert str(error.span) == draft.at(22, 35)
    assert draft.text_at(error) == "date"


def test_an_if_condition_that_is_not_boolean(tmp_path):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg when mode = physical then if belopp then belopp else 0 kr")
    error = draft.only_error()
    assert error.message == "the condition of `if` must be a boolean; this is money"
    assert str(error.span) == draft.at(22, 59)


def test_a_rule_value_of_the_wrong_type(tmp_path):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg when mode = physical then 300")
    error = draft.only_error()
    # `belopp` is unused here, which is only a warning.
    assert error.message == "the value of fysiskt must be money; this is integer"
    assert str(error.span) == draft.at(22, 56)


# --------------------------------------------------------------------------- rules and exceptions


def test_two_exceptions_to_one_rule_with_identical_conditions(tmp_path):
    draft = Draft(tmp_path, RULE + "exception video to fysiskt when mode = video then 0 kr\n"
                                   "exception video2 to fysiskt when mode = video then 1 kr")
    error = draft.only_error()
    assert error.message == ("exceptions video and video2 have identical conditions; "
                             "one of them can never decide alone")
    assert str(error.span) == draft.at(24, 1)
    assert error.notes == (f"video is at {draft.at(23, 1)} (1 Provision (Test source seed))",)


def test_exceptions_with_different_conditions_are_fine(tmp_path):
    draft = Draft(tmp_path, RULE + "exception video to fysiskt when mode = video then 0 kr\n"
                                   "exception phone to fysiskt when mode = phone then 1 kr")
    assert draft.load().warnings == []


def test_two_root_rules_with_identical_conditions_and_overlapping_periods(tmp_path):
    draft = Draft(tmp_path, RULE + "rule andra defines tillägg from 2021-06-01 when mode = physical then 1 kr")
    error = draft.only_error()
    assert error.message == "rules fysiskt and andra have identical conditions; one of them can never decide alone"
    assert str(error.span) == draft.at(23, 1)
    assert error.notes == (f"fysiskt is at {draft.at(22, 1)} (1 Provision (Test source seed))",)


def test_root_rules_with_identical_conditions_in_separate_periods_are_fine(tmp_path):
    book = Draft(tmp_path, RULE + "rule förut defines tillägg until 2021-01-31 when mode = physical then 1 kr").load()
    assert book.evaluate_record(visit(date="2021-01-31"), "tillägg", "V1").value == 100
    assert book.evaluate_record(visit(date="2021-02-01"), "tillägg", "V1").value == 300 * 100


def test_exception_to_an_unknown_rule_suggests_the_closest_label(tmp_path):
    draft = Draft(tmp_path, RULE + "exception video to fysikt when mode = video then 0 kr")
    error = draft.only_error()
    assert error.message == "exception video is an exception to unknown rule fysikt; did you mean 'fysiskt'?"
    assert str(error.span) == draft.at(23, 1)


def test_exceptions_overriding_each_other_in_a_cycle(tmp_path):
    draft = Draft(tmp_path, RULE + "exception e1 to e2 when mode = video then 0 kr\n"
                                   "exception e2 to e1 when mode = phone then 0 kr")
    errors = draft.errors()
    assert errors[0].message == "exceptions override each other in a cycle: e1 → e2 → e1"
    assert str(errors[0].span) == draft.at(23, 1)
    assert all(e.message.startswith("exceptions override each other in a cycle: ") for e in errors)


def test_an_exception_cycle_through_a_second_parent_is_found(tmp_path):
    # e1 overrides the root rule *and* e2, and e2 overrides e1: following only the first
    # parent of each exception misses this cycle, and evaluating it never ends.
    draft = Draft(tmp_path, RULE + "exception e1 to fysiskt, e2 when mode = video then 0 kr\n"
                                   "exception e2 to e1 when mode = phone then 1 kr")
    errors = draft.errors()
    # One cycle, reported once, at its first member.
    assert [(e.message, str(e.span)) for e in errors] == [
        ("exceptions override each other in a cycle: e1 → e2 → e1", draft.at(23, 1)),
    ]


def test_exceptions_may_not_nest_deeper_than_the_evaluator_descends(tmp_path):
    from rulelang.language.checker import MAX_EXCEPTION_DEPTH

    chain = "\n".join(f"exception e{i} to {'fysiskt' if i == 0 else f'e{i - 1}'} when mode = video then {i} kr"
                      for i in range(MAX_EXCEPTION_DEPTH + 2))
    draft = Draft(tmp_path, RULE + chain)
    errors = draft.errors()
    # e0 is at level 1 below the rule; e31 at level 32 is allowed, e32 at level 33 is not.
    assert [(e.message, str(e.span)) for e in errors] == [
        (f"exceptions nest deeper than {MAX_EXCEPTION_DEPTH} levels; restructure them as separate rules",
         draft.at(23 + MAX_EXCEPTION_DEPTH, 1)),
    ]


def test_an_exception_to_two_rules_without_a_cycle_is_fine(tmp_path):
    book = Draft(tmp_path, RULE + "exception e1 to fysiskt when mode = video then 0 kr\n"
                                  "exception e2 to e1, fysiskt when mode = phone then 1 kr").load()
    assert book.evaluate_record(visit("phone"), "tillägg", "V1").value == 100


def test_an_exception_to_itself_is_a_cycle(tmp_path):
    draft = Draft(tmp_path, RULE + "exception e1 to e1 when mode = video then 0 kr")
    error = draft.only_error()
    assert error.message == "exceptions override each other in a cycle: e1 → e1"
    assert str(error.span) == draft.at(23, 1)


def test_a_rule_label_declared_twice(tmp_path):
    draft = Draft(tmp_path, RULE + "rule fysiskt defines tillägg when mode = video then 1 kr")
    error = draft.only_error()
    assert error.message == f"rule fysiskt is already declared at {draft.at(22, 1)}"
    assert str(error.span) == draft.at(23, 1)


def test_a_rule_of_an_unknown_output(tmp_path):
    draft = Draft(tmp_path, RULE + "rule r defines tilläg when mode = video then 1 kr")
    error = draft.only_error()
    assert error.message == "rule r defines unknown output tilläg; did you mean 'tillägg'?"
    assert str(error.span) == draft.at(23, 1)


def test_a_rule_ending_before_it_starts(tmp_path):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg from 2021-06-01 until 2021-01-01 then belopp")
    error = draft.only_error()
    assert error.message == "rule fysiskt ends (2021-01-01) before it starts (2021-06-01)"
    assert str(error.span) == draft.at(22, 1)


# --------------------------------------------------------------------------- parameters


def test_overlapping_validity_periods_of_one_parameter(tmp_path):
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") + (
        "parameter p: money\n"
        '  value 100 kr from 2021-01-01 until 2021-06-30 status verified cite "s"\n'
        '  value 200 kr from 2021-06-01 status verified cite "s"'))
    error = draft.only_error()
    assert error.message == ("values of parameter p overlap: 2021-01-01 – 2021-06-30 "
                             "and 2021-06-01 – further notice")
    assert str(error.span) == draft.at(25, 3)
    assert error.notes == (f"the other value is at {draft.at(24, 3)}",)


def test_adjacent_validity_periods_do_not_overlap(tmp_path):
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") + (
        "parameter p: money\n"
        '  value 100 kr from 2021-01-01 until 2021-05-31 status verified cite "s"\n'
        '  value 200 kr from 2021-06-01 status verified cite "s"'))
    book = draft.load()
    assert book.evaluate_record(visit(date="2021-05-31"), "tillägg", "V1").value == 300 * 100 + 100 * 100
    assert book.evaluate_record(visit(date="2021-06-01"), "tillägg", "V1").value == 300 * 100 + 200 * 100


def test_a_parameter_value_without_status(tmp_path):
    draft = Draft(tmp_path, RULE + 'parameter p: money\n  value 100 kr cite "s"\ndefinition d per visits = p')
    error = draft.only_error()
    assert error.message == "a value of p needs a status: one of seed, verified, derived, interpretation, illustrative"
    assert str(error.span) == draft.at(24, 3)


def test_a_parameter_value_with_an_unknown_status(tmp_path):
    draft = Draft(tmp_path, RULE + 'parameter p: money\n  value 100 kr status sead cite "s"\ndefinition d per visits = p')
    error = draft.only_error()
    assert error.message == "unknown status sead; did you mean 'seed'?"
    assert str(error.span) == draft.at(24, 3)


def test_a_parameter_value_ending_before_it_starts(tmp_path):
    draft = Draft(tmp_path, RULE + (
        "parameter p: money\n"
        '  value 100 kr from 2021-06-01 until 2021-01-01 status verified cite "s"\n'
        "definition d per visits = p"))
    error = draft.only_error()
    assert error.message == "a value of p ends (2021-01-01) before it starts (2021-06-01)"
    assert str(error.span) == draft.at(24, 3)


def test_a_parameter_value_of_the_wrong_type(tmp_path):
    draft = Draft(tmp_path, RULE + 'parameter p: money\n  value 100 status verified cite "s"\ndefinition d per visits = p')
    error = draft.only_error()
    assert error.message == "the value of p must be money; this is integer"
    assert str(error.span) == draft.at(24, 9)


def test_an_interpretation_without_a_citation_is_a_warning(tmp_path):
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") +
                  "parameter p: money\n  value 100 kr status interpretation")
    book = draft.load()
    assert [(w.severity, w.message, str(w.span)) for w in book.warnings] == [
        ("warning", 'a value of p cites no source (add `cite "…"`)', draft.at(24, 3))]


def test_a_verified_value_without_a_citation_is_an_error(tmp_path):
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") +
                  "parameter p: money\n  value 100 kr status verified")
    error = draft.only_error()
    assert error.message == 'a verified value of p needs a citation: add `cite "…"` naming where the source gives it'
    assert str(error.span) == draft.at(24, 3)


def test_a_seed_value_without_a_citation_is_an_error(tmp_path):
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") +
                  "parameter p: money\n  value 100 kr status seed")
    error = draft.only_error()
    assert error.message.startswith("a seed value of p must cite a document the rulebook holds")
    assert str(error.span) == draft.at(24, 3)


@pytest.mark.parametrize("cite", ['""', '"   "'])
def test_an_empty_citation_is_an_error(tmp_path, cite):
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") +
                  f"parameter p: money\n  value 100 kr status illustrative cite {cite}")
    error = draft.only_error()
    assert error.message.startswith("an empty `cite` cites nothing")
    assert str(error.span) == draft.at(24, 3)


def test_a_gap_between_two_periods_of_a_parameter_is_a_warning_where_the_later_begins(tmp_path):
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") + (
        "parameter p: money\n"
        '  value 100 kr from 2021-01-01 until 2021-03-31 status verified cite "s"\n'
        '  value 200 kr from 2021-05-01 status verified cite "s"'))
    book = draft.load()
    (warning,) = book.warnings
    assert warning.message == ("parameter p has no value from 2021-04-01 to 2021-04-30: a record dated then "
                               "cannot be settled")
    assert str(warning.span) == draft.at(25, 3)
    assert warning.notes[0].startswith(f"the value before the gap is at {draft.at(24, 3)}; end it on 2021-04-30")


def test_successive_values_without_until_form_a_history(tmp_path):
    # Written out of order: each value ends the day before the next one begins.
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") + (
        "parameter p: money\n"
        '  value 200 kr from 2021-06-01 status verified cite "s"\n'
        '  value 100 kr from 2021-01-01 status verified cite "s"\n'
        '  value 150 kr from 2021-04-01 status verified cite "s"'))
    book = draft.load()
    assert book.warnings == []
    for date, p in [("2021-03-31", 100), ("2021-04-01", 150), ("2021-05-31", 150), ("2021-06-01", 200)]:
        assert book.evaluate_record(visit(date=date), "tillägg", "V1").value == 300 * 100 + p * 100, date
    explanation = book.explain(visit(date="2021-05-31"), "tillägg", "V1").to_dict()
    periods = [(n["valid_from"], n["valid_to"]) for n in _nodes(explanation) if n["label"].startswith("p")
               and n.get("kind") == "parameter"]
    assert periods == [("2021-04-01", "2021-05-31")]


def test_an_explicit_until_that_reaches_into_the_next_value_still_overlaps(tmp_path):
    draft = Draft(tmp_path, RULE.replace("then belopp", "then belopp + p") + (
        "parameter p: money\n"
        '  value 100 kr from 2021-01-01 until 2021-12-31 status verified cite "s"\n'
        '  value 200 kr from 2021-06-01 status verified cite "s"'))
    assert draft.only_error().message.startswith("values of parameter p overlap")


def _nodes(tree: dict):
    yield tree
    for child in tree.get("children", ()):
        yield from _nodes(child)


KEYED = '''\
parameter ålderstillägg: money by integer
  value from 2021-02-01 status verified cite "s"
    row 0 to 6: 150 kr
    row 7 to 84: 200 kr
    row 85 and over: 400 kr
definition ålder per visits = 90
rule fysiskt defines tillägg when mode = physical then ålderstillägg[ålder]
'''


def test_keyed_parameter_with_disjoint_rows_looks_up_the_row_of_its_key(tmp_path):
    book = Draft(tmp_path, "definition oanvänd = belopp\n" + KEYED).load()
    assert book.evaluate_record(visit(), "tillägg", "V1").value == 400 * 100


@pytest.mark.parametrize(
    "rows, line",
    [
        pytest.param("row 0 to 6: 150 kr\n    row 6 to 84: 200 kr\n    row 85 and over: 400 kr", 26,
                     id="closed-ranges-share-6"),
        pytest.param("row 0 to 6: 150 kr\n    row 7 to 84: 200 kr\n    row 80 and over: 400 kr", 27,
                     id="open-range-inside-closed"),
    ],
)
def test_keyed_parameter_with_overlapping_rows(tmp_path, rows, line):
    body = "definition oanvänd = belopp\n" + KEYED.replace(
        "row 0 to 6: 150 kr\n    row 7 to 84: 200 kr\n    row 85 and over: 400 kr", rows)
    draft = Draft(tmp_path, body)
    error = draft.only_error()
    assert error.message == "rows of parameter ålderstillägg overlap"
    assert str(error.span) == draft.at(line, 5)
    assert error.notes == (f"the other row is at {draft.at(line - 1, 5)}",)


def test_enum_keyed_parameter_with_a_repeated_row_and_a_row_that_is_no_value(tmp_path):
    draft = Draft(tmp_path, (
        "parameter x: money by visit_mode\n"
        '  value status verified cite "s"\n'
        "    row physical: 1 kr\n"
        "    row physical: 2 kr\n"
        "    row vidio: 3 kr\n"
        "rule fysiskt defines tillägg when mode = physical then x[mode] + belopp"))
    errors = draft.errors()
    assert [(e.message, str(e.span)) for e in errors] == [
        ("rows of parameter x overlap", draft.at(25, 5)),
        ("vidio is not a value of visit_mode", draft.at(26, 9)),  # the key itself
    ]
    assert errors[0].notes == (f"the other row is at {draft.at(24, 5)}",)


def test_a_parameter_cannot_be_keyed_by_a_date(tmp_path):
    draft = Draft(tmp_path, (
        "parameter x: money by date\n"
        '  value status verified cite "s"\n'
        "    row 1 to 2: 1 kr\n"
        "rule fysiskt defines tillägg when mode = physical then x[date] + belopp"))
    error = draft.errors()[0]
    assert error.message == "a parameter can be keyed by integer ranges or enums, not by date"
    assert str(error.span) == draft.at(22, 1)


def test_keyed_parameter_with_an_empty_range(tmp_path):
    body = "definition oanvänd = belopp\n" + KEYED.replace("row 7 to 84", "row 84 to 7")
    draft = Draft(tmp_path, body)
    error = draft.only_error()
    assert error.message == "the range 84 to 7 is empty"
    assert str(error.span) == draft.at(26, 9)  # the range itself, after `row `


def test_keyed_parameter_used_without_a_key(tmp_path):
    body = "definition oanvänd = belopp\n" + KEYED + "definition d per visits = ålderstillägg"
    draft = Draft(tmp_path, body)
    error = draft.only_error()
    assert error.message == "parameter ålderstillägg is keyed by integer: write ålderstillägg[…]"
    assert str(error.span) == draft.at(30, 27)


def test_unused_parameter_is_a_warning_and_the_rulebook_still_loads(tmp_path):
    draft = Draft(tmp_path, RULE + 'parameter oanvänd: money\n  value 1 kr status verified cite "s"')
    book = draft.load()
    assert [(w.severity, w.message, str(w.span)) for w in book.warnings] == [
        ("warning", "parameter oanvänd is never used", draft.at(23, 1))]
    assert book.evaluate_record(visit(), "tillägg", "V1").value == 300 * 100


def test_an_unused_parameter_warning_is_listed_with_the_errors_of_a_failing_rulebook(tmp_path):
    draft = Draft(tmp_path, "rule fysiskt defines tillägg when mode = physical then belop")
    diagnostics = draft.error().diagnostics
    assert [(d.severity, str(d.span)) for d in diagnostics] == [
        ("warning", draft.at(19, 1)), ("error", draft.at(22, 56))]


# --------------------------------------------------------------------------- dependency cycles


def test_definitions_depending_on_each_other_in_a_cycle(tmp_path):
    draft = Draft(tmp_path, RULE + "definition a per visits = b\ndefinition b per visits = a")
    error = draft.only_error()
    assert error.message == "definitions depend on each other in a cycle: a → b → a"
    assert str(error.span) == draft.at(23, 1)


def test_a_longer_cycle_names_every_definition_in_it(tmp_path):
    draft = Draft(tmp_path, RULE + "definition a per visits = b\ndefinition b per visits = c\n"
                                   "definition c per visits = a + 1")
    error = draft.only_error()
    assert error.message == "definitions depend on each other in a cycle: a → b → c → a"
    assert str(error.span) == draft.at(23, 1)


def test_a_cycle_through_an_output(tmp_path):
    draft = Draft(tmp_path, "definition d per visits = tillägg\n"
                            "rule fysiskt defines tillägg when mode = physical then belopp + d")
    error = draft.only_error()
    assert error.message == "definitions depend on each other in a cycle: d → tillägg → d"
    assert str(error.span) == draft.at(22, 1)


def test_definitions_may_use_each_other_in_any_order(tmp_path):
    draft = Draft(tmp_path, "definition dubbelt per visits = enkelt * 2\n"
                            "definition enkelt per visits = belopp\n"
                            "rule fysiskt defines tillägg when mode = physical then dubbelt")
    assert draft.load().evaluate_record(visit(), "tillägg", "V1").value == 2 * 300 * 100


# --------------------------------------------------------------------------- limits


def test_a_file_larger_than_the_limit_is_refused_at_its_first_line(tmp_path):
    draft = Draft(tmp_path, RULE + "# " + "x" * parser.MAX_FILE_BYTES)
    assert draft.path.stat().st_size > parser.MAX_FILE_BYTES
    error = draft.only_error()
    assert error.message == "the rulebook is larger than 2 MB"
    assert str(error.span) == draft.at(1, 1)


def test_a_file_that_is_not_utf8_is_refused_at_its_first_line(tmp_path):
    path = tmp_path / "latin1.md"
    path.write_bytes(HEADER.encode("utf-8") + "definition å = 1\n```\n".encode("latin-1"))
    with pytest.raises(RulebookError) as caught:
        rulelang.load(str(path))
    (error,) = caught.value.diagnostics
    assert error.message == "the file is not UTF-8 text (invalid continuation byte)"
    assert str(error.span) == f"{display_path(path)}:1:1"


# --------------------------------------------------------------------------- amendments

BASE = '''\
# Base

```rulelang
rulebook "base/a"
  version "1" source src "Test source seed"
according to src
```

## 1 Tillägg

```rulelang
''' + DECLARATIONS + RULE + '''\
exception video to fysiskt when mode = video then 0 kr
```
'''


def amendment(rulebook_id: str, amends: str, body: str) -> str:
    # The amendment's own block starts on line 12, like the base's.
    return f'''\
# Amendment

```rulelang
rulebook "{rulebook_id}"
  version "2"
  amends "{amends}" source src "Test source amendment"
according to src
```

## 2 Ändring
```rulelang
{body}
```
'''


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A RULELANG_PATH directory holding base/a.md; returns a function that adds rulebooks to it."""
    return rulebook_library(tmp_path / "library", monkeypatch, "base/a", BASE)


def test_the_base_rulebook_is_found_by_id(library):
    book = rulelang.load("base/a")
    assert (book.id, book.version) == ("base/a", "1")
    assert book.evaluate_record(visit(), "tillägg", "V1").value == 300 * 100


def test_amend_parameter_overrides_the_earlier_value_only_from_its_date(library):
    library("base/b", amendment("base/b", "base/a", (
        "amend parameter belopp\n"
        '  value 350 kr from 2022-01-01 status verified cite "amendment.txt"')))
    book = rulelang.load("base/b")
    assert (book.id, book.version) == ("base/b", "2")
    assert book.warnings == []
    tillägg = lambda date, mode="physical": book.evaluate_record(visit(mode, date), "tillägg", "V1").value
    assert tillägg("2021-01-31") == 0             # before the rule is in force: the default
    assert tillägg("2021-02-01") == 300 * 100
    assert tillägg("2021-12-31") == 300 * 100
    assert tillägg("2022-01-01") == 350 * 100
    assert tillägg("2022-01-01", "video") == 0    # the base's exception still applies


def test_amend_parameter_for_a_closed_period_keeps_the_older_value_on_both_sides(library):
    library("base/b", amendment("base/b", "base/a", (
        "amend parameter belopp\n"
        '  value 320 kr from 2021-06-01 until 2021-08-31 status verified cite "amendment.txt"')))
    book = rulelang.load("base/b")
    tillägg = lambda date: book.evaluate_record(visit("physical", date), "tillägg", "V1").value
    assert tillägg("2021-05-31") == 300 * 100
    assert tillägg("2021-06-01") == 320 * 100
    assert tillägg("2021-08-31") == 320 * 100
    assert tillägg("2021-09-01") == 300 * 100


def test_the_amended_rulebook_is_unchanged_by_its_amendment(library):
    library("base/b", amendment("base/b", "base/a", (
        "amend parameter belopp\n"
        '  value 350 kr from 2022-01-01 status verified cite "amendment.txt"')))
    rulelang.load("base/b")
    book = rulelang.load("base/a")
    assert book.evaluate_record(visit("physical", "2022-01-01"), "tillägg", "V1").value == 300 * 100


def test_redeclaring_a_parameter_without_amend_is_an_error(library):
    file = library("base/b", amendment("base/b", "base/a", (
        "parameter belopp: money\n"
        '  value 350 kr from 2022-01-01 status verified cite "amendment.txt"')))
    with pytest.raises(RulebookError) as caught:
        rulelang.load("base/b")
    (error,) = caught.value.diagnostics
    base = display_path(library.root / "base" / "a.md")
    assert error.message == f"parameter belopp is already declared at {base}:19:1"
    assert str(error.span) == f"{file}:12:1"


def test_amending_a_parameter_that_does_not_exist_is_an_error(library):
    file = library("base/b", amendment("base/b", "base/a", (
        "amend parameter belop\n"
        '  value 350 kr from 2022-01-01 status verified cite "amendment.txt"')))
    with pytest.raises(RulebookError) as caught:
        rulelang.load("base/b")
    (error,) = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert error.message == "amend parameter belop: there is no such parameter to amend; did you mean 'belopp'?"
    assert str(error.span) == f"{file}:12:1"


def test_amend_rule_replaces_the_rule(library):
    library("base/b", amendment("base/b", "base/a", (
        "amend rule fysiskt defines tillägg from 2021-02-01\n"
        "  when mode = physical or mode = phone then belopp * 2")))
    book = rulelang.load("base/b")
    tillägg = lambda mode: book.evaluate_record(visit(mode), "tillägg", "V1").value
    assert tillägg("physical") == 2 * 300 * 100
    assert tillägg("phone") == 2 * 300 * 100
    assert tillägg("video") == 0


def test_redeclaring_a_rule_without_amend_is_an_error_that_says_to_amend(library):
    file = library("base/b", amendment("base/b", "base/a",
                                       "rule fysiskt defines tillägg when mode = phone then belopp"))
    with pytest.raises(RulebookError) as caught:
        rulelang.load("base/b")
    (error,) = caught.value.diagnostics
    base = display_path(library.root / "base" / "a.md")
    assert error.message == f"rule fysiskt is already declared at {base}:22:1"
    assert str(error.span) == f"{file}:12:1"
    assert error.notes == ("write `amend rule` to change a rule of an amended rulebook",)


def test_amend_rule_may_not_change_the_output(library):
    file = library("base/b", amendment("base/b", "base/a", (
        "output annat: money per visits default 0 kr\n"
        "amend rule fysiskt defines annat when mode = phone then belopp")))
    with pytest.raises(RulebookError) as caught:
        rulelang.load("base/b")
    error = caught.value.diagnostics[0]
    assert error.message == "amend rule fysiskt defines annat, but the rule it amends defines tillägg"
    assert str(error.span) == f"{file}:13:1"


def test_an_amendment_cycle_is_an_error(library):
    x = library("cycle/x", amendment("cycle/x", "cycle/y", ""))
    library("cycle/y", amendment("cycle/y", "cycle/x", ""))
    with pytest.raises(RulebookError) as caught:
        rulelang.load("cycle/x")
    (error,) = caught.value.diagnostics
    assert error.message == "amendments form a cycle: cycle/x → cycle/y → cycle/x"
    assert str(error.span) == f"{x}:4:1"


def test_amending_a_rulebook_that_does_not_exist_is_an_error_at_the_header(library):
    file = library("base/b", amendment("base/b", "base/nope", ""))
    with pytest.raises(RulebookError) as caught:
        rulelang.load("base/b")
    (error,) = caught.value.diagnostics
    assert error.message.startswith("no rulebook 'base/nope' (looked for base/nope.md in ")
    assert str(error.span) == f"{file}:4:1"


def test_a_header_id_that_does_not_match_the_path_it_was_found_at(library):
    file = library("base/b", amendment("base/other", "base/a", ""))
    with pytest.raises(RulebookError) as caught:
        rulelang.load("base/b")
    (error,) = caught.value.diagnostics
    assert error.message == ("the header says 'base/other' but the file is rulebook 'base/b'; "
                             "a rulebook's id is its path under rulebooks/")
    assert str(error.span) == f"{file}:4:1"


def test_a_rulebook_loaded_by_path_may_have_any_id(library):
    path = library.root / "base" / "b.md"
    path.write_text(amendment("elsewhere/z", "base/a", ""), encoding="utf-8")
    assert rulelang.load(str(path)).id == "elsewhere/z"


def test_a_rulebook_without_a_header_is_an_error(tmp_path):
    path = tmp_path / "bare.md"
    path.write_text("# Bare\n\n```rulelang\ndefinition d = 1\n```\n", encoding="utf-8")
    with pytest.raises(RulebookError) as caught:
        rulelang.load(str(path))
    (error,) = caught.value.diagnostics
    assert error.message == 'the rulebook has no `rulebook "id"` header block'
    assert str(error.span) == f"{display_path(path)}:1:1"


def test_a_typo_in_a_keyed_parameters_name_is_an_unknown_name_with_the_closest(tmp_path):
    draft = Draft(tmp_path, RULE + (
        "parameter lägesbelopp: money by visit_mode\n"
        '  value from 2021-01-01 status illustrative cite "s"\n'
        "    row physical: 1 kr\n    row video: 2 kr\n    row phone: 3 kr\n"
        "definition d per visits = lägesbelop[mode]"))
    error = draft.only_error()
    assert error.message == "unknown parameter lägesbelop; did you mean 'lägesbelopp'?"
    assert draft.text_at(error) == "lägesbelop"
    assert error.notes == ("[…] looks up a row of a parameter declared `by` a key: lägesbelopp",)
