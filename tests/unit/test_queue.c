/* queue: memory FIFO, batching, admission, waiting, and the disk queue's
 * persistence and recovery (torn tails, bad checksums, foreign files), plus
 * many producers against one consumer. Built with a 256 KiB resident budget
 * so the disk tests also exercise reading spilled records back. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"

static char base[64];
static char qdir[96];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/test_queue_XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(qdir, sizeof(qdir), "%s/b", base);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static export_queue *open_q(const char *dir, size_t max_bytes, size_t segment_bytes, queue_fsync fs)
{
    queue_config c = {.max_bytes = max_bytes, .dir = dir, .fsync = fs, .segment_bytes = segment_bytes};
    char err[256] = "";
    export_queue *q = queue_open(&c, "b", err, sizeof(err));
    if (q == NULL)
        fail_msg("queue_open: %s", err);
    return q;
}

static void push(export_queue *q, otlp_signal sig, const char *tenant, const void *data, size_t len)
{
    char err[256] = "";
    assert_int_equal(queue_reserve(q, NULL, len), 0);
    if (queue_push(q, sig, tenant, (uint32_t)len, data, len, err, sizeof(err)) != 0)
        fail_msg("queue_push: %s", err);
}

/* Entry i's payload: deterministic bytes of a length that varies with i. */
static size_t payload(unsigned i, uint8_t *buf)
{
    size_t len = 1 + (i * 37u) % 3000u;
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 131u + k * 7u);
    return len;
}

static void push_n(export_queue *q, unsigned from, unsigned to)
{
    static uint8_t buf[4096];
    for (unsigned i = from; i < to; i++)
        push(q, (otlp_signal)(i % 3 == 2 ? OTLP_LOGS : OTLP_TRACES), i % 5 == 4 ? "other" : "t1", buf,
             payload(i, buf));
}

/* Consumes `count` entries, checking they are entries from..from+count-1 of push_n. */
static void expect_n(export_queue *q, unsigned from, unsigned count)
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

static int count_segs(const char *dir)
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
static void drain(export_queue *q)
{
    queue_entry e[16];
    size_t n;
    while ((n = queue_peek(q, e, 16, 1, 0, NULL)) > 0)
        queue_ack(q, e, n);
}

/* Spare files (NUM.free) in dir; their inode numbers in ino (up to max). */
static int spares(const char *dir, ino_t *ino, int max)
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

static void seg_path(char *out, size_t len, unsigned long num)
{
    snprintf(out, len, "%s/%020lu.seg", qdir, num);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* What a reopen found: records replayed, skipped as damaged, torn tails. */
static void expect_recovery(export_queue *q, uint64_t recovered, uint64_t corrupt, uint64_t torn)
{
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.recovered_entries, recovered);
    assert_int_equal(st.corrupt_records, corrupt);
    assert_int_equal(st.torn_records, torn);
}

static void test_memory_fifo_batching(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 1 << 20, 0, QUEUE_FSYNC_INTERVAL);
    push(q, OTLP_TRACES, "t1", "A", 1);
    push(q, OTLP_TRACES, "t1", "BB", 2);
    push(q, OTLP_LOGS, "t1", "CCC", 3);
    push(q, OTLP_TRACES, "t2", "DDDD", 4);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 4);
    assert_int_equal(st.bytes, 10);

    queue_entry e[8];
    uint64_t age = 99999;
    assert_int_equal(queue_peek(q, e, 8, 1, 0, &age), 2);
    assert_true(age < 1000);
    assert_memory_equal(e[0].data, "A", 1);
    assert_memory_equal(e[1].data, "BB", 2);
    assert_string_equal(e[1].tenant, "t1");
    queue_ack(q, e, 2);
    assert_int_equal(queue_peek(q, e, 8, 1, 0, NULL), 1);
    assert_int_equal(e[0].signal, OTLP_LOGS);
    queue_ack(q, e, 1);
    assert_int_equal(queue_peek(q, e, 8, 1, 0, NULL), 1);
    assert_string_equal(e[0].tenant, "t2");
    assert_memory_equal(e[0].data, "DDDD", 4);
    queue_ack(q, e, 1);
    assert_int_equal(queue_peek(q, e, 8, 1, 0, NULL), 0);
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    queue_close(q);
}

static void test_memory_max_entries(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 1 << 20, 0, QUEUE_FSYNC_INTERVAL);
    for (int i = 0; i < 5; i++)
        push(q, OTLP_METRICS, NULL, "x", 1);
    queue_entry e[8];
    assert_int_equal(queue_peek(q, e, 3, 1, 0, NULL), 3);
    assert_string_equal(e[0].tenant, "");
    queue_ack(q, e, 3);
    assert_int_equal(queue_peek(q, e, 8, 1, 0, NULL), 2);
    queue_close(q);
}

