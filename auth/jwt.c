/* jwt: JWS compact tokens verified against a JWKS with OpenSSL 3 EVP and
 * jansson. See jwt.h for the contract; the comments here say why each check
 * is where it is. */
#include "jwt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "codec.h"

/* A JWKS is fetched from the issuer, but still bounded: a hostile or broken
 * endpoint must not make us hold megabytes of keys. */
#define JWKS_MAX_LEN (1u << 20)
#define JWKS_MAX_KEYS 64
/* RSA keys below 2048 bits are too weak to trust; above 8192 bits each
 * verification costs too much (work per token must stay bounded). */
#define JWK_RSA_MIN_BITS 2048
#define JWK_RSA_MAX_BYTES 1024
#define JWK_RSA_MAX_E_BYTES 8

enum jwt_kind { JWT_KIND_RS, JWT_KIND_PS, JWT_KIND_ES };

/* Per algorithm: how to verify it. ec_len is the size of one coordinate
 * (and of R and of S) for the curve the ES algorithm is bound to. */
typedef struct jwt_alg_info {
    char name[6];
    unsigned bit;
    enum jwt_kind kind;
    int hash_bits;
    size_t ec_len;
    const char *ec_group;
    const char *ec_crv;
} jwt_alg_info;

static const jwt_alg_info jwt_alg_table[] = {
    {"RS256", JWT_ALG_RS256, JWT_KIND_RS, 256, 0, NULL, NULL},
    {"RS384", JWT_ALG_RS384, JWT_KIND_RS, 384, 0, NULL, NULL},
    {"RS512", JWT_ALG_RS512, JWT_KIND_RS, 512, 0, NULL, NULL},
    {"PS256", JWT_ALG_PS256, JWT_KIND_PS, 256, 0, NULL, NULL},
    {"PS384", JWT_ALG_PS384, JWT_KIND_PS, 384, 0, NULL, NULL},
    {"PS512", JWT_ALG_PS512, JWT_KIND_PS, 512, 0, NULL, NULL},
    {"ES256", JWT_ALG_ES256, JWT_KIND_ES, 256, 32, "prime256v1", "P-256"},
    {"ES384", JWT_ALG_ES384, JWT_KIND_ES, 384, 48, "secp384r1", "P-384"},
    {"ES512", JWT_ALG_ES512, JWT_KIND_ES, 512, 66, "secp521r1", "P-521"},
};
#define JWT_N_ALGS (sizeof jwt_alg_table / sizeof jwt_alg_table[0])
#define JWT_ALGS_RSA (JWT_ALG_RS256 | JWT_ALG_RS384 | JWT_ALG_RS512 | JWT_ALG_PS256 | JWT_ALG_PS384 | JWT_ALG_PS512)

static const jwt_alg_info *jwt_alg_by_bit(unsigned bit)
{
    for (size_t i = 0; i < JWT_N_ALGS; i++)
        if (jwt_alg_table[i].bit == bit)
            return &jwt_alg_table[i];
    return NULL;
}

unsigned jwt_alg_parse(const char *name)
{
    if (!name)
        return 0;
    /* Exact, case-sensitive: JOSE algorithm names are case-sensitive, and
     * "none" and HS* are simply absent from the table. */
    for (size_t i = 0; i < JWT_N_ALGS; i++)
        if (strcmp(jwt_alg_table[i].name, name) == 0)
            return jwt_alg_table[i].bit;
    return 0;
}

const char *jwt_status_reason(jwt_status st)
{
    switch (st) {
    case JWT_OK: return "ok";
    case JWT_MALFORMED: return "malformed";
    case JWT_BAD_ALG: return "bad_alg";
    case JWT_UNKNOWN_KID: return "unknown_kid";
    case JWT_BAD_SIGNATURE: return "bad_signature";
    case JWT_EXPIRED: return "expired";
    case JWT_NOT_YET_VALID: return "not_yet_valid";
    case JWT_BAD_ISSUER: return "bad_issuer";
    case JWT_BAD_AUDIENCE: return "bad_audience";
    case JWT_BAD_TYPE: return "bad_type";
    case JWT_MISSING_CLAIM: return "missing_claim";
    case JWT_MISSING_ROLE: return "missing_role";
    case JWT_CLIENT_NOT_ALLOWED: return "client_not_allowed";
    }
    return "unknown";
}

