/* prom_rw_native: the buckets of an OTLP exponential histogram point as a
 * Prometheus native histogram's spans and delta-encoded counts, as the
 * OpenTelemetry Collector's remote-write translator lays them out.
 *
 * OTLP's bucket index k covers (base^k, base^(k+1)], Prometheus' index
 * k + 1 the same range. Scales above 8 (the finest schema Prometheus
 * has) are reduced by merging 2^scale_down neighbouring buckets: OTLP
 * index k becomes floor(k / 2^scale_down). Empty buckets before the first
 * filled one are not written (the first span may stay empty); between two
 * written buckets up to 2 empty ones are written as zero counts and more
 * start a new span; the last bucket is always written, even when empty.
 * That is upstream's layout, so a point gives the same bytes -- except
 * where upstream misplaces counts: when scale is reduced and an empty
 * native bucket precedes a group that merges several filled OTLP buckets,
 * it puts the group's first filled OTLP bucket one native bucket too low;
 * here every count lands in its own bucket. */
#ifndef GW_PROM_RW_NATIVE_H
#define GW_PROM_RW_NATIVE_H

#include <stddef.h>
#include <stdint.h>

/* Prometheus' schema range: scale -4 (base 2^16) .. 8 (base 2^(1/256)). */
#define PROM_RW_NATIVE_SCHEMA_MIN (-4)
#define PROM_RW_NATIVE_SCHEMA_MAX 8

typedef struct prom_rw_span {
    int32_t offset; /* the first span's: absolute index; later: gap after the previous span */
    uint32_t length;
} prom_rw_span;

/* counts[0..n) at OTLP index offset.. into spans (room for n + 1) and
 * deltas (room for n); nothing when n is 0. Returns 0, or 1 when an index
 * does not fit Prometheus' 32-bit offsets. */
int prom_rw_native_layout(const uint64_t *counts, size_t n, int32_t offset, int scale_down, prom_rw_span *spans,
                          size_t *nspans, int64_t *deltas, size_t *ndeltas);

#endif
