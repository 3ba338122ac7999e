/* es_doc: a decoded OTLP request -> an Elasticsearch _bulk body (NDJSON), in
 * the document shape of Elastic's exporter in its OpenTelemetry-native
 * ("otel") mapping mode, so the documents land in the `traces-*.otel-*`,
 * `logs-*.otel-*` and `metrics-*.otel-*` data streams Elasticsearch's
 * built-in templates map (docs/elasticsearch.md compares them field by
 * field).
 *
 * Every document is a `create` action line plus the document line. Spans are
 * one document each, their events one more `logs-` document each; log
 * records one each. Metric points are grouped as Elastic groups them: the
 * points of one index, resource, scope, time, start time, unit and
 * attribute set make one document, each metric under `metrics.<name>`
 * (its field type in the action's dynamic_templates), with
 * `_metric_names_hash`. The index: an `elasticsearch.index` attribute, else
 * the data stream `<type>-<dataset>.otel-<namespace>` from the
 * data_stream.dataset / data_stream.namespace string attributes of the item
 * (a span event: the event), its scope, its resource, else a receiver's
 * scope name (dataset only), else the settings; sanitized to the data
 * stream naming rules.
 *
 * Pure: no I/O and no state besides the caller's buffers, so rendering the
 * same message twice gives the same bytes (the exporter relies on that to
 * rebuild a partial retry). Items that cannot be represented (a number
 * point without a value, a histogram whose buckets do not fit
 * Elasticsearch's histogram field, a second point of a metric in one
 * document) are left out and reported. */
#ifndef GW_ES_DOC_H
#define GW_ES_DOC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "buf.h"
#include "otlp.h"

/* Longest dataset or namespace, in bytes (dataset including ".otel"). */
#define ES_DOC_NAME_MAX 100

typedef struct es_doc_settings {
    const char *dataset;   /* when no attribute names one; NULL: "generic" */
    const char *namespace; /* NULL: "default" */
} es_doc_settings;

/* One document of the body: its action and document lines. Documents that
 * stand for one OTLP item (a span and its events) form a group that starts
 * with `first` set; the group's item count is the sum of its `items`. A
 * metric document is a group of its own standing for all its points. */
typedef struct es_doc_entry {
    size_t off, len;  /* bytes of both lines, newlines included */
    uint32_t items;   /* 1 for a span or log record, 0 for a span event, the points of a metric document */
    uint8_t first;
} es_doc_entry;

typedef struct es_doc_table {
    es_doc_entry *v; /* owned; es_doc_table_free */
    size_t n, cap;
} es_doc_table;

/* Items render left out: counted, with the first reason. */
typedef struct es_doc_report {
    uint64_t dropped;
    char reason[200];
} es_doc_report;

/* Append the documents of `msg` (an Export*ServiceRequest of `sig`) to out,
 * and one entry per document to t. *rep is reset first. 0, or -1 when
 * memory ran out (out and t then hold a prefix). */
int es_doc_render(const es_doc_settings *s, otlp_signal sig, const ProtobufCMessage *msg, buf *out, es_doc_table *t,
                  es_doc_report *rep);

int es_doc_table_push(es_doc_table *t, es_doc_entry e);
void es_doc_table_free(es_doc_table *t);

/* A dataset or namespace in[0..n) as the data stream naming rules allow
 * (Elastic's exporter's rules): ASCII lower-cased, each of
 * \ / * ? " < > | space , # : as '_', and '-' too unless keep_dash (a
 * namespace may hold '-', a dataset may not: it separates the parts of the
 * index name); at most max bytes (cut on a UTF-8 boundary). Writes a
 * NUL-terminated string to out (max + 1 bytes) and returns its length. */
size_t es_doc_sanitize(const char *in, size_t n, size_t max, int keep_dash, char *out);

#endif
