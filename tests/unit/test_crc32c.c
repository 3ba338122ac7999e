/* crc32c: the check value, RFC 3720's test vectors, and the CPU instruction
 * path equal to the table path at every length and alignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

static void expect_both(const void *p, size_t n, uint32_t want)
{
    assert_int_equal(crc32c(p, n), want);
    assert_int_equal(crc32c_portable(p, n), want);
}

static void test_vectors(void **state)
{
    (void)state;
    expect_both("", 0, 0x00000000u);
    expect_both("123456789", 9, 0xE3069283u);
    uint8_t b[32];
    memset(b, 0, sizeof(b));
    expect_both(b, sizeof(b), 0x8A9136AAu);
    memset(b, 0xff, sizeof(b));
    expect_both(b, sizeof(b), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    expect_both(b, sizeof(b), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    expect_both(b, sizeof(b), 0x113FDB5Cu);
}

/* n pseudo-random bytes (xorshift from seed), malloc'ed: the caller frees. */
static uint8_t *random_bytes(size_t n, uint64_t seed)
{
    uint8_t *d = malloc(n);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        d[i] = (uint8_t)seed;
    }
    return d;
}

/* Every length up to 1,100 bytes from every offset modulo 8: the tails and
 * unaligned loads of both paths. A one-bit change changes the value. */
static void test_paths_agree(void **state)
{
    (void)state;
    enum { MAX = 1100 };
    uint8_t *d = random_bytes(MAX + 8, 0x9E3779B97F4A7C15ull);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= MAX; n++)
            assert_int_equal(crc32c(d + off, n), crc32c_portable(d + off, n));
    uint32_t before = crc32c(d, MAX);
    d[MAX / 2] ^= 0x10;
    assert_int_not_equal(crc32c(d, MAX), before);
    free(d);
}

/* Past 768 and 12,288 bytes the instruction runs in three lanes whose
 * registers are joined: around and across those sizes, at every alignment
 * and from a running checksum, it must agree with the table. */
static void test_lanes(void **state)
{
    (void)state;
    enum { MAX = 40000 };
    uint8_t *d = random_bytes(MAX + 8, 0x2545F4914F6CDD1Dull);
    static const size_t sizes[] = {767,   768,   769,   775,   1536,  2311,  12287, 12288, 12289,
                                   13056, 13063, 24576, 25343, 25344, 25351, 36864, 39999, MAX};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        for (size_t off = 0; off < 8; off++) {
            size_t n = sizes[k];
            uint32_t want = crc32c_portable(d + off, n);
            assert_int_equal(crc32c(d + off, n), want);
            size_t cut = (n * 7) / 13;
            assert_int_equal(crc32c_extend(crc32c(d + off, cut), d + off + cut, n - cut), want);
        }
    free(d);
}

/* A checksum built in pieces equals the one over the whole, wherever the
 * bytes are split (the disk queue adds a record's segment number last). */
static void test_extend(void **state)
{
    (void)state;
    uint8_t d[300];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(d); n += 23) {
        uint32_t whole = crc32c_portable(d, n);
        assert_int_equal(crc32c_extend(0, d, n), whole);
        for (size_t k = 0; k <= n; k++)
            assert_int_equal(crc32c_extend(crc32c(d, k), d + k, n - k), whole);
    }
    /* RFC 3720's 32 bytes of zeros, in two pieces */
    static const uint8_t zeros[32];
    assert_int_equal(crc32c_extend(crc32c(zeros, 5), zeros + 5, 27), 0x8A9136AAu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_paths_agree),
        cmocka_unit_test(test_extend),
        cmocka_unit_test(test_lanes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
