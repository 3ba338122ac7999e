#include "tls.h"

#include <stdio.h>

#include <h2o.h>
#include <openssl/err.h>

static void openssl_error(char *err, size_t errlen, const char *what, const char *file)
{
    char reason[160];
    ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
    snprintf(err, errlen, "%s %s: %s", what, file, reason);
}

SSL_CTX *tls_server_ctx(const config_tls *cfg, tls_alpn alpn, char *err, size_t errlen)
{
    static const h2o_iovec_t h2_only[] = {{H2O_STRLIT("h2")}, {NULL, 0}};
    static const h2o_iovec_t h2_http1[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        openssl_error(err, errlen, "cannot load certificate", cfg->cert_file);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
        openssl_error(err, errlen, "cannot load private key", cfg->key_file);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        openssl_error(err, errlen, "private key does not match certificate", cfg->key_file);
    } else {
        h2o_ssl_register_alpn_protocols(ctx, alpn == TLS_ALPN_H2_ONLY ? h2_only : h2_http1);
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}
