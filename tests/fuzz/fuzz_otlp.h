/* fuzz_otlp: the body shared by the OTLP fuzz targets: decode (signal from
 * the first input byte) with a 64 MiB arena, validate, re-encode as JSON and
 * check the JSON decodes again, then free. Header-only: each target is one
 * translation unit. */
#ifndef FUZZ_OTLP_H
#define FUZZ_OTLP_H

#include <stdlib.h>

#include "otlp.h"

static inline void fuzz_otlp_run(otlp_encoding enc, const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    otlp_signal sig = (otlp_signal)(data[0] % OTLP_SIGNAL_COUNT);
    arena *a = arena_new((size_t)64 << 20);
    if (a == NULL)
        return;
    otlp_request req;
    char err[160];
    if (otlp_decode(sig, enc, data + 1, size - 1, a, &req, err, sizeof(err)) == 0) {
        otlp_validate(&req);
        if (otlp_count_items(sig, req.msg) != req.items)
            abort();
        buf out = BUF_INIT;
        if (otlp_encode_json(req.msg, &out) == 0) {
            /* Whatever we accept, our own JSON must decode back. */
            arena *b = arena_new(0);
            otlp_request again;
            if (b != NULL &&
                otlp_decode(sig, OTLP_JSON, (const uint8_t *)out.data, out.len, b, &again, err,
                            sizeof(err)) != 0)
                abort();
            arena_free(b);
        }
        buf_free(&out);
    }
    arena_free(a);
}

#endif
