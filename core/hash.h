/* hash: 64-bit FNV-1a, for stable, non-cryptographic hashes of short
 * strings (trace ids to sampler shards, metric names to series keys), and
 * the murmur3 64-bit finalizer to spread such a hash over all its bits. Not
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

/* murmur3's fmix64: every output bit then depends on every input bit, which
 * FNV-1a alone does not give (sequential ids would cluster in shards and
 * sampling buckets). */
static inline uint64_t hash_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

#endif