static void test_reserve_accounting(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 100, 0, QUEUE_FSYNC_INTERVAL);
    assert_int_equal(queue_reserve(q, NULL, 60), 0);
    assert_int_equal(queue_reserve(q, NULL, 50), -1);
    assert_int_equal(queue_reserve(q, NULL, 101), -2); /* can never fit: not "full for now" */
    queue_unreserve(q, NULL, 60);
    assert_int_equal(queue_reserve(q, NULL, 100), 0);
    uint8_t data[100] = {0};
    assert_int_equal(queue_push(q, OTLP_TRACES, "t", 1, data, 100, NULL, 0), 0);
    assert_int_equal(queue_reserve(q, NULL, 1), -1);
    queue_entry e[1];
    assert_int_equal(queue_peek(q, e, 1, 1, 0, NULL), 1);
    queue_ack(q, e, 1);
    assert_int_equal(queue_reserve(q, NULL, 100), 0);

    /* A refused push gives its reservation back. */
    char tenant[300], err[128] = "";
    memset(tenant, 'x', sizeof(tenant) - 1);
    tenant[sizeof(tenant) - 1] = '\0';
    assert_int_equal(queue_push(q, OTLP_TRACES, tenant, 1, data, 100, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(queue_reserve(q, NULL, 100), 0);
    queue_close(q);
}

/* queue.tenant_share: a tenant holds at most its share of max_bytes,
 * reserved and queued together; the others still get in. */
static void test_tenant_share(void **state)
{
    (void)state;
    queue_config c = {.max_bytes = 1000, .tenant_share = 0.5};
    char err[128] = "";
    export_queue *q = queue_open(&c, "b", err, sizeof(err));
    assert_non_null(q);
    uint8_t data[400] = {0};
    assert_int_equal(queue_reserve(q, "a", 400), 0);
    assert_int_equal(queue_push(q, OTLP_TRACES, "a", 1, data, 400, NULL, 0), 0);
    assert_int_equal(queue_reserve(q, "a", 200), -1); /* 600 > 500: over a's share */
    assert_int_equal(queue_reserve(q, "a", 100), 0);  /* 500: exactly its share */
    assert_int_equal(queue_reserve(q, "a", 1), -1);
    queue_unreserve(q, "a", 100);
    assert_int_equal(queue_reserve(q, "b", 400), 0); /* b is not held up by a */
    assert_int_equal(queue_push(q, OTLP_TRACES, "b", 1, data, 400, NULL, 0), 0);
    assert_int_equal(queue_reserve(q, "c", 300), -1); /* the queue itself is full (800 + 300) */
    assert_int_equal(queue_reserve(q, "c", 200), 0);
    queue_unreserve(q, "c", 200);
    queue_entry e[4];
    assert_int_equal(queue_peek(q, e, 4, 1, 0, NULL), 1);
    assert_string_equal(e[0].tenant, "a");
    queue_ack(q, e, 1); /* a's bytes are given back */
    assert_int_equal(queue_reserve(q, "a", 500), 0);
    queue_unreserve(q, "a", 500);
    queue_close(q);

    /* Share 1 (the default): one tenant may fill the queue. */
    c.tenant_share = 1;
    q = queue_open(&c, "b", err, sizeof(err));
    assert_int_equal(queue_reserve(q, "a", 1000), 0);
    queue_unreserve(q, "a", 1000);
    queue_close(q);
}

static int skip_a(void *ud, const char *tenant)
{
    (void)ud;
    return strcmp(tenant, "a") == 0;
}

/* Memory mode: a fair peek passes over a refused tenant and a just-served
 * one, takes a tenant's entries across others', and the ack removes exactly
 * what it returned. */
static void test_memory_fair_peek(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 1 << 20, 0, QUEUE_FSYNC_INTERVAL);
    push(q, OTLP_TRACES, "a", "A1", 2);
    push(q, OTLP_TRACES, "b", "B1", 2);
    push(q, OTLP_TRACES, "a", "A2", 2);
    push(q, OTLP_TRACES, "b", "B2", 2);
    queue_entry e[8];
    assert_int_equal(queue_peek_fair(q, e, 8, 1, 0, NULL, skip_a, NULL, NULL, NULL), 2);
    assert_memory_equal(e[0].data, "B1", 2);
    assert_memory_equal(e[1].data, "B2", 2);
    /* while only refused entries are there, the wait runs its course */
    queue_ack(q, e, 2);
    uint64_t t0 = now_ms();
    assert_int_equal(queue_peek_fair(q, e, 8, 1, 100, NULL, skip_a, NULL, NULL, NULL), 0);
    assert_true(now_ms() - t0 >= 90);
    push(q, OTLP_TRACES, "b", "B3", 2);
    assert_int_equal(queue_peek_fair(q, e, 8, 1, 0, NULL, NULL, NULL, "a", NULL), 1); /* not the last served */
    assert_memory_equal(e[0].data, "B3", 2);
    queue_ack(q, e, 1);
    assert_int_equal(queue_peek_fair(q, e, 8, 1, 0, NULL, NULL, NULL, "a", NULL), 2); /* only a is left */
    assert_memory_equal(e[0].data, "A1", 2);
    assert_memory_equal(e[1].data, "A2", 2);
    queue_ack(q, e, 1);
    assert_int_equal(queue_peek(q, e, 8, 1, 0, NULL), 1);
    assert_memory_equal(e[0].data, "A2", 2);
    queue_ack(q, e, 1);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    queue_close(q);
}

/* Disk mode keeps one read cursor: a fair peek is an in-order peek. */
static void test_disk_fair_peek_in_order(void **state)
{
    (void)state;
    export_queue *q = open_q(qdir, 1 << 20, 0, QUEUE_FSYNC_NEVER);
    push(q, OTLP_TRACES, "a", "A1", 2);
    push(q, OTLP_TRACES, "b", "B1", 2);
    queue_entry e[8];
    assert_int_equal(queue_peek_fair(q, e, 8, 1, 0, NULL, skip_a, NULL, NULL, NULL), 1);
    assert_memory_equal(e[0].data, "A1", 2);
    queue_close(q);
}

typedef struct delayed {
    export_queue *q;
    int pushes; /* 0: queue_wake instead */
} delayed;

static void *delayed_main(void *arg)
{
    delayed *d = arg;
    usleep(50 * 1000);
    if (d->pushes == 0)
        queue_wake(d->q);
    for (int i = 0; i < d->pushes; i++)
        push(d->q, OTLP_TRACES, "t", "p", 1);
    return NULL;
}

