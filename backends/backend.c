#include "backend.h"

#include <string.h>

#include "exporter.h"

static const backend_ops *const registry[] = {&backend_file_ops, &backend_discard_ops};
/* Network backends: the exporter framework with a type's request shape. */
static const exporter_type *const exporter_types[] = {&exporter_otlp_http, &exporter_otlp_grpc, &exporter_elastic_otlp,
                                                      &exporter_elasticsearch, &exporter_aws_xray,
                                                      &exporter_aws_cloudwatch_logs, &exporter_prometheus_remote_write};

backend *backend_create(const config_backend *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (strcmp(registry[i]->type, cfg->type) == 0) {
            backend *b = registry[i]->create(cfg, err, errlen);
            if (b != NULL) {
                b->ops = registry[i];
                b->name = cfg->name;
            }
            return b;
        }
    }
    for (size_t i = 0; i < sizeof(exporter_types) / sizeof(exporter_types[0]); i++)
        if (strcmp(exporter_types[i]->name, cfg->type) == 0)
            return exporter_backend_create(exporter_types[i], cfg, err, errlen);
    config_error(config_get(cfg->node, "type"), "type", err, errlen,
                 "unknown backend type \"%s\" (known: file, discard, otlp_http, otlp_grpc, elastic_otlp, "
                 "elasticsearch, aws_xray, aws_cloudwatch_logs, prometheus_remote_write)", cfg->type);
    return NULL;
}
