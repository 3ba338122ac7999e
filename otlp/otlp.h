/* otlp: OTLP request/response codec (protobuf and OTLP/JSON) over the
 * protoc-c types generated from proto/.
 *
 * Decoding allocates only from the caller's arena (see arena.h); the decoded
 * message lives as long as the arena. Decoders never trust their input:
 * nesting depth is bounded (OTLP_MAX_DEPTH), lengths are checked, and an
 * arena limit bounds memory. After decoding, otlp_validate() removes items the
 * OTLP spec calls invalid (bad trace/span ids, nameless metrics) and counts
 * them, which is what the server reports as partial success. */
#ifndef GW_OTLP_H
#define GW_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "buf.h"
#include "types.h" /* otlp_signal, otlp_encoding */

/* Nesting bound for decoded messages (protobuf and JSON alike): 400
 * message levels are 131 levels of kvlist inside kvlist, or 197 of arrays
 * inside arrays, in an attribute value. Attribute values nested 20 deep are
 * ordinary (config dumps, JSON documents as attributes), and SDKs and the
 * Collector put no limit of their own on it; 400 keeps the recursive
 * protobuf-c unpack well inside a worker thread's 8 MiB stack (measured in
 * test_otlp and test_otlp_json: 400 levels fit a 512 KiB thread stack, also
 * under AddressSanitizer; 256 KiB does not). */
#define OTLP_MAX_DEPTH 400

/* "traces" | "metrics" | "logs" */
const char *otlp_signal_name(otlp_signal sig);
/* Item noun used in metrics and messages: "spans" | "metric_points" | "log_records" */
const char *otlp_item_name(otlp_signal sig);

typedef struct otlp_request {
    otlp_signal signal;
    /* Opentelemetry__Proto__Collector__{Trace,Metrics,Logs}__V1__Export*ServiceRequest,
     * allocated in the decode arena. */
    ProtobufCMessage *msg;
    size_t items;    /* spans / data points / log records present after validation */
    size_t rejected; /* items otlp_validate removed */
    char reject_reason[160]; /* first reason for a rejection, "" when none */
    /* The request's protobuf bytes when they are exactly this request
     * (otlp_wire_scan passed them; not owned): a pipeline's share that is
     * the whole request, unedited, forwards them instead of encoding
     * again. NULL otherwise. msg is NULL when these bytes are all the
     * pipelines need (pipeline_wire_use). */
    const uint8_t *wire;
    size_t wire_len;
    /* With wire, for a traces request a tail sampler takes as bytes: what
     * otlp_wire_scan noted of each span, n_spans == items (in the decode
     * arena). NULL otherwise. */
    const struct otlp_wire_span *spans;
    size_t n_spans;
} otlp_request;

/* Decode a request body. Return 0 on success; on failure -1 with a short,
 * client-safe reason in err (e.g. "invalid protobuf: truncated field at offset 17",
 * "invalid JSON: expected ':' at offset 42", "request too large when decoded").
 * out->items is counted; call otlp_validate before handing the request on.
 * arena_failed(a) after a -1 means the arena limit was hit (a size error,
 * not a syntax error). */
int otlp_decode(otlp_signal sig, otlp_encoding enc, const uint8_t *data, size_t len, arena *a,
                otlp_request *out, char *err, size_t errlen);

/* Drop invalid items in place (trace_id must be 16 non-zero bytes, span_id 8
 * non-zero bytes, parent_span_id empty or 8 bytes; metrics need a name and a
 * data field; log records' ids must be empty or of the right length), update
 * items/rejected/reject_reason. Containers left empty stay (harmless). */
void otlp_validate(otlp_request *req);

/* Count items (spans, data points, log records) in a decoded request. */
size_t otlp_count_items(otlp_signal sig, const ProtobufCMessage *msg);
/* Data points of one Metric message (0 when it has no data). */
size_t otlp_metric_points(const ProtobufCMessage *metric);

/* Append the message as one line of OTLP/JSON (no trailing newline): field
 * names lowerCamelCase, trace/span ids as hex, enums as integers, 64-bit
 * integers as decimal strings, default values omitted. Works for any
 * message type generated from proto/. Returns 0 or -1 (out of memory). */
int otlp_encode_json(const ProtobufCMessage *msg, buf *out);

/* Export*ServiceResponse for `sig`, with partial_success set when rejected>0
 * (or message non-empty), encoded in `enc`. Appends to out. */
int otlp_encode_response(otlp_signal sig, otlp_encoding enc, uint64_t rejected, const char *message,
                         buf *out);

/* google.rpc.Status {code, message} in `enc` (OTLP/HTTP error bodies, and
 * grpc-status-details-bin if wanted). Appends to out. */
int otlp_encode_status(otlp_encoding enc, int32_t code, const char *message, buf *out);

/* Cut a decoded request into parts of at most max_items items (data points
 * for metrics) and about max_bytes encoded, keeping resource and scope
 * grouping; parts share items with `msg` and live in `a`. A single span, log
 * record or metric larger than a limit becomes a part of its own. emit
 * returns 0 to go on; otlp_split returns -1 if emit did or memory ran out. */
typedef int (*otlp_part_fn)(const ProtobufCMessage *part, size_t items, void *data);
int otlp_split(otlp_signal sig, const ProtobufCMessage *msg, size_t max_items, size_t max_bytes, arena *a,
               otlp_part_fn emit, void *data);

/* protobuf-c descriptor of the request message for a signal. */
const ProtobufCMessageDescriptor *otlp_request_descriptor(otlp_signal sig);

#endif
