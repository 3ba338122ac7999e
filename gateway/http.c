#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "accept.h"
#include "clock.h"
#include "log.h"
#include "proxy.h"
#include "tls.h"

#define HTTP_MAX_HANDLERS 16

struct http_site {
    h2o_globalconf_t conf;
    h2o_hostconf_t *host;
    uint32_t header_timeout_ms;
    conn_gate *gate;
    struct {
        h2o_handler_t *h;
        int (*on_req)(h2o_handler_t *self, h2o_req_t *req);
    } handlers[HTTP_MAX_HANDLERS];
    size_t n_handlers;
};

struct http_listener {
    h2o_context_t ctx; /* first: handlers map req->conn->ctx back to us */
    h2o_accept_ctx_t accept;
    http_site *site;
    conn_acceptor acceptor;
    proxy_mode proxy_protocol;
    proxy_waiters proxy; /* connections still sending their PROXY header */
    h2o_timeout_t sweep_every;
    h2o_timeout_entry_t sweep;
    void *worker_data;
};

/* HTTP/1.1 timeouts. h2o 2.2.5 has one timer per HTTP/1 connection, armed
 * with ctx.http1.req_timeout both when a connection opens and when a
 * keep-alive connection waits for its next request (and again for a body),
 * so it cannot tell "idle between requests" (idle_timeout) from "a request
 * that is slow to arrive" (header_timeout). req_timeout is therefore set to
 * idle_timeout, and a sweep here (every header_timeout/4, at most 1 s)
 * enforces header_timeout from the sockets' public state:
 *   - a connection that has not completed a request (reached a handler)
 *     within header_timeout of its accept is closed (as before, and as the
 *     gRPC listener closes one without its preface);
 *   - after a request, the first new byte (bytes_read moved, or bytes
 *     waiting in sock->input) starts the next request's clock: it must
 *     reach a handler within header_timeout, headers and body together.
 * HTTP/2 connections (seen by a request, or ALPN h2) are left to h2o's
 * http2.idle_timeout. Closing is shutdown(2) on the descriptor: h2o sees
 * the read fail and closes the connection itself. */
typedef struct http_conn {
    conn_slot slot;
    size_t mark_bytes;   /* sock->bytes_read when the last request reached a handler */
    uint64_t started_ns; /* when the sweep saw the next request begin; 0: idle */
    unsigned requests;
    int h2;
} http_conn;

typedef struct otlp_handler {
    h2o_handler_t super;
    ingest_limits lim;
    const char *listener_name;
} otlp_handler;

/* Bodies up to twice the limit reach the handler so that it, not h2o, answers
 * the common "slightly too large" case with a proper google.rpc.Status;
 * beyond that h2o refuses on its own (plain 413) without buffering it. */
#define HTTP_H2O_BODY_SLACK 2

/* At shutdown, how long an HTTP/1.1 connection may stay idle or keep
 * sending its request. */
#define HTTP_SHUTDOWN_IDLE_MS 1000

