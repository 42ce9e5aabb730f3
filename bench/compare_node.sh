#!/usr/bin/env bash
# gravity-bridge vs a plain Node.js bridge on @grpc/grpc-js (DESIGN: the C++
# bridge's events/s >= 3x the Node one), same backend, same load.
#
#   bazel build -c opt --symlink_prefix=/ //examples/streaming:streaming-server //bridge:gravity-bridge
#   (cd bench/node_bridge && npm ci)
#   bench/compare_node.sh --bin="$(bazel info -c opt bazel-bin)"
#
# Starts examples/streaming's streaming-server, gravity-bridge and
# bench/node_bridge/bridge.mjs (all on 127.0.0.1:0, reading the addresses they
# print; both bridges in front of the one server), then for each bridge runs a
# small warm-up and one measured round of bench/sse_load.py:
# S streams x /api/streaming/ping?to=bench&count=C&interval_ms=I at once.
# The example server sends at most one message per interval per stream (timers
# of >= 1 ms), so the offered load is at most S * 1000 / I events/s; many
# streams are needed to offer a lot. When both bridges keep up with it they
# deliver the same events/s, and the CPU time each bridge process spent in its
# round (utime + stime from /proc/<pid>/stat, before and after) is what tells
# them apart; and when they do not keep up, the 2 cores are shared by server,
# bridge and load generator, so the events/s of each also depend on the
# others' CPU. The script prints events/s, bridge CPU seconds, events per
# bridge CPU-second, the server's and the load generator's CPU seconds, and
# the ratios C++ / Node.
# Every child is stopped when the script exits (TERM, then KILL after 5 s);
# every wait is bounded by --timeout.
#
# Flags (all optional):
#   --bin=DIR          where examples/streaming/streaming-server and
#                      bridge/gravity-bridge are (default: bazel-bin)
#   --streams=N        concurrent streams per round (default 50)
#   --count=N          messages per stream (default 2000)
#   --interval_ms=N    the Ping interval (default 1; 0 would mean 1000)
#   --rounds=N         measured rounds per bridge, alternating (default 2)
#   --threads=N        gravity-bridge's --threads (default 0: one per core)
#   --order=LIST       bridge order, comma list of cpp,node (default cpp,node)
#   --timeout=SECS     bound of every wait and every round (default 120)
set -euo pipefail

bin=""
streams=50
count=2000
interval_ms=1
rounds=2
threads=0
order="cpp,node"
timeout=120
for arg in "$@"; do
  case "$arg" in
    --bin=*) bin="${arg#*=}" ;;
    --streams=*) streams="${arg#*=}" ;;
    --count=*) count="${arg#*=}" ;;
    --interval_ms=*) interval_ms="${arg#*=}" ;;
    --rounds=*) rounds="${arg#*=}" ;;
    --threads=*) threads="${arg#*=}" ;;
    --order=*) order="${arg#*=}" ;;
    --timeout=*) timeout="${arg#*=}" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_node.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
script=compare_node.sh
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
bench_binaries "$bin"
node_dir="$repo/bench/node_bridge"
command -v node >/dev/null || { echo "compare_node.sh: node not found" >&2; exit 2; }
if [[ ! -d "$node_dir/node_modules/@grpc/grpc-js" ]]; then
  echo "compare_node.sh: run (cd bench/node_bridge && npm ci) first" >&2
  exit 2
fi
if (( $(ulimit -n) < streams * 4 + 256 )); then
  ulimit -n $((streams * 4 + 256)) 2>/dev/null || true
fi

work="$(mktemp -d /tmp/gravity-compare-node.XXXXXX)"
server_pid=""
cpp_pid=""
node_pid=""
load_pid=""

cleanup() {
  stop "$load_pid"
  stop "$node_pid"
  stop "$cpp_pid"
  stop "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


clk_tck=$(getconf CLK_TCK)
cpu_ticks() {  # utime + stime of PID, in clock ticks (fields 14 and 15)
  local stat
  stat=$(<"/proc/$1/stat")
  stat="${stat##*) }"  # drop "pid (comm) ", comm may contain spaces
  awk '{print $12 + $13}' <<<"$stat"
}

"$server_bin" --listen=127.0.0.1:0 --drain=1s >"$work/server.log" 2>&1 &
server_pid=$!
server_address=$(wait_for_line "$work/server.log" 'listening on ([0-9.]+:[0-9]+)' \
                 "$server_pid" streaming-server)

"$bridge_bin" --listen=127.0.0.1:0 --backend="$server_address" --threads="$threads" \
  --drain=1s >"$work/cpp.log" 2>&1 &
cpp_pid=$!
cpp_address=$(wait_for_line "$work/cpp.log" 'listening on http://([0-9.]+:[0-9]+)' \
              "$cpp_pid" gravity-bridge)

node "$node_dir/bridge.mjs" --listen=127.0.0.1:0 --backend="$server_address" \
  >"$work/node.log" 2>&1 &
node_pid=$!
node_address=$(wait_for_line "$work/node.log" 'listening on http://([0-9.]+:[0-9]+)' \
               "$node_pid" node-bridge)

node_version=$(node --version)
grpc_js_version=$(node -p "require('$node_dir/node_modules/@grpc/grpc-js/package.json').version")
echo "streaming-server $server_address (pid $server_pid); gravity-bridge $cpp_address" \
     "(pid $cpp_pid, --threads=$threads) from $bin; node-bridge $node_address (pid $node_pid," \
     "node $node_version, @grpc/grpc-js $grpc_js_version)"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: $0 $*"
echo "load: $streams streams x count=$count interval_ms=$interval_ms" \
     "(offered at most $((streams * 1000 / (interval_ms > 0 ? interval_ms : 1000))) events/s)"

# run_load ADDRESS STREAMS COUNT: sse_load.py in the background (so that a
# signal reaches the traps at once), output in $work/load.out.
run_load() {
  local status=0
  python3 "$repo/bench/sse_load.py" --streams="$2" --expect="$3" --timeout="$timeout" \
    --url="http://$1/api/streaming/ping?to=bench&count=$3&interval_ms=$interval_ms" \
    >"$work/load.out" 2>&1 &
  load_pid=$!
  wait "$load_pid" || status=$?
  load_pid=""
  return "$status"
}

declare -A events_sum=() seconds_sum=() cpu_sum=() server_sum=()
failed=0
IFS=',' read -r -a bridges <<<"$order"
for name in "${bridges[@]}"; do
  case "$name" in cpp|node) ;; *) echo "compare_node.sh: --order: $name?" >&2; exit 2 ;; esac
  events_sum[$name]=0 seconds_sum[$name]=0 cpu_sum[$name]=0 server_sum[$name]=0
  # Warm-up: connections up, JIT warm (Node), not measured.
  if [[ $name == cpp ]]; then address=$cpp_address; else address=$node_address; fi
  if ! run_load "$address" 10 200; then
    echo "compare_node.sh: warm-up through $name FAILED:" >&2
    cat "$work/load.out" >&2
    failed=1
  fi
