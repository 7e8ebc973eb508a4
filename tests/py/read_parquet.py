"""Reads hubcap's Parquet output with pyarrow and DuckDB, independently of hubcap's own code.

Usage: read_parquet.py ROOT PARTITION_VALUE

Prints one JSON document:
  files:    per file (pyarrow.parquet): name, rows, row groups, schema as text
  records:  every row via pyarrow.dataset with hive partitioning, in the read_capture.py shape,
            plus the hive columns and EnqueuedTime in epoch ms
  duckdb:   total count, count per hive partition, the rows of one partition, and how many files
            DuckDB scanned for a query filtered on that partition (from EXPLAIN ANALYZE)
"""
import datetime
import glob
import json
import os
import re
import sys

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq


sys.path.insert(0, os.path.dirname(__file__))
from read_capture import capture_time  # noqa: E402


def branch(v):
    """A map value struct {long, double, string, bytes} → {branch: value}; None → null branch."""
    if v is None:
        return {"null": None}
    set_fields = {k: x for k, x in v.items() if x is not None}
    assert len(set_fields) == 1, f"exactly one branch set: {v}"
    (k, x), = set_fields.items()
    return {k: x.hex() if isinstance(x, bytes) else x}


def main(root, partition_value):
    files = []
    for path in sorted(glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True)):
        f = pq.ParquetFile(path)
        files.append({
            "name": os.path.relpath(path, root),
            "rows": f.metadata.num_rows,
            "row_groups": f.metadata.num_row_groups,
            "size": os.path.getsize(path),
            "schema": str(f.schema_arrow),
        })

    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    records = []
    for row in dataset.to_table().to_pylist():
        t = row["EnqueuedTime"]
        records.append({
            "partition": row["partition"],
            "date": str(row["date"]),
            "seq": row["SequenceNumber"],
            "offset": row["Offset"],
            "enqueued": row["EnqueuedTimeUtc"],
            "enqueued_matches": t is not None and row["EnqueuedTimeUtc"] == capture_time(int(t.timestamp() * 1000)),
            "time_ms": None if t is None else int(t.timestamp() * 1000),
            "sys": {k: branch(v) for k, v in row["SystemProperties"]},
            "props": {k: branch(v) for k, v in row["Properties"]},
            "body": None if row["Body"] is None else row["Body"].hex(),
        })

    con = duckdb.connect()
    src = f"read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
    total = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
    per_partition = dict(con.execute(f'SELECT "partition", count(*) FROM {src} GROUP BY 1 ORDER BY 1').fetchall())
    one = con.execute(
        f'SELECT SequenceNumber FROM {src} WHERE "partition" = {partition_value} ORDER BY SequenceNumber'
    ).fetchall()
    plan = "\n".join(r[1] for r in con.execute(
        f'EXPLAIN ANALYZE SELECT count(*) FROM {src} WHERE "partition" = {partition_value}'
    ).fetchall())
    scanned = re.search(r"Total Files Read:\s*(\d+)", plan) or re.search(r"Scanning Files:\s*(\d+)", plan)
    print(json.dumps({
        "files": files,
        "records": records,
        "duckdb": {
            "total": total,
            "per_partition": {str(k): v for k, v in per_partition.items()},
            "partition_offsets": [r[0] for r in one],
            "files_read_filtered": int(scanned.group(1)) if scanned else None,
            "plan": plan,
        },
    }, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
