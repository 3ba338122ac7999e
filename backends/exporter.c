/* exporter: the queue-draining, batching, retrying machinery of network
 * backends (see exporter.h for the contract and the retry policy). Which
 * batch comes next is exporter_take's; sending a request and reading its
 * reply, exporter_transport's.
 *
 * Threads: worker threads only push into the queue (export op). Everything
 * else -- batching, the curl handles, compression, response parsing -- runs
 * on the backend's own consumer thread, so none of it needs a lock. The
 * mutex and condition variable exist only so that a retry sleep or a flush
 * wait can be cut short. */
#include "exporter.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "clock.h"
#include "gzip.h"
#include "log.h"
#include "metrics.h"
#include "exporter_config.h"
#include "exporter_internal.h"
#include "exporter_take.h"
#include "exporter_transport.h"
#include "h2_client.h"

/* flush (shutdown) drains for at most this long. */
#define EXPORTER_FLUSH_MS 5000

uint64_t exporter_backoff_ms(uint64_t initial_ms, uint64_t max_ms, double multiplier, double jitter, unsigned attempt,
                             double r)
{
    double d = (double)initial_ms * pow(multiplier, (double)attempt);
    if (!(d < (double)max_ms)) /* also catches overflow to inf */
        d = (double)max_ms;
    d *= 1.0 + jitter * (2.0 * r - 1.0);
    return d > 0 ? (uint64_t)d : 0;
}

