/* Pipeline routing, the file backend and ingest_export end to end in-process:
 * config text -> pipeline -> ingest -> files on disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gzip.h"
#include "ingest.h"
#include "pipeline.h"

typedef struct fixture {
    char dir[64];
    config *cfg;
    pipeline *pl;
    ingest_ctx *ictx;
} fixture;

static const ingest_limits limits = {.max_request_bytes = 64 * 1024, .max_decoded_bytes = 4 * 1024 * 1024};

static const char span_json[] =
    "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
    "\"spanId\":\"0102030405060708\",\"name\":\"a\"},{\"traceId\":\"01\",\"spanId\":\"0102030405060708\","
    "\"name\":\"bad\"}]}]}]}";

static const char log_json[] = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":\"x\"}}]}]}]}";

/* Two pipelines: traces -> a and b, logs -> b only. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/gw-pipeline-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char yaml[1024], err[512];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n  a: {type: file, dir: %s/a}\n  b: {type: file, dir: %s/b}\n  n: {type: discard}\n"
             "pipelines:\n  - {name: t, signals: [traces], backends: [a, b]}\n"
             "  - {name: l, signals: [logs], backends: [b, n]}\n",
             f->dir, f->dir);
    assert_int_equal(config_load_string("test.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err)), 0);
    f->pl = pipeline_new(f->cfg, err, sizeof(err));
    assert_non_null(f->pl);
    f->ictx = ingest_ctx_new(f->pl, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ingest_ctx_free(f->ictx);
    pipeline_free(f->pl);
    config_free(f->cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static long file_lines(const char *dir, const char *sub, const char *name, char *first, size_t firstlen)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s/%s.jsonl", dir, sub, name);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    long n = 0;
    char line[4096];
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (n++ == 0 && first != NULL)
            snprintf(first, firstlen, "%s", line);
    }
    fclose(fp);
    return n;
}

static void export(fixture *f, otlp_signal sig, const void *body, size_t len, int gz, ingest_result *res)
{
    ingest_origin o = {.listener = "l", .transport = INGEST_HTTP};
    ingest_export(f->ictx, &limits, sig, OTLP_JSON, &o, body, len, gz, res);
}

static void test_fan_out_by_signal_with_partial_success(void **state)
{
    fixture *f = *state;
    ingest_result res;
    export(f, OTLP_TRACES, span_json, strlen(span_json), 0, &res);
    assert_int_equal(res.status, INGEST_OK);
    assert_int_equal(res.accepted, 1);
    assert_int_equal(res.rejected, 1);
    assert_true(strlen(res.message) > 0);
    char line[4096];
    assert_int_equal(file_lines(f->dir, "a", "traces", line, sizeof(line)), 1);
    assert_non_null(strstr(line, "\"name\":\"a\""));
    assert_null(strstr(line, "\"bad\"")); /* the invalid span is not forwarded */
    assert_int_equal(file_lines(f->dir, "b", "traces", NULL, 0), 1);
    assert_int_equal(file_lines(f->dir, "a", "logs", NULL, 0), 0); /* a takes no logs */

    export(f, OTLP_LOGS, log_json, strlen(log_json), 0, &res);
    assert_int_equal(res.status, INGEST_OK);
    assert_int_equal(res.accepted, 1);
    assert_int_equal(file_lines(f->dir, "b", "logs", NULL, 0), 1);
    assert_int_equal(file_lines(f->dir, "a", "logs", NULL, 0), 0);
    /* Metrics go nowhere: no pipeline takes them, which is accepted, not an error. */
    export(f, OTLP_METRICS, "{}", 2, 0, &res);
    assert_int_equal(res.status, INGEST_OK);
}

