#!/usr/bin/env bash
# Rewrites src/config/kafka_keys.tsv, shardlog's registry of Kafka's broker
# and topic config keys (names, types, defaults, validators, dynamic update
# modes, topic-to-broker synonyms), from the jars of a stock Kafka install
# (tuning/kafka.sh install; --kafka-version V as there). Run it when moving
# to a newer Kafka and review the diff: new keys need a decision in
# src/config/registry.rs (acted on, stored only, or refused).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
home=$(bash "$root/tuning/kafka.sh" home "$@")
out="$root/src/config/kafka_keys.tsv"
java -cp "$home/libs/*" "$here/DumpConfigs.java" > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(grep -vc '^#' "$out") keys)"
