/* Tail sampler compatibility with the OpenTelemetry Collector's
 * tailsamplingprocessor: its config shape (`tail_sampling:`), its decisions
 * (the cases of its own tests, carried over as tables: trace ids,
 * attributes and expected decisions), the policy types and options it has,
 * and a differential test: the same generated traces through a flat config
 * and its Collector-shaped twin give identical decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sampler_policy.h"
#include "sampler_testlib.h"

/* A one-span root trace with this trace id (32 hex digits). */
static span_t *sp_hex(const char *hex)
{
    span_t *s = sp_new(1, 1, 0, T0, T0 + 1, -1);
    for (int i = 0; i < 16; i++) {
        unsigned b;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
        s->trace_id.data[i] = (uint8_t)b;
    }
    return s;
}

static void add_span(sampler *s, span_t *sp, uint64_t now) { add(s, req_new("svc", "lib", &sp, 1), now, NULL); }

/* Decide everything now: was anything emitted? (E is reset.) */
static int kept(sampler *s, uint64_t now)
{
    E.n = 0;
    flush(s, now);
    return E.n != 0;
}

/* ---- probabilistic: the Collector's hash and threshold ---- */

/* Thresholds from an independent reference (exact rational arithmetic:
 * (2^64 - 1) x ratio rounded to 64 significant bits, then truncated). */
