/* sampler_testlib: what the tail sampler's unit tests share: building a
 * sampler from a YAML snippet (mk, mk_err), requests in an arena like a
 * decoded one (sp_new, attr_*, req_new), and collecting what the sampler
 * emits (E, on_emit, emitted_has). The clock is injected: T0 onwards. */
#ifndef GW_TEST_SAMPLER_TESTLIB_H
#define GW_TEST_SAMPLER_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "sampler.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans rs_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ss_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;

#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (1000 * SEC) /* the injected clock starts here */

typedef struct emitted {
    size_t n;            /* emits */
    size_t spans;        /* spans reported */
    uint64_t ids[4096];  /* low 8 bytes of the first span's trace id per emit */
    int64_t rates[4096]; /* the first span's SampleRate attribute per emit (0: none) */
    char ts[4096][48];   /* the first span's tracestate per emit */
    char tenant[32];
    arena *a;
    const req_t *last;
} emitted;

extern config *g_cfg;  /* owns the last mk()'s config */
extern arena *A;       /* requests are built here */
extern emitted E;      /* what on_emit saw */

sampler *mk_shards(const char *node, size_t shards);
sampler *mk(const char *node);
const char *mk_err(const char *node);
/* A formatted string in A. */
const char *test_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One policy {name, type, settings} in ours (settings beside name and type)
 * or the Collector's shape (under a `<type>:` block); in A. */
const char *policy_in(int upstream, const char *name, const char *type, const char *settings);
/* A node with these n policies (policy_in's) in the chosen shape:
 * {policies: [...]} or {tail_sampling: {policies: [...]}}; in A. */
const char *set_in(int upstream, const char *const *policies, size_t n);
void tid_of(uint8_t out[16], uint64_t n);
span_t *sp_new(uint64_t trace, unsigned sid, unsigned parent, uint64_t start, uint64_t end, int status);
kv_t *kv_new(const char *key);
void push_kv(kv_t ***attrs, size_t *n, kv_t *kv);
void attr_str(span_t *s, const char *k, const char *v);
void attr_int(span_t *s, const char *k, int64_t v);
void attr_dbl(span_t *s, const char *k, double v);
void attr_bool(span_t *s, const char *k, int v);
req_t *req_new(const char *svc, const char *scope, span_t **spans, size_t n);
req_t *req_join(req_t *a, req_t *b);
size_t add(sampler *s, req_t *r, uint64_t now, buf *late);
void add_trace(sampler *s, uint64_t trace, uint64_t dur_ns, int status, uint64_t now);
int on_emit(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans, uint64_t *done, uint64_t *full);
int emitted_has(uint64_t id);
void flush(sampler *s, uint64_t now);
size_t tick(sampler *s, uint64_t now);
int setup(void **state);
int teardown(void **state);
uint64_t rnd(void);
void add_n_spans(sampler *s, uint64_t trace, size_t n, uint64_t now);

#endif
