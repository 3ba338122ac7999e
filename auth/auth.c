#include "auth.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "apikey.h"
#include "clock.h"
#include "cidr.h"
#include "log.h"
#include "metrics.h"
#include "oidc.h"

enum { METHOD_NONE, METHOD_API_KEY, METHOD_JWT, METHOD_CLIENT_CERT, METHOD_COUNT };
static const char *const method_names[METHOD_COUNT] = {"none", "api_key", "jwt", "client_cert"};

/* Token bucket in "debt" form: a request is admitted while the balance is not
 * negative and may drive it below zero, so a request larger than one second's
 * allowance still passes once, then waits its debt off. Burst = 1 s. */
typedef struct bucket {
    double rate; /* per second; 0 = unlimited */
    double tokens;
    uint64_t last_ns;
} bucket;

static const char *const signal_names[OTLP_SIGNAL_COUNT] = OTLP_SIGNAL_NAMES;

struct tenant {
    const char *id;
    uint64_t endpoints; /* bit per listener index */
    cidr *sources;
    size_t n_sources;
    size_t max_request_bytes; /* 0: the listener's limit only */
    const char **cert_subjects; /* client certificate subject CNs that mean this tenant */
    size_t n_cert_subjects;
    pthread_mutex_t lock;     /* guards the buckets */
    bucket items[OTLP_SIGNAL_COUNT];
    bucket bytes;
    metric_series *ok[METHOD_COUNT];
    metric_series *throttled;
    metric_series *items_in[OTLP_SIGNAL_COUNT];
    metric_family *refused; /* series made on first use: refusals are the rare case */
};

typedef struct listener_auth {
    const char *name;
    int required;
    cidr *allow;
    size_t n_allow;
    tenant *fixed; /* `tenant:` on an auth-none listener */
    cidr *by_cidr; /* `cidr_tenants:` */
    tenant **by_cidr_tenant;
    size_t n_by_cidr;
} listener_auth;

typedef struct client_tenant {
    const char *client;
    tenant *t;
} client_tenant;

typedef struct provider {
    oidc_provider_config cfg;
    const char **roles; /* NULL-terminated, for cfg.policy.required_roles */
    const char **allowed_clients; /* NULL-terminated, for cfg.policy.allowed_clients; NULL: any client */
    client_tenant *clients;
    size_t n_clients;
} provider;

struct auth {
    tenant *tenants;
    size_t n_tenants;
    listener_auth *listeners;
    size_t n_listeners;
    provider *providers;
    size_t n_providers;
    size_t token_cache_size;
    oidc *oidc;
    const char *keys_file;
    int keys_remote;            /* api_keys names a url or s3 source: keys come through auth_keys_replace */
    pthread_rwlock_t keys_lock; /* readers check keys; a reload or auth_keys_replace swaps the store */
    apikey_store *keys;         /* NULL only while a remote source has not loaded yet */
    metric_series *keys_count;
    struct stat keys_stat;      /* what was loaded, to notice changes */
    metric_family *failures;
};

/* ---------- config reading ---------- */

/* Read a sequence of strings at map[key] into an array (NULL-terminated). */
static int read_str_list(const config_node *map, const char *key, const char ***out, size_t *n, char *err,
                         size_t errlen)
{
    const config_node *seq = config_get(map, key);
    *out = NULL;
    *n = 0;
    if (seq == NULL)
        return 0;
    if (!config_is_seq(seq))
        return config_error(seq, key, err, errlen, "expected a list");
    size_t len = config_seq_len(seq);
    if ((*out = calloc(len + 1, sizeof(char *))) == NULL)
        return config_error(seq, key, err, errlen, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const char *s = config_scalar(config_seq_at(seq, i));
        if (s == NULL || s[0] == '\0')
            return config_error(config_seq_at(seq, i), key, err, errlen, "expected a non-empty string");
        (*out)[(*n)++] = s;
    }
    return 0;
}

static int read_cidrs(const config_node *map, const char *key, cidr **out, size_t *n, char *err, size_t errlen)
{
    const char **list;
    size_t len;
    if (read_str_list(map, key, &list, &len, err, errlen) != 0) {
        free(list);
        return -1;
    }
    *out = calloc(len + 1, sizeof(cidr));
    *n = len;
    for (size_t i = 0; i < len; i++) {
        if (cidr_parse(list[i], &(*out)[i]) != 0) {
            config_error(config_seq_at(config_get(map, key), i), key, err, errlen,
                         "invalid CIDR \"%s\" (e.g. 10.0.0.0/8, 2001:db8::/32; host bits must be zero)", list[i]);
            free(list);
            return -1;
        }
    }
    free(list);
    return 0;
}

static tenant *tenant_find(auth *a, const char *id)
{
    for (size_t i = 0; i < a->n_tenants; i++)
        if (strcmp(a->tenants[i].id, id) == 0)
            return &a->tenants[i];
    return NULL;
}

