/* exporter_internal: the exporter's state, shared by exporter.c (sending,
 * retrying, the backend ops) and exporter_take.c (which batch a consumer
 * takes next, tenants backing off). Only those two files include it; the
 * contract to backend types is exporter.h's. The exporter owns everything
 * here; each field says which lock guards it, or that it is atomic. */
#ifndef GW_EXPORTER_INTERNAL_H
#define GW_EXPORTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <curl/curl.h>

#include "arena.h"
#include "exporter.h"
#include "exporter_config.h"
#include "h2_client.h"
#include "iov.h"
#include "metrics.h"

/* How long a blocking wait lasts before the thread re-checks for shutdown
 * (queue_wake and curl_multi_wakeup normally end it sooner). */
#define EXPORTER_POLL_MS 500

typedef struct exporter_series {
    metric_series *sent, *rejected, *dropped, *expired, *retries, *duration;
} exporter_series;

/* A tenant whose batch waits for a retry (memory queue): its entries are
 * passed over until retry_at, while other tenants' batches are sent. */
typedef struct exporter_parked {
    char tenant[256];
    uint64_t retry_at, first; /* clock_now_ms: next attempt; first attempt */
    unsigned attempt;         /* attempts made so far */
} exporter_parked;

struct exporter;

/* One consumer thread: it takes a batch from the queue, sends it, retries it
 * and acks it; queue.consumers of them keep that many requests in flight. */
typedef struct exporter_consumer {
    struct exporter *e;
    pthread_t thread;
    int started;
    CURLM *multi;
    CURL *easy;            /* reused for every request: keeps the connection alive */
    queue_entry *entries;  /* set.max_entries: the last peek */
    buf body, compressed;
    struct iovec *iov;     /* an attempt's body in pieces (iov_cap of them) */
    size_t iov_cap;
    struct {               /* libcurl reading a body of several pieces */
        const struct iovec *v;
        size_t n;
        iov_cursor at;
    } upload;
    arena *split_arena;    /* decoding an oversized entry to split it; lazily made */
    exporter_reply reply;
    uint64_t rng;
    char curl_error[CURL_ERROR_SIZE];
    int splitting;         /* delivering an oversized entry in parts: no parking */
    void *type_state;      /* the backend's, or its own (per_consumer types: owned) */
} exporter_consumer;

typedef struct exporter {
    backend base;
    backend_ops ops; /* exporter_ops with the type's name */
    const exporter_type *type;
    void *type_state;
    exporter_settings set; /* read once at create */

    export_queue *queue;
    metric_series *queue_entries, *queue_bytes;
    metric_series *up;  /* otlp_gateway_backend_up */
    metric_series *connections; /* otlp_gateway_export_connections_total (HTTP/2 client) */
    atomic_int failing; /* the last attempt says the destination is in trouble */
    metric_series *queue_damaged[2]; /* corrupt, torn */
    uint64_t damaged_seen[2];        /* counted into queue_damaged so far (exporter thread) */
    exporter_series series[OTLP_SIGNAL_COUNT];

    exporter_consumer *consumers; /* set.consumers */
    /* otlp_grpc: one HTTP/2 connection the consumers' requests share as
     * streams (h2_client.h), made at the first request. */
    h2_client *h2;
    pthread_mutex_t h2_lock;
    /* Type callbacks run under type_lock unless the type is reentrant. */
    pthread_mutex_t type_lock;
    /* take_lock: one consumer at a time peeks and claims a batch (and counts
     * queue damage, and records last_tenant). */
    pthread_mutex_t take_lock;
    pthread_mutex_t park_lock;  /* parked, nparked, parkcap */
    exporter_parked *parked; /* memory queue: tenants backing off */
    size_t nparked, parkcap;
    char last_tenant[256];   /* served last: the next batch prefers another (take_lock) */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_int stopping;      /* destroy: abandon the batch in hand and exit */
    atomic_int draining;      /* flush: send without waiting for batch.timeout */
    atomic_int waiting_retry; /* consumers sleeping before a retry */
    atomic_int parked_only;   /* every queued entry belongs to a parked tenant */
    _Atomic uint64_t retry_at_ms; /* clock_now_ms of the next retry while waiting */
} exporter;

/* Wakes whoever waits on e->cond (a retry sleep, a flush). */
void exporter_signal(exporter *e);

#endif
