/* queue_disk: the disk queue's files: the record layout (and GWQ1's),
 * segments rolled, deleted and reused as spares, recovery (torn tails, bad
 * checksums, flipped bytes, foreign files, damaged cursors, stale
 * segments, spilled records read back), and the fsync=interval syncer.
 * Built with a 256 KiB resident budget, like test_queue. */
#include <dirent.h>
#include <fcntl.h>
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

#include "queue_internal.h"
#include "queue_testlib.h"

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

/* A spent segment whose spare name is taken is deleted, not kept (the
 * rename refuses to replace), and the file in the way is left alone; the
 * spares come from the next spent segments instead. */
static void test_disk_spare_name_taken(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 8192, QUEUE_FSYNC_NEVER);
    char taken[2][160];
    for (int k = 0; k < 2; k++) { /* segments 1 and 2's spare names */
        snprintf(taken[k], sizeof(taken[k]), "%s/%020lu.free", qdir, (unsigned long)k + 1);
        int fd = open(taken[k], O_WRONLY | O_CREAT | O_EXCL, 0640);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "in the way", 10), 10);
        close(fd);
    }
    push_n(q, 0, 60);
    assert_true(count_segs(qdir) > 4);
    expect_n(q, 0, 60);
    char path[160];
    for (unsigned long num = 1; num <= 2; num++) {
        seg_path(path, sizeof(path), num);
        assert_int_equal(access(path, F_OK), -1); /* deleted */
    }
    for (int k = 0; k < 2; k++)
        assert_int_equal(file_size(taken[k]), 10); /* untouched */
    ino_t ino[8];
    assert_int_equal(spares(qdir, ino, 8), 4); /* the two in the way, and two of its own */
    push_n(q, 60, 90); /* rolls into its spares and on */
    expect_n(q, 60, 30);
    queue_close(q);
    for (int k = 0; k < 2; k++)
        assert_int_equal(file_size(taken[k]), 10);
    assert_int_equal(spares(qdir, ino, 8), 2); /* its own went at close */
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

static void cursor_path(char *out, size_t len)
{
    snprintf(out, len, "%s/cursor", qdir);
}

static void test_disk_damaged_cursor(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    push_n(q, 0, 5);
    queue_close(q);
    char path[160];
    cursor_path(path, sizeof(path));
    FILE *f = fopen(path, "w");
    fputs("999 12\n", f); /* names no segment: replay everything, delete nothing */
    fclose(f);
    q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    expect_n(q, 0, 5);
    queue_close(q);
}

/* The end offset of entry i of push_n in its segment: the records before it
 * and its own (header, tenant, payload). */
