/* convert_bench: what the export-side conversions of the Elastic and AWS
 * backends cost, each next to the cost of decoding the same OTLP protobuf
 * request with otlp_decode, measured in the same run. Every exporter that
 * converts starts by decoding the queued protobuf body, so "render/decode"
 * says how many decodes' worth of CPU the conversion adds per request.
 *
 *   convert_bench [REQUESTS]        (default 2000 per signal)
 *
 * Inputs are built here with the protoc-c types and packed once; 16
 * distinct bodies per signal (different ids, values, timestamps) are
 * cycled so that no cache holds "the" request:
 *   traces:  one resource (service.name and four more attributes), one
 *            scope, 100 spans in 20 traces, ten attributes each (string,
 *            int, double, bool); 1 span in 10 has an "exception" event
 *            with three attributes and an error status;
 *   logs:    same resource, 100 log records with a formatted body, a
 *            severity, six attributes, and trace context on half of them;
 *   metrics: same resource, 20 metrics of 5 points each (100 points):
 *            8 gauges, 8 cumulative monotonic sums, 4 cumulative
 *            histograms with 10 bounds, three attributes per point.
 *
 * Measured, per request, in this order (as the exporters do it):
 *   0. otlp_wire_scan of the body: what ingest does to every request (the
 *      one-pass validation and count), next to the full decode;
 *   1. otlp_decode of the body (the baseline);
 *   2. es_doc_render of the decoded message (Elasticsearch _bulk NDJSON);
 *   3. metrics only: prom_rw_convert (remote-write WriteRequest), then
 *      snappy_compress of its output (what prometheus_remote_write sends).
 * Then SigV4: aws_sigv4_sign of a 1 MiB and a 64 KiB body (packed trace
 * requests, so the bytes compress like real ones) against gzip_deflate of
 * the same body at the exporter's level, and the signature of the gzip
 * output, which is what the exporter actually signs. Last, the disk
 * queue's record checksum: crc32c (the CPU's instruction where there is one)
 * against crc32c_portable (the table) over the trace bodies.
 *
 * A tenth of the requests (at least 16) run first as warm-up (buffers
 * grown, caches and branch predictors warm) and are not counted. Nothing
 * here is a pass/fail threshold: the run fails only if a conversion fails
 * or drops an item, since the figures would then describe less work than
 * they claim. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <snappy-c.h>

#include "arena.h"
#include "aws_sigv4.h"
#include "buf.h"
#include "crc32c.h"
#include "es_doc.h"
#include "gzip.h"
#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "otlp.h"
#include "otlp_wire.h"
#include "prom_rw.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue cb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue cb_any;
typedef Opentelemetry__Proto__Trace__V1__Span cb_span;
typedef Opentelemetry__Proto__Logs__V1__LogRecord cb_log;
typedef Opentelemetry__Proto__Metrics__V1__Metric cb_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint cb_number;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint cb_hist;

#define CB_DEFAULT_REQUESTS 2000
#define CB_VARIANTS 16
#define CB_SPANS 100
#define CB_SPANS_PER_TRACE 5
#define CB_SPAN_ATTRS 10
#define CB_EVENT_EVERY 10
#define CB_LOGS 100
#define CB_LOG_ATTRS 6
#define CB_GAUGES 8
#define CB_SUMS 8
#define CB_HISTOGRAMS 4
#define CB_METRICS (CB_GAUGES + CB_SUMS + CB_HISTOGRAMS)
#define CB_POINTS 5
#define CB_POINT_ATTRS 3
#define CB_BOUNDS 10
#define CB_T0 1700000000000000000ULL /* 2023-11-14T22:13:20Z */
#define CB_CUMULATIVE OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

/* ---- building the inputs ---- */

static arena *cb_build; /* the message being built; reset once it is packed */
static uint64_t cb_seed = 0x6a09e667f3bcc908ULL;

