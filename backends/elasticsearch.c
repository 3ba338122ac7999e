/* elasticsearch: the `elasticsearch` exporter type. Each batch becomes one
 * _bulk request of `create` actions into the otel-mode data streams
 * (es_doc.h renders it); the reply is read per item (es_bulk.h), so that only
 * the documents Elasticsearch asked for again (429) are resent, and documents
 * it refused for good (mapping errors, 409 conflicts ...) are counted and
 * logged without holding up the rest.
 *
 * Per-item retries: the type keeps the table of the documents in the body
 * the next classify answers for (offsets and item weights); the exporter
 * hands classify that body (export_response.request_body), from which the
 * retry body is cut.
 *
 * Authentication: `api_key` (Authorization: ApiKey), or `user` + `password`
 * (Basic), or neither; a tenant's own Authorization header replaces it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "es_bulk.h"
#include "es_doc.h"
#include "exporter.h"

#define ES_URL_MAX 2048
/* require_data_stream: every document goes to a data stream, so a cluster
 * without the OpenTelemetry index templates refuses the documents (each
 * item an error naming the missing template) rather than creating plain
 * indices with guessed mappings (Elasticsearch 8.13 and later know the
 * parameter). filter_path: only what classify reads, which keeps a reply
 * for thousands of documents within the exporter's 64 KiB response limit
 * ({"create":{"status":201}} per item). */
#define ES_BULK_PATH \
    "/_bulk?require_data_stream=true&filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason"

typedef struct es_state {
    char url[ES_URL_MAX];
    char *auth;              /* "Authorization: ..." line, a secret; NULL: none */
    es_doc_settings doc;     /* strings owned by the config */
    arena *arena;            /* the batch prepare decodes */
    es_doc_table docs;       /* documents of the body the next classify answers for */
    es_doc_report render;    /* items prepare left out, reported by the next classify */
    uint8_t *outcomes;       /* per document of docs */
    size_t outcomes_cap;
    es_doc_table retry_docs;
} es_state;

/* ---- configuration ---- */

static void es_destroy(void *st)
{
    es_state *s = st;
    if (s->auth != NULL) {
        OPENSSL_cleanse(s->auth, strlen(s->auth));
        free(s->auth);
    }
    arena_free(s->arena);
    es_doc_table_free(&s->docs);
    es_doc_table_free(&s->retry_docs);
    free(s->outcomes);
    free(s);
}

/* A credential: non-empty and fit for a header line. Values may be secrets,
 * so messages never quote them. */
static int es_check_secret(const backend_config *cfg, const char *key, const char *v, char *err, size_t errlen)
{
    if (v == NULL)
        return 0;
    if (v[0] == '\0')
        return config_error(cfg->node, key, err, errlen, "expected a non-empty string");
    if (strpbrk(v, "\r\n") != NULL)
        return config_error(cfg->node, key, err, errlen, "contains a line break");
    return 0;
}

/* Exactly one way to authenticate: api_key, user + password, or a header
 * under `headers:` (or none at all). */
static int es_check_auth(const backend_config *cfg, const char *api_key, const char *user, const char *password,
                         char *err, size_t errlen)
{
    if (es_check_secret(cfg, "api_key", api_key, err, errlen) != 0 ||
        es_check_secret(cfg, "user", user, err, errlen) != 0 ||
        es_check_secret(cfg, "password", password, err, errlen) != 0)
        return -1;
    if (api_key != NULL && (user != NULL || password != NULL))
        return config_error(cfg->node, "api_key", err, errlen, "use either api_key or user and password, not both");
    if ((user == NULL) != (password == NULL))
        return config_error(cfg->node, user != NULL ? "user" : "password", err, errlen,
                            "user and password go together");
    if (user != NULL && strchr(user, ':') != NULL)
        return config_error(cfg->node, "user", err, errlen, "must not contain ':' (HTTP Basic authentication)");
    const config_node *h = config_get(cfg->node, "headers");
    for (size_t i = 0; (api_key != NULL || user != NULL) && config_is_map(h) && i < config_map_len(h); i++)
        if (strcasecmp(config_map_key(h, i), "authorization") == 0)
            return config_error(h, config_map_key(h, i), err, errlen,
                                "conflicts with %s: configure one way to authenticate",
                                api_key != NULL ? "api_key" : "user and password");
    return 0;
}

/* The Authorization line for the configured credentials; NULL (and *oom
 * unset) when there are none. */
static char *es_auth_line(const char *api_key, const char *user, const char *password, int *oom)
{
    char *line = NULL;
    if (api_key != NULL) {
        size_t n = strlen(api_key) + sizeof("Authorization: ApiKey ");
        if ((line = malloc(n)) != NULL)
            snprintf(line, n, "Authorization: ApiKey %s", api_key);
    } else if (user != NULL) {
        static const char prefix[] = "Authorization: Basic ";
        size_t ulen = strlen(user), plen = strlen(password), plain_len = ulen + 1 + plen;
        char *plain = malloc(plain_len);
        size_t n = sizeof(prefix) + 4 * ((plain_len + 2) / 3);
        if (plain != NULL && plain_len <= INT32_MAX && (line = malloc(n)) != NULL) {
            memcpy(plain, user, ulen);
            plain[ulen] = ':';
            memcpy(plain + ulen + 1, password, plen);
            memcpy(line, prefix, sizeof(prefix) - 1);
            EVP_EncodeBlock((unsigned char *)line + sizeof(prefix) - 1, (const unsigned char *)plain, (int)plain_len);
        }
        if (plain != NULL) {
            OPENSSL_cleanse(plain, plain_len);
            free(plain);
        }
    } else {
        return NULL;
    }
    *oom = line == NULL;
    return line;
}

