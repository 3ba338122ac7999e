#include "pipeline.h"
#include "pipeline_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "logs_service.pb-c.h"
#include "metrics.h"
#include "metrics_service.pb-c.h"
#include "sampler.h"
#include "trace_service.pb-c.h"


/* How long shutdown offers held sampled traces to backends without room. */
#define PIPELINE_HELD_FLUSH_MS 5000

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

/* ---------- the three signals' resource entries, seen generically ---------- */

/* Every Export*ServiceRequest is {base, n, entries**}; every Resource* entry
 * starts {base, Resource *resource, ...}. */
typedef struct entry_list {
    size_t *n;
    void ***items;
} entry_list;

static entry_list request_entries(otlp_signal sig, ProtobufCMessage *msg)
{
    switch (sig) {
    case OTLP_TRACES: {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r = (void *)msg;
        return (entry_list){&r->n_resource_spans, (void ***)&r->resource_spans};
    }
    case OTLP_METRICS: {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r = (void *)msg;
        return (entry_list){&r->n_resource_metrics, (void ***)&r->resource_metrics};
    }
    default: {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r = (void *)msg;
        return (entry_list){&r->n_resource_logs, (void ***)&r->resource_logs};
    }
    }
}

static resource_t **entry_resource(otlp_signal sig, void *entry)
{
    switch (sig) {
    case OTLP_TRACES:
        return &((Opentelemetry__Proto__Trace__V1__ResourceSpans *)entry)->resource;
    case OTLP_METRICS:
        return &((Opentelemetry__Proto__Metrics__V1__ResourceMetrics *)entry)->resource;
    default:
        return &((Opentelemetry__Proto__Logs__V1__ResourceLogs *)entry)->resource;
    }
}

static const char *string_attribute(const resource_t *r, const char *key)
{
    for (size_t i = 0; r != NULL && i < r->n_attributes; i++) {
        const kv_t *kv = r->attributes[i];
        if (strcmp(kv->key, key) == 0)
            return kv->value && kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
                       ? kv->value->string_value
                       : NULL;
    }
    return NULL;
}

static int route_matches(const route *r, const resource_t *res)
{
    for (size_t i = 0; i < r->n_rules; i++) {
        const char *v = string_attribute(res, r->rules[i].key);
        if (v == NULL)
            return 0;
        if (r->rules[i].exact ? strcmp(v, r->rules[i].exact) != 0 : !regexp_match(r->rules[i].re, v, strlen(v)))
            return 0;
    }
    return 1;
}

/* ---------- config ---------- */

static int read_rules(route *r, const config_node *m, char *err, size_t errlen)
{
    if (m == NULL)
        return 0;
    if (!config_is_map(m))
        return config_error(m, "match", err, errlen, "expected a map of resource attribute: value or {regex: ...}");
    r->n_rules = config_map_len(m);
    r->rules = calloc(r->n_rules + 1, sizeof(*r->rules));
    for (size_t i = 0; i < r->n_rules; i++) {
        match_rule *mr = &r->rules[i];
        const config_node *v = config_map_value(m, i);
        mr->key = config_map_key(m, i);
        if ((mr->exact = config_scalar(v)) != NULL)
            continue;
        static const char *const keys[] = {"regex", NULL};
        const char *pattern;
        char why[200];
        if (!config_is_map(v))
            return config_error(v, mr->key, err, errlen, "expected a string or {regex: ...}");
        if (config_check_keys(v, keys, err, errlen) != 0 || config_str_required(v, "regex", &pattern, err, errlen) != 0)
            return -1;
        /* Anchored: a rule describes the whole value, as users expect. */
        if ((mr->re = regexp_compile(pattern, REGEXP_FULL, why, sizeof(why))) == NULL)
            return config_error(config_get(v, "regex"), "regex", err, errlen, "invalid regular expression: %s", why);
    }
    return 0;
}

static int read_edits(route *r, const config_node *seq, char *err, size_t errlen)
{
    static const char *const keys[] = {"action", "key", "value", "from", NULL};
    static const char *const actions[] = {"insert", "update", "upsert", "delete"};
    if (seq == NULL)
        return 0;
    if (!config_is_seq(seq))
        return config_error(seq, "resource", err, errlen, "expected a list of {action, key, value|from}");
    r->n_edits = config_seq_len(seq);
    r->edits = calloc(r->n_edits + 1, sizeof(*r->edits));
    for (size_t i = 0; i < r->n_edits; i++) {
        const config_node *n = config_seq_at(seq, i);
        edit *e = &r->edits[i];
        const char *action, *from;
        if (config_check_keys(n, keys, err, errlen) != 0 || config_str_required(n, "action", &action, err, errlen) ||
            config_str_required(n, "key", &e->key, err, errlen) || config_str(n, "value", NULL, &e->value, err, errlen) ||
            config_str(n, "from", NULL, &from, err, errlen))
            return -1;
        size_t a = 0;
        while (a < 4 && strcmp(action, actions[a]) != 0)
            a++;
        if (a == 4)
            return config_error(config_get(n, "action"), "action", err, errlen,
                                "expected insert, update, upsert or delete");
        e->action = (edit_action)a;
        if (from != NULL && strcmp(from, "tenant") != 0)
            return config_error(config_get(n, "from"), "from", err, errlen, "only \"tenant\" is supported");
        e->from_tenant = from != NULL;
        if (e->action != EDIT_DELETE && (e->value == NULL) == !e->from_tenant)
            return config_error(n, "value", err, errlen, "set exactly one of value and from");
    }
    return 0;
}

/* `sampling: <set>`: a sampler of its own, built from the named entry of the
 * top-level `sampling:` map, with one shard per worker. */