/* splitmix64: deterministic, so every run converts the same bytes. */
static uint64_t cb_rand(void)
{
    uint64_t z = (cb_seed += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void cb_die(const char *what, const char *detail)
{
    fprintf(stderr, "convert_bench: FAIL: %s%s%s\n", what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
    exit(1);
}

static void *cb_new(size_t size)
{
    void *p = arena_calloc(cb_build, 1, size);
    if (p == NULL)
        cb_die("out of memory building the inputs", NULL);
    return p;
}

/* A printf-formatted string in the build arena: varying text (URLs, log
 * bodies) keeps the bodies from being trivially alike. */
static char *cb_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *cb_fmt(const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    char *s = arena_strndup(cb_build, tmp, n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    if (s == NULL)
        cb_die("out of memory building the inputs", NULL);
    return s;
}

static cb_kv *cb_attr(const char *key, cb_any *v)
{
    cb_kv *k = cb_new(sizeof(*k));
    opentelemetry__proto__common__v1__key_value__init(k);
    k->key = (char *)key;
    k->value = v;
    return k;
}

static cb_any *cb_value(void)
{
    cb_any *v = cb_new(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    return v;
}

static cb_kv *cb_str(const char *key, const char *s)
{
    cb_any *v = cb_value();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return cb_attr(key, v);
}

static cb_kv *cb_int(const char *key, int64_t i)
{
    cb_any *v = cb_value();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return cb_attr(key, v);
}

static cb_kv *cb_double(const char *key, double d)
{
    cb_any *v = cb_value();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return cb_attr(key, v);
}

static cb_kv *cb_bool(const char *key, int b)
{
    cb_any *v = cb_value();
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return cb_attr(key, v);
}

/* Random non-zero id bytes (otlp_validate would reject all-zero ids). */
static ProtobufCBinaryData cb_id(size_t len)
{
    uint8_t *p = cb_new(len);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)cb_rand();
    p[0] |= 1;
    return (ProtobufCBinaryData){len, p};
}

static const char *cb_pick(const char *const *list, size_t n) { return list[cb_rand() % n]; }
#define CB_PICK(list) cb_pick(list, sizeof(list) / sizeof(list[0]))

static Opentelemetry__Proto__Resource__V1__Resource *cb_resource(void)
{
    static const char *const services[] = {"checkout", "frontend", "cart", "payment"};
    Opentelemetry__Proto__Resource__V1__Resource *r = cb_new(sizeof(*r));
    opentelemetry__proto__resource__v1__resource__init(r);
    r->n_attributes = 5;
    r->attributes = cb_new(r->n_attributes * sizeof(cb_kv *));
    r->attributes[0] = cb_str("service.name", CB_PICK(services));
    r->attributes[1] = cb_str("service.version", "1.42.7");
    r->attributes[2] = cb_str("deployment.environment", "production");
    r->attributes[3] = cb_str("host.name", cb_fmt("ip-10-1-%u-%u.eu-west-1.compute.internal",
                                                  (unsigned)(cb_rand() % 256), (unsigned)(cb_rand() % 256)));
    r->attributes[4] = cb_str("telemetry.sdk.language", "java");
    return r;
}

static Opentelemetry__Proto__Common__V1__InstrumentationScope *cb_scope(const char *name)
{
    Opentelemetry__Proto__Common__V1__InstrumentationScope *s = cb_new(sizeof(*s));
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    s->name = (char *)name;
    s->version = "2.9.0";
    return s;
}

static void cb_span_attrs(cb_span *s)
{
    static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT"};
    static const char *const routes[] = {"/api/cart", "/api/checkout", "/api/orders/{id}", "/api/products/{id}"};
    s->n_attributes = CB_SPAN_ATTRS;
    s->attributes = cb_new(CB_SPAN_ATTRS * sizeof(cb_kv *));
    s->attributes[0] = cb_str("http.request.method", CB_PICK(methods));
    s->attributes[1] = cb_str("http.route", CB_PICK(routes));
    s->attributes[2] = cb_int("http.response.status_code", cb_rand() % 20 == 0 ? 503 : 200);
    s->attributes[3] = cb_str("url.full", cb_fmt("https://shop.example.com/api/orders/%llu?session=%08llx",
                                                 (unsigned long long)(cb_rand() % 1000000),
                                                 (unsigned long long)(cb_rand() & 0xffffffffULL)));
    s->attributes[4] = cb_str("server.address", "shop.example.com");
    s->attributes[5] = cb_int("server.port", 443);
    s->attributes[6] = cb_str("network.protocol.version", "1.1");
    s->attributes[7] = cb_str("user_agent.original",
                              "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
    s->attributes[8] = cb_double("app.cart.total", (double)(cb_rand() % 100000) / 100.0);
    s->attributes[9] = cb_bool("app.cache.hit", (int)(cb_rand() & 1));
}

/* An exception event with the attributes semantic conventions give it, and
 * the error status that goes with it. */
static void cb_span_exception(cb_span *s)
{
    Opentelemetry__Proto__Trace__V1__Span__Event *e = cb_new(sizeof(*e));
    opentelemetry__proto__trace__v1__span__event__init(e);
    e->time_unix_nano = s->end_time_unix_nano - 1000;
    e->name = "exception";
    e->n_attributes = 3;
    e->attributes = cb_new(3 * sizeof(cb_kv *));
    e->attributes[0] = cb_str("exception.type", "java.net.SocketTimeoutException");
    e->attributes[1] =
        cb_str("exception.message", cb_fmt("Read timed out after %u ms", 100 + (unsigned)(cb_rand() % 900)));
    e->attributes[2] = cb_str("exception.stacktrace",
                              "java.net.SocketTimeoutException: Read timed out\n"
                              "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)\n"
                              "\tat com.example.shop.OrdersClient.fetch(OrdersClient.java:117)\n"
                              "\tat com.example.shop.CheckoutHandler.handle(CheckoutHandler.java:64)\n");
    s->n_events = 1;
    s->events = cb_new(sizeof(*s->events));
    s->events[0] = e;
    s->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    s->status->message = "upstream timeout";
}

static ProtobufCMessage *cb_traces(void)
{
    static const char *const names[] = {"GET /api/checkout", "SELECT orders", "POST /api/cart",
                                        "orders-client fetch", "render checkout"};
    cb_span **spans = cb_new(CB_SPANS * sizeof(*spans));
    ProtobufCBinaryData trace_id = {0, NULL};
    for (size_t i = 0; i < CB_SPANS; i++) {
        cb_span *s = cb_new(sizeof(*s));
        opentelemetry__proto__trace__v1__span__init(s);
        /* Five spans share a trace, the first of them its root. */
        if (i % CB_SPANS_PER_TRACE == 0)
            trace_id = cb_id(16);
        s->trace_id = trace_id;
        s->span_id = cb_id(8);
        if (i % CB_SPANS_PER_TRACE != 0)
            s->parent_span_id = cb_id(8);
        s->name = (char *)names[i % CB_SPANS_PER_TRACE];
        s->kind = i % CB_SPANS_PER_TRACE == 0 ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER
                                              : OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
        s->start_time_unix_nano = CB_T0 + cb_rand() % 60000000000ULL;
        s->end_time_unix_nano = s->start_time_unix_nano + 100000 + cb_rand() % 50000000;
        s->status = cb_new(sizeof(*s->status));
        opentelemetry__proto__trace__v1__status__init(s->status);
        cb_span_attrs(s);
        if (i % CB_EVENT_EVERY == CB_EVENT_EVERY - 1)
            cb_span_exception(s);
        spans[i] = s;
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = cb_new(sizeof(*ss));
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    ss->scope = cb_scope("io.opentelemetry.java-http-client");
    ss->spans = spans;
    ss->n_spans = CB_SPANS;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = cb_new(sizeof(*rs));
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    rs->resource = cb_resource();
    rs->scope_spans = cb_new(sizeof(*rs->scope_spans));
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req = cb_new(sizeof(*req));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    req->resource_spans = cb_new(sizeof(*req->resource_spans));
    req->resource_spans[0] = rs;
    req->n_resource_spans = 1;
    return &req->base;
}

static ProtobufCMessage *cb_logs(void)
{
    static const char *const loggers[] = {"com.example.shop.CheckoutHandler", "com.example.shop.OrdersClient",
                                          "org.hibernate.SQL"};
    cb_log **recs = cb_new(CB_LOGS * sizeof(*recs));
    for (size_t i = 0; i < CB_LOGS; i++) {
        cb_log *l = cb_new(sizeof(*l));
        opentelemetry__proto__logs__v1__log_record__init(l);
        l->time_unix_nano = CB_T0 + cb_rand() % 60000000000ULL;
        l->observed_time_unix_nano = l->time_unix_nano + 2000000;
        int warn = cb_rand() % 20 == 0;
        l->severity_number = warn ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN
                                  : OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
        l->severity_text = warn ? "WARN" : "INFO";
        l->body = cb_value();
        l->body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        l->body->string_value = cb_fmt("order %llu for customer %08llx placed: %u items, total %u.%02u EUR, "
                                       "payment authorized in %u ms",
                                       (unsigned long long)(cb_rand() % 10000000),
                                       (unsigned long long)(cb_rand() & 0xffffffffULL), 1 + (unsigned)(cb_rand() % 9),
                                       (unsigned)(cb_rand() % 500), (unsigned)(cb_rand() % 100),
                                       (unsigned)(cb_rand() % 800));
        l->n_attributes = CB_LOG_ATTRS;
        l->attributes = cb_new(CB_LOG_ATTRS * sizeof(cb_kv *));
        l->attributes[0] = cb_str("log.logger", CB_PICK(loggers));
        l->attributes[1] = cb_str("thread.name", cb_fmt("http-nio-8080-exec-%u", 1 + (unsigned)(cb_rand() % 32)));
        l->attributes[2] = cb_int("thread.id", 40 + (int64_t)(cb_rand() % 32));
        l->attributes[3] = cb_str("code.function", "placeOrder");
        l->attributes[4] = cb_str("enduser.id", cb_fmt("u-%06llu", (unsigned long long)(cb_rand() % 1000000)));
        l->attributes[5] = cb_bool("app.retry", warn);
        /* Half the records are written inside a request and carry its span. */
        if (i % 2 == 0) {
            l->trace_id = cb_id(16);
            l->span_id = cb_id(8);
            l->flags = 1;
        }
        recs[i] = l;
    }
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = cb_new(sizeof(*sl));
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    sl->scope = cb_scope("io.opentelemetry.logback-appender-1.0");
    sl->log_records = recs;
    sl->n_log_records = CB_LOGS;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = cb_new(sizeof(*rl));
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    rl->resource = cb_resource();
    rl->scope_logs = cb_new(sizeof(*rl->scope_logs));
    rl->scope_logs[0] = sl;
    rl->n_scope_logs = 1;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req = cb_new(sizeof(*req));
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(req);
    req->resource_logs = cb_new(sizeof(*req->resource_logs));
    req->resource_logs[0] = rl;
    req->n_resource_logs = 1;
    return &req->base;
}

/* Point p of a metric: the three attributes that tell its series apart. */
static cb_kv **cb_point_attrs(size_t p, size_t *n)
{
    static const char *const states[CB_POINTS] = {"user", "system", "idle", "iowait", "steal"};
    cb_kv **a = cb_new(CB_POINT_ATTRS * sizeof(cb_kv *));
    a[0] = cb_str("state", states[p % CB_POINTS]);
    a[1] = cb_str("cloud.availability_zone", "eu-west-1b");
    a[2] = cb_int("shard", (int64_t)p);
    *n = CB_POINT_ATTRS;
    return a;
}

static cb_metric *cb_metric_new(const char *name, const char *unit, int data_case)
{
    cb_metric *m = cb_new(sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = (char *)name;
    m->unit = (char *)unit;
    m->data_case = data_case;
    return m;
}

static cb_number **cb_numbers(int as_int, uint64_t start)
{
    cb_number **pts = cb_new(CB_POINTS * sizeof(*pts));
    for (size_t p = 0; p < CB_POINTS; p++) {
        cb_number *d = cb_new(sizeof(*d));
        opentelemetry__proto__metrics__v1__number_data_point__init(d);
        d->attributes = cb_point_attrs(p, &d->n_attributes);
        d->start_time_unix_nano = start;
        d->time_unix_nano = CB_T0 + 60000000000ULL;
        if (as_int) {
            d->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
            d->as_int = (int64_t)(cb_rand() % 100000000);
        } else {
            d->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
            d->as_double = (double)(cb_rand() % 1000000) / 1000.0;
        }
        pts[p] = d;
    }
    return pts;
}

static cb_hist **cb_histogram_points(uint64_t start)
{
    /* Seconds, roughly the semantic conventions' duration buckets. */
    static double bounds[CB_BOUNDS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    cb_hist **pts = cb_new(CB_POINTS * sizeof(*pts));
    for (size_t p = 0; p < CB_POINTS; p++) {
        cb_hist *h = cb_new(sizeof(*h));
        opentelemetry__proto__metrics__v1__histogram_data_point__init(h);
        h->attributes = cb_point_attrs(p, &h->n_attributes);
        h->start_time_unix_nano = start;
        h->time_unix_nano = CB_T0 + 60000000000ULL;
        h->explicit_bounds = bounds;
        h->n_explicit_bounds = CB_BOUNDS;
        h->bucket_counts = cb_new((CB_BOUNDS + 1) * sizeof(uint64_t));
        h->n_bucket_counts = CB_BOUNDS + 1;
        double sum = 0;
        for (size_t b = 0; b <= CB_BOUNDS; b++) {
            h->bucket_counts[b] = cb_rand() % 5000;
            h->count += h->bucket_counts[b];
            sum += (double)h->bucket_counts[b] * (b < CB_BOUNDS ? bounds[b] : 2 * bounds[CB_BOUNDS - 1]);
        }
        h->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
        h->sum = sum;
        pts[p] = h;
    }
    return pts;
}

static ProtobufCMessage *cb_metrics(void)
{
    static const char *const gauges[CB_GAUGES][2] = {
        {"system.cpu.utilization", "1"}, {"system.memory.usage", "By"},
        {"jvm.thread.count", "{thread}"}, {"queue.depth", "{item}"},
        {"db.client.connection.count", "{connection}"}, {"container.cpu.utilization", "1"},
        {"system.filesystem.utilization", "1"}, {"jvm.memory.used", "By"}};
    static const char *const sums[CB_SUMS][2] = {
        {"http.server.request.count", "{request}"}, {"system.network.io", "By"},
        {"system.disk.operations", "{operation}"}, {"process.cpu.time", "s"},
        {"messaging.client.sent.messages", "{message}"}, {"db.client.operation.count", "{operation}"},
        {"rpc.server.request.count", "{request}"}, {"cache.hits", "{hit}"}};
    static const char *const hists[CB_HISTOGRAMS] = {"http.server.request.duration", "http.client.request.duration",
                                                     "db.client.operation.duration", "rpc.server.duration"};
    uint64_t start = CB_T0 - 3600000000000ULL; /* cumulative since the process started */
    cb_metric **ms = cb_new(CB_METRICS * sizeof(*ms));
    size_t n = 0;
    for (size_t i = 0; i < CB_GAUGES; i++) {
        cb_metric *m = cb_metric_new(gauges[i][0], gauges[i][1], OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
        m->gauge = cb_new(sizeof(*m->gauge));
        opentelemetry__proto__metrics__v1__gauge__init(m->gauge);
        m->gauge->data_points = cb_numbers(0, 0);
        m->gauge->n_data_points = CB_POINTS;
        ms[n++] = m;
    }
    for (size_t i = 0; i < CB_SUMS; i++) {
        cb_metric *m = cb_metric_new(sums[i][0], sums[i][1], OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
        m->sum = cb_new(sizeof(*m->sum));
        opentelemetry__proto__metrics__v1__sum__init(m->sum);
        m->sum->data_points = cb_numbers(1, start);
        m->sum->n_data_points = CB_POINTS;
        m->sum->is_monotonic = 1;
        m->sum->aggregation_temporality = CB_CUMULATIVE;
        ms[n++] = m;
    }
    for (size_t i = 0; i < CB_HISTOGRAMS; i++) {
        cb_metric *m = cb_metric_new(hists[i], "s", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
        m->histogram = cb_new(sizeof(*m->histogram));
        opentelemetry__proto__metrics__v1__histogram__init(m->histogram);
        m->histogram->data_points = cb_histogram_points(start);
        m->histogram->n_data_points = CB_POINTS;
        m->histogram->aggregation_temporality = CB_CUMULATIVE;
        ms[n++] = m;
    }
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = cb_new(sizeof(*sm));
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    sm->scope = cb_scope("io.opentelemetry.runtime-telemetry-java17");
    sm->metrics = ms;
    sm->n_metrics = n;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = cb_new(sizeof(*rm));
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    rm->resource = cb_resource();
    rm->scope_metrics = cb_new(sizeof(*rm->scope_metrics));
    rm->scope_metrics[0] = sm;
    rm->n_scope_metrics = 1;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req = cb_new(sizeof(*req));
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(req);
    req->resource_metrics = cb_new(sizeof(*req->resource_metrics));
    req->resource_metrics[0] = rm;
    req->n_resource_metrics = 1;
    return &req->base;
}

typedef struct cb_body {
    uint8_t *data;
    size_t len;
} cb_body;

/* Build CB_VARIANTS messages with `make` and keep their protobuf bytes: the
 * benchmark starts, like an exporter, from the queued wire body. */
static void cb_pack_bodies(ProtobufCMessage *(*make)(void), cb_body *out)
{
    for (size_t v = 0; v < CB_VARIANTS; v++) {
        arena_reset(cb_build);
        ProtobufCMessage *m = make();
        out[v].len = protobuf_c_message_get_packed_size(m);
        out[v].data = malloc(out[v].len);
        if (out[v].data == NULL)
            cb_die("out of memory building the inputs", NULL);
        protobuf_c_message_pack(m, out[v].data);
    }
    arena_reset(cb_build);
}

/* ---- measuring ---- */

static double cb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Totals over the counted requests of one signal. */
typedef struct cb_totals {
    size_t requests;
    double t_scan, t_decode, t_render, t_prom, t_snappy; /* seconds */
    uint64_t wire, items, docs, ndjson;          /* bytes or counts */
    uint64_t prom_points, prom_series, prom_bytes, snappy_bytes;
} cb_totals;

typedef struct cb_workspace {
    arena *decode;     /* the decoded request, and prom_rw's temporaries as in the exporter */
    buf ndjson, write_request;
    es_doc_table docs;
    char *snappy;      /* compressed output, grown as needed */
    size_t snappy_cap;
} cb_workspace;

/* One request through the exporter's steps for `sig`; timings go to *tot
 * when `count` is set. */
static void cb_convert_one(cb_workspace *w, otlp_signal sig, const cb_body *b, int count, cb_totals *tot)
{
    static const es_doc_settings es_defaults = {NULL, NULL};
    /* prometheus_remote_write's defaults: unit and _total suffixes, target_info. */
    static const prom_rw_options prom_defaults = {.add_metric_suffixes = 1, .target_info = 1, .native_histograms = 1};
    char err[256];
    otlp_request req;
    es_doc_report rep;

    arena_reset(w->decode);
    size_t scanned;
    double ts = cb_now();
    if (!otlp_wire_scan(sig, b->data, b->len, &scanned, NULL))
        cb_die("otlp_wire_scan refused a valid request", NULL);
    double t0 = cb_now();
    if (otlp_decode(sig, OTLP_PROTOBUF, b->data, b->len, w->decode, &req, err, sizeof(err)) != 0)
        cb_die("otlp_decode", err);
    double t1 = cb_now();
    buf_clear(&w->ndjson);
    w->docs.n = 0;
    if (es_doc_render(&es_defaults, sig, req.msg, &w->ndjson, &w->docs, &rep) != 0)
        cb_die("es_doc_render", "out of memory");
    double t2 = cb_now();
    if (rep.dropped != 0)
        cb_die("es_doc_render dropped items of a valid request", rep.reason);
    if (count) {
        if (scanned != req.items)
            cb_die("otlp_wire_scan counted other items than otlp_decode", NULL);
        tot->requests++;
        tot->t_scan += t0 - ts;
        tot->t_decode += t1 - t0;
        tot->t_render += t2 - t1;
        tot->wire += b->len;
        tot->items += req.items;
        tot->docs += w->docs.n;
        tot->ndjson += w->ndjson.len;
    }
    if (sig != OTLP_METRICS)
        return;

    prom_rw_stats st = {0};
    buf_clear(&w->write_request);
    double t3 = cb_now();
    if (prom_rw_convert((const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *)req.msg,
                        &prom_defaults, w->decode, &w->write_request, &st) != 0)
        cb_die("prom_rw_convert", "out of memory");
    double t4 = cb_now();
    if (st.converted != req.items)
        cb_die("prom_rw_convert dropped points of a valid request", NULL);
    size_t max = snappy_max_compressed_length(w->write_request.len), clen = max;
    if (max > w->snappy_cap) {
        free(w->snappy);
        if ((w->snappy = malloc(max)) == NULL)
            cb_die("out of memory", NULL);
        w->snappy_cap = max;
    }
    double t5 = cb_now();
    if (snappy_compress(w->write_request.data, w->write_request.len, w->snappy, &clen) != SNAPPY_OK)
        cb_die("snappy_compress", NULL);
    double t6 = cb_now();
    if (count) {
        tot->t_prom += t4 - t3;
        tot->t_snappy += t6 - t5;
        tot->prom_points += st.converted;
        tot->prom_series += st.series;
        tot->prom_bytes += w->write_request.len;
        tot->snappy_bytes += clen;
    }
}

static void cb_run_signal(otlp_signal sig, const cb_body *bodies, size_t requests, cb_totals *tot)
{
    cb_workspace w = {.ndjson = BUF_INIT, .write_request = BUF_INIT};
    if ((w.decode = arena_new(0)) == NULL)
        cb_die("out of memory", NULL);
    size_t warm = requests / 10 > CB_VARIANTS ? requests / 10 : CB_VARIANTS;
    memset(tot, 0, sizeof(*tot));
    for (size_t r = 0; r < warm + requests; r++)
        cb_convert_one(&w, sig, &bodies[r % CB_VARIANTS], r >= warm, tot);
    arena_free(w.decode);
    buf_free(&w.ndjson);
    buf_free(&w.write_request);
    es_doc_table_free(&w.docs);
    free(w.snappy);
}

/* `item` names the items in the plural, `one` in the singular. */
static void cb_print_es(const char *label, const char *item, const char *one, const cb_totals *t)
{
    double n = (double)t->requests;
    printf("  %-8s %.0f %s/request, %.1f KB protobuf/request, %.1f documents/request\n", label,
           (double)t->items / n, item, (double)t->wire / n / 1e3, (double)t->docs / n);
    printf("    decode (baseline): %8.1f us/request  %7.3f M %s/s\n", t->t_decode * 1e6 / n,
           (double)t->items / t->t_decode / 1e6, item);
    printf("    otlp_wire_scan:    %8.1f us/request  %7.3f M %s/s  %6.0f MB/s  scan/decode %.2fx (ingest's one pass)\n",
           t->t_scan * 1e6 / n, (double)t->items / t->t_scan / 1e6, item, (double)t->wire / t->t_scan / 1e6,
           t->t_scan / t->t_decode);
    printf("    es_doc_render:     %8.1f us/request  %7.3f M %s/s  %6.1f MB/s NDJSON  %5.0f bytes NDJSON/%s\n",
           t->t_render * 1e6 / n, (double)t->items / t->t_render / 1e6, item,
           (double)t->ndjson / t->t_render / 1e6, (double)t->ndjson / (double)t->items, one);
    printf("    render/decode:     %8.2fx   (NDJSON is %.1fx the protobuf)\n", t->t_render / t->t_decode,
           (double)t->ndjson / (double)t->wire);
}

static void cb_print_prom(const cb_totals *t)
{
    double n = (double)t->requests;
    printf("  metrics  %.0f points/request -> %.0f series/request (target_info included), %.1f KB WriteRequest\n",
           (double)t->prom_points / n, (double)t->prom_series / n, (double)t->prom_bytes / n / 1e3);
    printf("    decode (baseline): %8.1f us/request  %7.3f M points/s\n", t->t_decode * 1e6 / n,
           (double)t->items / t->t_decode / 1e6);
    printf("    prom_rw_convert:   %8.1f us/request  %7.3f M points/s  %7.3f M series/s\n", t->t_prom * 1e6 / n,
           (double)t->prom_points / t->t_prom / 1e6, (double)t->prom_series / t->t_prom / 1e6);
    printf("    convert/decode:    %8.2fx\n", t->t_prom / t->t_decode);
    printf("    snappy_compress:   %8.1f us/request  %7.1f MB/s in  output %.1f%% of input  snappy/decode %.2fx\n",
           t->t_snappy * 1e6 / n, (double)t->prom_bytes / t->t_snappy / 1e6,
           100.0 * (double)t->snappy_bytes / (double)t->prom_bytes, t->t_snappy / t->t_decode);
}

/* ---- SigV4 against gzip ---- */

/* `len` bytes of concatenated trace request bodies: as compressible as the
 * traffic aws_xray sends, unlike random or repeated bytes. */
static uint8_t *cb_sigv4_body(const cb_body *traces, size_t len)
{
    uint8_t *p = malloc(len);
    if (p == NULL)
        cb_die("out of memory", NULL);
    for (size_t off = 0, v = 0; off < len; v++) {
        size_t n = traces[v % CB_VARIANTS].len < len - off ? traces[v % CB_VARIANTS].len : len - off;
        memcpy(p + off, traces[v % CB_VARIANTS].data, n);
        off += n;
    }
    return p;
}

static void cb_sign(const uint8_t *body, size_t len, buf *out)
{
    /* The headers an aws_xray export carries, with example credentials
     * holding a session token as role-based credentials do. */
    static const char *const headers[] = {"Host: xray.eu-west-1.amazonaws.com",
                                          "Content-Type: application/x-protobuf", "Content-Encoding: gzip", NULL};
    static const aws_credentials creds = {
        .access_key_id = "ASIAIOSFODNN7EXAMPLE",
        .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        .session_token = "IQoJb3JpZ2luX2VjEXAMPLETOKENexampletokenexampletokenexampletokenexampletokenexample"
                         "tokenexampletokenexampletokenexampletokenexampletokenexampletokenexampletoken"};
    aws_sigv4_request r = {.method = "POST", .path = "/v1/traces", .query = NULL, .headers = headers,
                           .body = body, .body_len = len};
    buf_clear(out);
    if (aws_sigv4_sign(&r, &creds, "eu-west-1", "xray", "20231114T221320Z", 1, out, NULL, NULL) != 0)
        cb_die("aws_sigv4_sign", NULL);
}

static void cb_run_sigv4(const char *label, const uint8_t *body, size_t len, size_t iters)
{
    buf gz = BUF_INIT, headers = BUF_INIT;
    double t_gzip = 0, t_sign = 0, t_sign_gz = 0;
    /* One untimed pass grows the buffers. */
    for (size_t i = 0; i <= iters; i++) {
        buf_clear(&gz);
        double t0 = cb_now();
        if (gzip_deflate(body, len, -1, &gz) != GZIP_OK) /* -1: the exporter's level */
            cb_die("gzip_deflate", NULL);
        double t1 = cb_now();
        cb_sign(body, len, &headers);
        double t2 = cb_now();
        cb_sign((const uint8_t *)gz.data, gz.len, &headers);
        double t3 = cb_now();
        if (i > 0) {
            t_gzip += t1 - t0;
            t_sign += t2 - t1;
            t_sign_gz += t3 - t2;
        }
    }
    double n = (double)iters;
    printf("  %-8s body (%zu requests)\n", label, iters);
    printf("    gzip_deflate (baseline):  %9.1f us/request  %7.1f MB/s  output %.1f%% of input\n", t_gzip * 1e6 / n,
           (double)len * n / t_gzip / 1e6, 100.0 * (double)gz.len / (double)len);
    printf("    aws_sigv4_sign of body:   %9.1f us/request  %7.1f MB/s  sign/gzip %.3fx\n", t_sign * 1e6 / n,
           (double)len * n / t_sign / 1e6, t_sign / t_gzip);
    printf("    aws_sigv4_sign of gzip:   %9.1f us/request  (what the exporter signs)  sign/gzip %.3fx\n",
           t_sign_gz * 1e6 / n, t_sign_gz / t_gzip);
    buf_free(&gz);
    buf_free(&headers);
}

/* The disk queue's checksum over the trace bodies: the table (baseline)
 * and what crc32c() picks on this CPU; both must agree. */
static void cb_run_crc(const cb_body *bodies, size_t iters)
{
    double t_table = 0, t_fast = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < iters; i++) {
        const cb_body *b = &bodies[i % CB_VARIANTS];
        double t0 = cb_now();
        uint32_t a = crc32c_portable(b->data, b->len);
        double t1 = cb_now();
        uint32_t c = crc32c(b->data, b->len);
        double t2 = cb_now();
        if (a != c)
            cb_die("crc32c", "the two implementations disagree");
        t_table += t1 - t0;
        t_fast += t2 - t1;
        bytes += b->len;
    }
    double n = (double)iters;
    printf("\nDisk queue record checksum (CRC-32C) of the trace bodies (%zu requests)\n", iters);
    printf("    crc32c_portable (baseline): %7.2f us/request  %7.1f MB/s\n", t_table * 1e6 / n, (double)bytes / t_table / 1e6);
    printf("    crc32c:                     %7.2f us/request  %7.1f MB/s  baseline/this %.2fx\n", t_fast * 1e6 / n,
           (double)bytes / t_fast / 1e6, t_table / t_fast);
}

int main(int argc, char **argv)
{
    size_t requests = CB_DEFAULT_REQUESTS;
    if (argc > 1) {
        char *end;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (*end != '\0' || v == 0) {
            fprintf(stderr, "usage: %s [REQUESTS]   (per signal, default %d)\n", argv[0], CB_DEFAULT_REQUESTS);
            return 2;
        }
        requests = (size_t)v;
    }
    if ((cb_build = arena_new(0)) == NULL)
        cb_die("out of memory", NULL);
    cb_body traces[CB_VARIANTS], logs[CB_VARIANTS], metrics[CB_VARIANTS];
    cb_pack_bodies(cb_traces, traces);
    cb_pack_bodies(cb_logs, logs);
    cb_pack_bodies(cb_metrics, metrics);

    printf("convert_bench: %zu requests per signal (%zu warm-up not counted), %d distinct bodies per signal\n",
           requests, requests / 10 > CB_VARIANTS ? requests / 10 : (size_t)CB_VARIANTS, CB_VARIANTS);
    printf("  baseline: otlp_decode of the same protobuf body, timed in the same loop; MB = 10^6 bytes\n\n");

    cb_totals tt, tl, tm;
    cb_run_signal(OTLP_TRACES, traces, requests, &tt);
    cb_run_signal(OTLP_LOGS, logs, requests, &tl);
    cb_run_signal(OTLP_METRICS, metrics, requests, &tm);

    printf("Elasticsearch _bulk (es_doc_render, otel mapping mode, default dataset/namespace)\n");
    cb_print_es("traces", "spans", "span", &tt);
    cb_print_es("logs", "records", "record", &tl);
    cb_print_es("metrics", "points", "point", &tm);
    printf("\nPrometheus remote write (prom_rw_convert, add_metric_suffixes, target_info and native_histograms on)\n");
    cb_print_prom(&tm);

    /* Sized so both bodies hash and compress the same total bytes. */
    size_t big = 1024 * 1024, small = 64 * 1024;
    size_t iters_big = requests / 20 > 5 ? requests / 20 : 5;
    uint8_t *body = cb_sigv4_body(traces, big);
    printf("\nSigV4 (aws_sigv4_sign, X-Amz-Content-Sha256 and session token) vs gzip_deflate of the same body\n");
    cb_run_sigv4("1 MiB", body, big, iters_big);
    cb_run_sigv4("64 KiB", body, small, iters_big * (big / small));
    cb_run_crc(traces, requests);

    free(body);
    for (size_t v = 0; v < CB_VARIANTS; v++) {
        free(traces[v].data);
        free(logs[v].data);
        free(metrics[v].data);
    }
    arena_free(cb_build);
    return 0;
}
