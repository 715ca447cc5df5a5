"""Build small rulebooks in a temporary directory for tests of the language's semantics."""

from __future__ import annotations

from pathlib import Path

import rulelang

HEADER = '''# {title}

```rulelang
rulebook "test/{name}"
  version "1"{in_force} source src "Test source test-source"
according to src
```

'''


def write_rulebook(directory: Path, body: str, name: str = "book", title: str = "Test",
                   in_force: str = "") -> Path:
    """A literate rulebook whose single section holds `body` as one rulelang block; with
    `in_force` (a date), the rulebook is in force from that day."""
    path = directory / f"{name}.md"
    header = HEADER.format(title=title, name=name, in_force=f" in force from {in_force}" if in_force else "")
    path.write_text(header + f"## 1 Provision\n\n```rulelang\n{body}\n```\n", encoding="utf-8")
    return path


def rulebook_library(root: Path, monkeypatch, base_id: str, base_text: str):
    """A RULELANG_PATH directory holding one base rulebook; returns `add(id, text)`, which
    writes another rulebook there and gives its display path (`add.root`, `add.base`)."""
    from rulelang.language.loader import display_path

    monkeypatch.setenv("RULELANG_PATH", str(root))

    def add(rulebook_id: str, text: str) -> str:
        path = root / f"{rulebook_id}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return display_path(path)

    add.root = root
    add.base = add(base_id, base_text)
    return add


def load(directory: Path, body: str, name: str = "book") -> rulelang.Rulebook:
    return rulelang.load(str(write_rulebook(directory, body, name)))



# Clinics and persons keyed by whole numbers; a line per person (kod 1: 5 kr to the listing
# clinic) and a clinic-level line (100 kr to clinic 9), with the data that gives them.
INTEGER_CLINICS = ("table clinics\n  key clinic_id\n  field clinic_id: integer\n"
                   "table persons\n  key person_id\n  field person_id: integer\n  field clinic_id: clinics\n"
                   "  field kod: integer\n"
                   "output ersättning: money per persons default 0 kr paid to clinic_id\n"
                   "rule r defines ersättning when kod = 1 then 5 kr\n"
                   "output grundbelopp: money per clinics default 0 kr paid to clinic_id\n"
                   "rule g defines grundbelopp when clinic_id = 9 then 100 kr")


def write_integer_clinics(directory: Path) -> tuple:
    """(the INTEGER_CLINICS rulebook, loaded; a data directory for it as CSV)."""
    book = rulelang.load(str(write_rulebook(directory, INTEGER_CLINICS, name="integer_clinics",
                                            in_force="2021-01-01")))
    data = directory / "integer-clinics"
    data.mkdir()
    (data / "clinics.csv").write_text("clinic_id\n10\n9\n", encoding="utf-8")
    (data / "persons.csv").write_text("person_id,clinic_id,kod\n100,10,1\n7,9,1\n8,9,2\n", encoding="utf-8")
    return book, data


ITEMS = '''
table items
  key id
  field id: text
  field a: boolean
  field b: boolean
  field c: boolean
  field n: integer
'''


# A one-output rulebook over a table with a money input, shared by the CLI and API tests.
MINI = '''# Mini

```rulelang
rulebook "test/mini"
  title "Mini"
  version "1"
  in force from 2021-01-01
  source mini "Mini source"
according to mini
```

## M1 Belopp

```rulelang
table claims
  key claim_id
  dated by date
  field claim_id: text
  field date: date
  field amount: money

output ersättning: money per claims

rule dubbel defines ersättning
  then amount * 2
```
'''
