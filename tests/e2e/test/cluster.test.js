// Cluster mode end to end (docs/cluster.md): real gateways behind Debian's
// HAProxy (TCP, round-robin per connection, send-proxy-v2, health checks on
// /readyz), the OpenTelemetry JS SDK sending traces whose spans come from
// several services over many connections, so every trace reaches several
// instances. Checked on the instances' file backends: a kept trace is complete
// in exactly one instance's file (its owner's, computed here from ring.c's
// hash), no span of a dropped trace is anywhere; the same while a member
// stops gracefully and another joins; after a SIGKILL the traces the dead
// member did not own are complete and the fragments are counted. The peer
// listener refuses callers without the cluster secret, a normal listener
// ignores a forged tenant header, and members_dns follows a DNS server.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  CM,
  Cluster,
  DnsServer,
  PIPELINE,
  SECRET,
  assertTraces,
  checkTraces,
  memberKey,
  probabilisticKeeps,
  ringOwner,
  spansByTrace,
  until,
} from '../lib/cluster.js';
import { Gateway, freePort, httpRequest, sleep } from '../lib/gateway.js';
import { makePki } from '../lib/pki.js';
import { makeTraces, planRequests, sendSpread } from '../lib/spread.js';
import { GRPC, GRPC_PATH, grpcFrame, grpcRaw, randomHex, traceRequestProto } from '../lib/wire.js';

const ALWAYS = '[{name: all, type: always_sample}]';
const HEALTH_PATH = '/otlp_gateway.cluster.v1.Peer/Health';

/** Name of the member that owns trace `id` among the given members. */
const ownerName = (members, id) => members[ringOwner(members.map((m) => m.peerAddr), id)].name;

/** The owner's name must be the one file a kept trace is in. */
function assertOwners(found, sent, members, keep = () => true) {
  const wrong = [];
  for (const id of sent.keys()) {
    if (!keep(id)) continue;
    const where = [...(found.byTrace.get(id)?.keys() ?? [])];
    const want = ownerName(members, id);
    if (where.length !== 1 || where[0] !== want) wrong.push(`${id}: in [${where}], owner ${want}`);
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} traces not (only) in their owner's file`);
}

describe('cluster: the ring in JS is ring.c', () => {
  it('agrees with the fixed vectors of tests/unit/test_ring.c', () => {
    // test_order_and_agreement: members 127.0.0.1:4319 and 127.0.0.2:4319,
    // trace id 15 zero bytes then b, owners for b = 0..7.
    const ab = ['127.0.0.1:4319', '127.0.0.2:4319'];
    const ba = [...ab].reverse();
    const expect = [0, 0, 1, 0, 0, 0, 1, 1];
    for (let b = 0; b < 8; b++) {
      const id = Buffer.alloc(16);
      id[15] = b;
      assert.equal(ringOwner(ab, id), expect[b], `trace ...0${b}`);
      assert.equal(ba[ringOwner(ba, id)], ab[expect[b]], 'owner independent of member order');
    }
    assert.equal(typeof memberKey('a:1'), 'bigint');
  });
});

