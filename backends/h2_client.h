/* h2_client: a small HTTP/2 client (nghttp2, OpenSSL) for request/response
 * calls such as unary gRPC to one origin. Every caller's request becomes a
 * stream on one shared connection, kept open across calls: h2c with prior
 * knowledge for http://, TLS with ALPN h2 for https://. One I/O thread per
 * client owns the socket and the nghttp2 session; callers block in
 * h2_client_call until their stream ends, times out or is interrupted, or
 * start a call with h2_client_start and learn its end from a callback (the
 * cluster forwarder, which has many calls in flight on one thread).
 *
 * Connection handling:
 * - at most the server's SETTINGS_MAX_CONCURRENT_STREAMS streams are open;
 *   further calls wait their turn;
 * - a call whose stream the server did not process -- refused
 *   (RST_STREAM REFUSED_STREAM before any response) or above a GOAWAY's
 *   last-stream-id -- is sent again, on a new connection when needed;
 * - a stream the server reset otherwise, or a connection lost mid-call,
 *   ends that call with an error (the server may have processed it: the
 *   caller decides whether to retry);
 * - a connection that fails to open fails the calls waiting for it; the
 *   next call tries again.
 * Thread-safe: any thread may call; the callbacks of a request run on the
 * I/O thread while its call is in progress, never after h2_client_call
 * returns or h2_client_start's `done` ran. */
#ifndef GW_H2_CLIENT_H
#define GW_H2_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <curl/curl.h>

#include "metrics.h"

typedef struct h2_client h2_client;

typedef struct h2_client_settings {
    const char *url;         /* http://host[:port][/...] or https://...; only the origin is used */
    const char *user_agent;  /* NULL: no user-agent header */
    const char *ca_file;     /* https: NULL trusts the system's CAs */
    const char *client_cert; /* https: NULL for none; with client_key */
    const char *client_key;
    int insecure_skip_verify;
    const char *name;        /* for logs */
    metric_series *opened;   /* NULL, or a counter of connections opened */
} h2_client_settings;

enum { H2_OK = 0, H2_ERROR = -1, H2_INTERRUPTED = -2 };

typedef struct h2_request {
    const char *url;                  /* the path is what follows the origin */
    const struct curl_slist *headers; /* "Name: value" lines, names sent lowercased;
                                       * "Name:" alone is skipped and "Name;" sends an
                                       * empty value, as libcurl does */
    const uint8_t *head;              /* sent before body (e.g. a gRPC message prefix);
                                       * may be NULL */
    size_t head_len;
    const struct iovec *body;         /* POSTed: n_body pieces one after another, so a
                                       * caller need not join them; valid (the pieces and
                                       * the array) until the call returns */
    size_t n_body;
    uint64_t timeout_ms;              /* the whole call, from h2_client_call */
    /* Each response header and trailer field; each piece of the body. */
    void (*on_header)(void *ud, const char *name, size_t nlen, const char *value, size_t vlen);
    void (*on_data)(void *ud, const uint8_t *p, size_t len);
    void *ud;
} h2_request;

/* Copies the settings; connects at the first call. NULL with err when the
 * URL or the TLS files cannot be used. */
h2_client *h2_client_new(const h2_client_settings *s, char *err, size_t errlen);
/* H2_OK with the response's :status in *status (a response ended by the
 * server, whatever its status and trailers), H2_ERROR with err (no
 * connection, reset, lost, timed out), or H2_INTERRUPTED. */
int h2_client_call(h2_client *c, const h2_request *r, int *status, char *err, size_t errlen);
/* What a call started with h2_client_start ends with (as h2_client_call
 * would return), on the client's I/O thread with its lock held: it must
 * not call into this client, and should only hand the result on. */
typedef void (*h2_done_fn)(void *ud, int rc, int status, const char *err);
/* Starts a call and returns at once; `done` is called exactly once when it
 * ends, and r (with what it points to) must stay valid until then. H2_OK,
 * or H2_ERROR / H2_INTERRUPTED with err and nothing started (no `done`). */
int h2_client_start(h2_client *c, const h2_request *r, h2_done_fn done, void *ud, char *err, size_t errlen);
/* Every call in progress and every later one returns H2_INTERRUPTED. */
void h2_client_interrupt(h2_client *c);
/* Interrupts, stops the I/O thread and frees. NULL is a no-op. */
void h2_client_free(h2_client *c);

#endif
