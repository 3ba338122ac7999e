// Cluster harness: N real gateways configured as one cluster (docs/cluster.md),
// each with a `file` backend in its own temp dir and a tail-sampled traces
// pipeline, behind Debian's HAProxy in TCP mode (round-robin per connection,
// send-proxy-v2, health checks on each gateway's admin /readyz), like an AWS
// NLB. Also: a tiny DNS server for `members_dns`, the ring's owner function
// (routing/ring.c) in JS, and readers that group what every instance wrote by
// trace id.
//
//   const c = await Cluster.start({ slots: 4, running: 3, policies: '[{name: all, type: always_sample}]' });
//   ... send to c.grpcPort / c.httpPort (HAProxy) ...
//   await c.startMember(3); await c.stopMember(1); await c.killMember(2);
//   await c.waitQuiet(); const found = c.readTraces();
//   await c.stop();

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { Gateway, freePort, httpRequest, metricSum, parsePrometheus, sleep } from './gateway.js';
import { Haproxy, statsSocket } from './haproxy.js';

export const PIPELINE = 'sampled';
export const SECRET = 'e2e-cluster-secret-0123456789';

// The cluster's metric names (docs/cluster.md), in one place.
export const CM = {
  members: 'otlp_gateway_cluster_members',
  ringChanges: 'otlp_gateway_cluster_ring_changes_total',
  draining: 'otlp_gateway_cluster_draining',
  received: 'otlp_gateway_cluster_received_spans_total',
  fragments: 'otlp_gateway_cluster_fragment_traces_total',
  handoff: 'otlp_gateway_cluster_handoff_traces_total',
  forwardedSpans: 'otlp_gateway_cluster_forwarded_spans_total',
  forwardedBytes: 'otlp_gateway_cluster_forwarded_bytes_total',
  forwardFailures: 'otlp_gateway_cluster_forward_failures_total',
  queueBytes: 'otlp_gateway_cluster_forward_queue_bytes',
  returned: 'otlp_gateway_cluster_returned_spans_total',
  peerUp: 'otlp_gateway_cluster_peer_up',
  peerRefused: 'otlp_gateway_cluster_peer_refused_total',
  inFlight: 'otlp_gateway_sampler_traces_in_flight',
};

// ---- the ring (routing/ring.c, core/hash.h), for computing owners in tests ----

const MASK64 = (1n << 64n) - 1n;

/** FNV-1a 64 over bytes (core/hash.h hash_fnv1a). */
export function fnv1a64(bytes, h = 0xcbf29ce484222325n) {
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & MASK64;
  return h;
}

/** murmur3's fmix64 (core/hash.h hash_mix64). */
export function mix64(h) {
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  return h;
}

const idBytes = (id) => (typeof id === 'string' ? Buffer.from(id, 'hex') : id);

/** The hash both the ring and the probabilistic policy take of a trace id (hex or bytes). */
export const traceHash = (id) => mix64(fnv1a64(idBytes(id)));

/** ring_member_key: the member's weight key from its advertised address. */
export const memberKey = (addr) => mix64(fnv1a64(Buffer.from(addr, 'utf8')));

/** ring_owner: index in `members` (addresses) of the owner of trace `id`. */
export function ringOwner(members, id) {
  const keys = members.map(memberKey);
  const t = traceHash(id);
  let best = 0;
  let bestW = 0n;
  keys.forEach((k, i) => {
    const w = mix64(k ^ t);
    if (i === 0 || w > bestW || (w === bestW && k > keys[best])) {
      best = i;
      bestW = w;
    }
  });
  return best;
}

/**
 * The probabilistic policy's threshold, as the Collector computes it (and
 * routing/sampler_policy.c sp_prob_threshold): (2^64 - 1) x pct/100 rounded
 * to 64 significant bits (ties to even), then truncated.
 */
