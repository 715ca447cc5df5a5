"""Settlement of a full-size demo region: rulelang against a hand-written DuckDB query.

    python benchmarks/settle.py [--persons 2400000] [--month 2021-09] [--data DIR] [--repeat 5]
                                [--format csv|parquet|both]

Writes the demo region (unless --data names one), then runs, each in its own process:
  1. `rulelang settle stockholm/hlv-2021` (intake with every check, lowered rules, output);
  2. one hand-written DuckDB query of the same rules over the same files, writing the same
     settlement file (every contract column, the provision of each line included; no intake
     checks: the files are known to be clean).
Prints the median wall time and peak memory (max RSS) of both over --repeat alternating runs,
and their ratio, for the line items as CSV and as Parquet (settle's default; --format picks
one), and checks that the two files are the same: byte for byte as CSV, row for row and in
order as Parquet (two Parquet writers need not lay out the same rows in the same bytes).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HAND_WRITTEN = r"""
import duckdb, sys
data, month, month_first, month_last, out = sys.argv[1:6]
con = duckdb.connect()
S21 = '(001_d4b7588c97b7b524.txt)'
STH16_4 = 'STH16.4 Viktning efter ålder, vårdtyngd (ACG) och socioekonomi (CNI) (Vårdgivarguiden 2016-09: Simulering av vårdtyngdsersättning)'
STH16_10 = 'STH16.10 Målrelaterad ersättning (SLL: Information om målrelaterad ersättning 2018 (FFU 7.2.3))'
# Each line's basis, known for these rules in 2021: the visit lines read an interpretation
# (the listing day, the netted fee); the listing and clinic lines an illustrative amount.
READING, MADE_UP = "'interpretation'", "'illustrative'"
con.execute(f'''
COPY (
WITH
v AS (SELECT * FROM read_parquet('{data}/visits.parquet', file_row_number = true)
      WHERE date BETWEEN DATE '{month_first}' AND DATE '{month_last}'),
c AS (SELECT clinic_id, koncern_id, CAST(quality_points AS DECIMAL(18, 1)) AS quality_points,
             coordinating, care_guarantee_met, file_row_number FROM read_parquet('{data}/clinics.parquet', file_row_number = true)),
l AS (SELECT person_id, clinic_id, listed_from, COALESCE(listed_to, DATE '9999-12-31') AS listed_to
      FROM read_parquet('{data}/listings.parquet')),
p AS (SELECT person_id, birth_date, CAST(acg_weight AS DECIMAL(18, 6)) AS acg_weight,
             CAST(cni AS DECIMAL(18, 6)) AS cni, file_row_number FROM read_parquet('{data}/persons.parquet', file_row_number = true)),
vl AS (
  SELECT v.visit_id, v.clinic_id, v.date, v.mode, v.place, v.assignment, v.profession, v.file_row_number AS src,
         l.clinic_id AS listed_at, cv.koncern_id AS visited_koncern, cl.koncern_id AS listed_koncern
  FROM v LEFT JOIN l ON l.person_id = v.person_id AND v.date BETWEEN l.listed_from AND l.listed_to
         LEFT JOIN c AS cv ON cv.clinic_id = v.clinic_id
         LEFT JOIN c AS cl ON cl.clinic_id = l.clinic_id),
visit_lines AS (
  SELECT clinic_id, 'besöksersättning' AS component, visit_id AS record_id,
         CASE WHEN profession = 'psychologist' THEN 42500
              WHEN date <= DATE '2021-12-31' THEN 11000 ELSE 11500 END AS amount,
         'STH21.5 Ersättning flyttas från besöksersättning till fast ersättning {S21}' AS provision,
         {READING} AS basis, src
  FROM vl
  UNION ALL
  SELECT clinic_id, 'tilläggsersättning', visit_id,
         CASE WHEN assignment <> 'general' THEN 0
              WHEN mode = 'physical' AND place = 'home' THEN 0
              WHEN mode = 'physical' AND (listed_at IS NULL OR listed_at <> clinic_id) THEN 30000
              WHEN mode = 'video' AND date <= DATE '2023-04-30'
                   AND listed_at IS DISTINCT FROM clinic_id
                   AND listed_koncern IS DISTINCT FROM visited_koncern THEN 30000
              ELSE 0 END,
         CASE WHEN listed_at IS NULL AND mode = 'physical'
                THEN 'STH16.12 Tilläggsersättning för olistade patienter {S21}'
              WHEN mode = 'video' THEN 'STH21.6.2 Tilläggsersättning för videobesök {S21}'
              ELSE 'STH21.6.1 Tilläggsersättning för fysiskt besök av annan mottagnings listade patient {S21}' END,
         {READING}, src
  FROM vl
  UNION ALL
  SELECT listed_at, 'avdrag', visit_id,
         CASE WHEN date >= DATE '2021-09-01' AND assignment = 'general' AND mode = 'physical'
                   AND place = 'clinic' AND listed_at IS NOT NULL AND listed_at <> clinic_id THEN -30000
              ELSE 0 END,
         'STH21.6.4 Avdrag för egen listad patients fysiska besök hos annan mottagning {S21}', {READING}, src
  FROM vl),
person_lines AS (
  SELECT l.clinic_id, 'listningsersättning' AS component, p.person_id AS record_id,
         CAST(ROUND(
           CASE WHEN age < 7 THEN 18000 WHEN age < 20 THEN 9000 WHEN age < 50 THEN 12000
                WHEN age < 65 THEN 15600 WHEN age < 75 THEN 24000 WHEN age < 85 THEN 36000 ELSE 48000 END
           + COALESCE(p.cni, 0) * 2000 + COALESCE(p.acg_weight, 1.00) * 6000) AS BIGINT) AS amount,
         '{STH16_4}' AS provision, {MADE_UP} AS basis, p.file_row_number AS src
  FROM (SELECT *, year(DATE '{month_last}') - year(birth_date)
                  - CASE WHEN month(DATE '{month_last}') * 100 + day(DATE '{month_last}')
                              < month(birth_date) * 100 + day(birth_date) THEN 1 ELSE 0 END AS age FROM p) AS p
  JOIN l ON l.person_id = p.person_id AND DATE '{month_last}' BETWEEN l.listed_from AND l.listed_to),
clinic_lines AS (
  SELECT clinic_id, 'målrelaterad_ersättning', NULL, CAST(ROUND(COALESCE(quality_points, 0) * 100000) AS BIGINT),
         '{STH16_10}', {MADE_UP}, file_row_number FROM c
  UNION ALL SELECT clinic_id, 'samordningsersättning', NULL, CASE WHEN coordinating THEN 4000000 ELSE 0 END,
         'STH21.1 Geografiskt samordningsansvar {S21}', {MADE_UP}, file_row_number FROM c
  UNION ALL SELECT clinic_id, 'vårdgarantibonus', NULL, CASE WHEN care_guarantee_met THEN 2500000 ELSE 0 END,
         'STH21.3 Bonus för mottagningar som uppfyller vårdgarantin {S21}', {MADE_UP}, file_row_number FROM c)
SELECT clinic_id, '{month}' AS month, component,
       CAST(CAST(amount AS DECIMAL(18, 0)) * CAST(0.01 AS DECIMAL(18, 2)) AS DECIMAL(18, 2)) AS amount,
       provision, COALESCE(record_id, '') AS record_id, basis
FROM (SELECT * FROM visit_lines UNION ALL SELECT * FROM person_lines UNION ALL SELECT * FROM clinic_lines)
WHERE amount <> 0
ORDER BY component, src
) TO '{out}' ({'FORMAT parquet' if out.endswith('.parquet') else 'FORMAT csv, HEADER true'})''')
"""


MEASURE = r"""
import resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def measure(command: list) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GB) of one command, in a process of its own so
    that the peak is that command's alone."""
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, cwd=ROOT,
                            capture_output=True, text=True)
    wall, peak_kb = result.stdout.split()
    return float(wall), int(peak_kb) / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=2_400_000)
    parser.add_argument("--month", default="2021-09")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--repeat", type=int, default=5, help="measured runs of each (default 5)")
    parser.add_argument("--format", choices=["csv", "parquet", "both"], default="both",
                        help="the line items' format (default both, CSV first)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rulelang-bench-"))
    data = args.data
    rulelang = [sys.executable, "-m", "rulelang"]
    if data is None:
        data = work / "region"
        wall, peak = measure(rulelang + ["demo-data", "--out", str(data), "--persons", str(args.persons)])
        print(f"demo-data ({args.persons} persons)      {wall:7.2f} s   peak {peak:5.2f} GB")
    year, month = map(int, args.month.split("-"))
    import datetime as dt
    first = dt.date(year, month, 1)
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)

    formats = ["csv", "parquet"] if args.format == "both" else [args.format]
    for suffix in formats:
        compare(rulelang, data, args, first, last, work, suffix)
    phases = json.loads(subprocess.run(
        rulelang + ["settle", "stockholm/hlv-2021", "--month", args.month, "--data", str(data),
                    "--out", str(work / "phases.parquet"), "--format", "json"],
        check=True, cwd=ROOT, capture_output=True, text=True).stdout)["phases"]
    print("rulelang phases (Parquet)       " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items())
          + "   (intake: typing and checking every record, which the hand-written query skips)")


