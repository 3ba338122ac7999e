/* prom_rw (OTLP metrics -> remote-write WriteRequest) and the
 * prometheus_remote_write exporter type: requests are built as protoc-c
 * structs here, converted, and the output unpacked with the generated
 * remote_write code, so every assertion is on what a receiver would decode. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <snappy-c.h>

#include "backend.h"
#include "config.h"
#include "exporter.h"
#include "metrics_service.pb-c.h"
#include "prom_rw.h"
#include "prom_rw_names.h"
#include "prom_rw_native.h"
#include "remote_write.pb-c.h"
#include "test_util.h"

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

/* Everything a test builds lives in one arena. */
static arena *A;

static int setup(void **state)
{
    (void)state;
    A = arena_new(0);
    return A == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(A);
    return 0;
}

static void *alloc(size_t n)
{
    void *p = arena_calloc(A, 1, n);
    assert_non_null(p);
    return p;
}

/* ---- building OTLP ---- */

static any_t *any(void)
{
    any_t *v = alloc(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    return v;
}

static any_t *any_str(const char *s)
{
    any_t *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static any_t *any_int(int64_t i)
{
    any_t *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static any_t *any_double(double d)
{
    any_t *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}

static any_t *any_bool(int b)
{
    any_t *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}

static kv_t *kv(const char *key, any_t *v)
{
    kv_t *k = alloc(sizeof(*k));
    opentelemetry__proto__common__v1__key_value__init(k);
    k->key = (char *)key;
    k->value = v;
    return k;
}

static kv_t *kvs(const char *key, const char *s) { return kv(key, any_str(s)); }

/* A NULL-terminated list of KeyValue pointers into an arena array. */
static kv_t **attrs(size_t *n, ...)
{
    va_list ap;
    kv_t **out = alloc(32 * sizeof(*out));
    *n = 0;
    va_start(ap, n);
    for (kv_t *k; (k = va_arg(ap, kv_t *)) != NULL;)
        out[(*n)++] = k;
    va_end(ap);
    return out;
}

static number_t *num_point(uint64_t t, double v, kv_t **a, size_t na)
{
    number_t *p = alloc(sizeof(*p));
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    p->time_unix_nano = t;
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
    p->attributes = a;
    p->n_attributes = na;
    return p;
}

static number_t *int_point(uint64_t t, int64_t v)
{
    number_t *p = num_point(t, 0, NULL, 0);
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    p->as_int = v;
    return p;
}

static metric_t *metric(const char *name, const char *unit)
{
    metric_t *m = alloc(sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = (char *)name;
    m->unit = (char *)unit;
    return m;
}

static metric_t *gauge(const char *name, const char *unit, number_t **pts, size_t n)
{
    metric_t *m = metric(name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = alloc(sizeof(*m->gauge));
    opentelemetry__proto__metrics__v1__gauge__init(m->gauge);
    m->gauge->data_points = pts;
    m->gauge->n_data_points = n;
    return m;
}

static metric_t *sum(const char *name, const char *unit, int monotonic, int temporality, number_t **pts, size_t n)
{
    metric_t *m = metric(name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = alloc(sizeof(*m->sum));
    opentelemetry__proto__metrics__v1__sum__init(m->sum);
    m->sum->data_points = pts;
    m->sum->n_data_points = n;
    m->sum->is_monotonic = monotonic;
    m->sum->aggregation_temporality = temporality;
    return m;
}

static hist_t *hist_point(uint64_t t, const double *bounds, size_t nb, const uint64_t *counts, size_t nc,
                          uint64_t count, const double *sumv)
{
    hist_t *p = alloc(sizeof(*p));
    opentelemetry__proto__metrics__v1__histogram_data_point__init(p);
    p->time_unix_nano = t;
    p->explicit_bounds = (double *)bounds;
    p->n_explicit_bounds = nb;
    p->bucket_counts = (uint64_t *)counts;
    p->n_bucket_counts = nc;
    p->count = count;
    if (sumv != NULL) {
        p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
        p->sum = *sumv;
    }
    return p;
}

static metric_t *histogram(const char *name, const char *unit, int temporality, hist_t **pts, size_t n)
{
    metric_t *m = metric(name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m->histogram = alloc(sizeof(*m->histogram));
    opentelemetry__proto__metrics__v1__histogram__init(m->histogram);
    m->histogram->data_points = pts;
    m->histogram->n_data_points = n;
    m->histogram->aggregation_temporality = temporality;
    return m;
}

typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint exp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets exp_buckets_t;

static exp_buckets_t *exp_buckets(int32_t offset, const uint64_t *counts, size_t n)
{
    exp_buckets_t *b = alloc(sizeof(*b));
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(b);
    b->offset = offset;
    b->bucket_counts = (uint64_t *)counts;
    b->n_bucket_counts = n;
    return b;
}

/* An exponential point; positive and negative buckets are set by the caller. */
static exp_t *exp_point(uint64_t t, int32_t scale, uint64_t count, uint64_t zero_count, const double *sumv)
{
    exp_t *p = alloc(sizeof(*p));
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(p);
    p->time_unix_nano = t;
    p->scale = scale;
    p->count = count;
    p->zero_count = zero_count;
    if (sumv != NULL) {
        p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
        p->sum = *sumv;
    }
    return p;
}

static metric_t *exp_metric(const char *name, const char *unit, exp_t **pts, size_t n)
{
    metric_t *m = metric(name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m->exponential_histogram = alloc(sizeof(*m->exponential_histogram));
    opentelemetry__proto__metrics__v1__exponential_histogram__init(m->exponential_histogram);
    m->exponential_histogram->data_points = pts;
    m->exponential_histogram->n_data_points = n;
    m->exponential_histogram->aggregation_temporality = CUMULATIVE;
    return m;
}

/* `points` exponential points of scale -5, which no native schema takes. */
static metric_t *too_coarse(const char *name, size_t points)
{
    exp_t **pts = alloc(points * sizeof(*pts));
    for (size_t i = 0; i < points; i++)
        pts[i] = exp_point(MS(1000), -5, 1, 1, NULL);
    return exp_metric(name, "", pts, points);
}

static metric_t *summary(const char *name, const char *unit, summary_t **pts, size_t n)
{
    metric_t *m = metric(name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m->summary = alloc(sizeof(*m->summary));
    opentelemetry__proto__metrics__v1__summary__init(m->summary);
    m->summary->data_points = pts;
    m->summary->n_data_points = n;
    return m;
}

/* One resource (NULL-terminated attribute list) with one scope of metrics. */
static rm_t *resource(kv_t **rattrs, size_t nr, metric_t **metrics, size_t nm)
{
    rm_t *rm = alloc(sizeof(*rm));
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    rm->resource = alloc(sizeof(*rm->resource));
    opentelemetry__proto__resource__v1__resource__init(rm->resource);
    rm->resource->attributes = rattrs;
    rm->resource->n_attributes = nr;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = alloc(sizeof(*sm));
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    sm->metrics = metrics;
    sm->n_metrics = nm;
    rm->scope_metrics = alloc(sizeof(*rm->scope_metrics));
    rm->scope_metrics[0] = sm;
    rm->n_scope_metrics = 1;
    return rm;
}

static req_t *request(rm_t **rms, size_t n)
{
    req_t *r = alloc(sizeof(*r));
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(r);
    r->resource_metrics = rms;
    r->n_resource_metrics = n;
    return r;
}

/* The usual resource: job "shop/cart", instance "i-1", host.name. */
static kv_t **std_resource(size_t *n)
{
    return attrs(n, kvs("service.name", "cart"), kvs("service.namespace", "shop"), kvs("service.instance.id", "i-1"),
                 kvs("host.name", "h1"), NULL);
}

static req_t *one_resource(metric_t **metrics, size_t nm)
{
    size_t nr;
    kv_t **ra = std_resource(&nr);
    rm_t **rms = alloc(sizeof(*rms));
    rms[0] = resource(ra, nr, metrics, nm);
    return request(rms, 1);
}

/* ---- converting and reading the result ---- */

static const prom_rw_options DEFAULTS = {.add_metric_suffixes = 1, .target_info = 1, .native_histograms = 1};

typedef struct result {
    Prometheus__WriteRequest *wr;
    prom_rw_stats st;
} result;

static result convert(const req_t *r, const prom_rw_options *opt)
{
    result res = {0};
    buf out = BUF_INIT;
    assert_int_equal(prom_rw_convert(r, opt != NULL ? opt : &DEFAULTS, A, &out, &res.st), 0);
    res.wr = prometheus__write_request__unpack(NULL, out.len, (const uint8_t *)out.data);
    assert_non_null(res.wr);
    buf_free(&out);
    /* every series: labels strictly sorted by name, no empty value, one
     * sample or one native histogram */
    for (size_t i = 0; i < res.wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = res.wr->timeseries[i];
        assert_int_equal(ts->n_samples + ts->n_histograms, 1);
        for (size_t j = 0; j < ts->n_labels; j++) {
            assert_true(ts->labels[j]->value[0] != '\0');
            if (j > 0 && strcmp(ts->labels[j - 1]->name, ts->labels[j]->name) >= 0)
                fail_msg("series %zu: labels %s, %s not sorted", i, ts->labels[j - 1]->name, ts->labels[j]->name);
        }
    }
    return res;
}

static void result_free(result *r) { prometheus__write_request__free_unpacked(r->wr, NULL); }

static const char *label(const Prometheus__TimeSeries *ts, const char *name)
{
    for (size_t i = 0; i < ts->n_labels; i++)
        if (strcmp(ts->labels[i]->name, name) == 0)
            return ts->labels[i]->value;
    return NULL;
}

/* The series named `name`, with label `lname`=`lvalue` when lname is set;
 * the nth (0-based) such series. */
static const Prometheus__TimeSeries *find_nth(const result *r, const char *name, const char *lname,
                                              const char *lvalue, size_t nth)
{
    for (size_t i = 0; i < r->wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = r->wr->timeseries[i];
        const char *n = label(ts, "__name__"), *v = lname != NULL ? label(ts, lname) : NULL;
        if (n != NULL && strcmp(n, name) == 0 && (lname == NULL || (v != NULL && strcmp(v, lvalue) == 0)) &&
            nth-- == 0)
            return ts;
    }
    return NULL;
}

static const Prometheus__TimeSeries *find(const result *r, const char *name, const char *lname, const char *lvalue)
{
    const Prometheus__TimeSeries *ts = find_nth(r, name, lname, lvalue, 0);
    if (ts == NULL)
        fail_msg("no series %s{%s=\"%s\"}", name, lname ? lname : "", lvalue ? lvalue : "");
    return ts;
}

static double value(const Prometheus__TimeSeries *ts) { return ts->samples[0]->value; }

static uint64_t bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

/* The names of all series, space separated, in order. */
static void names(const result *r, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->wr->n_timeseries && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", label(r->wr->timeseries[i], "__name__"));
}

/* ---- conversion tests ---- */

static void test_gauge_and_sums(void **state)
{
    (void)state;
    size_t na;
    kv_t **pa = attrs(&na, kvs("method", "GET"), NULL);
    number_t **g = alloc(2 * sizeof(*g));
    g[0] = num_point(MS(1700000000123), 0.25, pa, na);
    g[1] = int_point(MS(1700000001000), 7);
    number_t **c = alloc(sizeof(*c));
    c[0] = int_point(MS(1700000002000), 42);
    number_t **u = alloc(sizeof(*u));
    u[0] = num_point(MS(1700000003000), -3, NULL, 0);
    metric_t **ms = alloc(3 * sizeof(*ms));
    ms[0] = gauge("temperature", "", g, 2);
    ms[1] = sum("requests", "", 1, CUMULATIVE, c, 1);
    ms[2] = sum("queue.depth", "", 0, CUMULATIVE, u, 1);
    result r = convert(one_resource(ms, 3), NULL);

    char all[512];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "temperature temperature requests_total queue_depth target_info");
    const Prometheus__TimeSeries *ts = r.wr->timeseries[0];
    assert_int_equal(ts->n_labels, 4);
    assert_string_equal(ts->labels[0]->name, "__name__");
    assert_string_equal(label(ts, "job"), "shop/cart");
    assert_string_equal(label(ts, "instance"), "i-1");
    assert_string_equal(label(ts, "method"), "GET");
    assert_null(label(ts, "host_name")); /* only in target_info unless resource_to_labels */
    assert_true(value(ts) == 0.25);
    assert_int_equal(ts->samples[0]->timestamp, 1700000000123);
    assert_true(value(r.wr->timeseries[1]) == 7);
    assert_int_equal(r.wr->timeseries[1]->samples[0]->timestamp, 1700000001000);
    assert_true(value(find(&r, "requests_total", NULL, NULL)) == 42);
    assert_true(value(find(&r, "queue_depth", NULL, NULL)) == -3);
    assert_int_equal(r.st.converted, 4);
    assert_int_equal(r.st.series, 5);
    result_free(&r);
}

static void test_histogram(void **state)
{
    (void)state;
    static const double bounds[] = {0.005, 1, 250000, 1e6};
    static const uint64_t counts[] = {1, 2, 3, 4, 5};
    static const double s = 12.5;
    size_t na;
    kv_t **pa = attrs(&na, kvs("route", "/a"), kvs("le", "bogus"), NULL);
    hist_t **pts = alloc(3 * sizeof(*pts));
    pts[0] = hist_point(MS(5000), bounds, 4, counts, 5, 15, &s);
    pts[0]->attributes = pa;
    pts[0]->n_attributes = na;
    pts[1] = hist_point(MS(6000), bounds, 4, NULL, 0, 9, NULL); /* no buckets, no sum */
    pts[2] = hist_point(MS(7000), bounds, 4, counts, 3, 15, &s); /* counts do not match bounds */
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = histogram("http.server.duration", "s", CUMULATIVE, pts, 3);
    result r = convert(one_resource(ms, 1), NULL);

    static const struct {
        const char *le;
        double v;
    } want[] = {{"0.005", 1}, {"1", 3}, {"250000", 6}, {"1000000", 10}, {"+Inf", 15}};
    for (size_t i = 0; i < 5; i++) {
        const Prometheus__TimeSeries *ts = r.wr->timeseries[i];
        assert_string_equal(label(ts, "__name__"), "http_server_duration_seconds_bucket");
        assert_string_equal(label(ts, "le"), want[i].le); /* the point's own "le" is replaced */
        assert_string_equal(label(ts, "route"), "/a");
        assert_true(value(ts) == want[i].v);
        assert_int_equal(ts->samples[0]->timestamp, 5000);
    }
    assert_true(value(find(&r, "http_server_duration_seconds_sum", NULL, NULL)) == 12.5);
    assert_true(value(find(&r, "http_server_duration_seconds_count", NULL, NULL)) == 15);
    /* second point: +Inf and _count only */
    const Prometheus__TimeSeries *inf = find_nth(&r, "http_server_duration_seconds_bucket", "le", "+Inf", 1);
    assert_non_null(inf);
    assert_true(value(inf) == 9);
    assert_int_equal(inf->samples[0]->timestamp, 6000);
    assert_null(find_nth(&r, "http_server_duration_seconds_bucket", "le", "1", 1));
    assert_null(find_nth(&r, "http_server_duration_seconds_sum", NULL, NULL, 1));
    assert_non_null(find_nth(&r, "http_server_duration_seconds_count", NULL, NULL, 1));
    assert_int_equal(r.st.converted, 2);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 1);
    result_free(&r);
}

static void test_summary(void **state)
{
    (void)state;
    summary_t *p = alloc(sizeof(*p));
    opentelemetry__proto__metrics__v1__summary_data_point__init(p);
    p->time_unix_nano = MS(9000);
    p->count = 10;
    p->sum = 55;
    p->quantile_values = alloc(2 * sizeof(*p->quantile_values));
    p->n_quantile_values = 2;
    static const double q[2][2] = {{0.5, 4}, {0.99, 9.5}};
    for (size_t i = 0; i < 2; i++) {
        p->quantile_values[i] = alloc(sizeof(*p->quantile_values[i]));
        opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(p->quantile_values[i]);
        p->quantile_values[i]->quantile = q[i][0];
        p->quantile_values[i]->value = q[i][1];
    }
    summary_t **pts = alloc(sizeof(*pts));
    pts[0] = p;
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = summary("rpc.latency", "ms", pts, 1);
    result r = convert(one_resource(ms, 1), NULL);
    assert_true(value(find(&r, "rpc_latency_milliseconds", "quantile", "0.5")) == 4);
    assert_true(value(find(&r, "rpc_latency_milliseconds", "quantile", "0.99")) == 9.5);
    assert_true(value(find(&r, "rpc_latency_milliseconds_sum", NULL, NULL)) == 55);
    assert_true(value(find(&r, "rpc_latency_milliseconds_count", NULL, NULL)) == 10);
    assert_int_equal(find(&r, "rpc_latency_milliseconds_count", NULL, NULL)->samples[0]->timestamp, 9000);
    result_free(&r);
}

/* Metric names as prometheus/otlptranslator builds them with
 * UnderscoreEscapingWithSuffixes: every case of its metric_namer_test.go
 * for that strategy without a namespace, and collector-contrib's older
 * normalize_name_test.go cases whose answer did not change. */
enum { G = PROM_RW_KIND_GAUGE, C = PROM_RW_KIND_COUNTER, U = PROM_RW_KIND_UPDOWN, H = PROM_RW_KIND_HISTOGRAM,
       S = PROM_RW_KIND_SUMMARY };
static const struct {
    const char *name, *unit;
    int kind;
    const char *want;
} NAME_CASES[] = {
    /* otlptranslator metric_namer_test.go */
    {"requests", "", C, "requests_total"},
    {"cpu_usage", "1", G, "cpu_usage_ratio"},
    {"items", "1", C, "items_total"},
    {"response_time", "ms", G, "response_time_milliseconds"},
    {"memory_usage", "By", G, "memory_usage_bytes"},
    {"requests", "1/s", G, "requests_per_second"},
    {"throughput", "By/s", G, "throughput_bytes_per_second"},
    {"custom_metric", "custom_unit", G, "custom_metric_custom_unit"},
    {"custom_metric", "{custom}", G, "custom_metric"},
    {"custom_metric", "By/{custom}", G, "custom_metric_bytes"},
    {"requests_total", "", C, "requests_total"},
    {"cpu_usage_ratio", "1", G, "cpu_usage_ratio"},
    {"response_time_seconds", "s", G, "response_time_seconds"},
    {"metric__with__multiple__underscores", "unit__multiple__underscores", G, "metric_with_multiple_underscores_unit_multiple_underscores"},
    {"custom_metric", "unit@with#special/chars", G, "custom_metric_unit_with_special_per_chars"},
    {"request_duration", "s", H, "request_duration_seconds"},
    {"request_size", "By", H, "request_size_bytes"},
    {"response_time", "ms", S, "response_time_milliseconds"},
    {"active_connections", "", U, "active_connections"},
    {"unknown_metric", "", U, "unknown_metric"},
    {"uptime", "d", G, "uptime_days"},
    {"duration", "h", G, "duration_hours"},
    {"timeout", "min", G, "timeout_minutes"},
    {"latency", "us", G, "latency_microseconds"},
    {"precision_time", "ns", G, "precision_time_nanoseconds"},
    {"cache_size", "KiBy", G, "cache_size_kibibytes"},
    {"memory", "MiBy", G, "memory_mebibytes"},
    {"storage", "GiBy", G, "storage_gibibytes"},
    {"capacity", "TiBy", G, "capacity_tibibytes"},
    {"transfer", "KBy", G, "transfer_kilobytes"},
    {"download", "MBy", G, "download_megabytes"},
    {"backup", "GBy", G, "backup_gigabytes"},
    {"archive", "TBy", G, "archive_terabytes"},
    {"distance", "m", G, "distance_meters"},
    {"voltage", "V", G, "voltage_volts"},
    {"current", "A", G, "current_amperes"},
    {"energy", "J", G, "energy_joules"},
    {"power", "W", G, "power_watts"},
    {"weight", "g", G, "weight_grams"},
    {"temperature", "Cel", G, "temperature_celsius"},
    {"frequency", "Hz", G, "frequency_hertz"},
    {"cpu_usage", "%", G, "cpu_usage_percent"},
    {"requests", "1/m", G, "requests_per_minute"},
    {"events", "1/h", G, "events_per_hour"},
    {"transactions", "1/d", G, "transactions_per_day"},
    {"reports", "1/w", G, "reports_per_week"},
    {"invoices", "1/mo", G, "invoices_per_month"},
    {"renewals", "1/y", G, "renewals_per_year"},
    {"custom", "1/custom_unit", G, "custom_per_custom_unit"},
    {"metric", "By/", G, "metric_bytes"},
    {"metric", " By / s ", G, "metric_bytes_per_second"},
    {"metric", "/", G, "metric"},
    {"http.request.duration", "ms", H, "http_request_duration_milliseconds"},
    {"http.requests", "1", C, "http_requests_total"},
    /* collector-contrib pkg/translator/prometheus normalize_name_test.go
     * (the cases otlptranslator still gives the same answer for) */
    {"system.filesystem.usage", "By", G, "system_filesystem_usage_bytes"},
    {"system.io", "By", C, "system_io_bytes_total"},
    {"network_transmitted_bytes_total", "By", C, "network_transmitted_bytes_total"},
    {"\t system.filesystem.usage       ", "  By\t", G, "system_filesystem_usage_bytes"},
    {"system.network.dropped", "{packets}", G, "system_network_dropped"},
    {"system.network.dropped", "{packets}", C, "system_network_dropped_total"},
    {"system.network.dropped", "packets", G, "system_network_dropped_packets"},
    {"system.network.packets.dropped", "packets", G, "system_network_packets_dropped"},
    {"system.network.packets", "packets", G, "system_network_packets"},
    {"system.network.dropped", "packets", C, "system_network_dropped_packets_total"},
    {"system.network.packets.dropped", "packets", C, "system_network_packets_dropped_total"},
    {"system.network.packets", "packets", C, "system_network_packets_total"},
    {"hw.gpu.memory.utilization", "1", G, "hw_gpu_memory_utilization_ratio"},
    {"hw.fan.speed_ratio", "1", G, "hw_fan_speed_ratio"},
    {"objects", "1", C, "objects_total"},
    {"hw.cpu.speed_limit", "Hz", G, "hw_cpu_speed_limit_hertz"},
    {"broken.metric.speed", "km/h", G, "broken_metric_speed_km_per_hour"},
    {"astro.light.speed_limit", "m/s", G, "astro_light_speed_limit_meters_per_second"},
    {"broken.metric.success_ratio", "%", G, "broken_metric_success_ratio_percent"},
    {"broken.metric.success_percent", "%", G, "broken_metric_success_percent"},
    {"test.metric.no_unit", "", G, "test_metric_no_unit"},
    {"test.metric.spaces", "   \t  ", G, "test_metric_spaces"},
    {"unsupported.metric.temperature", "\xc2\xb0" "F", G, "unsupported_metric_temperature_F"},
    {"unsupported.metric.redundant", "__test $/\xc2\xb0" "C", G, "unsupported_metric_redundant_test_per_C"},
    {"active_directory.ds.replication.network.io", "By", C, "active_directory_ds_replication_network_io_bytes_total"},
    {"active_directory.ds.replication.sync.object.pending", "{objects}", C,
     "active_directory_ds_replication_sync_object_pending_total"},
    {"active_directory.ds.replication.object.rate", "{objects}/s", G,
     "active_directory_ds_replication_object_rate_per_second"},
    {"active_directory.ds.name_cache.hit_rate", "%", G, "active_directory_ds_name_cache_hit_rate_percent"},
    {"active_directory.ds.ldap.bind.last_successful.time", "ms", G,
     "active_directory_ds_ldap_bind_last_successful_time_milliseconds"},
    {"apache.current_connections", "connections", G, "apache_current_connections"},
    {"apache.workers", "connections", G, "apache_workers_connections"},
    {"apache.requests", "1", C, "apache_requests_total"},
    {"bigip.virtual_server.request.count", "{requests}", C, "bigip_virtual_server_request_count_total"},
    {"system.cpu.utilization", "1", G, "system_cpu_utilization_ratio"},
    {"system.disk.operation_time", "s", C, "system_disk_operation_time_seconds_total"},
    {"system.cpu.load_average.15m", "1", G, "system_cpu_load_average_15m_ratio"},
    {"memcached.operation_hit_ratio", "%", G, "memcached_operation_hit_ratio_percent"},
    {"mongodbatlas.process.asserts", "{assertions}/s", G, "mongodbatlas_process_asserts_per_second"},
    {"mongodbatlas.process.journaling.data_files", "MiBy", G, "mongodbatlas_process_journaling_data_files_mebibytes"},
    {"mongodbatlas.process.network.io", "By/s", G, "mongodbatlas_process_network_io_bytes_per_second"},
    {"mongodbatlas.process.oplog.rate", "GiBy/h", G, "mongodbatlas_process_oplog_rate_gibibytes_per_hour"},
    {"mongodbatlas.process.db.query_targeting.scanned_per_returned", "{scanned}/{returned}", G,
     "mongodbatlas_process_db_query_targeting_scanned_per_returned"},
    {"nginx.requests", "requests", G, "nginx_requests"},
    {"nginx.connections_accepted", "connections", G, "nginx_connections_accepted"},
    {"nsxt.node.memory.usage", "KBy", G, "nsxt_node_memory_usage_kilobytes"},
    {"redis.latest_fork", "us", G, "redis_latest_fork_microseconds"},
    {"3.14 digits", "", G, "_3_14_digits"},
    {"envoy__rule_engine_zlib_buf_error", "", G, "envoy_rule_engine_zlib_buf_error"},
};

/* otlptranslator's UnitNamer answers for the same units (metadata's unit). */
static const struct {
    const char *unit, *want;
} UNIT_CASES[] = {
    {"", ""},
    {"1", ""},
    {"ms", "milliseconds"},
    {"By", "bytes"},
    {"1/s", "per_second"},
    {"By/s", "bytes_per_second"},
    {"custom_unit", "custom_unit"},
    {"{custom}", ""},
    {"By/{custom}", "bytes"},
    {"s", "seconds"},
    {"unit__multiple__underscores", "unit_multiple_underscores"},
    {"unit@with#special/chars", "unit_with_special_per_chars"},
    {"d", "days"},
    {"h", "hours"},
    {"min", "minutes"},
    {"us", "microseconds"},
    {"ns", "nanoseconds"},
    {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},
    {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},
    {"MBy", "megabytes"},
    {"GBy", "gigabytes"},
    {"TBy", "terabytes"},
    {"m", "meters"},
    {"V", "volts"},
    {"A", "amperes"},
    {"J", "joules"},
    {"W", "watts"},
    {"g", "grams"},
    {"Cel", "celsius"},
    {"Hz", "hertz"},
    {"%", "percent"},
    {"1/m", "per_minute"},
    {"1/h", "per_hour"},
    {"1/d", "per_day"},
    {"1/w", "per_week"},
    {"1/mo", "per_month"},
    {"1/y", "per_year"},
    {"1/custom_unit", "per_custom_unit"},
    {"By/", "bytes"},
    {" By / s ", "bytes_per_second"},
    {"/", ""},
};

static void test_metric_name_table(void **state)
{
    (void)state;
    size_t n = sizeof(NAME_CASES) / sizeof(NAME_CASES[0]), failed = 0;
    assert_true(n >= 40);
    buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        buf_clear(&b);
        assert_int_equal(prom_rw_metric_name(&b, NAME_CASES[i].name, NAME_CASES[i].unit, NAME_CASES[i].kind, 1), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        if (strcmp(b.data, NAME_CASES[i].want) != 0) {
            print_error("%s [%s] kind %d: got %s, want %s\n", NAME_CASES[i].name, NAME_CASES[i].unit,
                        NAME_CASES[i].kind, b.data, NAME_CASES[i].want);
            failed++;
        }
    }
    for (size_t i = 0; i < sizeof(UNIT_CASES) / sizeof(UNIT_CASES[0]); i++) {
        buf_clear(&b);
        assert_int_equal(prom_rw_unit_name(&b, UNIT_CASES[i].unit), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        if (strcmp(b.data, UNIT_CASES[i].want) != 0) {
            print_error("unit [%s]: got %s, want %s\n", UNIT_CASES[i].unit, b.data, UNIT_CASES[i].want);
            failed++;
        }
    }
    /* names with nothing valid are refused (upstream: an error) */
    buf_clear(&b);
    assert_int_equal(prom_rw_metric_name(&b, "@#$%", "", PROM_RW_KIND_GAUGE, 1), 1);
    assert_int_equal(prom_rw_metric_name(&b, "", "{x}", PROM_RW_KIND_GAUGE, 1), 1);
    assert_int_equal(prom_rw_metric_name(&b, "@_#_$_%", "", PROM_RW_KIND_GAUGE, 0), 1);
    assert_int_equal(b.len, 0);
    /* without suffixes (UnderscoreEscapingWithoutSuffixes): underscores stay */
    static const struct {
        const char *name, *want;
    } plain[] = {{"simple_metric", "simple_metric"}, {"metric@with#special$chars", "metric_with_special_chars"},
                 {"123metric", "_123metric"}, {"metric@@##$$name", "metric_name"},
                 {"metric__with__underscores", "metric__with__underscores"}};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        buf_clear(&b);
        assert_int_equal(prom_rw_metric_name(&b, plain[i].name, "s", PROM_RW_KIND_COUNTER, 0), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        assert_string_equal(b.data, plain[i].want);
    }
    buf_free(&b);
    assert_int_equal(failed, 0);
}

/* Name of the single metric's first series: the table's rules reach the
 * converted series. */
static void check_name(const char *name, const char *unit, int kind, int suffixes, const char *want)
{
    number_t **p = alloc(sizeof(*p));
    p[0] = num_point(MS(1000), 1, NULL, 0);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = kind == 0 ? gauge(name, unit, p, 1) : sum(name, unit, kind == 1, CUMULATIVE, p, 1);
    prom_rw_options opt = {.add_metric_suffixes = suffixes, .target_info = 0};
    result r = convert(one_resource(ms, 1), &opt);
    const char *got = label(r.wr->timeseries[0], "__name__");
    if (strcmp(got, want) != 0)
        fail_msg("%s [%s]: got %s, want %s", name, unit, got, want);
    result_free(&r);
}

static void test_metric_names(void **state)
{
    (void)state;
    enum { GAUGE = 0, COUNTER = 1, UPDOWN = 2 };
    check_name("http.server.duration", "s", GAUGE, 1, "http_server_duration_seconds");
    check_name("io_total", "By", COUNTER, 1, "io_bytes_total");
    check_name("total.io.total", "By", COUNTER, 1, "io_bytes_total");       /* `total` anywhere moves last */
    check_name("ratio.of.cpu", "1", GAUGE, 1, "of_cpu_ratio");              /* so does `ratio` */
    check_name("bytes.sent", "By", GAUGE, 1, "bytes_sent");                 /* a unit word anywhere: not again */
    check_name("items", "1", UPDOWN, 1, "items");
    check_name("speed", "m/min", GAUGE, 1, "speed_meters_per_min");         /* "min" is no per unit upstream */
    check_name("caf\xc3\xa9", "", GAUGE, 1, "caf");
    check_name("__a__b__", "", GAUGE, 1, "a_b");
    check_name("ns:sub.metric", "", GAUGE, 1, "ns:sub_metric");
    check_name("io", "By", COUNTER, 0, "io");
    check_name("a__b.c", "", GAUGE, 0, "a__b_c");

    /* a metric without a valid name is dropped, its points counted */
    number_t **p = alloc(2 * sizeof(*p));
    p[0] = num_point(MS(1000), 1, NULL, 0);
    p[1] = num_point(MS(2000), 1, NULL, 0);
    metric_t **ms = alloc(2 * sizeof(*ms));
    ms[0] = gauge("\xe3\x82\x88", "", p, 2);
    ms[1] = gauge("ok", "", p, 1);
    result r = convert(one_resource(ms, 2), NULL);
    char all[64];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "ok target_info");
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 2);
    result_free(&r);
}

/* Label names: otlptranslator's label_namer_test.go cases for the default
 * LabelNamer (NULL: no valid name, upstream's error). */
static void test_label_name_table(void **state)
{
    (void)state;
    static const struct {
        const char *key, *want;
    } cases[] = {{"label:with:colons", "label_with_colons"},
                 {"LabelWithCapitalLetters", "LabelWithCapitalLetters"},
                 {"label!with&special$chars)", "label_with_special_chars_"},
                 {"label_with_foreign_characters_\xe5\xad\x97\xe7\xac\xa6", "label_with_foreign_characters_"},
                 {"label.with.dots", "label_with_dots"},
                 {".foo", "_foo"},
                 {"123label", "key_123label"},
                 {"_label_starting_with_underscore", "_label_starting_with_underscore"},
                 {"__label_starting_with_2underscores", "_label_starting_with_2underscores"},
                 {"\xe3\x82\x88\xe3\x81\x86\xe3\x81\x93\xe3\x81\x9d", NULL},
                 {"label__with__double__underscores", "label_with_double_underscores"},
                 {"label.name__with&&special##chars", "label_name_with_special_chars"},
                 {"__reserved__label__name__", "__reserved_label_name__"},
                 {"trailing_underscores___", "trailing_underscores_"},
                 {"", NULL},
                 {"__", NULL}};
    buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_clear(&b);
        int rc = prom_rw_label_name(&b, cases[i].key);
        assert_int_equal(rc, cases[i].want == NULL ? 1 : 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        assert_string_equal(b.data, cases[i].want != NULL ? cases[i].want : "");
    }
    buf_free(&b);
}

static void test_labels(void **state)
{
    (void)state;
    static const uint8_t raw[] = {0xde, 0xad, 0xbe, 0xef};
    any_t *arr = any(), *map = any(), *bytes = any();
    arr->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    arr->array_value = alloc(sizeof(*arr->array_value));
    opentelemetry__proto__common__v1__array_value__init(arr->array_value);
    arr->array_value->values = alloc(4 * sizeof(any_t *));
    arr->array_value->values[0] = any_int(1);
    arr->array_value->values[1] = any_str("a\"b");
    arr->array_value->values[2] = any_bool(1);
    arr->array_value->values[3] = any_double(0.5);
    arr->array_value->n_values = 4;
    map->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    map->kvlist_value = alloc(sizeof(*map->kvlist_value));
    opentelemetry__proto__common__v1__key_value_list__init(map->kvlist_value);
    map->kvlist_value->values = alloc(sizeof(kv_t *));
    map->kvlist_value->values[0] = kv("k", any_str("v"));
    map->kvlist_value->n_values = 1;
    bytes->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    bytes->bytes_value.data = (uint8_t *)raw;
    bytes->bytes_value.len = sizeof(raw);
    size_t na;
    kv_t **pa = attrs(&na, kvs("http_method", "POST"), kvs("http.method", "GET"), kvs("2fast", "x"),
                      kvs("__reserved", "r"), kvs("a__b", "ab"), kvs("empty", ""), kv("count", any_int(-42)),
                      kv("ratio", any_double(1.5)), kv("ok", any_bool(0)), kv("list", arr), kv("map", map),
                      kv("raw", bytes), kvs("job", "point-job"), kvs("bad.utf8", "x\xff"), kvs("", "no name"),
                      kvs("__", "only underscores"), kvs("__meta__", "kept"), NULL);
    number_t **p = alloc(sizeof(*p));
    p[0] = num_point(MS(1000), 1, pa, na);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = gauge("g", "", p, 1);
    result r = convert(one_resource(ms, 1), NULL);
    const Prometheus__TimeSeries *ts = r.wr->timeseries[0];
    /* "http.method" sorts before "http_method": values in that order */
    assert_string_equal(label(ts, "http_method"), "GET;POST");
    assert_string_equal(label(ts, "key_2fast"), "x");
    assert_string_equal(label(ts, "_reserved"), "r");
    assert_string_equal(label(ts, "a_b"), "ab");
    assert_null(label(ts, "empty"));
    assert_string_equal(label(ts, "count"), "-42");
    assert_string_equal(label(ts, "ratio"), "1.5");
    assert_string_equal(label(ts, "ok"), "false");
    assert_string_equal(label(ts, "list"), "[1,\"a\\\"b\",true,0.5]");
    assert_string_equal(label(ts, "map"), "{\"k\":\"v\"}");
    assert_string_equal(label(ts, "raw"), "3q2+7w==");
    assert_string_equal(label(ts, "job"), "shop/cart"); /* the resource's job wins */
    assert_string_equal(label(ts, "bad_utf8"), "x\xef\xbf\xbd");
    assert_string_equal(label(ts, "__meta__"), "kept"); /* reserved form: kept, as upstream */
    assert_null(label(ts, "_"));
    assert_int_equal(ts->n_labels, 15); /* __name__, instance and the 13 above */
    result_free(&r);
}

static void test_resource_and_target_info(void **state)
{
    (void)state;
    number_t **p1 = alloc(3 * sizeof(*p1));
    p1[0] = num_point(MS(2000), 1, NULL, 0);
    p1[1] = num_point(MS(3000), 2, NULL, 0);
    p1[2] = num_point(MS(1000), 3, NULL, 0);
    metric_t **m1 = alloc(sizeof(*m1));
    m1[0] = gauge("g", "", p1, 3);
    size_t n1, n2, n3;
    kv_t **r1 = std_resource(&n1);
    /* service.name only, plus a non-string attribute */
    kv_t **r2 = attrs(&n2, kvs("service.name", "solo"), kv("process.pid", any_int(77)), NULL);
    number_t **p2 = alloc(sizeof(*p2));
    p2[0] = num_point(MS(1000), 5, NULL, 0);
    metric_t **m2 = alloc(sizeof(*m2));
    m2[0] = gauge("g", "", p2, 1);
    /* nothing beyond job and instance: no target_info */
    kv_t **r3 = attrs(&n3, kvs("service.name", "bare"), kvs("service.instance.id", "b-1"), NULL);
    number_t **p3 = alloc(sizeof(*p3));
    p3[0] = num_point(MS(1000), 6, NULL, 0);
    metric_t **m3 = alloc(sizeof(*m3));
    m3[0] = gauge("g", "", p3, 1);
    rm_t **rms = alloc(4 * sizeof(*rms));
    rms[0] = resource(r1, n1, m1, 1);
    rms[1] = resource(r2, n2, m2, 1);
    rms[2] = resource(r3, n3, m3, 1);
    metric_t **m4 = alloc(sizeof(*m4));
    m4[0] = too_coarse("e", 1);
    rms[3] = resource(r1, n1, m4, 1); /* no converted point: no target_info */
    req_t *req = request(rms, 4);

    result r = convert(req, NULL);
    char all[256];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "g g g target_info g target_info g");
    const Prometheus__TimeSeries *ti = find(&r, "target_info", "job", "shop/cart");
    assert_int_equal(ti->n_labels, 4);
    assert_string_equal(label(ti, "host_name"), "h1");
    assert_string_equal(label(ti, "instance"), "i-1");
    assert_true(value(ti) == 1);
    assert_int_equal(ti->samples[0]->timestamp, 3000); /* the resource's latest point */
    const Prometheus__TimeSeries *solo = find(&r, "target_info", "job", "solo");
    assert_string_equal(label(solo, "process_pid"), "77");
    assert_null(label(solo, "instance"));
    assert_null(label(solo, "service_name"));
    assert_null(label(find(&r, "g", "job", "solo"), "instance"));
    assert_string_equal(label(find(&r, "g", "job", "bare"), "instance"), "b-1");
    assert_null(find_nth(&r, "target_info", "job", "bare", 0));
    result_free(&r);

    /* options: no target_info; resource attributes copied onto every series */
    static const char *const copy[] = {"host.name", "process.pid", "missing"};
    prom_rw_options opt = {.add_metric_suffixes = 1, .target_info = 0, .resource_labels = copy,
                           .n_resource_labels = 3};
    r = convert(req, &opt);
    names(&r, all, sizeof(all));
    assert_string_equal(all, "g g g g g");
    assert_string_equal(label(r.wr->timeseries[0], "host_name"), "h1");
    assert_string_equal(label(r.wr->timeseries[3], "process_pid"), "77");
    assert_null(label(r.wr->timeseries[3], "host_name"));
    result_free(&r);
}

static void test_drops_and_staleness(void **state)
{
    (void)state;
    static const double bounds[] = {1};
    static const uint64_t counts[] = {1, 1};
    static const double s = 3;
    number_t **d = alloc(2 * sizeof(*d));
    d[0] = num_point(MS(1000), 1, NULL, 0);
    d[1] = num_point(MS(2000), 1, NULL, 0);
    hist_t **dh = alloc(sizeof(*dh));
    dh[0] = hist_point(MS(1000), bounds, 1, counts, 2, 2, &s);
    number_t **un = alloc(sizeof(*un));
    un[0] = num_point(MS(1000), 1, NULL, 0);
    number_t **bad = alloc(3 * sizeof(*bad));
    bad[0] = num_point(MS(1000), 1, NULL, 0);
    bad[0]->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET; /* no value */
    bad[1] = num_point(0, 1, NULL, 0);                                                        /* no timestamp */
    bad[2] = num_point(MS(4000), 0, NULL, 0);
    bad[2]->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET;
    bad[2]->flags = 1; /* no recorded value: stale marker */
    hist_t **sh = alloc(sizeof(*sh));
    sh[0] = hist_point(MS(5000), bounds, 1, counts, 2, 2, &s);
    sh[0]->flags = 1;
    metric_t **ms = alloc(7 * sizeof(*ms));
    ms[0] = sum("delta.sum", "", 1, DELTA, d, 2);
    ms[1] = histogram("delta.hist", "", DELTA, dh, 1);
    ms[2] = too_coarse("exp", 3);
    ms[3] = sum("unspecified", "", 1, 0, un, 1);
    ms[4] = gauge("g", "", bad, 3);
    ms[5] = histogram("stale.hist", "", CUMULATIVE, sh, 1);
    ms[6] = sum("delta.updown", "", 0, DELTA, d, 2);
    result r = convert(one_resource(ms, 7), NULL);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_DELTA], 5);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_SCALE], 3);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 3);
    assert_int_equal(r.st.converted, 2);
    char all[256];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "g stale_hist_bucket stale_hist_bucket stale_hist_sum stale_hist_count target_info");
    for (size_t i = 0; i < 5; i++)
        assert_true(bits(value(r.wr->timeseries[i])) == 0x7ff0000000000002ull);
    assert_int_equal(r.wr->timeseries[0]->samples[0]->timestamp, 4000);
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_DELTA), "delta_temporality");
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_SCALE), "exponential_scale");
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_INVALID), "invalid");
    result_free(&r);
}

