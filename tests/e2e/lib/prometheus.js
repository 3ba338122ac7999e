// A real Prometheus (Debian's /usr/bin/prometheus) for the remote-write
// tests: started on a loopback port with the remote-write receiver on, an
// empty scrape config and a temp TSDB, queried through its HTTP API.
//
//   const prom = await Prometheus.start();          // or start({ port, features })
//   prom.writeUrl                                   // http://127.0.0.1:<port>/api/v1/write
//   await prom.query('up')                          // instant vector: [{metric, value}]
//   await prom.stop(); await prom.restart();        // same port and data
//
// Also: gaugeRequestProto and the `otlp` builders, hand-built OTLP metrics
// requests whose timestamps, buckets and exemplars the test chooses (the SDK
// stamps "now" and picks its own scale); and SigV4Verifier,
// Amazon Managed Prometheus' front door as far as the gateway can tell: it
// checks each request's SigV4 signature with the AWS SDK's signer
// (@smithy/signature-v4) and the body's hash, answers 403 on a mismatch, and
// forwards good requests to a Prometheus.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { SignatureV4 } from '@smithy/signature-v4';

import { freePort, httpRequest, sleep } from './gateway.js';
import { NodeSha256 } from './sha256.js';
import { pb, varint } from './wire.js';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN || '/usr/bin/prometheus';
const READY_TIMEOUT_MS = 15_000;

export class Prometheus {
  /**
   * Start on `port` (default: a free one) and wait for /-/ready. `features`:
   * names for --enable-feature (e.g. native-histograms, exemplar-storage).
   */
  static async start({ port, features = [] } = {}) {
    const p = new Prometheus();
    p.features = features;
    p.dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-prom-'));
    p.port = port ?? (await freePort());
    await fsp.writeFile(path.join(p.dir, 'prometheus.yml'), 'global:\n  evaluation_interval: 1m\nscrape_configs: []\n');
    await p._launch();
    return p;
  }

  get writeUrl() {
    return `http://127.0.0.1:${this.port}/api/v1/write`;
  }

