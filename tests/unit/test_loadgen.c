/* bench/loadgen's testable pieces: its requests decode with the gateway's
 * own OTLP decoder and have the promised trace structure; its latency
 * histogram's percentiles are within the stated error; its reading of
 * Export responses (built by the gateway's encoder) counts partial
 * success. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lg_client.h"
#include "lg_hist.h"
#include "lg_payload.h"
#include "otlp.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

/* What the test remembers of every trace it has seen, by trace id. */
typedef struct seen_trace {
    uint8_t id[16];
    unsigned spans, roots, children_of_root, requests;
    uint8_t root_id[8];
    uint8_t parents[64][8];
    unsigned last_request;
} seen_trace;

#define MAX_TRACES 4096
#define MAX_SPANS 20000
static seen_trace traces[MAX_TRACES];
static unsigned ntraces;
static uint8_t span_ids[MAX_SPANS][8];
static unsigned nspan_ids;

static seen_trace *trace_of(const uint8_t *id)
{
    for (unsigned i = 0; i < ntraces; i++)
        if (memcmp(traces[i].id, id, 16) == 0)
            return &traces[i];
    assert_true(ntraces < MAX_TRACES);
    seen_trace *t = &traces[ntraces++];
    memset(t, 0, sizeof *t);
    memcpy(t->id, id, 16);
    t->last_request = UINT32_MAX;
    return t;
}

static const Opentelemetry__Proto__Common__V1__AnyValue *attr(span_t *sp, const char *key)
{
    for (size_t i = 0; i < sp->n_attributes; i++)
        if (strcmp(sp->attributes[i]->key, key) == 0)
            return sp->attributes[i]->value;
    return NULL;
}

static void test_payload_decodes_with_structure(void **state)
{
    (void)state;
    lg_shape shape = {.spans_per_request = 50, .spans_per_trace = 6, .open_traces = 40, .attrs = 13,
                      .attr_bytes = 40, .error_rate = 0.2};
    lg_payload g;
    assert_int_equal(lg_payload_init(&g, &shape, 7), 0);
    buf b = BUF_INIT;
    ntraces = nspan_ids = 0;
    size_t errors = 0, total = 0;
    const unsigned requests = 300;
    for (unsigned r = 0; r < requests; r++) {
        int grpc = r % 2;
        assert_int_equal(lg_payload_request(&g, &b, grpc), 0);
        const uint8_t *p = (const uint8_t *)b.data;
        size_t len = b.len;
        if (grpc) { /* 5-byte gRPC prefix: uncompressed, big-endian length */
            assert_true(len > 5);
            assert_int_equal(p[0], 0);
            assert_int_equal((size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4], len - 5);
            p += 5;
            len -= 5;
        }
        arena *a = arena_new(64 << 20);
        otlp_request req;
        char err[200];
        assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, p, len, a, &req, err, sizeof err), 0);
        otlp_validate(&req);
        assert_int_equal(req.rejected, 0);
        assert_int_equal(req.items, 50);
        req_t *m = (req_t *)req.msg;
        assert_int_equal(m->n_resource_spans, 1);
        assert_string_equal(m->resource_spans[0]->resource->attributes[0]->key, "service.name");
        assert_int_equal(m->resource_spans[0]->n_scope_spans, 1);
        Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = m->resource_spans[0]->scope_spans[0];
        assert_string_equal(ss->scope->name, "io.opentelemetry.instrumentation.http");
        for (size_t i = 0; i < ss->n_spans; i++) {
            span_t *sp = ss->spans[i];
            total++;
            assert_int_equal(sp->trace_id.len, 16);
            assert_int_equal(sp->span_id.len, 8);
            assert_true(sp->end_time_unix_nano > sp->start_time_unix_nano);
            assert_int_equal(sp->n_attributes, 13);
            const Opentelemetry__Proto__Common__V1__AnyValue *x = attr(sp, "app.extra.2");
            assert_non_null(x);
            assert_int_equal(strlen(x->string_value), 40);
            assert_non_null(attr(sp, "app.cart.total"));
            assert_int_equal(attr(sp, "app.cart.total")->value_case,
                             OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
            int error = sp->status && sp->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            errors += (size_t)error;
            assert_int_equal(attr(sp, "http.response.status_code")->int_value, error ? 503 : 200);
            /* every span id is new */
            for (unsigned k = 0; k < nspan_ids; k++)
                assert_memory_not_equal(span_ids[k], sp->span_id.data, 8);
            assert_true(nspan_ids < MAX_SPANS);
            memcpy(span_ids[nspan_ids++], sp->span_id.data, 8);
            seen_trace *t = trace_of(sp->trace_id.data);
            assert_int_equal(t->roots, 0); /* nothing after the root */
            if (t->last_request != r)
                t->requests++;
            t->last_request = r;
            if (sp->parent_span_id.len == 0) {
                t->roots++;
                memcpy(t->root_id, sp->span_id.data, 8);
                assert_int_equal(sp->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
            } else {
                assert_int_equal(sp->parent_span_id.len, 8);
                assert_true(t->spans < 64);
                memcpy(t->parents[t->spans], sp->parent_span_id.data, 8);
            }
            t->spans++;
        }
        arena_free(a);
    }
    /* Complete traces: spans_per_trace spans, one root, children point at it,
     * and a trace's spans came in more than one request. */
    unsigned complete = 0, spread = 0;
    for (unsigned i = 0; i < ntraces; i++) {
        seen_trace *t = &traces[i];
        if (t->roots == 0)
            continue;
        complete++;
        assert_int_equal(t->spans, 6);
        for (unsigned k = 0; k < t->spans - 1; k++)
            assert_memory_equal(t->parents[k], t->root_id, 8);
        spread += t->requests > 1;
    }
    assert_true(complete > 2000); /* 15000 spans, 6 a trace, 40 open at the end */
    assert_true(spread > complete / 2);
    assert_int_equal(g.roots, complete);
    assert_int_equal(g.spans, total);
    /* 20 % of spans fail on their own, and a root fails with its children */
    assert_true(errors > total / 6 && errors < total / 2);
    buf_free(&b);
    lg_payload_free(&g);
}

