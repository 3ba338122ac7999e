#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>

#include "accept.h"
#include "grpc.h"
#include "http.h"
#include "clock.h"
#include "log.h"
#include "tls.h"

/* One listener's shared pieces, built once. */
typedef struct listener_plan {
    const config_listener *cfg;
    tls_creds *tls; /* NULL without TLS; reloaded on SIGHUP */
    SSL_CTX *grpc_ssl, *http_ssl;
    http_site *http_site;
    grpc_settings grpc;
    conn_gate gate; /* the listener's connections, every worker */
} listener_plan;

typedef struct worker {
    server *srv;
    unsigned id;
    pthread_t thread;
    int started;
    int *grpc_fds, *http_fds; /* per listener, -1 when absent; handed to listeners */
    int admin_fd;
} worker;

struct server {
    const config *cfg;
    pipeline *pl;
    auth *au;
    admin_state *admin;
    http_site *admin_site;
    listener_plan *plans;
    size_t n_plans;
    worker *workers;
    unsigned n_workers;
    conn_gate global_gate; /* limits.max_connections: every listener but admin */
    conn_gate admin_gate;
    atomic_int stopping;
};

/* Resolve "host:port", "[v6]:port" or ":port" (all interfaces). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof(host))
            goto bad;
        memcpy(host, addr + 1, (size_t)(close - addr - 1));
        host[close - addr - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
            goto bad;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "address %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(err, errlen, "address %s: expected host:port or [v6]:port", addr);
    return -1;
}

static int listen_on(const struct sockaddr_storage *ss, socklen_t len, int reuseport, char *err, size_t errlen,
                     const char *addr)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 4096) != 0) {
        snprintf(err, errlen, "listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static uint16_t *port_of(struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? &((struct sockaddr_in6 *)ss)->sin6_port
                                     : &((struct sockaddr_in *)ss)->sin_port;
}

/* Bind `n` sockets for one address (one per worker). With port 0 the first
 * socket's ephemeral port is reused so all workers share it. */
static int bind_all(const char *addr, const char *what, unsigned n, int reuseport, int *fds, size_t stride,
                    char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_addr(addr, &ss, &len, err, errlen) != 0)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        int fd = listen_on(&ss, len, reuseport, err, errlen, addr);
        if (fd < 0)
            return -1;
        fds[i * stride] = fd;
        if (i == 0 && *port_of(&ss) == 0) {
            struct sockaddr_storage got;
            socklen_t gl = sizeof(got);
            getsockname(fd, (struct sockaddr *)&got, &gl);
            *port_of(&ss) = *port_of(&got);
        }
    }
    char host[INET6_ADDRSTRLEN] = "";
    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST);
    log_info("listening", "%s addr=%s%s%s:%u workers=%u", what, ss.ss_family == AF_INET6 ? "[" : "", host,
             ss.ss_family == AF_INET6 ? "]" : "", (unsigned)ntohs(*port_of(&ss)), n);
    return 0;
}

