#!/usr/bin/env bash
# Read-only check of the host settings shardlog cares about: for each item,
# its current value, the recommended one and a severity. Changes nothing
# (the O_DIRECT test writes one 4 KiB file in the data directory and
# deletes it). tuning/README.md explains every item.
#
# Usage: tuning/check.sh [--data-dir DIR] [--cores LIST] [--json]
#   --data-dir DIR  the broker's data directory (default ./data; if it does
#                   not exist yet, its nearest existing parent is tested)
#   --cores LIST    the shard cores, as given to the broker (default: every
#                   core this process may use)
#   --json          one JSON object instead of lines
#
# Text output, one line per item:
#   SEVERITY  item  current | recommended: value [| note]
# then a "# worst: ..." line. Severities: OK, INFO (cannot be judged here),
# WARN, FAIL.
# Exit status: 0 nothing worse than OK/INFO, 1 a WARN, 2 a FAIL,
# 3 bad arguments.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tuning/lib.sh
. "$here/lib.sh"

usage() { sed -n '7,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-3}"; }

data_dir="" cores="" json=0
while [ $# -gt 0 ]; do
  case $1 in
    --data-dir) [ $# -ge 2 ] || usage; data_dir=$2; shift 2 ;;
    --data-dir=*) data_dir=${1#*=}; shift ;;
    --cores) [ $# -ge 2 ] || usage; cores=$2; shift 2 ;;
    --cores=*) cores=${1#*=}; shift ;;
    --json) json=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
init_context "$data_dir" "$cores" || exit 3

worst=0
rank() { case $1 in WARN) echo 1 ;; FAIL) echo 2 ;; *) echo 0 ;; esac; }
names=(OK WARN FAIL)
entries=()
for item in "${ITEMS[@]}"; do
  run_item "$item"
  r=$(rank "$SEV")
  [ "$r" -gt $worst ] && worst=$r
  if [ $json = 1 ]; then
    e="{\"item\":$(json_str "$item"),\"severity\":$(json_str "$SEV"),\"current\":$(json_str "$CUR"),\"recommended\":$(json_str "$REC")"
    [ -n "$NOTE" ] && e="$e,\"note\":$(json_str "$NOTE")"
    entries+=("$e}")
  else
    printf '%-5s %-15s %s | recommended: %s%s\n' "$SEV" "$item" "$CUR" "$REC" "${NOTE:+ | $NOTE}"
  fi
done

if [ $json = 1 ]; then
  cores_json=$(join_commas "$SHARD_CORES")
  printf '{"data_dir":%s,"cores":[%s],"items":[' "$(json_str "$DATA_DIR")" "$cores_json"
  (IFS=,; printf '%s' "${entries[*]}")
  printf '],"worst":"%s","exit_code":%d}\n' "${names[$worst]}" $worst
else
  echo "# worst: ${names[$worst]} (exit $worst); fixes: tuning/tune.sh --dry-run"
fi
exit $worst
