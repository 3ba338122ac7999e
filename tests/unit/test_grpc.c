/* test_grpc: the OTLP/gRPC listener against a real nghttp2 client.
 *
 * The server's h2o loop runs in its own thread on 127.0.0.1:0; tests drive it
 * over blocking sockets with an nghttp2 client session. ingest.c is replaced
 * by the test doubles below, so the listener is tested alone: the doubles
 * record what reached ingest_export and answer what the test asks for. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "grpc.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "metrics.h"
#include "test_util.h"

/* ---- ingest test doubles ---------------------------------------------- */

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    /* what the test wants ingest_export to answer */
    req_status next_status;
    uint32_t next_retry_after;
    char next_message[256];
    /* what ingest_export saw */
    int calls;
    otlp_signal sig;
    int gzipped;
    int tls;
    uint8_t *body;
    size_t body_len;
    uint64_t body_sum; /* body_hash of every body, summed */
    char authorization[256];
    int refused[REQ_STATUS_COUNT];
} fake;

static void fake_reset(void)
{
    pthread_mutex_lock(&fake_mu);
    free(fake.body);
    memset(&fake, 0, sizeof(fake));
    pthread_mutex_unlock(&fake_mu);
}

/* Bodies compared without keeping them all. */
static uint64_t body_hash(const uint8_t *p, size_t n) { return hash_fnv1a(p, n, HASH_FNV1A_INIT); }

void ingest_export(ingest_ctx *ctx, const ingest_limits *lim, otlp_signal sig, otlp_encoding enc,
                   const req_origin *origin, const uint8_t *body, size_t len, int gzipped, ingest_result *out)
{
    (void)ctx;
    (void)lim;
    assert_int_equal(enc, OTLP_PROTOBUF);
    assert_int_equal(origin->transport, REQ_GRPC);
    assert_true(origin->peer_len > 0);
    pthread_mutex_lock(&fake_mu);
    fake.calls++;
    fake.sig = sig;
    fake.gzipped = gzipped;
    fake.tls = origin->tls;
    free(fake.body);
    fake.body = malloc(len + 1);
    memcpy(fake.body, body, len);
    fake.body_len = len;
    fake.body_sum += body_hash(body, len);
    fake.authorization[0] = '\0';
    if (origin->authorization && origin->authorization_len < sizeof(fake.authorization)) {
        memcpy(fake.authorization, origin->authorization, origin->authorization_len);
        fake.authorization[origin->authorization_len] = '\0';
    }
    memset(out, 0, sizeof(*out));
    out->status = fake.next_status;
    out->retry_after_s = fake.next_retry_after;
    snprintf(out->message, sizeof(out->message), "%s", fake.next_message);
    pthread_mutex_unlock(&fake_mu);
}

/* The peer-mode entry points (tested in test_forward): never reached here. */
void ingest_forwarded(ingest_ctx *ctx, const ingest_limits *lim, const req_origin *origin, const char *tenant,
                      const char *pipeline, const char *from, const uint8_t *body, size_t len, int gzipped,
                      ingest_result *out)
{
    (void)ctx, (void)lim, (void)origin, (void)tenant, (void)pipeline, (void)from, (void)body, (void)len, (void)gzipped,
        (void)out;
    fail_msg("ingest_forwarded called on a listener that is not in peer mode");
}

int ingest_draining(ingest_ctx *ctx)
{
    (void)ctx;
    fail_msg("ingest_draining called on a listener that is not in peer mode");
    return 0;
}

int ingest_peer_authorize(const char *secret, const char *authorization, size_t len, ingest_result *out)
{
    (void)secret, (void)authorization, (void)len, (void)out;
    fail_msg("ingest_peer_authorize called on a listener that is not in peer mode");
    return -1;
}

void ingest_count_refused(req_transport t, otlp_signal sig, req_status st, uint64_t start_ns)
{
    (void)t;
    (void)sig;
    (void)start_ns;
    pthread_mutex_lock(&fake_mu);
    fake.refused[st]++;
    pthread_mutex_unlock(&fake_mu);
}

/* A recognisable stand-in for Export*ServiceResponse: field 1 = signal. */
int ingest_response_body(otlp_signal sig, otlp_encoding enc, const ingest_result *res, buf *out)
{
    (void)enc;
    (void)res;
    uint8_t b[3] = {0x08, (uint8_t)sig, 0x00};
    return buf_append(out, b, 2);
}

int ingest_signal_from_grpc_path(const char *path, size_t len)
{
    static const char *paths[] = {
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    };
    for (int i = 0; i < 3; i++)
        if (strlen(paths[i]) == len && memcmp(paths[i], path, len) == 0)
            return i;
    return -1;
}

int ingest_grpc_status(req_status st)
{
    switch (st) {
    case REQ_OK: return GRPC_OK;
    case REQ_THROTTLED:
    case REQ_TOO_LARGE: return GRPC_RESOURCE_EXHAUSTED;
    case REQ_UNAVAILABLE: return GRPC_UNAVAILABLE;
    case REQ_UNAUTHENTICATED: return GRPC_UNAUTHENTICATED;
    default: return GRPC_INVALID_ARGUMENT;
    }
}