static void test_metadata(void **state)
{
    (void)state;
    number_t **p = alloc(sizeof(*p));
    p[0] = int_point(MS(1000), 1);
    metric_t **ms = alloc(3 * sizeof(*ms));
    ms[0] = sum("io", "By", 1, CUMULATIVE, p, 1);
    ms[0]->description = "Bytes moved.";
    ms[1] = too_coarse("exp", 1);
    number_t **g = alloc(sizeof(*g));
    g[0] = int_point(MS(1000), 1);
    ms[2] = gauge("bad.help", "", g, 1);
    ms[2]->description = "caf\xe9";
    rm_t **rms = alloc(2 * sizeof(*rms));
    size_t nr;
    kv_t **ra = std_resource(&nr);
    rms[0] = resource(ra, nr, ms, 3);
    rms[1] = resource(ra, nr, ms, 1); /* the same family again */
    result r = convert(request(rms, 2), NULL);
    assert_int_equal(r.wr->n_metadata, 3);
    const Prometheus__MetricMetadata *m = r.wr->metadata[0];
    assert_int_equal(m->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
    assert_string_equal(m->metric_family_name, "io_bytes_total");
    assert_string_equal(m->help, "Bytes moved.");
    assert_string_equal(m->unit, "bytes");
    assert_string_equal(r.wr->metadata[1]->metric_family_name, "bad_help");
    assert_int_equal(r.wr->metadata[1]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE);
    assert_string_equal(r.wr->metadata[1]->help, "caf\xef\xbf\xbd"); /* valid UTF-8 */
    assert_string_equal(r.wr->metadata[2]->metric_family_name, "target_info");
    result_free(&r);
}

/* le and quantile values as Go's strconv.FormatFloat(v, 'f', -1, 64),
 * which upstream uses: never an exponent. */
static void test_float_format(void **state)
{
    (void)state;
    static const struct {
        double b;
        const char *want;
    } cases[] = {{0.1, "0.1"},
                 {2.5, "2.5"},
                 {100000, "100000"},
                 {1e6, "1000000"},
                 {1234567, "1234567"},
                 {0.0001, "0.0001"},
                 {0.00001, "0.00001"},
                 {1e-7, "0.0000001"},
                 {-3, "-3"},
                 {0, "0"},
                 {1.0 / 3, "0.3333333333333333"},
                 {123.456, "123.456"},
                 {1e21, "1000000000000000000000"},
                 {2.5e-3, "0.0025"},
                 {9007199254740993.0, "9007199254740992"}};
    size_t n = sizeof(cases) / sizeof(cases[0]);
    double *bounds = alloc(n * sizeof(double));
    uint64_t *counts = alloc((n + 1) * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++)
        bounds[i] = cases[i].b;
    hist_t **pts = alloc(sizeof(*pts));
    pts[0] = hist_point(MS(1000), bounds, n, counts, n + 1, 0, NULL);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = histogram("h", "", CUMULATIVE, pts, 1);
    result r = convert(one_resource(ms, 1), NULL);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(label(r.wr->timeseries[i], "le"), cases[i].want);
    result_free(&r);

    buf b = BUF_INIT;
    static const struct {
        double v;
        const char *le, *attr;
    } more[] = {{INFINITY, "+Inf", "+Inf"},      {-INFINITY, "-Inf", "-Inf"},   {NAN, "NaN", "NaN"},
                {-0.0, "-0", "-0"},             {1e21, "1000000000000000000000", "1e+21"},
                {1e-7, "0.0000001", "1e-7"},    {1.5e-7, "0.00000015", "1.5e-7"}, {1e6, "1000000", "1000000"},
                {0.000001, "0.000001", "0.000001"}};
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        buf_clear(&b);
        assert_int_equal(prom_rw_put_float(&b, more[i].v), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        assert_string_equal(b.data, more[i].le);
        buf_clear(&b);
        assert_int_equal(prom_rw_put_float_attr(&b, more[i].v), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        assert_string_equal(b.data, more[i].attr);
    }
    buf_free(&b);
}

/* ---- native histograms ---- */

typedef struct layout_want {
    size_t nspans;
    prom_rw_span spans[3];
    size_t ndeltas;
    int64_t deltas[8];
} layout_want;

static void check_layout(const char *what, const uint64_t *counts, size_t n, int32_t offset, int scale_down,
                         const layout_want *w)
{
    prom_rw_span spans[32];
    int64_t deltas[32];
    size_t ns, nd;
    assert_int_equal(prom_rw_native_layout(counts, n, offset, scale_down, spans, &ns, deltas, &nd), 0);
    int ok = ns == w->nspans && nd == w->ndeltas;
    for (size_t i = 0; ok && i < ns; i++)
        ok = spans[i].offset == w->spans[i].offset && spans[i].length == w->spans[i].length;
    for (size_t i = 0; ok && i < nd; i++)
        ok = deltas[i] == w->deltas[i];
    if (!ok) {
        for (size_t i = 0; i < ns; i++)
            print_error("span {%d, %u}\n", spans[i].offset, spans[i].length);
        for (size_t i = 0; i < nd; i++)
            print_error("delta %lld\n", (long long)deltas[i]);
        fail_msg("%s, scale down %d: layout differs", what, scale_down);
    }
}

/* collector-contrib's TestConvertBucketsLayout vectors, each at scale
 * reductions 0, 1 and 2. */
static void test_native_layout(void **state)
{
    (void)state;
    static const uint64_t c4321[] = {4, 3, 2, 1};
    static const uint64_t cpos[] = {4, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint64_t cmerge[] = {4, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint64_t cneg[] = {3, 1, 0, 0, 0, 1};
    static const uint64_t cgap1[] = {3, 1, 0, 1, 0, 1};
    static const uint64_t cgap2[] = {3, 0, 0, 1, 0, 0, 1};
    static const struct {
        const char *name;
        const uint64_t *counts;
        size_t n;
        int32_t offset;
        layout_want want[3];
    } cases[] = {
        {"zero offset", c4321, 4, 0,
         {{1, {{1, 4}}, 4, {4, -1, -1, -1}}, {1, {{1, 2}}, 2, {7, -4}}, {1, {{1, 1}}, 1, {10}}}},
        {"offset 1", c4321, 4, 1,
         {{1, {{2, 4}}, 4, {4, -1, -1, -1}}, {1, {{1, 3}}, 3, {4, 1, -4}}, {1, {{1, 2}}, 2, {9, -8}}}},
        {"positive offset", cpos, 17, 4,
         {{2, {{5, 4}, {12, 1}}, 5, {4, -2, -2, 2, -1}},
          {2, {{3, 2}, {6, 1}}, 3, {6, -4, -1}},
          {2, {{2, 1}, {3, 1}}, 2, {8, -7}}}},
        {"scaledown merges spans", cmerge, 13, 4,
         {{2, {{5, 4}, {8, 1}}, 5, {4, -2, -2, 2, -1}},
          {2, {{3, 2}, {4, 1}}, 3, {6, -4, -1}},
          {1, {{2, 4}}, 4, {8, -8, 0, 1}}}},
        {"negative offset", cneg, 6, -2,
         {{2, {{-1, 2}, {3, 1}}, 3, {3, -2, 0}}, {1, {{0, 3}}, 3, {4, -4, 1}}, {1, {{0, 2}}, 2, {4, -3}}}},
        {"gaps of size 1", cgap1, 6, -2,
         {{1, {{-1, 6}}, 6, {3, -2, -1, 1, -1, 1}}, {1, {{0, 3}}, 3, {4, -3, 0}}, {1, {{0, 2}}, 2, {4, -2}}}},
        {"gaps of size 2", cgap2, 7, -2,
         {{1, {{-1, 7}}, 7, {3, -3, 0, 1, -1, 0, 1}}, {1, {{0, 4}}, 4, {3, -2, -1, 1}}, {1, {{0, 3}}, 3, {3, -2, 0}}}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (int sd = 0; sd < 3; sd++)
            check_layout(cases[i].name, cases[i].counts, cases[i].n, cases[i].offset, sd, &cases[i].want[sd]);
    /* no buckets: nothing */
    prom_rw_span sp[1];
    int64_t d[1];
    size_t ns = 9, nd = 9;
    assert_int_equal(prom_rw_native_layout(NULL, 0, 3, 1, sp, &ns, d, &nd), 0);
    assert_int_equal(ns + nd, 0);
    /* Leading empty buckets that merge with filled ones: upstream puts 3 in
     * bucket 1 and 4 in bucket 2 here (its running sum is attributed to the
     * previous bucket); all 7 observations are in bucket 2. */
    static const uint64_t lead[] = {0, 0, 3, 4};
    layout_want w = {1, {{1, 2}}, 2, {0, 7}};
    check_layout("leading empty group", lead, 4, 0, 1, &w);
    /* empty leading buckets before a gap of more than 2: an empty first span */
    static const uint64_t far[] = {0, 0, 0, 5};
    layout_want wf = {2, {{1, 0}, {3, 1}}, 1, {5}};
    check_layout("leading gap", far, 4, 0, 0, &wf);
    /* any scale: past 62 halvings every index is 0 (or -1 below zero) */
    layout_want all = {1, {{1, 1}}, 1, {10}};
    check_layout("scale 100", c4321, 4, 5, 92, &all);
    /* an index Prometheus' 32-bit offsets cannot hold */
    assert_int_equal(prom_rw_native_layout(c4321, 4, INT32_MAX, 0, sp, &ns, d, &nd), 1);
}

/* A native histogram as decoded, against the expected fields. */
static void check_native(const Prometheus__Histogram *h, uint64_t count, double sumv, int schema, uint64_t zero,
                         const layout_want *pos, const layout_want *neg, int64_t ts)
{
    assert_int_equal(h->count_case, PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT);
    assert_int_equal(h->count_int, count);
    assert_true(h->sum == sumv);
    assert_int_equal(h->schema, schema);
    assert_true(h->zero_threshold == 1e-128);
    assert_int_equal(h->zero_count_case, PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT);
    assert_int_equal(h->zero_count_int, zero);
    assert_int_equal(h->reset_hint, PROMETHEUS__HISTOGRAM__RESET_HINT__UNKNOWN);
    assert_int_equal(h->timestamp, ts);
    const struct {
        const layout_want *w;
        size_t ns, nd;
        Prometheus__BucketSpan **spans;
        int64_t *deltas;
    } sides[2] = {{pos, h->n_positive_spans, h->n_positive_deltas, h->positive_spans, h->positive_deltas},
                  {neg, h->n_negative_spans, h->n_negative_deltas, h->negative_spans, h->negative_deltas}};
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(sides[k].ns, sides[k].w->nspans);
        assert_int_equal(sides[k].nd, sides[k].w->ndeltas);
        for (size_t i = 0; i < sides[k].ns; i++) {
            assert_int_equal(sides[k].spans[i]->offset, sides[k].w->spans[i].offset);
            assert_int_equal(sides[k].spans[i]->length, sides[k].w->spans[i].length);
        }
        for (size_t i = 0; i < sides[k].nd; i++)
            assert_int_equal(sides[k].deltas[i], sides[k].w->deltas[i]);
    }
}

/* collector-contrib's TestExponentialToNativeHistogram vectors through the
 * whole conversion. Their counts leave the zero bucket out (4 and 6 where
 * zero_count + buckets are 5 and 7); Prometheus refuses a histogram whose
 * count differs from its buckets', so the consistent counts are used. */
static void test_exp_histogram(void **state)
{
    (void)state;
    static const uint64_t two[] = {1, 1}, three[] = {1, 1, 1};
    static const double s = 10.1;
    exp_t **pts = alloc(8 * sizeof(*pts));
    pts[0] = exp_point(500 * 1000000ull, 1, 5, 1, &s);
    pts[1] = exp_point(600 * 1000000ull, 1, 5, 1, NULL); /* no sum */
    for (size_t i = 0; i < 2; i++) {
        pts[i]->positive = exp_buckets(1, two, 2);
        pts[i]->negative = exp_buckets(1, two, 2);
    }
    pts[2] = exp_point(700 * 1000000ull, 8, 7, 1, &s); /* no downscaling at 8 */
    pts[3] = exp_point(800 * 1000000ull, 9, 7, 1, &s); /* 9: merged down to 8 */
    for (size_t i = 2; i < 4; i++) {
        pts[i]->positive = exp_buckets(1, three, 3);
        pts[i]->negative = exp_buckets(2, three, 3);
    }
    pts[4] = exp_point(900 * 1000000ull, -10, 1, 1, NULL); /* scale below -4: refused upstream */
    pts[5] = exp_point(900 * 1000000ull, 0, 9, 1, NULL);   /* count does not match the buckets */
    pts[5]->positive = exp_buckets(0, two, 2);
    pts[6] = exp_point(950 * 1000000ull, 0, 3, 1, &s); /* stale */
    pts[6]->positive = exp_buckets(0, two, 2);
    pts[6]->flags = 1;
    double nan_sum = NAN;
    pts[7] = exp_point(990 * 1000000ull, -4, 9, 0, &nan_sum); /* NaN sum: more observations than buckets is fine */
    pts[7]->positive = exp_buckets(-3, two, 2);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = exp_metric("http.server.request.duration", "s", pts, 8);
    ms[0]->description = "Request time.";
    result r = convert(one_resource(ms, 1), NULL);
    assert_int_equal(r.st.converted, 6);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_SCALE], 1);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 1);
    char all[512];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "http_server_request_duration_seconds http_server_request_duration_seconds "
                             "http_server_request_duration_seconds http_server_request_duration_seconds "
                             "http_server_request_duration_seconds http_server_request_duration_seconds target_info");
    const layout_want two_at_2 = {1, {{2, 2}}, 2, {1, 0}};
    for (size_t i = 0; i < 2; i++) {
        const Prometheus__TimeSeries *ts = r.wr->timeseries[i];
        assert_int_equal(ts->n_samples, 0);
        assert_int_equal(ts->n_histograms, 1);
        assert_string_equal(label(ts, "job"), "shop/cart");
        check_native(ts->histograms[0], 5, i == 0 ? 10.1 : 0, 1, 1, &two_at_2, &two_at_2, i == 0 ? 500 : 600);
    }
    const layout_want p8 = {1, {{2, 3}}, 3, {1, 0, 0}}, n8 = {1, {{3, 3}}, 3, {1, 0, 0}};
    check_native(r.wr->timeseries[2]->histograms[0], 7, 10.1, 8, 1, &p8, &n8, 700);
    const layout_want p9 = {1, {{1, 2}}, 2, {1, 1}}, n9 = {1, {{2, 2}}, 2, {2, -1}};
    check_native(r.wr->timeseries[3]->histograms[0], 7, 10.1, 8, 1, &p9, &n9, 800);
    /* stale: the count's bits and the sum are Prometheus' stale NaN */
    const Prometheus__Histogram *st = r.wr->timeseries[4]->histograms[0];
    assert_true(st->count_int == 0x7ff0000000000002ull);
    assert_true(bits(st->sum) == 0x7ff0000000000002ull);
    const Prometheus__Histogram *nh = r.wr->timeseries[5]->histograms[0];
    assert_int_equal(nh->schema, -4);
    assert_int_equal(nh->positive_spans[0]->offset, -2);
    /* metadata: a histogram family under the plain name */
    assert_string_equal(r.wr->metadata[0]->metric_family_name, "http_server_request_duration_seconds");
    assert_int_equal(r.wr->metadata[0]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM);
    assert_string_equal(r.wr->metadata[0]->unit, "seconds");
    result_free(&r);

    /* delta temporality is dropped, as for every other delta metric */
    ms[0]->exponential_histogram->aggregation_temporality = DELTA;
    r = convert(one_resource(ms, 1), NULL);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_DELTA], 8);
    result_free(&r);

    /* native_histograms off (a receiver without them): all dropped */
    ms[0]->exponential_histogram->aggregation_temporality = CUMULATIVE;
    prom_rw_options off = DEFAULTS;
    off.native_histograms = 0;
    r = convert(one_resource(ms, 1), &off);
    assert_int_equal(r.wr->n_timeseries, 0);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_NATIVE_OFF], 8);
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_NATIVE_OFF), "native_histograms_off");
    result_free(&r);
}

