/* es_metrics: OTLP metrics -> Elasticsearch documents, the points grouped as
 * Elastic's exporter groups them (es_metrics.h). */
#include "es_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "es_json.h"
#include "es_xxh64.h"

/* ---- metrics ---- */

/* What one data point contributes: its dimensions, times and value (the
 * value's JSON in ctx.value). */
typedef struct es_doc_point {
    es_kv **attrs;
    size_t n_attrs;
    uint64_t start, time;
    const char *template; /* Elastic's dynamic template for the field */
    const char *why;      /* set: the point is left out because of this */
} es_doc_point;

#define ES_DOC_POINT(dp) \
    ((es_doc_point){.attrs = (dp)->attributes, .n_attrs = (dp)->n_attributes, \
                    .start = (dp)->start_time_unix_nano, .time = (dp)->time_unix_nano})

static int es_doc_number(es_doc_ctx *c, es_doc_point *p, const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp,
                         int counter)
{
    *p = ES_DOC_POINT(dp);
    buf_clear(&c->value);
    if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
        p->template = counter ? "counter_long" : "gauge_long";
        return es_json_put_int(&c->value, dp->as_int);
    }
    if (dp->value_case != OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
        p->why = "number data point without a value";
        return 0;
    }
    if (!isfinite(dp->as_double)) {
        p->why = "value is not a finite number";
        return 0;
    }
    p->template = counter ? "counter_double" : "gauge_double";
    return es_json_put_real(&c->value, dp->as_double);
}

/* An Elasticsearch histogram field value, {"counts":[...],"values":[...]},
 * the values finite and strictly increasing. The counts are written to
 * ctx.value, the values to ctx.values until es_doc_hist_finish joins them. */
typedef struct es_doc_hist {
    buf *counts, *values;
    size_t n;
    double last;
    int bad; /* a value broke the rule */
} es_doc_hist;

static int es_doc_hist_start(es_doc_ctx *c, es_doc_hist *h)
{
    *h = (es_doc_hist){.counts = &c->value, .values = &c->values};
    buf_clear(h->counts);
    buf_clear(h->values);
    return es_json_lit(h->counts, "{\"counts\":[");
}

static int es_doc_bucket(es_doc_hist *h, uint64_t count, double value)
{
    if (count == 0 || h->bad)
        return 0;
    if (!isfinite(value) || (h->n > 0 && !(value > h->last))) {
        h->bad = 1;
        return 0;
    }
    h->last = value;
    if (h->n++ > 0 && (es_json_char(h->counts, ',') != 0 || es_json_char(h->values, ',') != 0))
        return -1;
    return es_json_put_uint(h->counts, count) || es_json_put_real(h->values, value) ? -1 : 0;
}

/* The histogram's value, or p->why set when it broke the rule. */
static int es_doc_hist_finish(es_doc_hist *h, es_doc_point *p, const char *why)
{
    if (h->bad) {
        p->why = why;
        return 0;
    }
    if (es_json_lit(h->counts, "],\"values\":[") || es_json_bytes(h->counts, h->values->data, h->values->len) ||
        es_json_lit(h->counts, "]}"))
        return -1;
    return 0;
}

/* Explicit buckets as Elastic maps them: each non-empty bucket at its
 * midpoint; the first (-inf, b0] at b0/2 when b0 > 0, else at b0; the last
 * (bn, +inf) at bn. Without bounds: one bucket at the mean. */
static int es_doc_histogram(es_doc_ctx *c, es_doc_point *p,
                            const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    p->template = "histogram";
    size_t nb = dp->n_explicit_bounds;
    const double *b = dp->explicit_bounds;
    if (dp->n_bucket_counts > 0 && dp->n_bucket_counts != nb + 1) {
        p->why = "histogram bucket_counts do not match explicit_bounds";
        return 0;
    }
    es_doc_hist h;
    int rc = es_doc_hist_start(c, &h);
    if (nb == 0 && rc == 0)
        rc = es_doc_bucket(&h, dp->count, (dp->_sum_case ? dp->sum : 0) / (double)(dp->count ? dp->count : 1));
    for (size_t i = 0; nb > 0 && i < dp->n_bucket_counts && rc == 0; i++) {
        double at = i == 0 ? (b[0] > 0 ? b[0] / 2 : b[0]) : i == nb ? b[nb - 1] : b[i - 1] + (b[i] - b[i - 1]) / 2;
        rc = es_doc_bucket(&h, dp->bucket_counts[i], at);
    }
    if (rc != 0)
        return -1;
    return es_doc_hist_finish(&h, p, "histogram bounds are not finite and increasing");
}

