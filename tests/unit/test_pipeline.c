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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "config.h"
#include "arena.h"
#include "clock.h"
#include "gzip.h"
#include "ingest.h"
#include "metrics.h"
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

/* A fresh temp dir for the file backends, f->dir. */
static void fixture_dir(fixture *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/gw-pipeline-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
}

/* The pipeline of `yaml` (which names its dirs under f->dir) with `workers`
 * workers, and an ingest context on it. */
static void fixture_load(fixture *f, const char *yaml, size_t workers)
{
    char err[512];
    if (config_load_string("test.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    f->pl = pipeline_new(&f->cfg->routing, workers, err, sizeof(err));
    if (f->pl == NULL)
        fail_msg("pipeline_new: %s", err);
    f->ictx = ingest_ctx_new(f->pl, NULL);
}

/* Frees what fixture_load made and removes f->dir. */
static void fixture_down(fixture *f)
{
    ingest_ctx_free(f->ictx);
    pipeline_free(f->pl);
    config_free(f->cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
}

/* Two pipelines: traces -> a and b, logs -> b only. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    fixture_dir(f);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n  a: {type: file, dir: %s/a}\n  b: {type: file, dir: %s/b}\n  n: {type: discard}\n"
             "pipelines:\n  - {name: t, signals: [traces], backends: [a, b]}\n"
             "  - {name: l, signals: [logs], backends: [b, n]}\n",
             f->dir, f->dir);
    fixture_load(f, yaml, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_down(*state);
    free(*state);
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
    req_origin o = {.listener = "l", .transport = REQ_HTTP};
    ingest_export(f->ictx, &limits, sig, OTLP_JSON, &o, body, len, gz, res);
}

static void test_fan_out_by_signal_with_partial_success(void **state)
{
    fixture *f = *state;
    ingest_result res;
    export(f, OTLP_TRACES, span_json, strlen(span_json), 0, &res);
    assert_int_equal(res.status, REQ_OK);
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
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(res.accepted, 1);
    assert_int_equal(file_lines(f->dir, "b", "logs", NULL, 0), 1);
    assert_int_equal(file_lines(f->dir, "a", "logs", NULL, 0), 0);
    /* Metrics go nowhere: no pipeline takes them, which is accepted, not an error. */
    export(f, OTLP_METRICS, "{}", 2, 0, &res);
    assert_int_equal(res.status, REQ_OK);
}

static void test_gzip_and_limits(void **state)
{
    fixture *f = *state;
    buf gz = BUF_INIT;
    assert_int_equal(gzip_deflate((const uint8_t *)log_json, strlen(log_json), -1, &gz), GZIP_OK);
    ingest_result res;
    export(f, OTLP_LOGS, gz.data, gz.len, 1, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(res.accepted, 1);
    buf_free(&gz);

    export(f, OTLP_LOGS, "not gzip", 8, 1, &res);
    assert_int_equal(res.status, REQ_INVALID);
    assert_int_equal(ingest_http_status(res.status), 400);

    /* A 1 MiB body of zeros compresses to ~1 KiB but inflates past the 64 KiB limit. */
    size_t big = 1024 * 1024;
    uint8_t *zeros = calloc(1, big);
    buf bomb = BUF_INIT;
    assert_int_equal(gzip_deflate(zeros, big, 9, &bomb), GZIP_OK);
    export(f, OTLP_LOGS, bomb.data, bomb.len, 1, &res);
    assert_int_equal(res.status, REQ_TOO_LARGE);
    assert_int_equal(ingest_grpc_status(res.status), GRPC_RESOURCE_EXHAUSTED);
    export(f, OTLP_LOGS, zeros, limits.max_request_bytes + 1, 0, &res);
    assert_int_equal(res.status, REQ_TOO_LARGE);
    assert_int_equal(ingest_http_status(res.status), 413);
    buf_free(&bomb);
    free(zeros);

    export(f, OTLP_TRACES, "{\"resourceSpans\":[", 18, 0, &res);
    assert_int_equal(res.status, REQ_INVALID);
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
    f->pl = pipeline_new(&f->cfg->routing, 1, err, sizeof(err));
    assert_non_null(f->pl);
    ingest_ctx_free(f->ictx);
    f->ictx = ingest_ctx_new(f->pl, NULL);
    ingest_result res;
    export(f, OTLP_TRACES, span_json, strlen(span_json), 0, &res);
    assert_int_equal(res.status, REQ_UNAVAILABLE);
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
    assert_int_equal(ingest_http_status(REQ_UNSUPPORTED_MEDIA), 415);
    assert_int_equal(ingest_http_status(REQ_THROTTLED), 429);
    assert_int_equal(ingest_http_status(REQ_UNAUTHENTICATED), 401);
    assert_int_equal(ingest_http_status(REQ_PERMISSION_DENIED), 403);
    assert_int_equal(ingest_grpc_status(REQ_NOT_FOUND), GRPC_UNIMPLEMENTED);
    assert_int_equal(ingest_grpc_status(REQ_INVALID), GRPC_INVALID_ARGUMENT);
    assert_string_equal(ingest_status_reason(REQ_TOO_LARGE), "too_large");
}

/* Routing: two resources in one request, rules, default, tenant lists, edits. */
static const char two_resources[] =
    "{\"resourceSpans\":["
    "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"shop-cart\"}},"
    "{\"key\":\"secret\",\"value\":{\"stringValue\":\"x\"}}]},"
    "\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\",\"name\":\"cart\"}]}]},"
    "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"billing\"}}]},"
    "\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f11\",\"spanId\":\"0102030405060709\",\"name\":\"bill\"},"
    "{\"traceId\":\"0102030405060708090a0b0c0d0e0f12\",\"spanId\":\"010203040506070a\",\"name\":\"bill2\"}]}]}]}";

static void test_routing_rules_default_and_edits(void **state)
{
    (void)state;
    fixture f;
    fixture_dir(&f);
    const char *dir = f.dir;
    char yaml[2048], err[512];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0, tenant: t1}]\n"
             "tenants: [{id: t1, endpoints: [l], pipelines: [shop, rest, audit]}, {id: t2, endpoints: [l], pipelines: [audit]}]\n"
             "backends:\n  shop: {type: file, dir: %s/shop}\n  rest: {type: file, dir: %s/rest}\n"
             "  audit: {type: file, dir: %s/audit}\n  unused: {type: file, dir: %s/unused}\n"
             "pipelines:\n"
             /* RE2 syntax ((?i), \\w), anchored as a whole: "bill" must not take "billing". */
             "  - name: shop\n    signals: [traces]\n    match: {service.name: {regex: 'bill|(?i)SHOP-\\w+'}}\n"
             "    resource:\n      - {action: upsert, key: tenant.id, from: tenant}\n"
             "      - {action: delete, key: secret}\n      - {action: insert, key: service.name, value: nope}\n"
             "      - {action: update, key: missing, value: nope}\n    backends: [shop]\n"
             "  - {name: rest, signals: [traces], default: true, backends: [rest]}\n"
             "  - {name: audit, signals: [traces, logs], backends: [audit]}\n"
             "  - {name: unused, signals: [traces], backends: [unused]}\n",
             dir, dir, dir, dir);
    fixture_load(&f, yaml, 1);
    pipeline *pl = f.pl;
    req_origin o = {.listener = "l", .transport = REQ_HTTP};
    /* No auth module here: ingest sets tenant "" -- route as tenant t1 by
     * calling the pipeline directly with an origin that names it. */
    arena *a = arena_new(0);
    otlp_request req;
    char derr[200];
    uint32_t retry_after_s = 0;
    assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_JSON, (const uint8_t *)two_resources, strlen(two_resources), a,
                                 &req, derr, sizeof(derr)), 0);
    otlp_validate(&req);
    o.tenant = "t1";
    assert_int_equal(pipeline_submit(pl, &req, o.tenant, a, &retry_after_s, err, sizeof(err)), PIPELINE_OK);
    char line[4096];
    /* shop: only the shop-cart resource, edited. */
    assert_int_equal(file_lines(dir, "shop", "traces", line, sizeof(line)), 1);
    assert_non_null(strstr(line, "\"cart\""));
    assert_null(strstr(line, "\"bill\""));
    assert_non_null(strstr(line, "{\"key\":\"tenant.id\",\"value\":{\"stringValue\":\"t1\"}}"));
    assert_null(strstr(line, "secret"));
    assert_null(strstr(line, "nope")); /* insert skipped (present), update skipped (absent) */
    /* rest (default): the billing resource, which no pipeline with rules
     * took; audit (no rules) does not count as a routing decision. */
    assert_int_equal(file_lines(dir, "rest", "traces", line, sizeof(line)), 1);
    assert_non_null(strstr(line, "billing"));
    assert_null(strstr(line, "shop-cart"));
    /* audit: everything, unedited (edits are per pipeline). */
    assert_int_equal(file_lines(dir, "audit", "traces", line, sizeof(line)), 1);
    assert_non_null(strstr(line, "\"secret\""));
    assert_non_null(strstr(line, "\"bill2\""));
    /* t1 does not list `unused`. */
    assert_int_equal(file_lines(dir, "unused", "traces", NULL, 0), 0);
    /* t2 only reaches audit; an unknown tenant (no list) reaches all routes. */
    o.tenant = "t2";
    assert_int_equal(pipeline_submit(pl, &req, o.tenant, a, &retry_after_s, err, sizeof(err)), PIPELINE_OK);
    assert_int_equal(file_lines(dir, "audit", "traces", NULL, 0), 2);
    assert_int_equal(file_lines(dir, "shop", "traces", NULL, 0), 1);
    o.tenant = "";
    assert_int_equal(pipeline_submit(pl, &req, o.tenant, a, &retry_after_s, err, sizeof(err)), PIPELINE_OK);
    assert_int_equal(file_lines(dir, "unused", "traces", NULL, 0), 1);
    arena_free(a);
    fixture_down(&f);
}

