// A strict fake Elasticsearch for the `elasticsearch` exporter: POST /_bulk
// only, NDJSON only, `create` actions only, into data streams named the way
// Elastic's otel mapping mode names them, with every document checked for
// the fields and types its stream needs. What a real cluster would refuse,
// this refuses too and records as a violation (tests expect none); what it
// accepts it keeps, so tests can check that every item arrived exactly once.
//
//   const es = await EsSink.start({ auth: { apiKey: 'k' } });   // or { basic: {user, password} }, or null
//   es.once({ status: 503 });                                 // the next request: a whole-request error
//   es.rule({ match: (doc) => ..., status: 429, times: 1 });  // per document: 429 for its first attempt
//   es.rule({ match: ..., status: 400, type: 'mapper_parsing_exception', reason: '...' }); // always
//   es.accepted('traces')   // documents created, each {index, doc, action}
//   es.requests             // every request: {at, status, headers, items: [{index, doc, status}]}
//   es.violations           // strictness failures
//   await es.down(); ... await es.up();                        // nothing listening meanwhile; same port
//
// Requests must ask for require_data_stream=true (what keeps a cluster
// without the OpenTelemetry templates from creating plain indices); other
// query parameters than it and filter_path are violations.
//
// Metric documents are time series: one with the same stream, timestamp,
// dimensions, unit and _metric_names_hash as one already stored gets 409, as
// a time series data stream answers a duplicate. A metric document may hold
// several metrics; its _metric_names_hash must be Elastic's: XXH64 of the
// metric names, sorted and concatenated, in hex (computed here with an
// implementation of its own).

import zlib from 'node:zlib';

import { LoopbackHttpServer } from './sinks.js';

