/* es_build: OTLP messages built in C for the Elasticsearch tests
 * (test_es_doc.c renders them, test_elasticsearch.c sends them through
 * the exporter type). Everything is allocated in the arena A, which
 * es_setup / es_teardown make and free around each test. */
#ifndef ES_BUILD_H
#define ES_BUILD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

/* ---- building OTLP messages (in an arena, freed per test) ---- */

static arena *A;

static inline void *mk(size_t size) { return arena_calloc(A, 1, size); }

static inline any_t *v_str(const char *s)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static inline any_t *v_int(int64_t i)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static inline any_t *v_double(double d)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}

static inline any_t *v_bool(int b)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}

static inline any_t *v_bytes(const char *s)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v->bytes_value = (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
    return v;
}

/* An array of n values (varargs any_t *). */
static inline any_t *v_array(size_t n, ...)
{
    any_t *v = mk(sizeof(*v));
    Opentelemetry__Proto__Common__V1__ArrayValue *a = mk(sizeof(*a));
    opentelemetry__proto__common__v1__any_value__init(v);
    opentelemetry__proto__common__v1__array_value__init(a);
    a->values = mk(n * sizeof(any_t *) + 1);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        a->values[i] = va_arg(ap, any_t *);
    va_end(ap);
    a->n_values = n;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = a;
    return v;
}

static inline kv_t *kv(const char *k, any_t *v)
{
    kv_t *p = mk(sizeof(*p));
    opentelemetry__proto__common__v1__key_value__init(p);
    p->key = (char *)k;
    p->value = v;
    return p;
}

/* n key-values (varargs kv_t *) as a list; *count = n. */
static inline kv_t **kvs(size_t *count, size_t n, ...)
{
    kv_t **list = mk(n * sizeof(kv_t *) + 1);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        list[i] = va_arg(ap, kv_t *);
    va_end(ap);
    *count = n;
    return list;
}

static inline any_t *v_map(size_t n, ...)
{
    any_t *v = mk(sizeof(*v));
    Opentelemetry__Proto__Common__V1__KeyValueList *l = mk(sizeof(*l));
    opentelemetry__proto__common__v1__any_value__init(v);
    opentelemetry__proto__common__v1__key_value_list__init(l);
    l->values = mk(n * sizeof(kv_t *) + 1);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        l->values[i] = va_arg(ap, kv_t *);
    va_end(ap);
    l->n_values = n;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = l;
    return v;
}

static inline Opentelemetry__Proto__Resource__V1__Resource *resource(size_t n, kv_t **attrs)
{
    Opentelemetry__Proto__Resource__V1__Resource *r = mk(sizeof(*r));
    opentelemetry__proto__resource__v1__resource__init(r);
    r->attributes = attrs;
    r->n_attributes = n;
    return r;
}

static inline Opentelemetry__Proto__Common__V1__InstrumentationScope *scope(const char *name, const char *version,
                                                                    size_t n, kv_t **attrs)
{
    Opentelemetry__Proto__Common__V1__InstrumentationScope *s = mk(sizeof(*s));
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    s->name = (char *)name;
    s->version = (char *)version;
    s->attributes = attrs;
    s->n_attributes = n;
    return s;
}