static void test_payload_rejects_bad_shapes(void **state)
{
    (void)state;
    lg_payload g;
    lg_shape bad = {.spans_per_request = 0, .spans_per_trace = 1, .open_traces = 1};
    assert_int_equal(lg_payload_init(&g, &bad, 1), -1);
    lg_shape bad_rate = {.spans_per_request = 1, .spans_per_trace = 1, .open_traces = 1, .error_rate = 1.5};
    assert_int_equal(lg_payload_init(&g, &bad_rate, 1), -1);
}

static void test_hist_quantiles(void **state)
{
    (void)state;
    lg_hist h;
    lg_hist_init(&h);
    assert_int_equal(lg_hist_quantile(&h, 0.5), 0);
    /* 1 µs .. 100 ms in 1 µs steps (as ns) */
    for (uint64_t v = 1; v <= 100000; v++)
        lg_hist_add(&h, v * 1000);
    assert_int_equal(h.count, 100000);
    assert_int_equal(h.min, 1000);
    assert_int_equal(h.max, 100000000);
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < 4; i++) {
        double want = qs[i] * 100000 * 1000;
        double got = (double)lg_hist_quantile(&h, qs[i]);
        assert_true(got >= want);
        assert_true(got <= want * (1 + 1.0 / 64));
    }
    assert_int_equal(lg_hist_quantile(&h, 1.0), 100000000);
    /* small values are exact */
    lg_hist s;
    lg_hist_init(&s);
    for (uint64_t v = 0; v < 64; v++)
        lg_hist_add(&s, v);
    assert_int_equal(lg_hist_quantile(&s, 0.5), 31);
    assert_int_equal(lg_hist_quantile(&s, 1.0), 63);
    /* one value: every percentile is it, whatever its bucket */
    lg_hist one;
    lg_hist_init(&one);
    lg_hist_add(&one, 123456789);
    assert_int_equal(lg_hist_quantile(&one, 0.01), 123456789);
    assert_int_equal(lg_hist_quantile(&one, 0.999), 123456789);
    /* a slow tail shows in p99.9, not in p50 */
    lg_hist t;
    lg_hist_init(&t);
    for (int i = 0; i < 9990; i++)
        lg_hist_add(&t, 1000000);
    for (int i = 0; i < 10; i++)
        lg_hist_add(&t, 2000000000);
    assert_true(lg_hist_quantile(&t, 0.5) <= 1000000 * (1 + 1.0 / 64));
    assert_true(lg_hist_quantile(&t, 0.999) <= 1000000 * (1 + 1.0 / 64));
    assert_int_equal(lg_hist_quantile(&t, 0.9995), 2000000000);
    /* merge = adding the values to one histogram */
    lg_hist m;
    lg_hist_init(&m);
    lg_hist_merge(&m, &s);
    lg_hist_merge(&m, &one);
    assert_int_equal(m.count, 65);
    assert_int_equal(m.min, 0);
    assert_int_equal(m.max, 123456789);
    assert_int_equal(lg_hist_quantile(&m, 0.5), 32);
}

static void test_acked_spans_reads_partial_success(void **state)
{
    (void)state;
    buf b = BUF_INIT;
    assert_int_equal(otlp_encode_response(OTLP_TRACES, OTLP_PROTOBUF, 0, "", &b), 0);
    assert_int_equal(lg_acked_spans((const uint8_t *)b.data, b.len, 100), 100);
    buf_clear(&b);
    assert_int_equal(otlp_encode_response(OTLP_TRACES, OTLP_PROTOBUF, 7, "bad span id", &b), 0);
    assert_int_equal(lg_acked_spans((const uint8_t *)b.data, b.len, 100), 93);
    assert_int_equal(lg_acked_spans((const uint8_t *)b.data, b.len, 5), -1); /* more rejected than sent */
    assert_int_equal(lg_acked_spans((const uint8_t *)b.data, b.len - 1, 100), -1); /* truncated */
    static const uint8_t junk[] = {0x0a, 0x7f, 0x01};
    assert_int_equal(lg_acked_spans(junk, sizeof junk, 100), -1);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payload_decodes_with_structure),
        cmocka_unit_test(test_payload_rejects_bad_shapes),
        cmocka_unit_test(test_hist_quantiles),
        cmocka_unit_test(test_acked_spans_reads_partial_success),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
