// Export end to end: the OpenTelemetry JS SDK sends to the gateway, the
// gateway's otlp_http / otlp_grpc backends deliver to emulated Honeycomb,
// Jaeger and Loki intakes (lib/sinks.js), and the tests compare what each
// intake received with what the SDK sent.
//
// Gateway under test: one `auth: required` listener; tenants alpha and beta
// authenticate with gateway API keys (made with `otlp-gateway keys create`).
//   alpha traces -> [honeycomb (alpha's Honeycomb key), jaeger]
//   beta traces  -> [honeycomb (beta's Honeycomb key)]
//   metrics      -> [honeycomb] with x-honeycomb-dataset, per-tenant key
//   logs         -> [loki]
// One honeycomb backend carries both tenants: its `tenants:` map picks the
// x-honeycomb-team header per batch, so a batch must never mix tenants.
//
// Further suites, each with its own gateway: OTLP/JSON + zstd against
// protobuf field by field, and which header wins when a tenant's header has
// the same name as a backend-wide one.

import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Metadata, status as GRPC_STATUS } from '@grpc/grpc-js';
import { ExportResultCode } from '@opentelemetry/core';
import { AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';

import { Gateway, createApiKey as createKey, sleep, stopAll } from '../lib/gateway.js';
import { buildLogs, buildMetrics, buildSpans } from '../lib/sdkdata.js';
import {
  HoneycombSink,
  JaegerGrpcSink,
  LokiSink,
  deliveredSpanMap,
  duplicates,
  exportOnce,
  makeSpans,
  sdkSpanMap,
  waitFor,
} from '../lib/sinks.js';
import { randomHex } from '../lib/wire.js';

const EXPORT = {
  sent: 'otlp_gateway_export_sent_items_total',
  failed: 'otlp_gateway_export_failed_items_total',
  retries: 'otlp_gateway_export_retries_total',
};

function configYaml(w, o) {
  return `workers: 2
admin: 127.0.0.1:${w.adminPort}
log: {level: info}
listeners:
  - name: secure
    grpc: 127.0.0.1:${w.grpcPort}
    http: 127.0.0.1:${w.httpPort}
    header_timeout: 2s
    auth: required
auth:
  api_keys: {file: ${o.keysFile}}
tenants:
  - {id: alpha, endpoints: [secure], pipelines: [alpha-traces, metrics, logs]}
  - {id: beta, endpoints: [secure], pipelines: [beta-traces, metrics, logs]}
backends:
  honeycomb:
    type: otlp_http
    endpoint: ${o.hc.url}
    tenants:
      alpha: {headers: {x-honeycomb-team: ${o.hcKey.alpha}}}
      beta: {headers: {x-honeycomb-team: ${o.hcKey.beta}}}
    signal_headers:
      metrics: {x-honeycomb-dataset: e2e-metrics}
    timeout: 5s
    batch: {timeout: 100ms}
    retry: {initial_interval: 200ms, max_interval: 1s}
  jaeger:
    type: otlp_grpc
    endpoint: ${o.jaeger.endpoint}
    timeout: 5s
    batch: {timeout: 100ms}
    retry: {initial_interval: 200ms, max_interval: 1s}
  loki:
    type: otlp_http
    endpoint: ${o.loki.url}/otlp
    timeout: 5s
    batch: {timeout: 100ms}
    retry: {initial_interval: 200ms, max_interval: 1s}
pipelines:
  - {name: alpha-traces, signals: [traces], backends: [honeycomb, jaeger]}
  - {name: beta-traces, signals: [traces], backends: [honeycomb]}
  - {name: metrics, signals: [metrics], backends: [honeycomb]}
  - {name: logs, signals: [logs], backends: [loki]}
`;
}

/** Change of metric `name`{labels} between two /metrics samples. */
function delta(before, after, name, labels = {}) {
  const pick = (m) =>
    m.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
  return pick(after) - pick(before);
}

describe('export: fan-out to emulated Honeycomb, Jaeger and Loki', () => {
  let gw, hc, jaeger, loki, tmp;
  const gwKey = {};
  const hcKey = { alpha: `hc_alpha_${randomHex(8)}`, beta: `hc_beta_${randomHex(8)}` };
  const exporters = [];

  const keep = (e) => {
    exporters.push(e);
    return e;
  };
  const auth = (tenant) => ({ authorization: `Bearer ${gwKey[tenant]}` });
  const client = {
    traces: (t) => keep(new ProtoTraceExporter({ url: `${gw.httpUrl}/v1/traces`, headers: auth(t), timeoutMillis: 10_000 })),
    tracesGrpc: (t) => {
      const md = new Metadata();
      md.set('authorization', auth(t).authorization);
      return keep(new GrpcTraceExporter({ url: `http://${gw.grpcAddr}`, metadata: md, timeoutMillis: 10_000 }));
    },
    metrics: (t) => keep(new ProtoMetricExporter({ url: `${gw.httpUrl}/v1/metrics`, headers: auth(t), timeoutMillis: 10_000 })),
    logs: (t) => keep(new ProtoLogExporter({ url: `${gw.httpUrl}/v1/logs`, headers: auth(t), timeoutMillis: 10_000 })),
  };

  before(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-export-'));
    const keysFile = path.join(tmp, 'keys.yaml');
    gwKey.alpha = await createKey(keysFile, 'alpha');
    gwKey.beta = await createKey(keysFile, 'beta');
    hc = await HoneycombSink.start({ keys: { [hcKey.alpha]: 'env-alpha', [hcKey.beta]: 'env-beta' } });
    jaeger = await JaegerGrpcSink.start();
    loki = await LokiSink.start();
    gw = await Gateway.start({ config: (w) => configYaml(w, { keysFile, hc, jaeger, loki, hcKey }) });
  });

  after(async () => {
    for (const e of exporters) await e.shutdown().catch(() => {});
    try {
      if (gw) await gw.stop();
    } finally {
      await hc?.stop();
      await jaeger?.stop();
      await loki?.stop();
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });

  it('routes every request to exactly its pipelines and backends, with the right tenant credentials', async () =>
    gw.withLog(async () => {
      // Both tenants at once, over HTTP and gRPC, so that the honeycomb
      // backend has both tenants' requests queued together.
      const alphaSpans = [...(await buildSpans('alpha-shop')), ...(await makeSpans('alpha-shop', 40)), ...(await buildSpans('alpha-shop'))];
      const betaSpans = [...(await makeSpans('beta-search', 30)), ...(await buildSpans('beta-search'))];
      const alphaMetrics = await buildMetrics('alpha-shop', AggregationTemporality.CUMULATIVE);
      const betaMetrics = await buildMetrics('beta-search', AggregationTemporality.DELTA);
      const alphaLogs = await buildLogs('alpha-shop');
      const betaLogs = await buildLogs('beta-search');
      const metricPoints = (rm) => rm.scopeMetrics.reduce((n, sm) => n + sm.metrics.reduce((k, m) => k + m.dataPoints.length, 0), 0);

      // Plus a burst of small requests alternating between the tenants.
      const burst = { alpha: await makeSpans('alpha-shop', 30), beta: await makeSpans('beta-search', 30) };
      alphaSpans.push(...burst.alpha);
      betaSpans.push(...burst.beta);
      const alternating = [];
      for (let i = 0; i < 10; i++) {
        alternating.push(exportOnce(client.traces('alpha'), burst.alpha.slice(i * 3, i * 3 + 3)));
        alternating.push(exportOnce(client.traces('beta'), burst.beta.slice(i * 3, i * 3 + 3)));
      }
      const results = await Promise.all([
        ...alternating,
        exportOnce(client.traces('alpha'), alphaSpans.slice(0, 5)),
        exportOnce(client.traces('beta'), betaSpans.slice(0, 30)),
        exportOnce(client.tracesGrpc('alpha'), alphaSpans.slice(5, 45)),
        exportOnce(client.tracesGrpc('beta'), betaSpans.slice(30, -30)),
        exportOnce(client.traces('alpha'), alphaSpans.slice(45, -30)),
        exportOnce(client.metrics('alpha'), alphaMetrics),
        exportOnce(client.metrics('beta'), betaMetrics),
        exportOnce(client.logs('alpha'), alphaLogs),
        exportOnce(client.logs('beta'), betaLogs),
      ]);
      results.forEach((r, i) => assert.equal(r.code, ExportResultCode.SUCCESS, `export #${i} failed: ${r.error?.message}`));

      const nPoints = metricPoints(alphaMetrics) + metricPoints(betaMetrics);
      const complete = () =>
        hc.delivered('traces').length >= alphaSpans.length + betaSpans.length &&
        jaeger.delivered().length >= alphaSpans.length &&
        hc.delivered('metrics').length >= nPoints &&
        loki.delivered('logs').length >= alphaLogs.length + betaLogs.length;
      await waitFor(complete, 10_000);
      await sleep(600); // several batch timeouts: anything extra or duplicated would have arrived

      assert.deepEqual(hc.violations, []);
      assert.deepEqual(jaeger.violations, []);
      assert.deepEqual(loki.violations, []);
      const refused = [...hc.requests, ...loki.requests].filter((r) => r.outcome !== 'ok');
      assert.deepEqual(refused.map((r) => `${r.path} ${r.outcome} ${r.message}`), []);

      // Honeycomb: each tenant's spans exactly, with that tenant's key only.
      const hcAlpha = hc.deliveredWithKey('traces', hcKey.alpha);
      const hcBeta = hc.deliveredWithKey('traces', hcKey.beta);
      assert.equal(hc.delivered('traces').length, hcAlpha.length + hcBeta.length, 'spans with an unexpected key');
      assert.deepEqual(deliveredSpanMap(hcAlpha), sdkSpanMap(alphaSpans), 'honeycomb: alpha spans (key alpha)');
      assert.deepEqual(deliveredSpanMap(hcBeta), sdkSpanMap(betaSpans), 'honeycomb: beta spans (key beta)');
      for (const it of hcAlpha) assert.equal(it.service, 'alpha-shop');
      for (const it of hcBeta) assert.equal(it.service, 'beta-search');

      // Jaeger: alpha's spans only, never beta's; no Honeycomb credentials.
      assert.deepEqual(deliveredSpanMap(jaeger.delivered()), sdkSpanMap(alphaSpans), 'jaeger: exactly alpha spans');
      for (const r of jaeger.requests) assert.equal(r.metadata['x-honeycomb-team'], undefined);

      // Metrics: to Honeycomb with the dataset header and the tenant's key;
      // traces requests carry no dataset (the sink flags one as a violation).
      for (const r of hc.attempts('metrics')) assert.equal(r.headers['x-honeycomb-dataset'], 'e2e-metrics');
      for (const r of hc.attempts('traces')) assert.equal(r.headers['x-honeycomb-dataset'], undefined);
      const mAlpha = hc.deliveredWithKey('metrics', hcKey.alpha);
      const mBeta = hc.deliveredWithKey('metrics', hcKey.beta);
      assert.equal(mAlpha.length, metricPoints(alphaMetrics));
      assert.equal(mBeta.length, metricPoints(betaMetrics));
      assert.ok(mAlpha.every((p) => p.service === 'alpha-shop') && mBeta.every((p) => p.service === 'beta-search'));
      const names = (rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.descriptor.name)).sort();
      assert.deepEqual([...new Set(mAlpha.map((p) => p.name))].sort(), [...new Set(names(alphaMetrics))]);

      // Logs: Loki only, both tenants, bodies as sent.
      assert.equal(hc.attempts('logs').length, 0, 'logs must not go to honeycomb');
      const logs = loki.delivered('logs');
      assert.equal(logs.length, alphaLogs.length + betaLogs.length);
      assert.deepEqual(duplicates(logs, (l) => `${l.service}/${l.attributes['log.seq']}`), []);
      const bodies = (svc) => logs.filter((l) => l.service === svc).map((l) => (typeof l.body === 'string' ? l.body : l.body?.message)).sort();
      assert.deepEqual(bodies('alpha-shop'), ['disk full', 'no severity text, unsampled trace', 'user logged in']);
      assert.deepEqual(bodies('beta-search'), ['disk full', 'no severity text, unsampled trace', 'user logged in']);

      // The gateway's own accounting agrees.
      const m = await gw.metrics();
      const sum = (name, labels) => m.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
      assert.equal(sum(EXPORT.sent, { backend: 'honeycomb', signal: 'traces' }), alphaSpans.length + betaSpans.length);
      assert.equal(sum(EXPORT.sent, { backend: 'jaeger', signal: 'traces' }), alphaSpans.length);
      assert.equal(sum(EXPORT.sent, { backend: 'honeycomb', signal: 'metrics' }), nPoints);
      assert.equal(sum(EXPORT.sent, { backend: 'loki', signal: 'logs' }), alphaLogs.length + betaLogs.length);
      assert.equal(sum(EXPORT.failed, {}), 0);
    }));

  it('counts a partial success from the backend as rejected items and does not retry it', async () =>
    gw.withLog(async () => {
      const spans = await makeSpans('beta-search', 12);
      const before = await gw.metrics();
      const attemptsBefore = hc.attempts('traces').length;
      hc.once({ kind: 'partial', rejected: 4, message: 'span attributes too large' });
      const r = await exportOnce(client.traces('beta'), spans);
      assert.equal(r.code, ExportResultCode.SUCCESS);
      await waitFor(() => hc.attempts('traces').length > attemptsBefore, 5000);
      await sleep(1500); // 7x retry.initial_interval: a retry would have come
      const mine = hc.attempts('traces').slice(attemptsBefore);
      assert.equal(mine.length, 1, `expected one request, got ${mine.map((x) => x.outcome)}`);
      assert.equal(mine[0].outcome, 'partial');
      assert.deepEqual(deliveredSpanMap(mine[0].items), sdkSpanMap(spans));
      const after = await gw.metrics();
      assert.equal(delta(before, after, EXPORT.failed, { backend: 'honeycomb', signal: 'traces', reason: 'rejected' }), 4);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'honeycomb', signal: 'traces' }), 8);
      assert.equal(delta(before, after, EXPORT.retries, { backend: 'honeycomb' }), 0);
      assert.match(gw.log(), /export partially rejected.*backend=honeycomb.*rejected=4.*span attributes too large/);

      // The same over gRPC: Jaeger's partial success for alpha's spans.
      const alphaSpans = await makeSpans('alpha-shop', 6);
      const jBefore = jaeger.attempts().length;
      const b2 = await gw.metrics();
      jaeger.once({ kind: 'partial', rejected: 1, message: 'one span rejected' });
      assert.equal((await exportOnce(client.tracesGrpc('alpha'), alphaSpans)).code, ExportResultCode.SUCCESS);
      await waitFor(() => jaeger.attempts().length > jBefore, 5000);
      await sleep(1500);
      const jMine = jaeger.attempts().slice(jBefore);
      assert.deepEqual(jMine.map((x) => x.outcome), ['partial']);
      const a2 = await gw.metrics();
      assert.equal(delta(b2, a2, EXPORT.failed, { backend: 'jaeger', signal: 'traces', reason: 'rejected' }), 1);
      assert.equal(delta(b2, a2, EXPORT.sent, { backend: 'jaeger', signal: 'traces' }), 5);
      assert.equal(delta(b2, a2, EXPORT.retries, { backend: 'jaeger' }), 0);
    }));

  it('drops and counts a batch the backend refuses with 401, without retrying; other tenants are unaffected', async () =>
    gw.withLog(async () => {
      const spans = await makeSpans('beta-search', 7);
      const alphaSpans = await makeSpans('alpha-shop', 3);
      const before = await gw.metrics();
      const attemptsBefore = hc.attempts('traces').length;
      hc.keys.delete(hcKey.beta); // beta's Honeycomb key revoked at Honeycomb
      // Jaeger refuses alpha's spans with RESOURCE_EXHAUSTED and no RetryInfo: not retryable.
      const jBefore = jaeger.attempts().length;
      jaeger.once({ kind: 'status', code: GRPC_STATUS.RESOURCE_EXHAUSTED, message: 'over quota' });
      try {
        assert.equal((await exportOnce(client.traces('beta'), spans)).code, ExportResultCode.SUCCESS);
        await waitFor(() => hc.attempts('traces').length > attemptsBefore, 5000);
        await sleep(1500);
        assert.equal((await exportOnce(client.traces('alpha'), alphaSpans)).code, ExportResultCode.SUCCESS);
        await waitFor(() => hc.attempts('traces').length > attemptsBefore + 1, 5000);
        await sleep(300);
      } finally {
        hc.keys.set(hcKey.beta, 'env-beta');
      }
      const mine = hc.attempts('traces').slice(attemptsBefore);
      const betaTries = mine.filter((x) => x.key === hcKey.beta);
      assert.equal(betaTries.length, 1, `beta's batch was sent ${betaTries.length} times`);
      assert.equal(betaTries[0].outcome, 'http_401');
      assert.equal(betaTries[0].status, 401);
      assert.deepEqual(deliveredSpanMap(betaTries[0].items), sdkSpanMap(spans));
      const alphaOk = mine.filter((x) => x.key === hcKey.alpha && x.outcome === 'ok');
      assert.deepEqual(deliveredSpanMap(alphaOk.flatMap((x) => x.items)), sdkSpanMap(alphaSpans));
      // Jaeger's exporter thread counts the drop once it has read the refusal.
      const jaegerDropped = { backend: 'jaeger', signal: 'traces', reason: 'dropped' };
      await waitFor(async () => delta(before, await gw.metrics(), EXPORT.failed, jaegerDropped) >= 3, 5000);
      const after = await gw.metrics();
      assert.equal(delta(before, after, EXPORT.failed, { backend: 'honeycomb', signal: 'traces', reason: 'dropped' }), 7);
      assert.equal(delta(before, after, EXPORT.retries, { backend: 'honeycomb' }), 0);
      assert.match(gw.log(), /export dropped.*backend=honeycomb.*tenant=beta.*items=7.*status=401/);
      const jMine = jaeger.attempts().slice(jBefore);
      assert.deepEqual(jMine.map((x) => x.outcome), [`grpc_${GRPC_STATUS.RESOURCE_EXHAUSTED}`]);
      assert.deepEqual(deliveredSpanMap(jMine[0].items), sdkSpanMap(alphaSpans));
      assert.equal(delta(before, after, EXPORT.failed, jaegerDropped), 3);
      assert.equal(delta(before, after, EXPORT.retries, { backend: 'jaeger' }), 0);
      // The key never appears in the gateway's log.
      assert.ok(!gw.log().includes(hcKey.beta) && !gw.log().includes(hcKey.alpha), 'a Honeycomb key was logged');
    }));

  it('retries what the backends say is temporary (429 + Retry-After, 503, UNAVAILABLE, RESOURCE_EXHAUSTED + RetryInfo), delivers once', async () =>
    gw.withLog(async () => {
      const spans = await makeSpans('alpha-shop', 9);
      const before = await gw.metrics();
      const hcBefore = hc.attempts('traces').length;
      const jBefore = jaeger.attempts().length;
      // Retry-After well above what a retry after the 503 takes (backoff 300 ms):
      // the wait after the 503 must not reuse it.
      const retryAfterS = 4;
      hc.once({ kind: 'status', status: 429, retryAfter: retryAfterS, message: 'rate limited' });
      hc.once({ kind: 'status', status: 503, message: 'try again' });
      jaeger.once({ kind: 'status', code: GRPC_STATUS.UNAVAILABLE, message: 'collector restarting' });
      jaeger.once({ kind: 'status', code: GRPC_STATUS.RESOURCE_EXHAUSTED, message: 'slow down', retryDelayS: 1 });
      assert.equal((await exportOnce(client.traces('alpha'), spans)).code, ExportResultCode.SUCCESS);
      const ids = sdkSpanMap(spans);
      const mine = (list) => list.filter((r) => r.items.some((it) => ids.has(it.spanId)));
      await waitFor(
        () => mine(hc.attempts('traces')).some((r) => r.outcome === 'ok') && mine(jaeger.attempts()).some((r) => r.outcome === 'ok'),
        10_000,
      );
      await sleep(600);
      const h = mine(hc.attempts('traces').slice(hcBefore));
      assert.deepEqual(h.map((r) => r.outcome), ['http_429', 'http_503', 'ok']);
      const waitAfter429 = h[1].at - h[0].at;
      const waitAfter503 = h[2].at - h[1].at;
      assert.ok(waitAfter429 >= retryAfterS * 1000 - 100, `retried ${waitAfter429} ms after a 429 with Retry-After: ${retryAfterS}`);
      // backoff(1) is 300 ms +-20 % plus a round trip; the 429's Retry-After
      // reused would be 4 s. 2 s separates the two.
      assert.ok(waitAfter503 < 2000, `retried ${waitAfter503} ms after a 503 (initial_interval 200ms)`);
      const j = mine(jaeger.attempts().slice(jBefore));
      assert.deepEqual(j.map((r) => r.outcome), [`grpc_${GRPC_STATUS.UNAVAILABLE}`, `grpc_${GRPC_STATUS.RESOURCE_EXHAUSTED}`, 'ok']);
      const waitAfterRetryInfo = j[2].at - j[1].at;
      assert.ok(waitAfterRetryInfo >= 900, `retried ${waitAfterRetryInfo} ms after RESOURCE_EXHAUSTED with RetryInfo 1s`);
      assert.deepEqual(deliveredSpanMap(h[2].items), ids);
      assert.deepEqual(deliveredSpanMap(j[2].items), ids);
      const after = await gw.metrics();
      assert.equal(delta(before, after, EXPORT.retries, { backend: 'honeycomb', signal: 'traces' }), 2);
      assert.equal(delta(before, after, EXPORT.retries, { backend: 'jaeger', signal: 'traces' }), 2);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'honeycomb', signal: 'traces' }), 9);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'jaeger', signal: 'traces' }), 9);
      assert.equal(delta(before, after, EXPORT.failed), 0);
    }));
});

