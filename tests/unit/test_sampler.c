/* Tail sampler: policies, decision timing, caches and the memory budget.
 * Output and delivery are tested in test_sampler_output.c, requests handed
 * over as bytes in test_sampler_bytes.c, Refinery's samplers in
 * test_sampler_refinery.c, weights on kept spans in test_sampler_weight.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "otlp.h"
#include "sampler_testlib.h"
#include "slab.h"

/* ---- config errors ---- */

static void test_config_errors(void **state)
{
    (void)state;
    assert_string_equal(mk_err("{decision_wait: 10s, bogus: 1, policies: [{name: a, type: always_sample}]}"),
                        "gw.yaml:7:29: backends.x.s.bogus: unknown key (expected one of: decision_wait, "
                        "quiet_after, decision_wait_after_root_received, max_bytes, max_traces, sampled_cache, "
                        "not_sampled_cache, record_policy, sample_on_first_match, block_on_overflow, "
                        "max_trace_spans, max_trace_bytes, expected_new_traces_per_sec, policies, "
                        "sample_rate_attribute, trace_state_threshold)");
    assert_string_equal(mk_err("{policies: [{name: a, type: sometimes}]}"),
                        "gw.yaml:7:36: backends.x.s.policies[0].type: unknown policy type \"sometimes\" (use "
                        "always_sample, latency, status_code, probabilistic, string_attribute, numeric_attribute, "
                        "boolean_attribute, span_count, rate_limiting, bytes_limiting, trace_state, trace_flags, "
                        "and, not, composite, drop, ottl_condition, deterministic, rules, dynamic, ema_dynamic, ema_throughput, "
                        "windowed_throughput or total_throughput)");
    assert_string_equal(mk_err("{policies: [{name: e, type: status_code, status_codes: [ERROR, BAD]}]}"),
                        "gw.yaml:7:71: backends.x.s.policies[0].status_codes[1]: invalid status code \"BAD\" "
                        "(use ERROR, OK or UNSET)");
    assert_non_null(strstr(mk_err("{policies: [{name: p, type: probabilistic, sampling_percentage: 101}]}"),
                           "gw.yaml:7:"));
    assert_non_null(strstr(mk_err("{policies: [{name: p, type: probabilistic, sampling_percentage: 101}]}"),
                           "policies[0].sampling_percentage: must be between 0 and 100"));
    assert_non_null(strstr(mk_err("{policies: [{name: p, type: probabilistic, sampling_percentage: ten}]}"),
                           "sampling_percentage: invalid number \"ten\""));
    assert_non_null(strstr(mk_err("{policies: [{name: l, type: latency, threshold_ms: 5, upper: 9}]}"),
                           "policies[0].upper: unknown key"));
    assert_non_null(strstr(mk_err("{policies: [{name: l, type: latency, threshold_ms: 50, upper_threshold_ms: 9}]}"),
                           "upper_threshold_ms: must be at least threshold_ms (50)"));
    assert_non_null(strstr(mk_err("{policies: [{name: l, type: latency}]}"), "threshold_ms: required key is missing"));
    assert_non_null(strstr(mk_err("{policies: [{name: r, type: string_attribute, key: k, values: ['(a'], "
                                  "enabled_regex_matching: true}]}"),
                           "gw.yaml:7:71: backends.x.s.policies[0].values[0]: invalid regular expression: missing ): (a "
                           "(RE2 syntax"));
    /* POSIX-only syntax that RE2 refuses says so, located at the value. */
    assert_non_null(strstr(mk_err("{policies: [{name: r, type: string_attribute, key: k, values: [ok, '[[:<:]]x'], "
                                  "enabled_regex_matching: true}]}"),
                           "gw.yaml:7:75: backends.x.s.policies[0].values[1]: invalid regular expression: invalid "
                           "character class range: [:<:] (RE2 syntax, as Go's regexp: no backreferences, lookaround or "
                           "POSIX word boundaries)"));
    assert_non_null(strstr(mk_err("{policies: [{name: o, type: ottl_condition}]}"),
                           "gw.yaml:7:20: backends.x.s.policies[0].span: expected at least one OTTL condition in span "
                           "or spanevent"));
    assert_string_equal(mk_err("{policies: [{name: o, type: ottl_condition, span: [name == \"x\", kind = 2]}]}"),
                        "gw.yaml:7:72: backends.x.s.policies[0].span[1]: invalid OTTL condition \"kind = 2\": column "
                        "6: unexpected \"=\" (expected a comparison operator (==, !=, <, <=, >, >=))");
    assert_non_null(strstr(mk_err("{policies: [{name: o, type: ottl_condition, spanevent: ['IsMatch(name, \"(?<n>x)\")']}]}"),
                           "policies[0].spanevent[0]: invalid OTTL condition \"IsMatch(name, \"(?<n>x)\")\": column 15: "
                           "invalid regular expression: invalid perl operator: (?<"));
    assert_non_null(strstr(mk_err("{policies: [{name: o, type: ottl_condition, spanevent: ['kind == 2']}]}"),
                           "policies[0].spanevent[0]: invalid OTTL condition \"kind == 2\": column 1: unknown path "
                           "\"kind\" (span event conditions"));
    assert_non_null(strstr(mk_err("{policies: [{name: o, type: ottl_condition, error_mode: loud, span: [true]}]}"),
                           "policies[0].error_mode:"));
    assert_non_null(strstr(mk_err("{policies: [{name: o, type: ottl_condition, span: 'name == \"x\"'}]}"),
                           "policies[0].span:"));
    assert_non_null(strstr(mk_err("{policies: [{name: a, type: always_sample}, {name: a, type: always_sample}]}"),
                           "policies[1].name: duplicate policy name \"a\""));
    assert_non_null(strstr(mk_err("{policies: [{name: c, type: composite, max_total_spans_per_second: 10, "
                                  "policy_order: [z], policies: [{name: x, type: always_sample}]}]}"),
                           "policy_order[0]: \"z\" is not one of this composite's policies"));
    assert_non_null(strstr(mk_err("{policies: [{name: a, type: and, policies: [{name: d, type: drop, policies: "
                                  "[{name: x, type: always_sample}]}]}]}"),
                           "policies[0].policies[0].type: a drop policy is only allowed at the top level"));
    assert_non_null(strstr(mk_err("{decision_wait: 2s, quiet_after: 2s, policies: [{name: a, type: always_sample}]}"),
                           "quiet_after: must be less than decision_wait"));
    assert_non_null(strstr(mk_err("{max_bytes: 12XB, policies: [{name: a, type: always_sample}]}"),
                           "max_bytes: invalid size \"12XB\""));
    assert_non_null(strstr(mk_err("{decision_wait: 10s}"), "backends.x.s.policies: required key is missing"));
    assert_non_null(strstr(mk_err("{policies: [{name: n, type: numeric_attribute, key: k}]}"),
                           "min_value or max_value is required"));
    assert_non_null(strstr(mk_err("{policies: [{name: b, type: boolean_attribute, key: k, value: maybe}]}"),
                           "policies[0].value: invalid boolean"));
    assert_non_null(strstr(mk_err("{policies: [{name: s, type: span_count, min_spans: 5, max_spans: 2}]}"),
                           "max_spans: must be at least min_spans"));
    assert_non_null(strstr(mk_err("{policies: [{name: r, type: rate_limiting, spans_per_second: 0}]}"),
                           "spans_per_second: must be between 1 and 4294967295"));
}

