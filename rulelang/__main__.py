"""`python -m rulelang`, and the script `spark-submit` runs (so imports are absolute)."""

from rulelang.interfaces.cli import run

if __name__ == "__main__":  # not when a worker process (`serve --workers`) imports it again
    run()