/* Lower boundary of exponential bucket `index` at `scale`: base^index with
 * base = 2^(2^-scale) (the OpenTelemetry data model's definition). */
static double es_doc_exp_lower(int64_t index, int32_t scale)
{
    if (scale > 0)
        return exp((double)index * ldexp(M_LN2, -scale));
    int64_t e = index * ((int64_t)1 << -scale);
    return ldexp(1.0, e > 2000 ? 2000 : e < -2000 ? -2000 : (int)e); /* beyond is 0 or inf anyway */
}

/* An exponential histogram as explicit buckets at their midpoints (the
 * negative buckets from the largest magnitude down, the zero bucket at 0,
 * the positive buckets), as Elastic's exporter maps it by default. */
static int es_doc_exp_histogram(es_doc_ctx *c, es_doc_point *p,
                                const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    p->template = "histogram";
    if (dp->scale < -10 || dp->scale > 20) {
        p->why = "exponential histogram scale out of range (-10..20)";
        return 0;
    }
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *neg = dp->negative,
                                                                                     *pos = dp->positive;
    es_doc_hist h;
    int rc = es_doc_hist_start(c, &h);
    for (size_t i = neg != NULL ? neg->n_bucket_counts : 0; i-- > 0 && rc == 0;) {
        double inner = es_doc_exp_lower((int64_t)neg->offset + (int64_t)i, dp->scale);
        double outer = es_doc_exp_lower((int64_t)neg->offset + (int64_t)i + 1, dp->scale);
        rc = es_doc_bucket(&h, neg->bucket_counts[i], -(inner + (outer - inner) / 2));
    }
    if (rc == 0)
        rc = es_doc_bucket(&h, dp->zero_count, 0.0);
    for (size_t i = 0; pos != NULL && i < pos->n_bucket_counts && rc == 0; i++) {
        double lower = es_doc_exp_lower((int64_t)pos->offset + (int64_t)i, dp->scale);
        double upper = es_doc_exp_lower((int64_t)pos->offset + (int64_t)i + 1, dp->scale);
        rc = es_doc_bucket(&h, pos->bucket_counts[i], lower + (upper - lower) / 2);
    }
    if (rc != 0)
        return -1;
    return es_doc_hist_finish(&h, p, "exponential histogram buckets do not convert to finite increasing values");
}

/* {"sum": sum, "value_count": count}: Elastic's `summary` template (an
 * aggregate_metric_double). */
static int es_doc_aggregate(es_doc_ctx *c, es_doc_point *p, double sum, uint64_t count, const char *why)
{
    p->template = "summary";
    if (!isfinite(sum)) {
        p->why = why;
        return 0;
    }
    buf_clear(&c->value);
    if (es_json_lit(&c->value, "{\"sum\":") || es_json_put_real(&c->value, sum) ||
        es_json_lit(&c->value, ",\"value_count\":") || es_json_put_uint(&c->value, count) ||
        es_json_char(&c->value, '}'))
        return -1;
    return 0;
}

/* Summaries as Elastic maps them: sum and count (quantiles are not kept). */
static int es_doc_summary(es_doc_ctx *c, es_doc_point *p, const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *dp)
{
    *p = ES_DOC_POINT(dp);
    return es_doc_aggregate(c, p, dp->sum, dp->count, "summary sum is not a finite number");
}

/* Elastic's mapping hints, the strings of a point's
 * elasticsearch.mapping.hints array: `_doc_count` (the document's
 * _doc_count is the point's count) and `aggregate_metric_double` (a
 * histogram kept as sum and count only). */
#define ES_DOC_HINT_DOC_COUNT 1u
#define ES_DOC_HINT_AGGREGATE 2u

