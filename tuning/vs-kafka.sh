#!/usr/bin/env bash
# shardlog and stock Apache Kafka side by side: each workload runs against
# shardlog and then against Kafka, on the same broker cores, with the same
# load generator on its own core, in one run; one JSON and one HTML page.
#
# Usage: tuning/vs-kafka.sh [--out DIR] [--duration S] [--kafka-version V]
#          [--broker-cores LIST] [--loadgen-core N] [--heap SIZE]
#          [--data-parent DIR] [--workloads "NAME ..."] [--repeat N]
#          [--no-baseline]
#   --out DIR          where the report goes (default target/vs-kafka)
#   --duration S       measured seconds per run (default 10; warm-up apart)
#   --warmup S         seconds of load before measuring, every run (default
#                      10: Kafka's JIT needs them as much as shardlog's
#                      caches do)
#   --kafka-version V  Apache Kafka 4.x version (default: tuning/kafka.sh's)
#   --broker-cores L   the broker's cores, both brokers (default 0)
#   --loadgen-core N   the load generator's core (default 1)
#   --heap SIZE        Kafka's fixed JVM heap (default 2g)
#   --data-parent DIR  where both brokers keep their data (default /var/tmp;
#                      a real disk, the same for both)
#   --workloads LIST   a subset of the workloads below, by name
#   --hold-p99-ms MS   the p99 bound of p100-kafka-rate (default 10)
#   --repeat N         run every workload N times, interleaved (each round
#                      runs all of them, shardlog then Kafka); the report
#                      gives medians and each figure's range (default 1)
#   --no-baseline      skip tuning/baseline.sh (iperf3, fio)
#
# Workloads (4 partitions, one loadgen producer connection per broker):
#   p100-max       100-byte records, acks=1, --rate 0
#   p100-1m        100-byte records, acks=1, --rate 1000000
#   p100-kafka-rate  100-byte records, acks=1, at the highest rate Kafka
#                  holds with publish p99 within --hold-p99-ms (a loadgen
#                  sweep against Kafka first, up to 1,000,000 msg/s)
#   p1k-max        1 KiB records, acks=1, --rate 0
#   ack-written    1 KiB, 100,000 msg/s: shardlog acks=1 (written to the
#                  file) vs Kafka acks=all with its defaults (page cache)
#   ack-durable    1 KiB, 100,000 msg/s: shardlog acks=all (fdatasync) vs
#                  Kafka acks=all with log.flush.interval.messages=1
#   consume        1 KiB records written first (warm-up + duration at full
#                  speed), then consumed from the start; MB/s over the
#                  seconds until the consumer caught up
#   e2e-100k       1 KiB, 100,000 msg/s produced and consumed at once
#   perf-tools     Kafka's kafka-producer-perf-test and
#                  kafka-consumer-perf-test (100-byte records) against both
#
# Needs release builds: cargo build --release -p shardlog -p loadgen.
# Each broker gets a fresh data directory per workload; its CPU seconds
# (utime+stime over the run) and peak RSS (VmHWM) are recorded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release

out=$root/target/vs-kafka duration=10 warmup=10 kafka_version="" broker_cores=0
loadgen_core=1 heap=2g data_parent=/var/tmp baseline=1 hold_p99_ms=10 repeat=1
workloads="p100-max p100-1m p100-kafka-rate p1k-max ack-written ack-durable consume e2e-100k perf-tools"
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --kafka-version) kafka_version=$2; shift 2 ;;
    --broker-cores) broker_cores=$2; shift 2 ;;
    --loadgen-core) loadgen_core=$2; shift 2 ;;
    --heap) heap=$2; shift 2 ;;
    --data-parent) data_parent=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --hold-p99-ms) hold_p99_ms=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --no-baseline) baseline=0; shift ;;
    -h | --help) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vs-kafka.sh: unknown option $1" >&2; exit 3 ;;
  esac
done
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "vs-kafka.sh: --repeat takes a count >= 1" >&2; exit 3; }
for b in shardlog loadgen; do
  [ -x "$bin/$b" ] || { echo "build first: $bin/$b is missing (cargo build --release -p shardlog -p loadgen)" >&2; exit 2; }
done
kafka=("$here/kafka.sh")
[ -n "$kafka_version" ] && kafka+=(--kafka-version "$kafka_version")
"${kafka[@]}" install
rm -rf "$out/runs"
mkdir -p "$out/runs"
runs=$out/runs/1
port=19092 cport=19093
log() { echo "vs-kafka.sh: $*" >&2; }