static void test_prob_threshold(void **state)
{
    (void)state;
    static const struct {
        double pct;
        uint64_t th;
    } cases[] = {
        {0.1, 0x004189374bc6a7efULL}, {1, 0x028f5c28f5c28f5fULL},       {10, 0x19999999999999ffULL},
        {25, 0x3fffffffffffffffULL},  {33, 0x547ae147ae147bffULL},      {50, 0x7fffffffffffffffULL},
        {99.9, 0xffbe76c8b4395fffULL}, {12.345, 0x1f9a6b50b0f27bffULL}, {0, 0},
        {100, UINT64_MAX},            {150, UINT64_MAX},                {-50, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(sp_prob_threshold(cases[i].pct / 100), cases[i].th);
}

/* Trace ids and decisions from the same reference: FNV-1a 64 over the salt
 * ("default-hash-seed" when unset) then the 16 id bytes, sampled when the
 * hash is at most the threshold. Both config shapes. */
static void test_prob_vectors(void **state)
{
    (void)state;
    static const struct {
        double pct;
        const char *salt, *id;
        int sampled;
    } cases[] = {
        {33.0, "", "3a34ce6380fc0bc5c05a677850dc981a", 0},          /* hash 0xffa21271eea4f67b */
        {33.0, "", "9e32cdf7948370bda7765f796f00bbef", 1},          /* hash 0x303e7d87db80c823 */
        {33.0, "", "bbbb23fe6921fe525bf0c31cacf1e17f", 0},          /* hash 0xc184988332b0495b */
        {33.0, "test-salt", "579593114410e0480a29f5fe3df351f0", 0}, /* hash 0xe81690ab75061a37 */
        {33.0, "test-salt", "1b4897e079059ad22d9cd179c9e412e1", 0}, /* hash 0x6d6895310d34e895 */
        {0.1, "", "fa6c784c6c59c00f6bb8c0b28140b75f", 0},           /* hash 0x19fcfc5087ec14c7 */
        {50.0, "layer-2", "ec7c99144be2ac0652af400deb7b9dae", 0},   /* hash 0xcd0d3ba64d54bcca */
        {50.0, "layer-2", "16fda58f4606377c1f2b3b8ec35c9e73", 1},   /* hash 0x2604acb2ec3afaa8 */
        {99.9, "", "568c3abe507f99c9fbb94b9c5aa35f85", 1},          /* hash 0x312198e74bf9e73c */
        {99.9, "", "afdd7f640cfb314788e410d77db44e58", 1},          /* hash 0x9acb084712d5b531 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int shape = 0; shape < 2; shape++) {
            char node[512];
            if (shape == 0)
                snprintf(node, sizeof(node),
                         "{policies: [{name: p, type: probabilistic, sampling_percentage: %g, hash_salt: '%s'}]}",
                         cases[i].pct, cases[i].salt);
            else
                snprintf(node, sizeof(node),
                         "{tail_sampling: {policies: [{name: p, type: probabilistic, probabilistic: "
                         "{sampling_percentage: %g, hash_salt: '%s'}}]}}",
                         cases[i].pct, cases[i].salt);
            sampler *s = mk(node);
            add_span(s, sp_hex(cases[i].id), T0);
            if (kept(s, T0) != cases[i].sampled)
                fail_msg("case %zu (%s shape): expected %d", i, shape ? "Collector" : "flat", cases[i].sampled);
            sampler_free(s);
        }
    }
}

/* The Collector's TestProbabilisticSampling table: the kept share over
 * 100000 random trace ids is near the expected one (0.6 points: 4 standard
 * deviations at 33%; the Collector's 0.2 holds for its own seed only); its
 * shape takes -50 (none) and 150 (all). */
static void test_prob_rates(void **state)
{
    (void)state;
    static const struct {
        double pct;
        const char *salt;
        double expect;
    } cases[] = {{100, "", 100}, {0, "", 0}, {25, "", 25}, {33, "", 33}, {33, "test-salt", 33}, {-50, "", 0},
                 {150, "", 100}};
    enum { N = 100000 };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char node[256];
        snprintf(node, sizeof(node),
                 "{tail_sampling: {decision_cache: {sampled_cache_size: 0, non_sampled_cache_size: 0}, policies: "
                 "[{name: p, type: probabilistic, probabilistic: {sampling_percentage: %g, hash_salt: '%s'}}]}}",
                 cases[i].pct, cases[i].salt);
        sampler *s = mk(node);
        size_t n = 0;
        E.n = 0;
        for (size_t k = 0; k < N; k++) {
            span_t *sp = sp_new(1, 1, 0, T0, T0 + 1, -1);
            uint64_t a = rnd(), b = rnd();
            for (int j = 0; j < 8; j++) {
                sp->trace_id.data[j] = (uint8_t)(a >> (56 - 8 * j));
                sp->trace_id.data[8 + j] = (uint8_t)(b >> (56 - 8 * j));
            }
            add_span(s, sp, T0);
            if (k % 2000 == 1999) {
                flush(s, T0);
                n += E.n;
                E.n = 0;
                arena_reset(A);
                arena_reset(E.a);
            }
        }
        double got = 100.0 * (double)n / N;
        if (got < cases[i].expect - 0.6 || got > cases[i].expect + 0.6)
            fail_msg("probabilistic %g%%: kept %.3f%%", cases[i].pct, got);
        sampler_free(s);
    }
}

/* ---- latency, trace_state, trace_flags ---- */

/* TestEvaluate_Latency: threshold 5000 ms. */
static void test_latency_cases(void **state)
{
    (void)state;
    sampler *s = mk("{tail_sampling: {policies: [{name: l, type: latency, latency: {threshold_ms: 5000}}]}}");
    add_trace(s, 1, 4500 * MS, -1, T0);
    assert_false(kept(s, T0)); /* shorter than the threshold */
    add_trace(s, 2, 5000 * MS, -1, T0);
    assert_true(kept(s, T0)); /* equal to it */
    span_t *a = sp_new(3, 1, 0, T0, T0 + 3000 * MS, -1), *b = sp_new(3, 2, 1, T0 + 2500 * MS, T0 + 5500 * MS, -1);
    span_t *two[] = {a, b};
    add(s, req_new("svc", "lib", two, 2), T0, NULL);
    assert_true(kept(s, T0)); /* every span shorter, the trace longer */
    sampler_free(s);

    /* With an upper bound the Collector checks the duration after each
     * span in arrival order: once inside the window, sampled, even when a
     * later span takes the trace past it; a first span already past it is
     * never inside. */
    s = mk("{tail_sampling: {policies: [{name: l, type: latency, latency: {threshold_ms: 500,"
           " upper_threshold_ms: 1000}}]}}");
    span_t *in = sp_new(4, 1, 0, T0, T0 + 600 * MS, -1), *past = sp_new(4, 2, 1, T0, T0 + 2000 * MS, -1);
    span_t *in_then_past[] = {in, past};
    add(s, req_new("svc", "lib", in_then_past, 2), T0, NULL);
    assert_true(kept(s, T0));
    in = sp_new(5, 1, 0, T0, T0 + 600 * MS, -1);
    past = sp_new(5, 2, 1, T0, T0 + 2000 * MS, -1);
    span_t *past_then_in[] = {past, in};
    add(s, req_new("svc", "lib", past_then_in, 2), T0, NULL);
    assert_false(kept(s, T0));
    add_span(s, sp_new(6, 1, 0, T0, T0 + 600 * MS, -1), T0); /* in two requests */
    add_span(s, sp_new(6, 2, 1, T0, T0 + 5000 * MS, -1), T0);
    assert_true(kept(s, T0));
    sampler_free(s);
}

static span_t *sp_state(uint64_t trace, const char *ts)
{
    span_t *sp = sp_new(trace, 1, 0, T0, T0 + 1, -1);
    sp->trace_state = arena_strndup(A, ts, strlen(ts));
    return sp;
}

/* TestTraceStateFilter, plus W3C validity (an invalid list matches nothing,
 * as Go's ParseTraceState refuses it). */
static void test_trace_state(void **state)
{
    (void)state;
    static const struct {
        const char *ts, *values;
        int sampled;
    } cases[] = {
        {"non_matching=value", "[value]", 0},
        {"example=non_matching", "[value]", 0},
        {"example=value", "[value]", 1},
        {"example=value", "[]", 0},
        {"example=non_matching,non_matching=value", "[value]", 0},
        {"example=value,non_matching=value", "[value]", 1},
        {"example=non_matching", "[value1, value2]", 0},
        {"example=value1", "[value1, value2]", 1},
        {" example=value1 ,other=x", "[value1]", 1},        /* optional white space */
        {"other=x,,example=value1", "[value1]", 1},         /* empty members are skipped */
        {"example=value1,example=value1", "[value1]", 0},   /* duplicate key: invalid */
        {"Example=value1,example=value1", "[value1]", 0},   /* upper case key: invalid */
        {"example=val=ue1", "[value1]", 0},                 /* '=' in a value: invalid */
        {"t@sys=a,example=value1", "[value1]", 1},          /* multi-tenant key */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char node[256];
        snprintf(node, sizeof(node),
                 "{tail_sampling: {policies: [{name: ts, type: trace_state, trace_state: {key: example, values: %s}}]}}",
                 cases[i].values);
        sampler *s = mk(node);
        add_span(s, sp_state(1, cases[i].ts), T0);
        if (kept(s, T0) != cases[i].sampled)
            fail_msg("trace_state \"%s\" with values %s: expected %d", cases[i].ts, cases[i].values, cases[i].sampled);
        sampler_free(s);
    }
    size_t vlen = 0;
    assert_null(sp_tracestate_get("a=1,b=2", "c", &vlen));
    assert_string_equal(sp_tracestate_get("a=1,b=2 ", "b", &vlen), "2 ");
    assert_int_equal(vlen, 1);
}

/* trace_flags: any span with the W3C sampled flag (bit 0 of Span.flags). */
static void test_trace_flags(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: f, type: trace_flags}]}");
    static const uint32_t flags[] = {0, 1, 0x101, 0x100, 0x300};
    static const int want[] = {0, 1, 1, 0, 0};
    for (size_t i = 0; i < 5; i++) {
        span_t *a = sp_new(i + 1, 1, 0, T0, T0 + 1, -1), *b = sp_new(i + 1, 2, 1, T0, T0 + 1, -1);
        b->flags = flags[i];
        span_t *two[] = {a, b};
        add(s, req_new("svc", "lib", two, 2), T0, NULL);
        assert_int_equal(kept(s, T0), want[i]);
    }
    sampler_free(s);
}

/* ---- attribute verdicts ---- */

enum { V_S, V_NOT, V_INV_S, V_INV_NOT };

/* A policy's verdict, told apart by how it combines: alone, beside a
 * not-sampled policy and beside always_sample, a trace is kept
 * (sampled: 1 1 1; not sampled: 0 0 1; inverted sampled: 1 0 1; inverted
 * not sampled: 0 0 0). node/span: a resource / span string attribute. */
