/* Tail sampler output and delivery: resource and scope grouping, tenants
 * and shards, handing undecided traces over (sampler_release), the metrics
 * hook, and sampled traces held until every destination has room. */
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

/* ---- output ---- */

static void test_output_grouping(void **state)
{
    (void)state;
    sampler *s = mk("{record_policy: true, policies: [{name: keep-all, type: always_sample}]}");
    /* Two resources; the first with spans of traces 1 and 2 interleaved. */
    span_t *a1 = sp_new(1, 1, 0, T0, T0 + 5, -1), *b1 = sp_new(2, 1, 0, T0, T0 + 5, -1),
           *a2 = sp_new(1, 2, 1, T0, T0 + 5, -1);
    attr_str(a1, "k", "v");
    span_t *first[] = {a1, b1, a2};
    span_t *a3 = sp_new(1, 3, 1, T0, T0 + 5, 2);
    req_t *r = req_join(req_new("front", "http", first, 3), req_new("back", "db", &a3, 1));
    r->resource_spans[1]->schema_url = "https://opentelemetry.io/schemas/1.21.0";
    size_t a1_size = protobuf_c_message_get_packed_size(&a1->base);
    assert_int_equal(add(s, r, T0, NULL), 4);
    /* A later request for trace 1 with the same resource and scope as the first. */
    span_t *a4 = sp_new(1, 4, 1, T0, T0 + 5, -1);
    assert_int_equal(add(s, req_new("front", "http", &a4, 1), T0 + 1, NULL), 1);
    arena_reset(A); /* the sampler holds its own copies */
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.spans_held, 5);
    flush(s, T0 + 2);
    assert_int_equal(E.n, 2);
    assert_int_equal(E.spans, 5);
    /* The last emit is trace 2... find trace 1's request by decoding again. */
    sampler_free(s);

    /* Check trace 1's request in detail with a sampler that keeps only it. */
    E.n = 0;
    E.spans = 0;
    s = mk("{record_policy: true, policies: [{name: t1, type: string_attribute, key: k, values: [v]}]}");
    a1 = sp_new(1, 1, 0, T0, T0 + 5, -1);
    attr_str(a1, "k", "v");
    b1 = sp_new(2, 1, 0, T0, T0 + 5, -1);
    a2 = sp_new(1, 2, 1, T0, T0 + 5, -1);
    span_t *f2[] = {a1, b1, a2};
    a3 = sp_new(1, 3, 1, T0, T0 + 5, 2);
    r = req_join(req_new("front", "http", f2, 3), req_new("back", "db", &a3, 1));
    r->resource_spans[1]->schema_url = "https://opentelemetry.io/schemas/1.21.0";
    add(s, r, T0, NULL);
    a4 = sp_new(1, 4, 1, T0, T0 + 5, -1);
    add(s, req_new("front", "http", &a4, 1), T0 + 1, NULL);
    flush(s, T0 + 2);
    assert_int_equal(E.n, 1);
    const req_t *o = E.last;
    assert_int_equal(o->n_resource_spans, 2);
    const rs_t *front = o->resource_spans[0], *back = o->resource_spans[1];
    assert_string_equal(front->resource->attributes[0]->value->string_value, "front");
    assert_string_equal(back->resource->attributes[0]->value->string_value, "back");
    assert_string_equal(back->schema_url, "https://opentelemetry.io/schemas/1.21.0");
    assert_int_equal(front->n_scope_spans, 1); /* both requests' front/http spans under one scope */
    assert_string_equal(front->scope_spans[0]->scope->name, "http");
    assert_int_equal(front->scope_spans[0]->n_spans, 3);
    assert_int_equal(back->n_scope_spans, 1);
    assert_string_equal(back->scope_spans[0]->scope->name, "db");
    assert_int_equal(back->scope_spans[0]->n_spans, 1);
    unsigned want[] = {1, 2, 4};
    for (size_t i = 0; i < 3; i++) {
        const span_t *sp = front->scope_spans[0]->spans[i];
        assert_int_equal(sp->span_id.data[7], want[i]);
        assert_int_equal(sp->trace_id.data[15], 1);
    }
    /* record_policy names the policy on each scope (the Collector's tailsampling.policy) */
    for (size_t i = 0; i < 2; i++) {
        const Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = o->resource_spans[i]->scope_spans[0]->scope;
        assert_int_equal(sc->n_attributes, 1);
        assert_string_equal(sc->attributes[0]->key, "tailsampling.policy");
        assert_string_equal(sc->attributes[0]->value->string_value, "t1");
    }
    const span_t *o1 = front->scope_spans[0]->spans[0];
    assert_int_equal(o1->n_attributes, 1);
    assert_string_equal(o1->attributes[0]->key, "k");
    assert_int_equal(protobuf_c_message_get_packed_size(&o1->base), a1_size); /* the span itself is unchanged */
    assert_int_equal(back->scope_spans[0]->spans[0]->status->code, 2);
    assert_int_equal(a1->n_attributes, 1); /* input untouched */
    sampler_free(s);
}

