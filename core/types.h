/* types: the vocabulary shared by every floor, and nothing else (no
 * functions, no includes beyond the system's). A request's signal and
 * encoding, the transport it came over, where it came from, and the one
 * status every layer answers with; each listener maps the status to its own
 * wire code (gateway/ingest.h). Keeping these here lets auth and routing
 * speak about a request without depending on the listeners that make one. */
#ifndef GW_TYPES_H
#define GW_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum { OTLP_TRACES = 0, OTLP_METRICS = 1, OTLP_LOGS = 2, OTLP_SIGNAL_COUNT = 3 } otlp_signal;
/* The signals' names (metric labels, logs), in otlp_signal order: an
 * initializer for a `const char *[OTLP_SIGNAL_COUNT]`. */
#define OTLP_SIGNAL_NAMES {"traces", "metrics", "logs"}

typedef enum { OTLP_PROTOBUF = 0, OTLP_JSON = 1 } otlp_encoding;

typedef enum { REQ_GRPC = 0, REQ_HTTP = 1, REQ_TRANSPORT_COUNT = 2 } req_transport;

typedef enum {
    REQ_OK = 0,            /* accepted; maybe partially (result.rejected > 0) */
    REQ_INVALID,           /* 400 / INVALID_ARGUMENT */
    REQ_TOO_LARGE,         /* 413 / RESOURCE_EXHAUSTED */
    REQ_UNSUPPORTED_MEDIA, /* 415 / INVALID_ARGUMENT (gRPC: UNIMPLEMENTED for an unknown grpc-encoding) */
    REQ_NOT_FOUND,         /* 404 / UNIMPLEMENTED */
    REQ_THROTTLED,         /* 429 / RESOURCE_EXHAUSTED, retryable */
    REQ_UNAVAILABLE,       /* 503 / UNAVAILABLE, retryable */
    REQ_UNAUTHENTICATED,   /* 401 / UNAUTHENTICATED */
    REQ_PERMISSION_DENIED, /* 403 / PERMISSION_DENIED */
    REQ_INTERNAL,          /* 500 / INTERNAL */
    REQ_STATUS_COUNT
} req_status;

/* Where a request came from. Everything is borrowed for the duration of one
 * request (the auth layer reads it; whoever keeps a field copies it). */
typedef struct req_origin {
    const char *listener; /* listener name from the config */
    req_transport transport;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int tls;                   /* connection is TLS */
    const char *authorization; /* Authorization header value, not NUL-terminated; NULL if absent */
    size_t authorization_len;
    uint64_t start_ns;         /* clock_now_ns() when the request began; 0 = now */
    const char *tenant;        /* set once authenticated ("" in open mode) */
    const char *client_cert_subject; /* subject CN of the verified TLS client certificate; NULL if none */
} req_origin;

#endif
