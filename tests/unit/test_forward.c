/* test_forward: the cluster forwarder (routing/forward.c) against the real
 * gRPC listener in peer mode (gateway/grpc.c) and the real ingest entry
 * point (gateway/ingest.c). The pipeline is replaced by the doubles below,
 * which record what was forwarded (tenant, pipeline, spans) and say whether
 * this member is draining. Waits poll with a bound; nothing sleeps a fixed
 * time and hopes. */
#include <arpa/inet.h>
#include <netinet/in.h>
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "config.h" /* test_util.h's backend helpers, which pipeline.h switches on */
#include "forward.h"
#include "grpc.h"
#include "ingest.h"
#include "metrics.h"
#include "pipeline.h"
#include "trace_service.pb-c.h"
#include "test_util.h"

/* ---- pipeline doubles ---------------------------------------------------- */

#define MAX_KEYS 8

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int calls;          /* pipeline_accept_forwarded */
    char from[64];      /* its sender, as the peer header named it */
    int submits;        /* pipeline_submit (a normal listener) */
    char submit_tenant[64];
    size_t submit_spans;
    int draining;
    struct {
        char tenant[64], pipeline[64];
        size_t spans;
        int calls;
    } keys[MAX_KEYS];
} fake;

static void fake_reset(void)
{
    pthread_mutex_lock(&fake_mu);
    memset(&fake, 0, sizeof(fake));
    pthread_mutex_unlock(&fake_mu);
}

pipeline_status pipeline_accept_forwarded(pipeline *pl, const otlp_request *req, const char *tenant,
                                          const char *pipeline_name, const char *from, arena *a,
                                          uint32_t *retry_after_s, char *err, size_t errlen)
{
    (void)pl, (void)a, (void)retry_after_s, (void)err, (void)errlen;
    pthread_mutex_lock(&fake_mu);
    fake.calls++;
    snprintf(fake.from, sizeof(fake.from), "%s", from ? from : "(none)");
    for (int i = 0; i < MAX_KEYS; i++) {
        if (fake.keys[i].calls == 0) {
            snprintf(fake.keys[i].tenant, sizeof(fake.keys[i].tenant), "%s", tenant);
            snprintf(fake.keys[i].pipeline, sizeof(fake.keys[i].pipeline), "%s", pipeline_name);
        } else if (strcmp(fake.keys[i].tenant, tenant) != 0 || strcmp(fake.keys[i].pipeline, pipeline_name) != 0) {
            continue;
        }
        fake.keys[i].calls++;
        fake.keys[i].spans += req->items;
        break;
    }
    pthread_mutex_unlock(&fake_mu);
    return PIPELINE_OK;
}

pipeline_status pipeline_submit(pipeline *pl, const otlp_request *req, const char *tenant, arena *a,
                                uint32_t *retry_after_s, char *err, size_t errlen)
{
    (void)pl, (void)a, (void)retry_after_s, (void)err, (void)errlen;
    pthread_mutex_lock(&fake_mu);
    fake.submits++;
    fake.submit_spans += req->items;
    snprintf(fake.submit_tenant, sizeof(fake.submit_tenant), "%s", tenant);
    pthread_mutex_unlock(&fake_mu);
    return PIPELINE_OK;
}

pipeline_wire pipeline_wire_use(const pipeline *pl, const char *tenant, otlp_signal sig, int *sampled)
{
    (void)pl, (void)tenant, (void)sig;
    if (sampled != NULL)
        *sampled = 0;
    return PIPELINE_WIRE_NONE;
}

int pipeline_draining(pipeline *pl)
{
    (void)pl;
    pthread_mutex_lock(&fake_mu);
    int d = fake.draining;
    pthread_mutex_unlock(&fake_mu);
    return d;
}