uint64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
    return clock_now_ns() / 1000000u;
}

/* h2o keeps freed buffers in per-thread recycle lists that nothing drains
 * at thread exit (some are private to h2o); they are not leaks of ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

/* ---- server thread ------------------------------------------------------ */

typedef struct server {
    pthread_t thread;
    grpc_settings settings;
    int port;
    atomic_int ready, stop, shutdown;
    atomic_size_t conns;
} server;

static void *server_main(void *arg)
{
    server *srv = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    int fd = loopback_listen(SOCK_NONBLOCK, 512, &srv->port);
    grpc_listener *l = grpc_listener_start(loop, fd, &srv->settings, NULL);
    assert_non_null(l);
    atomic_store(&srv->ready, 1);
    int more = 0;
    while (!atomic_load(&srv->stop)) {
        /* As a worker does: the turns of connections with input left over
         * their read budget, without sleeping while they wait. */
        h2o_evloop_run(loop, more ? 0 : 5);
        more = grpc_listener_pass(l);
        if (atomic_exchange(&srv->shutdown, 0))
            grpc_listener_shutdown(l);
        atomic_store(&srv->conns, grpc_listener_connections(l));
    }
    grpc_listener_free(l);
    h2o_evloop_run(loop, 0); /* let h2o release the closed sockets */
    h2o_evloop_destroy(loop);
    grpc_thread_release(); /* as a worker does */
    return NULL;
}

static grpc_settings default_settings(void)
{
    grpc_settings s = {
        .name = "test",
        .limits = {.max_request_bytes = 256 * 1024, .max_decoded_bytes = 1 << 20},
        .max_concurrent_streams = 7,
        .idle_timeout_ms = 5000,
        .header_timeout_ms = 5000,
    };
    return s;
}

static server *server_start(const grpc_settings *settings)
{
    fake_reset();
    server *srv = calloc(1, sizeof(*srv));
    srv->settings = *settings;
    assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
    while (!atomic_load(&srv->ready))
        usleep(1000);
    return srv;
}

static void server_stop(server *srv)
{
    atomic_store(&srv->stop, 1);
    pthread_join(srv->thread, NULL);
    free(srv);
    fake_reset();
}

static int wait_conns(server *srv, size_t want, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (atomic_load(&srv->conns) != want && now_ms() < end)
        usleep(2000);
    return atomic_load(&srv->conns) == want;
}

/* ---- nghttp2 test client -------------------------------------------------- */

typedef struct tc_stream {
    int32_t id;
    const uint8_t *req;
    size_t req_len, req_off;
    int http_status;
    int grpc_status; /* -1 until seen */
    char grpc_message[512];
    int has_details;
    char content_type[64];
    uint8_t data[8192];
    size_t data_len;
    int header_blocks;
    int closed;
    uint32_t close_error;
} tc_stream;

typedef struct tclient {
    int fd;
    SSL *ssl; /* NULL for h2c */
    nghttp2_session *session;
    tc_stream streams[16];
    int nstreams;
    int goaways;
    int32_t goaway_last_id;
    int settings_seen;
    int ping_acks;
    int eof;
} tclient;

static tc_stream *tc_find(tclient *t, int32_t id)
{
    for (int i = 0; i < t->nstreams; i++)
        if (t->streams[i].id == id)
            return &t->streams[i];
    return NULL;
}

static int tc_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    (void)session;
    (void)flags;
    tc_stream *s = tc_find(user_data, frame->hd.stream_id);
    if (!s)
        return 0;
    char v[512];
    snprintf(v, sizeof(v), "%.*s", (int)valuelen, (const char *)value);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        s->http_status = atoi(v);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        s->grpc_status = atoi(v);
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(s->grpc_message, sizeof(s->grpc_message), "%s", v);
    else if (namelen == 23 && memcmp(name, "grpc-status-details-bin", 23) == 0)
        s->has_details = 1;
    else if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        snprintf(s->content_type, sizeof(s->content_type), "%.63s", v);
    return 0;
}

static int tc_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    tclient *t = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        t->goaways++;
        t->goaway_last_id = frame->goaway.last_stream_id;
    } else if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        t->settings_seen = 1;
    } else if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        t->ping_acks++;
    } else if (frame->hd.type == NGHTTP2_HEADERS) {
        tc_stream *s = tc_find(t, frame->hd.stream_id);
        if (s)
            s->header_blocks++;
    }
    return 0;
}

static int tc_on_data(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                      void *user_data)
{
    (void)session;
    (void)flags;
    tc_stream *s = tc_find(user_data, id);
    if (s && s->data_len + len <= sizeof(s->data)) {
        memcpy(s->data + s->data_len, data, len);
        s->data_len += len;
    }
    return 0;
}

