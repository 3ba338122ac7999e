/* prom_rw: exponential histograms as native histograms (bucket layout and
 * scale-down, the wire form) and exemplars, checked on the decoded
 * WriteRequest as in test_prom_rw.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prom_rw.h"
#include "prom_rw_native.h"
#include "prom_rw_testlib.h"

/* ---- native histograms ---- */

typedef struct layout_want {
    size_t nspans;
    prom_rw_span spans[3];
    size_t ndeltas;
    int64_t deltas[8];
} layout_want;

static void check_layout(const char *what, const uint64_t *counts, size_t n, int32_t offset, int scale_down,
                         const layout_want *w)
{
    prom_rw_span spans[32];
    int64_t deltas[32];
    size_t ns, nd;
    assert_int_equal(prom_rw_native_layout(counts, n, offset, scale_down, spans, &ns, deltas, &nd), 0);
    int ok = ns == w->nspans && nd == w->ndeltas;
    for (size_t i = 0; ok && i < ns; i++)
        ok = spans[i].offset == w->spans[i].offset && spans[i].length == w->spans[i].length;
    for (size_t i = 0; ok && i < nd; i++)
        ok = deltas[i] == w->deltas[i];
    if (!ok) {
        for (size_t i = 0; i < ns; i++)
            print_error("span {%d, %u}\n", spans[i].offset, spans[i].length);
        for (size_t i = 0; i < nd; i++)
            print_error("delta %lld\n", (long long)deltas[i]);
        fail_msg("%s, scale down %d: layout differs", what, scale_down);
    }
}

/* collector-contrib's TestConvertBucketsLayout vectors, each at scale
 * reductions 0, 1 and 2. */
