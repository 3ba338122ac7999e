// Emulated backend intakes for the export tests. Honeycomb, Jaeger and Loki
// cannot run here, so these servers stand in for them and check what the
// gateway sends as strictly as the real intakes do (paths, content types,
// encodings, credentials, per-signal headers), record every request decoded
// down to the item (span, metric data point, log record), and answer as each
// test asks: success, partial success, an error status (401, 429 with
// Retry-After, 503 ...), a stall (never answer), a reset, or being down
// (nothing listening on the port).
//
//   const hc = await HoneycombSink.start({ keys: { [keyA]: 'env-a' } });
//   hc.behave({ kind: 'status', status: 503, retryAfter: 1 });  // from now on
//   hc.once({ kind: 'partial', rejected: 2, message: '...' });  // the next request only
//   await hc.down(); ... await hc.up();                          // same port
//   hc.delivered('traces')   // spans from requests the sink accepted
//   hc.violations            // strictness failures: tests expect []
//
// Requests are decoded with the protobuf reader of wire.js (and JSON.parse
// for OTLP/JSON), so nothing here shares code with the gateway or the SDK.

import { execFileSync } from 'node:child_process';
import http from 'node:http';
import zlib from 'node:zlib';

import * as grpc from '@grpc/grpc-js';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { GRPC_PATH, decodeFields, pb } from './wire.js';

// ---------- OTLP decoding (protobuf) ----------

const utf8 = (b) => Buffer.from(b).toString('utf8');
const hex = (b) => Buffer.from(b).toString('hex');

function fixed64ToDouble(v) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b.readDoubleLE(0);
}

function pbAnyValue(buf) {
  for (const f of decodeFields(buf)) {
    switch (f.no) {
      case 1:
        return utf8(f.value);
      case 2:
        return f.value !== 0n;
      case 3:
        return Number(BigInt.asIntN(64, f.value));
      case 4:
        return fixed64ToDouble(f.value);
      case 5:
        return decodeFields(f.value)
          .filter((g) => g.no === 1)
          .map((g) => pbAnyValue(g.value));
      case 6:
        return pbKeyValues(decodeFields(f.value).filter((g) => g.no === 1).map((g) => g.value));
      case 7:
        return Buffer.from(f.value);
      default:
        break;
    }
  }
  return null;
}

function pbKeyValues(list) {
  const out = {};
  for (const kv of list) {
    let key = '';
    let value = null;
    for (const f of decodeFields(kv)) {
      if (f.no === 1) key = utf8(f.value);
      else if (f.no === 2) value = pbAnyValue(f.value);
    }
    out[key] = value;
  }
  return out;
}

const pbAttributes = (buf, no) => pbKeyValues(decodeFields(buf).filter((f) => f.no === no && f.wt === 2).map((f) => f.value));

function pbScope(buf) {
  const s = { name: '', version: '' };
  for (const f of decodeFields(buf)) {
    if (f.no === 1) s.name = utf8(f.value);
    else if (f.no === 2) s.version = utf8(f.value);
  }
  return s;
}

/**
 * Walk Export{Trace,Metrics,Logs}ServiceRequest: resource entries (field 1)
 * hold a resource (1) and scope entries (2), which hold a scope (1) and the
 * items (2). decodeItem(buf) returns the item's records (a metric gives one
 * per data point).
 */
function pbWalk(buf, decodeItem) {
  const out = [];
  for (const r of decodeFields(buf)) {
    if (r.no !== 1 || r.wt !== 2) continue;
    let resource = {};
    const scopes = [];
    for (const f of decodeFields(r.value)) {
      if (f.no === 1 && f.wt === 2) resource = pbAttributes(f.value, 1);
      else if (f.no === 2 && f.wt === 2) scopes.push(f.value);
    }
    for (const s of scopes) {
      let scope = { name: '', version: '' };
      const items = [];
      for (const f of decodeFields(s)) {
        if (f.no === 1 && f.wt === 2) scope = pbScope(f.value);
        else if (f.no === 2 && f.wt === 2) items.push(f.value);
      }
      for (const it of items) {
        for (const rec of decodeItem(it)) out.push({ ...rec, resource, scope, service: resource['service.name'] });
      }
    }
  }
  return out;
}

