/* apikey: gateway-issued API keys (consolidated key management).
 *
 * A key is "otlpgw_" + 43 base64url characters (256 random bits) — so it is
 * told apart from a JWT (three dot-separated parts) by its prefix. Only a
 * SHA-256 hash of each key is stored, with its id, tenant, name, creation
 * and optional expiry time, and revocation flag, in a YAML keys file:
 *
 *   keys:
 *     - id: k_3f9a...        # first 12 hex of the hash; shown by `keys list`
 *       tenant: shop
 *       name: ci-agents
 *       sha256: 9c1d...      # hex
 *       created: 2026-11-23T10:00:00Z
 *       expires: 2027-11-23T10:00:00Z   # optional
 *       revoked: false
 *
 * An apikey_store is immutable once loaded; reload builds a new one and the
 * owner swaps it (see apikey_store_load). Lookups are constant time in the
 * key (hash table on the digest, compared with CRYPTO_memcmp). */
#ifndef GW_APIKEY_H
#define GW_APIKEY_H

#include <stddef.h>
#include <stdint.h>

#define APIKEY_PREFIX "otlpgw_"
#define APIKEY_LEN (sizeof(APIKEY_PREFIX) - 1 + 43) /* 43: unpadded base64url of 32 bytes */
#define APIKEY_ID_LEN 14                            /* "k_" + 12 hex: the id of a created key */
#define APIKEY_TIME_LEN 20                          /* YYYY-MM-DDTHH:MM:SSZ */
#define APIKEY_NO_TIME ((int64_t)-1)                /* absent; dates before 1970 are rejected */

typedef struct apikey_store apikey_store;

typedef enum { APIKEY_OK = 0, APIKEY_UNKNOWN, APIKEY_REVOKED, APIKEY_EXPIRED, APIKEY_MALFORMED } apikey_status;

/* 1 when `token` has the API-key shape (prefix and length), else 0. */
int apikey_looks_like(const char *token, size_t len);

/* Load a keys file; a missing file is an empty store. -1 with "file:line: ..." on error. */
int apikey_store_load(const char *path, apikey_store **out, char *err, size_t errlen);
void apikey_store_free(apikey_store *s);
size_t apikey_store_count(const apikey_store *s);

/* Check a presented key at time `now`; on APIKEY_OK *tenant points into the
 * store (valid while the store lives). */
apikey_status apikey_check(const apikey_store *s, const char *token, size_t len, int64_t now, const char **tenant,
                           const char **key_id);

/* One entry as the file has it; strings point into the store. */
typedef struct apikey_info {
    const char *id, *tenant, *name; /* name NULL: none */
    int64_t created, expires;       /* APIKEY_NO_TIME: absent */
    int revoked;
} apikey_info;

/* Entry i (< apikey_store_count), in file order. */
apikey_info apikey_store_entry(const apikey_store *s, size_t i);

/* The file's time form, strict RFC 3339 UTC in whole seconds: parse (0, or
 * -1 when `s` is not that form or is before 1970) and format into `out`. */
int apikey_parse_time(const char *s, int64_t *out);
const char *apikey_format_time(int64_t t, char out[APIKEY_TIME_LEN + 1]);

/* 1 when `v` is only A-Z a-z 0-9 _ - . (the characters of an id), else 0. */
int apikey_is_word(const char *v);

/* Editing the keys file (for `otlp-gateway keys`, gateway/keys_cli.h): each
 * call loads the file under an exclusive lock on its directory, changes it and
 * rewrites it atomically (temp file, fsync, rename; mode 0600, owner kept).
 * Errors go into err; nothing is printed. */
typedef struct apikey_new {
    const char *tenant, *name;  /* in: name NULL: none */
    int64_t created, expires;   /* in: expires APIKEY_NO_TIME: never */
    char key[APIKEY_LEN + 1];   /* out: the secret, stored nowhere; the caller cleanses it */
    char id[APIKEY_ID_LEN + 1]; /* out */
} apikey_new;

/* Generate a key with a fresh id and append it: 0, or -1 (key cleansed). */
int apikey_file_create(const char *path, apikey_new *k, char *err, size_t errlen);

/* Mark key `id` revoked: 0, 1 when it already was (file untouched), or -1
 * (also when no key has that id). */
int apikey_file_revoke(const char *path, const char *id, char *err, size_t errlen);

#endif
