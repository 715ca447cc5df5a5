"""Golden explanations: one amount of each rulebook in text, JSON and HTML, and two more
hlv-2021 visits in JSON.

The golden files in tests/golden/ are generated with

    RULELANG_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden.py

and reviewed by hand against the provisions of the rulebooks (and, for hlv-2021, the 2016
rulebook it amends). Each case also asserts on the tree the facts that matter, the amount
computed by hand from the provision's own arithmetic, and every node's source line is
checked against the rulebook text, so a golden file regenerated from a wrong evaluator
does not pass by confirming itself.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import rulelang
from rulelang.interfaces import render
from rulelang.interfaces.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
BOOK = "stockholm/hlv-2021"
EXAMPLE = "examples/stockholm-2021.json"
UPDATE = os.environ.get("RULELANG_UPDATE_GOLDEN") == "1"

CASES = {
    "avdrag-V1": ("avdrag", "V1"),
    "tillaggsersattning-V3": ("tilläggsersättning", "V3"),
    "tillaggsersattning-V4": ("tilläggsersättning", "V4"),
}

# One amount of each rulebook, in every format: (rulebook, input, output, record, --on).
EVERY_RULEBOOK = {
    "avdrag-V1": (BOOK, EXAMPLE, "avdrag", "V1", None),
    "hlv-2016-listningsersattning-P1": ("stockholm/hlv-2016", "examples/stockholm-2016.json",
                                        "listningsersättning", "P1", "2016-03-15"),
    "kroninnovation-listningsersattning-P6": ("stockholm/kroninnovation-2016", "examples/kroninnovation-2016.json",
                                              "listningsersättning", "P6", "2016-03-31"),
    "vg-vardtyngd-V1": ("vastra-gotaland/vg-primarvard", "examples/vastra-gotaland-2017.json",
                        "vårdtyngd", "V1", "2017-03-15"),
    "narvard-narsjukvardsteam-FYRA": ("skaraborg/narvard-2014", "examples/skaraborg-2014.json",
                                      "närsjukvårdsteam", "FYRA", "2014-06-01"),
    "pmj-patientkontrakt-Z": ("jamtland/patientmiljarden-2018", "examples/jamtland-2018.json",
                              "patientkontrakt", "Z", "2018-06-30"),
}
FORMATS = {"json": "json", "text": "txt", "html": "html"}


pytestmark = pytest.mark.usefixtures("at_repo_root")


def explain_cli(capsys, output: str, record: str, book: str = BOOK, data: str = EXAMPLE, on=None,
                form: str = "json") -> str:
    code = main(["explain", book, "--input", data, "--output", output, "--record", record,
                 "--format", form] + (["--on", on] if on else []))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    return captured.out


def golden(name: str, produced: str, suffix: str = "json") -> str:
    path = GOLDEN / f"{name}.{suffix}"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(produced, encoding="utf-8")
    return path.read_text(encoding="utf-8")


def walk(node):
    yield node
    for child in node["children"]:
        yield from walk(child)


def child(node, kind: str, label: str):
    found = [c for c in node["children"] if c["kind"] == kind and c["label"] == label]
    assert len(found) == 1, (kind, label, [(c["kind"], c["label"]) for c in node["children"]])
    return found[0]


def nodes(tree, kind: str, label: str) -> list:
    return [n for n in walk(tree) if n["kind"] == kind and n["label"] == label]


def source_line(node) -> tuple[str, str]:
    """The rulebook file a node cites and the text of the line it cites."""
    match = re.fullmatch(r"(rulebooks/[\w/-]+\.md):(\d+)", node["source"])
    assert match, node["source"]
    lines = (ROOT / match.group(1)).read_text(encoding="utf-8").splitlines()
    return match.group(1), lines[int(match.group(2)) - 1].strip()


def assert_every_node_cites_its_own_line(tree: dict) -> None:
    """Regenerated golden files carry new line numbers: check each node's against the rulebook."""
    for node in walk(tree):
        file, line = source_line(node)
        kind, label = node["kind"], node["label"]
        if kind in ("rule", "exception"):
            assert re.match(rf"(amend )?{kind} {label} ", line), (label, line)
        elif kind == "output":
            # The output cites what decided it: the deciding rule or exception, or its declaration.
            assert re.match(rf"(amend )?(rule|exception) {node['decided_by']} ", line) or \
                line.startswith(f"output {label}:"), line
        elif kind == "condition":
            assert line.startswith("when "), line
        elif kind == "formula":
            assert line.startswith("then "), line
        elif kind == "parameter":
            assert line.startswith("value "), line
        elif kind == "definition":
            assert line.startswith(f"definition {label} "), line
        elif kind == "lookup":
            assert label in line, (label, line)
        elif kind == "input":
            assert line.startswith(f"field {label.split('.')[1]}: "), line
        if node["provision"] is not None:
            assert {"document", "quote"} <= set(node), node["label"]


