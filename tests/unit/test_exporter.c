/* The exporter framework and the otlp_http / otlp_grpc types: the backoff
 * schedule, batching, headers, compression and the retry policy, against a
 * small HTTP/1.1 server on loopback that records what it receives and answers
 * from a script. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "config.h"
#include "exporter.h"
#include "gzip.h"
#include "metrics.h"
#include "trace.pb-c.h"
#include "trace_service.pb-c.h"
#include "test_util.h"

/* ---- recording HTTP/1.1 server ---- */

#define SRV_MAX_REQUESTS 64
#define SRV_MAX_CONNS 16

typedef struct srv_request {
    char path[128];
    char headers[2048]; /* raw header block, lower-cased names */
    uint8_t *body;      /* after content-encoding gzip was undone */
    size_t body_len;
    int gzipped;
} srv_request;

typedef struct srv_reply {
    int status;
    const char *headers; /* extra header lines, each ending in \r\n */
    const uint8_t *body;
    size_t body_len;
} srv_reply;

typedef struct test_server {
    int fd, port;
    pthread_t acceptor;
    pthread_t conns[SRV_MAX_CONNS];
    int conn_fds[SRV_MAX_CONNS];
    size_t n_conns;
    pthread_mutex_t lock;
    srv_request reqs[SRV_MAX_REQUESTS];
    size_t n_reqs;
    const srv_reply *script; /* answers in order; 200 with an empty body after */
    size_t n_script;
    const char *throttle;    /* a request with this header line gets throttle_reply */
    srv_reply throttle_reply;
    int drop_reused;         /* this many times, a connection's second request is read and not answered */
    int dropped;
} test_server;

/* cmocka's asserts may only run on the test's thread; the server's threads
 * abort instead. */
#define SRV_CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "test server: %s failed at line %d\n", #cond, __LINE__); \
            abort(); \
        } \
    } while (0)

typedef struct srv_conn {
    test_server *s;
    int fd;
} srv_conn;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void record(test_server *s, const char *path, const char *headers, const uint8_t *body, size_t len,
                   srv_reply *reply)
{
    srv_request r = {0};
    snprintf(r.path, sizeof(r.path), "%s", path);
    snprintf(r.headers, sizeof(r.headers), "%s", headers);
    for (char *p = r.headers; *p != '\0'; p++) { /* lower-case the names for strstr checks */
        char *eol = strstr(p, "\r\n"), *colon = strchr(p, ':');
        for (char *q = p; colon != NULL && q < colon && (eol == NULL || q < eol); q++)
            *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    if (strstr(r.headers, "content-encoding: gzip") != NULL) {
        arena *a = arena_new(0);
        uint8_t *out;
        size_t outlen;
        SRV_CHECK(gzip_inflate(body, len, 1 << 24, a, &out, &outlen) == GZIP_OK);
        r.body = malloc(outlen + 1);
        memcpy(r.body, out, outlen);
        r.body_len = outlen;
        r.gzipped = 1;
        arena_free(a);
    } else {
        r.body = malloc(len + 1);
        memcpy(r.body, body, len);
        r.body_len = len;
    }
    pthread_mutex_lock(&s->lock);
    size_t i = s->n_reqs;
    if (i < SRV_MAX_REQUESTS)
        s->reqs[s->n_reqs++] = r;
    else
        free(r.body);
    *reply = i < s->n_script ? s->script[i] : (srv_reply){200, "", NULL, 0};
    if (s->throttle != NULL && strstr(headers, s->throttle) != NULL)
        *reply = s->throttle_reply;
    pthread_mutex_unlock(&s->lock);
}

static void *srv_conn_run(void *arg)
{
    srv_conn *c = arg;
    size_t cap = 1 << 22, len = 0, served = 0;
    char *in = malloc(cap);
    for (;;) {
        char *end = NULL;
        while ((end = memmem(in, len, "\r\n\r\n", 4)) == NULL) {
            ssize_t n = read(c->fd, in + len, cap - len);
            if (n <= 0)
                goto out;
            len += (size_t)n;
        }
        size_t head = (size_t)(end - in) + 4;
        in[head - 2] = '\0';
        char method[16], path[128];
        SRV_CHECK(sscanf(in, "%15s %127s", method, path) == 2);
        const char *cl = strcasestr(in, "\r\ncontent-length:");
        size_t body_len = cl != NULL ? strtoul(cl + 17, NULL, 10) : 0;
        while (len < head + body_len) {
            ssize_t n = read(c->fd, in + len, cap - len);
            if (n <= 0)
                goto out;
            len += (size_t)n;
        }
        const char *headers = strstr(in, "\r\n") + 2;
        pthread_mutex_lock(&c->s->lock);
        int drop = served > 0 && c->s->drop_reused > 0;
        if (drop) {
            c->s->drop_reused--;
            c->s->dropped++;
        }
        pthread_mutex_unlock(&c->s->lock);
        if (drop) { /* a keep-alive connection the server closed meanwhile */
            shutdown(c->fd, SHUT_RDWR);
            goto out;
        }
        served++;
        srv_reply reply;
        record(c->s, path, headers, (uint8_t *)in + head, body_len, &reply);
        char out[1024];
        int n = snprintf(out, sizeof(out),
                         "HTTP/1.1 %d X\r\ncontent-type: application/x-protobuf\r\n%scontent-length: %zu\r\n\r\n",
                         reply.status, reply.headers, reply.body_len);
        SRV_CHECK(write(c->fd, out, (size_t)n) == n);
        if (reply.body_len > 0)
            SRV_CHECK(write(c->fd, reply.body, reply.body_len) == (ssize_t)reply.body_len);
        memmove(in, in + head + body_len, len - head - body_len);
        len -= head + body_len;
    }
out:
    free(in);
    free(c);
    return NULL;
}

static void *srv_accept_run(void *arg)
{
    test_server *s = arg;
    for (;;) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        srv_conn *c = malloc(sizeof(*c));
        c->s = s;
        c->fd = fd;
        pthread_mutex_lock(&s->lock);
        SRV_CHECK(s->n_conns < SRV_MAX_CONNS);
        s->conn_fds[s->n_conns] = fd;
        pthread_create(&s->conns[s->n_conns++], NULL, srv_conn_run, c);
        pthread_mutex_unlock(&s->lock);
    }
}

