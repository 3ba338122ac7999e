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
#include "config.h"
#include "ingest.h"
#include "otlp.h"

typedef struct pipeline pipeline;

typedef enum { PIPELINE_OK = 0, PIPELINE_RETRY = 1, PIPELINE_FAIL = 2 } pipeline_status;

/* Creates every configured backend and the tail samplers of pipelines with
 * `sampling:` (one shard per worker: n_workers, 0 counts as 1); NULL with a
 * located error. */
pipeline *pipeline_new(const config *cfg, unsigned n_workers, char *err, size_t errlen);
/* Every check pipeline_new makes (backend keys, routes, sampling, tenants'
 * pipelines), without building backends: nothing is created on disk or
 * started (--check-config). 0, or -1 with a located error. */
int pipeline_check(const config *cfg, char *err, size_t errlen);
void pipeline_free(pipeline *pl);

/* `a` is the request's arena (views, edits and encodings are allocated there). */
pipeline_status pipeline_submit(pipeline *pl, const otlp_request *req, const ingest_origin *origin, arena *a,
                                char *err, size_t errlen);
/* 1 when every backend reports ready. */
int pipeline_ready(pipeline *pl);
/* Decide the traces of sampler shard `worker` that are due at now_ns
 * (ingest_now_ns clock) and export the sampled ones; each worker calls this
 * periodically for its own shard, with or without traffic. */
void pipeline_tick(pipeline *pl, unsigned worker, uint64_t now_ns);
/* Shutdown, after the workers stopped: decide every buffered trace (sampled
 * ones are exported), then flush every backend. */
void pipeline_flush(pipeline *pl);

#endif
