/* tls: handshakes against the listener's SSL_CTX as the gateway runs it (an
 * h2o socket on an event loop), with an OpenSSL client on a thread at the
 * other end of a socketpair. The certificates are made here: a CA, two
 * server certificates (serials 1 and 2), client certificates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls.h"

/* ---- certificates ------------------------------------------------------ */

typedef struct pki {
    char dir[64];
    char ca_file[128], empty_file[128];
    char client_ca_file[128]; /* rewritten by tests */
    char cert_file[128], key_file[128]; /* what the listener's config names */
    X509 *ca, *other_ca, *server1, *server2, *client, *stranger, *two_cns;
    EVP_PKEY *ca_key, *other_ca_key, *key1, *key2, *client_key;
} pki;

static pki P;

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *cn2, long serial, X509 *issuer,
                       EVP_PKEY *issuer_key, int is_ca)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"gateway tests", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    if (cn2 != NULL)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn2, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    if (is_ca) {
        X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        assert_non_null(bc);
        X509_add_ext(x, bc, -1);
        X509_EXTENSION_free(bc);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert != NULL)
        assert_int_equal(PEM_write_X509(f, cert), 1);
    if (key != NULL)
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
}

/* The listener's cert and key files now hold this pair. */
static void install(X509 *cert, EVP_PKEY *key)
{
    write_pem(P.cert_file, cert, NULL);
    write_pem(P.key_file, NULL, key);
}

static int setup_pki(void **state)
{
    (void)state;
    strcpy(P.dir, "/tmp/gw-test-tls-XXXXXX");
    if (mkdtemp(P.dir) == NULL)
        return -1;
    snprintf(P.ca_file, sizeof(P.ca_file), "%s/ca.pem", P.dir);
    snprintf(P.empty_file, sizeof(P.empty_file), "%s/empty.pem", P.dir);
    snprintf(P.client_ca_file, sizeof(P.client_ca_file), "%s/clients.pem", P.dir);
    snprintf(P.cert_file, sizeof(P.cert_file), "%s/tls.crt", P.dir);
    snprintf(P.key_file, sizeof(P.key_file), "%s/tls.key", P.dir);
    P.ca_key = EVP_EC_gen("P-256");
    P.other_ca_key = EVP_EC_gen("P-256");
    P.key1 = EVP_EC_gen("P-256");
    P.key2 = EVP_EC_gen("P-256");
    P.client_key = EVP_EC_gen("P-256");
    P.ca = make_cert(P.ca_key, "test CA", NULL, 100, NULL, NULL, 1);
    P.other_ca = make_cert(P.other_ca_key, "other CA", NULL, 200, NULL, NULL, 1);
    P.server1 = make_cert(P.key1, "gateway", NULL, 1, P.ca, P.ca_key, 0);
    P.server2 = make_cert(P.key2, "gateway", NULL, 2, P.ca, P.ca_key, 0);
    P.client = make_cert(P.client_key, "agent-7", NULL, 10, P.ca, P.ca_key, 0);
    P.stranger = make_cert(P.client_key, "agent-7", NULL, 11, P.other_ca, P.other_ca_key, 0);
    P.two_cns = make_cert(P.client_key, "agent-7", "admin", 12, P.ca, P.ca_key, 0);
    write_pem(P.ca_file, P.ca, NULL);
    write_pem(P.empty_file, NULL, NULL);
    install(P.server1, P.key1);
    return 0;
}