/* Spans forwarded for (tenant, pipeline), and in how many calls. */
static size_t key_spans(const char *tenant, const char *pl, int *calls)
{
    size_t n = 0;
    pthread_mutex_lock(&fake_mu);
    for (int i = 0; i < MAX_KEYS; i++)
        if (fake.keys[i].calls > 0 && strcmp(fake.keys[i].tenant, tenant) == 0 &&
            strcmp(fake.keys[i].pipeline, pl) == 0) {
            n = fake.keys[i].spans;
            if (calls)
                *calls = fake.keys[i].calls;
        }
    pthread_mutex_unlock(&fake_mu);
    return n;
}

/* h2o keeps freed buffers in per-thread recycle lists (see test_grpc). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

/* ---- what the forwarder hands back and reports -------------------------- */

typedef struct sink {
    pthread_mutex_t mu;
    size_t returned_spans, returned_calls;
    size_t returned_bytes_parsed; /* spans in the handed-back bytes, decoded */
    char last_tenant[64], last_pipeline[64];
    forward_peer_state state[4]; /* by handle & 3 */
    int changes;
} sink;

static void sink_return(void *data, const char *tenant, const char *pipeline, const uint8_t *req, size_t len,
                        size_t spans)
{
    sink *s = data;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len, req);
    assert_non_null(r);
    size_t parsed = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++)
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
            parsed += r->resource_spans[i]->scope_spans[j]->n_spans;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
    pthread_mutex_lock(&s->mu);
    s->returned_spans += spans;
    s->returned_calls++;
    s->returned_bytes_parsed += parsed;
    snprintf(s->last_tenant, sizeof(s->last_tenant), "%s", tenant);
    snprintf(s->last_pipeline, sizeof(s->last_pipeline), "%s", pipeline);
    pthread_mutex_unlock(&s->mu);
}

static void sink_health(void *data, int peer, forward_peer_state st)
{
    sink *s = data;
    pthread_mutex_lock(&s->mu);
    s->state[peer & 3] = st;
    s->changes++;
    pthread_mutex_unlock(&s->mu);
}

