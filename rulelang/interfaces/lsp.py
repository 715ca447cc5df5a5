"""`rulelang lsp`: a language server (LSP over stdio, with pygls) for editors.

As a rulebook is typed, its text is checked as `check` checks it (parse, names, types,
dates, exceptions, the conflict prover), with the rulebooks it amends read from disk, and
the diagnostics are published. Hovering a name shows what it is: a parameter's values over
time with status and citation, a rule's provision and the source's quoted words, a
definition's formula, a field's type. Go to definition and find references work across the
amendment chain; completion offers the names, fields, enum values and functions in scope;
the outline lists the provisions and what each declares.

What the server knows of a document is an `Analysis`, built without the protocol so that it
is tested directly; `serve()` only wires it to LSP messages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import attrs

from ..language import literate, syntax as s
from ..language.checker import CheckedRulebook, check
from ..language.checker.model import BUILTIN_HELP, BUILTINS
from ..language.diagnostics import Diagnostic, RulebookError
from ..language.formatter import KEYWORDS
from ..language.generator import generate
from ..language.loader import display_path, load_chain, read_documents
from ..language.parser import parse_rulebook
from ..language.values import rows_text, to_text

_WORD = re.compile(r"(?![0-9])\w+")


@attrs.frozen
class Place:
    """A name's place: a file and a 1-based line and columns (end exclusive)."""

    file: str
    line: int
    column: int
    end_column: int


@attrs.define
class Declared:
    """What a name declares: its kind, where, and what a hover says of it (Markdown)."""

    kind: str  # parameter, definition, output, table, enum, enum value, field, rule, exception, data
    name: str
    place: Place
    hover: str


@attrs.define
class Analysis:
    """What the server knows of one document's text."""

    path: str  # as diagnostics name it
    text: str
    diagnostics: list  # of language.diagnostics.Diagnostic
    checked: Optional[CheckedRulebook] = None
    declared: dict = attrs.Factory(dict)  # name → [Declared]
    sources: dict = attrs.Factory(dict)  # file → text, for every rulebook of the chain

    # ---- positions
    def word_at(self, line: int, column: int) -> Optional[str]:
        """The identifier at a 1-based line and column of this document (inside code)."""
        lines = self.text.split("\n")
        if not 1 <= line <= len(lines):
            return None
        for match in _WORD.finditer(lines[line - 1]):
            if match.start() + 1 <= column <= match.end() + 1:
                return match.group()
        return None

    def definitions(self, name: str) -> list:
        return self.declared.get(name, [])

    def hover(self, line: int, column: int) -> Optional[str]:
        word = self.word_at(line, column)
        if word is None:
            return None
        found = self.definitions(word)
        if found:
            return "\n\n---\n\n".join(d.hover for d in found)
        if word in BUILTIN_HELP:
            return f"`{BUILTIN_HELP[word]}`"
        return None

    def references(self, name: str) -> list:
        """Every place the identifier stands in the code of the rulebook and those it amends."""
        found = []
        for file, text in self.sources.items():
            for block in literate.code_blocks(text):
                for offset, line in enumerate(block.text.split("\n")):
                    code = _code_part(line)
                    for match in _WORD.finditer(code):
                        if match.group() == name:
                            found.append(Place(file, block.first_line + offset, match.start() + 1, match.end() + 1))
        return found

    def completions(self, line: int, column: int) -> list:
        """(label, kind, detail) of what may stand at the cursor: after a `.`, the fields,
        definitions and outputs of the tables; elsewhere every name, enum value, function and
        keyword."""
        lines = self.text.split("\n")
        before = lines[line - 1][:column - 1] if 1 <= line <= len(lines) else ""
        items = []
        if self.checked is None:
            return [(word, "keyword", "") for word in sorted(KEYWORDS)]
        checked = self.checked
        if re.search(r"\.\w*$", before):
            for table, info in checked.tables.items():
                for field, (field_type, _) in info.fields.items():
                    items.append((field, "field", f"{table}.{field}: {field_type}"))
            for (table, name), info in checked.definitions.items():
                if table is not None:
                    items.append((name, "definition", f"{table}.{name}: {info.type}"))
            return items
        for name, info in checked.parameters.items():
            items.append((name, "parameter", f"parameter {name}: {info.type}"))
        for (table, name), info in checked.definitions.items():
            items.append((name, "definition", f"definition {name}" + (f" per {table}" if table else "")))
        for name, info in checked.outputs.items():
            items.append((name, "output", f"output {name}: {info.type} per {info.decl.table}"))
        for name, decl in checked.enums.items():
            for value in decl.values:
                items.append((value, "enum value", f"a value of {name}"))
        for table, info in checked.tables.items():
            items.append((table, "table", f"table {table}"))
            for field, (field_type, _) in info.fields.items():
                items.append((field, "field", f"{table}.{field}: {field_type}"))
        for function in BUILTINS:
            items.append((function, "function", BUILTIN_HELP.get(function, function)))
        items.extend((word, "keyword", "") for word in sorted(KEYWORDS))
        return list({label: (label, kind, detail) for label, kind, detail in items}.values())

    def outline(self) -> list:
        """(heading, line, [(kind, name, line)]) for each section of this document that
        declares something, in order."""
        if self.checked is None:
            return []
        own = self.checked.chain[-1]
        sections: dict = {}
        for statement in own.statements:
            kind, name = s.statement_kind(statement), s.statement_name(statement)
            if kind in ("statement", "rulebook header", "according to", "repeal"):
                continue
            heading = statement.provision.heading
            sections.setdefault((statement.provision.line, heading), []).append((kind, name, statement.span.line))
        return [(heading, line, items) for (line, heading), items in sections.items()]


