#!/usr/bin/env bash
# Cluster benchmark: one gateway against three cluster members, both behind
# HAProxy (TCP, round-robin per connection, send-proxy-v2), in one run, with
# the same tail-sampled traces pipeline (always_sample, discard backend).
# Prints spans/s, gateway CPU per span, the share of spans forwarded and the
# bytes forwarded per span, the forward call's p99, and the three-member
# figures as ratios of the one-instance figures. See bench/README.md
# ("Cluster benchmark").
#
# Env: BENCH_REQUESTS (10000) BENCH_CONNS (16) BENCH_STREAMS (10) BENCH_SPANS (100)
#      BENCH_WORKERS (1: workers per gateway) BENCH_WARMUP (N/10, at most 2000)
#      BUILD_DIR (build) GATEWAY_BIN MKPAYLOAD_BIN HAPROXY_BIN (/usr/sbin/haproxy)
#      BENCH_NO_BUILD=1 to skip ninja; BENCH_KEEP_TMP=1 keeps the temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

WORKERS=${BENCH_WORKERS:-1}
HAPROXY_BIN=${HAPROXY_BIN:-/usr/sbin/haproxy}
SECRET=bench-cluster-secret-0123456789
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup 10000
command -v getconf >/dev/null || die "getconf not found"
[ -x "$HAPROXY_BIN" ] || die "haproxy not found at $HAPROXY_BIN (Debian package haproxy)"
(( C >= 3 && WORKERS >= 1 )) || die "bad parameters (BENCH_CONNS >= 3 to reach three members)"
TICK=$(getconf CLK_TCK)

# gateway_yaml NAME GRPC ADMIN [CLUSTER_YAML]: one gateway, proxy-protocol gRPC
# listener, a tail-sampled traces pipeline into a discard backend.
gateway_yaml() {
    cat <<EOF
workers: $WORKERS
admin: 127.0.0.1:$3
log: {level: warn}
listeners:
  - {name: lb, grpc: 127.0.0.1:$2, proxy_protocol: true, auth: none, max_concurrent_streams: 1000}
backends:
  sink: {type: discard}
sampling:
  all: {decision_wait: 500ms, policies: [{name: all, type: always_sample}]}
pipelines:
  - {name: traces, signals: [traces], sampling: all, backends: [sink]}
${4:-}
EOF
}

# start_gateway NAME GRPC ADMIN [CLUSTER_YAML] -> appends its pid to GW_PIDS
GW_PIDS=()
start_gateway() {
    gateway_yaml "$@" >"$TMP/$1.yaml"
    launch_gateway "$1" "$3"
    GW_PIDS+=("$GW_PID")
}

# start_haproxy NAME PORT GRPC_PORT... : round-robin, send-proxy-v2
start_haproxy() {
    local name=$1 port=$2 i=0 g
    shift 2
    {
        printf 'global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 2s\n'
        printf '  timeout client 60s\n  timeout server 60s\nlisten otlp_grpc\n'
        printf '  bind 127.0.0.1:%s\n  balance roundrobin\n' "$port"
        for g in "$@"; do
            i=$((i + 1))
            printf '  server gw%d 127.0.0.1:%s send-proxy-v2\n' "$i" "$g"
        done
    } >"$TMP/$name.cfg"
    "$HAPROXY_BIN" -f "$TMP/$name.cfg" -db >"$TMP/$name.log" 2>&1 &
    HAP_PID=$!
    PIDS+=("$HAP_PID")
    wait_port "$port" || { cat "$TMP/$name.log" >&2; die "haproxy ($name) did not start"; }
}

sum_metric() { # metric label_regex admin_port...
    local m=$1 re=$2 s=0 a
    shift 2
    for a in "$@"; do s=$(( s + $(metric_sum "$a" "$m" "$re") )); done
    echo "$s"
}
cpu_sum() { local s=0 p; for p in "$@"; do s=$(( s + $(cpu_ticks "$p") )); done; echo "$s"; }

# Histogram buckets of the forward call duration, summed over members: "le count" lines.
forward_buckets() {
    local a
    for a in "$@"; do curl -fs "http://127.0.0.1:$a/metrics"; done |
        awk '$1 ~ /^otlp_gateway_cluster_forward_duration_seconds_bucket[{]/ {
                 match($1, /le="[^"]*"/); le = substr($1, RSTART + 4, RLENGTH - 5); n[le] += $NF
             }
             END { for (le in n) print le, n[le] }'
}

# p99 bound from two bucket snapshots (files): the smallest le holding 99 % of the calls in between.
bucket_p99() {
    awk 'NR == FNR { a[$1] = $2; next } { d[$1] = $2 - a[$1] }
         END {
             for (le in d) if (le == "+Inf") total = d[le]
             if (total <= 0) { print "n/a"; exit }
             best = "+Inf"
             for (le in d) if (le != "+Inf" && d[le] >= 0.99 * total && (best == "+Inf" || le + 0 < best + 0)) best = le
             if (best == "+Inf") print "> 10 s"; else printf "<= %g ms\n", best * 1000
         }' "$1" "$2"
}

