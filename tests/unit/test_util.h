/* test_util: helpers more than one unit test needs. Include it after
 * <cmocka.h> (it asserts with cmocka); everything is static inline, so a test
 * pays only for what it calls.
 *
 *   loopback_listen        a listening (or only bound) socket on 127.0.0.1:<free port>
 *   loopback_start/stop    a TCP server on 127.0.0.1:<free port> whose one
 *                          thread accepts connections one at a time and hands
 *                          each to the test's answer(ctx, fd) (then closes it)
 *   loopback_connect       a client connection to 127.0.0.1:<port>
 *   run_on_small_stack     a call on a thread with a small stack (recursion bounds)
 *   loopback_read_to_eof   everything a peer sends until it closes, bounded
 *   http_exchange          one raw HTTP/1.1 request over a new connection, and
 *                          the whole response (the request says Connection: close)
 *   http_status/http_header/http_body   pieces of such a response
 *   expect_backend_error   (include "backend.h" first) a one-backend config
 *                          loads, backend_create refuses it, and the error is
 *                          located at t.yaml:3 and says what the test wants
 *   expect_backend_errors  the same over a table of {keys, want} cases
 *   expect_backend_ok      the config's first backend is created
 *   self_signed_server_ctx (include <openssl/x509v3.h> and <openssl/pem.h>
 *                          first) a TLS server context with a throwaway
 *                          certificate for localhost / 127.0.0.1
 *   make_payload           (include "trace_service.pb-c.h" first) an encoded
 *                          ExportTraceServiceRequest with n valid spans
 */
#ifndef GW_TEST_UTIL_H
#define GW_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- a loopback TCP server ---- */

typedef struct loopback_server {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
    void (*answer)(void *ctx, int conn); /* answers one connection; the server closes it */
    void *ctx;
} loopback_server;

/* A TCP socket listening on 127.0.0.1 at a free port (set in *port);
 * flags go to socket(2) with the type (e.g. SOCK_NONBLOCK for an event loop). */
static inline void *loopback_main(void *arg)
{
    loopback_server *ls = arg;
    while (!atomic_load(&ls->stop)) {
        struct pollfd pfd = {.fd = ls->fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int c = accept(ls->fd, NULL, NULL);
        if (c < 0)
            continue;
        ls->answer(ls->ctx, c);
        close(c);
    }
    return NULL;
}

/* A TCP socket on 127.0.0.1:<free port> (socket() `flags` such as
 * SOCK_NONBLOCK), listening with `backlog` unless it is 0 (then only bound,
 * e.g. to learn a port nothing listens on once closed). */
static inline int loopback_listen(int flags, int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (backlog > 0)
        assert_int_equal(listen(fd, backlog), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static inline void loopback_start(loopback_server *ls, void (*answer)(void *ctx, int conn), void *ctx)
{
    memset(ls, 0, sizeof(*ls));
    ls->answer = answer;
    ls->ctx = ctx;
    ls->fd = loopback_listen(0, 64, &ls->port);
    assert_int_equal(pthread_create(&ls->thread, NULL, loopback_main, ls), 0);
}

static inline void loopback_stop(loopback_server *ls)
{
    atomic_store(&ls->stop, true);
    pthread_join(ls->thread, NULL);
    close(ls->fd);
}

/* ---- a loopback TCP client ---- */

static inline uint64_t loopback_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A blocking connection to 127.0.0.1:port; -1 when it is refused. */
static inline int loopback_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the peer closes (EOF or reset) into out (NUL-terminated);
 * returns the bytes read, or -1 when timeout_ms passed or out filled up
 * first. */
static inline ssize_t loopback_read_to_eof(int fd, char *out, size_t cap, int timeout_ms)
{
    size_t len = 0;
    uint64_t end = loopback_now_ms() + (uint64_t)timeout_ms;
    while (loopback_now_ms() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0) {
            out[len] = '\0';
            return (ssize_t)len;
        }
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    return -1;
}

/* ---- raw HTTP/1.1 ---- */

/* Sends `method path` with the extra header lines `headers` ("Name: v\r\n"
 * each, may be "") and Content-Length: content_length (-1: none) followed by
 * the `len` bytes of body (fewer than content_length announces a body the
 * server never gets in full), then reads the response until the server
 * closes. Returns the response length (resp NUL-terminated). */
static inline size_t http_exchange(int port, const char *method, const char *path, const char *headers,
                                   long content_length, const void *body, size_t len, char *resp, size_t cap)
{
    char head[2048];
    int hl = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%s", method, path,
                      headers);
    if (content_length >= 0)
        hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "Content-Length: %ld\r\n", content_length);
    hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "\r\n");
    assert_true(hl > 0 && (size_t)hl < sizeof(head));
    char *req = malloc((size_t)hl + len);
    memcpy(req, head, (size_t)hl);
    if (len)
        memcpy(req + hl, body, len);
    int fd = loopback_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, req, (size_t)hl + len, MSG_NOSIGNAL), (ssize_t)((size_t)hl + len));
    free(req);
    ssize_t n = loopback_read_to_eof(fd, resp, cap, 5000);
    close(fd);
    assert_true(n > 0);
    return (size_t)n;
}