static void test_tenants_and_shards(void **state)
{
    (void)state;
    sampler *s = mk_shards("{policies: [{name: all, type: always_sample}]}", 3);
    span_t *sp = sp_new(42, 1, 0, T0, T0 + 1, -1);
    req_t *r = req_new("svc", "lib", &sp, 1);
    size_t sh = sampler_shard_of(s, sp->trace_id.data);
    assert_true(sh < 3);
    assert_int_equal(sampler_add(s, (sh + 1) % 3, &r->base, "a", T0, NULL), 0); /* not this shard's */
    assert_int_equal(sampler_add(s, sh, &r->base, "a", T0, NULL), 1);
    assert_int_equal(sampler_add(s, sh, &r->base, "b", T0, NULL), 1);
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.traces_in_flight, 2); /* same id, two tenants: two traces */
    sampler_flush(s, sh, T0, on_emit, &E);
    assert_int_equal(E.n, 2);
    /* A late span for tenant b does not follow tenant a's cache entry alone. */
    sampler_free(s);
}

/* Cluster handover: keep trace 7, give the others (trace 8 twice: once
 * refused, so it stays). */
static int keep_seven(void *data, const uint8_t id[16])
{
    (void)data;
    return id[15] == 7;
}

static int give_refuses = 0;
static int on_give(void *data, const uint8_t id[16], const char *tenant, const uint8_t *req, size_t len, size_t spans)
{
    assert_int_equal(id[0], 0xab);
    if (give_refuses)
        return -1;
    uint64_t done = 0, full = 0;
    on_emit(data, tenant, req, len, spans, &done, &full);
    return 0;
}

static void test_release_hands_over_undecided_traces(void **state)
{
    (void)state;
    sampler *s = mk("{policies: [{name: all, type: always_sample}]}");
    span_t *sp[4] = {sp_new(7, 1, 0, T0, T0 + 1, -1), sp_new(8, 1, 0, T0, T0 + 1, -1), sp_new(8, 2, 1, T0, T0 + 1, -1),
                     sp_new(9, 1, 0, T0, T0 + 1, -1)};
    req_t *r = req_new("svc", "lib", sp, 4);
    assert_int_equal(sampler_add(s, 0, &r->base, "t1", T0, NULL), 4);
    give_refuses = 1;
    assert_int_equal(sampler_release(s, 0, keep_seven, on_give, &E), 0);
    assert_int_equal(E.n, 0);
    give_refuses = 0;
    assert_int_equal(sampler_release(s, 0, keep_seven, on_give, &E), 2);
    assert_int_equal(E.n, 2);
    assert_int_equal(E.spans, 3);
    assert_string_equal(E.tenant, "t1");
    assert_true(emitted_has(8) && emitted_has(9) && !emitted_has(7));
    /* Undecided and unremembered: the spans carry no policy attribute, and a
     * later span of trace 8 starts a new trace instead of following a decision. */
    assert_int_equal(E.last->resource_spans[0]->scope_spans[0]->spans[0]->n_attributes, 0);
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.released, 2);
    assert_int_equal(st.spans_released, 3);
    assert_int_equal(st.traces_in_flight, 1);
    assert_int_equal(st.sampled + st.dropped, 0);
    span_t *again = sp_new(8, 3, 1, T0, T0 + 1, -1);
    assert_int_equal(sampler_add(s, 0, &req_new("svc", "lib", &again, 1)->base, "t1", T0, NULL), 1);
    E.n = 0;
    E.spans = 0;
    flush(s, T0 + SEC);
    assert_int_equal(E.n, 2); /* 7 and the new 8, decided here */
    assert_int_equal(E.spans, 2);
    /* NULL keep: everything goes (a graceful stop). */
    span_t *last = sp_new(10, 1, 0, T0, T0 + 1, -1);
    assert_int_equal(sampler_add(s, 0, &req_new("svc", "lib", &last, 1)->base, "t2", T0, NULL), 1);
    assert_int_equal(sampler_release(s, 0, NULL, on_give, &E), 1);
    sampler_get_stats(s, &st);
    assert_int_equal(st.traces_in_flight, 0);
    assert_int_equal(st.bytes_held, 0);
    sampler_free(s);
}

