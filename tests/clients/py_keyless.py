#!/usr/bin/env python3
"""A Python client against a compacted topic: a record without a key must
be refused (INVALID_RECORD, KIP-467), a keyed one taken; then six rounds of
keys k0..k9 (values rR-K), each in its own segment (segment.ms=100), for
the cleaner to compact.

    py_keyless.py --client confluent|kafka-python --bootstrap HOST:PORT --topic TOPIC

Prints "keyless refused: <error>", "keyed taken at offset N" and "rounds
written"; exit status 0 when all happened.
"""
import argparse
import sys
import time

TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
}


def rounds(send, flush):
    for r in range(6):
        for k in range(10):
            send(f"k{k}".encode(), f"r{r}-{k}".encode())
        flush()
        time.sleep(0.15)
    print("rounds written")


def confluent(bootstrap, topic):
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics(
        [NewTopic(topic, 1, 1, config=TOPIC_CONFIG)]
    ).values():
        f.result(30)
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 20000, "retries": 0})
    results = []
    p.produce(topic, value=b"no key", on_delivery=lambda e, m: results.append((e, m)))
    p.flush(30)
    err, _ = results[0]
    if err is None or err.code() != KafkaError.INVALID_RECORD:
        sys.exit(f"keyless record not refused with INVALID_RECORD: {err}")
    print(f"keyless refused: {err.name()}: {err.str()}")
    results.clear()
    p.produce(topic, key=b"k", value=b"keyed", on_delivery=lambda e, m: results.append((e, m)))
    p.flush(30)
    err, msg = results[0]
    if err is not None:
        sys.exit(f"keyed record refused: {err}")
    print(f"keyed taken at offset {msg.offset()}")
    rounds(lambda k, v: p.produce(topic, key=k, value=v), lambda: p.flush(30))


def kafka_python(bootstrap, topic):
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        [NewTopic(topic, 1, 1, topic_configs=TOPIC_CONFIG)]
    )
    p = KafkaProducer(bootstrap_servers=bootstrap, retries=0)
    try:
        p.send(topic, value=b"no key").get(timeout=30)
        sys.exit("a keyless record was accepted by a compacted topic")
    except KafkaError as e:
        if getattr(e, "errno", None) != 87:
            sys.exit(f"keyless record refused with another error: {e!r}")
        print(f"keyless refused: {type(e).__name__}: {e}")
    m = p.send(topic, key=b"k", value=b"keyed").get(timeout=30)
    print(f"keyed taken at offset {m.offset}")
    rounds(lambda k, v: p.send(topic, key=k, value=v), p.flush)
    p.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", required=True, choices=["confluent", "kafka-python"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    a = ap.parse_args()
    (confluent if a.client == "confluent" else kafka_python)(a.bootstrap, a.topic)


if __name__ == "__main__":
    main()
