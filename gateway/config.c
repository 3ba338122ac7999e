/* config: the gateway's own schema over the node tree (config_node.h): the
 * top level, listeners, and the lists of backends and pipelines that the
 * floors below take as backend_config / pipeline_config. See config.h.
 *
 * Everything a loaded config owns lives in its document's arena, so
 * config_free is one config_doc_free and no error path can leak a piece of a
 * half-built config. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "arena.h"
#include "otlp.h"

#define CONFIG_MAX_WORKERS 1024
#define CONFIG_MAX_CONNECTIONS 100000000
#define CONFIG_QUOTE 96 /* room for a quoted value in a message */

static const char *quote(char *out, const char *raw) { return log_quote(out, CONFIG_QUOTE, raw); }

static const char *const signal_names[OTLP_SIGNAL_COUNT] = {
    [OTLP_TRACES] = "traces",
    [OTLP_METRICS] = "metrics",
    [OTLP_LOGS] = "logs",
};

/* tls.ciphers: OpenSSL must make at least one TLS 1.2 suite of it. Checked
 * here, with the OpenSSL the gateway runs on, so a bad list is a located
 * config error (also for --check-config), not a failure at start. */
static int check_ciphers(const config_node *t, const char *list, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ERR_clear_error();
        return config_error(t, "ciphers", err, errlen, "cannot create a TLS context to check it");
    }
    int ok = list[0] != '\0' && SSL_CTX_set_cipher_list(ctx, list) == 1;
    ERR_clear_error();
    SSL_CTX_free(ctx);
    if (!ok)
        return config_error(t, "ciphers", err, errlen,
                            "OpenSSL finds no TLS 1.2 cipher suite in \"%s\" (an OpenSSL cipher list, e.g. "
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256)", list);
    return 0;
}

static int read_tls(const config_node *listener, config_tls *tls, char *err, size_t errlen)
{
    static const char *const keys[] = {"cert", "key", "client_ca", "client_auth", "min_version", "ciphers", NULL};
    static const char *const modes[] = {"none", "optional", "required"};
    const config_node *t;
    const char *mode, *min_version;
    if (config_section(listener, "tls", keys, &t, err, errlen) != 0 ||
        config_str(t, "cert", NULL, &tls->cert_file, err, errlen) != 0 ||
        config_str(t, "key", NULL, &tls->key_file, err, errlen) != 0 ||
        config_str(t, "client_ca", NULL, &tls->client_ca_file, err, errlen) != 0 ||
        config_str(t, "client_auth", "none", &mode, err, errlen) != 0 ||
        config_str(t, "min_version", NULL, &min_version, err, errlen) != 0 ||
        config_str(t, "ciphers", NULL, &tls->ciphers, err, errlen) != 0)
        return -1;
    if (min_version == NULL || strcmp(min_version, "1.2") == 0)
        tls->min_version = TLS1_2_VERSION;
    else if (strcmp(min_version, "1.3") == 0)
        tls->min_version = TLS1_3_VERSION;
    else
        return config_error(t, "min_version", err, errlen, "expected 1.2 or 1.3");
    if ((min_version != NULL || tls->ciphers != NULL) && tls->cert_file == NULL)
        return config_error(t, min_version != NULL ? "min_version" : "ciphers", err, errlen, "needs cert and key");
    if (tls->ciphers != NULL && tls->min_version == TLS1_3_VERSION)
        return config_error(t, "ciphers", err, errlen,
                            "applies to TLS 1.2 only, and min_version is 1.3 (TLS 1.3 uses OpenSSL's suites)");
    if (tls->ciphers != NULL && check_ciphers(t, tls->ciphers, err, errlen) != 0)
        return -1;
    size_t m = 0;
    while (m < sizeof(modes) / sizeof(modes[0]) && strcmp(mode, modes[m]) != 0)
        m++;
    if (m == sizeof(modes) / sizeof(modes[0]))
        return config_error(t, "client_auth", err, errlen, "expected none, optional or required");
    tls->client_auth = (config_client_auth)m;
    if (tls->cert_file != NULL && tls->key_file == NULL)
        return config_error(t, "key", err, errlen, "required when cert is set");
    if (tls->key_file != NULL && tls->cert_file == NULL)
        return config_error(t, "cert", err, errlen, "required when key is set");
    if ((tls->client_ca_file != NULL || tls->client_auth != TLS_CLIENT_AUTH_NONE) && tls->cert_file == NULL)
        return config_error(t, tls->client_ca_file ? "client_ca" : "client_auth", err, errlen,
                            "needs cert and key");
    if (tls->client_auth != TLS_CLIENT_AUTH_NONE && tls->client_ca_file == NULL)
        return config_error(t, "client_ca", err, errlen, "required when client_auth is %s", mode);
    /* A CA that is never used is more likely a forgotten client_auth than intent. */
    if (tls->client_auth == TLS_CLIENT_AUTH_NONE && tls->client_ca_file != NULL)
        return config_error(t, "client_auth", err, errlen, "must be optional or required when client_ca is set");
    return 0;
}

