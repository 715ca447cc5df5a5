"""`rulelang fmt`: canonical layout of code blocks, prose untouched, idempotent, never a change
of meaning; the six rulebooks are already formatted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rulelang.interfaces.cli import main
from rulelang.language import literate
from rulelang.language.formatter import _meaning, _tokens, format_block, format_rulebook
from rulelang.language.loader import all_rulebook_ids
from rulelang.language.parser import parse_block
from rulelang.language.syntax import Provision

ROOT = Path(__file__).resolve().parent.parent

MESSY = '''\
rule   x   defines  tillägg  from 2021-02-01
      when mode=physical  and(age<6 or age >60)
        then  belopp[ kind , profession ]*  2  + -1 kr
\t# a comment about p
parameter p : money
  value 300kr from 2021-01-01
     status illustrative cite "x  y"
   row 0 to 5 : 1 kr


definition d per visits = age( birth_date ,date ) >= 3 and x in { "a" ,"b" }
example "e"
    given visits: {visit_id : "V1", date: 2021-02-01,
                   mode: physical}
    expect tillägg of "V1" = 10%'''

CANONICAL = '''\
rule x defines tillägg from 2021-02-01
  when mode = physical and (age < 6 or age > 60)
  then belopp[kind, profession] * 2 + -1 kr
# a comment about p
parameter p: money
  value 300 kr from 2021-01-01
    status illustrative cite "x  y"
    row 0 to 5: 1 kr

definition d per visits = age(birth_date, date) >= 3 and x in {"a", "b"}
example "e"
  given visits: {visit_id: "V1", date: 2021-02-01,
                 mode: physical}
  expect tillägg of "V1" = 10 %'''


def test_a_messy_block_gets_the_canonical_layout_and_keeps_its_meaning():
    assert format_block(MESSY) == CANONICAL
    provision = Provision("", "", 0)
    assert _meaning(parse_block(MESSY, "a", 0, provision)) == _meaning(parse_block(CANONICAL, "b", 0, provision))


def test_formatting_is_idempotent():
    assert format_block(CANONICAL) == CANONICAL


def blocks_of_the_rulebooks() -> list:
    return [block.text.rstrip("\n") for rid in all_rulebook_ids()
            for block in literate.code_blocks((ROOT / "rulebooks" / f"{rid}.md").read_text(encoding="utf-8"))]


BLOCKS = blocks_of_the_rulebooks()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_canonical_layout_does_not_depend_on_the_spaces_within_lines(data):
    """Any spacing between the tokens of a line (and extra blank lines) formats the same."""
    block = data.draw(st.sampled_from(BLOCKS))
    lines = []
    for line in block.split("\n"):
        stripped = line.strip()
        tokens = _tokens(stripped) if stripped and not stripped.startswith("#") else None
        if tokens:
            gaps = data.draw(st.lists(st.integers(1, 3), min_size=len(tokens), max_size=len(tokens)))
            texts = [t.text.replace(" kr", " " * gap + "kr" if gap > 1 else "kr").replace(" %", "%")
                     if t.kind == "amount" else t.text for t, gap in zip(tokens, gaps)]
            line = line[:len(line) - len(line.lstrip())] + "".join(
                text + " " * gap for text, gap in zip(texts, gaps)).rstrip()
        lines.append(line)
        if not stripped and data.draw(st.booleans()):
            lines.append(" " * data.draw(st.integers(0, 3)))  # a run of blank lines is one
    assert format_block("\n".join(lines)) == format_block(block)


def test_the_six_rulebooks_are_formatted(capsys):
    assert main(["fmt", "--check"]) == 0
    assert "6 rulebook(s) already formatted" in capsys.readouterr().out


def test_fmt_rewrites_code_blocks_and_leaves_prose_alone(tmp_path, capsys):
    path = tmp_path / "book.md"
    prose = "# Book\n\nPros   med  extra    mellanrum.\n\n    indented prose stays\n\n"
    path.write_text(prose + "```rulelang\n" + MESSY + "\n```\n\nMer   pros.\n", encoding="utf-8")
    assert main(["fmt", "--check", str(path)]) == 1
    assert "would reformat" in capsys.readouterr().out
    assert main(["fmt", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == prose + "```rulelang\n" + CANONICAL + "\n```\n\nMer   pros.\n"
    assert main(["fmt", "--check", str(path)]) == 0


def test_fmt_leaves_a_rulebook_that_does_not_parse_untouched(tmp_path, capsys):
    path = tmp_path / "book.md"
    text = "# Book\n\n```rulelang\nrule x defines y then 110,50 kr\n```\n"
    path.write_text(text, encoding="utf-8")
    assert main(["fmt", str(path)]) == 1
    err = capsys.readouterr().err
    assert "book.md:4:" in err and "110.50" in err and "not formatted" in err
    assert path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("rulebook", all_rulebook_ids())
def test_formatting_a_rulebook_changes_no_statement(tmp_path, rulebook):
    source = ROOT / "rulebooks" / f"{rulebook}.md"
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    text = copy.read_text(encoding="utf-8").replace("\n  then ", "\n      then ").replace(" = ", "  =  ")
    result = format_rulebook(text)
    assert result.kept_blocks == ()
    provision = Provision("", "", 0)
    for old, new in zip(literate.code_blocks(text), literate.code_blocks(result.text)):
        assert _meaning(parse_block(old.text, "a", 0, provision)) == _meaning(parse_block(new.text, "b", 0, provision))
