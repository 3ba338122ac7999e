/* oidc: discovery, JWKS refresh and the token cache against a tiny in-process
 * HTTP/1.1 server laid out like a Keycloak realm. Intervals are 1 s so the
 * whole file runs in a few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "oidc.h"
#include "test_util.h"

#define REALM "/realms/telemetry"
#define DISCOVERY_PATH REALM "/.well-known/openid-configuration"
#define CERTS_PATH REALM "/protocol/openid-connect/certs"

/* ---- the provider ---- */

typedef struct srv {
    loopback_server ls;
    pthread_mutex_t mu; /* guards everything below */
    bool down;          /* close each connection without answering */
    char *discovery;    /* owned response bodies */
    char *certs;
    unsigned discovery_hits, certs_hits;
} srv;

static void srv_answer(void *ctx, int c)
{
    srv *s = ctx;
    char req[4096] = "";
    size_t n = 0;
    while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = recv(c, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
    }
    char path[256] = "";
    sscanf(req, "GET %255s ", path);
    char *body = NULL;
    pthread_mutex_lock(&s->mu);
    bool is_disc = strcmp(path, DISCOVERY_PATH) == 0, is_certs = strcmp(path, CERTS_PATH) == 0;
    s->discovery_hits += is_disc;
    s->certs_hits += is_certs;
    if (!s->down && (is_disc || is_certs))
        body = strdup(is_disc ? s->discovery : s->certs);
    bool down = s->down;
    pthread_mutex_unlock(&s->mu);
    if (down)
        return;
    char head[256];
    int hl = body ? snprintf(head, sizeof head,
                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                             "Connection: close\r\n\r\n",
                             strlen(body))
                  : snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    send(c, head, (size_t)hl, MSG_NOSIGNAL);
    /* The client may hang up early (size cap): later sends just fail. */
    for (size_t off = 0, len = body ? strlen(body) : 0; off < len;) {
        ssize_t w = send(c, body + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(body);
}

static void srv_start(srv *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    loopback_start(&s->ls, srv_answer, s);
}

static void srv_stop(srv *s)
{
    loopback_stop(&s->ls);
    free(s->discovery);
    free(s->certs);
    pthread_mutex_destroy(&s->mu);
}

/* Replaces one response body (takes ownership of `body`). */
static void srv_set(srv *s, char **slot, char *body)
{
    pthread_mutex_lock(&s->mu);
    free(*slot);
    *slot = body;
    pthread_mutex_unlock(&s->mu);
}

static void srv_set_down(srv *s, bool down)
{
    pthread_mutex_lock(&s->mu);
    s->down = down;
    pthread_mutex_unlock(&s->mu);
}

static unsigned srv_hits(srv *s, const unsigned *counter)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = *counter;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- keys and tokens ---- */

static EVP_PKEY *key_a, *key_b;

static char *b64url(const unsigned char *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

static char *b64url_bn(EVP_PKEY *k, const char *param)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    unsigned char raw[1024];
    int n = BN_bn2bin(bn, raw);
    BN_free(bn);
    return b64url(raw, (size_t)n);
}

/* A JWKS holding only `k` as `kid`, with a `pad`-byte member to grow it. */
static char *certs_doc(EVP_PKEY *k, const char *kid, size_t pad)
{
    char *n = b64url_bn(k, OSSL_PKEY_PARAM_RSA_N), *e = b64url_bn(k, OSSL_PKEY_PARAM_RSA_E);
    char *fill = malloc(pad + 1);
    memset(fill, 'x', pad);
    fill[pad] = '\0';
    size_t cap = strlen(n) + pad + 256;
    char *doc = malloc(cap);
    snprintf(doc, cap,
             "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}],"
             "\"padding\":\"%s\"}",
             kid, n, e, fill);
    free(n);
    free(e);
    free(fill);
    return doc;
}

static char *discovery_doc(const char *issuer, int port)
{
    char *doc = malloc(512);
    snprintf(doc, 512, "{\"issuer\":\"%s\",\"jwks_uri\":\"http://127.0.0.1:%d" CERTS_PATH "\"}", issuer, port);
    return doc;
}

static char *b64url_str(const char *s) { return b64url((const unsigned char *)s, strlen(s)); }

/* An RS256 token signed by `k` (or with a junk signature when k is NULL);
 * nbf 0 leaves nbf out. Caller frees. */
static char *token_make(EVP_PKEY *k, const char *kid, const char *iss, int64_t exp, int64_t nbf)
{
    char hdr[256], pay[768], nbf_member[48] = "";
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    if (nbf != 0)
        snprintf(nbf_member, sizeof nbf_member, ",\"nbf\":%lld", (long long)nbf);
    snprintf(pay, sizeof pay,
             "{\"iss\":\"%s\",\"aud\":\"otlp-gateway\",\"sub\":\"agent-1\",\"azp\":\"agent\",\"typ\":\"Bearer\","
             "\"exp\":%lld,\"tenant\":\"shop\"%s}",
             iss, (long long)exp, nbf_member);
    char *h = b64url_str(hdr), *p = b64url_str(pay);
    size_t cap = strlen(h) + strlen(p) + 1024;
    char *tok = malloc(cap);
    int n = snprintf(tok, cap, "%s.%s", h, p);
    free(h);
    free(p);
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    if (k != NULL) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tok, (size_t)n), 1);
        EVP_MD_CTX_free(ctx);
    } else {
        memset(sig, 0x5a, 256);
        siglen = 256;
    }
    char *s = b64url(sig, siglen);
    snprintf(tok + n, cap - (size_t)n, ".%s", s);
    free(s);
    return tok;
}