/* port 0: any free port. */
static test_server *srv_start(int port, const srv_reply *script, size_t n_script)
{
    test_server *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->script = script;
    s->n_script = n_script;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t sl = sizeof(sa);
    getsockname(s->fd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    pthread_create(&s->acceptor, NULL, srv_accept_run, s);
    return s;
}

static void srv_stop(test_server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->fd);
    for (size_t i = 0; i < s->n_conns; i++) {
        shutdown(s->conn_fds[i], SHUT_RDWR);
        pthread_join(s->conns[i], NULL);
        close(s->conn_fds[i]);
    }
    for (size_t i = 0; i < s->n_reqs; i++)
        free(s->reqs[i].body);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static size_t srv_count(test_server *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n_reqs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Waits until the server has n requests; returns how many it has. */
static size_t srv_wait(test_server *s, size_t n, uint64_t timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    while (srv_count(s) < n && now_ms() < end)
        usleep(5000);
    return srv_count(s);
}

/* ---- helpers ---- */

/* An uncompressed batch of two equal entries goes out as their bytes one
 * after the other (sent unjoined, read by libcurl piece by piece). */
static void assert_two_entries(const srv_request *r, const uint8_t *entry, size_t len)
{
    assert_int_equal(r->body_len, 2 * len);
    assert_memory_equal(r->body, entry, len);
    assert_memory_equal(r->body + len, entry, len);
}

/* Spans in a recorded body (the merged request) and the first span's name. */
static size_t body_spans(const srv_request *r, char *first, size_t firstlen)
{
    arena *a = arena_new(0);
    otlp_request req;
    char err[128];
    assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, r->body, r->body_len, a, &req, err, sizeof(err)), 0);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m = (void *)req.msg;
    if (first != NULL)
        snprintf(first, firstlen, "%s", m->resource_spans[0]->scope_spans[0]->spans[0]->name);
    size_t n = req.items;
    arena_free(a);
    return n;
}

/* The spans of the received request whose first span is `first` (0: none). */
static size_t batch_spans(const test_server *s, const char *first)
{
    char name[64];
    for (size_t i = 0; i < s->n_reqs; i++)
        if (body_spans(&s->reqs[i], name, sizeof(name)) > 0 && strcmp(name, first) == 0)
            return body_spans(&s->reqs[i], NULL, 0);
    return 0;
}

typedef struct fixture {
    config *cfg;
    backend *b;
} fixture;

/* A backend named `name` of `type` at 127.0.0.1:port; `extra` is more YAML
 * flow-mapping keys (", batch: {...}"). */
