/* tls: server-side TLS for a listener: TLS 1.2 (AEAD suites only by default) or newer, ALPN offering `h2`
 * (gRPC) or `h2` and `http/1.1` (OTLP/HTTP), optional client certificates.
 *
 * A listener's certificate chain, private key and client CA are held by one
 * tls_creds, shared by the listener's SSL_CTXs (one per ALPN set). The
 * SSL_CTXs live as long as the process, because h2o's accept contexts and the
 * gRPC listener keep pointers to them; instead of loading a certificate into
 * them, every handshake takes the credentials current at that moment from
 * the tls_creds (certificate callback). tls_reload() therefore swaps the
 * credentials for new handshakes without touching open connections.
 * Session resumption is bound to the credentials' generation, so a session
 * from before a reload is not resumed afterwards: a client whose certificate
 * a new client CA no longer accepts cannot keep resuming its old session. */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

struct st_h2o_socket_t;

/* TLS 1.2 suites unless a listener's tls.ciphers says otherwise: Mozilla's
 * "intermediate" profile (Server Side TLS guidelines 5.7) without its DHE
 * suites (no DH parameters are configured): ECDHE key exchange with AES-GCM
 * or ChaCha20-Poly1305 only, so no CBC and no SHA-1 MAC. TLS 1.3 keeps
 * OpenSSL's default suites (all AEAD). */
#define TLS_DEFAULT_CIPHERS_12                                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                        \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

typedef enum { TLS_ALPN_H2_ONLY, TLS_ALPN_H2_HTTP1 } tls_alpn;

typedef struct tls_creds tls_creds;

/* Loads cfg's files (cfg must outlive the result). NULL with a message
 * naming the file on error. */
tls_creds *tls_creds_new(const config_tls *cfg, char *err, size_t errlen);
/* Re-reads the files. On any error (unreadable file, key not matching the
 * certificate, bad client CA) the current credentials stay in use and -1 is
 * returned with a message. Thread-safe against handshakes. */
int tls_reload(tls_creds *c, char *err, size_t errlen);
/* Only after every SSL_CTX made from c has been freed. */
void tls_creds_free(tls_creds *c);

/* A server SSL_CTX serving c's current credentials, verifying client
 * certificates as c's config says, with its min_version (default TLS 1.2)
 * and TLS 1.2 ciphers (default TLS_DEFAULT_CIPHERS_12). The caller owns it (SSL_CTX_free). NULL
 * with a message on error. */
SSL_CTX *tls_server_ctx(tls_creds *c, tls_alpn alpn, char *err, size_t errlen);

/* The subject common name of the peer's certificate when the peer presented
 * one and it was verified, copied into buf; NULL when there is none, it has
 * no or several CNs, or it does not fit in len. ssl may be NULL. */
const char *tls_peer_subject(SSL *ssl, char *buf, size_t len);
/* Room for any CN: at most 64 characters (RFC 5280), 4 bytes each in UTF-8. */
#define TLS_SUBJECT_MAX 257

/* The SSL of a socket h2o runs TLS on; NULL for a plain-text socket. */
SSL *tls_socket_ssl(struct st_h2o_socket_t *sock);

#endif
