/* gzip: bounded gzip decompression of request bodies (gzip bombs stop at
 * max_out, reported as too large, not as malformed) and compression for
 * tests and exporters. Concatenated gzip members are accepted, as RFC 1952
 * allows. */
#ifndef GW_GZIP_H
#define GW_GZIP_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"

typedef enum { GZIP_OK = 0, GZIP_ERR_FORMAT = -1, GZIP_ERR_TOO_LARGE = -2, GZIP_ERR_NOMEM = -3 } gzip_status;

/* Inflate into memory from `a`; *out and *outlen are set on GZIP_OK. */
gzip_status gzip_inflate(const uint8_t *in, size_t len, size_t max_out, arena *a, uint8_t **out, size_t *outlen);
/* Deflate `in` as one gzip member appended to out (level 1..9, or -1 default). */
gzip_status gzip_deflate(const uint8_t *in, size_t len, int level, buf *out);

#endif
