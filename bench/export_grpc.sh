#!/usr/bin/env bash
# otlp_grpc export throughput: h2load -> gateway (1 worker, an otlp_grpc
# backend, memory queue) -> a second gateway (discard) as the sink. Reports
# the rate at which the sink received the spans, end to end (from the first
# request until the sink has every span), and the connections the exporter
# used: TCP connections to the sink seen open at once (ss, sampled), and what
# the sender says it opened (otlp_gateway_export_connections_total, where the
# binary has it) against the export requests it made.
#
# Env: as bench/run.sh (BENCH_REQUESTS (4000) BENCH_CONNS BENCH_STREAMS
#      BENCH_SPANS BUILD_DIR GATEWAY_BIN MKPAYLOAD_BIN BENCH_NO_BUILD
#      BENCH_KEEP_TMP), plus EXPORT_CONSUMERS (queue.consumers; "none" leaves
#      the key out, for a binary that predates it), EXPORT_COMPRESSION (gzip)
#      and SINK_BIN (the sink's binary, default GATEWAY_BIN).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup 4000
CONSUMERS=${EXPORT_CONSUMERS:-4}
COMPRESSION=${EXPORT_COMPRESSION:-gzip}
SINK_BIN=${SINK_BIN:-$GATEWAY_BIN}

# start NAME BIN BODY_FN -> GW_PID, PORT, ADMIN. BODY_FN PORT prints the
# config after admin:. Fresh ports are tried again when one was taken
# meanwhile (an outgoing connection can hold a port free_port handed out).
start() {
    local name=$1 bin=$2 body=$3 _
    for _ in 1 2 3; do
        free_port PORT ADMIN
        # shellcheck disable=SC2153 # free_port sets PORT
        printf 'workers: 1\nadmin: 127.0.0.1:%s\nlog: {level: warn}\n%s\n' "$ADMIN" "$("$body" "$PORT")" >"$TMP/$name.yaml"
        "$bin" --config "$TMP/$name.yaml" 2>"$TMP/$name.log" &
        GW_PID=$!
        PIDS+=("$GW_PID")
        for _ in $(seq 100); do
            curl -fs -o /dev/null "http://127.0.0.1:$ADMIN/readyz" && return 0
            kill -0 "$GW_PID" 2>/dev/null || break
            sleep 0.1
        done
        grep -q 'in use' "$TMP/$name.log" || break
    done
    cat "$TMP/$name.log" >&2
    die "$name did not become ready"
}

now_ms() { date +%s%3N; }

"$MKPAYLOAD_BIN" "$TMP/payload.bin" "$SPANS" 2>"$TMP/mkpayload.log" || { cat "$TMP/mkpayload.log" >&2; die "mkpayload failed"; }
WANT=$(( N * SPANS ))

sink_body() {
    printf '%s\n' "listeners:
  - {name: in, grpc: 127.0.0.1:$1, max_concurrent_streams: 1000}
backends:
  drop: {type: discard}
pipelines:
  - {name: all, signals: [traces], backends: [drop]}"
}
start sink "$SINK_BIN" sink_body
SINK_PORT=$PORT; SINK_ADMIN=$ADMIN

QUEUE="queue: {max_bytes: 1GiB$( [ "$CONSUMERS" = none ] || printf ', consumers: %s' "$CONSUMERS")}"
sender_body() {
    printf '%s\n' "listeners:
  - {name: in, grpc: 127.0.0.1:$1, max_concurrent_streams: 1000}
backends:
  out:
    type: otlp_grpc
    endpoint: http://127.0.0.1:$SINK_PORT
    compression: $COMPRESSION
    $QUEUE
pipelines:
  - {name: all, signals: [traces], backends: [out]}"
}
start sender "$GATEWAY_BIN" sender_body
GW_PORT=$PORT; GW_ADMIN=$ADMIN; SENDER_PID=$GW_PID

# Connections to the sink open at once, sampled every 100 ms while it runs.
( max=0; while kill -0 "$SENDER_PID" 2>/dev/null; do
      n=$(ss -Htn state established "( dport = :$SINK_PORT )" | wc -l)
      (( n > max )) && { max=$n; echo "$max" >"$TMP/conns.max"; }
      sleep 0.1
  done ) &
PIDS+=($!)

log "payload: $SPANS spans/request; $N requests, $C connections x $M streams; consumers: $CONSUMERS"
T0=$(now_ms)
run_h2load export "$GW_PORT" "$N"
T1=$(now_ms)
got=0
for _ in $(seq 1200); do
    got=$(metric_sum "$SINK_ADMIN" otlp_gateway_received_spans_total 'signal="traces"')
    (( got >= WANT )) && break
    sleep 0.05
done
T2=$(now_ms)
(( got == WANT )) || die "the sink received $got spans, expected $WANT"
ok=$(metric_sum "$GW_ADMIN" otlp_gateway_requests_total 'signal="traces".*code="ok"')
[ "$ok" -eq "$N" ] || die "the sender answered OK to $ok of $N requests (queue full?)"
failed=$(metric_sum "$GW_ADMIN" otlp_gateway_export_failed_items_total '')
[ "$failed" -eq 0 ] || die "the sender failed $failed items"
attempts=$(metric_sum "$GW_ADMIN" otlp_gateway_export_duration_seconds_count 'backend="out"')
metrics=$(curl -fs "http://127.0.0.1:$GW_ADMIN/metrics")
opened=n/a
if grep -q '^otlp_gateway_export_connections_total' <<<"$metrics"; then
    opened=$(metric_sum "$GW_ADMIN" otlp_gateway_export_connections_total 'backend="out"')
fi
# Connections to the sink used during the run: open now (counted on the
# sender's side), or closed within the last minute (TIME_WAIT, on whichever
# side closed first).
used=$(( $(ss -Htan "( dport = :$SINK_PORT )" | grep -c -E '^(ESTAB|TIME-WAIT)' || true) +
         $(ss -Htan "( sport = :$SINK_PORT )" | grep -c '^TIME-WAIT' || true) ))
sleep 0.2

echo
printf 'otlp_grpc export: %d requests x %d spans, %d conns x %d streams into the sender, consumers %s, compression %s\n' \
    "$N" "$SPANS" "$C" "$M" "$CONSUMERS" "$COMPRESSION"
printf 'ingest (h2load, until the last answer):   %8.0f spans/s\n' "$(awk -v s="$WANT" -v ms=$(( T1 - T0 )) 'BEGIN { print s * 1000 / ms }')"
printf 'export (until the sink has every span):   %8.0f spans/s\n' "$(awk -v s="$WANT" -v ms=$(( T2 - T0 )) 'BEGIN { print s * 1000 / ms }')"
printf 'export requests %s, connections opened %s (sender metric), seen by ss %s (open or TIME_WAIT), most open at once %s\n' \
    "$attempts" "$opened" "$used" "$(cat "$TMP/conns.max" 2>/dev/null || echo 0)"
