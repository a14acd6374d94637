#!/usr/bin/env bash
# Stock Apache Kafka beside shardlog, for side-by-side runs and for driving
# shardlog with Kafka's own command-line tools.
#
#   tuning/kafka.sh install [--kafka-version V]
#       Fetches Apache Kafka V (default below) and its dependencies from
#       Maven Central with Maven into the cache, with a log4j2 binding.
#       Idempotent: a finished install is reused.
#   tuning/kafka.sh home [--kafka-version V]
#       Prints the install directory (installs first when missing).
#   tuning/kafka.sh tool NAME [ARGS...]
#       Runs one of Kafka's tools by its script name without the .sh
#       (kafka-topics, kafka-configs, kafka-dump-log, kafka-log-dirs, ...;
#       `tool --list` lists them).
#   tuning/kafka.sh java ARGS...
#       java with Kafka's jars on the class path (a main class, or a .java
#       file in source-file mode, and its arguments).
#   tuning/kafka.sh start --dir DIR [--port P] [--controller-port P]
#                   [--cores LIST] [--heap SIZE] [--set KEY=VALUE ...]
#                   [--host H --node-id N --voters V --cluster-id ID]
#                   [--keep-data] [--no-wait]
#       Formats DIR/data and starts a single-node KRaft broker (combined
#       broker and controller) on 127.0.0.1:P, pinned with taskset to LIST,
#       with a fixed heap; its settings go to DIR/server.properties, its
#       log to DIR/kafka.log, its PID to DIR/kafka.pid. Returns once it
#       answers on P. For one node of a cluster: --host (its listeners'
#       address), --node-id, --voters (controller.quorum.voters) and the
#       --cluster-id every node is formatted with; --keep-data restarts a
#       node on its existing data (no format); --no-wait returns at once
#       (a cluster node starts serving only once a quorum forms).
#   tuning/kafka.sh stop --dir DIR
#       Stops the broker started in DIR (SIGTERM, then SIGKILL after 60 s).
#
# Options for every command:
#   --kafka-version V   Apache Kafka version (default $KAFKA_VERSION_DEFAULT)
#   --kafka-home DIR    use an existing installation (a Kafka distribution's
#                       root with libs/, or a directory made by `install`)
#   --cache DIR         where installs go (default: target/kafka under the
#                       repository, or $SHARDLOG_KAFKA_CACHE)
#
# Java 17 and Maven must be on PATH (.ci/run installs them where missing).
set -euo pipefail

KAFKA_VERSION_DEFAULT=4.1.1
# log4j2 binding for the slf4j 1.7 API Kafka 4 logs through.
LOG4J_VERSION=2.24.3

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

version=$KAFKA_VERSION_DEFAULT
kafka_home=""
cache=${SHARDLOG_KAFKA_CACHE:-$root/target/kafka}

log() { echo "kafka.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# Kafka's script names and the classes behind them (Kafka 4.x).
tool_class() {
  case $1 in
    kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
    kafka-configs) echo kafka.admin.ConfigCommand ;;
    kafka-acls) echo org.apache.kafka.tools.AclCommand ;;
    kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
    kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
    kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
    kafka-log-dirs) echo org.apache.kafka.tools.LogDirsCommand ;;
    kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    kafka-dump-log) echo kafka.tools.DumpLogSegments ;;
    kafka-storage) echo kafka.tools.StorageTool ;;
    kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    kafka-transactions) echo org.apache.kafka.tools.TransactionsCommand ;;
    kafka-leader-election) echo org.apache.kafka.tools.LeaderElectionCommand ;;
    kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
    kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
    kafka-server-start) echo kafka.Kafka ;;
    *) return 1 ;;
  esac
}
TOOLS=(kafka-topics kafka-configs kafka-acls kafka-console-producer kafka-console-consumer
  kafka-consumer-groups kafka-get-offsets kafka-delete-records kafka-log-dirs
  kafka-broker-api-versions kafka-dump-log kafka-storage kafka-metadata-quorum
  kafka-transactions kafka-leader-election kafka-producer-perf-test kafka-consumer-perf-test kafka-server-start)

