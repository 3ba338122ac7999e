/* otlp: protobuf decode (incl. hostile input), validation, item counting and
 * the response/status encoders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../wire_notes.h"
#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "otlp.h"
#include "otlp_wire.h"
#include "status.pb-c.h"
#include "test_util.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest metrics_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;

static const uint8_t TRACE_ID[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                     0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
static const uint8_t SPAN_ID[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
static const uint8_t ZEROS[16];

/* Packs a message into a malloc'd buffer. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*len + 1);
    assert_non_null(p);
    protobuf_c_message_pack(m, p);
    return p;
}

/* Decodes a request that must be valid; the caller frees the arena. */
static arena *must_decode(otlp_signal sig, const uint8_t *data, size_t len, otlp_request *req)
{
    arena *a = arena_new(0);
    char err[160];
    assert_non_null(a);
    assert_int_equal(otlp_decode(sig, OTLP_PROTOBUF, data, len, a, req, err, sizeof(err)), 0);
    return a;
}

/* The same for a message built in memory, packed first. */
static arena *must_decode_msg(otlp_signal sig, const ProtobufCMessage *m, otlp_request *req)
{
    size_t len;
    uint8_t *data = pack(m, &len);
    arena *a = must_decode(sig, data, len, req);
    free(data);
    return a;
}

/* otlp_wire_scan's contract: 1 only when decode and validate accept every
 * item, with their count, and for traces with the decoder's reading of
 * every span in its notes; returns what the scan said. */
