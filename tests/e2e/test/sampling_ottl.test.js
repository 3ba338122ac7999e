// Tail sampling with ottl_condition and RE2 regexes, end to end: the
// OpenTelemetry JS SDK sends traces over OTLP/HTTP protobuf to a gateway whose
// pipeline (selected by an RE2 `match` regex) samples with
//   - ottl_condition: a span on a versioned users route (IsMatch with \d)
//     lasting over 200 ms (end - start), or a span event "exception" whose
//     type matches (?i)timeout;
//   - string_attribute with an RE2 regex ((?i), unanchored);
//   - string_attribute with (a+)+$ against a 100 KB value of a's (linear in
//     RE2; a backtracking engine would hang the gateway).
// Checked on the file backend: exactly the traces the policies name are kept,
// whole; the others are absent; the policies' kept counts agree. The same
// policies in ours and in the Collector's config shape.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { Gateway, sleep } from '../lib/gateway.js';
import { RUN_ID, SeededIds, spansByTrace } from '../lib/sdkdata.js';

const PIPELINE = 'shop';
const SPAN_COND =
  `'IsMatch(attributes["http.route"], "^/api/v\\\\d+/users") and end_time_unix_nano - start_time_unix_nano > 200000000'`;
const EVENT_COND = `'name == "exception" and IsMatch(attributes["exception.type"], "(?i)timeout")'`;
const LOCKS = `key: db.statement, values: ['(?i)^select .* for update'], enabled_regex_matching: true`;
const EVIL = `key: q, values: ['(a+)+$'], enabled_regex_matching: true`;
// The same policies in ours (settings beside name and type) and in the
// OpenTelemetry Collector's shape (a tail_sampling block, each policy's
// settings under its type).
const SETS = {
  ours: `
    decision_wait: 1s
    policies:
      - name: ottl
        type: ottl_condition
        error_mode: ignore
        span: [${SPAN_COND}]
        spanevent: [${EVENT_COND}]
      - {name: locks, type: string_attribute, ${LOCKS}}
      - {name: evil, type: string_attribute, ${EVIL}}`,
  collector: `
    tail_sampling:
      decision_wait: 1s
      policies:
        - name: ottl
          type: ottl_condition
          ottl_condition: {error_mode: ignore, span: [${SPAN_COND}], spanevent: [${EVENT_COND}]}
        - {name: locks, type: string_attribute, string_attribute: {${LOCKS}}}
        - {name: evil, type: string_attribute, string_attribute: {${EVIL}}}`,
};
const config =
  (set) =>
  ({ grpcPort, httpPort, adminPort, dataDir }) => `
workers: 2
admin: 127.0.0.1:${adminPort}
listeners:
  - {name: default, grpc: 127.0.0.1:${grpcPort}, http: 127.0.0.1:${httpPort}, auth: none, max_request_bytes: 4MiB}
backends:
  local: {type: file, dir: ${dataDir}}
sampling:
  tail:${set}
pipelines:
  - {name: ${PIPELINE}, signals: [traces], backends: [local], sampling: tail, match: {service.name: {regex: 'shop-\\d+'}}}
`;

const PER_KIND = 20;
const EVIL_LEN = 100_000;

/** SDK spans of one service: Map(traceId -> {kind, spans}). */
function makeTraces(service, seed) {
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'e2e.run': RUN_ID }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
    idGenerator: new SeededIds(seed),
  });
  const tracer = provider.getTracer('e2e-sampling-ottl');
  const sec = 1_700_000_000;
  const at = (ms) => [sec + Math.floor(ms / 1000), (ms % 1000) * 1_000_000];
  const kinds = new Map();
  // A root (lasting rootMs, with rootAttrs) and one child shaped by `child`.
  const make = (kind, rootMs, rootAttrs, child) => {
    const root = tracer.startSpan(`${kind} root`, { root: true, startTime: at(0), attributes: rootAttrs });
    const c = tracer.startSpan(`${kind} child`, { startTime: at(1) }, trace.setSpan(ROOT_CONTEXT, root));
    child?.(c);
    c.end(at(2));
    root.end(at(rootMs));
    kinds.set(root.spanContext().traceId, kind);
  };
  const exception = (type) => (c) => c.addEvent('exception', { 'exception.type': type }, at(1));
  const stmt = (s) => (c) => c.setAttribute('db.statement', s);
  for (let i = 0; i < PER_KIND; i++) {
    make('slow-users', 300, { 'http.route': '/api/v2/users/{id}' });
    make('fast-users', 50, { 'http.route': '/api/v12/users' });
    make('slow-orders', 300, { 'http.route': '/api/v2/orders' });
    make('slow-unversioned', 300, { 'http.route': '/api/vx/users' });
    make('timeout-event', 10, {}, exception('net.ReadTimeoutError'));
    make('other-event', 10, {}, exception('ValueError'));
    make('log-event', 10, {}, (c) => c.addEvent('log', { 'exception.type': 'timeout' }, at(1)));
    make('select-update', 10, {}, stmt('SELECT * FROM stock WHERE id = 1 FOR UPDATE'));
    make('select-plain', 10, {}, stmt('select * from stock'));
  }
  make('evil-match', 10, { q: 'a'.repeat(EVIL_LEN) });
  make('evil-miss', 10, { q: 'a'.repeat(EVIL_LEN) + '!' });
  const traces = new Map();
  for (const [id, kind] of kinds) traces.set(id, { kind, spans: [] });
  for (const s of mem.getFinishedSpans()) traces.get(s.spanContext().traceId).spans.push(s);
  return traces;
}

