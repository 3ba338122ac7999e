/* grpc_frame: the 5-byte prefix of a gRPC message (compressed flag, then
 * the message length big-endian), shared by the gRPC exporter, the cluster
 * forwarder and the gRPC listener so the wire format is written once. */
#ifndef GW_GRPC_FRAME_H
#define GW_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define GRPC_FRAME_PREFIX 5u

static inline void grpc_frame_put_prefix(uint8_t *p, int compressed, uint32_t len)
{
    p[0] = compressed ? 1 : 0;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
}

/* The message length a prefix announces. */
static inline uint32_t grpc_frame_len(const uint8_t *p)
{
    return (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
}

#endif
