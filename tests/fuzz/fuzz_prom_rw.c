/* libFuzzer: remote-write conversion (prom_rw_convert, every option on) of
 * whatever OTLP metrics protobuf the server accepts. The WriteRequest must
 * decode, and every series must be one Prometheus accepts: a valid metric
 * name, valid label names sorted and unique, non-empty valid UTF-8 values,
 * one sample or one native histogram whose spans cover exactly its deltas
 * and whose schema is in Prometheus' range. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "otlp_json.h"
#include "metrics_service.pb-c.h"
#include "prom_rw.h"
#include "remote_write.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_prom_rw_name_ok(const char *s, int metric)
{
    if (*s == '\0' || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              (metric && *s == ':')))
            return 0;
    return 1;
}

static int fuzz_prom_rw_utf8_ok(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = (unsigned char)s[i] < 0x80 ? 1 : otlp_json_utf8_seq((const unsigned char *)s + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

static void fuzz_prom_rw_spans_ok(Prometheus__BucketSpan **spans, size_t nspans, size_t ndeltas)
{
    size_t covered = 0;
    for (size_t i = 0; i < nspans; i++) {
        if (i > 0 && spans[i]->offset < 0)
            abort();
        covered += spans[i]->length;
    }
    if (covered != ndeltas)
        abort();
}

static void fuzz_prom_rw_check(const Prometheus__WriteRequest *wr)
{
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        if (ts->n_samples + ts->n_histograms != 1 || ts->n_labels == 0)
            abort();
        for (size_t j = 0; j < ts->n_labels; j++) {
            const Prometheus__Label *l = ts->labels[j];
            int is_name = strcmp(l->name, "__name__") == 0;
            if (!fuzz_prom_rw_name_ok(is_name ? l->value : l->name, is_name) || l->value[0] == '\0' ||
                !fuzz_prom_rw_utf8_ok(l->value) || (j > 0 && strcmp(ts->labels[j - 1]->name, l->name) >= 0))
                abort();
        }
        if (strcmp(ts->labels[0]->name, "__name__") > 0) /* no __name__ at all */
            abort();
        for (size_t j = 0; j < ts->n_histograms; j++) {
            const Prometheus__Histogram *h = ts->histograms[j];
            if (h->schema < -4 || h->schema > 8 || !(h->zero_threshold > 0))
                abort();
            fuzz_prom_rw_spans_ok(h->positive_spans, h->n_positive_spans, h->n_positive_deltas);
            fuzz_prom_rw_spans_ok(h->negative_spans, h->n_negative_spans, h->n_negative_deltas);
        }
        for (size_t j = 0; j < ts->n_exemplars; j++)
            for (size_t k = 0; k < ts->exemplars[j]->n_labels; k++)
                if (!fuzz_prom_rw_name_ok(ts->exemplars[j]->labels[k]->name, 0) ||
                    !fuzz_prom_rw_utf8_ok(ts->exemplars[j]->labels[k]->value))
                    abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena *a = arena_new((size_t)64 << 20);
    if (a == NULL)
        return 0;
    otlp_request req;
    char err[160];
    if (otlp_decode(OTLP_METRICS, OTLP_PROTOBUF, data, size, a, &req, err, sizeof(err)) == 0) {
        static const char *const labels[] = {"host.name", "2x"};
        prom_rw_options opt = {.add_metric_suffixes = 1, .target_info = 1, .native_histograms = 1,
                               .resource_labels = labels, .n_resource_labels = 2};
        prom_rw_stats st = {0};
        buf out = BUF_INIT;
        if (prom_rw_convert((const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *)req.msg,
                            &opt, a, &out, &st) != 0)
            abort(); /* only out of memory, which a fuzz run should not reach */
        Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, out.len, (const uint8_t *)out.data);
        if (wr == NULL || wr->n_timeseries != st.series)
            abort();
        fuzz_prom_rw_check(wr);
        prometheus__write_request__free_unpacked(wr, NULL);
        buf_free(&out);
    }
    arena_free(a);
    return 0;
}
