"""Settlement of a rulebook with many sibling rules: the plan must grow linearly with them.

    python benchmarks/many_rules.py [--rules 1000] [--persons 100000]

Generates a rulebook whose one output has --rules sibling rules (each a condition on a
person's code and an amount), a region of --persons persons, and settles it, each in a
process of its own; prints wall time and peak memory for 10 %, 50 % and 100 % of the rules,
so that growth can be read off. The target: 1,000 rules on 100,000 persons in under 60 s
and 2 GB.
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
from pathlib import Path

MEASURE = r"""
import resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def rulebook(rules: int) -> str:
    listed = "\n".join(f"rule regel_{i} defines ersättning when kod = {i} then {i} kr + belopp" for i in range(rules))
    return f'''# {rules} sibling rules

```rulelang
rulebook "bench/many-{rules}"
  version "1"
  in force from 2021-01-01
  source s "Benchmark"
according to s

table clinics
  key clinic_id
  field clinic_id: text

table persons
  key person_id
  field person_id: text
  field clinic_id: clinics
  field kod: integer

parameter belopp: money
  value 10 kr status illustrative cite "benchmark"

output ersättning: money per persons default 0 kr paid to clinic_id
{listed}
```
'''


def region(directory: Path, persons: int, rules: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    generator = random.Random(7)
    with open(directory / "clinics.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clinic_id"])
        writer.writerows([f"C{i}"] for i in range(200))
    with open(directory / "persons.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "clinic_id", "kod"])
        writer.writerows([f"P{i}", f"C{i % 200}", generator.randrange(rules)] for i in range(persons))


def measure(command: list) -> tuple:
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True)
    wall, peak_kb = result.stdout.split()
    return float(wall), int(peak_kb) / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--persons", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rulelang-many-"))
    region(work / "region", args.persons, args.rules)
    print(f"{args.persons} persons; settle of one month, each run in its own process")
    for rules in sorted({max(1, args.rules // 10), max(1, args.rules // 2), args.rules}):
        book = work / f"many-{rules}.md"
        book.write_text(rulebook(rules), encoding="utf-8")
        wall, peak = measure([sys.executable, "-m", "rulelang", "settle", str(book), "--month", "2021-09",
                              "--data", str(work / "region"), "--out", str(work / f"out-{rules}.parquet")])
        print(f"{rules:6d} sibling rules   {wall:7.2f} s   peak {peak:5.2f} GB")


if __name__ == "__main__":
    main()