static int listener_index(const auth_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int read_rate(const config_node *limits, const char *key, double *rate, char *err, size_t errlen)
{
    uint64_t v;
    if (config_uint(limits, key, 0, 0, UINT32_MAX, &v, err, errlen) != 0)
        return -1;
    *rate = (double)v;
    return 0;
}

static int read_tenant(auth *a, const auth_config *cfg, const config_node *n, tenant *t, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", "endpoints", "source_cidrs", "limits", "pipelines",
                                       "client_cert_subjects", NULL};
    static const char *const limit_keys[] = {"max_request_bytes", "spans_per_sec", "metric_points_per_sec",
                                             "log_records_per_sec", "bytes_per_sec", NULL};
    static const char *const item_keys[OTLP_SIGNAL_COUNT] = {"spans_per_sec", "metric_points_per_sec",
                                                             "log_records_per_sec"};
    pthread_mutex_init(&t->lock, NULL);
    if (config_check_keys(n, keys, err, errlen) != 0 || config_str_required(n, "id", &t->id, err, errlen) != 0)
        return -1;
    /* Tenant ids travel in queue records (one length byte) and metric labels. */
    if (strlen(t->id) > 128 || strpbrk(t->id, "\"\\\n") != NULL)
        return config_error(config_get(n, "id"), "id", err, errlen, "at most 128 characters, without quotes, "
                            "backslashes or newlines");
    if (tenant_find(a, t->id) != NULL)
        return config_error(config_get(n, "id"), "id", err, errlen, "duplicate tenant \"%s\"", t->id);
    const char **eps;
    size_t n_eps;
    if (read_str_list(n, "endpoints", &eps, &n_eps, err, errlen) != 0) {
        free(eps);
        return -1;
    }
    for (size_t i = 0; i < n_eps; i++) {
        int li = listener_index(cfg, eps[i]);
        if (li < 0 || li >= 64) {
            config_error(config_seq_at(config_get(n, "endpoints"), i), "endpoints", err, errlen,
                         "no listener named \"%s\"", eps[i]);
            free(eps);
            return -1;
        }
        t->endpoints |= 1ull << li;
    }
    free(eps);
    if (n_eps == 0)
        return config_error(n, "endpoints", err, errlen, "a tenant needs at least one endpoint (listener name)");
    if (read_cidrs(n, "source_cidrs", &t->sources, &t->n_sources, err, errlen) != 0 ||
        read_str_list(n, "client_cert_subjects", &t->cert_subjects, &t->n_cert_subjects, err, errlen) != 0)
        return -1;
    const config_node *lim = config_get(n, "limits");
    if (lim != NULL) {
        uint64_t bps;
        if (!config_is_map(lim))
            return config_error(lim, "limits", err, errlen, "expected a map");
        if (config_check_keys(lim, limit_keys, err, errlen) != 0 ||
            config_size(lim, "max_request_bytes", 0, &t->max_request_bytes, err, errlen) != 0 ||
            config_uint(lim, "bytes_per_sec", 0, 0, UINT64_MAX, &bps, err, errlen) != 0)
            return -1;
        t->bytes.rate = (double)bps;
        for (int s = 0; s < OTLP_SIGNAL_COUNT; s++)
            if (read_rate(lim, item_keys[s], &t->items[s].rate, err, errlen) != 0)
                return -1;
    }
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++)
        t->items[s].tokens = t->items[s].rate;
    t->bytes.tokens = t->bytes.rate;
    return 0;
}

