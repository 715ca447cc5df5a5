"""Check where a rulebook's words and figures come from, before anything runs.

A lawyer follows every citation: a section must say which source its words come from
(or that it is the rulebook's own text), a quotation must stand verbatim in the document
it is attributed to, and a figure cited to a held document must be in it. This stage
reads the syntax of each rulebook of a chain and the held documents the loader read; it
reports diagnostics and knows nothing of types or evaluation.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

from . import syntax as s
from .literate import quoted_in

# Statements whose provision an explanation cites: their section must say where it comes from.
CITED_STATEMENTS = (s.ParameterDecl, s.DefinitionDecl, s.OutputDecl, s.RuleDecl, s.Repeal, s.WarningDecl)

# Quoted words inside a `cite`: «…» or '…'.
_CITED_WORDS = re.compile(r"«([^»]+)»|'([^']+)'")

Report = Callable[..., None]  # (message, span, *notes)


def cited_document(cite: Optional[str], documents: dict) -> Optional[tuple[str, list]]:
    """(document, quoted words) when a cite opens with a held document's name and a colon:
    `001_….txt: ett avdrag på 300 kronor`. The words are the text after the colon, or, when
    it holds «…» or '…', the words quoted so (the rest is the author's comment)."""
    if not cite:
        return None
    name, colon, rest = cite.partition(":")
    name = name.strip()
    if not colon or name not in documents:
        return None
    quoted = [a or b for a, b in _CITED_WORDS.findall(rest)]
    return name, quoted or [rest.strip()]


def check_layer(layer: s.RulebookSyntax, error: Report, warn: Report) -> None:
    """Every provenance rule for one rulebook file of a chain."""
    header = layer.header
    if header is None:
        return
    documents = {name: text for name, text in layer.documents.items() if text is not None}
    for source in header.sources:
        if source.names_a_file and layer.documents.get(source.document) is None:
            error(f"source {source.key} names the file {source.document}, which is in no sources/ folder "
                  "beside the rulebook or above it", source.span,
                  "keep the text of a document the rulebook quotes in rulebooks/sources/, or cite a "
                  "public document by its title instead of a file name")
    sections: dict = {}  # heading line → (provision, first cited statement)
    for statement in layer.statements:
        if isinstance(statement, CITED_STATEMENTS):
            sections.setdefault(statement.provision.line, (statement.provision, statement))
    for provision, statement in sections.values():
        if not provision.attributed:
            keys = ", ".join(source.key for source in header.sources) or "none declared"
            error(f"section '{provision.heading}' carries rules but does not say where its words come "
                  f"from", statement.span,
                  f"add `according to KEY` naming a source of the header ({keys}), or "
                  "`according to this rulebook` for the rulebook's own text (a reading, a helper)")
        elif not provision.quotes and any(d.document in documents for d in provision.sources):
            held = next(d.document for d in provision.sources if d.document in documents)
            warn(f"section '{provision.heading}' cites {held} but quotes none of its words",
                 statement.span, 'quote the words that order its rules in the prose, as *"…"*')
    for provision in layer.provisions:
        check_quotations(provision, header, documents, error)
    for statement in layer.statements:
        if isinstance(statement, s.ParameterDecl):
            for value in statement.values:
                check_cite(statement.name, value, documents, error)
            check_verified_in_a_source(statement, documents, warn)


def check_verified_in_a_source(statement: s.ParameterDecl, documents: dict, warn: Report) -> None:
    """A `verified` value was verified in a public source: its section names one the rulebook
    does not hold (an explanation cites the section's sources beside the value)."""
    public = [d for d in statement.provision.sources if d.document not in documents]
    for value in statement.values:
        if value.status == "verified" and not public:
            warn(f"a verified value of {statement.name} stands in section '{statement.provision.heading}', "
                 "which names no public source", value.span,
                 "declare the source it was verified in (`source KEY \"TITLE\"`) and name it in the "
                 "section's `according to`")
            return


def check_quotations(provision: s.Provision, header: s.RulebookHeader, documents: dict,
                     error: Report) -> None:
    """A quotation stands verbatim in a held document of its section's sources; in the
    rulebook's own text or a section that names no source, in a held document of the rulebook.
    Only a section citing a document the rulebook does not hold may quote words that cannot
    be checked here."""
    if provision.sources:
        held = [d.document for d in provision.sources if d.document in documents]
        unchecked = any(d.document not in documents for d in provision.sources)
    else:
        held = [d.document for d in header.sources if d.document in documents]
        unchecked = False
    for quotation in provision.quotes:
        if any(quoted_in(quotation.text, documents[name]) for name in held):
            continue
        if unchecked:
            continue
        where = ", ".join(held) or "no document the rulebook holds"
        shown = quotation.text if len(quotation.text) <= 60 else quotation.text[:57] + "…"
        error(f'the quotation "{shown}" is not in {where}', quotation.span,
              'a quotation (*"…"*) must give the source\'s words exactly; mark omissions with [...], '
              "and write a paraphrase without quotation marks")


def check_cite(name: str, value: s.ParamValue, documents: dict, error: Report) -> None:
    """A cite naming a held document gives words that stand in it; a `seed` value cites one."""
    cited = cited_document(value.cite, documents)
    if value.status == "seed" and cited is None:
        error(f"a seed value of {name} must cite a document the rulebook holds, as "
              f"`cite \"FILE: the words that give the figure\"`", value.span,
              "seed means the figure stands in the source document itself; otherwise use verified, "
              "derived, interpretation or illustrative")
        return
    if cited is None:
        return
    document, words = cited
    for piece in words:
        if not quoted_in(piece, documents[document]):
            shown = piece if len(piece) <= 60 else piece[:57] + "…"
            error(f'the cite of {name} quotes "{shown}", which is not in {document}', value.span,
                  "a cite that names a held document gives its words exactly; put your own comment "
                  "outside «…» or '…' quotation marks")


def quoted_document(provision: s.Provision, documents: dict) -> Optional[str]:
    """The document a provision's words come from: of its sources, the held one its first
    quotation stands in, else its first source; None for the rulebook's own text."""
    if not provision.sources:
        return None
    if provision.quotes:
        for source in provision.sources:
            text = documents.get(source.document)
            if text is not None and quoted_in(provision.quotes[0].text, text):
                return source.document
    return provision.document
