#!/bin/sh
# Run every libFuzzer target in BUILD_DIR for SECONDS each, starting from the
# committed seeds (copied, so the corpus in git stays small). Any crash fails.
set -eu
build_dir=$1
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
status=0
for bin in "$build_dir"/tests/fuzz/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    name=$(basename "$bin" | sed 's/^fuzz_//')
    corpus=$(mktemp -d)
    [ -d "$here/seeds/$name" ] && cp "$here/seeds/$name"/* "$corpus"/ 2>/dev/null || true
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix="$build_dir/fuzz-$name-" "$corpus" >"$build_dir/fuzz-$name.log" 2>&1; then
        echo "fuzz $name: ok ($(grep -o 'Done [0-9]* runs' "$build_dir/fuzz-$name.log" | tail -1 | cut -d' ' -f2) runs in ${seconds}s)"
    else
        echo "fuzz $name: FAILED (see $build_dir/fuzz-$name.log)"
        tail -40 "$build_dir/fuzz-$name.log"
        status=1
    fi
    rm -rf "$corpus"
done
exit $status
