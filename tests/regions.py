"""Hypothesis strategies for small regions in the settlement format, and helpers to compare
line items between the interpreter and the SQL engines."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from hypothesis import strategies as st

MONTHS = ["2021-01", "2021-02", "2021-08", "2021-09", "2021-12", "2022-01", "2017-03", "2016-12"]


def _decimal(draw, low: int, high: int, places: int) -> str:
    units = draw(st.integers(min_value=low * 10 ** places, max_value=high * 10 ** places))
    whole, frac = divmod(units, 10 ** places)
    return f"{whole}.{frac:0{places}d}" if places else str(whole)


@st.composite
def regions(draw, month: str) -> dict:
    """A region whose records straddle the month: listing changes at month edges, visits on
    the first and last days, sister clinics in one koncern, unlisted persons."""
    year, mon = map(int, month.split("-"))
    first = dt.date(year, mon, 1)
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    days = st.sampled_from([first, last, first + dt.timedelta(days=9), first - dt.timedelta(days=1),
                            last + dt.timedelta(days=1), first + dt.timedelta(days=19)])
    n_clinics = draw(st.integers(min_value=1, max_value=4))
    clinics = []
    for i in range(n_clinics):
        clinic = {"clinic_id": f"C{i}", "koncern_id": f"K{draw(st.integers(0, 1))}"}
        if draw(st.booleans()):
            clinic["coverage_percent"] = _decimal(draw, 30, 95, draw(st.integers(0, 2)))
        if draw(st.booleans()):
            clinic["quality_points"] = _decimal(draw, 0, 30, 1)
        clinic["care_guarantee_met"] = draw(st.booleans())
        clinic["coordinating"] = draw(st.booleans())
        clinic["non_patient_collaboration"] = draw(st.booleans())
        clinic["psychosocial_team_size"] = draw(st.integers(0, 4))
        clinic["pilot"] = draw(st.booleans())
        clinics.append(clinic)
    ids = [c["clinic_id"] for c in clinics]
    persons, listings, visits = [], [], []
    for p in range(draw(st.integers(min_value=1, max_value=6))):
        person = {"person_id": f"P{p}",
                  "birth_date": draw(st.dates(min_value=dt.date(1925, 1, 1), max_value=dt.date(2009, 12, 31))).isoformat(),
                  "sex": draw(st.sampled_from(["F", "M"])),
                  "home_care": draw(st.booleans()), "interpreter_need": draw(st.booleans())}
        if draw(st.booleans()):
            person["acg_weight"] = _decimal(draw, 0, 4, draw(st.integers(0, 6)))
        if draw(st.booleans()):
            person["cni"] = _decimal(draw, 0, 5, 2)
        county = draw(st.sampled_from([None, None, "01", "14", "23"]))
        if county is not None:
            person["county_code"] = county
        persons.append(person)
        # Consecutive listings, possibly changing inside or at the edges of the month.
        start = dt.date(2010, 1, 1)
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            end = draw(st.one_of(st.none(), days))
            if end is not None and end < start:
                break
            listings.append({"person_id": f"P{p}", "clinic_id": draw(st.sampled_from(ids)),
                             "listed_from": start.isoformat(), "listed_to": end.isoformat() if end else None})
            if end is None:
                break
            start = end + dt.timedelta(days=draw(st.sampled_from([1, 1, 5])))
    for v in range(draw(st.integers(min_value=0, max_value=10))):
        visits.append({
            "visit_id": f"V{v}", "person_id": draw(st.sampled_from([p["person_id"] for p in persons])),
            "clinic_id": draw(st.sampled_from(ids)), "date": draw(days).isoformat(),
            "mode": draw(st.sampled_from(["physical", "video", "phone"])),
            "place": draw(st.sampled_from(["clinic", "home", "other"])),
            "assignment": draw(st.sampled_from(["general", "home_care", "psychosocial"])),
            "profession": draw(st.sampled_from(["doctor", "nurse", "psychologist", "therapist", "other"])),
        })
    region = {"clinics": clinics, "persons": persons, "listings": listings, "visits": visits}
    if draw(st.booleans()):
        # Koncern memberships that change at or inside the month, for some clinics.
        memberships = []
        for clinic in ids:
            if draw(st.booleans()):
                change = draw(days)
                memberships.append({"clinic_id": clinic, "koncern_id": f"K{draw(st.integers(0, 2))}",
                                    "member_from": "2010-01-01",
                                    "member_until": (change - dt.timedelta(days=1)).isoformat()})
                memberships.append({"clinic_id": clinic, "koncern_id": f"K{draw(st.integers(0, 2))}",
                                    "member_from": change.isoformat(), "member_until": None})
        region["koncern_memberships"] = memberships
    return region


def write_region(region: dict, directory: Path) -> Path:
    path = directory / "region.json"
    path.write_text(json.dumps(region), encoding="utf-8")
    return path


def as_directory(data: dict, directory: Path, book=None) -> str:
    """`{table: [records]}` as a directory of CSV files, as a region is given; a table
    without records is its header line (the fields `book` declares)."""
    directory.mkdir(parents=True, exist_ok=True)
    for table, records in data.items():
        if not isinstance(records, list):
            continue
        names = sorted({name for record in records for name in record})
        if not names and book is not None and table in book.checked.tables:
            names = list(book.checked.tables[table].fields)

        def shown(value):
            return "" if value is None else str(value).lower() if isinstance(value, bool) else value

        with open(directory / f"{table}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, names)
            writer.writeheader()
            writer.writerows([{k: shown(v) for k, v in r.items()} for r in records])
    return str(directory)


def money_text(ore: int) -> str:
    sign = "-" if ore < 0 else ""
    return f"{sign}{abs(ore) // 100}.{abs(ore) % 100:02d}"


def interpreter_rows(book, region: dict, month: str) -> list:
    from rulelang.columnar.settlement import interpreter_line_items

    return [[clinic, mon, component, money_text(amount), provision, record, basis]
            for clinic, mon, component, amount, provision, record, basis in
            interpreter_line_items(book, book.dataset(region), month)]


def csv_rows(path: Path) -> list:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [row for row in reader]


# Every example input (examples/) with its rulebook and a date its rules are in force on.
EXAMPLES = [
    ("stockholm/hlv-2021", "stockholm-2021.json", "2021-09-30"),
    ("stockholm/hlv-2016", "stockholm-2016.json", "2016-03-15"),
    ("stockholm/kroninnovation-2016", "kroninnovation-2016.json", "2016-03-31"),
    ("vastra-gotaland/vg-primarvard", "vastra-gotaland-2017.json", "2017-03-15"),
    ("skaraborg/narvard-2014", "skaraborg-2014.json", "2014-06-01"),
    ("jamtland/patientmiljarden-2018", "jamtland-2018.json", "2018-06-30"),
]

REGION_MONTH = Path(__file__).resolve().parent.parent / "benchmarks" / "region_month" / "region-month.md"


@st.composite
def region_month_regions(draw, month: str = "2021-09") -> dict:
    """A region in the shared region-month workload's shape (benchmarks/region_month), whose
    payees are the records of its clinics table: integer ids, persons listed at a clinic,
    visits inside and outside the month, at the listing clinic, a sister clinic of its
    koncern or another. Everyone is born before the month (an age band for each)."""
    year, mon = map(int, month.split("-"))
    first = dt.date(year, mon, 1)
    clinics = [{"clinic_id": c, "koncern_id": draw(st.integers(1, 2))} for c in range(1, draw(st.integers(1, 4)) + 1)]
    clinic_ids = st.sampled_from([c["clinic_id"] for c in clinics])
    persons = [{"person_id": 100 + p,
                "birth_date": (first - dt.timedelta(days=draw(st.integers(1, 36500)))).isoformat(),
                "listed_clinic": draw(clinic_ids), "acg_weight": _decimal(draw, 0, 4, draw(st.integers(0, 4))),
                "in_home_care": draw(st.booleans())} for p in range(draw(st.integers(1, 8)))]
    days = st.integers(-3, 33).map(lambda d: (first + dt.timedelta(days=d)).isoformat())
    visits = [{"visit_id": 5000 + v, "person_id": draw(st.sampled_from([p["person_id"] for p in persons])),
               "clinic_id": draw(clinic_ids), "date": draw(days),
               "kind": draw(st.sampled_from(["physical", "video", "home_visit", "home_care", "psychosocial"])),
               "profession": draw(st.sampled_from(["doctor", "nurse", "other"]))}
              for v in range(draw(st.integers(0, 12)))]
    return {"clinics": clinics, "persons": persons, "visits": visits}


def write_region_month_parquet(directory: Path) -> Path:
    """A small region-month region as typed Parquet files (integer ids, DECIMAL weights), with
    visits of another month, one naming no person and an id given twice."""
    import duckdb

    directory.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT CAST(c AS INTEGER) AS clinic_id, CAST(1 + c % 2 AS INTEGER) AS koncern_id
                          FROM range(1, 6) AS t(c)) TO '{directory / 'clinics.parquet'}' (FORMAT parquet)""")
    con.execute(f"""COPY (SELECT CAST(100 + p AS BIGINT) AS person_id,
                                 DATE '1930-01-01' + CAST(p * 397 % 33000 AS INTEGER) AS birth_date,
                                 CAST(1 + p % 5 AS INTEGER) AS listed_clinic,
                                 CAST((p % 30) / 10 + 0.5 AS DECIMAL(6, 4)) AS acg_weight, p % 7 = 0 AS in_home_care
                          FROM range(0, 300) AS t(p)) TO '{directory / 'persons.parquet'}' (FORMAT parquet)""")
    con.execute(f"""COPY (SELECT CAST(5000 + v AS BIGINT) AS visit_id,
                                 CAST(CASE WHEN v = 7 THEN 99999 ELSE 100 + v * 7 % 300 END AS BIGINT) AS person_id,
                                 CAST(1 + v * 3 % 5 AS INTEGER) AS clinic_id,
                                 DATE '2021-08-29' + CAST(v % 34 AS INTEGER) AS date,
                                 ['physical', 'video', 'home_visit', 'home_care', 'psychosocial'][1 + v % 5] AS kind,
                                 ['doctor', 'nurse', 'other'][1 + v % 3] AS profession
                          FROM range(0, 600) AS t(v)
                          UNION ALL SELECT 5010, 101, 2, DATE '2021-09-20', 'video', 'nurse')
                    TO '{directory / 'visits.parquet'}' (FORMAT parquet)""")
    return directory
