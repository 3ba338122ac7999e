/* exporter_take: batches for the consumers and tenants backing off
 * (exporter_take.h). */
#include "exporter_take.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "queue.h"

/* The parked tenants are shared by the consumers: park_lock. */
static exporter_parked *exporter_parked_find(exporter *e, const char *tenant)
{
    for (size_t i = 0; i < e->nparked; i++)
        if (strcmp(e->parked[i].tenant, tenant) == 0)
            return &e->parked[i];
    return NULL;
}

void exporter_unpark(exporter *e, const char *tenant)
{
    pthread_mutex_lock(&e->park_lock);
    exporter_parked *p = exporter_parked_find(e, tenant);
    if (p != NULL)
        *p = e->parked[--e->nparked];
    pthread_mutex_unlock(&e->park_lock);
}

/* A parked tenant's retry count and clock, which its next batch resumes; 0
 * when it is not parked. */
int exporter_parked_get(exporter *e, const char *tenant, exporter_parked *out)
{
    pthread_mutex_lock(&e->park_lock);
    exporter_parked *p = exporter_parked_find(e, tenant);
    if (p != NULL)
        *out = *p;
    pthread_mutex_unlock(&e->park_lock);
    return p != NULL;
}

/* queue_peek_fair's skip: a tenant still backing off. */
static int exporter_parked_skip(void *ud, const char *tenant)
{
    exporter *e = ud;
    pthread_mutex_lock(&e->park_lock);
    exporter_parked *p = exporter_parked_find(e, tenant);
    int skip = p != NULL && p->retry_at > clock_now_ms();
    pthread_mutex_unlock(&e->park_lock);
    return skip;
}

/* Remembers a tenant's retry (memory queue): the batch stays queued and is
 * built again from the queue at retry_at. */
int exporter_park(exporter *e, const char *tenant, const exporter_parked *st)
{
    pthread_mutex_lock(&e->park_lock);
    exporter_parked *p = exporter_parked_find(e, tenant);
    if (p == NULL && e->nparked == e->parkcap) {
        size_t cap = e->parkcap ? e->parkcap * 2 : 8;
        exporter_parked *n = realloc(e->parked, cap * sizeof(*n));
        if (n != NULL) {
            e->parked = n;
            e->parkcap = cap;
        }
    }
    if (p == NULL && e->nparked < e->parkcap)
        p = &e->parked[e->nparked++];
    if (p != NULL) {
        *p = *st;
        snprintf(p->tenant, sizeof(p->tenant), "%s", tenant);
    }
    pthread_mutex_unlock(&e->park_lock);
    return p != NULL ? 0 : -1;
}

/* The longest prefix of the n peeked entries within the batch limits (at
 * least one entry, however big). *full: nothing more can join it; *need:
 * what would fill it. */
static size_t exporter_prefix(const exporter_consumer *c, size_t n, int *full, queue_fill *need)
{
    const exporter *e = c->e;
    uint64_t items = c->entries[0].items;
    size_t bytes = c->entries[0].len, k = 1;
    while (k < n && items + c->entries[k].items <= e->set.batch_items &&
           bytes + c->entries[k].len <= e->set.batch_bytes) {
        items += c->entries[k].items;
        bytes += c->entries[k].len;
        k++;
    }
    *full = k < n || k == e->set.max_entries || items >= e->set.batch_items || bytes >= e->set.batch_bytes;
    need->items = items < e->set.batch_items ? e->set.batch_items - items : 0;
    need->bytes = bytes < e->set.batch_bytes ? e->set.batch_bytes - bytes : 0;
    return k;
}

/* Damaged disk-queue records (found at open, or when read back) into the
 * metric: consumers call this after each peek, under take_lock. */
static void exporter_count_damage(exporter *e)
{
    queue_stats st;
    queue_get_stats(e->queue, &st);
    uint64_t now[2] = {st.corrupt_records, st.torn_records};
    for (int k = 0; k < 2; k++) {
        if (now[k] > e->damaged_seen[k])
            metrics_add(e->queue_damaged[k], now[k] - e->damaged_seen[k]);
        e->damaged_seen[k] = now[k];
    }
}

/* The next batch: in queue order from a disk queue; from a memory queue the
 * oldest of a tenant not backing off, preferring another tenant than the
 * last one served (round-robin). While only backing-off tenants have
 * entries, waits (at most until the first retry is due) with waiting_retry
 * set, as a backend-wide backoff would. */
static size_t exporter_peek(exporter_consumer *c, size_t min_entries, uint32_t timeout_ms, uint64_t *age,
                            queue_fill *fill)
{
    exporter *e = c->e;
    if (e->set.queue.dir != NULL)
        return queue_peek_fair(e->queue, c->entries, e->set.max_entries, min_entries, timeout_ms, age, NULL, NULL,
                               NULL, fill);
    uint64_t now = clock_now_ms(), due = 0;
    pthread_mutex_lock(&e->park_lock);
    for (size_t i = 0; i < e->nparked; i++)
        if (e->parked[i].retry_at > now && (due == 0 || e->parked[i].retry_at < due))
            due = e->parked[i].retry_at;
    pthread_mutex_unlock(&e->park_lock);
    if (due != 0 && due - now < timeout_ms)
        timeout_ms = (uint32_t)(due - now);
    size_t n = queue_peek_fair(e->queue, c->entries, e->set.max_entries, min_entries, timeout_ms, age,
                               exporter_parked_skip, e, e->last_tenant, fill);
    queue_stats st;
    queue_get_stats(e->queue, &st);
    int blocked = n == 0 && due != 0 && st.entries > 0;
    if (blocked)
        atomic_store(&e->retry_at_ms, due);
    if (atomic_exchange(&e->parked_only, blocked) != blocked && blocked)
        exporter_signal(e); /* a flush stops waiting for a backend that needs a retry */
    return n;
}

/* The next batch for consumer c, claimed, into c->entries; 0 when there
 * is none yet. One consumer at a time looks (take_lock), so a batch waiting
 * to fill is not split between consumers. */
size_t exporter_take(exporter_consumer *c)
{
    exporter *e = c->e;
    pthread_mutex_lock(&e->take_lock);
    uint64_t age = 0;
    queue_fill need = {0}; /* nothing wanted yet; each peek notes the push counts it saw */
    size_t n = atomic_load(&e->stopping) ? 0 : exporter_peek(c, 1, EXPORTER_POLL_MS, &age, &need), take = 0;
    if (e->set.queue.dir != NULL)
        exporter_count_damage(e);
    if (n > 0) {
        int full;
        take = exporter_prefix(c, n, &full, &need);
        /* Wait for the batch to fill until its oldest entry is batch.timeout
         * old, woken only by pushes that can fill it. A peek that brings
         * nothing new means the wait ran out or the next entry cannot join
         * (another signal or tenant): send now. */
        while (!full && age < e->set.batch_timeout_ms && !atomic_load(&e->stopping) && !atomic_load(&e->draining)) {
            size_t more = exporter_peek(c, n + 1, (uint32_t)(e->set.batch_timeout_ms - age), &age, &need);
            take = exporter_prefix(c, more, &full, &need);
            if (more <= n)
                break;
            n = more;
        }
        if (atomic_load(&e->stopping))
            take = 0;
        queue_claim(e->queue, c->entries, take);
        if (take > 0)
            snprintf(e->last_tenant, sizeof(e->last_tenant), "%s", c->entries[0].tenant);
    }
    pthread_mutex_unlock(&e->take_lock);
    return take;
}
