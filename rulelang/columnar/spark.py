"""Apache Spark as the engine of a whole settlement: the intake's typing and checks, the
rejected records, the rule plan, the line items and the totals all run as Spark jobs over
the input files, and Spark writes the output. Only summaries (counts, totals per clinic,
the first problems) come back to the driver.

The intake and the settlement write their statements once, in DuckDB's dialect; here they
are parsed with sqlglot and given to Spark as Spark SQL. The few statements Spark SQL has no
form for are rewritten on the syntax tree: a `CREATE TEMP TABLE` becomes a persisted
temporary view, an `INSERT INTO … SELECT` a union, an `UPDATE … FROM` a left join that
computes the new column, DuckDB's `regexp_full_match` an anchored `RLIKE`, and
`json_object` Spark's `to_json` of a struct (nulls kept).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Optional

import sqlglot
from sqlglot import exp

from .intake import InputError, Intake
from .outputset import scratch_directory
from .sql import quote, text_literal

# DuckDB's names for the Spark types a Parquet file's columns can have (the intake reads
# a column natively when its type is the declared one).
DUCKDB_TYPE = {"bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT",
               "date": "DATE", "boolean": "BOOLEAN", "double": "DOUBLE", "float": "FLOAT", "string": "VARCHAR",
               "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP", "binary": "BLOB"}
LOCAL_MEMORY = "6g"  # the driver's heap in local mode (RULELANG_SPARK_MEMORY); a national month needs it


@functools.lru_cache(maxsize=1)
def local_warehouse():
    """Where local Spark keeps managed tables: rulelang makes none, but Spark would leave an
    empty spark-warehouse/ in the user's working directory; a temporary directory of this
    process instead, removed when it ends."""
    return scratch_directory("rulelang-spark-warehouse-")


def spark_session():
    """The Spark session of this process: the cluster's when run by `spark-submit` (its
    master is configured) or through Spark Connect (`SPARK_REMOTE`), otherwise local mode
    on every core (`RULELANG_SPARK_MASTER` chooses another master)."""
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("rulelang")
    configured = SparkConf()
    if not os.environ.get("SPARK_REMOTE") and not configured.contains("spark.master"):
        # Local mode: the driver is the executor too, and its heap holds the checked tables.
        builder = builder.master(os.environ.get("RULELANG_SPARK_MASTER", "local[*]")) \
            .config("spark.driver.memory", os.environ.get("RULELANG_SPARK_MEMORY", LOCAL_MEMORY))
        if not configured.contains("spark.sql.warehouse.dir"):
            builder = builder.config("spark.sql.warehouse.dir", local_warehouse().name)
    for key, value in {
        "spark.sql.ansi.enabled": "true",  # overflow is an error, never a wrapped number
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": os.environ.get("RULELANG_SPARK_PARTITIONS", "8"),
        # A rulebook's plan is one query of many layers (a layer per level of rules and per
        # definition, a branch per output): more than Spark's default 100 passes.
        "spark.sql.analyzer.maxIterations": "10000",
        "spark.sql.optimizer.maxIterations": "10000",
    }.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if hasattr(spark, "sparkContext") and not os.environ.get("SPARK_REMOTE"):
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_error(error: Exception) -> str:
    """The meaningful line of a Spark error (they come as Java exceptions through py4j, the
    cause often lines below a wrapper's): the first naming an error class, else the first."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not
             line.strip().startswith(("at ", "An error occurred", "JVM stacktrace"))]
    named = [line for line in lines if re.search(r"\[[A-Z][A-Z_]+[A-Z]\]", line)]
    first = (named or lines or [type(error).__name__])[0].lstrip(": ")
    if "UNABLE_TO_ACQUIRE_MEMORY" in first or "OutOfMemory" in first:
        first += (" (give Spark more memory: RULELANG_SPARK_MEMORY in local mode, "
                  "spark.executor.memory on a cluster)")
    return first


def is_spark_error(error: BaseException) -> bool:
    """An error Spark raised (through py4j or Spark Connect), as opposed to one of rulelang's."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return isinstance(error, (PySparkException, Py4JError))


def is_overflow(error: Exception) -> bool:
    return "ARITHMETIC_OVERFLOW" in str(error) or "overflow" in spark_error(error).lower()


class Rows:
    """A query's result, fetched (collected) only when asked: queries here are summaries."""

    def __init__(self, frame=None, rows: Optional[list] = None):
        self.frame, self.rows = frame, rows

    def fetchall(self) -> list:
        if self.rows is None:
            self.rows = [tuple(_plain(v) for v in row) for row in self.frame.collect()]
        return self.rows

    def fetchone(self):
        rows = self.rows if self.rows is not None else [tuple(_plain(v) for v in r) for r in self.frame.take(1)]
        return rows[0] if rows else None


def _plain(value):
    """Spark's DECIMAL(38, 0) sums as the integers they are."""
    return int(value) if isinstance(value, Decimal) and value == value.to_integral_value() else value