@pytest.mark.parametrize("name", list(CASES))
def test_every_golden_node_cites_the_line_it_comes_from(name):
    tree = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    assert_every_node_cites_its_own_line(tree)
    for node in walk(tree):
        file = source_line(node)[0]
        if node["kind"] == "input":
            # The tables are the 2016 rulebook's, inherited by the 2021 one.
            assert file == "rulebooks/stockholm/hlv-2016.md", node["source"]
        elif file == "rulebooks/stockholm/hlv-2016.md" and node["provision"]:
            # Inherited from 2016: the add-on for unlisted patients (STH16.12) and its reading
            # S3, the listing helpers and readings S1–S2; everything else is 2021's own.
            assert node["provision"].startswith(("STH16.12", "Tolkningar", "Listning på besöksdagen")), \
                (node["kind"], node["label"], node["provision"])


@pytest.mark.parametrize("name", list(CASES))
def test_explanation_matches_golden(capsys, name):
    output, record = CASES[name]
    produced = explain_cli(capsys, output, record)
    assert produced == golden(name, produced)


@pytest.mark.parametrize("name", list(CASES))
def test_explanation_is_byte_identical_across_runs_and_loads(capsys, name):
    output, record = CASES[name]
    first = explain_cli(capsys, output, record)
    second = explain_cli(capsys, output, record)
    assert first == second
    # Two separately loaded Rulebook objects, through the API, give the same bytes as the CLI.
    book_a = rulelang.load(BOOK)
    book_b = rulelang.load(BOOK)
    assert book_a is not book_b and book_a.program is not book_b.program
    text_a = render.explanation_json(book_a.explain(EXAMPLE, output, record))
    text_b = render.explanation_json(book_b.explain(EXAMPLE, output, record))
    assert text_a == text_b == first
    # Explaining again on the same book (after other explanations) changes nothing.
    book_a.explain(EXAMPLE, "avdrag", "V5")
    assert render.explanation_json(book_a.explain(EXAMPLE, output, record)) == first