describe('cluster: 3 members, always_sample', () => {
  let c;
  before(async () => {
    c = await Cluster.start({ slots: 3, policies: ALWAYS });
  });
  after(async () => c?.stop());

  it('every trace arrives complete in exactly one file, its owner', async () => {
    const set = makeTraces({ count: 240, services: 5, perService: 1, seed: 0xc1a0 });
    const stats = await sendSpread(c, planRequests(set, { wave: 40, perRequest: 10 }));
    assert.deepEqual(stats.retried, [], 'no export may fail');
    await c.waitQuiet();
    const found = c.readTraces();
    assertTraces(checkTraces(set.sent, found, () => true), 'always_sample');
    assertOwners(found, set.sent, c.members);

    // Spans reached the wrong instance about 2/3 of the time and were forwarded.
    const total = [...set.sent.values()].reduce((n, s) => n + s.length, 0);
    const fwd = await c.sum(CM.forwardedSpans);
    const recv = await c.sum(CM.received, { pipeline: PIPELINE });
    assert.equal(recv, fwd, 'spans forwarded = spans received from peers');
    assert.ok(fwd > 0.5 * total && fwd < 0.8 * total, `forwarded ${fwd} of ${total} spans, expected about 2/3`);
    for (const m of c.members) assert.ok((await m.gw.metricSum(CM.forwardedSpans)) > 0, `${m.name} forwarded nothing`);
    assert.ok((await c.sum(CM.forwardedBytes)) > 0);
    assert.equal(await c.sum(CM.fragments, { pipeline: PIPELINE }), 0, 'no fragments in a healthy cluster');
    assert.deepEqual(await c.each(CM.members), { gw1: 3, gw2: 3, gw3: 3 });

    const page = await c.statusPage(0);
    assert.match(page, /cluster:/);
    for (const m of c.members) assert.ok(page.includes(m.peerAddr), `status page lacks ${m.peerAddr}:\n${page}`);
  });
});

describe('cluster: 3 members, probabilistic 10%', () => {
  let c;
  before(async () => {
    c = await Cluster.start({ slots: 3, policies: '[{name: some, type: probabilistic, sampling_percentage: 10}]' });
  });
  after(async () => c?.stop());

  it('every kept trace is complete in its owner file; no dropped trace leaks a span', async () => {
    const set = makeTraces({ count: 600, services: 4, perService: 1, seed: 0xc1a1 });
    const stats = await sendSpread(c, planRequests(set, { wave: 60, perRequest: 12 }));
    assert.deepEqual(stats.retried, []);
    await c.waitQuiet();
    const found = c.readTraces();
    const keep = (id) => probabilisticKeeps(id, 10);
    const res = checkTraces(set.sent, found, keep);
    assertTraces(res, 'probabilistic 10%');
    // binomial(600, 0.1): sd 7.3; the ids are seeded, so this is fixed per run.
    assert.ok(res.kept >= 35 && res.kept <= 85, `kept ${res.kept} of 600`);
    assertOwners(found, set.sent, c.members, keep);
  });
});

