"""rulelang as a peer of the shared region-month benchmark (../shared/bench, WORKLOAD.md §4).

    .venv/bin/python benchmarks/region_month/peer.py DATA_DIR OUT_CSV [--month YYYY-MM]

Settles the month with `rulelang settle` semantics — every record checked, every line
item written (Parquet) and explainable, the totals per clinic and component written
beside them — using the rules of region-month.md in this folder, over the workload's
Parquet files as they are. Then writes the workload's per-clinic CSV from the totals, and
prints its phases as `PHASES {json}` on stderr.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the project, when run from anywhere

import rulelang  # noqa: E402
from rulelang.columnar.settlement import SettlementError, settle  # noqa: E402

COMPONENTS = {"kapitering": "capitation", "besöksavgift_till_mottagningen": "visit_fees",
              "tilläggsersättning": "addons", "avdrag": "deductions"}


def month_of(data_dir: Path, given: str | None) -> str:
    if given:
        return given
    manifest = data_dir / "manifest.json"
    if manifest.exists():
        flags = json.loads(manifest.read_text(encoding="utf-8")).get("flags", {})
        if flags.get("month"):
            return flags["month"]
    return "2021-09"


def ore(kronor: str) -> int:
    return int(Decimal(kronor) * 100)


def kronor(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 100)
    return f"{sign}{whole}.{part:02d}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out_csv", type=Path)
    parser.add_argument("--month")
    args = parser.parse_args(argv)
    phases = {"imports": time.perf_counter() - STARTED}
    mark = time.perf_counter()
    book = rulelang.load(str(HERE / "region-month.md"))
    phases["load"], mark = time.perf_counter() - mark, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rulelang-peer-") as work:
        try:
            result = settle(book, month_of(args.data_dir, args.month), args.data_dir, Path(work) / "lines.parquet")
        except SettlementError as error:
            print(f"rulelang: error: {error}", file=sys.stderr)
            return error.exit_code
        phases.update(result.phases)  # intake, rules, output
        mark = time.perf_counter()
        clinics: dict = {}
        with open(result.totals_out, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                amounts = clinics.setdefault(int(row["clinic_id"]), dict.fromkeys(COMPONENTS.values(), 0))
                amounts[COMPONENTS[row["component"]]] += ore(row["amount"])
    with open(args.out_csv, "w", encoding="utf-8") as out:
        out.write("clinic_id,capitation,visit_fees,addons,deductions,total\n")
        for clinic in sorted(clinics):
            a = clinics[clinic]
            deductions = -a["deductions"]  # a deduction line is negative; the workload reports it positive
            total = a["capitation"] + a["visit_fees"] + a["addons"] - deductions
            out.write(f"{clinic},{kronor(a['capitation'])},{kronor(a['visit_fees'])},{kronor(a['addons'])},"
                      f"{kronor(deductions)},{kronor(total)}\n")
    phases["aggregate"] = time.perf_counter() - mark  # the workload's CSV from the totals file
    phases["sum"] = time.perf_counter() - STARTED - phases["imports"]  # in-process: after imports
    print("PHASES " + json.dumps({k: round(v, 3) for k, v in phases.items()}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