/* dataset / namespace: sanitized when used, but must name something. */
static int es_check_name(const backend_config *cfg, const char *key, const char *v, char *err, size_t errlen)
{
    if (v != NULL && v[0] == '\0')
        return config_error(cfg->node, key, err, errlen, "expected a non-empty string");
    return 0;
}

static void *es_configure(const backend_config *cfg, char *err, size_t errlen)
{
    const char *endpoint, *api_key, *user, *password, *dataset, *ns;
    if (config_str_required(cfg->node, "endpoint", &endpoint, err, errlen) != 0 ||
        config_str(cfg->node, "api_key", NULL, &api_key, err, errlen) != 0 ||
        config_str(cfg->node, "user", NULL, &user, err, errlen) != 0 ||
        config_str(cfg->node, "password", NULL, &password, err, errlen) != 0 ||
        config_str(cfg->node, "dataset", NULL, &dataset, err, errlen) != 0 ||
        config_str(cfg->node, "namespace", NULL, &ns, err, errlen) != 0 ||
        es_check_auth(cfg, api_key, user, password, err, errlen) != 0 ||
        es_check_name(cfg, "dataset", dataset, err, errlen) != 0 ||
        es_check_name(cfg, "namespace", ns, err, errlen) != 0)
        return NULL;
    es_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (exporter_url(s->url, sizeof(s->url), endpoint, ES_BULK_PATH) != 0) {
        es_destroy(s);
        config_error(cfg->node, "endpoint", err, errlen, "URL too long");
        return NULL;
    }
    int oom = 0;
    s->auth = es_auth_line(api_key, user, password, &oom);
    s->doc = (es_doc_settings){.dataset = dataset, .namespace = ns};
    if (oom || (s->arena = arena_new(0)) == NULL) {
        es_destroy(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return s;
}

/* ---- requests ---- */

static int es_add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL)
        return -1;
    *list = l;
    return 0;
}

