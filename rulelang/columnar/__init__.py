"""The columnar engines: input read and checked in bulk, the rules lowered to SQL, and a
month settled on DuckDB or Spark."""
