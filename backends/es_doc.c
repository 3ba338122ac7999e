/* es_doc: OTLP -> Elasticsearch bulk NDJSON (es_doc.h has the contract).
 *
 * Documents are written straight into the output with es_json, with no
 * tree built first: rendering is the exporter's hot path. Members come in
 * the order they are set, and a key given twice keeps the place of its
 * first occurrence with the value of the last (es_doc_plan), as setting
 * the members of a JSON object one by one does. The resource and scope
 * objects are written once per scope and copied into each of its
 * documents, so a batch of spans from one service does not rewrite them
 * per span. Reals JSON cannot hold (NaN, infinities) become null in
 * attributes and drop the item where they are the value.
 *
 * Layout: attribute values and member planning; data streams (routing,
 * action lines); then traces and logs (metrics: es_metrics.c); the entry
 * points last. */
#include "es_doc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logs_service.pb-c.h"
#include "es_doc_internal.h"
#include "es_json.h"
#include "es_metrics.h"
#include "otlp_json.h"
#include "trace_service.pb-c.h"

#define ES_DOC_DEFAULT_DATASET "generic"
#define ES_DOC_DEFAULT_NAMESPACE "default"
/* The otel mapping mode's data streams carry this dataset suffix (Elastic's
 * templates match `*-*.otel-*`). */
#define ES_DOC_DATASET_SUFFIX ".otel"

/* Up to this many members, repeated keys are found by comparing every pair
 * (cheapest for the usual handful of attributes); past it by sorting, so
 * that a list of thousands costs n log n, not n^2. */
#define ES_DOC_PAIRWISE_MAX 16
/* A member of a plan that a later one with the same key replaced. */
#define ES_DOC_GONE ((size_t)-1)

/* An item left out: counted, the first reason kept. */
void es_doc_drop(es_doc_ctx *c, const char *fmt, ...)
{
    if (c->rep->dropped++ > 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->rep->reason, sizeof(c->rep->reason), fmt, ap);
    va_end(ap);
}

/* ---- attribute values ---- */

/* Room for `need` elements of `size` bytes in *v (capacity *cap). */
int es_doc_grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = need > 2 * *cap ? need : 2 * *cap;
    void *w = n <= SIZE_MAX / size ? realloc(*v, n * size) : NULL;
    if (w == NULL)
        return -1;
    *v = w;
    *cap = n;
    return 0;
}


/* Attributes that steer the exporter rather than describe the data, left
 * out of every attributes object as Elastic's exporter leaves them out: the
 * data stream (the document's data_stream object says it), the index, and
 * Elastic's mapping and ingest controls. Every attribute key is checked:
 * most fail at the first byte, before any call. */
static int es_doc_is_reserved_key(const char *k)
{
    static const char ds[] = "data_stream.", es[] = "elasticsearch.";
    if (k[0] == 'd' && strncmp(k, ds, sizeof(ds) - 1) == 0) {
        k += sizeof(ds) - 1;
        return strcmp(k, "type") == 0 || strcmp(k, "dataset") == 0 || strcmp(k, "namespace") == 0;
    }
    if (k[0] == 'e' && strncmp(k, es, sizeof(es) - 1) == 0) {
        k += sizeof(es) - 1;
        return strcmp(k, "index") == 0 || strcmp(k, "mapping.hints") == 0 || strcmp(k, "mapping.mode") == 0 ||
               strcmp(k, "document_id") == 0 || strcmp(k, "ingest_pipeline") == 0;
    }
    return 0;
}

/* Fills c->keys[0..m) with the written form of the keys kv[slot[j]]. */
int es_doc_keys(es_doc_ctx *c, es_kv **kv, const size_t *slot, size_t m)
{
    if (m > c->keys_cap) {
        es_doc_keyref *k = realloc(c->keys, m * sizeof(*k));
        if (k == NULL)
            return -1;
        c->keys = k;
        c->keys_cap = m;
    }
    buf_clear(&c->keytext);
    for (size_t j = 0; j < m; j++) {
        const char *key = kv[slot[j]]->key;
        size_t off = c->keytext.len;
        if (es_json_put_chars(&c->keytext, key, strlen(key)) != 0)
            return -1;
        c->keys[j] = (es_doc_keyref){.off = off, .len = c->keytext.len - off, .pos = j};
    }
    for (size_t j = 0; j < m; j++) /* keytext no longer moves */
        c->keys[j].s = c->keytext.data + c->keys[j].off;
    return 0;
}