static size_t sink_returned(sink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->returned_spans;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static forward_peer_state sink_state(sink *s, int peer)
{
    pthread_mutex_lock(&s->mu);
    forward_peer_state st = s->state[peer & 3];
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* Poll `cond` every 2 ms for at most timeout_ms. */
#define WAIT_UNTIL(cond, timeout_ms)                                                                               \
    do {                                                                                                           \
        uint64_t until_ = clock_now_ms() + (timeout_ms);                                                           \
        while (!(cond) && clock_now_ms() < until_)                                                                 \
            usleep(2000);                                                                                          \
        if (!(cond))                                                                                               \
            fail_msg("timed out waiting for %s", #cond);                                                           \
    } while (0)

/* ---- server thread: one listener on its own h2o loop -------------------- */

typedef struct server {
    pthread_t thread;
    grpc_settings settings;
    int port;
    atomic_int ready, stop;
    atomic_int paused; /* the loop does not run: nothing is read */
    int rcvbuf;        /* > 0: SO_RCVBUF of the connections (a small TCP window) */
    atomic_size_t conns, max_conns;
} server;

static void *server_main(void *arg)
{
    server *srv = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    ingest_ctx *ictx = ingest_ctx_new((pipeline *)(void *)srv, NULL); /* the doubles ignore the pipeline */
    assert_non_null(ictx);
    int fd = loopback_listen(SOCK_NONBLOCK | SOCK_CLOEXEC, 64, &srv->port);
    if (srv->rcvbuf > 0) /* accepted connections inherit it */
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &srv->rcvbuf, sizeof(srv->rcvbuf)), 0);
    grpc_listener *l = grpc_listener_start(loop, fd, &srv->settings, ictx);
    assert_non_null(l);
    atomic_store(&srv->ready, 1);
    int more = 0;
    while (!atomic_load(&srv->stop)) {
        if (atomic_load(&srv->paused)) {
            usleep(2000);
            continue;
        }
        /* As a worker does: connections with input left over their read
         * budget get their turns after the loop's, and the loop does not
         * sleep while they wait (without this, one that read more than a
         * budget at once stalls). */
        h2o_evloop_run(loop, more ? 0 : 5);
        more = grpc_listener_pass(l);
        size_t n = grpc_listener_connections(l);
        atomic_store(&srv->conns, n);
        if (n > atomic_load(&srv->max_conns))
            atomic_store(&srv->max_conns, n);
    }
    grpc_listener_free(l);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    ingest_ctx_free(ictx);
    return NULL;
}

static server *server_start_rcvbuf(int peer, const char *secret, SSL_CTX *ssl, int rcvbuf)
{
    server *srv = calloc(1, sizeof(*srv));
    srv->rcvbuf = rcvbuf;
    srv->settings = (grpc_settings){
        .name = peer ? "peer" : "otlp",
        .limits = {.max_request_bytes = 1 << 20, .max_decoded_bytes = 8 << 20},
        .idle_timeout_ms = 30000,
        .header_timeout_ms = 5000,
        .ssl_ctx = ssl,
        .peer = peer,
        .peer_secret = secret,
    };
    assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
    WAIT_UNTIL(atomic_load(&srv->ready), 5000);
    return srv;
}

static server *server_start(int peer, const char *secret, SSL_CTX *ssl)
{
    return server_start_rcvbuf(peer, secret, ssl, 0);
}

static void server_stop(server *srv)
{
    atomic_store(&srv->stop, 1);
    pthread_join(srv->thread, NULL);
    if (srv->settings.ssl_ctx)
        SSL_CTX_free(srv->settings.ssl_ctx);
    free(srv);
}

static void peer_addr(char *out, size_t n, int port)
{
    snprintf(out, n, "127.0.0.1:%d", port);
}

/* A port on which nothing listens (bound, then closed). */
static int dead_port(void)
{
    int port;
    close(loopback_listen(0, 0, &port));
    return port;
}

static uint64_t metric(const char *family, const char *peer, const char *reason)
{
    char labels[256];
    if (reason)
        snprintf(labels, sizeof(labels), "peer=\"%s\",reason=\"%s\"", peer, reason);
    else
        snprintf(labels, sizeof(labels), "peer=\"%s\"", peer);
    return metrics_value(metrics_series(metrics_family(family, METRIC_COUNTER, ""), labels));
}

static forward *fwd_start(forward_settings set, sink *s)
{
    char err[256] = "";
    if (set.self_id == NULL)
        set.self_id = "127.0.0.1:1";
    forward *f = forward_new(&set, sink_return, sink_health, s, err, sizeof(err));
    if (f == NULL)
        fail_msg("forward_new: %s", err);
    return f;
}

/* Reserve and push one request of `spans` spans. */
static void push(forward *f, int peer, const char *tenant, const char *pl, unsigned spans)
{
    uint8_t body[4096];
    size_t n = make_payload(body, sizeof(body), spans, tenant);
    assert_int_equal(forward_reserve(f, peer, n), 0);
    forward_push(f, peer, tenant, pl, body, n, spans);
}

static void sink_init(sink *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
}

/* ---- tests ----------------------------------------------------------------- */

/* Pushes of one (tenant, pipeline) become fewer calls; keys never mix; the
 * concatenated encodings parse as one request with every span; batch_bytes
 * caps a call. */
static void test_batching(void **state)
{
    (void)state;
    fake_reset();
    server *srv = server_start(1, "s3cret", NULL);
    sink s;
    sink_init(&s);
    forward *f = fwd_start((forward_settings){.secret = "s3cret", .flush_ms = 300}, &s);
    char addr[64];
    peer_addr(addr, sizeof(addr), srv->port);
    int p = forward_peer_add(f, addr);
    assert_true(p >= 0);
    for (int i = 0; i < 10; i++) {
        push(f, p, "acme", "sampled", 2);
        push(f, p, "globex", "sampled", 1);
    }
    push(f, p, "acme", "other", 3);
    assert_int_equal(forward_wait_idle(f, 10000), 0);
    int calls_a = 0, calls_g = 0, calls_o = 0;
    assert_int_equal(key_spans("acme", "sampled", &calls_a), 20);
    assert_int_equal(key_spans("globex", "sampled", &calls_g), 10);
    assert_int_equal(key_spans("acme", "other", &calls_o), 3);
    assert_true(calls_a < 10 && calls_g < 10 && calls_o == 1);
    assert_int_equal(metric("otlp_gateway_cluster_forwarded_spans_total", addr, NULL), 33);
    assert_true(metric("otlp_gateway_cluster_forwarded_bytes_total", addr, NULL) > 0);
    assert_int_equal(sink_returned(&s), 0);
    /* The receiver learns who sent it (so it never sends spans back). */
    pthread_mutex_lock(&fake_mu);
    assert_string_equal(fake.from, "127.0.0.1:1");
    pthread_mutex_unlock(&fake_mu);
    forward_free(f);

    /* batch_bytes smaller than three entries: at least four calls for ten. */
    fake_reset();
    uint8_t body[4096];
    size_t one = make_payload(body, sizeof(body), 2, "acme");
    f = fwd_start((forward_settings){.secret = "s3cret", .flush_ms = 300, .batch_bytes = one * 3 - 1}, &s);
    p = forward_peer_add(f, addr);
    for (int i = 0; i < 10; i++)
        push(f, p, "acme", "sampled", 2);
    assert_int_equal(forward_wait_idle(f, 10000), 0);
    int calls = 0;
    assert_int_equal(key_spans("acme", "sampled", &calls), 20);
    assert_true(calls >= 5);
    forward_free(f);
    server_stop(srv);
}

/* A peer that stops reading: the forwarder's HTTP/2 client fills the
 * socket (sends return short or EAGAIN, and its thread waits for POLLOUT)
 * with far more than the kernel buffers of a connection nobody reads. The
 * peer's receive buffer is kept small: with the default one, loopback's
 * buffers took what HTTP/2's windows let through (the stream's is 1 MiB)
 * and no send ever came back short. Once the peer reads again, every span
 * arrives once and intact, on the same connection, no call failed (a frame
 * cut short would end the connection, and the retries would hide it), and
 * nothing is handed back. */
static void test_peer_stops_reading(void **state)
{
    (void)state;
    fake_reset();
    server *srv = server_start_rcvbuf(1, "s3cret", NULL, 8192);
    sink s;
    sink_init(&s);
    /* Calls under the server's max_request_bytes (1 MiB), and no health
     * check or deadline that the pause could fail. */
    forward *f = fwd_start((forward_settings){.secret = "s3cret", .batch_bytes = 512 << 10, .flush_ms = 5,
                                              .timeout_ms = 30000, .give_up_ms = 60000, .health_interval_ms = 60000},
                           &s);
    char addr[64];
    peer_addr(addr, sizeof(addr), srv->port);
    int p = forward_peer_add(f, addr);
    push(f, p, "acme", "sampled", 1); /* connected before the peer stops */
    assert_int_equal(forward_wait_idle(f, 10000), 0);
    atomic_store(&srv->paused, 1);
    uint8_t body[4096];
    size_t one = make_payload(body, sizeof(body), 16, "acme"), pushed = 0, spans = 1;
    for (; pushed < (size_t)4 << 20; pushed += one, spans += 16)
        push(f, p, "acme", "sampled", 16);
    assert_int_equal(forward_wait_idle(f, 300), -1); /* stuck while nothing is read */
    assert_true(key_spans("acme", "sampled", NULL) < spans);
    atomic_store(&srv->paused, 0);
    assert_int_equal(forward_wait_idle(f, 20000), 0);
    assert_int_equal(key_spans("acme", "sampled", NULL), spans);
    assert_int_equal(sink_returned(&s), 0);
    static const char *const reasons[] = {"transport", "timeout", "http", "resource_exhausted",
                                          "unavailable", "no_grpc_status", "refused", "unauthenticated"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        assert_int_equal(metric("otlp_gateway_cluster_forward_failures_total", addr, reasons[i]), 0);
    assert_int_equal(atomic_load(&srv->max_conns), 1);
    forward_free(f);
    server_stop(srv);
}

/* A throwaway self-signed certificate for localhost, written as PEM files
 * (the forwarder takes paths); also the CA that verifies it. */
static SSL_CTX *tls_files(const char *cert_path, const char *key_path)
{
    static const h2o_iovec_t alpn[] = {{(char *)"h2", 2}, {NULL, 0}};
    SSL_CTX *ctx = self_signed_server_ctx(cert_path, key_path);
    h2o_ssl_register_alpn_protocols(ctx, alpn);
    return ctx;
}

/* Many concurrent calls (several keys, health checks) share one HTTP/2
 * connection per peer, over TLS and over h2c. */
static void test_one_connection_per_peer(void **state)
{
    (void)state;
    fake_reset();
    char cert[] = "/tmp/test_forward_certXXXXXX", key[] = "/tmp/test_forward_keyXXXXXX";
    close(mkstemp(cert));
    close(mkstemp(key));
    server *srv = server_start(1, "s3cret", tls_files(cert, key));
    sink s;
    sink_init(&s);
    forward *f = fwd_start((forward_settings){.secret = "s3cret", .flush_ms = 1, .tls_cert = cert, .tls_key = key,
                                              .tls_ca = cert, .health_interval_ms = 20},
                           &s);
    char addr[64];
    snprintf(addr, sizeof(addr), "localhost:%d", srv->port);
    int p = forward_peer_add(f, addr);
    const char *tenants[] = {"t0", "t1", "t2", "t3", "t4", "t5"};
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 6; i++)
            push(f, p, tenants[i], "sampled", 1);
    assert_int_equal(forward_wait_idle(f, 10000), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(key_spans(tenants[i], "sampled", NULL), 5);
    WAIT_UNTIL(sink_state(&s, p) == FORWARD_PEER_UP, 5000);
    assert_int_equal(atomic_load(&srv->max_conns), 1);
    forward_free(f);
    server_stop(srv);
    unlink(cert);
    unlink(key);

    fake_reset();
    srv = server_start(1, NULL, NULL);
    f = fwd_start((forward_settings){.flush_ms = 1}, &s);
    peer_addr(addr, sizeof(addr), srv->port);
    p = forward_peer_add(f, addr);
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 6; i++)
            push(f, p, tenants[i], "sampled", 1);
    assert_int_equal(forward_wait_idle(f, 10000), 0);
    assert_int_equal(atomic_load(&srv->max_conns), 1);
    forward_free(f);
    server_stop(srv);
}

/* Mutual TLS without a secret: the peer listener verifies the member's
 * client certificate against the cluster CA. A member with a certificate
 * the CA did not sign never gets a call through, and its spans come back;
 * one with the CA's certificate is served. */
static void test_mutual_tls(void **state)
{
    (void)state;
    fake_reset();
    char ca[] = "/tmp/test_forward_caXXXXXX", ca_key[] = "/tmp/test_forward_cakeyXXXXXX";
    char other[] = "/tmp/test_forward_otherXXXXXX", other_key[] = "/tmp/test_forward_otherkeyXXXXXX";
    close(mkstemp(ca));
    close(mkstemp(ca_key));
    close(mkstemp(other));
    close(mkstemp(other_key));
    SSL_CTX *ssl = tls_files(ca, ca_key);
    SSL_CTX_free(self_signed_server_ctx(other, other_key)); /* only its files: a certificate from nobody's CA */
    assert_int_equal(SSL_CTX_load_verify_locations(ssl, ca, NULL), 1);
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    server *srv = server_start(1, NULL, ssl);
    char addr[64];
    snprintf(addr, sizeof(addr), "localhost:%d", srv->port);

    sink s;
    sink_init(&s);
    forward *f = fwd_start((forward_settings){.flush_ms = 1, .give_up_ms = 200, .tls_cert = other, .tls_key = other_key,
                                              .tls_ca = ca, .health_interval_ms = 20, .health_failures = 2},
                           &s);
    int p = forward_peer_add(f, addr);
    push(f, p, "acme", "sampled", 2);
    WAIT_UNTIL(sink_returned(&s) == 2, 10000);
    WAIT_UNTIL(sink_state(&s, p) == FORWARD_PEER_DOWN, 5000);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.calls, 0);
    pthread_mutex_unlock(&fake_mu);
    forward_free(f);

    sink_init(&s);
    f = fwd_start((forward_settings){.flush_ms = 1, .tls_cert = ca, .tls_key = ca_key, .tls_ca = ca,
                                     .health_interval_ms = 20},
                  &s);
    p = forward_peer_add(f, addr);
    push(f, p, "acme", "sampled", 2);
    assert_int_equal(forward_wait_idle(f, 10000), 0);
    assert_int_equal(key_spans("acme", "sampled", NULL), 2);
    WAIT_UNTIL(sink_state(&s, p) == FORWARD_PEER_UP, 5000);
    assert_int_equal(sink_returned(&s), 0);
    forward_free(f);
    server_stop(srv);
    unlink(ca);
    unlink(ca_key);
    unlink(other);
    unlink(other_key);
}

