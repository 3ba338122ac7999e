/* oidc: provider key discovery/refresh and the verified-token cache.
 *
 * Threads and locks:
 *  - one refresh thread does every network fetch, with no lock held;
 *  - oidc.mu guards the per-provider scheduling state, key-set pointers,
 *    reference counts and counters (held only for short bookkeeping);
 *  - each cache shard has its own mutex, so cache hits from many workers
 *    rarely contend and never touch oidc.mu.
 *
 * Cache correctness across key rotation: each published key set gets a new
 * generation number, and a cache entry remembers the generation of the set
 * that verified it. An entry whose generation is not the provider's current
 * one is a miss, so a key removed from the JWKS stops authenticating as soon
 * as the new set is published, even for tokens verified before. A refresh
 * that returns byte-identical JWKS keeps the set (and the cache) as is.
 *
 * Time: `now` given to oidc_verify is wall-clock unix seconds, for token
 * claims and cache expiry only. Scheduling and the unknown-kid rate limit use
 * CLOCK_MONOTONIC in milliseconds: clock steps neither stall nor rush
 * refreshes, and whole-second rounding cannot let two early refetches through
 * a few milliseconds apart.
 *
 * Config fields left 0 take the defaults documented in oidc.h. */
#include "oidc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "clock.h"
#include "digest.h"
#include "log.h"

#define OIDC_MAX_BODY (1u << 20) /* discovery and JWKS documents are a few KiB */
#define OIDC_CACHE_SHARDS 16
#define OIDC_CACHE_WAYS 8        /* slots probed per lookup: bounds the work per request */
#define OIDC_WELL_KNOWN "/.well-known/openid-configuration"
#define OIDC_MISSED_KIDS 64      /* unknown kids remembered per provider (direct-mapped) */

/* An unknown kid the provider was asked about. seen_seq is the number of
 * fetches started when it was first seen (or re-armed): a successful fetch
 * started after that (a higher sequence number) that did not bring the kid
 * proves it is not published. Sequence numbers, not times: a fetch starting
 * in the same millisecond is still ordered. */
typedef struct oidc_missed_kid {
    char kid[128]; /* "" = empty slot */
    uint64_t seen_seq;
} oidc_missed_kid;

/* A published key set. refs counts the provider's pointer (while current)
 * plus each verifier using it; guarded by oidc.mu. Freed at zero. */
typedef struct oidc_keyset {
    jwks *keys;
    uint64_t gen;
    unsigned refs;
} oidc_keyset;

typedef struct oidc_provider {
    oidc_provider_config cfg; /* strings borrowed from the caller */
    jwt_policy policy;        /* cfg.policy with issuer pinned to cfg.issuer */
    char *discovery_url;      /* owned */

    /* Guarded by oidc.mu. */
    oidc_keyset *current;     /* NULL until the first successful fetch */
    uint64_t last_gen;        /* generation handed to the latest set */
    int64_t last_ok_ms;       /* monotonic; -1: never */
    int64_t next_fetch_ms;    /* monotonic */
    int64_t last_attempt_ms;  /* monotonic: last fetch or unknown-kid request */
    uint64_t fetch_seq;       /* fetches started so far; the one in progress (or the last) has this number */
    uint64_t checked_seq;     /* number of the last successful fetch; 0: none */
    int64_t kid_refetch_ms;   /* monotonic: an unknown-kid refetch scheduled for then; 0: none */
    oidc_missed_kid missed[OIDC_MISSED_KIDS];
    bool refresh_requested;
    bool fetching;            /* the thread is fetching this provider right now */
    uint64_t fetch_ok, fetch_failed, unknown_kid_refreshes;

    /* current->gen (0 if none), readable without oidc.mu on the cache hit path. */
    _Atomic uint64_t gen;

    /* Owned by the refresh thread only. */
    char *jwks_uri;                /* from discovery; dropped on failure to re-discover */
    unsigned char jwks_digest[DIGEST_SHA256_LEN]; /* of the published JWKS body */
    bool has_digest;
} oidc_provider;

typedef struct oidc_cache_entry {
    unsigned char digest[DIGEST_SHA256_LEN]; /* SHA-256 of the token */
    int provider;                               /* -1: empty slot */
    uint64_t gen;
    jwt_claims claims; /* claims.exp bounds the entry's life */
} oidc_cache_entry;

