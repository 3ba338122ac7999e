/* pipeline_internal: what pipeline.c and pipeline_cluster.c share: the
 * built routes and the pipeline, and the steps of a tail-sampled route.
 * Not for use outside routing/. */
#ifndef GW_PIPELINE_INTERNAL_H
#define GW_PIPELINE_INTERNAL_H

#include "cluster.h"
#include "metrics.h"
#include "pipeline.h"
#include "regexp.h"
#include "sampler.h"
#include "trace_service.pb-c.h"

#define PIPELINE_MAX 64 /* routes are selected through a 64-bit mask */

typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

typedef struct match_rule {
    const char *key;
    const char *exact; /* NULL when regex */
    regexp *re;        /* REGEXP_FULL: the rule describes the whole value */
} match_rule;

typedef enum { EDIT_INSERT, EDIT_UPDATE, EDIT_UPSERT, EDIT_DELETE } edit_action;

typedef struct edit {
    edit_action action;
    const char *key;
    const char *value; /* NULL with from_tenant or delete */
    int from_tenant;
} edit;

typedef struct route {
    const char *name;
    unsigned signals;
    int is_default;
    match_rule *rules;
    size_t n_rules;
    edit *edits;
    size_t n_edits;
    backend **backends; /* borrowed from pipeline.backends */
    size_t n_backends;
    int needs_payload;
    /* Takes whole requests unedited into backends that read only the
     * encoded payload: no match rules, no edits, no sampling, every
     * backend payload_only (pipeline_wire_use). */
    int wire_only;
    /* Samples whole requests unedited from their bytes: no match rules, no
     * edits, and policies that need no decoding (sampler_wire_ok). Used
     * when the pipeline is not in a cluster (forwarding splits requests by
     * trace owner on the decoded form). */
    int wire_sample;
    metric_series *items[OTLP_SIGNAL_COUNT];
    /* Tail sampling (`sampling: <set>`): the route's traces are buffered
     * here and reach the backends only when their trace is sampled. */
    sampler *smp;
    struct pipeline *pl;
    metric_series *smp_dropped[4]; /* by smp_drop_reason */
    /* Cluster (pipeline_cluster.c): the ring epoch each sampler shard last
     * handed over non-owned traces at, and the route's cluster counters. */
    uint64_t *shard_epoch;
    metric_series *m_received, *m_fragments, *m_handoff;
} route;

typedef enum { SMP_QUEUE_FULL, SMP_EXPORT_FAILED, SMP_NO_MEMORY, SMP_SHUTDOWN } smp_drop_reason;

typedef struct tenant_routes {
    const char *tenant;
    uint64_t mask;
} tenant_routes;

struct pipeline {
    backend **backends; /* one per configured backend, owned */
    size_t n_backends;
    route *routes;
    size_t n_routes;
    tenant_routes *tenants;
    size_t n_tenants;
    metric_series *export_failed[OTLP_SIGNAL_COUNT];
    metric_series *unrouted[OTLP_SIGNAL_COUNT];
    metric_series *queue_full[OTLP_SIGNAL_COUNT];
    size_t n_shards;          /* sampler shards: one per worker */
    size_t max_decoded_bytes; /* arena cap when emitted traces are decoded */
    const routing_config *cfg; /* borrowed: names for the status page */
    cluster *cl;               /* NULL: a single instance */
};

/* A sampled route's spans into its own sampler, shard by shard (pipeline.c). */
void pipeline_sample_local(route *r, const pipeline *pl, const otlp_request *req, const char *tenant, arena *a);
/* 1 when a sampler shard that spans of req belong to is full of sampled
 * traces waiting for backend room (sampler_full): refuse req, retryably. */
int pipeline_sampler_full(const route *r, const pipeline *pl, const otlp_request *req, arena *a);

/* The longest wait any of the route's backends expects before it takes data
 * again (at least 1 s): the Retry-After when its sampler is full. */
uint32_t pipeline_route_retry_after(const route *r);

/* ---- pipeline_cluster.c ---- */

/* One sampled route's share of a request, split by owner: reserved in the
 * owners' forward queues by pipeline_owned_prepare, then either committed
 * (forwarded and sampled here) or cancelled. */
typedef struct owned_part owned_part;
typedef struct owned {
    cluster_view *v;
    owned_part *parts;
    size_t n;
} owned;

/* Starts the cluster (pipeline_new); 0, or -1 with err. */
int pipeline_cluster_start(pipeline *pl, const cluster_config *cc, char *err, size_t errlen);
/* PIPELINE_OK with o filled; PIPELINE_RETRY when an owner's queue is full
 * (nothing reserved); PIPELINE_FAIL without memory. `from` (NULL: a client)
 * is the member that forwarded the request: its spans are never sent back. */
pipeline_status pipeline_owned_prepare(pipeline *pl, const otlp_request *share, const char *from, arena *a, owned *o);
void pipeline_owned_cancel(pipeline *pl, owned *o);
void pipeline_owned_commit(pipeline *pl, route *r, owned *o, const char *tenant, arena *a);
/* Worker `worker`'s periodic step: after a ring change, hand the traces
 * its sampler shards no longer own to their owners. */
void pipeline_cluster_tick(pipeline *pl, unsigned worker);
/* Route fields: counters and the per-shard epochs. */
int pipeline_cluster_route(pipeline *pl, route *r);

#endif
