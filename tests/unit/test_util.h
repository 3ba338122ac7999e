/* test_util: helpers more than one unit test needs. Include it after
 * <cmocka.h> (it asserts with cmocka); everything is static inline, so a test
 * pays only for what it calls.
 *
 *   loopback_listen        a listening (or only bound) socket on 127.0.0.1:<free port>
 *   loopback_start/stop    a TCP server on 127.0.0.1:<free port> whose one
 *                          thread accepts connections one at a time and hands
 *                          each to the test's answer(ctx, fd) (then closes it)
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
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a loopback TCP server ---- */

typedef struct loopback_server {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
    void (*answer)(void *ctx, int conn); /* answers one connection; the server closes it */
    void *ctx;
} loopback_server;

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
    int fd = socket(AF_INET, SOCK_STREAM | flags, 0);
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
#endif /* GW_TEST_UTIL_H */
