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
 * action lines); then traces, logs and metrics; the entry points last. */
#include "es_doc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "hash.h"
#include "es_json.h"
#include "otlp_json.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue es_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue es_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope es_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource es_resource;

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

/* Members of the objects being written, innermost last: for each, the
 * index of the key-value it takes its key and value from (es_doc_plan). */
typedef struct es_doc_stack {
    size_t *v;
    size_t n, cap;
} es_doc_stack;

/* One key of a list being planned, as it will be written (escaped, so
 * keys that differ only in invalid UTF-8 compare equal, as they would
 * once written). */
typedef struct es_doc_keyref {
    const char *s; /* in es_doc_ctx.keytext, at off, once all are written */
    size_t off, len;
    size_t pos; /* its place among the list's members */
} es_doc_keyref;

typedef struct es_doc_ctx {
    const es_doc_settings *s;
    buf *out;
    es_doc_table *t;
    es_doc_report *rep;
    int failed;          /* out of memory: the render stops with -1 */
    uint32_t next_items; /* the item weight the group's next document carries */
    uint8_t next_first;  /* the next document starts a group */
    /* Scratch, reused across the render and freed at its end. */
    buf origin;          /* ,"resource":{...},"scope":{...} of the current scope */
    buf value, values;   /* a metric point's value; a histogram's values while its counts go to `value` */
    buf text;            /* a map written as JSON text (metric dimensions are keywords) */
    es_doc_stack plan;
    es_doc_keyref *keys; /* the keys of the list being planned, and their text */
    size_t keys_cap;
    buf keytext;
} es_doc_ctx;

/* Where an item comes from: the data stream names its scope or resource
 * give (else the settings'); its resource and scope text is in ctx.origin. */
typedef struct es_doc_origin {
    const char *dataset, *namespace;
} es_doc_origin;

typedef struct es_doc_stream {
    const char *type; /* traces | logs | metrics */
    char dataset[ES_DOC_NAME_MAX + 1];
    char namespace[ES_DOC_NAME_MAX + 1];
    size_t dataset_len, namespace_len;
} es_doc_stream;

