# Shared by tuning/check.sh and tuning/tune.sh: one function per item that
# looks at the host (read-only) and sets
#
#   SEV   OK, WARN, FAIL, or INFO (cannot be judged here, e.g. no cpufreq
#         in a VM)
#   CUR   the current value, as the kernel shows it
#   REC   the recommended value
#   NOTE  optional detail
#   FIXES the commands that would bring the item to the recommended value
#         (only for WARN/FAIL items; may be empty when no command can)
#   ADVICE what a person must do that no command here can (e.g. restart
#         with a new limit)
#
# Nothing here changes the host. Missing /proc or /sys files (containers,
# VMs) make an item INFO, never an error. Meant to be sourced by bash.

# The items, in the order they are reported.
ITEMS=(cores io_uring memlock o_direct mount_times cpu_governor thp thp_defrag swappiness
  irq_affinity disk_scheduler nofile somaxconn tcp_rmem tcp_wmem)

# glommio's I/O memory per shard when it may lock all it wants (the
# broker's default, src/boot.rs), registered with three rings.
IO_MEMORY_PER_SHARD_KIB=8192
IO_RINGS_PER_SHARD=3
NOFILE_MIN=65536
NOFILE_SET=1048576
SOMAXCONN_MIN=1024 # glommio listens with a backlog of 1024; the kernel caps it at somaxconn
SOMAXCONN_SET=4096
TCP_BUF_MAX_MIN=16777216 # 16 MiB
SWAPPINESS_MAX=10
SWAPPINESS_SET=1
LIMITS_FILE=/etc/security/limits.d/90-shardlog.conf

