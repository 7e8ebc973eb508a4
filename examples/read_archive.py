"""Reads a local hubcap (or Event Hubs Capture) archive with fastavro.

  python3 examples/read_archive.py ./capture                 # counts per partition, offset ranges
  python3 examples/read_archive.py ./capture user-42         # one key's events, in offset order

Needs `pip install fastavro`. Works on real Capture files too: they share the schema.
"""
import collections
import glob
import json
import os
import sys

import fastavro


def records(root):
    for path in sorted(glob.glob(os.path.join(root, "**", "*.avro"), recursive=True)):
        if "_checkpoints" in path:
            continue
        with open(path, "rb") as f:
            for r in fastavro.reader(f):
                yield path, r


def main(root, key=None):
    stats = collections.defaultdict(lambda: [0, None, None])
    for path, r in records(root):
        partition = os.path.relpath(path, root).split(os.sep)[2]
        if key is None:
            s = stats[partition]
            s[0] += 1
            s[1] = r["SequenceNumber"] if s[1] is None else min(s[1], r["SequenceNumber"])
            s[2] = r["SequenceNumber"] if s[2] is None else max(s[2], r["SequenceNumber"])
        elif r["SystemProperties"].get("x-opt-partition-key") == key:
            body = r["Body"]
            try:
                body = json.loads(body)
            except (TypeError, ValueError):
                pass
            print(partition, r["SequenceNumber"], r["EnqueuedTimeUtc"], body)
    for partition, (n, lo, hi) in sorted(stats.items()):
        print(f"partition {partition}: {n} events, offsets {lo}..{hi}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
