/* otlp_json: OTLP/JSON decode of hand-written requests for all three signals,
 * encode -> decode round trips (compared as packed protobuf), and every class
 * of bad input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "otlp.h"
#include "test_util.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest metrics_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyvalue;

/* Follows the OTLP spec's examples/trace.json, plus the less common shapes:
 * unknown fields, kind as a name, nested kvlist/array values, base64 bytes,
 * int64 both as string and number, events, links with flags, status. */
static const char TRACES_JSON[] =
    "{\n"
    "  \"resourceSpans\": [{\n"
    "    \"resource\": {\"attributes\": [\n"
    "      {\"key\": \"service.name\", \"value\": {\"stringValue\": \"my.service\"}}],\n"
    "      \"droppedAttributesCount\": 1},\n"
    "    \"unknownField\": {\"a\": [1, 2.5e3, \"x\", true, null, {\"b\": []}]},\n"
    "    \"scopeSpans\": [{\n"
    "      \"scope\": {\"name\": \"my.library\", \"version\": \"1.0.0\",\n"
    "        \"attributes\": [{\"key\": \"my.scope.attribute\", \"value\": {\"stringValue\": \"some scope attribute\"}}]},\n"
    "      \"spans\": [{\n"
    "        \"traceId\": \"5B8EFFF798038103D269B633813FC60C\",\n"
    "        \"spanId\": \"EEE19B7EC3C1B174\",\n"
    "        \"parentSpanId\": \"eee19b7ec3c1b173\",\n"
    "        \"name\": \"I'm a server span \\u00e9\\ud83d\\ude00\",\n"
    "        \"startTimeUnixNano\": \"1544712660000000000\",\n"
    "        \"end_time_unix_nano\": 1544712661000000000,\n"
    "        \"kind\": \"SPAN_KIND_SERVER\",\n"
    "        \"flags\": 257,\n"
    "        \"attributes\": [\n"
    "          {\"key\": \"str\", \"value\": {\"stringValue\": \"tab\\there \\\"q\\\" \\\\ \\/\"}},\n"
    "          {\"key\": \"bool\", \"value\": {\"boolValue\": true}},\n"
    "          {\"key\": \"int\", \"value\": {\"intValue\": \"-9223372036854775808\"}},\n"
    "          {\"key\": \"int2\", \"value\": {\"intValue\": 42}},\n"
    "          {\"key\": \"dbl\", \"value\": {\"doubleValue\": 0.1}},\n"
    "          {\"key\": \"nan\", \"value\": {\"doubleValue\": \"NaN\"}},\n"
    "          {\"key\": \"bytes\", \"value\": {\"bytesValue\": \"aGVsbG8=\"}},\n"
    "          {\"key\": \"urlsafe\", \"value\": {\"bytesValue\": \"-_8\"}},\n"
    "          {\"key\": \"arr\", \"value\": {\"arrayValue\": {\"values\": [{\"intValue\": \"1\"}, {\"stringValue\": \"two\"}]}}},\n"
    "          {\"key\": \"map\", \"value\": {\"kvlistValue\": {\"values\": [{\"key\": \"inner\", \"value\": {\"kvlistValue\": {\"values\": [{\"key\": \"deep\", \"value\": {\"doubleValue\": -1.5e-7}}]}}}]}}},\n"
    "          {\"key\": \"empty\", \"value\": {}}\n"
    "        ],\n"
    "        \"events\": [{\"timeUnixNano\": \"1544712660500000000\", \"name\": \"ev\"}],\n"
    "        \"links\": [{\"traceId\": \"5b8efff798038103d269b633813fc60d\", \"spanId\": \"eee19b7ec3c1b175\", \"flags\": 256, \"traceState\": \"a=b\"}],\n"
    "        \"status\": {\"code\": 2, \"message\": \"boom\"},\n"
    "        \"droppedLinksCount\": null\n"
    "      }]\n"
    "    }],\n"
    "    \"schemaUrl\": \"https://opentelemetry.io/schemas/1.21.0\"\n"
    "  }]\n"
    "}\n";

