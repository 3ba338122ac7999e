// Soak: one gateway under mixed, steady load for SOAK_MINUTES (default 60),
// sampled every SOAK_SAMPLE_SECONDS (default 10): RSS, open descriptors,
// connections, request latency (p50/p99/max of the window), queue and sampler
// gauges, and every unexpected answer. Run by bench/soak.sh; see bench/README.md.
//
// The load, all with fresh trace and span ids, spans of one trace spread over
// several requests and clients:
//   - tenant shop, Keycloak JWTs (oidc-provider stand-in, tokens re-fetched
//     every 2 min), OTLP/HTTP protobuf and OTLP/gRPC on persistent
//     connections, into a tail-sampled pipeline (errors + 10%) that exports
//     over otlp_http (memory queue) to a sink gateway;
//   - tenant api, gateway API keys, OTLP/HTTP JSON and gRPC, traces and
//     metrics to otlp_grpc with a disk queue (fsync: interval) to the sink;
//   - tenant lab on the insecure listener, HTTP/1.1 with a new connection per
//     request (connection churn), to a discard backend.
// Every 30 s a SIGHUP (keys re-read, JWKS refetched); every 2 min a new API
// key is created, the clients switch to it, the old key is revoked and must
// then be refused with 401 (counted as expected, any other answer fails).
//
// At the end the load stops, the queues drain, and the run fails unless:
// no unexpected answer, the sink received exactly what the unsampled
// pipeline acknowledged, RSS over the last third grew less than
// SOAK_RSS_SLACK_KIB (default 8192) above the first third's peak, and the
// descriptor count came back to its level after warm-up.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import path from 'node:path';

import { Gateway, createApiKey, freePort, metricSum, parsePrometheus, runGatewayOnce, sleep } from '../tests/e2e/lib/gateway.js';
import { CLIENTS, FakeKeycloak, makeKeySet } from '../tests/e2e/lib/keycloak.js';
import { gaugeRequestProto } from '../tests/e2e/lib/prometheus.js';
import { GRPC_PATH, grpcFrame, pb } from '../tests/e2e/lib/wire.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 60);
const SAMPLE_S = Number(process.env.SOAK_SAMPLE_SECONDS ?? 10);
const RSS_SLACK_KIB = Number(process.env.SOAK_RSS_SLACK_KIB ?? 8192);
const OUT = process.env.SOAK_OUT ?? 'soak.csv';
const HUP_EVERY_MS = Number(process.env.SOAK_HUP_SECONDS ?? 30) * 1000;
const ROTATE_EVERY_MS = 120_000;
const TOKEN_EVERY_MS = 120_000;
const SPANS_PER_REQ = 10;

// ---------- the two gateways ----------

function sinkYaml(w) {
  return `workers: 1
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: in, grpc: 127.0.0.1:${w.grpcPort}, http: 127.0.0.1:${w.httpPort}, auth: none, allow_cidrs: [127.0.0.0/8]}
backends: {drop: {type: discard}}
pipelines: [{name: all, signals: [traces, metrics, logs], backends: [drop]}]
`;
}

function mainYaml(w, o) {
  return `workers: 2
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: secure, grpc: 127.0.0.1:${w.grpcPort}, http: 127.0.0.1:${w.httpPort}, auth: required, idle_timeout: 30s}
  - {name: insecure, http: 127.0.0.1:${o.insecurePort}, auth: none, allow_cidrs: [127.0.0.1/32], tenant: lab}
auth:
  api_keys: {file: ${o.keysFile}}
  oidc:
    - {issuer: ${o.issuer}, audience: otlp-gateway, tenant_claim: tenant, required_roles: [otlp-writer]}
tenants:
  - {id: shop, endpoints: [secure], pipelines: [shop-traces, shop-other]}
  - {id: api, endpoints: [secure], pipelines: [api-all]}
  - {id: lab, endpoints: [insecure], pipelines: [lab]}
backends:
  sink-http: {type: otlp_http, endpoint: 'http://127.0.0.1:${o.sink.httpPort}', batch: {max_items: 2000, timeout: 200ms}}
  sink-grpc:
    type: otlp_grpc
    endpoint: 'http://127.0.0.1:${o.sink.grpcPort}'
    batch: {max_items: 2000, timeout: 200ms}
    queue: {dir: ${path.join(w.dir, 'queue')}, fsync: interval}
  drop: {type: discard}
sampling:
  tail:
    decision_wait: 2s
    policies:
      - {name: errors, type: status_code, status_codes: [ERROR]}
      - {name: some, type: probabilistic, sampling_percentage: 10}
pipelines:
  - {name: shop-traces, signals: [traces], sampling: tail, backends: [sink-http]}
  - {name: shop-other, signals: [metrics, logs], backends: [sink-grpc]}
  - {name: api-all, signals: [traces, metrics], backends: [sink-grpc]}
  - {name: lab, signals: [traces, metrics, logs], backends: [drop]}
`;
}

