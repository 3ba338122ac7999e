/* sampler_policy: the tail sampler's policies (internal to routing/).
 *
 * Policies are read from config once and shared by every shard, in either
 * shape (docs/configuration.md, "Tail sampling"): ours, flat ({name, type,
 * <settings>}), or the OpenTelemetry Collector's ({name, type, <type>:
 * {<settings>}}, sub-policies under and_sub_policy, drop_sub_policy,
 * not_sub_policy, composite_sub_policy). Both build the same policies, with
 * the Collector's decision semantics (sp_dec below).
 *
 * Per-span predicates (attribute matches, trace_state, trace_flags, and
 * latency windows over the trace so far) are evaluated when a span is added
 * and kept as bits in the trace's summary;
 * the decision then needs only the summary and the trace id. Stateful
 * policies (rate_limiting, bytes_limiting, composite) keep their budgets
 * here, guarded by the caller (sampler_decide.c holds a lock around
 * sp_decide when sp_set.stateful is set). */
#ifndef GW_SAMPLER_POLICY_H
#define GW_SAMPLER_POLICY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config_node.h"
#include "metrics.h"
#include "ottl.h"
#include "regexp.h"
#include "trace_service.pb-c.h"

/* At most this many per-span predicate policies (each owns one bit of a
 * trace's match set), and this many policies in all, nested ones included. */
#define SP_MAX_ATTR_POLICIES 64
#define SP_MAX_POLICIES 256
/* ottl_condition policies: each owns a bit of ottl_match and ottl_error. */
#define SP_MAX_OTTL_POLICIES 32

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
    SP_TRACE_STATE,
    SP_TRACE_FLAGS,
    SP_AND,
    SP_NOT,
    SP_COMPOSITE,
    SP_DROP,
    SP_OTTL,
    /* Refinery's samplers (sampler_refinery.h), in sr_kind order */
    SP_DETERMINISTIC,
    SP_RULES,
    SP_DYNAMIC,
    SP_EMA_DYNAMIC,
    SP_EMA_THROUGHPUT,
    SP_WINDOWED_THROUGHPUT,
    SP_TOTAL_THROUGHPUT,
} sp_type;

/* A policy's verdict on a trace, as the Collector's tailsamplingprocessor
 * has them: invert_match policies answer SP_INV_*, which combine differently
 * (sp_decide). SP_ERROR: the evaluation failed (an ottl_condition under
 * error_mode propagate); as the Collector's evaluation errors it passes up
 * through and, not, drop and composite unchanged and, at the top, has no say
 * in the decision (it is counted as not sampled). */
typedef enum { SP_NOT_SAMPLED, SP_SAMPLED, SP_INV_SAMPLED, SP_INV_NOT_SAMPLED, SP_DROPPED, SP_ERROR } sp_dec;

/* What a decision needs to know about a trace. */
typedef struct sp_summary {
    uint64_t min_start;  /* earliest span start (UINT64_MAX: none) */
    uint64_t max_end;    /* latest span end */
    uint64_t spans;      /* spans buffered */
    uint64_t span_bytes; /* sum of the spans' protobuf sizes */
    uint64_t attr_bits;  /* bit i: predicate policy i matched a span (or, for attributes, a resource) */
    unsigned status_mask; /* bit per status code seen: 1<<UNSET, 1<<OK, 1<<ERROR */
    /* ottl_condition policy i: bit i of ottl_match when a span or event
     * satisfied it, of ottl_error when its evaluation failed first (under
     * error_mode propagate: the policy then does not sample the trace). */
    uint32_t ottl_match, ottl_error;
    const struct sr_trace *view; /* Refinery samplers: the trace's id and spans (sp_set.view) */
} sp_summary;

typedef struct sp_policy sp_policy;
struct sp_policy {
    char *name;
    sp_type type;
    /* latency, whole milliseconds */
    uint64_t lat_lo_ms, lat_hi_ms; /* hi 0: no upper bound */
    /* status_code */
    unsigned status_mask;
    /* probabilistic: sampled when FNV-1a(salt, trace id) <= threshold;
     * prob_seed is the hash state after the salt */
    uint64_t prob_threshold, prob_seed;
    double prob_rate; /* 100 / sampling_percentage: its weight */
    /* predicates (attributes, trace_state, trace_flags) */
    int attr_bit;
    char *key; /* attribute or trace_state key */
    char **values;
    regexp **regexes; /* REGEXP_SEARCH, as the Collector's MatchString */
    size_t n_values;
    int use_regex, invert;
    int64_t min_value, max_value;
    int bool_value;
    /* span_count */
    uint64_t min_spans, max_spans; /* max 0: unbounded */
    /* composite's total */
    uint64_t spans_per_sec;
    uint64_t window_sec;
    /* rate_limiting (spans) and bytes_limiting (bytes): token bucket */
    uint64_t per_sec, burst;
    double tokens;
    uint64_t tokens_at_ns;
    int tokens_init;
    /* ottl_condition: n_span_conds span conditions, then the span event ones */
    ottl_cond **conds;
    size_t n_span_conds, n_event_conds;
    ottl_error_mode ottl_mode;
    /* and, drop, not (one sub), composite */
    sp_policy *subs;
    size_t n_subs;
    uint64_t *alloc;   /* composite: spans/s each sub may sample */
    uint64_t *used;    /* composite: spans sampled by each sub this second */
    /* Refinery samplers: their state, and the rate of their last decision */
    struct sr_policy *refinery;
    double last_rate;
    int last_sub; /* composite: the sub-policy that last sampled */
    /* top level only: decisions by outcome */
    _Atomic uint64_t n_sampled, n_not_sampled, n_kept; /* kept: traces this policy was first to sample */
    metric_series *m_sampled, *m_not_sampled, *m_kept;
};