/* A gauge of the "shop-traces" pipeline. */
static long long gauge(const char *family)
{
    return (long long)metrics_value(
        metrics_series(metrics_family(family, METRIC_GAUGE, ""), "pipeline=\"shop-traces\""));
}

/* An emit callback that records the in-flight gauge while the sampled
 * trace is being handed on. */
static int inflight_seen_in_emit = -1;
static int emit_reading_gauge(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans,
                              uint64_t *done, uint64_t *full)
{
    (void)data, (void)tenant, (void)req, (void)len, (void)spans, (void)full;
    *done = 1;
    inflight_seen_in_emit = (int)gauge("otlp_gateway_sampler_traces_in_flight");
    return 0;
}

static void test_metrics_hook(void **state)
{
    (void)state;
    metrics_reset_for_tests();
    sampler *s = mk("{policies: [{name: errors, type: status_code, status_codes: [ERROR]}]}");
    sampler_set_metrics(s, "shop-traces");
    add_trace(s, 1, 1, 2, T0);
    add_trace(s, 2, 1, 1, T0);
    flush(s, T0 + SEC);
    buf out = BUF_INIT;
    assert_int_equal(metrics_render(&out), 0);
    buf_putc(&out, '\0');
    assert_non_null(strstr(out.data, "otlp_gateway_sampler_policy_decisions_total{pipeline=\"shop-traces\","
                                     "policy=\"errors\",outcome=\"sampled\"} 1"));
    assert_non_null(strstr(out.data, "otlp_gateway_sampler_traces_total{pipeline=\"shop-traces\","
                                     "decision=\"dropped\",reason=\"flush\"} 1"));
    assert_non_null(strstr(out.data, "otlp_gateway_sampler_traces_in_flight{pipeline=\"shop-traces\"} 0"));
    assert_non_null(strstr(out.data, "otlp_gateway_sampler_bytes_held{pipeline=\"shop-traces\"} "));
    buf_free(&out);
    /* A sampled trace counts as in flight until it has been handed on, so a
     * gauge at 0 means everything decided is with the backends. */
    add_trace(s, 3, 1, 2, T0);
    sampler_flush(s, 0, T0 + SEC, emit_reading_gauge, NULL);
    assert_int_equal(inflight_seen_in_emit, 1);
    sampler_free(s);
}

/* Two destinations with room counted in traces: a sampled trace that one
 * of them cannot take yet is held (in bytes_held, in order) and offered
 * again to that one only, so each destination gets each trace exactly
 * once; while the budget is full of held traces sampler_full says so; at
 * shutdown sampler_abandon frees and counts what is left. */
typedef struct dests {
    size_t room[2];
    unsigned got[2][16]; /* per destination: deliveries of trace id i */
    size_t calls;
    arena *a;
} dests;

