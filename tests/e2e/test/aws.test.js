// AWS backends end to end: the OpenTelemetry JS SDK sends to the gateway,
// whose aws_xray / aws_cloudwatch_logs backends sign with SigV4 and deliver
// to SigV4Sink (lib/aws.js), which recomputes every signature with the AWS
// SDK's signer. Credentials come from each source the gateway supports:
// static keys, the environment, and the ECS, IMDSv2 and STS web identity
// emulators of lib/aws.js (their addresses reach the gateway through the
// same environment variables the AWS SDKs read). Everything is on loopback;
// short retry intervals keep each test to a few seconds.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { EcsEndpoint, ImdsEndpoint, SigV4Sink, StsEndpoint, keyring } from '../lib/aws.js';
import { Gateway, sleep, stopAll } from '../lib/gateway.js';
import { buildLogs } from '../lib/sdkdata.js';
import { deliveredSpanMap, exportOnce, makeSpans, sdkSpanMap, waitFor } from '../lib/sinks.js';

const REGION = 'eu-west-1';
const FAILED = 'otlp_gateway_export_failed_items_total';
const LOG_GROUP = '/e2e/gateway';
const LOG_STREAM = 'stream-1';

const STATIC = { accessKeyId: 'AKIAE2ESTATIC0000001', secretAccessKey: `static/${randomBytes(24).toString('base64')}` };
const ENV_KEYS = {
  accessKeyId: 'ASIAE2EENV000000001',
  secretAccessKey: `env+${randomBytes(24).toString('base64')}`,
  sessionToken: randomBytes(120).toString('base64'),
};

/** A YAML flow mapping with every value double-quoted (secrets have / + =). */
const flow = (o) => `{${Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')}}`;

/** The whole gateway config: one listener, one AWS backend, one pipeline. */
function gatewayYaml(w, { type, sink, credentials }) {
  const signal = type === 'aws_xray' ? 'traces' : 'logs';
  return `workers: 1
admin: 127.0.0.1:${w.adminPort}
listeners:
  - name: default
    grpc: 127.0.0.1:${w.grpcPort}
    http: 127.0.0.1:${w.httpPort}
    max_request_bytes: 64MiB
backends:
  aws:
    type: ${type}
    region: ${REGION}
    endpoint: ${sink.url}
    compression: gzip
    timeout: 5s
    batch: {timeout: 50ms}
    retry: {initial_interval: 200ms, max_interval: 1s, max_elapsed: 60s}
    credentials: ${flow(credentials)}
${type === 'aws_cloudwatch_logs' ? `    log_group: ${LOG_GROUP}\n    log_stream: ${LOG_STREAM}\n` : ''}pipelines:
  - {name: aws, signals: [${signal}], backends: [aws]}
`;
}

/**
 * A gateway whose `aws` backend is `type` with `credentials`, and `env`
 * added to its environment. IMDS is off unless a test turns it on, so
 * nothing ever reaches for a real instance metadata service.
 */
function startGateway({ type = 'aws_xray', sink, credentials, env = {} }) {
  return Gateway.start({
    env: { AWS_EC2_METADATA_DISABLED: 'true', ...env },
    config: (w) => gatewayYaml(w, { type, sink, credentials }),
  });
}

async function sendSpans(gw, spans) {
  const e = new OTLPTraceExporter({ url: `${gw.httpUrl}/v1/traces`, timeoutMillis: 30_000 });
  try {
    const r = await exportOnce(e, spans);
    assert.equal(r.code, ExportResultCode.SUCCESS, `export failed: ${r.error?.message}`);
  } finally {
    await e.shutdown();
  }
}

async function sendLogs(gw, records) {
  const e = new OTLPLogExporter({ url: `${gw.httpUrl}/v1/logs`, timeoutMillis: 10_000 });
  try {
    const r = await exportOnce(e, records);
    assert.equal(r.code, ExportResultCode.SUCCESS, `export failed: ${r.error?.message}`);
  } finally {
    await e.shutdown();
  }
}

/** Waits until `spans` (and nothing else) reached the sink, each once. */
async function expectDelivered(sink, spans, timeoutMs = 10_000) {
  await waitFor(() => sink.delivered('traces').length >= spans.length, timeoutMs);
  await sleep(200); // a duplicate would arrive within a batch timeout
  assert.deepEqual(sink.violations, []);
  assert.deepEqual(deliveredSpanMap(sink.delivered('traces')), sdkSpanMap(spans));
}

