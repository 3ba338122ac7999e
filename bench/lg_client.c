/* lg_client: see lg_client.h. */
#include "lg_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

const char *const lg_fail_names[LG_F_KINDS] = {"reset", "timeout", "conn_lost", "no_grpc_status", "bad_response",
                                               "partial"};

#define OUT_CHUNK (256 * 1024)
#define RESP_MAX (64 * 1024)

struct lg_conn;
struct lg_thread;

typedef struct lg_slot {
    struct lg_conn *c;
    int busy;
    int32_t sid;
    buf body;
    size_t off;
    size_t spans;
    uint64_t t_intended, t_sent;
    int status, grpc_status; /* -1: not seen */
    int timed_out;
    buf resp;
} lg_slot;

typedef struct lg_conn {
    struct lg_thread *t;
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    lg_slot *slots;
    unsigned busy;
    uint32_t events; /* registered with epoll */
    uint8_t *out;
    size_t out_len, out_off;
    int dead;
} lg_conn;

typedef struct lg_thread {
    const lg_config *cfg;
    SSL_CTX *ctx;
    pthread_t tid;
    int ep;
    lg_conn *conns;
    unsigned nconn, rr;
    lg_payload gen;
    lg_result res;
    uint64_t quota; /* 0: no count limit */
    uint64_t issued, inflight;
    uint64_t t0, deadline, interval; /* ns; deadline 0: none; interval 0: closed loop */
    char err[256]; /* the last reconnect failure, or what stopped the thread */
    int fatal;
} lg_thread;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int fmt_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- response parsing ---- */

