// Prometheus remote write end to end: the OpenTelemetry JS SDK sends metrics
// to the gateway over OTLP/HTTP, the gateway's prometheus_remote_write
// backend writes them into a real Prometheus (Debian's 2.42, remote-write
// receiver on), and the tests read them back with PromQL: names with unit
// suffixes and _total, histogram buckets, labels from attributes and from
// the resource (job, instance, target_info), values.
//
// Also: delta temporality is dropped and counted as rejected; a sample
// Prometheus refuses (out of order, HTTP 400) drops the batch without
// retrying; a Prometheus that is down is retried until it is back; with
// `sigv4:` (Amazon Managed Prometheus) every request carries a signature
// the AWS SDK's signer agrees with, checked by a proxy in front of Prometheus.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ValueType } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider } from '@opentelemetry/sdk-metrics';

import { Gateway, freePort, httpRequest, stopAll } from '../lib/gateway.js';
import { Prometheus, SigV4Verifier, gaugeRequestProto } from '../lib/prometheus.js';
import { CollectingReader, RUN_ID } from '../lib/sdkdata.js';
import { exportOnce, waitFor } from '../lib/sinks.js';

const EXPORT = {
  sent: 'otlp_gateway_export_sent_items_total',
  failed: 'otlp_gateway_export_failed_items_total',
  retries: 'otlp_gateway_export_retries_total',
};

function configYaml(w, writeUrl) {
  return `workers: 2
admin: 127.0.0.1:${w.adminPort}
log: {level: info}
listeners:
  - name: default
    http: 127.0.0.1:${w.httpPort}
    header_timeout: 2s
backends:
  prom:
    type: prometheus_remote_write
    endpoint: ${writeUrl}
    resource_to_labels: [deployment.environment]
    timeout: 5s
    batch: {timeout: 100ms}
    retry: {initial_interval: 200ms, max_interval: 500ms, max_elapsed: 30s}
pipelines:
  - {name: metrics, signals: [metrics], backends: [prom]}
`;
}

/** Change of metric `name`{labels} between two /metrics samples. */
function delta(beforeM, afterM, name, labels = {}) {
  const pick = (m) =>
    m.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
  return pick(afterM) - pick(beforeM);
}

/**
 * One collection from an SDK meter provider: a counter, an up-down counter,
 * an observable gauge and a histogram, under a resource with
 * service.namespace/name/instance.id. `service` keeps tests apart.
 */
async function sdkMetrics(service, temporality = AggregationTemporality.CUMULATIVE) {
  const reader = new CollectingReader({ aggregationTemporalitySelector: () => temporality });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': service,
      'service.namespace': 'shop',
      'service.instance.id': `inst-${RUN_ID}`,
      'deployment.environment': 'e2e',
      'host.name': 'e2e-host',
    }),
    readers: [reader],
  });
  const meter = provider.getMeter('e2e-prometheus', '1.0.0');
  const orders = meter.createCounter('shop.orders', { description: 'Orders placed', unit: '{order}', valueType: ValueType.INT });
  orders.add(3, { payment: 'card', 'http.route': '/pay' });
  orders.add(2, { payment: 'card', 'http.route': '/pay' });
  orders.add(1, { payment: 'cash', 'http.route': '/pay' });
  const items = meter.createUpDownCounter('shop.cart.items', { description: 'Items in carts', unit: '{item}' });
  items.add(5, { store: 'north' });
  items.add(-2, { store: 'north' });
  const temp = meter.createObservableGauge('shop.temperature', { description: 'Store temperature', unit: 'Cel' });
  temp.addCallback((r) => r.observe(21.5, { room: 'a' }));
  const duration = meter.createHistogram('shop.checkout.duration', {
    description: 'Checkout time',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.1, 0.5, 1] },
  });
  for (const v of [0.05, 0.3, 0.4, 2]) duration.record(v, { route: '/pay' });
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  await provider.shutdown();
  return resourceMetrics;
}

const points = (rm) => rm.scopeMetrics.reduce((n, sm) => n + sm.metrics.reduce((k, m) => k + m.dataPoints.length, 0), 0);

/** One SDK export of sdkMetrics(service) through the gateway, acknowledged;
 * returns the metrics sent and the gateway's metrics from before. */