static int tc_on_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user_data)
{
    (void)session;
    tc_stream *s = tc_find(user_data, id);
    if (s) {
        s->closed = 1;
        s->close_error = error_code;
    }
    return 0;
}

static ssize_t tc_read_body(nghttp2_session *session, int32_t id, uint8_t *dst, size_t length, uint32_t *flags,
                            nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)id;
    (void)user_data;
    tc_stream *s = source->ptr;
    size_t n = s->req_len - s->req_off;
    if (n > length)
        n = length;
    memcpy(dst, s->req + s->req_off, n);
    s->req_off += n;
    if (s->req_off == s->req_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static tclient *tc_new(int port)
{
    tclient *t = calloc(1, sizeof(*t));
    t->fd = loopback_connect(port);
    assert_true(t->fd >= 0);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, tc_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, tc_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, tc_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, tc_on_close);
    assert_int_equal(nghttp2_session_client_new(&t->session, cb, t), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(t->session, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    return t;
}

static void tc_free(tclient *t)
{
    if (t->ssl) {
        SSL_CTX_free(SSL_get_SSL_CTX(t->ssl));
        SSL_free(t->ssl);
    }
    nghttp2_session_del(t->session);
    close(t->fd);
    free(t);
}

static void tc_flush(tclient *t)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(t->session, &data);
        if (n <= 0)
            return;
        while (n > 0) {
            ssize_t w = t->ssl ? SSL_write(t->ssl, data, (int)n) : send(t->fd, data, (size_t)n, MSG_NOSIGNAL);
            if (w <= 0) {
                t->eof = 1;
                return;
            }
            data += w;
            n -= w;
        }
    }
}

typedef int (*tc_done_fn)(tclient *t, void *arg);

/* Exchange frames until done() holds, the server closes, or timeout. */
static void tc_run(tclient *t, tc_done_fn done, void *arg, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (!t->eof && !(done && done(t, arg)) && now_ms() < end) {
        tc_flush(t);
        struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
        if (!(t->ssl && SSL_pending(t->ssl)) && poll(&pfd, 1, 20) <= 0)
            continue;
        uint8_t in[16384];
        ssize_t n = t->ssl ? SSL_read(t->ssl, in, sizeof(in)) : recv(t->fd, in, sizeof(in), 0);
        if (n <= 0 || nghttp2_session_mem_recv(t->session, in, (size_t)n) < 0)
            t->eof = 1;
    }
}

static int tc_stream_closed(tclient *t, void *arg)
{
    return tc_find(t, *(int32_t *)arg)->closed;
}

static int tc_all_closed(tclient *t, void *arg)
{
    (void)arg;
    for (int i = 0; i < t->nstreams; i++)
        if (!t->streams[i].closed)
            return 0;
    return 1;
}

static int tc_got_goaway(tclient *t, void *arg)
{
    return t->goaways >= *(int *)arg;
}

static int tc_got_settings(tclient *t, void *arg)
{
    (void)arg;
    return t->settings_seen;
}

static int tc_got_ping_ack(tclient *t, void *arg)
{
    (void)arg;
    return t->ping_acks > 0;
}

/* The server handles frames in order: once it answers a PING sent after
 * them, everything submitted before it has been processed. */
static void tc_sync(tclient *t)
{
    t->ping_acks = 0;
    assert_int_equal(nghttp2_submit_ping(t->session, NGHTTP2_FLAG_NONE, NULL), 0);
    tc_run(t, tc_got_ping_ack, NULL, 3000);
    assert_int_equal(t->ping_acks, 1);
}

#define TRACES_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define METRICS_PATH "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
#define LOGS_PATH "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}

/* Starts a call; body (may be NULL) is sent as DATA with END_STREAM unless
 * open_ended, in which case only HEADERS go out. Extra headers: name/value
 * pairs terminated by NULL. */
static int32_t tc_start(tclient *t, const char *method, const char *path, const char *ctype, const uint8_t *body,
                        size_t len, int open_ended, ...)
{
    nghttp2_nv nva[12] = {
        NV(":method", method), NV(":scheme", "http"), NV(":authority", "localhost"),
        NV(":path", path), NV("te", "trailers"),
    };
    size_t n = 5;
    if (ctype)
        nva[n++] = (nghttp2_nv)NV("content-type", ctype);
    va_list ap;
    va_start(ap, open_ended);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        assert_true(n < sizeof(nva) / sizeof(nva[0]));
        if (n < sizeof(nva) / sizeof(nva[0])) /* lets GCC -O3 see the bound */
            nva[n++] = (nghttp2_nv)NV(name, value);
    }
    va_end(ap);
    assert_true(t->nstreams < 16);
    tc_stream *s = &t->streams[t->nstreams++];
    memset(s, 0, sizeof(*s));
    s->grpc_status = -1;
    s->req = body;
    s->req_len = len;
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = tc_read_body};
    int32_t id = open_ended ? nghttp2_submit_headers(t->session, NGHTTP2_FLAG_NONE, -1, NULL, nva, n, NULL)
                            : nghttp2_submit_request(t->session, NULL, nva, n, body ? &prd : NULL, NULL);
    assert_true(id > 0);
    s->id = id;
    return id;
}