static int get_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (unsigned s = 0; s < 64 && *i < n; s += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Skips a field of wire type wt at *i; -1 if truncated or unknown. */
static int skip_field(const uint8_t *p, size_t n, size_t *i, unsigned wt)
{
    uint64_t v;
    switch (wt) {
    case 0: return get_varint(p, n, i, &v);
    case 1: if (n - *i < 8) return -1; *i += 8; return 0;
    case 5: if (n - *i < 4) return -1; *i += 4; return 0;
    case 2:
        if (get_varint(p, n, i, &v) != 0 || v > n - *i)
            return -1;
        *i += v;
        return 0;
    default: return -1;
    }
}

/* rejected_spans of ExportTracePartialSuccess, or -1. */
static int64_t partial_rejected(const uint8_t *p, size_t n)
{
    uint64_t rejected = 0, key;
    size_t i = 0;
    while (i < n) {
        if (get_varint(p, n, &i, &key) != 0)
            return -1;
        if (key == (1 << 3 | 0)) {
            if (get_varint(p, n, &i, &rejected) != 0)
                return -1;
        } else if (skip_field(p, n, &i, (unsigned)(key & 7)) != 0) {
            return -1;
        }
    }
    return rejected > INT64_MAX ? -1 : (int64_t)rejected;
}

int64_t lg_acked_spans(const uint8_t *p, size_t n, uint64_t spans)
{
    uint64_t key, len;
    int64_t rejected = 0;
    size_t i = 0;
    while (i < n) {
        if (get_varint(p, n, &i, &key) != 0)
            return -1;
        if (key == (1 << 3 | 2)) {
            if (get_varint(p, n, &i, &len) != 0 || len > n - i)
                return -1;
            rejected = partial_rejected(p + i, (size_t)len);
            if (rejected < 0)
                return -1;
            i += len;
        } else if (skip_field(p, n, &i, (unsigned)(key & 7)) != 0) {
            return -1;
        }
    }
    if ((uint64_t)rejected > spans)
        return -1;
    return (int64_t)(spans - (uint64_t)rejected);
}

/* The Export response inside a gRPC body: one uncompressed frame. */
static int64_t grpc_acked_spans(const buf *b, uint64_t spans)
{
    const uint8_t *p = (const uint8_t *)b->data;
    if (b->len < 5 || p[0] != 0)
        return -1;
    uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (len != b->len - 5)
        return -1;
    return lg_acked_spans(p + 5, len, spans);
}

/* ---- completion ---- */

static void release(lg_slot *s)
{
    s->busy = 0;
    s->c->busy--;
    s->c->t->inflight--;
}

static void fail(lg_result *r, unsigned kind)
{
    r->failed++;
    r->fail[kind]++;
}

static void complete(lg_slot *s, uint32_t error_code)
{
    lg_thread *t = s->c->t;
    lg_result *r = &t->res;
    uint64_t now = now_ns();
    int grpc = t->cfg->proto == LG_GRPC;
    r->end_ns = now;
    if (s->timed_out) {
        fail(r, LG_F_TIMEOUT);
    } else if (error_code != 0) {
        fail(r, LG_F_RESET);
    } else if (s->status != 200) {
        r->failed++;
        r->http[s->status > 0 && s->status < 600 ? s->status : 0]++;
    } else if (grpc && s->grpc_status < 0) {
        fail(r, LG_F_NO_GRPC_STATUS);
    } else if (grpc && s->grpc_status != 0) {
        r->failed++;
        r->grpc[s->grpc_status < 16 ? s->grpc_status : 16]++;
    } else {
        int64_t acked = grpc ? grpc_acked_spans(&s->resp, s->spans)
                             : lg_acked_spans((const uint8_t *)s->resp.data, s->resp.len, s->spans);
        if (acked < 0) {
            fail(r, LG_F_BAD_RESPONSE);
        } else {
            r->spans_acked += (uint64_t)acked;
            if ((uint64_t)acked < s->spans) {
                fail(r, LG_F_PARTIAL);
            } else {
                r->ok++;
                lg_hist_add(&r->latency, now - (t->interval ? s->t_intended : s->t_sent));
            }
        }
    }
    release(s);
}

/* ---- nghttp2 callbacks ---- */

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    lg_slot *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (!s)
        return 0;
    char v[16];
    size_t n = valuelen < sizeof v - 1 ? valuelen : sizeof v - 1;
    memcpy(v, value, n);
    v[n] = 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        s->status = atoi(v);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        s->grpc_status = (valuelen >= 1 && valuelen <= 2 && strspn(v, "0123456789") == valuelen) ? atoi(v) : 99;
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *user)
{
    (void)flags;
    (void)user;
    lg_slot *s = nghttp2_session_get_stream_user_data(h2, sid);
    if (s && s->resp.len + len <= RESP_MAX && buf_append(&s->resp, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_close(nghttp2_session *h2, int32_t sid, uint32_t error_code, void *user)
{
    (void)user;
    lg_slot *s = nghttp2_session_get_stream_user_data(h2, sid);
    if (s && s->busy)
        complete(s, error_code);
    return 0;
}

static ssize_t read_body(nghttp2_session *h2, int32_t sid, uint8_t *out, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)sid;
    (void)user;
    lg_slot *s = src->ptr;
    size_t n = s->body.len - s->off;
    if (n > len)
        n = len;
    memcpy(out, s->body.data + s->off, n);
    s->off += n;
    if (s->off == s->body.len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- connections ---- */

/* Bytes read or written; 0 would block; -1 EOF or error. */
static ssize_t io_read(lg_conn *c, void *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    ssize_t r = read(c->fd, p, n);
    if (r > 0)
        return r;
    return r < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
}

static ssize_t io_write(lg_conn *c, const void *p, size_t n)
{
    if (c->ssl) {
        int w = SSL_write(c->ssl, p, (int)n);
        if (w > 0)
            return w;
        int e = SSL_get_error(c->ssl, w);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    ssize_t w = write(c->fd, p, n);
    if (w >= 0)
        return w;
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

static int tcp_connect(const lg_config *cfg, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(cfg->host, cfg->port, &hints, &ai);
    if (rc != 0)
        return fmt_err(err, errlen, "%s:%s: %s", cfg->host, cfg->port, gai_strerror(rc));
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        saved = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return fmt_err(err, errlen, "connect %s:%s: %s", cfg->host, cfg->port, strerror(saved));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int tls_handshake(lg_conn *c, const lg_config *cfg, SSL_CTX *ctx, char *err, size_t errlen)
{
    c->ssl = SSL_new(ctx);
    if (!c->ssl)
        return fmt_err(err, errlen, "SSL_new failed");
    SSL_set_fd(c->ssl, c->fd);
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, cfg->host, ip) == 1 || inet_pton(AF_INET6, cfg->host, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, cfg->host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, cfg->host);
        X509_VERIFY_PARAM_set1_host(vp, cfg->host, 0);
    }
    if (SSL_connect(c->ssl) != 1) {
        char e[200];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        long v = SSL_get_verify_result(c->ssl);
        return fmt_err(err, errlen, "TLS handshake with %s:%s: %s%s%s", cfg->host, cfg->port, e,
                       v != X509_V_OK ? "; certificate: " : "", v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    }
    const unsigned char *proto;
    unsigned plen;
    SSL_get0_alpn_selected(c->ssl, &proto, &plen);
    if (plen != 2 || memcmp(proto, "h2", 2) != 0)
        return fmt_err(err, errlen, "%s:%s did not select ALPN h2", cfg->host, cfg->port);
    return 0;
}

static void conn_close(lg_conn *c)
{
    if (c->h2)
        nghttp2_session_del(c->h2);
    c->h2 = NULL;
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->out_len = c->out_off = 0;
    c->events = 0;
}

/* Connects (blocking: before the load starts, or to replace a lost
 * connection), then switches to non-blocking. */
static int conn_open(lg_conn *c, const lg_config *cfg, SSL_CTX *ctx, char *err, size_t errlen)
{
    c->fd = tcp_connect(cfg, err, errlen);
    if (c->fd < 0)
        return -1;
    if (cfg->tls && tls_handshake(c, cfg, ctx, err, errlen) != 0) {
        conn_close(c);
        return -1;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        conn_close(c);
        return fmt_err(err, errlen, "out of memory");
    }
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    int rc = nghttp2_session_client_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        conn_close(c);
        return fmt_err(err, errlen, "nghttp2: %s", nghttp2_strerror(rc));
    }
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    c->dead = 0;
    return 0;
}

static void set_events(lg_conn *c, uint32_t ev)
{
    if (c->fd < 0 || ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->t->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e);
    c->events = ev;
}

/* Writes what nghttp2 has to send; 0, or -1 when the connection failed. */
static int conn_flush(lg_conn *c)
{
    for (;;) {
        if (c->out_off == c->out_len) {
            c->out_off = c->out_len = 0;
            while (c->out_len < OUT_CHUNK) {
                const uint8_t *p;
                ssize_t n = nghttp2_session_mem_send(c->h2, &p);
                if (n < 0)
                    return -1;
                if (n == 0)
                    break;
                if (c->out_len + (size_t)n > OUT_CHUNK * 2) { /* keep the rest for the next round */
                    uint8_t *o = realloc(c->out, c->out_len + (size_t)n);
                    if (!o)
                        return -1;
                    c->out = o;
                }
                memcpy(c->out + c->out_len, p, (size_t)n);
                c->out_len += (size_t)n;
            }
            if (c->out_len == 0)
                break;
        }
        ssize_t w = io_write(c, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0)
            return -1;
        if (w == 0) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return 0;
        }
        c->out_off += (size_t)w;
    }
    set_events(c, EPOLLIN);
    return 0;
}

/* The connection failed or the server closed it: its streams fail, and a new
 * connection takes its place (dead if that fails too). */
static void conn_lost(lg_conn *c)
{
    lg_thread *t = c->t;
    for (unsigned i = 0; i < t->cfg->streams; i++) {
        lg_slot *s = &c->slots[i];
        if (s->busy) {
            t->res.end_ns = now_ns();
            fail(&t->res, s->timed_out ? LG_F_TIMEOUT : LG_F_CONN_LOST);
            release(s);
        }
    }
    if (c->events)
        epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    conn_close(c);
    char err[256];
    if (conn_open(c, t->cfg, t->ctx, err, sizeof err) != 0 || conn_flush(c) != 0) {
        conn_close(c);
        c->dead = 1;
        t->res.dead_conns++;
        memcpy(t->err, err, sizeof t->err); /* same size: what the last reopen failed on */
        return;
    }
    t->res.reconnects++;
}

static void conn_event(lg_conn *c, uint32_t ev)
{
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        uint8_t in[64 * 1024];
        for (;;) {
            ssize_t n = io_read(c, in, sizeof in);
            if (n == 0)
                break;
            if (n < 0 || nghttp2_session_mem_recv(c->h2, in, (size_t)n) < 0) {
                conn_lost(c);
                return;
            }
        }
    }
    if (conn_flush(c) != 0 || (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))) {
        conn_lost(c);
        return;
    }
}

/* ---- load ---- */

static int submit(lg_thread *t, lg_conn *c, uint64_t intended, uint64_t now)
{
    const lg_config *cfg = t->cfg;
    lg_slot *s = NULL;
    for (unsigned i = 0; i < cfg->streams; i++)
        if (!c->slots[i].busy) {
            s = &c->slots[i];
            break;
        }
    int grpc = cfg->proto == LG_GRPC;
    if (lg_payload_request(&t->gen, &s->body, grpc) != 0)
        return fmt_err(t->err, sizeof t->err, "out of memory");
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", s->body.len);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[8 + LG_MAX_HEADERS] = {
        NV(":method", "POST"),
        NV(":scheme", cfg->tls ? "https" : "http"),
        NV(":authority", cfg->authority),
        NV(":path", cfg->path),
        NV("content-type", grpc ? "application/grpc" : "application/x-protobuf"),
    };
    size_t n = 5;
    if (grpc)
        nva[n++] = (nghttp2_nv)NV("te", "trailers");
    else
        nva[n++] = (nghttp2_nv)NV("content-length", clen);
    for (unsigned i = 0; i < cfg->headers; i++)
        nva[n++] = (nghttp2_nv)NV(cfg->hdr_name[i], cfg->hdr_value[i]);
#undef NV
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};
    int32_t sid = nghttp2_submit_request(c->h2, NULL, nva, n, &prd, s);
    if (sid < 0)
        return fmt_err(t->err, sizeof t->err, "nghttp2_submit_request: %s", nghttp2_strerror(sid));
    s->busy = 1;
    s->sid = sid;
    s->off = 0;
    s->spans = t->gen.shape.spans_per_request;
    s->t_intended = intended;
    s->t_sent = now;
    s->status = s->grpc_status = -1;
    s->timed_out = 0;
    buf_clear(&s->resp);
    c->busy++;
    t->inflight++;
    t->issued++;
    t->res.sent++;
    t->res.spans_sent += s->spans;
    t->res.bytes_sent += s->body.len;
    return 0;
}

