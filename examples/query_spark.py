"""Reads hubcap archives with Spark, as a Synapse or Databricks notebook would.

    python3 examples/query_spark.py --topic TOPIC --user USER_ID \
        [--avro ROOT [--namespace NS]] [--parquet ROOT] [--header NAME] [--avro-jar JAR]

--avro ROOT: an Avro archive in Capture's layout (hubcap's default --path-format),
    ROOT/{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}-{Offset}.avro
--parquet ROOT: a Parquet archive written with the data-lake template
    --format parquet --path-format '{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/hour={Hour}/{Offset}'

For each archive it prints the event count; per partition the events, distinct offsets, first and
last offset, duplicates and gaps (one JSON object a line); all events of one user (the partition
key, i.e. the Kafka record key) in order; and the events per value of one Kafka header (a Capture
`Properties` entry); for Parquet also the events per partition/date/hour folder.

Needs `pip install pyspark` (3.5 or later) and Java 17. Spark reads Avro with its spark-avro
package: give the jar with --avro-jar or SPARK_AVRO_JAR, else Spark fetches it from Maven Central
(spark.jars.packages). Databricks and Azure Synapse Spark pools ship it: in their notebooks, use
the `spark` session they provide and the queries below as they are.
"""
import argparse
import json
import os

import pyspark
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

p = argparse.ArgumentParser(description="Query hubcap archives with Spark")
p.add_argument("--topic", required=True, help="the topic (Capture's EventHub)")
p.add_argument("--user", required=True, help="a partition key (Kafka record key), e.g. user-42")
p.add_argument("--avro", metavar="ROOT", help="an Avro archive in Capture's layout")
p.add_argument("--namespace", default="*", help="Capture's {Namespace} folder (default: any)")
p.add_argument("--parquet", metavar="ROOT", help="a Parquet archive in the data-lake layout")
p.add_argument("--header", default="event-type", help="a Kafka header to count events by")
p.add_argument("--avro-jar", default=os.environ.get("SPARK_AVRO_JAR"), help="the spark-avro jar")
args = p.parse_args()

builder = (
    SparkSession.builder.master("local[2]")
    .appName("hubcap-query")
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .config("spark.sql.shuffle.partitions", "4")
    .config("spark.sql.session.timeZone", "UTC")
)
if args.avro and args.avro_jar:
    builder = builder.config("spark.jars", args.avro_jar)
elif args.avro:  # from Maven Central; Spark 4 is built for Scala 2.13, pip's Spark 3 for 2.12
    scala = "2.13" if int(pyspark.__version__.split(".")[0]) >= 4 else "2.12"
    builder = builder.config(
        "spark.jars.packages", f"org.apache.spark:spark-avro_{scala}:{pyspark.__version__}"
    )
spark = builder.getOrCreate()
spark.sparkContext.setLogLevel("WARN")


def report(label, table, key, enqueued, header):
    """Runs the same queries on either archive; `key`, `enqueued` and `header` are the SQL that
    reads the partition key, the enqueue time and a header's text in that format."""
    total = spark.sql(f"SELECT count(*) FROM {table}").first()[0]
    print(f"{label} total {total}")

    # Every offset once: no duplicates, and no gaps between the first and the last.
    for r in spark.sql(f"""
        SELECT partition, count(*) AS events, count(DISTINCT SequenceNumber) AS offsets,
               min(SequenceNumber) AS first, max(SequenceNumber) AS last,
               count(*) - count(DISTINCT SequenceNumber) AS duplicates,
               max(SequenceNumber) - min(SequenceNumber) + 1 - count(DISTINCT SequenceNumber) AS gaps
        FROM {table} GROUP BY partition ORDER BY partition
    """).collect():
        print(f"{label} partition {json.dumps(r.asDict())}")

    # All events of one user, in order.
    rows = spark.sql(f"""
        SELECT partition, SequenceNumber, cast({enqueued} AS string) AS at, cast(Body AS string) AS body
        FROM {table} WHERE {key} = :user
        ORDER BY {enqueued}, partition, SequenceNumber
    """, args={"user": args.user}).collect()
    print(f"{label} {len(rows)} events of {args.user}")
    for r in rows:
        print(f"{label} event {r.partition} {r.SequenceNumber} {r.at} {r.body}")

    # Events per value of a Kafka header (a Properties entry; hubcap stores header values as bytes).
    counts = spark.sql(f"""
        SELECT {header} AS value, count(*) AS events FROM {table} GROUP BY 1 ORDER BY 1
    """, args={"name": args.header}).collect()
    print(f"{label} header {args.header} {json.dumps({r.value: r.events for r in counts})}")


if args.avro:
    # Capture's layout is not Hive-style: the partition is the 7th path segment from the end.
    glob = f"{args.avro}/{args.namespace}/{args.topic}/*/*/*/*/*/*/*.avro"
    avro = spark.read.format("avro").load(glob)
    path = avro["_metadata.file_path"]
    avro.withColumn("partition", F.element_at(F.split(path, "/"), -7).cast("int")) \
        .createOrReplaceTempView("avro_archive")
    # Avro's map-value unions [long, double, string, bytes(, null)] become structs member0..member3.
    report(
        "avro",
        "avro_archive",
        key="SystemProperties['x-opt-partition-key'].member2",
        enqueued="timestamp_millis(SystemProperties['x-opt-enqueued-time'].member0)",
        header="cast(Properties[:name].member3 AS string)",
    )

if args.parquet:
    # Hive-style folders: partition, date and hour become columns, and filters on them prune files.
    spark.read.parquet(f"{args.parquet}/{args.topic}").createOrReplaceTempView("parquet_archive")
    for r in spark.sql("""
        SELECT partition, cast(date AS string) AS date, hour, count(*) AS events
        FROM parquet_archive GROUP BY ALL ORDER BY ALL
    """).collect():
        print(f"parquet folder {json.dumps(r.asDict())}")
    # Parquet has no unions: the same structs, with fields long, double, string, bytes.
    report(
        "parquet",
        "parquet_archive",
        key="SystemProperties['x-opt-partition-key'].string",
        enqueued="EnqueuedTime",
        header="cast(Properties[:name].bytes AS string)",
    )

spark.stop()