static int verdict(const char *policy, const char *node_key, const char *node_val, const char *span_key,
                   const char *span_val)
{
    static const char *const beside[] = {"", ", {name: no, type: span_count, span_count: {min_spans: 99}}",
                                         ", {name: all, type: always_sample}"};
    int sig = 0;
    for (int b = 0; b < 3; b++) {
        char node[1024];
        snprintf(node, sizeof(node), "{tail_sampling: {policies: [{name: p, type: string_attribute, string_attribute: %s}%s]}}",
                 policy, beside[b]);
        sampler *s = mk(node);
        span_t *sp = sp_new(1, 1, 0, T0, T0 + 1, -1);
        if (span_key != NULL)
            attr_str(sp, span_key, span_val);
        req_t *r = req_new("svc", "lib", &sp, 1);
        if (node_key != NULL) {
            kv_t *kv = kv_new(node_key);
            kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            kv->value->string_value = arena_strndup(A, node_val, strlen(node_val));
            push_kv(&r->resource_spans[0]->resource->attributes, &r->resource_spans[0]->resource->n_attributes, kv);
        }
        add(s, r, T0, NULL);
        sig = sig << 1 | kept(s, T0);
        sampler_free(s);
    }
    switch (sig) {
    case 7: return V_S;
    case 1: return V_NOT;
    case 5: return V_INV_S;
    case 0: return V_INV_NOT;
    }
    fail_msg("%s: verdict signature %d", policy, sig);
    return -1;
}

/* TestStringTagFilter's table. */
static void test_string_attribute_cases(void **state)
{
    (void)state;
    static const struct {
        const char *policy, *nk, *nv, *sk, *sv;
        int want;
    } cases[] = {
        {"{key: example, values: [value]}", "non_matching", "value", NULL, NULL, V_NOT},
        {"{key: example, values: [value]}", "example", "non_matching", NULL, NULL, V_NOT},
        {"{key: example, values: [value]}", "example", "value", NULL, NULL, V_S},
        {"{key: example, values: [value]}", NULL, NULL, "nonmatching", "value", V_NOT},
        {"{key: example, values: [value]}", NULL, NULL, "example", "nonmatching", V_NOT},
        {"{key: example, values: [value]}", NULL, NULL, "example", "value", V_S},
        {"{key: example, values: ['v[0-9]+.HealthCheck$'], enabled_regex_matching: true}", NULL, NULL, "example",
         "grpc.health.v1.HealthCheck", V_S},
        {"{key: example, values: ['v[a-z]+.HealthCheck$'], enabled_regex_matching: true}", NULL, NULL, "example",
         "grpc.health.v1.HealthCheck", V_NOT},
        {"{key: example, values: [value], enabled_regex_matching: true}", "example", "value", NULL, NULL, V_S},
        {"{key: example, values: [], enabled_regex_matching: true}", NULL, NULL, "example",
         "grpc.health.v1.HealthCheck", V_NOT},
        {"{key: example, values: [value], invert_match: true}", "non_matching", "value", NULL, NULL, V_INV_S},
        {"{key: example, values: [value], invert_match: true}", "example", "non_matching", NULL, NULL, V_INV_S},
        {"{key: example, values: [first_value, value, last_value], invert_match: true}", "example", "non_matching",
         NULL, NULL, V_INV_S},
        {"{key: example, values: [value], invert_match: true}", "example", "value", NULL, NULL, V_INV_NOT},
        {"{key: example, values: [first_value, value, last_value], invert_match: true}", "example", "value", NULL,
         NULL, V_INV_NOT},
        {"{key: example, values: [value], invert_match: true}", NULL, NULL, "nonmatching", "value", V_INV_S},
        {"{key: example, values: [value], invert_match: true}", NULL, NULL, "example", "nonmatching", V_INV_S},
        {"{key: example, values: [value], invert_match: true}", NULL, NULL, "example", "value", V_INV_NOT},
        {"{key: example, values: ['v[0-9]+.HealthCheck$'], enabled_regex_matching: true, invert_match: true}", NULL,
         NULL, "example", "grpc.health.v1.HealthCheck", V_INV_NOT},
        {"{key: example, values: ['^http', 'v[0-9]+.HealthCheck$', 'metrics$'], enabled_regex_matching: true,"
         " invert_match: true}",
         NULL, NULL, "example", "grpc.health.v1.HealthCheck", V_INV_NOT},
        {"{key: example, values: ['v[a-z]+.HealthCheck$'], enabled_regex_matching: true, invert_match: true}", NULL,
         NULL, "example", "grpc.health.v1.HealthCheck", V_INV_S},
        {"{key: example, values: [value], enabled_regex_matching: true, invert_match: true}", "example", "value",
         NULL, NULL, V_INV_NOT},
        {"{key: example, values: [], enabled_regex_matching: true, invert_match: true}", NULL, NULL, "example",
         "grpc.health.v1.HealthCheck", V_INV_S},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = verdict(cases[i].policy, cases[i].nk, cases[i].nv, cases[i].sk, cases[i].sv);
        if (got != cases[i].want)
            fail_msg("case %zu %s: verdict %d, want %d", i, cases[i].policy, got, cases[i].want);
    }
}

/* ---- composite ---- */

static void add_tag(sampler *s, uint64_t trace, const char *key, int64_t v, uint64_t now)
{
    span_t *sp = sp_new(trace, 1, 0, T0, T0 + 1, -1);
    if (key != NULL)
        attr_int(sp, key, v);
    add_span(s, sp, now);
}

/* composite_test.go's cases, each sub-policy's spans/s given through
 * rate_allocation (percent of max_total_spans_per_second, truncated). */
