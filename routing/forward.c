/* forward: sends spans to the cluster member that owns them; see forward.h.
 *
 * Ownership: the forwarder owns its peers (slots that are reused after a
 * removal, named by handle = generation << 16 | slot, so a stale handle is
 * recognised), a peer owns its queue entries, and a call owns its batch
 * (the entries it carries, until they are delivered or handed back).
 *
 * Locking: one mutex guards the slots, the queues and the list of finished
 * calls; the forward thread moves entries out of a queue under it and does
 * everything else (starting calls, health, callbacks) without it, so
 * forward_return_fn and forward_health_fn may call back into the forwarder.
 *
 * Each peer has an h2_client (backends/h2_client.h): one HTTP/2 connection,
 * h2c or TLS with ALPN h2, that every call to the peer shares as a stream.
 * A call's end is reported on the client's I/O thread, which only appends
 * it to `done` and wakes the forward thread; the outcome is handled there. */
#include "forward.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "exporter.h"
#include "grpc_frame.h"
#include "h2_client.h"
#include "log.h"
#include "metrics.h"

#define FWD_SLOT_BITS 16
#define FWD_MAX_SLOTS (1 << FWD_SLOT_BITS)
#define FWD_MAX_CALLS 8u        /* export calls in flight per peer */
#define FWD_BACKOFF_MS 50u      /* first retry delay, doubled each attempt */
#define FWD_WAIT_MS 100u        /* longest poll, so stop and new work are seen */
#define FWD_BATCH_SCAN 4096u    /* queue entries looked at to fill one batch */
#define FWD_HEADER_MAX 512      /* one header line */

typedef enum { RET_UNREACHABLE, RET_REFUSED, RET_REMOVED, RET_STOPPED, RET_COUNT } fwd_reason;
static const char *const fwd_reasons[RET_COUNT] = {"unreachable", "refused", "removed", "stopped"};

/* One forward_push: the bytes, then tenant and pipeline NUL-terminated. */
typedef struct fwd_entry {
    struct fwd_entry *next;
    const char *tenant, *pipeline; /* point into data */
    size_t len, spans;
    uint64_t queued_ms;
    uint8_t data[];
} fwd_entry;

/* Entries of one (tenant, pipeline) sent as one Export call. */
typedef struct fwd_batch {
    struct fwd_batch *next; /* in the peer's retry list */
    fwd_entry *entries;
    size_t bytes, spans;
    uint64_t first_ms, next_ms; /* first attempt; when to try again */
    unsigned attempt;
    buf body; /* framed message, built once */
} fwd_batch;

typedef struct fwd_peer fwd_peer;

typedef struct fwd_call {
    struct fwd_call *prev, *next; /* in forward.calls */
    struct fwd_call *done_next;   /* in forward.done once finished */
    struct forward *f;
    fwd_peer *p;
    fwd_batch *b; /* NULL: a health check */
    h2_request req;
    struct iovec body; /* req's one piece */
    struct curl_slist *headers;
    exporter_reply reply;
    uint64_t start_ns;
    int rc, status; /* h2_client's outcome */
    char error[256];
} fwd_call;

struct fwd_peer {
    int used;    /* the slot holds a peer (until its removal is finished) */
    int removed; /* forward_peer_remove was called */
    unsigned gen, slot;
    char *addr, *url_export, *url_health;
    h2_client *h2;
    /* under f->mu */
    fwd_entry *head, *tail;
    size_t reserved, queued, inflight; /* bytes; their sum is bounded by queue_bytes */
    /* forward thread only */
    fwd_batch *retry;
    unsigned calls;
    fwd_call *health;
    uint64_t next_health_ms;
    unsigned failures;
    forward_peer_state state;
    metric_series *m_spans, *m_bytes, *m_queue, *m_up, *m_duration;
};

/* What the thread hands back or reports once the mutex is released. */
typedef struct fwd_out {
    fwd_entry *returned[RET_COUNT];
    fwd_peer *returned_peer[RET_COUNT]; /* for the metric label; NULL: unknown */
} fwd_out;

struct forward {
    forward_settings set; /* strings owned */
    forward_return_fn ret;
    forward_health_fn health;
    void *data;
    pthread_mutex_t mu;
    pthread_cond_t idle; /* signalled when work finishes */
    pthread_cond_t wake; /* the thread waits on it for work: kicked or done */
    int kicked;          /* under mu: new work, a removal or the stop */
    fwd_call *done;      /* under mu: finished calls, newest first */
    fwd_peer *slots[FWD_MAX_SLOTS];
    size_t nslots;
    fwd_entry *orphans; /* pushed to a handle whose peer is gone: handed back as removed */
    fwd_call *calls; /* in flight (thread only) */
    pthread_t thread;
    atomic_int stopping;
};

