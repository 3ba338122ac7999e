/* sampler: tail-based sampling of traces for one pipeline.
 *
 * Spans are held per trace until a decision: `decision_wait` after the
 * trace's first span, or earlier once its root span (no parent) has arrived
 * and the trace has been quiet for `quiet_after`. Policies are the
 * OpenTelemetry Collector's set; any `drop` verdict drops, else any `sample`
 * samples, else the trace is dropped. Memory is bounded in bytes: when full,
 * the oldest traces are decided early (counted as evictions), never silently
 * lost. Decided trace ids are remembered in sampled/not-sampled caches so
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

typedef struct sampler sampler;

/* Build from a `sampling:` policy-set node (see docs/configuration.md):
 *   { decision_wait: 10s, quiet_after: 2s, max_bytes: 256MiB, max_traces: 200000,
 *     sampled_cache: 100000, not_sampled_cache: 100000, record_policy: true,
 *     policies: [ {name, type, ...}, ... ] }
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

/* Decide every trace of `shard` that is due at now_ns (or over the memory
 * budget); for each sampled trace, call emit with an encoded
 * ExportTraceServiceRequest holding all its buffered spans (resource and
 * scope grouping preserved) and the tenant it came with. Returns the number
 * of traces decided during this call (traces decided early by sampler_add's
 * memory budget are emitted here but were counted there). */
typedef void (*sampler_emit_fn)(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans);
size_t sampler_tick(sampler *s, size_t shard, uint64_t now_ns, sampler_emit_fn emit, void *data);

/* emit runs with the shard's lock held: it must not call back into the
 * sampler for the same shard. `req` is valid only during the call. */

/* Decide everything now (shutdown). */
size_t sampler_flush(sampler *s, size_t shard, uint64_t now_ns, sampler_emit_fn emit, void *data);

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
    uint64_t evicted_max_traces;  /* of evicted_early: for max_traces (the rest for max_bytes) */
    uint64_t spans_sampled, spans_dropped; /* buffered spans by decision (late spans not included) */
    uint64_t decision_latency_ns_sum, decision_latency_ns_max; /* first span to decision, over decided traces */
    uint64_t spans_lost_oom;      /* sampled spans that could not be encoded for lack of memory (logged) */
    uint64_t released, spans_released; /* undecided traces (and their spans) handed to another member */
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
