/* queue_disk: the disk mode of the export queue (queue.h): segment files
 * and their records, the consumer's cursor file, recovery at open, and the
 * fsync=interval syncer thread. The list and the API are in queue.c; the
 * shared types in queue_internal.h. */
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
#include "queue_internal.h"

/* ---- file helpers ---- */

void queue_seg_name(char out[32], uint64_t num)
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


/* Reads and verifies the record at `off` of a segment whose valid data ends
 * at `size`. TORN: it does not fit before `size` (a crash mid-write looks
 * like this); BAD: wrong magic, signal or checksum. */
queue_rec_status queue_read_record(int fd, uint64_t off, uint64_t size, queue_node **out)
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
uint64_t queue_resync(int fd, uint64_t off, uint64_t size, int *ioerr)
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

queue_seg *queue_seg_find(export_queue *q, uint64_t num)
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

int queue_sync(export_queue *q)
{
    if (!q->dirty)
        return 0;
    if (fdatasync(q->wfd) != 0)
        return -1;
    q->dirty = 0;
    q->last_sync_ms = clock_now_ms();
    return 0;
}

/* The write segment is being sealed: with the INTERVAL syncer running, a
 * dirty one is handed to it (synced before the next write segment, so no
 * sealed segment lags behind a newer one), because syncing up to an
 * interval of writes here would stall the pushing worker; otherwise
 * (ALWAYS, or no syncer) it is synced now, unless NEVER. 1: handed over
 * (the syncer closes it); 0: the caller closes it; -1: the sync failed. */
static int queue_seal(export_queue *q)
{
    if (q->fsync_mode == QUEUE_FSYNC_NEVER || !q->dirty)
        return 0;
    if (q->fsync_mode == QUEUE_FSYNC_INTERVAL && q->syncer_on) {
        if (q->sealed_fd >= 0) { /* two rolls within an interval: sync the older one first */
            if (fdatasync(q->sealed_fd) != 0)
                return -1;
            close(q->sealed_fd);
        }
        q->sealed_fd = q->wfd;
        q->dirty = 0;
        pthread_cond_signal(&q->sync_cv);
        return 1;
    }
    return queue_sync(q);
}

/* Starts segment `num` as the write segment, sealing the previous one
 * (queue_seal); with ALWAYS the directory is synced too, so the new name
 * survives power loss. */
static int queue_seg_start(export_queue *q, uint64_t num, char *err, size_t errlen)
{
    char name[32];
    queue_seg_name(name, num);
    int sealed = q->wfd >= 0 ? queue_seal(q) : 0;
    if (sealed < 0) {
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
    if (q->wfd >= 0 && sealed == 0)
        close(q->wfd);
    q->wfd = fd;
    q->dirty = 0;
    return 0;
}

/* Appends n's record to the write segment (lock held). On failure the
 * segment is cut back so the record never half-exists. */
int queue_append(export_queue *q, queue_node *n, char *err, size_t errlen)
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
size_t queue_prune(export_queue *q, uint64_t **gone)
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

void queue_unlink_segs(export_queue *q, uint64_t *gone, size_t n)
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
void queue_cursor_pos(export_queue *q, uint64_t seg, uint64_t off, uint64_t *cseg, uint64_t *coff)
{
    int kept = queue_seg_find(q, seg) != NULL;
    *cseg = kept ? seg : q->segs[0].num;
    *coff = kept ? off : 0;
}

/* temp + rename, so a crash leaves the old or the new cursor. A cursor that
 * could not be written (or is lost) only means a restart resends. */
void queue_cursor_write(export_queue *q, uint64_t seg, uint64_t off)
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

int queue_recover(export_queue *q, const queue_config *cfg, const char *name, char *err, size_t errlen)
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
        while (!q->stopping && q->sealed_fd < 0 && pthread_cond_timedwait(&q->sync_cv, &q->lock, &until) == 0)
            ;
        if (q->sealed_fd >= 0) { /* a sealed segment first, at once: the next interval starts after it */
            int sealed = q->sealed_fd;
            q->sealed_fd = -1;
            pthread_mutex_unlock(&q->lock);
            int rc = fdatasync(sealed), e = errno;
            close(sealed);
            pthread_mutex_lock(&q->lock);
            if (rc != 0)
                q->sync_errno = e;
            else
                q->syncs++;
            continue;
        }
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

int queue_syncer_start(export_queue *q)
{
    if (q->dirfd < 0 || q->fsync_mode != QUEUE_FSYNC_INTERVAL)
        return 0;
    if (pthread_create(&q->syncer, NULL, queue_syncer, q) != 0)
        return -1;
    q->syncer_on = 1;
    return 0;
}

void queue_syncer_stop(export_queue *q)
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
