#!/usr/bin/env bash
# What the metrics endpoint costs the data path: 100-byte records, acks=1,
# rate 0, the broker on one core and loadgen on another, alternating
#   off     shardlog.metrics.listen= (no endpoint; the shards still count)
#   on      the endpoint on 127.0.0.1:19644, scraped (GET /metrics) every
#           second while loadgen runs, as Prometheus would
#   before  (with --before-bin DIR) another build's shardlog, e.g. the
#           commit before the counters existed, with its defaults
# --rounds times each, fresh brokers. Prints per-run MB/s and p99 publish
# latency, and the medians' ratios to "off".
#
#   tuning/metrics-overhead.sh [--rounds N] [--duration S] [--before-bin DIR]
#                              [--broker-core N] [--loadgen-core N]
#
# Release binaries first: cargo build --release -p shardlog -p loadgen
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
release=$root/target/release port=19092 data_parent=/var/tmp
rounds=3 duration=10 broker_core=0 loadgen_core=1 before_bin=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --before-bin) before_bin=$2; shift 2 ;;
    --broker-core) broker_core=$2; shift 2 ;;
    --loadgen-core) loadgen_core=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "[$(date +%T)] $*" >&2; }
# shellcheck source=tuning/bench-lib.sh
. "$here/bench-lib.sh"
scraper=""
stop_all() {
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
  shardlog_stop
}
trap stop_all EXIT
out=$(mktemp -d /var/tmp/metrics-overhead-XXXXXX)
metrics_port=19644

# one NAME BIN [ARGS...]: a fresh broker from BIN with ARGS, one loadgen
# run (scraped when NAME is "on"); sets mbs and p99.
one() {
  local name=$1
  bin=$2
  shift 2
  shardlog_start "$broker_core" "$out/$name.log" "$@"
  sleep 1
  if [ "${name%%-*}" = on ]; then
    (while sleep 1; do
      curl -s -o /dev/null "http://127.0.0.1:$metrics_port/metrics" || true
    done) &
    scraper=$!
  fi
  "$release/loadgen" produce --bootstrap "127.0.0.1:$port" --cores "$loadgen_core" --quiet \
    --json "$out/$name.json" --topic bench --create --partitions 4 --record-size 100 \
    --acks 1 --rate 0 --warmup 2s --duration "${duration}s" >"$out/$name.txt" 2>&1
  if [ -n "$scraper" ]; then
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
    scraper=""
    curl -s "http://127.0.0.1:$metrics_port/metrics" >"$out/$name.metrics"
    grep -q '^shardlog_topic_messages_in_total{topic="bench"}' "$out/$name.metrics" ||
      { log "$name: no bench topic in /metrics"; exit 1; }
  fi
  read -r mbs p99 < <(python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
print(round(d['mb_per_s']), round(d['publish_latency_us']['p99'] / 1000, 2))" "$out/$name.json")
}

declare -A runs
variants=(off on)
[ -n "$before_bin" ] && variants+=(before)
for r in $(seq "$rounds"); do
  line="round $r:"
  # The order rotates each round, so no variant always runs first.
  n=${#variants[@]}
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${variants[$(((i + r) % n))]}"); done
  for v in "${order[@]}"; do
    case $v in
      off) one "off-$r" "$release" --override shardlog.metrics.listen= ;;
      on) one "on-$r" "$release" --override "shardlog.metrics.listen=127.0.0.1:$metrics_port" ;;
      before) one "before-$r" "$before_bin" ;;
    esac
    runs[$v]+="$mbs:$p99 "
    line+=" $v $mbs MB/s (p99 $p99 ms)"
  done
  log "$line"
done
stop_all
python3 - "${runs[off]}" "${runs[on]}" "${runs[before]:-}" <<'PY'
import statistics, sys
def parse(s):
    pairs = [x.split(":") for x in s.split()]
    return [float(a) for a, _ in pairs], [float(b) for _, b in pairs]
off_mb, off_p99 = parse(sys.argv[1])
base = statistics.median(off_mb)
for name, arg in (("off", sys.argv[1]), ("on (scraped every 1 s)", sys.argv[2]), ("before", sys.argv[3])):
    if not arg:
        continue
    mb, p99 = parse(arg)
    paired = sorted(a / b for a, b in zip(mb, off_mb))
    print(f"{name}: median {statistics.median(mb):.0f} MB/s {mb}, p99 median {statistics.median(p99):.2f} ms {p99}; "
          f"ratio of medians to off {statistics.median(mb) / base:.2f}, per-round ratios to off "
          f"{[round(x, 2) for x in paired]} (median {statistics.median(paired):.2f})")
PY
rm -rf "$out"
