#!/usr/bin/env bash
# What a single node pays for running the metadata quorum: 100-byte
# records, acks=1, rate 0, the broker on one core and loadgen on another,
# alternating a plain node and the same node as a one-voter combined
# cluster (process.roles=broker,controller, controller.quorum.voters set to
# itself), --rounds times each. Prints per-run MB/s and the median ratio.
#
#   tuning/quorum-overhead.sh [--rounds N] [--duration S] [--broker-core N] [--loadgen-core N]
#
# Release binaries first: cargo build --release -p shardlog -p loadgen
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=$root/target/release port=19092 data_parent=/var/tmp
rounds=3 duration=10 broker_core=0 loadgen_core=1
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --broker-core) broker_core=$2; shift 2 ;;
    --loadgen-core) loadgen_core=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "[$(date +%T)] $*" >&2; }
# shellcheck source=tuning/bench-lib.sh
. "$here/bench-lib.sh"
trap shardlog_stop EXIT
out=$(mktemp -d /var/tmp/quorum-overhead-XXXXXX)
quorum=(--override process.roles=broker,controller --override node.id=1
  --override controller.quorum.voters=1@127.0.0.1:19193
  --override "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:19193"
  --override controller.listener.names=CONTROLLER)

# one NAME [ARGS...]: a fresh broker with ARGS, one loadgen run; the MB/s
# in $mbs. (Not in a subshell: the broker's pid must stay in this shell so
# the next start stops it.)
one() {
  local name=$1
  shift
  shardlog_start "$broker_core" "$out/$name.log" "$@"
  # A one-voter quorum elects itself after one election timeout (2-4 s)
  # and registers its broker; both kinds wait the same.
  sleep 5
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    log "$name: the broker exited:"; cat "$out/$name.log" >&2; exit 1
  fi
  if [ $# -gt 0 ] && [ ! -d "$data/data/__cluster_metadata-0" ]; then
    log "$name: no metadata log: not a cluster node?"; exit 1
  fi
  "$bin/loadgen" produce --bootstrap "127.0.0.1:$port" --cores "$loadgen_core" --quiet \
    --json "$out/$name.json" --topic bench --create --partitions 4 --record-size 100 \
    --acks 1 --rate 0 --warmup 2s --duration "${duration}s" >"$out/$name.txt" 2>&1
  mbs=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['mb_per_s']))" "$out/$name.json")
}

plain=() with=()
for r in $(seq "$rounds"); do
  one "plain-$r"
  p=$mbs
  one "quorum-$r" "${quorum[@]}"
  q=$mbs
  log "round $r: plain $p MB/s, with a one-voter quorum $q MB/s"
  plain+=("$p") with+=("$q")
done
shardlog_stop
python3 - "${plain[*]}" "${with[*]}" <<'EOF'
import statistics, sys
plain = [float(x) for x in sys.argv[1].split()]
quorum = [float(x) for x in sys.argv[2].split()]
mp, mq = statistics.median(plain), statistics.median(quorum)
print(f"100-byte produce, acks=1, rate 0: plain median {mp:.0f} MB/s {plain}, "
      f"one-voter quorum median {mq:.0f} MB/s {quorum}; ratio {mq / mp:.2f}")
EOF
rm -rf "$out"
