#!/usr/bin/env bash
# Machine baselines for a benchmark note, taken in one run, as one JSON
# object on stdout (progress on stderr):
#
#   iperf3  loopback TCP, one flow, server pinned to --server-core and
#           client to --client-core (-A), with 128 KiB and 1 KiB writes (-l)
#   fio     sequential O_DIRECT writes at queue depth 1 for each --fio-bs,
#           a fresh file each; and write + fdatasync rounds at --sync-bs
#           (fio's sync latency percentiles)
#   probe   shardlog-disk-probe on the same directory, when it is built
#           (target/release or target/debug, $CARGO_TARGET_DIR, or --probe)
#
# Usage: tuning/baseline.sh [--data-dir DIR] [--seconds N] [--server-core N]
#          [--client-core N] [--fio-bs LIST] [--sync-bs SIZE] [--probe PATH]
#          [--no-install]
#   --data-dir DIR     where fio and the probe write (default /var/tmp; a real
#                      disk: the broker's data directory)
#   --seconds N        length of each measurement (default 3)
#   --server-core N    iperf3 server core, also fio's (default 0: the broker's)
#   --client-core N    iperf3 client core (default 1: the load generator's)
#   --fio-bs LIST      fio write sizes (default 16k,64k,1m)
#   --sync-bs SIZE     bytes written before each fdatasync (default 16k)
#   --no-install       fail instead of installing iperf3, fio, jq
#
# iperf3, fio and jq are installed with apt-get when missing (as root),
# unless --no-install. Every file written is deleted. MB/s are 10^6 bytes
# per second; latencies are microseconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '14,26p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-3}"; }

data_dir=/var/tmp seconds=3 server_core=0 client_core=1
fio_bs=16k,64k,1m sync_bs=16k probe="" install=1
while [ $# -gt 0 ]; do
  case $1 in
    --data-dir) data_dir=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --server-core) server_core=$2; shift 2 ;;
    --client-core) client_core=$2; shift 2 ;;
    --fio-bs) fio_bs=$2; shift 2 ;;
    --sync-bs) sync_bs=$2; shift 2 ;;
    --probe) probe=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -ge 1 ] && [ "$seconds" -le 60 ] ||
  { echo "--seconds must be 1..60" >&2; exit 3; }
[ -d "$data_dir" ] || { echo "$data_dir is not a directory" >&2; exit 3; }
log() { echo "baseline.sh: $*" >&2; }

# Tools.
missing=()
for tool in iperf3 fio jq; do command -v $tool >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ $install = 0 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing ${missing[*]}: install them (apt-get install ${missing[*]})"
    exit 2
  fi
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/shardlog-baseline.XXXXXX")
server_pid=""
fio_file="$data_dir/.shardlog-baseline-fio.$$"
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -f "$fio_file"
  rm -rf "$work"
}
trap cleanup EXIT

# --- iperf3 -----------------------------------------------------------------
port=""
for _ in 1 2 3 4 5; do
  p=$((20000 + RANDOM % 20000))
  iperf3 -s -B 127.0.0.1 -p $p -A "$server_core" >"$work/iperf3-server.log" 2>&1 &
  server_pid=$!
  sleep 0.3
  if kill -0 $server_pid 2>/dev/null; then port=$p; break; fi
  wait $server_pid 2>/dev/null || true
  server_pid=""
done
[ -n "$port" ] || { log "iperf3 server did not start: $(cat "$work/iperf3-server.log")"; exit 1; }

# One flow for $seconds with writes of $1 bytes; prints MB/s received.
iperf_run() {
  local len=$1 out="$work/iperf3-$1.json" i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    if iperf3 -c 127.0.0.1 -p "$port" -A "$client_core" -t "$seconds" -l "$len" -J >"$out" 2>&1; then
      jq '.end.sum_received.bits_per_second / 8 / 1e6' "$out"
      return
    fi
    sleep 0.2
  done
  log "iperf3 client failed: $(jq -r '.error // empty' "$out" 2>/dev/null || cat "$out")"
  exit 1
}
log "iperf3 loopback, server on core $server_core, client on core $client_core, ${seconds}s each"
iperf_128k=$(iperf_run 128K)
iperf_1k=$(iperf_run 1K)
kill "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
server_pid=""

# --- fio --------------------------------------------------------------------
engine=psync
for e in io_uring libaio; do
  if fio --enghelp="$e" >/dev/null 2>&1; then engine=$e; break; fi
