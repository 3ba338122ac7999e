/* es_doc: OTLP -> Elasticsearch bulk NDJSON (es_doc.h has the contract).
 *
 * Documents are built as jansson values and dumped compactly (jansson keeps
 * insertion order, so the bytes are the same every time). The resource and
 * scope objects are built once per scope and shared by its documents
 * (reference counted), so a batch of spans from one service does not
 * rebuild them per span. Strings are made valid UTF-8 first (each
 * invalid byte becomes U+FFFD): protobuf does not guarantee it and a JSON
 * document must have it. Reals jansson cannot write (NaN, infinities)
 * become null in attributes and drop the item where they are the value. */
#include "es_doc.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "hash.h"
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

typedef struct es_doc_ctx {
    const es_doc_settings *s;
    buf *out;
    es_doc_table *t;
    es_doc_report *rep;
    int failed;           /* out of memory: the render stops with -1 */
    uint32_t next_items;  /* the item weight the group's next document carries */
    uint8_t next_first;   /* the next document starts a group */
} es_doc_ctx;

/* Where an item comes from: the shared resource and scope objects and the
 * attributes the data stream routing looks at. */
typedef struct es_doc_origin {
    json_t *resource, *scope;
    es_kv **res_kv, **scope_kv;
    size_t res_n, scope_n;
} es_doc_origin;

typedef struct es_doc_stream {
    const char *type; /* traces | logs | metrics */
    char dataset[ES_DOC_NAME_MAX + 1];
    char namespace[ES_DOC_NAME_MAX + 1];
} es_doc_stream;

/* ---- small values ---- */

static void es_doc_set(es_doc_ctx *c, json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, v) != 0) /* steals v, even on failure */
        c->failed = 1;
}

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

static int es_doc_utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = otlp_json_utf8_seq(p + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

/* A copy of s with each byte of invalid UTF-8 replaced by U+FFFD; malloc'd. */
static char *es_doc_utf8_fix(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), o = 0;
    char *out = malloc(n * 3 + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t l = otlp_json_utf8_seq(p + i, n - i);
        if (l == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, p + i, l);
            o += l;
            i += l;
        }
    }
    out[o] = '\0';
    return out;
}

static json_t *es_doc_str(const char *s)
{
    if (es_doc_utf8_ok(s))
        return json_string_nocheck(s);
    char *fixed = es_doc_utf8_fix(s);
    json_t *v = fixed != NULL ? json_string_nocheck(fixed) : NULL;
    free(fixed);
    return v;
}

/* obj[key] = v for a key from the data (attribute keys, metric names). */
static void es_doc_set_key(es_doc_ctx *c, json_t *obj, const char *key, json_t *v)
{
    if (es_doc_utf8_ok(key)) {
        if (json_object_set_new_nocheck(obj, key, v) != 0)
            c->failed = 1;
        return;
    }
    char *fixed = es_doc_utf8_fix(key);
    if (fixed == NULL || json_object_set_new_nocheck(obj, fixed, v) != 0) {
        if (fixed == NULL)
            json_decref(v);
        c->failed = 1;
    }
    free(fixed);
}

static void es_doc_set_str(es_doc_ctx *c, json_t *obj, const char *key, const char *s)
{
    if (s != NULL && s[0] != '\0')
        es_doc_set(c, obj, key, es_doc_str(s));
}

static void es_doc_set_count(es_doc_ctx *c, json_t *obj, const char *key, uint64_t n)
{
    if (n != 0)
        es_doc_set(c, obj, key, json_integer(n > INT64_MAX ? INT64_MAX : (json_int_t)n));
}

/* RFC 3339 with nanoseconds, UTC: what date_nanos keeps exactly. */
static json_t *es_doc_time(uint64_t ns)
{
    time_t sec = (time_t)(ns / 1000000000u);
    struct tm tm;
    char s[64];
    if (gmtime_r(&sec, &tm) == NULL)
        return NULL;
    snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02d.%09uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ns % 1000000000u));
    return json_string_nocheck(s);
}

