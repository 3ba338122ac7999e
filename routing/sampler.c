/* sampler: per-trace buffering, decision timing, memory budget, decision
 * caches and output encoding for the tail sampler (policies in
 * sampler_policy.c).
 *
 * Storage. Spans are copied out of the request arena as protobuf bytes: for
 * each (trace, ScopeSpans group) of a request one segment holds the spans'
 * encodings already framed as ScopeSpans field 2, so emitting is mostly
 * memcpy. The encoded resource (ResourceSpans fields 1 and 3) and scope
 * (ScopeSpans fields 1 and 3) are interned per shard by content and shared by
 * refcount, so a trace's spans cost their own bytes plus a small segment
 * header. Accounting (bytes_held) is what is malloc'ed plus a fixed allowance
 * per allocation for the allocator's own header. */
#include "sampler.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "sampler_policy.h"
#include "trace_service.pb-c.h"

#define MALLOC_OVERHEAD 16 /* allowance per allocation for the allocator's header */
#define CACHE_WAYS 8
#define NO_QUIET UINT64_MAX
#define POLICY_ATTR_KEY "sampling.policy"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest export_req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

/* ---- protobuf framing ---- */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* tag + length + payload of a length-delimited field */
static size_t field_len(size_t payload) { return 1 + varint_len(payload) + payload; }

static uint8_t *put_field_hdr(uint8_t *p, unsigned field, size_t payload)
{
    *p++ = (uint8_t)(field << 3 | 2);
    return put_varint(p, payload);
}

static const uint8_t *get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
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

#include "hash.h"
#include "sampler_internal.h"

/* ---- helpers ---- */

static void held_add(sampler *s, shard *sh, size_t n)
{
    sh->bytes += n;
    metrics_gauge_add(s->m.bytes, (int64_t)n);
}

static void held_sub(sampler *s, shard *sh, size_t n)
{
    sh->bytes -= n;
    metrics_gauge_add(s->m.bytes, -(int64_t)n);
}

/* Traces and blobs are kept in the same kind of chained table (a next link
 * and a 64-bit hash in each entry), so one doubling rehash serves both:
 * the new table (the old one freed, *size updated), or NULL with the old
 * one intact. */
static void **chain_grow(void **old, size_t *size, size_t first, size_t link_off, size_t key_off)
{
    size_t n = *size ? *size * 2 : first;
    void **t = calloc(n, sizeof(*t));
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < *size; i++) {
        for (char *x = old[i], *nx; x != NULL; x = nx) {
            void **link = (void **)(x + link_off);
            uint64_t key = *(const uint64_t *)(x + key_off);
            nx = *link;
            *link = t[key & (n - 1)];
            t[key & (n - 1)] = x;
        }
    }
    free(old);
    *size = n;
    return t;
}

/* ---- decision caches ---- */

static int dcache_init(dcache *c, size_t entries)
{
    memset(c, 0, sizeof(*c));
    if (entries == 0)
        return 0;
    c->nsets = (entries + CACHE_WAYS - 1) / CACHE_WAYS;
    c->keys = calloc(c->nsets * CACHE_WAYS, sizeof(*c->keys));
    c->pol = calloc(c->nsets * CACHE_WAYS, 1);
    c->hand = calloc(c->nsets, 1);
    return c->keys != NULL && c->pol != NULL && c->hand != NULL ? 0 : -1;
}

static void dcache_free(dcache *c)
{
    free(c->keys);
    free(c->pol);
    free(c->hand);
}

static uint64_t nz(uint64_t k) { return k != 0 ? k : 1; }

/* 0: absent; else the stored policy byte + 1 */
static int dcache_get(const dcache *c, uint64_t key)
{
    if (c->nsets == 0)
        return 0;
    key = nz(key);
    size_t base = (size_t)(key % c->nsets) * CACHE_WAYS;
    for (size_t i = 0; i < CACHE_WAYS; i++)
        if (c->keys[base + i] == key)
            return c->pol[base + i] + 1;
    return 0;
}

static void dcache_put(dcache *c, uint64_t key, uint8_t pol)
{
    if (c->nsets == 0)
        return;
    key = nz(key);
    size_t set = (size_t)(key % c->nsets), base = set * CACHE_WAYS;
    for (size_t i = 0; i < CACHE_WAYS; i++) {
        if (c->keys[base + i] == key || c->keys[base + i] == 0) {
            c->keys[base + i] = key;
            c->pol[base + i] = pol;
            return;
        }
    }
    size_t slot = base + c->hand[set];
    c->hand[set] = (uint8_t)((c->hand[set] + 1) % CACHE_WAYS);
    c->keys[slot] = key;
    c->pol[slot] = pol;
}

