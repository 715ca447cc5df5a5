"""Load time and explained-evaluation throughput of a rulebook.

    python benchmarks/evaluate.py [RULEBOOK] [--visits N]

Prints: cold load (first parse + check + compile in this process, including reading the
shipped parser tables), warm load (the same again, the median of several), evaluations
per second without explanation, and explained evaluations per second (each builds the
full explanation tree of one output for one visit). One process, one core.
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
    os.chdir(ROOT)
    t0 = time.perf_counter()
    import rulelang
    from rulelang.language.parser import lark_parser
    lark_parser()
    t_import = time.perf_counter() - t0

    t0 = time.perf_counter()
    book = rulelang.load(args.rulebook)
    cold = time.perf_counter() - t0
    warm_runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        rulelang.load(args.rulebook)
        warm_runs.append(time.perf_counter() - t0)
    warm = statistics.median(warm_runs)

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
    print(f"load, first (cold)       {cold * 1000:8.1f} ms   (parse + check + compile)")
    print(f"load, median of 7 (warm) {warm * 1000:8.1f} ms")
    print(f"evaluations              {n:8d}     ({len(visits)} visits x {len(outputs)} outputs)")
    print(f"plain evaluations/s      {n / plain:8.0f}")
    print(f"explained evaluations/s  {n / explained:8.0f}   (target >= 10000)")


if __name__ == "__main__":
    main()
