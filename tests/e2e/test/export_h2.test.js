// otlp_grpc export over the gateway's own HTTP/2 client (backends/h2_client.c):
//
// - connection reuse against a real peer: a second gateway (discard backend)
//   is the gRPC sink, over h2c and over TLS (ALPN h2, a self-signed
//   certificate made with the openssl CLI as ca_file); many batches, four in
//   flight at a time (queue.consumers), travel on ONE TCP connection: the
//   sink's open-connection gauge and the sender's connections counter are 1;
// - a receiver that misbehaves, once: bad grpc-status, missing trailers,
//   RST_STREAM, REFUSED_STREAM, GOAWAY before and after processing, a
//   connection reset, and SETTINGS_MAX_CONCURRENT_STREAMS = 1. No real
//   server answers like that on demand, so the peer is node's http2 server
//   scripted per request. Every case ends with each acknowledged span either
//   delivered or counted as dropped -- nothing unaccounted for.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, describe, it } from 'node:test';

import { Gateway, httpRequest } from '../lib/gateway.js';
import { decodeOtlpProto, waitFor } from '../lib/sinks.js';
import { grpcFrame, grpcMessages, newSpan, traceRequestProto } from '../lib/wire.js';

const M = {
  sent: 'otlp_gateway_export_sent_items_total',
  failed: 'otlp_gateway_export_failed_items_total',
  retries: 'otlp_gateway_export_retries_total',
  connections: 'otlp_gateway_export_connections_total',
  queueEntries: 'otlp_gateway_export_queue_entries',
  received: 'otlp_gateway_received_spans_total',
  open: 'otlp_gateway_connections',
};
const { constants: H2 } = http2;

/** A gateway whose one pipeline sends traces to an otlp_grpc backend `out`. */
function senderConfig(w, endpoint, { extra = '', consumers = 4, timeout = '5s', maxItems = 20 } = {}) {
  return `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: in, http: 127.0.0.1:${w.httpPort}, grpc: 127.0.0.1:${w.grpcPort}}
backends:
  out:
    type: otlp_grpc
    endpoint: ${endpoint}
    timeout: ${timeout}
    batch: {timeout: 5ms, max_items: ${maxItems}}
    retry: {initial_interval: 100ms, max_interval: 300ms, max_elapsed: 60s}
    queue: {consumers: ${consumers}}
${extra}
pipelines:
  - {name: t, signals: [traces], backends: [out]}
`;
}

/** POSTs `n` OTLP/HTTP requests of `per` fresh spans, `parallel` at a time; returns the spans. */
async function send(gw, n, per, parallel = 4) {
  const spans = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const batch = Array.from({ length: per }, (_, k) => newSpan(`req-${i}-${k}`));
      const r = await httpRequest({
        port: gw.httpPort,
        method: 'POST',
        path: '/v1/traces',
        headers: { 'content-type': 'application/x-protobuf' },
        body: traceRequestProto('h2-export', batch),
      });
      assert.equal(r.status, 200, `request ${i}: ${r.status}`);
      spans.push(...batch);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return spans;
}