export function probThreshold(pct) {
  const ratio = pct / 100;
  if (!(ratio > 0)) return 0n;
  if (ratio >= 1) return MASK64;
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, ratio);
  const bits = dv.getBigUint64(0);
  const exp = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  if (exp !== 0) mant |= 1n << 52n;
  const e = exp === 0 ? -1074 : exp - 1075; // ratio = mant * 2^e
  let x = MASK64 * mant;
  const n = x.toString(2).length;
  if (n > 64) {
    const drop = BigInt(n - 64);
    let keep = x >> drop;
    const rem = x & ((1n << drop) - 1n);
    const half = 1n << (drop - 1n);
    if (rem > half || (rem === half && (keep & 1n) === 1n)) keep += 1n;
    x = keep << drop;
  }
  return e < 0 ? x >> BigInt(-e) : x << BigInt(e);
}

/** Does `probabilistic: pct` (with hash_salt `salt`) keep this trace? FNV-1a 64 over the salt then the id, at most the threshold. */
export const probabilisticKeeps = (id, pct, salt = 'default-hash-seed') =>
  fnv1a64(idBytes(id), fnv1a64(Buffer.from(salt, 'utf8'))) <= probThreshold(pct);

// ---- a DNS server for members_dns ----

/**
 * Answers A and AAAA queries for one name from a list of IPv4 and IPv6
 * addresses the test changes (set()): A the IPv4 ones, AAAA the IPv6 ones;
 * any other name: NXDOMAIN. UDP on 127.0.0.1.
 */
export class DnsServer {
  static async start(name, addrs = []) {
    const d = new DnsServer();
    d.name = name.toLowerCase().replace(/\.$/, '');
    d.addrs = [...addrs];
    d.queries = 0;
    d.sock = dgram.createSocket('udp4');
    d.sock.on('message', (msg, rinfo) => {
      const reply = d._answer(msg);
      if (reply) d.sock.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise((resolve, reject) => {
      d.sock.once('error', reject);
      d.sock.bind(0, '127.0.0.1', resolve);
    });
    d.port = d.sock.address().port;
    return d;
  }

  get addr() {
    return `127.0.0.1:${this.port}`;
  }

  set(addrs) {
    this.addrs = [...addrs];
  }

  _answer(q) {
    if (q.length < 12 || q.readUInt16BE(4) !== 1) return null; // one question, as every resolver sends
    let pos = 12;
    const labels = [];
    while (pos < q.length && q[pos] !== 0) {
      const n = q[pos];
      if (n > 63 || pos + 1 + n > q.length) return null;
      labels.push(q.subarray(pos + 1, pos + 1 + n).toString('latin1'));
      pos += 1 + n;
    }
    if (pos + 5 > q.length) return null;
    const question = q.subarray(12, pos + 5);
    const qtype = q.readUInt16BE(pos + 1);
    this.queries++;
    const known = labels.join('.').toLowerCase() === this.name;
    const v6 = qtype === 28;
    const answers = known && (qtype === 1 || v6) ? this.addrs.filter((a) => net.isIPv6(a) === v6) : [];
    const head = Buffer.alloc(12);
    head.writeUInt16BE(q.readUInt16BE(0), 0); // id
    // QR, AA, the query's RD, RA; rcode NXDOMAIN (3) for other names.
    head.writeUInt16BE(0x8000 | 0x0400 | (q.readUInt16BE(2) & 0x0100) | 0x0080 | (known ? 0 : 3), 2);
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(answers.length, 6);
    const rrs = answers.map((a) => {
      const ip = v6 ? ipv6Bytes(a) : Buffer.from(a.split('.').map(Number));
      const rr = Buffer.alloc(12 + ip.length);
      rr.writeUInt16BE(0xc00c, 0); // the question's name
      rr.writeUInt16BE(qtype, 2); // A or AAAA
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(1, 6); // TTL 1 s
      rr.writeUInt16BE(ip.length, 10);
      ip.copy(rr, 12);
      return rr;
    });
    return Buffer.concat([head, question, ...rrs]);
  }

  stop() {
    return new Promise((r) => this.sock.close(r));
  }
}

/** The 16 bytes of an IPv6 address in text ("::1", "fd00::5"). */
function ipv6Bytes(a) {
  const [head, tail = ''] = a.split('::');
  const groups = (x) => (x ? x.split(':') : []);
  const h = groups(head);
  const t = a.includes('::') ? groups(tail) : [];
  const all = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 2 * i));
  return b;
}