function pbSpan(buf) {
  const s = { traceId: '', spanId: '', parentSpanId: '', name: '', kind: 0, startTimeUnixNano: '0', endTimeUnixNano: '0', attributes: {} };
  const attrs = [];
  for (const f of decodeFields(buf)) {
    if (f.no === 1) s.traceId = hex(f.value);
    else if (f.no === 2) s.spanId = hex(f.value);
    else if (f.no === 4) s.parentSpanId = hex(f.value);
    else if (f.no === 5) s.name = utf8(f.value);
    else if (f.no === 6) s.kind = Number(f.value);
    else if (f.no === 7) s.startTimeUnixNano = f.value.toString();
    else if (f.no === 8) s.endTimeUnixNano = f.value.toString();
    else if (f.no === 9) attrs.push(f.value);
  }
  s.attributes = pbKeyValues(attrs);
  return [s];
}

// Metric: 1 name; data 5 gauge, 7 sum, 9 histogram, 10 exponential histogram,
// 11 summary; each holds repeated data points in its field 1.
const METRIC_KINDS = { 5: 'gauge', 7: 'sum', 9: 'histogram', 10: 'exponential_histogram', 11: 'summary' };
function pbMetric(buf) {
  let name = '';
  const points = [];
  for (const f of decodeFields(buf)) {
    if (f.no === 1) name = utf8(f.value);
    else if (METRIC_KINDS[f.no] && f.wt === 2) {
      for (const g of decodeFields(f.value)) if (g.no === 1 && g.wt === 2) points.push(METRIC_KINDS[f.no]);
    }
  }
  return points.map((kind) => ({ name, kind }));
}

function pbLogRecord(buf) {
  const r = { body: null, severityNumber: 0, severityText: '', traceId: '', spanId: '', timeUnixNano: '0', attributes: {} };
  const attrs = [];
  for (const f of decodeFields(buf)) {
    if (f.no === 2) r.severityNumber = Number(f.value);
    else if (f.no === 3) r.severityText = utf8(f.value);
    else if (f.no === 5) r.body = pbAnyValue(f.value);
    else if (f.no === 6) attrs.push(f.value);
    else if (f.no === 9) r.traceId = hex(f.value);
    else if (f.no === 10) r.spanId = hex(f.value);
    else if (f.no === 1) r.timeUnixNano = f.value.toString();
  }
  r.attributes = pbKeyValues(attrs);
  return [r];
}

const PB_ITEM = { traces: pbSpan, metrics: pbMetric, logs: pbLogRecord };

/** Decode an Export*ServiceRequest (protobuf) into flat item records. */
export function decodeOtlpProto(signal, buf) {
  return pbWalk(buf, PB_ITEM[signal]);
}

// ---------- OTLP decoding (JSON) ----------

function jsonAnyValue(v) {
  if (!v || typeof v !== 'object') return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return (v.arrayValue.values || []).map(jsonAnyValue);
  if ('kvlistValue' in v) return jsonKeyValues(v.kvlistValue.values);
  if ('bytesValue' in v) return Buffer.from(v.bytesValue, 'base64');
  return null;
}
function jsonKeyValues(list = []) {
  const out = {};
  for (const kv of list) out[kv.key] = jsonAnyValue(kv.value);
  return out;
}
const JSON_SHAPE = {
  traces: ['resourceSpans', 'scopeSpans', 'spans'],
  metrics: ['resourceMetrics', 'scopeMetrics', 'metrics'],
  logs: ['resourceLogs', 'scopeLogs', 'logRecords'],
};
const JSON_ITEM = {
  traces: (s) => [
    {
      traceId: (s.traceId || '').toLowerCase(),
      spanId: (s.spanId || '').toLowerCase(),
      parentSpanId: (s.parentSpanId || '').toLowerCase(),
      name: s.name || '',
      kind: s.kind || 0,
      startTimeUnixNano: String(s.startTimeUnixNano ?? '0'),
      endTimeUnixNano: String(s.endTimeUnixNano ?? '0'),
      attributes: jsonKeyValues(s.attributes),
    },
  ],
  metrics: (m) => {
    const out = [];
    for (const kind of ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary']) {
      for (const _ of m[kind]?.dataPoints || []) out.push({ name: m.name, kind });
    }
    return out;
  },
  logs: (r) => [
    {
      body: jsonAnyValue(r.body),
      severityNumber: r.severityNumber || 0,
      severityText: r.severityText || '',
      traceId: (r.traceId || '').toLowerCase(),
      spanId: (r.spanId || '').toLowerCase(),
      timeUnixNano: String(r.timeUnixNano ?? '0'),
      attributes: jsonKeyValues(r.attributes),
    },
  ],
};

