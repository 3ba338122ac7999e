/* otlp_json: generic OTLP/JSON codec driven by protobuf-c descriptors, so it
 * handles every message generated from proto/ without per-type code.
 *
 * Internal to otlp/ (otlp.c wraps it per signal), except the UTF-8
 * validator and the string and base64 writers at the end, which the
 * backends that write JSON or Prometheus labels share so that every output
 * agrees on what valid UTF-8 is. Mapping rules are the
 * OTLP/JSON ones: lowerCamelCase keys (snake_case accepted on input), bytes
 * fields named trace_id/span_id/parent_span_id as hex and other bytes as
 * base64, enums as integers (names accepted on input), 64-bit integers as
 * decimal strings, proto3 defaults omitted on output. The decoder fills the
 * protobuf-c structs directly from one pass over the input, allocating only
 * from the arena; it rejects duplicate keys and two members of one oneof.
 * Depth counts messages as protobuf does (an array of messages adds no level),
 * so both encodings accept the same nesting. Numbers are read and written
 * with strtod/snprintf, which assumes the "C" LC_NUMERIC locale (the gateway
 * never calls setlocale). */
#ifndef GW_OTLP_JSON_H
#define GW_OTLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "buf.h"

/* Decode one JSON object as a `desc` message into *out (arena memory).
 * Returns 0, or -1 with "invalid JSON: ..." (or the arena-limit message) in
 * err. Message nesting deeper than OTLP_MAX_DEPTH is rejected. */
int otlp_json_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                     arena *a, ProtobufCMessage **out, char *err, size_t errlen);

/* The encoder is otlp_encode_json (otlp.h), in otlp_json.c. */

/* Shared by both directions and by otlp.c. */

#define OTLP_ERR_TOO_LARGE "request too large when decoded"

/* Bytes one element of a field of this type occupies in a protobuf-c struct
 * (the stride of a repeated field's array). */
size_t otlp_json_type_size(ProtobufCType t);

/* True for the bytes fields OTLP/JSON writes as hex (trace/span ids). */
int otlp_json_field_is_hex(const ProtobufCFieldDescriptor *f);

/* Length of the valid UTF-8 sequence starting at s (n bytes available), or 0
 * when it is malformed, overlong, a surrogate or above U+10FFFF. */
size_t otlp_json_utf8_seq(const unsigned char *s, size_t n);

/* The writer's pieces, shared with backends that write JSON or label text:
 * a quoted JSON string (controls escaped, invalid UTF-8 as U+FFFD) and
 * unquoted standard base64 with padding. 0, or -1 on out-of-memory. */
int otlp_json_put_string(buf *b, const unsigned char *s, size_t n);
/* The letter of JSON's two-character escape of c (for '"', '\\', \b, \f, \n,
 * \r, \t), or 0 when c has none and needs \u00XX if escaped. */
char otlp_json_short_escape(unsigned char c);
int otlp_json_put_base64(buf *b, const uint8_t *s, size_t n);

#endif
