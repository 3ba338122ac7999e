// Connection floods with a small descriptor limit (issue 13, "Out of file
// descriptors = down"): the gateway runs under prlimit --nofile=64:64 and gets
// 150 idle connections, more than it has descriptors. /healthz must answer
// promptly, the workers must not spin, the refusals are counted, and once the
// flood is gone a new OTLP request succeeds. Twice: with the default
// (derived) connection cap, and with a cap set above the descriptor limit so
// accept() itself runs into EMFILE (reserve descriptor + pause).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import { Gateway, httpRequest, metricSum, sleep } from '../lib/gateway.js';
import { grpcExport, newSpan, traceRequestProto } from '../lib/wire.js';

const NOFILE = 64;
const FLOOD = 150;
const CLK_TCK = 100; // Linux USER_HZ

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14, 15). */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Open n TCP connections that send nothing; resolves once all connected (or closed). */
async function flood(port, n) {
  const socks = [];
  await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('connect', resolve);
      s.on('error', resolve);
      s.on('close', resolve);
      socks.push(s);
    })),
  );
  return socks;
}

function postTraces(gw) {
  return httpRequest({
    port: gw.httpPort,
    method: 'POST',
    path: '/v1/traces',
    headers: { 'content-type': 'application/x-protobuf' },
    body: traceRequestProto('flood', [newSpan('after-flood')]),
    timeoutMs: 5000,
  });
}

async function refused(gw) {
  return metricSum(await gw.metrics(), 'otlp_gateway_connections_refused_total', { listener: 'default' });
}

for (const variant of [
  { name: 'default cap (derived from the descriptor limit)', extraYaml: '', reason: null },
  // A cap above what the descriptors allow: accept() gets EMFILE.
  { name: 'cap above the descriptor limit (EMFILE)', extraYaml: 'limits: {max_connections: 100000}', reason: 'descriptors' },
]) {
  describe(`connection flood, nofile=${NOFILE}: ${variant.name}`, () => {
    let gw;
    let socks = [];
    before(async () => {
      // header_timeout well beyond the test, so the flood is not simply timed out.
      gw = await Gateway.start({ nofile: NOFILE, headerTimeout: '60s', extraYaml: variant.extraYaml });
    });
    after(async () => {
      for (const s of socks) s.destroy();
      await gw?.stop();
    });

    it('logs the descriptor limit and the connection cap', () => {
      assert.match(gw.log(), /file descriptor limit.*soft=64 hard=64/);
      assert.match(gw.log(), /connection limits.*max_connections=\d+/);
    });

    it('keeps /healthz up, does not spin, counts refusals, recovers', async () => {
      socks = [...(await flood(gw.httpPort, FLOOD)), ...(await flood(gw.grpcPort, 20))];
      await sleep(300);

      // The flood is idle now: the gateway must be too.
      const c0 = cpuSeconds(gw.pid);
      await sleep(1000);
      const cpu = cpuSeconds(gw.pid) - c0;
      assert.ok(cpu < 0.3, `gateway used ${cpu.toFixed(2)} s CPU in a 1 s idle window`);

      const t0 = Date.now();
      const h = await httpRequest({ port: gw.adminPort, path: '/healthz', timeoutMs: 10_000 });
      const healthMs = Date.now() - t0;
      assert.equal(h.status, 200);
      // Served (the admin reserve) it takes milliseconds; an admin listener
      // starved of descriptors does not answer while the flood holds them (for
      // its 60 s header_timeout). 3 s leaves a loaded machine room.
      assert.ok(healthMs < 3000, `/healthz took ${healthMs} ms`);

      // Still reachable a second time (the admin reserve came back).
      const h2 = await httpRequest({ port: gw.adminPort, path: '/healthz', timeoutMs: 10_000 });
      assert.equal(h2.status, 200);

      const m = await gw.metrics();
      const n = await refused(gw);
      assert.ok(n > 0, 'refused connections are counted');
      if (variant.reason) {
        assert.ok(metricSum(m, 'otlp_gateway_connections_refused_total', { listener: 'default', reason: variant.reason }) > 0);
      }
      const open = metricSum(m, 'otlp_gateway_connections', { listener: 'default' });
      assert.ok(open > 0 && open < NOFILE, `open connections gauge ${open}`);
      // The global gate ("all") counts every OTLP listener's connections.
      assert.equal(metricSum(m, 'otlp_gateway_connections', { listener: 'all' }), open);
      console.log(`flood: healthz ${healthMs} ms, idle cpu ${cpu.toFixed(2)} s, refused ${n}, open ${open}`);

      for (const s of socks) s.destroy();
      socks = [];
      // Connections released: the gauge drops and a new request succeeds.
      let gauge = open;
      for (let i = 0; i < 50 && gauge > 0; i++) {
        await sleep(100);
        gauge = metricSum(await gw.metrics(), 'otlp_gateway_connections', { listener: 'default' });
      }
      assert.equal(gauge, 0);
      assert.equal(metricSum(await gw.metrics(), 'otlp_gateway_connections', { listener: 'all' }), 0);
      await sleep(Number(variant.reason ? 200 : 0));
      const r = await postTraces(gw);
      assert.equal(r.status, 200, r.body.toString());
      const g = await grpcExport(gw.grpcPort, 'traces', traceRequestProto('flood', [newSpan('grpc-after-flood')]));
      assert.equal(g.status, 0, g.message);
    });
  });
}
