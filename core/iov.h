/* iov: a body in pieces (struct iovec, in order), read through a cursor,
 * so that senders need not join the pieces into one buffer. Header only:
 * the exporter's libcurl reader and h2_client's DATA frames use it. */
#ifndef GW_IOV_H
#define GW_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

typedef struct iov_cursor {
    size_t piece, at; /* the next byte: piece, and offset in it */
} iov_cursor;

static inline size_t iov_total(const struct iovec *v, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].iov_len;
    return total;
}

/* Copies up to room bytes from the cursor on into out and moves it past
 * them; the count. The cursor stands at piece n once everything is read
 * (empty pieces are passed over). */
static inline size_t iov_read(const struct iovec *v, size_t n, iov_cursor *c, uint8_t *out, size_t room)
{
    size_t done = 0;
    while (c->piece < n) {
        size_t left = v[c->piece].iov_len - c->at;
        if (left == 0) {
            c->piece++;
            c->at = 0;
            continue;
        }
        if (done == room)
            break;
        size_t k = left < room - done ? left : room - done;
        memcpy(out + done, (const uint8_t *)v[c->piece].iov_base + c->at, k);
        done += k;
        c->at += k;
    }
    return done;
}

/* Puts the cursor at byte off from the start; -1 past the end. */
static inline int iov_seek(const struct iovec *v, size_t n, iov_cursor *c, size_t off)
{
    *c = (iov_cursor){0, 0};
    while (c->piece < n && off >= v[c->piece].iov_len)
        off -= v[c->piece++].iov_len;
    if (c->piece == n && off > 0)
        return -1;
    c->at = off;
    return 0;
}

#endif