static void test_composite_cases(void **state)
{
    (void)state;
    /* NotSampled: neither numeric filter matches a trace without the tag. */
    sampler *s = mk("{policies: [{name: c, type: composite, max_total_spans_per_second: 1000, policies: ["
                    "{name: n1, type: numeric_attribute, key: tag, min_value: 0, max_value: 100},"
                    "{name: n2, type: numeric_attribute, key: tag, min_value: 200, max_value: 300}],"
                    " rate_allocation: [{policy: n1, percent: 10}, {policy: n2, percent: 10}]}]}");
    add_tag(s, 1, NULL, 0, T0);
    assert_false(kept(s, T0));
    sampler_free(s);

    /* OverflowAlwaysSampled: total 3, one span/s each. */
    s = mk("{policies: [{name: c, type: composite, max_total_spans_per_second: 3, policies: ["
           "{name: n1, type: numeric_attribute, key: tag, min_value: 0, max_value: 100},"
           "{name: n2, type: always_sample}],"
           " rate_allocation: [{policy: n1, percent: 34}, {policy: n2, percent: 34}]}]}");
    add_tag(s, 1, "tag", 10, T0);
    assert_true(kept(s, T0));
    add_tag(s, 2, "tag", 11, T0);
    assert_false(kept(s, T0)); /* n1 matches but its second is spent: not n2 either */
    add_tag(s, 3, "tag", 1001, T0);
    assert_true(kept(s, T0)); /* n1 does not match: n2 has room */
    sampler_free(s);

    /* Sampled_AlwaysSampled (total 10, 20 each: ten one-span traces), and
     * InverseSampled_AlwaysSampled (the second matches through invert). */
    static const char *const all_ten[] = {
        "{policies: [{name: c, type: composite, max_total_spans_per_second: 10, policies: ["
        "{name: n1, type: numeric_attribute, key: tag, min_value: 0, max_value: 100},"
        "{name: n2, type: always_sample}],"
        " rate_allocation: [{policy: n1, percent: 100}, {policy: n2, percent: 100}]}]}",
        "{policies: [{name: c, type: composite, max_total_spans_per_second: 10, policies: ["
        "{name: n1, type: string_attribute, key: tag, values: [foo]},"
        "{name: n2, type: string_attribute, key: tag, values: [foo], invert_match: true}],"
        " rate_allocation: [{policy: n1, percent: 100}, {policy: n2, percent: 100}]}]}",
    };
    for (size_t c = 0; c < 2; c++) {
        s = mk(all_ten[c]);
        for (uint64_t i = 1; i <= 10; i++) {
            add_tag(s, i, NULL, 0, T0);
            assert_true(kept(s, T0));
        }
        sampler_free(s);
    }

    /* Throttling: one sub-policy with all 10 spans/s; a new second refills.
     * 2SubpolicyThrottling: 5 each, the always one spends its 5. */
    for (int subs = 1; subs <= 2; subs++) {
        s = mk(subs == 1 ? "{policies: [{name: c, type: composite, max_total_spans_per_second: 10,"
                           " policies: [{name: n1, type: always_sample}], rate_allocation: [{policy: n1, percent: 100}]}]}"
                         : "{policies: [{name: c, type: composite, max_total_spans_per_second: 10, policies: ["
                           "{name: n1, type: numeric_attribute, key: tag, min_value: 0, max_value: 100},"
                           "{name: n2, type: always_sample}],"
                           " rate_allocation: [{policy: n1, percent: 50}, {policy: n2, percent: 50}]}]}");
        uint64_t budget = subs == 1 ? 10 : 5, id = 1;
        for (uint64_t sec = 0; sec < 2; sec++) {
            for (uint64_t i = 0; i < budget; i++) {
                add_tag(s, id++, NULL, 0, T0);
                assert_true(kept(s, T0 + sec * SEC));
            }
            for (uint64_t i = 0; i < 2 * budget; i++) {
                add_tag(s, id++, NULL, 0, T0);
                assert_false(kept(s, T0 + sec * SEC + 500 * MS));
            }
        }
        sampler_free(s);
    }

    /* composite_helper_test: a percent of 0 is an equal share (total / the
     * number of sub-policies: 1000 / 3); a sub-policy without an allocation
     * gets nothing. */
    s = mk("{tail_sampling: {policies: [{name: c, type: composite, composite: {max_total_spans_per_second: 1000,"
           " policy_order: [a], composite_sub_policy: [{name: a, type: latency, latency: {threshold_ms: 1000}},"
           " {name: b, type: always_sample}, {name: u, type: always_sample}],"
           " rate_allocation: [{policy: a, percent: 25}, {policy: b, percent: 0}]}}]}}");
    uint64_t id = 1;
    size_t n = 0;
    for (uint64_t i = 0; i < 700; i++) {
        add_trace(s, id++, 2 * SEC, -1, T0); /* slow: a, 250 */
        add_trace(s, id++, MS, -1, T0);      /* fast: b, 333; never u */
    }
    E.n = 0;
    flush(s, T0);
    n = E.n;
    assert_int_equal(n, 250 + 333);
    sampler_free(s);
}

/* ---- how verdicts combine (the Collector's decision rules) ---- */

