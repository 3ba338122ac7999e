/* queue_internal: what queue.c (the list, the API) and queue_disk.c (segment
 * files, the cursor, recovery, the fsync=interval syncer) share: the record
 * constants, the node, segment and queue types, and the functions each file
 * calls in the other. Only those two files include it; everyone else uses
 * queue.h. Locking is described at the top of queue.c. */
#ifndef GW_QUEUE_INTERNAL_H
#define GW_QUEUE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue.h"

#define QUEUE_MAGIC 0x32515747u    /* "GWQ2" as little-endian bytes: the records written */
#define QUEUE_MAGIC_V1 0x31515747u /* "GWQ1": read too, from queues written before segments were reused */
#define QUEUE_HDR 26               /* magic, length, crc, signal, tenant length, items, segment number */
#define QUEUE_HDR_V1 18            /* GWQ1: the same without the segment number */
#define QUEUE_CRC_FROM 12          /* the CRC starts at the signal byte (queue_crc_body) */
#define QUEUE_SEG_AT 18            /* the segment number, checksummed last (queue_crc_seal) */
/* Spent segments kept (renamed NUM.free) for the next write segments: a
 * file whose blocks and pages exist already is cheaper to write than a new
 * one, whose every page the filesystem must allocate (bench/README.md). */
#define QUEUE_SPARES 2

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
    uint64_t synced;                        /* interval: bytes the syncer has fdatasync'ed */
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
    /* Waits for a batch to fill (queue_fill): pushes are counted, and a
     * push signals a waiting filler only once the counts reach its marks;
     * plain waiters are signalled on every push. */
    uint64_t pushed_items, pushed_bytes, fill_items_at, fill_bytes_at;
    size_t fill_waiting, plain_waiting;
    uint64_t recovered, corrupt, torn;
    size_t tenant_cap;           /* 0: no per-tenant cap */
    struct queue_tenant *tenants; /* bytes reserved + queued per tenant admitted here */
    size_t ntenants, tenantcap;

    /* disk mode (dirfd >= 0) */
    int dirfd, wfd, rfd;
    uint64_t rfd_seg; /* which segment rfd reads */
    queue_fsync fsync_mode;
    uint64_t fsync_interval_ms;
    int dirty;          /* written since the last fdatasync (always, or interval without the syncer) */
    uint64_t syncs;     /* segment fdatasyncs done by the syncer */
    uint64_t passes;    /* the syncer's rounds */
    int dir_dirty;      /* interval: a segment name the directory has not been synced with */
    uint64_t dir_syncs; /* the syncer's fsyncs of the directory */
    int sync_errno;     /* the syncer's last failure, reported by the next push */
    int syncer_on, stopping;
    pthread_t syncer;
    pthread_cond_t sync_cv;
    size_t segment_bytes;
    uint64_t own_from;               /* the first segment this process started; older ones are recovered */
    uint64_t spare[QUEUE_SPARES];    /* spent segments renamed NUM.free, to reuse (mutex) */
    size_t n_spare;
    queue_seg *segs; /* oldest first; the last one is being written */
    size_t nsegs, segcap;
    size_t spilled;
    uint64_t load_seg, load_off; /* the oldest spilled record (owned by the peeking consumer) */
    /* io_lock: the read fd, the cursor file and segment unlinks, which a
     * peek (reading back) and acks (from any consumer thread) share. */
    pthread_mutex_t io_lock;
    uint64_t cursor_seq, cursor_written; /* order of cursor positions (lock / io_lock) */
    int cfd;             /* the cursor file, open for its slots' writes (io_lock), or -1 */
    uint64_t cursor_gen; /* generation of the slot written last (io_lock) */
    uint64_t cursor_seg, cursor_off; /* the position it names (io_lock) */
};

typedef struct queue_tenant {
    char *name;
    size_t used;
} queue_tenant;

/* STALE: a whole, valid record of another segment: what a reused file held
 * before, past the end of what was written to it since. */
typedef enum { QUEUE_REC_OK, QUEUE_REC_TORN, QUEUE_REC_BAD, QUEUE_REC_STALE, QUEUE_REC_IOERR } queue_rec_status;

/* ---- queue.c ---- */

/* Room for one more element in a growing array of n (doubling from
 * `first`); -1 without memory (the array is unchanged). */
int queue_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t first);
/* printf into err (if any). */
void queue_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint32_t queue_get32(const uint8_t *p);
void queue_put32(uint8_t *p, uint32_t v);
/* A node with room for a tenant of tlen bytes and a payload of len; NULL
 * without memory. The caller owns it (free). */
queue_node *queue_node_new(size_t tlen, size_t len);
/* The length of n's on-disk record. */
size_t queue_rec_len(const queue_node *n);

/* ---- queue_disk.c (lock held unless said) ---- */

void queue_seg_name(char out[32], uint64_t num);
/* A record's CRC is CRC-32C of bytes QUEUE_CRC_FROM..QUEUE_SEG_AT of its
 * header, its tenant and payload, then the segment number: the body part
 * is computed before the push takes the lock, the number added once the
 * record's segment is chosen. */
uint32_t queue_crc_body(const uint8_t *rec, size_t tlen, size_t len);
uint32_t queue_crc_seal(uint32_t body, const uint8_t *rec);
/* Reads and verifies the record at `off` of segment `seg` whose valid data
 * ends at `size` (*out: a new node the caller owns, on QUEUE_REC_OK; a
 * GWQ1 record is returned in the current layout). */
queue_rec_status queue_read_record(int fd, uint64_t seg, uint64_t off, uint64_t size, queue_node **out);
/* The offset of the next valid record of segment `seg` after damage at
 * `off`, or `size`. */
uint64_t queue_resync(int fd, uint64_t seg, uint64_t off, uint64_t size, int *ioerr);
queue_seg *queue_seg_find(export_queue *q, uint64_t num);
int queue_sync(export_queue *q);
/* Appends n's record to the write segment; on failure it never half-exists. */
int queue_append(export_queue *q, queue_node *n, char *err, size_t errlen);
/* Drops fully acknowledged segments from the table; their numbers in
 * *gone (malloc'ed, the caller frees), to unlink outside the lock. */
size_t queue_prune(export_queue *q, uint64_t **gone);
/* Unlinks those segments, or keeps up to QUEUE_SPARES of this process's
 * own as spares (io_lock, not the mutex, which it takes briefly). */
void queue_unlink_segs(export_queue *q, uint64_t *gone, size_t n);
void queue_cursor_pos(export_queue *q, uint64_t seg, uint64_t off, uint64_t *cseg, uint64_t *coff);
void queue_cursor_write(export_queue *q, uint64_t seg, uint64_t off);
/* Opens cfg->dir/<name> and replays what it holds (at open, no lock). */
int queue_recover(export_queue *q, const queue_config *cfg, const char *name, char *err, size_t errlen);
/* Removes the spare files (at close). */
void queue_drop_spares(export_queue *q);
/* Syncs the cursor, then each segment holding records not delivered yet
 * that has unsynced bytes (lock held; dropped around the syncs). 0, or an
 * errno (also left in sync_errno for the next push). */
int queue_sync_undelivered(export_queue *q);
/* The fsync=interval thread of a disk queue (no-ops otherwise). */
int queue_syncer_start(export_queue *q);
void queue_syncer_stop(export_queue *q);

#endif
