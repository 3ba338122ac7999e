/* slab: size classes, reuse of freed chunks, memory given back when empty,
 * bounded footprint under churn, chunks that never overlap, malloc beyond
 * SLAB_MAX, few mappings, and NULL when no block can be mapped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "slab.h"

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_sizes(void **state)
{
    (void)state;
    size_t prev = 0;
    for (size_t n = 1; n <= SLAB_MAX; n++) {
        size_t c = slab_size(n);
        assert_true(c >= n);
        assert_true(c % 16 == 0);
        assert_true(c >= prev); /* classes ascend with the size asked for */
        assert_true(c - n < (n <= 256 ? 32 : n / 16 + 1)); /* classes at most 1/16 apart past 256 */
        prev = c;
    }
    assert_int_equal(slab_size(SLAB_MAX), SLAB_MAX);
    assert_int_equal(slab_size(SLAB_MAX + 1), SLAB_MAX + 1 + 16);
    assert_int_equal(slab_size(272), 272);
    assert_int_equal(slab_size(273), 288);
}

static void test_reuse_after_free(void **state)
{
    (void)state;
    slab s;
    slab_init(&s);
    void *keep = slab_alloc(&s, 500); /* the slab is not empty: freed chunks stay mapped */
    char *p = slab_alloc(&s, 500);
    assert_non_null(keep);
    assert_non_null(p);
    assert_true((uintptr_t)p % 16 == 0);
    memset(p, 0xab, 500);
    size_t mapped = slab_footprint(&s);
    assert_int_equal(mapped, SLAB_BLOCK);
    slab_free(&s, p, 500);
    char *q = slab_alloc(&s, 510); /* same class (512): the same chunk */
    assert_ptr_equal(q, p);
    assert_int_equal(slab_footprint(&s), mapped);
    char *r = slab_alloc(&s, 100); /* another class: another block */
    assert_non_null(r);
    assert_int_equal(slab_footprint(&s), 2 * SLAB_BLOCK);
    slab_free(&s, r, 100);
    slab_free(&s, q, 510);
    slab_free(&s, keep, 500);
    assert_int_equal(s.chunks, 0);
    assert_int_equal(slab_footprint(&s), 0);
    slab_destroy(&s);
}

/* Many blocks of many classes, freed in random order: nothing stays mapped. */
static void test_released_when_empty(void **state)
{
    (void)state;
    slab s;
    slab_init(&s);
    enum { N = 20000 };
    char **p = calloc(N, sizeof(*p));
    size_t *n = calloc(N, sizeof(*n));
    for (size_t i = 0; i < N; i++) {
        n[i] = 1 + rnd() % 4000;
        p[i] = slab_alloc(&s, n[i]);
        assert_non_null(p[i]);
        memset(p[i], (int)(i & 0xff), n[i]);
    }
    assert_true(slab_footprint(&s) > 100 * (size_t)SLAB_BLOCK);
    for (size_t i = N - 1; i > 0; i--) { /* shuffle */
        size_t j = rnd() % (i + 1);
        char *tp = p[i];
        p[i] = p[j];
        p[j] = tp;
        size_t tn = n[i];
        n[i] = n[j];
        n[j] = tn;
    }
    for (size_t i = 0; i < N; i++)
        slab_free(&s, p[i], n[i]);
    assert_int_equal(s.chunks, 0);
    assert_int_equal(s.n_used, 0);
    assert_int_equal(s.n_spare, 0);
    assert_int_equal(s.n_regions, 0);
    assert_int_equal(slab_footprint(&s), 0);
    /* and it works again afterwards */
    void *again = slab_alloc(&s, 64);
    assert_non_null(again);
    slab_free(&s, again, 64);
    slab_destroy(&s);
    free(p);
    free(n);
}

/* The sampler's pattern: objects freed roughly in the order they came, a
 * window of them alive. Every chunk keeps its own bytes (no overlap), and
 * what is mapped stops growing once the window is full. */
static void test_churn_bounded(void **state)
{
    (void)state;
    slab s;
    slab_init(&s);
    enum { W = 8000, ROUNDS = 40 };
    char **p = calloc(W, sizeof(*p));
    size_t *n = calloc(W, sizeof(*n));
    size_t live = 0, peak_early = 0, peak_late = 0;
    for (size_t r = 0; r < ROUNDS; r++) {
        for (size_t k = 0; k < W; k++) {
            /* free a slot near the oldest (not quite FIFO), then fill it */
            size_t i = (k + rnd() % 64) % W;
            if (p[i] != NULL) {
                for (size_t b = 0; b < n[i]; b++)
                    assert_int_equal((unsigned char)p[i][b], (unsigned char)(n[i] + i));
                slab_free(&s, p[i], n[i]);
                live -= slab_size(n[i]);
            }
            n[i] = 300 + rnd() % 1800;
            p[i] = slab_alloc(&s, n[i]);
            assert_non_null(p[i]);
            memset(p[i], (int)((n[i] + i) & 0xff), n[i]);
            live += slab_size(n[i]);
            size_t m = slab_footprint(&s);
            if (r < 4 && m > peak_early)
                peak_early = m;
            if (r >= 4 && m > peak_late)
                peak_late = m;
        }
    }
    /* a block per class in use beyond the chunks themselves, and the spares */
    size_t classes = 48, spares = 4 + (live / SLAB_BLOCK) / 32 + 1;
    assert_true(slab_footprint(&s) <= live + (classes + spares) * (size_t)SLAB_BLOCK);
    assert_true(peak_late <= peak_early + 8 * (size_t)SLAB_BLOCK);
    for (size_t i = 0; i < W; i++)
        slab_free(&s, p[i], n[i]);
    assert_int_equal(slab_footprint(&s), 0);
    slab_destroy(&s);
    free(p);
    free(n);
}

