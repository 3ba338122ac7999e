/* sampler_internal: the sampler's private types and the functions its files
 * share. sampler.c (config, lifecycle), sampler_store.c (accounting, trace
 * table, decision caches, interned resources/scopes), sampler_add.c (taking
 * spans in), sampler_decide.c (deciding, encoding and emitting, holding) and
 * sampler_metrics.c (stats and metrics). Not for use outside
 * routing/sampler*.c. */
#ifndef GW_SAMPLER_INTERNAL_H
#define GW_SAMPLER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "sampler.h"
#include "sampler_policy.h"
#include "sampler_refinery.h"
#include "sampler_weight.h"
#include "slab.h"
#include "trace_service.pb-c.h"

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
    uint32_t len; /* bytes of data: made for exactly its spans, so also its size (sm_seg_size) */
    uint8_t data[]; /* spans, each framed as ScopeSpans field 2 */
};

/* What a segment of len bytes of spans takes from the shard's slab. */
static inline size_t sm_seg_size(size_t len) { return sizeof(seg) + len; }

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
    uint64_t qkey_ns;       /* order on the quiet list (sampler_add.c, quiet_update) */
    uint8_t in_quiet;
    uint8_t oversize;       /* over max_trace_spans / max_trace_bytes: decided at the end of sampler_add */
    int who;                /* deciding policy once sampled */
    double rate;            /* sampled: the sample rate it was kept at (its weight) */
    const char *composite_sub; /* sampled by a composite: its sub-policy that did (record_policy) */
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
    float *rate; /* sample rate per entry, when spans carry weights (NULL: not kept) */
    size_t nsets;
} dcache;

typedef struct shard_stats {
    uint64_t sampled, dropped, evicted, evicted_traces, late_sampled, late_dropped, buffered, decided_wait,
        decided_quiet, decided_flush, decided_oversize, spans_sampled, spans_dropped, lat_sum, lat_max, lost_oom, released,
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
    trace **over;      /* during sampler_add: traces that went over the per-trace cap */
    size_t n_over, over_cap;
    slab mem;          /* traces and their segments */
    size_t bytes;      /* accounted memory held */
    size_t bytes_pub, live_pub; /* bytes and n_traces + n_ready as the gauges last had them (sm_shard_leave) */
    uint64_t spans_held, wire_held;
    shard_stats st;
    /* scratch, reused */
    trace **span_trace;
    uint32_t *span_size;
    int16_t *span_late; /* 0: none; >0: late sampled, policy + 1 (1 = unknown); -1: late dropped */
    double *span_rate;  /* late sampled: the trace's sample rate */
    uint64_t *span_key; /* the span's trace key (trace->key) */
    size_t span_cap;
    void *span_in; /* sampler_add.c's span_in array */
    size_t span_in_cap;
    buf wire_res, wire_scope; /* sampler_add_wire: the context fields of the resource and scope */
    uint8_t *pack;
    size_t pack_cap;
    buf out, late_rs, late_ss, kv; /* kv: a sampled trace's scope attributes */
    blob **groups;
    size_t *group_len;
    size_t group_cap;
} shard;

/* Why a trace was decided (sampler_decide.c; metric label reason=). */
enum { R_WAIT, R_QUIET, R_EVICT, R_FLUSH, R_OVERSIZE, R_COUNT };

struct sampler {
    uint64_t wait_ns, quiet_ns;
    int quiet_root;               /* quiet_ns counts from the root's arrival, not the last span */
    size_t max_bytes, max_traces; /* per shard */
    uint64_t max_trace_spans, max_trace_bytes; /* per trace, 0: none */
    int oversize_drop;            /* a trace over them is dropped, not decided by the policies */
    int block;                    /* block_on_overflow: full at max_traces too (sampler_full) */
    uint64_t dest_mask;           /* sampler_set_destinations */
    int record_policy;
    sp_set pol;
    pthread_mutex_t pol_lock;
    size_t n_shards;
    shard *shards;
    sw_opts weight; /* sample_rate_attribute, trace_state_threshold */
    /* record_policy: "tailsampling.policy" KeyValue per top-level policy and
     * "tailsampling.cached_decision", framed as InstrumentationScope field 3 */
    uint8_t **attr_enc;
    size_t *attr_len;
    uint8_t *cached_kv;
    size_t cached_len;
    struct {
        metric_series *in_flight, *bytes, *late_sampled, *late_dropped, *evicted, *latency, *held;
        metric_series *traces[2][R_COUNT]; /* [sampled][reason] */
    } m;
};

