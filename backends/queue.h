/* queue: one backend's export queue of encoded OTLP requests.
 *
 * An entry is one Export{Trace,Metrics,Logs}ServiceRequest in protobuf (as
 * the pipeline encoded it for this backend) with its signal, tenant and item
 * count. Producers are the worker threads (queue_reserve + queue_push, under
 * a mutex); consumers are the backend's exporter threads: one at a time
 * (the caller serializes peek and claim) peeks a batch and claims it, and
 * whichever thread sent it acks it once delivered or given up, or releases
 * it to be peeked again. Claimed entries are passed over by later peeks, so
 * several batches can be in flight and acks may come in any order.
 *
 * Memory mode (dir == NULL): bounded by max_bytes; lost if the process dies.
 * Disk mode: every push is appended to the current segment file in
 * `<dir>/<name>` (one subdirectory per queue, so backends can share a
 * queue.dir; created 0750, flock'ed against a second process) before
 * queue_push returns -- so an acknowledged request survives the
 * process being killed -- and with fsync=always it is also fdatasync'ed (it
 * then survives power loss too); fsync=interval has a thread of the
 * queue's own fdatasync, every fsync_interval_ms, the cursor and what was
 * written and not yet delivered (acked), with the directory after a new
 * segment, off the producers' path (a failure fails the next push): records
 * delivered within an interval of their write never cost a sync. Record layout
 * (little-endian): u32 magic "GWQ2", u32 payload length, u32 CRC-32C, u8
 * signal, u8 tenant length, u32 items, u64 segment number, tenant bytes,
 * payload; the CRC covers everything after it, the segment number last.
 * Records of queues written before the number ("GWQ1": the same without
 * it) are read too. Segments roll at segment_bytes; once fully
 * acknowledged they are deleted, except that up to two of those this
 * process wrote are kept (NUM.free) and become the next write segments,
 * overwritten from the start: their old records name another segment, so
 * replay stops at them. The consumer's position is kept in a small cursor file
 * naming the end of the longest acknowledged prefix (written on ack, in one
 * of two checksummed slots in turn, so a torn write leaves the older one; a
 * restart resends what was in flight, and what was acked out of order
 * behind it: at-least-once, never less).
 * queue_open replays what is left: a record failing its magic, length or
 * checksum is skipped and replay resumes at the next valid record (magic,
 * length and CRC all hold), so damage costs the damaged record, counted in
 * `corrupt_records`; damage with no valid record after it is a torn tail
 * (a crash mid-write), counted in `torn_records` and cut off the last
 * segment. */
#ifndef GW_QUEUE_H
#define GW_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "otlp.h"

/* INTERVAL is 0 so that a zeroed config gets the documented default. */
typedef enum { QUEUE_FSYNC_INTERVAL, QUEUE_FSYNC_NEVER, QUEUE_FSYNC_ALWAYS } queue_fsync;

typedef struct queue_config {
    size_t max_bytes;            /* cap on queued payload bytes (memory or disk) */
    const char *dir;             /* NULL: memory only */
    queue_fsync fsync;           /* disk mode; default INTERVAL */
    uint32_t fsync_interval_ms;  /* default 1000 */
    size_t segment_bytes;        /* default 64 MiB */
    double tenant_share;         /* most of max_bytes one tenant may hold (reserved
                                  * + queued), 0 < share <= 1; 0 or 1: no cap */
} queue_config;

struct queue_node;

typedef struct queue_entry {
    otlp_signal signal;
    uint32_t items;
    const char *tenant;   /* "" when none */
    const uint8_t *data;  /* valid until queue_ack of this entry */
    size_t len;
    struct queue_node *node; /* the queue's handle for claim, release and ack */
} queue_entry;

typedef struct queue_stats {
    size_t entries, bytes;      /* queued now */
    uint64_t recovered_entries; /* replayed at open */
    uint64_t corrupt_records;   /* damaged records skipped (at open, or read back later) */
    uint64_t torn_records;      /* torn tails found at open (cut off the last segment) */
    uint64_t interval_syncs;    /* segment fdatasyncs of the fsync=interval syncer thread */
    uint64_t interval_passes;   /* its rounds (one each fsync_interval_ms) */
    uint64_t interval_dir_syncs; /* its fsyncs of the directory, after new segment names */
} queue_stats;