/* ---- policies ---- */

static void test_latency(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: slow, type: latency, threshold_ms: 500}]}");
    add_trace(s, 1, 500 * MS - 1, -1, T0);
    add_trace(s, 2, 500 * MS, -1, T0);
    add_trace(s, 3, 10 * SEC, -1, T0);
    /* Duration is the trace's earliest start to latest end, across spans. */
    span_t *a = sp_new(4, 1, 0, T0, T0 + 100 * MS, -1), *b = sp_new(4, 2, 1, T0 + 450 * MS, T0 + 500 * MS, -1);
    span_t *two[] = {a, b};
    add(s, req_new("svc", "lib", two, 2), T0, NULL);
    flush(s, T0);
    assert_int_equal(E.n, 3);
    assert_false(emitted_has(1));
    assert_true(emitted_has(2) && emitted_has(3) && emitted_has(4));
    sampler_free(s);

    memset(E.ids, 0, sizeof(E.ids));
    E.n = 0;
    s = mk("{policies: [{name: band, type: latency, threshold_ms: 100, upper_threshold_ms: 1000}]}");
    /* The Collector's edges: whole milliseconds, lower bound exclusive
     * and upper inclusive when there is an upper bound. */
    add_trace(s, 1, 100 * MS, -1, T0);
    add_trace(s, 2, 1000 * MS, -1, T0);
    add_trace(s, 3, 1000 * MS + MS - 1, -1, T0); /* 1000.999 ms: 1000 */
    add_trace(s, 4, 99 * MS, -1, T0);
    add_trace(s, 5, 101 * MS, -1, T0);
    add_trace(s, 6, 1001 * MS, -1, T0);
    flush(s, T0);
    assert_int_equal(E.n, 3);
    assert_true(emitted_has(2) && emitted_has(3) && emitted_has(5));
    sampler_free(s);
}

static void test_status_code(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: errors, type: status_code, status_codes: [ERROR]}]}");
    add_trace(s, 1, MS, 2, T0); /* ERROR */
    add_trace(s, 2, MS, 1, T0); /* OK */
    add_trace(s, 3, MS, -1, T0); /* no status: UNSET */
    /* One error span among OK spans samples the trace. */
    span_t *a = sp_new(4, 1, 0, T0, T0 + 1, 1), *b = sp_new(4, 2, 1, T0, T0 + 1, 2);
    span_t *two[] = {a, b};
    add(s, req_new("svc", "lib", two, 2), T0, NULL);
    flush(s, T0);
    assert_int_equal(E.n, 2);
    assert_true(emitted_has(1) && emitted_has(4));
    sampler_free(s);

    E.n = 0;
    s = mk("{policies: [{name: ok, type: status_code, status_codes: [OK, UNSET]}]}");
    add_trace(s, 1, MS, 2, T0);
    add_trace(s, 2, MS, 1, T0);
    add_trace(s, 3, MS, -1, T0);
    flush(s, T0);
    assert_int_equal(E.n, 2);
    assert_true(emitted_has(2) && emitted_has(3));
    sampler_free(s);
}