async function exportThrough(gw, service) {
  const exporter = new OTLPMetricExporter({ url: `${gw.httpUrl}/v1/metrics`, timeoutMillis: 10_000 });
  const rm = await sdkMetrics(service);
  const before = await gw.metrics();
  try {
    assert.equal((await exportOnce(exporter, rm)).code, ExportResultCode.SUCCESS);
  } finally {
    await exporter.shutdown();
  }
  return { rm, before };
}

describe('prometheus_remote_write: SDK metrics into a real Prometheus', () => {
  let prom, gw, exporter;

  before(async () => {
    prom = await Prometheus.start();
    gw = await Gateway.start({ config: (w) => configYaml(w, prom.writeUrl) });
    exporter = new OTLPMetricExporter({ url: `${gw.httpUrl}/v1/metrics`, timeoutMillis: 10_000 });
  });

  after(async () => {
    await exporter?.shutdown().catch(() => {});
    try {
      if (gw) await gw.stop();
    } finally {
      await prom?.destroy();
    }
  });

  it('stores counters, up-down counters, gauges and histograms with Prometheus names, labels and values', async () =>
    gw.withLog(async () => {
      const service = 'checkout';
      const rm = await sdkMetrics(service);
      const before = await gw.metrics();
      const r = await exportOnce(exporter, rm);
      assert.equal(r.code, ExportResultCode.SUCCESS, r.error?.message);
      const sel = `{job="shop/${service}"}`;
      const job = { job: `shop/${service}`, instance: `inst-${RUN_ID}`, deployment_environment: 'e2e' };

      // counter: _total, one series per attribute set, attribute names sanitized
      const orders = await prom.waitFor(`shop_orders_total${sel}`, 2);
      const byPayment = Object.fromEntries(orders.map((s) => [s.metric.payment, s]));
      assert.equal(byPayment.card.value, 5);
      assert.equal(byPayment.cash.value, 1);
      assert.deepEqual(byPayment.card.metric, { __name__: 'shop_orders_total', ...job, payment: 'card', http_route: '/pay' });

      // up-down counter: a gauge, no _total
      const cart = await prom.waitFor(`shop_cart_items${sel}`);
      assert.deepEqual(cart.map((s) => [s.metric.store, s.value]), [['north', 3]]);
      assert.deepEqual(await prom.query(`shop_cart_items_total${sel}`), []);

      // gauge with the UCUM unit Cel
      const temp = await prom.waitFor(`shop_temperature_celsius${sel}`);
      assert.deepEqual(temp.map((s) => [s.metric.room, s.value]), [['a', 21.5]]);

      // histogram: cumulative buckets with Prometheus' le spelling, _sum, _count
      const buckets = await prom.waitFor(`shop_checkout_duration_seconds_bucket${sel}`, 4);
      assert.deepEqual(
        Object.fromEntries(buckets.map((s) => [s.metric.le, s.value])),
        { 0.1: 1, 0.5: 3, 1: 3, '+Inf': 4 },
      );
      for (const b of buckets) assert.equal(b.metric.route, '/pay');
      assert.equal((await prom.waitFor(`shop_checkout_duration_seconds_sum${sel}`))[0].value, 2.75);
      assert.equal((await prom.waitFor(`shop_checkout_duration_seconds_count${sel}`))[0].value, 4);
      // PromQL works on them as on scraped data
      const p50 = await prom.query(`histogram_quantile(0.5, shop_checkout_duration_seconds_bucket${sel})`);
      assert.ok(p50.length === 1 && p50[0].value > 0.1 && p50[0].value <= 0.5, JSON.stringify(p50));

      // target_info: the other resource attributes, job and instance
      const info = await prom.waitFor(`target_info${sel}`);
      assert.equal(info.length, 1);
      assert.equal(info[0].value, 1);
      const ti = info[0].metric;
      assert.equal(ti.instance, `inst-${RUN_ID}`);
      assert.equal(ti.host_name, 'e2e-host');
      assert.equal(ti.deployment_environment, 'e2e');
      assert.equal(ti.service_name, undefined);
      assert.equal(ti.service_instance_id, undefined);

      // every series has job and instance; no stray families
      const all = await prom.series(sel);
      assert.deepEqual([...new Set(all.map((s) => s.__name__))].sort(), [
        'shop_cart_items',
        'shop_checkout_duration_seconds_bucket',
        'shop_checkout_duration_seconds_count',
        'shop_checkout_duration_seconds_sum',
        'shop_orders_total',
        'shop_temperature_celsius',
        'target_info',
      ]);
      for (const s of all) assert.equal(s.instance, `inst-${RUN_ID}`, JSON.stringify(s));

      // Prometheus stores samples before it answers; the gateway counts them
      // once it has the answer: poll rather than race.
      let afterM;
      await waitFor(async () => {
        afterM = await gw.metrics();
        return delta(before, afterM, EXPORT.sent, { backend: 'prom', signal: 'metrics' }) >= points(rm);
      }, 5000);
      assert.equal(delta(before, afterM, EXPORT.sent, { backend: 'prom', signal: 'metrics' }), points(rm));
      assert.equal(delta(before, afterM, EXPORT.failed, { backend: 'prom' }), 0);
    }));

  it('drops delta temporality and counts it as rejected', async () =>
    gw.withLog(async () => {
      const service = 'delta';
      const rm = await sdkMetrics(service, AggregationTemporality.DELTA);
      const before = await gw.metrics();
      const r = await exportOnce(exporter, rm);
      assert.equal(r.code, ExportResultCode.SUCCESS, r.error?.message);
      // The gauge (which has no temporality) arrives; the delta points of
      // the counter, the up-down counter and the histogram do not.
      await prom.waitFor(`shop_temperature_celsius{job="shop/${service}"}`);
      await waitFor(async () => delta(before, await gw.metrics(), EXPORT.failed, { backend: 'prom', reason: 'rejected' }) > 0, 5000);
      const afterM = await gw.metrics();
      const rejected = delta(before, afterM, EXPORT.failed, { backend: 'prom', signal: 'metrics', reason: 'rejected' });
      assert.equal(rejected, 4); // counter 2, up-down counter 1, histogram 1
      assert.equal(delta(before, afterM, EXPORT.sent, { backend: 'prom', signal: 'metrics' }), points(rm) - 4);
      assert.deepEqual(await prom.query(`shop_orders_total{job="shop/${service}"}`), []);
      assert.deepEqual(await prom.query(`shop_cart_items{job="shop/${service}"}`), []);
      assert.deepEqual(await prom.query(`{__name__=~"shop_checkout_duration_seconds.*", job="shop/${service}"}`), []);
      assert.match(gw.log(), /export partially rejected.*backend=prom.*rejected=4.*delta_temporality=4/);
    }));

  it('drops a batch Prometheus refuses (out-of-order sample, HTTP 400) without retrying', async () =>
    gw.withLog(async () => {
      const now = Date.now();
      const send = async (timeMs, value) => {
        const res = await httpRequest({
          port: gw.httpPort,
          method: 'POST',
          path: '/v1/metrics',
          headers: { 'content-type': 'application/x-protobuf' },
          body: gaugeRequestProto('ooo', 'e2e.ooo', [{ timeMs, value }]),
        });
        assert.equal(res.status, 200);
      };
      await send(now, 1);
      await prom.waitFor('e2e_ooo{job="ooo"}');
      const before = await gw.metrics();
      await send(now - 60_000, 2); // older than what Prometheus has for the series
      await waitFor(async () => delta(before, await gw.metrics(), EXPORT.failed, { backend: 'prom', reason: 'dropped' }) > 0, 5000);
      await new Promise((res) => setTimeout(res, 1000)); // 5x retry.initial_interval: a retry would have come
      const afterM = await gw.metrics();
      assert.equal(delta(before, afterM, EXPORT.failed, { backend: 'prom', signal: 'metrics', reason: 'dropped' }), 1);
      assert.equal(delta(before, afterM, EXPORT.retries, { backend: 'prom' }), 0);
      assert.match(gw.log(), /export dropped.*backend=prom.*reason=rejected_by_backend status=400.*out of order/);
      const [s] = await prom.query('e2e_ooo{job="ooo"}');
      assert.equal(s.value, 1);
    }));
});