static int es_prepare(void *st, const export_batch *b, export_http *out, char *err, size_t errlen)
{
    es_state *s = st;
    otlp_request req;
    s->docs.n = 0;
    arena_reset(s->arena);
    if (buf_puts(&out->url, s->url) != 0 || es_add_header(&out->headers, "Content-Type: application/x-ndjson") != 0 ||
        (s->auth != NULL && es_add_header(&out->defaults, s->auth) != 0)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (otlp_decode(b->signal, OTLP_PROTOBUF, b->body, b->body_len, s->arena, &req, err, errlen) != 0)
        return -1;
    if (es_doc_render(&s->doc, b->signal, req.msg, &out->body, &s->docs, &s->render) != 0) {
        snprintf(err, errlen, "out of memory rendering the bulk request");
        return -1;
    }
    if (s->docs.n == 0) { /* an empty _bulk is an error in Elasticsearch */
        snprintf(err, errlen, "no document to send: %s", s->render.dropped ? s->render.reason : "no items");
        s->render.dropped = 0;
        return -1;
    }
    return 0;
}

/* ---- replies ---- */

static void es_msg_add(export_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void es_msg_add(export_result *res, const char *fmt, ...)
{
    size_t used = strlen(res->msg);
    if (used > 0 && used + 2 < res->msglen) {
        memcpy(res->msg + used, "; ", 3);
        used += 2;
    }
    if (used + 1 >= res->msglen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->msg + used, res->msglen - used, fmt, ap);
    va_end(ap);
}

/* The documents of one item: docs [i, end). */
static size_t es_group_end(const es_doc_table *t, size_t i)
{
    size_t end = i + 1;
    while (end < t->n && !t->v[end].first)
        end++;
    return end;
}

/* An item is refused when any of its documents is (a span whose event did
 * not go in is not whole); else retried when any of them is to be sent
 * again. Its weight is its item count. */
static void es_group_outcome(const es_state *s, size_t i, size_t end, uint32_t *weight, int *refused, int *again)
{
    *weight = 0;
    *refused = *again = 0;
    for (size_t j = i; j < end; j++) {
        *weight += s->docs.v[j].items;
        *refused |= s->outcomes[j] == ES_BULK_REJECT;
        *again |= s->outcomes[j] == ES_BULK_RETRY;
    }
}

/* The documents to send again, into out, and their table into
 * s->retry_docs: per item, its retried documents, the first carrying the
 * item's weight unless the item was refused (then it counts as rejected). */
static int es_build_retry(es_state *s, const export_response *r, buf *out)
{
    const uint8_t *src = r->request_body;
    const es_doc_table *t = &s->docs;
    int rc = t->n > 0 && t->v[t->n - 1].off + t->v[t->n - 1].len > r->request_len ? -1 : 0;
    s->retry_docs.n = 0;
    for (size_t i = 0, end; rc == 0 && i < s->docs.n; i = end) {
        end = es_group_end(&s->docs, i);
        uint32_t weight;
        int refused, again, first = 1;
        es_group_outcome(s, i, end, &weight, &refused, &again);
        for (size_t j = i; rc == 0 && j < end; j++) {
            if (s->outcomes[j] != ES_BULK_RETRY)
                continue;
            const es_doc_entry *e = &s->docs.v[j];
            es_doc_entry r = {.off = out->len, .len = e->len, .items = first && !refused ? weight : 0,
                              .first = (uint8_t)first};
            if (buf_append(out, src + e->off, e->len) != 0 || es_doc_table_push(&s->retry_docs, r) != 0)
                rc = -1;
            first = 0;
        }
    }
    return rc;
}

/* A 2xx reply: per-item outcomes. */
static export_outcome es_classify_items(es_state *s, const export_response *r, export_result *res)
{
    size_t n = s->docs.n;
    if (n > s->outcomes_cap) {
        uint8_t *o = realloc(s->outcomes, n);
        if (o == NULL) {
            es_msg_add(res, "out of memory reading the bulk response");
            return EXPORT_RETRY;
        }
        s->outcomes = o;
        s->outcomes_cap = n;
    }
    es_bulk_summary sum;
    char err[160];
    if (es_bulk_parse(r->body, r->body_len, n, s->outcomes, &sum, err, sizeof(err)) != 0) {
        es_msg_add(res, "HTTP %ld with an unusable bulk response: %s", r->http_status, err);
        return EXPORT_FAIL;
    }
    uint64_t rejected = 0, retry_items = 0;
    for (size_t i = 0, end; i < n; i = end) {
        end = es_group_end(&s->docs, i);
        uint32_t weight;
        int refused, again;
        es_group_outcome(s, i, end, &weight, &refused, &again);
        rejected += refused ? weight : 0;
        retry_items += !refused && again ? weight : 0;
    }
    if (sum.retry > 0 && es_build_retry(s, r, res->retry_body) != 0) {
        buf_clear(res->retry_body); /* the whole request again (at least once), judged again then */
        es_msg_add(res, "out of memory building the partial retry");
        return EXPORT_RETRY;
    }
    res->rejected += rejected;
    if (sum.reject > 0)
        es_msg_add(res, "%zu of %zu documents refused (%zu of them 409 conflicts: a document with the same "
                        "identity exists), first: %s",
                   sum.reject, n, sum.conflicts, sum.reason);
    if (sum.retry == 0)
        return EXPORT_OK;
    es_msg_add(res, "%zu of %zu documents to send again: %s", sum.retry, n, sum.retry_reason);
    es_doc_table t = s->docs; /* the next classify answers for the retry body */
    s->docs = s->retry_docs;
    s->retry_docs = t;
    res->retry_items = retry_items;
    return EXPORT_RETRY;
}

static export_outcome es_classify(void *st, const export_batch *b, const export_response *r, export_result *res)
{
    es_state *s = st;
    (void)b; /* the answer indexes r->request_body, which s->docs describes */
    if (s->render.dropped > 0) { /* once per request */
        res->rejected += s->render.dropped;
        es_msg_add(res, "%llu items not representable: %s", (unsigned long long)s->render.dropped,
                   s->render.reason);
        s->render.dropped = 0;
    }
    if (r->http_status == 0) {
        es_msg_add(res, "%s", r->error != NULL ? r->error : "transport error");
        return EXPORT_RETRY;
    }
    if (r->http_status >= 200 && r->http_status < 300)
        return es_classify_items(s, r, res);
    char reason[200];
    es_bulk_error_reason(r->body, r->body_len, reason, sizeof(reason));
    if (r->http_status == 413) {
        es_msg_add(res, "HTTP 413: request larger than Elasticsearch's http.max_content_length "
                        "(lower batch.max_bytes or batch.max_items)");
        return EXPORT_FAIL;
    }
    es_msg_add(res, "HTTP %ld%s%s", r->http_status, reason[0] ? ": " : "", reason);
    /* Overload and gateway answers retry the whole request: nothing was
     * written, or (behind a proxy) it may have been, which sending again
     * at worst duplicates or turns into 409s. */
    long code = r->http_status;
    return code == 429 || code == 502 || code == 503 || code == 504 ? EXPORT_RETRY : EXPORT_FAIL;
}

static const char *const es_keys[] = {"api_key", "user", "password", "dataset", "namespace", NULL};

const exporter_type exporter_elasticsearch = {.name = "elasticsearch",
                                              .keys = es_keys,
                                              .gzip_only = 1, /* Elasticsearch decodes gzip bodies only */
                                              .per_consumer = 1, /* the batch's documents, from prepare to classify */
                                              .configure = es_configure,
                                              .prepare = es_prepare,
                                              .classify = es_classify,
                                              .destroy = es_destroy};