/* Trace and span ids in lower-case hex; an empty or all-zero id is absent. */
static void es_doc_set_id(es_doc_ctx *c, json_t *obj, const char *key, ProtobufCBinaryData id)
{
    static const char digits[] = "0123456789abcdef";
    char s[2 * 32 + 1];
    int zero = 1;
    size_t n = id.len < 32 ? id.len : 32;
    for (size_t i = 0; i < n; i++) {
        zero &= id.data[i] == 0;
        s[2 * i] = digits[id.data[i] >> 4];
        s[2 * i + 1] = digits[id.data[i] & 15];
    }
    s[2 * n] = '\0';
    if (!zero)
        es_doc_set(c, obj, key, json_string_nocheck(s));
}

static json_t *es_doc_base64(ProtobufCBinaryData b)
{
    if (b.len > (size_t)INT32_MAX / 2)
        return NULL;
    unsigned char *s = malloc(4 * ((b.len + 2) / 3) + 1);
    if (s == NULL)
        return NULL;
    EVP_EncodeBlock(s, b.data, (int)b.len);
    json_t *v = json_string_nocheck((const char *)s);
    free(s);
    return v;
}

/* ---- attribute values ---- */

static json_t *es_doc_value(es_doc_ctx *c, const es_any *v, int stringify_maps);

static json_t *es_doc_kvlist(es_doc_ctx *c, es_kv **kv, size_t n, int stringify_maps)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n && o != NULL; i++)
        if (kv[i]->key[0] != '\0') /* Elasticsearch refuses empty field names */
            es_doc_set_key(c, o, kv[i]->key, es_doc_value(c, kv[i]->value, stringify_maps));
    return o;
}

/* A map as its JSON text: metric dimensions must be keywords, not objects. */
static json_t *es_doc_stringified(json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    json_t *v = text != NULL ? json_string_nocheck(text) : NULL;
    free(text);
    return v;
}

static json_t *es_doc_value(es_doc_ctx *c, const es_any *v, int stringify_maps)
{
    if (v == NULL)
        return json_null();
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: return es_doc_str(v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE: return json_boolean(v->bool_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: return json_integer(v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return isfinite(v->double_value) ? json_real(v->double_value) : json_null();
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: return es_doc_base64(v->bytes_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        json_t *a = json_array();
        const Opentelemetry__Proto__Common__V1__ArrayValue *av = v->array_value;
        for (size_t i = 0; av != NULL && i < av->n_values && a != NULL; i++)
            if (json_array_append_new(a, es_doc_value(c, av->values[i], stringify_maps)) != 0)
                c->failed = 1;
        return a;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const Opentelemetry__Proto__Common__V1__KeyValueList *l = v->kvlist_value;
        json_t *o = es_doc_kvlist(c, l != NULL ? l->values : NULL, l != NULL ? l->n_values : 0, 0);
        return stringify_maps ? es_doc_stringified(o) : o;
    }
    default: return json_null();
    }
}

static int es_doc_is_routing_key(const char *k)
{
    return strcmp(k, "data_stream.type") == 0 || strcmp(k, "data_stream.dataset") == 0 ||
           strcmp(k, "data_stream.namespace") == 0;
}

/* obj.attributes = {key: value}, flat, when there are any. The routing
 * attributes are left out: the document's data_stream object says it. */
static void es_doc_set_attributes(es_doc_ctx *c, json_t *obj, es_kv **kv, size_t n, int stringify_maps)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n && o != NULL; i++)
        if (kv[i]->key[0] != '\0' && !es_doc_is_routing_key(kv[i]->key))
            es_doc_set_key(c, o, kv[i]->key, es_doc_value(c, kv[i]->value, stringify_maps));
    if (o != NULL && json_object_size(o) == 0)
        json_decref(o);
    else
        es_doc_set(c, obj, "attributes", o);
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
            if (strcmp(levels[l][i]->key, key) == 0 && v != NULL &&
                v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
                v->string_value[0] != '\0')
                return v->string_value;
        }
    return NULL;
}

