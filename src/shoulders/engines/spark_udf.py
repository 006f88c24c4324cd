"""Spark: ``predict_batch_udf`` over a DataFrame of keys (paths or texts), one model per Python worker.
Each prediction row travels back as one JSON string, so rows with an error (no label) need no schema tricks."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SparkJob:
    master: str = "local[*]"
    workers: int | None = None  # partitions (default: Spark's default parallelism)
    batch_size: int = 32


def session(master: str):
    """A Spark session whose Python workers run this interpreter (and so this environment)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # local mode starts its workers with this
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    spark = (
        SparkSession.builder.master(master).appName("shoulders")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # shoulders shows its own
        .config("spark.pyspark.python", sys.executable)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def score(items: list[tuple[int, str]], factory: Callable[[], Callable[[list[str]], list[dict]]], job: SparkJob) -> Iterator[dict]:
    """``factory()``'s row for each (index, key), computed on the Spark workers and streamed back in index order."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.functions import col
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    def make_predict_fn():
        import numpy as np

        work = factory()
        return lambda keys: np.array([json.dumps(row) for row in work(list(keys))], dtype=object)

    spark = session(job.master)
    schema = StructType([StructField("index", LongType()), StructField("key", StringType())])
    keys = spark.createDataFrame(items, schema).repartition(job.workers or spark.sparkContext.defaultParallelism)
    udf = predict_batch_udf(make_predict_fn, return_type=StringType(), batch_size=job.batch_size)
    scored = keys.select(col("index"), udf(col("key")).alias("row")).orderBy("index")
    for record in scored.toLocalIterator():
        yield json.loads(record["row"])
