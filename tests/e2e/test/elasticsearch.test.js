// The `elasticsearch` exporter end to end: the OpenTelemetry JS SDK sends
// spans, logs and metrics to the gateway, whose elasticsearch backend writes
// them with _bulk into a strict fake Elasticsearch (lib/es_sink.js). The
// tests compare the documents with what the SDK made, and check the
// per-item handling: throttled documents (429) are sent again alone and
// arrive once, refused ones (400) and conflicts (409) are counted and logged
// without retrying the request, and a whole-request 503 / 429 is retried.
// Metric points sharing their dimensions share a document, as Elastic's own
// exporter groups them (the sink checks _metric_names_hash independently).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { EsSink, metricNamesHash } from '../lib/es_sink.js';
import { Gateway, sleep } from '../lib/gateway.js';
import { CollectingReader, buildLogs, buildMetrics, buildSpans } from '../lib/sdkdata.js';
import { exportOnce, makeSpans, waitFor } from '../lib/sinks.js';
import { randomHex } from '../lib/wire.js';

const EXPORT = {
  sent: 'otlp_gateway_export_sent_items_total',
  failed: 'otlp_gateway_export_failed_items_total',
  retries: 'otlp_gateway_export_retries_total',
};

function delta(before, after, name, labels = {}) {
  const pick = (m) =>
    m.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
  return pick(after) - pick(before);
}

function configYaml(w, backend) {
  return `workers: 2
admin: 127.0.0.1:${w.adminPort}
log: {level: info}
listeners:
  - name: default
    grpc: 127.0.0.1:${w.grpcPort}
    http: 127.0.0.1:${w.httpPort}
    header_timeout: 2s
backends:
  es:
    type: elasticsearch
${backend}
    timeout: 5s
    batch: {timeout: 100ms}
    retry: {initial_interval: 200ms, max_interval: 1s, max_elapsed: 30s}
pipelines:
  - {name: all, signals: [traces, metrics, logs], backends: [es]}
`;
}

/** hrTime [s, ns] as RFC 3339 with nanoseconds, and as a BigInt of ns. */
const rfc3339 = ([s, ns]) => `${new Date(s * 1000).toISOString().slice(0, 19)}.${String(ns).padStart(9, '0')}Z`;
const nanos = ([s, ns]) => BigInt(s) * 1_000_000_000n + BigInt(ns);

const KIND = ['Internal', 'Server', 'Client', 'Producer', 'Consumer']; // by @opentelemetry/api SpanKind
const STATUS = ['Unset', 'Ok', 'Error'];

const serviceOf = (d) => d.doc.resource?.attributes?.['service.name'];
const mine = (docs, service) => docs.filter((d) => serviceOf(d) === service);

/** Spans of `service` with `resourceAttrs` on their resource, one per name. */
async function spansWithResource(service, resourceAttrs, names) {
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, ...resourceAttrs }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
  });
  const tracer = provider.getTracer('e2e-es');
  for (const n of names) tracer.startSpan(n, { kind: SpanKind.CLIENT }, ROOT_CONTEXT).end();
  await provider.forceFlush();
  const spans = mem.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

