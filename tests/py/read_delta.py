"""Reads a Delta table hubcap keeps with delta-rs (the `deltalake` package), independently of
hubcap's own code.

Usage: read_delta.py TABLE_DIR PARTITION_VALUE [APP_ID...]

Prints one JSON document:
  version:        the table's latest version
  partition_columns, files: the table's partition columns and the data files it holds (relative
                  paths, from the log's add actions)
  rows:           every row: partition, date, SequenceNumber, Offset, Body (as text)
  pruned:         for a scan filtered on partition = PARTITION_VALUE, the files it reads and
                  the SequenceNumbers it returns
  txn:            each APP_ID's set-transaction version (null when the table has none)
  duckdb:         DuckDB's delta_scan: the (partition, SequenceNumber) of every row, and the
                  count of rows in partition PARTITION_VALUE
"""
import json
import os
import sys
import warnings

import duckdb
import pyarrow.compute as pc
from deltalake import DeltaTable
from duckdb_extensions import import_extension


def main():
    root, value, apps = sys.argv[1], sys.argv[2], sys.argv[3:]
    warnings.simplefilter("ignore", DeprecationWarning)
    table = DeltaTable(root)
    data = table.to_pyarrow_table(columns=["partition", "date", "SequenceNumber", "Offset", "Body"])
    rows = [
        {
            "partition": r["partition"],
            "date": r["date"],
            "SequenceNumber": r["SequenceNumber"],
            "Offset": r["Offset"],
            "Body": None if r["Body"] is None else r["Body"].decode("utf-8", "replace"),
        }
        for r in data.to_pylist()
    ]
    pruned_files = table.file_uris(partition_filters=[("partition", "=", value)])
    dataset = table.to_pyarrow_dataset()
    pruned = dataset.to_table(
        columns=["SequenceNumber"], filter=pc.field("partition") == value
    )
    con = duckdb.connect()
    import_extension("delta", con=con)
    scanned = con.execute(
        "SELECT partition, SequenceNumber FROM delta_scan(?) ORDER BY 1, 2", [root]
    ).fetchall()
    in_partition = con.execute(
        "SELECT count(*) FROM delta_scan(?) WHERE partition = ?", [root, value]
    ).fetchone()[0]
    print(
        json.dumps(
            {
                "version": table.version(),
                "partition_columns": table.metadata().partition_columns,
                "files": sorted(table.get_add_actions(flatten=True).column("path").to_pylist()),
                "rows": rows,
                "pruned": {
                    "files": len(pruned_files),
                    "sequence_numbers": sorted(pruned.column("SequenceNumber").to_pylist()),
                },
                "txn": {app: table.transaction_version(app) for app in apps},
                "duckdb": {
                    "rows": [[p, n] for p, n in scanned],
                    "in_partition": in_partition,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    # deltalake's runtime threads may abort the interpreter's teardown ("terminate called
    # without an active exception"); the output is complete by now.
    os._exit(0)