static int teardown_pki(void **state)
{
    (void)state;
    const char *files[] = {P.ca_file, P.empty_file, P.client_ca_file, P.cert_file, P.key_file};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(P.dir);
    X509 *certs[] = {P.ca, P.other_ca, P.server1, P.server2, P.client, P.stranger, P.two_cns};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    EVP_PKEY *keys[] = {P.ca_key, P.other_ca_key, P.key1, P.key2, P.client_key};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

/* ---- one handshake ------------------------------------------------------ */

typedef struct client_opts {
    int version;              /* 0: any the client supports; else exactly this one */
    const char *ciphers;      /* TLS 1.2 cipher list the client offers; NULL: its default */
    const char *alpn;         /* wire format; NULL: "h2" */
    size_t alpn_len;
    X509 *cert;               /* client certificate, or NULL */
    EVP_PKEY *key;
    SSL_SESSION *session;     /* try to resume this one */
    int keep_session;         /* return the session in the result */
} client_opts;

typedef struct handshake_result {
    /* server side, from the h2o handshake callback */
    int server_done, server_ok;
    char alpn[16];
    const char *subject; /* tls_peer_subject, pointing into subject_buf */
    char subject_buf[TLS_SUBJECT_MAX];
    /* client side */
    int client_ok;
    long served_serial;         /* serial of the certificate the server sent; -1 if none */
    int resumed;
    char cipher[64];            /* negotiated suite (OpenSSL name) */
    SSL_SESSION *session;       /* with keep_session, for a later resumption attempt (caller frees) */
} handshake_result;

typedef struct client_run {
    int fd;
    const client_opts *opts;
    handshake_result *res;
} client_run;

static void *client_main(void *arg)
{
    client_run *run = arg;
    const client_opts *o = run->opts;
    handshake_result *r = run->res;
    r->served_serial = -1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    /* The test server closes without close_notify; that is the end of the
     * connection here, not an error (which would also spoil the session). */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o->version != 0) {
        /* Old versions are below OpenSSL 3's default security level. */
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
        SSL_CTX_set_min_proto_version(ctx, o->version);
        SSL_CTX_set_max_proto_version(ctx, o->version);
    }
    if (o->ciphers != NULL)
        SSL_CTX_set_cipher_list(ctx, o->ciphers);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, run->fd);
    if (o->alpn != NULL)
        SSL_set_alpn_protos(ssl, (const unsigned char *)o->alpn, (unsigned)o->alpn_len);
    else
        SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2", 3);
    if (o->cert != NULL) {
        SSL_use_certificate(ssl, o->cert);
        SSL_use_PrivateKey(ssl, o->key);
    }
    if (o->session != NULL)
        SSL_set_session(ssl, o->session);
    if (SSL_connect(ssl) == 1) {
        X509 *peer = SSL_get0_peer_certificate(ssl);
        if (peer != NULL)
            r->served_serial = ASN1_INTEGER_get(X509_get0_serialNumber(peer));
        r->resumed = SSL_session_reused(ssl);
        snprintf(r->cipher, sizeof(r->cipher), "%s", SSL_get_cipher_name(ssl));
        /* Read until the server closes: this takes TLS 1.3 session tickets,
         * and an alert if the server refused the client's certificate
         * after a TLS 1.3 client already considered the handshake done. */
        char byte;
        int n = SSL_read(ssl, &byte, 1);
        r->client_ok = SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN;
        if (o->keep_session)
            r->session = SSL_get1_session(ssl);
        /* Freeing an SSL that has not sent close_notify spoils its session. */
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(run->fd);
    return NULL;
}

static void on_server_handshake(h2o_socket_t *sock, const char *err)
{
    handshake_result *r = sock->data;
    r->server_done = 1;
    if (err != NULL)
        return;
    r->server_ok = 1;
    h2o_iovec_t p = h2o_socket_ssl_get_selected_protocol(sock);
    snprintf(r->alpn, sizeof(r->alpn), "%.*s", (int)p.len, p.base);
    r->subject = tls_peer_subject(tls_socket_ssl(sock), r->subject_buf, sizeof(r->subject_buf));
}

static void handshake(SSL_CTX *server_ctx, const client_opts *opts, handshake_result *r)
{
    memset(r, 0, sizeof(*r));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    h2o_evloop_t *loop = h2o_evloop_create();
    h2o_socket_t *sock = h2o_evloop_socket_create(loop, sv[0], 0);
    sock->data = r;
    client_run run = {.fd = sv[1], .opts = opts, .res = r};
    pthread_t client;
    assert_int_equal(pthread_create(&client, NULL, client_main, &run), 0);
    h2o_socket_ssl_handshake(sock, server_ctx, NULL, on_server_handshake);
    for (int i = 0; i < 100 && !r->server_done; i++)
        h2o_evloop_run(loop, 50);
    assert_true(r->server_done);
    h2o_socket_close(sock);
    h2o_evloop_run(loop, 0);
    pthread_join(client, NULL);
    h2o_evloop_destroy(loop);
}

/* ---- tests --------------------------------------------------------------- */

static config_tls plain_cfg(void)
{
    return (config_tls){.cert_file = P.cert_file, .key_file = P.key_file};
}

/* A listener's TLS as server.c builds it: credentials and one SSL_CTX. */
typedef struct listener {
    tls_creds *creds;
    SSL_CTX *ctx;
} listener;

