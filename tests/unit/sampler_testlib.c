/* sampler_testlib: see sampler_testlib.h. */
#include "sampler_testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp.h"
#include "otlp_wire.h"


/* ---- config ---- */

#define HDR "listeners:\n  - name: a\n    grpc: 127.0.0.1:4317\nbackends:\n  x:\n    type: discard\n    s: "

config *g_cfg;

sampler *mk_shards(const char *node, size_t shards)
{
    char yaml[16384], err[512];
    snprintf(yaml, sizeof(yaml), HDR "%s\n", node);
    config_free(g_cfg);
    g_cfg = NULL;
    assert_int_equal(config_load_string("gw.yaml", yaml, strlen(yaml), &g_cfg, err, sizeof(err)), 0);
    sampler *s = sampler_new(config_get(g_cfg->routing.backends[0].node, "s"), shards, err, sizeof(err));
    if (s == NULL)
        fail_msg("sampler_new: %s", err);
    return s;
}

sampler *mk(const char *node) { return mk_shards(node, 1); }

const char *mk_err(const char *node)
{
    static char err[512];
    char yaml[16384];
    config *c;
    snprintf(yaml, sizeof(yaml), HDR "%s\n", node);
    assert_int_equal(config_load_string("gw.yaml", yaml, strlen(yaml), &c, err, sizeof(err)), 0);
    sampler *s = sampler_new(config_get(c->routing.backends[0].node, "s"), 2, err, sizeof(err));
    assert_null(s);
    config_free(c);
    return err;
}

/* ---- request building (in an arena, like a decoded request) ---- */

arena *A;

const char *test_fmt(const char *fmt, ...)
{
    char buf[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(buf));
    return arena_strndup(A, buf, (size_t)n);
}

const char *policy_in(int upstream, const char *name, const char *type, const char *settings)
{
    if (upstream)
        return test_fmt("{name: %s, type: %s, %s: {%s}}", name, type, type, settings);
    return test_fmt("{name: %s, type: %s, %s}", name, type, settings);
}

const char *set_in(int upstream, const char *const *policies, size_t n)
{
    const char *list = "";
    for (size_t i = 0; i < n; i++)
        list = test_fmt("%s%s%s", list, i ? ", " : "", policies[i]);
    return test_fmt(upstream ? "{tail_sampling: {policies: [%s]}}" : "{policies: [%s]}", list);
}

void tid_of(uint8_t out[16], uint64_t n)
{
    memset(out, 0, 16);
    out[0] = 0xab;
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)(n >> (56 - 8 * i));
}

span_t *sp_new(uint64_t trace, unsigned sid, unsigned parent, uint64_t start, uint64_t end, int status)
{
    span_t *s = arena_alloc(A, sizeof(*s));
    opentelemetry__proto__trace__v1__span__init(s);
    uint8_t *id = arena_alloc(A, 16), *sp = arena_alloc(A, 8), *pp = arena_alloc(A, 8);
    tid_of(id, trace);
    memset(sp, 0, 8);
    sp[7] = (uint8_t)sid;
    sp[6] = (uint8_t)(sid >> 8);
    sp[0] = 1;
    s->trace_id.data = id;
    s->trace_id.len = 16;
    s->span_id.data = sp;
    s->span_id.len = 8;
    if (parent != 0) {
        memset(pp, 0, 8);
        pp[0] = 1;
        pp[7] = (uint8_t)parent;
        s->parent_span_id.data = pp;
        s->parent_span_id.len = 8;
    }
    s->name = arena_strndup(A, "op", 2);
    s->start_time_unix_nano = start;
    s->end_time_unix_nano = end;
    if (status >= 0) {
        s->status = arena_alloc(A, sizeof(*s->status));
        opentelemetry__proto__trace__v1__status__init(s->status);
        s->status->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)status;
    }
    return s;
}

kv_t *kv_new(const char *key)
{
    kv_t *kv = arena_alloc(A, sizeof(*kv));
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = arena_strndup(A, key, strlen(key));
    kv->value = arena_alloc(A, sizeof(any_t));
    opentelemetry__proto__common__v1__any_value__init(kv->value);
    return kv;
}

void push_kv(kv_t ***attrs, size_t *n, kv_t *kv)
{
    kv_t **a = arena_alloc(A, (*n + 1) * sizeof(*a));
    if (*n)
        memcpy(a, *attrs, *n * sizeof(*a));
    a[(*n)++] = kv;
    *attrs = a;
}

void attr_str(span_t *s, const char *k, const char *v)
{
    kv_t *kv = kv_new(k);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = arena_strndup(A, v, strlen(v));
    push_kv(&s->attributes, &s->n_attributes, kv);
}

void attr_int(span_t *s, const char *k, int64_t v)
{
    kv_t *kv = kv_new(k);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    kv->value->int_value = v;
    push_kv(&s->attributes, &s->n_attributes, kv);
}

void attr_dbl(span_t *s, const char *k, double v)
{
    kv_t *kv = kv_new(k);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    kv->value->double_value = v;
    push_kv(&s->attributes, &s->n_attributes, kv);
}

void attr_bool(span_t *s, const char *k, int v)
{
    kv_t *kv = kv_new(k);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    kv->value->bool_value = v;
    push_kv(&s->attributes, &s->n_attributes, kv);
}

/* A request: one resource (service.name = svc, plus optional extra string
 * attribute) and one scope (name = scope), holding the spans. */
