"""Load time and explained-evaluation throughput of a rulebook.

    python benchmarks/evaluate.py [RULEBOOK] [--visits N]

Prints: load with every file parsed (parse + check + compile; the first in this process,
after reading the shipped parser tables, and the median of several), load with the files'
parsed trees read back (rulelang/language/parsed.py; the first in this process and the
median), a whole new process that loads the rulebook from them (`import rulelang` and the
load, the median of five), evaluations per second without explanation, and explained
evaluations per second (each builds the full explanation tree of one output for one
visit). Parsed trees are kept in a temporary folder of this run's own. One core.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_visits(n: int, seed: int = 7) -> dict:
    """A small region: 20 clinics in 8 koncerner, 2,000 persons, n visits in 2021."""
    rng = random.Random(seed)
    clinics = [{"clinic_id": f"C{i:02d}", "koncern_id": f"K{i % 8}"} for i in range(20)]
    persons, listings = [], []
    for i in range(2000):
        persons.append({"person_id": f"P{i}", "birth_date": f"{rng.randint(1930, 2020)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                        "sex": rng.choice("FM")})
        if rng.random() < 0.9:
            listings.append({"person_id": f"P{i}", "clinic_id": rng.choice(clinics)["clinic_id"],
                             "listed_from": "2019-01-01", "listed_to": None})
    visits = []
    start = dt.date(2021, 2, 1)
    for i in range(n):
        visits.append({
            "visit_id": f"V{i}", "person_id": f"P{rng.randrange(2000)}",
            "clinic_id": rng.choice(clinics)["clinic_id"],
            "date": (start + dt.timedelta(days=rng.randrange(330))).isoformat(),
            "mode": rng.choices(["physical", "video", "phone"], [70, 15, 15])[0],
            "place": rng.choices(["clinic", "home", "other"], [85, 10, 5])[0],
            "assignment": rng.choices(["general", "home_care", "psychosocial"], [80, 10, 10])[0],
            "profession": rng.choice(["doctor", "nurse", "psychologist", "therapist", "other"]),
        })
    return {"clinics": clinics, "persons": persons, "listings": listings, "visits": visits}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rulebook", nargs="?", default="stockholm/hlv-2021")
    parser.add_argument("--visits", type=int, default=5000)
    args = parser.parse_args()

    import os
    import subprocess
    import tempfile
    os.chdir(ROOT)
    kept = tempfile.TemporaryDirectory(prefix="rulelang-bench-parsed-")
    os.environ["RULELANG_CACHE_DIR"] = "off"
    t0 = time.perf_counter()
    import rulelang
    from rulelang.language.parser import lark_parser
    lark_parser()
    t_import = time.perf_counter() - t0

    def loads(times: int) -> tuple:
        """(the first load's seconds, the median of `times` more)."""
        t0 = time.perf_counter()
        rulelang.load(args.rulebook)
        first = time.perf_counter() - t0
        runs = []
        for _ in range(times):
            t0 = time.perf_counter()
            rulelang.load(args.rulebook)
            runs.append(time.perf_counter() - t0)
        return first, statistics.median(runs)

    cold, warm = loads(7)
    os.environ["RULELANG_CACHE_DIR"] = kept.name
    rulelang.load(args.rulebook)  # parsed, and kept
    kept_first, kept_warm = loads(7)
    probe = f"import time; t = time.perf_counter(); import rulelang; rulelang.load({args.rulebook!r}); " \
            "print(time.perf_counter() - t)"
    fresh = statistics.median(float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                                   check=True).stdout) for _ in range(5))
    book = rulelang.load(args.rulebook)

    data = book.dataset(synthetic_visits(args.visits))
    visits = data.table("visits").records
    outputs = ["besöksersättning", "tilläggsersättning", "avdrag"]

    evaluator = book.evaluator(data)
    t0 = time.perf_counter()
    for record in visits:
        for name in outputs:
            evaluator.evaluate(name, record)
    plain = time.perf_counter() - t0

    evaluator = book.evaluator(data)
    t0 = time.perf_counter()
    for record in visits:
        for name in outputs:
            evaluator.explain(name, record)
    explained = time.perf_counter() - t0

    n = len(visits) * len(outputs)
    print(f"rulebook                 {book.id} {book.version}")
    print(f"import + parser tables   {t_import * 1000:8.1f} ms")
    print(f"load, parsed, first      {cold * 1000:8.1f} ms   (parse + check + compile)")
    print(f"load, parsed, median of 7 {warm * 1000:7.1f} ms")
    print(f"load, kept trees, first  {kept_first * 1000:8.1f} ms   (read back + check + compile)")
    print(f"load, kept trees, median {kept_warm * 1000:8.1f} ms")
    print(f"new process: import + load {fresh * 1000:6.1f} ms   (kept trees, median of 5)")
    print(f"evaluations              {n:8d}     ({len(visits)} visits x {len(outputs)} outputs)")
    print(f"plain evaluations/s      {n / plain:8.0f}")
    print(f"explained evaluations/s  {n / explained:8.0f}   (target >= 10000)")


if __name__ == "__main__":
    main()