static const char METRICS_JSON[] =
    "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc\"}}]},"
    "\"scopeMetrics\":[{\"scope\":{\"name\":\"meter\"},\"metrics\":["
    "{\"name\":\"my.counter\",\"unit\":\"1\",\"description\":\"I am a Counter\","
    " \"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,\"dataPoints\":["
    "  {\"asDouble\":5,\"startTimeUnixNano\":\"1544712660300000000\",\"timeUnixNano\":\"1544712660300000000\","
    "   \"attributes\":[{\"key\":\"my.counter.attr\",\"value\":{\"stringValue\":\"some value\"}}]},"
    "  {\"asInt\":\"-7\",\"exemplars\":[{\"asDouble\":1.5,\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\"}]}]}},"
    "{\"name\":\"my.gauge\",\"gauge\":{\"dataPoints\":[{\"asDouble\":10,\"timeUnixNano\":\"1544712660300000000\"}]}},"
    "{\"name\":\"my.histogram\",\"histogram\":{\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_CUMULATIVE\",\"dataPoints\":["
    "  {\"count\":\"2\",\"sum\":0,\"min\":1,\"bucketCounts\":[\"1\",1],\"explicitBounds\":[1.5],\"flags\":1}]}},"
    "{\"name\":\"my.exp\",\"exponentialHistogram\":{\"aggregationTemporality\":2,\"dataPoints\":["
    "  {\"count\":\"3\",\"scale\":-2,\"zeroCount\":\"1\",\"zeroThreshold\":1e-9,\"max\":4.25,"
    "   \"positive\":{\"offset\":-3,\"bucketCounts\":[\"1\",\"1\"]},\"negative\":{}}]}},"
    "{\"name\":\"my.summary\",\"summary\":{\"dataPoints\":[{\"count\":\"4\",\"sum\":\"Infinity\","
    "  \"quantileValues\":[{\"quantile\":0.5,\"value\":1},{\"quantile\":1,\"value\":9}]}]}}"
    "]}]}]}";

static const char LOGS_JSON[] =
    "{\"resourceLogs\":[{\"resource\":{},\"scopeLogs\":[{\"scope\":{\"name\":\"logger\"},\"logRecords\":["
    "{\"timeUnixNano\":\"1544712660300000000\",\"observedTimeUnixNano\":\"1544712660300000001\","
    " \"severityNumber\":10,\"severityText\":\"Information\",\"traceId\":\"5b8efff798038103d269b633813fc60c\","
    " \"spanId\":\"eee19b7ec3c1b174\",\"body\":{\"stringValue\":\"Example log record\"},\"eventName\":\"app.start\","
    " \"attributes\":[{\"key\":\"string.attribute\",\"value\":{\"stringValue\":\"some string\"}}],\"flags\":1},"
    "{\"severityNumber\":\"SEVERITY_NUMBER_ERROR\",\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{\"bytesValue\":\"AAEC/w==\"}}]}},"
    " \"traceId\":\"\",\"spanId\":\"\"}"
    "]}]}]}";

typedef struct {
    arena *a;
    otlp_request req;
    char err[160];
} decoded;

static int decode(decoded *d, otlp_signal sig, otlp_encoding enc, const void *data, size_t len,
                  size_t limit)
{
    d->a = arena_new(limit);
    assert_non_null(d->a);
    return otlp_decode(sig, enc, data, len, d->a, &d->req, d->err, sizeof(d->err));
}

static int decode_str(decoded *d, otlp_signal sig, const char *json)
{
    return decode(d, sig, OTLP_JSON, json, strlen(json), 64 << 20);
}

/* Decodes and expects failure; returns the message for checking. */
static const char *decode_err(otlp_signal sig, const char *json)
{
    static char last[160];
    decoded d;
    assert_int_equal(decode_str(&d, sig, json), -1);
    snprintf(last, sizeof(last), "%s", d.err);
    arena_free(d.a);
    return last;
}