static int read_sampling(pipeline *pl, const routing_config *cfg, const pipeline_config *cp, route *r, char *err,
                         size_t errlen)
{
    const config_node *ref = config_get(cp->node, "sampling");
    if (ref == NULL)
        return 0;
    const char *set = config_scalar(ref);
    if (set == NULL)
        return config_error(ref, "sampling", err, errlen, "expected the name of a policy set under sampling:");
    if (cp->signals != (1u << OTLP_TRACES))
        return config_error(ref, "sampling", err, errlen,
                            "tail sampling needs a pipeline whose signals are exactly [traces]");
    const config_node *node = config_get(config_get(cfg->root, "sampling"), set);
    if (node == NULL)
        return config_error(ref, "sampling", err, errlen, "no policy set \"%s\" (define it under sampling:)", set);
    if (cp->n_backends > 64) /* a held trace tracks its delivery per backend in 64 bits */
        return config_error(config_get(cp->node, "backends"), "backends", err, errlen,
                            "a tail-sampled pipeline takes at most 64 backends");
    if ((r->smp = sampler_new(node, pl->n_shards, err, errlen)) == NULL ||
        (cfg->cluster != NULL && pipeline_cluster_route(pl, r) != 0))
        return -1;
    sampler_set_metrics(r->smp, r->name);
    metric_family *f = metrics_family("otlp_gateway_sampler_export_dropped_total", METRIC_COUNTER,
                                      "Spans of sampled traces a backend could not take (the client had "
                                      "already been acknowledged), by pipeline and reason.");
    static const char *const reasons[] = {"queue_full", "export_failed", "no_memory", "shutdown"};
    for (int i = 0; i < 4; i++) {
        char labels[200];
        snprintf(labels, sizeof(labels), "pipeline=\"%s\",reason=\"%s\"", r->name, reasons[i]);
        r->smp_dropped[i] = metrics_series(f, labels);
    }
    return 0;
}

/* The top-level `sampling:` map: every set must build, used or not. */
static int check_sampling_sets(const routing_config *cfg, char *err, size_t errlen)
{
    const config_node *m = config_get(cfg->root, "sampling");
    if (m == NULL)
        return 0;
    if (!config_is_map(m))
        return config_error(m, "sampling", err, errlen, "expected a map of policy-set name: {policies: ...}");
    for (size_t i = 0; i < config_map_len(m); i++) {
        sampler *s = sampler_new(config_map_value(m, i), 1, err, errlen);
        if (s == NULL)
            return -1;
        sampler_free(s);
    }
    return 0;
}

static int read_route(pipeline *pl, const routing_config *cfg, const pipeline_config *cp, route *r, char *err, size_t errlen)
{
    r->name = cp->name;
    r->signals = cp->signals;
    r->pl = pl;
    if (config_bool(cp->node, "default", 0, &r->is_default, err, errlen) != 0 ||
        read_rules(r, config_get(cp->node, "match"), err, errlen) != 0 ||
        read_edits(r, config_get(cp->node, "resource"), err, errlen) != 0)
        return -1;
    if (r->is_default && r->n_rules > 0)
        return config_error(config_get(cp->node, "default"), "default", err, errlen,
                            "a default pipeline takes what others did not match; it cannot have match rules");
    if (read_sampling(pl, cfg, cp, r, err, errlen) != 0)
        return -1;
    r->backends = calloc(cp->n_backends + 1, sizeof(*r->backends));
    for (size_t j = 0; j < cp->n_backends; j++) {
        size_t k = 0;
        while (strcmp(cfg->backends[k].name, cp->backends[j]) != 0) /* config.c checked existence */
            k++;
        const backend *b = pl->backends[k];
        unsigned extra = b->signals != 0 ? r->signals & ~b->signals : 0;
        if (extra != 0) {
            int s = __builtin_ctz(extra);
            return config_error(config_get(cp->node, "backends"), "backends", err, errlen,
                                "backend \"%s\" (%s) does not take %s; give this pipeline `signals:` it takes",
                                b->name, cfg->backends[k].type, otlp_signal_name((otlp_signal)s));
        }
        r->backends[r->n_backends++] = pl->backends[k];
        r->needs_payload |= b->needs_payload;
    }
    r->wire_only = r->n_rules == 0 && r->n_edits == 0 && r->smp == NULL;
    r->wire_sample = r->n_rules == 0 && r->n_edits == 0 && r->smp != NULL && sampler_wire_ok(r->smp);
    for (size_t j = 0; j < r->n_backends; j++)
        r->wire_only &= r->backends[j]->payload_only;
    if (r->smp != NULL)
        sampler_set_destinations(r->smp, (unsigned)r->n_backends);
    metric_family *f = metrics_family("otlp_gateway_pipeline_items_total", METRIC_COUNTER,
                                      "Items routed into a pipeline, by pipeline and signal.");
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        char labels[160];
        snprintf(labels, sizeof(labels), "pipeline=\"%s\",signal=\"%s\"", r->name, otlp_signal_name((otlp_signal)s));
        if (r->signals & (1u << s))
            r->items[s] = metrics_series(f, labels);
    }
    return 0;
}

