/* test_http: the OTLP/HTTP listener (gateway/http.c) over raw HTTP/1.1.
 *
 * The server's h2o loop runs in its own thread on 127.0.0.1:0; tests send
 * raw requests (Connection: close) over loopback sockets and read the
 * response to EOF. ingest.c is replaced by the test doubles below, so the
 * listener is tested alone: the doubles record what reached ingest_export
 * and answer what the test asks for. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "test_util.h"

/* ---- ingest test doubles ---------------------------------------------- */

/* The worker data the listener must hand to ingest_export as its ctx. */
static char worker_token;

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    /* what the test wants ingest_export to answer */
    ingest_result next;
    /* what ingest_export saw */
    int calls;
    otlp_signal sig;
    otlp_encoding enc;
    int gzipped;
    int tls;
    int has_authorization;
    char authorization[128];
    char listener[32];
    size_t body_len;
    char body[64];
    size_t max_request_bytes;
    int refused[REQ_STATUS_COUNT];
} fake;

static void fake_reset(void)
{
    pthread_mutex_lock(&fake_mu);
    memset(&fake, 0, sizeof(fake));
    pthread_mutex_unlock(&fake_mu);
}

void ingest_export(ingest_ctx *ctx, const ingest_limits *lim, otlp_signal sig, otlp_encoding enc,
                   const req_origin *origin, const uint8_t *body, size_t len, int gzipped, ingest_result *out)
{
    assert_ptr_equal(ctx, &worker_token);
    assert_int_equal(origin->transport, REQ_HTTP);
    assert_true(origin->peer_len > 0);
    assert_int_equal(origin->peer.ss_family, AF_INET);
    assert_true(origin->start_ns > 0);
    pthread_mutex_lock(&fake_mu);
    fake.calls++;
    fake.sig = sig;
    fake.enc = enc;
    fake.gzipped = gzipped;
    fake.tls = origin->tls;
    fake.max_request_bytes = lim->max_request_bytes;
    snprintf(fake.listener, sizeof(fake.listener), "%s", origin->listener);
    fake.has_authorization = origin->authorization != NULL;
    snprintf(fake.authorization, sizeof(fake.authorization), "%.*s", (int)origin->authorization_len,
             origin->authorization ? origin->authorization : "");
    fake.body_len = len;
    snprintf(fake.body, sizeof(fake.body), "%.*s", (int)len, len ? (const char *)body : "");
    *out = fake.next;
    pthread_mutex_unlock(&fake_mu);
}

void ingest_count_refused(req_transport t, otlp_signal sig, req_status st, uint64_t start_ns)
{
    assert_int_equal(t, REQ_HTTP);
    assert_true(sig < OTLP_SIGNAL_COUNT);
    assert_true(start_ns > 0);
    pthread_mutex_lock(&fake_mu);
    fake.refused[st]++;
    pthread_mutex_unlock(&fake_mu);
}

/* A recognisable stand-in for the response body. */
int ingest_response_body(otlp_signal sig, otlp_encoding enc, const ingest_result *res, buf *out)
{
    return buf_printf(out, "sig=%d enc=%d status=%d msg=%s", sig, enc, res->status, res->message);
}

int ingest_http_status(req_status st)
{
    static const int codes[REQ_STATUS_COUNT] = {200, 400, 413, 415, 404, 429, 503, 401, 403, 500};
    return codes[st];
}

int ingest_signal_from_http_path(const char *path, size_t len)
{
    static const char *paths[] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
    for (int i = 0; i < 3; i++)
        if (strlen(paths[i]) == len && memcmp(paths[i], path, len) == 0)
            return i;
    return -1;
}

/* h2o keeps freed buffers in per-thread recycle lists that nothing drains
 * at thread exit (some are private to h2o); they are not leaks of ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

/* ---- server thread ------------------------------------------------------ */

#define MAX_REQUEST 1000

typedef struct server {
    pthread_t thread;
    int port;
    atomic_int ready, stop;
} server;

/* The listener's settings; tests may change them before server_start
 * (through the setups below); server_start's callers reset them. */
