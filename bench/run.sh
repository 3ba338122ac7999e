#!/usr/bin/env bash
# OTLP/gRPC load benchmark: the gateway (discard backend, 1 worker) against an
# nginx grpc_pass baseline in front of a second gateway used as the sink.
# See bench/README.md for what the figures mean.
#
# Env: BENCH_REQUESTS (20000) BENCH_CONNS (16) BENCH_STREAMS (10) BENCH_SPANS (100)
#      BUILD_DIR (build)  GATEWAY_BIN ($BUILD_DIR/otlp-gateway)
#      MKPAYLOAD_BIN ($BUILD_DIR/bench/mkpayload)  NGINX_BIN (/usr/sbin/nginx)
#      BENCH_WARMUP (requests sent before each measured run; default N/10, max 2000)
#      BENCH_NO_BUILD=1 to skip `ninja`;
#      BENCH_KEEP_TMP=1 keeps the temp dir (configs, logs, h2load output).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup 20000
[ -x "$NGINX_BIN" ] || die "nginx not found at $NGINX_BIN"
chmod 755 "$TMP" # nginx workers may run as nobody

# start_gateway NAME GRPC_PORT ADMIN_PORT -> sets GW_PID
start_gateway() {
    local name=$1 gport=$2 aport=$3
    cat >"$TMP/$name.yaml" <<EOF
# One worker thread: figures are per core, comparable with nginx's one worker.
workers: 1
admin: 127.0.0.1:$aport
log: {level: warn}
listeners:
  - name: bench
    grpc: 127.0.0.1:$gport
    max_concurrent_streams: 1000
backends:
  sink: {type: discard}
pipelines:
  - name: all
    signals: [traces, metrics, logs]
    backends: [sink]
EOF
    "$GATEWAY_BIN" --config "$TMP/$name.yaml" 2>"$TMP/$name.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    local _
    for _ in $(seq 100); do
        curl -fs -o /dev/null "http://127.0.0.1:$aport/readyz" && return 0
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$GW_PID" 2>/dev/null || true
    cat "$TMP/$name.log" >&2
    die "$name did not become ready"
}

# measure NAME H2LOAD_PORT SINK_ADMIN_PORT: warm-up, measured run, checks.
# Sets RPS P50 P99 (ms) for the measured run.
measure() {
    local name=$1 port=$2 aport=$3
    if (( WARMUP > 0 )); then
        run_h2load "$name-warmup" "$port" "$(( WARMUP < C ? C : WARMUP ))"
    fi
    local before after ok_before ok_after
    before=$(metric_sum "$aport" otlp_gateway_received_spans_total 'signal="traces".*transport="grpc"')
    ok_before=$(metric_sum "$aport" otlp_gateway_requests_total 'signal="traces".*transport="grpc".*code="ok"')
    run_h2load "$name" "$port" "$N" --log-file="$TMP/$name.lat"
    after=$(metric_sum "$aport" otlp_gateway_received_spans_total 'signal="traces".*transport="grpc"')
    ok_after=$(metric_sum "$aport" otlp_gateway_requests_total 'signal="traces".*transport="grpc".*code="ok"')
    local want=$(( N * SPANS ))
    [ $(( after - before )) -eq "$want" ] ||
        die "$name: gateway received $(( after - before )) spans, expected $N x $SPANS = $want"
    [ $(( ok_after - ok_before )) -eq "$N" ] ||
        die "$name: gateway answered OK to $(( ok_after - ok_before )) requests, expected $N"
    RPS=$(h2load_rps "$name")
    [ -n "$RPS" ] || die "$name: cannot read req/s from h2load"
    # --log-file lines: start time (µs), status, latency (µs).
    read -r P50 P99 < <(latency_p50_p99 "$TMP/$name.lat")
    local lines
    lines=$(wc -l <"$TMP/$name.lat")
    [ "$lines" -eq "$N" ] || die "$name: latency log has $lines lines, expected $N"
}