def compare(rulelang: list, data: Path, args, first, last, work: Path, suffix: str) -> None:
    """rulelang settle and the hand-written query, both writing the line items as `suffix`."""
    ours = work / f"rulelang.{suffix}"
    hand = work / f"hand-written.{suffix}"
    settle = rulelang + ["settle", "stockholm/hlv-2021", "--month", args.month, "--data", str(data), "--out", str(ours)]
    hand_written = [sys.executable, "-c", HAND_WRITTEN, str(data), args.month, str(first), str(last), str(hand)]
    # One warm-up of each reads the files into the page cache, so both are measured warm;
    # then the two alternate, so that a slow spell of the machine hits both alike.
    measure(settle)
    measure(hand_written)
    ours_runs, hand_runs = [], []
    for _ in range(args.repeat):
        ours_runs.append(measure(settle))
        hand_runs.append(measure(hand_written))
    our_wall, our_peak = _median(ours_runs)
    hand_wall, hand_peak = _median(hand_runs)
    print(f"line items as {suffix}: runs of each: {args.repeat}; medians below, then the fastest run of each")
    print(f"rulelang settle                 {our_wall:7.2f} s   peak {our_peak:5.2f} GB")
    print(f"hand-written DuckDB query       {hand_wall:7.2f} s   peak {hand_peak:5.2f} GB")
    print(f"ratio (rulelang / hand-written) {our_wall / hand_wall:7.2f} x time, "
          f"{our_peak / hand_peak:5.2f} x memory   (target: within 1.2x time, under 4 GB)")
    print(f"fastest runs                    {min(w for w, _ in ours_runs):7.2f} s / "
          f"{min(w for w, _ in hand_runs):.2f} s = {min(w for w, _ in ours_runs) / min(w for w, _ in hand_runs):.2f} x")
    if suffix == "csv":
        print(f"same output, byte for byte      {filecmp.cmp(ours, hand, shallow=False)}")
    else:
        import duckdb

        con = duckdb.connect()
        rows = [con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall() for path in (ours, hand)]
        print(f"same rows in the same order     {rows[0] == rows[1]} ({len(rows[0])} lines)")


def _median(runs: list) -> tuple:
    """The run of median wall time (its own peak memory with it)."""
    return sorted(runs)[len(runs) // 2]


if __name__ == "__main__":
    main()
