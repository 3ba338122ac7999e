/* sampler_add: taking a request's spans into the sampler (sampler_add,
 * sampler_add_wire): late spans of decided traces follow their cached
 * decision, the others are summarized for the policies and copied into
 * their trace's segments. Both entry points read a request into the same
 * span_in / ctx_in form, one scope at a time, and share every pass after
 * that: a decoded span is packed into its segment, a span from the bytes is
 * copied as it came. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "sampler_internal.h"

/* One span as the passes read it: what the summary needs, and the span
 * itself (decoded, or its encoded bytes). */
typedef struct span_in {
    const span_t *sp;        /* decoded; NULL when it comes as bytes */
    const uint8_t *raw;      /* the Span message's bytes (sp == NULL) */
    size_t raw_len;
    const uint8_t *trace_id; /* NULL unless 16 bytes */
    uint64_t start, end;
    unsigned code; /* status code, 0 without a status */
    int root;      /* no parent span id */
} span_in;

/* A resource's or scope's context part (the container's fields but its
 * list): a decoded message and schema URL, or the fields' bytes as they
 * came. */
typedef struct ctx_in {
    const ProtobufCMessage *m;
    const char *schema_url;
    const uint8_t *raw; /* NULL: decoded */
    size_t raw_len;
} ctx_in;

static void update_summary(trace *t, const span_in *in, uint64_t bits, size_t wire)
{
    sp_summary *m = &t->sum;
    if (in->start != 0 && in->start < m->min_start)
        m->min_start = in->start;
    if (in->end > m->max_end)
        m->max_end = in->end;
    m->spans++;
    m->span_bytes += wire;
    m->attr_bits |= bits;
    if (in->code < 8)
        m->status_mask |= 1u << in->code;
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
    ctx_in res, scope; /* of the spans being added */
    const Opentelemetry__Proto__Resource__V1__Resource *resource;         /* decoded only: for the policies */
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope_m; /* decoded only: for the policies */
    span_in *in;        /* the scope's spans */
    const uint8_t *req; /* bytes only: the request, and what its scan noted of */
    const otlp_wire_span *notes; /* its spans (NULL: none) */
    size_t n_notes, next_note;   /* the next span's note */
    blob *rb;           /* the resource's interned encoding, made on first use */
    uint64_t rbits;     /* the resource's attribute-policy bits, computed on first use */
    int rbits_done;
} add_ctx;

static int ctx_fields(shard *sh, buf *b, const ctx_in *x)
{
    return x->raw != NULL ? buf_append(b, x->raw, x->raw_len) : sm_context_fields(sh, b, x->m, x->schema_url);
}

static blob *ctx_blob(shard *sh, const ctx_in *x, blob *parent)
{
    return x->raw != NULL ? sm_blob_get(sh, x->raw, x->raw_len, parent)
                          : sm_context_blob(sh, x->m, x->schema_url, parent);
}

/* A trace is born on its first span: its links and accounting start here. */
static trace *trace_new(add_ctx *c, const uint8_t *id, uint64_t key)
{
    shard *sh = c->sh;
    if (sh->n_traces >= sh->tab_size && sm_tab_grow(sh) != 0)
        return NULL;
    trace *t = slab_alloc(&sh->mem, sizeof(*t));
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof(*t));
    memcpy(t->id, id, 16);
    t->tenant = c->tn;
    t->key = key;
    t->first_ns = c->now_ns;
    t->sum.min_start = UINT64_MAX;
    t->who = -1;
    t->mem = slab_size(sizeof(*t));
    sm_held_add(sh, t->mem);
    t->hnext = sh->tab[key & (sh->tab_size - 1)];
    sh->tab[key & (sh->tab_size - 1)] = t;
    sh->n_traces++;
    sm_list_append(&sh->fifo, t);
    return t;
}

/* A span of a trace decided earlier must not start a new trace: the
 * decision caches are asked before one is made. NULL when the span is not
 * buffered (span_late[i] then says whether it is late sampled or dropped). */
