/* prom_rw_testlib: what the prom_rw unit tests (test_prom_rw.c,
 * test_prom_rw_native.c, test_prom_rw_export.c) share: OTLP metrics requests
 * built as protoc-c structs, converted with prom_rw_convert, and the
 * WriteRequest read back. Everything a test builds lives in the arena A,
 * made by setup and freed by teardown (each test's cmocka fixture); a
 * converted result owns its WriteRequest until result_free. Failures
 * assert through cmocka. */
#ifndef GW_TEST_PROM_RW_TESTLIB_H
#define GW_TEST_PROM_RW_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "metrics_service.pb-c.h"
#include "prom_rw.h"
#include "remote_write.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint number_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hist_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint summary_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm_t;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;

#define CUMULATIVE OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define DELTA OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define MS(ms) ((uint64_t)(ms) * 1000000u + 123456u) /* sub-millisecond part is truncated */
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint exp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets exp_buckets_t;

extern arena *A;
int setup(void **state);
int teardown(void **state);
/* Zeroed memory in A. */
void *alloc(size_t n);

/* ---- building OTLP (in A) ---- */
any_t *any(void);
any_t *any_str(const char *s);
any_t *any_int(int64_t i);
any_t *any_double(double d);
any_t *any_bool(int b);
kv_t *kv(const char *key, any_t *v);
kv_t *kvs(const char *key, const char *s);
/* A NULL-terminated list of KeyValue pointers into an arena array. */
kv_t **attrs(size_t *n, ...);
number_t *num_point(uint64_t t, double v, kv_t **a, size_t na);
number_t *int_point(uint64_t t, int64_t v);
metric_t *metric(const char *name, const char *unit);
metric_t *gauge(const char *name, const char *unit, number_t **pts, size_t n);
metric_t *sum(const char *name, const char *unit, int monotonic, int temporality, number_t **pts, size_t n);
hist_t *hist_point(uint64_t t, const double *bounds, size_t nb, const uint64_t *counts, size_t nc, uint64_t count,
                   const double *sumv);
metric_t *histogram(const char *name, const char *unit, int temporality, hist_t **pts, size_t n);
exp_buckets_t *exp_buckets(int32_t offset, const uint64_t *counts, size_t n);
/* An exponential point; positive and negative buckets are set by the caller. */
exp_t *exp_point(uint64_t t, int32_t scale, uint64_t count, uint64_t zero_count, const double *sumv);
metric_t *exp_metric(const char *name, const char *unit, exp_t **pts, size_t n);
/* `points` exponential points of scale -5, which no native schema takes. */
metric_t *too_coarse(const char *name, size_t points);
metric_t *summary(const char *name, const char *unit, summary_t **pts, size_t n);
/* One resource (NULL-terminated attribute list) with one scope of metrics. */
rm_t *resource(kv_t **rattrs, size_t nr, metric_t **metrics, size_t nm);
req_t *request(rm_t **rms, size_t n);
/* The usual resource: job "shop/cart", instance "i-1", host.name. */
kv_t **std_resource(size_t *n);
req_t *one_resource(metric_t **metrics, size_t nm);

/* ---- converting and reading the result ---- */

/* Suffixes, target_info and native histograms on. */
extern const prom_rw_options DEFAULTS;

typedef struct result {
    Prometheus__WriteRequest *wr;
    prom_rw_stats st;
} result;

/* r converted with opt (NULL: DEFAULTS), asserting that every series has
 * sorted, non-empty labels and one sample or native histogram. */
result convert(const req_t *r, const prom_rw_options *opt);
void result_free(result *r);
const char *label(const Prometheus__TimeSeries *ts, const char *name);
/* The series named `name`, with label `lname`=`lvalue` when lname is set;
 * the nth (0-based) such series (NULL when none); find fails the test instead. */
const Prometheus__TimeSeries *find_nth(const result *r, const char *name, const char *lname, const char *lvalue,
                                       size_t nth);
const Prometheus__TimeSeries *find(const result *r, const char *name, const char *lname, const char *lvalue);
/* The first sample's value; a double's bits. */
double value(const Prometheus__TimeSeries *ts);
uint64_t bits(double d);
/* The names of all series, space separated, in order. */
void names(const result *r, char *out, size_t cap);

#endif
