// AWS SigV4: the gateway's C signer (backends/aws_sigv4.c, driven through the
// sigv4_tool helper built next to the unit tests) against the AWS SDK's
// @smithy/signature-v4 on 200 randomized requests: methods, paths with
// pre-encoded spaces/unicode/reserved characters and dot segments, repeated
// and oddly-encoded query parameters, headers with whitespace runs, random
// bodies, regions, services and session tokens. The Authorization (and every
// other header the signer adds) must be identical.
//
// The tool is $SIGV4_TOOL, else tests/unit/sigv4_tool in GATEWAY_BIN's build
// directory (default build/).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

import { SignatureV4 } from '@smithy/signature-v4';

import { NodeSha256 } from '../lib/sha256.js';

const here = dirname(fileURLToPath(import.meta.url));
const TOOL = process.env.SIGV4_TOOL ||
  join(dirname(resolve(process.env.GATEWAY_BIN || join(here, '../../../build/otlp-gateway'))),
    'tests/unit/sigv4_tool');

// Deterministic PRNG (mulberry32) so a failure can be replayed with SIGV4_SEED.
const SEED = Number(process.env.SIGV4_SEED || Date.now() % 2 ** 31);
let state = SEED >>> 0;
function rnd() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];
const chance = (p) => rnd() < p;

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const PIECES = [...ALNUM, ...'-._~', ' ', '  ', '+', '%', '&', '=', '?', '#', '/', ':', '@', '!',
  '$', "'", '(', ')', '*', ',', ';', '[', ']', '"', '<', '>', '\\', '^', '`', '{', '|', '}',
  'é', 'ß', 'ሴ', '日本', '😀', 'Ω'];
const word = (max, pieces = PIECES) => Array.from({ length: int(max) + 1 }, () => pick(pieces)).join('');

const up = (c) => '%' + c.toString(16).toUpperCase().padStart(2, '0');
// RFC 3986 encoding of every byte outside the unreserved set.
const strictEncode = (s) => [...Buffer.from(s, 'utf8')].map((b) =>
  /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : up(b)).join('');
// The ways a client may spell the same component on the wire.
const ENCODERS = [
  strictEncode,
  (s) => strictEncode(s).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  encodeURIComponent,
  // needless escapes of unreserved characters
  (s) => [...Buffer.from(s, 'utf8')].map((b) => (chance(0.3) || !/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))) ? up(b) : String.fromCharCode(b)).join(''),
];

function randomPath() {
  const segs = [];
  for (let i = int(5); i >= 0; i--) {
    const r = rnd();
    if (r < 0.08) segs.push('');
    else if (r < 0.14) segs.push('.');
    else if (r < 0.2) segs.push('..');
    else if (r < 0.3) segs.push(word(6, [...ALNUM, ...'-._~:@!$\'()*+,;=']));  // literal sub-delims
    else segs.push(pick(ENCODERS)(word(8)));
  }
  return '/' + segs.join('/') + (chance(0.3) ? '/' : '');
}

function randomQuery() {
  const pairs = [];
  const keys = [];
  for (let i = int(6); i > 0; i--) {
    const k = chance(0.3) && keys.length ? pick(keys) : word(6);
    if (k === '__proto__' || k.toLowerCase() === 'x-amz-signature') continue;
    keys.push(k);
    pairs.push([k, chance(0.2) ? '' : word(10)]);
  }
  const obj = {};
  for (const [k, v] of pairs) {
    if (!(k in obj)) obj[k] = v;
    else obj[k] = [].concat(obj[k], v);
  }
  const wire = pairs.map(([k, v]) => {
    const enc = pick(ENCODERS);
    return v === '' && chance(0.5) ? enc(k) : `${enc(k)}=${enc(v)}`;
  }).join('&');
  return { obj, wire };
}

const HEADER_NAMES = ['Content-Type', 'Content-Encoding', 'X-Amz-Target', 'x-aws-log-group',
  'x-aws-log-stream', 'X-Custom', 'accept', 'User-Agent', 'Proxy-Thing', 'sec-fetch-mode',
  'Date', 'Cache-Control', 'X-Amzn-Trace-Id', 'Content-Length', 'My-Header'];
const VALUE_PIECES = [...ALNUM, ' ', '   ', '\t', ' \t ', ',', ';', '=', '"', '/', '*', 'é', 'ሴ'];

