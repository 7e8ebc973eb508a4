"""Reads the Properties (Kafka headers) of every record in hubcap files, keeping repeated keys.

Usage: read_headers.py avro|parquet FILE...

Prints one JSON document: {"records": [{"seq", "entries", "as_dict", ...}]} where
  entries:  every map entry in file order, as [key, branch] pairs, decoded independently of hubcap.
            Avro: the raw block bytes read with the Properties map swapped for an array of
            {key, value} records, which has the same binary encoding, so nothing is merged.
            Parquet: pyarrow's map values, a list of (key, value) pairs.
  as_dict:  what a dict-based reader returns: fastavro's record for Avro, dict(pairs) for Parquet.
  duckdb:   what DuckDB makes of the map: its keys (map_keys), each key's lookup
            (Properties['k'] cast to text), and whether fetching the whole map into Python works
            ("ok" or DuckDB's error text). Avro goes through DuckDB's offline Avro extension.
Values use read_capture.py's / read_parquet.py's branch form ({"bytes": "<hex>"}, {"null": None}).
"""
import copy
import json
import os
import sys

import duckdb
import fastavro
from duckdb_extensions import import_extension

sys.path.insert(0, os.path.dirname(__file__))
import read_capture  # noqa: E402


def entries_schema(writer_schema):
    """The writer schema with the Properties map as an array of {key, value} records."""
    schema = copy.deepcopy(writer_schema)
    for field in schema["fields"]:
        if field["name"] == "Properties":
            field["type"] = {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "PropertyEntry",
                    "fields": [
                        {"name": "key", "type": "string"},
                        {"name": "value", "type": field["type"]["values"]},
                    ],
                },
            }
    return fastavro.parse_schema(schema)


def duckdb_view(source):
    """DuckDB's view of every record's Properties, by SequenceNumber."""
    con = duckdb.connect()
    if source.startswith("read_avro"):
        import_extension("avro", con=con)
    rows = con.execute(f"SELECT SequenceNumber, map_keys(Properties) FROM {source} ORDER BY 1").fetchall()
    view = {}
    for seq, keys in rows:
        lookup = {
            k: con.execute(
                f"SELECT CAST(Properties[?] AS VARCHAR) FROM {source} WHERE SequenceNumber = ?", [k, seq]
            ).fetchone()[0]
            for k in dict.fromkeys(keys)
        }
        view[seq] = {"keys": keys, "lookup": lookup}
    try:
        con.execute(f"SELECT Properties FROM {source}").fetchall()
        fetch = "ok"
    except duckdb.Error as e:
        fetch = f"{type(e).__name__}: {e}"
    for v in view.values():
        v["fetch_map"] = fetch
    return view


def avro(path):
    with open(path, "rb") as f:
        as_dicts = [r["Properties"] for r in fastavro.reader(f)]
    out = []
    with open(path, "rb") as f:
        for block in fastavro.block_reader(f):
            schema = entries_schema(block.writer_schema)
            for _ in range(block.num_records):
                r = fastavro.schemaless_reader(block.bytes_, schema)
                out.append({
                    "seq": r["SequenceNumber"],
                    "entries": [[e["key"], read_capture.branch(e["value"])] for e in r["Properties"]],
                })
    assert len(out) == len(as_dicts), (len(out), len(as_dicts))
    duck = duckdb_view(f"read_avro('{path}')")
    for r, d in zip(out, as_dicts):
        r["as_dict"] = {k: read_capture.branch(v) for k, v in d.items()}
        r["duckdb"] = duck[r["seq"]]
    return out


def parquet(path):
    import pyarrow.parquet as pq

    import read_parquet

    table = pq.read_table(path)
    out = []
    for seq, props in zip(table.column("SequenceNumber").to_pylist(), table.column("Properties").to_pylist()):
        entries = [[k, read_parquet.branch(v)] for k, v in props]
        out.append({"seq": seq, "entries": entries, "as_dict": dict(entries)})
    duck = duckdb_view(f"read_parquet('{path}')")
    for r in out:
        r["duckdb"] = duck[r["seq"]]
    return out


if __name__ == "__main__":
    read = avro if sys.argv[1] == "avro" else parquet
    json.dump({"records": [r for path in sys.argv[2:] for r in read(path)]}, sys.stdout, default=str)