http_site *http_site_new(const http_site_settings *s)
{
    http_site *site = calloc(1, sizeof(*site));
    if (site == NULL)
        return NULL;
    h2o_config_init(&site->conf);
    site->conf.server_name = h2o_iovec_init(H2O_STRLIT("otlp-gateway"));
    site->conf.max_request_entity_size = s->max_body_bytes;
    /* see http_conn: header_timeout is enforced by the listener's sweep */
    site->conf.http1.req_timeout = s->idle_timeout_ms > s->header_timeout_ms ? s->idle_timeout_ms
                                                                              : s->header_timeout_ms;
    site->conf.http2.idle_timeout = s->idle_timeout_ms;
    site->header_timeout_ms = s->header_timeout_ms;
    site->gate = s->gate;
    site->host = h2o_config_register_host(&site->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    return site;
}

void http_site_free(http_site *site)
{
    if (site == NULL)
        return;
    h2o_config_dispose(&site->conf);
    free(site);
}

void http_site_set_gate(http_site *site, conn_gate *gate) { site->gate = gate; }

/* Every request reaches its handler through here: the connection's record
 * learns that a request arrived (see http_conn). */
static int dispatch(h2o_handler_t *self, h2o_req_t *req)
{
    http_listener *l = (http_listener *)req->conn->ctx;
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    http_conn *c = (http_conn *)conn_slot_of(sock);
    if (c != NULL) {
        c->requests++;
        c->mark_bytes = sock->bytes_read;
        c->started_ns = 0;
        if (req->version >= 0x200)
            c->h2 = 1;
    }
    for (size_t i = 0; i < l->site->n_handlers; i++)
        if (l->site->handlers[i].h == self)
            return l->site->handlers[i].on_req(self, req);
    return -1;
}

h2o_handler_t *http_site_handler(http_site *site, const char *path, size_t size,
                                 int (*on_req)(h2o_handler_t *self, h2o_req_t *req))
{
    if (site->n_handlers == HTTP_MAX_HANDLERS)
        return NULL;
    h2o_pathconf_t *pc = h2o_config_register_path(site->host, path, 0);
    h2o_handler_t *h = h2o_create_handler(pc, size);
    if (h != NULL) {
        h->on_req = dispatch;
        site->handlers[site->n_handlers].h = h;
        site->handlers[site->n_handlers++].on_req = on_req;
    }
    return h;
}

void *http_worker_data(const h2o_req_t *req) { return ((http_listener *)req->conn->ctx)->worker_data; }

void http_respond(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_send_inline(req, body, len);
}

static const char *const content_types[] = {"application/x-protobuf", "application/json"};

/* Media type before any parameters, case-insensitive; -1 if unsupported. */
static int parse_content_type(const h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i < 0)
        return -1;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = 0;
    while (n < v.len && v.base[n] != ';' && v.base[n] != ' ')
        n++;
    for (int e = 0; e < 2; e++)
        if (h2o_lcstris(v.base, n, content_types[e], strlen(content_types[e])))
            return e;
    return -1;
}

/* 1 gzip, 0 identity/absent, -1 unsupported. */
static int parse_content_encoding(const h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_ENCODING, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (h2o_lcstris(v.base, v.len, H2O_STRLIT("gzip")))
        return 1;
    return h2o_lcstris(v.base, v.len, H2O_STRLIT("identity")) ? 0 : -1;
}

static void fill_origin(h2o_req_t *req, const otlp_handler *h, uint64_t start, req_origin *o)
{
    memset(o, 0, sizeof(*o));
    o->listener = h->listener_name;
    o->transport = REQ_HTTP;
    o->peer_len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&o->peer);
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    o->tls = sock != NULL && sock->ssl != NULL;
    if (o->tls) /* the pool lives as long as the request */
        o->client_cert_subject = tls_peer_subject(tls_socket_ssl(sock), h2o_mem_alloc_pool(&req->pool, TLS_SUBJECT_MAX),
                                                  TLS_SUBJECT_MAX);
    ssize_t a = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (a >= 0) {
        o->authorization = req->headers.entries[a].value.base;
        o->authorization_len = req->headers.entries[a].value.len;
    }
    o->start_ns = start;
}

/* Answer with a result: body in the request's encoding (protobuf when the
 * request's own type is unusable), Retry-After when retryable. */
static void respond_result(h2o_req_t *req, otlp_signal sig, otlp_encoding enc, const ingest_result *res)
{
    buf body = BUF_INIT;
    if (ingest_response_body(sig, enc, res, &body) != 0) {
        buf_free(&body);
        http_respond(req, 500, "text/plain", H2O_STRLIT("out of memory\n"));
        return;
    }
    if (res->status == REQ_UNAUTHENTICATED) {
        static const char plain[] = "Bearer realm=\"otlp-gateway\"";
        static const char bad[] = "Bearer realm=\"otlp-gateway\", error=\"invalid_token\"";
        const char *v = res->token_rejected ? bad : plain;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, v, strlen(v));
    }
    if (res->retry_after_s > 0) {
        char *v = h2o_mem_alloc_pool(&req->pool, 16);
        int n = snprintf(v, 16, "%u", res->retry_after_s);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v, (size_t)n);
    }
    http_respond(req, ingest_http_status(res->status), content_types[enc], body.data, body.len);
    buf_free(&body);
}

static void refuse(h2o_req_t *req, otlp_signal sig, otlp_encoding enc, req_status st, const char *msg,
                   uint64_t start)
{
    ingest_result res = {.status = st};
    snprintf(res.message, sizeof(res.message), "%s", msg);
    ingest_count_refused(REQ_HTTP, sig, st, start);
    respond_result(req, sig, enc, &res);
}

