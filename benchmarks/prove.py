"""Time of the conflict prover on every rulebook under rulebooks/.

    python benchmarks/prove.py [--repeat N]

Prints, per rulebook, the pairs of rules and exceptions it proves and the seconds it takes
(median of N runs, the rulebook already loaded), then the total, and the one-time cost of
importing the solver. One process, one core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rulelang  # noqa: E402
from rulelang.language.loader import all_rulebook_ids  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    import z3  # noqa: F401
    print(f"import z3: {time.perf_counter() - started:.3f} s")
    from rulelang.language.prover import _levels, prove

    total = 0.0
    for rulebook in all_rulebook_ids():
        book = rulelang.load(rulebook)
        pairs = sum(len(level) * (len(level) - 1) // 2
                    for output in book.checked.outputs for _, level in _levels(book.checked, output))
        times = []
        for _ in range(args.repeat):
            mark = time.perf_counter()
            findings = prove(book.checked)
            times.append(time.perf_counter() - mark)
        median = statistics.median(times)
        total += median
        print(f"{rulebook:36} {pairs:3d} pairs  {median:6.3f} s  {len(findings)} finding(s)")
    print(f"{'all':36}       {total:6.3f} s")


if __name__ == "__main__":
    main()
