/* test_ingest: gateway/ingest.c alone, over core and otlp.
 *
 * auth.h and pipeline.h are replaced by the test doubles below (no auth
 * library, no routing, no backends are linked): they record what ingest
 * handed them and answer what the test asks for, so each test drives one
 * path through ingest_export -- decode, gzip, limits, validation, auth
 * refusals, admission, the pipeline's verdict -- and checks the result, the
 * response body and the metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "gzip.h"
#include "ingest.h"
#include "logs_service.pb-c.h"
#include "metrics.h"
#include "metrics_service.pb-c.h"
#include "../wire_notes.h"
#include "pipeline.h"
#include "status.pb-c.h"
#include "trace_service.pb-c.h"

/* ---- auth and pipeline test doubles ------------------------------------- */

struct tenant {
    const char *id;
};
static const tenant ACME = {"acme"}, BETA = {"beta"};

/* Stand-ins for the shared auth and pipeline: only their addresses matter. */
static char auth_token, pipeline_token;
#define FAKE_AUTH ((auth *)&auth_token)
#define FAKE_PIPELINE ((pipeline *)&pipeline_token)

static struct {
    /* what the test wants the doubles to answer */
    req_status auth_status;
    const char *auth_reason;
    uint32_t auth_retry_after;
    const char *auth_message;
    const tenant *auth_tenant;
    req_status admit_status;
    uint32_t admit_retry_after;
    pipeline_status submit_status;
    uint32_t submit_retry_after; /* with PIPELINE_RETRY: the pipeline's hint */
    size_t submit_alloc; /* bytes pipeline_submit takes from the request's arena */
    pipeline_wire wire_use; /* what pipeline_wire_use answers */
    int wire_sampled;       /* and says in *sampled */
    /* what the doubles saw */
    int auth_calls, admit_calls, submit_calls;
    char authorization[64];
    const char *listener;
    const tenant *admit_tenant;
    otlp_signal admit_sig;
    size_t admit_items, admit_bytes;
    otlp_signal submit_sig;
    size_t submit_items;
    char submit_tenant[32];
    char submit_json[4096]; /* the request pipeline_submit got, as OTLP/JSON */
    int submit_decoded;     /* it had req->msg */
    size_t submit_wire_len; /* its req->wire_len, 0 without wire bytes */
    size_t submit_n_spans;  /* its req->n_spans, 0 without notes */
    int submit_notes_match; /* they are the decoder's reading of its wire */
    /* the per-tenant counts (auth_count_items, auth_count_refused) */
    const tenant *counted_tenant;
    size_t tenant_items, tenant_refused;
    char refused_reason[32];
} fake;

static void fake_reset(void)
{
    memset(&fake, 0, sizeof(fake));
    fake.auth_status = REQ_OK;
    fake.auth_reason = "ok";
    fake.auth_message = "";
    fake.auth_tenant = &ACME;
}

void auth_request(auth *a, const req_origin *o, auth_result *out)
{
    assert_ptr_equal(a, FAKE_AUTH);
    fake.auth_calls++;
    fake.listener = o->listener;
    snprintf(fake.authorization, sizeof(fake.authorization), "%.*s", (int)o->authorization_len,
             o->authorization ? o->authorization : "");
    memset(out, 0, sizeof(*out));
    out->status = fake.auth_status;
    out->tenant = fake.auth_status == REQ_OK ? fake.auth_tenant : NULL;
    out->method = "api_key";
    out->reason = fake.auth_reason;
    out->retry_after_s = fake.auth_retry_after;
    snprintf(out->message, sizeof(out->message), "%s", fake.auth_message);
}

req_status auth_admit(const tenant *t, otlp_signal sig, size_t items, size_t bytes, uint32_t *retry_after_s)
{
    fake.admit_calls++;
    fake.admit_tenant = t;
    fake.admit_sig = sig;
    fake.admit_items = items;
    fake.admit_bytes = bytes;
    if (fake.admit_status != REQ_OK)
        *retry_after_s = fake.admit_retry_after;
    return fake.admit_status;
}

const char *tenant_id(const tenant *t) { return t->id; }

void auth_count_items(const tenant *t, otlp_signal sig, size_t accepted)
{
    (void)sig;
    fake.counted_tenant = t;
    fake.tenant_items += accepted;
}

void auth_count_refused(const tenant *t, otlp_signal sig, const char *reason, size_t items)
{
    (void)sig;
    fake.counted_tenant = t;
    fake.tenant_refused += items;
    snprintf(fake.refused_reason, sizeof(fake.refused_reason), "%s", reason);
}

/* The peer listener's calls (ingest_forwarded, ingest_draining) are covered
 * by test_forward against the real listener; here they only have to link. */
pipeline_status pipeline_accept_forwarded(pipeline *pl, const otlp_request *req, const char *tenant,
                                          const char *pipeline_name, const char *from, arena *a,
                                          uint32_t *retry_after_s, char *err, size_t errlen)
{
    (void)pl, (void)req, (void)tenant, (void)pipeline_name, (void)from, (void)a, (void)retry_after_s, (void)err,
        (void)errlen;
    fail_msg("pipeline_accept_forwarded is not reached from ingest_export");
    return PIPELINE_FAIL;
}

int pipeline_draining(pipeline *pl)
{
    (void)pl;
    return 0;
}

pipeline_wire pipeline_wire_use(const pipeline *pl, const char *tenant, otlp_signal sig, int *sampled)
{
    assert_ptr_equal(pl, FAKE_PIPELINE);
    (void)tenant, (void)sig;
    if (sampled != NULL)
        *sampled = fake.wire_sampled;
    return fake.wire_use;
}