static void backend_up(fixture *f, const char *name, const char *type, int port, const char *extra)
{
    char yaml[2048], err[512];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n  %s: {type: %s, endpoint: \"http://127.0.0.1:%d\"%s}\n",
             name, type, port, extra);
    assert_int_equal(config_load_string("test.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err)), 0);
    f->b = backend_create(&f->cfg->routing.backends[0], err, sizeof(err));
    if (f->b == NULL)
        fail_msg("%s", err);
}

static void backend_down(fixture *f)
{
    f->b->ops->destroy(f->b);
    config_free(f->cfg);
}

static void push(backend *b, otlp_signal sig, const char *tenant, const uint8_t *data, size_t len, size_t items)
{
    otlp_request req = {.signal = sig, .items = items};
    export_payload p = {.data = data, .len = len, .tenant = tenant};
    char err[256];
    assert_int_equal(b->ops->reserve(b, NULL, len), 0);
    assert_int_equal(b->ops->export(b, &req, &p, err, sizeof(err)), BACKEND_OK);
}

static void push_spans(backend *b, const char *tenant, unsigned spans, const char *tag)
{
    uint8_t buf[4096];
    size_t n = make_payload(buf, sizeof(buf), spans, tag);
    push(b, OTLP_TRACES, tenant, buf, n, spans);
}

static uint64_t counter(const char *family, const char *labels)
{
    return metrics_value(metrics_series(metrics_family(family, METRIC_COUNTER, ""), labels));
}

/* The counter once it reaches `want` (or after 3 s): the test server records
 * a request before it answers, and the exporter counts only once it has the
 * answer, so a count read right after srv_wait would race. */
/* Bounded at 10 s: it returns as soon as the counter gets there, and a
 * loaded machine (sanitizers, parallel suites) can take seconds more than a
 * backoff or Retry-After the test waits out. */
static uint64_t counter_reaches(const char *family, const char *labels, uint64_t want)
{
    uint64_t end = now_ms() + 10000;
    while (counter(family, labels) < want && now_ms() < end)
        usleep(5000);
    return counter(family, labels);
}

/* The backend's health as the status page and otlp_gateway_backend_up
 * show it, once it reaches `want` (bounded wait: the exporter judges a reply
 * after the server has recorded the request). */
static int health_reaches(backend *b, const char *name, int want)
{
    char labels[80];
    snprintf(labels, sizeof(labels), "backend=\"%s\"", name);
    uint64_t end = now_ms() + 10000;
    /* the exporter flips its health, then the gauge: wait for both */
    while ((b->ops->healthy(b) != want || counter("otlp_gateway_backend_up", labels) != (uint64_t)want) &&
           now_ms() < end)
        usleep(5000);
    assert_int_equal(counter("otlp_gateway_backend_up", labels), (uint64_t)b->ops->healthy(b));
    return b->ops->healthy(b);
}

/* ---- tests ---- */

static void test_backoff(void **state)
{
    (void)state;
    /* r = 0.5 means no jitter */
    assert_int_equal(exporter_backoff_ms(5000, 30000, 1.5, 0.2, 0, 0.5), 5000);
    assert_int_equal(exporter_backoff_ms(5000, 30000, 1.5, 0.2, 1, 0.5), 7500);
    assert_int_equal(exporter_backoff_ms(5000, 30000, 1.5, 0.2, 2, 0.5), 11250);
    assert_int_equal(exporter_backoff_ms(5000, 30000, 1.5, 0.2, 4, 0.5), 25312);
    assert_int_equal(exporter_backoff_ms(5000, 30000, 1.5, 0.2, 5, 0.5), 30000); /* capped */
    assert_int_equal(exporter_backoff_ms(5000, 30000, 1.5, 0.2, 5000, 0.5), 30000);
    /* jitter bounds: r = 0 gives -20 %, r -> 1 approaches +20 % */
    assert_int_equal(exporter_backoff_ms(5000, 30000, 1.5, 0.2, 0, 0.0), 4000);
    uint64_t hi = exporter_backoff_ms(5000, 30000, 1.5, 0.2, 0, 0.999999);
    assert_true(hi >= 5990 && hi < 6000);
    assert_int_equal(exporter_backoff_ms(5000, 30000, 1.5, 0.2, 9, 0.0), 24000);
    assert_int_equal(exporter_backoff_ms(1000, 30000, 2.0, 0.0, 3, 0.9), 8000);
}

static void test_batch_max_items(void **state)
{
    (void)state;
    test_server *s = srv_start(0, NULL, 0);
    fixture f;
    backend_up(&f, "items", "otlp_http", s->port, ", compression: none, batch: {max_items: 4, timeout: 2s}");
    char tag[16];
    for (int i = 0; i < 10; i++) {
        snprintf(tag, sizeof(tag), "e%d", i);
        push_spans(f.b, "", 1, tag);
    }
    assert_int_equal(srv_wait(s, 3, 3000), 3);
    /* Consumers send in parallel: the batches are the same, their order is not. */
    assert_int_equal(batch_spans(s, "e0-0"), 4);
    assert_int_equal(batch_spans(s, "e4-0"), 4);
    assert_int_equal(batch_spans(s, "e8-0"), 2);
    assert_string_equal(s->reqs[0].path, "/v1/traces");
    assert_non_null(strstr(s->reqs[0].headers, "content-type: application/x-protobuf"));
    assert_int_equal(
        counter_reaches("otlp_gateway_export_sent_items_total",
                        "backend=\"items\",signal=\"traces\"", 10),
        10);
    backend_down(&f);
    srv_stop(s);
}

/* One queued request over batch.max_items is cut into valid requests that
 * keep order and grouping, and is acked (counted) once all parts are sent. */
static void test_oversized_entry_is_split(void **state)
{
    (void)state;
    test_server *s = srv_start(0, NULL, 0);
    fixture f;
    backend_up(&f, "split", "otlp_http", s->port, ", compression: none, batch: {max_items: 4, timeout: 50ms}");
    push_spans(f.b, "", 10, "big");
    assert_int_equal(srv_wait(s, 3, 3000), 3);
    char first[32];
    assert_int_equal(body_spans(&s->reqs[0], first, sizeof(first)), 4);
    assert_string_equal(first, "big-0");
    assert_int_equal(body_spans(&s->reqs[1], first, sizeof(first)), 4);
    assert_string_equal(first, "big-4");
    assert_int_equal(body_spans(&s->reqs[2], first, sizeof(first)), 2);
    assert_string_equal(first, "big-8");
    assert_int_equal(
        counter_reaches("otlp_gateway_export_sent_items_total",
                        "backend=\"split\",signal=\"traces\"", 10),
        10);
    /* Nothing more arrives: the entry was acked, not resent. */
    assert_int_equal(srv_wait(s, 4, 300), 3);
    backend_down(&f);
    srv_stop(s);
}

static void test_batch_timeout(void **state)
{
    (void)state;
    test_server *s = srv_start(0, NULL, 0);
    fixture f;
    backend_up(&f, "lone", "otlp_http", s->port, ", batch: {timeout: 600ms}");
    uint64_t t0 = now_ms();
    push_spans(f.b, "", 1, "lone");
    assert_int_equal(srv_wait(s, 1, 5000), 1);
    uint64_t took = now_ms() - t0;
    /* its own timeout (the default is 200 ms), and it does go out alone */
    assert_true(took >= 550 && took < 4000);
    backend_down(&f);
    srv_stop(s);
}

static void test_batch_max_bytes(void **state)
{
    (void)state;
    test_server *s = srv_start(0, NULL, 0);
    fixture f;
    uint8_t buf[4096];
    size_t len = make_payload(buf, sizeof(buf), 3, "b");
    char extra[128];
    /* room for two entries, not three */
    snprintf(extra, sizeof(extra), ", compression: none, batch: {max_bytes: %zu, timeout: 2s}", 2 * len + len / 2);
    backend_up(&f, "bytes", "otlp_http", s->port, extra);
    for (int i = 0; i < 5; i++)
        push(f.b, OTLP_TRACES, "", buf, len, 3);
    assert_int_equal(srv_wait(s, 3, 3000), 3);
    /* Two full batches and the rest; several consumers send, so the two
     * full ones may arrive in either order with respect to each other. */
    size_t twos = 0, ones = 0;
    for (int i = 0; i < 3; i++) {
        const srv_request *r = &s->reqs[i];
        if (r->body_len == len) {
            ones++;
            continue;
        }
        assert_two_entries(r, buf, len);
        twos++;
    }
    assert_int_equal(twos, 2);
    assert_int_equal(ones, 1);
    backend_down(&f);
    srv_stop(s);
}

/* Per-tenant headers go with that tenant's batches only; batches never mix
 * tenants or signals. From a memory queue a tenant's entries join one batch
 * across another tenant's entry in between. */
static void test_tenants_and_signals(void **state)
{
    (void)state;
    test_server *s = srv_start(0, NULL, 0);
    fixture f;
    backend_up(&f, "tenants", "otlp_http", s->port,
               ", headers: {x-common: c1}, tenants: {acme: {headers: {x-key: acme-secret}}},"
               " signal_headers: {logs: {x-dataset: logs-ds}}, batch: {timeout: 2s}");
    uint8_t buf[4096];
    push_spans(f.b, "acme", 1, "acme");
    push_spans(f.b, "other", 1, "other");
    push_spans(f.b, "acme", 1, "acme");
    size_t len = make_payload(buf, sizeof(buf), 1, "logs");
    push(f.b, OTLP_LOGS, "acme", buf, len, 1);
    size_t n = srv_wait(s, 3, 3000);
    assert_int_equal(n, 3); /* acme (both trace entries), other, logs */
    for (size_t i = 0; i < n; i++) {
        const srv_request *r = &s->reqs[i];
        char first[32];
        size_t spans = body_spans(r, first, sizeof(first));
        assert_int_equal(spans, strncmp(first, "acme", 4) == 0 ? 2 : 1);
        assert_non_null(strstr(r->headers, "x-common: c1\r\n"));
        int acme = strncmp(first, "acme", 4) == 0 || strncmp(first, "logs", 4) == 0;
        assert_int_equal(strstr(r->headers, "x-key: acme-secret\r\n") != NULL, acme);
        int logs = strcmp(r->path, "/v1/logs") == 0;
        assert_int_equal(strncmp(first, "logs", 4) == 0, logs);
        assert_int_equal(strstr(r->headers, "x-dataset: logs-ds\r\n") != NULL, logs);
        assert_true(r->gzipped);
    }
    backend_down(&f);
    srv_stop(s);
}

static void test_gzip_body(void **state)
{
    (void)state;
    test_server *s = srv_start(0, NULL, 0);
    fixture f;
    backend_up(&f, "gz", "otlp_http", s->port, ", compression: gzip, batch: {max_items: 3, timeout: 1s}");
    uint8_t all[8192];
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        char tag[8];
        snprintf(tag, sizeof(tag), "g%d", i);
        size_t n = make_payload(all + total, sizeof(all) - total, 1, tag);
        push(f.b, OTLP_TRACES, "", all + total, n, 1);
        total += n;
    }
    assert_int_equal(srv_wait(s, 1, 3000), 1);
    assert_true(s->reqs[0].gzipped);
    assert_int_equal(s->reqs[0].body_len, total);
    assert_memory_equal(s->reqs[0].body, all, total);
    backend_down(&f);
    srv_stop(s);
}

static void test_retry_after_then_ok(void **state)
{
    (void)state;
    static const srv_reply script[] = {{503, "retry-after: 1\r\n", NULL, 0}};
    test_server *s = srv_start(0, script, 1);
    fixture f;
    backend_up(&f, "retry", "otlp_http", s->port,
               ", batch: {timeout: 0ms}, retry: {initial_interval: 50ms, max_interval: 100ms}");
    uint64_t t0 = now_ms();
    assert_int_equal(health_reaches(f.b, "retry", 1), 1);
    push_spans(f.b, "", 2, "r");
    /* Failing while the 503's Retry-After runs (not unready: it still queues). */
    assert_int_equal(health_reaches(f.b, "retry", 0), 0);
    assert_int_equal(f.b->ops->ready(f.b), 1);
    assert_int_equal(srv_wait(s, 2, 4000), 2);
    assert_true(now_ms() - t0 >= 900); /* Retry-After beats the 50 ms backoff */
    usleep(200000);
    assert_int_equal(srv_count(s), 2); /* delivered once */
    assert_int_equal(s->reqs[0].body_len, s->reqs[1].body_len);
    assert_memory_equal(s->reqs[0].body, s->reqs[1].body, s->reqs[0].body_len);
    assert_int_equal(counter("otlp_gateway_export_retries_total", "backend=\"retry\",signal=\"traces\""), 1);
    assert_int_equal(
        counter_reaches("otlp_gateway_export_sent_items_total",
                        "backend=\"retry\",signal=\"traces\"", 2),
        2);
    assert_int_equal(health_reaches(f.b, "retry", 1), 1); /* the retry was answered */
    backend_down(&f);
    srv_stop(s);
}

/* While the exporter waits out a 30 s Retry-After, a client refused for a
 * full queue is told to come back when the backend will take data again,
 * not in 1 s. */
static void test_retry_hint_follows_backoff(void **state)
{
    (void)state;
    static const srv_reply script[] = {{503, "retry-after: 30\r\n", NULL, 0}};
    test_server *s = srv_start(0, script, 1);
    fixture f;
    backend_up(&f, "hint", "otlp_http", s->port, ", batch: {timeout: 0ms}, retry: {initial_interval: 50ms}");
    assert_int_equal(f.b->ops->retry_after(f.b), 0); /* healthy: no reason to wait */
    push_spans(f.b, "", 1, "h");
    assert_int_equal(health_reaches(f.b, "hint", 0), 0);
    uint64_t end = now_ms() + 3000;
    while (f.b->ops->retry_after(f.b) < 2 && now_ms() < end)
        usleep(5000); /* failing is noted just before the wait starts */
    uint32_t hint = f.b->ops->retry_after(f.b);
    assert_in_range(hint, 28, 30);
    backend_down(&f); /* interrupts the wait */
    srv_stop(s);
}

/* Spans in the first n requests carrying header line `hdr`. */
static size_t spans_with(test_server *s, const char *hdr)
{
    size_t spans = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_reqs; i++)
        if (strstr(s->reqs[i].headers, hdr) != NULL)
            spans += body_spans(&s->reqs[i], NULL, 0);
    pthread_mutex_unlock(&s->lock);
    return spans;
}