const KEPT = { 'slow-users': 'ottl', 'timeout-event': 'ottl', 'select-update': 'locks', 'evil-match': 'evil' };

async function exportAll(exporter, spans, per = 200) {
  for (let i = 0; i < spans.length; i += per) {
    const r = await new Promise((resolve) => exporter.export(spans.slice(i, i + per), resolve));
    assert.equal(r.code, ExportResultCode.SUCCESS, String(r.error?.stack || r.error));
  }
}

function spansInFile(gw) {
  return spansByTrace(gw.readSignal('traces'));
}

for (const [shape, set] of Object.entries(SETS)) {
  describe(`tail sampling with ottl_condition and RE2 regexes (${shape} shape)`, () => {
    let gw;
    let exporter;
    before(async () => {
      gw = await Gateway.start({ config: config(set) });
      exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${gw.httpPort}/v1/traces`, timeoutMillis: 10_000, keepAlive: false });
    });
    after(async () => {
      await exporter?.shutdown();
      await gw?.stop();
    });

    it('keeps exactly the traces the conditions and regexes name, whole', async () => {
      const shop = makeTraces('shop-7', 0x0771_0001);
      const unrouted = makeTraces('shop-x', 0x0771_0002); // `shop-\d+` does not match: no pipeline takes it
      await exportAll(exporter, [...shop.values()].flatMap((t) => t.spans));
      await exportAll(exporter, [...unrouted.values()].flatMap((t) => t.spans)); // own requests: counted as unrouted
      const deadline = performance.now() + 15_000;
      for (;;) {
        const n = await gw.metricSum('otlp_gateway_sampler_traces_in_flight', { pipeline: PIPELINE });
        const decided = await gw.metricSum('otlp_gateway_sampler_traces_total', { pipeline: PIPELINE });
        if (n === 0 && decided === shop.size) break;
        assert.ok(performance.now() < deadline, `undecided: ${n} in flight, ${decided} decided\n${gw.logTail()}`);
        await sleep(100);
      }
      const found = spansInFile(gw);
      const kept = {};
      for (const [id, t] of shop) {
        const got = found.get(id);
        if (KEPT[t.kind]) {
          assert.ok(got, `${t.kind} trace ${id} was dropped`);
          assert.deepEqual([...got].sort(), t.spans.map((s) => s.spanContext().spanId).sort(), `${t.kind} ${id}: spans differ`);
          kept[KEPT[t.kind]] = (kept[KEPT[t.kind]] ?? 0) + 1;
        } else {
          assert.equal(got, undefined, `${t.kind} trace ${id} was kept`);
        }
      }
      for (const id of unrouted.keys()) assert.equal(found.get(id), undefined, 'a shop-x trace was routed');
      assert.deepEqual(kept, { ottl: 2 * PER_KIND, locks: PER_KIND, evil: 1 });
      for (const [policy, n] of Object.entries(kept))
        assert.equal(await gw.metricSum('otlp_gateway_sampler_policy_kept_traces_total', { pipeline: PIPELINE, policy }), n, policy);
      assert.equal(await gw.metricSum('otlp_gateway_unrouted_items_total'), [...unrouted.values()].reduce((n, t) => n + t.spans.length, 0));
    });
  });
}
