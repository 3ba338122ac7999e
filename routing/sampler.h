/* sampler: tail-based sampling of traces for one pipeline.
 *
 * Spans are held per trace until a decision: `decision_wait` after the
 * trace's first span, or earlier once its root span (no parent) has arrived
 * and the trace has been quiet for `quiet_after` (or
 * `decision_wait_after_root_received` after the root), or at once when it
 * outgrows the per-trace cap. Policies are the OpenTelemetry Collector's
 * set, with its decision rules (sampler_policy.h, sp_decide). Memory is
 * bounded in bytes: when full, the oldest traces are decided early (counted
 * as evictions), never silently lost. Decided trace ids are remembered in sampled/not-sampled caches so
 * late spans follow the decision.
 *
 * A sampler is a set of shards; a trace belongs to shard hash(trace_id) %
 * n_shards, and each shard is used by one thread at a time (the caller routes
 * spans to the shard's owner), so the hot path takes only that shard's lock.
 * Time comes from the caller (now_ns arguments): tests drive the clock. */
#ifndef GW_SAMPLER_H
#define GW_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "config_node.h"
#include "otlp.h"
#include "otlp_wire.h"

typedef struct sampler sampler;

/* Build from a `sampling:` policy-set node (see docs/configuration.md), flat:
 *   { decision_wait: 30s, quiet_after: 2s, max_bytes: 256MiB, max_traces: 200000,
 *     sampled_cache: 100000, not_sampled_cache: 100000, record_policy: true,
 *     policies: [ {name, type, ...}, ... ] }
 * or the Collector's processor block under `tail_sampling:` (our max_bytes,
 * record_policy, max_trace_spans, quiet_after beside it):
 *   { max_bytes: 256MiB, tail_sampling: {decision_wait: 30s, num_traces: 50000,
 *     policies: [ {name, type, <type>: {...}}, ... ]} }
 * NULL with a located config error. */
sampler *sampler_new(const config_node *n, size_t n_shards, char *err, size_t errlen);
void sampler_free(sampler *s);

size_t sampler_shard_of(const sampler *s, const uint8_t trace_id[16]);

/* Hand over the spans of one decoded request (signal traces) that belong to
 * `shard`: spans of traces already decided follow the cached decision
 * immediately (appended to *late_out as an encoded ExportTraceServiceRequest
 * when sampled); others are copied into the shard's buffers. Returns the
 * number of spans buffered. `tenant` (NULL: "") is part of a trace's
 * identity: the same trace id from two tenants is two traces.
 * The memory budget is enforced after the request's spans are copied, by
 * deciding the oldest traces early; sampled ones wait (still counted in
 * bytes_held) for the next sampler_tick, so call sampler_tick after
 * sampler_add (it is cheap when nothing is due). The input is not modified. */
size_t sampler_add(sampler *s, size_t shard, const ProtobufCMessage *export_trace_request, const char *tenant,
                   uint64_t now_ns, buf *late_out);

/* The same from the request's encoded bytes, which otlp_wire_scan accepted,
 * without decoding them: spans are kept as they came instead of encoded
 * again. Only for a sampler whose policies read no span or resource field
 * beyond the trace id, times, parent and status (sampler_wire_ok: no
 * attribute, trace_state, trace_flags or ottl_condition policy); else it
 * takes nothing and returns 0. spans: what that scan noted of the n_spans
 * spans of these bytes, which are then not read again (NULL: they are). */
size_t sampler_add_wire(sampler *s, size_t shard, const uint8_t *req, size_t len, const otlp_wire_span *spans,
                        size_t n_spans, const char *tenant, uint64_t now_ns, buf *late_out);
int sampler_wire_ok(const sampler *s);
/* has[sampler_shard_of(id)] = 1 for every span's trace id in the encoded
 * request (has: one byte per shard, set by the caller); spans as for
 * sampler_add_wire. */
void sampler_shards_wire(const sampler *s, const uint8_t *req, size_t len, const otlp_wire_span *spans,
                         size_t n_spans, uint8_t *has);

/* Decide every trace of `shard` that is due at now_ns (or over the memory
 * budget), then hand each sampled trace to emit as an encoded
 * ExportTraceServiceRequest holding all its buffered spans (resource and
 * scope grouping preserved) with the tenant it came with. Returns the
 * number of traces decided during this call (traces decided early by
 * sampler_add's memory budget are emitted here but were counted there).
 *
 * Delivery is tracked per destination (see sampler_set_destinations; bit j
 * of a mask is destination j). emit gets the trace's `done` mask (kept by
 * the sampler, 0 at first) and this pass's `full` mask: it must not try
 * the destinations in *full, sets in *done each destination that took the
 * trace (or refused it for good), and in *full each one that had no room.
 * It returns 0 once every destination is done: the trace is freed. Else
 * the trace is held (still counted in bytes_held, in order) and offered
 * again, to the destinations not done, on later ticks; a held trace whose
 * pending destinations are all in this pass's *full is not even encoded.
 * Nothing sampled is dropped for lack of room; see sampler_full. */
typedef int (*sampler_emit_fn)(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans,
                               uint64_t *done, uint64_t *full);
size_t sampler_tick(sampler *s, size_t shard, uint64_t now_ns, sampler_emit_fn emit, void *data);

/* emit runs with the shard's lock held: it must not call back into the
 * sampler for the same shard. `req` is valid only during the call. */

