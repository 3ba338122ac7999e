/* OTLP/JSON decoder: one pass over the input, filling protobuf-c structs
 * through their descriptors, allocating only from the request arena.
 *
 * Duplicate keys and two members of one oneof are errors (a sender that does
 * either is broken, and "last wins" would silently drop data). Unknown keys
 * are skipped whatever their value. Recursion is bounded: message nesting by
 * OTLP_MAX_DEPTH, and skipped unknown values count every container. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "otlp.h"
#include "otlp_json.h"

typedef struct jparser {
    const unsigned char *start, *p, *end;
    arena *a;
    char *err;
    size_t errlen;
    const char *key; /* the field being decoded, for error messages */
    size_t keylen;
} jparser;

/* Records the first error with the current offset; always returns -1. */
static int fail(jparser *j, const char *what)
{
    size_t off = (size_t)(j->p - j->start);
    if (arena_failed(j->a))
        snprintf(j->err, j->errlen, "%s", OTLP_ERR_TOO_LARGE);
    else if (j->key != NULL)
        snprintf(j->err, j->errlen, "invalid JSON: field %.*s: %s at offset %zu",
                 (int)(j->keylen > 64 ? 64 : j->keylen), j->key, what, off);
    else
        snprintf(j->err, j->errlen, "invalid JSON: %s at offset %zu", what, off);
    return -1;
}

static void *jalloc(jparser *j, size_t n)
{
    void *p = arena_alloc(j->a, n);
    if (p == NULL)
        fail(j, "out of memory");
    return p;
}