static void test_probabilistic(void **state)
{
    (void)state;
    const char *node = "{policies: [{name: some, type: probabilistic, sampling_percentage: 10}]}";
    sampler *s1 = mk_shards(node, 1);
    config *keep = g_cfg;
    g_cfg = NULL;
    sampler *s2 = mk_shards(node, 4); /* another instance, sharded differently */
    enum { N = 20000 };
    static uint64_t ids[N];
    emitted *e1 = calloc(1, sizeof(*e1)), *e2 = calloc(1, sizeof(*e2));
    e1->a = arena_new(0);
    e2->a = arena_new(0);
    size_t n1 = 0, n2 = 0;
    /* (Ids are random: the Collector's hash, FNV-1a without a finalizer,
     * does not spread sequential ids; real ones are random.) */
    for (size_t i = 0; i < N; i++) {
        ids[i] = rnd();
        span_t *sp = sp_new(ids[i], 1, 0, T0, T0 + 1, -1);
        req_t *r = req_new("svc", "lib", &sp, 1);
        sampler_add(s1, 0, &r->base, "t", T0, NULL);
        sampler_add(s2, sampler_shard_of(s2, sp->trace_id.data), &r->base, "t", T0, NULL);
        if (i % 1000 == 999) {
            sampler_flush(s1, 0, T0, on_emit, e1);
            for (size_t k = 0; k < 4; k++)
                sampler_flush(s2, k, T0, on_emit, e2);
            /* Same decisions, in any order. */
            assert_int_equal(e1->n, e2->n);
            n1 += e1->n;
            n2 += e2->n;
            for (size_t a = 0; a < e1->n; a++) {
                size_t b = 0;
                while (b < e2->n && e2->ids[b] != e1->ids[a])
                    b++;
                assert_true(b < e2->n);
            }
            e1->n = e2->n = 0;
            arena_reset(e1->a);
            arena_reset(e2->a);
            arena_reset(A);
        }
    }
    /* 10% of 20000 = 2000, sd = sqrt(20000*0.1*0.9) = 42.4: allow 5 sd. */
    assert_int_equal(n1, n2);
    assert_in_range(n1, 2000 - 212, 2000 + 212);
    arena_free(e1->a);
    arena_free(e2->a);
    free(e1);
    free(e2);
    sampler_free(s1);
    sampler_free(s2);
    config_free(keep);
}

static void test_string_attribute(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: exact, type: string_attribute, key: http.route, values: [/checkout, /pay]},"
                    " {name: re, type: string_attribute, key: db.system, values: ['^post.*sql$'],"
                    " enabled_regex_matching: true},"
                    " {name: svc, type: string_attribute, key: service.name, values: [billing]}]}");
    span_t *a = sp_new(1, 1, 0, T0, T0 + 1, -1);
    attr_str(a, "http.route", "/checkout");
    span_t *b = sp_new(2, 1, 0, T0, T0 + 1, -1);
    attr_str(b, "http.route", "/checkout/x"); /* exact: no */
    span_t *c = sp_new(3, 1, 0, T0, T0 + 1, -1);
    attr_str(c, "db.system", "postgresql");
    span_t *d = sp_new(4, 1, 0, T0, T0 + 1, -1);
    attr_str(d, "db.system", "mysql");
    span_t *f = sp_new(5, 1, 0, T0, T0 + 1, -1);
    attr_int(f, "http.route", 7); /* wrong type */
    span_t *all[] = {a, b, c, d, f};
    add(s, req_new("svc", "lib", all, 5), T0, NULL);
    span_t *g = sp_new(6, 1, 0, T0, T0 + 1, -1); /* resource attribute matches */
    add(s, req_new("billing", "lib", &g, 1), T0, NULL);
    flush(s, T0);
    assert_int_equal(E.n, 3);
    assert_true(emitted_has(1) && emitted_has(3) && emitted_has(6));
    sampler_free(s);

    E.n = 0;
    s = mk("{policies: [{name: noisy, type: string_attribute, key: http.route, values: [/health],"
           " invert_match: true}]}");
    a = sp_new(1, 1, 0, T0, T0 + 1, -1);
    attr_str(a, "http.route", "/health");
    b = sp_new(2, 1, 0, T0, T0 + 1, -1);
    attr_str(b, "http.route", "/orders");
    c = sp_new(3, 1, 0, T0, T0 + 1, -1); /* no such attribute: sampled when inverted */
    span_t *three[] = {a, b, c};
    add(s, req_new("svc", "lib", three, 3), T0, NULL);
    flush(s, T0);
    assert_int_equal(E.n, 2);
    assert_true(emitted_has(2) && emitted_has(3));
    sampler_free(s);
}

/* Regexes are RE2 (Go's syntax, as upstream) and unanchored (Go's
 * MatchString): \d and (?i) work, and a value matches when the pattern
 * occurs anywhere in it. A pathological pattern against a long client value
 * finishes (RE2 is linear-time; a backtracking engine would not). In ours
 * and in the Collector's shape alike. */
static void test_string_attribute_re2(void **state)
{
    (void)state;
    for (int up = 0; up < 2; up++) {
        const char *pols[] = {
            policy_in(up, "api", "string_attribute",
                      "key: http.route, values: ['^/api/v\\d+/users'], enabled_regex_matching: true"),
            policy_in(up, "sel", "string_attribute",
                      "key: db.statement, values: ['(?i)^select', 'tmp'], enabled_regex_matching: true"),
            policy_in(up, "evil", "string_attribute", "key: q, values: ['(a+)+$'], enabled_regex_matching: true"),
        };
        E.n = 0;
        sampler *s = mk(set_in(up, pols, 3));
        const char *routes[] = {"/api/v2/users/7", "/api/vx/users", "/x/api/v2/users"};
        const char *stmts[] = {"SeLeCt 1", "update t", "drop tmp_1"};
        span_t *spans[9];
        size_t n = 0;
        for (int i = 0; i < 3; i++) {
            spans[n] = sp_new(1 + (uint64_t)i, 1, 0, T0, T0 + 1, -1);
            attr_str(spans[n++], "http.route", routes[i]);
            spans[n] = sp_new(11 + (uint64_t)i, 1, 0, T0, T0 + 1, -1);
            attr_str(spans[n++], "db.statement", stmts[i]);
        }
        size_t len = 50000;
        char *evil = arena_alloc(A, len + 2);
        memset(evil, 'a', len);
        evil[len] = 'b';
        evil[len + 1] = '\0';
        spans[n] = sp_new(21, 1, 0, T0, T0 + 1, -1);
        attr_str(spans[n++], "q", evil);
        add(s, req_new("svc", "lib", spans, n), T0, NULL);
        flush(s, T0);
        if (E.n != 3 || !emitted_has(1) || !emitted_has(11) || !emitted_has(13))
            fail_msg("%s shape: %zu traces kept, want 1, 11 and 13", up ? "Collector" : "flat", E.n);
        sampler_free(s);
    }
}

