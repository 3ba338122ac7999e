/* libFuzzer, differential: a trace request the wire scan passes goes into
 * one tail sampler decoded (sampler_add) and into another as bytes
 * (sampler_add_wire). The bytes path reads the trace id, parent, times and
 * status itself, so both samplers must buffer the same spans and decide the
 * same: every policy below, and quiet_after, turns on one of those fields. The bytes a
 * sampler emits may differ (it keeps a span as it came, the other encodes
 * it again), but each emitted request must decode, with the same number of
 * spans on both sides. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_node.h"
#include "otlp.h"
#include "otlp_wire.h"
#include "sampler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* quiet_after: a trace whose root has come is decided 100 ms after its
 * last span, the others at decision_wait, so the parent field counts too. */
static const char policies[] = "{decision_wait: 10s, quiet_after: 100ms, policies: ["
                               "{name: e, type: status_code, status_codes: [ERROR, OK]},"
                               "{name: l, type: latency, threshold_ms: 5},"
                               "{name: n, type: span_count, min_spans: 3},"
                               "{name: p, type: probabilistic, sampling_percentage: 20}]}";

typedef struct tally {
    size_t emits, spans;
} tally;

static int emit(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans, uint64_t *done,
                uint64_t *full)
{
    (void)tenant;
    (void)full;
    tally *t = data;
    arena *a = arena_new(0);
    otlp_request r;
    char err[160];
    if (a == NULL)
        abort();
    if (otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, req, len, a, &r, err, sizeof(err)) != 0 || r.items != spans)
        abort(); /* the sampler emitted a request that does not decode to its own span count */
    arena_free(a);
    t->emits++;
    t->spans += spans;
    *done = 1;
    return 0;
}

static sampler *make(config_doc *doc)
{
    char err[256];
    sampler *s = sampler_new(config_doc_root(doc), 1, err, sizeof(err));
    if (s == NULL || !sampler_wire_ok(s))
        abort(); /* the fixed configuration above is valid and needs no decoding */
    sampler_set_destinations(s, 1);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t items = 0;
    if (!otlp_wire_scan(OTLP_TRACES, data, size, &items))
        return 0;
    arena *a = arena_new(0);
    char err[256];
    config_doc *doc = config_doc_parse("fuzz", policies, strlen(policies), err, sizeof(err));
    if (a == NULL || doc == NULL)
        abort();
    otlp_request req;
    if (otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, data, size, a, &req, err, sizeof(err)) != 0)
        abort(); /* fuzz_otlp_wire's contract */
    sampler *dec = make(doc), *wire = make(doc);
    const uint64_t t0 = 1000000000000ull;
    buf late_dec = BUF_INIT, late_wire = BUF_INIT;
    /* Twice: the second time the spans are late for the traces decided. */
    for (int round = 0; round < 2; round++) {
        uint64_t now = t0 + (uint64_t)round * 2000000000ull;
        size_t n_dec = sampler_add(dec, 0, req.msg, "t", now, &late_dec);
        size_t n_wire = sampler_add_wire(wire, 0, data, size, "t", now, &late_wire);
        if (n_dec != n_wire)
            abort(); /* the two ways buffered different spans */
        tally td = {0}, tw = {0};
        sampler_tick(dec, 0, now + 1000000000ull, emit, &td);
        sampler_tick(wire, 0, now + 1000000000ull, emit, &tw);
        if (td.emits != tw.emits || td.spans != tw.spans)
            abort(); /* decided differently (or at another time) */
        sampler_flush(dec, 0, now + 1500000000ull, emit, &td);
        sampler_flush(wire, 0, now + 1500000000ull, emit, &tw);
        if (td.emits != tw.emits || td.spans != tw.spans)
            abort(); /* decided differently */
    }
    if ((late_dec.len == 0) != (late_wire.len == 0))
        abort(); /* late spans followed different decisions */
    buf_free(&late_dec);
    buf_free(&late_wire);
    sampler_free(dec);
    sampler_free(wire);
    config_doc_free(doc);
    arena_free(a);
    return 0;
}
