/* Unit tests for auth/jwt: keys are generated at test time, published as a
 * JWKS the way an issuer would, and tokens are signed here with OpenSSL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "jwt.h"

#define NOW ((int64_t)1800000000)
#define ISS "https://sso.example.com/realms/telemetry"

typedef enum { SIG_RS256, SIG_RS512, SIG_PS256, SIG_PS384, SIG_ES256, SIG_ES384, SIG_ES512, SIG_HS256, SIG_NONE } signer;

static EVP_PKEY *k_rsa, *k_ec256, *k_ec384, *k_ec521, *k_rsa1024;
static jwks *k_set; /* rsa1, ec256, ec384, ec521 */

/* ---- encoding and key export ---- */

static char *b64url(const unsigned char *d, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = al[v >> 18];
        *o++ = al[(v >> 12) & 63];
        *o++ = al[(v >> 6) & 63];
        *o++ = al[v & 63];
    }
    if (n - i == 1) {
        *o++ = al[d[i] >> 2];
        *o++ = al[(d[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)d[i] << 8 | d[i + 1];
        *o++ = al[v >> 10];
        *o++ = al[(v >> 4) & 63];
        *o++ = al[(v & 15) << 2];
    }
    *o = '\0';
    return out;
}

/* A bignum parameter of pkey, big-endian, left-padded to pad bytes (0: minimal). */
static char *bn_param_b64(EVP_PKEY *k, const char *name, int pad, int flip_last_bit)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
    int n = pad ? pad : BN_num_bytes(bn);
    unsigned char buf[1024];
    assert_true(BN_bn2binpad(bn, buf, n) == n);
    if (flip_last_bit)
        buf[n - 1] ^= 1;
    BN_free(bn);
    return b64url(buf, (size_t)n);
}

/* The public JWK of k; kid NULL leaves it out. */
static json_t *jwk_of(EVP_PKEY *k, const char *kid, int off_curve)
{
    json_t *j = json_object();
    if (kid)
        json_object_set_new(j, "kid", json_string(kid));
    json_object_set_new(j, "use", json_string("sig"));
    if (EVP_PKEY_is_a(k, "RSA")) {
        json_object_set_new(j, "kty", json_string("RSA"));
        char *n = bn_param_b64(k, OSSL_PKEY_PARAM_RSA_N, 0, 0), *e = bn_param_b64(k, OSSL_PKEY_PARAM_RSA_E, 0, 0);
        json_object_set_new(j, "n", json_string(n));
        json_object_set_new(j, "e", json_string(e));
        free(n);
        free(e);
        return j;
    }
    int len = (EVP_PKEY_get_bits(k) + 7) / 8;
    json_object_set_new(j, "kty", json_string("EC"));
    json_object_set_new(j, "crv", json_string(len == 32 ? "P-256" : len == 48 ? "P-384" : "P-521"));
    char *x = bn_param_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, len, 0);
    char *y = bn_param_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, len, off_curve);
    json_object_set_new(j, "x", json_string(x));
    json_object_set_new(j, "y", json_string(y));
    free(x);
    free(y);
    return j;
}

/* {"keys":[...]} from the given JWKs (references stolen), as text. */
static char *jwks_doc(size_t n, ...)
{
    json_t *arr = json_array();
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, va_arg(ap, json_t *));
    va_end(ap);
    json_t *doc = json_pack("{s:o}", "keys", arr);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static jwks *jwks_of(const char *doc, size_t expect_keys, size_t expect_skipped)
{
    jwks *set = NULL;
    size_t skipped = 99;
    char err[128];
    assert_int_equal(jwks_parse(doc, strlen(doc), &set, &skipped, err, sizeof err), 0);
    assert_int_equal(set->n_keys, expect_keys);
    assert_int_equal(skipped, expect_skipped);
    return set;
}

/* ---- token building ---- */

static size_t sign(signer s, EVP_PKEY *k, const unsigned char *hkey, size_t hlen, const char *msg,
                   unsigned char *sig)
{
    size_t n = 1024;
    if (s == SIG_NONE)
        return 0;
    if (s == SIG_HS256) {
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hkey, hlen, (const unsigned char *)msg,
                                  strlen(msg), sig, n, &n));
        return n;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = EVP_sha256();
    if (s == SIG_ES384 || s == SIG_PS384)
        md = EVP_sha384();
    else if (s == SIG_ES512 || s == SIG_RS512)
        md = EVP_sha512();
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, k), 1);
    if (s == SIG_PS256 || s == SIG_PS384) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
    }
    unsigned char der[1024];
    assert_int_equal(EVP_DigestSign(ctx, der, &n, (const unsigned char *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(ctx);
    if (s != SIG_ES256 && s != SIG_ES384 && s != SIG_ES512) {
        memcpy(sig, der, n);
        return n;
    }
    /* JWS wants R||S, each padded to the coordinate size. */
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    int half = s == SIG_ES256 ? 32 : s == SIG_ES384 ? 48 : 66;
    assert_non_null(es);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, half), half);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + half, half), half);
    ECDSA_SIG_free(es);
    return (size_t)(2 * half);
}

