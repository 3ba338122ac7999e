/* es_xxh64: XXH64 with seed 0, the hash Elastic's exporter names a metric
 * document's metrics with (`_metric_names_hash`: the hash of the sorted
 * metric names, concatenated, in lower-case hex). Written from the public
 * XXH64 specification; a unit test checks it against known values. Not a
 * security hash. */
#ifndef GW_ES_XXH64_H
#define GW_ES_XXH64_H

#include <stddef.h>
#include <stdint.h>

uint64_t es_xxh64(const void *p, size_t n);

#endif
