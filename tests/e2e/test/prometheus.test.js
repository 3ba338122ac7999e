// Prometheus remote write end to end: the OpenTelemetry JS SDK sends metrics
// to the gateway over OTLP/HTTP, the gateway's prometheus_remote_write
// backend writes them into a real Prometheus (Debian's 2.42, remote-write
// receiver on), and the tests read them back with PromQL: names with unit
// suffixes and _total, histogram buckets, labels from attributes and from
// the resource (job, instance, target_info), values.
//
// With Prometheus' optional storage on (--enable-feature=native-histograms,
// exemplar-storage): OTLP exponential histograms arrive as native
// histograms, read back with PromQL's histogram functions, and the
// exemplars of span-linked points arrive with their trace_id and span_id
// (/api/v1/query_exemplars). Those requests are built field by field
// (lib/prometheus.js `otlp`), so buckets, scales and expected quantiles are
// known exactly: every expected quantile falls on a bucket boundary, where
// Prometheus' interpolation inside a bucket does not matter.
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
import { Prometheus, SigV4Verifier, gaugeRequestProto, otlp } from '../lib/prometheus.js';
import { CollectingReader, RUN_ID } from '../lib/sdkdata.js';
import { exportOnce, waitFor } from '../lib/sinks.js';
import { randomHex } from '../lib/wire.js';

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

