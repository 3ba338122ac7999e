/* crc32c: CRC-32C (crc32c.h). */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HW 1
#include <nmmintrin.h>
#endif

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
/* Set once in crc_init: the CPU has the crc32 instruction. */
static int crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t prev = crc_tab[t - 1][i];
            crc_tab[t][i] = (prev >> 8) ^ crc_tab[0][prev & 0xffu];
        }
#ifdef CRC32C_HW
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t portable_extend(uint32_t prev, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    uint32_t (*t)[256] = crc_tab;
    uint32_t crc = ~prev;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = crc ^ get32le(p), hi = get32le(p + 4);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    }
    while (n-- > 0)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xffu];
    return ~crc;
}

uint32_t crc32c_portable(const void *p, size_t n)
{
    return portable_extend(0, p, n);
}

#ifdef CRC32C_HW
/* Eight bytes per instruction; memcpy for the unaligned loads (one mov). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t prev, const uint8_t *p, size_t n)
{
    uint64_t crc = ~prev;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        crc = _mm_crc32_u64(crc, v);
    }
    uint32_t c = (uint32_t)crc;
    while (n-- > 0)
        c = _mm_crc32_u8(c, *p++);
    return ~c;
}
#endif

uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
#ifdef CRC32C_HW
    if (crc_hw)
        return crc32c_sse42(crc, p, n);
#endif
    return portable_extend(crc, p, n);
}

uint32_t crc32c(const void *p, size_t n)
{
    return crc32c_extend(0, p, n);
}
