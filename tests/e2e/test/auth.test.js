// Authentication end to end: the real gateway against a Keycloak stand-in
// (lib/keycloak.js: the real oidc-provider with Keycloak's realm layout and
// claims). Tokens come from the provider's token endpoint (client-credentials
// grant, as an OpenTelemetry Collector's oauth2client extension gets them) and,
// for the attack cases, are signed by the test itself with the realm's keys.
//
// Listeners of the gateway under test:
//   secure   gRPC + HTTP, auth: required   (tenants shop, payments)
//   partner  HTTP, auth: required          (tenant payments only)
//   insecure gRPC + HTTP, auth: none, allow_cidrs [127.0.0.1/32], tenant legacy

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Metadata } from '@grpc/grpc-js';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

import { E2E_DIR, GATEWAY_BIN, Gateway, freePort, httpRequest, metricSum, runGatewayOnce, sleep, waitFor } from '../lib/gateway.js';
import { CLIENTS, FakeKeycloak, decodeJwt, makeKey, makeKeySet, signJwt } from '../lib/keycloak.js';
import { buildSpans } from '../lib/sdkdata.js';
import { grpcExport, grpcFrame, newSpan, traceRequestProto } from '../lib/wire.js';

const M = {
  ok: 'otlp_gateway_auth_success_total',
  fail: 'otlp_gateway_auth_failure_total',
  jwks: 'otlp_gateway_jwks_refreshes_total',
};
const GRPC_CODE = { UNAUTHENTICATED: 16, PERMISSION_DENIED: 7, UNAVAILABLE: 14, OK: 0 };
const WWW_PLAIN = 'Bearer realm="otlp-gateway"';
const WWW_INVALID = 'Bearer realm="otlp-gateway", error="invalid_token"';

// ---------- the gateway with auth listeners ----------

function authConfigYaml(o) {
  return `workers: 2
admin: 127.0.0.1:${o.adminPort}
listeners:
  - name: secure
    grpc: 127.0.0.1:${o.grpcPort}
    http: 127.0.0.1:${o.httpPort}
    header_timeout: 2s
    auth: required
  - name: partner
    http: 127.0.0.1:${o.partnerPort}
    header_timeout: 2s
    auth: required
  - name: insecure
    grpc: 127.0.0.1:${o.insecureGrpcPort}
    http: 127.0.0.1:${o.insecureHttpPort}
    header_timeout: 2s
    auth: none
    allow_cidrs: [127.0.0.1/32]
    tenant: legacy
auth:
  token_cache_size: 1000
  api_keys: {file: ${o.keysFile}}
  oidc:
    - issuer: ${o.issuer}
      audience: otlp-gateway
      algorithms: [RS256, PS256, ES256]
      tenant_claim: tenant
      clock_skew: 30s
      required_roles: [otlp-writer]
      refresh_interval: ${o.refreshInterval ?? '5m'}
      min_refresh_interval: ${o.minRefreshInterval ?? '1s'}
      retry_interval: ${o.retryInterval ?? '1s'}
      http_timeout: 2s
${o.providerExtra ?? ''}tenants:
  - id: shop
    endpoints: [secure]
    limits: {spans_per_sec: 50000, max_request_bytes: 4MiB}
  - id: payments
    endpoints: [secure, partner]
  - id: legacy
    endpoints: [insecure]
backends: {local: {type: file, dir: ${o.dataDir}}}
pipelines: [{name: all, signals: [traces, metrics, logs], backends: [local]}]
`;
}

/**
 * The harness' Gateway (log, metrics, readSignal, stop) with this file's
 * config: several listeners, an OIDC provider and an API keys file.
 */
class AuthGateway extends Gateway {
  /** Six ports (secure, partner and insecure listeners), a keys file, the auth config. */
  async _prepare() {
    if (!fs.existsSync(GATEWAY_BIN)) throw new Error(`gateway binary not found: ${GATEWAY_BIN} (set GATEWAY_BIN)`);
    this.dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-auth-'));
    this.dataDir = path.join(this.dir, 'data');
    await fsp.mkdir(this.dataDir);
    this.keysFile = path.join(this.dir, 'keys.yaml');
    const ports = new Set();
    while (ports.size < 6) ports.add(await freePort());
    [this.grpcPort, this.httpPort, this.adminPort, this.partnerPort, this.insecureGrpcPort, this.insecureHttpPort] = [
      ...ports,
    ];
    this.configPath = path.join(this.dir, 'gateway.yaml');
    await fsp.writeFile(this.configPath, authConfigYaml({ ...this.opts, ...this, keysFile: this.keysFile }));
  }

  /** Delta helper: run fn, return the change of metric `name`{labels} across it. */
  async delta(name, labels, fn) {
    const before = await this.metricSum(name, labels);
    const r = await fn();
    return { r, d: (await this.metricSum(name, labels)) - before };
  }
}

// ---------- clients ----------