static int two_dest_emit(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans,
                         uint64_t *done, uint64_t *full)
{
    dests *d = data;
    (void)tenant, (void)spans;
    otlp_request out;
    char err[160];
    assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, req, len, d->a, &out, err, sizeof(err)), 0);
    const req_t *r = (const req_t *)out.msg;
    unsigned id = r->resource_spans[0]->scope_spans[0]->spans[0]->trace_id.data[15] & 15;
    d->calls++;
    for (int j = 0; j < 2; j++) {
        if (*done >> j & 1 || *full >> j & 1)
            continue;
        if (d->room[j] == 0) {
            *full |= 1ull << j;
            continue;
        }
        d->room[j]--;
        d->got[j][id]++;
        *done |= 1ull << j;
    }
    return (*done & 3) != 3;
}

static void test_held_until_every_destination_has_room(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, max_bytes: 1MiB, policies: [{name: all, type: always_sample}]}");
    sampler_set_destinations(s, 2);
    dests d = {.room = {2, 100}, .a = arena_new(0)};
    for (uint64_t t = 1; t <= 5; t++)
        add_trace(s, t, 1, 0, T0);
    sampler_tick(s, 0, T0 + 2 * SEC, two_dest_emit, &d);
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(st.held_traces, 3);
    assert_true(st.held_bytes > 0 && st.bytes_held >= st.held_bytes);
    assert_int_equal(sampler_held(s, 0, NULL), 3);
    for (unsigned i = 1; i <= 5; i++) {
        assert_int_equal(d.got[1][i], 1);
        assert_int_equal(d.got[0][i], i <= 2);
    }
    /* Still no room: the held traces are not even encoded again. */
    size_t calls = d.calls;
    sampler_tick(s, 0, T0 + 3 * SEC, two_dest_emit, &d);
    assert_int_equal(d.calls, calls + 1); /* the first held one finds dest 0 full; the rest are skipped */
    /* Room: each held trace reaches dest 0 once, and dest 1 never again. */
    d.room[0] = 100;
    sampler_tick(s, 0, T0 + 4 * SEC, two_dest_emit, &d);
    for (unsigned i = 1; i <= 5; i++) {
        assert_int_equal(d.got[0][i], 1);
        assert_int_equal(d.got[1][i], 1);
    }
    sampler_get_stats(s, &st);
    assert_int_equal(st.held_traces, 0);
    assert_int_equal(st.bytes_held, 0);
    assert_int_equal(sampler_full(s, 0), 0);

    /* Fill the budget with held traces (dest 0 full): sampler_full. */
    d.room[0] = 0;
    span_t *big[64];
    uint64_t t = 100;
    while (!sampler_full(s, 0) && t < 100000) {
        for (unsigned k = 0; k < 64; k++) {
            big[k] = sp_new(t, k + 1, k ? 1 : 0, T0, T0 + 1, 0);
            attr_str(big[k], "payload", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        }
        add(s, req_new("svc", "lib", big, 64), T0 + 5 * SEC, NULL);
        sampler_tick(s, 0, T0 + 7 * SEC, two_dest_emit, &d);
        t++;
    }
    assert_int_equal(sampler_full(s, 0), 1);
    sampler_get_stats(s, &st);
    assert_true(st.bytes_held >= (1u << 20));
    assert_int_equal(st.sampled, st.held_traces + 5);
    uint64_t spans = 0;
    size_t held = sampler_held(s, 0, &spans);
    assert_true(held > 0);
    assert_int_equal(spans, held * 64);
    /* Shutdown with no room ever: abandoned, counted, and the memory freed. */
    uint64_t lost = 0;
    assert_int_equal(sampler_abandon(s, 0, &lost), held);
    assert_int_equal(lost, held * 64);
    sampler_get_stats(s, &st);
    assert_int_equal(st.held_traces, 0);
    assert_int_equal(st.abandoned, held);
    assert_int_equal(sampler_full(s, 0), 0);

    /* Late spans the caller could not deliver everywhere (sampler_hold):
     * offered again only to the destination that lacks them. */
    memset(d.got, 0, sizeof(d.got));
    d.room[0] = 100;
    d.room[1] = 0;
    span_t *late = sp_new(7, 9, 1, T0, T0 + 1, 0);
    req_t *lr = req_new("svc", "lib", &late, 1);
    uint8_t enc[512];
    size_t elen = protobuf_c_message_pack(&lr->base, enc);
    assert_int_equal(sampler_hold(s, 0, "t1", enc, elen, 1, 1 /* destination 0 has them */), 0);
    sampler_tick(s, 0, T0 + 8 * SEC, two_dest_emit, &d);
    assert_int_equal(sampler_held(s, 0, &spans), 1);
    assert_int_equal(spans, 1);
    d.room[1] = 1;
    sampler_tick(s, 0, T0 + 9 * SEC, two_dest_emit, &d);
    assert_int_equal(sampler_held(s, 0, NULL), 0);
    assert_int_equal(d.got[0][7], 0);
    assert_int_equal(d.got[1][7], 1);
    sampler_get_stats(s, &st);
    assert_int_equal(st.bytes_held, 0);
    arena_free(d.a);
    sampler_free(s);
}