/** Fails if the gateway's output carries any of these secrets. */
function assertNoSecrets(gw, creds) {
  const log = gw.log();
  for (const c of creds) {
    assert.ok(!log.includes(c.secretAccessKey), 'a secret access key is in the gateway log');
    if (c.sessionToken) assert.ok(!log.includes(c.sessionToken), 'a session token is in the gateway log');
  }
}

const xraySink = (lookup) => SigV4Sink.start({ signal: 'traces', region: REGION, service: 'xray', lookup });

describe('aws_xray with static keys', () => {
  let gw, sink;

  before(async () => {
    sink = await xraySink(keyring(STATIC));
    gw = await startGateway({ sink, credentials: { source: 'static', access_key_id: STATIC.accessKeyId, secret_access_key: STATIC.secretAccessKey } });
  });

  after(() => stopAll(gw, () => sink?.stop()));

  it('signs over the gzip body as sent; the sink recomputes the signature', async () =>
    gw.withLog(async () => {
      const spans = await makeSpans('xray-static', 25);
      await sendSpans(gw, spans);
      await expectDelivered(sink, spans);
      for (const r of sink.requests) {
        assert.equal(r.headers['content-encoding'], 'gzip');
        assert.equal(r.headers['x-amz-security-token'], undefined);
        for (const h of ['content-encoding', 'content-type', 'host', 'x-amz-content-sha256', 'x-amz-date']) {
          assert.ok(r.signedHeaders.includes(h), `${h} not signed: ${r.signedHeaders}`);
        }
      }
      assert.deepEqual([...new Set(sink.acceptedKeys())], [STATIC.accessKeyId]);
      assertNoSecrets(gw, [STATIC]);
    }));

  it('retries throttling (429 with Retry-After, then 503) and delivers once, re-signed each time', async () =>
    gw.withLog(async () => {
      const first = sink.requests.length;
      sink.throttle(1, { status: 429, retryAfter: 1 });
      sink.throttle(1, { status: 503 });
      const spans = await makeSpans('xray-throttled', 12);
      await sendSpans(gw, spans);
      await waitFor(() => sink.requests.slice(first).some((r) => r.outcome === 'ok'), 15_000);
      await sleep(200);
      const mine = sink.requests.slice(first);
      assert.deepEqual(mine.map((r) => r.outcome), ['http_429', 'http_503', 'ok']);
      assert.ok(mine[1].at - mine[0].at >= 900, 'Retry-After: 1 was not honoured');
      assert.deepEqual(sink.violations, []);
      const got = deliveredSpanMap(mine.filter((r) => r.outcome === 'ok').flatMap((r) => r.items));
      assert.deepEqual(got, sdkSpanMap(spans));
    }));

  it('splits a 10,001-span request into requests of at most 10,000 spans', async () =>
    gw.withLog(async () => {
      const first = sink.requests.length;
      const spans = await makeSpans('xray-big', 10_001);
      await sendSpans(gw, spans);
      const mine = () => sink.requests.slice(first).filter((r) => r.outcome === 'ok');
      await waitFor(() => mine().reduce((n, r) => n + r.items.length, 0) >= spans.length, 30_000);
      await sleep(200);
      const reqs = mine();
      assert.ok(reqs.length >= 2, `${reqs.length} request(s)`);
      for (const r of reqs) assert.ok(r.items.length <= 10_000, `a request with ${r.items.length} spans`);
      assert.deepEqual(sink.violations, []);
      assert.deepEqual(deliveredSpanMap(reqs.flatMap((r) => r.items)), sdkSpanMap(spans));
    }));
});

