// Refinery's rules sampler and weights on kept spans, end to end: the
// OpenTelemetry JS SDK makes a seeded mixed workload (error traces, health
// checks, checkout and other requests, and requests head-sampled upstream
// at 1 in 2) and sends it over OTLP/HTTP protobuf to a gateway whose traces
// pipeline has a `rules` policy with sample_rate_attribute,
// trace_state_threshold and record_policy (health checks are dropped by a
// `matches` regex in Go's syntax, as Refinery's: (?i) and \w). Checked on
// the file backend: kept traces are complete and dropped ones absent; each
// rule keeps its
// share within stated bounds; every kept span carries the rate it was kept
// at (SampleRate, composed with the incoming sampleRate) and the matching
// OpenTelemetry th in its tracestate, and its scope names the policy.
//
// Randomness: trace ids come from a seeded generator and the sampler's
// 1-in-N choices are a hash of the trace id, so every run keeps the same
// traces; the bounds below hold for any seed with the stated probability.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ROOT_CONTEXT, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { ExportResultCode, TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { exportAll } from '../lib/sinks.js';
import { Gateway, sleep } from '../lib/gateway.js';
import { RUN_ID, SeededIds } from '../lib/sdkdata.js';

const PIPELINE = 'sampled';
const config = ({ grpcPort, httpPort, adminPort, dataDir }) => `
workers: 2
admin: 127.0.0.1:${adminPort}
listeners:
  - {name: default, grpc: 127.0.0.1:${grpcPort}, http: 127.0.0.1:${httpPort}, auth: none, max_request_bytes: 4MiB}
backends:
  local: {type: file, dir: ${dataDir}}
sampling:
  refinery:
    decision_wait: 1s
    sample_rate_attribute: true
    trace_state_threshold: true
    record_policy: true
    policies:
      - name: rules
        type: rules
        rules:
          - {name: errors, sample_rate: 1, conditions: [{field: error, operator: '=', value: true}]}
          - {name: health, drop: true, conditions: [{field: http.route, operator: matches, value: '(?i)^/HEALTH\\w$'}]}
          - {name: checkout, sample_rate: 5, conditions: [{field: http.route, operator: starts-with, value: /checkout}]}
          - {name: search, sample_rate: 4, scope: span, conditions: [{field: http.route, operator: '=', value: /search},
                                                                    {field: span.kind, operator: '=', value: server}]}
          - {name: rest, sample_rate: 10}
pipelines:
  - {name: ${PIPELINE}, signals: [traces], backends: [local], sampling: refinery}
`;

// What each kind of trace should get: its rule's rate, and the SampleRate
// and th written on its kept spans (th: the spec's 4-digit thresholds for
// 1 in 1, 5, 10; 1/2 x 1/4 = 1/8 for the head-sampled searches).
const KINDS = {
  error: { n: 100, rate: 1, sampleRate: 1, th: '0' },
  health: { n: 300, rate: 0 },
  checkout: { n: 1000, rate: 5, sampleRate: 5, th: 'cccd' },
  search: { n: 600, rate: 4, sampleRate: 8, th: 'e' },
  other: { n: 1000, rate: 10, sampleRate: 10, th: 'e666' },
};

/** Spans made by the real SDK: Map(traceId -> {kind, spans}). */
function makeTraces() {
  const mem = new InMemorySpanExporter();
  const ids = new SeededIds(0x7e41e001);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'refinery-e2e', 'e2e.run': RUN_ID }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
    idGenerator: ids,
  });
  const tracer = provider.getTracer('e2e-refinery');
  const kinds = new Map();
  const make = (kind) => {
    let parent = ROOT_CONTEXT;
    const attributes = {};
    if (kind === 'search') {
      // Head-sampled upstream at 1 in 2: a remote parent with ot=th:8, and
      // the Honeycomb weight on the span.
      parent = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: ids.generateTraceId(),
        spanId: ids.generateSpanId(),
        traceFlags: TraceFlags.SAMPLED,
        isRemote: true,
        traceState: new TraceState('ot=th:8,vendor=v1'),
      });
      attributes.sampleRate = 2;
    }
    const route = { error: '/orders', health: '/healthz', checkout: '/checkout/pay', search: '/search', other: '/orders' }[
      kind
    ];
    const root = tracer.startSpan(`${kind} root`, { kind: 1 /* SERVER */, attributes: { ...attributes, 'http.route': route } }, parent);
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    for (let i = 0; i < 2; i++) {
      const c = tracer.startSpan(`${kind} child ${i}`, {}, ctx);
      if (kind === 'error' && i === 1) c.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
      c.end();
    }
    root.end();
    kinds.set(root.spanContext().traceId, kind);
  };
  for (const [kind, k] of Object.entries(KINDS)) for (let i = 0; i < k.n; i++) make(kind);
  const traces = new Map();
  for (const [id, kind] of kinds) traces.set(id, { kind, spans: [] });
  for (const s of mem.getFinishedSpans()) traces.get(s.spanContext().traceId).spans.push(s);
  return traces;
}


