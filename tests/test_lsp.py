"""`rulelang lsp`: a language server session over its protocol (stdio), as an editor drives it
— open a rulebook, see its diagnostics, edit it, hover, go to definition, find references,
complete, outline — and the analysis behind it, tested directly."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import BaseLanguageClient
from pygls.uris import from_fs_path
from rulebook_factory import write_rulebook

from rulelang.interfaces.lsp import analyse

ROOT = Path(__file__).resolve().parent.parent

BODY = """\
enum visit_mode: physical, video
table visits
  key visit_id
  dated by date
  field visit_id: text
  field date: date
  field mode: visit_mode
output tillägg: money per visits default 0 kr
parameter belopp: money
  value 300 kr from 2021-02-01 status illustrative cite "STH21.6.1"
  value 350 kr from 2022-01-01 status illustrative cite "ändring 2022"
rule fysiskt defines tillägg from 2021-02-01 when mode = physical then belopp
"""


def line_of(text: str, starts: str) -> int:
    """The 1-based line of the first line starting with `starts`."""
    return next(n for n, line in enumerate(text.split("\n"), 1) if line.startswith(starts))


def test_the_analysis_hovers_defines_completes_and_outlines(tmp_path):
    path = write_rulebook(tmp_path, BODY)
    text = path.read_text(encoding="utf-8")
    analysis = analyse(text, path)
    assert analysis.diagnostics == []
    rule = line_of(text, "rule fysiskt")
    column = text.split("\n")[rule - 1].index("belopp") + 1
    hover = analysis.hover(rule, column)
    assert "**parameter belopp**: money" in hover
    assert "| 2021-02-01 – 2021-12-31 | 300.00 kr | illustrative | STH21.6.1 |" in hover
    assert "| 2022-01-01 – … | 350.00 kr | illustrative | ändring 2022 |" in hover
    (declared,) = analysis.definitions("belopp")
    assert (declared.place.line, declared.place.column) == (line_of(text, "parameter belopp"), 11)
    assert [p.line for p in analysis.references("belopp")] == [line_of(text, "parameter belopp"), rule]
    labels = {label for label, _, _ in analysis.completions(rule, 1)}
    assert {"belopp", "physical", "video", "mode", "tillägg", "age"} <= labels
    assert analysis.outline() == [("1 Provision", line_of(text, "## 1 Provision"), [
        ("enum", "visit_mode", line_of(text, "enum")), ("table", "visits", line_of(text, "table")),
        ("output", "tillägg", line_of(text, "output")), ("parameter", "belopp", line_of(text, "parameter")),
        ("rule", "fysiskt", rule)])]


def test_the_analysis_of_text_that_does_not_parse_gives_its_errors(tmp_path):
    path = write_rulebook(tmp_path, BODY.replace("then belopp", "then belopp * 1,5"))
    analysis = analyse(path.read_text(encoding="utf-8"), path)
    (error,) = analysis.diagnostics
    assert "a decimal is written with a point: 1.5" in error.message


def test_a_rule_hover_shows_its_provision_and_the_sources_words():
    path = ROOT / "rulebooks" / "stockholm" / "hlv-2021.md"
    text = path.read_text(encoding="utf-8")
    analysis = analyse(text, path)
    hover = analysis.hover(line_of(text, "rule fysiskt_besök_av_annans_listade"), 10)
    assert "§ STH21.6.1 Tilläggsersättning för fysiskt besök av annan mottagnings listade patient" in hover
    assert '> *"Från och med den 1 februari 2021' in hover
    # An inherited name is defined in the rulebook hlv-2021 amends.
    (declared,) = analysis.definitions("tilläggsersättning")
    assert declared.place.file.endswith("hlv-2016.md")


async def within(request, seconds: float = 60):
    """A request's answer, or a failure after `seconds`: a test never hangs on a server."""
    return await asyncio.wait_for(request, seconds)


class Client(BaseLanguageClient):
    def __init__(self):
        super().__init__("rulelang-test", "1")
        self.diagnostics: dict = {}
        self.published = asyncio.Event()

        @self.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def publish(params: lsp.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = params.diagnostics
            self.published.set()

    async def next_diagnostics(self, uri: str) -> list:
        await asyncio.wait_for(self.published.wait(), 60)
        self.published.clear()
        return self.diagnostics[uri]


def test_an_editor_session_over_the_protocol(tmp_path):
    path = write_rulebook(tmp_path, BODY)
    text = path.read_text(encoding="utf-8")
    uri = from_fs_path(str(path))
    rule = line_of(text, "rule fysiskt") - 1  # 0-based, as LSP counts

    async def session():
        client = Client()
        await client.start_io(sys.executable, "-m", "rulelang", "lsp")
        try:
            await within(client.initialize_async(lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(), root_uri=from_fs_path(str(tmp_path)))))
            client.initialized(lsp.InitializedParams())
            broken = text.replace("then belopp", "then belop")
            client.text_document_did_open(lsp.DidOpenTextDocumentParams(
                lsp.TextDocumentItem(uri=uri, language_id="markdown", version=1, text=broken)))
            published = await client.next_diagnostics(uri)
            (error,) = [d for d in published if d.severity == lsp.DiagnosticSeverity.Error]
            assert any("parameter belopp is never used" in d.message for d in published)  # a warning
            assert "unknown name belop in visits; did you mean 'belopp'?" in error.message
            assert error.range.start.line == rule
            # The author fixes the typo: the diagnostics clear.
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
                [lsp.TextDocumentContentChangeWholeDocument(text=text)]))
            assert list(await client.next_diagnostics(uri)) == []
            column = text.split("\n")[rule].index("belopp")
            position = lsp.Position(rule, column + 2)
            document = lsp.TextDocumentIdentifier(uri=uri)
            hover = await within(client.text_document_hover_async(
                lsp.HoverParams(text_document=document, position=position)))
            assert "**parameter belopp**" in hover.contents.value and "350.00 kr" in hover.contents.value
            (found,) = await within(client.text_document_definition_async(
                lsp.DefinitionParams(text_document=document, position=position)))
            assert found.range.start.line == line_of(text, "parameter belopp") - 1
            references = await within(client.text_document_references_async(lsp.ReferenceParams(
                text_document=document, position=position, context=lsp.ReferenceContext(include_declaration=True))))
            assert len(references) == 2
            completion = await within(client.text_document_completion_async(lsp.CompletionParams(
                text_document=document, position=lsp.Position(rule, 0))))
            assert {"belopp", "physical"} <= {item.label for item in completion.items}
            symbols = await within(client.text_document_document_symbol_async(
                lsp.DocumentSymbolParams(text_document=document)))
            assert [s.name for s in symbols] == ["1 Provision"]
            assert "fysiskt" in [c.name for c in symbols[0].children]
        finally:
            await asyncio.wait_for(client.shutdown_async(None), 30)
            client.exit(None)
            await asyncio.wait_for(client.stop(), 30)

    asyncio.run(session())


def test_the_textmate_grammar_knows_every_word_of_the_language():
    import json
    import re

    grammar = json.loads((ROOT / "editors" / "rulelang.tmLanguage.json").read_text(encoding="utf-8"))
    patterns = " ".join(p.get("match", "") for p in grammar["patterns"])
    words = set(re.findall(r'"([a-zåäö]+)"', (ROOT / "rulelang" / "language" / "grammar.lark").read_text()))
    missing = sorted(w for w in words if not re.search(rf"[(|:]{w}[|)]", patterns))
    assert missing == []
    for pattern in grammar["patterns"]:
        re.compile(pattern.get("match", pattern.get("begin", "")))
