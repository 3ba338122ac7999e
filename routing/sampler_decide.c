/* sampler_decide: deciding traces (at decision_wait, when quiet after the
 * root, over budget, at flush), encoding sampled traces for output, emitting
 * them per destination and holding those that found no room; handing
 * undecided traces to another cluster member. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sampler_internal.h"

/* ---- deciding ---- */

/* A trace over the Collector's maximum_trace_size_bytes is dropped without
 * asking the policies (oversize_drop); over our caps it is decided by them. */
void sm_decide(sampler *s, shard *sh, trace *t, uint64_t now_ns, int reason)
{
    int who = -1, keep = 0;
    sp_weight w = {.rate = 1};
    if (reason != R_OVERSIZE || !s->oversize_drop || t->sum.span_bytes <= s->max_trace_bytes) {
        sm_view v;
        int viewed = s->pol.view && sm_view_build(t, s->pol.view > 1, &v) == 0;
        t->sum.view = viewed ? &v.tr : NULL; /* none (out of memory): Refinery samplers say no */
        if (s->pol.stateful)
            pthread_mutex_lock(&s->pol_lock);
        keep = sp_decide(&s->pol, t->id, &t->sum, now_ns, &who, &w);
        if (s->pol.stateful)
            pthread_mutex_unlock(&s->pol_lock);
        t->sum.view = NULL;
        if (viewed)
            sm_view_free(&v);
    }
    sm_tab_remove(sh, t);
    sm_list_unlink(t);
    if (t->in_quiet)
        sm_quiet_unlink(t);
    uint64_t lat = now_ns > t->first_ns ? now_ns - t->first_ns : 0;
    sh->st.lat_sum += lat;
    if (lat > sh->st.lat_max)
        sh->st.lat_max = lat;
    metrics_observe(s->m.latency, (double)lat / 1e9);
    metrics_add(s->m.traces[keep][reason], 1);
    switch (reason) {
    case R_WAIT: sh->st.decided_wait++; break;
    case R_QUIET: sh->st.decided_quiet++; break;
    case R_EVICT: sh->st.evicted++; metrics_add(s->m.evicted, 1); break;
    case R_OVERSIZE: sh->st.decided_oversize++; break;
    default: sh->st.decided_flush++; break;
    }
    if (keep) {
        sh->st.sampled++;
        sh->st.spans_sampled += t->sum.spans;
        if (who >= 0) {
            atomic_fetch_add_explicit(&s->pol.top[who].n_kept, 1, memory_order_relaxed);
            metrics_add(s->pol.top[who].m_kept, 1);
        }
        sm_dcache_put(&sh->sampled, t->key, (uint8_t)(who >= 0 && who < 254 ? who + 1 : 0), w.rate);
        t->who = who;
        t->rate = w.rate;
        t->composite_sub = w.composite_sub;
        sm_ready_append(sh, t);
    } else {
        sh->st.dropped++;
        sh->st.spans_dropped += t->sum.spans;
        sm_dcache_put(&sh->not_sampled, t->key, 0, 1);
        sm_trace_free(sh, t);
    }
}

/* Decide the oldest undecided traces while over the shard's budgets. */
size_t sm_enforce_budget(sampler *s, shard *sh, uint64_t now_ns)
{
    size_t n = 0;
    while (sh->fifo.next != &sh->fifo && (sh->bytes > s->max_bytes || sh->n_traces > s->max_traces)) {
        if (sh->n_traces > s->max_traces)
            sh->st.evicted_traces++;
        sm_decide(s, sh, sh->fifo.next, now_ns, R_EVICT);
        n++;
    }
    return n;
}

/* ---- output ---- */

/* What a sampled trace's output adds: the weight on each span (when the
 * set writes one) and attributes on each scope (record_policy). */
typedef struct out_ctx {
    const sw_opts *w; /* NULL: spans leave as they came */
    double rate;
    const uint8_t *kv; /* KeyValues for the scopes' attributes (NULL: none) */
    size_t kvlen;
} out_ctx;

/* Bytes the segment's spans take in the output, and the spans written at o
 * unless o is NULL. */