static void test_peek_waits(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 1 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_entry e[8];
    push(q, OTLP_TRACES, "t", "p", 1);
    uint64_t t0 = now_ms();
    assert_int_equal(queue_peek(q, e, 8, 3, 100, NULL), 1); /* times out with what there is */
    assert_true(now_ms() - t0 >= 90);

    delayed d = {q, 2};
    pthread_t th;
    pthread_create(&th, NULL, delayed_main, &d);
    t0 = now_ms();
    assert_int_equal(queue_peek(q, e, 8, 3, 10000, NULL), 3);
    assert_true(now_ms() - t0 < 5000);
    pthread_join(th, NULL);
    queue_ack(q, e, 3);

    d.pushes = 0;
    pthread_create(&th, NULL, delayed_main, &d);
    t0 = now_ms();
    assert_int_equal(queue_peek(q, e, 8, 1, 10000, NULL), 0);
    assert_true(now_ms() - t0 < 5000);
    pthread_join(th, NULL);
    queue_close(q);
}

/* A consumer filling a batch waits for pushes that can fill it: what was
 * queued before the call does not count, and a push short of the marks
 * does not end the wait; reaching either mark does. */
static void test_peek_fill(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 1 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_entry e[8];
    push(q, OTLP_TRACES, "t", "p", 1);
    queue_fill two_items = {.items = 2, .bytes = 1 << 20}, two_bytes = {.items = 100, .bytes = 2};
    uint64_t t0 = now_ms();
    assert_int_equal(queue_peek_fair(q, e, 8, 1, 100, NULL, NULL, NULL, NULL, &two_items), 1);
    assert_true(now_ms() - t0 >= 90);

    for (int k = 0; k < 2; k++) {
        delayed d = {q, 2};
        pthread_t th;
        pthread_create(&th, NULL, delayed_main, &d);
        t0 = now_ms();
        /* one push would satisfy min_entries, but not the fill */
        size_t n = queue_peek_fair(q, e, 8, 1, 10000, NULL, NULL, NULL, NULL, k == 0 ? &two_items : &two_bytes);
        assert_true(now_ms() - t0 < 5000);
        pthread_join(th, NULL);
        assert_int_equal(n, 3);
        queue_ack(q, e, 2); /* keep one queued for the next round */
    }
    queue_close(q);
}

static void test_disk_reopen(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    push_n(q, 0, 300);
    queue_close(q);

    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 300);
    assert_int_equal(st.recovered_entries, 300);
    assert_int_equal(st.corrupt_records, 0);
    expect_n(q, 0, 150);
    queue_close(q);

    /* Only the unacknowledged half comes back; new pushes follow it. */
    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_get_stats(q, &st);
    assert_int_equal(st.recovered_entries, 150);
    push_n(q, 300, 320);
    expect_n(q, 150, 170);
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    queue_close(q);
}

#define REC_HDR 26 /* a record's header: magic, length, CRC, signal, tenant length, items, segment */

static void test_disk_record_layout(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 1 << 20, 0, QUEUE_FSYNC_ALWAYS);
    char err[64];
    assert_int_equal(queue_reserve(q, NULL, 5), 0);
    assert_int_equal(queue_push(q, OTLP_LOGS, "t1", 7, (const uint8_t *)"hello", 5, err, sizeof(err)), 0);
    queue_close(q);
    /* CRC-32C of 02 02 07 00 00 00 "t1hello" 01 00 00 00 00 00 00 00 (the
     * segment number last), computed independently. */
    static const uint8_t want[] = {'G', 'W', 'Q', '2', 5, 0, 0, 0, 0x87, 0xbf, 0xae, 0xca, 2, 2, 7, 0, 0, 0,
                                   1,   0,   0,   0,   0, 0, 0, 0, 't',  '1',  'h',  'e',  'l', 'l', 'o'};
    char path[160];
    seg_path(path, sizeof(path), 1);
    uint8_t got[64];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, got, sizeof(got)), sizeof(want));
    close(fd);
    assert_memory_equal(got, want, sizeof(want));
}

/* A queue written before records named their segment (GWQ1: no number,
 * the CRC without it) is still read: its records are replayed as before. */
