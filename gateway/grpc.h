/* grpc: the OTLP/gRPC listener. Debian's h2o 2.2.5 cannot send HTTP/2
 * trailers, and gRPC carries grpc-status in trailers, so this listener runs
 * its own nghttp2 server session on each accepted h2o evloop socket (h2c with
 * prior knowledge, or TLS with ALPN "h2"). Each complete unary call to
 *   /opentelemetry.proto.collector.{trace,metrics,logs}.v1.{Trace,Metrics,Logs}Service/Export
 * goes to ingest_export(); the reply is HEADERS, one length-prefixed DATA
 * message, then trailers with grpc-status/grpc-message. A grpc_listener
 * belongs to one worker's event loop. A listener in peer mode (settings.peer)
 * is a cluster member's peer listener instead (see grpc_settings). */
#ifndef GW_GRPC_H
#define GW_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <openssl/ssl.h>

#include "accept.h"
#include "ingest.h"

typedef struct grpc_settings {
    const char *name;                /* listener name (for origin and logs) */
    ingest_limits limits;            /* max_request_bytes is the max gRPC message size */
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t idle_timeout_ms;        /* close a connection with no open stream after this */
    uint32_t header_timeout_ms;      /* a connection/stream must finish its preface or headers/request within this */
    SSL_CTX *ssl_ctx;                /* NULL: h2c prior knowledge; else TLS, ALPN h2 (owned by caller) */
    int proxy_protocol;              /* a PROXY v1/v2 header precedes TLS/HTTP/2 (within header_timeout_ms) */
    /* Cluster peer listener (forward.h): serves only FORWARD_EXPORT_PATH
     * (to ingest_forwarded, with the tenant and pipeline the peer names)
     * and FORWARD_HEALTH_PATH; every call must carry "authorization:
     * Bearer <peer_secret>" when peer_secret is set (copied). With mutual
     * TLS, ssl_ctx verifies the peer's certificate before any call. */
    int peer;
    const char *peer_secret;
    conn_gate *gate; /* connection cap and metrics (shared, outlives the listener); NULL: none */
} grpc_settings;

typedef struct grpc_listener grpc_listener;

/* Start accepting on an already bound, listening, non-blocking fd (the
 * listener takes ownership of the fd). `settings` is copied. */
grpc_listener *grpc_listener_start(h2o_evloop_t *loop, int listen_fd, const grpc_settings *settings,
                                   ingest_ctx *ictx);
/* One turn for each connection whose input was left over its read budget
 * (a connection reads at most GRPC_READ_BUDGET per pass of the loop, so a
 * large request cannot hold up the others' small ones). The worker calls it
 * after every pass of the loop; 1 while some input is still waiting (the
 * next pass must not sleep). */
int grpc_listener_pass(grpc_listener *l);
/* Graceful stop: close the listening socket, send GOAWAY on every session;
 * in-flight calls finish, then connections close. */
void grpc_listener_shutdown(grpc_listener *l);
/* Open client connections (0 once drained after shutdown). */
size_t grpc_listener_connections(const grpc_listener *l);
/* Free after connections reached 0 (or at exit, closing any left). */
void grpc_listener_free(grpc_listener *l);
/* Frees the calling worker thread's recycled connection input buffers:
 * after its event loop is destroyed (as for h2o's own). */
void grpc_thread_release(void);

#endif
