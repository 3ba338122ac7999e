#!/usr/bin/env bash
# The whole path under load, in one invocation: bench/loadgen (fresh ids,
# traces spread over requests) against the gateway in each scenario below,
# the nginx grpc_pass relay as the baseline, and h2load on the first scenario
# as a cross-check of loadgen. Every scenario: a closed-loop run (the
# maximum rate), an open-loop run at half that rate (latency from intended
# send times), and the check that the gateway or the sink received exactly
# what loadgen saw acknowledged. See bench/README.md for what the figures mean.
#
# Env: BENCH_DURATION (10: seconds per measured run) BENCH_WARMUP_S (2)
#      BENCH_QUICK=1 (0.3 s runs, no warm-up: checks the script, measures nothing)
#      BENCH_SCENARIOS (all: space-separated names, see SCENARIOS below)
#      BENCH_CONNS (16) BENCH_STREAMS (10) BENCH_SPANS (100) BENCH_SPANS_PER_TRACE (10)
#      BENCH_SAMPLING_SPANS (400000: spans buffered for the RSS-per-span run)
#      BUILD_DIR (build) GATEWAY_BIN LOADGEN_BIN MKPAYLOAD_BIN NGINX_BIN (/usr/sbin/nginx)
#      BENCH_PERF=1: `perf record --call-graph dwarf` the gateway (nginx worker) during each
#      closed-loop run; its top symbols are printed after the table.
#      BENCH_NO_BUILD=1 to skip `ninja`; BENCH_KEEP_TMP=1 keeps the temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup 1000
for t in node openssl; do command -v "$t" >/dev/null || die "$t not found"; done
[ -x "$NGINX_BIN" ] || die "nginx not found at $NGINX_BIN"
chmod 755 "$TMP" # nginx workers may run as nobody
TICK=$(getconf CLK_TCK)

ALL_SCENARIOS="discard apikey jwt tls export_http export_grpc disk sampling workers2 nginx"
SCENARIOS=${BENCH_SCENARIOS:-$ALL_SCENARIOS}
DUR=${BENCH_DURATION:-10}
WARM=${BENCH_WARMUP_S:-2}
SAMPLING_SPANS=${BENCH_SAMPLING_SPANS:-400000}
SPT=${BENCH_SPANS_PER_TRACE:-10}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    DUR=0.3 WARM=0 SAMPLING_SPANS=$(( SPANS * 20 ))
fi
for s in $SCENARIOS; do
    case " $ALL_SCENARIOS " in *" $s "*) ;; *) die "unknown scenario $s (known: $ALL_SCENARIOS)" ;; esac
done
# The payload mix of every run: same shape, fresh ids per request.
LG_SHAPE=(--spans "$SPANS" --spans-per-trace "$SPT" -c "$C" -m "$M")

# ---- shared pieces: TLS certificate, API key, Keycloak stand-in ----

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null ||
    die "openssl could not make a certificate"
: >"$TMP/keys.yaml"
API_KEY=$("$GATEWAY_BIN" keys create --tenant shop --name bench --keys-file "$TMP/keys.yaml" 2>&1 | grep '^otlpgw_') ||
    die "otlp-gateway keys create failed"

JWT=
ISSUER=
start_keycloak() {
    [ -d "$ROOT/tests/e2e/node_modules/oidc-provider" ] ||
        (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund >&2) || die "npm ci in tests/e2e failed"
    node "$ROOT/bench/keycloak.mjs" >"$TMP/keycloak.out" 2>"$TMP/keycloak.log" &
    KC_PID=$!
    PIDS+=("$KC_PID")
    local _
    for _ in $(seq 100); do
        grep -q '^issuer=' "$TMP/keycloak.out" 2>/dev/null && break
        kill -0 "$KC_PID" 2>/dev/null || break
        sleep 0.1
    done
    read -r ISSUER JWT < <(sed -nE 's/^issuer=([^ ]+) token=(.+)$/\1 \2/p' "$TMP/keycloak.out")
    [ -n "$JWT" ] || { cat "$TMP/keycloak.log" >&2; die "the Keycloak stand-in gave no token"; }
}