describe('export: OTLP/JSON and zstd to Honeycomb, field by field', () => {
  let gw, hcJson, hcProto;
  const exporters = [];
  const key = `hc_${randomHex(8)}`;

  before(async () => {
    hcJson = await HoneycombSink.start({ name: 'honeycomb-json', keys: { [key]: 'env' }, encoding: 'json' });
    hcProto = await HoneycombSink.start({ name: 'honeycomb-proto', keys: { [key]: 'env' } });
    const hcYaml = (sink, extra) => `    type: otlp_http
    endpoint: ${sink.url}
    headers: {x-honeycomb-team: ${key}}
    signal_headers: {metrics: {x-honeycomb-dataset: e2e-metrics}}
    batch: {timeout: 50ms}
    retry: {initial_interval: 200ms, max_interval: 1s}
${extra}`;
    gw = await Gateway.start({
      config: (w) => `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: in, grpc: 127.0.0.1:${w.grpcPort}, http: 127.0.0.1:${w.httpPort}, header_timeout: 2s}
backends:
  hc-json:
${hcYaml(hcJson, '    encoding: json\n    compression: zstd')}
  hc-proto:
${hcYaml(hcProto, '    compression: none')}
pipelines:
  - {name: all, signals: [traces, metrics, logs], backends: [hc-json, hc-proto]}
`,
    });
  });

  after(async () => {
    for (const e of exporters) await e.shutdown().catch(() => {});
    try {
      if (gw) await gw.stop();
    } finally {
      await hcJson?.stop();
      await hcProto?.stop();
    }
  });

  it('delivers the SDK data unchanged as OTLP/JSON (zstd) and as protobuf (uncompressed)', async () =>
    gw.withLog(async () => {
      const spans = await buildSpans('json-shop');
      const metrics = await buildMetrics('json-shop', AggregationTemporality.CUMULATIVE);
      const logs = await buildLogs('json-shop');
      const add = (e) => {
        exporters.push(e);
        return e;
      };
      const results = await Promise.all([
        exportOnce(add(new ProtoTraceExporter({ url: `${gw.httpUrl}/v1/traces` })), spans),
        exportOnce(add(new ProtoMetricExporter({ url: `${gw.httpUrl}/v1/metrics` })), metrics),
        exportOnce(add(new ProtoLogExporter({ url: `${gw.httpUrl}/v1/logs` })), logs),
      ]);
      results.forEach((r, i) => assert.equal(r.code, ExportResultCode.SUCCESS, `export #${i}: ${r.error?.message}`));
      const nPoints = metrics.scopeMetrics.reduce((n, sm) => n + sm.metrics.reduce((k, m) => k + m.dataPoints.length, 0), 0);
      const done = (s) => s.delivered('traces').length >= 5 && s.delivered('metrics').length >= nPoints && s.delivered('logs').length >= 3;
      await waitFor(() => done(hcJson) && done(hcProto), 10_000);
      await sleep(300);
      assert.deepEqual([...hcJson.violations, ...hcProto.violations], []);
      for (const r of hcJson.requests) {
        assert.equal(r.headers['content-type'], 'application/json');
        assert.equal(r.headers['content-encoding'], 'zstd');
      }
      for (const r of hcProto.requests) {
        assert.equal(r.headers['content-type'], 'application/x-protobuf');
        assert.equal(r.headers['content-encoding'], undefined);
      }
      const strip = (items) =>
        items
          .map(({ request, ...rest }) => rest)
          .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
      for (const sig of ['traces', 'metrics', 'logs']) {
        assert.deepEqual(strip(hcJson.delivered(sig)), strip(hcProto.delivered(sig)), `${sig}: JSON and protobuf deliveries differ`);
      }
      // Spans against the SDK's own objects.
      const bySpan = new Map(hcJson.delivered('traces').map((s) => [s.spanId, s]));
      assert.equal(bySpan.size, spans.length);
      for (const s of spans) {
        const got = bySpan.get(s.spanContext().spanId);
        assert.ok(got, `span ${s.name} missing`);
        assert.equal(got.traceId, s.spanContext().traceId);
        assert.equal(got.parentSpanId, s.parentSpanContext?.spanId ?? '');
        assert.equal(got.name, s.name);
        assert.equal(got.kind, s.kind + 1, `${s.name}: kind`);
        assert.deepEqual(got.attributes, { ...s.attributes }, `${s.name}: attributes`);
        assert.equal(got.scope.name, s.instrumentationScope.name);
      }
      const logBodies = hcJson.delivered('logs').map((l) => (typeof l.body === 'string' ? l.body : l.body.message)).sort();
      assert.deepEqual(logBodies, ['disk full', 'no severity text, unsampled trace', 'user logged in']);
    }));

  it('reads a partial success answered in OTLP/JSON (int64 as a string)', async () =>
    gw.withLog(async () => {
      const spans = await makeSpans('json-shop', 5);
      const before = await gw.metrics();
      const n = hcJson.attempts('traces').length;
      hcJson.once({ kind: 'partial', rejected: 2, message: 'two spans too old' });
      const e = new ProtoTraceExporter({ url: `${gw.httpUrl}/v1/traces` });
      exporters.push(e);
      assert.equal((await exportOnce(e, spans)).code, ExportResultCode.SUCCESS);
      await waitFor(() => hcJson.attempts('traces').length > n && hcProto.delivered('traces').length >= 10, 5000);
      await sleep(1200);
      assert.deepEqual(hcJson.attempts('traces').slice(n).map((r) => r.outcome), ['partial']);
      const after = await gw.metrics();
      assert.equal(delta(before, after, EXPORT.failed, { backend: 'hc-json', signal: 'traces', reason: 'rejected' }), 2);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'hc-json', signal: 'traces' }), 3);
      assert.equal(delta(before, after, EXPORT.sent, { backend: 'hc-proto', signal: 'traces' }), 5);
      assert.equal(delta(before, after, EXPORT.retries), 0);
    }));
});