/* The status code of a response, 0 when it has no status line. */
static inline int http_status(const char *resp)
{
    return strncmp(resp, "HTTP/1.1 ", 9) == 0 ? atoi(resp + 9) : 0;
}

/* The value of header `name` (case-insensitive) copied into out, or NULL
 * when the response head has no such header. */
static inline const char *http_header(const char *resp, const char *name, char *out, size_t cap)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *p = strstr(resp, "\r\n"); p != NULL && p < end; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            return out;
        }
    }
    return NULL;
}

/* The body of a response (after the head), "" when there is none; a chunked
 * body is decoded in place. */
static inline const char *http_body(char *resp)
{
    char *body = strstr(resp, "\r\n\r\n"), te[32];
    if (body == NULL)
        return "";
    body += 4;
    if (http_header(resp, "transfer-encoding", te, sizeof(te)) == NULL || strcasecmp(te, "chunked") != 0)
        return body;
    char *in = body, *out = body, *end;
    for (unsigned long n; (n = strtoul(in, &end, 16)) > 0; in = end + 2 + n + 2, out += n) {
        assert_true(end != in && strncmp(end, "\r\n", 2) == 0 && n + 2 <= strlen(end + 2));
        memmove(out, end + 2, n);
    }
    *out = '\0';
    return body;
}

/* ---- backend configs (with backend.h) ---- */
#ifdef GW_BACKEND_H

#define TEST_LISTENERS "listeners: [{name: l, http: 127.0.0.1:0}]\n"

/* Loads `yaml` as t.yaml (it must parse) and creates its first backend, which
 * must succeed; free with b->ops->destroy(b) and config_free(*cfg). */
