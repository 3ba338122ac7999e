/* exporter_config: the configuration keys every exporter backend shares
 * (docs/configuration.md, "Exporter backends"), read once into plain
 * settings. Internal to the exporter (exporter.c, exporter_take.c); kept apart so the
 * sending machinery reads without the key-by-key validation around it.
 *
 * Header values may be secrets: they are kept as "name: value" lines for
 * libcurl and never appear in errors or logs. Strings not in `lines` are
 * owned by the config. */
#ifndef GW_EXPORTER_CONFIG_H
#define GW_EXPORTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "exporter.h"

typedef enum { EXPORTER_COMPRESS_NONE, EXPORTER_COMPRESS_GZIP, EXPORTER_COMPRESS_ZSTD } exporter_compression;

typedef struct exporter_headers {
    char **lines; /* "name: value", owned */
    size_t n;
} exporter_headers;

typedef struct exporter_tenant {
    const char *id;
    exporter_headers headers;
} exporter_tenant;

typedef struct exporter_settings {
    exporter_compression compression;
    uint64_t timeout_ms;
    const char *ca_file, *client_cert, *client_key; /* NULL: not set */
    int insecure_skip_verify;
    uint64_t batch_items;
    size_t batch_bytes;
    uint64_t batch_timeout_ms;
    size_t max_entries; /* entries per batch: batch_items, capped */
    int retry_enabled;
    uint64_t retry_initial_ms, retry_max_ms, retry_max_elapsed_ms;
    double retry_multiplier, retry_jitter;
    queue_config queue;
    size_t consumers; /* queue.consumers: requests in flight at once */
    exporter_headers common, per_signal[OTLP_SIGNAL_COUNT];
    exporter_tenant *tenants;
    size_t n_tenants;
} exporter_settings;

/* Checks cfg->node against the common keys plus type->keys and reads the
 * common ones. 0, or -1 with a located error; call exporter_settings_free
 * either way. `s` must start zeroed. */
int exporter_settings_read(exporter_settings *s, const exporter_type *type, const backend_config *cfg, char *err,
                           size_t errlen);
void exporter_settings_free(exporter_settings *s);

/* The extra headers of a tenant; none (n = 0) for a tenant not configured. */
const exporter_headers *exporter_settings_tenant(const exporter_settings *s, const char *tenant);

#endif