"$MKPAYLOAD_BIN" "$TMP/payload.bin" "$SPANS" 2>"$TMP/mkpayload.log" || { cat "$TMP/mkpayload.log" >&2; die "mkpayload failed"; }
PAYLOAD_BYTES=$(stat -c %s "$TMP/payload.bin")
log "payload: $SPANS spans, $PAYLOAD_BYTES bytes gRPC-framed; $N requests, $C connections x $M streams, warm-up $WARMUP"

# ---- scenario 1: clients -> gateway (discard backend) ----
GW_PORT=$(free_port); GW_ADMIN=$(free_port)
start_gateway gateway "$GW_PORT" "$GW_ADMIN"
GW1_PID=$GW_PID
log "gateway: grpc :$GW_PORT admin :$GW_ADMIN pid $GW1_PID"
measure gateway "$GW_PORT" "$GW_ADMIN"
GW_RPS=$RPS; GW_P50=$P50; GW_P99=$P99
GW_RSS=$(peak_rss_kb "$GW1_PID")
kill "$GW1_PID"; wait "$GW1_PID" 2>/dev/null || true

# ---- scenario 2: clients -> nginx grpc_pass -> gateway (discard backend) as sink ----
SINK_PORT=$(free_port); SINK_ADMIN=$(free_port); NGX_PORT=$(free_port)
start_gateway sink "$SINK_PORT" "$SINK_ADMIN"
SINK_PID=$GW_PID
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    client_max_body_size 0;
    keepalive_requests 100000000;
    http2_max_concurrent_streams 1000;
    upstream sink {
        server 127.0.0.1:$SINK_PORT;
        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$NGX_PORT http2;
        location / { grpc_pass grpc://sink; }
    }
}
EOF
"$NGINX_BIN" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" 2>>"$TMP/nginx/stderr" &
NGX_PID=$!
PIDS+=("$NGX_PID")
wait_port "$NGX_PORT" || { cat "$TMP/nginx/stderr" "$TMP/nginx/error.log" >&2 2>/dev/null; die "nginx did not start"; }
log "baseline: nginx :$NGX_PORT (pid $NGX_PID) -> sink gateway grpc :$SINK_PORT admin :$SINK_ADMIN"
measure baseline "$NGX_PORT" "$SINK_ADMIN"
BL_RPS=$RPS; BL_P50=$P50; BL_P99=$P99
SINK_RSS=$(peak_rss_kb "$SINK_PID")
# nginx: master + its worker(s), each process's own peak.
NGX_RSS=$(( $(peak_rss_kb "$NGX_PID") ))
for w in $(pgrep -P "$NGX_PID"); do NGX_RSS=$(( NGX_RSS + $(peak_rss_kb "$w") )); done

# ---- report ----
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
printf 'OTLP/gRPC Export, %d spans/request (%d bytes), %d requests, %d conns x %d streams, 1 worker each\n' \
    "$SPANS" "$PAYLOAD_BYTES" "$N" "$C" "$M"
printf '%-34s %12s %12s %8s %8s %12s %10s\n' scenario 'requests/s' 'spans/s' 'p50 ms' 'p99 ms' 'gw RSS MiB' 'nginx MiB'
printf '%-34s %12.0f %12.0f %8s %8s %12s %10s\n' "gateway (discard backend)" "$GW_RPS" \
    "$(awk -v r="$GW_RPS" -v s="$SPANS" 'BEGIN { print r * s }')" "$GW_P50" "$GW_P99" "$(mb "$GW_RSS")" '-'
printf '%-34s %12.0f %12.0f %8s %8s %12s %10s\n' 'baseline: nginx grpc_pass -> sink' "$BL_RPS" \
    "$(awk -v r="$BL_RPS" -v s="$SPANS" 'BEGIN { print r * s }')" "$BL_P50" "$BL_P99" "$(mb "$SINK_RSS")" "$(mb "$NGX_RSS")"
printf 'throughput ratio gateway/baseline: %s\n' "$(awk -v a="$GW_RPS" -v b="$BL_RPS" 'BEGIN { printf "%.2f", a / b }')"
printf 'checks: every request HTTP 200 and counted OK by the gateway; received_spans_total grew by requests x spans\n'