static struct {
    uint32_t header_timeout_ms, idle_timeout_ms;
    conn_gate *gate;
} fixture;
static conn_gate test_gate;

static void *server_main(void *arg)
{
    server *srv = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    int fd = loopback_listen(SOCK_NONBLOCK, 64, &srv->port);
    http_site_settings hs = {.name = "otlp-test", .max_body_bytes = MAX_REQUEST,
                             .idle_timeout_ms = fixture.idle_timeout_ms, .header_timeout_ms = fixture.header_timeout_ms,
                             .gate = fixture.gate};
    ingest_limits lim = {.max_request_bytes = MAX_REQUEST, .max_decoded_bytes = 1 << 20};
    http_site *site = http_otlp_site_new(&hs, &lim);
    assert_non_null(site);
    http_listener *l = http_listener_start(site, loop, fd, NULL, 0, &worker_token);
    assert_non_null(l);
    atomic_store(&srv->ready, 1);
    while (!atomic_load(&srv->stop))
        h2o_evloop_run(loop, 5);
    http_listener_shutdown(l);
    /* Every test reads its responses to EOF, so no connection is left but
     * the ones h2o has yet to reap (idle keep-alive ones close within a
     * second of the shutdown). */
    for (int i = 0; i < 300 && http_listener_connections(l) > 0; i++)
        h2o_evloop_run(loop, 10);
    assert_int_equal(http_listener_free(l), 0);
    for (int i = 0; i < 3; i++) /* let h2o release the closed sockets */
        h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    http_site_free(site);
    return NULL;
}

static int server_start_with(void **state)
{
    fake_reset();
    server *srv = calloc(1, sizeof(*srv));
    assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
    while (!atomic_load(&srv->ready))
        usleep(1000);
    *state = srv;
    return 0;
}

static int server_start(void **state)
{
    fixture.header_timeout_ms = fixture.idle_timeout_ms = 5000;
    fixture.gate = NULL;
    return server_start_with(state);
}

/* header_timeout 300 ms, idle_timeout 3 s */
static int server_start_short(void **state)
{
    fixture.header_timeout_ms = 300;
    fixture.idle_timeout_ms = 3000;
    fixture.gate = NULL;
    return server_start_with(state);
}

/* Connections counted by test_gate, at most `max` (0: no cap). */
static int server_start_gate(void **state, size_t max)
{
    fixture.header_timeout_ms = fixture.idle_timeout_ms = 5000;
    metrics_reset_for_tests();
    conn_gate_init(&test_gate, "gated", max, NULL, 0);
    fixture.gate = &test_gate;
    return server_start_with(state);
}

static int server_start_capped(void **state) { return server_start_gate(state, 2); }
static int server_start_gated(void **state) { return server_start_gate(state, 0); }

static int server_stop(void **state)
{
    server *srv = *state;
    atomic_store(&srv->stop, 1);
    pthread_join(srv->thread, NULL);
    free(srv);
    return 0;
}

/* ---- client ---------------------------------------------------------------- */

static char resp[8192];

/* POSTs body to path with the given extra header lines; returns the status. */
static int post(server *srv, const char *path, const char *headers, const char *body)
{
    http_exchange(srv->port, "POST", path, headers, (long)strlen(body), body, strlen(body), resp, sizeof(resp));
    return http_status(resp);
}

static const char *header(const char *name)
{
    static char v[256];
    return http_header(resp, name, v, sizeof(v));
}

#define CT_PROTOBUF "Content-Type: application/x-protobuf\r\n"
#define CT_JSON "Content-Type: application/json\r\n"

static void set_next(req_status st, uint32_t retry_after, int token_rejected, const char *message)
{
    pthread_mutex_lock(&fake_mu);
    memset(&fake.next, 0, sizeof(fake.next));
    fake.next.status = st;
    fake.next.retry_after_s = retry_after;
    fake.next.token_rejected = token_rejected;
    snprintf(fake.next.message, sizeof(fake.next.message), "%s", message);
    pthread_mutex_unlock(&fake_mu);
}