broker_kind=""
# shellcheck source=tuning/bench-lib.sh
. "$here/bench-lib.sh"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# start_broker KIND [KEY=VALUE ...]: KIND shardlog or kafka; settings for
# Kafka go to its server.properties.
start_broker() {
  local kind=$1
  shift
  stop_broker
  broker_kind=$kind
  if [ "$kind" = shardlog ]; then
    # The settings tuning/kafka.sh gives Kafka for a single-node benchmark
    # that shardlog also has (no initial rebalance delay).
    shardlog_start "$broker_cores" "$out/shardlog-broker.log" --listener-mode single \
      --override group.initial.rebalance.delay.ms=0
  else
    data=$(mktemp -d "$data_parent/vs-kafka-XXXXXX")
    local sets=()
    local kv
    for kv in "$@"; do sets+=(--set "$kv"); done
    "${kafka[@]}" start --dir "$data" --port "$port" --controller-port "$cport" \
      --cores "$broker_cores" --heap "$heap" ${sets[@]+"${sets[@]}"}
    broker_pid=$(cat "$data/kafka.pid")
    cp "$data/server.properties" "$out/kafka-server.properties"
    cp "$data/command" "$out/kafka-command"
  fi
}

stop_broker() {
  if [ -n "$broker_pid" ] && [ "$broker_kind" = kafka ]; then
    "${kafka[@]}" stop --dir "$data" || true
    broker_pid=""
  fi
  shardlog_stop
}
trap stop_broker EXIT

