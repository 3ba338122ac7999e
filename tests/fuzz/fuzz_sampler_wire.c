/* libFuzzer, differential: a trace request the wire scan passes goes into
 * one tail sampler decoded (sampler_add) and into another as bytes
 * (sampler_add_wire), and into a third as bytes with what the scan noted of
 * each span. The bytes paths take the trace id, parent, times and status
 * from the bytes or the notes, so all three samplers must buffer the same
 * spans and decide the same: every policy below, and quiet_after, turns on
 * one of those fields. The bytes a sampler emits may differ (the bytes
 * paths keep a span as it came, the other encodes it again), but each
 * emitted request must decode, with the same number of spans on all
 * sides. */
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
    size_t items = 0, cap = otlp_wire_spans_cap(size);
    otlp_wire_spans notes = {.v = malloc(cap * sizeof(otlp_wire_span)), .cap = cap};
    if (notes.v == NULL)
        abort();
    if (!otlp_wire_scan(OTLP_TRACES, data, size, &items, &notes)) {
        free(notes.v);
        return 0;
    }
    arena *a = arena_new(0);
    char err[256];
    config_doc *doc = config_doc_parse("fuzz", policies, strlen(policies), err, sizeof(err));
    if (a == NULL || doc == NULL)
        abort();
    otlp_request req;
    if (otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, data, size, a, &req, err, sizeof(err)) != 0 || notes.n != items)
        abort(); /* fuzz_otlp_wire's contract */
    /* The bytes go in twice: read by the sampler, and with the scan's notes. */
    sampler *dec = make(doc), *wire[2] = {make(doc), make(doc)};
    const uint64_t t0 = 1000000000000ull;
    buf late_dec = BUF_INIT, late_wire[2] = {BUF_INIT, BUF_INIT};
    /* Twice: the second time the spans are late for the traces decided. */
    for (int round = 0; round < 2; round++) {
        uint64_t now = t0 + (uint64_t)round * 2000000000ull;
        size_t n_dec = sampler_add(dec, 0, req.msg, "t", now, &late_dec);
        tally td = {0};
        sampler_tick(dec, 0, now + 1000000000ull, emit, &td);
        tally tf = td;
        sampler_flush(dec, 0, now + 1500000000ull, emit, &tf);
        for (int w = 0; w < 2; w++) {
            size_t n_wire = sampler_add_wire(wire[w], 0, data, size, w ? notes.v : NULL, w ? notes.n : 0, "t", now,
                                             &late_wire[w]);
            if (n_dec != n_wire)
                abort(); /* the two ways buffered different spans */
            tally tw = {0};
            sampler_tick(wire[w], 0, now + 1000000000ull, emit, &tw);
            if (td.emits != tw.emits || td.spans != tw.spans)
                abort(); /* decided differently (or at another time) */
            sampler_flush(wire[w], 0, now + 1500000000ull, emit, &tw);
            if (tf.emits != tw.emits || tf.spans != tw.spans)
                abort(); /* decided differently */
        }
    }
    for (int w = 0; w < 2; w++) {
        if ((late_dec.len == 0) != (late_wire[w].len == 0))
            abort(); /* late spans followed different decisions */
        buf_free(&late_wire[w]);
        sampler_free(wire[w]);
    }
    buf_free(&late_dec);
    sampler_free(dec);
    config_doc_free(doc);
    arena_free(a);
    free(notes.v);
    return 0;
}
