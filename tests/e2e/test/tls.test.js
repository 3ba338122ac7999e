// TLS on a listener: the OpenTelemetry JS SDK exporters (gRPC and
// http/protobuf) trusting a test CA made with the openssl CLI, a plain h2c
// client refused on the TLS port, certificate reload on SIGHUP (new
// connections get the new certificate, an open HTTP/2 connection carries on,
// a bad pair is refused and the current one kept), and client certificates
// with `client_auth: required`.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';

import * as grpc from '@grpc/grpc-js';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { Gateway, runGatewayOnce } from '../lib/gateway.js';
import { makePki, openssl } from '../lib/pki.js';
import { serviceNameOf } from '../lib/expect.js';
import { RUN_ID, buildSpans } from '../lib/sdkdata.js';
import { grpcExport, newSpan, traceRequestProto } from '../lib/wire.js';

const STEP_TIMEOUT_MS = 5000;

// The tls mapping of the harness's default listener.
function tlsListener(pki, extra = '') {
  return `    tls: {cert: ${pki.certFile}, key: ${pki.keyFile}${extra}}`;
}

// ---------- clients ----------

/** exporter.export(items) as a promise of its ExportResult; shuts the exporter down. */
async function exportOnce(exporter, items) {
  try {
    return await new Promise((resolve) => exporter.export(items, resolve));
  } finally {
    await exporter.shutdown();
  }
}

/** Spans the file backend wrote for one service.name. */
function spansOf(gw, service) {
  return gw
    .readSignal('traces')
    .flatMap((l) => l.resourceSpans || [])
    .filter((r) => serviceNameOf(r.resource) === service)
    .flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
}

/** The SHA-256 fingerprint of the certificate a new TLS connection gets. */
function servedFingerprint(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'] }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.destroy();
      resolve(fp);
    });
    s.on('error', reject);
    s.setTimeout(STEP_TIMEOUT_MS, () => s.destroy(new Error('TLS connect timed out')));
  });
}

/** POST one OTLP/protobuf trace request on an HTTP/2 session; resolves the status. */
function postTraces(session, service) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/v1/traces', 'content-type': 'application/x-protobuf' });
    let status;
    req.on('response', (h) => {
      status = h[':status'];
    });
    req.on('data', () => {});
    req.on('close', () => (status ? resolve(status) : reject(new Error('stream closed without a response'))));
    req.on('error', reject);
    req.setTimeout(STEP_TIMEOUT_MS, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.end(traceRequestProto(service, [newSpan('over-h2')]));
  });
}

function connectH2(port, opts) {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`https://127.0.0.1:${port}`, opts);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}


/**
 * One handshake by Debian's openssl s_client (the real peer) offering only
 * `cipher` (TLS 1.2) or TLS 1.3: {ok, cipher} (the negotiated suite, or '').
 */
function sClient(port, caFile, { version = '-tls1_2', cipher } = {}) {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', caFile,
    '-verify_return_error', version];
  if (cipher) args.push('-cipher', cipher);
  return new Promise((resolve) => {
    const p = execFile('openssl', args, { timeout: STEP_TIMEOUT_MS }, (err, stdout) => {
      const m = /Cipher is (\S+)/.exec(stdout);
      const cipherOut = m && m[1] !== '(NONE)' ? m[1] : '';
      resolve({ ok: !err && cipherOut !== '', cipher: cipherOut });
    });
    p.stdin.end(); // EOF: s_client closes after the handshake
  });
}

// ---------- tests ----------

