// The gRPC listener's read budget (gateway/grpc.c, GRPC_READ_BUDGET): a
// connection processes at most 512 KiB of its input per pass of the
// worker's loop and the rest in later passes, after the other connections'
// turns (bench/fairness.sh measures what that does for small requests).
// Requests many times the budget must still be answered whole: while more
// bytes keep arriving, when the whole request is already buffered and the
// client only waits, and several at once on one connection while small
// requests come on others. One worker, so every connection shares it.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';

import { Gateway } from '../lib/gateway.js';
import { GRPC, GRPC_PATH, grpcExport, grpcFrame, newSpan, traceRequestProto } from '../lib/wire.js';

const RECEIVED = 'otlp_gateway_received_spans_total';

const config = ({ grpcPort, adminPort }) => `
workers: 1
admin: 127.0.0.1:${adminPort}
listeners:
  - {name: default, grpc: 127.0.0.1:${grpcPort}, auth: none}
backends:
  drop: {type: discard}
pipelines:
  - {name: default, signals: [traces], backends: [drop]}
`;

/** A trace export request of n fresh spans (about 56 bytes each). */
const request = (n, tag) =>
  traceRequestProto(`budget-${tag}`, Array.from({ length: n }, (_, i) => newSpan(`${tag}-${i}`)));

/** Calls Export once per body, all at once as streams of ONE connection. */
function oneConnection(port, bodies) {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      client.destroy();
      reject(new Error('the large requests were not all answered within 60 s'));
    }, 60_000);
    client.on('error', reject);
    const calls = bodies.map(
      (body) =>
        new Promise((res, rej) => {
          const req = client.request({
            ':method': 'POST',
            ':path': GRPC_PATH.traces,
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          let status = null;
          req.on('response', (h) => {
            if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
          });
          req.on('trailers', (t) => {
            status = Number(t['grpc-status']);
          });
          req.on('data', () => {});
          req.on('error', rej);
          req.on('close', () => res(status));
          req.end(grpcFrame(body));
        }),
    );
    Promise.all(calls).then(
      (statuses) => {
        clearTimeout(timer);
        client.close();
        resolve(statuses);
      },
      (e) => {
        clearTimeout(timer);
        client.destroy();
        reject(e);
      },
    );
  });
}

describe('gRPC read budget: requests far over it are answered whole', () => {
  let gw;
  before(async () => {
    gw = await Gateway.start({ config });
  });
  after(async () => {
    await gw?.stop();
  });

  it('one 3 MB request (over 5 budgets), its bytes all sent before any answer', async () => {
    const before = await gw.metricSum(RECEIVED);
    const body = request(50_000, 'one');
    assert.ok(body.length > 5 * 512 * 1024, `only ${body.length} bytes`);
    const r = await grpcExport(gw.grpcPort, 'traces', body, { timeoutMs: 30_000 });
    assert.equal(r.status, GRPC.OK, r.message);
    assert.equal((await gw.metricSum(RECEIVED)) - before, 50_000);
  });

  it('four 2 MB requests on one connection while 40 small ones come on others', async () => {
    const before = await gw.metricSum(RECEIVED);
    const large = Array.from({ length: 4 }, (_, k) => request(35_000, `large${k}`));
    const small = Array.from({ length: 40 }, (_, k) => request(10, `small${k}`));
    const [statuses, smallResults] = await Promise.all([
      oneConnection(gw.grpcPort, large),
      Promise.all(small.map((b) => grpcExport(gw.grpcPort, 'traces', b, { timeoutMs: 30_000 }))),
    ]);
    assert.deepEqual(statuses, [GRPC.OK, GRPC.OK, GRPC.OK, GRPC.OK]);
    for (const r of smallResults) assert.equal(r.status, GRPC.OK, r.message);
    assert.equal((await gw.metricSum(RECEIVED)) - before, 4 * 35_000 + 40 * 10);
  });
});
