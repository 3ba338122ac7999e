// Traces made with the OpenTelemetry JS SDK whose spans come from several
// services, sent so that the spans of one trace travel over several
// connections (one connection per request, through a load balancer that
// spreads connections), as the spans of a real distributed trace reach a
// gateway fleet from different agents.
//
//   const set = makeTraces({ count: 200, services: 5, seed: 1, error: (i) => i % 3 === 0 });
//   const stats = await sendSpread({ grpcPort, httpPort }, planRequests(set, { perRequest: 10 }));

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { sleep } from './gateway.js';
import { RUN_ID, SeededIds } from './sdkdata.js';

/**
 * `count` traces; trace i has a root span in service 0 and, in each other
 * service s, `perService` spans that are children of the root. error(i):
 * the root span gets status ERROR. Ids come from SeededIds(seed), so owners
 * and probabilistic decisions are the same in every run.
 * Returns {traces: [{id, index, error, byService: [[ReadableSpan]]}], sent: Map(id -> [spanId])}.
 */
export function makeTraces({ count, services = 4, perService = 1, seed, error = () => false, prefix = 'cluster' }) {
  const ids = new SeededIds(seed);
  const providers = [];
  for (let s = 0; s < services; s++) {
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': `${prefix}-svc-${s}`, 'e2e.run': RUN_ID }),
      spanProcessors: [new SimpleSpanProcessor(mem)],
      idGenerator: ids,
    });
    providers.push({ mem, tracer: provider.getTracer('e2e-cluster') });
  }
  const sec = Math.floor(Date.now() / 1000) - 60;
  const at = (ms) => [sec + Math.floor(ms / 1000), (ms % 1000) * 1_000_000];
  const traces = [];
  for (let i = 0; i < count; i++) {
    const root = providers[0].tracer.startSpan(`root ${i}`, { root: true, kind: SpanKind.SERVER, startTime: at(0) });
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    for (let s = 1; s < services; s++)
      for (let k = 0; k < perService; k++) {
        const c = providers[s].tracer.startSpan(`work ${s}.${k}`, { kind: SpanKind.INTERNAL, startTime: at(1 + k) }, ctx);
        c.end(at(2 + k));
      }
    const err = Boolean(error(i));
    if (err) root.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    root.end(at(50));
    traces.push({ id: root.spanContext().traceId, index: i, error: err, byService: [] });
  }
  const byId = new Map(traces.map((t) => [t.id, t]));
  providers.forEach(({ mem }, s) => {
    for (const t of traces) t.byService[s] = [];
    for (const span of mem.getFinishedSpans()) byId.get(span.spanContext().traceId).byService[s].push(span);
  });
  const sent = new Map(traces.map((t) => [t.id, t.byService.flat().map((sp) => sp.spanContext().spanId)]));
  return { traces, sent };
}

/**
 * Requests (arrays of spans of one service) in sending order: traces in
 * waves of `wave`; within a wave, service by service, at most `perRequest`
 * spans per request. With round-robin over connections, consecutive
 * requests land on different instances, so each trace touches several.
 * Returns [{wave, service, spans}].
 */
export function planRequests({ traces }, { wave = 40, perRequest = 10 } = {}) {
  const out = [];
  for (let w = 0; w * wave < traces.length; w++) {
    const group = traces.slice(w * wave, (w + 1) * wave);
    for (let s = 0; s < group[0].byService.length; s++) {
      const spans = group.flatMap((t) => t.byService[s]);
      for (let k = 0; k < spans.length; k += perRequest) out.push({ wave: w, service: s, spans: spans.slice(k, k + perRequest) });
    }
  }
  return out;
}

/** One span per request (so per connection), a wave at a time: all spans of a trace within one wave. */
export function planOnePerRequest({ traces }, { wave = 40 } = {}) {
  const out = [];
  for (let w = 0; w * wave < traces.length; w++) {
    const group = traces.slice(w * wave, (w + 1) * wave);
    const services = group[0].byService.length;
    for (let s = 0; s < services; s++)
      for (const t of group) for (const sp of t.byService[s]) out.push({ wave: w, spans: [sp] });
  }
  return out;
}

let connSeq = 0;

/**
 * Export one request over a connection of its own: OTLP/HTTP protobuf
 * without keep-alive, or OTLP/gRPC through a new exporter (a distinct user
 * agent makes grpc-js open a new channel instead of reusing a pooled one).
 */
async function exportOnce({ grpcPort, httpPort }, spans, useGrpc) {
  const exporter = useGrpc
    ? new GrpcExporter({ url: `http://127.0.0.1:${grpcPort}`, timeoutMillis: 10_000, userAgent: `e2e-conn-${++connSeq}` })
    : new ProtoExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces`, timeoutMillis: 10_000, keepAlive: false });
  try {
    return await new Promise((resolve) => exporter.export(spans, resolve));
  } finally {
    await exporter.shutdown();
  }
}

/**
 * Send the requests (see planRequests), wave after wave, `concurrency` at a
 * time; every `grpcEvery`-th request over gRPC, the others over HTTP. A failed
 * export is retried (as an agent would) up to `attempts` times; callers that
 * expect no failure check stats.retried. between(wave): awaited before each
 * wave (e.g. to stop a member mid-run).
 * Resolves {requests, retried: [{spans, error}], retriedSpanIds: Set, ms}.
 */
export async function sendSpread(target, requests, { concurrency = 8, grpcEvery = 3, attempts = 5, between } = {}) {
  const t0 = Date.now();
  const retried = [];
  const waves = [...new Set(requests.map((r) => r.wave))];
  let n = 0;
  for (const w of waves) {
    if (between) await between(w);
    const queue = requests.filter((r) => r.wave === w).map((r) => ({ ...r, grpc: n++ % grpcEvery === 0 }));
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        for (let a = 1; ; a++) {
          const res = await exportOnce(target, r.spans, r.grpc);
          if (res.code === ExportResultCode.SUCCESS) break;
          const error = String(res.error?.message ?? res.error);
          retried.push({ spans: r.spans, error, grpc: r.grpc });
          if (a >= attempts) throw new Error(`export failed ${a} times: ${error}`);
          await sleep(100 * a);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
  const retriedSpanIds = new Set(retried.flatMap((r) => r.spans.map((s) => s.spanContext().spanId)));
  return { requests: requests.length, retried, retriedSpanIds, ms: Date.now() - t0 };
}