static size_t seg_out(uint8_t *o, const seg *g, const out_ctx *oc)
{
    if (oc->w == NULL) {
        if (o != NULL)
            memcpy(o, g->data, g->len);
        return g->len;
    }
    size_t n = 0;
    const uint8_t *p = g->data, *end = g->data + g->len;
    while (p < end) {
        uint64_t l = 0;
        if ((p = get_varint(p + 1, end, &l)) == NULL)
            break; /* cannot happen: the sampler framed these bytes */
        size_t sl = sw_span(oc->w, oc->rate, p, l, NULL);
        if (o != NULL)
            sw_span(oc->w, oc->rate, p, l, put_field_hdr(o + n, 2, sl));
        n += field_len(sl);
        p += l;
    }
    return n;
}

/* A scope's context as output, written at o unless NULL; its length. */
static size_t scope_out(uint8_t *o, const blob *b, const out_ctx *oc)
{
    if (oc->kv != NULL)
        return sw_scope(b->data, b->len, oc->kv, oc->kvlen, o);
    if (o != NULL)
        memcpy(o, b->data, b->len);
    return b->len;
}

/* The output has one ScopeSpans per distinct scope, however many requests
 * the trace's segments came in: the scopes in order of first appearance in
 * sh->groups, with their payload sizes in sh->group_len. */
static int collect_groups(shard *sh, const trace *t, const out_ctx *oc, size_t *n_groups)
{
    size_t ng = 0;
    for (const seg *g = t->segs; g != NULL; g = g->next) {
        size_t i = 0;
        while (i < ng && sh->groups[i] != g->scope)
            i++;
        if (i == ng) {
            void *gp = sh->groups, *lp = sh->group_len;
            size_t c1 = sh->group_cap, c2 = sh->group_cap;
            if (sm_ensure(&gp, &c1, ng + 1, sizeof(blob *)) != 0)
                return -1;
            sh->groups = gp;
            if (sm_ensure(&lp, &c2, ng + 1, sizeof(size_t)) != 0)
                return -1;
            sh->group_len = lp;
            sh->group_cap = c1 < c2 ? c1 : c2;
            sh->groups[ng] = g->scope;
            sh->group_len[ng] = scope_out(NULL, g->scope, oc);
            ng++;
        }
        sh->group_len[i] += seg_out(NULL, g, oc);
    }
    *n_groups = ng;
    return 0;
}

/* Sizing and writing must agree on where each ResourceSpans starts (at the
 * first group of its resource): its payload size there, 0 elsewhere. */
static size_t resource_payload(const shard *sh, size_t i, size_t ng)
{
    const blob *r = sh->groups[i]->parent;
    for (size_t j = 0; j < i; j++)
        if (sh->groups[j]->parent == r)
            return 0; /* resource already counted */
    size_t rs = r->len;
    for (size_t k = i; k < ng; k++)
        if (sh->groups[k]->parent == r)
            rs += field_len(sh->group_len[k]);
    return rs;
}

/* record_policy: the scopes' tailsampling.policy, and for a composite the
 * sub-policy that sampled as tailsampling.composite_policy (in sh->kv). */
static int scope_attrs(sampler *s, shard *sh, const trace *t, out_ctx *oc)
{
    oc->kv = s->attr_enc[t->who];
    oc->kvlen = s->attr_len[t->who];
    if (t->composite_sub == NULL)
        return 0;
    size_t n = sw_kv_str(3, COMPOSITE_ATTR_KEY, t->composite_sub, NULL);
    buf_clear(&sh->kv);
    if (buf_reserve(&sh->kv, oc->kvlen + n) != 0)
        return -1;
    buf_append(&sh->kv, oc->kv, oc->kvlen);
    sw_kv_str(3, COMPOSITE_ATTR_KEY, t->composite_sub, (uint8_t *)sh->kv.data + sh->kv.len);
    sh->kv.len += n;
    oc->kv = (const uint8_t *)sh->kv.data;
    oc->kvlen = sh->kv.len;
    return 0;
}