// ---------- payloads ----------

const hex = (n) => crypto.randomBytes(n).toString('hex');

/** Traces in flight: each gets 3 requests' worth of spans (root in the last). */
class TraceMill {
  constructor(errorRate) {
    this.errorRate = errorRate;
    this.open = [];
  }
  /** SPANS_PER_REQ spans, drawn from up to 4 open traces. */
  spans() {
    const out = [];
    while (out.length < SPANS_PER_REQ) {
      if (this.open.length < 4) {
        this.open.push({ traceId: hex(16), rootId: hex(8), left: 3, error: Math.random() < this.errorRate });
      }
      const i = Math.floor(Math.random() * this.open.length);
      const t = this.open[i];
      const last = --t.left === 0;
      if (last) this.open.splice(i, 1);
      const n = Math.min(SPANS_PER_REQ - out.length, 4);
      for (let k = 0; k < n; k++) {
        const root = last && k === 0;
        out.push({
          traceId: t.traceId,
          spanId: root ? t.rootId : hex(8),
          parent: root ? null : t.rootId,
          name: root ? 'GET /checkout' : `db.query ${k}`,
          error: t.error && root,
        });
      }
    }
    return out;
  }
}

function spanProto(s, now) {
  return pb.msg(
    2,
    pb.bytes(1, Buffer.from(s.traceId, 'hex')),
    pb.bytes(2, Buffer.from(s.spanId, 'hex')),
    ...(s.parent ? [pb.bytes(4, Buffer.from(s.parent, 'hex'))] : []),
    pb.string(5, s.name),
    pb.varint(6, s.parent ? 3 : 2),
    pb.fixed64(7, now),
    pb.fixed64(8, now + 2_000_000n),
    pb.msg(9, pb.string(1, 'http.route'), pb.msg(2, pb.string(1, '/checkout/{id}'))),
    ...(s.error ? [pb.msg(15, pb.varint(3, 2))] : []),
  );
}

function tracesProto(service, spans) {
  const now = BigInt(Date.now()) * 1_000_000n;
  return pb.msg(
    1,
    pb.msg(1, pb.msg(1, pb.string(1, 'service.name'), pb.msg(2, pb.string(1, service)))),
    pb.msg(2, pb.msg(1, pb.string(1, 'soak')), ...spans.map((s) => spanProto(s, now))),
  );
}

function tracesJson(service, spans) {
  const now = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            scope: { name: 'soak' },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parent ? { parentSpanId: s.parent } : {}),
              name: s.name,
              kind: s.parent ? 3 : 2,
              startTimeUnixNano: now.toString(),
              endTimeUnixNano: (now + 2_000_000n).toString(),
              ...(s.error ? { status: { code: 2 } } : {}),
            })),
          },
        ],
      },
    ],
  });
}

function logsProto(service, n) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const recs = Array.from({ length: n }, (_, i) =>
    pb.msg(2, pb.fixed64(1, now), pb.varint(2, 9), pb.msg(5, pb.string(1, `order ${i} placed`))),
  );
  return pb.msg(1, pb.msg(1, pb.msg(1, pb.string(1, 'service.name'), pb.msg(2, pb.string(1, service)))), pb.msg(2, ...recs));
}