/* How many destinations emit delivers to (1..64; default 1). Call once,
 * before the sampler is used. */
void sampler_set_destinations(sampler *s, unsigned n);

/* Spans of a sampled trace that the caller could not deliver at once (late
 * spans of a decided trace: `req` an encoded ExportTraceServiceRequest of
 * `spans` spans, `done` the destinations that already have them): held and
 * offered again like a held trace. 0, or -1 without memory. */
int sampler_hold(sampler *s, size_t shard, const char *tenant, const uint8_t *req, size_t len, size_t spans,
                 uint64_t done);

/* 1 when `shard` is over its memory budget while sampled traces wait there
 * for destination room: new spans for it must be refused (the client gets
 * a retryable answer) rather than anything acknowledged being dropped.
 * With block_on_overflow, also whenever the shard is at max_traces or
 * max_bytes (rather than deciding its oldest traces early). */
int sampler_full(sampler *s, size_t shard);

/* Decide everything now (shutdown) and offer every sampled trace once;
 * those no destination had room for stay held (see sampler_held). */
size_t sampler_flush(sampler *s, size_t shard, uint64_t now_ns, sampler_emit_fn emit, void *data);

/* Sampled traces of `shard` held for destination room, and their spans. */
size_t sampler_held(sampler *s, size_t shard, uint64_t *spans);

/* Shutdown, after the wait for room ran out: free the held traces of
 * `shard`; returns how many, their spans in *spans (for the caller to
 * count and log as lost). */
size_t sampler_abandon(sampler *s, size_t shard, uint64_t *spans);

/* Cluster ownership moved (a member joined or left, or this one is
 * stopping): hand over the undecided traces of `shard` that keep(data,
 * trace_id) says are no longer ours (NULL keep: all of them). give(data,
 * trace_id, tenant, req, len, spans) gets each one's buffered spans as an encoded
 * ExportTraceServiceRequest (resource and scope grouping kept, no policy
 * attribute) and its trace id; when it returns 0 the trace leaves the sampler undecided and
 * no decision is remembered for it, else it stays and is decided here as
 * usual. Both run with the shard's lock held (as emit does). Returns the
 * number of traces handed over. */
typedef int (*sampler_keep_fn)(void *data, const uint8_t trace_id[16]);
typedef int (*sampler_give_fn)(void *data, const uint8_t trace_id[16], const char *tenant, const uint8_t *req,
                               size_t len, size_t spans);
size_t sampler_release(sampler *s, size_t shard, sampler_keep_fn keep, sampler_give_fn give, void *data);

typedef struct sampler_stats {
    uint64_t traces_in_flight, bytes_held;
    uint64_t sampled, dropped, evicted_early, late_spans_sampled, late_spans_dropped;
    /* Added with the implementation (the fields above keep their meaning):
     * traces_in_flight counts undecided traces; bytes_held is the accounted
     * memory of every buffered trace (undecided, or sampled and waiting for
     * the next sampler_tick) plus shared resource/scope encodings. */
    uint64_t spans_buffered;      /* spans copied into the buffers */
    uint64_t spans_held;          /* spans currently buffered */
    uint64_t wire_bytes_held;     /* protobuf size of the spans held */
    uint64_t decided_wait;        /* traces decided at decision_wait */
    uint64_t decided_quiet;       /* decided early: root seen and quiet_after elapsed */
    uint64_t decided_flush;       /* decided by sampler_flush */
    uint64_t decided_oversize;    /* decided early: over max_trace_spans / max_trace_bytes (or dropped: maximum_trace_size_bytes) */
    uint64_t evicted_max_traces;  /* of evicted_early: for max_traces (the rest for max_bytes) */
    uint64_t spans_sampled, spans_dropped; /* buffered spans by decision (late spans not included) */
    uint64_t decision_latency_ns_sum, decision_latency_ns_max; /* first span to decision, over decided traces */
    uint64_t spans_lost_oom;      /* sampled spans that could not be encoded for lack of memory (logged) */
    uint64_t released, spans_released; /* undecided traces (and their spans) handed to another member */
    uint64_t held_traces, held_bytes;  /* sampled, waiting for destination room (in bytes_held too) */
    uint64_t abandoned, spans_abandoned; /* held traces freed by sampler_abandon */
    uint64_t slab_bytes; /* memory of the shards' slabs (trace records, segments): blocks in use or spare */
} sampler_stats;
void sampler_get_stats(sampler *s, sampler_stats *out);

/* Decisions of top-level policy i (config order), 0 <= i < sampler_policy_count.
 * `sampled`/`not_sampled` count each evaluation's outcome (for a drop policy,
 * "sampled" means it matched and dropped the trace); `kept` counts traces this
 * policy was the first to sample (the one record_policy names). Returns the
 * policy name, NULL past the end. */
size_t sampler_policy_count(const sampler *s);
const char *sampler_policy_stats(const sampler *s, size_t i, uint64_t *sampled, uint64_t *not_sampled,
                                 uint64_t *kept);

/* Optional: publish Prometheus metrics labelled pipeline="<pipeline>"
 * (otlp_gateway_sampler_*; see docs/configuration.md, "Tail sampling").
 * Call once, before the sampler is used. */
void sampler_set_metrics(sampler *s, const char *pipeline);

#endif