const attr = (attrs, key) => (attrs ?? []).find((a) => a.key === key)?.value;
const intOf = (v) => (v?.intValue !== undefined ? Number(v.intValue) : undefined);

/** traceId (hex) -> [{span, scope}] written by the file backend. */
function spansInFile(gw) {
  const found = new Map();
  for (const line of gw.readSignal('traces'))
    for (const rs of line.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const sp of ss.spans ?? []) {
          if (!found.has(sp.traceId)) found.set(sp.traceId, []);
          found.get(sp.traceId).push({ span: sp, scope: ss.scope });
        }
  return found;
}

describe('Refinery rules sampler with weights', () => {
  let gw;
  let exporter;
  before(async () => {
    gw = await Gateway.start({ config });
    exporter = new OTLPTraceExporter({
      url: `http://127.0.0.1:${gw.httpPort}/v1/traces`,
      timeoutMillis: 10_000,
      keepAlive: false,
    });
  });
  after(async () => {
    await exporter?.shutdown();
    await gw?.stop();
  });

  it('keeps each rule\'s share of whole traces and writes SampleRate and th on every kept span', async () => {
    const traces = makeTraces();
    await exportAll(exporter, [...traces.values()].map((t) => t.spans));
    await sleep(1200); // decision_wait
    await gw.waitSamplerIdle(PIPELINE);
    const found = spansInFile(gw);
    assert.ok(found.size > 0, gw.logTail());

    const kept = Object.fromEntries(Object.keys(KINDS).map((k) => [k, 0]));
    for (const [id, t] of traces) {
      const got = found.get(id) ?? [];
      if (got.length === 0) continue;
      kept[t.kind]++;
      const want = KINDS[t.kind];
      // complete: every span of the trace, once
      assert.deepEqual(
        got.map((g) => g.span.spanId).sort(),
        t.spans.map((s) => s.spanContext().spanId).sort(),
        `${t.kind} trace ${id}: spans differ`,
      );
      for (const { span, scope } of got) {
        assert.equal(intOf(attr(span.attributes, 'SampleRate')), want.sampleRate, `${t.kind} span SampleRate`);
        assert.equal(attr(span.attributes, 'sampleRate'), undefined, 'the incoming sampleRate is replaced');
        const ts = span.traceState ?? '';
        const ot = ts.split(',').find((m) => m.startsWith('ot='));
        assert.equal(ot, `ot=th:${want.th}`, `${t.kind} span tracestate ${ts}`);
        if (t.kind === 'search') assert.equal(ts, `ot=th:${want.th},vendor=v1`, 'other tracestate members kept');
        assert.equal(attr(scope?.attributes, 'tailsampling.policy')?.stringValue, 'rules');
      }
    }
    // Every error trace kept, no health check kept.
    assert.equal(kept.error, KINDS.error.n);
    assert.equal(kept.health, 0);
    // 1-in-N rules: binomial(n, 1/N); the bound is 4 sd (a chance of about
    // 6e-5 each to fail for an arbitrary seed; with this seed the outcome is fixed).
    for (const kind of ['checkout', 'search', 'other']) {
      const { n, rate } = KINDS[kind];
      const mean = n / rate;
      const sd = Math.sqrt(n * (1 / rate) * (1 - 1 / rate));
      assert.ok(Math.abs(kept[kind] - mean) <= 4 * sd, `${kind}: kept ${kept[kind]} of ${n}, expected ${mean} ± ${4 * sd}`);
    }
    // The weights add back up to the traffic: sum of SampleRate over kept
    // checkout traces estimates the 1000 sent (within 4 sd x rate).
    const est = kept.checkout * KINDS.checkout.sampleRate;
    assert.ok(Math.abs(est - KINDS.checkout.n) <= 4 * Math.sqrt(1000 * 0.2 * 0.8) * 5, `checkout estimate ${est}`);
  });
});
