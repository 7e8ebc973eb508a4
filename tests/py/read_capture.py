"""Reads hubcap's Avro output with fastavro, independently of hubcap's own code.

Usage:
  read_capture.py local DIR
  read_capture.py azurite BLOB_ENDPOINT CONTAINER PREFIX   (the container allows public reads)

Prints one JSON document: {"files": [{"name", "size", "schema", "codec", "records": [...]}]}.
Each record gives SequenceNumber, Offset, EnqueuedTimeUtc, whether EnqueuedTimeUtc equals the
Capture format of x-opt-enqueued-time as computed here, SystemProperties and Properties with each
value's Avro branch, and Body as hex. Files in folders starting with _ or . are skipped.
"""
import datetime
import io
import json
import os
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import fastavro


def capture_time(ms):
    d = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    hour12 = d.hour % 12 or 12
    return f"{d.month}/{d.day}/{d.year} {hour12}:{d.minute:02}:{d.second:02} {'AM' if d.hour < 12 else 'PM'}"


def branch(v):
    if v is None:
        return {"null": None}
    if isinstance(v, bool):
        raise ValueError("bool is not a Capture branch")
    if isinstance(v, int):
        return {"long": v}
    if isinstance(v, float):
        return {"double": v}
    if isinstance(v, str):
        return {"string": v}
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    raise ValueError(f"unexpected value {v!r}")


def read(name, data):
    reader = fastavro.reader(io.BytesIO(data))
    records = []
    for r in reader:
        sysprops = r["SystemProperties"]
        ms = sysprops.get("x-opt-enqueued-time")
        records.append({
            "seq": r["SequenceNumber"],
            "offset": r["Offset"],
            "enqueued": r["EnqueuedTimeUtc"],
            "enqueued_matches": ms is not None and r["EnqueuedTimeUtc"] == capture_time(ms),
            "sys": {k: branch(v) for k, v in sysprops.items()},
            "props": {k: branch(v) for k, v in r["Properties"].items()},
            "body": None if r["Body"] is None else r["Body"].hex(),
        })
    return {
        "name": name,
        "size": len(data),
        "schema": reader.metadata.get("avro.schema"),
        "codec": reader.metadata.get("avro.codec"),
        "metadata_keys": sorted(reader.metadata.keys()),
        "records": records,
    }


def skipped(rel):
    """Whether a reader's glob skips the file: it is in a folder whose name starts with `_` or
    `.` (hubcap's _checkpoints/, _manifests/, _quarantine/), as Spark, DuckDB and pyarrow skip
    them."""
    return any(part.startswith(("_", ".")) for part in rel.split("/")[:-1])


def local(root):
    out = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            path = os.path.join(dirpath, n)
            rel = os.path.relpath(path, root)
            if skipped(rel) or not n.endswith(".avro"):
                continue
            with open(path, "rb") as f:
                out.append(read(rel, f.read()))
    return out


def azurite(endpoint, container, prefix):
    out = []
    marker = ""
    while True:
        q = {"restype": "container", "comp": "list", "prefix": prefix}
        if marker:
            q["marker"] = marker
        url = f"{endpoint}/{container}?{urllib.parse.urlencode(q)}"
        xml = urllib.request.urlopen(url).read()
        root = ET.fromstring(xml)
        for blob in root.iter("Blob"):
            name = blob.find("Name").text
            rel = name[len(prefix):].lstrip("/")
            if skipped(rel) or not name.endswith(".avro"):
                continue
            data = urllib.request.urlopen(f"{endpoint}/{container}/{urllib.parse.quote(name)}").read()
            out.append(read(rel, data))
        marker = (root.findtext("NextMarker") or "").strip()
        if not marker:
            return out


if __name__ == "__main__":
    if sys.argv[1] == "local":
        files = local(sys.argv[2])
    else:
        files = azurite(sys.argv[2], sys.argv[3], sys.argv[4])
    files.sort(key=lambda f: f["name"])
    json.dump({"files": files}, sys.stdout)
