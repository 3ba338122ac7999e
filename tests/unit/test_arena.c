#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena.h"

static void test_alloc_aligned_and_distinct(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    assert_non_null(a);
    char *p = arena_alloc(a, 3);
    char *q = arena_alloc(a, 5);
    assert_non_null(p);
    assert_non_null(q);
    assert_true(((uintptr_t)p % 16) == 0);
    assert_true(((uintptr_t)q % 16) == 0);
    assert_true(q >= p + 3 || p >= q + 5);
    assert_int_equal(arena_used(a), 32);
    arena_free(a);
}

static void test_grows_past_first_chunk(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    /* 1000 x 1 KiB crosses many chunks; every block must stay writable. */
    char *blocks[1000];
    for (int i = 0; i < 1000; i++) {
        blocks[i] = arena_alloc(a, 1024);
        assert_non_null(blocks[i]);
        memset(blocks[i], i & 0xff, 1024);
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal((unsigned char)blocks[i][1023], i & 0xff);
    char *big = arena_alloc(a, 10 * 1024 * 1024);
    assert_non_null(big);
    big[10 * 1024 * 1024 - 1] = 1;
    arena_free(a);
}

static void test_limit_fails_and_flags(void **state)
{
    (void)state;
    arena *a = arena_new(1024);
    assert_non_null(arena_alloc(a, 1000));
    assert_false(arena_failed(a));
    assert_null(arena_alloc(a, 100));
    assert_true(arena_failed(a));
    assert_null(arena_alloc(a, SIZE_MAX));
    assert_null(arena_calloc(a, SIZE_MAX / 2, 4));
    arena_reset(a);
    assert_false(arena_failed(a));
    assert_int_equal(arena_used(a), 0);
    assert_non_null(arena_alloc(a, 1024));
    arena_free(a);
}

static void test_reset_reuses_memory(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    void *first = arena_alloc(a, 64);
    for (int i = 0; i < 100; i++)
        assert_non_null(arena_alloc(a, 4096));
    arena_reset(a);
    /* After reset the first chunk is reused: same address for the same request. */
    assert_ptr_equal(arena_alloc(a, 64), first);
    arena_free(a);
}

/* Resident set size in bytes (/proc/self/statm, in pages). */
static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long total = 0, resident = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu %lu", &total, &resident), 2);
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* A huge request's memory goes back to the system at reset, even after
 * earlier large frees (which make glibc serve big blocks from a heap it
 * keeps): four 96 MiB rounds, RSS back near where it started after each. */
static void test_reset_returns_large_memory(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    size_t base = rss_bytes();
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 96; i++) {
            void *p = arena_alloc(a, (size_t)1 << 20);
            assert_non_null(p);
            memset(p, round + 1, (size_t)1 << 20); /* resident, not just reserved */
        }
        assert_true(rss_bytes() > base + ((size_t)80 << 20));
        arena_reset(a);
        assert_true(rss_bytes() < base + ((size_t)16 << 20));
    }
    arena_free(a);
}

static void test_strndup_and_protobuf_allocator(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    char *s = arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    ProtobufCAllocator al = arena_protobuf_allocator(a);
    void *p = al.alloc(al.allocator_data, 40);
    assert_non_null(p);
    al.free(al.allocator_data, p); /* no-op, must not crash */
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_and_distinct),
        cmocka_unit_test(test_grows_past_first_chunk),
        cmocka_unit_test(test_limit_fails_and_flags),
        cmocka_unit_test(test_reset_reuses_memory),
        cmocka_unit_test(test_reset_returns_large_memory),
        cmocka_unit_test(test_strndup_and_protobuf_allocator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
