#!/usr/bin/env bash
# The README's test command, and CI's (.ci/run):
#
#   bash scripts/test.sh
#
# Stages, all of them run even when one fails:
#   setup        scripts/setup.sh (Debian and npm packages)
#   bazel        bazel test //...
#   bazel-asan   bazel test --config=asan //...   (skipped with GRAVITY_SKIP_ASAN=1)
#   fuzz-build   tests/fuzz/build.sh: the libFuzzer targets (clang++, ASan + UBSan)
#   fuzz         tests/fuzz/run.sh: each target for GRAVITY_FUZZ_SECONDS (15) from
#                its seeds; one check per target (skipped with GRAVITY_SKIP_FUZZ=1)
#   cmake        configure build/ and build it (-j2)
#   ctest        ctest --output-on-failure in build/
#   secrets      tests/lint/no_secrets_in_logs.sh over every log of the stages
#                above (Bazel's test logs of both passes, ctest's): no
#                credential the suites used was logged (one check)
# then `bazel shutdown`. Each stage prints its wall time. The last line is
# "N passed, M failed": Bazel test targets (both passes), fuzz targets and
# ctest tests, a stage that fails outside of its tests (setup, a build)
# counting as one failure. The exit status is 0 only when nothing failed.
#
# Environment: GRAVITY_SKIP_ASAN=1 skips the ASan/UBSan pass (quick local
# runs); GRAVITY_BUILD_DIR (default build) is the CMake build directory;
# GRAVITY_SKIP_FUZZ=1 skips the fuzzers, GRAVITY_FUZZ_SECONDS (15) is each
# one's run time and GRAVITY_FUZZ_DIR (default <build dir>/fuzz) their build
# directory (kept: the next run only rebuilds what changed).
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

TOTAL_PASSED=0
TOTAL_FAILED=0
STAGE_REPORT=()

strip_ansi() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\r$//'; }

# bazel_counts <log> <exit code>: prints "<passed> <failed>" from Bazel's
#   Executed 2 out of 3 tests: 1 test passes, 1 fails locally and 1 was skipped.
# (targets that fail to build, time out or are skipped count as failed). A
# failure without that line (analysis error, ...) is one failed; exit code 4
# (no test targets) is nothing.
bazel_counts() {
  local log="$1" rc="$2" line total pass fail
  line="$(strip_ansi <"$log" | grep -E '^Executed [0-9]+ out of [0-9]+ tests?:' | tail -n 1)"
  if [[ -z "$line" ]]; then
    if [[ "$rc" -eq 0 || "$rc" -eq 4 ]]; then echo "0 0"; else echo "0 1"; fi
    return
  fi
  total="$(sed -E 's/^Executed [0-9]+ out of ([0-9]+) tests?:.*/\1/' <<<"$line")"
  pass=0
  if [[ "$line" =~ ([0-9]+)\ tests?\ pass ]]; then pass="${BASH_REMATCH[1]}"; fi
  fail=$((total - pass))
  # The tests passed but the command did not (a non-test target failed to build).
  if ((fail == 0)) && [[ "$rc" -ne 0 && "$rc" -ne 4 ]]; then fail=1; fi
  echo "$pass $fail"
}