/* The data stream of an item: its own attributes (a and, for a span event,
 * its span's b), then the scope's, then the resource's, then the settings. */
static void es_doc_route(const es_doc_ctx *c, const es_doc_origin *o, const char *type, es_kv **a, size_t an,
                         es_kv **b, size_t bn, es_doc_stream *ds)
{
    es_kv **const levels[] = {a, b, o->scope_kv, o->res_kv};
    const size_t counts[] = {an, bn, o->scope_n, o->res_n};
    const char *dataset = es_doc_lookup(levels, counts, 4, "data_stream.dataset");
    const char *ns = es_doc_lookup(levels, counts, 4, "data_stream.namespace");
    if (dataset == NULL)
        dataset = c->s->dataset != NULL ? c->s->dataset : ES_DOC_DEFAULT_DATASET;
    if (ns == NULL)
        ns = c->s->namespace != NULL ? c->s->namespace : ES_DOC_DEFAULT_NAMESPACE;
    ds->type = type;
    size_t n = es_doc_sanitize(dataset, ES_DOC_NAME_MAX - strlen(ES_DOC_DATASET_SUFFIX), ds->dataset);
    memcpy(ds->dataset + n, ES_DOC_DATASET_SUFFIX, sizeof(ES_DOC_DATASET_SUFFIX));
    es_doc_sanitize(ns, ES_DOC_NAME_MAX, ds->namespace);
}

/* {"create":{"_index":..., "dynamic_templates":...}}; takes templates. */
static json_t *es_doc_action(es_doc_ctx *c, const es_doc_stream *ds, json_t *templates)
{
    char index[8 + 2 * (ES_DOC_NAME_MAX + 1)];
    snprintf(index, sizeof(index), "%s-%s-%s", ds->type, ds->dataset, ds->namespace);
    json_t *meta = json_object(), *action = json_object();
    es_doc_set(c, meta, "_index", es_doc_str(index));
    if (templates != NULL)
        es_doc_set(c, meta, "dynamic_templates", templates);
    es_doc_set(c, action, "create", meta);
    return action;
}

/* A new document with @timestamp and data_stream. */
static json_t *es_doc_new(es_doc_ctx *c, uint64_t ts, const es_doc_stream *ds)
{
    json_t *doc = json_object(), *d = json_object();
    es_doc_set(c, doc, "@timestamp", es_doc_time(ts));
    es_doc_set(c, d, "type", json_string_nocheck(ds->type));
    es_doc_set(c, d, "dataset", es_doc_str(ds->dataset));
    es_doc_set(c, d, "namespace", es_doc_str(ds->namespace));
    es_doc_set(c, doc, "data_stream", d);
    return doc;
}

static void es_doc_set_origin(es_doc_ctx *c, json_t *doc, const es_doc_origin *o)
{
    if (json_object_set(doc, "resource", o->resource) != 0 || json_object_set(doc, "scope", o->scope) != 0)
        c->failed = 1;
}

static int es_doc_dump_cb(const char *p, size_t n, void *data) { return buf_append(data, p, n); }

/* Append action and document as two lines and record them; takes both.
 * Every string, key and real was made valid for JSON before, so a failure
 * here is out of memory. */
static void es_doc_emit(es_doc_ctx *c, json_t *action, json_t *doc)
{
    size_t off = c->out->len;
    if (c->failed || action == NULL || doc == NULL ||
        json_dump_callback(action, es_doc_dump_cb, c->out, JSON_COMPACT) != 0 || buf_putc(c->out, '\n') != 0 ||
        json_dump_callback(doc, es_doc_dump_cb, c->out, JSON_COMPACT) != 0 || buf_putc(c->out, '\n') != 0 ||
        es_doc_table_push(c->t, (es_doc_entry){.off = off, .len = c->out->len - off, .items = c->next_items,
                                               .first = c->next_first}) != 0) {
        c->failed = 1;
        c->out->len = off;
    } else {
        c->next_items = 0; /* the group's other documents (span events) stand for no item */
        c->next_first = 0;
    }
    json_decref(action);
    json_decref(doc);
}