/** Decode an Export*ServiceRequest in OTLP/JSON (parsed) into flat item records. */
export function decodeOtlpJson(signal, obj) {
  const [rk, sk, ik] = JSON_SHAPE[signal];
  const out = [];
  for (const r of obj[rk] || []) {
    const resource = jsonKeyValues(r.resource?.attributes);
    for (const s of r[sk] || []) {
      const scope = { name: s.scope?.name || '', version: s.scope?.version || '' };
      for (const it of s[ik] || []) {
        for (const rec of JSON_ITEM[signal](it)) out.push({ ...rec, resource, scope, service: resource['service.name'] });
      }
    }
  }
  return out;
}

// ---------- answers ----------

const PARTIAL_JSON_FIELD = { traces: 'rejectedSpans', metrics: 'rejectedDataPoints', logs: 'rejectedLogRecords' };
// HTTP status -> gRPC code for the google.rpc.Status bodies of error answers.
const STATUS_CODE = { 400: 3, 401: 16, 403: 7, 404: 12, 413: 8, 415: 3, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4 };

/** Export*ServiceResponse with partial_success {rejected (1), error_message (2)} (same numbers for every signal). */
export function partialSuccessProto(rejected, message) {
  return pb.msg(1, pb.varint(1, rejected), pb.string(2, message));
}

/** Every item in `items` by key(item) -> count. */
export function countBy(items, key) {
  const m = new Map();
  for (const it of items) m.set(key(it), (m.get(key(it)) ?? 0) + 1);
  return m;
}

/** Keys that occur more than once, with their counts. */
export function duplicates(items, key) {
  return [...countBy(items, key)].filter(([, n]) => n > 1);
}

function decodeBody(encoding, body) {
  switch ((encoding || 'identity').toLowerCase()) {
    case 'identity':
      return body;
    case 'gzip':
      return zlib.gunzipSync(body);
    case 'deflate':
      return zlib.inflateSync(body);
    case 'zstd':
      if (typeof zlib.zstdDecompressSync === 'function') return zlib.zstdDecompressSync(body);
      // Node 20 has no zstd; the zstd command line tool (Debian's zstd) does it.
      try {
        return execFileSync('zstd', ['-d', '-c', '-q'], { input: body, maxBuffer: 256 << 20 });
      } catch (e) {
        throw Object.assign(new Error(`cannot decompress the zstd body: ${e.message}`), { status: 400 });
      }
    default:
      throw Object.assign(new Error(`unsupported Content-Encoding ${encoding}`), { status: 415 });
  }
}

// ---------- HTTP intakes ----------

/**
 * What every HTTP stand-in here shares: a server on a loopback port
 * (opts.port, else a free one) that can go down and come back on the same
 * port, reads each request's body whole and hands it to the subclass's
 * _exchange(req, res, raw) (a throw there is a violation and a 500), and
 * keeps `requests` and `violations` (strings; tests expect []) for the
 * subclass to fill. opts.name prefixes the violations.
 */
export class LoopbackHttpServer {
  static async start(opts = {}) {
    const s = new this(opts);
    await s._listen(opts.port ?? 0);
    return s;
  }