/* ---- fixture ---- */

typedef struct fx {
    srv s;
    char issuer[128];
    oidc_provider_config cfg;
    oidc *o;
} fx;

static int group_setup(void **state)
{
    (void)state;
    key_a = EVP_RSA_gen(2048);
    key_b = EVP_RSA_gen(2048);
    return key_a && key_b ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    return 0;
}

/* A healthy realm serving key A, and an oidc for it (not started). */
static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    srv_start(&f->s);
    snprintf(f->issuer, sizeof f->issuer, "http://127.0.0.1:%d" REALM, f->s.ls.port);
    srv_set(&f->s, &f->s.discovery, discovery_doc(f->issuer, f->s.ls.port));
    srv_set(&f->s, &f->s.certs, certs_doc(key_a, "A", 0));
    f->cfg = (oidc_provider_config){
        .issuer = f->issuer,
        .policy = {.issuer = f->issuer, .audience = "otlp-gateway", .algs = JWT_ALGS_DEFAULT, .tenant_claim = "tenant"},
        .refresh_interval_s = 300,
        .min_refresh_interval_s = 1,
        .retry_interval_s = 1,
        .http_timeout_ms = 2000,
    };
    f->o = oidc_new(&f->cfg, 1, 1024, http_get_curl);
    assert_non_null(f->o);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    oidc_free(f->o);
    srv_stop(&f->s);
    free(f);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The provider again with another min_refresh_interval: 3 s where a test's
 * checks must fall inside one window even on a slow, loaded machine. */
static void use_min_refresh(fx *f, uint32_t seconds)
{
    oidc_free(f->o);
    f->cfg.min_refresh_interval_s = seconds;
    f->o = oidc_new(&f->cfg, 1, 1024, http_get_curl);
    assert_non_null(f->o);
}

/* Waits up to 10 s for at least `ok` successful and `failed` failed
 * fetches (a scheduled one is due up to 3 s ahead). */
static void wait_fetches(oidc *o, uint64_t ok, uint64_t failed)
{
    oidc_provider_stats st;
    for (int i = 0; i < 1000; i++) {
        oidc_stats(o, 0, &st);
        if (st.fetch_ok >= ok && st.fetch_failed >= failed)
            return;
        sleep_ms(10);
    }
    fail_msg("fetches: ok %llu failed %llu", (unsigned long long)st.fetch_ok, (unsigned long long)st.fetch_failed);
}

static uint32_t last_retry; /* Retry-After of the last verify() */

static oidc_status verify(oidc *o, const char *tok, int64_t now, jwt_claims *c, jwt_status *jst)
{
    int provider;
    oidc_status st = oidc_verify(o, tok, strlen(tok), now, c, jst, &provider, &last_retry);
    if (st != OIDC_UNKNOWN_ISSUER)
        assert_int_equal(provider, 0);
    return st;
}

