// A tail-sampled pipeline in front of a backend whose queue is tiny and
// whose sink stalls (never answers): sampled traces the queue has no room
// for are held in the sampler (not dropped), the pipeline's other backend
// (a file) gets each trace at once and exactly once, clients get the
// retryable 503 (with Retry-After) once the held traces fill the sampler's
// budget, and when the sink recovers every acknowledged span reaches it
// exactly once. Requests are raw OTLP/HTTP protobuf so the 503 is seen as
// such (an SDK would retry it quietly).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Gateway, httpRequest, sleep } from '../lib/gateway.js';
import { HoneycombSink, deliveredSpanMap, duplicates, waitFor } from '../lib/sinks.js';
import { randomHex, traceRequestProto } from '../lib/wire.js';

const HC_KEY = `hc_${randomHex(8)}`;
const M = {
  held: 'otlp_gateway_sampler_traces_held',
  dropped: 'otlp_gateway_sampler_export_dropped_total',
};

const config = (hc) => ({ grpcPort, httpPort, adminPort, dataDir }) => `
workers: 1
admin: 127.0.0.1:${adminPort}
listeners:
  - {name: in, grpc: 127.0.0.1:${grpcPort}, http: 127.0.0.1:${httpPort}, max_request_bytes: 1MiB}
backends:
  local: {type: file, dir: ${dataDir}}
  hc:
    type: otlp_http
    endpoint: ${hc.url}
    headers: {x-honeycomb-team: ${HC_KEY}}
    timeout: 1s
    batch: {timeout: 20ms}
    retry: {initial_interval: 200ms, max_interval: 500ms, max_elapsed: 300s}
    queue: {max_bytes: 64KiB}
sampling:
  all:
    decision_wait: 300ms
    max_bytes: 1MiB
    policies: [{name: all, type: always_sample}]
pipelines:
  - {name: held, signals: [traces], backends: [local, hc], sampling: all}
`;

/** One trace of 10 spans with ~4 KB names: ~40 KB on the wire. */
function bigTrace(i) {
  const traceId = randomHex(16);
  return Array.from({ length: 10 }, (_, k) => ({
    traceId,
    spanId: randomHex(8),
    name: `t${i}-s${k}-${'x'.repeat(4000)}`,
  }));
}

const post = (gw, spans) =>
  httpRequest({
    port: gw.httpPort,
    method: 'POST',
    path: '/v1/traces',
    headers: { 'content-type': 'application/x-protobuf' },
    body: traceRequestProto('e2e-sampled-backpressure', spans),
  });

describe('tail sampling with a full backend queue', () => {
  it('holds sampled traces until the stalled backend has room, answers 503 when the budget is full, loses nothing acknowledged', async () => {
    const hc = await HoneycombSink.start({ keys: { [HC_KEY]: 'env' } });
    hc.behave({ kind: 'stall' });
    const gw = await Gateway.start({ config: config(hc) });
    try {
      await gw.withLog(async () => {
        const acked = [];
        let refused = null;
        for (let i = 0; i < 200 && refused === null; i++) {
          const spans = bigTrace(i);
          const r = await post(gw, spans);
          if (r.status === 200) acked.push(...spans);
          else if (r.status === 503) refused = r;
          else assert.fail(`request ${i}: HTTP ${r.status} ${r.body.toString('latin1').slice(0, 200)}`);
          await sleep(10);
        }
        assert.ok(refused, 'the sampler never refused although its budget filled with held traces');
        assert.ok(refused.headers['retry-after'], '503 without Retry-After');
        assert.ok(acked.length >= 100, `only ${acked.length} spans acknowledged before the 503`);
        assert.ok((await gw.metricSum(M.held, { pipeline: 'held' })) > 0, 'no trace held');
        assert.equal(await gw.metricSum(M.dropped, { pipeline: 'held' }), 0, 'sampled spans counted as dropped');

        // The file backend had room all along: each acknowledged span once.
        const fileSpans = () =>
          gw
            .readSignal('traces')
            .flatMap((l) => l.resourceSpans || [])
            .flatMap((r) => r.scopeSpans || [])
            .flatMap((s) => s.spans || [])
            .map((s) => s.spanId);
        const want = new Set(acked.map((s) => s.spanId));
        assert.ok(await waitFor(() => fileSpans().length >= want.size, 5000), 'file backend is missing spans');
        assert.deepEqual(duplicates(fileSpans(), (x) => x), [], 'file backend: duplicated spans');
        assert.deepEqual(new Set(fileSpans()), want, 'file backend: span sets differ');

        // The sink recovers: every acknowledged span arrives there, once.
        hc.behave({ kind: 'ok' });
        const ok = await waitFor(() => hc.delivered('traces').length >= want.size, 60_000, 100);
        assert.ok(ok, `the recovered backend got ${hc.delivered('traces').length} of ${want.size} spans`);
        await sleep(500);
        const got = deliveredSpanMap(hc.delivered('traces')); // throws on a duplicate
        assert.deepEqual(new Set(got.keys()), want, 'recovered backend: span sets differ');
        assert.ok(await waitFor(async () => (await gw.metricSum(M.held, { pipeline: 'held' })) === 0, 5000), 'traces still held');
        assert.equal(await gw.metricSum(M.dropped, { pipeline: 'held' }), 0, 'sampled spans counted as dropped');
        // And the pipeline takes requests again.
        const again = bigTrace(999);
        assert.equal((await post(gw, again)).status, 200);
        assert.deepEqual(hc.violations, []);
      });
      await gw.stop();
      assert.doesNotMatch(gw.log(), /sampled spans dropped|sampled traces lost/);
    } finally {
      await gw.kill();
      await hc.stop();
    }
  });
});