static unsigned es_doc_hints(es_kv **kv, size_t n)
{
    unsigned hints = 0;
    for (size_t i = 0; i < n; i++) {
        const es_any *v = kv[i]->value;
        if (strcmp(kv[i]->key, "elasticsearch.mapping.hints") != 0 || v == NULL ||
            v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE || v->array_value == NULL)
            continue;
        for (size_t j = 0; j < v->array_value->n_values; j++) {
            const es_any *h = v->array_value->values[j];
            if (h == NULL || h->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
                continue;
            hints |= strcmp(h->string_value, "_doc_count") == 0 ? ES_DOC_HINT_DOC_COUNT
                     : strcmp(h->string_value, "aggregate_metric_double") == 0 ? ES_DOC_HINT_AGGREGATE
                                                                                : 0;
        }
        break; /* the first such attribute */
    }
    return hints;
}

/* One data point waiting for the document of its group. */
typedef struct es_doc_mpoint {
    const Opentelemetry__Proto__Metrics__V1__Metric *m;
    const void *dp; /* a data point of m's kind */
    es_kv **attrs;
    size_t n_attrs;
    uint64_t time, start;
    size_t origin;           /* in ctx.origins */
    size_t key_off, key_len; /* its group key in ctx.gkeys */
} es_doc_mpoint;

/* The value of a point into ctx.value and its template, or p->why; *doc_count
 * what _doc_count would say of it. */
static int es_doc_point_value(es_doc_ctx *c, const es_doc_mpoint *mp, unsigned hints, es_doc_point *p,
                              uint64_t *doc_count)
{
    const Opentelemetry__Proto__Metrics__V1__Metric *m = mp->m;
    *doc_count = 1;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        /* Elastic's counter templates: monotonic cumulative sums only. */
        int counter = m->sum->is_monotonic &&
                      m->sum->aggregation_temporality ==
                          OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        return es_doc_number(c, p, mp->dp, counter);
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *dp = mp->dp;
        *doc_count = dp->count;
        if (!(hints & ES_DOC_HINT_AGGREGATE))
            return es_doc_histogram(c, p, dp);
        *p = ES_DOC_POINT(dp);
        return es_doc_aggregate(c, p, dp->_sum_case ? dp->sum : 0, dp->count, "histogram sum is not a finite number");
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *dp = mp->dp;
        *doc_count = dp->count;
        if (!(hints & ES_DOC_HINT_AGGREGATE))
            return es_doc_exp_histogram(c, p, dp);
        *p = ES_DOC_POINT(dp);
        return es_doc_aggregate(c, p, dp->_sum_case ? dp->sum : 0, dp->count,
                                "exponential histogram sum is not a finite number");
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: {
        const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *dp = mp->dp;
        *doc_count = dp->count;
        return es_doc_summary(c, p, dp);
    }
    default: return es_doc_number(c, p, mp->dp, 0); /* a gauge */
    }
}

/* The identity of an attribute list, as Elastic's grouping hashes it: the
 * members es_doc_plan keeps, sorted by key, each as key, NUL, its value's
 * JSON (maps as text), RS. */
static int es_doc_put_canonical(es_doc_ctx *c, buf *b, es_kv **kv, size_t n)
{
    size_t base = c->plan.n, count;
    int rc = es_doc_plan(c, kv, n, 1, &count);
    if (rc == 0 && count > 1) { /* sort the planned slots by key */
        size_t *slot = c->plan.v + base;
        rc = es_doc_keys(c, kv, slot, count) != 0 ||
             es_doc_grow((void **)&c->order, &c->order_cap, count, sizeof(*c->order)) != 0;
        if (rc == 0) {
            qsort(c->keys, count, sizeof(*c->keys), es_doc_key_order);
            for (size_t j = 0; j < count; j++)
                c->order[j] = slot[c->keys[j].pos];
            memcpy(slot, c->order, count * sizeof(*slot));
        }
    }
    for (size_t j = 0; rc == 0 && j < count; j++) {
        const es_kv *e = kv[c->plan.v[base + j]]; /* re-read: nested plans may move the stack */
        rc = es_json_put_chars(b, e->key, strlen(e->key)) || es_json_char(b, '\0') ||
             es_doc_put_value(c, b, e->value, 1) || es_json_char(b, '\x1e');
    }
    c->plan.n = base;
    return rc ? -1 : 0;
}