/* header.payload.signature from raw JSON texts. */
static char *token_raw(const char *hdr, const char *pay, signer s, EVP_PKEY *k, const unsigned char *hkey,
                       size_t hlen)
{
    char *h = b64url((const unsigned char *)hdr, strlen(hdr)), *p = b64url((const unsigned char *)pay, strlen(pay));
    size_t mlen = strlen(h) + strlen(p) + 2;
    char *msg = malloc(mlen);
    snprintf(msg, mlen, "%s.%s", h, p);
    unsigned char sig[1024];
    char *sb = b64url(sig, sign(s, k, hkey, hlen, msg, sig));
    size_t tlen = mlen + strlen(sb) + 1;
    char *tok = malloc(tlen);
    snprintf(tok, tlen, "%s.%s", msg, sb);
    free(h);
    free(p);
    free(msg);
    free(sb);
    return tok;
}

/* Compact JSON text of j (reference stolen). */
static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* Same, from JSON values (references stolen). */
static char *token(json_t *hdr, json_t *pay, signer s, EVP_PKEY *k)
{
    char *h = dump(hdr), *p = dump(pay);
    char *t = token_raw(h, p, s, k, NULL, 0);
    free(h);
    free(p);
    return t;
}

static json_t *header(const char *alg, const char *kid)
{
    json_t *h = json_pack("{s:s}", "typ", "JWT");
    if (alg)
        json_object_set_new(h, "alg", json_string(alg));
    if (kid)
        json_object_set_new(h, "kid", json_string(kid));
    return h;
}

/* What Keycloak puts in an access token, reduced to what is checked. */
static json_t *claims(void)
{
    return json_pack("{s:s,s:[s,s],s:s,s:s,s:I,s:I,s:s,s:s,s:{s:[s,s]}}", "iss", ISS, "aud", "otlp-gateway", "account",
                     "sub", "agent-1", "azp", "collector", "exp", (json_int_t)(NOW + 300), "iat",
                     (json_int_t)(NOW - 10), "typ", "Bearer", "tenant", "shop", "realm_access", "roles", "otlp-write",
                     "offline_access");
}

static json_t *with(json_t *c, const char *name, json_t *v)
{
    if (v)
        json_object_set_new(c, name, v);
    else
        json_object_del(c, name);
    return c;
}

static jwt_policy policy(void)
{
    return (jwt_policy){.issuer = ISS, .audience = "otlp-gateway", .algs = JWT_ALGS_DEFAULT, .skew_s = 30,
                        .tenant_claim = "tenant"};
}

/* Verifies tok against set under p, then frees tok. */
static jwt_status verify_with(char *tok, const jwks *set, const jwt_policy *p, jwt_claims *c)
{
    jwt_claims local;
    char err[128];
    jwt_status st = jwt_verify(tok, strlen(tok), set, p, NOW, c ? c : &local, err, sizeof err);
    assert_true(st == JWT_OK ? err[0] == '\0' : err[0] != '\0');
    free(tok);
    return st;
}

static jwt_status verify(char *tok)
{
    jwt_policy p = policy();
    return verify_with(tok, k_set, &p, NULL);
}

/* A valid RS256 token with the claims c. */
static char *rs(json_t *c)
{
    return token(header("RS256", "rsa1"), c, SIG_RS256, k_rsa);
}

/* ---- setup ---- */

static int setup(void **state)
{
    (void)state;
    k_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    k_rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    k_ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k_ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    k_ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    if (!k_rsa || !k_rsa1024 || !k_ec256 || !k_ec384 || !k_ec521)
        return -1;
    char *doc = jwks_doc(4, jwk_of(k_rsa, "rsa1", 0), jwk_of(k_ec256, "ec256", 0), jwk_of(k_ec384, "ec384", 0),
                         jwk_of(k_ec521, "ec521", 0));
    size_t skipped;
    int rc = jwks_parse(doc, strlen(doc), &k_set, &skipped, NULL, 0);
    free(doc);
    return rc == 0 && k_set->n_keys == 4 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    jwks_free(k_set);
    EVP_PKEY_free(k_rsa);
    EVP_PKEY_free(k_rsa1024);
    EVP_PKEY_free(k_ec256);
    EVP_PKEY_free(k_ec384);
    EVP_PKEY_free(k_ec521);
    return 0;
}

