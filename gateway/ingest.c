#include "ingest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "arena.h"
#include "auth.h"
#include "clock.h"
#include "gzip.h"
#include "log.h"
#include "metrics.h"
#include "otlp_wire.h"
#include "pipeline.h"

struct ingest_ctx {
    pipeline *pl;
    auth *au;
    arena *arena; /* reused by every request on this worker */
};

/* Series are resolved once so the hot path only does atomic adds. */
static struct {
    metric_series *received[OTLP_SIGNAL_COUNT][REQ_TRANSPORT_COUNT];
    metric_series *refused_items[OTLP_SIGNAL_COUNT][REQ_TRANSPORT_COUNT][REQ_STATUS_COUNT];
    metric_series *requests[OTLP_SIGNAL_COUNT][REQ_TRANSPORT_COUNT][REQ_STATUS_COUNT];
    metric_series *duration[OTLP_SIGNAL_COUNT][REQ_TRANSPORT_COUNT];
    metric_series *peer_missing, *peer_invalid; /* cluster peer refusals */
} m;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static const char *const status_reasons[REQ_STATUS_COUNT] = {
    "ok", "invalid", "too_large", "unsupported_media_type", "not_found", "throttled",
    "unavailable", "unauthenticated", "permission_denied", "internal"};

const char *ingest_status_reason(req_status st) { return status_reasons[st]; }

const char *ingest_transport_name(req_transport t) { return t == REQ_GRPC ? "grpc" : "http"; }

int ingest_http_status(req_status st)
{
    static const int codes[REQ_STATUS_COUNT] = {200, 400, 413, 415, 404, 429, 503, 401, 403, 500};
    return codes[st];
}

int ingest_grpc_status(req_status st)
{
    static const int codes[REQ_STATUS_COUNT] = {
        GRPC_OK, GRPC_INVALID_ARGUMENT, GRPC_RESOURCE_EXHAUSTED, GRPC_INVALID_ARGUMENT, GRPC_UNIMPLEMENTED,
        GRPC_RESOURCE_EXHAUSTED, GRPC_UNAVAILABLE, GRPC_UNAUTHENTICATED, GRPC_PERMISSION_DENIED, GRPC_INTERNAL};
    return codes[st];
}

static void metrics_init(void)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    metric_family *dur = metrics_histogram_family(
        "otlp_gateway_request_duration_seconds",
        "Time from the start of an export request to its response being ready.", bounds,
        sizeof(bounds) / sizeof(bounds[0]));
    metric_family *req = metrics_family("otlp_gateway_requests_total", METRIC_COUNTER,
                                        "Export requests answered, by signal, transport and outcome.");
    metric_family *peer = metrics_family("otlp_gateway_cluster_peer_refused_total", METRIC_COUNTER,
                                         "Calls to the cluster peer listener refused, by reason.");
    m.peer_missing = metrics_series(peer, "reason=\"missing_token\"");
    m.peer_invalid = metrics_series(peer, "reason=\"invalid_token\"");
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        const char *item = otlp_item_name((otlp_signal)s);
        char name[96], help[160], labels[160];
        snprintf(name, sizeof(name), "otlp_gateway_received_%s_total", item);
        snprintf(help, sizeof(help), "Items (%s) accepted and handed to the pipeline.", item);
        metric_family *rec = metrics_family(name, METRIC_COUNTER, help);
        snprintf(name, sizeof(name), "otlp_gateway_refused_%s_total", item);
        snprintf(help, sizeof(help), "Items (%s) refused, by reason.", item);
        metric_family *ref = metrics_family(name, METRIC_COUNTER, help);
        for (int t = 0; t < REQ_TRANSPORT_COUNT; t++) {
            const char *sig = otlp_signal_name((otlp_signal)s), *tr = ingest_transport_name((req_transport)t);
            snprintf(labels, sizeof(labels), "signal=\"%s\",transport=\"%s\"", sig, tr);
            m.received[s][t] = metrics_series(rec, labels);
            m.duration[s][t] = metrics_series(dur, labels);
            for (int r = 0; r < REQ_STATUS_COUNT; r++) {
                snprintf(labels, sizeof(labels), "signal=\"%s\",transport=\"%s\",reason=\"%s\"", sig, tr,
                         status_reasons[r]);
                /* Items refused inside an accepted request (partial success)
                 * count as "invalid"; there is no "ok" refusal. */
                if (r != REQ_OK)
                    m.refused_items[s][t][r] = metrics_series(ref, labels);
                snprintf(labels, sizeof(labels), "signal=\"%s\",transport=\"%s\",code=\"%s\"", sig, tr,
                         status_reasons[r]);
                m.requests[s][t][r] = metrics_series(req, labels);
            }
        }
    }
}

