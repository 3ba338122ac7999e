/* metrics: the gateway's own Prometheus metrics.
 *
 * Families are registered once (name, help, type); a series is looked up by
 * its label set (already formatted, e.g. `signal="traces",transport="grpc"`)
 * under a mutex on first use and then updated lock-free through the returned
 * pointer, which stays valid for the process lifetime. Hot paths cache series
 * pointers; metrics_render() writes the text exposition format.
 * Thread-safe throughout. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

typedef struct metric_family metric_family;
typedef struct metric_series metric_series;

/* Register (or find, if already registered with the same name) a family.
 * Histogram families take upper bounds in ascending order (copied). */
metric_family *metrics_family(const char *name, metric_type type, const char *help);
metric_family *metrics_histogram_family(const char *name, const char *help, const double *bounds, size_t n);

/* Series with the given label text ("" for none). Never NULL unless out of
 * memory, in which case updates through a NULL series are ignored. */
metric_series *metrics_series(metric_family *f, const char *labels);

void metrics_add(metric_series *s, uint64_t n);      /* counter */
void metrics_set(metric_series *s, int64_t v);       /* gauge */
void metrics_gauge_add(metric_series *s, int64_t d); /* gauge */
void metrics_observe(metric_series *s, double v);    /* histogram */
uint64_t metrics_value(const metric_series *s);      /* counter/gauge value (tests) */

/* Extra text appended at render time (computed metrics, e.g. uptime). */
typedef void (*metrics_collect_fn)(buf *out, void *data);
void metrics_register_collector(metrics_collect_fn fn, void *data);

/* Prometheus text format 0.0.4. Returns 0 or -1 on out-of-memory. */
int metrics_render(buf *out);

/* Forget every family (tests only; not safe while other threads update). */
void metrics_reset_for_tests(void);

#endif
