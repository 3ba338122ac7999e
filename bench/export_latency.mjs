// otlp_grpc export to a receiver with round-trip time: node's http2 server
// answers every Export after DELAY ms (default 50), standing in for a
// distant collector. The gateway (GATEWAY_BIN, 1 worker) gets N (80)
// requests of 10 spans, one batch each, and the script reports how long the
// receiver took to have them all and how many connections it saw, for each
// queue.consumers value in CONSUMERS (default "1,4,16"; "none" leaves the
// key out, for a binary that predates it). Not a test: figures only.
//
//   GATEWAY_BIN=build/otlp-gateway node bench/export_latency.mjs
import http2 from 'node:http2';

import { Gateway, httpRequest } from '../tests/e2e/lib/gateway.js';
import { grpcFrame, newSpan, traceRequestProto } from '../tests/e2e/lib/wire.js';

const DELAY = Number(process.env.DELAY ?? 50);
const N = Number(process.env.N ?? 80);

/** A receiver that answers OK after DELAY ms; counts answers and connections. */
async function slowReceiver() {
  const r = { answered: 0, connections: 0, server: http2.createServer() };
  r.server.on('session', () => r.connections++);
  r.server.on('stream', (s) => {
    s.on('data', () => {});
    s.on('end', () =>
      setTimeout(() => {
        r.answered++;
        s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
        s.end(grpcFrame(Buffer.alloc(0)));
      }, DELAY),
    );
  });
  await new Promise((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  return r;
}

for (const c of (process.env.CONSUMERS ?? '1,4,16').split(',')) {
  const rx = await slowReceiver();
  const gw = await Gateway.start({
    config: (w) => `workers: 1
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: in, http: 127.0.0.1:${w.httpPort}, grpc: 127.0.0.1:${w.grpcPort}}
backends:
  out:
    type: otlp_grpc
    endpoint: http://127.0.0.1:${rx.server.address().port}
    batch: {timeout: 0ms, max_items: 10}
${c === 'none' ? '' : `    queue: {consumers: ${c}}\n`}pipelines:
  - {name: t, signals: [traces], backends: [out]}
`,
  });
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    const spans = Array.from({ length: 10 }, (_, k) => newSpan(`s${i}-${k}`));
    const res = await httpRequest({
      port: gw.httpPort,
      method: 'POST',
      path: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf' },
      body: traceRequestProto('latency', spans),
    });
    if (res.status !== 200) throw new Error(`request ${i}: HTTP ${res.status}`);
  }
  while (rx.answered < N) await new Promise((resolve) => setTimeout(resolve, 5));
  const ms = Date.now() - t0;
  console.log(`consumers ${c}: ${N} batches, receiver delay ${DELAY} ms: ${ms} ms (${Math.round((N * 10 * 1000) / ms)} spans/s), ` +
    `receiver saw ${rx.connections} connection(s)`);
  await gw.stop();
  rx.server.close();
}
process.exit(0);
