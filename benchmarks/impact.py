"""`rulelang impact` against the two settlements it replaces, on a full-size demo region.

    python benchmarks/impact.py [--persons 2400000] [--month 2021-09] [--data DIR] [--repeat 3]

Writes the demo region (unless --data names one), then runs, each in its own process and
alternating so that a slow spell of the machine hits all alike:
  1. `rulelang settle stockholm/hlv-2016` and 2. `rulelang settle stockholm/hlv-2021`
     (what pricing the 2021 revision took before: two settlements, then a hand diff);
  3. `rulelang impact stockholm/hlv-2016 stockholm/hlv-2021` (one engine session, the data
     read and checked once, both rule plans, the comparison);
  4. `rulelang impact stockholm/hlv-2021 stockholm/hlv-2021 --assume …` (a flipped reading).
Prints the median wall time and peak memory of each, and impact's ratio to one settlement
(the issue's bound: at most 1.5x) and to the two it replaces.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settle import _median, measure  # noqa: E402  (the same process-level timing as the settle benchmark)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=2_400_000)
    parser.add_argument("--month", default="2021-09")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="measured runs of each (default 3)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rulelang-bench-"))
    rulelang = [sys.executable, "-m", "rulelang"]
    data = args.data
    if data is None:
        data = work / "region"
        wall, peak = measure(rulelang + ["demo-data", "--out", str(data), "--persons", str(args.persons)])
        print(f"demo-data ({args.persons} persons)            {wall:7.2f} s   peak {peak:5.2f} GB")
    month = ["--month", args.month, "--data", str(data)]
    commands = {
        "settle stockholm/hlv-2016": rulelang + ["settle", "stockholm/hlv-2016", *month, "--out", str(work / "a.parquet")],
        "settle stockholm/hlv-2021": rulelang + ["settle", "stockholm/hlv-2021", *month, "--out", str(work / "b.parquet")],
        "impact hlv-2016 → hlv-2021": rulelang + ["impact", "stockholm/hlv-2016", "stockholm/hlv-2021", *month,
                                                  "--format", "json", "--out", str(work / "impact.json")],
        "impact hlv-2021, a reading flipped": rulelang + [
            "impact", "stockholm/hlv-2021", "stockholm/hlv-2021", *month, "--assume",
            "telefonkontakt_som_videobesök=true", "--format", "json", "--out", str(work / "flipped.json")],
    }
    for command in commands.values():  # warm-up: the files into the page cache
        measure(command)
    runs: dict = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, command in commands.items():
            runs[name].append(measure(command))
    medians = {name: _median(found) for name, found in runs.items()}
    print(f"runs of each: {args.repeat}; medians")
    for name, (wall, peak) in medians.items():
        print(f"{name:38s} {wall:7.2f} s   peak {peak:5.2f} GB")
    one = medians["settle stockholm/hlv-2021"][0]
    two = one + medians["settle stockholm/hlv-2016"][0]
    for name in ("impact hlv-2016 → hlv-2021", "impact hlv-2021, a reading flipped"):
        wall = medians[name][0]
        print(f"{name:38s} {wall / one:5.2f} x one settle (bound: 1.5x), {wall / two:5.2f} x the two settles")


if __name__ == "__main__":
    main()
