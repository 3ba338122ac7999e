// The dashboard check (infra/check.sh): a real gateway with a config that
// exercises every metric family the dashboard shows (tenants, API keys, an
// unreachable OIDC issuer, a good, a refusing and an unreachable backend, a
// tail sampler that must evict, a cluster with a dead member), real traffic
// including refused and failing requests, Debian's Prometheus scraping it,
// then every panel query and template variable of infra/grafana/otlp-gateway.json
// run through Prometheus' HTTP API: each must parse, and each must return
// series unless its panel is in MAY_BE_EMPTY. A metric renamed in C without
// the dashboard fails here.
//   node infra/tools/dashboard-check.mjs BINARY [PROMETHEUS]
// Node's standard library only.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';

const here = path.dirname(new URL(import.meta.url).pathname);
const bin = path.resolve(process.argv[2] || path.join(here, '../../build/otlp-gateway'));
const prombin = process.argv[3] || '/usr/bin/prometheus';
const dashboard = JSON.parse(fs.readFileSync(path.join(here, '../grafana/otlp-gateway.json'), 'utf8'));
// Panels allowed to have no series here (their queries must still parse):
// forwarding failures need a live peer that dies mid-forward; the dead member
// of this config is never up, so nothing is forwarded to it.
const MAY_BE_EMPTY = new Set(['Forward failures/s']);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((res, rej) => {
  const s = net.createServer();
  s.on('error', rej);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
});
function request(port, p, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, headers, agent: false, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-dash-'));
const procs = [];
const servers = [];
let failed = false;
async function cleanup() {
  for (const p of procs) if (p.exitCode === null) { p.kill('SIGTERM'); await new Promise((r) => p.once('exit', r)); }
  for (const s of servers) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

try {
  // Backends: one that accepts, one that refuses (400: dropped), one not listening.
  const sink = (status) => new Promise((res) => {
    const s = http.createServer((req, rsp) => { req.resume(); req.on('end', () => { rsp.writeHead(status, { 'content-type': 'application/json' }); rsp.end('{}'); }); });
    servers.push(s);
    s.listen(0, '127.0.0.1', () => res(s.address().port));
  });
  const goodPort = await sink(200);
  const badPort = await sink(400);
  const [downPort, deadPeer, peerPort, adminPort, securePort, insecurePort, promPort, oidcPort] = await Promise.all(Array.from({ length: 8 }, freePort));

  const keysFile = path.join(dir, 'keys.yaml');
  const apiKey = execFileSync(bin, ['keys', 'create', '--keys-file', keysFile, '--tenant', 'shop', '--name', 'dash'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n').pop();
  const retry = '{initial_interval: 100ms, max_interval: 200ms, max_elapsed: 1s}';
  const cfg = `workers: 1
admin: 127.0.0.1:${adminPort}
listeners:
  - {name: secure, http: 127.0.0.1:${securePort}, auth: required}
  - {name: insecure, http: 127.0.0.1:${insecurePort}, auth: none, tenant: vpc}
auth:
  api_keys: {file: ${keysFile}}
  oidc:
    - {issuer: "http://127.0.0.1:${oidcPort}/realms/telemetry", tenant_claim: tenant, retry_interval: 1s, http_timeout: 1s}
tenants:
  - {id: shop, endpoints: [secure], limits: {spans_per_sec: 5}}
  - {id: vpc, endpoints: [insecure]}
backends:
  good: {type: otlp_http, endpoint: "http://127.0.0.1:${goodPort}", batch: {timeout: 0ms}}
  bad: {type: otlp_http, endpoint: "http://127.0.0.1:${badPort}", batch: {timeout: 0ms}}
  down: {type: otlp_http, endpoint: "http://127.0.0.1:${downPort}", timeout: 200ms, batch: {timeout: 0ms}, retry: ${retry}}
sampling:
  tiny:
    decision_wait: 1s
    max_traces: 2
    policies: [{name: errors, type: status_code, status_codes: [ERROR]}, {name: some, type: probabilistic, sampling_percentage: 50}]
pipelines:
  - {name: traces, signals: [traces], sampling: tiny, backends: [good]}
  - {name: metrics, signals: [metrics], backends: [good, bad]}
  - {name: logs, signals: [logs], backends: [good, down]}
cluster:
  advertise: 127.0.0.1:${peerPort}
  members: [127.0.0.1:${peerPort}, 127.0.0.1:${deadPeer}]
  secret: dashboard-check-cluster-secret
  health: {interval: 1s, failures: 100}
  forward: {give_up: 500ms, timeout: 300ms}
`;
  fs.writeFileSync(path.join(dir, 'gateway.yaml'), cfg);
  const glog = [];
  const gw = spawn(bin, ['--config', path.join(dir, 'gateway.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  gw.stdout.on('data', (c) => glog.push(c));
  gw.stderr.on('data', (c) => glog.push(c));
  procs.push(gw);

  fs.writeFileSync(path.join(dir, 'prometheus.yml'), `global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: otlp-gateway
    static_configs: [{targets: ["127.0.0.1:${adminPort}"]}]
`);
  const prom = spawn(prombin, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(prom);

  for (let i = 0; ; i++) {
    const r = await request(adminPort, '/healthz').catch(() => null);
    if (r?.status === 200) break;
    if (i > 100 || gw.exitCode !== null) throw new Error(`gateway did not start:\n${Buffer.concat(glog)}`);
    await sleep(100);
  }

  const hex = (n) => crypto.randomBytes(n).toString('hex');
  const now = () => String(BigInt(Date.now()) * 1000000n);
  const res = { attributes: [{ key: 'service.name', value: { stringValue: 'dashboard-check' } }] };
  const traces = (n, traceId = null) => JSON.stringify({ resourceSpans: [{ resource: res, scopeSpans: [{ spans: Array.from({ length: n }, (_, k) => ({ traceId: traceId ?? hex(16), spanId: hex(8), name: 'op', kind: 1, startTimeUnixNano: now(), endTimeUnixNano: now(), status: { code: k % 2 ? 2 : 0 } })) }] }] });
  const metrics = JSON.stringify({ resourceMetrics: [{ resource: res, scopeMetrics: [{ metrics: [{ name: 'demo_gauge', gauge: { dataPoints: [{ asDouble: 1, timeUnixNano: now() }] } }] }] }] });
  const logs = JSON.stringify({ resourceLogs: [{ resource: res, scopeLogs: [{ logRecords: [{ timeUnixNano: now(), body: { stringValue: 'hello' } }] }] }] });
  const json = { 'content-type': 'application/json' };
  const bearer = (t) => ({ ...json, authorization: `Bearer ${t}` });
  const codes = {};
  const send = async (port, p, headers, body) => {
    const r = await request(port, p, { method: 'POST', headers, body }).catch((e) => ({ status: e.message }));
    codes[r.status] = (codes[r.status] || 0) + 1;
  };
  const deadline = Date.now() + 12000;
  while (Date.now() < deadline) {
    await send(insecurePort, '/v1/traces', json, traces(6));
    await send(insecurePort, '/v1/metrics', json, metrics);
    await send(insecurePort, '/v1/logs', json, logs);
    await send(securePort, '/v1/traces', bearer(apiKey), traces(4));                  // shop, throttled past 5 spans/s
    await send(securePort, '/v1/traces', bearer('otlpgw_not_a_real_key'), traces(1)); // 401 unknown key
    await send(securePort, '/v1/traces', bearer('eyJhbGciOiJSUzI1NiJ9.e30.c2ln'), traces(1)); // JWT, keys unavailable
    await send(securePort, '/v1/traces', json, traces(1));                           // 401 missing token
    await send(insecurePort, '/v1/traces', json, '{"resourceSpans": [');              // 400
    await send(insecurePort, '/v1/traces', json, traces(1, 'abc'));                   // partial success: invalid
    await sleep(200);
  }
  console.log(`dashboard-check: sent traffic, answers ${JSON.stringify(codes)}\n`.trimEnd());
  await sleep(3000);

  const api = async (p) => {
    const r = await request(promPort, p);
    let body;
    try { body = JSON.parse(r.body); } catch { body = { status: 'error', error: r.body }; }
    return body;
  };
  const subst = (e) => e.replaceAll('$__rate_interval', '15s').replace(/\$(instance|tenant|backend)\b/g, '.*');
  let n = 0;
  const problems = [];
  for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
    const m = /^label_values\((\w+), *(\w+)\)$/.exec(v.definition);
    if (!m) { problems.push(`variable ${v.name}: unsupported query ${v.definition}`); continue; }
    const r = await api(`/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(m[1])}`);
    n++;
    if (r.status !== 'success' || r.data.length === 0) problems.push(`variable ${v.name}: ${v.definition} has no values`);
  }
  for (const p of dashboard.panels.filter((x) => x.type !== 'row')) {
    for (const t of p.targets) {
      const r = await api(`/api/v1/query?query=${encodeURIComponent(subst(t.expr))}`);
      n++;
      if (r.status !== 'success') problems.push(`panel "${p.title}" ${t.refId}: ${r.error || r.status}: ${t.expr}`);
      else if (r.data.result.length === 0 && !MAY_BE_EMPTY.has(p.title)) problems.push(`panel "${p.title}" ${t.refId}: no series: ${t.expr}`);
    }
  }
  if (problems.length) {
    failed = true;
    for (const p of problems) console.error(`dashboard-check: ${p}`);
  } else console.log(`dashboard-check: ${n} panel queries and variables parse and return series`);
} catch (e) {
  failed = true;
  console.error(`dashboard-check: ${e.stack || e}`);
} finally {
  await cleanup();
}
process.exit(failed ? 1 : 0);