static int read_listener(auth *a, const auth_listener *cl, listener_auth *la, char *err, size_t errlen)
{
    const char *mode;
    la->name = cl->name;
    if (config_str(cl->node, "auth", "none", &mode, err, errlen) != 0)
        return -1;
    if (strcmp(mode, "required") == 0)
        la->required = 1;
    else if (strcmp(mode, "none") != 0)
        return config_error(config_get(cl->node, "auth"), "auth", err, errlen,
                            "expected \"required\" (token needed) or \"none\" (source address rules)");
    if (read_cidrs(cl->node, "allow_cidrs", &la->allow, &la->n_allow, err, errlen) != 0)
        return -1;
    const char *fixed;
    if (config_str(cl->node, "tenant", NULL, &fixed, err, errlen) != 0)
        return -1;
    if (fixed != NULL && (la->fixed = tenant_find(a, fixed)) == NULL)
        return config_error(config_get(cl->node, "tenant"), "tenant", err, errlen, "no tenant \"%s\"", fixed);
    const config_node *m = config_get(cl->node, "cidr_tenants");
    if (m != NULL) {
        if (!config_is_map(m))
            return config_error(m, "cidr_tenants", err, errlen, "expected a map of CIDR: tenant");
        la->n_by_cidr = config_map_len(m);
        la->by_cidr = calloc(la->n_by_cidr + 1, sizeof(cidr));
        la->by_cidr_tenant = calloc(la->n_by_cidr + 1, sizeof(tenant *));
        for (size_t i = 0; i < la->n_by_cidr; i++) {
            const char *c = config_map_key(m, i), *tid = config_scalar(config_map_value(m, i));
            if (cidr_parse(c, &la->by_cidr[i]) != 0)
                return config_error(config_map_value(m, i), "cidr_tenants", err, errlen, "invalid CIDR \"%s\"", c);
            if (tid == NULL || (la->by_cidr_tenant[i] = tenant_find(a, tid)) == NULL)
                return config_error(config_map_value(m, i), "cidr_tenants", err, errlen, "no tenant \"%s\"",
                                    tid ? tid : "");
        }
    }
    if (la->required && (fixed != NULL || la->n_by_cidr > 0))
        return config_error(config_get(cl->node, "auth"), "auth", err, errlen,
                            "tenant/cidr_tenants apply to auth: none listeners; with auth: required the token names the tenant");
    if (!la->required && a->n_tenants > 0 && fixed == NULL && la->n_by_cidr == 0)
        return config_error(cl->node, "auth", err, errlen,
                            "listener \"%s\" has auth: none but neither tenant nor cidr_tenants", cl->name);
    return 0;
}

static int read_provider(auth *a, const config_node *n, provider *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"issuer", "discovery_url", "audience", "algorithms", "tenant_claim",
                                       "client_tenants", "clock_skew", "required_roles", "refresh_interval",
                                       "min_refresh_interval", "retry_interval", "http_timeout", "ca_file",
                                       "allowed_clients", "require_typ", NULL};
    oidc_provider_config *c = &p->cfg;
    uint64_t skew, refresh, minref, retry, timeout;
    if (config_check_keys(n, keys, err, errlen) != 0 || config_str_required(n, "issuer", &c->issuer, err, errlen) ||
        config_str(n, "discovery_url", NULL, &c->discovery_url, err, errlen) ||
        config_str(n, "audience", NULL, &c->policy.audience, err, errlen) ||
        config_str(n, "tenant_claim", NULL, &c->policy.tenant_claim, err, errlen) ||
        config_str(n, "ca_file", NULL, &c->ca_file, err, errlen) ||
        config_duration_ms(n, "clock_skew", 30000, &skew, err, errlen) ||
        config_duration_ms(n, "refresh_interval", 300000, &refresh, err, errlen) ||
        config_duration_ms(n, "min_refresh_interval", 10000, &minref, err, errlen) ||
        config_duration_ms(n, "retry_interval", 5000, &retry, err, errlen) ||
        config_duration_ms(n, "http_timeout", 5000, &timeout, err, errlen))
        return -1;
    c->policy.issuer = c->issuer;
    c->policy.skew_s = (int64_t)(skew / 1000);
    c->refresh_interval_s = (uint32_t)(refresh / 1000 ? refresh / 1000 : 1);
    c->min_refresh_interval_s = (uint32_t)(minref / 1000 ? minref / 1000 : 1);
    c->retry_interval_s = (uint32_t)(retry / 1000 ? retry / 1000 : 1);
    c->http_timeout_ms = (uint32_t)timeout;
    const char **algs;
    size_t n_algs;
    if (read_str_list(n, "algorithms", &algs, &n_algs, err, errlen) != 0) {
        free(algs);
        return -1;
    }
    c->policy.algs = n_algs ? 0 : JWT_ALGS_DEFAULT;
    for (size_t i = 0; i < n_algs; i++) {
        unsigned bit = jwt_alg_parse(algs[i]);
        if (bit == 0) {
            config_error(config_seq_at(config_get(n, "algorithms"), i), "algorithms", err, errlen,
                         "unsupported algorithm \"%s\" (RS256/384/512, PS256/384/512, ES256/384/512)", algs[i]);
            free(algs);
            return -1;
        }
        c->policy.algs |= bit;
    }
    free(algs);
    size_t n_roles;
    if (read_str_list(n, "required_roles", &p->roles, &n_roles, err, errlen) != 0)
        return -1;
    c->policy.required_roles = p->roles;
    size_t n_allowed;
    if (read_str_list(n, "allowed_clients", &p->allowed_clients, &n_allowed, err, errlen) != 0)
        return -1;
    if (config_get(n, "allowed_clients") != NULL && n_allowed == 0)
        return config_error(n, "allowed_clients", err, errlen,
                            "an empty list would refuse every token; list client ids or leave it out");
    c->policy.allowed_clients = p->allowed_clients;
    const char *typ;
    if (config_str(n, "require_typ", NULL, &typ, err, errlen) != 0)
        return -1;
    if (typ != NULL && strcmp(typ, "Bearer") != 0)
        return config_error(n, "require_typ", err, errlen,
                            "only Bearer (the typ claim of Keycloak's access tokens) is supported");
    c->policy.require_typ = typ != NULL;
    const config_node *m = config_get(n, "client_tenants");
    if (m != NULL) {
        if (!config_is_map(m))
            return config_error(m, "client_tenants", err, errlen, "expected a map of client id: tenant");
        p->n_clients = config_map_len(m);
        p->clients = calloc(p->n_clients + 1, sizeof(*p->clients));
        for (size_t i = 0; i < p->n_clients; i++) {
            const char *tid = config_scalar(config_map_value(m, i));
            p->clients[i].client = config_map_key(m, i);
            if (tid == NULL || (p->clients[i].t = tenant_find(a, tid)) == NULL)
                return config_error(config_map_value(m, i), "client_tenants", err, errlen, "no tenant \"%s\"",
                                    tid ? tid : "");
        }
    }
    if ((c->policy.tenant_claim != NULL) == (p->n_clients > 0))
        return config_error(n, "tenant_claim", err, errlen,
                            "set exactly one of tenant_claim (a claim naming the tenant) and client_tenants (azp -> tenant)");
    return 0;
}

