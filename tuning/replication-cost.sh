#!/usr/bin/env bash
# What replication costs: a three-node shardlog cluster on loopback
# (127.0.0.1, .2, .3; combined broker+controller nodes), and the load
# generator producing 1 KiB records at a fixed rate to one partition in
# three set-ups, back to back in the same run:
#   rf1-acks1   replication factor 1, acks=1
#   rf1-acksall replication factor 1, acks=all (durable on the leader)
#   rf3-acksall replication factor 3, acks=all, min.insync.replicas=2
# Each prints loadgen's summary (throughput, publish latency p50/p99/p99.9
# from send); the JSON summaries land in --out. A 2-core machine runs the
# three brokers and the load generator on the same two cores: the figures
# are oversubscribed, ratios within one run are what carries over.
# --kafka runs the same against a three-node stock Apache Kafka cluster
# set up the same way (KRaft combined nodes on the same addresses, 512 MiB
# heaps, tuning/kafka.sh), the baseline on the same machine. Kafka's
# acks=all does not fsync (log.flush.interval.messages is unbounded);
# shardlog's is durable on the leader.
#
#   tuning/replication-cost.sh [--kafka] [--rate N] [--size BYTES] [--duration 15s] [--bin DIR] [--out DIR]
# Release binaries first:
#   cargo build --release -p shardlog -p loadgen
set -euo pipefail

rate=20000 size=1024 duration=15s bin=target/release out=/var/tmp/shardlog-replication-cost kafka=0
while [ $# -gt 0 ]; do
  case $1 in
    --kafka) kafka=1; shift ;;
    --rate) rate=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "[$(date +%T)] $*" >&2; }
[ -x "$bin/shardlog" ] && [ -x "$bin/loadgen" ] ||
  { log "no $bin/shardlog or $bin/loadgen; cargo build --release -p shardlog -p loadgen"; exit 1; }
rm -rf "$out" && mkdir -p "$out"
port=19292 cport=19393
voters="1@127.0.0.1:$cport,2@127.0.0.2:$cport,3@127.0.0.3:$cport"
pids=(0 0 0 0)
if [ "$kafka" = 1 ]; then
  # Kafka's example cluster id (any 16 bytes, base64url).
  for n in 1 2 3; do
    "$here/kafka.sh" start --dir "$out/k$n" --host "127.0.0.$n" --port "$port" \
      --controller-port "$cport" --node-id "$n" --voters "$voters" \
      --cluster-id MkU3OEVBNTcwNTJENDM2Qk --heap 512m --cores $(( (n - 1) % $(nproc) )) \
      --no-wait 2>>"$out/kafka-start.log"
    pids[n]=$(cat "$out/k$n/kafka.pid")
  done
  stop_all() { for n in 1 2 3; do "$here/kafka.sh" stop --dir "$out/k$n" >/dev/null 2>&1 || true; done; }
  trap stop_all EXIT
  for _ in $(seq 1200); do
    [ "$(cat "$out"/k?/kafka.log 2>/dev/null | grep -c "Kafka Server started")" -ge 3 ] && break
    sleep 0.1
  done
else
  for n in 1 2 3; do
    NO_COLOR=1 "$bin/shardlog" --cores $(( (n - 1) % $(nproc) )) --data-dir "$out/n$n" \
      --override process.roles=broker,controller --override node.id="$n" \
      --override controller.quorum.voters="$voters" \
      --override listeners="PLAINTEXT://127.0.0.$n:$port,CONTROLLER://127.0.0.$n:$cport" \
      --override controller.listener.names=CONTROLLER \
      --override shardlog.metrics.listen= >>"$out/n$n.log" 2>&1 &
    pids[n]=$!
  done
  stop_all() { for n in 1 2 3; do [ "${pids[n]}" != 0 ] && kill "${pids[n]}" 2>/dev/null; done; wait 2>/dev/null || true; }
  trap stop_all EXIT
  # Every broker registered and unfenced.
  for _ in $(seq 600); do
    [ "$(grep -h "broker registered with the metadata quorum" "$out"/n?.log 2>/dev/null | wc -l)" -ge 3 ] && break
    sleep 0.1
  done
fi
sleep 3
bootstrap=127.0.0.1:$port
run() {
  local name=$1 rf=$2 acks=$3
  log "$name: replication factor $rf, acks=$acks, $rate msg/s of $size bytes for $duration"
  "$bin/loadgen" produce --bootstrap "$bootstrap" --topic "$name" --acks "$acks" --rate "$rate" --record-size "$size" \
    --warmup 3s --duration "$duration" --quiet --json "$out/$name.json" | tee "$out/$name.txt"
}
# The topics, made with Kafka's own tool: min.insync.replicas=2 on the
# RF=3 one.
create() {
  "$here/kafka.sh" tool kafka-topics --bootstrap-server "$bootstrap" --create --topic "$1" \
    --partitions 1 --replication-factor "$2" "${@:3}" >>"$out/topics.log" 2>&1
}
create rf1-acks1 1
create rf1-acksall 1
create rf3-acksall 3 --config min.insync.replicas=2
run rf1-acks1 1 1
run rf1-acksall 1 all
run rf3-acksall 3 all
if [ "$kafka" = 0 ]; then
  for n in 1 2 3; do
    grep -hE "shrinking the ISR|truncating" "$out/n$n.log" | sed "s/^/node $n: /" || true
  done
fi