/* The next live connection with a free stream, in turn; NULL if none. */
static lg_conn *pick(lg_thread *t)
{
    for (unsigned k = 0; k < t->nconn; k++) {
        lg_conn *c = &t->conns[t->rr++ % t->nconn];
        if (!c->dead && c->busy < t->cfg->streams)
            return c;
    }
    return NULL;
}

static uint64_t intended_at(const lg_thread *t, uint64_t k) { return t->t0 + k * t->interval; }

/* May request number `issued` still start (at `at`)? */
static int may_issue(const lg_thread *t, uint64_t at)
{
    return (t->quota == 0 || t->issued < t->quota) && (t->deadline == 0 || at < t->deadline);
}

static int dispatch(lg_thread *t, uint64_t now)
{
    for (;;) {
        uint64_t at = t->interval ? intended_at(t, t->issued) : now;
        if (!may_issue(t, at) || at > now)
            return 0;
        lg_conn *c = pick(t);
        if (!c)
            return 0;
        if (submit(t, c, at, now) != 0)
            return -1;
        /* Send it now: building the next bodies takes a while, and the
         * server should not idle meanwhile. */
        if (conn_flush(c) != 0)
            conn_lost(c);
    }
}

static void check_timeouts(lg_thread *t, uint64_t now)
{
    uint64_t limit = (uint64_t)(t->cfg->timeout * 1e9);
    for (unsigned i = 0; i < t->nconn; i++) {
        lg_conn *c = &t->conns[i];
        for (unsigned k = 0; c->busy && k < t->cfg->streams; k++) {
            lg_slot *s = &c->slots[k];
            if (s->busy && !s->timed_out && now - s->t_sent > limit) {
                s->timed_out = 1;
                nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->sid, NGHTTP2_CANCEL);
            }
        }
    }
}

