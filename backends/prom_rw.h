/* prom_rw: OTLP metrics to a Prometheus remote-write 1.0 WriteRequest,
 * following what the OpenTelemetry Collector's remote-write translator
 * writes (names: prom_rw_names.h; native histograms: prom_rw_native.h).
 * Pure conversion: no I/O, no compression (the prometheus_remote_write
 * exporter type does those).
 *
 * Every data point is either converted or dropped and counted by reason:
 * gauge and counter points become one sample, histograms buckets + `_sum`
 * + `_count`, summaries quantiles + `_sum` + `_count`, exponential
 * histograms one native histogram (the TimeSeries' `histograms` field).
 * Exemplars (trace_id/span_id labels) go with sums, the bucket holding
 * their value and native histograms. Series keep the input's order, each
 * point its own TimeSeries; labels in every series are sorted by name. A
 * `target_info` series per resource carries the resource attributes.
 * Metadata (type, help, unit) is sent once per metric family.
 *
 * Dropped, and why: delta sums and histograms (Prometheus stores cumulative
 * values; adding deltas up here would be wrong as soon as several gateway
 * instances behind a load balancer each see part of a series), exponential
 * histograms of scale below -4 (no native schema is that coarse) or when
 * native_histograms is off (for receivers without them), metrics
 * whose name has no valid character, and invalid points (no value, no
 * timestamp, bucket counts not matching the bounds or the count,
 * unspecified temporality) -- one such sample would make Prometheus refuse
 * the whole request. */
#ifndef GW_PROM_RW_H
#define GW_PROM_RW_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "metrics_service.pb-c.h"

typedef enum {
    PROM_RW_DROP_DELTA = 0,       /* delta temporality */
    PROM_RW_DROP_SCALE = 1,       /* exponential histogram of scale below -4 */
    PROM_RW_DROP_INVALID = 2,     /* see above */
    PROM_RW_DROP_NATIVE_OFF = 3,  /* exponential histogram, native_histograms off */
    PROM_RW_DROP_COUNT = 4
} prom_rw_drop;

typedef struct prom_rw_options {
    int add_metric_suffixes;            /* unit suffixes and `_total` */
    int target_info;                    /* a target_info series per resource */
    int native_histograms;              /* exponential histograms as native ones, else dropped */
    const char *const *resource_labels; /* resource attribute keys copied onto every series */
    size_t n_resource_labels;
} prom_rw_options;

typedef struct prom_rw_stats {
    uint64_t converted; /* data points */
    uint64_t dropped[PROM_RW_DROP_COUNT];
    uint64_t series;    /* TimeSeries written, target_info included */
} prom_rw_stats;

/* "delta_temporality" | "exponential_scale" | "invalid" | "native_histograms_off" */
const char *prom_rw_drop_name(prom_rw_drop reason);

/* Appends the encoded WriteRequest for `req` to out and adds to *st.
 * Temporary data lives in `a` (which also holds req, typically). Returns 0,
 * or -1 when memory ran out (out is then unspecified). */
int prom_rw_convert(const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req,
                    const prom_rw_options *opt, arena *a, buf *out, prom_rw_stats *st);

#endif
