#!/usr/bin/env bash
# Installs a gravity build into a temporary prefix, builds project/ against it
# with find_package(gravity CONFIG), runs it and checks its output.
#
#   consumer_test.sh <cmake> <gravity build dir> <c++ compiler> [<config>]
set -euo pipefail

cmake="$1"
build_dir="$2"
cxx="$3"
config="${4:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/gravity-consumer.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

step() { printf '\n== %s\n' "$*"; }

step "install $build_dir into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" ${config:+--config "$config"} >"$tmp/install.log" ||
  { cat "$tmp/install.log"; exit 1; }
grep -c '^-- Installing' "$tmp/install.log" | sed 's/^/files installed: /'

step "configure the consumer"
"$cmake" -S "$here/project" -B "$tmp/build" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" \
  ${config:+-DCMAKE_BUILD_TYPE="$config"}
# The package must come from the install, not from a build tree or registry.
found="$(sed -n 's/^gravity_DIR:PATH=//p' "$tmp/build/CMakeCache.txt")"
if [[ "$found" != "$prefix/"* ]]; then
  echo "FAIL: gravity_DIR is '$found', expected it under $prefix" >&2
  exit 1
fi

step "build the consumer"
"$cmake" --build "$tmp/build" -j1

step "run the consumer"
output="$("$tmp/build/gravity_consumer")"
printf '%s\n' "$output"
expected='{"message":"Sending ping to consumer","seq":"7"}
1 Sending ping to consumer
2 Sending ping to consumer
status OK
bridge routes 6'
if [[ "$output" != "$expected" ]]; then
  printf 'FAIL: expected\n%s\n' "$expected" >&2
  exit 1
fi
echo "PASS"
