/* keys_source: the shared API key object, polled and edited over HTTP(S) or
 * S3 (see keys_source.h). One libcurl easy handle per request; S3 requests
 * are signed by the AWS backends' signer, which also reads `region` and
 * `credentials` from the api_keys map exactly as a backend's. */
#include "keys_source.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "aws_export.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"

#define KS_MAX_BYTES (16u << 20)  /* a key set far beyond any real one */
#define KS_EDIT_ATTEMPTS 8        /* conditional writes tried before giving up */
#define KS_MIN_POLL_MS 100

enum { KS_OK, KS_NOT_MODIFIED, KS_ERROR, KS_RESULTS };
static const char *const ks_result_names[KS_RESULTS] = {"ok", "not_modified", "error"};

struct keys_source {
    char where[1100]; /* the configured url, or s3://bucket/key */
    char url[1400];   /* what is requested */
    aws_signer *signer; /* s3 only */
    uint64_t poll_ms, timeout_ms;
    char *ca_file;      /* NULL: the system CAs */
    char etag[256];     /* of the key set in use ("" before the first) */
    auth *auth;
    int up;             /* -1 before the first poll, then 0 or 1 */
    int loaded;         /* a key set was handed to auth */
    pthread_t thread;
    int started, stop;
    pthread_mutex_t lock; /* guards stop */
    pthread_cond_t wake;
    metric_series *m_up, *m_last_success, *m_fetches[KS_RESULTS];
};

typedef struct ks_response {
    long status;
    buf body;
    char etag[256];
    size_t max;
    int too_large;
} ks_response;

/* ---- config -------------------------------------------------------------- */

/* S3 keys signed as written: letters, digits, - . _ ~ and '/' between
 * non-empty segments other than . and .. (which a signer would normalise). */
static int ks_valid_s3_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 1024 || k[0] == '/' || k[n - 1] == '/' || strstr(k, "//") != NULL)
        return 0;
    for (const char *seg = k; seg != NULL; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL) {
        size_t len = strcspn(seg, "/");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
    }
    return strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/") == n;
}

static int ks_valid_bucket(const char *b, size_t n)
{
    return n >= 3 && n <= 63 && strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") >= n && b[0] != '.' &&
           b[0] != '-';
}

/* "http://host[:port]" or "https://...", an optional trailing '/', no path. */
static int ks_valid_endpoint(const char *e)
{
    const char *h = strncmp(e, "https://", 8) == 0 ? e + 8 : strncmp(e, "http://", 7) == 0 ? e + 7 : NULL;
    if (h == NULL)
        return 0;
    size_t n = strcspn(h, "/?#@");
    return n > 0 && (h[n] == '\0' || (h[n] == '/' && h[n + 1] == '\0'));
}

static int ks_read_s3(keys_source *ks, const config_node *ak, const char *s3, char *err, size_t errlen)
{
    const char *b = strncmp(s3, "s3://", 5) == 0 ? s3 + 5 : NULL;
    const char *slash = b ? strchr(b, '/') : NULL;
    if (slash == NULL || !ks_valid_bucket(b, (size_t)(slash - b)))
        return config_error(ak, "s3", err, errlen, "expected s3://bucket/key (bucket: 3-63 of a-z 0-9 . -)");
    if (!ks_valid_s3_key(slash + 1))
        return config_error(ak, "s3", err, errlen, "the object key must be 1-1024 of A-Z a-z 0-9 - . _ ~ and '/' "
                            "between segments (no empty, . or .. segment)");
    const char *endpoint;
    if (config_str(ak, "endpoint", NULL, &endpoint, err, errlen) != 0)
        return -1;
    if (endpoint != NULL && !ks_valid_endpoint(endpoint))
        return config_error(ak, "endpoint", err, errlen,
                            "expected http(s)://host[:port] without a path (objects are addressed path-style)");
    if ((ks->signer = aws_signer_from_config(ak, "s3", err, errlen)) == NULL)
        return -1;
    int blen = (int)(slash - b);
    snprintf(ks->where, sizeof(ks->where), "%s", s3);
    if (endpoint != NULL) /* path-style: endpoint/bucket/key */
        snprintf(ks->url, sizeof(ks->url), "%.*s/%.*s/%s", (int)(strlen(endpoint) - (endpoint[strlen(endpoint) - 1] == '/')),
                 endpoint, blen, b, slash + 1);
    else if (memchr(b, '.', (size_t)blen) != NULL) /* dotted names do not match the *.s3 certificate */
        snprintf(ks->url, sizeof(ks->url), "https://s3.%s.amazonaws.com/%.*s/%s", aws_signer_region(ks->signer),
                 blen, b, slash + 1);
    else
        snprintf(ks->url, sizeof(ks->url), "https://%.*s.s3.%s.amazonaws.com/%s", blen, b,
                 aws_signer_region(ks->signer), slash + 1);
    return 0;
}

