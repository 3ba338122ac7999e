// Export under failure: backends down, a crash with a disk queue, a full
// queue, a stalled backend. The OpenTelemetry JS SDK sends to the gateway,
// the gateway's otlp_http / otlp_grpc backends deliver to the emulated
// intakes of lib/sinks.js, and each test compares the span ids that arrived
// with those the gateway acknowledged to the SDK.
//
// Durations are shortened to keep the suite quick: the backend outage lasts
// 10 s (not 30 s), retries start at 200 ms and back off to at most 1 s.

import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { Gateway, httpRequest, sleep } from '../lib/gateway.js';
import {
  HoneycombSink,
  JaegerGrpcSink,
  countBy,
  deliveredSpanMap,
  duplicates,
  exportOnce,
  makeSpans,
  sdkSpanMap,
  waitFor,
} from '../lib/sinks.js';
import { newSpan, randomHex, traceRequestProto } from '../lib/wire.js';

const HC_KEY = `hc_${randomHex(8)}`;
const OUTAGE_MS = 10_000;
const M = {
  sent: 'otlp_gateway_export_sent_items_total',
  failed: 'otlp_gateway_export_failed_items_total',
  retries: 'otlp_gateway_export_retries_total',
  queueEntries: 'otlp_gateway_export_queue_entries',
  queueFull: 'otlp_gateway_queue_full_total',
  received: 'otlp_gateway_received_spans_total',
};

/**
 * A gateway with one open listener and the given backends (YAML snippets
 * keyed by name) and pipelines ([{name, backends}], traces only).
 */
function faultConfig(w, backends, pipelines) {
  const b = Object.entries(backends)
    .map(([name, body]) => `  ${name}:\n${body.trim().split('\n').map((l) => `    ${l}`).join('\n')}`)
    .join('\n');
  const p = pipelines.map((x) => `  - {name: ${x.name}, signals: [traces], backends: [${x.backends.join(', ')}]}`).join('\n');
  return `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: in, grpc: 127.0.0.1:${w.grpcPort}, http: 127.0.0.1:${w.httpPort}, header_timeout: 2s}
backends:
${b}
pipelines:
${p}
`;
}

const RETRY = 'retry: {initial_interval: 200ms, max_interval: 1s, max_elapsed: 120s}';
const honeycombYaml = (hc, extra = '') => `type: otlp_http
endpoint: ${hc.url}
headers: {x-honeycomb-team: ${HC_KEY}}
timeout: 2s
batch: {timeout: 50ms}
${RETRY}
${extra}`;
const jaegerYaml = (j, extra = '') => `type: otlp_grpc
endpoint: ${j.endpoint}
timeout: 2s
batch: {timeout: 50ms}
${RETRY}
${extra}`;

/** Everything a test started, stopped at the end even when it failed. */
class Rig {
  constructor() {
    this.things = [];
  }
  add(x) {
    this.things.push(x);
    return x;
  }
  proto(gw) {
    return this.add(new ProtoTraceExporter({ url: `${gw.httpUrl}/v1/traces`, timeoutMillis: 10_000 }));
  }
  grpc(gw) {
    return this.add(new GrpcTraceExporter({ url: `http://${gw.grpcAddr}`, timeoutMillis: 10_000 }));
  }
  async close() {
    for (const x of this.things.reverse()) {
      if (x instanceof Gateway) continue;
      await (x.shutdown ?? x.stop).call(x).catch(() => {});
    }
  }
}

function assertSameSpans(items, spans, what) {
  assert.deepEqual(duplicates(items, (s) => s.spanId), [], `${what}: duplicated span ids`);
  const got = deliveredSpanMap(items);
  const want = sdkSpanMap(spans);
  const missing = [...want.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !want.has(k));
  assert.deepEqual({ missing: missing.length, extra: extra.length }, { missing: 0, extra: 0 }, `${what}: span sets differ`);
  assert.deepEqual(got, want, `${what}: span names or trace ids differ`);
}