def _code_part(line: str) -> str:
    """A code line without its strings and comment (so `"belopp"` is no reference)."""
    line = re.sub(r'"([^"\\\n]|\\["\\n])*"', lambda m: " " * len(m.group()), line)
    return line.split("#", 1)[0]


def _name_place(sources: dict, span: s.Span, name: str) -> Place:
    """Where `name` stands in its statement's first line (the statement's start otherwise)."""
    lines = (sources.get(span.file) or "").split("\n")
    if 1 <= span.line <= len(lines):
        for match in _WORD.finditer(lines[span.line - 1], span.column - 1):
            if match.group() == name:
                return Place(span.file, span.line, match.start() + 1, match.end() + 1)
    return Place(span.file, span.line, span.column, span.column + len(name))


# ------------------------------------------------------------------------ what hovers say


def _parameter_hover(name: str, info) -> str:
    lines = [f"**parameter {name}**: {info.type}" + (f" by {info.keys_shown}" if info.key_types else ""), "",
             "| in force | value | status | cite |", "|---|---|---|---|"]
    for value in info.values:
        start = value.valid_from.isoformat() if value.valid_from else "…"
        end = value.valid_until.isoformat() if value.valid_until else "…"
        if info.key_types:
            shown = "; ".join(rows_text(value.value, info.type))
        else:
            shown = to_text(value.value, info.type)
        lines.append(f"| {start} – {end} | {shown} | {value.decl.status} | {(value.decl.cite or '').replace('|', '/')} |")
    return "\n".join(lines)


def _rule_hover(label: str, info) -> str:
    decl = info.decl
    provision = decl.provision
    kind = "exception" if decl.is_exception else "rule"
    lines = [f"**{kind} {label}**" + (f" defines {decl.output}" if decl.output else
                                      f" to {', '.join(decl.exception_to)}"),
             "", f"§ {provision.citation}"]
    lines.extend(f"> *\"{quote.text}\"*" for quote in provision.quotes)
    period = " – ".join(d.isoformat() if d else "…" for d in (decl.valid_from, decl.valid_until))
    lines += ["", f"in force {period}; {decl.span.location}"]
    return "\n".join(lines)


def _declarations(checked: CheckedRulebook, sources: dict) -> dict:
    declared: dict = {}

    def add(kind: str, name: str, span: s.Span, hover: str) -> None:
        declared.setdefault(name, []).append(Declared(kind, name, _name_place(sources, span, name), hover))

    for name, info in checked.parameters.items():
        add("parameter", name, info.decl.span, _parameter_hover(name, info))
    for (table, name), info in checked.definitions.items():
        add("definition", name, info.decl.span, f"**definition {name}**" + (f" per {table}" if table else "")
            + f": {info.type}\n\n`{generate(info.decl.expr)}`\n\n§ {info.decl.provision.citation}")
    for name, info in checked.outputs.items():
        add("output", name, info.decl.span, f"**output {name}**: {info.type} per {info.decl.table}"
            + f"\n\n§ {info.decl.provision.citation}")
    for name, info in checked.tables.items():
        add("table", name, info.decl.span, f"**table {name}**: " + ", ".join(
            f"{field}: {field_type}" for field, (field_type, _) in info.fields.items()))
        for field, (field_type, field_decl) in info.fields.items():
            add("field", field, field_decl.span, f"**{name}.{field}**: {field_type}")
    for name, decl in checked.enums.items():
        add("enum", name, decl.span, f"**enum {name}**: {', '.join(decl.values)}")
        for value in decl.values:
            add("enum value", value, decl.span, f"**{value}**: a value of enum {name}")
    for label, info in checked.rules.items():
        add("exception" if info.decl.is_exception else "rule", label, info.decl.span, _rule_hover(label, info))
    for name, decl in checked.data.items():
        add("data", name, decl.span, f"**data {name}**: records examples use")
    return declared


# ------------------------------------------------------------------------ analysing a text