static void test_decision_rules(void **state)
{
    (void)state;
    static const struct {
        const char *policies, *note;
        int sampled;
    } cases[] = {
        {"[{name: inv, type: string_attribute, key: k, values: [x], invert_match: true}]", "invert, matching: veto", 0},
        {"[{name: inv, type: string_attribute, key: k, values: [y], invert_match: true}]", "invert, not matching", 1},
        {"[{name: inv, type: string_attribute, key: k, values: [y], invert_match: true},"
         " {name: n, type: numeric_attribute, key: num, min_value: 1}]",
         "inverted sample needs no plain not-sampled", 0},
        {"[{name: all, type: always_sample}, {name: inv, type: string_attribute, key: k, values: [x], invert_match: true}]",
         "an invert veto beats a sample", 0},
        {"[{name: inv, type: string_attribute, key: k, values: [y], invert_match: true}, {name: all, type: always_sample}]",
         "sample and inverted sample", 1},
        {"[{name: all, type: always_sample}, {name: d, type: drop, policies: [{name: x, type: string_attribute, key: k,"
         " values: [x]}]}]",
         "drop wins", 0},
        {"[{name: d, type: drop, policies: [{name: x, type: string_attribute, key: k, values: [z]}]},"
         " {name: inv, type: string_attribute, key: k, values: [y], invert_match: true}]",
         "an unmatched drop says not-sampled, so an inverted sample does not keep", 0},
        {"[{name: nt, type: not, policy: {name: all, type: always_sample}}]", "not sampled", 0},
        {"[{name: nt, type: not, policy: {name: n, type: numeric_attribute, key: num, min_value: 1}}]",
         "not not-sampled", 1},
        {"[{name: nt, type: not, policy: {name: inv, type: string_attribute, key: k, values: [x], invert_match: true}}]",
         "not passes an invert verdict through", 0},
        {"[{name: a, type: and, policies: [{name: all, type: always_sample},"
         " {name: inv, type: string_attribute, key: k, values: [y], invert_match: true}]}]",
         "and of sample and inverted sample", 1},
        {"[{name: a, type: and, policies: [{name: all, type: always_sample},"
         " {name: inv, type: string_attribute, key: k, values: [x], invert_match: true}]}]",
         "and with an invert veto", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char node[1024];
        snprintf(node, sizeof(node), "{policies: %s}", cases[i].policies);
        sampler *s = mk(node);
        span_t *sp = sp_new(1, 1, 0, T0, T0 + 1, -1);
        attr_str(sp, "k", "x");
        add_span(s, sp, T0);
        if (kept(s, T0) != cases[i].sampled)
            fail_msg("%s: expected %d", cases[i].note, cases[i].sampled);
        sampler_free(s);
    }
}

/* sample_on_first_match stops at the first policy that samples: later
 * policies are not evaluated (an invert veto after it no longer counts,
 * rate budgets after it are not spent). */
static void test_first_match(void **state)
{
    (void)state;
    const char *pol = "[{name: all, type: always_sample},"
                      " {name: inv, type: string_attribute, key: k, values: [x], invert_match: true},"
                      " {name: rl, type: rate_limiting, spans_per_second: 1}]";
    char node[512];
    for (int fm = 0; fm < 2; fm++) {
        snprintf(node, sizeof(node), "{sample_on_first_match: %s, policies: %s}", fm ? "true" : "false", pol);
        sampler *s = mk(node);
        span_t *sp = sp_new(1, 1, 0, T0, T0 + 1, -1);
        attr_str(sp, "k", "x");
        add_span(s, sp, T0);
        assert_int_equal(kept(s, T0), fm);
        uint64_t smp, not;
        assert_string_equal(sampler_policy_stats(s, 2, &smp, &not, NULL), "rl");
        assert_int_equal(smp + not, fm ? 0 : 1);
        sampler_free(s);
    }
}

/* ---- the Collector's config shape ---- */

/* The README's example, pasted. */
static const char *const readme_block =
    "{tail_sampling: {decision_wait: 10s, num_traces: 100, expected_new_traces_per_sec: 10,"
    " decision_cache: {sampled_cache_size: 100000, non_sampled_cache_size: 100000}, policies: ["
    "{name: test-policy-1, type: always_sample},"
    "{name: test-policy-2, type: latency, latency: {threshold_ms: 5000, upper_threshold_ms: 10000}},"
    "{name: test-policy-3, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}},"
    "{name: test-policy-4, type: probabilistic, probabilistic: {sampling_percentage: 10}},"
    "{name: test-policy-5, type: status_code, status_code: {status_codes: [ERROR, UNSET]}},"
    "{name: test-policy-6, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}},"
    "{name: test-policy-7, type: string_attribute, string_attribute: {key: key2, values: [value1, val*],"
    " enabled_regex_matching: true, cache_max_size: 10}},"
    "{name: test-policy-8, type: rate_limiting, rate_limiting: {spans_per_second: 35}},"
    "{name: test-policy-9, type: span_count, span_count: {min_spans: 2, max_spans: 20}},"
    "{name: test-policy-10, type: trace_state, trace_state: {key: key3, values: [value1, value2]}},"
    "{name: test-policy-11, type: boolean_attribute, boolean_attribute: {key: key4, value: true}},"
    "{name: test-policy-12, type: ottl_condition, ottl_condition: {error_mode: ignore, span: [\"attributes[\\\"test_attr_key_1\\\"] == \\\"test_attr_val_1\\\"\", \"attributes[\\\"test_attr_key_2\\\"] != \\\"test_attr_val_1\\\"\"], spanevent: [\"name != \\\"test_span_event_name\\\"\", \"attributes[\\\"test_event_attr_key_2\\\"] != \\\"test_event_attr_val_1\\\"\"]}},"
    "{name: and-policy-1, type: and, and: {and_sub_policy: ["
    " {name: test-and-policy-1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}},"
    " {name: test-and-policy-2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}}]}},"
    "{name: drop-policy-1, type: drop, drop: {drop_sub_policy: ["
    " {name: test-drop-policy-1, type: string_attribute, string_attribute: {key: url.path, values: [/health, /metrics],"
    " enabled_regex_matching: true}}]}},"
    "{name: not-policy-1, type: not, not: {not_sub_policy: {name: n, type: trace_flags}}},"
    "{name: bytes-1, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1000, burst_capacity: 5000}},"
    "{name: composite-policy-1, type: composite, composite: {max_total_spans_per_second: 1000,"
    " policy_order: [test-composite-policy-1, test-composite-policy-2, test-composite-policy-3],"
    " composite_sub_policy: ["
    " {name: test-composite-policy-1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50}},"
    " {name: test-composite-policy-2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}},"
    " {name: test-composite-policy-3, type: always_sample}],"
    " rate_allocation: [{policy: test-composite-policy-1, percent: 50}, {policy: test-composite-policy-2, percent: 25}]}}"
    "]}}";

static void test_upstream_config(void **state)
{
    (void)state;
    sampler *s = mk(readme_block);
    assert_int_equal(sampler_policy_count(s), 17);
    add_trace(s, 1, MS, -1, T0);
    assert_true(kept(s, T0));
    sampler_free(s);

    /* Located errors: unknown keys at every level, another type's block,
     * a missing block, keys without meaning here. */
    static const struct {
        const char *node, *err;
    } bad[] = {
        {"{tail_sampling: {decision_wait: 10s, bogus: 1, policies: [{name: a, type: always_sample}]}}",
         "gw.yaml:7:45: backends.x.s.tail_sampling.bogus: unknown key (expected one of: decision_wait, num_traces, "
         "expected_new_traces_per_sec, policies, decision_cache, sample_on_first_match, "
         "decision_wait_after_root_received, block_on_overflow, maximum_trace_size_bytes, sampling_strategy)"},
        {"{tail_sampling: {policies: [{name: l, type: latency, latency: {threshold_ms: 5, upper: 9}}]}}",
         "tail_sampling.policies[0].latency.upper: unknown key"},
        {"{tail_sampling: {policies: [{name: l, type: latency, latency: {threshold_ms: 5}, probabilistic: "
         "{sampling_percentage: 5}}]}}",
         "policies[0].probabilistic: probabilistic settings on a policy of type latency (the Collector ignores "
         "them; remove them or fix the type)"},
        {"{tail_sampling: {policies: [{name: l, type: latency}]}}",
         "policies[0].latency: required key is missing (the latency policy's settings)"},
        {"{tail_sampling: {policies: [{name: l, type: latency, threshold_ms: 5}]}}",
         "policies[0].threshold_ms: unknown key (expected one of: name, type, latency)"},
        {"{tail_sampling: {num_shards: 4, policies: [{name: a, type: always_sample}]}}",
         "tail_sampling.num_shards: not supported: the gateway keeps one sampler shard per worker thread"},
        {"{tail_sampling: {sampling_strategy: span-ingest, policies: [{name: a, type: always_sample}]}}",
         "tail_sampling.sampling_strategy"},
        {"{tail_sampling: {decision_cache: {sampled_cache_size: 5, size: 1}, policies: [{name: a, type: always_sample}]}}",
         "decision_cache.size: unknown key"},
        {"{tail_sampling: {policies: [{name: a, type: and, and: {policies: [{name: x, type: always_sample}]}}]}}",
         "policies[0].and.policies: unknown key (expected one of: and_sub_policy)"},
        {"{tail_sampling: {policies: [{name: a, type: and, and: {and_sub_policy: [{name: x, type: latency,"
         " latency: {threshold_ms: 1}, bogus: 2}]}}]}}",
         "and.and_sub_policy[0].bogus: unknown key"},
        {"{decision_wait: 5s, tail_sampling: {policies: [{name: a, type: always_sample}]}}",
         "backends.x.s.decision_wait: unknown key (expected one of: tail_sampling, max_bytes, record_policy, "
         "max_trace_spans, quiet_after, sample_rate_attribute, trace_state_threshold)"},
        {"{tail_sampling: {policies: [{name: n, type: numeric_attribute, numeric_attribute: {key: k, min_value: 0}}]}}",
         "min_value or max_value is required (0 means unset)"},
        {"{tail_sampling: {policies: [{name: n, type: not, not: {not_sub_policy: [{name: x, type: always_sample}]}}]}}",
         "not.not_sub_policy: expected one policy (a mapping)"},
        /* ottl_condition and RE2 string_attribute: their settings in their block, located there. */
        {"{tail_sampling: {policies: [{name: o, type: ottl_condition, ottl_condition: {error_mode: ignore, span:"
         " [name == \"x\", kind = 2]}}]}}",
         "gw.yaml:7:125: backends.x.s.tail_sampling.policies[0].ottl_condition.span[1]: invalid OTTL condition "
         "\"kind = 2\": column 6: unexpected \"=\""},
        {"{tail_sampling: {policies: [{name: o, type: ottl_condition, ottl_condition: {spanevent: ['kind == 2']}}]}}",
         "policies[0].ottl_condition.spanevent[0]: invalid OTTL condition \"kind == 2\": column 1: unknown path"},
        {"{tail_sampling: {policies: [{name: o, type: ottl_condition, ottl_condition: {error_mode: loud, span: [true]}}]}}",
         "policies[0].ottl_condition.error_mode:"},
        {"{tail_sampling: {policies: [{name: o, type: ottl_condition, ottl_condition: {span: [true], bogus: 1}}]}}",
         "policies[0].ottl_condition.bogus: unknown key (expected one of: error_mode, span, spanevent)"},
        {"{tail_sampling: {policies: [{name: o, type: ottl_condition, ottl_condition: {error_mode: ignore}}]}}",
         "policies[0].ottl_condition.span: expected at least one OTTL condition in span or spanevent"},
        {"{tail_sampling: {policies: [{name: o, type: ottl_condition}]}}",
         "policies[0].ottl_condition: required key is missing (the ottl_condition policy's settings)"},
        {"{tail_sampling: {policies: [{name: o, type: ottl_condition, span: [true]}]}}",
         "policies[0].span: unknown key (expected one of: name, type, ottl_condition)"},
        {"{tail_sampling: {policies: [{name: r, type: string_attribute, string_attribute: {key: k, values: [ok, '(a'],"
         " enabled_regex_matching: true}}]}}",
         "policies[0].string_attribute.values[1]: invalid regular expression: missing ): (a (RE2 syntax"},
        {"{quiet_after: 1s, tail_sampling: {decision_wait_after_root_received: 2s, policies: [{name: a, type: "
         "always_sample}]}}",
         "decision_wait_after_root_received: give quiet_after or decision_wait_after_root_received, not both"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = mk_err(bad[i].node);
        if (strstr(err, bad[i].err) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].err);
    }
}

/* Defaults as the Collector's: decision_wait 30 s, num_traces 50000; a
 * numeric bound of 0 is no bound; bytes_limiting bursts twice its rate. */
static void test_upstream_defaults(void **state)
{
    (void)state;
    sampler *s = mk("{tail_sampling: {policies: [{name: a, type: always_sample}]}}");
    add_trace(s, 1, MS, -1, T0);
    assert_int_equal(tick(s, T0 + 30 * SEC - 1), 0);
    assert_int_equal(tick(s, T0 + 30 * SEC), 1);
    sampler_free(s);

    s = mk("{max_bytes: 1GiB, tail_sampling: {policies: [{name: a, type: always_sample}]}}");
    for (uint64_t i = 1; i <= 50001; i++) {
        add_trace(s, i, MS, -1, T0);
        if (i % 5000 == 0)
            arena_reset(A);
    }
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.traces_in_flight, 50000);
    assert_int_equal(st.evicted_max_traces, 1);
    sampler_free(s);

    s = mk("{tail_sampling: {policies: [{name: n, type: numeric_attribute, numeric_attribute: {key: k, min_value: 0,"
           " max_value: 100}}]}}");
    add_tag(s, 1, "k", -5, T0);
    assert_true(kept(s, T0)); /* min_value 0: no lower bound */
    sampler_free(s);

    span_t *probe = sp_new(1, 1, 0, T0, T0 + 1, -1);
    size_t w = protobuf_c_message_get_packed_size(&probe->base);
    char node[256];
    snprintf(node, sizeof(node),
             "{tail_sampling: {policies: [{name: b, type: bytes_limiting, bytes_limiting: {bytes_per_second: %zu}}]}}",
             2 * w);
    s = mk(node);
    for (uint64_t i = 1; i <= 6; i++)
        add_trace(s, i, 1, -1, T0);
    E.n = 0;
    flush(s, T0);
    assert_int_equal(E.n, 4); /* burst: twice 2 spans' worth */
    sampler_free(s);
}