def test_golden_avdrag_v1():
    """V1: P1 (listed at A) has a physical visit at the clinic C on 2021-09-15, general
    assignment. STH21.6.4: from 2021-09-01 each physical visit of an own listed patient at
    another clinic gives a deduction of 300 kr → −300.00, charged to A (the listing clinic).
    None of the exceptions applies: the koncern exemption is off (reading 1) and A (K1) and C
    (K2) differ anyway; the visit is at the clinic, not home care, not psychosocial."""
    tree = json.loads((GOLDEN / "avdrag-V1.json").read_text(encoding="utf-8"))
    assert tree["kind"] == "output" and tree["label"] == "avdrag"
    assert tree["value"] == "-300.00"
    assert tree["record"] == "V1" and tree["date"] == "2021-09-15"
    assert tree["paid_to"] == "A"
    assert tree["decided_by"] == "avdrag_fysiskt_besök_hos_annan"
    assert tree["provision"].startswith("STH21.6.4 ")
    rule = child(tree, "rule", "avdrag_fysiskt_besök_hos_annan")
    assert rule["applied"] is True and rule["value"] == "-300.00"
    assert rule["valid_from"] == "2021-09-01" and rule["valid_to"] is None
    exceptions = {c["label"]: c for c in rule["children"] if c["kind"] == "exception"}
    assert set(exceptions) == {"avdrag_inom_koncernen", "avdrag_besök_i_hemmet_eller_annan_plats",
                               "hemsjukvårdsbesök", "psykosociala_uppdraget", "utomlänspatient",
                               "kostnadsansvaret_upphör_efter_april_2023"}
    assert all(e["applied"] is False and e["value"] is None for e in exceptions.values())
    # P1 has no county code: not an out-of-county patient (STH21.6.9, reading 6); the end of
    # the cost responsibility (reading 8's alternative) is not in force before 2023-05-01.
    assert exceptions["utomlänspatient"]["reason"] == "its condition does not hold"
    assert exceptions["kostnadsansvaret_upphör_efter_april_2023"]["in_force"] is False
    assert exceptions["avdrag_besök_i_hemmet_eller_annan_plats"]["provision"].startswith("STH21.6.5 ")
    assert exceptions["psykosociala_uppdraget"]["provision"].startswith("STH21.6.6 ")
    condition = [c for c in rule["children"] if c["kind"] == "condition"]
    assert len(condition) == 1 and condition[0]["value"] is True
    formula = [c for c in rule["children"] if c["kind"] == "formula"]
    assert len(formula) == 1 and formula[0]["value"] == "-300.00"
    # The parameter: 300 kr from 2021-09-01, cited to the seed; the value read ends where the
    # cost responsibility of reading 8 begins to be a reading.
    (param,) = nodes(tree, "parameter", "avdrag_fysiskt_besök")
    assert param["value"] == "300.00"
    assert (param["valid_from"], param["valid_to"], param["status"]) == ("2021-09-01", "2023-04-30", "seed")
    # The listing found on the visit date is P1's listing at A, open since 2015-01-01.
    (lookup,) = [n for n in walk(tree) if n["kind"] == "lookup"]
    assert lookup["on"] == "2021-09-15" and lookup["valid_from"] == "2015-01-01" and lookup["valid_to"] is None
    inputs = {(n["label"], n["record"]): n["value"] for n in walk(tree) if n["kind"] == "input"}
    assert inputs[("visits.clinic_id", "V1")] == "C"
    assert inputs[("listings.clinic_id", lookup["record"])] == "A"


def test_golden_tillaggsersattning_v3():
    """V3: P2 (listed at C, koncern K2) has a video visit with A (koncern K1) on 2021-03-02.
    STH21.6.2: a video visit by a patient not listed at the clinic nor in its koncern gives an
    add-on whose amount the source does not name; 2022's 300 kr is taken for 2021 (value
    2021-02-01 – 2021-12-31, an interpretation) → 300.00, paid to A. STH21.6.1 (physical) and
    STH21.6.3 (unlisted) do not hold; no exception applies."""
    tree = json.loads((GOLDEN / "tillaggsersattning-V3.json").read_text(encoding="utf-8"))
    assert tree["value"] == "300.00"
    assert tree["paid_to"] == "A"
    assert tree["decided_by"] == "videobesök_utanför_koncernen"
    assert tree["provision"].startswith("STH21.6.2 ")
    rules = {c["label"]: c for c in tree["children"] if c["kind"] == "rule"}
    assert set(rules) == {"fysiskt_besök_av_annans_listade", "videobesök_utanför_koncernen", "olistad_patient"}
    assert rules["videobesök_utanför_koncernen"]["applied"] is True
    assert rules["fysiskt_besök_av_annans_listade"]["applied"] is False
    assert rules["fysiskt_besök_av_annans_listade"]["reason"] == "its condition does not hold"
    assert rules["olistad_patient"]["applied"] is False
    assert not any(n["applied"] for n in walk(tree) if n["kind"] == "exception")
    (param,) = nodes(tree, "parameter", "tilläggsersättning_videobesök")
    assert param["value"] == "300.00"
    assert (param["valid_from"], param["valid_to"], param["status"]) == ("2021-02-01", "2021-12-31", "interpretation")
    # Not listed here (C ≠ A) and not in A's koncern (K2 ≠ K1).
    (listed_here,) = [n for n in nodes(tree, "definition", "listad_här") if not n.get("explained_above")]
    assert listed_here["value"] is False
    (in_koncern,) = [n for n in nodes(tree, "definition", "listad_inom_koncernen")
                     if not n.get("explained_above")]
    assert in_koncern["value"] is False


