/* queue: see queue.h for the contract and the record layout.
 *
 * Every queued entry is a node in one FIFO list, except that in disk mode the
 * list only holds a window of up to QUEUE_RESIDENT_MAX payload bytes: once a
 * push would exceed it, that record and every later one stay on disk only
 * ("spilled") until the consumer has drained the window and reads them back.
 * The spilled records are always the newest ones, so the list plus the
 * spilled region is the queue in order, and memory stays bounded whatever
 * max_bytes is. Recovery at open spills everything it replays.
 *
 * A node is one allocation holding the on-disk record (header, tenant,
 * payload) followed by a NUL-terminated copy of the tenant, so a push builds
 * and checksums the record outside the mutex and writes it with one pwrite;
 * peek hands out pointers into nodes and only ack frees them.
 *
 * Locking: one mutex guards the counters, the list, the segment table and
 * the write fd. Only the consumer thread (peek, ack) reads spilled records
 * back, so it does that I/O without the mutex; acks write the cursor and
 * unlink segments without it too. That consumer-side I/O (the read fd, the
 * cursor, unlinks) is serialized by io_lock, never taken with the mutex
 * held. Producers write, and fdatasync (ALWAYS), under the mutex. With
 * INTERVAL a syncer thread of the queue's own syncs, every
 * fsync_interval_ms and without the mutex, the segments that hold records
 * not delivered yet (queue_sync_undelivered): a producer never waits for
 * the disk, where syncing a second of writes could take a worker hundreds
 * of milliseconds. A failed sync fails the next push. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "queue_internal.h"

/* Room for one more element in a growing array of n (doubling from
 * `first`). -1 when out of memory (the array is unchanged). */
int queue_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(*arr, c * elem);
    if (p == NULL)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}


/* The tenant's accounting entry (lock held); NULL when out of memory and
 * `add` is set, or not found. */
static queue_tenant *queue_tenant_get(export_queue *q, const char *name, int add)
{
    for (size_t i = 0; i < q->ntenants; i++)
        if (strcmp(q->tenants[i].name, name) == 0)
            return &q->tenants[i];
    if (!add)
        return NULL;
    if (queue_grow((void **)&q->tenants, &q->tenantcap, q->ntenants, sizeof(*q->tenants), 8) != 0)
        return NULL;
    char *copy = strdup(name);
    if (copy == NULL)
        return NULL;
    q->tenants[q->ntenants] = (queue_tenant){.name = copy, .used = 0};
    return &q->tenants[q->ntenants++];
}

/* Gives back `bytes` of a tenant's share (lock held). Tenants holding
 * nothing are forgotten, and an empty queue forgets every count (records a
 * read-back dropped as corrupt are not returned one by one). */
static void queue_tenant_release(export_queue *q, const char *name, size_t bytes)
{
    queue_tenant *t = queue_tenant_get(q, name, 0);
    if (t != NULL) {
        t->used -= bytes < t->used ? bytes : t->used;
        if (t->used == 0) {
            free(t->name);
            *t = q->tenants[--q->ntenants];
        }
    }
    if (q->entries == 0 && q->reserved == 0) {
        for (size_t i = 0; i < q->ntenants; i++)
            free(q->tenants[i].name);
        q->ntenants = 0;
    }
}

void queue_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint32_t queue_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void queue_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- nodes ---- */

queue_node *queue_node_new(size_t tlen, size_t len)
{
    queue_node *n = malloc(sizeof(*n) + QUEUE_HDR + 2 * tlen + len + 1);
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->len = len;
    char *tenant = (char *)n->rec + QUEUE_HDR + tlen + len;
    tenant[tlen] = '\0';
    n->tenant = tenant;
    return n;
}

static size_t queue_node_tlen(const queue_node *n)
{
    return n->rec[13];
}

static const uint8_t *queue_node_data(const queue_node *n)
{
    return n->rec + QUEUE_HDR + queue_node_tlen(n);
}

size_t queue_rec_len(const queue_node *n)
{
    return QUEUE_HDR + queue_node_tlen(n) + n->len;
}

/* ---- API ---- */

static void queue_free(export_queue *q)
{
    while (q->head != NULL) {
        queue_node *n = q->head;
        q->head = n->next;
        free(n);
    }
    if (q->wfd >= 0)
        close(q->wfd);
    if (q->rfd >= 0)
        close(q->rfd);
    if (q->cfd >= 0)
        close(q->cfd);
    if (q->dirfd >= 0) {
        queue_drop_spares(q);
        close(q->dirfd); /* also releases the flock */
    }
    free(q->segs);
    for (size_t i = 0; i < q->ntenants; i++)
        free(q->tenants[i].name);
    free(q->tenants);
    pthread_cond_destroy(&q->cond);
    pthread_cond_destroy(&q->sync_cv);
    pthread_mutex_destroy(&q->lock);
    pthread_mutex_destroy(&q->io_lock);
    free(q);
}