/* The next document starts the group of one item. */
static void es_doc_item(es_doc_ctx *c)
{
    c->next_items = 1;
    c->next_first = 1;
}

static json_t *es_doc_resource(es_doc_ctx *c, const es_resource *r, const char *schema_url, int stringify_maps)
{
    json_t *o = json_object();
    es_doc_set_str(c, o, "schema_url", schema_url);
    if (r != NULL) {
        es_doc_set_attributes(c, o, r->attributes, r->n_attributes, stringify_maps);
        es_doc_set_count(c, o, "dropped_attributes_count", r->dropped_attributes_count);
    }
    return o;
}

static json_t *es_doc_scope(es_doc_ctx *c, const es_scope *s, const char *schema_url, int stringify_maps)
{
    json_t *o = json_object();
    es_doc_set_str(c, o, "schema_url", schema_url);
    if (s != NULL) {
        es_doc_set_str(c, o, "name", s->name);
        es_doc_set_str(c, o, "version", s->version);
        es_doc_set_attributes(c, o, s->attributes, s->n_attributes, stringify_maps);
        es_doc_set_count(c, o, "dropped_attributes_count", s->dropped_attributes_count);
    }
    return o;
}

/* Fills o for one scope of one resource; es_doc_origin_clear releases it. */
static void es_doc_origin_init(es_doc_ctx *c, es_doc_origin *o, const es_resource *r, const char *res_schema,
                               const es_scope *s, const char *scope_schema, int stringify_maps)
{
    o->resource = es_doc_resource(c, r, res_schema, stringify_maps);
    o->scope = es_doc_scope(c, s, scope_schema, stringify_maps);
    o->res_kv = r != NULL ? r->attributes : NULL;
    o->res_n = r != NULL ? r->n_attributes : 0;
    o->scope_kv = s != NULL ? s->attributes : NULL;
    o->scope_n = s != NULL ? s->n_attributes : 0;
    if (o->resource == NULL || o->scope == NULL)
        c->failed = 1;
}