/* ---- blobs ---- */

static int btab_grow(shard *sh)
{
    void **t = chain_grow((void **)sh->btab, &sh->btab_size, 64, offsetof(blob, hnext), offsetof(blob, hash));
    if (t != NULL)
        sh->btab = (blob **)t;
    return t != NULL ? 0 : -1;
}

/* A reference to the interned blob with these bytes (and parent). */
static blob *blob_get(sampler *s, shard *sh, const uint8_t *data, size_t len, blob *parent)
{
    if (len == 0)
        data = (const uint8_t *)""; /* an empty resource or scope may come as NULL */
    uint64_t h = hash_mix64(hash_fnv1a(data, len, HASH_FNV1A_INIT) ^ (uint64_t)(uintptr_t)parent);
    if (sh->btab_size != 0) {
        for (blob *b = sh->btab[h & (sh->btab_size - 1)]; b != NULL; b = b->hnext) {
            if (b->hash == h && b->parent == parent && b->len == len && memcmp(b->data, data, len) == 0) {
                b->refs++;
                return b;
            }
        }
    }
    if (sh->n_blobs >= sh->btab_size && btab_grow(sh) != 0)
        return NULL;
    blob *b = malloc(sizeof(*b) + len);
    if (b == NULL)
        return NULL;
    b->parent = parent;
    if (parent != NULL)
        parent->refs++;
    b->hash = h;
    b->refs = 1;
    b->len = (uint32_t)len;
    memcpy(b->data, data, len);
    b->hnext = sh->btab[h & (sh->btab_size - 1)];
    sh->btab[h & (sh->btab_size - 1)] = b;
    sh->n_blobs++;
    held_add(s, sh, sizeof(*b) + len + MALLOC_OVERHEAD);
    return b;
}

static void blob_put(sampler *s, shard *sh, blob *b)
{
    while (b != NULL && --b->refs == 0) {
        blob **pp = &sh->btab[b->hash & (sh->btab_size - 1)];
        while (*pp != b)
            pp = &(*pp)->hnext;
        *pp = b->hnext;
        sh->n_blobs--;
        held_sub(s, sh, sizeof(*b) + b->len + MALLOC_OVERHEAD);
        blob *parent = b->parent;
        free(b);
        b = parent;
    }
}

/* ---- scratch ---- */

