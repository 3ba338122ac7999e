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

#ifdef CRC32C_HW
/* Set once in crc_init: the CPU has the crc32 instruction. */
static int crc_hw;

/* The crc32 instruction takes 3 cycles to give its result to the next one
 * and can start one per cycle: three independent lanes over thirds of a
 * block keep it busy, then the lanes' registers are joined. Joining shifts
 * a register over the bytes after its lane (appends that many zero bytes),
 * which is linear: a table per byte of the register for each lane size. */
#define LANE_LONG 4096
#define LANE_SHORT 256
static uint32_t shift_long[4][256], shift_short[4][256];

/* The register after n more zero bytes (no inversion): one byte at a time,
 * only to build the shift tables. */
static uint32_t zeros_slow(uint32_t r, size_t n)
{
    while (n-- > 0)
        r = (r >> 8) ^ crc_tab[0][r & 0xffu];
    return r;
}

static void shift_init(uint32_t t[4][256], size_t n)
{
    uint32_t basis[32];
    for (int i = 0; i < 32; i++)
        basis[i] = zeros_slow(1u << i, n);
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++)
                if (b & (1u << j))
                    v ^= basis[8 * k + j];
            t[k][b] = v;
        }
}

static uint32_t shift(const uint32_t t[4][256], uint32_t r)
{
    return t[0][r & 0xffu] ^ t[1][(r >> 8) & 0xffu] ^ t[2][(r >> 16) & 0xffu] ^ t[3][r >> 24];
}
#endif

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
    if (crc_hw) {
        shift_init(shift_long, LANE_LONG);
        shift_init(shift_short, LANE_SHORT);
    }
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
__attribute__((target("sse4.2"))) static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* one unaligned mov */
    return v;
}

/* Blocks of three lanes of `lane` bytes while they last: the first lane
 * goes on from crc, the others start from 0, and the first is shifted over
 * the second, the result over the third. */
__attribute__((target("sse4.2"))) static uint64_t lanes(uint64_t crc, const uint8_t **pp, size_t *np, size_t lane,
                                                        const uint32_t t[4][256])
{
    const uint8_t *p = *pp;
    size_t n = *np;
    for (; n >= 3 * lane; p += 3 * lane, n -= 3 * lane) {
        uint64_t a = crc, b = 0, c = 0;
        for (size_t i = 0; i < lane; i += 8) {
            a = _mm_crc32_u64(a, load64(p + i));
            b = _mm_crc32_u64(b, load64(p + lane + i));
            c = _mm_crc32_u64(c, load64(p + 2 * lane + i));
        }
        crc = shift(t, shift(t, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
    }
    *pp = p;
    *np = n;
    return crc;
}

/* Eight bytes per instruction, in three lanes over long stretches. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t prev, const uint8_t *p, size_t n)
{
    uint64_t crc = ~prev;
    crc = lanes(crc, &p, &n, LANE_LONG, shift_long);
    crc = lanes(crc, &p, &n, LANE_SHORT, shift_short);
    for (; n >= 8; p += 8, n -= 8)
        crc = _mm_crc32_u64(crc, load64(p));
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