static int ks_read_url(keys_source *ks, const config_node *ak, const char *url, char *err, size_t errlen)
{
    static const char *const s3_only[] = {"region", "endpoint", "credentials", NULL};
    for (size_t i = 0; s3_only[i] != NULL; i++)
        if (config_get(ak, s3_only[i]) != NULL)
            return config_error(ak, s3_only[i], err, errlen, "applies to an s3 source only");
    const char *h = strncmp(url, "https://", 8) == 0 ? url + 8 : strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    if (h == NULL || strcspn(h, "/?#") == 0 || strlen(url) >= sizeof(ks->url) || strpbrk(url, " \t\r\n\"\\") != NULL)
        return config_error(ak, "url", err, errlen, "expected an http:// or https:// URL");
    if (memchr(h, '@', strcspn(h, "/?#")) != NULL) /* user:password@ would show in logs and metrics */
        return config_error(ak, "url", err, errlen, "credentials in the URL are not supported");
    snprintf(ks->where, sizeof(ks->where), "%.*s", (int)strcspn(url, "?#"), url); /* a query may hold a token */
    snprintf(ks->url, sizeof(ks->url), "%s", url);
    return 0;
}

/* A private CA (an internal config server, an S3-compatible store): checked
 * readable now, so a typo fails the start rather than every poll. */
static int ks_read_ca_file(keys_source *ks, const config_node *ak, char *err, size_t errlen)
{
    const char *ca;
    if (config_str(ak, "ca_file", NULL, &ca, err, errlen) != 0)
        return -1;
    if (ca == NULL)
        return 0;
    if (access(ca, R_OK) != 0)
        return config_error(ak, "ca_file", err, errlen, "cannot read %s: %s", ca, strerror(errno));
    if ((ks->ca_file = strdup(ca)) == NULL)
        return config_error(ak, "ca_file", err, errlen, "out of memory");
    return 0;
}