/* Tenant A's key is throttled (429, Retry-After: 3): its batch waits, and
 * tenant B's batches -- queued behind it -- are delivered meanwhile, well
 * within A's wait. Once the throttle lifts A's spans arrive, once. */
static void test_throttled_tenant_isolated(void **state)
{
    (void)state;
    test_server *s = srv_start(0, NULL, 0);
    pthread_mutex_lock(&s->lock);
    s->throttle = "x-key: a-key\r\n";
    s->throttle_reply = (srv_reply){429, "retry-after: 3\r\n", NULL, 0};
    pthread_mutex_unlock(&s->lock);
    fixture f;
    backend_up(&f, "fair", "otlp_http", s->port,
               ", tenants: {ta: {headers: {x-key: a-key}}, tb: {headers: {x-key: b-key}}},"
               " batch: {timeout: 0ms}, retry: {initial_interval: 50ms, max_interval: 100ms}");
    push_spans(f.b, "ta", 2, "a");
    uint64_t end = now_ms() + 10000;
    while (spans_with(s, "x-key: a-key") == 0 && now_ms() < end)
        usleep(5000);
    assert_int_equal(spans_with(s, "x-key: a-key"), 2); /* A was tried, and throttled */
    uint64_t t0 = now_ms();
    for (int i = 0; i < 5; i++) {
        push_spans(f.b, "tb", 1, "b");
        push_spans(f.b, "ta", 1, "a");
    }
    while (spans_with(s, "x-key: b-key") < 5 && now_ms() - t0 < 5000)
        usleep(5000);
    uint64_t took = now_ms() - t0;
    assert_int_equal(spans_with(s, "x-key: b-key"), 5);
    assert_true(took < 2500); /* B did not wait for A's 3 s */
    pthread_mutex_lock(&s->lock);
    s->throttle = NULL; /* lift it */
    size_t before = s->n_reqs;
    pthread_mutex_unlock(&s->lock);
    assert_int_equal(counter_reaches("otlp_gateway_export_sent_items_total", "backend=\"fair\",signal=\"traces\"", 12),
                     12);
    pthread_mutex_lock(&s->lock);
    size_t a_after = 0;
    for (size_t i = before; i < s->n_reqs; i++)
        if (strstr(s->reqs[i].headers, "x-key: a-key") != NULL)
            a_after += body_spans(&s->reqs[i], NULL, 0);
    pthread_mutex_unlock(&s->lock);
    assert_int_equal(a_after, 7); /* every A span, delivered after the throttle lifted */
    assert_true(now_ms() - t0 >= 2000); /* not before A's Retry-After */
    backend_down(&f);
    srv_stop(s);
}

