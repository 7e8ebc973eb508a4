"""Reads a Kafka topic to its end with confluent-kafka (librdkafka through Python, not hubcap's
code) as a read_committed consumer, as an application reading a replayed topic would.

Usage: read_topic.py BROKERS TOPIC

Prints one JSON document: records, each {partition, offset, key, value, headers, timestamp},
bytes as hex strings (None for a missing key, a tombstone or a header without value), headers
a list of [name, value] in record order, timestamp [type, ms] (type 1: create time).
"""
import json
import sys

from confluent_kafka import Consumer, TopicPartition, KafkaError


def hexed(b):
    return None if b is None else b.hex()


def main():
    brokers, topic = sys.argv[1:3]
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "read-topic",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    open_partitions = set(partitions)
    records = []
    while open_partitions:
        m = consumer.poll(10)
        if m is None:
            raise SystemExit(f"no record nor end of partition in 10 s; open: {sorted(open_partitions)}")
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                open_partitions.discard(m.partition())
                continue
            raise SystemExit(str(m.error()))
        records.append({
            "partition": m.partition(),
            "offset": m.offset(),
            "key": hexed(m.key()),
            "value": hexed(m.value()),
            "headers": [[k, hexed(v)] for k, v in (m.headers() or [])],
            "timestamp": list(m.timestamp()),
        })
    consumer.close()
    json.dump({"records": records}, sys.stdout)


if __name__ == "__main__":
    main()