done
free_kib=$(df -Pk "$data_dir" | awk 'NR == 2 {print $4}')
# Sequential writes stop at the size limit or after $seconds, whichever
# comes first, so they never wrap around into overwrites.
size_mib=$((free_kib / 1024 / 4))
[ $size_mib -gt 8192 ] && size_mib=8192
[ $size_mib -ge 64 ] || { log "less than 256 MiB free in $data_dir"; exit 1; }

fio_run() { # name, extra fio args...; prints fio's JSON file name
  local name=$1 out="$work/fio-$1.json"
  shift
  rm -f "$fio_file"
  fio --name="$name" --filename="$fio_file" --rw=write --direct=1 --ioengine="$engine" \
    --iodepth=1 --size="${size_mib}m" --runtime="$seconds" --fallocate=none \
    --cpus_allowed="$server_core" --output-format=json "$@" >"$out"
  rm -f "$fio_file"
  echo "$out"
}
to_bytes() { # 16k -> 16384, 1m -> 1048576
  local n=${1%[kKmMgG]}
  case $1 in
    *[kK]) echo $((n << 10)) ;;
    *[mM]) echo $((n << 20)) ;;
    *[gG]) echo $((n << 30)) ;;
    *) echo "$n" ;;
  esac
}
seq_json="[]"
IFS=, read -r -a sizes <<<"$fio_bs"
for bs in "${sizes[@]}"; do
  log "fio sequential O_DIRECT write, bs=$bs, $engine, queue depth 1"
  f=$(fio_run "write-$bs" --bs="$bs")
  seq_json=$(jq --arg bs "$bs" --argjson bytes "$(to_bytes "$bs")" --argjson acc "$seq_json" '
    .jobs[0].write as $w
    | $acc + [{bs: $bs, bs_bytes: $bytes,
               mb_per_s: ($w.bw_bytes / 1e6), ios: $w.total_ios,
               clat_p50_us: ($w.clat_ns.percentile["50.000000"] / 1000),
               clat_p99_us: ($w.clat_ns.percentile["99.000000"] / 1000)}]' "$f")
done
log "fio write + fdatasync, bs=$sync_bs"
f=$(fio_run "fdatasync-$sync_bs" --bs="$sync_bs" --fdatasync=1)
sync_json=$(jq --arg bs "$sync_bs" --argjson bytes "$(to_bytes "$sync_bs")" '
  .jobs[0] as $j | $j.sync.lat_ns as $s
  | {bs: $bs, bs_bytes: $bytes, syncs: $s.N, write_mb_per_s: ($j.write.bw_bytes / 1e6),
     p50_us: ($s.percentile["50.000000"] / 1000), p99_us: ($s.percentile["99.000000"] / 1000),
     p99_9_us: ($s.percentile["99.900000"] / 1000), max_us: ($s.max / 1000)}' "$f")

# --- shardlog-disk-probe ----------------------------------------------------
if [ -z "$probe" ]; then
  for d in "${CARGO_TARGET_DIR:-}" "$here/../target"; do
    for p in "$d/release/shardlog-disk-probe" "$d/debug/shardlog-disk-probe"; do
      [ -n "$d" ] && [ -x "$p" ] && { probe=$p; break 2; }
    done
  done
fi
probe_json=null
if [ -n "$probe" ]; then
  log "shardlog-disk-probe ($probe)"
  probe_json=$(taskset -c "$server_core" "$probe" --data-dir "$data_dir" --seconds "$seconds" \
    --write-sizes "$fio_bs" --sync-write-size "$sync_bs" --max-mib "$size_mib" --json)
else
  log "shardlog-disk-probe not built (cargo build --release --bin shardlog-disk-probe): skipped"
fi

fs=$(findmnt -n -o FSTYPE -T "$data_dir" 2>/dev/null | head -n 1 || true)
jq -n \
  --arg kernel "$(uname -r)" --arg date "$(date -u +%FT%TZ)" --argjson cpus "$(nproc)" \
  --arg data_dir "$data_dir" --arg fs "${fs:-unknown}" --argjson seconds "$seconds" \
  --argjson server_core "$server_core" --argjson client_core "$client_core" \
  --argjson i128 "$iperf_128k" --argjson i1 "$iperf_1k" \
  --arg engine "$engine" --argjson seq "$seq_json" --argjson sync "$sync_json" \
  --argjson probe "$probe_json" '
  {host: {kernel: $kernel, cpus: $cpus, date: $date, data_dir: $data_dir, file_system: $fs},
   seconds_each: $seconds,
   iperf3: {server_core: $server_core, client_core: $client_core,
            write_128k_mb_per_s: $i128, write_1k_mb_per_s: $i1},
   fio: {ioengine: $engine, iodepth: 1, seq_write: $seq, fdatasync: $sync},
   disk_probe: $probe}'
