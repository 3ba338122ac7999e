#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* One consistent set of credentials, as read from the files at one time. */
typedef struct tls_pair {
    X509 *cert;
    STACK_OF(X509) *chain; /* intermediates after the leaf in the cert file; may be empty */
    EVP_PKEY *key;
    X509_STORE *client_ca; /* NULL without client authentication */
    STACK_OF(X509_NAME) *client_ca_names; /* sent in CertificateRequest so clients can pick a certificate */
} tls_pair;

struct tls_creds {
    const config_tls *cfg;
    /* Guards `current`: handshakes apply it to their SSL while holding the
     * lock, so reload can free the pair it replaces once it has swapped. The
     * work under the lock is reference-count increments and, with client
     * authentication, a copy of the CA name list. */
    pthread_mutex_t lock;
    tls_pair *current;
    atomic_uint generation; /* bumped by every successful reload */
};

/* The queue may hold several entries for one failure; the last is the most
 * specific. The queue is per thread and is left empty. */
static void openssl_error(char *err, size_t errlen, const char *what, const char *file)
{
    char reason[160] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(err, errlen, "%s %s: %s", what, file, reason);
}

/* A daemon has no terminal to ask for a passphrase (OpenSSL's default
 * callback would try): an encrypted key fails to load instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static BIO *open_pem(const char *what, const char *file, char *err, size_t errlen)
{
    BIO *b = BIO_new_file(file, "r");
    if (b == NULL) {
        int e = errno;
        ERR_clear_error();
        snprintf(err, errlen, "cannot open %s %s: %s", what, file, strerror(e));
    }
    return b;
}

/* After a loop of PEM reads: a read fails at the end of the file (no PEM
 * start line) as well as at a bad block; only the latter is an error. */
static int read_to_end(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return 0;
    }
    openssl_error(err, errlen, what, file);
    return -1;
}

static void pair_free(tls_pair *p)
{
    if (p == NULL)
        return;
    X509_free(p->cert);
    sk_X509_pop_free(p->chain, X509_free);
    EVP_PKEY_free(p->key);
    X509_STORE_free(p->client_ca);
    sk_X509_NAME_pop_free(p->client_ca_names, X509_NAME_free);
    free(p);
}

