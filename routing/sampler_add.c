/* sampler_add: taking a request's spans into the sampler (sampler_add):
 * late spans of decided traces follow their cached decision, the others are
 * summarized for the policies and copied into their trace's segments. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "sampler_internal.h"

static void update_summary(trace *t, const span_t *sp, uint64_t bits, size_t wire)
{
    sp_summary *m = &t->sum;
    if (sp->start_time_unix_nano != 0 && sp->start_time_unix_nano < m->min_start)
        m->min_start = sp->start_time_unix_nano;
    if (sp->end_time_unix_nano > m->max_end)
        m->max_end = sp->end_time_unix_nano;
    m->spans++;
    m->span_bytes += wire;
    m->attr_bits |= bits;
    unsigned code = sp->status != NULL ? (unsigned)sp->status->code : 0;
    if (code < 8)
        m->status_mask |= 1u << code;
}

/* What the passes of sampler_add share while they work through one
 * ResourceSpans of a request. */
typedef struct add_ctx {
    sampler *s;
    shard *sh;
    size_t shard_i;
    const tenant_name *tn;
    uint64_t now_ns;
    buf *late_out;
    const resource_spans *rs;
    blob *rb;       /* the resource's interned encoding, made on first use */
    uint64_t rbits; /* the resource's attribute-policy bits, computed on first use */
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope; /* of the spans being indexed */
    int rbits_done;
} add_ctx;

/* A trace is born on its first span: its links and accounting start here. */
static trace *trace_new(add_ctx *c, const uint8_t *id, uint64_t key)
{
    sampler *s = c->s;
    shard *sh = c->sh;
    if (sh->n_traces >= sh->tab_size && sm_tab_grow(sh) != 0)
        return NULL;
    trace *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    memcpy(t->id, id, 16);
    t->tenant = c->tn;
    t->key = key;
    t->first_ns = c->now_ns;
    t->sum.min_start = UINT64_MAX;
    t->who = -1;
    t->mem = sizeof(*t) + MALLOC_OVERHEAD;
    sm_held_add(s, sh, t->mem);
    t->hnext = sh->tab[key & (sh->tab_size - 1)];
    sh->tab[key & (sh->tab_size - 1)] = t;
    sh->n_traces++;
    sm_list_append(&sh->fifo, t);
    metrics_gauge_add(s->m.in_flight, 1);
    return t;
}

/* A span of a trace decided earlier must not start a new trace: the
 * decision caches are asked before one is made. NULL when the span is not
 * buffered (span_late[i] then says whether it is late sampled or dropped). */
static trace *span_trace_of(add_ctx *c, const span_t *sp, size_t i, size_t *n_late)
{
    shard *sh = c->sh;
    uint64_t idh = sp_trace_hash(sp->trace_id.data);
    uint64_t key = hash_mix64(idh ^ c->tn->hash);
    trace *t = sm_tab_find(sh, key, sp->trace_id.data, c->tn);
    if (t != NULL)
        return t;
    int pol = sm_dcache_get(&sh->sampled, key, &sh->span_rate[i]);
    if (pol != 0) {
        sh->span_late[i] = (int16_t)pol;
        (*n_late)++;
        return NULL;
    }
    if (sm_dcache_get(&sh->not_sampled, key, NULL) != 0) {
        sh->span_late[i] = -1;
        sh->st.late_dropped++;
        metrics_add(c->s->m.late_dropped, 1);
        return NULL;
    }
    return trace_new(c, sp->trace_id.data, key);
}

/* The quiet list orders the traces that may be decided before
 * decision_wait by qkey_ns. quiet_after: the root has arrived, and qkey_ns
 * is the trace's last span (each span moves it to the end).
 * decision_wait_after_root_received: qkey_ns is when the root arrived. */
static void quiet_update(sampler *s, shard *sh, trace *t, int root, uint64_t now_ns)
{
    if (s->quiet_ns == NO_QUIET || (s->quiet_root ? !root || t->in_quiet : !root && !t->in_quiet))
        return;
    if (t->in_quiet)
        sm_quiet_unlink(t);
    t->qkey_ns = now_ns;
    sm_quiet_append(sh, t);
}