/* `api_keys:` names exactly one source. A file is read here; the url and s3
 * sources' own keys are read by the gateway's poller (gateway/keys_source.h),
 * which hands each key set over with auth_keys_replace. */
static int read_api_keys(auth *a, const config_node *ak, const char *const *keys, char *err, size_t errlen)
{
    static const char *const sources[] = {"file", "url", "s3"};
    if (!config_is_map(ak))
        return config_error(ak, NULL, err, errlen, "expected a map with one of file, url or s3");
    if (config_check_keys(ak, keys, err, errlen) != 0)
        return -1;
    const char *given = NULL;
    for (size_t i = 0; i < 3; i++) {
        if (config_get(ak, sources[i]) == NULL)
            continue;
        if (given != NULL)
            return config_error(ak, sources[i], err, errlen,
                                "give exactly one of file, url and s3 (%s is set too)", given);
        given = sources[i];
    }
    if (given == NULL)
        return config_error(ak, NULL, err, errlen, "needs one of file (a local keys file), url (https://...) "
                            "or s3 (s3://bucket/key)");
    if (strcmp(given, "file") != 0) {
        a->keys_remote = 1;
        return 0;
    }
    for (size_t i = 3; keys[i] != NULL; i++) /* the keys after file, url, s3 are for remote sources */
        if (config_get(ak, keys[i]) != NULL)
            return config_error(ak, keys[i], err, errlen,
                                "applies to url and s3 sources; a keys file is checked every second");
    return config_str_required(ak, "file", &a->keys_file, err, errlen);
}

static int read_auth_section(auth *a, const config_node *sec, char *err, size_t errlen)
{
    static const char *const keys[] = {"oidc", "api_keys", "token_cache_size", NULL};
    static const char *const key_keys[] = {"file", "url", "s3", "region", "endpoint", "credentials",
                                           "poll_interval", "timeout", "ca_file", NULL};
    uint64_t cache;
    if (!config_is_map(sec))
        return config_error(sec, "auth", err, errlen, "expected a map");
    if (config_check_keys(sec, keys, err, errlen) != 0 ||
        config_uint(sec, "token_cache_size", 10000, 0, 10000000, &cache, err, errlen) != 0)
        return -1;
    a->token_cache_size = (size_t)cache;
    const config_node *ak = config_get(sec, "api_keys");
    if (ak != NULL && read_api_keys(a, ak, key_keys, err, errlen) != 0)
        return -1;
    const config_node *ps = config_get(sec, "oidc");
    if (ps == NULL)
        return 0;
    if (!config_is_seq(ps))
        return config_error(ps, "oidc", err, errlen, "expected a list of providers");
    a->n_providers = config_seq_len(ps);
    a->providers = calloc(a->n_providers + 1, sizeof(provider));
    for (size_t i = 0; i < a->n_providers; i++)
        if (read_provider(a, config_seq_at(ps, i), &a->providers[i], err, errlen) != 0)
            return -1;
    return 0;
}

/* stat of the keys file, zeroed when it does not exist. */
static void keys_file_stat(const auth *a, struct stat *st)
{
    if (stat(a->keys_file, st) != 0)
        memset(st, 0, sizeof(*st));
}

static int same_file_state(const struct stat *x, const struct stat *y)
{
    return x->st_ino == y->st_ino && x->st_dev == y->st_dev && x->st_size == y->st_size &&
           x->st_mtim.tv_sec == y->st_mtim.tv_sec && x->st_mtim.tv_nsec == y->st_mtim.tv_nsec;
}

static void collect_auth(buf *out, void *data);

