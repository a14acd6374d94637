#!/usr/bin/env python3
"""Describe the broker's log directories with kafka-python's admin client
(KafkaAdminClient.describe_log_dirs, which picks the highest DescribeLogDirs
version both sides serve) and print what came back.

    py_log_dirs.py --bootstrap HOST:PORT [--topic NAME[:P,P...]]... [--timeout 60]

Without --topic every topic is asked for (the client lists them from
Metadata); NAME alone asks for all of a topic's partitions, NAME:0,2 for
those partitions.

Output, one JSON object per line on stdout:
    {"type": "client", "name": "kafka-python", "version": V}
    {"type": "broker", "broker": NODE, "log_dirs": [RESULT...]}
where RESULT is the client's dict of a DescribeLogDirs result (error_code,
log_dir, topics with partitions, total_bytes, usable_bytes). Exit status 0
when the call succeeded; diagnostics go to stderr.
"""

import argparse
import json
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", action="append", default=[])
    parser.add_argument("--timeout", type=int, default=60)
    args = parser.parse_args()

    import kafka
    from kafka.admin import KafkaAdminClient

    print(
        json.dumps({"type": "client", "name": "kafka-python", "version": kafka.__version__}),
        flush=True,
    )
    topics = None
    if args.topic:
        names = [t for t in args.topic if ":" not in t]
        listed = {}
        for t in args.topic:
            if ":" in t:
                name, parts = t.split(":", 1)
                listed[name] = [int(p) for p in parts.split(",") if p]
        if names and listed:
            sys.exit("py_log_dirs: give either names or NAME:PARTITIONS, not both")
        topics = listed if listed else names

    admin = KafkaAdminClient(
        bootstrap_servers=args.bootstrap,
        client_id="py-log-dirs",
        request_timeout_ms=args.timeout * 1000,
    )
    try:
        for entry in admin.describe_log_dirs(topic_partitions=topics):
            print(
                json.dumps(
                    {"type": "broker", "broker": entry["broker"], "log_dirs": entry["log_dirs"]}
                ),
                flush=True,
            )
    finally:
        admin.close()


if __name__ == "__main__":
    main()
