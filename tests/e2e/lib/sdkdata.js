// Telemetry made with the real OpenTelemetry JS SDK (tracer, meter and logger
// providers), captured before export so the tests can hand the very same
// objects to each OTLP exporter and compare what the gateway wrote with them.

import assert from 'node:assert/strict';

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, ValueType, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';

import { randomHex } from './wire.js';

export const RUN_ID = randomHex(4);

/** The spans a file backend wrote (gw.readSignal('traces') lines), as
 * traceId (hex) -> Set of spanIds (hex); a span written twice fails. */
export function spansByTrace(lines) {
  const found = new Map();
  for (const line of lines)
    for (const rs of line.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const sp of ss.spans ?? []) {
          if (!found.has(sp.traceId)) found.set(sp.traceId, new Set());
          const set = found.get(sp.traceId);
          assert.ok(!set.has(sp.spanId), `span ${sp.spanId} of trace ${sp.traceId} written twice`);
          set.add(sp.spanId);
        }
  return found;
}

/** Trace and span ids from a seeded generator (mulberry32): the share the
 * probabilistic policy keeps (and a cluster's trace owners) depend only on
 * the ids, so they are the same in every run. */
export class SeededIds {
  constructor(seed) {
    this.s = seed >>> 0;
  }
  word() {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0).toString(16).padStart(8, '0');
  }
  hex(words) {
    let out = '';
    for (let i = 0; i < words; i++) out += this.word();
    return out;
  }
  generateTraceId() {
    return this.hex(4);
  }
  generateSpanId() {
    return this.hex(2);
  }
}

/** Five finished spans in one trace (plus links), two scopes. */
export async function buildSpans(service) {
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': service,
      'service.version': '1.4.2',
      'e2e.run': RUN_ID,
      'host.cpus': 2,
    }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
  });
  const tracer = provider.getTracer('e2e-tracer', '1.2.3');
  const other = provider.getTracer('e2e-other-scope');

  const sec = 1_700_000_000 + Math.floor(Math.random() * 1000);
  const at = (ms, ns = 0) => [sec + Math.floor(ms / 1000), (ms % 1000) * 1_000_000 + ns];

  const remoteParent = {
    traceId: randomHex(16),
    spanId: randomHex(8),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('e2e=abc,vendor=x1'),
  };
  const linked = {
    traceId: randomHex(16),
    spanId: randomHex(8),
    traceFlags: TraceFlags.NONE,
    isRemote: false,
    traceState: new TraceState('lk=1'),
  };
  const linked2 = { traceId: randomHex(16), spanId: randomHex(8), traceFlags: TraceFlags.SAMPLED, isRemote: true };

  const root = tracer.startSpan(
    'GET /orders/{id}',
    {
      kind: SpanKind.SERVER,
      startTime: at(0, 123_457),
      attributes: {
        'http.request.method': 'GET',
        'http.response.status_code': 504,
        'retry.count': 0,
        'neg.int': -7,
        'big.int': Number.MAX_SAFE_INTEGER,
        ratio: 0.25,
        'neg.double': -1.5e-3,
        'cache.hit': false,
        sampled: true,
        'empty.string': '',
        unicode: 'grüße ✓ "quoted" \\ back\nslash\ttab',
        tags: ['a', 'b', ''],
        ports: [80, 443, -1],
        weights: [0.5, 1.25],
        switches: [true, false],
      },
      links: [
        { context: linked, attributes: { 'link.reason': 'follows-from', 'link.n': 3 } },
        { context: linked2 },
      ],
    },
    trace.setSpanContext(ROOT_CONTEXT, remoteParent),
  );
  root.addEvent('cache.miss', { 'cache.key': 'orders:42', 'cache.size': 17, 'cache.ratio': 0.5 }, at(1, 1));
  root.addEvent('no-attributes', at(2, 999_999));

  const child = tracer.startSpan(
    'SELECT orders',
    { kind: SpanKind.CLIENT, startTime: at(3), attributes: { 'db.system': 'postgresql', 'db.rows': 0 } },
    trace.setSpan(ROOT_CONTEXT, root),
  );
  const grandchild = tracer.startSpan('decode row', { startTime: at(4, 5) }, trace.setSpan(ROOT_CONTEXT, child));
  grandchild.end(at(5, 7));
  child.setStatus({ code: SpanStatusCode.OK });
  child.end(at(9));

  const producer = other.startSpan(
    'publish order.viewed',
    { kind: SpanKind.PRODUCER, startTime: at(10), attributes: { 'messaging.system': 'kafka' } },
    trace.setSpan(ROOT_CONTEXT, root),
  );
  producer.end(at(11));
  const consumer = other.startSpan('consume', { kind: SpanKind.CONSUMER, startTime: at(12) }, ROOT_CONTEXT);
  consumer.end(at(13));

  root.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream timed out after 3 retries' });
  root.end(at(1500, 42));

  await provider.forceFlush();
  const spans = mem.getFinishedSpans();
  assert.equal(spans.length, 5);
  return spans;
}

