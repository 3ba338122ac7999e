/* sampler_store: the tail sampler's data structures, shared by its files:
 * memory accounting, the per-shard trace table and lists, the decision
 * caches, the ready list, and interned resource / scope encodings.
 *
 * Storage. Spans are copied out of the request arena as protobuf bytes: for
 * each (trace, ScopeSpans group) of a request one segment holds the spans'
 * encodings already framed as ScopeSpans field 2, so emitting is mostly
 * memcpy. The encoded resource (ResourceSpans fields 1 and 3) and scope
 * (ScopeSpans fields 1 and 3) are interned per shard by content and shared by
 * refcount, so a trace's spans cost their own bytes plus a small segment
 * header. Trace records and segments come from the shard's slab (core/slab.h):
 * a segment per trace and request, freed when the trace is decided, is the
 * allocation the sampler makes most, and the slab's size classes reuse its
 * memory at a few instructions a call where malloc searched its bins.
 * Accounting (bytes_held) is the slab's chunk sizes, and for what is
 * malloc'ed (resource and scope encodings, held requests) its size plus a
 * fixed allowance for malloc's own header. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sampler_internal.h"

/* The gauges move once per call into the shard, by what changed under
 * the lock: a locked add per span or trace would wait, each time, for the
 * stores of the spans just copied in to reach the cache. */
void sm_shard_publish(sampler *s, shard *sh)
{
    if (sh->bytes != sh->bytes_pub)
        metrics_gauge_add(s->m.bytes, (int64_t)sh->bytes - (int64_t)sh->bytes_pub);
    size_t live = sh->n_traces + sh->n_ready; /* undecided, and sampled until handed on */
    if (live != sh->live_pub)
        metrics_gauge_add(s->m.in_flight, (int64_t)live - (int64_t)sh->live_pub);
    sh->bytes_pub = sh->bytes;
    sh->live_pub = live;
}

void sm_shard_leave(sampler *s, shard *sh)
{
    sm_shard_publish(s, sh);
    pthread_mutex_unlock(&sh->lock);
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

int sm_dcache_init(dcache *c, size_t entries, int with_rate)
{
    memset(c, 0, sizeof(*c));
    if (entries == 0)
        return 0;
    c->nsets = (entries + CACHE_WAYS - 1) / CACHE_WAYS;
    c->keys = calloc(c->nsets * CACHE_WAYS, sizeof(*c->keys));
    c->pol = calloc(c->nsets * CACHE_WAYS, 1);
    c->hand = calloc(c->nsets, 1);
    if (with_rate && (c->rate = calloc(c->nsets * CACHE_WAYS, sizeof(*c->rate))) == NULL)
        return -1;
    return c->keys != NULL && c->pol != NULL && c->hand != NULL ? 0 : -1;
}

void sm_dcache_free(dcache *c)
{
    free(c->keys);
    free(c->pol);
    free(c->hand);
    free(c->rate);
}

static uint64_t nz(uint64_t k) { return k != 0 ? k : 1; }

/* 0: absent; else the stored policy byte + 1 */
int sm_dcache_get(const dcache *c, uint64_t key, double *rate)
{
    if (c->nsets == 0)
        return 0;
    key = nz(key);
    size_t base = (size_t)(key % c->nsets) * CACHE_WAYS;
    for (size_t i = 0; i < CACHE_WAYS; i++) {
        if (c->keys[base + i] == key) {
            if (rate != NULL)
                *rate = c->rate != NULL ? c->rate[base + i] : 1;
            return c->pol[base + i] + 1;
        }
    }
    return 0;
}

void sm_dcache_prefetch(const dcache *c, uint64_t key)
{
    if (c->nsets == 0)
        return;
    size_t set = (size_t)(nz(key) % c->nsets);
    __builtin_prefetch(&c->keys[set * CACHE_WAYS]);
    __builtin_prefetch(&c->pol[set * CACHE_WAYS]);
    __builtin_prefetch(&c->hand[set]);
}

void sm_dcache_put(dcache *c, uint64_t key, uint8_t pol, double rate)
{
    if (c->nsets == 0)
        return;
    key = nz(key);
    size_t set = (size_t)(key % c->nsets), base = set * CACHE_WAYS, slot = base;
    while (slot < base + CACHE_WAYS && c->keys[slot] != key && c->keys[slot] != 0)
        slot++;
    if (slot == base + CACHE_WAYS) { /* set full: replace the oldest */
        slot = base + c->hand[set];
        c->hand[set] = (uint8_t)((c->hand[set] + 1) % CACHE_WAYS);
    }
    c->keys[slot] = key;
    c->pol[slot] = pol;
    if (c->rate != NULL)
        c->rate[slot] = (float)rate;
}

/* ---- blobs ---- */

int sm_btab_grow(shard *sh)
{
    void **t = chain_grow((void **)sh->btab, &sh->btab_size, 64, offsetof(blob, hnext), offsetof(blob, hash));
    if (t != NULL)
        sh->btab = (blob **)t;
    return t != NULL ? 0 : -1;
}

/* A reference to the interned blob with these bytes (and parent). */
blob *sm_blob_get(shard *sh, const uint8_t *data, size_t len, blob *parent)
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
    if (sh->n_blobs >= sh->btab_size && sm_btab_grow(sh) != 0)
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
    sm_held_add(sh, sizeof(*b) + len + MALLOC_OVERHEAD);
    return b;
}

