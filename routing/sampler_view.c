/* sampler_view: a buffered trace decoded for the Refinery samplers, which
 * look at span fields the per-span summary does not keep. Only pipelines
 * with such a policy pay for it, once per decision. */
#include <stdlib.h>
#include <string.h>

#include "sampler_internal.h"

typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

/* The Resource in a blob's ResourceSpans fields (field 1); NULL when absent. */
static resource_t *unpack_resource(const blob *b)
{
    const uint8_t *p = b->data, *end = b->data + b->len;
    while (p < end) {
        uint64_t tag, len;
        if ((p = get_varint(p, end, &tag)) == NULL || (tag & 7) != 2 ||
            (p = get_varint(p, end, &len)) == NULL || len > (uint64_t)(end - p))
            return NULL;
        if (tag >> 3 == 1)
            return opentelemetry__proto__resource__v1__resource__unpack(NULL, len, p);
        p += len;
    }
    return NULL;
}

void sm_view_free(sm_view *v)
{
    for (size_t i = 0; i < v->n; i++)
        opentelemetry__proto__trace__v1__span__free_unpacked((span_t *)v->spans[i].span, NULL);
    for (size_t i = 0; i < v->n_res; i++)
        if (v->res[i] != NULL)
            opentelemetry__proto__resource__v1__resource__free_unpacked(v->res[i], NULL);
    free(v->spans);
    free(v->res);
    free(v->res_blob);
    memset(v, 0, sizeof(*v));
}

/* The decoded resource of blob r, unpacked once per trace. */
static const resource_t *view_resource(sm_view *v, const blob *r)
{
    for (size_t i = 0; i < v->n_res; i++)
        if (v->res_blob[i] == r)
            return v->res[i];
    v->res_blob[v->n_res] = r;
    v->res[v->n_res] = unpack_resource(r);
    return v->res[v->n_res++];
}

int sm_view_build(const trace *t, int spans, sm_view *v)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->tr.id, t->id, 16);
    v->tr.span_count = t->sum.spans;
    if (!spans)
        return 0;
    size_t n = 0, segs = 0;
    for (const seg *g = t->segs; g != NULL; g = g->next) {
        n += g->n_spans;
        segs++;
    }
    v->spans = calloc(n ? n : 1, sizeof(*v->spans));
    v->res = calloc(segs ? segs : 1, sizeof(*v->res));
    v->res_blob = calloc(segs ? segs : 1, sizeof(*v->res_blob));
    if (v->spans == NULL || v->res == NULL || v->res_blob == NULL)
        goto fail;
    for (const seg *g = t->segs; g != NULL; g = g->next) {
        const resource_t *res = view_resource(v, g->scope->parent);
        const uint8_t *p = g->data, *end = g->data + g->len;
        while (p < end && v->n < n) {
            uint64_t len = 0;
            if ((p = get_varint(p + 1, end, &len)) == NULL || len > (uint64_t)(end - p))
                break; /* cannot happen: the sampler framed these bytes */
            span_t *sp = opentelemetry__proto__trace__v1__span__unpack(NULL, len, p);
            p += len;
            if (sp == NULL)
                goto fail;
            v->spans[v->n].span = sp;
            v->spans[v->n].resource = res;
            if (sp->parent_span_id.len == 0 && v->tr.root == NULL)
                v->tr.root = &v->spans[v->n];
            v->n++;
        }
    }
    v->tr.spans = v->spans;
    v->tr.n_spans = v->n;
    return 0;
fail:
    sm_view_free(v);
    return -1;
}
