// The real OpenTelemetry JS SDK exporters against the real gateway: every
// transport (gRPC, http/protobuf, http/json) with and without gzip, for traces,
// metrics and logs. Each export must succeed, the file backend must hold
// exactly what the SDK sent (compared field by field in OTLP/JSON), and the
// gateway's own counters must have moved by the number of items.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ExportResultCode } from '@opentelemetry/core';
import { AggregationTemporality } from '@opentelemetry/sdk-metrics';

import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';

import { Gateway, METRIC, RECEIVED_METRIC } from '../lib/gateway.js';
import {
  expectedLogRecord,
  expectedMetric,
  expectedResource,
  expectedScope,
  expectedSpan,
  serviceNameOf,
} from '../lib/expect.js';
import { buildLogs, buildMetrics, buildSpans } from '../lib/sdkdata.js';
import { grpcCompressedFlags, startRecordingProxy } from '../lib/wire.js';

const TRANSPORTS = ['grpc', 'http/protobuf', 'http/json'];
const COMPRESSIONS = ['none', 'gzip'];

function makeExporter(port, transport, signal, compression) {
  const httpOpts = (p) => ({ url: `http://127.0.0.1:${port}/v1/${p}`, compression, timeoutMillis: 10_000 });
  const grpcOpts = { url: `http://127.0.0.1:${port}`, compression, timeoutMillis: 10_000 };
  const table = {
    grpc: {
      traces: () => new GrpcTraceExporter(grpcOpts),
      metrics: () => new GrpcMetricExporter(grpcOpts),
      logs: () => new GrpcLogExporter(grpcOpts),
    },
    'http/protobuf': {
      traces: () => new ProtoTraceExporter(httpOpts('traces')),
      metrics: () => new ProtoMetricExporter(httpOpts('metrics')),
      logs: () => new ProtoLogExporter(httpOpts('logs')),
    },
    'http/json': {
      traces: () => new JsonTraceExporter(httpOpts('traces')),
      metrics: () => new JsonMetricExporter(httpOpts('metrics')),
      logs: () => new JsonLogExporter(httpOpts('logs')),
    },
  };
  return table[transport][signal]();
}

const wireTransport = (transport) => (transport === 'grpc' ? 'grpc' : 'http');

/** exporter.export(items) as a promise of its ExportResult. */
function exportOnce(exporter, items) {
  return new Promise((resolve) => exporter.export(items, resolve));
}

/**
 * Export `items` through a fresh exporter, assert SUCCESS, assert the gateway's
 * received counter for (signal, transport) moved by `count` and its refused
 * counter did not move. Returns the file-backend lines added for `service`.
 */
async function exportAndCollect(gw, { transport, compression, signal, items, count, service }) {
  const received = RECEIVED_METRIC[signal];
  const refused = { traces: METRIC.refusedSpans, metrics: METRIC.refusedMetricPoints, logs: METRIC.refusedLogRecords }[signal];
  const labels = { transport: wireTransport(transport) };
  const before = await gw.metrics();
  const sum = (samples, name) =>
    samples.filter((s) => s.name === name && s.labels.transport === labels.transport).reduce((a, s) => a + s.value, 0);
  const linesBefore = gw.readSignal(signal).length;

  // The exporter talks to the gateway through a recording proxy, so the test
  // can check that the wire really carried the encoding and compression.
  const proxy = await startRecordingProxy(transport === 'grpc' ? gw.grpcPort : gw.httpPort);
  const exporter = makeExporter(proxy.port, transport, signal, compression);
  let result;
  try {
    result = await exportOnce(exporter, items);
  } finally {
    await exporter.shutdown();
    await proxy.close();
  }
  assert.equal(
    result.code,
    ExportResultCode.SUCCESS,
    `export of ${signal} over ${transport} (${compression}) failed: ${result.error?.stack || result.error}`,
  );

  assertWire(proxy.recorded(), transport, compression, signal);

  const afterMetrics = await gw.metrics();
  assert.equal(
    sum(afterMetrics, received) - sum(before, received),
    count,
    `${received}{transport="${labels.transport}"} should grow by ${count}`,
  );
  assert.equal(sum(afterMetrics, refused) - sum(before, refused), 0, `${refused} must not grow`);

  const lines = gw.readSignal(signal).slice(linesBefore);
  const key = { traces: 'resourceSpans', metrics: 'resourceMetrics', logs: 'resourceLogs' }[signal];
  const mine = lines.filter((l) => (l[key] || []).some((r) => serviceNameOf(r.resource) === service));
  assert.equal(mine.length, 1, `one export request must be one line in ${signal}.jsonl; got ${mine.length}`);
  assert.deepEqual(Object.keys(mine[0]), [key], `the line holds exactly one ${key} array`);
  return mine[0][key];
}

