/* auth: who sent a request, and whether they may.
 *
 * Built from the config's `auth:` and `tenants:` sections and each listener's
 * `auth:` mode:
 *   auth: required  (secure endpoint) -- `Authorization: Bearer <token>` where
 *                   the token is a gateway API key (apikey.h) or an OIDC JWT
 *                   (oidc.h); the tenant comes from the key, or from the JWT's
 *                   tenant claim or its azp/client_id through `client_tenants`.
 *   auth: none      (insecure endpoint) -- no token; the source address must
 *                   be in the listener's `allow_cidrs`; the tenant is the
 *                   listener's `tenant`, or found by source in `cidr_tenants`.
 * Either way the tenant must list the listener in its `endpoints`, and its
 * `source_cidrs` (if any) must hold the source address (the PROXY protocol
 * address when the listener uses it).
 *
 * auth_request runs before the body is decoded; auth_admit after, with the
 * item count, for the tenant's rate limits. Thread-safe; an auth is built
 * once and shared by all workers. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config_node.h"
#include "http_get.h"
#include "types.h"

typedef struct auth auth;
typedef struct apikey_store apikey_store;
typedef struct tenant tenant;

/* A listener as auth sees it: its `auth:`, `allow_cidrs`, `tenant` and
 * `cidr_tenants` keys are read from node. */
typedef struct auth_listener {
    const char *name;
    int tls; /* the listener terminates TLS (auth: required needs it) */
    const config_node *node;
} auth_listener;

/* Everything auth_new reads; owned by the caller (the config). */
typedef struct auth_config {
    const config_node *root; /* `auth:` and `tenants:` */
    const auth_listener *listeners;
    size_t n_listeners;
} auth_config;

/* NULL with a located config error. Starts nothing yet. */
auth *auth_new(const auth_config *cfg, char *err, size_t errlen);
/* Start background work: OIDC key fetching with get (the gateway passes
 * http_get_curl). -1 with err on failure. */
int auth_start(auth *a, http_get_fn get, char *err, size_t errlen);
void auth_free(auth *a);
/* SIGHUP: reload the API keys file, refetch OIDC keys. Logs the outcome;
 * a bad keys file keeps the previous keys. */
void auth_reload(auth *a);
/* Reload the API keys file if it changed on disk (inode, size or mtime);
 * cheap enough to call every second. */
void auth_reload_if_changed(auth *a);

/* Whether auth.api_keys names a url or s3 source (whose key sets the
 * gateway's poller hands over with auth_keys_replace). */
int auth_keys_remote(const auth *a);
/* Use `keys` from now on; auth takes ownership and frees the previous set
 * once no request is checking against it. Thread-safe. Until the first call,
 * an auth with a remote source answers API-key tokens with a retryable
 * UNAVAILABLE (503, Retry-After: 1), not UNAUTHENTICATED. */
void auth_keys_replace(auth *a, apikey_store *keys);

typedef struct auth_result {
    req_status status;   /* OK, UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE */
    const tenant *tenant;   /* set when OK */
    const char *method;     /* "jwt", "api_key", "none" */
    const char *reason;     /* metric label for failures: "missing_token", "expired", ... */
    uint32_t retry_after_s;
    char message[200];      /* client-safe */
} auth_result;

/* Authenticate one request from its origin (listener, peer, Authorization). */
void auth_request(auth *a, const req_origin *o, auth_result *out);

/* Admission under the tenant's limits (body bytes before decode: items 0;
 * then items after decode). REQ_OK, REQ_TOO_LARGE (max_request_bytes),
 * or REQ_THROTTLED with *retry_after_s. */
req_status auth_admit(const tenant *t, otlp_signal sig, size_t items, size_t bytes, uint32_t *retry_after_s);

const char *tenant_id(const tenant *t);

/* What came of a known tenant's items, for the per-tenant counters
 * otlp_gateway_tenant_items_total{tenant,signal} (handed to the pipelines)
 * and otlp_gateway_tenant_refused_items_total{tenant,signal,reason} (reason:
 * ingest's status name). Requests refused before a tenant is known are in
 * otlp_gateway_auth_failure_total. t NULL: nothing is counted. */
void auth_count_items(const tenant *t, otlp_signal sig, size_t accepted);
void auth_count_refused(const tenant *t, otlp_signal sig, const char *reason, size_t items);

#endif
