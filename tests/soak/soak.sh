#!/usr/bin/env bash
# Soak: gravity-bridge in front of streaming-server under S streams at once
# with churn (loadgen's soak mode: every stream asks for 1..30 events 200 ms
# apart; one in four is closed by the client mid-stream; each finished stream
# is replaced at once) for a while. Passes when
#   - every stream delivered seq 1..N in order, once, and ended with code 0
#     (or was closed by the client after an in-order prefix);
#   - the bridge's VmRSS at the end is within --rss_slack (10 %) of its VmRSS
#     after the warm-up (each the median of three samples 1 s apart);
#   - gravity_bridge_active_streams is back to 0 within 10 s of the end;
#   - the bridge exits cleanly on SIGTERM and wrote no sanitizer report
#     (AddressSanitizer, LeakSanitizer, UBSan "runtime error") to its stderr.
#
# CI runs the 60-second form as a Bazel test (tests/soak/BUILD), plain and
# under --config=asan. The long form, for docs/reliability.md's figures:
#   bazel build -c opt --symlink_prefix=/ //bridge:gravity-bridge \
#     //examples/streaming:streaming-server //bench:loadgen
#   B="$(bazel info -c opt bazel-bin)"
#   tests/soak/soak.sh --bridge=$B/bridge/gravity-bridge \
#     --server=$B/examples/streaming/streaming-server --loadgen=$B/bench/loadgen \
#     --streams=2000 --seconds=600 --warmup=60
# (and the same with --config=asan binaries). The last line is
#   SOAK PASS|FAIL streams=.. seconds=.. opened=.. events=.. rss_warm_kib=.. rss_end_kib=..
set -uo pipefail

script=soak.sh
bridge_bin="" server_bin="" loadgen_bin=""
streams=2000
seconds=60
warmup=20
rss_slack=10
count=30
interval_ms=200
for arg in "$@"; do
  case "$arg" in
    --bridge=*) bridge_bin="${arg#*=}" ;;
    --server=*) server_bin="${arg#*=}" ;;
    --loadgen=*) loadgen_bin="${arg#*=}" ;;
    --streams=*) streams="${arg#*=}" ;;
    --seconds=*) seconds="${arg#*=}" ;;
    --warmup=*) warmup="${arg#*=}" ;;
    --rss_slack=*) rss_slack="${arg#*=}" ;;
    *) echo "$script: unknown argument $arg" >&2; exit 2 ;;
  esac
done
for b in "$bridge_bin" "$server_bin" "$loadgen_bin"; do
  [[ -x "$b" ]] || { echo "$script: need --bridge, --server and --loadgen (executables); got '$b'" >&2; exit 2; }
done
if ((warmup + 10 >= seconds)); then
  echo "$script: --seconds must exceed --warmup by more than 10" >&2
  exit 2
fi

# Two sockets per stream in this process tree, plus the backend's calls.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 3 * streams + 200)); then
  echo "$script: ulimit -n is $(ulimit -n); $streams streams need $((3 * streams + 200))" >&2
  exit 2
fi

