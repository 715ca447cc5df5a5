"""`python -m rulelang`, and the script `spark-submit` runs (so imports are absolute)."""

from rulelang.interfaces.cli import run

run()
