/* Tail sampler: the weight of kept spans (their sample rate attribute and
 * the tracestate threshold), as sw_* computes it and as emitted spans and
 * late spans carry it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp.h"
#include "sampler_testlib.h"
#include "sampler_weight.h"

/* ---- weights ---- */

/* The spec's table ("TraceState: Probability Sampling", 1-in-N at precision 4). */
static void test_weight_thresholds(void **state)
{
    (void)state;
    static const struct {
        double n;
        const char *th;
    } v[] = {{1, "0"},       {2, "8"},         {3, "aaab"},         {4, "c"},           {5, "cccd"},
             {8, "e"},       {10, "e666"},     {16, "f"},           {100, "fd70a"},     {1000, "ffbe77"},
             {10000, "fff9724"}, {100000, "ffff583a"}, {1000000, "ffffef39"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char txt[16];
        sw_th_text(sw_threshold(1.0 / v[i].n), txt);
        if (strcmp(txt, v[i].th) != 0)
            fail_msg("1 in %.0f: th %s, want %s", v[i].n, txt, v[i].th);
        uint64_t th;
        assert_int_equal(sw_th_parse(v[i].th, strlen(v[i].th), &th), 0);
        assert_int_equal(th, sw_threshold(1.0 / v[i].n));
    }
    uint64_t th;
    assert_int_equal(sw_th_parse("g", 1, &th), -1);
    assert_int_equal(sw_th_parse("fffffffffffffff", 15, &th), -1);
    /* tracestate: ot moves first with rv kept and th the product of the
     * probabilities (this stage is independent of the trace's randomness) */
    static const struct {
        const char *in;
        double p, p_attr;
        const char *out;
    } t[] = {
        {"", 0.5, 0, "ot=th:8"},
        {"ot=rv:abcdef01234567", 0.5, 0, "ot=rv:abcdef01234567;th:8"},
        {"ot=th:8", 0.5, 0, "ot=th:c"},
        {"ot=th:c", 1, 0, "ot=th:c"},
        {"vendor=x, ot=th:8;foo:bar", 0.5, 0, "ot=th:c;foo:bar,vendor=x"},
        {"", 0.5, 0.25, "ot=th:e"}, /* no th: an incoming sample-rate attribute of 4 */
        {"ot=th:0", 0.1, 0, "ot=th:e666"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[128];
        size_t n = sw_tracestate(t[i].in, strlen(t[i].in), t[i].p, t[i].p_attr, out);
        assert_true(n != (size_t)-1);
        out[n] = '\0';
        if (strcmp(out, t[i].out) != 0)
            fail_msg("%s at %g: %s, want %s", t[i].in, t[i].p, out, t[i].out);
    }
    char out[64];
    assert_int_equal(sw_tracestate("ot=th:xyz", 9, 0.5, 0, out), (size_t)-1); /* left as it is */
}

/* Kept spans carry SampleRate and th composed with what they came with;
 * other fields untouched. */
static void test_weight_on_spans(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, sample_rate_attribute: true, trace_state_threshold: true,"
                    " policies: [{name: det, type: deterministic, sample_rate: 4}, {name: slow, type: latency,"
                    " threshold_ms: 100}]}");
    size_t kept_fast = 0;
    for (uint64_t n = 1; n <= 400; n++) {
        span_t *sp = sp_new(n, 1, 0, T0, T0 + (n % 2 ? 200 * MS : MS), -1); /* odd ids slow */
        attr_int(sp, "sampleRate", 3); /* head-sampled 1 in 3 upstream */
        attr_str(sp, "keep", "me");
        sp->trace_state = "ot=th:8,vendor=v";
        add(s, req_new("svc", "lib", &sp, 1), T0, NULL);
    }
    tick(s, T0 + SEC);
    for (size_t i = 0; i < E.n; i++) {
        if (E.ids[i] % 2) { /* slow: kept with certainty, the incoming weight stays */
            assert_int_equal(E.rates[i], 3);
            assert_string_equal(E.ts[i], "ot=th:8,vendor=v");
        } else {
            kept_fast++;
            assert_int_equal(E.rates[i], 12); /* 3 x 4 */
            assert_string_equal(E.ts[i], "ot=th:e,vendor=v"); /* 1/2 x 1/4 */
        }
    }
    assert_int_equal(E.n - kept_fast, 200);
    assert_true(kept_fast > 25 && kept_fast < 75); /* 50 expected */
    const span_t *sp = E.last->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(sp->n_attributes, 2); /* sampleRate replaced, keep untouched */
    assert_string_equal(sp->attributes[0]->key, "keep");
    assert_string_equal(sp->attributes[1]->key, "SampleRate");
    sampler_free(s);
}

/* record_policy on a composite's decision also names its sub-policy, and
 * the weight is that sub-policy's (probabilistic 50%: 2). */
static void test_weight_composite(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, record_policy: true, sample_rate_attribute: true, policies: [{name: c,"
                    " type: composite, max_total_spans_per_second: 100000, policies: [{name: errors, type:"
                    " status_code, status_codes: [ERROR]}, {name: half, type: probabilistic, sampling_percentage: 50}],"
                    " rate_allocation: [{policy: errors, percent: 50}, {policy: half, percent: 50}]}]}");
    add_trace(s, 1, MS, 2, T0); /* error: the first sub-policy */
    tick(s, T0 + SEC);
    assert_int_equal(E.n, 1);
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = E.last->resource_spans[0]->scope_spans[0]->scope;
    assert_int_equal(sc->n_attributes, 2);
    assert_string_equal(sc->attributes[0]->key, "tailsampling.policy");
    assert_string_equal(sc->attributes[0]->value->string_value, "c");
    assert_string_equal(sc->attributes[1]->key, "tailsampling.composite_policy");
    assert_string_equal(sc->attributes[1]->value->string_value, "errors");
    assert_int_equal(E.rates[0], 1);
    E.n = 0;
    for (uint64_t n = 10; n < 200 && E.n == 0; n++) { /* until one passes the 50% */
        add_trace(s, n, MS, 1, T0 + 2 * SEC);
        tick(s, T0 + 3 * SEC);
    }
    assert_int_equal(E.n, 1);
    sc = E.last->resource_spans[0]->scope_spans[0]->scope;
    assert_string_equal(sc->attributes[1]->value->string_value, "half");
    assert_int_equal(E.rates[0], 2);
    sampler_free(s);
}
/* A late span of a kept trace carries the trace's weight too (the rate is
 * remembered with the decision). */
static void test_weight_late_spans(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, sample_rate_attribute: true, trace_state_threshold: true,"
                    " policies: [{name: det, type: deterministic, sample_rate: 4}]}");
    for (uint64_t n = 1; n <= 40; n++)
        add_trace(s, n, MS, -1, T0);
    tick(s, T0 + SEC);
    assert_true(E.n > 0);
    uint64_t kept = E.ids[0];
    assert_int_equal(E.rates[0], 4);
    buf late = BUF_INIT;
    span_t *l = sp_new(kept, 9, 1, T0, T0 + 1, -1);
    assert_int_equal(add(s, req_new("svc", "lib", &l, 1), T0 + 2 * SEC, &late), 0);
    otlp_request out;
    char err[160];
    assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, (const uint8_t *)late.data, late.len, E.a, &out, err,
                                 sizeof(err)),
                     0);
    const span_t *sp = ((const req_t *)out.msg)->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(sp->span_id.data[7], 9);
    assert_int_equal(sp->n_attributes, 1);
    assert_string_equal(sp->attributes[0]->key, "SampleRate");
    assert_int_equal(sp->attributes[0]->value->int_value, 4);
    assert_string_equal(sp->trace_state, "ot=th:c");
    buf_free(&late);
    sampler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_weight_thresholds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weight_on_spans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weight_composite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weight_late_spans, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
