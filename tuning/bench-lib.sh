# Shared by tuning/targets.sh and tuning/vs-kafka.sh: one shardlog broker
# at a time on 127.0.0.1:$port, with its data in a fresh directory under
# $data_parent. Meant to be sourced by bash; the caller sets bin (the
# release binaries), port and data_parent (and may set bench_log_level,
# default warn, and bench_format_args, arguments of `shardlog format` run
# on the fresh data directory first), and defines log().

broker_pid="" data=""
bench_format_args=()

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
