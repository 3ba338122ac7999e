/* es_doc: OTLP messages built in C (es_build.h) rendered to _bulk NDJSON
 * and read back with jansson: documents per signal, data stream routing
 * and sanitizing, metric field types. */
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

#include "es_build.h"
#include "es_doc.h"
#include "es_xxh64.h"
#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "trace_service.pb-c.h"

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

    /* dataset from the span, namespace from the resource, both sanitized ('-'
     * stays in a namespace) */
    assert_string_equal(index_of(&r, 0), "traces-orders_app.otel-prod-eu");
    json_t *d = doc(&r, 0);
    assert_str(at(d, "@timestamp", NULL), "2023-11-14T22:13:20.000000123Z");
    assert_json(at(d, "data_stream", NULL),
                "{\"type\":\"traces\",\"dataset\":\"orders_app.otel\",\"namespace\":\"prod-eu\"}");
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
                "\"nested\":{\"k\":1},\"raw\":\"686921\",\"bad.utf8\":\"a\xef\xbf\xbd" "b\"}");
    assert_true(json_is_real(at(d, "attributes", "ratio", NULL)));
    assert_json(at(d, "links", NULL),
                "[{\"trace_id\":\"c0000000000000000000000000000001\",\"span_id\":\"d000000000000002\","
                "\"trace_state\":\"lk=1\",\"attributes\":{\"link.n\":3}}]");
    assert_json(at(d, "resource", NULL), "{\"attributes\":{\"service.name\":\"shop\",\"host.cpus\":2}}");
    assert_json(at(d, "scope", NULL),
                "{\"schema_url\":\"https://opentelemetry.io/schemas/1.26.0\",\"name\":\"e2e-tracer\","
                "\"version\":\"1.2.3\",\"attributes\":{\"scope.attr\":true}}");

    /* the events: log documents, routed as Elastic routes them: by the
     * event's attributes, then the scope's and resource's, not the span's */
    assert_string_equal(index_of(&r, 1), "logs-generic.otel-prod-eu");
    json_t *e = doc(&r, 1);
    assert_str(at(e, "@timestamp", NULL), "2023-11-14T22:13:20.000001000Z");
    assert_str(at(e, "event_name", NULL), "cache.miss");
    assert_str(at(e, "trace_id", NULL), "0102030405060708090a0b0c0d0e0fff");
    assert_str(at(e, "span_id", NULL), "a1a2a3a4a5a6a701");
    assert_json(at(e, "attributes", NULL), "{\"cache.key\":\"orders:42\",\"event.name\":\"cache.miss\"}");
    assert_json(at(e, "data_stream", NULL),
                "{\"type\":\"logs\",\"dataset\":\"generic.otel\",\"namespace\":\"prod-eu\"}");
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
    route_case("My-App/v2 *beta*", NULL, NULL, "Team #1: Ops-EU", NULL, NULL, &cfg,
               "logs-my_app_v2__beta_.otel-team__1__ops-eu");

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

/* The index of a log record of a scope named scope_name, with rec_ds as its
 * data_stream.dataset (NULL: none) and the dataset setting cfg_ds. */
static void receiver_case(const char *scope_name, const char *rec_ds, const char *cfg_ds, const char *want)
{
    size_t n;
    log_t *rec = log_rec(v_str("m"));
    if (rec_ds != NULL) {
        rec->attributes = kvs(&n, 1, kv("data_stream.dataset", v_str(rec_ds)));
        rec->n_attributes = n;
    }
    es_doc_settings set = {cfg_ds, NULL};
    rendered r;
    render(&r, &set, OTLP_LOGS, logs(NULL, scope(scope_name, "", 0, NULL), 1, &rec));
    if (strcmp(index_of(&r, 0), want) != 0)
        fail_msg("scope \"%s\": index %s, want %s", scope_name, index_of(&r, 0), want);
    rendered_free(&r);
}

/* Routing as Elastic's exporter routes: elasticsearch.index first, then
 * data_stream.*, then the receiver a scope name names, then the defaults. */