describe('aws_xray credential sources', () => {
  let tmp;
  const cleanup = [];

  before(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-aws-'));
  });

  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  /** Runs fn(gw) on a gateway for the config, stopping everything after. */
  async function run(opts, endpoints, fn) {
    cleanup.push(...endpoints.map((e) => () => e.stop()));
    const gw = await startGateway(opts);
    try {
      await gw.withLog(() => fn(gw));
    } finally {
      await gw.stop();
    }
  }

  it('env: keys and session token from AWS_ACCESS_KEY_ID / _SECRET_ACCESS_KEY / AWS_SESSION_TOKEN', async () => {
    const sink = await xraySink(keyring(ENV_KEYS));
    const env = { AWS_ACCESS_KEY_ID: ENV_KEYS.accessKeyId, AWS_SECRET_ACCESS_KEY: ENV_KEYS.secretAccessKey, AWS_SESSION_TOKEN: ENV_KEYS.sessionToken };
    await run({ sink, credentials: { source: 'env' }, env }, [sink], async (gw) => {
      const spans = await makeSpans('xray-env', 10);
      await sendSpans(gw, spans);
      await expectDelivered(sink, spans);
      for (const r of sink.requests) assert.ok(r.signedHeaders.includes('x-amz-security-token'));
      assertNoSecrets(gw, [ENV_KEYS]);
    });
  });

  it('ecs: full URI with an authorization token', async () => {
    const ecs = await EcsEndpoint.start({ token: `Bearer ${randomBytes(16).toString('hex')}` });
    const sink = await xraySink(keyring(ecs));
    const env = { AWS_CONTAINER_CREDENTIALS_FULL_URI: ecs.fullUri, AWS_CONTAINER_AUTHORIZATION_TOKEN: ecs.token };
    await run({ sink, credentials: { source: 'ecs' }, env }, [sink, ecs], async (gw) => {
      const spans = await makeSpans('xray-ecs', 10);
      await sendSpans(gw, spans);
      await expectDelivered(sink, spans);
      assert.deepEqual(ecs.violations, []);
      assert.equal(ecs.counts.creds, 1);
      assert.deepEqual([...new Set(sink.acceptedKeys())], [ecs.last.accessKeyId]);
      assert.match(gw.log(), /aws credentials loaded.*source=ecs/);
      assertNoSecrets(gw, [...ecs.issued.values()]);
    });
  });

  it('ecs: relative URI on ecs_endpoint, token read from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', async () => {
    const tokenFile = path.join(tmp, 'ecs-token');
    const token = `pod-identity-${randomBytes(16).toString('hex')}`;
    await fsp.writeFile(tokenFile, `${token}\n`);
    const ecs = await EcsEndpoint.start({ token });
    const sink = await xraySink(keyring(ecs));
    const env = { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: ecs.path, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile };
    await run({ sink, credentials: { source: 'ecs', ecs_endpoint: ecs.url }, env }, [sink, ecs], async (gw) => {
      const spans = await makeSpans('xray-ecs-file', 10);
      await sendSpans(gw, spans);
      await expectDelivered(sink, spans);
      assert.deepEqual(ecs.violations, []);
      assert.equal(ecs.counts.creds, 1);
    });
  });

  it('imds: IMDSv2 session token, role name, role credentials', async () => {
    const imds = await ImdsEndpoint.start();
    const sink = await xraySink(keyring(imds));
    const env = { AWS_EC2_METADATA_DISABLED: 'false', AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url };
    await run({ sink, credentials: { source: 'imds' }, env }, [sink, imds], async (gw) => {
      const spans = await makeSpans('xray-imds', 10);
      await sendSpans(gw, spans);
      await expectDelivered(sink, spans);
      assert.deepEqual(imds.violations, []);
      assert.deepEqual(imds.counts, { token: 1, role: 1, creds: 1 });
      assert.deepEqual([...new Set(sink.acceptedKeys())], [imds.last.accessKeyId]);
    });
  });

  /** An STS emulator and the environment of a pod with a projected token. */
  async function webIdentity(name, opts = {}) {
    const tokenFile = path.join(tmp, `${name}-token`);
    const webToken = `eyJ.${randomBytes(32).toString('base64url')}.sig`;
    await fsp.writeFile(tokenFile, webToken);
    const sts = await StsEndpoint.start({ webToken, ...opts });
    const env = {
      AWS_ROLE_ARN: sts.roleArn,
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_SESSION_NAME: `e2e-${name}`,
      AWS_ENDPOINT_URL_STS: `${sts.url}/`,
    };
    return { sts, env, tokenFile };
  }

  it('web_identity: AssumeRoleWithWebIdentity with the projected token', async () => {
    const { sts, env } = await webIdentity('wi');
    const sink = await xraySink(keyring(sts));
    await run({ sink, credentials: { source: 'web_identity' }, env }, [sink, sts], async (gw) => {
      const spans = await makeSpans('xray-web-identity', 10);
      await sendSpans(gw, spans);
      await expectDelivered(sink, spans);
      assert.deepEqual(sts.violations, []);
      assert.equal(sts.counts.sts, 1);
      assert.deepEqual(sts.sessionNames, ['e2e-wi']);
      assertNoSecrets(gw, [...sts.issued.values()]);
    });
  });

  it('refresh: credentials with 4 minutes left are replaced before the next export (token file re-read)', async () => {
    const { sts, env, tokenFile } = await webIdentity('refresh', { ttlS: 240 });
    const sink = await xraySink(keyring(sts));
    await run({ sink, credentials: { source: 'web_identity' }, env }, [sink, sts], async (gw) => {
      const a = await makeSpans('xray-refresh-a', 5);
      await sendSpans(gw, a);
      await expectDelivered(sink, a);
      const firstKey = sts.last.accessKeyId;
      // Kubernetes rotated the projected token meanwhile.
      sts.webToken = `eyJ.${randomBytes(32).toString('base64url')}.rotated`;
      await fsp.writeFile(tokenFile, sts.webToken);
      const b = await makeSpans('xray-refresh-b', 5);
      await sendSpans(gw, b);
      await expectDelivered(sink, [...a, ...b]);
      assert.equal(sts.counts.sts, 2);
      assert.deepEqual(sts.violations, []);
      const keys = sink.acceptedKeys();
      assert.equal(keys[0], firstKey);
      assert.equal(keys.at(-1), sts.last.accessKeyId);
      assert.notEqual(firstKey, sts.last.accessKeyId);
      assertNoSecrets(gw, [...sts.issued.values()]);
    });
  });

  it('an STS error holds the data back; it is delivered once STS recovers', async () => {
    const { sts, env } = await webIdentity('sts-error');
    sts.mode = 'error';
    const sink = await xraySink(keyring(sts));
    await run({ sink, credentials: { source: 'web_identity' }, env }, [sink, sts], async (gw) => {
      const spans = await makeSpans('xray-sts-error', 8);
      await sendSpans(gw, spans); // acknowledged: queued in the gateway
      await waitFor(() => (sts.counts.sts ?? 0) >= 2, 10_000);
      assert.ok(sts.counts.sts >= 2, 'the gateway did not ask STS again');
      assert.equal(sink.requests.length, 0, 'sent without credentials');
      assert.match(gw.log(), /InvalidIdentityToken/);
      sts.mode = 'ok';
      await expectDelivered(sink, spans, 15_000);
      assert.deepEqual(sts.violations, []);
    });
  });
});

