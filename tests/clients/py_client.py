#!/usr/bin/env python3
"""Produce a given set of records with a real Python Kafka client, then read
them back by explicit partition assignment and print what came back.

    py_client.py --client kafka-python|confluent|aiokafka --bootstrap HOST:PORT
                 --topic TOPIC --spec SPEC.json [--partitions 3]
                 [--create admin|auto] [--idempotence default|on|off]
                 [--compression none|gzip|snappy|lz4|zstd] [--timeout 60]
                 [--sasl MECHANISM:USER:PASSWORD] [--ssl CA_PEM[:CERT_PEM:KEY_PEM]]

SPEC.json: {"records": [{"partition": 0, "key": BASE64|null,
                         "value": BASE64|null, "headers": [[KEY, BASE64]]}]}

The records are produced in spec order (in three rounds, each waited for),
each to its given partition, with the client's default producer settings
unless --idempotence / --compression say otherwise. Then every partition is
assigned explicitly (no consumer group) from the beginning and read up to
the high watermark that ListOffsets reports.

Output, one JSON object per line on stdout:
    {"type": "client", ...}                       the client and its version
    {"type": "delivered", "index": I, "partition": P, "offset": O}
    {"type": "watermark", "partition": P, "high": H}
    {"type": "record", "partition": P, "offset": O, "key": B64|null,
     "value": B64|null, "headers": [[KEY, B64|null]]}
Exit status 0 when every step succeeded; diagnostics go to stderr.
--sasl connects over SASL_PLAINTEXT with that mechanism (PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512) and user; --ssl over TLS (SSL, or SASL_SSL
with --sasl), trusting CA_PEM, with a client certificate when given.

Runs with both a venv's recent clients and Debian's python3-confluent-kafka
(librdkafka 2.0.2) and python3-kafka (kafka-python 2.0.2) under
/usr/bin/python3, so it sticks to APIs those old versions have.
"""

import argparse
import asyncio
import base64
import json
import os
import sys
import threading
import time


def b64(data):
    return None if data is None else base64.b64encode(bytes(data)).decode("ascii")


def unb64(text):
    return None if text is None else base64.b64decode(text)


def first(v):
    return v[0] if isinstance(v, tuple) else v


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(*args):
    print("py_client:", *args, file=sys.stderr, flush=True)


def record_line(partition, offset, key, value, headers):
    return {
        "type": "record",
        "partition": partition,
        "offset": offset,
        "key": b64(key),
        "value": b64(value),
        "headers": [[k, b64(v)] for k, v in (headers or [])],
    }


