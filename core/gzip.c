/* gzip: see gzip.h. zlib does the work; this file bounds it.
 *
 * Inflate never hands zlib more output room than max_out allows. Once the
 * buffer holds max_out bytes it offers a one-byte probe on the stack instead:
 * if zlib still produces a byte the body is too large, and that is known
 * after at most max_out bytes of work, however far the bomb would expand. */
#include "gzip.h"

#include <limits.h>
#include <string.h>

#include <zlib.h>

/* Room for the first output buffer: bodies usually compress 4-10x, so 4x the
 * input avoids most regrowth without trusting the (forgeable) ISIZE trailer. */
static size_t first_capacity(size_t in_len, size_t max_out)
{
    size_t cap = in_len <= SIZE_MAX / 4 ? in_len * 4 : SIZE_MAX;
    if (cap < 4096)
        cap = 4096;
    return cap < max_out ? cap : max_out;
}

/* zlib counts in uInt; larger spans are fed in pieces. */
static uInt chunk_len(size_t n) { return n > UINT_MAX ? UINT_MAX : (uInt)n; }

gzip_status gzip_inflate(const uint8_t *in, size_t len, size_t max_out, arena *a, uint8_t **out, size_t *outlen)
{
    if (len == 0)
        return GZIP_ERR_FORMAT;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 16 + MAX_WBITS: gzip wrapper only (no zlib or raw deflate). */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return GZIP_ERR_NOMEM;

    size_t cap = first_capacity(len, max_out);
    uint8_t *dst = cap ? arena_alloc(a, cap) : NULL;
    size_t used = 0, in_off = 0;
    gzip_status st = cap && dst == NULL ? GZIP_ERR_NOMEM : GZIP_OK;
    int finished = 0;
    while (st == GZIP_OK && !finished) {
        if (used == cap && cap < max_out) {
            /* Grow geometrically; old buffers stay in the arena (it cannot
             * free), so the arena holds less than three times the final
             * buffer, and the final buffer never exceeds max_out. */
            size_t ncap = cap <= max_out / 2 ? cap * 2 : max_out;
            uint8_t *n = arena_alloc(a, ncap);
            if (n == NULL) {
                st = GZIP_ERR_NOMEM;
                break;
            }
            memcpy(n, dst, used);
            dst = n;
            cap = ncap;
        }
        uint8_t probe;
        int probing = used == cap;
        zs.next_in = (Bytef *)(uintptr_t)(in + in_off); /* zlib's API is not const */
        zs.avail_in = chunk_len(len - in_off);
        zs.next_out = probing ? &probe : dst + used;
        zs.avail_out = probing ? 1 : chunk_len(cap - used);
        uInt avail_in = zs.avail_in, avail_out = zs.avail_out;
        int ret = inflate(&zs, Z_NO_FLUSH);
        in_off += avail_in - zs.avail_in;
        size_t produced = avail_out - zs.avail_out;
        if (probing && produced > 0) {
            st = GZIP_ERR_TOO_LARGE;
            break;
        }
        used += produced;
        switch (ret) {
        case Z_OK:
            break;
        case Z_STREAM_END:
            finished = in_off == len;
            /* Otherwise another member follows (RFC 1952 allows concatenation); if it
             * is not a gzip header, inflate reports a data error next. */
            if (!finished && inflateReset(&zs) != Z_OK)
                st = GZIP_ERR_FORMAT;
            break;
        case Z_MEM_ERROR:
            st = GZIP_ERR_NOMEM;
            break;
        default:
            /* Z_BUF_ERROR: no progress possible, i.e. the input ended inside
             * a member (truncated); Z_DATA_ERROR, Z_NEED_DICT: corrupt. */
            st = GZIP_ERR_FORMAT;
            break;
        }
    }
    inflateEnd(&zs);
    if (st != GZIP_OK)
        return st;
    if (dst == NULL && (dst = arena_alloc(a, 1)) == NULL) /* max_out 0: still give a valid pointer */
        return GZIP_ERR_NOMEM;
    *out = dst;
    *outlen = used;
    return GZIP_OK;
}

gzip_status gzip_deflate(const uint8_t *in, size_t len, int level, buf *out)
{
    if (level < -1 || level > 9)
        return GZIP_ERR_FORMAT;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return GZIP_ERR_NOMEM;
    /* Reserving the bound up front means deflate never runs out of room. */
    size_t bound = deflateBound(&zs, len);
    if (buf_reserve(out, bound) != 0) {
        deflateEnd(&zs);
        return GZIP_ERR_NOMEM;
    }
    size_t in_off = 0, out_len = out->len;
    int ret;
    do {
        zs.next_in = (Bytef *)(uintptr_t)(in_off ? in + in_off : in); /* in may be NULL when len is 0 */
        zs.avail_in = chunk_len(len - in_off);
        zs.next_out = (Bytef *)out->data + out_len;
        zs.avail_out = chunk_len(out->cap - out_len);
        uInt avail_in = zs.avail_in, avail_out = zs.avail_out;
        ret = deflate(&zs, zs.avail_in == len - in_off ? Z_FINISH : Z_NO_FLUSH);
        in_off += avail_in - zs.avail_in;
        out_len += avail_out - zs.avail_out;
    } while (ret == Z_OK);
    deflateEnd(&zs);
    if (ret != Z_STREAM_END)
        return GZIP_ERR_NOMEM;
    out->len = out_len; /* only now: on failure the buffer is unchanged */
    return GZIP_OK;
}