/** What the client sent used the transport's encoding and the requested compression. */
function assertWire(conns, transport, compression, signal) {
  const all = Buffer.concat(conns);
  assert.ok(all.length > 0, 'the exporter sent something');
  if (transport === 'grpc') {
    const flags = grpcCompressedFlags(all);
    assert.ok(flags.length >= 1, 'at least one gRPC message on the wire');
    assert.deepEqual([...new Set(flags)], [compression === 'gzip' ? 1 : 0], 'gRPC message compressed flag');
    return;
  }
  const text = all.toString('latin1');
  assert.match(text, new RegExp(`^POST /v1/${signal} HTTP/1\\.1\\r\\n`), 'HTTP/1.1 POST to the signal path');
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const ct = transport === 'http/json' ? 'application/json' : 'application/x-protobuf';
  assert.match(head, new RegExp(`\\r\\ncontent-type: ${ct.replace('/', '\\/')}`, 'i'), `Content-Type ${ct}`);
  const gz = /\r\ncontent-encoding: gzip/i.test(head);
  assert.equal(gz, compression === 'gzip', `Content-Encoding: gzip ${compression === 'gzip' ? 'present' : 'absent'}`);
}

/** Flatten [{resource, scopeX:[{scope, items:[...]}]}] into [{resource, scope, item}]. */
function flatten(resourceList, scopeKey, itemKey) {
  const out = [];
  for (const r of resourceList) {
    for (const s of r[scopeKey] || []) {
      for (const item of s[itemKey] || []) out.push({ resource: r.resource, scope: s.scope, schemaUrl: s.schemaUrl, item });
    }
  }
  return out;
}

// ------------------------------------------------------------------ traces

async function runTraces(gw, transport, compression) {
  const service = `e2e-traces-${transport.replace('/', '-')}-${compression}`;
  const spans = await buildSpans(service);
  const written = await exportAndCollect(gw, { transport, compression, signal: 'traces', items: spans, count: spans.length, service });

  const got = flatten(written, 'scopeSpans', 'spans');
  assert.equal(got.length, spans.length, 'span count in traces.jsonl');
  const bySpanId = new Map(got.map((g) => [g.item.spanId, g]));
  for (const s of spans) {
    const g = bySpanId.get(s.spanContext().spanId);
    assert.ok(g, `span ${s.name} (${s.spanContext().spanId}) missing from traces.jsonl`);
    assert.deepEqual(g.item, expectedSpan(s), `span "${s.name}"`);
    assert.deepEqual(g.scope, expectedScope(s.instrumentationScope), `scope of span "${s.name}"`);
    assert.deepEqual(g.resource, expectedResource(s.resource), `resource of span "${s.name}"`);
  }
  // the parent/child structure survived
  const root = spans.find((s) => s.name === 'GET /orders/{id}');
  const child = spans.find((s) => s.name === 'SELECT orders');
  assert.equal(bySpanId.get(child.spanContext().spanId).item.parentSpanId, root.spanContext().spanId);
  assert.equal(bySpanId.get(child.spanContext().spanId).item.traceId, root.spanContext().traceId);
  // two scopes, grouped as the SDK sent them
  const scopes = written.flatMap((r) => r.scopeSpans.map((s) => s.scope.name)).sort();
  assert.deepEqual(scopes, ['e2e-other-scope', 'e2e-tracer']);
}

// ------------------------------------------------------------------ metrics

