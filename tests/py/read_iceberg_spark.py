"""Reads an Iceberg table hubcap keeps in a REST catalog with Spark and Iceberg's own Spark runtime,
and optionally the Delta table over the same files with delta-spark, in one Spark session,
independently of hubcap's code.

Usage: read_iceberg_spark.py CATALOG_URI NAMESPACE TABLE PARTITION_VALUE [DELTA_TABLE_DIR]

The jars come from $SPARK_JARS (comma-separated: iceberg-spark-runtime, and delta-spark with
delta-storage for the Delta table; scripts/setup-test-env fetches them from Maven Central), so
nothing is resolved at run time.

Prints one JSON document:
  iceberg: rows: [partition, SequenceNumber] of every row through the catalog; files: how many
           data files a full scan plans; pruned_files: how many a scan for
           partition = PARTITION_VALUE plans and skips (Iceberg's scan metrics);
           pruned_rows: the rows it returns
  delta:   (with DELTA_TABLE_DIR) rows, and the file names of a full and a filtered scan (all,
           pruned), read by path
"""
import json
import os
import sys

from pyspark.sql import SparkSession


def scan_metric(df, name):
    """A metric of the query's scan node, after running it (Iceberg's scan counts the data files
    it planned and those it skipped on partition values and column bounds)."""
    df.collect()
    leaves = df._jdf.queryExecution().executedPlan().collectLeaves()
    for i in range(leaves.size()):
        metric = leaves.apply(i).metrics().get(name)
        if metric.isDefined():
            return metric.get().value()
    return None


def read(df, value, iceberg):
    rows = [[r["partition"], r["SequenceNumber"]] for r in df.select("partition", "SequenceNumber").collect()]
    pruned = df.where(f"partition = '{value}'")
    name = lambda f: f.rsplit("/", 1)[-1]
    out = {"rows": rows, "pruned_rows": pruned.count()}
    if iceberg:
        # Iceberg's scans list no input files; their metrics say what was planned.
        out["files"] = scan_metric(df, "resultDataFiles")
        out["pruned_files"] = scan_metric(pruned, "resultDataFiles")
    else:
        out["all"] = sorted(name(f) for f in df.inputFiles())
        out["pruned"] = sorted(name(f) for f in pruned.inputFiles())
    return out


def main():
    uri, namespace, name, value = sys.argv[1:5]
    delta_dir = sys.argv[5] if len(sys.argv) > 5 else None
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("hubcap-iceberg-reader")
        .config("spark.jars", os.environ["SPARK_JARS"])
        .config("spark.sql.catalog.rest", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.rest.type", "rest")
        .config("spark.sql.catalog.rest.uri", uri)
        .config("spark.sql.shuffle.partitions", "2")
        # Plans without adaptive wrappers, whose scan node's metrics are read back.
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    extensions = ["org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"]
    if delta_dir:
        extensions.append("io.delta.sql.DeltaSparkSessionExtension")
        builder = builder.config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        ).config("spark.databricks.delta.snapshotPartitions", "2")
    spark = builder.config("spark.sql.extensions", ",".join(extensions)).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    out = {"iceberg": read(spark.table(f"rest.`{namespace}`.`{name}`"), value, True)}
    if delta_dir:
        out["delta"] = read(spark.read.format("delta").load(delta_dir), value, False)
    print(json.dumps(out))
    spark.stop()


if __name__ == "__main__":
    main()
