#!/usr/bin/env bash
# Fails when a C++ source of the repository differs from what clang-format
# makes of it with the repository's .clang-format. Fix with:
#   git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
clang_format="${CLANG_FORMAT:-clang-format}"
mapfile -t files < <(git ls-files '*.cc' '*.h')
bad=0
for file in "${files[@]}"; do
  if ! "$clang_format" --dry-run -Werror "$file" >/dev/null 2>&1; then
    echo "not clang-formatted: $file"
    bad=$((bad + 1))
  fi
done
echo "${#files[@]} files checked, $bad not formatted"
((bad == 0))
