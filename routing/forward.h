/* forward: sends the spans this instance does not own to the cluster member
 * that does (docs/cluster.md). One background thread schedules the calls;
 * each peer gets one long-lived HTTP/2 connection that its calls share as
 * streams (backends/h2_client.h: h2c prior knowledge, or TLS with ALPN h2
 * and a client certificate when cluster TLS is configured).
 *
 * Per peer, a bounded queue holds encoded ExportTraceServiceRequests tagged
 * with tenant and pipeline. Room is reserved before a client is acknowledged
 * (forward_reserve, then forward_push or forward_unreserve), so a full queue
 * becomes the client's retryable 503 / UNAVAILABLE, never a silent drop.
 * Entries of one (tenant, pipeline) are concatenated into one Export call
 * (concatenated ExportTraceServiceRequest encodings parse as one request) of
 * at most batch_bytes, sent after at most flush_ms.
 *
 * The wire: a unary gRPC call to FORWARD_EXPORT_PATH on the peer listener,
 * with FORWARD_HDR_TENANT, FORWARD_HDR_PIPELINE and FORWARD_HDR_PEER
 * (the sender's id) and, with a shared secret, "authorization: Bearer
 * <secret>". Health is a unary call to FORWARD_HEALTH_PATH with an empty
 * message every health_interval_ms: grpc-status 0 is up, UNAVAILABLE with
 * grpc-message FORWARD_DRAINING is draining, anything else (or no answer
 * within timeout_ms) is a failure; health_failures failures in a row make a
 * peer down. State changes are reported through forward_health_fn.
 *
 * Nothing acknowledged is dropped here: what a peer refuses, or cannot take
 * within give_up_ms of retrying (UNAVAILABLE, RESOURCE_EXHAUSTED, transport
 * errors: backoff from 50 ms doubling), and everything queued for a peer
 * that is removed, is handed back through forward_return_fn, on the forward
 * thread, for the caller to decide locally or route to a new owner.
 * Thread-safe: any thread may reserve, push and manage peers. */
#ifndef GW_FORWARD_H
#define GW_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#define FORWARD_EXPORT_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define FORWARD_HEALTH_PATH "/otlp_gateway.cluster.v1.Peer/Health"
#define FORWARD_HDR_TENANT "x-otlp-gateway-tenant"
#define FORWARD_HDR_PIPELINE "x-otlp-gateway-pipeline"
#define FORWARD_HDR_PEER "x-otlp-gateway-peer"
#define FORWARD_DRAINING "draining"

typedef struct forward forward;

typedef struct forward_settings {
    const char *self_id;         /* this member's advertised address, sent as FORWARD_HDR_PEER */
    const char *secret;          /* NULL: none; else sent as "authorization: Bearer <secret>" */
    const char *tls_cert;        /* NULL: plaintext h2c; else https with this client certificate */
    const char *tls_key;
    const char *tls_ca;          /* CA that signed the peers' certificates (required with tls_cert) */
    size_t queue_bytes;          /* per peer, default 64 MiB */
    size_t batch_bytes;          /* per Export call, default 4 MiB */
    uint32_t flush_ms;           /* longest an entry waits for a batch to fill, default 20 */
    uint32_t timeout_ms;         /* per call, default 5000 */
    uint32_t give_up_ms;         /* retrying one batch before handing it back, default 2000 */
    uint32_t health_interval_ms; /* default 1000 */
    uint32_t health_failures;    /* failures in a row that make a peer down, default 3 */
} forward_settings;

typedef enum { FORWARD_PEER_UNKNOWN = 0, FORWARD_PEER_UP, FORWARD_PEER_DOWN, FORWARD_PEER_DRAINING } forward_peer_state;

/* What could not be delivered: an encoded ExportTraceServiceRequest holding
 * `spans` spans of (tenant, pipeline). `req` is valid during the call only. */
typedef void (*forward_return_fn)(void *data, const char *tenant, const char *pipeline, const uint8_t *req,
                                  size_t len, size_t spans);
/* A peer's health changed (also its first answer). */
typedef void (*forward_health_fn)(void *data, int peer, forward_peer_state state);

/* Settings are copied (strings too); zero fields take the defaults. NULL
 * with err when the TLS files cannot be read. Starts the thread. */
forward *forward_new(const forward_settings *s, forward_return_fn ret, forward_health_fn health, void *data,
                     char *err, size_t errlen);
/* Stops the thread: what is still queued is handed back first. */
void forward_free(forward *f);

/* A member at "host:port" (its peer listener): health checks start at once.
 * Returns a handle >= 0 (stable until removed), -1 on allocation failure. */
int forward_peer_add(forward *f, const char *addr);
/* Stop checking it; its queue is handed back (forward_return_fn). */
void forward_peer_remove(forward *f, int peer);

/* Room for `bytes` in the peer's queue: 0, or -1 when full (or unknown). */
int forward_reserve(forward *f, int peer, size_t bytes);
void forward_unreserve(forward *f, int peer, size_t bytes);
/* Queue what was reserved (copied). */
void forward_push(forward *f, int peer, const char *tenant, const char *pipeline, const uint8_t *req, size_t len,
                  size_t spans);

/* Wait until every queue is empty and nothing is in flight, or until
 * timeout_ms: 0 when drained, -1 on timeout. */
int forward_wait_idle(forward *f, uint64_t timeout_ms);

#endif
