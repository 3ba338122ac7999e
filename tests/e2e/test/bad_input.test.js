// Hostile and broken clients against the real gateway, with raw requests
// (node's http, http2 and net modules). Every case asserts the answer, and
// then that the gateway still accepts a valid request on the same port.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';

import { Gateway, METRIC, httpRequest, sleep } from '../lib/gateway.js';
import {
  GRPC,
  GRPC_PATH,
  H2_PREFACE,
  decodeExportResponse,
  decodeRpcStatus,
  grpcExport,
  grpcFrame,
  grpcMessages,
  grpcRaw,
  newSpan,
  randomHex,
  tcpExchange,
  traceRequestJson,
  traceRequestProto,
} from '../lib/wire.js';

const MAX_REQUEST = 1024 * 1024; // max_request_bytes: 1MiB in the generated config
const HEADER_TIMEOUT_MS = 2000; // header_timeout: 2s
const PROTO = 'application/x-protobuf';
const JSON_CT = 'application/json';

let gw;
before(async () => {
  gw = await Gateway.start({ workers: 2, maxRequestBytes: '1MiB', headerTimeout: '2s' });
});
after(async () => {
  if (gw) await gw.stop();
});

const spanIdsIn = (signal = 'traces') =>
  new Set(
    gw
      .readSignal(signal)
      .flatMap((l) => l.resourceSpans || [])
      .flatMap((r) => r.scopeSpans || [])
      .flatMap((s) => s.spans || [])
      .map((s) => s.spanId),
  );

/** A valid OTLP/HTTP protobuf export is accepted and lands in traces.jsonl. */
async function assertHttpServes(label) {
  const span = newSpan(`after ${label}`);
  const r = await httpRequest({
    port: gw.httpPort,
    method: 'POST',
    path: '/v1/traces',
    headers: { 'content-type': PROTO },
    body: traceRequestProto('e2e-bad-input', [span]),
  });
  assert.equal(r.status, 200, `HTTP still serves after ${label}: got ${r.status} ${r.body.toString('latin1').slice(0, 200)}`);
  assert.ok(spanIdsIn().has(span.spanId), `span sent after ${label} is in traces.jsonl`);
}

/** A valid OTLP/gRPC export is accepted and lands in traces.jsonl. */
async function assertGrpcServes(label) {
  const span = newSpan(`after ${label}`);
  const r = await grpcExport(gw.grpcPort, 'traces', traceRequestProto('e2e-bad-input', [span]));
  assert.equal(r.status, GRPC.OK, `gRPC still serves after ${label}: status ${r.status} ${r.message}`);
  assert.ok(spanIdsIn().has(span.spanId), `span sent after ${label} is in traces.jsonl`);
}

const post = (path, contentType, body, extraHeaders = {}) =>
  httpRequest({
    port: gw.httpPort,
    method: 'POST',
    path,
    headers: { 'content-type': contentType, ...extraHeaders },
    body,
  });

function assertProtoStatus(r, label) {
  assert.match(String(r.headers['content-type']), /^application\/x-protobuf/, `${label}: error body content-type`);
  const st = decodeRpcStatus(r.body);
  assert.ok(st.message.length > 0, `${label}: google.rpc.Status message is non-empty`);
  return st;
}

function assertJsonStatus(r, label) {
  assert.match(String(r.headers['content-type']), /^application\/json/, `${label}: error body content-type`);
  const st = JSON.parse(r.body.toString('utf8'));
  assert.equal(typeof st.message, 'string', `${label}: JSON Status has a message`);
  assert.ok(st.message.length > 0, `${label}: JSON Status message is non-empty`);
  return st;
}

const t = (name, fn) => it(name, () => gw.withLog(fn));

