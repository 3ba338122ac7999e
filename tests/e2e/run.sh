#!/usr/bin/env bash
# End-to-end tests: the real gateway binary, driven by the OpenTelemetry JS SDK
# exporters and by raw HTTP/1.1, h2 and TCP clients (node's test runner).
#
#   tests/e2e/run.sh [GATEWAY_BIN] [test files...]
#
# GATEWAY_BIN defaults to $GATEWAY_BIN, then build/otlp-gateway. Installs the
# pinned node dependencies (npm ci) when node_modules is missing or older than
# package-lock.json. Exits non-zero when any test fails. For a sanitizer
# build, point GATEWAY_BIN at it: ASAN_OPTIONS defaults to detect_leaks=1,
# LSAN_OPTIONS to the project's suppressions, and a sanitizer report in the
# gateway's output fails the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-${GATEWAY_BIN:-$here/../../build/otlp-gateway}}"
[ $# -gt 0 ] && shift
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
  echo "run.sh: gateway binary not found or not executable: $bin" >&2
  exit 2
fi
command -v node >/dev/null || { echo "run.sh: node is not installed" >&2; exit 2; }
command -v npm >/dev/null || { echo "run.sh: npm is not installed" >&2; exit 2; }

cd "$here"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

export GATEWAY_BIN="$bin"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
# The project's LeakSanitizer suppressions (h2o's thread-local chunk cache), as
# scripts/test.sh sets them, so a sanitizer binary passes here on its own too.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$here/../lsan.supp:print_suppressions=0}"
echo "e2e: GATEWAY_BIN=$GATEWAY_BIN ($(node --version))"
if [ $# -gt 0 ]; then
  exec node --test --test-concurrency=1 --test-timeout=120000 "$@"
fi
exec node --test --test-concurrency=1 --test-timeout=120000 test/