# Runs a client command and writes its CPU seconds (itself and its
# children) and wall seconds as JSON to the file named first: whether a
# client was the limit (its core busy all along) shows in the report.
CLIENT_USAGE_PY='
import json, resource, subprocess, sys, time
started = time.monotonic()
code = subprocess.call(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    json.dump({"client_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
               "client_wall_s": round(time.monotonic() - started, 2), "exit": code}, f)
sys.exit(code)
'

# measure NAME KIND CMD...: runs CMD against the running broker, then
# writes the broker's CPU seconds and peak RSS (and the client's CPU and
# wall seconds) beside the run's files.
measure() {
  local name=$1 kind=$2
  shift 2
  local t0 t1
  t0=$(cpu_ticks "$broker_pid")
  python3 -c "$CLIENT_USAGE_PY" "$runs/$name-$kind.client.json" "$@" \
    >"$runs/$name-$kind.txt" 2>&1 </dev/null ||
    log "$name/$kind: exited $? (see $runs/$name-$kind.txt)"
  t1=$(cpu_ticks "$broker_pid")
  local hz
  hz=$(getconf CLK_TCK)
  printf '{"cpu_s": %s, "peak_rss_kb": %s}\n' \
    "$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')" \
    "$(peak_rss_kb "$broker_pid")" >"$runs/$name-$kind.broker.json"
}

loadgen() {
  local name=$1 kind=$2 workload=$3
  shift 3
  measure "$name" "$kind" taskset -c "$loadgen_core" "$bin/loadgen" "$workload" \
    --bootstrap "127.0.0.1:$port" --cores "$loadgen_core" --quiet \
    --json "$runs/$name-$kind.json" "$@"
}

short=$(( (duration + 1) / 2 ))
common=(--topic bench --create --partitions 4)

# run_pair NAME "KAFKA SETTINGS" SHARDLOG-ARGS -- KAFKA-ARGS: one workload
# on both brokers; loadgen arguments may differ per broker (acks).
run_pair() {
  local name=$1 settings=$2
  shift 2
  local s_args=() k_args=() side=s
  for a in "$@"; do
    if [ "$a" = -- ]; then side=k; continue; fi
    if [ $side = s ]; then s_args+=("$a"); else k_args+=("$a"); fi
  done
  [ ${#k_args[@]} -eq 0 ] && k_args=("${s_args[@]}")
  log "$name: shardlog"
  start_broker shardlog
  loadgen "$name" shardlog "${s_args[@]}"
  stop_broker
  log "$name: kafka"
  # shellcheck disable=SC2086
  start_broker kafka $settings
  loadgen "$name" kafka "${k_args[@]}"
  stop_broker
}

# Kafka's own perf tools against KIND (already running).
perf_tools() {
  local kind=$1
  local bs="127.0.0.1:$port"
  "${kafka[@]}" tool kafka-topics --bootstrap-server "$bs" --create --topic perf --partitions 4 >/dev/null 2>&1 || true
  measure perf-tools-producer "$kind" taskset -c "$loadgen_core" "${kafka[@]}" tool kafka-producer-perf-test \
    --topic perf --num-records 3000000 --record-size 100 --throughput -1 \
    --producer-props "bootstrap.servers=$bs" acks=1 linger.ms=5 batch.size=16384
  measure perf-tools-consumer "$kind" taskset -c "$loadgen_core" "${kafka[@]}" tool kafka-consumer-perf-test \
    --bootstrap-server "$bs" --topic perf --messages 3000000 --timeout 60000
}

if [ "$baseline" = 1 ]; then
  log "baselines (iperf3, fio)"
  "$here/baseline.sh" --data-dir "$data_parent" --server-core "${broker_cores%%[,-]*}" \
    --client-core "$loadgen_core" --fio-bs 16k,1m >"$out/baseline.json" ||
    { log "baseline.sh failed; the report has no baselines"; echo '{}' >"$out/baseline.json"; }
else
  echo '{}' >"$out/baseline.json"
fi

held=""
for round in $(seq "$repeat"); do
  runs=$out/runs/$round
  mkdir -p "$runs"
  log "round $round of $repeat"
  for w in $workloads; do
    case $w in
      p100-max)
        run_pair p100-max "" produce "${common[@]}" --record-size 100 --acks 1 --rate 0 \
          --warmup "${warmup}s" --duration "${short}s" ;;
      p100-1m)
        run_pair p100-1m "" produce "${common[@]}" --record-size 100 --acks 1 --rate 1000000 \
          --warmup "${warmup}s" --duration "${duration}s" ;;
      p100-kafka-rate)
        # The sweep runs in the first round; later rounds reuse its rate.
        if [ -z "$held" ]; then
          log "p100-kafka-rate: sweeping Kafka for the highest rate with p99 <= ${hold_p99_ms} ms"
          start_broker kafka
          # A fresh Kafka's first seconds under load (JIT, the new topic's
          # partitions) would fail the sweep's first trial: warm it first.
          taskset -c "$loadgen_core" "$bin/loadgen" produce --bootstrap "127.0.0.1:$port" "${common[@]}" \
            --cores "$loadgen_core" --quiet --record-size 100 --acks 1 --rate 100000 --warmup 0s \
            --duration "${warmup}s" >"$runs/p100-kafka-rate-warmup.txt" 2>&1 || true
          taskset -c "$loadgen_core" "$bin/loadgen" sweep --bootstrap "127.0.0.1:$port" "${common[@]}" \
            --cores "$loadgen_core" --quiet --record-size 100 --acks 1 --p99-ms "$hold_p99_ms" \
            --start-rate 100000 --max-rate 1000000 --steps 4 --warmup 5s --duration 5s \
            --json "$runs/p100-kafka-rate-sweep.json" >"$runs/p100-kafka-rate-sweep.txt" 2>&1 ||
            log "the sweep exited $? (see $runs/p100-kafka-rate-sweep.txt)"
          stop_broker
          held=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("best_rate", 0))' \
            "$runs/p100-kafka-rate-sweep.json" 2>/dev/null || echo 0)
        fi
        if [ "${held:-0}" -gt 0 ]; then
          log "p100-kafka-rate: Kafka holds $held msg/s"
          run_pair p100-kafka-rate "" produce "${common[@]}" --record-size 100 --acks 1 --rate "$held" \
            --warmup "${warmup}s" --duration "${duration}s"
        else
          log "p100-kafka-rate: Kafka held no rate tried within p99 ${hold_p99_ms} ms"
        fi ;;
      p1k-max)
        run_pair p1k-max "" produce "${common[@]}" --record-size 1024 --acks 1 --rate 0 \
          --warmup "${warmup}s" --duration "${short}s" ;;
      ack-written)
        run_pair ack-written "" \
          produce "${common[@]}" --record-size 1024 --acks 1 --rate 100000 --warmup "${warmup}s" --duration "${duration}s" -- \
          produce "${common[@]}" --record-size 1024 --acks all --rate 100000 --warmup "${warmup}s" --duration "${duration}s" ;;
      ack-durable)
        run_pair ack-durable "log.flush.interval.messages=1" \
          produce "${common[@]}" --record-size 1024 --acks all --rate 100000 --warmup "${warmup}s" --duration "${duration}s" ;;
      consume)
        for kind in shardlog kafka; do
          log "consume: $kind"
          start_broker "$kind"
          taskset -c "$loadgen_core" "$bin/loadgen" produce --bootstrap "127.0.0.1:$port" "${common[@]}" \
            --cores "$loadgen_core" --quiet --record-size 1024 --acks 1 --rate 0 --warmup 0s \
            --duration "$((warmup + duration))s" >"$runs/consume-fill-$kind.txt" 2>&1 || true
          loadgen consume "$kind" consume --topic bench --from earliest --warmup 0s --duration "${short}s"
          stop_broker
        done ;;
      e2e-100k)
        run_pair e2e-100k "" e2e "${common[@]}" --record-size 1024 --acks 1 --rate 100000 \
          --warmup "${warmup}s" --duration "${duration}s" ;;
      perf-tools)
        for kind in shardlog kafka; do
          log "perf-tools: $kind"
          start_broker "$kind"
          perf_tools "$kind"
          stop_broker
        done ;;
      *) log "unknown workload $w"; exit 3 ;;
    esac
  done
done

python3 "$here/vs_kafka_report.py" "$out" "$workloads"
log "report: $out/vs-kafka.json, $out/vs-kafka.html"