static void test_disk_reads_gwq1(void **state)
{
    (void)state;
    static const uint8_t v1[] = {'G', 'W', 'Q', '1', 5, 0, 0, 0, 0x79, 0x1a, 0xe1, 0x5e, 2, 2, 7, 0, 0, 0,
                                 't', '1', 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(mkdir(qdir, 0750), 0);
    char path[160];
    seg_path(path, sizeof(path), 3);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
    assert_true(fd >= 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(write(fd, v1, sizeof(v1)), sizeof(v1));
    close(fd);
    export_queue *q = open_q(base, 1 << 20, 0, QUEUE_FSYNC_NEVER);
    expect_recovery(q, 2, 0, 0);
    queue_entry e[4];
    assert_int_equal(queue_peek(q, e, 4, 1, 0, NULL), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(e[i].signal, OTLP_LOGS);
        assert_string_equal(e[i].tenant, "t1");
        assert_int_equal(e[i].items, 7);
        assert_int_equal(e[i].len, 5);
        assert_memory_equal(e[i].data, "hello", 5);
    }
    queue_ack(q, e, 2);
    queue_close(q);
    assert_int_equal(access(path, F_OK), -1); /* consumed, and not kept as a spare */
}

static void test_disk_segments_roll_and_unlink(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 8192, QUEUE_FSYNC_NEVER);
    push_n(q, 0, 100);
    int segs = count_segs(qdir);
    assert_true(segs > 10);
    expect_n(q, 0, 50);
    int after = count_segs(qdir);
    assert_true(after < segs && after > 1);
    expect_n(q, 50, 50);
    assert_int_equal(count_segs(qdir), 1); /* only the one being written */
    queue_close(q);
    q = open_q(base, 64 << 20, 8192, QUEUE_FSYNC_NEVER);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(count_segs(qdir), 1);
    queue_close(q);
}

/* Spent segments of this process are kept as spares (two) and become the
 * next write segments: the same files, overwritten from the start. Their
 * old records past the new end are another segment's: never replayed, and
 * not damage. A spare left by a crash is removed at open; a clean close
 * removes them too. */
static void test_disk_spares_reused(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 8192, QUEUE_FSYNC_NEVER);
    push_n(q, 0, 60);
    unsigned long next = (unsigned long)count_segs(qdir) + 1; /* numbered from 1 */
    assert_true(next > 7);
    expect_n(q, 0, 60);
    ino_t ino[4];
    assert_int_equal(spares(qdir, ino, 4), 2);
    char path[160];
    struct stat st;
    for (int k = 0; k < 3; k++, next++) {
        while (count_segs(qdir) < 2) /* until the write segment rolls */
            push_n(q, 60, 61);
        seg_path(path, sizeof(path), next);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_ino == ino[0] || st.st_ino == ino[1]); /* a spare, renamed */
        assert_int_equal(spares(qdir, ino + 2, 2), 1);
        drain(q);
        assert_int_equal(count_segs(qdir), 1);
        assert_int_equal(spares(qdir, ino, 4), 2); /* the spent one is a spare now */
    }
    queue_close(q);
    assert_int_equal(spares(qdir, ino, 4), 0);

    /* one left behind by a crash goes at open */
    char left[160];
    snprintf(left, sizeof(left), "%s/%020lu.free", qdir, 7ul);
    int fd = open(left, O_WRONLY | O_CREAT, 0640);
    assert_true(fd >= 0);
    close(fd);
    q = open_q(base, 64 << 20, 8192, QUEUE_FSYNC_NEVER);
    assert_int_equal(access(left, F_OK), -1);
    queue_close(q);
}

/* A reused segment holds fewer new records than old ones when the gateway
 * dies: recovery replays exactly the new ones, and counts no damage; a
 * damaged last record before the old ones is counted, and the old ones
 * after it still do not come back. */
static void test_disk_reused_recovery(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 8192, QUEUE_FSYNC_NEVER);
    push_n(q, 0, 40);
    expect_n(q, 0, 40);
    ino_t ino[4];
    assert_int_equal(spares(qdir, ino, 4), 2);
    /* roll into a spare: fill the write segment, then three small records */
    unsigned long wseg = 0;
    char path[160];
    struct stat st;
    for (unsigned long num = 1; num < 100 && wseg == 0; num++) {
        seg_path(path, sizeof(path), num);
        if (stat(path, &st) == 0)
            wseg = num;
    }
    assert_true(wseg > 0);
    static uint8_t big[4096];
    memset(big, 'x', sizeof(big));
    while (stat(path, &st) == 0 && count_segs(qdir) == 1)
        push(q, OTLP_TRACES, "t1", big, 3000);
    seg_path(path, sizeof(path), wseg + 1);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_ino == ino[0] || st.st_ino == ino[1]);
    drain(q); /* the full segment's records: it becomes a spare */
    for (int i = 0; i < 3; i++)
        push(q, OTLP_LOGS, "new", "fresh", 5);
    /* the big record that rolled over (consumed), then the three */
    off_t first = REC_HDR + 2 + 3000, used = first + 3 * (REC_HDR + 3 + 5);
    assert_true(file_size(path) > used + REC_HDR); /* old records follow the new ones */
    /* the process dies: no close, so copy the directory's state aside */
    char saved[200];
    snprintf(saved, sizeof(saved), "%s.saved", path);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp -p %s %s", path, saved);
    assert_int_equal(system(cmd), 0);
    queue_close(q);
    assert_int_equal(rename(saved, path), 0);

    q = open_q(base, 64 << 20, 8192, QUEUE_FSYNC_NEVER);
    expect_recovery(q, 3, 0, 0);
    queue_entry e[16];
    size_t n = queue_peek(q, e, 16, 1, 0, NULL);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(e[i].tenant, "new");
        assert_memory_equal(e[i].data, "fresh", 5);
    }
    queue_close(q); /* unacked: they stay */

    /* the third new record torn (its payload damaged) */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    off_t at = first + 2 * (REC_HDR + 3 + 5) + REC_HDR + 3 + 2;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x20;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    q = open_q(base, 64 << 20, 8192, QUEUE_FSYNC_NEVER);
    expect_recovery(q, 2, 1, 0); /* damage: the reopen above started a newer segment */
    n = queue_peek(q, e, 16, 1, 0, NULL);
    assert_int_equal(n, 2);
    assert_string_equal(e[1].tenant, "new");
    queue_close(q);
}

static void test_disk_torn_tail(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    for (int i = 0; i < 10; i++)
        push(q, OTLP_TRACES, "t", "0123456789", 10);
    queue_close(q);
    char path[160];
    seg_path(path, sizeof(path), 1);
    off_t rec = REC_HDR + 1 + 10;
    assert_int_equal(file_size(path), 10 * rec);
    assert_int_equal(truncate(path, 10 * rec - 3), 0);

    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.recovered_entries, 9);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(st.torn_records, 1); /* a torn tail is damage, and counted */
    assert_int_equal(file_size(path), 9 * rec);
    queue_entry e[16];
    assert_int_equal(queue_peek(q, e, 16, 1, 0, NULL), 9);
    assert_memory_equal(e[8].data, "0123456789", 10);
    queue_close(q);
}