int es_doc_same_key(const es_doc_keyref *a, const es_doc_keyref *b)
{
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

/* Length, then bytes, then place: equal keys side by side, first one first. */
int es_doc_key_order(const void *pa, const void *pb)
{
    const es_doc_keyref *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    int d = memcmp(a->s, b->s, a->len);
    if (d != 0)
        return d;
    return a->pos < b->pos ? -1 : 1;
}

/* slot[0..m) holds the key-values of an object in order. Each repeated key
 * is merged into its first slot, which takes the key-value of the last;
 * the others become ES_DOC_GONE. */
static int es_doc_merge_repeats(es_doc_ctx *c, es_kv **kv, size_t *slot, size_t m)
{
    if (es_doc_keys(c, kv, slot, m) != 0)
        return -1;
    const es_doc_keyref *k = c->keys;
    if (m <= ES_DOC_PAIRWISE_MAX) {
        for (size_t j = 0; j < m; j++)
            for (size_t l = j + 1; slot[j] != ES_DOC_GONE && l < m; l++)
                if (slot[l] != ES_DOC_GONE && es_doc_same_key(&k[j], &k[l])) {
                    slot[j] = slot[l];
                    slot[l] = ES_DOC_GONE;
                }
        return 0;
    }
    qsort(c->keys, m, sizeof(*c->keys), es_doc_key_order);
    for (size_t g = 0, e; g < m; g = e) {
        for (e = g + 1; e < m && es_doc_same_key(&k[g], &k[e]); e++)
            ;
        size_t last = slot[k[e - 1].pos];
        for (size_t x = g + 1; x < e; x++)
            slot[k[x].pos] = ES_DOC_GONE;
        slot[k[g].pos] = last;
    }
    return 0;
}

/* Pushes the members of an object of kv[0..n) onto c->plan and sets *count:
 * empty keys left out (Elasticsearch refuses them), and for an attributes
 * object the reserved keys too (es_doc_is_reserved_key). A
 * key given twice (as written, invalid UTF-8 fixed up) keeps the place of
 * its first occurrence and takes the value of the last, as setting the
 * members of a JSON object one by one does. */
int es_doc_plan(es_doc_ctx *c, es_kv **kv, size_t n, int attributes, size_t *count)
{
    es_doc_stack *st = &c->plan;
    *count = 0;
    if (n == 0) /* the stack may not exist yet (NULL): no pointer arithmetic on it */
        return 0;
    if (n > st->cap - st->n) {
        size_t cap = st->n + n > 2 * st->cap ? st->n + n : 2 * st->cap;
        size_t *v = cap <= SIZE_MAX / sizeof(*v) ? realloc(st->v, cap * sizeof(*v)) : NULL;
        if (v == NULL)
            return -1;
        st->v = v;
        st->cap = cap;
    }
    size_t *slot = st->v + st->n, m = 0;
    for (size_t i = 0; i < n; i++)
        if (kv[i]->key[0] != '\0' && !(attributes && es_doc_is_reserved_key(kv[i]->key)))
            slot[m++] = i;
    if (m > 1 && es_doc_merge_repeats(c, kv, slot, m) != 0)
        return -1;
    size_t w = 0;
    for (size_t j = 0; j < m; j++)
        if (slot[j] != ES_DOC_GONE)
            slot[w++] = slot[j];
    st->n += w;
    *count = w;
    return 0;
}

/* A coordinate Elastic merges into a geo point: a double attribute
 * `geo.location.lat` / `geo.location.lon`, or `<prefix>.geo.location.lat`
 * / `.lon`. Returns 'a' (latitude) or 'o' (longitude) and sets *prefix to
 * the length of the key before "geo.location." (its dot included); else 0. */
static int es_doc_geo_part(const es_kv *e, size_t *prefix)
{
    static const char tail[] = "geo.location.l"; /* then "at" or "on" */
    const size_t tail_len = sizeof(tail) - 1 + 2;
    if (e->value == NULL || e->value->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE)
        return 0;
    const char *k = e->key;
    size_t n = strlen(k);
    if (n < tail_len || memcmp(k + n - tail_len, tail, sizeof(tail) - 1) != 0 ||
        (n > tail_len && k[n - tail_len - 1] != '.'))
        return 0;
    *prefix = n - tail_len;
    return strcmp(k + n - 2, "at") == 0 ? 'a' : strcmp(k + n - 2, "on") == 0 ? 'o' : 0;
}

/* `"key":value` as the next member of an object that has `*written` so far. */
static int es_doc_put_member(es_doc_ctx *c, buf *b, size_t *written, const char *key, const es_any *v,
                             int stringify_maps)
{
    return ((*written)++ > 0 && es_json_char(b, ',') != 0) || es_json_put_cstr(b, key) != 0 ||
                   es_json_char(b, ':') != 0 || es_doc_put_value(c, b, v, stringify_maps) != 0
               ? -1
               : 0;
}

/* The geo coordinates among the members, last: each latitude and longitude
 * of one prefix as "<prefix>geo.location": [lon, lat] (a geo_point), a
 * coordinate without its partner as it was. The coordinates are sorted by
 * prefix (not compared pairwise: an attribute list may hold thousands);
 * keys are unique after es_doc_plan, so a prefix has at most one of each. */
static int es_doc_put_geo(es_doc_ctx *c, buf *b, es_kv **kv, size_t base, size_t count, size_t *written)
{
    size_t g = 0, pl;
    for (size_t i = 0; i < count; i++) {
        const es_kv *e = kv[c->plan.v[base + i]];
        if (es_doc_geo_part(e, &pl) == 0)
            continue;
        if (es_doc_grow((void **)&c->geo, &c->geo_cap, g + 1, sizeof(*c->geo)) != 0)
            return -1;
        c->geo[g++] = (es_doc_keyref){.s = e->key, .len = pl, .pos = c->plan.v[base + i]};
    }
    qsort(c->geo, g, sizeof(*c->geo), es_doc_key_order);
    for (size_t i = 0; i < g; i++) {
        const es_kv *e = kv[c->geo[i].pos];
        int part = es_doc_geo_part(e, &pl);
        if (i + 1 < g && es_doc_same_key(&c->geo[i], &c->geo[i + 1])) { /* a latitude and a longitude */
            const es_kv *mate = kv[c->geo[++i].pos];
            const es_kv *lon = part == 'o' ? e : mate, *lat = part == 'o' ? mate : e;
            if (((*written)++ > 0 && es_json_char(b, ',') != 0) || es_json_char(b, '"') != 0 ||
                es_json_put_chars(b, e->key, pl) != 0 || es_json_lit(b, "geo.location\":[") != 0 ||
                es_doc_put_value(c, b, lon->value, 0) != 0 || es_json_char(b, ',') != 0 ||
                es_doc_put_value(c, b, lat->value, 0) != 0 || es_json_char(b, ']') != 0)
                return -1;
        } else if (es_doc_put_member(c, b, written, e->key, e->value, 0) != 0) {
            return -1;
        }
    }
    return 0;
}

/* {members}: the `count` planned at c->plan.v[base]. event_name, when set,
 * is the value of "event.name", in its place or else last. With geo, the
 * coordinates es_doc_geo_part names are merged into geo points, last (what
 * Elastic's exporter does with an attributes object). */
static int es_doc_put_members(es_doc_ctx *c, buf *b, es_kv **kv, size_t base, size_t count, int stringify_maps,
                              const char *event_name, int geo)
{
    int named = 0, geo_parts = 0;
    size_t written = 0, pl;
    if (es_json_char(b, '{') != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const es_kv *e = kv[c->plan.v[base + i]]; /* re-read: nested plans may move the stack */
        if (geo && es_doc_geo_part(e, &pl) != 0) {
            geo_parts = 1;
            continue;
        }
        int is_name = event_name != NULL && strcmp(e->key, "event.name") == 0;
        named |= is_name;
        if (is_name ? ((written++ > 0 && es_json_char(b, ',') != 0) || es_json_lit(b, "\"event.name\":") != 0 ||
                       es_json_put_cstr(b, event_name) != 0)
                    : es_doc_put_member(c, b, &written, e->key, e->value, stringify_maps) != 0)
            return -1;
    }
    if (geo_parts && es_doc_put_geo(c, b, kv, base, count, &written) != 0)
        return -1;
    if (event_name != NULL && !named &&
        ((written > 0 && es_json_char(b, ',') != 0) || es_json_lit(b, "\"event.name\":") != 0 ||
         es_json_put_cstr(b, event_name) != 0))
        return -1;
    return es_json_char(b, '}');
}

/* A map value: nested maps stay objects even where the outer one is text. */
static int es_doc_put_map(es_doc_ctx *c, buf *b, const Opentelemetry__Proto__Common__V1__KeyValueList *l)
{
    es_kv **kv = l != NULL ? l->values : NULL;
    size_t base = c->plan.n, count;
    int rc = es_doc_plan(c, kv, l != NULL ? l->n_values : 0, 0, &count) != 0 ||
             es_doc_put_members(c, b, kv, base, count, 0, NULL, 0) != 0;
    c->plan.n = base;
    return rc ? -1 : 0;
}

/* A map as its JSON text: metric dimensions must be keywords, not objects.
 * Maps inside it are objects, so c->text is never in use twice. */
static int es_doc_put_map_text(es_doc_ctx *c, buf *b, const Opentelemetry__Proto__Common__V1__KeyValueList *l)
{
    buf_clear(&c->text);
    return es_doc_put_map(c, &c->text, l) || es_json_put_str(b, c->text.data, c->text.len) ? -1 : 0;
}

static int es_doc_put_array(es_doc_ctx *c, buf *b, const Opentelemetry__Proto__Common__V1__ArrayValue *av,
                            int stringify_maps)
{
    if (es_json_char(b, '[') != 0)
        return -1;
    for (size_t i = 0; av != NULL && i < av->n_values; i++)
        if ((i > 0 && es_json_char(b, ',') != 0) || es_doc_put_value(c, b, av->values[i], stringify_maps) != 0)
            return -1;
    return es_json_char(b, ']');
}

int es_doc_put_value(es_doc_ctx *c, buf *b, const es_any *v, int stringify_maps)
{
    if (v == NULL)
        return es_json_lit(b, "null");
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: return es_json_put_cstr(b, v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return es_json_lit(b, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: return es_json_put_int(b, v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return isfinite(v->double_value) ? es_json_put_real(b, v->double_value) : es_json_lit(b, "null");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: return es_json_put_hex(b, v->bytes_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        return es_doc_put_array(c, b, v->array_value, stringify_maps);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        return stringify_maps ? es_doc_put_map_text(c, b, v->kvlist_value) : es_doc_put_map(c, b, v->kvlist_value);
    default: return es_json_lit(b, "null");
    }
}

/* "attributes": {key: value}, flat, when there are any (or an event name),
 * the reserved keys left out and geo coordinates merged. event_name: see
 * es_doc_put_members. */
int es_doc_put_attributes(es_doc_ctx *c, buf *b, size_t open, es_kv **kv, size_t n, int stringify_maps,
                          const char *event_name)
{
    size_t base = c->plan.n, count;
    if (es_doc_plan(c, kv, n, 1, &count) != 0)
        return -1;
    /* Present when the list is not empty, even if every key was left out
     * (as Elastic's exporter writes it). */
    int rc = (n > 0 || event_name != NULL) &&
             (es_json_key(b, open, "attributes") != 0 ||
              es_doc_put_members(c, b, kv, base, count, stringify_maps, event_name, 1) != 0);
    c->plan.n = base;
    return rc ? -1 : 0;
}

/* ---- data streams ---- */

size_t es_doc_sanitize(const char *in, size_t n, size_t max, int keep_dash, char *out)
{
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)in[n] & 0xc0) == 0x80) /* not inside a character */
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        else if (ch != '\0' && strchr("\\/*?\"<>| ,#:", ch) != NULL)
            ch = '_';
        else if (ch == '-' && !keep_dash)
            ch = '_';
        out[i] = ch;
    }
    out[n] = '\0';
    return n;
}