#define MALLOC_OVERHEAD 16 /* allowance per malloc'ed allocation for the allocator's header */
#define CACHE_WAYS 8
#define NO_QUIET UINT64_MAX
#define POLICY_ATTR_KEY "tailsampling.policy" /* the Collector's names (record_policy) */
#define CACHED_ATTR_KEY "tailsampling.cached_decision"
#define COMPOSITE_ATTR_KEY "tailsampling.composite_policy"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest export_req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

/* ---- protobuf framing ---- */

static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* tag + length + payload of a length-delimited field */
static inline size_t field_len(size_t payload) { return 1 + varint_len(payload) + payload; }

static inline uint8_t *put_field_hdr(uint8_t *p, unsigned field, size_t payload)
{
    *p++ = (uint8_t)(field << 3 | 2);
    return put_varint(p, payload);
}

static inline const uint8_t *get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; p < end && shift < 64; shift += 7) {
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return p;
        }
    }
    return NULL;
}

/* One field of encoded bytes: its number and wire type, the whole field
 * [start, end), a length-delimited field's payload, and a varint's or a
 * fixed field's value in v. */
typedef struct sm_field {
    unsigned num, wt;
    const uint8_t *start, *payload, *end;
    size_t plen;
    uint64_t v;
} sm_field;

/* Any field (sampler_store.c); sm_next_field's general case. */
int sm_next_field_any(const uint8_t **p, const uint8_t *end, sm_field *f);

/* The field at *p (then *p moves past it), or 0 at the end or on bytes that
 * do not parse. Every span's fields are read this way as it comes in, so
 * the common shapes (a one-byte tag with a one-byte length, a fixed64 or a
 * one-byte varint) are read inline, the rest by sm_next_field_any with the
 * same result. Inline, the caller's sm_field lives in registers: through a
 * call, its num and wt, stored apart and compared together, cost a failed
 * store-to-load forwarding per field (most of span_in_wire's time). */
static inline int sm_next_field(const uint8_t **p, const uint8_t *end, sm_field *f)
{
    const uint8_t *q = *p;
    if (end - q >= 2 && q[0] < 0x80) {
        unsigned wt = q[0] & 7;
        size_t rest = (size_t)(end - q) - 2, n = 0;
        if (wt == 2 && q[1] < 0x80 && q[1] <= rest) {
            f->payload = q + 2;
            f->plen = f->v = q[1];
            n = 2 + q[1];
        } else if (wt == 0 && q[1] < 0x80) {
            f->payload = q + 1;
            f->plen = 0;
            f->v = q[1];
            n = 2;
        } else if (wt == 1 && rest >= 7) {
            f->payload = q + 1;
            f->plen = 0;
            f->v = 0;
            for (unsigned i = 0; i < 8; i++)
                f->v |= (uint64_t)q[1 + i] << (8 * i);
            n = 9;
        }
        if (n != 0) {
            f->num = q[0] >> 3;
            f->wt = wt;
            f->start = q;
            f->end = *p = q + n;
            return 1;
        }
    }
    sm_field g; /* not f: its address would keep f in memory */
    if (!sm_next_field_any(p, end, &g))
        return 0;
    *f = g;
    return 1;
}

/* ---- sampler_store.c: accounting, tables, caches, interning, lists ---- */

