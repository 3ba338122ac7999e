// bench/loadgen against the real gateway: what it reports as acknowledged is
// exactly what the gateway counted (received_spans_total, requests ok), over
// gRPC and OTLP/HTTP, cleartext and TLS, closed and open loop; and a refused
// request (a wrong API key: HTTP 401, or gRPC status 16 UNAUTHENTICATED in an
// HTTP 200) is reported as a failure of that kind with a non-zero exit, never
// counted as acknowledged. The benchmark (bench/run.sh) relies on both.
//
// loadgen is built by meson next to the gateway: <build>/bench/loadgen.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { GATEWAY_BIN, Gateway, METRIC, createApiKey, stopAll } from '../lib/gateway.js';

const LOADGEN = path.join(path.dirname(GATEWAY_BIN), 'bench', 'loadgen');

/** Run loadgen; resolves {code, out, result: {key: number}} from its "result" line. */
function loadgen(args) {
  return new Promise((resolve, reject) => {
    execFile(LOADGEN, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      const line = stdout.split('\n').find((l) => l.startsWith('result '));
      const result = {};
      for (const kv of (line ?? '').slice(7).split(' ')) {
        const [k, v] = kv.split('=');
        if (k) result[k] = Number(v);
      }
      resolve({ code: err ? err.code : 0, out: `${stdout}${stderr}`, result });
    });
  });
}

describe('bench/loadgen against the gateway', () => {
  let gw;
  let key;
  let dir;

  before(async () => {
    assert.ok(fs.existsSync(LOADGEN), `loadgen not built at ${LOADGEN}`);
    gw = await Gateway.start({
      config: (w) => {
        dir = w.dir;
        // A self-signed certificate for 127.0.0.1, which loadgen verifies.
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
          '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
          '-keyout', path.join(w.dir, 'tls.key'), '-out', path.join(w.dir, 'tls.crt')], { stdio: 'ignore' });
        fs.writeFileSync(path.join(w.dir, 'keys.yaml'), '');
        return `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - name: plain
    grpc: 127.0.0.1:${w.grpcPort}
    http: 127.0.0.1:${w.httpPort}
    auth: required
  - name: tls
    grpc: 127.0.0.1:${w.grpcPort + 1}
    tls: {cert: ${w.dir}/tls.crt, key: ${w.dir}/tls.key}
    auth: required
auth:
  api_keys: {file: ${w.dir}/keys.yaml}
tenants:
  - {id: shop, endpoints: [plain, tls]}
backends:
  sink: {type: discard}
pipelines:
  - {name: all, signals: [traces], backends: [sink]}
`;
      },
    });
    key = await createApiKey(path.join(dir, 'keys.yaml'), 'shop');
    // the keys file is re-read within a second of a change
    for (let i = 0; i < 50; i++) {
      const r = await loadgen(['-n', '1', '-c', '1', '-m', '1', '--spans', '1', '-H', `authorization: Bearer ${key}`,
        `http://127.0.0.1:${gw.grpcPort}`]);
      if (r.code === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
  });
  after(() => stopAll(gw));

  const spans = async (transport) => gw.metricSum(METRIC.receivedSpans, { signal: 'traces', transport });
  const okRequests = async (transport) =>
    gw.metricSum('otlp_gateway_requests_total', { signal: 'traces', transport, code: 'ok' });

  async function checkCounted(transport, args) {
    const [s0, r0] = [await spans(transport), await okRequests(transport)];
    const r = await loadgen([...args, '-H', `Authorization: Bearer ${key}`]);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.result.failed, 0, r.out);
    assert.ok(r.result.ok > 0, r.out);
    assert.equal(r.result.spans_acked, r.result.spans_sent, r.out);
    assert.equal((await spans(transport)) - s0, r.result.spans_acked, r.out);
    assert.equal((await okRequests(transport)) - r0, r.result.ok, r.out);
    // The client's own CPU (bench/run.sh's cores column): some, and no more
    // than its threads (and the main one) could spend over the run, with
    // room for building the first requests before the clock starts.
    const t = args.includes('-t') ? Number(args[args.indexOf('-t') + 1]) : 1;
    assert.ok(r.result.cpu_s > 0, r.out);
    assert.ok(r.result.cpu_s <= (t + 1) * r.result.duration_s + 0.2, r.out);
    return r;
  }

  it('gRPC, closed loop: acknowledged spans = spans the gateway received', async () => {
    const r = await checkCounted('grpc', ['-n', '300', '-c', '4', '-m', '8', '--spans', '40',
      `http://127.0.0.1:${gw.grpcPort}`]);
    assert.equal(r.result.ok, 300);
    assert.equal(r.result.spans_acked, 12000);
  });

  it('OTLP/HTTP over h2c, two threads', async () => {
    const r = await checkCounted('http', ['-p', 'http', '-t', '2', '-n', '201', '-c', '3', '-m', '4', '--spans', '25',
      '--attrs', '14', '--attr-bytes', '100', `http://127.0.0.1:${gw.httpPort}`]);
    assert.equal(r.result.ok, 201);
  });

  it('gRPC over TLS, open loop for a duration', async () => {
    const r = await checkCounted('grpc', ['-r', '100', '-d', '1', '-c', '2', '-m', '4', '--spans', '10',
      '--cacert', path.join(dir, 'tls.crt'), `https://127.0.0.1:${gw.grpcPort + 1}`]);
    // 100 requests/s for 1 s: request k is due at k/100 s, k = 0..99
    assert.equal(r.result.ok, 100, r.out);
    assert.match(r.out, /open loop/);
    assert.match(r.out, /from intended send time/);
  });

  it('TLS with a CA that did not sign the certificate: an error, not a measurement', async () => {
    const r = await loadgen(['-n', '1', '-c', '1', `https://127.0.0.1:${gw.grpcPort + 1}`]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /TLS handshake .*certificate/);
  });

  it('a wrong API key over gRPC: every request fails as grpc-status 16, nothing acknowledged', async () => {
    const s0 = await spans('grpc');
    const r = await loadgen(['-n', '50', '-c', '2', '-m', '5', '--spans', '10', '-H', 'authorization: Bearer otlpgw_wrong',
      `http://127.0.0.1:${gw.grpcPort}`]);
    assert.equal(r.code, 3, r.out);
    assert.equal(r.result.ok, 0, r.out);
    assert.equal(r.result.failed, 50, r.out);
    assert.equal(r.result.fail_grpc_16, 50, r.out);
    assert.equal(r.result.spans_acked, 0, r.out);
    assert.equal(await spans('grpc'), s0);
  });

  it('a wrong API key over OTLP/HTTP: failures counted as HTTP 401', async () => {
    const r = await loadgen(['-p', 'http', '-n', '30', '-c', '1', '-m', '3', '--spans', '5',
      `http://127.0.0.1:${gw.httpPort}`]);
    assert.equal(r.code, 3, r.out);
    assert.equal(r.result.fail_http_401, 30, r.out);
    assert.equal(r.result.spans_acked, 0, r.out);
  });

  it('gRPC sent to the OTLP/HTTP port: refused and counted by kind', async () => {
    // gRPC to the HTTP port: h2o answers these with an HTTP error, not grpc-status
    const r = await loadgen(['-n', '10', '-c', '1', '-m', '2', '--spans', '5', '-H', `authorization: Bearer ${key}`,
      `http://127.0.0.1:${gw.httpPort}`]);
    assert.equal(r.code, 3, r.out);
    assert.equal(r.result.ok, 0, r.out);
    assert.equal(r.result.failed, 10, r.out);
    assert.match(r.out, /fail_(http_4\d\d|no_grpc_status)=10/);
  });
});