/* The first non-empty string attribute `key` of the levels, in order. */
static const char *es_doc_lookup(es_kv **const *levels, const size_t *counts, size_t nlevels, const char *key)
{
    for (size_t l = 0; l < nlevels; l++)
        for (size_t i = 0; i < counts[l]; i++) {
            const es_any *v = levels[l][i]->value;
            if (levels[l][i]->key[0] == key[0] && strcmp(levels[l][i]->key, key) == 0 && v != NULL &&
                v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
                v->string_value[0] != '\0')
                return v->string_value;
        }
    return NULL;
}

/* Receiver-based routing: a scope name with `/receiver/<name>receiver` in
 * it (the import paths the collector's receivers name their scopes with,
 * e.g. .../receiver/hostmetricsreceiver/internal/scraper/cpuscraper) names
 * the dataset <name>receiver. As Elastic's exporter matches it: the first
 * "/receiver/" followed by word characters ([A-Za-z0-9_]) of which the
 * longest run ending in "receiver" is the name. */
static const char *es_doc_receiver(const char *scope_name, size_t *len)
{
    static const char mark[] = "/receiver/", tail[] = "receiver";
    for (const char *p = scope_name; (p = strstr(p, mark)) != NULL; p++) {
        const char *w = p + sizeof(mark) - 1;
        size_t run = 0;
        while ((w[run] >= 'a' && w[run] <= 'z') || (w[run] >= 'A' && w[run] <= 'Z') ||
               (w[run] >= '0' && w[run] <= '9') || w[run] == '_')
            run++;
        for (size_t k = run; k >= sizeof(tail) - 1; k--)
            if (memcmp(w + k - (sizeof(tail) - 1), tail, sizeof(tail) - 1) == 0) {
                *len = k;
                return w;
            }
    }
    return NULL;
}

