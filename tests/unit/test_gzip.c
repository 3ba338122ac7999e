#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gzip.h"

/* Compresses `len` bytes of `in` into a fresh buffer (caller frees). */
static buf compress(const void *in, size_t len)
{
    buf b = BUF_INIT;
    assert_int_equal(gzip_deflate(in, len, -1, &b), GZIP_OK);
    return b;
}

/* Inflates into a throwaway arena, for tests that need only the status. */
static gzip_status inflate_status(const void *in, size_t len, size_t max_out)
{
    arena *a = arena_new(0);
    uint8_t *out;
    size_t outlen;
    gzip_status st = gzip_inflate(in, len, max_out, a, &out, &outlen);
    arena_free(a);
    return st;
}

/* n bytes of text, its gzip form, and an arena to inflate into. */
typedef struct sample {
    uint8_t *data;
    size_t n;
    buf z;
    arena *a;
} sample;

static sample sample_new(size_t n, size_t arena_limit)
{
    sample s = {.data = malloc(n), .n = n};
    /* Compressible but not trivial: repeated words with a changing counter. */
    for (size_t i = 0; i < n; i++)
        s.data[i] = (uint8_t)("span-attribute-"[i % 15] + (i / 4096) % 7);
    s.z = compress(s.data, n);
    s.a = arena_new(arena_limit);
    return s;
}

static gzip_status sample_inflate(sample *s, size_t max_out, uint8_t **out, size_t *outlen)
{
    return gzip_inflate((uint8_t *)s->z.data, s->z.len, max_out, s->a, out, outlen);
}

static void sample_free(sample *s)
{
    arena_free(s->a);
    buf_free(&s->z);
    free(s->data);
}

static void test_round_trip(void **state)
{
    (void)state;
    sample s = sample_new(300000, 0); /* larger than the first buffer: exercises growth */
    assert_true(s.z.len < s.n);
    uint8_t *out;
    size_t outlen;
    assert_int_equal(sample_inflate(&s, s.n, &out, &outlen), GZIP_OK);
    assert_int_equal(outlen, s.n);
    assert_memory_equal(out, s.data, s.n);
    sample_free(&s);
}

static void test_every_level(void **state)
{
    (void)state;
    const char *msg = "hello, gateway";
    for (int level = -1; level <= 9; level++) {
        buf z = BUF_INIT;
        assert_int_equal(gzip_deflate((const uint8_t *)msg, strlen(msg), level, &z), GZIP_OK);
        arena *a = arena_new(0);
        uint8_t *out;
        size_t outlen;
        assert_int_equal(gzip_inflate((uint8_t *)z.data, z.len, 100, a, &out, &outlen), GZIP_OK);
        assert_int_equal(outlen, strlen(msg));
        assert_memory_equal(out, msg, outlen);
        arena_free(a);
        buf_free(&z);
    }
    buf z = BUF_INIT;
    assert_int_equal(gzip_deflate((const uint8_t *)msg, 3, 10, &z), GZIP_ERR_FORMAT);
    assert_int_equal(gzip_deflate((const uint8_t *)msg, 3, -2, &z), GZIP_ERR_FORMAT);
    assert_int_equal(z.len, 0);
    buf_free(&z);
}

static void test_deflate_appends(void **state)
{
    (void)state;
    buf b = BUF_INIT;
    buf_puts(&b, "prefix");
    assert_int_equal(gzip_deflate((const uint8_t *)"abc", 3, 6, &b), GZIP_OK);
    assert_memory_equal(b.data, "prefix", 6);
    assert_int_equal((uint8_t)b.data[6], 0x1f); /* gzip magic */
    assert_int_equal((uint8_t)b.data[7], 0x8b);
    buf_free(&b);
}

static void test_empty_payload(void **state)
{
    (void)state;
    buf z = compress(NULL, 0);
    arena *a = arena_new(0);
    uint8_t *out = NULL;
    size_t outlen = 99;
    assert_int_equal(gzip_inflate((uint8_t *)z.data, z.len, 0, a, &out, &outlen), GZIP_OK);
    assert_int_equal(outlen, 0);
    assert_non_null(out);
    arena_free(a);
    buf_free(&z);
}

