/* slab: a size-class allocator for many objects of similar sizes that come
 * and go in roughly the order they came (the tail sampler's trace records
 * and span segments).
 *
 * A request of up to SLAB_MAX bytes takes a chunk of its size class (104
 * classes, at most 1/16 apart past 256 bytes) from a block of SLAB_BLOCK
 * bytes that holds chunks of that class only; larger requests go to malloc.
 * Freed chunks are reused first. Blocks are carved from regions of
 * SLAB_REGION_BLOCKS blocks mapped at once (so the process's mappings stay
 * few). A block whose chunks are all free becomes a spare; a few spares are
 * kept (about 1/32 of the blocks in use, at least 4) so that a steady churn
 * faults in no new pages, the others' pages are given back to the system
 * (madvise), and every region is unmapped as soon as the slab holds nothing.
 * So the memory the slab holds (slab_footprint) is its chunks, the free
 * chunks of partly used blocks, and the spares (and a page of each block
 * given back).
 *
 * The caller frees with the size it allocated (the chunk's class is not
 * stored per chunk). Not thread-safe: one slab belongs to one owner (a
 * sampler shard, under its lock). Under AddressSanitizer, free chunks and a
 * chunk's bytes past the size asked for are poisoned, as malloc's would be. */
#ifndef GW_SLAB_H
#define GW_SLAB_H

#include <stddef.h>

#define SLAB_CLASSES 104
#define SLAB_MAX 16384             /* largest chunk; beyond it, malloc */
#define SLAB_BLOCK (256u * 1024u)  /* bytes per block, aligned to their size */
#define SLAB_REGION_BLOCKS 64       /* blocks mapped at once (16 MiB of address space) */

typedef struct slab_block slab_block;

typedef struct slab {
    slab_block *partial[SLAB_CLASSES]; /* per class: blocks with room */
    slab_block *full;                  /* blocks without room, any class */
    slab_block *spare;                 /* empty blocks kept, resident */
    slab_block *cold;                  /* empty blocks whose pages were given back */
    size_t n_spare, n_used;            /* blocks: spare, holding chunks */
    size_t chunks;                     /* chunks allocated */
    char **regions;                    /* mapped */
    size_t n_regions, fresh;           /* fresh: blocks of the last region never used */
} slab;

void slab_init(slab *s);
/* Unmaps every region; chunks still allocated are gone with them. */
void slab_destroy(slab *s);
/* 16-byte aligned, n bytes (n >= 1); NULL without memory. */
void *slab_alloc(slab *s, size_t n);
/* p from slab_alloc(s, n), with the same n; p may be NULL. */
void slab_free(slab *s, void *p, size_t n);
/* The memory an allocation of n bytes takes: its chunk, or for malloc's
 * requests n plus an allowance for malloc's header. */
size_t slab_size(size_t n);
/* The memory the slab holds: its blocks in use and its spares (the rest
 * of its regions is address space only). */
size_t slab_footprint(const slab *s);

#endif