static int ensure(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int ensure_spans(shard *sh, size_t n)
{
    if (n <= sh->span_cap)
        return 0;
    size_t cap = sh->span_cap ? sh->span_cap : 64;
    while (cap < n)
        cap *= 2;
    trace **a = realloc(sh->span_trace, cap * sizeof(*a));
    if (a != NULL)
        sh->span_trace = a;
    uint32_t *b = realloc(sh->span_size, cap * sizeof(*b));
    if (b != NULL)
        sh->span_size = b;
    int16_t *c = realloc(sh->span_late, cap * sizeof(*c));
    if (c != NULL)
        sh->span_late = c;
    if (a == NULL || b == NULL || c == NULL)
        return -1;
    sh->span_cap = cap;
    return 0;
}

/* Pack a message into the shard's pack scratch; NULL on out-of-memory. */
static const uint8_t *pack_msg(shard *sh, const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    size_t cap = sh->pack_cap;
    void *p = sh->pack;
    if (ensure(&p, &cap, n + 1, 1) != 0)
        return NULL;
    sh->pack = p;
    sh->pack_cap = cap;
    *len = protobuf_c_message_pack(m, sh->pack);
    return sh->pack;
}

/* ---- trace table ---- */

static int tab_grow(shard *sh)
{
    void **t = chain_grow((void **)sh->tab, &sh->tab_size, 1024, offsetof(trace, hnext), offsetof(trace, key));
    if (t != NULL)
        sh->tab = (trace **)t;
    return t != NULL ? 0 : -1;
}

static trace *tab_find(shard *sh, uint64_t key, const uint8_t *id, const tenant_name *tn)
{
    if (sh->tab_size == 0)
        return NULL;
    for (trace *t = sh->tab[key & (sh->tab_size - 1)]; t != NULL; t = t->hnext)
        if (t->key == key && t->tenant == tn && memcmp(t->id, id, 16) == 0)
            return t;
    return NULL;
}

static void tab_remove(shard *sh, trace *t)
{
    trace **pp = &sh->tab[t->key & (sh->tab_size - 1)];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    sh->n_traces--;
}

static void list_unlink(trace *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
}

static void list_append(trace *head, trace *t)
{
    t->prev = head->prev;
    t->next = head;
    head->prev->next = t;
    head->prev = t;
}

static void quiet_unlink(trace *t)
{
    t->qprev->qnext = t->qnext;
    t->qnext->qprev = t->qprev;
    t->in_quiet = 0;
}

static void quiet_append(shard *sh, trace *t)
{
    t->qprev = sh->quiet.qprev;
    t->qnext = &sh->quiet;
    sh->quiet.qprev->qnext = t;
    sh->quiet.qprev = t;
    t->in_quiet = 1;
}

static const tenant_name *tenant_intern(shard *sh, const char *tenant)
{
    if (tenant == NULL)
        tenant = "";
    size_t n = strlen(tenant);
    uint64_t h = hash_fnv1a(tenant, n, HASH_FNV1A_INIT);
    for (tenant_name *t = sh->tenants; t != NULL; t = t->next)
        if (t->hash == h && strcmp(t->name, tenant) == 0)
            return t;
    tenant_name *t = malloc(sizeof(*t) + n + 1);
    if (t == NULL)
        return NULL;
    t->hash = h;
    memcpy(t->name, tenant, n + 1);
    t->next = sh->tenants;
    sh->tenants = t;
    return t;
}

/* The in-flight gauge drops here, not at the decision: a sampled trace is
 * still held until it has been handed to the backends, so "0 in flight"
 * means everything decided has also been emitted (as bytes_held does). */
static void trace_free(sampler *s, shard *sh, trace *t)
{
    metrics_gauge_add(s->m.in_flight, -1);
    for (seg *g = t->segs, *nx; g != NULL; g = nx) {
        nx = g->next;
        blob_put(s, sh, g->scope);
        free(g);
    }
    free(t->raw);
    held_sub(s, sh, t->mem);
    sh->spans_held -= t->sum.spans;
    sh->wire_held -= t->sum.span_bytes;
    free(t);
}

/* The ready list: sampled traces in decision order, until every
 * destination has them. */
static void ready_append(shard *sh, trace *t)
{
    t->next = NULL;
    if (sh->ready_tail != NULL)
        sh->ready_tail->next = t;
    else
        sh->ready = t;
    sh->ready_tail = t;
    sh->n_ready++;
    sh->ready_bytes += t->mem;
    sh->ready_spans += t->sum.spans;
}

/* Unlinks t, whose predecessor on the ready list is prev (NULL: the head). */
static void ready_remove(shard *sh, trace *prev, trace *t)
{
    if (prev != NULL)
        prev->next = t->next;
    else
        sh->ready = t->next;
    if (sh->ready_tail == t)
        sh->ready_tail = prev;
    sh->n_ready--;
    sh->ready_bytes -= t->mem;
    sh->ready_spans -= t->sum.spans;
}

/* ---- deciding ---- */

static void decide(sampler *s, shard *sh, trace *t, uint64_t now_ns, int reason)
{
    int who;
    if (s->pol.stateful)
        pthread_mutex_lock(&s->pol_lock);
    int keep = sp_decide(&s->pol, &t->sum, now_ns, &who);
    if (s->pol.stateful)
        pthread_mutex_unlock(&s->pol_lock);
    tab_remove(sh, t);
    list_unlink(t);
    if (t->in_quiet)
        quiet_unlink(t);
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
    default: sh->st.decided_flush++; break;
    }
    if (keep) {
        sh->st.sampled++;
        sh->st.spans_sampled += t->sum.spans;
        if (who >= 0) {
            atomic_fetch_add_explicit(&s->pol.top[who].n_kept, 1, memory_order_relaxed);
            metrics_add(s->pol.top[who].m_kept, 1);
        }
        dcache_put(&sh->sampled, t->key, (uint8_t)(who >= 0 && who < 254 ? who + 1 : 0));
        t->who = who;
        ready_append(sh, t);
    } else {
        sh->st.dropped++;
        sh->st.spans_dropped += t->sum.spans;
        dcache_put(&sh->not_sampled, t->key, 0);
        trace_free(s, sh, t);
    }
}

