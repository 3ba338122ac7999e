#!/bin/sh
# A fuzz campaign (not part of the test command): every libFuzzer target in
# BUILD_DIR for SECONDS each, on a persistent corpus under CORPUS_DIR (one
# folder per target, seeded from tests/fuzz/seeds the first time and grown
# by every run), using JOBS processes per target. Prints, per target, the
# executions and the coverage libFuzzer reached (edges `cov`, features `ft`,
# corpus size), and fails on any crash, leaving the reproducer in BUILD_DIR.
#   tests/fuzz/campaign.sh BUILD_DIR SECONDS [CORPUS_DIR] [JOBS]
# e.g. an hour over the seven targets on two cores:
#   tests/fuzz/campaign.sh build-fuzz 500 fuzz-corpus 2
set -eu
build_dir=$1
seconds=$2
corpus_root=${3:-fuzz-corpus}
jobs=${4:-1}
here=$(cd "$(dirname "$0")" && pwd)
status=0
printf '%-14s %12s %8s %8s %8s\n' target executions cov ft corpus
for bin in "$build_dir"/tests/fuzz/fuzz_*; do
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        continue
    fi
    name=$(basename "$bin" | sed 's/^fuzz_//')
    corpus="$corpus_root/$name"
    if [ ! -d "$corpus" ]; then
        mkdir -p "$corpus"
        if [ -d "$here/seeds/$name" ]; then
            cp "$here/seeds/$name"/* "$corpus"/
        fi
    fi
    log="$build_dir/campaign-$name.log"
    # -fork keeps going past a slow input and spreads over JOBS processes;
    # the corpus directory receives every new input either way.
    if "$bin" -fork="$jobs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build_dir/campaign-$name-" "$corpus" >"$log" 2>&1; then
        # fork mode reports "#N ... cov: C ft: F corp: K" lines; the last is the total.
        last=$(grep -E '^#[0-9]+' "$log" | tail -1)
        execs=$(printf '%s' "$last" | sed -E 's/^#([0-9]+).*/\1/')
        cov=$(printf '%s' "$last" | sed -nE 's/.*cov: ([0-9]+).*/\1/p')
        ft=$(printf '%s' "$last" | sed -nE 's/.*ft: ([0-9]+).*/\1/p')
        printf '%-14s %12s %8s %8s %8s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$(find "$corpus" -type f | wc -l)"
    else
        echo "$name: FAILED (see $log)"
        tail -40 "$log"
        status=1
    fi
done
exit $status
