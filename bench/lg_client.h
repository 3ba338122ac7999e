/* lg_client: the load of bench/loadgen. HTTP/2 (nghttp2) client
 * connections, cleartext (prior knowledge) or TLS (ALPN h2), carrying OTLP
 * trace exports over gRPC or OTLP/HTTP protobuf.
 *
 * lg_run opens every connection first (a failure there is an error: nothing
 * was measured), then runs one epoll loop per thread over its share of the
 * connections. Closed loop: every connection keeps `streams` requests in
 * flight. Open loop: request k is due at start + k/rate and its latency is
 * counted from that intended time, so a stalled server is charged for the
 * requests it delayed (no coordinated omission). Every response is checked:
 * HTTP status 200, for gRPC a grpc-status of 0 (headers or trailers), and
 * the Export response's partial_success. A lost connection fails its
 * streams and is reopened. */
#ifndef LG_CLIENT_H
#define LG_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "lg_hist.h"
#include "lg_payload.h"

#define LG_MAX_HEADERS 16

typedef enum { LG_GRPC, LG_HTTP } lg_proto;

typedef struct lg_config {
    lg_proto proto;
    int tls;
    const char *host, *port, *path; /* path: the service path for the proto */
    const char *authority;           /* host:port */
    const char *cacert;              /* TLS: PEM CA file; NULL: system CAs */
    int insecure;                    /* TLS: no certificate verification */
    const char *hdr_name[LG_MAX_HEADERS], *hdr_value[LG_MAX_HEADERS];
    unsigned headers;
    unsigned conns, streams, threads;
    uint64_t requests; /* stop after this many (0: by duration only) */
    double duration;   /* seconds; 0: by requests only */
    double rate;       /* requests/s in all; 0: closed loop */
    double timeout;    /* seconds per request */
    lg_shape shape;
    uint64_t seed;
} lg_config;

/* Why a request failed; HTTP and gRPC codes are counted in arrays. */
enum { LG_F_RESET, LG_F_TIMEOUT, LG_F_CONN_LOST, LG_F_NO_GRPC_STATUS, LG_F_BAD_RESPONSE, LG_F_PARTIAL, LG_F_KINDS };
extern const char *const lg_fail_names[LG_F_KINDS];

typedef struct lg_result {
    uint64_t sent, ok, failed;
    uint64_t spans_sent, spans_acked, bytes_sent;
    uint64_t http[600]; /* by status, for a status other than 200 */
    uint64_t grpc[17];  /* by grpc-status other than 0 (16 and above in [16]) */
    uint64_t fail[LG_F_KINDS];
    uint64_t reconnects, dead_conns; /* lost connections reopened / that could not be */
    uint64_t start_ns, end_ns; /* first send, last completion (CLOCK_MONOTONIC) */
    lg_hist latency;           /* successful requests only, ns */
} lg_result;

/* Runs the load. 0 when it ran (failed requests are in out), -1 with a
 * message in err when it could not (bad config, connect or TLS failure). */
int lg_run(const lg_config *cfg, lg_result *out, char *err, size_t errlen);

/* Spans acknowledged by an ExportTraceServiceResponse body (bare protobuf):
 * spans - partial_success.rejected_spans, or -1 if the body does not parse
 * or rejects more than spans. */
int64_t lg_acked_spans(const uint8_t *p, size_t n, uint64_t spans);

#endif