/* ---- tests ---- */

static void test_valid_each_alg(void **state)
{
    (void)state;
    struct { const char *alg, *kid; signer s; EVP_PKEY **k; } cases[] = {
        {"RS256", "rsa1", SIG_RS256, &k_rsa},
        {"PS256", "rsa1", SIG_PS256, &k_rsa},
        {"ES256", "ec256", SIG_ES256, &k_ec256},
        {"ES384", "ec384", SIG_ES384, &k_ec384},
        {"RS512", "rsa1", SIG_RS512, &k_rsa},
        {"PS384", "rsa1", SIG_PS384, &k_rsa},
        {"ES512", "ec521", SIG_ES512, &k_ec521},
    };
    jwt_policy p = policy();
    p.algs |= JWT_ALG_PS384 | JWT_ALG_ES512; /* not in the default set */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jwt_claims c;
        char *t = token(header(cases[i].alg, cases[i].kid), claims(), cases[i].s, *cases[i].k);
        assert_int_equal(verify_with(t, k_set, &p, &c), JWT_OK);
        assert_string_equal(c.iss, ISS);
        assert_string_equal(c.sub, "agent-1");
        assert_string_equal(c.azp, "collector");
        assert_string_equal(c.tenant, "shop");
        assert_int_equal(c.exp, NOW + 300);
    }
}

static void test_azp_falls_back_to_client_id(void **state)
{
    (void)state;
    jwt_policy p = policy();
    jwt_claims c;
    json_t *cl = with(with(claims(), "azp", NULL), "client_id", json_string("legacy-client"));
    assert_int_equal(verify_with(rs(cl), k_set, &p, &c), JWT_OK);
    assert_string_equal(c.azp, "legacy-client");
}

static void test_alg_none(void **state)
{
    (void)state;
    assert_int_equal(verify(token(header("none", "rsa1"), claims(), SIG_NONE, NULL)), JWT_BAD_ALG);
    assert_int_equal(verify(token(header("None", NULL), claims(), SIG_NONE, NULL)), JWT_BAD_ALG);
    /* Even a policy that allows every bit cannot let "none" through. */
    jwt_policy p = policy();
    p.algs = ~0u;
    assert_int_equal(verify_with(token(header("none", NULL), claims(), SIG_NONE, NULL), k_set, &p, NULL),
                     JWT_BAD_ALG);
}

/* The classic confusion: HS256 with the RSA public key as the HMAC secret. */
static void test_hs256_with_public_key(void **state)
{
    (void)state;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, k_rsa), 1);
    char *pem;
    long pem_len = BIO_get_mem_data(bio, &pem);
    BIGNUM *n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k_rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    unsigned char mod[512];
    int mod_len = BN_bn2bin(n, mod);
    BN_free(n);

    jwt_policy p = policy();
    p.algs = ~0u;
    char *hdr = dump(header("HS256", "rsa1")), *pay = dump(claims());
    char *t1 = token_raw(hdr, pay, SIG_HS256, NULL, (const unsigned char *)pem, (size_t)pem_len);
    char *t2 = token_raw(hdr, pay, SIG_HS256, NULL, mod, (size_t)mod_len);
    assert_int_equal(verify_with(t1, k_set, &p, NULL), JWT_BAD_ALG);
    assert_int_equal(verify_with(t2, k_set, &p, NULL), JWT_BAD_ALG);
    free(hdr);
    free(pay);
    BIO_free(bio);
    assert_int_equal(jwt_alg_parse("HS256"), 0);
}

static void test_alg_key_type_mismatch(void **state)
{
    (void)state;
    assert_int_equal(verify(token(header("RS256", "ec256"), claims(), SIG_RS256, k_rsa)), JWT_BAD_ALG);
    assert_int_equal(verify(token(header("ES256", "rsa1"), claims(), SIG_ES256, k_ec256)), JWT_BAD_ALG);
    /* ES384 is bound to P-384: a P-256 key cannot verify it. */
    assert_int_equal(verify(token(header("ES384", "ec256"), claims(), SIG_ES384, k_ec384)), JWT_BAD_ALG);
}

static void test_alg_not_allowed(void **state)
{
    (void)state;
    jwt_policy p = policy();
    p.algs = JWT_ALG_RS256;
    assert_int_equal(verify_with(token(header("PS256", "rsa1"), claims(), SIG_PS256, k_rsa), k_set, &p, NULL),
                     JWT_BAD_ALG);
    assert_int_equal(verify_with(token(header("ES256", "ec256"), claims(), SIG_ES256, k_ec256), k_set, &p, NULL),
                     JWT_BAD_ALG);
    assert_int_equal(verify(token(header("RS256", "rsa1"), claims(), SIG_RS256, k_rsa)), JWT_OK);
    assert_int_equal(verify(token(header(NULL, "rsa1"), claims(), SIG_RS256, k_rsa)), JWT_BAD_ALG);
}

