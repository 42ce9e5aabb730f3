#!/usr/bin/env bash
# The README's demo command:
#
#   bash scripts/demo.sh            # plain HTTP on 127.0.0.1:8080
#   bash scripts/demo.sh --https    # HTTPS + HTTP/2 on 127.0.0.1:8443
#
# Installs what is missing (scripts/setup.sh, and client/web's npm packages),
# builds with Bazel, builds the demo page (client/web: `npm run build`, then
# `npm run demo` bundles examples/demo/app.js with @gravity/client into
# client/web/dist/demo/index.html), then runs the seed's streaming service
# (gRPC on 127.0.0.1:50051) and gravity-bridge in front of it (HTTP on
# 127.0.0.1:8080), which serves that page: Ping live, StreamUsers with a JWT
# that expires, an error mid-stream and a reconnection counter. The bridge cuts
# every stream after GRAVITY_DEMO_MAX_STREAM (default 15s, --max_stream_duration)
# with a retry: hint, so the page's 30-ping stream shows the client resuming by
# itself.
#
# StreamUsers wants a JWT with "role": "admin": the server gets --jwt_key, the
# public half of an ES256 key pair made by openssl for this run (in a temporary
# directory, removed at exit), and examples/demo/token_server.mjs (Node, on the
# bridge's port + 1, where the page looks for it) mints tokens with the private
# half that live GRAVITY_DEMO_TOKEN_TTL seconds (default 30). The page fetches
# one from `token()`, which the client calls on every reconnection; when it
# expires mid-stream the stream is cut and resumed with a new one. Ctrl-C stops
# the server, the bridge and the token endpoint.
#
# --https makes a self-signed certificate for 127.0.0.1 and localhost with
# Debian's openssl (in $GRAVITY_DEMO_TLS_DIR, default .demo-tls/, kept between
# runs), serves the page over HTTPS with HTTP/2 (--tls_cert, --tls_key), and
# prints how to make a browser trust it.
#
# Environment: GRAVITY_DEMO_GRPC (default 127.0.0.1:50051),
# GRAVITY_DEMO_HTTP (default 127.0.0.1:8080; the token endpoint takes its port + 1),
# GRAVITY_DEMO_MAX_STREAM (15s), GRAVITY_DEMO_TOKEN_TTL (30, seconds).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

https=0
for arg in "$@"; do
  case "$arg" in
    --https) https=1 ;;
    *) echo "demo.sh: unknown argument $arg (--https or nothing)" >&2; exit 2 ;;
  esac
done

GRPC_LISTEN="${GRAVITY_DEMO_GRPC:-127.0.0.1:50051}"
if ((https)); then
  HTTP_LISTEN="${GRAVITY_DEMO_HTTP:-127.0.0.1:8443}"
  SCHEME=https
else
  HTTP_LISTEN="${GRAVITY_DEMO_HTTP:-127.0.0.1:8080}"
  SCHEME=http
fi
# The token endpoint: the bridge's host, its port + 1 (the page's default).
TOKEN_LISTEN="${HTTP_LISTEN%:*}:$((${HTTP_LISTEN##*:} + 1))"
TOKEN_URL="$SCHEME://$TOKEN_LISTEN/token"
TOKEN_TTL="${GRAVITY_DEMO_TOKEN_TTL:-30}"
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
DEMO_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gravity-demo.XXXXXX")"
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DEMO_DIR"
}
trap cleanup EXIT INT TERM

# The JWT keys of this run: ES256 (EC P-256).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DEMO_DIR/jwt-private.pem" 2>/dev/null
openssl pkey -in "$DEMO_DIR/jwt-private.pem" -pubout -out "$DEMO_DIR/jwt-public.pem" 2>/dev/null

tls_flags=()
CURL="curl"
if ((https)); then
  TLS_DIR="${GRAVITY_DEMO_TLS_DIR:-$REPO_ROOT/.demo-tls}"
  mkdir -p "$TLS_DIR"
  if [[ ! -s "$TLS_DIR/cert.pem" || ! -s "$TLS_DIR/key.pem" ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" -subj /CN=127.0.0.1 \
      -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null
  fi
  tls_flags=(--tls_cert="$TLS_DIR/cert.pem" --tls_key="$TLS_DIR/key.pem")
  CURL="curl --http2 --cacert $TLS_DIR/cert.pem"
  SPKI="$(openssl x509 -pubkey -noout -in "$TLS_DIR/cert.pem" |
    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
fi

"$SERVER" --listen="$GRPC_LISTEN" --jwt_key="$DEMO_DIR/jwt-public.pem" --jwt_leeway=0s &
pids+=($!)
cors_origins=(--cors_origin="$SCHEME://$HTTP_LISTEN")
if [[ "${HTTP_LISTEN%:*}" == 127.0.0.1 ]]; then
  cors_origins+=(--cors_origin="$SCHEME://localhost:${HTTP_LISTEN##*:}")
fi
node examples/demo/token_server.mjs --key="$DEMO_DIR/jwt-private.pem" --listen="$TOKEN_LISTEN" \
  --ttl="$TOKEN_TTL" "${cors_origins[@]}" "${tls_flags[@]}" >/dev/null &
pids+=($!)
"$BRIDGE" --listen="$HTTP_LISTEN" --backend="$GRPC_LISTEN" \
  --index_html="$PAGE" --max_stream_duration="${GRAVITY_DEMO_MAX_STREAM:-15s}" "${tls_flags[@]}" &
pids+=($!)

cat <<MSG

demo: open $SCHEME://$HTTP_LISTEN/ to watch the Ping stream arrive live (built from examples/demo/).
demo: StreamUsers on the page gets a JWT from $TOKEN_URL, valid ${TOKEN_TTL}s, and goes on across its expiry.
demo: or from a shell:
  $CURL -N '$SCHEME://$HTTP_LISTEN/api/streaming/ping?to=you&count=5'
  $CURL -N "$SCHEME://$HTTP_LISTEN/streaming.v1.Streaming/StreamUsers?count=60&access_token=\$($CURL -s $TOKEN_URL)"
  bazel-bin/client/gravity-cli --target=$GRPC_LISTEN streaming.v1.Streaming/Ping '{"to":"bob","count":3}'
demo: Ctrl-C stops the server, the bridge and the token endpoint.

MSG
if ((https)); then
  cat <<MSG
demo: the certificate is self-signed ($TLS_DIR/cert.pem). To trust it:
  chromium --user-data-dir=\$(mktemp -d) --ignore-certificate-errors-spki-list=$SPKI $SCHEME://$HTTP_LISTEN/
  or import cert.pem into the browser's or the system's trust store (Debian:
  cp cert.pem /usr/local/share/ca-certificates/gravity-demo.crt && update-ca-certificates).

MSG
fi
wait -n "${pids[@]}"
