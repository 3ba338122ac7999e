/* cidr: IPv4/IPv6 prefix lists for source-address rules. An IPv4-mapped
 * IPv6 peer (::ffff:10.1.2.3) matches IPv4 prefixes. */
#ifndef GW_CIDR_H
#define GW_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct cidr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t addr[16];  /* network address, host bits cleared */
    unsigned prefix;
} cidr;

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
 * -1 on syntax error, or when host bits are set past the prefix. */
int cidr_parse(const char *s, cidr *out);
int cidr_match(const cidr *c, const struct sockaddr_storage *peer);
/* Index of the longest matching prefix in list, or -1. */
int cidr_best_match(const cidr *list, size_t n, const struct sockaddr_storage *peer);

#endif