static int scan_agrees(otlp_signal sig, const uint8_t *data, size_t len)
{
    size_t items = 12345, cap = otlp_wire_spans_cap(len);
    otlp_wire_spans notes = {.v = calloc(cap, sizeof(otlp_wire_span)), .cap = cap, .n = 777};
    assert_non_null(notes.v);
    int ok = otlp_wire_scan(sig, data, len, &items, &notes);
    arena *a = arena_new(0);
    otlp_request req;
    char err[160];
    int clean = otlp_decode(sig, OTLP_PROTOBUF, data, len, a, &req, err, sizeof(err)) == 0;
    if (clean) {
        otlp_validate(&req);
        clean = req.rejected == 0;
    }
    if (ok) {
        assert_true(clean);
        assert_int_equal(items, req.items);
        if (sig == OTLP_TRACES)
            assert_true(wire_notes_match(data, &notes, &req));
        else
            assert_int_equal(notes.n, 0);
    }
    free(notes.v);
    arena_free(a);
    return ok;
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

/* A trace request with one resource, one scope and the given spans, whose
 * ids are (trace_id length, span_id length, parent length); length 16/8 uses
 * real ids, `zero` makes trace_id all zero. */
typedef struct {
    size_t tid, sid, pid;
    int zero;
} span_shape;

static uint8_t *trace_request(const span_shape *shapes, size_t n, size_t *len)
{
    Opentelemetry__Proto__Trace__V1__Span spans[8], *sp[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        spans[i].trace_id = bin(shapes[i].zero ? ZEROS : TRACE_ID, shapes[i].tid);
        spans[i].span_id = bin(SPAN_ID, shapes[i].sid);
        spans[i].parent_span_id = bin(SPAN_ID, shapes[i].pid);
        spans[i].name = "op";
        spans[i].kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
        spans[i].start_time_unix_nano = 1544712660000000000ull + i;
        sp[i] = &spans[i];
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = n;
    ss.spans = sp;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    trace_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    return pack(&req.base, len);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(otlp_signal_name(OTLP_TRACES), "traces");
    assert_string_equal(otlp_signal_name(OTLP_METRICS), "metrics");
    assert_string_equal(otlp_signal_name(OTLP_LOGS), "logs");
    assert_string_equal(otlp_item_name(OTLP_TRACES), "spans");
    assert_string_equal(otlp_item_name(OTLP_METRICS), "metric_points");
    assert_string_equal(otlp_item_name(OTLP_LOGS), "log_records");
    assert_ptr_equal(otlp_request_descriptor(OTLP_LOGS),
                     &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor);
}

static void test_decode_traces(void **state)
{
    (void)state;
    span_shape shapes[] = {{16, 8, 0, 0}, {16, 8, 8, 0}};
    size_t len;
    uint8_t *data = trace_request(shapes, 2, &len);
    otlp_request req;
    arena *a = must_decode(OTLP_TRACES, data, len, &req);
    assert_int_equal(req.items, 2);
    assert_int_equal(scan_agrees(OTLP_TRACES, data, len), 1);
    trace_req *r = (trace_req *)req.msg;
    Opentelemetry__Proto__Trace__V1__Span *s = r->resource_spans[0]->scope_spans[0]->spans[1];
    assert_int_equal(s->trace_id.len, 16);
    assert_memory_equal(s->trace_id.data, TRACE_ID, 16);
    assert_int_equal(s->parent_span_id.len, 8);
    assert_string_equal(s->name, "op");
    assert_int_equal(s->start_time_unix_nano, 1544712660000000001ull);
    otlp_validate(&req);
    assert_int_equal(req.items, 2);
    assert_int_equal(req.rejected, 0);
    assert_string_equal(req.reject_reason, "");
    arena_free(a);
    free(data);
}

static void test_validate_spans(void **state)
{
    (void)state;
    span_shape shapes[] = {{16, 8, 0, 0},  {15, 8, 0, 0}, {16, 8, 0, 1}, {16, 0, 0, 0},
                           {16, 8, 4, 0},  {16, 7, 0, 0}, {16, 8, 8, 0}};
    size_t len;
    uint8_t *data = trace_request(shapes, 7, &len);
    otlp_request req;
    arena *a = must_decode(OTLP_TRACES, data, len, &req);
    assert_int_equal(req.items, 7);
    assert_int_equal(scan_agrees(OTLP_TRACES, data, len), 0);
    for (size_t i = 0; i < 7; i++) { /* each shape alone: the scan passes exactly the valid ones */
        size_t one_len;
        uint8_t *one = trace_request(&shapes[i], 1, &one_len);
        assert_int_equal(scan_agrees(OTLP_TRACES, one, one_len), i == 0 || i == 6);
        free(one);
    }
    otlp_validate(&req);
    assert_int_equal(req.items, 2);
    assert_int_equal(req.rejected, 5);
    assert_string_equal(req.reject_reason, "span 1 of scope 0 of resource 0: invalid trace_id length 15");
    assert_int_equal(otlp_count_items(OTLP_TRACES, req.msg), 2);
    /* The kept spans keep their order. */
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = ((trace_req *)req.msg)->resource_spans[0]->scope_spans[0];
    assert_int_equal(ss->n_spans, 2);
    assert_int_equal(ss->spans[0]->start_time_unix_nano, 1544712660000000000ull);
    assert_int_equal(ss->spans[1]->start_time_unix_nano, 1544712660000000006ull);
    arena_free(a);
    free(data);

    /* All-zero trace id is named as such. */
    span_shape zero[] = {{16, 8, 0, 1}};
    data = trace_request(zero, 1, &len);
    a = must_decode(OTLP_TRACES, data, len, &req);
    otlp_validate(&req);
    assert_int_equal(req.rejected, 1);
    assert_string_equal(req.reject_reason, "span 0 of scope 0 of resource 0: trace_id is all zero");
    arena_free(a);
    free(data);
}

/* Metrics with every data type: 1 gauge point, 2 sum, 1 histogram,
 * 1 exponential histogram, 1 summary; plus a nameless and a dataless
 * metric. */
static void test_metrics_count_validate(void **state)
{
    (void)state;
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint np[3], *npp[3];
    for (int i = 0; i < 3; i++) {
        opentelemetry__proto__metrics__v1__number_data_point__init(&np[i]);
        np[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        np[i].as_double = 1.5 * i;
        npp[i] = &np[i];
    }
    Opentelemetry__Proto__Metrics__V1__Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    g.n_data_points = 1;
    g.data_points = npp;
    Opentelemetry__Proto__Metrics__V1__Sum sum = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    sum.n_data_points = 2;
    sum.data_points = npp + 1;
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hp =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT, *hpp = &hp;
    hp._sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    hp.sum = 0.0;
    Opentelemetry__Proto__Metrics__V1__Histogram h = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
    h.n_data_points = 1;
    h.data_points = &hpp;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ep =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT, *epp = &ep;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram eh =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT;
    eh.n_data_points = 1;
    eh.data_points = &epp;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sp =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__INIT, *spp = &sp;
    Opentelemetry__Proto__Metrics__V1__Summary su = OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY__INIT;
    su.n_data_points = 1;
    su.data_points = &spp;

    Opentelemetry__Proto__Metrics__V1__Metric m[7], *mp[7];
    for (int i = 0; i < 7; i++) {
        opentelemetry__proto__metrics__v1__metric__init(&m[i]);
        m[i].name = "m";
        mp[i] = &m[i];
    }
    m[0].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m[0].gauge = &g;
    m[1].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m[1].sum = &sum;
    m[2].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m[2].histogram = &h;
    m[3].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m[3].exponential_histogram = &eh;
    m[4].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m[4].summary = &su;
    m[5].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM; /* nameless */
    m[5].sum = &sum;
    m[5].name = "";
    /* m[6]: no data */
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT, *smp = &sm;
    sm.n_metrics = 7;
    sm.metrics = mp;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm =
        OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT, *rmp = &rm;
    rm.n_scope_metrics = 1;
    rm.scope_metrics = &smp;
    metrics_req r = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    r.n_resource_metrics = 1;
    r.resource_metrics = &rmp;
    size_t plen;
    uint8_t *packed = pack(&r.base, &plen);
    assert_int_equal(scan_agrees(OTLP_METRICS, packed, plen), 0); /* a nameless and a dataless metric */
    free(packed);
    sm.n_metrics = 5; /* every data type, all valid */
    packed = pack(&r.base, &plen);
    assert_int_equal(scan_agrees(OTLP_METRICS, packed, plen), 1);
    free(packed);
    sm.n_metrics = 7;
    otlp_request req;
    arena *a = must_decode_msg(OTLP_METRICS, &r.base, &req);
    assert_int_equal(req.items, 8);
    metrics_req *d = (metrics_req *)req.msg;
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *dh =
        d->resource_metrics[0]->scope_metrics[0]->metrics[2]->histogram->data_points[0];
    /* The synthetic oneof keeps presence of a zero sum, as proto3 optional. */
    assert_int_equal(dh->_sum_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    assert_int_equal(dh->_min_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN__NOT_SET);
    otlp_validate(&req);
    assert_int_equal(req.items, 6);
    assert_int_equal(req.rejected, 3); /* 2 points of the nameless one, 1 for the empty one */
    assert_string_equal(req.reject_reason, "metric 5 of scope 0 of resource 0: missing metric name");
    assert_int_equal(d->resource_metrics[0]->scope_metrics[0]->n_metrics, 5);
    arena_free(a);
}

static void test_logs_count_validate(void **state)
{
    (void)state;
    Opentelemetry__Proto__Logs__V1__LogRecord lr[4], *lrp[4];
    for (int i = 0; i < 4; i++) {
        opentelemetry__proto__logs__v1__log_record__init(&lr[i]);
        lrp[i] = &lr[i];
    }
    lr[1].trace_id = bin(TRACE_ID, 16);
    lr[1].span_id = bin(SPAN_ID, 8);
    lr[1].event_name = "ev";
    lr[2].trace_id = bin(TRACE_ID, 12);
    lr[3].span_id = bin(SPAN_ID, 3);
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT, *slp = &sl;
    sl.n_log_records = 4;
    sl.log_records = lrp;
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT, *rlp = &rl;
    rl.n_scope_logs = 1;
    rl.scope_logs = &slp;
    logs_req r = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    r.n_resource_logs = 1;
    r.resource_logs = &rlp;
    size_t plen;
    uint8_t *packed = pack(&r.base, &plen);
    assert_int_equal(scan_agrees(OTLP_LOGS, packed, plen), 0);
    free(packed);
    sl.n_log_records = 2; /* no ids, and both ids */
    packed = pack(&r.base, &plen);
    assert_int_equal(scan_agrees(OTLP_LOGS, packed, plen), 1);
    free(packed);
    sl.n_log_records = 4;
    otlp_request req;
    arena *a = must_decode_msg(OTLP_LOGS, &r.base, &req);
    assert_int_equal(req.items, 4);
    logs_req *d = (logs_req *)req.msg;
    assert_string_equal(d->resource_logs[0]->scope_logs[0]->log_records[1]->event_name, "ev");
    otlp_validate(&req);
    assert_int_equal(req.items, 2);
    assert_int_equal(req.rejected, 2);
    assert_string_equal(req.reject_reason, "log record 2 of scope 0 of resource 0: invalid trace_id length 12");
    arena_free(a);
}

static int decode_pb(otlp_signal sig, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    arena *a = arena_new(64 << 20);
    otlp_request req;
    int rc = otlp_decode(sig, OTLP_PROTOBUF, data, len, a, &req, err, errlen);
    arena_free(a);
    return rc;
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    span_shape shapes[] = {{16, 8, 0, 0}};
    size_t len;
    uint8_t *data = trace_request(shapes, 1, &len);
    char err[160];
    /* Every strict prefix is cut inside some field. */
    for (size_t n = 1; n < len; n++) {
        assert_int_equal(scan_agrees(OTLP_TRACES, data, n), 0);
        assert_int_equal(decode_pb(OTLP_TRACES, data, n, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "invalid protobuf: truncated field at offset"));
    }
    assert_int_equal(decode_pb(OTLP_TRACES, data, len, err, sizeof(err)), 0);
    free(data);

    /* An empty body is an empty, valid request. */
    assert_int_equal(decode_pb(OTLP_TRACES, NULL, 0, err, sizeof(err)), 0);

    const uint8_t group[] = {0x0b}; /* field 1, wire type 3 */
    assert_int_equal(decode_pb(OTLP_TRACES, group, sizeof(group), err, sizeof(err)), -1);
    assert_string_equal(err, "invalid protobuf: unsupported wire type at offset 0");
    const uint8_t field0[] = {0x00, 0x01};
    assert_int_equal(decode_pb(OTLP_LOGS, field0, sizeof(field0), err, sizeof(err)), -1);
    assert_string_equal(err, "invalid protobuf: invalid field number at offset 0");
    const uint8_t longvarint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(decode_pb(OTLP_METRICS, longvarint, sizeof(longvarint), err, sizeof(err)), -1);
    /* Well-formed wire data, wrong types: protobuf-c itself refuses. A
     * varint where resource_spans (a message) belongs: */
    const uint8_t wrongtype[] = {0x08, 0x01};
    assert_int_equal(decode_pb(OTLP_TRACES, wrongtype, sizeof(wrongtype), err, sizeof(err)), -1);
    assert_string_equal(err, "invalid protobuf: malformed message");
    /* Unknown fields are skipped. */
    const uint8_t unknown[] = {0x78, 0x05, 0x7a, 0x02, 'h', 'i'};
    assert_int_equal(decode_pb(OTLP_TRACES, unknown, sizeof(unknown), err, sizeof(err)), 0);

    /* Random garbage never crashes. */
    srand(1);
    uint8_t junk[256];
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand() % (int)sizeof(junk));
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        decode_pb((otlp_signal)(round % 3), junk, n, err, sizeof(err));
    }
}

/* Request -> ResourceSpans -> Resource -> KeyValue -> AnyValue, then `levels`
 * times ArrayValue -> AnyValue: the innermost AnyValue sits at message depth
 * 5 + 2 * levels. With `kvlist`, each level is KeyValueList -> KeyValue ->
 * AnyValue instead, so the innermost value is a plain attribute (key "k",
 * int 1) at depth 5 + 3 * levels. Built from the inside out. */
static uint8_t *nested_anyvalue(size_t levels, int kvlist, size_t *len)
{
    size_t cap = 64 + levels * 16;
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    size_t pos = cap;
#define PUT(byte) (b[--pos] = (uint8_t)(byte))
    PUT(0x01);
    PUT(0x18); /* AnyValue.int_value = 1 */
    /* Wraps everything after pos as length-delimited field `tag`. */
#define WRAP(tag)                                                                                  \
    do {                                                                                           \
        size_t n = cap - pos;                                                                      \
        uint8_t v[10];                                                                             \
        int k = 0;                                                                                 \
        do {                                                                                       \
            v[k++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));                                \
            n >>= 7;                                                                               \
        } while (n);                                                                               \
        while (k)                                                                                  \
            PUT(v[--k]);                                                                           \
        PUT(tag);                                                                                  \
    } while (0)
    /* Wraps the AnyValue after pos as the value of a KeyValue with key "k". */
#define KEY_VALUE()                                                                                \
    do {                                                                                           \
        WRAP(0x12); /* KeyValue.value */                                                           \
        PUT('k');                                                                                  \
        PUT(0x01);                                                                                 \
        PUT(0x0a); /* KeyValue.key */                                                              \
    } while (0)
    for (size_t i = 0; i < levels; i++) {
        if (kvlist) {
            KEY_VALUE();
            WRAP(0x0a); /* KeyValueList.values */
            WRAP(0x32); /* AnyValue.kvlist_value */
        } else {
            WRAP(0x0a); /* ArrayValue.values */
            WRAP(0x2a); /* AnyValue.array_value */
        }
    }
    KEY_VALUE();
    WRAP(0x0a); /* Resource.attributes */
    WRAP(0x0a); /* ResourceSpans.resource */
    WRAP(0x0a); /* Request.resource_spans */
#undef KEY_VALUE
#undef WRAP
#undef PUT
    *len = cap - pos;
    memmove(b, b + pos, *len);
    return b;
}

typedef struct pb_input {
    const uint8_t *data;
    size_t len;
} pb_input;

static int decode_pb_input(void *arg)
{
    const pb_input *in = arg;
    char err[160];
    return decode_pb(OTLP_TRACES, in->data, in->len, err, sizeof(err));
}

static void test_depth_limit(void **state)
{
    (void)state;
    char err[160];
    size_t len;
    /* 5 + 2 * 197 = 399 levels pass, 401 do not. */
    uint8_t *ok = nested_anyvalue(197, 0, &len);
    assert_int_equal(decode_pb(OTLP_TRACES, ok, len, err, sizeof(err)), 0);
    /* At the limit, protobuf-c's recursive unpack fits a 512 KiB stack
     * (a worker's is 8 MiB). */
    assert_int_equal(run_on_small_stack(decode_pb_input, &(pb_input){ok, len}, 512 << 10), 0);
    free(ok);
    uint8_t *deep = nested_anyvalue(198, 0, &len);
    assert_int_equal(scan_agrees(OTLP_TRACES, deep, len), 0);
    assert_int_equal(decode_pb(OTLP_TRACES, deep, len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid protobuf: nesting too deep at offset"));
    free(deep);
    /* A plain attribute the scan takes in one step (two messages) right at
     * the limit: its value is the message that goes one too deep. */
    uint8_t *kv = nested_anyvalue(131, 1, &len); /* the attribute at depth 397, its value at 398 */
    assert_int_equal(scan_agrees(OTLP_TRACES, kv, len), 1);
    free(kv);
    kv = nested_anyvalue(132, 1, &len); /* 400 and 401 */
    assert_int_equal(scan_agrees(OTLP_TRACES, kv, len), 0);
    assert_int_equal(decode_pb(OTLP_TRACES, kv, len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nesting too deep"));
    free(kv);
    /* 100k levels (about 1 MB): rejected, stack intact. */
    uint8_t *bomb = nested_anyvalue(100000, 0, &len);
    assert_int_equal(scan_agrees(OTLP_TRACES, bomb, len), 0);
    assert_int_equal(decode_pb(OTLP_TRACES, bomb, len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nesting too deep"));
    free(bomb);
}

/* ---- the wire scan on hand-built bytes ---- */

typedef struct {
    uint8_t b[1024];
    size_t n;
} wbuf;

static void w_varint(wbuf *w, uint64_t v)
{
    do {
        assert_true(w->n < sizeof(w->b));
        w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
}

static void w_bytes(wbuf *w, unsigned field, const void *p, size_t n)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

/* A whole request around one item: request{field 1: resource entry{field 2:
 * scope entry{item_field: item}}}. */
static wbuf w_request(const wbuf *item, unsigned item_field)
{
    wbuf scope = {0}, resource = {0}, req = {0};
    w_bytes(&scope, item_field, item->b, item->n);
    w_bytes(&resource, 2, scope.b, scope.n);
    w_bytes(&req, 1, resource.b, resource.n);
    return req;
}

static void test_wire_scan_last_field_wins(void **state)
{
    (void)state;
    /* A span whose trace_id comes twice: protobuf-c keeps the last. */
    for (int valid_last = 0; valid_last < 2; valid_last++) {
        wbuf span = {0};
        w_bytes(&span, 1, valid_last ? ZEROS : TRACE_ID, 16);
        w_bytes(&span, 1, valid_last ? TRACE_ID : ZEROS, 16);
        w_bytes(&span, 2, SPAN_ID, 8);
        wbuf req = w_request(&span, 2);
        assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), valid_last);
    }
    /* A metric with gauge (2 points), then sum (1 point): the oneof keeps
     * the sum; gauge twice: the second, not both. */
    static const uint8_t point[] = {0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}; /* as_double (4) = 1.0 */
    wbuf two = {0}, one = {0};
    w_bytes(&two, 1, point, sizeof(point));
    w_bytes(&two, 1, point, sizeof(point));
    w_bytes(&one, 1, point, sizeof(point));
    const unsigned second[] = {7, 5};
    for (size_t i = 0; i < 2; i++) {
        wbuf metric = {0};
        w_bytes(&metric, 1, "m", 1);
        w_bytes(&metric, 5, two.b, two.n);
        w_bytes(&metric, second[i], one.b, one.n);
        wbuf req = w_request(&metric, 2);
        size_t items = 0;
        assert_int_equal(scan_agrees(OTLP_METRICS, req.b, req.n), 1);
        assert_int_equal(otlp_wire_scan(OTLP_METRICS, req.b, req.n, &items, NULL), 1);
        assert_int_equal(items, 1);
    }
    /* A metric named twice, the last time with an empty name: dropped. */
    wbuf metric = {0};
    w_bytes(&metric, 1, "m", 1);
    w_bytes(&metric, 1, "", 0);
    w_bytes(&metric, 5, one.b, one.n);
    wbuf req = w_request(&metric, 2);
    assert_int_equal(scan_agrees(OTLP_METRICS, req.b, req.n), 0);
}

static void w_fixed64(wbuf *w, unsigned field, uint64_t v)
{
    w_varint(w, (uint64_t)field << 3 | 1);
    for (int i = 0; i < 8; i++, v >>= 8) {
        assert_true(w->n < sizeof(w->b));
        w->b[w->n++] = (uint8_t)v;
    }
}

/* The notes otlp_wire_scan makes for the tail sampler, field by field:
 * times (the last of each), the status code (a varint of two bytes, and
 * one past 32 bits as protobuf-c reads an enum), parent or none, the trace
 * id's place; spans of two scopes in two resources in order; no room
 * reported as n != items; nothing noted for another signal. */
static void test_wire_scan_notes(void **state)
{
    (void)state;
    static const uint8_t other_trace[16] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    wbuf a = {0}, b = {0}, st = {0}, scope1 = {0}, scope2 = {0}, res1 = {0}, res2 = {0}, req = {0};
    w_bytes(&a, 1, TRACE_ID, 16);
    w_bytes(&a, 2, SPAN_ID, 8);
    w_fixed64(&a, 7, 5);
    w_fixed64(&a, 8, 7);
    w_fixed64(&a, 7, 1000); /* the last start counts */
    w_varint(&st, 3 << 3);
    w_varint(&st, 300);
    w_bytes(&a, 15, st.b, st.n);
    w_bytes(&b, 4, SPAN_ID, 8); /* a parent, before the ids */
    w_bytes(&b, 1, other_trace, 16);
    w_bytes(&b, 2, SPAN_ID, 8);
    w_fixed64(&b, 8, 2000);
    st.n = 0;
    w_varint(&st, 3 << 3);
    w_varint(&st, (1ull << 32) | 2); /* an enum keeps the low 32 bits */
    w_bytes(&b, 15, st.b, st.n);
    w_bytes(&scope1, 2, a.b, a.n);
    w_bytes(&scope1, 2, b.b, b.n);
    w_bytes(&scope2, 2, b.b, b.n);
    w_bytes(&res1, 2, scope1.b, scope1.n);
    w_bytes(&res2, 2, scope2.b, scope2.n);
    w_bytes(&req, 1, res1.b, res1.n);
    w_bytes(&req, 1, res2.b, res2.n);
    assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), 1); /* and the notes agree with the decoder */
    otlp_wire_span v[8];
    otlp_wire_spans notes = {.v = v, .cap = 8};
    size_t items = 0;
    assert_true(otlp_wire_spans_cap(req.n) <= 8);
    assert_int_equal(otlp_wire_scan(OTLP_TRACES, req.b, req.n, &items, &notes), 1);
    assert_int_equal(items, 3);
    assert_int_equal(notes.n, 3);
    assert_memory_equal(req.b + v[0].trace_at, TRACE_ID, 16);
    assert_int_equal(v[0].start, 1000);
    assert_int_equal(v[0].end, 7);
    assert_int_equal(v[0].code, 300);
    assert_int_equal(v[0].root, 1);
    for (int i = 1; i < 3; i++) {
        assert_memory_equal(req.b + v[i].trace_at, other_trace, 16);
        assert_int_equal(v[i].start, 0);
        assert_int_equal(v[i].end, 2000);
        assert_int_equal(v[i].code, 2);
        assert_int_equal(v[i].root, 0);
    }
    assert_true(v[2].trace_at > v[1].trace_at); /* in the order they came */
    notes = (otlp_wire_spans){.v = v, .cap = 2};
    assert_int_equal(otlp_wire_scan(OTLP_TRACES, req.b, req.n, &items, &notes), 1);
    assert_int_equal(items, 3);
    assert_true(notes.n != items); /* no room for the third: the caller reads the spans itself */
    notes = (otlp_wire_spans){.v = v, .cap = 8, .n = 5};
    wbuf rec = {0};
    w_bytes(&rec, 3, "INFO", 4); /* severity_text */
    wbuf logs = w_request(&rec, 2);
    assert_int_equal(otlp_wire_scan(OTLP_LOGS, logs.b, logs.n, &items, &notes), 1);
    assert_int_equal(notes.n, 0);
}

/* A span's trace and span ids, to which a test adds fields. */
static wbuf w_span_ids(void)
{
    wbuf span = {0};
    w_bytes(&span, 1, TRACE_ID, 16);
    w_bytes(&span, 2, SPAN_ID, 8);
    return span;
}

/* A span whose only attribute is the KeyValue kv (n bytes), scanned. */
static int scan_attribute(const uint8_t *kv, size_t n)
{
    wbuf span = w_span_ids();
    w_bytes(&span, 9, kv, n);
    wbuf req = w_request(&span, 2);
    return scan_agrees(OTLP_TRACES, req.b, req.n);
}

/* A KeyValue: key, then an AnyValue holding one field of the given tag byte
 * and payload (a length-delimited one when len_delim). */
static wbuf w_kv(const char *key, size_t key_len, uint8_t tag, const void *p, size_t n)
{
    wbuf value = {0}, kv = {0};
    value.b[value.n++] = tag;
    if ((tag & 7) == 2)
        w_varint(&value, n);
    memcpy(value.b + value.n, p, n);
    value.n += n;
    w_bytes(&kv, 1, key, key_len);
    w_bytes(&kv, 2, value.b, value.n);
    return kv;
}

/* Plain attributes take the scan's shortcut (kv_plain); every other shape
 * of KeyValue the general path, and both must agree with the decoder. */
static void test_wire_scan_plain_attributes(void **state)
{
    (void)state;
    static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}; /* int -1 */
    static const uint8_t eleven[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t dbl[8] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    static const uint8_t f503[] = {0xf7, 0x03};
    char long_str[200];
    memset(long_str, 'x', sizeof(long_str));
    const struct {
        const char *what;
        wbuf kv;
        int ok;
    } cases[] = {
        {"string", w_kv("http.route", 10, 0x0a, "/api", 4), 1},
        {"empty key and string", w_kv("", 0, 0x0a, "", 0), 1},
        {"bool", w_kv("hit", 3, 0x10, "\x01", 1), 1},
        {"int of two bytes", w_kv("code", 4, 0x18, f503, 2), 1},
        {"int of ten bytes", w_kv("neg", 3, 0x18, neg, sizeof(neg)), 1},
        {"int of eleven bytes", w_kv("bad", 3, 0x18, eleven, sizeof(eleven)), 0},
        {"double", w_kv("total", 5, 0x21, dbl, 8), 1},
        {"double cut short", w_kv("total", 5, 0x21, dbl, 7), 0},
        {"bytes", w_kv("raw", 3, 0x3a, "\0\1", 2), 1},
        {"long key", w_kv(long_str, 130, 0x0a, "v", 1), 1},
        {"long string", w_kv("k", 1, 0x0a, long_str, 200), 1},
        {"string as a varint", w_kv("k", 1, 0x08, "\x01", 1), 0},
        {"a field past the oneof", w_kv("k", 1, 0xf8, "\x01\x05", 2), 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = scan_attribute(cases[i].kv.b, cases[i].kv.n);
        if (got != cases[i].ok)
            fail_msg("%s: scan %d, want %d", cases[i].what, got, cases[i].ok);
    }
    /* A value with nothing set, and the value before the key. */
    static const uint8_t empty_value[] = {0x0a, 0x01, 'k', 0x12, 0x00};
    static const uint8_t value_first[] = {0x12, 0x02, 0x18, 0x07, 0x0a, 0x01, 'k'};
    assert_int_equal(scan_attribute(empty_value, sizeof(empty_value)), 1);
    assert_int_equal(scan_attribute(value_first, sizeof(value_first)), 1);
    /* A string longer than its value. */
    static const uint8_t string_over[] = {0x0a, 0x01, 'k', 0x12, 0x04, 0x0a, 0x05, 'a', 'b'};
    assert_int_equal(scan_attribute(string_over, sizeof(string_over)), 0);
    /* Lengths of two bytes whose first byte, read alone, would frame a
     * plain attribute: a key of 128 bytes (then a field 0), and a value
     * 1,280 bytes long in a KeyValue of 133. Both are refused. */
    uint8_t key128[134] = {0x0a, 0x80, 0x01};
    memset(key128 + 3, 'a', 127);
    memcpy(key128 + 130, (const uint8_t[]){0x12, 0x02, 0x18, 0x01}, 4);
    assert_int_equal(scan_attribute(key128, sizeof(key128)), 0);
    uint8_t value1280[133] = {0x0a, 0x01, 'k', 0x12, 0x80, 0x0a, 126};
    memset(value1280 + 7, 'x', 126);
    assert_int_equal(scan_attribute(value1280, sizeof(value1280)), 0);
}

/* A span's attributes as the scan takes a run of them (the entries of a
 * repeated field come together): plain ones with an unplain one between,
 * a bad one in the middle, and a last one whose length runs past the span
 * and the request, in a buffer of exactly the request's size so that a
 * read past it is caught under AddressSanitizer. */
static void test_wire_scan_attribute_runs(void **state)
{
    (void)state;
    static const uint8_t dbl[8] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    char long_str[200];
    memset(long_str, 'x', sizeof(long_str));
    const wbuf plain[] = {w_kv("a", 1, 0x0a, "x", 1), w_kv("b", 1, 0x18, "\x05", 1), w_kv("c", 1, 0x21, dbl, 8)};
    const wbuf unplain = w_kv("long", 4, 0x0a, long_str, sizeof(long_str));
    const wbuf bad = w_kv("cut", 3, 0x21, dbl, 7);
    for (int middle = 0; middle < 2; middle++) {
        wbuf span = w_span_ids();
        for (int i = 0; i < 6; i++) {
            const wbuf *kv = i == 3 ? (middle ? &bad : &unplain) : &plain[i % 3];
            w_bytes(&span, 9, kv->b, kv->n);
        }
        wbuf req = w_request(&span, 2);
        assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), !middle);
    }
    wbuf run = w_span_ids();
    for (int i = 0; i < 3; i++)
        w_bytes(&run, 9, plain[i].b, plain[i].n);
    /* After the run, an event (field 11) whose bytes would make a plain
     * attribute: an event's field 1 is a fixed64, so it is refused. */
    static const uint8_t kv_like[] = {0x0a, 0x01, 'k', 0x12, 0x02, 0x18, 0x01};
    wbuf span = run;
    w_bytes(&span, 11, kv_like, sizeof(kv_like));
    wbuf req = w_request(&span, 2);
    assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), 0);
    /* Its first 9 bytes frame an attribute of 127: key "k", a string of
     * 120 bytes, which the request ends before. */
    static const uint8_t overrun[] = {0x4a, 0x7f, 0x0a, 0x01, 'k', 0x12, 122, 0x0a, 120};
    span = run;
    memcpy(span.b + span.n, overrun, sizeof(overrun));
    span.n += sizeof(overrun);
    req = w_request(&span, 2);
    uint8_t *exact = malloc(req.n);
    assert_non_null(exact);
    memcpy(exact, req.b, req.n);
    assert_int_equal(scan_agrees(OTLP_TRACES, exact, req.n), 0);
    free(exact);
    /* A two-byte length (0x80 0x0a: 1,280, past the span) whose first byte,
     * read alone, would frame the 128 bytes that follow as an attribute. */
    uint8_t two[130] = {0x4a, 0x80, 0x0a, 0x01, 'k', 0x12, 123, 0x0a, 121};
    memset(two + 9, 'x', sizeof(two) - 9);
    span = run;
    memcpy(span.b + span.n, two, sizeof(two));
    span.n += sizeof(two);
    req = w_request(&span, 2);
    assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), 0);
}

