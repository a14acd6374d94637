#!/usr/bin/env bash
# The benchmark of the load-generator issue, in one run: machine baselines
# (tuning/baseline.sh), then each workload against a fresh shardlog pinned
# to --broker-cores with loadgen pinned to --loadgen-core. Every run's JSON
# summary lands in OUT_DIR, with a table of the figures on stdout.
#
# Usage: tuning/targets.sh [--out DIR] [--data-dir DIR] [--broker-cores LIST]
#          [--loadgen-core N] [--duration S] [--modes "single per-shard"]
#   --out DIR           where the JSON files go (default target/targets)
#   --data-dir DIR      parent of the broker's data directories (default
#                       /var/tmp; a real disk). Each run's data is deleted.
#   --broker-cores LIST the broker's --cores (default 0)
#   --loadgen-core N    loadgen's core (default 1)
#   --duration S        seconds per measured run (default 20 for the fixed
#                       rate run, half of it for the others)
#   --modes LIST        listener modes for the mode table (default both)
#
# Needs release builds: cargo build --release -p shardlog -p loadgen
# (and the probe: cargo build --release --bin shardlog-disk-probe).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release

out=$root/target/targets data_parent=/var/tmp broker_cores=0 loadgen_core=1
duration=20 modes="single per-shard"
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --data-dir) data_parent=$2; shift 2 ;;
    --broker-cores) broker_cores=$2; shift 2 ;;
    --loadgen-core) loadgen_core=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 3 ;;
  esac
done
for b in shardlog loadgen; do
  [ -x "$bin/$b" ] || { echo "build first: $bin/$b is missing" >&2; exit 2; }
done
mkdir -p "$out"
short=$(( duration / 2 ))
port=19092
log() { echo "targets.sh: $*" >&2; }
# shellcheck source=tuning/bench-lib.sh
. "$here/bench-lib.sh"
trap shardlog_stop EXIT

# start_broker MODE CORES [--override K=V ...]
start_broker() {
  local mode=$1 cores=$2
  shift 2
  shardlog_start "$cores" "$out/broker.log" --listener-mode "$mode" "$@"
}

# run NAME WORKLOAD ARGS...: one loadgen run, JSON to $out/NAME.json.
run() {
  local name=$1 workload=$2
  shift 2
  log "$name: loadgen $workload $*"
  "$bin/loadgen" "$workload" --bootstrap "127.0.0.1:$port" --cores "$loadgen_core" \
    --quiet --json "$out/$name.json" "$@" >"$out/$name.txt" 2>&1 ||
    log "$name: loadgen exited $? (see $out/$name.txt)"
}

log "baselines"
"$here/baseline.sh" --data-dir "$data_parent" --server-core "${broker_cores%%[,-]*}" \
  --client-core "$loadgen_core" --fio-bs 16k,256k,1m --probe "$bin/shardlog-disk-probe" \
  >"$out/baseline.json"

common=(--topic bench --create --partitions 4)
start_broker single "$broker_cores"
run rate-1m-100b produce "${common[@]}" --record-size 100 --acks 1 --rate 1000000 \
  --warmup 5s --duration "${duration}s"
start_broker single "$broker_cores"
run max-100b produce "${common[@]}" --record-size 100 --acks 1 --rate 0 \
  --warmup 2s --duration "${short}s"
start_broker single "$broker_cores"
run max-1k produce "${common[@]}" --record-size 1024 --acks 1 --rate 0 \
  --warmup 2s --duration "${short}s"
start_broker single "$broker_cores"
run max-1k-256k-batches produce "${common[@]}" --record-size 1024 --acks 1 --rate 0 \
  --batch-bytes 262144 --warmup 2s --duration "${short}s"
start_broker single "$broker_cores"
run durable-1k produce "${common[@]}" --record-size 1024 --acks all --rate 0 \
  --warmup 2s --duration "${short}s"
# Hot consumption: about 5 GB produced into a cache that holds it all, then
# read from the start for one second (the consumer must not catch up within
# the measured window, so no warm-up: the data is already hot).
start_broker single "$broker_cores" --override shardlog.cache.bytes=10737418240
run hot-fill produce "${common[@]}" --record-size 1024 --acks 1 --rate 0 \
  --batch-bytes 262144 --duration 4s
for i in 1 2 3; do
  run "hot-consume-$i" consume --topic bench --from earliest --duration 1s
done
# Durable produce latency at a fixed rate (rate 0 only measures queueing).
start_broker single "$broker_cores"
run durable-1k-rate-100k produce "${common[@]}" --record-size 1024 --acks all \
  --rate 100000 --warmup 3s --duration "${short}s"

for mode in $modes; do
  for cores in "$broker_cores" "$broker_cores,$broker_cores"; do
    tag=$mode-$(echo "$cores" | tr ',' '+')
    start_broker "$mode" "$cores"
    run "mode-$tag-rate-1m" produce "${common[@]}" --record-size 100 --acks 1 \
      --rate 1000000 --warmup 3s --duration "${short}s"
    start_broker "$mode" "$cores"
    run "mode-$tag-max" produce "${common[@]}" --record-size 100 --acks 1 --rate 0 \
      --warmup 2s --duration "${short}s"
  done
done
shardlog_stop

python3 - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
b = load("baseline")
print("baselines:", json.dumps(b, indent=None)[:2000] if b else "missing")
print()
print("Latency is publish latency from the intended send time (CO-corrected);")
print("'send p99.9' is from the actual send. Consume rows show fetched MB/s.")
print()
print("| run | msg/s | MB/s | p50 ms | p99 ms | p99.9 ms | p99.99 ms | max ms | send p99.9 ms | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
for f in sorted(os.listdir(out)):
    if not f.endswith(".json") or f == "baseline.json":
        continue
    s = load(f[:-5])
    def ms(key, k):
        lat = s.get(key) or {}
        return "%.3f" % (lat[k] / 1000) if lat.get(k) is not None else "-"
    consumed = s.get("workload") == "consume"
    rate = s["consumed_records"] / s["duration_s"] if consumed else s["msg_per_s"]
    mb = s["consumed_mb_per_s"] if consumed else s["mb_per_s"]
    p = "publish_latency_us"
    print("| %s | %d | %.1f | %s | %s | %s | %s | %s | %s | %s |" % (
        f[:-5], rate, mb, ms(p, "p50"), ms(p, "p99"), ms(p, "p999"), ms(p, "p9999"),
        ms(p, "max"), ms("publish_latency_from_send_us", "p999"), s.get("errors")))
EOF
