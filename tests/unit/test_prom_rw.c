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
    kv_t **out = alloc(16 * sizeof(*out));
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

static metric_t *exp_histogram(const char *name, size_t points)
{
    metric_t *m = metric(name, "");
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m->exponential_histogram = alloc(sizeof(*m->exponential_histogram));
    opentelemetry__proto__metrics__v1__exponential_histogram__init(m->exponential_histogram);
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint **pts = alloc(points * sizeof(*pts));
    for (size_t i = 0; i < points; i++) {
        pts[i] = alloc(sizeof(*pts[i]));
        opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(pts[i]);
        pts[i]->time_unix_nano = MS(1000);
        pts[i]->count = 1;
    }
    m->exponential_histogram->data_points = pts;
    m->exponential_histogram->n_data_points = points;
    m->exponential_histogram->aggregation_temporality = CUMULATIVE;
    return m;
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

static const prom_rw_options DEFAULTS = {.add_metric_suffixes = 1, .target_info = 1};

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
    /* every series: labels strictly sorted by name, no empty value, one sample */
    for (size_t i = 0; i < res.wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = res.wr->timeseries[i];
        assert_int_equal(ts->n_samples, 1);
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
    } want[] = {{"0.005", 1}, {"1", 3}, {"250000", 6}, {"1e+06", 10}, {"+Inf", 15}};
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

/* Name of the single metric's first series. */
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
    enum { G = 0, COUNTER = 1, UPDOWN = 2 };
    check_name("http.server.duration", "s", G, 1, "http_server_duration_seconds");
    check_name("http.server.duration_seconds", "s", G, 1, "http_server_duration_seconds");
    check_name("io", "By", COUNTER, 1, "io_bytes_total");
    check_name("io_bytes_total", "By", COUNTER, 1, "io_bytes_total");
    check_name("io_total", "By", COUNTER, 1, "io_bytes_total");
    check_name("requests", "{request}", COUNTER, 1, "requests_total");
    check_name("throughput", "By/s", G, 1, "throughput_bytes_per_second");
    check_name("throughput_bytes", "By/s", G, 1, "throughput_bytes_per_second");
    check_name("rate", "{packet}/s", G, 1, "rate_per_second");
    check_name("cpu.utilization", "1", G, 1, "cpu_utilization_ratio");
    check_name("items", "1", UPDOWN, 1, "items");
    check_name("hits", "1", COUNTER, 1, "hits_total");
    check_name("memory", "MiBy", G, 1, "memory_mebibytes");
    check_name("distance", "m", G, 1, "distance_meters");
    check_name("latency", "ms", G, 1, "latency_milliseconds");
    check_name("latency", "us", G, 1, "latency_microseconds");
    check_name("uptime", "min", G, 1, "uptime_minutes");
    check_name("speed", "m/min", G, 1, "speed_meters_per_minute");
    check_name("stock", "widgets", G, 1, "stock_widgets");
    check_name("2xx.responses", "", COUNTER, 1, "_2xx_responses_total");
    check_name("weird..name//x-y", "", G, 1, "weird_name_x_y");
    check_name("ns:sub.metric", "", G, 1, "ns:sub_metric");
    check_name("caf\xc3\xa9", "", G, 1, "caf_");
    check_name("trailing.", "s", G, 1, "trailing_seconds");
    check_name("io", "By", COUNTER, 0, "io");
    check_name("temp", "Cel", G, 0, "temp");
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
                      NULL);
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
    assert_int_equal(ts->n_labels, 14); /* __name__, instance and the 12 above */
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
    m4[0] = exp_histogram("e", 1);
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
    ms[2] = exp_histogram("exp", 3);
    ms[3] = sum("unspecified", "", 1, 0, un, 1);
    ms[4] = gauge("g", "", bad, 3);
    ms[5] = histogram("stale.hist", "", CUMULATIVE, sh, 1);
    ms[6] = sum("delta.updown", "", 0, DELTA, d, 2);
    result r = convert(one_resource(ms, 7), NULL);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_DELTA], 5);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_EXPONENTIAL], 3);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 3);
    assert_int_equal(r.st.converted, 2);
    char all[256];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "g stale_hist_bucket stale_hist_bucket stale_hist_sum stale_hist_count target_info");
    for (size_t i = 0; i < 5; i++)
        assert_true(bits(value(r.wr->timeseries[i])) == 0x7ff0000000000002ull);
    assert_int_equal(r.wr->timeseries[0]->samples[0]->timestamp, 4000);
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_DELTA), "delta_temporality");
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_EXPONENTIAL), "exponential_histogram");
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
    ms[1] = exp_histogram("exp", 1);
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

static void test_float_format(void **state)
{
    (void)state;
    static const struct {
        double b;
        const char *want;
    } cases[] = {{0.1, "0.1"},       {2.5, "2.5"},         {100000, "100000"}, {1e6, "1e+06"},
                 {1234567, "1.234567e+06"}, {0.0001, "0.0001"}, {0.00001, "1e-05"}, {-3, "-3"},
                 {0, "0"},           {1.0 / 3, "0.3333333333333333"}};
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
    req_t *r = one_resource(ms, 2);
    size_t len = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(r);
    *out = alloc(len + 1);
    return opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(r, *out);
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
    size_t plain_len;
    assert_int_equal(snappy_uncompressed_length(h.body.data, h.body.len, &plain_len), SNAPPY_OK);
    char *plain = malloc(plain_len + 1);
    assert_int_equal(snappy_uncompress(h.body.data, h.body.len, plain, &plain_len), SNAPPY_OK);
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, plain_len, (uint8_t *)plain);
    assert_non_null(wr);
    assert_int_equal(wr->n_timeseries, 1); /* no target_info, the delta point dropped */
    assert_string_equal(label(wr->timeseries[0], "host_name"), "h1");
    prometheus__write_request__free_unpacked(wr, NULL);
    free(plain);

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
        cmocka_unit_test_setup_teardown(test_metric_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_and_target_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_and_staleness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_float_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_on_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