export_queue *queue_open(const queue_config *cfg, const char *name, char *err, size_t errlen)
{
    export_queue *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        queue_err(err, errlen, "queue: out of memory");
        return NULL;
    }
    clock_cond_init(&q->cond);
    clock_cond_init(&q->sync_cv);
    pthread_mutex_init(&q->lock, NULL);
    pthread_mutex_init(&q->io_lock, NULL);
    q->dirfd = q->wfd = q->rfd = q->cfd = -1;
    q->max_bytes = cfg->max_bytes;
    if (cfg->tenant_share > 0 && cfg->tenant_share < 1)
        q->tenant_cap = (size_t)((double)cfg->max_bytes * cfg->tenant_share);
    q->fsync_mode = cfg->fsync;
    q->fsync_interval_ms = cfg->fsync_interval_ms ? cfg->fsync_interval_ms : 1000;
    q->segment_bytes = cfg->segment_bytes ? cfg->segment_bytes : (size_t)64 << 20;
    if (cfg->dir != NULL && queue_recover(q, cfg, name, err, errlen) != 0) {
        queue_free(q);
        return NULL;
    }
    if (queue_syncer_start(q) != 0) {
        queue_err(err, errlen, "queue: cannot start the fsync thread");
        queue_free(q);
        return NULL;
    }
    return q;
}

void queue_close(export_queue *q)
{
    if (q == NULL)
        return;
    queue_syncer_stop(q);
    /* Nobody to report a failure to: the data is written. */
    if (q->wfd >= 0 && q->fsync_mode == QUEUE_FSYNC_INTERVAL) {
        pthread_mutex_lock(&q->lock);
        queue_sync_undelivered(q);
        pthread_mutex_unlock(&q->lock);
    } else if (q->wfd >= 0 && q->fsync_mode == QUEUE_FSYNC_ALWAYS)
        queue_sync(q);
    queue_free(q);
}