static void test_default_pipeline_takes_unmatched(void **state)
{
    (void)state;
    fixture f;
    fixture_dir(&f);
    const char *dir = f.dir;
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n  shop: {type: file, dir: %s/shop}\n  rest: {type: file, dir: %s/rest}\n"
             "pipelines:\n"
             "  - {name: shop, signals: [traces], match: {service.name: shop-cart}, backends: [shop]}\n"
             "  - {name: rest, signals: [traces], default: true, backends: [rest]}\n",
             dir, dir);
    fixture_load(&f, yaml, 1);
    ingest_result res;
    req_origin o = {.listener = "l", .transport = REQ_HTTP};
    ingest_export(f.ictx, &limits, OTLP_TRACES, OTLP_JSON, &o, (const uint8_t *)two_resources, strlen(two_resources), 0,
                  &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(res.accepted, 3);
    char line[4096];
    assert_int_equal(file_lines(dir, "shop", "traces", line, sizeof(line)), 1);
    assert_null(strstr(line, "billing"));
    assert_int_equal(file_lines(dir, "rest", "traces", line, sizeof(line)), 1);
    assert_non_null(strstr(line, "billing"));
    assert_null(strstr(line, "shop-cart"));
    fixture_down(&f);
}

static void route_config_fails_with(const char *backends, const char *pipelines, const char *expected)
{
    char yaml[1024], err[512];
    snprintf(yaml, sizeof(yaml), "listeners: [{name: l, http: 127.0.0.1:0}]\n%s%s", backends, pipelines);
    config *cfg;
    assert_int_equal(config_load_string("r.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
    pipeline *pl = pipeline_new(&cfg->routing, 1, err, sizeof(err));
    if (pl != NULL || strstr(err, expected) == NULL)
        fail_msg("expected \"%s\", got \"%s\"", expected, pl ? "(none)" : err);
    char check_err[512] = "";
    if (pipeline_check(&cfg->routing, check_err, sizeof(check_err)) == 0 || strcmp(check_err, err) != 0)
        fail_msg("pipeline_check: expected \"%s\", got \"%s\"", err, check_err);
    config_free(cfg);
}

static void route_config_fails(const char *pipelines, const char *expected)
{
    route_config_fails_with("backends: {d: {type: discard}}\n", pipelines, expected);
}

static void test_routing_config_errors(void **state)
{
    (void)state;
    route_config_fails("pipelines: [{name: p, signals: [traces], backends: [d], match: {a: {regex: \"(\"}}}]\n",
                       "r.yaml:3:76: pipelines[0].match.a.regex: invalid regular expression: missing ): ( (RE2 "
                       "syntax, as Go's regexp: no backreferences, lookaround or POSIX word boundaries)");
    route_config_fails("pipelines: [{name: p, signals: [traces], backends: [d], match: {a: {regex: '(x)\\1'}}}]\n",
                       "r.yaml:3:76: pipelines[0].match.a.regex: invalid regular expression: invalid escape sequence: "
                       "\\1 (RE2 syntax");
    route_config_fails("pipelines: [{name: p, signals: [traces], backends: [d], match: {a: [1]}}]\n",
                       "expected a string or {regex: ...}");
    route_config_fails("pipelines: [{name: p, signals: [traces], backends: [d], default: true, match: {a: b}}]\n",
                       "cannot have match rules");
    route_config_fails("pipelines: [{name: p, signals: [traces], backends: [d], resource: [{action: add, key: k, value: v}]}]\n",
                       "expected insert, update, upsert or delete");
    route_config_fails("pipelines: [{name: p, signals: [traces], backends: [d], resource: [{action: insert, key: k}]}]\n",
                       "set exactly one of value and from");
    route_config_fails("pipelines: [{name: p, signals: [traces], backends: [d]}]\n"
                       "tenants: [{id: t, endpoints: [l], pipelines: [q]}]\n",
                       "no pipeline \"q\"");
    static const char set[] = "sampling: {s: {decision_wait: 1s, policies: [{name: all, type: always_sample}]}}\n";
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "%spipelines: [{name: p, signals: [traces, logs], backends: [d], sampling: s}]\n",
             set);
    route_config_fails(yaml, "r.yaml:4:73: pipelines[0].sampling: tail sampling needs a pipeline whose signals are "
                             "exactly [traces]");
    snprintf(yaml, sizeof(yaml), "%spipelines: [{name: p, signals: [traces], backends: [d], sampling: t}]\n", set);
    route_config_fails(yaml, "r.yaml:4:67: pipelines[0].sampling: no policy set \"t\" (define it under sampling:)");
    route_config_fails("sampling: [1]\n", "r.yaml:3:11: sampling: expected a map of policy-set name");
    /* An unused set is still checked. */
    route_config_fails("sampling: {s: {policies: [{name: x, type: nope}]}}\n", "sampling.s.policies[0].type");
    /* A backend that takes traces only, in a pipeline that also routes logs. */
    route_config_fails_with("backends: {x: {type: aws_xray, region: us-east-1, endpoint: \"http://127.0.0.1:1\",\n"
                            "  credentials: {source: static, access_key_id: A, secret_access_key: B}}}\n",
                            "pipelines: [{name: p, signals: [traces, logs], backends: [x]}]\n",
                       "r.yaml:4:58: pipelines[0].backends: backend \"x\" (aws_xray) does not take logs; give this "
                       "pipeline `signals:` it takes");
}

/* A traces pipeline with a tail sampler (status_code ERROR) and a file
 * backend, two shards: only the error trace reaches the file, when due;
 * late spans follow their trace's decision; flush decides the rest. */
static const char *trace_json(char *out, size_t len, char id, const char *span, int error)
{
    snprintf(out, len,
             "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"%c%c0102030405060708090a0b0c0d0e0f\","
             "\"spanId\":\"%s\",\"name\":\"s\"%s}]}]}]}",
             id, id, span, error ? ",\"status\":{\"code\":2}" : "");
    return out;
}

static void send_trace(fixture *f, char id, const char *span, int error, ingest_result *res)
{
    char body[512];
    trace_json(body, sizeof(body), id, span, error);
    export(f, OTLP_TRACES, body, strlen(body), 0, res);
    if (res->status != REQ_OK)
        fail_msg("export: %s", res->message);
}

static int count_in_file(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    int n = 0;
    char line[8192];
    while (fgets(line, sizeof(line), fp) != NULL)
        for (const char *p = line; (p = strstr(p, needle)) != NULL; p++)
            n++;
    fclose(fp);
    return n;
}

static void test_tail_sampling_pipeline(void **state)
{
    (void)state;
    fixture f;
    fixture_dir(&f);
    const char *dir = f.dir;
    char yaml[1024], path[128];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends: {f: {type: file, dir: %s}}\n"
             "sampling:\n  errors: {decision_wait: 1s, policies: [{name: e, type: status_code, status_codes: [ERROR]}]}\n"
             "pipelines: [{name: t, signals: [traces], backends: [f], sampling: errors}]\n",
             dir);
    fixture_load(&f, yaml, 2);
    pipeline *pl = f.pl;
    snprintf(path, sizeof(path), "%s/traces.jsonl", dir);
    ingest_result res;
    /* Trace aa: one error span and one plain span; trace bb: one plain span. */
    send_trace(&f, 'a', "a000000000000001", 1, &res);
    assert_int_equal(res.status, REQ_OK);
    send_trace(&f, 'a', "a000000000000002", 0, &res);
    assert_int_equal(res.status, REQ_OK);
    send_trace(&f, 'b', "b000000000000001", 0, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(count_in_file(path, "\"spanId\""), 0); /* buffered, not exported */

    uint64_t later = clock_now_ns() + 2000000000ull;
    pipeline_tick(pl, 0, later);
    pipeline_tick(pl, 1, later);
    assert_int_equal(count_in_file(path, "a000000000000001"), 1);
    assert_int_equal(count_in_file(path, "a000000000000002"), 1);
    assert_int_equal(count_in_file(path, "b000000000000001"), 0);

    /* Late spans follow the cached decisions at once. */
    send_trace(&f, 'a', "a000000000000003", 0, &res);
    assert_int_equal(res.status, REQ_OK);
    send_trace(&f, 'b', "b000000000000002", 1, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(count_in_file(path, "a000000000000003"), 1);
    assert_int_equal(count_in_file(path, "b000000000000002"), 0);

    /* Shutdown decides what is still buffered. */
    send_trace(&f, 'c', "c000000000000001", 1, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(count_in_file(path, "c000000000000001"), 0);
    pipeline_flush(pl);
    assert_int_equal(count_in_file(path, "c000000000000001"), 1);
    assert_int_equal(count_in_file(path, "\"spanId\""), 4);
    fixture_down(&f);
}

/* ---- a sampled pipeline in front of a backend without queue room ---- */

/* A listening socket that never accepts: the exporter connects (the
 * kernel completes it), sends, and waits for an answer until its timeout. */
static int stalled_sink(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* The value of one series in /metrics (0 when absent). */
static double metric_value(const char *series)
{
    buf out = BUF_INIT;
    assert_int_equal(metrics_render(&out), 0);
    buf_putc(&out, '\0');
    const char *at = strstr(out.data, series);
    double v = at != NULL ? atof(at + strlen(series) + 1) : 0;
    buf_free(&out);
    return v;
}

/* Whole-file occurrences of needle (lines here are longer than fgets' buffer). */
static int count_in_whole_file(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *d = malloc((size_t)n + 1);
    assert_int_equal(fread(d, 1, (size_t)n, fp), (size_t)n);
    d[n] = '\0';
    fclose(fp);
    int c = 0;
    for (const char *p = d; (p = strstr(p, needle)) != NULL; p++)
        c++;
    free(d);
    return c;
}

/* One trace of one span with a ~30 KB attribute: trace and span id from i. */
static void send_big_trace(fixture *f, unsigned i, ingest_result *res)
{
    static char body[40000], pad[30001];
    memset(pad, 'x', sizeof(pad) - 1);
    snprintf(body, sizeof(body),
             "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"%032x\",\"spanId\":\"%016x\","
             "\"name\":\"s\",\"attributes\":[{\"key\":\"pad\",\"value\":{\"stringValue\":\"%s\"}}]}]}]}]}",
             i + 1, i + 1, pad);
    export(f, OTLP_TRACES, body, strlen(body), 0, res);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Backends f (file: always room) and q (otlp_http whose sink never answers,
 * 256 KiB queue, each batch given up after 500 ms so room comes back
 * slowly). Sampled traces that q has no room for are held in the sampler,
 * not dropped; once the held traces fill the sampler's 1 MiB budget new
 * requests get 503; when q has room again the held traces reach it, and a
 * new request is accepted; at shutdown pipeline_flush waits for the rest.
 * f gets every acknowledged trace exactly once, and no sampled span is
 * counted as dropped. */
static void test_sampled_traces_held_for_queue_room(void **state)
{
    (void)state;
    fixture f;
    fixture_dir(&f);
    int port, sink = stalled_sink(&port);
    char yaml[1024], path[128];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n  f: {type: file, dir: %s}\n"
             "  q: {type: otlp_http, endpoint: \"http://127.0.0.1:%d\", compression: none, timeout: 500ms,\n"
             "      retry: {enabled: false}, batch: {timeout: 0ms}, queue: {max_bytes: 256KiB}}\n"
             "sampling:\n  all: {decision_wait: 1s, max_bytes: 1MiB, policies: [{name: a, type: always_sample}]}\n"
             "pipelines: [{name: held, signals: [traces], backends: [f, q], sampling: all}]\n",
             f.dir, port);
    fixture_load(&f, yaml, 1);
    snprintf(path, sizeof(path), "%s/traces.jsonl", f.dir);
    ingest_result res;
    unsigned accepted = 0, refused = 0;
    for (unsigned i = 0; i < 200 && refused == 0; i++) {
        send_big_trace(&f, i, &res);
        if (res.status == REQ_OK)
            accepted++;
        else if (res.status == REQ_UNAVAILABLE)
            refused++;
        else
            fail_msg("status %d: %s", (int)res.status, res.message);
    }
    assert_int_equal(refused, 1); /* the budget filled with held traces: 503, retryable */
    assert_true(accepted > 8 && accepted < 100);
    assert_true(metric_value("otlp_gateway_sampler_traces_held{pipeline=\"held\"}") > 0);
    assert_int_equal(metric_value("otlp_gateway_sampler_export_dropped_total{pipeline=\"held\",reason=\"queue_full\"}"), 0);

    /* q's queue gives room back as it gives batches up: ticks hand the held
     * traces on, and the pipeline takes requests again. */
    int ok = 0;
    for (int k = 0; k < 150 && !ok; k++) {
        sleep_ms(100);
        pipeline_tick(f.pl, 0, clock_now_ns() + 2000000000ull);
        send_big_trace(&f, accepted + refused, &res);
        ok = res.status == REQ_OK;
    }
    assert_true(ok);
    accepted++;
    /* Shutdown waits (bounded) for room for what is still held. */
    pipeline_flush(f.pl);
    assert_int_equal(metric_value("otlp_gateway_sampler_traces_held{pipeline=\"held\"}"), 0);
    assert_int_equal(metric_value("otlp_gateway_sampler_export_dropped_total{pipeline=\"held\",reason=\"queue_full\"}"), 0);
    assert_int_equal(metric_value("otlp_gateway_sampler_export_dropped_total{pipeline=\"held\",reason=\"shutdown\"}"), 0);
    /* Every acknowledged trace reached f once and q once (q's sink never
     * answers, so q counts each as given up: still exactly once). */
    assert_int_equal(count_in_whole_file(path, "\"spanId\""), (int)accepted);
    for (unsigned i = 0; i <= accepted; i++) { /* ids 1..accepted-1, the refused one, the last one */
        char id[32];
        snprintf(id, sizeof(id), "\"%016x\"", i + 1);
        assert_int_equal(count_in_whole_file(path, id), i == accepted - 1 ? 0 : 1);
    }
    double q_items = metric_value("otlp_gateway_export_sent_items_total{backend=\"q\",signal=\"traces\"}") +
                     metric_value("otlp_gateway_export_failed_items_total{backend=\"q\",signal=\"traces\",reason=\"dropped\"}");
    assert_int_equal((int)q_items, (int)accepted);
    close(sink);
    fixture_down(&f);
}

/* A protobuf traces request of one span, with its trace_id sent twice
 * (the second wins; all zero, and so invalid, unless kept_valid): not how
 * an encoder writes it, so its bytes tell whether the pipeline forwarded
 * them or encoded the request again. */
static size_t duplicated_field_request(uint8_t *out, int kept_valid)
{
    uint8_t span[] = {
        0x0a, 16, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, /* trace_id (first) */
        0x0a, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* trace_id (kept) */
        0x12, 8, 1, 2, 3, 4, 5, 6, 7, 8, /* span_id */
        0x2a, 1, 'w'}; /* name */
    if (!kept_valid)
        memset(span + 20, 0, 16);
    const uint8_t head[] = {0x0a, (uint8_t)(sizeof(span) + 4), 0x12, (uint8_t)(sizeof(span) + 2), 0x12,
                            (uint8_t)sizeof(span)}; /* resource_spans { scope_spans { spans { ... */
    memcpy(out, head, sizeof(head));
    memcpy(out + sizeof(head), span, sizeof(span));
    return sizeof(head) + sizeof(span);
}

static void export_pb(fixture *f, const void *body, size_t len, ingest_result *res)
{
    req_origin o = {.listener = "l", .transport = REQ_HTTP};
    ingest_export(f->ictx, &limits, OTLP_TRACES, OTLP_PROTOBUF, &o, body, len, 0, res);
}

/* An exporter in front of stalled_sink (a format: its port). */
#define WQ_BACKEND                                                                                          \
    "  wq: {type: otlp_http, endpoint: \"http://127.0.0.1:%d\", compression: none, timeout: 500ms,\n"      \
    "      retry: {enabled: false}, batch: {timeout: 10s, max_items: 100000}}\n"

/* Which requests may skip decoding, and that those reach a queued backend
 * as the client's own bytes. */
static void test_wire_path(void **state)
{
    (void)state;
    fixture f;
    fixture_dir(&f);
    int port, sink = stalled_sink(&port);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n  f: {type: file, dir: %s}\n  d: {type: discard}\n"
             WQ_BACKEND
             "pipelines:\n"
             "  - {name: raw, signals: [traces], backends: [wq, d]}\n"
             "  - {name: kept, signals: [logs], backends: [f, d]}\n"
             "  - {name: ruled, signals: [metrics], match: {service.name: x}, backends: [wq]}\n",
             f.dir, port);
    fixture_load(&f, yaml, 1);
    int sampled = -1;
    assert_int_equal(pipeline_wire_use(f.pl, "", OTLP_TRACES, &sampled), PIPELINE_WIRE_ONLY);
    assert_int_equal(sampled, 0); /* no sampler: no notes of the spans */
    assert_int_equal(pipeline_wire_use(f.pl, "", OTLP_LOGS, NULL), PIPELINE_WIRE_NONE); /* the file backend decodes */
    assert_int_equal(pipeline_wire_use(f.pl, "", OTLP_METRICS, NULL), PIPELINE_WIRE_PAYLOAD); /* rules read resources */

    uint8_t body[128];
    size_t len = duplicated_field_request(body, 1);
    ingest_result res;
    export_pb(&f, body, len, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(res.accepted, 1);
    /* wq queued exactly the client's bytes (encoding again drops the first trace_id). */
    assert_int_equal((size_t)metric_value("otlp_gateway_export_queue_bytes{backend=\"wq\"}"), len);
    assert_int_equal(metric_value("otlp_gateway_pipeline_items_total{pipeline=\"raw\",signal=\"traces\"}"), 1);

    /* An invalid span sends the request the decoding way: partial
     * success, nothing more queued. */
    uint8_t bad[128];
    size_t bl = duplicated_field_request(bad, 0);
    export_pb(&f, bad, bl, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(res.accepted, 0);
    assert_int_equal(res.rejected, 1);
    assert_int_equal((size_t)metric_value("otlp_gateway_export_queue_bytes{backend=\"wq\"}"), len);
    close(sink);
    fixture_down(&f);
}

/* A sampled pipeline whose policies read no attribute takes the request's
 * bytes undecoded and keeps its spans as they came; one with an attribute
 * policy needs the decoded request. */
static void test_wire_sampling(void **state)
{
    (void)state;
    fixture f;
    fixture_dir(&f);
    int port, sink = stalled_sink(&port);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n"
             WQ_BACKEND
             "sampling:\n"
             "  all: {decision_wait: 1s, policies: [{name: a, type: always_sample}]}\n"
             "  attr: {decision_wait: 1s, policies: [{name: k, type: string_attribute, key: k, values: [v]}]}\n"
             "tenants: [{id: x, endpoints: [l], pipelines: [plain]}, {id: y, endpoints: [l], pipelines: [attrs]}]\n"
             "pipelines:\n"
             "  - {name: plain, signals: [traces], backends: [wq], sampling: all}\n"
             "  - {name: attrs, signals: [traces], backends: [wq], sampling: attr}\n",
             port);
    fixture_load(&f, yaml, 1);
    int sampled = -1;
    assert_int_equal(pipeline_wire_use(f.pl, "x", OTLP_TRACES, &sampled), PIPELINE_WIRE_ONLY);
    assert_int_equal(sampled, 1); /* its sampler reads the scan's notes */
    assert_int_equal(pipeline_wire_use(f.pl, "y", OTLP_TRACES, &sampled), PIPELINE_WIRE_NONE);
    assert_int_equal(sampled, 0);

    uint8_t body[128];
    size_t len = duplicated_field_request(body, 1);
    pipeline_status ps;
    char err[256];
    uint32_t retry = 0;
    otlp_request req = {.signal = OTLP_TRACES, .wire = body, .wire_len = len, .items = 1};
    arena *a = arena_new(0);
    ps = pipeline_submit(f.pl, &req, "x", a, &retry, err, sizeof(err));
    assert_int_equal(ps, PIPELINE_OK);
    assert_int_equal(metric_value("otlp_gateway_export_queue_bytes{backend=\"wq\"}"), 0); /* buffered */
    pipeline_tick(f.pl, 0, clock_now_ns() + 2000000000ull);
    /* The kept trace is the client's bytes: encoding the span again would
     * have dropped its first trace_id. */
    assert_int_equal((size_t)metric_value("otlp_gateway_export_queue_bytes{backend=\"wq\"}"), len);
    arena_free(a);
    close(sink);
    fixture_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fan_out_by_signal_with_partial_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_write_failure_is_retryable, setup, teardown),
        cmocka_unit_test(test_paths_and_status_tables),
        cmocka_unit_test(test_routing_rules_default_and_edits),
        cmocka_unit_test(test_default_pipeline_takes_unmatched),
        cmocka_unit_test(test_routing_config_errors),
        cmocka_unit_test(test_tail_sampling_pipeline),
        cmocka_unit_test(test_sampled_traces_held_for_queue_room),
        cmocka_unit_test(test_wire_path),
        cmocka_unit_test(test_wire_sampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
