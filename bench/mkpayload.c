/* mkpayload: write one OTLP ExportTraceServiceRequest for the benchmark.
 *
 *   mkpayload [--raw] OUTPUT [SPANS]
 *
 * The request has the shape a typical instrumented service sends: one
 * resource (service.name and four more attributes), one instrumentation
 * scope, SPANS spans (default 100), each with random trace/span ids, a name,
 * a kind, start/end timestamps, a status and ten attributes of mixed types.
 *
 * By default the output is gRPC-framed (1 byte compressed flag = 0, 4 bytes
 * big-endian message length, then the message), ready for
 * `h2load -d OUTPUT`. With --raw it is the bare protobuf message, as
 * OTLP/HTTP (application/x-protobuf) carries it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

#define SPAN_ATTRS 10
#define RES_ATTRS 5

static uint64_t rng_state;

/* xorshift64*: fast and good enough for ids that only need to differ. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rnd() >> 56);
    p[0] |= 1; /* never all zero: an all-zero id is invalid in OTLP */
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) {
        fprintf(stderr, "mkpayload: out of memory\n");
        exit(1);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = xcalloc(strlen(s) + 1, 1);
    memcpy(p, s, strlen(s));
    return p;
}

static void init_kv(kv_t *kv, any_t *v, const char *key)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = (char *)key;
    kv->value = v;
}

static void set_str(kv_t *kv, any_t *v, const char *key, char *s)
{
    init_kv(kv, v, key);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = s;
}

static void set_int(kv_t *kv, any_t *v, const char *key, int64_t i)
{
    init_kv(kv, v, key);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
}

static void set_double(kv_t *kv, any_t *v, const char *key, double d)
{
    init_kv(kv, v, key);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
}

static void set_bool(kv_t *kv, any_t *v, const char *key, int b)
{
    init_kv(kv, v, key);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b != 0;
}

static const char *const routes[] = {"/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/cart",
                                     "/api/v1/users/{id}", "/healthz", "/api/v1/checkout"};
static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
static const char *const ops[] = {"SELECT orders", "INSERT orders", "GET cart:*", "publish order.created",
                                  "HTTP GET inventory", "render template"};

static void fill_span(span_t *sp, uint8_t *trace_id, uint64_t now_ns, size_t i)
{
    opentelemetry__proto__trace__v1__span__init(sp);

    uint8_t *sid = xcalloc(8, 1);
    rnd_bytes(sid, 8);
    sp->trace_id.data = trace_id;
    sp->trace_id.len = 16;
    sp->span_id.data = sid;
    sp->span_id.len = 8;
    if (i % 5 != 0) { /* one root in five, the rest children */
        uint8_t *pid = xcalloc(8, 1);
        rnd_bytes(pid, 8);
        sp->parent_span_id.data = pid;
        sp->parent_span_id.len = 8;
    }
    sp->flags = 0x101; /* sampled, has-is-remote known */

    const char *route = routes[rnd() % (sizeof routes / sizeof routes[0])];
    const char *method = methods[rnd() % (sizeof methods / sizeof methods[0])];
    char name[96];
    if (i % 5 == 0) {
        snprintf(name, sizeof name, "%s %s", method, route);
        sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    } else {
        snprintf(name, sizeof name, "%s", ops[rnd() % (sizeof ops / sizeof ops[0])]);
        sp->kind = (i % 2) ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT
                           : OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
    }
    sp->name = xstrdup(name);

    uint64_t dur = 50000 + rnd() % 250000000; /* 50 µs .. 250 ms */
    sp->start_time_unix_nano = now_ns - dur - (rnd() % 1000000000);
    sp->end_time_unix_nano = sp->start_time_unix_nano + dur;

    Opentelemetry__Proto__Trace__V1__Status *st = xcalloc(1, sizeof *st);
    opentelemetry__proto__trace__v1__status__init(st);
    int status = (int)(rnd() % 100);
    int http_status = 200;
    if (status < 3) {
        st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        st->message = xstrdup("upstream connect error or disconnect/reset before headers");
        http_status = 503;
    } else if (status < 50) {
        st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    }
    sp->status = st;

    kv_t *kv = xcalloc(SPAN_ATTRS, sizeof *kv);
    any_t *v = xcalloc(SPAN_ATTRS, sizeof *v);
    kv_t **kvp = xcalloc(SPAN_ATTRS, sizeof *kvp);
    char buf[64];
    set_str(&kv[0], &v[0], "http.request.method", xstrdup(method));
    set_str(&kv[1], &v[1], "http.route", xstrdup(route));
    set_int(&kv[2], &v[2], "http.response.status_code", http_status);
    snprintf(buf, sizeof buf, "10.%u.%u.%u", (unsigned)(rnd() % 256), (unsigned)(rnd() % 256),
             (unsigned)(rnd() % 256));
    set_str(&kv[3], &v[3], "client.address", xstrdup(buf));
    set_int(&kv[4], &v[4], "server.port", 8080);
    set_str(&kv[5], &v[5], "user_agent.original",
            xstrdup("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"));
    set_double(&kv[6], &v[6], "app.cart.total", (double)(rnd() % 100000) / 100.0);
    set_bool(&kv[7], &v[7], "app.cache.hit", (int)(rnd() & 1));
    snprintf(buf, sizeof buf, "user-%06u", (unsigned)(rnd() % 1000000));
    set_str(&kv[8], &v[8], "enduser.id", xstrdup(buf));
    set_int(&kv[9], &v[9], "app.items.count", (int64_t)(rnd() % 20));
    for (size_t k = 0; k < SPAN_ATTRS; k++)
        kvp[k] = &kv[k];
    sp->n_attributes = SPAN_ATTRS;
    sp->attributes = kvp;
}