typedef struct export_queue export_queue;

/* Opens (and in disk mode recovers) the queue. NULL with err on failure. */
export_queue *queue_open(const queue_config *cfg, const char *name, char *err, size_t errlen);
void queue_close(export_queue *q);

/* Admission: reserve room for `bytes` before pushing, so a request bound for
 * several backends is admitted to all or none. 0, or -1 when full (the
 * queue, or the tenant's share of it: tenant_share * max_bytes counts the
 * tenant's reserved and queued bytes), or -2 when `bytes` is more than
 * max_bytes (it will never fit). tenant NULL is "". Bytes recovered from
 * disk at open count against no tenant's share. */
int queue_reserve(export_queue *q, const char *tenant, size_t bytes);
void queue_unreserve(export_queue *q, const char *tenant, size_t bytes);
/* Append (consumes a reservation of len bytes). Copies data. 0, or -1 on an
 * I/O error or a tenant longer than 255 bytes (err set; the reservation is
 * released). Wakes the consumer. */
int queue_push(export_queue *q, otlp_signal sig, const char *tenant, uint32_t items, const uint8_t *data, size_t len,
               char *err, size_t errlen);

/* Consumer: wait up to timeout_ms until at least min_entries unclaimed
 * entries are queued (min_entries 1 = "anything"), then return the oldest
 * unclaimed ones (at most max_entries) that share the first entry's signal
 * and tenant, in order. The entries stay valid while unacked (a peek by
 * another thread does not invalidate them).
 * *oldest_age_ms is how long the first has been queued (for flush timeouts).
 * Returns the count (possibly fewer than min_entries on timeout or after
 * queue_wake; 0 when empty). */
size_t queue_peek(export_queue *q, queue_entry *out, size_t max_entries, size_t min_entries, uint32_t timeout_ms,
                  uint64_t *oldest_age_ms);
/* The same, for a consumer that serves tenants in turn. Memory mode: the
 * batch is the oldest entry whose tenant `skip` does not refuse (skip NULL:
 * none refused) -- preferring a tenant other than `avoid` when one has an
 * entry -- with the later entries of its signal and tenant, in order, passing
 * over other tenants' entries. min_entries counts that batch's entries
 * (the wait is for the batch to fill, not for the queue). Disk mode reads
 * strictly in order (the batch is the oldest unclaimed entry and those right
 * after it, stopping at a claimed one): skip and avoid are ignored and this
 * is queue_peek. */
/* With `fill` (a consumer filling a batch), the wait also lasts until at
 * least fill->items items or fill->bytes bytes have been pushed beyond the
 * counts fill->pushed_* (or the timeout, or queue_wake): pushes that cannot
 * fill the batch do not wake the consumer, which would only look and wait
 * again. The peek then sets fill->pushed_* to the counts as it looked, so
 * the next wait starts from what this peek saw: pushes that land between two
 * peeks count towards the fill (zero items and bytes: no wait for a fill). */
typedef struct queue_fill {
    uint64_t items, bytes;               /* in: still wanted */
    uint64_t pushed_items, pushed_bytes; /* in: counted from; out: as the peek looked */
} queue_fill;
size_t queue_peek_fair(export_queue *q, queue_entry *out, size_t max_entries, size_t min_entries, uint32_t timeout_ms,
                       uint64_t *oldest_age_ms, int (*skip)(void *ud, const char *tenant), void *ud,
                       const char *avoid, queue_fill *fill);
/* Mark n peeked entries as in flight: later peeks pass over them. */
void queue_claim(export_queue *q, const queue_entry *e, size_t n);
/* Give claimed entries back (not sent: shutdown, a retry parked): they are
 * peeked again, in their place. */
void queue_release(export_queue *q, const queue_entry *e, size_t n);
/* Remove n peeked entries (delivered or dropped), claimed or not, in any
 * order and from any thread; each entry once (memory mode frees it). Disk mode: the cursor moves only past the
 * longest acked prefix; entries acked behind an unacked one stay on disk
 * (and in memory, unclaimable) until it is acked. */
void queue_ack(export_queue *q, const queue_entry *e, size_t n);
/* Make a waiting queue_peek return now (shutdown). */
void queue_wake(export_queue *q);
void queue_get_stats(export_queue *q, queue_stats *out);

#endif