static void skip_ws(jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static int peek(jparser *j)
{
    skip_ws(j);
    return j->p < j->end ? *j->p : -1;
}

static int expect(jparser *j, char c, const char *what)
{
    if (peek(j) != (unsigned char)c)
        return fail(j, j->p < j->end ? what : "unexpected end of input");
    j->p++;
    return 0;
}

static int literal(jparser *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return fail(j, "invalid literal");
    j->p += n;
    return 0;
}

/* ---- strings ---- */

static int read_u16(const unsigned char *s, const unsigned char *end, unsigned *out)
{
    if (end - s < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = codec_hex_value(s[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* At the opening quote: finds the closing one, checking UTF-8 and control
 * characters on the way. Sets *s and *n to the raw contents and *esc when they
 * hold escapes; leaves j->p after the closing quote. */
static int scan_string(jparser *j, const unsigned char **s, size_t *n, int *esc)
{
    const unsigned char *p = ++j->p, *end = j->end;
    *esc = 0;
    for (;;) {
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p >= end) {
            j->p = p;
            return fail(j, "unterminated string");
        }
        if (*p == '"')
            break;
        if (*p == '\\') {
            *esc = 1;
            if (end - p < 2) {
                j->p = end;
                return fail(j, "unterminated string");
            }
            /* Checked here so skipped values are validated too. */
            if (p[1] == 'u') {
                unsigned cp;
                if (read_u16(p + 2, end, &cp) != 0) {
                    j->p = p;
                    return fail(j, "invalid \\u escape");
                }
                p += 6;
            } else if (strchr("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0') {
                p += 2;
            } else {
                j->p = p;
                return fail(j, "invalid escape");
            }
        } else if (*p < 0x20) {
            j->p = p;
            return fail(j, "control character in string");
        } else {
            size_t l = otlp_json_utf8_seq(p, (size_t)(end - p));
            if (l == 0) {
                j->p = p;
                return fail(j, "invalid UTF-8 in string");
            }
            p += l;
        }
    }
    *s = j->p;
    *n = (size_t)(p - j->p);
    j->p = p + 1;
    return 0;
}

/* Decodes the escapes of raw string contents s[0..n) into dst (which has
 * room for n bytes: no escape expands). Returns the decoded length. */
static int unescape(jparser *j, const unsigned char *s, size_t n, char *dst, size_t *outlen)
{
    const unsigned char *end = s + n;
    char *w = dst;
    while (s < end) {
        if (*s != '\\') {
            *w++ = (char)*s++;
            continue;
        }
        /* scan_string has checked the escape's syntax. */
        const unsigned char *at = s;
        unsigned char c = s[1];
        s += 2;
        if (c != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            *w++ = to[strchr(from, c) - from];
            continue;
        }
        unsigned cp = 0, lo = 0; /* read_u16 sets them; GCC -O3 cannot tell */
        read_u16(s, end, &cp);
        s += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end - s < 6 || s[0] != '\\' || s[1] != 'u' || read_u16(s + 2, end, &lo) != 0 ||
                lo < 0xdc00 || lo > 0xdfff) {
                j->p = at;
                return fail(j, "unpaired surrogate in \\u escape");
            }
            s += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            j->p = at;
            return fail(j, "unpaired surrogate in \\u escape");
        } else if (cp == 0) {
            /* protobuf-c strings are NUL-terminated: U+0000 cannot be kept. */
            j->p = at;
            return fail(j, "NUL character in string");
        }
        if (cp < 0x80) {
            *w++ = (char)cp;
        } else if (cp < 0x800) {
            *w++ = (char)(0xc0 | cp >> 6);
            *w++ = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *w++ = (char)(0xe0 | cp >> 12);
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *w++ = (char)(0x80 | (cp & 0x3f));
        } else {
            *w++ = (char)(0xf0 | cp >> 18);
            *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *w++ = (char)(0x80 | (cp & 0x3f));
        }
    }
    *outlen = (size_t)(w - dst);
    return 0;
}

/* A string as bytes: borrowed from the input when it has no escapes (keys,
 * hex and base64 never need a copy), else decoded into the arena. */
static int read_string(jparser *j, const unsigned char **s, size_t *n)
{
    int esc;
    if (scan_string(j, s, n, &esc) != 0)
        return -1;
    if (!esc)
        return 0;
    const unsigned char *after = j->p;
    char *dst = jalloc(j, *n);
    if (dst == NULL || unescape(j, *s, *n, dst, n) != 0)
        return -1;
    *s = (const unsigned char *)dst;
    j->p = after;
    return 0;
}

/* A NUL-terminated arena copy, as protobuf-c string fields are. */
static int read_cstring(jparser *j, char **out)
{
    const unsigned char *s;
    size_t n;
    int esc;
    if (scan_string(j, &s, &n, &esc) != 0)
        return -1;
    const unsigned char *after = j->p;
    char *dst = jalloc(j, n + 1);
    if (dst == NULL)
        return -1;
    if (esc) {
        if (unescape(j, s, n, dst, &n) != 0)
            return -1;
        j->p = after;
    } else {
        memcpy(dst, s, n);
    }
    dst[n] = '\0';
    *out = dst;
    return 0;
}

/* ---- bytes ---- */

static int decode_hex(jparser *j, const unsigned char *s, size_t n, ProtobufCBinaryData *out)
{
    if (n % 2 != 0)
        return fail(j, "bad hex");
    uint8_t *d = jalloc(j, n / 2 + 1);
    if (d == NULL)
        return -1;
    if (codec_hex_decode((const char *)s, n, d, n / 2, &out->len) != 0)
        return fail(j, "bad hex");
    out->data = n ? d : NULL;
    return 0;
}

/* Standard or URL-safe alphabet, padding optional. */
static int decode_base64(jparser *j, const unsigned char *s, size_t n, ProtobufCBinaryData *out)
{
    const unsigned flags = CODEC_B64_STD | CODEC_B64_URL | CODEC_B64_PAD;
    size_t len;
    if (codec_base64_decoded_len((const char *)s, n, flags, &len) != 0)
        return fail(j, "bad base64");
    uint8_t *d = jalloc(j, len / 3 * 3 + 3);
    if (d == NULL)
        return -1;
    if (codec_base64_decode((const char *)s, n, flags, d, len, &out->len) != 0)
        return fail(j, "bad base64");
    out->data = out->len ? d : NULL;
    return 0;
}

/* ---- numbers ---- */

/* Checks the JSON number grammar from j->p; returns its length, 0 if none. */
static size_t number_len(const unsigned char *p, const unsigned char *end, int *integral)
{
    const unsigned char *s = p;
    *integral = 1;
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return 0;
    if (*p == '0')
        p++;
    else
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    if (p < end && *p == '.') {
        *integral = 0;
        if (++p >= end || *p < '0' || *p > '9')
            return 0;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integral = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return 0;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    return (size_t)(p - s);
}

/* An integer as a JSON number or a decimal string, as magnitude and sign. */
static int read_integer(jparser *j, uint64_t *mag, int *neg)
{
    int quoted = *j->p == '"';
    if (quoted)
        j->p++;
    int integral;
    size_t n = number_len(j->p, j->end, &integral);
    if (n == 0 || !integral)
        return fail(j, "expected an integer");
    const unsigned char *s = j->p, *e = s + n;
    *neg = *s == '-';
    s += *neg;
    uint64_t v = 0;
    for (; s < e; s++) {
        unsigned d = *s - '0';
        if (v > (UINT64_MAX - d) / 10)
            return fail(j, "integer out of range");
        v = v * 10 + d;
    }
    j->p = e;
    if (quoted && (j->p >= j->end || *j->p++ != '"'))
        return fail(j, "expected an integer");
    *mag = v;
    return 0;
}

/* Reads an integer and checks it fits [-(neg_max), pos_max]. */
static int read_ranged(jparser *j, uint64_t neg_max, uint64_t pos_max, int64_t *out)
{
    uint64_t mag;
    int neg;
    if (read_integer(j, &mag, &neg) != 0)
        return -1;
    if (neg ? mag > neg_max : mag > pos_max)
        return fail(j, "integer out of range");
    /* Two's complement negation of the magnitude, done unsigned. */
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static int read_double(jparser *j, double *out)
{
    int quoted = *j->p == '"';
    if (quoted) {
        static const struct { const char *s; double v; } special[] = {
            {"\"NaN\"", NAN}, {"\"Infinity\"", INFINITY}, {"\"-Infinity\"", -INFINITY}};
        for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
            size_t n = strlen(special[i].s);
            if ((size_t)(j->end - j->p) >= n && memcmp(j->p, special[i].s, n) == 0) {
                j->p += n;
                *out = special[i].v;
                return 0;
            }
        }
        j->p++;
    }
    int integral;
    size_t n = number_len(j->p, j->end, &integral);
    if (n == 0)
        return fail(j, "expected a number");
    /* strtod needs a terminated copy; numbers are short, so the stack does. */
    char small[64];
    char *tmp = n < sizeof(small) ? small : jalloc(j, n + 1);
    if (tmp == NULL)
        return -1;
    memcpy(tmp, j->p, n);
    tmp[n] = '\0';
    double v = strtod(tmp, NULL);
    if (isinf(v))
        return fail(j, "number out of range");
    j->p += n;
    if (quoted && (j->p >= j->end || *j->p++ != '"'))
        return fail(j, "expected a number");
    *out = v;
    return 0;
}

/* ---- values ---- */

static int parse_message(jparser *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                         int depth);

static int read_enum(jparser *j, const ProtobufCFieldDescriptor *f, int32_t *out)
{
    if (*j->p != '"') {
        int64_t v = 0;
        if (read_ranged(j, (uint64_t)INT32_MAX + 1, INT32_MAX, &v) != 0)
            return -1;
        *out = (int32_t)v;
        return 0;
    }
    const unsigned char *at = j->p;
    char *name;
    if (read_cstring(j, &name) != 0)
        return -1;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, name);
    if (ev == NULL) {
        j->p = at;
        return fail(j, "unknown enum value");
    }
    *out = ev->value;
    return 0;
}

static int read_bytes(jparser *j, const ProtobufCFieldDescriptor *f, ProtobufCBinaryData *out)
{
    if (*j->p != '"')
        return fail(j, "expected a string");
    const unsigned char *at = j->p, *s;
    size_t n;
    if (read_string(j, &s, &n) != 0)
        return -1;
    const unsigned char *after = j->p;
    j->p = at; /* decode errors point at the string */
    if ((otlp_json_field_is_hex(f) ? decode_hex : decode_base64)(j, s, n, out) != 0)
        return -1;
    j->p = after;
    return 0;
}

/* One value of field f into dst (the field, or an array element). */
static int parse_value(jparser *j, const ProtobufCFieldDescriptor *f, void *dst, int depth)
{
    int64_t v = 0;
    uint64_t mag;
    int neg;
    double d;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (read_ranged(j, (uint64_t)INT32_MAX + 1, INT32_MAX, &v) != 0)
            return -1;
        *(int32_t *)dst = (int32_t)v;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (read_ranged(j, 0, UINT32_MAX, &v) != 0)
            return -1;
        *(uint32_t *)dst = (uint32_t)v;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (read_ranged(j, (uint64_t)INT64_MAX + 1, INT64_MAX, &v) != 0)
            return -1;
        *(int64_t *)dst = v;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (read_integer(j, &mag, &neg) != 0)
            return -1;
        if (neg && mag != 0)
            return fail(j, "integer out of range");
        *(uint64_t *)dst = mag;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (read_double(j, &d) != 0)
            return -1;
        if (isfinite(d) && fabs(d) > FLT_MAX)
            return fail(j, "number out of range");
        *(float *)dst = (float)d;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return read_double(j, dst);
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)dst = *j->p == 't';
        return literal(j, *j->p == 't' ? "true" : "false");
    case PROTOBUF_C_TYPE_ENUM:
        return read_enum(j, f, dst);
    case PROTOBUF_C_TYPE_STRING:
        if (*j->p != '"')
            return fail(j, "expected a string");
        return read_cstring(j, dst);
    case PROTOBUF_C_TYPE_BYTES:
        return read_bytes(j, f, dst);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        if (*j->p != '{')
            return fail(j, "expected an object");
        ProtobufCMessage *sub = jalloc(j, sd->sizeof_message);
        if (sub == NULL)
            return -1;
        protobuf_c_message_init(sd, sub);
        *(ProtobufCMessage **)dst = sub;
        return parse_message(j, sd, sub, depth + 1);
    }
    }
    return fail(j, "unsupported field type");
}