/* tenants[].pipelines (optional): which pipelines a tenant's data enters. */
static int read_tenant_routes(pipeline *pl, const routing_config *cfg, char *err, size_t errlen)
{
    const config_node *ts = config_get(cfg->root, "tenants");
    size_t n = config_seq_len(ts);
    pl->tenants = calloc(n + 1, sizeof(*pl->tenants));
    for (size_t i = 0; i < n; i++) {
        const config_node *t = config_seq_at(ts, i), *names = config_get(t, "pipelines");
        if (names == NULL)
            continue;
        tenant_routes *tr = &pl->tenants[pl->n_tenants++];
        tr->tenant = config_scalar(config_get(t, "id"));
        if (!config_is_seq(names))
            return config_error(names, "pipelines", err, errlen, "expected a list of pipeline names");
        for (size_t j = 0; j < config_seq_len(names); j++) {
            const char *name = config_scalar(config_seq_at(names, j));
            size_t k = 0;
            while (k < pl->n_routes && (name == NULL || strcmp(pl->routes[k].name, name) != 0))
                k++;
            if (k == pl->n_routes)
                return config_error(config_seq_at(names, j), "pipelines", err, errlen, "no pipeline \"%s\"",
                                    name ? name : "");
            tr->mask |= 1ull << k;
        }
    }
    return 0;
}

/* What --check-config builds in place of a backend: its name and signals,
 * all that routes are checked against. */
static void checked_backend_free(backend *b) { free(b); }
static const backend_ops checked_backend_ops = {.type = "checked", .destroy = checked_backend_free};

static backend *checked_backend(const backend_config *cfg, char *err, size_t errlen)
{
    unsigned signals;
    if (backend_check(cfg, &signals, err, errlen) != 0)
        return NULL;
    backend *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *b = (backend){.ops = &checked_backend_ops, .name = cfg->name, .signals = signals};
    return b;
}

/* pipeline_new, or with `check` the same reading of the config over
 * checked backends (pipeline_check). */
static pipeline *pipeline_build(const routing_config *cfg, unsigned n_workers, int check, char *err, size_t errlen)
{
    pipeline *pl = calloc(1, sizeof(*pl));
    if (pl == NULL || (pl->backends = calloc(cfg->n_backends + 1, sizeof(*pl->backends))) == NULL ||
        (pl->routes = calloc(cfg->n_pipelines + 1, sizeof(*pl->routes))) == NULL) {
        snprintf(err, errlen, "out of memory");
        pipeline_free(pl);
        return NULL;
    }
    pl->n_shards = n_workers ? n_workers : 1;
    pl->max_decoded_bytes = cfg->max_decoded_bytes;
    pl->cfg = cfg;
    if (check_sampling_sets(cfg, err, errlen) != 0) {
        pipeline_free(pl);
        return NULL;
    }
    if (cfg->n_pipelines > PIPELINE_MAX) {
        config_error(cfg->pipelines[PIPELINE_MAX].node, "name", err, errlen, "at most %d pipelines", PIPELINE_MAX);
        pipeline_free(pl);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_backends; i++) {
        const backend_config *cb = &cfg->backends[i];
        if ((pl->backends[i] = check ? checked_backend(cb, err, errlen) : backend_create(cb, err, errlen)) == NULL) {
            pipeline_free(pl);
            return NULL;
        }
        pl->n_backends++;
    }
    for (size_t i = 0; i < cfg->n_pipelines; i++) {
        int rc = read_route(pl, cfg, &cfg->pipelines[i], &pl->routes[i], err, errlen);
        pl->n_routes++;
        if (rc != 0) {
            pipeline_free(pl);
            return NULL;
        }
    }
    if (read_tenant_routes(pl, cfg, err, errlen) != 0 ||
        (!check && cfg->cluster != NULL && pipeline_cluster_start(pl, cfg->cluster, err, errlen) != 0)) {
        pipeline_free(pl);
        return NULL;
    }
    metric_family *failed = metrics_family("otlp_gateway_export_failures_total", METRIC_COUNTER,
                                           "Requests a backend refused or could not take, by signal.");
    metric_family *unrouted = metrics_family("otlp_gateway_unrouted_items_total", METRIC_COUNTER,
                                             "Items accepted that no pipeline took (no pipeline for the tenant, "
                                             "signal or resource).");
    metric_family *full = metrics_family("otlp_gateway_queue_full_total", METRIC_COUNTER,
                                         "Requests refused because a backend's export queue was full.");
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "signal=\"%s\"", otlp_signal_name((otlp_signal)s));
        pl->export_failed[s] = metrics_series(failed, labels);
        pl->unrouted[s] = metrics_series(unrouted, labels);
        pl->queue_full[s] = metrics_series(full, labels);
    }
    return pl;
}

pipeline *pipeline_new(const routing_config *cfg, unsigned n_workers, char *err, size_t errlen)
{
    return pipeline_build(cfg, n_workers, 0, err, errlen);
}

int pipeline_check(const routing_config *cfg, char *err, size_t errlen)
{
    pipeline *pl = pipeline_build(cfg, 1, 1, err, errlen);
    if (pl == NULL)
        return -1;
    pipeline_free(pl);
    return 0;
}

void pipeline_free(pipeline *pl)
{
    if (pl == NULL)
        return;
    cluster_free(pl->cl); /* hands undelivered spans back to the samplers freed below */
    for (size_t i = 0; i < pl->n_backends; i++)
        pl->backends[i]->ops->destroy(pl->backends[i]);
    for (size_t i = 0; i < pl->n_routes; i++) {
        route *r = &pl->routes[i];
        for (size_t j = 0; j < r->n_rules; j++)
            regexp_free(r->rules[j].re);
        free(r->rules);
        free(r->edits);
        free(r->backends);
        free(r->shard_epoch);
        sampler_free(r->smp);
    }
    free(pl->backends);
    free(pl->routes);
    free(pl->tenants);
    free(pl);
}

/* ---------- request path ---------- */

static kv_t *make_string_kv(arena *a, const char *key, const char *value)
{
    static const kv_t kv_init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    static const any_t any_init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    kv_t *kv = arena_alloc(a, sizeof(*kv));
    any_t *v = arena_alloc(a, sizeof(*v));
    if (kv == NULL || v == NULL)
        return NULL;
    *kv = kv_init;
    *v = any_init;
    kv->key = (char *)key;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)value;
    kv->value = v;
    return kv;
}