/* Sends the stream's body later (for calls started open-ended). */
static void tc_finish_body(tclient *t, int32_t id)
{
    tc_stream *s = tc_find(t, id);
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = tc_read_body};
    assert_int_equal(nghttp2_submit_data(t->session, NGHTTP2_FLAG_END_STREAM, id, &prd), 0);
}

/* 5-byte gRPC prefix + payload into out; returns total length. */
static size_t grpc_frame(uint8_t *out, int flag, const uint8_t *msg, size_t len)
{
    out[0] = (uint8_t)flag;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    memcpy(out + 5, msg, len);
    return len + 5;
}

static tc_stream *tc_call(tclient *t, const char *path, const char *ctype, const uint8_t *body, size_t len)
{
    int32_t id = tc_start(t, "POST", path, ctype, body, len, 0, NULL);
    tc_run(t, tc_stream_closed, &id, 5000);
    return tc_find(t, id);
}

static void assert_ok_reply(tc_stream *s, otlp_signal sig)
{
    assert_true(s->closed);
    assert_int_equal(s->close_error, NGHTTP2_NO_ERROR);
    assert_int_equal(s->http_status, 200);
    assert_string_equal(s->content_type, "application/grpc");
    assert_int_equal(s->header_blocks, 2); /* response headers, then trailers */
    assert_int_equal(s->grpc_status, 0);
    uint8_t want[7] = {0, 0, 0, 0, 2, 0x08, (uint8_t)sig};
    assert_int_equal(s->data_len, sizeof(want));
    assert_memory_equal(s->data, want, sizeof(want));
}

static void assert_trailers_only(tc_stream *s, int grpc_status)
{
    assert_true(s->closed);
    assert_int_equal(s->http_status, 200);
    assert_int_equal(s->header_blocks, 1);
    assert_int_equal(s->data_len, 0);
    assert_int_equal(s->grpc_status, grpc_status);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_unary_export_all_signals(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    const char *paths[] = {TRACES_PATH, METRICS_PATH, LOGS_PATH};
    for (int i = 0; i < 3; i++) {
        uint8_t msg[64], frame[69];
        for (size_t j = 0; j < sizeof(msg); j++)
            msg[j] = (uint8_t)(i * 31 + j);
        size_t flen = grpc_frame(frame, 0, msg, sizeof(msg));
        int32_t id = tc_start(t, "POST", paths[i], "application/grpc+proto", frame, flen, 0, "authorization",
                              "Bearer tok-123", NULL);
        tc_run(t, tc_stream_closed, &id, 5000);
        assert_ok_reply(tc_find(t, id), (otlp_signal)i);
        pthread_mutex_lock(&fake_mu);
        assert_int_equal(fake.calls, i + 1);
        assert_int_equal(fake.sig, i);
        assert_int_equal(fake.gzipped, 0);
        assert_int_equal(fake.tls, 0);
        assert_int_equal(fake.body_len, sizeof(msg));
        assert_memory_equal(fake.body, msg, sizeof(msg));
        assert_string_equal(fake.authorization, "Bearer tok-123");
        pthread_mutex_unlock(&fake_mu);
    }
    tc_free(t);
    server_stop(srv);
}

static void test_concurrent_streams_and_large_message(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    /* Larger than the 64 KiB default window: needs our SETTINGS/WINDOW_UPDATEs. */
    size_t big = 200 * 1024;
    uint8_t *msg = malloc(big), *frame = malloc(big + 5);
    for (size_t j = 0; j < big; j++)
        msg[j] = (uint8_t)(j * 7);
    size_t flen = grpc_frame(frame, 0, msg, big);
    uint8_t small[10];
    size_t slen = grpc_frame(small, 0, (const uint8_t *)"hello", 5);
    tc_start(t, "POST", LOGS_PATH, "application/grpc", small, slen, 0, NULL);
    tc_start(t, "POST", LOGS_PATH, "application/grpc", small, slen, 0, NULL);
    tc_run(t, tc_all_closed, NULL, 5000);
    assert_ok_reply(&t->streams[0], OTLP_LOGS);
    assert_ok_reply(&t->streams[1], OTLP_LOGS);
    tc_stream *s = tc_call(t, TRACES_PATH, "application/grpc", frame, flen);
    assert_ok_reply(s, OTLP_TRACES);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.body_len, big);
    assert_memory_equal(fake.body, msg, big);
    pthread_mutex_unlock(&fake_mu);
    free(msg);
    free(frame);
    tc_free(t);
    server_stop(srv);
}

/* Large messages back to back on one connection, as a Collector sends
 * its batches: h2o reads the socket dry, so reads of megabytes come, and
 * the connection's input moves to the large buffer and back
 * (grpc_input_use). Every body must arrive whole. */