def test_golden_tillaggsersattning_v4():
    """V4: P3 (listed nowhere) has a physical visit at C on 2021-10-05 in the psychosocial
    assignment. STH21.6.3 would pay 300 kr for an unlisted patient's physical visit, but
    STH21.6.6 excludes the psychosocial assignment → 0.00, decided by the exception
    psykosociala_uppdraget. The home-visit and home-care exceptions do not apply."""
    tree = json.loads((GOLDEN / "tillaggsersattning-V4.json").read_text(encoding="utf-8"))
    assert tree["value"] == "0.00"
    assert tree["paid_to"] == "C"
    assert tree["decided_by"] == "psykosociala_uppdraget"
    assert tree["provision"].startswith("STH21.6.6 ")
    rules = {c["label"]: c for c in tree["children"] if c["kind"] == "rule"}
    olistad = rules["olistad_patient"]
    assert olistad["applied"] is False and olistad["overridden_by"] == "psykosociala_uppdraget"
    excs = {c["label"]: c for c in olistad["children"] if c["kind"] == "exception"}
    assert excs["psykosociala_uppdraget"]["applied"] is True
    assert excs["psykosociala_uppdraget"]["value"] == "0.00"
    assert excs["hembesök"]["applied"] is False
    assert excs["hemsjukvårdsbesök"]["applied"] is False
    assert excs["olistad_besök_på_annan_plats"]["applied"] is False
    # Every exception that applies anywhere in the tree is the psychosocial one.
    assert {n["label"] for n in walk(tree) if n["kind"] == "exception" and n["applied"]} == {"psykosociala_uppdraget"}
    assert not any(n["kind"] == "default" for n in tree["children"])


# --------------------------------------------------------------------------- every rulebook


@pytest.mark.parametrize("form", list(FORMATS))
@pytest.mark.parametrize("name", list(EVERY_RULEBOOK))
def test_one_amount_of_every_rulebook_matches_its_golden_file_in_every_format(capsys, name, form):
    book, data, output, record, on = EVERY_RULEBOOK[name]
    produced = explain_cli(capsys, output, record, book, data, on, form)
    assert produced == golden(name, produced, FORMATS[form])


def golden_tree(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(EVERY_RULEBOOK))
def test_every_node_of_every_golden_tree_cites_its_own_line(name):
    tree = golden_tree(name)
    assert tree["format"] == "rulelang.explanation/2"
    assert_every_node_cites_its_own_line(tree)


def test_golden_hlv_2016_listing_rests_on_illustrative_amounts():
    """P1 (born 1950-03-14, CNI 1.5, ACG 1.40) listed at A; March 2016: 66 years old on
    2016-03-31, age band 65–74: 200 kr; + 1.5 × 20 kr CNI = 30 kr; + 1.40 × 0 kr (no ACG
    weighting in 2016) = 230.00 kr. The age table and the CNI amount are illustrative."""
    tree = golden_tree("hlv-2016-listningsersattning-P1")
    assert (tree["value"], tree["paid_to"], tree["basis"]) == ("230.00", "A", "illustrative")
    assert tree["rests_on"] == {"verified": ["acg_ersättning_per_vikt"],
                                "illustrative": ["cni_ersättning_per_poäng", "listningsersättning_per_ålder"]}
    # P1 has an ACG weight: the reading for persons without one was never read.
    assert "acg_vikt_när_den_saknas" not in json.dumps(tree)
    assert tree["headline"].startswith("listningsersättning = 230.00 kr [persons P1, 2016-03-15] — basis: "
                                       "ILLUSTRATIVE")
    # The weighting comes from a document the rulebook cites but does not hold.
    assert tree["document"] == "Vårdgivarguiden 2016-09: Simulering av vårdtyngdsersättning"
    assert tree["quote"] is None
    (formula,) = [n for n in walk(tree) if n["kind"] == "formula"]
    assert formula["formula"] == "200.00 kr + 20.00 kr × 1.5 + 0.00 kr × 1.4 rounded half up to öre"
    assert formula["steps"][-1] == "230.00 kr"
    (row,) = [n for n in walk(tree) if n["kind"] == "parameter" and n["parameter"] == "listningsersättning_per_ålder"]
    assert (row["label"], row["value"], row["unit"], row["status"]) == \
        ("listningsersättning_per_ålder[65 to 74]", "200.00", "kr", "illustrative")
    text = (GOLDEN / "hlv-2016-listningsersattning-P1.txt").read_text(encoding="utf-8")
    assert text.splitlines()[0] == tree["headline"]


