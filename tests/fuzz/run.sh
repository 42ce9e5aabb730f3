#!/usr/bin/env bash
# Runs each libFuzzer target built by tests/fuzz/build.sh for a while:
#
#   bash tests/fuzz/run.sh OUTDIR SECONDS_PER_TARGET [TARGET...]
#
# Each target starts from a copy of its committed seeds (tests/fuzz/corpus/
# <target>/, never grown by a run) in OUTDIR/run/<target>/, with
# -max_total_time=SECONDS, its dictionary (tests/fuzz/<target>.dict) if any,
# ASan leak checks and UBSan traps. A crash, leak, undefined behaviour,
# broken invariant, timeout (-timeout, GRAVITY_FUZZ_TIMEOUT, 60 s) or
# out-of-memory fails the target; its input is left in OUTDIR/run/<target>/
# (crash-*, leak-*, timeout-*, oom-*) and its log in OUTDIR/run/<target>.log.
#
# Prints one line per target ("PASS router_fuzz: ..." or "FAIL ...") and then
# "fuzz: N passed, M failed"; exits non-zero when any failed.
set -uo pipefail
out="${1:?usage: tests/fuzz/run.sh OUTDIR SECONDS_PER_TARGET [TARGET...]}"
seconds="${2:?usage: tests/fuzz/run.sh OUTDIR SECONDS_PER_TARGET [TARGET...]}"
shift 2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
targets=("$@")
((${#targets[@]} > 0)) || targets=(router_fuzz sse_fuzz headers_fuzz http2_fuzz jwt_fuzz)

passed=0
failed=0
results=()
for target in "${targets[@]}"; do
  work="$out/run/$target"
  log="$out/run/$target.log"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  if [[ -d "$here/corpus/$target" ]]; then cp "$here/corpus/$target/"* "$work/corpus/" 2>/dev/null; fi
  seeds="$(find "$work/corpus" -type f | wc -l)"
  args=(-max_total_time="$seconds" -timeout="${GRAVITY_FUZZ_TIMEOUT:-60}" -rss_limit_mb=4096
    -print_final_stats=1 -artifact_prefix="$work/")
  [[ -f "$here/$target.dict" ]] && args+=(-dict="$here/$target.dict")
  if [[ ! -x "$out/$target" ]]; then
    echo "FAIL $target: $out/$target not built (tests/fuzz/build.sh $out)"
    results+=("FAIL $target: not built")
    failed=$((failed + 1))
    continue
  fi
  echo "---- $target: ${seconds}s from $seeds seeds"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$out/$target" "${args[@]}" "$work/corpus" >"$log" 2>&1
  rc=$?
  # The last status line: "#123 DONE cov: 700 ft: 1800 corp: 200/12Kb ...".
  stats="$(grep -E '^#[0-9]+' "$log" | tail -n 1 | tr -s ' \t' ' ')"
  runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  corpus="$(find "$work/corpus" -type f | wc -l)"
  artifacts="$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)"
  summary="$target: ${runs:-?} runs, corpus $seeds -> $corpus files; $stats"
  if [[ "$rc" -eq 0 && "$artifacts" -eq 0 ]]; then
    results+=("PASS $summary")
    passed=$((passed + 1))
  else
    # What libFuzzer, ASan or UBSan said, and where the input is.
    grep -E 'ERROR:|SUMMARY:|runtime error|invariant broken|sse_fuzz:|Test unit written' "$log" | head -n 20
    results+=("FAIL $summary (exit $rc; input and log in $work, $log)")
    failed=$((failed + 1))
  fi
  echo "${results[-1]}"
done
echo
printf '%s\n' "${results[@]}"
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