/* Verifies a fresh (never cached) token signed by key A and checks the outcome. */
static void expect_fresh_token(fx *f, oidc_status want)
{
    int64_t now = time(NULL);
    char *tok = token_make(key_a, "A", f->issuer, now + 300, 0);
    jwt_claims c;
    jwt_status jst;
    assert_int_equal(verify(f->o, tok, now, &c, &jst), want);
    if (want == OIDC_OK)
        assert_string_equal(c.tenant, "shop");
    free(tok);
}

/* ---- tests ---- */

static void test_keys_unavailable_until_first_fetch(void **state)
{
    fx *f = *state;
    int64_t now = time(NULL);
    char *tok = token_make(key_a, "A", f->issuer, now + 300, 0);
    jwt_claims c;
    jwt_status jst;
    assert_int_equal(verify(f->o, tok, now, &c, &jst), OIDC_KEYS_UNAVAILABLE);

    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    assert_int_equal(verify(f->o, tok, now, &c, &jst), OIDC_OK);
    assert_string_equal(c.tenant, "shop");
    assert_string_equal(c.iss, f->issuer);
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.n_keys, 1);
    assert_true(st.key_age_s >= 0 && st.key_age_s < 5);
    assert_int_equal(srv_hits(&f->s, &f->s.discovery_hits), 1);
    free(tok);
}

/* A token valid only from T+100 passes at T+200 and is cached; at T+50 the
 * cache answers (jwt_verify would say not yet valid), which proves a hit
 * skips verification. An unchanged JWKS refresh keeps the cache; exp bounds it. */
static void test_cache_hit_skips_verification(void **state)
{
    fx *f = *state;
    int64_t t = time(NULL);
    char *tok = token_make(key_a, "A", f->issuer, t + 1000, t + 100);
    jwt_claims c;
    jwt_status jst;
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    assert_int_equal(verify(f->o, tok, t + 50, &c, &jst), OIDC_REJECTED);
    assert_int_equal(jst, JWT_NOT_YET_VALID);
    assert_int_equal(verify(f->o, tok, t + 200, &c, &jst), OIDC_OK);
    memset(&c, 0, sizeof c);
    assert_int_equal(verify(f->o, tok, t + 50, &c, &jst), OIDC_OK);
    assert_string_equal(c.tenant, "shop");

    oidc_refresh_all(f->o);
    wait_fetches(f->o, 2, 0);
    assert_int_equal(verify(f->o, tok, t + 50, &c, &jst), OIDC_OK);

    assert_int_equal(verify(f->o, tok, t + 1001, &c, &jst), OIDC_REJECTED);
    assert_int_equal(jst, JWT_EXPIRED);

    /* Without a cache every call verifies. */
    oidc *nocache = oidc_new(&f->cfg, 1, 0, http_get_curl);
    assert_int_equal(oidc_start(nocache), 0);
    wait_fetches(nocache, 1, 0);
    assert_int_equal(verify(nocache, tok, t + 200, &c, &jst), OIDC_OK);
    assert_int_equal(verify(nocache, tok, t + 50, &c, &jst), OIDC_REJECTED);
    oidc_free(nocache);
    free(tok);
}

static void test_key_rotation(void **state)
{
    fx *f = *state;
    int64_t t0 = time(NULL);
    char *tok_a = token_make(key_a, "A", f->issuer, t0 + 300, 0);
    char *tok_a2 = token_make(key_a, "A", f->issuer, t0 + 301, 0);
    char *tok_b = token_make(key_b, "B", f->issuer, t0 + 300, 0);
    jwt_claims c;
    jwt_status jst;
    use_min_refresh(f, 3);
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    assert_int_equal(verify(f->o, tok_a, t0, &c, &jst), OIDC_OK);

    /* The realm rotates to B; let min_refresh_interval pass since the first fetch. */
    srv_set(&f->s, &f->s.certs, certs_doc(key_b, "B", 0));
    sleep_ms(3100);
    int64_t t1 = time(NULL);
    unsigned certs0 = srv_hits(&f->s, &f->s.certs_hits);
    assert_int_equal(verify(f->o, tok_b, t1, &c, &jst), OIDC_KEYS_UNAVAILABLE);
    wait_fetches(f->o, 2, 0);
    assert_int_equal(verify(f->o, tok_b, t1, &c, &jst), OIDC_OK);
    assert_string_equal(c.tenant, "shop");

    /* Key A is gone. Its cached token is a miss (new generation); kid A was
     * never looked for, so it may be new: retry after the refetch scheduled
     * for the end of min_refresh_interval. That fetch proves A unpublished:
     * then the cached token and a fresh one both fail, with no new fetch. */
    assert_int_equal(verify(f->o, tok_a, t1, &c, &jst), OIDC_KEYS_UNAVAILABLE);
    assert_true(last_retry >= 2 && last_retry <= 3);
    wait_fetches(f->o, 3, 0);
    assert_int_equal(verify(f->o, tok_a, t1, &c, &jst), OIDC_REJECTED);
    assert_int_equal(jst, JWT_UNKNOWN_KID);
    assert_int_equal(verify(f->o, tok_a2, t1, &c, &jst), OIDC_REJECTED);
    sleep_ms(200);
    assert_int_equal(srv_hits(&f->s, &f->s.certs_hits), certs0 + 2);
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.unknown_kid_refreshes, 2);
    assert_int_equal(st.fetch_ok, 3);
    free(tok_a);
    free(tok_a2);
    free(tok_b);
}