static struct {
    metric_family *spans, *bytes, *failures, *queue, *returned, *up, *duration;
} fm;
static pthread_once_t fm_once = PTHREAD_ONCE_INIT;

static void fwd_metrics_init(void)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    fm.spans = metrics_family("otlp_gateway_cluster_forwarded_spans_total", METRIC_COUNTER,
                              "Spans delivered to the member that owns their trace.");
    fm.bytes = metrics_family("otlp_gateway_cluster_forwarded_bytes_total", METRIC_COUNTER,
                              "Request bytes delivered to the member that owns their traces.");
    fm.failures = metrics_family("otlp_gateway_cluster_forward_failures_total", METRIC_COUNTER,
                                 "Forwarding calls that failed, by reason (retried or handed back).");
    fm.queue = metrics_family("otlp_gateway_cluster_forward_queue_bytes", METRIC_GAUGE,
                              "Bytes queued or in flight for a peer.");
    fm.returned = metrics_family("otlp_gateway_cluster_returned_spans_total", METRIC_COUNTER,
                                 "Spans handed back undelivered, by reason.");
    fm.up = metrics_family("otlp_gateway_cluster_peer_up", METRIC_GAUGE, "1 when the peer's health check says up.");
    fm.duration = metrics_histogram_family("otlp_gateway_cluster_forward_duration_seconds",
                                           "Time of one forwarding Export call.", bounds,
                                           sizeof(bounds) / sizeof(bounds[0]));
}

/* A series of `fam` for peer `addr`, with `reason` when not NULL. */
static metric_series *fwd_series(metric_family *fam, const char *addr, const char *reason)
{
    char labels[FWD_HEADER_MAX];
    if (reason != NULL)
        snprintf(labels, sizeof(labels), "peer=\"%s\",reason=\"%s\"", addr, reason);
    else
        snprintf(labels, sizeof(labels), "peer=\"%s\"", addr);
    return metrics_series(fam, labels);
}

/* ---- slots (under f->mu) ---- */

static fwd_peer *fwd_peer_get(forward *f, int h)
{
    if (h < 0)
        return NULL;
    unsigned slot = (unsigned)h & (FWD_MAX_SLOTS - 1), gen = (unsigned)h >> FWD_SLOT_BITS;
    fwd_peer *p = slot < f->nslots ? f->slots[slot] : NULL;
    return p != NULL && p->used && !p->removed && p->gen == gen ? p : NULL;
}

static void fwd_queue_gauge(fwd_peer *p)
{
    metrics_set(p->m_queue, (int64_t)(p->queued + p->inflight));
}

static void fwd_list_append(fwd_entry **list, fwd_entry *chain)
{
    while (*list != NULL)
        list = &(*list)->next;
    *list = chain;
}

static void fwd_free_entries(fwd_entry *e)
{
    while (e != NULL) {
        fwd_entry *next = e->next;
        free(e);
        e = next;
    }
}

/* ---- handing back (forward thread, without the mutex) ---- */

static void fwd_return(forward *f, const fwd_peer *p, fwd_reason why, fwd_entry *e)
{
    while (e != NULL) {
        fwd_entry *next = e->next;
        if (p != NULL)
            metrics_add(fwd_series(fm.returned, p->addr, fwd_reasons[why]), e->spans);
        f->ret(f->data, e->tenant, e->pipeline, e->data, e->len, e->spans);
        free(e);
        e = next;
    }
}

/* A batch leaves the peer's accounting (under the mutex). */
static void fwd_batch_done_locked(fwd_peer *p, fwd_batch *b)
{
    p->inflight -= b->bytes;
    fwd_queue_gauge(p);
}

static void fwd_batch_free(fwd_batch *b)
{
    fwd_free_entries(b->entries);
    buf_free(&b->body);
    free(b);
}

static void fwd_batch_return(forward *f, fwd_peer *p, fwd_batch *b, fwd_reason why)
{
    pthread_mutex_lock(&f->mu);
    fwd_batch_done_locked(p, b);
    pthread_mutex_unlock(&f->mu);
    fwd_return(f, p, why, b->entries);
    b->entries = NULL;
    fwd_batch_free(b);
    pthread_cond_broadcast(&f->idle);
}

/* ---- calls ---- */