static listener listen_tls(const config_tls *cfg, tls_alpn alpn)
{
    char err[512] = "";
    listener l = {.creds = tls_creds_new(cfg, err, sizeof(err))};
    if (l.creds == NULL)
        fail_msg("tls_creds_new: %s", err);
    if ((l.ctx = tls_server_ctx(l.creds, alpn, err, sizeof(err))) == NULL)
        fail_msg("tls_server_ctx: %s", err);
    return l;
}

static void unlisten(listener *l)
{
    SSL_CTX_free(l->ctx);
    tls_creds_free(l->creds);
}

static void test_alpn(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    config_tls cfg = plain_cfg();
    listener l = listen_tls(&cfg, TLS_ALPN_H2_ONLY);
    char err[512] = "";
    SSL_CTX *grpc = l.ctx, *http = tls_server_ctx(l.creds, TLS_ALPN_H2_HTTP1, err, sizeof(err)); /* shares l.creds */
    assert_non_null(http);
    handshake_result r;

    handshake(grpc, &(client_opts){0}, &r);
    assert_true(r.server_ok && r.client_ok);
    assert_string_equal(r.alpn, "h2");
    assert_int_equal(r.served_serial, 1);
    assert_null(r.subject); /* no client authentication configured */

    handshake(grpc, &(client_opts){.version = TLS1_2_VERSION}, &r);
    assert_true(r.server_ok && r.client_ok);
    assert_string_equal(r.alpn, "h2");

    static const char h1[] = "\x08http/1.1";
    handshake(http, &(client_opts){.alpn = h1, .alpn_len = sizeof(h1) - 1}, &r);
    assert_true(r.server_ok);
    assert_string_equal(r.alpn, "http/1.1");

    SSL_CTX_free(http);
    unlisten(&l);
}

static void test_old_versions_refused(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    config_tls cfg = plain_cfg();
    listener l = listen_tls(&cfg, TLS_ALPN_H2_ONLY);
    /* Control: a server that allows old versions, so a refusal below is
     * the gateway's and not the client failing to offer the version. */
    SSL_CTX *lax = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_security_level(lax, 0);
    SSL_CTX_set_min_proto_version(lax, TLS1_VERSION);
    assert_int_equal(SSL_CTX_use_certificate(lax, P.server1), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(lax, P.key1), 1);
    int versions[] = {TLS1_VERSION, TLS1_1_VERSION};
    for (size_t i = 0; i < 2; i++) {
        handshake_result r;
        handshake(lax, &(client_opts){.version = versions[i]}, &r);
        assert_true(r.server_ok && r.client_ok);
        handshake(l.ctx, &(client_opts){.version = versions[i]}, &r);
        assert_false(r.server_ok);
        assert_false(r.client_ok);
    }
    SSL_CTX_free(lax);
    unlisten(&l);
}

/* Issue 13: TLS 1.2 offers AEAD suites only by default (Mozilla's
 * intermediate profile, ECDHE): a client offering only CBC suites (SHA-1 or
 * SHA-256 MAC) is refused; GCM and ChaCha20-Poly1305 pass. The control
 * server (OpenSSL's defaults) takes the CBC suites, so the refusal is the
 * gateway's. TLS 1.3 is unchanged. */
static void test_tls12_aead_only_by_default(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    config_tls cfg = plain_cfg();
    listener l = listen_tls(&cfg, TLS_ALPN_H2_ONLY);
    SSL_CTX *lax = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(lax, P.server1), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(lax, P.key1), 1);
    static const char *const legacy[] = {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
                                         "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"};
    for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++) {
        handshake_result r;
        client_opts o = {.version = TLS1_2_VERSION, .ciphers = legacy[i]};
        handshake(lax, &o, &r);
        assert_true(r.server_ok && r.client_ok);
        assert_string_equal(r.cipher, legacy[i]);
        handshake(l.ctx, &o, &r);
        if (r.server_ok || r.client_ok)
            fail_msg("TLS 1.2 with %s accepted", legacy[i]);
    }
    static const char *const aead[] = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                                       "ECDHE-ECDSA-CHACHA20-POLY1305"};
    for (size_t i = 0; i < sizeof(aead) / sizeof(aead[0]); i++) {
        handshake_result r;
        handshake(l.ctx, &(client_opts){.version = TLS1_2_VERSION, .ciphers = aead[i]}, &r);
        assert_true(r.server_ok && r.client_ok);
        assert_string_equal(r.cipher, aead[i]);
    }
    handshake_result r;
    handshake(l.ctx, &(client_opts){.version = TLS1_3_VERSION}, &r);
    assert_true(r.server_ok && r.client_ok);
    assert_string_equal(r.cipher, "TLS_AES_256_GCM_SHA384");
    SSL_CTX_free(lax);
    unlisten(&l);
}