static const uint8_t TID[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0xff};
static const uint8_t SID[8] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8};
static const uint8_t PID[8] = {0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8};
static const uint8_t LTID[16] = {0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t LSID[8] = {0xd0, 0, 0, 0, 0, 0, 0, 0x02};
#define BIN(a) ((ProtobufCBinaryData){sizeof(a), (uint8_t *)(a)})

/* 2023-11-14T22:13:20Z */
#define T0 1700000000000000000ull

static inline Opentelemetry__Proto__Trace__V1__Span *span(const char *name, uint8_t sid_last)
{
    Opentelemetry__Proto__Trace__V1__Span *s = mk(sizeof(*s));
    opentelemetry__proto__trace__v1__span__init(s);
    uint8_t *sid = mk(8);
    memcpy(sid, SID, 8);
    sid[7] = sid_last;
    s->trace_id = BIN(TID);
    s->span_id = (ProtobufCBinaryData){8, sid};
    s->name = (char *)name;
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
    s->start_time_unix_nano = T0 + 123;
    s->end_time_unix_nano = T0 + 123 + 1500000;
    return s;
}

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;

/* One resource and one scope holding `n` spans. */
static inline trace_req *traces(Opentelemetry__Proto__Resource__V1__Resource *res,
                         Opentelemetry__Proto__Common__V1__InstrumentationScope *sc, size_t n,
                         Opentelemetry__Proto__Trace__V1__Span **spans)
{
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = mk(sizeof(*ss));
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    ss->scope = sc;
    ss->spans = spans;
    ss->n_spans = n;
    ss->schema_url = "https://opentelemetry.io/schemas/1.26.0";
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = mk(sizeof(*rs));
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    rs->resource = res;
    rs->scope_spans = mk(sizeof(void *));
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    trace_req *r = mk(sizeof(*r));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(r);
    r->resource_spans = mk(sizeof(void *));
    r->resource_spans[0] = rs;
    r->n_resource_spans = 1;
    return r;
}


typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;
typedef Opentelemetry__Proto__Logs__V1__LogRecord log_t;

static inline log_t *log_rec(any_t *body)
{
    log_t *l = mk(sizeof(*l));
    opentelemetry__proto__logs__v1__log_record__init(l);
    l->body = body;
    l->time_unix_nano = T0 + 1;
    return l;
}

static inline logs_req *logs(Opentelemetry__Proto__Resource__V1__Resource *res,
                      Opentelemetry__Proto__Common__V1__InstrumentationScope *sc, size_t n, log_t **recs)
{
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = mk(sizeof(*sl));
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    sl->scope = sc;
    sl->log_records = recs;
    sl->n_log_records = n;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = mk(sizeof(*rl));
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    rl->resource = res;
    rl->scope_logs = mk(sizeof(void *));
    rl->scope_logs[0] = sl;
    rl->n_scope_logs = 1;
    logs_req *r = mk(sizeof(*r));
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(r);
    r->resource_logs = mk(sizeof(void *));
    r->resource_logs[0] = rl;
    r->n_resource_logs = 1;
    return r;
}


/* ---- metrics ---- */

typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint number_t;

static inline metric_t *metric(const char *name, const char *unit)
{
    metric_t *m = mk(sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = (char *)name;
    m->unit = (char *)unit;
    return m;
}

/* kind 1: an integer point, 0: a double, -1: no value */
static inline number_t *number(int kind, double d)
{
    number_t *p = mk(sizeof(*p));
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    p->time_unix_nano = T0 + 7;
    if (kind == 1) {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        p->as_int = (int64_t)d;
    } else if (kind == 0) {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        p->as_double = d;
    }
    return p;
}

static inline metric_t *gauge(const char *name, number_t *p)
{
    metric_t *m = metric(name, "Cel");
    Opentelemetry__Proto__Metrics__V1__Gauge *g = mk(sizeof(*g));
    opentelemetry__proto__metrics__v1__gauge__init(g);
    g->data_points = mk(sizeof(void *));
    g->data_points[0] = p;
    g->n_data_points = 1;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = g;
    return m;
}

static inline metric_t *sum(const char *name, number_t *p, int monotonic, int cumulative)
{
    metric_t *m = metric(name, "{request}");
    Opentelemetry__Proto__Metrics__V1__Sum *s = mk(sizeof(*s));
    opentelemetry__proto__metrics__v1__sum__init(s);
    s->data_points = mk(sizeof(void *));
    s->data_points[0] = p;
    s->n_data_points = 1;
    s->is_monotonic = monotonic;
    s->aggregation_temporality =
        cumulative ? OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
                   : OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = s;
    return m;
}

static inline metric_t *histogram(const char *name, size_t nb, const double *bounds, size_t nc, const uint64_t *counts,
                           uint64_t count, double total)
{
    metric_t *m = metric(name, "ms");
    Opentelemetry__Proto__Metrics__V1__Histogram *h = mk(sizeof(*h));
    opentelemetry__proto__metrics__v1__histogram__init(h);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = mk(sizeof(*p));
    opentelemetry__proto__metrics__v1__histogram_data_point__init(p);
    p->time_unix_nano = T0;
    p->explicit_bounds = (double *)bounds;
    p->n_explicit_bounds = nb;
    p->bucket_counts = (uint64_t *)counts;
    p->n_bucket_counts = nc;
    p->count = count;
    p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    p->sum = total;
    h->data_points = mk(sizeof(void *));
    h->data_points[0] = p;
    h->n_data_points = 1;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m->histogram = h;
    return m;
}

static inline metric_t *exp_histogram(int32_t scale, uint64_t zero, int32_t pos_off, size_t np, const uint64_t *pos,
                               int32_t neg_off, size_t nn, const uint64_t *neg)
{
    metric_t *m = metric("e2e.exp", "ms");
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *h = mk(sizeof(*h));
    opentelemetry__proto__metrics__v1__exponential_histogram__init(h);
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p = mk(sizeof(*p));
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(p);
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *b[2];
    for (int i = 0; i < 2; i++) {
        b[i] = mk(sizeof(*b[i]));
        opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(b[i]);
    }
    b[0]->offset = pos_off;
    b[0]->bucket_counts = (uint64_t *)pos;
    b[0]->n_bucket_counts = np;
    b[1]->offset = neg_off;
    b[1]->bucket_counts = (uint64_t *)neg;
    b[1]->n_bucket_counts = nn;
    p->positive = b[0];
    p->negative = b[1];
    p->scale = scale;
    p->zero_count = zero;
    p->time_unix_nano = T0;
    h->data_points = mk(sizeof(void *));
    h->data_points[0] = p;
    h->n_data_points = 1;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m->exponential_histogram = h;
    return m;
}

static inline metric_t *summary(const char *name, uint64_t count, double total)
{
    metric_t *m = metric(name, "");
    Opentelemetry__Proto__Metrics__V1__Summary *s = mk(sizeof(*s));
    opentelemetry__proto__metrics__v1__summary__init(s);
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *p = mk(sizeof(*p));
    opentelemetry__proto__metrics__v1__summary_data_point__init(p);
    p->time_unix_nano = T0;
    p->count = count;
    p->sum = total;
    s->data_points = mk(sizeof(void *));
    s->data_points[0] = p;
    s->n_data_points = 1;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m->summary = s;
    return m;
}

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest metrics_req;

static inline metrics_req *metrics(Opentelemetry__Proto__Resource__V1__Resource *res, size_t n, metric_t **ms)
{
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = mk(sizeof(*sm));
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    sm->scope = scope("e2e-meter", "0.4.2", 0, NULL);
    sm->metrics = ms;
    sm->n_metrics = n;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = mk(sizeof(*rm));
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    rm->resource = res;
    rm->scope_metrics = mk(sizeof(void *));
    rm->scope_metrics[0] = sm;
    rm->n_scope_metrics = 1;
    metrics_req *r = mk(sizeof(*r));
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(r);
    r->resource_metrics = mk(sizeof(void *));
    r->resource_metrics[0] = rm;
    r->n_resource_metrics = 1;
    return r;
}

static inline int es_setup(void **state)
{
    (void)state;
    A = arena_new(0);
    return A == NULL;
}

static inline int es_teardown(void **state)
{
    (void)state;
    arena_free(A);
    return 0;
}

#endif
