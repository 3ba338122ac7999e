/* Tail sampler: Refinery's samplers (deterministic, the per-key dynamic and
 * throughput samplers, rules) and its trace key, directly (sr_*) and as
 * policies of a sampler. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_node.h"
#include "sampler_refinery.h"
#include "sampler_testlib.h"

/* ---- Refinery samplers ---- */

/* Refinery's own vectors (sample/deterministic_test.go): trace ids as
 * strings, rate 10. */
static void test_refinery_deterministic(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        int keep;
    } v[] = {{"abc123", 0}, {"def456", 1}, {"ghi789", 0}, {"zyx987", 0}, {"wvu654", 0}, {"tsr321", 0}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_int_equal(sr_deterministic_keep(v[i].id, strlen(v[i].id), 10), v[i].keep);
    assert_true(sr_deterministic_keep("abc123", 6, 1)); /* rate 1 keeps everything */
    /* OTLP ids are spelled as Refinery's intake does: lowercase hex, a zero upper half left out */
    uint8_t id[16] = {0};
    char txt[33];
    id[15] = 0xab;
    assert_int_equal(sr_trace_id_string(id, txt), 16);
    assert_string_equal(txt, "00000000000000ab");
    id[0] = 0x12;
    assert_int_equal(sr_trace_id_string(id, txt), 32);
    assert_string_equal(txt, "120000000000000000000000000000ab");
    /* Through the sampler: about 1 in 10 kept, each kept span weighted 10. */
    sampler *s = mk("{decision_wait: 1s, sample_rate_attribute: true,"
                    " policies: [{name: det, type: deterministic, sample_rate: 10}]}");
    for (uint64_t n = 1; n <= 2000; n++)
        add_trace(s, n, 1, -1, T0);
    tick(s, T0 + SEC);
    size_t expect = 0;
    for (uint64_t n = 1; n <= 2000; n++) {
        uint8_t tid[16];
        tid_of(tid, n);
        sr_trace_id_string(tid, txt);
        expect += (size_t)sr_deterministic_keep(txt, strlen(txt), 10);
    }
    assert_int_equal(E.n, expect); /* exactly Refinery's choice, trace by trace */
    assert_true(E.n > 140 && E.n < 260); /* 200 expected; 3 sd = 40 */
    for (size_t i = 0; i < E.n; i++)
        assert_int_equal(E.rates[i], 10);
    sampler_free(s);
}