/* decision_wait_after_root_received counts from the root's arrival, later
 * spans notwithstanding; quiet_after (ours) waits for the trace to go
 * quiet after its root. */
static void test_after_root(void **state)
{
    (void)state;
    for (int upstream = 0; upstream < 2; upstream++) {
        sampler *s = mk(upstream ? "{tail_sampling: {decision_wait: 30s, decision_wait_after_root_received: 2s,"
                                   " policies: [{name: a, type: always_sample}]}}"
                                 : "{decision_wait: 30s, quiet_after: 2s, policies: [{name: a, type: always_sample}]}");
        span_t *root = sp_new(1, 1, 0, T0, T0 + 1, -1);
        add_span(s, root, T0 + SEC);
        for (uint64_t k = 1; k <= 4; k++) {
            span_t *child = sp_new(1, (unsigned)k + 1, 1, T0, T0 + 1, -1);
            add_span(s, child, T0 + SEC + k * SEC);
        }
        /* root at 1 s, children at 2..5 s */
        size_t n = tick(s, T0 + 3 * SEC);
        assert_int_equal(n, upstream ? 1 : 0);
        if (!upstream)
            assert_int_equal(tick(s, T0 + 7 * SEC), 1); /* 2 s after the last span */
        sampler_free(s);
    }
}

