/* prom_rw: OTLP metrics to a remote-write WriteRequest (see prom_rw.h).
 *
 * Everything is built as protoc-c structs in the caller's arena and packed
 * once at the end. Output arrays are sized up front from an upper bound of
 * the series count, so nothing is reallocated while converting. */
#include "prom_rw.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "otlp.h"
#include "hash.h"
#include "otlp_json.h"
#include "prom_rw_names.h"
#include "prom_rw_native.h"
#include "remote_write.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue prom_rw_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue prom_rw_any;
typedef Opentelemetry__Proto__Resource__V1__Resource prom_rw_resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics prom_rw_resource_metrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric prom_rw_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint prom_rw_number_point;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint prom_rw_histogram_point;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint prom_rw_summary_point;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint prom_rw_exp_point;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets prom_rw_exp_buckets;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar prom_rw_exemplar_in;
typedef Prometheus__MetricMetadata__MetricType prom_rw_type;

/* Prometheus' staleness marker: a NaN with this exact bit pattern tells it
 * the series ended, which is what OTLP's "no recorded value" means. */
#define PROM_RW_STALE_NAN_BITS 0x7ff0000000000002ull
/* The zero bucket's width upstream writes for every native histogram. */
#define PROM_RW_ZERO_THRESHOLD 1e-128
/* Prometheus refuses an exemplar whose labels have more UTF-8 characters. */
#define PROM_RW_EXEMPLAR_RUNES 128
#define PROM_RW_NO_RECORDED_VALUE \
    ((uint32_t)OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
#define PROM_RW_DELTA OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define PROM_RW_CUMULATIVE \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

/* Where a label came from; on a name collision between sources the higher
 * rank wins (a point attribute named `job` does not replace the resource's
 * job). Labels the conversion itself sets (__name__, le, quantile) win over
 * all of them. */
enum { PROM_RW_RANK_ATTRIBUTE = 0, PROM_RW_RANK_RESOURCE = 1, PROM_RW_RANK_TARGET = 2 };

/* A label before sorting and folding. */
typedef struct prom_rw_label {
    const char *name;  /* sanitized */
    const char *value;
    const char *key;   /* the attribute key as sent: orders values joined on a collision */
    int rank;
} prom_rw_label;

/* A metric's names, computed once per metric. */
typedef struct prom_rw_family {
    prom_rw_type type;
    const char *name;   /* series name (gauge, counter) or base name */
    const char *unit;   /* the unit words ("bytes_per_second"), "" when none */
    const char *bucket, *sum, *count; /* histogram and summary series names */
} prom_rw_family;

typedef struct prom_rw_conv {
    const prom_rw_options *opt;
    arena *a;
    prom_rw_stats *st;
    buf tmp;                     /* string building, copied into the arena when done */
    Prometheus__WriteRequest wr; /* arrays in the arena, sized by upper bounds */
    size_t cap_series, cap_metadata;
    const char **families;       /* metadata already written: open-addressing set */
    size_t families_cap;         /* a power of two */
    /* the resource being converted */
    prom_rw_label *res;          /* job, instance, resource_to_labels */
    size_t n_res;
    int64_t latest_ms;           /* of its converted points: target_info's timestamp */
    uint64_t res_points;
} prom_rw_conv;

const char *prom_rw_drop_name(prom_rw_drop reason)
{
    static const char *const names[PROM_RW_DROP_COUNT] = {"delta_temporality", "exponential_scale", "invalid",
                                                          "native_histograms_off"};
    return (unsigned)reason < PROM_RW_DROP_COUNT ? names[reason] : "unknown";
}

/* ---- strings ---- */

/* The text built in c->tmp, copied into the arena. */
static const char *prom_rw_tmp_str(prom_rw_conv *c)
{
    return arena_strndup(c->a, c->tmp.data, c->tmp.len);
}

/* Appends s, each byte of invalid UTF-8 replaced by U+FFFD: Prometheus
 * refuses a whole request over one invalid label value. */
static int prom_rw_put_utf8(buf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < n) {
        size_t l = u[i] < 0x80 ? 1 : otlp_json_utf8_seq(u + i, n - i);
        if (l != 0) {
            i += l;
            continue;
        }
        if (buf_append(out, s + run, i - run) != 0 || buf_puts(out, "\xef\xbf\xbd") != 0)
            return -1;
        run = ++i;
    }
    return buf_append(out, s + run, n - run);
}