/* A trace over max_trace_spans / max_trace_bytes is decided at the end of
 * this sampler_add (after its spans are copied): noted here, once. Out of
 * memory for the note, it is decided later as usual (still bounded by the
 * shard's budget). */
static void oversize_mark(shard *sh, trace *t)
{
    void *p = sh->over;
    if (sm_ensure(&p, &sh->over_cap, sh->n_over + 1, sizeof(*sh->over)) != 0)
        return;
    sh->over = p;
    sh->over[sh->n_over++] = t;
    t->oversize = 1;
}

/* The policies decide on the summary, and pass 2 allocates a trace's
 * segment once per request: both are fed here, before any bytes move. */
static void span_account(add_ctx *c, trace *t, const span_t *sp, size_t i)
{
    sampler *s = c->s;
    shard *sh = c->sh;
    const resource_spans *rs = c->rs;
    if (!c->rbits_done && s->pol.n_attr != 0 && rs->resource != NULL)
        c->rbits = sp_attr_bits(&s->pol, rs->resource->attributes, rs->resource->n_attributes);
    c->rbits_done = 1;
    uint64_t bits = s->pol.n_attr ? sp_span_bits(&s->pol, sp) : 0;
    size_t wire = protobuf_c_message_get_packed_size(&sp->base);
    update_summary(t, sp, bits | c->rbits, wire);
    if (s->pol.n_attr != 0)
        t->sum.attr_bits |= sp_summary_bits(&s->pol, &t->sum);
    if (s->pol.n_ottl != 0)
        sp_ottl_span(&s->pol, &t->sum, rs->resource, c->scope, sp);
    t->last_ns = c->now_ns;
    quiet_update(s, sh, t, sp->parent_span_id.len == 0, c->now_ns);
    if (!t->oversize && ((s->max_trace_spans != 0 && t->sum.spans > s->max_trace_spans) ||
                         (s->max_trace_bytes != 0 && t->sum.span_bytes > s->max_trace_bytes)))
        oversize_mark(sh, t);
    sh->span_trace[i] = t;
    sh->span_size[i] = (uint32_t)wire;
    t->pending_len += field_len(wire);
    t->pending_n++;
    sh->spans_held++;
    sh->wire_held += wire;
}

/* Pass 1: find or create traces, summarize, size the spans; the spans of
 * this shard's traces to buffer (late ones counted in *n_late). */
static size_t index_spans(add_ctx *c, const scope_spans *ss, size_t *n_late)
{
    shard *sh = c->sh;
    size_t mine = 0;
    c->scope = ss->scope;
    for (size_t i = 0; i < ss->n_spans; i++) {
        const span_t *sp = ss->spans[i];
        sh->span_trace[i] = NULL;
        sh->span_late[i] = 0;
        if (sp == NULL || sp->trace_id.len != 16 || sampler_shard_of(c->s, sp->trace_id.data) != c->shard_i)
            continue;
        trace *t = span_trace_of(c, sp, i, n_late);
        if (t == NULL)
            continue;
        span_account(c, t, sp, i);
        mine++;
    }
    return mine;
}

/* A trace gets one segment per request, sized in pass 1: made at its first
 * span here, and not tried again after a failure (pending_len cleared). */
static seg *pending_seg(sampler *s, shard *sh, trace *t, blob *sb)
{
    seg *g = t->pending;
    if (g != NULL || t->pending_len == 0 || sb == NULL)
        return g;
    g = malloc(sizeof(*g) + t->pending_len);
    if (g != NULL) {
        g->next = NULL;
        g->scope = sb;
        sb->refs++;
        g->n_spans = 0;
        g->len = 0;
        if (t->seg_tail != NULL)
            t->seg_tail->next = g;
        else
            t->segs = g;
        t->seg_tail = g;
        size_t m = sizeof(*g) + t->pending_len + MALLOC_OVERHEAD;
        t->mem += m;
        sm_held_add(s, sh, m);
    }
    t->pending = g;
    t->pending_len = 0; /* allocation done (or failed) for this group */
    return g;
}

/* Out of memory: the span is counted in the summary but cannot be kept;
 * take it back out of the counts, and say so. */