/* The bytes of a native histogram, against a hand encoding of the
 * protocol's field numbers and wire types (independent of our .proto):
 * count_int 1 varint, sum 3 double, schema 4 sint32, zero_threshold 5
 * double, zero_count_int 6 varint, negative_spans 8 and positive_spans 11
 * (offset 1 sint32, length 2 varint), negative_deltas 9 and
 * positive_deltas 12 packed sint64, reset_hint 14 (UNKNOWN: omitted),
 * timestamp 15 varint; in TimeSeries field 4. */
static void test_native_wire(void **state)
{
    (void)state;
    static const uint64_t two[] = {1, 1};
    static const double s = 10.1;
    exp_t **pts = alloc(sizeof(*pts));
    pts[0] = exp_point(500 * 1000000ull, 1, 5, 1, &s);
    pts[0]->positive = exp_buckets(1, two, 2);
    pts[0]->negative = exp_buckets(1, two, 2);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = exp_metric("h", "", pts, 1);
    prom_rw_options opt = {.add_metric_suffixes = 1, .native_histograms = 1};
    buf out = BUF_INIT;
    prom_rw_stats st = {0};
    assert_int_equal(prom_rw_convert(one_resource(ms, 1), &opt, A, &out, &st), 0);

    uint8_t want[64];
    size_t n = 0;
    double zt = 1e-128;
    want[n++] = 0x08, want[n++] = 5;   /* count_int */
    want[n++] = 0x19;                  /* sum, fixed64 */
    memcpy(want + n, &s, 8), n += 8;   /* (little-endian host) */
    want[n++] = 0x20, want[n++] = 2;   /* schema 1, zigzag */
    want[n++] = 0x29;                  /* zero_threshold */
    memcpy(want + n, &zt, 8), n += 8;
    want[n++] = 0x30, want[n++] = 1;   /* zero_count_int */
    static const uint8_t rest[] = {
        0x42, 4, 0x08, 4, 0x10, 2, /* negative_spans {offset 2 (zigzag 4), length 2} */
        0x4a, 2, 2, 0,             /* negative_deltas packed [1, 0] zigzag */
        0x5a, 4, 0x08, 4, 0x10, 2, /* positive_spans */
        0x62, 2, 2, 0,             /* positive_deltas */
        0x78, 0xf4, 0x03,          /* timestamp 500 */
    };
    memcpy(want + n, rest, sizeof(rest)), n += sizeof(rest);
    const uint8_t *at = memmem(out.data, out.len, want, n);
    if (at == NULL)
        fail_msg("native histogram bytes not found");
    assert_int_equal(at[-2], 0x22); /* TimeSeries.histograms = 4, length-delimited */
    assert_int_equal(at[-1], n);
    buf_free(&out);
}

