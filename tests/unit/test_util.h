/* test_util: helpers more than one unit test needs. Include it after
 * <cmocka.h> (it asserts with cmocka); everything is static inline, so a test
 * pays only for what it calls.
 *
 *   loopback_start/stop    a TCP server on 127.0.0.1:<free port> whose one
 *                          thread accepts connections one at a time and hands
 *                          each to the test's answer(ctx, fd) (then closes it)
 *   expect_backend_error   (include "backend.h" first) a one-backend config
 *                          loads, backend_create refuses it, and the error is
 *                          located at t.yaml:3 and says what the test wants
 *   expect_backend_errors  the same over a table of {keys, want} cases
 *   expect_backend_ok      the config's first backend is created
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

static inline void loopback_start(loopback_server *ls, void (*answer)(void *ctx, int conn), void *ctx)
{
    memset(ls, 0, sizeof(*ls));
    ls->answer = answer;
    ls->ctx = ctx;
    ls->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(ls->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(ls->fd, 64), 0);
    assert_int_equal(getsockname(ls->fd, (struct sockaddr *)&a, &al), 0);
    ls->port = ntohs(a.sin_port);
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
#endif /* GW_TEST_UTIL_H */