static void span_lost(add_ctx *c, trace *t, uint32_t size)
{
    shard *sh = c->sh;
    log_error("sampler: out of memory buffering a span", "tenant=%s", c->tn->name);
    t->sum.spans--;
    t->sum.span_bytes -= size;
    sh->spans_held--;
    sh->wire_held -= size;
    sh->st.lost_oom++;
}

/* Pass 2: copy the spans into one segment per trace; the spans buffered. */
static size_t copy_spans(add_ctx *c, const scope_spans *ss)
{
    sampler *s = c->s;
    shard *sh = c->sh;
    const resource_spans *rs = c->rs;
    size_t buffered = 0;
    if (c->rb == NULL)
        c->rb = sm_context_blob(s, sh, rs->resource ? &rs->resource->base : NULL, rs->schema_url, NULL);
    blob *sb = c->rb != NULL ? sm_context_blob(s, sh, ss->scope ? &ss->scope->base : NULL, ss->schema_url, c->rb) : NULL;
    for (size_t i = 0; i < ss->n_spans; i++) {
        trace *t = sh->span_trace[i];
        if (t == NULL)
            continue;
        seg *g = pending_seg(s, sh, t, sb);
        if (g == NULL) {
            span_lost(c, t, sh->span_size[i]);
            continue;
        }
        uint8_t *o = put_field_hdr(g->data + g->len, 2, sh->span_size[i]);
        size_t packed = protobuf_c_message_pack(&ss->spans[i]->base, o);
        g->len = (uint32_t)(o + packed - g->data);
        g->n_spans++;
        buffered++;
    }
    for (size_t i = 0; i < ss->n_spans; i++) {
        trace *t = sh->span_trace[i];
        if (t != NULL) {
            t->pending = NULL;
            t->pending_len = 0;
            t->pending_n = 0;
        }
    }
    if (sb != NULL)
        sm_blob_put(s, sh, sb); /* segments hold their own references */
    return buffered;
}

/* A late span leaves with its trace's weight, as the buffered spans of that
 * trace did (when the set writes weights). */
static int late_span(sampler *s, shard *sh, const span_t *sp, double rate)
{
    size_t len;
    const uint8_t *p = sm_pack_msg(sh, &sp->base, &len);
    if (p == NULL)
        return -1;
    if (!s->weight.sample_rate && !s->weight.threshold)
        return sm_buf_field(&sh->late_ss, 2, p, len);
    size_t n = sw_span(&s->weight, rate, p, len, NULL);
    if (buf_reserve(&sh->late_ss, field_len(n)) != 0)
        return -1;
    uint8_t *o = put_field_hdr((uint8_t *)sh->late_ss.data + sh->late_ss.len, 2, n);
    sh->late_ss.len = (size_t)(o - (uint8_t *)sh->late_ss.data) + sw_span(&s->weight, rate, p, len, o);
    return 0;
}

/* The scope context of late spans: as it came, or with the Collector's
 * tailsampling.policy (when known) and tailsampling.cached_decision. */
static void late_scope(sampler *s, shard *sh, const scope_spans *ss, int who)
{
    sm_context_fields(sh, &sh->late_ss, ss->scope ? &ss->scope->base : NULL, ss->schema_url);
    if (!s->record_policy)
        return;
    size_t pl = who >= 0 && (size_t)who < s->pol.n_top ? s->attr_len[who] : 0;
    uint8_t *kv = malloc(pl + s->cached_len);
    if (kv == NULL)
        return;
    if (pl != 0)
        memcpy(kv, s->attr_enc[who], pl);
    memcpy(kv + pl, s->cached_kv, s->cached_len);
    size_t n = sw_scope((const uint8_t *)sh->late_ss.data, sh->late_ss.len, kv, pl + s->cached_len, NULL);
    uint8_t *o = malloc(n);
    if (o != NULL) {
        sw_scope((const uint8_t *)sh->late_ss.data, sh->late_ss.len, kv, pl + s->cached_len, o);
        buf_clear(&sh->late_ss);
        if (buf_reserve(&sh->late_ss, n) == 0)
            buf_append(&sh->late_ss, o, n);
    }
    free(o);
    free(kv);
}

/* Pass 3: late spans of sampled traces go straight to late_out (under this
 * scope, into late_rs) instead of being buffered again. */
