/* proxy: proxy_accept, the event-loop half of proxy.h (the parser is in
 * proxy_parse.c).
 *
 * While the header is awaited the socket belongs to a proxy_wait (sock->data),
 * linked into the listener's proxy_waiters. h2o reads whatever the peer sent,
 * so the first bytes after the header (a ClientHello, a request, the HTTP/2
 * preface) usually arrive in the same read; they stay in sock->input, and the
 * accept path that `done` starts must consume them before waiting for more
 * (h2o's TLS handshake and HTTP/1 accept do; the gRPC listener does so
 * explicitly). */
#include "proxy.h"

#include <stdlib.h>

#include "log.h"

typedef struct proxy_wait {
    h2o_socket_t *sock;
    h2o_timeout_entry_t timer;
    h2o_linklist_t link; /* in w->pending */
    void (*done)(h2o_socket_t *sock, void *data);
    void *data;
    int optional; /* PROXY_OPTIONAL: no header is fine */
} proxy_wait;

void proxy_waiters_init(proxy_waiters *w, h2o_loop_t *loop, uint32_t timeout_ms)
{
    w->loop = loop;
    h2o_timeout_init(loop, &w->timeout, timeout_ms);
    h2o_linklist_init_anchor(&w->pending);
}

static void proxy_wait_free(proxy_wait *pw)
{
    h2o_timeout_unlink(&pw->timer);
    h2o_linklist_unlink(&pw->link);
    pw->sock->data = NULL;
    free(pw);
}

static void proxy_wait_fail(proxy_wait *pw)
{
    h2o_socket_t *sock = pw->sock;
    proxy_wait_free(pw);
    h2o_socket_close(sock);
}

void proxy_waiters_close(proxy_waiters *w)
{
    while (!h2o_linklist_is_empty(&w->pending))
        proxy_wait_fail(H2O_STRUCT_FROM_MEMBER(proxy_wait, link, w->pending.next));
}

void proxy_waiters_dispose(proxy_waiters *w)
{
    proxy_waiters_close(w);
    h2o_timeout_dispose(w->loop, &w->timeout);
}

static void proxy_on_timeout(h2o_timeout_entry_t *entry)
{
    proxy_wait *pw = H2O_STRUCT_FROM_MEMBER(proxy_wait, timer, entry);
    log_debug("proxy header timeout", "received=%zu", pw->sock->input->size);
    proxy_wait_fail(pw);
}

static void proxy_on_read(h2o_socket_t *sock, const char *err)
{
    proxy_wait *pw = sock->data;
    if (err) {
        log_debug("proxy header read closed", "err=\"%s\"", err);
        proxy_wait_fail(pw);
        return;
    }
    proxy_header hdr;
    switch (proxy_parse((const uint8_t *)sock->input->bytes, sock->input->size, &hdr)) {
    case PROXY_NEED_MORE:
        return;
    case PROXY_INVALID:
        if (!pw->optional) {
            log_debug("proxy header invalid", "received=%zu", sock->input->size);
            proxy_wait_fail(pw);
            return;
        }
        break; /* no header: every byte is the request's */
    case PROXY_OK:
        h2o_buffer_consume(&sock->input, hdr.consumed);
        if (!hdr.local)
            h2o_socket_setpeername(sock, (struct sockaddr *)&hdr.src, hdr.src_len);
        break;
    }
    h2o_socket_read_stop(sock);
    void (*done)(h2o_socket_t *, void *) = pw->done;
    void *data = pw->data;
    proxy_wait_free(pw);
    done(sock, data);
}

void proxy_accept(proxy_waiters *w, h2o_socket_t *sock, proxy_mode mode, void (*done)(h2o_socket_t *sock, void *data),
                  void *data)
{
    proxy_wait *pw = calloc(1, sizeof(*pw));
    if (pw == NULL) {
        h2o_socket_close(sock);
        return;
    }
    *pw = (proxy_wait){
        .sock = sock, .timer = {.cb = proxy_on_timeout}, .done = done, .data = data, .optional = mode == PROXY_OPTIONAL};
    sock->data = pw;
    h2o_linklist_insert(&w->pending, &pw->link);
    h2o_timeout_link(w->loop, &w->timeout, &pw->timer);
    h2o_socket_read_start(sock, proxy_on_read);
}
