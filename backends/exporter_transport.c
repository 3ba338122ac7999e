/* exporter_transport: a request on the wire, and its reply
 * (exporter_transport.h). */
#include "exporter_transport.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "grpc_frame.h"
#include "h2_client.h"
#include "status.pb-c.h"

/* Response bodies are only read for status messages and partial success. */
#define EXPORTER_MAX_RESPONSE_BYTES 65536
#define EXPORTER_RETRY_INFO_URL "type.googleapis.com/google.rpc.RetryInfo"

/* ---- responses ---- */

static int exporter_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    *out = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t c = *(*p)++;
        *out |= (uint64_t)(c & 0x7f) << shift;
        if ((c & 0x80) == 0)
            return 0;
    }
    return -1;
}

/* Field `want` (length-delimited) of a message; skips everything else. */
static int exporter_pb_field(const uint8_t *p, const uint8_t *end, uint64_t want, const uint8_t **val, size_t *len)
{
    while (p < end) {
        uint64_t key, v;
        if (exporter_varint(&p, end, &key) != 0)
            return -1;
        switch (key & 7) {
        case 0:
            if (exporter_varint(&p, end, &v) != 0)
                return -1;
            if ((key >> 3) == want) {
                *val = NULL;
                *len = v; /* a varint field: its value */
                return 0;
            }
            break;
        case 1: p += 8; break;
        case 5: p += 4; break;
        case 2:
            if (exporter_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p))
                return -1;
            if ((key >> 3) == want) {
                *val = p;
                *len = (size_t)v;
                return 0;
            }
            p += v;
            break;
        default: return -1;
        }
    }
    return -1;
}

/* grpc-status-details-bin: a google.rpc.Status whose details may hold a
 * google.rpc.RetryInfo {retry_delay: Duration {seconds = 1, nanos = 2}}.
 * RetryInfo is not in proto/, and two varints are all we need of it, so it
 * is read by hand. Returns the delay rounded up, at least 1 s, so that a
 * present RetryInfo is never mistaken for none; 0 when absent. */
static uint32_t exporter_retry_info_s(const char *b64, size_t len)
{
    uint8_t raw[2048];
    size_t n;
    /* padding optional, as gRPC sends -bin headers */
    if (codec_base64_decode(b64, len, CODEC_B64_STD | CODEC_B64_URL | CODEC_B64_UNTIL_PAD, raw, sizeof(raw), &n) != 0 ||
        n == 0)
        return 0;
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, n, raw);
    if (st == NULL)
        return 0;
    uint32_t out = 0;
    for (size_t i = 0; i < st->n_details && out == 0; i++) {
        const Google__Rpc__Any *any = st->details[i];
        if (any->type_url == NULL || strcmp(any->type_url, EXPORTER_RETRY_INFO_URL) != 0)
            continue;
        const uint8_t *p = any->value.data, *end = p + any->value.len, *dur;
        size_t dlen, secs = 0, nanos = 0;
        const uint8_t *unused;
        out = 1;
        if (exporter_pb_field(p, end, 1, &dur, &dlen) != 0 || dur == NULL)
            continue;
        if (exporter_pb_field(dur, dur + dlen, 1, &unused, &secs) != 0)
            secs = 0;
        if (exporter_pb_field(dur, dur + dlen, 2, &unused, &nanos) != 0)
            nanos = 0;
        uint64_t s = (uint64_t)secs + (nanos > 0 && nanos < 1000000000u ? 1 : 0);
        out = s == 0 ? 1 : s > 86400 ? 86400 : (uint32_t)s;
    }
    google__rpc__status__free_unpacked(st, NULL);
    return out;
}

/* Retry-After: delay-seconds or an HTTP-date. */
static uint32_t exporter_retry_after(const char *v)
{
    char *end;
    unsigned long s = strtoul(v, &end, 10);
    if (end != v && *end == '\0')
        return s > 86400 ? 86400 : (uint32_t)s;
    time_t t = curl_getdate(v, NULL), now = time(NULL);
    if (t == -1 || t <= now)
        return 0;
    return t - now > 86400 ? 86400 : (uint32_t)(t - now);
}