/* Emptied blocks beyond the few spares give their pages back (cold) and
 * are used again before any new region is mapped. */
static void test_cold_blocks_reused(void **state)
{
    (void)state;
    slab s;
    slab_init(&s);
    enum { PER = (SLAB_BLOCK - 64) / 1024, N = 20 * PER };
    char **p = calloc(N, sizeof(*p));
    void *keep = slab_alloc(&s, 100); /* the slab never empties */
    for (size_t i = 0; i < N; i++)
        assert_non_null(p[i] = slab_alloc(&s, 1024));
    assert_int_equal(slab_footprint(&s), 21 * (size_t)SLAB_BLOCK);
    for (size_t i = 0; i < N; i++)
        slab_free(&s, p[i], 1024);
    assert_int_equal(s.n_spare, 4);
    assert_int_equal(slab_footprint(&s), (1 + 4) * (size_t)SLAB_BLOCK); /* 16 blocks given back */
    assert_non_null(s.cold);
    for (size_t i = 0; i < N; i++) {
        assert_non_null(p[i] = slab_alloc(&s, 1000 + i % 24));
        memset(p[i], (int)(i & 0xff), 1000);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t b = 0; b < 1000; b++)
            assert_int_equal((unsigned char)p[i][b], (unsigned char)(i & 0xff));
    assert_int_equal(s.n_regions, 1);
    assert_null(s.cold);
    for (size_t i = 0; i < N; i++)
        slab_free(&s, p[i], 1000 + i % 24);
    slab_free(&s, keep, 100);
    assert_int_equal(slab_footprint(&s), 0);
    assert_int_equal(s.n_regions, 0);
    slab_destroy(&s);
    free(p);
}

/* Beyond SLAB_MAX: malloc, nothing mapped by the slab. */
static void test_large(void **state)
{
    (void)state;
    slab s;
    slab_init(&s);
    char *p = slab_alloc(&s, SLAB_MAX + 1);
    assert_non_null(p);
    memset(p, 1, SLAB_MAX + 1);
    assert_int_equal(slab_footprint(&s), 0);
    assert_int_equal(s.chunks, 0);
    slab_free(&s, p, SLAB_MAX + 1);
    slab_destroy(&s);
}

/* slab_destroy unmaps blocks that still hold chunks (full ones too). */
static void test_destroy_with_chunks(void **state)
{
    (void)state;
    slab s;
    slab_init(&s);
    for (size_t i = 0; i < 3 * SLAB_BLOCK / 1024; i++)
        assert_non_null(slab_alloc(&s, 1024));
    assert_non_null(slab_alloc(&s, 40));
    assert_true(s.full != NULL);
    slab_destroy(&s);
    assert_int_equal(slab_footprint(&s), 0);
    assert_int_equal(s.chunks, 0);
}

static size_t count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    size_t n = 0;
    int c;
    while (f != NULL && (c = fgetc(f)) != EOF)
        n += c == '\n';
    if (f != NULL)
        fclose(f);
    return n;
}

/* Blocks come from regions mapped 64 at a time: a sampler holding
 * gigabytes must stay far below vm.max_map_count (65530). */
static void test_few_mappings(void **state)
{
    (void)state;
    slab s;
    slab_init(&s);
    size_t before = count_mappings();
    for (size_t i = 0; slab_footprint(&s) < 256 * (size_t)SLAB_BLOCK; i++)
        assert_non_null(slab_alloc(&s, 1000 + (i % 8) * 500));
    size_t after = count_mappings();
    assert_true(after < before + 16); /* 4 regions; a mapping per block would be 256 */
    slab_destroy(&s);
}

static size_t vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

#define OOM_MAX 32768
static void *oom_p[OOM_MAX];

/* In a child whose address space is capped just above its size: allocations
 * fail (NULL) once no block can be mapped, and succeed again after frees
 * give blocks back. No malloc in the child after the cap. Exit status:
 * 0 as expected, else which step went wrong. */
static int oom_child(void)
{
    slab s;
    slab_init(&s);
    size_t region = (size_t)SLAB_REGION_BLOCKS * SLAB_BLOCK;
    struct rlimit rl = {.rlim_cur = vm_bytes() + region + region / 2, .rlim_max = RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 1;
    size_t n = 0;
    while (n < OOM_MAX && (oom_p[n] = slab_alloc(&s, 1000)) != NULL)
        n++;
    if (n == 0 || n == OOM_MAX)
        return 2; /* the cap let no block be mapped, or did not stop the slab */
    if (slab_alloc(&s, 3000) != NULL)
        return 3; /* a new class needs a new block: the region is used up, no other can be mapped */
    for (size_t i = 0; i < n; i++)
        slab_free(&s, oom_p[i], 1000);
    if (slab_footprint(&s) != 0)
        return 4;
    void *q = slab_alloc(&s, 3000);
    if (q == NULL)
        return 5;
    slab_free(&s, q, 3000);
    return 0;
}

static void test_out_of_memory(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(oom_child());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_reuse_after_free),
        cmocka_unit_test(test_released_when_empty),
        cmocka_unit_test(test_churn_bounded),
        cmocka_unit_test(test_cold_blocks_reused),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_destroy_with_chunks),
        cmocka_unit_test(test_few_mappings),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
