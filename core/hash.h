/* hash: 64-bit FNV-1a, for stable, non-cryptographic hashes of short
 * strings (trace ids to sampler shards, metric names to series keys). Not
 * for anything an attacker may choose to collide on purpose where that
 * matters: every user here either keys a bounded table or an identity
 * that is also checked exactly. */
#ifndef GW_HASH_H
#define GW_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_INIT 0xcbf29ce484222325ull

/* Continues hash h (start with HASH_FNV1A_INIT) over n bytes at p. */
static inline uint64_t hash_fnv1a(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#endif