# ctest_counts <log> <exit code>: prints "<passed> <failed>" from ctest's
#   80% tests passed, 1 tests failed out of 5
# A failure without that line is one failed; "No tests were found" is nothing.
ctest_counts() {
  local log="$1" rc="$2" line total pass fail
  line="$(strip_ansi <"$log" | grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' | tail -n 1)"
  if [[ -z "$line" ]]; then
    if [[ "$rc" -eq 0 ]]; then echo "0 0"; else echo "0 1"; fi
    return
  fi
  [[ "$line" =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]
  fail="${BASH_REMATCH[1]}"
  total="${BASH_REMATCH[2]}"
  pass=$((total - fail))
  # The tests passed but ctest did not (e.g. a test list that failed to load).
  if ((fail == 0)) && [[ "$rc" -ne 0 ]]; then fail=1; fi
  echo "$pass $fail"
}

# fuzz_counts <log> <exit code>: prints "<passed> <failed>" from run.sh's
#   fuzz: 2 passed, 1 failed
# A failure without that line is one failed.
fuzz_counts() {
  local log="$1" rc="$2" line
  line="$(strip_ansi <"$log" | grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)"
  if [[ -z "$line" ]]; then
    if [[ "$rc" -eq 0 ]]; then echo "0 0"; else echo "0 1"; fi
    return
  fi
  [[ "$line" =~ ^fuzz:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]
  local pass="${BASH_REMATCH[1]}" fail="${BASH_REMATCH[2]}"
  if ((fail == 0)) && [[ "$rc" -ne 0 ]]; then fail=1; fi
  echo "$pass $fail"
}

now_us() { echo "${EPOCHREALTIME/./}"; }

format_seconds() {  # microseconds -> "12.3s"
  local us="$1"
  printf '%d.%01ds' $((us / 1000000)) $((us % 1000000 / 100000))
}

# run_stage <name> <log> <command>...: runs the command, its output both shown
# and kept in <log>; sets STAGE_RC and STAGE_TIME.
run_stage() {
  local name="$1" log="$2" start
  shift 2
  printf '\n==== %s: %s\n' "$name" "$*"
  start="$(now_us)"
  "$@" 2>&1 | tee "$log"
  STAGE_RC="${PIPESTATUS[0]}"
  STAGE_TIME="$(format_seconds $(($(now_us) - start)))"
  printf '==== %s: exit %d in %s\n' "$name" "$STAGE_RC" "$STAGE_TIME"
}

# record <name> <passed> <failed> [<note>]
record() {
  local name="$1" pass="$2" fail="$3" note="${4:-}"
  TOTAL_PASSED=$((TOTAL_PASSED + pass))
  TOTAL_FAILED=$((TOTAL_FAILED + fail))
  STAGE_REPORT+=("$(printf '%-14s %8s  %4d passed  %4d failed  %s' \
    "$name" "$STAGE_TIME" "$pass" "$fail" "$note")")
}

# A stage without tests of its own: ok, or one failure.
record_step() {
  local name="$1"
  if [[ "$STAGE_RC" -eq 0 ]]; then
    record "$name" 0 0 "ok"
  else
    record "$name" 0 1 "FAILED (exit $STAGE_RC)"
  fi
}

record_counts() {  # <name> <counts function> <log>
  local name="$1" counts pass fail
  counts="$("$2" "$3" "$STAGE_RC")"
  read -r pass fail <<<"$counts"
  record "$name" "$pass" "$fail" "$([[ "$STAGE_RC" -eq 0 ]] && echo ok || echo "exit $STAGE_RC")"
}

# fuzz_stages <log dir> <build dir>: builds the fuzzers, then runs each one
# briefly (a failed build is one failure; then each target is one check).
fuzz_stages() {
  local logs="$1" out="$2"
  if [[ "${GRAVITY_SKIP_FUZZ:-0}" == 1 ]]; then
    printf '\n==== fuzz: skipped (GRAVITY_SKIP_FUZZ=1)\n'
    STAGE_TIME="-"
    record fuzz 0 0 "skipped"
    return
  fi
  run_stage fuzz-build "$logs/fuzz-build.log" bash tests/fuzz/build.sh "$out"
  record_step fuzz-build
  if [[ "$STAGE_RC" -eq 0 ]]; then
    run_stage fuzz "$logs/fuzz.log" bash tests/fuzz/run.sh "$out" "${GRAVITY_FUZZ_SECONDS:-15}"
    record_counts fuzz fuzz_counts "$logs/fuzz.log"
  fi
}

main() {
  cd "$REPO_ROOT" || return 1
  local logs build_dir
  logs="$(mktemp -d "${TMPDIR:-/tmp}/gravity-test.XXXXXX")"
  GRAVITY_TEST_LOGS="$logs"
  trap 'rm -rf "$GRAVITY_TEST_LOGS"' EXIT
  build_dir="${GRAVITY_BUILD_DIR:-build}"
  local bazel_flags=(--color=no --curses=no --keep_going)

  run_stage setup "$logs/setup.log" bash scripts/setup.sh
  record_step setup

  run_stage bazel "$logs/bazel.log" bazel test "${bazel_flags[@]}" //...
  record_counts bazel bazel_counts "$logs/bazel.log"
  # The ASan pass writes its test logs over these: keep them for the secrets check.
  local testlogs
  testlogs="$(bazel info bazel-testlogs 2>/dev/null)"
  if [[ -d "$testlogs" ]]; then
    mkdir -p "$logs/bazel-testlogs-plain"
    (cd "$testlogs" && find . -name test.log -exec cp --parents {} "$logs/bazel-testlogs-plain/" \;)
  fi

  if [[ "${GRAVITY_SKIP_ASAN:-0}" == 1 ]]; then
    printf '\n==== bazel-asan: skipped (GRAVITY_SKIP_ASAN=1)\n'
    STAGE_TIME="-"
    record bazel-asan 0 0 "skipped"
  else
    run_stage bazel-asan "$logs/bazel-asan.log" bazel test --config=asan "${bazel_flags[@]}" //...
    record_counts bazel-asan bazel_counts "$logs/bazel-asan.log"
  fi

  fuzz_stages "$logs" "${GRAVITY_FUZZ_DIR:-$build_dir/fuzz}"

  run_stage cmake-config "$logs/cmake-config.log" cmake -S . -B "$build_dir"
  record_step cmake-config
  if [[ "$STAGE_RC" -eq 0 ]]; then
    run_stage cmake-build "$logs/cmake-build.log" cmake --build "$build_dir" -j2
    record_step cmake-build
    # Even after a failed build: the tests that did build still run.
    run_stage ctest "$logs/ctest.log" ctest --test-dir "$build_dir" --output-on-failure
    record_counts ctest ctest_counts "$logs/ctest.log"
  fi

  run_stage secrets "$logs/secrets.log" bash tests/lint/no_secrets_in_logs.sh \
    "$logs" ${testlogs:+"$testlogs"} "$build_dir/Testing/Temporary"
  if [[ "$STAGE_RC" -eq 0 ]]; then record secrets 1 0 "no credential in any log"; else record secrets 0 1 "FAILED"; fi

  run_stage bazel-shutdown "$logs/shutdown.log" bazel shutdown

  printf '\n==== summary\n'
  printf '%s\n' "${STAGE_REPORT[@]}"
  echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
  ((TOTAL_FAILED == 0))
}

# Sourcing this file only defines the functions (used to test the parsers).
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
