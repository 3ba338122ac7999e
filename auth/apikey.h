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

/* CLI: `otlp-gateway keys create|list|revoke ...` on the keys file given by
 * --keys-file or the config's auth.api_keys.file. Writes the file atomically
 * (temp file + rename). Returns the process exit status. */
int apikey_cli(int argc, char **argv, const char *default_keys_file);

#endif