const metricsProto = (service) =>
  gaugeRequestProto(service, 'queue.depth', Array.from({ length: SPANS_PER_REQ }, (_, i) => ({ timeMs: Date.now() - i, value: i })));

// ---------- clients ----------

/** Latencies (ms) and outcomes of the current window, plus totals. */
class Stats {
  constructor() {
    this.window = [];
    this.ok = 0;
    this.expected401 = 0;
    this.unexpected = new Map();
    this.acked = { api: 0 }; // items the unsampled, exported pipeline acknowledged
  }
  record(ms, outcome) {
    this.window.push(ms);
    if (outcome === 'ok') this.ok++;
    else if (outcome === 'revoked-401') this.expected401++;
    else this.unexpected.set(outcome, (this.unexpected.get(outcome) ?? 0) + 1);
  }
  take() {
    const w = this.window.sort((a, b) => a - b);
    this.window = [];
    const q = (p) => (w.length ? w[Math.min(w.length - 1, Math.floor(p * w.length))] : 0);
    return { n: w.length, p50: q(0.5), p99: q(0.99), max: w.length ? w[w.length - 1] : 0 };
  }
  get unexpectedTotal() {
    let n = 0;
    for (const v of this.unexpected.values()) n += v;
    return n;
  }
}

/** A persistent h2c connection, re-opened when the server closes it. */
class H2 {
  constructor(port) {
    this.port = port;
    this.session = null;
  }
  get() {
    if (!this.session || this.session.closed || this.session.destroyed) {
      this.session = http2.connect(`http://127.0.0.1:${this.port}`);
      this.session.on('error', () => {});
    }
    return this.session;
  }
  close() {
    this.session?.close();
  }
  /** One request; resolves {status, grpcStatus} or {error}. */
  request(headers, body, timeoutMs = 30_000) {
    return new Promise((resolve) => {
      let req;
      const timer = setTimeout(() => {
        req?.close(http2.constants.NGHTTP2_CANCEL);
        resolve({ error: 'timeout' });
      }, timeoutMs);
      let status = 0;
      let grpcStatus;
      try {
        req = this.get().request(headers);
      } catch (e) {
        clearTimeout(timer);
        resolve({ error: e.code ?? 'request' });
        return;
      }
      req.on('response', (h) => {
        status = h[':status'];
        grpcStatus = h['grpc-status'];
      });
      req.on('trailers', (t) => (grpcStatus = t['grpc-status'] ?? grpcStatus));
      req.on('data', () => {});
      req.on('error', (e) => {
        clearTimeout(timer);
        resolve({ error: e.code === 'ERR_HTTP2_STREAM_ERROR' ? `${e.code}(${e.message.replace(/^.*code /, '')})` : e.code ?? 'stream' });
      });
      req.on('close', () => {
        clearTimeout(timer);
        resolve({ status, grpcStatus: grpcStatus === undefined ? undefined : Number(grpcStatus) });
      });
      req.end(body);
    });
  }
}

function http1(port, headers, body, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/traces', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.message === 'timeout' ? 'timeout' : e.code ?? 'http1' }));
    req.end(body);
  });
}

/** Classify an answer: ok, revoked-401 (expected) or a description of what went wrong. */
function outcome(r, { grpc, revoked }) {
  if (r.error) return `${grpc ? "grpc" : "http"}-error:${r.error}`;
  if (grpc) {
    if (r.status === 200 && r.grpcStatus === 0) return 'ok';
    if (revoked && r.grpcStatus === 16) return 'revoked-401';
    return `grpc:${r.status}/${r.grpcStatus}`;
  }
  if (r.status === 200) return 'ok';
  if (revoked && r.status === 401) return 'revoked-401';
  return `http:${r.status}`;
}

// ---------- main ----------

