// The OpenTelemetry Collector's tail_sampling block, pasted into a policy set
// (`tail_sampling:`), in the real gateway: it loads, and decides as the
// Collector does. The OpenTelemetry JS SDK makes seeded traces (errors,
// /health probes, internal-tier traces, plain ones) sent over OTLP/HTTP
// protobuf; the file backend must hold exactly the traces the Collector's
// rules keep: drop policies first, an invert_match match vetoes everything,
// errors kept, the rest by probabilistic with hash_salt (FNV-1a over the salt
// and the trace id, computed here independently), and an inverted sample alone
// does not keep a trace another policy said no to. Then block_on_overflow: a
// full shard answers 503 with Retry-After instead of deciding early, and
// takes spans again once decision_wait has made room. A bad key in a pasted
// block is a located error from --check-config.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { probabilisticKeeps } from '../lib/cluster.js';
import { Gateway, httpRequest, runGatewayOnce } from '../lib/gateway.js';
import { SeededIds } from '../lib/sdkdata.js';

const PASTED = `
  pasted:
    max_bytes: 64MiB
    tail_sampling:
      decision_wait: 1s
      num_traces: 10000
      expected_new_traces_per_sec: 500
      decision_cache: {sampled_cache_size: 10000, non_sampled_cache_size: 10000}
      policies:
        - name: no-health
          type: drop
          drop:
            drop_sub_policy:
              - {name: health, type: string_attribute, string_attribute: {key: http.route, values: [/health]}}
        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
        - name: not-internal
          type: string_attribute
          string_attribute: {key: tier, values: [internal], invert_match: true}
        - {name: some, type: probabilistic, probabilistic: {sampling_percentage: 25, hash_salt: fleet-a}}
`;

const config =
  (set, workers) =>
  ({ grpcPort, httpPort, adminPort, dataDir }) => `
workers: ${workers}
admin: 127.0.0.1:${adminPort}
listeners:
  - {name: default, grpc: 127.0.0.1:${grpcPort}, http: 127.0.0.1:${httpPort}, auth: none, max_request_bytes: 4MiB}
backends:
  local: {type: file, dir: ${dataDir}}
sampling:${set}
pipelines:
  - {name: sampled, signals: [traces], backends: [local], sampling: ${set.trim().split(':')[0]}}
`;

/** Seeded SDK traces of each kind; traceId -> {kind, spans}. */
function makeTraces() {
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'collector-compat-e2e' }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
    idGenerator: new SeededIds(0x5eed0c01),
  });
  const tracer = provider.getTracer('e2e-collector-compat');
  const kinds = new Map();
  const make = (kind) => {
    const root = tracer.startSpan(`${kind} root`, { root: true });
    if (kind === 'health') root.setAttribute('http.route', '/health');
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    for (let i = 0; i < 2; i++) {
      const c = tracer.startSpan(`${kind} child ${i}`, {}, ctx);
      if (kind.includes('error') && i === 1) c.setStatus({ code: SpanStatusCode.ERROR });
      if (kind.startsWith('internal') && i === 0) c.setAttribute('tier', 'internal');
      c.end();
    }
    root.end();
    kinds.set(root.spanContext().traceId, kind);
  };
  for (let i = 0; i < 20; i++) make('error');
  for (let i = 0; i < 20; i++) make('health');
  for (let i = 0; i < 20; i++) make('internal-error');
  for (let i = 0; i < 400; i++) make('plain');
  const traces = new Map();
  for (const [id, kind] of kinds) traces.set(id, { kind, spans: [] });
  for (const s of mem.getFinishedSpans()) traces.get(s.spanContext().traceId).spans.push(s);
  return traces;
}

/** The Collector's verdict for a trace of this kind (see the header). */
function collectorKeeps(id, kind) {
  if (kind === 'health' || kind.startsWith('internal')) return false;
  return kind === 'error' || probabilisticKeeps(id, 25, 'fleet-a');
}

function keptTraces(gw) {
  const found = new Map();
  for (const line of gw.readSignal('traces'))
    for (const rs of line.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const sp of ss.spans ?? []) found.set(sp.traceId, (found.get(sp.traceId) ?? 0) + 1);
  return found;
}