static void test_routing_as_upstream(void **state)
{
    (void)state;
    static const char host[] =
        "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/"
        "cpuscraper";
    receiver_case(host, NULL, NULL, "logs-hostmetricsreceiver.otel-default");
    receiver_case(host, NULL, "cfg", "logs-hostmetricsreceiver.otel-default"); /* before the setting */
    receiver_case(host, "mine", NULL, "logs-mine.otel-default");                 /* after the attribute */
    receiver_case("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kubeletstatsreceiver", NULL,
                  NULL, "logs-kubeletstatsreceiver.otel-default");
    receiver_case("x/receiver/Kafka_Receiver/y", NULL, NULL, "logs-generic.otel-default"); /* case matters */
    receiver_case("x/receiver/kafkareceiverv2receiver2/y", NULL, NULL, "logs-kafkareceiverv2receiver.otel-default");
    receiver_case("x/receiver/foo/receiver/barreceiver", NULL, NULL, "logs-barreceiver.otel-default");
    receiver_case("receiver/hostmetricsreceiver", NULL, "cfg", "logs-cfg.otel-default"); /* no leading slash */
    receiver_case("x/receiver/receiver", NULL, NULL, "logs-receiver.otel-default");
    receiver_case("x/receiver/-receiver", NULL, NULL, "logs-generic.otel-default");

    /* elasticsearch.index: the record's before the scope's and resource's;
     * no data_stream object then, and the attribute is not repeated */
    size_t n;
    log_t *rec = log_rec(v_str("m"));
    rec->attributes = kvs(&n, 2, kv("elasticsearch.index", v_str("someindex")), kv("a", v_int(1)));
    rec->n_attributes = n;
    kv_t **sa = kvs(&n, 1, kv("elasticsearch.index", v_str("ignored")));
    kv_t **ra = kvs(&n, 2, kv("elasticsearch.index", v_str("ignored")), kv("data_stream.dataset", v_str("x")));
    rendered r;
    render(&r, &DEFAULTS, OTLP_LOGS, logs(resource(2, ra), scope("s", "", 1, sa), 1, &rec));
    assert_string_equal(index_of(&r, 0), "someindex");
    assert_null(at(doc(&r, 0), "data_stream", NULL));
    assert_json(at(doc(&r, 0), "attributes", NULL), "{\"a\":1}");
    assert_json(at(doc(&r, 0), "scope", "attributes", NULL), "{}");
    assert_json(at(doc(&r, 0), "resource", "attributes", NULL), "{}");
    rendered_free(&r);
    rec->attributes = NULL;
    rec->n_attributes = 0;
    render(&r, &DEFAULTS, OTLP_LOGS, logs(resource(2, ra), scope("s", "", 1, sa), 1, &rec));
    assert_string_equal(index_of(&r, 0), "ignored");
    rendered_free(&r);

    /* the other Elastic-specific attributes stay out of every attributes object */
    rec->attributes = kvs(&n, 6, kv("elasticsearch.mapping.hints", v_array(1, v_str("_doc_count"))),
                          kv("elasticsearch.mapping.mode", v_str("otel")), kv("elasticsearch.document_id", v_str("1")),
                          kv("elasticsearch.ingest_pipeline", v_str("p")), kv("data_stream.type", v_str("logs")),
                          kv("elasticsearch.other", v_str("kept")));
    rec->n_attributes = n;
    render(&r, &DEFAULTS, OTLP_LOGS, logs(NULL, NULL, 1, &rec));
    assert_json(at(doc(&r, 0), "attributes", NULL), "{\"elasticsearch.other\":\"kept\"}");
    rendered_free(&r);

    /* a span event: its own data_stream.*, not its span's */
    Opentelemetry__Proto__Trace__V1__Span *sp = span("s", 1);
    sp->attributes = kvs(&n, 1, kv("data_stream.dataset", v_str("spanset")));
    sp->n_attributes = n;
    Opentelemetry__Proto__Trace__V1__Span__Event **ev = mk(2 * sizeof(void *));
    for (int i = 0; i < 2; i++) {
        ev[i] = mk(sizeof(*ev[i]));
        opentelemetry__proto__trace__v1__span__event__init(ev[i]);
        ev[i]->name = "e";
    }
    ev[1]->attributes = kvs(&n, 1, kv("data_stream.namespace", v_str("evns")));
    ev[1]->n_attributes = n;
    sp->events = ev;
    sp->n_events = 2;
    render(&r, &DEFAULTS, OTLP_TRACES, traces(NULL, scope(host, "", 0, NULL), 1, &sp));
    assert_string_equal(index_of(&r, 0), "traces-spanset.otel-default");
    assert_string_equal(index_of(&r, 1), "logs-hostmetricsreceiver.otel-default");
    assert_string_equal(index_of(&r, 2), "logs-hostmetricsreceiver.otel-evns");
    rendered_free(&r);
}

/* Double geo.location.lat / .lon attributes (bare or after a prefix) merge
 * into a geo point [lon, lat], last; a coordinate alone, or not a double,
 * stays as it is. */