static int es_doc_put_u64(buf *b, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    return es_json_bytes(b, le, sizeof(le));
}

/* Queues the points of one scope of one resource (the origin just set up). */
static void es_doc_collect(es_doc_ctx *c, const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    size_t n;
    void *const *dps;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        n = m->gauge->n_data_points, dps = (void *const *)m->gauge->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        n = m->sum->n_data_points, dps = (void *const *)m->sum->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        n = m->histogram->n_data_points, dps = (void *const *)m->histogram->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        n = m->exponential_histogram->n_data_points, dps = (void *const *)m->exponential_histogram->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        n = m->summary->n_data_points, dps = (void *const *)m->summary->data_points;
        break;
    default: return; /* no data: otlp_validate keeps no such metric */
    }
    if (es_doc_grow((void **)&c->pts, &c->pts_cap, c->n_pts + n, sizeof(*c->pts)) != 0) {
        c->failed = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        es_doc_mpoint *p = &c->pts[c->n_pts++];
        *p = (es_doc_mpoint){.m = m, .dp = dps[i], .origin = c->n_origins - 1};
        switch (m->data_case) { /* the fields every kind of point has, by name */
#define ES_DOC_COLLECT(CASE, TYPE) \
    case CASE: { \
        const TYPE *dp = dps[i]; \
        p->attrs = dp->attributes, p->n_attrs = dp->n_attributes; \
        p->time = dp->time_unix_nano, p->start = dp->start_time_unix_nano; \
        break; \
    }
            ES_DOC_COLLECT(OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM,
                           Opentelemetry__Proto__Metrics__V1__HistogramDataPoint)
            ES_DOC_COLLECT(OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM,
                           Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint)
            ES_DOC_COLLECT(OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY,
                           Opentelemetry__Proto__Metrics__V1__SummaryDataPoint)
            ES_DOC_COLLECT(OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM,
                           Opentelemetry__Proto__Metrics__V1__NumberDataPoint)
            ES_DOC_COLLECT(OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE,
                           Opentelemetry__Proto__Metrics__V1__NumberDataPoint)
#undef ES_DOC_COLLECT
        default: break;
        }
    }
}

/* The group key of a point: what Elastic's exporter groups metric points
 * into one document by. Its index (data stream), its resource's attributes,
 * its scope's name and attributes, its time and start time, its metric's
 * unit and its own attributes (the reserved ones left out everywhere). */
static int es_doc_group_key(es_doc_ctx *c, es_doc_mpoint *p)
{
    const es_doc_origin *o = &c->origins[p->origin];
    es_doc_stream ds;
    es_doc_route(c, o, "metrics", p->attrs, p->n_attrs, &ds);
    char index[ES_DOC_INDEX_MAX];
    buf *b = &c->gkeys;
    p->key_off = b->len;
    int rc = (ds.index != NULL ? es_json_bytes(b, ds.index, strlen(ds.index))
                               : es_json_bytes(b, index, es_doc_index_name(&ds, index))) ||
             es_json_char(b, '\0') || es_json_bytes(b, c->okeys.data + o->key_off, o->key_len) ||
             es_doc_put_u64(b, p->time) || es_doc_put_u64(b, p->start) ||
             es_json_bytes(b, p->m->unit, strlen(p->m->unit)) || es_json_char(b, '\0') ||
             es_doc_put_canonical(c, b, p->attrs, p->n_attrs);
    p->key_len = b->len - p->key_off;
    return rc ? -1 : 0;
}

/* Byte order of the names (what Elastic sorts them by), then place. */
static int es_doc_name_order(const void *pa, const void *pb)
{
    const es_doc_keyref *a = pa, *b = pb;
    int d = strcmp(a->s, b->s);
    if (d != 0)
        return d;
    return a->pos < b->pos ? -1 : 1;
}

/* The metric names of the group g[0..n) sorted into c->names (each name
 * once, at its first point), and c->dup[k] set for every later point of a
 * name: found by sorting, not pairwise, as a group may hold thousands. */