/* A JSON array into a repeated field, growing the array by doubling (the
 * arena keeps the outgrown copies; they add at most as much again). */
static int parse_repeated(jparser *j, const ProtobufCFieldDescriptor *f, char *base, int depth)
{
    if (*j->p != '[')
        return fail(j, "expected an array");
    j->p++;
    size_t stride = otlp_json_type_size(f->type), n = 0, cap = 0;
    char *arr = NULL;
    if (peek(j) == ']') {
        j->p++;
    } else {
        for (;;) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                char *grown = ncap > SIZE_MAX / stride ? NULL : jalloc(j, ncap * stride);
                if (grown == NULL)
                    return fail(j, "out of memory");
                if (n != 0)
                    memcpy(grown, arr, n * stride);
                arr = grown;
                cap = ncap;
            }
            if (peek(j) < 0)
                return fail(j, "unexpected end of input");
            if (parse_value(j, f, arr + n * stride, depth) != 0)
                return -1;
            n++;
            int c = peek(j);
            if (c == ']') {
                j->p++;
                break;
            }
            if (expect(j, ',', "expected ',' or ']'") != 0)
                return -1;
        }
    }
    *(size_t *)(base + f->quantifier_offset) = n;
    *(void **)(base + f->offset) = arr;
    return 0;
}