def rounds(records):
    """Splits the spec into three consecutive rounds of (index, record)."""
    n = len(records)
    cuts = [0, n // 3, 2 * n // 3, n]
    return [
        [(i, records[i]) for i in range(cuts[r], cuts[r + 1])] for r in range(3)
    ]


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def check(self, what):
        if self.left() <= 0:
            raise TimeoutError("timed out " + what)


def read_until(poll, positions, high, deadline, out):
    """Calls poll() (returning [(partition, offset, key, value, headers)])
    until every partition's next offset reaches its high watermark."""
    while any(positions[p] < high[p] for p in high):
        deadline.check(
            "reading back: positions %r, high watermarks %r" % (positions, high)
        )
        for partition, offset, key, value, headers in poll():
            if offset < positions[partition]:
                continue  # a batch that starts before the position
            out.append(record_line(partition, offset, key, value, headers))
            positions[partition] = offset + 1


# --- confluent-kafka (librdkafka) --------------------------------------------


def run_confluent(args, records, deadline):
    import confluent_kafka
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    emit(
        {
            "type": "client",
            "client": "confluent-kafka",
            "version": first(confluent_kafka.version()),
            "librdkafka": first(confluent_kafka.libversion()),
        }
    )
    common = {"bootstrap.servers": args.bootstrap, "broker.address.family": "v4"}
    if args.sasl:
        mechanism, user, password = args.sasl
        common.update(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": mechanism,
                "sasl.username": user,
                "sasl.password": password,
            }
        )
    if args.ssl:
        common["security.protocol"] = "SASL_SSL" if args.sasl else "SSL"
        common["ssl.ca.location"] = args.ssl[0]
        if len(args.ssl) == 3:
            common["ssl.certificate.location"] = args.ssl[1]
            common["ssl.key.location"] = args.ssl[2]
    if args.debug:
        common["debug"] = args.debug

    if args.create == "admin":
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(dict(common))
        futures = admin.create_topics(
            [NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)],
            request_timeout=deadline.left(),
        )
        for topic, future in futures.items():
            try:
                future.result(timeout=deadline.left())
            except confluent_kafka.KafkaException as e:
                if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        while True:
            md = admin.list_topics(topic=args.topic, timeout=deadline.left())
            t = md.topics.get(args.topic)
            if t is not None and t.error is None and len(t.partitions) == args.partitions:
                break
            deadline.check("waiting for the created topic in Metadata")
            time.sleep(0.1)

    pconf = dict(common)
    if args.idempotence != "default":
        pconf["enable.idempotence"] = args.idempotence == "on"
    if args.compression != "default":
        pconf["compression.codec"] = args.compression
    producer = Producer(pconf)
    failures = []

    def on_delivery(index):
        def cb(err, msg):
            if err is not None:
                failures.append("record %d: %s" % (index, err))
            else:
                emit(
                    {
                        "type": "delivered",
                        "index": index,
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                    }
                )

        return cb

    for batch in rounds(records):
        for index, r in batch:
            kwargs = {"partition": r["partition"], "on_delivery": on_delivery(index)}
            if r["headers"]:
                kwargs["headers"] = [(k, unb64(v)) for k, v in r["headers"]]
            producer.produce(args.topic, value=unb64(r["value"]), key=unb64(r["key"]), **kwargs)
            producer.poll(0)
        while len(producer) > 0:
            deadline.check("waiting for acks (%d in flight)" % len(producer))
            producer.flush(min(1.0, max(deadline.left(), 0.01)))
        if failures:
            raise RuntimeError("produce failed: " + "; ".join(failures[:10]))

    cconf = dict(common)
    cconf.update({"group.id": "py-client-unused", "enable.auto.commit": False})
    consumer = Consumer(cconf)
    high = {}
    for p in range(args.partitions):
        low, hi = consumer.get_watermark_offsets(
            TopicPartition(args.topic, p), timeout=deadline.left()
        )
        high[p] = hi
        emit({"type": "watermark", "partition": p, "low": low, "high": hi})
    consumer.assign(
        [
            TopicPartition(args.topic, p, confluent_kafka.OFFSET_BEGINNING)
            for p in range(args.partitions)
        ]
    )

    def poll():
        got = []
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError("consume error: %s" % msg.error())
            got.append(
                (msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers())
            )
        return got

    out = []
    read_until(poll, {p: 0 for p in high}, high, deadline, out)
    consumer.close()
    return out


# --- kafka-python ------------------------------------------------------------


def run_kafka_python(args, records, deadline):
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    emit({"type": "client", "client": "kafka-python", "version": kafka.__version__})
    timeout_ms = int(deadline.left() * 1000)

    if args.create == "admin":
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(
            bootstrap_servers=args.bootstrap, request_timeout_ms=timeout_ms, **python_sasl(args)
        )
        try:
            admin.create_topics(
                [NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)]
            )
        except TopicAlreadyExistsError:
            pass
        admin.close()

    pconf = {"bootstrap_servers": args.bootstrap, "max_block_ms": timeout_ms}
    pconf.update(python_sasl(args))
    if args.idempotence != "default":
        pconf["enable_idempotence"] = args.idempotence == "on"
    if args.compression != "default":
        pconf["compression_type"] = None if args.compression == "none" else args.compression
    producer = KafkaProducer(**pconf)
    for batch in rounds(records):
        futures = []
        for index, r in batch:
            headers = [(k, unb64(v)) for k, v in r["headers"]]
            futures.append(
                (
                    index,
                    producer.send(
                        args.topic,
                        value=unb64(r["value"]),
                        key=unb64(r["key"]),
                        partition=r["partition"],
                        headers=headers,
                    ),
                )
            )
        producer.flush(timeout=max(deadline.left(), 0.01))
        for index, future in futures:
            md = future.get(timeout=max(deadline.left(), 0.01))
            emit({"type": "delivered", "index": index, "partition": md.partition, "offset": md.offset})
    producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=30000,
        **python_sasl(args)
    )
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    high = {tp.partition: ends[tp] for tp in tps}
    for p, h in sorted(high.items()):
        emit({"type": "watermark", "partition": p, "high": h})

    def poll():
        got = []
        for tp, msgs in consumer.poll(timeout_ms=500, max_records=1000).items():
            for m in msgs:
                got.append((tp.partition, m.offset, m.key, m.value, m.headers))
        return got

    out = []
    read_until(poll, {p: 0 for p in high}, high, deadline, out)
    consumer.close()
    return out