/* A copy of `res` (or an empty resource) with the route's edits applied;
 * the original stays untouched for the other pipelines. */
static resource_t *edited_resource(const route *r, const resource_t *res, const char *tenant, arena *a)
{
    static const resource_t init = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    resource_t *out = arena_alloc(a, sizeof(*out));
    size_t n = res ? res->n_attributes : 0;
    kv_t **attrs = arena_calloc(a, n + r->n_edits + 1, sizeof(*attrs));
    if (out == NULL || attrs == NULL)
        return NULL;
    *out = res ? *res : init;
    if (n > 0)
        memcpy(attrs, res->attributes, n * sizeof(*attrs));
    for (size_t i = 0; i < r->n_edits; i++) {
        const edit *e = &r->edits[i];
        size_t at = 0;
        while (at < n && strcmp(attrs[at]->key, e->key) != 0)
            at++;
        int present = at < n;
        if (e->action == EDIT_DELETE) {
            if (present)
                memmove(&attrs[at], &attrs[at + 1], (--n - at) * sizeof(*attrs));
            continue;
        }
        if ((e->action == EDIT_INSERT && present) || (e->action == EDIT_UPDATE && !present))
            continue;
        kv_t *kv = make_string_kv(a, e->key, e->from_tenant ? tenant : e->value);
        if (kv == NULL)
            return NULL;
        attrs[present ? at : n++] = kv;
    }
    out->attributes = attrs;
    out->n_attributes = n;
    return out;
}

/* One pipeline's share of a request. */
typedef struct share {
    otlp_request req;
    export_payload payload;
} share;

/* Builds the view for route ri: the entries whose bit is set, with edits. */
static int build_share(const route *r, unsigned ri, const otlp_request *req, const uint64_t *entry_routes,
                       const char *tenant, arena *a, share *out)
{
    entry_list src = request_entries(req->signal, req->msg);
    size_t n = 0, total = *src.n;
    for (size_t i = 0; i < total; i++)
        n += (entry_routes[i] >> ri) & 1;
    out->req = *req;
    out->req.rejected = 0;
    if (n < total || r->n_edits > 0) {
        size_t msg_size = req->msg->descriptor->sizeof_message;
        ProtobufCMessage *view = arena_alloc(a, msg_size);
        void **items = arena_calloc(a, n + 1, sizeof(void *));
        if (view == NULL || items == NULL)
            return -1;
        memcpy(view, req->msg, msg_size);
        entry_list dst = request_entries(req->signal, view);
        size_t k = 0;
        for (size_t i = 0; i < total; i++) {
            if (((entry_routes[i] >> ri) & 1) == 0)
                continue;
            void *e = (*src.items)[i];
            if (r->n_edits > 0) {
                size_t esize = ((ProtobufCMessage *)e)->descriptor->sizeof_message;
                void *copy = arena_alloc(a, esize);
                if (copy == NULL)
                    return -1;
                memcpy(copy, e, esize);
                resource_t **res = entry_resource(req->signal, copy);
                if ((*res = edited_resource(r, *res, tenant, a)) == NULL)
                    return -1;
                e = copy;
            }
            items[k++] = e;
        }
        *dst.n = n;
        *dst.items = items;
        out->req.msg = view;
        out->req.wire = NULL; /* no longer the request's own bytes */
        out->req.spans = NULL;
        out->req.items = otlp_count_items(req->signal, view);
    }
    out->payload = (export_payload){.tenant = tenant};
    if (out->req.wire != NULL && out->req.msg == req->msg) {
        /* The whole request, unedited: its own bytes are its encoding. */
        out->payload.data = req->wire;
        out->payload.len = req->wire_len;
    } else if (r->needs_payload && r->smp == NULL) {
        size_t len = protobuf_c_message_get_packed_size(out->req.msg);
        uint8_t *data = arena_alloc(a, len ? len : 1);
        if (data == NULL)
            return -1;
        out->payload.len = protobuf_c_message_pack(out->req.msg, data);
        out->payload.data = data;
    }
    return 0;
}

/* Which of the candidate routes take each entry (bit per route index). */
static void select_routes(const pipeline *pl, uint64_t candidates, const otlp_request *req, uint64_t *entry_routes)
{
    entry_list el = request_entries(req->signal, req->msg);
    for (size_t i = 0; i < *el.n; i++) {
        const resource_t *res = *entry_resource(req->signal, (*el.items)[i]);
        uint64_t take = 0, defaults = 0;
        int ruled = 0; /* taken by a pipeline with match rules */
        for (size_t ri = 0; ri < pl->n_routes; ri++) {
            const route *r = &pl->routes[ri];
            if (((candidates >> ri) & 1) == 0)
                continue;
            if (r->is_default) {
                defaults |= 1ull << ri;
            } else if (route_matches(r, res)) {
                take |= 1ull << ri;
                ruled |= r->n_rules > 0;
            }
        }
        /* Rule-less pipelines (an audit copy, say) take everything and do
         * not count as a routing decision: default still gets the rest. */
        entry_routes[i] = take | (ruled ? 0 : defaults);
    }
}