describe('cluster: a member stops gracefully and another joins, mid-run', () => {
  let c;
  before(async () => {
    // Four slots (HAProxy lists four servers); gw4 starts later.
    c = await Cluster.start({ slots: 4, running: 3, policies: ALWAYS, decisionWait: '4s' });
  });
  after(async () => c?.stop());

  it('100% completeness', async () => {
    const set = makeTraces({ count: 320, services: 4, perService: 2, seed: 0xc1a2 });
    let stopping;
    const stats = await sendSpread(c, planRequests(set, { wave: 40, perRequest: 10 }), {
      between: async (wave) => {
        if (wave === 2) {
          await c.startMember(3);
          await c.waitMembers(4);
          await c.waitBalancer();
        }
        if (wave === 5) stopping = c.stopMember(1); // drains while waves 5..7 are sent
      },
    });
    await stopping;
    await c.waitBalancer();
    await c.waitMembers(3);
    await c.waitQuiet();
    const found = c.readTraces();
    const res = checkTraces(set.sent, found, () => true);
    // A request retried after a connection error may have landed twice.
    res.problems = res.problems.filter((p) => ![...stats.retriedSpanIds].some((s) => p.startsWith(`span ${s} `)));
    assertTraces(res, `graceful stop + join (${stats.retried.length} retried requests)`);
    const handedOff = await c.sum(CM.handoff, { pipeline: PIPELINE });
    assert.ok(handedOff > 0, 'the members handed undecided traces to the newcomer');
    // The stopped member left before it stopped serving, handed what it held
    // to the new owners in time, and nothing anywhere was decided as a fragment.
    const log = c.gone[0].log();
    assert.match(log, /cluster: leaving/);
    const moved = [...log.matchAll(/traces handed to their owners.* moved=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(moved > 0, 'gw2 handed its undecided traces over');
    assert.doesNotMatch(log, /handoff timed out|deciding spans of another member/);
    assert.equal(await c.sum(CM.fragments, { pipeline: PIPELINE }), 0, 'no fragments in a graceful change');
  });
});

describe('cluster: a member is killed (SIGKILL)', () => {
  let c;
  before(async () => {
    c = await Cluster.start({ slots: 3, policies: ALWAYS, decisionWait: '3s' });
  });
  after(async () => c?.stop());

  it('traces the dead member did not own are complete; fragments are counted', async () => {
    const set = makeTraces({ count: 300, services: 4, perService: 1, seed: 0xc1a3 });
    const members = c.members;
    const owner = new Map([...set.sent.keys()].map((id) => [id, ownerName(members, id)]));
    const plan = planRequests(set, { wave: 300, perRequest: 10 });
    // Phase 1: the root and first child of every trace. Then, with nothing
    // left in any forward queue, gw3 is killed, and phase 2 sends the rest,
    // spans of gw3's traces first, while the others still count gw3 as live.
    const phase1 = plan.filter((r) => r.service <= 1);
    const rest = plan.filter((r) => !phase1.includes(r)).flatMap((r) => r.spans);
    const ofGw3 = (s) => owner.get(s.spanContext().traceId) === 'gw3';
    const phase2 = [...rest.filter(ofGw3), ...rest.filter((s) => !ofGw3(s))];
    const chunks = [];
    for (let i = 0; i < phase2.length; i += 5) chunks.push({ wave: 0, spans: phase2.slice(i, i + 5) });

    const s1 = await sendSpread(c, phase1);
    assert.deepEqual(s1.retried, []);
    await c.until('forward queues empty', async () => (await c.sum(CM.queueBytes)) === 0);
    await c.killMember(2);
    const s2 = await sendSpread(c, chunks, { concurrency: 8 });
    await c.waitBalancer();
    await c.waitMembers(2);
    await c.waitQuiet();

    const found = c.readTraces();
    const res = checkTraces(set.sent, found, (id) => (owner.get(id) === 'gw3' ? null : true));
    res.problems = res.problems.filter((p) => ![...s2.retriedSpanIds].some((s) => p.startsWith(`span ${s} `)));
    assertTraces(res, `after SIGKILL, traces owned by gw1/gw2 (${s2.retried.length} retried requests)`);
    assert.ok(res.kept > 150, `only ${res.kept} traces were not gw3's`);
    const fragments = await c.sum(CM.fragments, { pipeline: PIPELINE });
    assert.ok(fragments > 0, 'spans of gw3 traces that could not reach it were decided as counted fragments');
    assert.equal(await c.members[0].gw.metricSum(CM.peerUp, { peer: c.members[2].peerAddr }), 0, 'gw1 sees gw3 down');
  });
});

describe('cluster: the peer listener', () => {
  let c;
  before(async () => {
    c = await Cluster.start({
      slots: 2,
      policies: ALWAYS,
      decisionWait: '1s',
      listenerExtra: '    auth: none\n    tenant: acme',
      extraYaml: 'tenants:\n  - {id: acme, endpoints: [lb]}\n  - {id: evil, endpoints: [lb]}',
      pipelineExtra: ', resource: [{action: upsert, key: tenant.id, from: tenant}]',
    });
  });
  after(async () => c?.stop());

  /** A span whose trace member `i` owns, so a call to its peer listener keeps it there. */
  const spanOwnedBy = (i, name) => {
    for (;;) {
      const s = { traceId: randomHex(16), spanId: randomHex(8), name };
      if (ownerName(c.members, s.traceId) === c.members[i].name) return s;
    }
  };
  const peerPort = (i) => Number(c.members[i].peerAddr.split(':')[1]);
  const peerCall = (i, path, msg, headers) => grpcRaw(peerPort(i), path, grpcFrame(msg), { headers });

  it('refuses calls without the cluster secret, and a forged tenant from anyone but a peer', async () => {
    const refusedBefore = await c.sum(CM.peerRefused);
    const bad = spanOwnedBy(0, 'unauthenticated');
    const msg = traceRequestProto('e2e-peer', [bad]);
    const hdr = { 'x-otlp-gateway-tenant': 'evil', 'x-otlp-gateway-pipeline': PIPELINE, 'x-otlp-gateway-peer': c.members[1].peerAddr };
    const none = await peerCall(0, GRPC_PATH.traces, msg, hdr);
    assert.equal(none.status, GRPC.UNAUTHENTICATED, `no secret: ${JSON.stringify(none.message)}`);
    const wrong = await peerCall(0, GRPC_PATH.traces, msg, { ...hdr, authorization: `Bearer ${SECRET}x` });
    assert.equal(wrong.status, GRPC.UNAUTHENTICATED, 'wrong secret');
    const notBearer = await peerCall(0, GRPC_PATH.traces, msg, { ...hdr, authorization: SECRET });
    assert.equal(notBearer.status, GRPC.UNAUTHENTICATED, 'secret without Bearer');
    const health = await peerCall(0, HEALTH_PATH, Buffer.alloc(0), {});
    assert.equal(health.status, GRPC.UNAUTHENTICATED, 'health without the secret');
    const healthOk = await peerCall(0, HEALTH_PATH, Buffer.alloc(0), { authorization: `Bearer ${SECRET}` });
    assert.equal(healthOk.status, GRPC.OK, `health with the secret: ${healthOk.message}`);
    const metricsPath = await peerCall(0, GRPC_PATH.metrics, Buffer.alloc(0), { authorization: `Bearer ${SECRET}` });
    assert.notEqual(metricsPath.status, GRPC.OK, 'the peer listener serves trace forwarding and health only');
    assert.equal((await c.sum(CM.peerRefused)) - refusedBefore, 4);
    assert.ok((await c.members[0].gw.metricSum(CM.peerRefused, { reason: 'missing_token' })) >= 2);
    assert.ok((await c.members[0].gw.metricSum(CM.peerRefused, { reason: 'invalid_token' })) >= 1);

    // A real peer (the secret) is accepted, with the tenant it names.
    const good = spanOwnedBy(0, 'from-peer');
    const ok = await peerCall(0, GRPC_PATH.traces, traceRequestProto('e2e-peer', [good]), {
      ...hdr,
      authorization: `Bearer ${SECRET}`,
    });
    assert.equal(ok.status, GRPC.OK, `authenticated peer: ${ok.message}`);

    // The OTLP listener (through HAProxy) ignores the cluster headers, even with the secret.
    const forged = { ...hdr, authorization: `Bearer ${SECRET}` };
    const viaGrpc = spanOwnedBy(1, 'forged-grpc');
    const g = await grpcRaw(c.grpcPort, GRPC_PATH.traces, grpcFrame(traceRequestProto('e2e-forged', [viaGrpc])), {
      headers: forged,
    });
    assert.equal(g.status, GRPC.OK, g.message);
    const viaHttp = spanOwnedBy(0, 'forged-http');
    const h = await httpRequest({
      port: c.httpPort,
      method: 'POST',
      path: '/v1/traces',
      headers: { ...forged, 'content-type': 'application/x-protobuf' },
      body: traceRequestProto('e2e-forged', [viaHttp]),
    });
    assert.equal(h.status, 200, h.body.toString());

    await c.until('the accepted spans are written', () => {
      const f = c.readTraces();
      return [good, viaGrpc, viaHttp].every((s) => f.byTrace.has(s.traceId));
    });
    await c.waitQuiet();
    const found = c.readTraces();
    assert.ok(!found.byTrace.has(bad.traceId), 'a refused call wrote nothing');
    const tenantOf = (s) => found.resources.get(s.spanId)?.['tenant.id'];
    // (Resource edits run on the member that received the client's request,
    // before forwarding; the owner writes forwarded spans as they came.)
    assert.ok(found.byTrace.get(good.traceId)?.get('gw1')?.has(good.spanId), 'the authenticated peer call was written');
    assert.equal(tenantOf(viaGrpc), 'acme', 'gRPC listener: the listener tenant, not the header');
    assert.equal(tenantOf(viaHttp), 'acme', 'HTTP listener: the listener tenant, not the header');
  });
});

describe('cluster: mutual TLS between members; a member draining', () => {
  let c;
  let pki;
  let other;
  before(async () => {
    // The cluster CA signs the one member certificate (SAN 127.0.0.1, no
    // extendedKeyUsage: server and client); `other` is a CA nobody trusts.
    pki = makePki(fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-cluster-pki-')));
    other = makePki(fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-cluster-other-')));
    const f = (n) => path.join(pki.dir, n);
    c = await Cluster.start({
      slots: 2,
      policies: ALWAYS,
      decisionWait: '1s',
      secret: null, // mutual TLS is the only peer authentication
      tls: { cert: f('a.crt'), key: f('a.key'), ca: f('ca.crt') },
      healthInterval: '1s', // a drain lasts two intervals: long enough to watch
    });
  });
  after(async () => {
    try {
      await c?.stop();
    } finally {
      for (const p of [pki, other]) if (p) fs.rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('members forward over TLS; the peer listener refuses callers without a cluster CA certificate', async () => {
    const set = makeTraces({ count: 80, services: 4, seed: 0xc1a6 });
    assert.deepEqual((await sendSpread(c, planRequests(set, { wave: 40 }))).retried, []);
    await c.waitQuiet();
    const found = c.readTraces();
    assertTraces(checkTraces(set.sent, found, () => true), 'mutual TLS');
    assertOwners(found, set.sent, c.members);
    assert.ok((await c.sum(CM.forwardedSpans)) > 0, 'spans were forwarded over TLS');

    const port = Number(c.members[0].peerAddr.split(':')[1]);
    const read = (p, n) => fs.readFileSync(path.join(p.dir, n));
    const call = (tls) => grpcRaw(port, HEALTH_PATH, grpcFrame(Buffer.alloc(0)), { tls, timeoutMs: 5000 }).catch((e) => e);
    const member = await call({ ca: pki.ca, cert: read(pki, 'a.crt'), key: read(pki, 'a.key') });
    assert.equal(member.status, GRPC.OK, `a member's certificate: ${member.message ?? member}`);
    const noCert = await call({ ca: pki.ca });
    assert.ok(noCert instanceof Error || noCert.status !== GRPC.OK, 'no client certificate must be refused');
    const foreign = await call({ ca: pki.ca, cert: other.client.cert, key: other.client.key });
    assert.ok(foreign instanceof Error || foreign.status !== GRPC.OK, "another CA's certificate must be refused");
    const plain = await grpcRaw(port, HEALTH_PATH, grpcFrame(Buffer.alloc(0)), { timeoutMs: 5000 }).catch((e) => e);
    assert.ok(plain instanceof Error || plain.status !== GRPC.OK, 'plaintext h2c must be refused');
  });

  it('a stopping member answers /readyz 503 and health "draining" until it exits; its peer drops it at once', async () => {
    const gw2 = c.members[1].gw;
    const peer2 = c.members[1].peerAddr;
    const stopped = c.stopMember(1);
    const seen = { readyz: new Set(), draining: 0, page: false };
    while (!gw2.exit) {
      const r = await httpRequest({ port: gw2.adminPort, path: '/readyz', timeoutMs: 1000 }).catch(() => null);
      if (r) seen.readyz.add(r.status);
      if (r?.status === 503) {
        seen.draining = Math.max(seen.draining, await gw2.metricSum(CM.draining).catch(() => 0));
        seen.page ||= /self \S+ draining/.test((await c.statusPage(1).catch(() => '')) ?? '');
      }
      await sleep(20);
    }
    await stopped;
    assert.ok(seen.readyz.has(503), `/readyz while draining answered ${[...seen.readyz]}`);
    assert.equal(seen.draining, 1, `${CM.draining} while draining`);
    assert.ok(seen.page, 'the status page says draining');
    // gw1 learnt it from gw2's health answer, not from failed checks.
    assert.match(c.members[0].gw.log(), new RegExp(`peer=${peer2.replace(/[.[\]]/g, '\\$&')} state=draining`));
    await c.waitMembers(1);
  });
});

describe('cluster: a full forward queue is backpressure; unsampled signals stay local', () => {
  // One real gateway and a fake member that answers health checks but holds
  // every Export call open, so the forward queue for it fills and stays full.
  let gw, fake;
  const calls = [];
  const sessions = new Set();
  const self = () => `127.0.0.1:${gw.peerPort}`;
  before(async () => {
    fake = http2.createServer();
    fake.on('session', (s) => sessions.add(s.on('close', () => sessions.delete(s))));
    fake.on('stream', (stream, h) => {
      stream.on('data', () => {});
      if (h[':path'] !== HEALTH_PATH) return calls.push({ path: h[':path'], pipeline: h['x-otlp-gateway-pipeline'] });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(Buffer.alloc(0)));
    });
    await new Promise((r) => fake.listen(0, '127.0.0.1', r));
    const fakeAddr = `127.0.0.1:${fake.address().port}`;
    const peerPort = await freePort();
    gw = await Gateway.start({
      config: (w) => `workers: 1
admin: 127.0.0.1:${w.adminPort}
listeners:
  - {name: lb, grpc: 127.0.0.1:${w.grpcPort}, http: 127.0.0.1:${w.httpPort}, auth: none}
backends: {local: {type: file, dir: ${w.dataDir}}}
sampling: {tail: {decision_wait: 1s, policies: ${ALWAYS}}}
pipelines:
  - {name: ${PIPELINE}, signals: [traces], backends: [local], sampling: tail}
  - {name: rest, signals: [metrics, logs], backends: [local]}
cluster:
  advertise: 127.0.0.1:${peerPort}
  listen: 127.0.0.1:${peerPort}
  members: [127.0.0.1:${peerPort}, ${fakeAddr}]
  secret: "${SECRET}"
  forward: {queue_bytes: 8KiB, batch_bytes: 2KiB, flush: 5ms, timeout: 60s, give_up: 60s}
  health: {interval: 200ms, failures: 2}
  handoff_timeout: 1s
`,
    });
    gw.peerPort = peerPort;
    gw.fakeAddr = fakeAddr;
    await until('the fake member is live', async () => (await gw.metricSum(CM.members)) === 2, 10_000);
  });
  after(async () => {
    for (const s of sessions) s.destroy(); // the held calls fail: their spans are decided here
    try {
      await gw?.stop();
    } finally {
      await new Promise((r) => fake.close(r));
    }
  });

  /** A span of a new trace owned by `who` (0: the gateway, 1: the fake member). */
  const spanOf = (who, name) => {
    for (;;) {
      const s = { traceId: randomHex(16), spanId: randomHex(8), name };
      if (ringOwner([self(), gw.fakeAddr], s.traceId) === who) return s;
    }
  };
  const post = (spans) =>
    httpRequest({
      port: gw.httpPort,
      method: 'POST',
      path: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf' },
      body: traceRequestProto('e2e-backpressure', spans),
    });

  it('clients get 503 / UNAVAILABLE, none of a refused request is kept; metrics and logs are never forwarded', async () => {
    // Requests of one span of the fake member's, all of one size, until one
    // does not fit: from then on none of that size does.
    const statuses = [];
    for (let i = 0; i < 1000 && statuses.at(-1) !== 503; i++) statuses.push((await post([spanOf(1, 'theirs')])).status);
    assert.equal(statuses.at(-1), 503, `the queue for the stuck member never filled: ${statuses}`);
    assert.ok(statuses[0] === 200, 'the first requests fit in the queue');
    assert.ok((await gw.metricSum(CM.queueBytes)) > 0);

    const mine = spanOf(0, 'refused-mine');
    const refused = await post([mine, spanOf(1, 'theirs')]);
    assert.equal(refused.status, 503, 'a request holding spans for the full queue');
    assert.ok(Number(refused.headers['retry-after']) >= 1, 'Retry-After on the 503');
    const g = await grpcRaw(gw.grpcPort, GRPC_PATH.traces, grpcFrame(traceRequestProto('e2e-backpressure', [spanOf(1, 'theirs')])));
    assert.equal(g.status, GRPC.UNAVAILABLE, `gRPC: ${g.message}`);
    const kept = spanOf(0, 'kept-mine');
    assert.equal((await post([kept])).status, 200, 'spans this member owns are not held back by another member');

    const now = `${Date.now()}000000`;
    const json = (p, body) =>
      httpRequest({ port: gw.httpPort, method: 'POST', path: p, headers: { 'content-type': 'application/json' }, body });
    const m = await json('/v1/metrics', JSON.stringify({ resourceMetrics: [{ scopeMetrics: [{ metrics: [
      { name: 'e2e.backpressure', gauge: { dataPoints: [{ asInt: '1', timeUnixNano: now }] } }] }] }] }));
    assert.equal(m.status, 200, m.body.toString());
    const l = await json('/v1/logs', JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [
      { timeUnixNano: now, body: { stringValue: 'e2e backpressure log' } }] }] }] }));
    assert.equal(l.status, 200, l.body.toString());

    await until('the owned span is decided and written', () => spansByTrace([['gw', gw]]).byTrace.has(kept.traceId), 15_000);
    await sleep(1_500); // a decision_wait more: the refused request's own span would be written by now
    assert.ok(!spansByTrace([['gw', gw]]).byTrace.has(mine.traceId), 'no span of a refused request was kept');
    assert.ok(gw.readSignal('metrics').length > 0 && gw.readSignal('logs').length > 0, 'metrics and logs written here');
    assert.ok(calls.length > 0, 'the stuck member was sent spans');
    assert.deepEqual(new Set(calls.map((c) => `${c.path} ${c.pipeline}`)), new Set([`${GRPC_PATH.traces} ${PIPELINE}`]));
  });
});