req_t *req_new(const char *svc, const char *scope, span_t **spans, size_t n)
{
    req_t *r = arena_alloc(A, sizeof(*r));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(r);
    rs_t *rs = arena_alloc(A, sizeof(*rs));
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    rs->resource = arena_alloc(A, sizeof(*rs->resource));
    opentelemetry__proto__resource__v1__resource__init(rs->resource);
    kv_t *kv = kv_new("service.name");
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = arena_strndup(A, svc, strlen(svc));
    push_kv(&rs->resource->attributes, &rs->resource->n_attributes, kv);
    ss_t *ss = arena_alloc(A, sizeof(*ss));
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    ss->scope = arena_alloc(A, sizeof(*ss->scope));
    opentelemetry__proto__common__v1__instrumentation_scope__init(ss->scope);
    ss->scope->name = arena_strndup(A, scope, strlen(scope));
    ss->spans = arena_alloc(A, n * sizeof(span_t *));
    memcpy(ss->spans, spans, n * sizeof(span_t *));
    ss->n_spans = n;
    rs->scope_spans = arena_alloc(A, sizeof(ss_t *));
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    r->resource_spans = arena_alloc(A, sizeof(rs_t *));
    r->resource_spans[0] = rs;
    r->n_resource_spans = 1;
    return r;
}

/* Concatenate requests (several ResourceSpans in one). */
req_t *req_join(req_t *a, req_t *b)
{
    req_t *r = arena_alloc(A, sizeof(*r));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(r);
    r->n_resource_spans = a->n_resource_spans + b->n_resource_spans;
    r->resource_spans = arena_alloc(A, r->n_resource_spans * sizeof(rs_t *));
    memcpy(r->resource_spans, a->resource_spans, a->n_resource_spans * sizeof(rs_t *));
    memcpy(r->resource_spans + a->n_resource_spans, b->resource_spans, b->n_resource_spans * sizeof(rs_t *));
    return r;
}

size_t add(sampler *s, req_t *r, uint64_t now, buf *late)
{
#ifdef SAMPLER_TEST_WIRE
    /* Built a second time with this set (sampler_wire, sampler_compat_wire):
     * the request goes in as bytes wherever the sampler takes them, so every
     * expectation of the suites also holds sampler_add_wire to account;
     * with the scan's notes of the spans, as ingest hands them over, when
     * the scan passes the request (else the gateway would decode it). */
    if (sampler_wire_ok(s)) {
        size_t n = protobuf_c_message_get_packed_size(&r->base), items;
        uint8_t *b = arena_alloc(A, n + 1);
        assert_non_null(b);
        protobuf_c_message_pack(&r->base, b);
        otlp_wire_spans notes = {.v = arena_alloc(A, otlp_wire_spans_cap(n) * sizeof(otlp_wire_span)),
                                 .cap = otlp_wire_spans_cap(n)};
        assert_non_null(notes.v);
        int scanned = otlp_wire_scan(OTLP_TRACES, b, n, &items, &notes);
        return sampler_add_wire(s, 0, b, n, scanned ? notes.v : NULL, scanned ? notes.n : 0, "t1", now, late);
    }
#endif
    return sampler_add(s, 0, &r->base, "t1", now, late);
}

/* One-span root trace with duration and status, added at `now`. */
void add_trace(sampler *s, uint64_t trace, uint64_t dur_ns, int status, uint64_t now)
{
    span_t *sp = sp_new(trace, 1, 0, T0, T0 + dur_ns, status);
    add(s, req_new("svc", "lib", &sp, 1), now, NULL);
}

/* ---- emitted output ---- */


emitted E;

int on_emit(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans, uint64_t *done,
                   uint64_t *full)
{
    emitted *e = data;
    (void)full;
    *done = 1; /* the one destination took it */
    otlp_request out;
    char err[160];
    assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, req, len, e->a, &out, err, sizeof(err)), 0);
    assert_int_equal(out.items, spans);
    const req_t *r = (const req_t *)out.msg;
    uint64_t id = 0;
    const span_t *sp = r->resource_spans[0]->scope_spans[0]->spans[0];
    for (int i = 0; i < 8; i++)
        id = id << 8 | sp->trace_id.data[8 + i];
    if (e->n < 4096) {
        e->ids[e->n] = id;
        e->rates[e->n] = 0;
        for (size_t i = 0; i < sp->n_attributes; i++)
            if (strcmp(sp->attributes[i]->key, "SampleRate") == 0)
                e->rates[e->n] = sp->attributes[i]->value->int_value;
        snprintf(e->ts[e->n], sizeof(e->ts[0]), "%s", sp->trace_state != NULL ? sp->trace_state : "");
    }
    e->n++;
    e->spans += spans;
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    e->last = r;
    return 0;
}

int emitted_has(uint64_t id)
{
    for (size_t i = 0; i < E.n && i < 4096; i++)
        if (E.ids[i] == id)
            return 1;
    return 0;
}

void flush(sampler *s, uint64_t now) { sampler_flush(s, 0, now, on_emit, &E); }
size_t tick(sampler *s, uint64_t now) { return sampler_tick(s, 0, now, on_emit, &E); }

int setup(void **state)
{
    (void)state;
    A = arena_new(0);
    memset(&E, 0, sizeof(E));
    E.a = arena_new(0);
    return 0;
}

int teardown(void **state)
{
    (void)state;
    arena_free(A);
    arena_free(E.a);
    config_free(g_cfg);
    g_cfg = NULL;
    return 0;
}


static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void add_n_spans(sampler *s, uint64_t trace, size_t n, uint64_t now)
{
    span_t *sp[64];
    for (size_t i = 0; i < n; i++)
        sp[i] = sp_new(trace, (unsigned)i + 1, i ? 1 : 0, T0, T0 + 1, -1);
    add(s, req_new("svc", "lib", sp, n), now, NULL);
}