typedef struct oidc_cache_shard {
    pthread_mutex_t mu;
    oidc_cache_entry *slots;
    size_t n;
} oidc_cache_shard;

struct oidc {
    oidc_provider *providers;
    size_t n;
    oidc_cache_shard *shards; /* NULL: cache disabled */

    pthread_mutex_t mu;
    pthread_cond_t cv;        /* wakes the thread: refresh request or stop */
    pthread_t thread;
    bool started;
    atomic_bool stopping;     /* also aborts a fetch in progress (http_get_request.stop) */
    http_get_fn http_get;
    size_t next_scan;         /* round-robin start so one busy provider cannot starve others */
};

/* ---- key sets ---- */

/* Drops one reference; returns the set if it must now be freed (outside the lock). */
static oidc_keyset *oidc_keyset_unref_locked(oidc_keyset *ks)
{
    return --ks->refs == 0 ? ks : NULL;
}

static void oidc_keyset_free(oidc_keyset *ks)
{
    if (ks == NULL)
        return;
    jwks_free(ks->keys);
    free(ks);
}

/* ---- token cache ---- */

static size_t oidc_cache_index(const unsigned char *digest, size_t n)
{
    uint64_t h;
    memcpy(&h, digest + 1, sizeof h); /* digest[0] picked the shard */
    return (size_t)(h % n);
}

static oidc_cache_shard *oidc_cache_new(size_t entries)
{
    oidc_cache_shard *shards = calloc(OIDC_CACHE_SHARDS, sizeof *shards);
    if (shards == NULL)
        return NULL;
    /* The bound is rounded up to a whole number of slots per shard. */
    size_t per = (entries + OIDC_CACHE_SHARDS - 1) / OIDC_CACHE_SHARDS;
    for (size_t i = 0; i < OIDC_CACHE_SHARDS; i++) {
        oidc_cache_shard *s = &shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->n = per;
        s->slots = calloc(per, sizeof *s->slots);
        if (s->slots == NULL) {
            for (size_t j = 0; j <= i; j++) {
                pthread_mutex_destroy(&shards[j].mu);
                free(shards[j].slots);
            }
            free(shards);
            return NULL;
        }
        for (size_t j = 0; j < per; j++)
            s->slots[j].provider = -1;
    }
    return shards;
}

static void oidc_cache_free(oidc_cache_shard *shards)
{
    if (shards == NULL)
        return;
    for (size_t i = 0; i < OIDC_CACHE_SHARDS; i++) {
        pthread_mutex_destroy(&shards[i].mu);
        free(shards[i].slots);
    }
    free(shards);
}

/* An entry is live while its token has not expired and the key set that
 * verified it is still the provider's current one. */
static bool oidc_entry_live(const oidc *o, const oidc_cache_entry *e, int64_t now)
{
    return e->provider >= 0 && now <= e->claims.exp && e->gen == atomic_load(&o->providers[e->provider].gen);
}

