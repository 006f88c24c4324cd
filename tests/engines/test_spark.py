"""--engine spark for real: PySpark's predict_batch_udf in local[2] on Java 17, the same rows as the local
engine, and two Python workers doing the work."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyspark")

from shoulders.predicting import BatchJob, Cluster, Inputs, predict_to_file  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java: .ci/run installs openjdk-17-jdk-headless"),
]


def test_spark_rows_equal_local_rows_and_two_workers_did_the_work(trained_run, tmp_path):
    files = sorted(Path(trained_run.config.data).glob("*/*.png"))[1::2]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(map(str, files)) + f"\n{tmp_path / 'gone.png'}\n")
    inputs = Inputs((f"@{listing}",))
    predict_to_file(BatchJob(trained_run.path, inputs, tmp_path / "local.parquet"), progress=False)
    job = BatchJob(trained_run.path, inputs, tmp_path / "spark.parquet", engine="spark", batch_size=4,
                   cluster=Cluster(spark_master="local[2]", workers=2))
    summary = predict_to_file(job, progress=False)
    assert summary.written == len(files) + 1 and summary.failed == 1
    import pyarrow.parquet as pq

    expected = pq.read_table(tmp_path / "local.parquet").to_pylist()
    got = pq.read_table(tmp_path / "spark.parquet").to_pylist()
    assert [row["path"] for row in got] == [row["path"] for row in expected]
    for mine, theirs in zip(got, expected):
        assert mine["label"] == theirs["label"] and mine["error"] == theirs["error"]
        assert np.allclose(mine["top_k_probabilities"], theirs["top_k_probabilities"], atol=1e-5)
    assert len({row["worker"] for row in got}) == 2  # host:pid of each Python worker, written by it
    assert json.dumps(got[-1]["top_k_labels"]) == "[]" and "gone.png" in got[-1]["error"]