# measure NAME PORT "ADMIN_PORTS" "PIDS" REQUESTS [h2load options]: (warm-up
# unless paced with --rps), measured run, checks; sets RPS P50 P99
# CPU_MS_PER_KSPAN FWD_SPANS FWD_BYTES FWD_P99
measure() {
    local name=$1 port=$2 admins pids n=$5
    read -r -a admins <<<"$3"
    read -r -a pids <<<"$4"
    shift 5
    if [ $# -eq 0 ]; then
        run_h2load "$name-warmup" "$port" "$(( WARMUP < C ? C : WARMUP ))"
    fi
    sleep 1 # what came before is decided (decision_wait 500ms)
    local rb ob fsb fbb cb rcv ok fs fb cpu
    rb=$(sum_metric otlp_gateway_received_spans_total 'signal="traces"' "${admins[@]}")
    ob=$(sum_metric otlp_gateway_requests_total 'signal="traces".*code="ok"' "${admins[@]}")
    fsb=$(sum_metric otlp_gateway_cluster_forwarded_spans_total '' "${admins[@]}")
    fbb=$(sum_metric otlp_gateway_cluster_forwarded_bytes_total '' "${admins[@]}")
    forward_buckets "${admins[@]}" >"$TMP/$name.b0"
    cb=$(cpu_sum "${pids[@]}")
    run_h2load "$name" "$port" "$n" --log-file="$TMP/$name.lat" "$@"
    cpu=$(( $(cpu_sum "${pids[@]}") - cb ))
    # Let the forward queues drain before reading the forward counters.
    local _
    for _ in $(seq 50); do
        [ "$(sum_metric otlp_gateway_cluster_forward_queue_bytes '' "${admins[@]}")" = 0 ] && break
        sleep 0.1
    done
    rcv=$(( $(sum_metric otlp_gateway_received_spans_total 'signal="traces"' "${admins[@]}") - rb ))
    ok=$(( $(sum_metric otlp_gateway_requests_total 'signal="traces".*code="ok"' "${admins[@]}") - ob ))
    fs=$(( $(sum_metric otlp_gateway_cluster_forwarded_spans_total '' "${admins[@]}") - fsb ))
    fb=$(( $(sum_metric otlp_gateway_cluster_forwarded_bytes_total '' "${admins[@]}") - fbb ))
    forward_buckets "${admins[@]}" >"$TMP/$name.b1"
    [ "$rcv" -eq $(( n * SPANS )) ] || die "$name: gateways received $rcv spans, expected $n x $SPANS"
    [ "$ok" -eq "$n" ] || die "$name: gateways answered OK to $ok requests, expected $n"
    RPS=$(h2load_rps "$name")
    [ -n "$RPS" ] || die "$name: cannot read req/s from h2load"
    read -r P50 P99 < <(latency_p50_p99 "$TMP/$name.lat")
    CPU_MS_PER_KSPAN=$(awk -v t="$cpu" -v hz="$TICK" -v s="$rcv" 'BEGIN { printf "%.3f", t * 1000 / hz / (s / 1000) }')
    FWD_SPANS=$fs
    FWD_BYTES=$fb
    FWD_P99=$(bucket_p99 "$TMP/$name.b0" "$TMP/$name.b1")
}

"$MKPAYLOAD_BIN" "$TMP/payload.bin" "$SPANS" 2>"$TMP/mkpayload.log" || { cat "$TMP/mkpayload.log" >&2; die "mkpayload failed"; }
PAYLOAD_BYTES=$(stat -c %s "$TMP/payload.bin")
log "payload: $SPANS spans, $PAYLOAD_BYTES bytes; $N requests, $C connections x $M streams, warm-up $WARMUP, $WORKERS worker(s) per gateway"

# ---- one instance ----
free_port G A LB
start_gateway solo "$G" "$A"
start_haproxy lb1 "$LB" "$G"
log "one: haproxy :$LB -> gateway :$G"
measure one "$LB" "$A" "${GW_PIDS[*]}" "$N"
ONE_RPS=$RPS ONE_P50=$P50 ONE_P99=$P99 ONE_CPU=$CPU_MS_PER_KSPAN
# Paced: a quarter of what one instance sustained, for PACE_SECONDS, so
# latencies are those of a loaded but not saturated cluster.
PACE=${BENCH_PACE_RPS:-$(awk -v r="$ONE_RPS" 'BEGIN { printf "%d", r / 4 }')}
PER_CONN=$(( PACE / C > 0 ? PACE / C : 1 ))
PACE_N=$(( PER_CONN * C * ${BENCH_PACE_SECONDS:-5} ))
measure one-paced "$LB" "$A" "${GW_PIDS[*]}" "$PACE_N" --rps="$PER_CONN"
ONE_PACED_P50=$P50 ONE_PACED_P99=$P99 ONE_PACED_CPU=$CPU_MS_PER_KSPAN
kill "${GW_PIDS[@]}" "$HAP_PID"; wait "${GW_PIDS[@]}" "$HAP_PID" 2>/dev/null || true

# ---- three members ----
GW_PIDS=()
GS=() AS=() PS=()
for i in 1 2 3; do
    free_port gport aport pport
    GS+=("$gport") AS+=("$aport") PS+=("$pport")
done
MEMBERS="127.0.0.1:${PS[0]}, 127.0.0.1:${PS[1]}, 127.0.0.1:${PS[2]}"
for i in 0 1 2; do
    start_gateway "gw$((i + 1))" "${GS[$i]}" "${AS[$i]}" "cluster:
  advertise: 127.0.0.1:${PS[$i]}
  listen: 127.0.0.1:${PS[$i]}
  members: [$MEMBERS]
  secret: $SECRET
  forward: {flush: 5ms}
  health: {interval: 200ms, failures: 2}"
done
for _ in $(seq 100); do
    [ "$(sum_metric otlp_gateway_cluster_members '' "${AS[@]}")" = 9 ] && break
    sleep 0.1
done
[ "$(sum_metric otlp_gateway_cluster_members '' "${AS[@]}")" = 9 ] || die "the three members do not see each other"
free_port LB
start_haproxy lb3 "$LB" "${GS[@]}"
log "three: haproxy :$LB -> gateways :${GS[*]} (peers :${PS[*]})"
measure three-paced "$LB" "${AS[*]}" "${GW_PIDS[*]}" "$PACE_N" --rps="$PER_CONN"
PACED_P50=$P50 PACED_P99=$P99 PACED_CPU=$CPU_MS_PER_KSPAN PACED_FWD_P99=$FWD_P99
measure three "$LB" "${AS[*]}" "${GW_PIDS[*]}" "$N"

# ---- report ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
printf 'Tail-sampled OTLP/gRPC through HAProxy (round-robin, send-proxy-v2): %d spans/request (%d bytes),\n' "$SPANS" "$PAYLOAD_BYTES"
printf '%d requests, %d conns x %d streams, %d worker(s) per gateway, %s cores\n' "$N" "$C" "$M" "$WORKERS" "$(nproc)"
printf '%-26s %10s %11s %8s %8s %15s\n' scenario 'req/s' 'spans/s' 'p50 ms' 'p99 ms' 'gw CPU ms/kspan'
printf '%-26s %10.0f %11.0f %8s %8s %15s\n' 'one instance' "$ONE_RPS" "$(awk -v r="$ONE_RPS" -v s="$SPANS" 'BEGIN { print r * s }')" "$ONE_P50" "$ONE_P99" "$ONE_CPU"
printf '%-26s %10.0f %11.0f %8s %8s %15s\n' 'three members' "$RPS" "$(awk -v r="$RPS" -v s="$SPANS" 'BEGIN { print r * s }')" "$P50" "$P99" "$CPU_MS_PER_KSPAN"
printf '%-26s %10.0f %11.0f %8s %8s %15s\n' 'one instance, paced' "$(( PER_CONN * C ))" "$(( PER_CONN * C * SPANS ))" "$ONE_PACED_P50" "$ONE_PACED_P99" "$ONE_PACED_CPU"
printf '%-26s %10.0f %11.0f %8s %8s %15s\n' 'three members, paced' "$(( PER_CONN * C ))" "$(( PER_CONN * C * SPANS ))" "$PACED_P50" "$PACED_P99" "$PACED_CPU"
TOTAL=$(( N * SPANS ))
printf 'forwarded: %d of %d spans (%.1f%%; (N-1)/N = 66.7%%), %d bytes: %.0f bytes per forwarded span, %.0f per span received\n' \
    "$FWD_SPANS" "$TOTAL" "$(awk -v f="$FWD_SPANS" -v t="$TOTAL" 'BEGIN { print 100 * f / t }')" "$FWD_BYTES" \
    "$(awk -v b="$FWD_BYTES" -v f="$FWD_SPANS" 'BEGIN { print f ? b / f : 0 }')" \
    "$(awk -v b="$FWD_BYTES" -v t="$TOTAL" 'BEGIN { print b / t }')"
printf 'added latency of a forwarded span (flush <= 5 ms + forward call p99, otlp_gateway_cluster_forward_duration_seconds): paced %s, saturated %s\n' "$PACED_FWD_P99" "$FWD_P99"
printf 'ratios three/one: spans/s %s, CPU per span %s (paced %s), client p99 %s (paced %s)\n' "$(ratio "$RPS" "$ONE_RPS")" \
    "$(ratio "$CPU_MS_PER_KSPAN" "$ONE_CPU")" "$(ratio "$PACED_CPU" "$ONE_PACED_CPU")" \
    "$(ratio "$P99" "$ONE_P99")" "$(ratio "$PACED_P99" "$ONE_PACED_P99")"
printf 'checks: every request HTTP 200 and counted OK; received_spans_total grew by requests x spans in every run\n'