static const anyvalue *attr(Opentelemetry__Proto__Common__V1__KeyValue **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i]->key, key) == 0)
            return kv[i]->value;
    fail_msg("no attribute %s", key);
    return NULL;
}

static void test_decode_traces(void **state)
{
    (void)state;
    decoded d;
    assert_int_equal(decode_str(&d, OTLP_TRACES, TRACES_JSON), 0);
    assert_int_equal(d.req.items, 1);
    trace_req *r = (trace_req *)d.req.msg;
    assert_int_equal(r->n_resource_spans, 1);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
    assert_string_equal(rs->schema_url, "https://opentelemetry.io/schemas/1.21.0");
    assert_int_equal(rs->resource->dropped_attributes_count, 1);
    assert_string_equal(rs->resource->attributes[0]->value->string_value, "my.service");
    assert_string_equal(rs->scope_spans[0]->scope->version, "1.0.0");
    Opentelemetry__Proto__Trace__V1__Span *s = rs->scope_spans[0]->spans[0];
    const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                             0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    assert_int_equal(s->trace_id.len, 16);
    assert_memory_equal(s->trace_id.data, tid, 16);
    assert_int_equal(s->span_id.len, 8);
    assert_int_equal(s->parent_span_id.data[7], 0x73);
    assert_string_equal(s->name, "I'm a server span \xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(s->start_time_unix_nano, 1544712660000000000ull);
    assert_int_equal(s->end_time_unix_nano, 1544712661000000000ull);
    assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    assert_int_equal(s->flags, 257);
    assert_int_equal(s->n_attributes, 11);
    assert_string_equal(attr(s->attributes, 11, "str")->string_value, "tab\there \"q\" \\ /");
    assert_true(attr(s->attributes, 11, "bool")->bool_value);
    assert_true(attr(s->attributes, 11, "int")->int_value == INT64_MIN);
    assert_int_equal(attr(s->attributes, 11, "int2")->int_value, 42);
    assert_true(attr(s->attributes, 11, "dbl")->double_value == 0.1);
    assert_true(isnan(attr(s->attributes, 11, "nan")->double_value));
    const anyvalue *b = attr(s->attributes, 11, "bytes");
    assert_int_equal(b->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    assert_int_equal(b->bytes_value.len, 5);
    assert_memory_equal(b->bytes_value.data, "hello", 5);
    const anyvalue *u = attr(s->attributes, 11, "urlsafe");
    assert_int_equal(u->bytes_value.len, 2);
    assert_int_equal(u->bytes_value.data[0], 0xfb);
    assert_int_equal(u->bytes_value.data[1], 0xff);
    const anyvalue *arr = attr(s->attributes, 11, "arr");
    assert_int_equal(arr->array_value->n_values, 2);
    assert_string_equal(arr->array_value->values[1]->string_value, "two");
    const anyvalue *map = attr(s->attributes, 11, "map");
    const anyvalue *deep = map->kvlist_value->values[0]->value->kvlist_value->values[0]->value;
    assert_true(deep->double_value == -1.5e-7);
    assert_int_equal(attr(s->attributes, 11, "empty")->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    assert_int_equal(s->n_events, 1);
    assert_int_equal(s->events[0]->time_unix_nano, 1544712660500000000ull);
    assert_int_equal(s->links[0]->flags, 256);
    assert_string_equal(s->links[0]->trace_state, "a=b");
    assert_int_equal(s->status->code, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    assert_string_equal(s->status->message, "boom");
    otlp_validate(&d.req);
    assert_int_equal(d.req.rejected, 0);
    arena_free(d.a);
}

static void test_decode_metrics(void **state)
{
    (void)state;
    decoded d;
    assert_int_equal(decode_str(&d, OTLP_METRICS, METRICS_JSON), 0);
    assert_int_equal(d.req.items, 6);
    metrics_req *r = (metrics_req *)d.req.msg;
    Opentelemetry__Proto__Metrics__V1__Metric **m = r->resource_metrics[0]->scope_metrics[0]->metrics;
    assert_int_equal(r->resource_metrics[0]->scope_metrics[0]->n_metrics, 5);
    assert_string_equal(m[0]->description, "I am a Counter");
    assert_true(m[0]->sum->is_monotonic);
    assert_int_equal(m[0]->sum->aggregation_temporality, 1);
    assert_true(m[0]->sum->data_points[0]->as_double == 5.0);
    assert_int_equal(m[0]->sum->data_points[1]->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    assert_int_equal(m[0]->sum->data_points[1]->as_int, -7);
    assert_int_equal(m[0]->sum->data_points[1]->exemplars[0]->trace_id.len, 16);
    assert_int_equal(m[1]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *h = m[2]->histogram->data_points[0];
    assert_int_equal(m[2]->histogram->aggregation_temporality, 2);
    assert_int_equal(h->count, 2);
    assert_int_equal(h->_sum_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    assert_true(h->sum == 0.0);
    assert_int_equal(h->_max_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX__NOT_SET);
    assert_int_equal(h->n_bucket_counts, 2);
    assert_int_equal(h->bucket_counts[0] + h->bucket_counts[1], 2);
    assert_true(h->explicit_bounds[0] == 1.5);
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *e =
        m[3]->exponential_histogram->data_points[0];
    assert_int_equal(e->scale, -2);
    assert_int_equal(e->positive->offset, -3);
    assert_int_equal(e->positive->n_bucket_counts, 2);
    assert_non_null(e->negative);
    assert_true(e->max == 4.25);
    assert_true(e->zero_threshold == 1e-9);
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *sp = m[4]->summary->data_points[0];
    assert_true(isinf(sp->sum));
    assert_true(sp->quantile_values[1]->value == 9.0);
    arena_free(d.a);
}

static void test_decode_logs(void **state)
{
    (void)state;
    decoded d;
    assert_int_equal(decode_str(&d, OTLP_LOGS, LOGS_JSON), 0);
    assert_int_equal(d.req.items, 2);
    logs_req *r = (logs_req *)d.req.msg;
    Opentelemetry__Proto__Logs__V1__LogRecord **l = r->resource_logs[0]->scope_logs[0]->log_records;
    assert_int_equal(l[0]->severity_number, 10);
    assert_int_equal(l[0]->observed_time_unix_nano, 1544712660300000001ull);
    assert_string_equal(l[0]->body->string_value, "Example log record");
    assert_string_equal(l[0]->event_name, "app.start");
    assert_int_equal(l[0]->flags, 1);
    assert_int_equal(l[1]->severity_number, OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR);
    assert_int_equal(l[1]->trace_id.len, 0);
    const ProtobufCBinaryData *bv = &l[1]->body->kvlist_value->values[0]->value->bytes_value;
    assert_int_equal(bv->len, 4);
    assert_memory_equal(bv->data, "\x00\x01\x02\xff", 4);
    otlp_validate(&d.req);
    assert_int_equal(d.req.items, 2);
    arena_free(d.a);
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*len + 1);
    assert_non_null(p);
    protobuf_c_message_pack(m, p);
    return p;
}

/* JSON -> message A -> JSON -> message B, and A -> protobuf -> message C:
 * A, B and C must pack to the same bytes. */
static void round_trip(otlp_signal sig, const char *json)
{
    decoded a, b, c;
    assert_int_equal(decode_str(&a, sig, json), 0);
    size_t alen, blen, clen;
    uint8_t *apb = pack(a.req.msg, &alen);

    buf out = BUF_INIT;
    assert_int_equal(otlp_encode_json(a.req.msg, &out), 0);
    assert_null(memchr(out.data, '\n', out.len));
    assert_int_equal(decode(&b, sig, OTLP_JSON, out.data, out.len, 0), 0);
    uint8_t *bpb = pack(b.req.msg, &blen);
    assert_int_equal(alen, blen);
    assert_memory_equal(apb, bpb, alen);

    assert_int_equal(decode(&c, sig, OTLP_PROTOBUF, apb, alen, 0), 0);
    uint8_t *cpb = pack(c.req.msg, &clen);
    assert_int_equal(alen, clen);
    assert_memory_equal(apb, cpb, alen);
    /* And the JSON of the protobuf-decoded copy is identical. */
    buf out2 = BUF_INIT;
    assert_int_equal(otlp_encode_json(c.req.msg, &out2), 0);
    assert_int_equal(out.len, out2.len);
    assert_memory_equal(out.data, out2.data, out.len);

    buf_free(&out);
    buf_free(&out2);
    free(apb);
    free(bpb);
    free(cpb);
    arena_free(a.a);
    arena_free(b.a);
    arena_free(c.a);
}

static void test_round_trips(void **state)
{
    (void)state;
    round_trip(OTLP_TRACES, TRACES_JSON);
    round_trip(OTLP_METRICS, METRICS_JSON);
    round_trip(OTLP_LOGS, LOGS_JSON);
}

static int contains(const buf *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= b->len; i++)
        if (memcmp(b->data + i, s, n) == 0)
            return 1;
    return 0;
}

static void test_encode_format(void **state)
{
    (void)state;
    decoded d;
    assert_int_equal(decode_str(&d, OTLP_TRACES, TRACES_JSON), 0);
    buf out = BUF_INIT;
    assert_int_equal(otlp_encode_json(d.req.msg, &out), 0);
    assert_true(contains(&out, "\"traceId\":\"5b8efff798038103d269b633813fc60c\""));
    assert_true(contains(&out, "\"parentSpanId\":\"eee19b7ec3c1b173\""));
    assert_true(contains(&out, "\"startTimeUnixNano\":\"1544712660000000000\""));
    assert_true(contains(&out, "\"kind\":2,"));
    assert_true(contains(&out, "\"intValue\":\"-9223372036854775808\""));
    assert_true(contains(&out, "\"doubleValue\":0.1}"));
    assert_true(contains(&out, "\"doubleValue\":\"NaN\""));
    assert_true(contains(&out, "\"bytesValue\":\"aGVsbG8=\""));
    assert_true(contains(&out, "\"bytesValue\":\"+/8=\""));
    assert_true(contains(&out, "\"stringValue\":\"tab\\there \\\"q\\\" \\\\ /\""));
    assert_true(contains(&out, "\"name\":\"I'm a server span \xc3\xa9\xf0\x9f\x98\x80\""));
    assert_true(contains(&out, "\"value\":{}")); /* the empty AnyValue */
    /* Defaults are omitted: no zero counts, no empty trace_state. */
    assert_false(contains(&out, "droppedLinksCount"));
    assert_false(contains(&out, "traceState\":\"\""));
    assert_false(contains(&out, "droppedEventsCount"));
    buf_free(&out);
    arena_free(d.a);

    /* Strings that are not valid UTF-8, control characters, -0.0 and a
     * zero-valued oneof member (present, so written). */
    Opentelemetry__Proto__Common__V1__AnyValue v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = "a\x01\x1f\xff\xc3(\xed\xa0\x80z\x7f";
    assert_int_equal(otlp_encode_json(&v.base, &out), 0);
    const char want[] = "{\"stringValue\":\"a\\u0001\\u001f\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffdz\x7f\"}";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    buf_clear(&out);
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v.int_value = 0;
    assert_int_equal(otlp_encode_json(&v.base, &out), 0);
    assert_int_equal(out.len, strlen("{\"intValue\":\"0\"}"));
    assert_memory_equal(out.data, "{\"intValue\":\"0\"}", out.len);
    buf_clear(&out);
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v.double_value = -INFINITY;
    assert_int_equal(otlp_encode_json(&v.base, &out), 0);
    assert_true(contains(&out, "\"-Infinity\""));
    buf_clear(&out);
    v.double_value = 1.0 / 3.0;
    assert_int_equal(otlp_encode_json(&v.base, &out), 0);
    assert_true(contains(&out, "0.33333333333333331"));
    buf_free(&out);
}

static void test_errors_syntax(void **state)
{
    (void)state;
    assert_string_equal(decode_err(OTLP_TRACES, ""), "invalid JSON: unexpected end of input at offset 0");
    assert_string_equal(decode_err(OTLP_TRACES, "garbage"), "invalid JSON: expected '{' at offset 0");
    assert_string_equal(decode_err(OTLP_TRACES, "{\"resourceSpans\" []}"),
                        "invalid JSON: expected ':' at offset 17");
    assert_string_equal(decode_err(OTLP_TRACES, "{\"resourceSpans\":[],}"),
                        "invalid JSON: expected a string key at offset 20");
    assert_string_equal(decode_err(OTLP_TRACES, "{} {}"),
                        "invalid JSON: trailing data after the object at offset 3");
    assert_string_equal(decode_err(OTLP_TRACES, "{\"resourceSpans\":[[]]}"),
                        "invalid JSON: field resourceSpans: expected an object at offset 18");
    assert_string_equal(decode_err(OTLP_TRACES, "{\"resourceSpans\":[null]}"),
                        "invalid JSON: field resourceSpans: expected an object at offset 18");
    assert_string_equal(decode_err(OTLP_TRACES, "{\"x\":tru}"),
                        "invalid JSON: field x: invalid literal at offset 5");
    assert_string_equal(decode_err(OTLP_TRACES, "{\"x\":01}"),
                        "invalid JSON: expected ',' or '}' at offset 6");
    assert_string_equal(decode_err(OTLP_TRACES, "{'x':1}"),
                        "invalid JSON: expected a string key at offset 1");
    /* Every strict prefix of a valid document fails cleanly. */
    for (size_t n = 0; n + 1 < sizeof(LOGS_JSON) - 1; n++) {
        decoded d;
        assert_int_equal(decode(&d, OTLP_LOGS, OTLP_JSON, LOGS_JSON, n, 0), -1);
        assert_non_null(strstr(d.err, "invalid JSON: "));
        arena_free(d.a);
    }
}

static void test_errors_strings(void **state)
{
    (void)state;
    assert_string_equal(decode_err(OTLP_LOGS, "{\"x\":\"a\\q\"}"),
                        "invalid JSON: field x: invalid escape at offset 7");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"x\":\"\\u12G4\"}"),
                        "invalid JSON: field x: invalid \\u escape at offset 6");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"resourceLogs\":[{\"schemaUrl\":\"\\ud800x\"}]}"),
                        "invalid JSON: field schemaUrl: unpaired surrogate in \\u escape at offset 31");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"resourceLogs\":[{\"schemaUrl\":\"\\udc00\"}]}"),
                        "invalid JSON: field schemaUrl: unpaired surrogate in \\u escape at offset 31");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"resourceLogs\":[{\"schemaUrl\":\"\\u0000\"}]}"),
                        "invalid JSON: field schemaUrl: NUL character in string at offset 31");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"x\":\"a\nb\"}"),
                        "invalid JSON: field x: control character in string at offset 7");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"x\":\"\xc0\xaf\"}"),
                        "invalid JSON: field x: invalid UTF-8 in string at offset 6");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"x\":\"abc"),
                        "invalid JSON: field x: unterminated string at offset 9");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"x\":\"abc\\"),
                        "invalid JSON: field x: unterminated string at offset 10");
    /* Escaped keys still find their field. */
    decoded d;
    assert_int_equal(decode_str(&d, OTLP_LOGS, "{\"resource\\u004cogs\":[{\"schema\\u005furl\":\"s\"}]}"), 0);
    assert_string_equal(((logs_req *)d.req.msg)->resource_logs[0]->schema_url, "s");
    arena_free(d.a);
}

