/* server: the worker threads. Each worker owns an h2o event loop, an
 * ingest_ctx, and its own SO_REUSEPORT listening socket for every gRPC and
 * HTTP address, so the kernel spreads connections across workers and nothing
 * is shared on the hot path. Worker 0 also serves the admin site.
 *
 * server_new binds every socket up front, so a bad or busy address fails
 * before anything runs. Port 0 binds an ephemeral port once and reuses it for
 * the other workers (tests use this); the chosen ports are logged. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stddef.h>

#include "admin.h"
#include "auth.h"
#include "config.h"
#include "pipeline.h"

typedef struct server server;

/* `au` may be NULL (no authentication at all); it is shared by the workers. */
/* Worker threads the server runs: cfg->workers, or one per CPU when 0. The
 * pipeline's sampler shards match (pipeline_new takes this count). */
unsigned server_worker_count(const config *cfg);
server *server_new(const config *cfg, pipeline *pl, auth *au, admin_state *admin, char *err, size_t errlen);
/* What server_new checks before it binds: each TLS listener's certificate,
 * key and client CA load and match (--check-config). 0, or -1 with err. */
int server_check(const config *cfg, char *err, size_t errlen);
/* Starts the worker threads; -1 with err if a thread cannot start. */
int server_start(server *s, char *err, size_t errlen);
/* Ask for a graceful stop: stop accepting, let in-flight requests finish
 * (up to shutdown_timeout), then the workers exit. Thread-safe. */
void server_stop(server *s);
/* Join the workers (after server_stop). */
void server_wait(server *s);
/* SIGHUP: re-read every TLS listener's certificate, key and client CA for
 * new handshakes (open connections keep theirs). Logs the outcome per
 * listener; a listener whose files fail to load keeps its previous ones.
 * Thread-safe against the running workers. */
void server_reload_tls(server *s);
void server_free(server *s);

#endif