static void test_unknown_kid(void **state)
{
    (void)state;
    assert_int_equal(verify(token(header("RS256", "rotated-away"), claims(), SIG_RS256, k_rsa)), JWT_UNKNOWN_KID);
    /* Without a kid, the only key that can verify RS256 is used. */
    assert_int_equal(verify(token(header("RS256", NULL), claims(), SIG_RS256, k_rsa)), JWT_OK);
}

/* Replace the payload of a signed token, keeping header and signature. */
static char *swap_payload(char *tok, json_t *pay)
{
    char *pj = dump(pay);
    char *pb = b64url((const unsigned char *)pj, strlen(pj));
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    size_t n = (size_t)(d1 - tok) + strlen(pb) + strlen(d2) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%.*s.%s%s", (int)(d1 - tok), tok, pb, d2);
    free(pj);
    free(pb);
    free(tok);
    return out;
}

static void test_tampered_payload(void **state)
{
    (void)state;
    char *t = swap_payload(rs(claims()), with(claims(), "tenant", json_string("other")));
    assert_int_equal(verify(t), JWT_BAD_SIGNATURE);
    t = swap_payload(token(header("ES256", "ec256"), claims(), SIG_ES256, k_ec256),
                     with(claims(), "exp", json_integer(NOW + 99999)));
    assert_int_equal(verify(t), JWT_BAD_SIGNATURE);
}

static void test_truncated_signature(void **state)
{
    (void)state;
    char *t = rs(claims());
    t[strlen(t) - 2] = '\0'; /* still valid base64url, one byte short */
    assert_int_equal(verify(t), JWT_BAD_SIGNATURE);
    t = token(header("ES256", "ec256"), claims(), SIG_ES256, k_ec256);
    t[strlen(t) - 2] = '\0'; /* 63 of 64 bytes */
    assert_int_equal(verify(t), JWT_BAD_SIGNATURE);
    t = rs(claims());
    strrchr(t, '.')[1] = '\0';
    assert_int_equal(verify(t), JWT_BAD_SIGNATURE);
    t = rs(claims());
    t[strlen(t) - 1] = '\0'; /* a length no base64url encoding has */
    assert_int_equal(verify(t), JWT_MALFORMED);
}

/* ES signatures in DER (what OpenSSL produces) are not JWS signatures. */
static void test_es_der_signature_rejected(void **state)
{
    (void)state;
    char *t = token(header("ES256", "ec256"), claims(), SIG_ES256, k_ec256);
    char *msg = strndup(t, (size_t)(strrchr(t, '.') - t));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[256];
    size_t n = sizeof der;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k_ec256), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &n, (const unsigned char *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(ctx);
    char *sb = b64url(der, n);
    size_t len = strlen(msg) + strlen(sb) + 2;
    char *bad = malloc(len);
    snprintf(bad, len, "%s.%s", msg, sb);
    assert_int_equal(verify(bad), JWT_BAD_SIGNATURE);
    free(sb);
    free(msg);
    free(t);
}

static void test_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "garbage", "eyJhbGciOiJSUzI1NiJ9.e30", "a.b.c.d", "..", ".e30.", "eyJhbGciOiJSUzI1NiJ9..AAAA",
        "eyJhbGciOiJSUzI1NiJ9.e30=.AAAA", /* padding */
        "eyJhbGciOiJSUzI1NiJ9.e3+0.AAAA", /* standard, not url, alphabet */
        "eyJhbGciOiJSUzI1NiJ9.e30.AA AA",
        "bm90IGpzb24.e30.AAAA",           /* header "not json" */
        "WyJSUzI1NiJd.e30.AAAA",          /* header is an array */
        "eyJhbGciOiJSUzI1NiJ9.e31.AAAA",  /* non-zero trailing bits */
    };
    jwt_policy p = policy();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(jwt_verify(bad[i], strlen(bad[i]), k_set, &p, NOW, NULL, NULL, 0), JWT_MALFORMED);
    assert_int_equal(jwt_verify(NULL, 0, k_set, &p, NOW, NULL, NULL, 0), JWT_MALFORMED);
    /* An embedded NUL inside the length given is not part of any encoding. */
    assert_int_equal(jwt_verify("eyJhbGciOiJSUzI1NiJ9.e30\0.AAAA", 30, k_set, &p, NOW, NULL, NULL, 0), JWT_MALFORMED);

    size_t big = 100 * 1024;
    char *t = malloc(big + 1);
    memset(t, 'A', big);
    t[100] = t[big - 100] = '.';
    t[big] = '\0';
    assert_int_equal(verify(t), JWT_MALFORMED);

    /* A valid token made longer than JWT_MAX_LEN by a large claim. */
    char *pad = malloc(JWT_MAX_LEN);
    memset(pad, 'x', JWT_MAX_LEN - 1);
    pad[JWT_MAX_LEN - 1] = '\0';
    assert_int_equal(verify(rs(with(claims(), "pad", json_string(pad)))), JWT_MALFORMED);
    free(pad);
}