/* ---- exemplars ---- */

typedef Opentelemetry__Proto__Metrics__V1__Exemplar ex_t;

static const uint8_t TRACE[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SPAN[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

static ex_t *exemplar(double v, uint64_t t, int ids)
{
    ex_t *e = alloc(sizeof(*e));
    opentelemetry__proto__metrics__v1__exemplar__init(e);
    e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    e->as_double = v;
    e->time_unix_nano = t;
    if (ids) {
        e->trace_id = (ProtobufCBinaryData){16, (uint8_t *)TRACE};
        e->span_id = (ProtobufCBinaryData){8, (uint8_t *)SPAN};
    }
    return e;
}

static const char *ex_label(const Prometheus__Exemplar *x, const char *name)
{
    for (size_t i = 0; i < x->n_labels; i++)
        if (strcmp(x->labels[i]->name, name) == 0)
            return x->labels[i]->value;
    return NULL;
}

static void test_exemplars(void **state)
{
    (void)state;
    static const char *const trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736", *span_hex = "00f067aa0ba902b7";
    /* a counter: every exemplar on its series; ids as hex labels first,
     * filtered attributes after (dropped when all exceed 128 characters) */
    ex_t **ce = alloc(4 * sizeof(*ce));
    ce[0] = exemplar(3.5, MS(900), 1);
    size_t na;
    ce[0]->filtered_attributes = attrs(&na, kvs("http.route", "/cart"), NULL);
    ce[0]->n_filtered_attributes = na;
    ce[1] = exemplar(0, MS(950), 1);
    ce[1]->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT;
    ce[1]->as_int = 7;
    static char longv[100];
    memset(longv, 'x', sizeof(longv) - 1);
    ce[1]->filtered_attributes = attrs(&na, kvs("user", longv), NULL);
    ce[1]->n_filtered_attributes = na;
    ce[2] = exemplar(1, MS(960), 0); /* no ids */
    ce[3] = exemplar(1, MS(970), 0);
    ce[3]->trace_id = (ProtobufCBinaryData){16, (uint8_t *)"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"}; /* all zero: unset */
    number_t **cp = alloc(sizeof(*cp));
    cp[0] = num_point(MS(1000), 10, NULL, 0);
    cp[0]->exemplars = ce;
    cp[0]->n_exemplars = 4;
    /* a gauge: none (upstream attaches none to gauges) */
    number_t **gp = alloc(sizeof(*gp));
    gp[0] = num_point(MS(1000), 1, NULL, 0);
    gp[0]->exemplars = ce;
    gp[0]->n_exemplars = 1;
    /* a histogram: each exemplar on the first bucket holding its value */
    static const double bounds[] = {1, 10};
    static const uint64_t counts[] = {1, 1, 1};
    hist_t **hp = alloc(sizeof(*hp));
    hp[0] = hist_point(MS(1000), bounds, 2, counts, 3, 3, NULL);
    ex_t **he = alloc(5 * sizeof(*he));
    he[0] = exemplar(0.5, MS(900), 1);
    he[1] = exemplar(10, MS(900), 1);
    he[2] = exemplar(50, MS(900), 1);
    he[3] = exemplar(NAN, MS(900), 1);
    he[4] = exemplar(-2, MS(901), 1);
    hp[0]->exemplars = he;
    hp[0]->n_exemplars = 5;
    /* an exponential histogram: all on its native series */
    static const uint64_t two[] = {1, 1};
    exp_t **ep = alloc(sizeof(*ep));
    ep[0] = exp_point(MS(1000), 0, 2, 0, NULL);
    ep[0]->positive = exp_buckets(0, two, 2);
    ep[0]->exemplars = he;
    ep[0]->n_exemplars = 2;
    metric_t **ms = alloc(4 * sizeof(*ms));
    ms[0] = sum("orders", "", 1, CUMULATIVE, cp, 1);
    ms[1] = gauge("temp", "", gp, 1);
    ms[2] = histogram("lat", "s", CUMULATIVE, hp, 1);
    ms[3] = exp_metric("size", "By", ep, 1);
    result r = convert(one_resource(ms, 4), NULL);

    const Prometheus__TimeSeries *c = find(&r, "orders_total", NULL, NULL);
    assert_int_equal(c->n_exemplars, 4);
    const Prometheus__Exemplar *x = c->exemplars[0];
    assert_true(x->value == 3.5);
    assert_int_equal(x->timestamp, 900);
    assert_int_equal(x->n_labels, 3);
    assert_string_equal(x->labels[0]->name, "trace_id");
    assert_string_equal(x->labels[0]->value, trace_hex);
    assert_string_equal(x->labels[1]->name, "span_id");
    assert_string_equal(x->labels[1]->value, span_hex);
    assert_string_equal(ex_label(x, "http_route"), "/cart");
    x = c->exemplars[1];
    assert_true(x->value == 7);
    assert_int_equal(x->n_labels, 2); /* 40 + 23 + 4 + 99 characters: the attribute goes */
    assert_string_equal(ex_label(x, "span_id"), span_hex);
    assert_int_equal(c->exemplars[2]->n_labels, 0);
    assert_int_equal(c->exemplars[3]->n_labels, 0);

    assert_int_equal(find(&r, "temp", NULL, NULL)->n_exemplars, 0);

    static const struct {
        const char *le;
        size_t n;
        double first;
    } buckets[] = {{"1", 2, 0.5}, {"10", 1, 10}, {"+Inf", 1, 50}};
    for (size_t i = 0; i < 3; i++) {
        const Prometheus__TimeSeries *b = find(&r, "lat_seconds_bucket", "le", buckets[i].le);
        assert_int_equal(b->n_exemplars, buckets[i].n);
        assert_true(b->exemplars[0]->value == buckets[i].first);
        assert_string_equal(ex_label(b->exemplars[0], "trace_id"), trace_hex);
    }
    assert_true(find(&r, "lat_seconds_bucket", "le", "1")->exemplars[1]->value == -2);
    assert_int_equal(find(&r, "lat_seconds_count", NULL, NULL)->n_exemplars, 0);

    const Prometheus__TimeSeries *e = find(&r, "size_bytes", NULL, NULL);
    assert_int_equal(e->n_histograms, 1);
    assert_int_equal(e->n_exemplars, 2);
    assert_true(e->exemplars[1]->value == 10);
    result_free(&r);

    /* on the wire: TimeSeries.exemplars = 3, Exemplar {labels 1, value 2
     * double, timestamp 3 varint} */
    ms[0]->sum->data_points[0]->n_exemplars = 1;
    ce[0]->n_filtered_attributes = 0;
    buf out = BUF_INIT;
    prom_rw_stats st = {0};
    assert_int_equal(prom_rw_convert(one_resource(ms, 1), &DEFAULTS, A, &out, &st), 0);
    uint8_t want[128];
    size_t n = 0;
    want[n++] = 0x1a, want[n++] = 0; /* length filled in below */
    want[n++] = 0x0a, want[n++] = 2 + 8 + 2 + 32;
    want[n++] = 0x0a, want[n++] = 8, memcpy(want + n, "trace_id", 8), n += 8;
    want[n++] = 0x12, want[n++] = 32, memcpy(want + n, trace_hex, 32), n += 32;
    want[n++] = 0x0a, want[n++] = 2 + 7 + 2 + 16;
    want[n++] = 0x0a, want[n++] = 7, memcpy(want + n, "span_id", 7), n += 7;
    want[n++] = 0x12, want[n++] = 16, memcpy(want + n, span_hex, 16), n += 16;
    double v = 3.5;
    want[n++] = 0x11, memcpy(want + n, &v, 8), n += 8;
    want[n++] = 0x18, want[n++] = 0x84, want[n++] = 0x07; /* 900 */
    want[1] = (uint8_t)(n - 2);
    assert_non_null(memmem(out.data, out.len, want, n));
    buf_free(&out);
}

/* ---- the exporter type ---- */

typedef struct type_fixture {
    config *cfg;
    void *st;
} type_fixture;

/* The type's state from a backend config with `extra` keys. */
static void type_up(type_fixture *f, const char *extra)
{
    char yaml[1024], err[512] = "";
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n  p: {type: prometheus_remote_write, endpoint: \"http://127.0.0.1:9/api/v1/write\"%s}\n",
             extra);
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err)), 0);
    f->st = exporter_prometheus_remote_write.configure(&f->cfg->routing.backends[0], err, sizeof(err));
    if (f->st == NULL)
        fail_msg("%s", err);
}