function randomHeaders(hostname) {
  const headers = { [chance(0.5) ? 'Host' : 'host']: hostname };
  const seen = new Set(['host']);
  for (let i = int(6); i > 0; i--) {
    const name = chance(0.6) ? pick(HEADER_NAMES) : 'X-' + word(8, [...ALNUM, '-']);
    if (seen.has(name.toLowerCase())) continue;
    seen.add(name.toLowerCase());
    headers[name] = chance(0.1) ? '' : word(16, VALUE_PIECES);
  }
  return headers;
}

function randomCase(i) {
  const hostname = `${word(8, [...'abcdefghijklmnopqrstuvwxyz0123456789'])}.amazonaws.com`;
  const { obj, wire } = randomQuery();
  const date = new Date(Date.UTC(2000 + int(40), int(12), 1 + int(28), int(24), int(60), int(60)));
  return {
    i,
    method: pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD']),
    path: randomPath(),
    query: obj, queryWire: wire,
    headers: randomHeaders(hostname),
    body: chance(0.2) ? new Uint8Array(0) : new Uint8Array(randomBytes(int(2048))),
    region: pick(['us-east-1', 'eu-west-2', 'ap-southeast-2', word(10, [...'abcdefghijklmnopqrstuvwxyz0123456789-'])]),
    service: pick(['xray', 'logs', 'aps', 'service', word(8, [...'abcdefghijklmnopqrstuvwxyz0123456789'])]),
    accessKeyId: 'AKIA' + word(16, [...'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567']),
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: chance(0.4) ? randomBytes(int(300) + 20).toString('base64') : undefined,
    date,
    applyChecksum: chance(0.5),
  };
}

const amzDate = (d) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

function runTool(cases) {
  assert.ok(existsSync(TOOL), `sigv4_tool not found at ${TOOL}: build it (ninja -C <build> tests/unit/sigv4_tool) or set SIGV4_TOOL`);
  const input = cases.map((c) => JSON.stringify({
    method: c.method,
    path: c.path,
    query: c.queryWire || null,
    headers: Object.entries(c.headers).map(([k, v]) => `${k}: ${v}`),
    body_hex: Buffer.from(c.body).toString('hex'),
    access_key_id: c.accessKeyId,
    secret_access_key: c.secretAccessKey,
    session_token: c.sessionToken ?? null,
    region: c.region,
    service: c.service,
    amz_date: amzDate(c.date),
    add_content_sha256: c.applyChecksum,
  })).join('\n') + '\n';
  const r = spawnSync(TOOL, [], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `sigv4_tool failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
}

async function smithySign(c) {
  const signer = new SignatureV4({
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken },
    region: c.region,
    service: c.service,
    sha256: NodeSha256,
    uriEscapePath: true,
    applyChecksum: c.applyChecksum,
  });
  const signed = await signer.sign({
    method: c.method, protocol: 'https:', hostname: c.headers.host ?? c.headers.Host,
    path: c.path, query: c.query, headers: { ...c.headers }, body: c.body,
  }, { signingDate: c.date });
  return signed.headers;
}

describe('sigv4 (C signer vs @smithy/signature-v4)', () => {
  it('smithy harness reproduces the suite get-vanilla signature', async () => {
    const h = await smithySign({
      method: 'GET', path: '/', query: {}, headers: { host: 'example.amazonaws.com' }, body: undefined,
      region: 'us-east-1', service: 'service', accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', date: new Date('2015-08-30T12:36:00Z'),
      applyChecksum: false,
    });
    assert.equal(h.authorization, 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  });

  it(`200 randomized requests sign identically (seed ${SEED})`, async () => {
    const cases = Array.from({ length: 200 }, (_, i) => randomCase(i));
    const results = runTool(cases);
    assert.equal(results.length, cases.length);
    for (const c of cases) {
      const got = results[c.i];
      const ctx = () => `case ${c.i} (seed ${SEED}): ${JSON.stringify({ ...c, body: c.body.length })}\nC canonical request:\n${got.canonical}`;
      assert.ok(got.ok, `sigv4_tool: ${got.error}\n${ctx()}`);
      const want = await smithySign(c);
      assert.equal(got.headers.Authorization, want.authorization, ctx());
      assert.equal(got.headers['X-Amz-Date'], want['x-amz-date'], ctx());
      assert.equal(got.headers['X-Amz-Security-Token'], want['x-amz-security-token'], ctx());
      assert.equal(got.headers['X-Amz-Content-Sha256'], c.applyChecksum ? want['x-amz-content-sha256'] : undefined, ctx());
      assert.equal(Object.keys(got.headers).length, 2 + (c.sessionToken ? 1 : 0) + (c.applyChecksum ? 1 : 0), ctx());
    }
  });
});