static void test_bad_request_dropped(void **state)
{
    (void)state;
    static const uint8_t status_pb[] = {0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'}; /* Status{code 3, "bad"} */
    static const srv_reply script[] = {{400, "", status_pb, sizeof(status_pb)}};
    test_server *s = srv_start(0, script, 1);
    fixture f;
    backend_up(&f, "drop", "otlp_http", s->port, ", batch: {timeout: 0ms}, retry: {initial_interval: 50ms}");
    push_spans(f.b, "", 3, "d");
    assert_int_equal(srv_wait(s, 1, 3000), 1);
    assert_int_equal(
        counter_reaches("otlp_gateway_export_failed_items_total",
                        "backend=\"drop\",signal=\"traces\",reason=\"dropped\"", 3),
        3);
    usleep(300000);
    assert_int_equal(srv_count(s), 1); /* not retried */
    assert_int_equal(counter("otlp_gateway_export_retries_total", "backend=\"drop\",signal=\"traces\""), 0);
    assert_int_equal(health_reaches(f.b, "drop", 1), 1); /* bad data says nothing about the backend */
    backend_down(&f);
    srv_stop(s);
}

static void test_partial_success(void **state)
{
    (void)state;
    /* ExportTraceServiceResponse{partial_success{rejected_spans: 2, error_message: "x"}} */
    static const uint8_t resp[] = {0x0a, 0x05, 0x08, 0x02, 0x12, 0x01, 'x'};
    static const srv_reply script[] = {{200, "", resp, sizeof(resp)}};
    test_server *s = srv_start(0, script, 1);
    fixture f;
    backend_up(&f, "partial", "otlp_http", s->port, ", batch: {timeout: 0ms}");
    push_spans(f.b, "", 5, "p");
    assert_int_equal(srv_wait(s, 1, 3000), 1);
    assert_int_equal(
        counter_reaches("otlp_gateway_export_sent_items_total",
                        "backend=\"partial\",signal=\"traces\"", 3),
        3);
    assert_int_equal(counter("otlp_gateway_export_failed_items_total",
                             "backend=\"partial\",signal=\"traces\",reason=\"rejected\""),
                     2);
    backend_down(&f);
    srv_stop(s);
}

/* Connection refused is a transport error: retried until the server is up. */
static void test_transport_error_retried(void **state)
{
    (void)state;
    test_server *probe = srv_start(0, NULL, 0);
    int port = probe->port;
    srv_stop(probe); /* now nothing listens there */
    fixture f;
    backend_up(&f, "down", "otlp_http", port,
               ", batch: {timeout: 0ms}, retry: {initial_interval: 100ms, max_interval: 200ms, jitter: 0}");
    push_spans(f.b, "", 1, "t");
    assert_true(counter_reaches("otlp_gateway_export_retries_total", "backend=\"down\",signal=\"traces\"", 2) >= 2);
    test_server *s = srv_start(port, NULL, 0);
    assert_int_equal(srv_wait(s, 1, 3000), 1);
    backend_down(&f);
    srv_stop(s);
}

/* A batch in pieces (uncompressed, sent unjoined through libcurl's read
 * callback) on a kept-alive connection that the server closes without an
 * answer: libcurl sends it again on a new connection, rewinding the body
 * through the seek callback. Without a working rewind libcurl fails the
 * transfer and the batch would wait out the 10 s backoff. */
static void test_reused_connection_resends_pieces(void **state)
{
    (void)state;
    test_server *s = srv_start(0, NULL, 0);
    s->drop_reused = 1;
    fixture f;
    backend_up(&f, "rewind", "otlp_http", s->port,
               ", compression: none, batch: {timeout: 300ms}, queue: {consumers: 1},"
               " retry: {initial_interval: 10s, max_interval: 10s, jitter: 0}");
    push_spans(f.b, "", 1, "first");
    assert_int_equal(srv_wait(s, 1, 3000), 1);
    uint8_t buf[4096];
    size_t len = make_payload(buf, sizeof(buf), 3, "b");
    push(f.b, OTLP_TRACES, "", buf, len, 3);
    push(f.b, OTLP_TRACES, "", buf, len, 3);
    assert_int_equal(srv_wait(s, 2, 5000), 2);
    assert_int_equal(s->dropped, 1);
    assert_two_entries(&s->reqs[1], buf, len);
    assert_int_equal(counter("otlp_gateway_export_retries_total", "backend=\"rewind\",signal=\"traces\""), 0);
    backend_down(&f);
    srv_stop(s);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const backend_error_case cases[] = {
        {"compression: br", "backends.x.compression: invalid value (use one of: none, gzip, zstd)"},
        {"batch: {max_item: 3}", "backends.x.batch.max_item: unknown key"},
        {"headers: {content-type: a}", "backends.x.headers.content-type: header is set by the exporter"},
        {"retry: {jitter: 2}", "backends.x.retry.jitter: expected a number from 0 to 1"},
        {"tls: {client_cert: /etc/hostname}", "backends.x.tls.client_key: client_cert and client_key go together"},
        {"encoding: xml", "backends.x.encoding: invalid value (use protobuf or json)"},
        {"paths: {traces: x}", "backends.x.paths.traces: must start with /"},
    };
    expect_backend_errors("type: otlp_http, endpoint: \"http://h\"", cases);
    /* gRPC frames gzip only; the endpoint needs a scheme */
    expect_backend_error("compression: otlp_grpc supports none or gzip",
                         "type: otlp_grpc, endpoint: \"http://h\", compression: zstd");
    expect_backend_error("endpoint: must start with http:// or https://",
                         "type: otlp_grpc, endpoint: \"jaeger:4317\"");
}

/* ---- the hooks the Elastic and AWS types build on, through a test type ----
 * prepare: the batch's bytes plus a default header a tenant may replace;
 * sign: fails on the first attempt, then adds "x-signed: <bytes on the
 * wire>" (so it must see the compressed body); classify: the first answered
 * attempt rejects 1 item and retries 2 of them as "RETRY-BODY", then OK. */
typedef struct hook_state {
    int signs, classifies;
    int saw_retry_body; /* the second answer came with "RETRY-BODY" as what was sent */
} hook_state;

static hook_state *hook_last; /* the state of the backend under test */

static char hook_url[64]; /* the test server's */

static void *hook_configure(const backend_config *cfg, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    return hook_last = calloc(1, sizeof(hook_state));
}

static int hook_prepare(void *st, const export_batch *b, export_http *out, char *err, size_t errlen)
{
    (void)st, (void)err, (void)errlen;
    /* cmocka's asserts belong to the test's thread: this is the exporter's */
    out->defaults = curl_slist_append(out->defaults, "x-group: default-group");
    return out->defaults == NULL || buf_puts(&out->url, hook_url) != 0 ||
                   buf_append(&out->body, b->body, b->body_len) != 0
               ? -1
               : 0;
}

static int hook_sign(void *st, const export_signing *req, struct curl_slist **extra, char *err, size_t errlen)
{
    hook_state *h = st;
    if (h->signs++ == 0) {
        snprintf(err, errlen, "no credentials yet");
        return -1;
    }
    char line[64];
    snprintf(line, sizeof(line), "x-signed: %zu", req->len);
    *extra = curl_slist_append(*extra, line);
    return 0;
}

static export_outcome hook_classify(void *st, const export_batch *b, const export_response *r, export_result *res)
{
    hook_state *h = st;
    (void)b;
    if (r->http_status == 0) /* like every real type: a transport (or signing) error is retried */
        return EXPORT_RETRY;
    if (r->http_status != 200)
        return EXPORT_FAIL;
    if (h->classifies++ == 0) {
        res->rejected = 1;
        res->retry_items = 2;
        snprintf(res->msg, res->msglen, "item 0: mapper_parsing_exception");
        return buf_puts(res->retry_body, "RETRY-BODY") == 0 ? EXPORT_RETRY : EXPORT_FAIL;
    }
    h->saw_retry_body = r->request_len == 10 && memcmp(r->request_body, "RETRY-BODY", 10) == 0;
    return EXPORT_OK;
}

static void hook_destroy(void *st) { free(st); }

/* A backend named after test type `type` sending to s (hook_url is set to
 * its /bulk), with `settings` added to its config mapping. */
static backend *type_backend(const exporter_type *type, const test_server *s, const char *settings, config **cfg)
{
    snprintf(hook_url, sizeof(hook_url), "http://127.0.0.1:%d/bulk", s->port);
    char yaml[1024], err[512];
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\n"
             "backends:\n  %s: {type: otlp_http, endpoint: \"http://127.0.0.1:%d\", %s}\n",
             type->name, s->port, settings);
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), cfg, err, sizeof(err)), 0);
    backend *b = exporter_backend_create(type, &(*cfg)->routing.backends[0], err, sizeof(err));
    if (b == NULL)
        fail_msg("%s", err);
    return b;
}

