/* config: the gateway's configuration schema, read from the located node
 * tree of config_node.h. This reads the top level (workers, admin, log,
 * limits, shutdown_timeout), the listeners, and the lists of backends and
 * pipelines; each floor below reads the rest of its own section from the
 * nodes handed to it (auth: `auth:`, `tenants:` and each listener's auth keys;
 * backends: each backend's map; routing: match, resource and sampling), so
 * every error anywhere names the file, line, column and key. Unknown keys are
 * errors.
 *
 * Everything (strings included) is owned by the config and freed by
 * config_free(); pointers stay valid until then. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "backend.h"
#include "cluster.h"
#include "config_node.h"
#include "log.h"
#include "pipeline.h"

typedef enum { TLS_CLIENT_AUTH_NONE, TLS_CLIENT_AUTH_OPTIONAL, TLS_CLIENT_AUTH_REQUIRED } config_client_auth;

typedef struct config_tls {
    const char *cert_file; /* NULL: no TLS */
    const char *key_file;
    const char *client_ca_file;     /* PEM CA certificates for client certificates; NULL with CLIENT_AUTH_NONE */
    config_client_auth client_auth; /* OPTIONAL: verify a certificate if the client sends one */
    int min_version;                /* TLS1_2_VERSION or TLS1_3_VERSION; 0: TLS 1.2 */
    const char *ciphers;            /* OpenSSL cipher list for TLS 1.2; NULL: TLS_DEFAULT_CIPHERS_12 (tls.h) */
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
    uint64_t max_connections;        /* open connections (grpc + http, all workers); 0: only the global cap */
    const config_node *node;         /* the listener's map; auth.c reads auth keys from it */
    const cluster_config *peer;      /* the cluster's peer listener (made from `cluster:`); NULL for the others */
} config_listener;

typedef struct config {
    const char *source;  /* file path, or "<embedded>" */
    unsigned workers;    /* 0: one per CPU */
    const char *admin_addr; /* NULL: no admin listener */
    int admin_proxy_protocol; /* accept (not require) a PROXY header on admin connections */
    log_level log_level;
    size_t max_decoded_bytes;     /* per-request decode arena cap, default 256 MiB */
    uint64_t max_connections;     /* all listeners but admin; 0: derived from the descriptor limit at start */
    uint32_t shutdown_timeout_ms; /* default 10000 */
    config_listener *listeners; /* with `cluster:`, the peer listener last */
    size_t n_listeners;
    const config_node *root;
    auth_config auth;       /* what auth_new reads: root and a view of each listener */
    routing_config routing; /* what pipeline_new reads: root, backends, pipelines, cluster */
    const cluster_config *cluster; /* `cluster:`; NULL: a single instance */
    config_doc *doc;        /* owns the node tree and everything above */
} config;

/* The embedded default used when no --config is given (YAML text). */
extern const char config_embedded_default[];

/* 0 on success; -1 with "file:line:col: key: message" in err. */
int config_load_file(const char *path, config **out, char *err, size_t errlen);
int config_load_string(const char *source_name, const char *yaml, size_t len, config **out, char *err,
                       size_t errlen);
void config_free(config *c);

#endif
