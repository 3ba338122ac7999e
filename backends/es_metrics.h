/* es_metrics: the metrics part of es_doc_render. Each point's value is
 * rendered as Elastic maps it (number, histogram, exponential histogram as
 * buckets at their midpoints, summary and aggregate_metric_double as sum and
 * count), then the points of one index, resource, scope, time, start time,
 * unit and attribute set become one document, each metric a member of
 * `metrics` with its dynamic template in the action line and the
 * document's `_metric_names_hash`.
 *
 * For es_doc.c only: it works on the render's context (es_doc_internal.h),
 * writing documents into c->out and entries into c->t through es_doc_emit,
 * counting the points it leaves out in c->rep and setting c->failed when
 * memory runs out. Its scratch (origins, points, keys) lives in the context
 * and is freed with the rest of it by es_doc_render. */
#ifndef GW_ES_METRICS_H
#define GW_ES_METRICS_H

#include "es_doc_internal.h"
#include "metrics_service.pb-c.h"

/* Appends the documents of the metrics of r. */
void es_doc_metrics(es_doc_ctx *c, const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r);

#endif