static int calls(void)
{
    pthread_mutex_lock(&fake_mu);
    int n = fake.calls;
    pthread_mutex_unlock(&fake_mu);
    return n;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_post_each_signal_and_type(void **state)
{
    server *srv = *state;
    static const char *paths[] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
    static const struct {
        const char *header, *content_type;
        otlp_encoding enc;
    } types[] = {
        {CT_PROTOBUF, "application/x-protobuf", OTLP_PROTOBUF},
        {CT_JSON, "application/json", OTLP_JSON},
        {"Content-Type: application/json; charset=utf-8\r\n", "application/json", OTLP_JSON},
        {"Content-Type: Application/X-Protobuf\r\n", "application/x-protobuf", OTLP_PROTOBUF},
    };
    int n = 0;
    for (int s = 0; s < 3; s++) {
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            char body[32], want[64];
            snprintf(body, sizeof(body), "payload-%d-%zu", s, t);
            assert_int_equal(post(srv, paths[s], types[t].header, body), 200);
            assert_string_equal(header("content-type"), types[t].content_type);
            assert_null(header("retry-after"));
            assert_null(header("www-authenticate"));
            snprintf(want, sizeof(want), "sig=%d enc=%d status=0 msg=", s, types[t].enc);
            assert_string_equal(http_body(resp), want);
            pthread_mutex_lock(&fake_mu);
            assert_int_equal(fake.calls, ++n);
            assert_int_equal(fake.sig, s);
            assert_int_equal(fake.enc, types[t].enc);
            assert_int_equal(fake.gzipped, 0);
            assert_int_equal(fake.tls, 0);
            assert_int_equal(fake.body_len, strlen(body));
            assert_string_equal(fake.body, body);
            assert_string_equal(fake.listener, "otlp-test");
            assert_int_equal(fake.max_request_bytes, MAX_REQUEST);
            assert_false(fake.has_authorization);
            pthread_mutex_unlock(&fake_mu);
        }
    }
    /* The query string is not part of the path handed to the signal mapping. */
    assert_int_equal(post(srv, "/v1/logs?x=1", CT_PROTOBUF, "q"), 200);
    assert_int_equal(fake.sig, OTLP_LOGS);
}

static void test_authorization_passed_through(void **state)
{
    server *srv = *state;
    assert_int_equal(post(srv, "/v1/traces", CT_PROTOBUF "Authorization: Bearer tok-123\r\n", "x"), 200);
    pthread_mutex_lock(&fake_mu);
    assert_true(fake.has_authorization);
    assert_string_equal(fake.authorization, "Bearer tok-123");
    pthread_mutex_unlock(&fake_mu);
}

/* Two tokens (one forged beside a valid one) are refused, never resolved by
 * picking one: 401 before ingest. */
static void test_two_authorization_headers(void **state)
{
    server *srv = *state;
    pthread_mutex_lock(&fake_mu);
    int before = fake.calls;
    pthread_mutex_unlock(&fake_mu);
    assert_int_equal(post(srv, "/v1/traces", CT_PROTOBUF "Authorization: Bearer good\r\nAuthorization: Bearer forged\r\n",
                          "x"),
                     401);
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake.calls, before);
    pthread_mutex_unlock(&fake_mu);
}

