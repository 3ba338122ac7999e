/* Tail sampler: requests handed over as their protobuf bytes
 * (sampler_add_wire) against the decoded way (sampler_add). Built once: it
 * calls both itself. */
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
#include "otlp_wire.h"
#include "sampler_internal.h"
#include "sampler_testlib.h"

/* ---- requests as bytes ---- */

/* Emitted requests as bytes, concatenated with their tenant. */
static int emit_bytes(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans, uint64_t *done,
                      uint64_t *full)
{
    (void)spans;
    (void)full;
    buf *b = data;
    *done = 1;
    assert_int_equal(buf_append(b, tenant, strlen(tenant) + 1), 0);
    assert_int_equal(buf_append(b, req, len), 0);
    return 0;
}

/* The same requests into three samplers, one decoded, one as bytes and one
 * as bytes with what otlp_wire_scan noted of the spans: the same spans come
 * out, byte for byte, decided the same way: resources and scopes
 * interleaved in one request, roots and children over requests, every
 * status, late spans after the decision, and two tenants. */
static void test_wire_same_bytes(void **state)
{
    (void)state;
    const char *node = "{decision_wait: 1s, policies: [{name: err, type: status_code, status_codes: [ERROR]},"
                       " {name: slow, type: latency, threshold_ms: 50}, {name: some, type: probabilistic,"
                       " sampling_percentage: 30}]}";
    sampler *dec = mk(node);
    config *keep[2] = {g_cfg};
    g_cfg = NULL;
    sampler *wire = mk(node);
    keep[1] = g_cfg;
    g_cfg = NULL;
    sampler *noted = mk(node);
    assert_true(sampler_wire_ok(dec));
    buf out_dec = BUF_INIT, out_wire = BUF_INIT, late_dec = BUF_INIT, late_wire = BUF_INIT;
    buf out_noted = BUF_INIT, late_noted = BUF_INIT;
    size_t held = 0;
    for (int round = 0; round < 3; round++) {
        for (uint64_t t = 1; t <= 300; t++) {
            span_t *sp[3];
            uint64_t start = T0 + t * MS;
            sp[0] = sp_new(t * 7919, 1 + round, round == 0 ? 0 : 1, start, start + (t % 9) * 10 * MS,
                           (int)(t % 4) - 1);
            sp[1] = sp_new(t * 7919 + 1, 2 + round, 1, start, start + MS, round == 2 && t % 5 == 0 ? 2 : 0);
            sp[2] = sp_new(t * 7919, 10 + round, 1, start, start + 2 * MS, -1);
            if (t % 3 == 0)
                attr_str(sp[2], "k", "v");
            req_t *r = req_join(req_new("a", "lib1", sp, 2), req_new(t % 2 ? "b" : "a", "lib2", sp + 2, 1));
            size_t n = protobuf_c_message_get_packed_size(&r->base);
            uint8_t *b = arena_alloc(A, n + 1);
            protobuf_c_message_pack(&r->base, b);
            const char *tenant = t % 5 == 0 ? "other" : "t1";
            uint64_t now = T0 + (uint64_t)round * 2 * SEC;
            size_t hd = sampler_add(dec, 0, &r->base, tenant, now, &late_dec), items = 0;
            assert_int_equal(sampler_add_wire(wire, 0, b, n, NULL, 0, tenant, now, &late_wire), hd);
            otlp_wire_spans notes = {.v = arena_alloc(A, otlp_wire_spans_cap(n) * sizeof(otlp_wire_span)),
                                     .cap = otlp_wire_spans_cap(n)};
            assert_int_equal(otlp_wire_scan(OTLP_TRACES, b, n, &items, &notes), 1);
            assert_int_equal(notes.n, 3);
            assert_int_equal(sampler_add_wire(noted, 0, b, n, notes.v, notes.n, tenant, now, &late_noted), hd);
            held += hd;
        }
        sampler_tick(dec, 0, T0 + (uint64_t)round * 2 * SEC + 1500 * MS, emit_bytes, &out_dec);
        sampler_tick(wire, 0, T0 + (uint64_t)round * 2 * SEC + 1500 * MS, emit_bytes, &out_wire);
        sampler_tick(noted, 0, T0 + (uint64_t)round * 2 * SEC + 1500 * MS, emit_bytes, &out_noted);
        arena_reset(A);
    }
    sampler_flush(dec, 0, T0 + 10 * SEC, emit_bytes, &out_dec);
    sampler_flush(wire, 0, T0 + 10 * SEC, emit_bytes, &out_wire);
    sampler_flush(noted, 0, T0 + 10 * SEC, emit_bytes, &out_noted);
    assert_true(held > 0);
    assert_true(out_dec.len > 0 && late_dec.len > 0); /* something was kept, and some spans came late */
    assert_int_equal(out_wire.len, out_dec.len);
    assert_memory_equal(out_wire.data, out_dec.data, out_dec.len);
    assert_int_equal(late_wire.len, late_dec.len);
    assert_memory_equal(late_wire.data, late_dec.data, late_dec.len);
    assert_int_equal(out_noted.len, out_dec.len);
    assert_memory_equal(out_noted.data, out_dec.data, out_dec.len);
    assert_int_equal(late_noted.len, late_dec.len);
    assert_memory_equal(late_noted.data, late_dec.data, late_dec.len);
    buf_free(&out_dec);
    buf_free(&out_wire);
    buf_free(&out_noted);
    buf_free(&late_dec);
    buf_free(&late_wire);
    buf_free(&late_noted);
    sampler_free(noted);
    sampler_free(wire);
    sampler_free(dec);
    config_free(keep[0]);
    config_free(keep[1]);
}

