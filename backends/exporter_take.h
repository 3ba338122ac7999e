/* exporter_take: which batch a consumer sends next, and the tenants that
 * wait for a retry. A consumer takes the longest run of queued entries that
 * fits the batch limits, waiting up to batch.timeout for it to fill (one
 * consumer at a time, under take_lock, so a filling batch is not split
 * between consumers). From a disk queue entries go in queue order. From a
 * memory queue a tenant whose batch must be retried is parked instead of
 * holding up the others: its entries stay queued and are passed over until
 * its retry is due, and among the others the next batch prefers a tenant
 * other than the last one served (round-robin).
 *
 * For exporter.c only (the state is exporter_internal.h's). The parked
 * tenants live in e->parked under e->park_lock; entries taken are claimed
 * in the queue and belong to the consumer until it acks or releases them. */
#ifndef GW_EXPORTER_TAKE_H
#define GW_EXPORTER_TAKE_H

#include <stddef.h>

#include "exporter_internal.h"

/* The next batch for consumer c, claimed, into c->entries: its number of
 * entries, 0 when there is none yet (or on shutdown). */
size_t exporter_take(exporter_consumer *c);

/* Parks tenant with st's retry time and count (memory queue). 0, or -1 when
 * memory ran out (the caller then waits in place). */
int exporter_park(exporter *e, const char *tenant, const exporter_parked *st);
/* 1 with the parked tenant's state in *out, which its next batch resumes; 0
 * when it is not parked. */
int exporter_parked_get(exporter *e, const char *tenant, exporter_parked *out);
/* Forgets tenant's parking: its batch was delivered or given up. */
void exporter_unpark(exporter *e, const char *tenant);

#endif