static int skip_value(jparser *j, int depth)
{
    const unsigned char *s;
    size_t n;
    int esc, integral;
    int c = peek(j);
    switch (c) {
    case '{':
    case '[': {
        char close = c == '{' ? '}' : ']';
        if (depth >= OTLP_MAX_DEPTH)
            return fail(j, "nesting too deep");
        j->p++;
        if (peek(j) == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                if (peek(j) != '"')
                    return fail(j, "expected a string key");
                if (scan_string(j, &s, &n, &esc) != 0 || expect(j, ':', "expected ':'") != 0)
                    return -1;
            }
            if (skip_value(j, depth + 1) != 0)
                return -1;
            int next = peek(j);
            if (next == close) {
                j->p++;
                return 0;
            }
            if (expect(j, ',', c == '{' ? "expected ',' or '}'" : "expected ',' or ']'") != 0)
                return -1;
        }
    }
    case '"':
        return scan_string(j, &s, &n, &esc);
    case 't':
        return literal(j, "true");
    case 'f':
        return literal(j, "false");
    case 'n':
        return literal(j, "null");
    case -1:
        return fail(j, "unexpected end of input");
    default:
        n = number_len(j->p, j->end, &integral);
        if (n == 0)
            return fail(j, "unexpected character");
        j->p += n;
        return 0;
    }
}

