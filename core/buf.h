/* buf: growable byte buffer on the heap, for output we build incrementally
 * (JSON lines, responses, metrics text). The owner calls buf_free. Appends
 * return 0, or -1 on out-of-memory, after which the buffer is unchanged. */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf;

#define BUF_INIT {NULL, 0, 0}

int buf_reserve(buf *b, size_t extra);
int buf_append(buf *b, const void *p, size_t n);
int buf_putc(buf *b, char c);
int buf_puts(buf *b, const char *s);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap);
/* Appends the whole file at `path` (at most `max` bytes) and a NUL that
 * b->len does not count. 0, or -1 with errno (EFBIG when over max). The
 * read chunks are wiped: files may hold secrets. */
int buf_read_file(buf *b, const char *path, size_t max);
/* Empties the buffer, keeping its memory. */
void buf_clear(buf *b);
void buf_free(buf *b);

#endif
