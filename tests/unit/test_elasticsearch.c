/* The elasticsearch exporter type: OTLP messages built here in C rendered
 * to _bulk NDJSON (read back with jansson), bulk responses read into
 * per-document outcomes, partial retries built from them, whole-request
 * statuses, and configuration errors with their file:line. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "es_bulk.h"
#include "es_doc.h"
#include "exporter.h"
#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "test_util.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

/* ---- building OTLP messages (in an arena, freed per test) ---- */

static arena *A;

static void *mk(size_t size) { return arena_calloc(A, 1, size); }

static any_t *v_str(const char *s)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static any_t *v_int(int64_t i)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static any_t *v_double(double d)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}

static any_t *v_bool(int b)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}

static any_t *v_bytes(const char *s)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v->bytes_value = (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
    return v;
}

/* An array of n values (varargs any_t *). */
static any_t *v_array(size_t n, ...)
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

static kv_t *kv(const char *k, any_t *v)
{
    kv_t *p = mk(sizeof(*p));
    opentelemetry__proto__common__v1__key_value__init(p);
    p->key = (char *)k;
    p->value = v;
    return p;
}

/* n key-values (varargs kv_t *) as a list; *count = n. */
static kv_t **kvs(size_t *count, size_t n, ...)
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

static any_t *v_map(size_t n, ...)
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

static Opentelemetry__Proto__Resource__V1__Resource *resource(size_t n, kv_t **attrs)
{
    Opentelemetry__Proto__Resource__V1__Resource *r = mk(sizeof(*r));
    opentelemetry__proto__resource__v1__resource__init(r);
    r->attributes = attrs;
    r->n_attributes = n;
    return r;
}

static Opentelemetry__Proto__Common__V1__InstrumentationScope *scope(const char *name, const char *version,
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

static Opentelemetry__Proto__Trace__V1__Span *span(const char *name, uint8_t sid_last)
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
static trace_req *traces(Opentelemetry__Proto__Resource__V1__Resource *res,
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

/* ---- reading the NDJSON back ---- */

typedef struct rendered {
    buf body;
    es_doc_table t;
    es_doc_report rep;
    json_t *lines; /* array: action, document, action, document, ... */
} rendered;

static void render(rendered *r, const es_doc_settings *s, otlp_signal sig, const void *msg)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(es_doc_render(s, sig, msg, &r->body, &r->t, &r->rep), 0);
    r->lines = json_array();
    size_t start = 0;
    for (size_t i = 0; i < r->body.len; i++) {
        if (r->body.data[i] != '\n')
            continue;
        json_error_t e;
        json_t *v = json_loadb(r->body.data + start, i - start, 0, &e);
        if (v == NULL)
            fail_msg("line %zu is not JSON: %s: %.*s", json_array_size(r->lines), e.text, (int)(i - start),
                     r->body.data + start);
        json_array_append_new(r->lines, v);
        start = i + 1;
    }
    assert_int_equal(start, r->body.len); /* every line ends with a newline */
    assert_int_equal(json_array_size(r->lines), 2 * r->t.n);
    size_t off = 0; /* the table covers the body, in order */
    for (size_t i = 0; i < r->t.n; i++) {
        assert_int_equal(r->t.v[i].off, off);
        off += r->t.v[i].len;
    }
    assert_int_equal(off, r->body.len);
}

static void rendered_free(rendered *r)
{
    buf_free(&r->body);
    es_doc_table_free(&r->t);
    json_decref(r->lines);
}

static json_t *doc(const rendered *r, size_t i) { return json_array_get(r->lines, 2 * i + 1); }

static const char *index_of(const rendered *r, size_t i)
{
    json_t *a = json_array_get(r->lines, 2 * i);
    assert_int_equal(json_object_size(a), 1);
    return json_string_value(json_object_get(json_object_get(a, "create"), "_index"));
}

/* The string at a path of keys ("a", "b", NULL), or NULL. */
static json_t *at(json_t *v, ...)
{
    va_list ap;
    va_start(ap, v);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;)
        v = json_object_get(v, k);
    va_end(ap);
    return v;
}

static void assert_str(json_t *v, const char *want)
{
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
        char *got = v != NULL ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        fail_msg("got %s, want \"%s\"", got != NULL ? got : "(absent)", want);
    }
}

static void assert_int(json_t *v, json_int_t want)
{
    if (!json_is_integer(v) || json_integer_value(v) != want)
        fail_msg("got %s, want integer %lld", v != NULL ? json_dumps(v, JSON_ENCODE_ANY) : "(absent)", (long long)want);
}

static void assert_json(json_t *v, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    assert_non_null(w);
    if (!json_equal(v, w)) {
        char *got = v != NULL ? json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
        fail_msg("got %s, want %s", got != NULL ? got : "(absent)", want);
    }
    json_decref(w);
}

static int setup(void **state)
{
    (void)state;
    A = arena_new(0);
    return A == NULL;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(A);
    return 0;
}

static const es_doc_settings DEFAULTS = {NULL, NULL};

/* ---- rendering ---- */

