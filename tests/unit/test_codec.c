/* codec: base64 in both alphabets and each strictness the callers use
 * (OTLP/JSON: either alphabet, padding optional; JWT: base64url, no padding,
 * canonical; gRPC -bin headers: read up to the first '='), and hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

#define JSON (CODEC_B64_STD | CODEC_B64_URL | CODEC_B64_PAD)
#define JWT (CODEC_B64_URL | CODEC_B64_CANONICAL)
#define GRPC (CODEC_B64_STD | CODEC_B64_URL | CODEC_B64_UNTIL_PAD)

/* Decodes the C string s under flags; the decoded bytes go to out (64). */
static int dec(const char *s, unsigned flags, uint8_t *out, size_t *len)
{
    return codec_base64_decode(s, strlen(s), flags, out, 64, len);
}

static void expect(const char *s, unsigned flags, const char *want)
{
    uint8_t out[64];
    size_t len = 999;
    if (dec(s, flags, out, &len) != 0)
        fail_msg("\"%s\" (flags %u) rejected", s, flags);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    size_t shape;
    assert_int_equal(codec_base64_decoded_len(s, strlen(s), flags, &shape), 0);
    if (!(flags & CODEC_B64_UNTIL_PAD))
        assert_int_equal(shape, len);
}

static void reject(const char *s, unsigned flags)
{
    uint8_t out[64];
    size_t len = 999;
    if (dec(s, flags, out, &len) == 0)
        fail_msg("\"%s\" (flags %u) accepted", s, flags);
    assert_int_equal(len, 999); /* untouched on failure */
}

static void test_b64_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const padded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const bare[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        expect(padded[i], JSON, plain[i]);
        expect(bare[i], JSON, plain[i]);
        expect(bare[i], JWT, plain[i]);
        expect(padded[i], GRPC, plain[i]);
        expect(bare[i], GRPC, plain[i]);
        char enc[16];
        size_t n = strlen(plain[i]);
        assert_int_equal(codec_base64_encoded_len(n, CODEC_B64_PAD), strlen(padded[i]));
        assert_int_equal(codec_base64_encode((const uint8_t *)plain[i], n, CODEC_B64_PAD, enc), strlen(padded[i]));
        assert_memory_equal(enc, padded[i], strlen(padded[i]));
        assert_int_equal(codec_base64_encoded_len(n, CODEC_B64_URL), strlen(bare[i]));
        assert_int_equal(codec_base64_encode((const uint8_t *)plain[i], n, CODEC_B64_URL, enc), strlen(bare[i]));
        assert_memory_equal(enc, bare[i], strlen(bare[i]));
    }
}

static void test_b64_alphabets(void **state)
{
    (void)state;
    /* 0xfb 0xff 0xbf is "+/+/" standard, "-_-_" URL-safe. */
    expect("+/+/", JSON, "\xfb\xff\xbf");
    expect("-_-_", JSON, "\xfb\xff\xbf");
    expect("+_-/", JSON, "\xfb\xff\xbf"); /* OTLP/JSON takes either pair, even mixed */
    expect("-_-_", JWT, "\xfb\xff\xbf");
    reject("+/+/", JWT);
    reject("-_-/", JWT);
    expect("+/+/", GRPC, "\xfb\xff\xbf");
    expect("-_-_", GRPC, "\xfb\xff\xbf");
    expect("+/+/", CODEC_B64_STD, "\xfb\xff\xbf");
    reject("-_-_", CODEC_B64_STD);

    const uint8_t raw[3] = {0xfb, 0xff, 0xbf};
    char enc[4];
    codec_base64_encode(raw, 3, CODEC_B64_PAD, enc);
    assert_memory_equal(enc, "+/+/", 4);
    codec_base64_encode(raw, 3, CODEC_B64_URL, enc);
    assert_memory_equal(enc, "-_-_", 4);
}

static void test_b64_padding(void **state)
{
    (void)state;
    reject("Zg=", JSON);     /* padded, yet not to a multiple of 4 */
    reject("Zg===", JSON);   /* three '=' */
    reject("Zm9v=", JSON);
    reject("==", JSON);
    reject("Z===", JSON);
    reject("Zg==Zg==", JSON); /* '=' inside */
    reject("Zg==", JWT);      /* JWT: no padding at all */
    reject("Zm8=", JWT);
    reject("Zm9v====", JWT);
    /* gRPC headers: everything from the first '=' on is ignored. */
    expect("Zg=", GRPC, "f");
    expect("Zg==Zm9v", GRPC, "f");
    expect("=Zm9v", GRPC, "");
    char enc[8];
    assert_int_equal(codec_base64_encode((const uint8_t *)"f", 1, CODEC_B64_STD, enc), 2);
    assert_memory_equal(enc, "Zg", 2);
}

