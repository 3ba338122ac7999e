/* queue: the memory FIFO, batching, admission, waiting and fair peeks;
 * several batches in flight (claim, release, out-of-order acks, also on
 * disk); many producers against one consumer. The disk queue's files and
 * recovery are test_queue_disk's. Built with a 256 KiB resident budget so
 * the disk cases also read spilled records back. */
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

#include "queue_testlib.h"

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

/* A consumer filling a batch waits for pushes that can fill it: counted
 * from what its last peek saw, so a push short of the marks does not end the
 * wait, reaching either mark does, and pushes that landed between two peeks
 * count (they once did not, and a batch then waited out its whole timeout
 * with the entries it wanted already queued). */
static void test_peek_fill(void **state)
{
    (void)state;
    export_queue *q = open_q(NULL, 1 << 20, 0, QUEUE_FSYNC_INTERVAL);
    queue_entry e[8];
    push(q, OTLP_TRACES, "t", "p", 1);
    queue_fill f = {0};
    assert_int_equal(queue_peek_fair(q, e, 8, 1, 0, NULL, NULL, NULL, NULL, &f), 1);
    assert_int_equal(f.pushed_items, 1);
    assert_int_equal(f.pushed_bytes, 1);
    f.items = 2;
    f.bytes = 1 << 20;
    uint64_t t0 = now_ms();
    assert_int_equal(queue_peek_fair(q, e, 8, 1, 100, NULL, NULL, NULL, NULL, &f), 1);
    assert_true(now_ms() - t0 >= 90);

    for (int k = 0; k < 2; k++) {
        delayed d = {q, 2};
        pthread_t th;
        pthread_create(&th, NULL, delayed_main, &d);
        f.items = k == 0 ? 2 : 100;
        f.bytes = k == 0 ? 1 << 20 : 2;
        t0 = now_ms();
        /* one push would satisfy min_entries, but not the fill */
        size_t n = queue_peek_fair(q, e, 8, 1, 10000, NULL, NULL, NULL, NULL, &f);
        assert_true(now_ms() - t0 < 5000);
        pthread_join(th, NULL);
        assert_int_equal(n, 3);
        queue_ack(q, e, 2); /* keep one queued for the next round */
    }

    /* Two pushes after the last peek: a fill of two wants nothing more. */
    push(q, OTLP_TRACES, "t", "p", 1);
    push(q, OTLP_TRACES, "t", "p", 1);
    f.items = 2;
    f.bytes = 1 << 20;
    t0 = now_ms();
    assert_int_equal(queue_peek_fair(q, e, 8, 2, 10000, NULL, NULL, NULL, NULL, &f), 3);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(f.pushed_items, 7);
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
        cmocka_unit_test(test_claim_release),
        cmocka_unit_test_setup_teardown(test_disk_out_of_order_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_out_of_order_threads, setup, teardown),
        cmocka_unit_test(test_concurrent_memory),
        cmocka_unit_test_setup_teardown(test_concurrent_disk, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