async function main() {
  const stats = new Stats();
  const kc = await FakeKeycloak.start({ keys: makeKeySet('soak') });
  const sink = await Gateway.start({ config: sinkYaml });
  const insecurePort = await freePort();
  let keysFile;
  const gw = await Gateway.start({
    config: (w) => {
      keysFile = path.join(w.dir, 'keys.yaml');
      return mainYaml(w, { insecurePort, keysFile, issuer: kc.issuer, sink });
    },
  });
  const cli = (...args) => runGatewayOnce(['keys', ...args, '--keys-file', keysFile]);
  const keyId = async () => {
    const r = await cli('list');
    return [...r.output.matchAll(/^(k_[0-9a-f]+)\s.*\bactive\b/gm)].map((m) => m[1]);
  };

  let apiKey = await createApiKey(keysFile, 'api');
  let revokedKey = null;
  let shopToken = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
  process.kill(gw.pid, 'SIGHUP');
  await sleep(500);

  console.log(`soak: gateway pid=${gw.pid} admin=${gw.adminUrl} sink admin=${sink.adminUrl} minutes=${MINUTES}`);
  const end = Date.now() + MINUTES * 60_000;
  let stopping = false;
  const h2 = { shopGrpc: new H2(gw.grpcPort), shopHttp: new H2(gw.httpPort), apiGrpc: new H2(gw.grpcPort), apiHttp: new H2(gw.httpPort) };
  const mills = { shop: new TraceMill(0.05), api: new TraceMill(0.05) };

  async function timed(fn, ctx) {
    const t0 = performance.now();
    const r = await fn();
    const o = outcome(r, ctx);
    stats.record(performance.now() - t0, o);
    return o;
  }

  // Each loop sends one request, then paces itself to about `perSec`.
  async function loop(perSec, step) {
    while (!stopping) {
      const t0 = Date.now();
      await step();
      await sleep(Math.max(0, 1000 / perSec - (Date.now() - t0)));
    }
  }

  const grpcHeaders = (signal, auth) => ({ ':method': 'POST', ':path': GRPC_PATH[signal], 'content-type': 'application/grpc', te: 'trailers', authorization: auth });
  const httpHeaders = (signal, ctype, auth) => ({ ':method': 'POST', ':path': `/v1/${signal}`, 'content-type': ctype, authorization: auth });

  const loops = [
    loop(40, () => timed(() => h2.shopGrpc.request(grpcHeaders('traces', `Bearer ${shopToken}`), grpcFrame(tracesProto('shop', mills.shop.spans()))), { grpc: true })),
    loop(40, () => timed(() => h2.shopHttp.request(httpHeaders('traces', 'application/x-protobuf', `Bearer ${shopToken}`), tracesProto('shop', mills.shop.spans())), {})),
    loop(10, () => timed(() => h2.shopHttp.request(httpHeaders('logs', 'application/x-protobuf', `Bearer ${shopToken}`), logsProto('shop', SPANS_PER_REQ)), {})),
    loop(30, async () => {
      const key = apiKey;
      const o = await timed(() => h2.apiGrpc.request(grpcHeaders('traces', `Bearer ${key}`), grpcFrame(tracesProto('api', mills.api.spans()))), { grpc: true, revoked: key === revokedKey });
      if (o === 'ok') stats.acked.api += SPANS_PER_REQ;
    }),
    loop(30, async () => {
      const key = apiKey;
      const o = await timed(() => h2.apiHttp.request(httpHeaders('traces', 'application/json', `Bearer ${key}`), tracesJson('api', mills.api.spans())), { revoked: key === revokedKey });
      if (o === 'ok') stats.acked.api += SPANS_PER_REQ;
    }),
    loop(10, async () => {
      const o = await timed(() => h2.apiHttp.request(httpHeaders('metrics', 'application/x-protobuf', `Bearer ${apiKey}`), metricsProto('api')), {});
      if (o === 'ok') stats.acked.api += SPANS_PER_REQ;
    }),
    loop(20, () => timed(() => http1(insecurePort, { 'content-type': 'application/x-protobuf' }, tracesProto('lab', mills.shop.spans())), {})),
  ];

  // A revoked key must be refused: probe it right after each rotation.
  async function rotateKey() {
    const old = apiKey;
    const oldIds = await keyId();
    const keysBefore = await gw.metricSum('otlp_gateway_api_keys');
    const fresh = await createApiKey(keysFile, 'api');
    process.kill(gw.pid, 'SIGHUP');
    // Hand the key out only once the gateway has it, as an operator would.
    for (let i = 0; i < 100 && (await gw.metricSum('otlp_gateway_api_keys')) <= keysBefore; i++) await sleep(50);
    apiKey = fresh;
    await sleep(1000); // requests still carrying the old key finish
    for (const id of oldIds) {
      const r = await cli('revoke', id);
      if (r.code !== 0) throw new Error(`keys revoke ${id} failed: ${r.output}`);
    }
    revokedKey = old;
    process.kill(gw.pid, 'SIGHUP');
    await sleep(1000);
    await timed(() => http1(gw.httpPort, { 'content-type': 'application/x-protobuf', authorization: `Bearer ${old}` }, tracesProto('api', mills.api.spans())), { revoked: true }).then((o) => {
      if (o !== 'revoked-401') stats.record(0, `revoked-key-answered:${o}`);
    });
  }

  const csv = fs.createWriteStream(OUT);
  csv.write('t_s,rss_kib,fds,connections,requests,p50_ms,p99_ms,max_ms,ok_total,unexpected_total,revoked_401_total,queue_bytes,sampler_bytes,sampler_traces\n');
  const rows = [];
  const t0 = Date.now();
  let nextHup = t0 + HUP_EVERY_MS;
  let nextRotate = t0 + ROTATE_EVERY_MS;
  let nextToken = t0 + TOKEN_EVERY_MS;
  let nextSample = t0 + SAMPLE_S * 1000;
  let reported = 0;
  while (Date.now() < end) {
    await sleep(Math.max(0, Math.min(nextHup, nextRotate, nextToken, nextSample) - Date.now()));
    gw.assertAlive();
    const now = Date.now();
    if (now >= nextToken) {
      shopToken = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
      nextToken += TOKEN_EVERY_MS;
    }
    if (now >= nextHup) {
      process.kill(gw.pid, 'SIGHUP');
      nextHup += HUP_EVERY_MS;
    }
    if (now >= nextRotate) {
      await rotateKey();
      nextRotate += ROTATE_EVERY_MS;
    }
    if (now >= nextSample) {
      const m = parsePrometheus(await gw.metricsText());
      const lat = stats.take();
      const row = {
        t: Math.round((Date.now() - t0) / 1000),
        rss: gw.rssKiB(),
        fds: fs.readdirSync(`/proc/${gw.pid}/fd`).length,
        conns: metricSum(m, 'otlp_gateway_connections'),
        ...lat,
        queue: metricSum(m, 'otlp_gateway_export_queue_bytes'),
        sbytes: metricSum(m, 'otlp_gateway_sampler_bytes_held'),
        straces: metricSum(m, 'otlp_gateway_sampler_traces_in_flight'),
      };
      rows.push(row);
      csv.write(
        `${row.t},${row.rss},${row.fds},${row.conns},${row.n},${row.p50.toFixed(2)},${row.p99.toFixed(2)},${row.max.toFixed(1)},` +
          `${stats.ok},${stats.unexpectedTotal},${stats.expected401},${row.queue},${row.sbytes},${row.straces}\n`,
      );
      console.log(
        `soak: t=${row.t}s rss=${row.rss}KiB fds=${row.fds} conns=${row.conns} req=${row.n} p50=${row.p50.toFixed(1)}ms ` +
          `p99=${row.p99.toFixed(1)}ms max=${row.max.toFixed(0)}ms ok=${stats.ok} unexpected=${stats.unexpectedTotal} revoked_401=${stats.expected401} ` +
          `queue=${row.queue} sampler_bytes=${row.sbytes}`,
      );
      if (stats.unexpectedTotal !== reported) {
        reported = stats.unexpectedTotal;
        console.log(`soak: unexpected so far ${JSON.stringify(Object.fromEntries(stats.unexpected))}`);
      }
      nextSample += SAMPLE_S * 1000;
    }
  }
  stopping = true;
  await Promise.all(loops);
  for (const c of Object.values(h2)) c.close();
  csv.end();

  // Drain: everything the api tenant had acknowledged reaches the sink.
  const apiExported = async () =>
    metricSum(parsePrometheus(await gw.metricsText()), 'otlp_gateway_export_sent_items_total', { backend: 'sink-grpc' });
  const deadline = Date.now() + 60_000;
  const shopOther = async () =>
    metricSum(parsePrometheus(await gw.metricsText()), 'otlp_gateway_pipeline_items_total', { pipeline: 'shop-other' });
  let sent = await apiExported();
  const wanted = stats.acked.api + (await shopOther());
  while (sent < wanted && Date.now() < deadline) {
    await sleep(500);
    sent = await apiExported();
  }
  const sinkReceived = await sink.metricSum('otlp_gateway_pipeline_items_total');
  const final = parsePrometheus(await gw.metricsText());
  const gwExportedAll = ['sink-http', 'sink-grpc']
    .map((backend) => metricSum(final, 'otlp_gateway_export_sent_items_total', { backend }))
    .reduce((a, b) => a + b, 0);

  const authFailures = final
    .filter((x) => x.name === 'otlp_gateway_auth_failure_total' && x.value > 0)
    .map((x) => `${x.labels.tenant || '-'}/${x.labels.reason}=${x.value}`);
  console.log(`soak: auth failures ${authFailures.join(' ') || 'none'}`);
  await gw.stop();
  await sink.stop();
  await kc.stop();

  // ---------- verdict ----------
  const failures = [];
  if (stats.unexpectedTotal) failures.push(`unexpected answers: ${JSON.stringify(Object.fromEntries(stats.unexpected))}`);
  if (sent !== wanted) failures.push(`sink-grpc sent ${sent} items, expected ${wanted} (acknowledged api items + shop metrics/logs)`);
  // Equal unless a batch was resent after a lost answer (at-least-once), which
  // a healthy loopback run must not need.
  if (sinkReceived !== gwExportedAll) failures.push(`the sink received ${sinkReceived} items, the gateway says it sent ${gwExportedAll}`);
  const third = Math.max(1, Math.floor(rows.length / 3));
  const early = rows.slice(0, third);
  const late = rows.slice(-third);
  const earlyPeak = Math.max(...early.map((r) => r.rss));
  const latePeak = Math.max(...late.map((r) => r.rss));
  if (latePeak - earlyPeak > RSS_SLACK_KIB) failures.push(`RSS grew: first third peak ${earlyPeak} KiB, last third peak ${latePeak} KiB`);
  const fdsEarly = Math.max(...early.map((r) => r.fds));
  const fdsLate = Math.max(...late.map((r) => r.fds));
  if (fdsLate > fdsEarly + 8) failures.push(`descriptors grew: ${fdsEarly} -> ${fdsLate}`);
  const p99s = rows.map((r) => r.p99).sort((a, b) => a - b);
  console.log(
    `soak: summary minutes=${MINUTES} samples=${rows.length} ok=${stats.ok} unexpected=${stats.unexpectedTotal} ` +
      `revoked_401=${stats.expected401} rss_first_third_peak=${earlyPeak}KiB rss_last_third_peak=${latePeak}KiB ` +
      `rss_min=${Math.min(...rows.map((r) => r.rss))}KiB rss_max=${Math.max(...rows.map((r) => r.rss))}KiB ` +
      `fds_first_third_max=${fdsEarly} fds_last_third_max=${fdsLate} p99_median=${p99s[p99s.length >> 1]?.toFixed(1)}ms ` +
      `p99_worst=${p99s[p99s.length - 1]?.toFixed(1)}ms api_acked=${stats.acked.api} sink_grpc_sent=${sent} sink_received=${sinkReceived} csv=${OUT}`,
  );
  if (failures.length) {
    for (const f of failures) console.error(`soak: FAIL: ${f}`);
    process.exit(1);
  }
  console.log('soak: PASS');
}

main().catch((e) => {
  console.error(`soak: FAIL: ${e.stack ?? e}`);
  process.exit(1);
});