static int es_doc_group_names(es_doc_ctx *c, const es_doc_keyref *g, size_t n)
{
    if (es_doc_grow((void **)&c->names, &c->names_cap, n, sizeof(*c->names)) != 0 ||
        es_doc_grow((void **)&c->dup, &c->dup_cap, n, sizeof(*c->dup)) != 0)
        return -1;
    for (size_t k = 0; k < n; k++)
        c->names[k] = (es_doc_keyref){.s = c->pts[g[k].pos].m->name, .pos = k};
    qsort(c->names, n, sizeof(*c->names), es_doc_name_order);
    memset(c->dup, 0, n);
    for (size_t k = 1; k < n; k++)
        if (strcmp(c->names[k].s, c->names[k - 1].s) == 0)
            c->dup[c->names[k].pos] = 1;
    return 0;
}

/* `_metric_names_hash` as Elastic writes it: XXH64 of the document's metric
 * names (c->names, sorted by es_doc_group_names), each once, concatenated,
 * in lower-case hex without leading zeros. It keeps documents of the same
 * dimensions but different sets of metrics apart in the time series data
 * stream. A name whose point was left out is in it, as Elastic has it. */
static int es_doc_put_names_hash(es_doc_ctx *c, buf *b, size_t n)
{
    buf_clear(&c->text);
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || strcmp(c->names[i].s, c->names[i - 1].s) != 0) &&
            es_json_bytes(&c->text, c->names[i].s, strlen(c->names[i].s)) != 0)
            return -1;
    uint64_t h = es_xxh64(c->text.data, c->text.len);
    char tmp[20];
    char *s = tmp + sizeof(tmp);
    *--s = '"';
    do {
        *--s = es_json_hex[h & 15];
        h >>= 4;
    } while (h != 0);
    *--s = '"';
    return es_json_bytes(b, s, (size_t)(tmp + sizeof(tmp) - s));
}

/* The document of the group g[0..n): the points of one key, in their order.
 * Each metric is a member of `metrics` with its template in the action; a
 * point that cannot be represented, or a second point of a metric already
 * there, is left out and counted. A group left without a metric writes no
 * document. */
static void es_doc_group(es_doc_ctx *c, const es_doc_keyref *g, size_t n)
{
    const es_doc_mpoint *p0 = &c->pts[g[0].pos];
    buf_clear(&c->mvals);
    buf_clear(&c->mtmpl);
    uint64_t doc_count = 0;
    uint32_t weight = 0;
    if (es_doc_group_names(c, g, n) != 0) {
        c->failed = 1;
        return;
    }
    for (size_t k = 0; k < n && !c->failed; k++) {
        const es_doc_mpoint *mp = &c->pts[g[k].pos];
        const char *name = mp->m->name;
        if (c->dup[k]) {
            es_doc_drop(c, "metric \"%s\": a second point with the same dimensions and time", name);
            continue;
        }
        unsigned hints = es_doc_hints(mp->attrs, mp->n_attrs);
        es_doc_point pt;
        uint64_t count;
        if (es_doc_point_value(c, mp, hints, &pt, &count) != 0) {
            c->failed = 1;
            return;
        }
        if (hints & ES_DOC_HINT_DOC_COUNT)
            doc_count = count;
        if (pt.why != NULL) {
            es_doc_drop(c, "metric \"%s\": %s", name, pt.why);
            continue;
        }
        size_t nl = strlen(name);
        if ((weight > 0 && (es_json_char(&c->mvals, ',') || es_json_char(&c->mtmpl, ','))) ||
            es_json_put_str(&c->mvals, name, nl) || es_json_char(&c->mvals, ':') ||
            es_json_bytes(&c->mvals, c->value.data, c->value.len) || es_json_lit(&c->mtmpl, "\"metrics.") ||
            es_json_put_chars(&c->mtmpl, name, nl) || es_json_lit(&c->mtmpl, "\":") ||
            es_json_put_cstr(&c->mtmpl, pt.template)) {
            c->failed = 1;
            return;
        }
        weight++;
    }
    if (weight == 0 || c->failed)
        return;
    const es_doc_origin *o = &c->origins[p0->origin];
    es_doc_stream ds;
    es_doc_route(c, o, "metrics", p0->attrs, p0->n_attrs, &ds);
    buf *b = c->out;
    size_t off = b->len, open;
    int rc = es_doc_put_action(b, &ds, &c->mtmpl) || es_doc_put_head(b, &ds, p0->time, 1, &open) ||
             (p0->start != 0 && (es_json_key(b, open, "start_timestamp") || es_json_put_uint(b, p0->start / 1000000u))) ||
             es_json_put_text(b, open, "unit", p0->m->unit) ||
             /* metric dimensions are keywords: map-valued attributes as JSON text */
             es_doc_put_attributes(c, b, open, p0->attrs, p0->n_attrs, 1, NULL) || es_doc_put_origin(c, o, b) ||
             es_json_key(b, open, "metrics") || es_json_char(b, '{') ||
             es_json_bytes(b, c->mvals.data, c->mvals.len) || es_json_char(b, '}') ||
             es_json_put_count(b, open, "_doc_count", doc_count) || es_json_key(b, open, "_metric_names_hash") ||
             es_doc_put_names_hash(c, b, n) || es_json_lit(b, "}\n");
    c->next_items = weight;
    c->next_first = 1;
    es_doc_emit(c, off, rc);
}