static int on_otlp_req(h2o_handler_t *self, h2o_req_t *req)
{
    otlp_handler *h = (otlp_handler *)self;
    uint64_t start = clock_now_ns();
    int sig = ingest_signal_from_http_path(req->path_normalized.base, req->path_normalized.len);
    if (sig < 0) {
        http_respond(req, 404, "text/plain", H2O_STRLIT("not found: OTLP/HTTP paths are /v1/traces, /v1/metrics, /v1/logs\n"));
        return 0;
    }
    int ct = parse_content_type(req);
    otlp_encoding enc = ct < 0 ? OTLP_PROTOBUF : (otlp_encoding)ct;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        req->res.status = 405;
        req->res.reason = "Method Not Allowed";
        ingest_count_refused(REQ_HTTP, (otlp_signal)sig, REQ_INVALID, start);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
        h2o_send_inline(req, H2O_STRLIT("method not allowed: use POST\n"));
        return 0;
    }
    if (ct < 0) {
        refuse(req, (otlp_signal)sig, enc, REQ_UNSUPPORTED_MEDIA,
               "unsupported content-type: use application/x-protobuf or application/json", start);
        return 0;
    }
    int gz = parse_content_encoding(req);
    if (gz < 0) {
        refuse(req, (otlp_signal)sig, enc, REQ_UNSUPPORTED_MEDIA, "unsupported content-encoding: use gzip or identity",
               start);
        return 0;
    }
    /* Two tokens are ambiguous (which one is the client?): refuse, as the
     * gRPC listener does, rather than pick one. */
    ssize_t first = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (first >= 0 && h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, first) >= 0) {
        refuse(req, (otlp_signal)sig, enc, REQ_UNAUTHENTICATED, "more than one Authorization header", start);
        return 0;
    }
    req_origin origin;
    fill_origin(req, h, start, &origin);
    ingest_result res;
    ingest_export(http_worker_data(req), &h->lim, (otlp_signal)sig, enc, &origin, (const uint8_t *)req->entity.base,
                  req->entity.base ? req->entity.len : 0, gz, &res);
    respond_result(req, (otlp_signal)sig, enc, &res);
    return 0;
}

http_site *http_otlp_site_new(const http_site_settings *s, const ingest_limits *lim)
{
    http_site_settings wide = *s;
    wide.max_body_bytes = s->max_body_bytes * HTTP_H2O_BODY_SLACK;
    http_site *site = http_site_new(&wide);
    if (site == NULL)
        return NULL;
    otlp_handler *h = (otlp_handler *)http_site_handler(site, "/", sizeof(*h), on_otlp_req);
    if (h == NULL) {
        http_site_free(site);
        return NULL;
    }
    h->lim = *lim;
    h->listener_name = s->name;
    return site;
}

/* h2o's TLS handshake and HTTP/1 accept both start with the bytes already
 * in sock->input, i.e. those that came right behind the PROXY header. */
static void on_proxy_done(h2o_socket_t *sock, void *data)
{
    http_listener *l = data;
    conn_slot *slot = conn_slot_of(sock);
    if (slot != NULL) /* header_timeout for the first request starts now */
        slot->accepted_ns = clock_now_ns();
    h2o_accept(&l->accept, sock);
}

static void on_conn(h2o_socket_t *sock, void *data)
{
    http_listener *l = data;
    if (l->proxy_protocol != PROXY_NONE)
        proxy_accept(&l->proxy, sock, l->proxy_protocol, on_proxy_done, l);
    else
        h2o_accept(&l->accept, sock);
}