pipeline_status pipeline_submit(pipeline *pl, const otlp_request *req, const char *tenant, arena *a,
                                uint32_t *retry_after_s, char *err, size_t errlen)
{
    assert_ptr_equal(pl, FAKE_PIPELINE);
    if (fake.submit_status == PIPELINE_RETRY)
        *retry_after_s = fake.submit_retry_after;
    fake.submit_calls++;
    fake.submit_sig = req->signal;
    fake.submit_items = req->items;
    fake.submit_decoded = req->msg != NULL;
    fake.submit_wire_len = req->wire != NULL ? req->wire_len : 0;
    snprintf(fake.submit_tenant, sizeof(fake.submit_tenant), "%s", tenant);
    /* Without a decoded form, the wire bytes are the request. */
    const ProtobufCMessage *msg = req->msg;
    arena *wa = arena_new(0);
    if (msg == NULL) {
        otlp_request w;
        char derr[160];
        assert_non_null(req->wire);
        assert_int_equal(otlp_decode(req->signal, OTLP_PROTOBUF, req->wire, req->wire_len, wa, &w, derr, sizeof(derr)), 0);
        assert_int_equal(w.items, req->items);
        msg = w.msg;
        if (req->spans != NULL) {
            otlp_wire_spans notes = {.v = (otlp_wire_span *)req->spans, .cap = req->n_spans, .n = req->n_spans};
            fake.submit_notes_match = wire_notes_match(req->wire, &notes, &w);
        }
    }
    fake.submit_n_spans = req->spans != NULL ? req->n_spans : 0;
    buf json = BUF_INIT;
    assert_int_equal(otlp_encode_json(msg, &json), 0);
    arena_free(wa);
    snprintf(fake.submit_json, sizeof(fake.submit_json), "%.*s", (int)json.len, json.data);
    buf_free(&json);
    if (fake.submit_alloc)
        assert_null(arena_alloc(a, fake.submit_alloc));
    /* Backend errors name hosts and paths: never for the client. */
    snprintf(err, errlen, "connect to secret-host:9200 failed");
    return fake.submit_status;
}

/* ---- requests ------------------------------------------------------------ */

