"""Queries hubcap's (or Event Hubs Capture's) Avro files with DuckDB, offline.

    python3 examples/query_avro_duckdb.py 'capture/**/*.avro' USER_ID

DuckDB's Avro reader is an extension it normally downloads; the duckdb-extension-avro wheel
carries it: pip install duckdb==1.5.5 duckdb-extensions==1.5.5 duckdb-extension-avro==1.5.5 pytz
Avro unions arrive as DuckDB UNIONs (u0 long, u1 double, u2 string, u3 bytes).
"""
import sys

import duckdb
from duckdb_extensions import import_extension

glob, user = sys.argv[1], sys.argv[2]
con = duckdb.connect()
import_extension("avro", con=con)
con.execute(f"CREATE VIEW events AS SELECT * FROM read_avro('{glob}', filename = true)")
total, first, last = con.execute("SELECT count(*), min(SequenceNumber), max(SequenceNumber) FROM events").fetchone()
print(f"avro: {total} events, sequence numbers {first}..{last}")
rows = con.execute("""
    SELECT SequenceNumber, EnqueuedTimeUtc, decode(Body)
    FROM events
    WHERE union_extract(SystemProperties['x-opt-partition-key'], 'u2') = ?
    ORDER BY union_extract(SystemProperties['x-opt-enqueued-time'], 'u0'), filename, SequenceNumber
""", [user]).fetchall()
print(f"avro: {len(rows)} events of {user}")
for seq, enqueued, body in rows:
    print("avro", seq, enqueued, body)