static uint32_t sweep_interval(uint32_t header_timeout_ms)
{
    uint32_t t = header_timeout_ms / 4;
    return t < 10 ? 10 : t > 1000 ? 1000 : t;
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    http_listener *l = H2O_STRUCT_FROM_MEMBER(http_listener, sweep, entry);
    uint64_t now = clock_now_ns(), limit = (uint64_t)l->site->header_timeout_ms * 1000000u;
    for (h2o_linklist_t *p = l->acceptor.slots.next; p != &l->acceptor.slots; p = p->next) {
        http_conn *c = H2O_STRUCT_FROM_MEMBER(http_conn, slot.link, p);
        h2o_socket_t *sock = c->slot.sock;
        if (c->h2)
            continue;
        /* h2o makes its OpenSSL object only when the client's first TLS
         * bytes arrive: until then (a client that connects and says
         * nothing) there is no protocol to ask for, and asking reads a NULL
         * SSL. Such a connection is held to header_timeout below. */
        if (sock->ssl != NULL && h2o_socket_get_ssl_protocol_version(sock) != NULL) {
            h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(sock);
            if (h2o_memis(proto.base, proto.len, H2O_STRLIT("h2"))) {
                c->h2 = 1;
                continue;
            }
        }
        int late;
        if (c->requests == 0) {
            late = now - c->slot.accepted_ns > limit;
        } else if (sock->bytes_read != c->mark_bytes || sock->input->size > 0) {
            if (c->started_ns == 0)
                c->started_ns = now;
            late = now - c->started_ns > limit;
        } else {
            late = 0;
        }
        if (late) {
            log_debug("http header timeout", "requests=%u", c->requests);
            shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
            c->h2 = 1; /* once */
        }
    }
    h2o_timeout_link(l->ctx.loop, &l->sweep_every, &l->sweep);
}

http_listener *http_listener_start(http_site *site, h2o_evloop_t *loop, int listen_fd, SSL_CTX *ssl_ctx,
                                   proxy_mode proxy_protocol, void *worker_data)
{
    http_listener *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    h2o_context_init(&l->ctx, loop, &site->conf);
    l->site = site;
    l->accept.ctx = &l->ctx;
    l->accept.hosts = site->conf.hosts;
    l->accept.ssl_ctx = ssl_ctx;
    l->worker_data = worker_data;
    l->proxy_protocol = proxy_protocol;
    proxy_waiters_init(&l->proxy, loop, site->header_timeout_ms);
    h2o_timeout_init(loop, &l->sweep_every, sweep_interval(site->header_timeout_ms));
    l->sweep.cb = on_sweep;
    h2o_timeout_link(loop, &l->sweep_every, &l->sweep);
    /* Drain a few pending connections per wake-up, not all: keeps one busy
     * listener from starving the loop's other sockets. */
    conn_acceptor_start(&l->acceptor, loop, listen_fd, site->gate, sizeof(http_conn), 16, on_conn, l);
    return l;
}

void http_listener_shutdown(http_listener *l)
{
    conn_acceptor_stop(&l->acceptor);
    proxy_waiters_close(&l->proxy);
    /* HTTP/2 connections get GOAWAY; HTTP/1.1 ones close after the request
     * in progress. */
    h2o_context_request_shutdown(&l->ctx);
    /* h2o 2.2.5 leaves idle HTTP/1.1 keep-alive connections open until their
     * request timeout, which would stretch every shutdown to idle_timeout.
     * Entries expire at registered_at + timeout, so shortening the timeout
     * closes idle connections within a second while a request still being
     * uploaded keeps that second to finish. */
    if (l->ctx.http1.req_timeout.timeout > HTTP_SHUTDOWN_IDLE_MS)
        l->ctx.http1.req_timeout.timeout = HTTP_SHUTDOWN_IDLE_MS;
}

static size_t list_len(const h2o_linklist_t *anchor)
{
    size_t n = 0;
    for (const h2o_linklist_t *p = anchor->next; p != anchor; p = p->next)
        n++;
    return n;
}

size_t http_listener_connections(const http_listener *l)
{
    return list_len(&l->ctx.http1._conns) + list_len(&l->ctx.http2._conns);
}

int http_listener_free(http_listener *l)
{
    if (l == NULL)
        return 0;
    conn_acceptor_dispose(&l->acceptor);
    if (h2o_timeout_is_linked(&l->sweep))
        h2o_timeout_unlink(&l->sweep);
    h2o_timeout_dispose(l->ctx.loop, &l->sweep_every);
    proxy_waiters_dispose(&l->proxy);
    /* h2o cannot dispose a context with live connections; at exit after a
     * timed-out drain those are left to the process teardown. */
    if (http_listener_connections(l) == 0) {
        /* request_shutdown arms HTTP/2's graceful-shutdown timer even with no
         * connection left; h2o asserts that no timer is pending at dispose. */
        if (h2o_timeout_is_linked(&l->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&l->ctx.http2._graceful_shutdown_timeout);
        h2o_context_dispose(&l->ctx);
        /* h2o 2.2.5's evloop h2o_multithread_destroy_queue closes the queue's
         * sockets but never frees the queue itself. */
        free(l->ctx.queue);
        free(l);
        return 0;
    }
    return -1;
}