  constructor(opts) {
    this.name = opts.name ?? 'sink';
    this.requests = [];
    this.violations = [];
    this._once = [];
    this._sockets = new Set();
    this._stalled = new Set(); // responses held open; down() cuts them
    this.isDown = false;
    this.server = http.createServer((req, res) => this._handle(req, res));
    this.server.keepAliveTimeout = 30_000;
    this.server.on('connection', (sock) => {
      this._sockets.add(sock);
      sock.on('close', () => this._sockets.delete(sock));
    });
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Answer for the next request only (queued: several calls cover several requests). */
  once(action) {
    this._once.push(action);
  }

  _listen(port) {
    return new Promise((resolve, reject) => {
      const onErr = (e) => reject(e);
      this.server.once('error', onErr);
      this.server.listen({ host: '127.0.0.1', port }, () => {
        this.server.off('error', onErr);
        this.port = this.server.address().port;
        resolve();
      });
    });
  }

  /** Stop listening and cut every connection (clients then get "connection refused"). */
  async down() {
    if (this.isDown) return;
    this.isDown = true;
    const closed = new Promise((r) => this.server.close(() => r()));
    for (const res of this._stalled) res.destroy();
    this._stalled.clear();
    for (const s of this._sockets) s.destroy();
    await closed;
  }

  /** Listen again on the same port. */
  async up() {
    if (!this.isDown) return;
    await this._listen(this.port);
    this.isDown = false;
  }

  async stop() {
    await this.down();
  }

  _violation(text) {
    this.violations.push(`${this.name}: ${text}`);
  }

  _handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      try {
        this._exchange(req, res, Buffer.concat(chunks));
      } catch (e) {
        this._violation(`handler error: ${e.stack}`);
        if (!res.headersSent) res.writeHead(500).end();
      }
    });
  }
}

/**
 * An OTLP/HTTP intake. opts:
 *   name     for messages
 *   routes   {path: signal} it serves; any other path is a 404 and a violation
 *   accept   content types it takes (without parameters)
 *   check(rec) -> null | {status, message, json, violation}: the intake's own
 *            rules, run on every request once the body is decoded (rec has
 *            signal, headers, items)
 * `requests` holds every request: {signal, path, headers, items, outcome, status, at}.
 */
export class HttpSink extends LoopbackHttpServer {
  constructor(opts) {
    super(opts);
    this.routes = opts.routes ?? { '/v1/traces': 'traces', '/v1/metrics': 'metrics', '/v1/logs': 'logs' };
    this.accept = opts.accept ?? ['application/x-protobuf', 'application/json'];
    this.checkFn = opts.check ?? null;
    this.mode = { kind: 'ok' };
    this.rules = [];
  }

  /** Default answer from now on: {kind: 'ok' | 'partial' | 'status' | 'stall' | 'reset', ...}. */
  behave(action) {
    this.mode = action;
  }

  /**
   * From now on, requests for which match(headers) is true get `action`
   * instead of the default (e.g. throttle one tenant's key). Returns a
   * function that removes the rule.
   */
  behaveWhen(match, action) {
    const rule = { match, action };
    this.rules.push(rule);
    return () => {
      this.rules = this.rules.filter((r) => r !== rule);
    };
  }

  /** Items of `signal` from every request the sink accepted (success or partial success). */
  delivered(signal) {
    const out = [];
    for (const r of this.requests) {
      if (r.signal === signal && (r.outcome === 'ok' || r.outcome === 'partial')) {
        for (const it of r.items) out.push({ ...it, request: r });
      }
    }
    return out;
  }

  /** Requests of `signal` (any outcome). */
  attempts(signal) {
    return this.requests.filter((r) => r.signal === signal);
  }

  _reply(res, rec, { status, contentType, body, headers = {} }) {
    rec.status = status;
    res.writeHead(status, { 'content-type': contentType, 'content-length': body.length, ...headers });
    res.end(body);
  }

  _errorReply(res, rec, status, message, { json = rec.json, retryAfter, outcome } = {}) {
    rec.outcome = outcome ?? `http_${status}`;
    rec.message = message;
    const headers = retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {};
    const code = STATUS_CODE[status] ?? 2;
    if (json) {
      const body = Buffer.from(JSON.stringify(typeof json === 'object' ? json : { code, message }));
      this._reply(res, rec, { status, contentType: 'application/json', body, headers });
    } else {
      const body = Buffer.concat([pb.varint(1, code), pb.string(2, message)]);
      this._reply(res, rec, { status, contentType: 'application/x-protobuf', body, headers });
    }
  }