// ---- the cluster ----

/** A free TCP port on every one of `hosts` (loopback addresses). */
async function freePortOn(hosts) {
  for (;;) {
    const p = await freePort();
    let ok = true;
    for (const h of hosts.slice(1)) {
      ok = await new Promise((resolve) => {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen({ host: h.replace(/^\[(.*)\]$/, '$1'), port: p, exclusive: true }, () => s.close(() => resolve(true)));
      });
      if (!ok) break;
    }
    if (ok) return p;
  }
}

/**
 * One member's YAML. m: {adminPort, grpcPort, httpPort, peerAddr, peerHost}; o: the cluster options.
 */
function memberYaml(m, o, dataDir) {
  const membership = o.dns
    ? [`  members_dns: ${o.dns.name}:${o.peerPort}`, `  dns_server: ${o.dns.addr}`, `  dns_interval: ${o.dnsInterval}`]
    : [`  members: [${o.peerAddrs.join(', ')}]`];
  return [
    `workers: ${o.workers}`,
    `admin: 127.0.0.1:${m.adminPort}`,
    'listeners:',
    '  - name: lb',
    `    grpc: 127.0.0.1:${m.grpcPort}`,
    `    http: 127.0.0.1:${m.httpPort}`,
    '    proxy_protocol: true',
    '    max_request_bytes: 4MiB',
    ...(o.listenerExtra ? [o.listenerExtra] : ['    auth: none']),
    'backends:',
    `  local: {type: file, dir: ${dataDir}}`,
    'sampling:',
    '  tail:',
    `    decision_wait: ${o.decisionWait}`,
    `    policies: ${o.policies}`,
    'pipelines:',
    `  - {name: ${PIPELINE}, signals: [traces], backends: [local], sampling: tail${o.pipelineExtra ?? ''}}`,
    '  - {name: rest, signals: [metrics, logs], backends: [local]}',
    ...(o.extraYaml ? [o.extraYaml] : []),
    'cluster:',
    `  advertise: "${m.peerAddr}"`, // quoted: "[::1]:p" is no flow sequence
    `  listen: "${m.peerAddr}"`,
    ...membership,
    ...(o.secret ? [`  secret: "${o.secret}"`] : []),
    ...(o.tls ? [`  tls: {cert: ${o.tls.cert}, key: ${o.tls.key}, ca: ${o.tls.ca}}`] : []),
    `  forward: {flush: 5ms, give_up: ${o.giveUp}}`,
    `  health: {interval: ${o.healthInterval}, failures: ${o.healthFailures}}`,
    `  handoff_timeout: ${o.handoffTimeout}`,
    '',
  ].join('\n');
}

/** HAProxy in front of the members: one frontend for OTLP/gRPC, one for OTLP/HTTP. */
export function haproxyCfg(dir, members, grpcPort, httpPort) {
  const servers = (port) =>
    members.map((m) => `  server ${m.name} 127.0.0.1:${m[port]} send-proxy-v2 check port ${m.adminPort}`);
  return [
    'global',
    '  maxconn 4096',
    statsSocket(dir),
    'defaults',
    '  mode tcp',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    // A connection to a member that just went away is retried on another.
    '  retries 3',
    '  option redispatch 1',
    '  default-server inter 100ms downinter 100ms rise 1 fall 1',
    'listen otlp_grpc',
    `  bind 127.0.0.1:${grpcPort}`,
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    ...servers('grpcPort'),
    'listen otlp_http',
    `  bind 127.0.0.1:${httpPort}`,
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    ...servers('httpPort'),
    '',
  ].join('\n');
}

