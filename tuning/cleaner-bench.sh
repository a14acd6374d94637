#!/usr/bin/env bash
# The log cleaner's figures on this host, with same-run baselines:
#   1. cleaner throughput: a compacted topic (1 MiB segments,
#      min.cleanable.dirty.ratio=0, log.cleaner.backoff.ms=100, so the
#      cleaner runs flat out) takes keyed 100-byte records from loadgen;
#      the broker's "log cleaner cleaned segments" lines give bytes read
#      and written per pass and the pass time. Baseline: the disk's
#      O_DIRECT 1 MiB write MB/s (shardlog-disk-probe) on the data dir.
#   2. foreground tail: 100-byte records at --rate 1000000 to a plain
#      topic, three ways in one sitting: alone; beside a keyed churn
#      producer (--churn-rate) to a cleanup.policy=delete topic; beside the
#      same churn to a compacted topic (the cleaner busy). The second is
#      the baseline for the third. Prints publish p99/p99.9 per way.
#
#   tuning/cleaner-bench.sh [--duration S] [--churn-rate N] [--rounds N] [--cleaner-io BYTES/S]
#
# --cleaner-io sets log.cleaner.io.max.bytes.per.second (default: Kafka's,
# unlimited).
#
# Release binaries first: cargo build --release -p shardlog -p loadgen;
# topics are created with Apache Kafka's kafka-topics (tuning/kafka.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=$root/target/release port=19092 data_parent=/var/tmp
duration=15 churn_rate=50000 rounds=1 broker_core=0 loadgen_core=1 cleaner_io=
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --churn-rate) churn_rate=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --cleaner-io) cleaner_io=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "[$(date +%T)] $*" >&2; }
# shellcheck source=tuning/bench-lib.sh
. "$here/bench-lib.sh"
churn_pid=""
stop_all() {
  [ -n "$churn_pid" ] && kill "$churn_pid" 2>/dev/null || true
  shardlog_stop
}
trap stop_all EXIT
out=$(mktemp -d /var/tmp/cleaner-bench-XXXXXX)
# The cleaner's passes are logged at info.
bench_log_level=info
broker_args=(--override log.cleaner.backoff.ms=100 --override shardlog.metrics.listen=)
[ -n "$cleaner_io" ] && broker_args+=(--override "log.cleaner.io.max.bytes.per.second=$cleaner_io")

topic() { # NAME CONFIGS...
  local name=$1
  shift
  local cfg=()
  for c in "$@"; do cfg+=(--config "$c"); done
  "$here/kafka.sh" tool kafka-topics --bootstrap-server "127.0.0.1:$port" --create \
    --topic "$name" --partitions 1 --replication-factor 1 "${cfg[@]}" >/dev/null
}
compact=(cleanup.policy=compact segment.bytes=1048576 min.cleanable.dirty.ratio=0)

# 1. Throughput.
mkdir -p "$out/probe"
disk=$("$bin/shardlog-disk-probe" --data-dir "$out/probe" --write-sizes 1m --sync-write-size 0 \
  --seconds 3 --json | python3 -c "import json,sys; print(round(json.load(sys.stdin)['write'][0]['mb_per_s']))")
shardlog_start "$broker_core" "$out/throughput.log" "${broker_args[@]}"
topic churn "${compact[@]}"
"$bin/loadgen" produce --bootstrap "127.0.0.1:$port" --cores "$loadgen_core" --quiet \
  --topic churn --record-size 100 --key-distribution uniform --key-space 100000 \
  --acks 1 --rate 300000 --warmup 1s --duration 10s >"$out/throughput-loadgen.txt" 2>&1
sleep 5
shardlog_stop
python3 - "$out/throughput.log" "$disk" <<'PY'
import re, sys
read = written = ms = passes = 0
for line in open(sys.argv[1]):
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    if "log cleaner cleaned segments" not in line:
        continue
    f = dict(re.findall(r"(\w+)=(\d+)", line))
    read += int(f["bytes_read"]); written += int(f["bytes_written"]); ms += int(f["ms"]); passes += 1
disk = float(sys.argv[2])
if ms == 0:
    sys.exit("no cleaner pass logged")
mbs = read / 1e6 / (ms / 1000)
print(f"cleaner: {passes} passes, {read/1e6:.0f} MB read, {written/1e6:.0f} MB written in {ms/1000:.1f} s of passes: "
      f"{mbs:.0f} MB/s read ({(read + written)/1e6/(ms/1000):.0f} MB/s read+written); "
      f"disk O_DIRECT 1 MiB writes {disk:.0f} MB/s (ratio {mbs/disk:.2f})")
PY

# 2. Foreground tail.
one() { # NAME [CHURN-CONFIGS...]
  local name=$1
  shift
  shardlog_start "$broker_core" "$out/$name.log" "${broker_args[@]}"
  if [ $# -gt 0 ]; then
    topic churn "$@"
    "$bin/loadgen" produce --bootstrap "127.0.0.1:$port" --cores "$loadgen_core" --quiet \
      --topic churn --record-size 100 --key-distribution uniform --key-space 100000 \
      --acks 1 --rate "$churn_rate" --warmup 0s --duration "$((duration + 10))s" \
      >"$out/$name-churn.txt" 2>&1 &
    churn_pid=$!
    sleep 3
  fi
  "$bin/loadgen" produce --bootstrap "127.0.0.1:$port" --cores "$loadgen_core" --quiet \
    --json "$out/$name.json" --topic fast --create --partitions 4 --record-size 100 \
    --acks 1 --rate 1000000 --warmup 3s --duration "${duration}s" >"$out/$name.txt" 2>&1
  if [ -n "$churn_pid" ]; then
    kill "$churn_pid" 2>/dev/null || true
    wait "$churn_pid" 2>/dev/null || true
    churn_pid=""
  fi
  passes=$(grep -c "log cleaner cleaned segments" "$out/$name.log" || true)
  python3 - "$out/$name.json" "$name" "$passes" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["publish_latency_us"]
print(f"{sys.argv[2]}: {d['msg_per_s']:.0f} msg/s, publish p99 {p['p99']/1000:.2f} ms, "
      f"p99.9 {p['p999']/1000:.2f} ms, p99.99 {p['p9999']/1000:.2f} ms; cleaner passes {sys.argv[3]}")
PY
}
for r in $(seq "$rounds"); do
  log "round $r"
  one alone
  one churn-delete cleanup.policy=delete segment.bytes=1048576
  one churn-compact "${compact[@]}"
done
stop_all
rm -rf "$out"
