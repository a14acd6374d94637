#!/usr/bin/env python3
"""One member of a consumer group, driven by a real Python Kafka client:
subscribe to a topic, read, commit every record read (synchronously, with
a metadata string where the client supports one), and report what happens.

    py_group_member.py --client kafka-python|confluent|aiokafka
                       --bootstrap HOST:PORT --group GROUP --topic TOPIC
                       --name NAME [--session-timeout-ms 6000] [--timeout 120]

Output, one JSON object per line on stdout, each with "t" (wall-clock ms)
and "name":
    {"type": "client", "client": ..., "version": ...}
    {"type": "assigned", "partitions": [P...]}   the whole assignment after a rebalance
    {"type": "revoked", "partitions": [P...]}    given up (also right before a close)
    {"type": "record", "partition": P, "offset": O, "value": TEXT}
    {"type": "committed", "partition": P, "offset": NEXT}
    {"type": "closed"}
A line "stop" on stdin makes the member close cleanly (leaving the group)
and exit 0. Diagnostics go to stderr. Works with Debian's old clients
(kafka-python 2.0.2, confluent-kafka 1.7 on librdkafka 2.0.2) too.
"""

import argparse
import asyncio
import json
import sys
import threading
import time


def first(v):
    return v[0] if isinstance(v, tuple) else v


NAME = "?"


def emit(kind, **fields):
    fields.update({"type": kind, "t": time.time() * 1000.0, "name": NAME})
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def log(*args):
    print("py_group_member[%s]:" % NAME, *args, file=sys.stderr, flush=True)


def watch_stdin(stop):
    def run():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=run, daemon=True).start()


def metadata_for(partition, offset):
    return "p%d o%d" % (partition, offset)


# --- kafka-python --------------------------------------------------------------


def rebalance_listener(base, owned):
    """A rebalance listener class on the client's `base` that keeps `owned`
    (the partitions this member holds) and reports each change."""

    class Listener(base):
        def on_partitions_revoked(self, revoked):
            ps = sorted(tp.partition for tp in revoked)
            owned.difference_update(ps)
            emit("revoked", partitions=ps)

        def on_partitions_assigned(self, assigned):
            owned.clear()
            owned.update(tp.partition for tp in assigned)
            emit("assigned", partitions=sorted(owned))

    return Listener


def run_kafka_python(args, stop):
    import kafka
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    emit("client", client="kafka-python", version=kafka.__version__)

    def oam(offset, metadata):
        try:
            return OffsetAndMetadata(offset, metadata, -1)  # 2.1+: leader epoch
        except TypeError:
            return OffsetAndMetadata(offset, metadata)

    owned = set()

    Listener = rebalance_listener(ConsumerRebalanceListener, owned)

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(args.session_timeout_ms // 3, 100),
        request_timeout_ms=max(args.session_timeout_ms + 5000, 30000),
        max_poll_records=50,
    )
    consumer.subscribe([args.topic], listener=Listener())
    while not stop.is_set():
        batches = consumer.poll(timeout_ms=100)
        for tp, msgs in batches.items():
            for m in msgs:
                emit("record", partition=tp.partition, offset=m.offset,
                     value=(m.value or b"").decode("utf-8", "replace"))
            nxt = msgs[-1].offset + 1
            consumer.commit({tp: oam(nxt, metadata_for(tp.partition, nxt))})
            emit("committed", partition=tp.partition, offset=nxt)
    emit("revoked", partitions=sorted(owned))
    consumer.close()
    emit("closed")


# --- confluent-kafka -----------------------------------------------------------


def run_confluent(args, stop):
    import confluent_kafka
    from confluent_kafka import Consumer, TopicPartition

    emit("client", client="confluent-kafka", version=first(confluent_kafka.version()),
         librdkafka=first(confluent_kafka.libversion()))
    owned = set()

    def on_assign(c, partitions):
        owned.clear()
        owned.update(tp.partition for tp in partitions)
        emit("assigned", partitions=sorted(owned))

    def on_revoke(c, partitions):
        ps = sorted(tp.partition for tp in partitions)
        owned.difference_update(ps)
        emit("revoked", partitions=ps)

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "broker.address.family": "v4",
        "group.id": args.group,
        "client.id": args.name,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": max(args.session_timeout_ms // 3, 100),
        "fetch.wait.max.ms": 100,
    })
    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    while not stop.is_set():
        m = consumer.poll(0.1)
        if m is None:
            continue
        if m.error():
            log("consumer error (retried):", m.error())
            continue
        emit("record", partition=m.partition(), offset=m.offset(),
             value=(m.value() or b"").decode("utf-8", "replace"))
        nxt = m.offset() + 1
        try:
            tp = TopicPartition(args.topic, m.partition(), nxt,
                                metadata=metadata_for(m.partition(), nxt))
        except TypeError:  # confluent-kafka before 2.1 has no metadata
            tp = TopicPartition(args.topic, m.partition(), nxt)
        while True:
            try:
                consumer.commit(offsets=[tp], asynchronous=False)
                break
            except confluent_kafka.KafkaException as e:
                if stop.is_set():
                    raise
                log("commit failed (retried):", e)
                time.sleep(0.2)
        emit("committed", partition=m.partition(), offset=nxt)
    emit("revoked", partitions=sorted(owned))
    consumer.close()
    emit("closed")


# --- aiokafka --------------------------------------------------------------------


async def run_aiokafka_async(args, stop):
    import aiokafka
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

    emit("client", client="aiokafka", version=aiokafka.__version__)
    owned = set()

    Listener = rebalance_listener(ConsumerRebalanceListener, owned)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(args.session_timeout_ms // 3, 100),
        request_timeout_ms=max(args.session_timeout_ms + 5000, 30000),
    )
    consumer.subscribe([args.topic], listener=Listener())
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for tp, msgs in batches.items():
                for m in msgs:
                    emit("record", partition=tp.partition, offset=m.offset,
                         value=(m.value or b"").decode("utf-8", "replace"))
                nxt = msgs[-1].offset + 1
                await consumer.commit({tp: (nxt, metadata_for(tp.partition, nxt))})
                emit("committed", partition=tp.partition, offset=nxt)
        emit("revoked", partitions=sorted(owned))
    finally:
        await consumer.stop()
    emit("closed")


def run_aiokafka(args, stop):
    asyncio.run(run_aiokafka_async(args, stop))


def main():
    global NAME
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    NAME = args.name
    stop = threading.Event()
    watch_stdin(stop)

    def watchdog():
        time.sleep(args.timeout)
        log("timed out after %ss" % args.timeout)
        sys.stdout.flush()
        import os
        os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    run = {"kafka-python": run_kafka_python, "confluent": run_confluent,
           "aiokafka": run_aiokafka}[args.client]
    run(args, stop)


if __name__ == "__main__":
    main()
