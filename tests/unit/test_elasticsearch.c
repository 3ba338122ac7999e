/* The elasticsearch exporter type: bulk responses read into per-document
 * outcomes, prepare, partial retries built from them, whole-request
 * statuses, and configuration errors with their file:line. The NDJSON
 * documents themselves are checked in test_es_doc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "config.h"
#include "es_bulk.h"
#include "es_doc.h"
#include "exporter.h"
#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "es_build.h"
#include "test_util.h"
#include "trace_service.pb-c.h"

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
    /* a 409 is a conflict, never delivered; only 429 is sent again (Elastic's
     * default retry_on_status), a 503 is refused like any other status */
    static const uint8_t want[] = {ES_BULK_OK, ES_BULK_RETRY, ES_BULK_REJECT, ES_BULK_REJECT, ES_BULK_REJECT,
                                   ES_BULK_REJECT};
    assert_memory_equal(out, want, 6);
    assert_int_equal(sum.ok, 1);
    assert_int_equal(sum.retry, 1);
    assert_int_equal(sum.reject, 4);
    assert_int_equal(sum.conflicts, 1);
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
    assert_int_equal(es_bulk_item_outcome(409), ES_BULK_REJECT);
    assert_int_equal(es_bulk_item_outcome(429), ES_BULK_RETRY);
    assert_int_equal(es_bulk_item_outcome(504), ES_BULK_REJECT);
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
    f->st = exporter_elasticsearch.configure(&f->cfg->routing.backends[0], err, sizeof(err));
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
        "http://es:9200/_bulk?require_data_stream=true&filter_path=errors,items.*.status,items.*.error.type,"
        "items.*.error.reason";
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
    /* a 409 on create: a conflict, counted and logged as refused, never as delivered */
    assert_int_equal(type_classify(&f, 200, BULK(ITEM_ERR(409, "version_conflict_engine_exception",
                                                          "[abc]: version conflict, document already exists"))),
                     EXPORT_OK);
    assert_int_equal(f.res.rejected, 1);
    assert_int_equal(f.retry.len, 0);
    assert_non_null(strstr(f.msg, "1 of 1 documents refused (1 of them 409 conflicts"));
    assert_non_null(strstr(f.msg, "409 version_conflict_engine_exception"));

    /* a 409 among created documents: the others are delivered */
    type_prepare(&f, OTLP_TRACES, &three_spans()->base, 3);
    assert_int_equal(type_classify(&f, 200, BULK(ITEM(201) "," ITEM(201) "," ITEM(201) "," ITEM(409))), EXPORT_OK);
    assert_int_equal(f.res.rejected, 1);

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
        cmocka_unit_test(test_bulk_parse),
        cmocka_unit_test(test_bulk_truncated),
        cmocka_unit_test(test_bulk_error_reason),
        cmocka_unit_test_setup_teardown(test_prepare_request, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_partial_retry, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_whole_request_statuses, es_setup, es_teardown),
        cmocka_unit_test_setup_teardown(test_render_rejections_reported_once, es_setup, es_teardown),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