def test_golden_kroninnovation_listing_is_rounded_half_up_to_the_ore():
    """P6 (born 2013-02-01, ACG 1.23456) at the pilot clinic K, March 2016: 3 years old, band
    0–6: the general amount is 150 kr (no CNI, read as 0 by reading S7; the general model's
    ACG amount at the average weight, 0 kr in 2016). Reading K3 raises it by
    (0.65 / 0.35) / (0.60 / 0.40) = 26/21, reading K2 weights 80 % of it with ACG, no home care:
    150 kr × 26/21 × (20 % + 80 % × 1.23456) = 3900/21 kr × 1.187648 = 4631.8272/21 kr
    = 220.5632 kr → 220.56 kr."""
    tree = golden_tree("kroninnovation-listningsersattning-P6")
    assert (tree["value"], tree["decided_by"], tree["basis"]) == ("220.56", "acg_viktad_listning", "illustrative")
    assert tree["rests_on"] == {
        "verified": ["acg_ersättning_per_vikt", "allmänna_modellens_listningsandel", "andel_acg_viktad"],
        "interpretation": ["cni_när_det_saknas", "pilotens_acg_viktning", "pilotens_fasta_andel", "pilotens_sista_dag"],
        "illustrative": ["cni_ersättning_per_poäng", "listningsersättning_per_ålder"]}
    formulas = [n for n in walk(tree) if n["kind"] == "formula"]
    pilot = next(f for f in formulas if f["steps"][-1] == "220.56 kr")
    assert "220.5632 kr rounded half up to öre" in pilot["steps"]
    roundings = [(n["before"], n["value"], n["mode"]) for n in walk(tree) if n["kind"] == "rounding"]
    assert ("220.5632", "220.56", "half up") in roundings
    assert tree["document"] == "000_fd4f791d9ed7e511.txt"
    assert tree["quote"].startswith("Att testa effekten av att en större del av ersättningen utgår för listningen")


def test_golden_vg_care_burden_lists_its_contributors():
    """V1, paid in March 2017 on the listing of 2017-02-28: A (woman, 36) 0.40 points × ACG 1.2
    = 0.48; B (man, 77) 0.85 × 2.0 = 1.70; C (girl, 1) 0.60 × 1.00 (no weight) = 0.60; 2.78
    ACG points × 294 kr = 817.32 kr. The weights are taken as given (reading V4), and the
    persons, without a county code, count as the region's (6.2, länskod 14)."""
    tree = golden_tree("vg-vardtyngd-V1")
    assert (tree["value"], tree["paid_to"], tree["basis"]) == ("817.32", "V1", "illustrative")
    assert tree["rests_on"] == {
        "verified": ["ersättning_per_acg_poäng", "regionens_länskod"],
        "interpretation": ["acg_vikt_när_den_saknas", "acg_vikter_normaliseras", "listning_sista_dagen_månaden_före",
                           "vårdtyngd_beräknas_på"],
        "illustrative": ["listningspoäng_per_kön_och_ålder"]}
    (aggregate,) = [n for n in walk(tree) if n["kind"] == "aggregate"]
    assert aggregate["value"] == "2.78" and aggregate["records"] == 3
    assert [(c["person_id"], c["value"]) for c in aggregate["contributors"]] == [("A", "0.48"), ("B", "1.7"), ("C", "0.6")]
    assert {c["table"] for c in aggregate["contributors"]} == {"listings"}
    listing_day = [n for n in aggregate["children"] if n["kind"] == "definition" and n["label"] == "listningsdag"]
    assert listing_day and listing_day[0]["value"] == "2017-02-28"
    weights = sorted(n["label"] for n in aggregate["children"] if n["kind"] == "parameter")
    assert weights == ["acg_vikt_när_den_saknas", "listning_sista_dagen_månaden_före",
                       "listningspoäng_per_kön_och_ålder[F, 0 to 4]", "listningspoäng_per_kön_och_ålder[F, 20 to 49]",
                       "listningspoäng_per_kön_och_ålder[M, 75 to 84]", "regionens_länskod", "vårdtyngd_beräknas_på"]
    html = (GOLDEN / "vg-vardtyngd-V1.html").read_text(encoding="utf-8")
    assert html.count("<td>listings</td>") >= 3  # every contributor, in the HTML too