static int prom_rw_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = u[i] < 0x80 ? 1 : otlp_json_utf8_seq(u + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

/* Arrays and maps as compact JSON, scalars as JSON values (non-finite
 * doubles, which JSON lacks, and bytes as strings). */
static int prom_rw_put_json(buf *out, const prom_rw_any *v)
{
    switch (v != NULL ? v->value_case : OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return otlp_json_put_string(out, (const unsigned char *)v->string_value, strlen(v->string_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return buf_puts(out, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return buf_printf(out, "%" PRId64, v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (!isfinite(v->double_value))
            return buf_putc(out, '"') != 0 || prom_rw_put_float_attr(out, v->double_value) != 0 ? -1
                                                                                               : buf_putc(out, '"');
        return prom_rw_put_float_attr(out, v->double_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        return buf_putc(out, '"') != 0 || otlp_json_put_base64(out, v->bytes_value.data, v->bytes_value.len) != 0
                   ? -1
                   : buf_putc(out, '"');
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        const Opentelemetry__Proto__Common__V1__ArrayValue *arr = v->array_value;
        if (buf_putc(out, '[') != 0)
            return -1;
        for (size_t i = 0; arr != NULL && i < arr->n_values; i++)
            if ((i > 0 && buf_putc(out, ',') != 0) || prom_rw_put_json(out, arr->values[i]) != 0)
                return -1;
        return buf_putc(out, ']');
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const Opentelemetry__Proto__Common__V1__KeyValueList *kvl = v->kvlist_value;
        if (buf_putc(out, '{') != 0)
            return -1;
        for (size_t i = 0; kvl != NULL && i < kvl->n_values; i++) {
            const prom_rw_kv *kv = kvl->values[i];
            const unsigned char *key = (const unsigned char *)kv->key;
            if ((i > 0 && buf_putc(out, ',') != 0) || otlp_json_put_string(out, key, strlen(kv->key)) != 0 ||
                buf_putc(out, ':') != 0 || prom_rw_put_json(out, kv->value) != 0)
                return -1;
        }
        return buf_putc(out, '}');
    }
    default:
        return buf_puts(out, "null");
    }
}

/* s itself when it is valid UTF-8 (receivers refuse anything else), else
 * a copy with each bad byte replaced. */
static const char *prom_rw_utf8_text(prom_rw_conv *c, const char *s)
{
    size_t n = strlen(s);
    if (prom_rw_utf8_valid(s, n))
        return s;
    buf_clear(&c->tmp);
    return prom_rw_put_utf8(&c->tmp, s, n) != 0 ? NULL : prom_rw_tmp_str(c);
}

/* An attribute value as label text. */
static const char *prom_rw_value_text(prom_rw_conv *c, const prom_rw_any *v)
{
    if (v == NULL)
        return "";
    buf_clear(&c->tmp);
    int rc;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return prom_rw_utf8_text(c, v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        rc = prom_rw_put_float_attr(&c->tmp, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        rc = otlp_json_put_base64(&c->tmp, v->bytes_value.data, v->bytes_value.len);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
        return "";
    default: /* bool and int read the same in JSON; arrays and maps are JSON */
        rc = prom_rw_put_json(&c->tmp, v);
        break;
    }
    return rc != 0 ? NULL : prom_rw_tmp_str(c);
}

/* A label name for an attribute key (prom_rw_names.h), NULL out of memory,
 * "" when the key has no valid form (empty, or only underscores). */
static const char *prom_rw_label_name_of(prom_rw_conv *c, const char *key)
{
    buf_clear(&c->tmp);
    int rc = prom_rw_label_name(&c->tmp, key);
    return rc < 0 ? NULL : rc > 0 ? "" : prom_rw_tmp_str(c);
}

/* ---- labels ---- */

static int prom_rw_label_cmp(const void *pa, const void *pb)
{
    const prom_rw_label *a = pa, *b = pb;
    int d = strcmp(a->name, b->name);
    if (d != 0)
        return d;
    if (a->rank != b->rank)
        return b->rank - a->rank; /* highest rank first */
    return strcmp(a->key, b->key);
}

static Prometheus__Label *prom_rw_label_new(prom_rw_conv *c, const char *name, const char *value)
{
    Prometheus__Label *l = arena_alloc(c->a, sizeof(*l));
    if (l == NULL)
        return NULL;
    prometheus__label__init(l);
    l->name = (char *)name;
    l->value = (char *)value;
    return l;
}

/* Sorts l[0..n) and folds it into labels: per name, the non-empty values of
 * the highest rank joined with ';' in key order; a name left without a value
 * is omitted. *out has room for n labels. */
static int prom_rw_fold(prom_rw_conv *c, prom_rw_label *l, size_t n, Prometheus__Label **out, size_t *nout)
{
    qsort(l, n, sizeof(*l), prom_rw_label_cmp);
    *nout = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1, nonempty = l[i].value[0] != '\0';
        while (j < n && strcmp(l[j].name, l[i].name) == 0) {
            nonempty += l[j].rank == l[i].rank && l[j].value[0] != '\0';
            j++;
        }
        const char *value = l[i].value;
        if (nonempty > 1 || (nonempty == 1 && value[0] == '\0')) {
            buf_clear(&c->tmp);
            for (size_t k = i; k < j && l[k].rank == l[i].rank; k++) {
                if (l[k].value[0] == '\0')
                    continue;
                if ((c->tmp.len > 0 && buf_putc(&c->tmp, ';') != 0) || buf_puts(&c->tmp, l[k].value) != 0)
                    return -1;
            }
            if ((value = prom_rw_tmp_str(c)) == NULL)
                return -1;
        }
        if (value[0] != '\0' && (out[(*nout)++] = prom_rw_label_new(c, l[i].name, value)) == NULL)
            return -1;
        i = j;
    }
    return 0;
}

static int prom_rw_is_identity(const char *key)
{
    return strcmp(key, "service.name") == 0 || strcmp(key, "service.namespace") == 0 ||
           strcmp(key, "service.instance.id") == 0;
}

/* Appends labels for attrs to l (room for n more), skipping keys without a
 * label name and, with skip_identity, the attributes job and instance are
 * made of. */
static int prom_rw_attr_labels(prom_rw_conv *c, prom_rw_kv *const *attrs, size_t n, int skip_identity,
                               prom_rw_label *l, size_t *nl)
{
    for (size_t i = 0; i < n; i++) {
        const prom_rw_kv *kv = attrs[i];
        if (skip_identity && prom_rw_is_identity(kv->key))
            continue;
        prom_rw_label *x = &l[*nl];
        x->key = kv->key;
        x->rank = PROM_RW_RANK_ATTRIBUTE;
        if ((x->name = prom_rw_label_name_of(c, kv->key)) == NULL)
            return -1;
        if (x->name[0] == '\0')
            continue; /* no valid name: upstream fails the metric, we leave the attribute out */
        if ((x->value = prom_rw_value_text(c, kv->value)) == NULL)
            return -1;
        (*nl)++;
    }
    return 0;
}

/* A point's labels: its attributes and the resource's, sorted and folded. */
static int prom_rw_point_labels(prom_rw_conv *c, prom_rw_kv *const *attrs, size_t n, Prometheus__Label ***out,
                                size_t *nout)
{
    size_t nl = 0;
    prom_rw_label *l = arena_calloc(c->a, n + c->n_res + 1, sizeof(*l));
    if (l == NULL || (*out = arena_calloc(c->a, n + c->n_res + 1, sizeof(**out))) == NULL ||
        prom_rw_attr_labels(c, attrs, n, 0, l, &nl) != 0)
        return -1;
    memcpy(l + nl, c->res, c->n_res * sizeof(*l));
    return prom_rw_fold(c, l, nl + c->n_res, *out, nout);
}

/* ---- series ---- */

/* A new series without data: the point's labels (sorted) merged with
 * __name__ and, if extra_name is set, one more label (le, quantile), which
 * replace point labels of the same name. NULL when memory ran out. */
static Prometheus__TimeSeries *prom_rw_series_new(prom_rw_conv *c, Prometheus__Label *const *base, size_t nbase,
                                                  const char *name, const char *extra_name, const char *extra_value)
{
    if (c->wr.n_timeseries == c->cap_series)
        return NULL; /* cannot happen: the capacity is an upper bound */
    Prometheus__Label *x[2];
    size_t nx = 0;
    if ((x[nx++] = prom_rw_label_new(c, "__name__", name)) == NULL ||
        (extra_name != NULL && (x[nx++] = prom_rw_label_new(c, extra_name, extra_value)) == NULL))
        return NULL;
    if (nx == 2 && strcmp(x[0]->name, x[1]->name) > 0) {
        Prometheus__Label *t = x[0];
        x[0] = x[1];
        x[1] = t;
    }
    Prometheus__TimeSeries *s = arena_alloc(c->a, sizeof(*s));
    Prometheus__Label **labels = arena_calloc(c->a, nbase + nx, sizeof(*labels));
    if (s == NULL || labels == NULL)
        return NULL;
    size_t n = 0, i = 0, j = 0;
    while (i < nbase || j < nx) {
        int d = i == nbase ? 1 : j == nx ? -1 : strcmp(base[i]->name, x[j]->name);
        if (d < 0)
            labels[n++] = base[i++];
        else {
            i += d == 0; /* the conversion's label replaces the point's */
            labels[n++] = x[j++];
        }
    }
    prometheus__time_series__init(s);
    s->labels = labels;
    s->n_labels = n;
    c->wr.timeseries[c->wr.n_timeseries++] = s;
    c->st->series++;
    return s;
}

/* A new series (as prom_rw_series_new) with one sample. */
static Prometheus__TimeSeries *prom_rw_series_add(prom_rw_conv *c, Prometheus__Label *const *base, size_t nbase,
                                                  const char *name, const char *extra_name,
                                                  const char *extra_value, double value, int64_t ts)
{
    Prometheus__TimeSeries *s = prom_rw_series_new(c, base, nbase, name, extra_name, extra_value);
    Prometheus__Sample *sample = arena_alloc(c->a, sizeof(*sample));
    Prometheus__Sample **samples = arena_alloc(c->a, sizeof(*samples));
    if (s == NULL || sample == NULL || samples == NULL)
        return NULL;
    prometheus__sample__init(sample);
    sample->value = value;
    sample->timestamp = ts;
    samples[0] = sample;
    s->samples = samples;
    s->n_samples = 1;
    return s;
}

static uint64_t prom_rw_hash(const char *s) { return hash_fnv1a(s, strlen(s), HASH_FNV1A_INIT); }

/* Metadata for a family, once per request. */
static int prom_rw_metadata_add(prom_rw_conv *c, prom_rw_type type, const char *family, const char *help,
                                const char *unit)
{
    size_t i = (size_t)prom_rw_hash(family) & (c->families_cap - 1);
    for (; c->families[i] != NULL; i = (i + 1) & (c->families_cap - 1))
        if (strcmp(c->families[i], family) == 0)
            return 0;
    if (c->wr.n_metadata == c->cap_metadata)
        return -1; /* cannot happen: the capacity is an upper bound */
    c->families[i] = family;
    Prometheus__MetricMetadata *m = arena_alloc(c->a, sizeof(*m));
    if (m == NULL)
        return -1;
    prometheus__metric_metadata__init(m);
    m->type = type;
    m->metric_family_name = (char *)family;
    m->help = (char *)help;
    m->unit = (char *)unit;
    c->wr.metadata[c->wr.n_metadata++] = m;
    return 0;
}

/* ---- names ---- */

static const char *prom_rw_join(prom_rw_conv *c, const char *a, const char *b)
{
    buf_clear(&c->tmp);
    if (buf_puts(&c->tmp, a) != 0 || buf_puts(&c->tmp, b) != 0)
        return NULL;
    return prom_rw_tmp_str(c);
}

/* The metric's Prometheus names (prom_rw_names.h). 1 when the name has no
 * valid form (the caller drops the metric's points), -1 out of memory. */
static int prom_rw_family_init(prom_rw_conv *c, const prom_rw_metric *m, prom_rw_type type, prom_rw_kind kind,
                               prom_rw_family *f)
{
    f->type = type;
    buf_clear(&c->tmp);
    int rc = prom_rw_metric_name(&c->tmp, m->name, m->unit, kind, c->opt->add_metric_suffixes);
    if (rc != 0 || (f->name = prom_rw_tmp_str(c)) == NULL)
        return rc != 0 ? rc : -1;
    f->unit = "";
    if (c->opt->add_metric_suffixes) { /* without them a unit not in the name would mislead */
        buf_clear(&c->tmp);
        if (prom_rw_unit_name(&c->tmp, m->unit) != 0 || (f->unit = prom_rw_tmp_str(c)) == NULL)
            return -1;
    }
    if (kind == PROM_RW_KIND_SUMMARY ||
        (kind == PROM_RW_KIND_HISTOGRAM && m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM)) {
        if ((f->bucket = prom_rw_join(c, f->name, "_bucket")) == NULL ||
            (f->sum = prom_rw_join(c, f->name, "_sum")) == NULL ||
            (f->count = prom_rw_join(c, f->name, "_count")) == NULL)
            return -1;
    }
    return 0;
}

/* ---- points ---- */

/* Common checks and labels of a point; 1 when it is to be converted, 0
 * when it was dropped (counted), -1 out of memory. */
static int prom_rw_point_begin(prom_rw_conv *c, uint64_t time_unix_nano, int valid, prom_rw_kv *const *attrs,
                               size_t n, Prometheus__Label ***labels, size_t *nlabels, int64_t *ts)
{
    /* A zero timestamp would be stored at 1970 and refused as out of
     * bounds, failing the whole request. */
    if (!valid || time_unix_nano == 0) {
        c->st->dropped[PROM_RW_DROP_INVALID]++;
        return 0;
    }
    *ts = (int64_t)(time_unix_nano / 1000000u);
    return prom_rw_point_labels(c, attrs, n, labels, nlabels) != 0 ? -1 : 1;
}

static void prom_rw_point_done(prom_rw_conv *c, int64_t ts)
{
    c->st->converted++;
    if (c->res_points++ == 0 || ts > c->latest_ms)
        c->latest_ms = ts;
}

static double prom_rw_stale_nan(void)
{
    uint64_t bits = PROM_RW_STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* ---- exemplars ---- */

/* UTF-8 characters in s: Prometheus measures an exemplar's labels in them. */
static size_t prom_rw_runes(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Appends label `name` = the id in hex when it is set (its full size, not
 * all zero). */
static int prom_rw_exemplar_id(prom_rw_conv *c, Prometheus__Exemplar *x, const char *name, ProtobufCBinaryData id,
                               size_t size, size_t *runes)
{
    size_t zero = 0;
    for (size_t i = 0; i < id.len; i++)
        zero += id.data[i] == 0;
    if (id.len != size || zero == size)
        return 0;
    char *hex = arena_alloc(c->a, size * 2 + 1);
    if (hex == NULL)
        return -1;
    *codec_hex_encode(id.data, size, hex) = '\0';
    if ((x->labels[x->n_labels] = prom_rw_label_new(c, name, hex)) == NULL)
        return -1;
    x->n_labels++;
    *runes += strlen(name) + id.len * 2;
    return 0;
}

/* An OTLP exemplar as remote write's: value, timestamp and the labels
 * trace_id and span_id (hex, when set), then its filtered attributes --
 * those only when all labels together stay within the 128 characters
 * Prometheus accepts, as upstream does. */
static Prometheus__Exemplar *prom_rw_exemplar(prom_rw_conv *c, const prom_rw_exemplar_in *e)
{
    Prometheus__Exemplar *x = arena_alloc(c->a, sizeof(*x));
    if (x == NULL)
        return NULL;
    prometheus__exemplar__init(x);
    x->value = e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT ? (double)e->as_int
                                                                                       : e->as_double;
    x->timestamp = (int64_t)(e->time_unix_nano / 1000000u);
    size_t runes = 0, base;
    if ((x->labels = arena_calloc(c->a, e->n_filtered_attributes + 2, sizeof(*x->labels))) == NULL ||
        prom_rw_exemplar_id(c, x, "trace_id", e->trace_id, 16, &runes) != 0 ||
        prom_rw_exemplar_id(c, x, "span_id", e->span_id, 8, &runes) != 0)
        return NULL;
    base = x->n_labels;
    for (size_t i = 0; i < e->n_filtered_attributes; i++) {
        const prom_rw_kv *kv = e->filtered_attributes[i];
        const char *name = prom_rw_label_name_of(c, kv->key), *value;
        if (name == NULL || (value = prom_rw_value_text(c, kv->value)) == NULL)
            return NULL;
        if (name[0] == '\0')
            continue;
        runes += prom_rw_runes(name) + prom_rw_runes(value);
        if ((x->labels[x->n_labels++] = prom_rw_label_new(c, name, value)) == NULL)
            return NULL;
    }
    if (runes > PROM_RW_EXEMPLAR_RUNES)
        x->n_labels = base;
    return x;
}

/* Adds exemplar x to series s, which has room for `room` of them. */
static int prom_rw_exemplar_attach(prom_rw_conv *c, Prometheus__TimeSeries *s, Prometheus__Exemplar *x, size_t room)
{
    if (s->exemplars == NULL && (s->exemplars = arena_calloc(c->a, room, sizeof(*s->exemplars))) == NULL)
        return -1;
    s->exemplars[s->n_exemplars++] = x;
    return 0;
}

/* All of a point's exemplars onto series s. */
static int prom_rw_exemplars_all(prom_rw_conv *c, Prometheus__TimeSeries *s, prom_rw_exemplar_in *const *ex,
                                 size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Prometheus__Exemplar *x = prom_rw_exemplar(c, ex[i]);
        if (x == NULL || prom_rw_exemplar_attach(c, s, x, n) != 0)
            return -1;
    }
    return 0;
}

/* ---- points ---- */

static int prom_rw_number(prom_rw_conv *c, const prom_rw_family *f, const prom_rw_number_point *p, int exemplars)
{
    Prometheus__Label **labels;
    size_t n;
    int64_t ts;
    int stale = (p->flags & PROM_RW_NO_RECORDED_VALUE) != 0;
    int valid = stale || p->value_case != OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET;
    int rc = prom_rw_point_begin(c, p->time_unix_nano, valid, p->attributes, p->n_attributes, &labels, &n, &ts);
    if (rc <= 0)
        return rc;
    double v = stale ? prom_rw_stale_nan()
               : p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT ? (double)p->as_int
                                                                                                    : p->as_double;
    Prometheus__TimeSeries *s = prom_rw_series_add(c, labels, n, f->name, NULL, NULL, v, ts);
    if (s == NULL || (exemplars && prom_rw_exemplars_all(c, s, p->exemplars, p->n_exemplars) != 0))
        return -1;
    prom_rw_point_done(c, ts);
    return 0;
}

/* `value` formatted as a label value (le, quantile). */
static const char *prom_rw_float_text(prom_rw_conv *c, double value)
{
    buf_clear(&c->tmp);
    return prom_rw_put_float(&c->tmp, value) != 0 ? NULL : prom_rw_tmp_str(c);
}

/* Each exemplar onto the first bucket series (bounds ascending, +Inf last)
 * whose bound holds its value, as upstream places them. */
static int prom_rw_bucket_exemplars(prom_rw_conv *c, const prom_rw_histogram_point *p,
                                    Prometheus__TimeSeries *const *buckets, size_t nbuckets)
{
    for (size_t i = 0; i < p->n_exemplars; i++) {
        Prometheus__Exemplar *x = prom_rw_exemplar(c, p->exemplars[i]);
        if (x == NULL)
            return -1;
        size_t b = 0;
        while (b + 1 < nbuckets && !(x->value <= p->explicit_bounds[b]))
            b++;
        if (x->value <= INFINITY && prom_rw_exemplar_attach(c, buckets[b], x, p->n_exemplars) != 0)
            return -1; /* (a NaN value fits no bucket) */
    }
    return 0;
}

/* Buckets with cumulative counts (OTLP's are per bucket), +Inf = count,
 * then _sum (when the point has one) and _count. */
static int prom_rw_histogram(prom_rw_conv *c, const prom_rw_family *f, const prom_rw_histogram_point *p)
{
    Prometheus__Label **labels;
    size_t n;
    int64_t ts;
    int stale = (p->flags & PROM_RW_NO_RECORDED_VALUE) != 0;
    /* No buckets at all is allowed (count and sum only); otherwise one more
     * count than bounds. */
    int valid = p->n_bucket_counts == 0 || p->n_bucket_counts == p->n_explicit_bounds + 1;
    int rc = prom_rw_point_begin(c, p->time_unix_nano, valid, p->attributes, p->n_attributes, &labels, &n, &ts);
    if (rc <= 0)
        return rc;
    double nan = prom_rw_stale_nan();
    uint64_t cumulative = 0;
    size_t nb = p->n_bucket_counts > 0 ? p->n_explicit_bounds : 0;
    Prometheus__TimeSeries **buckets = arena_calloc(c->a, nb + 1, sizeof(*buckets));
    if (buckets == NULL)
        return -1;
    for (size_t i = 0; i < nb; i++) {
        cumulative += p->bucket_counts[i];
        const char *le = prom_rw_float_text(c, p->explicit_bounds[i]);
        if (le == NULL || (buckets[i] = prom_rw_series_add(c, labels, n, f->bucket, "le", le,
                                                           stale ? nan : (double)cumulative, ts)) == NULL)
            return -1;
    }
    if ((buckets[nb] = prom_rw_series_add(c, labels, n, f->bucket, "le", "+Inf", stale ? nan : (double)p->count,
                                          ts)) == NULL ||
        prom_rw_bucket_exemplars(c, p, buckets, nb + 1) != 0 ||
        (p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM &&
         prom_rw_series_add(c, labels, n, f->sum, NULL, NULL, stale ? nan : p->sum, ts) == NULL) ||
        prom_rw_series_add(c, labels, n, f->count, NULL, NULL, stale ? nan : (double)p->count, ts) == NULL)
        return -1;
    prom_rw_point_done(c, ts);
    return 0;
}

/* One side of an exponential point as spans and deltas in the arena; *sum
 * gets its total count. 1 when the layout does not fit, -1 out of memory. */
static int prom_rw_native_side(prom_rw_conv *c, const prom_rw_exp_buckets *b, int scale_down,
                               Prometheus__BucketSpan ***spans, size_t *nspans, int64_t **deltas, size_t *ndeltas,
                               uint64_t *sum)
{
    size_t n = b != NULL ? b->n_bucket_counts : 0;
    *nspans = *ndeltas = 0;
    if (n == 0)
        return 0;
    prom_rw_span *raw = arena_calloc(c->a, n + 1, sizeof(*raw));
    *deltas = arena_calloc(c->a, n, sizeof(**deltas));
    if (raw == NULL || *deltas == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (__builtin_add_overflow(*sum, b->bucket_counts[i], sum))
            return 1;
    if (prom_rw_native_layout(b->bucket_counts, n, b->offset, scale_down, raw, nspans, *deltas, ndeltas) != 0)
        return 1;
    Prometheus__BucketSpan *sp = arena_calloc(c->a, *nspans, sizeof(*sp));
    if (sp == NULL || (*spans = arena_calloc(c->a, *nspans, sizeof(**spans))) == NULL)
        return -1;
    for (size_t i = 0; i < *nspans; i++) {
        prometheus__bucket_span__init(&sp[i]);
        sp[i].offset = raw[i].offset;
        sp[i].length = raw[i].length;
        (*spans)[i] = &sp[i];
    }
    return 0;
}

/* An exponential histogram point as one native histogram sample on a
 * series named like the metric (no suffix), carrying all its exemplars.
 * Scale above 8 is reduced to 8; below -4 the point is dropped, as
 * upstream refuses it. Points whose bucket counts do not add up to the
 * count are dropped as invalid: Prometheus refuses such a histogram, and
 * with it the whole request. */
static int prom_rw_exp_histogram(prom_rw_conv *c, const prom_rw_family *f, const prom_rw_exp_point *p)
{
    if (p->scale < PROM_RW_NATIVE_SCHEMA_MIN) {
        c->st->dropped[PROM_RW_DROP_SCALE]++;
        return 0;
    }
    int stale = (p->flags & PROM_RW_NO_RECORDED_VALUE) != 0;
    int scale_down = p->scale > PROM_RW_NATIVE_SCHEMA_MAX ? p->scale - PROM_RW_NATIVE_SCHEMA_MAX : 0;
    int has_sum = p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    Prometheus__Histogram *h = arena_alloc(c->a, sizeof(*h));
    Prometheus__Histogram **hs = arena_alloc(c->a, sizeof(*hs));
    if (h == NULL || hs == NULL)
        return -1;
    prometheus__histogram__init(h);
    uint64_t total = p->zero_count;
    int rc = prom_rw_native_side(c, p->positive, scale_down, &h->positive_spans, &h->n_positive_spans,
                                 &h->positive_deltas, &h->n_positive_deltas, &total);
    if (rc == 0)
        rc = prom_rw_native_side(c, p->negative, scale_down, &h->negative_spans, &h->n_negative_spans,
                                 &h->negative_deltas, &h->n_negative_deltas, &total);
    if (rc < 0)
        return -1;
    /* with a NaN sum Prometheus allows more observations than in buckets */
    int valid = rc == 0 && (stale || total == p->count || (has_sum && isnan(p->sum) && total <= p->count));
    Prometheus__Label **labels;
    size_t n;
    int64_t ts;
    if ((rc = prom_rw_point_begin(c, p->time_unix_nano, valid, p->attributes, p->n_attributes, &labels, &n, &ts)) <=
        0)
        return rc;
    h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
    h->count_int = stale ? PROM_RW_STALE_NAN_BITS : p->count; /* upstream's stale marker, bits as the count */
    h->sum = stale ? prom_rw_stale_nan() : has_sum ? p->sum : 0;
    h->schema = p->scale - scale_down;
    /* upstream always writes 1e-128 (OTLP had no threshold when it was
     * written); the point's own, when it has one, is the truth */
    h->zero_threshold = p->zero_threshold > 0 ? p->zero_threshold : PROM_RW_ZERO_THRESHOLD;
    h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
    h->zero_count_int = p->zero_count;
    h->reset_hint = PROMETHEUS__HISTOGRAM__RESET_HINT__UNKNOWN; /* cumulative only: Prometheus detects resets */
    h->timestamp = ts;
    hs[0] = h;
    Prometheus__TimeSeries *s = prom_rw_series_new(c, labels, n, f->name, NULL, NULL);
    if (s == NULL)
        return -1;
    s->histograms = hs;
    s->n_histograms = 1;
    if (prom_rw_exemplars_all(c, s, p->exemplars, p->n_exemplars) != 0)
        return -1;
    prom_rw_point_done(c, ts);
    return 0;
}

static int prom_rw_summary(prom_rw_conv *c, const prom_rw_family *f, const prom_rw_summary_point *p)
{
    Prometheus__Label **labels;
    size_t n;
    int64_t ts;
    int stale = (p->flags & PROM_RW_NO_RECORDED_VALUE) != 0;
    int rc = prom_rw_point_begin(c, p->time_unix_nano, 1, p->attributes, p->n_attributes, &labels, &n, &ts);
    if (rc <= 0)
        return rc;
    double nan = prom_rw_stale_nan();
    for (size_t i = 0; i < p->n_quantile_values; i++) {
        const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q = p->quantile_values[i];
        const char *text = prom_rw_float_text(c, q->quantile);
        if (text == NULL ||
            prom_rw_series_add(c, labels, n, f->name, "quantile", text, stale ? nan : q->value, ts) == NULL)
            return -1;
    }
    if (prom_rw_series_add(c, labels, n, f->sum, NULL, NULL, stale ? nan : p->sum, ts) == NULL ||
        prom_rw_series_add(c, labels, n, f->count, NULL, NULL, stale ? nan : (double)p->count, ts) == NULL)
        return -1;
    prom_rw_point_done(c, ts);
    return 0;
}

/* ---- metrics and resources ---- */

/* Sums and histograms: cumulative converts; delta (and unspecified, which
 * OTLP forbids) is dropped with every point counted. */
static int prom_rw_temporality_ok(prom_rw_conv *c, int temporality, size_t points)
{
    if (temporality == PROM_RW_CUMULATIVE)
        return 1;
    c->st->dropped[temporality == PROM_RW_DELTA ? PROM_RW_DROP_DELTA : PROM_RW_DROP_INVALID] += points;
    return 0;
}

/* The type and name kind a metric becomes, or 0 when its points are
 * dropped (counted). */
static int prom_rw_metric_type(prom_rw_conv *c, const prom_rw_metric *m, size_t points, prom_rw_type *type,
                               prom_rw_kind *kind)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        *type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
        *kind = PROM_RW_KIND_GAUGE;
        return 1;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        /* A non-monotonic sum (an up-down counter) is a gauge to Prometheus. */
        *type = m->sum->is_monotonic ? PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER
                                     : PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
        *kind = m->sum->is_monotonic ? PROM_RW_KIND_COUNTER : PROM_RW_KIND_UPDOWN;
        return prom_rw_temporality_ok(c, m->sum->aggregation_temporality, points);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        *type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM;
        *kind = PROM_RW_KIND_HISTOGRAM;
        return prom_rw_temporality_ok(c, m->histogram->aggregation_temporality, points);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        if (!c->opt->native_histograms) {
            c->st->dropped[PROM_RW_DROP_NATIVE_OFF] += points;
            return 0;
        }
        *type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM;
        *kind = PROM_RW_KIND_HISTOGRAM;
        return prom_rw_temporality_ok(c, m->exponential_histogram->aggregation_temporality, points);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        *type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY;
        *kind = PROM_RW_KIND_SUMMARY;
        return 1;
    default: /* otlp_validate removed metrics without data */
        return 0;
    }
}

static int prom_rw_convert_point(prom_rw_conv *c, const prom_rw_family *f, const prom_rw_metric *m, size_t i)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return prom_rw_histogram(c, f, m->histogram->data_points[i]);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return prom_rw_exp_histogram(c, f, m->exponential_histogram->data_points[i]);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return prom_rw_summary(c, f, m->summary->data_points[i]);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: /* sums carry exemplars, gauges not (upstream) */
        return prom_rw_number(c, f, m->sum->data_points[i], 1);
    default:
        return prom_rw_number(c, f, m->gauge->data_points[i], 0);
    }
}

static int prom_rw_convert_metric(prom_rw_conv *c, const prom_rw_metric *m)
{
    size_t points = otlp_metric_points((const ProtobufCMessage *)m);
    prom_rw_type type;
    prom_rw_kind kind;
    prom_rw_family f = {0};
    if (points == 0 || !prom_rw_metric_type(c, m, points, &type, &kind))
        return 0;
    int rc = prom_rw_family_init(c, m, type, kind, &f);
    if (rc != 0) {
        if (rc > 0) /* no valid name: upstream refuses the metric too */
            c->st->dropped[PROM_RW_DROP_INVALID] += points;
        return rc > 0 ? 0 : -1;
    }
    uint64_t before = c->st->converted;
    for (size_t i = 0; rc == 0 && i < points; i++)
        rc = prom_rw_convert_point(c, &f, m, i);
    if (rc != 0)
        return -1;
    if (c->st->converted == before)
        return 0;
    const char *help = prom_rw_utf8_text(c, m->description);
    return help == NULL ? -1 : prom_rw_metadata_add(c, f.type, f.name, help, f.unit);
}

static const prom_rw_any *prom_rw_resource_attr(const prom_rw_resource *r, const char *key)
{
    for (size_t i = 0; r != NULL && i < r->n_attributes; i++)
        if (strcmp(r->attributes[i]->key, key) == 0)
            return r->attributes[i]->value;
    return NULL;
}

/* c->res for a resource: job (service.namespace/service.name, or
 * service.name), instance (service.instance.id) and the resource_to_labels
 * attributes it has. */
static int prom_rw_resource_begin(prom_rw_conv *c, const prom_rw_resource *r)
{
    c->n_res = 0;
    c->res_points = 0;
    c->latest_ms = 0;
    const char *name = prom_rw_value_text(c, prom_rw_resource_attr(r, "service.name"));
    if (name == NULL)
        return -1;
    if (name[0] != '\0') {
        const char *ns = prom_rw_value_text(c, prom_rw_resource_attr(r, "service.namespace")), *job = name;
        if (ns == NULL || (ns[0] != '\0' && ((ns = prom_rw_join(c, ns, "/")) == NULL ||
                                             (job = prom_rw_join(c, ns, name)) == NULL)))
            return -1;
        c->res[c->n_res++] = (prom_rw_label){"job", job, "job", PROM_RW_RANK_TARGET};
    }
    const char *instance = prom_rw_value_text(c, prom_rw_resource_attr(r, "service.instance.id"));
    if (instance == NULL)
        return -1;
    if (instance[0] != '\0')
        c->res[c->n_res++] = (prom_rw_label){"instance", instance, "instance", PROM_RW_RANK_TARGET};
    for (size_t i = 0; i < c->opt->n_resource_labels; i++) {
        const char *key = c->opt->resource_labels[i];
        const prom_rw_any *v = prom_rw_resource_attr(r, key);
        if (v == NULL)
            continue;
        prom_rw_label l = {prom_rw_label_name_of(c, key), NULL, key, PROM_RW_RANK_RESOURCE};
        if (l.name == NULL || (l.value = prom_rw_value_text(c, v)) == NULL)
            return -1;
        if (l.name[0] != '\0' && l.value[0] != '\0') /* resource labels are never empty: an attribute may fill in */
            c->res[c->n_res++] = l;
    }
    return 0;
}

/* target_info: the resource's other attributes as labels of a gauge at 1,
 * stamped with the resource's latest point. Nothing when the resource sent
 * no points here or has no attributes beyond job and instance. */
static int prom_rw_target_info(prom_rw_conv *c, const prom_rw_resource *r)
{
    if (!c->opt->target_info || c->res_points == 0 || r == NULL)
        return 0;
    size_t nl = 0, n = 0;
    prom_rw_label *l = arena_calloc(c->a, r->n_attributes + 2, sizeof(*l));
    Prometheus__Label **labels = arena_calloc(c->a, r->n_attributes + 2, sizeof(*labels));
    if (l == NULL || labels == NULL || prom_rw_attr_labels(c, r->attributes, r->n_attributes, 1, l, &nl) != 0)
        return -1;
    if (nl == 0)
        return 0;
    for (size_t i = 0; i < c->n_res; i++)
        if (c->res[i].rank == PROM_RW_RANK_TARGET)
            l[nl++] = c->res[i];
    if (prom_rw_fold(c, l, nl, labels, &n) != 0 ||
        prom_rw_series_add(c, labels, n, "target_info", NULL, NULL, 1.0, c->latest_ms) == NULL)
        return -1;
    return prom_rw_metadata_add(c, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE, "target_info",
                                "Target metadata", "");
}

static int prom_rw_convert_resource(prom_rw_conv *c, const prom_rw_resource_metrics *rm)
{
    if (prom_rw_resource_begin(c, rm->resource) != 0)
        return -1;
    for (size_t i = 0; i < rm->n_scope_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[i];
        for (size_t j = 0; j < sm->n_metrics; j++)
            if (prom_rw_convert_metric(c, sm->metrics[j]) != 0)
                return -1;
    }
    return prom_rw_target_info(c, rm->resource);
}

/* Upper bounds of the series and metadata a request can produce. */
static void prom_rw_bounds(const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req,
                           size_t *series, size_t *metadata)
{
    *series = *metadata = 0;
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const prom_rw_resource_metrics *rm = req->resource_metrics[i];
        *series += 1;   /* target_info */
        *metadata += 1;
        for (size_t j = 0; j < rm->n_scope_metrics; j++)
            for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
                const prom_rw_metric *m = rm->scope_metrics[j]->metrics[k];
                *metadata += 1;
                if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE)
                    *series += m->gauge->n_data_points;
                else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM)
                    *series += m->sum->n_data_points;
                else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM)
                    for (size_t p = 0; p < m->histogram->n_data_points; p++)
                        *series += m->histogram->data_points[p]->n_explicit_bounds + 3;
                else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY)
                    for (size_t p = 0; p < m->summary->n_data_points; p++)
                        *series += m->summary->data_points[p]->n_quantile_values + 2;
                else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM)
                    *series += m->exponential_histogram->n_data_points;
            }
    }
}

