#!/usr/bin/env bash
# Installs the non-Rust Kafka clients that the real-client tests drive
# (tests/clients_*.rs). Idempotent; when everything is already in place it
# returns in well under a second without touching the network.
#
#   tests/clients/install.sh [PREFIX]
#
# PREFIX (default: $SHARDLOG_CLIENT_ENV, else ${CARGO_TARGET_DIR:-target}/client-env)
# receives:
#   venv/             a Python venv: kafka-python, confluent-kafka (bundled
#                     recent librdkafka), aiokafka, all pinned
#   node/node_modules kafkajs, pinned
#   installed         a stamp: this script's hash once everything succeeded
# From Debian's packages (system-wide): kcat and python3-confluent-kafka
# (librdkafka 2.0.2, for /usr/bin/python3), python3-kafka (kafka-python
# 2.0.2), and python3-venv / nodejs / npm where missing; for the metrics
# tests (tests/metrics.rs), prometheus (the server and promtool) and
# chromium (headless, renders the status page).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
prefix="${1:-${SHARDLOG_CLIENT_ENV:-${CARGO_TARGET_DIR:-$repo/target}/client-env}}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

# Pinned versions (checked against the registries when pinned).
KAFKA_PYTHON=3.0.12
CONFLUENT_KAFKA=2.16.1
AIOKAFKA=0.14.0
KAFKAJS=2.2.4

# The Python that builds the venv: python3 on PATH (here a pyenv 3.11).
python="${SHARDLOG_CLIENT_PYTHON:-$(command -v python3 || true)}"

stamp="$prefix/installed"
want_stamp="$(cat "$0" | sha256sum | cut -d' ' -f1) $python"

log() { echo "install.sh: $*" >&2; }

system_ready() {
  command -v kcat >/dev/null &&
    command -v promtool >/dev/null &&
    command -v prometheus >/dev/null &&
    command -v chromium >/dev/null &&
    command -v node >/dev/null &&
    command -v npm >/dev/null &&
    [ -x /usr/bin/python3 ] &&
    dpkg-query -W -f='${Status}' python3-confluent-kafka 2>/dev/null | grep -q 'ok installed' &&
    dpkg-query -W -f='${Status}' python3-kafka 2>/dev/null | grep -q 'ok installed'
}

# Fast path: a previous run finished with this very script and Python, and
# nothing it put in place has gone.
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] &&
  [ -x "$prefix/venv/bin/python" ] &&
  [ -f "$prefix/node/node_modules/kafkajs/package.json" ] &&
  system_ready; then
  exit 0
fi
rm -f "$stamp"
start=$(date +%s)

# --- Debian packages -------------------------------------------------------
apt_pkgs=()
command -v kcat >/dev/null || apt_pkgs+=(kcat)
command -v promtool >/dev/null && command -v prometheus >/dev/null || apt_pkgs+=(prometheus)
command -v chromium >/dev/null || apt_pkgs+=(chromium)
for p in python3-confluent-kafka python3-kafka; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || apt_pkgs+=("$p")
done
if ! command -v node >/dev/null; then
  apt_pkgs+=(nodejs npm)
elif ! command -v npm >/dev/null; then
  apt_pkgs+=(npm)
fi
if [ -z "$python" ]; then
  apt_pkgs+=(python3 python3-venv python3-pip)
  python=/usr/bin/python3
elif ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  # Debian's python3 keeps venv's ensurepip in a separate package.
  apt_pkgs+=(python3-venv python3-pip)
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      log "need root (or sudo) to install: ${apt_pkgs[*]}"
      exit 1
    }
    sudo=(sudo -n)
  fi
  log "apt-get install ${apt_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi
want_stamp="$(cat "$0" | sha256sum | cut -d' ' -f1) $python"

# --- Python venv from PyPI -------------------------------------------------
venv="$prefix/venv"
pins=("kafka-python==$KAFKA_PYTHON" "confluent-kafka==$CONFLUENT_KAFKA" "aiokafka==$AIOKAFKA")
if ! "$venv/bin/python" - "${pins[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    assert version(name) == want, pin
PY
then
  log "python venv $venv (${pins[*]})"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input "${pins[@]}"
fi

# --- kafkajs from npm ------------------------------------------------------
node_dir="$prefix/node"
if ! grep -q "\"version\": \"$KAFKAJS\"" "$node_dir/node_modules/kafkajs/package.json" 2>/dev/null; then
  log "npm install kafkajs@$KAFKAJS in $node_dir"
  mkdir -p "$node_dir"
  [ -f "$node_dir/package.json" ] || echo '{"name": "shardlog-test-clients", "private": true}' >"$node_dir/package.json"
  (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error --save-exact "kafkajs@$KAFKAJS" >/dev/null)
fi

# --- Check that every client loads -----------------------------------------
"$venv/bin/python" -c 'import kafka, confluent_kafka, aiokafka'
/usr/bin/python3 -c 'import confluent_kafka, kafka'
NODE_PATH="$node_dir/node_modules" node -e 'require("kafkajs")'
kcat -V >/dev/null

echo "$want_stamp" >"$stamp"
log "clients ready in $prefix ($(($(date +%s) - start)) s)"