/* The shards a request's spans belong to, from the bytes and from the
 * scan's notes: the same, over requests whose traces spread across shards. */
static void test_wire_shards_from_notes(void **state)
{
    (void)state;
    sampler *s = mk_shards("{decision_wait: 1s, policies: [{name: a, type: always_sample}]}", 7);
    for (uint64_t t = 1; t <= 50; t++) {
        span_t *sp[3] = {sp_new(t * 31, 1, 0, T0, T0 + MS, 0), sp_new(t * 31 + 1, 2, 1, T0, T0 + MS, -1),
                         sp_new(t * 977, 3, 1, T0, T0 + MS, 2)};
        req_t *r = req_join(req_new("a", "lib", sp, 2), req_new("b", "lib", sp + 2, 1));
        size_t n = protobuf_c_message_get_packed_size(&r->base), items = 0;
        uint8_t *b = arena_alloc(A, n);
        protobuf_c_message_pack(&r->base, b);
        otlp_wire_spans notes = {.v = arena_alloc(A, otlp_wire_spans_cap(n) * sizeof(otlp_wire_span)),
                                 .cap = otlp_wire_spans_cap(n)};
        assert_int_equal(otlp_wire_scan(OTLP_TRACES, b, n, &items, &notes), 1);
        uint8_t read[7] = {0}, noted[7] = {0}, want[7] = {0};
        sampler_shards_wire(s, b, n, NULL, 0, read);
        sampler_shards_wire(s, b, n, notes.v, notes.n, noted);
        for (int i = 0; i < 3; i++)
            want[sampler_shard_of(s, sp[i]->trace_id.data)] = 1;
        assert_memory_equal(read, want, sizeof(want));
        assert_memory_equal(noted, want, sizeof(want));
    }
    sampler_free(s);
}

/* Policies that read span or resource fields need the decoded request:
 * such a sampler takes no bytes. */
static void test_wire_needs_decoding(void **state)
{
    (void)state;
    static const char *const reads[] = {
        "{policies: [{name: a, type: string_attribute, key: k, values: [v]}]}",
        "{policies: [{name: a, type: trace_state, key: k, values: [v]}]}",
        "{policies: [{name: a, type: boolean_attribute, key: k, value: true}]}",
        "{policies: [{name: a, type: ottl_condition, span: ['attributes[\"k\"] == \"v\"']}]}",
    };
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        sampler *s = mk(reads[i]);
        assert_false(sampler_wire_ok(s));
        span_t *sp = sp_new(1, 1, 0, T0, T0 + MS, -1);
        req_t *r = req_new("a", "lib", &sp, 1);
        size_t n = protobuf_c_message_get_packed_size(&r->base);
        uint8_t *b = arena_alloc(A, n);
        protobuf_c_message_pack(&r->base, b);
        assert_int_equal(sampler_add_wire(s, 0, b, n, NULL, 0, "t1", T0, NULL), 0);
        sampler_free(s);
    }
    sampler *s = mk("{policies: [{name: a, type: latency, threshold_ms: 5}, {name: b, type: span_count, min_spans: 2}]}");
    assert_true(sampler_wire_ok(s));
    sampler_free(s);
}