describe('prometheus_remote_write: a Prometheus that is down', () => {
  let prom, gw, port;

  before(async () => {
    port = await freePort();
    gw = await Gateway.start({ config: (w) => configYaml(w, `http://127.0.0.1:${port}/api/v1/write`) });
  });

  after(() => stopAll(gw, () => prom?.destroy()));

  it('is retried until it is up, then the metrics arrive once', async () =>
    gw.withLog(async () => {
      const { rm, before } = await exportThrough(gw, 'late');
      await waitFor(async () => delta(before, await gw.metrics(), EXPORT.retries, { backend: 'prom' }) >= 2, 5000);
      assert.equal(delta(before, await gw.metrics(), EXPORT.sent, { backend: 'prom' }), 0);
      assert.match(gw.log(), /export retrying.*backend=prom/);

      prom = await Prometheus.start({ port });
      const orders = await prom.waitFor('shop_orders_total{job="shop/late"}', 2);
      assert.deepEqual(orders.map((s) => s.value).sort(), [1, 5]);
      await waitFor(async () => delta(before, await gw.metrics(), EXPORT.sent, { backend: 'prom' }) > 0, 5000);
      // Prometheus stores samples before it answers; the gateway counts them
      // once it has the answer: poll rather than race.
      let afterM;
      await waitFor(async () => {
        afterM = await gw.metrics();
        return delta(before, afterM, EXPORT.sent, { backend: 'prom', signal: 'metrics' }) >= points(rm);
      }, 5000);
      assert.equal(delta(before, afterM, EXPORT.sent, { backend: 'prom', signal: 'metrics' }), points(rm));
      assert.equal(delta(before, afterM, EXPORT.failed, { backend: 'prom' }), 0);
    }));
});