/* The queue bound: reserve fails when full, unreserve gives room back,
 * pushed bytes count until delivered; unknown handles are full. */
static void test_queue_full(void **state)
{
    (void)state;
    sink s;
    sink_init(&s);
    forward *f = fwd_start((forward_settings){.queue_bytes = 1000, .flush_ms = 60000}, &s);
    char addr[64];
    peer_addr(addr, sizeof(addr), dead_port());
    int p = forward_peer_add(f, addr);
    assert_int_equal(forward_reserve(f, p, 600), 0);
    assert_int_equal(forward_reserve(f, p, 600), -1);
    forward_unreserve(f, p, 600);
    assert_int_equal(forward_reserve(f, p, 600), 0);
    uint8_t body[4096];
    size_t n = make_payload(body, sizeof(body), 1, "acme");
    forward_unreserve(f, p, 600);
    assert_int_equal(forward_reserve(f, p, n), 0);
    forward_push(f, p, "acme", "sampled", body, n, 1);
    assert_int_equal(forward_reserve(f, p, 1000 - n + 1), -1);
    assert_int_equal(forward_reserve(f, p, 1000 - n), 0);
    assert_int_equal(forward_reserve(f, p + 1, 1), -1);
    assert_int_equal(forward_reserve(f, -1, 1), -1);
    forward_free(f); /* what was queued is handed back (stopped) */
    assert_int_equal(sink_returned(&s), 1);
    assert_int_equal(metric("otlp_gateway_cluster_returned_spans_total", addr, "stopped"), 1);
}

