"""A synthetic region in the settlement format, sized like Stockholm by default.

Every random choice is a hash of (seed, record, purpose), computed in DuckDB, so the same
seed gives the same files, on any number of threads. Defaults (DOMAIN §4): 2.4 million
persons, about 216 clinics in about 70 koncerner (67 public clinics in one), 97 % listed,
listing churn with changes at month ends and around 2021-09-01, and about 600 000 visits a
month for August–October 2021 with realistic shares of modes, places, assignments and
professions. Decimals are written as text, so they stay exact.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

DEFAULT_PERSONS = 2_400_000
VISITS_PER_PERSON_MONTH = 0.25
PERSONS_PER_CLINIC = 11_100
# Sweden's primary care (`demo-data --national`): about 10.5 million listed persons at
# about 1,150 vårdcentraler.
NATIONAL_PERSONS = 10_500_000
NATIONAL_CLINICS = 1_150
MONTHS = ("2021-08-01", "2021-09-01", "2021-10-01")

# The mean of exp(0.9 (U1 + U2 + U3 - 1.5)) for uniform U: ((e^0.9 - 1) / 0.9)^3 × e^-1.35. Dividing
# by it makes the weights relative, as casemix weights are: the population's mean is 1.00.
ACG_MEAN = round((((math.exp(0.9) - 1) / 0.9) ** 3) * math.exp(-1.35), 6)


def _u(seed: int, key: str, purpose: str) -> str:
    """A uniform number in [0, 1) from a hash: the same for the same seed, record and purpose."""
    return f"((hash({seed}, {key}, '{purpose}') % 1000000007) / 1000000007.0)"


def _pick(u: str, choices: list) -> str:
    """A CASE choosing among (value, weight) pairs by a uniform number."""
    total = sum(weight for _, weight in choices)
    cases, running = [], 0.0
    for value, weight in choices[:-1]:
        running += weight / total
        cases.append(f"WHEN {u} < {running:.6f} THEN '{value}'")
    return f"(CASE {' '.join(cases)} ELSE '{choices[-1][0]}' END)"


def month_range(text: str) -> tuple:
    """`2016-01:2016-12` (or one month, `2016-03`) as the first day of each month, in order."""
    parts = text.split(":")
    try:
        first, last = (dt.date.fromisoformat(part.strip() + "-01") for part in (parts[0], parts[-1]))
    except ValueError:
        raise ValueError(f"--months takes YYYY-MM:YYYY-MM, not {text!r}") from None
    if len(parts) > 2 or last < first:
        raise ValueError(f"--months takes a first and a last month, the first not after the last: {text!r}")
    months = []
    while first <= last:
        months.append(first)
        first = (first + dt.timedelta(days=32)).replace(day=1)
    if len(months) > 120:
        raise ValueError(f"--months covers {len(months)} months; ten years at most")
    return tuple(months)


def write_demo_region(out: Path, persons: int = DEFAULT_PERSONS, seed: int = 1,
                      file_format: str = "parquet", clinics: int | None = None,
                      months: tuple = ()) -> dict:
    """Write clinics, persons, listings and visits to `out`; return the row counts. Without
    `clinics`, one clinic per PERSONS_PER_CLINIC persons. `months` (first days) are the
    months with visits, August–October 2021 by default; listings and the listing changes
    around them move with them, so that other years look the same."""
    import duckdb

    months = tuple(months) or tuple(dt.date.fromisoformat(m) for m in MONTHS)
    shift = (months[0] - dt.date.fromisoformat(MONTHS[0])).days  # 0 for the default months

    def day(iso: str) -> str:
        return f"DATE '{(dt.date.fromisoformat(iso) + dt.timedelta(days=shift)).isoformat()}'"

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    clinics = clinics or max(3, round(persons / PERSONS_PER_CLINIC))
    public = min(clinics, max(1, round(clinics * 0.31)))
    koncerns = max(1, round((clinics - public) / 2.1))
    visits_per_month = round(persons * VISITS_PER_PERSON_MONTH)
    u = lambda key, purpose: _u(seed, key, purpose)  # noqa: E731

    con.execute(f"""CREATE TABLE clinics AS
        SELECT printf('HLM%03d', i) AS clinic_id,
               CASE WHEN i <= {public} THEN 'SLSO'
                    ELSE printf('K%02d', 1 + CAST(floor({u('i', 'koncern')} * {koncerns}) AS INTEGER)) END AS koncern_id,
               printf('%.1f', 40 + 50 * {u('i', 'coverage')}) AS coverage_percent,
               printf('%.1f', 27 * {u('i', 'quality')}) AS quality_points,
               {u('i', 'guarantee')} < 0.6 AS care_guarantee_met,
               {u('i', 'coordinating')} < 0.2 AS coordinating
        FROM range(1, {clinics} + 1) AS r(i)""")

    con.execute(f"""CREATE TABLE persons AS
        SELECT printf('P%08d', i) AS person_id,
               DATE '2021-09-30' - CAST(floor(pow({u('i', 'age')}, 1.12) * 96 * 365.25
                                         + {u('i', 'day')} * 365) AS INTEGER) AS birth_date,
               CASE WHEN {u('i', 'sex')} < 0.5 THEN 'F' ELSE 'M' END AS sex,
               CASE WHEN {u('i', 'acg_missing')} < 0.05 THEN NULL
                    ELSE printf('%.2f', exp(({u('i', 'acg1')} + {u('i', 'acg2')} + {u('i', 'acg3')} - 1.5) * 0.9)
                                        / {ACG_MEAN})
               END AS acg_weight,
               CASE WHEN {u('i', 'cni_missing')} < 0.1 THEN NULL
                    ELSE printf('%.2f', 0.5 + 3 * pow({u('i', 'cni')}, 2)) END AS cni,
               {u('i', 'home_care')} < 0.02 AS home_care,
               {u('i', 'interpreter')} < 0.06 AS interpreter_need,
               i
        FROM range(1, {persons} + 1) AS r(i)""")

    # A first listing for 97 % of persons; 6 % of those move in July–November 2021, some on a
    # month's last day and a cluster around 2021-09-01, when the deduction starts.
    con.execute(f"""CREATE TABLE moves AS
        SELECT person_id, i,
               printf('HLM%03d', 1 + CAST(floor({u('i', 'clinic')} * {clinics}) AS INTEGER)) AS clinic_id,
               greatest(birth_date, {day('2008-01-01')} + CAST(floor({u('i', 'since')} * 4900) AS INTEGER)) AS listed_from,
               {u('i', 'moves')} < 0.06 AS moves,
               CASE WHEN {u('i', 'when')} < 0.3 THEN {day('2021-08-20')} + CAST(floor({u('i', 'near')} * 13) AS INTEGER)
                    WHEN {u('i', 'when')} < 0.45 THEN last_day({day('2021-07-01')} + CAST(floor({u('i', 'mon')} * 4) * 31 AS INTEGER))
                    ELSE {day('2021-07-01')} + CAST(floor({u('i', 'any')} * 150) AS INTEGER) END AS moved_on,
               printf('HLM%03d', 1 + CAST(floor({u('i', 'next')} * {clinics}) AS INTEGER)) AS next_clinic
        FROM persons WHERE {u('i', 'listed')} < 0.97""")
    con.execute("UPDATE moves SET moves = false WHERE moved_on <= listed_from")  # born after the move date
    con.execute("""CREATE TABLE listings AS
        SELECT person_id, clinic_id, listed_from,
               CASE WHEN moves THEN moved_on - 1 END AS listed_to, i, 0 AS n FROM moves
        UNION ALL
        SELECT person_id, next_clinic, moved_on, NULL, i, 1 FROM moves WHERE moves""")

    month_rows = []
    for number, first in enumerate(months):
        month_rows.append(f"""SELECT {number} * {visits_per_month} + j AS vid, DATE '{first.isoformat()}' AS first, j
                              FROM range(1, {visits_per_month} + 1) AS r(j)""")
    con.execute(f"""CREATE TABLE visit_base AS
        SELECT vid, printf('V%09d', vid) AS visit_id,
               printf('P%08d', 1 + CAST(floor({u('vid', 'who')} * {persons}) AS INTEGER)) AS person_id,
               first + CAST(floor({u('vid', 'day')} * (dayofmonth(last_day(first)))) AS INTEGER) AS date,
               {u('vid', 'own')} AS own,
               printf('HLM%03d', 1 + CAST(floor({u('vid', 'elsewhere')} * {clinics}) AS INTEGER)) AS other_clinic,
               {_pick(u('vid', 'mode'), [('physical', 70), ('video', 18), ('phone', 12)])} AS mode,
               {_pick(u('vid', 'place'), [('clinic', 88), ('home', 8), ('other', 4)])} AS place,
               {_pick(u('vid', 'assignment'), [('general', 80), ('home_care', 8), ('psychosocial', 12)])} AS assignment,
               {_pick(u('vid', 'profession'), [('doctor', 35), ('nurse', 40), ('psychologist', 8), ('therapist', 7), ('other', 10)])} AS profession
        FROM ({' UNION ALL '.join(month_rows)})""")
    con.execute("""CREATE TABLE visits AS
        SELECT v.visit_id, v.person_id,
               CASE WHEN l.clinic_id IS NOT NULL AND v.own < 0.78 THEN l.clinic_id ELSE v.other_clinic END AS clinic_id,
               v.date, v.mode, v.place, v.assignment, v.profession, v.vid
        FROM visit_base v LEFT JOIN listings l
          ON l.person_id = v.person_id AND l.listed_from <= v.date
         AND COALESCE(l.listed_to, DATE '9999-12-31') >= v.date""")

    written = {}
    suffix = "parquet" if file_format == "parquet" else "csv"
    options = "(FORMAT parquet, ROW_GROUP_SIZE 500000)" if file_format == "parquet" else "(FORMAT csv, HEADER true)"
    queries = {
        "clinics": "SELECT * FROM clinics ORDER BY clinic_id",
        "persons": "SELECT person_id, birth_date, sex, acg_weight, cni, home_care, interpreter_need FROM persons ORDER BY i",
        "listings": "SELECT person_id, clinic_id, listed_from, listed_to FROM listings ORDER BY i, n",
        "visits": "SELECT visit_id, person_id, clinic_id, date, mode, place, assignment, profession FROM visits ORDER BY vid",
    }
    con.execute("SET preserve_insertion_order = true")
    for table, query in queries.items():
        path = out / f"{table}.{suffix}"
        con.execute(f"COPY ({query}) TO '{str(path).replace(chr(39), chr(39) * 2)}' {options}")
        written[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    con.close()
    return written

