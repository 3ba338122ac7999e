/* prom_rw_testlib: the prom_rw unit tests' OTLP builders and readers of
 * the converted WriteRequest (prom_rw_testlib.h). */
#include "prom_rw_testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

arena *A;

int setup(void **state)
{
    (void)state;
    A = arena_new(0);
    return A == NULL ? -1 : 0;
}

int teardown(void **state)
{
    (void)state;
    arena_free(A);
    return 0;
}

void *alloc(size_t n)
{
    void *p = arena_calloc(A, 1, n);
    assert_non_null(p);
    return p;
}

/* ---- building OTLP ---- */

any_t *any(void)
{
    any_t *v = alloc(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    return v;
}

any_t *any_str(const char *s)
{
    any_t *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

any_t *any_int(int64_t i)
{
    any_t *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

any_t *any_double(double d)
{
    any_t *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}

any_t *any_bool(int b)
{
    any_t *v = any();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}

kv_t *kv(const char *key, any_t *v)
{
    kv_t *k = alloc(sizeof(*k));
    opentelemetry__proto__common__v1__key_value__init(k);
    k->key = (char *)key;
    k->value = v;
    return k;
}

kv_t *kvs(const char *key, const char *s) { return kv(key, any_str(s)); }

/* A NULL-terminated list of KeyValue pointers into an arena array. */
kv_t **attrs(size_t *n, ...)
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

number_t *num_point(uint64_t t, double v, kv_t **a, size_t na)
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

number_t *int_point(uint64_t t, int64_t v)
{
    number_t *p = num_point(t, 0, NULL, 0);
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    p->as_int = v;
    return p;
}

metric_t *metric(const char *name, const char *unit)
{
    metric_t *m = alloc(sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = (char *)name;
    m->unit = (char *)unit;
    return m;
}

metric_t *gauge(const char *name, const char *unit, number_t **pts, size_t n)
{
    metric_t *m = metric(name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = alloc(sizeof(*m->gauge));
    opentelemetry__proto__metrics__v1__gauge__init(m->gauge);
    m->gauge->data_points = pts;
    m->gauge->n_data_points = n;
    return m;
}

metric_t *sum(const char *name, const char *unit, int monotonic, int temporality, number_t **pts, size_t n)
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

hist_t *hist_point(uint64_t t, const double *bounds, size_t nb, const uint64_t *counts, size_t nc,
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

metric_t *histogram(const char *name, const char *unit, int temporality, hist_t **pts, size_t n)
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

exp_buckets_t *exp_buckets(int32_t offset, const uint64_t *counts, size_t n)
{
    exp_buckets_t *b = alloc(sizeof(*b));
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(b);
    b->offset = offset;
    b->bucket_counts = (uint64_t *)counts;
    b->n_bucket_counts = n;
    return b;
}

/* An exponential point; positive and negative buckets are set by the caller. */
exp_t *exp_point(uint64_t t, int32_t scale, uint64_t count, uint64_t zero_count, const double *sumv)
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

metric_t *exp_metric(const char *name, const char *unit, exp_t **pts, size_t n)
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
metric_t *too_coarse(const char *name, size_t points)
{
    exp_t **pts = alloc(points * sizeof(*pts));
    for (size_t i = 0; i < points; i++)
        pts[i] = exp_point(MS(1000), -5, 1, 1, NULL);
    return exp_metric(name, "", pts, points);
}

metric_t *summary(const char *name, const char *unit, summary_t **pts, size_t n)
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
rm_t *resource(kv_t **rattrs, size_t nr, metric_t **metrics, size_t nm)
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

req_t *request(rm_t **rms, size_t n)
{
    req_t *r = alloc(sizeof(*r));
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(r);
    r->resource_metrics = rms;
    r->n_resource_metrics = n;
    return r;
}

/* The usual resource: job "shop/cart", instance "i-1", host.name. */
kv_t **std_resource(size_t *n)
{
    return attrs(n, kvs("service.name", "cart"), kvs("service.namespace", "shop"), kvs("service.instance.id", "i-1"),
                 kvs("host.name", "h1"), NULL);
}

req_t *one_resource(metric_t **metrics, size_t nm)
{
    size_t nr;
    kv_t **ra = std_resource(&nr);
    rm_t **rms = alloc(sizeof(*rms));
    rms[0] = resource(ra, nr, metrics, nm);
    return request(rms, 1);
}

/* ---- converting and reading the result ---- */

const prom_rw_options DEFAULTS = {.add_metric_suffixes = 1, .target_info = 1, .native_histograms = 1};

result convert(const req_t *r, const prom_rw_options *opt)
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

void result_free(result *r) { prometheus__write_request__free_unpacked(r->wr, NULL); }

const char *label(const Prometheus__TimeSeries *ts, const char *name)
{
    for (size_t i = 0; i < ts->n_labels; i++)
        if (strcmp(ts->labels[i]->name, name) == 0)
            return ts->labels[i]->value;
    return NULL;
}

/* The series named `name`, with label `lname`=`lvalue` when lname is set;
 * the nth (0-based) such series. */
const Prometheus__TimeSeries *find_nth(const result *r, const char *name, const char *lname,
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

const Prometheus__TimeSeries *find(const result *r, const char *name, const char *lname, const char *lvalue)
{
    const Prometheus__TimeSeries *ts = find_nth(r, name, lname, lvalue, 0);
    if (ts == NULL)
        fail_msg("no series %s{%s=\"%s\"}", name, lname ? lname : "", lvalue ? lvalue : "");
    return ts;
}

double value(const Prometheus__TimeSeries *ts) { return ts->samples[0]->value; }

uint64_t bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

/* The names of all series, space separated, in order. */
void names(const result *r, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->wr->n_timeseries && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", label(r->wr->timeseries[i], "__name__"));
}
