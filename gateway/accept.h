/* accept: how every listener (OTLP/gRPC, OTLP/HTTP, admin) takes
 * connections, so that running out of file descriptors degrades instead of
 * taking the gateway down.
 *
 * - A conn_gate counts one listener's open connections across all workers
 *   (its grpc and http sockets together) and caps them (`max_connections`),
 *   under an optional global gate (`limits.max_connections`). Over a cap a
 *   new connection is accepted and closed at once, so the backlog does not
 *   fill with connections that will time out anyway.
 * - On EMFILE/ENFILE from accept() the listener stops reading its socket for
 *   ACCEPT_PAUSE_MS instead of waking the loop again at once (h2o's epoll is
 *   level-triggered: an armed listener with a pending connection it cannot
 *   accept spins the worker at 100% CPU). Each worker thread keeps one
 *   reserved descriptor: on EMFILE it is closed, one pending connection is
 *   accepted with it and closed (the client gets a clean close rather than
 *   waiting) and the reserve reopened. An admin gate (serve_on_reserve)
 *   keeps and serves the connection the reserve let in, so a health check
 *   gets through even when the OTLP listeners used every descriptor (the
 *   admin listener has a reserve of its own). After EMFILE the global cap
 *   drops for 5 s to the connections then open, less 4, so descriptors that
 *   connections free go back to the reserves, not to the next client.
 *
 * Metrics: otlp_gateway_connections{listener} (gauge) and
 * otlp_gateway_connections_refused_total{listener,reason}, reason one of
 * listener_limit, global_limit, descriptors. */
#ifndef GW_ACCEPT_H
#define GW_ACCEPT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "metrics.h"

/* How long a listener stops accepting after EMFILE/ENFILE. */
#define ACCEPT_PAUSE_MS 100

typedef struct conn_gate {
    const char *name;      /* listener name, for metrics and logs */
    size_t max;            /* 0: no cap of its own */
    struct conn_gate *global; /* NULL: not counted globally */
    int serve_on_reserve;  /* admin: serve the connection taken with the reserve */
    atomic_size_t open;
    atomic_size_t ceiling;            /* after EMFILE: a lower cap, until ceiling_until_ns */
    _Atomic uint64_t ceiling_until_ns;
    metric_series *gauge, *refused_listener, *refused_global, *refused_fds;
} conn_gate;

/* name is not copied. */
void conn_gate_init(conn_gate *g, const char *name, size_t max, conn_gate *global, int serve_on_reserve);
size_t conn_gate_open(const conn_gate *g);

/* One accepted connection: the head of a record of acceptor.slot_size bytes
 * (zeroed), freed when its socket closes. */
typedef struct conn_slot {
    struct conn_acceptor *acceptor; /* NULL once the acceptor is disposed */
    conn_gate *gate;
    h2o_socket_t *sock;
    h2o_linklist_t link; /* in acceptor->slots */
    uint64_t accepted_ns;
} conn_slot;

typedef struct conn_acceptor {
    h2o_loop_t *loop;
    h2o_socket_t *sock; /* listening; NULL after stop */
    conn_gate *gate;    /* may be NULL: no cap, no metrics */
    size_t slot_size;   /* >= sizeof(conn_slot) */
    int batch;          /* accepts per wake-up */
    void (*on_conn)(h2o_socket_t *sock, void *data);
    void *data;
    h2o_linklist_t slots;
    h2o_timeout_t pause;
    h2o_timeout_entry_t resume;
} conn_acceptor;

/* Start accepting on a bound, listening, non-blocking fd (taken over). */
void conn_acceptor_start(conn_acceptor *a, h2o_loop_t *loop, int listen_fd, conn_gate *gate, size_t slot_size,
                         int batch, void (*on_conn)(h2o_socket_t *sock, void *data), void *data);
/* Close the listening socket (open connections stay). */
void conn_acceptor_stop(conn_acceptor *a);
/* Stop, and detach the connections still open from the acceptor. */
void conn_acceptor_dispose(conn_acceptor *a);
/* The record of a socket this acceptor accepted, or NULL. */
conn_slot *conn_slot_of(h2o_socket_t *sock);

/* The current RLIMIT_NOFILE soft limit. */
size_t accept_fd_limit(void);
/* Raise RLIMIT_NOFILE's soft limit to the hard limit (logged). */
void accept_raise_fd_limit(void);

#endif
