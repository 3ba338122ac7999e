#!/bin/sh
# Second command: install what the tests need, build, and run every test:
# unit tests (normal and ASan+UBSan builds), end-to-end tests with the
# OpenTelemetry JS SDK against both builds, and each libFuzzer target briefly.
# FUZZ_SECONDS (default 20) sets the time per fuzz target.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages $build_packages $test_packages
ensure_node

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}"

echo "== build (release, asan+ubsan, fuzz)"
build build
build build-asan -Db_sanitize=address,undefined -Db_lundef=false
CC=clang build build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false

echo "== unit tests"
meson test -C build --print-errorlogs
echo "== unit tests (asan+ubsan)"
meson test -C build-asan --print-errorlogs

echo "== end-to-end tests"
tests/e2e/run.sh "$PWD/build/otlp-gateway"
echo "== end-to-end tests (asan+ubsan)"
tests/e2e/run.sh "$PWD/build-asan/otlp-gateway"

echo "== fuzz (${FUZZ_SECONDS:-20}s per target)"
tests/fuzz/run.sh build-fuzz "${FUZZ_SECONDS:-20}"

echo "== all tests passed"
