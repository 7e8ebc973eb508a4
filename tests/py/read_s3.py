"""Reads hubcap's Avro output from an S3 endpoint (moto in the tests) with boto3 and fastavro.

Usage:
  read_s3.py ENDPOINT BUCKET PREFIX

Prints the same document as read_capture.py: {"files": [...]}, names relative to PREFIX, files
under _checkpoints/ skipped.
"""
import json
import sys

import boto3

from read_capture import read


def s3(endpoint, bucket, prefix):
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    out = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for obj in page.get("Contents", []):
            name = obj["Key"]
            rel = name[len(prefix):].lstrip("/")
            if rel.startswith("_checkpoints") or not name.endswith(".avro"):
                continue
            data = client.get_object(Bucket=bucket, Key=name)["Body"].read()
            out.append(read(rel, data))
    return out


if __name__ == "__main__":
    files = s3(sys.argv[1], sys.argv[2], sys.argv[3])
    files.sort(key=lambda f: f["name"])
    json.dump({"files": files}, sys.stdout)
