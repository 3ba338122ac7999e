/* pipeline: routes a validated request to pipelines and their backends.
 *
 * Which pipelines: those listed by the request's tenant (`tenants[].pipelines`;
 * all pipelines when the tenant lists none or there are no tenants) that take
 * the request's signal. Within those, each resource entry (ResourceSpans,
 * ResourceMetrics, ResourceLogs) goes to every pipeline whose `match` rules
 * all hold on its resource attributes (a pipeline without rules matches
 * everything); an entry that no pipeline *with rules* took also goes to the
 * `default: true` pipelines. A pipeline may edit resource attributes (`resource:` insert,
 * update, upsert, delete; value or `from: tenant`) on its own copy.
 *
 * Each pipeline's share is encoded once (protobuf) when a queued backend
 * needs it. Room is reserved in every target backend first, so the request
 * is admitted everywhere or nowhere; then every backend's export runs.
 * pipeline_submit returns only when every backend has taken the data, which
 * is what lets the listener acknowledge the client. A pipeline with
 * `sampling:` instead hands its share to its tail sampler (routing/sampler.h),
 * sharded by trace id; the client is acknowledged once the spans are
 * buffered, and sampled traces are exported when decided. Built once from the
 * config and shared read-only by all workers. */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "backend.h"
#include "cluster.h"
#include "config_node.h"
#include "otlp.h"
#include "types.h"

typedef struct pipeline pipeline;

/* One entry of `pipelines:`, as the gateway's config schema read it. */
typedef struct pipeline_config {
    const char *name;
    unsigned signals; /* bit (1u << otlp_signal) */
    const char **backends; /* names, each defined under backends: (checked) */
    size_t n_backends;
    const config_node *node; /* match, default, resource and sampling are read here */
} pipeline_config;

/* Everything pipeline_new reads; owned by the caller (the config). */
typedef struct routing_config {
    const config_node *root; /* `tenants:` (each tenant's pipelines) */
    backend_config *backends;
    size_t n_backends;
    pipeline_config *pipelines;
    size_t n_pipelines;
    size_t max_decoded_bytes; /* arena cap when sampled traces are decoded again */
    const cluster_config *cluster; /* NULL: a single instance */
} routing_config;

typedef enum { PIPELINE_OK = 0, PIPELINE_RETRY = 1, PIPELINE_FAIL = 2 } pipeline_status;

/* Creates every configured backend and the tail samplers of pipelines with
 * `sampling:` (one shard per worker: n_workers, 0 counts as 1); NULL with a
 * located error. */
/* cfg must outlive the pipeline (the status page reads its names). */
pipeline *pipeline_new(const routing_config *cfg, unsigned n_workers, char *err, size_t errlen);
/* Every check pipeline_new makes (backend keys, routes, sampling, tenants'
 * pipelines), without building backends: nothing is created on disk or
 * started (--check-config). 0, or -1 with a located error. */
int pipeline_check(const routing_config *cfg, char *err, size_t errlen);
void pipeline_free(pipeline *pl);

/* `tenant` is the authenticated tenant's id ("" when there are no tenants);
 * req->msg may be NULL only as pipeline_wire_use allows;
 * `a` is the request's arena (views, edits and encodings are allocated there).
 * With PIPELINE_RETRY, *retry_after_s (>= 1) is when to try again: the wait
 * of the backend that had no room. */
pipeline_status pipeline_submit(pipeline *pl, const otlp_request *req, const char *tenant, arena *a,
                                uint32_t *retry_after_s, char *err, size_t errlen);
/* What a (tenant, signal) request's protobuf bytes are good for, so that
 * ingest scans them (otlp_wire_scan) only when it pays:
 * PIPELINE_WIRE_ONLY: every pipeline it enters takes it whole and unedited
 * into backends that need only the bytes, or into a tail sampler whose
 * policies need no decoding: submit it with req->msg NULL and req->wire set,
 * without decoding. PIPELINE_WIRE_PAYLOAD: some pipeline
 * would encode the request again; req->wire saves that when set. */
typedef enum { PIPELINE_WIRE_NONE, PIPELINE_WIRE_PAYLOAD, PIPELINE_WIRE_ONLY } pipeline_wire;
/* *sampled (may be NULL) is set to 1 when PIPELINE_WIRE_ONLY and a route
 * hands the bytes to a tail sampler, which reads what otlp_wire_scan
 * notes of the spans (req->spans) when they come with the request. */
pipeline_wire pipeline_wire_use(const pipeline *pl, const char *tenant, otlp_signal sig, int *sampled);
/* 1 when every backend reports ready. */
int pipeline_ready(pipeline *pl);
/* Decide the traces of sampler shard `worker` that are due at now_ns
 * (clock_now_ns) and export the sampled ones; each worker calls this
 * periodically for its own shard, with or without traffic. */
void pipeline_tick(pipeline *pl, unsigned worker, uint64_t now_ns);
/* Shutdown, after the workers stopped: decide every buffered trace (sampled
 * ones are exported; those held for backend room are offered again for up
 * to 5 s, then counted as lost), then flush every backend. */
void pipeline_flush(pipeline *pl);
/* ---- cluster (docs/cluster.md); without `cluster:` these do nothing ---- */

/* Spans another member forwarded here (the peer listener, once the peer is
 * authenticated): `pipeline_name`'s traces for `tenant`, sent by the member
 * at `from` (its advertised address). They skip routing and edits (the
 * sender applied them) and go to that pipeline's sampler, or on to their
 * owner when this member's ring says another one (never back to `from`).
 * PIPELINE_FAIL with err when there is no such tail-sampled pipeline,
 * PIPELINE_RETRY when an owner's forward queue is full. */
pipeline_status pipeline_accept_forwarded(pipeline *pl, const otlp_request *req, const char *tenant,
                                          const char *pipeline_name, const char *from, arena *a,
                                          uint32_t *retry_after_s, char *err, size_t errlen);
/* Stop owning traces (SIGTERM): health checks say draining, every trace
 * is owned elsewhere from now on. */
void pipeline_drain(pipeline *pl);
int pipeline_draining(pipeline *pl);
/* After the workers stopped: drain, hand every undecided trace to its
 * owner, and wait up to timeout_ms for the forward queues to empty. 0 when
 * everything left, -1 on timeout (what is left is decided here by
 * pipeline_flush). */
int pipeline_handoff(pipeline *pl, uint64_t timeout_ms);

/* The status page's "backends:" and "pipelines:" sections, appended to out. */
void pipeline_describe(const pipeline *pl, buf *out);

#endif