static int plan_listener(listener_plan *p, const config_listener *cl, const config *cfg, conn_gate *global, char *err,
                         size_t errlen)
{
    p->cfg = cl;
    if (global != NULL)
        conn_gate_init(&p->gate, cl->name, (size_t)cl->max_connections, global, 0);
    ingest_limits lim = {.max_request_bytes = cl->max_request_bytes, .max_decoded_bytes = cfg->max_decoded_bytes};
    if (cl->tls.cert_file != NULL) {
        if ((p->tls = tls_creds_new(&cl->tls, err, errlen)) == NULL ||
            (cl->grpc_addr && !(p->grpc_ssl = tls_server_ctx(p->tls, TLS_ALPN_H2_ONLY, err, errlen))) ||
            (cl->http_addr && !(p->http_ssl = tls_server_ctx(p->tls, TLS_ALPN_H2_HTTP1, err, errlen))))
            return -1;
    }
    p->grpc = (grpc_settings){.name = cl->name, .limits = lim, .max_concurrent_streams = cl->max_concurrent_streams,
                              .idle_timeout_ms = cl->idle_timeout_ms, .header_timeout_ms = cl->header_timeout_ms,
                              .ssl_ctx = p->grpc_ssl, .proxy_protocol = cl->proxy_protocol,
                              .peer = cl->peer != NULL, .peer_secret = cl->peer ? cl->peer->forward.secret : NULL,
                              .gate = global != NULL ? &p->gate : NULL};
    if (cl->http_addr != NULL) {
        http_site_settings hs = {.name = cl->name, .max_body_bytes = cl->max_request_bytes,
                                 .idle_timeout_ms = cl->idle_timeout_ms, .header_timeout_ms = cl->header_timeout_ms,
                                 .gate = global != NULL ? &p->gate : NULL};
        if ((p->http_site = http_otlp_site_new(&hs, &lim)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static void plan_release(listener_plan *p)
{
    SSL_CTX_free(p->grpc_ssl);
    SSL_CTX_free(p->http_ssl);
    tls_creds_free(p->tls);
    http_site_free(p->http_site);
}

int server_check(const config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        listener_plan p = {0};
        int rc = plan_listener(&p, &cfg->listeners[i], cfg, NULL, err, errlen);
        plan_release(&p);
        if (rc != 0)
            return -1;
    }
    return 0;
}

unsigned server_worker_count(const config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cfg->workers ? cfg->workers : (unsigned)(cpus > 0 ? cpus : 1);
}

static size_t open_descriptors(void)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 64;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n > 3 ? n - 3 : n; /* ".", ".." and the DIR's own descriptor */
}

/* limits.max_connections when not configured: the descriptors left once the
 * listeners are bound, minus room for everything else the gateway opens
 * while running (backend and cluster connections, disk queue segments, key
 * and OIDC fetches, the reserve descriptors): 16 + 1/16 of the limit. */
static size_t default_max_connections(size_t used)
{
    size_t limit = accept_fd_limit(), room = 16 + limit / 16;
    if (used + room + 1 > limit) {
        log_warn("file descriptor limit leaves almost no room for connections", "limit=%zu in_use=%zu", limit, used);
        return 1;
    }
    return limit - used - room;
}

server *server_new(const config *cfg, pipeline *pl, auth *au, admin_state *admin, char *err, size_t errlen)
{
    server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cfg = cfg;
    s->pl = pl;
    s->au = au;
    s->admin = admin;
    s->n_workers = server_worker_count(cfg);
    s->n_plans = cfg->n_listeners;
    conn_gate_init(&s->global_gate, "all", (size_t)cfg->max_connections, NULL, 0);
    conn_gate_init(&s->admin_gate, "admin", 0, NULL, 1);
    s->plans = calloc(s->n_plans, sizeof(*s->plans));
    s->workers = calloc(s->n_workers, sizeof(*s->workers));
    int *fds = calloc(2 * s->n_plans * s->n_workers + 1, sizeof(int));
    if (s->plans == NULL || s->workers == NULL || fds == NULL) {
        free(fds);
        snprintf(err, errlen, "out of memory");
        server_free(s);
        return NULL;
    }
    for (size_t i = 0; i < 2 * s->n_plans * s->n_workers; i++)
        fds[i] = -1;
    /* fds is laid out [worker][grpc listeners..., http listeners...]; worker 0
     * owns the allocation. */
    for (unsigned w = 0; w < s->n_workers; w++) {
        s->workers[w] = (worker){.srv = s, .id = w, .admin_fd = -1};
        s->workers[w].grpc_fds = fds + w * 2 * s->n_plans;
        s->workers[w].http_fds = s->workers[w].grpc_fds + s->n_plans;
    }
    size_t stride = 2 * s->n_plans;
    for (size_t i = 0; i < s->n_plans; i++) {
        const config_listener *cl = &cfg->listeners[i];
        char what[160];
        if (plan_listener(&s->plans[i], cl, cfg, &s->global_gate, err, errlen) != 0)
            goto fail;
        snprintf(what, sizeof(what), "listener=%s transport=grpc tls=%s", cl->name, cl->tls.cert_file ? "on" : "off");
        if (cl->grpc_addr && bind_all(cl->grpc_addr, what, s->n_workers, 1, &fds[i], stride, err, errlen) != 0)
            goto fail;
        snprintf(what, sizeof(what), "listener=%s transport=http tls=%s", cl->name, cl->tls.cert_file ? "on" : "off");
        if (cl->http_addr &&
            bind_all(cl->http_addr, what, s->n_workers, 1, &fds[s->n_plans + i], stride, err, errlen) != 0)
            goto fail;
    }
    if (cfg->admin_addr != NULL) {
        if ((s->admin_site = admin_site_new(admin)) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (bind_all(cfg->admin_addr, "listener=admin transport=http", 1, 0, &s->workers[0].admin_fd, 0, err,
                     errlen) != 0)
            goto fail;
        http_site_set_gate(s->admin_site, &s->admin_gate);
    }
    /* Each worker's event loop and reserve descriptor are not open yet. */
    if (s->global_gate.max == 0)
        s->global_gate.max = default_max_connections(open_descriptors() + 4 * s->n_workers);
    log_info("connection limits", "max_connections=%zu fd_limit=%zu%s", s->global_gate.max, accept_fd_limit(),
             cfg->max_connections ? "" : " derived=true");
    return s;
fail:
    server_free(s);
    return NULL;
}

/* Everything one worker runs, built on its own thread. */
typedef struct worker_run {
    h2o_evloop_t *loop;
    ingest_ctx *ictx;
    grpc_listener **grpc;
    http_listener **http;
    http_listener *admin;
} worker_run;

static size_t open_connections(const server *s, const worker_run *r)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_plans; i++) {
        n += r->grpc[i] ? grpc_listener_connections(r->grpc[i]) : 0;
        n += r->http[i] ? http_listener_connections(r->http[i]) : 0;
    }
    return n + (r->admin ? http_listener_connections(r->admin) : 0);
}

/* One pass of the worker's loop, then the turns of connections with input
 * left over their read budget; 1 while input is still waiting. */
static int worker_pass(const server *s, worker_run *r, int wait_ms)
{
    h2o_evloop_run(r->loop, wait_ms);
    int more = 0;
    for (size_t i = 0; i < s->n_plans; i++)
        if (r->grpc[i])
            more |= grpc_listener_pass(r->grpc[i]);
    return more;
}

static void worker_shutdown(worker *w, worker_run *r)
{
    server *s = w->srv;
    for (size_t i = 0; i < s->n_plans; i++) {
        if (r->grpc[i])
            grpc_listener_shutdown(r->grpc[i]);
        if (r->http[i])
            http_listener_shutdown(r->http[i]);
    }
    uint64_t deadline = clock_now_ns() + (uint64_t)s->cfg->shutdown_timeout_ms * 1000000u;
    /* The admin site stays up while draining so /readyz reports 503. */
    int more = 0;
    while (open_connections(s, r) - (r->admin ? http_listener_connections(r->admin) : 0) > 0 &&
           clock_now_ns() < deadline)
        more = worker_pass(s, r, more ? 0 : 50);
    size_t left = open_connections(s, r) - (r->admin ? http_listener_connections(r->admin) : 0);
    if (left > 0)
        log_warn("shutdown timeout", "worker=%u connections_left=%zu", w->id, left);
    if (r->admin == NULL)
        return;
    /* Last, the admin site: a load balancer's health check may be connected
     * or half-way through a request. Shutdown shortens its idle timeout, so
     * those close within about a second; wait for that (bounded) so the
     * listener can be freed rather than left to the process teardown. */
    http_listener_shutdown(r->admin);
    deadline = clock_now_ns() + 3000000000u;
    while (http_listener_connections(r->admin) > 0 && clock_now_ns() < deadline)
        h2o_evloop_run(r->loop, 50);
}

/* h2o frees closed sockets on the loop's next pass and keeps freed socket
 * buffers in a per-thread recycle list; neither is released by
 * h2o_evloop_destroy, so run the loop until closes are reaped and drain the
 * list (popping a cached chunk and freeing it is what h2o would do at max). */
static void worker_release_loop(h2o_evloop_t *loop)
{
    for (int i = 0; i < 3; i++)
        h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    h2o_mem_recycle_t *rc = &h2o_socket_buffer_prototype.allocator;
    while (rc->cnt > 0)
        free(h2o_mem_alloc_recycle(rc, 0));
    grpc_thread_release();
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    server *s = w->srv;
    worker_run r = {.loop = h2o_evloop_create(), .ictx = ingest_ctx_new(s->pl, s->au)};
    r.grpc = calloc(s->n_plans + 1, sizeof(*r.grpc));
    r.http = calloc(s->n_plans + 1, sizeof(*r.http));
    if (r.ictx == NULL || r.grpc == NULL || r.http == NULL) {
        log_error("worker cannot start", "worker=%u error=\"out of memory\"", w->id);
        abort();
    }
    for (size_t i = 0; i < s->n_plans; i++) {
        const listener_plan *p = &s->plans[i];
        if (w->grpc_fds[i] >= 0)
            r.grpc[i] = grpc_listener_start(r.loop, w->grpc_fds[i], &p->grpc, r.ictx);
        if (w->http_fds[i] >= 0)
            r.http[i] = http_listener_start(p->http_site, r.loop, w->http_fds[i], p->http_ssl,
                                            p->cfg->proxy_protocol ? PROXY_REQUIRED : PROXY_NONE, r.ictx);
        w->grpc_fds[i] = w->http_fds[i] = -1; /* owned by the listeners now */
    }
    if (w->admin_fd >= 0) {
        r.admin = http_listener_start(s->admin_site, r.loop, w->admin_fd, NULL,
                                      s->cfg->admin_proxy_protocol ? PROXY_OPTIONAL : PROXY_NONE, NULL);
        w->admin_fd = -1;
    }
    /* The loop wakes at least every 100 ms; tail-sampling decisions of this
     * worker's shard are due on time even without traffic. */
    uint64_t last_tick = 0;
    int more = 0;
    while (!atomic_load(&s->stopping)) {
        more = worker_pass(s, &r, more ? 0 : 100);
        uint64_t now = clock_now_ns();
        if (now - last_tick >= 100000000u) {
            pipeline_tick(s->pl, w->id, now);
            last_tick = now;
        }
    }
    worker_shutdown(w, &r);
    int stuck = 0; /* an h2o context that could not be disposed */
    for (size_t i = 0; i < s->n_plans; i++) {
        if (r.grpc[i])
            grpc_listener_free(r.grpc[i]);
        stuck |= http_listener_free(r.http[i]) != 0;
    }
    stuck |= http_listener_free(r.admin) != 0;
    free(r.grpc);
    free(r.http);
    ingest_ctx_free(r.ictx);
    /* After a drain that timed out, live connections still have timers on
     * the loop and h2o asserts if it is destroyed; the process is exiting,
     * so leave it to the teardown. */
    if (!stuck)
        worker_release_loop(r.loop);
    return NULL;
}

int server_start(server *s, char *err, size_t errlen)
{
    for (unsigned w = 0; w < s->n_workers; w++) {
        int rc = pthread_create(&s->workers[w].thread, NULL, worker_main, &s->workers[w]);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker thread: %s", strerror(rc));
            server_stop(s);
            server_wait(s);
            return -1;
        }
        s->workers[w].started = 1;
    }
    atomic_store(&s->admin->serving, 1);
    return 0;
}