static void forward_late_spans(add_ctx *c, const scope_spans *ss, size_t n_late)
{
    sampler *s = c->s;
    shard *sh = c->sh;
    if (n_late == 0)
        return;
    if (c->late_out == NULL) {
        sh->st.late_sampled += n_late;
        metrics_add(s->m.late_sampled, n_late);
        return;
    }
    buf_clear(&sh->late_ss);
    int who = -1; /* the scope names the policy of its first late span's trace */
    for (size_t i = 0; i < ss->n_spans && who < 0; i++)
        if (sh->span_late[i] > 0)
            who = sh->span_late[i] - 2; /* stored policy byte: who + 1, 0 = none */
    late_scope(s, sh, ss, who);
    for (size_t i = 0; i < ss->n_spans; i++) {
        if (sh->span_late[i] <= 0)
            continue;
        if (late_span(s, sh, ss->spans[i], sh->span_rate[i]) == 0) {
            sh->st.late_sampled++;
            metrics_add(s->m.late_sampled, 1);
        } else {
            sh->st.lost_oom++;
        }
    }
    sm_buf_field(&sh->late_rs, 2, sh->late_ss.data, sh->late_ss.len);
}

/* The passes depend on each other in this order: pass 2 copies into what
 * pass 1 sized, pass 3 forwards what pass 1 found late. */
static size_t add_scope(add_ctx *c, const scope_spans *ss)
{
    if (sm_ensure_spans(c->sh, ss->n_spans) != 0) {
        log_error("sampler: out of memory", "spans=%zu", ss->n_spans);
        return 0;
    }
    size_t n_late = 0;
    size_t mine = index_spans(c, ss, &n_late);
    size_t buffered = mine != 0 ? copy_spans(c, ss) : 0;
    forward_late_spans(c, ss, n_late);
    return buffered;
}

/* The scopes of one resource share its interned encoding and attribute
 * bits, and their late spans leave together as one ResourceSpans. */
static size_t add_resource(add_ctx *c, const resource_spans *rs)
{
    sampler *s = c->s;
    shard *sh = c->sh;
    size_t buffered = 0;
    c->rs = rs;
    c->rb = NULL;
    c->rbits = 0;
    c->rbits_done = 0;
    buf_clear(&sh->late_rs);
    for (size_t k = 0; k < rs->n_scope_spans; k++) {
        const scope_spans *ss = rs->scope_spans[k];
        if (ss != NULL && ss->n_spans != 0)
            buffered += add_scope(c, ss);
    }
    if (sh->late_rs.len != 0 && c->late_out != NULL) {
        buf_clear(&sh->late_ss);
        sm_context_fields(sh, &sh->late_ss, rs->resource ? &rs->resource->base : NULL, rs->schema_url);
        buf_append(&sh->late_ss, sh->late_rs.data, sh->late_rs.len);
        if (sm_buf_field(c->late_out, 1, sh->late_ss.data, sh->late_ss.len) != 0)
            log_error("sampler: out of memory forwarding late spans", "tenant=%s", c->tn->name);
    }
    if (c->rb != NULL)
        sm_blob_put(s, sh, c->rb);
    return buffered;
}

size_t sampler_add(sampler *s, size_t shard_i, const ProtobufCMessage *msg, const char *tenant, uint64_t now_ns,
                   buf *late_out)
{
    if (shard_i >= s->n_shards || msg == NULL)
        return 0;
    const export_req *req = (const export_req *)msg;
    shard *sh = &s->shards[shard_i];
    size_t buffered = 0;
    pthread_mutex_lock(&sh->lock);
    add_ctx c = {.s = s, .sh = sh, .shard_i = shard_i, .now_ns = now_ns, .late_out = late_out};
    c.tn = sm_tenant_intern(sh, tenant);
    if (c.tn == NULL)
        goto out;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        if (req->resource_spans[r] != NULL)
            buffered += add_resource(&c, req->resource_spans[r]);
    sh->st.buffered += buffered;
    for (size_t i = 0; i < sh->n_over; i++)
        sm_decide(s, sh, sh->over[i], now_ns, R_OVERSIZE);
    sh->n_over = 0;
    sm_enforce_budget(s, sh, now_ns);
out:
    pthread_mutex_unlock(&sh->lock);
    return buffered;
}