static void jwt_set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* ---- base64url (RFC 4648 §5, no padding, RFC 7515 §2) ---- */

/* Decodes into out (cap bytes). Rejects padding, foreign characters, a
 * length that no encoding produces, and non-zero unused trailing bits: each
 * byte string then has exactly one accepted encoding, so a signature cannot
 * be re-encoded into a "different" token. */
static int jwt_b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t cap, size_t *outlen)
{
    return codec_base64_decode(in, inlen, CODEC_B64_URL | CODEC_B64_CANONICAL, out, cap, outlen);
}

/* Decodes a JWK member that must be a base64url string of 1..cap bytes. */
static int jwk_b64_member(const json_t *jk, const char *name, unsigned char *out, size_t cap, size_t *outlen)
{
    const json_t *v = json_object_get(jk, name);
    if (!json_is_string(v))
        return -1;
    if (jwt_b64url_decode(json_string_value(v), json_string_length(v), out, cap, outlen) < 0 || *outlen == 0)
        return -1;
    return 0;
}

/* ---- JWK -> EVP_PKEY ---- */

static EVP_PKEY *jwk_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (!pkey)
        return NULL;
    /* fromdata only imports; public_check validates (EC: on the curve, not
     * the point at infinity, right order; RSA: sane n and e). */
    EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = chk && EVP_PKEY_public_check(chk) == 1;
    EVP_PKEY_CTX_free(chk);
    if (!ok) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

static EVP_PKEY *jwk_rsa(const json_t *jk, unsigned *algs)
{
    unsigned char nb[JWK_RSA_MAX_BYTES], eb[JWK_RSA_MAX_E_BYTES];
    size_t nlen, elen;
    if (jwk_b64_member(jk, "n", nb, sizeof nb, &nlen) < 0 || jwk_b64_member(jk, "e", eb, sizeof eb, &elen) < 0)
        return NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = BN_bin2bn(nb, (int)nlen, NULL), *e = BN_bin2bn(eb, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (n && e && bld && BN_num_bits(n) >= JWK_RSA_MIN_BITS &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        pkey = jwk_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    *algs = JWT_ALGS_RSA;
    return pkey;
}

static EVP_PKEY *jwk_ec(const json_t *jk, unsigned *algs)
{
    const char *crv = json_string_value(json_object_get(jk, "crv"));
    const jwt_alg_info *ai = NULL;
    for (size_t i = 0; crv && i < JWT_N_ALGS; i++)
        if (jwt_alg_table[i].ec_crv && strcmp(jwt_alg_table[i].ec_crv, crv) == 0)
            ai = &jwt_alg_table[i];
    if (!ai)
        return NULL;
    /* Uncompressed SEC1 point; x and y must be exactly the coordinate size
     * (RFC 7518 §6.2.1.2), which also rules out compressed-point tricks. */
    unsigned char pt[1 + 2 * 66];
    size_t xlen, ylen;
    pt[0] = 0x04;
    if (jwk_b64_member(jk, "x", pt + 1, ai->ec_len, &xlen) < 0 || xlen != ai->ec_len ||
        jwk_b64_member(jk, "y", pt + 1 + ai->ec_len, ai->ec_len, &ylen) < 0 || ylen != ai->ec_len)
        return NULL;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ai->ec_group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * ai->ec_len))
        pkey = jwk_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    *algs = ai->bit;
    return pkey;
}

