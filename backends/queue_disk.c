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

static void queue_spare_name(char out[32], uint64_t num)
{
    snprintf(out, 32, "%020" PRIu64 ".free", num);
}

/* Segment names are exactly 20 digits and ".seg" (spares: ".free");
 * anything else in the directory is not ours to read or delete. */
static int queue_name_parse(const char *name, const char *suffix, uint64_t *num)
{
    if (strlen(name) != 20 + strlen(suffix) || strcmp(name + 20, suffix) != 0)
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

static void queue_put64(uint8_t *p, uint64_t v)
{
    queue_put32(p, (uint32_t)v);
    queue_put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t queue_get64(const uint8_t *p)
{
    return (uint64_t)queue_get32(p) | (uint64_t)queue_get32(p + 4) << 32;
}

uint32_t queue_crc_body(const uint8_t *rec, size_t tlen, size_t len)
{
    return crc32c_extend(crc32c(rec + QUEUE_CRC_FROM, QUEUE_SEG_AT - QUEUE_CRC_FROM), rec + QUEUE_HDR, tlen + len);
}

uint32_t queue_crc_seal(uint32_t body, const uint8_t *rec)
{
    return crc32c_extend(body, rec + QUEUE_SEG_AT, QUEUE_HDR - QUEUE_SEG_AT);
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


/* Reads and verifies the record at `off` of segment `seg`, whose valid
 * data ends at `size`. TORN: it does not fit before `size` (a crash
 * mid-write looks like this); BAD: wrong magic, signal or checksum; STALE:
 * a valid record that names another segment (what a reused file held
 * before). A GWQ1 record has no segment number: its CRC is of the same
 * bytes without it, and it is returned in the GWQ2 layout (number 0). */
queue_rec_status queue_read_record(int fd, uint64_t seg, uint64_t off, uint64_t size, queue_node **out)
{
    uint8_t h[QUEUE_HDR];
    if (size - off < QUEUE_HDR_V1)
        return QUEUE_REC_TORN;
    int rc = queue_pread_all(fd, h, QUEUE_HDR_V1, off);
    if (rc != 0)
        return rc < 0 ? QUEUE_REC_IOERR : QUEUE_REC_TORN;
    int v1 = queue_get32(h) == QUEUE_MAGIC_V1;
    if ((!v1 && queue_get32(h) != QUEUE_MAGIC) || h[12] >= OTLP_SIGNAL_COUNT)
        return QUEUE_REC_BAD;
    size_t hl = v1 ? QUEUE_HDR_V1 : QUEUE_HDR;
    memset(h + QUEUE_HDR_V1, 0, QUEUE_HDR - QUEUE_HDR_V1);
    if (!v1) {
        if (size - off < QUEUE_HDR)
            return QUEUE_REC_TORN;
        if ((rc = queue_pread_all(fd, h + QUEUE_HDR_V1, QUEUE_HDR - QUEUE_HDR_V1, off + QUEUE_HDR_V1)) != 0)
            return rc < 0 ? QUEUE_REC_IOERR : QUEUE_REC_TORN;
    }
    size_t len = queue_get32(h + 4), tlen = h[13];
    if (size - off - hl < tlen + (uint64_t)len)
        return QUEUE_REC_TORN;
    queue_node *n = queue_node_new(tlen, len);
    if (n == NULL)
        return QUEUE_REC_IOERR;
    memcpy(n->rec, h, QUEUE_HDR);
    rc = queue_pread_all(fd, n->rec + QUEUE_HDR, tlen + len, off + hl);
    uint32_t body = rc == 0 ? queue_crc_body(n->rec, tlen, len) : 0;
    if (rc != 0 || (v1 ? body : queue_crc_seal(body, n->rec)) != queue_get32(h + 8)) {
        free(n);
        return rc < 0 ? QUEUE_REC_IOERR : rc > 0 ? QUEUE_REC_TORN : QUEUE_REC_BAD;
    }
    if (!v1 && queue_get64(h + QUEUE_SEG_AT) != seg) {
        free(n);
        return QUEUE_REC_STALE;
    }
    memcpy((char *)n->tenant, n->rec + QUEUE_HDR, tlen);
    n->signal = (otlp_signal)h[12];
    n->items = queue_get32(h + 14);
    n->end = off + hl + tlen + len;
    *out = n;
    return QUEUE_REC_OK;
}

/* The first offset after `off` (< size) where a whole valid record of
 * segment `seg` starts (magic, a length that fits, a matching CRC, this
 * segment's number), or `size` when none does: damage costs the damaged
 * record, not the rest of its segment. A false match needs a magic and a
 * CRC-32C collision at once. *ioerr is set on a read error (then `size` is
 * returned). */
uint64_t queue_resync(int fd, uint64_t seg, uint64_t off, uint64_t size, int *ioerr)
{
    enum { CHUNK = 64 << 10 };
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
            uint32_t m = queue_get32(chunk + i);
            if (m != QUEUE_MAGIC && m != QUEUE_MAGIC_V1)
                continue;
            queue_node *rec;
            queue_rec_status rs = queue_read_record(fd, seg, pos + i, size, &rec);
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
    return 0;
}

/* The write segment is being sealed: the INTERVAL syncer syncs what of it
 * is still undelivered at its next round, ALWAYS synced every record
 * already, NEVER does not sync; INTERVAL without the syncer (recovery,
 * before it starts) syncs it now. 0, or -1 if that sync failed. */
static int queue_seal(export_queue *q)
{
    if (q->fsync_mode != QUEUE_FSYNC_INTERVAL || q->syncer_on)
        return 0;
    return queue_sync(q);
}

/* A new segment file `name`, for writing from offset 0: a spare renamed
 * (its old records are STALE to the reader, and overwritten as it fills),
 * else a new file. A spare that cannot be renamed is dropped. */
static int queue_seg_create(export_queue *q, const char *name)
{
    while (q->n_spare > 0) {
        char spare[32];
        queue_spare_name(spare, q->spare[--q->n_spare]);
        if (renameat2(q->dirfd, spare, q->dirfd, name, RENAME_NOREPLACE) == 0) {
            int fd = openat(q->dirfd, name, O_WRONLY | O_CLOEXEC);
            if (fd >= 0)
                return fd;
            unlinkat(q->dirfd, name, 0);
        } else {
            unlinkat(q->dirfd, spare, 0);
        }
    }
    return openat(q->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
}

/* Starts segment `num` as the write segment, sealing the previous one
 * (queue_seal); with ALWAYS the directory is synced too, so the new name
 * survives power loss. */
static int queue_seg_start(export_queue *q, uint64_t num, char *err, size_t errlen)
{
    char name[32];
    queue_seg_name(name, num);
    if (q->wfd >= 0 && queue_seal(q) != 0) {
        queue_err(err, errlen, "queue: fdatasync: %s", strerror(errno));
        return -1;
    }
    int fd = queue_seg_create(q, name);
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
    /* interval: the new name (a new file, or a spare renamed) is made
     * durable by the syncer with the first data synced in it. A spare's
     * blocks exist already, so syncing its data alone need not commit the
     * rename: power loss could leave it under its old name, which is
     * deleted at start. */
    if (q->fsync_mode == QUEUE_FSYNC_INTERVAL)
        q->dir_dirty = 1;
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
    queue_put64(n->rec + QUEUE_SEG_AT, s->num);
    queue_put32(n->rec + 8, queue_crc_seal(queue_get32(n->rec + 8), n->rec));
    q->dirty = 1;
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

/* Keeps spent segment `num` of this process's own as a spare, if there is
 * room (mutex; the rename is quick, and rare: once a segment). Recovered
 * segments are not kept: they may hold GWQ1 records, which name no segment
 * and would read back as valid. */
static int queue_keep_spare(export_queue *q, uint64_t num, const char *name)
{
    char spare[32];
    int kept = 0;
    queue_spare_name(spare, num);
    pthread_mutex_lock(&q->lock);
    if (num >= q->own_from && q->n_spare < QUEUE_SPARES &&
        renameat2(q->dirfd, name, q->dirfd, spare, RENAME_NOREPLACE) == 0) {
        q->spare[q->n_spare++] = num;
        kept = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return kept;
}

void queue_unlink_segs(export_queue *q, uint64_t *gone, size_t n)
{
    char name[32];
    for (size_t i = 0; i < n; i++) {
        queue_seg_name(name, gone[i]);
        if (!queue_keep_spare(q, gone[i], name))
            unlinkat(q->dirfd, name, 0);
        if (q->rfd >= 0 && q->rfd_seg == gone[i]) { /* or it would pin the disk space */
            close(q->rfd);
            q->rfd = -1;
        }
    }
    free(gone);
}

void queue_drop_spares(export_queue *q)
{
    char spare[32];
    while (q->n_spare > 0) {
        queue_spare_name(spare, q->spare[--q->n_spare]);
        unlinkat(q->dirfd, spare, 0);
    }
}

/* The cursor to record after consuming up to (seg, off): if that segment was
 * pruned, the start of the oldest remaining one. */
void queue_cursor_pos(export_queue *q, uint64_t seg, uint64_t off, uint64_t *cseg, uint64_t *coff)
{
    int kept = queue_seg_find(q, seg) != NULL;
    *cseg = kept ? seg : q->segs[0].num;
    *coff = kept ? off : 0;
}

/* The cursor file: two 32-byte slots, little-endian: magic "GWC2", CRC-32C
 * of the rest, generation, segment, offset. An ack overwrites the slot of
 * the older generation in place, one pwrite on a file kept open; a temp file
 * renamed over the cursor at each ack cost five system calls and directory
 * updates (3 % of the disk scenario's profile, bench/README.md). A write
 * torn by a crash damages only its own slot, and the other still names an
 * older position: a restart then resends more, never less. Recovery writes
 * the file whole, by temp + rename, which also replaces a cursor in the
 * text form written before the slots ("SEG OFF\n", still read). */
#define QUEUE_CURSOR_MAGIC 0x32435747u /* "GWC2" */
#define QUEUE_CURSOR_SLOT 32

static void queue_cursor_slot(uint8_t out[QUEUE_CURSOR_SLOT], uint64_t gen, uint64_t seg, uint64_t off)
{
    queue_put32(out, QUEUE_CURSOR_MAGIC);
    queue_put64(out + 8, gen);
    queue_put64(out + 16, seg);
    queue_put64(out + 24, off);
    queue_put32(out + 4, crc32c(out + 8, QUEUE_CURSOR_SLOT - 8));
}

/* The next cursor position: a new generation, remembered with the
 * position (for the syncer), in `out`'s slot form. Returns the generation,
 * whose low bit picks the slot. */
static uint64_t queue_cursor_next(export_queue *q, uint64_t seg, uint64_t off, uint8_t out[QUEUE_CURSOR_SLOT])
{
    uint64_t gen = ++q->cursor_gen;
    q->cursor_seg = seg;
    q->cursor_off = off;
    queue_cursor_slot(out, gen, seg, off);
    return gen;
}

/* 1 with the slot's fields if it is intact, else 0. */
static int queue_cursor_slot_read(const uint8_t *p, uint64_t *gen, uint64_t *seg, uint64_t *off)
{
    if (queue_get32(p) != QUEUE_CURSOR_MAGIC || queue_get32(p + 4) != crc32c(p + 8, QUEUE_CURSOR_SLOT - 8))
        return 0;
    *gen = queue_get64(p + 8);
    *seg = queue_get64(p + 16);
    *off = queue_get64(p + 24);
    return 1;
}

/* Writes the whole cursor (temp + rename, so a crash leaves the old or the
 * new file) and keeps it open for the acks' slot writes (io_lock held, or
 * recovery). A cursor that could not be written only means a restart
 * resends. */
static void queue_cursor_create(export_queue *q, uint64_t seg, uint64_t off)
{
    uint8_t buf[2 * QUEUE_CURSOR_SLOT] = {0}, slot[QUEUE_CURSOR_SLOT];
    memcpy(buf + (queue_cursor_next(q, seg, off, slot) & 1) * QUEUE_CURSOR_SLOT, slot, sizeof(slot));
    if (q->cfd >= 0)
        close(q->cfd);
    q->cfd = -1;
    int fd = openat(q->dirfd, "cursor.tmp", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    if (queue_pwrite_all(fd, buf, sizeof(buf), 0) == 0 && (q->fsync_mode != QUEUE_FSYNC_ALWAYS || fdatasync(fd) == 0) &&
        renameat(q->dirfd, "cursor.tmp", q->dirfd, "cursor") == 0) {
        q->cfd = fd; /* the same file, now named cursor */
        return;
    }
    close(fd);
}

void queue_cursor_write(export_queue *q, uint64_t seg, uint64_t off)
{
    if (q->cfd < 0) {
        queue_cursor_create(q, seg, off);
        return;
    }
    uint8_t slot[QUEUE_CURSOR_SLOT];
    uint64_t gen = queue_cursor_next(q, seg, off, slot);
    if (queue_pwrite_all(q->cfd, slot, sizeof(slot), (gen & 1) * QUEUE_CURSOR_SLOT) != 0 ||
        (q->fsync_mode == QUEUE_FSYNC_ALWAYS && fdatasync(q->cfd) != 0))
        queue_cursor_create(q, seg, off); /* the next write starts a whole file again */
}

/* The cursor at open: the intact slot of the later generation, or the text
 * form; (0, 0), "replay everything", when there is none. */
static void queue_cursor_read(export_queue *q, uint64_t *seg, uint64_t *off)
{
    uint8_t buf[2 * QUEUE_CURSOR_SLOT + 1];
    *seg = *off = 0;
    int fd = openat(q->dirfd, "cursor", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n; /* one call: a regular file this small is read whole */
    do
        n = pread(fd, buf, sizeof(buf) - 1, 0);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n == 2 * QUEUE_CURSOR_SLOT) {
        uint64_t g[2], s[2], o[2];
        int ok0 = queue_cursor_slot_read(buf, &g[0], &s[0], &o[0]);
        int ok1 = queue_cursor_slot_read(buf + QUEUE_CURSOR_SLOT, &g[1], &s[1], &o[1]);
        if (!ok0 && !ok1)
            return;
        int i = ok0 && ok1 ? g[1] > g[0] : ok1;
        *seg = s[i];
        *off = o[i];
        q->cursor_gen = g[i];
        return;
    }
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *end;
    unsigned long long sg = strtoull((char *)buf, &end, 10);
    if (*end != ' ')
        return;
    unsigned long long of = strtoull(end + 1, &end, 10);
    if (*end == '\n') {
        *seg = sg;
        *off = of;
    }
}

/* ---- recovery ---- */

/* Whether the bytes at `off`, after which no valid record of segment `seg`
 * follows, are a damaged record of this segment (a torn write, or damage):
 * a whole header that names the segment, a GWQ1 header, or less than a
 * header left. Otherwise they are the remains of what a reused file held
 * before, cut mid-record by the new records. */
static int queue_ours_at(int fd, uint64_t seg, uint64_t off, uint64_t size)
{
    uint8_t h[QUEUE_HDR];
    if (size - off < QUEUE_HDR || queue_pread_all(fd, h, QUEUE_HDR, off) != 0)
        return 1;
    uint32_t m = queue_get32(h);
    return m == QUEUE_MAGIC_V1 || (m == QUEUE_MAGIC && queue_get64(h + QUEUE_SEG_AT) == seg);
}

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
        queue_rec_status rs = queue_read_record(fd, s->num, off, size, &n);
        if (rs == QUEUE_REC_OK) {
            s->spilled_entries++;
            s->spilled_bytes += n->len;
            off = valid_end = n->end;
            free(n);
            continue;
        }
        if (rs == QUEUE_REC_STALE) /* a reused file: its data ends here, whole */
            break;
        int ioerr = rs == QUEUE_REC_IOERR;
        uint64_t next = ioerr ? size : queue_resync(fd, s->num, off, size, &ioerr);
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
        if (!queue_ours_at(fd, s->num, off, size))
            break; /* what a reused file held before, cut mid-record: not damage */
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
        if (queue_name_parse(de->d_name, ".free", &num) == 0) { /* a spare left by a crash */
            unlinkat(q->dirfd, de->d_name, 0);
            continue;
        }
        if (queue_name_parse(de->d_name, ".seg", &num) != 0)
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
    q->own_from = next;
    if (rc != 0 || queue_seg_start(q, next, err, errlen) != 0)
        return -1;
    q->recovered = q->entries;
    uint64_t *gone;
    size_t ngone = queue_prune(q, &gone);
    queue_cursor_pos(q, cseg, coff, &q->load_seg, &q->load_off);
    queue_cursor_create(q, q->load_seg, q->load_off);
    queue_unlink_segs(q, gone, ngone);
    return 0;
}

/* ---- the INTERVAL syncer ---- */

/* After a segment's data is synced: the directory too, if a segment was
 * named since it last was (lock held; dropped around the fsync). Data
 * synced under a name that could still vanish would not be durable. 0, or
 * the fsync's errno. */
static int queue_sync_dir(export_queue *q)
{
    if (!q->dir_dirty)
        return 0;
    q->dir_dirty = 0;
    pthread_mutex_unlock(&q->lock);
    int e = fsync(q->dirfd) == 0 ? 0 : errno;
    pthread_mutex_lock(&q->lock);
    if (e != 0)
        q->dir_dirty = 1;
    else
        q->dir_syncs++;
    return e;
}

/* fdatasync of segment `num`, by name: a segment delivered and renamed (a
 * spare, or reused) since the syncer looked needs no sync, and then the name
 * is gone. 0 or an errno. */
static int queue_sync_seg(export_queue *q, uint64_t num)
{
    char name[32];
    queue_seg_name(name, num);
    int fd = openat(q->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : errno;
    int e = fdatasync(fd) == 0 ? 0 : errno;
    close(fd);
    return e;
}

/* Records before the cursor were delivered: if the machine loses power, a
 * restart begins at the cursor as last synced, and what a segment held
 * before it is never read. So the cursor is synced first, then the segments
 * with records after it, each up to its end as the round finds it (what
 * comes after waits for the next round). In a steady state, with the
 * backends keeping up, the segments written and delivered between two
 * rounds are never synced: the disk sees the records in flight at each
 * round, not every record. Segments are visited in order, the table looked
 * up again after each sync, as acks may prune it meanwhile. */
int queue_sync_undelivered(export_queue *q)
{
    q->passes++;
    pthread_mutex_unlock(&q->lock);
    pthread_mutex_lock(&q->io_lock);
    uint64_t next = q->cursor_seg, next_off = q->cursor_off;
    int e = q->cfd >= 0 && fdatasync(q->cfd) != 0 ? errno : 0;
    pthread_mutex_unlock(&q->io_lock);
    pthread_mutex_lock(&q->lock);
    int synced = 0;
    while (e == 0) {
        queue_seg *s = NULL;
        for (size_t i = 0; i < q->nsegs && s == NULL; i++) {
            queue_seg *c = &q->segs[i];
            if (c->num >= next && c->synced < c->end && (c->num > next || next_off < c->end))
                s = c;
        }
        if (s == NULL)
            break;
        uint64_t num = s->num, upto = s->end;
        next = num + 1;
        next_off = 0;
        pthread_mutex_unlock(&q->lock);
        e = queue_sync_seg(q, num);
        pthread_mutex_lock(&q->lock);
        if (e == 0 && (s = queue_seg_find(q, num)) != NULL && s->synced < upto)
            s->synced = upto;
        if (e == 0) {
            q->syncs++;
            synced = 1;
        }
    }
    if (e == 0 && synced)
        e = queue_sync_dir(q);
    if (e != 0)
        q->sync_errno = e;
    return e;
}

static void *queue_syncer(void *arg)
{
    export_queue *q = arg;
    pthread_mutex_lock(&q->lock);
    while (!q->stopping) {
        struct timespec until = clock_deadline(q->fsync_interval_ms);
        while (!q->stopping && pthread_cond_timedwait(&q->sync_cv, &q->lock, &until) == 0)
            ;
        if (!q->stopping)
            queue_sync_undelivered(q);
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
