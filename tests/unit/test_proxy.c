/* test_proxy: the PROXY protocol parser, byte by byte, and proxy_accept in
 * front of a real h2o HTTP listener (plain and TLS).
 *
 * Parser tests check the two promises proxy_parse makes: every proper prefix
 * of a valid header is NEED_MORE, and bytes that cannot start a header are
 * INVALID at the first byte that gives them away (not later, or a plain
 * client would wait for the header timeout).
 *
 * Listener tests run the h2o loop in a thread; the test thread is a blocking
 * client. The handler echoes the peer address h2o reports, which is what the
 * auth layer sees. */
#include <arpa/inet.h>
#include <errno.h>
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "http.h"
#include "proxy.h"
#include "test_util.h"

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 header: signature, ver/cmd, fam, then `block` (addresses and TLVs). */
static size_t v2_build(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *block, size_t blen)
{
    memcpy(out, v2_sig, sizeof(v2_sig));
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(blen >> 8);
    out[15] = (uint8_t)blen;
    if (blen > 0) /* block may be NULL for an empty address block */
        memcpy(out + 16, block, blen);
    return 16 + blen;
}

/* 10.1.2.3:4567 -> 10.0.0.1:443 */
static const uint8_t inet_block[12] = {10, 1, 2, 3, 10, 0, 0, 1, 0x11, 0xd7, 0x01, 0xbb};

/* Every proper prefix NEED_MORE, the whole OK (also with bytes after it). */
static proxy_header assert_valid(const uint8_t *p, size_t len)
{
    proxy_header h;
    for (size_t i = 0; i < len; i++) {
        if (proxy_parse(p, i, &h) != PROXY_NEED_MORE)
            fail_msg("prefix of %zu of %zu bytes is not NEED_MORE", i, len);
    }
    uint8_t more[PROXY_MAX_HEADER + 32];
    memcpy(more, p, len);
    memcpy(more + len, "GET / HTTP/1.1\r\n", 16);
    assert_int_equal(proxy_parse(more, len + 16, &h), PROXY_OK);
    assert_int_equal(h.consumed, len);
    assert_int_equal(proxy_parse(p, len, &h), PROXY_OK);
    assert_int_equal(h.consumed, len);
    return h;
}

/* Prefixes shorter than at+1 are NEED_MORE; from byte `at` on, INVALID. */
static void assert_invalid_at(const void *data, size_t len, size_t at)
{
    const uint8_t *p = data;
    proxy_header h;
    for (size_t i = 0; i <= len; i++) {
        proxy_status want = i <= at ? PROXY_NEED_MORE : PROXY_INVALID;
        proxy_status got = proxy_parse(p, i, &h);
        if (got != want)
            fail_msg("%zu of %zu bytes: got %d, want %d (invalid at %zu)", i, len, got, want, at);
    }
}

static void assert_sin(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    char text[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
        assert_int_equal(ntohs(sin->sin_port), port);
    } else {
        assert_int_equal(ss->ss_family, AF_INET6);
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
        assert_int_equal(ntohs(sin6->sin6_port), port);
    }
    assert_string_equal(text, addr);
}

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* ---- parser: valid headers ------------------------------------------------ */

static void test_v1_valid(void **state)
{
    (void)state;
    proxy_header h = assert_valid(S("PROXY TCP4 192.168.0.1 10.0.0.2 56324 443\r\n"));
    assert_int_equal(h.version, 1);
    assert_false(h.local);
    assert_int_equal(h.src_len, sizeof(struct sockaddr_in));
    assert_sin(&h.src, "192.168.0.1", 56324);
    assert_sin(&h.dst, "10.0.0.2", 443);

    h = assert_valid(S("PROXY TCP6 2001:db8::1 ::ffff:10.0.0.2 0 65535\r\n"));
    assert_false(h.local);
    assert_int_equal(h.src_len, sizeof(struct sockaddr_in6));
    assert_sin(&h.src, "2001:db8::1", 0);
    assert_sin(&h.dst, "::ffff:10.0.0.2", 65535);

    h = assert_valid(S("PROXY UNKNOWN\r\n"));
    assert_true(h.local);
    h = assert_valid(S("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"));
    assert_true(h.local);

    /* The longest lines: 104 bytes for TCP6, 107 (the limit) for UNKNOWN. */
    const char *tcp6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(tcp6), 104);
    assert_valid((const uint8_t *)tcp6, 104);
    const char *unknown = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(unknown), 107);
    assert_valid((const uint8_t *)unknown, 107);
}