static int fwd_header(struct curl_slist **l, const char *name, const char *value)
{
    char line[FWD_HEADER_MAX];
    /* "Name;" is how curl sends a header with an empty value. */
    int n = value[0] != '\0' ? snprintf(line, sizeof(line), "%s: %s", name, value)
                             : snprintf(line, sizeof(line), "%s;", name);
    if (n < 0 || (size_t)n >= sizeof(line))
        return -1;
    for (const char *c = value; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return -1;
    struct curl_slist *nl = curl_slist_append(*l, line);
    if (nl == NULL)
        return -1;
    *l = nl;
    return 0;
}

/* h2_done_fn: on the peer's client thread; the forward thread handles it. */
static void fwd_call_done(void *ud, int rc, int status, const char *err)
{
    fwd_call *c = ud;
    forward *f = c->f;
    c->rc = rc;
    c->status = status;
    snprintf(c->error, sizeof(c->error), "%s", rc == H2_OK ? "" : err);
    pthread_mutex_lock(&f->mu);
    c->done_next = f->done;
    f->done = c;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
}

/* Start a call: an Export of batch b, or a health check when b is NULL.
 * On failure nothing is started and the batch stays the caller's. */
static fwd_call *fwd_call_start(forward *f, fwd_peer *p, fwd_batch *b)
{
    static const uint8_t empty[GRPC_FRAME_PREFIX] = {0};
    fwd_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->f = f;
    c->p = p;
    c->b = b;
    c->reply.grpc_status = -1;
    c->start_ns = clock_now_ns();
    const char *secret = f->set.secret;
    if (fwd_header(&c->headers, "Content-Type", "application/grpc") != 0 ||
        fwd_header(&c->headers, "TE", "trailers") != 0 ||
        fwd_header(&c->headers, FORWARD_HDR_PEER, f->set.self_id) != 0 ||
        (b != NULL && (fwd_header(&c->headers, FORWARD_HDR_TENANT, b->entries->tenant) != 0 ||
                       fwd_header(&c->headers, FORWARD_HDR_PIPELINE, b->entries->pipeline) != 0)))
        goto fail;
    if (secret != NULL) {
        char bearer[FWD_HEADER_MAX];
        snprintf(bearer, sizeof(bearer), "Bearer %s", secret);
        if (fwd_header(&c->headers, "Authorization", bearer) != 0)
            goto fail;
    }
    c->body = (struct iovec){.iov_base = b != NULL ? (void *)b->body.data : (void *)empty,
                             .iov_len = b != NULL ? b->body.len : sizeof(empty)};
    c->req = (h2_request){.url = b != NULL ? p->url_export : p->url_health,
                          .headers = c->headers,
                          .body = &c->body,
                          .n_body = 1,
                          .timeout_ms = f->set.timeout_ms,
                          .on_header = exporter_reply_header,
                          .on_data = exporter_reply_body,
                          .ud = &c->reply};
    if (h2_client_start(p->h2, &c->req, fwd_call_done, c, c->error, sizeof(c->error)) != H2_OK)
        goto fail;
    c->next = f->calls;
    if (f->calls != NULL)
        f->calls->prev = c;
    f->calls = c;
    if (b != NULL) {
        p->calls++;
    } else {
        p->health = c;
    }
    return c;
fail:
    curl_slist_free_all(c->headers);
    free(c);
    return NULL;
}

static void fwd_call_free(forward *f, fwd_call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        f->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    curl_slist_free_all(c->headers);
    buf_free(&c->reply.body);
    if (c->b != NULL) {
        c->p->calls--;
    } else {
        c->p->health = NULL;
    }
    free(c);
}

/* ---- health ---- */

static void fwd_set_state(forward *f, fwd_peer *p, forward_peer_state st, int h)
{
    if (p->state == st)
        return;
    log_info("cluster peer state", "peer=%s state=%s", p->addr,
             st == FORWARD_PEER_UP ? "up" : st == FORWARD_PEER_DRAINING ? "draining" : "down");
    p->state = st;
    metrics_set(p->m_up, st == FORWARD_PEER_UP);
    if (f->health != NULL)
        f->health(f->data, h, st);
}

static int fwd_handle(const fwd_peer *p)
{
    return (int)(p->gen << FWD_SLOT_BITS | p->slot);
}

static void fwd_health_done(forward *f, fwd_call *c, int h)
{
    fwd_peer *p = c->p;
    int ok = c->rc == H2_OK && c->status == 200;
    if (ok && c->reply.grpc_status == 0) {
        p->failures = 0;
        fwd_set_state(f, p, FORWARD_PEER_UP, h);
    } else if (ok && c->reply.grpc_status == 14 && strcmp(c->reply.grpc_message, FORWARD_DRAINING) == 0) {
        p->failures = 0;
        fwd_set_state(f, p, FORWARD_PEER_DRAINING, h);
    } else {
        log_debug("cluster health check failed", "peer=%s error=\"%s\" http=%d grpc_status=%d", p->addr, c->error,
                  c->status, c->reply.grpc_status);
        if (++p->failures >= f->set.health_failures)
            fwd_set_state(f, p, FORWARD_PEER_DOWN, h);
    }
}

/* ---- export outcomes ---- */

/* Classify a finished Export call: 0 delivered, 1 retry, -1 refused; sets
 * the failure reason for the metric. */
static int fwd_classify(fwd_call *c, const char **reason)
{
    int http = c->status;
    if (c->rc != H2_OK || http == 0) {
        *reason = strncmp(c->error, "timed out", 9) == 0 ? "timeout" : "transport";
        return 1;
    }
    if (http != 200) {
        *reason = "http";
        return http == 429 || http == 502 || http == 503 || http == 504 ? 1 : -1;
    }
    switch (c->reply.grpc_status) {
    case 0:
        return 0;
    case 4: /* DEADLINE_EXCEEDED */
        *reason = "timeout";
        return 1;
    case 8:
        *reason = "resource_exhausted";
        return 1;
    case 14:
        *reason = "unavailable";
        return 1;
    case 16:
        *reason = "unauthenticated";
        return -1;
    case -1:
        *reason = "no_grpc_status";
        return -1;
    default:
        *reason = "refused";
        return -1;
    }
}

static void fwd_export_done(forward *f, fwd_call *c, uint64_t now)
{
    fwd_peer *p = c->p;
    fwd_batch *b = c->b;
    const char *reason = NULL;
    int outcome = fwd_classify(c, &reason);
    metrics_observe(p->m_duration, (double)(clock_now_ns() - c->start_ns) / 1e9);
    if (outcome == 0) {
        metrics_add(p->m_spans, b->spans);
        metrics_add(p->m_bytes, b->bytes);
        pthread_mutex_lock(&f->mu);
        fwd_batch_done_locked(p, b);
        pthread_mutex_unlock(&f->mu);
        fwd_batch_free(b);
        pthread_cond_broadcast(&f->idle);
        return;
    }
    metrics_add(fwd_series(fm.failures, p->addr, reason), 1);
    log_debug("cluster forward failed", "peer=%s reason=%s error=\"%s\" grpc_status=%d attempt=%u", p->addr, reason,
              c->error, c->reply.grpc_status, b->attempt);
    uint64_t give_up = b->first_ms + f->set.give_up_ms;
    if (outcome < 0 || now >= give_up) {
        log_warn("cluster forward handed back", "peer=%s reason=%s spans=%zu grpc_status=%d", p->addr,
                 outcome < 0 ? "refused" : "unreachable", b->spans, c->reply.grpc_status);
        fwd_batch_return(f, p, b, outcome < 0 ? RET_REFUSED : RET_UNREACHABLE);
        return;
    }
    /* Backoff from 50 ms doubling; the last try lands on give_up_ms. */
    uint64_t delay = b->attempt < 20 ? (uint64_t)FWD_BACKOFF_MS << b->attempt : give_up;
    b->attempt++;
    b->next_ms = now + delay < give_up ? now + delay : give_up;
    b->next = p->retry;
    p->retry = b;
}

/* ---- the thread ---- */

/* Take the oldest entry's (tenant, pipeline) entries, up to batch_bytes,
 * out of the queue (under the mutex). */
static fwd_batch *fwd_take_batch_locked(forward *f, fwd_peer *p)
{
    fwd_batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    fwd_entry **tail = &b->entries, **pp = &p->head, *prev = NULL;
    const fwd_entry *first = p->head;
    /* Bounded scan: a long queue of interleaved keys must not cost O(n) per batch. */
    for (unsigned scanned = 0; *pp != NULL && scanned < FWD_BATCH_SCAN; scanned++) {
        fwd_entry *e = *pp;
        int same = e == first || (strcmp(e->tenant, first->tenant) == 0 && strcmp(e->pipeline, first->pipeline) == 0);
        if (same && (e == first || b->bytes + e->len <= f->set.batch_bytes)) {
            *pp = e->next;
            e->next = NULL;
            *tail = e;
            tail = &e->next;
            b->bytes += e->len;
            b->spans += e->spans;
            if (p->tail == e)
                p->tail = prev;
        } else {
            prev = e;
            pp = &e->next;
        }
    }
    p->queued -= b->bytes;
    p->inflight += b->bytes;
    return b;
}

static int fwd_batch_body(fwd_batch *b)
{
    uint8_t prefix[GRPC_FRAME_PREFIX];
    if (b->bytes > UINT32_MAX)
        return -1;
    grpc_frame_put_prefix(prefix, 0, (uint32_t)b->bytes);
    if (buf_reserve(&b->body, GRPC_FRAME_PREFIX + b->bytes) != 0 || buf_append(&b->body, prefix, sizeof(prefix)) != 0)
        return -1;
    for (const fwd_entry *e = b->entries; e != NULL; e = e->next)
        if (buf_append(&b->body, e->data, e->len) != 0)
            return -1;
    return 0;
}

/* Is the peer's queue due: its oldest entry waited flush_ms, or a batch is full? */
static int fwd_due_locked(const forward *f, const fwd_peer *p, uint64_t now, uint64_t *wake)
{
    if (p->head == NULL)
        return 0;
    uint64_t at = p->head->queued_ms + f->set.flush_ms;
    if (now >= at || p->queued >= f->set.batch_bytes)
        return 1;
    if (at < *wake)
        *wake = at;
    return 0;
}

/* The finished calls, oldest first (taken from f->done). */
static fwd_call *fwd_take_done(forward *f)
{
    pthread_mutex_lock(&f->mu);
    fwd_call *c = f->done, *out = NULL;
    f->done = NULL;
    pthread_mutex_unlock(&f->mu);
    while (c != NULL) {
        fwd_call *next = c->done_next;
        c->done_next = out;
        out = c;
        c = next;
    }
    return out;
}

static void fwd_call_finished(forward *f, fwd_call *c, uint64_t now)
{
    if (c->b == NULL)
        fwd_health_done(f, c, fwd_handle(c->p));
    else
        fwd_export_done(f, c, now); /* the batch is delivered, handed back or waiting to retry */
    fwd_call_free(f, c);
}

/* Abandon peer p's calls: its client is interrupted, so every call ends at
 * once; their batches go back with `why` (other peers' calls that end
 * meanwhile are handled as usual). The client takes no calls after this. */
static void fwd_abort_calls(forward *f, fwd_peer *p, fwd_reason why)
{
    h2_client_interrupt(p->h2);
    for (;;) {
        for (fwd_call *c = fwd_take_done(f), *next; c != NULL; c = next) {
            next = c->done_next;
            if (c->p != p) {
                fwd_call_finished(f, c, clock_now_ms());
                continue;
            }
            fwd_batch *b = c->b;
            fwd_call_free(f, c);
            if (b != NULL)
                fwd_batch_return(f, p, b, why);
        }
        if (p->calls == 0 && p->health == NULL)
            return;
        pthread_mutex_lock(&f->mu);
        if (f->done == NULL)
            pthread_cond_wait(&f->wake, &f->mu);
        pthread_mutex_unlock(&f->mu);
    }
}

/* Everything a peer holds goes back with `why`; the caller frees the slot. */
static void fwd_drain_peer(forward *f, fwd_peer *p, fwd_reason why)
{
    fwd_abort_calls(f, p, why);
    while (p->retry != NULL) {
        fwd_batch *b = p->retry;
        p->retry = b->next;
        fwd_batch_return(f, p, b, why);
    }
    pthread_mutex_lock(&f->mu);
    fwd_entry *q = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
    fwd_queue_gauge(p);
    pthread_mutex_unlock(&f->mu);
    fwd_return(f, p, why, q);
}

static void fwd_peer_free(fwd_peer *p)
{
    h2_client_free(p->h2);
    p->h2 = NULL;
    free(p->addr);
    free(p->url_export);
    free(p->url_health);
    p->addr = p->url_export = p->url_health = NULL;
}

static size_t fwd_nslots(forward *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->nslots;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Removed peers: hand back, then free the slot for reuse (generation bumped
 * so old handles stay dead). Also pushes to dead handles (orphans). */
static void fwd_reap(forward *f)
{
    pthread_mutex_lock(&f->mu);
    fwd_entry *orphans = f->orphans;
    f->orphans = NULL;
    pthread_mutex_unlock(&f->mu);
    fwd_return(f, NULL, RET_REMOVED, orphans);
    if (orphans != NULL)
        pthread_cond_broadcast(&f->idle);
    for (size_t i = 0, n = fwd_nslots(f); i < n; i++) {
        pthread_mutex_lock(&f->mu);
        fwd_peer *p = f->slots[i];
        int reap = p != NULL && p->used && p->removed;
        pthread_mutex_unlock(&f->mu);
        if (!reap)
            continue;
        fwd_drain_peer(f, p, RET_REMOVED);
        metrics_set(p->m_up, 0);
        pthread_mutex_lock(&f->mu);
        /* A push reserved before the removal may still land: it becomes an orphan. */
        p->reserved = 0;
        p->used = 0;
        p->gen = (p->gen + 1) & 0x7fff;
        fwd_peer_free(p);
        pthread_mutex_unlock(&f->mu);
        pthread_cond_broadcast(&f->idle);
    }
}

/* Start due health checks, due retries and due batches; lowers *wake to the
 * next time something becomes due. */
static void fwd_schedule(forward *f, uint64_t now, uint64_t *wake)
{
    for (size_t i = 0, n = fwd_nslots(f); i < n; i++) {
        pthread_mutex_lock(&f->mu);
        fwd_peer *p = f->slots[i];
        int live = p != NULL && p->used && !p->removed;
        pthread_mutex_unlock(&f->mu);
        if (!live)
            continue;
        if (p->health == NULL) {
            if (now >= p->next_health_ms) {
                if (fwd_call_start(f, p, NULL) != NULL)
                    p->next_health_ms = now + f->set.health_interval_ms;
            } else if (p->next_health_ms < *wake) {
                *wake = p->next_health_ms;
            }
        }
        for (fwd_batch **bp = &p->retry; *bp != NULL && p->calls < FWD_MAX_CALLS;) {
            fwd_batch *b = *bp;
            if (now < b->next_ms) {
                if (b->next_ms < *wake)
                    *wake = b->next_ms;
                bp = &b->next;
                continue;
            }
            *bp = b->next;
            b->next = NULL;
            if (fwd_call_start(f, p, b) == NULL) {
                fwd_batch_return(f, p, b, RET_UNREACHABLE);
                continue;
            }
        }
        while (p->calls < FWD_MAX_CALLS) {
            pthread_mutex_lock(&f->mu);
            fwd_batch *b = fwd_due_locked(f, p, now, wake) ? fwd_take_batch_locked(f, p) : NULL;
            pthread_mutex_unlock(&f->mu);
            if (b == NULL)
                break;
            b->first_ms = now;
            if (fwd_batch_body(b) != 0 || fwd_call_start(f, p, b) == NULL) {
                log_warn("cluster forward failed", "peer=%s reason=no_memory spans=%zu", p->addr, b->spans);
                fwd_batch_return(f, p, b, RET_UNREACHABLE);
            }
        }
    }
}

/* Finished calls: outcomes, health state, retries. */
static void fwd_collect(forward *f, uint64_t now)
{
    for (fwd_call *c = fwd_take_done(f), *next; c != NULL; c = next) {
        next = c->done_next;
        fwd_call_finished(f, c, now);
    }
}

/* Wakes the thread: new work, a removal, the stop. */
static void fwd_kick(forward *f)
{
    pthread_mutex_lock(&f->mu);
    f->kicked = 1;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
}

static void *fwd_main(void *arg)
{
    forward *f = arg;
    while (!atomic_load(&f->stopping)) {
        uint64_t now = clock_now_ms(), wake = now + FWD_WAIT_MS;
        fwd_reap(f);
        fwd_schedule(f, now, &wake);
        fwd_collect(f, clock_now_ms());
        now = clock_now_ms();
        pthread_mutex_lock(&f->mu);
        if (wake > now && !f->kicked && f->done == NULL && !atomic_load(&f->stopping)) {
            struct timespec ts = clock_deadline(wake - now);
            pthread_cond_timedwait(&f->wake, &f->mu, &ts);
        }
        f->kicked = 0;
        pthread_mutex_unlock(&f->mu);
    }
    /* Stopping: everything still held goes back. A return callback may
     * route spans to another peer meanwhile, hence a few passes. */
    for (int pass = 0; pass < 4; pass++) {
        fwd_reap(f);
        for (size_t i = 0, n = fwd_nslots(f); i < n; i++) {
            fwd_peer *p = f->slots[i];
            if (p != NULL && p->used)
                fwd_drain_peer(f, p, RET_STOPPED);
        }
    }
    return NULL;
}

/* ---- API ---- */

static char *fwd_strdup(const char *s, int *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = 1;
    return d;
}

static void fwd_free_settings(forward_settings *s)
{
    free((char *)s->self_id);
    free((char *)s->secret);
    free((char *)s->tls_cert);
    free((char *)s->tls_key);
    free((char *)s->tls_ca);
}

/* What forward_new set up, once the thread is gone (or never started). */
static void fwd_destroy(forward *f)
{
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->idle);
    pthread_cond_destroy(&f->wake);
    fwd_free_settings(&f->set);
    free(f);
}

/* The TLS files must be readable now: a typo fails at start, not at the first call. */
static int fwd_check_file(const char *path, const char *what, char *err, size_t errlen)
{
    FILE *fp = path != NULL ? fopen(path, "r") : NULL;
    if (fp == NULL) {
        snprintf(err, errlen, "cluster forward: cannot read %s %s", what, path != NULL ? path : "(not set)");
        return -1;
    }
    fclose(fp);
    return 0;
}

forward *forward_new(const forward_settings *s, forward_return_fn ret, forward_health_fn health, void *data,
                     char *err, size_t errlen)
{
    pthread_once(&fm_once, fwd_metrics_init);
    if (s->tls_cert != NULL && (fwd_check_file(s->tls_cert, "tls certificate", err, errlen) != 0 ||
                                fwd_check_file(s->tls_key != NULL ? s->tls_key : s->tls_cert, "tls key", err,
                                               errlen) != 0 ||
                                fwd_check_file(s->tls_ca, "tls CA", err, errlen) != 0))
        return NULL;
    forward *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int oom = 0;
    f->set = *s;
    f->set.self_id = fwd_strdup(s->self_id != NULL ? s->self_id : "", &oom);
    f->set.secret = fwd_strdup(s->secret, &oom);
    f->set.tls_cert = fwd_strdup(s->tls_cert, &oom);
    f->set.tls_key = fwd_strdup(s->tls_key, &oom);
    f->set.tls_ca = fwd_strdup(s->tls_ca, &oom);
    if (f->set.queue_bytes == 0)
        f->set.queue_bytes = 64u << 20;
    if (f->set.batch_bytes == 0)
        f->set.batch_bytes = 4u << 20;
    if (f->set.flush_ms == 0)
        f->set.flush_ms = 20;
    if (f->set.timeout_ms == 0)
        f->set.timeout_ms = 5000;
    if (f->set.give_up_ms == 0)
        f->set.give_up_ms = 2000;
    if (f->set.health_interval_ms == 0)
        f->set.health_interval_ms = 1000;
    if (f->set.health_failures == 0)
        f->set.health_failures = 3;
    f->ret = ret;
    f->health = health;
    f->data = data;
    pthread_mutex_init(&f->mu, NULL);
    clock_cond_init(&f->idle);
    clock_cond_init(&f->wake);
    if (oom) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (pthread_create(&f->thread, NULL, fwd_main, f) != 0) {
        snprintf(err, errlen, "cannot start the forward thread");
        goto fail;
    }
    return f;
fail:
    fwd_destroy(f);
    return NULL;
}

void forward_free(forward *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->stopping, 1);
    fwd_kick(f);
    pthread_join(f->thread, NULL);
    /* Only what a return callback pushed during the last pass can be left. */
    size_t lost = 0;
    for (fwd_entry *e = f->orphans; e != NULL; e = e->next)
        lost += e->spans;
    fwd_free_entries(f->orphans);
    for (size_t i = 0; i < f->nslots; i++) {
        fwd_peer *p = f->slots[i];
        if (p != NULL && p->used) {
            for (fwd_entry *e = p->head; e != NULL; e = e->next)
                lost += e->spans;
            fwd_free_entries(p->head);
            fwd_peer_free(p);
        }
        free(p);
    }
    if (lost > 0)
        log_error("cluster forward: spans pushed while stopping were lost", "spans=%zu", lost);
    fwd_destroy(f);
}