void sm_blob_put(shard *sh, blob *b)
{
    while (b != NULL && --b->refs == 0) {
        blob **pp = &sh->btab[b->hash & (sh->btab_size - 1)];
        while (*pp != b)
            pp = &(*pp)->hnext;
        *pp = b->hnext;
        sh->n_blobs--;
        sm_held_sub(sh, sizeof(*b) + b->len + MALLOC_OVERHEAD);
        blob *parent = b->parent;
        free(b);
        b = parent;
    }
}

/* ---- scratch ---- */

int sm_ensure(void **p, size_t *cap, size_t need, size_t elem)
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

int sm_next_field_any(const uint8_t **p, const uint8_t *end, sm_field *f)
{
    uint64_t tag;
    if (*p >= end)
        return 0;
    f->start = *p;
    const uint8_t *q = get_varint(*p, end, &tag);
    if (q == NULL)
        return 0;
    f->num = (unsigned)(tag >> 3);
    f->wt = (unsigned)(tag & 7);
    f->payload = q;
    f->plen = 0;
    f->v = 0;
    switch (f->wt) {
    case 0:
        q = get_varint(q, end, &f->v);
        break;
    case 1:
    case 5: {
        size_t w = f->wt == 1 ? 8 : 4;
        if ((size_t)(end - q) < w)
            return 0;
        for (size_t i = 0; i < w; i++)
            f->v |= (uint64_t)q[i] << (8 * i);
        q += w;
        break;
    }
    case 2:
        if ((q = get_varint(q, end, &f->v)) == NULL || f->v > (uint64_t)(end - q))
            return 0;
        f->payload = q;
        f->plen = (size_t)f->v;
        q += f->v;
        break;
    default:
        return 0;
    }
    if (q == NULL)
        return 0;
    f->end = *p = q;
    return 1;
}

int sm_ensure_spans(shard *sh, size_t n)
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
    double *d = realloc(sh->span_rate, cap * sizeof(*d));
    if (d != NULL)
        sh->span_rate = d;
    uint64_t *k = realloc(sh->span_key, cap * sizeof(*k));
    if (k != NULL)
        sh->span_key = k;
    if (a == NULL || b == NULL || c == NULL || d == NULL || k == NULL)
        return -1;
    sh->span_cap = cap;
    return 0;
}

/* Pack a message into the shard's pack scratch; NULL on out-of-memory. */
const uint8_t *sm_pack_msg(shard *sh, const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    size_t cap = sh->pack_cap;
    void *p = sh->pack;
    if (sm_ensure(&p, &cap, n + 1, 1) != 0)
        return NULL;
    sh->pack = p;
    sh->pack_cap = cap;
    *len = protobuf_c_message_pack(m, sh->pack);
    return sh->pack;
}

