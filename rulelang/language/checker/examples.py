"""The examples written inside a rulebook: what they give and expect, checked as rules are."""

from __future__ import annotations

from .. import syntax as s
from ..diagnostics import did_you_mean as _suggest
from .model import Scope


class Examples:
    """The examples a rulebook holds: their givens and expectations.

    A part of Checker: it shares the checker's state and reports through it."""

    # ------------------------------------------------------------------ examples
    def check_examples(self) -> None:
        for data in self.data.values():
            for given in data.givens:
                self.check_given(given)
        for example in self.examples:
            if example.using and example.using not in self.data:
                self.error(f"unknown data {example.using}" + _suggest(example.using, self.data), example.span)
            for given in example.givens:
                self.check_given(given)
            assumed = set()
            for assumption in example.assumptions:
                param = self.parameters.get(assumption.parameter)
                if param is None:
                    self.error(f"unknown parameter {assumption.parameter}"
                               + _suggest(assumption.parameter, self.parameters), assumption.span)
                    continue
                if param.key_types:
                    self.error(f"parameter {assumption.parameter} is keyed; an example can assume only "
                               "a parameter with one value", assumption.span)
                    continue
                if assumption.parameter in assumed:
                    self.error(f"the example assumes {assumption.parameter} twice", assumption.span)
                assumed.add(assumption.parameter)
                self.constant(assumption.value, param.type, f"the assumed {assumption.parameter}")
            for expectation in example.expectations:
                output = self.outputs.get(expectation.output)
                if output is None:
                    self.error(f"unknown output {expectation.output}" + _suggest(expectation.output, self.outputs),
                               expectation.span)
                    continue
                if not isinstance(expectation.value, (s.Literal, s.Name)):
                    self.error("an expected value is a constant, not an expression", expectation.value.span)
                    continue
                self.expect_value(expectation.value, Scope(None), output.type,
                                  f"the expected {expectation.output}")

    def check_given(self, given: s.Given) -> None:
        table = self.tables.get(given.table)
        if table is None:
            self.error(f"unknown table {given.table}" + _suggest(given.table, self.tables), given.span)
            return
        for record in given.records:
            for name, value, span in record.fields:
                if name not in table.fields:
                    self.error(f"{given.table} has no field {name}" + _suggest(name, table.fields), span)
                    continue
                field_type = table.fields[name][0]
                if not isinstance(value, (s.Literal, s.Name)):
                    self.error("an example gives constants, not expressions", value.span)
                    continue
                self.expect_value(value, Scope(None), field_type, f"{given.table}.{name}")