static void test_disk_bad_checksum(void **state)
{
    (void)state;
    /* 3 records (37 bytes each) per segment, 3 segments. */
    export_queue *q = open_q(base, 64 << 20, 120, QUEUE_FSYNC_INTERVAL);
    char data[11];
    for (int i = 0; i < 9; i++) {
        snprintf(data, sizeof(data), "record-%03d", i);
        push(q, OTLP_TRACES, "t", data, 10);
    }
    queue_close(q);
    char path[160];
    seg_path(path, sizeof(path), 1);
    assert_int_equal(file_size(path), 3 * 37);
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, 37 + 32), 1); /* record-001's payload */
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, 37 + 32), 1);
    close(fd);

    q = open_q(base, 64 << 20, 120, QUEUE_FSYNC_INTERVAL);
    queue_stats st;
    queue_get_stats(q, &st);
    /* Only the damaged record is lost: replay resumes at record-002. */
    expect_recovery(q, 8, 1, 0);
    queue_entry e[16];
    assert_int_equal(queue_peek(q, e, 16, 1, 0, NULL), 8);
    assert_memory_equal(e[0].data, "record-000", 10);
    assert_memory_equal(e[1].data, "record-002", 10);
    assert_memory_equal(e[2].data, "record-003", 10);
    assert_memory_equal(e[7].data, "record-008", 10);
    queue_ack(q, e, 8);
    queue_close(q);
    /* Consumed, the damaged segment is gone and nothing comes back. */
    assert_int_equal(access(path, F_OK), -1);
    q = open_q(base, 64 << 20, 120, QUEUE_FSYNC_INTERVAL);
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.corrupt_records, 0);
    queue_close(q);
}

/* One flipped byte in the middle of a big segment (in a record's payload,
 * then in another record's length field) costs those two records, not the
 * rest of the segment: replay resynchronizes on the next valid record. */
static void test_disk_flip_resync(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_NEVER);
    push_n(q, 0, 400);
    queue_close(q);
    char path[160];
    seg_path(path, sizeof(path), 1);
    /* Offsets of records 100 and 300, from the layout. */
    static uint8_t buf[4096];
    uint64_t off = 0, at100 = 0, at300 = 0;
    for (unsigned i = 0; i < 400; i++) {
        if (i == 100)
            at100 = off;
        if (i == 300)
            at300 = off;
        off += REC_HDR + strlen(i % 5 == 4 ? "other" : "t1") + payload(i, buf);
    }
    assert_int_equal(file_size(path), (off_t)off);
    int fd = open(path, O_RDWR);
    uint8_t b;
    uint64_t where[2] = {at100 + REC_HDR + 2 + payload(100, buf) / 2, at300 + 5}; /* payload; length field */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pread(fd, &b, 1, (off_t)where[k]), 1);
        b ^= 0x10;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)where[k]), 1);
    }
    close(fd);

    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_NEVER);
    expect_recovery(q, 398, 2, 0);
    expect_n(q, 0, 100);
    expect_n(q, 101, 199);
    expect_n(q, 301, 99);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries + st.bytes, 0);
    queue_close(q);
}

static void test_disk_foreign_files(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    push_n(q, 0, 5);
    queue_close(q);
    const char *names[] = {"notes.txt", "123.seg", "0000000000000000000x.seg"};
    char path[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", qdir, names[i]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs("garbage\n", f);
        fclose(f);
    }
    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    expect_n(q, 0, 5);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.corrupt_records, 0);
    queue_close(q);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", qdir, names[i]);
        assert_int_equal(access(path, F_OK), 0);
    }
}

static void test_disk_damaged_cursor(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    push_n(q, 0, 5);
    queue_close(q);
    char path[160];
    snprintf(path, sizeof(path), "%s/cursor", qdir);
    FILE *f = fopen(path, "w");
    fputs("999 12\n", f); /* names no segment: replay everything, delete nothing */
    fclose(f);
    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    expect_n(q, 0, 5);
    queue_close(q);
}

static void test_disk_locked(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 1 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_config c = {.max_bytes = 1 << 20, .dir = base};
    char err[256] = "";
    assert_null(queue_open(&c, "b", err, sizeof(err)));
    assert_non_null(strstr(err, "in use"));
    assert_null(queue_open(&c, "../x", err, sizeof(err)));
    queue_close(q);
}

/* More than the resident budget: records go to disk only and are read back
 * in order, with pushes continuing meanwhile, and survive a reopen. */
static void test_disk_spill(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 256 << 10, QUEUE_FSYNC_NEVER);
    push_n(q, 0, 1000); /* ~1.5 MB */
    expect_n(q, 0, 300);
    push_n(q, 1000, 1200);
    expect_n(q, 300, 300);
    queue_close(q);
    q = open_q(base, 64 << 20, 256 << 10, QUEUE_FSYNC_NEVER);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.recovered_entries, 600);
    expect_n(q, 600, 600);
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    queue_close(q);
}

/* The cursor was written but the process died before unlinking the
 * segments behind it: recovery deletes them instead of replaying them. */
static void test_disk_stale_segment(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    push_n(q, 0, 5);
    queue_close(q);
    char path[160];
    seg_path(path, sizeof(path), 1);
    static uint8_t saved[1 << 16];
    int fd = open(path, O_RDONLY);
    ssize_t len = read(fd, saved, sizeof(saved));
    close(fd);
    assert_true(len > 0);
    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    expect_n(q, 0, 5);
    queue_close(q);
    assert_int_equal(access(path, F_OK), -1);
    fd = open(path, O_WRONLY | O_CREAT, 0640);
    assert_int_equal(write(fd, saved, (size_t)len), len);
    close(fd);
    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    queue_close(q);
    assert_int_equal(access(path, F_OK), -1);
}

