# Shared by the benchmark scripts (source it; it defines functions only).
# Uses $script (the caller's name, for messages) and $timeout (seconds).

# bench_binaries BIN: sets server_bin and bridge_bin from a bazel-bin folder
# (default: the workspace's bazel-bin) and checks they were built.
bench_binaries() {
  local repo bin="$1"
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  [[ -n "$bin" ]] || bin="$repo/bazel-bin"
  server_bin="$bin/examples/streaming/streaming-server"
  bridge_bin="$bin/bridge/gravity-bridge"
  local b
  for b in "$server_bin" "$bridge_bin"; do
    if [[ ! -x "$b" ]]; then
      echo "$script: $b not found; build it first (see the top of this script)" >&2
      exit 2
    fi
  done
}

# stop PID: TERM, a bounded wait, then KILL.
stop() {
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "$script: pid $pid ignored SIGTERM for 5 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# wait_for_line FILE REGEX PID WHAT: prints the first capture group of REGEX
# once it shows up in FILE; fails when PID exits first or after $timeout s.
wait_for_line() {
  local file="$1" regex="$2" pid="$3" what="$4" line
  for _ in $(seq $((timeout * 10))); do
    if [[ -s "$file" ]] && line=$(grep -m1 -E "$regex" "$file"); then
      [[ "$line" =~ $regex ]] && { echo "${BASH_REMATCH[1]}"; return 0; }
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$script: $what exited:" >&2
      cat "$file" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$script: $what did not print its address within ${timeout}s" >&2
  return 1
}