describe('OTLP/HTTP bad input', () => {
  t('truncated protobuf -> 400 with a google.rpc.Status protobuf body', async () => {
    const full = traceRequestProto('e2e-bad-input', [newSpan('truncated')]);
    const r = await post('/v1/traces', PROTO, full.subarray(0, full.length - 7));
    assert.equal(r.status, 400);
    const st = assertProtoStatus(r, 'truncated protobuf');
    assert.equal(st.code, GRPC.INVALID_ARGUMENT, `Status.code (${st.message})`);
    await assertHttpServes('truncated protobuf');
  });

  t('garbage bytes -> 400', async () => {
    for (const garbage of [
      Buffer.alloc(64, 0xff), // a varint that never ends
      Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), // length prefix of 4 GiB
      Buffer.from([0x0f, 0x00]), // wire type 7 (invalid)
      Buffer.from('this is not protobuf at all \u0000\u0001\u0002'),
    ]) {
      const r = await post('/v1/traces', PROTO, garbage);
      assert.equal(r.status, 400, `garbage ${garbage.subarray(0, 8).toString('hex')}`);
      assertProtoStatus(r, 'garbage');
    }
    await assertHttpServes('garbage bytes');
  });

  t('invalid JSON -> 400 with a JSON Status body', async () => {
    for (const bad of ['{"resourceSpans":[{', '{"resourceSpans": nope}', '[1,2', '\u0000\u0001', '{"resourceSpans":"x"}']) {
      const r = await post('/v1/traces', JSON_CT, bad);
      assert.equal(r.status, 400, `body ${JSON.stringify(bad)}`);
      const st = assertJsonStatus(r, `invalid JSON ${JSON.stringify(bad)}`);
      assert.equal(st.code, GRPC.INVALID_ARGUMENT, `Status.code for ${JSON.stringify(bad)}`);
    }
    await assertHttpServes('invalid JSON');
  });

  t('wrong content-type (text/plain) -> 415', async () => {
    const r = await post('/v1/traces', 'text/plain', 'hello');
    assert.equal(r.status, 415);
    await assertHttpServes('text/plain');
  });

  t('unknown path /v1/foo -> 404', async () => {
    const r = await post('/v1/foo', PROTO, traceRequestProto('e2e-bad-input', [newSpan('lost')]));
    assert.equal(r.status, 404);
    await assertHttpServes('unknown path');
  });

  t('GET /v1/traces -> 405 with Allow: POST', async () => {
    const r = await httpRequest({ port: gw.httpPort, method: 'GET', path: '/v1/traces' });
    assert.equal(r.status, 405);
    assert.match(String(r.headers.allow || ''), /POST/, 'Allow header names POST');
    await assertHttpServes('GET');
  });

  t('oversized body (2 MiB, limit 1 MiB) -> 413, with and without Content-Length', async () => {
    const big = Buffer.alloc(2 * MAX_REQUEST, 0x41);
    const r1 = await post('/v1/traces', PROTO, big);
    assert.equal(r1.status, 413, 'Content-Length: 2 MiB');
    // chunked: the gateway only learns the size while reading
    const r2 = await httpRequest({
      port: gw.httpPort,
      method: 'POST',
      path: '/v1/traces',
      headers: { 'content-type': PROTO, 'transfer-encoding': 'chunked' },
      body: big,
    });
    assert.equal(r2.status, 413, 'chunked 2 MiB');
    await assertHttpServes('oversized body');
  });

  t('gzip bomb (64 MiB of zeros) -> 413 quickly', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
    assert.ok(bomb.length < MAX_REQUEST, 'the bomb itself is under the wire limit');
    const t0 = Date.now();
    const r = await post('/v1/traces', PROTO, bomb, { 'content-encoding': 'gzip' });
    const ms = Date.now() - t0;
    assert.equal(r.status, 413);
    assert.ok(ms < 2000, `answered in ${ms} ms (must stop inflating at the limit)`);
    await assertHttpServes('gzip bomb');
  });

  t('bad gzip -> 400', async () => {
    const good = zlib.gzipSync(traceRequestProto('e2e-bad-input', [newSpan('bad gzip')]));
    const corrupt = Buffer.from(good);
    corrupt.fill(0x55, 10, corrupt.length - 8); // keep the header, break the deflate stream
    for (const body of [corrupt, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3]), Buffer.from('not gzip at all')]) {
      const r = await post('/v1/traces', PROTO, body, { 'content-encoding': 'gzip' });
      assert.equal(r.status, 400, `bad gzip ${body.subarray(0, 8).toString('hex')}`);
    }
    await assertHttpServes('bad gzip');
  });

  t('valid gzip body is accepted', async () => {
    const span = newSpan('gzip ok');
    const r = await post('/v1/traces', PROTO, zlib.gzipSync(traceRequestProto('e2e-bad-input', [span])), {
      'content-encoding': 'gzip',
    });
    assert.equal(r.status, 200);
    assert.ok(spanIdsIn().has(span.spanId));
  });

  t('partial success (JSON): a 15-byte traceId is rejected, the valid span kept', async () => {
    const good = newSpan('good');
    const bad = { ...newSpan('bad'), traceId: randomHex(15) };
    const refusedBefore = await gw.metricSum(METRIC.refusedSpans, { transport: 'http' });
    const r = await post('/v1/traces', JSON_CT, JSON.stringify(traceRequestJson('e2e-partial', [bad, good])));
    assert.equal(r.status, 200, r.body.toString());
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const body = JSON.parse(r.body.toString('utf8'));
    assert.ok(body.partialSuccess, `partialSuccess present: ${r.body}`);
    assert.equal(Number(body.partialSuccess.rejectedSpans), 1);
    assert.equal(typeof body.partialSuccess.errorMessage, 'string');
    assert.ok(body.partialSuccess.errorMessage.length > 0, 'errorMessage non-empty');
    const ids = spanIdsIn();
    assert.ok(ids.has(good.spanId), 'the valid span was written');
    assert.ok(!ids.has(bad.spanId), 'the invalid span was not written');
    const refusedAfter = await gw.metricSum(METRIC.refusedSpans, { transport: 'http' });
    assert.equal(refusedAfter - refusedBefore, 1, `${METRIC.refusedSpans}{transport="http"} grows by 1`);
  });

  t('partial success (protobuf): a 15-byte traceId is rejected, the valid span kept', async () => {
    const good = newSpan('good');
    const bad = { ...newSpan('bad'), traceId: randomHex(15) };
    const r = await post('/v1/traces', PROTO, traceRequestProto('e2e-partial', [good, bad]));
    assert.equal(r.status, 200);
    const res = decodeExportResponse(r.body);
    assert.ok(res.partialSuccess, 'partial_success present');
    assert.equal(res.partialSuccess.rejected, 1n);
    assert.ok(res.partialSuccess.errorMessage.length > 0);
    const ids = spanIdsIn();
    assert.ok(ids.has(good.spanId) && !ids.has(bad.spanId));
  });
});