static void test_gzip_and_limits(void **state)
{
    fixture *f = *state;
    buf gz = BUF_INIT;
    assert_int_equal(gzip_deflate((const uint8_t *)log_json, strlen(log_json), -1, &gz), GZIP_OK);
    ingest_result res;
    export(f, OTLP_LOGS, gz.data, gz.len, 1, &res);
    assert_int_equal(res.status, INGEST_OK);
    assert_int_equal(res.accepted, 1);
    buf_free(&gz);

    export(f, OTLP_LOGS, "not gzip", 8, 1, &res);
    assert_int_equal(res.status, INGEST_INVALID);
    assert_int_equal(ingest_http_status(res.status), 400);

    /* A 1 MiB body of zeros compresses to ~1 KiB but inflates past the 64 KiB limit. */
    size_t big = 1024 * 1024;
    uint8_t *zeros = calloc(1, big);
    buf bomb = BUF_INIT;
    assert_int_equal(gzip_deflate(zeros, big, 9, &bomb), GZIP_OK);
    export(f, OTLP_LOGS, bomb.data, bomb.len, 1, &res);
    assert_int_equal(res.status, INGEST_TOO_LARGE);
    assert_int_equal(ingest_grpc_status(res.status), GRPC_RESOURCE_EXHAUSTED);
    export(f, OTLP_LOGS, zeros, limits.max_request_bytes + 1, 0, &res);
    assert_int_equal(res.status, INGEST_TOO_LARGE);
    assert_int_equal(ingest_http_status(res.status), 413);
    buf_free(&bomb);
    free(zeros);

    export(f, OTLP_TRACES, "{\"resourceSpans\":[", 18, 0, &res);
    assert_int_equal(res.status, INGEST_INVALID);
    assert_true(strlen(res.message) > 0);
}

static void test_backend_write_failure_is_retryable(void **state)
{
    fixture *f = *state;
    /* Swap b's traces file for /dev/full: every write fails with ENOSPC. */
    char path[256];
    snprintf(path, sizeof(path), "%s/b/traces.jsonl", f->dir);
    unlink(path);
    assert_int_equal(symlink("/dev/full", path), 0);
    pipeline_free(f->pl);
    char err[256];
    f->pl = pipeline_new(f->cfg, err, sizeof(err));
    assert_non_null(f->pl);
    ingest_ctx_free(f->ictx);
    f->ictx = ingest_ctx_new(f->pl, NULL);
    ingest_result res;
    export(f, OTLP_TRACES, span_json, strlen(span_json), 0, &res);
    assert_int_equal(res.status, INGEST_UNAVAILABLE);
    assert_int_equal(ingest_http_status(res.status), 503);
    assert_int_equal(ingest_grpc_status(res.status), GRPC_UNAVAILABLE);
    assert_true(res.retry_after_s > 0);
    assert_null(strstr(res.message, f->dir)); /* no server paths in client messages */

    buf body = BUF_INIT;
    assert_int_equal(ingest_response_body(OTLP_TRACES, OTLP_JSON, &res, &body), 0);
    buf_putc(&body, '\0');
    assert_non_null(strstr(body.data, "\"code\":14"));
    buf_free(&body);
}

static void test_paths_and_status_tables(void **state)
{
    (void)state;
    assert_int_equal(ingest_signal_from_http_path("/v1/traces", 10), OTLP_TRACES);
    assert_int_equal(ingest_signal_from_http_path("/v1/metrics/", 12), OTLP_METRICS);
    assert_int_equal(ingest_signal_from_http_path("/v1/logs?x=1", 12), OTLP_LOGS);
    assert_int_equal(ingest_signal_from_http_path("/v1/trace", 9), -1);
    assert_int_equal(ingest_signal_from_http_path("/v1/tracesX", 11), -1);
    const char *g = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    assert_int_equal(ingest_signal_from_grpc_path(g, strlen(g)), OTLP_METRICS);
    assert_int_equal(ingest_signal_from_grpc_path(g, strlen(g) - 1), -1);
    assert_int_equal(ingest_http_status(INGEST_UNSUPPORTED_MEDIA), 415);
    assert_int_equal(ingest_http_status(INGEST_THROTTLED), 429);
    assert_int_equal(ingest_http_status(INGEST_UNAUTHENTICATED), 401);
    assert_int_equal(ingest_http_status(INGEST_PERMISSION_DENIED), 403);
    assert_int_equal(ingest_grpc_status(INGEST_NOT_FOUND), GRPC_UNIMPLEMENTED);
    assert_int_equal(ingest_grpc_status(INGEST_INVALID), GRPC_INVALID_ARGUMENT);
    assert_string_equal(ingest_status_reason(INGEST_TOO_LARGE), "too_large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fan_out_by_signal_with_partial_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_write_failure_is_retryable, setup, teardown),
        cmocka_unit_test(test_paths_and_status_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
