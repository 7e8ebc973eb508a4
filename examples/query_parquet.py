"""Queries a hubcap Parquet archive written with the data-lake template
    --format parquet --path-format '{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/hour={Hour}/{Offset}'

    python3 examples/query_parquet.py ROOT TOPIC USER_ID [DATE]

prints "all events of one user, in order" twice, once with DuckDB and once with pyarrow, then
counts per partition and date. Needs `pip install duckdb pyarrow`.
"""
import sys

import duckdb
import pyarrow.compute as pc
import pyarrow.dataset as ds

root, topic, user = sys.argv[1], sys.argv[2], sys.argv[3]
date = sys.argv[4] if len(sys.argv) > 4 else None

# DuckDB: hive_partitioning turns partition=, date=, hour= folders into columns, and filters on
# them skip whole files.
con = duckdb.connect()
con.execute(f"""
    CREATE VIEW events AS
    SELECT * FROM read_parquet('{root}/{topic}/**/*.parquet', hive_partitioning = true)
""")
where = "SystemProperties['x-opt-partition-key'].string = ?"
params = [user]
if date:
    where += " AND date = ?"
    params.append(date)
rows = con.execute(f"""
    SELECT "partition", SequenceNumber, EnqueuedTime, decode(Body) AS body
    FROM events WHERE {where}
    ORDER BY EnqueuedTime, "partition", SequenceNumber
""", params).fetchall()
print(f"duckdb: {len(rows)} events of {user}")
for r in rows:
    print("duckdb", r[0], r[1], r[2].isoformat(), r[3])

# pyarrow: the same query with a dataset; the date filter prunes folders.
dataset = ds.dataset(f"{root}/{topic}", format="parquet", partitioning="hive")
table = dataset.to_table(
    columns=["partition", "SequenceNumber", "EnqueuedTime", "SystemProperties", "Body"],
    filter=(ds.field("date") == date) if date else None,
)
key = pc.struct_field(pc.map_lookup(table["SystemProperties"], "x-opt-partition-key", "first"), "string")
mine = table.filter(pc.equal(key, user)).sort_by([("EnqueuedTime", "ascending"), ("partition", "ascending"), ("SequenceNumber", "ascending")])
print(f"pyarrow: {mine.num_rows} events of {user}")
for r in mine.to_pylist():
    body = None if r["Body"] is None else r["Body"].decode(errors="replace")
    print("pyarrow", r["partition"], r["SequenceNumber"], r["EnqueuedTime"].isoformat(), body)

for partition, day, n in con.execute('SELECT "partition", date, count(*) FROM events GROUP BY ALL ORDER BY ALL').fetchall():
    print(f"count partition={partition} date={day}: {n}")
