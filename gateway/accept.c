#include "accept.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* ---- gates ---------------------------------------------------------------- */

void conn_gate_init(conn_gate *g, const char *name, size_t max, conn_gate *global, int serve_on_reserve)
{
    metric_family *open_f = metrics_family("otlp_gateway_connections", METRIC_GAUGE,
                                           "Open client connections per listener.");
    metric_family *refused_f = metrics_family("otlp_gateway_connections_refused_total", METRIC_COUNTER,
                                              "Connections closed at accept: over a connection cap, or out of "
                                              "descriptors.");
    g->name = name;
    g->max = max;
    g->global = global;
    g->serve_on_reserve = serve_on_reserve;
    atomic_init(&g->open, 0);
    atomic_init(&g->ceiling, 0);
    atomic_init(&g->ceiling_until_ns, 0);
    char labels[256];
    snprintf(labels, sizeof(labels), "listener=\"%s\"", name);
    g->gauge = metrics_series(open_f, labels);
    snprintf(labels, sizeof(labels), "listener=\"%s\",reason=\"listener_limit\"", name);
    g->refused_listener = metrics_series(refused_f, labels);
    snprintf(labels, sizeof(labels), "listener=\"%s\",reason=\"global_limit\"", name);
    g->refused_global = metrics_series(refused_f, labels);
    snprintf(labels, sizeof(labels), "listener=\"%s\",reason=\"descriptors\"", name);
    g->refused_fds = metrics_series(refused_f, labels);
}

size_t conn_gate_open(const conn_gate *g) { return atomic_load(&g->open); }

/* After EMFILE the global cap is lowered for a while to the connections
 * open then, less a few, so descriptors freed by closing connections (an
 * admin connection, a health check) go to the reserves and the admin
 * listener rather than to the next OTLP client. */
#define FD_CEILING_NS 5000000000ull
#define FD_CEILING_SLACK 4

static size_t effective_max(conn_gate *g)
{
    size_t max = g->max;
    uint64_t until = atomic_load(&g->ceiling_until_ns);
    if (until != 0 && clock_now_ns() < until) {
        size_t c = atomic_load(&g->ceiling);
        if (max == 0 || c < max)
            max = c;
    }
    return max;
}

static void lower_ceiling(conn_gate *g)
{
    conn_gate *top = g->global != NULL ? g->global : g;
    size_t open = atomic_load(&top->open);
    atomic_store(&top->ceiling, open > FD_CEILING_SLACK ? open - FD_CEILING_SLACK : 1);
    atomic_store(&top->ceiling_until_ns, clock_now_ns() + FD_CEILING_NS);
}

/* Take a place in g and its global gate; NULL, or the counter to bump when
 * a cap is full. */
static metric_series **gate_take(conn_gate *g)
{
    if (g == NULL)
        return NULL;
    size_t n = atomic_fetch_add(&g->open, 1) + 1, max = effective_max(g);
    if (max != 0 && n > max) {
        atomic_fetch_sub(&g->open, 1);
        return g->max != 0 && n > g->max ? &g->refused_listener : &g->refused_fds;
    }
    if (g->global != NULL) {
        n = atomic_fetch_add(&g->global->open, 1) + 1;
        max = effective_max(g->global);
        if (max != 0 && n > max) {
            atomic_fetch_sub(&g->global->open, 1);
            atomic_fetch_sub(&g->open, 1);
            return g->global->max != 0 && n > g->global->max ? &g->refused_global : &g->refused_fds;
        }
    }
    return NULL;
}

static void gate_release(conn_gate *g)
{
    if (g == NULL)
        return;
    atomic_fetch_sub(&g->open, 1);
    if (g->global != NULL)
        atomic_fetch_sub(&g->global->open, 1);
}

/* ---- the worker's reserved descriptor ------------------------------------- */

/* [0] for the OTLP listeners (accept-and-close), [1] for the admin
 * listener's connections (served), so that one does not use up the other's. */
static _Thread_local int reserve_fd[2] = {-1, -1};
static _Thread_local unsigned reserve_users[2];
static _Thread_local uint64_t last_warn_ns;

