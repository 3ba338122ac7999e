/* pipeline_cluster: the cluster side of tail-sampled routes (docs/cluster.md).
 *
 * A sampled route's share of a request is split by trace owner. Spans owned
 * here go to the route's sampler; each other owner's spans are encoded once
 * and queued for the forwarder, room reserved before the client is
 * acknowledged. The peer listener hands forwarded spans to
 * pipeline_accept_forwarded, which treats them the same way except that
 * nothing goes back to the member it came from (two members whose rings
 * briefly disagree must not bounce a trace between them).
 *
 * When the ring changes, each worker hands its shards' undecided traces that
 * are now owned elsewhere to their owners (sampler_release), so a member
 * that joins gets the early spans of its traces and a member that stops
 * gives its traces away. Spans the forwarder cannot deliver come back and
 * are decided here: those traces are fragments, counted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "pipeline_internal.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest export_req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

struct owned_part {
    int owner;        /* -1: this member; else a forwarder peer */
    otlp_request req; /* the owner's spans, a view onto the share */
    uint8_t *enc;     /* remote owners: the encoding reserved in their queue */
    size_t len;
};

/* ---- splitting a share by owner ---- */

/* The owner's spans of req as a new request sharing every resource, scope
 * and span with req (only the arrays are new); NULL without memory. */
static export_req *owner_view(const export_req *tr, const int *owners, int o, arena *a, size_t *items)
{
    export_req *out = arena_alloc(a, sizeof(*out));
    resource_spans **rss = arena_calloc(a, tr->n_resource_spans + 1, sizeof(*rss));
    if (out == NULL || rss == NULL)
        return NULL;
    *out = *tr;
    out->resource_spans = rss;
    out->n_resource_spans = 0;
    size_t at = 0;
    *items = 0;
    for (size_t i = 0; i < tr->n_resource_spans; i++) {
        const resource_spans *rs = tr->resource_spans[i];
        resource_spans *rs2 = arena_alloc(a, sizeof(*rs2));
        scope_spans **sss = arena_calloc(a, rs->n_scope_spans + 1, sizeof(*sss));
        if (rs2 == NULL || sss == NULL)
            return NULL;
        *rs2 = *rs;
        rs2->scope_spans = sss;
        rs2->n_scope_spans = 0;
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const scope_spans *ss = rs->scope_spans[k];
            scope_spans *ss2 = arena_alloc(a, sizeof(*ss2));
            span_t **spans = arena_calloc(a, ss->n_spans + 1, sizeof(*spans));
            if (ss2 == NULL || spans == NULL)
                return NULL;
            *ss2 = *ss;
            ss2->spans = spans;
            ss2->n_spans = 0;
            for (size_t n = 0; n < ss->n_spans; n++, at++)
                if (owners[at] == o)
                    spans[ss2->n_spans++] = ss->spans[n];
            if (ss2->n_spans > 0)
                sss[rs2->n_scope_spans++] = ss2;
            *items += ss2->n_spans;
        }
        if (rs2->n_scope_spans > 0)
            rss[out->n_resource_spans++] = rs2;
    }
    return out;
}

/* Every span's owner, in request order; the distinct owners in *distinct
 * (at most members + 1 of them). -1 without memory. */
static int span_owners(const export_req *tr, const cluster_view *v, arena *a, int **owners, int *distinct,
                       size_t *n_distinct)
{
    size_t total = 0;
    for (size_t i = 0; i < tr->n_resource_spans; i++)
        for (size_t k = 0; k < tr->resource_spans[i]->n_scope_spans; k++)
            total += tr->resource_spans[i]->scope_spans[k]->n_spans;
    int *o = arena_calloc(a, total + 1, sizeof(*o));
    if (o == NULL)
        return -1;
    size_t at = 0, nd = 0;
    const uint8_t *last_id = NULL;
    int last = -1;
    for (size_t i = 0; i < tr->n_resource_spans; i++)
        for (size_t k = 0; k < tr->resource_spans[i]->n_scope_spans; k++) {
            const scope_spans *ss = tr->resource_spans[i]->scope_spans[k];
            for (size_t n = 0; n < ss->n_spans; n++) {
                const uint8_t *id = ss->spans[n]->trace_id.data; /* validated: 16 bytes */
                /* Spans of one trace tend to sit together: one hash per run. */
                if (last_id == NULL || memcmp(last_id, id, 16) != 0)
                    last = cluster_view_owner(v, id);
                last_id = id;
                o[at++] = last;
                size_t d = 0;
                while (d < nd && distinct[d] != last)
                    d++;
                if (d == nd)
                    distinct[nd++] = last;
            }
        }
    *owners = o;
    *n_distinct = nd;
    return 0;
}