/* Accounted memory: the bytes gauge follows at sm_shard_leave. */
static inline void sm_held_add(shard *sh, size_t n) { sh->bytes += n; }
static inline void sm_held_sub(shard *sh, size_t n) { sh->bytes -= n; }
/* Brings the shard's gauges up to date and unlocks it. */
void sm_shard_leave(sampler *s, shard *sh);
/* The gauges' moves since the last publication (sm_shard_leave). */
void sm_shard_publish(sampler *s, shard *sh);
/* with_rate: also keep each trace's sample rate (4 bytes more per entry) */
int sm_dcache_init(dcache *c, size_t entries, int with_rate);
void sm_dcache_free(dcache *c);
/* 0: absent; else the stored policy byte + 1, and the rate in *rate (1 when not kept) */
int sm_dcache_get(const dcache *c, uint64_t key, double *rate);
void sm_dcache_put(dcache *c, uint64_t key, uint8_t pol, double rate);
/* Fetches key's set ahead of a get or put: the caches are large, and a set
 * is a cache miss. */
void sm_dcache_prefetch(const dcache *c, uint64_t key);
int sm_btab_grow(shard *sh);
void sm_blob_put(shard *sh, blob *b);
/* Grow *p (of *cap elements of elem bytes) to hold need; -1 without memory. */
int sm_ensure(void **p, size_t *cap, size_t need, size_t elem);
int sm_ensure_spans(shard *sh, size_t n);
/* Pack a message into the shard's pack scratch; NULL on out-of-memory. */
const uint8_t *sm_pack_msg(shard *sh, const ProtobufCMessage *m, size_t *len);
int sm_tab_grow(shard *sh);
trace *sm_tab_find(shard *sh, uint64_t key, const uint8_t *id, const tenant_name *tn);
void sm_tab_remove(shard *sh, trace *t);
void sm_list_unlink(trace *t);
void sm_list_append(trace *head, trace *t);
void sm_quiet_unlink(trace *t);
void sm_quiet_append(shard *sh, trace *t);
const tenant_name *sm_tenant_intern(shard *sh, const char *tenant);
void sm_trace_free(shard *sh, trace *t);
void sm_ready_append(shard *sh, trace *t);
void sm_ready_remove(shard *sh, trace *prev, trace *t);
/* Append a length-delimited field to b. */
int sm_buf_field(buf *b, unsigned field, const void *p, size_t n);
int sm_context_fields(shard *sh, buf *b, const ProtobufCMessage *m, const char *schema_url);
/* The interned blob of these context bytes under parent (a reference the
 * caller puts back with sm_blob_put); NULL without memory. */
blob *sm_blob_get(shard *sh, const uint8_t *data, size_t len, blob *parent);
blob *sm_context_blob(shard *sh, const ProtobufCMessage *m, const char *schema_url, blob *parent);

/* ---- sampler_view.c: a trace decoded for the Refinery samplers ---- */

typedef struct sm_view {
    sr_trace tr;
    sr_span *spans;
    size_t n;
    Opentelemetry__Proto__Resource__V1__Resource **res; /* decoded resources, by blob */
    const blob **res_blob;
    size_t n_res;
} sm_view;

/* t's id and span count in v->tr, and its spans decoded when `spans`;
 * -1 without memory (v then holds nothing). */
int sm_view_build(const trace *t, int spans, sm_view *v);
void sm_view_free(sm_view *v);

/* ---- sampler_decide.c ---- */

/* Decide the oldest undecided traces while over the shard's budgets. */
size_t sm_enforce_budget(sampler *s, shard *sh, uint64_t now_ns);
/* Decide trace t now (reason R_*): dropped, or queued for emit. */
void sm_decide(sampler *s, shard *sh, trace *t, uint64_t now_ns, int reason);

/* The shard of a trace whose id hashes (sp_trace_hash) to idh. */
static inline size_t sm_shard_of_hash(const sampler *s, uint64_t idh)
{
    return s->n_shards <= 1 ? 0 : (size_t)(idh % s->n_shards);
}

#endif
