/* otlp_export: the OTLP exporter types. `otlp_http` and `otlp_grpc` serve
 * any OTLP receiver (an OpenTelemetry Collector, Honeycomb, Jaeger, Loki 3,
 * another gateway); three presets are otlp_http with a service's
 * authentication: `elastic_otlp` (APM Server / Elastic's managed OTLP
 * endpoint: ApiKey or Bearer secret token), `aws_xray` and
 * `aws_cloudwatch_logs` (SigV4, aws_export.h). The exporter (exporter.c)
 * batches, adds the configured headers, sends and retries; these types only
 * shape the request and read the answer, following the OTLP
 * specification's rules for which failures are retryable.
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

#include "aws_export.h"
#include "exporter.h"
#include "grpc_frame.h"
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
    struct curl_slist *defaults; /* preset headers a tenant's configured ones replace */
    aws_signer *signer;          /* AWS presets */
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
    curl_slist_free_all(s->defaults);
    aws_signer_free(s->signer);
    free(s);
}

/* Common to all types: the state with URL = endpoint (without trailing
 * slashes) + path. The exporter has already checked a configured endpoint. */
static otlp_export_state *otlp_export_new(const backend_config *cfg, const char *endpoint, const char *const *paths,
                                          char *err, size_t errlen)
{
    otlp_export_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < OTLP_SIGNAL_COUNT; i++) {
        if (exporter_url(s->url[i], sizeof(s->url[i]), endpoint, paths[i]) != 0) {
            otlp_export_destroy(s);
            config_error(cfg->node, "endpoint", err, errlen, "URL too long");
            return NULL;
        }
    }
    return s;
}

/* otlp_http and its presets: `encoding` and the URL; `paths` only where
 * the receiver's paths can differ (`custom_paths`). */