#define SPAN_WITH(fields) "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{" fields "}]}]}]}"

static void test_errors_values(void **state)
{
    (void)state;
    assert_string_equal(decode_err(OTLP_TRACES, SPAN_WITH("\"traceId\":\"5b8efff798038103d269b633813fc60\"")),
                        "invalid JSON: field traceId: bad hex at offset 54");
    assert_string_equal(decode_err(OTLP_TRACES, SPAN_WITH("\"spanId\":\"eee19b7ec3c1b17x\"")),
                        "invalid JSON: field spanId: bad hex at offset 53");
    assert_string_equal(decode_err(OTLP_TRACES, SPAN_WITH("\"traceId\":5")),
                        "invalid JSON: field traceId: expected a string at offset 54");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":\"a===\"}}]}]}]}"),
                        "invalid JSON: field bytesValue: bad base64 at offset 68");
    assert_string_equal(decode_err(OTLP_LOGS, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":\"ab$d\"}}]}]}]}"),
                        "invalid JSON: field bytesValue: bad base64 at offset 68");
    /* Huge and non-integral numbers. */
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"startTimeUnixNano\":\"18446744073709551616\"")),
                           "field startTimeUnixNano: integer out of range"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"startTimeUnixNano\":-1")),
                           "integer out of range"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"droppedAttributesCount\":4294967296")),
                           "field droppedAttributesCount: integer out of range"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"droppedAttributesCount\":1.5")),
                           "expected an integer"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"droppedAttributesCount\":1e3")),
                           "expected an integer"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"attributes\":[{\"value\":{\"intValue\":\"9223372036854775808\"}}]")),
                           "field intValue: integer out of range"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"attributes\":[{\"value\":{\"doubleValue\":1e999}}]")),
                           "field doubleValue: number out of range"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"kind\":2147483648")), "integer out of range"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"kind\":\"SPAN_KIND_NOPE\"")),
                           "field kind: unknown enum value"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"name\":5")), "field name: expected a string"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"attributes\":{}")),
                           "field attributes: expected an array"));
    /* Duplicates: the same key twice, two members of one oneof. */
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"name\":\"a\",\"name\":\"b\"")),
                           "field name: duplicate key"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"name\":\"a\",\"name_x\":1,\"name\":\"b\"")),
                           "duplicate key"));
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"attributes\":[{\"value\":{\"stringValue\":\"a\",\"intValue\":1}}]")),
                           "field intValue: second member of a oneof"));
    /* A camelCase and a snake_case spelling of one field are duplicates too. */
    assert_non_null(strstr(decode_err(OTLP_TRACES, SPAN_WITH("\"traceState\":\"a\",\"trace_state\":\"b\"")),
                           "duplicate key"));
    /* null for a oneof member leaves it unset; then another member is fine. */
    decoded d;
    assert_int_equal(decode_str(&d, OTLP_TRACES, SPAN_WITH("\"attributes\":[{\"value\":{\"stringValue\":null,\"intValue\":\"-0\"}}]")), 0);
    arena_free(d.a);
}