/* Metrics are grouped as Elastic's exporter groups them: every point of the
 * request is queued with its group key (es_doc_group_key), then each group
 * becomes one document, in the order of its first point. One document per
 * point would multiply storage and, in the time series data streams,
 * collide points of different metrics with the same dimensions. */
void es_doc_metrics(es_doc_ctx *c,
                    const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_metrics && !c->failed; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics && !c->failed; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            if (es_doc_grow((void **)&c->origins, &c->origins_cap, c->n_origins + 1, sizeof(*c->origins)) != 0) {
                c->failed = 1;
                break;
            }
            es_doc_origin *o = &c->origins[c->n_origins++];
            /* Metric dimensions are keywords: map-valued attributes as JSON text. */
            es_doc_origin_init(c, o, rm->resource, rm->schema_url, sm->scope, sm->schema_url, 1, 0);
            const es_resource *res = rm->resource;
            const es_scope *sc = sm->scope;
            o->key_off = c->okeys.len;
            if (es_doc_put_canonical(c, &c->okeys, res != NULL ? res->attributes : NULL,
                                     res != NULL ? res->n_attributes : 0) ||
                es_json_char(&c->okeys, '\x1d') ||
                es_json_put_chars(&c->okeys, sc != NULL ? sc->name : "", sc != NULL ? strlen(sc->name) : 0) ||
                es_json_char(&c->okeys, '\0') ||
                es_doc_put_canonical(c, &c->okeys, sc != NULL ? sc->attributes : NULL, sc != NULL ? sc->n_attributes : 0))
                c->failed = 1;
            o->key_len = c->okeys.len - o->key_off;
            for (size_t k = 0; k < sm->n_metrics && !c->failed; k++)
                es_doc_collect(c, sm->metrics[k]);
        }
    }
    size_t n = c->n_pts;
    if (c->failed || n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (es_doc_group_key(c, &c->pts[i]) != 0) {
            c->failed = 1;
            return;
        }
    es_doc_keyref *g = malloc(n * sizeof(*g)); /* the points' group keys, sorted: groups side by side */
    size_t *run = malloc(n * sizeof(*run)); /* point -> the start of its group in g */
    if (g == NULL || run == NULL) {
        free(g);
        free(run);
        c->failed = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) /* gkeys no longer moves */
        g[i] = (es_doc_keyref){.s = c->gkeys.data + c->pts[i].key_off, .len = c->pts[i].key_len, .pos = i};
    qsort(g, n, sizeof(*g), es_doc_key_order);
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && es_doc_same_key(&g[a], &g[b]); b++)
            ;
        for (size_t k = a; k < b; k++)
            run[g[k].pos] = a;
    }
    for (size_t i = 0; i < n && !c->failed; i++) {
        size_t a = run[i], b = a + 1;
        if (g[a].pos != i) /* not the group's first point */
            continue;
        while (b < n && run[g[b].pos] == a)
            b++;
        es_doc_group(c, g + a, b - a);
    }
    free(g);
    free(run);
}