static void test_native_layout(void **state)
{
    (void)state;
    static const uint64_t c4321[] = {4, 3, 2, 1};
    static const uint64_t cpos[] = {4, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint64_t cmerge[] = {4, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint64_t cneg[] = {3, 1, 0, 0, 0, 1};
    static const uint64_t cgap1[] = {3, 1, 0, 1, 0, 1};
    static const uint64_t cgap2[] = {3, 0, 0, 1, 0, 0, 1};
    static const struct {
        const char *name;
        const uint64_t *counts;
        size_t n;
        int32_t offset;
        layout_want want[3];
    } cases[] = {
        {"zero offset", c4321, 4, 0,
         {{1, {{1, 4}}, 4, {4, -1, -1, -1}}, {1, {{1, 2}}, 2, {7, -4}}, {1, {{1, 1}}, 1, {10}}}},
        {"offset 1", c4321, 4, 1,
         {{1, {{2, 4}}, 4, {4, -1, -1, -1}}, {1, {{1, 3}}, 3, {4, 1, -4}}, {1, {{1, 2}}, 2, {9, -8}}}},
        {"positive offset", cpos, 17, 4,
         {{2, {{5, 4}, {12, 1}}, 5, {4, -2, -2, 2, -1}},
          {2, {{3, 2}, {6, 1}}, 3, {6, -4, -1}},
          {2, {{2, 1}, {3, 1}}, 2, {8, -7}}}},
        {"scaledown merges spans", cmerge, 13, 4,
         {{2, {{5, 4}, {8, 1}}, 5, {4, -2, -2, 2, -1}},
          {2, {{3, 2}, {4, 1}}, 3, {6, -4, -1}},
          {1, {{2, 4}}, 4, {8, -8, 0, 1}}}},
        {"negative offset", cneg, 6, -2,
         {{2, {{-1, 2}, {3, 1}}, 3, {3, -2, 0}}, {1, {{0, 3}}, 3, {4, -4, 1}}, {1, {{0, 2}}, 2, {4, -3}}}},
        {"gaps of size 1", cgap1, 6, -2,
         {{1, {{-1, 6}}, 6, {3, -2, -1, 1, -1, 1}}, {1, {{0, 3}}, 3, {4, -3, 0}}, {1, {{0, 2}}, 2, {4, -2}}}},
        {"gaps of size 2", cgap2, 7, -2,
         {{1, {{-1, 7}}, 7, {3, -3, 0, 1, -1, 0, 1}}, {1, {{0, 4}}, 4, {3, -2, -1, 1}}, {1, {{0, 3}}, 3, {3, -2, 0}}}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (int sd = 0; sd < 3; sd++)
            check_layout(cases[i].name, cases[i].counts, cases[i].n, cases[i].offset, sd, &cases[i].want[sd]);
    /* no buckets: nothing */
    prom_rw_span sp[1];
    int64_t d[1];
    size_t ns = 9, nd = 9;
    assert_int_equal(prom_rw_native_layout(NULL, 0, 3, 1, sp, &ns, d, &nd), 0);
    assert_int_equal(ns + nd, 0);
    /* Leading empty buckets that merge with filled ones: upstream puts 3 in
     * bucket 1 and 4 in bucket 2 here (its running sum is attributed to the
     * previous bucket); all 7 observations are in bucket 2. */
    static const uint64_t lead[] = {0, 0, 3, 4};
    layout_want w = {1, {{1, 2}}, 2, {0, 7}};
    check_layout("leading empty group", lead, 4, 0, 1, &w);
    /* empty leading buckets before a gap of more than 2: an empty first span */
    static const uint64_t far[] = {0, 0, 0, 5};
    layout_want wf = {2, {{1, 0}, {3, 1}}, 1, {5}};
    check_layout("leading gap", far, 4, 0, 0, &wf);
    /* any scale: past 62 halvings every index is 0 (or -1 below zero) */
    layout_want all = {1, {{1, 1}}, 1, {10}};
    check_layout("scale 100", c4321, 4, 5, 92, &all);
    /* an index Prometheus' 32-bit offsets cannot hold */
    assert_int_equal(prom_rw_native_layout(c4321, 4, INT32_MAX, 0, sp, &ns, d, &nd), 1);
}

/* A native histogram as decoded, against the expected fields. */
static void check_native(const Prometheus__Histogram *h, uint64_t count, double sumv, int schema, uint64_t zero,
                         const layout_want *pos, const layout_want *neg, int64_t ts)
{
    assert_int_equal(h->count_case, PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT);
    assert_int_equal(h->count_int, count);
    assert_true(h->sum == sumv);
    assert_int_equal(h->schema, schema);
    assert_true(h->zero_threshold == 1e-128);
    assert_int_equal(h->zero_count_case, PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT);
    assert_int_equal(h->zero_count_int, zero);
    assert_int_equal(h->reset_hint, PROMETHEUS__HISTOGRAM__RESET_HINT__UNKNOWN);
    assert_int_equal(h->timestamp, ts);
    const struct {
        const layout_want *w;
        size_t ns, nd;
        Prometheus__BucketSpan **spans;
        int64_t *deltas;
    } sides[2] = {{pos, h->n_positive_spans, h->n_positive_deltas, h->positive_spans, h->positive_deltas},
                  {neg, h->n_negative_spans, h->n_negative_deltas, h->negative_spans, h->negative_deltas}};
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(sides[k].ns, sides[k].w->nspans);
        assert_int_equal(sides[k].nd, sides[k].w->ndeltas);
        for (size_t i = 0; i < sides[k].ns; i++) {
            assert_int_equal(sides[k].spans[i]->offset, sides[k].w->spans[i].offset);
            assert_int_equal(sides[k].spans[i]->length, sides[k].w->spans[i].length);
        }
        for (size_t i = 0; i < sides[k].nd; i++)
            assert_int_equal(sides[k].deltas[i], sides[k].w->deltas[i]);
    }
}

/* collector-contrib's TestExponentialToNativeHistogram vectors through the
 * whole conversion. Their counts leave the zero bucket out (4 and 6 where
 * zero_count + buckets are 5 and 7); Prometheus refuses a histogram whose
 * count differs from its buckets', so the consistent counts are used. */
static void test_exp_histogram(void **state)
{
    (void)state;
    static const uint64_t two[] = {1, 1}, three[] = {1, 1, 1};
    static const double s = 10.1;
    exp_t **pts = alloc(8 * sizeof(*pts));
    pts[0] = exp_point(500 * 1000000ull, 1, 5, 1, &s);
    pts[1] = exp_point(600 * 1000000ull, 1, 5, 1, NULL); /* no sum */
    for (size_t i = 0; i < 2; i++) {
        pts[i]->positive = exp_buckets(1, two, 2);
        pts[i]->negative = exp_buckets(1, two, 2);
    }
    pts[2] = exp_point(700 * 1000000ull, 8, 7, 1, &s); /* no downscaling at 8 */
    pts[3] = exp_point(800 * 1000000ull, 9, 7, 1, &s); /* 9: merged down to 8 */
    for (size_t i = 2; i < 4; i++) {
        pts[i]->positive = exp_buckets(1, three, 3);
        pts[i]->negative = exp_buckets(2, three, 3);
    }
    pts[4] = exp_point(900 * 1000000ull, -10, 1, 1, NULL); /* scale below -4: refused upstream */
    pts[5] = exp_point(900 * 1000000ull, 0, 9, 1, NULL);   /* count does not match the buckets */
    pts[5]->positive = exp_buckets(0, two, 2);
    pts[6] = exp_point(950 * 1000000ull, 0, 3, 1, &s); /* stale */
    pts[6]->positive = exp_buckets(0, two, 2);
    pts[6]->flags = 1;
    double nan_sum = NAN;
    pts[7] = exp_point(990 * 1000000ull, -4, 9, 0, &nan_sum); /* NaN sum: more observations than buckets is fine */
    pts[7]->positive = exp_buckets(-3, two, 2);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = exp_metric("http.server.request.duration", "s", pts, 8);
    ms[0]->description = "Request time.";
    result r = convert(one_resource(ms, 1), NULL);
    assert_int_equal(r.st.converted, 6);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_SCALE], 1);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 1);
    char all[512];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "http_server_request_duration_seconds http_server_request_duration_seconds "
                             "http_server_request_duration_seconds http_server_request_duration_seconds "
                             "http_server_request_duration_seconds http_server_request_duration_seconds target_info");
    const layout_want two_at_2 = {1, {{2, 2}}, 2, {1, 0}};
    for (size_t i = 0; i < 2; i++) {
        const Prometheus__TimeSeries *ts = r.wr->timeseries[i];
        assert_int_equal(ts->n_samples, 0);
        assert_int_equal(ts->n_histograms, 1);
        assert_string_equal(label(ts, "job"), "shop/cart");
        check_native(ts->histograms[0], 5, i == 0 ? 10.1 : 0, 1, 1, &two_at_2, &two_at_2, i == 0 ? 500 : 600);
    }
    const layout_want p8 = {1, {{2, 3}}, 3, {1, 0, 0}}, n8 = {1, {{3, 3}}, 3, {1, 0, 0}};
    check_native(r.wr->timeseries[2]->histograms[0], 7, 10.1, 8, 1, &p8, &n8, 700);
    const layout_want p9 = {1, {{1, 2}}, 2, {1, 1}}, n9 = {1, {{2, 2}}, 2, {2, -1}};
    check_native(r.wr->timeseries[3]->histograms[0], 7, 10.1, 8, 1, &p9, &n9, 800);
    /* stale: the count's bits and the sum are Prometheus' stale NaN */
    const Prometheus__Histogram *st = r.wr->timeseries[4]->histograms[0];
    assert_true(st->count_int == 0x7ff0000000000002ull);
    assert_true(bits(st->sum) == 0x7ff0000000000002ull);
    const Prometheus__Histogram *nh = r.wr->timeseries[5]->histograms[0];
    assert_int_equal(nh->schema, -4);
    assert_int_equal(nh->positive_spans[0]->offset, -2);
    /* metadata: a histogram family under the plain name */
    assert_string_equal(r.wr->metadata[0]->metric_family_name, "http_server_request_duration_seconds");
    assert_int_equal(r.wr->metadata[0]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM);
    assert_string_equal(r.wr->metadata[0]->unit, "seconds");
    result_free(&r);

    /* delta temporality is dropped, as for every other delta metric */
    ms[0]->exponential_histogram->aggregation_temporality = DELTA;
    r = convert(one_resource(ms, 1), NULL);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_DELTA], 8);
    result_free(&r);

    /* native_histograms off (a receiver without them): all dropped */
    ms[0]->exponential_histogram->aggregation_temporality = CUMULATIVE;
    prom_rw_options off = DEFAULTS;
    off.native_histograms = 0;
    r = convert(one_resource(ms, 1), &off);
    assert_int_equal(r.wr->n_timeseries, 0);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_NATIVE_OFF], 8);
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_NATIVE_OFF), "native_histograms_off");
    result_free(&r);
}

