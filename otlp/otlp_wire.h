/* otlp_wire: one pass over an OTLP protobuf request's bytes, without
 * decoding it, that answers whether the request can go on as it is.
 *
 * otlp_wire_scan returns 1 only when otlp_decode would accept the bytes and
 * otlp_validate would then remove nothing; *items is then exactly what they
 * would have counted. Anything else -- malformed input, an item the
 * validator drops, nesting deeper than OTLP_MAX_DEPTH, encodings protobuf-c
 * tolerates but that are unusual (a bool sent as bytes, a 5-byte tag) --
 * returns 0 and the caller takes the decoding path, which produces the
 * precise error or partial success. So a 0 is never an error by itself.
 * Strings are bytes here: one with a NUL inside passes whole, where the
 * decoding path's C strings would end at the NUL (a metric name that starts
 * with one is empty to the validator, and so is refused here too).
 *
 * It allocates nothing and reads `len` bytes of `data` only. The
 * differential fuzz target tests/fuzz/fuzz_otlp_wire.c holds it to that
 * contract against the decoder.
 *
 * For a traces request it can also note, for each span in the order the
 * spans come, the fields the tail sampler summarizes, so that the sampler
 * need not read every span's fields a second time: pass `spans` (NULL:
 * none noted) with room for otlp_wire_spans_cap(len) entries. After a 1,
 * spans->n == *items unless there was no room (the caller then reads the
 * spans itself). Where a field repeats, the last one counts, as in the
 * decoder. */
#ifndef GW_OTLP_WIRE_H
#define GW_OTLP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

typedef struct otlp_wire_span {
    uint64_t start, end; /* start_time_unix_nano, end_time_unix_nano; 0 when absent */
    uint32_t trace_at;   /* offset of the span's 16-byte trace id in data */
    uint32_t code;       /* its status code; 0 without a status */
    uint8_t root;        /* no parent_span_id */
} otlp_wire_span;

typedef struct otlp_wire_spans {
    otlp_wire_span *v; /* the caller's, of cap entries */
    size_t cap, n;
} otlp_wire_spans;

/* The most spans a valid request of len bytes can hold (each needs a
 * trace id and a span id: 29 bytes at least). */
size_t otlp_wire_spans_cap(size_t len);

int otlp_wire_scan(otlp_signal sig, const uint8_t *data, size_t len, size_t *items, otlp_wire_spans *spans);

#endif