/* Decide the oldest undecided traces while over the shard's budgets. */
static size_t enforce_budget(sampler *s, shard *sh, uint64_t now_ns)
{
    size_t n = 0;
    while (sh->fifo.next != &sh->fifo && (sh->bytes > s->max_bytes || sh->n_traces > s->max_traces)) {
        if (sh->n_traces > s->max_traces)
            sh->st.evicted_traces++;
        decide(s, sh, sh->fifo.next, now_ns, R_EVICT);
        n++;
    }
    return n;
}

/* ---- output ---- */

/* Bytes the segment's spans take in the output (with the policy attribute
 * appended to each span when extra > 0). */
static size_t seg_out_len(const seg *g, size_t extra)
{
    if (extra == 0)
        return g->len;
    size_t n = 0;
    const uint8_t *p = g->data, *end = g->data + g->len;
    while (p < end) {
        uint64_t l = 0;
        if ((p = get_varint(p + 1, end, &l)) == NULL)
            break; /* cannot happen: the sampler framed these bytes */
        n += field_len(l + extra);
        p += l;
    }
    return n;
}

static uint8_t *seg_write(uint8_t *o, const seg *g, const uint8_t *attr, size_t extra)
{
    if (extra == 0) {
        memcpy(o, g->data, g->len);
        return o + g->len;
    }
    const uint8_t *p = g->data, *end = g->data + g->len;
    while (p < end) {
        uint64_t l = 0;
        if ((p = get_varint(p + 1, end, &l)) == NULL)
            break;
        o = put_field_hdr(o, 2, l + extra);
        memcpy(o, p, l);
        memcpy(o + l, attr, extra);
        o += l + extra;
        p += l;
    }
    return o;
}

/* The output has one ScopeSpans per distinct scope, however many requests
 * the trace's segments came in: the scopes in order of first appearance in
 * sh->groups, with their payload sizes in sh->group_len. */
static int collect_groups(shard *sh, const trace *t, size_t extra, size_t *n_groups)
{
    size_t ng = 0;
    for (const seg *g = t->segs; g != NULL; g = g->next) {
        size_t i = 0;
        while (i < ng && sh->groups[i] != g->scope)
            i++;
        if (i == ng) {
            void *gp = sh->groups, *lp = sh->group_len;
            size_t c1 = sh->group_cap, c2 = sh->group_cap;
            if (ensure(&gp, &c1, ng + 1, sizeof(blob *)) != 0)
                return -1;
            sh->groups = gp;
            if (ensure(&lp, &c2, ng + 1, sizeof(size_t)) != 0)
                return -1;
            sh->group_len = lp;
            sh->group_cap = c1 < c2 ? c1 : c2;
            sh->groups[ng] = g->scope;
            sh->group_len[ng] = g->scope->len;
            ng++;
        }
        sh->group_len[i] += seg_out_len(g, extra);
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
    const uint8_t *attr = NULL;
    size_t extra = 0;
    if (s->record_policy && t->who >= 0) {
        attr = s->attr_enc[t->who];
        extra = s->attr_len[t->who];
    }
    size_t ng;
    if (collect_groups(sh, t, extra, &ng) != 0)
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
            memcpy(o, sh->groups[k]->data, sh->groups[k]->len);
            o += sh->groups[k]->len;
            for (const seg *g = t->segs; g != NULL; g = g->next)
                if (g->scope == sh->groups[k])
                    o = seg_write(o, g, attr, extra);
        }
    }
    sh->out.len = (size_t)(o - (uint8_t *)sh->out.data);
    return 0;
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
        ready_remove(sh, prev, t);
        trace_free(s, sh, t);
    }
    if (sh->n_ready != sh->held_pub) {
        metrics_gauge_add(s->m.held, (int64_t)sh->n_ready - (int64_t)sh->held_pub);
        sh->held_pub = sh->n_ready;
    }
}

/* ---- public ---- */

