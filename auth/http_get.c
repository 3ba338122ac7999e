/* http_get: libcurl implementation. See http_get.h. */
#include "http_get.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

typedef struct http_body {
    char *data; /* NUL-terminated for JSON parsers' error messages */
    size_t len, cap, max;
    bool too_large;
} http_body;

static size_t http_body_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    http_body *b = ud;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_large = true;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int http_abort_check(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return ud != NULL && atomic_load((const atomic_bool *)ud) ? 1 : 0;
}

static pthread_once_t http_curl_once = PTHREAD_ONCE_INIT;
static CURLcode http_curl_rc;

/* curl_global_init is not thread-safe and must run once before any handle. */
static void http_curl_init(void) { http_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static void http_get_setup(CURL *c, const http_get_request *rq, http_body *body)
{
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Redirects may not downgrade an https source to http. */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, strncmp(rq->url, "https:", 6) == 0 ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)rq->timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http_abort_check);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)rq->stop);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "otlp-gateway/" GATEWAY_VERSION);
    if (rq->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, rq->ca_file);
}

int http_get_curl(const http_get_request *rq, char **out, size_t *len, char *err, size_t errlen)
{
    *out = NULL;
    *len = 0;
    pthread_once(&http_curl_once, http_curl_init);
    CURL *c = http_curl_rc == CURLE_OK ? curl_easy_init() : NULL;
    if (c == NULL) {
        snprintf(err, errlen, "%s: cannot start an HTTP client", rq->url);
        return -1;
    }
    http_body body = {.max = rq->max_bytes};
    http_get_setup(c, rq, &body);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);

    if (body.too_large || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf(err, errlen, "%s: response larger than %zu bytes", rq->url, rq->max_bytes);
    else if (rc != CURLE_OK)
        snprintf(err, errlen, "%s: %s", rq->url, curl_easy_strerror(rc));
    else if (status != 200)
        snprintf(err, errlen, "%s: HTTP %ld", rq->url, status);
    else if (body.len == 0)
        snprintf(err, errlen, "%s: empty response", rq->url);
    else {
        *out = body.data;
        *len = body.len;
        return 0;
    }
    free(body.data);
    return -1;
}