  async _launch() {
    this._log = [];
    this.proc = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${path.join(this.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--web.enable-remote-write-receiver',
        '--log.level=warn',
        ...(this.features.length ? [`--enable-feature=${this.features.join(',')}`] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc.stdout.on('data', (c) => this._log.push(c));
    this.proc.stderr.on('data', (c) => this._log.push(c));
    this._exited = new Promise((resolve) => this.proc.on('exit', resolve));
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while (performance.now() < deadline) {
      if (this.proc.exitCode !== null) break;
      try {
        const r = await httpRequest({ port: this.port, path: '/-/ready', timeoutMs: 1000 });
        if (r.status === 200) return;
      } catch {
        /* not listening yet */
      }
      await sleep(100);
    }
    throw new Error(`prometheus not ready on port ${this.port}\n${this.log()}`);
  }

  log() {
    return Buffer.concat(this._log).toString('utf8');
  }

  /** GET an API path; resolves `data` of a successful answer. */
  async api(p) {
    const r = await httpRequest({ port: this.port, path: p, timeoutMs: 5000 });
    const body = JSON.parse(r.body.toString('utf8'));
    if (r.status !== 200 || body.status !== 'success') throw new Error(`prometheus ${p}: ${r.status} ${r.body}`);
    return body.data;
  }

  /** Instant query: [{metric: {labels}, value: number}]. */
  async query(expr) {
    const data = await this.api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  }

  /** Exemplars of the series `expr` selects between two times (ms): [{seriesLabels, exemplars}]. */
  async queryExemplars(expr, startMs, endMs) {
    const q = `query=${encodeURIComponent(expr)}&start=${startMs / 1000}&end=${endMs / 1000}`;
    return this.api(`/api/v1/query_exemplars?${q}`);
  }

  /** Label sets of the series matching `match`. */
  async series(match) {
    return this.api(`/api/v1/series?match[]=${encodeURIComponent(match)}`);
  }

  /** Poll `expr` until it returns at least `n` series (resolves them) or time runs out (throws). */
  async waitFor(expr, n = 1, timeoutMs = 10_000) {
    const deadline = performance.now() + timeoutMs;
    let last = [];
    while (performance.now() < deadline) {
      last = await this.query(expr);
      if (last.length >= n) return last;
      await sleep(100);
    }
    throw new Error(`prometheus: ${expr} has ${last.length} series after ${timeoutMs} ms, wanted ${n}`);
  }

  /** SIGTERM and wait; the data dir stays for restart(). */
  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      await this._exited;
    }
  }

  async restart() {
    await this.stop();
    await this._launch();
  }

  /** Stop and remove the data. */
  async destroy() {
    await this.stop();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

function doubleBits(v) {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return b.readBigUInt64LE(0);
}

/**
 * ExportMetricsServiceRequest (protobuf) with one gauge `name` of the given
 * points ({timeMs, value}) under a resource with service.name.
 */
export function gaugeRequestProto(service, name, points) {
  return otlp.request(service, otlp.gauge(name, points));
}

const zigzag = (n) => (n >= 0 ? 2 * n : -2 * n - 1);
const ns = (ms) => BigInt(ms) * 1_000_000n;

/**
 * OTLP metrics (protobuf) built field by field. request(service, ...metrics)
 * puts metrics under a resource with service.name; the metric builders take
 * points with timeMs and, where OTLP has them, exemplars ({timeMs, value,
 * traceId hex, spanId hex}).
 */
export const otlp = {
  request(service, ...metrics) {
    const resource = pb.msg(1, pb.msg(1, pb.string(1, 'service.name'), pb.msg(2, pb.string(1, service))));
    return pb.msg(1, resource, pb.msg(2, ...metrics));
  },

  exemplar(e) {
    return Buffer.concat([
      pb.fixed64(2, ns(e.timeMs)),
      pb.fixed64(3, doubleBits(e.value)),
      ...(e.spanId ? [pb.bytes(4, Buffer.from(e.spanId, 'hex'))] : []),
      ...(e.traceId ? [pb.bytes(5, Buffer.from(e.traceId, 'hex'))] : []),
    ]);
  },

  /** A gauge; points {timeMs, value}. */
  gauge(name, points) {
    const dps = points.map((p) => pb.msg(1, pb.fixed64(3, ns(p.timeMs)), pb.fixed64(4, doubleBits(p.value))));
    return pb.msg(2, pb.string(1, name), pb.msg(5, ...dps));
  },

  /** A cumulative monotonic sum; points {timeMs, value, exemplars}. */
  counter(name, points) {
    const dps = points.map((p) =>
      pb.msg(
        1,
        pb.fixed64(3, ns(p.timeMs)),
        pb.fixed64(4, doubleBits(p.value)),
        ...(p.exemplars ?? []).map((e) => pb.msg(5, otlp.exemplar(e))),
      ),
    );
    return pb.msg(2, pb.string(1, name), pb.msg(7, ...dps, pb.varint(2, 2), pb.varint(3, 1)));
  },

  /** A cumulative explicit-bucket histogram; points {timeMs, bounds, counts, sum, exemplars}. */
  histogram(name, unit, points) {
    const packed = (vals, write) => Buffer.concat(vals.map(write));
    const u64 = (v) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt(v));
      return b;
    };
    const f64 = (v) => {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(v);
      return b;
    };
    const dps = points.map((p) =>
      pb.msg(
        1,
        pb.fixed64(3, ns(p.timeMs)),
        pb.fixed64(4, p.counts.reduce((a, c) => a + c, 0)),
        pb.fixed64(5, doubleBits(p.sum)),
        pb.bytes(6, packed(p.counts, u64)),
        pb.bytes(7, packed(p.bounds, f64)),
        ...(p.exemplars ?? []).map((e) => pb.msg(8, otlp.exemplar(e))),
      ),
    );
    return pb.msg(2, pb.string(1, name), pb.string(3, unit), pb.msg(9, ...dps, pb.varint(2, 2)));
  },

  /**
   * An exponential histogram (cumulative unless temporality says 1, delta);
   * points {timeMs, scale, count, sum, zeroCount, positive: {offset,
   * counts}, negative, exemplars}.
   */
  expHistogram(name, unit, points, temporality = 2) {
    const buckets = (no, b) =>
      b ? [pb.msg(no, pb.varint(1, zigzag(b.offset)), pb.bytes(2, Buffer.concat(b.counts.map((c) => varint(c)))))] : [];
    const dps = points.map((p) =>
      pb.msg(
        1,
        pb.fixed64(3, ns(p.timeMs)),
        pb.fixed64(4, p.count),
        ...(p.sum !== undefined ? [pb.fixed64(5, doubleBits(p.sum))] : []),
        pb.varint(6, zigzag(p.scale)),
        pb.fixed64(7, p.zeroCount ?? 0),
        ...buckets(8, p.positive),
        ...buckets(9, p.negative),
        ...(p.exemplars ?? []).map((e) => pb.msg(11, otlp.exemplar(e))),
      ),
    );
    return pb.msg(2, pb.string(1, name), pb.string(3, unit), pb.msg(10, ...dps, pb.varint(2, temporality)));
  },
};

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;

export class SigV4Verifier {
  /**
   * Listen on a free loopback port; requests signed for `region`/`service`
   * with `credentials` ({accessKeyId, secretAccessKey}) go on to
   * 127.0.0.1:targetPort. `verdicts` records 'ok' or why a request was refused.
   */
  static async start({ targetPort, credentials, region, service }) {
    const v = new SigV4Verifier();
    Object.assign(v, { targetPort, credentials, region, service, verdicts: [] });
    v.server = http.createServer((req, res) => v._handle(req, res));
    await new Promise((resolve) => v.server.listen(0, '127.0.0.1', resolve));
    v.port = v.server.address().port;
    return v;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** null when the request is signed correctly, else the reason. */
  async _check(req, body) {
    const m = AUTH_RE.exec(req.headers.authorization || '');
    if (!m) return `bad Authorization: ${req.headers.authorization}`;
    const [, akid, day, region, service, signedHeaders] = m;
    if (akid !== this.credentials.accessKeyId || region !== this.region || service !== this.service)
      return `wrong scope ${akid}/${region}/${service}`;
    const amzDate = req.headers['x-amz-date'] || '';
    const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!d || amzDate.slice(0, 8) !== day) return `bad X-Amz-Date ${amzDate}`;
    if (req.headers['x-amz-content-sha256'] !== createHash('sha256').update(body).digest('hex'))
      return 'X-Amz-Content-Sha256 is not the hash of the body received';
    const names = signedHeaders.split(';');
    for (const h of ['host', 'content-type', 'content-encoding', 'x-amz-date', 'x-amz-content-sha256'])
      if (!names.includes(h)) return `${h} not signed`;
    const headers = Object.fromEntries(names.map((h) => [h, req.headers[h]]));
    const signer = new SignatureV4({
      credentials: this.credentials,
      region: this.region,
      service: this.service,
      sha256: NodeSha256,
      uriEscapePath: true,
    });
    const url = new URL(req.url, 'http://x');
    const signed = await signer.sign(
      { method: req.method, protocol: 'http:', hostname: req.headers.host, path: url.pathname, query: Object.fromEntries(url.searchParams), headers, body },
      { signingDate: new Date(Date.UTC(+d[1], +d[2] - 1, +d[3], +d[4], +d[5], +d[6])) },
    );
    return signed.headers.authorization === req.headers.authorization ? null : 'signature mismatch';
  }

  async _handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const why = await this._check(req, body).catch((e) => `verifier error: ${e.message}`);
    this.verdicts.push(why ?? 'ok');
    if (why) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(why);
      return;
    }
    const fwd = http.request(
      { host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${this.targetPort}` } },
      (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      },
    );
    fwd.on('error', () => {
      res.writeHead(502);
      res.end('prometheus unreachable');
    });
    fwd.end(body);
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