static int read_config(sampler *s, const config_node *n, size_t n_shards, size_t *sampled_cache,
                       size_t *not_sampled_cache, char *err, size_t errlen)
{
    static const char *const keys[] = {"decision_wait", "quiet_after",       "max_bytes",     "max_traces",
                                       "sampled_cache", "not_sampled_cache", "record_policy", "policies",
                                       NULL};
    uint64_t wait, quiet, max_traces, sc, nsc;
    size_t max_bytes;
    if (!config_is_map(n))
        return config_error(n, NULL, err, errlen, "expected a sampling mapping {decision_wait, policies, ...}");
    if (config_check_keys(n, keys, err, errlen) != 0 ||
        config_duration_ms(n, "decision_wait", 10000, &wait, err, errlen) != 0 ||
        config_duration_ms(n, "quiet_after", 0, &quiet, err, errlen) != 0 ||
        config_size(n, "max_bytes", (size_t)256 << 20, &max_bytes, err, errlen) != 0 ||
        config_uint(n, "max_traces", 200000, 1, UINT32_MAX, &max_traces, err, errlen) != 0 ||
        config_uint(n, "sampled_cache", 100000, 0, UINT32_MAX, &sc, err, errlen) != 0 ||
        config_uint(n, "not_sampled_cache", 100000, 0, UINT32_MAX, &nsc, err, errlen) != 0 ||
        config_bool(n, "record_policy", 0, &s->record_policy, err, errlen) != 0)
        return -1;
    if (wait == 0 || wait > 3600 * 1000)
        return config_error(n, "decision_wait", err, errlen, "must be more than 0 and at most 1h");
    if (config_scalar(config_get(n, "quiet_after")) != NULL && quiet >= wait)
        return config_error(n, "quiet_after", err, errlen, "must be less than decision_wait");
    if (max_bytes < ((size_t)1 << 20))
        return config_error(n, "max_bytes", err, errlen, "must be at least 1MiB");
    if (config_get(n, "policies") == NULL)
        return config_error(n, "policies", err, errlen, "required key is missing");
    s->wait_ns = wait * 1000000;
    s->quiet_ns = config_scalar(config_get(n, "quiet_after")) != NULL ? quiet * 1000000 : NO_QUIET;
    s->max_bytes = max_bytes / n_shards;
    s->max_traces = (size_t)(max_traces + n_shards - 1) / n_shards;
    *sampled_cache = (size_t)(sc + n_shards - 1) / n_shards;
    *not_sampled_cache = (size_t)(nsc + n_shards - 1) / n_shards;
    return sp_set_read(&s->pol, config_get(n, "policies"), err, errlen);
}

/* KeyValue{key: "sampling.policy", value: {string_value: name}} framed as Span field 9. */
static int build_policy_attrs(sampler *s)
{
    s->attr_enc = calloc(s->pol.n_top, sizeof(*s->attr_enc));
    s->attr_len = calloc(s->pol.n_top, sizeof(*s->attr_len));
    if (s->attr_enc == NULL || s->attr_len == NULL)
        return -1;
    size_t klen = strlen(POLICY_ATTR_KEY);
    for (size_t i = 0; i < s->pol.n_top; i++) {
        size_t nlen = strlen(s->pol.top[i].name);
        size_t any = field_len(nlen), kv = field_len(klen) + field_len(any), total = field_len(kv);
        uint8_t *p = malloc(total);
        if (p == NULL)
            return -1;
        s->attr_enc[i] = p;
        s->attr_len[i] = total;
        p = put_field_hdr(p, 9, kv);
        p = put_field_hdr(p, 1, klen);
        memcpy(p, POLICY_ATTR_KEY, klen);
        p += klen;
        p = put_field_hdr(p, 2, any);
        p = put_field_hdr(p, 1, nlen);
        memcpy(p, s->pol.top[i].name, nlen);
    }
    return 0;
}

sampler *sampler_new(const config_node *n, size_t n_shards, char *err, size_t errlen)
{
    if (n_shards == 0)
        n_shards = 1;
    sampler *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "sampling: out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->pol_lock, NULL);
    s->dest_mask = 1;
    size_t sc = 0, nsc = 0;
    if (read_config(s, n, n_shards, &sc, &nsc, err, errlen) != 0) {
        sampler_free(s);
        return NULL;
    }
    s->shards = calloc(n_shards, sizeof(*s->shards));
    if (s->shards == NULL || build_policy_attrs(s) != 0)
        goto oom;
    s->n_shards = n_shards;
    for (size_t i = 0; i < n_shards; i++) {
        shard *sh = &s->shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        sh->fifo.next = sh->fifo.prev = &sh->fifo;
        sh->quiet.qnext = sh->quiet.qprev = &sh->quiet;
        if (dcache_init(&sh->sampled, sc) != 0 || dcache_init(&sh->not_sampled, nsc) != 0 || tab_grow(sh) != 0 ||
            btab_grow(sh) != 0)
            goto oom;
    }
    return s;
oom:
    snprintf(err, errlen, "sampling: out of memory");
    sampler_free(s);
    return NULL;
}

