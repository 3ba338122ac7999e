#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

typedef struct route {
    unsigned signals;
    backend **backends; /* borrowed from pipeline.backends */
    size_t n_backends;
} route;

struct pipeline {
    backend **backends; /* one per configured backend, owned */
    size_t n_backends;
    route *routes;
    size_t n_routes;
    metric_series *export_failed[OTLP_SIGNAL_COUNT];
};

static backend *find_backend(pipeline *pl, const config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_backends; i++)
        if (strcmp(cfg->backends[i].name, name) == 0)
            return pl->backends[i];
    return NULL;
}

pipeline *pipeline_new(const config *cfg, char *err, size_t errlen)
{
    pipeline *pl = calloc(1, sizeof(*pl));
    if (pl == NULL || (pl->backends = calloc(cfg->n_backends + 1, sizeof(*pl->backends))) == NULL ||
        (pl->routes = calloc(cfg->n_pipelines + 1, sizeof(*pl->routes))) == NULL) {
        snprintf(err, errlen, "out of memory");
        pipeline_free(pl);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_backends; i++) {
        if ((pl->backends[i] = backend_create(&cfg->backends[i], err, errlen)) == NULL) {
            pipeline_free(pl);
            return NULL;
        }
        pl->n_backends++;
    }
    for (size_t i = 0; i < cfg->n_pipelines; i++) {
        const config_pipeline *cp = &cfg->pipelines[i];
        route *r = &pl->routes[pl->n_routes++];
        r->signals = cp->signals;
        if ((r->backends = calloc(cp->n_backends + 1, sizeof(*r->backends))) == NULL) {
            snprintf(err, errlen, "out of memory");
            pipeline_free(pl);
            return NULL;
        }
        /* config.c already checked that every name exists. */
        for (size_t j = 0; j < cp->n_backends; j++)
            r->backends[r->n_backends++] = find_backend(pl, cfg, cp->backends[j]);
    }
    metric_family *f = metrics_family("otlp_gateway_export_failures_total", METRIC_COUNTER,
                                      "Requests a backend refused or could not take, by signal.");
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "signal=\"%s\"", otlp_signal_name((otlp_signal)s));
        pl->export_failed[s] = metrics_series(f, labels);
    }
    return pl;
}

void pipeline_free(pipeline *pl)
{
    if (pl == NULL)
        return;
    for (size_t i = 0; i < pl->n_backends; i++)
        pl->backends[i]->ops->destroy(pl->backends[i]);
    for (size_t i = 0; i < pl->n_routes; i++)
        free(pl->routes[i].backends);
    free(pl->backends);
    free(pl->routes);
    free(pl);
}

pipeline_status pipeline_submit(pipeline *pl, const otlp_request *req, const ingest_origin *origin, char *err,
                                size_t errlen)
{
    (void)origin; /* tenants and routing rules read it (auth and routing issues) */
    pipeline_status worst = PIPELINE_OK;
    unsigned bit = 1u << req->signal;
    for (size_t i = 0; i < pl->n_routes; i++) {
        const route *r = &pl->routes[i];
        if ((r->signals & bit) == 0)
            continue;
        for (size_t j = 0; j < r->n_backends; j++) {
            backend *b = r->backends[j];
            char berr[256] = "";
            backend_status st = b->ops->export(b, req, berr, sizeof(berr));
            if (st == BACKEND_OK)
                continue;
            metrics_add(pl->export_failed[req->signal], 1);
            char q[300];
            log_warn("export failed", "backend=%s signal=%s retryable=%d error=%s", b->name,
                     otlp_signal_name(req->signal), st == BACKEND_RETRY, log_quote(q, sizeof(q), berr));
            if ((pipeline_status)st > worst) {
                worst = (pipeline_status)st;
                snprintf(err, errlen, "backend %s: %s", b->name, berr);
            }
        }
    }
    return worst;
}

int pipeline_ready(pipeline *pl)
{
    for (size_t i = 0; i < pl->n_backends; i++)
        if (!pl->backends[i]->ops->ready(pl->backends[i]))
            return 0;
    return 1;
}

void pipeline_flush(pipeline *pl)
{
    for (size_t i = 0; i < pl->n_backends; i++)
        pl->backends[i]->ops->flush(pl->backends[i]);
}