static void test_span_document(void **state)
{
    (void)state;
    size_t nr, ns, na, nl, ne;
    kv_t **ra = kvs(&nr, 3, kv("service.name", v_str("shop")), kv("data_stream.namespace", v_str("Prod-EU")),
                    kv("host.cpus", v_int(2)));
    kv_t **sa = kvs(&ns, 1, kv("scope.attr", v_bool(1)));
    Opentelemetry__Proto__Trace__V1__Span *sp = span("GET /orders", 0x01);
    sp->parent_span_id = BIN(PID);
    sp->trace_state = "vendor=x1";
    sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    sp->attributes = kvs(&na, 9, kv("http.method", v_str("GET")), kv("http.status", v_int(504)),
                         kv("ratio", v_double(0.25)), kv("ok", v_bool(0)),
                         kv("tags", v_array(2, v_str("a"), v_str("b"))),
                         kv("nested", v_map(1, kv("k", v_int(1)))), kv("raw", v_bytes("hi!")),
                         kv("data_stream.dataset", v_str("Orders App")), kv("bad.utf8", v_str("a\xff" "b")));
    sp->n_attributes = na;
    sp->dropped_attributes_count = 3;
    Opentelemetry__Proto__Trace__V1__Status *st = mk(sizeof(*st));
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st->message = "upstream timed out";
    sp->status = st;
    Opentelemetry__Proto__Trace__V1__Span__Link *l = mk(sizeof(*l));
    opentelemetry__proto__trace__v1__span__link__init(l);
    l->trace_id = BIN(LTID);
    l->span_id = BIN(LSID);
    l->trace_state = "lk=1";
    l->attributes = kvs(&nl, 1, kv("link.n", v_int(3)));
    l->n_attributes = nl;
    sp->links = mk(sizeof(void *));
    sp->links[0] = l;
    sp->n_links = 1;
    Opentelemetry__Proto__Trace__V1__Span__Event *ev[2];
    for (int i = 0; i < 2; i++) {
        ev[i] = mk(sizeof(*ev[i]));
        opentelemetry__proto__trace__v1__span__event__init(ev[i]);
        ev[i]->time_unix_nano = T0 + 1000 + (uint64_t)i;
    }
    ev[0]->name = "cache.miss";
    ev[0]->attributes = kvs(&ne, 1, kv("cache.key", v_str("orders:42")));
    ev[0]->n_attributes = ne;
    sp->events = ev;
    sp->n_events = 2;
    Opentelemetry__Proto__Trace__V1__Span *spans[] = {sp};
    trace_req *req = traces(resource(nr, ra), scope("e2e-tracer", "1.2.3", ns, sa), 1, spans);

    rendered r;
    render(&r, &DEFAULTS, OTLP_TRACES, req);
    assert_int_equal(r.t.n, 3); /* the span and its two events */
    assert_int_equal(r.t.v[0].items, 1);
    assert_int_equal(r.t.v[0].first, 1);
    assert_int_equal(r.t.v[1].items, 0);
    assert_int_equal(r.t.v[1].first, 0);
    assert_int_equal(r.t.v[2].first, 0);
    assert_int_equal(r.rep.dropped, 0);

    /* dataset from the span, namespace from the resource, both sanitized */
    assert_string_equal(index_of(&r, 0), "traces-orders_app.otel-prod_eu");
    json_t *d = doc(&r, 0);
    assert_str(at(d, "@timestamp", NULL), "2023-11-14T22:13:20.000000123Z");
    assert_json(at(d, "data_stream", NULL),
                "{\"type\":\"traces\",\"dataset\":\"orders_app.otel\",\"namespace\":\"prod_eu\"}");
    assert_str(at(d, "trace_id", NULL), "0102030405060708090a0b0c0d0e0fff");
    assert_str(at(d, "span_id", NULL), "a1a2a3a4a5a6a701");
    assert_str(at(d, "parent_span_id", NULL), "b1b2b3b4b5b6b7b8");
    assert_str(at(d, "trace_state", NULL), "vendor=x1");
    assert_str(at(d, "name", NULL), "GET /orders");
    assert_str(at(d, "kind", NULL), "Server");
    assert_int(at(d, "duration", NULL), 1500000);
    assert_json(at(d, "status", NULL), "{\"code\":\"Error\",\"message\":\"upstream timed out\"}");
    assert_int(at(d, "dropped_attributes_count", NULL), 3);
    assert_null(at(d, "dropped_events_count", NULL)); /* zero: left out */
    assert_json(at(d, "attributes", NULL),
                "{\"http.method\":\"GET\",\"http.status\":504,\"ratio\":0.25,\"ok\":false,\"tags\":[\"a\",\"b\"],"
                "\"nested\":{\"k\":1},\"raw\":\"aGkh\",\"bad.utf8\":\"a\xef\xbf\xbd" "b\"}");
    assert_true(json_is_real(at(d, "attributes", "ratio", NULL)));
    assert_json(at(d, "links", NULL),
                "[{\"trace_id\":\"c0000000000000000000000000000001\",\"span_id\":\"d000000000000002\","
                "\"trace_state\":\"lk=1\",\"attributes\":{\"link.n\":3}}]");
    assert_json(at(d, "resource", NULL), "{\"attributes\":{\"service.name\":\"shop\",\"host.cpus\":2}}");
    assert_json(at(d, "scope", NULL),
                "{\"schema_url\":\"https://opentelemetry.io/schemas/1.26.0\",\"name\":\"e2e-tracer\","
                "\"version\":\"1.2.3\",\"attributes\":{\"scope.attr\":true}}");

    /* the events: log documents of the span's data stream */
    assert_string_equal(index_of(&r, 1), "logs-orders_app.otel-prod_eu");
    json_t *e = doc(&r, 1);
    assert_str(at(e, "@timestamp", NULL), "2023-11-14T22:13:20.000001000Z");
    assert_str(at(e, "event_name", NULL), "cache.miss");
    assert_str(at(e, "trace_id", NULL), "0102030405060708090a0b0c0d0e0fff");
    assert_str(at(e, "span_id", NULL), "a1a2a3a4a5a6a701");
    assert_json(at(e, "attributes", NULL), "{\"cache.key\":\"orders:42\",\"event.name\":\"cache.miss\"}");
    assert_json(at(e, "data_stream", NULL),
                "{\"type\":\"logs\",\"dataset\":\"orders_app.otel\",\"namespace\":\"prod_eu\"}");
    assert_non_null(at(e, "resource", "attributes", NULL));
    json_t *e2 = doc(&r, 2);
    assert_null(at(e2, "event_name", NULL));
    assert_null(at(e2, "attributes", NULL));
    assert_str(at(e2, "@timestamp", NULL), "2023-11-14T22:13:20.000001001Z");
    rendered_free(&r);
}

static void test_span_kinds_and_statuses(void **state)
{
    (void)state;
    static const char *const kinds[] = {"Unspecified", "Internal", "Server", "Client", "Producer", "Consumer",
                                        "Unspecified"};
    Opentelemetry__Proto__Trace__V1__Span *spans[7];
    for (int i = 0; i < 7; i++) {
        spans[i] = span("s", (uint8_t)(i + 1));
        spans[i]->kind = i == 6 ? 99 : i; /* an unknown kind reads as unspecified */
        if (i < 3) {
            Opentelemetry__Proto__Trace__V1__Status *st = mk(sizeof(*st));
            opentelemetry__proto__trace__v1__status__init(st);
            st->code = i;
            spans[i]->status = st;
        }
    }
    spans[5]->end_time_unix_nano = spans[5]->start_time_unix_nano - 1; /* ends before it starts */
    spans[6]->parent_span_id = (ProtobufCBinaryData){8, (uint8_t *)"\0\0\0\0\0\0\0\0"}; /* all zero: no parent */
    rendered r;
    render(&r, &(es_doc_settings){"Cfg Set", "Team:A"}, OTLP_TRACES, traces(NULL, NULL, 7, spans));
    static const char *const codes[] = {"Unset", "Ok", "Error", "Unset", "Unset", "Unset", "Unset"};
    for (size_t i = 0; i < 7; i++) {
        /* no attribute names a data stream: the configured one, sanitized */
        assert_string_equal(index_of(&r, i), "traces-cfg_set.otel-team_a");
        assert_str(at(doc(&r, i), "kind", NULL), kinds[i]);
        char want[64];
        snprintf(want, sizeof(want), "{\"code\":\"%s\"}", codes[i]);
        assert_json(at(doc(&r, i), "status", NULL), want);
        assert_json(at(doc(&r, i), "resource", NULL), "{}");
        assert_json(at(doc(&r, i), "scope", NULL), "{\"schema_url\":\"https://opentelemetry.io/schemas/1.26.0\"}");
        assert_json(at(doc(&r, i), "links", NULL), "[]");
    }
    assert_int(at(doc(&r, 5), "duration", NULL), 0);
    assert_null(at(doc(&r, 6), "parent_span_id", NULL));
    rendered_free(&r);
}

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;
typedef Opentelemetry__Proto__Logs__V1__LogRecord log_t;