/* A spilled record damaged on disk while the queue runs: the rest of its
 * segment is lost and counted, later segments still arrive. */
static void test_disk_spill_damaged(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 256 << 10, QUEUE_FSYNC_NEVER);
    push_n(q, 0, 1000);
    char path[160];
    seg_path(path, sizeof(path), 3);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b = 0xff;
    assert_int_equal(pwrite(fd, &b, 1, 30), 1);
    close(fd);
    queue_entry e[16];
    size_t got = 0, n;
    while ((n = queue_peek(q, e, 16, 1, 0, NULL)) > 0) {
        got += n;
        queue_ack(q, e, n);
    }
    queue_stats st;
    queue_get_stats(q, &st);
    assert_true(st.corrupt_records >= 1);
    assert_int_equal(got + st.corrupt_records, 1000);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    queue_close(q);
}

static void test_disk_full_after_recovery(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    push_n(q, 0, 10);
    queue_close(q);
    q = open_q(base, 100, 0, QUEUE_FSYNC_INTERVAL); /* smaller than what is queued */
    assert_int_equal(queue_reserve(q, NULL, 1), -1);
    expect_n(q, 0, 10);
    assert_int_equal(queue_reserve(q, NULL, 100), 0);
    queue_close(q);
}

/* ---- several batches in flight: claim, release, out-of-order acks ---- */

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    return x;
}


/* Entry i: its index, then padding up to len bytes. */
static void push_idx(export_queue *q, uint32_t i, size_t len)
{
    uint8_t buf[8192];
    memset(buf, (int)(i & 0xff), len);
    memcpy(buf, &i, sizeof(i));
    push(q, OTLP_TRACES, "t", buf, len);
}

static uint32_t idx_of(const queue_entry *e)
{
    uint32_t i;
    assert_true(e->len >= sizeof(i));
    memcpy(&i, e->data, sizeof(i));
    return i;
}

/* Peeks (at most max) and claims; the indexes go to out. */
static size_t take(export_queue *q, queue_entry *e, size_t max, uint32_t *out)
{
    size_t n = queue_peek(q, e, max, 1, 0, NULL);
    queue_claim(q, e, n);
    for (size_t k = 0; k < n; k++)
        out[k] = idx_of(&e[k]);
    return n;
}

static void test_claim_release(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 1 << 20, 0, QUEUE_FSYNC_INTERVAL);
    for (uint32_t i = 0; i < 6; i++)
        push_idx(q, i, 16);
    queue_entry a[2], b[2], c[8];
    uint32_t ia[2], ib[2], ic[8];
    assert_int_equal(take(q, a, 2, ia), 2);
    assert_int_equal(take(q, b, 2, ib), 2); /* claimed entries are passed over */
    assert_int_equal(ia[0], 0);
    assert_int_equal(ib[0], 2);
    queue_release(q, a, 2); /* given back: peeked again, in their place */
    assert_int_equal(take(q, c, 8, ic), 4);
    assert_int_equal(ic[0], 0);
    assert_int_equal(ic[1], 1);
    assert_int_equal(ic[2], 4);
    queue_ack(q, b, 2); /* any order */
    queue_ack(q, c, 4);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(queue_peek(q, c, 8, 1, 0, NULL), 0);
    assert_int_equal(queue_reserve(q, "t", 1 << 20), 0); /* every byte was given back */
    queue_close(q);
}

/* Disk: batches acked out of order. The cursor moves past the acked prefix
 * only, so a restart resends what is unacked, and what was acked behind it,
 * but nothing before the cursor, and loses nothing. Small segments and the
 * 256 KiB resident budget put the records across segments and through the
 * read-back path. */
static void test_disk_out_of_order_ack(void **state)
{
    (void)state;
    enum { N = 400, LEN = 3000 };
    export_queue *q = open_q(base, 64 << 20, 64 << 10, QUEUE_FSYNC_NEVER);
    for (uint32_t i = 0; i < N; i++)
        push_idx(q, i, LEN);
    queue_entry a[8], b[8], c[8];
    uint32_t ia[8], ib[8], ic[8];
    assert_int_equal(take(q, a, 8, ia), 8);
    assert_int_equal(take(q, b, 8, ib), 8);
    assert_int_equal(take(q, c, 8, ic), 8);
    assert_int_equal(ib[0], 8);
    assert_int_equal(ic[0], 16);
    queue_ack(q, c, 8); /* done first: it must not move the cursor past a and b */
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, N - 8);
    queue_ack(q, a, 8); /* the cursor moves past a only */
    int segs = count_segs(qdir);
    queue_close(q); /* as after a crash: b was in flight */

    q = open_q(base, 64 << 20, 64 << 10, QUEUE_FSYNC_NEVER);
    queue_get_stats(q, &st);
    assert_int_equal(st.recovered_entries, N - 8); /* b, c (acked behind b) and the rest */
    uint8_t seen[N] = {0};
    queue_entry e[16];
    uint32_t ie[16], expect = 8;
    /* Consume with two batches in flight, acking the newer one first. */
    for (;;) {
        size_t n1 = take(q, e, 8, ie);
        if (n1 == 0)
            break;
        queue_entry e2[8];
        uint32_t ie2[8];
        size_t n2 = take(q, e2, 8, ie2);
        for (size_t k = 0; k < n1; k++, expect++) {
            assert_int_equal(ie[k], expect); /* in order, from b's first entry */
            seen[ie[k]]++;
        }
        for (size_t k = 0; k < n2; k++, expect++) {
            assert_int_equal(ie2[k], expect);
            seen[ie2[k]]++;
        }
        queue_ack(q, e2, n2);
        queue_ack(q, e, n1);
    }
    for (uint32_t i = 8; i < N; i++)
        assert_int_equal(seen[i], 1);
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_true(segs > 2);
    queue_close(q);
    assert_int_equal(count_segs(qdir), 1); /* everything acked: only the write segment is left */
    q = open_q(base, 64 << 20, 64 << 10, QUEUE_FSYNC_NEVER);
    queue_get_stats(q, &st);
    assert_int_equal(st.recovered_entries, 0);
    queue_close(q);
}