/* grpc-message is percent-encoded. */
static void exporter_percent_decode(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    while (*s != '\0' && n + 1 < cap) {
        if (s[0] == '%' && codec_hex_value(s[1]) >= 0 && codec_hex_value(s[2]) >= 0) {
            out[n++] = (char)(codec_hex_value(s[1]) * 16 + codec_hex_value(s[2]));
            s += 3;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
}

void exporter_reply_header(void *ud, const char *name, size_t nlen, const char *v, size_t vlen)
{
    exporter_reply *r = ud;
    char value[2800];
    if (vlen > sizeof(value) - 1)
        vlen = sizeof(value) - 1;
    memcpy(value, v, vlen);
    value[vlen] = '\0';
#define EXPORTER_IS(n) (nlen == sizeof(n) - 1 && strncasecmp(name, n, nlen) == 0)
    if (EXPORTER_IS("content-type")) {
        size_t n = vlen < sizeof(r->content_type) - 1 ? vlen : sizeof(r->content_type) - 1;
        memcpy(r->content_type, value, n);
        r->content_type[n] = '\0';
    } else if (EXPORTER_IS("retry-after")) {
        r->retry_after_s = exporter_retry_after(value);
    } else if (EXPORTER_IS("grpc-status")) {
        char *e;
        long st = strtol(value, &e, 10);
        r->grpc_status = e != value && *e == '\0' && st >= 0 && st <= 1000 ? (int)st : 2 /* UNKNOWN */;
    } else if (EXPORTER_IS("grpc-message")) {
        exporter_percent_decode(value, r->grpc_message, sizeof(r->grpc_message));
    } else if (EXPORTER_IS("grpc-status-details-bin")) {
        uint32_t s = exporter_retry_info_s(value, vlen);
        if (s > r->retry_after_s)
            r->retry_after_s = s;
    }
#undef EXPORTER_IS
}

/* CURLOPT_HEADERFUNCTION: every header line, and trailers with HTTP/2. */
static size_t exporter_on_header(char *p, size_t size, size_t nitems, void *ud)
{
    exporter_reply *r = ud;
    size_t len = size * nitems;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response (after 1xx): forget the last */
        r->content_type[0] = r->grpc_message[0] = '\0';
        r->grpc_status = -1;
        r->retry_after_s = 0;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (colon == NULL)
        return len;
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    exporter_reply_header(r, p, (size_t)(colon - p), v, (size_t)(end - v));
    return len;
}

void exporter_reply_body(void *ud, const uint8_t *p, size_t len)
{
    exporter_reply *r = ud;
    size_t room = r->body.len < EXPORTER_MAX_RESPONSE_BYTES ? EXPORTER_MAX_RESPONSE_BYTES - r->body.len : 0;
    (void)buf_append(&r->body, p, len < room ? len : room); /* out of memory: the reply is read short */
}

static size_t exporter_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    exporter_reply_body(ud, (const uint8_t *)p, size * nmemb);
    return size * nmemb;
}

/* libcurl's upload buffer: a body read through exporter_upload_read goes
 * to the socket in sends of this size. libcurl's 64 KiB default made a
 * 3.6 MB batch 56 sends; with 512 KiB the export_http scenario made 7
 * times fewer sendto calls (bench/README.md). The buffer is allocated per
 * handle and touched only as far as bodies fill it. */
#define EXPORTER_UPLOAD_BUFFER (512L << 10)

/* The options every POST of ours sets: no signals, the timeout, http(s)
 * only, the error text into errbuf (CURL_ERROR_SIZE), the reply into `reply`,
 * the upload buffer. */
void exporter_easy_defaults(CURL *c, long timeout_ms, char *errbuf, exporter_reply *reply)
{
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "otlp-gateway/" GATEWAY_VERSION);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, exporter_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, reply);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, exporter_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, EXPORTER_UPLOAD_BUFFER);
}

/* ---- performing ---- */

static void exporter_reply_reset(exporter_reply *rp)
{
    buf_clear(&rp->body);
    rp->content_type[0] = rp->grpc_message[0] = '\0';
    rp->grpc_status = -1;
    rp->retry_after_s = 0;
}

static void exporter_response_fill(export_response *r, long status, const char *error, const exporter_reply *rp)
{
    *r = (export_response){
        .http_status = status,
        .error = error,
        .content_type = rp->content_type[0] != '\0' ? rp->content_type : NULL,
        .body = (const uint8_t *)rp->body.data,
        .body_len = rp->body.len,
        .grpc_status = rp->grpc_status,
        .grpc_message = rp->grpc_message[0] != '\0' ? rp->grpc_message : NULL,
        .retry_after_s = rp->retry_after_s,
    };
}

/* libcurl reads a body of several pieces through these. */
static size_t exporter_upload_read(char *out, size_t size, size_t nitems, void *ud)
{
    exporter_consumer *cs = ud;
    return iov_read(cs->upload.v, cs->upload.n, &cs->upload.at, (uint8_t *)out, size * nitems);
}