/* Whether a JSON key names the field: its lowerCamelCase json name or the
 * original snake_case name ("trace_id" matches "traceId" and "trace_id"). */
static int name_matches(const char *snake, const unsigned char *key, size_t klen)
{
    size_t i = 0;
    for (const char *s = snake; *s; s++) {
        if (i >= klen)
            return 0;
        if (*s == '_' && s[1] != '\0' && key[i] != '_') {
            s++;
            char up = (*s >= 'a' && *s <= 'z') ? (char)(*s - 'a' + 'A') : *s;
            if (key[i] != (unsigned char)up)
                return 0;
        } else if (key[i] != (unsigned char)*s) {
            return 0;
        }
        i++;
    }
    return i == klen;
}

/* Keys usually come in field order, so the search starts after the field
 * matched last: a typical object costs one comparison per key. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const unsigned char *k, size_t klen,
                                                  unsigned *hint)
{
    for (unsigned i = 0, idx = *hint; i < d->n_fields; i++, idx++) {
        if (idx >= d->n_fields)
            idx = 0;
        if (name_matches(d->fields[idx].name, k, klen)) {
            *hint = idx + 1;
            return &d->fields[idx];
        }
    }
    return NULL;
}

static int parse_field(jparser *j, const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                       int depth)
{
    char *base = (char *)m;
    if (*j->p == 'n') /* null: the default, and for a oneof member, unset */
        return literal(j, "null");
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return parse_repeated(j, f, base, depth);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
        if (*which != 0 && *which != f->id)
            return fail(j, "second member of a oneof");
        *which = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING) {
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    return parse_value(j, f, base + f->offset, depth);
}

static int parse_message(jparser *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                         int depth)
{
    if (depth > OTLP_MAX_DEPTH)
        return fail(j, "nesting too deep");
    j->p++; /* the '{' the caller saw */
    /* Which fields were seen, to reject duplicate keys. */
    unsigned char seen_small[64];
    unsigned char *seen = seen_small;
    if (d->n_fields > sizeof(seen_small) && (seen = jalloc(j, d->n_fields)) == NULL)
        return -1;
    memset(seen, 0, d->n_fields);
    unsigned hint = 0;
    if (peek(j) == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        j->key = NULL;
        if (peek(j) != '"')
            return fail(j, j->p < j->end ? "expected a string key" : "unexpected end of input");
        const unsigned char *k;
        size_t klen;
        if (read_string(j, &k, &klen) != 0 || expect(j, ':', "expected ':'") != 0)
            return -1;
        if (peek(j) < 0)
            return fail(j, "unexpected end of input");
        const ProtobufCFieldDescriptor *f = find_field(d, k, klen, &hint);
        j->key = (const char *)k;
        j->keylen = klen;
        if (f == NULL) {
            if (skip_value(j, depth) != 0)
                return -1;
        } else {
            size_t idx = (size_t)(f - d->fields);
            if (seen[idx])
                return fail(j, "duplicate key");
            seen[idx] = 1;
            if (parse_field(j, f, m, depth) != 0)
                return -1;
        }
        j->key = NULL;
        int c = peek(j);
        if (c == '}') {
            j->p++;
            return 0;
        }
        if (expect(j, ',', "expected ',' or '}'") != 0)
            return -1;
    }
}

int otlp_json_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                     arena *a, ProtobufCMessage **out, char *err, size_t errlen)
{
    static const uint8_t empty[1];
    jparser j = {.start = data ? data : empty, .a = a, .err = err, .errlen = errlen};
    j.p = j.start;
    j.end = j.start + len;
    *out = NULL;
    int c = peek(&j);
    if (c != '{')
        return fail(&j, c < 0 ? "unexpected end of input" : "expected '{'");
    ProtobufCMessage *m = jalloc(&j, desc->sizeof_message);
    if (m == NULL)
        return -1;
    protobuf_c_message_init(desc, m);
    if (parse_message(&j, desc, m, 1) != 0)
        return -1;
    if (peek(&j) >= 0)
        return fail(&j, "trailing data after the object");
    *out = m;
    return 0;
}
