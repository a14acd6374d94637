#!/usr/bin/env bash
# Brings the host settings tuning/check.sh reports as WARN or FAIL to their
# recommended values.
#
# Usage: tuning/tune.sh [--dry-run] [--data-dir DIR] [--cores LIST]
#   --dry-run       print the commands, run nothing (any user)
#   --data-dir DIR  the broker's data directory (default ./data)
#   --cores LIST    the shard cores, as given to the broker (default: every
#                   core this process may use); NIC IRQs are moved off them
#
# Without --dry-run it runs the commands as root, asks no questions, and
# prints each one ("+ command") before running it. Changes made with sysctl,
# /sys and /proc last until reboot; see tuning/README.md to persist them.
#
# The --dry-run output is a shell script: for each item that is not OK a
# "# item (SEVERITY): current -> recommended" comment, the commands, and
# "# advice: ..." lines for what no command can do; OK and INFO items get
# one comment line.
# Exit status: 0 done (or nothing to do), 1 a command failed, 2 not root
# without --dry-run, 3 bad arguments.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tuning/lib.sh
. "$here/lib.sh"

usage() { sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-3}"; }

data_dir="" cores="" dry=0
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry=1; shift ;;
    --data-dir) [ $# -ge 2 ] || usage; data_dir=$2; shift 2 ;;
    --data-dir=*) data_dir=${1#*=}; shift ;;
    --cores) [ $# -ge 2 ] || usage; cores=$2; shift 2 ;;
    --cores=*) cores=${1#*=}; shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
init_context "$data_dir" "$cores" || exit 3
if [ $dry = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "tune.sh: applying changes needs root; use --dry-run to see them" >&2
  exit 2
fi

echo "# shardlog host tuning$([ $dry = 1 ] && echo ' (dry run)'): data dir $DATA_DIR, shard cores $(join_commas "$SHARD_CORES")"
failed=0
sysctl_changed=0
for item in "${ITEMS[@]}"; do
  run_item "$item"
  case $SEV in
    OK | INFO)
      echo "# $item: $SEV, nothing to do"
      continue
      ;;
  esac
  echo "# $item ($SEV): $CUR -> $REC${NOTE:+ ($NOTE)}"
  [ ${#FIXES[@]} = 0 ] && [ ${#ADVICE[@]} = 0 ] && echo "# advice: no command can fix this; see tuning/README.md"
  for cmd in "${FIXES[@]}"; do
    case $cmd in sysctl*) sysctl_changed=1 ;; esac
    if [ $dry = 1 ]; then
      echo "$cmd"
    else
      echo "+ $cmd"
      if ! bash -c "$cmd"; then
        echo "# failed: $cmd" >&2
        failed=1
      fi
    fi
  done
  for line in "${ADVICE[@]}"; do echo "# advice: $line"; done
done
if [ $sysctl_changed = 1 ]; then
  echo "# advice: sysctl -w lasts until reboot; put the same keys in /etc/sysctl.d/90-shardlog.conf to keep them"
fi
exit $failed
