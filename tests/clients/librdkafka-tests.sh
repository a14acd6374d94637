#!/usr/bin/env bash
# Builds librdkafka's own test runner (its tests/test-runner, with the
# library it links) from the librdkafka source the rdkafka crate bundles
# (rdkafka-sys, the version Cargo.lock pins) into target/librdkafka-tests,
# and prints the directory holding test-runner. A finished build of the
# same source is reused. Used by tests/librdkafka_admin.rs.
#
#   tests/clients/librdkafka-tests.sh [OUT_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-${CARGO_TARGET_DIR:-$root/target}/librdkafka-tests}
manifest=$(cd "$root" && cargo metadata --format-version 1 --locked |
  python3 -c 'import json, sys
m = json.load(sys.stdin)
print(next(p["manifest_path"] for p in m["packages"] if p["name"] == "rdkafka-sys"))')
src=$(dirname "$manifest")/librdkafka
[ -f "$src/tests/0081-admin.c" ] || { echo "no librdkafka tests in $src" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
# With OpenSSL (libssl-dev) where present: 0081's SCRAM subtests salt
# passwords with it.
built_from="$src with-ssl"
if [ -x "$out/tests/test-runner" ] && [ "$(cat "$out/.built-from" 2>/dev/null)" = "$built_from" ]; then
  echo "$out/tests"
  exit 0
fi
rm -rf "$out"
mkdir -p "$out"
cp -r "$src/." "$out/"
cd "$out"
jobs=$(nproc)
if ! ./configure --disable-gssapi --disable-curl --disable-zstd \
    >shardlog-configure.txt 2>&1; then
  tail -30 shardlog-configure.txt >&2
  exit 1
fi
if ! { make -j"$jobs" -C src lib && make -j"$jobs" -C src-cpp lib &&
    make -j"$jobs" -C tests test-runner; } >shardlog-make.txt 2>&1; then
  tail -40 shardlog-make.txt >&2
  exit 1
fi
echo "$built_from" >.built-from
echo "$out/tests"
