#include "backend.h"

#include <string.h>

static const backend_ops *const registry[] = {&backend_file_ops, &backend_discard_ops};

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
    config_error(config_get(cfg->node, "type"), "type", err, errlen, "unknown backend type \"%s\" (known: file, discard)",
                 cfg->type);
    return NULL;
}
