/* h2_client: see h2_client.h for the contract.
 *
 * A call is a heap object shared by its caller and the I/O thread. It sits
 * in `pending` until the I/O thread opens a stream for it, then in `active`
 * until the stream ends. The I/O thread sets `done` (under the lock) and
 * signals the caller; whichever side lets go last frees it: the caller
 * after done, the I/O side once the call is in no list and on no stream
 * (`in_io` 0). nghttp2 reaches a call only through its stream's user data,
 * which is cleared when a call is finished early (timeout, interrupt), so
 * a late frame of that stream finds nothing. */
#include "h2_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "iov.h"
#include "log.h"

/* Longest poll: the loop re-checks deadlines and flags at least this often. */
#define H2_POLL_MS 1000
#define H2_READ_CHUNK 16384
#define H2_MAX_FIELDS 64
/* Our receive window per stream and for the connection: replies are small,
 * but a large one should not stall on window updates. */
#define H2_WINDOW (1 << 20)

typedef struct h2_call h2_call;

typedef struct h2_list {
    h2_call *head, *tail;
    size_t n;
} h2_list;

struct h2_call {
    h2_call *next, *prev;
    h2_list *in;        /* the list holding it, or NULL */
    const h2_request *req;
    const char *path;
    uint64_t deadline;  /* clock_now_ms */
    int32_t stream_id;  /* > 0 while a stream of the current connection carries it */
    size_t head_sent;   /* head bytes given to nghttp2 */
    iov_cursor body;    /* the next body byte to give it */
    int status;         /* :status */
    int got_headers;    /* the server answered: it processed the request */
    int remote_ended;   /* the server ended the stream (END_STREAM) */
    int done, rc;       /* finished: the caller may return (lock) */
    int caller_gone;    /* (lock); set from the start for h2_client_start's calls */
    h2_done_fn done_fn; /* h2_client_start: called when finished, instead of signalling */
    void *done_ud;
    int in_io;          /* the I/O side still holds it (lock) */
    char err[256];
    pthread_cond_t cond;
};

struct h2_client {
    char *host, *port, *authority, *user_agent, *name;
    int tls;
    SSL_CTX *ctx;
    int insecure;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    int wake[2]; /* a byte here ends the I/O thread's poll */
    h2_list pending, active; /* (lock) */
    int interrupted, stopping; /* (lock) */
    metric_series *opened;

    /* I/O thread only */
    int fd;
    SSL *ssl;
    nghttp2_session *session;
    int write_blocked; /* the socket took less than offered: wait for POLLOUT */
    int goaway;        /* no new streams on this connection */
    int32_t goaway_last; /* a received GOAWAY's last-stream-id */
};

/* ---- lists and calls (lock held) ---- */

static void h2_list_push(h2_list *l, h2_call *k, int front)
{
    k->in = l;
    if (front) {
        k->prev = NULL;
        k->next = l->head;
        if (l->head != NULL)
            l->head->prev = k;
        else
            l->tail = k;
        l->head = k;
    } else {
        k->next = NULL;
        k->prev = l->tail;
        if (l->tail != NULL)
            l->tail->next = k;
        else
            l->head = k;
        l->tail = k;
    }
    l->n++;
}

static void h2_list_remove(h2_call *k)
{
    h2_list *l = k->in;
    if (l == NULL)
        return;
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        l->head = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    else
        l->tail = k->prev;
    k->next = k->prev = NULL;
    k->in = NULL;
    l->n--;
}

static void h2_call_free(h2_call *k)
{
    pthread_cond_destroy(&k->cond);
    free(k);
}

/* The I/O side lets go of k (out of its list, off its stream). */
static void h2_let_go(h2_call *k)
{
    h2_list_remove(k);
    k->stream_id = 0;
    k->in_io = 0;
    if (k->caller_gone)
        h2_call_free(k);
}