  _exchange(req, res, raw) {
    const path = req.url.split('?')[0];
    const signal = this.routes[path];
    const rec = {
      signal,
      path,
      method: req.method,
      headers: { ...req.headers },
      items: [],
      outcome: null,
      status: 0,
      bytes: raw.length,
      at: Date.now(),
    };
    this.requests.push(rec);
    if (!signal) {
      this._violation(`${req.method} ${path}: not an intake path of this backend`);
      return this._errorReply(res, rec, 404, `unknown path ${path}`);
    }
    if (req.method !== 'POST') {
      this._violation(`${req.method} ${path}: only POST is accepted`);
      return this._errorReply(res, rec, 405, 'method not allowed');
    }
    const ctype = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
    rec.json = ctype === 'application/json';
    if (!this.accept.includes(ctype)) {
      this._violation(`${path}: content-type "${req.headers['content-type']}" not accepted (${this.accept.join(', ')})`);
      return this._errorReply(res, rec, 415, `unsupported content-type ${ctype}`);
    }
    let body;
    try {
      body = decodeBody(req.headers['content-encoding'], raw);
      rec.items = rec.json ? decodeOtlpJson(signal, JSON.parse(body.toString('utf8'))) : decodeOtlpProto(signal, body);
    } catch (e) {
      this._violation(`${path}: cannot read the body (content-encoding ${req.headers['content-encoding'] ?? 'none'}): ${e.message}`);
      return this._errorReply(res, rec, e.status ?? 400, e.message);
    }
    const action = this._once.length
      ? this._once.shift()
      : (this.rules.find((r) => r.match(rec.headers))?.action ?? this.mode);
    if (action.kind === 'stall') {
      rec.outcome = 'stalled';
      this._stalled.add(res);
      res.on('close', () => this._stalled.delete(res));
      return undefined;
    }
    if (action.kind === 'reset') {
      rec.outcome = 'reset';
      req.socket.destroy();
      return undefined;
    }
    const refusal = this.checkFn ? this.checkFn(rec) : null;
    if (refusal) {
      if (refusal.violation) this._violation(`${path}: ${refusal.message}`);
      return this._errorReply(res, rec, refusal.status, refusal.message, { json: refusal.json ?? rec.json });
    }
    if (action.kind === 'status') {
      return this._errorReply(res, rec, action.status, action.message ?? `status ${action.status} on demand`, {
        retryAfter: action.retryAfter,
        json: action.json ?? rec.json,
      });
    }
    if (action.kind === 'partial') {
      rec.outcome = 'partial';
      rec.rejected = action.rejected;
      const message = action.message ?? 'rejected on demand';
      const body = rec.json
        ? Buffer.from(JSON.stringify({ partialSuccess: { [PARTIAL_JSON_FIELD[signal]]: String(action.rejected), errorMessage: message } }))
        : partialSuccessProto(action.rejected, message);
      return this._reply(res, rec, { status: 200, contentType: rec.json ? 'application/json' : 'application/x-protobuf', body });
    }
    rec.outcome = 'ok';
    return this._reply(res, rec, {
      status: 200,
      contentType: rec.json ? 'application/json' : 'application/x-protobuf',
      body: rec.json ? Buffer.from('{}') : Buffer.alloc(0),
    });
  }
}

/**
 * Honeycomb's OTLP/HTTP intake (api.honeycomb.io /v1/{traces,metrics,logs}):
 * x-honeycomb-team must be one of `keys` ({key: environment}) or the answer
 * is 401 with a JSON error; x-honeycomb-dataset is required on metrics and is
 * a violation anywhere else; the body is application/x-protobuf (or
 * application/json when `encoding: 'json'`), gzip or not.
 */
export class HoneycombSink extends HttpSink {
  constructor(opts = {}) {
    super({
      name: opts.name ?? 'honeycomb',
      accept: opts.encoding === 'json' ? ['application/json'] : ['application/x-protobuf'],
      ...opts,
      check: (rec) => this._check(rec),
    });
    this.keys = new Map(Object.entries(opts.keys ?? {}));
  }

