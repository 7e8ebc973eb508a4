"""Reads an Iceberg table hubcap keeps with pyiceberg and DuckDB's iceberg extension,
independently of hubcap's own code.

Usage: read_iceberg.py METADATA_JSON TABLE_DIR PARTITION_VALUE

Prints one JSON document:
  pyiceberg:  rows: every row's (partition, date, SequenceNumber, EnqueuedTime in epoch µs);
              files: the data files a full scan plans; pruned: for row_filter
              partition == PARTITION_VALUE, the files planned and the SequenceNumbers returned;
              offsets: the current snapshot's hubcap.offsets.* summary entries;
              entries: the current snapshot's manifest entries, as pyiceberg reads them
              (sequence numbers inherited where null): [file_path, status, snapshot_id,
              sequence_number, file_sequence_number], by file path
  duckdb:     iceberg_scan of METADATA_JSON: count and sum(SequenceNumber), the count in
              PARTITION_VALUE; and the same count by the table directory (version-hint.text);
              rows: every row's [partition, SequenceNumber]
"""
import json
import sys

import duckdb
from duckdb_extensions import import_extension
from pyiceberg.expressions import EqualTo
from pyiceberg.table import StaticTable


def main():
    metadata, table_dir, value = sys.argv[1:4]
    table = StaticTable.from_metadata(metadata)
    rows = table.scan().to_arrow().to_pylist()
    pruned_scan = table.scan(row_filter=EqualTo("partition", value))
    snapshot = table.current_snapshot()
    entries = table.inspect.entries().to_pylist()
    out = {
        "pyiceberg": {
            "rows": [
                [
                    r["partition"],
                    r["date"],
                    r["SequenceNumber"],
                    None if r["EnqueuedTime"] is None else int(r["EnqueuedTime"].timestamp() * 1_000_000),
                ]
                for r in rows
            ],
            "files": sorted(t.file.file_path for t in table.scan().plan_files()),
            "pruned": {
                "files": sorted(t.file.file_path for t in pruned_scan.plan_files()),
                "sequence_numbers": sorted(r["SequenceNumber"] for r in pruned_scan.to_arrow().to_pylist()),
            },
            "offsets": {
                k: v for k, v in snapshot.summary.additional_properties.items() if k.startswith("hubcap.offsets.")
            },
            "entries": sorted(
                [
                    e["data_file"]["file_path"],
                    e["status"],
                    e["snapshot_id"],
                    e["sequence_number"],
                    e["file_sequence_number"],
                ]
                for e in entries
            ),
        }
    }
    con = duckdb.connect()
    con.execute("SET threads=1")
    import_extension("avro", con=con)
    import_extension("iceberg", con=con)
    con.execute("LOAD avro")
    con.execute("LOAD iceberg")
    count, total = con.sql(f"SELECT count(*), sum(SequenceNumber) FROM iceberg_scan('{metadata}')").fetchone()
    (in_partition,) = con.sql(
        f"SELECT count(*) FROM iceberg_scan('{metadata}') WHERE partition = '{value}'"
    ).fetchone()
    (by_dir,) = con.sql(f"SELECT count(*) FROM iceberg_scan('{table_dir}')").fetchone()
    rows = con.sql(f"SELECT partition, SequenceNumber FROM iceberg_scan('{metadata}') ORDER BY 1, 2").fetchall()
    out["duckdb"] = {
        "count": count,
        "sum": int(total),
        "in_partition": in_partition,
        "by_dir": by_dir,
        "rows": [[p, n] for p, n in rows],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