static void h2_finish(h2_call *k, int rc, const char *fmt, ...)
{
    if (k->done)
        return;
    k->rc = rc;
    k->err[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->err, sizeof(k->err), fmt, ap);
        va_end(ap);
    }
    k->done = 1;
    if (k->done_fn != NULL)
        k->done_fn(k->done_ud, rc, k->status, k->err);
    else
        pthread_cond_signal(&k->cond);
}

/* Back to the front of pending, to be sent again from the start. */
static void h2_requeue(h2_client *c, h2_call *k)
{
    h2_list_remove(k);
    k->stream_id = 0;
    k->head_sent = 0;
    k->body = (iov_cursor){0, 0};
    k->status = 0;
    k->got_headers = k->remote_ended = 0;
    h2_list_push(&c->pending, k, 1);
}

static void h2_wake(h2_client *c)
{
    char b = 1;
    (void)!write(c->wake[1], &b, 1); /* full pipe: a wake is pending anyway */
}

/* ---- socket I/O ---- */

/* > 0 bytes, 0 would block, -1 closed or failed. */
static ssize_t h2_io_read(h2_client *c, uint8_t *p, size_t n)
{
    if (c->ssl == NULL) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return r > 0 ? r : -1;
    }
    ERR_clear_error();
    int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

static ssize_t h2_io_write(h2_client *c, const uint8_t *p, size_t n)
{
    if (c->ssl == NULL) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return w > 0 ? w : -1;
    }
    ERR_clear_error();
    int w = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (w > 0)
        return w;
    int e = SSL_get_error(c->ssl, w);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* ---- nghttp2 callbacks (I/O thread) ---- */

static ssize_t h2_on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    h2_client *c = ud;
    ssize_t w = h2_io_write(c, data, len);
    if (w == 0) {
        c->write_blocked = 1;
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    return w < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : w;
}

static ssize_t h2_on_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len, uint32_t *flags,
                               nghttp2_data_source *src, void *ud)
{
    (void)src;
    (void)ud;
    h2_call *k = nghttp2_session_get_stream_user_data(s, stream_id);
    if (k == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* finished early: the stream is reset */
    const h2_request *r = k->req;
    size_t done = r->head_len - k->head_sent < len ? r->head_len - k->head_sent : len;
    if (done > 0)
        memcpy(buf, r->head + k->head_sent, done);
    k->head_sent += done;
    done += iov_read(r->body, r->n_body, &k->body, buf + done, len - done);
    if (k->head_sent == r->head_len && k->body.piece == r->n_body)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)done;
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                        const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    h2_call *k = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (k == NULL || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st = st * 10 + (value[i] >= '0' && value[i] <= '9' ? value[i] - '0' : 0);
        if (st >= 200) /* 1xx is informational: the answer is still to come */
            k->status = st;
        return 0;
    }
    if (k->req->on_header != NULL && nlen > 0 && name[0] != ':')
        k->req->on_header(k->req->ud, (const char *)name, nlen, (const char *)value, vlen);
    return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                      void *ud)
{
    (void)flags;
    (void)ud;
    h2_call *k = nghttp2_session_get_stream_user_data(s, stream_id);
    if (k != NULL && k->req->on_data != NULL)
        k->req->on_data(k->req->ud, data, len);
    return 0;
}

