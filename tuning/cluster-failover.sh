#!/usr/bin/env bash
# Controller failover and metadata propagation of a three-node shardlog
# cluster on loopback (127.0.0.1, .2, .3; combined broker+controller nodes,
# Kafka's default quorum timeouts unless overridden), or, with --kafka, of
# a three-node stock Apache Kafka cluster set up the same way (KRaft,
# combined nodes, the same addresses and defaults; tuning/kafka.sh installs
# it), as the baseline for the same figures on the same machine.
#
#   tuning/cluster-failover.sh [--kafka] [--trials N] [--bin DIR] [--out DIR] [--override KEY=VALUE]...
#
# Each trial: wait until a leader is elected and every broker registered,
# kill -9 the leader, and time (1) until a surviving node logs that it
# became the new leader, from the nodes' own log timestamps against the
# moment of the kill (one clock), and (2) until a CreateTopics sent to the
# survivors succeeds (the create-until example, started right after the
# kill, retrying every 50 ms; includes its process start, a few ms); then
# restart the killed node. The propagation figure (shardlog only) is, for
# every metadata record, the time from the first node applying it to the
# last. --override applies to both (a Kafka key=value line, or shardlog's
# --override).
# Release binaries first:
#   cargo build --release -p shardlog -p loadgen --example create-until
set -euo pipefail