static void test_large_messages_back_to_back(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    set.limits.max_request_bytes = 1 << 20;
    set.max_concurrent_streams = 16;
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    enum { N = 14, BIG = 900 * 1024 };
    uint8_t *frames[N];
    size_t flen[N];
    uint64_t want = 0;
    uint8_t *msg = malloc(BIG);
    assert_non_null(msg);
    for (int i = 0; i < N; i++) {
        for (size_t j = 0; j < BIG; j++)
            msg[j] = (uint8_t)(j * 7 + (size_t)i * 13);
        want += body_hash(msg, BIG);
        frames[i] = malloc(BIG + 5);
        assert_non_null(frames[i]);
        flen[i] = grpc_frame(frames[i], 0, msg, BIG);
        tc_start(t, "POST", TRACES_PATH, "application/grpc", frames[i], flen[i], 0, NULL);
    }
    tc_run(t, tc_all_closed, NULL, 20000);
    for (int i = 0; i < N; i++)
        assert_ok_reply(&t->streams[i], OTLP_TRACES);
    /* Then small ones on the same connection. */
    uint8_t small[16];
    size_t slen = grpc_frame(small, 0, (const uint8_t *)"hello", 5);
    assert_ok_reply(tc_call(t, LOGS_PATH, "application/grpc", small, slen), OTLP_LOGS);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.calls, N + 1);
    assert_true(fake.body_sum == want + body_hash((const uint8_t *)"hello", 5));
    pthread_mutex_unlock(&fake_mu);
    for (int i = 0; i < N; i++)
        free(frames[i]);
    free(msg);
    tc_free(t);
    server_stop(srv);
}

static void test_gzip_message(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    uint8_t frame[32];
    size_t flen = grpc_frame(frame, 1, (const uint8_t *)"\x1f\x8bgzipped", 9);
    int32_t id = tc_start(t, "POST", METRICS_PATH, "application/grpc", frame, flen, 0, "grpc-encoding", "gzip", NULL);
    tc_run(t, tc_stream_closed, &id, 5000);
    assert_ok_reply(tc_find(t, id), OTLP_METRICS);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.gzipped, 1);
    assert_int_equal(fake.body_len, 9);
    assert_memory_equal(fake.body, "\x1f\x8bgzipped", 9);
    assert_string_equal(fake.authorization, "");
    pthread_mutex_unlock(&fake_mu);
    tc_free(t);
    server_stop(srv);
}

static void test_refusals_before_ingest(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    uint8_t frame[16];
    size_t flen = grpc_frame(frame, 0, (const uint8_t *)"abc", 3);

    assert_trailers_only(tc_call(t, "/foo.Bar/Baz", "application/grpc", frame, flen), GRPC_UNIMPLEMENTED);

    int32_t id = tc_start(t, "POST", TRACES_PATH, "application/grpc", frame, flen, 0, "grpc-encoding", "snappy", NULL);
    tc_run(t, tc_stream_closed, &id, 5000);
    assert_trailers_only(tc_find(t, id), GRPC_UNIMPLEMENTED);

    tc_stream *s = tc_call(t, TRACES_PATH, "application/json", frame, flen);
    assert_true(s->closed);
    assert_int_equal(s->http_status, 415);
    assert_int_equal(s->grpc_status, -1);

    id = tc_start(t, "GET", TRACES_PATH, "application/grpc", NULL, 0, 0, NULL);
    tc_run(t, tc_stream_closed, &id, 5000);
    assert_int_equal(tc_find(t, id)->http_status, 405);

    /* Bad framing: truncated, two messages, compressed without encoding, none. */
    uint8_t bad[32];
    grpc_frame(bad, 0, (const uint8_t *)"abcdefghij", 10);
    assert_trailers_only(tc_call(t, TRACES_PATH, "application/grpc", bad, 10), GRPC_INVALID_ARGUMENT);
    size_t two = grpc_frame(bad, 0, (const uint8_t *)"ab", 2);
    two += grpc_frame(bad + two, 0, (const uint8_t *)"cd", 2);
    assert_trailers_only(tc_call(t, TRACES_PATH, "application/grpc", bad, two), GRPC_INVALID_ARGUMENT);
    flen = grpc_frame(bad, 1, (const uint8_t *)"abc", 3);
    assert_trailers_only(tc_call(t, TRACES_PATH, "application/grpc", bad, flen), GRPC_INVALID_ARGUMENT);
    assert_trailers_only(tc_call(t, TRACES_PATH, "application/grpc", NULL, 0), GRPC_INVALID_ARGUMENT);

    /* Two authorization headers (a forged one beside a valid one) are
     * refused, never resolved by picking one. */
    flen = grpc_frame(frame, 0, (const uint8_t *)"abc", 3);
    id = tc_start(t, "POST", TRACES_PATH, "application/grpc", frame, flen, 0, "authorization", "Bearer good",
                  "authorization", "Bearer forged", NULL);
    tc_run(t, tc_stream_closed, &id, 5000);
    assert_trailers_only(tc_find(t, id), GRPC_UNAUTHENTICATED);

    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.calls, 0);
    assert_int_equal(fake.refused[REQ_UNAUTHENTICATED], 1);
    assert_int_equal(fake.refused[REQ_NOT_FOUND], 1);
    assert_int_equal(fake.refused[REQ_UNSUPPORTED_MEDIA], 2);
    assert_int_equal(fake.refused[REQ_INVALID], 5);
    pthread_mutex_unlock(&fake_mu);

    /* The connection survives all of that. */
    flen = grpc_frame(frame, 0, (const uint8_t *)"abc", 3);
    assert_ok_reply(tc_call(t, LOGS_PATH, "application/grpc", frame, flen), OTLP_LOGS);
    tc_free(t);
    server_stop(srv);
}

