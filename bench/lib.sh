# shellcheck shell=bash
# Sourced by bench/run.sh and bench/cluster.sh: their common setup
# (bench_setup), messages, free ports, /metrics sums and h2load runs with
# their checks.

die() { echo "bench: FAIL: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# bench_setup DEFAULT_REQUESTS: the common parameters from the environment
# (N C M SPANS BUILD_DIR GATEWAY_BIN MKPAYLOAD_BIN LOADGEN_BIN WARMUP, see bench/README.md),
# the tools, the build, the temp dir TMP, and at exit the end of every
# process in PIDS and the removal of TMP (unless BENCH_KEEP_TMP=1).
# shellcheck disable=SC2034 # the variables are the caller's
bench_setup() {
    N=${BENCH_REQUESTS:-$1}
    C=${BENCH_CONNS:-16}
    M=${BENCH_STREAMS:-10}
    SPANS=${BENCH_SPANS:-100}
    BUILD_DIR=${BUILD_DIR:-build}
    GATEWAY_BIN=${GATEWAY_BIN:-$BUILD_DIR/otlp-gateway}
    MKPAYLOAD_BIN=${MKPAYLOAD_BIN:-$BUILD_DIR/bench/mkpayload}
    LOADGEN_BIN=${LOADGEN_BIN:-$BUILD_DIR/bench/loadgen}
    WARMUP=${BENCH_WARMUP:-$(( N / 10 > 2000 ? 2000 : N / 10 ))}
    GRPC_PATH=/opentelemetry.proto.collector.trace.v1.TraceService/Export
    local t
    for t in h2load curl awk ss; do command -v "$t" >/dev/null || die "$t not found"; done
    (( C >= 1 && M >= 1 && SPANS >= 1 && N >= C )) || die "bad parameters"
    if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
        ninja -C "$BUILD_DIR" otlp-gateway bench/mkpayload bench/loadgen >&2 || die "build failed"
    fi
    [ -x "$GATEWAY_BIN" ] || die "gateway binary $GATEWAY_BIN missing"
    [ -x "$MKPAYLOAD_BIN" ] || die "mkpayload binary $MKPAYLOAD_BIN missing"
    [ -x "$LOADGEN_BIN" ] || die "loadgen binary $LOADGEN_BIN missing"
    TMP=$(mktemp -d /tmp/otlp-bench.XXXXXX)
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}

# free_port VAR...: sets each VAR to a free loopback TCP port (in no socket
# now, not handed out before by this shell), below the ephemeral range
# (32768 and up on Linux) so that no client connection takes it between now
# and the bind. Call it as it is, never in $( ): a subshell's record of the
# ports handed out is lost, two calls can then get the same port, and as the
# gateway's listeners use SO_REUSEPORT both binds succeed and the two
# listeners share the connections (a bench run failed so, with HTTP 404s
# from the wrong listener).
USED_PORTS=" "
free_port() {
    local _fp_var _fp_port
    for _fp_var in "$@"; do
        while :; do
            _fp_port=$(( 20000 + RANDOM % 12000 ))
            case "$USED_PORTS" in *" $_fp_port "*) continue ;; esac
            [ -z "$(ss -Htan "sport = :$_fp_port")" ] && break
        done
        USED_PORTS+="$_fp_port "
        printf -v "$_fp_var" '%s' "$_fp_port"
    done
}

wait_port() { # port
    local _
    for _ in $(seq 100); do
        [ -n "$(ss -Htln "sport = :$1")" ] && return 0
        sleep 0.1
    done
    return 1
}

# launch_gateway NAME ADMIN_PORT: runs the gateway on $TMP/NAME.yaml (log in
# $TMP/NAME.log), waits for /readyz; sets GW_PID, adds it to PIDS.
launch_gateway() {
    local name=$1 aport=$2 _
    "$GATEWAY_BIN" --config "$TMP/$name.yaml" 2>"$TMP/$name.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    for _ in $(seq 100); do
        curl -fs -o /dev/null "http://127.0.0.1:$aport/readyz" && return 0
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$TMP/$name.log" >&2
    die "$name did not become ready"
}

# stop_pid PID: SIGTERM and wait (a gateway drains its queues first).
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Sum of a metric (its series matching a regex on the labels; "" for all), from /metrics.
metric_sum() { # admin_port metric label_regex
    curl -fs "http://127.0.0.1:$1/metrics" |
        awk -v m="$2" -v re="$3" '$1 ~ "^"m"([{]|$)" && $1 ~ re { s += $NF } END { printf "%d\n", s }'
}

