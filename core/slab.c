/* slab: size-class chunks in aligned blocks (see slab.h). A chunk finds its
 * block by masking its address, so a chunk carries no header; a block is
 * carved lazily (free list first, then a bump offset), so a new block's
 * pages are touched only as its chunks are used. */
#include "slab.h"

#include <assert.h>
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define HDR 64 /* block header, rounded so chunks stay 16-byte aligned */

struct slab_block {
    slab_block *prev, *next; /* on its class's partial list, the full list or the spares */
    void *free;              /* freed chunks, each holding the next */
    uint32_t used;           /* chunks allocated */
    uint32_t bump;           /* offset of the first chunk never handed out */
    uint16_t cls;
    uint8_t full;
};

_Static_assert(sizeof(slab_block) <= HDR, "block header");

/* Classes: 32-byte steps up to 256, then 16 steps per doubling. */
static unsigned cls_of(size_t n)
{
    if (n <= 256)
        return n == 0 ? 0 : (unsigned)((n - 1) >> 5);
    size_t m = n - 1;
    unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)m);
    return 8 + (k - 8) * 16 + (unsigned)(m >> (k - 4)) - 16;
}

static size_t cls_size(unsigned c)
{
    if (c < 8)
        return (size_t)(c + 1) * 32;
    unsigned k = 8 + (c - 8) / 16, sub = (c - 8) % 16;
    return ((size_t)1 << k) + (size_t)(sub + 1) * ((size_t)1 << (k - 4));
}

size_t slab_size(size_t n)
{
    return n <= SLAB_MAX ? cls_size(cls_of(n)) : n + 16;
}

static void list_push(slab_block **head, slab_block *b)
{
    b->prev = NULL;
    b->next = *head;
    if (*head != NULL)
        (*head)->prev = b;
    *head = b;
}

static void list_unlink(slab_block **head, slab_block *b)
{
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        *head = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
}

/* A region of SLAB_REGION_BLOCKS blocks, aligned to SLAB_BLOCK: mapped a
 * little larger, the rest unmapped again. Everything starts poisoned. */
static char *region_map(void)
{
    size_t want = (size_t)SLAB_REGION_BLOCKS * SLAB_BLOCK, len = want + SLAB_BLOCK;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t a = ((uintptr_t)m + SLAB_BLOCK - 1) & ~(uintptr_t)(SLAB_BLOCK - 1);
    size_t head = (size_t)(a - (uintptr_t)m), tail = len - head - want;
    if (head != 0)
        munmap(m, head);
    if (tail != 0)
        munmap((char *)a + want, tail);
    ASAN_POISON_MEMORY_REGION((char *)a, want);
    return (char *)a;
}

/* Nothing held: every region goes back (spares, cold and fresh blocks). */
static void release_all(slab *s)
{
    for (size_t i = 0; i < s->n_regions; i++) {
        ASAN_UNPOISON_MEMORY_REGION(s->regions[i], (size_t)SLAB_REGION_BLOCKS * SLAB_BLOCK); /* the shadow outlives the mapping */
        munmap(s->regions[i], (size_t)SLAB_REGION_BLOCKS * SLAB_BLOCK);
    }
    free(s->regions);
    s->regions = NULL;
    s->n_regions = s->fresh = 0;
    s->spare = s->cold = NULL;
    s->n_spare = 0;
}

void slab_init(slab *s)
{
    *s = (slab){0};
}

void slab_destroy(slab *s)
{
    release_all(s);
    *s = (slab){0};
}

size_t slab_footprint(const slab *s)
{
    return (s->n_used + s->n_spare) * (size_t)SLAB_BLOCK;
}

/* An empty block: a spare (resident), a cold one (given back, faulted in
 * again as it is used), a fresh one of the last region, or a new region's. */
