/* ring: rendezvous (highest random weight) hashing of trace ids over a set
 * of members. Each member has a key (ring_member_key of its address); a
 * trace's owner is the member whose weight mix(key, trace id) is highest.
 * Every instance computes the same owner from the same member set, with no
 * coordination, and removing a member moves only the traces it owned
 * (adding one moves only the traces it now wins), each to the member that
 * weighed next. The hash is fixed by this file: members running different
 * builds must agree on it, so changing it is a wire change. */
#ifndef GW_RING_H
#define GW_RING_H

#include <stddef.h>
#include <stdint.h>

uint64_t ring_member_key(const char *addr);
/* Index in keys[0..n) of the owner of trace_id; n must be > 0. */
size_t ring_owner(const uint64_t *keys, size_t n, const uint8_t trace_id[16]);

#endif