auth *auth_new(const auth_config *cfg, char *err, size_t errlen)
{
    auth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    pthread_rwlock_init(&a->keys_lock, NULL);
    a->token_cache_size = 10000;
    const config_node *ts = config_get(cfg->root, "tenants");
    if (ts != NULL) {
        if (!config_is_seq(ts)) {
            config_error(ts, "tenants", err, errlen, "expected a list");
            goto fail;
        }
        a->tenants = calloc(config_seq_len(ts) + 1, sizeof(tenant));
        for (size_t i = 0; i < config_seq_len(ts); i++) {
            int rc = read_tenant(a, cfg, config_seq_at(ts, i), &a->tenants[i], err, errlen);
            a->n_tenants++; /* counted even when half read, so auth_free frees it */
            if (rc != 0)
                goto fail;
        }
    }
    const config_node *sec = config_get(cfg->root, "auth");
    if (sec != NULL && read_auth_section(a, sec, err, errlen) != 0)
        goto fail;
    a->listeners = calloc(cfg->n_listeners + 1, sizeof(listener_auth));
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        int rc = read_listener(a, &cfg->listeners[i], &a->listeners[i], err, errlen);
        a->n_listeners++;
        if (rc != 0)
            goto fail;
        if (a->listeners[i].required && a->n_providers == 0 && a->keys_file == NULL && !a->keys_remote) {
            config_error(config_get(cfg->listeners[i].node, "auth"), "auth", err, errlen,
                         "auth: required but no auth.oidc providers and no auth.api_keys are configured");
            goto fail;
        }
        if (a->listeners[i].required && !cfg->listeners[i].tls)
            log_warn("listener without TLS requires tokens", "listener=%s detail=\"bearer tokens travel in clear text\"",
                     cfg->listeners[i].name);
    }
    if (a->keys_file != NULL) {
        keys_file_stat(a, &a->keys_stat);
        if (apikey_store_load(a->keys_file, &a->keys, err, errlen) != 0)
            goto fail;
    }
    a->keys_count = metrics_series(metrics_family("otlp_gateway_api_keys", METRIC_GAUGE,
                                                  "API keys in the key set in use (active, revoked and expired)."),
                                   "");
    metrics_set(a->keys_count, (int64_t)apikey_store_count(a->keys));
    a->failures = metrics_family("otlp_gateway_auth_failure_total", METRIC_COUNTER,
                                 "Requests refused by authentication or tenant rules, by tenant and reason.");
    metric_family *ok = metrics_family("otlp_gateway_auth_success_total", METRIC_COUNTER,
                                       "Requests authenticated, by tenant and method.");
    metric_family *thr = metrics_family("otlp_gateway_tenant_throttled_total", METRIC_COUNTER,
                                        "Requests refused by a tenant's rate limits.");
    metric_family *in = metrics_family("otlp_gateway_tenant_items_total", METRIC_COUNTER,
                                       "Items accepted from a tenant and handed to the pipelines, by tenant and signal.");
    metric_family *refused = metrics_family("otlp_gateway_tenant_refused_items_total", METRIC_COUNTER,
                                            "Items of a known tenant refused, by tenant, signal and reason.");
    for (size_t i = 0; i < a->n_tenants; i++) {
        char labels[256];
        for (int sig = 0; sig < OTLP_SIGNAL_COUNT; sig++) {
            snprintf(labels, sizeof(labels), "tenant=\"%s\",signal=\"%s\"", a->tenants[i].id, signal_names[sig]);
            a->tenants[i].items_in[sig] = metrics_series(in, labels);
        }
        a->tenants[i].refused = refused;
        for (int m = 0; m < METHOD_COUNT; m++) {
            snprintf(labels, sizeof(labels), "tenant=\"%s\",method=\"%s\"", a->tenants[i].id, method_names[m]);
            a->tenants[i].ok[m] = metrics_series(ok, labels);
        }
        snprintf(labels, sizeof(labels), "tenant=\"%s\"", a->tenants[i].id);
        a->tenants[i].throttled = metrics_series(thr, labels);
    }
    return a;
fail:
    auth_free(a);
    return NULL;
}

int auth_start(auth *a, http_get_fn get, char *err, size_t errlen)
{
    if (a->n_providers == 0)
        return 0;
    oidc_provider_config *cfgs = calloc(a->n_providers, sizeof(*cfgs));
    if (cfgs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < a->n_providers; i++)
        cfgs[i] = a->providers[i].cfg;
    a->oidc = oidc_new(cfgs, a->n_providers, a->token_cache_size, get);
    free(cfgs);
    if (a->oidc == NULL || oidc_start(a->oidc) != 0) {
        snprintf(err, errlen, "cannot start the OIDC key refresher");
        return -1;
    }
    metrics_register_collector(collect_auth, a);
    return 0;
}

