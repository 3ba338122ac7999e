/* sampler_refinery: Honeycomb Refinery's samplers as tail-sampling policies
 * (internal to routing/): deterministic, rules, dynamic, ema_dynamic,
 * ema_throughput, windowed_throughput and total_throughput.
 *
 * Each one picks a sample rate N for a trace (keep about 1 in N) and keeps
 * or drops it; sp_decide reports the rate so kept spans can carry it as
 * their weight. The per-key samplers follow dynsampler-go's arithmetic
 * (key counts, log10 allocation, EMA, windows) with time taken from the
 * decision's now_ns, so tests drive the clock; their periodic updates run
 * lazily at the first decision after they fall due. Random choices
 * (keep 1 in N) are a hash of the trace id and the policy name, so a
 * decision is reproducible and the same on every cluster member.
 * Not thread-safe: the policy lock serializes sr_eval (sp_set.stateful). */
#ifndef GW_SAMPLER_REFINERY_H
#define GW_SAMPLER_REFINERY_H

#include <stddef.h>
#include <stdint.h>

#include "config_node.h"
#include "trace_service.pb-c.h"

typedef enum {
    SR_DETERMINISTIC,
    SR_RULES,
    SR_DYNAMIC,
    SR_EMA_DYNAMIC,
    SR_EMA_THROUGHPUT,
    SR_WINDOWED_THROUGHPUT,
    SR_TOTAL_THROUGHPUT,
} sr_kind;

/* Keys each kind accepts besides name and type (NULL-terminated). */
extern const char *const sr_keys_deterministic[], *const sr_keys_rules[], *const sr_keys_dynamic[],
    *const sr_keys_ema_dynamic[], *const sr_keys_ema_throughput[], *const sr_keys_windowed[],
    *const sr_keys_total[];

/* One span of a trace being decided, with its resource (may be NULL). */
typedef struct sr_span {
    const Opentelemetry__Proto__Trace__V1__Span *span;
    const Opentelemetry__Proto__Resource__V1__Resource *resource;
} sr_span;

/* A trace as the samplers see it: its id and, when some policy reads span
 * fields (sr_needs_spans), its decoded spans. */
typedef struct sr_trace {
    uint8_t id[16];
    const sr_span *spans;
    size_t n_spans;
    const sr_span *root; /* the span without a parent; NULL when none arrived */
    uint64_t span_count; /* spans buffered (also when not decoded) */
} sr_trace;

typedef struct sr_policy sr_policy;

/* Read a policy of `kind` from its settings node; `name` salts its random
 * choices. NULL with a located error (or "out of memory") in err. */
sr_policy *sr_read(sr_kind kind, const char *name, const config_node *n, char *err, size_t errlen);
void sr_free(sr_policy *p);

/* Whether deciding needs the trace's spans decoded (rules, key fields). */
int sr_needs_spans(const sr_policy *p);

/* Decide trace t at now_ns: 1 to keep; *rate the sample rate chosen (>= 1). */
int sr_eval(sr_policy *p, const sr_trace *t, uint64_t now_ns, double *rate);

/* Refinery's deterministic rule, exposed for its test vectors: keep when the
 * first 4 bytes (big-endian) of SHA-1(id + salt) are at most 2^32-1 / rate;
 * id is the trace id as Refinery writes it (sr_trace_id_string). */
int sr_deterministic_keep(const char *id, size_t len, uint32_t rate);

/* The trace id as Refinery's OTLP intake spells it: lowercase hex, the
 * upper 8 bytes left out when all zero. out needs 33 bytes; returns the length. */
size_t sr_trace_id_string(const uint8_t id[16], char out[33]);

/* The dynamic sampler's update (dynsampler-go's AvgSampleRate), for tests:
 * the rate of key i in rates[i] after an interval with counts[i] events per
 * key (keys in any order). */
void sr_avg_rates(uint32_t goal_rate, const char *const *keys, const double *counts, size_t n, uint32_t *rates);

/* The rate a sampler holds for `key` right now, without counting anything
 * (tests and introspection); 0 when the key has none. */
uint32_t sr_key_rate(const sr_policy *p, const char *key);

/* The sample key the per-key samplers would use for t ("" for others). */
const char *sr_trace_key(sr_policy *p, const sr_trace *t);

#endif
