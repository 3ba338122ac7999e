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

/* Load a keys file; a missing file is an empty store. -1 with "file:line: ..." on error.
 * The new store (*out) belongs to the caller: apikey_store_free. */
int apikey_store_load(const char *path, apikey_store **out, char *err, size_t errlen);
/* The same parser on a document in memory (an object fetched from a URL or
 * S3): `name` stands for the file in errors ("name:line: ..."); data need not
 * be NUL-terminated and is not kept. An empty document is an empty store. */
int apikey_store_parse(const char *name, const char *data, size_t len, apikey_store **out, char *err,
                       size_t errlen);
/* The document a writer stores (comment header and keys, as the file has
 * them): *out is malloc'd and NUL-terminated, the caller frees it. 0 or -1
 * (out of memory). */
int apikey_store_format(const apikey_store *s, char **out, size_t *len);
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

/* Editing keys (for `otlp-gateway keys`, gateway/keys_cli.h): an edit
 * function changes a loaded store; apikey_file_edit loads the file under an
 * exclusive lock on its directory, applies it and rewrites the file
 * atomically (temp file, fsync, rename; mode 0600, owner kept); a shared
 * object's writer (gateway/keys_source.h) applies it and PUTs the formatted
 * store. Errors go into err; nothing is printed. */
typedef struct apikey_new {
    const char *tenant, *name;  /* in: name NULL: none */
    int64_t created, expires;   /* in: expires APIKEY_NO_TIME: never */
    char key[APIKEY_LEN + 1];   /* out: the secret, stored nowhere; the caller cleanses it */
    char id[APIKEY_ID_LEN + 1]; /* out */
} apikey_new;

/* An edit of a loaded store (its lookups are stale afterwards: it is only
 * formatted or written): 0 when changed, 1 when nothing changed, -1 with err. */
typedef int (*apikey_edit_fn)(apikey_store *s, void *ctx, char *err, size_t errlen);
/* ctx is an apikey_new: generates a key with a fresh id and appends it. */
int apikey_edit_create(apikey_store *s, void *ctx, char *err, size_t errlen);
/* ctx is an apikey_revoke: marks key `id` revoked (1 when it already was). */
typedef struct apikey_revoke {
    const char *where; /* the file or object, for the error message */
    const char *id;
} apikey_revoke;
int apikey_edit_revoke(apikey_store *s, void *ctx, char *err, size_t errlen);

/* Load the file under the lock, apply fn, and write it back when fn returns 0.
 * Returns what fn returned, or -1. */
int apikey_file_edit(const char *path, apikey_edit_fn fn, void *ctx, char *err, size_t errlen);

#endif