static otlp_export_state *otlp_http_state(const backend_config *cfg, const char *endpoint, int custom_paths,
                                          char *err, size_t errlen)
{
    static const char *const path_keys[] = {"traces", "metrics", "logs", NULL};
    const char *paths[OTLP_SIGNAL_COUNT], *encoding;
    const config_node *pm = custom_paths ? config_get(cfg->node, "paths") : NULL;
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
    otlp_export_state *s = otlp_export_new(cfg, endpoint, paths, err, errlen);
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

static void *otlp_http_configure(const backend_config *cfg, char *err, size_t errlen)
{
    const char *endpoint;
    if (config_str_required(cfg->node, "endpoint", &endpoint, err, errlen) != 0)
        return NULL;
    return otlp_http_state(cfg, endpoint, 1, err, errlen);
}

/* A preset's header value from config (a secret: never echoed), checked to
 * be one header line. */
static int otlp_export_default_header(otlp_export_state *s, const config_node *node, const char *key,
                                      const char *prefix, const char *value, char *err, size_t errlen)
{
    for (const char *c = value; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return config_error(node, key, err, errlen, "contains a control character");
    if (value[0] == '\0')
        return config_error(node, key, err, errlen, "must not be empty");
    size_t n = strlen(prefix) + strlen(value) + 1;
    char *line = malloc(n);
    struct curl_slist *l = NULL;
    if (line != NULL) {
        snprintf(line, n, "%s%s", prefix, value);
        l = curl_slist_append(s->defaults, line);
        free(line);
    }
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->defaults = l;
    return 0;
}

/* elastic_otlp: APM Server or Elastic's managed OTLP endpoint, with an API
 * key (Authorization: ApiKey) or an APM secret token (Authorization:
 * Bearer). Per-tenant keys go in tenants.<id>.headers.Authorization, which
 * replaces the backend's. */
static void *elastic_otlp_configure(const backend_config *cfg, char *err, size_t errlen)
{
    const char *api_key, *token;
    if (config_str(cfg->node, "api_key", NULL, &api_key, err, errlen) != 0 ||
        config_str(cfg->node, "secret_token", NULL, &token, err, errlen) != 0)
        return NULL;
    if (api_key != NULL && token != NULL) {
        config_error(cfg->node, "secret_token", err, errlen, "set api_key or secret_token, not both");
        return NULL;
    }
    otlp_export_state *s = otlp_http_configure(cfg, err, errlen);
    if (s != NULL && (api_key != NULL || token != NULL) &&
        otlp_export_default_header(s, cfg->node, api_key ? "api_key" : "secret_token",
                                   api_key ? "Authorization: ApiKey " : "Authorization: Bearer ",
                                   api_key ? api_key : token, err, errlen) != 0) {
        otlp_export_destroy(s);
        return NULL;
    }
    return s;
}

/* The AWS OTLP endpoints: SigV4, and gzip or no compression (gzip_only). */
static otlp_export_state *aws_otlp_configure(const backend_config *cfg, const char *service, char *err, size_t errlen)
{
    const char *endpoint;
    if (config_str(cfg->node, "endpoint", NULL, &endpoint, err, errlen) != 0)
        return NULL;
    aws_signer *signer = aws_signer_from_config(cfg->node, service, err, errlen);
    if (signer == NULL)
        return NULL;
    char url[256];
    if (endpoint == NULL) {
        snprintf(url, sizeof(url), "https://%s.%s.amazonaws.com", service, aws_signer_region(signer));
        endpoint = url;
    }
    otlp_export_state *s = otlp_http_state(cfg, endpoint, 0, err, errlen);
    if (s == NULL) {
        aws_signer_free(signer);
        return NULL;
    }
    s->signer = signer;
    return s;
}

/* X-Ray's OTLP endpoint: service "xray"; its 10,000 spans / 5 MB request
 * limits are the type's batch ceilings (exporter_type below). */
static void *aws_xray_configure(const backend_config *cfg, char *err, size_t errlen)
{
    return aws_otlp_configure(cfg, "xray", err, errlen);
}

/* CloudWatch Logs' OTLP endpoint: service "logs"; the log group and stream
 * travel as headers, which a tenant's configured headers may replace. */
static void *aws_cloudwatch_logs_configure(const backend_config *cfg, char *err, size_t errlen)
{
    const char *group, *stream;
    if (config_str_required(cfg->node, "log_group", &group, err, errlen) != 0 ||
        config_str_required(cfg->node, "log_stream", &stream, err, errlen) != 0)
        return NULL;
    otlp_export_state *s = aws_otlp_configure(cfg, "logs", err, errlen);
    if (s != NULL &&
        (otlp_export_default_header(s, cfg->node, "log_group", "x-aws-log-group: ", group, err, errlen) != 0 ||
         otlp_export_default_header(s, cfg->node, "log_stream", "x-aws-log-stream: ", stream, err, errlen) != 0)) {
        otlp_export_destroy(s);
        return NULL;
    }
    return s;
}

static int otlp_export_sign(void *st, const export_signing *req, struct curl_slist **extra, char *err, size_t errlen)
{
    return aws_signer_sign(((otlp_export_state *)st)->signer, req, extra, err, errlen);
}

static void *otlp_grpc_configure(const backend_config *cfg, char *err, size_t errlen)
{
    const char *compression; /* gzip_only: the one grpc-encoding every OTLP/gRPC receiver must accept */
    if (config_str(cfg->node, "compression", "gzip", &compression, err, errlen) != 0)
        return NULL;
    const char *endpoint;
    if (config_str_required(cfg->node, "endpoint", &endpoint, err, errlen) != 0)
        return NULL;
    otlp_export_state *s = otlp_export_new(cfg, endpoint, otlp_export_grpc_paths, err, errlen);
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
    for (const struct curl_slist *d = s->defaults; d != NULL; d = d->next)
        if ((out->defaults = curl_slist_append(out->defaults, d->data)) == NULL)
            goto oom;
    if (buf_puts(&out->url, s->url[b->signal]) != 0 ||
        (out->headers = curl_slist_append(out->headers, json ? "Content-Type: application/json"
                                                             : "Content-Type: application/x-protobuf")) == NULL)
        goto oom;
    if (!json) {
        out->as_is = 1;
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

/* Protobuf batches go out as they are (JSON is encoded anew). */
static int otlp_http_sends_as_is(void *st)
{
    return ((const otlp_export_state *)st)->encoding == OTLP_PROTOBUF;
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
    static const uint8_t frame[GRPC_FRAME_PREFIX] = {0};
    if (buf_puts(&out->url, s->url[b->signal]) != 0 ||
        (out->headers = curl_slist_append(out->headers, "Content-Type: application/grpc")) == NULL ||
        (out->headers = curl_slist_append(out->headers, "TE: trailers")) == NULL ||
        (s->grpc_gzip && (out->headers = curl_slist_append(out->headers, "grpc-encoding: gzip")) == NULL))
        goto oom;
    /* Uncompressed, the batch's own bytes are the message: the exporter
     * frames them, so they are not copied here. */
    size_t mlen = b->body_len;
    if (s->grpc_gzip) {
        if (buf_append(&out->body, frame, sizeof(frame)) != 0 ||
            gzip_deflate(b->body, b->body_len, -1, &out->body) != GZIP_OK)
            goto oom;
        mlen = out->body.len - sizeof(frame);
    }
    if (mlen > UINT32_MAX) {
        snprintf(err, errlen, "message too large for gRPC");
        return -1;
    }
    if (s->grpc_gzip)
        grpc_frame_put_prefix((uint8_t *)out->body.data, 1, (uint32_t)mlen);
    else
        out->as_is = 1;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Uncompressed, the batch is the message (gzip makes it anew). */
static int otlp_grpc_sends_as_is(void *st)
{
    return !((const otlp_export_state *)st)->grpc_gzip;
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
        if (r->body_len >= GRPC_FRAME_PREFIX && p[0] == 0) {
            size_t mlen = grpc_frame_len(p);
            if (mlen <= r->body_len - GRPC_FRAME_PREFIX)
                otlp_export_partial_pb(b->signal, p + GRPC_FRAME_PREFIX, mlen, &res->rejected, msg, msglen);
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
static const char *const elastic_otlp_keys[] = {"encoding", "paths", "api_key", "secret_token", NULL};
static const char *const aws_xray_keys[] = {"encoding", "region", "credentials", NULL};
static const char *const aws_cloudwatch_logs_keys[] = {"encoding", "region", "credentials", "log_group", "log_stream",
                                                       NULL};

const exporter_type exporter_otlp_http = {.name = "otlp_http",
                                          .keys = otlp_http_keys,
                                          .configure = otlp_http_configure,
                                          .prepare = otlp_http_prepare,
                                          .classify = otlp_http_classify,
                                          .sends_as_is = otlp_http_sends_as_is,
                                          .destroy = otlp_export_destroy};

const exporter_type exporter_otlp_grpc = {.name = "otlp_grpc",
                                          .keys = otlp_grpc_keys,
                                          .gzip_only = 1,
                                          .reentrant = 1, /* reads its state only */
                                          .configure = otlp_grpc_configure,
                                          .prepare = otlp_grpc_prepare,
                                          .classify = otlp_grpc_classify,
                                          .sends_as_is = otlp_grpc_sends_as_is,
                                          .destroy = otlp_export_destroy};

const exporter_type exporter_elastic_otlp = {.name = "elastic_otlp",
                                             .keys = elastic_otlp_keys,
                                             .configure = elastic_otlp_configure,
                                             .prepare = otlp_http_prepare,
                                             .classify = otlp_http_classify,
                                             .sends_as_is = otlp_http_sends_as_is,
                                             .destroy = otlp_export_destroy};

const exporter_type exporter_aws_xray = {.name = "aws_xray",
                                         .keys = aws_xray_keys,
                                         .signals = 1u << OTLP_TRACES,
                                         .max_batch_items = 10000,
                                         .max_batch_bytes = 5000000,
                                         .endpoint_optional = 1,
                                         .gzip_only = 1,
                                         .configure = aws_xray_configure,
                                         .prepare = otlp_http_prepare,
                                         .classify = otlp_http_classify,
                                         .sign = otlp_export_sign,
                                         .destroy = otlp_export_destroy};

/* CloudWatch Logs takes at most 10,000 events and 1 MiB per batch
 * (PutLogEvents' limits, which its OTLP endpoint shares). */
const exporter_type exporter_aws_cloudwatch_logs = {.name = "aws_cloudwatch_logs",
                                                    .keys = aws_cloudwatch_logs_keys,
                                                    .signals = 1u << OTLP_LOGS,
                                                    .max_batch_items = 10000,
                                                    .max_batch_bytes = 1048576,
                                                    .endpoint_optional = 1,
                                                    .gzip_only = 1,
                                                    .configure = aws_cloudwatch_logs_configure,
                                                    .prepare = otlp_http_prepare,
                                                    .classify = otlp_http_classify,
                                                    .sign = otlp_export_sign,
                                                    .destroy = otlp_export_destroy};