/* Leaf certificate, then any intermediates until the end of the file. */
static int load_cert_chain(tls_pair *p, const char *file, char *err, size_t errlen)
{
    BIO *b = open_pem("certificate", file, err, errlen);
    if (b == NULL)
        return -1;
    int rc = -1;
    ERR_clear_error();
    if ((p->cert = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL)) == NULL) {
        openssl_error(err, errlen, "cannot load certificate", file);
        goto out;
    }
    if ((p->chain = sk_X509_new_null()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    X509 *ca;
    while ((ca = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
        if (!sk_X509_push(p->chain, ca)) {
            X509_free(ca);
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    rc = read_to_end(err, errlen, "cannot load certificate chain", file);
out:
    BIO_free(b);
    return rc;
}

static int load_key(tls_pair *p, const char *file, const char *cert_file, char *err, size_t errlen)
{
    BIO *b = open_pem("private key", file, err, errlen);
    if (b == NULL)
        return -1;
    ERR_clear_error();
    p->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (p->key == NULL) {
        openssl_error(err, errlen, "cannot load private key (unencrypted PEM expected)", file);
        return -1;
    }
    if (X509_check_private_key(p->cert, p->key) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "private key %s does not match certificate %s", file, cert_file);
        return -1;
    }
    return 0;
}

/* Every certificate in the file is a trust anchor for client certificates. */
static int load_client_ca(tls_pair *p, const char *file, char *err, size_t errlen)
{
    BIO *b = open_pem("client CA", file, err, errlen);
    if (b == NULL)
        return -1;
    int rc = -1;
    if ((p->client_ca = X509_STORE_new()) == NULL || (p->client_ca_names = sk_X509_NAME_new_null()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    ERR_clear_error();
    X509 *ca;
    while ((ca = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
        X509_NAME *name = X509_NAME_dup(X509_get_subject_name(ca));
        int ok = X509_STORE_add_cert(p->client_ca, ca) == 1 && name != NULL &&
                 sk_X509_NAME_push(p->client_ca_names, name) > 0;
        X509_free(ca);
        if (!ok) {
            X509_NAME_free(name);
            openssl_error(err, errlen, "cannot use client CA", file);
            goto out;
        }
    }
    if (read_to_end(err, errlen, "cannot load client CA", file) != 0)
        goto out;
    if (sk_X509_NAME_num(p->client_ca_names) == 0) {
        snprintf(err, errlen, "client CA %s: no certificate in the file", file);
        goto out;
    }
    rc = 0;
out:
    BIO_free(b);
    return rc;
}

static tls_pair *load_pair(const config_tls *cfg, char *err, size_t errlen)
{
    tls_pair *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (load_cert_chain(p, cfg->cert_file, err, errlen) == 0 &&
        load_key(p, cfg->key_file, cfg->cert_file, err, errlen) == 0 &&
        (cfg->client_auth == TLS_CLIENT_AUTH_NONE || load_client_ca(p, cfg->client_ca_file, err, errlen) == 0))
        return p;
    pair_free(p);
    return NULL;
}

tls_creds *tls_creds_new(const config_tls *cfg, char *err, size_t errlen)
{
    tls_creds *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = cfg;
    if ((c->current = load_pair(cfg, err, errlen)) == NULL) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

int tls_reload(tls_creds *c, char *err, size_t errlen)
{
    tls_pair *fresh = load_pair(c->cfg, err, errlen);
    if (fresh == NULL)
        return -1;
    pthread_mutex_lock(&c->lock);
    tls_pair *old = c->current;
    c->current = fresh;
    atomic_fetch_add(&c->generation, 1);
    pthread_mutex_unlock(&c->lock);
    pair_free(old);
    return 0;
}

void tls_creds_free(tls_creds *c)
{
    if (c == NULL)
        return;
    pair_free(c->current);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Runs before OpenSSL looks for a session to resume: a session resumes only
 * within the generation it was made in (its session id context). */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    const tls_creds *c = arg;
    unsigned generation = atomic_load(&c->generation);
    if (SSL_set_session_id_context(ssl, (const unsigned char *)&generation, sizeof(generation)) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Runs while the ClientHello is processed, before the server's first flight
 * (which carries the certificate and the CertificateRequest) is built. */
static int on_cert(SSL *ssl, void *arg)
{
    tls_creds *c = arg;
    pthread_mutex_lock(&c->lock);
    const tls_pair *p = c->current;
    int ok = SSL_use_certificate(ssl, p->cert) == 1 && SSL_use_PrivateKey(ssl, p->key) == 1 &&
             SSL_set1_chain(ssl, p->chain) == 1;
    if (ok && p->client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_dup_CA_list(p->client_ca_names);
        ok = names != NULL && SSL_set1_verify_cert_store(ssl, p->client_ca) == 1;
        if (names != NULL)
            SSL_set_client_CA_list(ssl, names);
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

SSL_CTX *tls_server_ctx(tls_creds *c, tls_alpn alpn, char *err, size_t errlen)
{
    static const h2o_iovec_t h2_only[] = {{H2O_STRLIT("h2")}, {NULL, 0}};
    static const h2o_iovec_t h2_http1[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ERR_clear_error();
        snprintf(err, errlen, "cannot create TLS context");
        return NULL;
    }
    const char *ciphers = c->cfg->ciphers != NULL ? c->cfg->ciphers : TLS_DEFAULT_CIPHERS_12;
    if (SSL_CTX_set_min_proto_version(ctx, c->cfg->min_version ? c->cfg->min_version : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        snprintf(err, errlen, "cannot use TLS min_version or ciphers \"%s\"", ciphers);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, c);
    SSL_CTX_set_cert_cb(ctx, on_cert, c);
    if (c->cfg->client_auth != TLS_CLIENT_AUTH_NONE)
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER | (c->cfg->client_auth == TLS_CLIENT_AUTH_REQUIRED
                                                  ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                  : 0),
                           NULL);
    h2o_ssl_register_alpn_protocols(ctx, alpn == TLS_ALPN_H2_ONLY ? h2_only : h2_http1);
    return ctx;
}

const char *tls_peer_subject(SSL *ssl, char *buf, size_t len)
{
    X509 *peer = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return NULL;
    const X509_NAME *name = X509_get_subject_name(peer);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    /* Several CNs would make the identity depend on which one a reader
     * picks; such a certificate identifies nobody. */
    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return NULL;
    unsigned char *utf8;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) {
        ERR_clear_error();
        return NULL;
    }
    /* A NUL inside would let "a\0b" pass for "a"; a truncated name could
     * match a shorter one. */
    const char *out = NULL;
    if ((size_t)n < len && memchr(utf8, '\0', (size_t)n) == NULL) {
        memcpy(buf, utf8, (size_t)n);
        buf[n] = '\0';
        out = buf;
    }
    OPENSSL_free(utf8);
    return out;
}

/* h2o 2.2.5 has no accessor for a socket's SSL. Its per-socket TLS state
 * (struct st_h2o_socket_ssl_t, private to h2o) starts with the SSL_CTX and
 * then the SSL, in 2.2 as in later releases; the SSL is read from there and
 * returned only if it belongs to that SSL_CTX. */
typedef struct tls_h2o_ssl_head {
    SSL_CTX *ctx;
    SSL *ssl;
} tls_h2o_ssl_head;

SSL *tls_socket_ssl(struct st_h2o_socket_t *sock)
{
    if (sock == NULL || sock->ssl == NULL)
        return NULL;
    tls_h2o_ssl_head head;
    memcpy(&head, sock->ssl, sizeof(head));
    return head.ssl != NULL && SSL_get_SSL_CTX(head.ssl) == head.ctx ? head.ssl : NULL;
}