/* Splits the share; remote parts are encoded. -1 without memory. */
static int split_share(const otlp_request *share, cluster_view *v, arena *a, owned *o)
{
    const export_req *tr = (const export_req *)share->msg;
    int *owners, *distinct = arena_calloc(a, cluster_view_members(v) + 1, sizeof(int));
    size_t nd;
    if (distinct == NULL || span_owners(tr, v, a, &owners, distinct, &nd) != 0 ||
        (o->parts = arena_calloc(a, nd + 1, sizeof(*o->parts))) == NULL)
        return -1;
    for (size_t d = 0; d < nd; d++) {
        owned_part *p = &o->parts[o->n++];
        p->owner = distinct[d];
        p->req = *share;
        if (nd > 1) {
            export_req *view = owner_view(tr, owners, p->owner, a, &p->req.items);
            if (view == NULL)
                return -1;
            p->req.msg = &view->base;
        }
        if (p->owner >= 0) {
            p->len = protobuf_c_message_get_packed_size(p->req.msg);
            if ((p->enc = arena_alloc(a, p->len ? p->len : 1)) == NULL)
                return -1;
            protobuf_c_message_pack(p->req.msg, p->enc);
        }
    }
    return 0;
}

/* ---- prepare, cancel, commit ---- */

pipeline_status pipeline_owned_prepare(pipeline *pl, const otlp_request *share, const char *from, arena *a, owned *o)
{
    memset(o, 0, sizeof(*o));
    o->v = cluster_view_get(pl->cl);
    if (split_share(share, o->v, a, o) != 0) {
        pipeline_owned_cancel(pl, o);
        return PIPELINE_FAIL;
    }
    forward *fw = cluster_forward(pl->cl);
    int sender = from != NULL ? cluster_peer_of(pl->cl, from) : -1;
    for (size_t i = 0; i < o->n; i++) {
        owned_part *p = &o->parts[i];
        if (p->owner >= 0 && p->owner == sender)
            p->owner = -1; /* never back to where it came from: kept here */
        if (p->owner < 0)
            continue;
        if (forward_reserve(fw, p->owner, p->len) != 0) {
            o->n = i; /* cancel what was reserved so far */
            pipeline_owned_cancel(pl, o);
            return PIPELINE_RETRY;
        }
    }
    return PIPELINE_OK;
}

void pipeline_owned_cancel(pipeline *pl, owned *o)
{
    if (o->v == NULL)
        return;
    for (size_t i = 0; i < o->n; i++)
        if (o->parts[i].owner >= 0)
            forward_unreserve(cluster_forward(pl->cl), o->parts[i].owner, o->parts[i].len);
    cluster_view_put(o->v);
    memset(o, 0, sizeof(*o));
}

void pipeline_owned_commit(pipeline *pl, route *r, owned *o, const char *tenant, arena *a)
{
    forward *fw = cluster_forward(pl->cl);
    for (size_t i = 0; i < o->n; i++) {
        owned_part *p = &o->parts[i];
        if (p->owner >= 0)
            forward_push(fw, p->owner, tenant, r->name, p->enc, p->len, p->req.items);
        else
            pipeline_sample_local(r, pl, &p->req, tenant, a);
    }
    cluster_view_put(o->v);
    memset(o, 0, sizeof(*o));
}

/* ---- forwarded in, and what could not be forwarded ---- */