static void test_wrong_length_ids_validated(void **state)
{
    (void)state;
    decoded d;
    assert_int_equal(decode_str(&d, OTLP_TRACES, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                                                 "{\"traceId\":\"5b8efff798038103d269b633813fc6\",\"spanId\":\"eee19b7ec3c1b174\"},"
                                                 "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\"},"
                                                 "{\"traceId\":\"\",\"spanId\":\"eee19b7ec3c1b174\"},"
                                                 "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"eee19b7ec3c1b174\"},"
                                                 "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"0000000000000000\"}]}]}]}"),
                     0);
    assert_int_equal(d.req.items, 5);
    otlp_validate(&d.req);
    assert_int_equal(d.req.items, 1);
    assert_int_equal(d.req.rejected, 4);
    assert_string_equal(d.req.reject_reason, "span 0 of scope 0 of resource 0: invalid trace_id length 15");
    arena_free(d.a);

    assert_int_equal(decode_str(&d, OTLP_LOGS, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                                               "{\"spanId\":\"eee19b7ec3c1\"},{}]}]}]}"),
                     0);
    otlp_validate(&d.req);
    assert_int_equal(d.req.items, 1);
    assert_string_equal(d.req.reject_reason, "log record 0 of scope 0 of resource 0: invalid span_id length 6");
    arena_free(d.a);
}