/* A trace over the per-trace cap is decided at once and counted: by the
 * policies for max_trace_spans / max_trace_bytes, dropped for the
 * Collector's maximum_trace_size_bytes. Its later spans follow. */
static void test_trace_size_cap(void **state)
{
    (void)state;
    sampler *s = mk("{max_trace_spans: 5, policies: [{name: a, type: always_sample}]}");
    add_n_spans(s, 1, 4, T0);
    add_n_spans(s, 2, 3, T0);
    E.n = 0;
    tick(s, T0);
    assert_int_equal(E.n, 0);
    add_n_spans(s, 1, 2, T0 + SEC); /* 6 spans: over 5 */
    tick(s, T0 + SEC);
    assert_int_equal(E.n, 1);
    assert_int_equal(E.spans, 6);
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.decided_oversize, 1);
    assert_int_equal(st.traces_in_flight, 1);
    add_n_spans(s, 1, 1, T0 + 2 * SEC);
    sampler_get_stats(s, &st);
    assert_int_equal(st.late_spans_sampled, 1); /* follows the decision */
    sampler_free(s);

    span_t *probe = sp_new(1, 1, 0, T0, T0 + 1, -1);
    size_t w = protobuf_c_message_get_packed_size(&probe->base);
    char node[256];
    snprintf(node, sizeof(node),
             "{tail_sampling: {maximum_trace_size_bytes: %zu, policies: [{name: a, type: always_sample}]}}", 3 * w);
    s = mk(node);
    add_n_spans(s, 1, 4, T0);
    add_n_spans(s, 2, 2, T0);
    sampler_get_stats(s, &st);
    assert_int_equal(st.decided_oversize, 1);
    assert_int_equal(st.dropped, 1);
    assert_true(kept(s, T0)); /* trace 2 */
    assert_int_equal(E.ids[0], 2);
    sampler_free(s);
}

/* block_on_overflow: a full shard (num_traces) refuses new spans
 * (sampler_full: the client gets a retryable answer) instead of deciding
 * the oldest traces early. */
static void test_block_on_overflow(void **state)
{
    (void)state;
    for (int block = 0; block < 2; block++) {
        char node[256];
        snprintf(node, sizeof(node),
                 "{tail_sampling: {num_traces: 3, block_on_overflow: %s, policies: [{name: a, type: always_sample}]}}",
                 block ? "true" : "false");
        sampler *s = mk(node);
        add_trace(s, 1, MS, -1, T0);
        add_trace(s, 2, MS, -1, T0);
        assert_false(sampler_full(s, 0));
        add_trace(s, 3, MS, -1, T0);
        assert_int_equal(sampler_full(s, 0), block);
        tick(s, T0 + 30 * SEC); /* decided at decision_wait: room again */
        assert_false(sampler_full(s, 0));
        sampler_free(s);
    }
}

/* ---- differential: flat and Collector-shaped twins decide alike ---- */

/* Batch spans over a second, or VIP spans with a 5xx status code (an
 * error, skipped, when a VIP span has no status code). */
#define TWIN_OTTL                                                                                               \
    "span: ['attributes[\"tier\"] == \"batch\" and end_time_unix_nano - start_time_unix_nano > 1000000000',"  \
    " 'attributes[\"vip\"] == true and attributes[\"http.status_code\"] * 1 >= 500']"

static const char *const flat_twin =
    "{decision_wait: 10s, max_traces: 100000, sampled_cache: 0, not_sampled_cache: 0, policies: ["
    "{name: errors, type: status_code, status_codes: [ERROR]},"
    "{name: slow, type: latency, threshold_ms: 300, upper_threshold_ms: 2000},"
    "{name: some, type: probabilistic, sampling_percentage: 7, hash_salt: fleet-a},"
    "{name: route, type: string_attribute, key: http.route, values: [/checkout, /pay]},"
    "{name: not-internal, type: string_attribute, key: tier, values: [internal], invert_match: true},"
    "{name: code, type: numeric_attribute, key: http.status_code, min_value: 500, max_value: 599},"
    "{name: vip, type: boolean_attribute, key: vip, value: true},"
    "{name: big, type: span_count, min_spans: 6},"
    "{name: ts, type: trace_state, key: team, values: [red]},"
    "{name: hd, type: trace_flags},"
    "{name: rx, type: string_attribute, key: http.route, values: ['(?i)^/CART$', '^/p\\w+$'],"
    " enabled_regex_matching: true},"
    "{name: ot, type: ottl_condition, " TWIN_OTTL "},"
    "{name: budget, type: rate_limiting, spans_per_second: 40},"
    "{name: bytes, type: bytes_limiting, bytes_per_second: 4000, burst: 6000},"
    "{name: both, type: and, policies: [{name: b1, type: status_code, status_codes: [OK]},"
    " {name: b2, type: not, policy: {name: b3, type: span_count, min_spans: 3}}]},"
    "{name: health, type: drop, policies: [{name: h1, type: string_attribute, key: http.route, values: [/health]}]},"
    "{name: mix, type: composite, max_total_spans_per_second: 60, policies: ["
    " {name: m1, type: status_code, status_codes: [ERROR]}, {name: m2, type: probabilistic, sampling_percentage: 30}],"
    " rate_allocation: [{policy: m1, percent: 50}, {policy: m2, percent: 0}]}"
    "]}";