/* Encode trace t as an ExportTraceServiceRequest into sh->out. */
static int encode_trace(sampler *s, shard *sh, const trace *t)
{
    if (t->raw != NULL) {
        buf_clear(&sh->out);
        if (buf_reserve(&sh->out, t->raw_len) != 0)
            return -1;
        buf_append(&sh->out, t->raw, t->raw_len);
        return 0;
    }
    out_ctx oc = {.w = t->who >= 0 && (s->weight.sample_rate || s->weight.threshold) ? &s->weight : NULL,
                  .rate = t->rate};
    if (s->record_policy && t->who >= 0 && scope_attrs(s, sh, t, &oc) != 0)
        return -1;
    size_t ng;
    if (collect_groups(sh, t, &oc, &ng) != 0)
        return -1;
    /* Total size: one ResourceSpans per distinct resource. */
    size_t total = 0;
    for (size_t i = 0; i < ng; i++) {
        size_t rs = resource_payload(sh, i, ng);
        if (rs != 0)
            total += field_len(rs);
    }
    buf_clear(&sh->out);
    if (buf_reserve(&sh->out, total) != 0)
        return -1;
    uint8_t *o = (uint8_t *)sh->out.data;
    for (size_t i = 0; i < ng; i++) {
        size_t rs = resource_payload(sh, i, ng);
        if (rs == 0)
            continue;
        blob *r = sh->groups[i]->parent;
        o = put_field_hdr(o, 1, rs);
        memcpy(o, r->data, r->len);
        o += r->len;
        for (size_t k = i; k < ng; k++) {
            if (sh->groups[k]->parent != r)
                continue;
            o = put_field_hdr(o, 2, sh->group_len[k]);
            o += scope_out(o, sh->groups[k], &oc);
            for (const seg *g = t->segs; g != NULL; g = g->next)
                if (g->scope == sh->groups[k])
                    o += seg_out(o, g, &oc);
        }
    }
    sh->out.len = (size_t)(o - (uint8_t *)sh->out.data);
    return 0;
}

/* The held gauge follows the ready list as an emit pass (or a hold, or
 * abandoning) leaves it. */
static void publish_held(sampler *s, shard *sh)
{
    if (sh->n_ready != sh->held_pub) {
        metrics_gauge_add(s->m.held, (int64_t)sh->n_ready - (int64_t)sh->held_pub);
        sh->held_pub = sh->n_ready;
    }
}

/* One pass over the ready list, oldest first: each trace is offered to the
 * destinations that do not have it yet; those that found no room (full,
 * this pass) are not offered anything more, and a trace that waits only on
 * them is kept without being encoded. Delivered traces are freed; the rest
 * stay, in order, held for the next pass. */
static void emit_ready(sampler *s, shard *sh, sampler_emit_fn emit, void *data)
{
    uint64_t full = 0;
    trace *prev = NULL;
    for (trace *t = sh->ready, *nx; t != NULL; t = nx) {
        nx = t->next;
        if ((s->dest_mask & ~t->done & ~full) == 0) {
            prev = t; /* waits for room only where this pass found none */
            continue;
        }
        if (encode_trace(s, sh, t) == 0) {
            if (emit != NULL &&
                emit(data, t->tenant->name, (const uint8_t *)sh->out.data, sh->out.len, t->sum.spans, &t->done,
                     &full) != 0) {
                prev = t;
                continue;
            }
        } else {
            sh->st.lost_oom += t->sum.spans;
            log_error("sampler: out of memory encoding a sampled trace", "spans=%llu",
                      (unsigned long long)t->sum.spans);
        }
        sm_ready_remove(sh, prev, t);
        sm_trace_free(sh, t);
    }
    publish_held(s, sh);
}

/* The shard, locked; NULL (nothing locked) for a shard that does not exist. */
static shard *shard_enter(sampler *s, size_t shard_i)
{
    if (shard_i >= s->n_shards)
        return NULL;
    shard *sh = &s->shards[shard_i];
    pthread_mutex_lock(&sh->lock);
    return sh;
}

/* Traces are decided decision_wait after they came, long out of the cache:
 * deciding one reads its record, its table bucket and its chain of
 * segments (one per request that brought it spans), and freeing a dropped
 * one touches every segment. Each segment's address is in the one before,
 * so walked one trace at a time those misses come one after another. The
 * traces due are taken DECIDE_BATCH at a time and their chains walked side
 * by side first, one step per pass with a prefetch of each next segment: a
 * pass costs about one miss for the whole batch. */
