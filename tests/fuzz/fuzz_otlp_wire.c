/* libFuzzer, differential: the one-pass wire scan (otlp_wire.h) against the
 * decoder. The first byte picks the signal. Whenever the scan lets bytes
 * through, the decoder must accept them, the validator must remove nothing
 * and both must count the same items; otherwise the fast path would
 * acknowledge what the decoding path refuses, or count differently. What
 * the scan notes of each span for the tail sampler must be what the
 * decoder reads. */
#include <stdint.h>
#include <stdlib.h>

#include "../wire_notes.h"
#include "otlp.h"
#include "otlp_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    otlp_signal sig = (otlp_signal)(data[0] % OTLP_SIGNAL_COUNT);
    size_t items = 0, cap = otlp_wire_spans_cap(size - 1);
    otlp_wire_spans notes = {.v = malloc(cap * sizeof(otlp_wire_span)), .cap = cap};
    if (notes.v == NULL)
        return 0;
    if (!otlp_wire_scan(sig, data + 1, size - 1, &items, &notes)) {
        free(notes.v);
        return 0;
    }
    arena *a = arena_new(0); /* no cap: the scan is checked against the format, not a memory limit */
    if (a == NULL)
        abort();
    otlp_request req;
    char err[160];
    if (otlp_decode(sig, OTLP_PROTOBUF, data + 1, size - 1, a, &req, err, sizeof(err)) != 0)
        abort(); /* the scan passed what the decoder refuses */
    size_t decoded = req.items;
    otlp_validate(&req);
    if (req.rejected != 0 || req.items != items || decoded != items)
        abort(); /* the scan passed an item the validator drops, or miscounted */
    if (sig == OTLP_TRACES ? !wire_notes_match(data + 1, &notes, &req) : notes.n != 0)
        abort(); /* a note differs from the decoded span */
    free(notes.v);
    arena_free(a);
    return 0;
}