/** POST an OTLP/protobuf trace request; auth is the full Authorization value (or undefined). */
function postTraces(port, auth, { localAddress, extraHeaders = {} } = {}) {
  const body = traceRequestProto('auth-e2e-raw', [newSpan('raw')]);
  const headers = { 'content-type': 'application/x-protobuf', ...extraHeaders };
  if (auth !== undefined) headers.authorization = auth;
  if (!localAddress) return httpRequest({ port, method: 'POST', path: '/v1/traces', headers, body });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, localAddress, method: 'POST', path: '/v1/traces', headers, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
const bearer = (t) => `Bearer ${t}`;

function grpcTraces(port, auth) {
  const headers = auth === undefined ? {} : { authorization: auth };
  return grpcExport(port, 'traces', traceRequestProto('auth-e2e-grpc', [newSpan('raw')]), { headers });
}

/** One OTLP/gRPC trace export through the nghttp client with every
 * authorization value as its own header; resolves the grpc-status it got. */
async function nghttpGrpcTraces(port, auths) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-nghttp-'));
  try {
    const body = path.join(dir, 'body');
    await fsp.writeFile(body, grpcFrame(traceRequestProto('auth-e2e-nghttp', [newSpan('raw')])));
    const args = ['-v', '-H', ':method: POST', '-H', 'content-type: application/grpc', '-H', 'te: trailers'];
    for (const a of auths) args.push('-H', `authorization: ${a}`);
    args.push('-d', body, `http://127.0.0.1:${port}/opentelemetry.proto.collector.trace.v1.TraceService/Export`);
    const out = await new Promise((resolve, reject) =>
      execFile('nghttp', args, { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
    const m = /grpc-status: (\d+)/.exec(out);
    assert.ok(m, `no grpc-status in nghttp's output:\n${out.slice(-2000)}`);
    return Number(m[1]);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

function exportOnce(exporter, items) {
  return new Promise((resolve) => exporter.export(items, resolve));
}

function traceExporter(transport, port, token, timeoutMillis = 10_000) {
  if (transport === 'grpc') {
    const metadata = new Metadata();
    metadata.set('authorization', bearer(token));
    return new GrpcTraceExporter({ url: `http://127.0.0.1:${port}`, metadata, timeoutMillis });
  }
  const opts = { url: `http://127.0.0.1:${port}/v1/traces`, headers: { Authorization: bearer(token) }, timeoutMillis };
  return transport === 'http/protobuf' ? new ProtoTraceExporter(opts) : new JsonTraceExporter(opts);
}

/** Export SDK spans for `service` through a fresh exporter; resolves the ExportResult. */
async function sdkExport(transport, port, token, service) {
  const spans = await buildSpans(service);
  const exporter = traceExporter(transport, port, token);
  try {
    return { result: await exportOnce(exporter, spans), count: spans.length };
  } finally {
    await exporter.shutdown();
  }
}

const servicesIn = (lines) =>
  new Set(
    lines.flatMap((l) =>
      (l.resourceSpans ?? []).map((rs) => rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value?.stringValue),
    ),
  );

/** {"tenant/reason": delta} of the auth failure counters between two scrapes. */
function failureDeltas(before, after) {
  const key = (x) => `${x.labels.tenant ?? ''}/${x.labels.reason}`;
  const prev = new Map(before.filter((x) => x.name === M.fail).map((x) => [key(x), x.value]));
  const out = {};
  for (const x of after) {
    if (x.name !== M.fail) continue;
    const d = x.value - (prev.get(key(x)) ?? 0);
    if (d !== 0) out[key(x)] = d;
  }
  return out;
}

// ---------- API keys ----------

async function keysCli(gw, args) {
  const r = await runGatewayOnce(['keys', ...args, '--keys-file', gw.keysFile]);
  assert.equal(r.code, 0, `otlp-gateway keys ${args.join(' ')} failed (${r.code}):\n${r.output}`);
  return r.output;
}

/** Append an entry the CLI cannot make (already expired) straight into the keys file. */
async function appendExpiredKey(gw, tenant) {
  const key = `otlpgw_${crypto.randomBytes(32).toString('base64url')}`;
  const sha = crypto.createHash('sha256').update(key).digest('hex');
  let text = '';
  try {
    text = await fsp.readFile(gw.keysFile, 'utf8');
  } catch {
    /* no file yet */
  }
  if (!/^keys:/m.test(text)) text += 'keys:\n';
  // Same indentation as the entries already there (the CLI writes "- id:" at column 0).
  const ind = /^( *)- id:/m.exec(text)?.[1] ?? '  ';
  const fields = [
    `id: k_${sha.slice(0, 12)}`,
    `tenant: ${tenant}`,
    'name: e2e-expired',
    `sha256: ${sha}`,
    'created: 2020-01-01T00:00:00Z',
    'expires: 2021-01-01T00:00:00Z',
    'revoked: false',
  ];
  text += fields.map((f, i) => `${ind}${i === 0 ? '- ' : '  '}${f}\n`).join('');
  await fsp.writeFile(gw.keysFile, text);
  return key;
}

async function sighupAndWait(gw) {
  const before = gw.log().length;
  process.kill(gw.pid, 'SIGHUP');
  const ok = await waitFor(() => /api keys reload/.test(gw.log().slice(before)), 3000, 50);
  assert.ok(ok, `no "api keys reload" log line after SIGHUP\n${gw.logTail(4000)}`);
}

// ---------- tests ----------

describe('OIDC and API key authentication', () => {
  let kc;
  let gw;
  const A = makeKeySet('a');
  const B = makeKeySet('b');

  /** Send a refused token over HTTP: assert status, WWW-Authenticate and the failure reason counter. */
  async function expectRefused(auth, { status = 401, reason, www, port = gw.httpPort, tenant }) {
    const before = await gw.metrics();
    const r = await postTraces(port, auth);
    const moved = failureDeltas(before, await gw.metrics());
    const what = `${reason ?? ''} (failure counters moved: ${JSON.stringify(moved)})`;
    assert.equal(r.status, status, `expected HTTP ${status} ${what}, got ${r.status}: ${r.body.toString().slice(0, 200)}`);
    if (status === 401) assert.equal(r.headers['www-authenticate'], www ?? (auth ? WWW_INVALID : WWW_PLAIN));
    if (reason) {
      const key = `${tenant ?? ''}/${reason}`;
      assert.deepEqual(moved, { [key]: 1 }, `expected ${M.fail}{tenant="${tenant ?? ''}",reason="${reason}"} +1, moved: ${JSON.stringify(moved)}`);
    }
    return r;
  }

  before(async () => {
    kc = await FakeKeycloak.start({ keys: A });
    gw = await AuthGateway.start({ issuer: kc.issuer });
    // First key fetch happens in the background; wait for it.
    const ok = await waitFor(async () => (await gw.metricSum(M.jwks, { result: 'ok' })) >= 1, 5000);
    assert.ok(ok, `the gateway did not fetch the realm's keys\n${gw.logTail(4000)}`);
  });

  after(async () => {
    try {
      await gw?.stop();
    } finally {
      await kc?.stop();
    }
  });

  it('accepts provider-issued tokens from the OTel SDK exporters (grpc, http/protobuf, http/json)', async () =>
    gw.withLog(async () => {
      const token = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
      const { header, payload } = decodeJwt(token);
      assert.equal(header.kid, A.rsa.kid);
      assert.equal(payload.aud, 'otlp-gateway');
      assert.equal(payload.tenant, 'shop');
      const okBefore = await gw.metricSum(M.ok, { tenant: 'shop', method: 'jwt' });
      const services = [];
      for (const [transport, port] of [
        ['grpc', gw.grpcPort],
        ['http/protobuf', gw.httpPort],
        ['http/json', gw.httpPort],
      ]) {
        const service = `auth-e2e-${transport.replace('/', '-')}-${crypto.randomBytes(3).toString('hex')}`;
        const { result } = await sdkExport(transport, port, token, service);
        assert.equal(result.code, ExportResultCode.SUCCESS, `${transport}: ${result.error?.message}`);
        services.push(service);
      }
      const seen = servicesIn(gw.readSignal('traces'));
      for (const s of services) assert.ok(seen.has(s), `${s} not in the file backend`);
      assert.equal((await gw.metricSum(M.ok, { tenant: 'shop', method: 'jwt' })) - okBefore, 3);

      // client_secret_post client, other tenant.
      const pay = await kc.getToken('agent-payments', CLIENTS['agent-payments'].secret);
      const { d } = await gw.delta(M.ok, { tenant: 'payments', method: 'jwt' }, async () => {
        const r = await postTraces(gw.httpPort, bearer(pay));
        assert.equal(r.status, 200);
      });
      assert.equal(d, 1);
      // A request without a token, from the SDK: refused, not retried forever.
      const { result } = await sdkExport('grpc', gw.grpcPort, 'x', 'auth-e2e-nobody');
      assert.equal(result.code, ExportResultCode.FAILED);
    }));

  it('accepts an ES256 token signed with the realm EC key; refuses PS256 on a key published for RS256', async () =>
    gw.withLog(async () => {
      const { d } = await gw.delta(M.ok, { tenant: 'shop', method: 'jwt' }, async () => {
        assert.equal((await postTraces(gw.httpPort, bearer(kc.mintToken({ key: A.ec })))).status, 200);
      });
      assert.equal(d, 1);
      // The realm's RSA JWK carries alg RS256: the gateway narrows the key to it.
      await expectRefused(bearer(kc.mintToken({ alg: 'PS256' })), { reason: 'bad_alg' });
    }));

  it('answers missing, garbage and truncated tokens with 401 / UNAUTHENTICATED', async () =>
    gw.withLog(async () => {
      await expectRefused(undefined, { reason: 'missing_token', www: WWW_PLAIN });
      await expectRefused('Basic YWdlbnQ6c2VjcmV0', { reason: 'missing_token', www: WWW_PLAIN });
      await expectRefused(bearer('!!!garbage$$$'), { reason: 'malformed' });
      await expectRefused(bearer('a.b.c'), { reason: 'malformed' });
      const good = kc.mintToken();
      await expectRefused(bearer(good.slice(0, good.lastIndexOf('.'))), { reason: 'malformed' }); // two parts
      // A signature one byte short of the modulus, canonically encoded, is a
      // wrong signature; the full one with non-zero unused bits in its last
      // character (an encoding no signer produces) is malformed.
      const dot = good.lastIndexOf('.');
      const sig = Buffer.from(good.slice(dot + 1), 'base64url');
      const short = `${good.slice(0, dot + 1)}${sig.subarray(0, sig.length - 1).toString('base64url')}`;
      await expectRefused(bearer(short), { reason: 'bad_signature' });
      const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      assert.equal(sig.length % 3, 1, 'a 2048-bit RSA signature leaves 4 unused bits in the last character');
      const last = B64URL.indexOf(good[good.length - 1]);
      await expectRefused(bearer(good.slice(0, -1) + B64URL[last ^ 1]), { reason: 'malformed' });
      // Same length, one character of the signature changed.
      const at = dot + 40;
      const flipped = good.slice(0, at) + (good[at] === 'A' ? 'B' : 'A') + good.slice(at + 1);
      await expectRefused(bearer(flipped), { reason: 'bad_signature' });
      const g = await grpcTraces(gw.grpcPort, undefined);
      assert.equal(g.status, GRPC_CODE.UNAUTHENTICATED);
      const g2 = await grpcTraces(gw.grpcPort, bearer('not-a-token'));
      assert.equal(g2.status, GRPC_CODE.UNAUTHENTICATED);
    }));

  it('refuses a request with two Authorization headers on both transports, even with one valid token', async () =>
    gw.withLog(async () => {
      const good = bearer(kc.mintToken());
      const forged = bearer('forged.token.value');
      for (const pair of [[good, forged], [forged, good]]) {
        const r = await postTraces(gw.httpPort, pair);
        assert.equal(r.status, 401, `HTTP with ${pair.map((a) => a.slice(0, 12)).join(' + ')}: ${r.body.toString().slice(0, 200)}`);
        // node's http2 will not send a header twice; nghttp (Debian's nghttp2-client) will.
        const g = await nghttpGrpcTraces(gw.grpcPort, pair);
        assert.equal(g, GRPC_CODE.UNAUTHENTICATED, `gRPC with ${pair.map((a) => a.slice(0, 12)).join(' + ')}`);
      }
      // The valid token alone still passes on both.
      assert.equal((await postTraces(gw.httpPort, good)).status, 200);
      assert.equal((await grpcTraces(gw.grpcPort, good)).status, GRPC_CODE.OK);
    }));

  it('refuses alg confusion: none, HS256 keyed with the RSA public key (PEM and JWK n)', async () =>
    gw.withLog(async () => {
      const claims = { ...decodeJwt(kc.mintToken()).payload };
      const none = signJwt(claims, { alg: 'none', kid: A.rsa.kid });
      await expectRefused(bearer(none), { reason: 'bad_alg' });
      const pem = A.rsa.publicKey.export({ format: 'pem', type: 'spki' });
      await expectRefused(bearer(signJwt(claims, { alg: 'HS256', key: pem, kid: A.rsa.kid })), { reason: 'bad_alg' });
      const pkcs1 = A.rsa.publicKey.export({ format: 'pem', type: 'pkcs1' });
      await expectRefused(bearer(signJwt(claims, { alg: 'HS256', key: pkcs1, kid: A.rsa.kid })), { reason: 'bad_alg' });
      const n = A.rsa.publicJwk.n;
      await expectRefused(bearer(signJwt(claims, { alg: 'HS256', key: n, kid: A.rsa.kid })), { reason: 'bad_alg' });
      await expectRefused(bearer(signJwt(claims, { alg: 'HS256', key: Buffer.from(n, 'base64url'), kid: A.rsa.kid })), {
        reason: 'bad_alg',
      });
      // RS256 header on the EC key's kid: the key type does not match the alg.
      await expectRefused(bearer(signJwt(claims, { alg: 'RS256', key: A.rsa.privateKey, kid: A.ec.kid })), {
        reason: 'bad_alg',
      });
      const g = await grpcTraces(gw.grpcPort, bearer(none));
      assert.equal(g.status, GRPC_CODE.UNAUTHENTICATED);
    }));

  it('refuses bad claims: expired, nbf in the future, wrong iss, wrong aud, missing role, tampered payload', async () =>
    gw.withLog(async () => {
      const now = Math.floor(Date.now() / 1000);
      await expectRefused(bearer(kc.mintToken({ claims: { iat: now - 3700, exp: now - 3600 } })), { reason: 'expired' });
      await expectRefused(bearer(kc.mintToken({ claims: { nbf: now + 3600 } })), { reason: 'not_yet_valid' });
      // An issuer the gateway does not know (routing is by exact iss).
      await expectRefused(bearer(kc.mintToken({ claims: { iss: `${kc.origin}/realms/other` } })), {
        reason: 'unknown_issuer',
      });
      await expectRefused(bearer(kc.mintToken({ claims: { aud: 'account' } })), { reason: 'bad_audience' });
      await expectRefused(bearer(kc.mintToken({ claims: { aud: ['account', 'other'] } })), { reason: 'bad_audience' });
      await expectRefused(bearer(kc.mintToken({ claims: { realm_access: { roles: ['offline_access'] } } })), {
        reason: 'missing_role',
      });
      await expectRefused(bearer(kc.mintToken({ claims: { typ: 'Refresh' } })), { reason: 'bad_type' });
      // Tampered payload of a real token: tenant shop -> payments, signature kept.
      const real = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
      const [h, p, s] = real.split('.');
      const payload = JSON.parse(Buffer.from(p, 'base64url'));
      payload.tenant = 'payments';
      const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
      await expectRefused(bearer(tampered), { reason: 'bad_signature' });
      // Signed by a key that is not the realm's but named with a realm kid.
      const rogue = makeKey('rsa', A.rsa.kid);
      await expectRefused(bearer(kc.mintToken({ key: rogue })), { reason: 'bad_signature' });
    }));

  it('limits JWKS refetches under an unknown-kid flood (200 random kids in 1 s)', async () =>
    gw.withLog(async () => {
      const batches = 10;
      // Signed before the clock starts: on a slow machine signing must not stretch the flood.
      const tokens = Array.from({ length: batches * 20 }, () =>
        kc.mintToken({ header: { kid: crypto.randomBytes(8).toString('hex') } }),
      );
      await sleep(1100); // past min_refresh_interval since any earlier refetch
      const t0 = Date.now();
      const failBefore = await gw.metrics();
      const statuses = [];
      for (let b = 0; b < batches; b++) {
        const batch = tokens.slice(b * 20, (b + 1) * 20).map((tok) =>
          postTraces(gw.httpPort, bearer(tok)).then((r) => statuses.push(r.status)),
        );
        await Promise.all(batch);
        await sleep(Math.max(0, t0 + ((b + 1) * 1000) / batches - Date.now()));
      }
      await sleep(300); // let a fetch started at the end be counted
      // One refetch, plus one per whole min_refresh_interval (1 s) in the
      // window the downloads are counted over (the refetch scheduled for
      // t0 + 1 s lands inside it); more only if the machine stalled.
      const allowed = 1 + Math.floor((Date.now() - t0) / 1000);
      const hits = kc.certsHitsSince(t0);
      assert.equal(statuses.length, 200);
      assert.ok(
        statuses.every((s) => s === 401 || s === 503),
        `unexpected statuses ${[...new Set(statuses)]}`,
      );
      assert.ok(hits <= allowed, `${hits} JWKS downloads during the flood (expected <= ${allowed})`);
      const after = await gw.metrics();
      const moved = failureDeltas(failBefore, after);
      const n401 = statuses.filter((x) => x === 401).length;
      assert.deepEqual(
        moved,
        Object.fromEntries(
          [
            ['/unknown_kid', n401],
            ['/keys_unavailable', 200 - n401],
          ].filter(([, v]) => v > 0),
        ),
      );
      const kidRefreshes = metricSum(after, M.jwks, { result: 'unknown_kid' }) - metricSum(failBefore, M.jwks, { result: 'unknown_kid' });
      assert.ok(kidRefreshes >= 1 && kidRefreshes <= allowed, `jwks unknown_kid refreshes ${kidRefreshes} (allowed ${allowed})`);
    }));

  it('survives a 100 KB Authorization header', async () =>
    gw.withLog(async () => {
      let status;
      try {
        status = (await postTraces(gw.httpPort, bearer('A'.repeat(100 * 1024)))).status;
      } catch (e) {
        status = e.code; // the connection may be dropped instead
      }
      assert.ok([400, 401, 413, 431, 'ECONNRESET', 'EPIPE'].includes(status), `got ${status}`);
      // gRPC: UNAUTHENTICATED, or the stream/connection refused by the HTTP/2 layer.
      const g = await grpcTraces(gw.grpcPort, bearer('A'.repeat(100 * 1024))).catch((e) => ({ status: e.code }));
      assert.notEqual(g.status, GRPC_CODE.OK, 'a 100 KB token was accepted');
      gw.assertAlive();
      const ok = await postTraces(gw.httpPort, bearer(kc.mintToken()));
      assert.equal(ok.status, 200);
      assert.equal((await grpcTraces(gw.grpcPort, bearer(kc.mintToken()))).status, GRPC_CODE.OK);
    }));

  it('accepts a valid API key with its tenant; refuses unknown, revoked (file change noticed) and expired keys', async () =>
    gw.withLog(async () => {
      const out = await keysCli(gw, ['create', '--tenant', 'payments', '--name', 'e2e']);
      const key = out.split('\n').find((l) => l.startsWith('otlpgw_'));
      assert.ok(key, `no key in the CLI output:\n${out}`);
      const id = `k_${crypto.createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
      const expired = await appendExpiredKey(gw, 'shop');
      await sighupAndWait(gw);
      const { d } = await gw.delta(M.ok, { tenant: 'payments', method: 'api_key' }, async () => {
        assert.equal((await postTraces(gw.httpPort, bearer(key))).status, 200);
        assert.equal((await postTraces(gw.partnerPort, bearer(key))).status, 200);
        assert.equal((await grpcTraces(gw.grpcPort, bearer(key))).status, GRPC_CODE.OK);
      });
      assert.equal(d, 3);
      await expectRefused(bearer(`otlpgw_${crypto.randomBytes(32).toString('base64url')}`), { reason: 'unknown_key' });
      await expectRefused(bearer(expired), { reason: 'expired_key' });
      const list = await keysCli(gw, ['list']);
      assert.match(list, new RegExp(`${id}.*active`));
      await keysCli(gw, ['revoke', id]);
      // The gateway notices the rewritten file within about a second, no SIGHUP needed.
      const revoked = await waitFor(async () => (await postTraces(gw.httpPort, bearer(key))).status === 401, 5000, 100);
      assert.ok(revoked, `revoked key still accepted 5 s after the keys file changed\n${gw.logTail(2000)}`);
      await expectRefused(bearer(key), { reason: 'revoked_key' });
      assert.equal((await grpcTraces(gw.grpcPort, bearer(key))).status, GRPC_CODE.UNAUTHENTICATED);
    }));

  it('enforces endpoints and source addresses with 403 / PERMISSION_DENIED', async () =>
    gw.withLog(async () => {
      const shop = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
      // shop may not use the partner endpoint (payments may).
      await expectRefused(bearer(shop), { status: 403, reason: 'endpoint_not_allowed', tenant: 'shop', port: gw.partnerPort });
      const pay = await kc.getToken('agent-payments', CLIENTS['agent-payments'].secret);
      assert.equal((await postTraces(gw.partnerPort, bearer(pay))).status, 200);
      // The insecure endpoint takes no tokens: the tenant comes from the
      // source address (legacy), whatever token is presented.
      const { d } = await gw.delta(M.ok, { tenant: 'legacy', method: 'none' }, async () => {
        assert.equal((await postTraces(gw.insecureHttpPort, undefined)).status, 200);
        assert.equal((await postTraces(gw.insecureHttpPort, bearer(shop))).status, 200);
      });
      assert.equal(d, 2);
      const { d: shopOnInsecure } = await gw.delta(M.ok, { tenant: 'shop' }, () =>
        postTraces(gw.insecureHttpPort, bearer(shop)),
      );
      assert.equal(shopOnInsecure, 0, 'a shop token must not make an insecure-endpoint request count as shop');
      // From 127.0.0.5, outside allow_cidrs [127.0.0.1/32].
      const { r, d: denied } = await gw.delta(M.fail, { reason: 'source_not_allowed' }, () =>
        postTraces(gw.insecureHttpPort, undefined, { localAddress: '127.0.0.5' }),
      );
      assert.equal(r.status, 403);
      assert.equal(denied, 1);
    }));

  it('follows a signing key rotation: new key after one refetch, old key refused once gone', async () =>
    gw.withLog(async () => {
      // A real token signed with A, accepted (and cached) before the rotation.
      const tokA = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
      assert.equal(decodeJwt(tokA).header.kid, A.rsa.kid);
      assert.equal((await postTraces(gw.httpPort, bearer(tokA))).status, 200);

      // Step 1: the realm publishes [B, A] and signs with B.
      await kc.restart({ keys: [B.rsa, A.rsa, A.ec] });
      await sleep(1100); // past min_refresh_interval
      const tokB = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
      assert.equal(decodeJwt(tokB).header.kid, B.rsa.kid);
      const kidRefBefore = await gw.metricSum(M.jwks, { result: 'unknown_kid' });
      const service = `auth-e2e-rotation-${crypto.randomBytes(3).toString('hex')}`;
      // The gateway has only A: the first try is a 503 (Retry-After: 1) that the
      // SDK's HTTP exporter retries. (The JS gRPC exporter does not retry
      // UNAVAILABLE by itself; see the raw gRPC check below.)
      const unavailBefore = await gw.metricSum(M.fail, { reason: 'keys_unavailable' });
      const { result } = await sdkExport('http/protobuf', gw.httpPort, tokB, service);
      assert.equal(result.code, ExportResultCode.SUCCESS, result.error?.message);
      assert.ok(servicesIn(gw.readSignal('traces')).has(service));
      assert.equal((await gw.metricSum(M.jwks, { result: 'unknown_kid' })) - kidRefBefore, 1);
      // Exactly one 503 (the first try), then the SDK's retry got through.
      assert.equal((await gw.metricSum(M.fail, { reason: 'keys_unavailable' })) - unavailBefore, 1);
      assert.equal((await postTraces(gw.httpPort, bearer(tokB))).status, 200);
      assert.equal((await grpcTraces(gw.grpcPort, bearer(tokB))).status, GRPC_CODE.OK);
      assert.equal((await postTraces(gw.httpPort, bearer(tokA))).status, 200, 'A is still published');

      // Step 2: the realm drops A. Make the gateway refetch (an unknown kid).
      await kc.restart({ keys: [B.rsa] });
      await sleep(1100);
      const hits = kc.certsHits;
      const probe = await postTraces(gw.httpPort, bearer(kc.mintToken({ header: { kid: 'probe-unknown' } })));
      assert.equal(probe.status, 503);
      assert.ok(await waitFor(() => kc.certsHits > hits, 3000, 50), 'no JWKS refetch');
      await sleep(200);
      // A token signed by A (even one verified and cached before) is refused.
      // Should the refetch above outlast min_refresh_interval (1 s), A's
      // unknown kid may start one more (503); the answer after it is 401.
      const seen = [];
      const final = await waitFor(async () => {
        const r = await postTraces(gw.httpPort, bearer(tokA));
        seen.push(r.status);
        return r.status === 503 ? null : r;
      }, 3000, 300);
      assert.ok(final, `only 503s for the old key: ${seen}`);
      assert.equal(final.status, 401, `answers for the old key: ${seen}`);
      assert.equal(final.headers['www-authenticate'], WWW_INVALID);
      assert.ok(seen.every((x) => x === 401 || x === 503), `answers for the old key: ${seen}`);
      const g = await waitFor(async () => {
        const r = await grpcTraces(gw.grpcPort, bearer(tokA));
        assert.notEqual(r.status, GRPC_CODE.OK, 'old key accepted over gRPC');
        return r.status === GRPC_CODE.UNAVAILABLE ? null : r;
      }, 3000, 300);
      assert.equal(g?.status, GRPC_CODE.UNAUTHENTICATED);
      assert.ok((await gw.metricSum(M.fail, { reason: 'unknown_kid' })) >= 2);
      assert.equal((await postTraces(gw.httpPort, bearer(tokB))).status, 200);
    }));
});

describe('keycloak/ realm export and sample config', () => {
  const dir = path.resolve(E2E_DIR, '../../keycloak');

  it('gateway.yaml passes --check-config once its TLS files exist', async () => {
    // The sample names production paths (/etc/otlp-gateway/...); the check
    // loads the certificate, so it fails here until they point at a real pair.
    const as = await runGatewayOnce(['--check-config', path.join(dir, 'gateway.yaml')]);
    assert.equal(as.code, 1, as.output);
    assert.match(as.output, /\/etc\/otlp-gateway\/tls\.crt/);
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-e2e-sample-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-days', '1', '-subj', '/CN=otlp-gateway', '-keyout', 'tls.key', '-out', 'tls.crt'], { cwd: tmp, stdio: 'ignore' });
      const text = (await fsp.readFile(path.join(dir, 'gateway.yaml'), 'utf8')).replaceAll('/etc/otlp-gateway/', `${tmp}/`);
      await fsp.writeFile(path.join(tmp, 'gateway.yaml'), text);
      const r = await runGatewayOnce(['--check-config', path.join(tmp, 'gateway.yaml')]);
      assert.equal(r.code, 0, r.output);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });

  it('realm-telemetry.json defines what the stand-in provider and gateway.yaml assume', async () => {
    const realm = JSON.parse(await fsp.readFile(path.join(dir, 'realm-telemetry.json'), 'utf8'));
    assert.equal(realm.realm, 'telemetry');
    assert.ok(realm.roles.realm.some((r) => r.name === 'otlp-writer'));
    for (const [id, c] of Object.entries(CLIENTS)) {
      const cl = realm.clients.find((x) => x.clientId === id);
      assert.ok(cl, `client ${id}`);
      assert.equal(cl.publicClient, false);
      assert.equal(cl.serviceAccountsEnabled, true);
      assert.equal(cl.standardFlowEnabled, false);
      assert.equal(cl.clientAuthenticatorType, 'client-secret');
      const aud = cl.protocolMappers.find((m) => m.protocolMapper === 'oidc-audience-mapper');
      assert.equal(aud?.config['included.custom.audience'], 'otlp-gateway');
      assert.equal(aud?.config['access.token.claim'], 'true');
      const ten = cl.protocolMappers.find((m) => m.protocolMapper === 'oidc-hardcoded-claim-mapper');
      assert.equal(ten?.config['claim.name'], 'tenant');
      assert.equal(ten?.config['claim.value'], c.tenant);
      assert.equal(ten?.config['access.token.claim'], 'true');
      const sa = realm.users.find((u) => u.serviceAccountClientId === id);
      assert.equal(sa?.username, `service-account-${id}`);
      assert.ok(sa.realmRoles.includes('otlp-writer'));
    }
  });
});

describe('gateway started while the provider is down', () => {
  it('answers 503 / UNAVAILABLE until the keys are fetched, then accepts within retry_interval', async () => {
    const port = await freePort();
    const C = makeKeySet('c');
    const issuer = `http://127.0.0.1:${port}/realms/telemetry`;
    const gw = await AuthGateway.start({ issuer, retryInterval: '1s' });
    let kc;
    try {
      await gw.withLog(async () => {
        // Sign as the (not yet running) realm would.
        const kcShape = new FakeKeycloak();
        kcShape.port = port;
        kcShape.keys = [C.rsa, C.ec];
        const tok = kcShape.mintToken();
        const r = await postTraces(gw.httpPort, bearer(tok));
        assert.equal(r.status, 503, `expected 503, got ${r.status}`);
        assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After: ${r.headers['retry-after']}`);
        const g = await grpcTraces(gw.grpcPort, bearer(tok));
        assert.equal(g.status, GRPC_CODE.UNAVAILABLE);
        assert.ok((await gw.metricSum(M.fail, { reason: 'keys_unavailable' })) >= 2);
        assert.ok((await gw.metricSum(M.jwks, { result: 'failed' })) >= 1);

        kc = await FakeKeycloak.start({ port, keys: C });
        const t0 = Date.now();
        const real = await kc.getToken('agent-payments', CLIENTS['agent-payments'].secret);
        const ok = await waitFor(async () => (await postTraces(gw.httpPort, bearer(real))).status === 200, 4000, 100);
        const ms = Date.now() - t0;
        assert.ok(ok, 'token never accepted after the provider came up');
        assert.ok(ms <= 1000 + 1500, `accepted only after ${ms} ms (retry_interval 1s)`);
        assert.equal((await grpcTraces(gw.grpcPort, bearer(tok))).status, GRPC_CODE.OK);
      });
    } finally {
      try {
        await gw.stop();
      } finally {
        await kc?.stop();
      }
    }
  });
});

// Issue 13: a signing key rotation inside min_refresh_interval of the last
// JWKS fetch (here 4 s, right after the gateway's first fetch), while an
// attacker sends made-up kids. The new key's tokens get the retryable 503 /
// UNAVAILABLE with Retry-After until the next allowed fetch -- never 401 --,
// that fetch happens with no further request, and the tokens pass after it.
describe('key rotation within min_refresh_interval', () => {
  it('answers 503 with Retry-After until the scheduled refetch, then accepts; made-up kids cost one fetch', async () => {
    const A = makeKeySet('ra');
    const B = makeKeySet('rb');
    const kc = await FakeKeycloak.start({ keys: A });
    let gw;
    try {
      gw = await AuthGateway.start({ issuer: kc.issuer, minRefreshInterval: '4s' });
      await gw.withLog(async () => {
        const ok = await waitFor(async () => (await gw.metricSum(M.jwks, { result: 'ok' })) >= 1, 5000, 50);
        assert.ok(ok, 'no first JWKS fetch');
        const t0 = Date.now();
        await kc.restart({ keys: [B.rsa, A.rsa] });
        const tokB = kc.mintToken({ key: B.rsa });
        const r = await postTraces(gw.httpPort, bearer(tokB));
        assert.equal(r.status, 503, `new key within min_refresh_interval: expected 503, got ${r.status}`);
        const ra = Number(r.headers['retry-after']);
        assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 4, `Retry-After: ${r.headers['retry-after']}`);
        assert.equal((await grpcTraces(gw.grpcPort, bearer(tokB))).status, GRPC_CODE.UNAVAILABLE);
        // A flood of made-up kids in the window: all 503, and no extra fetch.
        const statuses = await Promise.all(
          Array.from({ length: 50 }, () =>
            postTraces(gw.httpPort, bearer(kc.mintToken({ header: { kid: crypto.randomBytes(8).toString('hex') } }))).then(
              (x) => x.status,
            ),
          ),
        );
        assert.ok(statuses.every((s) => s === 503), `made-up kids: ${[...new Set(statuses)]}`);
        assert.notEqual((await postTraces(gw.httpPort, bearer(tokB))).status, 401);
        const fetchesBefore = kc.certsHitsSince(t0);
        // The refetch comes by itself, at the end of the interval.
        const accepted = await waitFor(async () => (await postTraces(gw.httpPort, bearer(tokB))).status === 200, 7000, 250);
        assert.ok(accepted, 'new key never accepted');
        const ms = Date.now() - t0;
        assert.ok(ms <= 4000 + 2000, `accepted only after ${ms} ms`);
        assert.equal((await grpcTraces(gw.grpcPort, bearer(tokB))).status, GRPC_CODE.OK);
        assert.equal(fetchesBefore, 0, 'a JWKS fetch inside min_refresh_interval');
        assert.equal(kc.certsHitsSince(t0), 1, 'one JWKS fetch for the rotation and the flood');
      });
    } finally {
      try {
        await gw?.stop();
      } finally {
        await kc.stop();
      }
    }
  });
});

// Issue 13: in tenant_claim mode azp used to be ignored. allowed_clients
// limits a provider to listed client ids (azp, or client_id without azp);
// require_typ: Bearer refuses a token without Keycloak's typ claim. Tokens
// from the provider's token endpoint and minted ones.
describe('allowed_clients and require_typ', () => {
  it('accepts a listed client, refuses another client and a token without typ', async () => {
    const A = makeKeySet('ac');
    const kc = await FakeKeycloak.start({ keys: A });
    let gw;
    try {
      gw = await AuthGateway.start({
        issuer: kc.issuer,
        providerExtra: '      allowed_clients: [agent-shop]\n      require_typ: Bearer\n',
      });
      await gw.withLog(async () => {
        const ok = await waitFor(async () => (await gw.metricSum(M.jwks, { result: 'ok' })) >= 1, 5000, 50);
        assert.ok(ok, 'no first JWKS fetch');
        const shop = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
        assert.equal(decodeJwt(shop).payload.azp, 'agent-shop');
        assert.equal(decodeJwt(shop).payload.typ, 'Bearer');
        assert.equal((await postTraces(gw.httpPort, bearer(shop))).status, 200);
        assert.equal((await grpcTraces(gw.grpcPort, bearer(shop))).status, GRPC_CODE.OK);

        // A real token of another client of the realm (whose tenant may use the endpoint).
        const pay = await kc.getToken('agent-payments', CLIENTS['agent-payments'].secret);
        assert.equal(decodeJwt(pay).payload.azp, 'agent-payments');
        const before = await gw.metricSum(M.fail, { reason: 'client_not_allowed' });
        const r = await postTraces(gw.httpPort, bearer(pay));
        assert.equal(r.status, 401, `other client: ${r.status}`);
        assert.equal(r.headers['www-authenticate'], WWW_INVALID);
        assert.equal((await grpcTraces(gw.grpcPort, bearer(pay))).status, GRPC_CODE.UNAUTHENTICATED);
        assert.equal((await gw.metricSum(M.fail, { reason: 'client_not_allowed' })) - before, 2);

        // azp decides; client_id only when azp is absent; neither: refused.
        const mint = (claims) => postTraces(gw.httpPort, bearer(kc.mintToken({ claims })));
        assert.equal((await mint({ azp: undefined })).status, 200);
        assert.equal((await mint({ azp: 'agent-payments', client_id: 'agent-shop' })).status, 401);
        assert.equal((await mint({ azp: undefined, client_id: undefined })).status, 401);

        // require_typ: Bearer.
        const typBefore = await gw.metricSum(M.fail, { reason: 'bad_type' });
        assert.equal((await mint({ typ: undefined })).status, 401);
        assert.equal((await mint({ typ: 'ID' })).status, 401);
        assert.equal((await gw.metricSum(M.fail, { reason: 'bad_type' })) - typBefore, 2);
      });
    } finally {
      try {
        await gw?.stop();
      } finally {
        await kc.stop();
      }
    }
  });

  it('--check-config names a bad require_typ', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-auth-cfg-'));
    try {
      const file = path.join(dir, 'gw.yaml');
      fs.writeFileSync(file, 'listeners: [{name: s, http: 127.0.0.1:0, auth: required}]\nauth:\n  oidc:\n' +
        '    - {issuer: http://127.0.0.1:9/realms/t, tenant_claim: tenant, require_typ: ID}\n' +
        'tenants: [{id: t, endpoints: [s]}]\nbackends: {d: {type: discard}}\npipelines: [{name: p, signals: [traces], backends: [d]}]\n');
      const r = await runGatewayOnce(['--check-config', file]);
      assert.notEqual(r.code, 0, r.output);
      assert.match(r.output, /gw\.yaml:4:\d+: auth\.oidc\[0\]\.require_typ: only Bearer/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