/* One JWK into *out; -1 means "skip this key" (not for us or malformed). */
static int jwk_load(const json_t *jk, jwk_key *out)
{
    if (!json_is_object(jk))
        return -1;
    const json_t *use = json_object_get(jk, "use");
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return -1;
    const json_t *kid = json_object_get(jk, "kid");
    if (kid && (!json_is_string(kid) || json_string_length(kid) >= sizeof out->kid))
        return -1;
    const char *kty = json_string_value(json_object_get(jk, "kty"));
    unsigned algs = 0;
    EVP_PKEY *pkey = NULL;
    if (kty && strcmp(kty, "RSA") == 0)
        pkey = jwk_rsa(jk, &algs);
    else if (kty && strcmp(kty, "EC") == 0)
        pkey = jwk_ec(jk, &algs);
    if (!pkey)
        return -1;
    const json_t *alg = json_object_get(jk, "alg");
    if (alg) {
        /* The key's own "alg" pins it to one algorithm; one we don't know
         * (RSA-OAEP, HS256, ...) or one that contradicts the key type means
         * the key is not a signing key we can use. */
        unsigned a = jwt_alg_parse(json_string_value(alg));
        if (!(a & algs)) {
            EVP_PKEY_free(pkey);
            return -1;
        }
        algs = a;
    }
    memset(out, 0, sizeof *out);
    if (kid)
        memcpy(out->kid, json_string_value(kid), json_string_length(kid));
    out->pkey = pkey;
    out->algs = algs;
    return 0;
}

int jwks_parse(const char *json, size_t len, jwks **out, size_t *skipped, char *err, size_t errlen)
{
    *out = NULL;
    if (skipped)
        *skipped = 0;
    if (!json || len > JWKS_MAX_LEN) {
        jwt_set_err(err, errlen, "JWKS missing or too large");
        return -1;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    const json_t *arr = json_object_get(doc, "keys");
    if (!json_is_array(arr)) {
        jwt_set_err(err, errlen, doc ? "JWKS has no \"keys\" array" : "JWKS is not valid JSON");
        json_decref(doc);
        return -1;
    }
    jwks *set = calloc(1, sizeof *set);
    size_t n = json_array_size(arr), cap = n < JWKS_MAX_KEYS ? n : JWKS_MAX_KEYS;
    if (!set || (cap && !(set->keys = calloc(cap, sizeof *set->keys)))) {
        free(set);
        json_decref(doc);
        jwt_set_err(err, errlen, "out of memory");
        return -1;
    }
    size_t skip = 0;
    for (size_t i = 0; i < n; i++) {
        if (set->n_keys == cap || jwk_load(json_array_get(arr, i), &set->keys[set->n_keys]) < 0)
            skip++;
        else
            set->n_keys++;
    }
    json_decref(doc);
    if (skipped)
        *skipped = skip;
    *out = set;
    return 0;
}

void jwks_free(jwks *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n_keys; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    free(k->keys);
    free(k);
}

const jwk_key *jwks_find(const jwks *k, const char *kid)
{
    if (!k)
        return NULL;
    if (!kid)
        kid = "";
    for (size_t i = 0; i < k->n_keys; i++)
        if (strcmp(k->keys[i].kid, kid) == 0)
            return &k->keys[i];
    return NULL;
}

/* ---- token structure ---- */

/* The three decoded parts of a compact JWS; buf holds all of them. */
typedef struct jwt_parts {
    unsigned char *buf;
    const unsigned char *hdr, *pay, *sig;
    size_t hdr_len, pay_len, sig_len;
    size_t signed_len; /* bytes of "header.payload" in the token */
} jwt_parts;

static int jwt_split(const char *token, size_t len, jwt_parts *pt)
{
    memset(pt, 0, sizeof *pt);
    if (!token || len == 0 || len > JWT_MAX_LEN)
        return -1;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return -1;
    size_t hl = (size_t)(d1 - token), pl = (size_t)(d2 - d1 - 1), sl = len - (size_t)(d2 + 1 - token);
    /* Decoded parts are always shorter than the token: one buffer fits all. */
    if (hl == 0 || pl == 0 || !(pt->buf = malloc(len)))
        return -1;
    unsigned char *h = pt->buf, *p = h + hl, *s = p + pl;
    if (jwt_b64url_decode(token, hl, h, hl, &pt->hdr_len) < 0 ||
        jwt_b64url_decode(d1 + 1, pl, p, pl, &pt->pay_len) < 0 ||
        jwt_b64url_decode(d2 + 1, sl, s, sl, &pt->sig_len) < 0) {
        free(pt->buf);
        pt->buf = NULL;
        return -1;
    }
    pt->hdr = h;
    pt->pay = p;
    pt->sig = s;
    pt->signed_len = (size_t)(d2 - token);
    return 0;
}

/* A JSON object or NULL. Duplicate members are rejected so that no two
 * parsers can read different claims out of the same token; jansson also
 * rejects "\u0000" in strings, so C strings below are never cut short. */
static json_t *jwt_json_object(const unsigned char *s, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)s, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Copies a string member into dst; absent -> "". -1 if present but not a
 * string or too long to copy whole. */
static int jwt_copy_member(const json_t *obj, const char *name, char *dst, size_t cap)
{
    const json_t *v = json_object_get(obj, name);
    if (!dst || !cap)
        return v && !json_is_string(v) ? -1 : 0;
    dst[0] = '\0';
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return -1;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int jwt_peek(const char *token, size_t len, char *kid, size_t kidlen, char *iss, size_t isslen)
{
    jwt_parts pt;
    if (jwt_split(token, len, &pt) < 0)
        return -1;
    json_t *h = jwt_json_object(pt.hdr, pt.hdr_len), *p = jwt_json_object(pt.pay, pt.pay_len);
    /* A value that does not fit is refused rather than truncated: a cut
     * kid or iss would route the token to the wrong issuer or key. */
    int rc = h && p && jwt_copy_member(h, "kid", kid, kidlen) == 0 && jwt_copy_member(p, "iss", iss, isslen) == 0
                 ? 0 : -1;
    json_decref(h);
    json_decref(p);
    free(pt.buf);
    return rc;
}

/* ---- signature ---- */

static const EVP_MD *jwt_md(int bits)
{
    return bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384() : EVP_sha512();
}

/* JWS carries ECDSA signatures as fixed-size R||S (RFC 7518 §3.4); OpenSSL
 * verifies DER ECDSA-Sig-Value. Returns the DER length, 0 on a bad size. */
static int jwt_es_to_der(const unsigned char *sig, size_t sig_len, size_t ec_len, unsigned char **der)
{
    if (sig_len != 2 * ec_len)
        return 0;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)ec_len, NULL), *s = BN_bin2bn(sig + ec_len, (int)ec_len, NULL);
    int n = 0;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es now */
        n = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return n > 0 ? n : 0;
}

