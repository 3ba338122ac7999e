/* exporter: the machinery every network backend shares. It reads the common
 * config keys (endpoint, headers, per-tenant headers, compression, timeout,
 * tls, batch, retry, queue), owns the backend's export_queue, and runs
 * queue.consumers threads that each take a batch from the queue, send it and
 * retry it, so that many requests are in flight at once. HTTP goes through
 * libcurl (HTTP/1.1 or h2 via ALPN; a connection per consumer); gRPC goes
 * through h2_client (one HTTP/2 connection per backend, h2c or TLS with ALPN
 * h2, the consumers' requests multiplexed on it as streams).
 *
 * A backend type (OTLP/HTTP, OTLP/gRPC, Elasticsearch, AWS, remote write)
 * supplies an exporter_type: `prepare` turns a batch into an HTTP request,
 * `sign` (optional) signs each attempt's final bytes, `classify` turns the
 * reply into an outcome, possibly retrying only some items. Batching relies on a protobuf property:
 * concatenated Export*ServiceRequest encodings parse as one request whose
 * repeated resource_* field holds all of them, so a batch body is the
 * entries' bytes back to back, with no re-encoding.
 *
 * Retry policy: EXPORT_RETRY waits max(retry_after, backoff) where backoff
 * grows from initial_interval by multiplier up to max_interval with +-jitter,
 * until max_elapsed since the batch's first attempt, then the batch is
 * dropped and counted. EXPORT_FAIL drops at once (counted, logged with the
 * backend's message). Partial success counts rejected items, no retry. */
#ifndef GW_EXPORTER_H
#define GW_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "backend.h"
#include "buf.h"
#include "queue.h"

typedef struct export_batch {
    otlp_signal signal;
    const char *tenant;
    const queue_entry *entries;
    size_t n_entries;
    uint64_t items;
    const uint8_t *body; /* the entries' payloads concatenated: one merged request; NULL
                          * for a type that sends_as_is: the entries' payloads, in
                          * order, are that request, not joined (prepare reads none) */
    size_t body_len;
} export_batch;

/* The request `prepare` fills. The exporter adds the configured headers
 * (per-tenant, per-signal, common), compression and content-length, and owns
 * cleanup. */
typedef struct export_http {
    buf url;                       /* full URL */
    struct curl_slist *headers;    /* type headers, sent as given (a configured header
                                    * of the same name is not added) */
    struct curl_slist *defaults;   /* type headers that a configured header of the same
                                    * name replaces (e.g. x-aws-log-group per tenant) */
    buf body;                      /* bytes to send (the exporter compresses after prepare
                                    * when the type leaves compress = 1) */
    int as_is;                     /* prepare leaves body empty: the batch's own bytes
                                    * (b->body) are sent, sparing a copy of each batch;
                                    * with grpc, as one uncompressed message (the
                                    * exporter adds the gRPC message prefix) */
    int compress;                  /* apply the configured compression */
    int grpc;                      /* HTTP/2 required, te: trailers, gRPC status in trailers */
} export_http;

typedef struct export_response {
    long http_status;              /* 0: transport error (see error) */
    const char *error;             /* curl error text or NULL */
    const char *content_type;
    const uint8_t *body;
    size_t body_len;
    int grpc_status;               /* -1 if absent */
    const char *grpc_message;      /* percent-decoded, or NULL */
    uint32_t retry_after_s;        /* Retry-After header or gRPC RetryInfo, 0 if none */
    /* What this attempt sent, before compression: prepare's body (the
     * batch's bytes when as_is, without a gRPC prefix; NULL when they went
     * unjoined), or the last retry_body (for types whose per-item answers
     * index into it). */
    const uint8_t *request_body;
    size_t request_len;
} export_response;

typedef enum { EXPORT_OK = 0, EXPORT_RETRY = 1, EXPORT_FAIL = 2 } export_outcome;

/* What classify reports beside the outcome. */
typedef struct export_result {
    uint64_t rejected;      /* items refused for good (partial success, per-item
                             * errors): counted and logged, never retried */
    uint32_t retry_after_s; /* from the response; a type may raise it */
    /* Per-item results: with EXPORT_RETRY a type may fill retry_body (empty
     * on entry) to retry only those bytes -- in prepare's body format,
     * uncompressed -- which hold retry_items items. The items of the attempt
     * neither rejected nor retried count as delivered. Left empty, the whole
     * request is retried. */
    buf *retry_body;
    uint64_t retry_items;
    char *msg;              /* the backend's words for the log (msglen bytes, "" on entry) */
    size_t msglen;
} export_result;