ingest_ctx *ingest_ctx_new(struct pipeline *pl, struct auth *au)
{
    pthread_once(&metrics_once, metrics_init);
    ingest_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return NULL;
    ctx->pl = pl;
    ctx->au = au;
    if ((ctx->arena = arena_new(0)) == NULL) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

void ingest_ctx_free(ingest_ctx *ctx)
{
    if (ctx == NULL)
        return;
    arena_free(ctx->arena);
    free(ctx);
}

static void observe(req_transport t, otlp_signal sig, req_status st, uint64_t start_ns)
{
    uint64_t now = clock_now_ns();
    metrics_add(m.requests[sig][t][st], 1);
    metrics_observe(m.duration[sig][t], (double)(now - (start_ns ? start_ns : now)) / 1e9);
}

void ingest_count_refused(req_transport t, otlp_signal sig, req_status st, uint64_t start_ns)
{
    pthread_once(&metrics_once, metrics_init);
    observe(t, sig, st, start_ns);
}

static void fail(ingest_result *out, req_status st, const char *msg)
{
    out->status = st;
    snprintf(out->message, sizeof(out->message), "%s", msg);
}

/* The body as plain bytes, inflated into the arena when it came gzipped;
 * on failure fills out and returns -1. */
static int plain_body(ingest_ctx *ctx, const ingest_limits *lim, const uint8_t *body, size_t len, int gzipped,
                      const uint8_t **plain, size_t *plain_len, ingest_result *out)
{
    if (len > lim->max_request_bytes) {
        fail(out, REQ_TOO_LARGE, "request body exceeds max_request_bytes");
        return -1;
    }
    *plain = body;
    *plain_len = len;
    if (!gzipped)
        return 0;
    uint8_t *inflated;
    gzip_status gs = gzip_inflate(body, len, lim->max_request_bytes, ctx->arena, &inflated, plain_len);
    if (gs == GZIP_ERR_TOO_LARGE) {
        fail(out, REQ_TOO_LARGE, "decompressed request body exceeds max_request_bytes");
        return -1;
    }
    /* Out of room in the capped decode arena is the request's size, not
     * a passing shortage: a retry would fail the same way. */
    if (gs == GZIP_ERR_NOMEM && arena_failed(ctx->arena)) {
        fail(out, REQ_TOO_LARGE, "request too large when decoded");
        return -1;
    }
    if (gs != GZIP_OK) {
        fail(out, gs == GZIP_ERR_NOMEM ? REQ_UNAVAILABLE : REQ_INVALID, "invalid gzip body");
        return -1;
    }
    *plain = inflated;
    return 0;
}

/* Decode plain bytes into the arena; on failure fills out and returns -1. */
static int decode(ingest_ctx *ctx, otlp_signal sig, otlp_encoding enc, const uint8_t *data, size_t len,
                  otlp_request *req, ingest_result *out)
{
    char err[200];
    if (otlp_decode(sig, enc, data, len, ctx->arena, req, err, sizeof(err)) != 0) {
        if (arena_failed(ctx->arena))
            fail(out, REQ_TOO_LARGE, "request too large when decoded");
        else
            fail(out, REQ_INVALID, err);
        return -1;
    }
    return 0;
}

/* The request as the pipeline will take it: validated, and decoded only
 * when some pipeline needs more than its protobuf bytes. When the wire
 * scan finds the bytes are exactly the valid request, they travel along
 * (req->wire) so that nothing encodes them again. */
static int read_request(ingest_ctx *ctx, const ingest_limits *lim, otlp_signal sig, otlp_encoding enc,
                        const char *tenant, const uint8_t *body, size_t len, int gzipped, otlp_request *req,
                        ingest_result *out)
{
    const uint8_t *plain;
    size_t plain_len, items = 0;
    if (plain_body(ctx, lim, body, len, gzipped, &plain, &plain_len, out) != 0)
        return -1;
    int sampled = 0;
    pipeline_wire use = enc == OTLP_PROTOBUF ? pipeline_wire_use(ctx->pl, tenant, sig, &sampled) : PIPELINE_WIRE_NONE;
    /* The notes come from the request's memory limit: taken only when they
     * leave at least half of it for routing (else the sampler reads the
     * spans itself, as when there is no room). */
    otlp_wire_spans notes = {0};
    size_t cap = otlp_wire_spans_cap(plain_len), notes_bytes = cap * sizeof(*notes.v);
    if (sampled && arena_used(ctx->arena) + notes_bytes <= lim->max_decoded_bytes / 2 &&
        (notes.v = arena_alloc_soft(ctx->arena, notes_bytes)) != NULL)
        notes.cap = cap;
    int whole = use != PIPELINE_WIRE_NONE && otlp_wire_scan(sig, plain, plain_len, &items, notes.cap ? &notes : NULL);
    if (whole && use == PIPELINE_WIRE_ONLY) {
        *req = (otlp_request){.signal = sig, .items = items};
        if (notes.cap != 0 && notes.n == items) {
            req->spans = notes.v;
            req->n_spans = notes.n;
        }
    } else {
        if (decode(ctx, sig, enc, plain, plain_len, req, out) != 0)
            return -1;
        otlp_validate(req);
    }
    if (whole) {
        req->wire = plain;
        req->wire_len = plain_len;
    }
    return 0;
}

/* Authenticate before spending anything on the body. Returns the tenant
 * (NULL in open mode) or sets out and returns via *ok = 0. */
static const tenant *authenticate(ingest_ctx *ctx, req_origin *o, ingest_result *out, int *ok)
{
    *ok = 1;
    o->tenant = "";
    if (ctx->au == NULL)
        return NULL;
    auth_result ar;
    auth_request(ctx->au, o, &ar);
    if (ar.status != REQ_OK) {
        *ok = 0;
        fail(out, ar.status, ar.message);
        out->retry_after_s = ar.retry_after_s;
        out->token_rejected = ar.status == REQ_UNAUTHENTICATED && strcmp(ar.reason, "missing_token") != 0;
        return NULL;
    }
    o->tenant = tenant_id(ar.tenant);
    return ar.tenant;
}

/* The pipeline did not take the request: out says why, in words fit for the
 * client. The pipeline's own reason stays in the server log: backend errors
 * name paths and hosts the client has no business seeing. */
/* retry_after_s: the pipeline's hint with PIPELINE_RETRY (when the backend
 * that had no room expects to take data again). */
static void routing_failed(ingest_ctx *ctx, pipeline_status ps, uint32_t retry_after_s, const otlp_request *req,
                           ingest_result *out)
{
    if (arena_failed(ctx->arena))
        fail(out, REQ_TOO_LARGE, "request too large when routed");
    else
        fail(out, ps == PIPELINE_RETRY ? REQ_UNAVAILABLE : REQ_INTERNAL,
             ps == PIPELINE_RETRY ? "export temporarily unavailable, retry later" : "export failed");
    out->retry_after_s = out->status == REQ_UNAVAILABLE ? (retry_after_s > 0 ? retry_after_s : 1) : 0;
    out->rejected += req->items;
    out->accepted = 0;
}

void ingest_export(ingest_ctx *ctx, const ingest_limits *lim, otlp_signal sig, otlp_encoding enc,
                   const req_origin *origin, const uint8_t *body, size_t len, int gzipped, ingest_result *out)
{
    uint64_t start = origin->start_ns ? origin->start_ns : clock_now_ns();
    memset(out, 0, sizeof(*out));
    arena_reset(ctx->arena);
    arena_set_limit(ctx->arena, lim->max_decoded_bytes);
    otlp_request req;
    memset(&req, 0, sizeof(req));
    req_origin o = *origin;
    int authenticated;
    const tenant *t = authenticate(ctx, &o, out, &authenticated);
    if (authenticated && read_request(ctx, lim, sig, enc, o.tenant ? o.tenant : "", body, len, gzipped, &req, out) == 0) {
        req_status admit = auth_admit(t, sig, req.items, len, &out->retry_after_s);
        if (admit != REQ_OK) {
            fail(out, admit, admit == REQ_TOO_LARGE ? "request exceeds the tenant's max_request_bytes"
                                                       : "tenant rate limit exceeded, retry later");
            metrics_add(m.refused_items[sig][origin->transport][admit], req.items + req.rejected);
            auth_count_refused(t, sig, status_reasons[admit], req.items + req.rejected);
            out->rejected = req.items + req.rejected;
            goto done;
        }
        out->accepted = req.items;
        out->rejected = req.rejected;
        if (req.rejected > 0) {
            snprintf(out->message, sizeof(out->message), "%s", req.reject_reason);
            metrics_add(m.refused_items[sig][origin->transport][REQ_INVALID], req.rejected);
            auth_count_refused(t, sig, status_reasons[REQ_INVALID], req.rejected);
        }
        char err[256] = "";
        uint32_t retry_after_s = 0;
        pipeline_status ps = req.items > 0 ? pipeline_submit(ctx->pl, &req, o.tenant ? o.tenant : "", ctx->arena,
                                                             &retry_after_s, err, sizeof(err))
                                           : PIPELINE_OK;
        if (ps == PIPELINE_OK) {
            metrics_add(m.received[sig][origin->transport], req.items);
            auth_count_items(t, sig, req.items);
        } else {
            routing_failed(ctx, ps, retry_after_s, &req, out);
            metrics_add(m.refused_items[sig][origin->transport][out->status], req.items);
            auth_count_refused(t, sig, status_reasons[out->status], req.items);
        }
    }
done:
    /* The answer is built from *out alone: give the request's memory back
     * now rather than when this worker's next request comes. */
    arena_reset(ctx->arena);
    if (out->status != REQ_OK)
        log_debug("request refused", "signal=%s transport=%s reason=%s", otlp_signal_name(sig),
                  ingest_transport_name(origin->transport), status_reasons[out->status]);
    observe(origin->transport, sig, out->status, start);
}

void ingest_forwarded(ingest_ctx *ctx, const ingest_limits *lim, const req_origin *origin, const char *tenant,
                      const char *pipeline, const char *from, const uint8_t *body, size_t len, int gzipped,
                      ingest_result *out)
{
    memset(out, 0, sizeof(*out));
    arena_reset(ctx->arena);
    arena_set_limit(ctx->arena, lim->max_decoded_bytes);
    otlp_request req;
    memset(&req, 0, sizeof(req));
    const uint8_t *plain;
    size_t plain_len;
    if (plain_body(ctx, lim, body, len, gzipped, &plain, &plain_len, out) == 0 &&
        decode(ctx, OTLP_TRACES, OTLP_PROTOBUF, plain, plain_len, &req, out) == 0) {
        otlp_validate(&req); /* the sampler relies on valid trace ids, whoever sent them */
        out->accepted = req.items;
        out->rejected = req.rejected;
        char err[256] = "";
        uint32_t retry_after_s = 0;
        pipeline_status ps = req.items > 0 ? pipeline_accept_forwarded(ctx->pl, &req, tenant, pipeline, from,
                                                                       ctx->arena, &retry_after_s, err, sizeof(err))
                                           : PIPELINE_OK;
        if (ps != PIPELINE_OK) {
            log_warn("forwarded spans refused", "listener=%s tenant=%s pipeline=%s err=\"%s\"", origin->listener,
                     tenant, pipeline, err);
            routing_failed(ctx, ps, retry_after_s, &req, out);
        }
    }
    arena_reset(ctx->arena); /* as ingest_export: the answer needs none of it */
    if (out->status != REQ_OK)
        log_debug("forwarded request refused", "listener=%s reason=%s", origin->listener, status_reasons[out->status]);
}

int ingest_draining(ingest_ctx *ctx) { return pipeline_draining(ctx->pl); }

int ingest_peer_authorize(const char *secret, const char *authorization, size_t len, ingest_result *out)
{
    pthread_once(&metrics_once, metrics_init);
    memset(out, 0, sizeof(*out));
    if (secret == NULL)
        return 0;
    if (authorization == NULL) {
        metrics_add(m.peer_missing, 1);
        fail(out, REQ_UNAUTHENTICATED, "missing peer secret");
        return -1;
    }
    /* Digests of equal length, compared in constant time: neither the
     * secret's bytes nor its length leak through timing. */
    static const char prefix[] = "Bearer ";
    unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
    unsigned wl = 0, gl = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, prefix, sizeof(prefix) - 1) == 1 &&
             EVP_DigestUpdate(md, secret, strlen(secret)) == 1 && EVP_DigestFinal_ex(md, want, &wl) == 1 &&
             EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, authorization, len) == 1 &&
             EVP_DigestFinal_ex(md, got, &gl) == 1 && wl == gl && CRYPTO_memcmp(want, got, wl) == 0;
    EVP_MD_CTX_free(md);
    if (!ok) {
        metrics_add(m.peer_invalid, 1);
        fail(out, REQ_UNAUTHENTICATED, "invalid peer secret");
        return -1;
    }
    return 0;
}

int ingest_response_body(otlp_signal sig, otlp_encoding enc, const ingest_result *res, buf *out)
{
    if (res->status == REQ_OK)
        return otlp_encode_response(sig, enc, res->rejected, res->rejected ? res->message : "", out);
    return otlp_encode_status(enc, ingest_grpc_status(res->status), res->message, out);
}

static const char *const http_paths[OTLP_SIGNAL_COUNT] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
static const char *const grpc_paths[OTLP_SIGNAL_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export"};

static int signal_from_path(const char *const *paths, const char *path, size_t len)
{
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++)
        if (strlen(paths[s]) == len && memcmp(paths[s], path, len) == 0)
            return s;
    return -1;
}

int ingest_signal_from_http_path(const char *path, size_t len)
{
    /* A trailing slash is the same resource; query strings are ignored. */
    const char *q = memchr(path, '?', len);
    if (q != NULL)
        len = (size_t)(q - path);
    if (len > 1 && path[len - 1] == '/')
        len--;
    return signal_from_path(http_paths, path, len);
}

int ingest_signal_from_grpc_path(const char *path, size_t len) { return signal_from_path(grpc_paths, path, len); }