describe('otlp_grpc export: one HTTP/2 connection to a gateway sink', () => {
  const tmps = [];
  after(async () => {
    for (const d of tmps) await fsp.rm(d, { recursive: true, force: true });
  });

  // gzip is the default (as in the Collector). Uncompressed, the queued
  // bytes are sent as they are, with the gRPC prefix written apart: batches
  // of 20 spans fit one DATA frame, batches of 200 (about 90 KB) span
  // several.
  const variants = [
    { tls: false, gzip: true, maxItems: 20, name: 'h2c, gzip: 60 batches, 4 in flight,' },
    { tls: true, gzip: true, maxItems: 20, name: 'TLS (ALPN h2), gzip: 60 batches, 4 in flight,' },
    { tls: false, gzip: false, maxItems: 20, name: 'h2c, uncompressed: 60 batches,' },
    { tls: true, gzip: false, maxItems: 200, name: 'TLS, uncompressed, batches of 200 spans over several DATA frames,' },
    { tls: false, gzip: false, maxItems: 200, name: 'h2c, uncompressed, batches of 200 spans,' },
  ];
  for (const { tls, gzip, maxItems, name } of variants) {
    it(`${name} on one TCP connection`, async () => {
      let tlsListener = '';
      let caFile = '';
      if (tls) {
        const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-h2-'));
        tmps.push(dir);
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
          '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
          '-keyout', 'sink.key', '-out', 'sink.crt'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
        tlsListener = `, tls: {cert: ${dir}/sink.crt, key: ${dir}/sink.key}`;
        caFile = `    tls: {ca_file: ${dir}/sink.crt}`;
      }
      const extra = [caFile, gzip ? '' : '    compression: none'].filter(Boolean).join('\n');
      const sink = await Gateway.start({
        config: (w) => `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: in, grpc: 127.0.0.1:${w.grpcPort}, http: 127.0.0.1:${w.httpPort}${tlsListener}}
backends:
  drop: {type: discard}
pipelines:
  - {name: t, signals: [traces], backends: [drop]}
`,
      });
      const gw = await Gateway.start({
        config: (w) => senderConfig(w, `${tls ? 'https' : 'http'}://127.0.0.1:${sink.grpcPort}`, { extra, maxItems }),
      });
      try {
        await gw.withLog(() =>
          sink.withLog(async () => {
            const spans = await send(gw, 60, 20, 6);
            // The sink counts a batch when it takes it, the sender when the
            // answer is back: wait for both.
            await waitFor(
              async () =>
                (await sink.metricSum(M.received)) >= spans.length &&
                (await gw.metricSum(M.sent, { backend: 'out' })) >= spans.length,
              15_000,
            );
            assert.equal(await sink.metricSum(M.received, { transport: 'grpc' }), spans.length);
            assert.equal(await gw.metricSum(M.sent, { backend: 'out' }), spans.length);
            assert.equal(await gw.metricSum(M.failed), 0);
            assert.equal(await gw.metricSum(M.connections, { backend: 'out' }), 1, 'the sender opened more than one connection');
            assert.equal(await sink.metricSum(M.open, { listener: 'in' }), 1, 'the sink has more than one connection open');
            assert.ok(
              (await gw.metricSum('otlp_gateway_export_duration_seconds_count', { backend: 'out' })) >= 3,
              'fewer than 3 requests: nothing was multiplexed',
            );
          }),
        );
        await gw.stop();
        await sink.stop();
      } finally {
        await gw.kill();
        await sink.kill();
      }
    });
  }
});

/**
 * A gRPC receiver on node's http2 server that answers each request with the
 * next scripted action (then 'ok'): records what it accepted, the sessions
 * it saw and the most streams open at once.
 */