describe('elasticsearch: _bulk into a strict fake Elasticsearch (ApiKey, gzip)', () => {
  let gw, es;
  const apiKey = `${randomHex(8)}==`;
  const exporters = [];
  const keep = (e) => {
    exporters.push(e);
    return e;
  };
  const client = {
    traces: () => keep(new ProtoTraceExporter({ url: `${gw.httpUrl}/v1/traces`, timeoutMillis: 10_000 })),
    metrics: () => keep(new ProtoMetricExporter({ url: `${gw.httpUrl}/v1/metrics`, timeoutMillis: 10_000 })),
    logs: () => keep(new ProtoLogExporter({ url: `${gw.httpUrl}/v1/logs`, timeoutMillis: 10_000 })),
  };

  before(async () => {
    es = await EsSink.start({ auth: { apiKey } });
    gw = await Gateway.start({
      config: (w) => configYaml(w, `    endpoint: ${es.url}\n    api_key: "${apiKey}"\n    dataset: E2E`),
    });
  });

  after(async () => {
    for (const e of exporters) await e.shutdown().catch(() => {});
    try {
      if (gw) await gw.stop();
    } finally {
      await es?.stop();
    }
  });

  it('writes spans, span events, log records and metric points as otel-mode documents', async () =>
    gw.withLog(async () => {
      const service = `es-shop-${randomHex(3)}`;
      const spans = await buildSpans(service);
      const logs = await buildLogs(service);
      const metrics = await buildMetrics(service, AggregationTemporality.CUMULATIVE);
      const before = await gw.metrics();
      assert.equal((await exportOnce(client.traces(), spans)).code, ExportResultCode.SUCCESS);
      assert.equal((await exportOnce(client.logs(), logs)).code, ExportResultCode.SUCCESS);
      assert.equal((await exportOnce(client.metrics(), metrics)).code, ExportResultCode.SUCCESS);
      const nEvents = spans.reduce((n, s) => n + s.events.length, 0);
      await waitFor(
        () =>
          mine(es.accepted('traces'), service).length >= 5 &&
          mine(es.accepted('logs'), service).length >= 3 + nEvents &&
          mine(es.accepted('metrics'), service).length >= 7,
        10_000,
      );
      assert.deepEqual(es.violations, []);

      // spans
      const spanDocs = mine(es.accepted('traces'), service);
      assert.equal(spanDocs.length, 5);
      for (const s of spans) {
        const ctx = s.spanContext();
        const d = spanDocs.find((x) => x.doc.span_id === ctx.spanId);
        assert.ok(d, `span ${s.name} not stored`);
        assert.equal(d.index, 'traces-e2e.otel-default');
        const doc = d.doc;
        assert.deepEqual(doc.data_stream, { type: 'traces', dataset: 'e2e.otel', namespace: 'default' });
        assert.equal(doc['@timestamp'], rfc3339(s.startTime));
        assert.equal(doc.trace_id, ctx.traceId);
        assert.equal(doc.parent_span_id, s.parentSpanContext?.spanId);
        assert.equal(doc.name, s.name);
        assert.equal(doc.kind, KIND[s.kind]);
        assert.equal(BigInt(doc.duration), nanos(s.endTime) - nanos(s.startTime));
        assert.equal(doc.status.code, STATUS[s.status.code]);
        assert.equal(doc.status.message, s.status.message || undefined);
        assert.equal(doc.trace_state, ctx.traceState?.serialize() || undefined);
        assert.deepEqual(doc.attributes ?? {}, s.attributes);
        assert.deepEqual(doc.resource.attributes, s.resource.attributes);
        assert.equal(doc.scope.name, s.instrumentationScope.name);
        assert.equal(doc.scope.version, s.instrumentationScope.version);
        assert.deepEqual(
          doc.links,
          s.links.map((l) => {
            const link = { trace_id: l.context.traceId, span_id: l.context.spanId };
            if (l.context.traceState) link.trace_state = l.context.traceState.serialize();
            if (l.attributes && Object.keys(l.attributes).length) link.attributes = l.attributes;
            return link;
          }),
        );
      }
      // span events: log documents carrying their span's ids
      const root = spans.find((s) => s.events.length > 0);
      const eventDocs = mine(es.accepted('logs'), service).filter((d) => d.doc.span_id === root.spanContext().spanId && d.doc.event_name);
      assert.deepEqual(eventDocs.map((d) => d.doc.event_name), root.events.map((e) => e.name));
      for (const [i, e] of root.events.entries()) {
        const doc = eventDocs[i].doc;
        assert.equal(eventDocs[i].index, 'logs-e2e.otel-default');
        assert.equal(doc['@timestamp'], rfc3339(e.time));
        assert.equal(doc.trace_id, root.spanContext().traceId);
        assert.deepEqual(doc.attributes, { ...(e.attributes ?? {}), 'event.name': e.name });
      }

      // log records
      const logDocs = mine(es.accepted('logs'), service).filter((d) => !d.doc.event_name);
      assert.equal(logDocs.length, 3);
      for (const r of logs) {
        const d = logDocs.find((x) => x.doc.attributes['log.seq'] === r.attributes['log.seq']);
        assert.ok(d, `log ${r.attributes['log.seq']} not stored`);
        const doc = d.doc;
        assert.equal(doc['@timestamp'], rfc3339(r.hrTime));
        assert.equal(doc.observed_timestamp, rfc3339(r.hrTimeObserved));
        assert.equal(doc.severity_number, r.severityNumber);
        assert.equal(doc.severity_text, r.severityText);
        assert.equal(doc.trace_id, r.spanContext?.traceId);
        assert.equal(doc.span_id, r.spanContext?.spanId);
        assert.deepEqual(doc.attributes, r.attributes);
        if (typeof r.body === 'string') {
          assert.deepEqual(doc.body, { text: r.body });
        } else {
          const { raw, ...rest } = r.body;
          assert.deepEqual(doc.body, { structured: { ...rest, raw: Buffer.from(raw).toString('hex') } });
        }
      }

      // metric points: here each of its own dimensions or unit, so one document
      // each, the value under metrics.<name>
      const pointDocs = mine(es.accepted('metrics'), service);
      assert.equal(pointDocs.length, 7);
      const points = (name) =>
        pointDocs
          .filter((d) => name in d.doc.metrics)
          .map((d) => ({ attrs: d.doc.attributes, value: d.doc.metrics[name], template: d.action.dynamic_templates[`metrics.${name}`], doc: d.doc }));
      const byRoute = (list, route) => list.find((p) => p.attrs.route === route);
      const requests = points('e2e.requests');
      assert.deepEqual(requests.map((p) => p.template), ['counter_long', 'counter_long']);
      assert.equal(byRoute(requests, '/a').value, 7);
      assert.deepEqual(byRoute(requests, '/b').attrs, { route: '/b', ok: false, code: 503 });
      assert.equal(byRoute(requests, '/b').value, 1);
      assert.equal(byRoute(requests, '/a').doc.unit, '{request}');
      const point = metrics.scopeMetrics[0].metrics.find((m) => m.descriptor.name === 'e2e.requests').dataPoints[0];
      assert.equal(byRoute(requests, '/a').doc.start_timestamp, Number(nanos(point.startTime) / 1_000_000n));
      assert.equal(byRoute(requests, '/a').doc['@timestamp'], Number(nanos(point.endTime) / 1_000_000n));
      const depth = points('e2e.queue.depth');
      assert.deepEqual(depth.map((p) => [p.template, p.value]), [['gauge_double', 3.25]]);
      const latency = points('e2e.latency');
      assert.deepEqual(latency.map((p) => p.template), ['histogram', 'histogram']);
      // bounds [1, 5, 10, 50]; /a saw 0.5, 3, 7, 7.5, 120: buckets at 0.5, 3, 7.5 and 50 (the overflow at its bound)
      assert.deepEqual(byRoute(latency, '/a').value, { counts: [1, 1, 2, 1], values: [0.5, 3, 7.5, 50] });
      assert.deepEqual(byRoute(latency, '/b').value, { counts: [1], values: [3] });
      const temp = points('e2e.temperature');
      assert.deepEqual(temp.map((p) => [p.template, p.attrs.room, p.value]).sort(), [['gauge_double', 'a', 21.5], ['gauge_double', 'b', -3.25]]);
      for (const d of pointDocs) assert.equal(d.index, 'metrics-e2e.otel-default');

      // every request authenticated with the API key, gzipped, into data streams only
      for (const r of es.requests) {
        assert.match(r.query, /[?&]require_data_stream=true(&|$)/);
        assert.equal(r.headers.authorization, `ApiKey ${apiKey}`);
        assert.equal(r.encoding, 'gzip');
        assert.equal(r.status, 200);
      }
      // The sink stores documents before it answers; the gateway counts them
      // once it has read the answer, so poll the counters rather than race them.
      let after;
      const sent = (signal) => delta(before, after, EXPORT.sent, { backend: 'es', signal });
      await waitFor(async () => {
        after = await gw.metrics();
        return sent('traces') + sent('logs') + sent('metrics') >= 15;
      }, 15_000);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'es', signal: 'traces' }), 5);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'es', signal: 'logs' }), 3);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'es', signal: 'metrics' }), 7);
      assert.equal(delta(before, after, EXPORT.failed, { backend: 'es' }), 0);
      assert.ok(!gw.log().includes(apiKey), 'the API key was logged');
    }));

  it('sends again only the documents Elasticsearch throttled (per-item 429); each arrives once', async () =>
    gw.withLog(async () => {
      const service = `es-throttle-${randomHex(3)}`;
      const spans = await makeSpans(service, 20);
      const throttled = new Set(spans.filter((s) => s.attributes['e2e.seq'] % 4 === 1).map((s) => s.spanContext().spanId));
      es.rule({ match: (doc) => serviceOf({ doc }) === service && throttled.has(doc.span_id), status: 429, times: 1 });
      const before = await gw.metrics();
      assert.equal((await exportOnce(client.traces(), spans)).code, ExportResultCode.SUCCESS);
      await waitFor(() => mine(es.accepted('traces'), service).length >= 20, 10_000);
      await sleep(600);
      const stored = mine(es.accepted('traces'), service).map((d) => d.doc.span_id);
      assert.equal(stored.length, 20, 'every span exactly once');
      assert.equal(new Set(stored).size, 20);
      assert.deepEqual(new Set(stored), new Set(spans.map((s) => s.spanContext().spanId)));
      const attempts = es.requests.filter((r) => r.items.some((it) => serviceOf(it) === service));
      assert.equal(attempts.length, 2, `requests: ${attempts.map((r) => r.items.length)}`);
      assert.equal(attempts[0].items.length, 20);
      assert.deepEqual(attempts[0].items.filter((it) => it.status === 429).map((it) => it.doc.span_id).sort(), [...throttled].sort());
      assert.deepEqual(attempts[1].items.map((it) => it.doc.span_id).sort(), [...throttled].sort(), 'only the throttled documents again');
      assert.ok(attempts[1].items.every((it) => it.status === 201));
      const after = await gw.metrics();
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'es', signal: 'traces' }), 20);
      assert.equal(delta(before, after, EXPORT.retries, { backend: 'es', signal: 'traces' }), 1);
      assert.equal(delta(before, after, EXPORT.failed, { backend: 'es' }), 0);
      assert.deepEqual(es.violations, []);
    }));

  it('counts documents refused for good (per-item 400) and logs why, delivers the rest, retries nothing', async () =>
    gw.withLog(async () => {
      const service = `es-reject-${randomHex(3)}`;
      const spans = await makeSpans(service, 10);
      const reason = 'failed to parse field [attributes.e2e.seq] of type [long] in document';
      es.rule({
        match: (doc) => serviceOf({ doc }) === service && [3, 7].includes(doc.attributes?.['e2e.seq']),
        status: 400,
        type: 'mapper_parsing_exception',
        reason,
      });
      const before = await gw.metrics();
      assert.equal((await exportOnce(client.traces(), spans)).code, ExportResultCode.SUCCESS);
      await waitFor(() => mine(es.accepted('traces'), service).length >= 8, 10_000);
      await sleep(1500); // 7x retry.initial_interval: a retry would have come
      const attempts = es.requests.filter((r) => r.items.some((it) => serviceOf(it) === service));
      assert.equal(attempts.length, 1, 'no retry for refused documents');
      assert.deepEqual(attempts[0].items.filter((it) => it.status === 400).map((it) => it.doc.attributes['e2e.seq']).sort(), [3, 7]);
      assert.equal(mine(es.accepted('traces'), service).length, 8);
      const after = await gw.metrics();
      assert.equal(delta(before, after, EXPORT.failed, { backend: 'es', signal: 'traces', reason: 'rejected' }), 2);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'es', signal: 'traces' }), 8);
      assert.equal(delta(before, after, EXPORT.retries, { backend: 'es' }), 0);
      assert.match(gw.log(), /export partially rejected.*backend=es.*signal=traces.*rejected=2.*mapper_parsing_exception: failed to parse field/);
      assert.deepEqual(es.violations, []);
    }));

  it('puts metric points of one time, unit and dimensions into one document; routes by receiver scope names', async () =>
    gw.withLog(async () => {
      const service = `es-group-${randomHex(3)}`;
      const reader = new CollectingReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
      const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': service }), readers: [reader] });
      // the scope name hostmetrics' CPU scraper reports under: Elastic routes it to the hostmetricsreceiver dataset
      const meter = provider.getMeter('github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/cpuscraper');
      const names = ['system.cpu.time', 'system.cpu.utilization.user', 'system.cpu.logical.count'];
      for (const [i, n] of names.entries()) meter.createCounter(n, { unit: 's' }).add(i + 1, { cpu: 'cpu0' });
      meter.createCounter('system.cpu.other', { unit: 's' }).add(9, { cpu: 'cpu1' });
      const { resourceMetrics, errors } = await reader.collect();
      assert.deepEqual(errors, []);
      await provider.shutdown();
      // The SDK stamps each instrument's start time at its first record, a
      // millisecond apart on a slow run (sanitizers), and points of different
      // start times are different documents: one start and one time for all,
      // as one scrape gives them.
      for (const sm of resourceMetrics.scopeMetrics)
        for (const m of sm.metrics)
          for (const p of m.dataPoints) {
            p.startTime = [1_700_000_000, 0];
            p.endTime = [1_700_000_010, 0];
          }
      const before = await gw.metrics();
      assert.equal((await exportOnce(client.metrics(), resourceMetrics)).code, ExportResultCode.SUCCESS);
      await waitFor(() => mine(es.accepted('metrics'), service).length >= 2, 10_000);
      await sleep(300);
      assert.deepEqual(es.violations, []);
      const docs = mine(es.accepted('metrics'), service);
      assert.equal(docs.length, 2, 'cpu0 in one document, cpu1 in another');
      const cpu0 = docs.find((d) => d.doc.attributes.cpu === 'cpu0');
      assert.deepEqual(cpu0.doc.metrics, { 'system.cpu.time': 1, 'system.cpu.utilization.user': 2, 'system.cpu.logical.count': 3 });
      assert.deepEqual(cpu0.action.dynamic_templates, Object.fromEntries(names.map((n) => [`metrics.${n}`, 'counter_double'])));
      assert.equal(cpu0.doc._metric_names_hash, metricNamesHash(names));
      for (const d of docs) assert.equal(d.index, 'metrics-hostmetricsreceiver.otel-default');
      let after;
      await waitFor(async () => {
        after = await gw.metrics();
        return delta(before, after, EXPORT.sent, { backend: 'es', signal: 'metrics' }) >= 4;
      }, 15_000);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'es', signal: 'metrics' }), 4, 'items are points, not documents');
    }));

  it('counts a 409 on create (a time series document already there) as a refused conflict, never as sent', async () =>
    gw.withLog(async () => {
      const service = `es-conflict-${randomHex(3)}`;
      const metrics = await buildMetrics(service, AggregationTemporality.CUMULATIVE);
      const before = await gw.metrics();
      assert.equal((await exportOnce(client.metrics(), metrics)).code, ExportResultCode.SUCCESS);
      await waitFor(() => mine(es.accepted('metrics'), service).length >= 7, 10_000);
      // the same points again: every document collides with its twin
      assert.equal((await exportOnce(client.metrics(), metrics)).code, ExportResultCode.SUCCESS);
      let after;
      await waitFor(async () => {
        after = await gw.metrics();
        return delta(before, after, EXPORT.failed, { backend: 'es', signal: 'metrics', reason: 'rejected' }) >= 7;
      }, 10_000);
      await sleep(600);
      after = await gw.metrics();
      assert.equal(mine(es.accepted('metrics'), service).length, 7);
      const attempts = es.requests.filter((r) => r.items.some((it) => serviceOf(it) === service));
      assert.equal(attempts.length, 2, 'a conflict is not retried');
      assert.ok(attempts[1].items.every((it) => it.status === 409));
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'es', signal: 'metrics' }), 7);
      assert.equal(delta(before, after, EXPORT.failed, { backend: 'es', signal: 'metrics', reason: 'rejected' }), 7);
      assert.match(gw.log(), /export partially rejected.*backend=es.*signal=metrics.*rejected=7.*7 of them 409 conflicts.*version_conflict_engine_exception/);
      assert.deepEqual(es.violations, []);
    }));

  it('retries a request Elasticsearch refuses as a whole with 503 or 429, and delivers it once', async () =>
    gw.withLog(async () => {
      const service = `es-busy-${randomHex(3)}`;
      const logs = await buildLogs(service);
      es.once({ status: 503, type: 'unavailable_shards_exception', reason: 'primary shard is not active' });
      es.once({ status: 429, type: 'es_rejected_execution_exception', reason: 'rejected execution' });
      const before = await gw.metrics();
      assert.equal((await exportOnce(client.logs(), logs)).code, ExportResultCode.SUCCESS);
      await waitFor(() => mine(es.accepted('logs'), service).length >= 3, 10_000);
      await sleep(600);
      assert.equal(mine(es.accepted('logs'), service).length, 3);
      const attempts = es.requests.filter((r) => r.items.some((it) => serviceOf(it) === service));
      assert.deepEqual(attempts.map((r) => r.status), [503, 429, 200]);
      assert.ok(attempts.every((r) => r.items.length === 3), 'the whole request each time');
      const after = await gw.metrics();
      assert.equal(delta(before, after, EXPORT.retries, { backend: 'es', signal: 'logs' }), 2);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'es', signal: 'logs' }), 3);
      assert.equal(delta(before, after, EXPORT.failed, { backend: 'es' }), 0);
      assert.match(gw.log(), /export retrying.*backend=es.*signal=logs.*status=503.*unavailable_shards_exception/);
      assert.deepEqual(es.violations, []);
    }));
});