  _check(rec) {
    const team = rec.headers['x-honeycomb-team'];
    rec.key = team;
    rec.dataset = rec.headers['x-honeycomb-dataset'];
    if (!team || !this.keys.has(team)) {
      return { status: 401, json: { error: 'unknown API key - check your credentials' }, message: 'unknown API key' };
    }
    rec.environment = this.keys.get(team);
    if (rec.signal === 'metrics' && !rec.dataset) {
      return { status: 400, violation: true, message: 'metrics need an x-honeycomb-dataset header' };
    }
    if (rec.signal !== 'metrics' && rec.dataset !== undefined) {
      return { status: 400, violation: true, message: `x-honeycomb-dataset sent with ${rec.signal}` };
    }
    return null;
  }

  /** Delivered items of `signal` that came with API key `key`. */
  deliveredWithKey(signal, key) {
    return this.delivered(signal).filter((it) => it.request.key === key);
  }
}

/**
 * Loki 3's OTLP intake: logs only, at /otlp/v1/logs (protobuf or JSON, gzip
 * or not). Anything else is a 404 and a violation; a Honeycomb header is a
 * violation too (per-backend credentials must not leak).
 */
export class LokiSink extends HttpSink {
  constructor(opts = {}) {
    super({
      name: opts.name ?? 'loki',
      routes: { '/otlp/v1/logs': 'logs' },
      accept: ['application/x-protobuf', 'application/json'],
      ...opts,
      check: (rec) =>
        Object.keys(rec.headers).some((h) => h.startsWith('x-honeycomb-'))
          ? { status: 400, violation: true, message: 'a Honeycomb header was sent to Loki' }
          : null,
    });
  }
}

// ---------- Jaeger: OTLP/gRPC ----------

const raw = (b) => b;
const TRACE_SERVICE = {
  Export: {
    path: GRPC_PATH.traces,
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
    originalName: 'export',
  },
};

/**
 * Jaeger's native OTLP/gRPC receiver: a real @grpc/grpc-js server with the
 * TraceService only (metrics and logs get UNIMPLEMENTED from grpc-js).
 * Actions: ok, partial, status ({kind: 'status', code, message, retryDelayS}:
 * retryDelayS adds a google.rpc.RetryInfo in grpc-status-details-bin), stall.
 */
export class JaegerGrpcSink {
  static async start(opts = {}) {
    const s = new JaegerGrpcSink(opts);
    await s._bind(opts.port ?? 0);
    return s;
  }

  constructor(opts) {
    this.name = opts.name ?? 'jaeger';
    this.requests = [];
    this.violations = [];
    this.mode = { kind: 'ok' };
    this._once = [];
    this._stalled = new Set();
    this.isDown = false;
  }

  get endpoint() {
    return `http://127.0.0.1:${this.port}`;
  }

  behave(action) {
    this.mode = action;
  }
  once(action) {
    this._once.push(action);
  }

  _bind(port) {
    this.server = new grpc.Server();
    this.server.addService(TRACE_SERVICE, { Export: (call, cb) => this._export(call, cb) });
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(err);
        else {
          this.port = p;
          resolve();
        }
      });
    });
  }

  _export(call, cb) {
    const metadata = call.metadata.getMap();
    const rec = { signal: 'traces', metadata, items: [], outcome: null, at: Date.now() };
    this.requests.push(rec);
    try {
      rec.items = decodeOtlpProto('traces', call.request);
    } catch (e) {
      this.violations.push(`${this.name}: cannot decode the request: ${e.message}`);
      rec.outcome = 'invalid';
      cb({ code: grpc.status.INVALID_ARGUMENT, details: e.message });
      return;
    }
    if (Object.keys(metadata).some((h) => h.startsWith('x-honeycomb-'))) {
      this.violations.push(`${this.name}: a Honeycomb header was sent to Jaeger`);
    }
    const action = this._once.length ? this._once.shift() : this.mode;
    if (action.kind === 'stall') {
      rec.outcome = 'stalled';
      this._stalled.add(call);
      call.on('cancelled', () => this._stalled.delete(call));
      return;
    }
    if (action.kind === 'status') {
      rec.outcome = `grpc_${action.code}`;
      const details = action.message ?? `status ${action.code} on demand`;
      const err = { code: action.code, details };
      if (action.retryDelayS !== undefined) {
        // google.rpc.Status {code, message, details: [Any {type_url, value: RetryInfo {retry_delay: Duration}}]}
        const retryInfo = pb.msg(1, pb.varint(1, action.retryDelayS));
        const any = pb.msg(3, pb.string(1, 'type.googleapis.com/google.rpc.RetryInfo'), pb.bytes(2, retryInfo));
        err.metadata = new grpc.Metadata();
        err.metadata.set('grpc-status-details-bin', Buffer.concat([pb.varint(1, action.code), pb.string(2, details), any]));
      }
      cb(err);
      return;
    }
    if (action.kind === 'partial') {
      rec.outcome = 'partial';
      rec.rejected = action.rejected;
      cb(null, partialSuccessProto(action.rejected, action.message ?? 'rejected on demand'));
      return;
    }
    rec.outcome = 'ok';
    cb(null, Buffer.alloc(0));
  }

  /** Shut the server down hard (open calls are cancelled; clients then get connection refused). */
  async down() {
    if (this.isDown) return;
    this.isDown = true;
    this.server.forceShutdown();
    this._stalled.clear();
  }

  /** A new server on the same port. */
  async up() {
    if (!this.isDown) return;
    await this._bind(this.port);
    this.isDown = false;
  }

  async stop() {
    await this.down();
  }

  delivered(signal = 'traces') {
    const out = [];
    for (const r of this.requests) {
      if (r.signal === signal && (r.outcome === 'ok' || r.outcome === 'partial')) {
        for (const it of r.items) out.push({ ...it, request: r });
      }
    }
    return out;
  }

  attempts(signal = 'traces') {
    return this.requests.filter((r) => r.signal === signal);
  }
}

