"""Check a rulebook before anything runs: names, types and units, dates, exceptions, cycles.

The checker merges a rulebook with the rulebooks it amends, resolves every name, gives
every expression a type, and reports each problem as a positioned diagnostic. It knows
nothing of evaluation or rendering; it hands the compiler a `CheckedRulebook`.
"""

from __future__ import annotations

from typing import Optional

from .. import provenance, syntax as s
from ..diagnostics import Diagnostic, RulebookError
from ..typesystem import Type
from .dates import Dates
from .examples import Examples
from .exceptions import Exceptions
from .model import (  # noqa: F401  (MAX_EXCEPTION_DEPTH: as the stages after it name it)
    MAX_EXCEPTION_DEPTH,
    CheckedRulebook,
    DefinitionInfo,
    OutputInfo,
    ParamInfo,
    RuleInfo,
    TableInfo,
)
from .names import Names
from .types import Types


def _diagnostic_order(d: Diagnostic):
    span = d.span
    return (span.file, span.line, span.column) if span else ("", 0, 0)


def check(chain: list) -> CheckedRulebook:
    """Check a rulebook (the last of `chain`) with the rulebooks it amends."""
    return Checker(chain).check()


class Checker(Names, Dates, Types, Exceptions, Examples):
    """One check of a rulebook chain: the concerns are parts of their own (names, dates,
    types, exceptions, examples); this part holds the state they share and the order they run in."""

    def __init__(self, chain: list):
        self.chain = chain
        self.rulebook = chain[-1]
        self.diagnostics: list[Diagnostic] = []
        self.enums: dict[str, s.EnumDecl] = {}
        self.enum_values: dict[str, list[str]] = {}
        self.tables: dict[str, TableInfo] = {}
        self.parameters: dict[str, ParamInfo] = {}
        self.definitions: dict[tuple, DefinitionInfo] = {}
        self.outputs: dict[str, OutputInfo] = {}
        self.rules: dict[str, RuleInfo] = {}
        self.data: dict[str, s.DataDecl] = {}
        self.examples: list[s.ExampleDecl] = []
        self.data_warnings: dict[str, s.WarningDecl] = {}
        self.types: dict[int, Type] = {}
        self.resolved: dict[int, tuple] = {}
        self.used_parameters: set[str] = set()
        self.dependencies: dict[tuple, set] = {}
        self._current: Optional[tuple] = None

    # ------------------------------------------------------------------ reporting
    def error(self, message: str, span: Optional[s.Span], *notes: str) -> None:
        self.diagnostics.append(Diagnostic("error", message, span, tuple(notes)))

    def warn(self, message: str, span: Optional[s.Span], *notes: str) -> None:
        self.diagnostics.append(Diagnostic("warning", message, span, tuple(notes)))

    # ------------------------------------------------------------------ entry
    def check_replacement(self, header: s.RulebookHeader) -> None:
        """`replaced by ID from DATE` names another rulebook, on a day after this one starts."""
        if header is None or header.replaced_by is None:
            return
        replacing, day = header.replaced_by
        if replacing == header.id:
            self.error(f"rulebook {header.id} cannot be replaced by itself", header.span)
        if header.in_force_from is not None and day <= header.in_force_from:
            self.error(f"rulebook {header.id} is replaced on {day.isoformat()}, not after it comes into force on "
                       f"{header.in_force_from.isoformat()}", header.span)

    def check(self) -> CheckedRulebook:
        for layer_index, layer in enumerate(self.chain):
            own = layer_index == len(self.chain) - 1
            self.collect(layer, own)
            provenance.check_layer(layer, self.error, self.warn)
            if own:
                self.diagnostics.extend(layer.warnings)
        self.check_replacement(self.rulebook.header)
        self.check_declarations()
        self.check_rules()
        self.check_cycles()
        self.check_examples()
        for name, info in self.parameters.items():
            if name not in self.used_parameters:
                self.warn(f"parameter {name} is never used", info.decl.span)
        sources = {layer.path: layer.text for layer in self.chain}
        errors = [d for d in self.diagnostics if d.severity == "error"]
        if errors:
            raise RulebookError(sorted(self.diagnostics, key=_diagnostic_order), sources)
        header = self.rulebook.header
        return CheckedRulebook(
            id=header.id, header=header, chain=self.chain, enums=self.enums, tables=self.tables,
            parameters=self.parameters, definitions=self.definitions, outputs=self.outputs,
            rules=self.rules, data=self.data, examples=self.examples, data_warnings=self.data_warnings,
            types=self.types,
            resolved=self.resolved,
            warnings=[d for d in self.diagnostics if d.severity == "warning"], sources=sources)
