# Shared by the tuning scripts (targets, vs-kafka, tls-cost, acl-cost): one shardlog broker
# at a time on 127.0.0.1:$port, with its data in a fresh directory under
# $data_parent. Meant to be sourced by bash; the caller sets bin (the
# release binaries), port and data_parent (and may set bench_log_level,
# default warn, and bench_format_args, arguments of `shardlog format` run
# on the fresh data directory first), and defines log().

broker_pid="" data=""
bench_format_args=()

# parse_rounds_count ARGS...: sets rounds and count from --rounds N and
# --count N (the caller sets their defaults first).
parse_rounds_count() {
  while [ $# -gt 0 ]; do
    case $1 in
      --rounds) rounds=$2; shift 2 ;;
      --count) count=$2; shift 2 ;;
      *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
  done
}

# perf_produce_consume OUT WAY [CLIENT_ARGS...]: with rdkafka_performance
# ($perf, pinned to $tool_core) produces $count 1 KiB records (acks=1) to
# the one-partition topic bench on 127.0.0.1:$port and consumes them back
# (its outputs in OUT/WAY-*.txt), stops the broker, and prints
# "produce_MBps consume_MBps".
perf_produce_consume() {
  local out=$1 way=$2 b=127.0.0.1:$port
  shift 2
  taskset -c "$tool_core" "$perf" -P -t bench -s 1024 -c "$count" -b "$b" -X acks=1 \
    "$@" >"$out/$way-produce.txt" 2>&1
  taskset -c "$tool_core" "$perf" -C -t bench -p 0 -o beginning -c "$count" -b "$b" \
    "$@" >"$out/$way-consume.txt" 2>&1
  shardlog_stop
  python3 - "$out/$way-produce.txt" "$out/$way-consume.txt" <<'PY'
import re, sys
def last(path, pattern):
    found = re.findall(pattern, open(path).read())
    if not found:
        sys.exit(f"no result in {path}: {open(path).read()[-2000:]}")
    return float(found[-1])
p = last(sys.argv[1], r"delivered .*? and ([0-9.]+) MB/s")
c = last(sys.argv[2], r"consumed in [0-9]+ms: [0-9]+ msgs/s \(([0-9.]+) MB/s\)")
print(f"{p:.0f} {c:.0f}")
PY
}

# rdkafka_perf_tool: builds librdkafka's rdkafka_performance (from the
# librdkafka the rdkafka crate bundles, with OpenSSL, by
# tests/clients/librdkafka-tests.sh) and prints its path; needs root set.
rdkafka_perf_tool() {
  local tests
  tests=$(bash "$root/tests/clients/librdkafka-tests.sh")
  make -s -C "$tests/../examples" rdkafka_performance >/dev/null
  echo "$tests/../examples/rdkafka_performance"
}

# shardlog_start CORES LOG [ARGS...]: starts shardlog pinned to CORES
# (taskset and its own --cores) with ARGS, output to LOG; returns once the
# port accepts connections, exits the script if it does not within 10 s.
shardlog_start() {
  local cores=$1 logfile=$2
  shift 2
  shardlog_stop
  data=$(mktemp -d "$data_parent/shardlog-bench-XXXXXX")
  if [ "${#bench_format_args[@]}" -gt 0 ]; then
    "$bin/shardlog" format --data-dir "$data/data" "${bench_format_args[@]}" >/dev/null
  fi
  # A script may put files into the data directory before the start.
  if [ -n "${bench_prepare_data:-}" ]; then
    mkdir -p "$data/data"
    "$bench_prepare_data" "$data/data"
  fi
  taskset -c "$cores" "$bin/shardlog" --cores "$cores" \
    --listen "127.0.0.1:$port" --advertise "127.0.0.1:$port" \
    --data-dir "$data/data" --log-level "${bench_log_level:-warn}" "$@" >"$logfile" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  log "shardlog did not start:"
  cat "$logfile" >&2
  exit 1
}

# shardlog_stop: stops the broker started last (SIGTERM, then waits for it)
# and removes its data.
shardlog_stop() {
  if [ -n "$broker_pid" ]; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
  fi
  [ -n "$data" ] && rm -rf "$data"
  data=""
}