async function runMetrics(gw, transport, compression) {
  const service = `e2e-metrics-${transport.replace('/', '-')}-${compression}`;
  // gzip runs use delta temporality, the others cumulative: both reach the wire
  const temporality = compression === 'gzip' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE;
  const rm = await buildMetrics(service, temporality);
  const sdkMetrics = rm.scopeMetrics.flatMap((sm) => sm.metrics);
  const points = sdkMetrics.reduce((n, m) => n + m.dataPoints.length, 0);
  assert.equal(points, 7, 'the SDK produced the data points this test expects');

  const written = await exportAndCollect(gw, { transport, compression, signal: 'metrics', items: rm, count: points, service });

  assert.equal(written.length, 1, 'one resourceMetrics');
  assert.deepEqual(written[0].resource, expectedResource(rm.resource));
  assert.equal(written[0].scopeMetrics.length, 1, 'one scopeMetrics');
  assert.deepEqual(written[0].scopeMetrics[0].scope, expectedScope(rm.scopeMetrics[0].scope));
  const got = written[0].scopeMetrics[0].metrics;
  assert.deepEqual(
    got.map((m) => m.name),
    sdkMetrics.map((m) => m.descriptor.name),
    'metric names, in order',
  );
  for (let i = 0; i < sdkMetrics.length; i++) {
    assert.deepEqual(got[i], expectedMetric(sdkMetrics[i]), `metric ${sdkMetrics[i].descriptor.name}`);
  }
  // spot checks in plain words, so a failure reads easily
  const hist = got.find((m) => m.name === 'e2e.latency').histogram;
  const a = hist.dataPoints.find((p) => p.attributes.some((kv) => kv.value.stringValue === '/a'));
  assert.deepEqual(a.bucketCounts, ['1', '1', '2', '0', '1']);
  assert.deepEqual(a.explicitBounds, [1, 5, 10, 50]);
  assert.equal(a.count, '5');
  assert.equal(a.sum, 138);
  assert.equal(a.min, 0.5);
  assert.equal(a.max, 120);
  assert.equal(hist.aggregationTemporality, compression === 'gzip' ? 1 : 2);
  const counter = got.find((m) => m.name === 'e2e.requests').sum;
  assert.equal(counter.isMonotonic, true);
  assert.deepEqual(counter.dataPoints.map((p) => p.asInt).sort(), ['1', '7']);
  const updown = got.find((m) => m.name === 'e2e.queue.depth').sum;
  assert.equal(updown.isMonotonic, undefined, 'up-down counter is not monotonic (false is omitted)');
  assert.equal(updown.dataPoints[0].asDouble, 3.25);
}

// ------------------------------------------------------------------ logs

async function runLogs(gw, transport, compression) {
  const service = `e2e-logs-${transport.replace('/', '-')}-${compression}`;
  const records = await buildLogs(service);
  const written = await exportAndCollect(gw, { transport, compression, signal: 'logs', items: records, count: records.length, service });

  const got = flatten(written, 'scopeLogs', 'logRecords');
  assert.equal(got.length, records.length, 'log record count in logs.jsonl');
  const seqOf = (lr) => lr.attributes?.find((a) => a.key === 'log.seq')?.value?.intValue;
  for (const r of records) {
    const g = got.find((x) => seqOf(x.item) === String(r.attributes['log.seq']));
    assert.ok(g, `log record ${r.attributes['log.seq']} missing`);
    assert.deepEqual(g.item, expectedLogRecord(r), `log record ${r.attributes['log.seq']}`);
    assert.deepEqual(g.scope, expectedScope(r.instrumentationScope));
    assert.deepEqual(g.resource, expectedResource(r.resource));
  }
  const first = got.find((x) => seqOf(x.item) === '1').item;
  assert.equal(first.severityNumber, 9);
  assert.equal(first.traceId, records[0].spanContext.traceId);
  assert.equal(first.flags, 1);
  const second = got.find((x) => seqOf(x.item) === '2').item;
  assert.equal(second.traceId, undefined, 'no trace context: no traceId');
  assert.ok(second.body.kvlistValue, 'structured body is a kvlist');
}

// ------------------------------------------------------------------ suite

let gw;
before(async () => {
  gw = await Gateway.start({ workers: 2 });
});
after(async () => {
  if (gw) await gw.stop();
});

for (const transport of TRANSPORTS) {
  for (const compression of COMPRESSIONS) {
    describe(`SDK ${transport}, compression ${compression}`, () => {
      it('traces arrive field by field', () => gw.withLog(() => runTraces(gw, transport, compression)));
      it('metrics arrive field by field', () => gw.withLog(() => runMetrics(gw, transport, compression)));
      it('logs arrive field by field', () => gw.withLog(() => runLogs(gw, transport, compression)));
    });
  }
}

it('the gateway is still healthy after all SDK exports', async () => {
  gw.assertAlive();
  gw.assertNoSanitizerReport();
});