/* dynsampler-go's own vectors (avgsamplerate_test.go, TestAvgSampleUpdateMaps, goal 20). */
static void test_refinery_avg_rates(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        const char *keys[10];
        double counts[10];
        uint32_t rates[10];
    } v[] = {
        {10,
         {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"},
         {1, 1, 2, 5, 8, 15, 45, 612, 2000, 10000},
         {1, 1, 1, 1, 1, 1, 1, 6, 14, 47}},
        {9,
         {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine"},
         {1, 1, 2, 5, 8, 15, 45, 50, 60},
         {1, 1, 2, 5, 8, 11, 24, 26, 30}},
        {5, {"one", "two", "three", "four", "five"}, {1, 1, 2, 5, 7}, {1, 1, 2, 5, 7}},
        {5, {"one", "two", "three", "four", "five"}, {1000, 1000, 2000, 5000, 7000}, {7, 7, 13, 29, 39}},
        {5, {"one", "two", "three", "four", "five"}, {6000, 6000, 6000, 6000, 6000}, {20, 20, 20, 20, 20}},
        {1, {"one"}, {12000}, {20}},
    };
    for (size_t c = 0; c < sizeof(v) / sizeof(v[0]); c++) {
        uint32_t got[10];
        sr_avg_rates(20, v[c].keys, v[c].counts, v[c].n, got);
        for (size_t i = 0; i < v[c].n; i++)
            if (got[i] != v[c].rates[i])
                fail_msg("case %zu key %s: rate %u, want %u", c, v[c].keys[i], got[i], v[c].rates[i]);
    }
}

/* A one-span root trace whose span has attribute k = key. */
static void add_keyed(sampler *s, uint64_t trace, const char *key, uint64_t now)
{
    span_t *sp = sp_new(trace, 1, 0, T0, T0 + MS, -1);
    attr_str(sp, "k", key);
    add(s, req_new("svc", "lib", &sp, 1), now, NULL);
}

/* Trace n of the skewed mix: 90% key "hot", the rest a key of their own. */
static const char *skew_key(uint64_t n, char *buf, size_t cap)
{
    if (n % 10 != 0)
        return "hot";
    snprintf(buf, cap, "r%llu", (unsigned long long)n);
    return buf;
}

/* Dynamic (AvgSampleRate, goal 10): until the first clear everything is at
 * the goal rate; then, from the last interval's counts, the hot key gets
 * ceil(900 / (100 * log10(900) / log10(900))) = 9 and each rare key 1. */
static void test_refinery_dynamic_skew(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, sample_rate_attribute: true, policies: [{name: dyn, type: dynamic,"
                    " sample_rate: 10, clear_frequency: 10s, field_list: [k]}]}");
    char buf[32];
    for (uint64_t n = 1; n <= 1000; n++)
        add_keyed(s, n, skew_key(n, buf, sizeof(buf)), T0);
    tick(s, T0 + SEC); /* first interval: no rates yet, all at the goal */
    for (size_t i = 0; i < E.n; i++)
        assert_int_equal(E.rates[i], 10);
    assert_true(E.n > 60 && E.n < 140);
    E.n = 0;
    for (uint64_t n = 1001; n <= 2000; n++)
        add_keyed(s, n, skew_key(n, buf, sizeof(buf)), T0 + 19 * SEC + SEC / 2);
    tick(s, T0 + 20 * SEC + SEC / 2); /* the clear at T0+11s made rates from the first 1000 */
    size_t hot = 0, rare = 0;
    for (size_t i = 0; i < E.n; i++) {
        if (E.ids[i] % 10 != 0) {
            assert_int_equal(E.rates[i], 9);
            hot++;
        } else {
            assert_int_equal(E.rates[i], 1);
            rare++;
        }
    }
    assert_int_equal(rare, 100);           /* every rare key kept */
    assert_true(hot > 70 && hot < 130);    /* 900/9 = 100 expected; 3 sd = 28 */
    sampler_free(s);
}

/* EMA dynamic: the same skew, rates from the moving average; the burst
 * detector recomputes at once when traffic jumps past burst_multiple x. */
static void test_refinery_ema_dynamic_skew(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, sample_rate_attribute: true, policies: [{name: ema, type: ema_dynamic,"
                    " goal_sample_rate: 10, adjustment_interval: 5s, weight: 0.5, field_list: [k]}]}");
    char buf[32];
    uint64_t n = 1;
    size_t hot = 0, rare = 0;
    for (int sec = 0; sec < 60; sec++) {
        for (int i = 0; i < 100; i++, n++)
            add_keyed(s, n, skew_key(n, buf, sizeof(buf)), T0 + (uint64_t)sec * SEC);
        E.n = 0;
        tick(s, T0 + (uint64_t)sec * SEC + SEC);
        for (size_t i = 0; sec >= 30 && i < E.n; i++) {
            if (E.ids[i] % 10 != 0) {
                assert_true(E.rates[i] >= 5 && E.rates[i] <= 15);
                hot++;
            } else {
                assert_int_equal(E.rates[i], 1);
                rare++;
            }
        }
    }
    assert_int_equal(rare, 300); /* 30 s x 10 rare traces, all kept */
    /* 30 s x 90 hot traces at about 1 in 9: 300 expected */
    assert_true(hot > 200 && hot < 420);
    sampler_free(s);
}

/* Throughput samplers settle near their goal of traces per second. */
static void throughput_settles(const char *policy, size_t per_sec, double goal)
{
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "{decision_wait: 1s, sample_rate_attribute: true, policies: [%s]}", policy);
    sampler *s = mk(cfg);
    char buf[32];
    uint64_t n = 1;
    size_t kept = 0;
    for (int sec = 0; sec < 60; sec++) {
        for (size_t i = 0; i < per_sec; i++, n++)
            add_keyed(s, n, skew_key(n, buf, sizeof(buf)), T0 + (uint64_t)sec * SEC);
        E.n = 0;
        tick(s, T0 + (uint64_t)sec * SEC + SEC);
        if (sec >= 30)
            kept += E.n;
    }
    double rate = (double)kept / 30.0;
    if (rate < goal * 0.5 || rate > goal * 1.5)
        fail_msg("%s: %.1f traces/s kept, goal %.0f", policy, rate, goal);
    sampler_free(s);
}

static void test_refinery_throughput(void **state)
{
    (void)state;
    /* 200 traces/s, 90% on one key and 20 rare keys a second: a goal of 40/s */
    throughput_settles("{name: t, type: ema_throughput, goal_throughput_per_sec: 40, adjustment_interval: 2s,"
                       " field_list: [k]}",
                       200, 40);
    throughput_settles("{name: t, type: windowed_throughput, goal_throughput_per_sec: 40, update_frequency: 1s,"
                       " lookback_frequency: 5s, field_list: [k]}",
                       200, 40);
    throughput_settles("{name: t, type: total_throughput, goal_throughput_per_sec: 40, clear_frequency: 5s,"
                       " field_list: [k]}",
                       200, 40);
}

/* Refinery's rule cases (sample/rules_test.go): spans' fields, rules, and
 * the rate and keep they lead to; each case runs over 200 trace ids so a
 * rate N keeps about 200/N, each kept span weighted N. */
static void test_refinery_rules(void **state)
{
    (void)state;
    static const struct {
        const char *rules;
        const char *span_a, *span_b; /* "key=int:1,key2=str:x" style attributes */
        int rate;                    /* 0: dropped */
    } v[] = {
        {"[{name: int64equals, sample_rate: 10, conditions: [{field: test, operator: '=', value: 1}]}]",
         "test=i:1", NULL, 10},
        {"[{name: gt, sample_rate: 10, conditions: [{field: test, operator: '>', value: 1}]}]", "test=i:2", NULL,
         10},
        {"[{name: lt, sample_rate: 10, conditions: [{field: test, operator: '<', value: 2.2}]}]", "test=i:1", NULL,
         10},
        {"[{name: miss, sample_rate: 0, conditions: [{field: test, operator: '>', value: 2.2}]},"
         " {name: fallback, sample_rate: 10}]",
         "test=i:1", NULL, 10},
        /* trace scope: the conditions may be met by different spans */
        {"[{name: multiple, sample_rate: 10, conditions: [{field: test, operator: '<=', value: 2.2},"
         " {field: test, operator: '>=', value: 2.2}, {field: test_two, operator: '=', value: true}]}]",
         "test=d:2.2,test_two=b:0", "test_two=b:1", 10},
        /* ...but not in span scope */
        {"[{name: multiple, scope: span, sample_rate: 10, conditions: [{field: test, operator: '<=', value: 2.2},"
         " {field: test_two, operator: '=', value: true}]}]",
         "test=d:2.2,test_two=b:0", "test_two=b:1", 1},
        {"[{name: drop, drop: true, conditions: [{field: test, operator: '>', value: 2}]}]", "test=d:3", NULL, 0},
        {"[{name: drop everything, drop: true}]", "test=i:1", NULL, 0},
        {"[{name: all, sample_rate: 4, conditions: [{field: first, operator: '=', value: 1},"
         " {field: second, operator: '=', value: 2}]}]",
         "first=i:1", "first=i:1", 1}, /* no rule matched: kept at 1 */
        {"[{name: ne, sample_rate: 4, conditions: [{field: first, operator: '!=', value: 10}]}]", "first=i:9", NULL,
         4},
        {"[{name: ex, sample_rate: 4, conditions: [{field: first, operator: exists}]}]", "first=i:9", NULL, 4},
        {"[{name: nex, sample_rate: 4, conditions: [{field: second, operator: not-exists}]}]", "first=i:9", NULL,
         4},
        {"[{name: sw, sample_rate: 4, conditions: [{field: first, operator: starts-with, value: honey}]}]",
         "first=s:honeycomb", NULL, 4},
        {"[{name: co, sample_rate: 4, conditions: [{field: first, operator: contains, value: eyco}]}]",
         "first=s:honeycomb", NULL, 4},
        {"[{name: dnc, sample_rate: 4, conditions: [{field: first, operator: does-not-contain, value: noteyco}]}]",
         "first=s:honeycomb", NULL, 4},
        {"[{name: re, sample_rate: 4, conditions: [{field: first, operator: matches, value: '^hon.*mb$'}]}]",
         "first=s:honeycomb", NULL, 4},
        /* matches is Go's regexp (RE2 syntax), unanchored, on the value as
         * text: \\d and (?i) work (POSIX regcomp has neither) */
        {"[{name: red, sample_rate: 4, conditions: [{field: code, operator: matches, value: '\\d{3}'}]}]",
         "code=s:HTTP 503 x", NULL, 4},
        {"[{name: rei, sample_rate: 4, conditions: [{field: first, operator: matches, value: '(?i)^HONEY'}]}]",
         "first=s:honeycomb", NULL, 4},
        {"[{name: ren, sample_rate: 4, conditions: [{field: code, operator: matches, value: '^5\\d\\d$'}]}]",
         "code=i:503", NULL, 4},
        {"[{name: rex, sample_rate: 4, conditions: [{field: code, operator: matches, value: '^\\d+$'}]}]",
         "code=s:5x3", NULL, 1},
        {"[{name: in, sample_rate: 4, conditions: [{field: first, operator: in, value: [a, honeycomb]}]}]",
         "first=s:honeycomb", NULL, 4},
        /* datatype coercion: a string attribute compared as an int */
        {"[{name: dt, sample_rate: 4, conditions: [{field: code, operator: '>=', value: 500, datatype: int}]}]",
         "code=s:503", NULL, 4},
        /* without a datatype a string never compares with a number */
        {"[{name: nodt, sample_rate: 4, conditions: [{field: code, operator: '>=', value: 500}]}]", "code=s:503",
         NULL, 1},
        /* the span's own fields, and root. fields */
        {"[{name: nm, sample_rate: 4, conditions: [{field: root.name, operator: '=', value: op}]}]", "x=i:1", NULL,
         4},
        {"[{name: nd, sample_rate: 4, conditions: [{field: '?.NUM_DESCENDANTS', operator: '>=', value: 2}]}]",
         "x=i:1", "x=i:2", 4},
        /* a rule handing the decision to a downstream sampler (rates: its own) */
        {"[{name: det, sampler: {type: deterministic, sample_rate: 5}}]", "x=i:1", NULL, 5},
        {"[{name: skip, sample_rate: 1, conditions: [{field: x, operator: '=', value: 2}]},"
         " {name: dyn, conditions: [{field: x, operator: exists}], sampler: {type: dynamic, sample_rate: 4,"
         " field_list: [x]}}]",
         "x=i:1", NULL, 4}, /* before the first clear_frequency: the goal */
    };
    for (size_t c = 0; c < sizeof(v) / sizeof(v[0]); c++) {
        char cfg[1024];
        snprintf(cfg, sizeof(cfg),
                 "{decision_wait: 1s, sample_rate_attribute: true, policies: [{name: r, type: rules, rules: %s}]}",
                 v[c].rules);
        sampler *s = mk(cfg);
        E.n = 0;
        for (uint64_t n = 1; n <= 200; n++) {
            span_t *sp[2];
            const char *attrs[2] = {v[c].span_a, v[c].span_b};
            size_t ns = 0;
            for (size_t k = 0; k < 2 && attrs[k] != NULL; k++, ns++) {
                sp[k] = sp_new(n + 1000 * c, (unsigned)k + 1, k ? 1 : 0, T0, T0 + MS, -1);
                char list[128];
                snprintf(list, sizeof(list), "%s", attrs[k]);
                for (char *save = NULL, *a = strtok_r(list, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save)) {
                    char *eq = strchr(a, '=');
                    *eq = '\0';
                    const char *val = eq + 3;
                    switch (eq[1]) {
                    case 'i': attr_int(sp[k], a, strtoll(val, NULL, 10)); break;
                    case 'd': attr_dbl(sp[k], a, strtod(val, NULL)); break;
                    case 'b': attr_bool(sp[k], a, val[0] == '1'); break;
                    default: attr_str(sp[k], a, val); break;
                    }
                }
            }
            add(s, req_new("svc", "lib", sp, ns), T0, NULL);
        }
        flush(s, T0 + SEC);
        if (v[c].rate == 0 && E.n != 0)
            fail_msg("case %zu: %zu traces kept, want none", c, E.n);
        if (v[c].rate == 1 && E.n != 200)
            fail_msg("case %zu: %zu traces kept, want all 200", c, E.n);
        if (v[c].rate > 1) {
            double want = 200.0 / v[c].rate, sd = sqrt(200.0 / v[c].rate * (1 - 1.0 / v[c].rate));
            if (fabs((double)E.n - want) > 4 * sd)
                fail_msg("case %zu: %zu traces kept, want about %.0f", c, E.n, want);
        }
        for (size_t i = 0; i < E.n; i++)
            if (E.rates[i] != v[c].rate)
                fail_msg("case %zu: SampleRate %lld, want %d", c, (long long)E.rates[i], v[c].rate);
        sampler_free(s);
    }
}

static void test_refinery_config_errors(void **state)
{
    (void)state;
    assert_string_equal(mk_err("{policies: [{name: d, type: dynamic, sample_rate: 10}]}"),
                        "gw.yaml:7:20: backends.x.s.policies[0].field_list: required key is missing");
    assert_string_equal(mk_err("{policies: [{name: r, type: rules, rules: [{conditions: [{field: a, operator: '~'}]}]}]}"),
                        "gw.yaml:7:86: backends.x.s.policies[0].rules[0].conditions[0].operator: invalid value (use "
                        "one of: =, !=, >, <, >=, <=, starts-with, contains, does-not-contain, exists, not-exists, "
                        "matches, in, not-in, has-root-span)");
    assert_string_equal(mk_err("{policies: [{name: r, type: rules, rules: [{conditions: [{field: a, operator: '>',"
                               " value: x, datatype: int}]}]}]}"),
                        "gw.yaml:7:98: backends.x.s.policies[0].rules[0].conditions[0].value: does not convert to "
                        "the datatype");
    assert_string_equal(mk_err("{policies: [{name: r, type: rules, rules: [{conditions: [{field: a, operator: matches,"
                               " value: '(?<n>x)'}]}]}]}"),
                        "gw.yaml:7:102: backends.x.s.policies[0].rules[0].conditions[0].value: invalid regular "
                        "expression: invalid perl operator: (?< (RE2 syntax, as Go's regexp: no backreferences, "
                        "lookaround or POSIX word boundaries)");
    assert_non_null(strstr(mk_err("{policies: [{name: r, type: rules, rules: [{sampler: {type: rules}}]}]}"),
                           "rules[0].sampler.type: invalid value (use one of: deterministic, dynamic, ema_dynamic, "
                           "ema_throughput, windowed_throughput, total_throughput)"));
    assert_non_null(strstr(mk_err("{policies: [{name: r, type: rules, rules: [{sampler: {type: dynamic, sample_rate: 2,"
                                  " field_list: [a], weight: 0.5}}]}]}"),
                           "rules[0].sampler.weight: unknown key"));
    assert_string_equal(mk_err("{policies: [{name: e, type: ema_dynamic, field_list: [a], weight: 1.5}]}"),
                        "gw.yaml:7:74: backends.x.s.policies[0].weight: must be more than 0 and less than 1");
}

/* Refinery's trace key: fields sorted, distinct values sorted and joined by
 * U+2022, root. fields from the root, the span count last; a key past 1 KiB
 * keeps a prefix and a hash, still distinct. */
static void test_refinery_trace_key(void **state)
{
    (void)state;
    static const char yaml[] = "{sample_rate: 10, field_list: [k, j, root.name], use_trace_length: true}";
    char err[256];
    config_doc *doc = config_doc_parse("key.yaml", yaml, strlen(yaml), err, sizeof(err));
    assert_non_null(doc);
    sr_policy *p = sr_read(SR_DYNAMIC, "d", config_doc_root(doc), err, sizeof(err));
    assert_non_null(p);
    span_t *sp[3] = {sp_new(1, 1, 0, T0, T0 + 1, -1), sp_new(1, 2, 1, T0, T0 + 1, -1), sp_new(1, 3, 1, T0, T0 + 1, -1)};
    attr_str(sp[0], "k", "b");
    attr_str(sp[1], "k", "a");
    attr_str(sp[2], "k", "b");
    attr_str(sp[2], "j", "z");
    sr_span spans[3];
    for (int i = 0; i < 3; i++)
        spans[i] = (sr_span){.span = sp[i]};
    sr_trace t = {.spans = spans, .n_spans = 3, .root = &spans[0], .span_count = 3};
    assert_string_equal(sr_trace_key(p, &t), "z\xe2\x80\xa2,a\xe2\x80\xa2" "b\xe2\x80\xa2,op,3");
    static char big[2100];
    memset(big, 'x', 2000);
    big[2000] = 'a';
    span_t *l1 = sp_new(2, 1, 0, T0, T0 + 1, -1);
    attr_str(l1, "k", big);
    sr_span s1 = {.span = l1};
    sr_trace t1 = {.spans = &s1, .n_spans = 1, .root = &s1, .span_count = 1};
    char *k1 = strdup(sr_trace_key(p, &t1));
    big[2000] = 'b';
    span_t *l2 = sp_new(3, 1, 0, T0, T0 + 1, -1);
    attr_str(l2, "k", big);
    sr_span s2 = {.span = l2};
    sr_trace t2 = {.spans = &s2, .n_spans = 1, .root = &s2, .span_count = 1};
    const char *k2 = sr_trace_key(p, &t2);
    assert_int_equal(strlen(k1), 1024);
    assert_int_equal(strlen(k2), 1024);
    assert_string_not_equal(k1, k2);
    free(k1);
    sr_free(p);
    config_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refinery_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refinery_avg_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refinery_trace_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refinery_dynamic_skew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refinery_ema_dynamic_skew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refinery_throughput, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refinery_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refinery_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