describe('aws_cloudwatch_logs', () => {
  let gw, sink;

  before(async () => {
    sink = await SigV4Sink.start({
      signal: 'logs',
      region: REGION,
      service: 'logs',
      lookup: keyring(STATIC),
      signedHeaders: ['x-aws-log-group', 'x-aws-log-stream'],
    });
    gw = await startGateway({
      type: 'aws_cloudwatch_logs',
      sink,
      credentials: { access_key_id: STATIC.accessKeyId, secret_access_key: STATIC.secretAccessKey },
    });
  });

  after(() => stopAll(gw, () => sink?.stop()));

  it('delivers logs with the log group and stream headers signed', async () =>
    gw.withLog(async () => {
      const records = await buildLogs('cw-logs');
      await sendLogs(gw, records);
      await waitFor(() => sink.delivered('logs').length >= records.length, 10_000);
      await sleep(200);
      assert.deepEqual(sink.violations, []);
      assert.equal(sink.delivered('logs').length, records.length);
      for (const r of sink.requests) {
        assert.equal(r.headers['x-aws-log-group'], LOG_GROUP);
        assert.equal(r.headers['x-aws-log-stream'], LOG_STREAM);
      }
    }));

  it('counts a partial success as rejected records', async () =>
    gw.withLog(async () => {
      const first = sink.requests.length;
      const before = await gw.metricSum(FAILED, { backend: 'aws', signal: 'logs', reason: 'rejected' });
      sink.partial(2, 'log events too old');
      await sendLogs(gw, await buildLogs('cw-partial'));
      const rejected = () => gw.metricSum(FAILED, { backend: 'aws', signal: 'logs', reason: 'rejected' });
      await waitFor(async () => (await rejected()) - before >= 2, 10_000);
      assert.equal((await rejected()) - before, 2);
      await sleep(300);
      assert.deepEqual(sink.requests.slice(first).map((r) => r.outcome), ['partial']); // not retried
      assert.deepEqual(sink.violations, []);
    }));
});

/**
 * A SigV4Sink that also keeps each request's raw header lines (node joins
 * repeated headers into one "a, b" value in req.headers; rawHeaders keeps
 * every line as sent).
 */