static int usage(void)
{
    fprintf(stderr, "usage: mkpayload [--raw] OUTPUT [SPANS]\n"
                    "  writes a gRPC-framed ExportTraceServiceRequest (bare protobuf with --raw)\n");
    return 2;
}

int main(int argc, char **argv)
{
    int raw = 0;
    int ai = 1;
    if (ai < argc && strcmp(argv[ai], "--raw") == 0) {
        raw = 1;
        ai++;
    }
    if (ai >= argc || argc - ai > 2)
        return usage();
    const char *out = argv[ai];
    long nspans = 100;
    if (ai + 1 < argc) {
        char *end;
        errno = 0;
        nspans = strtol(argv[ai + 1], &end, 10);
        if (errno || *end || nspans < 1 || nspans > 1000000)
            return usage();
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rng_state = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^ 0x9e3779b97f4a7c15ULL;
    uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;

    /* resource */
    kv_t rkv[RES_ATTRS];
    any_t rv[RES_ATTRS];
    kv_t *rkvp[RES_ATTRS];
    set_str(&rkv[0], &rv[0], "service.name", "checkout");
    set_str(&rkv[1], &rv[1], "service.version", "1.42.0");
    set_str(&rkv[2], &rv[2], "deployment.environment.name", "production");
    set_str(&rkv[3], &rv[3], "host.name", "ip-10-12-34-56.eu-west-1.compute.internal");
    set_int(&rkv[4], &rv[4], "process.pid", 4242);
    for (size_t k = 0; k < RES_ATTRS; k++)
        rkvp[k] = &rkv[k];
    Opentelemetry__Proto__Resource__V1__Resource res;
    opentelemetry__proto__resource__v1__resource__init(&res);
    res.n_attributes = RES_ATTRS;
    res.attributes = rkvp;

    /* scope */
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&scope);
    scope.name = "io.opentelemetry.instrumentation.http";
    scope.version = "2.10.0";

    /* spans: groups of five share a trace id (one server span, four children) */
    span_t *spans = xcalloc((size_t)nspans, sizeof *spans);
    span_t **spanp = xcalloc((size_t)nspans, sizeof *spanp);
    uint8_t *trace_id = NULL;
    for (long i = 0; i < nspans; i++) {
        if (i % 5 == 0) {
            trace_id = xcalloc(16, 1);
            rnd_bytes(trace_id, 16);
        }
        fill_span(&spans[i], trace_id, now_ns, (size_t)i);
        spanp[i] = &spans[i];
    }

    Opentelemetry__Proto__Trace__V1__ScopeSpans ss;
    opentelemetry__proto__trace__v1__scope_spans__init(&ss);
    ss.scope = &scope;
    ss.n_spans = (size_t)nspans;
    ss.spans = spanp;
    ss.schema_url = "https://opentelemetry.io/schemas/1.26.0";
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;

    Opentelemetry__Proto__Trace__V1__ResourceSpans rs;
    opentelemetry__proto__trace__v1__resource_spans__init(&rs);
    rs.resource = &res;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    rs.schema_url = "https://opentelemetry.io/schemas/1.26.0";
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;

    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;

    size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    if (len > UINT32_MAX) {
        fprintf(stderr, "mkpayload: message too large for a gRPC frame\n");
        return 1;
    }
    uint8_t *buf = xcalloc(len + 5, 1);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf + 5);
    buf[0] = 0; /* not compressed */
    buf[1] = (uint8_t)(len >> 24);
    buf[2] = (uint8_t)(len >> 16);
    buf[3] = (uint8_t)(len >> 8);
    buf[4] = (uint8_t)len;

    const uint8_t *start = raw ? buf + 5 : buf;
    size_t total = raw ? len : len + 5;
    FILE *f = fopen(out, "wb");
    if (!f || fwrite(start, 1, total, f) != total || fclose(f) != 0) {
        fprintf(stderr, "mkpayload: %s: %s\n", out, strerror(errno));
        return 1;
    }
    fprintf(stderr, "mkpayload: %s: %ld spans, %zu bytes%s\n", out, nspans, total,
            raw ? " (protobuf)" : " (gRPC-framed)");
    /* The process exits now; the allocations go with it. */
    return 0;
}
