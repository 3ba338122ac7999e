/* otlp_split: parts respect item/byte limits, keep resource and scope
 * grouping and order, and lose nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "otlp.h"

#define SPAN(name) "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\",\"name\":\"" name "\"}"

static const char traces[] =
    "{\"resourceSpans\":["
    "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"r0\"}}]},\"scopeSpans\":["
    "{\"scope\":{\"name\":\"s0\"},\"spans\":[" SPAN("a") "," SPAN("b") "," SPAN("c") "]},"
    "{\"scope\":{\"name\":\"s1\"},\"spans\":[" SPAN("d") "," SPAN("e") "]}]},"
    "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"r1\"}}]},\"scopeSpans\":["
    "{\"scope\":{\"name\":\"s2\"},\"spans\":[" SPAN("f") "," SPAN("g") "," SPAN("h") "," SPAN("i") "]}]}]}";

typedef struct collected {
    size_t n;
    size_t items[16];
    char json[16][2048];
} collected;

static int collect(const ProtobufCMessage *part, size_t items, void *data)
{
    collected *c = data;
    assert_true(c->n < 16);
    buf b = BUF_INIT;
    assert_int_equal(otlp_encode_json(part, &b), 0);
    buf_putc(&b, '\0');
    snprintf(c->json[c->n], sizeof(c->json[0]), "%s", b.data);
    buf_free(&b);
    /* Every part is a valid request on its own. */
    uint8_t packed[4096];
    size_t len = protobuf_c_message_get_packed_size(part);
    assert_true(len <= sizeof(packed));
    protobuf_c_message_pack(part, packed);
    arena *a = arena_new(0);
    otlp_request r;
    char err[200];
    assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, packed, len, a, &r, err, sizeof(err)), 0);
    assert_int_equal(r.items, items);
    arena_free(a);
    c->items[c->n++] = items;
    return 0;
}

static void decode(const char *json, otlp_signal sig, arena *a, otlp_request *r)
{
    char err[200];
    if (otlp_decode(sig, OTLP_JSON, (const uint8_t *)json, strlen(json), a, r, err, sizeof(err)) != 0)
        fail_msg("decode: %s", err);
}

/* Names in order of appearance in a part's JSON. */
static void names_in(const char *json, char *out, size_t outlen)
{
    out[0] = '\0';
    for (const char *p = json; (p = strstr(p, "\"name\":\"")) != NULL;) {
        p += 8;
        size_t n = strcspn(p, "\"");
        if (n == 1) /* span names are one letter; scope names are two */
            strncat(out, p, outlen - strlen(out) - 1 < n ? outlen - strlen(out) - 1 : n);
        p += n;
    }
}

static void test_item_limit_keeps_grouping(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    otlp_request r;
    decode(traces, OTLP_TRACES, a, &r);
    collected c = {0};
    assert_int_equal(otlp_split(OTLP_TRACES, r.msg, 3, 1 << 20, a, collect, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.items[0] + c.items[1] + c.items[2], 9);
    char names[32];
    names_in(c.json[0], names, sizeof(names));
    assert_string_equal(names, "abc");
    names_in(c.json[1], names, sizeof(names));
    assert_string_equal(names, "def");
    names_in(c.json[2], names, sizeof(names));
    assert_string_equal(names, "ghi");
    /* Part 2 spans two resources, each with its own resource and scope. */
    assert_non_null(strstr(c.json[1], "\"stringValue\":\"r0\""));
    assert_non_null(strstr(c.json[1], "\"stringValue\":\"r1\""));
    assert_non_null(strstr(c.json[1], "\"name\":\"s1\""));
    assert_non_null(strstr(c.json[1], "\"name\":\"s2\""));
    assert_null(strstr(c.json[1], "\"name\":\"s0\""));
    /* The last part repeats r1's resource and scope. */
    assert_non_null(strstr(c.json[2], "\"stringValue\":\"r1\""));
    assert_non_null(strstr(c.json[2], "\"name\":\"s2\""));
    arena_free(a);
}

static void test_no_limit_hit_gives_one_part(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    otlp_request r;
    decode(traces, OTLP_TRACES, a, &r);
    collected c = {0};
    assert_int_equal(otlp_split(OTLP_TRACES, r.msg, 1000, 1 << 20, a, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.items[0], 9);
    arena_free(a);
}

static void test_byte_limit_and_oversized_item(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    otlp_request r;
    decode(traces, OTLP_TRACES, a, &r);
    collected c = {0};
    /* Smaller than one span: every span becomes a part of its own. */
    assert_int_equal(otlp_split(OTLP_TRACES, r.msg, 1000, 8, a, collect, &c), 0);
    assert_int_equal(c.n, 9);
    for (size_t i = 0; i < c.n; i++)
        assert_int_equal(c.items[i], 1);
    arena_free(a);
}

static int count_metric_parts(const ProtobufCMessage *part, size_t items, void *data)
{
    (void)part;
    size_t *parts = data;
    parts[parts[0] + 1] = items;
    parts[0]++;
    return 0;
}

static void test_metrics_count_points_and_stay_whole(void **state)
{
    (void)state;
    static const char metrics[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"m1\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\"},{\"asInt\":\"2\"},{\"asInt\":\"3\"},"
        "{\"asInt\":\"4\"},{\"asInt\":\"5\"}]}},"
        "{\"name\":\"m2\",\"sum\":{\"dataPoints\":[{\"asDouble\":1.5}]}},"
        "{\"name\":\"m3\",\"sum\":{\"dataPoints\":[{\"asDouble\":2.5}]}}]}]}]}";
    arena *a = arena_new(0);
    otlp_request r;
    decode(metrics, OTLP_METRICS, a, &r);
    size_t parts[8] = {0};
    assert_int_equal(otlp_split(OTLP_METRICS, r.msg, 3, 1 << 20, a, count_metric_parts, parts), 0);
    /* m1 (5 points) is a part of its own; m2 and m3 share one. */
    assert_int_equal(parts[0], 2);
    assert_int_equal(parts[1], 5);
    assert_int_equal(parts[2], 2);
    arena_free(a);
}

static int stop_early(const ProtobufCMessage *part, size_t items, void *data)
{
    (void)part, (void)items;
    return ++*(int *)data == 2 ? -1 : 0;
}

static void test_emit_error_stops(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    otlp_request r;
    decode(traces, OTLP_TRACES, a, &r);
    int calls = 0;
    assert_int_equal(otlp_split(OTLP_TRACES, r.msg, 1, 1 << 20, a, stop_early, &calls), -1);
    assert_int_equal(calls, 2);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item_limit_keeps_grouping),
        cmocka_unit_test(test_no_limit_hit_gives_one_part),
        cmocka_unit_test(test_byte_limit_and_oversized_item),
        cmocka_unit_test(test_metrics_count_points_and_stay_whole),
        cmocka_unit_test(test_emit_error_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