describe('prometheus_remote_write with sigv4 (Amazon Managed Prometheus)', () => {
  const creds = { accessKeyId: 'AKIDE2EPROMETHEUS', secretAccessKey: 'e2e/Secret+Key/0123456789abcdefghijklmn' };
  let prom, amp, gw;

  before(async () => {
    prom = await Prometheus.start();
    amp = await SigV4Verifier.start({ targetPort: prom.port, credentials: creds, region: 'eu-west-1', service: 'aps' });
    const backend = (name, secret) => `  ${name}:
    type: prometheus_remote_write
    endpoint: ${amp.url}/api/v1/write
    sigv4:
      region: eu-west-1
      credentials: {source: static, access_key_id: ${creds.accessKeyId}, secret_access_key: "${secret}"}
    batch: {timeout: 100ms}
    retry: {initial_interval: 200ms, max_interval: 500ms}
`;
    gw = await Gateway.start({
      config: (w) => `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: default, http: 127.0.0.1:${w.httpPort}}
backends:
${backend('amp', creds.secretAccessKey)}${backend('amp_wrong_key', 'not-the-secret')}pipelines:
  - {name: metrics, signals: [metrics], backends: [amp, amp_wrong_key]}
`,
    });
  });

  after(() => stopAll(gw, () => amp?.stop(), () => prom?.destroy()));

  it('signs every request so that AWS would accept it, and a wrong key is refused (403, dropped)', async () =>
    gw.withLog(async () => {
      const { rm, before } = await exportThrough(gw, 'signed');
      const orders = await prom.waitFor('shop_orders_total{job="shop/signed"}', 2);
      assert.deepEqual(orders.map((s) => s.value).sort(), [1, 5]);
      // Prometheus stores before it answers: poll until the gateway has read both answers.
      await waitFor(async () => {
        const m = await gw.metrics();
        return delta(before, m, EXPORT.failed, { backend: 'amp_wrong_key' }) > 0 &&
          delta(before, m, EXPORT.sent, { backend: 'amp', signal: 'metrics' }) >= points(rm);
      }, 5000);
      const afterM = await gw.metrics();
      assert.equal(delta(before, afterM, EXPORT.sent, { backend: 'amp', signal: 'metrics' }), points(rm));
      assert.equal(delta(before, afterM, EXPORT.failed, { backend: 'amp_wrong_key', reason: 'dropped' }), points(rm));
      assert.equal(delta(before, afterM, EXPORT.retries, {}), 0);
      assert.deepEqual([...new Set(amp.verdicts)].sort(), ['ok', 'signature mismatch']);
      assert.match(gw.log(), /export dropped.*backend=amp_wrong_key.*status=403.*signature mismatch/);
      assert.ok(!gw.log().includes(creds.secretAccessKey), 'the secret key was logged');
    }));
});