static bool jwt_sig_ok(const jwk_key *key, const jwt_alg_info *ai, const char *msg, size_t msg_len,
                       const unsigned char *sig, size_t sig_len)
{
    unsigned char *der = NULL;
    if (ai->kind == JWT_KIND_ES) {
        int n = jwt_es_to_der(sig, sig_len, ai->ec_len, &der);
        if (n == 0)
            return false;
        sig = der;
        sig_len = (size_t)n;
    } else if (sig_len != (size_t)EVP_PKEY_get_size(key->pkey)) {
        return false; /* RSA signatures are exactly modulus-sized */
    }
    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = jwt_md(ai->hash_bits);
    if (ctx && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key->pkey) == 1) {
        int set = 1;
        if (ai->kind == JWT_KIND_RS)
            set = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
        else if (ai->kind == JWT_KIND_PS)
            /* RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash. */
            set = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
                  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
        ok = set && EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)msg, msg_len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

/* ---- claims ---- */

/* A JSON number as whole seconds, saturated to the int64 range. */
static int jwt_num(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_real(v))
        return -1;
    double d = json_real_value(v);
    *out = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
    return 0;
}

static int64_t jwt_add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* Whether arr (anything; non-arrays hold nothing) holds the string want. */
static bool jwt_array_has(const json_t *arr, const char *want)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return true;
    return false;
}

static bool jwt_aud_ok(const json_t *aud, const char *want)
{
    return json_is_string(aud) ? strcmp(json_string_value(aud), want) == 0 : jwt_array_has(aud, want);
}

/* The tenant claim by its literal name, else as a dotted path into nested
 * objects (Keycloak mappers nest "org.tenant" as {"org":{"tenant":..}}). */
