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
 * INTERVAL a syncer thread of the queue's own calls fdatasync every
 * fsync_interval_ms without the mutex (on a dup of the write fd, so a
 * segment change meanwhile is harmless): a producer never waits for the
 * disk, where syncing a second of writes could take a worker hundreds of
 * milliseconds. A failed sync fails the next push. */
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
#include "crc32c.h"
#include "queue.h"

#define QUEUE_MAGIC 0x31515747u /* "GWQ1" as little-endian bytes */
#define QUEUE_HDR 18            /* magic, length, crc, signal, tenant length, items */
#define QUEUE_CRC_FROM 12       /* the CRC covers the record from the signal byte on */

/* Payload bytes a disk queue keeps in memory (tests lower it to exercise the
 * read-back path). Memory mode is bounded by max_bytes alone. */
#ifndef QUEUE_RESIDENT_MAX
#define QUEUE_RESIDENT_MAX ((size_t)64 << 20)
#endif

/* A resident node's state: a consumer claims entries (BUSY) while it sends
 * them and acks them in any order; in disk mode an acked node stays in the
 * list (ACKED) until every older one is acked too, because the cursor on
 * disk can only name a prefix of the queue. */
enum { QUEUE_FREE = 0, QUEUE_BUSY = 1, QUEUE_ACKED = 2 };

typedef struct queue_node {
    struct queue_node *next, *prev;
    uint64_t seg, end;    /* disk: segment number and offset just past the record */
    uint64_t enqueued_ms; /* 0 for records read back from disk (see queue_peek) */
    size_t len;
    uint32_t items;
    otlp_signal signal;
    int state;          /* QUEUE_FREE, QUEUE_BUSY or QUEUE_ACKED */
    const char *tenant; /* inside this allocation, after rec */
    uint8_t rec[];      /* header, tenant, payload: exactly what is on disk */
} queue_node;

typedef struct queue_seg {
    uint64_t num;
    uint64_t end;                           /* bytes of valid records */
    uint64_t spilled_entries, spilled_bytes; /* records only on disk, not yet read back */
} queue_seg;

struct export_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t max_bytes, reserved;
    size_t entries, bytes;                   /* everything queued, resident or spilled */
    size_t resident_entries, resident_bytes; /* in the list */
    size_t busy;                             /* claimed by consumers (still in entries) */
    size_t acked_waiting;                    /* disk: ACKED nodes behind an older unacked one */
    queue_node *head, *tail;
    int woken;
    uint64_t recovered, corrupt, torn;
    size_t tenant_cap;           /* 0: no per-tenant cap */
    struct queue_tenant *tenants; /* bytes reserved + queued per tenant admitted here */
    size_t ntenants, tenantcap;

    /* disk mode (dirfd >= 0) */
    int dirfd, wfd, rfd;
    uint64_t rfd_seg; /* which segment rfd reads */
    queue_fsync fsync_mode;
    uint64_t fsync_interval_ms, last_sync_ms;
    int dirty;          /* written since the last fdatasync */
    uint64_t writes;    /* records appended, so the syncer knows whether it synced them all */
    uint64_t syncs;     /* fdatasyncs done by the syncer */
    int sync_errno;     /* the syncer's last failure, reported by the next push */
    int syncer_on, stopping;
    pthread_t syncer;
    pthread_cond_t sync_cv;
    size_t segment_bytes;
    queue_seg *segs; /* oldest first; the last one is being written */
    size_t nsegs, segcap;
    size_t spilled;
    uint64_t load_seg, load_off; /* the oldest spilled record (owned by the peeking consumer) */
    /* io_lock: the read fd, the cursor file and segment unlinks, which a
     * peek (reading back) and acks (from any consumer thread) share. */
    pthread_mutex_t io_lock;
    uint64_t cursor_seq, cursor_written; /* order of cursor positions (lock / io_lock) */
};

/* Room for one more element in a growing array of n (doubling from
 * `first`). -1 when out of memory (the array is unchanged). */
static int queue_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t first)
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

typedef struct queue_tenant {
    char *name;
    size_t used;
} queue_tenant;

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

static void queue_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t queue_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void queue_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- nodes ---- */