static log_t *log_rec(any_t *body)
{
    log_t *l = mk(sizeof(*l));
    opentelemetry__proto__logs__v1__log_record__init(l);
    l->body = body;
    l->time_unix_nano = T0 + 1;
    return l;
}

static logs_req *logs(Opentelemetry__Proto__Resource__V1__Resource *res,
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

/* The index one log record goes to, with data_stream.dataset / .namespace
 * set (or not: NULL) on the record, its scope and its resource. */
static void route_case(const char *rec_ds, const char *scope_ds, const char *res_ds, const char *rec_ns,
                       const char *scope_ns, const char *res_ns, const es_doc_settings *set, const char *want)
{
    const char *vals[3][2] = {{rec_ds, rec_ns}, {scope_ds, scope_ns}, {res_ds, res_ns}};
    kv_t **lists[3];
    size_t counts[3];
    for (int l = 0; l < 3; l++) {
        lists[l] = mk(3 * sizeof(kv_t *));
        counts[l] = 0;
        lists[l][counts[l]++] = kv("other", v_str("x"));
        if (vals[l][0] != NULL)
            lists[l][counts[l]++] = kv("data_stream.dataset", v_str(vals[l][0]));
        if (vals[l][1] != NULL)
            lists[l][counts[l]++] = kv("data_stream.namespace", v_str(vals[l][1]));
    }
    log_t *rec = log_rec(v_str("m"));
    rec->attributes = lists[0];
    rec->n_attributes = counts[0];
    rendered r;
    render(&r, set, OTLP_LOGS,
           logs(resource(counts[2], lists[2]), scope("s", "", counts[1], lists[1]), 1, &rec));
    assert_string_equal(index_of(&r, 0), want);
    /* the routing attributes are in data_stream, not among the attributes */
    assert_json(at(doc(&r, 0), "attributes", NULL), "{\"other\":\"x\"}");
    assert_json(at(doc(&r, 0), "resource", "attributes", NULL), "{\"other\":\"x\"}");
    assert_json(at(doc(&r, 0), "scope", "attributes", NULL), "{\"other\":\"x\"}");
    rendered_free(&r);
}

static void test_routing_levels(void **state)
{
    (void)state;
    es_doc_settings cfg = {"cfg", "cfgns"};
    route_case("rec", "scope", "res", "rns", "sns", "resns", &cfg, "logs-rec.otel-rns");
    route_case(NULL, "scope", "res", NULL, "sns", "resns", &cfg, "logs-scope.otel-sns");
    route_case(NULL, NULL, "res", NULL, NULL, "resns", &cfg, "logs-res.otel-resns");
    route_case(NULL, NULL, NULL, NULL, NULL, NULL, &cfg, "logs-cfg.otel-cfgns");
    route_case(NULL, NULL, NULL, NULL, NULL, NULL, &DEFAULTS, "logs-generic.otel-default");
    route_case("rec", NULL, NULL, NULL, NULL, "resns", &DEFAULTS, "logs-rec.otel-resns");
    route_case("", "", "res", NULL, "", NULL, &cfg, "logs-res.otel-cfgns"); /* empty names are no names */
    route_case("My-App/v2 *beta*", NULL, NULL, "Team #1: Ops", NULL, NULL, &cfg,
               "logs-my_app_v2__beta_.otel-team__1__ops");

    /* a non-string attribute names nothing */
    size_t n;
    log_t *rec = log_rec(v_str("m"));
    rec->attributes = kvs(&n, 1, kv("data_stream.dataset", v_int(5)));
    rec->n_attributes = n;
    rendered r;
    render(&r, &cfg, OTLP_LOGS, logs(NULL, NULL, 1, &rec));
    assert_string_equal(index_of(&r, 0), "logs-cfg.otel-cfgns");
    rendered_free(&r);
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[ES_DOC_NAME_MAX + 1], in[300];
    assert_int_equal(es_doc_sanitize("Foo-Bar/Baz*?\"<>| ,#:x", ES_DOC_NAME_MAX, out), 22);
    assert_string_equal(out, "foo_bar_baz__________x");
    memset(in, 'A', 150);
    in[150] = '\0';
    assert_int_equal(es_doc_sanitize(in, 95, out), 95);
    assert_int_equal(strspn(out, "a"), 95);
    /* cut on a character boundary: 60 x "é" is 120 bytes */
    in[0] = '\0';
    for (int i = 0; i < 60; i++)
        strcat(in, "\xc3\xa9");
    assert_int_equal(es_doc_sanitize(in, 95, out), 94);
    assert_int_equal(es_doc_sanitize("", 10, out), 0);

    /* long names: dataset with ".otel" and namespace each at most 100 bytes */
    size_t n;
    log_t *rec = log_rec(v_str("m"));
    memset(in, 'D', 150);
    in[150] = '\0';
    rec->attributes = kvs(&n, 2, kv("data_stream.dataset", v_str(in)), kv("data_stream.namespace", v_str(in)));
    rec->n_attributes = n;
    rendered r;
    render(&r, &DEFAULTS, OTLP_LOGS, logs(NULL, NULL, 1, &rec));
    const char *ds = json_string_value(at(doc(&r, 0), "data_stream", "dataset", NULL));
    const char *ns = json_string_value(at(doc(&r, 0), "data_stream", "namespace", NULL));
    assert_int_equal(strlen(ds), 100);
    assert_string_equal(ds + 95, ".otel");
    assert_int_equal(strlen(ns), 100);
    char want[256];
    snprintf(want, sizeof(want), "logs-%s-%s", ds, ns);
    assert_string_equal(index_of(&r, 0), want);
    rendered_free(&r);
}

static void test_log_documents(void **state)
{
    (void)state;
    size_t n;
    log_t *recs[6];
    recs[0] = log_rec(v_str("user logged in"));
    recs[0]->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    recs[0]->severity_text = "INFO";
    recs[0]->observed_time_unix_nano = T0 + 500000001;
    recs[0]->trace_id = BIN(TID);
    recs[0]->span_id = BIN(SID);
    recs[0]->attributes = kvs(&n, 2, kv("user.id", v_int(42)), kv("event.name", v_str("login")));
    recs[0]->n_attributes = n;
    recs[0]->dropped_attributes_count = 1;
    recs[1] = log_rec(v_map(3, kv("message", v_str("disk full")), kv("code", v_int(28)),
                            kv("nested", v_map(1, kv("free", v_double(0))))));
    recs[1]->time_unix_nano = 0; /* @timestamp falls back to observed */
    recs[1]->observed_time_unix_nano = T0 + 2000000000;
    recs[1]->event_name = "disk.alert";
    recs[2] = log_rec(v_array(2, v_str("x"), v_int(1)));
    recs[3] = log_rec(v_array(1, v_map(1, kv("a", v_int(1)))));
    recs[4] = log_rec(v_int(42));
    recs[5] = log_rec(NULL);
    rendered r;
    render(&r, &DEFAULTS, OTLP_LOGS, logs(NULL, scope("e2e-logger", "2.0.0", 0, NULL), 6, recs));
    assert_int_equal(r.t.n, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(r.t.v[i].items, 1);
        assert_int_equal(r.t.v[i].first, 1);
        assert_string_equal(index_of(&r, i), "logs-generic.otel-default");
    }
    json_t *d = doc(&r, 0);
    assert_str(at(d, "@timestamp", NULL), "2023-11-14T22:13:20.000000001Z");
    assert_str(at(d, "observed_timestamp", NULL), "2023-11-14T22:13:20.500000001Z");
    assert_int(at(d, "severity_number", NULL), 9);
    assert_str(at(d, "severity_text", NULL), "INFO");
    assert_str(at(d, "trace_id", NULL), "0102030405060708090a0b0c0d0e0fff");
    assert_str(at(d, "span_id", NULL), "a1a2a3a4a5a6a7a8");
    assert_str(at(d, "event_name", NULL), "login");
    assert_int(at(d, "dropped_attributes_count", NULL), 1);
    assert_json(at(d, "body", NULL), "{\"text\":\"user logged in\"}");
    assert_json(at(d, "scope", NULL), "{\"name\":\"e2e-logger\",\"version\":\"2.0.0\"}");
    d = doc(&r, 1);
    assert_str(at(d, "@timestamp", NULL), "2023-11-14T22:13:22.000000000Z");
    assert_str(at(d, "event_name", NULL), "disk.alert");
    assert_json(at(d, "body", NULL),
                "{\"structured\":{\"message\":\"disk full\",\"code\":28,\"nested\":{\"free\":0.0}}}");
    assert_null(at(d, "severity_number", NULL));
    assert_null(at(d, "trace_id", NULL));
    assert_json(at(doc(&r, 2), "body", NULL), "{\"structured\":{\"value\":[\"x\",1]}}");
    assert_json(at(doc(&r, 3), "body", NULL), "{\"structured\":[{\"a\":1}]}");
    assert_json(at(doc(&r, 4), "body", NULL), "{\"structured\":{\"value\":42}}");
    assert_null(at(doc(&r, 5), "body", NULL));
    assert_null(at(doc(&r, 5), "observed_timestamp", NULL));
    rendered_free(&r);
}

/* ---- metrics ---- */

typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint number_t;

static metric_t *metric(const char *name, const char *unit)
{
    metric_t *m = mk(sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = (char *)name;
    m->unit = (char *)unit;
    return m;
}

/* kind 1: an integer point, 0: a double, -1: no value */
static number_t *number(int kind, double d)
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

static metric_t *gauge(const char *name, number_t *p)
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

static metric_t *sum(const char *name, number_t *p, int monotonic, int cumulative)
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

static metric_t *histogram(const char *name, size_t nb, const double *bounds, size_t nc, const uint64_t *counts,
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

static metric_t *exp_histogram(int32_t scale, uint64_t zero, int32_t pos_off, size_t np, const uint64_t *pos,
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

static metric_t *summary(const char *name, uint64_t count, double total)
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

static metrics_req *metrics(Opentelemetry__Proto__Resource__V1__Resource *res, size_t n, metric_t **ms)
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

static const char *template_of(const rendered *r, size_t i, const char *field)
{
    json_t *a = json_array_get(r->lines, 2 * i);
    return json_string_value(at(a, "create", "dynamic_templates", field, NULL));
}

static void test_metric_documents(void **state)
{
    (void)state;
    static const double bounds[] = {1, 5, 10};
    static const uint64_t counts[] = {1, 2, 0, 3}, bad_counts[] = {1, 2};
    static const uint64_t pos[] = {1, 2}, neg[] = {3};
    size_t n;
    number_t *temp = number(0, 21.5);
    temp->attributes = kvs(&n, 2, kv("room", v_str("a")), kv("where", v_map(1, kv("floor", v_int(2)))));
    temp->n_attributes = n;
    number_t *reqs = number(1, 8);
    reqs->start_time_unix_nano = T0 - 60000000000ull;
    metric_t *ms[] = {
        gauge("e2e.temperature", temp),
        gauge("e2e.int.gauge", number(1, 7)),
        sum("e2e.requests", reqs, 1, 1),
        sum("e2e.queue.depth", number(0, 3.25), 0, 0),
        sum("e2e.delta.counter", number(1, 2), 1, 0),
        histogram("e2e.latency", 3, bounds, 4, counts, 6, 140),
        histogram("e2e.nobounds", 0, NULL, 0, NULL, 4, 10),
        summary("e2e.summary", 5, 12.5),
        exp_histogram(0, 1, 0, 2, pos, 0, 1, neg),
        gauge("e2e.novalue", number(-1, 0)),                       /* left out */
        histogram("e2e.broken", 3, bounds, 2, bad_counts, 3, 1),   /* left out */
        gauge("e2e.nan", number(0, NAN)),                          /* left out */
    };
    size_t nr;
    kv_t **ra = kvs(&nr, 2, kv("service.name", v_str("shop")), kv("k8s", v_map(1, kv("pod", v_str("p-1")))));
    rendered r;
    render(&r, &DEFAULTS, OTLP_METRICS, metrics(resource(nr, ra), 12, ms));
    assert_int_equal(r.t.n, 9);
    assert_int_equal(r.rep.dropped, 3);
    assert_non_null(strstr(r.rep.reason, "e2e.novalue"));
    assert_non_null(strstr(r.rep.reason, "without a value"));
    for (size_t i = 0; i < r.t.n; i++) {
        assert_int_equal(r.t.v[i].items, 1);
        assert_string_equal(index_of(&r, i), "metrics-generic.otel-default");
        assert_json(at(doc(&r, i), "resource", NULL),
                    "{\"attributes\":{\"service.name\":\"shop\",\"k8s\":\"{\\\"pod\\\":\\\"p-1\\\"}\"}}");
        assert_str(at(doc(&r, i), "scope", "name", NULL), "e2e-meter");
        assert_int_equal(json_object_size(at(doc(&r, i), "metrics", NULL)), 1);
        assert_true(json_is_string(at(doc(&r, i), "_metric_names_hash", NULL)));
    }
    json_t *d = doc(&r, 0);
    assert_str(at(d, "@timestamp", NULL), "2023-11-14T22:13:20.000000007Z");
    assert_null(at(d, "start_timestamp", NULL));
    assert_str(at(d, "unit", NULL), "Cel");
    assert_json(at(d, "metrics", NULL), "{\"e2e.temperature\":21.5}");
    assert_json(at(d, "attributes", NULL), "{\"room\":\"a\",\"where\":\"{\\\"floor\\\":2}\"}");
    assert_string_equal(template_of(&r, 0, "metrics.e2e.temperature"), "gauge_double");
    assert_string_equal(template_of(&r, 1, "metrics.e2e.int.gauge"), "gauge_long");
    assert_json(at(doc(&r, 1), "metrics", NULL), "{\"e2e.int.gauge\":7}");
    assert_string_equal(template_of(&r, 2, "metrics.e2e.requests"), "counter_long");
    assert_str(at(doc(&r, 2), "start_timestamp", NULL), "2023-11-14T22:12:20.000000000Z");
    assert_str(at(doc(&r, 2), "unit", NULL), "{request}");
    assert_string_equal(template_of(&r, 3, "metrics.e2e.queue.depth"), "gauge_double");
    assert_string_equal(template_of(&r, 4, "metrics.e2e.delta.counter"), "gauge_long");
    assert_string_equal(template_of(&r, 5, "metrics.e2e.latency"), "histogram");
    assert_json(at(doc(&r, 5), "metrics", NULL), "{\"e2e.latency\":{\"counts\":[1,2,3],\"values\":[0.5,3.0,10.0]}}");
    assert_json(at(doc(&r, 6), "metrics", NULL), "{\"e2e.nobounds\":{\"counts\":[4],\"values\":[2.5]}}");
    assert_string_equal(template_of(&r, 7, "metrics.e2e.summary"), "summary");
    assert_json(at(doc(&r, 7), "metrics", NULL), "{\"e2e.summary\":{\"sum\":12.5,\"value_count\":5}}");
    assert_null(at(doc(&r, 7), "unit", NULL));
    /* scale 0: buckets [1,2) and [2,4) at 1.5 and 3, the negative [-2,-1) at -1.5 */
    assert_string_equal(template_of(&r, 8, "metrics.e2e.exp"), "histogram");
    assert_json(at(doc(&r, 8), "metrics", NULL),
                "{\"e2e.exp\":{\"counts\":[3,1,1,2],\"values\":[-1.5,0.0,1.5,3.0]}}");
    /* one metric per document: different names, different hashes */
    assert_string_not_equal(json_string_value(at(doc(&r, 0), "_metric_names_hash", NULL)),
                            json_string_value(at(doc(&r, 1), "_metric_names_hash", NULL)));
    rendered_free(&r);
}

static void test_exp_histogram_scales(void **state)
{
    (void)state;
    static const uint64_t one[] = {1}, two[] = {2, 0, 5};
    /* scale 1: base sqrt(2); bucket 2 is [2, 2.83) */
    rendered r;
    metric_t *m1[] = {exp_histogram(1, 0, 2, 1, one, 0, 0, NULL)};
    render(&r, &DEFAULTS, OTLP_METRICS, metrics(NULL, 1, m1));
    double v = json_real_value(json_array_get(at(doc(&r, 0), "metrics", "e2e.exp", "values", NULL), 0));
    assert_true(v > 2.414 && v < 2.415);
    rendered_free(&r);
    /* scale -1: base 4; offset -1 gives [0.25, 1), then [4, 16) */
    metric_t *m2[] = {exp_histogram(-1, 0, -1, 3, two, 0, 0, NULL)};
    render(&r, &DEFAULTS, OTLP_METRICS, metrics(NULL, 1, m2));
    assert_json(at(doc(&r, 0), "metrics", NULL), "{\"e2e.exp\":{\"counts\":[2,5],\"values\":[0.625,10.0]}}");
    rendered_free(&r);
    /* out of range scale, and buckets beyond double range: left out */
    metric_t *m3[] = {exp_histogram(21, 0, 0, 1, one, 0, 0, NULL), exp_histogram(0, 0, 2000, 1, one, 0, 0, NULL)};
    render(&r, &DEFAULTS, OTLP_METRICS, metrics(NULL, 2, m3));
    assert_int_equal(r.t.n, 0);
    assert_int_equal(r.rep.dropped, 2);
    assert_non_null(strstr(r.rep.reason, "scale"));
    rendered_free(&r);
}

/* ---- bulk responses ---- */

static int parse(const char *body, size_t n_docs, uint8_t *out, es_bulk_summary *sum, char *err, size_t errlen)
{
    return es_bulk_parse((const uint8_t *)body, strlen(body), n_docs, out, sum, err, errlen);
}

#define ITEM(status) "{\"create\":{\"_index\":\"logs-generic.otel-default\",\"status\":" #status "}}"
#define ITEM_ERR(status, type, reason) \
    "{\"create\":{\"status\":" #status ",\"error\":{\"type\":\"" type "\",\"reason\":\"" reason "\"}}}"

static const char MIXED[] =
    "{\"took\":30,\"errors\":true,\"items\":[" ITEM(201) ","
    ITEM_ERR(429, "es_rejected_execution_exception", "rejected execution of coordinating operation") ","
    ITEM_ERR(400, "mapper_parsing_exception", "failed to parse field [attributes.n] of type [long]") ","
    ITEM_ERR(409, "version_conflict_engine_exception", "document already exists") ","
    ITEM_ERR(503, "unavailable_shards_exception", "primary shard is not active") ","
    ITEM_ERR(404, "index_not_found_exception", "no such index") "]}";

static void test_bulk_parse(void **state)
{
    (void)state;
    uint8_t out[8];
    es_bulk_summary sum;
    char err[200];

    /* all delivered: "errors": false is enough, items or not */
    assert_int_equal(parse("{\"errors\":false,\"took\":3,\"items\":[" ITEM(201) "," ITEM(201) "]}", 2, out, &sum,
                           err, sizeof(err)), 0);
    assert_int_equal(sum.ok, 2);
    assert_int_equal(sum.errors, 0);
    memset(out, 9, sizeof(out));
    assert_int_equal(parse("{\"errors\":false}", 3, out, &sum, err, sizeof(err)), 0);
    assert_int_equal(out[0] | out[1] | out[2], ES_BULK_OK);

    /* mixed outcomes, by position */
    assert_int_equal(parse(MIXED, 6, out, &sum, err, sizeof(err)), 0);
    static const uint8_t want[] = {ES_BULK_OK, ES_BULK_RETRY, ES_BULK_REJECT, ES_BULK_OK, ES_BULK_RETRY,
                                   ES_BULK_REJECT};
    assert_memory_equal(out, want, 6);
    assert_int_equal(sum.ok, 2);
    assert_int_equal(sum.retry, 2);
    assert_int_equal(sum.reject, 2);
    assert_int_equal(sum.truncated, 0);
    assert_string_equal(sum.reason,
                        "400 mapper_parsing_exception: failed to parse field [attributes.n] of type [long]");
    assert_string_equal(sum.retry_reason,
                        "429 es_rejected_execution_exception: rejected execution of coordinating operation");

    /* "errors" absent: the items decide; items without a status are refused */
    assert_int_equal(parse("{\"items\":[" ITEM(200) ",{\"create\":{}},{\"index\":{\"status\":\"201\"}},7,"
                           "{\"a\":{\"status\":201},\"b\":{}}]}", 5, out, &sum, err, sizeof(err)), 0);
    static const uint8_t want2[] = {ES_BULK_OK, ES_BULK_REJECT, ES_BULK_REJECT, ES_BULK_REJECT, ES_BULK_REJECT};
    assert_memory_equal(out, want2, 5);
    assert_string_equal(sum.reason, "malformed bulk item");
    assert_int_equal(sum.errors, -1);

    /* items that cannot be matched with the documents */
    assert_int_equal(parse("{\"errors\":true,\"items\":[" ITEM(201) "]}", 2, out, &sum, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "1 items for 2 documents"));
    assert_int_equal(parse("{\"errors\":true,\"items\":[" ITEM(201) "," ITEM(201) "," ITEM(201) "]}", 2, out, &sum,
                           err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more items"));
    assert_int_equal(parse("{\"errors\":true}", 2, out, &sum, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no items"));

    /* not a bulk response at all */
    static const char *const bad[] = {"", "<html>502 Bad Gateway</html>", "[]", "{}", "null", "{\"items\":{}}",
                                      "{\"errors\":true,\"items\":[" ITEM(201) "x]}", "{\"errors\" true}",
                                      "{\"items\":[" ITEM(201) "],}", "{1:2}", "{\"errors\":true,\"items\":[,]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], 1, out, &sum, err, sizeof(err)) != -1 || err[0] == '\0')
            fail_msg("accepted: %s", bad[i]);
}

/* A body cut anywhere (the exporter keeps 64 KiB of a reply): the items
 * before the cut keep their outcome, the documents after it are sent again. */
static void test_bulk_truncated(void **state)
{
    (void)state;
    uint8_t full[6], out[6];
    es_bulk_summary sum;
    char err[200];
    assert_int_equal(parse(MIXED, 6, full, &sum, err, sizeof(err)), 0);
    size_t len = strlen(MIXED);
    for (size_t cut = 0; cut < len; cut++) {
        if (es_bulk_parse((const uint8_t *)MIXED, cut, 6, out, &sum, err, sizeof(err)) != 0)
            continue; /* cut before the object opened, or inside a key: unusable */
        assert_true(sum.truncated);
        for (size_t i = 0; i < 6; i++)
            assert_int_equal(out[i], i < sum.items ? full[i] : ES_BULK_RETRY);
    }
    /* cut after two items: 1 ok, 1 retried, 4 unknown */
    const char *third = strstr(MIXED, "{\"create\":{\"status\":400");
    assert_non_null(third);
    assert_int_equal(es_bulk_parse((const uint8_t *)MIXED, (size_t)(third - MIXED) + 30, 6, out, &sum, err,
                                   sizeof(err)), 0);
    assert_int_equal(sum.items, 2);
    assert_int_equal(sum.ok, 1);
    assert_int_equal(sum.retry, 5);
    /* cut inside a UTF-8 sequence of a reason */
    static const char utf8[] = "{\"errors\":true,\"items\":[" ITEM(201) ",{\"create\":{\"status\":400,\"error\":"
                               "{\"type\":\"x\",\"reason\":\"gr\xc3\xbc\xc3\xbc\"}}}]}";
    const char *u = strstr(utf8, "\xc3\xbc");
    assert_int_equal(es_bulk_parse((const uint8_t *)utf8, (size_t)(u - utf8) + 1, 2, out, &sum, err, sizeof(err)), 0);
    assert_int_equal(out[0], ES_BULK_OK);
    assert_int_equal(out[1], ES_BULK_RETRY);
    assert_non_null(strstr(sum.retry_reason, "cut short"));
}

static void test_bulk_error_reason(void **state)
{
    (void)state;
    char r[200];
    const char *b = "{\"error\":{\"root_cause\":[],\"type\":\"security_exception\",\"reason\":\"missing "
                    "authentication credentials\"},\"status\":401}";
    es_bulk_error_reason((const uint8_t *)b, strlen(b), r, sizeof(r));
    assert_string_equal(r, "security_exception: missing authentication credentials");
    b = "{\"error\":\"Incorrect HTTP method for uri [/_bulk]\",\"status\":405}";
    es_bulk_error_reason((const uint8_t *)b, strlen(b), r, sizeof(r));
    assert_string_equal(r, "Incorrect HTTP method for uri [/_bulk]");
    b = "Bad Gateway";
    es_bulk_error_reason((const uint8_t *)b, strlen(b), r, sizeof(r));
    assert_string_equal(r, "");
    assert_int_equal(es_bulk_item_outcome(201), ES_BULK_OK);
    assert_int_equal(es_bulk_item_outcome(409), ES_BULK_OK);
    assert_int_equal(es_bulk_item_outcome(504), ES_BULK_RETRY);
    assert_int_equal(es_bulk_item_outcome(500), ES_BULK_REJECT);
}

/* ---- the exporter type: prepare, classify, partial retries ---- */

typedef struct type_fixture {
    config *cfg;
    void *st;
    uint8_t pb[8192];
    export_batch b;
    export_http h;
    buf retry;
    char msg[256];
    export_result res;
} type_fixture;

static void type_up(type_fixture *f, const char *keys)
{
    char yaml[512], err[512];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\nbackends:\n  x: {type: elasticsearch, endpoint: "
             "\"http://es:9200/\"%s}\n",
             keys);
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err)), 0);
    f->st = exporter_elasticsearch.configure(&f->cfg->backends[0], err, sizeof(err));
    if (f->st == NULL)
        fail_msg("%s", err);
}

static void type_down(type_fixture *f)
{
    curl_slist_free_all(f->h.headers);
    curl_slist_free_all(f->h.defaults);
    buf_free(&f->h.url);
    buf_free(&f->h.body);
    buf_free(&f->retry);
    exporter_elasticsearch.destroy(f->st);
    config_free(f->cfg);
}

/* prepare for a packed request of `items` items. */
static void type_prepare(type_fixture *f, otlp_signal sig, const ProtobufCMessage *msg, uint64_t items)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    assert_true(len <= sizeof(f->pb));
    protobuf_c_message_pack(msg, f->pb);
    f->b = (export_batch){.signal = sig, .tenant = "", .items = items, .body = f->pb, .body_len = len};
    curl_slist_free_all(f->h.headers);
    curl_slist_free_all(f->h.defaults);
    buf_free(&f->h.url);
    buf_free(&f->h.body);
    f->h = (export_http){.url = BUF_INIT, .body = BUF_INIT, .compress = 1};
    char err[256];
    if (exporter_elasticsearch.prepare(f->st, &f->b, &f->h, err, sizeof(err)) != 0)
        fail_msg("prepare: %s", err);
}

static export_outcome type_classify(type_fixture *f, long status, const char *body)
{
    export_response r = {.http_status = status, .error = status ? NULL : "Connection refused",
                         .body = (const uint8_t *)body, .body_len = strlen(body), .grpc_status = -1,
                         .request_body = (const uint8_t *)f->h.body.data, .request_len = f->h.body.len};
    buf_clear(&f->retry);
    f->msg[0] = '\0';
    f->res = (export_result){.retry_body = &f->retry, .msg = f->msg, .msglen = sizeof(f->msg)};
    return exporter_elasticsearch.classify(f->st, &f->b, &r, &f->res);
}

/* What the exporter does with a retry body: it is what the next attempt sends. */
static void type_take_retry(type_fixture *f)
{
    buf t = f->h.body;
    f->h.body = f->retry;
    f->retry = t;
    f->b.items = f->res.retry_items;
}

/* got holds exactly documents [from, to) of body (two lines each). */
static void assert_docs(const buf *got, const buf *body, size_t from, size_t to)
{
    size_t line = 0, a = 0, z = body->len;
    for (size_t i = 0; i < body->len; i++) {
        if (body->data[i] != '\n')
            continue;
        line++;
        if (line == 2 * from)
            a = i + 1;
        if (line == 2 * to)
            z = i + 1;
    }
    assert_int_equal(got->len, z - a);
    assert_memory_equal(got->data, body->data + a, z - a);
}

static int has_header(const struct curl_slist *l, const char *line)
{
    for (; l != NULL; l = l->next)
        if (strcmp(l->data, line) == 0)
            return 1;
    return 0;
}

/* Three spans; the second has an event: documents s0, s1, e1, s2. */
static trace_req *three_spans(void)
{
    Opentelemetry__Proto__Trace__V1__Span **spans = mk(3 * sizeof(void *));
    for (int i = 0; i < 3; i++)
        spans[i] = span(i == 0 ? "s0" : i == 1 ? "s1" : "s2", (uint8_t)(i + 1));
    Opentelemetry__Proto__Trace__V1__Span__Event *ev = mk(sizeof(*ev));
    opentelemetry__proto__trace__v1__span__event__init(ev);
    ev->name = "e1";
    ev->time_unix_nano = T0;
    spans[1]->events = mk(sizeof(void *));
    spans[1]->events[0] = ev;
    spans[1]->n_events = 1;
    return traces(NULL, NULL, 3, spans);
}

#define BULK(...) "{\"errors\":true,\"items\":[" __VA_ARGS__ "]}"
#define E400 ITEM_ERR(400, "mapper_parsing_exception", "failed to parse field [x]")
#define E429 ITEM_ERR(429, "es_rejected_execution_exception", "queue full")

static void test_prepare_request(void **state)
{
    (void)state;
    type_fixture f = {0};
    type_up(&f, ", api_key: \"a2V5OnNlY3JldA==\"");
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    static const char url[] =
        "http://es:9200/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason";
    assert_int_equal(f.h.url.len, strlen(url));
    assert_memory_equal(f.h.url.data, url, strlen(url));
    assert_true(has_header(f.h.headers, "Content-Type: application/x-ndjson"));
    /* a default: a tenant's own Authorization header replaces it */
    assert_true(has_header(f.h.defaults, "Authorization: ApiKey a2V5OnNlY3JldA=="));
    assert_int_equal(f.h.compress, 1); /* the exporter gzips as configured */
    size_t lines = 0;
    for (size_t i = 0; i < f.h.body.len; i++)
        lines += f.h.body.data[i] == '\n';
    assert_int_equal(lines, 8);
    type_down(&f);

    memset(&f, 0, sizeof(f));
    type_up(&f, ", user: elastic, password: changeme");
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    assert_true(has_header(f.h.defaults, "Authorization: Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="));
    type_down(&f);

    memset(&f, 0, sizeof(f));
    type_up(&f, "");
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    assert_null(f.h.defaults);
    type_down(&f);
}

static void test_partial_retry(void **state)
{
    (void)state;
    type_fixture f = {0};
    type_up(&f, "");
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    buf first = BUF_INIT;
    buf_append(&first, f.h.body.data, f.h.body.len);

    /* s0 ok, s1 429, e1 ok, s2 400: s1 alone again, s2 refused */
    assert_int_equal(type_classify(&f, 200, BULK(ITEM(201) "," E429 "," ITEM(201) "," E400)), EXPORT_RETRY);
    assert_int_equal(f.res.rejected, 1);
    assert_int_equal(f.res.retry_items, 1);
    assert_docs(&f.retry, &first, 1, 2);
    assert_non_null(strstr(f.msg, "400 mapper_parsing_exception: failed to parse field [x]"));
    type_take_retry(&f);

    /* the next answer is about the retry body: 429 again, then created */
    assert_int_equal(type_classify(&f, 200, BULK(E429)), EXPORT_RETRY);
    assert_int_equal(f.res.retry_items, 1);
    assert_int_equal(f.res.rejected, 0);
    assert_docs(&f.retry, &first, 1, 2);
    type_take_retry(&f);
    assert_int_equal(type_classify(&f, 200, "{\"errors\":false,\"items\":[" ITEM(201) "]}"), EXPORT_OK);
    assert_int_equal(f.res.rejected, 0);

    /* only the event again: its span is delivered once the event is */
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    assert_int_equal(type_classify(&f, 200, BULK(ITEM(201) "," ITEM(201) "," E429 "," ITEM(201))), EXPORT_RETRY);
    assert_int_equal(f.res.retry_items, 1);
    assert_int_equal(f.res.rejected, 0);
    assert_docs(&f.retry, &first, 2, 3);
    type_take_retry(&f);
    assert_int_equal(type_classify(&f, 200, BULK(ITEM(409))), EXPORT_OK); /* already there: delivered */

    /* the event refused: its span is not whole, it counts as rejected */
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    assert_int_equal(type_classify(&f, 200, BULK(ITEM(201) "," ITEM(201) "," E400 "," ITEM(201))), EXPORT_OK);
    assert_int_equal(f.res.rejected, 1);
    assert_int_equal(f.retry.len, 0);

    /* the span retried while its event was refused: resent, but not counted twice */
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    assert_int_equal(type_classify(&f, 200, BULK(ITEM(201) "," E429 "," E400 "," ITEM(201))), EXPORT_RETRY);
    assert_int_equal(f.res.rejected, 1);
    assert_int_equal(f.res.retry_items, 0);
    assert_docs(&f.retry, &first, 1, 2);

    /* a reply cut short: what was read counts, the rest is sent again */
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    assert_int_equal(type_classify(&f, 200, "{\"errors\":true,\"items\":[" ITEM(201) "," E400 ",{\"cre"), EXPORT_RETRY);
    assert_int_equal(f.res.rejected, 1);
    assert_int_equal(f.res.retry_items, 1);
    assert_docs(&f.retry, &first, 2, 4);
    buf_free(&first);
    type_down(&f);
}

static void test_whole_request_statuses(void **state)
{
    (void)state;
    type_fixture f = {0};
    type_up(&f, "");
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    static const struct {
        long status;
        const char *body, *msg;
        export_outcome want;
    } cases[] = {
        {0, "", "Connection refused", EXPORT_RETRY},
        {429, "{\"error\":{\"type\":\"circuit_breaking_exception\",\"reason\":\"too much\"}}",
         "HTTP 429: circuit_breaking_exception: too much", EXPORT_RETRY},
        {502, "bad gateway", "HTTP 502", EXPORT_RETRY},
        {503, "{\"error\":{\"type\":\"unavailable_shards_exception\",\"reason\":\"no shards\"}}",
         "HTTP 503: unavailable_shards_exception: no shards", EXPORT_RETRY},
        {504, "", "HTTP 504", EXPORT_RETRY},
        {413, "", "HTTP 413: request larger than Elasticsearch's http.max_content_length", EXPORT_FAIL},
        {400, "{\"error\":{\"type\":\"illegal_argument_exception\",\"reason\":\"Malformed action/metadata line\"}}",
         "HTTP 400: illegal_argument_exception: Malformed action/metadata line", EXPORT_FAIL},
        {401, "{\"error\":{\"type\":\"security_exception\",\"reason\":\"unable to authenticate\"}}",
         "HTTP 401: security_exception: unable to authenticate", EXPORT_FAIL},
        {500, "", "HTTP 500", EXPORT_FAIL},
        {200, "<html>hello</html>", "HTTP 200 with an unusable bulk response: not a JSON object", EXPORT_FAIL},
        {200, BULK(ITEM(201)), "1 items for 4 documents", EXPORT_FAIL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (type_classify(&f, cases[i].status, cases[i].body) != cases[i].want)
            fail_msg("case %zu (HTTP %ld)", i, cases[i].status);
        assert_int_equal(f.retry.len, 0); /* never a partial retry */
        assert_int_equal(f.res.rejected, 0);
        if (strstr(f.msg, cases[i].msg) == NULL)
            fail_msg("case %zu: msg \"%s\", want \"%s\"", i, f.msg, cases[i].msg);
    }
    type_down(&f);
}

/* Points prepare could not represent count as rejected, once per batch. */
static void test_render_rejections_reported_once(void **state)
{
    (void)state;
    type_fixture f = {0};
    type_up(&f, ", dataset: app");
    metric_t **ms = mk(2 * sizeof(void *));
    ms[0] = gauge("ok", number(0, 1.5));
    ms[1] = gauge("empty", number(-1, 0));
    type_prepare(&f, OTLP_METRICS, &metrics(NULL, 2, ms)->base, 2);
    assert_int_equal(type_classify(&f, 503, ""), EXPORT_RETRY);
    assert_int_equal(f.res.rejected, 1);
    assert_non_null(strstr(f.msg, "metric \"empty\": number data point without a value"));
    assert_non_null(strstr(f.msg, "HTTP 503"));
    assert_int_equal(type_classify(&f, 200, "{\"errors\":false}"), EXPORT_OK);
    assert_int_equal(f.res.rejected, 0);
    assert_non_null(strstr(f.h.body.data, "\"_index\":\"metrics-app.otel-default\""));
    /* nothing left to send: prepare fails with the reason */
    ms[0] = gauge("empty", number(-1, 0));
    size_t len = protobuf_c_message_pack(&metrics(NULL, 1, ms)->base, f.pb);
    export_batch b = {.signal = OTLP_METRICS, .tenant = "", .items = 1, .body = f.pb, .body_len = len};
    export_http h = {.url = BUF_INIT, .body = BUF_INIT, .compress = 1};
    char err[256];
    assert_int_equal(exporter_elasticsearch.prepare(f.st, &b, &h, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "without a value"));
    curl_slist_free_all(h.headers);
    buf_free(&h.url);
    buf_free(&h.body);
    type_down(&f);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const backend_error_case cases[] = {
        {"api_key: k, user: u, password: p", "backends.x.api_key: use either api_key or user and password, not both"},
        {"user: u", "backends.x.user: user and password go together"},
        {"password: p", "backends.x.password: user and password go together"},
        {"user: \"a:b\", password: p", "backends.x.user: must not contain ':'"},
        {"api_key: \"\"", "backends.x.api_key: expected a non-empty string"},
        {"api_key: k, headers: {Authorization: \"Bearer t\"}",
         "backends.x.headers.Authorization: conflicts with api_key: configure one way to authenticate"},
        {"user: u, password: p, headers: {authorization: \"Bearer t\"}",
         "backends.x.headers.authorization: conflicts with user and password"},
        {"compression: zstd", "backends.x.compression: elasticsearch supports none or gzip"},
        {"dataset: \"\"", "backends.x.dataset: expected a non-empty string"},
        {"namespace: \"\"", "backends.x.namespace: expected a non-empty string"},
        {"index: logs", "backends.x.index: unknown key"},
    };
    expect_backend_errors("type: elasticsearch, endpoint: \"http://es:9200\"", cases);
    /* a backend without credentials may carry its own header */
    const char *yaml = TEST_LISTENERS "backends:\n"
                                      "  x: {type: elasticsearch, endpoint: \"http://es:9200\",\n"
                                      "      headers: {Authorization: \"Bearer t\"}}\n";
    config *cfg;
    backend *b = expect_backend_ok(yaml, &cfg);
    b->ops->destroy(b);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_span_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_span_kinds_and_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sanitize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exp_histogram_scales, setup, teardown),
        cmocka_unit_test(test_bulk_parse),
        cmocka_unit_test(test_bulk_truncated),
        cmocka_unit_test(test_bulk_error_reason),
        cmocka_unit_test_setup_teardown(test_prepare_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_request_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_rejections_reported_once, setup, teardown),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