class ScriptedGrpcPeer {
  static async start(settings = {}) {
    const p = new ScriptedGrpcPeer();
    p.server = http2.createServer({ settings });
    p.server.on('session', (s) => {
      p.sessions++;
      p.live.add(s);
      s.on('close', () => p.live.delete(s));
      s.on('error', () => {});
    });
    p.server.on('stream', (stream, headers) => p._stream(stream, headers));
    p.server.on('connection', (sock) => {
      p.sockets.add(sock);
      sock.on('close', () => p.sockets.delete(sock));
    });
    await new Promise((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    p.port = p.server.address().port;
    return p;
  }

  constructor() {
    this.script = [];
    this.delivered = [];
    this.requests = 0;
    this.sessions = 0;
    this.open = 0;
    this.maxOpen = 0;
    this.delayMs = 0;
    this.cancelled = 0; // streams the client reset with CANCEL
    this.live = new Set();
    this.sockets = new Set(); // the raw TCP sockets (a session's socket may not be destroyed)
  }

  get endpoint() {
    return `http://127.0.0.1:${this.port}`;
  }

  _stream(stream, headers) {
    stream.on('error', () => {});
    this.requests++;
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    stream.on('close', () => {
      this.open--;
      if (stream.rstCode === H2.NGHTTP2_CANCEL) this.cancelled++;
    });
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => setTimeout(() => this._answer(stream, headers, Buffer.concat(chunks)), this.delayMs));
  }

  _answer(stream, headers, body) {
    if (stream.destroyed) return; // its connection was cut meanwhile
    const action = this.script.length ? this.script.shift() : 'ok';
    const items = () => {
      const [msg] = grpcMessages(body);
      const raw = body[0] === 1 ? zlib.gunzipSync(msg) : msg;
      return decodeOtlpProto('traces', raw);
    };
    const reply = (trailers) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: trailers !== null });
      if (trailers !== null) stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end(grpcFrame(Buffer.alloc(0)));
    };
    switch (action) {
      case 'ok':
        this.delivered.push(...items());
        reply({ 'grpc-status': '0' });
        break;
      case 'bad_status': // not a number: the client reads UNKNOWN
        reply({ 'grpc-status': 'abc', 'grpc-message': 'what' });
        break;
      case 'no_trailers': // the stream ends after the message, without grpc-status
        reply(null);
        break;
      case 'rst':
        stream.close(H2.NGHTTP2_INTERNAL_ERROR);
        break;
      case 'refused':
        stream.close(H2.NGHTTP2_REFUSED_STREAM);
        break;
      case 'goaway_unprocessed': // "I did not process stream id and above", then the connection ends
        stream.session.goaway(H2.NGHTTP2_NO_ERROR, stream.id - 2);
        this._endSoon(stream.session);
        break;
      case 'goaway_processed': // covers this stream, but the connection ends before its answer
        stream.session.goaway(H2.NGHTTP2_NO_ERROR, stream.id);
        this._endSoon(stream.session);
        break;
      case 'stall': // never answers: the client's timeout ends the call and resets the stream
        break;
      case 'reset': // TCP RST
        for (const sock of this.sockets) sock.resetAndDestroy();
        break;
      default:
        throw new Error(`unknown action ${action}`);
    }
  }

  _endSoon(session) {
    setTimeout(() => session.destroy(), 50);
  }

  async stop() {
    for (const s of this.live) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('otlp_grpc export: a receiver that misbehaves once loses nothing', () => {
  // The second of four batches (one consumer, so one stream at a time: the
  // counts are exact) meets the action.
  // [action, delivered in the end?, a retry by the policy (else a transparent resend or a drop)]
  const cases = [
    ['bad_status', false, false],
    ['no_trailers', false, false],
    ['rst', true, true],
    ['refused', true, false],
    ['goaway_unprocessed', true, false],
    ['goaway_processed', true, true],
    ['reset', true, true],
    ['stall', true, true],
  ];
  for (const [action, delivered, retried] of cases) {
    it(`${action}: ${delivered ? 'delivered after all' : 'dropped and counted'}, the other batches delivered`, async () => {
      const peer = await ScriptedGrpcPeer.start();
      peer.script.push('ok', action);
      const gw = await Gateway.start({ config: (w) => senderConfig(w, peer.endpoint, { consumers: 1, timeout: '2s' }) });
      try {
        await gw.withLog(async () => {
          const spans = await send(gw, 4, 20, 1);
          const dropped = delivered ? 0 : 20;
          await waitFor(async () => peer.delivered.length + (await gw.metricSum(M.failed)) >= spans.length, 10_000);
          await waitFor(async () => (await gw.metricSum(M.queueEntries)) === 0, 5000);
          const got = new Map(peer.delivered.map((s) => [s.spanId, s.name]));
          assert.equal(got.size, peer.delivered.length, 'a span was delivered twice');
          const missing = spans.filter((s) => !got.has(s.spanId));
          assert.equal(missing.length, dropped, `missing: ${missing.map((s) => s.name).slice(0, 5)}`);
          if (dropped > 0) assert.ok(missing.every((s) => s.name.startsWith('req-1-')), 'not the second batch was lost');
          assert.equal(await gw.metricSum(M.failed, { backend: 'out', reason: 'dropped' }), dropped);
          assert.equal(await gw.metricSum(M.sent, { backend: 'out' }), spans.length - dropped);
          assert.equal((await gw.metricSum(M.retries, { backend: 'out' })) > 0, retried, 'retry count');
          const conns = await gw.metricSum(M.connections, { backend: 'out' });
          assert.equal(conns, /goaway|reset/.test(action) ? 2 : 1, 'connections opened');
          if (action === 'stall') await waitFor(() => peer.cancelled === 1, 2000); // the timed-out stream was reset
        });
        await gw.stop();
      } finally {
        await gw.kill();
        await peer.stop();
      }
    });
  }

  it('SETTINGS_MAX_CONCURRENT_STREAMS 1: 4 consumers never open a second stream, everything arrives', async () => {
    const peer = await ScriptedGrpcPeer.start({ maxConcurrentStreams: 1 });
    peer.delayMs = 30;
    const gw = await Gateway.start({ config: (w) => senderConfig(w, peer.endpoint) });
    try {
      await gw.withLog(async () => {
        const spans = await send(gw, 24, 20, 6);
        await waitFor(() => peer.delivered.length >= spans.length, 15_000);
        assert.equal(peer.maxOpen, 1);
        assert.equal(new Set(peer.delivered.map((s) => s.spanId)).size, spans.length);
        assert.equal(await gw.metricSum(M.failed), 0);
        assert.equal(peer.sessions, 1);
      });
      await gw.stop();
    } finally {
      await gw.kill();
      await peer.stop();
    }
  });
});
