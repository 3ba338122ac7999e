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

#include "buf.h"
#include "otlp.h"
#include "types.h"

struct pipeline;
struct auth;

/* gRPC status codes used on the wire. */
enum {
    GRPC_OK = 0, GRPC_CANCELLED = 1, GRPC_UNKNOWN = 2, GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4, GRPC_PERMISSION_DENIED = 7, GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12, GRPC_INTERNAL = 13, GRPC_UNAVAILABLE = 14, GRPC_UNAUTHENTICATED = 16
};

int ingest_http_status(req_status st);
int ingest_grpc_status(req_status st);
/* Short label for metrics and logs: "invalid", "too_large", ... */
const char *ingest_status_reason(req_status st);
const char *ingest_transport_name(req_transport t); /* "grpc" | "http" */

typedef struct ingest_result {
    req_status status;
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
                   const req_origin *origin, const uint8_t *body, size_t len, int gzipped,
                   ingest_result *out);

/* The cluster peer listener's half (grpc.h, peer mode; forward.h is the
 * sending side). ingest_forwarded takes one forwarded
 * ExportTraceServiceRequest from an authenticated member: decoded and
 * bounded as ingest_export does, validated, then handed to
 * pipeline_accept_forwarded for `pipeline` of `tenant` (trusted: the peer
 * authenticated the original client), sent by the member `from` (its
 * advertised address, or NULL). No client authentication, tenant
 * limits or ingest metrics apply (the member that received the request
 * applied them). */
void ingest_forwarded(ingest_ctx *ctx, const ingest_limits *lim, const req_origin *origin, const char *tenant,
                      const char *pipeline, const char *from, const uint8_t *body, size_t len, int gzipped,
                      ingest_result *out);
/* Is this member draining (the peer health check answers FORWARD_DRAINING)? */
int ingest_draining(ingest_ctx *ctx);
/* A peer call's authorization header (not NUL-terminated; NULL if absent)
 * against "Bearer <secret>", in constant time; secret NULL: nothing to
 * check (mutual TLS authenticates members). 0, or -1 with out set to
 * UNAUTHENTICATED, counted in otlp_gateway_cluster_peer_refused_total{reason}. */
int ingest_peer_authorize(const char *secret, const char *authorization, size_t len, ingest_result *out);

/* Count a request refused before it reached ingest_export (bad path, bad
 * content type, body over the limit while still receiving, ...). */
void ingest_count_refused(req_transport t, otlp_signal sig, req_status st, uint64_t start_ns);

/* Response body for a result: Export*ServiceResponse (with partial success)
 * when status is OK, google.rpc.Status otherwise. Appends to out. */
int ingest_response_body(otlp_signal sig, otlp_encoding enc, const ingest_result *res, buf *out);

/* Maps "/v1/traces" style paths and gRPC method paths to a signal; -1 if unknown. */
int ingest_signal_from_http_path(const char *path, size_t len);
int ingest_signal_from_grpc_path(const char *path, size_t len);

#endif