# --- aiokafka ----------------------------------------------------------------


def python_sasl(args):
    """kafka-python's and aiokafka's connection settings for --sasl and
    --ssl."""
    conf = {}
    if args.sasl:
        mechanism, user, password = args.sasl
        conf.update(
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": mechanism,
                "sasl_plain_username": user,
                "sasl_plain_password": password,
            }
        )
    if args.ssl:
        import ssl

        context = ssl.create_default_context(cafile=args.ssl[0])
        if len(args.ssl) == 3:
            context.load_cert_chain(args.ssl[1], args.ssl[2])
        conf["security_protocol"] = "SASL_SSL" if args.sasl else "SSL"
        conf["ssl_context"] = context
    return conf


async def run_aiokafka_async(args, records, deadline):
    import aiokafka
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    emit({"type": "client", "client": "aiokafka", "version": aiokafka.__version__})

    if args.create == "admin":
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap, **python_sasl(args))
        await admin.start()
        try:
            resp = await admin.create_topics(
                [NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)]
            )
            for topic_error in getattr(resp, "topic_errors", []) or getattr(resp, "topics", []):
                code = topic_error[1]
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError("CreateTopics: %r" % (topic_error,))
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()

    pconf = {"bootstrap_servers": args.bootstrap}
    pconf.update(python_sasl(args))
    if args.idempotence != "default":
        pconf["enable_idempotence"] = args.idempotence == "on"
    if args.compression != "default":
        pconf["compression_type"] = None if args.compression == "none" else args.compression
    producer = AIOKafkaProducer(**pconf)
    await producer.start()
    try:
        for batch in rounds(records):
            futures = []
            for index, r in batch:
                headers = [(k, unb64(v)) for k, v in r["headers"]]
                fut = await producer.send(
                    args.topic,
                    value=unb64(r["value"]),
                    key=unb64(r["key"]),
                    partition=r["partition"],
                    headers=headers,
                )
                futures.append((index, fut))
            for index, fut in futures:
                md = await asyncio.wait_for(fut, max(deadline.left(), 0.01))
                emit({"type": "delivered", "index": index, "partition": md.partition, "offset": md.offset})
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **python_sasl(args)
    )
    await consumer.start()
    try:
        tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        high = {tp.partition: ends[tp] for tp in tps}
        for p, h in sorted(high.items()):
            emit({"type": "watermark", "partition": p, "high": h})
        positions = {p: 0 for p in high}
        out = []
        while any(positions[p] < high[p] for p in high):
            deadline.check("reading back: positions %r, high %r" % (positions, high))
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for tp, msgs in batches.items():
                for m in msgs:
                    if m.offset < positions[tp.partition]:
                        continue
                    out.append(record_line(tp.partition, m.offset, m.key, m.value, m.headers))
                    positions[tp.partition] = m.offset + 1
        return out
    finally:
        await consumer.stop()


def run_aiokafka(args, records, deadline):
    return asyncio.run(
        asyncio.wait_for(run_aiokafka_async(args, records, deadline), deadline.left())
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", required=True, choices=["kafka-python", "confluent", "aiokafka"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--create", choices=["admin", "auto"], default="admin")
    ap.add_argument("--idempotence", choices=["default", "on", "off"], default="default")
    ap.add_argument(
        "--compression",
        choices=["default", "none", "gzip", "snappy", "lz4", "zstd"],
        default="default",
    )
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--debug", default=None, help="librdkafka debug contexts (confluent only)")
    ap.add_argument(
        "--sasl",
        default=None,
        type=lambda v: v.split(":", 2),
        help="MECHANISM:USER:PASSWORD: connect over SASL_PLAINTEXT",
    )
    ap.add_argument(
        "--ssl",
        default=None,
        type=lambda v: v.split(":"),
        help="CA_PEM[:CERT_PEM:KEY_PEM]: connect over TLS",
    )
    args = ap.parse_args()

    # A hard stop, whatever a client library does with its threads.
    def watchdog():
        time.sleep(args.timeout + 10)
        log("watchdog: still running %.0f s after the deadline; exiting" % 10)
        os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()

    with open(args.spec) as f:
        records = json.load(f)["records"]
    deadline = Deadline(args.timeout)
    run = {
        "kafka-python": run_kafka_python,
        "confluent": run_confluent,
        "aiokafka": run_aiokafka,
    }[args.client]
    out = run(args, records, deadline)
    for line in out:
        emit(line)
    log("ok: %d records produced, %d read back" % (len(records), len(out)))


if __name__ == "__main__":
    main()