static void *thread_main(void *arg)
{
    lg_thread *t = arg;
    t->t0 = now_ns();
    t->res.start_ns = t->t0;
    t->res.end_ns = t->t0;
    if (t->cfg->duration > 0)
        t->deadline = t->t0 + (uint64_t)(t->cfg->duration * 1e9);
    uint64_t next_check = t->t0 + 100000000ULL;
    struct epoll_event evs[64];
    for (;;) {
        uint64_t now = now_ns();
        if (dispatch(t, now) != 0) {
            t->fatal = 1;
            break;
        }
        for (unsigned i = 0; i < t->nconn; i++)
            if (!t->conns[i].dead && t->conns[i].busy && conn_flush(&t->conns[i]) != 0)
                conn_lost(&t->conns[i]);
        uint64_t at = t->interval ? intended_at(t, t->issued) : now;
        int more = may_issue(t, at);
        if (!more && t->inflight == 0)
            break;
        if (!pick(t) && t->inflight == 0) { /* every connection lost and not reopened */
            t->fatal = 1;
            break;
        }
        /* Open loop: sleep until the next request is due; one already due
         * waits for a stream, which only a completion (an event) frees. */
        uint64_t wait = 100000000ULL;
        if (t->interval && more && at > now && at - now < wait)
            wait = at - now;
        struct timespec ts = {(time_t)(wait / 1000000000ULL), (long)(wait % 1000000000ULL)};
        int n = epoll_pwait2(t->ep, evs, 64, &ts, NULL);
        for (int i = 0; i < n; i++)
            conn_event(evs[i].data.ptr, evs[i].events);
        now = now_ns();
        if (now >= next_check) {
            check_timeouts(t, now);
            next_check = now + 100000000ULL;
        }
    }
    return NULL;
}