/* An event named `name` with a string attribute k = v on span s. */
static void event_add(span_t *s, const char *name, const char *k, const char *v)
{
    Opentelemetry__Proto__Trace__V1__Span__Event *ev = arena_alloc(A, sizeof(*ev));
    opentelemetry__proto__trace__v1__span__event__init(ev);
    ev->name = arena_strndup(A, name, strlen(name));
    kv_t *kv = kv_new(k);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = arena_strndup(A, v, strlen(v));
    push_kv(&ev->attributes, &ev->n_attributes, kv);
    Opentelemetry__Proto__Trace__V1__Span__Event **evs = arena_alloc(A, (s->n_events + 1) * sizeof(*evs));
    if (s->n_events)
        memcpy(evs, s->events, s->n_events * sizeof(*evs));
    evs[s->n_events++] = ev;
    s->events = evs;
}

/* ottl_condition: a trace is sampled when a span condition holds for one of
 * its spans or a spanevent condition for one of their events; resource and
 * scope paths see the span's own. In ours and in the Collector's shape
 * (`ottl_condition: {error_mode, span, spanevent}`), also as a sub-policy. */
static void test_ottl_condition(void **state)
{
    (void)state;
    for (int up = 0; up < 2; up++) {
        const char *shape = up ? "Collector" : "flat";
        const char *o = policy_in(up, "o", "ottl_condition",
                                  "error_mode: ignore, span: ['attributes[\"http.route\"] == \"/pay\" and "
                                  "end_time_unix_nano - start_time_unix_nano > 500000000', "
                                  "'resource.attributes[\"service.name\"] == \"billing\" and "
                                  "instrumentation_scope.name == \"db\"'], spanevent: ['name == \"exception\" and "
                                  "IsMatch(attributes[\"exception.type\"], \"(?i)timeout\")']");
        E.n = 0;
        sampler *s = mk(set_in(up, &o, 1));
        span_t *slow = sp_new(1, 1, 0, T0, T0 + 600 * MS, -1);
        attr_str(slow, "http.route", "/pay");
        span_t *fast = sp_new(2, 1, 0, T0, T0 + 100 * MS, -1);
        attr_str(fast, "http.route", "/pay");
        span_t *timeout = sp_new(3, 1, 0, T0, T0 + 1, -1);
        event_add(timeout, "exception", "exception.type", "ReadTimeoutError");
        span_t *other = sp_new(4, 1, 0, T0, T0 + 1, -1);
        event_add(other, "exception", "exception.type", "ValueError");
        event_add(other, "log", "exception.type", "timeout"); /* not an exception event */
        span_t *child = sp_new(3, 2, 1, T0, T0 + 1, -1); /* a second span of trace 3: no effect */
        span_t *all[] = {slow, fast, timeout, other, child};
        add(s, req_new("svc", "lib", all, 5), T0, NULL);
        span_t *db = sp_new(5, 1, 0, T0, T0 + 1, -1);
        span_t *db2 = sp_new(6, 1, 0, T0, T0 + 1, -1);
        add(s, req_new("billing", "db", &db, 1), T0, NULL);
        add(s, req_new("billing", "http", &db2, 1), T0, NULL);
        flush(s, T0);
        if (E.n != 3 || !emitted_has(1) || !emitted_has(3) || !emitted_has(5))
            fail_msg("%s shape: %zu traces kept, want 1, 3 and 5", shape, E.n);
        sampler_free(s);

        /* As a sub-policy: `and` with latency, both on the same trace. */
        const char *subs[] = {policy_in(up, "o", "ottl_condition", "span: ['kind == SPAN_KIND_SERVER']"),
                              policy_in(up, "l", "latency", "threshold_ms: 100")};
        const char *and_pol = up ? test_fmt("{name: a, type: and, and: {and_sub_policy: [%s, %s]}}", subs[0], subs[1])
                                 : test_fmt("{name: a, type: and, policies: [%s, %s]}", subs[0], subs[1]);
        E.n = 0;
        s = mk(set_in(up, &and_pol, 1));
        span_t *server_slow = sp_new(1, 1, 0, T0, T0 + 200 * MS, -1), *server_fast = sp_new(2, 1, 0, T0, T0 + MS, -1);
        span_t *internal_slow = sp_new(3, 1, 0, T0, T0 + 200 * MS, -1);
        server_slow->kind = server_fast->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
        span_t *three[] = {server_slow, server_fast, internal_slow};
        add(s, req_new("svc", "lib", three, 3), T0, NULL);
        flush(s, T0);
        if (E.n != 1 || !emitted_has(1))
            fail_msg("%s shape, and: %zu traces kept, want 1", shape, E.n);
        sampler_free(s);
    }
}

/* Two spans of a trace: `bad` makes '100 / attributes["d"] > 10' fail
 * (division by zero), `good` makes it true. */
static void add_bad_good(sampler *s, uint64_t trace, int bad_first)
{
    span_t *bad = sp_new(trace, 1, 0, T0, T0 + 1, -1), *good = sp_new(trace, 2, 1, T0, T0 + 1, -1);
    attr_int(bad, "d", 0);
    attr_int(good, "d", 2);
    add(s, req_new("svc", "lib", bad_first ? &bad : &good, 1), T0, NULL);
    add(s, req_new("svc", "lib", bad_first ? &good : &bad, 1), T0, NULL);
}

#define FAILING_OTTL "span: ['100 / attributes[\"d\"] > 10']"