#define DECIDE_BATCH 16

static int wait_due(const sampler *s, const trace *t, uint64_t now_ns)
{
    return now_ns - t->first_ns >= s->wait_ns && now_ns >= t->first_ns;
}

/* h while it is an entry ahead of t in t's table chain; NULL at t. */
static const trace *chain_step(const trace *h, const trace *t)
{
    return h != NULL && h != t ? h : NULL;
}

/* The table chains are walked alongside: removing a trace reads the
 * entries ahead of it in its bucket. */
static void warm_batch(const shard *sh, trace *const *batch, size_t n)
{
    const seg *g[DECIDE_BATCH];
    const trace *h[DECIDE_BATCH];
    trace *const *bucket[DECIDE_BATCH];
    for (size_t i = 0; i < n; i++) {
        g[i] = batch[i]->segs;
        bucket[i] = &sh->tab[batch[i]->key & (sh->tab_size - 1)];
        __builtin_prefetch(g[i]);
        __builtin_prefetch(bucket[i]);
        sm_dcache_prefetch(&sh->sampled, batch[i]->key); /* the decision goes into one of them */
        sm_dcache_prefetch(&sh->not_sampled, batch[i]->key);
    }
    for (size_t i = 0; i < n; i++)
        if ((h[i] = chain_step(*bucket[i], batch[i])) != NULL)
            __builtin_prefetch(h[i]);
    for (size_t live = n; live != 0;) {
        live = 0;
        for (size_t i = 0; i < n; i++) {
            if (g[i] != NULL && (g[i] = g[i]->next) != NULL) {
                __builtin_prefetch(g[i]);
                live++;
            }
            if (h[i] != NULL && (h[i] = chain_step(h[i]->hnext, batch[i])) != NULL) {
                __builtin_prefetch(h[i]);
                live++;
            }
        }
    }
}

/* Decides the traces whose decision_wait is over, oldest first. */
static size_t decide_waited(sampler *s, shard *sh, uint64_t now_ns)
{
    size_t total = 0, n;
    do {
        trace *batch[DECIDE_BATCH];
        n = 0;
        for (trace *t = sh->fifo.next; t != &sh->fifo && n < DECIDE_BATCH && wait_due(s, t, now_ns); t = t->next)
            batch[n++] = t;
        warm_batch(sh, batch, n);
        for (size_t i = 0; i < n; i++)
            sm_decide(s, sh, batch[i], now_ns, R_WAIT);
        total += n;
    } while (n == DECIDE_BATCH);
    return total;
}

size_t sampler_tick(sampler *s, size_t shard_i, uint64_t now_ns, sampler_emit_fn emit, void *data)
{
    shard *sh = shard_enter(s, shard_i);
    size_t n = 0;
    if (sh == NULL)
        return 0;
    n += sm_enforce_budget(s, sh, now_ns);
    n += decide_waited(s, sh, now_ns);
    while (s->quiet_ns != NO_QUIET && sh->quiet.qnext != &sh->quiet && now_ns >= sh->quiet.qnext->qkey_ns &&
           now_ns - sh->quiet.qnext->qkey_ns >= s->quiet_ns) {
        sm_decide(s, sh, sh->quiet.qnext, now_ns, R_QUIET);
        n++;
    }
    emit_ready(s, sh, emit, data);
    sm_shard_leave(s, sh);
    return n;
}

size_t sampler_flush(sampler *s, size_t shard_i, uint64_t now_ns, sampler_emit_fn emit, void *data)
{
    shard *sh = shard_enter(s, shard_i);
    size_t n = 0;
    if (sh == NULL)
        return 0;
    while (sh->fifo.next != &sh->fifo) {
        sm_decide(s, sh, sh->fifo.next, now_ns, R_FLUSH);
        n++;
    }
    emit_ready(s, sh, emit, data);
    sm_shard_leave(s, sh);
    return n;
}

/* Removes an undecided trace that another member now owns; no decision is
 * remembered, so its later spans are routed (and owned) afresh. */
