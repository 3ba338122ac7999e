/* crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial
 * value and final xor 0xFFFFFFFF), the checksum of the disk queue's records.
 * crc32c() uses the CPU's crc32 instruction where there is one (x86-64 with
 * SSE4.2, checked once at run time) and crc32c_portable() otherwise; both
 * give the same value for the same bytes, which test_codec checks. */
#ifndef GW_CRC32C_H
#define GW_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(const void *p, size_t n);
/* The CRC of the bytes that gave crc followed by p[0..n): a checksum built
 * in pieces, e.g. crc32c_extend(crc32c(a, na), b, nb) == crc32c(a || b).
 * crc32c_extend(0, p, n) == crc32c(p, n). */
uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n);
/* Table-driven (slicing by 8), any CPU: the reference the fast path is
 * tested against. */
uint32_t crc32c_portable(const void *p, size_t n);

#endif
