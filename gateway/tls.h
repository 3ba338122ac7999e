/* tls: server-side SSL_CTX for a listener: TLS 1.2 or newer, certificate
 * chain and key from PEM files, ALPN offering `h2` (gRPC) or `h2` and
 * `http/1.1` (OTLP/HTTP). The caller owns the result (SSL_CTX_free). */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

typedef enum { TLS_ALPN_H2_ONLY, TLS_ALPN_H2_HTTP1 } tls_alpn;

/* NULL with a message naming the file on error. */
SSL_CTX *tls_server_ctx(const config_tls *cfg, tls_alpn alpn, char *err, size_t errlen);

#endif