/* The gauges move once per call into a shard, by what changed under its
 * lock: after every entry point they read what the stats say (in flight:
 * undecided, and sampled but not yet handed on), and nothing once the
 * sampler is gone. */
static void assert_gauges_match(sampler *s)
{
    sampler_stats st;
    sampler_get_stats(s, &st);
    assert_int_equal(gauge("otlp_gateway_sampler_bytes_held"), (long long)st.bytes_held);
    assert_int_equal(gauge("otlp_gateway_sampler_traces_in_flight"), (long long)(st.traces_in_flight + st.held_traces));
}

static void test_gauges_follow_every_entry_point(void **state)
{
    (void)state;
    metrics_reset_for_tests();
    sampler *s = mk("{decision_wait: 1s, policies: [{name: errors, type: status_code, status_codes: [ERROR]}]}");
    sampler_set_destinations(s, 2);
    for (uint64_t t = 1; t <= 4; t++)
        add_trace(s, t, 1, t % 2 == 0 ? 2 : -1, T0);
    sampler_set_metrics(s, "shop-traces"); /* after the first spans: the gauges start from what is held */
    assert_int_equal(gauge("otlp_gateway_sampler_traces_in_flight"), 4);
    assert_true(gauge("otlp_gateway_sampler_bytes_held") > 0);
    assert_gauges_match(s);
    for (uint64_t t = 5; t <= 8; t++)
        add_trace(s, t, 1, 2, T0 + 500 * MS);
    assert_int_equal(gauge("otlp_gateway_sampler_traces_in_flight"), 8);
    assert_gauges_match(s);
    /* Traces 1-4 decided: 1 and 3 dropped, 2 and 4 held for destination 0. */
    dests d = {.room = {0, 100}, .a = arena_new(0)};
    sampler_tick(s, 0, T0 + SEC, two_dest_emit, &d);
    assert_int_equal(sampler_held(s, 0, NULL), 2);
    assert_int_equal(gauge("otlp_gateway_sampler_traces_in_flight"), 6);
    assert_gauges_match(s);
    span_t *late = sp_new(2, 9, 1, T0, T0 + 1, 0);
    req_t *lr = req_new("svc", "lib", &late, 1);
    uint8_t enc[512];
    size_t elen = protobuf_c_message_pack(&lr->base, enc);
    assert_int_equal(sampler_hold(s, 0, "t1", enc, elen, 1, 2), 0);
    assert_int_equal(gauge("otlp_gateway_sampler_traces_in_flight"), 7);
    assert_gauges_match(s);
    uint64_t lost = 0;
    assert_int_equal(sampler_abandon(s, 0, &lost), 3);
    assert_int_equal(gauge("otlp_gateway_sampler_traces_in_flight"), 4);
    assert_gauges_match(s);
    sampler_free(s);
    assert_int_equal(gauge("otlp_gateway_sampler_traces_in_flight"), 0);
    assert_int_equal(gauge("otlp_gateway_sampler_bytes_held"), 0);
    arena_free(d.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_output_grouping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenants_and_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_hands_over_undecided_traces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_until_every_destination_has_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauges_follow_every_entry_point, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