# Expands a CPU list ("0-3,6", "0,0") into sorted unique numbers, one per
# word; returns 1 on a malformed list.
expand_cpu_list() {
  local list=$1 part a b out=()
  local IFS=,
  for part in $list; do
    part=${part// /}
    [ -z "$part" ] && continue
    if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a=$((10#${BASH_REMATCH[1]})) b=$((10#${BASH_REMATCH[2]}))
      [ "$a" -le "$b" ] && [ $((b - a)) -le 4096 ] || return 1
      while [ "$a" -le "$b" ]; do out+=("$a"); a=$((a + 1)); done
    elif [[ $part =~ ^[0-9]+$ ]]; then
      out+=("$((10#$part))")
    else
      return 1
    fi
  done
  [ ${#out[@]} -gt 0 ] || return 1
  printf '%s\n' "${out[@]}" | sort -n -u | tr '\n' ' ' | sed 's/ $//'
}

# "0 1 2" -> "0,1,2"
join_commas() { echo "$1" | tr -s ' ' ','; }

# Words of $1 that are not in $2.
words_minus() {
  local w x out=() keep
  for w in $1; do
    keep=1
    for x in $2; do [ "$w" = "$x" ] && keep=0 && break; done
    [ $keep = 1 ] && out+=("$w")
  done
  echo "${out[*]:-}"
}

# Whether the word lists $1 and $2 share a word.
words_meet() {
  local w x
  for w in $1; do for x in $2; do [ "$w" = "$x" ] && return 0; done; done
  return 1
}

# The first line of a file, or nothing (status 1) if it cannot be read.
read_first() { [ -r "$1" ] && IFS= read -r REPLY <"$1" 2>/dev/null && echo "$REPLY"; }

# Whether this process has capability number $1 in its effective set.
has_cap() {
  local eff
  eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status 2>/dev/null)
  [ -n "$eff" ] && [ $(((0x$eff >> $1) & 1)) = 1 ]
}
CAP_IPC_LOCK=14
CAP_SYS_ADMIN=21

# Where /proc/sys, /proc/irq, /proc/interrupts, /proc/swaps and /sys are
# read from: SHARDLOG_TUNING_ROOT lets tests show the scripts a made-up
# host. /proc/self (limits, capabilities) is always this process's own, and
# the commands printed always name the real paths.
R=${SHARDLOG_TUNING_ROOT:-}

# Sets DATA_DIR, SHARD_CORES (words), ALLOWED_CORES, ONLINE_CORES from
# the command-line values; prints a message and returns 1 on a bad list.
init_context() {
  DATA_DIR=${1:-./data}
  local cores_arg=${2:-}
  local allowed
  allowed=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status 2>/dev/null)
  ALLOWED_CORES=$(expand_cpu_list "${allowed:-0}") || ALLOWED_CORES=0
  ONLINE_CORES=$(expand_cpu_list "$(read_first "$R"/sys/devices/system/cpu/online)") ||
    ONLINE_CORES=$ALLOWED_CORES
  CORES_GIVEN=$cores_arg
  if [ -n "$cores_arg" ]; then
    SHARD_CORES=$(expand_cpu_list "$cores_arg") || {
      echo "bad core list '$cores_arg': expected e.g. 0, 0-3 or 1,3" >&2
      return 1
    }
    # A core may repeat (several shards on it); count shards, not cores.
    local IFS=,
    set -- $cores_arg
    SHARD_COUNT=0
    local part a b
    for part in "$@"; do
      part=${part// /}
      if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
        a=$((10#${BASH_REMATCH[1]})) b=$((10#${BASH_REMATCH[2]}))
        SHARD_COUNT=$((SHARD_COUNT + b - a + 1))
      elif [ -n "$part" ]; then
        SHARD_COUNT=$((SHARD_COUNT + 1))
      fi
    done
  else
    SHARD_CORES=$ALLOWED_CORES
    SHARD_COUNT=$(echo "$SHARD_CORES" | wc -w)
  fi
}

reset_item() { SEV=INFO CUR="" REC="" NOTE="" FIXES=() ADVICE=(); }

# ---------------------------------------------------------------------------
# Items

item_cores() {
  local outside
  outside=$(words_minus "$SHARD_CORES" "$ALLOWED_CORES")
  REC="shard cores within the cores this process may use"
  if [ -z "$CORES_GIVEN" ]; then
    SEV=INFO CUR="no --cores: one shard per allowed core ($(join_commas "$ALLOWED_CORES"))"
  elif [ -n "$outside" ]; then
    SEV=FAIL CUR="--cores $CORES_GIVEN names core(s) $(join_commas "$outside") outside the allowed $(join_commas "$ALLOWED_CORES")"
    NOTE="the broker refuses to start"
    ADVICE=("pick shard cores from $(join_commas "$ALLOWED_CORES") (see taskset / the cgroup cpuset)")
  else
    SEV=OK CUR="$SHARD_COUNT shard(s) on core(s) $(join_commas "$SHARD_CORES"), allowed $(join_commas "$ALLOWED_CORES")"
  fi
}

item_io_uring() {
  local v group
  REC="kernel.io_uring_disabled=0"
  if ! v=$(read_first "$R"/proc/sys/kernel/io_uring_disabled); then
    SEV=OK CUR="no kernel.io_uring_disabled (kernel before 6.6: io_uring enabled)"
  else
    case $v in
      0) SEV=OK CUR="kernel.io_uring_disabled=0" ;;
      1)
        group=$(read_first "$R"/proc/sys/kernel/io_uring_group || echo -1)
        if has_cap $CAP_SYS_ADMIN; then
          SEV=OK CUR="kernel.io_uring_disabled=1, this user has CAP_SYS_ADMIN"
        elif [ "$group" != -1 ] && id -G | tr ' ' '\n' | grep -qx "$group"; then
          SEV=OK CUR="kernel.io_uring_disabled=1, this user is in kernel.io_uring_group=$group"
        else
          SEV=FAIL CUR="kernel.io_uring_disabled=1 and no CAP_SYS_ADMIN"
        fi
        ;;
      *) SEV=FAIL CUR="kernel.io_uring_disabled=$v" ;;
    esac
    [ "$SEV" = OK ] || FIXES=("sysctl -w kernel.io_uring_disabled=0")
  fi
  if [ "$(awk '/^Seccomp:/ {print $2}' /proc/self/status 2>/dev/null)" = 2 ]; then
    NOTE="a seccomp filter is active: container runtimes' default profiles may block io_uring_setup"
  fi
}

item_memlock() {
  local soft need_kib
  soft=$(ulimit -l)
  need_kib=$((IO_MEMORY_PER_SHARD_KIB * IO_RINGS_PER_SHARD * SHARD_COUNT))
  REC=">= $need_kib KiB (3 rings x 8 MiB x $SHARD_COUNT shard(s)) or CAP_IPC_LOCK"
  if has_cap $CAP_IPC_LOCK; then
    SEV=OK CUR="RLIMIT_MEMLOCK=$soft KiB, CAP_IPC_LOCK held"
  elif [ "$soft" = unlimited ] || [ "$soft" -ge "$need_kib" ]; then
    SEV=OK CUR="RLIMIT_MEMLOCK=$soft KiB"
  else
    SEV=WARN CUR="RLIMIT_MEMLOCK=$soft KiB, no CAP_IPC_LOCK"
    NOTE="the broker shrinks io_memory to $((soft / IO_RINGS_PER_SHARD / SHARD_COUNT)) KiB per shard and runs slower"
    FIXES=("printf '* soft memlock unlimited\\n* hard memlock unlimited\\n' > ${LIMITS_FILE%.conf}-memlock.conf")
    ADVICE=("limits.d applies to new login sessions; under systemd set LimitMEMLOCK=infinity"
      "or grant the binary the capability: setcap cap_ipc_lock=ep target/release/shardlog")
  fi
}

# The directory to test: the data dir, or its nearest existing parent
# (the broker creates the data dir; the check must not).
existing_dir() {
  local d=$1
  while [ ! -d "$d" ]; do
    case $d in */*) d=${d%/*}; [ -z "$d" ] && d=/ ;; *) d=. ;; esac
  done
  echo "$d"
}

item_o_direct() {
  local dir fstype probe
  dir=$(existing_dir "$DATA_DIR")
  fstype=$(findmnt -n -o FSTYPE -T "$dir" 2>/dev/null | head -n 1)
  [ -n "$fstype" ] || fstype=$(stat -f -c %T "$dir" 2>/dev/null) || fstype=unknown
  REC="a disk file system with O_DIRECT (ext4, xfs); not tmpfs"
  [ "$dir" = "$DATA_DIR" ] || NOTE="$DATA_DIR does not exist yet; tested $dir"
  if [ ! -w "$dir" ]; then
    SEV=WARN CUR="$dir ($fstype) is not writable by this user: not tested"
    return
  fi
  probe="$dir/.shardlog-odirect-check.$$"
  if dd if=/dev/zero of="$probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
    case $fstype in
      tmpfs | ramfs)
        # Since Linux 6.6 tmpfs accepts O_DIRECT (as a no-op), but the log
        # would live in memory and fdatasync would promise nothing.
        SEV=WARN CUR="$dir on $fstype accepts O_DIRECT, but the data stays in memory"
        ADVICE=("put the data directory on ext4 or xfs (--data-dir)")
        ;;
      *) SEV=OK CUR="$dir on $fstype accepts O_DIRECT writes" ;;
    esac
  else
    SEV=FAIL CUR="$dir on $fstype refuses O_DIRECT writes"
    ADVICE=("put the data directory on ext4 or xfs (--data-dir)")
  fi
  rm -f "$probe"
}

# The data directory's file system should keep file times in memory
# (lazytime): each O_DIRECT write updates the segment's mtime, which
# otherwise takes a journal handle, and that waits while the commit forced
# by an fdatasync in progress runs.
item_mount_times() {
  local dir line target fstype opts tab=()
  dir=$(existing_dir "$DATA_DIR")
  REC="lazytime on the data directory's file system"
  if [ -n "$R" ]; then
    if [ ! -r "$R/proc/self/mountinfo" ]; then
      SEV=INFO CUR="no mount table to read"
      return
    fi
    tab=(--tab-file "$R/proc/self/mountinfo")
  fi
  line=$(findmnt -n -r -o TARGET,FSTYPE,OPTIONS ${tab[@]+"${tab[@]}"} -T "$dir" 2>/dev/null | head -n 1)
  if [ -z "$line" ]; then
    SEV=INFO CUR="the mount holding $dir is not shown"
    return
  fi
  read -r target fstype opts <<<"$line"
  case $fstype in
    ext4 | ext3 | xfs | btrfs | f2fs) ;;
    *)
      SEV=INFO CUR="$dir is on $fstype ($target)"
      return
      ;;
  esac
  if [[ ,$opts, == *,lazytime,* ]]; then
    SEV=OK CUR="$target ($fstype) is mounted with lazytime"
  else
    SEV=WARN CUR="$target ($fstype) is mounted without lazytime"
    FIXES=("mount -o remount,lazytime $target")
    ADVICE=("add lazytime to the options of $target in /etc/fstab so it lasts past a reboot")
    NOTE="each O_DIRECT write updates the segment's mtime; without lazytime that takes a journal handle, which waits behind the commit of any fdatasync in progress (1,000 msg/s, 100 B: publish p99.9 2.4-3.6 ms -> 1.3-1.6 ms on the development VM)"
  fi
}

item_cpu_governor() {
  local c g avail cur=() bad=() missing=0
  REC="performance on the shard cores"
  for c in $SHARD_CORES; do
    if g=$(read_first "$R/sys/devices/system/cpu/cpu$c/cpufreq/scaling_governor"); then
      cur+=("cpu$c=$g")
      [ "$g" = performance ] || bad+=("$c")
    else
      missing=1
    fi
  done
  if [ ${#cur[@]} = 0 ]; then
    SEV=INFO CUR="no cpufreq governor exposed (VM or container: the host sets the frequency)"
    return
  fi
  CUR="${cur[*]}"
  [ $missing = 1 ] && NOTE="some shard cores expose no governor"
  if [ ${#bad[@]} = 0 ]; then
    SEV=OK
    return
  fi
  avail=$(read_first "$R/sys/devices/system/cpu/cpu${bad[0]}/cpufreq/scaling_available_governors" || echo "")
  if [ -n "$avail" ] && ! echo " $avail " | grep -q " performance "; then
    SEV=INFO NOTE="the driver offers no performance governor (available: $avail)"
    return
  fi
  SEV=WARN
  if command -v cpupower >/dev/null; then
    FIXES=("cpupower -c $(join_commas "${bad[*]}") frequency-set -g performance")
  else
    for c in "${bad[@]}"; do
      FIXES+=("echo performance > /sys/devices/system/cpu/cpu$c/cpufreq/scaling_governor")
    done
  fi
}

# The selected word of a sysfs multiple-choice file: "always [madvise] never" -> madvise.
selected() { sed -n 's/.*\[\([^]]*\)\].*/\1/p'; }

item_thp() {
  local f=/sys/kernel/mm/transparent_hugepage/enabled line v
  REC="madvise (or never)"
  if ! line=$(read_first "$R$f"); then
    SEV=INFO CUR="no $f"
    return
  fi
  v=$(echo "$line" | selected)
  CUR="transparent_hugepage/enabled=$v"
  case $v in
    madvise | never) SEV=OK ;;
    *)
      SEV=WARN NOTE="khugepaged and page-fault compaction stall the shards' threads"
      FIXES=("echo madvise > $f")
      ;;
  esac
}

item_thp_defrag() {
  local f=/sys/kernel/mm/transparent_hugepage/defrag line v
  REC="madvise, defer+madvise, defer or never (not always)"
  if ! line=$(read_first "$R$f"); then
    SEV=INFO CUR="no $f"
    return
  fi
  v=$(echo "$line" | selected)
  CUR="transparent_hugepage/defrag=$v"
  case $v in
    always)
      SEV=WARN NOTE="every huge-page fault may compact memory synchronously"
      FIXES=("echo madvise > $f")
      ;;
    *) SEV=OK ;;
  esac
}

