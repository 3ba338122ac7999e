/* http: HTTP/1.1 and HTTP/2 serving on h2o (OTLP/HTTP and the admin pages).
 *
 * An http_site is an h2o global configuration plus its handlers, built once
 * and shared read-only by all workers; an http_listener is one worker's
 * accept loop on its own (SO_REUSEPORT) socket for a site, with its own h2o
 * context. Handlers reach per-worker state (e.g. the worker's ingest_ctx)
 * through http_worker_data(req). */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <openssl/ssl.h>

#include "accept.h"
#include "ingest.h"
#include "proxy.h"

typedef struct http_site http_site;
typedef struct http_listener http_listener;

typedef struct http_site_settings {
    const char *name;        /* listener name */
    size_t max_body_bytes;   /* h2o refuses larger bodies itself */
    uint32_t idle_timeout_ms;
    uint32_t header_timeout_ms; /* HTTP/1.1: a request must arrive within this (idle keep-alive: idle_timeout) */
    conn_gate *gate;            /* connection cap and metrics; NULL: none */
} http_site_settings;

http_site *http_site_new(const http_site_settings *s);
void http_site_free(http_site *site);
/* Set the site's connection gate (before listeners start). */
void http_site_set_gate(http_site *site, conn_gate *gate);
/* Register a handler at a path prefix; returns the handler (zeroed, `size`
 * bytes) for the caller to fill, or NULL. */
h2o_handler_t *http_site_handler(http_site *site, const char *path, size_t size,
                                 int (*on_req)(h2o_handler_t *self, h2o_req_t *req));
/* The OTLP/HTTP site: POST /v1/traces, /v1/metrics, /v1/logs. */
http_site *http_otlp_site_new(const http_site_settings *s, const ingest_limits *lim);

/* proxy_protocol: whether connections start with a PROXY v1/v2 header, read
 * within the site's header timeout, before TLS/HTTP (proxy.h). */
http_listener *http_listener_start(http_site *site, h2o_evloop_t *loop, int listen_fd, SSL_CTX *ssl_ctx,
                                   proxy_mode proxy_protocol, void *worker_data);
void http_listener_shutdown(http_listener *l);
size_t http_listener_connections(const http_listener *l);
/* Frees the listener. Returns 0, or -1 when connections were still open (a
 * drain that timed out): h2o cannot dispose such a context, so it and its
 * timers stay, and the caller must not destroy the event loop either. */
int http_listener_free(http_listener *l);
void *http_worker_data(const h2o_req_t *req);

/* Finish req with a body (copied) and a content type. */
void http_respond(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);

#endif