static const json_t *jwt_claim_path(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    if (v)
        return v;
    const char *dot;
    while (json_is_object(obj) && (dot = strchr(name, '.'))) {
        obj = json_object_getn(obj, name, (size_t)(dot - name));
        name = dot + 1;
    }
    return json_is_object(obj) ? json_object_get(obj, name) : NULL;
}

/* Copies a string claim, truncating: iss/sub/azp are for logs and metrics;
 * a value the caller acts on exactly (tenant) is never truncated. */
static void jwt_copy_trunc(const json_t *v, char *dst, size_t cap)
{
    if (json_is_string(v))
        snprintf(dst, cap, "%s", json_string_value(v));
}

static jwt_status jwt_check_claims(const json_t *c, const jwt_policy *p, int64_t now, jwt_claims *out,
                                   const char **why)
{
    int64_t skew = p->skew_s > 0 ? p->skew_s : 0, exp;
    const json_t *iss = json_object_get(c, "iss");
    if (!p->issuer || !json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0)
        return *why = "issuer not accepted", JWT_BAD_ISSUER;
    if (p->audience && !jwt_aud_ok(json_object_get(c, "aud"), p->audience))
        return *why = "audience not accepted", JWT_BAD_AUDIENCE;
    if (jwt_num(json_object_get(c, "exp"), &exp) < 0)
        return *why = "exp missing", JWT_MISSING_CLAIM;
    if (now > jwt_add_sat(exp, skew))
        return *why = "token expired", JWT_EXPIRED;
    /* Absent nbf/iat stay at INT64_MIN and so never fail the check. */
    int64_t nbf_v = INT64_MIN, iat_v = INT64_MIN, later = jwt_add_sat(now, skew);
    const json_t *nbf = json_object_get(c, "nbf"), *iat = json_object_get(c, "iat");
    if ((nbf && jwt_num(nbf, &nbf_v) < 0) || (iat && jwt_num(iat, &iat_v) < 0))
        return *why = "nbf or iat not a number", JWT_MALFORMED;
    if (later < nbf_v || later < iat_v)
        return *why = "token not yet valid", JWT_NOT_YET_VALID;
    const json_t *typ = json_object_get(c, "typ");
    if (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "Bearer") != 0))
        return *why = "not an access token", JWT_BAD_TYPE;
    if (!typ && p->require_typ)
        return *why = "typ claim missing", JWT_BAD_TYPE;
    const json_t *azp = json_object_get(c, "azp");
    const json_t *client = azp ? azp : json_object_get(c, "client_id");
    if (p->allowed_clients != NULL) {
        /* The whole value, not the truncated copy in out->azp. */
        bool allowed = false;
        for (const char *const *a = p->allowed_clients; json_is_string(client) && *a && !allowed; a++)
            allowed = strlen(*a) == json_string_length(client) && strcmp(*a, json_string_value(client)) == 0;
        if (!allowed)
            return *why = "client not allowed", JWT_CLIENT_NOT_ALLOWED;
    }
    const json_t *ten = p->tenant_claim ? jwt_claim_path(c, p->tenant_claim) : NULL;
    if (p->tenant_claim &&
        (!json_is_string(ten) || json_string_length(ten) == 0 || json_string_length(ten) >= sizeof out->tenant))
        return *why = "tenant claim missing", JWT_MISSING_CLAIM;
    const json_t *roles = json_object_get(json_object_get(c, "realm_access"), "roles");
    for (const char *const *r = p->required_roles; r && *r; r++)
        if (!jwt_array_has(roles, *r))
            return *why = "required role missing", JWT_MISSING_ROLE;
    jwt_copy_trunc(iss, out->iss, sizeof out->iss);
    jwt_copy_trunc(json_object_get(c, "sub"), out->sub, sizeof out->sub);
    jwt_copy_trunc(client, out->azp, sizeof out->azp);
    jwt_copy_trunc(ten, out->tenant, sizeof out->tenant);
    out->exp = exp;
    return JWT_OK;
}