/* A wrong secret, or none, is refused at once and handed back as refused,
 * not retried until give_up_ms. */
static void test_refused_secret(void **state)
{
    (void)state;
    fake_reset();
    server *srv = server_start(1, "right", NULL);
    char addr[64];
    peer_addr(addr, sizeof(addr), srv->port);
    const char *secrets[] = {"wrong", NULL};
    for (int i = 0; i < 2; i++) {
        metric_series *refused = metrics_series(
            metrics_family("otlp_gateway_cluster_peer_refused_total", METRIC_COUNTER, ""),
            i == 0 ? "reason=\"invalid_token\"" : "reason=\"missing_token\"");
        uint64_t before = metrics_value(refused), ret_before = metric("otlp_gateway_cluster_returned_spans_total",
                                                                      addr, "refused");
        sink s;
        sink_init(&s);
        forward *f = fwd_start((forward_settings){.secret = secrets[i], .flush_ms = 1, .give_up_ms = 60000}, &s);
        int p = forward_peer_add(f, addr);
        uint64_t start = clock_now_ms();
        push(f, p, "acme", "sampled", 4);
        WAIT_UNTIL(sink_returned(&s) == 4, 10000);
        assert_true(clock_now_ms() - start < 30000); /* well before give_up_ms */
        assert_int_equal(s.returned_bytes_parsed, 4);
        assert_string_equal(s.last_tenant, "acme");
        assert_string_equal(s.last_pipeline, "sampled");
        assert_int_equal(metric("otlp_gateway_cluster_returned_spans_total", addr, "refused") - ret_before, 4);
        assert_true(metric("otlp_gateway_cluster_forward_failures_total", addr, "unauthenticated") > 0);
        assert_true(metrics_value(refused) > before);
        /* Health checks are refused too: never up. */
        assert_int_not_equal(sink_state(&s, p), FORWARD_PEER_UP);
        forward_free(f);
    }
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.calls, 0);
    pthread_mutex_unlock(&fake_mu);
    server_stop(srv);
}

