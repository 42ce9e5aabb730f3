#!/usr/bin/env bash
# The README's demo command:
#
#   bash scripts/demo.sh [extra server flags...]
#
# Installs what is missing (scripts/setup.sh), builds the examples with Bazel
# and runs the seed's streaming service on 127.0.0.1:50051 until Ctrl-C.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

LISTEN="${GRAVITY_DEMO_LISTEN:-127.0.0.1:50051}"
SERVER=bazel-bin/examples/streaming/streaming-server

bash scripts/setup.sh
bazel build //examples/...

if [[ ! -x "$SERVER" ]]; then
  echo "demo: $SERVER was not built (is //examples/streaming:streaming-server defined?)" >&2
  exit 1
fi

echo "demo: streaming service on $LISTEN (Ctrl-C to stop)"
exec "$SERVER" --listen="$LISTEN" "$@"