void sampler_free(sampler *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_shards; i++) {
        shard *sh = &s->shards[i];
        while (sh->fifo.next != &sh->fifo) {
            trace *t = sh->fifo.next;
            list_unlink(t);
            trace_free(s, sh, t);
        }
        while (sh->ready != NULL) {
            trace *t = sh->ready;
            sh->ready = t->next;
            trace_free(s, sh, t);
        }
        for (tenant_name *t = sh->tenants, *nx; t != NULL; t = nx) {
            nx = t->next;
            free(t);
        }
        dcache_free(&sh->sampled);
        dcache_free(&sh->not_sampled);
        free(sh->tab);
        free(sh->btab);
        free(sh->span_trace);
        free(sh->span_size);
        free(sh->span_late);
        free(sh->pack);
        free(sh->groups);
        free(sh->group_len);
        buf_free(&sh->out);
        buf_free(&sh->late_rs);
        buf_free(&sh->late_ss);
        pthread_mutex_destroy(&sh->lock);
    }
    free(s->shards);
    for (size_t i = 0; s->attr_enc != NULL && i < s->pol.n_top; i++)
        free(s->attr_enc[i]);
    free(s->attr_enc);
    free(s->attr_len);
    sp_set_free(&s->pol);
    pthread_mutex_destroy(&s->pol_lock);
    free(s);
}

size_t sampler_shard_of(const sampler *s, const uint8_t trace_id[16])
{
    return s->n_shards <= 1 ? 0 : (size_t)(sp_trace_hash(trace_id) % s->n_shards);
}

/* Append a length-delimited field to b. */
static int buf_field(buf *b, unsigned field, const void *p, size_t n)
{
    uint8_t hdr[11];
    size_t h = (size_t)(put_field_hdr(hdr, field, n) - hdr);
    if (buf_reserve(b, h + n) != 0)
        return -1;
    buf_append(b, hdr, h);
    buf_append(b, p, n);
    return 0;
}

/* Encode a message as a length-delimited field into b. */
static int buf_msg_field(shard *sh, buf *b, unsigned field, const ProtobufCMessage *m)
{
    size_t len;
    const uint8_t *p = pack_msg(sh, m, &len);
    return p != NULL ? buf_field(b, field, p, len) : -1;
}

/* The resource or scope part of a container: field 1 (message) and field 3
 * (schema_url), appended to b; both are tried, -1 if either failed. */
static int context_fields(shard *sh, buf *b, const ProtobufCMessage *m, const char *schema_url)
{
    int rc = 0;
    if (m != NULL && buf_msg_field(sh, b, 1, m) != 0)
        rc = -1;
    if (schema_url != NULL && schema_url[0] != '\0' && buf_field(b, 3, schema_url, strlen(schema_url)) != 0)
        rc = -1;
    return rc;
}

