"""`python -m rulelang`, and the script `spark-submit` runs (so imports are absolute)."""

from rulelang.cli import run

run()