static int h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    h2_client *c = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = 1;
        c->goaway_last = f->goaway.last_stream_id;
        log_info("http2 goaway received", "backend=%s last_stream_id=%d error_code=%u", c->name,
                 f->goaway.last_stream_id, f->goaway.error_code);
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    h2_call *k = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (k == NULL)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && k->status >= 200)
        k->got_headers = 1;
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
        k->remote_ended = 1;
    return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t stream_id, uint32_t code, void *ud)
{
    h2_client *c = ud;
    h2_call *k = nghttp2_session_get_stream_user_data(s, stream_id);
    if (k == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(s, stream_id, NULL);
    pthread_mutex_lock(&c->lock);
    if (k->remote_ended && k->status >= 200) {
        h2_finish(k, H2_OK, NULL);
    } else if (code == NGHTTP2_REFUSED_STREAM && !k->got_headers && !k->done) {
        h2_requeue(c, k); /* not processed (refused, or above a GOAWAY's last stream): send again */
        pthread_mutex_unlock(&c->lock);
        return 0;
    } else if (code != NGHTTP2_NO_ERROR) {
        h2_finish(k, H2_ERROR, "stream reset by the server (%s)", nghttp2_http2_strerror(code));
    } else {
        h2_finish(k, H2_ERROR, "stream closed before the response ended");
    }
    h2_let_go(k);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* ---- connection ---- */

/* Waits for the socket to be ready for `events` until deadline; 0 ready,
 * -1 not (also when interrupted: shutdown does not wait for a connect). */
static int h2_wait_fd(h2_client *c, int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = clock_now_ms();
        pthread_mutex_lock(&c->lock);
        int interrupted = c->interrupted;
        pthread_mutex_unlock(&c->lock);
        if (now >= deadline || interrupted)
            return -1;
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = c->wake[0], .events = POLLIN}};
        int r = poll(p, 2, (int)(deadline - now < H2_POLL_MS ? deadline - now : H2_POLL_MS));
        if (r > 0 && p[0].revents != 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (p[1].revents & POLLIN) {
            char drain[64];
            while (read(c->wake[0], drain, sizeof(drain)) > 0)
                ;
        }
    }
}

static int h2_tcp_connect(h2_client *c, uint64_t deadline, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", c->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "cannot connect to %s", c->authority);
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 &&
            (errno != EINPROGRESS || h2_wait_fd(c, fd, POLLOUT, deadline) != 0 ||
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)) {
            snprintf(err, errlen, "cannot connect to %s: %s", c->authority,
                     soerr != 0 ? strerror(soerr) : errno == EINPROGRESS ? "timed out" : strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    return 0;
}

static int h2_tls_handshake(h2_client *c, uint64_t deadline, char *err, size_t errlen)
{
    if ((c->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(err, errlen, "TLS: out of memory");
        return -1;
    }
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, c->host, ip) == 1 || inet_pton(AF_INET6, c->host, ip) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(c->ssl, c->host);
    if (!c->insecure) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host)
                       : SSL_set1_host(c->ssl, c->host);
        if (ok != 1) {
            snprintf(err, errlen, "TLS: cannot verify host %s", c->host);
            return -1;
        }
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(c->ssl, r);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
            h2_wait_fd(c, c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) != 0) {
            long v = SSL_get_verify_result(c->ssl);
            unsigned long q = ERR_peek_error();
            snprintf(err, errlen, "TLS handshake with %s failed: %s", c->authority,
                     v != X509_V_OK      ? X509_verify_cert_error_string(v)
                     : q != 0            ? ERR_reason_error_string(q)
                     : e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? "timed out"
                                         : "connection closed");
            return -1;
        }
    }
    const unsigned char *proto = NULL;
    unsigned plen = 0;
    SSL_get0_alpn_selected(c->ssl, &proto, &plen);
    if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
        snprintf(err, errlen, "%s did not agree to HTTP/2 (ALPN h2)", c->authority);
        return -1;
    }
    return 0;
}

static void h2_close_socket(h2_client *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

static int h2_session_new(h2_client *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cb, h2_on_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
    int rc = nghttp2_session_client_new(&c->session, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return -1;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW}};
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, H2_WINDOW) != 0) {
        nghttp2_session_del(c->session);
        c->session = NULL;
        return -1;
    }
    return 0;
}

/* Opens the connection for the pending calls; on failure they fail with
 * the reason (the caller's retry policy decides what next). */