// The harness' poll, for the tests that import it from here with the sinks.
export { waitFor } from './gateway.js';

// ---------- client side: SDK data and exports for the tests that use these sinks ----------

/**
 * n finished SDK spans of `service`, in traces of up to 10 spans (a root and
 * its children), each with a sequence attribute and `padBytes` of padding
 * (to make requests a known size).
 */
export async function makeSpans(service, n, { padBytes = 0, run = '' } = {}) {
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'e2e.run': run }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
  });
  const tracer = provider.getTracer('e2e-sinks', '1.0.0');
  let root = null;
  for (let i = 0; i < n; i++) {
    const attributes = { 'e2e.seq': i };
    if (padBytes > 0) attributes['e2e.pad'] = 'p'.repeat(padBytes);
    if (i % 10 === 0) {
      if (root) root.end();
      root = tracer.startSpan(`${service} root ${i}`, { kind: SpanKind.SERVER, attributes });
      continue;
    }
    tracer.startSpan(`${service} op ${i}`, { attributes }, trace.setSpan(ROOT_CONTEXT, root)).end();
  }
  if (root) root.end();
  await provider.forceFlush();
  const spans = mem.getFinishedSpans();
  await provider.shutdown();
  if (spans.length !== n) throw new Error(`makeSpans: ${spans.length} spans, wanted ${n}`);
  return spans;
}

/** exporter.export(items) as a promise of its ExportResult ({code, error}). */
export function exportOnce(exporter, items) {
  return new Promise((resolve) => exporter.export(items, resolve));
}

/**
 * Export traces (a list of span lists) in requests of about `per` spans, a
 * trace's spans never straddling two requests; throws on a failed export.
 */
export async function exportAll(exporter, traceList, per = 600) {
  let batch = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const r = await exportOnce(exporter, batch);
    if (r.code !== 0) throw new Error(`export failed: ${String(r.error?.stack || r.error)}`);
    batch = [];
  };
  for (const spans of traceList) {
    if (batch.length > 0 && batch.length + spans.length > per) await flush();
    batch.push(...spans);
  }
  await flush();
}

/** spanId -> {traceId, name} of SDK spans (what a sink must receive). */
export function sdkSpanMap(spans) {
  return new Map(spans.map((s) => [s.spanContext().spanId, { traceId: s.spanContext().traceId, name: s.name }]));
}

/** spanId -> {traceId, name} of delivered span records (throws on a duplicate span id). */
export function deliveredSpanMap(items) {
  const m = new Map();
  for (const it of items) {
    if (m.has(it.spanId)) throw new Error(`span ${it.spanId} (${it.name}) delivered more than once`);
    m.set(it.spanId, { traceId: it.traceId, name: it.name });
  }
  return m;
}