export class Cluster {
  /**
   * slots: members known to the cluster and to HAProxy (3); running: how many
   * start now (slots); policies: the sampling policies as a YAML flow sequence;
   * decisionWait ('3s'); dns: a DnsServer (members_dns instead of a static list;
   * each member then gets its own loopback address, hosts[i], by default
   * 127.0.0.(11+i); "[::1]" for an AAAA record); secret (null: none);
   * tls: {cert, key, ca} files for mutual TLS between members;
   * healthInterval ('200ms'), healthFailures (2), giveUp ('1s'),
   * handoffTimeout ('5s'), dnsInterval ('200ms'), workers (2);
   * listenerExtra / extraYaml / pipelineExtra: more YAML for the OTLP
   * listener, the top level and the pipeline's flow mapping.
   */
  static async start(opts = {}) {
    const c = new Cluster();
    const o = {
      slots: 3,
      policies: '[{name: all, type: always_sample}]',
      decisionWait: '3s',
      secret: SECRET,
      healthInterval: '200ms',
      healthFailures: 2,
      giveUp: '1s',
      handoffTimeout: '5s',
      dnsInterval: '200ms',
      workers: 2,
      ...opts,
    };
    o.running ??= o.slots;
    c.opts = o;
    const hosts = Array.from({ length: o.slots }, (_, i) => (o.dns ? (o.hosts?.[i] ?? `127.0.0.${11 + i}`) : '127.0.0.1'));
    if (o.dns) o.peerPort = await freePortOn(hosts);
    const used = new Set();
    const port = async () => {
      let p;
      do p = await freePort();
      while (used.has(p));
      used.add(p);
      return p;
    };
    c.members = [];
    for (let i = 0; i < o.slots; i++) {
      const peerPort = o.dns ? o.peerPort : await port();
      c.members.push({
        index: i,
        name: `gw${i + 1}`,
        peerAddr: `${hosts[i]}:${peerPort}`,
        ports: { grpcPort: await port(), httpPort: await port(), adminPort: await port() },
        gw: null,
      });
    }
    for (const m of c.members) Object.assign(m, m.ports);
    o.peerAddrs = c.members.map((m) => m.peerAddr);
    c.gone = []; // stopped or killed Gateways, still readable
    try {
      c.grpcPort = await port();
      c.httpPort = await port();
      c.haproxy = await Haproxy.start({
        config: (dir) => haproxyCfg(dir, c.members, c.grpcPort, c.httpPort),
        ports: [c.grpcPort, c.httpPort],
      });
      await Promise.all(c.members.slice(0, o.running).map((m) => c.startMember(m.index)));
      await c.waitMembers(o.running);
      await c.waitBalancer();
    } catch (e) {
      await c.stop().catch(() => {});
      throw e;
    }
    return c;
  }

  get running() {
    return this.members.filter((m) => m.gw && !m.gw.exit);
  }

  /** Start member i (its slot's ports and address) and wait for its /readyz. */
  async startMember(i) {
    const m = this.members[i];
    assert.ok(!m.gw || m.gw.exit, `${m.name} is already running`);
    m.gw = await Gateway.start({
      ports: m.ports,
      config: ({ dataDir }) => memberYaml(m, this.opts, dataDir),
    });
    m.gw.member = m;
    return m.gw;
  }

  /** SIGTERM member i and wait for its exit (code 0 required); its files stay readable. */
  async stopMember(i) {
    const m = this.members[i];
    const gw = m.gw;
    this.gone.push(gw);
    try {
      await gw.stop({ keepDir: true });
    } catch (e) {
      this.keepDirs = true; // its log stays for whoever reads the failure
      throw e;
    }
    return gw;
  }

  /** SIGKILL member i; its files stay readable. */
  async killMember(i) {
    const gw = this.members[i].gw;
    await gw.kill('SIGKILL');
    this.gone.push(gw);
    return gw;
  }