static int read_listener(const config_node *n, config_listener *l, char *err, size_t errlen)
{
    /* auth, allow_cidrs, tenant and cidr_tenants are read by auth/auth.c. */
    static const char *const keys[] = {"name", "grpc", "http", "tls", "max_request_bytes",
                                       "max_concurrent_streams", "idle_timeout", "header_timeout",
                                       "proxy_protocol", "max_connections", "auth", "allow_cidrs", "tenant", "cidr_tenants", NULL};
    uint64_t streams;
    l->node = n;
    if (config_check_keys(n, keys, err, errlen) != 0 || config_name(n, &l->name, err, errlen) != 0 ||
        config_addr(n, "grpc", &l->grpc_addr, err, errlen) != 0 ||
        config_addr(n, "http", &l->http_addr, err, errlen) != 0 || read_tls(n, &l->tls, err, errlen) != 0 ||
        config_size(n, "max_request_bytes", (size_t)8 << 20, &l->max_request_bytes, err, errlen) != 0 ||
        config_uint(n, "max_concurrent_streams", 100, 1, 10000, &streams, err, errlen) != 0 ||
        config_duration_u32(n, "idle_timeout", 120000, 1, &l->idle_timeout_ms, err, errlen) != 0 ||
        config_duration_u32(n, "header_timeout", 10000, 1, &l->header_timeout_ms, err, errlen) != 0 ||
        config_bool(n, "proxy_protocol", 0, &l->proxy_protocol, err, errlen) != 0 ||
        config_uint(n, "max_connections", 0, 1, CONFIG_MAX_CONNECTIONS, &l->max_connections, err, errlen) != 0)
        return -1;
    l->max_concurrent_streams = (uint32_t)streams;
    if (l->grpc_addr == NULL && l->http_addr == NULL)
        return config_error(n, NULL, err, errlen, "needs grpc, http or both");
    if (l->max_request_bytes < 1024)
        return config_error(n, "max_request_bytes", err, errlen, "must be at least 1KiB");
    return 0;
}

/* The listeners, and the view of them auth_new takes. */
static int read_listeners(config *c, arena *a, char *err, size_t errlen)
{
    const config_node *seq;
    if (config_seq(c->root, "listeners", 0, &seq, err, errlen) != 0)
        return -1;
    if (config_seq_len(seq) == 0)
        return config_error(seq != NULL ? seq : c->root, seq != NULL ? NULL : "listeners", err, errlen,
                            "at least one listener is required");
    size_t n = config_seq_len(seq);
    auth_listener *views = arena_calloc(a, n, sizeof(*views));
    c->listeners = arena_calloc(a, n, sizeof(*c->listeners));
    if (c->listeners == NULL || views == NULL)
        return config_error(seq, NULL, err, errlen, "out of memory");
    c->n_listeners = n;
    for (size_t i = 0; i < n; i++) {
        config_listener *l = &c->listeners[i];
        if (read_listener(config_seq_at(seq, i), l, err, errlen) != 0)
            return -1;
        views[i] = (auth_listener){.name = l->name, .tls = l->tls.cert_file != NULL, .node = l->node};
    }
    c->auth = (auth_config){.root = c->root, .listeners = views, .n_listeners = n};
    return config_unique_names(a, seq, "listener", err, errlen);
}