static route *sampled_route(pipeline *pl, const char *name)
{
    for (size_t i = 0; i < pl->n_routes; i++)
        if (pl->routes[i].smp != NULL && strcmp(pl->routes[i].name, name) == 0)
            return &pl->routes[i];
    return NULL;
}

pipeline_status pipeline_accept_forwarded(pipeline *pl, const otlp_request *req, const char *tenant,
                                          const char *pipeline_name, const char *from, arena *a,
                                          uint32_t *retry_after_s, char *err, size_t errlen)
{
    route *r = sampled_route(pl, pipeline_name);
    if (r == NULL || req->signal != OTLP_TRACES) {
        snprintf(err, errlen, "no tail-sampled traces pipeline named \"%s\" here", pipeline_name);
        return PIPELINE_FAIL;
    }
    if (pipeline_sampler_full(r, pl, req, a)) {
        snprintf(err, errlen, "tail sampler of pipeline %s full: sampled traces wait for backend room", r->name);
        *retry_after_s = pipeline_route_retry_after(r);
        return PIPELINE_RETRY;
    }
    metrics_add(r->m_received, req->items);
    if (pl->cl == NULL) {
        pipeline_sample_local(r, pl, req, tenant, a);
        return PIPELINE_OK;
    }
    owned o;
    pipeline_status ps = pipeline_owned_prepare(pl, req, from, a, &o);
    if (ps == PIPELINE_OK)
        pipeline_owned_commit(pl, r, &o, tenant, a);
    else
        snprintf(err, errlen, ps == PIPELINE_RETRY ? "cluster forward queue full" : "out of memory");
    *retry_after_s = 1;
    return ps;
}

/* Distinct trace ids among the request's spans (the request holds whole
 * traces or pieces of a few: quadratic in the distinct count is fine). */
static size_t distinct_traces(const export_req *tr)
{
    size_t n = 0;
    const uint8_t *seen[64];
    for (size_t i = 0; i < tr->n_resource_spans; i++)
        for (size_t k = 0; k < tr->resource_spans[i]->n_scope_spans; k++) {
            const scope_spans *ss = tr->resource_spans[i]->scope_spans[k];
            for (size_t s = 0; s < ss->n_spans; s++) {
                const uint8_t *id = ss->spans[s]->trace_id.data;
                size_t j = 0;
                while (j < n && j < 64 && memcmp(seen[j], id, 16) != 0)
                    j++;
                if (j == n) {
                    if (n < 64)
                        seen[n] = id;
                    n++;
                }
            }
        }
    return n;
}

/* The forwarder could not deliver these spans: their owner is unreachable
 * (or left). They are decided here, as fragments of their traces. */
static void on_returned(void *data, const char *tenant, const char *pipeline_name, const uint8_t *req, size_t len,
                        size_t spans)
{
    pipeline *pl = data;
    route *r = sampled_route(pl, pipeline_name);
    arena *a = arena_new(pl->max_decoded_bytes);
    otlp_request dec;
    char err[160];
    if (r == NULL || a == NULL || otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, req, len, a, &dec, err, sizeof(err)) != 0) {
        log_error("cluster: returned spans lost", "pipeline=%s spans=%zu reason=%s", pipeline_name, spans,
                  r == NULL ? "no_pipeline" : a == NULL ? "no_memory" : "undecodable");
        arena_free(a);
        return;
    }
    size_t traces = distinct_traces((const export_req *)dec.msg);
    metrics_add(r->m_fragments, traces);
    log_warn("cluster: deciding spans of another member's traces here", "pipeline=%s spans=%zu traces=%zu",
             pipeline_name, spans, traces);
    pipeline_sample_local(r, pl, &dec, tenant, a);
    arena_free(a);
}

/* ---- ownership moves ---- */

typedef struct handover {
    pipeline *pl;
    route *r;
    cluster_view *v;
    size_t moved, kept;
} handover;

static int still_ours(void *data, const uint8_t trace_id[16])
{
    handover *h = data;
    return cluster_view_owner(h->v, trace_id) < 0;
}