/* sampler_add_wire is given bytes otlp_wire_scan accepted, but reads them
 * with bounds of its own: every truncation of a valid request, and random
 * bytes, are read without going past the end (ASan in the test command) and
 * never buffer more spans than there are. */
static void test_wire_bad_bytes(void **state)
{
    (void)state;
    sampler *s = mk("{decision_wait: 1s, policies: [{name: a, type: always_sample}]}");
    span_t *sp[3] = {sp_new(1, 1, 0, T0, T0 + MS, 2), sp_new(1, 2, 1, T0, T0 + MS, -1), sp_new(2, 3, 0, T0, T0 + MS, 0)};
    req_t *r = req_new("svc", "lib", sp, 3);
    size_t n = protobuf_c_message_get_packed_size(&r->base);
    uint8_t *b = malloc(n);
    assert_non_null(b);
    protobuf_c_message_pack(&r->base, b);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *p = malloc(cut + 1); /* exactly cut bytes readable (ASan) */
        assert_non_null(p);
        memcpy(p, b, cut);
        assert_true(sampler_add_wire(s, 0, p, cut, NULL, 0, "t1", T0, NULL) <= 3);
        free(p);
    }
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(x % 96);
        uint8_t *p = malloc(len + 1);
        assert_non_null(p);
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            p[k] = (uint8_t)x;
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        assert_true(sampler_add_wire(s, 0, p, len, NULL, 0, "t1", T0, NULL) <= len / 2);
        free(p);
    }
    free(b);
    flush(s, T0 + 2 * SEC);
    sampler_free(s);
}

/* sm_next_field reads the common shapes inline: field for field it must
 * read what sm_next_field_any reads, on every input. Both walk the same
 * bytes side by side: every 1- to 3-byte prefix before a tail of random
 * bytes (each tag, wire type and length byte, truncated or not), then
 * random buffers. */
static void walk_same(const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *q = data, *end = data + len;
    for (;;) {
        sm_field f, g;
        memset(&f, 0xa5, sizeof(f));
        memset(&g, 0xa5, sizeof(g));
        int a = sm_next_field(&p, end, &f), b = sm_next_field_any(&q, end, &g);
        assert_int_equal(a, b);
        assert_ptr_equal(p, q);
        if (!a)
            return;
        assert_int_equal(f.num, g.num);
        assert_int_equal(f.wt, g.wt);
        assert_ptr_equal(f.start, g.start);
        assert_ptr_equal(f.payload, g.payload);
        assert_ptr_equal(f.end, g.end);
        assert_int_equal(f.plen, g.plen);
        assert_int_equal(f.v, g.v);
    }
}

static void test_field_reader_inline_same(void **state)
{
    (void)state;
    uint8_t buf[64];
    for (unsigned x = 0; x < 256; x++) {
        for (unsigned y = 0; y < 256; y++) {
            for (size_t len = 1; len <= 12; len++) {
                for (size_t i = 0; i < sizeof(buf); i++)
                    buf[i] = (uint8_t)rnd();
                buf[0] = (uint8_t)x;
                buf[1] = (uint8_t)y;
                walk_same(buf, len);
            }
            buf[0] = (uint8_t)x;
            buf[1] = (uint8_t)y;
            buf[2] = (uint8_t)rnd();
            walk_same(buf, 3 + rnd() % 60);
        }
    }
    for (unsigned n = 0; n < 20000; n++) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)(rnd() % 4 == 0 ? rnd() % 16 : rnd()); /* short lengths and varints often */
        walk_same(buf, rnd() % (sizeof(buf) + 1));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wire_same_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_shards_from_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_needs_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_bad_bytes, setup, teardown),
        cmocka_unit_test(test_field_reader_inline_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