static queue_node *queue_node_new(size_t tlen, size_t len)
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

static size_t queue_rec_len(const queue_node *n)
{
    return QUEUE_HDR + queue_node_tlen(n) + n->len;
}

/* ---- file helpers ---- */

static void queue_seg_name(char out[32], uint64_t num)
{
    snprintf(out, 32, "%020" PRIu64 ".seg", num);
}

/* Segment names are exactly 20 digits and ".seg"; anything else in the
 * directory is not ours to read or delete. */
static int queue_seg_parse(const char *name, uint64_t *num)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *num = v;
    return 0;
}

static int queue_pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* 0, or 1 at end of file (short read), or -1 with errno. */
static int queue_pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

typedef enum { QUEUE_REC_OK, QUEUE_REC_TORN, QUEUE_REC_BAD, QUEUE_REC_IOERR } queue_rec_status;

/* Reads and verifies the record at `off` of a segment whose valid data ends
 * at `size`. TORN: it does not fit before `size` (a crash mid-write looks
 * like this); BAD: wrong magic, signal or checksum. */
static queue_rec_status queue_read_record(int fd, uint64_t off, uint64_t size, queue_node **out)
{
    uint8_t h[QUEUE_HDR];
    if (size - off < QUEUE_HDR)
        return QUEUE_REC_TORN;
    int rc = queue_pread_all(fd, h, sizeof(h), off);
    if (rc != 0)
        return rc < 0 ? QUEUE_REC_IOERR : QUEUE_REC_TORN;
    if (queue_get32(h) != QUEUE_MAGIC || h[12] >= OTLP_SIGNAL_COUNT)
        return QUEUE_REC_BAD;
    size_t len = queue_get32(h + 4), tlen = h[13];
    if (size - off - QUEUE_HDR < tlen + (uint64_t)len)
        return QUEUE_REC_TORN;
    queue_node *n = queue_node_new(tlen, len);
    if (n == NULL)
        return QUEUE_REC_IOERR;
    memcpy(n->rec, h, QUEUE_HDR);
    rc = queue_pread_all(fd, n->rec + QUEUE_HDR, tlen + len, off + QUEUE_HDR);
    if (rc != 0 || crc32c(n->rec + QUEUE_CRC_FROM, QUEUE_HDR - QUEUE_CRC_FROM + tlen + len) != queue_get32(h + 8)) {
        free(n);
        return rc < 0 ? QUEUE_REC_IOERR : rc > 0 ? QUEUE_REC_TORN : QUEUE_REC_BAD;
    }
    memcpy((char *)n->tenant, n->rec + QUEUE_HDR, tlen);
    n->signal = (otlp_signal)h[12];
    n->items = queue_get32(h + 14);
    n->end = off + QUEUE_HDR + tlen + len;
    *out = n;
    return QUEUE_REC_OK;
}

/* The first offset after `off` (< size) where a whole valid record starts
 * (magic, a length that fits, a matching CRC), or `size` when none does:
 * damage costs the damaged record, not the rest of its segment. A false
 * match needs the magic and a CRC-32C collision at once. *ioerr is set on a
 * read error (then `size` is returned). */
static uint64_t queue_resync(int fd, uint64_t off, uint64_t size, int *ioerr)
{
    enum { CHUNK = 64 << 10 };
    static const uint8_t magic[4] = {QUEUE_MAGIC & 0xff, (QUEUE_MAGIC >> 8) & 0xff, (QUEUE_MAGIC >> 16) & 0xff,
                                     QUEUE_MAGIC >> 24};
    uint8_t *chunk = malloc(CHUNK);
    *ioerr = 0;
    if (chunk == NULL) {
        *ioerr = 1;
        return size;
    }
    uint64_t pos = off + 1;
    while (pos + QUEUE_HDR <= size) {
        size_t n = size - pos < CHUNK ? (size_t)(size - pos) : CHUNK;
        ssize_t r;
        do
            r = pread(fd, chunk, n, (off_t)pos);
        while (r < 0 && errno == EINTR);
        if (r <= 0) {
            *ioerr = r < 0;
            break;
        }
        size_t i = 0;
        for (; i + 4 <= (size_t)r; i++) {
            if (memcmp(chunk + i, magic, 4) != 0)
                continue;
            queue_node *rec;
            queue_rec_status rs = queue_read_record(fd, pos + i, size, &rec);
            if (rs == QUEUE_REC_OK) {
                free(rec);
                free(chunk);
                return pos + i;
            }
            if (rs == QUEUE_REC_IOERR) {
                *ioerr = 1;
                free(chunk);
                return size;
            }
        }
        if ((size_t)r < 4)
            break;
        pos += (uint64_t)r - 3; /* a magic split across chunks is seen in the next one */
    }
    free(chunk);
    return size;
}