item_swappiness() {
  local v swaps
  REC="vm.swappiness <= $SWAPPINESS_MAX ($SWAPPINESS_SET)"
  if ! v=$(read_first "$R"/proc/sys/vm/swappiness); then
    SEV=INFO CUR="no /proc/sys/vm/swappiness"
    return
  fi
  swaps=$(($(wc -l 2>/dev/null <"$R"/proc/swaps || echo 1) - 1))
  if [ "$v" -le $SWAPPINESS_MAX ]; then
    SEV=OK CUR="vm.swappiness=$v"
  elif [ "$swaps" -le 0 ]; then
    SEV=OK CUR="vm.swappiness=$v, no swap active"
    NOTE="nothing can be swapped out now; lower it before enabling swap"
  else
    SEV=WARN CUR="vm.swappiness=$v, $swaps swap device(s) active"
    NOTE="the kernel would rather swap out the broker's cache than drop page cache"
    FIXES=("sysctl -w vm.swappiness=$SWAPPINESS_SET")
  fi
}

# NIC IRQs: for each network interface backed by a device, the MSI(-X)
# vectors of its PCI function (for virtio, of the PCI device above it) or
# its legacy IRQ line; otherwise /proc/interrupts lines naming it.
# Prints "iface irq" pairs.
nic_irqs() {
  local n iface dev d irq found
  for n in "$R"/sys/class/net/*; do
    iface=${n##*/}
    [ -e "$n/device" ] || continue
    dev=$(readlink -f "$n/device" 2>/dev/null) || continue
    case $dev in "$R"/sys/devices/virtual/*) continue ;; esac
    found=0
    for d in "$dev" "${dev%/*}"; do
      if [ -d "$d/msi_irqs" ]; then
        for irq in "$d"/msi_irqs/*; do
          [ -e "$irq" ] && [ -d "$R/proc/irq/${irq##*/}" ] && echo "$iface ${irq##*/}" && found=1
        done
        [ $found = 1 ] && break
      fi
    done
    if [ $found = 0 ] && irq=$(read_first "$dev/irq") && [ "$irq" -gt 0 ] 2>/dev/null; then
      echo "$iface $irq"
      found=1
    fi
    if [ $found = 0 ]; then
      awk -v i="$iface" '$NF ~ i { sub(":", "", $1); if ($1 ~ /^[0-9]+$/) print i, $1 }' \
        "$R"/proc/interrupts 2>/dev/null
    fi
  done
}