/* ---- trace table ---- */

int sm_tab_grow(shard *sh)
{
    void **t = chain_grow((void **)sh->tab, &sh->tab_size, 1024, offsetof(trace, hnext), offsetof(trace, key));
    if (t != NULL)
        sh->tab = (trace **)t;
    return t != NULL ? 0 : -1;
}

trace *sm_tab_find(shard *sh, uint64_t key, const uint8_t *id, const tenant_name *tn)
{
    if (sh->tab_size == 0)
        return NULL;
    for (trace *t = sh->tab[key & (sh->tab_size - 1)]; t != NULL; t = t->hnext)
        if (t->key == key && t->tenant == tn && memcmp(t->id, id, 16) == 0)
            return t;
    return NULL;
}

void sm_tab_remove(shard *sh, trace *t)
{
    trace **pp = &sh->tab[t->key & (sh->tab_size - 1)];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    sh->n_traces--;
}

void sm_list_unlink(trace *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
}

void sm_list_append(trace *head, trace *t)
{
    t->prev = head->prev;
    t->next = head;
    head->prev->next = t;
    head->prev = t;
}

void sm_quiet_unlink(trace *t)
{
    t->qprev->qnext = t->qnext;
    t->qnext->qprev = t->qprev;
    t->in_quiet = 0;
}

void sm_quiet_append(shard *sh, trace *t)
{
    t->qprev = sh->quiet.qprev;
    t->qnext = &sh->quiet;
    sh->quiet.qprev->qnext = t;
    sh->quiet.qprev = t;
    t->in_quiet = 1;
}

const tenant_name *sm_tenant_intern(shard *sh, const char *tenant)
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

/* A sampled trace counts as in flight (on the ready list) until it has
 * been handed to the backends, so "0 in flight" means everything decided
 * has also been emitted (as bytes_held does). */
void sm_trace_free(shard *sh, trace *t)
{
    for (seg *g = t->segs, *nx; g != NULL; g = nx) {
        nx = g->next;
        sm_blob_put(sh, g->scope);
        slab_free(&sh->mem, g, sm_seg_size(g->len));
    }
    free(t->raw);
    sm_held_sub(sh, t->mem);
    sh->spans_held -= t->sum.spans;
    sh->wire_held -= t->sum.span_bytes;
    slab_free(&sh->mem, t, sizeof(*t));
}

/* The ready list: sampled traces in decision order, until every
 * destination has them. */
void sm_ready_append(shard *sh, trace *t)
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
void sm_ready_remove(shard *sh, trace *prev, trace *t)
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

/* Append a length-delimited field to b. */
int sm_buf_field(buf *b, unsigned field, const void *p, size_t n)
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
    const uint8_t *p = sm_pack_msg(sh, m, &len);
    return p != NULL ? sm_buf_field(b, field, p, len) : -1;
}

/* The resource or scope part of a container: field 1 (message) and field 3
 * (schema_url), appended to b; both are tried, -1 if either failed. */
int sm_context_fields(shard *sh, buf *b, const ProtobufCMessage *m, const char *schema_url)
{
    int rc = 0;
    if (m != NULL && buf_msg_field(sh, b, 1, m) != 0)
        rc = -1;
    if (schema_url != NULL && schema_url[0] != '\0' && sm_buf_field(b, 3, schema_url, strlen(schema_url)) != 0)
        rc = -1;
    return rc;
}

/* Resources and scopes are interned by their encoded context part. */
blob *sm_context_blob(shard *sh, const ProtobufCMessage *m, const char *schema_url, blob *parent)
{
    buf b = BUF_INIT;
    if (sm_context_fields(sh, &b, m, schema_url) != 0)
        goto fail;
    blob *r = sm_blob_get(sh, (const uint8_t *)b.data, b.len, parent);
    buf_free(&b);
    return r;
fail:
    buf_free(&b);
    return NULL;
}