static void h2_connect(h2_client *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t deadline = 0;
    for (h2_call *k = c->pending.head; k != NULL; k = k->next)
        if (deadline == 0 || k->deadline < deadline)
            deadline = k->deadline;
    pthread_mutex_unlock(&c->lock);
    char err[256] = "";
    int rc = h2_tcp_connect(c, deadline, err, sizeof(err));
    if (rc == 0 && c->tls)
        rc = h2_tls_handshake(c, deadline, err, sizeof(err));
    if (rc == 0 && h2_session_new(c) != 0) {
        snprintf(err, sizeof(err), "http2: out of memory");
        rc = -1;
    }
    if (rc == 0) {
        if (c->opened != NULL)
            metrics_add(c->opened, 1);
        c->goaway = 0;
        c->write_blocked = 0;
        log_debug("http2 connected", "backend=%s authority=%s tls=%d", c->name, c->authority, c->tls);
        return;
    }
    h2_close_socket(c);
    pthread_mutex_lock(&c->lock);
    while (c->pending.head != NULL) {
        h2_call *k = c->pending.head;
        h2_finish(k, H2_ERROR, "%s", err);
        h2_let_go(k);
    }
    pthread_mutex_unlock(&c->lock);
}

/* Ends the connection. Its unfinished calls fail (the server may have
 * processed them), except those a GOAWAY said it did not process. */
static void h2_disconnect(h2_client *c, const char *why)
{
    if (c->session != NULL) {
        nghttp2_session_del(c->session); /* reports no stream closes */
        c->session = NULL;
    }
    h2_close_socket(c);
    pthread_mutex_lock(&c->lock);
    h2_call *next;
    for (h2_call *k = c->active.head; k != NULL; k = next) {
        next = k->next;
        if (!k->done && c->goaway && k->stream_id > c->goaway_last && !k->got_headers) {
            h2_requeue(c, k);
            continue;
        }
        h2_finish(k, H2_ERROR, "%s", why);
        h2_let_go(k);
    }
    pthread_mutex_unlock(&c->lock);
    c->goaway = 0;
}

/* ---- the I/O loop ---- */

static int h2_add_field(nghttp2_nv *nv, size_t *n, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (*n == H2_MAX_FIELDS)
        return -1;
    nv[*n] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
    (*n)++;
    return 0;
}

/* Opens a stream for k. Header names are lowercased into `names`. -1 when
 * the request cannot be sent at all (too many fields). */
static int32_t h2_submit(h2_client *c, h2_call *k)
{
    nghttp2_nv nv[H2_MAX_FIELDS];
    char names[H2_MAX_FIELDS][64];
    char clen[24];
    size_t n = 0;
    snprintf(clen, sizeof(clen), "%zu", k->req->head_len + iov_total(k->req->body, k->req->n_body));
    const char *scheme = c->tls ? "https" : "http";
    int bad = h2_add_field(nv, &n, ":method", 7, "POST", 4) != 0 ||
              h2_add_field(nv, &n, ":scheme", 7, scheme, strlen(scheme)) != 0 ||
              h2_add_field(nv, &n, ":authority", 10, c->authority, strlen(c->authority)) != 0 ||
              h2_add_field(nv, &n, ":path", 5, k->path, strlen(k->path)) != 0 ||
              h2_add_field(nv, &n, "content-length", 14, clen, strlen(clen)) != 0 ||
              (c->user_agent != NULL &&
               h2_add_field(nv, &n, "user-agent", 10, c->user_agent, strlen(c->user_agent)) != 0);
    for (const struct curl_slist *l = k->req->headers; l != NULL && !bad; l = l->next) {
        const char *line = l->data;
        size_t nlen = strcspn(line, ":;");
        if (line[nlen] == '\0' || nlen == 0 || nlen >= sizeof(names[0]))
            continue;
        const char *v = line + nlen + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (line[nlen] == ':' && *v == '\0')
            continue; /* "Name:" removes a header in libcurl's lists */
        if (line[nlen] == ';')
            v = "";
        char *lower = names[n];
        for (size_t i = 0; i < nlen; i++)
            lower[i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] - 'A' + 'a' : line[i]);
        if ((nlen == 14 && memcmp(lower, "content-length", 14) == 0) ||
            (nlen == 10 && memcmp(lower, "user-agent", 10) == 0) || (nlen == 4 && memcmp(lower, "host", 4) == 0))
            continue; /* set above */
        bad = h2_add_field(nv, &n, lower, nlen, v, strlen(v)) != 0;
    }
    if (bad)
        return -1;
    nghttp2_data_provider dp = {.source = {.ptr = k}, .read_callback = h2_on_read_body};
    return nghttp2_submit_request(c->session, NULL, nv, n, &dp, k);
}

