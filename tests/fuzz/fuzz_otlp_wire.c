/* libFuzzer, differential: the one-pass wire scan (otlp_wire.h) against the
 * decoder. The first byte picks the signal. Whenever the scan lets bytes
 * through, the decoder must accept them, the validator must remove nothing
 * and both must count the same items; otherwise the fast path would
 * acknowledge what the decoding path refuses, or count differently. */
#include <stdint.h>
#include <stdlib.h>

#include "otlp.h"
#include "otlp_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    otlp_signal sig = (otlp_signal)(data[0] % OTLP_SIGNAL_COUNT);
    size_t items = 0;
    if (!otlp_wire_scan(sig, data + 1, size - 1, &items))
        return 0;
    arena *a = arena_new(0); /* no cap: the scan is checked against the format, not a memory limit */
    if (a == NULL)
        return 0;
    otlp_request req;
    char err[160];
    if (otlp_decode(sig, OTLP_PROTOBUF, data + 1, size - 1, a, &req, err, sizeof(err)) != 0)
        abort(); /* the scan passed what the decoder refuses */
    size_t decoded = req.items;
    otlp_validate(&req);
    if (req.rejected != 0 || req.items != items || decoded != items)
        abort(); /* the scan passed an item the validator drops, or miscounted */
    arena_free(a);
    return 0;
}