# ---- gateway configs ----

# gw_yaml NAME WORKERS GRPC_PORT HTTP_PORT ADMIN_PORT KIND [SINK_PORT]: a gateway config
# for scenario KIND. Listener auth: none for discard/workers2/sink, an API key
# or a JWT otherwise; backends: discard, or an exporter to the sink gateway.
gw_yaml() {
    local name=$1 workers=$2 gport=$3 hport=$4 aport=$5 kind=$6 sink=${7:-}
    local auth=none tls='' backend='{type: discard}' sampling='' pipe_extra=''
    case $kind in
        apikey | export_http | export_grpc | disk | sampling) auth=apikey ;;
        jwt) auth=jwt ;;
        tls) auth=apikey tls="    tls: {cert: $TMP/tls.crt, key: $TMP/tls.key}" ;;
    esac
    case $kind in
        export_http | disk)
            backend="{type: otlp_http, endpoint: 'http://127.0.0.1:$sink', compression: none, queue: {max_bytes: 256MiB"
            [ "$kind" = disk ] && backend+=", dir: '$TMP/queue-$name', fsync: interval"
            backend+="}}" ;;
        export_grpc)
            backend="{type: otlp_grpc, endpoint: 'http://127.0.0.1:$sink', compression: none, queue: {max_bytes: 256MiB}}" ;;
        sampling)
            sampling="sampling:
  ten: {decision_wait: ${SAMPLING_WAIT:-2s}, max_bytes: 4GiB, max_traces: 10000000, policies: [{name: some, type: probabilistic, sampling_percentage: 10}]}"
            pipe_extra=", sampling: ten" ;;
    esac
    cat <<EOF
workers: $workers
admin: 127.0.0.1:$aport
log: {level: warn}
listeners:
  - name: bench
    grpc: 127.0.0.1:$gport
    http: 127.0.0.1:$hport
    max_concurrent_streams: 1000
    auth: $([ "$auth" = none ] && echo none || echo required)
$tls
EOF
    case $auth in
        apikey) printf 'auth:\n  api_keys: {file: %s}\n' "$TMP/keys.yaml" ;;
        jwt) printf 'auth:\n  oidc:\n    - {issuer: "%s", audience: otlp-gateway, tenant_claim: tenant, required_roles: [otlp-writer]}\n' "$ISSUER" ;;
    esac
    [ "$auth" = none ] || printf 'tenants:\n  - {id: shop, endpoints: [bench]}\n'
    cat <<EOF
backends:
  out: $backend
$sampling
pipelines:
  - {name: all, signals: [traces], backends: [out]$pipe_extra}
EOF
}

# start_gw NAME WORKERS KIND [SINK_PORT] -> GW_PID, GW_GRPC, GW_HTTP, GW_ADMIN
start_gw() {
    free_port GW_GRPC GW_HTTP GW_ADMIN
    # shellcheck disable=SC2153 # free_port sets them
    gw_yaml "$1" "$2" "$GW_GRPC" "$GW_HTTP" "$GW_ADMIN" "$3" "${4:-}" >"$TMP/$1.yaml"
    launch_gateway "$1" "$GW_ADMIN"
}

# start_nginx UPSTREAM_GRPC_PORT -> NGX_PID, NGX_PORT
start_nginx() {
    free_port NGX_PORT
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
        server 127.0.0.1:$1;
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
}

# ---- loadgen runs ----

# received ADMIN_PORT: spans the gateway at ADMIN_PORT has received (traces, gRPC).
received() { metric_sum "$1" otlp_gateway_received_spans_total 'signal="traces"'; }