/* The index or data stream of an item, in Elastic's order: an
 * elasticsearch.index attribute (the item's, else its origin's) names the
 * index outright; else data_stream.dataset / .namespace of the item, else
 * of its origin; else a receiver's scope name names the dataset; else the
 * settings. */
void es_doc_route(const es_doc_ctx *c, const es_doc_origin *o, const char *type, es_kv **a, size_t an,
                  es_doc_stream *ds)
{
    es_kv **const levels[] = {a};
    const size_t counts[] = {an};
    ds->type = type;
    ds->index = es_doc_lookup(levels, counts, 1, "elasticsearch.index");
    if (ds->index == NULL)
        ds->index = o->index;
    if (ds->index != NULL)
        return;
    const char *dataset = es_doc_lookup(levels, counts, 1, "data_stream.dataset");
    const char *ns = es_doc_lookup(levels, counts, 1, "data_stream.namespace");
    size_t dataset_len;
    if (dataset == NULL)
        dataset = o->dataset;
    if (dataset == NULL && o->receiver != NULL) {
        dataset = o->receiver; /* a part of the scope name: not terminated */
        dataset_len = o->receiver_len;
    } else {
        if (dataset == NULL)
            dataset = c->s->dataset != NULL ? c->s->dataset : ES_DOC_DEFAULT_DATASET;
        dataset_len = strlen(dataset);
    }
    if (ns == NULL)
        ns = o->namespace != NULL ? o->namespace
             : c->s->namespace != NULL ? c->s->namespace
                                       : ES_DOC_DEFAULT_NAMESPACE;
    ds->dataset_len = es_doc_sanitize(dataset, dataset_len, ES_DOC_NAME_MAX - strlen(ES_DOC_DATASET_SUFFIX), 0,
                                      ds->dataset);
    memcpy(ds->dataset + ds->dataset_len, ES_DOC_DATASET_SUFFIX, sizeof(ES_DOC_DATASET_SUFFIX));
    ds->dataset_len += strlen(ES_DOC_DATASET_SUFFIX);
    ds->namespace_len = es_doc_sanitize(ns, strlen(ns), ES_DOC_NAME_MAX, 1, ds->namespace);
}