item_irq_affinity() {
  local free pairs iface irq aff cur=() bad=() unreadable=0
  free=$(words_minus "$ONLINE_CORES" "$SHARD_CORES")
  REC="NIC IRQs on non-shard cores ($(join_commas "${free:-none}"))"
  pairs=$(nic_irqs)
  if [ -z "$pairs" ]; then
    SEV=INFO CUR="no NIC IRQs visible (container, or virtual interfaces only)"
    return
  fi
  while read -r iface irq; do
    if aff=$(read_first "$R/proc/irq/$irq/smp_affinity_list"); then
      cur+=("$iface:$irq->$aff")
      words_meet "$(expand_cpu_list "$aff")" "$SHARD_CORES" && bad+=("$irq")
    else
      cur+=("$iface:$irq->?")
      unreadable=1
    fi
  done <<<"$pairs"
  CUR="${cur[*]}"
  if [ -z "$free" ]; then
    SEV=INFO NOTE="every online core runs a shard: no core to move the IRQs to"
  elif [ ${#bad[@]} = 0 ]; then
    SEV=$([ $unreadable = 1 ] && echo INFO || echo OK)
  else
    SEV=WARN NOTE="the NIC's interrupts and softirq work land on shard cores"
    for irq in "${bad[@]}"; do
      FIXES+=("echo $(join_commas "$free") > /proc/irq/$irq/smp_affinity_list")
    done
  fi
  if pgrep -x irqbalance >/dev/null 2>&1; then
    NOTE="${NOTE:+$NOTE; }irqbalance is running and may move IRQs back"
    ADVICE=("stop irqbalance, or give it IRQBALANCE_BANNED_CPULIST=$(join_commas "$SHARD_CORES")")
  fi
}

# The block device holding a directory, as its /sys/block/NAME directory
# (the whole disk for a partition), or nothing.
block_dev_of() {
  local dir=$1 dev major minor sys
  # st_dev split as glibc's major()/minor() do (stat's %Hd/%Ld need
  # coreutils 8.29+).
  dev=$(stat -c '%d' "$dir" 2>/dev/null) || return 1
  major=$(((dev >> 8 & 0xfff) | (dev >> 32 & ~0xfff)))
  minor=$(((dev & 0xff) | (dev >> 12 & ~0xff)))
  [ "$major" != 0 ] || return 1
  sys=$(readlink -f "$R/sys/dev/block/$major:$minor" 2>/dev/null) || return 1
  [ -d "$sys" ] || return 1
  [ -e "$sys/partition" ] && sys=${sys%/*}
  echo "$sys"
}

item_disk_scheduler() {
  local dir sys name line v avail rot kind
  dir=$(existing_dir "$DATA_DIR")
  if ! sys=$(block_dev_of "$dir"); then
    SEV=INFO CUR="$dir is not on a block device this host shows (overlay, tmpfs, btrfs, network fs)"
    REC="none for NVMe/virtio, mq-deadline for rotating disks"
    return
  fi
  name=${sys##*/}
  rot=$(read_first "$sys/queue/rotational" || echo 0)
  case $name in
    nvme* | vd* | xvd*) kind=fast ;;
    *) [ "$rot" = 1 ] && kind=rotating || kind=fast ;;
  esac
  if ! line=$(read_first "$sys/queue/scheduler"); then
    SEV=INFO CUR="$name has no queue/scheduler"
    return
  fi
  v=$(echo "$line" | selected)
  [ -z "$v" ] && v=$line
  avail=$(echo "$line" | tr -d '[]' | sed 's/ *$//')
  CUR="$name scheduler=$v (available: $avail)"
  if [ $kind = fast ]; then
    REC="none (mq-deadline is fine) for NVMe/virtio/SSD"
    case $v in none | mq-deadline) SEV=OK ;; *) SEV=WARN ;; esac
    [ $SEV = WARN ] && echo " $avail " | grep -q " none " &&
      FIXES=("echo none > /sys/block/$name/queue/scheduler")
  else
    REC="mq-deadline (or bfq) for a rotating disk"
    case $v in mq-deadline | bfq) SEV=OK ;; *) SEV=WARN ;; esac
    [ $SEV = WARN ] && echo " $avail " | grep -q " mq-deadline " &&
      FIXES=("echo mq-deadline > /sys/block/$name/queue/scheduler")
  fi
  [ $SEV = WARN ] && NOTE="the log writes with O_DIRECT at queue depth <= 4; a heavy scheduler adds CPU and latency"
  return 0
}

