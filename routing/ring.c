/* ring: see ring.h. */
#include "ring.h"

#include <string.h>

#include "hash.h"

uint64_t ring_member_key(const char *addr) { return hash_mix64(hash_fnv1a(addr, strlen(addr), HASH_FNV1A_INIT)); }

/* Weights are finalized (hash_mix64): FNV-1a alone leaves the weights of
 * different members correlated, which would skew who wins. */
size_t ring_owner(const uint64_t *keys, size_t n, const uint8_t trace_id[16])
{
    uint64_t t = hash_mix64(hash_fnv1a(trace_id, 16, HASH_FNV1A_INIT));
    size_t best = 0;
    uint64_t best_w = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = hash_mix64(keys[i] ^ t);
        /* Ties (1 in 2^64) go to the larger key, the same on every member. */
        if (i == 0 || w > best_w || (w == best_w && keys[i] > keys[best])) {
            best = i;
            best_w = w;
        }
    }
    return best;
}
