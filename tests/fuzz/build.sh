#!/usr/bin/env bash
# Builds the libFuzzer targets (the bridge's router_fuzz, sse_fuzz, headers_fuzz,
# http2_fuzz; the server library's jwt_fuzz)
# into OUTDIR with clang++ -fsanitize=fuzzer,address,undefined:
#
#   bash tests/fuzz/build.sh OUTDIR
#
# Needs Debian's clang and libclang-rt-14-dev (scripts/setup.sh installs
# them) besides the project's usual packages. Incremental: a second run only
# rebuilds what changed. Run them with tests/fuzz/run.sh.
set -euo pipefail
out="${1:?usage: tests/fuzz/build.sh OUTDIR}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
for tool in clang++ protoc pkg-config make; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (bash scripts/setup.sh)" >&2; exit 1; }
done

# Generated protos, redone only when a .proto is newer than its output.
protos=(google/api/annotations google/api/http google/rpc/status gravity/v1/options
  streaming/v1/streaming)
for proto in "${protos[@]}"; do
  if [[ ! -f "$out/gen/$proto.pb.cc" || "$repo/proto/$proto.proto" -nt "$out/gen/$proto.pb.cc" ]]; then
    mkdir -p "$out/gen"
    protoc -I "$repo/proto" --cpp_out="$out/gen" "$repo/proto/$proto.proto"
  fi
done

make --no-print-directory -f "$repo/tests/fuzz/Makefile" -j"${GRAVITY_FUZZ_JOBS:-2}" \
  OUT="$out" REPO="$repo"
