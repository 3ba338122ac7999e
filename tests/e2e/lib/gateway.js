// Test harness: runs the real otlp-gateway binary with a generated config in a
// fresh temp dir, on free loopback ports, and gives the tests what they need to
// talk to it and to read what it wrote.
//
//   const gw = await Gateway.start({ maxRequestBytes: '1MiB' });
//   ... gw.grpcPort, gw.httpPort, gw.adminPort, gw.readSignal('traces') ...
//   await gw.stop();   // SIGTERM; throws unless exit code 0 and no sanitizer report
//
// Environment:
//   GATEWAY_BIN      path of the binary (default ../../build/otlp-gateway from tests/e2e)
//   GATEWAY_ARGS     extra arguments, space separated (optional)
//   E2E_KEEP_TMP=1   keep temp dirs after a run (for debugging)
//   E2E_TRACE_DIR    when set (scripts/test.sh sets it), each test file appends to
//                    <dir>/<file>.trace a line as each test starts and ends and as
//                    each gateway starts (its pid and log) and stops. The runner
//                    reports nothing of a file it kills on its timeout; this
//                    trace names the test that was running and the log to read.
//   ASAN_OPTIONS / UBSAN_OPTIONS are defaulted when not set (leak detection on).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'node:test';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const GATEWAY_BIN = process.env.GATEWAY_BIN
  ? path.resolve(process.env.GATEWAY_BIN)
  : path.resolve(E2E_DIR, '../../build/otlp-gateway');

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 20_000;
const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'];

// The gateway's own Prometheus metric names, in one place so that a rename in
// core/metrics.c is a one-line change here.
export const METRIC = {
  receivedSpans: 'otlp_gateway_received_spans_total',
  receivedMetricPoints: 'otlp_gateway_received_metric_points_total',
  receivedLogRecords: 'otlp_gateway_received_log_records_total',
  refusedSpans: 'otlp_gateway_refused_spans_total',
  refusedMetricPoints: 'otlp_gateway_refused_metric_points_total',
  refusedLogRecords: 'otlp_gateway_refused_log_records_total',
};
export const RECEIVED_METRIC = {
  traces: METRIC.receivedSpans,
  metrics: METRIC.receivedMetricPoints,
  logs: METRIC.receivedLogRecords,
};

/** A free loopback TCP port: bind port 0, read it, close. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll pred() every intervalMs until it is truthy or timeoutMs passed; resolves its last value.
 * Deadlines here and in the other helpers run on performance.now() (monotonic): a step of the
 * wall clock must not stretch a wait.
 */
export async function waitFor(pred, timeoutMs, intervalMs = 50) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v || performance.now() >= deadline) return v;
    await sleep(intervalMs);
  }
}

const TRACE_FILE = process.env.E2E_TRACE_DIR
  ? path.join(process.env.E2E_TRACE_DIR, `${path.basename(process.argv[1] ?? 'unknown')}.trace`)
  : null;

/** One line in this file's trace (E2E_TRACE_DIR), if tracing is on. */
export function traceLine(text) {
  if (!TRACE_FILE) return;
  try {
    fs.appendFileSync(TRACE_FILE, `${new Date().toISOString()} ${text}\n`);
  } catch {
    /* the trace is a diagnostic; never fail a test for it */
  }
}

if (TRACE_FILE) {
  // Root hooks run around every test of the file that imports the harness, at any depth.
  beforeEach((t) => traceLine(`test start: ${t.name}`));
  afterEach((t) => traceLine(`test end: ${t.name}`));
}

/**
 * One HTTP/1.1 request without connection reuse. Resolves {status, headers,
 * body: Buffer} as soon as a response has been read, even if the server then
 * drops the connection while the request body is still being sent (as it may
 * for a 413); rejects if no response arrives.
 */
