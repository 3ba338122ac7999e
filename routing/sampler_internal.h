/* sampler_internal: the sampler's private types, shared by sampler.c (the
 * buffering and decisions) and sampler_metrics.c (stats and metrics). Not
 * for use outside routing/sampler*.c. */
#ifndef GW_SAMPLER_INTERNAL_H
#define GW_SAMPLER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "sampler.h"
#include "sampler_policy.h"

/* ---- interned resource / scope encodings ---- */

typedef struct blob blob;
struct blob {
    blob *hnext;
    blob *parent; /* scope: its resource */
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    uint8_t data[];
};

/* ---- buffered traces ---- */

typedef struct seg seg;
struct seg {
    seg *next;
    blob *scope;
    uint32_t n_spans;
    uint32_t len; /* bytes used in data */
    uint8_t data[]; /* spans, each framed as ScopeSpans field 2 */
};

typedef struct tenant_name tenant_name;
struct tenant_name {
    tenant_name *next;
    uint64_t hash;
    char name[];
};

typedef struct trace trace;
struct trace {
    trace *hnext;
    trace *prev, *next;     /* fifo by first span; the ready list once sampled */
    trace *qprev, *qnext;   /* quiet list (root seen) by last span */
    uint8_t id[16];
    const tenant_name *tenant;
    uint64_t key;           /* id hash mixed with the tenant: tables and caches */
    uint64_t first_ns, last_ns;
    sp_summary sum;
    seg *segs, *seg_tail;
    seg *pending;           /* during sampler_add: this request's segment */
    size_t pending_len;
    uint32_t pending_n;
    size_t mem;             /* accounted bytes of trace + segments */
    int in_quiet;
    int who;                /* deciding policy once sampled */
    uint64_t done;          /* sampled: destinations that have it (sampler_emit_fn) */
    uint8_t *raw;           /* sampler_hold: the encoded request, instead of segs */
    size_t raw_len;
};

/* Set-associative cache of decided trace keys: each key maps to one set of
 * CACHE_WAYS slots, replaced round-robin within the set (FIFO per set). 9
 * bytes per entry. */
typedef struct dcache {
    uint64_t *keys; /* 0: empty */
    uint8_t *pol;   /* deciding policy + 1 (0: none) */
    uint8_t *hand;
    size_t nsets;
} dcache;

typedef struct shard_stats {
    uint64_t sampled, dropped, evicted, evicted_traces, late_sampled, late_dropped, buffered, decided_wait,
        decided_quiet, decided_flush, spans_sampled, spans_dropped, lat_sum, lat_max, lost_oom, released,
        spans_released, abandoned, spans_abandoned;
} shard_stats;

typedef struct shard {
    pthread_mutex_t lock;
    trace **tab;
    size_t tab_size, n_traces;
    trace fifo;  /* sentinel: undecided traces by first span */
    trace quiet; /* sentinel: undecided traces with a root, by last span */
    trace *ready, *ready_tail; /* sampled, waiting for emit (or held for room) */
    size_t n_ready, ready_bytes, ready_spans;
    size_t held_pub;           /* n_ready after the last emit pass, as published */
    blob **btab;
    size_t btab_size, n_blobs;
    tenant_name *tenants;
    dcache sampled, not_sampled;
    size_t bytes;      /* accounted memory held */
    uint64_t spans_held, wire_held;
    shard_stats st;
    /* scratch, reused */
    trace **span_trace;
    uint32_t *span_size;
    int16_t *span_late; /* 0: none; >0: late sampled, policy + 1 (1 = unknown); -1: late dropped */
    size_t span_cap;
    uint8_t *pack;
    size_t pack_cap;
    buf out, late_rs, late_ss;
    blob **groups;
    size_t *group_len;
    size_t group_cap;
} shard;

struct sampler {
    uint64_t wait_ns, quiet_ns;
    size_t max_bytes, max_traces; /* per shard */
    uint64_t dest_mask;           /* sampler_set_destinations */
    int record_policy;
    sp_set pol;
    pthread_mutex_t pol_lock;
    size_t n_shards;
    shard *shards;
    /* "sampling.policy" KeyValue per top-level policy, framed as Span field 9 */
    uint8_t **attr_enc;
    size_t *attr_len;
    struct {
        metric_series *in_flight, *bytes, *late_sampled, *late_dropped, *evicted, *latency, *held;
        metric_series *traces[2][4]; /* [sampled][reason] */
    } m;
};

enum { R_WAIT, R_QUIET, R_EVICT, R_FLUSH };

#endif
