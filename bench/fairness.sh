#!/usr/bin/env bash
# Do large requests starve small ones on a worker? One gateway worker
# (discard, no auth) takes small requests (BENCH_SMALL_SPANS spans) at a
# fixed open-loop rate from one loadgen, while a second loadgen sends large
# requests (BENCH_LARGE_SPANS spans, about 440 bytes each) as fast as it is
# answered. The small requests' latency is measured three ways, in one
# invocation:
#
#   alone    the small flow only;
#   shared   the large flow to the same gateway (the same worker);
#   control  the large flow to a second gateway of its own: the machine is as
#            busy as in `shared` (both clients and a gateway scanning large
#            requests share the two cores), but the small requests' worker
#            does not serve the large ones.
#
# shared against control is what the worker's own scheduling costs small
# requests; control against alone is the load on the machine. Every
# request must be acknowledged (the small flow is far below capacity).
#
# Env: BENCH_PROTO (grpc, or http: OTLP/HTTP protobuf over h2c, which h2o
# serves) BENCH_DURATION (10) BENCH_SMALL_SPANS (10) BENCH_SMALL_RATE (2000
# requests/s) BENCH_SMALL_CONNS (4) BENCH_LARGE_SPANS (1000)
# BENCH_LARGE_CONNS (4) BENCH_LARGE_STREAMS (4) BUILD_DIR (build)
# BENCH_QUICK=1 (1 s runs: checks the script, measures nothing)
# BENCH_KEEP_TMP=1 BENCH_NO_BUILD=1
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup 1000

PROTO=${BENCH_PROTO:-grpc}
case $PROTO in grpc | http) ;; *) die "BENCH_PROTO must be grpc or http" ;; esac
DUR=${BENCH_DURATION:-10}
[ "${BENCH_QUICK:-0}" = 1 ] && DUR=1
SMALL=${BENCH_SMALL_SPANS:-10}
RATE=${BENCH_SMALL_RATE:-2000}
SC=${BENCH_SMALL_CONNS:-4}
LARGE=${BENCH_LARGE_SPANS:-1000}
LC=${BENCH_LARGE_CONNS:-4}
LM=${BENCH_LARGE_STREAMS:-4}

# start_discard NAME -> GW_PID GW_URL GW_ADMIN: one worker, discard, no auth.
start_discard() {
    local grpc http
    free_port grpc http GW_ADMIN
    GW_URL="http://127.0.0.1:$([ "$PROTO" = grpc ] && echo "$grpc" || echo "$http")"
    cat >"$TMP/$1.yaml" <<EOF
workers: 1
admin: 127.0.0.1:$GW_ADMIN
log: {level: warn}
listeners:
  - {name: bench, grpc: 127.0.0.1:$grpc, http: 127.0.0.1:$http, max_concurrent_streams: 1000}
backends:
  out: {type: discard}
pipelines:
  - {name: all, signals: [traces], backends: [out]}
EOF
    launch_gateway "$1" "$GW_ADMIN"
}

start_discard a
A_PID=$GW_PID A_URL=$GW_URL
start_discard b
B_PID=$GW_PID B_URL=$GW_URL

SMALL_ARGS=(-p "$PROTO" --spans "$SMALL" -c "$SC" -m 4 -r "$RATE" -d "$DUR")
# The large flow starts first and runs past the small one on both sides.
LARGE_ARGS=(-p "$PROTO" --spans "$LARGE" -c "$LC" -m "$LM" -d "$(awk -v d="$DUR" 'BEGIN { print d + 2 }')")

# small NAME: the small flow against gateway a; its figures into $TMP/rows.
small() {
    lg "$1-small" "${SMALL_ARGS[@]}" "$A_URL"
    [ "$LG_FAILS" = "" ] || die "$1: small requests refused: $LG_FAILS"
    local line p999
    line=$(grep '^result ' "$TMP/$1-small.out")
    p999=$(echo "$line" | grep -oE 'p999_ms=[0-9.]+' | cut -d= -f2)
    SMALL_ROW="$LG_RPS $LG_P50 $LG_P99 $p999"
}

# with_large NAME URL: the small flow while the large one runs against URL.
with_large() {
    "$LOADGEN_BIN" "${LARGE_ARGS[@]}" "$2" >"$TMP/$1-large.out" 2>&1 &
    local lpid=$! t0 t1
    PIDS+=("$lpid")
    sleep 1
    t0=$(cpu_ticks "$A_PID")
    small "$1"
    t1=$(cpu_ticks "$A_PID")
    wait "$lpid" || { cat "$TMP/$1-large.out" >&2; die "$1: the large flow's loadgen failed"; }
    local sps
    sps=$(grep -oE 'spans_per_s=[0-9.]+' "$TMP/$1-large.out" | cut -d= -f2) || die "$1: no result from the large flow"
    echo "$1 $SMALL_ROW $sps $(( t1 - t0 ))" >>"$TMP/rows"
}

: >"$TMP/rows"
log "$PROTO: small: $SMALL spans/request at $RATE requests/s over $SC connections; large: $LARGE spans/request, $LC conns x $LM streams, closed loop; ${DUR}s runs, one worker"
t0=$(cpu_ticks "$A_PID")
small alone
t1=$(cpu_ticks "$A_PID")
echo "alone $SMALL_ROW - $(( t1 - t0 ))" >>"$TMP/rows"
with_large shared "$A_URL"
with_large control "$B_URL"
stop_pid "$A_PID"
stop_pid "$B_PID"

TICK=$(getconf CLK_TCK)
echo
printf '%s: small requests (%d spans, %s/s open loop) while large ones (%d spans) flow, one worker, %ss runs\n' \
    "$PROTO" "$SMALL" "$RATE" "$LARGE" "$DUR"
printf '%-8s %9s %9s %9s %9s %14s %14s\n' run 'small/s' 'p50 ms' 'p99 ms' 'p99.9 ms' 'large spans/s' 'worker a CPU %'
while read -r name rps p50 p99 p999 lsps ticks; do
    printf '%-8s %9.0f %9s %9s %9s %14s %14s\n' "$name" "$rps" "$p50" "$p99" "$p999" "$lsps" \
        "$(awk -v t="$ticks" -v hz="$TICK" -v d="$DUR" 'BEGIN { printf "%.0f", 100 * t / hz / d }')"
done <"$TMP/rows"
p99() { awk -v n="$1" '$1 == n { print $4 }' "$TMP/rows"; }
printf 'small p99: shared / control %s (what sharing the worker costs), control / alone %s (the busy machine)\n' \
    "$(awk -v a="$(p99 shared)" -v b="$(p99 control)" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$(p99 control)" -v b="$(p99 alone)" 'BEGIN { printf "%.2f", a / b }')"