/* Disk: consumers on several threads ack in random order while producers
 * push; then the queue is closed mid-flight and reopened. Every entry never
 * acked is replayed (at-least-once), and after draining every entry was
 * acked at least once. */
typedef struct ooo_state {
    export_queue *q;
    pthread_mutex_t take_lock;
    uint8_t *acked;  /* per entry: times acked */
    uint32_t total, limit; /* stop taking after `limit` acks */
    _Atomic uint32_t acks;
} ooo_state;

static void *ooo_consumer(void *arg)
{
    ooo_state *s = arg;
    queue_entry e[4];
    uint32_t seed = (uint32_t)(uintptr_t)&e;
    while (s->acks < s->limit) {
        pthread_mutex_lock(&s->take_lock);
        size_t n = queue_peek(s->q, e, 1 + seed % 4, 1, 10, NULL);
        queue_claim(s->q, e, n);
        pthread_mutex_unlock(&s->take_lock);
        seed = mix(seed + 1);
        usleep(seed % 500); /* "sending": batches complete out of order */
        for (size_t k = 0; k < n; k++)
            __atomic_add_fetch(&s->acked[idx_of(&e[k])], 1, __ATOMIC_RELAXED);
        queue_ack(s->q, e, n);
        s->acks += (uint32_t)n;
    }
    return NULL;
}

static void run_ooo(ooo_state *s, unsigned threads)
{
    pthread_t th[8];
    pthread_mutex_init(&s->take_lock, NULL);
    for (unsigned i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, ooo_consumer, s);
    for (unsigned i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&s->take_lock);
}

static void test_disk_out_of_order_threads(void **state)
{
    (void)state;
    enum { N = 3000 };
    uint8_t *acked = calloc(N, 1);
    export_queue *q = open_q(base, 64 << 20, 32 << 10, QUEUE_FSYNC_NEVER);
    for (uint32_t i = 0; i < N; i++)
        push_idx(q, i, 200 + (i * 37u) % 800u);
    ooo_state s = {.q = q, .acked = acked, .total = N, .limit = N / 2};
    run_ooo(&s, 4);
    queue_close(q); /* some acked, some never taken */

    q = open_q(base, 64 << 20, 32 << 10, QUEUE_FSYNC_NEVER);
    queue_stats st;
    queue_get_stats(q, &st);
    uint8_t *replayed = calloc(N, 1);
    queue_entry e[64];
    size_t n;
    uint32_t prev = 0;
    int first = 1;
    while ((n = queue_peek(q, e, 64, 1, 0, NULL)) > 0) {
        for (size_t k = 0; k < n; k++) {
            uint32_t i = idx_of(&e[k]);
            assert_true(first || i > prev); /* replayed in order, each once */
            first = 0;
            prev = i;
            replayed[i] = 1;
        }
        queue_ack(q, e, n);
    }
    uint32_t resent = 0;
    for (uint32_t i = 0; i < N; i++) {
        if (acked[i] == 0)
            assert_int_equal(replayed[i], 1); /* nothing unacked is lost */
        assert_true(acked[i] <= 1);          /* nothing was handed out twice */
        resent += acked[i] && replayed[i];
    }
    assert_int_equal(st.recovered_entries, N - s.acks + resent);
    queue_close(q);
    assert_int_equal(count_segs(qdir), 1);
    free(acked);
    free(replayed);
}

#define PRODUCERS 4
#define PER_PRODUCER 25000

typedef struct producer {
    export_queue *q;
    unsigned id;
} producer;

static void *producer_main(void *arg)
{
    producer *p = arg;
    char tenant[8];
    snprintf(tenant, sizeof(tenant), "t%u", p->id % 2);
    for (uint32_t i = 0; i < PER_PRODUCER; i++) {
        uint32_t v[6] = {p->id, i, mix(p->id * PER_PRODUCER + i), 0, 0, 0};
        size_t len = 12 + (i % 4) * 4;
        while (queue_reserve(p->q, NULL, len) != 0)
            usleep(100);
        assert_int_equal(queue_push(p->q, OTLP_TRACES, tenant, 1, (const uint8_t *)v, len, NULL, 0), 0);
    }
    return NULL;
}

/* Every producer's entries arrive exactly once and in its order. */
static void run_concurrent(export_queue *q, const char *label)
{
    producer p[PRODUCERS];
    pthread_t th[PRODUCERS];
    uint32_t next[PRODUCERS] = {0};
    uint64_t sum = 0, want = 0, t0 = now_ms();
    for (unsigned i = 0; i < PRODUCERS; i++) {
        p[i] = (producer){q, i};
        pthread_create(&th[i], NULL, producer_main, &p[i]);
    }
    queue_entry e[64];
    for (unsigned got = 0; got < PRODUCERS * PER_PRODUCER;) {
        size_t n = queue_peek(q, e, 64, 16, 10, NULL);
        for (size_t k = 0; k < n; k++) {
            uint32_t v[3];
            assert_true(e[k].len >= 12);
            memcpy(v, e[k].data, sizeof(v));
            assert_true(v[0] < PRODUCERS);
            assert_int_equal(v[1], next[v[0]]++);
            assert_int_equal(v[2], mix(v[0] * PER_PRODUCER + v[1]));
            sum += v[2];
        }
        queue_ack(q, e, n);
        got += (unsigned)n;
    }
    for (unsigned i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    for (uint32_t i = 0; i < PRODUCERS * PER_PRODUCER; i++)
        want += mix(i);
    assert_true(sum == want);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.entries, 0);
    uint64_t ms = now_ms() - t0;
    printf("[ queue    ] %s: %d entries through in %llu ms (%.0f/s)\n", label, PRODUCERS * PER_PRODUCER,
           (unsigned long long)ms, ms ? PRODUCERS * PER_PRODUCER * 1000.0 / (double)ms : 0.0);
}

