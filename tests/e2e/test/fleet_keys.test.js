// Fleet-wide API keys: several gateway instances share one key set in an S3
// object (auth.api_keys.s3) or behind a URL (auth.api_keys.url), each polling
// it; `otlp-gateway keys` edits the S3 object with conditional PUTs.
//
// The S3 is s3rver (a real S3 implementation) behind a thin proxy that adds
// what s3rver lacks: If-Match / If-None-Match on PutObject, and a check of
// every SigV4 signature with the AWS SDK's signer. See lib/s3.js for that
// limitation of the local S3.
// Nothing here sleeps a fixed time to wait for a poll: every wait polls the
// gateways' answers or metrics with a deadline.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Gateway, httpRequest, runGatewayOnce, sleep, waitFor as poll } from '../lib/gateway.js';
import { makePki } from '../lib/pki.js';
import { LocalS3, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY } from '../lib/s3.js';
import { newSpan, traceRequestProto } from '../lib/wire.js';

const POLL = '500ms';
const DEADLINE_MS = 8_000; // a poll interval is 0.5 s; this leaves room for a loaded machine
const OBJECT = 'fleet/keys.yaml';
const S3_URL = `s3://fleet-keys/${OBJECT}`;
const M = {
  up: 'otlp_gateway_api_keys_source_up',
  lastOk: 'otlp_gateway_api_keys_source_last_success_timestamp_seconds',
  fetches: 'otlp_gateway_api_keys_source_fetches_total',
  keys: 'otlp_gateway_api_keys',
};

function fleetYaml(w, apiKeys) {
  return `workers: 1
admin: 127.0.0.1:${w.adminPort}
listeners:
  - name: secure
    http: 127.0.0.1:${w.httpPort}
    grpc: 127.0.0.1:${w.grpcPort}
    header_timeout: 2s
    auth: required
auth:
  api_keys:
${apiKeys.map((l) => `    ${l}`).join('\n')}
tenants:
  - {id: shop, endpoints: [secure]}
backends: {local: {type: file, dir: ${w.dataDir}}}
pipelines: [{name: all, signals: [traces, metrics, logs], backends: [local]}]
`;
}

function s3Keys(s3, { secret = S3_SECRET_KEY } = {}) {
  return [
    `s3: ${S3_URL}`,
    `region: ${S3_REGION}`,
    `endpoint: ${s3.endpoint}`,
    `credentials: {source: static, access_key_id: ${S3_ACCESS_KEY}, secret_access_key: ${secret}}`,
    `poll_interval: ${POLL}`,
    'timeout: 2s',
  ];
}

