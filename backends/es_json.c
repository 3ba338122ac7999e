/* es_json: see es_json.h. */
#include "es_json.h"

#include <stdint.h>
#include <stdio.h>

#include "codec.h"
#include "otlp_json.h"

const char es_json_hex[] = "0123456789abcdef";

/* One character that needs escaping, or the U+FFFD an invalid byte becomes. */
static int es_json_put_escape(buf *b, unsigned char ch)
{
    static const char upper_hex[] = "0123456789ABCDEF";
    char esc[6] = {'\\', otlp_json_short_escape(ch)};
    if (esc[1] != 0)
        return es_json_bytes(b, esc, 2);
    if (ch >= 0x80)
        return es_json_bytes(b, "\xef\xbf\xbd", 3);
    memcpy(esc, "\\u00", 4);
    esc[4] = upper_hex[ch >> 4];
    esc[5] = upper_hex[ch & 15];
    return es_json_bytes(b, esc, 6);
}

/* Whether the 8 bytes at p can all be copied into a JSON string as they
 * are: none below 0x20, '"', backslash or 0x80 and up. Checked on the whole
 * word at once: for a byte x below 0x80, (x - k) & ~x has bit 7 set exactly
 * when x < k; a borrow out of a byte that hit may set bits above it but
 * never below the lowest hit, so the word has a hit exactly when a byte
 * does. '"' and backslash are the zero bytes of w xor that byte repeated. */
static int es_json_plain8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t w, q, bs;
    memcpy(&w, p, sizeof(w));
    q = w ^ (ones * '"');
    bs = w ^ (ones * '\\');
    return ((w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & high) == 0;
}

int es_json_put_chars(buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0, i = 0;
    while (i < n) {
        if (n - i >= 8 && es_json_plain8(s + i)) {
            i += 8;
            continue;
        }
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
            i++;
            continue;
        }
        size_t l = ch >= 0x80 ? otlp_json_utf8_seq(s + i, n - i) : 0;
        if (l != 0) {
            i += l;
            continue;
        }
        if (es_json_bytes(b, s + run, i - run) != 0 || es_json_put_escape(b, ch) != 0)
            return -1;
        run = ++i;
    }
    return es_json_bytes(b, s + run, n - run);
}

int es_json_put_str(buf *b, const char *s, size_t n)
{
    if (es_json_room(b, n + 2) != 0) /* the usual string, with nothing to escape, then is one copy */
        return -1;
    b->data[b->len++] = '"';
    return es_json_put_chars(b, s, n) || es_json_char(b, '"') ? -1 : 0;
}

int es_json_put_cstr(buf *b, const char *s) { return es_json_put_str(b, s, strlen(s)); }

int es_json_put_int(buf *b, int64_t v)
{
    char tmp[24];
    char *s = tmp + sizeof(tmp);
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--s = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    if (v < 0)
        *--s = '-';
    return es_json_bytes(b, s, (size_t)(tmp + sizeof(tmp) - s));
}

int es_json_put_uint(buf *b, uint64_t n) { return es_json_put_int(b, n > INT64_MAX ? INT64_MAX : (int64_t)n); }

int es_json_put_real(buf *b, double d)
{
    char tmp[32];
    size_t n = (size_t)snprintf(tmp, sizeof(tmp), "%.17g", d);
    char *e = memchr(tmp, 'e', n);
    if (e == NULL) {
        if (memchr(tmp, '.', n) == NULL) {
            memcpy(tmp + n, ".0", 2);
            n += 2;
        }
        return es_json_bytes(b, tmp, n);
    }
    char *from = e + 1, *to = e + 1;
    if (*from == '-')
        *to++ = *from++;
    else if (*from == '+')
        from++;
    while (*from == '0')
        from++;
    memmove(to, from, (size_t)(tmp + n - from));
    return es_json_bytes(b, tmp, n - (size_t)(from - to));
}

/* Zero-padded decimal digits of v, `width` of them, ending at end. */
static void es_json_digits(char *end, unsigned v, int width)
{
    while (width-- > 0) {
        *--end = (char)('0' + v % 10);
        v /= 10;
    }
}

int es_json_put_time(buf *b, uint64_t ns)
{
    uint64_t sec = ns / 1000000000u, days = sec / 86400, tod = sec % 86400;
    /* Counted from 0000-03-01, so that the leap day ends a year; in 400-year
     * eras of 146097 days, whose years have 365 days plus the leap days. */
    uint64_t z = days + 719468, era = z / 146097, doe = z % 146097;
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153; /* months from March, 153 days per five */
    unsigned day = (unsigned)(doy - (153 * mp + 2) / 5 + 1), month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    unsigned year = (unsigned)(era * 400 + yoe + (month <= 2));
    char s[] = "\"YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ\"";
    es_json_digits(s + 5, year, 4);
    es_json_digits(s + 8, month, 2);
    es_json_digits(s + 11, day, 2);
    es_json_digits(s + 14, (unsigned)(tod / 3600), 2);
    es_json_digits(s + 17, (unsigned)(tod / 60 % 60), 2);
    es_json_digits(s + 20, (unsigned)(tod % 60), 2);
    es_json_digits(s + 30, (unsigned)(ns % 1000000000u), 9);
    return es_json_bytes(b, s, sizeof(s) - 1);
}

int es_json_put_hex(buf *b, ProtobufCBinaryData d)
{
    if (d.len > (SIZE_MAX - 2) / 2 || es_json_room(b, 2 * d.len + 2) != 0)
        return -1;
    char *w = b->data + b->len;
    *w++ = '"';
    w = codec_hex_encode(d.data, d.len, w);
    *w++ = '"';
    b->len = (size_t)(w - b->data);
    return 0;
}

int es_json_key(buf *b, size_t open, const char *key)
{
    size_t n = strlen(key);
    if (es_json_room(b, n + 4) != 0)
        return -1;
    char *w = b->data + b->len;
    if (b->len != open)
        *w++ = ',';
    *w++ = '"';
    memcpy(w, key, n);
    w += n;
    *w++ = '"';
    *w++ = ':';
    b->len = (size_t)(w - b->data);
    return 0;
}

int es_json_put_text(buf *b, size_t open, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    return es_json_key(b, open, key) || es_json_put_cstr(b, s) ? -1 : 0;
}

int es_json_put_count(buf *b, size_t open, const char *key, uint64_t n)
{
    if (n == 0)
        return 0;
    return es_json_key(b, open, key) || es_json_put_uint(b, n) ? -1 : 0;
}

int es_json_put_id(buf *b, size_t open, const char *key, ProtobufCBinaryData id)
{
    size_t n = id.len < 32 ? id.len : 32, nonzero = 0;
    for (size_t i = 0; i < n; i++)
        nonzero |= id.data[i];
    if (nonzero == 0)
        return 0;
    return es_json_key(b, open, key) || es_json_put_hex(b, (ProtobufCBinaryData){n, id.data}) ? -1 : 0;
}

