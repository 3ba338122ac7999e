/* sampler_weight: what a kept span says about how it was sampled (internal
 * to routing/), written where sampled traces are encoded for output.
 *
 * - the sample rate as Honeycomb's `SampleRate` span attribute (integer):
 *   an incoming `sampleRate` / `SampleRate` attribute (Honeycomb reads the
 *   first, then the second), else the adjusted count of an incoming `th`, is
 *   multiplied by the tail rate and replaced, as Refinery does;
 * - the OpenTelemetry rejection threshold `th` in the span's tracestate
 *   (`ot=th:...`, OTel "TraceState: Probability Sampling"): the tail
 *   decision is independent of the trace's randomness, so probabilities
 *   multiply (the spec's proportional downstream sampler): the new th is
 *   that of p_in / rate, p_in from the incoming th (else 1 / an incoming
 *   sample-rate attribute, else 1), at 4 hex digits of precision as the
 *   spec recommends; the `ot` member moves first (rv, th, then the rest);
 * - the Collector's `tailsampling.policy` / `tailsampling.composite_policy`
 *   / `tailsampling.cached_decision` attributes, on the instrumentation
 *   scope as the tailsamplingprocessor puts them.
 * Spans are rewritten field by field on their protobuf bytes, never decoded. */
#ifndef GW_SAMPLER_WEIGHT_H
#define GW_SAMPLER_WEIGHT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sw_opts {
    int sample_rate; /* write SampleRate */
    int threshold;   /* write ot th */
} sw_opts;

/* The span (its protobuf encoding, span[0..len)) rewritten for a trace
 * kept at `rate`: its length, and the bytes into out unless out is NULL
 * (out needs sw_span_max(len) bytes). */
size_t sw_span(const sw_opts *o, double rate, const uint8_t *span, size_t len, uint8_t *out);
size_t sw_span_max(size_t len);

/* A ScopeSpans context (fields 1 and 3 of ScopeSpans, as the sampler keeps
 * it) with KeyValues `kv` (framed as InstrumentationScope field 3) added to
 * its scope's attributes: length, and bytes into out unless NULL. */
size_t sw_scope(const uint8_t *ctx, size_t len, const uint8_t *kv, size_t kvlen, uint8_t *out);

/* A KeyValue {key, string or bool value} framed as field `field`: length,
 * bytes into out unless NULL. */
size_t sw_kv_str(unsigned field, const char *key, const char *val, uint8_t *out);
size_t sw_kv_bool(unsigned field, const char *key, int val, uint8_t *out);

/* Threshold arithmetic (exposed for tests): the 56-bit rejection threshold
 * for probability p at 4 significant hex digits (the spec's algorithm),
 * its th text (trailing zeros dropped, "0" for 0; out >= 15 bytes), and
 * back (-1 when not 1-14 hex digits). */
uint64_t sw_threshold(double p);
size_t sw_th_text(uint64_t th, char *out);
int sw_th_parse(const char *s, size_t n, uint64_t *th);

/* A span's tracestate with the ot th for a trace kept with probability
 * p_tail; in[0..n) the incoming one. Returns the new length (<= n + 40),
 * or (size_t)-1 to leave it unchanged (a th that does not parse). */
size_t sw_tracestate(const char *in, size_t n, double p_tail, double p_attr, char *out);

#endif
