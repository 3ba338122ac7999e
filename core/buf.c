#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t want = b->cap ? b->cap : 256;
    while (want - b->len < extra) {
        if (want > ((size_t)-1) / 2)
            return -1;
        want *= 2;
    }
    char *p = realloc(b->data, want);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = want;
    return 0;
}

int buf_append(buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n != 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_putc(buf *b, char c) { return buf_append(b, &c, 1); }

int buf_puts(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf_reserve(b, (size_t)n + 1) != 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_clear(buf *b) { b->len = 0; }

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_read_file(buf *b, const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t start = b->len;
    char chunk[8192];
    size_t got;
    int rc = 0;
    while (rc == 0 && (got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (got > max - (b->len - start)) {
            errno = EFBIG;
            rc = -1;
        } else if (buf_append(b, chunk, got) != 0) {
            errno = ENOMEM;
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        rc = -1;
        if (errno == 0)
            errno = EIO;
    }
    fclose(f);
    explicit_bzero(chunk, sizeof(chunk));
    if (rc == 0 && buf_putc(b, '\0') != 0) {
        errno = ENOMEM;
        rc = -1;
    }
    if (rc == 0)
        b->len--;
    return rc;
}
