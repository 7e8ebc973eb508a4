"""Reads a Delta table hubcap keeps with Spark and Delta Lake's own reader (delta-spark), as
Databricks, Synapse and Fabric do, independently of hubcap's code.

Usage: read_delta_spark.py TABLE_DIR PARTITION_VALUE DATE

The jars come from $SPARK_JARS (a comma-separated list: delta-spark and delta-storage, which
scripts/setup-test-env fetches from Maven Central), so nothing is resolved at run time.

Prints one JSON document:
  version:           the table's latest version (DESCRIBE HISTORY)
  partition_columns: the table's partition columns (DESCRIBE DETAIL)
  rows:              [partition, SequenceNumber, Offset] of every row
  pruned:            the files (paths relative to the table) Spark plans to read for a query
                     filtered on partition = PARTITION_VALUE, and the SequenceNumbers it returns
  pruned_date:       the same for partition = PARTITION_VALUE and date = DATE
"""
import json
import os
import sys

from pyspark.sql import SparkSession


def main():
    root, value, date = sys.argv[1:4]
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("hubcap-delta-reader")
        .config("spark.jars", os.environ["SPARK_JARS"])
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        # A small table: replaying its log in one task is faster than in Spark's default 50.
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    table = spark.read.format("delta").load(root)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{root}`").collect()[0]
    version = spark.sql(f"DESCRIBE HISTORY delta.`{root}` LIMIT 1").collect()[0]["version"]
    rows = [
        [r["partition"], r["SequenceNumber"], r["Offset"]]
        for r in table.select("partition", "SequenceNumber", "Offset").collect()
    ]
    prefix = "file:" + os.path.abspath(root).rstrip("/") + "/"

    def scan(condition):
        df = table.where(condition)
        files = sorted(f.removeprefix(prefix) for f in df.inputFiles())
        numbers = sorted(r[0] for r in df.select("SequenceNumber").collect())
        return {"files": files, "sequence_numbers": numbers}

    print(
        json.dumps(
            {
                "version": version,
                "partition_columns": list(detail["partitionColumns"]),
                "rows": rows,
                "pruned": scan(f"partition = '{value}'"),
                "pruned_date": scan(f"partition = '{value}' AND date = '{date}'"),
            }
        )
    )
    spark.stop()


if __name__ == "__main__":
    main()