/* Resources and scopes are interned by their encoded context part. */
static blob *context_blob(sampler *s, shard *sh, const ProtobufCMessage *m, const char *schema_url, blob *parent)
{
    buf b = BUF_INIT;
    if (context_fields(sh, &b, m, schema_url) != 0)
        goto fail;
    blob *r = blob_get(s, sh, (const uint8_t *)b.data, b.len, parent);
    buf_free(&b);
    return r;
fail:
    buf_free(&b);
    return NULL;
}

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
static trace *trace_new(add_ctx *c, const uint8_t *id, uint64_t key, uint64_t idh)
{
    sampler *s = c->s;
    shard *sh = c->sh;
    if (sh->n_traces >= sh->tab_size && tab_grow(sh) != 0)
        return NULL;
    trace *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    memcpy(t->id, id, 16);
    t->tenant = c->tn;
    t->key = key;
    t->first_ns = c->now_ns;
    t->sum.id_hash = idh;
    t->sum.min_start = UINT64_MAX;
    t->who = -1;
    t->mem = sizeof(*t) + MALLOC_OVERHEAD;
    held_add(s, sh, t->mem);
    t->hnext = sh->tab[key & (sh->tab_size - 1)];
    sh->tab[key & (sh->tab_size - 1)] = t;
    sh->n_traces++;
    list_append(&sh->fifo, t);
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
    trace *t = tab_find(sh, key, sp->trace_id.data, c->tn);
    if (t != NULL)
        return t;
    int pol = dcache_get(&sh->sampled, key);
    if (pol != 0) {
        sh->span_late[i] = (int16_t)pol;
        (*n_late)++;
        return NULL;
    }
    if (dcache_get(&sh->not_sampled, key) != 0) {
        sh->span_late[i] = -1;
        sh->st.late_dropped++;
        metrics_add(c->s->m.late_dropped, 1);
        return NULL;
    }
    return trace_new(c, sp->trace_id.data, key, idh);
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
    uint64_t bits = s->pol.n_attr ? sp_attr_bits(&s->pol, sp->attributes, sp->n_attributes) : 0;
    size_t wire = protobuf_c_message_get_packed_size(&sp->base);
    update_summary(t, sp, bits | c->rbits, wire);
    if (s->pol.n_ottl != 0)
        sp_ottl_span(&s->pol, &t->sum, rs->resource, c->scope, sp);
    t->last_ns = c->now_ns;
    if (sp->parent_span_id.len == 0 && s->quiet_ns != NO_QUIET) {
        if (t->in_quiet)
            quiet_unlink(t);
        quiet_append(sh, t);
    } else if (t->in_quiet) {
        quiet_unlink(t);
        quiet_append(sh, t);
    }
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
        held_add(s, sh, m);
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
        c->rb = context_blob(s, sh, rs->resource ? &rs->resource->base : NULL, rs->schema_url, NULL);
    blob *sb = c->rb != NULL ? context_blob(s, sh, ss->scope ? &ss->scope->base : NULL, ss->schema_url, c->rb) : NULL;
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
        blob_put(s, sh, sb); /* segments hold their own references */
    return buffered;
}

/* A late span leaves with the attribute naming the policy that kept its
 * trace, as the buffered spans of that trace did (when record_policy). */
static int late_span(sampler *s, shard *sh, const span_t *sp, int who)
{
    size_t len;
    const uint8_t *p = pack_msg(sh, &sp->base, &len);
    if (p == NULL)
        return -1;
    if (!s->record_policy || who < 0 || (size_t)who >= s->pol.n_top)
        return buf_field(&sh->late_ss, 2, p, len);
    size_t extra = s->attr_len[who];
    uint8_t hdr[11];
    size_t h = (size_t)(put_field_hdr(hdr, 2, len + extra) - hdr);
    if (buf_reserve(&sh->late_ss, h + len + extra) != 0)
        return -1;
    buf_append(&sh->late_ss, hdr, h);
    buf_append(&sh->late_ss, p, len);
    buf_append(&sh->late_ss, s->attr_enc[who], extra);
    return 0;
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
    context_fields(sh, &sh->late_ss, ss->scope ? &ss->scope->base : NULL, ss->schema_url);
    for (size_t i = 0; i < ss->n_spans; i++) {
        if (sh->span_late[i] <= 0)
            continue;
        int who = sh->span_late[i] - 2; /* stored policy byte: who + 1, 0 = none */
        if (late_span(s, sh, ss->spans[i], who) == 0) {
            sh->st.late_sampled++;
            metrics_add(s->m.late_sampled, 1);
        } else {
            sh->st.lost_oom++;
        }
    }
    buf_field(&sh->late_rs, 2, sh->late_ss.data, sh->late_ss.len);
}

/* The passes depend on each other in this order: pass 2 copies into what
 * pass 1 sized, pass 3 forwards what pass 1 found late. */