/* Streams for pending calls, up to the server's concurrency limit. */
static void h2_submit_pending(h2_client *c)
{
    pthread_mutex_lock(&c->lock);
    uint32_t max = nghttp2_session_get_remote_settings(c->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    while (c->pending.head != NULL && !c->goaway && c->active.n < max) {
        h2_call *k = c->pending.head;
        int32_t id = h2_submit(c, k);
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
            c->goaway = 1; /* stream ids used up: finish here, then reconnect */
            c->goaway_last = INT32_MAX;
            break;
        }
        h2_list_remove(k);
        if (id < 0) {
            h2_finish(k, H2_ERROR, "cannot send the request: %s",
                      id == -1 ? "too many header fields" : nghttp2_strerror(id));
            h2_let_go(k);
            continue;
        }
        k->stream_id = id;
        h2_list_push(&c->active, k, 0);
    }
    pthread_mutex_unlock(&c->lock);
}

/* Calls past their deadline, or all calls after an interrupt, are finished;
 * those on a stream have it reset (RST_STREAM CANCEL) and let go. Returns
 * the nearest deadline left (0: none). */
static uint64_t h2_expire(h2_client *c, int *stop)
{
    uint64_t now = clock_now_ms(), next = 0;
    pthread_mutex_lock(&c->lock);
    *stop = c->stopping;
    h2_list *lists[2] = {&c->pending, &c->active};
    for (int i = 0; i < 2; i++) {
        h2_call *nk;
        for (h2_call *k = lists[i]->head; k != NULL; k = nk) {
            nk = k->next;
            if (c->interrupted)
                h2_finish(k, H2_INTERRUPTED, "interrupted");
            else if (now >= k->deadline)
                h2_finish(k, H2_ERROR, "timed out after %llu ms", (unsigned long long)k->req->timeout_ms);
            if (!k->done) {
                if (next == 0 || k->deadline < next)
                    next = k->deadline;
                continue;
            }
            if (k->stream_id > 0 && c->session != NULL) {
                nghttp2_session_set_stream_user_data(c->session, k->stream_id, NULL);
                nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, k->stream_id, NGHTTP2_CANCEL);
            }
            h2_let_go(k);
        }
    }
    int want = c->pending.n > 0;
    pthread_mutex_unlock(&c->lock);
    if (c->session == NULL && want && !*stop)
        h2_connect(c);
    return next;
}

static int h2_read(h2_client *c)
{
    uint8_t buf[H2_READ_CHUNK];
    for (;;) {
        ssize_t r = h2_io_read(c, buf, sizeof(buf));
        if (r == 0)
            return 0;
        if (r < 0)
            return -1;
        ssize_t used = nghttp2_session_mem_recv(c->session, buf, (size_t)r);
        if (used < 0)
            return -1;
    }
}