install_dir() { echo "$cache/kafka-$version"; }

# Writes the Maven project that resolves Kafka's jars.
write_pom() {
  cat >"$1/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.shardlog</groupId>
  <artifactId>kafka-install</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
}

do_install() {
  if [ -n "$kafka_home" ]; then
    [ -d "$kafka_home/libs" ] || die "--kafka-home $kafka_home has no libs/"
    return 0
  fi
  local dir
  dir=$(install_dir)
  [ -f "$dir/.installed" ] && return 0
  # One install at a time (parallel tests ask at once); the loser finds
  # the winner's.
  mkdir -p "$cache"
  exec 9>"$cache/.install.lock"
  flock 9
  if [ -f "$dir/.installed" ]; then
    exec 9>&-
    return 0
  fi
  command -v java >/dev/null || die "java is not on PATH"
  command -v mvn >/dev/null || die "mvn is not on PATH"
  local started=$SECONDS
  rm -rf "$dir"
  mkdir -p "$dir/libs" "$dir/config"
  write_pom "$dir"
  log "fetching Apache Kafka $version from Maven Central into $dir"
  mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dir/libs" >"$dir/mvn.log" 2>&1 ||
    {
      tail -20 "$dir/mvn.log" >&2
      die "mvn could not resolve Kafka $version (log: $dir/mvn.log)"
    }
  # Logging to stderr at WARN for the tools; the broker gets its own file
  # at start.
  cat >"$dir/config/tools-log4j2.properties" <<'EOF'
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
EOF
  echo "$version" >"$dir/.installed"
  exec 9>&-
  log "Kafka $version installed: $(ls "$dir/libs" | wc -l) jars, $((SECONDS - started)) s"
}

home() {
  if [ -n "$kafka_home" ]; then echo "$kafka_home"; else install_dir; fi
}

