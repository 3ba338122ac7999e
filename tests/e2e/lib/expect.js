// What the gateway's file backend must write for SDK data, in OTLP/JSON as the
// gateway writes it (proto3 JSON mapping with the OTLP exceptions): fields in
// lowerCamelCase, trace/span ids as lowercase hex, bytes as base64, enums as
// integers, 64-bit integers as decimal strings, fields at their default value
// omitted (except members of a oneof, and present sub-messages, which are
// written even when empty).
//
// Built from the SDK's own objects (ReadableSpan, ResourceMetrics,
// ReadableLogRecord), independently of the exporters' serializers.

import { AggregationTemporality, DataPointType } from '@opentelemetry/sdk-metrics';
import { ValueType } from '@opentelemetry/api';

/** SDK HrTime [seconds, nanos] to unix nanoseconds as a decimal string. */
export function hrToNanos(hr) {
  return (BigInt(hr[0]) * 1_000_000_000n + BigInt(hr[1])).toString();
}

export function anyValue(v) {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { intValue: BigInt(v).toString() } : { doubleValue: v };
  }
  if (v instanceof Uint8Array) return { bytesValue: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return { arrayValue: v.length ? { values: v.map(anyValue) } : {} };
  if (v !== null && typeof v === 'object') {
    const values = Object.keys(v).map((k) => ({ key: k, value: anyValue(v[k]) }));
    return { kvlistValue: values.length ? { values } : {} };
  }
  return {};
}

export function keyValues(attrs = {}) {
  return Object.keys(attrs).map((key) => ({ key, value: anyValue(attrs[key]) }));
}

function setAttributes(target, attrs, dropped) {
  const kv = keyValues(attrs || {});
  if (kv.length) target.attributes = kv;
  if (dropped) target.droppedAttributesCount = dropped;
}

export function expectedResource(resource) {
  const r = {};
  setAttributes(r, resource.attributes);
  return r;
}

export function expectedScope(scope) {
  const s = {};
  if (scope.name) s.name = scope.name;
  if (scope.version) s.version = scope.version;
  if (scope.attributes) setAttributes(s, scope.attributes, scope.droppedAttributesCount);
  return s;
}

const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

function spanFlags(traceFlags, isRemote) {
  return (traceFlags & 0xff) | FLAG_HAS_IS_REMOTE | (isRemote ? FLAG_IS_REMOTE : 0);
}

export function expectedSpan(span) {
  const ctx = span.spanContext();
  const o = { traceId: ctx.traceId, spanId: ctx.spanId };
  const ts = ctx.traceState?.serialize();
  if (ts) o.traceState = ts;
  if (span.parentSpanContext?.spanId) o.parentSpanId = span.parentSpanContext.spanId;
  if (span.name) o.name = span.name;
  const kind = span.kind == null ? 0 : span.kind + 1; // API kinds are the OTLP kinds minus one
  if (kind) o.kind = kind;
  o.startTimeUnixNano = hrToNanos(span.startTime);
  o.endTimeUnixNano = hrToNanos(span.endTime);
  setAttributes(o, span.attributes, span.droppedAttributesCount);
  if (span.events.length) {
    o.events = span.events.map((e) => {
      const ev = { timeUnixNano: hrToNanos(e.time) };
      if (e.name) ev.name = e.name;
      setAttributes(ev, e.attributes, e.droppedAttributesCount);
      return ev;
    });
  }
  if (span.droppedEventsCount) o.droppedEventsCount = span.droppedEventsCount;
  if (span.links.length) {
    o.links = span.links.map((l) => {
      const lk = { traceId: l.context.traceId, spanId: l.context.spanId };
      const lts = l.context.traceState?.serialize();
      if (lts) lk.traceState = lts;
      setAttributes(lk, l.attributes, l.droppedAttributesCount);
      lk.flags = spanFlags(l.context.traceFlags, l.context.isRemote);
      return lk;
    });
  }
  if (span.droppedLinksCount) o.droppedLinksCount = span.droppedLinksCount;
  // The exporters always send a Status message; when code and message are
  // defaults it is present but empty.
  o.status = {};
  if (span.status.message) o.status.message = span.status.message;
  if (span.status.code) o.status.code = span.status.code; // API and OTLP status codes are equal
  o.flags = spanFlags(ctx.traceFlags, span.parentSpanContext?.isRemote);
  return o;
}

function otlpTemporality(t) {
  if (t === AggregationTemporality.DELTA) return 1;
  if (t === AggregationTemporality.CUMULATIVE) return 2;
  throw new Error(`unknown temporality ${t}`);
}

function numberPoint(p, valueType) {
  const o = { startTimeUnixNano: hrToNanos(p.startTime), timeUnixNano: hrToNanos(p.endTime) };
  setAttributes(o, p.attributes);
  if (valueType === ValueType.INT) o.asInt = BigInt(p.value).toString();
  else o.asDouble = p.value;
  return o;
}

function histogramPoint(p) {
  const h = p.value;
  const o = {
    startTimeUnixNano: hrToNanos(p.startTime),
    timeUnixNano: hrToNanos(p.endTime),
  };
  setAttributes(o, p.attributes);
  if (h.count) o.count = String(h.count);
  if (h.sum !== undefined) o.sum = h.sum; // proto3 optional: present even when 0
  if (h.buckets.counts.length) o.bucketCounts = h.buckets.counts.map(String);
  if (h.buckets.boundaries.length) o.explicitBounds = [...h.buckets.boundaries];
  if (h.min !== undefined) o.min = h.min;
  if (h.max !== undefined) o.max = h.max;
  return o;
}

export function expectedMetric(md) {
  const o = { name: md.descriptor.name };
  if (md.descriptor.description) o.description = md.descriptor.description;
  if (md.descriptor.unit) o.unit = md.descriptor.unit;
  switch (md.dataPointType) {
    case DataPointType.SUM:
      o.sum = {
        dataPoints: md.dataPoints.map((p) => numberPoint(p, md.descriptor.valueType)),
        aggregationTemporality: otlpTemporality(md.aggregationTemporality),
      };
      if (md.isMonotonic) o.sum.isMonotonic = true;
      break;
    case DataPointType.GAUGE:
      o.gauge = { dataPoints: md.dataPoints.map((p) => numberPoint(p, md.descriptor.valueType)) };
      break;
    case DataPointType.HISTOGRAM:
      o.histogram = {
        dataPoints: md.dataPoints.map(histogramPoint),
        aggregationTemporality: otlpTemporality(md.aggregationTemporality),
      };
      break;
    default:
      throw new Error(`expectedMetric: data point type ${md.dataPointType} not covered`);
  }
  return o;
}

export function expectedLogRecord(r) {
  const o = {
    timeUnixNano: hrToNanos(r.hrTime),
    observedTimeUnixNano: hrToNanos(r.hrTimeObserved),
  };
  if (r.severityNumber) o.severityNumber = r.severityNumber;
  if (r.severityText) o.severityText = r.severityText;
  if (r.body !== undefined) o.body = anyValue(r.body);
  setAttributes(o, r.attributes, r.droppedAttributesCount);
  if (r.spanContext?.traceFlags) o.flags = r.spanContext.traceFlags;
  if (r.spanContext?.traceId) o.traceId = r.spanContext.traceId;
  if (r.spanContext?.spanId) o.spanId = r.spanContext.spanId;
  if (r.eventName) o.eventName = r.eventName;
  return o;
}

/** The service.name string attribute of an OTLP/JSON resource, or undefined. */
export function serviceNameOf(resource) {
  const kv = (resource?.attributes || []).find((a) => a.key === 'service.name');
  return kv?.value?.stringValue;
}