static void es_doc_origin_clear(es_doc_origin *o)
{
    json_decref(o->resource);
    json_decref(o->scope);
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

static json_t *es_doc_links(es_doc_ctx *c, const Opentelemetry__Proto__Trace__V1__Span *sp)
{
    json_t *a = json_array();
    for (size_t i = 0; i < sp->n_links && a != NULL; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Link *l = sp->links[i];
        json_t *o = json_object();
        es_doc_set_id(c, o, "trace_id", l->trace_id);
        es_doc_set_id(c, o, "span_id", l->span_id);
        es_doc_set_str(c, o, "trace_state", l->trace_state);
        es_doc_set_attributes(c, o, l->attributes, l->n_attributes, 0);
        es_doc_set_count(c, o, "dropped_attributes_count", l->dropped_attributes_count);
        if (json_array_append_new(a, o) != 0)
            c->failed = 1;
    }
    return a;
}

static void es_doc_span_event(es_doc_ctx *c, const es_doc_origin *o, const Opentelemetry__Proto__Trace__V1__Span *sp,
                              const Opentelemetry__Proto__Trace__V1__Span__Event *ev)
{
    es_doc_stream ds;
    es_doc_route(c, o, "logs", ev->attributes, ev->n_attributes, sp->attributes, sp->n_attributes, &ds);
    json_t *doc = es_doc_new(c, ev->time_unix_nano, &ds);
    es_doc_set_id(c, doc, "trace_id", sp->trace_id);
    es_doc_set_id(c, doc, "span_id", sp->span_id);
    es_doc_set_count(c, doc, "dropped_attributes_count", ev->dropped_attributes_count);
    es_doc_set_str(c, doc, "event_name", ev->name);
    es_doc_set_attributes(c, doc, ev->attributes, ev->n_attributes, 0);
    if (ev->name[0] != '\0') { /* as Elastic does: the name is an attribute too */
        json_t *attrs = json_object_get(doc, "attributes");
        if (attrs == NULL) {
            attrs = json_object();
            es_doc_set(c, doc, "attributes", attrs);
        }
        es_doc_set(c, attrs, "event.name", es_doc_str(ev->name));
    }
    es_doc_set_origin(c, doc, o);
    es_doc_emit(c, es_doc_action(c, &ds, NULL), doc);
}

static void es_doc_span(es_doc_ctx *c, const es_doc_origin *o, const Opentelemetry__Proto__Trace__V1__Span *sp)
{
    es_doc_stream ds;
    es_doc_item(c);
    es_doc_route(c, o, "traces", sp->attributes, sp->n_attributes, NULL, 0, &ds);
    json_t *doc = es_doc_new(c, sp->start_time_unix_nano, &ds);
    es_doc_set_id(c, doc, "trace_id", sp->trace_id);
    es_doc_set_id(c, doc, "span_id", sp->span_id);
    es_doc_set_str(c, doc, "trace_state", sp->trace_state);
    es_doc_set_id(c, doc, "parent_span_id", sp->parent_span_id);
    es_doc_set_str(c, doc, "name", sp->name);
    es_doc_set(c, doc, "kind", json_string_nocheck(es_doc_kind(sp->kind)));
    uint64_t d = sp->end_time_unix_nano > sp->start_time_unix_nano ? sp->end_time_unix_nano - sp->start_time_unix_nano
                                                                     : 0;
    es_doc_set(c, doc, "duration", json_integer(d > INT64_MAX ? INT64_MAX : (json_int_t)d));
    es_doc_set_attributes(c, doc, sp->attributes, sp->n_attributes, 0);
    es_doc_set_count(c, doc, "dropped_attributes_count", sp->dropped_attributes_count);
    es_doc_set_count(c, doc, "dropped_events_count", sp->dropped_events_count);
    es_doc_set(c, doc, "links", es_doc_links(c, sp));
    es_doc_set_count(c, doc, "dropped_links_count", sp->dropped_links_count);
    json_t *st = json_object();
    es_doc_set_str(c, st, "message", sp->status != NULL ? sp->status->message : NULL);
    es_doc_set(c, st, "code", json_string_nocheck(es_doc_status_code(sp->status != NULL ? (int)sp->status->code : 0)));
    es_doc_set(c, doc, "status", st);
    es_doc_set_origin(c, doc, o);
    es_doc_emit(c, es_doc_action(c, &ds, NULL), doc);
    for (size_t i = 0; i < sp->n_events && !c->failed; i++)
        es_doc_span_event(c, o, sp, sp->events[i]);
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
            es_doc_origin_clear(&o);
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

/* body.text for a string; body.structured for the rest, which must be an
 * object (or an array of objects) for Elasticsearch's flattened field, so
 * anything else is wrapped as {"value": ...}. */
static void es_doc_set_body(es_doc_ctx *c, json_t *doc, const es_any *body)
{
    if (body == NULL || body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)
        return;
    json_t *b = json_object();
    if (body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        es_doc_set(c, b, "text", es_doc_str(body->string_value));
    } else {
        int objects = body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        if (body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE) {
            const Opentelemetry__Proto__Common__V1__ArrayValue *av = body->array_value;
            objects = 1;
            for (size_t i = 0; av != NULL && i < av->n_values; i++)
                objects &= av->values[i] != NULL &&
                           av->values[i]->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        }
        json_t *v = es_doc_value(c, body, 0);
        if (!objects) {
            json_t *w = json_object();
            es_doc_set(c, w, "value", v);
            v = w;
        }
        es_doc_set(c, b, "structured", v);
    }
    es_doc_set(c, doc, "body", b);
}

static void es_doc_log(es_doc_ctx *c, const es_doc_origin *o, const Opentelemetry__Proto__Logs__V1__LogRecord *lr)
{
    es_doc_stream ds;
    es_doc_item(c);
    es_doc_route(c, o, "logs", lr->attributes, lr->n_attributes, NULL, 0, &ds);
    json_t *doc = es_doc_new(c, lr->time_unix_nano != 0 ? lr->time_unix_nano : lr->observed_time_unix_nano, &ds);
    if (lr->observed_time_unix_nano != 0)
        es_doc_set(c, doc, "observed_timestamp", es_doc_time(lr->observed_time_unix_nano));
    es_doc_set_str(c, doc, "severity_text", lr->severity_text);
    es_doc_set_count(c, doc, "severity_number", lr->severity_number > 0 ? (uint64_t)lr->severity_number : 0);
    es_doc_set_id(c, doc, "trace_id", lr->trace_id);
    es_doc_set_id(c, doc, "span_id", lr->span_id);
    es_doc_set_attributes(c, doc, lr->attributes, lr->n_attributes, 0);
    es_doc_set_count(c, doc, "dropped_attributes_count", lr->dropped_attributes_count);
    es_doc_set_str(c, doc, "event_name", es_doc_event_name(lr));
    es_doc_set_origin(c, doc, o);
    es_doc_set_body(c, doc, lr->body);
    es_doc_emit(c, es_doc_action(c, &ds, NULL), doc);
}

static void es_doc_logs(es_doc_ctx *c, const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_logs && !c->failed; i++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs && !c->failed; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            es_doc_origin o;
            es_doc_origin_init(c, &o, rl->resource, rl->schema_url, sl->scope, sl->schema_url, 0);
            for (size_t k = 0; k < sl->n_log_records && !c->failed; k++)
                es_doc_log(c, &o, sl->log_records[k]);
            es_doc_origin_clear(&o);
        }
    }
}