/* Reserve queue room for every (backend, share) pair, or none. */
static int reserve_all(const pipeline *pl, uint64_t used, const share *shares, backend **full)
{
    for (size_t ri = 0; ri < pl->n_routes; ri++) {
        if (((used >> ri) & 1) == 0)
            continue;
        const route *r = &pl->routes[ri];
        for (size_t j = 0; j < r->n_backends; j++) {
            backend *b = r->backends[j];
            if (b->ops->reserve == NULL || b->ops->reserve(b, shares[ri].payload.tenant, shares[ri].payload.len) == 0)
                continue;
            /* Undo what was reserved so far: earlier routes fully, this one up to j. */
            for (size_t rj = 0; rj <= ri; rj++) {
                if (((used >> rj) & 1) == 0)
                    continue;
                const route *u = &pl->routes[rj];
                for (size_t k = 0; k < (rj == ri ? j : u->n_backends); k++)
                    if (u->backends[k]->ops->unreserve)
                        u->backends[k]->ops->unreserve(u->backends[k], shares[rj].payload.tenant,
                                                   shares[rj].payload.len);
            }
            *full = b;
            return -1;
        }
    }
    return 0;
}

/* When a backend without room expects to take data again: its own hint,
 * else a second (its queue drains as it sends). */
static uint32_t backend_retry_after(backend *b)
{
    uint32_t s = b != NULL && b->ops->retry_after != NULL ? b->ops->retry_after(b) : 0;
    return s > 0 ? s : 1;
}

uint32_t pipeline_route_retry_after(const route *r)
{
    uint32_t most = 1;
    for (size_t j = 0; j < r->n_backends; j++) {
        uint32_t s = backend_retry_after(r->backends[j]);
        if (s > most)
            most = s;
    }
    return most;
}

/* ---------- tail-sampled routes ---------- */

static void count_sampler_drop(route *r, smp_drop_reason why, const char *backend, size_t spans)
{
    static const char *const reasons[] = {"queue_full", "export_failed", "no_memory", "shutdown"};
    metrics_add(r->smp_dropped[why], spans);
    log_warn("sampled spans dropped", "pipeline=%s backend=%s reason=%s spans=%zu", r->name, backend ? backend : "-",
             reasons[why], spans);
}

/* A sampled trace (or late spans of one: spans == 0, counted here by
 * decoding) for route r's backends: `req` is an encoded
 * ExportTraceServiceRequest. The client was acknowledged when the spans
 * were buffered, so a backend without queue room must not lose them: it is
 * left out of *done (and put in *full, so this pass offers it nothing
 * more) and the sampler holds the trace for a later tick. A backend that
 * refuses it for good is done with it (counted and logged as
 * export_failed). Returns 0 when every backend is done. May run with a
 * sampler shard lock held: no calls into the sampler. */
static int route_deliver(route *r, const char *tenant, const uint8_t *req, size_t len, size_t spans, uint64_t *done,
                         uint64_t *full, size_t *items)
{
    otlp_request dec = {.signal = OTLP_TRACES, .items = spans};
    arena *a = NULL;
    int need_decoded = spans == 0; /* to count them */
    for (size_t j = 0; j < r->n_backends; j++)
        need_decoded |= !r->backends[j]->payload_only && !(*done >> j & 1);
    if (need_decoded) {
        char derr[160];
        a = arena_new(r->pl->max_decoded_bytes);
        if (a == NULL || otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, req, len, a, &dec, derr, sizeof(derr)) != 0) {
            arena_free(a);
            count_sampler_drop(r, SMP_NO_MEMORY, NULL, spans);
            return 0;
        }
    }
    const export_payload p = {.data = req, .len = len, .tenant = tenant ? tenant : ""};
    int pending = 0;
    for (size_t j = 0; j < r->n_backends; j++) {
        backend *b = r->backends[j];
        uint64_t bit = 1ull << j;
        if (*done & bit)
            continue;
        int room = (*full & bit) ? -1 : b->ops->reserve != NULL ? b->ops->reserve(b, tenant, len) : 0;
        if (room == -1) {
            *full |= bit;
            pending = 1;
            continue;
        }
        char berr[256] = "";
        backend_status st = BACKEND_FAIL;
        if (room == 0)
            st = b->ops->export(b, &dec, &p, berr, sizeof(berr));
        else /* bigger than the whole queue: holding it would only wedge the sampler */
            snprintf(berr, sizeof(berr), "sampled trace of %zu bytes is larger than the backend's queue.max_bytes", len);
        *done |= bit;
        if (st != BACKEND_OK) {
            char q[300];
            metrics_add(r->pl->export_failed[OTLP_TRACES], 1);
            log_warn("export failed", "backend=%s pipeline=%s signal=traces retryable=%d error=%s", b->name, r->name,
                     st == BACKEND_RETRY, log_quote(q, sizeof(q), berr));
            count_sampler_drop(r, SMP_EXPORT_FAILED, b->name, dec.items);
        }
    }
    arena_free(a);
    if (items != NULL)
        *items = dec.items;
    return pending;
}

static int sampler_emit(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans,
                        uint64_t *done, uint64_t *full)
{
    return route_deliver(data, tenant, req, len, spans, done, full, NULL);
}

/* The sampler shards that spans of req belong to, as a flag per shard in
 * an arena array (NULL: out of memory, treat as every shard). */
static uint8_t *shards_of(const route *r, const pipeline *pl, const otlp_request *req, arena *a)
{
    const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *tr = (const void *)req->msg;
    uint8_t *has = arena_calloc(a, pl->n_shards, 1);
    if (has != NULL && pl->n_shards == 1) {
        has[0] = 1; /* one shard: no span needs looking at */
        return has;
    }
    if (tr == NULL) {
        if (has != NULL)
            sampler_shards_wire(r->smp, req->wire, req->wire_len, req->spans, req->n_spans, has);
        return has;
    }
    for (size_t i = 0; has != NULL && i < tr->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = tr->resource_spans[i];
        for (size_t k = 0; rs != NULL && k < rs->n_scope_spans; k++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[k];
            for (size_t n = 0; ss != NULL && n < ss->n_spans; n++)
                if (ss->spans[n] != NULL && ss->spans[n]->trace_id.len == 16)
                    has[sampler_shard_of(r->smp, ss->spans[n]->trace_id.data)] = 1;
        }
    }
    return has;
}