/* An item left out: counted, the first reason kept. */
static void es_doc_drop(es_doc_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void es_doc_drop(es_doc_ctx *c, const char *fmt, ...)
{
    if (c->rep->dropped++ > 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->rep->reason, sizeof(c->rep->reason), fmt, ap);
    va_end(ap);
}

/* ---- attribute values ---- */

/* Every attribute key is checked: most fail at the first byte, before any call. */
static int es_doc_is_routing_key(const char *k)
{
    static const char prefix[] = "data_stream.";
    if (k[0] != prefix[0] || strncmp(k, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    k += sizeof(prefix) - 1;
    return strcmp(k, "type") == 0 || strcmp(k, "dataset") == 0 || strcmp(k, "namespace") == 0;
}

/* Fills c->keys[0..m) with the written form of the keys kv[slot[j]]. */
static int es_doc_keys(es_doc_ctx *c, es_kv **kv, const size_t *slot, size_t m)
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

static int es_doc_same_key(const es_doc_keyref *a, const es_doc_keyref *b)
{
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

/* Length, then bytes, then place: equal keys side by side, first one first. */
static int es_doc_key_order(const void *pa, const void *pb)
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
 * empty keys left out (Elasticsearch refuses them), and for an item's
 * attributes the routing keys too (the data_stream object says them). A
 * key given twice (as written, invalid UTF-8 fixed up) keeps the place of
 * its first occurrence and takes the value of the last, as setting the
 * members of a JSON object one by one does. */
static int es_doc_plan(es_doc_ctx *c, es_kv **kv, size_t n, int attributes, size_t *count)
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
        if (kv[i]->key[0] != '\0' && !(attributes && es_doc_is_routing_key(kv[i]->key)))
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

static int es_doc_put_value(es_doc_ctx *c, buf *b, const es_any *v, int stringify_maps);

/* {members}: the `count` planned at c->plan.v[base]. event_name, when set,
 * is the value of "event.name", in its place or else last. */
static int es_doc_put_members(es_doc_ctx *c, buf *b, es_kv **kv, size_t base, size_t count, int stringify_maps,
                              const char *event_name)
{
    int named = 0;
    if (es_json_char(b, '{') != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const es_kv *e = kv[c->plan.v[base + i]]; /* re-read: nested plans may move the stack */
        int is_name = event_name != NULL && strcmp(e->key, "event.name") == 0;
        named |= is_name;
        if ((i > 0 && es_json_char(b, ',') != 0) || es_json_put_cstr(b, e->key) != 0 || es_json_char(b, ':') != 0 ||
            (is_name ? es_json_put_cstr(b, event_name) : es_doc_put_value(c, b, e->value, stringify_maps)) != 0)
            return -1;
    }
    if (event_name != NULL && !named &&
        ((count > 0 && es_json_char(b, ',') != 0) || es_json_lit(b, "\"event.name\":") != 0 ||
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
             es_doc_put_members(c, b, kv, base, count, 0, NULL) != 0;
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

static int es_doc_put_value(es_doc_ctx *c, buf *b, const es_any *v, int stringify_maps)
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
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: return es_json_put_base64(b, v->bytes_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        return es_doc_put_array(c, b, v->array_value, stringify_maps);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        return stringify_maps ? es_doc_put_map_text(c, b, v->kvlist_value) : es_doc_put_map(c, b, v->kvlist_value);
    default: return es_json_lit(b, "null");
    }
}

/* "attributes": {key: value}, flat, when there are any (or an event name).
 * The routing attributes are left out: the document's data_stream object
 * says them. event_name: see es_doc_put_members. */
static int es_doc_put_attributes(es_doc_ctx *c, buf *b, size_t open, es_kv **kv, size_t n, int stringify_maps,
                                 const char *event_name)
{
    size_t base = c->plan.n, count;
    if (es_doc_plan(c, kv, n, 1, &count) != 0)
        return -1;
    int rc = (count > 0 || event_name != NULL) &&
             (es_json_key(b, open, "attributes") != 0 ||
              es_doc_put_members(c, b, kv, base, count, stringify_maps, event_name) != 0);
    c->plan.n = base;
    return rc ? -1 : 0;
}

/* ---- data streams ---- */

size_t es_doc_sanitize(const char *in, size_t max, char *out)
{
    size_t n = strlen(in);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)in[n] & 0xc0) == 0x80) /* not inside a character */
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        else if (strchr("\\/*?\"<>| ,#:-", ch) != NULL)
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

/* The data stream of an item: its own attributes (a and, for a span event,
 * its span's b), else what its origin says. */
static void es_doc_route(const es_doc_origin *o, const char *type, es_kv **a, size_t an, es_kv **b, size_t bn,
                         es_doc_stream *ds)
{
    es_kv **const levels[] = {a, b};
    const size_t counts[] = {an, bn};
    const char *dataset = es_doc_lookup(levels, counts, 2, "data_stream.dataset");
    const char *ns = es_doc_lookup(levels, counts, 2, "data_stream.namespace");
    ds->type = type;
    ds->dataset_len = es_doc_sanitize(dataset != NULL ? dataset : o->dataset,
                                      ES_DOC_NAME_MAX - strlen(ES_DOC_DATASET_SUFFIX), ds->dataset);
    memcpy(ds->dataset + ds->dataset_len, ES_DOC_DATASET_SUFFIX, sizeof(ES_DOC_DATASET_SUFFIX));
    ds->dataset_len += strlen(ES_DOC_DATASET_SUFFIX);
    ds->namespace_len = es_doc_sanitize(ns != NULL ? ns : o->namespace, ES_DOC_NAME_MAX, ds->namespace);
}

/* {"create":{"_index":..., "dynamic_templates":{"metrics.<metric>": template}}}
 * and a newline; the templates only for a metric. */
static int es_doc_put_action(buf *b, const es_doc_stream *ds, const char *metric, const char *template)
{
    char index[8 + 2 * (ES_DOC_NAME_MAX + 1)], *w = index;
    size_t type_len = strlen(ds->type);
    memcpy(w, ds->type, type_len);
    w += type_len;
    *w++ = '-';
    memcpy(w, ds->dataset, ds->dataset_len);
    w += ds->dataset_len;
    *w++ = '-';
    memcpy(w, ds->namespace, ds->namespace_len);
    w += ds->namespace_len;
    if (es_json_lit(b, "{\"create\":{\"_index\":") != 0 || es_json_put_str(b, index, (size_t)(w - index)) != 0)
        return -1;
    if (metric != NULL &&
        (es_json_lit(b, ",\"dynamic_templates\":{\"metrics.") != 0 ||
         es_json_put_chars(b, metric, strlen(metric)) != 0 || es_json_lit(b, "\":") != 0 ||
         es_json_put_cstr(b, template) != 0 || es_json_char(b, '}') != 0))
        return -1;
    return es_json_lit(b, "}}\n");
}

/* The start of a document, {"@timestamp":...,"data_stream":{...}, left
 * open; *open is where its members start. */
static int es_doc_put_head(buf *b, const es_doc_stream *ds, uint64_t ts, size_t *open)
{
    *open = b->len + 1;
    if (es_json_lit(b, "{\"@timestamp\":") || es_json_put_time(b, ts) ||
        es_json_lit(b, ",\"data_stream\":{\"type\":") || es_json_put_cstr(b, ds->type) ||
        es_json_lit(b, ",\"dataset\":") || es_json_put_str(b, ds->dataset, ds->dataset_len) ||
        es_json_lit(b, ",\"namespace\":") || es_json_put_str(b, ds->namespace, ds->namespace_len) ||
        es_json_char(b, '}'))
        return -1;
    return 0;
}

/* Records the document written to c->out since off, or takes it back and
 * fails the render when writing it ran out of memory (rc != 0). */
static void es_doc_emit(es_doc_ctx *c, size_t off, int rc)
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

/* Sets up o and c->origin for the items of one scope of one resource. */
static void es_doc_origin_init(es_doc_ctx *c, es_doc_origin *o, const es_resource *r, const char *res_schema,
                               const es_scope *s, const char *scope_schema, int stringify_maps)
{
    es_kv **const levels[] = {s != NULL ? s->attributes : NULL, r != NULL ? r->attributes : NULL};
    const size_t counts[] = {s != NULL ? s->n_attributes : 0, r != NULL ? r->n_attributes : 0};
    o->dataset = es_doc_lookup(levels, counts, 2, "data_stream.dataset");
    o->namespace = es_doc_lookup(levels, counts, 2, "data_stream.namespace");
    if (o->dataset == NULL)
        o->dataset = c->s->dataset != NULL ? c->s->dataset : ES_DOC_DEFAULT_DATASET;
    if (o->namespace == NULL)
        o->namespace = c->s->namespace != NULL ? c->s->namespace : ES_DOC_DEFAULT_NAMESPACE;
    buf *b = &c->origin;
    buf_clear(b);
    if (es_json_lit(b, ",\"resource\":") != 0 || es_doc_put_resource(c, b, r, res_schema, stringify_maps) != 0 ||
        es_json_lit(b, ",\"scope\":") != 0 || es_doc_put_scope(c, b, s, scope_schema, stringify_maps) != 0)
        c->failed = 1;
}

static int es_doc_put_origin(const es_doc_ctx *c, buf *b) { return es_json_bytes(b, c->origin.data, c->origin.len); }

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

static int es_doc_put_span(es_doc_ctx *c, const es_doc_stream *ds, const Opentelemetry__Proto__Trace__V1__Span *sp)
{
    buf *b = c->out;
    size_t open;
    uint64_t d = sp->end_time_unix_nano > sp->start_time_unix_nano ? sp->end_time_unix_nano - sp->start_time_unix_nano
                                                                     : 0;
    if (es_doc_put_action(b, ds, NULL, NULL) || es_doc_put_head(b, ds, sp->start_time_unix_nano, &open) ||
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
        es_json_key(b, open, "status") || es_doc_put_status(b, sp->status) || es_doc_put_origin(c, b) ||
        es_json_lit(b, "}\n"))
        return -1;
    return 0;
}

/* A span event as a log document. As Elastic does, its name is also the
 * attribute event.name. */
static int es_doc_put_span_event(es_doc_ctx *c, const es_doc_stream *ds,
                                 const Opentelemetry__Proto__Trace__V1__Span *sp,
                                 const Opentelemetry__Proto__Trace__V1__Span__Event *ev)
{
    buf *b = c->out;
    size_t open;
    if (es_doc_put_action(b, ds, NULL, NULL) || es_doc_put_head(b, ds, ev->time_unix_nano, &open) ||
        es_json_put_id(b, open, "trace_id", sp->trace_id) ||
        es_json_put_id(b, open, "span_id", sp->span_id) ||
        es_json_put_count(b, open, "dropped_attributes_count", ev->dropped_attributes_count) ||
        es_json_put_text(b, open, "event_name", ev->name) ||
        es_doc_put_attributes(c, b, open, ev->attributes, ev->n_attributes, 0, ev->name[0] != '\0' ? ev->name : NULL) ||
        es_doc_put_origin(c, b) || es_json_lit(b, "}\n"))
        return -1;
    return 0;
}

static void es_doc_span(es_doc_ctx *c, const es_doc_origin *o, const Opentelemetry__Proto__Trace__V1__Span *sp)
{
    es_doc_stream ds;
    es_doc_item(c);
    es_doc_route(o, "traces", sp->attributes, sp->n_attributes, NULL, 0, &ds);
    size_t off = c->out->len;
    es_doc_emit(c, off, es_doc_put_span(c, &ds, sp));
    for (size_t i = 0; i < sp->n_events && !c->failed; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *ev = sp->events[i];
        es_doc_route(o, "logs", ev->attributes, ev->n_attributes, sp->attributes, sp->n_attributes, &ds);
        off = c->out->len;
        es_doc_emit(c, off, es_doc_put_span_event(c, &ds, sp, ev));
    }
}

static void es_doc_traces(es_doc_ctx *c, const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_spans && !c->failed; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans && !c->failed; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            es_doc_origin o;
            es_doc_origin_init(c, &o, rs->resource, rs->schema_url, ss->scope, ss->schema_url, 0);
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

/* body.text for a string; body.structured for the rest, which must be an
 * object (or an array of objects), so anything else is wrapped as
 * {"value": ...}. */
static int es_doc_put_body(es_doc_ctx *c, buf *b, size_t open, const es_any *body)
{
    if (body == NULL || body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)
        return 0;
    if (es_json_key(b, open, "body") != 0)
        return -1;
    if (body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
        return es_json_lit(b, "{\"text\":") || es_json_put_cstr(b, body->string_value) || es_json_char(b, '}') ? -1 : 0;
    int wrap = !es_doc_body_is_objects(body);
    if (es_json_lit(b, wrap ? "{\"structured\":{\"value\":" : "{\"structured\":") ||
        es_doc_put_value(c, b, body, 0) || es_json_lit(b, wrap ? "}}" : "}"))
        return -1;
    return 0;
}

static int es_doc_put_log(es_doc_ctx *c, const es_doc_stream *ds, const Opentelemetry__Proto__Logs__V1__LogRecord *lr)
{
    buf *b = c->out;
    size_t open;
    uint64_t observed = lr->observed_time_unix_nano;
    if (es_doc_put_action(b, ds, NULL, NULL) ||
        es_doc_put_head(b, ds, lr->time_unix_nano != 0 ? lr->time_unix_nano : observed, &open) ||
        (observed != 0 && (es_json_key(b, open, "observed_timestamp") || es_json_put_time(b, observed))) ||
        es_json_put_text(b, open, "severity_text", lr->severity_text) ||
        es_json_put_count(b, open, "severity_number", lr->severity_number > 0 ? (uint64_t)lr->severity_number : 0) ||
        es_json_put_id(b, open, "trace_id", lr->trace_id) ||
        es_json_put_id(b, open, "span_id", lr->span_id) ||
        es_doc_put_attributes(c, b, open, lr->attributes, lr->n_attributes, 0, NULL) ||
        es_json_put_count(b, open, "dropped_attributes_count", lr->dropped_attributes_count) ||
        es_json_put_text(b, open, "event_name", es_doc_event_name(lr)) || es_doc_put_origin(c, b) ||
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
            es_doc_origin_init(c, &o, rl->resource, rl->schema_url, sl->scope, sl->schema_url, 0);
            for (size_t k = 0; k < sl->n_log_records && !c->failed; k++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                es_doc_stream ds;
                es_doc_item(c);
                es_doc_route(&o, "logs", lr->attributes, lr->n_attributes, NULL, 0, &ds);
                size_t off = c->out->len;
                es_doc_emit(c, off, es_doc_put_log(c, &ds, lr));
            }
        }
    }
}

/* ---- metrics ---- */

/* What one data point contributes: its dimensions, times and value (the
 * value's JSON in ctx.value). */
typedef struct es_doc_point {
    es_kv **attrs;
    size_t n_attrs;
    uint64_t start, time;
    const char *template; /* Elastic's dynamic template for the field */
    const char *why;      /* set: the point is left out because of this */
} es_doc_point;

#define ES_DOC_POINT(dp) \
    ((es_doc_point){.attrs = (dp)->attributes, .n_attrs = (dp)->n_attributes, \
                    .start = (dp)->start_time_unix_nano, .time = (dp)->time_unix_nano})

static int es_doc_number(es_doc_ctx *c, es_doc_point *p, const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp,
                         int counter)
{
    *p = ES_DOC_POINT(dp);
    buf_clear(&c->value);
    if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
        p->template = counter ? "counter_long" : "gauge_long";
        return es_json_put_int(&c->value, dp->as_int);
    }
    if (dp->value_case != OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
        p->why = "number data point without a value";
        return 0;
    }
    if (!isfinite(dp->as_double)) {
        p->why = "value is not a finite number";
        return 0;
    }
    p->template = counter ? "counter_double" : "gauge_double";
    return es_json_put_real(&c->value, dp->as_double);
}

/* An Elasticsearch histogram field value, {"counts":[...],"values":[...]},
 * the values finite and strictly increasing. The counts are written to
 * ctx.value, the values to ctx.values until es_doc_hist_finish joins them. */
typedef struct es_doc_hist {
    buf *counts, *values;
    size_t n;
    double last;
    int bad; /* a value broke the rule */
} es_doc_hist;

static int es_doc_hist_start(es_doc_ctx *c, es_doc_hist *h)
{
    *h = (es_doc_hist){.counts = &c->value, .values = &c->values};
    buf_clear(h->counts);
    buf_clear(h->values);
    return es_json_lit(h->counts, "{\"counts\":[");
}

static int es_doc_bucket(es_doc_hist *h, uint64_t count, double value)
{
    if (count == 0 || h->bad)
        return 0;
    if (!isfinite(value) || (h->n > 0 && !(value > h->last))) {
        h->bad = 1;
        return 0;
    }
    h->last = value;
    if (h->n++ > 0 && (es_json_char(h->counts, ',') != 0 || es_json_char(h->values, ',') != 0))
        return -1;
    return es_json_put_uint(h->counts, count) || es_json_put_real(h->values, value) ? -1 : 0;
}

/* The histogram's value, or p->why set when it broke the rule. */
static int es_doc_hist_finish(es_doc_hist *h, es_doc_point *p, const char *why)
{
    if (h->bad) {
        p->why = why;
        return 0;
    }
    if (es_json_lit(h->counts, "],\"values\":[") || es_json_bytes(h->counts, h->values->data, h->values->len) ||
        es_json_lit(h->counts, "]}"))
        return -1;
    return 0;
}

/* Explicit buckets as Elastic maps them: each non-empty bucket at its
 * midpoint; the first (-inf, b0] at b0/2 when b0 > 0, else at b0; the last
 * (bn, +inf) at bn. Without bounds: one bucket at the mean. */
static int es_doc_histogram(es_doc_ctx *c, es_doc_point *p,
                            const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    p->template = "histogram";
    size_t nb = dp->n_explicit_bounds;
    const double *b = dp->explicit_bounds;
    if (dp->n_bucket_counts > 0 && dp->n_bucket_counts != nb + 1) {
        p->why = "histogram bucket_counts do not match explicit_bounds";
        return 0;
    }
    es_doc_hist h;
    int rc = es_doc_hist_start(c, &h);
    if (nb == 0 && rc == 0)
        rc = es_doc_bucket(&h, dp->count, (dp->_sum_case ? dp->sum : 0) / (double)(dp->count ? dp->count : 1));
    for (size_t i = 0; nb > 0 && i < dp->n_bucket_counts && rc == 0; i++) {
        double at = i == 0 ? (b[0] > 0 ? b[0] / 2 : b[0]) : i == nb ? b[nb - 1] : b[i - 1] + (b[i] - b[i - 1]) / 2;
        rc = es_doc_bucket(&h, dp->bucket_counts[i], at);
    }
    if (rc != 0)
        return -1;
    return es_doc_hist_finish(&h, p, "histogram bounds are not finite and increasing");
}

/* Lower boundary of exponential bucket `index` at `scale`: base^index with
 * base = 2^(2^-scale) (the OpenTelemetry data model's definition). */
static double es_doc_exp_lower(int64_t index, int32_t scale)
{
    if (scale > 0)
        return exp((double)index * ldexp(M_LN2, -scale));
    int64_t e = index * ((int64_t)1 << -scale);
    return ldexp(1.0, e > 2000 ? 2000 : e < -2000 ? -2000 : (int)e); /* beyond is 0 or inf anyway */
}

/* An exponential histogram as explicit buckets at their midpoints (the
 * negative buckets from the largest magnitude down, the zero bucket at 0,
 * the positive buckets), as Elastic's exporter maps it by default. */
static int es_doc_exp_histogram(es_doc_ctx *c, es_doc_point *p,
                                const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    p->template = "histogram";
    if (dp->scale < -10 || dp->scale > 20) {
        p->why = "exponential histogram scale out of range (-10..20)";
        return 0;
    }
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *neg = dp->negative,
                                                                                     *pos = dp->positive;
    es_doc_hist h;
    int rc = es_doc_hist_start(c, &h);
    for (size_t i = neg != NULL ? neg->n_bucket_counts : 0; i-- > 0 && rc == 0;) {
        double inner = es_doc_exp_lower((int64_t)neg->offset + (int64_t)i, dp->scale);
        double outer = es_doc_exp_lower((int64_t)neg->offset + (int64_t)i + 1, dp->scale);
        rc = es_doc_bucket(&h, neg->bucket_counts[i], -(inner + (outer - inner) / 2));
    }
    if (rc == 0)
        rc = es_doc_bucket(&h, dp->zero_count, 0.0);
    for (size_t i = 0; pos != NULL && i < pos->n_bucket_counts && rc == 0; i++) {
        double lower = es_doc_exp_lower((int64_t)pos->offset + (int64_t)i, dp->scale);
        double upper = es_doc_exp_lower((int64_t)pos->offset + (int64_t)i + 1, dp->scale);
        rc = es_doc_bucket(&h, pos->bucket_counts[i], lower + (upper - lower) / 2);
    }
    if (rc != 0)
        return -1;
    return es_doc_hist_finish(&h, p, "exponential histogram buckets do not convert to finite increasing values");
}

/* Summaries as Elastic maps them: sum and count (quantiles are not kept). */
static int es_doc_summary(es_doc_ctx *c, es_doc_point *p, const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    p->template = "summary";
    if (!isfinite(dp->sum)) {
        p->why = "summary sum is not a finite number";
        return 0;
    }
    buf_clear(&c->value);
    if (es_json_lit(&c->value, "{\"sum\":") || es_json_put_real(&c->value, dp->sum) ||
        es_json_lit(&c->value, ",\"value_count\":") || es_json_put_uint(&c->value, dp->count) ||
        es_json_char(&c->value, '}'))
        return -1;
    return 0;
}

/* Each document holds one metric; metric data streams are time series whose
 * identity is the dimensions plus _metric_names_hash, so two metrics with the
 * same dimensions and timestamp stay two documents instead of colliding.
 * Any stable hash of the names does; this is 64-bit FNV-1a, in hex. */
static int es_doc_put_names_hash(buf *b, const char *name)
{
    uint64_t h = hash_fnv1a(name, strlen(name), HASH_FNV1A_INIT);
    char tmp[20];
    char *s = tmp + sizeof(tmp);
    *--s = '"';
    do {
        *--s = es_json_hex[h & 15];
        h >>= 4;
    } while (h != 0);
    *--s = '"';
    return es_json_bytes(b, s, (size_t)(tmp + sizeof(tmp) - s));
}

static int es_doc_put_point(es_doc_ctx *c, const es_doc_stream *ds,
                            const Opentelemetry__Proto__Metrics__V1__Metric *m, const es_doc_point *p)
{
    buf *b = c->out;
    size_t open;
    if (es_doc_put_action(b, ds, m->name, p->template) || es_doc_put_head(b, ds, p->time, &open) ||
        (p->start != 0 && (es_json_key(b, open, "start_timestamp") || es_json_put_time(b, p->start))) ||
        es_json_put_text(b, open, "unit", m->unit) ||
        es_doc_put_attributes(c, b, open, p->attrs, p->n_attrs, 1, NULL) || es_doc_put_origin(c, b) ||
        es_json_key(b, open, "metrics") || es_json_char(b, '{') || es_json_put_cstr(b, m->name) ||
        es_json_char(b, ':') || es_json_bytes(b, c->value.data, c->value.len) || es_json_char(b, '}') ||
        es_json_key(b, open, "_metric_names_hash") || es_doc_put_names_hash(b, m->name) ||
        es_json_lit(b, "}\n"))
        return -1;
    return 0;
}

/* The document of one data point whose value was made with result rc, or
 * the point counted as left out. */
static void es_doc_metric_point(es_doc_ctx *c, const es_doc_origin *o,
                                const Opentelemetry__Proto__Metrics__V1__Metric *m, const es_doc_point *p, int rc)
{
    es_doc_item(c);
    if (rc != 0) {
        c->failed = 1;
        return;
    }
    if (p->why != NULL) {
        es_doc_drop(c, "metric \"%s\": %s", m->name, p->why);
        return;
    }
    es_doc_stream ds;
    es_doc_route(o, "metrics", p->attrs, p->n_attrs, NULL, 0, &ds);
    size_t off = c->out->len;
    es_doc_emit(c, off, es_doc_put_point(c, &ds, m, p));
}

static void es_doc_metric(es_doc_ctx *c, const es_doc_origin *o, const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    es_doc_point p;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        for (size_t i = 0; i < m->gauge->n_data_points && !c->failed; i++)
            es_doc_metric_point(c, o, m, &p, es_doc_number(c, &p, m->gauge->data_points[i], 0));
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        /* Elastic's counter templates: monotonic cumulative sums only. */
        int cumulative =
            m->sum->aggregation_temporality ==
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        int counter = m->sum->is_monotonic && cumulative;
        for (size_t i = 0; i < m->sum->n_data_points && !c->failed; i++)
            es_doc_metric_point(c, o, m, &p, es_doc_number(c, &p, m->sum->data_points[i], counter));
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        for (size_t i = 0; i < m->histogram->n_data_points && !c->failed; i++)
            es_doc_metric_point(c, o, m, &p, es_doc_histogram(c, &p, m->histogram->data_points[i]));
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        for (size_t i = 0; i < m->exponential_histogram->n_data_points && !c->failed; i++)
            es_doc_metric_point(c, o, m, &p, es_doc_exp_histogram(c, &p, m->exponential_histogram->data_points[i]));
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        for (size_t i = 0; i < m->summary->n_data_points && !c->failed; i++)
            es_doc_metric_point(c, o, m, &p, es_doc_summary(c, &p, m->summary->data_points[i]));
        break;
    default: break; /* no data: otlp_validate keeps no such metric */
    }
}

static void es_doc_metrics(es_doc_ctx *c,
                           const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_metrics && !c->failed; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics && !c->failed; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            es_doc_origin o;
            /* Metric dimensions are keywords: map-valued attributes as JSON text. */
            es_doc_origin_init(c, &o, rm->resource, rm->schema_url, sm->scope, sm->schema_url, 1);
            for (size_t k = 0; k < sm->n_metrics && !c->failed; k++)
                es_doc_metric(c, &o, sm->metrics[k]);
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
    free(c->plan.v);
    free(c->keys);
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