typedef struct backends_reader {
    config *c;
    arena *a;
} backends_reader;

/* One entry of `backends:`; allocates the array at the first. */
static int read_backend(void *ctx, const config_node *map, size_t i, const char *name, const config_node *value,
                        char *err, size_t errlen)
{
    backends_reader *r = ctx;
    routing_config *rc = &r->c->routing;
    if (i == 0) {
        size_t n = config_map_len(map);
        if ((rc->backends = arena_calloc(r->a, n ? n : 1, sizeof(*rc->backends))) == NULL)
            return config_error(map, NULL, err, errlen, "out of memory");
    }
    if (map == NULL)
        return 0;
    backend_config *b = &rc->backends[i];
    b->name = name;
    b->node = value;
    rc->n_backends = i + 1;
    return config_str_required(value, "type", &b->type, err, errlen);
}

static int read_signals(const config_node *p, pipeline_config *pl, char *err, size_t errlen)
{
    const config_node *seq;
    if (config_str_list(p, "signals", &seq, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < config_seq_len(seq); i++) {
        const config_node *item = config_seq_at(seq, i);
        unsigned s = 0;
        while (s < OTLP_SIGNAL_COUNT && strcmp(signal_names[s], config_scalar(item)) != 0)
            s++;
        char q[CONFIG_QUOTE];
        if (s == OTLP_SIGNAL_COUNT)
            return config_error(item, NULL, err, errlen, "unknown signal %s (use traces, metrics or logs)",
                                quote(q, config_raw(item)));
        if (pl->signals & (1u << s))
            return config_error(item, NULL, err, errlen, "signal %s is listed twice", signal_names[s]);
        pl->signals |= 1u << s;
    }
    return 0;
}

static int read_pipeline_backends(arena *a, const config_node *p, const config_node *backends,
                                  pipeline_config *pl, char *err, size_t errlen)
{
    const config_node *seq;
    if (config_str_list(p, "backends", &seq, err, errlen) != 0)
        return -1;
    size_t n = config_seq_len(seq);
    if ((pl->backends = arena_calloc(a, n, sizeof(*pl->backends))) == NULL)
        return config_error(seq, NULL, err, errlen, "out of memory");
    pl->n_backends = n;
    char q[CONFIG_QUOTE];
    for (size_t i = 0; i < n; i++) {
        const config_node *item = config_seq_at(seq, i);
        if (config_get(backends, config_scalar(item)) == NULL)
            return config_error(item, NULL, err, errlen,
                                "pipeline \"%s\" names unknown backend %s (define it under backends:)", pl->name,
                                quote(q, config_raw(item)));
        pl->backends[i] = config_scalar(item);
    }
    return config_unique_items(a, seq, "backend", err, errlen);
}

static int read_pipelines(config *c, arena *a, char *err, size_t errlen)
{
    /* match, default, resource and sampling are read by routing/pipeline.c. */
    static const char *const keys[] = {"name",    "signals",  "backends", "match",
                                       "default", "resource", "sampling", NULL};
    const config_node *seq;
    if (config_seq(c->root, "pipelines", 0, &seq, err, errlen) != 0)
        return -1;
    size_t n = config_seq_len(seq);
    pipeline_config *pls = arena_calloc(a, n ? n : 1, sizeof(*pls));
    if (pls == NULL)
        return config_error(seq, NULL, err, errlen, "out of memory");
    const config_node *backends = config_get(c->root, "backends");
    for (size_t i = 0; i < n; i++) {
        const config_node *p = config_seq_at(seq, i);
        pipeline_config *pl = &pls[i];
        pl->node = p;
        if (config_check_keys(p, keys, err, errlen) != 0 || config_name(p, &pl->name, err, errlen) != 0 ||
            read_signals(p, pl, err, errlen) != 0 || read_pipeline_backends(a, p, backends, pl, err, errlen) != 0)
            return -1;
    }
    c->routing.pipelines = pls;
    c->routing.n_pipelines = n;
    return config_unique_names(a, seq, "pipeline", err, errlen);
}

/* 0.0.0.0:<the advertised port>: the peer listener on every interface. */
static const char *default_listen(arena *a, const char *advertise)
{
    const char *port = strrchr(advertise, ':');
    char *out = arena_alloc(a, strlen(port) + 8);
    if (out != NULL)
        sprintf(out, "0.0.0.0%s", port);
    return out;
}

static int read_cluster_members(cluster_config *cc, arena *a, const config_node *n, char *err, size_t errlen)
{
    const config_node *seq;
    if (config_seq(n, "members", 0, &seq, err, errlen) != 0)
        return -1;
    if (seq != NULL) {
        size_t len = config_seq_len(seq);
        const char **m = arena_calloc(a, len ? len : 1, sizeof(*m));
        if (m == NULL)
            return config_error(seq, NULL, err, errlen, "out of memory");
        if (len == 0)
            return config_error(seq, NULL, err, errlen, "must not be empty");
        for (size_t i = 0; i < len; i++) {
            const config_node *item = config_seq_at(seq, i);
            if (config_scalar(item) == NULL || !config_valid_addr(config_scalar(item)))
                return config_error(item, NULL, err, errlen, "invalid address (use host:port, e.g. 10.0.1.5:4319)");
            m[i] = config_scalar(item);
        }
        cc->members = m;
        cc->n_members = len;
        if (config_unique_items(a, seq, "member", err, errlen) != 0)
            return -1;
        /* Every member must compute the same ring: one that others do not
         * list would own traces nobody sends it. */
        size_t i = 0;
        while (i < len && strcmp(m[i], cc->advertise) != 0)
            i++;
        if (i == len)
            return config_error(seq, NULL, err, errlen, "must list this member's advertise address %s too",
                                cc->advertise);
    }
    if (config_str(n, "members_dns", NULL, &cc->members_dns, err, errlen) != 0 ||
        config_addr(n, "dns_server", &cc->dns_server, err, errlen) != 0)
        return -1;
    if ((cc->members != NULL) == (cc->members_dns != NULL))
        return config_error(n, cc->members ? "members_dns" : "members", err, errlen,
                            "give the members as a static list (members) or a DNS name (members_dns), one of them");
    if (cc->members_dns != NULL && !config_valid_addr(cc->members_dns))
        return config_error(n, "members_dns", err, errlen, "expected name:port, e.g. gateway-peers.local:4319");
    return 0;
}

static int read_cluster_peer_auth(cluster_config *cc, const config_node *n, char *err, size_t errlen)
{
    static const char *const tls_keys[] = {"cert", "key", "ca", NULL};
    const config_node *t;
    if (config_str(n, "secret", NULL, &cc->forward.secret, err, errlen) != 0 ||
        config_section(n, "tls", tls_keys, &t, err, errlen) != 0 ||
        config_str(t, "cert", NULL, &cc->forward.tls_cert, err, errlen) != 0 ||
        config_str(t, "key", NULL, &cc->forward.tls_key, err, errlen) != 0 ||
        config_str(t, "ca", NULL, &cc->forward.tls_ca, err, errlen) != 0)
        return -1;
    if (t != NULL && (cc->forward.tls_cert == NULL || cc->forward.tls_key == NULL || cc->forward.tls_ca == NULL))
        return config_error(t, cc->forward.tls_cert == NULL ? "cert" : cc->forward.tls_key == NULL ? "key" : "ca", err,
                            errlen, "mutual TLS between members needs cert, key and ca");
    cc->tls_client_ca = cc->forward.tls_ca;
    /* Nothing but a member may use the peer listener: it trusts the tenant it is told. */
    if (cc->forward.secret == NULL && t == NULL)
        return config_error(n, "secret", err, errlen,
                            "the peer listener must be authenticated: set secret, tls (mutual TLS) or both");
    if (cc->forward.secret != NULL && strlen(cc->forward.secret) < 16)
        return config_error(n, "secret", err, errlen, "must be at least 16 characters");
    return 0;
}

static int read_cluster_tuning(cluster_config *cc, const config_node *n, char *err, size_t errlen)
{
    static const char *const fwd_keys[] = {"queue_bytes", "batch_bytes", "flush", "timeout", "give_up", NULL};
    static const char *const health_keys[] = {"interval", "failures", NULL};
    const config_node *f, *h;
    uint64_t failures;
    forward_settings *fs = &cc->forward;
    if (config_section(n, "forward", fwd_keys, &f, err, errlen) != 0 ||
        config_size(f, "queue_bytes", (size_t)64 << 20, &fs->queue_bytes, err, errlen) != 0 ||
        config_size(f, "batch_bytes", (size_t)4 << 20, &fs->batch_bytes, err, errlen) != 0 ||
        config_duration_u32(f, "flush", 20, 1, &fs->flush_ms, err, errlen) != 0 ||
        config_duration_u32(f, "timeout", 5000, 1, &fs->timeout_ms, err, errlen) != 0 ||
        config_duration_u32(f, "give_up", 2000, 1, &fs->give_up_ms, err, errlen) != 0 ||
        config_section(n, "health", health_keys, &h, err, errlen) != 0 ||
        config_duration_u32(h, "interval", 1000, 10, &fs->health_interval_ms, err, errlen) != 0 ||
        config_uint(h, "failures", 3, 1, 100, &failures, err, errlen) != 0 ||
        config_duration_u32(n, "dns_interval", 5000, 100, &cc->dns_interval_ms, err, errlen) != 0 ||
        config_duration_u32(n, "handoff_timeout", 10000, 0, &cc->handoff_timeout_ms, err, errlen) != 0)
        return -1;
    fs->health_failures = (uint32_t)failures;
    if (fs->batch_bytes > fs->queue_bytes)
        return config_error(f, "batch_bytes", err, errlen, "must not exceed queue_bytes");
    return 0;
}

/* The peer listener: gRPC only, mutual TLS when the cluster has tls, and
 * room for the largest request a client listener takes (a forwarded part
 * is never larger than the request it came from) or a whole forward batch. */
static int add_peer_listener(config *c, arena *a, const config_node *n, const cluster_config *cc, char *err,
                             size_t errlen)
{
    config_listener *ls = arena_calloc(a, c->n_listeners + 1, sizeof(*ls));
    if (ls == NULL)
        return config_error(n, NULL, err, errlen, "out of memory");
    memcpy(ls, c->listeners, c->n_listeners * sizeof(*ls));
    config_listener *p = &ls[c->n_listeners];
    size_t most = cc->forward.batch_bytes;
    for (size_t i = 0; i < c->n_listeners; i++) {
        if (strcmp(c->listeners[i].name, "cluster") == 0)
            return config_error(c->listeners[i].node, "name", err, errlen,
                                "\"cluster\" is the peer listener's name while cluster: is set");
        if (c->listeners[i].max_request_bytes > most)
            most = c->listeners[i].max_request_bytes;
    }
    *p = (config_listener){.name = "cluster", .grpc_addr = cc->listen, .max_request_bytes = 2 * most,
                           .max_concurrent_streams = 1000, .idle_timeout_ms = 600000, .header_timeout_ms = 10000,
                           .node = n, .peer = cc};
    if (cc->forward.tls_cert != NULL)
        p->tls = (config_tls){.cert_file = cc->forward.tls_cert, .key_file = cc->forward.tls_key,
                              .client_ca_file = cc->tls_client_ca, .client_auth = TLS_CLIENT_AUTH_REQUIRED};
    c->listeners = ls;
    c->n_listeners++;
    return 0;
}

/* `cluster:` (docs/cluster.md); c->cluster stays NULL without it. */
static int read_cluster(config *c, arena *a, char *err, size_t errlen)
{
    static const char *const keys[] = {"advertise", "listen",  "members", "members_dns",     "dns_server",
                                       "dns_interval", "secret", "tls",   "forward",         "health",
                                       "handoff_timeout", NULL};
    const config_node *n;
    if (config_section(c->root, "cluster", keys, &n, err, errlen) != 0)
        return -1;
    if (n == NULL)
        return 0;
    cluster_config *cc = arena_calloc(a, 1, sizeof(*cc));
    if (cc == NULL)
        return config_error(n, NULL, err, errlen, "out of memory");
    if (config_addr(n, "advertise", &cc->advertise, err, errlen) != 0 ||
        config_addr(n, "listen", &cc->listen, err, errlen) != 0)
        return -1;
    if (cc->advertise == NULL)
        return config_error(n, "advertise", err, errlen,
                            "required: this member's peer address as the others reach it (host:port)");
    if (cc->listen == NULL && (cc->listen = default_listen(a, cc->advertise)) == NULL)
        return config_error(n, NULL, err, errlen, "out of memory");
    if (read_cluster_members(cc, a, n, err, errlen) != 0 || read_cluster_peer_auth(cc, n, err, errlen) != 0 ||
        read_cluster_tuning(cc, n, err, errlen) != 0)
        return -1;
    c->cluster = cc;
    c->routing.cluster = cc;
    return add_peer_listener(c, a, n, cc, err, errlen);
}

/* One address the gateway listens on, and where the config says so. */
typedef struct listen_at {
    const char *addr;
    const config_node *n;
    const char *key;
} listen_at;

/* No two listeners on one address: the client listeners bind with
 * SO_REUSEPORT (a socket per worker), so a second listener on the same
 * port would bind too, and the two would share its connections at random
 * (gRPC requests answered 404 by the OTLP/HTTP listener, for one). */
static int check_listen_addrs(const config *c, arena *a, char *err, size_t errlen)
{
    listen_at *at = arena_calloc(a, 2 * c->n_listeners + 1, sizeof(*at));
    if (at == NULL)
        return config_error(c->root, NULL, err, errlen, "out of memory");
    size_t n = 0;
    if (c->admin_addr != NULL)
        at[n++] = (listen_at){c->admin_addr, c->root, "admin"};
    for (size_t i = 0; i < c->n_listeners; i++) {
        const config_listener *l = &c->listeners[i];
        const char *grpc_key = "grpc";
        if (l->peer != NULL) /* cluster.listen, or made from cluster.advertise */
            grpc_key = config_get(l->node, "listen") != NULL ? "listen" : "advertise";
        if (l->grpc_addr != NULL)
            at[n++] = (listen_at){l->grpc_addr, l->node, grpc_key};
        if (l->http_addr != NULL)
            at[n++] = (listen_at){l->http_addr, l->node, "http"};
    }
    for (size_t j = 1; j < n; j++)
        for (size_t i = 0; i < j; i++)
            if (config_addrs_overlap(at[i].addr, at[j].addr))
                return config_error(at[j].n, at[j].key, err, errlen,
                                    "%s takes the port of %s (line %u, %s): two listeners on one address "
                                    "would share its connections",
                                    at[j].addr, at[i].addr, config_line(config_get(at[i].n, at[i].key)),
                                    at[i].key);
    return 0;
}

static int read_config(config *c, arena *a, char *err, size_t errlen)
{
    /* auth and tenants are read by auth/auth.c from c->root. */
    static const char *const top_keys[] = {"workers",   "admin",    "admin_proxy_protocol", "log",     "limits",
                                           "shutdown_timeout", "listeners", "backends", "pipelines", "auth",
                                           "tenants",   "sampling", "cluster", NULL};
    static const char *const log_keys[] = {"level", NULL};
    static const char *const limit_keys[] = {"max_decoded_bytes", "max_connections", NULL};
    const config_node *root = c->root, *log, *limits;
    uint64_t workers;
    const char *level;
    if (root == NULL) {
        snprintf(err, errlen, "%s:1:1: (top level): expected a mapping, got an empty document", c->source);
        return -1;
    }
    if (config_check_keys(root, top_keys, err, errlen) != 0 || /* also requires a mapping */
        config_uint(root, "workers", 0, 0, CONFIG_MAX_WORKERS, &workers, err, errlen) != 0 ||
        config_addr(root, "admin", &c->admin_addr, err, errlen) != 0 ||
        config_bool(root, "admin_proxy_protocol", 0, &c->admin_proxy_protocol, err, errlen) != 0 ||
        config_section(root, "log", log_keys, &log, err, errlen) != 0 ||
        config_str(log, "level", "info", &level, err, errlen) != 0 ||
        config_section(root, "limits", limit_keys, &limits, err, errlen) != 0 ||
        config_size(limits, "max_decoded_bytes", (size_t)256 << 20, &c->max_decoded_bytes, err, errlen) != 0 ||
        config_uint(limits, "max_connections", 0, 1, CONFIG_MAX_CONNECTIONS, &c->max_connections, err, errlen) != 0 ||
        config_duration_u32(root, "shutdown_timeout", 10000, 0, &c->shutdown_timeout_ms, err, errlen) != 0)
        return -1;
    c->workers = (unsigned)workers;
    char q[CONFIG_QUOTE];
    if (log_level_parse(level, &c->log_level) != 0)
        return config_error(log, "level", err, errlen, "invalid log level %s (use debug, info, warn or error)",
                            quote(q, config_raw(config_get(log, "level"))));
    if (c->max_decoded_bytes < 1024)
        return config_error(limits, "max_decoded_bytes", err, errlen, "must be at least 1KiB");
    c->routing.root = root;
    c->routing.max_decoded_bytes = c->max_decoded_bytes;
    /* The addresses are checked once every listener is known (the peer
     * listener comes with cluster:), before backends and pipelines. */
    if (read_listeners(c, a, err, errlen) != 0 || read_cluster(c, a, err, errlen) != 0 ||
        check_listen_addrs(c, a, err, errlen) != 0 ||
        config_map_of_maps(root, "backends", "backend", read_backend, &(backends_reader){c, a}, err, errlen) != 0 ||
        read_pipelines(c, a, err, errlen) != 0)
        return -1;
    return 0;
}

/* ---- loading ---- */

static int config_from_doc(config_doc *doc, config **out, char *err, size_t errlen)
{
    *out = NULL;
    if (doc == NULL)
        return -1;
    arena *a = config_doc_arena(doc);
    config *c = arena_calloc(a, 1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "%s: out of memory", config_doc_source(doc));
        config_doc_free(doc);
        return -1;
    }
    c->doc = doc;
    c->source = config_doc_source(doc);
    c->root = config_doc_root(doc);
    if (read_config(c, a, err, errlen) != 0) {
        config_doc_free(doc);
        return -1;
    }
    *out = c;
    return 0;
}

int config_load_string(const char *source_name, const char *yaml, size_t len, config **out, char *err,
                       size_t errlen)
{
    return config_from_doc(config_doc_parse(source_name, yaml, len, err, errlen), out, err, errlen);
}

int config_load_file(const char *path, config **out, char *err, size_t errlen)
{
    return config_from_doc(config_doc_read(path, err, errlen), out, err, errlen);
}

void config_free(config *c)
{
    if (c != NULL)
        config_doc_free(c->doc);
}