class SparkTables:
    """A Spark session used the way the intake and the settlement use a DuckDB connection:
    `execute(sql)` of DuckDB-dialect statements over named tables, each a temporary view."""

    def __init__(self, spark):
        self.spark = spark
        self.views = 0

    # ---- the connection's surface
    def execute(self, sql: str, parameters=None) -> Rows:
        if parameters:
            raise NotImplementedError("bound parameters are not sent to Spark")  # only in-memory records use them
        tree = sqlglot.parse_one(sql, read="duckdb")
        if isinstance(tree, exp.Create):
            self._create(tree)
            return Rows(rows=[])
        if isinstance(tree, exp.Insert):
            self._insert(tree)
            return Rows(rows=[])
        if isinstance(tree, exp.Update):
            self._update(tree)
            return Rows(rows=[])
        if isinstance(tree, exp.Describe):
            frame = self.frame(tree.this)
            return Rows(rows=[(field.name, self.duckdb_type(field.dataType.simpleString())) for field in frame.schema])
        if isinstance(tree, exp.Set):
            return Rows(rows=[])  # DuckDB settings (progress tracking) mean nothing here
        return Rows(self.frame(tree))

    def query_progress(self) -> float:
        return -1.0  # Spark reports progress in its own UI

    def close(self) -> None:
        for view in self.spark.catalog.listTables():
            if view.isTemporary:
                self.spark.catalog.dropTempView(view.name)

    # ---- reading files
    def parquet(self, path: Path) -> str:
        """A Parquet file as a view with its rows' places (`file_row_number`, from 0)."""
        self.views += 1
        name = f"__parquet_{self.views}"
        frame = self.spark.read.parquet(str(path))
        frame.select("*", frame["_metadata.row_index"].alias("file_row_number")).createOrReplaceTempView(name)
        return quote(name)

    # ---- statements
    def frame(self, query: exp.Expression):
        return self.spark.sql(spark_sql(query))

    def _create(self, tree: exp.Create) -> None:
        target = tree.this
        name = target.this.name if isinstance(target, exp.Schema) else target.name
        if isinstance(target, exp.Schema) and tree.expression is None:  # an empty table of given columns
            columns = [f"CAST(NULL AS {column.args['kind'].sql('duckdb')}) AS {quote(column.name)}"
                       for column in target.expressions]
            frame = self.frame(sqlglot.parse_one(f"SELECT {', '.join(columns)} LIMIT 0", read="duckdb"))
        else:
            frame = self.frame(tree.expression)
        self.register(name, frame, materialised=tree.args.get("kind", "").upper() == "TABLE")

    def register(self, name: str, frame, materialised: bool) -> None:
        """A table the statements name: what DuckDB keeps as a table is computed here once and
        kept by the executors (a local checkpoint), so that the checks reading it neither
        recompute it nor plan again the query that made it; a view is only a name."""
        if materialised:
            frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)

    def _insert(self, tree: exp.Insert) -> None:
        name = tree.this.name
        table = self.spark.table(name)
        added = self.frame(tree.expression)
        self.register(name, table.union(added.toDF(*table.columns)), materialised=True)

    def _update(self, tree: exp.Update) -> None:
        """`UPDATE t [AS a] SET c = e [FROM (q) AS j] WHERE w` as a new t: every column kept,
        c replaced by `CASE WHEN w THEN e ELSE c END`, q joined on w (its rows match at most
        one row of t each time here: it is keyed by what w compares)."""
        table = tree.this
        alias = table.alias or table.name
        name = table.name
        columns = self.spark.table(name).columns
        assigned = {eq.this.name: eq.expression for eq in tree.expressions}
        where = tree.args["where"].this
        source = tree.args.get("from_") or tree.args.get("from")
        joined = ""
        hit = where.sql("duckdb")
        if source is not None:
            joined_table = source.this
            joined_alias = joined_table.alias
            joined = f" LEFT JOIN (SELECT *, TRUE AS __hit FROM {joined_table.unalias().sql('duckdb')}) AS " \
                     f"{quote(joined_alias)} ON {where.sql('duckdb')}"
            hit = f"{quote(joined_alias)}.__hit"
        selected = []
        for column in columns:
            value = f"{quote(alias)}.{quote(column)}"
            if column in assigned:
                value = f"CASE WHEN {hit} THEN {assigned[column].sql('duckdb')} ELSE {value} END"
            selected.append(f"{value} AS {quote(column)}")
        query = f"SELECT {', '.join(selected)} FROM {quote(name)} AS {quote(alias)}{joined}"
        self.register(name, self.frame(sqlglot.parse_one(query, read="duckdb")), materialised=True)

    def write_file(self, query: str, path: Path, parquet: bool, scratch: Path) -> None:
        """One output file written by Spark: one partition (its order kept), moved into place.
        CSV lines are made here, quoted as DuckDB quotes them (a value holding a comma, a quote,
        a line break or `#`, and the empty text, are quoted; NULL is nothing), so that both
        engines write the same bytes."""
        frame = self.frame(sqlglot.parse_one(query, read="duckdb")).coalesce(1)
        directory = scratch / f"written-{path.name}"
        if parquet:
            frame.write.mode("overwrite").parquet(str(directory))
        else:
            fields = []
            for column in frame.columns:
                text = f"CAST(`{column.replace('`', '``')}` AS STRING)"
                special = " OR ".join(f"instr({text}, {mark}) > 0" for mark in ("','", "'\"'", "chr(10)", "chr(13)", "'#'"))
                fields.append(f"CASE WHEN {text} IS NULL THEN '' WHEN {text} = '' OR {special} "
                              f"THEN concat('\"', replace({text}, '\"', '\"\"'), '\"') ELSE {text} END")
            frame.selectExpr(f"concat_ws(',', {', '.join(fields)}) AS line").write.mode("overwrite") \
                .option("lineSep", "\n").text(str(directory))
        parts = sorted(p for p in directory.iterdir() if p.name.startswith("part-"))
        if len(parts) > 1:
            raise OSError(f"Spark wrote {len(parts)} files for {path.name}, not one")
        if parquet:
            shutil.move(str(parts[0]), str(path))
        else:
            with open(path, "wb") as out:
                out.write((",".join(frame.columns) + "\n").encode("utf-8"))
                for part in parts:
                    with open(part, "rb") as written:
                        shutil.copyfileobj(written, out, 1 << 20)
        shutil.rmtree(directory, ignore_errors=True)

    @staticmethod
    def duckdb_type(spark_type: str) -> str:
        if spark_type.startswith("decimal"):
            return spark_type.upper().replace(",", ", ")
        return DUCKDB_TYPE.get(spark_type, spark_type.upper())


