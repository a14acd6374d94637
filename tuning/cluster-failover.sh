#!/usr/bin/env bash
# Controller failover and metadata propagation of a three-node shardlog
# cluster on loopback (127.0.0.1, .2, .3; combined broker+controller nodes,
# Kafka's default quorum timeouts unless overridden).
#
#   tuning/cluster-failover.sh [--trials N] [--bin DIR] [--out DIR] [--override KEY=VALUE]...
#
# Each trial: wait until a leader is elected and every broker registered,
# kill -9 the leader, and time (1) until a surviving node logs that it
# became the new leader, from the nodes' own log timestamps against the
# moment of the kill (one clock), and (2) until a CreateTopics sent to the
# survivors succeeds (the create-until example, started right after the
# kill, retrying every 50 ms; includes its process start, a few ms); then
# restart the killed node. The propagation figure is, for every metadata
# record, the time from the first node applying it to the last.
# Release binaries first:
#   cargo build --release -p shardlog -p loadgen --example create-until
set -euo pipefail

trials=5 bin=target/release out=/var/tmp/shardlog-failover
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --trials) trials=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --override) extra+=(--override "$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "[$(date +%T)] $*" >&2; }
[ -x "$bin/shardlog" ] || { log "no $bin/shardlog; build the release binaries first"; exit 1; }
[ -x "$bin/examples/create-until" ] || { log "no $bin/examples/create-until; cargo build --release --example create-until"; exit 1; }
rm -rf "$out" && mkdir -p "$out"
port=19092 cport=19193
voters="1@127.0.0.1:$cport,2@127.0.0.2:$cport,3@127.0.0.3:$cport"
pids=(0 0 0 0)

start_node() {
  local n=$1
  NO_COLOR=1 "$bin/shardlog" --cores $(( (n - 1) % $(nproc) )) --data-dir "$out/n$n" \
    --override process.roles=broker,controller --override node.id="$n" \
    --override controller.quorum.voters="$voters" \
    --override listeners="PLAINTEXT://127.0.0.$n:$port,CONTROLLER://127.0.0.$n:$cport" \
    --override controller.listener.names=CONTROLLER \
    --log-level info,shardlog::cluster=debug "${extra[@]}" >>"$out/n$n.log" 2>&1 &
  pids[n]=$!
}
stop_all() { for n in 1 2 3; do [ "${pids[n]}" != 0 ] && kill -9 "${pids[n]}" 2>/dev/null; done; wait 2>/dev/null || true; }
trap stop_all EXIT

# The node leading now: the last "new leader" line across the live logs.
current_leader() {
  grep -h "metadata quorum: new leader" "$out"/n?.log 2>/dev/null | sort | tail -1 |
    sed -n 's/.*leader=\([0-9]*\) .*/\1/p'
}

# Epoch seconds of a log line's RFC 3339 timestamp.
ts() { date -d "$1" +%s.%N; }

for n in 1 2 3; do start_node "$n"; done
results=() creates=()
for t in $(seq "$trials"); do
  # Settle: a leader, every broker registered (three unfenced brokers).
  for _ in $(seq 200); do
    regs=$(grep -h "UnfenceBroker" "$out"/n?.log 2>/dev/null | wc -l || true)
    [ -n "$(current_leader)" ] && [ "$regs" -ge 3 ] && break
    sleep 0.1
  done
  sleep 3
  leader=$(current_leader)
  before=$(grep -ch "metadata quorum: new leader" "$out"/n?.log | paste -sd+ | bc)
  kill_at=$(date +%s.%N)
  kill -9 "${pids[leader]}"; wait "${pids[leader]}" 2>/dev/null || true; pids[leader]=0
  survivors=$(for n in 1 2 3; do if [ "$n" != "$leader" ]; then printf '127.0.0.%s:%s,' "$n" "$port"; fi; done)
  "$bin/examples/create-until" "${survivors%,}" "failover-$t" 60 >/dev/null 2>"$out/create-$t.log" &
  create_pid=$!
  log "trial $t: killed leader $leader"
  new=""
  for _ in $(seq 300); do
    line=$(grep -h "metadata quorum: new leader.*role=Leader" "$out"/n?.log | sort | tail -1)
    now=$(grep -ch "metadata quorum: new leader" "$out"/n?.log | paste -sd+ | bc)
    if [ "$now" -gt "$before" ] && [ -n "$line" ]; then
      stamp=$(echo "$line" | awk '{print $1}')
      if [ "$(echo "$(ts "$stamp") > $kill_at" | bc)" = 1 ]; then new=$stamp; break; fi
    fi
    sleep 0.05
  done
  [ -n "$new" ] || { log "no new leader within 15 s"; exit 1; }
  ms=$(echo "($(ts "$new") - $kill_at) * 1000" | bc | cut -d. -f1)
  results+=("$ms")
  wait "$create_pid" || { log "trial $t: no CreateTopics succeeded (see $out/create-$t.log)"; exit 1; }
  created=$(echo "($(date +%s.%N) - $kill_at) * 1000" | bc | cut -d. -f1)
  creates+=("$created")
  log "trial $t: new leader after $ms ms, CreateTopics succeeded after $created ms"
  start_node "$leader"
  sleep 2
done
stop_all
trap - EXIT

summary() {
  local what=$1
  shift
  local sorted p50 max
  sorted=$(printf '%s\n' "$@" | sort -n)
  p50=$(echo "$sorted" | awk -v n="$#" 'NR == int((n + 1) / 2)')
  max=$(echo "$sorted" | tail -1)
  echo "kill -9 of the leader -> $what: trials $* ms; p50 $p50 ms, max $max ms"
}
summary "a new leader elected" "${results[@]}"
summary "the next successful CreateTopics" "${creates[@]}"

# Propagation: per record offset, leader's apply time to the last apply.
python3 - "$out" <<'EOF'
import re, sys, glob, datetime
# offset -> node -> the first time that node applied it (a restarted node
# applies everything again at replay; only the first apply counts).
applied = {}
for path in glob.glob(sys.argv[1] + "/n?.log"):
    for line in open(path, errors="replace"):
        m = re.match(r"(\S+Z) .*metadata record applied offset=(\d+)", line)
        if m:
            t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
            applied.setdefault(int(m.group(2)), {}).setdefault(path, t)
# Records every node applied within 5 s of the first: committed while all
# three were up (a node that was down applies them when it catches up).
spreads = sorted((max(v.values()) - min(v.values())) * 1000
                 for v in applied.values()
                 if len(v) == 3 and max(v.values()) - min(v.values()) < 5)
if spreads:
    p50 = spreads[len(spreads) // 2]
    print(f"metadata propagation, first to last node applying a record committed while all "
          f"three were up: {len(spreads)} records, p50 {p50:.1f} ms, max {spreads[-1]:.1f} ms")
EOF
