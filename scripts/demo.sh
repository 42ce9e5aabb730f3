#!/usr/bin/env bash
# The README's demo command:
#
#   bash scripts/demo.sh
#
# Installs what is missing (scripts/setup.sh, and client/web's npm packages),
# builds with Bazel, builds the demo page (client/web: `npm run build`, then
# `npm run demo` bundles examples/demo/app.js with @gravity/client into
# client/web/dist/demo/index.html), then runs the seed's streaming service
# (gRPC on 127.0.0.1:50051) and gravity-bridge in front of it (HTTP on
# 127.0.0.1:8080), which serves that page: Ping live, StreamUsers with a token,
# an error mid-stream and a reconnection counter. The bridge cuts every stream
# after GRAVITY_DEMO_MAX_STREAM (default 15s, --max_stream_duration) with a
# retry: hint, so the page's 30-ping stream shows the client resuming by
# itself. Ctrl-C stops both.
#
# Environment: GRAVITY_DEMO_GRPC (default 127.0.0.1:50051),
# GRAVITY_DEMO_HTTP (default 127.0.0.1:8080), GRAVITY_DEMO_MAX_STREAM (15s), GRAVITY_ADMIN_TOKEN (the token
# StreamUsers wants; default "demo-token").
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

GRPC_LISTEN="${GRAVITY_DEMO_GRPC:-127.0.0.1:50051}"
HTTP_LISTEN="${GRAVITY_DEMO_HTTP:-127.0.0.1:8080}"
export GRAVITY_ADMIN_TOKEN="${GRAVITY_ADMIN_TOKEN:-demo-token}"
SERVER=bazel-bin/examples/streaming/streaming-server
BRIDGE=bazel-bin/bridge/gravity-bridge

bash scripts/setup.sh --no-npm
# Only the web client's npm packages (not the e2e tests'): setup.sh's own
# npm_install, which runs `npm ci` only when node_modules is out of date.
bash -c 'source scripts/setup.sh && npm_install "$1"' setup "$REPO_ROOT/client/web"
bazel build //examples/... //bridge:gravity-bridge //client/...
(cd client/web && npm run --silent build && npm run --silent demo >/dev/null)
PAGE=client/web/dist/demo/index.html

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$SERVER" --listen="$GRPC_LISTEN" &
pids+=($!)
"$BRIDGE" --listen="$HTTP_LISTEN" --backend="$GRPC_LISTEN" \
  --index_html="$PAGE" --max_stream_duration="${GRAVITY_DEMO_MAX_STREAM:-15s}" &
pids+=($!)

cat <<MSG

demo: open http://$HTTP_LISTEN/ to watch the Ping stream arrive live (built from examples/demo/).
demo: StreamUsers on the page wants the token '$GRAVITY_ADMIN_TOKEN'.
demo: or from a shell:
  curl -N 'http://$HTTP_LISTEN/api/streaming/ping?to=you&count=5'
  curl -N 'http://$HTTP_LISTEN/streaming.v1.Streaming/StreamUsers?access_token=$GRAVITY_ADMIN_TOKEN'
  bazel-bin/client/gravity-cli --target=$GRPC_LISTEN streaming.v1.Streaming/Ping '{"to":"bob","count":3}'
demo: Ctrl-C stops the server and the bridge.

MSG
wait -n "${pids[@]}"