static void test_oversized_message(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    set.limits.max_request_bytes = 1000;
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    size_t big = 600 * 1024;
    uint8_t *msg = calloc(1, big), *frame = malloc(big + 5);
    size_t flen = grpc_frame(frame, 0, msg, big);
    tc_stream *s = tc_call(t, TRACES_PATH, "application/grpc", frame, flen);
    assert_trailers_only(s, GRPC_RESOURCE_EXHAUSTED);
    /* The prefix lies (says small) but the body keeps coming. */
    grpc_frame(frame, 0, msg, 10);
    s = tc_call(t, TRACES_PATH, "application/grpc", frame, 5000);
    assert_trailers_only(s, GRPC_RESOURCE_EXHAUSTED);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.calls, 0);
    assert_int_equal(fake.refused[REQ_TOO_LARGE], 2);
    pthread_mutex_unlock(&fake_mu);
    uint8_t ok[16];
    flen = grpc_frame(ok, 0, (const uint8_t *)"abc", 3);
    assert_ok_reply(tc_call(t, TRACES_PATH, "application/grpc", ok, flen), OTLP_TRACES);
    free(msg);
    free(frame);
    tc_free(t);
    server_stop(srv);
}

static void test_ingest_errors_become_grpc_status(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    uint8_t frame[16];
    size_t flen = grpc_frame(frame, 0, (const uint8_t *)"abc", 3);
    pthread_mutex_lock(&fake_mu);
    fake.next_status = REQ_THROTTLED;
    fake.next_retry_after = 7;
    snprintf(fake.next_message, sizeof(fake.next_message), "slow down: 100%%\n");
    pthread_mutex_unlock(&fake_mu);
    tc_stream *s = tc_call(t, TRACES_PATH, "application/grpc", frame, flen);
    assert_trailers_only(s, GRPC_RESOURCE_EXHAUSTED);
    assert_string_equal(s->grpc_message, "slow down: 100%25%0A");
    assert_true(s->has_details);
    pthread_mutex_lock(&fake_mu);
    fake.next_status = REQ_UNAUTHENTICATED;
    fake.next_retry_after = 0;
    snprintf(fake.next_message, sizeof(fake.next_message), "missing token");
    pthread_mutex_unlock(&fake_mu);
    s = tc_call(t, TRACES_PATH, "application/grpc", frame, flen);
    assert_trailers_only(s, GRPC_UNAUTHENTICATED);
    assert_string_equal(s->grpc_message, "missing token");
    assert_false(s->has_details);
    tc_free(t);
    server_stop(srv);
}

static void test_connection_cap_and_global_cap(void **state)
{
    (void)state;
    metrics_reset_for_tests();
    conn_gate global, gate;
    conn_gate_init(&global, "all", 3, NULL, 0);
    conn_gate_init(&gate, "test", 2, &global, 0);
    grpc_settings set = default_settings();
    set.gate = &gate;
    server *srv = server_start(&set);
    int a = loopback_connect(srv->port), b = loopback_connect(srv->port), c = loopback_connect(srv->port);
    assert_true(a >= 0 && b >= 0 && c >= 0);
    char resp[256];
    /* over the listener's cap of 2: accepted and closed at once */
    assert_int_equal(loopback_read_to_eof(c, resp, sizeof(resp), 2000), 0);
    close(c);
    assert_true(wait_conns(srv, 2, 2000));
    assert_int_equal(metrics_value(gate.refused_listener), 1);
    assert_int_equal(metrics_value(gate.gauge), 2);
    assert_int_equal(conn_gate_open(&global), 2);
    /* the global cap (3) counts other listeners' connections too (2 here) */
    atomic_fetch_add(&global.open, 2);
    close(b);
    assert_true(wait_conns(srv, 1, 2000));
    c = loopback_connect(srv->port);
    assert_int_equal(loopback_read_to_eof(c, resp, sizeof(resp), 2000), 0);
    close(c);
    assert_int_equal(metrics_value(gate.refused_global), 1);
    atomic_fetch_sub(&global.open, 2);
    close(a);
    assert_true(wait_conns(srv, 0, 2000));
    assert_int_equal(conn_gate_open(&gate), 0);
    assert_int_equal(conn_gate_open(&global), 0);
    server_stop(srv);
}

