// Raw wire helpers for the bad-input tests: a tiny protobuf writer/reader for
// the few OTLP messages the tests build by hand, gRPC message framing over
// node's http2 client, and raw TCP helpers.

import crypto from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';

export const GRPC_PATH = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

export const GRPC = { OK: 0, INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, UNAVAILABLE: 14, UNAUTHENTICATED: 16 };

export function randomHex(bytes) {
  return crypto.randomBytes(bytes).toString('hex');
}

// ---- protobuf writer ----

export function varint(n) {
  let v = BigInt.asUintN(64, BigInt(n));
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

const tag = (no, wt) => varint((no << 3) | wt);

export const pb = {
  varint: (no, n) => Buffer.concat([tag(no, 0), varint(n)]),
  fixed64: (no, n) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return Buffer.concat([tag(no, 1), b]);
  },
  bytes: (no, buf) => Buffer.concat([tag(no, 2), varint(buf.length), buf]),
  string: (no, s) => pb.bytes(no, Buffer.from(s, 'utf8')),
  msg: (no, ...parts) => pb.bytes(no, Buffer.concat(parts)),
};

/**
 * A valid ExportTraceServiceRequest in protobuf with the given spans
 * ({traceId hex, spanId hex, name}) under one resource with service.name.
 */
export function traceRequestProto(service, spans) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spanMsgs = spans.map((s) =>
    pb.msg(
      2,
      pb.bytes(1, Buffer.from(s.traceId, 'hex')),
      pb.bytes(2, Buffer.from(s.spanId, 'hex')),
      pb.string(5, s.name),
      pb.varint(6, 2),
      pb.fixed64(7, now),
      pb.fixed64(8, now + 1000n),
    ),
  );
  return Buffer.concat([
    pb.msg(
      1, // resource_spans
      pb.msg(1, pb.msg(1, pb.string(1, 'service.name'), pb.msg(2, pb.string(1, service)))), // resource
      pb.msg(2, pb.msg(1, pb.string(1, 'e2e-raw')), ...spanMsgs), // scope_spans
    ),
  ]);
}

/** The same request in OTLP/JSON (an object; JSON.stringify it). */
export function traceRequestJson(service, spans) {
  const now = BigInt(Date.now()) * 1_000_000n;
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            scope: { name: 'e2e-raw' },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              name: s.name,
              kind: 2,
              startTimeUnixNano: now.toString(),
              endTimeUnixNano: (now + 1000n).toString(),
            })),
          },
        ],
      },
    ],
  };
}

export function newSpan(name) {
  return { traceId: randomHex(16), spanId: randomHex(8), name };
}

// ---- protobuf reader ----

function readVarint(buf, pos) {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [v, pos];
    shift += 7n;
    if (shift > 63n) throw new Error('varint too long');
  }
}

/** Decode a protobuf message into [{no, wt, value}] (varints as BigInt, length-delimited as Buffer). */
export function decodeFields(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const no = Number(key >> 3n);
    const wt = Number(key & 7n);
    let value;
    if (wt === 0) [value, pos] = readVarint(buf, pos);
    else if (wt === 1) {
      if (pos + 8 > buf.length) throw new Error('truncated fixed64');
      value = buf.readBigUInt64LE(pos);
      pos += 8;
    } else if (wt === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const end = pos + Number(len);
      if (end > buf.length) throw new Error('truncated length-delimited field');
      value = buf.subarray(pos, end);
      pos = end;
    } else if (wt === 5) {
      if (pos + 4 > buf.length) throw new Error('truncated fixed32');
      value = buf.readUInt32LE(pos);
      pos += 4;
    } else throw new Error(`unsupported wire type ${wt}`);
    out.push({ no, wt, value });
  }
  return out;
}

/** google.rpc.Status {1: code int32, 2: message string, 3: details}. */
export function decodeRpcStatus(buf) {
  const st = { code: 0, message: '', details: 0 };
  for (const f of decodeFields(buf)) {
    if (f.no === 1 && f.wt === 0) st.code = Number(BigInt.asIntN(32, f.value));
    else if (f.no === 2 && f.wt === 2) st.message = f.value.toString('utf8');
    else if (f.no === 3 && f.wt === 2) st.details++;
  }
  return st;
}

/** Export*ServiceResponse {1: partial_success {1: rejected int64, 2: error_message}}. */
export function decodeExportResponse(buf) {
  const res = { partialSuccess: null };
  for (const f of decodeFields(buf)) {
    if (f.no === 1 && f.wt === 2) {
      const ps = { rejected: 0n, errorMessage: '' };
      for (const g of decodeFields(f.value)) {
        if (g.no === 1 && g.wt === 0) ps.rejected = BigInt.asIntN(64, g.value);
        else if (g.no === 2 && g.wt === 2) ps.errorMessage = g.value.toString('utf8');
      }
      res.partialSuccess = ps;
    }
  }
  return res;
}

// ---- gRPC over node's http2 client ----

/** Length-prefixed gRPC message: 1 byte compressed flag, 4 bytes big-endian length. */
export function grpcFrame(msg, compressed = 0, declaredLength = msg.length) {
  const h = Buffer.alloc(5);
  h[0] = compressed;
  h.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([h, msg]);
}

/**
 * One gRPC unary call with a raw body (already framed). Resolves
 * {status (number|null), message, headers, trailers, data}. The session is
 * closed afterwards.
 */
