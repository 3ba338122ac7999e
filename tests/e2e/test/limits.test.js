// Per-tenant limits: spans per second (429 / RESOURCE_EXHAUSTED with retry
// info, then accepted again once the debt is paid) and max_request_bytes (413).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Gateway, httpRequest, sleep } from '../lib/gateway.js';
import { decodeRpcStatus, grpcExport, newSpan, traceRequestProto } from '../lib/wire.js';

const config = ({ grpcPort, httpPort, adminPort, dataDir }) => `
workers: 1
admin: 127.0.0.1:${adminPort}
listeners:
  - {name: default, grpc: 127.0.0.1:${grpcPort}, http: 127.0.0.1:${httpPort}, auth: none, tenant: small}
tenants:
  - {id: small, endpoints: [default], limits: {spans_per_sec: 10, max_request_bytes: 4KiB}}
backends:
  local: {type: file, dir: ${dataDir}}
pipelines:
  - {name: default, signals: [traces, metrics, logs], backends: [local]}
`;

const spans = (n) => Array.from({ length: n }, (_, i) => newSpan(`s${i}`));

function postTraces(gw, body) {
  return httpRequest({
    port: gw.httpPort,
    method: 'POST',
    path: '/v1/traces',
    headers: { 'content-type': 'application/x-protobuf' },
    body,
  });
}

describe('per-tenant limits', () => {
  let gw;
  before(async () => {
    gw = await Gateway.start({ config });
  });
  after(async () => {
    await gw?.stop();
  });

  it('over spans_per_sec: HTTP 429 with Retry-After, accepted again after waiting', async () => {
    // 30 spans against 10/s: admitted once (the burst goes into a 2 s debt,
    // room for a slow machine between the two requests) ...
    let r = await postTraces(gw, traceRequestProto('limits', spans(30)));
    assert.equal(r.status, 200, gw.logTail());
    // ... then refused until the debt is paid off.
    r = await postTraces(gw, traceRequestProto('limits', spans(1)));
    assert.equal(r.status, 429);
    const wait = Number(r.headers['retry-after']);
    assert.ok(wait >= 1 && wait <= 3, `Retry-After ${r.headers['retry-after']}`);
    assert.equal(decodeRpcStatus(r.body).code, 8); // RESOURCE_EXHAUSTED
    assert.ok((await gw.metricSum('otlp_gateway_tenant_throttled_total', { tenant: 'small' })) >= 1);
    await sleep(wait * 1000 + 200);
    r = await postTraces(gw, traceRequestProto('limits', spans(1)));
    assert.equal(r.status, 200);
  });

  it('over spans_per_sec on gRPC: RESOURCE_EXHAUSTED with RetryInfo details', async () => {
    await sleep(2500); // let the bucket refill after the previous test
    let r = await grpcExport(gw.grpcPort, 'traces', traceRequestProto('limits', spans(30)));
    assert.equal(r.status, 0, r.message);
    r = await grpcExport(gw.grpcPort, 'traces', traceRequestProto('limits', spans(1)));
    assert.equal(r.status, 8);
    // RetryInfo travels in grpc-status-details-bin, which lets clients retry.
    const details = r.trailers['grpc-status-details-bin'] ?? r.headers['grpc-status-details-bin'];
    assert.ok(details, 'grpc-status-details-bin present');
    assert.ok(Buffer.from(String(details), 'base64').includes(Buffer.from('google.rpc.RetryInfo')));
  });

  it('over the tenant max_request_bytes: 413, while the listener would take it', async () => {
    await sleep(3000); // the previous test's 2 s debt paid off
    const big = traceRequestProto('limits', spans(1).map((s) => ({ ...s, name: 'x'.repeat(5000) })));
    assert.ok(big.length > 4096 && big.length < 1024 * 1024);
    const r = await postTraces(gw, big);
    assert.equal(r.status, 413);
    assert.match(decodeRpcStatus(r.body).message, /max_request_bytes/);
  });
});
