// The elastic_otlp preset: OTLP/HTTP to an APM Server / Elastic managed OTLP
// endpoint, authenticated the two ways Elastic accepts, with the credentials
// held by the gateway. The intake emulation refuses (401, recorded as a
// violation) any request whose Authorization is not one it issued, so a
// wrong scheme, a missing header or two values joined would all fail.
//
//   traces -> apm-key    (api_key: "ApiKey <key>"; tenant beta has its own key)
//   logs   -> apm-token  (secret_token: "Bearer <token>")

import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';

import { Gateway, runGatewayOnce, stopAll } from '../lib/gateway.js';
import { buildLogs } from '../lib/sdkdata.js';
import { HttpSink, deliveredSpanMap, exportOnce, makeSpans, sdkSpanMap, waitFor } from '../lib/sinks.js';
import { randomHex } from '../lib/wire.js';

const secret = {
  alpha: `alpha-${randomHex(8)}`,
  beta: `beta-${randomHex(8)}`,
  token: `tok-${randomHex(8)}`,
};

/** An APM intake that knows the credentials it issued: value -> who. */
function apmSink(issued) {
  return HttpSink.start({
    name: 'apm',
    check: (rec) => {
      const auth = rec.headers.authorization;
      if (issued[auth] === undefined) {
        return { status: 401, message: 'unauthorized', violation: `Authorization "${auth}" was not issued` };
      }
      rec.who = issued[auth];
      return null;
    },
  });
}

describe('elastic_otlp: API key and secret token, per-tenant keys', () => {
  let gw, apm;

  before(async () => {
    apm = await apmSink({
      [`ApiKey ${secret.alpha}`]: 'alpha-key',
      [`ApiKey ${secret.beta}`]: 'beta-key',
      [`Bearer ${secret.token}`]: 'token',
    });
    gw = await Gateway.start({
      config: (w) => `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: alpha-in, http: 127.0.0.1:${w.httpPort}, tenant: alpha, header_timeout: 2s}
  - {name: beta-in, http: 127.0.0.1:${w.grpcPort}, tenant: beta, header_timeout: 2s}
tenants:
  - {id: alpha, endpoints: [alpha-in]}
  - {id: beta, endpoints: [beta-in]}
backends:
  apm-key:
    type: elastic_otlp
    endpoint: ${apm.url}
    api_key: ${secret.alpha}
    tenants:
      beta: {headers: {Authorization: "ApiKey ${secret.beta}"}}
    batch: {timeout: 20ms}
  apm-token:
    type: elastic_otlp
    endpoint: ${apm.url}
    secret_token: ${secret.token}
    batch: {timeout: 20ms}
pipelines:
  - {name: traces, signals: [traces], backends: [apm-key]}
  - {name: logs, signals: [logs], backends: [apm-token]}
`,
    });
  });

  after(() => stopAll(gw, () => apm?.stop()));

  it('sends each tenant with its key and logs with the secret token', async () =>
    gw.withLog(async () => {
      const alpha = await makeSpans('alpha-svc', 3);
      const beta = await makeSpans('beta-svc', 2);
      const ta = new OTLPTraceExporter({ url: `${gw.httpUrl}/v1/traces` });
      const tb = new OTLPTraceExporter({ url: `http://127.0.0.1:${gw.grpcPort}/v1/traces` });
      const le = new OTLPLogExporter({ url: `${gw.httpUrl}/v1/logs` });
      const logs = await buildLogs('log-svc');
      try {
        assert.equal((await exportOnce(ta, alpha)).code, ExportResultCode.SUCCESS);
        assert.equal((await exportOnce(tb, beta)).code, ExportResultCode.SUCCESS);
        assert.equal((await exportOnce(le, logs)).code, ExportResultCode.SUCCESS);
      } finally {
        await Promise.all([ta.shutdown(), tb.shutdown(), le.shutdown()]);
      }
      await waitFor(() => apm.delivered('traces').length === 5 && apm.delivered('logs').length === logs.length, 5000);
      assert.deepEqual(apm.violations, []);
      const by = (sig, who) => apm.delivered(sig).filter((it) => it.request.who === who);
      assert.deepEqual(deliveredSpanMap(by('traces', 'alpha-key')), sdkSpanMap(alpha));
      assert.deepEqual(deliveredSpanMap(by('traces', 'beta-key')), sdkSpanMap(beta));
      assert.equal(by('logs', 'token').length, logs.length);
    }));

  it('refuses to start with both api_key and secret_token, naming the line', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'gw-elastic-'));
    const file = path.join(dir, 'gateway.yaml');
    await fsp.writeFile(
      file,
      `listeners: [{name: l, http: 127.0.0.1:0}]
backends:
  apm: {type: elastic_otlp, endpoint: "http://127.0.0.1:1", api_key: sekret-AAA,
        secret_token: sekret-BBB}
pipelines: [{name: p, signals: [traces], backends: [apm]}]
`,
    );
    try {
      const r = await runGatewayOnce(['--config', file]); // backends are built (and checked) at start
      assert.notEqual(r.code, 0);
      assert.match(r.output, /gateway\.yaml:4:\d+: backends\.apm\.secret_token: set api_key or secret_token, not both/);
      assert.doesNotMatch(r.output, /sekret-/, 'secrets are never echoed');
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