/* The index name of ds into out (ES_DOC_INDEX_MAX bytes); its length. */
size_t es_doc_index_name(const es_doc_stream *ds, char *out)
{
    char *w = out;
    size_t type_len = strlen(ds->type);
    memcpy(w, ds->type, type_len);
    w += type_len;
    *w++ = '-';
    memcpy(w, ds->dataset, ds->dataset_len);
    w += ds->dataset_len;
    *w++ = '-';
    memcpy(w, ds->namespace, ds->namespace_len);
    w += ds->namespace_len;
    return (size_t)(w - out);
}

/* {"create":{"_index":..., "dynamic_templates":{...}}} and a newline;
 * templates (the members, "metrics.<name>":"<template>", ...) for a metric
 * document, else NULL. */
int es_doc_put_action(buf *b, const es_doc_stream *ds, const buf *templates)
{
    char index[ES_DOC_INDEX_MAX];
    if (es_json_lit(b, "{\"create\":{\"_index\":") != 0 ||
        (ds->index != NULL ? es_json_put_cstr(b, ds->index)
                           : es_json_put_str(b, index, es_doc_index_name(ds, index))) != 0)
        return -1;
    if (templates != NULL &&
        (es_json_lit(b, ",\"dynamic_templates\":{") != 0 || es_json_bytes(b, templates->data, templates->len) != 0 ||
         es_json_char(b, '}') != 0))
        return -1;
    return es_json_lit(b, "}}\n");
}

/* The start of a document, {"@timestamp":...,"data_stream":{...}, left
 * open; *open is where its members start. The time as RFC 3339 with
 * nanoseconds, or for a metric document as epoch milliseconds (a number:
 * the metrics templates map @timestamp as a date in milliseconds). An
 * index named outright has no data_stream object. */
int es_doc_put_head(buf *b, const es_doc_stream *ds, uint64_t ts, int millis, size_t *open)
{
    *open = b->len + 1;
    if (es_json_lit(b, "{\"@timestamp\":") ||
        (millis ? es_json_put_uint(b, ts / 1000000u) : es_json_put_time(b, ts)))
        return -1;
    if (ds->index != NULL)
        return 0;
    if (es_json_lit(b, ",\"data_stream\":{\"type\":") || es_json_put_cstr(b, ds->type) ||
        es_json_lit(b, ",\"dataset\":") || es_json_put_str(b, ds->dataset, ds->dataset_len) ||
        es_json_lit(b, ",\"namespace\":") || es_json_put_str(b, ds->namespace, ds->namespace_len) ||
        es_json_char(b, '}'))
        return -1;
    return 0;
}

/* Records the document written to c->out since off, or takes it back and
 * fails the render when writing it ran out of memory (rc != 0). */
void es_doc_emit(es_doc_ctx *c, size_t off, int rc)
{
    if (rc != 0 || es_doc_table_push(c->t, (es_doc_entry){.off = off, .len = c->out->len - off,
                                                          .items = c->next_items, .first = c->next_first}) != 0) {
        c->failed = 1;
        c->out->len = off;
        return;
    }
    c->next_items = 0; /* the group's other documents (span events) stand for no item */
    c->next_first = 0;
}

/* The next document starts the group of one item. */
static void es_doc_item(es_doc_ctx *c)
{
    c->next_items = 1;
    c->next_first = 1;
}