item_nofile() {
  local soft hard
  soft=$(ulimit -n) hard=$(ulimit -Hn)
  REC=">= $NOFILE_MIN"
  CUR="ulimit -n $soft (hard $hard)"
  if [ "$soft" = unlimited ] || [ "$soft" -ge $NOFILE_MIN ]; then
    SEV=OK
    return
  fi
  SEV=WARN NOTE="every segment keeps its files open, and every connection is a descriptor"
  FIXES=("printf '* soft nofile $NOFILE_SET\\n* hard nofile $NOFILE_SET\\n' > ${LIMITS_FILE%.conf}-nofile.conf")
  ADVICE=("limits.d applies to new login sessions; under systemd set LimitNOFILE=$NOFILE_SET")
  if [ "$hard" = unlimited ] || [ "$hard" -ge $NOFILE_MIN ]; then
    ADVICE+=("or now, in the shell that starts the broker: ulimit -n $hard")
  fi
}

item_somaxconn() {
  local v
  REC="net.core.somaxconn >= $SOMAXCONN_MIN (glommio's listen backlog)"
  if ! v=$(read_first "$R"/proc/sys/net/core/somaxconn); then
    SEV=INFO CUR="no /proc/sys/net/core/somaxconn"
    return
  fi
  CUR="net.core.somaxconn=$v"
  if [ "$v" -ge $SOMAXCONN_MIN ]; then
    SEV=OK
  else
    SEV=WARN NOTE="connection bursts overflow the accept queue and clients see SYN retries"
    FIXES=("sysctl -w net.core.somaxconn=$SOMAXCONN_SET")
  fi
}

