/* OTLP/JSON encoder (otlp_encode_json) and the helpers both JSON directions
 * share. The encoder walks the protobuf-c descriptors, so it needs no
 * per-message code; keys are converted to lowerCamelCase while being copied,
 * which costs no more than copying a precomputed name would. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "otlp.h"
#include "otlp_json.h"

int otlp_json_field_is_hex(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_BYTES &&
           (strcmp(f->name, "trace_id") == 0 || strcmp(f->name, "span_id") == 0 ||
            strcmp(f->name, "parent_span_id") == 0);
}

size_t otlp_json_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

size_t otlp_json_type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default: /* 32-bit integers, float, enum */
        return 4;
    }
}

/* ---- writer ---- */

static const char hex_digits[] = "0123456789abcdef";

/* Appends ,"lowerCamelName": (the comma unless first). */
static int put_key(buf *b, const char *name, int first)
{
    size_t n = strlen(name);
    if (buf_reserve(b, n + 4) != 0)
        return -1;
    char *w = b->data + b->len;
    if (!first)
        *w++ = ',';
    *w++ = '"';
    for (const char *s = name; *s; s++) {
        if (*s == '_' && s[1] != '\0') {
            s++;
            *w++ = (*s >= 'a' && *s <= 'z') ? (char)(*s - 'a' + 'A') : *s;
        } else {
            *w++ = *s;
        }
    }
    *w++ = '"';
    *w++ = ':';
    b->len = (size_t)(w - b->data);
    return 0;
}

/* Decimal, quoted for 64-bit types (JSON numbers lose precision past 2^53). */
static int put_int(buf *b, uint64_t mag, int neg, int quoted)
{
    char tmp[24];
    char *s = tmp + sizeof(tmp);
    if (quoted)
        *--s = '"';
    do {
        *--s = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    if (neg)
        *--s = '-';
    if (quoted)
        *--s = '"';
    return buf_append(b, s, (size_t)(tmp + sizeof(tmp) - s));
}

static int put_signed(buf *b, int64_t v, int quoted)
{
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return put_int(b, mag, v < 0, quoted);
}

/* Shortest of two precisions that reads back exactly; the longer one always
 * does (17 digits for double, 9 for float). */
static int put_double(buf *b, double d, int is_float)
{
    if (isnan(d))
        return buf_puts(b, "\"NaN\"");
    if (isinf(d))
        return buf_puts(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "%.*g", is_float ? 6 : 15, d);
    double back = strtod(tmp, NULL);
    if (is_float ? (float)back != (float)d : back != d)
        n = snprintf(tmp, sizeof(tmp), "%.*g", is_float ? 9 : 17, d);
    return buf_append(b, tmp, (size_t)n);
}

char otlp_json_short_escape(unsigned char c)
{
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return 0;
    }
}

/* JSON string: control characters escaped, valid UTF-8 copied as is, each
 * byte of invalid UTF-8 replaced by U+FFFD so the output is always valid. */
int otlp_json_put_string(buf *b, const unsigned char *s, size_t n)
{
    if (buf_putc(b, '"') != 0)
        return -1;
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            size_t l = c < 0x80 ? 1 : otlp_json_utf8_seq(s + i, n - i);
            if (l != 0) {
                i += l;
                continue;
            }
        }
        if (buf_append(b, s + run, i - run) != 0)
            return -1;
        char esc[8] = {'\\', otlp_json_short_escape(c)};
        const char *e = esc;
        size_t elen = 2;
        if (esc[1] == 0) {
            if (c >= 0x80) {
                e = "\\ufffd";
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex_digits[c >> 4];
                esc[5] = hex_digits[c & 15];
            }
            elen = 6;
        }
        if (buf_append(b, e, elen) != 0)
            return -1;
        run = ++i;
    }
    if (buf_append(b, s + run, n - run) != 0)
        return -1;
    return buf_putc(b, '"');
}

int otlp_json_put_base64(buf *b, const uint8_t *s, size_t n)
{
    if (buf_reserve(b, codec_base64_encoded_len(n, CODEC_B64_PAD)) != 0)
        return -1;
    b->len += codec_base64_encode(s, n, CODEC_B64_PAD, b->data + b->len);
    return 0;
}

static int put_bytes(buf *b, const ProtobufCBinaryData *bd, int hex)
{
    if (buf_putc(b, '"') != 0)
        return -1;
    if (!hex) {
        if (otlp_json_put_base64(b, bd->data, bd->len) != 0)
            return -1;
        return buf_putc(b, '"');
    }
    size_t n = bd->len;
    if (buf_reserve(b, 2 * n + 1) != 0)
        return -1;
    char *w = codec_hex_encode(bd->data, n, b->data + b->len);
    *w++ = '"';
    b->len = (size_t)(w - b->data);
    return 0;
}

static int put_message(buf *b, const ProtobufCMessage *m);

/* One value of field f stored at p (an element, for repeated fields). */
static int put_value(buf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return put_signed(b, *(const int32_t *)p, 0);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return put_int(b, *(const uint32_t *)p, 0, 0);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return put_signed(b, *(const int64_t *)p, 1);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return put_int(b, *(const uint64_t *)p, 0, 1);
    case PROTOBUF_C_TYPE_FLOAT:
        return put_double(b, *(const float *)p, 1);
    case PROTOBUF_C_TYPE_DOUBLE:
        return put_double(b, *(const double *)p, 0);
    case PROTOBUF_C_TYPE_BOOL:
        return buf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s ? otlp_json_put_string(b, (const unsigned char *)s, strlen(s)) : buf_puts(b, "\"\"");
    }
    case PROTOBUF_C_TYPE_BYTES:
        return put_bytes(b, p, otlp_json_field_is_hex(f));
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? put_message(b, sub) : buf_puts(b, "{}");
    }
    }
    return -1;
}

static int is_zero(const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        if (s[i] != 0)
            return 0;
    return 1;
}

/* Whether a non-repeated field is written: oneof members and proto2-style
 * optionals by presence, proto3 singular fields when not the default. */
static int field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *p = base + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p != NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s != NULL && (f->label == PROTOBUF_C_LABEL_OPTIONAL || s[0] != '\0');
    }
    default:
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
            return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
        if (f->type == PROTOBUF_C_TYPE_BYTES)
            return ((const ProtobufCBinaryData *)p)->len != 0;
        /* Bitwise, so -0.0 (which is not the default) is still written. */
        return !is_zero(p, otlp_json_type_size(f->type));
    }
}

static int put_message(buf *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    int first = 1;
    if (buf_putc(b, '{') != 0)
        return -1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0)
                continue;
            const char *arr = *(char *const *)(base + f->offset);
            size_t stride = otlp_json_type_size(f->type);
            if (put_key(b, f->name, first) != 0 || buf_putc(b, '[') != 0)
                return -1;
            for (size_t j = 0; j < n; j++)
                if ((j != 0 && buf_putc(b, ',') != 0) || put_value(b, f, arr + j * stride) != 0)
                    return -1;
            if (buf_putc(b, ']') != 0)
                return -1;
        } else {
            if (!field_present(m, f))
                continue;
            if (put_key(b, f->name, first) != 0 || put_value(b, f, base + f->offset) != 0)
                return -1;
        }
        first = 0;
    }
    return buf_putc(b, '}');
}

int otlp_encode_json(const ProtobufCMessage *msg, buf *out)
{
    /* On failure, leave the buffer as it was, as buf's appends do. */
    size_t start = out->len;
    if (put_message(out, msg) != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}