describe('export: header precedence', () => {
  let gw, hc;
  const key = { common: `hc_common_${randomHex(6)}`, alpha: `hc_alpha_${randomHex(6)}` };

  before(async () => {
    hc = await HoneycombSink.start({ keys: { [key.common]: 'env-shared', [key.alpha]: 'env-alpha' } });
    gw = await Gateway.start({
      config: (w) => `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: alpha-in, http: 127.0.0.1:${w.httpPort}, tenant: alpha, header_timeout: 2s}
  - {name: beta-in, http: 127.0.0.1:${w.grpcPort}, tenant: beta, header_timeout: 2s}
tenants:
  - {id: alpha, endpoints: [alpha-in]}
  - {id: beta, endpoints: [beta-in]}
backends:
  honeycomb:
    type: otlp_http
    endpoint: ${hc.url}
    headers: {x-honeycomb-team: ${key.common}}
    tenants:
      alpha: {headers: {x-honeycomb-team: ${key.alpha}}}
    batch: {timeout: 50ms}
    retry: {initial_interval: 200ms, max_interval: 1s}
pipelines:
  - {name: all, signals: [traces], backends: [honeycomb]}
`,
    });
  });

  after(() => stopAll(gw, () => hc?.stop()));

  it("a tenant's header replaces the backend-wide header of the same name (one value on the wire)", async () =>
    gw.withLog(async () => {
      const alpha = await makeSpans('alpha-shop', 4);
      const beta = await makeSpans('beta-search', 4);
      const ea = new ProtoTraceExporter({ url: `${gw.httpUrl}/v1/traces` });
      const eb = new ProtoTraceExporter({ url: `http://127.0.0.1:${gw.grpcPort}/v1/traces` });
      try {
        assert.equal((await exportOnce(ea, alpha)).code, ExportResultCode.SUCCESS);
        assert.equal((await exportOnce(eb, beta)).code, ExportResultCode.SUCCESS);
      } finally {
        await ea.shutdown();
        await eb.shutdown();
      }
      await waitFor(() => hc.attempts('traces').length >= 2, 5000);
      await sleep(1200);
      const sentKeys = hc.attempts('traces').map((r) => `${r.items[0]?.service}: ${r.headers['x-honeycomb-team']} -> ${r.outcome}`);
      // The tenant without its own header gets the common one.
      assert.deepEqual(deliveredSpanMap(hc.deliveredWithKey('traces', key.common)), sdkSpanMap(beta), sentKeys.join('; '));
      // alpha's batch must carry alpha's key alone, not "common, alpha".
      assert.deepEqual(deliveredSpanMap(hc.deliveredWithKey('traces', key.alpha)), sdkSpanMap(alpha), sentKeys.join('; '));
    }));
});