# java with Kafka's classpath; the first argument is the main class.
kafka_java() {
  local h
  h=$(home)
  local log4j="$h/config/tools-log4j2.properties"
  [ -f "$log4j" ] || log4j="$h/config/tools-log4j2.yaml"
  exec java ${KAFKA_HEAP_OPTS:--Xmx512m} -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$log4j" -cp "$h/libs/*" "$@"
}

run_tool() {
  local name=${1:-}
  [ -n "$name" ] || die "tool: which one? (tool --list)"
  shift
  if [ "$name" = --list ]; then
    printf '%s\n' "${TOOLS[@]}"
    return 0
  fi
  local class
  class=$(tool_class "${name%.sh}") || die "unknown tool $name (tool --list)"
  do_install
  kafka_java "$class" "$@"
}

# The broker settings: Kafka's defaults, plus what an operator sets for a
# single-node benchmark (replication factors of internal topics 1, no
# initial rebalance delay), plus --set overrides last.
write_server_properties() {
  local dir=$1 port=$2 cport=$3 host=$4 node=$5 voters=$6
  shift 6
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$node
controller.quorum.voters=${voters:-$node@$host:$cport}
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$cport
advertised.listeners=PLAINTEXT://$host:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  local kv
  for kv in "$@"; do
    echo "$kv" >>"$dir/server.properties"
  done
}

start() {
  local dir="" port=9092 cport=9093 cores="" heap=1g sets=()
  local host=127.0.0.1 node=1 voters="" cluster_id="" keep=0 wait=1
  while [ $# -gt 0 ]; do
    case $1 in
      --dir) dir=$2; shift 2 ;;
      --host) host=$2; shift 2 ;;
      --node-id) node=$2; shift 2 ;;
      --voters) voters=$2; shift 2 ;;
      --cluster-id) cluster_id=$2; shift 2 ;;
      --keep-data) keep=1; shift ;;
      --no-wait) wait=0; shift ;;
      --port) port=$2; shift 2 ;;
      --controller-port) cport=$2; shift 2 ;;
      --cores) cores=$2; shift 2 ;;
      --heap) heap=$2; shift 2 ;;
      --set) sets+=("$2"); shift 2 ;;
      *) die "start: unknown option $1" ;;
    esac
  done
  [ -n "$dir" ] || die "start: --dir is required"
  do_install
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    die "a broker is already running from $dir (pid $(cat "$dir/kafka.pid"))"
  fi
  [ "$keep" = 1 ] || rm -rf "$dir/data"
  write_server_properties "$dir" "$port" "$cport" "$host" "$node" "$voters" ${sets[@]+"${sets[@]}"}
  local h
  h=$(home)
  cat >"$dir/log4j2.properties" <<EOF
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $dir/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
EOF
  if [ "$keep" = 0 ]; then
    if [ -z "$cluster_id" ]; then
      cluster_id=$(java -cp "$h/libs/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
        kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
      [ -n "$cluster_id" ] || die "kafka-storage random-uuid printed nothing"
    fi
    java -cp "$h/libs/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
      kafka.tools.StorageTool format --config "$dir/server.properties" \
      --cluster-id "$cluster_id" >"$dir/format.log" 2>&1 ||
      {
        cat "$dir/format.log" >&2
        die "formatting $dir/data failed"
      }
  fi
  # The JVM flags of Kafka's own kafka-server-start.sh / kafka-run-class.sh,
  # with a fixed heap (-Xms = -Xmx).
  local jvm=(-Xms"$heap" -Xmx"$heap" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -XX:MaxInlineLevel=15 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$dir/log4j2.properties")
  local pin=()
  [ -n "$cores" ] && pin=(taskset -c "$cores")
  echo "${pin[*]} java ${jvm[*]} -cp $h/libs/* kafka.Kafka $dir/server.properties" >"$dir/command"
  ${pin[@]+"${pin[@]}"} java "${jvm[@]}" -cp "$h/libs/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/kafka.out" 2>&1 &
  echo $! >"$dir/kafka.pid"
  local pid=$!
  if [ "$wait" = 0 ]; then
    log "Kafka node $node starting: pid $pid, $host:$port (not waiting)"
    return 0
  fi
  for _ in $(seq 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -30 "$dir/kafka.out" "$dir/kafka.log" >&2 || true
      die "Kafka exited while starting"
    fi
    if grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null &&
      (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
      log "Kafka $(cat "$h/.installed" 2>/dev/null || echo "($h)") started: pid $pid, $host:$port, cores ${cores:-any}, heap $heap"
      return 0
    fi
    sleep 0.1
  done
  die "Kafka did not start within 60 s (see $dir/kafka.log)"
}

stop() {
  local dir=""
  while [ $# -gt 0 ]; do
    case $1 in
      --dir) dir=$2; shift 2 ;;
      *) die "stop: unknown option $1" ;;
    esac
  done
  [ -n "$dir" ] && [ -f "$dir/kafka.pid" ] || die "stop: no $dir/kafka.pid"
  local pid
  pid=$(cat "$dir/kafka.pid")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 600); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "Kafka (pid $pid) still running after 60 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/kafka.pid"
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: kafka.sh install|home|tool|start|stop [options] (see the header)"
shift
# Common options may come anywhere before the command's own.
rest=()
while [ $# -gt 0 ]; do
  case $1 in
    --kafka-version) version=$2; shift 2 ;;
    --kafka-home) kafka_home=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    *) rest+=("$1"); shift ;;
  esac
done
set -- ${rest[@]+"${rest[@]}"}

case $cmd in
  install) do_install ;;
  home) do_install && home ;;
  tool) run_tool "$@" ;;
  java) do_install && kafka_java "$@" ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  *) die "unknown command $cmd" ;;
esac