static void *h2_main(void *arg)
{
    h2_client *c = arg;
    for (;;) {
        int stop;
        uint64_t next = h2_expire(c, &stop);
        if (stop)
            break;
        if (c->session != NULL) {
            h2_submit_pending(c);
            c->write_blocked = 0;
            if (nghttp2_session_send(c->session) != 0) {
                h2_disconnect(c, "connection lost while sending");
                continue;
            }
            pthread_mutex_lock(&c->lock);
            int idle_after_goaway = c->goaway && c->active.n == 0;
            pthread_mutex_unlock(&c->lock);
            if (idle_after_goaway ||
                (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session))) {
                h2_disconnect(c, "connection closed by the server");
                continue;
            }
        }
        struct pollfd p[2] = {{.fd = c->wake[0], .events = POLLIN}, {.fd = c->fd, .events = POLLIN}};
        if (c->write_blocked)
            p[1].events |= POLLOUT;
        uint64_t now = clock_now_ms();
        int timeout = next == 0 || next - now > H2_POLL_MS ? H2_POLL_MS : next > now ? (int)(next - now) : 0;
        if (c->ssl != NULL && SSL_pending(c->ssl) > 0)
            timeout = 0;
        int r = poll(p, c->session != NULL ? 2 : 1, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            char drain[64];
            while (read(c->wake[0], drain, sizeof(drain)) > 0)
                ;
        }
        if (c->session != NULL && ((p[1].revents & (POLLIN | POLLERR | POLLHUP)) || timeout == 0) &&
            h2_read(c) != 0)
            h2_disconnect(c, "connection lost");
    }
    h2_disconnect(c, "client stopped");
    return NULL;
}

/* ---- API ---- */

/* scheme://authority of url: the authority (malloc'ed) and whether it is
 * https; *rest points after it. */
static char *h2_origin(const char *url, int *tls, const char **rest)
{
    size_t skip = strncmp(url, "https://", 8) == 0 ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0;
    if (skip == 0)
        return NULL;
    *tls = skip == 8;
    size_t n = strcspn(url + skip, "/?#");
    *rest = url + skip + n;
    return n > 0 ? strndup(url + skip, n) : NULL;
}

static int h2_fail(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    snprintf(err, errlen, "%s%s%s", what, e != 0 ? ": " : "", e != 0 ? ERR_reason_error_string(e) : "");
    return -1;
}

