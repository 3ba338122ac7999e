/* The prometheus_remote_write exporter type: prepare (snappy-framed
 * WriteRequest and its headers), the native_histograms option, classify,
 * SigV4 signing and config errors, through the type's hooks as the exporter
 * calls them. */
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
#include "prom_rw.h"
#include "prom_rw_testlib.h"
#include "remote_write.pb-c.h"
#include "test_util.h"

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
        cmocka_unit_test_setup_teardown(test_prepare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_histograms_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_on_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