/* error_mode: under propagate the first span to fail decides the policy (it
 * does not sample even if a later span matches), as upstream's in-order walk;
 * under ignore a failing condition is false and a later match samples. */
static void test_ottl_error_mode(void **state)
{
    (void)state;
    const char *modes[] = {"propagate", "ignore"};
    for (int m = 0; m < 2; m++) {
        char cfg[512];
        snprintf(cfg, sizeof(cfg), "{policies: [{name: o, type: ottl_condition, error_mode: %s, " FAILING_OTTL "}]}",
                 modes[m]);
        E.n = 0;
        sampler *s = mk(cfg);
        add_bad_good(s, 1, 1);
        add_bad_good(s, 2, 0); /* the match arrives first */
        flush(s, T0);
        assert_true(emitted_has(2));
        assert_int_equal(emitted_has(1), m == 1);
        sampler_free(s);
    }
}

/* A failed evaluation is the Collector's error verdict: it passes through
 * `not` and `and` unchanged (not(error) does not sample) and at the top has
 * no say, so it does not stop an invert_match policy from keeping a trace
 * (a not-sampled verdict would). */
static void test_ottl_error_verdict(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: n, type: not, policy: {name: o, type: ottl_condition, " FAILING_OTTL "}},"
                    " {name: a, type: and, policies: [{name: n2, type: not, policy: {name: o2, type: ottl_condition, "
                    FAILING_OTTL "}}, {name: x, type: always_sample}]}]}");
    add_bad_good(s, 1, 1);
    E.n = 0;
    flush(s, T0);
    assert_int_equal(E.n, 0);
    sampler_free(s);

    s = mk("{policies: [{name: inv, type: string_attribute, key: tier, values: [internal], invert_match: true},"
           " {name: o, type: ottl_condition, " FAILING_OTTL "}]}");
    add_bad_good(s, 1, 1); /* no tier: inverted-sampled; o: error */
    span_t *plain = sp_new(2, 1, 0, T0, T0 + 1, -1);
    attr_int(plain, "d", 50); /* o: not sampled, which vetoes the inverted-sampled */
    add(s, req_new("svc", "lib", &plain, 1), T0, NULL);
    E.n = 0;
    flush(s, T0);
    assert_int_equal(E.n, 1);
    assert_true(emitted_has(1));
    sampler_free(s);
}

static void test_numeric_boolean(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: big, type: numeric_attribute, key: http.status_code, min_value: 500,"
                    " max_value: 599}, {name: dbg, type: boolean_attribute, key: debug, value: true}]}");
    int64_t codes[] = {499, 500, 599, 600};
    for (int i = 0; i < 4; i++) {
        span_t *sp = sp_new((uint64_t)i + 1, 1, 0, T0, T0 + 1, -1);
        attr_int(sp, "http.status_code", codes[i]);
        add(s, req_new("svc", "lib", &sp, 1), T0, NULL);
    }
    span_t *d = sp_new(5, 1, 0, T0, T0 + 1, -1);
    attr_dbl(d, "http.status_code", 503.5);
    span_t *t = sp_new(6, 1, 0, T0, T0 + 1, -1);
    attr_bool(t, "debug", 1);
    span_t *f = sp_new(7, 1, 0, T0, T0 + 1, -1);
    attr_bool(f, "debug", 0);
    span_t *st = sp_new(8, 1, 0, T0, T0 + 1, -1);
    attr_str(st, "debug", "true"); /* a string is not a boolean */
    span_t *more[] = {d, t, f, st};
    add(s, req_new("svc", "lib", more, 4), T0, NULL);
    flush(s, T0);
    assert_int_equal(E.n, 4);
    assert_true(emitted_has(2) && emitted_has(3) && emitted_has(5) && emitted_has(6));
    sampler_free(s);

    E.n = 0;
    s = mk("{policies: [{name: small, type: numeric_attribute, key: n, max_value: 10, invert_match: true}]}");
    span_t *x = sp_new(1, 1, 0, T0, T0 + 1, -1);
    attr_int(x, "n", -5);
    span_t *y = sp_new(2, 1, 0, T0, T0 + 1, -1);
    attr_int(y, "n", 11);
    span_t *xy[] = {x, y};
    add(s, req_new("svc", "lib", xy, 2), T0, NULL);
    flush(s, T0);
    assert_int_equal(E.n, 1);
    assert_true(emitted_has(2));
    sampler_free(s);
}


static void test_span_count(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: mid, type: span_count, min_spans: 2, max_spans: 4}]}");
    for (uint64_t n = 1; n <= 5; n++)
        add_n_spans(s, n, n, T0);
    flush(s, T0);
    assert_int_equal(E.n, 3);
    assert_true(emitted_has(2) && emitted_has(3) && emitted_has(4));
    assert_int_equal(E.spans, 9);
    sampler_free(s);
}

/* A token bucket (the Collector's): spans_per_second refill, a burst of
 * twice that, full at first; a trace larger than the burst never fits. */
static void test_rate_limiting(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: budget, type: rate_limiting, spans_per_second: 10}]}");
    for (uint64_t i = 1; i <= 6; i++)
        add_n_spans(s, i, 4, T0);
    flush(s, T0); /* burst 20: five traces of 4, the sixth finds none left */
    assert_int_equal(E.n, 5);
    assert_false(emitted_has(6));
    for (uint64_t i = 7; i <= 8; i++)
        add_n_spans(s, i, 4, T0);
    flush(s, T0 + 500 * MS); /* half a second refilled 5 spans: one trace of 4 */
    assert_int_equal(E.n, 6);
    assert_true(emitted_has(7));
    for (uint64_t i = 9; i <= 14; i++)
        add_n_spans(s, i, 4, T0);
    flush(s, T0 + 100 * SEC); /* long idle: capped at the burst again */
    assert_int_equal(E.n, 11);
    add_n_spans(s, 15, 21, T0);
    flush(s, T0 + 200 * SEC); /* 21 spans > burst 20: never */
    assert_int_equal(E.n, 11);
    sampler_free(s);

    E.n = 0;
    s = mk("{policies: [{name: budget, type: rate_limiting, spans_per_second: 10, burst: 4}]}");
    for (uint64_t i = 1; i <= 3; i++)
        add_n_spans(s, i, 2, T0);
    flush(s, T0); /* an explicit burst: 4 spans */
    assert_int_equal(E.n, 2);
    sampler_free(s);
}