# wait_received ADMIN_PORT WANT WHAT: polls (up to 60 s) until the gateway
# has received WANT spans; dies if it gets more, or fewer in time.
wait_received() {
    local got _
    for _ in $(seq 600); do
        got=$(received "$1")
        [ "$got" -eq "$2" ] && return 0
        [ "$got" -gt "$2" ] && die "$3: received $got spans, more than the $2 acknowledged"
        sleep 0.1
    done
    die "$3: received $got spans, expected the $2 acknowledged"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

# measure NAME URL AUTH_ARGS_VAR CHECK_ADMIN GW_PID GW_ADMIN [LOADGEN_EXTRA...]:
# warm-up, closed loop (max), open loop at half the max; checks that the
# gateway at CHECK_ADMIN received (now, or once its queue drained) exactly
# the spans acknowledged over the three runs. GW_ADMIN is the measured
# gateway's admin port (- for nginx): its own request-duration histogram
# over the half-rate run gives the latency it adds. Appends a row to $TMP/rows.
measure() {
    local name=$1 url=$2 check_admin=$4 pid=$5 gw_admin=$6
    local -n auth_args=$3
    shift 6
    local base acked=0 warm=${MEASURE_WARM:-$WARM}
    base=$(received "$check_admin")
    if [ "$warm" != 0 ]; then
        lg "$name-warmup" "${LG_SHAPE[@]}" "${auth_args[@]}" "$@" -d "$warm" "$url"
        acked=$(( acked + LG_ACKED ))
    fi
    local t0 t1 perf_pid=
    if [ "${BENCH_PERF:-0}" = 1 ]; then
        perf record -q --call-graph dwarf,16384 -F 1999 -p "$pid" -o "$TMP/$name.perf" -- sleep "$DUR" >"$TMP/$name.perf.log" 2>&1 &
        perf_pid=$!
    fi
    local m0 m1 w0 w1
    t0=$(cpu_ticks "$pid") m0=$(machine_busy_ticks) w0=$(date +%s%N)
    lg "$name-max" "${LG_SHAPE[@]}" "${auth_args[@]}" "$@" -d "$DUR" "$url"
    t1=$(cpu_ticks "$pid") m1=$(machine_busy_ticks) w1=$(date +%s%N)
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || { cat "$TMP/$name.perf.log" >&2; die "$name: perf record failed"; }
        perf report -i "$TMP/$name.perf" --no-children --stdio --percent-limit 2 2>/dev/null |
            awk -v n="$name" '/^ +[0-9.]+%/ { printf "%s %s %s\n", n, $1, $NF }' | head -8 >>"$TMP/perf-top"
    fi
    acked=$(( acked + LG_ACKED ))
    local max_sps=$LG_SPS max_rps=$LG_RPS max_p50=$LG_P50 max_p99=$LG_P99 fails=$LG_FAILS max_acked=$LG_ACKED
    (( LG_OK > 0 )) || die "$name: no request acknowledged"
    local cpu_us cores
    cpu_us=$(awk -v t=$(( t1 - t0 )) -v hz="$TICK" -v s="$max_acked" 'BEGIN { printf "%.2f", t / hz * 1e6 / s }')
    # Cores busy over the closed-loop run (loadgen's whole run, wall clock):
    # the measured process, loadgen, and the whole machine (the sink, the
    # kernel's share and anything else running make up the rest).
    cores=$(awk -v g=$(( t1 - t0 )) -v m=$(( m1 - m0 )) -v hz="$TICK" -v lc="$LG_CPU" -v w=$(( w1 - w0 )) \
        'BEGIN { d = w / 1e9; printf "%.2f/%.2f/%.2f", g / hz / d, lc / d, m / hz / d }')
    local half
    half=$(awk -v r="$max_rps" 'BEGIN { h = r / 2; if (h < 1) h = 1; printf "%.1f", h }')
    [ "$gw_admin" = - ] || duration_buckets "$gw_admin" >"$TMP/$name.dur0"
    lg "$name-half" "${LG_SHAPE[@]}" "${auth_args[@]}" "$@" -r "$half" -d "$DUR" "$url"
    local gw_p99=- gw_1ms=-
    if [ "$gw_admin" != - ]; then
        duration_buckets "$gw_admin" >"$TMP/$name.dur1"
        read -r gw_p99 gw_1ms < <(gw_latency "$TMP/$name.dur0" "$TMP/$name.dur1")
    fi
    acked=$(( acked + LG_ACKED ))
    fails+=$LG_FAILS
    wait_received "$check_admin" $(( base + acked )) "$name"
    local rss
    rss=$(peak_rss_kb "$pid")
    printf '%s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$name" "$max_rps" "$max_sps" "$max_p50" "$max_p99" \
        "$LG_P50" "$LG_P99" "$gw_p99" "$gw_1ms" "$cpu_us" "$cores" "$(fmt "$(( rss ))/1024" 1)" "${fails:--}" | tr -s ' ' >>"$TMP/rows"
    log "$name: $(fmt "$max_sps" 0) spans/s max, p50/p99 at half rate $LG_P50/$LG_P99 ms, acknowledged $acked = received"
}
# fmt EXPR [DECIMALS]: an awk expression, formatted.
fmt() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# Header arguments by scenario, passed to measure by name.
# shellcheck disable=SC2034
NOAUTH=()
KEYAUTH=(-H "authorization: Bearer $API_KEY")
# shellcheck disable=SC2034
TLSAUTH=(-H "authorization: Bearer $API_KEY" --cacert "$TMP/tls.crt")
: >"$TMP/rows"
log "loadgen: $SPANS spans/request, $SPT spans/trace, $C conns x $M streams; ${DUR}s runs, ${WARM}s warm-up"

for s in $SCENARIOS; do
    case $s in
        discard | apikey | tls | workers2)
            workers=1 lgx=()
            [ "$s" = workers2 ] && workers=2 lgx=(-t 2)
            kind=$s
            [ "$s" = workers2 ] && kind=discard
            start_gw "$s" "$workers" "$kind"
            scheme=http
            auth=NOAUTH
            [ "$s" = apikey ] && auth=KEYAUTH
            [ "$s" = tls ] && { auth=TLSAUTH; scheme=https; }
            measure "$s" "$scheme://127.0.0.1:$GW_GRPC" "$auth" "$GW_ADMIN" "$GW_PID" "$GW_ADMIN" "${lgx[@]}"
            if [ "$s" = discard ]; then
                # the old h2load scenario, same payload shape, as a cross-check of loadgen
                "$LOADGEN_BIN" --dump "$TMP/payload.bin" --spans "$SPANS" --spans-per-trace "$SPT" 2>/dev/null
                hn=$(awk -v r="$(awk '$1 == "discard" { print $2 }' "$TMP/rows")" -v d="$DUR" \
                    'BEGIN { n = int(r * d); if (n < 100) n = 100; print n }')
                (( hn >= C )) || hn=$C
                before=$(received "$GW_ADMIN")
                t0=$(cpu_ticks "$GW_PID")
                run_h2load h2load "$GW_GRPC" "$hn"
                t1=$(cpu_ticks "$GW_PID")
                after=$(received "$GW_ADMIN")
                [ $(( after - before )) -eq $(( hn * SPANS )) ] || die "h2load: gateway received $(( after - before )) spans, expected $(( hn * SPANS ))"
                H2_RPS=$(h2load_rps h2load)
                H2_CPU=$(fmt "$(( t1 - t0 )) / $TICK * 1e6 / $(( hn * SPANS ))")
                log "h2load: $H2_RPS requests/s (the same request repeated, $hn requests)"
            fi
            stop_pid "$GW_PID"
            ;;
        jwt)
            [ -n "$JWT" ] || start_keycloak
            # shellcheck disable=SC2034
            JWTAUTH=(-H "authorization: Bearer $JWT")
            start_gw jwt 1 jwt
            for _ in $(seq 100); do # the signing keys, fetched at start
                [ "$(metric_sum "$GW_ADMIN" otlp_gateway_jwks_refreshes_total 'result="ok"')" -gt 0 ] && break
                sleep 0.1
            done
            measure jwt "http://127.0.0.1:$GW_GRPC" JWTAUTH "$GW_ADMIN" "$GW_PID" "$GW_ADMIN"
            stop_pid "$GW_PID"
            ;;
        export_http | export_grpc | disk)
            start_gw "sink-$s" 1 discard
            SINK_PID=$GW_PID SINK_ADMIN=$GW_ADMIN
            target=$GW_HTTP
            [ "$s" = export_grpc ] && target=$GW_GRPC
            start_gw "$s" 1 "$s" "$target"
            measure "$s" "http://127.0.0.1:$GW_GRPC" KEYAUTH "$SINK_ADMIN" "$GW_PID" "$GW_ADMIN"
            stop_pid "$GW_PID"
            stop_pid "$SINK_PID"
            ;;
        sampling)
            start_gw sampling 1 sampling
            # Warmed up for two decision waits more: the measured run then
            # starts with the held set at its size for the full rate, traces
            # decided as fast as they come, and the memory of decided ones
            # reused. After a 2 s warm-up the held set was still growing
            # (RSS +115 MiB over an 8 s run), and first touches of new pages
            # were a tenth of the profile.
            MEASURE_WARM=$(awk -v w="$WARM" 'BEGIN { print (w == 0 ? 0 : w + 4) }') \
                measure sampling "http://127.0.0.1:$GW_GRPC" KEYAUTH "$GW_ADMIN" "$GW_PID" "$GW_ADMIN"
            stop_pid "$GW_PID"
            # RSS per buffered span: nothing is decided during the run
            # (decision_wait 10 min), so every acknowledged span is held.
            SAMPLING_WAIT=600s start_gw sampling-rss 1 sampling
            rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$GW_PID/status")
            lg sampling-rss "${LG_SHAPE[@]}" "${KEYAUTH[@]}" -n $(( SAMPLING_SPANS / SPANS )) "http://127.0.0.1:$GW_GRPC"
            rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$GW_PID/status")
            held=$(metric_sum "$GW_ADMIN" otlp_gateway_sampler_bytes_held '')
            RSS_LINE="sampling: $LG_ACKED spans held: RSS +$(( (rss1 - rss0) / 1024 )) MiB = $(fmt "($rss1 - $rss0) * 1024 / $LG_ACKED" 0) bytes/span; sampler_bytes_held $(fmt "$held / $LG_ACKED" 0) bytes/span"
            stop_pid "$GW_PID"
            ;;
        nginx)
            start_gw sink-nginx 1 discard
            SINK_PID=$GW_PID SINK_ADMIN=$GW_ADMIN
            start_nginx "$GW_GRPC"
            # CPU and RSS of the one worker process (the master only waits)
            ngx_worker=$(pgrep -P "$NGX_PID" | head -1)
            [ -n "$ngx_worker" ] || die "no nginx worker process"
            measure nginx "http://127.0.0.1:$NGX_PORT" NOAUTH "$SINK_ADMIN" "$ngx_worker" -
            stop_pid "$NGX_PID"
            stop_pid "$SINK_PID"
            ;;
    esac