/* xorshift64*: jitter needs spread, not cryptographic quality. */
static double exporter_random(exporter_consumer *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (double)((c->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/* A backend is waiting for a retry when a consumer sleeps before one, or
 * when everything queued belongs to tenants backing off. */
static int exporter_waiting(exporter *e)
{
    return atomic_load(&e->waiting_retry) > 0 || atomic_load(&e->parked_only);
}

/* Type state shared by the consumers is used by one at a time. */
static int exporter_type_shared(const exporter *e)
{
    return !e->type->reentrant && !e->type->per_consumer;
}

static void exporter_type_lock(exporter *e)
{
    if (exporter_type_shared(e))
        pthread_mutex_lock(&e->type_lock);
}

static void exporter_type_unlock(exporter *e)
{
    if (exporter_type_shared(e))
        pthread_mutex_unlock(&e->type_lock);
}

/* ---- sending ---- */

/* Is a header named like `line` ("Name: value") already in the list? */
static int exporter_header_present(const struct curl_slist *list, const char *line)
{
    size_t n = strcspn(line, ":");
    for (; list != NULL; list = list->next)
        if (strncasecmp(list->data, line, n) == 0 && list->data[n] == ':')
            return 1;
    return 0;
}

static int exporter_add_missing(struct curl_slist **list, const char *line)
{
    if (exporter_header_present(*list, line))
        return 0;
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL)
        return -1;
    *list = l;
    return 0;
}

/* Completes the type's headers with the configured ones, once per batch. */
static int exporter_add_headers(exporter *e, const export_batch *b, export_http *h)
{
    /* Most specific first: a tenant's header replaces the signal's, which
     * replaces the common one (a default key plus per-tenant overrides must
     * send one key, not both); the type's defaults come last. */
    const exporter_headers *sets[] = {exporter_settings_tenant(&e->set, b->tenant), &e->set.per_signal[b->signal],
                                      &e->set.common};
    for (size_t s = 0; s < 3; s++)
        for (size_t i = 0; i < sets[s]->n; i++)
            if (exporter_add_missing(&h->headers, sets[s]->lines[i]) != 0)
                return -1;
    for (const struct curl_slist *d = h->defaults; d != NULL; d = d->next)
        if (exporter_add_missing(&h->headers, d->data) != 0)
            return -1;
    if (h->compress && e->set.compression != EXPORTER_COMPRESS_NONE &&
        (h->headers = curl_slist_append(h->headers, e->set.compression == EXPORTER_COMPRESS_GZIP
                                                        ? "Content-Encoding: gzip"
                                                        : "Content-Encoding: zstd")) == NULL)
        return -1;
    /* curl would send "Expect: 100-continue" for large HTTP/1.1 bodies and
     * wait a second for an answer many servers never give. */
    if ((h->headers = curl_slist_append(h->headers, "Expect:")) == NULL || buf_putc(&h->url, '\0') != 0)
        return -1;
    h->url.len--; /* keep the NUL for curl, not in the length */
    return 0;
}

/* A batch being delivered: the request as it stands, which a partial retry
 * narrows to the items the backend asked for again. */
typedef struct exporter_delivery {
    export_batch b; /* items shrink when only some items are retried */
    export_http h;
    buf retry_body;
    const uint8_t *data; /* the body as sent (compressed when asked) */
    size_t len;
    int unjoined;        /* instead: the batch's entries one after another (exporter_unjoined) */
} exporter_delivery;

/* The request body before compression: prepare's, or the batch's own bytes
 * when prepare passed them on as they are. */
static void exporter_body(const exporter_delivery *d, const uint8_t **p, size_t *n)
{
    *p = d->h.as_is ? d->b.body : (const uint8_t *)d->h.body.data;
    *n = d->h.as_is ? d->b.body_len : d->h.body.len;
}

/* The bytes to send for d's body: itself, or compressed into c->compressed
 * when the type asks for compression; into d->data and d->len. */
static int exporter_encode(exporter_consumer *c, exporter_delivery *d, char *err, size_t errlen)
{
    const export_http *h = &d->h;
    const uint8_t **data = &d->data;
    size_t *len = &d->len;
    exporter_body(d, data, len);
    if (!h->compress || c->e->set.compression == EXPORTER_COMPRESS_NONE)
        return 0;
    buf_clear(&c->compressed);
    if (c->e->set.compression == EXPORTER_COMPRESS_GZIP) {
        if (gzip_deflate(*data, *len, -1, &c->compressed) != GZIP_OK) {
            snprintf(err, errlen, "out of memory compressing the request");
            return -1;
        }
    } else {
        size_t bound = ZSTD_compressBound(*len);
        if (buf_reserve(&c->compressed, bound) != 0) {
            snprintf(err, errlen, "out of memory compressing the request");
            return -1;
        }
        size_t n = ZSTD_compress(c->compressed.data, bound, *data, *len, ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(n)) {
            snprintf(err, errlen, "zstd: %s", ZSTD_getErrorName(n));
            return -1;
        }
        c->compressed.len = n;
    }
    *data = (const uint8_t *)c->compressed.data;
    *len = c->compressed.len;
    return 0;
}

void exporter_signal(exporter *e)
{
    pthread_mutex_lock(&e->lock);
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Sleeps ms unless shutdown comes first (-1 then). */
static int exporter_sleep(exporter *e, uint64_t ms)
{
    struct timespec ts = clock_deadline(ms);
    pthread_mutex_lock(&e->lock);
    while (!atomic_load(&e->stopping) && pthread_cond_timedwait(&e->cond, &e->lock, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&e->lock);
    return atomic_load(&e->stopping) ? -1 : 0;
}

/* The batch is finished with (delivered or given up): remove it. */
static void exporter_ack(exporter *e, const queue_entry *entries, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += entries[i].len;
    queue_ack(e->queue, entries, n);
    metrics_gauge_add(e->queue_entries, -(int64_t)n);
    metrics_gauge_add(e->queue_bytes, -(int64_t)bytes);
    exporter_signal(e); /* a flush may be waiting for the queue to empty */
}

static void exporter_give_up(exporter *e, const export_batch *b, metric_series *counter, const char *reason,
                             long status, const char *msg)
{
    char q[300];
    metrics_add(counter, b->items);
    log_warn("export dropped", "backend=%s signal=%s tenant=%s items=%llu reason=%s status=%ld error=%s", e->base.name,
             otlp_signal_name(b->signal), b->tenant[0] ? b->tenant : "-", (unsigned long long)b->items, reason, status,
             log_quote(q, sizeof(q), msg));
}

static const char *exporter_response_text(const export_response *r, const char *msg)
{
    return msg[0] != '\0' ? msg : r->error != NULL ? r->error : r->grpc_message != NULL ? r->grpc_message : "";
}

/* The attempt's body as pieces in c->iov: data, or each entry of a batch
 * left unjoined. */
static size_t exporter_pieces(exporter_consumer *c, const exporter_delivery *d)
{
    if (!d->unjoined) {
        c->iov[0] = (struct iovec){.iov_base = (void *)d->data, .iov_len = d->len};
        return 1;
    }
    for (size_t i = 0; i < d->b.n_entries; i++)
        c->iov[i] = (struct iovec){.iov_base = (void *)d->b.entries[i].data, .iov_len = d->b.entries[i].len};
    return d->b.n_entries;
}

/* One attempt: sign (if the type does) and perform. The signing headers
 * live only for this attempt, linked after the batch's own. -1 when
 * shutdown interrupted it. */
static int exporter_attempt(exporter_consumer *c, export_http *h, const exporter_delivery *d, export_response *r)
{
    exporter *e = c->e;
    const uint8_t *data = d->data;
    size_t len = d->len;
    if (e->type->sign == NULL)
        return exporter_perform(c, h, c->iov, exporter_pieces(c, d), r);
    struct curl_slist *extra = NULL, *tail = h->headers;
    char err[256] = "";
    export_signing req = {.url = h->url.data, .headers = h->headers, .body = data, .len = len};
    exporter_type_lock(e);
    int signed_ok = e->type->sign(c->type_state, &req, &extra, err, sizeof(err)) == 0;
    exporter_type_unlock(e);
    if (!signed_ok) {
        curl_slist_free_all(extra);
        snprintf(c->curl_error, sizeof(c->curl_error), "signing: %s", err);
        *r = (export_response){.error = c->curl_error, .grpc_status = -1};
        return 0;
    }
    while (tail->next != NULL) /* h->headers is never empty: exporter_add_headers added Expect */
        tail = tail->next;
    tail->next = extra;
    int rc = exporter_perform(c, h, c->iov, exporter_pieces(c, d), r); /* data: signed types are never unjoined */
    tail->next = NULL;
    curl_slist_free_all(extra);
    return rc;
}

/* The request is built once per batch, not per attempt; a batch that cannot
 * be built is given up (counted), never retried. */
static int exporter_build(exporter_consumer *c, exporter_delivery *d)
{
    exporter *e = c->e;
    metric_series *dropped = e->series[d->b.signal].dropped;
    char err[256] = "";
    exporter_type_lock(e);
    int prepared = e->type->prepare(c->type_state, &d->b, &d->h, err, sizeof(err)) == 0;
    exporter_type_unlock(e);
    if (!prepared || exporter_encode(c, d, err, sizeof(err)) != 0) {
        exporter_give_up(e, &d->b, dropped, "prepare", 0, err);
        return -1;
    }
    if (exporter_add_headers(e, &d->b, &d->h) != 0) {
        exporter_give_up(e, &d->b, dropped, "prepare", 0, "out of memory building the request");
        return -1;
    }
    return 0;
}

/* A type's per-item counts are held to the batch (a backend may claim more
 * items than were sent) before they are counted and logged. */
/* A destination is failing when it did not answer or answered that it
 * cannot take data now (or not from us); bad data (other 4xx) says nothing
 * about its health. */
static void exporter_note_health(exporter *e, const export_response *r)
{
    long st = r->http_status;
    int failing = st == 0 || st == 401 || st == 403 || st == 408 || st == 429 || st >= 500 ||
                  r->grpc_status == 14 /* UNAVAILABLE */ || r->grpc_status == 16 /* UNAUTHENTICATED */ ||
                  r->grpc_status == 7 /* PERMISSION_DENIED */ || r->grpc_status == 8 /* RESOURCE_EXHAUSTED */;
    if (atomic_exchange(&e->failing, failing) != failing) {
        metrics_set(e->up, !failing);
        if (failing)
            log_warn("backend failing", "backend=%s http_status=%ld grpc_status=%d error=%s", e->base.name, st,
                     r->grpc_status, r->error ? r->error : "-");
        else
            log_info("backend recovered", "backend=%s", e->base.name);
    }
}

static export_outcome exporter_judge(exporter_consumer *c, const exporter_delivery *d, export_response *r,
                                     export_result *res, int *partial)
{
    exporter *e = c->e;
    const export_batch *b = &d->b;
    exporter_series *s = &e->series[b->signal];
    exporter_body(d, &r->request_body, &r->request_len);
    buf_clear(res->retry_body);
    res->retry_after_s = r->retry_after_s;
    exporter_type_lock(e);
    export_outcome o = e->type->classify(c->type_state, b, r, res);
    exporter_type_unlock(e);
    exporter_note_health(e, r);
    *partial = o == EXPORT_RETRY && res->retry_body->len > 0;
    if (res->rejected > b->items)
        res->rejected = b->items;
    if (!*partial)
        res->retry_items = 0;
    else if (res->retry_items > b->items - res->rejected)
        res->retry_items = b->items - res->rejected;
    if (res->rejected > 0) {
        char q[300];
        metrics_add(s->rejected, res->rejected);
        log_warn("export partially rejected", "backend=%s signal=%s rejected=%llu of=%llu error=%s", e->base.name,
                 otlp_signal_name(b->signal), (unsigned long long)res->rejected, (unsigned long long)b->items,
                 log_quote(q, sizeof(q), res->msg));
    }
    if (o == EXPORT_OK || *partial)
        metrics_add(s->sent, b->items - res->rejected - res->retry_items);
    return o;
}

/* What is retried is what is still owed: the rejected items are gone, and
 * after a partial result only the retry body's items remain. -1 when that
 * body cannot be encoded (given up). */
static int exporter_narrow(exporter_consumer *c, exporter_delivery *d, const export_result *res, int partial)
{
    exporter *e = c->e;
    if (!partial) {
        d->b.items -= res->rejected;
        return 0;
    }
    buf t = d->h.body; /* from now on only the items the backend asked for again */
    d->h.body = d->retry_body;
    d->h.as_is = 0;
    d->unjoined = 0;
    d->retry_body = t;
    d->b.items = res->retry_items;
    char err[256] = "";
    if (exporter_encode(c, d, err, sizeof(err)) != 0) {
        exporter_give_up(e, &d->b, e->series[d->b.signal].dropped, "prepare", 0, err);
        return -1;
    }
    return 0;
}

/* The retry policy: back off (at least as long as the backend asked) unless
 * retrying is off or would outlast retry_max_elapsed. 1: retry now; 0:
 * given up (counted); -1: shutdown came first; 2: with `park`, no wait
 * here: park->retry_at says when to try again. */
static int exporter_retry_wait(exporter_consumer *c, const export_batch *b, unsigned attempt, uint64_t first,
                               const export_response *r, const export_result *res, const char *text,
                               exporter_parked *park)
{
    exporter *e = c->e;
    exporter_series *s = &e->series[b->signal];
    uint64_t delay = exporter_backoff_ms(e->set.retry_initial_ms, e->set.retry_max_ms, e->set.retry_multiplier,
                                         e->set.retry_jitter, attempt, exporter_random(c));
    if ((uint64_t)res->retry_after_s * 1000u > delay)
        delay = (uint64_t)res->retry_after_s * 1000u;
    if (!e->set.retry_enabled) {
        exporter_give_up(e, b, s->dropped, "retry_disabled", r->http_status, text);
        return 0;
    }
    if (clock_now_ms() - first + delay > e->set.retry_max_elapsed_ms) {
        exporter_give_up(e, b, s->expired, "retries_exhausted", r->http_status, text);
        return 0;
    }
    metrics_add(s->retries, 1);
    if (attempt == 0) {
        char q[300];
        log_warn("export retrying", "backend=%s signal=%s items=%llu status=%ld delay_ms=%llu error=%s",
                 e->base.name, otlp_signal_name(b->signal), (unsigned long long)b->items, r->http_status,
                 (unsigned long long)delay, log_quote(q, sizeof(q), text));
    }
    if (park != NULL) {
        park->retry_at = clock_now_ms() + delay;
        return 2;
    }
    atomic_store(&e->retry_at_ms, clock_now_ms() + delay);
    atomic_fetch_add(&e->waiting_retry, 1);
    exporter_signal(e); /* a flush stops waiting for a backend that needs a retry */
    int stopped = exporter_sleep(e, delay);
    atomic_fetch_sub(&e->waiting_retry, 1);
    return stopped != 0 ? -1 : 1;
}

/* Send one batch whose body is ready, retrying as the policy says -- all of
 * it, or only the items the type's per-item results name. 0 once the batch
 * is done with (delivered, refused or given up, all counted); 1 when it was
 * parked (memory queue: it stays queued); -1 when shutdown interrupted it
 * (it stays queued). */

static int exporter_deliver(exporter_consumer *c, const export_batch *bp)
{
    exporter *e = c->e;
    exporter_delivery d = {
        .b = *bp,
        .h = {.url = BUF_INIT, .headers = NULL, .defaults = NULL, .body = BUF_INIT, .compress = 1, .grpc = 0},
        .retry_body = BUF_INIT,
        .unjoined = bp->body == NULL,
    };
    exporter_series *s = &e->series[d.b.signal];
    int rc = 0;
    /* Memory queue: a retry parks the tenant instead of holding up the
     * others; the batch resumes the tenant's retry count and clock. */
    int parking = e->set.queue.dir == NULL;
    if (exporter_build(c, &d) != 0)
        goto out;
    uint64_t first = clock_now_ms();
    unsigned attempt = 0;
    exporter_parked was;
    if (parking && exporter_parked_get(e, d.b.tenant, &was)) {
        if (!c->splitting && was.retry_at > clock_now_ms()) {
            /* Taken just before another batch of the tenant was told to
             * wait: it waits too, instead of going out meanwhile (a part
             * of a split entry goes on: giving it back would resend the
             * parts already delivered). */
            rc = 1;
            goto out;
        }
        first = was.first;
        attempt = was.attempt;
    }
    for (;; attempt++) {
        export_response r;
        uint64_t t0 = clock_now_ms();
        if (exporter_attempt(c, &d.h, &d, &r) != 0) {
            rc = -1; /* shutdown: left in the queue */
            goto out;
        }
        metrics_observe(s->duration, (double)(clock_now_ms() - t0) / 1000.0);
        char msg[256] = "";
        export_result res = {.retry_body = &d.retry_body, .msg = msg, .msglen = sizeof(msg)};
        int partial;
        export_outcome o = exporter_judge(c, &d, &r, &res, &partial);
        if (o == EXPORT_OK)
            break;
        const char *text = exporter_response_text(&r, msg);
        if (o == EXPORT_FAIL) {
            d.b.items -= res.rejected;
            exporter_give_up(e, &d.b, s->dropped, "rejected_by_backend", r.http_status, text);
            break;
        }
        if (exporter_narrow(c, &d, &res, partial) != 0)
            break;
        exporter_parked park = {.first = first, .attempt = attempt + 1};
        int w = exporter_retry_wait(c, &d.b, attempt, first, &r, &res, text,
                                    parking && !partial && !c->splitting ? &park : NULL);
        if (w == 2 && exporter_park(e, d.b.tenant, &park) == 0) {
            rc = 1; /* parked: stays queued */
            goto out;
        }
        if (w == 2)
            w = exporter_sleep(e, park.retry_at - clock_now_ms()) != 0 ? -1 : 1;
        if (w <= 0) {
            rc = w; /* given up (0) or shutdown (-1) */
            break;
        }
    }
out:
    if (rc != 1 && rc != -1 && parking)
        exporter_unpark(e, bp->tenant);
    curl_slist_free_all(d.h.headers);
    curl_slist_free_all(d.h.defaults);
    buf_free(&d.h.url);
    buf_free(&d.h.body);
    buf_free(&d.retry_body);
    return rc;
}

typedef struct split_ctx {
    exporter_consumer *c;
    const export_batch *whole;
} split_ctx;

static int exporter_send_part(const ProtobufCMessage *part, size_t items, void *data)
{
    split_ctx *sc = data;
    exporter_consumer *c = sc->c;
    size_t len = protobuf_c_message_get_packed_size(part);
    buf_clear(&c->body);
    if (buf_reserve(&c->body, len ? len : 1) != 0)
        return -1;
    c->body.len = protobuf_c_message_pack(part, (uint8_t *)c->body.data);
    export_batch b = *sc->whole;
    b.items = items;
    b.body = (const uint8_t *)c->body.data;
    b.body_len = c->body.len;
    return exporter_deliver(c, &b);
}

/* One queued request over the batch limits (e.g. a client sent 20,000 spans
 * and the backend takes 10,000): decode it and deliver it in parts, keeping
 * resource/scope grouping. The entry is acked once every part is done; a
 * shutdown in between resends it whole later (at-least-once). 0 when done. */
static int exporter_send_split(exporter_consumer *c, const export_batch *b)
{
    exporter *e = c->e;
    if (c->split_arena == NULL && (c->split_arena = arena_new(0)) == NULL)
        return -1;
    arena_reset(c->split_arena);
    otlp_request r;
    char err[200];
    if (otlp_decode(b->signal, OTLP_PROTOBUF, b->entries[0].data, b->entries[0].len, c->split_arena, &r, err,
                    sizeof(err)) != 0) {
        exporter_give_up(e, b, e->series[b->signal].dropped, "undecodable", 0, err);
        return 0;
    }
    split_ctx sc = {.c = c, .whole = b};
    c->splitting = 1;
    int rc = otlp_split(b->signal, r.msg, e->set.batch_items, e->set.batch_bytes, c->split_arena, exporter_send_part,
                        &sc);
    c->splitting = 0;
    return rc;
}

/* Whether a batch of several entries goes out as the entries' own bytes
 * one after another, unjoined: the type sends batches as they are
 * (sends_as_is), nothing compresses or signs them, and a partial success
 * is only counted (otlp types) -- so nothing needs the body in one piece. */
static int exporter_unjoined(const exporter_consumer *c, size_t n)
{
    const exporter *e = c->e;
    return n > 1 && n <= c->iov_cap && e->type->sends_as_is != NULL && e->type->sends_as_is(c->type_state) &&
           e->type->sign == NULL && e->set.compression == EXPORTER_COMPRESS_NONE;
}

/* Deliver n claimed entries as one request (or one oversized entry in
 * parts); ack them once done with, or give them back to the queue when
 * parked or interrupted by shutdown. One entry is sent from the queue's own
 * copy; several too, unjoined, where nothing needs them in one piece, else
 * joined into the consumer's body buffer. */
static void exporter_send(exporter_consumer *c, const queue_entry *entries, size_t n)
{
    exporter *e = c->e;
    export_batch b = {.signal = entries[0].signal, .tenant = entries[0].tenant, .entries = entries, .n_entries = n};
    for (size_t i = 0; i < n; i++)
        b.items += entries[i].items;
    int rc;
    if (n == 1 && (b.items > e->set.batch_items || entries[0].len > e->set.batch_bytes)) {
        rc = exporter_send_split(c, &b);
    } else if (n == 1) {
        b.body = entries[0].data;
        b.body_len = entries[0].len;
        rc = exporter_deliver(c, &b);
    } else if (exporter_unjoined(c, n)) {
        for (size_t i = 0; i < n; i++)
            b.body_len += entries[i].len; /* b.body NULL: the entries' bytes */
        rc = exporter_deliver(c, &b);
    } else {
        buf_clear(&c->body);
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = buf_append(&c->body, entries[i].data, entries[i].len);
        if (rc != 0) {
            log_error("export delayed", "backend=%s error=\"out of memory\"", e->base.name);
        } else {
            b.body = (const uint8_t *)c->body.data;
            b.body_len = c->body.len;
            rc = exporter_deliver(c, &b);
        }
    }
    if (rc == 0) {
        exporter_ack(e, entries, n);
        return;
    }
    queue_release(e->queue, entries, n);
    if (rc == 1)
        queue_wake(e->queue); /* a consumer waiting in a peek learns of the new retry time */
    if (rc != 1 && !atomic_load(&e->stopping))
        exporter_sleep(e, 1000); /* out of memory: the batch stays queued; try again later */
}

static void *exporter_run(void *arg)
{
    exporter_consumer *c = arg;
    while (!atomic_load(&c->e->stopping)) {
        size_t n = exporter_take(c);
        if (n > 0)
            exporter_send(c, c->entries, n);
    }
    return NULL;
}

/* ---- backend ops ---- */

static backend_status exporter_export(backend *b, const otlp_request *req, const export_payload *p, char *err,
                                      size_t errlen)
{
    exporter *e = (exporter *)b;
    if (p == NULL || p->data == NULL) {
        snprintf(err, errlen, "no encoded payload for a queued backend");
        return BACKEND_FAIL;
    }
    uint32_t items = req->items > UINT32_MAX ? UINT32_MAX : (uint32_t)req->items;
    if (queue_push(e->queue, req->signal, p->tenant != NULL ? p->tenant : "", items, p->data, p->len, err, errlen) !=
        0)
        return BACKEND_RETRY;
    metrics_gauge_add(e->queue_entries, 1);
    metrics_gauge_add(e->queue_bytes, (int64_t)p->len);
    return BACKEND_OK;
}

static int exporter_reserve(backend *b, const char *tenant, size_t bytes)
{
    return queue_reserve(((exporter *)b)->queue, tenant, bytes);
}

static void exporter_unreserve(backend *b, const char *tenant, size_t bytes)
{
    queue_unreserve(((exporter *)b)->queue, tenant, bytes);
}

static int exporter_healthy(backend *b) { return !atomic_load(&((exporter *)b)->failing); }

/* Until the next retry (rounded up), while one is pending; 1 s while failing
 * between attempts. At most EXPORTER_RETRY_AFTER_MAX_S: a client told to wait
 * longer would hold its data for longer than a recovery usually takes. */
#define EXPORTER_RETRY_AFTER_MAX_S 120
static uint32_t exporter_retry_hint(backend *b)
{
    exporter *e = (exporter *)b;
    uint64_t now = clock_now_ms(), at = atomic_load(&e->retry_at_ms);
    if (exporter_waiting(e) && at > now) {
        uint64_t s = (at - now + 999) / 1000;
        return s > EXPORTER_RETRY_AFTER_MAX_S ? EXPORTER_RETRY_AFTER_MAX_S : (uint32_t)s;
    }
    return atomic_load(&e->failing) ? 1 : 0;
}

static int exporter_ready(backend *b)
{
    (void)b; /* a replaying disk queue still takes new data behind the old */
    return 1;
}

/* Shutdown: the pipeline takes no more data; send what is queued for up to
 * EXPORTER_FLUSH_MS, stopping early once a retry is needed (a backend that is
 * down would only hold the stop up). */
static void exporter_flush(backend *b)
{
    exporter *e = (exporter *)b;
    atomic_store(&e->draining, 1);
    queue_wake(e->queue); /* cut a batch.timeout wait short */
    uint64_t deadline = clock_now_ms() + EXPORTER_FLUSH_MS;
    queue_stats st;
    for (;;) {
        queue_get_stats(e->queue, &st);
        if (st.entries == 0 || exporter_waiting(e) || clock_now_ms() >= deadline)
            break;
        struct timespec ts = clock_deadline(50); /* also re-checks without a signal */
        pthread_mutex_lock(&e->lock);
        pthread_cond_timedwait(&e->cond, &e->lock, &ts);
        pthread_mutex_unlock(&e->lock);
    }
    atomic_store(&e->draining, 0);
    if (st.entries > 0)
        log_warn("export queue not drained", "backend=%s entries=%zu bytes=%zu fate=%s", e->base.name, st.entries,
                 st.bytes, e->set.queue.dir != NULL ? "kept_on_disk_for_next_start" : "lost_with_memory_queue");
}

static void exporter_destroy(backend *b)
{
    exporter *e = (exporter *)b;
    pthread_mutex_lock(&e->lock);
    atomic_store(&e->stopping, 1);
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    if (e->queue != NULL)
        queue_wake(e->queue);
    pthread_mutex_lock(&e->h2_lock);
    if (e->h2 != NULL)
        h2_client_interrupt(e->h2); /* calls in flight return: their batches stay queued */
    pthread_mutex_unlock(&e->h2_lock);
    for (size_t i = 0; e->consumers != NULL && i < e->set.consumers; i++) {
        exporter_consumer *c = &e->consumers[i];
        if (c->multi != NULL)
            curl_multi_wakeup(c->multi);
        if (c->started) {
            queue_wake(e->queue); /* each wake ends one waiting peek */
            pthread_join(c->thread, NULL);
        }
    }
    if (e->queue != NULL) {
        queue_stats st;
        queue_get_stats(e->queue, &st);
        metrics_gauge_add(e->queue_entries, -(int64_t)st.entries);
        metrics_gauge_add(e->queue_bytes, -(int64_t)st.bytes);
        queue_close(e->queue);
    }
    h2_client_free(e->h2);
    for (size_t i = 0; e->consumers != NULL && i < e->set.consumers; i++) {
        exporter_consumer *c = &e->consumers[i];
        if (c->easy != NULL)
            curl_easy_cleanup(c->easy);
        if (c->multi != NULL)
            curl_multi_cleanup(c->multi);
        free(c->entries);
        free(c->iov);
        arena_free(c->split_arena);
        buf_free(&c->body);
        buf_free(&c->compressed);
        buf_free(&c->reply.body);
        if (c->type_state != NULL && c->type_state != e->type_state)
            e->type->destroy(c->type_state);
    }
    free(e->consumers);
    if (e->type_state != NULL)
        e->type->destroy(e->type_state);
    exporter_settings_free(&e->set);
    free(e->parked);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->h2_lock);
    pthread_mutex_destroy(&e->type_lock);
    pthread_mutex_destroy(&e->take_lock);
    pthread_mutex_destroy(&e->park_lock);
    free(e);
    curl_global_cleanup();
}

static const backend_ops exporter_ops = {
    .create = NULL,
    .export = exporter_export,
    .reserve = exporter_reserve,
    .unreserve = exporter_unreserve,
    .ready = exporter_ready,
    .healthy = exporter_healthy,
    .retry_after = exporter_retry_hint,
    .flush = exporter_flush,
    .destroy = exporter_destroy,
};

static void exporter_metrics(exporter *e)
{
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    metric_family *entries = metrics_family("otlp_gateway_export_queue_entries", METRIC_GAUGE,
                                            "Requests waiting in a backend's export queue.");
    metric_family *bytes = metrics_family("otlp_gateway_export_queue_bytes", METRIC_GAUGE,
                                          "Payload bytes waiting in a backend's export queue.");
    metric_family *sent = metrics_family("otlp_gateway_export_sent_items_total", METRIC_COUNTER,
                                         "Items (spans, metric points, log records) a backend accepted.");
    metric_family *failed = metrics_family("otlp_gateway_export_failed_items_total", METRIC_COUNTER,
                                           "Items not delivered: rejected (partial success), dropped (refused "
                                           "or not retryable), expired (retries exhausted).");
    metric_family *retries = metrics_family("otlp_gateway_export_retries_total", METRIC_COUNTER,
                                            "Export requests that were retried.");
    metric_family *duration = metrics_histogram_family("otlp_gateway_export_duration_seconds",
                                                       "Duration of one export request attempt.", bounds,
                                                       sizeof(bounds) / sizeof(bounds[0]));
    metric_family *damaged = metrics_family("otlp_gateway_export_queue_damaged_records_total", METRIC_COUNTER,
                                            "Disk queue records found damaged and skipped: kind=corrupt (failed "
                                            "magic, length or checksum; replay resumed at the next valid record), "
                                            "torn (a torn tail, cut off at start).");
    char labels[160];
    snprintf(labels, sizeof(labels), "backend=\"%s\"", e->base.name);
    e->queue_entries = metrics_series(entries, labels);
    e->queue_bytes = metrics_series(bytes, labels);
    e->up = metrics_series(metrics_family("otlp_gateway_backend_up", METRIC_GAUGE,
                                          "0 while a backend's destination is failing (no answer, 401, 403, 408, "
                                          "429 or 5xx on its last attempt), else 1; not readiness"),
                           labels);
    metrics_set(e->up, 1);
    e->connections = metrics_series(metrics_family("otlp_gateway_export_connections_total", METRIC_COUNTER,
                                                   "Connections an otlp_grpc backend opened to its receiver (one "
                                                   "is kept and shared by all requests; more mean reconnects)."),
                                    labels);
    snprintf(labels, sizeof(labels), "backend=\"%s\",kind=\"corrupt\"", e->base.name);
    e->queue_damaged[0] = metrics_series(damaged, labels);
    snprintf(labels, sizeof(labels), "backend=\"%s\",kind=\"torn\"", e->base.name);
    e->queue_damaged[1] = metrics_series(damaged, labels);
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        exporter_series *es = &e->series[s];
        const char *sig = otlp_signal_name((otlp_signal)s);
        snprintf(labels, sizeof(labels), "backend=\"%s\",signal=\"%s\"", e->base.name, sig);
        es->sent = metrics_series(sent, labels);
        es->retries = metrics_series(retries, labels);
        es->duration = metrics_series(duration, labels);
        static const char *const reasons[] = {"rejected", "dropped", "expired"};
        metric_series **out[] = {&es->rejected, &es->dropped, &es->expired};
        for (size_t r = 0; r < 3; r++) {
            snprintf(labels, sizeof(labels), "backend=\"%s\",signal=\"%s\",reason=\"%s\"", e->base.name, sig,
                     reasons[r]);
            *out[r] = metrics_series(failed, labels);
        }
    }
}

static int exporter_consumer_init(exporter *e, exporter_consumer *cs, size_t i, const backend_config *cfg,
                                  char *err, size_t errlen)
{
    cs->e = e;
    /* The first consumer uses the state configure already made. */
    cs->type_state = e->type->per_consumer && i > 0 ? e->type->configure(cfg, err, errlen) : e->type_state;
    if (cs->type_state == NULL)
        return -1;
    cs->rng = (uint64_t)clock_now_ms() ^ (uint64_t)(uintptr_t)cs ^ (0x9e3779b97f4a7c15ull * (i + 1));
    cs->iov_cap = e->set.max_entries;
    if ((cs->entries = calloc(e->set.max_entries, sizeof(*cs->entries))) == NULL ||
        (cs->iov = calloc(cs->iov_cap, sizeof(*cs->iov))) == NULL ||
        (cs->multi = curl_multi_init()) == NULL || (cs->easy = curl_easy_init()) == NULL)
        return -1;
    CURL *c = cs->easy;
    exporter_easy_defaults(c, (long)e->set.timeout_ms, cs->curl_error, &cs->reply);
    if (e->set.ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, e->set.ca_file);
    if (e->set.insecure_skip_verify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (e->set.client_cert != NULL) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, e->set.client_cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, e->set.client_key);
    }
    return 0;
}

int exporter_backend_check(const exporter_type *type, const backend_config *cfg, char *err, size_t errlen)
{
    exporter_settings set = {0};
    void *st = NULL;
    int rc = exporter_settings_read(&set, type, cfg, err, errlen) != 0 ||
                     (st = type->configure(cfg, err, errlen)) == NULL
                 ? -1
                 : 0;
    if (st != NULL)
        type->destroy(st);
    exporter_settings_free(&set);
    return rc;
}

backend *exporter_backend_create(const exporter_type *type, const backend_config *cfg, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    exporter *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT); /* paired with the cleanup in destroy */
    clock_cond_init(&e->cond);
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->h2_lock, NULL);
    pthread_mutex_init(&e->type_lock, NULL);
    pthread_mutex_init(&e->take_lock, NULL);
    pthread_mutex_init(&e->park_lock, NULL);
    e->ops = exporter_ops;
    e->ops.type = type->name;
    e->base.ops = &e->ops;
    e->base.name = cfg->name;
    e->base.needs_payload = 1;
    e->base.payload_only = 1; /* it queues the bytes; conversions decode them when sending */
    e->base.signals = type->signals;
    e->type = type;

    if (exporter_settings_read(&e->set, type, cfg, err, errlen) != 0 ||
        (e->type_state = type->configure(cfg, err, errlen)) == NULL)
        goto fail;
    int failed = (e->consumers = calloc(e->set.consumers, sizeof(*e->consumers))) == NULL;
    for (size_t i = 0; !failed && i < e->set.consumers; i++)
        failed = exporter_consumer_init(e, &e->consumers[i], i, cfg, err, errlen) != 0;
    if (failed) { /* out of memory, unless a per-consumer configure said why */
        if (err[0] == '\0')
            snprintf(err, errlen, "backend %s: out of memory", cfg->name);
        goto fail;
    }
    char qerr[256] = "";
    if ((e->queue = queue_open(&e->set.queue, cfg->name, qerr, sizeof(qerr))) == NULL) {
        config_error(cfg->node, "queue", err, errlen, "cannot open the queue: %s", qerr);
        goto fail;
    }
    exporter_metrics(e);
    queue_stats st;
    queue_get_stats(e->queue, &st);
    metrics_gauge_add(e->queue_entries, (int64_t)st.entries);
    metrics_gauge_add(e->queue_bytes, (int64_t)st.bytes);
    for (size_t i = 0; i < e->set.consumers; i++) {
        if (pthread_create(&e->consumers[i].thread, NULL, exporter_run, &e->consumers[i]) != 0) {
            snprintf(err, errlen, "backend %s: cannot start its threads", cfg->name);
            goto fail;
        }
        e->consumers[i].started = 1;
    }
    log_info("exporter backend", "name=%s type=%s consumers=%zu queue=%s recovered=%llu corrupt=%llu torn=%llu", cfg->name,
             type->name, e->set.consumers, e->set.queue.dir != NULL ? e->set.queue.dir : "memory",
             (unsigned long long)st.recovered_entries, (unsigned long long)st.corrupt_records,
             (unsigned long long)st.torn_records);
    return &e->base;
fail:
    exporter_destroy(&e->base);
    return NULL;
}
