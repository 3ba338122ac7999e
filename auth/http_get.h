/* http_get: one bounded, blocking HTTPS/HTTP GET, the only network client
 * the auth floor needs (OIDC discovery and JWKS). It is handed to auth as a
 * function pointer (auth_config.http_get) rather than called directly, so
 * auth's logic and its tests link without libcurl, and a test can serve
 * documents from memory.
 *
 * http_get_curl is the libcurl implementation (its own static library,
 * gwauth_http): redirects (at most 3) may not downgrade https to http, the
 * body is capped at max_bytes, and *stop (polled during the transfer)
 * aborts it. */
#ifndef GW_HTTP_GET_H
#define GW_HTTP_GET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http_get_request {
    const char *url;
    const char *ca_file;       /* NULL: system CAs */
    uint32_t timeout_ms;       /* connect and whole transfer */
    size_t max_bytes;          /* a larger body is an error */
    const atomic_bool *stop;   /* NULL, or aborts the transfer when it turns true */
} http_get_request;

/* 0 only for HTTP 200 with a non-empty body of at most max_bytes: *body is
 * NUL-terminated and malloc'd (the caller frees it), *len its length.
 * -1 with "url: reason" in err otherwise (*body NULL). */
typedef int (*http_get_fn)(const http_get_request *rq, char **body, size_t *len, char *err, size_t errlen);

int http_get_curl(const http_get_request *rq, char **body, size_t *len, char *err, size_t errlen);

#endif