work="$(mktemp -d "${TEST_TMPDIR:-/tmp}/soak.XXXXXX")"
server_pid="" bridge_pid="" loadgen_pid="" sampler_pid=""
cleanup() {
  local pid
  for pid in "$sampler_pid" "$loadgen_pid" "$bridge_pid" "$server_pid"; do
    [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null
  done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# first_capture FILE REGEX PID: the first capture group of REGEX once it is
# in FILE; fails when PID exits first or after 60 s.
first_capture() {
  local file="$1" regex="$2" pid="$3" line
  for _ in $(seq 600); do
    if line=$(grep -m1 -E "$regex" "$file" 2>/dev/null) && [[ "$line" =~ $regex ]]; then
      echo "${BASH_REMATCH[1]}"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; return 1; }
    sleep 0.1
  done
  echo "$script: nothing matched '$regex' in $file within 60 s" >&2
  return 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# The median of three samples 1 s apart.
rss_median() {
  local a b c
  a=$(rss_kib "$1"); sleep 1; b=$(rss_kib "$1"); sleep 1; c=$(rss_kib "$1")
  printf '%s\n' "$a" "$b" "$c" | sort -n | sed -n 2p
}
metric() {
  curl -s --max-time 5 "http://127.0.0.1:$bridge_port/metrics" |
    awk -v name="$1" '$1 == name {print $2}'
}

"$server_bin" --listen=127.0.0.1:0 >"$work/server.log" 2>&1 &
server_pid=$!
server_port=$(first_capture "$work/server.log" 'listening on [^ ]*:([0-9]+)' "$server_pid") || exit 1
"$bridge_bin" --listen=127.0.0.1:0 --backend="127.0.0.1:$server_port" \
  --max_streams=$((streams + 1000)) >"$work/bridge.log" 2>&1 &
bridge_pid=$!
bridge_port=$(first_capture "$work/bridge.log" 'listening on http://[^ ]*:([0-9]+)' "$bridge_pid") || exit 1

echo "soak: $streams streams with churn for ${seconds}s (warm-up ${warmup}s); bridge pid $bridge_pid"
"$loadgen_bin" soak --addr="127.0.0.1:$bridge_port" --streams="$streams" --count="$count" \
  --interval_ms="$interval_ms" --duration="$seconds" --timeout=30 >"$work/loadgen.log" 2>&1 &
loadgen_pid=$!

# The RSS trajectory, every 30 s, for the report: flat, or still climbing?
(
  for ((t = 30; t < seconds; t += 30)); do
    sleep 30
    echo "t=${t}s rss_kib=$(rss_kib "$bridge_pid")"
  done
) >"$work/rss.log" 2>/dev/null &
sampler_pid=$!

sleep "$warmup"
rss_warm=$(rss_median "$bridge_pid")
echo "soak: RSS after the warm-up ${rss_warm} KiB"
sleep $((seconds - warmup - 6))
rss_end=$(rss_median "$bridge_pid")
echo "soak: RSS at the end ${rss_end} KiB"
active_at_end=$(metric gravity_bridge_active_streams)

status=0
if ! wait "$loadgen_pid"; then
  echo "soak: FAIL: loadgen reported failures" >&2
  status=1
fi
loadgen_pid=""
cat "$work/loadgen.log"
kill "$sampler_pid" 2>/dev/null
wait "$sampler_pid" 2>/dev/null
echo "soak: RSS every 30 s: $(tr '\n' ' ' <"$work/rss.log")"
result=$(grep '^RESULT' "$work/loadgen.log" | tail -n 1)
[[ -n "$result" ]] || { echo "soak: FAIL: loadgen printed no RESULT" >&2; status=1; }

active=""
for _ in $(seq 100); do
  active=$(metric gravity_bridge_active_streams)
  [[ "$active" == 0 ]] && break
  sleep 0.1
done
if [[ "$active" != 0 ]]; then
  echo "soak: FAIL: gravity_bridge_active_streams is '$active' 10 s after the clients left" >&2
  status=1
fi
echo "soak: active_streams ${active_at_end} at the end of the load, ${active} after"

growth_pct=$(awk -v w="$rss_warm" -v e="$rss_end" 'BEGIN { printf "%.1f", (w > 0 ? 100 * (e - w) / w : 999) }')
echo "soak: RSS ${rss_warm} -> ${rss_end} KiB (${growth_pct} %, bound +${rss_slack} %)"
if ! awk -v g="$growth_pct" -v s="$rss_slack" 'BEGIN { exit !(g <= s) }'; then
  echo "soak: FAIL: RSS grew more than ${rss_slack} % after the warm-up" >&2
  status=1
fi

kill -TERM "$bridge_pid"
bridge_rc=0
for _ in $(seq 300); do kill -0 "$bridge_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$bridge_pid" 2>/dev/null; then
  echo "soak: FAIL: the bridge did not exit within 30 s of SIGTERM" >&2
  status=1
else
  wait "$bridge_pid"
  bridge_rc=$?
fi
bridge_pid=""
if ((bridge_rc != 0)); then
  echo "soak: FAIL: the bridge exited with $bridge_rc" >&2
  status=1
fi
if grep -E -q 'AddressSanitizer|LeakSanitizer|runtime error:' "$work/bridge.log"; then
  echo "soak: FAIL: a sanitizer report:" >&2
  grep -E -A30 'AddressSanitizer|LeakSanitizer|runtime error:' "$work/bridge.log" | head -60 >&2
  status=1
fi

verdict=PASS
((status == 0)) || verdict=FAIL
echo "SOAK $verdict ${result#RESULT mode=soak } rss_warm_kib=$rss_warm rss_end_kib=$rss_end rss_growth_pct=$growth_pct"
exit "$status"