int forward_peer_add(forward *f, const char *addr)
{
    pthread_once(&fm_once, fwd_metrics_init);
    fwd_peer np = {.used = 1};
    int oom = 0;
    np.addr = fwd_strdup(addr, &oom);
    const char *scheme = f->set.tls_cert != NULL ? "https" : "http";
    size_t n = strlen(addr) + sizeof(FORWARD_EXPORT_PATH) + sizeof(FORWARD_HEALTH_PATH) + 16;
    np.url_export = malloc(n);
    np.url_health = malloc(n);
    if (oom || np.url_export == NULL || np.url_health == NULL) {
        fwd_peer_free(&np);
        return -1;
    }
    snprintf(np.url_export, n, "%s://%s%s", scheme, addr, FORWARD_EXPORT_PATH);
    snprintf(np.url_health, n, "%s://%s%s", scheme, addr, FORWARD_HEALTH_PATH);
    char err[256];
    h2_client_settings hs = {.url = np.url_export,
                             .user_agent = "otlp-gateway/" GATEWAY_VERSION,
                             .ca_file = f->set.tls_ca,
                             .client_cert = f->set.tls_cert,
                             .client_key = f->set.tls_key,
                             .name = np.addr};
    if ((np.h2 = h2_client_new(&hs, err, sizeof(err))) == NULL) {
        log_warn("cluster peer not added", "peer=%s error=\"%s\"", addr, err);
        fwd_peer_free(&np);
        return -1;
    }
    np.m_spans = fwd_series(fm.spans, addr, NULL);
    np.m_bytes = fwd_series(fm.bytes, addr, NULL);
    np.m_queue = fwd_series(fm.queue, addr, NULL);
    np.m_up = fwd_series(fm.up, addr, NULL);
    np.m_duration = fwd_series(fm.duration, addr, NULL);
    metrics_set(np.m_up, 0);
    pthread_mutex_lock(&f->mu);
    size_t slot = 0;
    while (slot < f->nslots && f->slots[slot] != NULL && f->slots[slot]->used)
        slot++;
    fwd_peer *p = slot < f->nslots ? f->slots[slot] : NULL;
    if (p == NULL && slot < FWD_MAX_SLOTS)
        p = f->slots[slot] = calloc(1, sizeof(*p));
    if (p == NULL) {
        pthread_mutex_unlock(&f->mu);
        fwd_peer_free(&np);
        return -1;
    }
    if (slot == f->nslots)
        f->nslots++;
    np.gen = p->gen;
    np.slot = (unsigned)slot;
    *p = np;
    int h = fwd_handle(p);
    pthread_mutex_unlock(&f->mu);
    fwd_kick(f); /* health checks start at once */
    return h;
}

