#!/bin/bash
# Second command: install what the tests need, build, and run every test:
# unit tests (normal and ASan+UBSan builds), end-to-end tests with the
# OpenTelemetry JS SDK against both builds, and each libFuzzer target briefly.
# FUZZ_SECONDS (default 20) sets the time per fuzz target.
# pipefail: a failing step must fail the script even when piped into tee.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086 # the package lists are meant to split into names
ensure_packages $build_packages $test_packages
ensure_node

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}"

echo "== build (release, asan+ubsan, fuzz)"
build build
build build-asan -Db_sanitize=address,undefined -Db_lundef=false
CC=clang CXX=clang++ build build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false

echo "== layers"
scripts/check_layers.sh build

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# no_skips WHAT N: a skipped test is a test that did not run, so the command
# fails on one, unless a developer opts out by hand with ALLOW_SKIPS=1 (CI
# never sets it).
no_skips() {
    [ "$2" -eq 0 ] && return 0
    if [ "${ALLOW_SKIPS:-0}" = 1 ]; then
        echo "warning: $1: $2 skipped (ALLOW_SKIPS=1)"
        return 0
    fi
    echo "$1: $2 tests skipped: every test must run (install what they need; ALLOW_SKIPS=1 to accept locally)"
    exit 1
}

echo "== unit tests"
meson test -C build --print-errorlogs | tee "$logs/unit"
no_skips unit "$(awk '/^Skipped:/ {print $2}' "$logs/unit")"
echo "== unit tests (asan+ubsan)"
meson test -C build-asan --print-errorlogs | tee "$logs/unit-asan"
no_skips unit-asan "$(awk '/^Skipped:/ {print $2}' "$logs/unit-asan")"

# e2e NAME BINARY: the node:test suite against one build; its full output is
# shown only when it fails (it is long), its totals always.
#
# A test file the runner kills on its timeout reports none of its tests, so
# each run keeps traces (tests/e2e/lib/gateway.js, E2E_TRACE_DIR): for a failed
# file, the end of its trace names the test that was running, and the log of
# every gateway it started that never exited is shown.
e2e_traces() { # NAME
    local file trace pid log
    awk '/^not ok [0-9]+ - \/.*\.test\.js$/ {print $NF}' "$logs/$1" | while read -r file; do
        trace="$logs/trace-$1/$(basename "$file").trace"
        [ -f "$trace" ] || continue
        echo "-- trace of $(basename "$file") (last 20 lines)"
        tail -20 "$trace"
        grep -o 'gateway start: pid=[0-9]* log=.*' "$trace" | while read -r _ _ pid log; do
            grep -q "gateway exit: ${pid} " "$trace" && continue
            echo "-- ${log#log=}, gateway ${pid} never exited (last 60 lines)"
            tail -60 "${log#log=}" 2>/dev/null
        done
    done
}
# After a passing run: every file that uses the harness left a trace in
# which each test that started ended and each gateway that started exited,
# so a broken trace shows here rather than when a file is killed.
e2e_traces_check() { # NAME
    local f t ts te gs ge bad=0
    while read -r f; do
        t="$logs/trace-$1/$(basename "$f").trace"
        read -r ts te gs ge < <([ -f "$t" ] && awk '/ test start: /{a++} / test end: /{b++}
            / gateway start: /{c++} / gateway exit: /{d++} END {print a+0, b+0, c+0, d+0}' "$t" || echo 0 0 0 0)
        if [ "$ts" -eq 0 ] || [ "$ts" -ne "$te" ] || [ "$gs" -ne "$ge" ]; then
            echo "e2e trace of $(basename "$f") ($1): tests $ts started, $te ended; gateways $gs started, $ge exited"
            bad=1
        fi
    done < <(grep -l "lib/gateway.js" tests/e2e/test/*.test.js)
    [ "$bad" -eq 0 ] || { echo "end-to-end traces incomplete ($1)"; exit 1; }
}
e2e() {
    rm -rf "$logs/trace-$1" && mkdir -p "$logs/trace-$1"
    if ! E2E_TRACE_DIR="$logs/trace-$1" tests/e2e/run.sh "$2" >"$logs/$1" 2>&1; then
        # Every failing test at any depth, with its diagnostics (the YAML
        # block up to its closing "..."), then the end of the run.
        awk '/^ *not ok /{ind = match($0, /[^ ]/); on = 1; n = 0}
             on && n++ < 200 {print}
             on && /^ *\.\.\.$/ && match($0, /[^ ]/) == ind + 2 {on = 0}' "$logs/$1"
        tail -40 "$logs/$1"
        e2e_traces "$1"
        echo "end-to-end tests FAILED ($1)"
        exit 1
    fi
    grep -E '^# (tests|pass|fail|skipped|todo)' "$logs/$1"
    e2e_traces_check "$1"
    no_skips "$1" "$(awk '/^# (skipped|todo) / {n += $3} END {print n + 0}' "$logs/$1")"
}
echo "== end-to-end tests"
e2e e2e "$PWD/build/otlp-gateway"
echo "== end-to-end tests (asan+ubsan)"
e2e e2e-asan "$PWD/build-asan/otlp-gateway"

# bench/run.sh in quick mode (0.3 s runs, about 20 s): every scenario starts,
# loadgen's acknowledged spans equal what each gateway or sink received, and
# nothing fails but the retryable "queue full". It asserts no speed.
echo "== bench smoke (bench/run.sh, BENCH_QUICK=1)"
bench/lib_check.sh
if ! BENCH_QUICK=1 BENCH_NO_BUILD=1 BUILD_DIR=build bench/run.sh >"$logs/bench" 2>&1; then
    tail -40 "$logs/bench"
    echo "bench smoke FAILED"
    exit 1
fi
grep '^checks:' "$logs/bench"

echo "== infra (image, terraform, dashboard, alerts, compose, systemd)"
infra/check.sh build/otlp-gateway

echo "== fuzz (${FUZZ_SECONDS:-20}s per target)"
tests/fuzz/run.sh build-fuzz "${FUZZ_SECONDS:-20}" | tee "$logs/fuzz"

# One closing line over everything above (each step already stopped the
# script on a failure): unit suites, e2e tests, fuzz targets.
unit=$(cat "$logs/unit" "$logs/unit-asan" | awk '/^Ok:/ {n += $2} END {print n + 0}')
e2e=$(cat "$logs/e2e" "$logs/e2e-asan" | awk '/^# pass/ {n += $3} END {print n + 0}')
fuzz=$(grep -c ': ok' "$logs/fuzz" || true)
echo "summary: unit suites $unit, e2e tests $e2e, fuzz targets $fuzz"
echo "$((unit + e2e + fuzz)) passed, 0 failed"
