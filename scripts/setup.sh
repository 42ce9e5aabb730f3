#!/usr/bin/env bash
# Installs what gravity needs to build, test and demo on Debian 12, then the
# npm packages of the end-to-end tests and of the web client (client/web).
# Safe to run again: it only calls apt-get when a package is missing, and npm
# only when node_modules is missing or older than package.json / package-lock.json.
#
#   bash scripts/setup.sh              # Debian packages + npm packages of tests/e2e, client/web
#   bash scripts/setup.sh --no-npm     # Debian packages only
#   bash scripts/setup.sh --npm DIR    # ... and the npm packages of DIR (repeatable)
#
# Used by scripts/test.sh, scripts/demo.sh and CI (.ci/run).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Build: Bazel (Debian's bazel-bootstrap) and CMake over Debian's gRPC,
# protobuf, Abseil, GoogleTest and Boost. Tests and demo: a real browser
# (chromium), nginx (h2/TLS front), openssl (the scale-out test's certificate),
# h2load (nghttp2-client), wrk, curl.
# Fuzzing (tests/fuzz): clang with its libFuzzer and sanitizer runtimes, make.
# Fan-out (server/topic.h, examples/chat): hiredis, and redis-server for tests.
PACKAGES=(
  bazel-bootstrap
  pkg-config
  cmake
  g++
  clang
  libclang-rt-14-dev
  make
  clang-format
  git
  libgrpc++-dev
  protobuf-compiler-grpc
  libprotobuf-dev
  protobuf-compiler
  libabsl-dev
  libgtest-dev
  libgmock-dev
  libboost1.81-dev
  libboost-url1.81-dev
  libhiredis-dev
  libssl-dev      # the bridge's TLS
  libnghttp2-dev  # the bridge's HTTP/2
  zlib1g-dev      # the bridge's gzip
  libjwt-dev      # the server library's JWT guards (server/jwt.h)
  redis-server
  nodejs
  npm
  chromium
  nginx-light
  openssl
  nghttp2-client
  wrk
  curl
  python3   # tests/docs: the link check, the curl block and version tests
  systemd   # systemd-analyze verify of docs/operations.md's unit (tests/docs)
)

log() { printf 'setup: %s\n' "$*" >&2; }

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root to run: $*  (run as root or install sudo)"
    return 1
  fi
}

install_debian_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    # Node.js may come from elsewhere (nodesource, nvm): any node + npm on
    # PATH will do, and Debian's npm would conflict with nodesource's nodejs.
    if [[ "$pkg" == nodejs || "$pkg" == npm ]] &&
      command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
      continue
    fi
    is_installed "$pkg" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    log "Debian packages: all present"
    return 0
  fi
  log "installing: ${missing[*]}"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# npm_install DIR: `npm ci` (with a lock file) or `npm install` in DIR when its
# node_modules is missing or older than package.json / package-lock.json.
# A DIR that does not exist or has no package.json is skipped.
npm_install() {
  local dir="$1"
  if [[ ! -f "$dir/package.json" ]]; then
    log "npm: no $dir/package.json yet, skipping"
    return 0
  fi
  local stamp="$dir/node_modules/.gravity-setup-stamp"
  local lock="$dir/package-lock.json"
  # Up to date: our stamp, or the hidden lock file npm (>= 7) writes into
  # node_modules on every install, is not older than package.json and
  # package-lock.json.
  local marker
  for marker in "$stamp" "$dir/node_modules/.package-lock.json"; do
    if [[ -f "$marker" && ! "$dir/package.json" -nt "$marker" && ! ( -f "$lock" && "$lock" -nt "$marker" ) ]]; then
      log "npm: $dir/node_modules is up to date"
      return 0
    fi
  done
  if ! command -v npm >/dev/null 2>&1; then
    log "npm not found on PATH"
    return 1
  fi
  # Browsers come from Debian (chromium); never let puppeteer or playwright
  # download their own.
  local -a env=(PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1)
  if [[ -f "$lock" ]]; then
    log "npm ci in $dir"
    (cd "$dir" && env "${env[@]}" npm ci --no-audit --no-fund)
  else
    log "npm install in $dir"
    (cd "$dir" && env "${env[@]}" npm install --no-audit --no-fund)
  fi
  mkdir -p "$dir/node_modules" && touch "$stamp"
}

main() {
  local npm_dirs=("$REPO_ROOT/tests/e2e" "$REPO_ROOT/client/web") no_npm=0
  while (($# > 0)); do
    case "$1" in
      --no-npm) no_npm=1 ;;
      --npm)
        shift
        [[ $# -gt 0 ]] || { log "--npm needs a directory"; return 2; }
        npm_dirs+=("$1")
        ;;
      -h | --help)
        sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        return 0
        ;;
      *)
        log "unknown argument: $1"
        return 2
        ;;
    esac
    shift
  done

  install_debian_packages
  if ((no_npm == 0)); then
    local dir
    for dir in "${npm_dirs[@]}"; do npm_install "$dir"; done
  fi
}

# Sourcing this file defines the functions without running anything.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