static size_t add_scope(add_ctx *c, const scope_spans *ss)
{
    if (ensure_spans(c->sh, ss->n_spans) != 0) {
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
        context_fields(sh, &sh->late_ss, rs->resource ? &rs->resource->base : NULL, rs->schema_url);
        buf_append(&sh->late_ss, sh->late_rs.data, sh->late_rs.len);
        if (buf_field(c->late_out, 1, sh->late_ss.data, sh->late_ss.len) != 0)
            log_error("sampler: out of memory forwarding late spans", "tenant=%s", c->tn->name);
    }
    if (c->rb != NULL)
        blob_put(s, sh, c->rb);
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
    c.tn = tenant_intern(sh, tenant);
    if (c.tn == NULL)
        goto out;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        if (req->resource_spans[r] != NULL)
            buffered += add_resource(&c, req->resource_spans[r]);
    sh->st.buffered += buffered;
    enforce_budget(s, sh, now_ns);
out:
    pthread_mutex_unlock(&sh->lock);
    return buffered;
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

size_t sampler_tick(sampler *s, size_t shard_i, uint64_t now_ns, sampler_emit_fn emit, void *data)
{
    shard *sh = shard_enter(s, shard_i);
    size_t n = 0;
    if (sh == NULL)
        return 0;
    n += enforce_budget(s, sh, now_ns);
    while (sh->fifo.next != &sh->fifo && now_ns - sh->fifo.next->first_ns >= s->wait_ns &&
           now_ns >= sh->fifo.next->first_ns) {
        decide(s, sh, sh->fifo.next, now_ns, R_WAIT);
        n++;
    }
    while (s->quiet_ns != NO_QUIET && sh->quiet.qnext != &sh->quiet && now_ns >= sh->quiet.qnext->last_ns &&
           now_ns - sh->quiet.qnext->last_ns >= s->quiet_ns) {
        decide(s, sh, sh->quiet.qnext, now_ns, R_QUIET);
        n++;
    }
    emit_ready(s, sh, emit, data);
    pthread_mutex_unlock(&sh->lock);
    return n;
}

size_t sampler_flush(sampler *s, size_t shard_i, uint64_t now_ns, sampler_emit_fn emit, void *data)
{
    shard *sh = shard_enter(s, shard_i);
    size_t n = 0;
    if (sh == NULL)
        return 0;
    while (sh->fifo.next != &sh->fifo) {
        decide(s, sh, sh->fifo.next, now_ns, R_FLUSH);
        n++;
    }
    emit_ready(s, sh, emit, data);
    pthread_mutex_unlock(&sh->lock);
    return n;
}

/* Removes an undecided trace that another member now owns; no decision is
 * remembered, so its later spans are routed (and owned) afresh. */
static void release_trace(sampler *s, shard *sh, trace *t)
{
    tab_remove(sh, t);
    list_unlink(t);
    if (t->in_quiet)
        quiet_unlink(t);
    sh->st.released++;
    sh->st.spans_released += t->sum.spans;
    trace_free(s, sh, t);
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
        release_trace(s, sh, t);
        n++;
    }
    pthread_mutex_unlock(&sh->lock);
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
    *full = n > 0 && sh->bytes >= s->max_bytes;
    pthread_mutex_unlock(&sh->lock);
    return n;
}

void sampler_set_destinations(sampler *s, unsigned n)
{
    s->dest_mask = n >= 64 ? UINT64_MAX : n == 0 ? 1 : (1ull << n) - 1;
}

int sampler_hold(sampler *s, size_t shard_i, const char *tenant, const uint8_t *req, size_t len, size_t spans,
                 uint64_t done)
{
    shard *sh = shard_enter(s, shard_i);
    if (sh == NULL)
        return -1;
    const tenant_name *tn = tenant_intern(sh, tenant);
    trace *t = tn != NULL ? calloc(1, sizeof(*t)) : NULL;
    uint8_t *raw = t != NULL ? malloc(len ? len : 1) : NULL;
    if (raw == NULL) {
        free(t);
        pthread_mutex_unlock(&sh->lock);
        return -1;
    }
    memcpy(raw, req, len);
    t->raw = raw;
    t->raw_len = len;
    t->tenant = tn;
    t->who = -1;
    t->done = done;
    t->sum.spans = spans;
    sh->spans_held += spans; /* trace_free takes them back */
    t->mem = sizeof(*t) + len + 2 * MALLOC_OVERHEAD;
    held_add(s, sh, t->mem);
    metrics_gauge_add(s->m.in_flight, 1); /* trace_free takes it back */
    ready_append(sh, t);
    if (sh->n_ready != sh->held_pub) {
        metrics_gauge_add(s->m.held, (int64_t)sh->n_ready - (int64_t)sh->held_pub);
        sh->held_pub = sh->n_ready;
    }
    pthread_mutex_unlock(&sh->lock);
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
        ready_remove(sh, NULL, t);
        sp += t->sum.spans;
        n++;
        trace_free(s, sh, t);
    }
    sh->st.abandoned += n;
    sh->st.spans_abandoned += sp;
    metrics_gauge_add(s->m.held, -(int64_t)sh->held_pub);
    sh->held_pub = 0;
    pthread_mutex_unlock(&sh->lock);
    if (spans != NULL)
        *spans = sp;
    return n;
}
