/* config: the YAML configuration, parsed with libyaml into a node tree that
 * keeps each node's file, line and column, then read into `config`.
 *
 * Modules with sections of their own (backends, later auth and sampling) read
 * their node with the typed readers below, so every error anywhere names the
 * file, line, column and key:  "gw.yaml:12:5: listeners[0].max_request_bytes:
 * invalid size \"4XB\" (use e.g. 4MiB)". Unknown keys are errors.
 *
 * Scalars may reference secrets: ${VAR} and ${VAR:-default} (environment) and
 * ${file:/path} (file contents, one trailing newline stripped). Expanded
 * values are never put in error messages or logs: errors quote the raw text.
 *
 * Everything (strings included) is owned by the config and freed by
 * config_free(); pointers stay valid until then. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

typedef struct config_node config_node;

typedef enum { TLS_CLIENT_AUTH_NONE, TLS_CLIENT_AUTH_OPTIONAL, TLS_CLIENT_AUTH_REQUIRED } config_client_auth;

typedef struct config_tls {
    const char *cert_file; /* NULL: no TLS */
    const char *key_file;
    const char *client_ca_file;     /* PEM CA certificates for client certificates; NULL with CLIENT_AUTH_NONE */
    config_client_auth client_auth; /* OPTIONAL: verify a certificate if the client sends one */
} config_tls;

typedef struct config_listener {
    const char *name;
    const char *grpc_addr; /* "host:port", "[v6]:port"; NULL: no gRPC */
    const char *http_addr; /* NULL: no OTLP/HTTP */
    config_tls tls;
    size_t max_request_bytes;        /* default 8 MiB; wire and decompressed */
    uint32_t max_concurrent_streams; /* default 100 */
    uint32_t idle_timeout_ms;        /* default 120000 */
    uint32_t header_timeout_ms;      /* default 10000 */
    int proxy_protocol;              /* expect a PROXY v1/v2 header first (behind an NLB/HAProxy) */
    const config_node *node;         /* the listener's map; auth.c reads auth keys from it */
} config_listener;

typedef struct config_backend {
    const char *name; /* the key under `backends:` */
    const char *type; /* "file" | "discard" | ... */
    const config_node *node; /* the backend's map; its module reads the rest */
} config_backend;

typedef struct config_pipeline {
    const char *name;
    unsigned signals; /* bit (1u << otlp_signal) */
    const char **backends; /* names, each defined under backends: (checked) */
    size_t n_backends;
    const config_node *node;
} config_pipeline;

typedef struct config {
    const char *source;  /* file path, or "<embedded>" */
    unsigned workers;    /* 0: one per CPU */
    const char *admin_addr; /* NULL: no admin listener */
    log_level log_level;
    size_t max_decoded_bytes;     /* per-request decode arena cap, default 256 MiB */
    uint32_t shutdown_timeout_ms; /* default 10000 */
    config_listener *listeners;
    size_t n_listeners;
    config_backend *backends;
    size_t n_backends;
    config_pipeline *pipelines;
    size_t n_pipelines;
    const config_node *root;
    struct config_doc *doc; /* owns the node tree */
} config;

/* The embedded default used when no --config is given (YAML text). */
extern const char config_embedded_default[];

/* 0 on success; -1 with "file:line:col: key: message" in err. */
int config_load_file(const char *path, config **out, char *err, size_t errlen);
int config_load_string(const char *source_name, const char *yaml, size_t len, config **out, char *err,
                       size_t errlen);
void config_free(config *c);

/* ---- node readers, for modules parsing their own sections ----
 * Each returns 0 on success (absent optional keys take the default),
 * -1 with a located error in err. `map` must be a mapping node. */
const config_node *config_get(const config_node *map, const char *key); /* NULL if absent */
int config_is_map(const config_node *n);
int config_is_seq(const config_node *n);
size_t config_seq_len(const config_node *seq);
const config_node *config_seq_at(const config_node *seq, size_t i);
/* Iterate a mapping: key of entry i, value of entry i. */
size_t config_map_len(const config_node *map);
const char *config_map_key(const config_node *map, size_t i);
const config_node *config_map_value(const config_node *map, size_t i);
/* Scalar text after ${...} expansion, NULL if not a scalar. */
const char *config_scalar(const config_node *n);

int config_str(const config_node *map, const char *key, const char *def, const char **out, char *err,
               size_t errlen);
int config_str_required(const config_node *map, const char *key, const char **out, char *err, size_t errlen);
/* Sizes: plain bytes or with B, KB, MB, GB (10^3) or KiB, MiB, GiB (2^10). */
int config_size(const config_node *map, const char *key, size_t def, size_t *out, char *err, size_t errlen);
/* Durations: ms, s, m, h ("500ms", "10s", "1m"); plain numbers are seconds. */
int config_duration_ms(const config_node *map, const char *key, uint64_t def, uint64_t *out, char *err,
                       size_t errlen);
int config_uint(const config_node *map, const char *key, uint64_t def, uint64_t min, uint64_t max,
                uint64_t *out, char *err, size_t errlen);
int config_bool(const config_node *map, const char *key, int def, int *out, char *err, size_t errlen);
/* One of `names` (NULL-terminated): *out its index, def when absent; an
 * unknown value is an error listing the choices. */
int config_choice(const config_node *map, const char *key, const char *const *names, int def, int *out, char *err,
                  size_t errlen);
/* Error if the map has a key not in `allowed` (NULL-terminated). */
int config_check_keys(const config_node *map, const char *const *allowed, char *err, size_t errlen);
/* Format a located error about node n (or its key) into err; returns -1. */
int config_error(const config_node *n, const char *key, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