  /** Every gateway that ever ran, running or not. */
  get allGateways() {
    return [...new Set([...this.gone, ...this.members.map((m) => m.gw).filter(Boolean)])];
  }

  /** Sum of a metric over the running members (or those given). */
  async sum(name, labels = {}, gws = this.running.map((m) => m.gw)) {
    let s = 0;
    for (const gw of gws) s += await gw.metricSum(name, labels);
    return s;
  }

  /** Per running member: {name: value} of a metric. */
  async each(name, labels = {}) {
    const out = {};
    for (const m of this.running) out[m.name] = await m.gw.metricSum(name, labels);
    return out;
  }

  /** until() with the running members' logs in the error. */
  until(what, fn, timeoutMs = 15_000) {
    return until(what, fn, timeoutMs, () => this.running.map((m) => m.gw.logTail(3000)).join('\n'));
  }

  /** Wait until every running member (or those given) counts `n` live members. */
  async waitMembers(n, names, timeoutMs = 15_000) {
    await this.until(`every member sees ${n} members`, async () => {
      const got = await this.each(CM.members);
      const ok = Object.entries(got).every(([k, v]) => (names && !names.includes(k)) || v === n);
      return ok ? got : { ok: false, got };
    }, timeoutMs);
  }

  /** Wait until HAProxy sends to the running members only. */
  async waitBalancer(timeoutMs = 10_000) {
    const want = {};
    for (const m of this.members) {
      const st = m.gw && !m.gw.exit ? 'UP' : 'DOWN';
      want[`otlp_grpc/${m.name}`] = st;
      want[`otlp_http/${m.name}`] = st;
    }
    await this.haproxy.waitServers(want, timeoutMs);
  }

  /** waitQuiet over the running members; every file ever written counts for stability. */
  waitQuiet(timeoutMs = 30_000) {
    return waitQuiet(this.running.map((m) => m.gw), { timeoutMs, files: this.allGateways });
  }

  /** What every instance wrote, grouped: see spansByTrace. */
  readTraces() {
    return spansByTrace(this.allGateways.map((gw) => [gw.member?.name ?? gw.dir, gw]));
  }

  /** The status page (admin /) of a member. */
  async statusPage(i) {
    const r = await httpRequest({ port: this.members[i].adminPort, path: '/' });
    return r.body.toString('utf8');
  }

  /** Metrics of one member, parsed. */
  async metrics(i) {
    return parsePrometheus(await this.members[i].gw.metricsText());
  }

  /** Stop HAProxy (the clients' side first), then every running member (SIGTERM, in parallel; exit 0 required). */
  async stop() {
    const errors = [];
    await this.haproxy?.stop();
    await Promise.all(
      this.running.map((m) =>
        m.gw.stop({ keepDir: true }).catch((e) => errors.push(`${m.name}: ${e.message}`)),
      ),
    );
    if (process.env.E2E_KEEP_TMP !== '1' && errors.length === 0 && !this.keepDirs) {
      for (const gw of this.allGateways) await gw.removeDir();
    }
    if (errors.length) throw new Error(`cluster stop:\n${errors.join('\n')}`);
  }
}

/**
 * Poll fn() every 50 ms until it returns a truthy value other than {ok:
 * false, ...}; after timeoutMs throw with the last value and logs().
 */