int pipeline_sampler_full(const route *r, const pipeline *pl, const otlp_request *req, arena *a)
{
    uint8_t *has = shards_of(r, pl, req, a);
    for (size_t sh = 0; sh < pl->n_shards; sh++)
        if ((has == NULL || has[sh]) && sampler_full(r->smp, sh))
            return 1;
    return 0;
}

/* Hand a route's share to its sampler: each shard that has spans of the
 * share takes them (under that shard's lock), then is ticked so traces its
 * memory budget decided early go out. Late spans of sampled traces go to
 * the backends at once; what finds no room is held in the shard too. */
void pipeline_sample_local(route *r, const pipeline *pl, const otlp_request *req, const char *tenant, arena *a)
{
    uint8_t *has = shards_of(r, pl, req, a);
    uint64_t now = clock_now_ns();
    buf late = BUF_INIT;
    for (size_t sh = 0; sh < pl->n_shards; sh++) {
        if (has != NULL && !has[sh])
            continue;
        buf_clear(&late);
        if (req->msg != NULL)
            sampler_add(r->smp, sh, req->msg, tenant, now, &late);
        else
            sampler_add_wire(r->smp, sh, req->wire, req->wire_len, req->spans, req->n_spans, tenant, now, &late);
        uint64_t done = 0, full = 0;
        size_t n = 0;
        if (late.len > 0 && route_deliver(r, tenant, (const uint8_t *)late.data, late.len, 0, &done, &full, &n) != 0 &&
            sampler_hold(r->smp, sh, tenant, (const uint8_t *)late.data, late.len, n, done) != 0)
            count_sampler_drop(r, SMP_NO_MEMORY, NULL, n);
        sampler_tick(r->smp, sh, now, sampler_emit, r);
    }
    buf_free(&late);
}

/* Releases what pipeline_owned_prepare reserved for every route (own may be NULL). */
static void owned_cancel_all(pipeline *pl, owned *own)
{
    for (size_t ri = 0; own != NULL && ri < pl->n_routes; ri++)
        pipeline_owned_cancel(pl, &own[ri]);
}

/* The routes a tenant's request of signal sig may enter. */
static uint64_t candidate_routes(const pipeline *pl, const char *tenant, otlp_signal sig)
{
    uint64_t candidates = pl->n_routes == PIPELINE_MAX ? ~0ull : (1ull << pl->n_routes) - 1;
    for (size_t i = 0; i < pl->n_tenants; i++)
        if (strcmp(pl->tenants[i].tenant, tenant) == 0)
            candidates = pl->tenants[i].mask;
    for (size_t ri = 0; ri < pl->n_routes; ri++)
        if ((pl->routes[ri].signals & (1u << sig)) == 0)
            candidates &= ~(1ull << ri);
    return candidates;
}

pipeline_wire pipeline_wire_use(const pipeline *pl, const char *tenant, otlp_signal sig, int *sampled)
{
    uint64_t candidates = candidate_routes(pl, tenant, sig);
    int all = 1, some = 0, smp = 0;
    for (size_t ri = 0; ri < pl->n_routes; ri++) {
        if (((candidates >> ri) & 1) == 0)
            continue;
        all &= pl->routes[ri].wire_only || (pl->routes[ri].wire_sample && pl->cl == NULL);
        some |= pl->routes[ri].needs_payload && pl->routes[ri].smp == NULL;
        smp |= pl->routes[ri].wire_sample;
    }
    if (sampled != NULL)
        *sampled = all && smp;
    return all ? PIPELINE_WIRE_ONLY : some ? PIPELINE_WIRE_PAYLOAD : PIPELINE_WIRE_NONE;
}

static pipeline_status deliver(pipeline *pl, const otlp_request *req, uint64_t used, share *shares,
                               const char *tenant, arena *a, uint32_t *retry_after_s, char *err, size_t errlen);

/* A request without its decoded form (pipeline_wire_use said
 * PIPELINE_WIRE_ONLY): every candidate route takes all of it, as bytes. */
static pipeline_status submit_wire(pipeline *pl, const otlp_request *req, uint64_t candidates, const char *tenant,
                                   arena *a, uint32_t *retry_after_s, char *err, size_t errlen)
{
    if (candidates == 0) {
        metrics_add(pl->unrouted[req->signal], req->items);
        return PIPELINE_OK;
    }
    share *shares = arena_calloc(a, pl->n_routes + 1, sizeof(share));
    if (shares == NULL) {
        snprintf(err, errlen, "request too large to route within the decode memory limit");
        return PIPELINE_FAIL;
    }
    for (size_t ri = 0; ri < pl->n_routes; ri++)
        if ((candidates >> ri) & 1)
            shares[ri] = (share){.req = *req, .payload = {.data = req->wire, .len = req->wire_len, .tenant = tenant}};
    return deliver(pl, req, candidates, shares, tenant, a, retry_after_s, err, errlen);
}