/** A MetricReader the test collects from by hand. */
export class CollectingReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/** Counter, up-down counter, histogram and observable gauge: 7 data points. */
export async function buildMetrics(service, temporality) {
  const reader = new CollectingReader({ aggregationTemporalitySelector: () => temporality });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'e2e.run': RUN_ID }),
    readers: [reader],
  });
  const meter = provider.getMeter('e2e-meter', '0.4.2');

  const requests = meter.createCounter('e2e.requests', {
    description: 'Requests handled',
    unit: '{request}',
    valueType: ValueType.INT,
  });
  requests.add(3, { route: '/a', ok: true });
  requests.add(4, { route: '/a', ok: true });
  requests.add(1, { route: '/b', ok: false, code: 503 });

  const depth = meter.createUpDownCounter('e2e.queue.depth', { description: 'Items waiting', unit: '{item}' });
  depth.add(5.5, { queue: 'in' });
  depth.add(-2.25, { queue: 'in' });

  const latency = meter.createHistogram('e2e.latency', {
    description: 'Request latency',
    unit: 'ms',
    advice: { explicitBucketBoundaries: [1, 5, 10, 50] },
  });
  for (const v of [0.5, 3, 7, 7.5, 120]) latency.record(v, { route: '/a' });
  latency.record(2, { route: '/b' });

  const temp = meter.createObservableGauge('e2e.temperature', { description: 'Room temperature', unit: 'Cel' });
  temp.addCallback((r) => {
    r.observe(21.5, { room: 'a' });
    r.observe(-3.25, { room: 'b' });
  });

  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  await provider.shutdown();
  return resourceMetrics;
}

/** Three log records: string and structured bodies, with and without trace context. */
export async function buildLogs(service) {
  const mem = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'e2e.run': RUN_ID }),
    processors: [new SimpleLogRecordProcessor({ exporter: mem })],
  });
  const logger = provider.getLogger('e2e-logger', '2.0.0');
  const sec = 1_700_100_000 + Math.floor(Math.random() * 1000);
  const spanCtx = { traceId: randomHex(16), spanId: randomHex(8), traceFlags: TraceFlags.SAMPLED, isRemote: false };

  logger.emit({
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: 'user logged in',
    attributes: { 'log.seq': 1, 'user.id': 42, 'login.ok': true, 'login.score': 0.75, roles: ['admin', 'dev'] },
    timestamp: [sec, 1],
    observedTimestamp: [sec, 500_000_001],
    context: trace.setSpanContext(ROOT_CONTEXT, spanCtx),
  });
  logger.emit({
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: {
      message: 'disk full',
      code: 28,
      ratio: 0.97,
      retry: false,
      nested: { path: '/var', free: 0 },
      list: ['x', 1, 2.5, true],
      raw: new Uint8Array([0, 1, 2, 250, 255]),
    },
    attributes: { 'log.seq': 2 },
    timestamp: [sec + 1, 999_999_999],
    observedTimestamp: [sec + 2, 0],
  });
  logger.emit({
    severityNumber: SeverityNumber.WARN2,
    body: 'no severity text, unsampled trace',
    attributes: { 'log.seq': 3 },
    timestamp: [sec + 3, 3],
    observedTimestamp: [sec + 3, 4],
    context: trace.setSpanContext(ROOT_CONTEXT, { ...spanCtx, spanId: randomHex(8), traceFlags: TraceFlags.NONE }),
  });
  await provider.forceFlush();
  const records = mem.getFinishedLogRecords();
  assert.equal(records.length, 3);
  return records;
}
