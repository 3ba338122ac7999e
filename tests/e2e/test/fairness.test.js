// Tenant fairness on one backend (issue 13, "One queue per backend"): two
// tenants share an otlp_http backend (emulated Honeycomb) whose per-tenant
// header is each tenant's Honeycomb key. The sink throttles alpha's key
// (429, Retry-After: 8). Beta's spans, sent after alpha's, must arrive
// promptly and completely while alpha backs off; alpha's spans arrive once
// the throttle lifts; every acknowledged span is delivered exactly once.
// And admission: with queue.tenant_share, a stuck tenant fills only its
// share of the queue; the other tenant is still admitted.

import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { Gateway, createApiKey as createKey } from '../lib/gateway.js';
import { HoneycombSink, deliveredSpanMap, exportOnce, makeSpans, sdkSpanMap, waitFor } from '../lib/sinks.js';
import { randomHex } from '../lib/wire.js';

function configYaml(w, o) {
  return `workers: 2
admin: 127.0.0.1:${w.adminPort}
log: {level: info}
listeners:
  - name: secure
    http: 127.0.0.1:${w.httpPort}
    auth: required
auth:
  api_keys: {file: ${o.keysFile}}
tenants:
  - {id: alpha, endpoints: [secure]}
  - {id: beta, endpoints: [secure]}
backends:
  honeycomb:
    type: otlp_http
    endpoint: ${o.hc.url}
    tenants:
      alpha: {headers: {x-honeycomb-team: ${o.hcKey.alpha}}}
      beta: {headers: {x-honeycomb-team: ${o.hcKey.beta}}}
    timeout: 5s
    batch: {timeout: 50ms}
    retry: {initial_interval: 200ms, max_interval: 1s}
    queue: {max_bytes: ${o.maxBytes}, tenant_share: 0.5}
pipelines:
  - {name: traces, signals: [traces], backends: [honeycomb]}
`;
}

describe('fairness: a throttled tenant beside a healthy one on one backend', () => {
  let gw, hc, tmp;
  const gwKey = {};
  const hcKey = { alpha: `hc_alpha_${randomHex(8)}`, beta: `hc_beta_${randomHex(8)}` };
  const exporters = [];
  const traces = (t) => {
    const e = new ProtoTraceExporter({
      url: `${gw.httpUrl}/v1/traces`,
      headers: { authorization: `Bearer ${gwKey[t]}` },
      timeoutMillis: 10_000,
    });
    exporters.push(e);
    return e;
  };

  before(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-fair-'));
    const keysFile = path.join(tmp, 'keys.yaml');
    gwKey.alpha = await createKey(keysFile, 'alpha');
    gwKey.beta = await createKey(keysFile, 'beta');
    hc = await HoneycombSink.start({ keys: { [hcKey.alpha]: 'env-alpha', [hcKey.beta]: 'env-beta' } });
    gw = await Gateway.start({ config: (w) => configYaml(w, { keysFile, hc, hcKey, maxBytes: '256KiB' }) });
  });

  after(async () => {
    for (const e of exporters) await e.shutdown().catch(() => {});
    try {
      if (gw) await gw.stop();
    } finally {
      await hc?.stop();
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });

  it('delivers the healthy tenant at once while the throttled one backs off, then the throttled one', async () =>
    gw.withLog(async () => {
      // Alpha's Retry-After: long, so that beta (six SDK exports and three
      // deliveries after t0) stays far ahead of it on a loaded machine.
      const RETRY_AFTER_S = 8;
      const lift = hc.behaveWhen((h) => h['x-honeycomb-team'] === hcKey.alpha, {
        kind: 'status',
        status: 429,
        retryAfter: RETRY_AFTER_S,
        message: 'rate limited',
      });
      try {
        const alpha = await makeSpans('alpha-shop', 20);
        const beta = await makeSpans('beta-search', 30);
        // alpha first, so that its batch is the one at the head of the queue
        const ra = await exportOnce(traces('alpha'), alpha.slice(0, 10));
        assert.equal(ra.code, ExportResultCode.SUCCESS, ra.error?.message);
        assert.ok(await waitFor(() => hc.attempts('traces').some((r) => r.status === 429), 10_000), 'alpha was throttled');
        const t0 = Date.now();
        const results = [];
        for (let i = 0; i < 3; i++) {
          results.push(await exportOnce(traces('beta'), beta.slice(i * 10, i * 10 + 10)));
          results.push(await exportOnce(traces('alpha'), alpha.slice(10 + i * 3, 13 + i * 3 + (i === 2 ? 1 : 0))));
        }
        results.forEach((r, i) => assert.equal(r.code, ExportResultCode.SUCCESS, `export #${i}: ${r.error?.message}`));
        // beta: all of it, well within alpha's Retry-After
        await waitFor(() => hc.deliveredWithKey('traces', hcKey.beta).length >= beta.length, RETRY_AFTER_S * 1000);
        const took = Date.now() - t0;
        assert.deepEqual(deliveredSpanMap(hc.deliveredWithKey('traces', hcKey.beta)), sdkSpanMap(beta));
        // Beside alpha it takes well under a second; behind alpha's backoff it
        // would take the 8 s Retry-After. 4.5 s separates the two.
        assert.ok(took < 4500, `beta took ${took} ms behind throttled alpha`);
        assert.equal(hc.deliveredWithKey('traces', hcKey.alpha).length, 0, 'alpha delivered while throttled');
      } finally {
        lift();
      }
      await waitFor(() => hc.deliveredWithKey('traces', hcKey.alpha).length >= 20, RETRY_AFTER_S * 1000 + 5000);
      const got = hc.deliveredWithKey('traces', hcKey.alpha);
      assert.equal(got.length, 20, 'every acknowledged alpha span, once');
      deliveredSpanMap(got); // throws on a duplicate
      for (const r of hc.requests.filter((x) => x.headers['x-honeycomb-team'] === hcKey.alpha && x.outcome === 'ok'))
        assert.ok(r.at >= hc.requests.find((x) => x.status === 429).at + RETRY_AFTER_S * 1000 - 500, 'alpha sent before its Retry-After');
      assert.deepEqual(hc.violations, []);
    }));

  it('holds a stuck tenant to its share of the queue and still admits the other', async () =>
    gw.withLog(async () => {
      const lift = hc.behaveWhen((h) => h['x-honeycomb-team'] === hcKey.alpha, {
        kind: 'status',
        status: 429,
        retryAfter: 30,
      });
      try {
        const before = hc.deliveredWithKey('traces', hcKey.beta).length;
        // ~10 KiB requests: alpha's half of the 256 KiB queue fills after ~13
        const big = await makeSpans('alpha-shop', 10, { padBytes: 1000 });
        let refused = 0;
        let admitted = 0;
        for (let i = 0; i < 40 && refused === 0; i++) {
          const r = await exportOnce(traces('alpha'), big);
          if (r.code === ExportResultCode.SUCCESS) admitted++;
          else refused++;
        }
        assert.ok(refused > 0, 'alpha was never refused');
        assert.ok(admitted > 0 && admitted < 40, `alpha admitted ${admitted}`);
        const beta = await makeSpans('beta-search', 40);
        const rb = await exportOnce(traces('beta'), beta);
        assert.equal(rb.code, ExportResultCode.SUCCESS, `beta refused beside a full alpha: ${rb.error?.message}`);
        await waitFor(() => hc.deliveredWithKey('traces', hcKey.beta).length >= before + 40, 10_000);
        assert.equal(hc.deliveredWithKey('traces', hcKey.beta).length, before + 40);
      } finally {
        lift();
      }
    }));
});