class RawHeaderSigV4Sink extends SigV4Sink {
  _exchange(req, res, raw) {
    const n = this.requests.length;
    try {
      super._exchange(req, res, raw);
    } finally {
      if (this.requests[n]) this.requests[n].rawHeaders = [...req.rawHeaders];
    }
  }
}

/** Every value sent for header `name` on a recorded request, one per line. */
function headerValues(rec, name) {
  const out = [];
  for (let i = 0; i + 1 < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i].toLowerCase() === name) out.push(rec.rawHeaders[i + 1]);
  return out;
}

describe('aws_cloudwatch_logs with a per-tenant log group', () => {
  let gw, sink;

  before(async () => {
    sink = await RawHeaderSigV4Sink.start({
      signal: 'logs',
      region: REGION,
      service: 'logs',
      lookup: keyring(STATIC),
      signedHeaders: ['x-aws-log-group', 'x-aws-log-stream'],
    });
    const creds = { source: 'static', access_key_id: STATIC.accessKeyId, secret_access_key: STATIC.secretAccessKey };
    gw = await Gateway.start({
      env: { AWS_EC2_METADATA_DISABLED: 'true' },
      config: (w) => `workers: 1
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: alpha-in, http: 127.0.0.1:${w.httpPort}, tenant: alpha}
  - {name: beta-in, http: 127.0.0.1:${w.grpcPort}, tenant: beta}
tenants:
  - {id: alpha, endpoints: [alpha-in]}
  - {id: beta, endpoints: [beta-in]}
backends:
  aws:
    type: aws_cloudwatch_logs
    region: ${REGION}
    endpoint: ${sink.url}
    compression: gzip
    timeout: 5s
    batch: {timeout: 50ms}
    retry: {initial_interval: 200ms, max_interval: 1s, max_elapsed: 60s}
    credentials: ${flow(creds)}
    log_group: /otel/default
    log_stream: s1
    tenants: {beta: {headers: {x-aws-log-group: /otel/beta}}}
pipelines:
  - {name: aws, signals: [logs], backends: [aws]}
`,
    });
  });

  after(() => stopAll(gw, () => sink?.stop()));

  it("replaces the default log group with beta's, signed, one value per request", async () =>
    gw.withLog(async () => {
      const alpha = await buildLogs('cw-tenant-alpha');
      const beta = await buildLogs('cw-tenant-beta');
      await sendLogs(gw, alpha); // alpha-in on gw.httpPort
      await sendLogs({ httpUrl: `http://127.0.0.1:${gw.grpcPort}` }, beta); // beta-in
      await waitFor(() => sink.delivered('logs').length >= alpha.length + beta.length, 10_000);
      await sleep(200); // a duplicate would arrive within a batch timeout
      assert.deepEqual(sink.violations, []);
      assert.deepEqual(sink.requests.map((r) => r.outcome).filter((o) => o !== 'ok'), []);

      const want = { 'cw-tenant-alpha': '/otel/default', 'cw-tenant-beta': '/otel/beta' };
      const seen = { 'cw-tenant-alpha': 0, 'cw-tenant-beta': 0 };
      for (const r of sink.requests) {
        const services = [...new Set(r.items.map((it) => it.service))];
        assert.equal(services.length, 1, `a request mixes tenants: ${services}`);
        const [svc] = services;
        assert.ok(svc in want, `unexpected service ${svc}`);
        seen[svc] += r.items.length;
        // Exactly one header line each: the tenant's value replaced the
        // default rather than being sent beside it.
        assert.deepEqual(headerValues(r, 'x-aws-log-group'), [want[svc]], `${svc}: x-aws-log-group`);
        assert.deepEqual(headerValues(r, 'x-aws-log-stream'), ['s1'], `${svc}: x-aws-log-stream`);
        assert.equal(r.headers['x-aws-log-group'], want[svc]);
        assert.equal(r.headers['x-aws-log-stream'], 's1');
        // Covered by the signature the sink recomputed (no violation above).
        const signed = /SignedHeaders=([^,\s]+)/.exec(r.headers.authorization)?.[1]?.split(';') ?? [];
        for (const h of ['x-aws-log-group', 'x-aws-log-stream']) assert.ok(signed.includes(h), `${svc}: ${h} not signed: ${signed}`);
        assert.deepEqual(r.signedHeaders, signed);
        assert.equal(r.accessKeyId, STATIC.accessKeyId);
      }
      assert.deepEqual(seen, { 'cw-tenant-alpha': alpha.length, 'cw-tenant-beta': beta.length });
    }));
});