describe('OTLP/gRPC bad input', () => {
  t('truncated protobuf -> grpc-status 3 (INVALID_ARGUMENT)', async () => {
    const full = traceRequestProto('e2e-bad-input', [newSpan('truncated')]);
    const r = await grpcExport(gw.grpcPort, 'traces', full.subarray(0, full.length - 7));
    assert.equal(r.status, GRPC.INVALID_ARGUMENT, `grpc-status (${r.message})`);
    assert.ok(r.message.length > 0, 'grpc-message is set');
    await assertGrpcServes('truncated protobuf');
  });

  t('frame shorter than its declared length -> grpc-status 3', async () => {
    const msg = traceRequestProto('e2e-bad-input', [newSpan('short frame')]);
    const r = await grpcRaw(gw.grpcPort, GRPC_PATH.traces, grpcFrame(msg, 0, msg.length + 100));
    assert.equal(r.status, GRPC.INVALID_ARGUMENT, `grpc-status (${r.message})`);
    await assertGrpcServes('short frame');
  });

  t('unknown method -> grpc-status 12 (UNIMPLEMENTED)', async () => {
    const msg = traceRequestProto('e2e-bad-input', [newSpan('unknown method')]);
    const r = await grpcRaw(gw.grpcPort, '/opentelemetry.proto.collector.trace.v1.TraceService/Nope', grpcFrame(msg));
    assert.equal(r.status, GRPC.UNIMPLEMENTED, `grpc-status (${r.message})`);
    const r2 = await grpcRaw(gw.grpcPort, '/no.such.Service/Export', grpcFrame(msg));
    assert.equal(r2.status, GRPC.UNIMPLEMENTED, `grpc-status (${r2.message})`);
    await assertGrpcServes('unknown method');
  });

  t('oversized message (2 MiB, limit 1 MiB) -> grpc-status 8 (RESOURCE_EXHAUSTED)', async () => {
    const r = await grpcRaw(gw.grpcPort, GRPC_PATH.traces, grpcFrame(Buffer.alloc(2 * MAX_REQUEST, 0x41)));
    assert.equal(r.status, GRPC.RESOURCE_EXHAUSTED, `grpc-status (${r.message})`);
    await assertGrpcServes('oversized message');
  });

  t('valid request answers with an ExportTraceServiceResponse', async () => {
    const span = newSpan('grpc ok');
    const r = await grpcExport(gw.grpcPort, 'traces', traceRequestProto('e2e-bad-input', [span]));
    assert.equal(r.status, GRPC.OK);
    assert.equal(r.headers['content-type'], 'application/grpc');
    const msgs = grpcMessages(r.data);
    assert.equal(msgs.length, 1, 'one response message');
    assert.equal(decodeExportResponse(msgs[0]).partialSuccess, null, 'no partial_success on full success');
  });

  t('partial success: a 15-byte traceId is rejected, the valid span kept', async () => {
    const good = newSpan('good');
    const bad = { ...newSpan('bad'), traceId: randomHex(15) };
    const r = await grpcExport(gw.grpcPort, 'traces', traceRequestProto('e2e-partial', [bad, good]));
    assert.equal(r.status, GRPC.OK);
    const [msg] = grpcMessages(r.data);
    const res = decodeExportResponse(msg);
    assert.ok(res.partialSuccess, 'partial_success present');
    assert.equal(res.partialSuccess.rejected, 1n);
    assert.ok(res.partialSuccess.errorMessage.length > 0);
    const ids = spanIdsIn();
    assert.ok(ids.has(good.spanId) && !ids.has(bad.spanId));
  });

  t('HTTP/1.1 request on the gRPC port -> HTTP/1.1 400 or closed; gRPC still works', async () => {
    const req = 'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n';
    const r = await tcpExchange(gw.grpcPort, req, { timeoutMs: 5000 });
    assert.ok(r.closedByServer, 'the gateway closes the connection');
    const head = r.received.toString('latin1');
    if (head.startsWith('HTTP/1.')) assert.match(head, /^HTTP\/1\.[01] 400 /, 'an HTTP/1.1 answer must be 400');
    await assertGrpcServes('HTTP/1.1 on the gRPC port');
  });
});

