"""Spark plumbing for the batch jobs: the lazy pyspark import, the session, ordered populations,
and partition passes that return small JSON results to the driver.

Layer: ``experiments.jobs`` (entry points). pyspark is optional (the ``spark`` extra) and is
imported only here, when a Spark job runs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from experiments.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = (
    'pyspark is not installed; install the spark extra: pip install "liftlab[spark]" '
    "(Spark needs Java 17 or newer on the PATH)"
)
ROW = "row"  # the population's row number: the order the single-process run reads it in


def require_pyspark() -> Any:
    """The pyspark module, or an ImportError that says how to install it."""
    try:
        import pyspark
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return pyspark


def get_session(
    master: str | None = None, *, app_name: str = "liftlab", conf: dict[str, str] | None = None
) -> SparkSession:
    """The active Spark session (spark-submit's) or a new one on ``master`` (e.g. ``local[2]``).

    Python workers run this interpreter unless PYSPARK_PYTHON says otherwise, so that they see
    the same liftlab, numpy and torch as the driver.
    """
    require_pyspark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def read_population(
    spark: SparkSession, path: str | None = None, table: str | None = None
) -> DataFrame:
    """A Parquet file, folder or file-based table with a ``row`` column numbering its users.

    The numbering is the order in which ``pandas.read_parquet`` reads the same data — files by
    path, rows in file order — so that ties between equal users break the same way as in the
    single-process run.
    """
    from pyspark.sql import functions as F  # noqa: N812 - the pyspark convention

    if (path is None) == (table is None):
        raise ValidationError("population", "give either a Parquet path or a table name")
    frame = spark.read.parquet(path) if path is not None else spark.table(str(table))
    if "unit_id" not in frame.columns:
        raise ValidationError("population", f"{path or table} has no unit_id column")
    try:
        located = frame.select(
            "*",
            F.col("_metadata.file_path").alias("_liftlab_file"),
            F.col("_metadata.row_index").alias("_liftlab_row"),
        )
    except Exception as exc:  # noqa: BLE001 - pyspark raises AnalysisException subclasses
        raise ValidationError(
            "population",
            f"{table} is not stored as Parquet files, so its row order is undefined; "
            "write it out as Parquet and give the path",
        ) from exc
    counts = sorted((r[0], r[1]) for r in located.groupBy("_liftlab_file").count().collect())
    offsets, start = [], 0
    for file_path, n in counts:
        offsets.append((file_path, start))
        start += n
    offset_frame = spark.createDataFrame(offsets, "_liftlab_file string, _liftlab_offset long")
    return (
        located.join(F.broadcast(offset_frame), "_liftlab_file")
        .withColumn(ROW, F.col("_liftlab_offset") + F.col("_liftlab_row"))
        .drop("_liftlab_file", "_liftlab_row", "_liftlab_offset")
    )


def partition_pass(df: DataFrame, fn: Callable[[pd.DataFrame], Any]) -> list[Any]:
    """``fn(rows of one partition as pandas)`` on every non-empty partition; its JSON-able
    results, collected on the driver (keep them small: a few thousand numbers)."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        frames = list(batches)
        if frames:
            part = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
            yield pd.DataFrame({"result": [json.dumps(fn(part))]})

    return [json.loads(r.result) for r in df.mapInPandas(run, "result string").collect()]
