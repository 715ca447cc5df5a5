"""Where words and figures come from: the checks a rulebook must pass, and, over every
rulebook, that no explanation quotes or cites a document for words or a figure it does
not contain."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

import rulelang
from rulelang.interfaces.examples import explained_examples
from rulelang.language.diagnostics import RulebookError
from rulelang.language.literate import normalised, quoted_in
from rulelang.language.loader import all_rulebook_ids, display_path
from rulelang.language.provenance import cited_document

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "rulebooks" / "sources"
SEEDS = ROOT.parent / "shared" / "seeds"

SEED_TEXT = """Kostnadsansvar

Tillägg och avdrag gäller inte för hembesök,
hemsjukvårdsbesök och det psykosociala uppdraget.

• Från den 1 september 2021 ger varje fysiskt besök ett avdrag på 300 kronor.
"""


def write(directory: Path, body: str, header_extra: str = "", held: bool = True) -> Path:
    """A rulebook with a held document `seed.txt` (in sources/ beside it) and `body` after
    the header, as Markdown."""
    if held:
        (directory / "sources").mkdir(exist_ok=True)
        (directory / "sources" / "seed.txt").write_text(SEED_TEXT, encoding="utf-8")
    path = directory / "book.md"
    path.write_text(f'''# Bok

```rulelang
rulebook "test/book"
  version "1"
  source seed "seed.txt" "Kostnadsansvar"
  source tidning "Läkartidningen 2022-10"{header_extra}
```

{body}''', encoding="utf-8")
    return path


def load(path: Path) -> rulelang.Rulebook:
    return rulelang.load(str(path))


def errors(path: Path) -> list:
    with pytest.raises(RulebookError) as caught:
        load(path)
    return [d for d in caught.value.diagnostics if d.severity == "error"]


RULES = '''```rulelang
table visits
  key visit_id
  dated by date
  field visit_id: text
  field date: date
output avdrag: money per visits default 0 kr
parameter belopp: money
  value 300 kr status seed cite "seed.txt: ett avdrag på 300 kronor"
rule r defines avdrag then -belopp
```'''

QUOTED = '*"Från den 1 september 2021 ger varje fysiskt besök ett avdrag på 300 kronor."*'


# --------------------------------------------------------------------------- attribution


def test_a_section_names_its_source_and_the_explanation_shows_its_words(tmp_path):
    path = write(tmp_path, f"## A1 Avdrag\n\n{QUOTED}\n\n```rulelang\naccording to seed\n```\n\n{RULES}\n")
    book = load(path)
    tree = book.explain({"visits": [{"visit_id": "V", "date": "2021-09-01"}]}, "avdrag", "V")
    assert tree.provision == "A1 Avdrag (seed.txt)"
    assert tree.document == "seed.txt"
    assert tree.quote == "Från den 1 september 2021 ger varje fysiskt besök ett avdrag på 300 kronor."
    assert tree.to_dict()["document"] == "seed.txt"
    (param,) = [n for n in tree.walk() if n.kind == "parameter"]
    assert (param.facts["cite"], param.facts["unit"], param.facts["status"]) == \
        ("seed.txt: ett avdrag på 300 kronor", "kr", "seed")
    assert tree.facts["rests_on"] == {"seed": ["belopp"]} and tree.facts["basis"] == "seed"


def test_a_section_with_rules_and_no_attribution_is_an_error_naming_the_fix(tmp_path):
    path = write(tmp_path, f"## A1 Avdrag\n\n{QUOTED}\n\n{RULES}\n")
    (error,) = errors(path)
    assert error.message == "section 'A1 Avdrag' carries rules but does not say where its words come from"
    assert "add `according to KEY` naming a source of the header (seed, tidning)" in error.notes[0]
    assert "`according to this rulebook`" in error.notes[0]
    # At the section's first statement that an explanation cites.
    assert error.span.line == path.read_text(encoding="utf-8").splitlines().index(
        "output avdrag: money per visits default 0 kr") + 1


def test_attribution_covers_nested_sections_and_own_text_is_no_source(tmp_path):
    body = (f"## A Kapitel\n\n```rulelang\naccording to seed\n```\n\n### A1 Avdrag\n\n{QUOTED}\n\n{RULES}\n\n"
            "## Tolkning\n\nThe author's reading.\n\n```rulelang\naccording to this rulebook\n"
            "parameter p: boolean\n  value true status interpretation cite \"Tolkning\"\n"
            "rule r2 defines avdrag when p and false then 0 kr\n```\n")
    book = load(write(tmp_path, body))
    rule = book.program.rules["r"]
    assert (rule.provision, rule.citation.document) == ("A1 Avdrag (seed.txt)", "seed.txt")
    own = book.program.rules["r2"]
    assert own.provision == "Tolkning (test/book, the rulebook's own text)"
    assert (own.citation.document, own.citation.quote) == (None, None)


def test_an_unknown_source_is_an_error_with_a_suggestion(tmp_path):
    path = write(tmp_path, f"## A1 Avdrag\n\n{QUOTED}\n\n```rulelang\naccording to sed\n```\n\n{RULES}\n")
    (error,) = errors(path)
    assert error.message == ("no source sed is declared in the rulebook header; did you mean 'seed'?; "
                             "the sources are seed, tidning")


def test_a_section_says_where_its_words_come_from_once(tmp_path):
    path = write(tmp_path, f"## A1\n\n```rulelang\naccording to seed\n```\n\n```rulelang\n"
                           f"according to tidning\n```\n\n{QUOTED}\n\n{RULES}\n")
    messages = [e.message for e in errors(path)]
    assert any(m.startswith("this section already says where its words come from, at ") for m in messages)


def test_a_source_needs_a_short_name(tmp_path):
    path = tmp_path / "book.md"
    path.write_text('# B\n\n```rulelang\nrulebook "test/book"\n  source "seed.txt" "Titel"\n```\n', encoding="utf-8")
    (error,) = errors(path)
    assert error.message == ('a source needs a short name that sections cite it by: '
                             'source NAME "seed.txt" "title"')


def test_a_held_document_that_is_not_there_is_an_error(tmp_path):
    path = write(tmp_path, f"## A1\n\n```rulelang\naccording to seed\n```\n\n{QUOTED}\n\n{RULES}\n", held=False)
    messages = [e.message for e in errors(path)]
    assert "source seed names the file seed.txt, which is in no sources/ folder beside the rulebook or above it" \
        in messages


def test_only_a_bare_file_name_is_looked_up_never_a_path(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("hemligt", encoding="utf-8")
    path = write(tmp_path, "", header_extra=f'\n  source x "{outside}"')
    book = load(path)  # a path is a citation of a public document, not a file to read
    assert str(outside) not in book.checked.chain[-1].documents


# --------------------------------------------------------------------------- quotations


@pytest.mark.parametrize("quotation", [
    # Verbatim across a line break and a list bullet, with an omission.
    '*"Tillägg och avdrag gäller inte för hembesök, hemsjukvårdsbesök och det psykosociala uppdraget."*',
    '*"Från den 1 september 2021 ger varje fysiskt besök [...] 300 kronor."*',
])
def test_a_verbatim_quotation_passes(tmp_path, quotation):
    book = load(write(tmp_path, f"## A1\n\n{quotation}\n\n```rulelang\naccording to seed\n```\n\n{RULES}\n"))
    assert book.program.rules["r"].citation.quote == quotation.strip('*"')


@pytest.mark.parametrize("quotation", [
    '*"Tillägg och avdrag gäller inte för hembesök."*',           # a full stop the source does not have
    '*"tillägg och avdrag gäller inte för hembesök"*',            # a capital changed
    '*"Additions and deductions do not apply to home visits"*',  # a translation
])
def test_a_quotation_that_is_not_verbatim_is_an_error(tmp_path, quotation):
    path = write(tmp_path, f"## A1\n\n{quotation}\n\n```rulelang\naccording to seed\n```\n\n{RULES}\n")
    (error,) = errors(path)
    assert error.message.startswith('the quotation "') and error.message.endswith('" is not in seed.txt')
    assert error.span.line == path.read_text(encoding="utf-8").splitlines().index(quotation) + 1
    assert "write a paraphrase without quotation marks" in error.notes[0]


def test_a_quotation_of_a_document_the_rulebook_does_not_hold_cannot_be_checked(tmp_path):
    book = load(write(tmp_path, '## A1\n\n*"110 kr grundersättning"*\n\n```rulelang\naccording to tidning\n'
                                f"```\n\n{RULES}\n"))
    citation = book.program.rules["r"].citation
    assert (citation.document, citation.quote) == ("Läkartidningen 2022-10", "110 kr grundersättning")


def test_a_section_citing_a_held_document_without_quoting_it_gets_a_warning(tmp_path):
    book = load(write(tmp_path, f"## A1 Avdrag\n\n```rulelang\naccording to seed\n```\n\n{RULES}\n"))
    (warning,) = book.warnings
    assert warning.message == "section 'A1 Avdrag' cites seed.txt but quotes none of its words"


def test_the_rulebooks_own_text_may_quote_a_held_document_but_not_invent_words(tmp_path):
    own = '## Tolkning\n\nThe reading of *"{}"*.\n\n```rulelang\naccording to this rulebook\n```\n\n' + RULES
    assert load(write(tmp_path, own.format("ett avdrag på 300 kronor")))
    (error,) = errors(write(tmp_path, own.format("ett avdrag på 350 kronor")))
    assert error.message == 'the quotation "ett avdrag på 350 kronor" is not in seed.txt'


# --------------------------------------------------------------------------- cites of figures


def test_a_seed_value_must_quote_a_held_document(tmp_path):
    body = RULES.replace('cite "seed.txt: ett avdrag på 300 kronor"', 'cite "Läkartidningen: 300 kr"')
    (error,) = errors(write(tmp_path, f"## A1\n\n{QUOTED}\n\n```rulelang\naccording to seed\n```\n\n{body}\n"))
    assert error.message.startswith("a seed value of belopp must cite a document the rulebook holds")


@pytest.mark.parametrize("according, warned", [
    ("this rulebook", True),   # the rulebook's own text: verified where?
    ("seed", True),            # a held document: its figures are seed, not verified
    ("seed, tidning", False),  # Läkartidningen, a public source the figure was verified in
])
def test_a_verified_value_stands_in_a_section_naming_a_public_source(tmp_path, according, warned):
    body = RULES.replace('value 300 kr status seed cite "seed.txt: ett avdrag på 300 kronor"',
                         'value 300 kr status verified cite "Läkartidningen 2022-10: 300 kr"')
    book = load(write(tmp_path, f"## A1 Avdrag\n\n{QUOTED}\n\n```rulelang\naccording to {according}\n```\n\n"
                                f"{body}\n"))
    found = [w for w in book.warnings if "verified value" in w.message]
    assert bool(found) is warned
    if warned:
        assert found[0].message == ("a verified value of belopp stands in section 'A1 Avdrag', which names no "
                                    "public source")
        assert found[0].span.line == path_line(tmp_path, "value 300 kr status verified")


def path_line(directory: Path, text: str) -> int:
    (path,) = directory.glob("*.md")
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


def test_a_cite_naming_a_held_document_gives_its_words(tmp_path):
    body = RULES.replace("ett avdrag på 300 kronor", "ett avdrag på 350 kronor")
    (error,) = errors(write(tmp_path, f"## A1\n\n{QUOTED}\n\n```rulelang\naccording to seed\n```\n\n{body}\n"))
    assert error.message == 'the cite of belopp quotes "ett avdrag på 350 kronor", which is not in seed.txt'


def test_a_cite_may_quote_words_and_add_a_comment_outside_them(tmp_path):
    body = RULES.replace('"seed.txt: ett avdrag på 300 kronor"',
                         '"seed.txt: «ett avdrag på 300 kronor» per besök, läst som kostnadsansvar"')
    book = load(write(tmp_path, f"## A1\n\n{QUOTED}\n\n```rulelang\naccording to seed\n```\n\n{body}\n"))
    assert book.program.parameters["belopp"].values[0].cite.startswith("seed.txt: «")


# --------------------------------------------------------------------------- every rulebook


def test_the_held_documents_are_the_shared_seeds_byte_for_byte():
    """rulebooks/sources/ keeps the source documents the rulebooks quote; where the shared
    seeds are present they are the same files."""
    held = sorted(p.name for p in SOURCES.glob("*.txt"))
    assert held == ["000_fd4f791d9ed7e511.txt", "001_d4b7588c97b7b524.txt", "002_dc886bed87cc92bb.txt",
                    "003_b091a62e9edaa82f.txt", "004_b57c07816f58923b.txt"]
    if SEEDS.is_dir():
        for name in held:
            assert (SOURCES / name).read_bytes() == (SEEDS / name).read_bytes(), name


@pytest.fixture(scope="module", params=sorted(all_rulebook_ids()))
def book(request):
    return rulelang.load(request.param)


def test_every_quotation_of_every_rulebook_stands_in_its_document(book):
    """Independently of `check`: every italic quotation of every section, prose-only sections
    included, is found verbatim in a held document of the rulebook."""
    for layer in book.checked.chain:
        documents = {name: text for name, text in layer.documents.items() if text}
        for provision in layer.provisions:
            for quotation in provision.quotes:
                cited = [s.document for s in provision.sources] or list(documents)
                held = [d for d in cited if d in documents]
                if not held:
                    continue  # a document the rulebook does not hold (declared as a citation)
                assert any(quoted_in(quotation.text, documents[d]) for d in held), \
                    (display_path(Path(quotation.span.file)), quotation.span.line, quotation.text)


SWEDISH_NUMBERS = {1: "en", 2: "två", 3: "tre", 4: "fyra", 5: "fem", 6: "sex", 7: "sju", 8: "åtta",
                   9: "nio", 10: "tio"}


def _written_forms(value: str, unit) -> set:
    """How a figure is written in a Swedish document: 300, 980 000 000, 12,5 (miljoner), tre."""
    number = Fraction(value)
    forms = {value}
    if number.denominator == 1:
        whole = int(number)
        forms |= {str(whole), f"{whole:,}".replace(",", " ")}
        if whole in SWEDISH_NUMBERS:
            forms.add(f" {SWEDISH_NUMBERS[whole]} ")
        if whole % 100_000 == 0 and whole >= 1_000_000:
            forms.add(f"{whole / 1_000_000:.1f}".replace(".", ","))
    return forms


def test_no_explanation_cites_a_document_for_a_figure_or_words_it_does_not_contain(book):
    """Every example's explanations, walked node by node: a quotation shown as a provision's
    words stands in the document named beside it; a seed figure is in the words its cite
    quotes from a document of its own provision."""
    checked = 0
    documents = {name: text for layer in book.checked.chain for name, text in layer.documents.items() if text}
    for _, _, tree in explained_examples(book):
        for node in tree.walk():
            if node.quote and node.document in documents:
                for line in node.quote.split("\n"):
                    assert quoted_in(line, documents[node.document]), (node.provision, line)
            if node.kind != "parameter":
                continue
            checked += 1
            facts = node.facts
            assert facts["cite"], (node.label, node.source)
            cited = cited_document(facts["cite"], documents)
            if cited is not None:
                name, words = cited
                assert all(quoted_in(w, documents[name]) for w in words), (node.label, facts["cite"])
            if facts["status"] == "seed":
                assert cited is not None, (node.label, facts["cite"])
                name, words = cited
                assert name in node.provision, (node.label, node.provision, name)
                text = normalised(" ".join(words))
                value = str(node.value)
                forms = _written_forms(value, facts["unit"]) if re.fullmatch(r"-?\d+(\.\d+)?", value) else {value}
                assert any(form in text for form in forms), (node.label, value, facts["cite"])
    assert checked, "no parameter value was explained"


def test_a_default_is_cited_as_declared_with_the_output_not_as_ordered_by_its_words():
    # Clinic A takes no part in collaboration outside patient care: no rule of STH21.1's
    # samverkansersättning applies and the output's default, 0 kr, stands. STH21.1's words
    # order a payment; they are shown as the section the output is declared in.
    from rulelang.interfaces import render

    book = rulelang.load("stockholm/hlv-2021")
    tree = book.explain(str(ROOT / "examples" / "stockholm-2021.json"), "samverkansersättning", "A",
                        on="2021-09-30")
    assert tree.value == "0.00"
    lines = render.explanation_text(tree).splitlines()
    at = lines.index("no rule applies: the output's default, declared with the output in")
    assert lines[at + 1].startswith("  § STH21.1 Geografiskt samordningsansvar")
    assert "No rule applies: the output's default, declared with the output in" in \
        render.explanation_html(tree, "A")