/* ---- segments ---- */

static queue_seg *queue_seg_find(export_queue *q, uint64_t num)
{
    for (size_t i = 0; i < q->nsegs; i++)
        if (q->segs[i].num == num)
            return &q->segs[i];
    return NULL;
}

static queue_seg *queue_seg_add(export_queue *q, uint64_t num)
{
    if (queue_grow((void **)&q->segs, &q->segcap, q->nsegs, sizeof(*q->segs), 16) != 0)
        return NULL;
    queue_seg *s = &q->segs[q->nsegs++];
    memset(s, 0, sizeof(*s));
    s->num = num;
    return s;
}

static int queue_sync(export_queue *q)
{
    if (!q->dirty)
        return 0;
    if (fdatasync(q->wfd) != 0)
        return -1;
    q->dirty = 0;
    q->last_sync_ms = clock_now_ms();
    return 0;
}

/* Starts segment `num` as the write segment. The previous one is synced
 * first (unless NEVER) so no sealed segment lags behind a newer one, and with
 * ALWAYS the directory too, so the new name survives power loss. */
static int queue_seg_start(export_queue *q, uint64_t num, char *err, size_t errlen)
{
    char name[32];
    queue_seg_name(name, num);
    if (q->wfd >= 0 && q->fsync_mode != QUEUE_FSYNC_NEVER && queue_sync(q) != 0) {
        queue_err(err, errlen, "queue: fdatasync: %s", strerror(errno));
        return -1;
    }
    int fd = openat(q->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 || (q->fsync_mode == QUEUE_FSYNC_ALWAYS && fsync(q->dirfd) != 0) || queue_seg_add(q, num) == NULL) {
        queue_err(err, errlen, "queue: create segment %s: %s", name, fd < 0 ? strerror(errno) : "sync or memory");
        if (fd >= 0) {
            unlinkat(q->dirfd, name, 0);
            close(fd);
        }
        return -1;
    }
    if (q->wfd >= 0)
        close(q->wfd);
    q->wfd = fd;
    q->dirty = 0;
    return 0;
}

/* Appends n's record to the write segment (lock held). On failure the
 * segment is cut back so the record never half-exists. */
static int queue_append(export_queue *q, queue_node *n, char *err, size_t errlen)
{
    size_t rl = queue_rec_len(n);
    queue_seg *s = &q->segs[q->nsegs - 1];
    if (s->end > 0 && s->end + rl > q->segment_bytes) {
        if (queue_seg_start(q, s->num + 1, err, errlen) != 0)
            return -1;
        s = &q->segs[q->nsegs - 1];
    }
    if (q->sync_errno != 0) {
        queue_err(err, errlen, "queue: fdatasync: %s", strerror(q->sync_errno));
        q->sync_errno = 0; /* reported once; the next sync tries again */
        return -1;
    }
    q->dirty = 1;
    q->writes++;
    int rc = queue_pwrite_all(q->wfd, n->rec, rl, s->end);
    if (rc == 0 && q->fsync_mode == QUEUE_FSYNC_ALWAYS)
        rc = queue_sync(q);
    if (rc != 0) {
        queue_err(err, errlen, "queue: write segment %" PRIu64 ": %s", s->num, strerror(errno));
        /* If even this fails, the next record is written at s->end over the
         * remains, and recovery stops at whatever is left after the last. */
        (void)!ftruncate(q->wfd, (off_t)s->end);
        return -1;
    }
    s->end += rl;
    n->seg = s->num;
    n->end = s->end;
    return 0;
}