static void test_header_crit_dup_and_kid_type(void **state)
{
    (void)state;
    json_t *h = header("RS256", "rsa1");
    json_object_set_new(h, "crit", json_pack("[s]", "exp"));
    assert_int_equal(verify(token(h, claims(), SIG_RS256, k_rsa)), JWT_MALFORMED);
    char *pay = dump(claims());
    char *t = token_raw("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"alg\":\"none\"}", pay, SIG_RS256, k_rsa, NULL, 0);
    assert_int_equal(verify(t), JWT_MALFORMED);
    t = token_raw("{\"alg\":\"RS256\",\"kid\":7}", pay, SIG_RS256, k_rsa, NULL, 0);
    assert_int_equal(verify(t), JWT_MALFORMED);
    free(pay);
    /* Same for the payload: duplicate claims, NUL inside a string, not an object. */
    char *hdr = dump(header("RS256", "rsa1"));
    const char *pays[] = {"{\"iss\":\"" ISS "\",\"iss\":\"x\"}", "{\"iss\":\"" ISS "\",\"sub\":\"a\\u0000b\"}", "[1]",
                          "{\"iss\":"};
    for (size_t i = 0; i < sizeof pays / sizeof pays[0]; i++)
        assert_int_equal(verify(token_raw(hdr, pays[i], SIG_RS256, k_rsa, NULL, 0)), JWT_MALFORMED);
    free(hdr);
}

static void test_times(void **state)
{
    (void)state;
    assert_int_equal(verify(rs(with(claims(), "exp", json_integer(NOW - 31)))), JWT_EXPIRED);
    assert_int_equal(verify(rs(with(claims(), "exp", json_integer(NOW - 30)))), JWT_OK); /* within skew */
    assert_int_equal(verify(rs(with(claims(), "exp", json_real((double)NOW + 5.5)))), JWT_OK);
    assert_int_equal(verify(rs(with(claims(), "exp", NULL))), JWT_MISSING_CLAIM);
    assert_int_equal(verify(rs(with(claims(), "exp", json_string("never")))), JWT_MISSING_CLAIM);
    assert_int_equal(verify(rs(with(claims(), "exp", json_integer(INT64_MAX)))), JWT_OK);
    assert_int_equal(verify(rs(with(claims(), "nbf", json_integer(NOW + 31)))), JWT_NOT_YET_VALID);
    assert_int_equal(verify(rs(with(claims(), "nbf", json_integer(NOW + 30)))), JWT_OK);
    assert_int_equal(verify(rs(with(claims(), "nbf", json_string("soon")))), JWT_MALFORMED);
    assert_int_equal(verify(rs(with(claims(), "iat", json_integer(NOW + 3600)))), JWT_NOT_YET_VALID);
    assert_int_equal(verify(rs(with(claims(), "iat", json_integer(NOW + 20)))), JWT_OK);
    assert_int_equal(verify(rs(with(claims(), "iat", NULL))), JWT_OK);
}

static void test_issuer(void **state)
{
    (void)state;
    assert_int_equal(verify(rs(with(claims(), "iss", json_string("https://evil.example.com/realms/telemetry")))),
                     JWT_BAD_ISSUER);
    assert_int_equal(verify(rs(with(claims(), "iss", json_string(ISS "/")))), JWT_BAD_ISSUER);
    assert_int_equal(verify(rs(with(claims(), "iss", NULL))), JWT_BAD_ISSUER);
    assert_int_equal(verify(rs(with(claims(), "iss", json_integer(1)))), JWT_BAD_ISSUER);
}

static void test_audience(void **state)
{
    (void)state;
    assert_int_equal(verify(rs(with(claims(), "aud", json_string("otlp-gateway")))), JWT_OK);
    assert_int_equal(verify(rs(with(claims(), "aud", json_pack("[s,s]", "a", "otlp-gateway")))), JWT_OK);
    assert_int_equal(verify(rs(with(claims(), "aud", json_string("account")))), JWT_BAD_AUDIENCE);
    assert_int_equal(verify(rs(with(claims(), "aud", json_pack("[s,i]", "account", 1)))), JWT_BAD_AUDIENCE);
    assert_int_equal(verify(rs(with(claims(), "aud", NULL))), JWT_BAD_AUDIENCE);
    jwt_policy p = policy();
    p.audience = NULL;
    assert_int_equal(verify_with(rs(with(claims(), "aud", NULL)), k_set, &p, NULL), JWT_OK);
}

