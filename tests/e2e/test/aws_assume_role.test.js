// Cross-account AWS delivery end to end: the gateway's base credentials
// (static keys in a shared credentials file, or in its own config) assume a
// role in another account at the STS stand-in of lib/aws.js, which
// recomputes every AssumeRole signature with @smithy/signature-v4 and
// checks the form as STS does; the X-Ray / CloudWatch Logs stand-ins then
// accept only the assumed role's keys, never the base keys (for Amazon
// Managed Prometheus: a SigV4 verifier in front of Debian's Prometheus,
// which must then hold the samples). Profiles come
// from real shared config and credentials files (AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE). Everything is on loopback.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { SigV4Sink, StsEndpoint, keyring } from '../lib/aws.js';
import { Gateway, httpRequest } from '../lib/gateway.js';
import { Prometheus, SigV4Verifier, gaugeRequestProto } from '../lib/prometheus.js';
import { buildLogs } from '../lib/sdkdata.js';
import { deliveredSpanMap, exportOnce, makeSpans, sdkSpanMap, waitFor } from '../lib/sinks.js';

const REGION = 'eu-west-1';
const WRITER = 'arn:aws:iam::222233334444:role/otel-writer';
const CHAINED = 'arn:aws:iam::555566667777:role/otel-chained';
const EXTERNAL_ID = 'e2e-ext:42';
const BASE = { accessKeyId: 'AKIAE2EBASE000000001', secretAccessKey: `base/${randomBytes(24).toString('base64')}` };

/** One listener, one AWS backend `aws` of `type`, one pipeline. */
function gatewayYaml(w, { type, sink, credentialsYaml }) {
  const retry = `    batch: {timeout: 50ms}
    retry: {initial_interval: 200ms, max_interval: 1s, max_elapsed: 120s}
`;
  const backend =
    type === 'prometheus_remote_write'
      ? `    endpoint: ${sink.url}/api/v1/write
    sigv4: {region: ${REGION}, credentials: ${credentialsYaml}}
`
      : `    region: ${REGION}
    endpoint: ${sink.url}
    timeout: 5s
    credentials: ${credentialsYaml}
${type === 'aws_cloudwatch_logs' ? '    log_group: /e2e/cross\n    log_stream: s1\n' : ''}`;
  const signal = { aws_xray: 'traces', aws_cloudwatch_logs: 'logs', prometheus_remote_write: 'metrics' }[type];
  return `workers: 1
admin: 127.0.0.1:${w.adminPort}
listeners:
  - name: default
    http: 127.0.0.1:${w.httpPort}
backends:
  aws:
    type: ${type}
${backend}${retry}pipelines:
  - {name: aws, signals: [${signal}], backends: [aws]}
`;
}

async function send(gw, signal, items) {
  const Exporter = signal === 'traces' ? OTLPTraceExporter : OTLPLogExporter;
  const e = new Exporter({ url: `${gw.httpUrl}/v1/${signal}`, timeoutMillis: 30_000 });
  try {
    const r = await exportOnce(e, items);
    assert.equal(r.code, ExportResultCode.SUCCESS, `export failed: ${r.error?.message}`);
  } finally {
    await e.shutdown();
  }
}