static void test_wire_scan_leaves_odd_bytes_to_the_decoder(void **state)
{
    (void)state;
    wbuf span = {0};
    w_bytes(&span, 1, TRACE_ID, 16);
    w_bytes(&span, 2, SPAN_ID, 8);
    wbuf base = span;
    /* A NUL inside a string passes (the bytes travel whole)... */
    w_bytes(&span, 5, "a\0b", 3);
    wbuf req = w_request(&span, 2);
    assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), 1);
    /* ...but a metric name that starts with one is empty to the validator. */
    wbuf gauge = {0}, metric = {0};
    w_bytes(&gauge, 1, "", 0); /* one empty data point */
    w_bytes(&metric, 1, "\0m", 2);
    w_bytes(&metric, 5, gauge.b, gauge.n);
    req = w_request(&metric, 2);
    assert_int_equal(scan_agrees(OTLP_METRICS, req.b, req.n), 0);
    metric.n = 0;
    w_bytes(&metric, 1, "m\0", 2);
    w_bytes(&metric, 5, gauge.b, gauge.n);
    req = w_request(&metric, 2);
    assert_int_equal(scan_agrees(OTLP_METRICS, req.b, req.n), 1);
    /* Unknown fields of every wire type the decoder skips are fine. */
    span = base;
    static const uint8_t unknown[] = {0xf8, 0x01, 0x05,                    /* field 31 varint */
                                      0xf9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, /* field 31 fixed64 */
                                      0xfd, 0x01, 1, 2, 3, 4};            /* field 31 fixed32 */
    memcpy(span.b + span.n, unknown, sizeof(unknown));
    span.n += sizeof(unknown);
    w_bytes(&span, 31, "x", 1);
    req = w_request(&span, 2);
    assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), 1);
    /* A singular message field twice (status, 15): protobuf-c merges the
     * two, which can fail, so the decoder decides. */
    span = base;
    w_bytes(&span, 15, "", 0);
    w_bytes(&span, 15, "", 0);
    req = w_request(&span, 2);
    assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), 0);
    /* An attribute's value twice, both unset: protobuf-c refuses it. */
    wbuf kv = {0}, resource = {0}, logs = {0}, entry = {0};
    w_bytes(&kv, 1, "", 0);
    w_bytes(&kv, 2, "", 0);
    w_bytes(&kv, 2, "", 0);
    w_bytes(&resource, 1, kv.b, kv.n);
    w_bytes(&entry, 1, resource.b, resource.n);
    w_bytes(&logs, 1, entry.b, entry.n);
    assert_int_equal(scan_agrees(OTLP_LOGS, logs.b, logs.n), 0);
    assert_int_equal(decode_pb(OTLP_LOGS, logs.b, logs.n, (char[160]){0}, 160), -1);
    /* A known field with the wrong wire type: kind (6) as bytes. */
    span = base;
    w_bytes(&span, 6, "x", 1);
    req = w_request(&span, 2);
    assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), 0);
    /* Field 0 spelled in two bytes, a group, a 5-byte tag. */
    static const uint8_t odd[][6] = {{0x81, 0x00, 1, 2, 3, 4}, {0x0b, 0, 0, 0, 0, 0}, {0x80, 0x80, 0x80, 0x80, 0x08, 0}};
    for (size_t i = 0; i < 3; i++) {
        span = base;
        memcpy(span.b + span.n, odd[i], sizeof(odd[i]));
        span.n += i == 0 ? 10 : sizeof(odd[i]);
        req = w_request(&span, 2);
        assert_int_equal(scan_agrees(OTLP_TRACES, req.b, req.n), 0);
    }
    /* Packed repeated fields: a histogram point's bucket_counts (fixed64,
     * field 6) must come in whole 8-byte elements. */
    for (size_t n = 15; n <= 16; n++) {
        static const uint8_t counts[16] = {1, 0, 0, 0, 0, 0, 0, 0, 2};
        wbuf point = {0}, hist = {0}, metric = {0};
        w_bytes(&point, 6, counts, n);
        w_bytes(&hist, 1, point.b, point.n);
        w_bytes(&metric, 1, "h", 1);
        w_bytes(&metric, 9, hist.b, hist.n);
        req = w_request(&metric, 2);
        assert_int_equal(scan_agrees(OTLP_METRICS, req.b, req.n), n == 16);
    }
}

