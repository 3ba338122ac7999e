/* lg_hist: log-linear latency histogram for bench/loadgen.
 *
 * Values (nanoseconds, any uint64) fall into buckets of 1/64 of their power
 * of two, so a reported percentile is at most 1/64 (1.6 %) above the true
 * value; values below 64 are exact. Fixed size (no allocation), so one per
 * thread is merged at the end. Percentiles return the upper bound of the
 * bucket holding the rank, clamped to the exact min and max seen. */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 6
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
#define LG_HIST_BUCKETS ((64 - LG_HIST_SUB_BITS + 1) * LG_HIST_SUB)

typedef struct lg_hist {
    uint64_t count;
    uint64_t min, max;
    uint64_t b[LG_HIST_BUCKETS];
} lg_hist;

void lg_hist_init(lg_hist *h);
void lg_hist_add(lg_hist *h, uint64_t v);
/* Adds every value of src to dst. */
void lg_hist_merge(lg_hist *dst, const lg_hist *src);
/* The value at quantile q (0 < q <= 1): the smallest bucket bound with at
 * least ceil(q * count) values at or below it. 0 when empty. */
uint64_t lg_hist_quantile(const lg_hist *h, double q);

#endif
