/* otlp_export: the OTLP exporter types, `otlp_http` and `otlp_grpc`, for any
 * OTLP receiver (an OpenTelemetry Collector, Honeycomb, Jaeger, Loki 3,
 * another gateway). The exporter (exporter.c) batches, adds the configured
 * headers, sends and retries; these types only shape the request and read
 * the answer, following the OTLP specification's rules for which failures
 * are retryable.
 *
 * Compression: OTLP/HTTP bodies are compressed by the exporter
 * (Content-Encoding). gRPC compresses the message inside its 5-byte frame and
 * says so with grpc-encoding, which the exporter knows nothing about, so the
 * gRPC type frames and compresses itself and tells the exporter not to. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exporter.h"
#include "gzip.h"
#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "status.pb-c.h"
#include "trace_service.pb-c.h"

#define OTLP_EXPORT_URL_MAX 2048

typedef struct otlp_export_state {
    char url[OTLP_SIGNAL_COUNT][OTLP_EXPORT_URL_MAX];
    otlp_encoding encoding; /* otlp_http only */
    int grpc_gzip;          /* otlp_grpc only: compression is gzip */
    arena *arena;           /* JSON re-encoding; used by the exporter thread only */
} otlp_export_state;

static const char *const otlp_export_http_paths[OTLP_SIGNAL_COUNT] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
static const char *const otlp_export_grpc_paths[OTLP_SIGNAL_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};
/* OTLP/JSON names of the partial-success counters. */
static const char *const otlp_export_rejected_json[OTLP_SIGNAL_COUNT] = {"rejectedSpans", "rejectedDataPoints",
                                                                         "rejectedLogRecords"};

/* ---- configuration ---- */

static void otlp_export_destroy(void *st)
{
    otlp_export_state *s = st;
    arena_free(s->arena);
    free(s);
}

/* Common to both types: the state with URL = endpoint (without trailing
 * slashes) + path. The exporter has already checked the endpoint. */
static otlp_export_state *otlp_export_new(const config_backend *cfg, const char *const *paths, char *err,
                                          size_t errlen)
{
    const char *endpoint;
    if (config_str_required(cfg->node, "endpoint", &endpoint, err, errlen) != 0)
        return NULL;
    otlp_export_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t elen = strlen(endpoint);
    while (elen > 0 && endpoint[elen - 1] == '/')
        elen--;
    for (int i = 0; i < OTLP_SIGNAL_COUNT; i++) {
        int n = snprintf(s->url[i], sizeof(s->url[i]), "%.*s%s", (int)elen, endpoint, paths[i]);
        if (n < 0 || (size_t)n >= sizeof(s->url[i])) {
            otlp_export_destroy(s);
            config_error(cfg->node, "endpoint", err, errlen, "URL too long");
            return NULL;
        }
    }
    return s;
}