static int es_doc_put_resource(es_doc_ctx *c, buf *b, const es_resource *r, const char *schema_url,
                               int stringify_maps)
{
    size_t open = b->len + 1;
    if (es_json_char(b, '{') || es_json_put_text(b, open, "schema_url", schema_url) ||
        (r != NULL &&
         (es_doc_put_attributes(c, b, open, r->attributes, r->n_attributes, stringify_maps, NULL) ||
          es_json_put_count(b, open, "dropped_attributes_count", r->dropped_attributes_count))) ||
        es_json_char(b, '}'))
        return -1;
    return 0;
}

static int es_doc_put_scope(es_doc_ctx *c, buf *b, const es_scope *s, const char *schema_url, int stringify_maps)
{
    size_t open = b->len + 1;
    if (es_json_char(b, '{') || es_json_put_text(b, open, "schema_url", schema_url) ||
        (s != NULL &&
         (es_json_put_text(b, open, "name", s->name) || es_json_put_text(b, open, "version", s->version) ||
          es_doc_put_attributes(c, b, open, s->attributes, s->n_attributes, stringify_maps, NULL) ||
          es_json_put_count(b, open, "dropped_attributes_count", s->dropped_attributes_count))) ||
        es_json_char(b, '}'))
        return -1;
    return 0;
}

/* Sets up o, and its text in c->origin, for the items of one scope of one
 * resource. The text is added to what c->origin holds (metrics keep every
 * origin of a request until their documents are written), unless fresh. */
void es_doc_origin_init(es_doc_ctx *c, es_doc_origin *o, const es_resource *r, const char *res_schema,
                        const es_scope *s, const char *scope_schema, int stringify_maps, int fresh)
{
    es_kv **const levels[] = {s != NULL ? s->attributes : NULL, r != NULL ? r->attributes : NULL};
    const size_t counts[] = {s != NULL ? s->n_attributes : 0, r != NULL ? r->n_attributes : 0};
    o->dataset = es_doc_lookup(levels, counts, 2, "data_stream.dataset");
    o->namespace = es_doc_lookup(levels, counts, 2, "data_stream.namespace");
    o->index = es_doc_lookup(levels, counts, 2, "elasticsearch.index");
    o->receiver = s != NULL ? es_doc_receiver(s->name, &o->receiver_len) : NULL;
    buf *b = &c->origin;
    if (fresh)
        buf_clear(b);
    o->text_off = b->len;
    if (es_json_lit(b, ",\"resource\":") != 0 || es_doc_put_resource(c, b, r, res_schema, stringify_maps) != 0 ||
        es_json_lit(b, ",\"scope\":") != 0 || es_doc_put_scope(c, b, s, scope_schema, stringify_maps) != 0)
        c->failed = 1;
    o->text_len = b->len - o->text_off;
}

int es_doc_put_origin(const es_doc_ctx *c, const es_doc_origin *o, buf *b)
{
    return es_json_bytes(b, c->origin.data + o->text_off, o->text_len);
}

/* ---- traces ---- */

/* Elastic's names for span kinds and status codes. */
static const char *es_doc_kind(int kind)
{
    static const char *const names[] = {"Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"};
    return kind >= 0 && kind < 6 ? names[kind] : names[0];
}

static const char *es_doc_status_code(int code)
{
    static const char *const names[] = {"Unset", "Ok", "Error"};
    return code >= 0 && code < 3 ? names[code] : names[0];
}

static int es_doc_put_status(buf *b, const Opentelemetry__Proto__Trace__V1__Status *st)
{
    size_t open = b->len + 1;
    if (es_json_char(b, '{') || es_json_put_text(b, open, "message", st != NULL ? st->message : NULL) ||
        es_json_key(b, open, "code") ||
        es_json_put_cstr(b, es_doc_status_code(st != NULL ? (int)st->code : 0)) || es_json_char(b, '}'))
        return -1;
    return 0;
}

static int es_doc_put_link(es_doc_ctx *c, buf *b, const Opentelemetry__Proto__Trace__V1__Span__Link *l)
{
    size_t open = b->len + 1;
    if (es_json_char(b, '{') || es_json_put_id(b, open, "trace_id", l->trace_id) ||
        es_json_put_id(b, open, "span_id", l->span_id) ||
        es_json_put_text(b, open, "trace_state", l->trace_state) ||
        es_doc_put_attributes(c, b, open, l->attributes, l->n_attributes, 0, NULL) ||
        es_json_put_count(b, open, "dropped_attributes_count", l->dropped_attributes_count) ||
        es_json_char(b, '}'))
        return -1;
    return 0;
}

static int es_doc_put_links(es_doc_ctx *c, buf *b, const Opentelemetry__Proto__Trace__V1__Span *sp)
{
    if (es_json_char(b, '[') != 0)
        return -1;
    for (size_t i = 0; i < sp->n_links; i++)
        if ((i > 0 && es_json_char(b, ',') != 0) || es_doc_put_link(c, b, sp->links[i]) != 0)
            return -1;
    return es_json_char(b, ']');
}