static void release_trace(shard *sh, trace *t)
{
    sm_tab_remove(sh, t);
    sm_list_unlink(t);
    if (t->in_quiet)
        sm_quiet_unlink(t);
    sh->st.released++;
    sh->st.spans_released += t->sum.spans;
    sm_trace_free(sh, t);
}

size_t sampler_release(sampler *s, size_t shard_i, sampler_keep_fn keep, sampler_give_fn give, void *data)
{
    shard *sh = shard_enter(s, shard_i);
    size_t n = 0;
    if (sh == NULL)
        return 0;
    for (trace *t = sh->fifo.next, *nx; t != &sh->fifo; t = nx) {
        nx = t->next;
        if (keep != NULL && keep(data, t->id))
            continue;
        t->who = -1; /* undecided: no policy attribute */
        if (encode_trace(s, sh, t) != 0 ||
            give(data, t->id, t->tenant->name, (const uint8_t *)sh->out.data, sh->out.len, t->sum.spans) != 0)
            continue; /* stays here, decided as usual */
        release_trace(sh, t);
        n++;
    }
    sm_shard_leave(s, sh);
    return n;
}

/* Held traces of a shard, their spans, and whether they leave the shard
 * over its budget (sampler_full). */
static size_t sampler_held_full(sampler *s, size_t shard_i, uint64_t *spans, int *full)
{
    shard *sh = shard_enter(s, shard_i);
    if (sh == NULL)
        return 0;
    size_t n = sh->n_ready;
    if (spans != NULL)
        *spans = sh->ready_spans;
    /* Held traces fill the budget: refuse rather than drop what was
     * acknowledged. With block_on_overflow, a full budget (bytes or
     * traces) refuses too, instead of deciding the oldest traces early. */
    *full = (n > 0 || s->block) && sh->bytes >= s->max_bytes;
    if (s->block && sh->n_traces >= s->max_traces)
        *full = 1;
    sm_shard_leave(s, sh);
    return n;
}


int sampler_hold(sampler *s, size_t shard_i, const char *tenant, const uint8_t *req, size_t len, size_t spans,
                 uint64_t done)
{
    shard *sh = shard_enter(s, shard_i);
    if (sh == NULL)
        return -1;
    const tenant_name *tn = sm_tenant_intern(sh, tenant);
    trace *t = tn != NULL ? slab_alloc(&sh->mem, sizeof(*t)) : NULL;
    uint8_t *raw = t != NULL ? malloc(len ? len : 1) : NULL;
    if (raw == NULL) {
        slab_free(&sh->mem, t, sizeof(*t));
        sm_shard_leave(s, sh);
        return -1;
    }
    memset(t, 0, sizeof(*t));
    memcpy(raw, req, len);
    t->raw = raw;
    t->raw_len = len;
    t->tenant = tn;
    t->who = -1;
    t->done = done;
    t->sum.spans = spans;
    sh->spans_held += spans; /* trace_free takes them back */
    t->mem = slab_size(sizeof(*t)) + len + MALLOC_OVERHEAD;
    sm_held_add(sh, t->mem);
    sm_ready_append(sh, t);
    publish_held(s, sh);
    sm_shard_leave(s, sh);
    return 0;
}

size_t sampler_held(sampler *s, size_t shard_i, uint64_t *spans)
{
    int full;
    return sampler_held_full(s, shard_i, spans, &full);
}

int sampler_full(sampler *s, size_t shard_i)
{
    int full = 0;
    sampler_held_full(s, shard_i, NULL, &full);
    return full;
}

size_t sampler_abandon(sampler *s, size_t shard_i, uint64_t *spans)
{
    shard *sh = shard_enter(s, shard_i);
    if (sh == NULL)
        return 0;
    size_t n = 0;
    uint64_t sp = 0;
    while (sh->ready != NULL) {
        trace *t = sh->ready;
        sm_ready_remove(sh, NULL, t);
        sp += t->sum.spans;
        n++;
        sm_trace_free(sh, t);
    }
    sh->st.abandoned += n;
    sh->st.spans_abandoned += sp;
    publish_held(s, sh); /* to 0: the ready list is empty */
    sm_shard_leave(s, sh);
    if (spans != NULL)
        *spans = sp;
    return n;
}