static const char *const upstream_twin =
    "{tail_sampling: {decision_wait: 10s, num_traces: 100000, decision_cache: {sampled_cache_size: 0,"
    " non_sampled_cache_size: 0}, policies: ["
    "{name: errors, type: status_code, status_code: {status_codes: [ERROR]}},"
    "{name: slow, type: latency, latency: {threshold_ms: 300, upper_threshold_ms: 2000}},"
    "{name: some, type: probabilistic, probabilistic: {sampling_percentage: 7, hash_salt: fleet-a}},"
    "{name: route, type: string_attribute, string_attribute: {key: http.route, values: [/checkout, /pay]}},"
    "{name: not-internal, type: string_attribute, string_attribute: {key: tier, values: [internal], invert_match: true}},"
    "{name: code, type: numeric_attribute, numeric_attribute: {key: http.status_code, min_value: 500, max_value: 599}},"
    "{name: vip, type: boolean_attribute, boolean_attribute: {key: vip, value: true}},"
    "{name: big, type: span_count, span_count: {min_spans: 6}},"
    "{name: ts, type: trace_state, trace_state: {key: team, values: [red]}},"
    "{name: hd, type: trace_flags},"
    "{name: rx, type: string_attribute, string_attribute: {key: http.route, values: ['(?i)^/CART$', '^/p\\w+$'],"
    " enabled_regex_matching: true}},"
    "{name: ot, type: ottl_condition, ottl_condition: {" TWIN_OTTL "}},"
    "{name: budget, type: rate_limiting, rate_limiting: {spans_per_second: 40}},"
    "{name: bytes, type: bytes_limiting, bytes_limiting: {bytes_per_second: 4000, burst_capacity: 6000}},"
    "{name: both, type: and, and: {and_sub_policy: [{name: b1, type: status_code, status_code: {status_codes: [OK]}},"
    " {name: b2, type: not, not: {not_sub_policy: {name: b3, type: span_count, span_count: {min_spans: 3}}}}]}},"
    "{name: health, type: drop, drop: {drop_sub_policy: [{name: h1, type: string_attribute,"
    " string_attribute: {key: http.route, values: [/health]}}]}},"
    "{name: mix, type: composite, composite: {max_total_spans_per_second: 60, composite_sub_policy: ["
    " {name: m1, type: status_code, status_code: {status_codes: [ERROR]}},"
    " {name: m2, type: probabilistic, probabilistic: {sampling_percentage: 30}}],"
    " rate_allocation: [{policy: m1, percent: 50}, {policy: m2, percent: 0}]}}"
    "]}}";

/* A generated trace: 1..8 spans, random durations, statuses, attributes,
 * trace_state and flags drawn from the values the policies look at. */
static req_t *gen_trace(uint64_t id)
{
    static const char *const routes[] = {"/checkout", "/pay", "/health", "/cart", "/"};
    static const char *const tiers[] = {"internal", "edge", "batch"};
    static const char *const states[] = {"", "team=red", "team=blue", "x=1,team=red", "team=red,team=blue"};
    size_t n = 1 + rnd() % 8;
    span_t *sp[8];
    uint64_t start = T0 + rnd() % SEC;
    for (size_t k = 0; k < n; k++) {
        uint64_t s0 = start + rnd() % (500 * MS), dur = rnd() % 3 ? rnd() % (200 * MS) : rnd() % (3 * SEC);
        int status = (int)(rnd() % 4) - 1;
        sp[k] = sp_new(id, (unsigned)k + 1, k ? 1 : 0, s0, s0 + dur, status);
        if (rnd() % 3 == 0)
            attr_str(sp[k], "http.route", routes[rnd() % 5]);
        if (rnd() % 4 == 0)
            attr_str(sp[k], "tier", tiers[rnd() % 3]);
        if (rnd() % 5 == 0)
            attr_int(sp[k], "http.status_code", 200 + (int64_t)(rnd() % 400));
        if (rnd() % 8 == 0)
            attr_bool(sp[k], "vip", (int)(rnd() % 2));
        if (rnd() % 6 == 0)
            sp[k]->trace_state = (char *)states[rnd() % 5];
        if (rnd() % 10 == 0)
            sp[k]->flags = (uint32_t)(rnd() % 4);
    }
    return req_new("svc", "lib", sp, n);
}

static void test_differential(void **state)
{
    (void)state;
    config *keep;
    sampler *flat = mk(flat_twin);
    keep = g_cfg;
    g_cfg = NULL;
    sampler *up = mk(upstream_twin);
    emitted *e1 = calloc(1, sizeof(*e1)), *e2 = calloc(1, sizeof(*e2));
    e1->a = arena_new(0);
    e2->a = arena_new(0);
    enum { N = 20000 };
    size_t total = 0;
    uint64_t now = T0;
    for (uint64_t i = 1; i <= N; i++) {
        req_t *r = gen_trace(i * 0x9e3779b97f4a7c15ULL);
        sampler_add(flat, 0, &r->base, "t", now, NULL);
        sampler_add(up, 0, &r->base, "t", now, NULL);
        if (i % 50 == 0) {
            now += 37 * MS; /* budgets refill between batches */
            sampler_flush(flat, 0, now, on_emit, e1);
            sampler_flush(up, 0, now, on_emit, e2);
            assert_int_equal(e1->n, e2->n);
            for (size_t k = 0; k < e1->n; k++)
                assert_int_equal(e1->ids[k], e2->ids[k]);
            total += e1->n;
            e1->n = e2->n = 0;
            arena_reset(A);
            arena_reset(e1->a);
            arena_reset(e2->a);
        }
    }
    /* Every policy had a say: neither everything nor nothing was kept. */
    assert_true(total > N / 10 && total < N * 9 / 10);
    for (size_t p = 0; p < sampler_policy_count(flat); p++) {
        uint64_t s1, n1, k1, s2, n2, k2;
        const char *name = sampler_policy_stats(flat, p, &s1, &n1, &k1);
        assert_string_equal(sampler_policy_stats(up, p, &s2, &n2, &k2), name);
        assert_int_equal(s1, s2);
        assert_int_equal(n1, n2);
        assert_int_equal(k1, k2);
        if (s1 == 0 || n1 == 0)
            fail_msg("policy %s was %s on every trace: the generator does not exercise it", name,
                     s1 == 0 ? "not sampled" : "sampled");
    }
    arena_free(e1->a);
    arena_free(e2->a);
    free(e1);
    free(e2);
    sampler_free(flat);
    sampler_free(up);
    config_free(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prob_threshold),
        cmocka_unit_test_setup_teardown(test_prob_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prob_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_attribute_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_composite_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_on_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_differential, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
