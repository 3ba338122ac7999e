/* queue_testlib: what the queue's unit suites (test_queue, test_queue_disk)
 * share: a temporary directory per test (setup/teardown: base, and qdir,
 * the queue "b" in it), opening and filling queues with entries whose
 * payloads are known (push_n, expect_n), and looking at the segment files. */
#ifndef GW_TEST_QUEUE_TESTLIB_H
#define GW_TEST_QUEUE_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue.h"

extern char base[64];
extern char qdir[96];

/* cmocka fixtures: a fresh base directory (mkdtemp), removed afterwards. */
int setup(void **state);
int teardown(void **state);
/* CLOCK_MONOTONIC, for the tests' own deadlines. */
uint64_t now_ms(void);
/* queue_open of queue "b" (dir NULL: in memory); fails the test on error. */
export_queue *open_q(const char *dir, size_t max_bytes, size_t segment_bytes, queue_fsync fs);
/* Reserves and pushes one entry (items = len); fails the test on error. */
void push(export_queue *q, otlp_signal sig, const char *tenant, const void *data, size_t len);
/* Entry i's payload: deterministic bytes of a length that varies with i. */
size_t payload(unsigned i, uint8_t *buf);
/* Entries from..to-1: payload(i), signals and tenants varying with i. */
void push_n(export_queue *q, unsigned from, unsigned to);
/* Consumes `count` entries, checking they are entries from..from+count-1 of push_n. */
void expect_n(export_queue *q, unsigned from, unsigned count);
/* Segment files (NUM.seg) in dir. */
int count_segs(const char *dir);
/* Consumes whatever is queued. */
void drain(export_queue *q);
/* Spare files (NUM.free) in dir; their inode numbers in ino (up to max). */
int spares(const char *dir, ino_t *ino, int max);
/* The path of segment num in qdir. */
void seg_path(char *out, size_t len, unsigned long num);
/* stat's size; fails the test if path is missing. */
off_t file_size(const char *path);
/* What a reopen found: records replayed, skipped as damaged, torn tails. */
void expect_recovery(export_queue *q, uint64_t recovered, uint64_t corrupt, uint64_t torn);

#endif