describe('export faults', () => {
  const tmps = [];
  after(async () => {
    for (const d of tmps) await fsp.rm(d, { recursive: true, force: true });
  });
  // A Rig with the Honeycomb and Jaeger sinks most tests export to.
  async function rigWithSinks() {
    const rig = new Rig();
    const hc = rig.add(await HoneycombSink.start({ keys: { [HC_KEY]: 'env' } }));
    const jaeger = rig.add(await JaegerGrpcSink.start());
    return { rig, hc, jaeger };
  }
  // A disk queue directory in a fresh temporary one, removed after the suite.
  async function queueDir(prefix) {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
    tmps.push(dir);
    return path.join(dir, 'q');
  }

  it(`backends down for ${OUTAGE_MS / 1000} s then back: exports succeed meanwhile, then everything arrives once`, async () => {
    const { rig, hc, jaeger } = await rigWithSinks();
    const gw = await Gateway.start({
      config: (w) =>
        faultConfig(w, { honeycomb: honeycombYaml(hc), jaeger: jaegerYaml(jaeger) }, [
          { name: 'traces', backends: ['honeycomb', 'jaeger'] },
        ]),
    });
    try {
      await gw.withLog(async () => {
        const proto = rig.proto(gw);
        const grpc = rig.grpc(gw);
        await hc.down();
        await jaeger.down();
        const sent = [];
        const t0 = Date.now();
        for (let i = 0; Date.now() - t0 < OUTAGE_MS; i++) {
          const spans = await makeSpans(`outage-${i}`, 20);
          const started = Date.now();
          const r = await exportOnce(i % 2 ? grpc : proto, spans);
          assert.equal(r.code, ExportResultCode.SUCCESS, `export ${i} during the outage: ${r.error?.message}`);
          assert.ok(Date.now() - started < 2000, `export ${i} took ${Date.now() - started} ms`);
          sent.push(...spans);
          await sleep(1000);
        }
        assert.equal(hc.requests.length + jaeger.requests.length, 0);
        assert.ok((await gw.metricSum(M.queueEntries, { backend: 'honeycomb' })) > 0, 'nothing queued for honeycomb');
        assert.ok((await gw.metricSum(M.retries, { backend: 'jaeger' })) > 0, 'jaeger was not retried');
        await hc.up();
        await jaeger.up();
        const upAt = Date.now();
        await waitFor(() => hc.delivered('traces').length >= sent.length && jaeger.delivered().length >= sent.length, 10_000);
        const lag = Date.now() - upAt;
        await sleep(500);
        assertSameSpans(hc.delivered('traces'), sent, 'honeycomb');
        assertSameSpans(jaeger.delivered(), sent, 'jaeger');
        assert.ok(lag < 5000, `delivery took ${lag} ms after the backends came back (max_interval 1s)`);
        assert.deepEqual([...hc.violations, ...jaeger.violations], []);
        assert.equal(await gw.metricSum(M.failed), 0);
        // (the gauge drops once the gateway has read the last answers)
        await waitFor(async () => (await gw.metricSum(M.queueEntries)) === 0, 10_000);
        assert.equal(await gw.metricSum(M.queueEntries), 0);
      });
      await gw.stop();
    } finally {
      await gw.kill();
      await rig.close();
    }
  });

  it('SIGKILL with a disk queue (fsync: always, small segments): acknowledged spans are delivered by the next process, once', async () => {
    const { rig, hc, jaeger } = await rigWithSinks();
    const qdir = await queueDir('otlp-gw-faults-q-');
    // 4 KiB segments: the queue spans several files, some of them already
    // delivered and deleted, when the process dies.
    const queue = `queue: {dir: ${qdir}, fsync: always, segment_bytes: 4KiB}`;
    const config = (w) =>
      faultConfig(w, { honeycomb: honeycombYaml(hc, queue), jaeger: jaegerYaml(jaeger, queue) }, [
        { name: 'traces', backends: ['honeycomb', 'jaeger'] },
      ]);
    const gw1 = await Gateway.start({ config });
    const sent = [];
    try {
      await gw1.withLog(async () => {
        const proto = rig.proto(gw1);
        const grpc = rig.grpc(gw1);
        // Phase 1, backends up: delivered and acknowledged by the backends.
        for (let i = 0; i < 4; i++) {
          const spans = await makeSpans(`before-${i}`, 25);
          assert.equal((await exportOnce(i % 2 ? grpc : proto, spans)).code, ExportResultCode.SUCCESS);
          sent.push(...spans);
        }
        await waitFor(() => hc.delivered('traces').length >= sent.length && jaeger.delivered().length >= sent.length, 5000);
        await waitFor(async () => (await gw1.metricSum(M.queueEntries)) === 0, 5000);
        // The delivered segments: two kept as spares per queue, for the
        // next write segments to overwrite (their old records stay past
        // the new ones, and must not come back after the restart).
        const spares = async () => (await fsp.readdir(path.join(qdir, 'honeycomb'))).filter((f) => f.endsWith('.free'));
        await waitFor(async () => (await spares()).length === 2, 5000);
        // Phase 2, backends down: queued on disk only.
        await hc.down();
        await jaeger.down();
        for (let i = 0; i < 6; i++) {
          const spans = await makeSpans(`crash-${i}`, 25);
          const r = await exportOnce(i % 2 ? grpc : proto, spans);
          assert.equal(r.code, ExportResultCode.SUCCESS, `export ${i}: ${r.error?.message}`);
          sent.push(...spans);
        }
        assert.equal(await gw1.metricSum(M.queueEntries, { backend: 'honeycomb' }), 6);
        assert.deepEqual(await spares(), [], 'both spares written into again');
      });
      const exit = await gw1.kill('SIGKILL');
      assert.equal(exit.signal, 'SIGKILL');
    } finally {
      await gw1.kill();
    }
    await hc.up();
    await jaeger.up();
    const gw2 = await Gateway.start({ config });
    try {
      await gw2.withLog(async () => {
        await waitFor(() => hc.delivered('traces').length >= sent.length && jaeger.delivered().length >= sent.length, 10_000);
        await sleep(500);
        assertSameSpans(hc.delivered('traces'), sent, 'honeycomb after the restart');
        assertSameSpans(jaeger.delivered(), sent, 'jaeger after the restart');
        assert.match(gw2.log(), /exporter backend.*name=honeycomb.*recovered=6\b/);
        assert.deepEqual([...hc.violations, ...jaeger.violations], []);
      });
      await gw2.stop();
      await gw1.removeDir();
    } finally {
      await gw2.kill();
      await rig.close();
    }
  });

  it('SIGKILL with batches in flight out of order (queue.consumers: 4, disk queue): nothing acknowledged is lost', async () => {
    // The first batch stalls at each sink while the three behind it are
    // delivered: they are acked out of order, behind an unacked one. The
    // process is killed then. The cursor on disk stays before the stalled
    // batch, so the next process sends it and, again, the three behind it
    // (at-least-once: duplicates allowed, losses not).
    const { rig, hc, jaeger } = await rigWithSinks();
    const qdir = await queueDir('otlp-gw-faults-ooo-');
    hc.once({ kind: 'stall' });
    jaeger.once({ kind: 'stall' });
    const common = `timeout: 60s
batch: {timeout: 0ms, max_items: 25}
${RETRY}
queue: {dir: ${qdir}, fsync: always, segment_bytes: 4KiB, consumers: 4}`;
    const config = (w) =>
      faultConfig(
        w,
        {
          honeycomb: `type: otlp_http\nendpoint: ${hc.url}\nheaders: {x-honeycomb-team: ${HC_KEY}}\n${common}`,
          jaeger: `type: otlp_grpc\nendpoint: ${jaeger.endpoint}\n${common}`,
        },
        [{ name: 'traces', backends: ['honeycomb', 'jaeger'] }],
      );
    const gw1 = await Gateway.start({ config });
    const sent = [];
    try {
      await gw1.withLog(async () => {
        const proto = rig.proto(gw1);
        for (let i = 0; i < 4; i++) {
          const spans = await makeSpans(`ooo-${i}`, 25);
          assert.equal((await exportOnce(proto, spans)).code, ExportResultCode.SUCCESS);
          sent.push(...spans);
          if (i === 0) await waitFor(() => hc.attempts('traces').length > 0 && jaeger.attempts().length > 0, 5000);
        }
        await waitFor(() => hc.delivered('traces').length >= 75 && jaeger.delivered().length >= 75, 10_000);
        // The stalled batch is still in flight: one entry queued per backend.
        // A sink records a request before it answers, and the gateway lowers
        // the gauge once it has read the answer: wait for the last delivered
        // batch to leave the gauge (a lost stalled batch leaves it at 0).
        const queued = (backend) => gw1.metricSum(M.queueEntries, { backend });
        await waitFor(async () => (await queued('honeycomb')) === 1 && (await queued('jaeger')) === 1, 10_000);
        assert.equal(await queued('honeycomb'), 1);
        assert.equal(await queued('jaeger'), 1);
        assert.equal(hc.delivered('traces').filter((s) => s.service === 'ooo-0').length, 0);
      });
      assert.equal((await gw1.kill('SIGKILL')).signal, 'SIGKILL');
    } finally {
      await gw1.kill();
    }
    const gw2 = await Gateway.start({ config });
    try {
      await gw2.withLog(async () => {
        const want = sdkSpanMap(sent);
        const covered = (items) => new Set(items.map((s) => s.spanId)).size === want.size;
        await waitFor(() => covered(hc.delivered('traces')) && covered(jaeger.delivered()), 10_000);
        await waitFor(async () => (await gw2.metricSum(M.queueEntries)) === 0, 5000);
        for (const [name, items] of [['honeycomb', hc.delivered('traces')], ['jaeger', jaeger.delivered()]]) {
          const counts = countBy(items, (s) => s.spanId);
          assert.deepEqual([...counts.keys()].filter((k) => !want.has(k)), [], `${name}: spans never sent`);
          // the stalled batch once (after the restart), the three behind it at most twice
          for (const s of items) assert.ok(counts.get(s.spanId) <= (s.service === 'ooo-0' ? 1 : 2));
        }
        assert.match(gw2.log(), /exporter backend.*name=honeycomb.*recovered=4\b/);
        assert.match(gw2.log(), /exporter backend.*name=jaeger.*recovered=4\b/);
        assert.deepEqual([...hc.violations, ...jaeger.violations], []);
      });
      await gw2.stop();
      await gw1.removeDir();
    } finally {
      await gw2.kill();
      await rig.close();
    }
  });

  it('queue full: the SDK gets 503 + Retry-After and retries; every acknowledged span is delivered exactly once', async () => {
    const rig = new Rig();
    const hc = rig.add(await HoneycombSink.start({ keys: { [HC_KEY]: 'env' } }));
    const gw = await Gateway.start({
      config: (w) =>
        faultConfig(w, { honeycomb: honeycombYaml(hc, 'queue: {max_bytes: 64KiB}') }, [{ name: 'traces', backends: ['honeycomb'] }]),
    });
    try {
      await gw.withLog(async () => {
        await hc.down();
        // ~20 KB per request: the 64 KiB queue holds three of the 24.
        const batches = [];
        for (let i = 0; i < 24; i++) batches.push(await makeSpans(`full-${i}`, 50, { padBytes: 300 }));
        const exporter = rig.proto(gw);
        const pending = batches.map((spans) => exportOnce(exporter, spans));
        // While the queue is full: a raw request sees what the SDK sees.
        await waitFor(async () => (await gw.metricSum(M.queueFull)) > 0, 5000);
        // 30 KB: more than the room a full queue has left (under one SDK request).
        const probe = Array.from({ length: 60 }, () => newSpan(`probe-${'q'.repeat(480)}`));
        const raw = await httpRequest({
          port: gw.httpPort,
          method: 'POST',
          path: '/v1/traces',
          headers: { 'content-type': 'application/x-protobuf' },
          body: traceRequestProto('probe', probe),
        });
        // Long enough for SDK retries to meet the full queue, short enough
        // that later ones land after the backend is back and has drained it.
        await sleep(500);
        const admittedWhileDown = await gw.metricSum(M.received);
        await hc.up();
        const results = await Promise.all(pending);
        const acked = batches.filter((_, i) => results[i].code === ExportResultCode.SUCCESS).flat();
        const sent = batches.flat();
        await waitFor(() => hc.delivered('traces').length >= acked.length, 10_000);
        await sleep(500);

        assert.equal(raw.status, 503, `the probe while the queue was full got ${raw.status}`);
        assert.ok(Number(raw.headers['retry-after']) >= 1, `no Retry-After on the 503: ${JSON.stringify(raw.headers)}`);
        assert.ok((await gw.metricSum(M.queueFull)) > 0);
        const refusedSdk = results.filter((r) => r.code !== ExportResultCode.SUCCESS).length;
        // The SDK's retries got through once the backend drained the queue.
        assert.ok(
          acked.length > admittedWhileDown,
          `acknowledged ${acked.length} spans, ${admittedWhileDown} admitted before the backend came back (${refusedSdk} exports failed)`,
        );
        const delivered = hc.delivered('traces');
        assert.deepEqual(duplicates(delivered, (s) => s.spanId), [], 'duplicated span ids');
        const got = deliveredSpanMap(delivered);
        const want = sdkSpanMap(sent);
        const notAcked = [...got.keys()].filter((k) => !want.has(k));
        assert.deepEqual(notAcked, [], 'delivered spans nobody sent');
        const lost = acked.filter((s) => !got.has(s.spanContext().spanId));
        assert.equal(lost.length, 0, `${lost.length} acknowledged spans were not delivered`);
        for (const [id, v] of got) assert.deepEqual(v, want.get(id), `span ${id} differs`);
        // Refused exports were admitted nowhere: everything delivered was acknowledged.
        assert.equal(got.size, acked.length, 'spans of refused exports were delivered');
        assert.deepEqual(hc.violations, []);
      });
      await gw.stop();
    } finally {
      await gw.kill();
      await rig.close();
    }
  });

  it('one backend stalls (never answers): a backend of another pipeline keeps receiving promptly', async () => {
    const { rig, hc, jaeger } = await rigWithSinks();
    // A long timeout for the stalled backend: a consumer blocked behind one of
    // its attempts would be late by seconds, far more than a loaded machine adds.
    const STALL_TIMEOUT_MS = 10_000;
    // Prompt is well under a second; blocked behind the stall is up to the
    // 10 s timeout. 5 s separates the two.
    const PROMPT_MS = 5000;
    const slowYaml = honeycombYaml(hc).replace(/^timeout: 2s$/m, `timeout: ${STALL_TIMEOUT_MS}ms`);
    const gw = await Gateway.start({
      config: (w) =>
        faultConfig(w, { slow: slowYaml, fast: jaegerYaml(jaeger) }, [
          { name: 'to-slow', backends: ['slow'] },
          { name: 'to-fast', backends: ['fast'] },
        ]),
    });
    try {
      await gw.withLog(async () => {
        hc.behave({ kind: 'stall' });
        const proto = rig.proto(gw);
        const sent = [];
        const lags = [];
        // A stalled attempt whose spans an earlier stalled attempt carried: a
        // retry, which the sink (never answering) leaves to the timeout.
        const retried = () => {
          const seen = new Set();
          for (const r of hc.requests.filter((x) => x.outcome === 'stalled')) {
            if (r.items.some((it) => seen.has(it.spanId))) return true;
            for (const it of r.items) seen.add(it.spanId);
          }
          return false;
        };
        const start = Date.now();
        // Eight batches at least, and on until an attempt of the slow backend
        // has timed out and been retried (into the stall again).
        for (let i = 0; i < 8 || (!retried() && Date.now() - start < 2 * STALL_TIMEOUT_MS); i++) {
          const spans = await makeSpans(`stall-${i}`, 10);
          const t0 = Date.now();
          const r = await exportOnce(proto, spans);
          assert.equal(r.code, ExportResultCode.SUCCESS, `export ${i}: ${r.error?.message}`);
          const ackMs = Date.now() - t0;
          sent.push(...spans);
          const ok = await waitFor(() => jaeger.delivered().length >= sent.length, PROMPT_MS, 10);
          lags.push({ ackMs, deliveredMs: Date.now() - t0 });
          assert.ok(ok, `batch ${i} did not reach the fast backend within ${PROMPT_MS} ms`);
          await sleep(300);
        }
        assert.ok(
          lags.every((l) => l.ackMs < PROMPT_MS && l.deliveredMs < PROMPT_MS),
          `slow acknowledgements or deliveries while the other backend stalls: ${JSON.stringify(lags)}`,
        );
        assertSameSpans(jaeger.delivered(), sent, 'fast backend');
        assert.ok(retried(), 'the slow backend was not retried after its timeout');
        assert.equal(hc.delivered('traces').length, 0);
        // The stalled backend recovers and catches up; nothing is lost or doubled.
        // down/up cuts the attempts it holds, instead of waiting out their 10 s timeout.
        hc.behave({ kind: 'ok' });
        await hc.down();
        await hc.up();
        await waitFor(() => hc.delivered('traces').length >= sent.length, 10_000);
        await sleep(500);
        assertSameSpans(hc.delivered('traces'), sent, 'slow backend after it recovered');
        assert.deepEqual([...hc.violations, ...jaeger.violations], []);
      });
      await gw.stop();
    } finally {
      await gw.kill();
      await rig.close();
    }
  });

  it('SIGTERM while two backends stall: the flush is bounded as documented (5 s), not 5 s per backend', async () => {
    const { rig, hc, jaeger } = await rigWithSinks();
    hc.behave({ kind: 'stall' });
    jaeger.behave({ kind: 'stall' });
    // Default exporter timeout (10s): the stalled requests are still open at the stop.
    const gw = await Gateway.start({
      config: (w) =>
        faultConfig(
          w,
          {
            honeycomb: `type: otlp_http\nendpoint: ${hc.url}\nheaders: {x-honeycomb-team: ${HC_KEY}}\nbatch: {timeout: 10ms}`,
            jaeger: `type: otlp_grpc\nendpoint: ${jaeger.endpoint}\nbatch: {timeout: 10ms}`,
          },
          [{ name: 'traces', backends: ['honeycomb', 'jaeger'] }],
        ),
    });
    try {
      await gw.withLog(async () => {
        // A raw request on a connection that closes after it, so that only the flush can hold the stop up.
        const r = await httpRequest({
          port: gw.httpPort,
          method: 'POST',
          path: '/v1/traces',
          headers: { 'content-type': 'application/x-protobuf' },
          body: traceRequestProto('stop', [newSpan('a'), newSpan('b')]),
        });
        assert.equal(r.status, 200);
        await waitFor(() => hc.requests.length > 0 && jaeger.requests.length > 0, 5000);
      });
      await gw.stop(); // exit code 0 required
      assert.match(gw.log(), /export queue not drained.*backend=honeycomb.*lost_with_memory_queue/);
      // The bounded flush takes 5 s; a flush per backend, one after the other,
      // 10 s (the exit, a sanitizer's leak check included, adds to both). 8.5 s
      // separates the two.
      assert.ok(
        gw.stopMs < 8500,
        `stopping took ${gw.stopMs} ms with two stalled backends: each backend's flush waits its own 5 s, one after the other`,
      );
    } finally {
      await gw.kill();
      await rig.close();
    }
  });

  it('SIGTERM with an idle SDK keep-alive connection (default header_timeout) exits promptly', async () => {
    const rig = new Rig();
    const hc = rig.add(await HoneycombSink.start({ keys: { [HC_KEY]: 'env' } }));
    // The listener keeps the default header_timeout (10s); the harness' own
    // config sets 2s, which hides the problem in lifecycle.test.js.
    const gw = await Gateway.start({
      config: (w) =>
        faultConfig(w, { honeycomb: honeycombYaml(hc) }, [{ name: 'traces', backends: ['honeycomb'] }]).replace(
          ', header_timeout: 2s}',
          '}',
        ),
    });
    try {
      const spans = await makeSpans('idle', 3);
      await gw.withLog(async () => {
        const exporter = rig.proto(gw); // OTLP/HTTP over a keep-alive agent, as every SDK does
        assert.equal((await exportOnce(exporter, spans)).code, ExportResultCode.SUCCESS);
        await waitFor(() => hc.delivered('traces').length >= spans.length, 5000);
      });
      await sleep(200);
      await gw.stop();
      // Prompt is well under a second (a sanitizer's leak check included);
      // waiting for the connection's header_timeout is 10 s. 5 s separates the two.
      assert.ok(
        gw.stopMs < 5000,
        `stopping took ${gw.stopMs} ms: the idle HTTP/1.1 keep-alive connection was not closed at SIGTERM, ` +
          'the stop waited for its header_timeout (10 s)',
      );
    } finally {
      await gw.kill();
      await rig.close();
    }
  });
});