static void test_settings_advertised(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    tc_run(t, tc_got_settings, NULL, 5000);
    assert_true(t->settings_seen);
    assert_int_equal(nghttp2_session_get_remote_settings(t->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 7);
    assert_int_equal(nghttp2_session_get_remote_settings(t->session, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE), 1 << 20);
    tc_free(t);
    server_stop(srv);
}

static void test_http1_and_garbage(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    int fd = loopback_connect(srv->port);
    const char req[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    char resp[1024];
    ssize_t n = loopback_read_to_eof(fd, resp, sizeof(resp), 3000);
    assert_true(n > 0);
    assert_true(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
    assert_non_null(strstr(resp, "Connection: close"));
    close(fd);

    fd = loopback_connect(srv->port);
    const char junk[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    send(fd, junk, sizeof(junk) - 1, 0);
    assert_int_equal(loopback_read_to_eof(fd, resp, sizeof(resp), 3000), 0);
    close(fd);
    assert_true(wait_conns(srv, 0, 3000));
    server_stop(srv);
}

static void test_stalled_clients_closed(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    set.header_timeout_ms = 300;
    server *srv = server_start(&set);

    /* No preface at all. Each t0 is read before the client acts, so a test
     * thread preempted in between cannot make a timeout look early. */
    uint64_t t0 = now_ms();
    int fd = loopback_connect(srv->port);
    char tmp[256];
    assert_int_equal(loopback_read_to_eof(fd, tmp, sizeof(tmp), 3000), 0);
    assert_true(now_ms() - t0 >= 250);
    close(fd);

    /* Preface and HEADERS, then the request body never comes. */
    t0 = now_ms();
    tclient *t = tc_new(srv->port);
    int32_t id = tc_start(t, "POST", TRACES_PATH, "application/grpc", NULL, 0, 1, NULL);
    tc_run(t, NULL, NULL, 3000);
    assert_true(t->eof);
    assert_true(now_ms() - t0 >= 250);
    assert_true(now_ms() - t0 < 2500);
    assert_int_equal(t->goaways, 1);
    assert_int_equal(tc_find(t, id)->http_status, 0);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.refused[REQ_INVALID], 1);
    pthread_mutex_unlock(&fake_mu);
    tc_free(t);
    assert_true(wait_conns(srv, 0, 3000));
    server_stop(srv);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    set.idle_timeout_ms = 300;
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    uint8_t frame[16];
    size_t flen = grpc_frame(frame, 0, (const uint8_t *)"abc", 3);
    uint64_t t0 = now_ms(); /* before the call: the idle timer starts after it */
    assert_ok_reply(tc_call(t, TRACES_PATH, "application/grpc", frame, flen), OTLP_TRACES);
    tc_run(t, NULL, NULL, 3000);
    assert_true(t->eof);
    assert_int_equal(t->goaways, 1);
    assert_true(now_ms() - t0 >= 250);
    tc_free(t);
    assert_true(wait_conns(srv, 0, 3000));
    server_stop(srv);
}

/* Reads frames until EOF; returns the last stream id of the last GOAWAY, or -1. */
static int32_t read_goaway_raw(int fd)
{
    static uint8_t in[65536];
    char *p = (char *)in;
    ssize_t n = loopback_read_to_eof(fd, p, sizeof(in), 3000);
    int32_t last = -1;
    for (size_t off = 0; n > 0 && off + 9 <= (size_t)n;) {
        size_t flen = (size_t)in[off] << 16 | (size_t)in[off + 1] << 8 | in[off + 2];
        if (in[off + 3] == NGHTTP2_GOAWAY && off + 9 + 4 <= (size_t)n)
            last = (int32_t)((uint32_t)(in[off + 9] & 0x7f) << 24 | (uint32_t)in[off + 10] << 16 |
                             (uint32_t)in[off + 11] << 8 | in[off + 12]);
        off += 9 + flen;
    }
    return last;
}

static void test_shutdown_drains_in_flight(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    tclient *t = tc_new(srv->port);
    tclient *idle = tc_new(srv->port);
    uint8_t frame[16];
    size_t flen = grpc_frame(frame, 0, (const uint8_t *)"abc", 3);
    int32_t id = tc_start(t, "POST", TRACES_PATH, "application/grpc", frame, flen, 1, NULL);
    tc_sync(t);
    tc_sync(idle);
    assert_true(wait_conns(srv, 2, 3000));

    atomic_store(&srv->shutdown, 1);
    int one = 1;
    tc_run(t, tc_got_goaway, &one, 3000);
    assert_int_equal(t->goaways, 1);
    assert_int_equal(t->goaway_last_id, (1u << 31) - 1); /* the shutdown notice */
    tc_run(idle, NULL, NULL, 3000);                       /* idle connection just goes */
    assert_true(idle->eof);
    tc_free(idle);
    assert_int_equal(loopback_connect(srv->port), -1);

    tc_finish_body(t, id);
    tc_run(t, tc_stream_closed, &id, 3000);
    assert_ok_reply(tc_find(t, id), OTLP_TRACES);
    /* Once a GOAWAY arrived and no stream is open, nghttp2's client ignores
     * further input, so a final GOAWAY in a later segment is found raw. */
    int32_t final_last_id = t->goaways == 2 ? t->goaway_last_id : read_goaway_raw(t->fd);
    assert_int_equal(final_last_id, id);
    tc_free(t);
    assert_true(wait_conns(srv, 0, 3000));
    server_stop(srv);
}

static void test_many_connections_dropped(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    server *srv = server_start(&set);
    enum { N = 200 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = loopback_connect(srv->port);
        assert_true(fds[i] >= 0);
        if (i % 3 == 1)
            send(fds[i], "PRI * HTTP/2", 12, MSG_NOSIGNAL);
        else if (i % 3 == 2)
            send(fds[i], "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", 33, MSG_NOSIGNAL);
    }
    assert_true(wait_conns(srv, N, 5000));
    for (int i = 0; i < N; i++) {
        if (i % 2) { /* half of them with a RST instead of a FIN */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(fds[i]);
    }
    assert_true(wait_conns(srv, 0, 5000));
    tclient *t = tc_new(srv->port);
    uint8_t frame[16];
    size_t flen = grpc_frame(frame, 0, (const uint8_t *)"abc", 3);
    assert_ok_reply(tc_call(t, TRACES_PATH, "application/grpc", frame, flen), OTLP_TRACES);
    tc_free(t);
    server_stop(srv);
}

/* A throwaway self-signed P-256 certificate for localhost. */
static SSL_CTX *tls_server_ctx(void)
{
    static const h2o_iovec_t alpn[] = {{(char *)"h2", 2}, {NULL, 0}};
    SSL_CTX *ctx = self_signed_server_ctx(NULL, NULL);
    h2o_ssl_register_alpn_protocols(ctx, alpn);
    return ctx;
}

/* TLS client offering `alpn` (wire format); NULL if the handshake fails. */
static tclient *tc_new_tls(int port, const char *alpn, unsigned alpn_len)
{
    tclient *t = tc_new(port);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)alpn, alpn_len);
    t->ssl = SSL_new(ctx);
    SSL_set_fd(t->ssl, t->fd);
    if (SSL_connect(t->ssl) != 1) {
        ERR_clear_error();
        tc_free(t);
        return NULL;
    }
    return t;
}

static void test_tls_alpn(void **state)
{
    (void)state;
    grpc_settings set = default_settings();
    set.ssl_ctx = tls_server_ctx();
    server *srv = server_start(&set);
    tclient *t = tc_new_tls(srv->port, "\x02h2", 3);
    assert_non_null(t);
    uint8_t frame[16];
    size_t flen = grpc_frame(frame, 0, (const uint8_t *)"abc", 3);
    assert_ok_reply(tc_call(t, LOGS_PATH, "application/grpc", frame, flen), OTLP_LOGS);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.tls, 1);
    assert_int_equal(fake.body_len, 3);
    pthread_mutex_unlock(&fake_mu);
    tc_free(t);

    /* A client that did not negotiate h2 is refused after the handshake. */
    t = tc_new_tls(srv->port, "\x08http/1.1", 9);
    if (t) {
        tc_run(t, NULL, NULL, 3000);
        assert_true(t->eof);
        assert_false(t->settings_seen);
        tc_free(t);
    }
    assert_true(wait_conns(srv, 0, 3000));
    server_stop(srv);
    SSL_CTX_free(set.ssl_ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_export_all_signals),
        cmocka_unit_test(test_connection_cap_and_global_cap),
        cmocka_unit_test(test_concurrent_streams_and_large_message),
        cmocka_unit_test(test_large_messages_back_to_back),
        cmocka_unit_test(test_gzip_message),
        cmocka_unit_test(test_refusals_before_ingest),
        cmocka_unit_test(test_oversized_message),
        cmocka_unit_test(test_ingest_errors_become_grpc_status),
        cmocka_unit_test(test_settings_advertised),
        cmocka_unit_test(test_http1_and_garbage),
        cmocka_unit_test(test_stalled_clients_closed),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_shutdown_drains_in_flight),
        cmocka_unit_test(test_many_connections_dropped),
        cmocka_unit_test(test_tls_alpn),
    };
    /* As in the gateway's main: h2o writes with writev, and a peer that
     * hung up must be an EPIPE, not a dead process. */
    signal(SIGPIPE, SIG_IGN);
    if (getenv("GRPC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GRPC_TEST_FILTER"));
    if (getenv("GRPC_TEST_DEBUG"))
        log_set_level(LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