typedef struct sp_set {
    sp_policy *top; /* top-level policies, config order */
    size_t n_top;
    sp_policy *attr[SP_MAX_ATTR_POLICIES]; /* predicate policies by bit */
    size_t n_attr;
    sp_policy *ottl[SP_MAX_OTTL_POLICIES]; /* ottl_condition policies by bit */
    size_t n_ottl;
    int stateful; /* some policy keeps budgets: serialize sp_decide */
    int first_match; /* sample_on_first_match */
    int view;     /* 1: Refinery samplers need sp_summary.view with the id; 2: and the spans */
} sp_set;

/* Read `policies:` (a sequence) into set, in the Collector's shape when
 * upstream is set. -1 with a located error. */
int sp_set_read(sp_set *set, const config_node *seq, int upstream, char *err, size_t errlen);
void sp_set_free(sp_set *set);

/* The attribute-policy bits a resource's attributes match. */
uint64_t sp_attr_bits(const sp_set *set, Opentelemetry__Proto__Common__V1__KeyValue *const *attrs, size_t n);
/* The predicate-policy bits a span matches (attributes, trace_state, flags). */
/* 1 when a policy reads span or resource fields at add time beyond the
 * summary's (attribute, trace_state, trace_flags and ottl_condition
 * policies; latency is computed from the summary). */
int sp_reads_spans(const sp_set *set);
uint64_t sp_span_bits(const sp_set *set, const Opentelemetry__Proto__Trace__V1__Span *span);
/* The bits of latency policies with an upper bound that the trace's
 * duration so far falls in: OR them in after each span's summary update. */
uint64_t sp_summary_bits(const sp_set *set, const sp_summary *t);

/* Evaluate the ottl_condition policies on one span of a trace and its
 * events, in arrival order: a policy already matched or failed on an earlier
 * span is not evaluated again (upstream walks the spans in that order and
 * stops at the first match or error). resource and scope may be NULL. */
void sp_ottl_span(const sp_set *set, sp_summary *t, const Opentelemetry__Proto__Resource__V1__Resource *resource,
                  const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                  const Opentelemetry__Proto__Trace__V1__Span *span);

/* Decide a trace, as the Collector does: drop policies first (a match
 * drops); then the others in order (stopping at the first that samples
 * with sample_on_first_match); any invert_match veto (SP_INV_NOT_SAMPLED)
 * drops; else any SP_SAMPLED samples; else an SP_INV_SAMPLED samples when
 * no policy said SP_NOT_SAMPLED. Returns 1 to sample; *who is the index of
 * the top-level policy that decided (the first that sampled, else the
 * first invert that sampled, or the drop that dropped), -1 if none.
 * Counts each evaluated top-level policy's outcome. w->rate is the sample
 * rate the trace is kept at (its weight): the least of the rates of the
 * policies that sampled it (1 for policies without one: always_sample,
 * latency, attributes, rate limits, ...; 100/percentage for probabilistic;
 * the chosen rate for Refinery samplers; the product of the subs' for and;
 * the sampling sub-policy's for composite). */
typedef struct sp_weight {
    double rate;               /* the sample rate the trace is kept at */
    const char *composite_sub; /* who is a composite: the sub-policy that sampled (else NULL) */
} sp_weight;
int sp_decide(sp_set *set, const uint8_t trace_id[16], const sp_summary *t, uint64_t now_ns, int *who,
              sp_weight *w);

/* The value of `key` in a W3C tracestate list (*vlen its length), NULL when
 * absent or when the list is not valid (as Go's ParseTraceState decides,
 * which the Collector uses: then no key matches). */
const char *sp_tracestate_get(const char *tracestate, const char *key, size_t *vlen);

/* The probabilistic policy's threshold for a ratio (0..1): a trace is
 * sampled when FNV-1a 64(salt, trace id) <= it. */
uint64_t sp_prob_threshold(double ratio);

/* FNV-1a 64 over the 16 bytes, then the murmur3 64-bit finalizer so every
 * bit depends on every input byte (sequential ids spread evenly). */
uint64_t sp_trace_hash(const uint8_t id[16]);

#endif