static void test_v2_valid(void **state)
{
    (void)state;
    uint8_t b[PROXY_MAX_HEADER];
    proxy_header h = assert_valid(b, v2_build(b, 0x21, 0x11, inet_block, sizeof(inet_block)));
    assert_int_equal(h.version, 2);
    assert_false(h.local);
    assert_sin(&h.src, "10.1.2.3", 4567);
    assert_sin(&h.dst, "10.0.0.1", 443);

    uint8_t six[36] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1, [16] = 0xfe, [17] = 0x80, [31] = 2,
                       [32] = 0x30, [33] = 0x39, [34] = 0x00, [35] = 0x50};
    h = assert_valid(b, v2_build(b, 0x21, 0x21, six, sizeof(six)));
    assert_false(h.local);
    assert_int_equal(h.src_len, sizeof(struct sockaddr_in6));
    assert_sin(&h.src, "2001:db8::1", 12345);
    assert_sin(&h.dst, "fe80::2", 80);

    /* TLVs as an NLB sends them (PP2_TYPE_AWS with a VPC endpoint id), an
     * empty one and NOOP padding. */
    uint8_t tlv[12 + 3 + 23 + 3 + 3 + 5];
    memcpy(tlv, inet_block, 12);
    size_t n = 12;
    tlv[n++] = 0xEA;
    tlv[n++] = 0;
    tlv[n++] = 23;
    tlv[n++] = 0x01;
    memcpy(tlv + n, "vpce-0123456789abcdefg", 22);
    n += 22;
    tlv[n++] = 0x05; /* UNIQUE_ID, empty */
    tlv[n++] = 0;
    tlv[n++] = 0;
    tlv[n++] = 0x04; /* NOOP */
    tlv[n++] = 0;
    tlv[n++] = 5;
    memset(tlv + n, 0, 5);
    n += 5;
    assert_int_equal(n, sizeof(tlv));
    h = assert_valid(b, v2_build(b, 0x21, 0x11, tlv, n));
    assert_int_equal(h.consumed, 16 + n);
    assert_sin(&h.src, "10.1.2.3", 4567);

    /* LOCAL (a balancer's health check): addresses ignored, whatever they say. */
    h = assert_valid(b, v2_build(b, 0x20, 0x00, NULL, 0));
    assert_true(h.local);
    h = assert_valid(b, v2_build(b, 0x20, 0x11, inet_block, sizeof(inet_block)));
    assert_true(h.local);
    /* PROXY with UNSPEC or UNIX: nothing usable as a TCP peer. */
    h = assert_valid(b, v2_build(b, 0x21, 0x00, NULL, 0));
    assert_true(h.local);
    uint8_t unix_block[216] = {'/'};
    h = assert_valid(b, v2_build(b, 0x21, 0x31, unix_block, sizeof(unix_block)));
    assert_true(h.local);

    /* The largest accepted header. */
    static uint8_t big[PROXY_MAX_HEADER - 16];
    memcpy(big, inet_block, 12);
    big[12] = 0x04;
    big[13] = (uint8_t)((sizeof(big) - 15) >> 8);
    big[14] = (uint8_t)(sizeof(big) - 15);
    h = assert_valid(b, v2_build(b, 0x21, 0x11, big, sizeof(big)));
    assert_int_equal(h.consumed, PROXY_MAX_HEADER);
}

/* ---- parser: refusals ------------------------------------------------------ */