static void test_concurrent_memory(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 64 << 10, 0, QUEUE_FSYNC_INTERVAL);
    run_concurrent(q, "memory");
    queue_close(q);
}

static void test_concurrent_disk(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 4 << 20, 128 << 10, QUEUE_FSYNC_INTERVAL);
    run_concurrent(q, "disk, fsync interval");
    queue_close(q);
    assert_int_equal(count_segs(qdir), 1);
}

/* fsync=interval: the queue's own thread syncs what was written within the
 * interval, with no later push to trigger it, and again after more writes;
 * nothing is synced while nothing is written. */
static void test_interval_syncer(void **state)
{
    (void)state;
    queue_config c = {.max_bytes = 1 << 20, .dir = base, .fsync = QUEUE_FSYNC_INTERVAL, .fsync_interval_ms = 20};
    char err[256] = "";
    export_queue *q = queue_open(&c, "b", err, sizeof(err));
    assert_non_null(q);
    queue_stats st;
    usleep(100 * 1000);
    queue_get_stats(q, &st);
    assert_int_equal(st.interval_syncs, 0); /* nothing written: nothing to sync */
    push(q, OTLP_TRACES, "t", "one", 3);
    uint64_t end = now_ms() + 10000;
    do {
        usleep(5000);
        queue_get_stats(q, &st);
    } while (st.interval_syncs == 0 && now_ms() < end);
    assert_int_equal(st.interval_syncs, 1);
    assert_int_equal(st.interval_dir_syncs, 1); /* the segment's name, with its first data */
    usleep(100 * 1000);
    queue_get_stats(q, &st);
    assert_int_equal(st.interval_syncs, 1); /* clean again: no more syncs */
    push(q, OTLP_TRACES, "t", "two", 3);
    end = now_ms() + 10000;
    do {
        usleep(5000);
        queue_get_stats(q, &st);
    } while (st.interval_syncs == 1 && now_ms() < end);
    assert_int_equal(st.interval_syncs, 2);
    assert_int_equal(st.interval_dir_syncs, 1); /* no new name since */
    queue_close(q);
    /* A memory queue, or another mode, has no syncer. */
    c.fsync = QUEUE_FSYNC_ALWAYS;
    q = queue_open(&c, "b", err, sizeof(err));
    assert_non_null(q);
    push(q, OTLP_TRACES, "t", "three", 5);
    usleep(100 * 1000);
    queue_get_stats(q, &st);
    assert_int_equal(st.interval_syncs, 0);
    queue_close(q);
}

/* A segment that fills up under fsync: interval is not synced by the push
 * that rolls over (that would stall the pushing worker for up to an
 * interval of writes): the syncer syncs it at once, long before its
 * interval is up, and the data stays readable after a reopen. */
static void test_interval_roll_handed_to_syncer(void **state)
{
    (void)state;
    queue_config c = {.max_bytes = 1 << 20, .dir = base, .fsync = QUEUE_FSYNC_INTERVAL,
                      .fsync_interval_ms = 600000, .segment_bytes = 4096};
    char err[256] = "";
    export_queue *q = queue_open(&c, "b", err, sizeof(err));
    assert_non_null(q);
    push_n(q, 0, 40); /* several rolls */
    queue_stats st;
    uint64_t end = now_ms() + 10000;
    do {
        usleep(5000);
        queue_get_stats(q, &st);
    } while (st.interval_syncs == 0 && now_ms() < end);
    assert_true(st.interval_syncs >= 1); /* the interval (10 min) is far off */
    /* and the directory with it: the synced segments' names must survive
     * power loss as their data does */
    assert_true(st.interval_dir_syncs >= 1);
    queue_close(q);
    q = queue_open(&c, "b", err, sizeof(err));
    assert_non_null(q);
    expect_n(q, 0, 40);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_fifo_batching),
        cmocka_unit_test(test_memory_max_entries),
        cmocka_unit_test(test_reserve_accounting),
        cmocka_unit_test(test_tenant_share),
        cmocka_unit_test(test_memory_fair_peek),
        cmocka_unit_test_setup_teardown(test_disk_fair_peek_in_order, setup, teardown),
        cmocka_unit_test(test_peek_waits),
        cmocka_unit_test(test_peek_fill),
        cmocka_unit_test_setup_teardown(test_disk_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_record_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_reads_gwq1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_spares_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_reused_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_segments_roll_and_unlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_bad_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_flip_resync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_foreign_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_damaged_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_spill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_after_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_stale_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_spill_damaged, setup, teardown),
        cmocka_unit_test(test_claim_release),
        cmocka_unit_test_setup_teardown(test_disk_out_of_order_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_out_of_order_threads, setup, teardown),
        cmocka_unit_test(test_concurrent_memory),
        cmocka_unit_test_setup_teardown(test_concurrent_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_syncer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_roll_handed_to_syncer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