/* Room in c for the request's output; the resource label array holds job,
 * instance and every resource_to_labels key. */
static int prom_rw_conv_init(prom_rw_conv *c,
                             const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req)
{
    prom_rw_bounds(req, &c->cap_series, &c->cap_metadata);
    c->families_cap = 16;
    while (c->families_cap < 2 * c->cap_metadata)
        c->families_cap *= 2;
    prometheus__write_request__init(&c->wr);
    c->wr.timeseries = arena_calloc(c->a, c->cap_series + 1, sizeof(*c->wr.timeseries));
    c->wr.metadata = arena_calloc(c->a, c->cap_metadata + 1, sizeof(*c->wr.metadata));
    c->families = arena_calloc(c->a, c->families_cap, sizeof(*c->families));
    c->res = arena_calloc(c->a, c->opt->n_resource_labels + 2, sizeof(*c->res));
    /* tmp always has memory, so an empty string copies from a real pointer */
    if (c->wr.timeseries == NULL || c->wr.metadata == NULL || c->families == NULL || c->res == NULL ||
        buf_reserve(&c->tmp, 64) != 0)
        return -1;
    return 0;
}

int prom_rw_convert(const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req,
                    const prom_rw_options *opt, arena *a, buf *out, prom_rw_stats *st)
{
    prom_rw_conv c = {.opt = opt, .a = a, .st = st, .tmp = BUF_INIT};
    int rc = prom_rw_conv_init(&c, req);
    for (size_t i = 0; rc == 0 && i < req->n_resource_metrics; i++)
        rc = prom_rw_convert_resource(&c, req->resource_metrics[i]);
    buf_free(&c.tmp);
    if (rc != 0)
        return -1;
    size_t len = prometheus__write_request__get_packed_size(&c.wr);
    if (buf_reserve(out, len + 1) != 0)
        return -1;
    out->len += prometheus__write_request__pack(&c.wr, (uint8_t *)out->data + out->len);
    return 0;
}