const NAME_FORBIDDEN = /[\\/*?"<>| ,#:A-Z]/; // and '-' in a dataset: it separates the parts of the name
const RFC3339_NS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
const HEX = (n) => new RegExp(`^[0-9a-f]{${n}}$`);
const KINDS = new Set(['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer']);
const STATUS_CODES = new Set(['Unset', 'Ok', 'Error']);
const TEMPLATES = new Set(['gauge_long', 'gauge_double', 'counter_long', 'counter_double', 'histogram', 'summary']);

// Fields each stream's documents may carry (beyond these: a violation).
const COMMON_FIELDS = ['@timestamp', 'data_stream', 'resource', 'scope', 'attributes', 'dropped_attributes_count'];
const FIELDS = {
  traces: [...COMMON_FIELDS, 'trace_id', 'span_id', 'trace_state', 'parent_span_id', 'name', 'kind', 'duration',
    'dropped_events_count', 'links', 'dropped_links_count', 'status'],
  logs: [...COMMON_FIELDS, 'observed_timestamp', 'severity_text', 'severity_number', 'trace_id', 'span_id',
    'event_name', 'body'],
  metrics: [...COMMON_FIELDS, 'start_timestamp', 'unit', 'metrics', '_doc_count', '_metric_names_hash'],
};
const REQUIRED = {
  traces: ['@timestamp', 'data_stream', 'resource', 'scope', 'trace_id', 'span_id', 'kind', 'duration', 'status', 'links'],
  logs: ['@timestamp', 'data_stream', 'resource', 'scope'],
  metrics: ['@timestamp', 'data_stream', 'resource', 'scope', 'metrics', '_metric_names_hash'],
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v) => Number.isInteger(v) && v >= 0;

// XXH64, seed 0, from its specification (BigInt arithmetic mod 2^64).
const M64 = (1n << 64n) - 1n;
const XP = [0x9e3779b185ebca87n, 0xc2b2ae3d27d4eb4fn, 0x165667b19e3779f9n, 0x85ebca77c2b2ae63n, 0x27d4eb2f165667c5n];
const rotl = (x, r) => ((x << BigInt(r)) | (x >> BigInt(64 - r))) & M64;
const xround = (acc, lane) => (rotl((acc + lane * XP[1]) & M64, 31) * XP[0]) & M64;
const xmerge = (h, v) => (((h ^ xround(0n, v)) * XP[0]) + XP[3]) & M64;

/** XXH64 (seed 0) of a Buffer, as a BigInt. */
export function xxh64(b) {
  const n = b.length;
  let p = 0;
  let h;
  if (n >= 32) {
    const v = [(XP[0] + XP[1]) & M64, XP[1], 0n, (0n - XP[0]) & M64];
    for (; n - p >= 32; p += 32) for (let i = 0; i < 4; i++) v[i] = xround(v[i], b.readBigUInt64LE(p + 8 * i));
    h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M64;
    for (const x of v) h = xmerge(h, x);
  } else {
    h = XP[4];
  }
  h = (h + BigInt(n)) & M64;
  for (; n - p >= 8; p += 8) h = (rotl(h ^ xround(0n, b.readBigUInt64LE(p)), 27) * XP[0] + XP[3]) & M64;
  if (n - p >= 4) {
    h = (rotl(h ^ ((BigInt(b.readUInt32LE(p)) * XP[0]) & M64), 23) * XP[1] + XP[2]) & M64;
    p += 4;
  }
  for (; p < n; p++) h = (rotl(h ^ ((BigInt(b[p]) * XP[4]) & M64), 11) * XP[0]) & M64;
  h = ((h ^ (h >> 33n)) * XP[1]) & M64;
  h = ((h ^ (h >> 29n)) * XP[2]) & M64;
  return h ^ (h >> 32n);
}

/** Elastic's _metric_names_hash of a document's metric names. */
export function metricNamesHash(names) {
  const sorted = names.map((x) => Buffer.from(x)).sort(Buffer.compare);
  return xxh64(Buffer.concat(sorted)).toString(16);
}

/** The parts of a data stream name, or null when it is not `<type>-<dataset>.otel-<namespace>`. */
export function parseIndex(index) {
  const m = /^(traces|logs|metrics)-([^-]+)-(.+)$/.exec(index);
  if (!m || !m[2].endsWith('.otel')) return null;
  const [, type, dataset, namespace] = m;
  const bad = (s) => s.length === 0 || Buffer.byteLength(s) > 100 || NAME_FORBIDDEN.test(s) || s.startsWith('.');
  if (bad(dataset) || dataset === '.otel' || bad(namespace)) return null;
  return { type, dataset, namespace };
}

/** Problems with one document of stream `ds` (strings; [] when fine). */
export function checkDocument(ds, doc, action) {
  const p = [];
  const type = ds.type;
  for (const k of Object.keys(doc)) if (!FIELDS[type].includes(k)) p.push(`unexpected field "${k}" in a ${type} document`);
  for (const k of REQUIRED[type]) if (!(k in doc)) p.push(`missing "${k}" in a ${type} document`);
  const str = (k, v = doc[k]) => v === undefined || typeof v === 'string' || p.push(`"${k}" is not a string`);
  const count = (k, v = doc[k]) => v === undefined || isCount(v) || p.push(`"${k}" is not a non-negative integer`);
  // metric times are epoch milliseconds (a number), the others RFC 3339 with nanoseconds
  const time = (k) => doc[k] === undefined || (type === 'metrics' ? isCount(doc[k]) : RFC3339_NS.test(doc[k])) ||
    p.push(`"${k}" is not ${type === 'metrics' ? 'epoch milliseconds' : 'RFC 3339 with ns'}: ${doc[k]}`);
  const hex = (k, n, v = doc[k]) => v === undefined || HEX(n).test(v) || p.push(`"${k}" is not ${n} hex digits: ${v}`);
  const obj = (k, v = doc[k]) => v === undefined || isObject(v) || p.push(`"${k}" is not an object`);
  time('@timestamp');
  if (!isObject(doc.data_stream) || doc.data_stream.type !== ds.type || doc.data_stream.dataset !== ds.dataset ||
      doc.data_stream.namespace !== ds.namespace) {
    p.push(`data_stream ${JSON.stringify(doc.data_stream)} does not match the index`);
  }
  obj('attributes');
  count('dropped_attributes_count');
  for (const k of ['resource', 'scope']) {
    obj(k);
    if (isObject(doc[k])) {
      obj(`${k}.attributes`, doc[k].attributes);
      str(`${k}.schema_url`, doc[k].schema_url);
      count(`${k}.dropped_attributes_count`, doc[k].dropped_attributes_count);
    }
  }
  str('scope.name', doc.scope?.name);
  str('scope.version', doc.scope?.version);
  if (type === 'traces') {
    hex('trace_id', 32);
    hex('span_id', 16);
    hex('parent_span_id', 16);
    str('trace_state');
    str('name');
    if (!KINDS.has(doc.kind)) p.push(`kind "${doc.kind}" is not one of Elastic's span kinds`);
    count('duration');
    count('dropped_events_count');
    count('dropped_links_count');
    if (!isObject(doc.status) || !STATUS_CODES.has(doc.status.code)) p.push(`bad status ${JSON.stringify(doc.status)}`);
    else str('status.message', doc.status.message);
    if (!Array.isArray(doc.links)) p.push('"links" is not an array');
    for (const l of doc.links ?? []) {
      hex('links[].trace_id', 32, l.trace_id);
      hex('links[].span_id', 16, l.span_id);
      str('links[].trace_state', l.trace_state);
      obj('links[].attributes', l.attributes);
    }
  } else if (type === 'logs') {
    time('observed_timestamp');
    str('severity_text');
    if (doc.severity_number !== undefined && !(Number.isInteger(doc.severity_number) && doc.severity_number >= 1 &&
        doc.severity_number <= 24)) {
      p.push(`severity_number ${doc.severity_number} out of range`);
    }
    hex('trace_id', 32);
    hex('span_id', 16);
    str('event_name');
    if (doc.body !== undefined) {
      const keys = isObject(doc.body) ? Object.keys(doc.body) : [];
      const b = doc.body;
      if (keys.length !== 1 || !['text', 'structured'].includes(keys[0])) p.push(`bad body ${JSON.stringify(b)}`);
      else if (keys[0] === 'text') ['string', 'number', 'boolean'].includes(typeof b.text) || p.push('body.text is not a scalar');
      else if (!isObject(b.structured) && !(Array.isArray(b.structured) && b.structured.every(isObject))) {
        p.push('body.structured is neither an object nor an array of objects');
      }
    }
  } else {
    time('start_timestamp');
    str('unit');
    str('_metric_names_hash');
    count('_doc_count');
    const names = isObject(doc.metrics) ? Object.keys(doc.metrics) : [];
    if (names.length === 0) p.push('a metric document without metrics');
    else if (doc._metric_names_hash !== metricNamesHash(names)) {
      p.push(`_metric_names_hash ${doc._metric_names_hash} is not that of ${JSON.stringify(names)} (${metricNamesHash(names)})`);
    }
    const templates = action.dynamic_templates ?? {};
    for (const name of names) {
      const v = doc.metrics[name];
      const t = templates[`metrics.${name}`];
      if (!TEMPLATES.has(t)) p.push(`no dynamic template for metrics.${name} (${t})`);
      if (typeof v === 'number') {
        if (!t?.startsWith('gauge_') && !t?.startsWith('counter_')) p.push(`number under a ${t} template`);
      } else if (t === 'histogram') {
        const ok = isObject(v) && Array.isArray(v.counts) && Array.isArray(v.values) && v.counts.length === v.values.length &&
          v.counts.every(isCount) && v.values.every((x, i) => typeof x === 'number' && (i === 0 || x > v.values[i - 1]));
        if (!ok) p.push(`bad histogram ${JSON.stringify(v)}`);
      } else if (t === 'summary') {
        if (!isObject(v) || typeof v.sum !== 'number' || !isCount(v.value_count)) p.push(`bad summary ${JSON.stringify(v)}`);
      } else {
        p.push(`metric value ${JSON.stringify(v)} does not fit template ${t}`);
      }
    }
    for (const k of Object.keys(templates)) if (!names.some((n) => k === `metrics.${n}`)) p.push(`stray dynamic template ${k}`);
  }
  if (type !== 'metrics' && action.dynamic_templates !== undefined) p.push(`dynamic_templates on a ${type} document`);
  return p;
}

/** Keep only the parts of a bulk reply filter_path asks for ("errors", "items.*.status", ...). */
function filterReply(reply, filterPath) {
  if (!filterPath) return reply;
  const paths = filterPath.split(',');
  const out = {};
  if (paths.includes('took')) out.took = reply.took;
  if (paths.includes('errors')) out.errors = reply.errors;
  const itemPaths = paths.filter((x) => x.startsWith('items.*.')).map((x) => x.slice('items.*.'.length).split('.'));
  if (itemPaths.length) {
    out.items = reply.items.map((it) => {
      const [action, body] = Object.entries(it)[0];
      const kept = {};
      for (const path of itemPaths) {
        let src = body;
        let dst = kept;
        for (let i = 0; i < path.length && src !== undefined; i++) {
          if (i === path.length - 1) {
            if (src[path[i]] !== undefined) dst[path[i]] = src[path[i]];
          } else {
            src = src[path[i]];
            if (src !== undefined) dst = dst[path[i]] ??= {};
          }
        }
      }
      return { [action]: kept };
    });
  }
  return out;
}

export class EsSink extends LoopbackHttpServer {
  constructor(opts) {
    super({ ...opts, name: opts.name ?? 'elasticsearch' });
    this.auth = opts.auth ?? null;
    this.stored = []; // {index, type, doc, action}
    this._series = new Set();
    this._seen = new Map(); // document text -> attempts
    this._rules = [];
  }

  // once(action), inherited: the whole-request answer for the next request, {status, type, reason}.

  /** Per document: {match(doc, action, index), status, type, reason, times (undefined: always)}. */
  rule(r) {
    this._rules.push({ ...r, hits: 0 });
  }

  clearRules() {
    this._rules = [];
  }

  /** Documents created in streams of `type` (traces | logs | metrics). */
  accepted(type) {
    return this.stored.filter((d) => d.type === type);
  }

  _send(res, rec, status, body) {
    rec.status = status;
    const text = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': text.length });
    res.end(text);
  }

  _error(res, rec, status, type, reason, violation) {
    if (violation) this._violation(reason);
    this._send(res, rec, status, { error: { root_cause: [{ type, reason }], type, reason }, status });
  }

  _checkAuth(header) {
    if (!this.auth) return header === undefined ? null : 'an Authorization header was sent to a cluster without security';
    const want = this.auth.apiKey
      ? `ApiKey ${this.auth.apiKey}`
      : `Basic ${Buffer.from(`${this.auth.basic.user}:${this.auth.basic.password}`).toString('base64')}`;
    return header === want ? null : `Authorization ${header === undefined ? 'missing' : `"${header}"`}, want "${want}"`;
  }

  _exchange(req, res, raw) {
    const url = new URL(req.url, 'http://x');
    const rec = { at: Date.now(), method: req.method, path: url.pathname, query: url.search, headers: { ...req.headers }, items: [], status: 0 };
    this.requests.push(rec);
    if (req.method !== 'POST' || url.pathname !== '/_bulk') {
      return this._error(res, rec, 404, 'no_handler_found_exception', `no handler for ${req.method} ${url.pathname}`, true);
    }
    for (const k of url.searchParams.keys()) {
      if (k !== 'require_data_stream' && k !== 'filter_path') {
        return this._error(res, rec, 400, 'illegal_argument_exception', `request contains unrecognized parameter: [${k}]`, true);
      }
    }
    if (url.searchParams.get('require_data_stream') !== 'true') {
      return this._error(res, rec, 400, 'illegal_argument_exception', 'require_data_stream=true is missing: documents could create plain indices', true);
    }
    const authProblem = this._checkAuth(req.headers.authorization);
    if (authProblem) return this._error(res, rec, 401, 'security_exception', authProblem, true);
    const ctype = (req.headers['content-type'] || '').split(';')[0].trim();
    if (ctype !== 'application/x-ndjson') {
      return this._error(res, rec, 406, 'media_type_header_exception', `content-type "${ctype}" is not application/x-ndjson`, true);
    }
    let text;
    try {
      const enc = req.headers['content-encoding'];
      rec.encoding = enc ?? 'identity';
      text = (enc === 'gzip' ? zlib.gunzipSync(raw) : enc === undefined ? raw : null)?.toString('utf8');
      if (text === undefined) throw new Error(`unsupported content-encoding ${enc}`);
    } catch (e) {
      return this._error(res, rec, 400, 'parse_exception', e.message, true);
    }
    if (!text.endsWith('\n')) return this._error(res, rec, 400, 'illegal_argument_exception', 'the bulk body must end with a newline', true);
    const lines = text.slice(0, -1).split('\n');
    if (lines.length % 2 !== 0) return this._error(res, rec, 400, 'illegal_argument_exception', 'an action without a document', true);
    const pairs = [];
    for (let i = 0; i < lines.length; i += 2) {
      let action;
      let doc;
      try {
        action = JSON.parse(lines[i]);
        doc = JSON.parse(lines[i + 1]);
      } catch (e) {
        return this._error(res, rec, 400, 'x_content_parse_exception', `line ${i + 1}: ${e.message}`, true);
      }
      const keys = isObject(action) ? Object.keys(action) : [];
      if (keys.length !== 1 || keys[0] !== 'create' || !isObject(action.create)) {
        return this._error(res, rec, 400, 'illegal_argument_exception', `line ${i + 1}: only create actions: ${lines[i]}`, true);
      }
      const meta = action.create;
      for (const k of Object.keys(meta)) {
        if (k !== '_index' && k !== 'dynamic_templates') {
          return this._error(res, rec, 400, 'illegal_argument_exception', `line ${i + 1}: unexpected ${k} in the action`, true);
        }
      }
      const ds = typeof meta._index === 'string' ? parseIndex(meta._index) : null;
      if (!ds) return this._error(res, rec, 400, 'invalid_index_name_exception', `line ${i + 1}: bad _index ${meta._index}`, true);
      if (!isObject(doc)) return this._error(res, rec, 400, 'illegal_argument_exception', `line ${i + 2}: not an object`, true);
      pairs.push({ action: meta, doc, ds, text: lines[i + 1] });
    }
    if (pairs.length === 0) return this._error(res, rec, 400, 'action_request_validation_exception', 'no requests added', true);
    const whole = this._once.shift();
    if (whole) {
      rec.items = pairs.map((x) => ({ index: x.action._index, doc: x.doc, status: whole.status }));
      return this._error(res, rec, whole.status, whole.type ?? 'status_exception', whole.reason ?? `status ${whole.status} on demand`, false);
    }
    const items = pairs.map((x) => this._item(x, rec));
    const reply = { took: 1, errors: items.some((it) => it.create.status >= 300), items };
    return this._send(res, rec, 200, filterReply(reply, url.searchParams.get('filter_path')));
  }

  _item({ action, doc, ds, text }, rec) {
    const attempt = (this._seen.get(text) ?? 0) + 1;
    this._seen.set(text, attempt);
    const base = { _index: action._index };
    const answer = (status, type, reason) => {
      rec.items.push({ index: action._index, doc, status, attempt });
      return { create: type ? { ...base, status, error: { type, reason } } : { ...base, _id: `id${this.stored.length}`, result: 'created', status } };
    };
    const problems = checkDocument(ds, doc, action);
    if (problems.length) {
      for (const p of problems) this._violation(`${action._index}: ${p}`);
      return answer(400, 'document_parsing_exception', problems[0]);
    }
    for (const r of this._rules) {
      if ((r.times === undefined || attempt <= r.times) && r.match(doc, action, ds)) {
        r.hits++;
        return answer(r.status, r.type ?? (r.status === 429 ? 'es_rejected_execution_exception' : 'mapper_parsing_exception'),
          r.reason ?? `status ${r.status} on demand`);
      }
    }
    if (ds.type === 'metrics') {
      const { '@timestamp': ts, attributes, resource, scope, unit, _metric_names_hash: h } = doc;
      const key = JSON.stringify([action._index, ts, attributes ?? {}, resource, scope, unit, h]);
      if (this._series.has(key)) return answer(409, 'version_conflict_engine_exception', 'document already exists');
      this._series.add(key);
    }
    this.stored.push({ index: action._index, type: ds.type, doc, action });
    return answer(201);
  }
}