static void test_content_encoding(void **state)
{
    server *srv = *state;
    static const struct {
        const char *header;
        int status, gzipped;
    } cases[] = {
        {"Content-Encoding: gzip\r\n", 200, 1},
        {"Content-Encoding: GZIP\r\n", 200, 1},
        {"Content-Encoding: identity\r\n", 200, 0},
        {"", 200, 0},
        {"Content-Encoding: br\r\n", 415, -1},
        {"Content-Encoding: gzip, gzip\r\n", 415, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char headers[128];
        snprintf(headers, sizeof(headers), CT_JSON "%s", cases[i].header);
        int before = calls();
        assert_int_equal(post(srv, "/v1/metrics", headers, "\x1f\x8b"), cases[i].status);
        if (cases[i].status == 200) {
            assert_int_equal(calls(), before + 1);
            assert_int_equal(fake.gzipped, cases[i].gzipped);
        } else {
            assert_int_equal(calls(), before);
            assert_string_equal(header("content-type"), "application/json");
            assert_string_equal(http_body(resp), "sig=1 enc=1 status=3 msg=unsupported content-encoding: use gzip or identity");
        }
    }
    assert_int_equal(fake.refused[REQ_UNSUPPORTED_MEDIA], 2);
}

static void test_unknown_path(void **state)
{
    server *srv = *state;
    static const char *paths[] = {"/v1/spans", "/", "/v1/traces/x", "/metrics"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(post(srv, paths[i], CT_PROTOBUF, "x"), 404);
        assert_string_equal(header("content-type"), "text/plain");
        assert_non_null(strstr(http_body(resp), "/v1/traces, /v1/metrics, /v1/logs"));
    }
    http_exchange(srv->port, "GET", "/nope", "", -1, NULL, 0, resp, sizeof(resp));
    assert_int_equal(http_status(resp), 404);
    assert_int_equal(calls(), 0);
    for (int st = 0; st < REQ_STATUS_COUNT; st++) /* no signal to count it under */
        assert_int_equal(fake.refused[st], 0);
}

static void test_wrong_method(void **state)
{
    server *srv = *state;
    static const char *methods[] = {"GET", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        http_exchange(srv->port, methods[i], "/v1/logs", CT_PROTOBUF, -1, NULL, 0, resp, sizeof(resp));
        assert_int_equal(http_status(resp), 405);
        assert_string_equal(header("allow"), "POST");
        assert_string_equal(header("content-type"), "text/plain");
        assert_string_equal(http_body(resp), "method not allowed: use POST\n");
    }
    assert_int_equal(calls(), 0);
    assert_int_equal(fake.refused[REQ_INVALID], 3);
}

static void test_unsupported_content_type(void **state)
{
    server *srv = *state;
    static const char *headers[] = {
        "Content-Type: text/plain\r\n",
        "Content-Type: application/x-protobufx\r\n",
        "Content-Type: application/grpc\r\n",
        "",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        assert_int_equal(post(srv, "/v1/traces", headers[i], "x"), 415);
        /* the error comes as protobuf when the request's own type is unusable */
        assert_string_equal(header("content-type"), "application/x-protobuf");
        assert_string_equal(http_body(resp), "sig=0 enc=0 status=3 msg=unsupported content-type: use "
                                             "application/x-protobuf or application/json");
    }
    assert_int_equal(calls(), 0);
    assert_int_equal(fake.refused[REQ_UNSUPPORTED_MEDIA], 4);
}

static void test_body_over_limit(void **state)
{
    server *srv = *state;
    /* Up to twice the limit reaches ingest, which answers with a proper body. */
    char *body = malloc(2 * MAX_REQUEST + 1);
    memset(body, 'a', 2 * MAX_REQUEST);
    body[2 * MAX_REQUEST] = '\0';
    set_next(REQ_TOO_LARGE, 0, 0, "too big");
    assert_int_equal(post(srv, "/v1/traces", CT_PROTOBUF, body), 413);
    assert_string_equal(http_body(resp), "sig=0 enc=0 status=2 msg=too big");
    assert_int_equal(calls(), 1);
    assert_int_equal(fake.body_len, 2 * MAX_REQUEST);

    /* Beyond that h2o refuses from the Content-Length alone: one byte over,
     * or 10 MB, announced, 100 bytes sent, and the answer comes without the
     * rest. */
    static const long announced[] = {2 * MAX_REQUEST + 1, 10L << 20};
    for (size_t i = 0; i < 2; i++) {
        http_exchange(srv->port, "POST", "/v1/traces", CT_PROTOBUF, announced[i], body, 100, resp, sizeof(resp));
        assert_int_equal(http_status(resp), 413);
    }
    assert_int_equal(calls(), 1);
    free(body);
}

static void test_result_status_and_headers(void **state)
{
    server *srv = *state;
    static const struct {
        req_status st;
        uint32_t retry_after;
        int token_rejected;
        int http;
        const char *retry_header, *www_authenticate;
    } cases[] = {
        {REQ_THROTTLED, 7, 0, 429, "7", NULL},
        {REQ_UNAVAILABLE, 1, 0, 503, "1", NULL},
        {REQ_UNAUTHENTICATED, 0, 0, 401, NULL, "Bearer realm=\"otlp-gateway\""},
        {REQ_UNAUTHENTICATED, 0, 1, 401, NULL, "Bearer realm=\"otlp-gateway\", error=\"invalid_token\""},
        {REQ_PERMISSION_DENIED, 0, 0, 403, NULL, NULL},
        {REQ_INVALID, 0, 0, 400, NULL, NULL},
        {REQ_INTERNAL, 0, 0, 500, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_next(cases[i].st, cases[i].retry_after, cases[i].token_rejected, "nope");
        for (int e = 0; e < 2; e++) {
            assert_int_equal(post(srv, "/v1/logs", e ? CT_JSON : CT_PROTOBUF, "x"), cases[i].http);
            assert_string_equal(header("content-type"), e ? "application/json" : "application/x-protobuf");
            char want[64];
            snprintf(want, sizeof(want), "sig=2 enc=%d status=%d msg=nope", e, cases[i].st);
            assert_string_equal(http_body(resp), want);
            const char *retry = header("retry-after");
            if (cases[i].retry_header)
                assert_string_equal(retry, cases[i].retry_header);
            else
                assert_null(retry);
            const char *www = header("www-authenticate");
            if (cases[i].www_authenticate)
                assert_string_equal(www, cases[i].www_authenticate);
            else
                assert_null(www);
        }
    }
    /* A partial success is a 200 with its body. */
    set_next(REQ_OK, 0, 0, "span 1 bad");
    assert_int_equal(post(srv, "/v1/traces", CT_JSON, "x"), 200);
    assert_string_equal(http_body(resp), "sig=0 enc=1 status=0 msg=span 1 bad");
}


/* ---- connections: timeouts, caps, descriptors ------------------------------ */

/* Sends one keep-alive POST on fd and reads its (chunked) response; returns
 * the status, 0 when the connection closed instead. */
static int keepalive_post(int fd)
{
    static const char req[] = "POST /v1/traces HTTP/1.1\r\nHost: test\r\n" CT_PROTOBUF
                              "Content-Length: 1\r\n\r\nx";
    set_next(REQ_OK, 0, 0, "");
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1))
        return 0;
    size_t len = 0;
    uint64_t end = loopback_now_ms() + 3000;
    while (loopback_now_ms() < end && len < sizeof(resp) - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        ssize_t n = recv(fd, resp + len, sizeof(resp) - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        resp[len] = '\0';
        if (strstr(resp, "\r\n0\r\n\r\n") != NULL || (strstr(resp, "Content-Length") && strstr(resp, "\r\n\r\n") &&
                                                      strlen(strstr(resp, "\r\n\r\n") + 4) > 0))
            return http_status(resp);
    }
    return 0;
}

/* ms until the server closes fd (reading and discarding), -1 if not within limit_ms. */
static long ms_until_closed(int fd, int limit_ms)
{
    uint64_t t0 = loopback_now_ms();
    char sink[4096];
    ssize_t n = loopback_read_to_eof(fd, sink, sizeof(sink), limit_ms);
    return n < 0 ? -1 : (long)(loopback_now_ms() - t0);
}

/* Issue 13: h2o 2.2.5 closed keep-alive connections at header_timeout. */
static void test_keepalive_idle_lives_past_header_timeout(void **state)
{
    server *srv = *state;
    int fd = loopback_connect(srv->port);
    assert_true(fd >= 0);
    assert_int_equal(keepalive_post(fd), 200);
    usleep(800 * 1000); /* idle: header_timeout 300 ms < 800 ms < idle_timeout 3 s */
    assert_int_equal(keepalive_post(fd), 200);
    /* idle_timeout still closes it (from the last response, about 3 s) */
    long ms = ms_until_closed(fd, 5000);
    assert_true(ms >= 2500 && ms < 4500);
    close(fd);
}

static void test_slow_header_gets_header_timeout(void **state)
{
    server *srv = *state;
    /* a fresh connection that sends nothing */
    int fd = loopback_connect(srv->port);
    assert_true(fd >= 0);
    long ms = ms_until_closed(fd, 2800);
    assert_true(ms >= 0 && ms < 2000); /* the header timeout (300 ms), not the idle one (3 s) */
    close(fd);
    /* after a request, a next one that stalls half-way through its header */
    fd = loopback_connect(srv->port);
    assert_int_equal(keepalive_post(fd), 200);
    usleep(500 * 1000);
    static const char part[] = "POST /v1/traces HTTP/1.1\r\nHost: t";
    assert_int_equal(send(fd, part, sizeof(part) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(part) - 1));
    ms = ms_until_closed(fd, 2800);
    assert_true(ms >= 250 && ms < 2000);
    close(fd);
}

static void test_connection_cap(void **state)
{
    server *srv = *state;
    int a = loopback_connect(srv->port), b = loopback_connect(srv->port), c = loopback_connect(srv->port);
    assert_true(a >= 0 && b >= 0 && c >= 0);
    /* the third is accepted and closed at once; the first two are served */
    assert_true(ms_until_closed(c, 1000) >= 0);
    close(c);
    assert_int_equal(keepalive_post(a), 200);
    assert_int_equal(keepalive_post(b), 200);
    assert_int_equal(metrics_value(test_gate.refused_listener), 1);
    assert_int_equal(conn_gate_open(&test_gate), 2);
    assert_int_equal(metrics_value(test_gate.gauge), 2);
    /* a place freed is a place for the next one */
    close(a);
    for (int i = 0; i < 100 && conn_gate_open(&test_gate) > 1; i++)
        usleep(10 * 1000);
    c = loopback_connect(srv->port);
    assert_int_equal(keepalive_post(c), 200);
    close(b);
    close(c);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static size_t fds_open(void)
{
    size_t n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* Issue 13: with no descriptor left, a pending connection kept the listener
 * readable and the loop spun at 100% CPU. */
static void test_out_of_descriptors_does_not_spin(void **state)
{
    server *srv = *state;
    enum { CLIENTS = 12 };
    int cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        assert_true((cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
    struct rlimit saved, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    /* room for 4 accepted connections, then EMFILE */
    low = (struct rlimit){.rlim_cur = fds_open() + 4, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(connect(cl[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
    usleep(100 * 1000);
    double c0 = cpu_seconds();
    usleep(500 * 1000);
    double used = cpu_seconds() - c0;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    print_message("cpu over 500 ms with EMFILE pending: %.3f s\n", used);
    assert_true(used < 0.15);
    /* 3 served (4 descriptors, one taken by an accept-and-close), one let
     * in with the reserve and closed, the others wait in the backlog */
    assert_true(metrics_value(test_gate.refused_fds) >= 1);
    assert_true(conn_gate_open(&test_gate) >= 3);
    for (int i = 0; i < CLIENTS; i++)
        close(cl[i]);
}

#define T(f) cmocka_unit_test_setup_teardown(f, server_start, server_stop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_post_each_signal_and_type),
        T(test_authorization_passed_through),
        T(test_two_authorization_headers),
        T(test_content_encoding),
        T(test_unknown_path),
        T(test_wrong_method),
        T(test_unsupported_content_type),
        T(test_body_over_limit),
        T(test_result_status_and_headers),
        cmocka_unit_test_setup_teardown(test_keepalive_idle_lives_past_header_timeout, server_start_short, server_stop),
        cmocka_unit_test_setup_teardown(test_slow_header_gets_header_timeout, server_start_short, server_stop),
        cmocka_unit_test_setup_teardown(test_connection_cap, server_start_capped, server_stop),
        cmocka_unit_test_setup_teardown(test_out_of_descriptors_does_not_spin, server_start_gated, server_stop),
    };
    /* As in the gateway's main: a peer that hung up must be an EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (getenv("HTTP_TEST_DEBUG"))
        log_set_level(LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