/* ---- metrics ---- */

/* What one data point contributes: its dimensions, times and value. */
typedef struct es_doc_point {
    es_kv **attrs;
    size_t n_attrs;
    uint64_t start, time;
    json_t *value;        /* NULL: left out because of `why` (or out of memory) */
    const char *template; /* Elastic's dynamic template for the field */
    const char *why;
} es_doc_point;

#define ES_DOC_POINT(dp) \
    ((es_doc_point){.attrs = (dp)->attributes, .n_attrs = (dp)->n_attributes, \
                    .start = (dp)->start_time_unix_nano, .time = (dp)->time_unix_nano})

static json_t *es_doc_uint(uint64_t n) { return json_integer(n > INT64_MAX ? INT64_MAX : (json_int_t)n); }

static void es_doc_number(es_doc_point *p, const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp,
                          int counter)
{
    *p = ES_DOC_POINT(dp);
    if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
        p->value = json_integer(dp->as_int);
        p->template = counter ? "counter_long" : "gauge_long";
    } else if (dp->value_case != OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
        p->why = "number data point without a value";
    } else if (!isfinite(dp->as_double)) {
        p->why = "value is not a finite number";
    } else {
        p->value = json_real(dp->as_double);
        p->template = counter ? "counter_double" : "gauge_double";
    }
}

/* An Elasticsearch histogram field value: {counts, values}, the values
 * finite and strictly increasing. */
typedef struct es_doc_hist {
    json_t *counts, *values;
    double last;
    int bad; /* a value broke the rule */
} es_doc_hist;

