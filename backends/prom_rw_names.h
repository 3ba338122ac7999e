/* prom_rw_names: Prometheus names and label texts for OTLP metrics, built
 * the way prometheus/otlptranslator builds them with its default
 * UnderscoreEscapingWithSuffixes strategy (what the OpenTelemetry
 * Collector's remote-write exporter writes with add_metric_suffixes: true):
 *
 *   metric: the name split into words at every character outside
 *     [A-Za-z0-9:] (so repeated, leading and trailing underscores vanish);
 *     the unit's words appended unless the name has them as a word already
 *     ("By" -> bytes, "By/s" -> bytes, per_second; "{packet}" annotations
 *     give nothing); counters get `total` and gauges of unit "1" get
 *     `ratio`, moved to the end if already present; joined with '_', and a
 *     leading digit gets a '_' in front.
 *   label: every character outside [A-Za-z0-9] becomes '_', runs of '_'
 *     collapse (a reserved "__x__" keeps its outer pair), a leading digit
 *     gets "key_".
 *   le/quantile values: Go's FormatFloat(v, 'f', -1): the shortest
 *     decimal that reads back exactly, never an exponent (1000000, 1e-07
 *     as 0.0000001), "+Inf", "-Inf", "NaN".
 *
 * All functions append to out and return 0, 1 when the input has no valid
 * name (nothing usable was appended), or -1 when memory ran out. */
#ifndef GW_PROM_RW_NAMES_H
#define GW_PROM_RW_NAMES_H

#include "buf.h"

typedef enum {
    PROM_RW_KIND_GAUGE = 0,
    PROM_RW_KIND_COUNTER,   /* monotonic sum: `_total` */
    PROM_RW_KIND_UPDOWN,    /* non-monotonic sum: no suffix of its own */
    PROM_RW_KIND_HISTOGRAM, /* explicit or exponential */
    PROM_RW_KIND_SUMMARY
} prom_rw_kind;

/* The metric name; with suffixes = 0 (UnderscoreEscapingWithoutSuffixes)
 * only the characters are escaped: runs of invalid characters become one
 * '_', underscores in the name stay as they are, no unit or type words. */
int prom_rw_metric_name(buf *out, const char *name, const char *unit, prom_rw_kind kind, int suffixes);

/* The unit as metadata carries it: "bytes_per_second", "" for "1". */
int prom_rw_unit_name(buf *out, const char *unit);

/* A label name for an attribute key. */
int prom_rw_label_name(buf *out, const char *key);

/* A float as an `le` or `quantile` value. */
int prom_rw_put_float(buf *out, double d);

/* A float attribute value as OpenTelemetry's pdata writes it as text (an
 * ECMAScript number: like prom_rw_put_float between 1e-6 and 1e21, an
 * exponent "1e-7", "1e+21" outside). */
int prom_rw_put_float_attr(buf *out, double d);

#endif