void auth_free(auth *a)
{
    if (a == NULL)
        return;
    oidc_free(a->oidc);
    for (size_t i = 0; i < a->n_tenants; i++) {
        free(a->tenants[i].sources);
        free(a->tenants[i].cert_subjects);
        pthread_mutex_destroy(&a->tenants[i].lock);
    }
    for (size_t i = 0; i < a->n_listeners; i++) {
        free(a->listeners[i].allow);
        free(a->listeners[i].by_cidr);
        free(a->listeners[i].by_cidr_tenant);
    }
    for (size_t i = 0; i < a->n_providers; i++) {
        free(a->providers[i].roles);
        free(a->providers[i].allowed_clients);
        free(a->providers[i].clients);
    }
    apikey_store_free(a->keys);
    pthread_rwlock_destroy(&a->keys_lock);
    free(a->tenants);
    free(a->listeners);
    free(a->providers);
    free(a);
}

void auth_reload_if_changed(auth *a)
{
    struct stat now;
    if (a->keys_file == NULL)
        return;
    keys_file_stat(a, &now);
    if (!same_file_state(&now, &a->keys_stat))
        auth_reload(a);
}

void auth_keys_replace(auth *a, apikey_store *keys)
{
    pthread_rwlock_wrlock(&a->keys_lock);
    apikey_store *old = a->keys;
    a->keys = keys;
    pthread_rwlock_unlock(&a->keys_lock);
    apikey_store_free(old);
    metrics_set(a->keys_count, (int64_t)apikey_store_count(keys));
}

void auth_reload(auth *a)
{
    if (a->keys_file != NULL) {
        /* Recorded before reading: a write racing the load is seen next time. */
        keys_file_stat(a, &a->keys_stat);
        apikey_store *fresh;
        char err[512];
        if (apikey_store_load(a->keys_file, &fresh, err, sizeof(err)) != 0) {
            char q[600];
            log_error("api keys reload failed; keeping the previous keys", "error=%s", log_quote(q, sizeof(q), err));
        } else {
            auth_keys_replace(a, fresh);
            log_info("api keys reloaded", "file=%s keys=%zu", a->keys_file, apikey_store_count(fresh));
        }
    }
    if (a->oidc != NULL)
        oidc_refresh_all(a->oidc);
}

/* ---------- request path ---------- */

const char *tenant_id(const tenant *t) { return t ? t->id : ""; }


void auth_count_items(const tenant *t, otlp_signal sig, size_t accepted)
{
    if (t != NULL && (unsigned)sig < OTLP_SIGNAL_COUNT && accepted > 0)
        metrics_add(t->items_in[sig], accepted);
}

void auth_count_refused(const tenant *t, otlp_signal sig, const char *reason, size_t items)
{
    if (t == NULL || (unsigned)sig >= OTLP_SIGNAL_COUNT || items == 0)
        return;
    char labels[256];
    snprintf(labels, sizeof(labels), "tenant=\"%s\",signal=\"%s\",reason=\"%s\"", t->id, signal_names[sig],
             reason);
    metrics_add(metrics_series(t->refused, labels), items);
}

static void fail(auth *a, auth_result *out, req_status st, const tenant *t, const char *reason, const char *msg)
{
    char labels[256];
    out->status = st;
    out->reason = reason;
    snprintf(out->message, sizeof(out->message), "%s", msg);
    snprintf(labels, sizeof(labels), "tenant=\"%s\",reason=\"%s\"", t ? t->id : "", reason);
    metrics_add(metrics_series(a->failures, labels), 1);
}

static const listener_auth *listener_of(const auth *a, const char *name)
{
    for (size_t i = 0; i < a->n_listeners; i++)
        if (strcmp(a->listeners[i].name, name) == 0)
            return &a->listeners[i];
    return NULL;
}

/* Tenant rules shared by every method: endpoint and source address. */
static int tenant_allowed(auth *a, const tenant *t, const listener_auth *la, const req_origin *o, auth_result *out)
{
    if ((t->endpoints & (1ull << (la - a->listeners))) == 0) {
        fail(a, out, REQ_PERMISSION_DENIED, t, "endpoint_not_allowed", "tenant may not use this endpoint");
        return 0;
    }
    if (t->n_sources > 0 && cidr_best_match(t->sources, t->n_sources, &o->peer) < 0) {
        fail(a, out, REQ_PERMISSION_DENIED, t, "source_not_allowed", "source address not allowed for this tenant");
        return 0;
    }
    return 1;
}

static const tenant *authenticate_source(auth *a, const listener_auth *la, const req_origin *o, auth_result *out)
{
    if (la->n_allow > 0 && cidr_best_match(la->allow, la->n_allow, &o->peer) < 0) {
        fail(a, out, REQ_PERMISSION_DENIED, NULL, "source_not_allowed", "source address not allowed on this endpoint");
        return NULL;
    }
    int i = la->n_by_cidr ? cidr_best_match(la->by_cidr, la->n_by_cidr, &o->peer) : -1;
    const tenant *t = i >= 0 ? la->by_cidr_tenant[i] : la->fixed;
    if (t == NULL)
        fail(a, out, REQ_PERMISSION_DENIED, NULL, "no_tenant", "no tenant for this source address");
    return t;
}

