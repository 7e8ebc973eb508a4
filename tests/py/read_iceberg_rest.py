"""Reads an Iceberg table hubcap keeps in a REST catalog with pyiceberg (the catalog's client) and
DuckDB (ATTACH ... TYPE iceberg), independently of hubcap's own code.

Usage: read_iceberg_rest.py CATALOG_URI NAMESPACE TABLE PARTITION_VALUE

Prints one JSON document:
  metadata_location: the table's current metadata file, as the catalog says
  pyiceberg: rows: every row's [partition, SequenceNumber]; files: the data files a full scan
             plans; pruned: for partition == PARTITION_VALUE, the files planned and the
             SequenceNumbers returned; offsets: the current snapshot's hubcap.offsets.* entries;
             snapshots: how many the metadata keeps
  duckdb:    rows: every row's [partition, SequenceNumber] through the catalog; in_partition: the
             count for partition = PARTITION_VALUE
"""
import json
import sys

import duckdb
from duckdb_extensions import import_extension
from pyiceberg.catalog import load_catalog
from pyiceberg.expressions import EqualTo


def main():
    uri, namespace, name, value = sys.argv[1:5]
    catalog = load_catalog("rest", type="rest", uri=uri)
    table = catalog.load_table((namespace, name))
    rows = table.scan(selected_fields=("partition", "SequenceNumber")).to_arrow().to_pylist()
    pruned = table.scan(row_filter=EqualTo("partition", value))
    snapshot = table.current_snapshot()
    out = {
        "metadata_location": table.metadata_location,
        "pyiceberg": {
            "rows": [[r["partition"], r["SequenceNumber"]] for r in rows],
            "files": sorted(t.file.file_path for t in table.scan().plan_files()),
            "pruned": {
                "files": sorted(t.file.file_path for t in pruned.plan_files()),
                "sequence_numbers": sorted(r["SequenceNumber"] for r in pruned.to_arrow().to_pylist()),
            },
            "offsets": {
                k: v
                for k, v in snapshot.summary.additional_properties.items()
                if k.startswith("hubcap.offsets.")
            },
            "snapshots": len(table.metadata.snapshots),
        },
    }
    con = duckdb.connect()
    con.execute("SET threads=1")
    for ext in ("avro", "iceberg", "httpfs"):
        import_extension(ext, con=con)
        con.execute(f"LOAD {ext}")
    con.execute(f"ATTACH '' AS lake (TYPE iceberg, ENDPOINT '{uri}', AUTHORIZATION_TYPE 'none')")
    qualified = f'lake."{namespace}"."{name}"'
    rows = con.sql(f"SELECT partition, SequenceNumber FROM {qualified} ORDER BY 1, 2").fetchall()
    (in_partition,) = con.sql(f"SELECT count(*) FROM {qualified} WHERE partition = '{value}'").fetchone()
    out["duckdb"] = {"rows": [[p, n] for p, n in rows], "in_partition": in_partition}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
