/* arena: bump allocator owning everything decoded from one request.
 *
 * A request's protobuf/JSON decode allocates only from its arena, so a request
 * costs a handful of chunk allocations instead of one malloc per field, and is
 * released in one call. An arena may be capped: allocations past `limit` bytes
 * fail (return NULL), which is how decode expansion of hostile input is bounded.
 * Not thread-safe; one arena belongs to one request on one thread. */
#ifndef GW_ARENA_H
#define GW_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct arena arena;

/* limit 0 means unlimited. Returns NULL on out-of-memory. */
arena *arena_new(size_t limit);
/* Change the cap (0 = unlimited); applies to later allocations. */
void arena_set_limit(arena *a, size_t limit);
/* Frees every chunk; `a` may be NULL. */
void arena_free(arena *a);
/* Releases all allocations but keeps the first chunk for reuse; every other
 * chunk goes back to the system (chunks of 1 MiB and more are unmapped, so
 * a huge request's memory is returned at once, not kept by malloc). */
void arena_reset(arena *a);
/* 16-byte aligned; NULL when over the limit or out of memory. */
void *arena_alloc(arena *a, size_t size);
void *arena_calloc(arena *a, size_t n, size_t size);
/* arena_alloc for memory the caller can do without: NULL leaves the arena
 * as it was (arena_failed does not turn true). */
void *arena_alloc_soft(arena *a, size_t size);
/* Copies `len` bytes and appends a NUL. */
char *arena_strndup(arena *a, const char *s, size_t len);
/* Bytes handed out since the last reset (what the limit is checked against). */
size_t arena_used(const arena *a);
/* True once an allocation has failed since the last reset. */
int arena_failed(const arena *a);
/* A protobuf-c allocator backed by `a` (its free is a no-op). */
ProtobufCAllocator arena_protobuf_allocator(arena *a);

#endif
