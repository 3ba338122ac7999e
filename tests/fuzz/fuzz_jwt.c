/* libFuzzer: JWT verification and JWKS parsing, as the auth layer sees
 * untrusted bytes. The first byte picks the mode: even -> the rest is a JWKS
 * document; odd -> the rest is a bearer token, peeked at and verified
 * against a fixed JWKS (one RSA 2048 and one EC P-256 public key, generated
 * once for this file; the private halves were discarded, so only the seed
 * tokens verify). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "jwt.h"

/* The time the seed tokens were issued for, so they pass the claim checks. */
#define FUZZ_NOW ((int64_t)1800000000)

static const char fuzz_jwks_json[] =
    "{\"keys\":[{\"kid\":\"fz-rsa\",\"kty\":\"RSA\",\"use\":\"sig\",\"n\":\"oaglYtvwnIOesqpSIN8En5yLd0H99k0im1yjXnH82Z"
    "FAL9ErZwT2pwBe8V1Eep_YT7R96rQzMkQH9psxzr_O4iMNwHg2oYjSebT28x1tompd9CA-02FohgaKJWHvZ6CXr_F87mIZud"
    "zhpaaFnqONhXkgrDD8m5oKrYs9RcDt4yRkM4De4mrWiijjbzjhYmrwcr-_7AK046fN6uUyUdSl-Yhxj4WkxPMkD8RyA5SJ_j"
    "ebcSbEwNj86SSTe8pqBeRdTufKW_3p9Rk1mTD3IiAaQUZ_WmC3fL3_fPRjGiHRTMEnfiKLgjiwJUpUyU32N9deszLpue7oAh"
    "ZfXxkYzVfa2w\",\"e\":\"AQAB\"},"
    "{\"kid\":\"fz-ec\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"J0jFHGFQEVWkSpU_PbIE52ym4WbgGU5DSmcDX59A3hU\",\"y\":\"o"
    "t-o7kevbFQpySW9l1Zvj4yELe_4n9_rDwONakPjGaI\"}]}";

static jwks *fuzz_keys;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t skipped;
    if (jwks_parse(fuzz_jwks_json, sizeof fuzz_jwks_json - 1, &fuzz_keys, &skipped, NULL, 0) < 0 ||
        fuzz_keys->n_keys != 2)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    if ((data[0] & 1) == 0) {
        jwks *set = NULL;
        char err[64];
        if (jwks_parse(in, len, &set, NULL, err, sizeof err) == 0)
            for (size_t i = 0; i < set->n_keys; i++)
                if (jwks_find(set, set->keys[i].kid) == NULL || set->keys[i].algs == 0)
                    abort();
        jwks_free(set);
        return 0;
    }
    char kid[128], iss[256], err[64];
    (void)jwt_peek(in, len, kid, sizeof kid, iss, sizeof iss);
    static const char *const roles[] = {"otlp-write", NULL};
    const jwt_policy p = {.issuer = "https://sso.example.com/realms/fuzz", .audience = "otlp-gateway",
                          .algs = JWT_ALGS_DEFAULT, .skew_s = 60, .tenant_claim = "tenant", .required_roles = roles};
    jwt_claims c;
    jwt_status st = jwt_verify(in, len, fuzz_keys, &p, FUZZ_NOW, &c, err, sizeof err);
    /* Acceptance implies every policy check passed, tenant included. */
    if (st == JWT_OK && c.tenant[0] == '\0')
        abort();
    return 0;
}