/* A flood of made-up kids costs one fetch per min_refresh_interval (1 s):
 * the first asks for one now, the rest are told to retry while it runs and,
 * after it, to come back when the next one is allowed, which is scheduled.
 * None is refused: each may be a new key. Once a fetch that started after a
 * kid was first seen has come back without it, that kid is refused (401)
 * until the next refetch is allowed. The flood stops at 700 ms. */
static void test_unknown_kid_flood(void **state)
{
    fx *f = *state;
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    sleep_ms(1100);
    int64_t t = time(NULL), t0 = mono_ms();
    unsigned certs0 = srv_hits(&f->s, &f->s.certs_hits);
    enum { MAX = 1000 };
    static char *toks[MAX];
    int sent = 0, unavailable = 0;
    for (; sent < MAX && mono_ms() - t0 < 700; sent++) {
        char kid[32];
        snprintf(kid, sizeof kid, "%08x%04d", (unsigned)rand(), sent);
        toks[sent] = token_make(NULL, kid, f->issuer, t + 300, 0);
        jwt_claims c;
        jwt_status jst;
        unavailable += verify(f->o, toks[sent], t, &c, &jst) == OIDC_KEYS_UNAVAILABLE && last_retry == 1;
    }
    assert_int_equal(unavailable, sent);
    /* The scheduled refetch happens with no further request, about 1 s after the first. */
    wait_fetches(f->o, 3, 0);
    int64_t t2 = mono_ms();
    assert_true(t2 - t0 >= 990);
    if (t2 - t0 < 1700) {
        /* Within the window after that fetch: a flood kid it proved unpublished is refused. */
        jwt_claims c;
        jwt_status jst;
        assert_int_equal(verify(f->o, toks[sent - 1], t, &c, &jst), OIDC_REJECTED);
        assert_int_equal(jst, JWT_UNKNOWN_KID);
    }
    sleep_ms(300);
    assert_int_equal(srv_hits(&f->s, &f->s.certs_hits), certs0 + 2);
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.unknown_kid_refreshes, 2);
    for (int i = 0; i < sent; i++)
        free(toks[i]);
}

/* min_refresh_interval is measured in milliseconds from the last attempt: an
 * unknown kid 400 ms after a refetch gets Retry-After 1 and its refetch starts
 * no earlier than 1000 ms after the one before, and without another request. */
static void test_unknown_kid_refetch_waits_for_interval(void **state)
{
    fx *f = *state;
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    sleep_ms(1100);
    int64_t t = time(NULL), t0 = mono_ms();
    char *first = token_make(NULL, "first", f->issuer, t + 300, 0);
    char *second = token_make(NULL, "second", f->issuer, t + 300, 0);
    jwt_claims c;
    jwt_status jst;
    assert_int_equal(verify(f->o, first, t, &c, &jst), OIDC_KEYS_UNAVAILABLE);
    wait_fetches(f->o, 2, 0);
    sleep_ms(400);
    unsigned hits = srv_hits(&f->s, &f->s.certs_hits);
    assert_int_equal(verify(f->o, second, t, &c, &jst), OIDC_KEYS_UNAVAILABLE);
    assert_int_equal(last_retry, 1);
    int64_t t2 = -1;
    for (int i = 0; i < 600 && t2 < 0; i++) {
        if (srv_hits(&f->s, &f->s.certs_hits) > hits)
            t2 = mono_ms();
        else
            sleep_ms(5);
    }
    assert_true(t2 - t0 >= 990);
    assert_true(t2 > 0 && t2 - t0 < 2900); /* on its own, not at the next request */
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.unknown_kid_refreshes, 2);
    free(first);
    free(second);
}