async function post(gw, body) {
  const res = await httpRequest({
    port: gw.httpPort,
    method: 'POST',
    path: '/v1/metrics',
    headers: { 'content-type': 'application/x-protobuf' },
    body,
  });
  assert.equal(res.status, 200, res.body.toString());
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

  it('without native histograms in Prometheus: refused (HTTP 500), or left out with native_histograms: false', async () => {
    const yaml = (native) => (w) =>
      `admin: 127.0.0.1:${w.adminPort}
listeners: [{name: d, http: 127.0.0.1:${w.httpPort}}]
backends:
  prom: {type: prometheus_remote_write, endpoint: ${prom.writeUrl}, native_histograms: ${native}, batch: {timeout: 100ms},
         retry: {initial_interval: 100ms, max_interval: 200ms, max_elapsed: 1s}}
pipelines: [{name: m, signals: [metrics], backends: [prom]}]
`;
    const t = Date.now();
    const body = (service) =>
      otlp.request(
        service,
        otlp.expHistogram('e2e.nh.latency', 's', [{ timeMs: t, scale: 0, count: 1, sum: 1, positive: { offset: 0, counts: [1] } }]),
        otlp.gauge('e2e.nh.gauge', [{ timeMs: t, value: 7 }]),
      );
    const on = await Gateway.start({ config: yaml(true) });
    const off = await Gateway.start({ config: yaml(false) });
    try {
      await post(on, body('nh-on'));
      await post(off, body('nh-off'));
      // off: the gauge arrives, the histogram is counted as rejected
      assert.equal((await prom.waitFor('e2e_nh_gauge{job="nh-off"}'))[0].value, 7);
      await waitFor(async () => /export partially rejected.*native_histograms_off=1/.test(off.log()), 5000);
      // on: Prometheus refuses the whole request, gauge included
      await waitFor(async () => /export dropped.*retries_exhausted.*native histograms are disabled/.test(on.log()), 10_000);
      assert.deepEqual(await prom.query('e2e_nh_gauge{job="nh-on"}'), []);
    } finally {
      await stopAll(on, () => off.stop());
    }
  });

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

/** The single value of an instant query (waits until it has one). */
async function scalar(prom, expr) {
  const r = await prom.waitFor(expr);
  assert.equal(r.length, 1, `${expr}: ${JSON.stringify(r)}`);
  return r[0].value;
}

describe('prometheus_remote_write: native histograms and exemplars in a real Prometheus', () => {
  let prom, gw;

  before(async () => {
    prom = await Prometheus.start({ features: ['native-histograms', 'exemplar-storage'] });
    gw = await Gateway.start({ config: (w) => configYaml(w, prom.writeUrl) });
  });

  after(() => stopAll(gw, () => prom?.destroy()));

  it('stores exponential histograms as native histograms: histogram_count, _sum and _quantile read them back', async () =>
    gw.withLog(async () => {
      const t = Date.now();
      const body = otlp.request(
        'native',
        // base 2: (1,2] 2, (2,4] 3, (4,8] 5; rank 5 of 10 ends bucket (2,4]
        otlp.expHistogram('e2e.native.latency', 's', [
          { timeMs: t, scale: 0, count: 10, sum: 40, positive: { offset: 0, counts: [2, 3, 5] } },
        ]),
        // scale 9 merged down to 8: OTLP buckets 255 and 256 become native
        // buckets 128 and 129, so the median is the upper bound of 128: 2^(128/256)
        otlp.expHistogram('e2e.native.fine', '', [
          { timeMs: t, scale: 9, count: 2, sum: 2.9, positive: { offset: 255, counts: [1, 1] } },
        ]),
        // negative buckets and the zero bucket: (-2,-1] 4, zero 2, (1,2] 4;
        // rank 4 of 10 ends the negative bucket, at -1
        otlp.expHistogram('e2e.native.signed', '', [
          { timeMs: t, scale: 0, count: 10, sum: 0, zeroCount: 2, negative: { offset: 0, counts: [4] }, positive: { offset: 0, counts: [4] } },
        ]),
        // scale -5: no native schema is that coarse (upstream refuses it too)
        otlp.expHistogram('e2e.native.coarse', '', [{ timeMs: t, scale: -5, count: 1, zeroCount: 1 }]),
      );
      const before = await gw.metrics();
      await post(gw, body);

      const sel = '{job="native"}';
      assert.equal(await scalar(prom, `histogram_count(e2e_native_latency_seconds${sel})`), 10);
      assert.equal(await scalar(prom, `histogram_sum(e2e_native_latency_seconds${sel})`), 40);
      assert.equal(await scalar(prom, `histogram_quantile(0.5, e2e_native_latency_seconds${sel})`), 4);
      assert.equal(await scalar(prom, `histogram_quantile(0.2, e2e_native_latency_seconds${sel})`), 2);
      const fine = await scalar(prom, `histogram_quantile(0.5, e2e_native_fine${sel})`);
      assert.ok(Math.abs(fine - Math.SQRT2) < 1e-12, `${fine}`);
      assert.equal(await scalar(prom, `histogram_count(e2e_native_fine${sel})`), 2);
      assert.equal(await scalar(prom, `histogram_quantile(0.4, e2e_native_signed${sel})`), -1);
      assert.equal(await scalar(prom, `histogram_count(e2e_native_signed${sel})`), 10);

      // the stored histogram itself: its buckets' bounds and counts
      const raw = await prom.api(`/api/v1/query?query=${encodeURIComponent(`e2e_native_latency_seconds${sel}`)}`);
      assert.equal(raw.result.length, 1);
      const h = raw.result[0].histogram[1];
      assert.equal(h.count, '10');
      assert.equal(h.sum, '40');
      assert.deepEqual(
        h.buckets.map(([, lo, hi, n]) => [lo, hi, n]),
        [
          ['1', '2', '2'],
          ['2', '4', '3'],
          ['4', '8', '5'],
        ],
      );
      // one series under the plain name: no classic _bucket/_sum/_count
      // (and no target_info: the resource has nothing beyond job)
      const names = (await prom.series(sel)).map((s) => s.__name__).sort();
      assert.deepEqual(names, ['e2e_native_fine', 'e2e_native_latency_seconds', 'e2e_native_signed']);

      let afterM;
      await waitFor(async () => {
        afterM = await gw.metrics();
        return delta(before, afterM, EXPORT.sent, { backend: 'prom', signal: 'metrics' }) >= 3;
      }, 5000);
      assert.equal(delta(before, afterM, EXPORT.sent, { backend: 'prom', signal: 'metrics' }), 3);
      assert.equal(delta(before, afterM, EXPORT.failed, { backend: 'prom', signal: 'metrics', reason: 'rejected' }), 1);
      assert.match(gw.log(), /export partially rejected.*backend=prom.*rejected=1.*exponential_scale=1/);
    }));

  it('writes the exemplars of span-linked points with their trace_id and span_id', async () =>
    gw.withLog(async () => {
      const t = Date.now();
      const ids = [0, 1].map(() => ({ traceId: randomHex(16), spanId: randomHex(8) }));
      const counter = (i) =>
        otlp.counter('e2e.exemplar.orders', [{ timeMs: t + i * 1000, value: 5 + i, exemplars: [{ timeMs: t + i * 1000 - 10, value: 1, ...ids[i] }] }]);
      const hist = (i) =>
        otlp.expHistogram('e2e.exemplar.latency', 's', [
          {
            timeMs: t + i * 1000,
            scale: 0,
            count: 2 + i,
            sum: 3,
            positive: { offset: 0, counts: [1 + i, 1] },
            exemplars: [{ timeMs: t + i * 1000 - 5, value: 1.5, ...ids[i] }],
          },
        ]);
      // an explicit-bucket histogram: each exemplar on the bucket holding its value
      const classic = (i) =>
        otlp.histogram('e2e.exemplar.size', 'By', [
          {
            timeMs: t + i * 1000,
            bounds: [100, 1000],
            counts: [1, 1 + i, 0],
            sum: 600 + i * 500,
            exemplars: [{ timeMs: t + i * 1000 - 7, value: 500, ...ids[i] }],
          },
        ]);
      // two writes: Prometheus 2.42 adds a write's exemplars before its
      // histograms, so a native histogram series' exemplars are only kept
      // once the series exists (its first write's are not)
      await post(gw, otlp.request('ex', counter(0), hist(0), classic(0)));
      await prom.waitFor('e2e_exemplar_orders_total{job="ex"}');
      await post(gw, otlp.request('ex', counter(1), hist(1), classic(1)));
      await prom.waitFor('histogram_count(e2e_exemplar_latency_seconds{job="ex"}) == 3');

      const exemplarsOf = async (expr, want) => {
        let got = [];
        await waitFor(async () => {
          const r = await prom.queryExemplars(expr, t - 60_000, t + 60_000);
          got = r.flatMap((s) => s.exemplars);
          return got.length >= want;
        }, 5000).catch(() => {});
        return got;
      };
      const counterEx = await exemplarsOf('e2e_exemplar_orders_total{job="ex"}', 2);
      assert.deepEqual(
        counterEx.map((e) => [e.labels, Number(e.value), Math.round(e.timestamp * 1000)]),
        ids.map((id, i) => [{ trace_id: id.traceId, span_id: id.spanId }, 1, t + i * 1000 - 10]),
      );
      const classicEx = await prom.queryExemplars('e2e_exemplar_size_bytes_bucket{job="ex"}', t - 60_000, t + 60_000);
      assert.deepEqual(
        classicEx.map((s) => [s.seriesLabels.le, s.exemplars.map((e) => [e.labels.trace_id, Number(e.value)])]),
        [['1000', ids.map((id) => [id.traceId, 500])]],
      );
      const histEx = await exemplarsOf('e2e_exemplar_latency_seconds{job="ex"}', 1);
      assert.deepEqual(
        histEx.map((e) => [e.labels, Number(e.value)]),
        [[{ trace_id: ids[1].traceId, span_id: ids[1].spanId }, 1.5]],
      );
    }));
});
