/* lg_payload: OTLP trace requests for bench/loadgen, written straight to
 * protobuf (no intermediate structs), each with fresh ids.
 *
 * A generator keeps a pool of open traces. Every span of a request is the
 * next span of a trace drawn at random from the pool, so one trace's spans
 * spread over several requests (and over connections, which take requests
 * in turn); a trace's children come first, its root (no parent, kind
 * SERVER) last, and the slot then starts a new trace with a new trace id.
 * Every span id is new. A span is an error (status ERROR, HTTP 503) with
 * probability error_rate. One generator per thread: not thread-safe. */
#ifndef LG_PAYLOAD_H
#define LG_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct lg_shape {
    unsigned spans_per_request; /* >= 1 */
    unsigned spans_per_trace;   /* >= 1; 1 makes every span a root */
    unsigned open_traces;       /* pool size, >= 1 */
    unsigned attrs;             /* span attributes: the first 10 are HTTP/app ones, then app.extra.N */
    unsigned attr_bytes;        /* length of each app.extra.N string value */
    double error_rate;          /* 0..1 */
} lg_shape;

typedef struct lg_open_trace {
    uint8_t trace_id[16];
    uint8_t root_id[8];
    unsigned left; /* spans still to emit; the root is the last */
    int error;     /* a child failed: the root reports it too */
} lg_open_trace;

typedef struct lg_payload {
    lg_shape shape;
    uint64_t rng;
    lg_open_trace *pool;
    char *extra; /* attr_bytes of filler for app.extra.N */
    uint64_t traces_done, spans, roots, errors;
} lg_payload;

/* 0, or -1 (bad shape or out of memory). seed picks the id sequence. */
int lg_payload_init(lg_payload *g, const lg_shape *shape, uint64_t seed);
void lg_payload_free(lg_payload *g);

/* Replaces out's contents with one ExportTraceServiceRequest of
 * shape.spans_per_request spans, gRPC-framed (5-byte prefix) when grpc is
 * set. Returns 0, or -1 when out of memory. */
int lg_payload_request(lg_payload *g, buf *out, int grpc);

#endif
