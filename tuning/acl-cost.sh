#!/usr/bin/env bash
# What the authorizer costs produce and consume: librdkafka's own benchmark
# tool, rdkafka_performance, produces COUNT 1 KiB records (acks=1) to a
# one-partition topic and consumes them back, against a fresh broker per
# way: PLAINTEXT without an authorizer, and PLAINTEXT with Kafka's
# StandardAuthorizer keys, allow.everyone.if.no.acl.found=false and
# 10,000 ACLs loaded (9,997 for other principals and topics, three that
# let User:ANONYMOUS create, write and read the benchmark topic). The
# broker is pinned to core 0 and the tool to core 1; the ways alternate
# within each round. Prints produce and consume MB/s per way and the
# authorizer's ratio to the baseline in the same round.
#
#   tuning/acl-cost.sh [--rounds N] [--count N]
#
# Release binaries first: cargo build --release -p shardlog. The tool is
# built from the librdkafka the rdkafka crate bundles (by
# tests/clients/librdkafka-tests.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=$root/target/release port=19092 data_parent=/var/tmp
rounds=3 count=1000000 broker_core=0 tool_core=1
log() { echo "[$(date +%T)] $*" >&2; }
# shellcheck source=tuning/bench-lib.sh
. "$here/bench-lib.sh"
parse_rounds_count "$@"
trap shardlog_stop EXIT
perf=$(rdkafka_perf_tool)
out=$(mktemp -d /var/tmp/acl-cost-XXXXXX)

# Writes the broker's metadata file into DIR with 10,000 ACLs (the ACLs
# are part of the metadata; Kafka's names).
write_acls() {
  python3 - "$1/shardlog-metadata.json" <<'PY'
import json, sys
acls = []
def acl(kind, name, pattern, principal, op, perm="ALLOW"):
    acls.append(dict(resource_type=kind, name=name, pattern_type=pattern,
                     principal=principal, host="*", operation=op, permission_type=perm))
for i in range(5000):
    acl("TOPIC", f"topic-{i}", "LITERAL", f"User:user-{i % 100}", "WRITE")
for i in range(4000):
    acl("TOPIC", f"team-{i}-", "PREFIXED", f"User:user-{i % 100}", "READ")
for i in range(997):
    acl("TOPIC", f"topic-{i * 5}", "LITERAL", f"User:user-{(i + 1) % 100}", "WRITE", "DENY")
acl("TOPIC", "bench", "LITERAL", "User:ANONYMOUS", "ALL")
acl("CLUSTER", "kafka-cluster", "LITERAL", "User:ANONYMOUS", "CREATE")
acl("GROUP", "*", "LITERAL", "User:ANONYMOUS", "ALL")
assert len(acls) == 10000
metadata = dict(version=0, cluster_id="acl-cost-benchmark", next_producer_id=0, topics={}, acls=acls)
json.dump(metadata, open(sys.argv[1], "w"))
PY
}

common=(--override shardlog.metrics.listen= --override num.partitions=1)
authz=(--override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
  --override allow.everyone.if.no.acl.found=false)

# one WAY: starts the broker for WAY, produces and consumes; prints
# "produce_mbs consume_mbs".
one() {
  local way=$1
  case $way in
    none) shardlog_start "$broker_core" "$out/$way.log" "${common[@]}" ;;
    acls10k)
      bench_prepare_data=write_acls
      shardlog_start "$broker_core" "$out/$way.log" "${common[@]}" "${authz[@]}"
      bench_prepare_data= ;;
  esac
  perf_produce_consume "$out" "$way"
}

for r in $(seq "$rounds"); do
  declare -A res=()
  for way in none acls10k; do
    res[$way]=$(one "$way")
  done
  read -r pp pc <<<"${res[none]}"
  for way in none acls10k; do
    read -r p c <<<"${res[$way]}"
    awk -v r="$r" -v w="$way" -v p="$p" -v pp="$pp" -v c="$c" -v pc="$pc" 'BEGIN {
      printf "round %s %-8s produce %5d MB/s (%.2fx)  consume %5d MB/s (%.2fx)\n", r, w, p, p / pp, c, c / pc }'
  done
done
rm -rf "$out"