static void type_down(type_fixture *f)
{
    exporter_prometheus_remote_write.destroy(f->st);
    config_free(f->cfg);
}

static int has_header(const struct curl_slist *h, const char *line)
{
    for (; h != NULL; h = h->next)
        if (strcmp(h->data, line) == 0)
            return 1;
    return 0;
}

static size_t pack_body(const req_t *r, uint8_t **out)
{
    size_t len = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(r);
    *out = alloc(len + 1);
    return opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(r, *out);
}

/* A protobuf batch: one gauge point and one delta sum point. */
static size_t batch_body(uint8_t **out)
{
    number_t **g = alloc(sizeof(*g));
    g[0] = num_point(MS(1000), 2, NULL, 0);
    number_t **d = alloc(sizeof(*d));
    d[0] = num_point(MS(1000), 2, NULL, 0);
    metric_t **ms = alloc(2 * sizeof(*ms));
    ms[0] = gauge("g", "", g, 1);
    ms[1] = sum("d", "", 1, DELTA, d, 1);
    return pack_body(one_resource(ms, 2), out);
}

/* The WriteRequest the type prepared (snappy undone); free_unpacked it. */
static Prometheus__WriteRequest *prepared_request(const export_http *h)
{
    size_t plain_len;
    assert_int_equal(snappy_uncompressed_length(h->body.data, h->body.len, &plain_len), SNAPPY_OK);
    char *plain = alloc(plain_len + 1);
    assert_int_equal(snappy_uncompress(h->body.data, h->body.len, plain, &plain_len), SNAPPY_OK);
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, plain_len, (uint8_t *)plain);
    assert_non_null(wr);
    return wr;
}

