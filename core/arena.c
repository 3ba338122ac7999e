#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_ALIGN 16
#define ARENA_MIN_CHUNK (16 * 1024)
/* Chunks this large are mapped and unmapped directly. Through malloc, glibc
 * raises its mmap threshold after the first large free and then serves big
 * chunks from the heap, which it rarely gives back: a few decode bombs (each
 * refused, but each filling max_decoded_bytes) would keep hundreds of MiB
 * resident for good. */
#define ARENA_MAP_MIN ((size_t)1 << 20)

typedef struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    int mapped;  /* from mmap: returned with munmap */
    _Alignas(ARENA_ALIGN) unsigned char data[];
} chunk;

struct arena {
    chunk *head;  /* current chunk; older ones follow */
    size_t limit; /* 0 = unlimited */
    size_t used;
    int failed;
};

static chunk *chunk_new(size_t size)
{
    int mapped = sizeof(chunk) + size >= ARENA_MAP_MIN;
    chunk *c;
    if (mapped) {
        void *p = mmap(NULL, sizeof(*c) + size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        c = p == MAP_FAILED ? NULL : p;
    } else {
        c = malloc(sizeof(*c) + size);
    }
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    c->mapped = mapped;
    return c;
}

static void chunk_free(chunk *c)
{
    if (c->mapped)
        munmap(c, sizeof(*c) + c->size);
    else
        free(c);
}

arena *arena_new(size_t limit)
{
    arena *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->limit = limit;
    return a;
}

void arena_set_limit(arena *a, size_t limit) { a->limit = limit; }

static void chunks_free(chunk *c)
{
    while (c != NULL) {
        chunk *next = c->next;
        chunk_free(c);
        c = next;
    }
}

void arena_free(arena *a)
{
    if (a == NULL)
        return;
    chunks_free(a->head);
    free(a);
}

void arena_reset(arena *a)
{
    /* Keep the oldest chunk (the tail): it is the first-sized one, which fits
     * the common small request without touching malloc again. */
    chunk *keep = a->head;
    if (keep != NULL) {
        chunk *prev = NULL;
        while (keep->next != NULL) {
            prev = keep;
            keep = keep->next;
        }
        if (prev != NULL) {
            prev->next = NULL;
            chunks_free(a->head);
        }
        keep->used = 0;
    }
    a->head = keep;
    a->used = 0;
    a->failed = 0;
}

void *arena_alloc(arena *a, size_t size)
{
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (rounded < size || (a->limit != 0 && (rounded > a->limit || a->used > a->limit - rounded))) {
        a->failed = 1;
        return NULL;
    }
    chunk *c = a->head;
    if (c == NULL || c->size - c->used < rounded) {
        /* Grow geometrically so a large request needs O(log n) chunks. */
        size_t want = c == NULL ? ARENA_MIN_CHUNK : c->size * 2;
        if (want < rounded)
            want = rounded;
        chunk *n = chunk_new(want);
        if (n == NULL) {
            a->failed = 1;
            return NULL;
        }
        n->next = c;
        a->head = c = n;
    }
    void *p = c->data + c->used;
    c->used += rounded;
    a->used += rounded;
    return p;
}

void *arena_alloc_soft(arena *a, size_t size)
{
    int failed = a->failed;
    void *p = arena_alloc(a, size);
    if (p == NULL)
        a->failed = failed;
    return p;
}

void *arena_calloc(arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        a->failed = 1;
        return NULL;
    }
    void *p = arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

size_t arena_used(const arena *a) { return a->used; }

int arena_failed(const arena *a) { return a->failed; }

static void *pb_alloc(void *data, size_t size) { return arena_alloc(data, size); }

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

ProtobufCAllocator arena_protobuf_allocator(arena *a)
{
    ProtobufCAllocator al = {.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
    return al;
}