done

# ---- report ----
WIRE=$("$LOADGEN_BIN" --dump "$TMP/one.bin" --spans "$SPANS" --spans-per-trace "$SPT" 2>&1 | sed -nE 's/.* ([0-9]+) bytes.*/\1/p')
base_sps=$(awk '$1 == "discard" { print $3 }' "$TMP/rows")
ngx_sps=$(awk '$1 == "nginx" { print $3 }' "$TMP/rows")
echo
printf 'OTLP/gRPC trace export, %d spans/request (%d bytes gRPC-framed), %d spans/trace, %d conns x %d streams, %ss runs\n' \
    "$SPANS" "$WIRE" "$SPT" "$C" "$M" "$DUR"
printf '%-12s %9s %10s %6s %6s %9s %9s %9s %9s %8s %7s %8s %14s %8s  %s\n' scenario 'req/s' 'spans/s' 'x disc' 'x ngx' \
    'p50 max' 'p99 max' 'p50 half' 'p99 half' 'gw p99<=' 'gw<=1ms' 'CPU us/sp' 'cores gw/lg/all' 'RSS MiB' 'refused (retryable)'
while read -r name rps sps p50 p99 hp50 hp99 gp99 g1ms cpu cores rss fails; do
    printf '%-12s %9.0f %10.0f %6s %6s %9s %9s %9s %9s %8s %7s %8s %14s %8s  %s\n' "$name" "$rps" "$sps" \
        "$(ratio "$sps" "${base_sps:-0}")" "$(ratio "$sps" "${ngx_sps:-0}")" "$p50" "$p99" "$hp50" "$hp99" \
        "$gp99" "$([ "$g1ms" = - ] && echo - || echo "$g1ms%")" "$cpu" "$cores" "$rss" "$fails"
