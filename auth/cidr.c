#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cidr_parse(const char *s, cidr *out)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    out->prefix = max;
    if (slash != NULL) {
        char *end;
        const char *p = slash + 1;
        if (*p < '0' || *p > '9')
            return -1;
        unsigned long v = strtoul(p, &end, 10);
        if (*end != '\0' || v > max)
            return -1;
        out->prefix = (unsigned)v;
    }
    /* Host bits set (10.1.2.3/8) is almost always a typo for a host rule. */
    for (unsigned bit = out->prefix; bit < max; bit++)
        if (out->addr[bit / 8] & (0x80u >> (bit % 8)))
            return -1;
    return 0;
}

/* The peer's address bytes and family, unwrapping IPv4-mapped IPv6. */
static int peer_bytes(const struct sockaddr_storage *peer, const uint8_t **bytes)
{
    if (peer->ss_family == AF_INET) {
        *bytes = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
        return AF_INET;
    }
    if (peer->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            *bytes = a->s6_addr + 12;
            return AF_INET;
        }
        *bytes = a->s6_addr;
        return AF_INET6;
    }
    return -1;
}

int cidr_match(const cidr *c, const struct sockaddr_storage *peer)
{
    const uint8_t *b = NULL;
    if (peer_bytes(peer, &b) != c->family)
        return 0;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(b, c->addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (b[full] & mask) == c->addr[full];
}

int cidr_best_match(const cidr *list, size_t n, const struct sockaddr_storage *peer)
{
    int best = -1;
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&list[i], peer) && (best < 0 || list[i].prefix > list[best].prefix))
            best = (int)i;
    return best;
}