static int es_doc_put_span(es_doc_ctx *c, const es_doc_origin *o, const es_doc_stream *ds,
                           const Opentelemetry__Proto__Trace__V1__Span *sp)
{
    buf *b = c->out;
    size_t open;
    uint64_t d = sp->end_time_unix_nano > sp->start_time_unix_nano ? sp->end_time_unix_nano - sp->start_time_unix_nano
                                                                     : 0;
    if (es_doc_put_action(b, ds, NULL) || es_doc_put_head(b, ds, sp->start_time_unix_nano, 0, &open) ||
        es_json_put_id(b, open, "trace_id", sp->trace_id) ||
        es_json_put_id(b, open, "span_id", sp->span_id) ||
        es_json_put_text(b, open, "trace_state", sp->trace_state) ||
        es_json_put_id(b, open, "parent_span_id", sp->parent_span_id) ||
        es_json_put_text(b, open, "name", sp->name) || es_json_key(b, open, "kind") ||
        es_json_put_cstr(b, es_doc_kind(sp->kind)) || es_json_key(b, open, "duration") ||
        es_json_put_uint(b, d) ||
        es_doc_put_attributes(c, b, open, sp->attributes, sp->n_attributes, 0, NULL) ||
        es_json_put_count(b, open, "dropped_attributes_count", sp->dropped_attributes_count) ||
        es_json_put_count(b, open, "dropped_events_count", sp->dropped_events_count) ||
        es_json_key(b, open, "links") || es_doc_put_links(c, b, sp) ||
        es_json_put_count(b, open, "dropped_links_count", sp->dropped_links_count) ||
        es_json_key(b, open, "status") || es_doc_put_status(b, sp->status) || es_doc_put_origin(c, o, b) ||
        es_json_lit(b, "}\n"))
        return -1;
    return 0;
}

/* A span event as a log document. As Elastic does, its name is also the
 * attribute event.name. */
static int es_doc_put_span_event(es_doc_ctx *c, const es_doc_origin *o, const es_doc_stream *ds,
                                 const Opentelemetry__Proto__Trace__V1__Span *sp,
                                 const Opentelemetry__Proto__Trace__V1__Span__Event *ev)
{
    buf *b = c->out;
    size_t open;
    if (es_doc_put_action(b, ds, NULL) || es_doc_put_head(b, ds, ev->time_unix_nano, 0, &open) ||
        es_json_put_id(b, open, "trace_id", sp->trace_id) ||
        es_json_put_id(b, open, "span_id", sp->span_id) ||
        es_json_put_count(b, open, "dropped_attributes_count", ev->dropped_attributes_count) ||
        es_json_put_text(b, open, "event_name", ev->name) ||
        es_doc_put_attributes(c, b, open, ev->attributes, ev->n_attributes, 0, ev->name[0] != '\0' ? ev->name : NULL) ||
        es_doc_put_origin(c, o, b) || es_json_lit(b, "}\n"))
        return -1;
    return 0;
}

static void es_doc_span(es_doc_ctx *c, const es_doc_origin *o, const Opentelemetry__Proto__Trace__V1__Span *sp)
{
    es_doc_stream ds;
    es_doc_item(c);
    es_doc_route(c, o, "traces", sp->attributes, sp->n_attributes, &ds);
    size_t off = c->out->len;
    es_doc_emit(c, off, es_doc_put_span(c, o, &ds, sp));
    for (size_t i = 0; i < sp->n_events && !c->failed; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *ev = sp->events[i];
        /* as Elastic routes it: the event's attributes, then the origin's (not
         * the span's) */
        es_doc_route(c, o, "logs", ev->attributes, ev->n_attributes, &ds);
        off = c->out->len;
        es_doc_emit(c, off, es_doc_put_span_event(c, o, &ds, sp, ev));
    }
}

static void es_doc_traces(es_doc_ctx *c, const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_spans && !c->failed; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans && !c->failed; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            es_doc_origin o;
            es_doc_origin_init(c, &o, rs->resource, rs->schema_url, ss->scope, ss->schema_url, 0, 1);
            for (size_t k = 0; k < ss->n_spans && !c->failed; k++)
                es_doc_span(c, &o, ss->spans[k]);
        }
    }
}

/* ---- logs ---- */

static const char *es_doc_event_name(const Opentelemetry__Proto__Logs__V1__LogRecord *lr)
{
    if (lr->event_name[0] != '\0')
        return lr->event_name;
    es_kv **const levels[] = {lr->attributes};
    const size_t counts[] = {lr->n_attributes};
    return es_doc_lookup(levels, counts, 1, "event.name");
}

/* Whether a structured body is what Elasticsearch's flattened field takes
 * as is: an object, or an array of objects. */
