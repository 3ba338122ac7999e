/* Shared by test_otlp and fuzz_otlp_wire: whether what otlp_wire_scan
 * noted of a traces request's spans (otlp_wire_spans) is what the decoder
 * makes of the same bytes, span by span in order. The decoded request must
 * be valid (otlp_validate removed nothing). */
#ifndef GW_TESTS_WIRE_NOTES_H
#define GW_TESTS_WIRE_NOTES_H

#include <string.h>

#include "otlp.h"
#include "otlp_wire.h"
#include "trace_service.pb-c.h"

static inline int wire_notes_match(const uint8_t *data, const otlp_wire_spans *notes, const otlp_request *req)
{
    const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *tr = (const void *)req->msg;
    size_t k = 0;
    if (notes->n != req->items || notes->n > notes->cap)
        return 0;
    for (size_t r = 0; r < tr->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = tr->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++, k++) {
                const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[i];
                const otlp_wire_span *w = &notes->v[k];
                if (k >= notes->n || memcmp(data + w->trace_at, sp->trace_id.data, 16) != 0 ||
                    w->start != sp->start_time_unix_nano || w->end != sp->end_time_unix_nano ||
                    w->code != (sp->status != NULL ? (uint32_t)sp->status->code : 0) ||
                    w->root != (sp->parent_span_id.len == 0))
                    return 0;
            }
        }
    }
    return k == notes->n;
}

#endif
