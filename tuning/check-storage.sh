#!/usr/bin/env bash
# Read-only checks of what the shardlog storage engine needs from a host.
# Changes nothing. Usage: tuning/check-storage.sh [DATA_DIR]   (default ./data)
# Each line: STATUS  item: current (recommended)
set -u
data_dir=${1:-./data}
worst=0
report() { # status item current recommended
  printf '%-5s %s: %s (recommended: %s)\n' "$1" "$2" "$3" "$4"
  case $1 in WARN) [ $worst -lt 1 ] && worst=1 ;; FAIL) worst=2 ;; esac
}

# io_uring: 0 = enabled for all, 1 = privileged only, 2 = disabled.
if [ -r /proc/sys/kernel/io_uring_disabled ]; then
  v=$(cat /proc/sys/kernel/io_uring_disabled)
  case $v in
    0) report OK io_uring "kernel.io_uring_disabled=0" "0" ;;
    1) if [ "$(id -u)" = 0 ]; then report OK io_uring "kernel.io_uring_disabled=1, running as root" "0"
       else report FAIL io_uring "kernel.io_uring_disabled=1 and not root" "0"; fi ;;
    *) report FAIL io_uring "kernel.io_uring_disabled=$v" "0" ;;
  esac
else
  report OK io_uring "no io_uring_disabled knob (older kernel: enabled)" "0"
fi

# glommio registers its I/O memory with io_uring: it needs locked memory,
# or CAP_IPC_LOCK (root has it).
memlock=$(ulimit -l)
if [ "$(id -u)" = 0 ]; then
  report OK memlock "RLIMIT_MEMLOCK=${memlock} KiB, root (CAP_IPC_LOCK)" ">= 3 x io_memory x shards, or CAP_IPC_LOCK"
elif [ "$memlock" = unlimited ] || [ "$memlock" -ge 524288 ]; then
  report OK memlock "RLIMIT_MEMLOCK=${memlock} KiB" ">= 3 x io_memory x shards"
else
  report WARN memlock "RLIMIT_MEMLOCK=${memlock} KiB, not root" ">= 3 x io_memory x shards (raise in limits.conf or systemd LimitMEMLOCK)"
fi

# The data directory must support O_DIRECT (tmpfs does not).
mkdir -p "$data_dir" 2>/dev/null
fstype=$(stat -f -c %T "$data_dir" 2>/dev/null || echo unknown)
probe="$data_dir/.odirect-check.$$"
if dd if=/dev/zero of="$probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
  report OK o_direct "$data_dir on $fstype accepts O_DIRECT writes" "O_DIRECT-capable fs (xfs, ext4)"
else
  report FAIL o_direct "$data_dir on $fstype refuses O_DIRECT" "O_DIRECT-capable fs (xfs, ext4)"
fi
rm -f "$probe"

# Open files: every segment keeps its file open.
nofile=$(ulimit -n)
if [ "$nofile" = unlimited ] || [ "$nofile" -ge 65536 ]; then
  report OK nofile "ulimit -n ${nofile}" ">= 65536"
else
  report WARN nofile "ulimit -n ${nofile}" ">= 65536 (each segment holds a descriptor)"
fi
exit $worst