export function grpcRaw(port, path, body, { headers = {}, timeoutMs = 10_000, chunkDelayMs = 0, tls = null } = {}) {
  return new Promise((resolve, reject) => {
    // tls: {ca, cert, key} (node tls options) for a TLS listener; else h2c.
    const client = tls ? http2.connect(`https://127.0.0.1:${port}`, tls) : http2.connect(`http://127.0.0.1:${port}`);
    let settled = false;
    const done = (err, val) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.close();
      client.destroy();
      if (err) reject(err);
      else resolve(val);
    };
    const timer = setTimeout(() => done(new Error(`gRPC ${path} timed out after ${timeoutMs} ms`)), timeoutMs);
    client.on('error', (e) => done(e));
    const req = client.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let resHeaders = {};
    let trailers = {};
    const chunks = [];
    req.on('response', (h) => {
      resHeaders = h;
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c) => chunks.push(c));
    const result = () => {
      const statusText = trailers['grpc-status'] ?? resHeaders['grpc-status'];
      const message = trailers['grpc-message'] ?? resHeaders['grpc-message'] ?? '';
      return {
        status: statusText === undefined ? null : Number(statusText),
        message: decodeURIComponentSafe(String(message)),
        headers: resHeaders,
        trailers,
        data: Buffer.concat(chunks),
        rstCode: req.rstCode,
      };
    };
    // A stream reset after the status was sent (e.g. while we were still
    // sending an oversized body) still counts as an answer.
    const onError = (e) => {
      const r = result();
      if (r.status !== null) done(null, { ...r, error: e });
      else done(e);
    };
    client.removeAllListeners('error');
    client.on('error', onError);
    req.on('error', onError);
    req.on('close', () => done(null, result()));
    if (chunkDelayMs > 0 && body.length > 1) {
      const half = Math.floor(body.length / 2);
      req.write(body.subarray(0, half));
      setTimeout(() => req.end(body.subarray(half)), chunkDelayMs);
    } else {
      req.end(body);
    }
  });
}

function decodeURIComponentSafe(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** gRPC unary Export with a protobuf message (framed here). */
export function grpcExport(port, signal, msg, opts) {
  return grpcRaw(port, GRPC_PATH[signal], grpcFrame(msg), opts);
}

/** Decode the response messages of a gRPC body (uncompressed frames). */
export function grpcMessages(data) {
  const out = [];
  let pos = 0;
  while (pos + 5 <= data.length) {
    const len = data.readUInt32BE(pos + 1);
    out.push(data.subarray(pos + 5, pos + 5 + len));
    pos += 5 + len;
  }
  return out;
}

// ---- raw TCP ----

/**
 * Connect, write `data` (optional), then wait until the server closes the
 * connection, `until(received)` (optional) is true, or `timeoutMs` passes.
 * Resolves {closedByServer, ms, received: Buffer}.
 */
export function tcpExchange(port, data, { timeoutMs = 5000, until } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const sock = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    let finished = false;
    const finish = (closedByServer) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ closedByServer, ms: Date.now() - t0, received: Buffer.concat(chunks) });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('connect', () => {
      if (data !== undefined) sock.write(data);
    });
    sock.on('data', (c) => {
      chunks.push(c);
      if (until?.(Buffer.concat(chunks))) finish(false);
    });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') finish(true);
      else if (!finished) {
        finished = true;
        clearTimeout(timer);
        reject(e);
      }
    });
  });
}

/** The HTTP/2 client connection preface. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

// ---- a recording TCP proxy ----

/**
 * A loopback TCP proxy to `targetPort` that records what clients send (up to
 * `limit` bytes per connection), so a test can look at the wire: HTTP/1.1
 * headers, or the HTTP/2 frames of a gRPC call. close() stops it and drops
 * every connection.
 */
export async function startRecordingProxy(targetPort, { limit = 4 * 1024 * 1024 } = {}) {
  const conns = [];
  const sockets = new Set();
  const server = net.createServer((client) => {
    const rec = { chunks: [], size: 0 };
    conns.push(rec);
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (c) => {
      if (rec.size < limit) {
        rec.chunks.push(c);
        rec.size += c.length;
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  return {
    port: server.address().port,
    /** Client-to-server bytes, one Buffer per connection. */
    recorded: () => conns.map((r) => Buffer.concat(r.chunks)),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The HTTP/2 frames in a client-to-server byte stream (after the preface):
 * [{type, flags, streamId, payload}]. Stops at the first incomplete frame.
 */
export function h2Frames(buf) {
  let pos = buf.subarray(0, H2_PREFACE.length).equals(H2_PREFACE) ? H2_PREFACE.length : 0;
  const frames = [];
  while (pos + 9 <= buf.length) {
    const len = buf.readUIntBE(pos, 3);
    const type = buf[pos + 3];
    const flags = buf[pos + 4];
    const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
    if (pos + 9 + len > buf.length) break;
    let payload = buf.subarray(pos + 9, pos + 9 + len);
    if (type === 0 && flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]); // PADDED
    frames.push({ type, flags, streamId, payload });
    pos += 9 + len;
  }
  return frames;
}

/** The compressed-flag byte of every gRPC message the client sent (from DATA frames). */
export function grpcCompressedFlags(buf) {
  const byStream = new Map();
  for (const f of h2Frames(buf)) {
    if (f.type !== 0) continue;
    byStream.set(f.streamId, Buffer.concat([byStream.get(f.streamId) || Buffer.alloc(0), f.payload]));
  }
  const flags = [];
  for (const data of byStream.values()) {
    let pos = 0;
    while (pos + 5 <= data.length) {
      flags.push(data[pos]);
      pos += 5 + data.readUInt32BE(pos + 1);
    }
  }
  return flags;
}