describe('stalled clients', () => {
  const deadline = HEADER_TIMEOUT_MS + 3000;

  t('HTTP/1.1: stalled in the headers -> disconnected after header_timeout', async () => {
    const r = await tcpExchange(gw.httpPort, 'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty', {
      timeoutMs: deadline + 2000,
    });
    assert.ok(r.closedByServer, `disconnected (waited ${r.ms} ms)`);
    assert.ok(r.ms >= HEADER_TIMEOUT_MS - 300, `not before header_timeout (${r.ms} ms)`);
    assert.ok(r.ms <= deadline, `within ${deadline} ms (${r.ms} ms)`);
    await assertHttpServes('stalled headers');
  });

  t('HTTP/1.1: stalled half way through the body -> disconnected after header_timeout', async () => {
    const body = traceRequestProto('e2e-bad-input', [newSpan('stalled')]);
    const head = `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${PROTO}\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r = await tcpExchange(gw.httpPort, Buffer.concat([Buffer.from(head), body.subarray(0, body.length >> 1)]), {
      timeoutMs: deadline + 2000,
    });
    assert.ok(r.closedByServer, `disconnected (waited ${r.ms} ms)`);
    assert.ok(r.ms <= deadline, `within ${deadline} ms (${r.ms} ms)`);
    const text = r.received.toString('latin1');
    if (text) assert.match(text, /^HTTP\/1\.1 (408|400) /, `an answer, if any, is 408 or 400: ${text.slice(0, 40)}`);
    await assertHttpServes('stalled body');
  });

  t('gRPC (h2): stalled half way through the message -> stream or connection ended after header_timeout', async () => {
    const msg = grpcFrame(traceRequestProto('e2e-bad-input', [newSpan('stalled grpc')]));
    const t0 = Date.now();
    const outcome = await new Promise((resolve) => {
      const client = http2.connect(`http://127.0.0.1:${gw.grpcPort}`);
      let headers = {};
      let trailers = {};
      const finish = (how) => {
        clearTimeout(timer);
        client.destroy();
        resolve({ how, ms: Date.now() - t0, status: trailers['grpc-status'] ?? headers['grpc-status'] });
      };
      const timer = setTimeout(() => finish('timeout'), deadline + 2000);
      client.on('error', () => finish('session error'));
      client.on('goaway', () => finish('goaway'));
      client.on('close', () => finish('session closed'));
      const req = client.request({
        ':method': 'POST',
        ':path': GRPC_PATH.traces,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      req.on('response', (h) => (headers = h));
      req.on('trailers', (tr) => (trailers = tr));
      req.on('data', () => {});
      req.on('error', () => finish('stream error'));
      req.on('close', () => finish('stream closed'));
      req.write(msg.subarray(0, msg.length >> 1)); // and never end
    });
    assert.notEqual(outcome.how, 'timeout', `the gateway ends the stalled stream (waited ${outcome.ms} ms)`);
    assert.ok(outcome.ms <= deadline, `within ${deadline} ms (${outcome.how} after ${outcome.ms} ms)`);
    if (outcome.status !== undefined) assert.notEqual(Number(outcome.status), GRPC.OK, 'not answered OK');
    await assertGrpcServes('stalled gRPC stream');
  });
});