static const tenant *authenticate_api_key(auth *a, const char *tok, size_t len, auth_result *out)
{
    static const char *const reasons[] = {"ok", "unknown_key", "revoked_key", "expired_key", "malformed_key"};
    const char *tid = NULL, *kid = NULL;
    tenant *t = NULL;
    pthread_rwlock_rdlock(&a->keys_lock);
    int loaded = a->keys != NULL;
    apikey_status st = loaded ? apikey_check(a->keys, tok, len, (int64_t)time(NULL), &tid, &kid) : APIKEY_UNKNOWN;
    if (st == APIKEY_OK)
        t = tenant_find(a, tid); /* looked up under the lock: tid lives in the store */
    pthread_rwlock_unlock(&a->keys_lock);
    if (!loaded && a->keys_remote) {
        /* The shared key set has not loaded yet: a retryable answer, so agents
         * keep their data and retry instead of dropping it on a 401. */
        out->retry_after_s = 1;
        fail(a, out, REQ_UNAVAILABLE, NULL, "keys_unavailable", "API keys not available yet, retry");
        return NULL;
    }
    if (st != APIKEY_OK) {
        fail(a, out, REQ_UNAUTHENTICATED, NULL, reasons[st], "invalid API key");
        return NULL;
    }
    if (t == NULL)
        fail(a, out, REQ_PERMISSION_DENIED, NULL, "unknown_tenant", "the key's tenant is not configured");
    out->method = method_names[METHOD_API_KEY];
    return t;
}

/* A verified TLS client certificate stands in for a token when its subject
 * is listed by a tenant. */
static const tenant *authenticate_client_cert(auth *a, const char *subject, auth_result *out)
{
    for (size_t i = 0; i < a->n_tenants; i++)
        for (size_t j = 0; j < a->tenants[i].n_cert_subjects; j++)
            if (strcmp(a->tenants[i].cert_subjects[j], subject) == 0) {
                out->method = method_names[METHOD_CLIENT_CERT];
                return &a->tenants[i];
            }
    fail(a, out, REQ_UNAUTHENTICATED, NULL, "unknown_client_cert", "client certificate not mapped to a tenant");
    return NULL;
}

static const tenant *authenticate_jwt(auth *a, const char *tok, size_t len, auth_result *out)
{
    jwt_claims claims;
    jwt_status jst = JWT_MALFORMED;
    int pi = -1;
    uint32_t retry_after = 1;
    oidc_status st = a->oidc ? oidc_verify(a->oidc, tok, len, (int64_t)time(NULL), &claims, &jst, &pi, &retry_after)
                             : OIDC_UNKNOWN_ISSUER;
    if (st == OIDC_KEYS_UNAVAILABLE) {
        out->retry_after_s = retry_after;
        fail(a, out, REQ_UNAVAILABLE, NULL, "keys_unavailable", "token signing keys not available yet, retry");
        return NULL;
    }
    if (st == OIDC_UNKNOWN_ISSUER) {
        fail(a, out, REQ_UNAUTHENTICATED, NULL, jst == JWT_MALFORMED ? "malformed" : "unknown_issuer",
             "invalid token");
        return NULL;
    }
    if (st != OIDC_OK) {
        fail(a, out, REQ_UNAUTHENTICATED, NULL, jwt_status_reason(jst), "invalid token");
        return NULL;
    }
    const provider *p = &a->providers[pi];
    tenant *t = NULL;
    if (p->cfg.policy.tenant_claim != NULL) {
        t = tenant_find(a, claims.tenant);
    } else {
        for (size_t i = 0; i < p->n_clients && t == NULL; i++)
            if (strcmp(p->clients[i].client, claims.azp) == 0)
                t = p->clients[i].t;
    }
    if (t == NULL)
        fail(a, out, REQ_PERMISSION_DENIED, NULL, "unknown_tenant", "the token's tenant is not configured");
    out->method = method_names[METHOD_JWT];
    return t;
}

