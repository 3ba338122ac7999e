/* queue_testlib: what the queue's unit suites share (queue_testlib.h). */
#include "queue_testlib.h"

#include <dirent.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

char base[64];
char qdir[96];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/test_queue_XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(qdir, sizeof(qdir), "%s/b", base);
    return 0;
}

int teardown(void **state)
{
    (void)state;
    return nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

export_queue *open_q(const char *dir, size_t max_bytes, size_t segment_bytes, queue_fsync fs)
{
    queue_config c = {.max_bytes = max_bytes, .dir = dir, .fsync = fs, .segment_bytes = segment_bytes};
    char err[256] = "";
    export_queue *q = queue_open(&c, "b", err, sizeof(err));
    if (q == NULL)
        fail_msg("queue_open: %s", err);
    return q;
}

void push(export_queue *q, otlp_signal sig, const char *tenant, const void *data, size_t len)
{
    char err[256] = "";
    assert_int_equal(queue_reserve(q, NULL, len), 0);
    if (queue_push(q, sig, tenant, (uint32_t)len, data, len, err, sizeof(err)) != 0)
        fail_msg("queue_push: %s", err);
}

/* Entry i's payload: deterministic bytes of a length that varies with i. */
size_t payload(unsigned i, uint8_t *buf)
{
    size_t len = 1 + (i * 37u) % 3000u;
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 131u + k * 7u);
    return len;
}

void push_n(export_queue *q, unsigned from, unsigned to)
{
    static uint8_t buf[4096];
    for (unsigned i = from; i < to; i++)
        push(q, (otlp_signal)(i % 3 == 2 ? OTLP_LOGS : OTLP_TRACES), i % 5 == 4 ? "other" : "t1", buf,
             payload(i, buf));
}

/* Consumes `count` entries, checking they are entries from..from+count-1 of push_n. */
void expect_n(export_queue *q, unsigned from, unsigned count)
{
    static uint8_t buf[4096];
    queue_entry e[16];
    unsigned i = from;
    while (i < from + count) {
        size_t n = queue_peek(q, e, 16, 1, 1000, NULL), k;
        assert_true(n > 0);
        for (k = 0; k < n && i < from + count; k++, i++) {
            size_t len = payload(i, buf);
            assert_int_equal(e[k].len, len);
            assert_memory_equal(e[k].data, buf, len);
            assert_int_equal(e[k].items, len);
            assert_int_equal(e[k].signal, i % 3 == 2 ? OTLP_LOGS : OTLP_TRACES);
            assert_string_equal(e[k].tenant, i % 5 == 4 ? "other" : "t1");
        }
        queue_ack(q, e, k);
    }
}

int count_segs(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += strlen(de->d_name) == 24 && strcmp(de->d_name + 20, ".seg") == 0;
    closedir(d);
    return n;
}

/* Consumes whatever is queued. */
void drain(export_queue *q)
{
    queue_entry e[16];
    size_t n;
    while ((n = queue_peek(q, e, 16, 1, 0, NULL)) > 0)
        queue_ack(q, e, n);
}

/* Spare files (NUM.free) in dir; their inode numbers in ino (up to max). */
int spares(const char *dir, ino_t *ino, int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strlen(de->d_name) == 25 && strcmp(de->d_name + 20, ".free") == 0) {
            if (n < max)
                ino[n] = de->d_ino;
            n++;
        }
    closedir(d);
    return n;
}

void seg_path(char *out, size_t len, unsigned long num)
{
    snprintf(out, len, "%s/%020lu.seg", qdir, num);
}

off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* What a reopen found: records replayed, skipped as damaged, torn tails. */
void expect_recovery(export_queue *q, uint64_t recovered, uint64_t corrupt, uint64_t torn)
{
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.recovered_entries, recovered);
    assert_int_equal(st.corrupt_records, corrupt);
    assert_int_equal(st.torn_records, torn);
}