/* Drops (from the table) the segments nothing queued lives in any more,
 * except the write segment, and returns their numbers for unlinking (lock
 * held; *gone is malloc'ed or NULL). */
static size_t queue_prune(export_queue *q, uint64_t **gone)
{
    size_t n = 0, keep = 0;
    *gone = NULL;
    for (size_t i = 0; i < q->nsegs; i++) {
        queue_seg *s = &q->segs[i];
        int done = i + 1 < q->nsegs && s->spilled_entries == 0 && (q->head == NULL || q->head->seg > s->num);
        if (done && (n > 0 || (*gone = malloc(q->nsegs * sizeof(**gone))) != NULL))
            (*gone)[n++] = s->num;
        else
            q->segs[keep++] = *s;
    }
    q->nsegs = keep;
    return n;
}

static void queue_unlink_segs(export_queue *q, uint64_t *gone, size_t n)
{
    char name[32];
    for (size_t i = 0; i < n; i++) {
        queue_seg_name(name, gone[i]);
        unlinkat(q->dirfd, name, 0);
        if (q->rfd >= 0 && q->rfd_seg == gone[i]) { /* or it would pin the disk space */
            close(q->rfd);
            q->rfd = -1;
        }
    }
    free(gone);
}

/* The cursor to record after consuming up to (seg, off): if that segment was
 * pruned, the start of the oldest remaining one. */
static void queue_cursor_pos(export_queue *q, uint64_t seg, uint64_t off, uint64_t *cseg, uint64_t *coff)
{
    int kept = queue_seg_find(q, seg) != NULL;
    *cseg = kept ? seg : q->segs[0].num;
    *coff = kept ? off : 0;
}

/* temp + rename, so a crash leaves the old or the new cursor. A cursor that
 * could not be written (or is lost) only means a restart resends. */
static void queue_cursor_write(export_queue *q, uint64_t seg, uint64_t off)
{
    char buf[48];
    int len = snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 "\n", seg, off);
    int fd = openat(q->dirfd, "cursor.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    int ok = queue_pwrite_all(fd, (const uint8_t *)buf, (size_t)len, 0) == 0 &&
             (q->fsync_mode != QUEUE_FSYNC_ALWAYS || fdatasync(fd) == 0);
    close(fd);
    if (ok)
        renameat(q->dirfd, "cursor.tmp", q->dirfd, "cursor");
}

