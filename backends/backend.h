/* backend: an export destination, created from its `backends:` config entry.
 *
 * The pipeline calls ops->export on the worker thread that ingested the
 * request, before the request is acknowledged, so an implementation must be
 * thread-safe and must not keep pointers into the request or payload (the
 * arena is reused as soon as export returns). BACKEND_RETRY means
 * "temporarily unable, nothing was kept": the client is told to retry.
 *
 * Queued backends (exporter.h) also implement reserve/unreserve: the
 * pipeline reserves room in every target queue first, so a request is
 * admitted to all its backends or to none (then the client gets a retryable
 * "queue full"), never to some. Synchronous backends leave them NULL. */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include <stddef.h>

#include "config_node.h"
#include "otlp.h"

typedef enum { BACKEND_OK = 0, BACKEND_RETRY = 1, BACKEND_FAIL = 2 } backend_status;

typedef struct backend backend;

/* The request as the pipeline hands it on: decoded (req) and, for backends
 * that set needs_payload, encoded once as protobuf for this pipeline. */
typedef struct export_payload {
    const uint8_t *data; /* NULL unless some backend of the pipeline needs it */
    size_t len;
    const char *tenant;  /* "" when none */
} export_payload;

/* One entry of `backends:`, as the gateway's config schema read it. */
typedef struct backend_config {
    const char *name; /* the key under `backends:` */
    const char *type; /* "file" | "discard" | ... */
    const config_node *node; /* the backend's map; its module reads the rest */
} backend_config;

typedef struct backend_ops {
    const char *type;
    /* Read cfg->node (located errors via config.h readers) and build. */
    backend *(*create)(const backend_config *cfg, char *err, size_t errlen);
    /* Read cfg->node exactly as create does, with no effect outside the
     * process: no directories, files, sockets, threads or queues
     * (--check-config). 0, or -1 with a located error. */
    int (*check)(const backend_config *cfg, char *err, size_t errlen);
    backend_status (*export)(backend *b, const otlp_request *req, const export_payload *p, char *err,
                             size_t errlen);
    /* Optional: room for `bytes` of payload; 0, -1 (full) or -2 (more
     * than the queue can ever hold). */
    int (*reserve)(backend *b, const char *tenant, size_t bytes);
    void (*unreserve)(backend *b, const char *tenant, size_t bytes);
    int (*ready)(backend *b);   /* 1 when able to take data */
    /* Optional (NULL: always 1): 0 while the destination is failing (its
     * last attempt got no answer, a 401/403/408/429 or a 5xx), 1 otherwise.
     * Not readiness: a failing backend still takes data into its queue. */
    int (*healthy)(backend *b);
    /* Optional (NULL: no hint): seconds until the destination is expected
     * to take data again (the wait before the exporter's next retry); 0 when
     * it has no reason to think it is not taking data. The pipeline turns it
     * into a client's Retry-After when this backend's queue is full. */
    uint32_t (*retry_after)(backend *b);
    void (*flush)(backend *b);  /* make everything exported so far durable */
    void (*destroy)(backend *b);
} backend_ops;

/* Every backend struct starts with this header. */
struct backend {
    const backend_ops *ops;
    const char *name;  /* owned by the config */
    int needs_payload; /* export wants p->data (set by create) */
    int payload_only;  /* export reads only p, req->signal and req->items:
                        * req->msg may be NULL (set by create) */
    unsigned signals;  /* signals it can take, bits (1u << otlp_signal); 0: all.
                        * A pipeline routing others to it is a config error. */
};

/* Create by cfg->type; error names the location when the type is unknown. */
backend *backend_create(const backend_config *cfg, char *err, size_t errlen);
/* What backend_create would say of cfg, without building anything (see
 * backend_ops.check); on 0, *signals is what the backend would take. */
int backend_check(const backend_config *cfg, unsigned *signals, char *err, size_t errlen);

extern const backend_ops backend_file_ops;
extern const backend_ops backend_discard_ops;

#endif