static void test_bytes_limiting(void **state)
{
    (void)state;
    span_t *probe = sp_new(1, 1, 0, T0, T0 + 1, -1);
    size_t w = protobuf_c_message_get_packed_size(&probe->base);
    char node[256];
    snprintf(node, sizeof(node),
             "{policies: [{name: bytes, type: bytes_limiting, bytes_per_second: %zu, burst: %zu}]}", 2 * w, 3 * w);
    sampler *s = mk(node);
    for (uint64_t i = 1; i <= 5; i++)
        add_trace(s, i, 1, -1, T0);
    flush(s, T0); /* burst: three one-span traces */
    assert_int_equal(E.n, 3);
    for (uint64_t i = 6; i <= 9; i++)
        add_trace(s, i, 1, -1, T0);
    flush(s, T0 + SEC); /* refilled 2 spans' worth in one second */
    assert_int_equal(E.n, 5);
    for (uint64_t i = 10; i <= 20; i++)
        add_trace(s, i, 1, -1, T0);
    flush(s, T0 + 100 * SEC); /* long idle: capped at the burst */
    assert_int_equal(E.n, 8);
    sampler_free(s);
}

static void test_and_drop(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: slow-errors, type: and, policies: ["
                    "{name: slow, type: latency, threshold_ms: 100}, "
                    "{name: err, type: status_code, status_codes: [ERROR]}]}]}");
    add_trace(s, 1, 200 * MS, 2, T0);
    add_trace(s, 2, 200 * MS, 1, T0);
    add_trace(s, 3, 50 * MS, 2, T0);
    flush(s, T0);
    assert_int_equal(E.n, 1);
    assert_true(emitted_has(1));
    sampler_free(s);

    E.n = 0;
    s = mk("{policies: [{name: all, type: always_sample}, {name: no-health, type: drop, policies: ["
           "{name: h, type: string_attribute, key: http.route, values: [/health]},"
           "{name: fast, type: latency, threshold_ms: 0, upper_threshold_ms: 10}]}]}");
    span_t *a = sp_new(1, 1, 0, T0, T0 + MS, -1); /* health and fast: dropped */
    attr_str(a, "http.route", "/health");
    span_t *b = sp_new(2, 1, 0, T0, T0 + SEC, -1); /* health but slow: kept */
    attr_str(b, "http.route", "/health");
    span_t *c = sp_new(3, 1, 0, T0, T0 + MS, -1); /* fast but not health: kept */
    span_t *abc[] = {a, b, c};
    add(s, req_new("svc", "lib", abc, 3), T0, NULL);
    flush(s, T0);
    assert_int_equal(E.n, 2);
    assert_true(emitted_has(2) && emitted_has(3));
    uint64_t smp, not, kept;
    assert_string_equal(sampler_policy_stats(s, 1, &smp, &not, &kept), "no-health");
    assert_int_equal(smp, 1); /* matched (dropped) once */
    assert_int_equal(not, 2);
    assert_string_equal(sampler_policy_stats(s, 0, &smp, &not, &kept), "all");
    assert_int_equal(smp, 2); /* not evaluated for the dropped trace */
    assert_int_equal(kept, 2);
    assert_null(sampler_policy_stats(s, 2, NULL, NULL, NULL));
    sampler_free(s);
}

/* The Collector's composite: sub-policies in listed order; the first that
 * samples decides, within its share of the second's budget, else the trace
 * is not sampled (no falling through to the next). */
static void test_composite(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: mix, type: composite, max_total_spans_per_second: 100,"
                    " policy_order: [rest, errors],"
                    " rate_allocation: [{policy: errors, percent: 30}, {policy: rest, percent: 70}],"
                    " policies: [{name: errors, type: status_code, status_codes: [ERROR]},"
                    " {name: rest, type: always_sample}]}]}");
    /* 15 error traces of 10 spans in one second: errors' 30 spans/s take
     * 3; the others are not sampled although rest has room. */
    for (uint64_t i = 1; i <= 15; i++) {
        span_t *sp[10];
        for (unsigned k = 0; k < 10; k++)
            sp[k] = sp_new(i, k + 1, k ? 1 : 0, T0, T0 + 1, 2);
        add(s, req_new("svc", "lib", sp, 10), T0, NULL);
    }
    flush(s, T0 + 10 * MS);
    assert_int_equal(E.n, 3);
    for (uint64_t i = 1; i <= 3; i++)
        assert_true(emitted_has(i));
    /* The same second, OK traces go to rest: 70 spans, 7 traces
     * (policy_order, which the Collector ignores, changes nothing). */
    for (uint64_t i = 20; i <= 28; i++)
        add_n_spans(s, i, 10, T0);
    flush(s, T0 + 20 * MS);
    assert_int_equal(E.n, 10);
    /* Next second: budgets again. */
    for (uint64_t i = 30; i <= 31; i++) {
        span_t *sp[10];
        for (unsigned k = 0; k < 10; k++)
            sp[k] = sp_new(i, k + 1, k ? 1 : 0, T0, T0 + 1, 2);
        add(s, req_new("svc", "lib", sp, 10), T0, NULL);
    }
    flush(s, T0 + SEC + 10 * MS);
    assert_int_equal(E.n, 12);
    sampler_free(s);
}