/* The bytes of a native histogram, against a hand encoding of the
 * protocol's field numbers and wire types (independent of our .proto):
 * count_int 1 varint, sum 3 double, schema 4 sint32, zero_threshold 5
 * double, zero_count_int 6 varint, negative_spans 8 and positive_spans 11
 * (offset 1 sint32, length 2 varint), negative_deltas 9 and
 * positive_deltas 12 packed sint64, reset_hint 14 (UNKNOWN: omitted),
 * timestamp 15 varint; in TimeSeries field 4. */
static void test_native_wire(void **state)
{
    (void)state;
    static const uint64_t two[] = {1, 1};
    static const double s = 10.1;
    exp_t **pts = alloc(sizeof(*pts));
    pts[0] = exp_point(500 * 1000000ull, 1, 5, 1, &s);
    pts[0]->positive = exp_buckets(1, two, 2);
    pts[0]->negative = exp_buckets(1, two, 2);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = exp_metric("h", "", pts, 1);
    prom_rw_options opt = {.add_metric_suffixes = 1, .native_histograms = 1};
    buf out = BUF_INIT;
    prom_rw_stats st = {0};
    assert_int_equal(prom_rw_convert(one_resource(ms, 1), &opt, A, &out, &st), 0);

    uint8_t want[64];
    size_t n = 0;
    double zt = 1e-128;
    want[n++] = 0x08, want[n++] = 5;   /* count_int */
    want[n++] = 0x19;                  /* sum, fixed64 */
    memcpy(want + n, &s, 8), n += 8;   /* (little-endian host) */
    want[n++] = 0x20, want[n++] = 2;   /* schema 1, zigzag */
    want[n++] = 0x29;                  /* zero_threshold */
    memcpy(want + n, &zt, 8), n += 8;
    want[n++] = 0x30, want[n++] = 1;   /* zero_count_int */
    static const uint8_t rest[] = {
        0x42, 4, 0x08, 4, 0x10, 2, /* negative_spans {offset 2 (zigzag 4), length 2} */
        0x4a, 2, 2, 0,             /* negative_deltas packed [1, 0] zigzag */
        0x5a, 4, 0x08, 4, 0x10, 2, /* positive_spans */
        0x62, 2, 2, 0,             /* positive_deltas */
        0x78, 0xf4, 0x03,          /* timestamp 500 */
    };
    memcpy(want + n, rest, sizeof(rest)), n += sizeof(rest);
    const uint8_t *at = memmem(out.data, out.len, want, n);
    if (at == NULL)
        fail_msg("native histogram bytes not found");
    assert_int_equal(at[-2], 0x22); /* TimeSeries.histograms = 4, length-delimited */
    assert_int_equal(at[-1], n);
    buf_free(&out);
}