static void test_b64_lengths(void **state)
{
    (void)state;
    reject("Z", JSON);
    reject("Zm9vY", JSON);
    reject("Z", JWT);
    reject("Zm9vY", JWT);
    expect("Zm9vY", GRPC, "foo"); /* a dangling character's bits are dropped */
    uint8_t out[4];
    size_t len = 999;
    assert_int_equal(codec_base64_decode("Zm9vYg", 6, JWT, out, 4, &len), 0);
    assert_int_equal(len, 4);
    assert_int_equal(codec_base64_decode("Zm9vYmE", 7, JWT, out, 4, &len), -1); /* 5 bytes, cap 4 */
    assert_int_equal(codec_base64_decode("Zm9vYmE", 7, GRPC, out, 4, &len), -1);
    assert_int_equal(codec_base64_decoded_len("Zm9vYmE=", 8, JSON, &len), 0);
    assert_int_equal(len, 5);
    assert_int_equal(codec_base64_decoded_len("Zm9vY", 5, JSON, &len), -1);
}

static void test_b64_non_canonical(void **state)
{
    (void)state;
    /* "Zh" ("Zg" with a low bit set) and "Zm9" ("Zm8" likewise) carry
     * non-zero unused bits: JWT rejects them, the lenient readers drop the
     * bits. A whole quantum has no unused bits. */
    reject("Zh", JWT);
    reject("Zm9", JWT);
    expect("Zg", JWT, "f");
    expect("Zm8", JWT, "fo");
    expect("Zm9w", JWT, "fop");
    expect("Zh", JSON, "f");
    expect("Zh==", JSON, "f");
    expect("Zm9", JSON, "fo");
    expect("Zm9=", JSON, "fo");
    expect("Zh", GRPC, "f");
    expect("Zh", CODEC_B64_URL, "f");
}

static void test_b64_invalid_characters(void **state)
{
    (void)state;
    static const char *const bad[] = {"Zm 9v", "Zm9v\n", "Zm9*", "Zm\x80v", "Zm.v", "Zm9v!"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reject(bad[i], JSON);
        reject(bad[i], JWT);
        reject(bad[i], GRPC);
    }
    uint8_t out[4];
    size_t len;
    assert_int_equal(codec_base64_decode("Zm\0v", 4, JSON, out, sizeof(out), &len), -1);
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t len = 999;
    assert_int_equal(codec_hex_decode("00ff7fA0aBcD", 12, out, sizeof(out), &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(out, "\x00\xff\x7f\xa0\xab\xcd", 6);
    assert_int_equal(codec_hex_decode("", 0, out, 0, &len), 0);
    assert_int_equal(len, 0);
    len = 999;
    assert_int_equal(codec_hex_decode("abc", 3, out, sizeof(out), &len), -1); /* odd */
    assert_int_equal(codec_hex_decode("0g", 2, out, sizeof(out), &len), -1);
    assert_int_equal(codec_hex_decode("G0", 2, out, sizeof(out), &len), -1);
    assert_int_equal(codec_hex_decode(" 0", 2, out, sizeof(out), &len), -1);
    assert_int_equal(codec_hex_decode("0011", 4, out, 1, &len), -1); /* over cap */
    assert_int_equal(len, 999);

    for (int c = -128; c < 256; c++) {
        int want = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        assert_int_equal(codec_hex_value(c), want);
    }

    char enc[13];
    char *end = codec_hex_encode((const uint8_t *)"\x00\xff\x7f\xa0\xab\xcd", 6, enc);
    assert_ptr_equal(end, enc + 12);
    *end = '\0';
    assert_string_equal(enc, "00ff7fa0abcd"); /* lowercase */
}

/* Every byte string of length 0..5 (a sample) survives encode then decode
 * under each flag set that takes the encoder's output. */
static void test_round_trip(void **state)
{
    (void)state;
    uint8_t in[5], out[64];
    char enc[16];
    size_t len;
    for (unsigned seed = 0; seed < 4096; seed++) {
        size_t n = seed % 6;
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)((uint64_t)seed * 0x9e3779b97f4a7c15ull >> (8 * i));
        size_t m = codec_base64_encode(in, n, CODEC_B64_PAD, enc);
        assert_int_equal(codec_base64_decode(enc, m, JSON, out, sizeof(out), &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, in, n);
        m = codec_base64_encode(in, n, CODEC_B64_URL, enc);
        assert_int_equal(codec_base64_decode(enc, m, JWT, out, sizeof(out), &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, in, n);
        char *e = codec_hex_encode(in, n, enc);
        assert_int_equal(codec_hex_decode(enc, (size_t)(e - enc), out, sizeof(out), &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, in, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_rfc4648_vectors), cmocka_unit_test(test_b64_alphabets),
        cmocka_unit_test(test_b64_padding),         cmocka_unit_test(test_b64_lengths),
        cmocka_unit_test(test_b64_non_canonical),   cmocka_unit_test(test_b64_invalid_characters),
        cmocka_unit_test(test_hex),                 cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