/* A rewind (a resend on a new connection): to any offset from the start. */
static int exporter_upload_seek(void *ud, curl_off_t offset, int origin)
{
    exporter_consumer *cs = ud;
    if (origin != SEEK_SET || offset < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    return iov_seek(cs->upload.v, cs->upload.n, &cs->upload.at, (size_t)offset) == 0 ? CURL_SEEKFUNC_OK
                                                                                      : CURL_SEEKFUNC_FAIL;
}

/* One HTTP exchange on the consumer's multi handle. -1 when shutdown
 * interrupted it. A body in one piece is handed to libcurl as it is; one
 * in several is read piece by piece (libcurl copies either into its
 * buffers: joining the pieces first would copy them twice). */
static int exporter_perform_curl(exporter_consumer *cs, const export_http *h, const struct iovec *body, size_t n,
                                 export_response *r)
{
    exporter *e = cs->e;
    exporter_reply_reset(&cs->reply);
    cs->curl_error[0] = '\0';
    CURL *c = cs->easy;
    curl_easy_setopt(c, CURLOPT_URL, h->url.data);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    if (n == 1) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body[0].iov_base != NULL ? (const char *)body[0].iov_base : "");
    } else {
        cs->upload.v = body;
        cs->upload.n = n;
        cs->upload.at = (iov_cursor){0, 0};
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, exporter_upload_read);
        curl_easy_setopt(c, CURLOPT_READDATA, cs);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, exporter_upload_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, cs);
    }
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)iov_total(body, n));
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (curl_multi_add_handle(cs->multi, c) != CURLM_OK) {
        *r = (export_response){.error = "curl_multi_add_handle failed", .grpc_status = -1};
        return 0;
    }
    CURLcode result = CURLE_OK;
    int done = 0, interrupted = 0;
    while (!done) {
        int running, queued;
        curl_multi_perform(cs->multi, &running);
        CURLMsg *m;
        while ((m = curl_multi_info_read(cs->multi, &queued)) != NULL) {
            if (m->msg == CURLMSG_DONE && m->easy_handle == c) {
                result = m->data.result;
                done = 1;
            }
        }
        if (done)
            break;
        if (atomic_load(&e->stopping)) {
            interrupted = 1;
            break;
        }
        curl_multi_poll(cs->multi, NULL, 0, EXPORTER_POLL_MS, NULL);
    }
    curl_multi_remove_handle(cs->multi, c);
    if (interrupted)
        return -1;
    long status = 0;
    if (result == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    exporter_response_fill(r, status,
                           result == CURLE_OK         ? NULL
                           : cs->curl_error[0] != '\0' ? cs->curl_error
                                                      : curl_easy_strerror(result),
                           &cs->reply);
    return 0;
}

/* The backend's HTTP/2 client for h's URL, made at the first gRPC request
 * (NULL with err when the URL cannot be used). */
static h2_client *exporter_h2(exporter *e, const export_http *h, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->h2_lock);
    if (e->h2 == NULL && !atomic_load(&e->stopping)) {
        h2_client_settings hs = {.url = h->url.data,
                                 .user_agent = "otlp-gateway/" GATEWAY_VERSION,
                                 .ca_file = e->set.ca_file,
                                 .client_cert = e->set.client_cert,
                                 .client_key = e->set.client_key,
                                 .insecure_skip_verify = e->set.insecure_skip_verify,
                                 .name = e->base.name,
                                 .opened = e->connections};
        e->h2 = h2_client_new(&hs, err, errlen);
    }
    h2_client *c = e->h2;
    pthread_mutex_unlock(&e->h2_lock);
    if (c == NULL && err[0] == '\0')
        snprintf(err, errlen, "stopping");
    return c;
}

/* One gRPC exchange as a stream on the backend's shared HTTP/2 connection.
 * -1 when shutdown interrupted it. */
static int exporter_perform_h2(exporter_consumer *cs, const export_http *h, const struct iovec *body, size_t n,
                               export_response *r)
{
    exporter *e = cs->e;
    exporter_reply_reset(&cs->reply);
    cs->curl_error[0] = '\0';
    h2_client *c = exporter_h2(e, h, cs->curl_error, sizeof(cs->curl_error));
    if (c == NULL) {
        exporter_response_fill(r, 0, cs->curl_error, &cs->reply);
        return atomic_load(&e->stopping) ? -1 : 0;
    }
    uint8_t head[GRPC_FRAME_PREFIX];
    if (h->as_is)
        grpc_frame_put_prefix(head, 0, (uint32_t)iov_total(body, n)); /* prepare checked that it fits */
    h2_request req = {.url = h->url.data,
                      .headers = h->headers,
                      .head = h->as_is ? head : NULL,
                      .head_len = h->as_is ? sizeof(head) : 0,
                      .body = body,
                      .n_body = n,
                      .timeout_ms = e->set.timeout_ms,
                      .on_header = exporter_reply_header,
                      .on_data = exporter_reply_body,
                      .ud = &cs->reply};
    int status = 0;
    int rc = h2_client_call(c, &req, &status, cs->curl_error, sizeof(cs->curl_error));
    if (rc == H2_INTERRUPTED)
        return -1;
    exporter_response_fill(r, rc == H2_OK ? status : 0, rc == H2_OK ? NULL : cs->curl_error, &cs->reply);
    return 0;
}

/* gRPC goes over the backend's own HTTP/2 client (one multiplexed
 * connection, h2c too); everything else over libcurl. */
int exporter_perform(exporter_consumer *c, const export_http *h, const struct iovec *body, size_t n,
                     export_response *r)
{
    return h->grpc ? exporter_perform_h2(c, h, body, n, r) : exporter_perform_curl(c, h, body, n, r);
}
