#!/usr/bin/env bash
# What TLS costs a client listener: librdkafka's own benchmark tool,
# rdkafka_performance, produces COUNT 1 KiB records (acks=1) to a
# one-partition topic and consumes them back, against a fresh broker per
# way: PLAINTEXT, SSL, SASL_SSL with SCRAM-SHA-512, and THREE (the client
# on PLAINTEXT, with an SSL and a SASL_SSL listener beside it on the same
# broker: what several listeners cost one of them). The broker is
# pinned to core 0 and the tool to core 1; the ways alternate within each
# round. Prints produce and consume MB/s per way and each other way's ratio
# to PLAINTEXT in the same round.
#
#   tuning/tls-cost.sh [--rounds N] [--count N]
#
# Release binaries first: cargo build --release -p shardlog. The tool is
# built from the librdkafka the rdkafka crate bundles (by
# tests/clients/librdkafka-tests.sh, with OpenSSL), the certificates with
# openssl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=$root/target/release port=19092 data_parent=/var/tmp
rounds=3 count=1000000 broker_core=0 tool_core=1
log() { echo "[$(date +%T)] $*" >&2; }
# shellcheck source=tuning/bench-lib.sh
. "$here/bench-lib.sh"
parse_rounds_count "$@"
trap shardlog_stop EXIT
perf=$(rdkafka_perf_tool)

out=$(mktemp -d /var/tmp/tls-cost-XXXXXX)
# A CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=tls-cost CA" -keyout "$out/ca.key" -out "$out/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=127.0.0.1" -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$out/ext.cnf"
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
  -CAcreateserial -days 2 -extfile "$out/ext.cnf" -out "$out/server.crt" 2>/dev/null
cat "$out/server.key" "$out/server.crt" >"$out/server.pem"

common=(--override shardlog.metrics.listen= --override num.partitions=1)
tls=(--override ssl.keystore.type=PEM --override "ssl.keystore.location=$out/server.pem")

# one WAY: starts the broker for WAY, produces and consumes; prints
# "produce_mbs consume_mbs".
one() {
  local way=$1 client=()
  case $way in
    PLAINTEXT) shardlog_start "$broker_core" "$out/$way.log" "${common[@]}" ;;
    SSL)
      shardlog_start "$broker_core" "$out/$way.log" "${common[@]}" "${tls[@]}" \
        --override listener.security.protocol.map=PLAINTEXT:SSL
      client=(-X security.protocol=SSL -X "ssl.ca.location=$out/ca.pem") ;;
    SASL_SSL)
      bench_format_args=(--add-scram 'SCRAM-SHA-512=[name=bench,password=bench-secret]')
      shardlog_start "$broker_core" "$out/$way.log" "${common[@]}" "${tls[@]}" \
        --override listener.security.protocol.map=PLAINTEXT:SASL_SSL \
        --override sasl.enabled.mechanisms=SCRAM-SHA-512
      bench_format_args=()
      client=(-X security.protocol=SASL_SSL -X "ssl.ca.location=$out/ca.pem"
        -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=bench -X sasl.password=bench-secret) ;;
    THREE)
      shardlog_start "$broker_core" "$out/$way.log" "${common[@]}" "${tls[@]}" \
        --override "listeners=PLAINTEXT://127.0.0.1:$port,SSL://127.0.0.1:$((port + 10)),SASL_SSL://127.0.0.1:$((port + 20))" \
        --override sasl.enabled.mechanisms=SCRAM-SHA-512 ;;
  esac
  perf_produce_consume "$out" "$way" "${client[@]}"
}

for r in $(seq "$rounds"); do
  declare -A res=()
  for way in PLAINTEXT SSL SASL_SSL THREE; do
    res[$way]=$(one "$way")
  done
  read -r pp pc <<<"${res[PLAINTEXT]}"
  for way in PLAINTEXT SSL SASL_SSL THREE; do
    read -r p c <<<"${res[$way]}"
    awk -v r="$r" -v w="$way" -v p="$p" -v pp="$pp" -v c="$c" -v pc="$pc" 'BEGIN {
      printf "round %s %-9s produce %5d MB/s (%.2fx)  consume %5d MB/s (%.2fx)\n", r, w, p, p / pp, c, c / pc }'
  done
done

# Handshakes per second.
shardlog_start "$broker_core" "$out/handshakes.log" "${common[@]}" "${tls[@]}" \
  --override listener.security.protocol.map=PLAINTEXT:SSL
ticks() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }
before=$(ticks)
result=$(taskset -c "$tool_core" "$bin/examples/tls-handshakes" "127.0.0.1:$port" "$out/ca.pem" 10 4)
after=$(ticks)
shardlog_stop
python3 - "$result" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
print(f"handshakes: {r['per_second']:.0f}/s over {r['seconds']} s ({r['failures']} failures); "
      f"broker CPU {cpu:.1f} s = {r['handshakes'] / max(cpu, 0.01):.0f} handshakes per broker core-second")
PY
rm -rf "$out"