/* Appends s n times to b. */
static void repeat(buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf_puts(b, s), 0);
}

/* Same structure as test_otlp's nested_anyvalue: the innermost AnyValue is at
 * message depth 5 + 2 * levels. */
static void nested_json(buf *b, size_t levels)
{
    buf_clear(b);
    buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":");
    repeat(b, "{\"arrayValue\":{\"values\":[", levels);
    buf_puts(b, "{\"intValue\":\"1\"}");
    repeat(b, "]}}", levels);
    buf_puts(b, "}]}}]}");
}

static int decode_json_buf(void *arg)
{
    const buf *b = arg;
    decoded d;
    int rc = decode(&d, OTLP_TRACES, OTLP_JSON, b->data, b->len, 0);
    arena_free(d.a);
    return rc;
}

static void test_depth_limit(void **state)
{
    (void)state;
    buf b = BUF_INIT;
    decoded d;
    /* The same limit as protobuf: 399 levels pass, 401 do not. */
    nested_json(&b, 197);
    assert_int_equal(decode(&d, OTLP_TRACES, OTLP_JSON, b.data, b.len, 0), 0);
    arena_free(d.a);
    /* The recursive JSON parser at the limit fits a 512 KiB stack (a
     * worker's is 8 MiB). */
    assert_int_equal(run_on_small_stack(decode_json_buf, &b, 512 << 10), 0);
    nested_json(&b, 198);
    assert_int_equal(decode(&d, OTLP_TRACES, OTLP_JSON, b.data, b.len, 0), -1);
    assert_non_null(strstr(d.err, "nesting too deep"));
    arena_free(d.a);
    /* 100k levels of AnyValue, and 100k nested arrays in an unknown field. */
    nested_json(&b, 100000);
    assert_int_equal(decode(&d, OTLP_TRACES, OTLP_JSON, b.data, b.len, 0), -1);
    assert_non_null(strstr(d.err, "nesting too deep"));
    arena_free(d.a);
    buf_clear(&b);
    buf_puts(&b, "{\"unknown\":");
    repeat(&b, "[", 100000);
    repeat(&b, "]", 100000);
    buf_puts(&b, "}");
    assert_int_equal(decode(&d, OTLP_TRACES, OTLP_JSON, b.data, b.len, 0), -1);
    assert_string_equal(d.err, "invalid JSON: field unknown: nesting too deep at offset 410");
    arena_free(d.a);
    buf_free(&b);
}

static void test_arena_limit(void **state)
{
    (void)state;
    buf b = BUF_INIT;
    buf_puts(&b, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[");
    for (int i = 0; i < 2000; i++)
        buf_printf(&b, "%s{\"body\":{\"stringValue\":\"record number %d\"}}", i ? "," : "", i);
    buf_puts(&b, "]}]}]}");
    decoded d;
    assert_int_equal(decode(&d, OTLP_LOGS, OTLP_JSON, b.data, b.len, 64 * 1024), -1);
    assert_true(arena_failed(d.a));
    assert_string_equal(d.err, "request too large when decoded");
    arena_free(d.a);
    assert_int_equal(decode(&d, OTLP_LOGS, OTLP_JSON, b.data, b.len, 0), 0);
    assert_int_equal(d.req.items, 2000);
    arena_free(d.a);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_traces),
        cmocka_unit_test(test_decode_metrics),
        cmocka_unit_test(test_decode_logs),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_encode_format),
        cmocka_unit_test(test_errors_syntax),
        cmocka_unit_test(test_errors_strings),
        cmocka_unit_test(test_errors_values),
        cmocka_unit_test(test_wrong_length_ids_validated),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_arena_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