void forward_peer_remove(forward *f, int peer)
{
    pthread_mutex_lock(&f->mu);
    fwd_peer *p = fwd_peer_get(f, peer);
    if (p != NULL)
        p->removed = 1;
    pthread_mutex_unlock(&f->mu);
    fwd_kick(f);
}

int forward_reserve(forward *f, int peer, size_t bytes)
{
    int rc = -1;
    pthread_mutex_lock(&f->mu);
    fwd_peer *p = fwd_peer_get(f, peer);
    if (p != NULL && p->reserved + p->queued + p->inflight + bytes <= f->set.queue_bytes) {
        p->reserved += bytes;
        rc = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void forward_unreserve(forward *f, int peer, size_t bytes)
{
    pthread_mutex_lock(&f->mu);
    fwd_peer *p = fwd_peer_get(f, peer);
    if (p != NULL)
        p->reserved -= bytes < p->reserved ? bytes : p->reserved;
    pthread_mutex_unlock(&f->mu);
}

void forward_push(forward *f, int peer, const char *tenant, const char *pipeline, const uint8_t *req, size_t len,
                  size_t spans)
{
    size_t tl = strlen(tenant) + 1, pl = strlen(pipeline) + 1;
    fwd_entry *e = malloc(sizeof(*e) + len + tl + pl);
    if (e == NULL) {
        /* Nothing to hand back without a copy: the data is lost, loudly. */
        log_error("cluster forward: out of memory, spans lost", "spans=%zu", spans);
        forward_unreserve(f, peer, len);
        return;
    }
    e->next = NULL;
    e->len = len;
    e->spans = spans;
    e->queued_ms = clock_now_ms();
    memcpy(e->data, req, len);
    memcpy(e->data + len, tenant, tl);
    memcpy(e->data + len + tl, pipeline, pl);
    e->tenant = (const char *)e->data + len;
    e->pipeline = e->tenant + tl;
    int wake;
    pthread_mutex_lock(&f->mu);
    fwd_peer *p = fwd_peer_get(f, peer);
    if (p == NULL) {
        /* Removed since the reservation: handed back by the thread. */
        fwd_list_append(&f->orphans, e);
        wake = 1;
    } else {
        p->reserved -= len < p->reserved ? len : p->reserved;
        p->queued += len;
        wake = p->head == NULL || p->queued >= f->set.batch_bytes;
        if (p->tail != NULL)
            p->tail->next = e;
        else
            p->head = e;
        p->tail = e;
        fwd_queue_gauge(p);
    }
    pthread_mutex_unlock(&f->mu);
    if (wake)
        fwd_kick(f);
}

static int fwd_idle_locked(const forward *f)
{
    if (f->orphans != NULL)
        return 0;
    for (size_t i = 0; i < f->nslots; i++) {
        const fwd_peer *p = f->slots[i];
        if (p != NULL && p->used && (p->queued > 0 || p->inflight > 0 || p->removed))
            return 0;
    }
    return 1;
}

int forward_wait_idle(forward *f, uint64_t timeout_ms)
{
    struct timespec deadline = clock_deadline(timeout_ms);
    pthread_mutex_lock(&f->mu);
    int rc = 0;
    while (!fwd_idle_locked(f))
        if (pthread_cond_timedwait(&f->idle, &f->mu, &deadline) != 0) {
            rc = fwd_idle_locked(f) ? 0 : -1;
            break;
        }
    pthread_mutex_unlock(&f->mu);
    return rc;
}
