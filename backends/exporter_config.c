/* exporter_config: reading the exporter's common keys (exporter_config.h). */
#include "exporter_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Entries per batch are bounded as well as items, so the exporter's peek
 * array stays small even with a huge batch.max_items. */
#define EXPORTER_CONFIG_MAX_ENTRIES 4096

static const char *const exporter_common_keys[] = {"type", "endpoint", "headers", "signal_headers", "tenants",
                                                   "compression", "timeout", "tls", "batch", "retry", "queue", NULL};

/* A nested mapping under key; *out NULL when absent or null. allowed NULL: any key. */
static int exporter_section(const config_node *map, const char *key, const char *const *allowed,
                            const config_node **out, char *err, size_t errlen)
{
    const config_node *v = config_get(map, key);
    *out = NULL;
    if (v == NULL || (!config_is_map(v) && !config_is_seq(v) && config_scalar(v) == NULL))
        return 0;
    if (!config_is_map(v))
        return config_error(map, key, err, errlen, "expected a mapping");
    *out = v;
    return allowed != NULL ? config_check_keys(v, allowed, err, errlen) : 0;
}

/* One of `names` (NULL-terminated); *out is its index. Messages never quote
 * the value: it may have come from a secret. */
static int exporter_number(const config_node *map, const char *key, double def, double min, double max, double *out,
                           char *err, size_t errlen)
{
    const char *s;
    if (config_str(map, key, NULL, &s, err, errlen) != 0)
        return -1;
    *out = def;
    if (s == NULL)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(d >= min && d <= max))
        return config_error(map, key, err, errlen, "expected a number from %g to %g", min, max);
    *out = d;
    return 0;
}

static void exporter_headers_free(exporter_headers *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->lines[i]);
    free(h->lines);
    h->lines = NULL;
    h->n = 0;
}

/* Headers the exporter or the type set itself; a second copy would confuse
 * the receiver. */
static int exporter_header_reserved(const char *name)
{
    static const char *const reserved[] = {"content-type", "content-length", "content-encoding", "te",
                                           "grpc-encoding", "expect", NULL};
    for (size_t i = 0; reserved[i] != NULL; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return 1;
    return 0;
}

static int exporter_header_name_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') &&
            strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return 0;
    return 1;
}

/* A mapping of header name to value under key (absent: none). */
static int exporter_read_headers(const config_node *map, const char *key, exporter_headers *out, char *err,
                                 size_t errlen)
{
    const config_node *m;
    if (exporter_section(map, key, NULL, &m, err, errlen) != 0)
        return -1;
    if (m == NULL)
        return 0;
    size_t n = config_map_len(m);
    if ((out->lines = calloc(n + 1, sizeof(*out->lines))) == NULL)
        return config_error(m, NULL, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name = config_map_key(m, i);
        const config_node *vn = config_map_value(m, i);
        const char *value = config_scalar(vn);
        if (!exporter_header_name_ok(name))
            return config_error(vn, NULL, err, errlen, "invalid header name");
        if (exporter_header_reserved(name))
            return config_error(vn, NULL, err, errlen, "header is set by the exporter and cannot be configured");
        if (value == NULL || value[0] == '\0')
            return config_error(vn, NULL, err, errlen, "expected a non-empty string");
        if (strpbrk(value, "\r\n") != NULL)
            return config_error(vn, NULL, err, errlen, "header value contains a line break");
        size_t len = strlen(name) + strlen(value) + 3;
        if ((out->lines[out->n] = malloc(len)) == NULL)
            return config_error(vn, NULL, err, errlen, "out of memory");
        snprintf(out->lines[out->n++], len, "%s: %s", name, value);
    }
    return 0;
}

