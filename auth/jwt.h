/* jwt: verification of JWS compact-serialised access tokens (as Keycloak
 * issues them) against a JSON Web Key Set, with OpenSSL directly.
 *
 * Why not libjwt: Debian's libjwt 1.10 has no PS256/384/512, does no claim
 * checks, wants PEM keys (a PEM round trip per verification), and verifies an
 * HS256 token with an RSA public key used as the HMAC secret. Here the header
 * `alg` must be in the policy's allowed set AND match the key's type (RSA for
 * RS and PS, EC with the right curve for ES) before any signature check;
 * `none` and HS* are never accepted.
 *
 * Everything is pure and thread-safe: a jwks is immutable once parsed and may
 * be shared by threads (the owner frees it when no verifier uses it). */
#ifndef GW_JWT_H
#define GW_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

typedef enum {
    JWT_ALG_RS256 = 1u << 0, JWT_ALG_RS384 = 1u << 1, JWT_ALG_RS512 = 1u << 2,
    JWT_ALG_PS256 = 1u << 3, JWT_ALG_PS384 = 1u << 4, JWT_ALG_PS512 = 1u << 5,
    JWT_ALG_ES256 = 1u << 6, JWT_ALG_ES384 = 1u << 7, JWT_ALG_ES512 = 1u << 8,
} jwt_alg;
#define JWT_ALGS_DEFAULT (JWT_ALG_RS256 | JWT_ALG_RS384 | JWT_ALG_RS512 | JWT_ALG_PS256 | JWT_ALG_ES256 | JWT_ALG_ES384)

/* "RS256" -> JWT_ALG_RS256; 0 if unknown or unsupported (none, HS*). */
unsigned jwt_alg_parse(const char *name);

typedef struct jwk_key {
    char kid[128];
    EVP_PKEY *pkey;   /* owned by the jwks */
    unsigned algs;    /* algorithms this key may verify (from kty/crv, narrowed by its "alg" if present) */
} jwk_key;

typedef struct jwks {
    jwk_key *keys;
    size_t n_keys;
} jwks;

/* Parse a JWKS document ({"keys":[...]}). Keys that are not for signatures
 * (use other than "sig"), of unsupported types (oct, OKP), or malformed are
 * skipped, not fatal; skipped counts them. -1 (err set) only when the document
 * itself is not a JWKS. */
int jwks_parse(const char *json, size_t len, jwks **out, size_t *skipped, char *err, size_t errlen);
void jwks_free(jwks *k);
const jwk_key *jwks_find(const jwks *k, const char *kid);

typedef enum {
    JWT_OK = 0,
    JWT_MALFORMED,       /* not three base64url parts, bad JSON, too long */
    JWT_BAD_ALG,         /* alg none/HS*, not allowed, or not matching the key type */
    JWT_UNKNOWN_KID,     /* no key with the header's kid (caller may refresh the JWKS) */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,   /* nbf (or iat) in the future beyond the skew */
    JWT_BAD_ISSUER,
    JWT_BAD_AUDIENCE,
    JWT_BAD_TYPE,        /* typ present and not "JWT"/"at+jwt" (case-insensitive), or Keycloak typ claim not "Bearer"
                          * (or absent when policy->require_typ) */
    JWT_MISSING_CLAIM,   /* exp, or the tenant claim, missing */
    JWT_MISSING_ROLE,    /* a required realm role is absent */
    JWT_CLIENT_NOT_ALLOWED, /* azp (or client_id) absent or not in policy->allowed_clients */
} jwt_status;

/* Short label for metrics: "malformed", "bad_alg", "unknown_kid", ... */
const char *jwt_status_reason(jwt_status st);

typedef struct jwt_policy {
    const char *issuer;            /* exact match with iss */
    const char *audience;          /* must be in aud (string or array); NULL: not checked */
    unsigned algs;                 /* allowed algorithms (jwt_alg bits) */
    int64_t skew_s;                /* allowed clock skew for exp/nbf/iat */
    const char *tenant_claim;      /* claim naming the tenant (e.g. "tenant"); NULL: none */
    const char *const *required_roles; /* NULL-terminated; each must be in realm_access.roles */
    const char *const *allowed_clients; /* NULL-terminated; NULL: any. The azp claim (client_id when azp is
                                         * absent) must be present and equal one of them, exactly */
    int require_typ;               /* the typ claim must be present (and, as always, "Bearer") */
} jwt_policy;

typedef struct jwt_claims {
    char iss[256];
    char sub[128];
    char azp[128];   /* azp, or client_id when azp is absent */
    char tenant[128]; /* value of policy->tenant_claim, "" if none configured */
    int64_t exp;
} jwt_claims;

/* Read the unverified header and payload just enough to route the token:
 * its kid and iss. 0 or -1 (malformed). Never trust these for anything else. */
int jwt_peek(const char *token, size_t len, char *kid, size_t kidlen, char *iss, size_t isslen);

/* Full verification at time `now` (unix seconds). Tokens longer than
 * JWT_MAX_LEN are malformed. err gets a short client-safe detail. */
#define JWT_MAX_LEN 16384
jwt_status jwt_verify(const char *token, size_t len, const jwks *keys, const jwt_policy *p, int64_t now,
                      jwt_claims *out, char *err, size_t errlen);

#endif
