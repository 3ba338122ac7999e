/* backend: an export destination, created from its `backends:` config entry.
 *
 * The pipeline calls ops->export on the worker thread that ingested the
 * request, before the request is acknowledged, so an implementation must be
 * thread-safe and must not keep pointers into the request (its arena is
 * reused as soon as export returns). BACKEND_RETRY means "temporarily unable,
 * nothing was kept": the client is told to retry. */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include <stddef.h>

#include "config.h"
#include "otlp.h"

typedef enum { BACKEND_OK = 0, BACKEND_RETRY = 1, BACKEND_FAIL = 2 } backend_status;

typedef struct backend backend;

typedef struct backend_ops {
    const char *type;
    /* Read cfg->node (located errors via config.h readers) and build. */
    backend *(*create)(const config_backend *cfg, char *err, size_t errlen);
    backend_status (*export)(backend *b, const otlp_request *req, char *err, size_t errlen);
    int (*ready)(backend *b);   /* 1 when able to take data */
    void (*flush)(backend *b);  /* make everything exported so far durable */
    void (*destroy)(backend *b);
} backend_ops;

/* Every backend struct starts with this header. */
struct backend {
    const backend_ops *ops;
    const char *name; /* owned by the config */
};

/* Create by cfg->type; error names the location when the type is unknown. */
backend *backend_create(const config_backend *cfg, char *err, size_t errlen);

extern const backend_ops backend_file_ops;
extern const backend_ops backend_discard_ops;

#endif