# duration_buckets ADMIN_PORT: "le count" lines of the gateway's own
# otlp_gateway_request_duration_seconds histogram (traces over gRPC),
# cumulative as exposed; the +Inf bucket is printed as le=inf.
duration_buckets() {
    curl -fs "http://127.0.0.1:$1/metrics" |
        awk '/^otlp_gateway_request_duration_seconds_bucket[{]/ && /signal="traces"/ && /transport="grpc"/ {
                 match($1, /le="[^"]+"/); le = substr($1, RSTART + 4, RLENGTH - 5)
                 if (le == "+Inf") le = "inf"
                 n[le] += $NF
             } END { for (le in n) print le, n[le] }' | sort -g
}

# gw_latency BEFORE AFTER: from two duration_buckets snapshots, the upper
# bound of the bucket holding the 99th percentile of the requests between
# them (ms, ">10000" past the last bound) and the share answered within 1 ms.
gw_latency() {
    awk 'NR == FNR { b[$1] = $2; next } { d[$1] = $2 - b[$1]; les[++n] = $1 }
         END {
             tot = d["inf"]; if (tot <= 0) { print "- -"; exit }
             p = ">10000"
             for (i = 1; i <= n; i++) if (les[i] != "inf" && d[les[i]] >= 0.99 * tot) { p = les[i] * 1000; break }
             printf "%s %.1f\n", p, 100 * d["0.001"] / tot
         }' "$1" "$2"
}

peak_rss_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# CPU time (user + system) a process has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# CPU time the whole machine has been busy (every CPU, all but idle and
# iowait: processes, the kernel, interrupts), in clock ticks.
machine_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# run_h2load NAME PORT REQUESTS [--log-file] -> h2load's output in $TMP/NAME.out
run_h2load() {
    local name=$1 port=$2 n=$3
    shift 3
    h2load -n "$n" -c "$C" -m "$M" -d "$TMP/payload.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$@" \
        "http://127.0.0.1:$port$GRPC_PATH" >"$TMP/$name.out" 2>&1 || { cat "$TMP/$name.out" >&2; die "h2load ($name) failed"; }
    # "requests: N total, N started, N done, N succeeded, 0 failed, 0 errored, 0 timeout"
    local line
    line=$(grep '^requests:' "$TMP/$name.out") || die "no requests line from h2load ($name)"
    read -r succ failed errored timeout < <(echo "$line" |
        sed -E 's/.* ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored, ([0-9]+) timeout.*/\1 \2 \3 \4/')
    if [ "$succ" != "$n" ] || [ "$failed" != 0 ] || [ "$errored" != 0 ] || [ "$timeout" != 0 ]; then
        cat "$TMP/$name.out" >&2
        die "$name: h2load: $succ/$n succeeded, $failed failed, $errored errored, $timeout timeout"
    fi
    local twoxx
    twoxx=$(sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p' "$TMP/$name.out")
    [ "$twoxx" = "$n" ] || die "$name: only $twoxx of $n answers were HTTP 2xx"
}

# h2load's req/s for a run (from "finished in ..., X req/s").
h2load_rps() { sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p' "$TMP/$1.out"; }

# "P50 P99" in ms from an h2load --log-file (start time µs, status, latency µs).
latency_p50_p99() {
    awk '{ print $3 }' "$1" | sort -n | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) exit 1
            i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; if (i50 < 1) i50 = 1
            i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++; if (i99 < 1) i99 = 1
            printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000
        }'
}

# lg NAME ARGS... : runs loadgen (output in $TMP/NAME.out); sets LG_* from its
# result line. Failures other than the retryable "queue full" answers
# (HTTP 503, gRPC 14 UNAVAILABLE) stop the benchmark: they would mean a
# broken setup, not a slow one.
# shellcheck disable=SC2034 # the LG_* variables are the caller's
lg() {
    local name=$1 rc=0
    shift
    "$LOADGEN_BIN" "$@" >"$TMP/$name.out" 2>&1 || rc=$?
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then cat "$TMP/$name.out" >&2; die "$name: loadgen exited $rc"; fi
    local line
    line=$(grep '^result ' "$TMP/$name.out") || { cat "$TMP/$name.out" >&2; die "$name: no result from loadgen"; }
    LG_FAILS=$(echo "$line" | grep -oE 'fail_[a-z_0-9]+=[0-9]+' | tr '\n' ' ' || true)
    local bad
    bad=$(echo "$LG_FAILS" | tr ' ' '\n' | grep -vE '^(fail_grpc_14|fail_http_503)=|^$' || true)
    [ -z "$bad" ] || { cat "$TMP/$name.out" >&2; die "$name: requests failed: $bad"; }
    lg_get() { echo "$line" | grep -oE "(^| )$1=[0-9.]+" | cut -d= -f2; }
    LG_OK=$(lg_get ok) LG_ACKED=$(lg_get spans_acked) LG_SPS=$(lg_get spans_per_s) LG_RPS=$(lg_get rps)
    LG_P50=$(lg_get p50_ms) LG_P99=$(lg_get p99_ms) LG_CPU=$(lg_get cpu_s)
}