/* Nothing listening: handed back as unreachable after give_up_ms of
 * retrying, and health checks call the peer down. */
static void test_peer_down(void **state)
{
    (void)state;
    sink s;
    sink_init(&s);
    forward *f = fwd_start(
        (forward_settings){.flush_ms = 1, .give_up_ms = 1000, .health_interval_ms = 20, .health_failures = 2}, &s);
    char addr[64];
    peer_addr(addr, sizeof(addr), dead_port());
    int p = forward_peer_add(f, addr);
    uint64_t start = clock_now_ms();
    push(f, p, "acme", "sampled", 3);
    WAIT_UNTIL(sink_returned(&s) == 3, 10000);
    assert_true(clock_now_ms() - start >= 1000); /* long enough for several attempts, even on a slow machine */
    assert_int_equal(metric("otlp_gateway_cluster_returned_spans_total", addr, "unreachable"), 3);
    assert_true(metric("otlp_gateway_cluster_forward_failures_total", addr, "transport") >= 2);
    WAIT_UNTIL(sink_state(&s, p) == FORWARD_PEER_DOWN, 5000);
    assert_int_equal(forward_wait_idle(f, 5000), 0);
    forward_free(f);
}

/* Health: up while the peer answers, draining when it says so, down after
 * health_failures failed checks once it is gone. */
