/* discard backend: accepts and drops everything. For benchmarks (it measures
 * the ingest path alone) and for pipelines that only count. */
#include <stdlib.h>

#include "backend.h"

static int discard_check(const backend_config *cfg, char *err, size_t errlen)
{
    static const char *const allowed[] = {"type", NULL};
    return config_check_keys(cfg->node, allowed, err, errlen);
}

static backend *discard_create(const backend_config *cfg, char *err, size_t errlen)
{
    if (discard_check(cfg, err, errlen) != 0)
        return NULL;
    backend *b = calloc(1, sizeof(backend));
    if (b != NULL)
        b->payload_only = 1; /* it reads nothing at all */
    return b;
}

static backend_status discard_export(backend *b, const otlp_request *req, const export_payload *p, char *err,
                                     size_t errlen)
{
    (void)b, (void)req, (void)p, (void)err, (void)errlen;
    return BACKEND_OK;
}

static int discard_ready(backend *b)
{
    (void)b;
    return 1;
}

static void discard_flush(backend *b) { (void)b; }

static void discard_destroy(backend *b) { free(b); }

const backend_ops backend_discard_ops = {.type = "discard",
                                        .create = discard_create,
                                        .check = discard_check,
                                        .export = discard_export,
                                        .ready = discard_ready,
                                        .flush = discard_flush,
                                        .destroy = discard_destroy};