/* Issue 13: a key rotation inside min_refresh_interval (3 s here) of the
 * last fetch. The new key's token gets the retryable answer with Retry-After
 * until the next allowed fetch, which then happens without another request,
 * and the token is accepted. (Before: 401 for the whole window.) */
static void test_rotation_within_min_refresh_interval(void **state)
{
    fx *f = *state;
    use_min_refresh(f, 3);
    int64_t t0 = mono_ms(); /* before the first fetch starts: the interval runs from its start */
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    int64_t t = time(NULL);
    srv_set(&f->s, &f->s.certs, certs_doc(key_b, "B", 0));
    char *tok_b = token_make(key_b, "B", f->issuer, t + 300, 0);
    jwt_claims c;
    jwt_status jst;
    assert_int_equal(verify(f->o, tok_b, t, &c, &jst), OIDC_KEYS_UNAVAILABLE);
    int64_t waited = mono_ms() - t0;
    assert_true(last_retry >= 1 && last_retry <= 3);
    if (waited < 900)
        assert_true(last_retry >= 2);
    /* Asking again does not bring the fetch forward nor schedule another. */
    assert_int_equal(verify(f->o, tok_b, t, &c, &jst), OIDC_KEYS_UNAVAILABLE);
    wait_fetches(f->o, 2, 0);
    assert_true(mono_ms() - t0 >= 2950);
    assert_int_equal(verify(f->o, tok_b, time(NULL), &c, &jst), OIDC_OK);
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.unknown_kid_refreshes, 1);
    assert_int_equal(st.fetch_ok, 2);
    free(tok_b);
}

/* An attacker sending a made-up kid every 10 ms keeps a refetch going every
 * min_refresh_interval; a rotation in the middle is still never answered
 * with 401, and is accepted after at most about two intervals. The fetch
 * budget stays one per interval (plus the first). */
static void test_made_up_kids_cannot_hold_rotation(void **state)
{
    fx *f = *state;
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    int64_t t = time(NULL), t0 = mono_ms();
    unsigned certs0 = srv_hits(&f->s, &f->s.certs_hits);
    char *tok_b = token_make(key_b, "B", f->issuer, t + 300, 0);
    bool rotated = false, accepted = false;
    int rejected_b = 0, i = 0;
    while (mono_ms() - t0 < 3500 && !accepted) {
        char kid[32];
        snprintf(kid, sizeof kid, "bogus-%d", i++);
        char *bogus = token_make(NULL, kid, f->issuer, t + 300, 0);
        jwt_claims c;
        jwt_status jst;
        oidc_status st = verify(f->o, bogus, t, &c, &jst);
        assert_true(st == OIDC_KEYS_UNAVAILABLE || st == OIDC_REJECTED);
        free(bogus);
        if (!rotated && mono_ms() - t0 >= 300) {
            srv_set(&f->s, &f->s.certs, certs_doc(key_b, "B", 0));
            rotated = true;
        }
        if (rotated) {
            st = verify(f->o, tok_b, t, &c, &jst);
            rejected_b += st == OIDC_REJECTED;
            accepted = st == OIDC_OK;
        }
        sleep_ms(10);
    }
    int64_t elapsed = mono_ms() - t0;
    assert_int_equal(rejected_b, 0);
    assert_true(accepted);
    unsigned hits = srv_hits(&f->s, &f->s.certs_hits) - certs0;
    assert_true(hits <= 2 + (unsigned)(elapsed / 1000));
    free(tok_b);
}

/* A kid a fetch proved unpublished is refused until the next refetch is
 * allowed; then it asks for one more (503) and is refused after it. */