/* "Bearer <token>" with a case-insensitive scheme; NULL if absent/other. */
static const char *bearer_token(const req_origin *o, size_t *len)
{
    const char *v = o->authorization;
    size_t n = o->authorization_len;
    if (v == NULL || n < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return NULL;
    v += 7, n -= 7;
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    *len = n;
    return n ? v : NULL;
}

void auth_request(auth *a, const req_origin *o, auth_result *out)
{
    memset(out, 0, sizeof(*out));
    const listener_auth *la = listener_of(a, o->listener);
    if (la == NULL) { /* listeners come from the same config; cannot happen */
        fail(a, out, REQ_INTERNAL, NULL, "internal", "unknown listener");
        return;
    }
    const tenant *t;
    if (!la->required) {
        out->method = method_names[METHOD_NONE];
        if (a->n_tenants == 0 && la->n_allow == 0)
            return; /* open mode: no tenants configured (the embedded default) */
        if (la->n_allow > 0 && a->n_tenants == 0) {
            if (cidr_best_match(la->allow, la->n_allow, &o->peer) < 0)
                fail(a, out, REQ_PERMISSION_DENIED, NULL, "source_not_allowed",
                     "source address not allowed on this endpoint");
            return;
        }
        t = authenticate_source(a, la, o, out);
    } else {
        size_t len;
        const char *tok = bearer_token(o, &len);
        if (tok == NULL && o->client_cert_subject != NULL) {
            t = authenticate_client_cert(a, o->client_cert_subject, out);
            if (t == NULL || !tenant_allowed(a, t, la, o, out))
                return;
            out->tenant = t;
            metrics_add(t->ok[METHOD_CLIENT_CERT], 1);
            return;
        }
        if (tok == NULL) {
            fail(a, out, REQ_UNAUTHENTICATED, NULL, "missing_token", "missing bearer token");
            return;
        }
        if (len > JWT_MAX_LEN) {
            fail(a, out, REQ_UNAUTHENTICATED, NULL, "malformed", "invalid token");
            return;
        }
        t = apikey_looks_like(tok, len) ? authenticate_api_key(a, tok, len, out) : authenticate_jwt(a, tok, len, out);
    }
    if (t == NULL || !tenant_allowed(a, t, la, o, out))
        return;
    out->tenant = t;
    int m = la->required ? (strcmp(out->method, "jwt") == 0 ? METHOD_JWT : METHOD_API_KEY) : METHOD_NONE;
    metrics_add(t->ok[m], 1);
}

static int bucket_take(bucket *b, double n, uint64_t now, uint32_t *retry)
{
    if (b->rate <= 0)
        return 1;
    double refill = (double)(now - b->last_ns) / 1e9 * b->rate;
    b->last_ns = now;
    b->tokens = fmin(b->rate, b->tokens + refill);
    if (b->tokens < 0) {
        double wait = ceil(-b->tokens / b->rate);
        *retry = wait < 1 ? 1 : (uint32_t)wait;
        return 0;
    }
    b->tokens -= n;
    return 1;
}

req_status auth_admit(const tenant *tc, otlp_signal sig, size_t items, size_t bytes, uint32_t *retry_after_s)
{
    tenant *t = (tenant *)tc; /* the buckets are the only mutable part */
    if (t == NULL)
        return REQ_OK;
    if (t->max_request_bytes && bytes > t->max_request_bytes)
        return REQ_TOO_LARGE;
    uint64_t now = clock_now_ns();
    pthread_mutex_lock(&t->lock);
    int ok = bucket_take(&t->bytes, (double)bytes, now, retry_after_s) &&
             bucket_take(&t->items[sig], (double)items, now, retry_after_s);
    pthread_mutex_unlock(&t->lock);
    if (ok)
        return REQ_OK;
    metrics_add(t->throttled, 1);
    return REQ_THROTTLED;
}

static void collect_auth(buf *out, void *data)
{
    auth *a = data;
    buf_puts(out, "# HELP otlp_gateway_jwks_age_seconds Seconds since the provider's keys were last fetched.\n"
                  "# TYPE otlp_gateway_jwks_age_seconds gauge\n");
    for (size_t i = 0; i < a->n_providers; i++) {
        oidc_provider_stats st;
        oidc_stats(a->oidc, i, &st);
        buf_printf(out, "otlp_gateway_jwks_age_seconds{issuer=\"%s\"} %.3f\n", a->providers[i].cfg.issuer,
                   st.key_age_s);
    }
    buf_puts(out, "# HELP otlp_gateway_jwks_refreshes_total JWKS fetches, by provider and result.\n"
                  "# TYPE otlp_gateway_jwks_refreshes_total counter\n");
    for (size_t i = 0; i < a->n_providers; i++) {
        oidc_provider_stats st;
        oidc_stats(a->oidc, i, &st);
        const char *iss = a->providers[i].cfg.issuer;
        buf_printf(out,
                   "otlp_gateway_jwks_refreshes_total{issuer=\"%s\",result=\"ok\"} %llu\n"
                   "otlp_gateway_jwks_refreshes_total{issuer=\"%s\",result=\"failed\"} %llu\n"
                   "otlp_gateway_jwks_refreshes_total{issuer=\"%s\",result=\"unknown_kid\"} %llu\n",
                   iss, (unsigned long long)st.fetch_ok, iss, (unsigned long long)st.fetch_failed, iss,
                   (unsigned long long)st.unknown_kid_refreshes);
    }
}

int auth_keys_remote(const auth *a) { return a->keys_remote; }