export async function until(what, fn, timeoutMs = 15_000, logs = () => '') {
  const deadline = performance.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last && (typeof last !== 'object' || last.ok !== false)) return last;
    if (performance.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})\n${logs()}`);
    }
    await sleep(50);
  }
}

/**
 * Wait until nothing is in flight on `gws`: no undecided trace in the
 * sampler of `pipeline`, no forward queue holding bytes, and the traces
 * files of `files` (default gws) unchanged since the previous poll.
 */
export async function waitQuiet(gws, { pipeline = PIPELINE, timeoutMs = 30_000, files = gws } = {}) {
  let lastSize = -1;
  const sum = async (name, labels) => {
    let n = 0;
    for (const gw of gws) n += await gw.metricSum(name, labels);
    return n;
  };
  await until('quiet (sampler empty, forward queues empty)', async () => {
    const inFlight = await sum(CM.inFlight, { pipeline });
    const queued = await sum(CM.queueBytes, {});
    const size = files.reduce((n, gw) => n + fileSize(path.join(gw.dataDir, 'traces.jsonl')), 0);
    const stable = size === lastSize;
    lastSize = size;
    return inFlight === 0 && queued === 0 && stable ? true : { ok: false, inFlight, queued, size };
  }, timeoutMs, () => gws.map((gw) => gw.logTail(3000)).join('\n'));
}

function fileSize(p) {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

/**
 * Read traces.jsonl of each [name, gateway]. Returns {byTrace: Map(traceId ->
 * Map(name -> Set(spanId))), duplicates: [{traceId, spanId, where}], resources:
 * Map(spanId -> resource attributes object)}.
 */
export function spansByTrace(named) {
  const byTrace = new Map();
  const duplicates = [];
  const resources = new Map();
  for (const [name, gw] of named) {
    for (const line of gw.readSignal('traces'))
      for (const rs of line.resourceSpans ?? []) {
        const attrs = Object.fromEntries((rs.resource?.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]]));
        for (const ss of rs.scopeSpans ?? [])
          for (const sp of ss.spans ?? []) {
            if (!byTrace.has(sp.traceId)) byTrace.set(sp.traceId, new Map());
            const where = byTrace.get(sp.traceId);
            if (!where.has(name)) where.set(name, new Set());
            const set = where.get(name);
            if (set.has(sp.spanId) || [...where.values()].some((s) => s !== set && s.has(sp.spanId))) {
              duplicates.push({ traceId: sp.traceId, spanId: sp.spanId, where: name });
            }
            set.add(sp.spanId);
            resources.set(sp.spanId, attrs);
          }
      }
  }
  return { byTrace, duplicates, resources };
}

/**
 * Compare what was sent with what was written. sent: Map(traceId -> [spanId]);
 * keep(traceId) -> true (must be complete in exactly one instance's file),
 * false (no span anywhere) or null (not checked). Returns a list of problems
 * (empty when all is well) and counts.
 */
export function checkTraces(sent, found, keep) {
  const problems = [];
  let kept = 0;
  let dropped = 0;
  for (const [id, spanIds] of sent) {
    const want = keep(id);
    const where = found.byTrace.get(id) ?? new Map();
    if (want === null) continue;
    if (!want) {
      dropped++;
      const n = [...where.values()].reduce((a, s) => a + s.size, 0);
      if (n > 0) problems.push(`dropped trace ${id} leaked ${n} spans into ${[...where.keys()].join(', ')}`);
      continue;
    }
    kept++;
    if (where.size !== 1) {
      const spread = [...where].map(([k, s]) => `${k}:${s.size}`).join(' ') || 'nowhere';
      problems.push(`trace ${id} (${spanIds.length} spans) is in ${where.size} files: ${spread}`);
      continue;
    }
    const [[name, got]] = where;
    const missing = spanIds.filter((s) => !got.has(s));
    const extra = [...got].filter((s) => !spanIds.includes(s));
    if (missing.length || extra.length) {
      problems.push(`trace ${id} in ${name}: ${missing.length} of ${spanIds.length} spans missing, ${extra.length} unknown`);
    }
  }
  for (const d of found.duplicates) problems.push(`span ${d.spanId} of trace ${d.traceId} written twice (again in ${d.where})`);
  return { problems, kept, dropped };
}

/** Assert checkTraces found nothing; the message shows the first problems and the total. */
export function assertTraces(res, what) {
  if (res.problems.length === 0) return;
  const head = res.problems.slice(0, 15).join('\n  ');
  assert.fail(`${what}: ${res.problems.length} problems (kept ${res.kept}, dropped ${res.dropped}):\n  ${head}`);
}

export { metricSum };