static void test_multi_member(void **state)
{
    (void)state;
    buf z = BUF_INIT;
    assert_int_equal(gzip_deflate((const uint8_t *)"first,", 6, -1, &z), GZIP_OK);
    assert_int_equal(gzip_deflate((const uint8_t *)"", 0, -1, &z), GZIP_OK);
    assert_int_equal(gzip_deflate((const uint8_t *)"second", 6, 9, &z), GZIP_OK);
    arena *a = arena_new(0);
    uint8_t *out;
    size_t outlen;
    assert_int_equal(gzip_inflate((uint8_t *)z.data, z.len, 1024, a, &out, &outlen), GZIP_OK);
    assert_int_equal(outlen, 12);
    assert_memory_equal(out, "first,second", 12);
    /* The limit applies to the members together. */
    assert_int_equal(inflate_status(z.data, z.len, 11), GZIP_ERR_TOO_LARGE);
    arena_free(a);
    buf_free(&z);
}

static void test_bomb_stops_at_limit(void **state)
{
    (void)state;
    size_t n = (size_t)10 << 20;
    uint8_t *zeros = calloc(1, n);
    buf z = compress(zeros, n);
    free(zeros);
    assert_true(z.len < 64 * 1024);
    arena *a = arena_new(0);
    uint8_t *out;
    size_t outlen;
    clock_t t0 = clock();
    assert_int_equal(gzip_inflate((uint8_t *)z.data, z.len, (size_t)1 << 20, a, &out, &outlen), GZIP_ERR_TOO_LARGE);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    /* No buffer exceeds max_out; with geometric growth all of them together
     * stay under three times that. */
    assert_true(arena_used(a) < (size_t)3 << 20);
    assert_true(secs < 1.0);
    arena_free(a);
    buf_free(&z);
}

static void test_exact_limit(void **state)
{
    (void)state;
    sample s = sample_new(10000, 0);
    uint8_t *out;
    size_t outlen;
    assert_int_equal(sample_inflate(&s, s.n, &out, &outlen), GZIP_OK);
    assert_int_equal(outlen, s.n);
    assert_memory_equal(out, s.data, s.n);
    assert_int_equal(sample_inflate(&s, s.n - 1, &out, &outlen), GZIP_ERR_TOO_LARGE);
    sample_free(&s);
}

static void test_truncated(void **state)
{
    (void)state;
    const char *msg = "a message long enough to be worth compressing, repeated, repeated";
    buf z = compress(msg, strlen(msg));
    /* Every proper prefix is malformed: cut in the header, the data, the trailer. */
    for (size_t cut = 1; cut < z.len; cut++)
        assert_int_equal(inflate_status(z.data, cut, 1024), GZIP_ERR_FORMAT);
    buf_free(&z);
}

static void test_garbage(void **state)
{
    (void)state;
    const uint8_t junk[] = "this is not gzip at all";
    assert_int_equal(inflate_status(junk, sizeof(junk), 1024), GZIP_ERR_FORMAT);
    assert_int_equal(inflate_status(junk, 0, 1024), GZIP_ERR_FORMAT);
    /* A zlib stream (not gzip) is rejected too. */
    const uint8_t zlib_hdr[] = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    assert_int_equal(inflate_status(zlib_hdr, sizeof(zlib_hdr), 1024), GZIP_ERR_FORMAT);
    /* Corrupt a body byte: the CRC or the deflate data must catch it. */
    buf z = compress("checksummed payload", 19);
    z.data[12] ^= 0x55;
    assert_int_equal(inflate_status(z.data, z.len, 1024), GZIP_ERR_FORMAT);
    buf_free(&z);
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    buf z = compress("payload", 7);
    size_t good = z.len;
    assert_int_equal(inflate_status(z.data, z.len, 1024), GZIP_OK);
    buf_puts(&z, "xyz");
    assert_int_equal(inflate_status(z.data, z.len, 1024), GZIP_ERR_FORMAT);
    /* Even a lone byte, or the start of a header, or zero padding. */
    const char *tails[] = {"\x1f", "\x1f\x8b", "\0\0\0\0"};
    size_t tail_lens[] = {1, 2, 4};
    for (size_t i = 0; i < 3; i++) {
        z.len = good;
        buf_append(&z, tails[i], tail_lens[i]);
        assert_int_equal(inflate_status(z.data, z.len, 1024), GZIP_ERR_FORMAT);
    }
    buf_free(&z);
}

static void test_arena_limit_is_nomem(void **state)
{
    (void)state;
    sample s = sample_new(200000, 64 * 1024); /* the arena is smaller than the output */
    uint8_t *out;
    size_t outlen;
    assert_int_equal(sample_inflate(&s, s.n, &out, &outlen), GZIP_ERR_NOMEM);
    assert_true(arena_failed(s.a));
    sample_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_every_level),
        cmocka_unit_test(test_deflate_appends),  cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_multi_member),     cmocka_unit_test(test_bomb_stops_at_limit),
        cmocka_unit_test(test_exact_limit),      cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_garbage),          cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_arena_limit_is_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
