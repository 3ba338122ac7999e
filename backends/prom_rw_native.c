/* prom_rw_native: exponential buckets to native spans (see prom_rw_native.h).
 *
 * One pass over the dense OTLP counts: neighbours that merge into one
 * native bucket are summed into a group, and each finished group is placed
 * after the previously written bucket. */
#include "prom_rw_native.h"

/* floor(k / 2^shift) for negative k too (>> on a negative value is
 * implementation-defined in C, and a shift past the width undefined: OTLP
 * allows any scale, and every index then merges into 0 or -1). */
static int64_t prom_rw_native_floor_shift(int64_t k, int shift)
{
    if (shift > 62)
        return k >= 0 ? 0 : -1;
    return k >= 0 ? k >> shift : -((-k - 1) >> shift) - 1;
}

typedef struct prom_rw_native_out {
    prom_rw_span *spans;
    size_t nspans;
    int64_t *deltas;
    size_t ndeltas;
    int64_t last_written; /* native index of the last written bucket */
    uint64_t prev_count;  /* for the delta encoding */
} prom_rw_native_out;

/* Counts are uint64 and deltas int64 on the wire: the difference is taken
 * modulo 2^64, which a receiver adding the deltas up undoes. */
static void prom_rw_native_put(prom_rw_native_out *o, uint64_t count)
{
    o->spans[o->nspans - 1].length++;
    o->deltas[o->ndeltas++] = (int64_t)(count - o->prev_count);
    o->prev_count = count;
}

/* Writes a group's count at native index idx: after a gap of at most 2
 * empty buckets, which are written as zeros, or in a new span. */
static void prom_rw_native_group(prom_rw_native_out *o, int64_t idx, uint64_t count)
{
    int64_t gap = idx - o->last_written - 1;
    if (gap > 2) {
        o->spans[o->nspans++] = (prom_rw_span){(int32_t)gap, 0};
    } else {
        for (int64_t i = 0; i < gap; i++)
            prom_rw_native_put(o, 0);
    }
    prom_rw_native_put(o, count);
    o->last_written = idx;
}

int prom_rw_native_layout(const uint64_t *counts, size_t n, int32_t offset, int scale_down, prom_rw_span *spans,
                          size_t *nspans, int64_t *deltas, size_t *ndeltas)
{
    *nspans = *ndeltas = 0;
    if (n == 0)
        return 0;
    int64_t first = prom_rw_native_floor_shift(offset, scale_down) + 1;
    int64_t last = prom_rw_native_floor_shift((int64_t)offset + (int64_t)n - 1, scale_down) + 1;
    if (first < INT32_MIN || last > INT32_MAX)
        return 1;
    prom_rw_native_out o = {.spans = spans, .deltas = deltas, .last_written = first - 1};
    o.spans[o.nspans++] = (prom_rw_span){(int32_t)first, 0};
    int64_t group = first;
    uint64_t sum = 0;
    for (size_t i = 0; i <= n; i++) {
        int64_t idx = i < n ? prom_rw_native_floor_shift((int64_t)offset + (int64_t)i, scale_down) + 1 : last + 1;
        if (idx != group) {
            /* empty groups are skipped (the next written bucket fills or
             * spans the gap), except the last, which upstream always writes */
            if (sum != 0 || group == last)
                prom_rw_native_group(&o, group, sum);
            group = idx;
            sum = 0;
        }
        if (i < n)
            sum += counts[i];
    }
    *nspans = o.nspans;
    *ndeltas = o.ndeltas;
    return 0;
}