def spark_sql(tree: exp.Expression) -> str:
    """A DuckDB-dialect query as Spark SQL: the functions Spark names otherwise rewritten on
    the syntax tree, 128-bit integers as DECIMAL(38, 0) (ANSI mode errs on overflow)."""

    def rewrite(node: exp.Expression) -> exp.Expression:
        name = (node.name if isinstance(node, exp.Anonymous) else type(node).__name__).lower()
        if name in ("regexp_full_match", "regexpfullmatch"):
            subject, pattern = (node.expressions if isinstance(node, exp.Anonymous) else [node.this, node.expression])
            return exp.RegexpLike(this=subject, expression=exp.Literal.string(f"^(?:{pattern.name})$"))
        if name in ("json_object", "jsonobject"):
            pairs = node.expressions
            if pairs and isinstance(pairs[0], exp.JSONKeyValue):
                flat = [part for pair in pairs for part in (pair.this, pair.expression)]
            else:
                flat = list(pairs)
            struct = exp.Anonymous(this="named_struct", expressions=flat)
            options = exp.Anonymous(this="map", expressions=[exp.Literal.string("ignoreNullFields"),
                                                             exp.Literal.string("false")])
            return exp.Anonymous(this="to_json", expressions=[struct, options])
        return node

    text = tree.transform(rewrite).sql(dialect="spark")
    return text.replace("INT128", "DECIMAL(38, 0)")


class SparkIntake(Intake):
    """The intake with its statements run by Spark, reading Parquet files where they are."""

    def parquet_relation(self, source) -> str:
        return self.con.parquet(source.path)

    def distinct_ids(self, table: str, stage: str, key: str) -> str:
        """Spark plans its own aggregates: no bit array of dense ids (DuckDB's bitstring_agg)."""
        return f"SELECT count(DISTINCT {quote(key)}) FROM {stage}"

    def dictionary_texts(self, source) -> set:
        """None read as stored: Spark reads each value (DuckDB's dictionaries are its own)."""
        return set()

    def enum_type(self, name: str) -> str:
        """Spark has no enums: an enum's values are text (checked by enum_value)."""
        return "VARCHAR"

    def enum_value(self, column: str, name: str) -> str:
        values = ", ".join(text_literal(v) for v in self.checked.enums[name].values)
        return f"(CASE WHEN {column} IN ({values}) THEN {column} END)"

    def lines_grouped(self, lines: bool):
        """Spark plans its own aggregates (DuckDB's perfect hash is a DuckDB setting)."""
        return contextlib.nullcontext()

    def found_in_an_array(self, target: str, key: str, given: str):
        """Spark plans its own joins: references are checked by a join (no bit array of ids)."""
        return None

    def execute(self, source, sql: str, parameters=None):
        try:
            return self.con.execute(sql, parameters)
        except Exception as error:  # a file Spark cannot read names the file
            if not is_spark_error(error):
                raise
            raise InputError(source.display, f"cannot be read: {spark_error(error)}") from None