static int exporter_read_tenants(exporter_settings *e, const config_node *map, char *err, size_t errlen)
{
    static const char *const keys[] = {"headers", NULL};
    const config_node *m;
    if (exporter_section(map, "tenants", NULL, &m, err, errlen) != 0)
        return -1;
    size_t n = config_map_len(m);
    if (n == 0)
        return 0;
    if ((e->tenants = calloc(n, sizeof(*e->tenants))) == NULL)
        return config_error(m, NULL, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const config_node *t = config_map_value(m, i);
        exporter_tenant *et = &e->tenants[e->n_tenants++];
        et->id = config_map_key(m, i);
        if (!config_is_map(t))
            return config_error(t, NULL, err, errlen, "expected a mapping with headers");
        if (config_check_keys(t, keys, err, errlen) != 0 ||
            exporter_read_headers(t, "headers", &et->headers, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int exporter_read_signal_headers(exporter_settings *e, const config_node *map, char *err, size_t errlen)
{
    static const char *const keys[] = {"traces", "metrics", "logs", NULL};
    const config_node *m;
    if (exporter_section(map, "signal_headers", keys, &m, err, errlen) != 0)
        return -1;
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++)
        if (exporter_read_headers(m, otlp_signal_name((otlp_signal)s), &e->per_signal[s], err, errlen) != 0)
            return -1;
    return 0;
}

static int exporter_read_tls(exporter_settings *e, const config_node *map, char *err, size_t errlen)
{
    static const char *const keys[] = {"ca_file", "insecure_skip_verify", "client_cert", "client_key", NULL};
    static const char *const files[] = {"ca_file", "client_cert", "client_key"};
    const config_node *m;
    if (exporter_section(map, "tls", keys, &m, err, errlen) != 0 ||
        config_str(m, "ca_file", NULL, &e->ca_file, err, errlen) != 0 ||
        config_str(m, "client_cert", NULL, &e->client_cert, err, errlen) != 0 ||
        config_str(m, "client_key", NULL, &e->client_key, err, errlen) != 0 ||
        config_bool(m, "insecure_skip_verify", 0, &e->insecure_skip_verify, err, errlen) != 0)
        return -1;
    if ((e->client_cert == NULL) != (e->client_key == NULL))
        return config_error(m, e->client_cert == NULL ? "client_cert" : "client_key", err, errlen,
                            "client_cert and client_key go together");
    /* Checked now so a typo stops the start instead of failing every export. */
    for (size_t i = 0; i < 3; i++) {
        const char *path;
        config_str(m, files[i], NULL, &path, err, errlen);
        if (path != NULL && access(path, R_OK) != 0)
            return config_error(m, files[i], err, errlen, "cannot read file: %s", strerror(errno));
    }
    return 0;
}

static int exporter_read_batch_retry(exporter_settings *e, const exporter_type *type, const config_node *map,
                                     char *err, size_t errlen)
{
    /* A backend with per-request limits (X-Ray: 10,000 spans, 5 MB) gets
     * them as defaults and ceilings; oversized requests are split. */
    uint64_t max_items = type->max_batch_items ? type->max_batch_items : 1000000;
    size_t def_bytes = (size_t)4 << 20;
    if (type->max_batch_bytes && type->max_batch_bytes < def_bytes)
        def_bytes = type->max_batch_bytes;
    static const char *const batch_keys[] = {"max_items", "max_bytes", "timeout", NULL};
    static const char *const retry_keys[] = {"enabled", "initial_interval", "max_interval", "max_elapsed",
                                             "multiplier", "jitter", NULL};
    const config_node *b, *r;
    if (exporter_section(map, "batch", batch_keys, &b, err, errlen) != 0 ||
        config_uint(b, "max_items", max_items < 8192 ? max_items : 8192, 1, max_items, &e->batch_items, err,
                    errlen) != 0 ||
        config_size(b, "max_bytes", def_bytes, &e->batch_bytes, err, errlen) != 0 ||
        config_duration_ms(b, "timeout", 200, &e->batch_timeout_ms, err, errlen) != 0 ||
        exporter_section(map, "retry", retry_keys, &r, err, errlen) != 0 ||
        config_bool(r, "enabled", 1, &e->retry_enabled, err, errlen) != 0 ||
        config_duration_ms(r, "initial_interval", 5000, &e->retry_initial_ms, err, errlen) != 0 ||
        config_duration_ms(r, "max_interval", 30000, &e->retry_max_ms, err, errlen) != 0 ||
        config_duration_ms(r, "max_elapsed", 300000, &e->retry_max_elapsed_ms, err, errlen) != 0 ||
        exporter_number(r, "multiplier", 1.5, 1.0, 100.0, &e->retry_multiplier, err, errlen) != 0 ||
        exporter_number(r, "jitter", 0.2, 0.0, 1.0, &e->retry_jitter, err, errlen) != 0)
        return -1;
    if (e->batch_bytes == 0)
        return config_error(b, "max_bytes", err, errlen, "must be at least 1 byte");
    if (type->max_batch_bytes && e->batch_bytes > type->max_batch_bytes)
        return config_error(b, "max_bytes", err, errlen, "at most %zu for %s (the service's request limit)",
                            type->max_batch_bytes, type->name);
    e->max_entries =
        e->batch_items < EXPORTER_CONFIG_MAX_ENTRIES ? (size_t)e->batch_items : EXPORTER_CONFIG_MAX_ENTRIES;
    return 0;
}

/* queue.consumers' ceiling: each is a thread (and, over HTTP, a connection). */
#define EXPORTER_CONFIG_MAX_CONSUMERS 64

static int exporter_read_queue(exporter_settings *e, const config_node *map, char *err, size_t errlen)
{
    static const char *const keys[] = {"max_bytes",     "dir",          "fsync",     "fsync_interval",
                                       "segment_bytes", "tenant_share", "consumers", NULL};
    queue_config *qc = &e->queue;
    uint64_t consumers;
    static const char *const fsync_names[] = {"never", "interval", "always", NULL};
    const config_node *m;
    int fsync_mode;
    uint64_t interval;
    if (exporter_section(map, "queue", keys, &m, err, errlen) != 0 ||
        config_size(m, "max_bytes", (size_t)64 << 20, &qc->max_bytes, err, errlen) != 0 ||
        config_str(m, "dir", NULL, &qc->dir, err, errlen) != 0 ||
        config_choice(m, "fsync", fsync_names, 1 /* interval */, &fsync_mode, err, errlen) != 0 ||
        config_duration_ms(m, "fsync_interval", 1000, &interval, err, errlen) != 0 ||
        config_size(m, "segment_bytes", (size_t)64 << 20, &qc->segment_bytes, err, errlen) != 0 ||
        exporter_number(m, "tenant_share", 1.0, 0.01, 1.0, &qc->tenant_share, err, errlen) != 0 ||
        config_uint(m, "consumers", 4, 1, EXPORTER_CONFIG_MAX_CONSUMERS, &consumers, err, errlen) != 0)
        return -1;
    e->consumers = (size_t)consumers;
    if (interval > UINT32_MAX)
        return config_error(m, "fsync_interval", err, errlen, "too long");
    if (qc->segment_bytes < 4096)
        return config_error(m, "segment_bytes", err, errlen, "must be at least 4KiB");
    static const queue_fsync fsync_modes[] = {QUEUE_FSYNC_NEVER, QUEUE_FSYNC_INTERVAL, QUEUE_FSYNC_ALWAYS};
    qc->fsync = fsync_modes[fsync_mode];
    qc->fsync_interval_ms = (uint32_t)interval;
        return 0;
}

int exporter_settings_read(exporter_settings *e, const exporter_type *type, const backend_config *cfg, char *err,
                           size_t errlen)
{
    static const char *const compressions[] = {"none", "gzip", "zstd", NULL};
    const char *allowed[40];
    size_t n = 0;
    for (size_t i = 0; exporter_common_keys[i] != NULL; i++)
        allowed[n++] = exporter_common_keys[i];
    for (size_t i = 0; type->keys != NULL && type->keys[i] != NULL && n + 1 < 40; i++)
        allowed[n++] = type->keys[i];
    allowed[n] = NULL;

    const config_node *node = cfg->node;
    const char *endpoint;
    int compression;
    if (config_check_keys(node, allowed, err, errlen) != 0 ||
        (type->endpoint_optional ? config_str(node, "endpoint", NULL, &endpoint, err, errlen)
                                 : config_str_required(node, "endpoint", &endpoint, err, errlen)) != 0)
        return -1;
    if (endpoint != NULL && strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
        return config_error(node, "endpoint", err, errlen, "must start with http:// or https://");
    if (config_choice(node, "compression", compressions, EXPORTER_COMPRESS_GZIP, &compression, err, errlen) != 0 ||
        config_duration_ms(node, "timeout", 10000, &e->timeout_ms, err, errlen) != 0 ||
        exporter_read_headers(node, "headers", &e->common, err, errlen) != 0 ||
        exporter_read_signal_headers(e, node, err, errlen) != 0 || exporter_read_tenants(e, node, err, errlen) != 0 ||
        exporter_read_tls(e, node, err, errlen) != 0 || exporter_read_batch_retry(e, type, node, err, errlen) != 0 ||
        exporter_read_queue(e, node, err, errlen) != 0)
        return -1;
    if (type->gzip_only && compression == EXPORTER_COMPRESS_ZSTD)
        return config_error(node, "compression", err, errlen, "%s supports none or gzip", type->name);
    if (e->timeout_ms == 0 || e->timeout_ms > INT32_MAX)
        return config_error(node, "timeout", err, errlen, "must be from 1ms to 24d");
    e->compression = (exporter_compression)compression;
    return 0;
}

void exporter_settings_free(exporter_settings *s)
{
    exporter_headers_free(&s->common);
    for (int i = 0; i < OTLP_SIGNAL_COUNT; i++)
        exporter_headers_free(&s->per_signal[i]);
    for (size_t i = 0; i < s->n_tenants; i++)
        exporter_headers_free(&s->tenants[i].headers);
    free(s->tenants);
    s->tenants = NULL;
    s->n_tenants = 0;
}

const exporter_headers *exporter_settings_tenant(const exporter_settings *s, const char *tenant)
{
    static const exporter_headers none = {NULL, 0};
    for (size_t i = 0; i < s->n_tenants; i++)
        if (strcmp(s->tenants[i].id, tenant) == 0)
            return &s->tenants[i].headers;
    return &none;
}

int exporter_url(char *out, size_t cap, const char *endpoint, const char *path)
{
    size_t elen = strlen(endpoint);
    while (elen > 0 && endpoint[elen - 1] == '/')
        elen--;
    int n = snprintf(out, cap, "%.*s%s", (int)elen, endpoint, path);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}