export function httpRequest({ port, method = 'GET', path: p = '/', headers = {}, body, timeoutMs = 10_000 }) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err, val) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(val);
    };
    const timer = setTimeout(() => {
      req.destroy();
      settle(new Error(`HTTP ${method} ${p} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      const chunks = [];
      const finish = () =>
        settle(null, { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete });
      res.on('data', (c) => chunks.push(c));
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    req.on('error', (e) => {
      // A response already being read wins; otherwise this is the result.
      setTimeout(() => settle(e), 50);
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Parse Prometheus text exposition into [{name, labels, value}]. */
export function parsePrometheus(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[3])) !== null) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** Sum of the samples of `name` whose labels include every pair in `labels`. */
export function metricSum(samples, name, labels = {}) {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

function configYaml(o) {
  const lines = [
    `workers: ${o.workers}`,
    `admin: 127.0.0.1:${o.adminPort}`,
    'listeners:',
    `  - name: default`,
    `    grpc: 127.0.0.1:${o.grpcPort}`,
    `    http: 127.0.0.1:${o.httpPort}`,
    `    max_request_bytes: ${o.maxRequestBytes}`,
    `    header_timeout: ${o.headerTimeout}`,
    // listenerExtra: more keys of the default listener (indented 4), and/or
    // more listener entries ("  - name: ...").
    ...(o.listenerExtra ? [o.listenerExtra] : []),
    'backends:',
    `  local: { type: file, dir: ${o.dataDir} }`,
    'pipelines:',
    '  - { name: default, signals: [traces, metrics, logs], backends: [local] }',
  ];
  if (o.extraYaml) lines.push(o.extraYaml);
  return lines.join('\n') + '\n';
}

/**
 * A suite's after(): stop the gateway (which checks its exit status), then run
 * each closer (e.g. () => sink?.stop()) in order, whether the stop threw or not.
 */
export async function stopAll(gw, ...closers) {
  try {
    if (gw) await gw.stop();
  } finally {
    for (const close of closers) await close();
  }
}

/**
 * Run the binary once with `args` (e.g. ['--check-config', file]) and wait for
 * it to exit. Resolves {code, signal, output}.
 */
export function runGatewayOnce(args, { timeoutMs = 10_000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    if (!env.ASAN_OPTIONS) env.ASAN_OPTIONS = 'detect_leaks=1';
    const p = spawn(GATEWAY_BIN, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    p.stdout.on('data', (c) => chunks.push(c));
    p.stderr.on('data', (c) => chunks.push(c));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${GATEWAY_BIN} ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

/** The config the harness generates, for tests that want to vary it. */
export function gatewayConfigYaml(o) {
  return configYaml({ workers: 2, maxRequestBytes: '1MiB', headerTimeout: '2s', ...o });
}

export class Gateway {
  /**
   * Start a gateway and wait until /readyz answers 200.
   * opts: workers (2), maxRequestBytes ('1MiB'), headerTimeout ('2s'), listenerExtra, extraYaml,
   * env (variables added to the gateway's environment), nofile (a number: run with
   * RLIMIT_NOFILE soft = hard = nofile, through prlimit(1)), ports ({grpcPort, httpPort, adminPort}: use
   * these instead of picking free ones);
   * or config: ({grpcPort, httpPort, adminPort, dataDir, dir}) => full YAML text,
   * which replaces the generated file (the ports are free loopback ports the
   * harness picked; the admin listener must use adminPort for /readyz).
   */
  static async start(opts = {}) {
    let lastErr;
    // A port picked by bind-0-then-close can be taken by someone else before
    // the gateway binds it; retry with fresh ports when that happens.
    for (let attempt = 0; attempt < 3; attempt++) {
      const gw = new this(opts); // subclasses (e.g. auth.test.js) inherit the retry
      try {
        await gw._start();
        return gw;
      } catch (e) {
        lastErr = e;
        await gw._kill();
        if (!/in use|EADDRINUSE/i.test(gw.log())) break;
      }
    }
    throw lastErr;
  }

  constructor(opts) {
    this.opts = {
      workers: 2,
      maxRequestBytes: '1MiB',
      headerTimeout: '2s',
      ...opts,
    };
    this.proc = null;
    this.exit = null; // {code, signal} once exited
    this._log = [];
  }

  async _start() {
    await this._prepare();
    await this._launch();
  }

  /** Temp dir, free ports and the config file; subclasses may replace this. */
  async _prepare() {
    if (!fs.existsSync(GATEWAY_BIN)) {
      throw new Error(`gateway binary not found: ${GATEWAY_BIN} (set GATEWAY_BIN)`);
    }
    this.dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-e2e-'));
    this.dataDir = path.join(this.dir, 'data');
    await fsp.mkdir(this.dataDir);
    if (this.opts.ports) {
      // opts.ports: {grpcPort, httpPort, adminPort} chosen by the caller (a
      // cluster's load balancer must know them before the gateway starts).
      ({ grpcPort: this.grpcPort, httpPort: this.httpPort, adminPort: this.adminPort } = this.opts.ports);
    } else {
      const ports = new Set();
      while (ports.size < 3) ports.add(await freePort());
      [this.grpcPort, this.httpPort, this.adminPort] = [...ports];
    }
    this.configPath = path.join(this.dir, 'gateway.yaml');
    const where = { grpcPort: this.grpcPort, httpPort: this.httpPort, adminPort: this.adminPort, dataDir: this.dataDir, dir: this.dir };
    // opts.config(where) returns the whole YAML file (own listeners, backends,
    // pipelines, tenants) in place of the generated one.
    await fsp.writeFile(this.configPath, this.opts.config ? this.opts.config(where) : configYaml({ ...this.opts, ...where }));
  }

  /** Spawn the binary on this.configPath and wait until /readyz answers 200. */
  async _launch() {
    this.logPath = path.join(this.dir, 'gateway.log');
    this._logFd = fs.openSync(this.logPath, 'a');

    const env = { ...process.env };
    if (!env.ASAN_OPTIONS) env.ASAN_OPTIONS = 'detect_leaks=1';
    if (!env.UBSAN_OPTIONS) env.UBSAN_OPTIONS = 'print_stacktrace=1';
    // The SDK's OTEL_* variables must not leak into anything the gateway reads.
    for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
    Object.assign(env, this.opts.env); // opts.env: extra variables for this gateway

    const extra = (process.env.GATEWAY_ARGS || '').split(/\s+/).filter(Boolean);
    // opts.nofile: prlimit sets the descriptor limit and execs the gateway
    // (same pid).
    const argv = ['--config', this.configPath, ...extra];
    const [cmd, cmdArgs] = this.opts.nofile
      ? ['prlimit', [`--nofile=${this.opts.nofile}:${this.opts.nofile}`, '--', GATEWAY_BIN, ...argv]]
      : [GATEWAY_BIN, argv];
    this.proc = spawn(cmd, cmdArgs, {
      cwd: this.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.proc.pid;
    traceLine(`gateway start: pid=${this.pid} log=${this.logPath}`);
    const onData = (chunk) => {
      this._log.push(chunk);
      try {
        fs.writeSync(this._logFd, chunk);
      } catch {
        /* log file is best effort */
      }
    };
    this.proc.stdout.on('data', onData);
    this.proc.stderr.on('data', onData);
    this._exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        traceLine(`gateway exit: pid=${this.pid} code=${code} signal=${signal}`);
        resolve(this.exit);
      });
      this.proc.on('error', (err) => {
        this._log.push(Buffer.from(`spawn error: ${err.message}\n`));
        this.exit = { code: -1, signal: null, error: err };
        resolve(this.exit);
      });
    });

    const deadline = performance.now() + READY_TIMEOUT_MS;
    let last = 'no answer';
    while (performance.now() < deadline) {
      if (this.exit) {
        throw new Error(`gateway exited during startup (${JSON.stringify(this.exit)})\n${this.logTail()}`);
      }
      try {
        const r = await httpRequest({ port: this.adminPort, path: '/readyz', timeoutMs: 1000 });
        if (r.status === 200) return;
        last = `HTTP ${r.status}`;
      } catch (e) {
        last = e.message;
      }
      await sleep(100);
    }
    throw new Error(`gateway not ready within ${READY_TIMEOUT_MS} ms (last: ${last})\n${this.logTail()}`);
  }

  get grpcAddr() {
    return `127.0.0.1:${this.grpcPort}`;
  }
  get httpUrl() {
    return `http://127.0.0.1:${this.httpPort}`;
  }
  get adminUrl() {
    return `http://127.0.0.1:${this.adminPort}`;
  }

  log() {
    return Buffer.concat(this._log).toString('utf8');
  }
  /** How many times the log holds `pattern` (a string or a RegExp). */
  logCount(pattern) {
    const re = typeof pattern === 'string' ? null : new RegExp(pattern.source, 'g');
    return re ? (this.log().match(re) ?? []).length : this.log().split(pattern).length - 1;
  }
  /**
   * Until the log holds `pattern` more than `seen` times: this process reads
   * the gateway's output asynchronously, so a metric the gateway set before
   * it logged may be seen before the line is.
   */
  async waitForLog(pattern, seen = 0, timeoutMs = 10_000) {
    const deadline = performance.now() + timeoutMs;
    while (this.logCount(pattern) <= seen) {
      if (performance.now() > deadline) throw new Error(`gateway did not log ${pattern} within ${timeoutMs} ms`);
      await sleep(50);
    }
  }
  logTail(maxChars = 20_000) {
    const t = this.log();
    const body = t.length > maxChars ? '...\n' + t.slice(-maxChars) : t;
    return `---- gateway log (${this.logPath}) ----\n${body}\n---- end of gateway log ----`;
  }

  /** Throws if the gateway's output so far contains a sanitizer report. */
  assertNoSanitizerReport() {
    const t = this.log();
    for (const m of SANITIZER_MARKERS) {
      if (t.includes(m)) throw new Error(`gateway output contains "${m}"\n${this.logTail()}`);
    }
  }

  /** Throws unless the process is still running. */
  assertAlive() {
    if (this.exit) throw new Error(`gateway is no longer running (${JSON.stringify(this.exit)})\n${this.logTail()}`);
  }

  /** Resident set size of the gateway in KiB (Linux /proc). */
  rssKiB() {
    const st = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(st);
    return m ? Number(m[1]) : NaN;
  }

  /** Every line the file backend wrote for a signal, parsed. [] if no file yet. */
  readSignal(signal) {
    const file = path.join(this.dataDir, `${signal}.jsonl`);
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if (e.code === 'ENOENT') return [];
      throw e;
    }
    const out = [];
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line === '' && i === lines.length - 1) return; // trailing newline
      try {
        out.push(JSON.parse(line));
      } catch (e) {
        throw new Error(`${file}:${i + 1}: not JSON (${e.message}): ${line.slice(0, 200)}`);
      }
    });
    return out;
  }

  /** Raw /metrics text. */
  async metricsText() {
    const r = await httpRequest({ port: this.adminPort, path: '/metrics' });
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    return r.body.toString('utf8');
  }
  async metrics() {
    return parsePrometheus(await this.metricsText());
  }
  async metricSum(name, labels = {}) {
    return metricSum(await this.metrics(), name, labels);
  }

  /** Wait until the tail sampler of `pipeline` holds no undecided trace. */
  async waitSamplerIdle(pipeline, timeoutMs = 15_000) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const n = await this.metricSum('otlp_gateway_sampler_traces_in_flight', { pipeline });
      if (n === 0) return;
      if (performance.now() > deadline) throw new Error(`${n} traces still undecided\n${this.logTail()}`);
      await sleep(100);
    }
  }

  /** Run fn; on failure append the gateway's log to the error. */
  async withLog(fn) {
    try {
      return await fn();
    } catch (e) {
      const tail = this.logTail(8000);
      if (e && typeof e === 'object' && typeof e.message === 'string' && !e.message.includes('---- gateway log')) {
        try {
          e.message += '\n' + tail;
        } catch {
          process.stderr.write(tail + '\n');
        }
      } else {
        process.stderr.write(tail + '\n');
      }
      throw e;
    }
  }

  async _kill() {
    if (this.proc && !this.exit) {
      this.proc.kill('SIGKILL');
      await this._exited;
    }
    this._closeLog();
  }

  /** Kill with `signal` (SIGKILL by default, no clean-up in the gateway) and wait for the exit. */
  async kill(signal = 'SIGKILL') {
    if (this.proc && !this.exit) {
      this.proc.kill(signal);
      await this._exited;
    }
    this._closeLog();
    return this.exit;
  }

  _closeLog() {
    if (this._logFd !== undefined) {
      try {
        fs.closeSync(this._logFd);
      } catch {
        /* already closed */
      }
      this._logFd = undefined;
    }
  }

  /** SIGTERM; throws unless it exits with code 0 within the timeout and logged no sanitizer report. */
  async stop({ keepDir = false } = {}) {
    if (!this.proc) return;
    let problem = null;
    if (this.exit) {
      problem = `gateway had already exited (${JSON.stringify(this.exit)})`;
    } else {
      const t0 = performance.now();
      this.proc.kill('SIGTERM');
      let timer;
      const res = await Promise.race([
        this._exited,
        new Promise((r) => {
          timer = setTimeout(() => r(null), STOP_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      this.stopMs = performance.now() - t0;
      if (!res) {
        problem = `gateway did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`;
        this.proc.kill('SIGKILL');
        await this._exited;
      } else if (res.code !== 0) {
        problem = `gateway exited with ${JSON.stringify(res)} after SIGTERM, expected code 0`;
      }
    }
    this._closeLog();
    const text = this.log();
    const marker = SANITIZER_MARKERS.find((m) => text.includes(m));
    if (marker) problem = (problem ? problem + '; ' : '') + `output contains "${marker}"`;
    if (problem) {
      process.stderr.write(this.logTail() + '\n');
      throw new Error(`${problem}\n(log and data kept in ${this.dir})`);
    }
    if (!keepDir && process.env.E2E_KEEP_TMP !== '1') await this.removeDir();
  }

  async removeDir() {
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/** A gateway API key for `tenant`, added to keysFile by `otlp-gateway keys create`. */
export async function createApiKey(keysFile, tenant) {
  const r = await runGatewayOnce(['keys', 'create', '--tenant', tenant, '--name', `e2e-${tenant}`, '--keys-file', keysFile]);
  if (r.code !== 0) throw new Error(`keys create failed:\n${r.output}`);
  const key = r.output.split('\n').find((l) => l.startsWith('otlpgw_'));
  if (!key) throw new Error(`no key in the CLI output:\n${r.output}`);
  return key;
}