static void test_health_states(void **state)
{
    (void)state;
    fake_reset();
    server *srv = server_start(1, "s3cret", NULL);
    sink s;
    sink_init(&s);
    forward *f = fwd_start((forward_settings){.secret = "s3cret", .health_interval_ms = 20, .health_failures = 3,
                                              .timeout_ms = 1000},
                           &s);
    char addr[64];
    peer_addr(addr, sizeof(addr), srv->port);
    int p = forward_peer_add(f, addr);
    WAIT_UNTIL(sink_state(&s, p) == FORWARD_PEER_UP, 5000);
    char labels[96];
    snprintf(labels, sizeof(labels), "peer=\"%s\"", addr);
    assert_int_equal(metrics_value(metrics_series(metrics_family("otlp_gateway_cluster_peer_up", METRIC_GAUGE, ""),
                                                  labels)),
                     1);
    pthread_mutex_lock(&fake_mu);
    fake.draining = 1;
    pthread_mutex_unlock(&fake_mu);
    WAIT_UNTIL(sink_state(&s, p) == FORWARD_PEER_DRAINING, 5000);
    pthread_mutex_lock(&fake_mu);
    fake.draining = 0;
    pthread_mutex_unlock(&fake_mu);
    WAIT_UNTIL(sink_state(&s, p) == FORWARD_PEER_UP, 5000);
    pthread_mutex_lock(&s.mu);
    int changes = s.changes;
    pthread_mutex_unlock(&s.mu);
    server_stop(srv);
    WAIT_UNTIL(sink_state(&s, p) == FORWARD_PEER_DOWN, 5000);
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.changes, changes + 1); /* reported once, not per failure */
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(metrics_value(metrics_series(metrics_family("otlp_gateway_cluster_peer_up", METRIC_GAUGE, ""),
                                                  labels)),
                     0);
    forward_free(f);
}