static int h2_tls_init(h2_client *c, const h2_client_settings *s, char *err, size_t errlen)
{
    if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        return h2_fail(err, errlen, "TLS: cannot make a context");
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof(alpn)) != 0)
        return h2_fail(err, errlen, "TLS: cannot set ALPN");
    c->insecure = s->insecure_skip_verify;
    SSL_CTX_set_verify(c->ctx, c->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (s->ca_file != NULL ? SSL_CTX_load_verify_locations(c->ctx, s->ca_file, NULL) != 1
                           : SSL_CTX_set_default_verify_paths(c->ctx) != 1)
        return h2_fail(err, errlen, "TLS: cannot load the CA certificates");
    if (s->client_cert != NULL &&
        (SSL_CTX_use_certificate_chain_file(c->ctx, s->client_cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(c->ctx, s->client_key != NULL ? s->client_key : s->client_cert,
                                     SSL_FILETYPE_PEM) != 1))
        return h2_fail(err, errlen, "TLS: cannot load the client certificate or key");
    return 0;
}

h2_client *h2_client_new(const h2_client_settings *s, char *err, size_t errlen)
{
    h2_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->fd = c->wake[0] = c->wake[1] = -1;
    c->opened = s->opened;
    pthread_mutex_init(&c->lock, NULL);
    const char *rest;
    c->authority = h2_origin(s->url, &c->tls, &rest);
    if (c->authority == NULL) {
        snprintf(err, errlen, "not an http:// or https:// URL");
        goto fail;
    }
    const char *a = c->authority, *colon;
    if (a[0] == '[') { /* [v6]:port */
        const char *close = strchr(a, ']');
        if (close == NULL) {
            snprintf(err, errlen, "bad IPv6 address in the URL");
            goto fail;
        }
        c->host = strndup(a + 1, (size_t)(close - a - 1));
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(a, ':');
        c->host = colon != NULL ? strndup(a, (size_t)(colon - a)) : strdup(a);
    }
    c->port = strdup(colon != NULL ? colon + 1 : c->tls ? "443" : "80");
    c->user_agent = s->user_agent != NULL ? strdup(s->user_agent) : NULL;
    c->name = strdup(s->name != NULL ? s->name : "-");
    if (c->host == NULL || c->port == NULL || c->name == NULL || (s->user_agent != NULL && c->user_agent == NULL)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (c->tls && h2_tls_init(c, s, err, errlen) != 0)
        goto fail;
    if (pipe2(c->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, h2_main, c) != 0) {
        snprintf(err, errlen, "cannot start the HTTP/2 client's thread");
        goto fail;
    }
    c->started = 1;
    return c;
fail:
    h2_client_free(c);
    return NULL;
}

/* A new call for r, queued; NULL with err (nothing queued). */
static h2_call *h2_enqueue(h2_client *c, const h2_request *r, h2_done_fn done, void *ud, int *rc, char *err,
                           size_t errlen)
{
    int tls;
    const char *path;
    char *origin = h2_origin(r->url, &tls, &path);
    int same = origin != NULL && tls == c->tls && strcmp(origin, c->authority) == 0;
    free(origin);
    *rc = H2_ERROR;
    if (!same) {
        snprintf(err, errlen, "%s is not on this connection's origin", r->url);
        return NULL;
    }
    h2_call *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_cond_init(&k->cond, NULL);
    k->req = r;
    k->path = path[0] == '/' ? path : "/";
    k->deadline = clock_now_ms() + r->timeout_ms;
    k->in_io = 1;
    k->done_fn = done;
    k->done_ud = ud;
    k->caller_gone = done != NULL; /* nobody waits: the I/O side frees it */
    pthread_mutex_lock(&c->lock);
    if (c->interrupted) {
        pthread_mutex_unlock(&c->lock);
        h2_call_free(k);
        *rc = H2_INTERRUPTED;
        snprintf(err, errlen, "interrupted");
        return NULL;
    }
    h2_list_push(&c->pending, k, 0);
    pthread_mutex_unlock(&c->lock);
    h2_wake(c);
    *rc = H2_OK;
    return k;
}

int h2_client_start(h2_client *c, const h2_request *r, h2_done_fn done, void *ud, char *err, size_t errlen)
{
    int rc;
    h2_enqueue(c, r, done, ud, &rc, err, errlen);
    return rc;
}

int h2_client_call(h2_client *c, const h2_request *r, int *status, char *err, size_t errlen)
{
    int rc;
    h2_call *k = h2_enqueue(c, r, NULL, NULL, &rc, err, errlen);
    if (k == NULL)
        return rc;
    pthread_mutex_lock(&c->lock);
    while (!k->done)
        pthread_cond_wait(&k->cond, &c->lock);
    rc = k->rc;
    *status = k->status;
    if (rc != H2_OK)
        snprintf(err, errlen, "%s", k->err);
    k->caller_gone = 1;
    int mine = !k->in_io;
    pthread_mutex_unlock(&c->lock);
    if (mine)
        h2_call_free(k);
    return rc;
}

void h2_client_interrupt(h2_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->interrupted = 1;
    pthread_mutex_unlock(&c->lock);
    h2_wake(c);
}

void h2_client_free(h2_client *c)
{
    if (c == NULL)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->interrupted = c->stopping = 1;
        pthread_mutex_unlock(&c->lock);
        h2_wake(c);
        pthread_join(c->thread, NULL);
    }
    /* Callers still waiting were finished by the thread's last round; a
     * client that never started has none. */
    if (c->wake[0] >= 0)
        close(c->wake[0]);
    if (c->wake[1] >= 0)
        close(c->wake[1]);
    if (c->ctx != NULL)
        SSL_CTX_free(c->ctx);
    free(c->host);
    free(c->port);
    free(c->authority);
    free(c->user_agent);
    free(c->name);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