function postTraces(gw, key) {
  const body = traceRequestProto('fleet-keys-e2e', [newSpan('fleet')]);
  return httpRequest({
    port: gw.httpPort,
    method: 'POST',
    path: '/v1/traces',
    headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${key}` },
    body,
  });
}

async function waitFor(what, fn, timeoutMs = DEADLINE_MS, stepMs = 100) {
  let last;
  if (await poll(async () => (last = await fn()).ok, timeoutMs, stepMs)) return last;
  assert.fail(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

/** Until the gateway answers `status` for key. */
function waitStatus(gw, key, status, what) {
  return waitFor(what, async () => {
    const r = await postTraces(gw, key);
    return { ok: r.status === status, status: r.status };
  });
}

function waitMetric(gw, name, labels, pred, what) {
  return waitFor(what, async () => {
    const v = await gw.metricSum(name, labels);
    return { ok: pred(v), value: v };
  });
}

async function keys(configPath, ...args) {
  return runGatewayOnce(['--config', configPath, 'keys', ...args], { timeoutMs: 30_000 });
}

/** `keys create` through gw's config; returns {key, id}. */
async function createKey(gw, tenant = 'shop') {
  const r = await keys(gw.configPath, 'create', '--tenant', tenant, '--name', 'fleet-e2e');
  assert.equal(r.code, 0, r.output);
  const key = /^(otlpgw_[A-Za-z0-9_-]{43})$/m.exec(r.output)?.[1];
  const id = /created key (k_[0-9a-f]{12})/.exec(r.output)?.[1];
  assert.ok(key && id, r.output);
  return { key, id };
}

async function listStatus(configPath) {
  const r = await keys(configPath, 'list');
  assert.equal(r.code, 0, r.output);
  const out = {};
  for (const line of r.output.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 2 && f[0].startsWith('k_')) out[f[0]] = f[f.length - 1];
  }
  return out;
}

describe('fleet API keys in S3 (s3rver + precondition proxy)', () => {
  let s3;
  const gws = [];
  const [A, B, C] = [0, 1, 2];

  before(async () => {
    s3 = await LocalS3.start({ bucket: 'fleet-keys' });
    for (let i = 0; i < 3; i++) gws.push(await Gateway.start({ config: (w) => fleetYaml(w, s3Keys(s3)) }));
  });

  after(async () => {
    try {
      for (const gw of gws) await gw.stop();
    } finally {
      const v = s3?.proxy.violations ?? [];
      await s3?.stop();
      assert.deepEqual(v, []);
    }
  });

  it('before the first load API-key tokens get a retryable 503, and source_up is 0', async () => {
    const bogus = `otlpgw_${crypto.randomBytes(32).toString('base64url')}`;
    for (const gw of gws) {
      await waitMetric(gw, M.fetches, { result: 'error' }, (v) => v >= 1, 'a failed first fetch (no object yet)');
      const r = await postTraces(gw, bogus);
      assert.equal(r.status, 503, gw.logTail());
      assert.equal(r.headers['retry-after'], '1');
      assert.equal(await gw.metricSum(M.up, { source: S3_URL }), 0);
    }
    await gws[A].waitForLog(/api keys source down; keeping the last good keys.*keys_loaded=no/);
  });

  it('a key created with A\'s CLI works on B and C within a poll; revoked with B\'s CLI it is refused on A and C', async () => {
    const { key, id } = await createKey(gws[A]);
    const firstPut = s3.proxy.requests.find((r) => r.method === 'PUT');
    assert.equal(firstPut.headers['if-none-match'], '*', 'the first write must only create the object');
    assert.match(firstPut.headers.authorization, /^AWS4-HMAC-SHA256 Credential=S3RVER\/\d{8}\/us-east-1\/s3\/aws4_request/);
    assert.ok(!gws[A].log().includes(key) && !firstPut.headers.authorization.includes(key), 'the key is never logged');
    await waitStatus(gws[B], key, 200, 'B accepts the new key');
    await waitStatus(gws[C], key, 200, 'C accepts the new key');
    for (const gw of gws) {
      await waitMetric(gw, M.up, { source: S3_URL }, (v) => v === 1, 'source up');
      assert.ok((await gw.metricSum(M.lastOk, { source: S3_URL })) > Date.now() / 1000 - 60);
      assert.ok((await gw.metricSum(M.keys)) >= 1);
    }

    const r = await keys(gws[B].configPath, 'revoke', id);
    assert.equal(r.code, 0, r.output);
    const revokePut = s3.proxy.requests.filter((x) => x.method === 'PUT').at(-1);
    assert.match(revokePut.headers['if-match'] ?? '', /^"[0-9a-f]+"$/, 'a revoke is conditional on the ETag read');
    await waitStatus(gws[A], key, 401, 'A refuses the revoked key');
    await waitStatus(gws[C], key, 401, 'C refuses the revoked key');
    assert.deepEqual(await listStatus(gws[C].configPath), { ...(await listStatus(gws[A].configPath)), [id]: 'revoked' });
    // The pollers re-read with If-None-Match: most polls are 304s.
    const getInm = s3.proxy.requests.filter((x) => x.method === 'GET' && x.headers['if-none-match']);
    assert.ok(getInm.length > 0);
    await waitMetric(gws[A], M.fetches, { result: 'not_modified' }, (v) => v >= 1, 'unchanged polls counted as not_modified');
  });

  it('concurrent revokes of different keys all survive (412 -> re-read, re-apply)', async () => {
    const made = [];
    for (let i = 0; i < 4; i++) made.push(await createKey(gws[i % 3]));
    for (const k of made) await waitStatus(gws[C], k.key, 200, 'C accepts the key');
    const before412 = s3.proxy.requests.filter((x) => x.status === 412).length;
    const results = await Promise.all(made.map((k, i) => keys(gws[i % 3].configPath, 'revoke', k.id)));
    for (const r of results) assert.equal(r.code, 0, r.output);
    const st = await listStatus(gws[A].configPath);
    for (const k of made) assert.equal(st[k.id], 'revoked', `${k.id} lost: ${JSON.stringify(st)}`);
    for (const k of made) await waitStatus(gws[B], k.key, 401, 'B refuses every revoked key');
    const conflicts = s3.proxy.requests.filter((x) => x.status === 412).length - before412;
    // Informational: how many writes lost a race and were re-applied.
    console.log(`fleet_keys: ${conflicts} conditional PUT(s) answered 412 and were retried`);
  });

  it('a source that goes away keeps the last keys (source_up 0) and recovers', async () => {
    const { key } = await createKey(gws[A]);
    await waitStatus(gws[B], key, 200, 'B accepts the key');
    const downs = gws[B].logCount(/api keys source down/);
    const ups = gws[B].logCount(/api keys source up/);
    await s3.proxy.down();
    try {
      await waitMetric(gws[B], M.up, { source: S3_URL }, (v) => v === 0, 'source_up 0 while S3 is down');
      assert.equal((await postTraces(gws[B], key)).status, 200, 'the last good keys stay in use');
      await gws[B].waitForLog(/api keys source down/, downs);
      await sleep(1_500); // three more failed polls: still one warning for this outage
      assert.equal(gws[B].logCount(/api keys source down/), downs + 1);
      const r = await keys(gws[B].configPath, 'list');
      assert.equal(r.code, 1);
      assert.match(r.output, /s3:\/\/fleet-keys\/fleet\/keys\.yaml: .*(Couldn't connect|Connection refused|connect)/i);
    } finally {
      await s3.proxy.up();
    }
    await waitMetric(gws[B], M.up, { source: S3_URL }, (v) => v === 1, 'source_up 1 after S3 is back');
    await gws[B].waitForLog(/api keys source up/, ups);
  });

  it('every signed request verified with the AWS SDK signer; a wrong secret is refused', async () => {
    const bad = s3.proxy.requests.filter((r) => r.signatureProblem);
    assert.deepEqual(bad.map((r) => `${r.method} ${r.path}: ${r.signatureProblem}`), []);
    assert.ok(s3.proxy.requests.some((r) => r.method === 'PUT') && s3.proxy.requests.some((r) => r.method === 'GET'));
    const dir = await fsp.mkdtemp(path.join(gws[A].dir, 'badsecret-'));
    const cfg = path.join(dir, 'gateway.yaml');
    const w = { adminPort: 1, httpPort: 2, grpcPort: 3, dataDir: dir };
    await fsp.writeFile(cfg, fleetYaml(w, s3Keys(s3, { secret: 'not-the-secret' })));
    const r = await keys(cfg, 'list');
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /HTTP 403 \(SignatureDoesNotMatch\)/);
  });
});

function keyEntry(key, tenant = 'shop', revoked = false) {
  const sha = crypto.createHash('sha256').update(key).digest('hex');
  return `  - {id: k_${sha.slice(0, 12)}, tenant: ${tenant}, sha256: ${sha}, revoked: ${revoked}}\n`;
}
const newKey = () => `otlpgw_${crypto.randomBytes(32).toString('base64url')}`;

/**
 * A keys document served at /keys.yaml with an ETag, answering 304 to a
 * matching If-None-Match, 500 while !up. tls: {cert, key} serves https.
 * Change doc and etag to publish a new key set; seen lists the requests.
 */
async function keysServer(tls = null) {
  const ks = { doc: 'keys:\n', etag: '"v0"', up: true, seen: [] };
  const handler = (req, res) => {
    ks.seen.push({ method: req.method, inm: req.headers['if-none-match'] });
    if (!ks.up) return res.writeHead(500).end('down');
    if (req.headers['if-none-match'] === ks.etag) return res.writeHead(304, { etag: ks.etag }).end();
    res.writeHead(200, { etag: ks.etag, 'content-type': 'application/yaml' }).end(ks.doc);
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
  ks.url = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}/keys.yaml`;
  ks.close = () => new Promise((r) => server.close(r));
  return ks;
}

describe('fleet API keys behind a URL (ETag / If-None-Match)', () => {
  let ks, gw;

  before(async () => {
    ks = await keysServer();
    gw = await Gateway.start({ config: (w) => fleetYaml(w, [`url: ${ks.url}`, `poll_interval: ${POLL}`, 'timeout: 2s']) });
  });

  after(async () => {
    try {
      await gw?.stop();
    } finally {
      await ks.close();
    }
  });

  it('polls with If-None-Match, handles 304, and picks up a changed document', async () => {
    const k1 = newKey();
    ks.doc = `keys:\n${keyEntry(k1)}`;
    ks.etag = '"v1"';
    await waitStatus(gw, k1, 200, 'the key from the served document works');
    await waitFor('a conditional GET answered 304', async () => ({ ok: ks.seen.some((s) => s.inm === '"v1"') }));
    await waitMetric(gw, M.fetches, { result: 'not_modified' }, (v) => v >= 1, 'not_modified fetches counted');
    const k2 = newKey();
    ks.doc = `keys:\n${keyEntry(k1, 'shop', true)}${keyEntry(k2)}`;
    ks.etag = '"v2"';
    await waitStatus(gw, k2, 200, 'the second key works');
    assert.equal((await postTraces(gw, k1)).status, 401, 'the first key is revoked');
    assert.equal(await gw.metricSum(M.keys), 2);
  });

  it('a bad document keeps the last good keys, says so once, and recovers', async () => {
    const good = newKey();
    ks.doc = `keys:\n${keyEntry(good)}`;
    ks.etag = '"v3"';
    await waitStatus(gw, good, 200, 'the good key works');
    ks.doc = 'keys: [ {id: broken\n';
    ks.etag = '"v4"';
    await waitMetric(gw, M.up, {}, (v) => v === 0, 'source_up 0 for a bad document');
    assert.equal((await postTraces(gw, good)).status, 200);
    await gw.waitForLog(/api keys source down; keeping the last good keys.*keys_loaded=yes.*invalid YAML/);
    ks.up = false;
    await sleep(1_200);
    assert.equal(gw.logCount(/api keys source down/), 1, 'one warning per state change');
    ks.up = true;
    ks.doc = `keys:\n${keyEntry(good)}`;
    ks.etag = '"v5"';
    await waitMetric(gw, M.up, {}, (v) => v === 1, 'source_up 1 again');
  });

  it('keys create and revoke refuse a url source (read-only); list reads it', async () => {
    const r = await keys(gw.configPath, 'create', '--tenant', 'shop');
    assert.equal(r.code, 1);
    assert.match(r.output, /url source is read-only.*s3 source or a file/);
    assert.doesNotMatch(r.output, /otlpgw_/);
    const l = await keys(gw.configPath, 'list');
    assert.equal(l.code, 0, l.output);
    assert.match(l.output, /shop/);
  });
});

describe('fleet API keys behind an https URL with a private CA (ca_file)', () => {
  let pki, ks;
  const gws = [];

  before(async () => {
    pki = makePki(fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-keys-pki-')));
    const read = (f) => fs.readFileSync(path.join(pki.dir, f));
    ks = await keysServer({ cert: read('a.crt'), key: read('a.key') }); // SAN IP:127.0.0.1
    const keysYaml = (extra) => [`url: ${ks.url}`, `poll_interval: ${POLL}`, 'timeout: 2s', ...extra];
    gws.push(await Gateway.start({ config: (w) => fleetYaml(w, keysYaml([`ca_file: ${path.join(pki.dir, 'ca.crt')}`])) }));
    gws.push(await Gateway.start({ config: (w) => fleetYaml(w, keysYaml([])) })); // the system CAs only
  });

  after(async () => {
    try {
      for (const gw of gws) await gw.stop();
    } finally {
      await ks?.close();
      if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
    }
  });

  it('polls the https source with If-None-Match, trusting the CA in ca_file and nothing else', async () => {
    const [trusting, other] = gws;
    const k = newKey();
    ks.doc = `keys:\n${keyEntry(k)}`;
    ks.etag = '"tls1"';
    await waitStatus(trusting, k, 200, 'the key from the https document works');
    await waitFor('a conditional GET over https answered 304', async () => ({ ok: ks.seen.some((r) => r.inm === '"tls1"') }));
    await waitMetric(other, M.fetches, { result: 'error' }, (v) => v >= 2, 'fetches without the CA fail');
    assert.equal(await other.metricSum(M.up, {}), 0, 'a certificate from an unknown CA is not trusted');
    assert.equal((await postTraces(other, k)).status, 503, 'no key set loaded: retryable 503');
    await other.waitForLog(/api keys source down; keeping the last good keys.*keys_loaded=no/);
  });
});
