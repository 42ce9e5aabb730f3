#!/usr/bin/env bash
# Fails when a credential the test suites used shows up in what they logged.
# Every token, cookie and access_token value of the suites holds the marker
# "gv5ecret" (tests/examples/example_server.h, tests/e2e/harness.mjs, ...), so
# one grep over every log line finds any that leaked: the bridge's and the
# servers' logs (their stderr is in the test logs), access logs, the e2e
# tests' output.
#
#   tests/lint/no_secrets_in_logs.sh PATH...   # files or directories of logs
#
# scripts/test.sh runs it last, over Bazel's test logs of both passes and
# ctest's. Prints "secrets: N log files, M lines, K with a credential".
set -uo pipefail
marker="gv5ecret"
files=0
lines=0
leaks=0
while IFS= read -r -d '' file; do
  files=$((files + 1))
  lines=$((lines + $(wc -l <"$file")))
  # The hit is shown with the marker masked, so this output holds none.
  while IFS= read -r hit; do
    leaks=$((leaks + 1))
    ((leaks <= 20)) && echo "credential in a log: $file: ${hit//$marker/********}" | cut -c1-300
  done < <(grep -a -n -F "$marker" "$file")
done < <(find "$@" -type f \( -name '*.log' -o -name '*.txt' -o -name 'LastTest*' \) -print0 2>/dev/null)
echo "secrets: $files log files, $lines lines, $leaks with a credential"
((files > 0 && leaks == 0))