static void test_missing_kid_rejected_until_next_window(void **state)
{
    fx *f = *state;
    use_min_refresh(f, 3);
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    sleep_ms(3100);
    int64_t t = time(NULL);
    char *x = token_make(NULL, "X", f->issuer, t + 300, 0);
    jwt_claims c;
    jwt_status jst;
    assert_int_equal(verify(f->o, x, t, &c, &jst), OIDC_KEYS_UNAVAILABLE);
    wait_fetches(f->o, 2, 0);
    assert_int_equal(verify(f->o, x, t, &c, &jst), OIDC_REJECTED);
    assert_int_equal(jst, JWT_UNKNOWN_KID);
    sleep_ms(3100);
    assert_int_equal(verify(f->o, x, t, &c, &jst), OIDC_KEYS_UNAVAILABLE);
    wait_fetches(f->o, 3, 0);
    assert_int_equal(verify(f->o, x, t, &c, &jst), OIDC_REJECTED);
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.unknown_kid_refreshes, 2);
    free(x);
}

static void test_provider_down_at_start(void **state)
{
    fx *f = *state;
    srv_set_down(&f->s, true);
    int64_t t0 = mono_ms();
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 0, 2); /* attempts about 1 s apart (retry_interval) */
    unsigned hits = srv_hits(&f->s, &f->s.discovery_hits);
    assert_true(hits >= 2 && hits <= 2 + (unsigned)((mono_ms() - t0) / 1000));
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_true(st.fetch_failed >= 2);
    assert_int_equal(st.fetch_ok, 0);
    assert_true(st.key_age_s < 0);
    expect_fresh_token(f, OIDC_KEYS_UNAVAILABLE);

    srv_set_down(&f->s, false);
    wait_fetches(f->o, 1, 0);
    expect_fresh_token(f, OIDC_OK);
}

static void test_provider_down_later(void **state)
{
    fx *f = *state;
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 1, 0);
    srv_set_down(&f->s, true);
    oidc_refresh_all(f->o);
    wait_fetches(f->o, 1, 1);

    /* Verified against the keys fetched before the outage. */
    expect_fresh_token(f, OIDC_OK);
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.n_keys, 1);
    assert_true(st.key_age_s >= 0);
}

static void test_unknown_issuer(void **state)
{
    fx *f = *state;
    int64_t now = time(NULL);
    char *tok = token_make(key_a, "A", "https://sso.example.com/realms/other", now + 300, 0);
    jwt_claims c;
    jwt_status jst;
    int provider = 7;
    assert_int_equal(oidc_verify(f->o, tok, strlen(tok), now, &c, &jst, &provider, &last_retry), OIDC_UNKNOWN_ISSUER);
    assert_int_equal(jst, JWT_BAD_ISSUER);
    assert_int_equal(provider, -1);
    assert_int_equal(oidc_verify(f->o, "not.a-token", 11, now, &c, &jst, &provider, &last_retry), OIDC_UNKNOWN_ISSUER);
    assert_int_equal(jst, JWT_MALFORMED);
    free(tok);
}

static void test_discovery_issuer_mismatch(void **state)
{
    fx *f = *state;
    char other[160];
    snprintf(other, sizeof other, "http://127.0.0.1:%d/realms/other", f->s.ls.port);
    srv_set(&f->s, &f->s.discovery, discovery_doc(other, f->s.ls.port));
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 0, 1);
    assert_int_equal(srv_hits(&f->s, &f->s.certs_hits), 0);
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.n_keys, 0);
    expect_fresh_token(f, OIDC_KEYS_UNAVAILABLE);
}

/* Over 1 MiB is refused; the same document at half a MiB is accepted. */
static void test_oversized_jwks(void **state)
{
    fx *f = *state;
    srv_set(&f->s, &f->s.certs, certs_doc(key_a, "A", (1u << 20) + 1024));
    assert_int_equal(oidc_start(f->o), 0);
    wait_fetches(f->o, 0, 1);
    oidc_provider_stats st;
    oidc_stats(f->o, 0, &st);
    assert_int_equal(st.fetch_ok, 0);
    expect_fresh_token(f, OIDC_KEYS_UNAVAILABLE);

    srv_set(&f->s, &f->s.certs, certs_doc(key_a, "A", 1u << 19));
    oidc_refresh_all(f->o);
    wait_fetches(f->o, 1, 0);
    expect_fresh_token(f, OIDC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keys_unavailable_until_first_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_hit_skips_verification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_kid_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_kid_refetch_waits_for_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_within_min_refresh_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_made_up_kids_cannot_hold_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_kid_rejected_until_next_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_down_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_down_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_issuer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_issuer_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_jwks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