done <"$TMP/rows"
[ -n "${H2_RPS:-}" ] && printf 'cross-check on discard: h2load (one request repeated) %s req/s, gateway CPU %s us/span; loadgen %s req/s, %s us/span; ratios h2load/loadgen %s (rate), %s (CPU)\n' \
    "$(fmt "$H2_RPS" 0)" "$H2_CPU" "$(awk '$1 == "discard" { printf "%.0f", $2 }' "$TMP/rows")" \
    "$(awk '$1 == "discard" { print $10 }' "$TMP/rows")" \
    "$(ratio "$H2_RPS" "$(awk '$1 == "discard" { print $2 }' "$TMP/rows")")" \
    "$(ratio "$H2_CPU" "$(awk '$1 == "discard" { print $10 }' "$TMP/rows")")"
mem_row=$(awk '$1 == "export_http" { print $3, $10 }' "$TMP/rows")
disk_row=$(awk '$1 == "disk" { print $3, $10 }' "$TMP/rows")
[ -n "$mem_row" ] && [ -n "$disk_row" ] && printf 'disk queue against the memory queue (disk / export_http): %s by rate, %s by CPU per span\n' \
    "$(ratio "${disk_row% *}" "${mem_row% *}")" "$(ratio "${mem_row#* }" "${disk_row#* }")"
[ -n "${RSS_LINE:-}" ] && echo "$RSS_LINE; wire $(fmt "$WIRE / $SPANS" 0) bytes/span"
if [ -s "$TMP/perf-top" ]; then
    echo "perf (self time, >= 2 %, top 8 per scenario):"
    awk '{ if ($1 != last) { printf "%s%s:", (NR > 1 ? "\n" : ""), $1; last = $1 } printf " %s %s", $3, $2 } END { print "" }' "$TMP/perf-top"
fi
echo "latency ms: max = closed loop (saturated, from send); half = open loop at half the max rate, from intended send time"
echo "gw p99<= / gw<=1ms: the gateway's own otlp_gateway_request_duration_seconds over the half-rate run (request start to answer ready, without the client's and the kernel's share): the bucket bound holding the 99th percentile, and the share of requests answered within 1 ms"
echo "CPU us/sp: CPU of the gateway (nginx for the nginx row) per acknowledged span in the closed-loop run"
echo "cores gw/lg/all: cores kept busy over the closed-loop run by the gateway (nginx), by loadgen, and on the whole machine ($(nproc) here)"
echo "checks: every scenario's gateway (or sink) received exactly the spans loadgen saw acknowledged"