# tcp_rmem / tcp_wmem: the autotuning maximum (what the broker's sockets
# get; it sets no SO_RCVBUF/SO_SNDBUF) and net.core.*mem_max (the cap for
# clients that set their own buffers).
tcp_buffers() {
  local dir=$1 core triple min def max
  REC="net.core.${dir}mem_max and net.ipv4.tcp_${dir}mem max >= $TCP_BUF_MAX_MIN"
  core=$(read_first "$R/proc/sys/net/core/${dir}mem_max") || core=""
  triple=$(read_first "$R/proc/sys/net/ipv4/tcp_${dir}mem") || triple=""
  if [ -z "$core" ] && [ -z "$triple" ]; then
    SEV=INFO CUR="no net.core.${dir}mem_max or net.ipv4.tcp_${dir}mem"
    return
  fi
  read -r min def max <<<"$triple"
  CUR="net.core.${dir}mem_max=${core:-?} net.ipv4.tcp_${dir}mem=${min:-?} ${def:-?} ${max:-?}"
  SEV=OK
  if [ -n "$core" ] && [ "$core" -lt $TCP_BUF_MAX_MIN ]; then
    SEV=WARN FIXES+=("sysctl -w net.core.${dir}mem_max=$TCP_BUF_MAX_MIN")
  fi
  if [ -n "$max" ] && [ "$max" -lt $TCP_BUF_MAX_MIN ]; then
    SEV=WARN FIXES+=("sysctl -w net.ipv4.tcp_${dir}mem='$min $def $TCP_BUF_MAX_MIN'")
  fi
  [ $SEV = WARN ] && NOTE="a small maximum caps one connection's throughput at buffer / RTT"
  return 0
}
item_tcp_rmem() { tcp_buffers r; }
item_tcp_wmem() { tcp_buffers w; }

# Runs one item's function.
run_item() {
  reset_item
  "item_$1"
}

# A JSON string literal.
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  printf '"%s"' "$s"
}
