// PROXY protocol behind a real balancer: Debian's HAProxy in TCP mode plays
// the AWS NLB (send-proxy-v2) and a v1 sender (send-proxy) in front of a
// listener with `proxy_protocol: true`. Clients connect to HAProxy from chosen
// loopback addresses (all of 127.0.0.0/8 is local on Linux); the listener
// allows only 127.0.0.7, so an answer of 200 versus 403 (OK versus
// PERMISSION_DENIED) shows which source address the gateway took from the
// header. Raw clients check what happens without a balancer: a header on a
// plain listener, no header or a broken one on a proxy listener, a stall.

import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import { Gateway, freePort } from '../lib/gateway.js';
import { Haproxy } from '../lib/haproxy.js';
import {
  GRPC,
  GRPC_PATH,
  H2_PREFACE,
  grpcFrame,
  newSpan,
  tcpExchange,
  traceRequestJson,
  traceRequestProto,
} from '../lib/wire.js';

const ALLOWED = '127.0.0.7';
const DENIED = '127.0.0.9';
const HEADER_TIMEOUT_MS = 1000;
const GRPC_PERMISSION_DENIED = 7;
const V2_SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

const jsonBody = (spans) => JSON.stringify(traceRequestJson('e2e-proxy', spans));

/** A v2 PROXY header for TCP over IPv4. */
function proxyV2(src, dst, sport, dport) {
  const h = Buffer.alloc(28);
  V2_SIG.copy(h);
  h[12] = 0x21; // version 2, PROXY
  h[13] = 0x11; // INET, STREAM
  h.writeUInt16BE(12, 14);
  Buffer.from(src.split('.').map(Number)).copy(h, 16);
  Buffer.from(dst.split('.').map(Number)).copy(h, 20);
  h.writeUInt16BE(sport, 24);
  h.writeUInt16BE(dport, 26);
  return h;
}

// The default listener takes PROXY headers from HAProxy; a second, plain
// listener (no proxy_protocol) is added after it.
function listenersYaml(plainGrpc, plainHttp) {
  return [
    '    proxy_protocol: true',
    '    auth: none',
    `    allow_cidrs: [${ALLOWED}/32]`,
    '  - name: plain',
    `    grpc: 127.0.0.1:${plainGrpc}`,
    `    http: 127.0.0.1:${plainHttp}`,
    `    header_timeout: ${HEADER_TIMEOUT_MS}ms`,
  ].join('\n');
}

/** HAProxy with one TCP frontend per {name: [gatewayPort, 'send-proxy' | 'send-proxy-v2']}. */
async function startHaproxy(routes) {
  const ports = {};
  const lines = [
    'global',
    '  maxconn 256',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 10s',
    '  timeout server 10s',
  ];
  for (const [name, [target, send]] of Object.entries(routes)) {
    ports[name] = await freePort();
    lines.push(`listen ${name}`, `  bind 127.0.0.1:${ports[name]}`, `  server gw 127.0.0.1:${target} ${send}`);
  }
  const hap = await Haproxy.start({ config: () => lines.join('\n') + '\n', ports: Object.values(ports) });
  return { ports, stop: () => hap.stop() };
}

