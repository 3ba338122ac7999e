/* sampler_policy: the tail sampler's policies (internal to routing/).
 *
 * Policies are read from config once and shared by every shard. Per-span
 * predicates (attribute matches) are evaluated when a span is added and kept
 * as bits in the trace's summary; the decision then needs only the summary.
 * Stateful policies (rate_limiting, bytes_limiting, composite) keep their
 * budgets here, guarded by the caller (sampler.c holds a lock around
 * sp_decide when sp_set.stateful is set). */
#ifndef GW_SAMPLER_POLICY_H
#define GW_SAMPLER_POLICY_H

#include <regex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config_node.h"
#include "metrics.h"
#include "trace_service.pb-c.h"

/* At most this many attribute policies (each owns one bit of a trace's
 * match set), and this many policies in all, nested ones included. */
#define SP_MAX_ATTR_POLICIES 64
#define SP_MAX_POLICIES 256

typedef enum {
    SP_ALWAYS,
    SP_LATENCY,
    SP_STATUS,
    SP_PROBABILISTIC,
    SP_STRING,
    SP_NUMERIC,
    SP_BOOLEAN,
    SP_SPAN_COUNT,
    SP_RATE,
    SP_BYTES,
    SP_AND,
    SP_COMPOSITE,
    SP_DROP,
    /* Refinery's samplers (sampler_refinery.h), in sr_kind order */
    SP_DETERMINISTIC,
    SP_RULES,
    SP_DYNAMIC,
    SP_EMA_DYNAMIC,
    SP_EMA_THROUGHPUT,
    SP_WINDOWED_THROUGHPUT,
    SP_TOTAL_THROUGHPUT,
} sp_type;

/* What a decision needs to know about a trace. */
typedef struct sp_summary {
    uint64_t id_hash;    /* sp_trace_hash(trace_id): probabilistic */
    uint64_t min_start;  /* earliest span start (UINT64_MAX: none) */
    uint64_t max_end;    /* latest span end */
    uint64_t spans;      /* spans buffered */
    uint64_t span_bytes; /* sum of the spans' protobuf sizes */
    uint64_t attr_bits;  /* bit i: attribute policy i matched a span or resource */
    unsigned status_mask; /* bit per status code seen: 1<<UNSET, 1<<OK, 1<<ERROR */
    const struct sr_trace *view; /* Refinery samplers: the trace's id and spans (sp_set.view) */
} sp_summary;

typedef struct sp_policy sp_policy;
struct sp_policy {
    char *name;
    sp_type type;
    /* latency */
    uint64_t lat_lo_ns, lat_hi_ns; /* hi 0: no upper bound */
    /* status_code */
    unsigned status_mask;
    /* probabilistic: sampled when hash < threshold, or always when all */
    uint64_t prob_threshold;
    int prob_all;
    double prob_rate; /* 100 / sampling_percentage */
    /* attributes */
    int attr_bit;
    char *key;
    char **values;
    regex_t *regexes;
    size_t n_values;
    int use_regex, invert;
    int64_t min_value, max_value;
    int bool_value;
    /* span_count */
    uint64_t min_spans, max_spans; /* max 0: unbounded */
    /* rate_limiting; composite's total */
    uint64_t spans_per_sec;
    uint64_t window_sec, window_used;
    /* bytes_limiting (token bucket) */
    uint64_t bytes_per_sec, burst;
    double tokens;
    uint64_t tokens_at_ns;
    int tokens_init;
    /* and, drop, composite */
    sp_policy *subs;
    size_t n_subs;
    size_t *order;     /* composite: evaluation order (indexes into subs) */
    uint64_t *alloc;   /* composite: spans/s each sub may sample */
    uint64_t *used;    /* composite: spans sampled by each sub this second */
    /* Refinery samplers: their state, and the rate of their last decision */
    struct sr_policy *refinery;
    double last_rate;
    /* top level only: decisions by outcome */
    _Atomic uint64_t n_sampled, n_not_sampled, n_kept; /* kept: traces this policy was first to sample */
    metric_series *m_sampled, *m_not_sampled, *m_kept;
};

typedef struct sp_set {
    sp_policy *top; /* top-level policies, config order */
    size_t n_top;
    sp_policy *attr[SP_MAX_ATTR_POLICIES]; /* attribute policies by bit */
    size_t n_attr;
    int stateful; /* some policy keeps budgets: serialize sp_decide */
    int view;     /* 1: Refinery samplers need sp_summary.view with the id; 2: and the spans */
} sp_set;

/* Read `policies:` (a sequence) into set. -1 with a located error. */
int sp_set_read(sp_set *set, const config_node *seq, char *err, size_t errlen);
void sp_set_free(sp_set *set);

/* The attribute-policy bits a list of attributes (a span's or a resource's) matches. */
uint64_t sp_attr_bits(const sp_set *set, Opentelemetry__Proto__Common__V1__KeyValue *const *attrs, size_t n);

/* Decide a trace. Returns 1 to sample; *who is the index of the first
 * top-level policy that sampled (or that dropped, for a drop), -1 if none.
 * Counts each top-level policy's outcome. *rate is the sample rate the
 * trace is kept at (its weight): the least of the sampling policies' rates
 * (1 for policies without one: always_sample, latency, attributes, rate
 * limits; 100/percentage for probabilistic; the chosen rate for Refinery
 * samplers; the product of the subs' for and). */
int sp_decide(sp_set *set, const sp_summary *t, uint64_t now_ns, int *who, double *rate);

/* FNV-1a 64 over the 16 bytes, then the murmur3 64-bit finalizer so every
 * bit depends on every input byte (sequential ids spread evenly). */
uint64_t sp_trace_hash(const uint8_t id[16]);

#endif
