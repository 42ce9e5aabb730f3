#!/usr/bin/env bash
# Memory per idle SSE stream in gravity-bridge (target: <= 12 KiB at 10,000; bench/run T3
# measures the same against the Node bridge).
#
#   bazel build -c opt --symlink_prefix=/ //examples/streaming:streaming-server //bridge:gravity-bridge
#   bench/idle_streams.sh --bin="$(bazel info -c opt bazel-bin)" --streams=10000
#
# Starts examples/streaming's streaming-server and gravity-bridge on free
# ports, raises the open-file limit, and runs bench/idle_streams_client.py:
# N connections to /api/streaming/ping?count=1000&interval_ms=60000 (a stream
# that stays idle for a minute), opened in batches; it waits until the
# bridge's /metrics shows N active streams and prints the bridge's (and the
# server's) VmRSS growth per stream and how long opening took. Both processes
# are stopped when the script exits, however it exits.
#
# Flags (all optional):
#   --streams=N        idle streams (default 10000)
#   --batch=N          connections opened at once (default 500)
#   --bin=DIR          where examples/streaming/streaming-server and
#                      bridge/gravity-bridge are (default: bazel-bin)
#   --threads=N        the bridge's --threads (default 0: one per core)
#   --keepalive=SECS   the bridge's --keepalive (default 15)
#   --timeout=SECS     bound of every wait (default 120)
set -euo pipefail

streams=10000
batch=500
bin=""
threads=0
keepalive=15
timeout=120
for arg in "$@"; do
  case "$arg" in
    --streams=*) streams="${arg#*=}" ;;
    --batch=*) batch="${arg#*=}" ;;
    --bin=*) bin="${arg#*=}" ;;
    --threads=*) threads="${arg#*=}" ;;
    --keepalive=*) keepalive="${arg#*=}" ;;
    --timeout=*) timeout="${arg#*=}" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "idle_streams.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
script=idle_streams.sh
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
bench_binaries "$bin"

# Every stream is a socket in this script's client and in the bridge.
want_files=$((streams + 4096))
if (( $(ulimit -n) < want_files )); then
  ulimit -n "$want_files" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
fi
if (( $(ulimit -n) < streams + 100 )); then
  echo "idle_streams.sh: open-file limit $(ulimit -n) is too low for $streams streams" >&2
  exit 2
fi
ports=$(awk '{print $2 - $1}' /proc/sys/net/ipv4/ip_local_port_range)
if (( ports < streams + 100 )); then
  echo "idle_streams.sh: only $ports ephemeral ports (net.ipv4.ip_local_port_range)" >&2
  exit 2
fi

work="$(mktemp -d /tmp/gravity-idle-streams.XXXXXX)"
server_pid=""
bridge_pid=""
client_pid=""

cleanup() {
  stop "$client_pid"
  stop "$bridge_pid"
  stop "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


"$server_bin" --listen=127.0.0.1:0 --drain=1s >"$work/server.log" 2>&1 &
server_pid=$!
server_address=$(wait_for_line "$work/server.log" 'listening on ([0-9.]+:[0-9]+)' \
                 "$server_pid" streaming-server)

"$bridge_bin" --listen=127.0.0.1:0 --backend="$server_address" --threads="$threads" \
  --keepalive="${keepalive}s" --drain=1s --max_streams=$((streams + 1000)) \
  >"$work/bridge.log" 2>&1 &
bridge_pid=$!
bridge_address=$(wait_for_line "$work/bridge.log" 'listening on http://([0-9.]+:[0-9]+)' \
                 "$bridge_pid" gravity-bridge)

echo "streaming-server $server_address (pid $server_pid), gravity-bridge $bridge_address" \
     "(pid $bridge_pid, --threads=$threads) from $bin; open-file limit $(ulimit -n);" \
     "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: $0 $*"

# In the background so that a signal reaches the traps at once (bash runs
# them only after a foreground child ends).
status=0
python3 "$repo/bench/idle_streams_client.py" --bridge="$bridge_address" \
  --bridge-pid="$bridge_pid" --server-pid="$server_pid" --streams="$streams" \
  --batch="$batch" --timeout="$timeout" --keepalive="$keepalive" &
client_pid=$!
wait "$client_pid" || status=$?
client_pid=""
exit "$status"