static void test_v1_invalid(void **state)
{
    (void)state;
    assert_invalid_at(S("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    assert_invalid_at(S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 2);
    assert_invalid_at(S("\x16\x03\x01\x02\x00\x01"), 0); /* TLS ClientHello */
    assert_invalid_at(S("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), 0);
    assert_invalid_at(S("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), 6);
    assert_invalid_at(S("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), 6);
    assert_invalid_at(S("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), 11);
    assert_invalid_at(S("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), 19);
    assert_invalid_at(S("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), 9);
    assert_invalid_at(S("PROXY UNKNOWNX\r\n"), 13);
    assert_invalid_at(S("PROXY UNKNOWN \x01\r\n"), 14);
    /* Addresses: checked by inet_pton once complete, by charset before. */
    assert_invalid_at(S("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), 20);
    assert_invalid_at(S("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), 16);
    assert_invalid_at(S("PROXY TCP4 ::1 ::1 1 2\r\n"), 11);
    assert_invalid_at(S("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), 18);
    assert_invalid_at(S("PROXY TCP6 ::g ::1 1 2\r\n"), 13);
    assert_invalid_at(S("PROXY TCP4 1.2.3.4.5.6.7.8.9 5.6.7.8 1 2\r\n"), 26);
    /* Ports: decimal, canonical, at most 65535. */
    assert_invalid_at(S("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), 31);
    assert_invalid_at(S("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), 28);
    assert_invalid_at(S("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), 27);
    assert_invalid_at(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), 30);
    assert_invalid_at(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n"), 29);
    /* Line ending: CRLF, nothing else. */
    assert_invalid_at(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), 30);
    assert_invalid_at(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), 31);
    assert_invalid_at(S("PROXY UNKNOWN\n"), 13);

    /* No CRLF within 107 bytes. */
    char line[300] = "PROXY UNKNOWN ";
    memset(line + 14, 'a', sizeof(line) - 15);
    assert_invalid_at(line, sizeof(line) - 1, 106);
}

static void test_v2_invalid(void **state)
{
    (void)state;
    uint8_t b[PROXY_MAX_HEADER + 64];
    size_t n = v2_build(b, 0x21, 0x11, inet_block, sizeof(inet_block));
    for (size_t i = 0; i < sizeof(v2_sig); i++) {
        uint8_t bad[64];
        memcpy(bad, b, n);
        bad[i] ^= 0x20;
        assert_invalid_at(bad, n, i);
    }
    uint8_t bad[64];
    memcpy(bad, b, n);
    bad[12] = 0x11; /* version 1 */
    assert_invalid_at(bad, n, 12);
    bad[12] = 0x31; /* version 3 */
    assert_invalid_at(bad, n, 12);
    bad[12] = 0x22; /* command 2 */
    assert_invalid_at(bad, n, 12);
    bad[12] = 0x21;
    bad[13] = 0x12; /* INET over DGRAM */
    assert_invalid_at(bad, n, 13);
    bad[13] = 0x10; /* INET, transport unspecified */
    assert_invalid_at(bad, n, 13);
    bad[13] = 0x41; /* family 4 */
    assert_invalid_at(bad, n, 13);
    bad[13] = 0x13; /* transport 3 */
    assert_invalid_at(bad, n, 13);

    /* Block shorter than the family's addresses. */
    n = v2_build(b, 0x21, 0x21, inet_block, sizeof(inet_block));
    assert_invalid_at(b, n, 15);
    /* Longer than we accept: the high length byte alone tells. */
    b[14] = 0x10;
    b[15] = 0x00;
    assert_invalid_at(b, 16, 14);
    b[14] = 0x0f;
    b[15] = 0xf1; /* 16 + 4081 */
    assert_invalid_at(b, 16, 15);

    /* A TLV overrunning the block, by its low or its high length byte, and
     * a block ending inside a TLV header. */
    uint8_t blk[12 + 3];
    memcpy(blk, inet_block, 12);
    blk[12] = 0x05;
    blk[13] = 0;
    blk[14] = 1;
    n = v2_build(b, 0x21, 0x11, blk, sizeof(blk));
    assert_invalid_at(b, n, 30);
    blk[13] = 1;
    n = v2_build(b, 0x21, 0x11, blk, sizeof(blk));
    assert_invalid_at(b, n, 29);
    n = v2_build(b, 0x21, 0x11, blk, 14);
    assert_invalid_at(b, n, 15);
}

/* ---- proxy_accept on an HTTP listener ------------------------------------ */

/* h2o keeps freed socket buffers in per-thread recycle lists that it never
 * releases; the server thread's are gone with it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

typedef struct server {
    pthread_t thread;
    SSL_CTX *ssl_ctx;
    int proxy_protocol;
    uint32_t header_timeout_ms;
    int port;
    atomic_int ready, stop, shutdown;
} server;

static int on_peer(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char host[INET6_ADDRSTRLEN] = "?", body[INET6_ADDRSTRLEN + 16];
    unsigned port = 0;
    if (len > 0 && ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (len > 0 && ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    int n = snprintf(body, sizeof(body), "peer=%s:%u", host, port);
    http_respond(req, 200, "text/plain", body, (size_t)n);
    return 0;
}

static void *server_main(void *arg)
{
    server *srv = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    http_site_settings hs = {.name = "test", .max_body_bytes = 1024, .idle_timeout_ms = 5000,
                             .header_timeout_ms = srv->header_timeout_ms};
    http_site *site = http_site_new(&hs);
    assert_non_null(http_site_handler(site, "/", sizeof(h2o_handler_t), on_peer));
    int fd = loopback_listen(SOCK_NONBLOCK, 64, &srv->port);
    http_listener *l = http_listener_start(site, loop, fd, srv->ssl_ctx, srv->proxy_protocol, NULL);
    assert_non_null(l);
    atomic_store(&srv->ready, 1);
    while (!atomic_load(&srv->stop)) {
        h2o_evloop_run(loop, 5);
        if (atomic_exchange(&srv->shutdown, 0))
            http_listener_shutdown(l);
    }
    http_listener_shutdown(l);
    for (int i = 0; i < 100 && http_listener_connections(l) > 0; i++)
        h2o_evloop_run(loop, 10);
    http_listener_free(l);
    h2o_evloop_run(loop, 0); /* let h2o release the closed sockets */
    h2o_evloop_destroy(loop);
    http_site_free(site);
    return NULL;
}

static server *server_start_with(SSL_CTX *ssl_ctx, int proxy_protocol, uint32_t header_timeout_ms)
{
    server *srv = calloc(1, sizeof(*srv));
    srv->ssl_ctx = ssl_ctx;
    srv->proxy_protocol = proxy_protocol;
    srv->header_timeout_ms = header_timeout_ms;
    assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
    while (!atomic_load(&srv->ready))
        usleep(1000);
    return srv;
}

/* A header timeout of 400 ms, which the tests of it wait out. */
static server *server_start(SSL_CTX *ssl_ctx, int proxy_protocol)
{
    return server_start_with(ssl_ctx, proxy_protocol, 400);
}

static void server_stop(server *srv)
{
    atomic_store(&srv->stop, 1);
    pthread_join(srv->thread, NULL);
    free(srv);
}

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Everything until EOF (or reset): the response, or "" when the server just
 * closed. -1 when nothing happened within the receive timeout. */
static ssize_t read_to_eof(int fd, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            break;
        if (r < 0)
            return -1;
        n += (size_t)r;
    }
    out[n] = '\0';
    return (ssize_t)n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char get_req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/* Header and request in one segment, so the request is already buffered
 * when the header has been parsed. */
static void exchange(int port, const void *hdr, size_t hlen, char *resp, size_t cap)
{
    uint8_t buf[512];
    memcpy(buf, hdr, hlen);
    memcpy(buf + hlen, get_req, sizeof(get_req) - 1);
    int fd = client_connect(port);
    send_all(fd, buf, hlen + sizeof(get_req) - 1);
    assert_true(read_to_eof(fd, resp, cap) >= 0);
    close(fd);
}

static void test_accept_sets_peer(void **state)
{
    (void)state;
    server *srv = server_start(NULL, 1);
    char resp[4096];
    uint8_t b[64];

    exchange(srv->port, b, v2_build(b, 0x21, 0x11, inet_block, sizeof(inet_block)), resp, sizeof(resp));
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(resp, "peer=10.1.2.3:4567"));

    exchange(srv->port, S("PROXY TCP6 2001:db8::7 ::1 40000 4318\r\n"), resp, sizeof(resp));
    assert_non_null(strstr(resp, "peer=2001:db8::7:40000"));

    /* LOCAL keeps the real peer. */
    exchange(srv->port, b, v2_build(b, 0x20, 0x00, NULL, 0), resp, sizeof(resp));
    assert_non_null(strstr(resp, "peer=127.0.0.1:"));

    /* Header trickling in byte by byte, request later. */
    size_t n = v2_build(b, 0x21, 0x11, inet_block, sizeof(inet_block));
    int fd = client_connect(srv->port);
    for (size_t i = 0; i < n; i++) {
        send_all(fd, b + i, 1);
        usleep(2000);
    }
    usleep(20000);
    send_all(fd, get_req, sizeof(get_req) - 1);
    assert_true(read_to_eof(fd, resp, sizeof(resp)) > 0);
    assert_non_null(strstr(resp, "peer=10.1.2.3:4567"));
    close(fd);
    server_stop(srv);
}

static void test_accept_refuses(void **state)
{
    (void)state;
    server *srv = server_start(NULL, 1);
    char resp[4096];

    /* No header at all: a plain request is closed without an answer. */
    int fd = client_connect(srv->port);
    send_all(fd, get_req, sizeof(get_req) - 1);
    assert_int_equal(read_to_eof(fd, resp, sizeof(resp)), 0);
    close(fd);

    /* A broken header. */
    exchange(srv->port, S("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"), resp, sizeof(resp));
    assert_string_equal(resp, "");

    /* Half a header, then silence: closed after the header timeout (400 ms). */
    double t0 = now_s(); /* before connecting: the server's timer starts later */
    fd = client_connect(srv->port);
    send_all(fd, "PROXY TCP4 1.2", 14);
    assert_int_equal(read_to_eof(fd, resp, sizeof(resp)), 0);
    assert_true(now_s() - t0 > 0.3 && now_s() - t0 < 2.5);
    close(fd);
    server_stop(srv);

    /* Shutdown closes connections still waiting for their header, long
     * before that header's timeout (a minute here). */
    srv = server_start_with(NULL, 1, 60000);
    fd = client_connect(srv->port);
    send_all(fd, "\r\n\r\n", 4);
    usleep(200000); /* accepted, waiting for the header */
    atomic_store(&srv->shutdown, 1);
    t0 = now_s();
    assert_int_equal(read_to_eof(fd, resp, sizeof(resp)), 0);
    assert_true(now_s() - t0 < 2.5);
    close(fd);
    server_stop(srv);
}

/* Without proxy_protocol a PROXY header is just a bad request line. */
static void test_plain_listener_refuses_header(void **state)
{
    (void)state;
    server *srv = server_start(NULL, 0);
    char resp[4096];
    uint8_t b[64];
    exchange(srv->port, b, v2_build(b, 0x21, 0x11, inet_block, sizeof(inet_block)), resp, sizeof(resp));
    assert_non_null(strstr(resp, "HTTP/1.1 400"));
    exchange(srv->port, S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), resp, sizeof(resp));
    assert_non_null(strstr(resp, "HTTP/1.1 400"));
    assert_null(strstr(resp, "peer="));
    server_stop(srv);
}

static SSL_CTX *tls_server_ctx_selfsigned(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    assert_non_null(key);
    assert_non_null(cert);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), -300);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"proxy-test",
                               -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509_set_pubkey(cert, key);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

/* TLS behind the header: the ClientHello travels in the same segment as the
 * header, so h2o's handshake must start from the buffered bytes. */
static void test_accept_tls(void **state)
{
    (void)state;
    SSL_CTX *sctx = tls_server_ctx_selfsigned();
    server *srv = server_start(sctx, 1);

    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(cctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    assert_int_equal(SSL_do_handshake(ssl), -1); /* ClientHello written to wbio */
    uint8_t first[4096];
    size_t n = v2_build(first, 0x21, 0x11, inet_block, sizeof(inet_block));
    int hello = BIO_read(wbio, first + n, (int)(sizeof(first) - n));
    assert_true(hello > 0);
    int fd = client_connect(srv->port);
    send_all(fd, first, n + (size_t)hello);
    SSL_set_fd(ssl, fd); /* the rest of the handshake on the socket */
    assert_int_equal(SSL_do_handshake(ssl), 1);
    assert_int_equal(SSL_write(ssl, get_req, sizeof(get_req) - 1), (int)(sizeof(get_req) - 1));
    char resp[4096];
    size_t got = 0;
    int r;
    while ((r = SSL_read(ssl, resp + got, (int)(sizeof(resp) - 1 - got))) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(resp, "peer=10.1.2.3:4567"));
    SSL_free(ssl);
    SSL_CTX_free(cctx);
    close(fd);
    server_stop(srv);
    SSL_CTX_free(sctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),
        cmocka_unit_test(test_v2_valid),
        cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v2_invalid),
        cmocka_unit_test(test_accept_sets_peer),
        cmocka_unit_test(test_accept_refuses),
        cmocka_unit_test(test_plain_listener_refuses_header),
        cmocka_unit_test(test_accept_tls),
    };
    /* As in the gateway's main: a peer that hung up must be EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