int queue_reserve(export_queue *q, const char *tenant, size_t bytes)
{
    pthread_mutex_lock(&q->lock);
    size_t used = q->reserved + q->bytes;
    int rc = bytes > q->max_bytes ? -2 : used <= q->max_bytes && bytes <= q->max_bytes - used ? 0 : -1;
    queue_tenant *t = rc == 0 ? queue_tenant_get(q, tenant != NULL ? tenant : "", 1) : NULL;
    if (rc == 0 && t == NULL)
        rc = -1; /* out of memory: refuse (retryable) rather than lose count */
    /* A tenant is held to its share; one whose share is smaller than the
     * request may still have it while it holds nothing else. */
    if (t != NULL && q->tenant_cap > 0 && t->used > 0 && t->used + bytes > q->tenant_cap)
        rc = -1;
    if (rc == 0) {
        q->reserved += bytes;
        t->used += bytes;
    } else if (t != NULL && t->used == 0) {
        queue_tenant_release(q, t->name, 0);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void queue_unreserve(export_queue *q, const char *tenant, size_t bytes)
{
    pthread_mutex_lock(&q->lock);
    q->reserved -= bytes < q->reserved ? bytes : q->reserved;
    queue_tenant_release(q, tenant != NULL ? tenant : "", bytes);
    pthread_mutex_unlock(&q->lock);
}

/* A filling batch's wait is over: enough was pushed beyond the counts its
 * last peek saw (lock held). */
static int queue_filled(const export_queue *q)
{
    return q->pushed_items >= q->fill_items_at || q->pushed_bytes >= q->fill_bytes_at;
}

int queue_push(export_queue *q, otlp_signal sig, const char *tenant, uint32_t items, const uint8_t *data, size_t len,
               char *err, size_t errlen)
{
    if (tenant == NULL)
        tenant = "";
    size_t tlen = strlen(tenant);
    queue_node *n = NULL;
    if ((unsigned)sig >= OTLP_SIGNAL_COUNT || tlen > 255 || (uint64_t)len > UINT32_MAX)
        queue_err(err, errlen, "queue: bad entry (signal, tenant over 255 bytes or payload over 4 GiB)");
    else if ((n = queue_node_new(tlen, len)) == NULL)
        queue_err(err, errlen, "queue: out of memory");
    if (n == NULL) {
        queue_unreserve(q, tenant, len);
        return -1;
    }
    n->signal = sig;
    n->items = items;
    n->enqueued_ms = clock_now_ms();
    memcpy((char *)n->tenant, tenant, tlen);
    queue_put32(n->rec, QUEUE_MAGIC);
    queue_put32(n->rec + 4, (uint32_t)len);
    n->rec[12] = (uint8_t)sig;
    n->rec[13] = (uint8_t)tlen;
    queue_put32(n->rec + 14, items);
    memcpy(n->rec + QUEUE_HDR, tenant, tlen);
    if (len > 0)
        memcpy(n->rec + QUEUE_HDR + tlen, data, len);
    int disk = q->dirfd >= 0;
    if (disk) /* the CRC slot holds the body's part until queue_append adds the segment number */
        queue_put32(n->rec + 8, queue_crc_body(n->rec, tlen, len));

    pthread_mutex_lock(&q->lock);
    int rc = disk ? queue_append(q, n, err, errlen) : 0;
    q->reserved -= len < q->reserved ? len : q->reserved;
    if (rc == 0) {
        q->entries++;
        q->bytes += len;
        if (!disk || (q->spilled == 0 && q->resident_bytes + len <= QUEUE_RESIDENT_MAX)) {
            n->prev = q->tail;
            if (q->tail != NULL)
                q->tail->next = n;
            else
                q->head = n;
            q->tail = n;
            q->resident_entries++;
            q->resident_bytes += len;
            n = NULL;
        } else {
            queue_seg *s = &q->segs[q->nsegs - 1];
            s->spilled_entries++;
            s->spilled_bytes += len;
            if (q->spilled++ == 0) {
                q->load_seg = s->num;
                q->load_off = s->end - queue_rec_len(n);
            }
        }
        q->pushed_items += items;
        q->pushed_bytes += len;
        if (q->plain_waiting > 0 || (q->fill_waiting > 0 && queue_filled(q)))
            pthread_cond_signal(&q->cond);
    } else {
        queue_tenant_release(q, tenant, len);
    }
    pthread_mutex_unlock(&q->lock);
    free(n); /* spilled (or failed): the file has it, memory need not */
    return rc;
}

/* Reads spilled records back into the list until it holds `want` entries
 * not claimed or acked, or the resident budget (but at least one such
 * entry, so that in-flight batches filling the budget cannot stall it). Lock held on entry and exit;
 * released around the reads, which is safe because only this (consumer)
 * thread reads or moves the load position, and producers only append newer
 * spilled records while any are spilled. A record that no longer reads back
 * intact is skipped up to the next valid one; records the segment then
 * fails to yield are counted as corrupt. */
static void queue_load(export_queue *q, size_t want)
{
    for (;;) {
        /* Acks on other threads change these while the lock is dropped
         * below, but not resident_entries - held. */
        size_t held = q->busy + q->acked_waiting;
        if (q->spilled == 0 || q->resident_entries - held >= want ||
            (q->resident_entries > held && q->resident_bytes >= QUEUE_RESIDENT_MAX))
            break;
        queue_seg *s = queue_seg_find(q, q->load_seg);
        if (s == NULL || s->spilled_entries == 0) {
            size_t i = 0;
            while (i < q->nsegs && q->segs[i].num <= q->load_seg)
                i++;
            if (i == q->nsegs)
                return; /* cannot happen while spilled > 0 */
            q->load_seg = q->segs[i].num;
            q->load_off = 0;
            continue;
        }
        uint64_t num = s->num, off = q->load_off, size = s->end, avail = s->spilled_entries;
        size_t have = q->resident_entries - held, have_bytes = q->resident_bytes, got = 0, got_bytes = 0;
        queue_node *first = NULL, *last = NULL;
        queue_rec_status rs = QUEUE_REC_OK;
        pthread_mutex_unlock(&q->lock);
        pthread_mutex_lock(&q->io_lock);

        char name[32];
        if (q->rfd >= 0 && q->rfd_seg != num) {
            close(q->rfd);
            q->rfd = -1;
        }
        if (q->rfd < 0) {
            queue_seg_name(name, num);
            q->rfd = openat(q->dirfd, name, O_RDONLY | O_CLOEXEC);
            q->rfd_seg = num;
        }
        while (got < avail && (have == 0 || (have < want && have_bytes < QUEUE_RESIDENT_MAX))) {
            queue_node *n;
            rs = q->rfd < 0 ? QUEUE_REC_IOERR : queue_read_record(q->rfd, num, off, size, &n);
            if (rs == QUEUE_REC_BAD || rs == QUEUE_REC_STALE || (rs == QUEUE_REC_TORN && off < size)) {
                /* Damaged since the scan: skip to the next valid record;
                 * whatever it cost is reckoned when the segment runs out. */
                int ioerr;
                uint64_t next = queue_resync(q->rfd, num, off, size, &ioerr);
                if (next < size && !ioerr) {
                    off = next;
                    continue;
                }
            }
            if (rs != QUEUE_REC_OK)
                break;
            n->seg = num;
            off = n->end;
            n->prev = last;
            if (last != NULL)
                last->next = n;
            else
                first = n;
            last = n;
            got++;
            got_bytes += n->len;
            have++;
            have_bytes += n->len;
        }

        pthread_mutex_unlock(&q->io_lock);
        pthread_mutex_lock(&q->lock);
        s = queue_seg_find(q, num);
        if (first != NULL) {
            first->prev = q->tail;
            if (q->tail != NULL)
                q->tail->next = first;
            else
                q->head = first;
            q->tail = last;
        }
        q->resident_entries += got;
        q->resident_bytes += got_bytes;
        q->spilled -= got;
        s->spilled_entries -= got;
        s->spilled_bytes -= got_bytes;
        q->load_off = off;
        if (rs != QUEUE_REC_OK) {
            q->corrupt += s->spilled_entries;
            q->entries -= s->spilled_entries;
            q->bytes -= s->spilled_bytes;
            q->spilled -= s->spilled_entries;
            s->spilled_entries = s->spilled_bytes = 0;
        }
    }
}

/* Memory mode: the first unclaimed node a fair peek may start its batch with
 * (lock held), or NULL. */
static queue_node *queue_pick(export_queue *q, int (*skip)(void *, const char *), void *ud, const char *avoid)
{
    queue_node *fallback = NULL;
    for (queue_node *e = q->head; e != NULL; e = e->next) {
        if (e->state != QUEUE_FREE || (skip != NULL && skip(ud, e->tenant)))
            continue;
        if (avoid == NULL || strcmp(e->tenant, avoid) != 0)
            return e;
        if (fallback == NULL)
            fallback = e;
    }
    return fallback;
}

/* Memory mode: how many entries the next fair peek would return (lock held). */
static size_t queue_batchable(export_queue *q, int (*skip)(void *, const char *), void *ud, const char *avoid)
{
    const queue_node *first = queue_pick(q, skip, ud, avoid);
    size_t n = 0;
    for (const queue_node *e = first; e != NULL; e = e->next)
        n += e->state == QUEUE_FREE && e->signal == first->signal && strcmp(e->tenant, first->tenant) == 0;
    return n;
}

/* Disk mode: the oldest unclaimed node (lock held). */
static queue_node *queue_first_free(export_queue *q)
{
    queue_node *e = q->head;
    while (e != NULL && e->state != QUEUE_FREE)
        e = e->next;
    return e;
}

size_t queue_peek_fair(export_queue *q, queue_entry *out, size_t max_entries, size_t min_entries, uint32_t timeout_ms,
                       uint64_t *oldest_age_ms, int (*skip)(void *ud, const char *tenant), void *ud,
                       const char *avoid, queue_fill *fill)
{
    struct timespec dl = clock_deadline(timeout_ms);
    int disk = q->dirfd >= 0;
    pthread_mutex_lock(&q->lock);
    if (fill != NULL) {
        q->fill_items_at = fill->pushed_items + fill->items;
        q->fill_bytes_at = fill->pushed_bytes + fill->bytes;
    }
    for (;;) {
        int ready = q->entries - q->busy >= min_entries && (fill == NULL || queue_filled(q)) &&
                    (disk || queue_batchable(q, skip, ud, avoid) >= min_entries);
        if (ready || q->woken)
            break;
        size_t *waiting = fill != NULL ? &q->fill_waiting : &q->plain_waiting;
        (*waiting)++;
        int rc = pthread_cond_timedwait(&q->cond, &q->lock, &dl);
        (*waiting)--;
        if (rc == ETIMEDOUT)
            break;
    }
    q->woken = 0; /* a wake is consumed by one peek, even one that did not wait */
    if (q->spilled > 0 && q->resident_entries - q->busy - q->acked_waiting < max_entries)
        queue_load(q, max_entries);
    size_t n = 0;
    queue_node *first = disk ? queue_first_free(q) : queue_pick(q, skip, ud, avoid);
    for (queue_node *e = first; e != NULL && n < max_entries; e = e->next) {
        if (e->state != QUEUE_FREE || e->signal != first->signal || strcmp(e->tenant, first->tenant) != 0) {
            if (disk)
                break; /* strictly in order, so a restart resends little beyond the cursor */
            continue;
        }
        out[n++] = (queue_entry){.signal = e->signal, .items = e->items, .tenant = e->tenant,
                                 .data = queue_node_data(e), .len = e->len, .node = e};
    }
    if (fill != NULL) {
        fill->pushed_items = q->pushed_items;
        fill->pushed_bytes = q->pushed_bytes;
    }
    if (oldest_age_ms != NULL)
        /* Records read back from disk have no push time; enqueued_ms 0 makes
         * them look as old as the process, i.e. overdue, which they are. */
        *oldest_age_ms = first != NULL ? clock_now_ms() - first->enqueued_ms : 0;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t queue_peek(export_queue *q, queue_entry *out, size_t max_entries, size_t min_entries, uint32_t timeout_ms,
                  uint64_t *oldest_age_ms)
{
    return queue_peek_fair(q, out, max_entries, min_entries, timeout_ms, oldest_age_ms, NULL, NULL, NULL, NULL);
}

void queue_claim(export_queue *q, const queue_entry *e, size_t n)
{
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < n; i++)
        if (e[i].node->state == QUEUE_FREE) {
            e[i].node->state = QUEUE_BUSY;
            q->busy++;
        }
    pthread_mutex_unlock(&q->lock);
}

void queue_release(export_queue *q, const queue_entry *e, size_t n)
{
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < n; i++)
        if (e[i].node->state == QUEUE_BUSY) {
            e[i].node->state = QUEUE_FREE;
            q->busy--;
        }
    pthread_cond_broadcast(&q->cond); /* another consumer may take them */
    pthread_mutex_unlock(&q->lock);
}

/* Takes a node out of the list (lock held). */
static void queue_unlink(export_queue *q, queue_node *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->next = n->prev = NULL;
    q->resident_entries--;
    q->resident_bytes -= n->len;
}

void queue_ack(export_queue *q, const queue_entry *e, size_t n)
{
    int disk = q->dirfd >= 0;
    queue_node *done = NULL, *last = NULL;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < n; i++) {
        queue_node *node = e[i].node;
        if (node->state == QUEUE_BUSY)
            q->busy--;
        q->entries--;
        q->bytes -= node->len;
        queue_tenant_release(q, node->tenant, node->len);
        if (disk) {
            node->state = QUEUE_ACKED;
            q->acked_waiting++;
        } else {
            queue_unlink(q, node);
            node->next = done;
            done = node;
        }
    }
    if (q->entries == 0)
        queue_tenant_release(q, "", 0);
    /* Disk: the acked prefix leaves the list; the cursor moves past it. */
    while (disk && q->head != NULL && q->head->state == QUEUE_ACKED) {
        queue_node *h = q->head;
        queue_unlink(q, h);
        q->acked_waiting--;
        free(last);
        last = h;
    }
    if (!disk || last == NULL) {
        pthread_mutex_unlock(&q->lock);
        while (done != NULL) {
            queue_node *next = done->next;
            free(done);
            done = next;
        }
        return;
    }
    uint64_t *gone = NULL, cseg = 0, coff = 0, seq = ++q->cursor_seq;
    size_t ngone = queue_prune(q, &gone);
    queue_cursor_pos(q, last->seg, last->end, &cseg, &coff);
    pthread_mutex_unlock(&q->lock);

    /* Cursor first: a crash before the unlinks leaves segments that the
     * cursor already says are consumed, and recovery deletes them. Acks from
     * several threads write in turn, and a position older than one already
     * written is not written again (the cursor never moves back). */
    pthread_mutex_lock(&q->io_lock);
    if (seq > q->cursor_written) {
        queue_cursor_write(q, cseg, coff);
        q->cursor_written = seq;
    }
    queue_unlink_segs(q, gone, ngone);
    pthread_mutex_unlock(&q->io_lock);
    free(last);
}

void queue_wake(export_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->woken = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

void queue_get_stats(export_queue *q, queue_stats *out)
{
    pthread_mutex_lock(&q->lock);
    out->entries = q->entries;
    out->bytes = q->bytes;
    out->recovered_entries = q->recovered;
    out->corrupt_records = q->corrupt;
    out->torn_records = q->torn;
    out->interval_syncs = q->syncs;
    out->interval_passes = q->passes;
    out->interval_dir_syncs = q->dir_syncs;
    pthread_mutex_unlock(&q->lock);
}