static void test_geo_points(void **state)
{
    (void)state;
    size_t n;
    log_t *rec = log_rec(v_str("m"));
    rec->attributes = kvs(&n, 8, kv("geo.location.lat", v_double(52.5)), kv("x", v_int(1)),
                          kv("client.geo.location.lon", v_double(-0.1)), kv("geo.location.lon", v_double(13.4)),
                          kv("server.geo.location.lat", v_double(1.5)), kv("client.geo.location.lat", v_double(51.5)),
                          kv("other.geo.location.lon", v_int(3)), kv("xgeo.location.lat", v_double(2)));
    rec->n_attributes = n;
    kv_t **ra = kvs(&n, 2, kv("host.geo.location.lon", v_double(7)), kv("host.geo.location.lat", v_double(8)));
    rendered r;
    render(&r, &DEFAULTS, OTLP_LOGS, logs(resource(n, ra), NULL, 1, &rec));
    assert_json(at(doc(&r, 0), "attributes", NULL),
                "{\"x\":1,\"other.geo.location.lon\":3,\"xgeo.location.lat\":2.0,\"geo.location\":[13.4,52.5],"
                "\"client.geo.location\":[-0.1,51.5],\"server.geo.location.lat\":1.5}");
    assert_json(at(doc(&r, 0), "resource", "attributes", NULL), "{\"host.geo.location\":[7.0,8.0]}");
    /* nested maps are values, not attributes: no merging there */
    rec->attributes = kvs(&n, 1, kv("m", v_map(2, kv("geo.location.lat", v_double(1)),
                                               kv("geo.location.lon", v_double(2)))));
    rec->n_attributes = n;
    rendered_free(&r);
    render(&r, &DEFAULTS, OTLP_LOGS, logs(NULL, NULL, 1, &rec));
    assert_json(at(doc(&r, 0), "attributes", NULL), "{\"m\":{\"geo.location.lat\":1.0,\"geo.location.lon\":2.0}}");
    rendered_free(&r);
}

