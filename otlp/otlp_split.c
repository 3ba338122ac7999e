/* otlp_split: cut a decoded Export*ServiceRequest into parts within item and
 * byte limits, keeping resource and scope grouping (each part repeats the
 * resource and scope its items belong to). Parts are built from shallow
 * copies in the arena; items are shared with the input, never copied.
 *
 * All three signals have the same shape, which the descriptors expose:
 *   request  field 1: repeated Resource{Spans,Metrics,Logs}
 *   resource field 2: repeated Scope{Spans,Metrics,Logs}
 *   scope    field 2: repeated Span / Metric / LogRecord
 * so one walker serves them all. A metric counts as its data points (the
 * unit the limits are in), but is never cut itself: one metric with more
 * points than max_items forms a part of its own, as does one oversized span. */
#include <string.h>

#include "otlp.h"

/* The repeated message field `id` of m: where its count and its array
 * pointer live. */
static void repeated(const ProtobufCMessage *m, unsigned id, size_t **n, ProtobufCMessage ****arr)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(m->descriptor, id);
    *n = (size_t *)((char *)m + f->quantifier_offset);
    *arr = (ProtobufCMessage ***)((char *)m + f->offset);
}

static size_t item_weight(otlp_signal sig, const ProtobufCMessage *item)
{
    return sig == OTLP_METRICS ? otlp_metric_points(item) : 1;
}

/* A shallow copy of message m with its repeated field `id` emptied. */
static ProtobufCMessage *shell(const ProtobufCMessage *m, unsigned id, arena *a)
{
    ProtobufCMessage *c = arena_alloc(a, m->descriptor->sizeof_message);
    if (c == NULL)
        return NULL;
    memcpy(c, m, m->descriptor->sizeof_message);
    size_t *n;
    ProtobufCMessage ***arr;
    repeated(c, id, &n, &arr);
    *n = 0;
    *arr = NULL;
    return c;
}

/* Append child to the repeated field `id` of parent (arrays grow in the
 * arena; parts are small, so doubling copies are cheap). */
static int append(ProtobufCMessage *parent, unsigned id, ProtobufCMessage *child, size_t *cap, arena *a)
{
    size_t *n;
    ProtobufCMessage ***arr;
    repeated(parent, id, &n, &arr);
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        ProtobufCMessage **grown = arena_alloc(a, ncap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        if (*n)
            memcpy(grown, *arr, *n * sizeof(*grown));
        *arr = grown;
        *cap = ncap;
    }
    (*arr)[(*n)++] = child;
    return 0;
}

typedef struct part {
    ProtobufCMessage *req, *res, *scope; /* current part and its open containers */
    size_t res_cap, scope_cap, items_cap;
    size_t items, bytes;
} part;

/* Bytes a part gains per container, beyond the items: tags, lengths and the
 * resource/scope bodies (estimated once per container). */
#define SPLIT_OVERHEAD 16

int otlp_split(otlp_signal sig, const ProtobufCMessage *msg, size_t max_items, size_t max_bytes, arena *a,
               otlp_part_fn emit, void *data)
{
    size_t *n_res;
    ProtobufCMessage ***res_arr;
    repeated(msg, 1, &n_res, &res_arr);
    part p = {0};
    for (size_t r = 0; r < *n_res; r++) {
        const ProtobufCMessage *res = (*res_arr)[r];
        size_t *n_scopes;
        ProtobufCMessage ***scope_arr;
        repeated(res, 2, &n_scopes, &scope_arr);
        size_t res_bytes = protobuf_c_message_get_packed_size(res);
        for (size_t s = 0; s < *n_scopes; s++) {
            const ProtobufCMessage *scope = (*scope_arr)[s];
            size_t *n_items;
            ProtobufCMessage ***item_arr;
            repeated(scope, 2, &n_items, &item_arr);
            for (size_t i = 0; i < *n_items; i++) {
                ProtobufCMessage *item = (*item_arr)[i];
                size_t w = item_weight(sig, item), b = protobuf_c_message_get_packed_size(item) + SPLIT_OVERHEAD;
                if (p.req != NULL && p.items > 0 && (p.items + w > max_items || p.bytes + b > max_bytes)) {
                    if (emit(p.req, p.items, data) != 0)
                        return -1;
                    p = (part){0};
                }
                if (p.req == NULL && (p.req = shell(msg, 1, a)) == NULL)
                    return -1;
                if (p.res == NULL) {
                    /* The resource's own bytes (attributes) repeat in every
                     * part; the scope containers are small. */
                    if ((p.res = shell(res, 2, a)) == NULL || append(p.req, 1, p.res, &p.res_cap, a) != 0)
                        return -1;
                    p.bytes += res_bytes > 0 ? SPLIT_OVERHEAD : 0;
                    p.scope_cap = 0;
                }
                if (p.scope == NULL) {
                    if ((p.scope = shell(scope, 2, a)) == NULL || append(p.res, 2, p.scope, &p.scope_cap, a) != 0)
                        return -1;
                    p.items_cap = 0;
                    p.bytes += SPLIT_OVERHEAD;
                }
                if (append(p.scope, 2, item, &p.items_cap, a) != 0)
                    return -1;
                p.items += w;
                p.bytes += b;
            }
            p.scope = NULL; /* the next scope opens a new container */
        }
        p.res = NULL;
    }
    return p.req != NULL ? emit(p.req, p.items, data) : 0;
}