static void queue_cursor_read(export_queue *q, uint64_t *seg, uint64_t *off)
{
    char buf[48];
    *seg = *off = 0;
    int fd = openat(q->dirfd, "cursor", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    char *end;
    if (n <= 0)
        return;
    buf[n] = '\0';
    unsigned long long s = strtoull(buf, &end, 10);
    if (*end != ' ')
        return;
    unsigned long long o = strtoull(end + 1, &end, 10);
    if (*end == '\n') {
        *seg = s;
        *off = o;
    }
}

/* ---- recovery ---- */

/* Validates segment s from `start`, counting its records as spilled. A
 * damaged record is skipped up to the next valid one (queue_resync) and
 * counted in `corrupt`; damage with no valid record after it is a torn tail
 * (a crash mid-write looks like this): counted in `torn`, and cut off when
 * it ends the last segment (the one written before the crash). */
static int queue_scan(export_queue *q, queue_seg *s, uint64_t start, int last, char *err, size_t errlen)
{
    char name[32];
    queue_seg_name(name, s->num);
    int fd = openat(q->dirfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        queue_err(err, errlen, "queue: open segment %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size, off = start < size ? start : size, valid_end = off;
    while (off < size) {
        queue_node *n;
        queue_rec_status rs = queue_read_record(fd, off, size, &n);
        if (rs == QUEUE_REC_OK) {
            s->spilled_entries++;
            s->spilled_bytes += n->len;
            off = valid_end = n->end;
            free(n);
            continue;
        }
        int ioerr = rs == QUEUE_REC_IOERR;
        uint64_t next = ioerr ? size : queue_resync(fd, off, size, &ioerr);
        if (ioerr) {
            queue_err(err, errlen, "queue: read segment %s: %s", name, strerror(errno));
            close(fd);
            return -1;
        }
        if (next < size) {
            q->corrupt++;
            off = next;
            continue;
        }
        if (last)
            q->torn++;
        else
            q->corrupt++; /* a sealed segment was complete once: damage */
        if (last && ftruncate(fd, (off_t)valid_end) != 0) {
            queue_err(err, errlen, "queue: truncate segment %s: %s", name, strerror(errno));
            close(fd);
            return -1;
        }
        break;
    }
    close(fd);
    s->end = valid_end;
    q->spilled += s->spilled_entries;
    q->entries += s->spilled_entries;
    q->bytes += s->spilled_bytes;
    return 0;
}

static int queue_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment numbers in dir, sorted; *nums malloc'ed. -1 on error. */
static ssize_t queue_list_segs(export_queue *q, uint64_t **nums)
{
    int fd = dup(q->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    size_t n = 0, cap = 0;
    *nums = NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct dirent *de;
    uint64_t num;
    while ((de = readdir(d)) != NULL) {
        if (queue_seg_parse(de->d_name, &num) != 0)
            continue;
        if (n == cap) {
            uint64_t *p = realloc(*nums, (cap = cap ? cap * 2 : 16) * sizeof(*p));
            if (p == NULL) {
                closedir(d);
                return -1;
            }
            *nums = p;
        }
        (*nums)[n++] = num;
    }
    closedir(d);
    if (n > 0)
        qsort(*nums, n, sizeof(**nums), queue_cmp_u64);
    return (ssize_t)n;
}

static int queue_open_dir(export_queue *q, const char *dir, const char *name, char *err, size_t errlen)
{
    if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0) {
        queue_err(err, errlen, "queue: invalid queue name for a directory");
        return -1;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        queue_err(err, errlen, "queue: mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    int parent = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0 || (mkdirat(parent, name, 0750) != 0 && errno != EEXIST) ||
        (q->dirfd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        queue_err(err, errlen, "queue: directory %s/%s: %s", dir, name, strerror(errno));
        if (parent >= 0)
            close(parent);
        return -1;
    }
    close(parent);
    if (flock(q->dirfd, LOCK_EX | LOCK_NB) != 0) {
        queue_err(err, errlen, "queue: %s/%s: %s", dir, name,
                  errno == EWOULDBLOCK ? "in use by another queue" : strerror(errno));
        return -1;
    }
    return 0;
}

static int queue_recover(export_queue *q, const queue_config *cfg, const char *name, char *err, size_t errlen)
{
    if (queue_open_dir(q, cfg->dir, name, err, errlen) != 0)
        return -1;
    uint64_t cseg, coff, *nums;
    queue_cursor_read(q, &cseg, &coff);
    ssize_t n = queue_list_segs(q, &nums);
    if (n < 0) {
        queue_err(err, errlen, "queue: list %s/%s: %s", cfg->dir, name, strerror(errno));
        return -1;
    }
    /* A valid cursor names an existing segment (the write segment exists
     * before any cursor names it, and segments are unlinked only behind the
     * cursor); otherwise it is damaged or stale and everything is replayed
     * rather than anything deleted. */
    ssize_t at = 0;
    while (at < n && nums[at] != cseg)
        at++;
    if (at == n)
        cseg = coff = 0;
    char sname[32];
    int rc = 0;
    for (ssize_t i = 0; i < n && rc == 0; i++) {
        queue_seg *s;
        if (nums[i] < cseg) { /* acknowledged; the unlink after the cursor write did not happen */
            queue_seg_name(sname, nums[i]);
            unlinkat(q->dirfd, sname, 0);
        } else if ((s = queue_seg_add(q, nums[i])) == NULL) {
            queue_err(err, errlen, "queue: out of memory");
            rc = -1;
        } else {
            rc = queue_scan(q, s, nums[i] == cseg ? coff : 0, i == n - 1, err, errlen);
        }
    }
    uint64_t next = (n > 0 && nums[n - 1] >= cseg ? nums[n - 1] : cseg) + 1;
    free(nums);
    if (rc != 0 || queue_seg_start(q, next, err, errlen) != 0)
        return -1;
    q->recovered = q->entries;
    uint64_t *gone;
    size_t ngone = queue_prune(q, &gone);
    queue_cursor_pos(q, cseg, coff, &q->load_seg, &q->load_off);
    queue_cursor_write(q, q->load_seg, q->load_off);
    queue_unlink_segs(q, gone, ngone);
    return 0;
}

/* ---- the INTERVAL syncer ---- */

static void *queue_syncer(void *arg)
{
    export_queue *q = arg;
    pthread_mutex_lock(&q->lock);
    while (!q->stopping) {
        struct timespec until = clock_deadline(q->fsync_interval_ms);
        while (!q->stopping && pthread_cond_timedwait(&q->sync_cv, &q->lock, &until) == 0)
            ;
        if (q->stopping || !q->dirty || q->wfd < 0)
            continue;
        uint64_t writes = q->writes;
        int fd = fcntl(q->wfd, F_DUPFD_CLOEXEC, 0);
        pthread_mutex_unlock(&q->lock);
        int rc = fd >= 0 ? fdatasync(fd) : -1;
        int e = errno;
        if (fd >= 0)
            close(fd);
        pthread_mutex_lock(&q->lock);
        if (rc != 0) {
            q->sync_errno = e;
            continue;
        }
        q->syncs++;
        q->last_sync_ms = clock_now_ms();
        /* Still dirty if a record came meanwhile: a segment change must sync
         * the old one itself then (queue_seg_start). */
        if (q->writes == writes)
            q->dirty = 0;
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

static int queue_syncer_start(export_queue *q)
{
    if (q->dirfd < 0 || q->fsync_mode != QUEUE_FSYNC_INTERVAL)
        return 0;
    if (pthread_create(&q->syncer, NULL, queue_syncer, q) != 0)
        return -1;
    q->syncer_on = 1;
    return 0;
}

static void queue_syncer_stop(export_queue *q)
{
    if (!q->syncer_on)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopping = 1;
    pthread_cond_signal(&q->sync_cv);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->syncer, NULL);
    q->syncer_on = 0;
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
    if (q->dirfd >= 0)
        close(q->dirfd); /* also releases the flock */
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
    q->dirfd = q->wfd = q->rfd = -1;
    q->max_bytes = cfg->max_bytes;
    if (cfg->tenant_share > 0 && cfg->tenant_share < 1)
        q->tenant_cap = (size_t)((double)cfg->max_bytes * cfg->tenant_share);
    q->fsync_mode = cfg->fsync;
    q->fsync_interval_ms = cfg->fsync_interval_ms ? cfg->fsync_interval_ms : 1000;
    q->segment_bytes = cfg->segment_bytes ? cfg->segment_bytes : (size_t)64 << 20;
    q->last_sync_ms = clock_now_ms();
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
    if (q->wfd >= 0 && q->fsync_mode != QUEUE_FSYNC_NEVER)
        queue_sync(q); /* nobody to report a failure to; the data is written */
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
    if (disk)
        queue_put32(n->rec + 8, crc32c(n->rec + QUEUE_CRC_FROM, QUEUE_HDR - QUEUE_CRC_FROM + tlen + len));

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
            rs = q->rfd < 0 ? QUEUE_REC_IOERR : queue_read_record(q->rfd, off, size, &n);
            if (rs == QUEUE_REC_BAD || (rs == QUEUE_REC_TORN && off < size)) {
                /* Damaged since the scan: skip to the next valid record;
                 * whatever it cost is reckoned when the segment runs out. */
                int ioerr;
                uint64_t next = queue_resync(q->rfd, off, size, &ioerr);
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
                       const char *avoid)
{
    struct timespec dl = clock_deadline(timeout_ms);
    int disk = q->dirfd >= 0;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        int ready = q->entries - q->busy >= min_entries &&
                    (disk || queue_batchable(q, skip, ud, avoid) >= min_entries);
        if (ready || q->woken || pthread_cond_timedwait(&q->cond, &q->lock, &dl) == ETIMEDOUT)
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
    return queue_peek_fair(q, out, max_entries, min_entries, timeout_ms, oldest_age_ms, NULL, NULL, NULL);
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
    pthread_mutex_unlock(&q->lock);
}