def analyse(text: str, path: Path) -> Analysis:
    """Check a rulebook's text (unsaved, as the editor holds it) with the rulebooks it
    amends, as `rulelang check` would; never raises for what the text says."""
    shown = display_path(path)
    try:
        syntax = parse_rulebook(text, shown)
    except RulebookError as error:
        return Analysis(shown, text, list(error.diagnostics), sources={shown: text})
    if syntax.header is None:
        return Analysis(shown, text, [Diagnostic("error", "the rulebook has no `rulebook \"id\"` header block",
                                                 s.Span(shown, 1, 1, 1, 2))], sources={shown: text})
    try:
        syntax = attrs.evolve(syntax, documents=read_documents(syntax.header, path))
        chain = (load_chain(syntax.header.amends) if syntax.header.amends else []) + [syntax]
        checked = check(chain)
    except RulebookError as error:
        return Analysis(shown, text, list(error.diagnostics), sources={shown: text, **error.sources})
    except Exception as error:  # a rulebook it amends that cannot be found, read or understood
        return Analysis(shown, text, [Diagnostic("error", str(error), syntax.header.span)], sources={shown: text})
    from ..language.prover import prove

    sources = {layer.path: layer.text for layer in chain}
    diagnostics = list(checked.warnings) + prove(checked)
    return Analysis(shown, text, diagnostics, checked, _declarations(checked, sources), sources)


# ------------------------------------------------------------------------ the protocol


def serve() -> None:  # pragma: no cover - run by `rulelang lsp`; tested over stdio in tests/test_lsp.py
    """Serve LSP on stdin/stdout until the editor ends the session."""
    from lsprotocol import types as lsp
    from pygls.lsp.server import LanguageServer
    from pygls.uris import from_fs_path, to_fs_path

    from .. import __version__

    server = LanguageServer("rulelang", __version__)
    analyses: dict = {}

    def range_of(line: int, column: int, end_line: int, end_column: int) -> lsp.Range:
        return lsp.Range(lsp.Position(max(0, line - 1), max(0, column - 1)),
                         lsp.Position(max(0, end_line - 1), max(0, end_column - 1)))

    def location(place: Place) -> lsp.Location:
        return lsp.Location(from_fs_path(str(Path(place.file).resolve())),
                            range_of(place.line, place.column, place.line, place.end_column))

    def refresh(uri: str) -> None:
        document = server.workspace.get_text_document(uri)
        analysis = analyse(document.source, Path(to_fs_path(uri)))
        analyses[uri] = analysis
        published = []
        for diagnostic in analysis.diagnostics:
            span = diagnostic.span
            if span is None or span.file != analysis.path:
                continue
            published.append(lsp.Diagnostic(
                range=range_of(span.line, span.column, span.end_line, span.end_column),
                message=diagnostic.message + "".join(f"\n{note}" for note in diagnostic.notes),
                severity=lsp.DiagnosticSeverity.Error if diagnostic.severity == "error"
                else lsp.DiagnosticSeverity.Warning, source="rulelang"))
        server.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=published))

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: lsp.DidSaveTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(params: lsp.HoverParams) -> Optional[lsp.Hover]:
        analysis = analyses.get(params.text_document.uri)
        said = analysis and analysis.hover(params.position.line + 1, params.position.character + 1)
        if not said:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=said))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(params: lsp.DefinitionParams) -> Optional[list]:
        analysis = analyses.get(params.text_document.uri)
        word = analysis and analysis.word_at(params.position.line + 1, params.position.character + 1)
        return [location(d.place) for d in analysis.definitions(word)] if word else None

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def references(params: lsp.ReferenceParams) -> Optional[list]:
        analysis = analyses.get(params.text_document.uri)
        word = analysis and analysis.word_at(params.position.line + 1, params.position.character + 1)
        return [location(place) for place in analysis.references(word)] if word else None

    kinds = {"parameter": lsp.CompletionItemKind.Constant, "definition": lsp.CompletionItemKind.Variable,
             "output": lsp.CompletionItemKind.Variable, "enum value": lsp.CompletionItemKind.EnumMember,
             "table": lsp.CompletionItemKind.Class, "field": lsp.CompletionItemKind.Field,
             "function": lsp.CompletionItemKind.Function, "keyword": lsp.CompletionItemKind.Keyword}

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["."]))
    def completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        analysis = analyses.get(params.text_document.uri)
        items = analysis.completions(params.position.line + 1, params.position.character + 1) if analysis else []
        return lsp.CompletionList(is_incomplete=False, items=[
            lsp.CompletionItem(label=label, kind=kinds.get(kind), detail=detail or None)
            for label, kind, detail in items])

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def outline(params: lsp.DocumentSymbolParams) -> list:
        analysis = analyses.get(params.text_document.uri)
        symbols = []
        for heading, line, items in (analysis.outline() if analysis else []):
            children = [lsp.DocumentSymbol(name=name, detail=kind, kind=lsp.SymbolKind.Function
                                           if kind in ("rule", "exception") else lsp.SymbolKind.Variable,
                                           range=range_of(item_line, 1, item_line, 2),
                                           selection_range=range_of(item_line, 1, item_line, 2))
                        for kind, name, item_line in items]
            last = max([line] + [item_line for _, _, item_line in items])
            symbols.append(lsp.DocumentSymbol(name=heading or "(before the first heading)", kind=lsp.SymbolKind.Namespace,
                                              range=range_of(max(line, 1), 1, last, 2),
                                              selection_range=range_of(max(line, 1), 1, max(line, 1), 2),
                                              children=children))
        return symbols

    server.start_io()