static void *otlp_http_configure(const config_backend *cfg, char *err, size_t errlen)
{
    static const char *const path_keys[] = {"traces", "metrics", "logs", NULL};
    const char *paths[OTLP_SIGNAL_COUNT], *encoding;
    const config_node *pm = config_get(cfg->node, "paths");
    if (pm != NULL && !config_is_map(pm)) {
        if (config_scalar(pm) != NULL || config_is_seq(pm)) {
            config_error(cfg->node, "paths", err, errlen, "expected a mapping of signal to path");
            return NULL;
        }
        pm = NULL; /* a YAML null: the defaults */
    }
    if (pm != NULL && config_check_keys(pm, path_keys, err, errlen) != 0)
        return NULL;
    for (int i = 0; i < OTLP_SIGNAL_COUNT; i++) {
        if (config_str(pm, path_keys[i], otlp_export_http_paths[i], &paths[i], err, errlen) != 0)
            return NULL;
        if (paths[i][0] != '/') {
            config_error(pm, path_keys[i], err, errlen, "must start with /");
            return NULL;
        }
    }
    if (config_str(cfg->node, "encoding", "protobuf", &encoding, err, errlen) != 0)
        return NULL;
    if (strcmp(encoding, "protobuf") != 0 && strcmp(encoding, "json") != 0) {
        config_error(cfg->node, "encoding", err, errlen, "invalid value (use protobuf or json)");
        return NULL;
    }
    otlp_export_state *s = otlp_export_new(cfg, paths, err, errlen);
    if (s == NULL)
        return NULL;
    s->encoding = strcmp(encoding, "json") == 0 ? OTLP_JSON : OTLP_PROTOBUF;
    if (s->encoding == OTLP_JSON && (s->arena = arena_new(0)) == NULL) {
        otlp_export_destroy(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return s;
}

static void *otlp_grpc_configure(const config_backend *cfg, char *err, size_t errlen)
{
    const char *compression;
    if (config_str(cfg->node, "compression", "gzip", &compression, err, errlen) != 0)
        return NULL;
    /* gzip is the one grpc-encoding every OTLP/gRPC receiver must accept. */
    if (strcmp(compression, "zstd") == 0) {
        config_error(cfg->node, "compression", err, errlen, "otlp_grpc supports none or gzip");
        return NULL;
    }
    otlp_export_state *s = otlp_export_new(cfg, otlp_export_grpc_paths, err, errlen);
    if (s != NULL)
        s->grpc_gzip = strcmp(compression, "gzip") == 0;
    return s;
}

/* ---- responses ---- */

static int otlp_export_is_json(const export_response *r)
{
    return r->content_type != NULL && strncasecmp(r->content_type, "application/json", 16) == 0;
}

/* Partial success from an Export*ServiceResponse in protobuf. */
static void otlp_export_partial_pb(otlp_signal sig, const uint8_t *data, size_t len, uint64_t *rejected, char *msg,
                                   size_t msglen)
{
    int64_t n = 0;
    const char *text = NULL;
    ProtobufCMessage *m = NULL;
    if (sig == OTLP_TRACES) {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
            opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, len, data);
        if (r != NULL && r->partial_success != NULL) {
            n = r->partial_success->rejected_spans;
            text = r->partial_success->error_message;
        }
        m = (ProtobufCMessage *)r;
    } else if (sig == OTLP_METRICS) {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *r =
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(NULL, len, data);
        if (r != NULL && r->partial_success != NULL) {
            n = r->partial_success->rejected_data_points;
            text = r->partial_success->error_message;
        }
        m = (ProtobufCMessage *)r;
    } else {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *r =
            opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(NULL, len, data);
        if (r != NULL && r->partial_success != NULL) {
            n = r->partial_success->rejected_log_records;
            text = r->partial_success->error_message;
        }
        m = (ProtobufCMessage *)r;
    }
    if (n > 0)
        *rejected = (uint64_t)n;
    if (text != NULL && text[0] != '\0')
        snprintf(msg, msglen, "%s", text);
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* OTLP/JSON writes 64-bit integers as strings; accept numbers too. */
static void otlp_export_partial_json(otlp_signal sig, const uint8_t *data, size_t len, uint64_t *rejected, char *msg,
                                     size_t msglen)
{
    json_t *root = json_loadb((const char *)data, len, 0, NULL);
    json_t *ps = json_object_get(root, "partialSuccess");
    json_t *n = json_object_get(ps, otlp_export_rejected_json[sig]);
    if (json_is_integer(n) && json_integer_value(n) > 0)
        *rejected = (uint64_t)json_integer_value(n);
    else if (json_is_string(n))
        *rejected = strtoull(json_string_value(n), NULL, 10);
    const char *text = json_string_value(json_object_get(ps, "errorMessage"));
    if (text != NULL && text[0] != '\0')
        snprintf(msg, msglen, "%s", text);
    json_decref(root);
}

/* The message of a google.rpc.Status error body, if the body is one. */
static void otlp_export_status_message(const export_response *r, char *msg, size_t msglen)
{
    char text[200] = "";
    if (otlp_export_is_json(r)) {
        json_t *root = json_loadb((const char *)r->body, r->body_len, 0, NULL);
        const char *s = json_string_value(json_object_get(root, "message"));
        if (s != NULL)
            snprintf(text, sizeof(text), "%s", s);
        json_decref(root);
    } else if (r->body_len > 0) {
        Google__Rpc__Status *st = google__rpc__status__unpack(NULL, r->body_len, r->body);
        if (st != NULL && st->message != NULL)
            snprintf(text, sizeof(text), "%s", st->message);
        if (st != NULL)
            google__rpc__status__free_unpacked(st, NULL);
    }
    snprintf(msg, msglen, "HTTP %ld%s%s", r->http_status, text[0] ? ": " : "", text);
}

/* The HTTP statuses OTLP says to retry (both transports use them). */
static int otlp_export_http_retryable(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

/* ---- otlp_http ---- */

static int otlp_http_prepare(void *st, const export_batch *b, export_http *out, char *err, size_t errlen)
{
    otlp_export_state *s = st;
    int json = s->encoding == OTLP_JSON;
    if (buf_puts(&out->url, s->url[b->signal]) != 0 ||
        (out->headers = curl_slist_append(out->headers, json ? "Content-Type: application/json"
                                                             : "Content-Type: application/x-protobuf")) == NULL)
        goto oom;
    if (!json) {
        if (buf_append(&out->body, b->body, b->body_len) != 0)
            goto oom;
        return 0;
    }
    /* The batch is protobuf; JSON means decoding it once more. */
    otlp_request req;
    arena_reset(s->arena);
    if (otlp_decode(b->signal, OTLP_PROTOBUF, b->body, b->body_len, s->arena, &req, err, errlen) != 0)
        return -1;
    if (otlp_encode_json(req.msg, &out->body) != 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static export_outcome otlp_http_classify(void *st, const export_batch *b, const export_response *r,
                                         export_result *res)
{
    (void)st;
    if (r->http_status == 0) { /* refused, reset, timed out: the receiver may come back */
        snprintf(res->msg, res->msglen, "%s", r->error != NULL ? r->error : "transport error");
        return EXPORT_RETRY;
    }
    if (r->http_status >= 200 && r->http_status < 300) {
        if (otlp_export_is_json(r))
            otlp_export_partial_json(b->signal, r->body, r->body_len, &res->rejected, res->msg, res->msglen);
        else
            otlp_export_partial_pb(b->signal, r->body, r->body_len, &res->rejected, res->msg, res->msglen);
        return EXPORT_OK;
    }
    otlp_export_status_message(r, res->msg, res->msglen);
    return otlp_export_http_retryable(r->http_status) ? EXPORT_RETRY : EXPORT_FAIL;
}

/* ---- otlp_grpc ---- */

static int otlp_grpc_prepare(void *st, const export_batch *b, export_http *out, char *err, size_t errlen)
{
    otlp_export_state *s = st;
    out->compress = 0;
    out->grpc = 1;
    static const uint8_t frame[5] = {0};
    if (buf_puts(&out->url, s->url[b->signal]) != 0 ||
        (out->headers = curl_slist_append(out->headers, "Content-Type: application/grpc")) == NULL ||
        (out->headers = curl_slist_append(out->headers, "TE: trailers")) == NULL ||
        (s->grpc_gzip && (out->headers = curl_slist_append(out->headers, "grpc-encoding: gzip")) == NULL) ||
        buf_append(&out->body, frame, sizeof(frame)) != 0)
        goto oom;
    if (s->grpc_gzip ? gzip_deflate(b->body, b->body_len, -1, &out->body) != GZIP_OK
                     : buf_append(&out->body, b->body, b->body_len) != 0)
        goto oom;
    size_t mlen = out->body.len - sizeof(frame);
    if (mlen > UINT32_MAX) {
        snprintf(err, errlen, "message too large for gRPC");
        return -1;
    }
    uint8_t *f = (uint8_t *)out->body.data;
    f[0] = s->grpc_gzip ? 1 : 0; /* compressed-flag */
    f[1] = (uint8_t)(mlen >> 24);
    f[2] = (uint8_t)(mlen >> 16);
    f[3] = (uint8_t)(mlen >> 8);
    f[4] = (uint8_t)mlen;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static export_outcome otlp_grpc_classify(void *st, const export_batch *b, const export_response *r,
                                         export_result *res)
{
    (void)st;
    char *msg = res->msg;
    size_t msglen = res->msglen;
    if (r->http_status == 0) {
        snprintf(msg, msglen, "%s", r->error != NULL ? r->error : "transport error");
        return EXPORT_RETRY;
    }
    if (r->http_status != 200) {
        snprintf(msg, msglen, "HTTP %ld", r->http_status);
        return otlp_export_http_retryable(r->http_status) ? EXPORT_RETRY : EXPORT_FAIL;
    }
    if (r->grpc_status < 0) {
        snprintf(msg, msglen, "no grpc-status");
        return EXPORT_FAIL;
    }
    if (r->grpc_status == 0) {
        /* No grpc-accept-encoding is sent, so the reply is uncompressed;
         * a compressed one is accepted without reading partial success. */
        const uint8_t *p = r->body;
        if (r->body_len >= 5 && p[0] == 0) {
            size_t mlen = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
            if (mlen <= r->body_len - 5)
                otlp_export_partial_pb(b->signal, p + 5, mlen, &res->rejected, msg, msglen);
        }
        return EXPORT_OK;
    }
    snprintf(msg, msglen, "grpc-status %d%s%s", r->grpc_status, r->grpc_message ? ": " : "",
             r->grpc_message ? r->grpc_message : "");
    switch (r->grpc_status) {
    case 1:  /* CANCELLED */
    case 4:  /* DEADLINE_EXCEEDED */
    case 10: /* ABORTED */
    case 11: /* OUT_OF_RANGE */
    case 14: /* UNAVAILABLE */
    case 15: /* DATA_LOSS */
        return EXPORT_RETRY;
    case 8: /* RESOURCE_EXHAUSTED: only a server that says when (RetryInfo) can recover */
        return res->retry_after_s > 0 ? EXPORT_RETRY : EXPORT_FAIL;
    default:
        return EXPORT_FAIL;
    }
}

static const char *const otlp_http_keys[] = {"encoding", "paths", NULL};
static const char *const otlp_grpc_keys[] = {NULL};

const exporter_type exporter_otlp_http = {.name = "otlp_http",
                                          .keys = otlp_http_keys,
                                          .configure = otlp_http_configure,
                                          .prepare = otlp_http_prepare,
                                          .classify = otlp_http_classify,
                                          .destroy = otlp_export_destroy};

const exporter_type exporter_otlp_grpc = {.name = "otlp_grpc",
                                          .keys = otlp_grpc_keys,
                                          .configure = otlp_grpc_configure,
                                          .prepare = otlp_grpc_prepare,
                                          .classify = otlp_grpc_classify,
                                          .destroy = otlp_export_destroy};
