#!/usr/bin/env bash
# The systemd unit in docs/operations.md parses: it is taken from between
# <!-- systemd-unit:begin ...--> and <!-- systemd-unit:end --> (the ```ini
# fence) and given to `systemd-analyze verify`, which must exit 0 and print
# nothing (it only warns, with exit 0, about unknown keys and bad values).
#
#   systemd_unit_test.sh <operations.md> <gravity-bridge binary>
#
# verify wants ExecStart's binary to exist, so the unit's documented
# /usr/local/bin/gravity-bridge is replaced by the one just built.
set -euo pipefail

doc="$1"
binary="$2"
documented=/usr/local/bin/gravity-bridge

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not found: install the Debian package systemd (bash scripts/setup.sh)" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/unit-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
unit="$work/gravity-bridge.service"

awk '/<!-- systemd-unit:begin/ {inblock=1; next}
     /<!-- systemd-unit:end/ {inblock=0}
     inblock && /^```/ {infence=!infence; next}
     inblock && infence {print}' "$doc" >"$unit"

if [[ ! -s "$unit" ]]; then
  echo "$doc: no \`\`\`ini unit between <!-- systemd-unit:begin --> and <!-- systemd-unit:end -->" >&2
  exit 1
fi
if ! grep -q "^ExecStart=$documented " "$unit"; then
  echo "$doc: the unit's ExecStart does not start with $documented (this test replaces that path)" >&2
  exit 1
fi
sed -i "s|^ExecStart=$documented |ExecStart=$binary |" "$unit"

status=0
output="$(systemd-analyze verify "$unit" 2>&1)" || status=$?
if [[ "$status" -ne 0 || -n "$output" ]]; then
  echo "systemd-analyze verify: exit $status" >&2
  printf '%s\n' "$output" >&2
  echo "--- the unit as tested:" >&2
  cat "$unit" >&2
  exit 1
fi
echo "ok: the unit in $doc passes systemd-analyze verify ($(grep -c . "$unit") lines)"