static void es_doc_bucket(es_doc_ctx *c, es_doc_hist *h, uint64_t count, double value)
{
    if (count == 0 || h->bad)
        return;
    if (!isfinite(value) || (json_array_size(h->values) > 0 && !(value > h->last))) {
        h->bad = 1;
        return;
    }
    h->last = value;
    if (json_array_append_new(h->counts, es_doc_uint(count)) != 0 ||
        json_array_append_new(h->values, json_real(value)) != 0)
        c->failed = 1;
}

/* The histogram's value, or NULL with p->why set when it broke the rule. */
static void es_doc_hist_finish(es_doc_ctx *c, es_doc_hist *h, es_doc_point *p, const char *why)
{
    if (h->bad) {
        p->why = why;
        json_decref(h->counts);
        json_decref(h->values);
        return;
    }
    p->value = json_object();
    es_doc_set(c, p->value, "counts", h->counts);
    es_doc_set(c, p->value, "values", h->values);
}

/* Explicit buckets as Elastic maps them: each non-empty bucket at its
 * midpoint; the first (-inf, b0] at b0/2 when b0 > 0, else at b0; the last
 * (bn, +inf) at bn. Without bounds: one bucket at the mean. */
static void es_doc_histogram(es_doc_ctx *c, es_doc_point *p,
                             const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    p->template = "histogram";
    size_t nb = dp->n_explicit_bounds;
    const double *b = dp->explicit_bounds;
    if (dp->n_bucket_counts > 0 && dp->n_bucket_counts != nb + 1) {
        p->why = "histogram bucket_counts do not match explicit_bounds";
        return;
    }
    es_doc_hist h = {.counts = json_array(), .values = json_array()};
    if (nb == 0)
        es_doc_bucket(c, &h, dp->count, (dp->_sum_case ? dp->sum : 0) / (double)(dp->count ? dp->count : 1));
    for (size_t i = 0; nb > 0 && i < dp->n_bucket_counts; i++)
        es_doc_bucket(c, &h, dp->bucket_counts[i],
                      i == 0 ? (b[0] > 0 ? b[0] / 2 : b[0]) : i == nb ? b[nb - 1] : b[i - 1] + (b[i] - b[i - 1]) / 2);
    es_doc_hist_finish(c, &h, p, "histogram bounds are not finite and increasing");
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
static void es_doc_exp_histogram(es_doc_ctx *c, es_doc_point *p,
                                 const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    p->template = "histogram";
    if (dp->scale < -10 || dp->scale > 20) {
        p->why = "exponential histogram scale out of range (-10..20)";
        return;
    }
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *neg = dp->negative,
                                                                                     *pos = dp->positive;
    es_doc_hist h = {.counts = json_array(), .values = json_array()};
    for (size_t i = neg != NULL ? neg->n_bucket_counts : 0; i-- > 0;) {
        double inner = es_doc_exp_lower((int64_t)neg->offset + (int64_t)i, dp->scale);
        double outer = es_doc_exp_lower((int64_t)neg->offset + (int64_t)i + 1, dp->scale);
        es_doc_bucket(c, &h, neg->bucket_counts[i], -(inner + (outer - inner) / 2));
    }
    es_doc_bucket(c, &h, dp->zero_count, 0.0);
    for (size_t i = 0; pos != NULL && i < pos->n_bucket_counts; i++) {
        double lower = es_doc_exp_lower((int64_t)pos->offset + (int64_t)i, dp->scale);
        double upper = es_doc_exp_lower((int64_t)pos->offset + (int64_t)i + 1, dp->scale);
        es_doc_bucket(c, &h, pos->bucket_counts[i], lower + (upper - lower) / 2);
    }
    es_doc_hist_finish(c, &h, p, "exponential histogram buckets do not convert to finite increasing values");
}

/* Summaries as Elastic maps them: sum and count (quantiles are not kept). */
static void es_doc_summary(es_doc_ctx *c, es_doc_point *p,
                           const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    p->template = "summary";
    if (!isfinite(dp->sum)) {
        p->why = "summary sum is not a finite number";
        return;
    }
    p->value = json_object();
    es_doc_set(c, p->value, "sum", json_real(dp->sum));
    es_doc_set(c, p->value, "value_count", es_doc_uint(dp->count));
}

/* Each document holds one metric; metric data streams are time series whose
 * identity is the dimensions plus _metric_names_hash, so two metrics with the
 * same dimensions and timestamp stay two documents instead of colliding.
 * Any stable hash of the names does; this is 64-bit FNV-1a. */
static json_t *es_doc_names_hash(const char *name)
{
    uint64_t h = hash_fnv1a(name, strlen(name), HASH_FNV1A_INIT);
    char s[24];
    snprintf(s, sizeof(s), "%llx", (unsigned long long)h);
    return json_string_nocheck(s);
}

/* The document of one data point (takes p->value), or the point counted
 * as left out. */
static void es_doc_metric_point(es_doc_ctx *c, const es_doc_origin *o,
                                const Opentelemetry__Proto__Metrics__V1__Metric *m, es_doc_point *p)
{
    es_doc_item(c);
    if (p->value == NULL) {
        if (p->why == NULL)
            c->failed = 1;
        else
            es_doc_drop(c, "metric \"%s\": %s", m->name, p->why);
        return;
    }
    es_doc_stream ds;
    es_doc_route(c, o, "metrics", p->attrs, p->n_attrs, NULL, 0, &ds);
    json_t *doc = es_doc_new(c, p->time, &ds);
    if (p->start != 0)
        es_doc_set(c, doc, "start_timestamp", es_doc_time(p->start));
    es_doc_set_str(c, doc, "unit", m->unit);
    es_doc_set_attributes(c, doc, p->attrs, p->n_attrs, 1);
    es_doc_set_origin(c, doc, o);
    json_t *metrics = json_object(), *templates = json_object();
    es_doc_set_key(c, metrics, m->name, p->value);
    es_doc_set(c, doc, "metrics", metrics);
    es_doc_set(c, doc, "_metric_names_hash", es_doc_names_hash(m->name));
    char *field = malloc(strlen(m->name) + sizeof("metrics."));
    if (field != NULL) {
        sprintf(field, "metrics.%s", m->name);
        es_doc_set_key(c, templates, field, json_string_nocheck(p->template));
        free(field);
    } else {
        c->failed = 1;
    }
    es_doc_emit(c, es_doc_action(c, &ds, templates), doc);
}

static void es_doc_metric(es_doc_ctx *c, const es_doc_origin *o, const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    es_doc_point p;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        for (size_t i = 0; i < m->gauge->n_data_points && !c->failed; i++) {
            es_doc_number(&p, m->gauge->data_points[i], 0);
            es_doc_metric_point(c, o, m, &p);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        /* Elastic's counter templates: monotonic cumulative sums only. */
        int cumulative =
            m->sum->aggregation_temporality ==
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        int counter = m->sum->is_monotonic && cumulative;
        for (size_t i = 0; i < m->sum->n_data_points && !c->failed; i++) {
            es_doc_number(&p, m->sum->data_points[i], counter);
            es_doc_metric_point(c, o, m, &p);
        }
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        for (size_t i = 0; i < m->histogram->n_data_points && !c->failed; i++) {
            es_doc_histogram(c, &p, m->histogram->data_points[i]);
            es_doc_metric_point(c, o, m, &p);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        for (size_t i = 0; i < m->exponential_histogram->n_data_points && !c->failed; i++) {
            es_doc_exp_histogram(c, &p, m->exponential_histogram->data_points[i]);
            es_doc_metric_point(c, o, m, &p);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        for (size_t i = 0; i < m->summary->n_data_points && !c->failed; i++) {
            es_doc_summary(c, &p, m->summary->data_points[i]);
            es_doc_metric_point(c, o, m, &p);
        }
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
            es_doc_origin_clear(&o);
        }
    }
}

/* ---- entry points ---- */

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