static void test_prepare(void **state)
{
    (void)state;
    type_fixture f;
    type_up(&f, ", add_metric_suffixes: false, target_info: false, resource_to_labels: [host.name]");
    uint8_t *body;
    size_t len = batch_body(&body);
    export_batch b = {.signal = OTLP_METRICS, .tenant = "", .items = 2, .body = body, .body_len = len};
    export_http h = {.url = BUF_INIT, .body = BUF_INIT, .compress = 1};
    char err[256] = "";
    assert_int_equal(exporter_prometheus_remote_write.prepare(f.st, &b, &h, err, sizeof(err)), 0);
    assert_int_equal(h.compress, 0);
    assert_int_equal(buf_putc(&h.url, '\0'), 0);
    assert_string_equal(h.url.data, "http://127.0.0.1:9/api/v1/write");
    assert_true(has_header(h.headers, "Content-Type: application/x-protobuf"));
    assert_true(has_header(h.headers, "Content-Encoding: snappy"));
    assert_true(has_header(h.headers, "X-Prometheus-Remote-Write-Version: 0.1.0"));
    Prometheus__WriteRequest *wr = prepared_request(&h);
    assert_int_equal(wr->n_timeseries, 1); /* no target_info, the delta point dropped */
    assert_string_equal(label(wr->timeseries[0], "host_name"), "h1");
    prometheus__write_request__free_unpacked(wr, NULL);

    /* sign without sigv4 adds nothing */
    struct curl_slist *extra = NULL;
    export_signing sig = {.url = "http://127.0.0.1:9/api/v1/write", .headers = h.headers};
    assert_int_equal(exporter_prometheus_remote_write.sign(f.st, &sig, &extra, err, sizeof(err)), 0);
    assert_null(extra);

    /* classify: the dropped point is reported once, then the answer decides */
    char msg[256] = "";
    export_response ok = {.http_status = 204, .grpc_status = -1};
    export_result res = {.msg = msg, .msglen = sizeof(msg)};
    assert_int_equal(exporter_prometheus_remote_write.classify(f.st, &b, &ok, &res), EXPORT_OK);
    assert_int_equal(res.rejected, 1);
    assert_non_null(strstr(msg, "delta_temporality=1"));
    res = (export_result){.msg = msg, .msglen = sizeof(msg)};
    msg[0] = '\0';
    assert_int_equal(exporter_prometheus_remote_write.classify(f.st, &b, &ok, &res), EXPORT_OK);
    assert_int_equal(res.rejected, 0);

    static const struct {
        long status;
        const char *body;
        export_outcome want;
        const char *msg;
    } cases[] = {
        {0, NULL, EXPORT_RETRY, "refused"},
        {429, "slow down", EXPORT_RETRY, "HTTP 429: slow down"},
        {500, "", EXPORT_RETRY, "HTTP 500"},
        {503, "unavailable\n", EXPORT_RETRY, "HTTP 503: unavailable"},
        {400, "out of order sample\n", EXPORT_FAIL, "HTTP 400: out of order sample"},
        {401, "bad\r\ntoken", EXPORT_FAIL, "HTTP 401: bad  token"},
        {404, NULL, EXPORT_FAIL, "HTTP 404"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        export_response r = {.http_status = cases[i].status, .grpc_status = -1,
                             .error = cases[i].status ? NULL : "refused",
                             .body = (const uint8_t *)cases[i].body,
                             .body_len = cases[i].body ? strlen(cases[i].body) : 0};
        msg[0] = '\0';
        res = (export_result){.msg = msg, .msglen = sizeof(msg)};
        if (exporter_prometheus_remote_write.classify(f.st, &b, &r, &res) != cases[i].want)
            fail_msg("case %zu: HTTP %ld", i, cases[i].status);
        assert_string_equal(msg, cases[i].msg);
    }
    /* a long error body is cut */
    char longbody[1000];
    memset(longbody, 'x', sizeof(longbody));
    export_response big = {.http_status = 400, .grpc_status = -1, .body = (uint8_t *)longbody, .body_len = 1000};
    res = (export_result){.msg = msg, .msglen = sizeof(msg)};
    assert_int_equal(exporter_prometheus_remote_write.classify(f.st, &b, &big, &res), EXPORT_FAIL);
    assert_int_equal(strlen(msg), strlen("HTTP 400: ") + 200);

    curl_slist_free_all(h.headers);
    buf_free(&h.url);
    buf_free(&h.body);
    type_down(&f);
}

/* Drops reported on a failed attempt are named in its message as well. */
/* native_histograms: on by default; off, exponential histograms are
 * dropped (reported as rejected) and the rest of the batch goes. */
static void test_native_histograms_option(void **state)
{
    (void)state;
    static const uint64_t two[] = {1, 1};
    exp_t **ep = alloc(sizeof(*ep));
    ep[0] = exp_point(MS(1000), 0, 2, 0, NULL);
    ep[0]->positive = exp_buckets(0, two, 2);
    number_t **g = alloc(sizeof(*g));
    g[0] = num_point(MS(1000), 2, NULL, 0);
    metric_t **ms = alloc(2 * sizeof(*ms));
    ms[0] = exp_metric("e", "", ep, 1);
    ms[1] = gauge("g", "", g, 1);
    uint8_t *body;
    size_t len = pack_body(one_resource(ms, 2), &body);
    for (int on = 0; on < 2; on++) {
        type_fixture f;
        type_up(&f, on ? ", target_info: false" : ", target_info: false, native_histograms: false");
        export_batch b = {.signal = OTLP_METRICS, .tenant = "", .items = 2, .body = body, .body_len = len};
        export_http h = {.url = BUF_INIT, .body = BUF_INIT, .compress = 1};
        char err[256] = "", msg[256] = "";
        assert_int_equal(exporter_prometheus_remote_write.prepare(f.st, &b, &h, err, sizeof(err)), 0);
        Prometheus__WriteRequest *wr = prepared_request(&h);
        assert_int_equal(wr->n_timeseries, on ? 2 : 1);
        assert_int_equal(wr->timeseries[0]->n_histograms, on ? 1 : 0);
        prometheus__write_request__free_unpacked(wr, NULL);
        export_response ok = {.http_status = 204, .grpc_status = -1};
        export_result res = {.msg = msg, .msglen = sizeof(msg)};
        assert_int_equal(exporter_prometheus_remote_write.classify(f.st, &b, &ok, &res), EXPORT_OK);
        assert_int_equal(res.rejected, on ? 0 : 1);
        if (!on)
            assert_non_null(strstr(msg, "native_histograms_off=1"));
        curl_slist_free_all(h.headers);
        buf_free(&h.url);
        buf_free(&h.body);
        type_down(&f);
    }
}

static void test_drops_on_failure(void **state)
{
    (void)state;
    type_fixture f;
    type_up(&f, "");
    uint8_t *body;
    size_t len = batch_body(&body);
    export_batch b = {.signal = OTLP_METRICS, .tenant = "", .items = 2, .body = body, .body_len = len};
    export_http h = {.url = BUF_INIT, .body = BUF_INIT, .compress = 1};
    char err[256], msg[256] = "";
    assert_int_equal(exporter_prometheus_remote_write.prepare(f.st, &b, &h, err, sizeof(err)), 0);
    export_response r = {.http_status = 400, .grpc_status = -1, .body = (const uint8_t *)"bad", .body_len = 3};
    export_result res = {.msg = msg, .msglen = sizeof(msg)};
    assert_int_equal(exporter_prometheus_remote_write.classify(f.st, &b, &r, &res), EXPORT_FAIL);
    assert_int_equal(res.rejected, 1);
    assert_string_equal(msg, "HTTP 400: bad; points without a Prometheus form: delta_temporality=1");
    curl_slist_free_all(h.headers);
    buf_free(&h.url);
    buf_free(&h.body);
    type_down(&f);
}

/* The header line starting with `prefix`, or NULL. */
static const char *header_line(const struct curl_slist *h, const char *prefix)
{
    for (; h != NULL; h = h->next)
        if (strncmp(h->data, prefix, strlen(prefix)) == 0)
            return h->data;
    return NULL;
}

/* sigv4: every attempt is signed for the configured region and service
 * ("aps", Amazon Managed Prometheus, by default) over the bytes sent. */
static void test_sigv4(void **state)
{
    (void)state;
    static const struct {
        const char *service_key, *scope;
    } cases[] = {{"", "/us-west-2/aps/aws4_request"}, {", service: custom", "/us-west-2/custom/aws4_request"}};
    for (size_t i = 0; i < 2; i++) {
        char extra_yaml[256];
        snprintf(extra_yaml, sizeof(extra_yaml),
                 ", sigv4: {region: us-west-2, credentials: {source: static, access_key_id: AKIDTEST, "
                 "secret_access_key: SECRETTEST}%s}",
                 cases[i].service_key);
        type_fixture f;
        type_up(&f, extra_yaml);
        struct curl_slist *headers = curl_slist_append(NULL, "Content-Encoding: snappy"), *extra = NULL;
        export_signing req = {.url = "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/api/v1/"
                                     "remote_write",
                              .headers = headers,
                              .body = (const uint8_t *)"abc",
                              .len = 3};
        char err[256] = "";
        if (exporter_prometheus_remote_write.sign(f.st, &req, &extra, err, sizeof(err)) != 0)
            fail_msg("sign: %s", err);
        const char *auth = header_line(extra, "Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/");
        assert_non_null(auth);
        assert_non_null(strstr(auth, cases[i].scope));
        assert_non_null(strstr(auth, "content-encoding;"));
        assert_non_null(header_line(extra, "X-Amz-Date: "));
        assert_non_null(header_line(
            extra, "X-Amz-Content-Sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        curl_slist_free_all(extra);
        curl_slist_free_all(headers);
        type_down(&f);
    }
}

static void test_config_errors(void **state)
{
    (void)state;
    static const backend_error_case cases[] = {
        {"compression: gzip", "backends.x.compression: not configurable: remote write is always snappy-compressed"},
        {"resource_to_labels: host.name", "backends.x.resource_to_labels: expected a list of resource attribute names"},
        {"resource_to_labels: [a, {b: c}]", "backends.x.resource_to_labels"},
        {"target_info: maybe", "backends.x.target_info"},
        {"native_histograms: perhaps", "backends.x.native_histograms"},
        {"add_metric_suffix: true", "backends.x.add_metric_suffix: unknown key"},
        {"sigv4: yes", "backends.x.sigv4: expected a mapping"},
        {"sigv4: {region: us-east-1, servise: aps}", "backends.x.sigv4.servise: unknown key"},
        {"sigv4: {region: \"US EAST\"}", "backends.x.sigv4.region"},
    };
    expect_backend_errors("type: prometheus_remote_write, endpoint: \"http://h/api/v1/write\"", cases);
    /* a pipeline sending traces to it is refused */
    config *cfg;
    backend *b = expect_backend_ok(
        TEST_LISTENERS "backends:\n  x: {type: prometheus_remote_write, endpoint: \"http://h/api/v1/write\"}\n", &cfg);
    assert_int_equal(b->signals, 1u << OTLP_METRICS);
    b->ops->destroy(b);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gauge_and_sums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric_name_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_name_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_and_target_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_and_staleness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_float_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exp_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exemplars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_histograms_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_on_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