/* ---- exemplars ---- */

typedef Opentelemetry__Proto__Metrics__V1__Exemplar ex_t;

static const uint8_t TRACE[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SPAN[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

static ex_t *exemplar(double v, uint64_t t, int ids)
{
    ex_t *e = alloc(sizeof(*e));
    opentelemetry__proto__metrics__v1__exemplar__init(e);
    e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    e->as_double = v;
    e->time_unix_nano = t;
    if (ids) {
        e->trace_id = (ProtobufCBinaryData){16, (uint8_t *)TRACE};
        e->span_id = (ProtobufCBinaryData){8, (uint8_t *)SPAN};
    }
    return e;
}

static const char *ex_label(const Prometheus__Exemplar *x, const char *name)
{
    for (size_t i = 0; i < x->n_labels; i++)
        if (strcmp(x->labels[i]->name, name) == 0)
            return x->labels[i]->value;
    return NULL;
}

static void test_exemplars(void **state)
{
    (void)state;
    static const char *const trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736", *span_hex = "00f067aa0ba902b7";
    /* a counter: every exemplar on its series; ids as hex labels first,
     * filtered attributes after (dropped when all exceed 128 characters) */
    ex_t **ce = alloc(4 * sizeof(*ce));
    ce[0] = exemplar(3.5, MS(900), 1);
    size_t na;
    ce[0]->filtered_attributes = attrs(&na, kvs("http.route", "/cart"), NULL);
    ce[0]->n_filtered_attributes = na;
    ce[1] = exemplar(0, MS(950), 1);
    ce[1]->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT;
    ce[1]->as_int = 7;
    static char longv[100];
    memset(longv, 'x', sizeof(longv) - 1);
    ce[1]->filtered_attributes = attrs(&na, kvs("user", longv), NULL);
    ce[1]->n_filtered_attributes = na;
    ce[2] = exemplar(1, MS(960), 0); /* no ids */
    ce[3] = exemplar(1, MS(970), 0);
    ce[3]->trace_id = (ProtobufCBinaryData){16, (uint8_t *)"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"}; /* all zero: unset */
    number_t **cp = alloc(sizeof(*cp));
    cp[0] = num_point(MS(1000), 10, NULL, 0);
    cp[0]->exemplars = ce;
    cp[0]->n_exemplars = 4;
    /* a gauge: none (upstream attaches none to gauges) */
    number_t **gp = alloc(sizeof(*gp));
    gp[0] = num_point(MS(1000), 1, NULL, 0);
    gp[0]->exemplars = ce;
    gp[0]->n_exemplars = 1;
    /* a histogram: each exemplar on the first bucket holding its value */
    static const double bounds[] = {1, 10};
    static const uint64_t counts[] = {1, 1, 1};
    hist_t **hp = alloc(sizeof(*hp));
    hp[0] = hist_point(MS(1000), bounds, 2, counts, 3, 3, NULL);
    ex_t **he = alloc(5 * sizeof(*he));
    he[0] = exemplar(0.5, MS(900), 1);
    he[1] = exemplar(10, MS(900), 1);
    he[2] = exemplar(50, MS(900), 1);
    he[3] = exemplar(NAN, MS(900), 1);
    he[4] = exemplar(-2, MS(901), 1);
    hp[0]->exemplars = he;
    hp[0]->n_exemplars = 5;
    /* an exponential histogram: all on its native series */
    static const uint64_t two[] = {1, 1};
    exp_t **ep = alloc(sizeof(*ep));
    ep[0] = exp_point(MS(1000), 0, 2, 0, NULL);
    ep[0]->positive = exp_buckets(0, two, 2);
    ep[0]->exemplars = he;
    ep[0]->n_exemplars = 2;
    metric_t **ms = alloc(4 * sizeof(*ms));
    ms[0] = sum("orders", "", 1, CUMULATIVE, cp, 1);
    ms[1] = gauge("temp", "", gp, 1);
    ms[2] = histogram("lat", "s", CUMULATIVE, hp, 1);
    ms[3] = exp_metric("size", "By", ep, 1);
    result r = convert(one_resource(ms, 4), NULL);

    const Prometheus__TimeSeries *c = find(&r, "orders_total", NULL, NULL);
    assert_int_equal(c->n_exemplars, 4);
    const Prometheus__Exemplar *x = c->exemplars[0];
    assert_true(x->value == 3.5);
    assert_int_equal(x->timestamp, 900);
    assert_int_equal(x->n_labels, 3);
    assert_string_equal(x->labels[0]->name, "trace_id");
    assert_string_equal(x->labels[0]->value, trace_hex);
    assert_string_equal(x->labels[1]->name, "span_id");
    assert_string_equal(x->labels[1]->value, span_hex);
    assert_string_equal(ex_label(x, "http_route"), "/cart");
    x = c->exemplars[1];
    assert_true(x->value == 7);
    assert_int_equal(x->n_labels, 2); /* 40 + 23 + 4 + 99 characters: the attribute goes */
    assert_string_equal(ex_label(x, "span_id"), span_hex);
    assert_int_equal(c->exemplars[2]->n_labels, 0);
    assert_int_equal(c->exemplars[3]->n_labels, 0);

    assert_int_equal(find(&r, "temp", NULL, NULL)->n_exemplars, 0);

    static const struct {
        const char *le;
        size_t n;
        double first;
    } buckets[] = {{"1", 2, 0.5}, {"10", 1, 10}, {"+Inf", 1, 50}};
    for (size_t i = 0; i < 3; i++) {
        const Prometheus__TimeSeries *b = find(&r, "lat_seconds_bucket", "le", buckets[i].le);
        assert_int_equal(b->n_exemplars, buckets[i].n);
        assert_true(b->exemplars[0]->value == buckets[i].first);
        assert_string_equal(ex_label(b->exemplars[0], "trace_id"), trace_hex);
    }
    assert_true(find(&r, "lat_seconds_bucket", "le", "1")->exemplars[1]->value == -2);
    assert_int_equal(find(&r, "lat_seconds_count", NULL, NULL)->n_exemplars, 0);

    const Prometheus__TimeSeries *e = find(&r, "size_bytes", NULL, NULL);
    assert_int_equal(e->n_histograms, 1);
    assert_int_equal(e->n_exemplars, 2);
    assert_true(e->exemplars[1]->value == 10);
    result_free(&r);

    /* on the wire: TimeSeries.exemplars = 3, Exemplar {labels 1, value 2
     * double, timestamp 3 varint} */
    ms[0]->sum->data_points[0]->n_exemplars = 1;
    ce[0]->n_filtered_attributes = 0;
    buf out = BUF_INIT;
    prom_rw_stats st = {0};
    assert_int_equal(prom_rw_convert(one_resource(ms, 1), &DEFAULTS, A, &out, &st), 0);
    uint8_t want[128];
    size_t n = 0;
    want[n++] = 0x1a, want[n++] = 0; /* length filled in below */
    want[n++] = 0x0a, want[n++] = 2 + 8 + 2 + 32;
    want[n++] = 0x0a, want[n++] = 8, memcpy(want + n, "trace_id", 8), n += 8;
    want[n++] = 0x12, want[n++] = 32, memcpy(want + n, trace_hex, 32), n += 32;
    want[n++] = 0x0a, want[n++] = 2 + 7 + 2 + 16;
    want[n++] = 0x0a, want[n++] = 7, memcpy(want + n, "span_id", 7), n += 7;
    want[n++] = 0x12, want[n++] = 16, memcpy(want + n, span_hex, 16), n += 16;
    double v = 3.5;
    want[n++] = 0x11, memcpy(want + n, &v, 8), n += 8;
    want[n++] = 0x18, want[n++] = 0x84, want[n++] = 0x07; /* 900 */
    want[1] = (uint8_t)(n - 2);
    assert_non_null(memmem(out.data, out.len, want, n));
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_native_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exp_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exemplars, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
