/* es_xxh64: XXH64, seed 0 (es_xxh64.h). The steps of the specification:
 * four accumulators over 32-byte stripes, merged; then the tail in 8-, 4-
 * and 1-byte pieces; then the avalanche. Input is read little-endian with
 * memcpy, whatever the host's alignment rules. */
#include "es_xxh64.h"

#include <string.h>

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static uint64_t es_xxh64_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t es_xxh64_read64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t es_xxh64_read32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t es_xxh64_round(uint64_t acc, uint64_t lane)
{
    acc += lane * P2;
    acc = es_xxh64_rotl(acc, 31);
    return acc * P1;
}

static uint64_t es_xxh64_merge(uint64_t h, uint64_t acc)
{
    h ^= es_xxh64_round(0, acc);
    return h * P1 + P4;
}

uint64_t es_xxh64(const void *data, size_t n)
{
    const uint8_t *p = data, *end = n > 0 ? p + n : p; /* data may be NULL when n is 0 */
    uint64_t h;
    if (n >= 32) {
        uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = 0 - P1;
        for (; end - p >= 32; p += 32) {
            v1 = es_xxh64_round(v1, es_xxh64_read64(p));
            v2 = es_xxh64_round(v2, es_xxh64_read64(p + 8));
            v3 = es_xxh64_round(v3, es_xxh64_read64(p + 16));
            v4 = es_xxh64_round(v4, es_xxh64_read64(p + 24));
        }
        h = es_xxh64_rotl(v1, 1) + es_xxh64_rotl(v2, 7) + es_xxh64_rotl(v3, 12) + es_xxh64_rotl(v4, 18);
        h = es_xxh64_merge(h, v1);
        h = es_xxh64_merge(h, v2);
        h = es_xxh64_merge(h, v3);
        h = es_xxh64_merge(h, v4);
    } else {
        h = P5;
    }
    h += (uint64_t)n;
    for (; end - p >= 8; p += 8) {
        h ^= es_xxh64_round(0, es_xxh64_read64(p));
        h = es_xxh64_rotl(h, 27) * P1 + P4;
    }
    if (end - p >= 4) {
        h ^= (uint64_t)es_xxh64_read32(p) * P1;
        h = es_xxh64_rotl(h, 23) * P2 + P3;
        p += 4;
    }
    for (; p < end; p++) {
        h ^= (uint64_t)*p * P5;
        h = es_xxh64_rotl(h, 11) * P1;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}