describe('a pasted Collector tail_sampling block', () => {
  let gw;
  before(async () => {
    gw = await Gateway.start({ config: config(PASTED, 2) });
  });
  after(async () => {
    await gw?.stop();
  });

  it('keeps exactly the traces the Collector would', async () => {
    const traces = makeTraces();
    const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${gw.httpPort}/v1/traces`, keepAlive: false });
    const all = [...traces.values()].flatMap((t) => t.spans);
    for (let i = 0; i < all.length; i += 300) {
      const r = await new Promise((resolve) => exporter.export(all.slice(i, i + 300), resolve));
      assert.equal(r.code, ExportResultCode.SUCCESS, String(r.error?.stack || r.error));
    }
    await exporter.shutdown();
    await gw.waitSamplerIdle('sampled');
    const found = keptTraces(gw);
    let plainKept = 0;
    for (const [id, t] of traces) {
      const want = collectorKeeps(id, t.kind);
      assert.equal(found.has(id), want, `${t.kind} trace ${id}: kept ${found.has(id)}, the Collector: ${want}`);
      if (want) assert.equal(found.get(id), t.spans.length, `${t.kind} trace ${id}: not whole`);
      if (want && t.kind === 'plain') plainKept++;
    }
    // The seeded ids give a fixed share; it is a real mix of both outcomes.
    assert.ok(plainKept > 40 && plainKept < 160, `probabilistic 25% kept ${plainKept} of 400`);
    const dropped = await gw.metricSum('otlp_gateway_sampler_policy_decisions_total', {
      pipeline: 'sampled',
      policy: 'no-health',
      outcome: 'sampled',
    });
    assert.equal(dropped, 20);
  });
});

/** One single-span trace as OTLP/HTTP JSON. */
function jsonTrace(n) {
  const id = n.toString(16).padStart(32, 'c');
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'block-e2e' } }] },
        scopeSpans: [
          { spans: [{ traceId: id, spanId: '00000000000000a1', name: 'op', startTimeUnixNano: '1', endTimeUnixNano: '2' }] },
        ],
      },
    ],
  });
}

const post = (gw, n) =>
  httpRequest({
    port: gw.httpPort,
    method: 'POST',
    path: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    body: jsonTrace(n),
  });

describe('block_on_overflow', () => {
  let gw;
  before(async () => {
    const set = `
  blocking:
    tail_sampling:
      decision_wait: 2s
      num_traces: 4
      block_on_overflow: true
      policies: [{name: all, type: always_sample}]
`;
    gw = await Gateway.start({ config: config(set, 1) });
  });
  after(async () => {
    await gw?.stop();
  });

  it('answers 503 with Retry-After while the shard is full, then takes spans again', async () => {
    for (let n = 1; n <= 4; n++) assert.equal((await post(gw, n)).status, 200);
    const full = await post(gw, 5);
    assert.equal(full.status, 503, full.body.toString());
    assert.ok(Number(full.headers['retry-after']) >= 1, JSON.stringify(full.headers));
    assert.equal(await gw.metricSum('otlp_gateway_sampler_evictions_total'), 0); // nothing decided early
    await gw.waitSamplerIdle('sampled');
    assert.equal((await post(gw, 5)).status, 200);
    assert.equal(keptTraces(gw).size, 4);
  });
});

describe('a pasted block with a mistake', () => {
  it('is a located error naming the key', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-collector-'));
    const file = path.join(dir, 'gateway.yaml');
    const yaml = config(PASTED.replace('num_traces: 10000', 'num_trace: 10000'), 1)({
      grpcPort: 1,
      httpPort: 2,
      adminPort: 3,
      dataDir: dir,
    });
    fs.writeFileSync(file, yaml);
    const r = await runGatewayOnce(['--check-config', file]);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.notEqual(r.code, 0);
    const line = yaml.split('\n').findIndex((l) => l.includes('num_trace:')) + 1;
    assert.match(r.output, new RegExp(`gateway\\.yaml:${line}:\\d+: sampling\\.pasted\\.tail_sampling\\.num_trace: unknown key`));
  });
});
