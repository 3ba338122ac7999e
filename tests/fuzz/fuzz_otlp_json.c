/* libFuzzer: OTLP/JSON request bodies. The first byte picks the signal;
 * the rest is decoded, validated and re-encoded as the server would. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_otlp_run(OTLP_JSON, data, size);
    return 0;
}