/* The key for a token: by kid when the header names one; without a kid only
 * when exactly one key in the set may verify this algorithm (so a token can
 * never pick among keys by trial). */
static jwt_status jwt_pick_key(const jwks *keys, const json_t *kid, unsigned alg, const jwk_key **out)
{
    const jwk_key *found = NULL;
    size_t n = 0;
    bool kid_seen = false;
    for (size_t i = 0; keys && i < keys->n_keys; i++) {
        const jwk_key *k = &keys->keys[i];
        if (kid) {
            if (strcmp(k->kid, json_string_value(kid)) != 0)
                continue;
            kid_seen = true;
        }
        if ((k->algs & alg) && n++ == 0)
            found = k;
    }
    if (kid && found) {
        *out = found; /* first match wins on duplicate kids */
        return JWT_OK;
    }
    if (kid)
        return kid_seen ? JWT_BAD_ALG : JWT_UNKNOWN_KID;
    if (n != 1)
        return JWT_UNKNOWN_KID;
    *out = found;
    return JWT_OK;
}

/* Header checks, key choice and signature; the payload is untouched here. */
static jwt_status jwt_check_header(const json_t *h, const jwks *keys, const jwt_policy *p, const jwt_alg_info **ai,
                                   const jwk_key **key, const char **why)
{
    unsigned alg = jwt_alg_parse(json_string_value(json_object_get(h, "alg")));
    if (!alg || !(alg & p->algs))
        return *why = "algorithm not allowed", JWT_BAD_ALG;
    *ai = jwt_alg_by_bit(alg);
    /* RFC 7515 §4.1.11: an extension we do not understand must fail, and we
     * understand none. */
    if (json_object_get(h, "crit"))
        return *why = "unsupported crit header", JWT_MALFORMED;
    const json_t *typ = json_object_get(h, "typ");
    if (typ && (!json_is_string(typ) || (strcasecmp(json_string_value(typ), "JWT") != 0 &&
                                         strcasecmp(json_string_value(typ), "at+jwt") != 0)))
        return *why = "unsupported token type", JWT_BAD_TYPE;
    const json_t *kid = json_object_get(h, "kid");
    if (kid && !json_is_string(kid))
        return *why = "kid not a string", JWT_MALFORMED;
    jwt_status st = jwt_pick_key(keys, kid, alg, key);
    if (st == JWT_BAD_ALG)
        *why = "algorithm does not match the key";
    else if (st != JWT_OK)
        *why = "no key for this token";
    return st;
}

jwt_status jwt_verify(const char *token, size_t len, const jwks *keys, const jwt_policy *p, int64_t now,
                      jwt_claims *out, char *err, size_t errlen)
{
    jwt_claims scratch;
    if (!out)
        out = &scratch;
    memset(out, 0, sizeof *out);
    jwt_set_err(err, errlen, "");
    jwt_parts pt;
    if (jwt_split(token, len, &pt) < 0) {
        jwt_set_err(err, errlen, "not a compact JWS");
        return JWT_MALFORMED;
    }
    const char *why = "malformed header or payload";
    const jwt_alg_info *ai = NULL;
    const jwk_key *key = NULL;
    json_t *pay = NULL, *hdr = jwt_json_object(pt.hdr, pt.hdr_len);
    jwt_status st = hdr ? jwt_check_header(hdr, keys, p, &ai, &key, &why) : JWT_MALFORMED;
    if (st == JWT_OK && !jwt_sig_ok(key, ai, token, pt.signed_len, pt.sig, pt.sig_len)) {
        why = "signature does not verify";
        st = JWT_BAD_SIGNATURE;
    }
    /* Only a signed payload is parsed: unauthenticated input never reaches
     * the claim code. */
    if (st == JWT_OK)
        st = (pay = jwt_json_object(pt.pay, pt.pay_len)) ? jwt_check_claims(pay, p, now, out, &why) : JWT_MALFORMED;
    if (st != JWT_OK) {
        memset(out, 0, sizeof *out);
        jwt_set_err(err, errlen, why);
    }
    json_decref(hdr);
    json_decref(pay);
    free(pt.buf);
    return st;
}