describe('cluster: members from DNS (A and AAAA records)', () => {
  let c;
  let dns;
  before(async () => {
    dns = await DnsServer.start('gateways.cluster.test', ['127.0.0.11', '127.0.0.12']);
    // The third member is on ::1: it is only in the name's AAAA record.
    const hosts = ['127.0.0.11', '127.0.0.12', '[::1]'];
    c = await Cluster.start({ slots: 3, running: 2, policies: ALWAYS, dns, dnsInterval: '200ms', hosts });
  });
  after(async () => {
    try {
      await c?.stop();
    } finally {
      await dns?.stop();
    }
  });

  it('a new record joins the ring, a removed one leaves it', async () => {
    assert.deepEqual(await c.each(CM.members), { gw1: 2, gw2: 2 });
    assert.ok(dns.queries > 0);
    assert.equal(c.members[2].peerAddr.split(']')[0], '[::1');
    await c.startMember(2); // [::1]: running, but not in DNS yet
    const changes = await c.members[0].gw.metricSum(CM.ringChanges);
    dns.set(['127.0.0.11', '127.0.0.12', '::1']); // two A records and an AAAA record
    await c.waitMembers(3);
    assert.ok((await c.members[0].gw.metricSum(CM.ringChanges)) > changes);
    const page = await c.statusPage(0);
    assert.ok(page.includes(c.members[2].peerAddr), `status page lacks the new member:\n${page}`);

    // Traffic now reaches the newcomer's share.
    const set = makeTraces({ count: 60, services: 3, seed: 0xc1a5 });
    assert.deepEqual((await sendSpread(c, planRequests(set, { wave: 60 }))).retried, []);
    await c.waitQuiet();
    const found = c.readTraces();
    assertTraces(checkTraces(set.sent, found, () => true), 'after the DNS join');
    assertOwners(found, set.sent, c.members);

    dns.set(['127.0.0.11', '127.0.0.12']);
    await c.waitMembers(2, ['gw1', 'gw2']);
    const after = await c.statusPage(0);
    assert.ok(!after.includes(c.members[2].peerAddr), `the removed member is still listed:\n${after}`);
  });
});
