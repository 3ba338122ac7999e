// docs/examples/cluster/ as a user runs it: the three gateway configs and
// haproxy.cfg exactly as they are in the repository (fixed loopback ports:
// HAProxy on 4317/4318, admin on 8801..8803), each gateway in a working
// directory of its own so ./cluster-data/gwN lands in a temp dir. The SDK
// sends traces, one span per connection through HAProxy, a third of them with
// an ERROR root: each error trace must be complete in exactly one gateway's
// file and no span of another trace anywhere. Also: every gateway config
// under docs/examples passes --check-config.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CM, assertTraces, checkTraces, spansByTrace, waitQuiet } from '../lib/cluster.js';
import { E2E_DIR, Gateway, runGatewayOnce } from '../lib/gateway.js';
import { Haproxy } from '../lib/haproxy.js';
import { makeTraces, planOnePerRequest, sendSpread } from '../lib/spread.js';

const ROOT = path.resolve(E2E_DIR, '../..');
const EXAMPLES = path.join(ROOT, 'docs/examples');
const DIR = path.join(EXAMPLES, 'cluster');

/** Every *.yaml under docs/examples. */
function exampleConfigs(dir = EXAMPLES) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return exampleConfigs(p);
    return /\.ya?ml$/.test(e.name) ? [p] : [];
  });
}

/** Ports a config binds on 127.0.0.1 (every "127.0.0.1:N" it names). */
const portsIn = (text) => [...text.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));

const portFree = (port) =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });

/** A gateway on one of the example's files, as it is; its working directory is a temp dir. */
class ExampleGateway extends Gateway {
  async _prepare() {
    this.configPath = path.join(DIR, `${this.opts.name}.yaml`);
    const text = fs.readFileSync(this.configPath, 'utf8');
    this.adminPort = Number(/^admin: 127\.0\.0\.1:(\d+)/m.exec(text)[1]);
    this.grpcPort = Number(/^\s+grpc: 127\.0\.0\.1:(\d+)/m.exec(text)[1]);
    this.httpPort = Number(/^\s+http: 127\.0\.0\.1:(\d+)/m.exec(text)[1]);
    this.dir = await fsp.mkdtemp(path.join(os.tmpdir(), `otlp-gw-example-${this.opts.name}-`));
    this.dataDir = path.join(this.dir, 'cluster-data', this.opts.name);
  }
}

describe('docs/examples', () => {
  it('every gateway config passes --check-config', async () => {
    const files = exampleConfigs();
    assert.ok(files.length >= 3, `found ${files}`);
    const cwd = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-check-'));
    try {
      for (const f of files) {
        const r = await runGatewayOnce(['--check-config', f], { cwd });
        assert.equal(r.code, 0, `${path.relative(ROOT, f)}:\n${r.output}`);
      }
      assert.deepEqual(fs.readdirSync(cwd), [], '--check-config created nothing');
    } finally {
      await fsp.rm(cwd, { recursive: true, force: true });
    }
  });
});

describe('docs/examples/cluster as documented', () => {
  const gws = [];
  let hap;
  before(async () => {
    const texts = ['gw1.yaml', 'gw2.yaml', 'gw3.yaml', 'haproxy.cfg'].map((f) => fs.readFileSync(path.join(DIR, f), 'utf8'));
    const busy = [];
    for (const p of new Set(texts.flatMap(portsIn))) if (!(await portFree(p))) busy.push(p);
    assert.deepEqual(busy, [], `docs/examples/cluster binds fixed loopback ports; these are in use here: ${busy.join(', ')} ` +
      '(stop whatever listens on them, e.g. a gateway started by scripts/run.sh, and run again)');
    for (const name of ['gw1', 'gw2', 'gw3']) gws.push(await ExampleGateway.start({ name, env: { OTLP_GATEWAY_CLUSTER_SECRET: '' } }));
    hap = await Haproxy.start({ cfgPath: path.join(DIR, 'haproxy.cfg'), ports: [4317, 4318] });
    for (const gw of gws) {
      await gw.withLog(async () => {
        for (let t = Date.now(); (await gw.metricSum(CM.members)) !== 3; ) {
          if (Date.now() - t > 10_000) throw new Error('the example members do not see each other');
          await new Promise((r) => setTimeout(r, 50));
        }
      });
    }
  });
  after(async () => {
    const errors = [];
    await hap?.stop();
    await Promise.all(gws.map((gw) => gw.stop().catch((e) => errors.push(e.message))));
    assert.deepEqual(errors, []);
  });

  it('error traces sent one span per connection are complete in exactly one file; nothing else is kept', async () => {
    const set = makeTraces({ count: 60, services: 4, seed: 0xe4a1, error: (i) => i % 3 === 0, prefix: 'example' });
    const stats = await sendSpread({ grpcPort: 4317, httpPort: 4318 }, planOnePerRequest(set, { wave: 20 }), {
      concurrency: 16,
    });
    assert.deepEqual(stats.retried, []);
    await waitQuiet(gws, { pipeline: 'traces' });
    const found = spansByTrace(gws.map((gw) => [gw.opts.name, gw]));
    const errors = new Set(set.traces.filter((t) => t.error).map((t) => t.id));
    const res = checkTraces(set.sent, found, (id) => errors.has(id));
    assertTraces(res, 'docs/examples/cluster');
    assert.equal(res.kept, 20);
    let forwarded = 0;
    for (const gw of gws) forwarded += await gw.metricSum(CM.forwardedSpans);
    assert.ok(forwarded > 0, 'spans were forwarded to their owners');
  });
});