describe('connection floods', () => {
  /**
   * Open n connections at once; some send nothing, some half a preface or
   * half a request line, some a full preface; then drop them all (half of
   * them with a RST). Resolves the number that connected.
   */
  async function flood(port, n, partials) {
    const socks = [];
    const connected = await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          new Promise((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port });
            socks.push(s);
            s.on('error', () => resolve(false));
            s.on('connect', () => {
              const p = partials[i % (partials.length + 1)];
              if (p) s.write(p);
              resolve(true);
            });
            s.setTimeout(10_000, () => resolve(false));
          }),
      ),
    );
    await sleep(200);
    socks.forEach((s, i) => (i % 2 ? s.resetAndDestroy() : s.destroy()));
    return connected.filter(Boolean).length;
  }

  t('1000 connections to each port opened and dropped; both ports still serve; RSS sane', async () => {
    const rssBefore = gw.rssKiB();
    const grpcOk = await flood(gw.grpcPort, 1000, [
      H2_PREFACE.subarray(0, 12),
      H2_PREFACE,
      Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 6, 4, 0, 0, 0, 0, 0])]), // preface + half a SETTINGS frame
    ]);
    const httpOk = await flood(gw.httpPort, 1000, [
      'POST /v1/tra',
      'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc',
      H2_PREFACE.subarray(0, 10),
    ]);
    assert.ok(grpcOk >= 900, `gRPC port accepted ${grpcOk}/1000 connections`);
    assert.ok(httpOk >= 900, `HTTP port accepted ${httpOk}/1000 connections`);
    await sleep(300);
    gw.assertAlive();
    await assertGrpcServes('connection flood');
    await assertHttpServes('connection flood');
    const rssAfter = gw.rssKiB();
    const growthMiB = (rssAfter - rssBefore) / 1024;
    assert.ok(growthMiB < 128, `RSS grew by ${growthMiB.toFixed(1)} MiB (${rssBefore} -> ${rssAfter} KiB)`);
    const admin = await httpRequest({ port: gw.adminPort, path: '/healthz' });
    assert.equal(admin.status, 200, '/healthz');
  });
});

it('the gateway is still healthy after all bad input', async () => {
  gw.assertAlive();
  gw.assertNoSanitizerReport();
  const r = await httpRequest({ port: gw.adminPort, path: '/readyz' });
  assert.equal(r.status, 200);
});