/* An undecided trace to its new owner; refused (kept, decided here as a
 * fragment) when the owner's queue is full. */
static int give_to_owner(void *data, const uint8_t trace_id[16], const char *tenant, const uint8_t *req, size_t len,
                         size_t spans)
{
    handover *h = data;
    int owner = cluster_view_owner(h->v, trace_id);
    forward *fw = cluster_forward(h->pl->cl);
    if (owner < 0 || forward_reserve(fw, owner, len) != 0) {
        h->kept++;
        return -1;
    }
    forward_push(fw, owner, tenant, h->r->name, req, len, spans);
    h->moved++;
    return 0;
}

static void hand_over(pipeline *pl, route *r, size_t shard, cluster_view *v, int all)
{
    handover h = {.pl = pl, .r = r, .v = v};
    sampler_release(r->smp, shard, all ? NULL : still_ours, give_to_owner, &h);
    metrics_add(r->m_handoff, h.moved);
    metrics_add(r->m_fragments, h.kept);
    if (h.moved > 0 || h.kept > 0)
        log_info("cluster: traces handed to their owners", "pipeline=%s shard=%zu epoch=%llu moved=%zu kept=%zu",
                 r->name, shard, (unsigned long long)cluster_view_epoch(v), h.moved, h.kept);
}

void pipeline_cluster_tick(pipeline *pl, unsigned worker)
{
    if (worker >= pl->n_shards)
        return;
    cluster_view *v = cluster_view_get(pl->cl);
    uint64_t epoch = cluster_view_epoch(v);
    for (size_t i = 0; i < pl->n_routes; i++) {
        route *r = &pl->routes[i];
        if (r->smp == NULL || r->shard_epoch[worker] == epoch)
            continue;
        r->shard_epoch[worker] = epoch;
        hand_over(pl, r, worker, v, 0);
    }
    cluster_view_put(v);
}

void pipeline_drain(pipeline *pl)
{
    if (pl->cl != NULL)
        cluster_drain(pl->cl);
}

int pipeline_draining(pipeline *pl) { return pl->cl != NULL && cluster_draining(pl->cl); }

int pipeline_handoff(pipeline *pl, uint64_t timeout_ms)
{
    if (pl->cl == NULL)
        return 0;
    cluster_drain(pl->cl);
    cluster_view *v = cluster_view_get(pl->cl);
    for (size_t i = 0; i < pl->n_routes; i++)
        for (size_t sh = 0; pl->routes[i].smp != NULL && sh < pl->n_shards; sh++)
            hand_over(pl, &pl->routes[i], sh, v, 1);
    cluster_view_put(v);
    return forward_wait_idle(cluster_forward(pl->cl), timeout_ms);
}

/* ---- setup ---- */

int pipeline_cluster_route(pipeline *pl, route *r)
{
    if ((r->shard_epoch = calloc(pl->n_shards, sizeof(*r->shard_epoch))) == NULL)
        return -1;
    char labels[160];
    snprintf(labels, sizeof(labels), "pipeline=\"%s\"", r->name);
    r->m_received = metrics_series(metrics_family("otlp_gateway_cluster_received_spans_total", METRIC_COUNTER,
                                                  "Spans other members forwarded here (this member owns them)"),
                                   labels);
    r->m_fragments = metrics_series(
        metrics_family("otlp_gateway_cluster_fragment_traces_total", METRIC_COUNTER,
                       "Traces (or pieces of them) decided here although another member owns them: the owner "
                       "was unreachable or its queue full"),
        labels);
    r->m_handoff = metrics_series(metrics_family("otlp_gateway_cluster_handoff_traces_total", METRIC_COUNTER,
                                                 "Undecided traces handed to their new owner after a ring change "
                                                 "or at a graceful stop"),
                                  labels);
    return 0;
}

int pipeline_cluster_start(pipeline *pl, const cluster_config *cc, char *err, size_t errlen)
{
    return (pl->cl = cluster_new(cc, on_returned, pl, err, errlen)) != NULL ? 0 : -1;
}