static int reserve_kind(const conn_acceptor *a) { return a->gate != NULL && a->gate->serve_on_reserve; }

static void reserve_open(int k)
{
    if (reserve_fd[k] < 0 && reserve_users[k] > 0)
        reserve_fd[k] = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void warn_exhausted(const conn_gate *g, int err)
{
    uint64_t now = clock_now_ns();
    if (now - last_warn_ns < 1000000000u && last_warn_ns != 0)
        return; /* at most one a second per worker */
    last_warn_ns = now;
    log_warn("out of file descriptors: refusing connections", "listener=%s error=\"%s\" pause_ms=%d",
             g ? g->name : "?", strerror(err), ACCEPT_PAUSE_MS);
}

/* ---- acceptor ------------------------------------------------------------- */

/* The open-connections gauges of a gate and of its global gate ("all"). */
static void gate_gauge_add(const conn_gate *g, int64_t d)
{
    metrics_gauge_add(g->gauge, d);
    if (g->global != NULL)
        metrics_gauge_add(g->global->gauge, d);
}

static void on_sock_close(void *data)
{
    conn_slot *s = data;
    if (s->gate != NULL) {
        gate_release(s->gate);
        gate_gauge_add(s->gate, -1);
    }
    if (s->acceptor != NULL)
        h2o_linklist_unlink(&s->link);
    /* An admin connection let in by its reserve gives the descriptor back. */
    if (s->gate != NULL && s->gate->serve_on_reserve)
        reserve_open(1);
    free(s);
}

conn_slot *conn_slot_of(h2o_socket_t *sock)
{
    return sock != NULL && sock->on_close.cb == on_sock_close ? sock->on_close.data : NULL;
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void pause_listener(conn_acceptor *a)
{
    if (a->sock == NULL || h2o_timeout_is_linked(&a->resume))
        return;
    h2o_socket_read_stop(a->sock);
    h2o_timeout_link(a->loop, &a->pause, &a->resume);
}

static void on_resume(h2o_timeout_entry_t *entry)
{
    conn_acceptor *a = H2O_STRUCT_FROM_MEMBER(conn_acceptor, resume, entry);
    reserve_open(reserve_kind(a));
    if (a->sock != NULL)
        h2o_socket_read_start(a->sock, on_accept);
}

/* Wrap an accepted fd as an h2o socket owned by a slot; -1 (fd closed) when
 * out of memory. */
static int adopt(conn_acceptor *a, int fd)
{
    conn_slot *s = calloc(1, a->slot_size);
    if (s == NULL) {
        close(fd);
        gate_release(a->gate);
        return -1;
    }
    int one = 1; /* as h2o_evloop_socket_accept does */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2o_socket_t *sock = h2o_evloop_socket_create(a->loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
    *s = (conn_slot){.acceptor = a, .gate = a->gate, .sock = sock, .accepted_ns = clock_now_ns()};
    h2o_linklist_insert(&a->slots, &s->link);
    sock->on_close.cb = on_sock_close;
    sock->on_close.data = s;
    if (a->gate != NULL)
        gate_gauge_add(a->gate, 1);
    a->on_conn(sock, a->data);
    return 0;
}

/* EMFILE/ENFILE: let one pending connection in with the reserve (served on
 * an admin gate, closed on the others), then pause. */
static void out_of_fds(conn_acceptor *a, int lfd, int err)
{
    warn_exhausted(a->gate, err);
    int k = reserve_kind(a);
    if (a->gate != NULL && !k)
        lower_ceiling(a->gate);
    if (reserve_fd[k] >= 0) {
        close(reserve_fd[k]);
        reserve_fd[k] = -1;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (k && gate_take(a->gate) == NULL) {
                /* served; the reserve is reopened when a descriptor is free */
                adopt(a, fd);
                return;
            }
            if (a->gate != NULL)
                metrics_add(a->gate->refused_fds, 1);
            close(fd);
        }
        reserve_open(k);
    } else if (a->gate != NULL) {
        metrics_add(a->gate->refused_fds, 1);
    }
    pause_listener(a);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    conn_acceptor *a = listener->data;
    if (err != NULL)
        return;
    int lfd = h2o_socket_get_fd(listener);
    reserve_open(reserve_kind(a)); /* after a descriptor shortage */
    /* A bounded batch per wake-up keeps one busy listener from starving the
     * loop's other sockets. */
    for (int i = 0; i < a->batch; i++) {
        metric_series **full = gate_take(a->gate);
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (full == NULL)
                gate_release(a->gate);
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            if (e == EMFILE || e == ENFILE)
                out_of_fds(a, lfd, e);
            else if (e == ENOBUFS || e == ENOMEM)
                pause_listener(a);
            return; /* EAGAIN: nothing pending */
        }
        if (full != NULL) {
            metrics_add(*full, 1); /* before the client can see the close */
            close(fd);
            continue;
        }
        if (adopt(a, fd) != 0)
            return;
        if (a->sock == NULL) /* the callback stopped the listener */
            return;
    }
}

void conn_acceptor_start(conn_acceptor *a, h2o_loop_t *loop, int listen_fd, conn_gate *gate, size_t slot_size,
                         int batch, void (*on_conn)(h2o_socket_t *sock, void *data), void *data)
{
    *a = (conn_acceptor){.loop = loop, .gate = gate, .slot_size = slot_size < sizeof(conn_slot) ? sizeof(conn_slot)
                                                                                                 : slot_size,
                         .batch = batch > 0 ? batch : 16, .on_conn = on_conn, .data = data,
                         .resume = {.cb = on_resume}};
    h2o_linklist_init_anchor(&a->slots);
    h2o_timeout_init(loop, &a->pause, ACCEPT_PAUSE_MS);
    int k = reserve_kind(a);
    reserve_users[k]++;
    reserve_open(k);
    a->sock = h2o_evloop_socket_create(loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    a->sock->data = a;
    h2o_socket_read_start(a->sock, on_accept);
}

void conn_acceptor_stop(conn_acceptor *a)
{
    if (h2o_timeout_is_linked(&a->resume))
        h2o_timeout_unlink(&a->resume);
    if (a->sock != NULL) {
        h2o_socket_read_stop(a->sock);
        h2o_socket_close(a->sock);
        a->sock = NULL;
    }
}

void conn_acceptor_dispose(conn_acceptor *a)
{
    if (a->loop == NULL)
        return;
    conn_acceptor_stop(a);
    while (!h2o_linklist_is_empty(&a->slots)) {
        conn_slot *s = H2O_STRUCT_FROM_MEMBER(conn_slot, link, a->slots.next);
        h2o_linklist_unlink(&s->link);
        s->acceptor = NULL;
    }
    h2o_timeout_dispose(a->loop, &a->pause);
    a->loop = NULL;
    int k = reserve_kind(a);
    if (--reserve_users[k] == 0 && reserve_fd[k] >= 0) {
        close(reserve_fd[k]);
        reserve_fd[k] = -1;
    }
}

/* ---- RLIMIT_NOFILE -------------------------------------------------------- */

size_t accept_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return (size_t)1 << 20;
    return (size_t)rl.rlim_cur;
}

void accept_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (want.rlim_cur == RLIM_INFINITY) {
            /* the kernel refuses more than fs.nr_open */
            FILE *f = fopen("/proc/sys/fs/nr_open", "r");
            unsigned long long n = 0;
            if (f != NULL) {
                if (fscanf(f, "%llu", &n) != 1)
                    n = 0;
                fclose(f);
            }
            want.rlim_cur = n > 0 ? (rlim_t)n : (rlim_t)1 << 20;
        }
        if (setrlimit(RLIMIT_NOFILE, &want) != 0)
            log_warn("cannot raise the file descriptor limit", "soft=%llu hard=%llu error=\"%s\"",
                     (unsigned long long)before, (unsigned long long)rl.rlim_max, strerror(errno));
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    log_info("file descriptor limit", "soft_was=%llu soft=%llu hard=%llu", (unsigned long long)before,
             (unsigned long long)rl.rlim_cur,
             rl.rlim_max == RLIM_INFINITY ? 0ull : (unsigned long long)rl.rlim_max);
}
