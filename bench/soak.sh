#!/bin/bash
# Soak test (not part of the test command): one gateway under mixed load for
# SOAK_MINUTES (default 60) with periodic SIGHUP and API key rotation, sampled
# every SOAK_SAMPLE_SECONDS (default 10) into SOAK_OUT (default
# soak-<date>.csv). Fails on any unexpected answer, lost item, RSS growth or
# descriptor leak. Usage: bench/soak.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
build_dir=${1:-build}
build "$build_dir"
ensure_node
if [ ! -f tests/e2e/node_modules/.package-lock.json ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund)
fi
export SOAK_OUT=${SOAK_OUT:-$PWD/soak-$(date -u +%Y%m%dT%H%M%SZ).csv}
GATEWAY_BIN=$PWD/$build_dir/otlp-gateway exec node bench/soak.mjs