done

printf '%-5s %5s %9s %8s %10s %9s %13s %10s %10s\n' bridge round events seconds events/s \
  "cpu s" "events/cpu-s" "server s" "client s"
for round in $(seq "$rounds"); do
  for name in "${bridges[@]}"; do
    if [[ $name == cpp ]]; then address=$cpp_address pid=$cpp_pid
    else address=$node_address pid=$node_pid; fi
    sleep 1  # let the previous round's connections close
    cpu0=$(cpu_ticks "$pid")
    srv0=$(cpu_ticks "$server_pid")
    status=0
    run_load "$address" "$streams" "$count" || status=$?
    cpu1=$(cpu_ticks "$pid")
    srv1=$(cpu_ticks "$server_pid")
    result=$(grep '^RESULT' "$work/load.out" || true)
    if [[ -z "$result" ]]; then
      echo "compare_node.sh: round $round through $name FAILED:" >&2
      cat "$work/load.out" >&2
      failed=1
      continue
    fi
    if (( status != 0 )); then
      # Still print what was delivered, but keep the round out of the ratios.
      # "end code 8" is RESOURCE_EXHAUSTED: the server's slow-consumer bound
      # cut a stream whose reader (the bridge) fell too far behind.
      failed=1
      reasons=$(grep -E '^  (FAILED|TIMEOUT)' "$work/load.out" | sed -E 's/^ +FAILED stream [0-9]+: //' \
                | sort | uniq -c | sort -rn | head -3 | awk '{$1=$1; print}' | paste -sd ';' -)
    fi
    ev=$(sed -E 's/.* events=([0-9]+).*/\1/' <<<"$result")
    secs=$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$result")
    client=$(sed -E 's/.* cpu=([0-9.]+).*/\1/' <<<"$result")
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$clk_tck" 'BEGIN{printf "%.2f", (b - a) / t}')
    srv=$(awk -v a="$srv0" -v b="$srv1" -v t="$clk_tck" 'BEGIN{printf "%.2f", (b - a) / t}')
    awk -v n="$name" -v r="$round" -v e="$ev" -v s="$secs" -v c="$cpu" -v v="$srv" \
        -v l="$client" 'BEGIN{
      printf "%-5s %5d %9d %8.2f %10.0f %9.2f %13.0f %10.2f %10.2f\n", n, r, e, s, e / s, c,
             (c > 0 ? e / c : 0), v, l }'
    if (( status != 0 )); then
      nfailed=$(sed -E 's/.* failed=([0-9]+).*/\1/' <<<"$result")
      echo "      ^ FAILED: $nfailed of $streams streams (of the first 10: $reasons);" \
           "not counted in the ratios"
      continue
    fi
    events_sum[$name]=$((events_sum[$name] + ev))
    seconds_sum[$name]=$(awk -v a="${seconds_sum[$name]}" -v b="$secs" 'BEGIN{print a + b}')
    cpu_sum[$name]=$(awk -v a="${cpu_sum[$name]}" -v b="$cpu" 'BEGIN{print a + b}')
    server_sum[$name]=$(awk -v a="${server_sum[$name]}" -v b="$srv" 'BEGIN{print a + b}')
  done
done

echo "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
if (( ${events_sum[cpp]:-0} > 0 && ${events_sum[node]:-0} > 0 )); then
  awk -v ce="${events_sum[cpp]}" -v cs="${seconds_sum[cpp]}" -v cc="${cpu_sum[cpp]}" \
      -v ne="${events_sum[node]}" -v ns="${seconds_sum[node]}" -v nc="${cpu_sum[node]}" 'BEGIN{
    cr = ce / cs; nr = ne / ns
    printf "events/s:             C++ %.0f, Node %.0f, C++/Node %.2f (DESIGN target >= 3)\n",
           cr, nr, cr / nr
    if (cc > 0 && nc > 0) {
      printf "events per CPU-second: C++ %.0f, Node %.0f, C++/Node %.2f\n", ce / cc, ne / nc,
             (ce / cc) / (ne / nc)
    }
    printf "bridge CPU / wall:     C++ %.0f %%, Node %.0f %%\n", 100 * cc / cs, 100 * nc / ns
  }'
fi
if (( failed )); then
  echo "FAILED (see above)"
  exit 1
fi
