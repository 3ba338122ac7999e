/* digest: SHA-256 of a buffer, for what is hashed on every request (API
 * keys, the token cache's key). OpenSSL 3's one-shot SHA256() looks the
 * algorithm up by name on each call (EVP_MD_fetch was a third of an API
 * key check's time); here it is fetched once per process. Thread-safe. */
#ifndef GW_DIGEST_H
#define GW_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_LEN 32

/* 0, or -1 when OpenSSL fails (out of memory): out is then undefined. */
int digest_sha256(const void *p, size_t n, uint8_t out[DIGEST_SHA256_LEN]);

#endif
