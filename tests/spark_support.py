"""Whether the Spark engine can run here: the tests that need it say why they are skipped."""

from __future__ import annotations

import functools

import pytest


@functools.lru_cache(maxsize=1)
def spark_missing() -> str:
    """Why the Spark engine cannot run here ('' when it can): it needs pyspark and Java."""
    from rulelang.columnar.settlement import SettlementError, engine_ready

    try:
        engine_ready("spark")
    except SettlementError as error:
        return str(error)
    return ""


needs_spark = pytest.mark.skipif(bool(spark_missing()), reason=f"Spark cannot run here: {spark_missing()}")