static void test_types(void **state)
{
    (void)state;
    assert_int_equal(verify(rs(with(claims(), "typ", json_string("ID")))), JWT_BAD_TYPE);
    assert_int_equal(verify(rs(with(claims(), "typ", NULL))), JWT_OK);
    const char *ok[] = {"at+jwt", "AT+JWT", "jwt"};
    for (size_t i = 0; i < 3; i++) {
        json_t *h = with(header("RS256", "rsa1"), "typ", json_string(ok[i]));
        assert_int_equal(verify(token(h, claims(), SIG_RS256, k_rsa)), JWT_OK);
    }
    json_t *h = with(header("RS256", "rsa1"), "typ", json_string("JOSE+JSON"));
    assert_int_equal(verify(token(h, claims(), SIG_RS256, k_rsa)), JWT_BAD_TYPE);
    h = with(header("RS256", "rsa1"), "typ", NULL);
    assert_int_equal(verify(token(h, claims(), SIG_RS256, k_rsa)), JWT_OK);
}

static void test_tenant(void **state)
{
    (void)state;
    assert_int_equal(verify(rs(with(claims(), "tenant", NULL))), JWT_MISSING_CLAIM);
    assert_int_equal(verify(rs(with(claims(), "tenant", json_integer(5)))), JWT_MISSING_CLAIM);
    assert_int_equal(verify(rs(with(claims(), "tenant", json_string("")))), JWT_MISSING_CLAIM);
    char longname[200];
    memset(longname, 't', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    /* Never truncated: a cut tenant name could be another tenant's. */
    assert_int_equal(verify(rs(with(claims(), "tenant", json_string(longname)))), JWT_MISSING_CLAIM);

    jwt_policy p = policy();
    jwt_claims c;
    p.tenant_claim = "org.tenant";
    json_t *cl = with(claims(), "org", json_pack("{s:s}", "tenant", "nested"));
    assert_int_equal(verify_with(rs(cl), k_set, &p, &c), JWT_OK);
    assert_string_equal(c.tenant, "nested");
    assert_int_equal(verify_with(rs(claims()), k_set, &p, NULL), JWT_MISSING_CLAIM);
    p.tenant_claim = NULL;
    assert_int_equal(verify_with(rs(with(claims(), "tenant", NULL)), k_set, &p, &c), JWT_OK);
    assert_string_equal(c.tenant, "");
}

static void test_roles(void **state)
{
    (void)state;
    jwt_policy p = policy();
    const char *const have[] = {"otlp-write", "offline_access", NULL};
    const char *const missing[] = {"otlp-write", "admin", NULL};
    p.required_roles = have;
    assert_int_equal(verify_with(rs(claims()), k_set, &p, NULL), JWT_OK);
    assert_int_equal(verify_with(rs(with(claims(), "realm_access", NULL)), k_set, &p, NULL), JWT_MISSING_ROLE);
    p.required_roles = missing;
    assert_int_equal(verify_with(rs(claims()), k_set, &p, NULL), JWT_MISSING_ROLE);
}

/* Issue 13: require_typ makes the typ claim mandatory (Keycloak's access
 * tokens carry typ "Bearer"; without it a token may be another kind). */
static void test_require_typ(void **state)
{
    (void)state;
    jwt_policy p = policy();
    p.require_typ = 1;
    assert_int_equal(verify_with(rs(claims()), k_set, &p, NULL), JWT_OK);
    assert_int_equal(verify_with(rs(with(claims(), "typ", NULL)), k_set, &p, NULL), JWT_BAD_TYPE);
    assert_int_equal(verify_with(rs(with(claims(), "typ", json_string("ID"))), k_set, &p, NULL), JWT_BAD_TYPE);
    assert_int_equal(verify_with(rs(with(claims(), "typ", json_string("bearer"))), k_set, &p, NULL), JWT_BAD_TYPE);
}

/* Issue 13: allowed_clients checks azp (client_id when azp is absent) in
 * full; a token naming no client is refused when a list is configured. */
static void test_allowed_clients(void **state)
{
    (void)state;
    jwt_policy p = policy();
    const char *const allowed[] = {"collector", "legacy-client", NULL};
    p.allowed_clients = allowed;
    jwt_claims c;
    assert_int_equal(verify_with(rs(claims()), k_set, &p, &c), JWT_OK);
    assert_string_equal(c.azp, "collector");
    assert_int_equal(verify_with(rs(with(claims(), "azp", json_string("intruder"))), k_set, &p, NULL),
                     JWT_CLIENT_NOT_ALLOWED);
    /* azp wins over client_id: an allowed client_id does not excuse another azp. */
    json_t *cl = with(with(claims(), "azp", json_string("intruder")), "client_id", json_string("collector"));
    assert_int_equal(verify_with(rs(cl), k_set, &p, NULL), JWT_CLIENT_NOT_ALLOWED);
    cl = with(with(claims(), "azp", NULL), "client_id", json_string("legacy-client"));
    assert_int_equal(verify_with(rs(cl), k_set, &p, NULL), JWT_OK);
    assert_int_equal(verify_with(rs(with(claims(), "azp", NULL)), k_set, &p, NULL), JWT_CLIENT_NOT_ALLOWED);
    assert_int_equal(verify_with(rs(with(claims(), "azp", json_integer(1))), k_set, &p, NULL), JWT_CLIENT_NOT_ALLOWED);
    /* Compared in full: a longer id that the claims copy would truncate to an allowed one is not it. */
    char longid[300];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    char prefix[128];
    memcpy(prefix, longid, sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    const char *const long_allowed[] = {prefix, NULL};
    p.allowed_clients = long_allowed;
    assert_int_equal(verify_with(rs(with(claims(), "azp", json_string(longid))), k_set, &p, NULL),
                     JWT_CLIENT_NOT_ALLOWED);
    assert_int_equal(verify_with(rs(with(claims(), "azp", json_string(prefix))), k_set, &p, NULL), JWT_OK);
    assert_string_equal(jwt_status_reason(JWT_CLIENT_NOT_ALLOWED), "client_not_allowed");
}

static void test_jwks_parse_skips(void **state)
{
    (void)state;
    json_t *enc = with(jwk_of(k_rsa, "enc", 0), "use", json_string("enc"));
    json_t *oaep = with(jwk_of(k_rsa, "oaep", 0), "alg", json_string("RSA-OAEP"));
    json_t *oct = json_pack("{s:s,s:s,s:s}", "kty", "oct", "kid", "hmac", "k", "c2VjcmV0");
    json_t *okp = json_pack("{s:s,s:s,s:s,s:s}", "kty", "OKP", "kid", "ed", "crv", "Ed25519", "x",
                            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    json_t *p192 = with(jwk_of(k_ec256, "p192", 0), "crv", json_string("P-192"));
    json_t *crv384 = with(jwk_of(k_ec256, "wrongcrv", 0), "crv", json_string("P-384"));
    json_t *kidnum = with(jwk_of(k_ec256, NULL, 0), "kid", json_integer(3));
    json_t *ec_rs = with(jwk_of(k_ec256, "ecrs", 0), "alg", json_string("RS256"));
    char *doc = jwks_doc(12, jwk_of(k_rsa, "rsa1", 0), enc, oaep, oct, okp, jwk_of(k_rsa1024, "small", 0),
                         jwk_of(k_ec256, "offcurve", 1), p192, crv384, kidnum, ec_rs, jwk_of(k_ec384, NULL, 0));
    jwks *set = jwks_of(doc, 2, 10);
    assert_non_null(jwks_find(set, "rsa1"));
    assert_null(jwks_find(set, "enc"));
    assert_null(jwks_find(set, "small"));
    assert_null(jwks_find(set, "offcurve"));
    const jwk_key *k = jwks_find(set, "");
    assert_non_null(k);
    assert_int_equal(k->algs, JWT_ALG_ES384);
    assert_int_equal(jwks_find(set, "rsa1")->algs, JWT_ALG_RS256 | JWT_ALG_RS384 | JWT_ALG_RS512 | JWT_ALG_PS256 |
                                                       JWT_ALG_PS384 | JWT_ALG_PS512);
    jwks_free(set);
    free(doc);

    set = jwks_of("{\"keys\":[]}", 0, 0);
    assert_null(jwks_find(set, ""));
    jwks_free(set);
    set = jwks_of("{\"keys\":[1,\"x\",{}]}", 0, 3);
    jwks_free(set);

    const char *bad[] = {"", "garbage", "[]", "{\"keys\":{}}", "{\"keys\":[]", "{\"other\":[]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[64] = "";
        jwks *out = (jwks *)1;
        assert_int_equal(jwks_parse(bad[i], strlen(bad[i]), &out, NULL, err, sizeof err), -1);
        assert_null(out);
        assert_true(err[0] != '\0');
    }
}

static void test_jwk_alg_narrows(void **state)
{
    (void)state;
    char *doc = jwks_doc(1, with(jwk_of(k_rsa, "rs-only", 0), "alg", json_string("RS256")));
    jwks *set = jwks_of(doc, 1, 0);
    jwt_policy p = policy();
    assert_int_equal(verify_with(token(header("RS256", "rs-only"), claims(), SIG_RS256, k_rsa), set, &p, NULL),
                     JWT_OK);
    assert_int_equal(verify_with(token(header("PS256", "rs-only"), claims(), SIG_PS256, k_rsa), set, &p, NULL),
                     JWT_BAD_ALG);
    jwks_free(set);
    free(doc);
}

static void test_keys_without_kid(void **state)
{
    (void)state;
    jwt_policy p = policy();
    char *doc = jwks_doc(2, jwk_of(k_rsa, NULL, 0), jwk_of(k_ec256, "ec", 0));
    jwks *set = jwks_of(doc, 2, 0);
    assert_int_equal(verify_with(token(header("RS256", NULL), claims(), SIG_RS256, k_rsa), set, &p, NULL), JWT_OK);
    assert_int_equal(verify_with(token(header("RS256", ""), claims(), SIG_RS256, k_rsa), set, &p, NULL), JWT_OK);
    assert_int_equal(verify_with(token(header("ES256", NULL), claims(), SIG_ES256, k_ec256), set, &p, NULL), JWT_OK);
    assert_int_equal(verify_with(token(header("ES256", ""), claims(), SIG_ES256, k_ec256), set, &p, NULL),
                     JWT_BAD_ALG);
    jwks_free(set);
    free(doc);

    /* Two keys could verify RS256: a token without kid cannot choose. */
    doc = jwks_doc(2, jwk_of(k_rsa, NULL, 0), jwk_of(k_rsa, "again", 0));
    set = jwks_of(doc, 2, 0);
    assert_int_equal(verify_with(token(header("RS256", NULL), claims(), SIG_RS256, k_rsa), set, &p, NULL),
                     JWT_UNKNOWN_KID);
    jwks_free(set);
    free(doc);
    assert_null(jwks_find(k_set, ""));
}

static void test_peek(void **state)
{
    (void)state;
    char kid[64], iss[256], tiny[4];
    char *t = rs(claims());
    assert_int_equal(jwt_peek(t, strlen(t), kid, sizeof kid, iss, sizeof iss), 0);
    assert_string_equal(kid, "rsa1");
    assert_string_equal(iss, ISS);
    assert_int_equal(jwt_peek(t, strlen(t), kid, sizeof kid, tiny, sizeof tiny), -1);
    assert_int_equal(jwt_peek(t, strlen(t), NULL, 0, iss, sizeof iss), 0);
    free(t);
    t = token(header("RS256", NULL), with(claims(), "iss", NULL), SIG_NONE, NULL);
    assert_int_equal(jwt_peek(t, strlen(t), kid, sizeof kid, iss, sizeof iss), 0);
    assert_string_equal(kid, "");
    assert_string_equal(iss, "");
    free(t);
    assert_int_equal(jwt_peek("a.b", 3, kid, sizeof kid, iss, sizeof iss), -1);
    assert_int_equal(jwt_peek("bm90IGpzb24.e30.", 16, kid, sizeof kid, iss, sizeof iss), -1);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(jwt_alg_parse("RS256"), JWT_ALG_RS256);
    assert_int_equal(jwt_alg_parse("PS512"), JWT_ALG_PS512);
    assert_int_equal(jwt_alg_parse("ES512"), JWT_ALG_ES512);
    assert_int_equal(jwt_alg_parse("rs256"), 0);
    assert_int_equal(jwt_alg_parse("none"), 0);
    assert_int_equal(jwt_alg_parse(NULL), 0);
    assert_string_equal(jwt_status_reason(JWT_MALFORMED), "malformed");
    assert_string_equal(jwt_status_reason(JWT_BAD_ALG), "bad_alg");
    assert_string_equal(jwt_status_reason(JWT_UNKNOWN_KID), "unknown_kid");
    assert_string_equal(jwt_status_reason(JWT_MISSING_ROLE), "missing_role");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_each_alg),
        cmocka_unit_test(test_azp_falls_back_to_client_id),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs256_with_public_key),
        cmocka_unit_test(test_alg_key_type_mismatch),
        cmocka_unit_test(test_alg_not_allowed),
        cmocka_unit_test(test_unknown_kid),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_truncated_signature),
        cmocka_unit_test(test_es_der_signature_rejected),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_header_crit_dup_and_kid_type),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_tenant),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_require_typ),
        cmocka_unit_test(test_allowed_clients),
        cmocka_unit_test(test_jwks_parse_skips),
        cmocka_unit_test(test_jwk_alg_narrows),
        cmocka_unit_test(test_keys_without_kid),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