/* ---- timing ---- */

static void test_decision_timing(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 10s, quiet_after: 2s, policies: [{name: all, type: always_sample}]}");
    /* Trace 1: no root ever: decided only at decision_wait. */
    span_t *c1 = sp_new(1, 2, 1, T0, T0 + 1, -1);
    add(s, req_new("svc", "lib", &c1, 1), T0, NULL);
    /* Trace 2: root at T0+1s, child at T0+2s: quiet from T0+2s. */
    span_t *r2 = sp_new(2, 1, 0, T0, T0 + 1, -1);
    add(s, req_new("svc", "lib", &r2, 1), T0 + SEC, NULL);
    span_t *c2 = sp_new(2, 2, 1, T0, T0 + 1, -1);
    add(s, req_new("svc", "lib", &c2, 1), T0 + 2 * SEC, NULL);
    assert_int_equal(tick(s, T0 + 4 * SEC - 1), 0);
    assert_int_equal(tick(s, T0 + 4 * SEC), 1);
    assert_int_equal(E.n, 1);
    assert_true(emitted_has(2));
    assert_int_equal(E.spans, 2);
    assert_int_equal(tick(s, T0 + 10 * SEC - 1), 0);
    assert_int_equal(tick(s, T0 + 10 * SEC), 1);
    assert_true(emitted_has(1));
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.decided_quiet, 1);
    assert_int_equal(st.decided_wait, 1);
    assert_int_equal(st.traces_in_flight, 0);
    assert_int_equal(st.decision_latency_ns_max, 10 * SEC);
    assert_int_equal(st.decision_latency_ns_sum, 13 * SEC);
    sampler_free(s);

    /* Without quiet_after, a root does not shorten the wait. */
    E.n = 0;
    s = mk("{decision_wait: 5s, policies: [{name: all, type: always_sample}]}");
    add_trace(s, 1, 1, -1, T0);
    assert_int_equal(tick(s, T0 + 5 * SEC - 1), 0);
    assert_int_equal(tick(s, T0 + 5 * SEC), 1);
    sampler_free(s);
}

/* The traces due are decided in batches, their segment chains fetched side
 * by side first: one tick still decides every trace that is due, however
 * many, whatever its chain, and none that is not. */
static void test_tick_decides_every_due_trace(void **state)
{
    (void)state;
    enum { DUE = 101, LATER = 7, REQS = 3 };
    sampler *s = mk("{decision_wait: 1s, policies: [{name: errors, type: status_code, status_codes: [ERROR]}]}");
    for (uint64_t r = 0; r < REQS; r++) /* each trace's spans in three requests: three segments */
        for (uint64_t id = 1; id <= DUE; id++)
            add_trace(s, id, 1, id % 2 == 0 ? 2 : -1, T0 + r * MS);
    for (uint64_t id = DUE + 1; id <= DUE + LATER; id++)
        add_trace(s, id, 1, 2, T0 + 500 * MS);
    assert_int_equal(tick(s, T0 + SEC - 1), 0);
    assert_int_equal(tick(s, T0 + SEC), DUE);
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.sampled, DUE / 2);
    assert_int_equal(st.dropped, DUE - DUE / 2);
    assert_int_equal(st.spans_dropped, (DUE - DUE / 2) * REQS);
    assert_int_equal(E.spans, DUE / 2 * REQS);
    assert_int_equal(st.traces_in_flight, LATER);
    assert_int_equal(st.spans_held, LATER);
    assert_int_equal(tick(s, T0 + 1500 * MS - 1), 0);
    assert_int_equal(tick(s, T0 + 1500 * MS), LATER);
    assert_int_equal(E.spans, DUE / 2 * REQS + LATER);
    sampler_get_stats(s, &st);
    assert_int_equal(st.traces_in_flight, 0);
    assert_int_equal(st.bytes_held, 0);
    sampler_free(s);
}

static void test_late_spans(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, record_policy: true,"
                    " policies: [{name: errors, type: status_code, status_codes: [ERROR]}]}");
    add_trace(s, 1, 1, 2, T0); /* sampled */
    add_trace(s, 2, 1, 1, T0); /* not sampled */
    assert_int_equal(tick(s, T0 + SEC), 2);
    assert_int_equal(E.n, 1);
    buf late = BUF_INIT;
    span_t *l1 = sp_new(1, 9, 1, T0, T0 + 1, 1), *l2 = sp_new(2, 9, 1, T0, T0 + 1, 2),
           *l3 = sp_new(3, 1, 0, T0, T0 + 1, 1);
    span_t *ls[] = {l1, l2, l3};
    assert_int_equal(add(s, req_new("svc", "late-lib", ls, 3), T0 + 2 * SEC, &late), 1); /* only trace 3 buffered */
    otlp_request out;
    char err[160];
    assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, (const uint8_t *)late.data, late.len, E.a, &out, err,
                                 sizeof(err)),
                     0);
    assert_int_equal(out.items, 1);
    const req_t *r = (const req_t *)out.msg;
    const span_t *sp = r->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(sp->trace_id.data[15], 1);
    assert_int_equal(sp->span_id.data[7], 9);
    assert_string_equal(r->resource_spans[0]->scope_spans[0]->scope->name, "late-lib");
    assert_string_equal(r->resource_spans[0]->resource->attributes[0]->value->string_value, "svc");
    assert_int_equal(sp->n_attributes, 0); /* the policy goes on the scope, as the Collector puts it */
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = r->resource_spans[0]->scope_spans[0]->scope;
    assert_int_equal(sc->n_attributes, 2); /* the sampled decision's policy, and that it came from the cache */
    assert_string_equal(sc->attributes[0]->key, "tailsampling.policy");
    assert_string_equal(sc->attributes[0]->value->string_value, "errors");
    assert_string_equal(sc->attributes[1]->key, "tailsampling.cached_decision");
    assert_true(sc->attributes[1]->value->bool_value);
    assert_int_equal(l1->n_attributes, 0); /* input untouched */
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.late_spans_sampled, 1);
    assert_int_equal(st.late_spans_dropped, 1);
    assert_int_equal(st.traces_in_flight, 1);
    buf_free(&late);
    sampler_free(s);
}

