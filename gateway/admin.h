/* admin: the operator's endpoints, served by worker 0 on the admin address:
 *   /healthz  200 while the process runs
 *   /readyz   200 once listeners are up and every backend is ready, 503 while
 *             starting or draining (so a load balancer stops sending first)
 *   /metrics  Prometheus text format
 *   /         a plain-text status page (version, uptime, listeners, backends)
 * Nothing here ever prints a secret: the status page lists names, types and
 * addresses only. */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stdatomic.h>

#include "config.h"
#include "http.h"
#include "pipeline.h"

typedef struct admin_state {
    const config *cfg;
    pipeline *pl;
    atomic_int serving; /* 1 between listeners up and shutdown start */
    double started_unix;
} admin_state;

/* Also registers the process metrics (build info, start time, RSS, fds). */
http_site *admin_site_new(admin_state *st);

#endif
