/* prom_rw_export: the `prometheus_remote_write` exporter type. Metrics go
 * to any Prometheus remote-write 1.0 receiver (Prometheus with
 * --web.enable-remote-write-receiver, Mimir, Thanos, VictoriaMetrics,
 * Amazon Managed Prometheus with the optional `sigv4:` signing) as a
 * snappy-compressed protobuf WriteRequest, converted by prom_rw.c.
 *
 * The endpoint is the full write URL (receivers differ: /api/v1/write,
 * /api/v1/push, /workspaces/<id>/api/v1/remote_write), used as given.
 *
 * Compression: the protocol allows only snappy block compression, so the
 * type compresses itself and configuring `compression:` is an error rather
 * than a setting that would silently not apply.
 *
 * Native histograms: a Prometheus without --enable-feature=native-histograms
 * answers 500 "native histograms are disabled" to any request carrying one,
 * which would hold up every metric of the batch until retries run out;
 * `native_histograms: false` drops exponential histograms instead.
 *
 * Accounting: points that have no Prometheus form (delta, exponential
 * histograms that cannot or may not be native, invalid; see prom_rw.h) are reported to the exporter as
 * rejected once per batch, with the reasons, so they are counted and logged
 * like a partial success. Responses: 2xx delivered; 429 and 5xx retried
 * (the exporter honours Retry-After); other 4xx -- Prometheus' answer to an
 * out-of-order or otherwise bad sample, which refuses the whole request --
 * dropped, with the receiver's text as the message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "aws_export.h"
#include "exporter.h"
#include "metrics_service.pb-c.h"
#include "prom_rw.h"

/* How much of an error body goes into the message. */
#define PROM_RW_EXPORT_BODY_TEXT 200

typedef struct prom_rw_export_state {
    const char *url;            /* the endpoint, owned by the config */
    prom_rw_options opt;
    const char **resource_labels; /* opt.resource_labels: the array is owned, the strings are the config's */
    aws_signer *signer;         /* NULL without sigv4 */
    arena *arena;               /* the decoded batch and its conversion */
    buf request;                /* the uncompressed WriteRequest */
    /* points of the prepared batch that could not be converted, reported
     * by the first classify of the batch */
    uint64_t unconverted;
    char unconverted_msg[200];
} prom_rw_export_state;

static void prom_rw_export_destroy(void *st)
{
    prom_rw_export_state *s = st;
    if (s == NULL)
        return;
    if (s->signer != NULL)
        aws_signer_free(s->signer);
    arena_free(s->arena);
    buf_free(&s->request);
    free(s->resource_labels);
    free(s);
}

/* ---- configuration ---- */

/* `resource_to_labels: [attr, ...]` into s->opt. */
static int prom_rw_export_resource_labels(prom_rw_export_state *s, const config_node *node, char *err,
                                          size_t errlen)
{
    const config_node *seq = config_get(node, "resource_to_labels");
    if (seq != NULL && !config_is_seq(seq)) {
        if (config_scalar(seq) != NULL || config_is_map(seq))
            return config_error(node, "resource_to_labels", err, errlen,
                                "expected a list of resource attribute names");
        return 0; /* a YAML null: none */
    }
    size_t n = config_seq_len(seq);
    if (n == 0)
        return 0;
    if ((s->resource_labels = calloc(n, sizeof(*s->resource_labels))) == NULL)
        return config_error(node, "resource_to_labels", err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const config_node *item = config_seq_at(seq, i);
        const char *key = config_scalar(item);
        if (key == NULL || key[0] == '\0')
            return config_error(item, NULL, err, errlen, "expected a resource attribute name");
        s->resource_labels[i] = key;
    }
    s->opt.resource_labels = s->resource_labels;
    s->opt.n_resource_labels = n;
    return 0;
}

/* `sigv4: {region, credentials, service}`: sign for Amazon Managed
 * Prometheus (service "aps") or another SigV4 receiver. */
static int prom_rw_export_sigv4(prom_rw_export_state *s, const config_node *node, char *err, size_t errlen)
{
    const config_node *m = config_get(node, "sigv4");
    if (m == NULL || (!config_is_map(m) && !config_is_seq(m) && config_scalar(m) == NULL))
        return 0; /* absent or null: no signing */
    if (!config_is_map(m))
        return config_error(node, "sigv4", err, errlen, "expected a mapping (region, credentials, service)");
    const char *allowed[8];
    size_t n = 0;
    for (size_t i = 0; aws_signer_keys[i] != NULL && n + 2 < sizeof(allowed) / sizeof(allowed[0]); i++)
        allowed[n++] = aws_signer_keys[i];
    allowed[n++] = "service";
    allowed[n] = NULL;
    const char *service;
    if (config_check_keys(m, allowed, err, errlen) != 0 || config_str(m, "service", "aps", &service, err, errlen) != 0)
        return -1;
    if (service[0] == '\0')
        return config_error(m, "service", err, errlen, "must not be empty");
    s->signer = aws_signer_from_config(m, service, err, errlen);
    return s->signer != NULL ? 0 : -1;
}