static uint64_t rec_end(unsigned i)
{
    static uint8_t buf[4096];
    uint64_t end = 0;
    for (unsigned k = 0; k <= i; k++)
        end += REC_HDR + (k % 5 == 4 ? 5 : 2) + payload(k, buf);
    return end;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The index of the entry whose record ends at `off`; fails if none does. */
static unsigned entry_ending_at(uint64_t off)
{
    for (unsigned i = 0; i < 10; i++)
        if (rec_end(i) == off)
            return i;
    fail_msg("no record ends at %llu", (unsigned long long)off);
    return 0;
}

static void cursor_io(uint8_t cur[64], int write_it)
{
    char path[160];
    cursor_path(path, sizeof(path));
    int fd = open(path, write_it ? O_WRONLY | O_TRUNC : O_RDONLY);
    assert_true(fd >= 0);
    uint8_t got[65];
    if (write_it) {
        assert_int_equal(write(fd, cur, 64), 64);
    } else {
        assert_int_equal(read(fd, got, sizeof(got)), 64); /* two slots, nothing else */
        memcpy(cur, got, 64);
    }
    close(fd);
}

static ino_t cursor_ino(void)
{
    char path[160];
    struct stat st;
    cursor_path(path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

static void reopen_expect(unsigned recovered)
{
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.recovered_entries, recovered);
    expect_n(q, 10 - recovered, recovered);
    queue_close(q);
}

/* The cursor's two slots ("GWC2", CRC, generation, segment, offset): acks
 * overwrite them in turn in place (the file is not replaced), a reopen
 * resumes at the intact slot of the later generation; with that one damaged
 * it resumes at the older position (more is resent, nothing lost), with both
 * damaged everything is resent. The text cursor of earlier versions is
 * still read. Each reopen consumes what it replays, so the next case starts
 * from the saved files again. */
static void test_disk_cursor_slots(void **state)
{
    (void)state;
    export_queue *q = open_q(base, 64 << 20, 0, QUEUE_FSYNC_INTERVAL);
    ino_t ino = cursor_ino();
    push_n(q, 0, 10);
    expect_n(q, 0, 4);
    expect_n(q, 4, 3); /* several acks: the batches change with signal and tenant */
    queue_close(q);
    assert_true(cursor_ino() == ino);
    uint8_t cur[64], saved[64], seg1[1 << 16];
    cursor_io(saved, 0);
    char segpath[160];
    seg_path(segpath, sizeof(segpath), 1);
    int fd = open(segpath, O_RDONLY);
    ssize_t seglen = read(fd, seg1, sizeof(seg1));
    close(fd);
    assert_true(seglen == (ssize_t)rec_end(9));
    int newer = le64(saved + 32 + 8) > le64(saved + 8) ? 1 : 0;
    const uint8_t *nw = saved + 32 * newer, *old = saved + 32 * (1 - newer);
    for (int i = 0; i < 2; i++)
        assert_memory_equal(saved + 32 * i, "GWC2", 4);
    assert_int_equal(le64(nw + 8), le64(old + 8) + 1);
    assert_int_equal(le64(nw + 16), 1);
    assert_int_equal(le64(nw + 24), rec_end(6));
    assert_int_equal(le64(old + 16), 1);
    unsigned older_at = entry_ending_at(le64(old + 24));
    assert_true(older_at < 6);

    /* each case: segment 1 and the cursor as the acks left them */
    for (int c = 0; c < 4; c++) {
        fd = open(segpath, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        assert_int_equal(write(fd, seg1, (size_t)seglen), seglen);
        close(fd);
        memcpy(cur, saved, 64);
        if (c == 0) {
            cursor_io(cur, 1);
            reopen_expect(3);
        } else if (c == 1 || c == 2) {
            cur[32 * newer + 24] ^= 0x40; /* the later slot's offset */
            if (c == 2)
                cur[32 * (1 - newer) + 4] ^= 1; /* and the older slot's CRC */
            cursor_io(cur, 1);
            reopen_expect(c == 1 ? 9 - older_at : 10);
        } else {
            char path[160], text[64];
            cursor_path(path, sizeof(path));
            FILE *f = fopen(path, "w");
            snprintf(text, sizeof(text), "1 %llu\n", (unsigned long long)rec_end(3));
            fputs(text, f);
            fclose(f);
            reopen_expect(6);
            cursor_io(cur, 0); /* rewritten in slots */
        }
    }
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
/* One round of the syncer, run here: the interval is 10 min, so the
 * thread's own rounds never come during the test. The segment syncs it did. */
static uint64_t sync_round(export_queue *q)
{
    queue_stats st;
    queue_get_stats(q, &st);
    uint64_t before = st.interval_syncs;
    pthread_mutex_lock(&q->lock);
    assert_int_equal(queue_sync_undelivered(q), 0);
    pthread_mutex_unlock(&q->lock);
    queue_get_stats(q, &st);
    return st.interval_syncs - before;
}

/* fsync=interval syncs what is not delivered yet, once: segments that
 * rolled over are left to the next round (a push never syncs), each
 * segment holding undelivered records is synced in it, with the directory,
 * and not again while nothing is added; records delivered before a round
 * (acked: the cursor is past them) are never synced, whether their
 * segments are gone or still being written. What was not delivered survives
 * a reopen. */
static void test_interval_syncs_undelivered(void **state)
{
    (void)state;
    queue_config c = {.max_bytes = 1 << 20, .dir = base, .fsync = QUEUE_FSYNC_INTERVAL,
                      .fsync_interval_ms = 600000, .segment_bytes = 4096};
    char err[256] = "";
    export_queue *q = queue_open(&c, "b", err, sizeof(err));
    assert_non_null(q);
    push_n(q, 0, 40); /* several rolls */
    queue_stats st;
    queue_get_stats(q, &st);
    assert_int_equal(st.interval_syncs, 0);
    int segs = count_segs(qdir);
    assert_true(segs > 5);
    assert_int_equal(sync_round(q), (uint64_t)segs);
    queue_get_stats(q, &st);
    assert_int_equal(st.interval_dir_syncs, 1);
    assert_int_equal(sync_round(q), 0); /* synced already */

    expect_n(q, 0, 40);
    push_n(q, 40, 80);
    expect_n(q, 40, 40);
    assert_int_equal(sync_round(q), 0); /* all delivered, in rolled and in the write segment */

    push_n(q, 80, 90);
    uint64_t n = sync_round(q);
    assert_true(n >= 1 && n <= (uint64_t)count_segs(qdir));
    assert_int_equal(sync_round(q), 0);
    expect_n(q, 80, 5);
    push_n(q, 90, 92); /* after the five delivered, in the write segment */
    assert_int_equal(sync_round(q), 1);
    queue_get_stats(q, &st);
    assert_true(st.interval_passes >= 6);
    queue_close(q);
    q = queue_open(&c, "b", err, sizeof(err));
    assert_non_null(q);
    expect_n(q, 85, 7);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_record_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_reads_gwq1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_spares_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_spare_name_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_reused_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_segments_roll_and_unlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_bad_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_flip_resync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_foreign_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_damaged_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_cursor_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_spill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_after_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_stale_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_spill_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_syncer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_syncs_undelivered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