describe('AssumeRole: a gateway in one account writes to another', () => {
  let tmp, sts;
  const stops = [];

  before(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-assume-'));
    // The base keys may only sign AssumeRole: the sinks do not know them.
    sts = await StsEndpoint.start({
      region: REGION,
      lookup: keyring(BASE),
      roles: { [WRITER]: { externalId: EXTERNAL_ID }, [CHAINED]: {} },
    });
    stops.push(() => sts.stop());
    await fsp.writeFile(
      path.join(tmp, 'config'),
      `[default]
region = ${REGION}

# the other account's writer role, assumed with the base keys
[profile cross]
role_arn = ${WRITER}
source_profile = base
external_id = ${EXTERNAL_ID}
role_session_name = gw-e2e
duration_seconds = 1800

[profile chained]
role_arn = ${CHAINED}
source_profile = cross
role_session_name = gw-chain
`,
    );
    await fsp.writeFile(
      path.join(tmp, 'credentials'),
      `[base]
aws_access_key_id = ${BASE.accessKeyId}
aws_secret_access_key = ${BASE.secretAccessKey}
`,
    );
  });

  after(async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  async function gateway({ type = 'aws_xray', sink, credentialsYaml }) {
    const gw = await Gateway.start({
      env: {
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: path.join(tmp, 'config'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'credentials'),
        AWS_ENDPOINT_URL_STS: `${sts.url}/`,
      },
      config: (w) => gatewayYaml(w, { type, sink, credentialsYaml }),
    });
    stops.push(() => gw.stop());
    return gw;
  }

  /** Fails if the gateway's output carries a secret of the base keys or of any issued credentials. */
  function assertNoSecrets(gw) {
    const log = gw.log();
    for (const c of [BASE, ...sts.issued.values()]) {
      assert.ok(!log.includes(c.secretAccessKey), 'a secret access key is in the gateway log');
      if (c.sessionToken) assert.ok(!log.includes(c.sessionToken), 'a session token is in the gateway log');
    }
  }

  it('profile with source_profile and external_id: X-Ray sees only the assumed role keys', async () => {
    const sink = await SigV4Sink.start({ signal: 'traces', region: REGION, service: 'xray', lookup: keyring(sts) });
    stops.push(() => sink.stop());
    const first = sts.assumeCalls.length;
    const gw = await gateway({ sink, credentialsYaml: '{source: profile, profile: cross}' });
    await gw.withLog(async () => {
      const spans = await makeSpans('assume-profile', 12);
      await send(gw, 'traces', spans);
      await waitFor(() => sink.delivered('traces').length >= spans.length, 15_000);
      assert.deepEqual(sink.violations, []);
      assert.deepEqual(sts.violations, []);
      assert.deepEqual(deliveredSpanMap(sink.delivered('traces')), sdkSpanMap(spans));
      assert.deepEqual(sts.assumeCalls.slice(first), [
        { signer: BASE.accessKeyId, roleArn: WRITER, sessionName: 'gw-e2e', externalId: EXTERNAL_ID, duration: 1800 },
      ]);
      const keys = new Set(sink.acceptedKeys());
      assert.equal(keys.size, 1);
      const [key] = keys;
      assert.match(key, /^ASIAROLE/);
      assert.equal(sts.lookup(key).roleArn, WRITER);
      assert.match(gw.log(), /aws credentials loaded.*source=assume_role role_arn=arn:aws:iam::222233334444:role\/otel-writer base=static/);
      assertNoSecrets(gw);
    });
  });

  it('role chaining: the second role is assumed with the first role\'s session credentials', async () => {
    const sink = await SigV4Sink.start({ signal: 'traces', region: REGION, service: 'xray', lookup: keyring(sts) });
    stops.push(() => sink.stop());
    const first = sts.assumeCalls.length;
    const gw = await gateway({ sink, credentialsYaml: '{profile: chained}' });
    await gw.withLog(async () => {
      const spans = await makeSpans('assume-chain', 6);
      await send(gw, 'traces', spans);
      await waitFor(() => sink.delivered('traces').length >= spans.length, 15_000);
      assert.deepEqual(sink.violations, []);
      assert.deepEqual(sts.violations, []);
      const calls = sts.assumeCalls.slice(first);
      assert.equal(calls.length, 2);
      assert.deepEqual(calls.map((c) => [c.roleArn, c.sessionName]), [[WRITER, 'gw-e2e'], [CHAINED, 'gw-chain']]);
      assert.equal(calls[0].signer, BASE.accessKeyId);
      assert.equal(sts.lookup(calls[1].signer).roleArn, WRITER); // signed with the first role's key
      const [key] = new Set(sink.acceptedKeys());
      assert.equal(sts.lookup(key).roleArn, CHAINED);
      assertNoSecrets(gw);
    });
  });

  it('assume_role in the backend config, refreshed before expiry; CloudWatch Logs sees each new key', async () => {
    const sink = await SigV4Sink.start({
      signal: 'logs',
      region: REGION,
      service: 'logs',
      lookup: keyring(sts),
      signedHeaders: ['x-aws-log-group', 'x-aws-log-stream'],
    });
    stops.push(() => sink.stop());
    const first = sts.assumeCalls.length;
    sts.ttlS = 240; // inside the 5-minute refresh window: each export assumes the role again
    try {
      const creds = `{source: static, access_key_id: ${BASE.accessKeyId}, secret_access_key: "${BASE.secretAccessKey}", ` +
        `assume_role: {role_arn: "${WRITER}", external_id: "${EXTERNAL_ID}", role_session_name: gw-cfg, duration: 15m}}`;
      const gw = await gateway({ type: 'aws_cloudwatch_logs', sink, credentialsYaml: creds });
      await gw.withLog(async () => {
        const a = await buildLogs('assume-cfg-a');
        await send(gw, 'logs', a);
        await waitFor(() => sink.delivered('logs').length >= a.length, 15_000);
        const b = await buildLogs('assume-cfg-b');
        await send(gw, 'logs', b);
        await waitFor(() => sink.delivered('logs').length >= a.length + b.length, 15_000);
        assert.deepEqual(sink.violations, []);
        assert.deepEqual(sts.violations, []);
        const calls = sts.assumeCalls.slice(first);
        assert.ok(calls.length >= 2, `AssumeRole called ${calls.length} times`);
        for (const c of calls) assert.deepEqual(c, { signer: BASE.accessKeyId, roleArn: WRITER, sessionName: 'gw-cfg', externalId: EXTERNAL_ID, duration: 900 });
        const keys = sink.acceptedKeys();
        assert.ok(new Set(keys).size >= 2, 'the refreshed key was not used');
        for (const k of keys) assert.equal(sts.lookup(k).roleArn, WRITER);
        assertNoSecrets(gw);
      });
    } finally {
      sts.ttlS = 3600;
    }
  });

  it('Amazon Managed Prometheus: remote write signed for aps with the assumed role lands in Prometheus', async () => {
    const prom = await Prometheus.start();
    stops.push(() => prom.destroy());
    // The verifier accepts the key STS issued last, and nothing else.
    const assumed = {
      get accessKeyId() {
        return sts.last?.accessKeyId;
      },
      get secretAccessKey() {
        return sts.last?.secretAccessKey;
      },
      get sessionToken() {
        return sts.last?.sessionToken;
      },
    };
    const amp = await SigV4Verifier.start({ targetPort: prom.port, credentials: assumed, region: REGION, service: 'aps' });
    stops.push(() => amp.stop());
    const first = sts.assumeCalls.length;
    const gw = await gateway({ type: 'prometheus_remote_write', sink: amp, credentialsYaml: '{profile: cross}' });
    await gw.withLog(async () => {
      const res = await httpRequest({
        port: gw.httpPort,
        method: 'POST',
        path: '/v1/metrics',
        headers: { 'content-type': 'application/x-protobuf' },
        body: gaugeRequestProto('amp-cross', 'e2e.amp.cross', [{ timeMs: Date.now(), value: 42 }]),
      });
      assert.equal(res.status, 200);
      const [series] = await prom.waitFor('e2e_amp_cross{job="amp-cross"}', 1, 15_000);
      assert.equal(Number(series.value), 42);
      assert.deepEqual([...new Set(amp.verdicts)], ['ok']);
      assert.deepEqual(sts.assumeCalls.slice(first).map((c) => [c.signer, c.roleArn, c.externalId]), [[BASE.accessKeyId, WRITER, EXTERNAL_ID]]);
      assert.deepEqual(sts.violations, []);
      assertNoSecrets(gw);
    });
  });

  it('AccessDenied: a clear logged error, retried with backoff, delivered once the trust policy allows it', async () => {
    const sink = await SigV4Sink.start({ signal: 'traces', region: REGION, service: 'xray', lookup: keyring(sts) });
    stops.push(() => sink.stop());
    sts.mode = 'error';
    try {
      const gw = await gateway({ sink, credentialsYaml: '{source: profile, profile: cross}' });
      await gw.withLog(async () => {
        const before = sts.counts.assume_role ?? 0;
        const spans = await makeSpans('assume-denied', 5);
        await send(gw, 'traces', spans); // acknowledged: queued in the gateway
        await waitFor(() => (sts.counts.assume_role ?? 0) - before >= 2, 15_000);
        assert.equal(sink.requests.length, 0, 'sent without the role');
        assert.match(gw.log(), /AssumeRole arn:aws:iam::222233334444:role\/otel-writer: STS error AccessDenied: User: .* is not authorized to perform: sts:AssumeRole/);
        sts.mode = 'ok';
        await waitFor(() => sink.delivered('traces').length >= spans.length, 20_000);
        assert.deepEqual(deliveredSpanMap(sink.delivered('traces')), sdkSpanMap(spans));
        assert.deepEqual(sink.violations, []);
        assert.deepEqual(sts.violations, []);
        assertNoSecrets(gw);
      });
    } finally {
      sts.mode = 'ok';
    }
  });
});