pipeline_status pipeline_submit(pipeline *pl, const otlp_request *req, const char *tenant, arena *a,
                                uint32_t *retry_after_s, char *err, size_t errlen)
{
    uint64_t candidates = candidate_routes(pl, tenant, req->signal);
    if (req->msg == NULL)
        return submit_wire(pl, req, candidates, tenant, a, retry_after_s, err, errlen);

    entry_list el = request_entries(req->signal, req->msg);
    uint64_t *entry_routes = arena_calloc(a, *el.n + 1, sizeof(uint64_t));
    share *shares = arena_calloc(a, pl->n_routes + 1, sizeof(share));
    if (entry_routes == NULL || shares == NULL)
        goto nomem;
    select_routes(pl, candidates, req, entry_routes);
    uint64_t used = 0, routed = 0;
    for (size_t i = 0; i < *el.n; i++) {
        used |= entry_routes[i];
        routed |= entry_routes[i] != 0;
    }
    if (!routed) {
        metrics_add(pl->unrouted[req->signal], req->items);
        return PIPELINE_OK;
    }
    for (size_t ri = 0; ri < pl->n_routes; ri++)
        if (((used >> ri) & 1) && build_share(&pl->routes[ri], (unsigned)ri, req, entry_routes, tenant, a, &shares[ri]) != 0)
            goto nomem;
    return deliver(pl, req, used, shares, tenant, a, retry_after_s, err, errlen);
nomem:
    /* The arena is capped by max_decoded_bytes; ingest sees arena_failed()
     * and answers "too large" -- retrying the same request cannot help. */
    snprintf(err, errlen, "request too large to route within the decode memory limit");
    return PIPELINE_FAIL;
}

/* The shares of the routes in `used` into their samplers and backends, or
 * nothing into any of them (PIPELINE_RETRY when one has no room). */
static pipeline_status deliver(pipeline *pl, const otlp_request *req, uint64_t used, share *shares,
                               const char *tenant, arena *a, uint32_t *retry_after_s, char *err, size_t errlen)
{
    uint64_t sampled = 0;
    for (size_t ri = 0; ri < pl->n_routes; ri++)
        if (pl->routes[ri].smp != NULL)
            sampled |= 1ull << ri;
    /* Sampled routes buffer instead of exporting: no backend room to
     * reserve, but in a cluster their spans owned elsewhere need room in
     * the owners' forward queues, reserved first so nothing is half-taken. */
    /* A sampler full of sampled traces waiting for backend room takes
     * nothing more: the client retries later, nothing acknowledged is lost. */
    for (size_t ri = 0; ri < pl->n_routes; ri++) {
        if (((used & sampled) >> ri & 1) && pipeline_sampler_full(&pl->routes[ri], pl, &shares[ri].req, a)) {
            metrics_add(pl->queue_full[req->signal], 1);
            snprintf(err, errlen, "tail sampler of pipeline %s full: sampled traces wait for backend room",
                     pl->routes[ri].name);
            *retry_after_s = pipeline_route_retry_after(&pl->routes[ri]);
            return PIPELINE_RETRY;
        }
    }
    owned *own = NULL;
    if (pl->cl != NULL && (used & sampled) != 0) {
        pipeline_status ps = PIPELINE_OK;
        if ((own = arena_calloc(a, pl->n_routes, sizeof(*own))) == NULL)
            goto nomem;
        for (size_t ri = 0; ri < pl->n_routes && ps == PIPELINE_OK; ri++)
            if (((used & sampled) >> ri) & 1)
                ps = pipeline_owned_prepare(pl, &shares[ri].req, NULL, a, &own[ri]);
        if (ps != PIPELINE_OK) {
            owned_cancel_all(pl, own);
            if (ps == PIPELINE_FAIL)
                goto nomem;
            metrics_add(pl->queue_full[req->signal], 1);
            snprintf(err, errlen, "cluster forward queue full");
            *retry_after_s = 1; /* a peer's queue drains in batches of forward.flush */
            return PIPELINE_RETRY;
        }
    }
    backend *full = NULL;
    if (reserve_all(pl, used & ~sampled, shares, &full) != 0) {
        owned_cancel_all(pl, own);
        metrics_add(pl->queue_full[req->signal], 1);
        snprintf(err, errlen, "export queue full");
        *retry_after_s = backend_retry_after(full);
        return PIPELINE_RETRY;
    }
    pipeline_status worst = PIPELINE_OK;
    for (size_t ri = 0; ri < pl->n_routes; ri++) {
        if (((used >> ri) & 1) == 0)
            continue;
        route *r = &pl->routes[ri];
        metrics_add(r->items[req->signal], shares[ri].req.items);
        if (r->smp != NULL) {
            if (own != NULL)
                pipeline_owned_commit(pl, r, &own[ri], tenant, a);
            else
                pipeline_sample_local(r, pl, &shares[ri].req, tenant, a);
            continue;
        }
        for (size_t j = 0; j < r->n_backends; j++) {
            backend *b = r->backends[j];
            char berr[256] = "";
            backend_status st = b->ops->export(b, &shares[ri].req, &shares[ri].payload, berr, sizeof(berr));
            if (st == BACKEND_OK)
                continue;
            char q[300];
            metrics_add(pl->export_failed[req->signal], 1);
            log_warn("export failed", "backend=%s pipeline=%s signal=%s retryable=%d error=%s", b->name, r->name,
                     otlp_signal_name(req->signal), st == BACKEND_RETRY, log_quote(q, sizeof(q), berr));
            if ((pipeline_status)st > worst) {
                worst = (pipeline_status)st;
                snprintf(err, errlen, "backend %s: %s", b->name, berr);
            }
        }
    }
    return worst;
nomem:
    snprintf(err, errlen, "request too large to route within the decode memory limit");
    return PIPELINE_FAIL;
}

int pipeline_ready(pipeline *pl)
{
    for (size_t i = 0; i < pl->n_backends; i++)
        if (!pl->backends[i]->ops->ready(pl->backends[i]))
            return 0;
    return 1;
}