static SSL_CTX *tls_ctx(const lg_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fmt_err(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = "\x02h2";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    if (cfg->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = cfg->cacert ? SSL_CTX_load_verify_locations(ctx, cfg->cacert, NULL)
                             : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            fmt_err(err, errlen, "cannot load CA certificates%s%s", cfg->cacert ? " from " : "",
                    cfg->cacert ? cfg->cacert : "");
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

static void merge(lg_result *dst, const lg_result *src)
{
    dst->sent += src->sent;
    dst->ok += src->ok;
    dst->failed += src->failed;
    dst->spans_sent += src->spans_sent;
    dst->spans_acked += src->spans_acked;
    dst->bytes_sent += src->bytes_sent;
    for (size_t i = 0; i < 600; i++)
        dst->http[i] += src->http[i];
    for (size_t i = 0; i < 17; i++)
        dst->grpc[i] += src->grpc[i];
    for (size_t i = 0; i < LG_F_KINDS; i++)
        dst->fail[i] += src->fail[i];
    dst->reconnects += src->reconnects;
    dst->dead_conns += src->dead_conns;
    if (dst->start_ns == 0 || src->start_ns < dst->start_ns)
        dst->start_ns = src->start_ns;
    if (src->end_ns > dst->end_ns)
        dst->end_ns = src->end_ns;
    lg_hist_merge(&dst->latency, &src->latency);
}

static void thread_free(lg_thread *t)
{
    for (unsigned i = 0; t->conns && i < t->nconn; i++) {
        lg_conn *c = &t->conns[i];
        conn_close(c);
        for (unsigned k = 0; c->slots && k < t->cfg->streams; k++) {
            buf_free(&c->slots[k].body);
            buf_free(&c->slots[k].resp);
        }
        free(c->slots);
        free(c->out);
    }
    free(t->conns);
    lg_payload_free(&t->gen);
    if (t->ep >= 0)
        close(t->ep);
}

static int thread_setup(lg_thread *t, unsigned idx, char *err, size_t errlen)
{
    const lg_config *cfg = t->cfg;
    unsigned T = cfg->threads;
    t->nconn = cfg->conns / T + (idx < cfg->conns % T);
    t->quota = cfg->requests ? cfg->requests / T + (idx < cfg->requests % T) : 0;
    if (cfg->requests && t->quota == 0)
        t->quota = 1; /* never "unlimited" by rounding: lg_run checks requests >= threads */
    if (cfg->rate > 0)
        t->interval = (uint64_t)(1e9 * T / cfg->rate);
    if (t->interval == 0 && cfg->rate > 0)
        t->interval = 1;
    lg_hist_init(&t->res.latency);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    if (t->ep < 0)
        return fmt_err(err, errlen, "epoll_create1: %s", strerror(errno));
    if (lg_payload_init(&t->gen, &cfg->shape, cfg->seed + idx) != 0)
        return fmt_err(err, errlen, "bad payload shape or out of memory");
    t->conns = calloc(t->nconn, sizeof *t->conns);
    if (!t->conns)
        return fmt_err(err, errlen, "out of memory");
    for (unsigned i = 0; i < t->nconn; i++) {
        lg_conn *c = &t->conns[i];
        c->t = t;
        c->fd = -1;
        c->slots = calloc(cfg->streams, sizeof *c->slots);
        c->out = malloc(OUT_CHUNK * 2);
        if (!c->slots || !c->out)
            return fmt_err(err, errlen, "out of memory");
        for (unsigned k = 0; k < cfg->streams; k++)
            c->slots[k].c = c;
        if (conn_open(c, cfg, t->ctx, err, errlen) != 0)
            return -1;
        if (conn_flush(c) != 0)
            return fmt_err(err, errlen, "%s:%s: write failed", cfg->host, cfg->port);
    }
    return 0;
}

int lg_run(const lg_config *cfg, lg_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    lg_hist_init(&out->latency);
    if (cfg->threads < 1 || cfg->conns < cfg->threads || cfg->streams < 1 ||
        (cfg->requests && cfg->requests < cfg->threads) || (cfg->requests == 0 && cfg->duration <= 0))
        return fmt_err(err, errlen, "bad parameters (need threads <= conns, requests >= threads, and requests or duration)");
    SSL_CTX *ctx = NULL;
    if (cfg->tls && !(ctx = tls_ctx(cfg, err, errlen)))
        return -1;
    lg_thread *ts = calloc(cfg->threads, sizeof *ts);
    if (!ts) {
        SSL_CTX_free(ctx);
        return fmt_err(err, errlen, "out of memory");
    }
    int rc = 0;
    unsigned started = 0;
    for (unsigned i = 0; i < cfg->threads; i++) {
        ts[i].cfg = cfg;
        ts[i].ctx = ctx;
        ts[i].ep = -1;
    }
    for (unsigned i = 0; i < cfg->threads && rc == 0; i++)
        rc = thread_setup(&ts[i], i, err, errlen);
    for (unsigned i = 0; i < cfg->threads && rc == 0; i++) {
        if (pthread_create(&ts[i].tid, NULL, thread_main, &ts[i]) != 0) {
            rc = fmt_err(err, errlen, "pthread_create failed");
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(ts[i].tid, NULL);
        merge(out, &ts[i].res);
        if (ts[i].fatal && rc == 0)
            rc = fmt_err(err, errlen, "%s", ts[i].err[0] ? ts[i].err : "no connection left");
    }
    for (unsigned i = 0; i < cfg->threads; i++)
        thread_free(&ts[i]);
    free(ts);
    SSL_CTX_free(ctx);
    return rc;
}