int keys_source_from_config(const config_node *ak, keys_source **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *url, *s3;
    if (ak == NULL || !config_is_map(ak))
        return 0; /* auth reports a malformed api_keys */
    if (config_str(ak, "url", NULL, &url, err, errlen) != 0 || config_str(ak, "s3", NULL, &s3, err, errlen) != 0)
        return -1;
    if (url == NULL && s3 == NULL)
        return 0;
    if (url != NULL && s3 != NULL)
        return config_error(ak, "s3", err, errlen, "give exactly one of file, url and s3");
    keys_source *ks = calloc(1, sizeof(*ks));
    if (ks == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ks->up = -1;
    pthread_mutex_init(&ks->lock, NULL);
    pthread_cond_init(&ks->wake, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* paired with the cleanup in keys_source_free */
    int rc = s3 != NULL ? ks_read_s3(ks, ak, s3, err, errlen) : ks_read_url(ks, ak, url, err, errlen);
    if (rc == 0 && (config_duration_ms(ak, "poll_interval", 5000, &ks->poll_ms, err, errlen) != 0 ||
                    config_duration_ms(ak, "timeout", 5000, &ks->timeout_ms, err, errlen) != 0))
        rc = -1;
    if (rc == 0 && ks->poll_ms < KS_MIN_POLL_MS)
        rc = config_error(ak, "poll_interval", err, errlen, "at least 100ms");
    if (rc == 0 && ks->timeout_ms == 0)
        rc = config_error(ak, "timeout", err, errlen, "must be more than 0");
    if (rc == 0)
        rc = ks_read_ca_file(ks, ak, err, errlen);
    if (rc != 0) {
        keys_source_free(ks);
        return -1;
    }
    *out = ks;
    return 0;
}

const char *keys_source_where(const keys_source *ks) { return ks->where; }

/* ---- one request ----------------------------------------------------------- */

static size_t ks_on_body(char *p, size_t size, size_t n, void *ud)
{
    ks_response *r = ud;
    if (size * n > r->max - r->body.len) {
        r->too_large = 1;
        return 0;
    }
    return buf_append(&r->body, p, size * n) == 0 ? size * n : 0;
}

/* Keeps the ETag of the last response (a redirect's headers come first). */
static size_t ks_on_header(char *p, size_t size, size_t n, void *ud)
{
    ks_response *r = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
        r->etag[0] = '\0';
    else if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
        const char *v = p + 5;
        size_t vl = len - 5;
        while (vl > 0 && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof(r->etag))
            snprintf(r->etag, sizeof(r->etag), "%.*s", (int)vl, v);
    }
    return len;
}

/* method on ks->url with the header lines `hdrs` (NULL-terminated) and body;
 * s3 requests are signed. 0 with r->status set (any status), or -1 with err
 * when no response came. The caller frees r->body. */
static int ks_request(keys_source *ks, const char *method, const char *const *hdrs, const char *body, size_t len,
                      ks_response *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->max = KS_MAX_BYTES;
    struct curl_slist *h = NULL, *t;
    for (size_t i = 0; hdrs[i] != NULL; i++) {
        if ((t = curl_slist_append(h, hdrs[i])) == NULL) {
            curl_slist_free_all(h);
            snprintf(err, errlen, "%s: out of memory", ks->where);
            return -1;
        }
        h = t;
    }
    char serr[256];
    if (ks->signer != NULL) {
        export_signing req = {.method = method, .url = ks->url, .headers = h, .body = (const uint8_t *)body,
                              .len = len};
        if (aws_signer_sign(ks->signer, &req, &h, serr, sizeof(serr)) != 0) {
            curl_slist_free_all(h);
            snprintf(err, errlen, "%s: %s", ks->where, serr);
            return -1;
        }
    }
    CURL *c = curl_easy_init();
    if (c == NULL) {
        curl_slist_free_all(h);
        snprintf(err, errlen, "%s: cannot start an HTTP client", ks->where);
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, ks->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (ks->signer == NULL) { /* a plain URL may redirect, never from https down to http */
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, strncmp(ks->url, "https:", 6) == 0 ? "https" : "http,https");
    }
    if (ks->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, ks->ca_file);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ks->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ks->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "otlp-gateway/" GATEWAY_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ks_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ks_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (rc == CURLE_OK)
        return 0;
    snprintf(err, errlen, "%s: %s", ks->where, r->too_large ? "object larger than 16 MiB" : curl_easy_strerror(rc));
    buf_free(&r->body);
    return -1;
}

/* A failed status, with S3's error <Code> when the body has one. */
static int ks_status_error(const keys_source *ks, const char *method, ks_response *r, char *err, size_t errlen)
{
    const char *code = NULL, *end = NULL;
    if (r->body.len > 0 && buf_putc(&r->body, '\0') == 0 && (code = strstr(r->body.data, "<Code>")) != NULL)
        end = strstr(code += 6, "</Code>");
    if (end != NULL && end - code < 64)
        snprintf(err, errlen, "%s: %s: HTTP %ld (%.*s)", ks->where, method, r->status, (int)(end - code), code);
    else
        snprintf(err, errlen, "%s: %s: HTTP %ld", ks->where, method, r->status);
    return -1;
}

/* GET the object (conditional on if_none_match when non-empty). 0 with *out
 * a new store and its ETag in etag (status 200; when absent_ok, a 404 gives
 * an empty store and etag ""), 1 for 304, -1 with err. */
static int ks_fetch(keys_source *ks, const char *if_none_match, int absent_ok, apikey_store **out, char *etag,
                    size_t etaglen, char *err, size_t errlen)
{
    char inm[300];
    snprintf(inm, sizeof(inm), "If-None-Match: %s", if_none_match ? if_none_match : "");
    const char *hdrs[] = {if_none_match && *if_none_match ? inm : NULL, NULL};
    ks_response r;
    *out = NULL;
    if (ks_request(ks, "GET", hdrs, NULL, 0, &r, err, errlen) != 0)
        return -1;
    int rc;
    if (r.status == 304)
        rc = 1;
    else if (r.status == 404 && absent_ok)
        rc = apikey_store_parse(ks->where, "", 0, out, err, errlen);
    else if (r.status != 200)
        rc = ks_status_error(ks, "GET", &r, err, errlen);
    else
        rc = apikey_store_parse(ks->where, r.body.data ? r.body.data : "", r.body.len, out, err, errlen);
    if (rc == 0)
        snprintf(etag, etaglen, "%s", r.status == 200 ? r.etag : "");
    buf_free(&r.body);
    return rc;
}

/* ---- the poller ------------------------------------------------------------ */

static void ks_set_state(keys_source *ks, int up, const char *error)
{
    metrics_set(ks->m_up, up);
    if (up)
        metrics_set(ks->m_last_success, (int64_t)time(NULL));
    if (up == ks->up)
        return;
    char q[700];
    if (up)
        log_info("api keys source up", "source=%s etag=%s", ks->where, log_quote(q, sizeof(q), ks->etag));
    else
        log_warn("api keys source down; keeping the last good keys", "source=%s keys_loaded=%s error=%s", ks->where,
                 ks->loaded ? "yes" : "no", log_quote(q, sizeof(q), error));
    ks->up = up;
}

static void ks_poll(keys_source *ks)
{
    apikey_store *fresh;
    char etag[sizeof(ks->etag)], err[600];
    int rc = ks_fetch(ks, ks->etag, 0, &fresh, etag, sizeof(etag), err, sizeof(err));
    int result = rc == 0 ? KS_OK : rc == 1 ? KS_NOT_MODIFIED : KS_ERROR;
    metrics_add(ks->m_fetches[result], 1);
    if (rc == 0) {
        size_t n = apikey_store_count(fresh);
        auth_keys_replace(ks->auth, fresh);
        ks->loaded = 1;
        snprintf(ks->etag, sizeof(ks->etag), "%s", etag);
        log_info("api keys loaded", "source=%s keys=%zu", ks->where, n);
    }
    ks_set_state(ks, rc >= 0, err);
}

static void *ks_run(void *arg)
{
    keys_source *ks = arg;
    pthread_mutex_lock(&ks->lock);
    while (!ks->stop) {
        pthread_mutex_unlock(&ks->lock);
        ks_poll(ks);
        struct timespec until = clock_deadline(ks->poll_ms);
        pthread_mutex_lock(&ks->lock);
        while (!ks->stop && pthread_cond_timedwait(&ks->wake, &ks->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&ks->lock);
    return NULL;
}

int keys_source_start(keys_source *ks, auth *a, char *err, size_t errlen)
{
    ks->auth = a;
    metric_family *up = metrics_family("otlp_gateway_api_keys_source_up", METRIC_GAUGE,
                                       "1 when the last fetch of the shared API keys object succeeded, else 0.");
    metric_family *last = metrics_family("otlp_gateway_api_keys_source_last_success_timestamp_seconds",
                                         METRIC_GAUGE, "Unix time of the last successful fetch of the API keys object.");
    metric_family *fetches = metrics_family("otlp_gateway_api_keys_source_fetches_total", METRIC_COUNTER,
                                            "Fetches of the shared API keys object, by result.");
    char labels[sizeof(ks->where) + 40];
    snprintf(labels, sizeof(labels), "source=\"%s\"", ks->where);
    ks->m_up = metrics_series(up, labels);
    ks->m_last_success = metrics_series(last, labels);
    for (int i = 0; i < KS_RESULTS; i++) {
        snprintf(labels, sizeof(labels), "source=\"%s\",result=\"%s\"", ks->where, ks_result_names[i]);
        ks->m_fetches[i] = metrics_series(fetches, labels);
    }
    pthread_cond_destroy(&ks->wake);
    clock_cond_init(&ks->wake);
    if (pthread_create(&ks->thread, NULL, ks_run, ks) != 0) {
        snprintf(err, errlen, "cannot start the API keys poller");
        return -1;
    }
    ks->started = 1;
    return 0;
}

void keys_source_free(keys_source *ks)
{
    if (ks == NULL)
        return;
    if (ks->started) {
        pthread_mutex_lock(&ks->lock);
        ks->stop = 1;
        pthread_cond_signal(&ks->wake);
        pthread_mutex_unlock(&ks->lock);
        pthread_join(ks->thread, NULL);
    }
    aws_signer_free(ks->signer);
    free(ks->ca_file);
    pthread_cond_destroy(&ks->wake);
    pthread_mutex_destroy(&ks->lock);
    curl_global_cleanup();
    free(ks);
}

/* ---- the CLI's reads and conditional writes ------------------------------- */

int keys_source_load(keys_source *ks, apikey_store **out, char *err, size_t errlen)
{
    char etag[sizeof(ks->etag)];
    return ks_fetch(ks, NULL, 1, out, etag, sizeof(etag), err, errlen) == 0 ? 0 : -1;
}

int keys_source_edit(keys_source *ks, apikey_edit_fn fn, void *ctx, char *err, size_t errlen)
{
    if (ks->signer == NULL) {
        snprintf(err, errlen, "%s: a url source is read-only; create and revoke keys where the document is "
                 "published, or use an s3 source or a file", ks->where);
        return -1;
    }
    for (int attempt = 0; attempt < KS_EDIT_ATTEMPTS; attempt++) {
        apikey_store *s;
        char etag[sizeof(ks->etag)];
        if (ks_fetch(ks, NULL, 1, &s, etag, sizeof(etag), err, errlen) != 0)
            return -1;
        int rc = fn(s, ctx, err, errlen);
        char *doc = NULL;
        size_t len = 0;
        if (rc == 0 && apikey_store_format(s, &doc, &len) != 0)
            rc = -1, snprintf(err, errlen, "%s: out of memory", ks->where);
        apikey_store_free(s);
        if (rc != 0)
            return rc;
        char cond[300];
        snprintf(cond, sizeof(cond), *etag ? "If-Match: %s" : "If-None-Match: *", etag);
        const char *hdrs[] = {cond, "Content-Type: application/yaml", "Expect:", NULL};
        ks_response r;
        rc = ks_request(ks, "PUT", hdrs, doc, len, &r, err, errlen);
        free(doc);
        if (rc != 0)
            return -1;
        /* 412: the object changed since the GET; 409: S3's concurrent conditional write. */
        int conflict = r.status == 412 || r.status == 409;
        if (r.status != 200 && !conflict)
            rc = ks_status_error(ks, "PUT", &r, err, errlen);
        buf_free(&r.body);
        if (!conflict)
            return rc;
        /* A short pause that differs between processes, so racing writers spread out. */
        struct timespec pause = {.tv_nsec = (long)((getpid() * 7919 + attempt * 31) % 100 + 20 * attempt) * 1000000L};
        nanosleep(&pause, NULL);
    }
    snprintf(err, errlen, "%s: gave up after %d conflicting writes by others; try again", ks->where,
             KS_EDIT_ATTEMPTS);
    return -1;
}