#define TRACE_ID "\"traceId\":\"5b8efff798038103d269b633813fc60c\""
static const char TRACES_JSON[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc\"}}]},"
    "\"scopeSpans\":[{\"spans\":["
    "{" TRACE_ID ",\"spanId\":\"eee19b7ec3c1b174\",\"name\":\"root\"},"
    "{" TRACE_ID ",\"spanId\":\"eee19b7ec3c1b175\",\"parentSpanId\":\"eee19b7ec3c1b174\",\"name\":\"child\"}"
    "]}]}]}";
/* Three spans, the second with an all-zero trace id. */
static const char TRACES_PARTIAL_JSON[] =
    "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
    "{" TRACE_ID ",\"spanId\":\"eee19b7ec3c1b174\",\"name\":\"good1\"},"
    "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"eee19b7ec3c1b175\",\"name\":\"bad\"},"
    "{" TRACE_ID ",\"spanId\":\"eee19b7ec3c1b176\",\"name\":\"good2\"}"
    "]}]}]}";
static const char METRICS_JSON[] =
    "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
    "{\"name\":\"my.gauge\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1.5},{\"asInt\":\"2\"}]}},"
    "{\"name\":\"my.counter\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
    "\"dataPoints\":[{\"asInt\":\"5\"}]}}]}]}]}";
static const char LOGS_JSON[] =
    "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
    "{\"severityNumber\":9,\"body\":{\"stringValue\":\"hello\"}},"
    "{\"body\":{\"stringValue\":\"world\"}}]}]}]}";

static const struct {
    const char *json;
    size_t items;
    const char *marker; /* appears in the JSON the pipeline got */
} SIGNALS[OTLP_SIGNAL_COUNT] = {
    {TRACES_JSON, 2, "\"name\":\"child\""},
    {METRICS_JSON, 3, "\"name\":\"my.counter\""},
    {LOGS_JSON, 2, "\"stringValue\":\"world\""},
};

/* The body of `json` in `enc` (protobuf: decoded and packed); malloc'd. */
static uint8_t *body_of(otlp_signal sig, otlp_encoding enc, const char *json, size_t *len)
{
    if (enc == OTLP_JSON) {
        *len = strlen(json);
        uint8_t *p = malloc(*len);
        memcpy(p, json, *len);
        return p;
    }
    arena *a = arena_new(0);
    otlp_request req;
    char err[200];
    if (otlp_decode(sig, OTLP_JSON, (const uint8_t *)json, strlen(json), a, &req, err, sizeof(err)) != 0)
        fail_msg("fixture: %s", err);
    *len = protobuf_c_message_get_packed_size(req.msg);
    uint8_t *p = malloc(*len);
    protobuf_c_message_pack(req.msg, p);
    arena_free(a);
    return p;
}

static uint8_t *gzipped(const uint8_t *p, size_t n, size_t *len)
{
    buf b = BUF_INIT;
    assert_int_equal(gzip_deflate(p, n, -1, &b), GZIP_OK);
    *len = b.len;
    return (uint8_t *)b.data;
}

static const ingest_limits LIMITS = {.max_request_bytes = 64 * 1024, .max_decoded_bytes = 1 << 20};

static req_origin origin(req_transport t)
{
    req_origin o = {.listener = "otlp-in", .transport = t, .authorization = "Bearer k1-and-more",
                    .authorization_len = 9};
    return o;
}

static void export_body(ingest_ctx *ctx, const ingest_limits *lim, otlp_signal sig, otlp_encoding enc,
                        const uint8_t *body, size_t len, int gz, ingest_result *res)
{
    req_origin o = origin(REQ_HTTP);
    ingest_export(ctx, lim, sig, enc, &o, body, len, gz, res);
}

/* A request of `json` for `sig` in `enc`, with the default limits. */
static void export_json(ingest_ctx *ctx, otlp_signal sig, otlp_encoding enc, const char *json, ingest_result *res)
{
    size_t len;
    uint8_t *body = body_of(sig, enc, json, &len);
    export_body(ctx, &LIMITS, sig, enc, body, len, 0, res);
    free(body);
}

static void assert_refused(const ingest_result *res, req_status st, const char *message)
{
    assert_int_equal(res->status, st);
    assert_string_equal(res->message, message);
    assert_int_equal(res->accepted, 0);
}

/* ---- metrics -------------------------------------------------------------- */

/* The value of one rendered series, 0 when it is absent. */
static uint64_t metric(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static uint64_t metric(const char *fmt, ...)
{
    char want[256];
    want[0] = '\n';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want + 1, sizeof(want) - 2, fmt, ap);
    va_end(ap);
    strcat(want, " ");
    buf b = BUF_INIT;
    assert_int_equal(metrics_render(&b), 0);
    assert_int_equal(buf_putc(&b, '\0'), 0);
    const char *p = strstr(b.data, want);
    uint64_t v = p ? strtoull(p + strlen(want), NULL, 10) : 0;
    buf_free(&b);
    return v;
}

static uint64_t requests(otlp_signal sig, const char *transport, const char *code)
{
    return metric("otlp_gateway_requests_total{signal=\"%s\",transport=\"%s\",code=\"%s\"}", otlp_signal_name(sig),
                  transport, code);
}

static uint64_t refused(otlp_signal sig, const char *reason)
{
    return metric("otlp_gateway_refused_%s_total{signal=\"%s\",transport=\"http\",reason=\"%s\"}", otlp_item_name(sig),
                  otlp_signal_name(sig), reason);
}

static uint64_t received(otlp_signal sig)
{
    return metric("otlp_gateway_received_%s_total{signal=\"%s\",transport=\"http\"}", otlp_item_name(sig),
                  otlp_signal_name(sig));
}

/* ---- fixtures ---------------------------------------------------------------- */

static int setup(void **state)
{
    fake_reset();
    *state = ingest_ctx_new(FAKE_PIPELINE, FAKE_AUTH);
    return *state ? 0 : -1;
}

static int setup_open(void **state)
{
    fake_reset();
    *state = ingest_ctx_new(FAKE_PIPELINE, NULL);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    ingest_ctx_free(*state);
    return 0;
}

/* ---- tests: decoding ------------------------------------------------------------ */

static void test_decode_each_signal_and_encoding(void **state)
{
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        for (int e = 0; e < 2; e++) {
            fake_reset();
            otlp_signal sig = (otlp_signal)s;
            uint64_t ok_before = requests(sig, "http", "ok"), received_before = received(sig);
            size_t len;
            uint8_t *body = body_of(sig, (otlp_encoding)e, SIGNALS[s].json, &len);
            ingest_result res;
            export_body(*state, &LIMITS, sig, (otlp_encoding)e, body, len, 0, &res);
            assert_int_equal(res.status, REQ_OK);
            assert_int_equal(res.accepted, SIGNALS[s].items);
            assert_int_equal(res.rejected, 0);
            assert_string_equal(res.message, "");
            assert_int_equal(res.retry_after_s, 0);
            /* authenticated, admitted with the decoded count and the wire size, then routed */
            assert_int_equal(fake.auth_calls, 1);
            assert_string_equal(fake.authorization, "Bearer k1");
            assert_string_equal(fake.listener, "otlp-in");
            assert_int_equal(fake.admit_calls, 1);
            assert_ptr_equal(fake.admit_tenant, &ACME);
            assert_int_equal(fake.admit_sig, sig);
            assert_int_equal(fake.admit_items, SIGNALS[s].items);
            assert_int_equal(fake.admit_bytes, len);
            assert_int_equal(fake.submit_calls, 1);
            assert_int_equal(fake.submit_sig, sig);
            assert_int_equal(fake.submit_items, SIGNALS[s].items);
            assert_string_equal(fake.submit_tenant, "acme");
            assert_non_null(strstr(fake.submit_json, SIGNALS[s].marker));
            assert_int_equal(requests(sig, "http", "ok"), ok_before + 1);
            assert_int_equal(received(sig), received_before + SIGNALS[s].items);
            free(body);
        }
    }
}

