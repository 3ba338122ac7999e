/* lg_hist: see lg_hist.h. */
#include "lg_hist.h"

#include <math.h>
#include <string.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < LG_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= SUB_BITS */
    unsigned shift = e - LG_HIST_SUB_BITS;
    return (shift + 1) * LG_HIST_SUB + (unsigned)((v >> shift) & (LG_HIST_SUB - 1));
}

/* Largest value that falls into bucket i. */
static uint64_t bucket_high(unsigned i)
{
    if (i < LG_HIST_SUB)
        return i;
    unsigned shift = i / LG_HIST_SUB - 1;
    uint64_t low = (uint64_t)(LG_HIST_SUB + i % LG_HIST_SUB) << shift;
    return low + ((uint64_t)1 << shift) - 1;
}

void lg_hist_init(lg_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void lg_hist_add(lg_hist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->count++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void lg_hist_merge(lg_hist *dst, const lg_hist *src)
{
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t lg_hist_quantile(const lg_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    double r = ceil(q * (double)h->count);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}