def test_golden_narvard_counts_four_of_six_criteria():
    """FYRA (born 1930-05-01) on 2014-06-01: three chronic diagnoses ✔, three admissions ✔,
    two standing medicines ✘, manages personal care ✘, 84 years ✔, home care ✔: four of six."""
    tree = golden_tree("narvard-narsjukvardsteam-FYRA")
    assert tree["value"] is True and tree["basis"] == "interpretation"
    # The team's area is read too: the reading taken (NVS.1.5) is that it is not a criterion.
    assert tree["rests_on"] == {"interpretation": ["cancer_räknas_som_kronisk_diagnos",
                                                   "närsjukvårdsteamet_endast_västra_skaraborg"]}
    (criteria,) = [n for n in walk(tree) if n["kind"] == "criteria"]
    assert (criteria["held"], criteria["threshold"]) == (4, 4)
    assert [c["value"] for c in criteria["children"]] == [True, True, False, False, True, True]
    assert tree["quote"] == "Minst fyra av dessa kriterier måste uppfyllas för att bli inskriven i teamet."
    assert tree["document"] == "003_b091a62e9edaa82f.txt"


def test_golden_patientmiljard_shows_the_outputs_it_splits():
    """Region Z, Jämtland Härjedalen (county 23), 129 806 inhabitants, 2018: 980 000 000 kr ×
    129 806 / 10 120 242 = 12 569 845.66… → 12 569 845.66 kr (reading J3: 2018 by the formula,
    not the table's rounded 12,6 Mkr; to the öre, reading J6); the guarantee's half 6 284 922.83 kr; the contracts the
    rest: 12 569 845.66 − 6 284 922.83 = 6 284 922.83 kr. The action plan was sent (PMJ.4)."""
    tree = golden_tree("pmj-patientkontrakt-Z")
    assert (tree["value"], tree["decided_by"], tree["basis"]) == ("6284922.83", "resten_till_patientkontrakt",
                                                                 "interpretation")
    assert tree["rests_on"] == {"seed": ["nationell_ram"],
                                "verified": ["jämtlands_länskod", "rikets_befolkning_2017_12_31"],
                                "interpretation": ["andel_förstärkt_vårdgaranti", "maxbelopp_i_hela_kronor",
                                                   "tabellen_även_2018"]}
    rule = child(tree, "rule", "resten_till_patientkontrakt")
    exceptions = {c["label"]: c for c in rule["children"] if c["kind"] == "exception"}
    assert set(exceptions) == {"preliminär_tabell_patientkontrakt", "ingen_handlingsplan"}
    assert not any(e["applied"] for e in exceptions.values())
    assert exceptions["ingen_handlingsplan"]["provision"].startswith("PMJ.4 ")
    outputs = {n["label"]: n["value"] for n in walk(tree) if n["kind"] == "output"}
    assert outputs == {"patientkontrakt": "6284922.83", "maxbelopp": "12569845.66",
                       "förstärkt_vårdgaranti": "6284922.83"}
    (ram,) = [n for n in walk(tree) if n["kind"] == "parameter" and n["label"] == "nationell_ram"][:1]
    assert (ram["value"], ram["status"], ram["cite"]) == \
        ("980000000.00", "seed", "004_b57c07816f58923b.txt: multiplicerat med 980 000 000 kronor")
    text = (GOLDEN / "pmj-patientkontrakt-Z.txt").read_text(encoding="utf-8")
    assert "  maxbelopp = 12569845.66 kr by rule andel_av_riket" in text
