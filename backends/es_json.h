/* es_json: the compact JSON writer the Elasticsearch documents are made
 * with (es_doc.c), appending to a buf. Every function returns 0, or -1 when
 * memory ran out (the buf then holds a prefix).
 *
 * The bytes are those of jansson's compact dump (json_dumps with
 * JSON_COMPACT), which rendered these documents before: strings escape '"',
 * backslash and controls only (\b \f \n \r \t, the others as \u00XX in
 * upper-case hex) and carry each byte of invalid UTF-8 as U+FFFD (protobuf
 * does not guarantee UTF-8, a JSON document must be it); reals are %.17g
 * with ".0" added to integral ones and the exponent without '+' or leading
 * zeros. Reals are formatted with snprintf, which assumes the "C"
 * LC_NUMERIC locale (the gateway never calls setlocale).
 *
 * Members: `open` is the offset just past an object's '{'; a member written
 * there is the first and gets no comma. */
#ifndef GW_ES_JSON_H
#define GW_ES_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "buf.h"

extern const char es_json_hex[]; /* "0123456789abcdef" */

/* buf_append and friends for the many short pieces a document is made of,
 * with the usual case (the buffer has room) inline. */
static inline int es_json_bytes(buf *b, const void *p, size_t n)
{
    if (n == 0) /* p may be NULL then (an empty buffer's data) */
        return 0;
    if (n >= b->cap - b->len)
        return buf_append(b, p, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static inline int es_json_char(buf *b, char ch)
{
    if (b->len >= b->cap)
        return buf_putc(b, ch);
    b->data[b->len++] = ch;
    return 0;
}

static inline int es_json_lit(buf *b, const char *s) { return es_json_bytes(b, s, strlen(s)); }

/* Room for n more bytes, to write them through b->data. */
static inline int es_json_room(buf *b, size_t n) { return n <= b->cap - b->len ? 0 : buf_reserve(b, n); }

/* The inside of a JSON string: valid UTF-8 copied, '"', backslash and
 * controls escaped, each byte of invalid UTF-8 as U+FFFD. */
int es_json_put_chars(buf *b, const char *str, size_t n);
/* The same, quoted. */
int es_json_put_str(buf *b, const char *s, size_t n);
int es_json_put_cstr(buf *b, const char *s);

int es_json_put_int(buf *b, int64_t v);
/* Counts are unsigned in OTLP; JSON integers here are int64 (saturated). */
int es_json_put_uint(buf *b, uint64_t n);
/* A finite double: %.17g (exact on reading back), ".0" added when that
 * would read as an integer, the exponent without '+' or leading zeros.
 * (%.17g uses an exponent only below 1e-4 or from 1e17 on: never zero.) */
int es_json_put_real(buf *b, double d);
/* RFC 3339 with nanoseconds, UTC: what date_nanos keeps exactly. The date
 * is worked out here rather than with gmtime_r, which takes the time zone
 * lock on every call. The year has four digits: 2^64 ns after 1970 is in
 * 2554. */
int es_json_put_time(buf *b, uint64_t ns);
/* Quoted lower-case hex (bytes values, as Elastic's exporter writes them). */
int es_json_put_hex(buf *b, ProtobufCBinaryData d);

/* Starts member `key` (plain ASCII) of the object whose '{' ends at offset
 * `open`: a comma first unless it is the object's first member. */
int es_json_key(buf *b, size_t open, const char *key);
/* key: s, when s is not empty. */
int es_json_put_text(buf *b, size_t open, const char *key, const char *s);
/* key: n, when n is not zero. */
int es_json_put_count(buf *b, size_t open, const char *key, uint64_t n);
/* Trace and span ids in lower-case hex; an empty or all-zero id is absent. */
int es_json_put_id(buf *b, size_t open, const char *key, ProtobufCBinaryData id);

#endif