static void test_transport_label(void **state)
{
    uint64_t grpc_before = requests(OTLP_LOGS, "grpc", "ok"), http_before = requests(OTLP_LOGS, "http", "ok");
    size_t len;
    uint8_t *body = body_of(OTLP_LOGS, OTLP_PROTOBUF, LOGS_JSON, &len);
    req_origin o = origin(REQ_GRPC);
    ingest_result res;
    ingest_export(*state, &LIMITS, OTLP_LOGS, OTLP_PROTOBUF, &o, body, len, 0, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(requests(OTLP_LOGS, "grpc", "ok"), grpc_before + 1);
    assert_int_equal(requests(OTLP_LOGS, "http", "ok"), http_before);
    free(body);
}

static void test_invalid_body(void **state)
{
    uint64_t before = requests(OTLP_TRACES, "http", "invalid");
    ingest_result res;
    const uint8_t junk[] = {0x0a, 0x7f, 0x01}; /* field 1, length 127, 1 byte present */
    export_body(*state, &LIMITS, OTLP_TRACES, OTLP_PROTOBUF, junk, sizeof(junk), 0, &res);
    assert_int_equal(res.status, REQ_INVALID);
    assert_true(strncmp(res.message, "invalid protobuf: ", 18) == 0);
    export_json(*state, OTLP_METRICS, OTLP_JSON, "{\"resourceMetrics\":[", &res);
    assert_int_equal(res.status, REQ_INVALID);
    assert_true(strncmp(res.message, "invalid JSON: ", 14) == 0);
    /* Nothing is admitted or routed; the empty body is a valid empty request. */
    assert_int_equal(fake.admit_calls, 0);
    assert_int_equal(fake.submit_calls, 0);
    assert_int_equal(requests(OTLP_TRACES, "http", "invalid"), before + 1);
    export_body(*state, &LIMITS, OTLP_LOGS, OTLP_PROTOBUF, NULL, 0, 0, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(res.accepted, 0);
    assert_int_equal(fake.submit_calls, 0); /* nothing to route */
}

static void test_gzip(void **state)
{
    size_t plain_len, gz_len;
    uint8_t *plain = body_of(OTLP_TRACES, OTLP_PROTOBUF, TRACES_JSON, &plain_len);
    uint8_t *gz = gzipped(plain, plain_len, &gz_len);
    ingest_result res;
    export_body(*state, &LIMITS, OTLP_TRACES, OTLP_PROTOBUF, gz, gz_len, 1, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(res.accepted, 2);
    assert_int_equal(fake.submit_items, 2);
    assert_int_equal(fake.admit_bytes, gz_len); /* the tenant's limits count wire bytes */

    /* A gzip body not flagged as such is just a bad protobuf. */
    export_body(*state, &LIMITS, OTLP_TRACES, OTLP_PROTOBUF, gz, gz_len, 0, &res);
    assert_int_equal(res.status, REQ_INVALID);

    /* Corrupt: a flipped byte inside the deflate stream, or truncated. */
    fake_reset();
    gz[gz_len / 2] ^= 0xff;
    export_body(*state, &LIMITS, OTLP_TRACES, OTLP_PROTOBUF, gz, gz_len, 1, &res);
    assert_refused(&res, REQ_INVALID, "invalid gzip body");
    gz[gz_len / 2] ^= 0xff;
    export_body(*state, &LIMITS, OTLP_TRACES, OTLP_PROTOBUF, gz, gz_len - 9, 1, &res);
    assert_refused(&res, REQ_INVALID, "invalid gzip body");
    export_body(*state, &LIMITS, OTLP_TRACES, OTLP_PROTOBUF, plain, plain_len, 1, &res);
    assert_refused(&res, REQ_INVALID, "invalid gzip body");
    assert_int_equal(fake.admit_calls, 0);
    assert_int_equal(fake.submit_calls, 0);
    free(gz);
    free(plain);
}

static void test_gzip_bomb(void **state)
{
    /* 1 MiB of zeros is about 1 KiB on the wire, far over 64 KiB inflated. */
    size_t big = 1 << 20, gz_len;
    uint8_t *zeros = calloc(1, big);
    uint8_t *gz = gzipped(zeros, big, &gz_len);
    assert_true(gz_len < LIMITS.max_request_bytes);
    uint64_t before = requests(OTLP_LOGS, "http", "too_large");
    ingest_result res;
    export_body(*state, &LIMITS, OTLP_LOGS, OTLP_PROTOBUF, gz, gz_len, 1, &res);
    assert_refused(&res, REQ_TOO_LARGE, "decompressed request body exceeds max_request_bytes");
    assert_int_equal(fake.submit_calls, 0);
    assert_int_equal(requests(OTLP_LOGS, "http", "too_large"), before + 1);
    /* The same bytes within a limit that fits them inflate fine (and are
     * then refused as the bad protobuf they are). */
    ingest_limits roomy = {.max_request_bytes = 2 * big, .max_decoded_bytes = 8 * big};
    export_body(*state, &roomy, OTLP_LOGS, OTLP_PROTOBUF, gz, gz_len, 1, &res);
    assert_int_equal(res.status, REQ_INVALID);
    free(gz);
    free(zeros);
}

/* Inflating past max_decoded_bytes (the arena cap) while still under
 * max_request_bytes is 413, not a retryable 503: the same request would
 * fail the same way every time. */
static void test_gzip_over_decoded_cap(void **state)
{
    size_t big = 32 * 1024, gz_len;
    uint8_t *zeros = calloc(1, big);
    uint8_t *gz = gzipped(zeros, big, &gz_len);
    ingest_limits lim = {.max_request_bytes = 64 * 1024, .max_decoded_bytes = 8 * 1024};
    ingest_result res;
    export_body(*state, &lim, OTLP_TRACES, OTLP_PROTOBUF, gz, gz_len, 1, &res);
    assert_refused(&res, REQ_TOO_LARGE, "request too large when decoded");
    assert_int_equal(fake.submit_calls, 0);
    free(gz);
    free(zeros);
}

static void test_wire_body_over_limit(void **state)
{
    size_t len;
    uint8_t *body = body_of(OTLP_TRACES, OTLP_PROTOBUF, TRACES_JSON, &len);
    ingest_limits lim = {.max_request_bytes = len - 1, .max_decoded_bytes = 1 << 20};
    ingest_result res;
    export_body(*state, &lim, OTLP_TRACES, OTLP_PROTOBUF, body, len, 0, &res);
    assert_refused(&res, REQ_TOO_LARGE, "request body exceeds max_request_bytes");
    assert_int_equal(fake.submit_calls, 0);
    lim.max_request_bytes = len; /* the limit itself is allowed */
    export_body(*state, &lim, OTLP_TRACES, OTLP_PROTOBUF, body, len, 0, &res);
    assert_int_equal(res.status, REQ_OK);
    free(body);
}

static void test_decoded_bytes_cap(void **state)
{
    ingest_limits lim = {.max_request_bytes = 64 * 1024, .max_decoded_bytes = 512};
    for (int e = 0; e < 2; e++) {
        size_t len;
        uint8_t *body = body_of(OTLP_METRICS, (otlp_encoding)e, METRICS_JSON, &len);
        ingest_result res;
        export_body(*state, &lim, OTLP_METRICS, (otlp_encoding)e, body, len, 0, &res);
        assert_refused(&res, REQ_TOO_LARGE, "request too large when decoded");
        assert_int_equal(fake.submit_calls, 0);
        /* The arena is reset and uncapped per request: the next one passes. */
        export_body(*state, &LIMITS, OTLP_METRICS, (otlp_encoding)e, body, len, 0, &res);
        assert_int_equal(res.status, REQ_OK);
        assert_int_equal(res.accepted, 3);
        fake.submit_calls = 0;
        free(body);
    }
}

static void test_partial_success(void **state)
{
    uint64_t refused_before = refused(OTLP_TRACES, "invalid"), received_before = received(OTLP_TRACES);
    for (int e = 0; e < 2; e++) {
        ingest_result res;
        export_json(*state, OTLP_TRACES, (otlp_encoding)e, TRACES_PARTIAL_JSON, &res);
        assert_int_equal(res.status, REQ_OK);
        assert_int_equal(res.accepted, 2);
        assert_int_equal(res.rejected, 1);
        assert_string_equal(res.message, "span 1 of scope 0 of resource 0: trace_id is all zero");
        /* Admission and routing see only the valid spans. */
        assert_int_equal(fake.admit_items, 2);
        assert_int_equal(fake.submit_items, 2);
        assert_non_null(strstr(fake.submit_json, "good2"));
        assert_null(strstr(fake.submit_json, "\"bad\""));
    }
    assert_int_equal(refused(OTLP_TRACES, "invalid"), refused_before + 2);
    assert_int_equal(received(OTLP_TRACES), received_before + 4);
    /* per tenant: what was routed, and the invalid span */
    assert_ptr_equal(fake.counted_tenant, &ACME);
    assert_int_equal(fake.tenant_items, 4);
    assert_int_equal(fake.tenant_refused, 2);
    assert_string_equal(fake.refused_reason, "invalid");

    /* Every item invalid: accepted as a whole, nothing routed. */
    fake_reset();
    ingest_result res;
    export_json(*state, OTLP_TRACES, OTLP_JSON,
                "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"00\",\"spanId\":\"01\"}]}]}]}", &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(res.accepted, 0);
    assert_int_equal(res.rejected, 1);
    assert_string_equal(res.message, "span 0 of scope 0 of resource 0: invalid trace_id length 1");
    assert_int_equal(fake.submit_calls, 0);
}

/* ---- tests: auth ------------------------------------------------------------------- */

static void test_auth_refusals_pass_through(void **state)
{
    static const struct {
        req_status status;
        const char *reason;
        uint32_t retry_after;
        int token_rejected;
        const char *code;
    } cases[] = {
        {REQ_UNAUTHENTICATED, "missing_token", 0, 0, "unauthenticated"},
        {REQ_UNAUTHENTICATED, "expired", 0, 1, "unauthenticated"},
        {REQ_UNAUTHENTICATED, "unknown_key", 0, 1, "unauthenticated"},
        {REQ_PERMISSION_DENIED, "endpoint", 0, 0, "permission_denied"},
        {REQ_UNAVAILABLE, "jwks_unavailable", 5, 0, "unavailable"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_reset();
        fake.auth_status = cases[i].status;
        fake.auth_reason = cases[i].reason;
        fake.auth_retry_after = cases[i].retry_after;
        fake.auth_message = "no entry for you";
        uint64_t before = requests(OTLP_METRICS, "http", cases[i].code);
        /* The body is never looked at: garbage does not make it INVALID. */
        ingest_result res;
        export_body(*state, &LIMITS, OTLP_METRICS, OTLP_PROTOBUF, (const uint8_t *)"\xff\xff", 2, 1, &res);
        assert_refused(&res, cases[i].status, "no entry for you");
        assert_int_equal(res.retry_after_s, cases[i].retry_after);
        assert_int_equal(res.token_rejected, cases[i].token_rejected);
        assert_int_equal(fake.auth_calls, 1);
        assert_int_equal(fake.admit_calls, 0);
        assert_int_equal(fake.submit_calls, 0);
        assert_int_equal(requests(OTLP_METRICS, "http", cases[i].code), before + 1);
    }
}

static void test_tenant_reaches_pipeline(void **state)
{
    ingest_result res;
    fake.auth_tenant = &BETA;
    export_json(*state, OTLP_LOGS, OTLP_JSON, LOGS_JSON, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_ptr_equal(fake.admit_tenant, &BETA);
    assert_string_equal(fake.submit_tenant, "beta");
    fake.auth_tenant = &ACME;
    export_json(*state, OTLP_LOGS, OTLP_JSON, LOGS_JSON, &res);
    assert_ptr_equal(fake.admit_tenant, &ACME);
    assert_string_equal(fake.submit_tenant, "acme");
}

static void test_open_mode(void **state)
{
    ingest_result res;
    export_json(*state, OTLP_TRACES, OTLP_PROTOBUF, TRACES_JSON, &res);
    assert_int_equal(res.status, REQ_OK);
    assert_int_equal(fake.auth_calls, 0);
    assert_int_equal(fake.admit_calls, 1);
    assert_null(fake.admit_tenant);
    assert_int_equal(fake.submit_calls, 1);
    assert_string_equal(fake.submit_tenant, "");
}

/* What a refused request must come back with. */
typedef struct refusal {
    req_status status;
    uint32_t retry_after;
    const char *message;
} refusal;

/* Exports `json` and expects it refused as `want`, with all `items` counted
 * as refused items and the request counted, both under the status's reason. */
static void expect_refusal(ingest_ctx *ctx, otlp_signal sig, otlp_encoding enc, const char *json, const refusal *want,
                           size_t items)
{
    const char *reason = ingest_status_reason(want->status);
    uint64_t refused_before = refused(sig, reason), requests_before = requests(sig, "http", reason);
    uint64_t received_before = received(sig);
    size_t tenant_refused_before = fake.tenant_refused, tenant_items_before = fake.tenant_items;
    ingest_result res;
    export_json(ctx, sig, enc, json, &res);
    assert_refused(&res, want->status, want->message);
    assert_int_equal(res.retry_after_s, want->retry_after);
    assert_int_equal(res.rejected, items);
    assert_int_equal(refused(sig, reason), refused_before + items);
    assert_int_equal(requests(sig, "http", reason), requests_before + 1);
    assert_int_equal(received(sig), received_before);
    /* and against the tenant, by the same reason */
    assert_ptr_equal(fake.counted_tenant, fake.auth_tenant);
    assert_int_equal(fake.tenant_refused, tenant_refused_before + items);
    assert_string_equal(fake.refused_reason, reason);
    assert_int_equal(fake.tenant_items, tenant_items_before);
}

static void test_admission_refusals(void **state)
{
    static const refusal cases[] = {
        {REQ_THROTTLED, 3, "tenant rate limit exceeded, retry later"},
        {REQ_TOO_LARGE, 0, "request exceeds the tenant's max_request_bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_reset();
        fake.admit_status = cases[i].status;
        fake.admit_retry_after = cases[i].retry_after;
        /* all three spans count: the valid ones and the invalid one */
        expect_refusal(*state, OTLP_TRACES, OTLP_JSON, TRACES_PARTIAL_JSON, &cases[i], 3);
        assert_int_equal(fake.admit_calls, 1);
        assert_int_equal(fake.submit_calls, 0);
    }
}

/* ---- tests: the pipeline's verdict ------------------------------------------------ */

static void test_pipeline_refusals(void **state)
{
    static const struct {
        pipeline_status ps;
        size_t alloc;
        refusal want; /* no backend detail in the message */
    } cases[] = {
        {PIPELINE_RETRY, 0, {REQ_UNAVAILABLE, 1, "export temporarily unavailable, retry later"}},
        {PIPELINE_FAIL, 0, {REQ_INTERNAL, 0, "export failed"}},
        /* routing ran out of the request's arena: a size problem, not a failure */
        {PIPELINE_FAIL, 2 << 20, {REQ_TOO_LARGE, 0, "request too large when routed"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_reset();
        fake.submit_status = cases[i].ps;
        fake.submit_alloc = cases[i].alloc;
        expect_refusal(*state, OTLP_METRICS, OTLP_PROTOBUF, METRICS_JSON, &cases[i].want, 3);
        assert_int_equal(fake.submit_calls, 1);
    }
}

/* The pipeline's hint (a backend backing off for 17 s) reaches the client,
 * and no hint still means 1 s. */
static void test_pipeline_retry_after(void **state)
{
    fake_reset();
    fake.submit_status = PIPELINE_RETRY;
    fake.submit_retry_after = 17;
    ingest_result res;
    export_json(*state, OTLP_TRACES, OTLP_JSON, TRACES_JSON, &res);
    assert_int_equal(res.status, REQ_UNAVAILABLE);
    assert_int_equal(res.retry_after_s, 17);
    fake.submit_retry_after = 0;
    export_json(*state, OTLP_TRACES, OTLP_JSON, TRACES_JSON, &res);
    assert_int_equal(res.retry_after_s, 1);
}

static void test_pipeline_refusal_after_partial_success(void **state)
{
    fake.submit_status = PIPELINE_RETRY;
    ingest_result res;
    export_json(*state, OTLP_TRACES, OTLP_JSON, TRACES_PARTIAL_JSON, &res);
    assert_refused(&res, REQ_UNAVAILABLE, "export temporarily unavailable, retry later");
    assert_int_equal(res.rejected, 3);
}

/* ---- tests: status mapping, responses, paths ---------------------------------------- */

static void test_status_mapping(void **state)
{
    (void)state;
    static const struct {
        req_status st;
        int http, grpc;
        const char *reason;
    } table[] = {
        {REQ_OK, 200, GRPC_OK, "ok"},
        {REQ_INVALID, 400, GRPC_INVALID_ARGUMENT, "invalid"},
        {REQ_TOO_LARGE, 413, GRPC_RESOURCE_EXHAUSTED, "too_large"},
        {REQ_UNSUPPORTED_MEDIA, 415, GRPC_INVALID_ARGUMENT, "unsupported_media_type"},
        {REQ_NOT_FOUND, 404, GRPC_UNIMPLEMENTED, "not_found"},
        {REQ_THROTTLED, 429, GRPC_RESOURCE_EXHAUSTED, "throttled"},
        {REQ_UNAVAILABLE, 503, GRPC_UNAVAILABLE, "unavailable"},
        {REQ_UNAUTHENTICATED, 401, GRPC_UNAUTHENTICATED, "unauthenticated"},
        {REQ_PERMISSION_DENIED, 403, GRPC_PERMISSION_DENIED, "permission_denied"},
        {REQ_INTERNAL, 500, GRPC_INTERNAL, "internal"},
    };
    assert_int_equal(sizeof(table) / sizeof(table[0]), REQ_STATUS_COUNT);
    for (int i = 0; i < REQ_STATUS_COUNT; i++) {
        assert_int_equal(table[i].st, i);
        assert_int_equal(ingest_http_status(table[i].st), table[i].http);
        assert_int_equal(ingest_grpc_status(table[i].st), table[i].grpc);
        assert_string_equal(ingest_status_reason(table[i].st), table[i].reason);
    }
    assert_string_equal(ingest_transport_name(REQ_GRPC), "grpc");
    assert_string_equal(ingest_transport_name(REQ_HTTP), "http");
}

static void test_count_refused(void **state)
{
    (void)state;
    uint64_t before = requests(OTLP_LOGS, "grpc", "unsupported_media_type");
    ingest_count_refused(REQ_GRPC, OTLP_LOGS, REQ_UNSUPPORTED_MEDIA, 0);
    assert_int_equal(requests(OTLP_LOGS, "grpc", "unsupported_media_type"), before + 1);
}

static void test_response_ok(void **state)
{
    (void)state;
    buf b = BUF_INIT;
    ingest_result res = {.status = REQ_OK, .accepted = 4, .rejected = 2, .message = "span 1: bad"};
    assert_int_equal(ingest_response_body(OTLP_TRACES, OTLP_PROTOBUF, &res, &b), 0);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *tr =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, b.len,
                                                                                           (uint8_t *)b.data);
    assert_non_null(tr);
    assert_non_null(tr->partial_success);
    assert_int_equal(tr->partial_success->rejected_spans, 2);
    assert_string_equal(tr->partial_success->error_message, "span 1: bad");
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(tr, NULL);

    buf_clear(&b);
    assert_int_equal(ingest_response_body(OTLP_LOGS, OTLP_JSON, &res, &b), 0);
    const char want[] = "{\"partialSuccess\":{\"rejectedLogRecords\":\"2\",\"errorMessage\":\"span 1: bad\"}}";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);

    /* Full success: no partial_success, whatever the message says. */
    res.rejected = 0;
    buf_clear(&b);
    assert_int_equal(ingest_response_body(OTLP_METRICS, OTLP_PROTOBUF, &res, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(ingest_response_body(OTLP_METRICS, OTLP_JSON, &res, &b), 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "{}", 2);
    buf_free(&b);
}

static void test_response_error(void **state)
{
    (void)state;
    buf b = BUF_INIT;
    ingest_result res = {.status = REQ_THROTTLED, .rejected = 5, .retry_after_s = 2, .message = "slow down"};
    assert_int_equal(ingest_response_body(OTLP_METRICS, OTLP_PROTOBUF, &res, &b), 0);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, b.len, (uint8_t *)b.data);
    assert_non_null(st);
    assert_int_equal(st->code, GRPC_RESOURCE_EXHAUSTED);
    assert_string_equal(st->message, "slow down");
    google__rpc__status__free_unpacked(st, NULL);

    buf_clear(&b);
    res.status = REQ_UNAUTHENTICATED;
    snprintf(res.message, sizeof(res.message), "bad \"token\"");
    assert_int_equal(ingest_response_body(OTLP_TRACES, OTLP_JSON, &res, &b), 0);
    const char want[] = "{\"code\":16,\"message\":\"bad \\\"token\\\"\"}";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_free(&b);
}

static void test_signal_from_path(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int sig;
    } http[] = {
        {"/v1/traces", OTLP_TRACES}, {"/v1/metrics", OTLP_METRICS}, {"/v1/logs", OTLP_LOGS},
        {"/v1/logs/", OTLP_LOGS},    {"/v1/traces?x=1", OTLP_TRACES}, {"/v1/metrics/?a", OTLP_METRICS},
        {"", -1},                    {"/", -1},                    {"/v1/trace", -1},
        {"/v1/tracesx", -1},         {"/v1/traces//", -1},         {"/V1/traces", -1},
        {"/v1/traces/x", -1},        {"v1/traces", -1},            {"/v2/logs", -1},
        {"?/v1/logs", -1},
    };
    for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++)
        if (ingest_signal_from_http_path(http[i].path, strlen(http[i].path)) != http[i].sig)
            fail_msg("http path \"%s\": want %d", http[i].path, http[i].sig);
    /* Only `len` bytes count. */
    assert_int_equal(ingest_signal_from_http_path("/v1/logsXYZ", 8), OTLP_LOGS);

    static const struct {
        const char *path;
        int sig;
    } grpc[] = {
        {"/opentelemetry.proto.collector.trace.v1.TraceService/Export", OTLP_TRACES},
        {"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", OTLP_METRICS},
        {"/opentelemetry.proto.collector.logs.v1.LogsService/Export", OTLP_LOGS},
        {"/opentelemetry.proto.collector.logs.v1.LogsService/Export/", -1},
        {"/opentelemetry.proto.collector.logs.v1.LogsService/export", -1},
        {"/opentelemetry.proto.collector.trace.v1.TraceService/Expor", -1},
        {"/v1/traces", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(grpc) / sizeof(grpc[0]); i++)
        if (ingest_signal_from_grpc_path(grpc[i].path, strlen(grpc[i].path)) != grpc[i].sig)
            fail_msg("grpc path \"%s\": want %d", grpc[i].path, grpc[i].sig);
}

/* ---- tests: the wire path ------------------------------------------------------ */

/* What the pipeline's answer to pipeline_wire_use does to each request:
 * whole valid protobuf skips decoding only with PIPELINE_WIRE_ONLY and
 * carries its bytes (inflated, when gzipped) with ONLY and PAYLOAD; JSON,
 * a request with an invalid item, and NONE go the decoding way. A request
 * without its decoded form that a tail sampler takes also carries what the
 * scan noted of its spans. */
static void test_wire_path(void **state)
{
    static const struct {
        pipeline_wire use;
        otlp_encoding enc;
        const char *json;
        int gz;
        int decoded, wire; /* expected at pipeline_submit */
        size_t accepted, rejected;
        int sampled;  /* pipeline_wire_use's *sampled */
        size_t notes; /* expected req->n_spans */
        int tight;    /* max_decoded_bytes just under twice the notes' size */
    } cases[] = {
        {PIPELINE_WIRE_ONLY, OTLP_PROTOBUF, TRACES_JSON, 0, 0, 1, 2, 0, 0, 0, 0},
        {PIPELINE_WIRE_ONLY, OTLP_PROTOBUF, TRACES_JSON, 1, 0, 1, 2, 0, 0, 0, 0},
        {PIPELINE_WIRE_PAYLOAD, OTLP_PROTOBUF, TRACES_JSON, 0, 1, 1, 2, 0, 0, 0, 0},
        {PIPELINE_WIRE_NONE, OTLP_PROTOBUF, TRACES_JSON, 0, 1, 0, 2, 0, 0, 0, 0},
        {PIPELINE_WIRE_ONLY, OTLP_JSON, TRACES_JSON, 0, 1, 0, 2, 0, 1, 0, 0},
        {PIPELINE_WIRE_ONLY, OTLP_PROTOBUF, TRACES_PARTIAL_JSON, 0, 1, 0, 2, 1, 1, 0, 0},
        {PIPELINE_WIRE_ONLY, OTLP_PROTOBUF, TRACES_JSON, 0, 0, 1, 2, 0, 1, 2, 0},
        {PIPELINE_WIRE_ONLY, OTLP_PROTOBUF, TRACES_JSON, 1, 0, 1, 2, 0, 1, 2, 0},
        /* the notes would take over half of max_decoded_bytes: none, and the request goes on */
        {PIPELINE_WIRE_ONLY, OTLP_PROTOBUF, TRACES_JSON, 0, 0, 1, 2, 0, 1, 0, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_reset();
        fake.wire_use = cases[i].use;
        fake.wire_sampled = cases[i].sampled;
        size_t len, plain_len;
        uint8_t *plain = body_of(OTLP_TRACES, cases[i].enc, cases[i].json, &plain_len), *body = plain;
        len = plain_len;
        if (cases[i].gz)
            body = gzipped(plain, plain_len, &len);
        ingest_result res;
        ingest_limits lim = LIMITS;
        if (cases[i].tight)
            lim.max_decoded_bytes = 2 * otlp_wire_spans_cap(plain_len) * sizeof(otlp_wire_span) - 16;
        export_body(*state, &lim, OTLP_TRACES, cases[i].enc, body, len, cases[i].gz, &res);
        assert_int_equal(res.status, REQ_OK);
        assert_int_equal(res.accepted, cases[i].accepted);
        assert_int_equal(res.rejected, cases[i].rejected);
        assert_int_equal(fake.submit_calls, 1);
        assert_int_equal(fake.submit_items, cases[i].accepted);
        assert_int_equal(fake.submit_decoded, cases[i].decoded);
        assert_int_equal(fake.submit_wire_len, cases[i].wire ? plain_len : 0);
        assert_int_equal(fake.submit_n_spans, cases[i].notes);
        assert_int_equal(fake.submit_notes_match, cases[i].notes != 0);
        /* the spans themselves reached the pipeline, whichever way */
        assert_non_null(strstr(fake.submit_json, cases[i].json == TRACES_JSON ? "\"name\":\"child\"" : "\"name\":\"good2\""));
        if (body != plain)
            free(body);
        free(plain);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_decode_each_signal_and_encoding),
        T(test_transport_label),
        T(test_invalid_body),
        T(test_gzip),
        T(test_gzip_bomb),
        T(test_gzip_over_decoded_cap),
        T(test_wire_body_over_limit),
        T(test_decoded_bytes_cap),
        T(test_wire_path),
        T(test_partial_success),
        T(test_auth_refusals_pass_through),
        T(test_tenant_reaches_pipeline),
        cmocka_unit_test_setup_teardown(test_open_mode, setup_open, teardown),
        T(test_admission_refusals),
        T(test_pipeline_refusals),
        T(test_pipeline_retry_after),
        T(test_pipeline_refusal_after_partial_success),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_count_refused),
        cmocka_unit_test(test_response_ok),
        cmocka_unit_test(test_response_error),
        cmocka_unit_test(test_signal_from_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