/** OTLP/HTTP JSON export from `localAddress`. Resolves {status, body}. */
function httpExport(port, localAddress, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        localAddress,
        method: 'POST',
        path: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        agent: false,
        timeout: 5000,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('HTTP export timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** OTLP/gRPC trace export from `localAddress`. Resolves the grpc-status. */
function grpcExportFrom(port, localAddress, msg) {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`, {
      createConnection: () => net.connect({ host: '127.0.0.1', port, localAddress }),
    });
    const timer = setTimeout(() => {
      client.destroy();
      reject(new Error('gRPC export timed out'));
    }, 5000);
    client.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    const req = client.request({
      ':method': 'POST',
      ':path': GRPC_PATH.traces,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let status;
    req.on('response', (h) => (status ??= h['grpc-status']));
    req.on('trailers', (t) => (status = t['grpc-status'] ?? status));
    req.on('data', () => {});
    req.on('error', (e) => {
      clearTimeout(timer);
      client.destroy();
      reject(e);
    });
    req.on('close', () => {
      clearTimeout(timer);
      client.close();
      resolve(status === undefined ? null : Number(status));
    });
    req.end(grpcFrame(msg));
  });
}

describe('PROXY protocol', () => {
  let gw;
  let hap;
  let plain;

  before(async () => {
    plain = { grpc: await freePort(), http: await freePort() };
    gw = await Gateway.start({ headerTimeout: `${HEADER_TIMEOUT_MS}ms`, listenerExtra: listenersYaml(plain.grpc, plain.http) });
    hap = await startHaproxy({
      http_v2: [gw.httpPort, 'send-proxy-v2'],
      http_v1: [gw.httpPort, 'send-proxy'],
      grpc_v2: [gw.grpcPort, 'send-proxy-v2'],
      grpc_v1: [gw.grpcPort, 'send-proxy'],
    });
  });
  after(async () => {
    if (hap) await hap.stop();
    if (gw) await gw.stop();
  });

  it('OTLP/HTTP through HAProxy: the source address comes from the header', () =>
    gw.withLog(async () => {
      const ok = newSpan('proxied http');
      for (const port of [hap.ports.http_v2, hap.ports.http_v1]) {
        const r = await httpExport(port, ALLOWED, jsonBody([ok]));
        assert.equal(r.status, 200, r.body);
      }
      const denied = await httpExport(hap.ports.http_v2, DENIED, jsonBody([newSpan('denied')]));
      assert.equal(denied.status, 403, denied.body);
      const v1denied = await httpExport(hap.ports.http_v1, DENIED, jsonBody([newSpan('denied')]));
      assert.equal(v1denied.status, 403, v1denied.body);
      const spans = gw
        .readSignal('traces')
        .flatMap((l) => l.resourceSpans || [])
        .flatMap((r) => r.scopeSpans || [])
        .flatMap((s) => s.spans || []);
      assert.ok(spans.some((s) => s.spanId === ok.spanId), 'accepted span was written');
    }));

  it('OTLP/gRPC through HAProxy: the source address comes from the header', () =>
    gw.withLog(async () => {
      const msg = () => traceRequestProto('e2e-proxy', [newSpan('proxied grpc')]);
      assert.equal(await grpcExportFrom(hap.ports.grpc_v2, ALLOWED, msg()), GRPC.OK);
      assert.equal(await grpcExportFrom(hap.ports.grpc_v1, ALLOWED, msg()), GRPC.OK);
      assert.equal(await grpcExportFrom(hap.ports.grpc_v2, DENIED, msg()), GRPC_PERMISSION_DENIED);
      assert.equal(await grpcExportFrom(hap.ports.grpc_v1, DENIED, msg()), GRPC_PERMISSION_DENIED);
    }));

  it('gRPC: bytes sent right behind the header are not lost', () =>
    gw.withLog(async () => {
      // Header, preface and an empty SETTINGS frame in one write: the
      // listener must answer with its own SETTINGS frame (type 4).
      const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
      const r = await tcpExchange(
        gw.grpcPort,
        Buffer.concat([proxyV2(ALLOWED, '127.0.0.1', 40000, gw.grpcPort), H2_PREFACE, settings]),
        { timeoutMs: 5000, until: (got) => got.length >= 9 },
      );
      assert.ok(r.received.length >= 9, 'server sent frames');
      assert.equal(r.received[3], 4, 'first frame is SETTINGS');
    }));

  it('a listener without proxy_protocol refuses a PROXY header', () =>
    gw.withLog(async () => {
      const hdr = proxyV2(ALLOWED, '127.0.0.1', 40000, plain.http);
      const req = Buffer.from('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
      const h = await tcpExchange(plain.http, Buffer.concat([hdr, req]));
      assert.ok(h.closedByServer);
      assert.match(h.received.toString('latin1'), /^HTTP\/1\.1 400 /);
      const g = await tcpExchange(plain.grpc, Buffer.concat([hdr, H2_PREFACE]));
      assert.ok(g.closedByServer);
      assert.equal(g.received.length, 0);
    }));

  it('a proxy listener closes connections without a valid header', () =>
    gw.withLog(async () => {
      const get = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      for (const [port, data] of [
        [gw.httpPort, get],
        [gw.grpcPort, H2_PREFACE],
        [gw.httpPort, Buffer.from('PROXY TCP4 127.0.0.7 127.0.0.1 40000 99999\r\n')],
        [gw.grpcPort, Buffer.concat([V2_SIG, Buffer.from([0x31, 0x11, 0, 12])])],
      ]) {
        const r = await tcpExchange(port, data, { timeoutMs: HEADER_TIMEOUT_MS / 2 });
        assert.ok(r.closedByServer, `closed at once: ${data.toString('latin1').slice(0, 20)}`);
        assert.equal(r.received.length, 0);
      }
    }));

  it('a client that stalls inside the header is closed after header_timeout', () =>
    gw.withLog(async () => {
      for (const port of [gw.httpPort, gw.grpcPort]) {
        const r = await tcpExchange(port, V2_SIG.subarray(0, 7), { timeoutMs: HEADER_TIMEOUT_MS * 4 });
        assert.ok(r.closedByServer);
        assert.ok(r.ms >= HEADER_TIMEOUT_MS * 0.8 && r.ms < HEADER_TIMEOUT_MS * 3, `closed after ${r.ms} ms`);
      }
    }));
});

// An AWS NLB whose target group has PROXY v2 sends the header on its health
// checks too (a LOCAL one), while Prometheus scrapes the same admin port
// without one: `admin_proxy_protocol: true` accepts both.
describe('PROXY protocol on the admin listener', () => {
  let gw;
  let strict;
  const readyz = Buffer.from('GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const local = Buffer.concat([V2_SIG, Buffer.from([0x20, 0x00, 0, 0])]);
  const answer = async (port, data) => {
    const r = await tcpExchange(port, data, { timeoutMs: 3000 });
    assert.ok(r.closedByServer, `answered and closed within 3 s: ${data.toString('latin1').slice(0, 24)}`);
    return r.received.toString('latin1').split('\r\n')[0];
  };

  before(async () => {
    gw = await Gateway.start({ extraYaml: 'admin_proxy_protocol: true' });
    strict = await Gateway.start({});
  });
  after(async () => {
    if (gw) await gw.stop();
    if (strict) await strict.stop();
  });

  it('answers /readyz with a v2 LOCAL, a v2 PROXY, a v1 header or none', () =>
    gw.withLog(async () => {
      for (const hdr of [local, proxyV2(ALLOWED, '127.0.0.1', 40000, gw.adminPort),
        Buffer.from(`PROXY TCP4 ${ALLOWED} 127.0.0.1 40000 ${gw.adminPort}\r\n`), Buffer.alloc(0)])
        assert.equal(await answer(gw.adminPort, Buffer.concat([hdr, readyz])), 'HTTP/1.1 200 OK');
    }));

  it('a request starting like "PROXY" (POST) is HTTP, not a stalled header', () =>
    gw.withLog(async () => {
      const post = Buffer.from('POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      assert.match(await answer(gw.adminPort, post), /^HTTP\/1\.1 [0-9]{3} /);
    }));

  it('without it the admin listener takes the header for a bad request (an NLB would mark every task unhealthy)', () =>
    strict.withLog(async () => {
      assert.equal(await answer(strict.adminPort, Buffer.concat([local, readyz])), 'HTTP/1.1 400 Bad Request');
      assert.equal(await answer(strict.adminPort, readyz), 'HTTP/1.1 200 OK');
    }));
});
