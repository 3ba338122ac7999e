/* ingest: the transport-independent half of an OTLP export request.
 *
 * A listener (grpc.c, http.c) reassembles one request body, then calls
 * ingest_export(), which authenticates it (auth.h), decompresses (bounded),
 * decodes into the worker's arena, validates, applies the tenant's limits,
 * hands the request to the pipeline and records metrics.
 * The listener turns the result into its own wire status with
 * ingest_http_status()/ingest_grpc_status() and a body from
 * ingest_response_body(). Everything here runs synchronously on the calling
 * worker thread; an ingest_ctx belongs to exactly one worker. */
#ifndef GW_INGEST_H
#define GW_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "otlp.h"

struct pipeline;
struct auth;

typedef enum { INGEST_GRPC = 0, INGEST_HTTP = 1, INGEST_TRANSPORT_COUNT = 2 } ingest_transport;

typedef enum {
    INGEST_OK = 0,            /* accepted; maybe partially (result.rejected > 0) */
    INGEST_INVALID,           /* 400 / INVALID_ARGUMENT */
    INGEST_TOO_LARGE,         /* 413 / RESOURCE_EXHAUSTED */
    INGEST_UNSUPPORTED_MEDIA, /* 415 / INVALID_ARGUMENT (gRPC: UNIMPLEMENTED for an unknown grpc-encoding) */
    INGEST_NOT_FOUND,         /* 404 / UNIMPLEMENTED */
    INGEST_THROTTLED,         /* 429 / RESOURCE_EXHAUSTED, retryable */
    INGEST_UNAVAILABLE,       /* 503 / UNAVAILABLE, retryable */
    INGEST_UNAUTHENTICATED,   /* 401 / UNAUTHENTICATED */
    INGEST_PERMISSION_DENIED, /* 403 / PERMISSION_DENIED */
    INGEST_INTERNAL,          /* 500 / INTERNAL */
    INGEST_STATUS_COUNT
} ingest_status;

/* gRPC status codes used on the wire. */
enum {
    GRPC_OK = 0, GRPC_CANCELLED = 1, GRPC_UNKNOWN = 2, GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4, GRPC_PERMISSION_DENIED = 7, GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12, GRPC_INTERNAL = 13, GRPC_UNAVAILABLE = 14, GRPC_UNAUTHENTICATED = 16
};

int ingest_http_status(ingest_status st);
int ingest_grpc_status(ingest_status st);
/* Short label for metrics and logs: "invalid", "too_large", ... */
const char *ingest_status_reason(ingest_status st);
const char *ingest_transport_name(ingest_transport t); /* "grpc" | "http" */

/* Where a request came from. Everything is borrowed for the duration of
 * ingest_export (the auth layer reads it; the pipeline copies what it keeps). */
typedef struct ingest_origin {
    const char *listener; /* listener name from the config */
    ingest_transport transport;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int tls;                   /* connection is TLS */
    const char *authorization; /* Authorization header value, not NUL-terminated; NULL if absent */
    size_t authorization_len;
    uint64_t start_ns;         /* monotonic ns when the request began; 0 = now */
    const char *tenant;        /* set by ingest_export once authenticated ("" in open mode) */
    const char *client_cert_subject; /* subject CN of the verified TLS client certificate; NULL if none */
} ingest_origin;

typedef struct ingest_result {
    ingest_status status;
    uint64_t accepted;       /* items handed on */
    uint64_t rejected;       /* items refused (partial success, or all on error) */
    uint32_t retry_after_s;  /* for THROTTLED / UNAVAILABLE */
    char message[256];       /* client-safe error or partial-success message */
    int token_rejected;      /* UNAUTHENTICATED because a presented token was bad
                              * (HTTP adds error="invalid_token" to WWW-Authenticate) */
} ingest_result;

typedef struct ingest_limits {
    size_t max_request_bytes; /* wire body and decompressed body */
    size_t max_decoded_bytes; /* decode arena cap */
} ingest_limits;

typedef struct ingest_ctx ingest_ctx;

/* One per worker thread. `pl` and `au` (NULL: no authentication) are shared
 * and must outlive the ctx. */
ingest_ctx *ingest_ctx_new(struct pipeline *pl, struct auth *au);
void ingest_ctx_free(ingest_ctx *ctx);

/* Process one complete export request. `body` is the wire body (for gRPC the
 * message without its 5-byte prefix); gzipped says it is gzip-compressed.
 * Fills *out; never fails silently. */
void ingest_export(ingest_ctx *ctx, const ingest_limits *lim, otlp_signal sig, otlp_encoding enc,
                   const ingest_origin *origin, const uint8_t *body, size_t len, int gzipped,
                   ingest_result *out);

/* Count a request refused before it reached ingest_export (bad path, bad
 * content type, body over the limit while still receiving, ...). */
void ingest_count_refused(ingest_transport t, otlp_signal sig, ingest_status st, uint64_t start_ns);

/* Response body for a result: Export*ServiceResponse (with partial success)
 * when status is OK, google.rpc.Status otherwise. Appends to out. */
int ingest_response_body(otlp_signal sig, otlp_encoding enc, const ingest_result *res, buf *out);

/* Maps "/v1/traces" style paths and gRPC method paths to a signal; -1 if unknown. */
int ingest_signal_from_http_path(const char *path, size_t len);
int ingest_signal_from_grpc_path(const char *path, size_t len);

uint64_t ingest_now_ns(void);

#endif