trials=5 bin=target/release out=/var/tmp/shardlog-failover kafka=0
extra=() sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --kafka) kafka=1; shift ;;
    --trials) trials=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --override) extra+=(--override "$2"); sets+=(--set "$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "[$(date +%T)] $*" >&2; }
[ -x "$bin/shardlog" ] || { log "no $bin/shardlog; build the release binaries first"; exit 1; }
[ -x "$bin/examples/create-until" ] || { log "no $bin/examples/create-until; cargo build --release --example create-until"; exit 1; }
rm -rf "$out" && mkdir -p "$out"
port=19092 cport=19193
voters="1@127.0.0.1:$cport,2@127.0.0.2:$cport,3@127.0.0.3:$cport"
pids=(0 0 0 0)
# Kafka's example cluster id (any 16 bytes, base64url).
cluster_id=MkU3OEVBNTcwNTJENDM2Qk
started=(0 0 0 0)

start_node() {
  local n=$1
  if [ "$kafka" = 1 ]; then
    local keep=()
    [ "${started[n]}" = 1 ] && keep=(--keep-data)
    "$here/kafka.sh" start --dir "$out/k$n" --host "127.0.0.$n" --port "$port" \
      --controller-port "$cport" --node-id "$n" --voters "$voters" \
      --cluster-id "$cluster_id" --heap 512m --cores $(( (n - 1) % $(nproc) )) \
      ${keep[@]+"${keep[@]}"} ${sets[@]+"${sets[@]}"} --no-wait 2>>"$out/kafka-start.log"
    pids[n]=$(cat "$out/k$n/kafka.pid")
    started[n]=1
    return
  fi
  NO_COLOR=1 "$bin/shardlog" --cores $(( (n - 1) % $(nproc) )) --data-dir "$out/n$n" \
    --override process.roles=broker,controller --override node.id="$n" \
    --override controller.quorum.voters="$voters" \
    --override listeners="PLAINTEXT://127.0.0.$n:$port,CONTROLLER://127.0.0.$n:$cport" \
    --override controller.listener.names=CONTROLLER \
    --log-level info,shardlog::cluster=debug ${extra[@]+"${extra[@]}"} >>"$out/n$n.log" 2>&1 &
  pids[n]=$!
}
stop_all() { for n in 1 2 3; do [ "${pids[n]}" != 0 ] && kill -9 "${pids[n]}" 2>/dev/null; done; wait 2>/dev/null || true; }
trap stop_all EXIT

# Lines, with a sortable timestamp first, saying a node became the quorum's
# leader; and lines saying a broker is registered and serving.
leader_lines() {
  if [ "$kafka" = 1 ]; then
    grep -h "\[RaftManager id=[0-9]*\] Completed transition to Leader(" "$out"/k?/kafka.log 2>/dev/null |
      sed 's/^\[\([^]]*\)\].*\[RaftManager id=\([0-9]*\)\].*/\1 leader=\2 /' | sort || true
  else
    grep -h "metadata quorum: new leader.*role=Leader" "$out"/n?.log 2>/dev/null |
      sed 's/^\(\S*\) .*leader=\([0-9]*\) .*/\1 leader=\2 /' | sort || true
  fi
}
registered() {
  if [ "$kafka" = 1 ]; then
    # Each start appends one line: three, plus one per restart so far.
    local n
    n=$(cat "$out"/k?/kafka.log 2>/dev/null | grep -c "Kafka Server started" || true)
    echo $((n - restarts))
  else
    grep -h "UnfenceBroker" "$out"/n?.log 2>/dev/null | wc -l
  fi
}

# The node leading now: the last leader line.
current_leader() { leader_lines | tail -1 | sed -n 's/.*leader=\([0-9]*\) .*/\1/p'; }

# Epoch seconds of a leader line's timestamp (RFC 3339, or Kafka's
# "YYYY-MM-DD HH:MM:SS,mmm").
ts() { date -d "$(echo "$1" | sed 's/ leader=.*//; s/,/./')" +%s.%N; }

# A previous run's sockets may stay bound a moment after kill -9 (while
# the kernel tears down a killed shardlog's rings): wait until each port
# can be bound.
for n in 1 2 3; do
  for p in "$port" "$cport"; do
    python3 -c '
import socket, sys, time
for _ in range(200):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((sys.argv[1], int(sys.argv[2])))
        break
    except OSError:
        time.sleep(0.1)
    finally:
        s.close()
' "127.0.0.$n" "$p"
  done
done
for n in 1 2 3; do start_node "$n"; done
results=() creates=() restarts=0 failed=0
for t in $(seq "$trials"); do
  # Settle: a leader, every broker registered and serving.
  for _ in $(seq 600); do
    [ -n "$(current_leader)" ] && [ "$(registered)" -ge 3 ] && break
    sleep 0.1
  done
  [ -n "$(current_leader)" ] && [ "$(registered)" -ge 3 ] ||
    { log "no leader with three registered brokers within 60 s"; exit 1; }
  sleep 3
  leader=$(current_leader)
  before=$(leader_lines | wc -l)
  kill_at=$(date +%s.%N)
  kill -9 "${pids[leader]}"; wait "${pids[leader]}" 2>/dev/null || true
  # A Kafka JVM is no child of this shell: wait until it is gone.
  for _ in $(seq 200); do kill -0 "${pids[leader]}" 2>/dev/null || break; sleep 0.05; done
  pids[leader]=0
  survivors=$(for n in 1 2 3; do if [ "$n" != "$leader" ]; then printf '127.0.0.%s:%s,' "$n" "$port"; fi; done)
  "$bin/examples/create-until" "${survivors%,}" "failover-$t" 60 >/dev/null 2>"$out/create-$t.log" &
  create_pid=$!
  log "trial $t: killed leader $leader"
  new=""
  for _ in $(seq 600); do
    line=$(leader_lines | tail -1)
    if [ "$(leader_lines | wc -l)" -gt "$before" ] && [ -n "$line" ]; then
      if [ "$(echo "$(ts "$line") > $kill_at" | bc)" = 1 ]; then new=$line; break; fi
    fi
    sleep 0.05
  done
  [ -n "$new" ] || { log "no new leader within 30 s"; exit 1; }
  ms=$(echo "($(ts "$new") - $kill_at) * 1000" | bc | cut -d. -f1)
  results+=("$ms")
  if wait "$create_pid"; then
    created=$(echo "($(date +%s.%N) - $kill_at) * 1000" | bc | cut -d. -f1)
    creates+=("$created")
    log "trial $t: new leader after $ms ms, CreateTopics succeeded after $created ms"
  else
    failed=$((failed + 1))
    log "trial $t: new leader after $ms ms, no CreateTopics succeeded within 60 s (see $out/create-$t.log)"
  fi
  start_node "$leader"
  restarts=$((restarts + 1))
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
if [ "$kafka" = 1 ]; then
  echo "stock Apache Kafka, three combined KRaft nodes:"
else
  echo "shardlog, three combined nodes:"
fi
summary "a new leader elected" "${results[@]}"
if [ "${#creates[@]}" -gt 0 ]; then
  summary "the next successful CreateTopics" "${creates[@]}"
fi
[ "$failed" = 0 ] || echo "trials where no CreateTopics succeeded within 60 s: $failed of $trials"
[ "$kafka" = 1 ] && exit 0

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
