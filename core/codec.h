/* codec: base64 (RFC 4648 §4 standard and §5 URL-safe alphabets) and hex,
 * on caller-owned memory. Nothing allocates; every decoder takes the output
 * capacity and fails rather than write past it.
 *
 * Base64 decoding is as strict as the caller asks through CODEC_B64_* flags:
 * which alphabets, whether trailing '=' padding is allowed, whether the
 * unused low bits of the last character must be zero (so each byte string
 * has exactly one accepted encoding), or the loose reading of a header that
 * stops at the first '='. Hex digits are accepted in either case; encoding
 * writes lowercase. */
#ifndef GW_CODEC_H
#define GW_CODEC_H

#include <stddef.h>
#include <stdint.h>

enum {
    CODEC_B64_STD = 1 << 0,       /* '+' and '/' are digits 62 and 63 */
    CODEC_B64_URL = 1 << 1,       /* '-' and '_' are (both flags: either pair) */
    CODEC_B64_PAD = 1 << 2,       /* decode: up to two trailing '=', then the length is a multiple of 4;
                                     encode: pad to a multiple of 4 */
    CODEC_B64_CANONICAL = 1 << 3, /* decode: non-zero unused bits in the last character are an error */
    CODEC_B64_UNTIL_PAD = 1 << 4, /* decode: read up to the first '=' and ignore the rest; a length no
                                     encoding has is not an error (a dangling character's bits are dropped) */
};

/* The decoded size of base64 text s[0..n) from its length and padding alone
 * (characters are not checked): 0, or -1 if no encoding has that shape under
 * flags (padding not allowed or misplaced, a length of 4k+1). */
int codec_base64_decoded_len(const char *s, size_t n, unsigned flags, size_t *len);

/* Decodes s[0..n) into out (cap bytes), setting *outlen: 0, or -1 on a bad
 * shape (as codec_base64_decoded_len), a character outside the alphabets,
 * non-canonical trailing bits under CODEC_B64_CANONICAL, or more than cap
 * bytes. */
int codec_base64_decode(const char *s, size_t n, unsigned flags, uint8_t *out, size_t cap, size_t *outlen);

/* The length of the base64 text of n bytes: with CODEC_B64_PAD a multiple
 * of 4, else without the '='. */
size_t codec_base64_encoded_len(size_t n, unsigned flags);

/* Writes the base64 of in[0..n) to out (codec_base64_encoded_len bytes, no
 * NUL) in the URL alphabet if flags has CODEC_B64_URL, else the standard
 * one, padded under CODEC_B64_PAD. Returns the characters written. */
size_t codec_base64_encode(const uint8_t *in, size_t n, unsigned flags, char *out);

/* A hex digit's value (either case), or -1. c is a char or unsigned char. */
int codec_hex_value(int c);

/* Decodes hex s[0..n) into out (cap bytes), setting *outlen to n / 2: 0, or
 * -1 on an odd length, a non-hex character or more than cap bytes. */
int codec_hex_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen);

/* Writes the 2 * n lowercase hex digits of in[0..n) to out (no NUL);
 * returns out + 2 * n. */
char *codec_hex_encode(const uint8_t *in, size_t n, char *out);

#endif