static void test_type_hooks(void **state)
{
    (void)state;
    static const exporter_type hook_type = {.name = "hooks", .configure = hook_configure,
                                            .prepare = hook_prepare, .classify = hook_classify,
                                            .sign = hook_sign, .destroy = hook_destroy};
    test_server *s = srv_start(0, NULL, 0);
    config *cfg;
    backend *b = type_backend(&hook_type, s,
                              "batch: {timeout: 0ms}, retry: {initial_interval: 50ms, max_interval: 50ms, jitter: 0},"
                              " tenants: {acme: {headers: {x-group: acme-group}}}",
                              &cfg);
    push_spans(b, "acme", 4, "h");
    assert_int_equal(srv_wait(s, 2, 3000), 2);
    /* attempt 1 was never sent (signing failed); 2 and 3 were */
    const char *want_lines[] = {"x-group: acme-group", "content-encoding: gzip"};
    for (size_t i = 0; i < 2; i++) {
        const srv_request *r = &s->reqs[i];
        assert_string_equal(r->path, "/bulk");
        for (size_t k = 0; k < 2; k++)
            assert_non_null(strstr(r->headers, want_lines[k]));
        assert_null(strstr(r->headers, "default-group")); /* the tenant's header replaced the default */
        assert_true(r->gzipped);
    }
    char first[64];
    assert_int_equal(body_spans(&s->reqs[0], first, sizeof(first)), 4);
    assert_int_equal(s->reqs[1].body_len, 10);
    assert_memory_equal(s->reqs[1].body, "RETRY-BODY", 10);
    /* the signature saw the compressed length: re-gzip the retry body */
    buf z = BUF_INIT;
    assert_int_equal(gzip_deflate((const uint8_t *)"RETRY-BODY", 10, -1, &z), GZIP_OK);
    char want[64];
    snprintf(want, sizeof(want), "x-signed: %zu\r\n", z.len);
    assert_non_null(strstr(s->reqs[1].headers, want));
    buf_free(&z);
    /* 4 items: 1 rejected, 1 delivered by attempt 2, 2 by attempt 3 */
    assert_int_equal(
        counter_reaches("otlp_gateway_export_sent_items_total",
                        "backend=\"hooks\",signal=\"traces\"", 3),
        3);
    assert_int_equal(
        counter("otlp_gateway_export_failed_items_total", "backend=\"hooks\",signal=\"traces\",reason=\"rejected\""),
        1);
    assert_int_equal(counter("otlp_gateway_export_retries_total", "backend=\"hooks\",signal=\"traces\""), 2);
    assert_true(hook_last->saw_retry_body); /* classify is told what the attempt sent, uncompressed */
    b->ops->destroy(b);
    config_free(cfg);
    srv_stop(s);
}