static trace *span_trace_of(add_ctx *c, const uint8_t *id, uint64_t key, size_t i, size_t *n_late)
{
    shard *sh = c->sh;
    trace *t = sm_tab_find(sh, key, id, c->tn);
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
    return trace_new(c, id, key);
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
static void span_account(add_ctx *c, trace *t, const span_in *in, size_t i)
{
    sampler *s = c->s;
    shard *sh = c->sh;
    const span_t *sp = in->sp; /* NULL on the bytes path, which sampler_wire_ok keeps to policies without it */
    if (!c->rbits_done && s->pol.n_attr != 0 && c->resource != NULL)
        c->rbits = sp_attr_bits(&s->pol, c->resource->attributes, c->resource->n_attributes);
    c->rbits_done = 1;
    uint64_t bits = s->pol.n_attr && sp != NULL ? sp_span_bits(&s->pol, sp) : 0;
    size_t wire = sp != NULL ? protobuf_c_message_get_packed_size(&sp->base) : in->raw_len;
    update_summary(t, in, bits | c->rbits, wire);
    if (s->pol.n_attr != 0)
        t->sum.attr_bits |= sp_summary_bits(&s->pol, &t->sum);
    if (s->pol.n_ottl != 0 && sp != NULL)
        sp_ottl_span(&s->pol, &t->sum, c->resource, c->scope_m, sp);
    t->last_ns = c->now_ns;
    quiet_update(s, sh, t, in->root, c->now_ns);
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
 * this shard's traces to buffer (late ones counted in *n_late). With
 * hundreds of thousands of open traces, a lookup is two cache misses (the
 * bucket, then the record): the keys are computed first and the buckets
 * fetched ahead, and each record a few spans before its lookup, so the
 * misses of a scope's spans overlap instead of coming one after another. */
#define INDEX_AHEAD 4
#define NOT_MINE INT16_MIN /* span_late while indexing: no trace id, or another shard's */

static size_t index_spans(add_ctx *c, size_t n, size_t *n_late)
{
    shard *sh = c->sh;
    size_t mine = 0;
    for (size_t i = 0; i < n; i++) {
        const span_in *in = &c->in[i];
        sh->span_trace[i] = NULL;
        sh->span_late[i] = NOT_MINE;
        if (in->trace_id == NULL)
            continue;
        uint64_t idh = sp_trace_hash(in->trace_id);
        if (sm_shard_of_hash(c->s, idh) != c->shard_i)
            continue;
        sh->span_late[i] = 0;
        sh->span_key[i] = hash_mix64(idh ^ c->tn->hash);
        if (sh->tab_size != 0)
            __builtin_prefetch(&sh->tab[sh->span_key[i] & (sh->tab_size - 1)]);
    }
    for (size_t i = 0; i < n; i++) {
        size_t a = i + INDEX_AHEAD;
        if (a < n && sh->span_late[a] != NOT_MINE && sh->tab_size != 0) {
            const trace *p = sh->tab[sh->span_key[a] & (sh->tab_size - 1)];
            if (p != NULL) {
                __builtin_prefetch(p);
            } else { /* not buffered: the decision caches are asked next */
                sm_dcache_prefetch(&sh->sampled, sh->span_key[a]);
                sm_dcache_prefetch(&sh->not_sampled, sh->span_key[a]);
            }
        }
        if (sh->span_late[i] == NOT_MINE) {
            sh->span_late[i] = 0;
            continue;
        }
        trace *t = span_trace_of(c, c->in[i].trace_id, sh->span_key[i], i, n_late);
        if (t == NULL)
            continue;
        span_account(c, t, &c->in[i], i);
        mine++;
    }
    return mine;
}

/* A trace gets one segment per request, sized in pass 1: made at its first
 * span here, and not tried again after a failure (pending_len cleared). */
static seg *pending_seg(shard *sh, trace *t, blob *sb)
{
    seg *g = t->pending;
    if (g != NULL || t->pending_len == 0 || sb == NULL)
        return g;
    g = slab_alloc(&sh->mem, sm_seg_size(t->pending_len));
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
        size_t m = slab_size(sm_seg_size(t->pending_len));
        t->mem += m;
        sm_held_add(sh, m);
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
static size_t copy_spans(add_ctx *c, size_t n)
{
    shard *sh = c->sh;
    size_t buffered = 0;
    if (c->rb == NULL)
        c->rb = ctx_blob(sh, &c->res, NULL);
    blob *sb = c->rb != NULL ? ctx_blob(sh, &c->scope, c->rb) : NULL;
    for (size_t i = 0; i < n; i++) {
        trace *t = sh->span_trace[i];
        if (t == NULL)
            continue;
        seg *g = pending_seg(sh, t, sb);
        if (g == NULL) {
            span_lost(c, t, sh->span_size[i]);
            continue;
        }
        const span_in *in = &c->in[i];
        uint8_t *o = put_field_hdr(g->data + g->len, 2, sh->span_size[i]);
        if (in->sp != NULL)
            o += protobuf_c_message_pack(&in->sp->base, o);
        else
            o = (uint8_t *)memcpy(o, in->raw, in->raw_len) + in->raw_len;
        g->len = (uint32_t)(o - g->data);
        g->n_spans++;
        buffered++;
    }
    for (size_t i = 0; i < n; i++) {
        trace *t = sh->span_trace[i];
        if (t != NULL) {
            t->pending = NULL;
            t->pending_len = 0;
            t->pending_n = 0;
        }
    }
    if (sb != NULL)
        sm_blob_put(sh, sb); /* segments hold their own references */
    return buffered;
}

/* A late span leaves with its trace's weight, as the buffered spans of that
 * trace did (when the set writes weights). */
static int late_span(sampler *s, shard *sh, const span_in *in, double rate)
{
    size_t len = in->raw_len;
    const uint8_t *p = in->sp != NULL ? sm_pack_msg(sh, &in->sp->base, &len) : in->raw;
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
static void late_scope(sampler *s, shard *sh, const ctx_in *scope, int who)
{
    ctx_fields(sh, &sh->late_ss, scope);
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
static void forward_late_spans(add_ctx *c, size_t n, size_t n_late)
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
    for (size_t i = 0; i < n && who < 0; i++)
        if (sh->span_late[i] > 0)
            who = sh->span_late[i] - 2; /* stored policy byte: who + 1, 0 = none */
    late_scope(s, sh, &c->scope, who);
    for (size_t i = 0; i < n; i++) {
        if (sh->span_late[i] <= 0)
            continue;
        if (late_span(s, sh, &c->in[i], sh->span_rate[i]) == 0) {
            sh->st.late_sampled++;
            metrics_add(s->m.late_sampled, 1);
        } else {
            sh->st.lost_oom++;
        }
    }
    sm_buf_field(&sh->late_rs, 2, sh->late_ss.data, sh->late_ss.len);
}

/* The passes depend on each other in this order: pass 2 copies into what
 * pass 1 sized, pass 3 forwards what pass 1 found late. c->in holds the
 * scope's n spans, c->scope its context. */
static size_t add_scope(add_ctx *c, size_t n)
{
    size_t n_late = 0;
    size_t mine = index_spans(c, n, &n_late);
    size_t buffered = mine != 0 ? copy_spans(c, n) : 0;
    forward_late_spans(c, n, n_late);
    return buffered;
}

/* Room for n spans in the shard's scratch: the passes' arrays and c->in. */
static int scope_room(add_ctx *c, size_t n)
{
    shard *sh = c->sh;
    void *p = sh->span_in;
    if (sm_ensure_spans(sh, n) != 0 || sm_ensure(&p, &sh->span_in_cap, n, sizeof(span_in)) != 0) {
        log_error("sampler: out of memory", "spans=%zu", n);
        return -1;
    }
    c->in = sh->span_in = p;
    return 0;
}

/* A resource's scopes share its interned encoding and attribute bits:
 * resource_begin before the first, resource_end after the last, which sends
 * their late spans together as one ResourceSpans. */
static void resource_begin(add_ctx *c)
{
    c->rb = NULL;
    c->rbits = 0;
    c->rbits_done = 0;
    buf_clear(&c->sh->late_rs);
}

static void resource_end(add_ctx *c)
{
    shard *sh = c->sh;
    if (sh->late_rs.len != 0 && c->late_out != NULL) {
        buf_clear(&sh->late_ss);
        ctx_fields(sh, &sh->late_ss, &c->res);
        buf_append(&sh->late_ss, sh->late_rs.data, sh->late_rs.len);
        if (sm_buf_field(c->late_out, 1, sh->late_ss.data, sh->late_ss.len) != 0)
            log_error("sampler: out of memory forwarding late spans", "tenant=%s", c->tn->name);
    }
    if (c->rb != NULL)
        sm_blob_put(sh, c->rb);
}

/* ---- a decoded request ---- */

static void span_in_decoded(span_in *in, const span_t *sp)
{
    *in = (span_in){.sp = sp};
    if (sp == NULL)
        return;
    in->trace_id = sp->trace_id.len == 16 ? sp->trace_id.data : NULL;
    in->start = sp->start_time_unix_nano;
    in->end = sp->end_time_unix_nano;
    in->code = sp->status != NULL ? (unsigned)sp->status->code : 0;
    in->root = sp->parent_span_id.len == 0;
}

static size_t add_decoded_resource(add_ctx *c, const resource_spans *rs)
{
    size_t buffered = 0;
    c->res = (ctx_in){.m = rs->resource ? &rs->resource->base : NULL, .schema_url = rs->schema_url};
    c->resource = rs->resource;
    resource_begin(c);
    for (size_t k = 0; k < rs->n_scope_spans; k++) {
        const scope_spans *ss = rs->scope_spans[k];
        if (ss == NULL || ss->n_spans == 0 || scope_room(c, ss->n_spans) != 0)
            continue;
        for (size_t i = 0; i < ss->n_spans; i++)
            span_in_decoded(&c->in[i], ss->spans[i]);
        c->scope = (ctx_in){.m = ss->scope ? &ss->scope->base : NULL, .schema_url = ss->schema_url};
        c->scope_m = ss->scope;
        buffered += add_scope(c, ss->n_spans);
    }
    resource_end(c);
    return buffered;
}

/* ---- the request's bytes ---- */

/* A Span's fields the summary reads; where a field repeats, the last one
 * counts, and statuses merge, as protobuf-c decodes them. */
static void span_in_wire(span_in *in, const uint8_t *p, size_t len)
{
    *in = (span_in){.raw = p, .raw_len = len, .root = 1};
    const uint8_t *end = p + len;
    sm_field f, g;
    while (sm_next_field(&p, end, &f)) {
        if (f.num == 1 && f.wt == 2)
            in->trace_id = f.plen == 16 ? f.payload : NULL;
        else if (f.num == 4 && f.wt == 2)
            in->root = f.plen == 0;
        else if (f.num == 7 && f.wt == 1)
            in->start = f.v;
        else if (f.num == 8 && f.wt == 1)
            in->end = f.v;
        else if (f.num == 15 && f.wt == 2)
            for (const uint8_t *q = f.payload; sm_next_field(&q, f.payload + f.plen, &g);)
                if (g.num == 3 && g.wt == 0)
                    in->code = (unsigned)(uint32_t)g.v;
    }
}

/* The fields of a container but its list (field 2), as they came, into b. */
static void wire_context(buf *b, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    sm_field f;
    buf_clear(b);
    while (sm_next_field(&p, end, &f))
        if (f.num != 2)
            buf_append(b, f.start, (size_t)(f.end - f.start));
}

/* A span from the bytes, by its note from the scan when there is one:
 * the request's spans come here in the order the scan met them. */
static void span_in_next(add_ctx *c, span_in *in, const uint8_t *p, size_t len)
{
    size_t i = c->next_note++;
    if (i >= c->n_notes) {
        span_in_wire(in, p, len);
        return;
    }
    const otlp_wire_span *w = &c->notes[i];
    *in = (span_in){.raw = p,
                    .raw_len = len,
                    .trace_id = c->req + w->trace_at,
                    .start = w->start,
                    .end = w->end,
                    .code = w->code,
                    .root = w->root};
}

/* The spans (field 2) of a ScopeSpans into c->in; their count, or 0 when
 * there are none or no memory for them. */
static size_t wire_spans(add_ctx *c, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    sm_field f;
    size_t n = 0;
    int room = 1;
    c->in = c->sh->span_in;
    while (sm_next_field(&p, end, &f)) {
        if (f.num != 2 || f.wt != 2)
            continue;
        if (room && (n >= c->sh->span_in_cap || n >= c->sh->span_cap) && scope_room(c, n + 1) != 0)
            room = 0;
        if (room)
            span_in_next(c, &c->in[n++], f.payload, f.plen);
        else
            c->next_note++; /* the later scopes' spans keep their notes */
    }
    return room ? n : 0;
}

static size_t add_wire_resource(add_ctx *c, const uint8_t *p, size_t len)
{
    shard *sh = c->sh;
    size_t buffered = 0;
    wire_context(&sh->wire_res, p, len);
    c->res = (ctx_in){.raw = (const uint8_t *)sh->wire_res.data, .raw_len = sh->wire_res.len};
    resource_begin(c);
    const uint8_t *end = p + len;
    sm_field f;
    while (sm_next_field(&p, end, &f)) {
        if (f.num != 2 || f.wt != 2)
            continue;
        size_t n = wire_spans(c, f.payload, f.plen);
        if (n == 0)
            continue;
        wire_context(&sh->wire_scope, f.payload, f.plen);
        c->scope = (ctx_in){.raw = (const uint8_t *)sh->wire_scope.data, .raw_len = sh->wire_scope.len};
        buffered += add_scope(c, n);
    }
    resource_end(c);
    return buffered;
}

/* ---- entry points ---- */

/* Under the shard's lock: the request's resources through `each`, then the
 * traces this request made due. */
static size_t add_request(sampler *s, size_t shard_i, const char *tenant, uint64_t now_ns, buf *late_out,
                          size_t (*each)(add_ctx *c, const void *req), const void *req)
{
    shard *sh = &s->shards[shard_i];
    size_t buffered = 0;
    pthread_mutex_lock(&sh->lock);
    add_ctx c = {.s = s, .sh = sh, .shard_i = shard_i, .now_ns = now_ns, .late_out = late_out};
    c.tn = sm_tenant_intern(sh, tenant);
    if (c.tn == NULL)
        goto out;
    buffered = each(&c, req);
    sh->st.buffered += buffered;
    for (size_t i = 0; i < sh->n_over; i++)
        sm_decide(s, sh, sh->over[i], now_ns, R_OVERSIZE);
    sh->n_over = 0;
    sm_enforce_budget(s, sh, now_ns);
out:
    sm_shard_leave(s, sh);
    return buffered;
}

static size_t each_decoded(add_ctx *c, const void *msg)
{
    const export_req *req = msg;
    size_t buffered = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        if (req->resource_spans[r] != NULL)
            buffered += add_decoded_resource(c, req->resource_spans[r]);
    return buffered;
}

typedef struct wire_req {
    const uint8_t *data;
    size_t len;
    const otlp_wire_span *notes;
    size_t n_notes;
} wire_req;

static size_t each_wire(add_ctx *c, const void *arg)
{
    const wire_req *w = arg;
    c->req = w->data;
    c->notes = w->notes;
    c->n_notes = w->notes != NULL ? w->n_notes : 0;
    const uint8_t *p = w->data, *end = p + w->len;
    sm_field f;
    size_t buffered = 0;
    while (sm_next_field(&p, end, &f))
        if (f.num == 1 && f.wt == 2)
            buffered += add_wire_resource(c, f.payload, f.plen);
    return buffered;
}

size_t sampler_add(sampler *s, size_t shard_i, const ProtobufCMessage *msg, const char *tenant, uint64_t now_ns,
                   buf *late_out)
{
    if (shard_i >= s->n_shards || msg == NULL)
        return 0;
    return add_request(s, shard_i, tenant, now_ns, late_out, each_decoded, msg);
}

size_t sampler_add_wire(sampler *s, size_t shard_i, const uint8_t *req, size_t len, const otlp_wire_span *spans,
                        size_t n_spans, const char *tenant, uint64_t now_ns, buf *late_out)
{
    if (shard_i >= s->n_shards || req == NULL || !sampler_wire_ok(s))
        return 0;
    wire_req w = {.data = req, .len = len, .notes = spans, .n_notes = n_spans};
    return add_request(s, shard_i, tenant, now_ns, late_out, each_wire, &w);
}

int sampler_wire_ok(const sampler *s)
{
    return !sp_reads_spans(&s->pol);
}

void sampler_shards_wire(const sampler *s, const uint8_t *req, size_t len, const otlp_wire_span *spans,
                         size_t n_spans, uint8_t *has)
{
    if (spans != NULL) {
        for (size_t i = 0; i < n_spans; i++)
            has[sampler_shard_of(s, req + spans[i].trace_at)] = 1;
        return;
    }
    const uint8_t *p = req, *end = req + len;
    sm_field f, g, h;
    while (sm_next_field(&p, end, &f)) {
        if (f.num != 1 || f.wt != 2)
            continue;
        for (const uint8_t *q = f.payload; sm_next_field(&q, f.payload + f.plen, &g);) {
            if (g.num != 2 || g.wt != 2)
                continue;
            for (const uint8_t *r = g.payload; sm_next_field(&r, g.payload + g.plen, &h);) {
                if (h.num != 2 || h.wt != 2)
                    continue;
                span_in in;
                span_in_wire(&in, h.payload, h.plen);
                if (in.trace_id != NULL)
                    has[sampler_shard_of(s, in.trace_id)] = 1;
            }
        }
    }
}