void server_stop(server *s)
{
    atomic_store(&s->admin->serving, 0);
    atomic_store(&s->stopping, 1);
}

void server_wait(server *s)
{
    for (unsigned w = 0; w < s->n_workers; w++)
        if (s->workers[w].started) {
            pthread_join(s->workers[w].thread, NULL);
            s->workers[w].started = 0;
        }
}

void server_reload_tls(server *s)
{
    for (size_t i = 0; i < s->n_plans; i++) {
        const listener_plan *p = &s->plans[i];
        char err[512], q[600];
        if (p->tls == NULL)
            continue;
        if (tls_reload(p->tls, err, sizeof(err)) == 0)
            log_info("TLS certificate reloaded", "listener=%s", p->cfg->name);
        else
            log_error("TLS reload failed, keeping the previous certificate", "listener=%s error=%s",
                      p->cfg->name, log_quote(q, sizeof(q), err));
    }
}

void server_free(server *s)
{
    if (s == NULL)
        return;
    if (s->workers != NULL && s->workers[0].grpc_fds != NULL) {
        /* Sockets never handed to a listener (failed start) are closed here. */
        for (unsigned w = 0; w < s->n_workers; w++) {
            for (size_t i = 0; i < s->n_plans; i++) {
                if (s->workers[w].grpc_fds[i] >= 0)
                    close(s->workers[w].grpc_fds[i]);
                if (s->workers[w].http_fds[i] >= 0)
                    close(s->workers[w].http_fds[i]);
            }
            if (s->workers[w].admin_fd >= 0)
                close(s->workers[w].admin_fd);
        }
        free(s->workers[0].grpc_fds);
    }
    free(s->workers);
    for (size_t i = 0; i < s->n_plans && s->plans != NULL; i++)
        plan_release(&s->plans[i]);
    free(s->plans);
    http_site_free(s->admin_site);
    free(s);
}