void pipeline_tick(pipeline *pl, unsigned worker, uint64_t now_ns)
{
    if (pl->cl != NULL)
        pipeline_cluster_tick(pl, worker);
    for (size_t ri = 0; ri < pl->n_routes; ri++)
        if (pl->routes[ri].smp != NULL && worker < pl->n_shards)
            sampler_tick(pl->routes[ri].smp, worker, now_ns, sampler_emit, &pl->routes[ri]);
}

static void *flush_one(void *arg)
{
    backend *b = arg;
    b->ops->flush(b);
    return NULL;
}

/* Backends flush in parallel: each may wait up to its own bound for a slow
 * or stalled destination, and shutdown should take the longest of those,
 * not their sum. */
static void flush_backends(pipeline *pl)
{
    pthread_t *threads = calloc(pl->n_backends + 1, sizeof(*threads));
    char *started = calloc(pl->n_backends + 1, 1);
    for (size_t i = 0; i < pl->n_backends; i++) {
        if (threads != NULL && started != NULL && pthread_create(&threads[i], NULL, flush_one, pl->backends[i]) == 0)
            started[i] = 1;
        else
            flush_one(pl->backends[i]);
    }
    for (size_t i = 0; i < pl->n_backends; i++)
        if (started != NULL && started[i])
            pthread_join(threads[i], NULL);
    free(threads);
    free(started);
}

/* Sampled traces still held for backend room at shutdown (every shard,
 * every sampled route); their spans in *spans. */
static size_t held_total(pipeline *pl, uint64_t *spans)
{
    size_t n = 0;
    *spans = 0;
    for (size_t ri = 0; ri < pl->n_routes; ri++) {
        for (size_t sh = 0; pl->routes[ri].smp != NULL && sh < pl->n_shards; sh++) {
            uint64_t sp = 0;
            n += sampler_held(pl->routes[ri].smp, sh, &sp);
            *spans += sp;
        }
    }
    return n;
}

/* Shutdown: held traces are offered again every 100 ms while the backends
 * drain their queues, for up to PIPELINE_HELD_FLUSH_MS; what is still held
 * then is lost with the process: counted (reason "shutdown") and logged. */
static void flush_held(pipeline *pl)
{
    uint64_t spans, deadline = clock_now_ms() + PIPELINE_HELD_FLUSH_MS;
    size_t n = held_total(pl, &spans);
    if (n == 0)
        return;
    log_warn("sampled traces wait for backend room at shutdown", "traces=%zu spans=%llu wait_ms=%d", n,
             (unsigned long long)spans, PIPELINE_HELD_FLUSH_MS);
    while (n > 0 && clock_now_ms() < deadline) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
        nanosleep(&ts, NULL);
        uint64_t now = clock_now_ns();
        for (size_t ri = 0; ri < pl->n_routes; ri++)
            for (size_t sh = 0; pl->routes[ri].smp != NULL && sh < pl->n_shards; sh++)
                sampler_tick(pl->routes[ri].smp, sh, now, sampler_emit, &pl->routes[ri]);
        n = held_total(pl, &spans);
    }
    for (size_t ri = 0; ri < pl->n_routes; ri++) {
        route *r = &pl->routes[ri];
        uint64_t lost = 0, sp;
        size_t traces = 0;
        for (size_t sh = 0; r->smp != NULL && sh < pl->n_shards; sh++) {
            traces += sampler_abandon(r->smp, sh, &sp);
            lost += sp;
        }
        if (traces == 0)
            continue;
        metrics_add(r->smp_dropped[SMP_SHUTDOWN], lost);
        log_error("sampled traces lost at shutdown: no backend room",
                  "pipeline=%s traces=%zu spans=%llu waited_ms=%d reason=shutdown", r->name, traces,
                  (unsigned long long)lost, PIPELINE_HELD_FLUSH_MS);
    }
}

void pipeline_flush(pipeline *pl)
{
    /* The forwarder stops first: what it still holds comes back and is
     * decided here with the rest. */
    cluster_free(pl->cl);
    pl->cl = NULL;
    /* Decide every buffered trace first, so sampled ones reach the backends
     * before those are flushed. */
    uint64_t now = clock_now_ns();
    for (size_t ri = 0; ri < pl->n_routes; ri++)
        for (size_t sh = 0; pl->routes[ri].smp != NULL && sh < pl->n_shards; sh++)
            sampler_flush(pl->routes[ri].smp, sh, now, sampler_emit, &pl->routes[ri]);
    flush_held(pl);
    flush_backends(pl);
}

void pipeline_describe(const pipeline *pl, buf *out)
{
    if (pl->cl != NULL)
        cluster_describe(pl->cl, out);
    const routing_config *c = pl->cfg;
    buf_puts(out, "\nbackends:\n");
    for (size_t i = 0; i < c->n_backends; i++) {
        const backend *b = pl->backends[i];
        buf_printf(out, "  %s type=%s state=%s\n", c->backends[i].name, c->backends[i].type,
                   b->ops->healthy == NULL || b->ops->healthy((backend *)b) ? "up" : "failing");
    }
    buf_puts(out, "\npipelines:\n");
    for (size_t i = 0; i < c->n_pipelines; i++) {
        const pipeline_config *p = &c->pipelines[i];
        buf_printf(out, "  %s signals=", p->name);
        for (int s = 0, first = 1; s < OTLP_SIGNAL_COUNT; s++)
            if (p->signals & (1u << s)) {
                buf_printf(out, "%s%s", first ? "" : ",", otlp_signal_name((otlp_signal)s));
                first = 0;
            }
        buf_puts(out, " backends=");
        for (size_t j = 0; j < p->n_backends; j++)
            buf_printf(out, "%s%s", j ? "," : "", p->backends[j]);
        buf_putc(out, '\n');
    }
}