static slab_block *block_take(slab *s)
{
    slab_block *b;
    if ((b = s->spare) != NULL) {
        s->spare = b->next;
        s->n_spare--;
        return b;
    }
    if ((b = s->cold) != NULL) {
        s->cold = b->next;
        return b;
    }
    if (s->fresh == 0) {
        void *r = realloc(s->regions, (s->n_regions + 1) * sizeof(*s->regions));
        if (r == NULL)
            return NULL;
        s->regions = r;
        if ((s->regions[s->n_regions] = region_map()) == NULL)
            return NULL;
        s->n_regions++;
        s->fresh = SLAB_REGION_BLOCKS;
    }
    char *last = s->regions[s->n_regions - 1];
    return (slab_block *)(last + (size_t)(SLAB_REGION_BLOCKS - s->fresh--) * SLAB_BLOCK);
}

/* An empty block for class c, on that class's partial list. */
static slab_block *block_get(slab *s, unsigned c)
{
    slab_block *b = block_take(s);
    if (b == NULL)
        return NULL;
    ASAN_UNPOISON_MEMORY_REGION(b, HDR);
    b->free = NULL;
    b->used = 0;
    b->bump = HDR;
    b->cls = (uint16_t)c;
    b->full = 0;
    list_push(&s->partial[c], b);
    s->n_used++;
    return b;
}

/* A block whose chunks are all free: kept as a spare, or its pages given
 * back but the first, which holds the header and the cold list's link (the
 * mapping stays: unmapping blocks one by one would split the process's
 * mappings, whose number is limited by vm.max_map_count). */
static void block_put(slab *s, slab_block *b)
{
    if (s->n_spare < 4 + s->n_used / 32) {
        b->next = s->spare;
        s->spare = b;
        s->n_spare++;
        return;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (page < SLAB_BLOCK)
        madvise((char *)b + page, SLAB_BLOCK - page, MADV_DONTNEED);
    b->next = s->cold;
    s->cold = b;
}

void *slab_alloc(slab *s, size_t n)
{
    if (n > SLAB_MAX)
        return malloc(n);
    unsigned c = cls_of(n);
    size_t sz = cls_size(c);
    slab_block *b = s->partial[c];
    if (b == NULL && (b = block_get(s, c)) == NULL)
        return NULL;
    char *p = b->free;
    if (p != NULL) {
        ASAN_UNPOISON_MEMORY_REGION(p, sizeof(void *));
        b->free = *(void **)p;
        ASAN_POISON_MEMORY_REGION(p, sz);
    } else {
        p = (char *)b + b->bump;
        b->bump += (uint32_t)sz;
    }
    b->used++;
    s->chunks++;
    if (b->free == NULL && b->bump + sz > SLAB_BLOCK) {
        list_unlink(&s->partial[c], b);
        list_push(&s->full, b);
        b->full = 1;
    }
    ASAN_UNPOISON_MEMORY_REGION(p, n);
    return p;
}

void slab_free(slab *s, void *p, size_t n)
{
    if (p == NULL)
        return;
    if (n > SLAB_MAX) {
        free(p);
        return;
    }
    slab_block *b = (slab_block *)((uintptr_t)p & ~(uintptr_t)(SLAB_BLOCK - 1));
    unsigned c = b->cls;
    assert(c == cls_of(n) && b->used > 0);
    ASAN_POISON_MEMORY_REGION(p, cls_size(c));
    ASAN_UNPOISON_MEMORY_REGION(p, sizeof(void *));
    *(void **)p = b->free;
    ASAN_POISON_MEMORY_REGION(p, sizeof(void *));
    b->free = p;
    s->chunks--;
    if (b->full) { /* room again: allocations of its class reuse it first */
        list_unlink(&s->full, b);
        list_push(&s->partial[c], b);
        b->full = 0;
    }
    if (--b->used != 0)
        return;
    list_unlink(&s->partial[c], b);
    s->n_used--;
    if (s->chunks == 0)
        release_all(s); /* nothing held: nothing kept */
    else
        block_put(s, b);
}