static int es_doc_body_is_objects(const es_any *body)
{
    if (body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE)
        return 1;
    if (body->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE)
        return 0;
    const Opentelemetry__Proto__Common__V1__ArrayValue *av = body->array_value;
    for (size_t i = 0; av != NULL && i < av->n_values; i++)
        if (av->values[i] == NULL ||
            av->values[i]->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE)
            return 0;
    return 1;
}

/* As Elastic's exporter writes a body: a map, or an array of maps, as
 * body.structured; any other array as body.structured.value (the flattened
 * field takes objects only); a scalar (string, number, bool, bytes as hex)
 * as body.text, the value keeping its JSON type. */
static int es_doc_put_body(es_doc_ctx *c, buf *b, size_t open, const es_any *body)
{
    if (body == NULL || body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)
        return 0;
    if (es_json_key(b, open, "body") != 0)
        return -1;
    if (body->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE &&
        body->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE)
        return es_json_lit(b, "{\"text\":") || es_doc_put_value(c, b, body, 0) || es_json_char(b, '}') ? -1 : 0;
    int wrap = !es_doc_body_is_objects(body);
    if (es_json_lit(b, wrap ? "{\"structured\":{\"value\":" : "{\"structured\":") ||
        es_doc_put_value(c, b, body, 0) || es_json_lit(b, wrap ? "}}" : "}"))
        return -1;
    return 0;
}

static int es_doc_put_log(es_doc_ctx *c, const es_doc_origin *o, const es_doc_stream *ds,
                          const Opentelemetry__Proto__Logs__V1__LogRecord *lr)
{
    buf *b = c->out;
    size_t open;
    uint64_t observed = lr->observed_time_unix_nano;
    if (es_doc_put_action(b, ds, NULL) ||
        es_doc_put_head(b, ds, lr->time_unix_nano != 0 ? lr->time_unix_nano : observed, 0, &open) ||
        /* always, as Elastic writes it (1970-01-01 when the record has none) */
        es_json_key(b, open, "observed_timestamp") || es_json_put_time(b, observed) ||
        es_json_put_text(b, open, "severity_text", lr->severity_text) ||
        es_json_put_count(b, open, "severity_number", lr->severity_number > 0 ? (uint64_t)lr->severity_number : 0) ||
        es_json_put_id(b, open, "trace_id", lr->trace_id) ||
        es_json_put_id(b, open, "span_id", lr->span_id) ||
        es_doc_put_attributes(c, b, open, lr->attributes, lr->n_attributes, 0, NULL) ||
        es_json_put_count(b, open, "dropped_attributes_count", lr->dropped_attributes_count) ||
        es_json_put_text(b, open, "event_name", es_doc_event_name(lr)) || es_doc_put_origin(c, o, b) ||
        es_doc_put_body(c, b, open, lr->body) || es_json_lit(b, "}\n"))
        return -1;
    return 0;
}

static void es_doc_logs(es_doc_ctx *c, const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_logs && !c->failed; i++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs && !c->failed; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            es_doc_origin o;
            es_doc_origin_init(c, &o, rl->resource, rl->schema_url, sl->scope, sl->schema_url, 0, 1);
            for (size_t k = 0; k < sl->n_log_records && !c->failed; k++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                es_doc_stream ds;
                es_doc_item(c);
                es_doc_route(c, &o, "logs", lr->attributes, lr->n_attributes, &ds);
                size_t off = c->out->len;
                es_doc_emit(c, off, es_doc_put_log(c, &o, &ds, lr));
            }
        }
    }
}

/* ---- entry points ---- */

static void es_doc_scratch_free(es_doc_ctx *c)
{
    buf_free(&c->origin);
    buf_free(&c->value);
    buf_free(&c->values);
    buf_free(&c->text);
    buf_free(&c->keytext);
    buf_free(&c->gkeys);
    buf_free(&c->okeys);
    buf_free(&c->mvals);
    buf_free(&c->mtmpl);
    free(c->plan.v);
    free(c->keys);
    free(c->order);
    free(c->geo);
    free(c->origins);
    free(c->pts);
    free(c->names);
    free(c->dup);
}

int es_doc_render(const es_doc_settings *s, otlp_signal sig, const ProtobufCMessage *msg, buf *out, es_doc_table *t,
                  es_doc_report *rep)
{
    es_doc_ctx c = {.s = s, .out = out, .t = t, .rep = rep};
    memset(rep, 0, sizeof(*rep));
    if (sig == OTLP_TRACES)
        es_doc_traces(&c, (const void *)msg);
    else if (sig == OTLP_LOGS)
        es_doc_logs(&c, (const void *)msg);
    else
        es_doc_metrics(&c, (const void *)msg);
    es_doc_scratch_free(&c);
    return c.failed ? -1 : 0;
}

int es_doc_table_push(es_doc_table *t, es_doc_entry e)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        es_doc_entry *v = realloc(t->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = e;
    return 0;
}

void es_doc_table_free(es_doc_table *t)
{
    free(t->v);
    *t = (es_doc_table){0};
}
