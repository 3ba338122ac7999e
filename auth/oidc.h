/* oidc: the OpenID providers (Keycloak realms) tokens may come from.
 *
 * Each provider's keys are discovered from
 * <issuer>/.well-known/openid-configuration -> jwks_uri and fetched with
 * the given HTTP client (http_get.h) by one background thread, which refreshes them every
 * refresh_interval, retries every retry_interval while a provider is
 * unreachable (the gateway starts anyway), and refetches early when a token
 * names an unknown kid -- at most once per min_refresh_interval, so a flood of
 * random kids costs at most one fetch per interval. A token with an unknown
 * kid gets the retryable KEYS_UNAVAILABLE (with a Retry-After until the
 * refetch that will tell, which is scheduled) unless a fetch that started
 * after the kid was first seen came back without it: only then REJECTED
 * (JWT_UNKNOWN_KID), until the next refetch is allowed. Workers verify against
 * the current key set without blocking on the network: a key set is
 * published by pointer swap under a short lock and reference-counted.
 *
 * Verified tokens are cached (keyed by SHA-256 of the token, bounded, until
 * the token's exp), so steady-state auth is a hash lookup, not a signature
 * check. All functions are thread-safe. */
#ifndef GW_OIDC_H
#define GW_OIDC_H

#include <stddef.h>
#include <stdint.h>

#include "http_get.h"
#include "jwt.h"

typedef struct oidc_provider_config {
    const char *issuer;         /* e.g. https://sso.example.com/realms/telemetry */
    const char *discovery_url;  /* NULL: issuer + "/.well-known/openid-configuration" */
    jwt_policy policy;          /* policy.issuer == issuer */
    uint32_t refresh_interval_s;     /* default 300 */
    uint32_t min_refresh_interval_s; /* default 10: unknown-kid refetch rate limit */
    uint32_t retry_interval_s;       /* default 5: while unreachable */
    uint32_t http_timeout_ms;        /* default 5000 */
    const char *ca_file;             /* NULL: system CAs */
} oidc_provider_config;

typedef struct oidc oidc;

/* Copies the configs (strings must outlive the oidc: they belong to the
 * config). cache_entries bounds the verified-token cache (0 = no cache);
 * keys are fetched with get (NULL: fails). */
oidc *oidc_new(const oidc_provider_config *providers, size_t n, size_t cache_entries, http_get_fn get);
/* Start the refresh thread (first fetch happens immediately, in the
 * background). -1 if the thread cannot start. */
int oidc_start(oidc *o);
/* Stop the thread and free everything. */
void oidc_free(oidc *o);

typedef enum {
    OIDC_OK = 0,
    OIDC_UNKNOWN_ISSUER,   /* iss matches no provider (or token unreadable): 401 */
    OIDC_KEYS_UNAVAILABLE, /* provider's keys not fetched yet, or an unknown kid a refetch may bring: retryable 503 */
    OIDC_REJECTED,         /* jwt_verify said no: 401 (see *jst) */
} oidc_status;

/* Verify a bearer token at `now` (unix seconds: claims and cache expiry; the
 * unknown-kid rate limit keeps its own monotonic time). On OIDC_OK, *claims is filled (from the
 * cache or a fresh verification). On OIDC_REJECTED, *jst says why.
 * *provider is the index of the provider that handled it (-1 if none).
 * On OIDC_KEYS_UNAVAILABLE, *retry_after_s (at least 1) is when to retry:
 * the time until the fetch that may bring the key. */
oidc_status oidc_verify(oidc *o, const char *token, size_t len, int64_t now, jwt_claims *claims, jwt_status *jst,
                        int *provider, uint32_t *retry_after_s);

/* For metrics/status: seconds since the provider's keys were last fetched
 * successfully (-1 if never), number of keys, and fetch counters. */
typedef struct oidc_provider_stats {
    double key_age_s;
    size_t n_keys;
    uint64_t fetch_ok, fetch_failed, unknown_kid_refreshes;
} oidc_provider_stats;
void oidc_stats(oidc *o, size_t provider, oidc_provider_stats *out);
/* Ask for an immediate refresh of every provider (e.g. SIGHUP). */
void oidc_refresh_all(oidc *o);

#endif