/* ---- memory budget ---- */

/* Everything decided at `now`: every added span emitted or dropped, and
 * nothing left held, accounted or mapped. Frees s. */
static void flush_to_empty(sampler *s, uint64_t now, size_t added)
{
    sampler_stats st;
    flush(s, now);
    sampler_get_stats(s, &st);
    assert_int_equal(E.spans + st.spans_dropped, added);
    assert_int_equal(st.bytes_held, 0);
    assert_int_equal(st.spans_held, 0);
    assert_int_equal(st.slab_bytes, 0);
    sampler_free(s);
}

static void test_eviction_bytes(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 60s, max_bytes: 1MiB, policies: [{name: odd, type: numeric_attribute,"
                    " key: i, min_value: 1, max_value: 1}]}");
    static char big[4000];
    memset(big, 'x', sizeof(big) - 1);
    size_t added = 0;
    for (uint64_t i = 1; i <= 600; i++) { /* ~2.4 MB of spans into 1 MiB */
        span_t *sp[2];
        for (unsigned k = 0; k < 2; k++) {
            sp[k] = sp_new(i, k + 1, k, T0, T0 + 1, -1);
            attr_str(sp[k], "payload", big);
            attr_int(sp[k], "i", (int64_t)(i % 2));
        }
        added += add(s, req_new("svc", "lib", sp, 2), T0 + i * MS, NULL);
        sampler_stats st;
        sampler_get_stats(s, &st);
        tick(s, T0 + i * MS);
        sampler_get_stats(s, &st);
        assert_true(st.bytes_held <= (size_t)1 << 20);
        if (i % 50 == 0)
            arena_reset(A);
    }
    assert_int_equal(added, 1200);
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_true(st.evicted_early > 300);
    assert_int_equal(st.evicted_max_traces, 0);
    /* Oldest first: every odd trace up to the evicted count was emitted. */
    assert_true(emitted_has(1) && emitted_has(3));
    assert_int_equal(E.n, st.sampled);
    /* Nothing lost: emitted + dropped + still held = added. */
    assert_int_equal(E.spans + st.spans_dropped + st.spans_held, added);
    assert_int_equal(st.spans_sampled, E.spans);
    assert_true(st.wire_bytes_held < st.bytes_held);
    flush_to_empty(s, T0 + 61 * SEC, added);
}

static void test_eviction_traces(void **state)
{
    (void)state;
    sampler *s = mk("{max_traces: 3, policies: [{name: all, type: always_sample}]}");
    for (uint64_t i = 1; i <= 5; i++)
        add_trace(s, i, 1, -1, T0 + i);
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.traces_in_flight, 3);
    assert_int_equal(st.evicted_early, 2);
    assert_int_equal(st.evicted_max_traces, 2);
    tick(s, T0 + 6); /* the evicted (sampled) traces leave at the next tick */
    assert_int_equal(E.n, 2);
    assert_true(emitted_has(1) && emitted_has(2));
    flush(s, T0 + 7);
    assert_int_equal(E.n, 5);
    sampler_free(s);
}

/* Trace records and segments come from the shard's slab: under a steady
 * churn of traces what it maps stops growing (freed chunks are reused), it
 * stays near what bytes_held accounts, and it is all given back once the
 * sampler holds nothing. */
static void test_memory_reused_and_returned(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, policies: [{name: some, type: probabilistic, sampling_percentage: 10}]}");
    static char pad[300];
    memset(pad, 'p', sizeof(pad) - 1);
    size_t peak_warm = 0, peak = 0, added = 0;
    sampler_stats st;
    for (uint64_t step = 0, trace = 1; step < 1500; step++, trace += 10) {
        uint64_t now = T0 + step * 10 * MS;
        span_t *sp[30]; /* 3 spans of each of 10 new traces */
        for (unsigned k = 0; k < 30; k++) {
            sp[k] = sp_new(trace + k / 3, k % 3 + 1, k % 3 ? 1 : 0, now, now + 1, -1);
            attr_str(sp[k], "pad", pad);
        }
        added += add(s, req_new("svc", "lib", sp, 30), now, NULL);
        tick(s, now);
        sampler_get_stats(s, &st);
        if (step >= 200) /* a decision_wait's worth held: about 3000 spans, 1 MB */
            assert_true(st.slab_bytes <= 2 * st.bytes_held + 4 * (size_t)SLAB_BLOCK);
        if (step >= 200 && step < 500 && st.slab_bytes > peak_warm)
            peak_warm = st.slab_bytes;
        if (step >= 500 && st.slab_bytes > peak)
            peak = st.slab_bytes;
        if (step % 50 == 0)
            arena_reset(A);
    }
    assert_int_equal(added, 1500 * 30);
    assert_true(peak <= peak_warm + 2 * (size_t)SLAB_BLOCK);
    flush_to_empty(s, T0 + 100 * SEC, added);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_reused_and_returned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probabilistic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_attribute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_attribute_re2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ottl_condition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ottl_error_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ottl_error_verdict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numeric_boolean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_span_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_limiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_composite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_timing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_decides_every_due_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_spans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_traces, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