/* A per_consumer type: every consumer thread has a state of its own, so
 * what prepare leaves for classify (here: the batch's item count) is never
 * overwritten by another batch in flight. */
typedef struct own_state {
    _Atomic(pthread_t *) owner; /* the one consumer thread that uses this state */
    pthread_t self;
    uint64_t prepared_items;    /* prepare -> classify */
    atomic_int foreign_use, mismatches, batches;
} own_state;

static own_state *own_states[8];
static atomic_int own_configured;

static void *own_configure(const backend_config *cfg, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    int i = atomic_fetch_add(&own_configured, 1);
    return i < 8 ? (own_states[i] = calloc(1, sizeof(own_state))) : NULL;
}

static void own_use(own_state *o)
{
    pthread_t me = pthread_self();
    pthread_t *none = NULL;
    o->self = me;
    if (!atomic_compare_exchange_strong(&o->owner, &none, &o->self) && !pthread_equal(*atomic_load(&o->owner), me))
        atomic_fetch_add(&o->foreign_use, 1);
}

static int own_prepare(void *st, const export_batch *b, export_http *out, char *err, size_t errlen)
{
    own_state *o = st;
    (void)err, (void)errlen;
    own_use(o);
    o->prepared_items = b->items;
    usleep(20 * 1000); /* long enough for the other consumers to take batches meanwhile */
    return buf_puts(&out->url, hook_url) != 0 || buf_append(&out->body, b->body, b->body_len) != 0 ? -1 : 0;
}

static export_outcome own_classify(void *st, const export_batch *b, const export_response *r, export_result *res)
{
    own_state *o = st;
    (void)res;
    own_use(o);
    atomic_fetch_add(&o->batches, 1);
    if (o->prepared_items != b->items)
        atomic_fetch_add(&o->mismatches, 1);
    return r->http_status == 200 ? EXPORT_OK : EXPORT_RETRY;
}

static void own_destroy(void *st) { (void)st; /* freed by the test, which reads them after destroy */ }

static void test_type_per_consumer(void **state)
{
    (void)state;
    static const exporter_type own_type = {.name = "own", .per_consumer = 1, .configure = own_configure,
                                           .prepare = own_prepare, .classify = own_classify,
                                           .destroy = own_destroy};
    test_server *s = srv_start(0, NULL, 0);
    config *cfg;
    backend *b = type_backend(&own_type, s, "compression: none, batch: {timeout: 0ms, max_items: 8}, queue: {consumers: 4}",
                              &cfg);
    assert_int_equal(atomic_load(&own_configured), 4);
    /* batches of different sizes, so a state shared between two batches in
     * flight would hand classify the other batch's count */
    unsigned total = 0;
    for (unsigned i = 0; i < 24; i++) {
        push_spans(b, NULL, 1 + i % 5, "p");
        total += 1 + i % 5;
    }
    assert_int_equal(counter_reaches("otlp_gateway_export_sent_items_total", "backend=\"own\",signal=\"traces\"",
                                     total),
                     total);
    b->ops->destroy(b);
    int used = 0, batches = 0;
    for (int i = 0; i < 4; i++) {
        own_state *o = own_states[i];
        assert_int_equal(atomic_load(&o->foreign_use), 0);
        assert_int_equal(atomic_load(&o->mismatches), 0);
        used += atomic_load(&o->batches) > 0;
        batches += atomic_load(&o->batches);
        free(o);
    }
    assert_true(used >= 2); /* batches were in flight at once */
    assert_true(batches >= 5);
    config_free(cfg);
    srv_stop(s);
}

/* A per_consumer type whose configure fails for the third consumer: the
 * backend is not made, its error says why, and the states already made are
 * destroyed. */
static int third_made, third_destroyed;

static void *third_configure(const backend_config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    if (++third_made == 3) {
        snprintf(err, errlen, "third consumer refused");
        return NULL;
    }
    return calloc(1, sizeof(own_state));
}

static void third_destroy(void *st)
{
    third_destroyed++;
    free(st);
}

static void test_type_per_consumer_configure_fails(void **state)
{
    (void)state;
    static const exporter_type third_type = {.name = "third", .per_consumer = 1, .configure = third_configure,
                                             .prepare = own_prepare, .classify = own_classify,
                                             .destroy = third_destroy};
    const char *yaml = "listeners: [{name: l, http: 127.0.0.1:0}]\n"
                       "backends:\n  third: {type: otlp_http, endpoint: \"http://127.0.0.1:9\", queue: {consumers: 4}}\n";
    char err[512] = "";
    config *cfg;
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
    assert_null(exporter_backend_create(&third_type, &cfg->routing.backends[0], err, sizeof(err)));
    assert_string_equal(err, "third consumer refused");
    assert_int_equal(third_made, 3);
    assert_int_equal(third_destroyed, 2);
    config_free(cfg);
}