/* Returns the provider index and copies the claims on a hit, -1 on a miss. */
static int oidc_cache_get(oidc *o, const unsigned char *digest, int64_t now, jwt_claims *claims)
{
    oidc_cache_shard *s = &o->shards[digest[0] % OIDC_CACHE_SHARDS];
    size_t i = oidc_cache_index(digest, s->n);
    size_t ways = s->n < OIDC_CACHE_WAYS ? s->n : OIDC_CACHE_WAYS;
    int found = -1;
    pthread_mutex_lock(&s->mu);
    for (size_t w = 0; w < ways; w++) {
        oidc_cache_entry *e = &s->slots[(i + w) % s->n];
        if (e->provider < 0 || memcmp(e->digest, digest, sizeof e->digest) != 0)
            continue;
        if (oidc_entry_live(o, e, now)) {
            *claims = e->claims;
            found = e->provider;
        } else {
            e->provider = -1;
        }
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* Takes the token's own slot, else a free or dead one in its probe window,
 * else evicts the entry that expires first (the least useful one). */
static void oidc_cache_put(oidc *o, const unsigned char *digest, int provider, uint64_t gen, int64_t now,
                           const jwt_claims *claims)
{
    oidc_cache_shard *s = &o->shards[digest[0] % OIDC_CACHE_SHARDS];
    size_t i = oidc_cache_index(digest, s->n);
    size_t ways = s->n < OIDC_CACHE_WAYS ? s->n : OIDC_CACHE_WAYS;
    pthread_mutex_lock(&s->mu);
    oidc_cache_entry *victim = NULL;
    for (size_t w = 0; w < ways; w++) {
        oidc_cache_entry *e = &s->slots[(i + w) % s->n];
        if (e->provider >= 0 && memcmp(e->digest, digest, sizeof e->digest) == 0) {
            victim = e;
            break;
        }
        if (!oidc_entry_live(o, e, now)) {
            if (victim == NULL || oidc_entry_live(o, victim, now))
                victim = e;
        } else if (victim == NULL || (oidc_entry_live(o, victim, now) && e->claims.exp < victim->claims.exp)) {
            victim = e;
        }
    }
    memcpy(victim->digest, digest, sizeof victim->digest);
    victim->provider = provider;
    victim->gen = gen;
    victim->claims = *claims;
    pthread_mutex_unlock(&s->mu);
}

/* ---- HTTP ---- */

typedef struct oidc_body {
    char *data; /* NUL-terminated */
    size_t len;
} oidc_body;

/* GET url into *body (caller frees body->data) through the injected client. */
static int oidc_http_get(oidc *o, const oidc_provider *p, const char *url, oidc_body *body, char *err, size_t errlen)
{
    http_get_request rq = {.url = url, .ca_file = p->cfg.ca_file, .timeout_ms = p->cfg.http_timeout_ms,
                           .max_bytes = OIDC_MAX_BODY, .stop = &o->stopping};
    return o->http_get(&rq, &body->data, &body->len, err, errlen);
}

/* ---- discovery and refresh (refresh thread only) ---- */

/* Reads jwks_uri from the discovery document into p->jwks_uri. */
static int oidc_discover(oidc *o, oidc_provider *p, char *err, size_t errlen)
{
    oidc_body body = {0};
    if (oidc_http_get(o, p, p->discovery_url, &body, err, errlen) != 0) {
        free(body.data);
        return -1;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(body.data, body.len, 0, &jerr);
    free(body.data);
    int rc = -1;
    const char *iss = json_string_value(json_object_get(doc, "issuer"));
    const char *uri = json_string_value(json_object_get(doc, "jwks_uri"));
    if (!json_is_object(doc))
        snprintf(err, errlen, "discovery: not a JSON object");
    else if (iss == NULL || strcmp(iss, p->cfg.issuer) != 0)
        /* OpenID Connect Discovery 1.0 §4.3: a mismatch means the document
         * is not this issuer's and must not be used. */
        snprintf(err, errlen, "discovery: issuer %s does not match", iss ? iss : "(missing)");
    else if (uri == NULL || uri[0] == '\0')
        snprintf(err, errlen, "discovery: no jwks_uri");
    else if ((p->jwks_uri = strdup(uri)) == NULL)
        snprintf(err, errlen, "out of memory");
    else
        rc = 0;
    json_decref(doc);
    return rc;
}

/* Fetches the provider's JWKS. 0 with *out NULL when the document is
 * unchanged since the last publication, 0 with a new set, -1 on error. */
static int oidc_fetch(oidc *o, oidc_provider *p, jwks **out, char *err, size_t errlen)
{
    *out = NULL;
    if (p->jwks_uri == NULL && oidc_discover(o, p, err, errlen) != 0)
        return -1;
    oidc_body body = {0};
    int rc = -1;
    unsigned char digest[DIGEST_SHA256_LEN];
    size_t skipped = 0;
    if (oidc_http_get(o, p, p->jwks_uri, &body, err, errlen) == 0) {
        int hashed = digest_sha256(body.data, body.len, digest) == 0;
        if (hashed && p->has_digest && memcmp(digest, p->jwks_digest, sizeof digest) == 0)
            rc = 0;
        else if (jwks_parse(body.data, body.len, out, &skipped, err, errlen) != 0)
            ;
        else if ((*out)->n_keys == 0) {
            /* Publishing an empty set would reject every token; keep the old one. */
            snprintf(err, errlen, "jwks: no usable keys (%zu skipped)", skipped);
            jwks_free(*out);
            *out = NULL;
        } else {
            if (hashed)
                memcpy(p->jwks_digest, digest, sizeof digest);
            p->has_digest = hashed; /* unhashed, the next fetch parses the body again */
            rc = 0;
        }
    }
    free(body.data);
    if (rc != 0) {
        /* The keys may have moved: discover again next time. */
        free(p->jwks_uri);
        p->jwks_uri = NULL;
    }
    return rc;
}

/* One fetch attempt for p, then publication and rescheduling under oidc.mu. */
static void oidc_refresh(oidc *o, oidc_provider *p)
{
    char err[512] = "";
    jwks *keys = NULL;
    int rc = oidc_fetch(o, p, &keys, err, sizeof err);
    oidc_keyset *ks = NULL;
    if (keys != NULL && (ks = malloc(sizeof *ks)) == NULL) {
        jwks_free(keys);
        /* Forget the digest so the same document is parsed again next time. */
        p->has_digest = false;
        snprintf(err, sizeof err, "out of memory");
        rc = -1;
    }

    oidc_keyset *dropped = NULL;
    size_t n_keys = 0;
    pthread_mutex_lock(&o->mu);
    int64_t now = (int64_t)clock_now_ms();
    p->fetching = false;
    if (rc == 0) {
        p->fetch_ok++;
        p->last_ok_ms = now;
        p->checked_seq = p->fetch_seq;
        p->next_fetch_ms = now + (int64_t)p->cfg.refresh_interval_s * 1000;
        if (ks != NULL) {
            ks->keys = keys;
            ks->refs = 1;
            ks->gen = ++p->last_gen;
            if (p->current != NULL)
                dropped = oidc_keyset_unref_locked(p->current);
            p->current = ks;
            atomic_store(&p->gen, ks->gen);
            n_keys = keys->n_keys;
        }
    } else {
        p->fetch_failed++;
        p->next_fetch_ms = now + (int64_t)p->cfg.retry_interval_s * 1000;
    }
    pthread_mutex_unlock(&o->mu);
    oidc_keyset_free(dropped);

    if (rc != 0) {
        char q[600];
        log_warn("jwks fetch failed", "issuer=%s error=%s", p->cfg.issuer, log_quote(q, sizeof q, err));
    } else if (ks != NULL) {
        log_info("jwks updated", "issuer=%s keys=%zu", p->cfg.issuer, n_keys);
    }
}

static void *oidc_thread(void *arg)
{
    oidc *o = arg;
    pthread_mutex_lock(&o->mu);
    while (!atomic_load(&o->stopping)) {
        int64_t now = (int64_t)clock_now_ms();
        int64_t wake = INT64_MAX;
        oidc_provider *due = NULL;
        for (size_t k = 0; k < o->n && due == NULL; k++) {
            size_t i = (o->next_scan + k) % o->n;
            oidc_provider *p = &o->providers[i];
            bool kid_due = p->kid_refetch_ms > 0 && p->kid_refetch_ms <= now;
            if (p->refresh_requested || p->next_fetch_ms <= now || kid_due) {
                due = p;
                o->next_scan = i + 1;
            } else {
                if (p->next_fetch_ms < wake)
                    wake = p->next_fetch_ms;
                if (p->kid_refetch_ms > 0 && p->kid_refetch_ms < wake)
                    wake = p->kid_refetch_ms;
            }
        }
        if (due != NULL) {
            /* Any fetch serves a scheduled unknown-kid refetch too. */
            due->refresh_requested = false;
            due->kid_refetch_ms = 0;
            due->fetching = true;
            due->last_attempt_ms = now;
            due->fetch_seq++;
            pthread_mutex_unlock(&o->mu);
            oidc_refresh(o, due);
            pthread_mutex_lock(&o->mu);
        } else if (wake == INT64_MAX) {
            pthread_cond_wait(&o->cv, &o->mu);
        } else {
            struct timespec ts = {.tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000};
            pthread_cond_timedwait(&o->cv, &o->mu, &ts);
        }
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* ---- public API ---- */

static void oidc_providers_free(oidc_provider *ps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* No verifier can hold a reference any more: the provider's is the last. */
        oidc_keyset_free(ps[i].current);
        free(ps[i].discovery_url);
        free(ps[i].jwks_uri);
    }
    free(ps);
}

oidc *oidc_new(const oidc_provider_config *providers, size_t n, size_t cache_entries, http_get_fn get)
{
    oidc *o = get != NULL ? calloc(1, sizeof *o) : NULL;
    if (o == NULL)
        return NULL;
    o->http_get = get;
    o->n = n;
    o->providers = calloc(n ? n : 1, sizeof *o->providers);
    if (o->providers == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        oidc_provider *p = &o->providers[i];
        if (providers[i].issuer == NULL)
            goto fail;
        p->cfg = providers[i];
        if (p->cfg.refresh_interval_s == 0)
            p->cfg.refresh_interval_s = 300;
        if (p->cfg.min_refresh_interval_s == 0)
            p->cfg.min_refresh_interval_s = 10;
        if (p->cfg.retry_interval_s == 0)
            p->cfg.retry_interval_s = 5;
        if (p->cfg.http_timeout_ms == 0)
            p->cfg.http_timeout_ms = 5000;
        p->policy = p->cfg.policy;
        p->policy.issuer = p->cfg.issuer;
        if (p->cfg.discovery_url != NULL) {
            p->discovery_url = strdup(p->cfg.discovery_url);
        } else if ((p->discovery_url = malloc(strlen(p->cfg.issuer) + sizeof OIDC_WELL_KNOWN)) != NULL) {
            strcpy(p->discovery_url, p->cfg.issuer);
            strcat(p->discovery_url, OIDC_WELL_KNOWN);
        }
        if (p->discovery_url == NULL)
            goto fail;
        p->last_ok_ms = -1;
    }
    if (cache_entries > 0 && (o->shards = oidc_cache_new(cache_entries)) == NULL)
        goto fail;

    clock_cond_init(&o->cv);
    pthread_mutex_init(&o->mu, NULL);
    return o;

fail:
    if (o->providers != NULL)
        oidc_providers_free(o->providers, n);
    free(o);
    return NULL;
}

int oidc_start(oidc *o)
{
    if (pthread_create(&o->thread, NULL, oidc_thread, o) != 0)
        return -1;
    o->started = true;
    return 0;
}

void oidc_free(oidc *o)
{
    if (o == NULL)
        return;
    if (o->started) {
        pthread_mutex_lock(&o->mu);
        atomic_store(&o->stopping, true);
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->thread, NULL);
    }
    oidc_providers_free(o->providers, o->n);
    oidc_cache_free(o->shards);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

static int oidc_find_provider(const oidc *o, const char *iss)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->providers[i].cfg.issuer, iss) == 0)
            return (int)i;
    return -1;
}

/* Retry-After for a wait of ms milliseconds: whole seconds, rounded up, at least 1. */
static uint32_t oidc_retry_s(int64_t ms)
{
    return ms <= 1000 ? 1 : (uint32_t)((ms + 999) / 1000);
}

/* jwt_verify said the kid is unknown. The answer is 401 only when a fetch
 * that started after this kid was first seen succeeded without it, and no
 * refetch is allowed yet: then the provider does not publish the kid. In
 * every other case the key may be new (a rotation), so the answer is the
 * retryable 503 with *retry_after_s until the fetch that will tell:
 *  - a fetch is pending or running, or a newer set was just published: 1 s;
 *  - a refetch is allowed (min_refresh_interval since the last attempt): it
 *    is asked for now, 1 s;
 *  - otherwise one refetch is scheduled for the moment it is allowed, and
 *    the client is told to come back then.
 * Whatever the kids, this makes at most one unknown-kid fetch per
 * min_refresh_interval. Kids are remembered in a small direct-mapped table:
 * a made-up kid can evict another kid's entry, which only turns that kid's
 * 401 back into a 503 (never a real new key's 503 into a 401), so a flood of
 * made-up kids cannot hold a rotation at 401. */
static oidc_status oidc_unknown_kid(oidc *o, oidc_provider *p, uint64_t gen, const char *kid, jwt_status *jst,
                                    uint32_t *retry_after_s)
{
    int64_t now_ms = (int64_t)clock_now_ms();
    int64_t interval_ms = (int64_t)p->cfg.min_refresh_interval_s * 1000;
    uint64_t h = 1469598103934665603ull;
    for (const char *c = kid; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    oidc_status st = OIDC_KEYS_UNAVAILABLE;
    *retry_after_s = 1;
    pthread_mutex_lock(&o->mu);
    oidc_missed_kid *m = &p->missed[h % OIDC_MISSED_KIDS];
    bool known = m->kid[0] != '\0' && strcmp(m->kid, kid) == 0;
    if (!known) {
        snprintf(m->kid, sizeof m->kid, "%s", kid);
        m->seen_seq = p->fetch_seq;
    }
    bool allowed = now_ms - p->last_attempt_ms >= interval_ms;
    if (p->current->gen != gen || p->refresh_requested || p->fetching) {
        /* A newer set was published while we verified, or is on its way:
         * the client's retry uses it. */
    } else if (known && p->checked_seq > m->seen_seq && !allowed) {
        *jst = JWT_UNKNOWN_KID;
        st = OIDC_REJECTED;
    } else if (allowed) {
        m->seen_seq = p->fetch_seq; /* the coming fetch is the one that tells */
        p->last_attempt_ms = now_ms;
        p->refresh_requested = true;
        p->kid_refetch_ms = 0;
        p->unknown_kid_refreshes++;
        pthread_cond_signal(&o->cv);
    } else {
        int64_t due = p->last_attempt_ms + interval_ms;
        if (p->kid_refetch_ms == 0) {
            p->kid_refetch_ms = due;
            p->unknown_kid_refreshes++;
            pthread_cond_signal(&o->cv);
        }
        *retry_after_s = oidc_retry_s(due - now_ms);
    }
    pthread_mutex_unlock(&o->mu);
    return st;
}

oidc_status oidc_verify(oidc *o, const char *token, size_t len, int64_t now, jwt_claims *claims, jwt_status *jst,
                        int *provider, uint32_t *retry_after_s)
{
    *provider = -1;
    *jst = JWT_OK;
    *retry_after_s = 1;
    unsigned char digest[DIGEST_SHA256_LEN];
    int cached = o->shards != NULL && token != NULL && digest_sha256(token, len, digest) == 0;
    if (cached) {
        int hit = oidc_cache_get(o, digest, now, claims);
        if (hit >= 0) {
            *provider = hit;
            return OIDC_OK;
        }
    }

    char kid[128], iss[256];
    if (token == NULL || jwt_peek(token, len, kid, sizeof kid, iss, sizeof iss) != 0) {
        *jst = JWT_MALFORMED;
        return OIDC_UNKNOWN_ISSUER;
    }
    int idx = oidc_find_provider(o, iss);
    if (idx < 0) {
        *jst = JWT_BAD_ISSUER;
        return OIDC_UNKNOWN_ISSUER;
    }
    *provider = idx;
    oidc_provider *p = &o->providers[idx];

    pthread_mutex_lock(&o->mu);
    oidc_keyset *ks = p->current;
    if (ks != NULL)
        ks->refs++;
    pthread_mutex_unlock(&o->mu);
    if (ks == NULL)
        return OIDC_KEYS_UNAVAILABLE;

    char err[128];
    jwt_status st = jwt_verify(token, len, ks->keys, &p->policy, now, claims, err, sizeof err);
    uint64_t gen = ks->gen;
    pthread_mutex_lock(&o->mu);
    oidc_keyset *dropped = oidc_keyset_unref_locked(ks);
    pthread_mutex_unlock(&o->mu);
    oidc_keyset_free(dropped);

    if (st == JWT_UNKNOWN_KID)
        return oidc_unknown_kid(o, p, gen, kid, jst, retry_after_s);
    if (st != JWT_OK) {
        *jst = st;
        return OIDC_REJECTED;
    }
    if (cached)
        oidc_cache_put(o, digest, idx, gen, now, claims);
    return OIDC_OK;
}

void oidc_stats(oidc *o, size_t provider, oidc_provider_stats *out)
{
    memset(out, 0, sizeof *out);
    out->key_age_s = -1;
    if (provider >= o->n)
        return;
    const oidc_provider *p = &o->providers[provider];
    pthread_mutex_lock(&o->mu);
    if (p->last_ok_ms >= 0)
        out->key_age_s = (double)((int64_t)clock_now_ms() - p->last_ok_ms) / 1000.0;
    out->n_keys = p->current ? p->current->keys->n_keys : 0;
    out->fetch_ok = p->fetch_ok;
    out->fetch_failed = p->fetch_failed;
    out->unknown_kid_refreshes = p->unknown_kid_refreshes;
    pthread_mutex_unlock(&o->mu);
}

void oidc_refresh_all(oidc *o)
{
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < o->n; i++)
        o->providers[i].refresh_requested = true;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}
