#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "exporter.h"

static const backend_ops *const registry[] = {&backend_file_ops, &backend_discard_ops};
/* Network backends: the exporter framework with a type's request shape. */
static const exporter_type *const exporter_types[] = {&exporter_otlp_http, &exporter_otlp_grpc, &exporter_elastic_otlp,
                                                      &exporter_elasticsearch, &exporter_aws_xray,
                                                      &exporter_aws_cloudwatch_logs, &exporter_prometheus_remote_write};

#define BACKEND_N_REGISTRY (sizeof(registry) / sizeof(registry[0]))
#define BACKEND_N_EXPORTER (sizeof(exporter_types) / sizeof(exporter_types[0]))

/* Every type name, ", "-separated, from the two tables above: the unknown-type
 * error lists them, and a list written by hand would miss the next type. */
static void backend_known_types(char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < BACKEND_N_REGISTRY + BACKEND_N_EXPORTER && n < cap; i++) {
        const char *name = i < BACKEND_N_REGISTRY ? registry[i]->type : exporter_types[i - BACKEND_N_REGISTRY]->name;
        int w = snprintf(out + n, cap - n, "%s%s", i > 0 ? ", " : "", name);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* The type named by cfg->type: a registry entry or an exporter type; -1
 * with a located error when there is none. */
static int backend_find(const backend_config *cfg, const backend_ops **ops, const exporter_type **et, char *err,
                        size_t errlen)
{
    *ops = NULL;
    *et = NULL;
    for (size_t i = 0; i < BACKEND_N_REGISTRY; i++)
        if (strcmp(registry[i]->type, cfg->type) == 0)
            return *ops = registry[i], 0;
    for (size_t i = 0; i < BACKEND_N_EXPORTER; i++)
        if (strcmp(exporter_types[i]->name, cfg->type) == 0)
            return *et = exporter_types[i], 0;
    char known[512];
    backend_known_types(known, sizeof(known));
    return config_error(config_get(cfg->node, "type"), "type", err, errlen, "unknown backend type \"%s\" (known: %s)",
                        cfg->type, known);
}

backend *backend_create(const backend_config *cfg, char *err, size_t errlen)
{
    const backend_ops *ops;
    const exporter_type *et;
    if (backend_find(cfg, &ops, &et, err, errlen) != 0)
        return NULL;
    if (et != NULL)
        return exporter_backend_create(et, cfg, err, errlen);
    backend *b = ops->create(cfg, err, errlen);
    if (b != NULL) {
        b->ops = ops;
        b->name = cfg->name;
    }
    return b;
}

int backend_check(const backend_config *cfg, unsigned *signals, char *err, size_t errlen)
{
    const backend_ops *ops;
    const exporter_type *et;
    if (backend_find(cfg, &ops, &et, err, errlen) != 0)
        return -1;
    *signals = et != NULL ? et->signals : 0;
    return et != NULL ? exporter_backend_check(et, cfg, err, errlen) : ops->check(cfg, err, errlen);
}
