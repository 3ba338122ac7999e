/* es_doc_internal: the render's context and the helpers es_doc.c shares
 * with es_metrics.c; only those two files include it (the contract to the
 * rest of the gateway is es_doc.h's). The context is the caller's stack
 * object for one es_doc_render: it borrows the settings, output, table and
 * report, and owns its scratch until es_doc_render frees it. Each helper is
 * described where it is defined (es_doc.c). Helpers that write return 0, or
 * -1 when memory ran out. */
#ifndef GW_ES_DOC_INTERNAL_H
#define GW_ES_DOC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "common.pb-c.h"
#include "es_doc.h"
#include "resource.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue es_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue es_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope es_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource es_resource;

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
    size_t *order, order_cap; /* a list's members in key order (es_doc_put_canonical) */
    es_doc_keyref *geo;       /* geo coordinates of an attributes object, by prefix (es_doc_put_geo) */
    size_t geo_cap;
    /* Metrics: the origins and points of the request, their group keys,
     * and the metrics, templates and names of the document being made. */
    struct es_doc_origin *origins;
    size_t n_origins, origins_cap;
    struct es_doc_mpoint *pts;
    size_t n_pts, pts_cap;
    buf okeys, gkeys;
    buf mvals, mtmpl;
    es_doc_keyref *names; /* a group's metric names, sorted */
    size_t names_cap;
    uint8_t *dup;         /* per point of a group: a second point of its metric */
    size_t dup_cap;
} es_doc_ctx;

/* Where an item comes from: the index or data stream names its scope or
 * resource give; its resource and scope text is in ctx.origin. */
typedef struct es_doc_origin {
    const char *dataset, *namespace, *index; /* NULL: not named there */
    const char *receiver;                    /* dataset from the scope name (not terminated), or NULL */
    size_t receiver_len;
    size_t text_off, text_len;               /* ,"resource":{...},"scope":{...} in ctx.origin */
    size_t key_off, key_len;                 /* metrics: its part of a group key, in ctx.okeys */
} es_doc_origin;

/* Longest index name of a data stream: "metrics-<dataset>-<namespace>". */
#define ES_DOC_INDEX_MAX (8 + 2 * (ES_DOC_NAME_MAX + 1))

typedef struct es_doc_stream {
    const char *type;  /* traces | logs | metrics */
    const char *index; /* named outright by elasticsearch.index: no data stream */
    char dataset[ES_DOC_NAME_MAX + 1];
    char namespace[ES_DOC_NAME_MAX + 1];
    size_t dataset_len, namespace_len;
} es_doc_stream;

/* An item left out: counted, the first reason kept. */
void es_doc_drop(es_doc_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records the document written to c->out since off (rc != 0: takes it back, fails the render). */
void es_doc_emit(es_doc_ctx *c, size_t off, int rc);
/* Room for `need` elements of `size` bytes in *v (capacity *cap). */
int es_doc_grow(void **v, size_t *cap, size_t need, size_t size);

/* Member planning: the written keys kv[slot[j]] into c->keys; key order and
 * equality; the members of kv[0..n) to write, pushed on c->plan. */
int es_doc_keys(es_doc_ctx *c, es_kv **kv, const size_t *slot, size_t m);
int es_doc_key_order(const void *pa, const void *pb);
int es_doc_same_key(const es_doc_keyref *a, const es_doc_keyref *b);
int es_doc_plan(es_doc_ctx *c, es_kv **kv, size_t n, int attributes, size_t *count);

/* Values and objects. */
int es_doc_put_value(es_doc_ctx *c, buf *b, const es_any *v, int stringify_maps);
int es_doc_put_attributes(es_doc_ctx *c, buf *b, size_t open, es_kv **kv, size_t n, int stringify_maps,
                          const char *event_name);

/* Data streams and the lines every document starts with. */
void es_doc_route(const es_doc_ctx *c, const es_doc_origin *o, const char *type, es_kv **a, size_t an,
                  es_doc_stream *ds);
size_t es_doc_index_name(const es_doc_stream *ds, char *out);
int es_doc_put_action(buf *b, const es_doc_stream *ds, const buf *templates);
int es_doc_put_head(buf *b, const es_doc_stream *ds, uint64_t ts, int millis, size_t *open);

/* The resource and scope of one scope of items, and their text in a document. */
void es_doc_origin_init(es_doc_ctx *c, es_doc_origin *o, const es_resource *r, const char *res_schema,
                        const es_scope *s, const char *scope_schema, int stringify_maps, int fresh);
int es_doc_put_origin(const es_doc_ctx *c, const es_doc_origin *o, buf *b);

#endif
