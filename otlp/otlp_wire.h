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
 * contract against the decoder. */
#ifndef GW_OTLP_WIRE_H
#define GW_OTLP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

int otlp_wire_scan(otlp_signal sig, const uint8_t *data, size_t len, size_t *items);

#endif