/* Per-listener overrides: min_version 1.3 refuses TLS 1.2; ciphers replaces
 * the TLS 1.2 list (here with a CBC suite, which then passes while GCM does not). */
static void test_min_version_and_ciphers_overrides(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    config_tls cfg = plain_cfg();
    cfg.min_version = TLS1_3_VERSION;
    listener l = listen_tls(&cfg, TLS_ALPN_H2_ONLY);
    handshake_result r;
    handshake(l.ctx, &(client_opts){.version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"}, &r);
    assert_false(r.server_ok || r.client_ok);
    handshake(l.ctx, &(client_opts){.version = TLS1_3_VERSION}, &r);
    assert_true(r.server_ok && r.client_ok);
    unlisten(&l);

    cfg = plain_cfg();
    cfg.ciphers = "ECDHE-ECDSA-AES128-SHA";
    l = listen_tls(&cfg, TLS_ALPN_H2_ONLY);
    handshake(l.ctx, &(client_opts){.version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-SHA"}, &r);
    assert_true(r.server_ok && r.client_ok);
    handshake(l.ctx, &(client_opts){.version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"}, &r);
    assert_false(r.server_ok || r.client_ok);
    unlisten(&l);

    /* A list OpenSSL cannot use fails at tls_server_ctx too (config.c checks it first). */
    cfg.ciphers = "NOT-A-CIPHER";
    char err[512] = "";
    tls_creds *c = tls_creds_new(&cfg, err, sizeof(err));
    assert_non_null(c);
    assert_null(tls_server_ctx(c, TLS_ALPN_H2_ONLY, err, sizeof(err)));
    assert_non_null(strstr(err, "NOT-A-CIPHER"));
    tls_creds_free(c);
}

static void test_reload_serves_new_certificate(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    config_tls cfg = plain_cfg();
    listener l = listen_tls(&cfg, TLS_ALPN_H2_ONLY);
    handshake_result first, r;
    handshake(l.ctx, &(client_opts){.keep_session = 1}, &first);
    assert_int_equal(first.served_serial, 1);
    assert_non_null(first.session);

    /* Before a reload a session resumes... */
    handshake(l.ctx, &(client_opts){.session = first.session}, &r);
    assert_true(r.server_ok && r.resumed);

    install(P.server2, P.key2);
    char err[512] = "";
    assert_int_equal(tls_reload(l.creds, err, sizeof(err)), 0);
    handshake(l.ctx, &(client_opts){0}, &r);
    assert_true(r.server_ok && r.client_ok);
    assert_int_equal(r.served_serial, 2);

    /* ...after it, it does not: the client gets a full handshake. */
    handshake(l.ctx, &(client_opts){.session = first.session}, &r);
    assert_true(r.server_ok);
    assert_false(r.resumed);
    assert_int_equal(r.served_serial, 2);
    SSL_SESSION_free(first.session);

    unlisten(&l);
}

static void expect_reload_error(tls_creds *c, const char *needle)
{
    char err[512] = "";
    assert_int_equal(tls_reload(c, err, sizeof(err)), -1);
    if (strstr(err, needle) == NULL)
        fail_msg("reload error \"%s\" does not mention \"%s\"", err, needle);
}

static void test_failed_reload_keeps_old_certificate(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    config_tls cfg = plain_cfg();
    listener l = listen_tls(&cfg, TLS_ALPN_H2_ONLY);

    install(P.server2, P.key1);
    expect_reload_error(l.creds, "does not match");
    write_pem(P.cert_file, NULL, P.key1); /* no certificate in it */
    expect_reload_error(l.creds, P.cert_file);
    install(P.server2, P.key2);
    unlink(P.key_file);
    expect_reload_error(l.creds, "cannot open private key");

    handshake_result r;
    handshake(l.ctx, &(client_opts){0}, &r);
    assert_true(r.server_ok && r.client_ok);
    assert_int_equal(r.served_serial, 1);

    unlisten(&l);
}

static void test_client_auth_required(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    write_pem(P.client_ca_file, P.ca, NULL);
    config_tls cfg = plain_cfg();
    cfg.client_ca_file = P.client_ca_file;
    cfg.client_auth = TLS_CLIENT_AUTH_REQUIRED;
    listener l = listen_tls(&cfg, TLS_ALPN_H2_HTTP1);
    handshake_result r;

    /* Only the server's view is checked when it refuses: a TLS 1.3 client
     * has finished its handshake before the server reads its certificate. */
    handshake(l.ctx, &(client_opts){0}, &r);
    assert_false(r.server_ok);

    handshake(l.ctx, &(client_opts){.cert = P.stranger, .key = P.client_key}, &r);
    assert_false(r.server_ok);

    handshake(l.ctx, &(client_opts){.cert = P.client, .key = P.client_key}, &r);
    assert_true(r.server_ok && r.client_ok);
    assert_string_equal(r.subject, "agent-7");

    handshake(l.ctx, &(client_opts){.cert = P.two_cns, .key = P.client_key}, &r);
    assert_true(r.server_ok);
    assert_null(r.subject); /* ambiguous: two CNs */

    /* The client CA is reloaded with the certificate. */
    write_pem(P.client_ca_file, P.other_ca, NULL);
    char err[512] = "";
    assert_int_equal(tls_reload(l.creds, err, sizeof(err)), 0);
    handshake(l.ctx, &(client_opts){.cert = P.client, .key = P.client_key}, &r);
    assert_false(r.server_ok);
    handshake(l.ctx, &(client_opts){.cert = P.stranger, .key = P.client_key}, &r);
    assert_true(r.server_ok);
    assert_string_equal(r.subject, "agent-7");

    write_pem(P.client_ca_file, NULL, NULL);
    expect_reload_error(l.creds, "no certificate");
    handshake(l.ctx, &(client_opts){.cert = P.stranger, .key = P.client_key}, &r);
    assert_true(r.server_ok); /* still the other CA */

    unlisten(&l);
}

static void test_client_auth_optional(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    config_tls cfg = plain_cfg();
    cfg.client_ca_file = P.ca_file;
    cfg.client_auth = TLS_CLIENT_AUTH_OPTIONAL;
    listener l = listen_tls(&cfg, TLS_ALPN_H2_ONLY);
    handshake_result r;

    handshake(l.ctx, &(client_opts){0}, &r);
    assert_true(r.server_ok && r.client_ok);
    assert_null(r.subject);

    handshake(l.ctx, &(client_opts){.cert = P.client, .key = P.client_key}, &r);
    assert_true(r.server_ok);
    assert_string_equal(r.subject, "agent-7");

    /* A certificate that is sent must verify, even when it is optional. */
    handshake(l.ctx, &(client_opts){.cert = P.stranger, .key = P.client_key}, &r);
    assert_false(r.server_ok);

    unlisten(&l);
}

static void test_creds_errors(void **state)
{
    (void)state;
    install(P.server1, P.key1);
    char missing[160], err[512];
    snprintf(missing, sizeof(missing), "%s/missing.pem", P.dir);
    config_tls cfg = {.cert_file = missing, .key_file = P.key_file};
    assert_null(tls_creds_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, missing));

    cfg = plain_cfg();
    cfg.key_file = P.ca_file; /* a certificate, not a key */
    assert_null(tls_creds_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot load private key"));

    cfg = plain_cfg();
    cfg.client_auth = TLS_CLIENT_AUTH_REQUIRED;
    cfg.client_ca_file = P.empty_file;
    assert_null(tls_creds_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "no certificate"));
    assert_int_equal(ERR_peek_error(), 0); /* nothing left behind for the next OpenSSL call */
}

static void test_peer_subject_without_peer(void **state)
{
    (void)state;
    char buf[8];
    assert_null(tls_peer_subject(NULL, buf, sizeof(buf)));
    assert_null(tls_socket_ssl(NULL));
}

int main(void)
{
    /* A refused client may still be writing when the server closes. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_old_versions_refused),
        cmocka_unit_test(test_tls12_aead_only_by_default),
        cmocka_unit_test(test_min_version_and_ciphers_overrides),
        cmocka_unit_test(test_reload_serves_new_certificate),
        cmocka_unit_test(test_failed_reload_keeps_old_certificate),
        cmocka_unit_test(test_client_auth_required),
        cmocka_unit_test(test_client_auth_optional),
        cmocka_unit_test(test_creds_errors),
        cmocka_unit_test(test_peer_subject_without_peer),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