static inline backend *expect_backend_ok(const char *yaml, config **cfg)
{
    char err[512] = "";
    if (config_load_string("t.yaml", yaml, strlen(yaml), cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    backend *b = backend_create(&(*cfg)->routing.backends[0], err, sizeof(err));
    if (b == NULL)
        fail_msg("backend_create: %s", err);
    return b;
}

/* A config whose one backend is `x: {<fmt, ...>}` (on line 3 of t.yaml) must
 * load, and backend_create must refuse it with an error that starts with
 * "t.yaml:3:" and contains `want`; backend_check (--check-config) must refuse
 * it with the same error. */
static inline void expect_backend_error(const char *want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void expect_backend_error(const char *want, const char *fmt, ...)
{
    char keys[1024], yaml[1536], err[512] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(keys, sizeof(keys), fmt, ap);
    va_end(ap);
    snprintf(yaml, sizeof(yaml), TEST_LISTENERS "backends:\n  x: {%s}\n", keys);
    config *cfg;
    if (config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)) != 0)
        fail_msg("{%s}: config: %s", keys, err);
    backend *b = backend_create(&cfg->routing.backends[0], err, sizeof(err));
    if (b != NULL)
        fail_msg("{%s}: backend_create succeeded, want \"%s\"", keys, want);
    if (strstr(err, want) == NULL || strncmp(err, "t.yaml:3:", 9) != 0)
        fail_msg("{%s}: got \"%s\", want \"t.yaml:3:...%s\"", keys, err, want);
    char check_err[512] = "";
    unsigned signals;
    if (backend_check(&cfg->routing.backends[0], &signals, check_err, sizeof(check_err)) == 0)
        fail_msg("{%s}: backend_check passed what backend_create refuses: \"%s\"", keys, err);
    if (strcmp(check_err, err) != 0)
        fail_msg("{%s}: backend_check says \"%s\", backend_create \"%s\"", keys, check_err, err);
    config_free(cfg);
}

typedef struct backend_error_case {
    const char *keys; /* flow-mapping keys added to the backend's own */
    const char *want; /* what the error must contain */
} backend_error_case;

/* expect_backend_error for each case of the array `cases` (not a pointer), on
 * backend `x: {<backend>, <keys>}`. */
#define expect_backend_errors(backend, cases)                                                                         \
    do {                                                                                                              \
        for (size_t i_ = 0; i_ < sizeof(cases) / sizeof((cases)[0]); i_++)                                           \
            expect_backend_error((cases)[i_].want, "%s, %s", (backend), (cases)[i_].keys);                            \
    } while (0)

#endif /* GW_BACKEND_H */

/* ---- TLS (with <openssl/x509v3.h>) ---- */
#if defined(OPENSSL_X509V3_H) && defined(OPENSSL_PEM_H)

static inline void pem_write_file(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(x ? PEM_write_X509(fp, x) : PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
}

/* A TLS server context whose certificate, for localhost and 127.0.0.1 and
 * valid for an hour, is self-signed and its own CA. With cert_path and
 * key_path (else NULL) the certificate and key are also written there as
 * PEM, for a client that takes files. */
static inline SSL_CTX *self_signed_server_ctx(const char *cert_path, const char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, name);
    const char *exts[][2] = {{"subjectAltName", "DNS:localhost,IP:127.0.0.1"}, {"basicConstraints", "critical,CA:TRUE"}};
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, OBJ_txt2nid(exts[i][0]), exts[i][1]);
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    if (cert_path != NULL) {
        pem_write_file(cert_path, x, NULL);
        pem_write_file(key_path, NULL, key);
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

#endif /* openssl/x509v3.h, openssl/pem.h */

/* ---- trace payloads (with trace_service.pb-c.h) ---- */
#ifdef PROTOBUF_C_trace_5fservice_2eproto__INCLUDED

/* An ExportTraceServiceRequest with `spans` spans named "<tag>-<i>". */
static inline size_t make_payload(uint8_t *out, size_t cap, unsigned spans, const char *tag)
{
    static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    Opentelemetry__Proto__Trace__V1__Span span[16], *sp[16];
    char names[16][32];
    assert_true(spans <= 16);
    for (unsigned i = 0; i < spans; i++) {
        opentelemetry__proto__trace__v1__span__init(&span[i]);
        span[i].trace_id = (ProtobufCBinaryData){16, tid};
        span[i].span_id = (ProtobufCBinaryData){8, sid};
        snprintf(names[i], sizeof(names[i]), "%s-%u", tag, i);
        span[i].name = names[i];
        sp[i] = &span[i];
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT, *ssp = &ss;
    ss.n_spans = spans;
    ss.spans = sp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT,
                                                   *rsp = &rs;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    assert_true(n <= cap);
    return opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out);
}

#endif /* trace_service.pb-c.h */
/* Runs fn(arg) on a thread whose stack is only stack_bytes and returns its
 * result: a recursion that would overflow a worker's stack crashes here
 * first (worker threads get the default, 8 MiB, far more). */
typedef struct small_stack_call {
    int (*fn)(void *arg);
    void *arg;
    int result;
} small_stack_call;

static inline void *small_stack_main(void *p)
{
    small_stack_call *c = p;
    c->result = c->fn(c->arg);
    return NULL;
}

static inline int run_on_small_stack(int (*fn)(void *arg), void *arg, size_t stack_bytes)
{
    small_stack_call c = {.fn = fn, .arg = arg};
    pthread_attr_t at;
    pthread_t t;
    assert_int_equal(pthread_attr_init(&at), 0);
    assert_int_equal(pthread_attr_setstacksize(&at, stack_bytes), 0);
    assert_int_equal(pthread_create(&t, &at, small_stack_main, &c), 0);
    pthread_attr_destroy(&at);
    assert_int_equal(pthread_join(t, NULL), 0);
    return c.result;
}

#endif /* GW_TEST_UTIL_H */