/* XXH64 against values of the reference implementation (libxxhash). */
static void test_xxh64(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        uint64_t want;
    } cases[] = {
        {"", 0, 0xef46db3751d8e999ull},
        {"a", 1, 0xd24ec4f1a98c6e5bull},
        {"abcd", 4, 0xde0327b0d25d92ccull},
        {"abcdefgh", 8, 0x3ad351775b4634b7ull},
        {"metric.foo", 10, 0xb23939f78dc5f649ull},
        {"0123456789abcdef0123456789abcdefXYZ", 35, 0x654f6a2b39e4d8c1ull},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (es_xxh64(cases[i].in, cases[i].len) != cases[i].want)
            fail_msg("xxh64(\"%s\") = %016llx", cases[i].in, (unsigned long long)es_xxh64(cases[i].in, cases[i].len));
    assert_true(es_xxh64(NULL, 0) == 0xef46db3751d8e999ull); /* an empty buffer's data */
    uint8_t seq[100];
    for (int i = 0; i < 100; i++)
        seq[i] = (uint8_t)i;
    assert_true(es_xxh64(seq, sizeof(seq)) == 0x6ac1e58032166597ull);
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[ES_DOC_NAME_MAX + 1], in[300];
    static const char name[] = "Foo-Bar/Baz*?\"<>| ,#:x";
    assert_int_equal(es_doc_sanitize(name, strlen(name), ES_DOC_NAME_MAX, 0, out), 22);
    assert_string_equal(out, "foo_bar_baz__________x");
    /* a namespace keeps '-' (Elastic's exporter allows it there) */
    assert_int_equal(es_doc_sanitize(name, strlen(name), ES_DOC_NAME_MAX, 1, out), 22);
    assert_string_equal(out, "foo-bar_baz__________x");
    /* the length given, not the terminator, ends the name */
    assert_int_equal(es_doc_sanitize(name, 3, ES_DOC_NAME_MAX, 1, out), 3);
    assert_string_equal(out, "foo");
    memset(in, 'A', 150);
    in[150] = '\0';
    assert_int_equal(es_doc_sanitize(in, strlen(in), 95, 0, out), 95);
    assert_int_equal(strspn(out, "a"), 95);
    /* cut on a character boundary: 60 x "é" is 120 bytes */
    in[0] = '\0';
    for (int i = 0; i < 60; i++)
        strcat(in, "\xc3\xa9");
    assert_int_equal(es_doc_sanitize(in, strlen(in), 95, 0, out), 94);
    assert_int_equal(es_doc_sanitize("", 0, 10, 0, out), 0);

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
    log_t *recs[8];
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
    recs[6] = log_rec(v_bool(1));
    any_t *raw = v_bytes("x");
    raw->bytes_value = (ProtobufCBinaryData){2, (uint8_t *)"\x00\xff"};
    recs[7] = log_rec(raw);
    rendered r;
    render(&r, &DEFAULTS, OTLP_LOGS, logs(NULL, scope("e2e-logger", "2.0.0", 0, NULL), 8, recs));
    assert_int_equal(r.t.n, 8);
    for (size_t i = 0; i < 8; i++) {
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
    /* a scalar body is body.text, keeping its JSON type, as Elastic writes it */
    assert_json(at(doc(&r, 4), "body", NULL), "{\"text\":42}");
    assert_json(at(doc(&r, 6), "body", NULL), "{\"text\":true}");
    assert_json(at(doc(&r, 7), "body", NULL), "{\"text\":\"00ff\"}"); /* bytes as hex */
    assert_null(at(doc(&r, 5), "body", NULL));
    /* observed_timestamp always there, the epoch when the record has none */
    assert_str(at(doc(&r, 5), "observed_timestamp", NULL), "1970-01-01T00:00:00.000000000Z");
    rendered_free(&r);
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
    /* points of one time, start time, unit and attributes share a document */
    metric_t *ms[] = {
        gauge("e2e.temperature", temp),                            /* doc 0: its attributes */
        gauge("e2e.int.gauge", number(1, 7)),                      /* doc 1 */
        sum("e2e.requests", reqs, 1, 1),                           /* doc 2: its start time */
        sum("e2e.queue.depth", number(0, 3.25), 0, 0),             /* doc 3 */
        sum("e2e.delta.counter", number(1, 2), 1, 0),              /* doc 3 */
        histogram("e2e.latency", 3, bounds, 4, counts, 6, 140),    /* doc 4 */
        histogram("e2e.nobounds", 0, NULL, 0, NULL, 4, 10),        /* doc 4 */
        summary("e2e.summary", 5, 12.5),                           /* doc 5: no unit */
        exp_histogram(0, 1, 0, 2, pos, 0, 1, neg),                 /* doc 4 */
        gauge("e2e.novalue", number(-1, 0)),                       /* doc 1, left out */
        histogram("e2e.broken", 3, bounds, 2, bad_counts, 3, 1),   /* doc 4, left out */
        gauge("e2e.nan", number(0, NAN)),                          /* doc 1, left out */
    };
    size_t nr;
    kv_t **ra = kvs(&nr, 2, kv("service.name", v_str("shop")), kv("k8s", v_map(1, kv("pod", v_str("p-1")))));
    rendered r;
    render(&r, &DEFAULTS, OTLP_METRICS, metrics(resource(nr, ra), 12, ms));
    assert_int_equal(r.t.n, 6);
    assert_int_equal(r.rep.dropped, 3);
    assert_non_null(strstr(r.rep.reason, "e2e.novalue"));
    assert_non_null(strstr(r.rep.reason, "without a value"));
    static const uint32_t items[] = {1, 1, 1, 2, 3, 1};
    for (size_t i = 0; i < r.t.n; i++) {
        assert_int_equal(r.t.v[i].items, items[i]);
        assert_int_equal(r.t.v[i].first, 1);
        assert_string_equal(index_of(&r, i), "metrics-generic.otel-default");
        assert_json(at(doc(&r, i), "resource", NULL),
                    "{\"attributes\":{\"service.name\":\"shop\",\"k8s\":\"{\\\"pod\\\":\\\"p-1\\\"}\"}}");
        assert_str(at(doc(&r, i), "scope", "name", NULL), "e2e-meter");
        assert_true(json_is_string(at(doc(&r, i), "_metric_names_hash", NULL)));
    }
    json_t *d = doc(&r, 0);
    assert_int(at(d, "@timestamp", NULL), 1700000000000); /* epoch milliseconds, as Elastic writes metrics */
    assert_null(at(d, "start_timestamp", NULL));
    assert_str(at(d, "unit", NULL), "Cel");
    assert_json(at(d, "metrics", NULL), "{\"e2e.temperature\":21.5}");
    assert_json(at(d, "attributes", NULL), "{\"room\":\"a\",\"where\":\"{\\\"floor\\\":2}\"}");
    assert_string_equal(template_of(&r, 0, "metrics.e2e.temperature"), "gauge_double");
    /* the points left out name no field, but their names are in the hash (Elastic's rule) */
    assert_json(at(doc(&r, 1), "metrics", NULL), "{\"e2e.int.gauge\":7}");
    assert_json(at(json_array_get(r.lines, 2), "create", "dynamic_templates", NULL),
                "{\"metrics.e2e.int.gauge\":\"gauge_long\"}");
    assert_str(at(doc(&r, 1), "_metric_names_hash", NULL), "fa62d4cab013a0da");
    assert_string_equal(template_of(&r, 2, "metrics.e2e.requests"), "counter_long");
    assert_int(at(doc(&r, 2), "start_timestamp", NULL), 1699999940000);
    assert_str(at(doc(&r, 2), "unit", NULL), "{request}");
    assert_json(at(doc(&r, 3), "metrics", NULL), "{\"e2e.queue.depth\":3.25,\"e2e.delta.counter\":2}");
    assert_string_equal(template_of(&r, 3, "metrics.e2e.queue.depth"), "gauge_double");
    assert_string_equal(template_of(&r, 3, "metrics.e2e.delta.counter"), "gauge_long");
    assert_str(at(doc(&r, 3), "unit", NULL), "{request}");
    assert_string_equal(template_of(&r, 4, "metrics.e2e.latency"), "histogram");
    assert_string_equal(template_of(&r, 4, "metrics.e2e.exp"), "histogram");
    /* scale 0: buckets [1,2) and [2,4) at 1.5 and 3, the negative [-2,-1) at -1.5 */
    assert_json(at(doc(&r, 4), "metrics", NULL),
                "{\"e2e.latency\":{\"counts\":[1,2,3],\"values\":[0.5,3.0,10.0]},"
                "\"e2e.nobounds\":{\"counts\":[4],\"values\":[2.5]},"
                "\"e2e.exp\":{\"counts\":[3,1,1,2],\"values\":[-1.5,0.0,1.5,3.0]}}");
    assert_string_equal(template_of(&r, 5, "metrics.e2e.summary"), "summary");
    assert_json(at(doc(&r, 5), "metrics", NULL), "{\"e2e.summary\":{\"sum\":12.5,\"value_count\":5}}");
    assert_null(at(doc(&r, 5), "unit", NULL));
    rendered_free(&r);
}

/* Span and log documents for the inputs of upstream's serializer and
 * exporter tests (TestSerializeTraces "default", TestExporterLogs "publish
 * otel mapping mode"), compared whole. The one difference on purpose: times
 * are RFC 3339 with nanoseconds where upstream writes "<ms>.<ns>" strings
 * ("0.0" for the epoch), so the expected documents below carry our form. */
static void test_span_and_log_documents_as_upstream(void **state)
{
    (void)state;
    size_t n;
    Opentelemetry__Proto__Trace__V1__Span *sp = span("", 1);
    sp->trace_id = (ProtobufCBinaryData){0, NULL};
    sp->span_id = (ProtobufCBinaryData){0, NULL};
    sp->start_time_unix_nano = 1721314113467654123ull;
    sp->end_time_unix_nano = 1721314113469654123ull;
    sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    Opentelemetry__Proto__Trace__V1__Status *st = mk(sizeof(*st));
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    st->message = "Hello";
    sp->status = st;
    kv_t **ra = kvs(&n, 1, kv("resource_map", v_map(1, kv("foo", v_str("bar")))));
    kv_t **sa = kvs(&n, 1, kv("scope_map", v_map(1, kv("foo", v_str("bar")))));
    trace_req *tr = traces(resource(1, ra), scope("", "", 1, sa), 1, &sp);
    tr->resource_spans[0]->scope_spans[0]->schema_url = "";
    rendered r;
    render(&r, &DEFAULTS, OTLP_TRACES, tr);
    json_t *d = json_deep_copy(doc(&r, 0));
    json_object_del(d, "data_stream"); /* upstream's test renders without an index */
    assert_json(d, "{\"@timestamp\":\"2024-07-18T14:48:33.467654123Z\",\"duration\":2000000,\"kind\":\"Server\","
                   "\"links\":[],\"resource\":{\"attributes\":{\"resource_map\":{\"foo\":\"bar\"}}},"
                   "\"scope\":{\"attributes\":{\"scope_map\":{\"foo\":\"bar\"}}},"
                   "\"status\":{\"code\":\"Ok\",\"message\":\"Hello\"}}");
    json_decref(d);
    rendered_free(&r);

    static const char *const head =
        "{\"@timestamp\":\"1970-01-01T00:00:00.000000000Z\",\"observed_timestamp\":\"1970-01-01T00:00:00.000000000Z\","
        "\"data_stream\":{\"dataset\":\"attr.dataset.otel\",\"namespace\":\"resource.attribute.namespace\","
        "\"type\":\"logs\"},\"resource\":{\"attributes\":{\"resource.attr.foo\":\"resource.attr.foo.value\"}},"
        "\"scope\":{},";
    struct {
        any_t *body;
        int event;
        const char *rest;
    } cases[] = {
        {v_str("foo"), 0, "\"attributes\":{\"attr.foo\":\"attr.foo.value\"},\"body\":{\"text\":\"foo\"}}"},
        {v_map(3, kv("true", v_bool(1)), kv("false", v_bool(0)), kv("inner", v_map(1, kv("foo", v_str("bar"))))), 0,
         "\"attributes\":{\"attr.foo\":\"attr.foo.value\"},"
         "\"body\":{\"structured\":{\"true\":true,\"false\":false,\"inner\":{\"foo\":\"bar\"}}}}"},
        {v_map(3, kv("true", v_bool(1)), kv("false", v_bool(0)), kv("inner", v_map(1, kv("foo", v_str("bar"))))), 1,
         "\"attributes\":{\"attr.foo\":\"attr.foo.value\",\"event.name\":\"foo\"},\"event_name\":\"foo\","
         "\"body\":{\"structured\":{\"true\":true,\"false\":false,\"inner\":{\"foo\":\"bar\"}}}}"},
        {v_array(3, v_str("foo"), v_bool(0), v_map(1, kv("foo", v_str("bar")))), 0,
         "\"attributes\":{\"attr.foo\":\"attr.foo.value\"},"
         "\"body\":{\"structured\":{\"value\":[\"foo\",false,{\"foo\":\"bar\"}]}}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        log_t *rec = log_rec(cases[i].body);
        rec->time_unix_nano = 0;
        rec->attributes = cases[i].event ? kvs(&n, 3, kv("data_stream.dataset", v_str("attr.dataset")),
                                               kv("attr.foo", v_str("attr.foo.value")), kv("event.name", v_str("foo")))
                                         : kvs(&n, 2, kv("data_stream.dataset", v_str("attr.dataset")),
                                               kv("attr.foo", v_str("attr.foo.value")));
        rec->n_attributes = n;
        kv_t **res = kvs(&n, 3, kv("data_stream.dataset", v_str("resource.attribute.dataset")),
                         kv("data_stream.namespace", v_str("resource.attribute.namespace")),
                         kv("resource.attr.foo", v_str("resource.attr.foo.value")));
        render(&r, &DEFAULTS, OTLP_LOGS, logs(resource(n, res), NULL, 1, &rec));
        char want[1024];
        snprintf(want, sizeof(want), "%s%s", head, cases[i].rest);
        assert_string_equal(index_of(&r, 0), "logs-attr.dataset.otel-resource.attribute.namespace");
        assert_json(doc(&r, 0), want);
        rendered_free(&r);
    }
}

/* A metrics request with neither resource nor scope, as upstream's tests
 * build them. */
static metrics_req *bare_metrics(size_t n, metric_t **ms)
{
    metrics_req *req = metrics(NULL, n, ms);
    req->resource_metrics[0]->scope_metrics[0]->scope = NULL;
    return req;
}

static metric_t *unitless(metric_t *m)
{
    m->unit = "";
    return m;
}

#define SEC 1000000000ull

/* Each document line equal (as JSON: member order aside, 1.0 is not 1) to
 * the action and document given. */
static void assert_docs(const rendered *r, size_t n, const char *const *want)
{
    assert_int_equal(r->t.n, n);
    for (size_t i = 0; i < 2 * n; i++) {
        json_t *w = json_loads(want[i], 0, NULL);
        assert_non_null(w);
        json_t *got = json_array_get(r->lines, i);
        if (!json_equal(got, w)) {
            char *g = json_dumps(got, JSON_SORT_KEYS);
            fail_msg("line %zu: got %s, want %s", i, g, want[i]);
        }
        json_decref(w);
    }
}

/* The documents of the collector's elasticsearchexporter (otel mapping
 * mode) for the inputs of its own exporter tests ("otel mode", "otel mode
 * _doc_count hint", "otel mode aggregate_metric_double hint"): the same
 * documents, _metric_names_hash values included. */
static void test_metric_documents_as_upstream(void **state)
{
    (void)state;
    static const double b1[] = {1, 2, 3}, b2[] = {4, 5, 6};
    static const uint64_t c1[] = {1, 2, 3, 4}, c2[] = {4, 5, 6, 7};
    metric_t *foo = unitless(histogram("metric.foo", 3, b1, 4, c1, 10, 0));
    Opentelemetry__Proto__Metrics__V1__Histogram *h = foo->histogram;
    h->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint **hp = mk(2 * sizeof(void *));
    hp[0] = h->data_points[0];
    hp[0]->time_unix_nano = 0;
    hp[0]->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM__NOT_SET;
    hp[1] = unitless(histogram("metric.foo", 3, b2, 4, c2, 22, 0))->histogram->data_points[0];
    hp[1]->time_unix_nano = 3600 * SEC;
    h->data_points = hp;
    h->n_data_points = 2;
    static const char *const sums[] = {"metric.sum.monotonic.cumulative", "metric.sum.monotonic.delta",
                                       "metric.sum.nonmonotonic.cumulative", "metric.sum.nonmonotonic.delta"};
    metric_t *ms[6] = {foo};
    for (int i = 0; i < 4; i++) {
        number_t *p = number(0, 1.5 + i);
        p->time_unix_nano = 3600 * SEC;
        p->start_time_unix_nano = 7200 * SEC;
        ms[1 + i] = unitless(sum(sums[i], p, i < 2, i % 2 == 0));
    }
    ms[5] = summary("metric.summary", 1, 1.5);
    ms[5]->summary->data_points[0]->time_unix_nano = 3 * 3600 * SEC;
    ms[5]->summary->data_points[0]->start_time_unix_nano = 3 * 3600 * SEC;
    rendered r;
    render(&r, &DEFAULTS, OTLP_METRICS, bare_metrics(6, ms));
    static const char *const want[] = {
        "{\"create\":{\"_index\":\"metrics-generic.otel-default\",\"dynamic_templates\":{\"metrics.metric.foo\":"
        "\"histogram\"}}}",
        "{\"@timestamp\":0,\"data_stream\":{\"dataset\":\"generic.otel\",\"namespace\":\"default\",\"type\":"
        "\"metrics\"},\"metrics\":{\"metric.foo\":{\"counts\":[1,2,3,4],\"values\":[0.5,1.5,2.5,3.0]}},"
        "\"resource\":{},\"scope\":{},\"_metric_names_hash\":\"b23939f78dc5f649\"}",
        "{\"create\":{\"_index\":\"metrics-generic.otel-default\",\"dynamic_templates\":{\"metrics.metric.foo\":"
        "\"histogram\"}}}",
        "{\"@timestamp\":3600000,\"data_stream\":{\"dataset\":\"generic.otel\",\"namespace\":\"default\",\"type\":"
        "\"metrics\"},\"metrics\":{\"metric.foo\":{\"counts\":[4,5,6,7],\"values\":[2.0,4.5,5.5,6.0]}},"
        "\"resource\":{},\"scope\":{},\"_metric_names_hash\":\"b23939f78dc5f649\"}",
        "{\"create\":{\"_index\":\"metrics-generic.otel-default\",\"dynamic_templates\":{"
        "\"metrics.metric.sum.monotonic.delta\":\"gauge_double\",\"metrics.metric.sum.nonmonotonic.cumulative\":"
        "\"gauge_double\",\"metrics.metric.sum.nonmonotonic.delta\":\"gauge_double\","
        "\"metrics.metric.sum.monotonic.cumulative\":\"counter_double\"}}}",
        "{\"@timestamp\":3600000,\"start_timestamp\":7200000,\"data_stream\":{\"type\":\"metrics\",\"dataset\":"
        "\"generic.otel\",\"namespace\":\"default\"},\"resource\":{},\"scope\":{},\"metrics\":{"
        "\"metric.sum.monotonic.cumulative\":1.5,\"metric.sum.monotonic.delta\":2.5,"
        "\"metric.sum.nonmonotonic.cumulative\":3.5,\"metric.sum.nonmonotonic.delta\":4.5},"
        "\"_metric_names_hash\":\"4c23ec9ba381ab20\"}",
        "{\"create\":{\"_index\":\"metrics-generic.otel-default\",\"dynamic_templates\":{\"metrics.metric.summary\":"
        "\"summary\"}}}",
        "{\"@timestamp\":10800000,\"data_stream\":{\"dataset\":\"generic.otel\",\"namespace\":\"default\",\"type\":"
        "\"metrics\"},\"metrics\":{\"metric.summary\":{\"sum\":1.5,\"value_count\":1}},\"resource\":{},\"scope\":{},"
        "\"start_timestamp\":10800000,\"_metric_names_hash\":\"2f30c89222c9d308\"}",
    };
    assert_docs(&r, 4, want);
    assert_int_equal(r.t.v[2].items, 4); /* four metrics, one document */
    rendered_free(&r);

    /* mapping hints: _doc_count from the summary's count, which shares the
     * document of a sum whose attributes differ only in the hint */
    size_t n;
    number_t *zero = number(1, 0);
    zero->time_unix_nano = 0;
    metric_t *hinted[2] = {unitless(sum("sum", zero, 0, 0)), summary("summary", 10, 1)};
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *sp = hinted[1]->summary->data_points[0];
    sp->time_unix_nano = 0;
    sp->attributes = kvs(&n, 1, kv("elasticsearch.mapping.hints", v_array(1, v_str("_doc_count"))));
    sp->n_attributes = n;
    render(&r, &DEFAULTS, OTLP_METRICS, bare_metrics(2, hinted));
    static const char *const want_count[] = {
        "{\"create\":{\"_index\":\"metrics-generic.otel-default\",\"dynamic_templates\":{\"metrics.sum\":"
        "\"gauge_long\",\"metrics.summary\":\"summary\"}}}",
        "{\"@timestamp\":0,\"_doc_count\":10,\"data_stream\":{\"dataset\":\"generic.otel\",\"namespace\":"
        "\"default\",\"type\":\"metrics\"},\"metrics\":{\"sum\":0,\"summary\":{\"sum\":1.0,\"value_count\":10}},"
        "\"resource\":{},\"scope\":{},\"_metric_names_hash\":\"e446964dc8337bbb\"}",
    };
    assert_docs(&r, 1, want_count);
    rendered_free(&r);

    /* aggregate_metric_double: histograms kept as sum and count */
    metric_t *agg[2] = {unitless(histogram("histogram.summary", 0, NULL, 0, NULL, 10, 1)),
                        unitless(exp_histogram(0, 0, 0, 0, NULL, 0, 0, NULL))};
    agg[1]->name = "exphistogram.summary";
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *ep = agg[1]->exponential_histogram->data_points[0];
    ep->time_unix_nano = 3600 * SEC;
    ep->count = 10;
    ep->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    ep->sum = 1;
    agg[0]->histogram->data_points[0]->time_unix_nano = 0;
    kv_t **hints = kvs(&n, 1, kv("elasticsearch.mapping.hints",
                                 v_array(2, v_str("_doc_count"), v_str("aggregate_metric_double"))));
    agg[0]->histogram->data_points[0]->attributes = hints;
    agg[0]->histogram->data_points[0]->n_attributes = n;
    ep->attributes = hints;
    ep->n_attributes = n;
    render(&r, &DEFAULTS, OTLP_METRICS, bare_metrics(2, agg));
    static const char *const want_agg[] = {
        "{\"create\":{\"_index\":\"metrics-generic.otel-default\",\"dynamic_templates\":{"
        "\"metrics.histogram.summary\":\"summary\"}}}",
        "{\"@timestamp\":0,\"_doc_count\":10,\"data_stream\":{\"dataset\":\"generic.otel\",\"namespace\":"
        "\"default\",\"type\":\"metrics\"},\"attributes\":{},\"metrics\":{\"histogram.summary\":{\"sum\":1.0,"
        "\"value_count\":10}},\"resource\":{},\"scope\":{},\"_metric_names_hash\":\"fcd1d6737d725996\"}",
        "{\"create\":{\"_index\":\"metrics-generic.otel-default\",\"dynamic_templates\":{"
        "\"metrics.exphistogram.summary\":\"summary\"}}}",
        "{\"@timestamp\":3600000,\"_doc_count\":10,\"data_stream\":{\"dataset\":\"generic.otel\",\"namespace\":"
        "\"default\",\"type\":\"metrics\"},\"attributes\":{},\"metrics\":{\"exphistogram.summary\":{\"sum\":1.0,"
        "\"value_count\":10}},\"resource\":{},\"scope\":{},\"_metric_names_hash\":\"6a10ca190ae63c5\"}",
    };
    assert_docs(&r, 2, want_agg);
    rendered_free(&r);
}

/* What makes two points one document: the same resource attributes (in any
 * order, in any ResourceMetrics), scope name and attributes (not its
 * version), time, start time, unit, attributes and index. */
static void test_metric_grouping(void **state)
{
    (void)state;
    size_t n;
    metric_t *ms[7];
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (int i = 0; i < 7; i++) {
        number_t *p = number(1, i);
        p->attributes = kvs(&n, 2, kv("x", v_int(1)), kv("y", v_str("z")));
        p->n_attributes = n;
        ms[i] = gauge(names[i], p);
    }
    /* b: the same attributes in another order, plus a reserved one */
    ms[1]->gauge->data_points[0]->attributes =
        kvs(&n, 3, kv("y", v_str("z")), kv("data_stream.namespace", v_str("default")), kv("x", v_int(1)));
    ms[1]->gauge->data_points[0]->n_attributes = n;
    ms[2]->gauge->data_points[0]->attributes[0] = kv("x", v_int(2)); /* c: another value */
    ms[3]->gauge->data_points[0]->time_unix_nano += 1;              /* d: another time (1 ns) */
    ms[4]->unit = "s";                                              /* e: another unit */
    ms[5]->gauge->data_points[0]->attributes = /* f: another index */
        kvs(&n, 3, kv("x", v_int(1)), kv("y", v_str("z")), kv("data_stream.dataset", v_str("other")));
    ms[5]->gauge->data_points[0]->n_attributes = n;
    ms[6]->name = "a";                                              /* g: a second point of "a" */
    kv_t **ra = kvs(&n, 2, kv("service.name", v_str("s")), kv("host.name", v_str("h")));
    metrics_req *req = metrics(resource(n, ra), 7, ms);
    /* the same points again under a second ResourceMetrics of the same
     * attributes (other order) and a scope of the same name, another version */
    kv_t **ra2 = kvs(&n, 2, kv("host.name", v_str("h")), kv("service.name", v_str("s")));
    metrics_req *req2 = metrics(resource(n, ra2), 0, NULL);
    req2->resource_metrics[0]->scope_metrics[0]->scope->version = "9.9";
    metric_t *more[] = {gauge("h", number(1, 8))};
    more[0]->gauge->data_points[0]->attributes = kvs(&n, 2, kv("x", v_int(1)), kv("y", v_str("z")));
    more[0]->gauge->data_points[0]->n_attributes = n;
    req2->resource_metrics[0]->scope_metrics[0]->metrics = more;
    req2->resource_metrics[0]->scope_metrics[0]->n_metrics = 1;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics **rms = mk(2 * sizeof(void *));
    rms[0] = req->resource_metrics[0];
    rms[1] = req2->resource_metrics[0];
    req->resource_metrics = rms;
    req->n_resource_metrics = 2;
    rendered r;
    render(&r, &DEFAULTS, OTLP_METRICS, req);
    assert_int_equal(r.t.n, 5);
    assert_int_equal(r.rep.dropped, 1);
    assert_non_null(strstr(r.rep.reason, "metric \"a\": a second point"));
    assert_json(at(doc(&r, 0), "metrics", NULL), "{\"a\":0,\"b\":1,\"h\":8}");
    assert_int_equal(r.t.v[0].items, 3);
    assert_json(at(doc(&r, 0), "attributes", NULL), "{\"x\":1,\"y\":\"z\"}"); /* the first point's */
    assert_json(at(doc(&r, 1), "metrics", NULL), "{\"c\":2}");
    assert_json(at(doc(&r, 2), "metrics", NULL), "{\"d\":3}");
    assert_json(at(doc(&r, 3), "metrics", NULL), "{\"e\":4}");
    assert_json(at(doc(&r, 4), "metrics", NULL), "{\"f\":5}");
    assert_string_equal(index_of(&r, 4), "metrics-other.otel-default");
    assert_str(at(doc(&r, 0), "_metric_names_hash", NULL), "562928de8082cf03");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_span_document, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_span_kinds_and_statuses, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_routing_levels, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_routing_as_upstream, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_geo_points, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_xxh64, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_sanitize, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_log_documents, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_metric_documents, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_metric_documents_as_upstream, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_span_and_log_documents_as_upstream, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_metric_grouping, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_exp_histogram_scales, es_setup, es_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