/* The request as it goes on the wire, for a type that signs it. */
typedef struct export_signing {
    const char *method;               /* NULL: POST (what exporters send) */
    const char *url;
    const struct curl_slist *headers; /* every header the exporter sets (curl adds
                                       * Content-Length, User-Agent and, unless
                                       * given, Host) */
    const uint8_t *body;              /* after compression */
    size_t len;
} export_signing;

typedef struct exporter_type {
    const char *name;               /* config `type:` */
    const char *const *keys;        /* extra config keys the type reads (NULL-terminated) */
    unsigned signals;               /* signals it takes, bits (1u << otlp_signal); 0: all */
    uint64_t max_batch_items;       /* the backend's per-request limits: defaults and */
    size_t max_batch_bytes;         /* ceilings of batch.max_items/max_bytes; 0: none */
    int endpoint_optional;          /* configure derives the URL (e.g. from region) */
    int gzip_only;                  /* the receiver decodes gzip only: no zstd */
    int reentrant;                  /* prepare, classify and sign keep no mutable state:
                                     * the consumer threads may run them at once (else
                                     * the exporter runs them one at a time) */
    int per_consumer;               /* prepare leaves state that the batch's classify
                                     * reads (its documents, what it could not convert):
                                     * each consumer thread gets a type state of its own
                                     * (configure runs once per consumer), so batches in
                                     * flight at once do not share it */
    /* Build type state from the backend's config node; NULL with a located error.
     * Type state is used by the backend's consumer threads, one at a time
     * unless the type is reentrant or per_consumer. */
    void *(*configure)(const backend_config *cfg, char *err, size_t errlen);
    int (*prepare)(void *st, const export_batch *b, export_http *out, char *err, size_t errlen);
    export_outcome (*classify)(void *st, const export_batch *b, const export_response *r, export_result *res);
    /* Optional, before every attempt (so a signature is fresh on retries):
     * append headers to *extra. -1 with err: the attempt is not made and is
     * retried like a transport error (e.g. credentials not available yet). */
    int (*sign)(void *st, const export_signing *req, struct curl_slist **extra, char *err, size_t errlen);
    /* Optional: 1 when prepare sets as_is for every batch without reading its
     * body. Then, uncompressed and unsigned, a batch of several entries goes
     * to the wire as their payloads one after another, never joined into one
     * buffer (body NULL in prepare and classify). */
    int (*sends_as_is)(void *st);
    void (*destroy)(void *st);
} exporter_type;

/* A backend (backend.h) for `type`: reads the common keys and the type's,
 * opens the queue (recovering a disk queue), starts its thread. Its export
 * op pushes the pipeline's encoded bytes into the queue (after the
 * pipeline's reserve), so acknowledgement means "queued" (see queue.h for
 * what survives what). */
backend *exporter_backend_create(const exporter_type *type, const backend_config *cfg, char *err, size_t errlen);
/* The common keys and the type's, read as exporter_backend_create reads
 * them, with no queue, thread or connection (backend_ops.check). */
int exporter_backend_check(const exporter_type *type, const backend_config *cfg, char *err, size_t errlen);

/* endpoint (trailing slashes dropped) + path into out; -1 if over cap. */
int exporter_url(char *out, size_t cap, const char *endpoint, const char *path);

/* What a response's header, trailer and body callbacks collect; reset
 * content_type, grpc_message, grpc_status (-1) and retry_after_s before each
 * request. Shared with the cluster forwarder (routing/forward.c). */
typedef struct exporter_reply {
    buf body;
    char content_type[128];
    char grpc_message[512]; /* percent-decoded */
    int grpc_status;        /* -1 if absent */
    uint32_t retry_after_s; /* Retry-After or gRPC RetryInfo */
} exporter_reply;
/* An HTTP/2 client's callbacks (h2_client.h) into an exporter_reply: one
 * header or trailer field (gRPC puts grpc-status in the trailers), one
 * piece of the body (the first 64 KiB are kept). */
void exporter_reply_header(void *reply, const char *name, size_t nlen, const char *value, size_t vlen);
void exporter_reply_body(void *reply, const uint8_t *p, size_t len);

/* Exposed for unit tests: the delay before retry number `attempt` (0-based),
 * given a random value r in [0,1). */
uint64_t exporter_backoff_ms(uint64_t initial_ms, uint64_t max_ms, double multiplier, double jitter, unsigned attempt,
                             double r);

extern const exporter_type exporter_otlp_http;
extern const exporter_type exporter_otlp_grpc;
extern const exporter_type exporter_elastic_otlp;
extern const exporter_type exporter_elasticsearch;
extern const exporter_type exporter_aws_xray;
extern const exporter_type exporter_aws_cloudwatch_logs;
extern const exporter_type exporter_prometheus_remote_write;

#endif