static void test_arena_limit(void **state)
{
    (void)state;
    span_shape shapes[8];
    for (int i = 0; i < 8; i++)
        shapes[i] = (span_shape){16, 8, 8, 0};
    size_t len;
    uint8_t *data = trace_request(shapes, 8, &len);
    arena *a = arena_new(256);
    otlp_request req;
    char err[160];
    assert_int_equal(otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, data, len, a, &req, err, sizeof(err)), -1);
    assert_true(arena_failed(a));
    assert_string_equal(err, "request too large when decoded");
    arena_free(a);
    free(data);
}

static void test_responses(void **state)
{
    (void)state;
    buf b = BUF_INIT;
    assert_int_equal(otlp_encode_response(OTLP_TRACES, OTLP_PROTOBUF, 3, "bad ids", &b), 0);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *tr =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, b.len, (uint8_t *)b.data);
    assert_non_null(tr);
    assert_non_null(tr->partial_success);
    assert_int_equal(tr->partial_success->rejected_spans, 3);
    assert_string_equal(tr->partial_success->error_message, "bad ids");
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(tr, NULL);

    /* Full success: an empty message. */
    buf_clear(&b);
    assert_int_equal(otlp_encode_response(OTLP_METRICS, OTLP_PROTOBUF, 0, NULL, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(otlp_encode_response(OTLP_METRICS, OTLP_JSON, 0, "", &b), 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "{}", 2);

    buf_clear(&b);
    assert_int_equal(otlp_encode_response(OTLP_METRICS, OTLP_PROTOBUF, 7, NULL, &b), 0);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *mr =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
            NULL, b.len, (uint8_t *)b.data);
    assert_non_null(mr);
    assert_int_equal(mr->partial_success->rejected_data_points, 7);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(mr, NULL);

    buf_clear(&b);
    assert_int_equal(otlp_encode_response(OTLP_LOGS, OTLP_JSON, 2, "log record 0: \"x\"", &b), 0);
    const char want[] = "{\"partialSuccess\":{\"rejectedLogRecords\":\"2\",\"errorMessage\":\"log record 0: \\\"x\\\"\"}}";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);

    /* A warning without rejections still sets partial_success. */
    buf_clear(&b);
    assert_int_equal(otlp_encode_response(OTLP_LOGS, OTLP_PROTOBUF, 0, "slow down", &b), 0);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *lr =
        opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(
            NULL, b.len, (uint8_t *)b.data);
    assert_non_null(lr);
    assert_non_null(lr->partial_success);
    assert_int_equal(lr->partial_success->rejected_log_records, 0);
    assert_string_equal(lr->partial_success->error_message, "slow down");
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(lr, NULL);

    buf_clear(&b);
    assert_int_equal(otlp_encode_status(OTLP_PROTOBUF, 8, "rate limited", &b), 0);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, b.len, (uint8_t *)b.data);
    assert_non_null(st);
    assert_int_equal(st->code, 8);
    assert_string_equal(st->message, "rate limited");
    google__rpc__status__free_unpacked(st, NULL);

    buf_clear(&b);
    assert_int_equal(otlp_encode_status(OTLP_JSON, 3, "bad", &b), 0);
    assert_int_equal(b.len, strlen("{\"code\":3,\"message\":\"bad\"}"));
    assert_memory_equal(b.data, "{\"code\":3,\"message\":\"bad\"}", b.len);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_decode_traces),
        cmocka_unit_test(test_validate_spans),
        cmocka_unit_test(test_metrics_count_validate),
        cmocka_unit_test(test_logs_count_validate),
        cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_arena_limit),
        cmocka_unit_test(test_wire_scan_last_field_wins),
        cmocka_unit_test(test_wire_scan_leaves_odd_bytes_to_the_decoder),
        cmocka_unit_test(test_wire_scan_notes),
        cmocka_unit_test(test_wire_scan_plain_attributes),
        cmocka_unit_test(test_wire_scan_attribute_runs),
        cmocka_unit_test(test_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