describe('elasticsearch: Basic authentication, no compression, data streams from attributes', () => {
  let gw, es;
  const password = `pw:${randomHex(6)}`;
  const exporters = [];

  before(async () => {
    es = await EsSink.start({ name: 'elasticsearch-basic', auth: { basic: { user: 'elastic', password } } });
    gw = await Gateway.start({
      config: (w) =>
        configYaml(w, `    endpoint: ${es.url}/\n    user: elastic\n    password: "${password}"\n    compression: none\n    namespace: Team-A`),
    });
  });

  after(async () => {
    for (const e of exporters) await e.shutdown().catch(() => {});
    try {
      if (gw) await gw.stop();
    } finally {
      await es?.stop();
    }
  });

  it('authenticates with Basic and routes by data_stream attributes, sanitized', async () =>
    gw.withLog(async () => {
      const plain = await spansWithResource('es-basic', {}, ['a', 'b']);
      const routed = await spansWithResource('es-routed', { 'data_stream.dataset': 'Checkout Svc', 'data_stream.namespace': 'EU-West' }, ['c']);
      const exporter = new ProtoTraceExporter({ url: `${gw.httpUrl}/v1/traces`, timeoutMillis: 10_000 });
      exporters.push(exporter);
      assert.equal((await exportOnce(exporter, [...plain, ...routed])).code, ExportResultCode.SUCCESS);
      await waitFor(() => es.accepted('traces').length >= 3, 10_000);
      assert.deepEqual(es.violations, []);
      const byName = Object.fromEntries(es.accepted('traces').map((d) => [d.doc.name, d]));
      // '-' stays in a namespace, not in a dataset
      assert.equal(byName.a.index, 'traces-generic.otel-team-a');
      assert.equal(byName.b.index, 'traces-generic.otel-team-a');
      assert.equal(byName.c.index, 'traces-checkout_svc.otel-eu-west');
      assert.deepEqual(byName.c.doc.data_stream, { type: 'traces', dataset: 'checkout_svc.otel', namespace: 'eu-west' });
      assert.equal(byName.c.doc.resource.attributes['data_stream.dataset'], undefined, 'routing attributes are not dimensions');
      for (const r of es.requests) {
        assert.equal(r.headers.authorization, `Basic ${Buffer.from(`elastic:${password}`).toString('base64')}`);
        assert.equal(r.encoding, 'identity');
        assert.equal(r.path, '/_bulk');
      }
      assert.ok(!gw.log().includes(password), 'the password was logged');
    }));
});
