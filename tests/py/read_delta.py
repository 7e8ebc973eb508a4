"""Reads a Delta table hubcap keeps with delta-rs (the `deltalake` package), independently of
hubcap's own code.

Usage: read_delta.py TABLE_DIR PARTITION_VALUE [--date DATE] [APP_ID...]

Prints one JSON document:
  version:        the table's latest version
  partition_columns, files: the table's partition columns and the data files it holds (relative
                  paths, from the log's add actions)
  rows:           every row: partition, date, SequenceNumber, Offset, Body (as text)
  pruned:         for a scan filtered on partition = PARTITION_VALUE, the files it reads and
                  the SequenceNumbers it returns
  pruned_date:    with --date, the same for partition = PARTITION_VALUE and date = DATE, the
                  files as paths relative to the table
  txn:            each APP_ID's set-transaction version (null when the table has none)
  duckdb:         DuckDB's delta_scan: the (partition, SequenceNumber) of every row, the
                  count of rows in partition PARTITION_VALUE, and with --date the files its
                  scan filtered on partition and date reads, of all ("Scanning Files: 2/40")
"""
import argparse
import json
import os
import re
import sys
import warnings

import duckdb
import pyarrow.compute as pc
from deltalake import DeltaTable
from duckdb_extensions import import_extension


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("value")
    parser.add_argument("--date")
    parser.add_argument("apps", nargs="*")
    args = parser.parse_intermixed_args()
    root, value, apps = args.root, args.value, args.apps
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
    doc = {
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
    if args.date is not None:
        doc["pruned_date"] = pruned_by_date(table, dataset, value, args.date)
        doc["duckdb"]["scanning_files"] = duckdb_files(con, root, value, args.date)
    print(json.dumps(doc))


def pruned_by_date(table, dataset, value, date):
    """The files and SequenceNumbers of a scan filtered on partition and date."""
    base = os.path.abspath(table.table_uri.removeprefix("file://"))
    uris = table.file_uris(partition_filters=[("partition", "=", value), ("date", "=", date)])
    rows = dataset.to_table(
        columns=["SequenceNumber"],
        filter=(pc.field("partition") == value) & (pc.field("date") == date),
    )
    return {
        "files": sorted(os.path.relpath(u.removeprefix("file://"), base) for u in uris),
        "sequence_numbers": sorted(rows.column("SequenceNumber").to_pylist()),
    }


def duckdb_files(con, root, value, date):
    """`Scanning Files: k/n` of DuckDB's plan for a scan filtered on partition and date."""
    plan = con.execute(
        "EXPLAIN ANALYZE SELECT count(*) FROM delta_scan(?) WHERE partition = ? AND date = ?",
        [root, value, date],
    ).fetchall()
    text = "\n".join(str(r[1]) for r in plan)
    found = re.search(r"Scanning Files:[\s│]*(\d+)/(\d+)", text)
    if not found:
        raise SystemExit(f"no 'Scanning Files' in DuckDB's plan:\n{text}")
    return [int(found.group(1)), int(found.group(2))]


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    # deltalake's runtime threads may abort the interpreter's teardown ("terminate called
    # without an active exception"); the output is complete by now.
    os._exit(0)
