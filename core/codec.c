/* codec: see codec.h. */
#include "codec.h"

#include <string.h>

static const char codec_b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char codec_b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char codec_hex_digits[] = "0123456789abcdef";

/* the alphabets share 0..61, so one reader serves both and accepts only the pairs flags name. */
static int codec_b64_value(unsigned char c, unsigned flags)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if ((flags & CODEC_B64_STD) && (c == '+' || c == '/'))
        return c == '+' ? 62 : 63;
    if ((flags & CODEC_B64_URL) && (c == '-' || c == '_'))
        return c == '-' ? 62 : 63;
    return -1;
}

/* shape decides the size before any byte is read, so callers may reject before they allocate. */
static int codec_b64_shape(const char *s, size_t n, unsigned flags, size_t *digits, size_t *len)
{
    if (flags & CODEC_B64_UNTIL_PAD) {
        const char *eq = memchr(s, '=', n);
        if (eq != NULL)
            n = (size_t)(eq - s);
    } else {
        size_t pad = 0;
        while ((flags & CODEC_B64_PAD) && n > 0 && s[n - 1] == '=' && pad < 2) {
            n--;
            pad++;
        }
        if (n % 4 == 1 || (pad != 0 && (n + pad) % 4 != 0))
            return -1;
    }
    *digits = n;
    *len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    return 0;
}

/* lets a caller size an arena allocation exactly and reject a bad shape first. */
int codec_base64_decoded_len(const char *s, size_t n, unsigned flags, size_t *len)
{
    size_t digits;
    return codec_b64_shape(s, n, flags, &digits, len);
}

/* OTLP/JSON bytes, JWT parts and gRPC -bin headers all decode base64, each as strict as its spec. */
int codec_base64_decode(const char *s, size_t n, unsigned flags, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t need;
    if (codec_b64_shape(s, n, flags, &n, &need) != 0 || need > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = codec_b64_value((unsigned char)s[i], flags);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if ((flags & CODEC_B64_CANONICAL) && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    *outlen = o;
    return 0;
}

/* writers reserve room before encoding into a buf. */
size_t codec_base64_encoded_len(size_t n, unsigned flags)
{
    return flags & CODEC_B64_PAD ? (n + 2) / 3 * 4 : n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* OTLP/JSON bytes (standard, padded) and API keys (URL, unpadded) share one encoder. */
size_t codec_base64_encode(const uint8_t *in, size_t n, unsigned flags, char *out)
{
    const char *d = flags & CODEC_B64_URL ? codec_b64_url : codec_b64_std;
    char *w = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *w++ = d[v >> 18];
        *w++ = d[(v >> 12) & 63];
        *w++ = d[(v >> 6) & 63];
        *w++ = d[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *w++ = d[v >> 18];
        *w++ = d[(v >> 12) & 63];
        if (i + 1 < n)
            *w++ = d[(v >> 6) & 63];
        else if (flags & CODEC_B64_PAD)
            *w++ = '=';
        if (flags & CODEC_B64_PAD)
            *w++ = '=';
    }
    return (size_t)(w - out);
}

/* \u escapes, percent-decoding and hex ids all read single hex digits. */
int codec_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* OTLP/JSON trace and span ids are hex strings. */
int codec_hex_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = codec_hex_value((unsigned char)s[i]), lo = codec_hex_value((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *outlen = n / 2;
    return 0;
}

/* ids in JSON and SigV4 digests are written as lowercase hex. */
char *codec_hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        *out++ = codec_hex_digits[in[i] >> 4];
        *out++ = codec_hex_digits[in[i] & 15];
    }
    return out;
}