static void *prom_rw_export_configure(const backend_config *cfg, char *err, size_t errlen)
{
    const config_node *node = cfg->node;
    /* The common reader accepted it; here it would have no effect. */
    if (config_get(node, "compression") != NULL) {
        config_error(node, "compression", err, errlen,
                     "not configurable: remote write is always snappy-compressed (remove this key)");
        return NULL;
    }
    prom_rw_export_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (config_str_required(node, "endpoint", &s->url, err, errlen) != 0 ||
        config_bool(node, "add_metric_suffixes", 1, &s->opt.add_metric_suffixes, err, errlen) != 0 ||
        config_bool(node, "target_info", 1, &s->opt.target_info, err, errlen) != 0 ||
        config_bool(node, "native_histograms", 1, &s->opt.native_histograms, err, errlen) != 0 ||
        prom_rw_export_resource_labels(s, node, err, errlen) != 0 || prom_rw_export_sigv4(s, node, err, errlen) != 0)
        goto fail;
    if ((s->arena = arena_new(0)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return s;
fail:
    prom_rw_export_destroy(s);
    return NULL;
}

/* ---- requests ---- */

/* Remembers what the conversion dropped, for classify to report. */
static void prom_rw_export_note_drops(prom_rw_export_state *s, const prom_rw_stats *st)
{
    s->unconverted = 0;
    s->unconverted_msg[0] = '\0';
    size_t len = 0;
    for (int r = 0; r < PROM_RW_DROP_COUNT; r++) {
        if (st->dropped[r] == 0)
            continue;
        s->unconverted += st->dropped[r];
        int k = snprintf(s->unconverted_msg + len, sizeof(s->unconverted_msg) - len, "%s%s=%llu",
                         len ? " " : "points without a Prometheus form: ", prom_rw_drop_name((prom_rw_drop)r),
                         (unsigned long long)st->dropped[r]);
        if (k > 0 && (size_t)k < sizeof(s->unconverted_msg) - len)
            len += (size_t)k;
    }
}

static int prom_rw_export_prepare(void *st, const export_batch *b, export_http *out, char *err, size_t errlen)
{
    prom_rw_export_state *s = st;
    otlp_request req;
    prom_rw_stats stats = {0};
    out->compress = 0;
    arena_reset(s->arena);
    buf_clear(&s->request);
    if (otlp_decode(OTLP_METRICS, OTLP_PROTOBUF, b->body, b->body_len, s->arena, &req, err, errlen) != 0)
        return -1;
    if (prom_rw_convert((const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *)req.msg,
                        &s->opt, s->arena, &s->request, &stats) != 0)
        goto oom;
    prom_rw_export_note_drops(s, &stats);
    size_t max = snappy_max_compressed_length(s->request.len);
    if (buf_reserve(&out->body, max) != 0)
        goto oom;
    size_t len = max;
    if (snappy_compress(s->request.data != NULL ? s->request.data : "", s->request.len, out->body.data, &len) !=
        SNAPPY_OK) {
        snprintf(err, errlen, "snappy compression failed");
        return -1;
    }
    out->body.len = len;
    if (buf_puts(&out->url, s->url) != 0 ||
        (out->headers = curl_slist_append(out->headers, "Content-Type: application/x-protobuf")) == NULL ||
        (out->headers = curl_slist_append(out->headers, "Content-Encoding: snappy")) == NULL ||
        (out->headers = curl_slist_append(out->headers, "X-Prometheus-Remote-Write-Version: 0.1.0")) == NULL)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int prom_rw_export_sign(void *st, const export_signing *req, struct curl_slist **extra, char *err,
                               size_t errlen)
{
    prom_rw_export_state *s = st;
    return s->signer != NULL ? aws_signer_sign(s->signer, req, extra, err, errlen) : 0;
}

/* "HTTP 400: <the body's first line(s)>", control characters as spaces. */
static void prom_rw_export_error_text(const export_response *r, char *msg, size_t msglen)
{
    char text[PROM_RW_EXPORT_BODY_TEXT + 1];
    size_t n = r->body_len < PROM_RW_EXPORT_BODY_TEXT ? r->body_len : PROM_RW_EXPORT_BODY_TEXT;
    for (size_t i = 0; i < n; i++)
        text[i] = r->body[i] < 0x20 || r->body[i] == 0x7f ? ' ' : (char)r->body[i];
    while (n > 0 && text[n - 1] == ' ')
        n--;
    text[n] = '\0';
    snprintf(msg, msglen, "HTTP %ld%s%s", r->http_status, n ? ": " : "", text);
}

static export_outcome prom_rw_export_classify(void *st, const export_batch *b, const export_response *r,
                                              export_result *res)
{
    (void)b;
    prom_rw_export_state *s = st;
    export_outcome o;
    /* Unconverted points are reported once: a retry resends the same
     * request, which no longer holds them. */
    res->rejected = s->unconverted;
    s->unconverted = 0;
    if (r->http_status == 0) {
        snprintf(res->msg, res->msglen, "%s", r->error != NULL ? r->error : "transport error");
        o = EXPORT_RETRY;
    } else if (r->http_status >= 200 && r->http_status < 300) {
        snprintf(res->msg, res->msglen, "%s", s->unconverted_msg);
        o = EXPORT_OK;
    } else {
        prom_rw_export_error_text(r, res->msg, res->msglen);
        o = r->http_status == 429 || r->http_status >= 500 ? EXPORT_RETRY : EXPORT_FAIL;
    }
    if (res->rejected > 0 && o != EXPORT_OK) {
        size_t len = strlen(res->msg);
        snprintf(res->msg + len, res->msglen - len, "; %s", s->unconverted_msg);
    }
    return o;
}

static const char *const prom_rw_export_keys[] = {"add_metric_suffixes", "target_info", "native_histograms",
                                                  "resource_to_labels", "sigv4", NULL};

const exporter_type exporter_prometheus_remote_write = {.name = "prometheus_remote_write",
                                                        .keys = prom_rw_export_keys,
                                                        .signals = 1u << OTLP_METRICS,
                                                        .per_consumer = 1, /* what the batch could not convert, prepare to classify */
                                                        .configure = prom_rw_export_configure,
                                                        .prepare = prom_rw_export_prepare,
                                                        .classify = prom_rw_export_classify,
                                                        .sign = prom_rw_export_sign,
                                                        .destroy = prom_rw_export_destroy};