describe('TLS listener', () => {
  let pki;
  let gw;

  before(async () => {
    pki = makePki(fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-tls-')));
    pki.install('a');
    gw = await Gateway.start({ listenerExtra: tlsListener(pki) });
  });

  after(async () => {
    if (gw) await gw.stop();
    if (pki && process.env.E2E_KEEP_TMP !== '1') fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  it('takes traces from the gRPC exporter over TLS', () =>
    gw.withLog(async () => {
      const service = `e2e-tls-grpc-${RUN_ID}`;
      const exporter = new GrpcTraceExporter({
        url: `https://127.0.0.1:${gw.grpcPort}`,
        credentials: grpc.credentials.createSsl(pki.ca),
        timeoutMillis: 10_000,
      });
      const result = await exportOnce(exporter, await buildSpans(service));
      assert.equal(result.code, ExportResultCode.SUCCESS, `gRPC export over TLS failed: ${result.error}`);
      assert.equal(spansOf(gw, service).length, 5);
    }));

  it('takes traces from the http/protobuf exporter over HTTPS', () =>
    gw.withLog(async () => {
      const service = `e2e-tls-http-${RUN_ID}`;
      const exporter = new ProtoTraceExporter({
        url: `https://127.0.0.1:${gw.httpPort}/v1/traces`,
        httpAgentOptions: { ca: pki.ca },
        timeoutMillis: 10_000,
      });
      const result = await exportOnce(exporter, await buildSpans(service));
      assert.equal(result.code, ExportResultCode.SUCCESS, `HTTPS export failed: ${result.error}`);
      assert.equal(spansOf(gw, service).length, 5);
    }));

  it('survives a client that connects to the HTTPS port and says nothing, closing it at header_timeout', () =>
    gw.withLog(async () => {
      // No ClientHello yet: h2o has no OpenSSL object for the connection,
      // and the header-timeout sweep must not ask it for the ALPN protocol.
      const t0 = Date.now();
      const closedAfter = await new Promise((resolve, reject) => {
        const sock = net.connect({ host: '127.0.0.1', port: gw.httpPort });
        sock.on('error', () => {});
        sock.on('close', () => resolve(Date.now() - t0));
        setTimeout(() => {
          sock.destroy();
          reject(new Error('a silent TLS connection was not closed within 10 s'));
        }, 10_000);
      });
      gw.assertAlive();
      assert.ok(closedAfter >= 1500, `closed after ${closedAfter} ms, before header_timeout (2 s)`);
      const service = `e2e-tls-after-silent-${RUN_ID}`;
      const result = await exportOnce(
        new ProtoTraceExporter({ url: `https://127.0.0.1:${gw.httpPort}/v1/traces`, httpAgentOptions: { ca: pki.ca }, timeoutMillis: 10_000 }),
        await buildSpans(service),
      );
      assert.equal(result.code, ExportResultCode.SUCCESS, `HTTPS export after the silent client: ${result.error}`);
    }));

  it('refuses plain-text h2c on the TLS gRPC port', () =>
    gw.withLog(async () => {
      const service = `e2e-tls-h2c-${RUN_ID}`;
      const outcome = await grpcExport(gw.grpcPort, 'traces', traceRequestProto(service, [newSpan('h2c')]), {
        timeoutMs: STEP_TIMEOUT_MS,
      }).then(
        (r) => (r.headers[':status'] ? `response ${r.headers[':status']}` : 'closed'),
        (e) => `error ${e.code || e.message}`,
      );
      assert.match(outcome, /^(closed|error )/, `h2c on the TLS port got: ${outcome}`);
      assert.equal(spansOf(gw, service).length, 0);
    }));

  it('serves a new certificate after SIGHUP while an open connection keeps working', () =>
    gw.withLog(async () => {
      const session = await connectH2(gw.httpPort, { ca: pki.ca });
      try {
        assert.equal(await postTraces(session, `e2e-tls-before-${RUN_ID}`), 200);
        const socket = session.socket;
        assert.equal(socket.getPeerCertificate().fingerprint256, pki.fingerprint.a);

        const reloaded = gw.logCount('TLS certificate reloaded');
        pki.install('b');
        gw.proc.kill('SIGHUP');
        await gw.waitForLog('TLS certificate reloaded', reloaded, STEP_TIMEOUT_MS);
        assert.equal(await servedFingerprint(gw.grpcPort, pki.ca), pki.fingerprint.b);
        assert.equal(await servedFingerprint(gw.httpPort, pki.ca), pki.fingerprint.b);

        // The connection from before the reload is the same one and still serves.
        assert.equal(await postTraces(session, `e2e-tls-after-${RUN_ID}`), 200);
        assert.equal(session.socket, socket);
        assert.equal(session.closed || session.destroyed, false);
        assert.equal(spansOf(gw, `e2e-tls-after-${RUN_ID}`).length, 1);

        // A key that does not match the certificate: refused, b stays.
        const failed = gw.logCount('TLS reload failed');
        pki.install('a', 'b');
        gw.proc.kill('SIGHUP');
        await gw.waitForLog('TLS reload failed', failed, STEP_TIMEOUT_MS);
        assert.match(gw.log(), /TLS reload failed.*does not match/);
        assert.equal(await servedFingerprint(gw.grpcPort, pki.ca), pki.fingerprint.b);
        gw.assertAlive();
      } finally {
        session.close();
      }
    }));
});

describe('TLS listener with client_auth: required', () => {
  let pki;
  let gw;

  before(async () => {
    pki = makePki(fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-mtls-')));
    pki.install('a');
    const caFile = path.join(pki.dir, 'ca.crt');
    gw = await Gateway.start({ listenerExtra: tlsListener(pki, `, client_ca: ${caFile}, client_auth: required`) });
  });

  after(async () => {
    if (gw) await gw.stop();
    if (pki && process.env.E2E_KEEP_TMP !== '1') fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  it('takes requests from a client with a certificate from the client CA', () =>
    gw.withLog(async () => {
      const session = await connectH2(gw.httpPort, { ca: pki.ca, ...pki.client });
      try {
        assert.equal(await postTraces(session, `e2e-mtls-${RUN_ID}`), 200);
      } finally {
        session.close();
      }
      const service = `e2e-mtls-grpc-${RUN_ID}`;
      const exporter = new GrpcTraceExporter({
        url: `https://127.0.0.1:${gw.grpcPort}`,
        credentials: grpc.credentials.createSsl(pki.ca, pki.client.key, pki.client.cert),
        timeoutMillis: 10_000,
      });
      const result = await exportOnce(exporter, await buildSpans(service));
      assert.equal(result.code, ExportResultCode.SUCCESS, `gRPC export with a client certificate failed: ${result.error}`);
    }));

  it('refuses a client without a certificate', () =>
    gw.withLog(async () => {
      // With TLS 1.3 the client finishes its handshake before the server has
      // checked its (empty) certificate, so the refusal shows on the request.
      const outcome = await connectH2(gw.httpPort, { ca: pki.ca }).then(
        (session) =>
          postTraces(session, `e2e-mtls-none-${RUN_ID}`).then(
            (status) => `status ${status}`,
            (e) => `error ${e.code || e.message}`,
          ).finally(() => session.destroy()),
        (e) => `error ${e.code || e.message}`,
      );
      assert.match(outcome, /^error /, `a client without a certificate got: ${outcome}`);
    }));
});

// Issue 13: TLS 1.2 offers only AEAD suites (Mozilla "intermediate", ECDHE
// with AES-GCM or ChaCha20-Poly1305) unless tls.ciphers says otherwise, and
// tls.min_version: '1.3' refuses TLS 1.2. Checked with openssl s_client
// against an RSA and an ECDSA certificate.
describe('TLS cipher suites and versions (openssl s_client)', () => {
  let pki;

  before(() => {
    pki = makePki(fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-tls-ciphers-')));
    openssl(pki.dir, 'req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'rsa.key',
      '-out', 'rsa.csr');
    openssl(pki.dir, 'x509', '-req', '-in', 'rsa.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '9',
      '-days', '1', '-extfile', 'server.ext', '-out', 'rsa.crt');
  });

  after(() => {
    if (pki && process.env.E2E_KEEP_TMP !== '1') fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  const caFile = () => path.join(pki.dir, 'ca.crt');

  it('refuses CBC suites on TLS 1.2 by default and negotiates AEAD ones (RSA and ECDSA certificates)', async () => {
    for (const [pair, kx] of [['rsa', 'RSA'], ['a', 'ECDSA']]) {
      pki.install(pair);
      const gw = await Gateway.start({ listenerExtra: tlsListener(pki) });
      try {
        await gw.withLog(async () => {
          for (const port of [gw.grpcPort, gw.httpPort]) {
            for (const legacy of [`ECDHE-${kx}-AES128-SHA`, `ECDHE-${kx}-AES256-SHA`, `ECDHE-${kx}-AES128-SHA256`]) {
              const r = await sClient(port, caFile(), { cipher: legacy });
              assert.equal(r.ok, false, `TLS 1.2 ${legacy} negotiated on port ${port}`);
            }
            for (const aead of [`ECDHE-${kx}-AES128-GCM-SHA256`, `ECDHE-${kx}-AES256-GCM-SHA384`, `ECDHE-${kx}-CHACHA20-POLY1305`]) {
              const r = await sClient(port, caFile(), { cipher: aead });
              assert.deepEqual(r, { ok: true, cipher: aead }, `TLS 1.2 ${aead} on port ${port}`);
            }
            const t13 = await sClient(port, caFile(), { version: '-tls1_3' });
            assert.ok(t13.ok && t13.cipher.startsWith('TLS_'), `TLS 1.3: ${JSON.stringify(t13)}`);
          }
          gw.assertAlive();
        });
      } finally {
        await gw.stop();
      }
    }
  });

  it('honours tls.min_version 1.3 and a tls.ciphers override', async () => {
    pki.install('rsa');
    let gw = await Gateway.start({ listenerExtra: tlsListener(pki, ", min_version: '1.3'") });
    try {
      await gw.withLog(async () => {
        const r = await sClient(gw.httpPort, caFile(), { cipher: 'ECDHE-RSA-AES128-GCM-SHA256' });
        assert.equal(r.ok, false, 'TLS 1.2 negotiated with min_version 1.3');
        assert.ok((await sClient(gw.httpPort, caFile(), { version: '-tls1_3' })).ok);
      });
    } finally {
      await gw.stop();
    }
    gw = await Gateway.start({ listenerExtra: tlsListener(pki, ', ciphers: ECDHE-RSA-CHACHA20-POLY1305') });
    try {
      await gw.withLog(async () => {
        assert.equal((await sClient(gw.httpPort, caFile(), { cipher: 'ECDHE-RSA-AES128-GCM-SHA256' })).ok, false);
        assert.deepEqual(await sClient(gw.httpPort, caFile(), { cipher: 'ECDHE-RSA-CHACHA20-POLY1305' }), {
          ok: true,
          cipher: 'ECDHE-RSA-CHACHA20-POLY1305',
        });
      });
    } finally {
      await gw.stop();
    }
  });

  it('--check-config names a bad min_version or cipher list', async () => {
    for (const [extra, want] of [
      [', min_version: 1.1', /listeners\[0\]\.tls\.min_version: expected 1\.2 or 1\.3/],
      [', ciphers: NO-SUCH-CIPHER', /listeners\[0\]\.tls\.ciphers: OpenSSL finds no TLS 1\.2 cipher suite in "NO-SUCH-CIPHER"/],
    ]) {
      const file = path.join(pki.dir, 'bad.yaml');
      fs.writeFileSync(file, `listeners:\n  - name: t\n    http: 127.0.0.1:0\n${tlsListener(pki, extra)}\n` +
        'backends: {d: {type: discard}}\npipelines: [{name: p, signals: [traces], backends: [d]}]\n');
      const r = await runGatewayOnce(['--check-config', file]);
      assert.notEqual(r.code, 0, r.output);
      assert.match(r.output, want);
    }
  });
});