/* forward_peer_remove hands the queue back; the handle is dead afterwards,
 * also once its slot is reused; a push to it is handed back too. */
static void test_peer_remove(void **state)
{
    (void)state;
    sink s;
    sink_init(&s);
    forward *f = fwd_start((forward_settings){.flush_ms = 60000}, &s);
    char addr[64];
    peer_addr(addr, sizeof(addr), dead_port());
    int p = forward_peer_add(f, addr);
    push(f, p, "acme", "sampled", 2);
    push(f, p, "globex", "sampled", 3);
    uint8_t body[4096];
    size_t n = make_payload(body, sizeof(body), 1, "late");
    assert_int_equal(forward_reserve(f, p, n), 0); /* reserved before the removal ... */
    forward_peer_remove(f, p);
    WAIT_UNTIL(sink_returned(&s) == 5, 5000);
    assert_int_equal(metric("otlp_gateway_cluster_returned_spans_total", addr, "removed"), 5);
    forward_push(f, p, "late", "sampled", body, n, 1); /* ... pushed after it: handed back */
    WAIT_UNTIL(sink_returned(&s) == 6, 5000);
    assert_int_equal(forward_reserve(f, p, 1), -1);
    assert_int_equal(forward_wait_idle(f, 5000), 0);
    int q = forward_peer_add(f, addr);
    assert_true(q >= 0 && q != p);
    assert_int_equal(forward_reserve(f, p, 1), -1);
    assert_int_equal(forward_reserve(f, q, 1), 0);
    forward_unreserve(f, q, 1);
    forward_free(f);
}

/* A normal listener takes the forwarder's call as a plain export: the
 * tenant header is not trusted (open mode: tenant ""), and nothing reaches
 * pipeline_accept_forwarded. */
static void test_normal_listener_ignores_tenant(void **state)
{
    (void)state;
    fake_reset();
    server *srv = server_start(0, NULL, NULL);
    sink s;
    sink_init(&s);
    forward *f = fwd_start((forward_settings){.flush_ms = 1}, &s);
    char addr[64];
    peer_addr(addr, sizeof(addr), srv->port);
    int p = forward_peer_add(f, addr);
    push(f, p, "evil-tenant", "sampled", 2);
    assert_int_equal(forward_wait_idle(f, 10000), 0);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.submits, 1);
    assert_int_equal(fake.submit_spans, 2);
    assert_string_equal(fake.submit_tenant, "");
    assert_int_equal(fake.calls, 0);
    pthread_mutex_unlock(&fake_mu);
    /* Its health path is not served: the peer never comes up. */
    assert_int_not_equal(sink_state(&s, p), FORWARD_PEER_UP);
    forward_free(f);
    server_stop(srv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the gateway does: h2o and OpenSSL write to closed sockets */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batching),
        cmocka_unit_test(test_peer_stops_reading),
        cmocka_unit_test(test_one_connection_per_peer),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_refused_secret),
        cmocka_unit_test(test_peer_down),
        cmocka_unit_test(test_health_states),
        cmocka_unit_test(test_peer_remove),
        cmocka_unit_test(test_normal_listener_ignores_tenant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