/* A type's request limits are the batch defaults and ceilings. */
static void test_type_limits(void **state)
{
    (void)state;
    static const exporter_type limited = {.name = "limited", .max_batch_items = 100, .max_batch_bytes = 1000,
                                          .configure = hook_configure, .prepare = hook_prepare,
                                          .classify = hook_classify, .destroy = hook_destroy};
    static const struct {
        const char *batch, *want;
    } cases[] = {
        {"{max_items: 101}", "t.yaml:3:43: backends.x.batch.max_items: \"101\" is out of range (1..100)"},
        {"{max_bytes: 1001}", "backends.x.batch.max_bytes: at most 1000 for limited (the service's request limit)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512], err[512] = "";
        config *cfg;
        snprintf(yaml, sizeof(yaml),
                 "listeners: [{name: l, http: 127.0.0.1:0}]\nbackends:\n  x: {type: otlp_http, batch: %s, endpoint: "
                 "\"http://h\"}\n",
                 cases[i].batch);
        assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
        assert_null(exporter_backend_create(&limited, &cfg->routing.backends[0], err, sizeof(err)));
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
        config_free(cfg);
    }
}

/* The gRPC type's status mapping, straight through classify. */
static void test_grpc_classify(void **state)
{
    (void)state;
    const exporter_type *t = &exporter_otlp_grpc;
    export_batch b = {.signal = OTLP_TRACES, .tenant = "", .items = 4};
    static const struct {
        long http;
        int grpc;
        uint32_t retry_after;
        export_outcome want;
    } cases[] = {
        {200, 0, 0, EXPORT_OK},     {200, 1, 0, EXPORT_RETRY},  {200, 4, 0, EXPORT_RETRY},
        {200, 10, 0, EXPORT_RETRY}, {200, 11, 0, EXPORT_RETRY}, {200, 14, 0, EXPORT_RETRY},
        {200, 15, 0, EXPORT_RETRY}, {200, 8, 0, EXPORT_FAIL},   {200, 8, 2, EXPORT_RETRY},
        {200, 3, 0, EXPORT_FAIL},   {200, 16, 0, EXPORT_FAIL},  {200, -1, 0, EXPORT_FAIL},
        {503, -1, 0, EXPORT_RETRY}, {429, -1, 0, EXPORT_RETRY}, {404, -1, 0, EXPORT_FAIL},
        {0, -1, 0, EXPORT_RETRY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        export_response r = {.http_status = cases[i].http, .grpc_status = cases[i].grpc,
                             .retry_after_s = cases[i].retry_after, .error = cases[i].http ? NULL : "refused"};
        char msg[128] = "";
        export_result res = {.retry_after_s = r.retry_after_s, .msg = msg, .msglen = sizeof(msg)};
        if (t->classify(NULL, &b, &r, &res) != cases[i].want)
            fail_msg("case %zu (http %ld grpc %d)", i, cases[i].http, cases[i].grpc);
        if (cases[i].grpc == -1 && cases[i].http == 200)
            assert_string_equal(msg, "no grpc-status");
    }
    /* partial success in the framed reply */
    static const uint8_t reply[] = {0, 0, 0, 0, 7, 0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, 'y'};
    export_response r = {.http_status = 200, .grpc_status = 0, .body = reply, .body_len = sizeof(reply)};
    char msg[128] = "";
    export_result res = {.msg = msg, .msglen = sizeof(msg)};
    assert_int_equal(t->classify(NULL, &b, &r, &res), EXPORT_OK);
    assert_int_equal(res.rejected, 3);
    assert_string_equal(msg, "y");
}

/* An unknown type names every known one, in registry order, as the message
 * did when the list was written out by hand. */
static void test_unknown_type(void **state)
{
    (void)state;
    const char yaml[] = "listeners: [{name: l, http: 127.0.0.1:0}]\n"
                        "backends:\n  x: {type: honeycomb}\n";
    char err[512];
    config *cfg;
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
    unsigned signals;
    assert_int_equal(backend_check(&cfg->routing.backends[0], &signals, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown backend type \"honeycomb\" (known: file, discard, otlp_http, otlp_grpc, "
                                "elastic_otlp, elasticsearch, aws_xray, aws_cloudwatch_logs, "
                                "prometheus_remote_write)"));
    assert_null(backend_create(&cfg->routing.backends[0], err, sizeof(err)));
    assert_non_null(strstr(err, "(known: file, discard, otlp_http,"));
    config_free(cfg);
}

int main(void)
{
    /* The in-test server may answer a connection curl already closed (a
     * timed-out or reset exchange); like the gateway's main, ignore SIGPIPE
     * so that write fails with EPIPE instead of killing the test. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_grpc_classify),
        cmocka_unit_test(test_batch_max_items),
        cmocka_unit_test(test_oversized_entry_is_split),
        cmocka_unit_test(test_batch_timeout),
        cmocka_unit_test(test_batch_max_bytes),
        cmocka_unit_test(test_tenants_and_signals),
        cmocka_unit_test(test_gzip_body),
        cmocka_unit_test(test_retry_after_then_ok),
        cmocka_unit_test(test_throttled_tenant_isolated),
        cmocka_unit_test(test_retry_hint_follows_backoff),
        cmocka_unit_test(test_bad_request_dropped),
        cmocka_unit_test(test_partial_success),
        cmocka_unit_test(test_transport_error_retried),
        cmocka_unit_test(test_reused_connection_resends_pieces),
        cmocka_unit_test(test_type_hooks),
        cmocka_unit_test(test_type_per_consumer),
        cmocka_unit_test(test_type_per_consumer_configure_fails),
        cmocka_unit_test(test_type_limits),
        cmocka_unit_test(test_unknown_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
