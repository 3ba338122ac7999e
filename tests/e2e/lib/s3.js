// A real S3 implementation for the fleet API keys tests: s3rver (pinned in
// package.json), which stores objects on disk and answers GET with ETag and
// If-None-Match (304). It checks the access key id, the SigV4 header's shape
// and the request time, but not the V4 signature itself ("unimplemented" in
// its source), so the proxy below recomputes every signature with the AWS
// SDK's signer (verifySigV4, lib/aws.js) and answers 403
// SignatureDoesNotMatch when it differs.
//
// LIMITATION of the local S3, stated here and in the tests: s3rver 3.7.1
// ignores If-Match and If-None-Match on PutObject (checked with a script
// before writing these tests: both writes succeed), and so does
// @20minutes/s3rver 5.0.0. Amazon S3 honours both (412 PreconditionFailed,
// or 409 ConditionalRequestConflict for a racing conditional write). So the
// gateway talks to S3Preconditions, a thin loopback proxy in front of s3rver
// that implements only that check: for a PUT carrying If-Match or
// If-None-Match it looks up the object's current ETag with a signed HEAD and
// answers 412 PreconditionFailed when the condition fails, holding a per-key
// lock from the check until s3rver has stored the object, so check-and-write
// is atomic as on S3. The same lock orders GETs after a PUT in flight
// (s3rver, unlike S3, can abort a GET that overlaps a PUT of the object). Every other request, and every PUT that passes, goes to
// s3rver unchanged (same Host header, so the signature still verifies).

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { SignatureV4 } from '@smithy/signature-v4';
import S3rver from 's3rver';

import { verifySigV4 } from './aws.js';
import { NodeSha256 } from './sha256.js';
import { LoopbackHttpServer } from './sinks.js';

export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER';
export const S3_REGION = 'us-east-1';

function forward(port, req, body, headers = req.headers, method = req.method) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path: req.url, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}

const s3Error = (code, message) =>
  Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);

/**
 * The signature- and precondition-checking proxy; `requests` records
 * {method, path, headers, status, signatureProblem}.
 */
export class S3Preconditions extends LoopbackHttpServer {
  constructor(opts) {
    super({ name: 's3-preconditions', ...opts });
    this.backendPort = opts.backendPort;
    this.locks = new Map(); // path -> promise chain
    this.signer = new SignatureV4({
      service: 's3',
      region: S3_REGION,
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
      sha256: NodeSha256,
      uriEscapePath: false,
    });
  }

  async _currentEtag(p) {
    const host = `127.0.0.1:${this.backendPort}`;
    const signed = await this.signer.sign({
      method: 'HEAD', protocol: 'http:', hostname: '127.0.0.1', port: this.backendPort, path: p,
      headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    const r = await forward(this.backendPort, { url: p }, undefined, signed.headers, 'HEAD');
    if (r.status === 404) return null;
    if (r.status !== 200) throw new Error(`HEAD ${p}: HTTP ${r.status}`);
    return r.headers.etag;
  }

  async _put(req, body) {
    const ifMatch = req.headers['if-match'];
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifMatch === undefined && ifNoneMatch === undefined) return forward(this.backendPort, req, body);
    const current = await this._currentEtag(req.url.split('?')[0]);
    const failed = (ifNoneMatch === '*' && current !== null) || (ifMatch !== undefined && ifMatch !== current);
    if (failed) {
      const body = s3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      return { status: 412, headers: { 'content-type': 'application/xml' }, body };
    }
    return forward(this.backendPort, req, body);
  }

  async _signatureProblem(req, body) {
    const v = await verifySigV4(req, body, {
      lookup: (id) => (id === S3_ACCESS_KEY ? { secretAccessKey: S3_SECRET_KEY } : null),
      region: S3_REGION,
      service: 's3',
      mustSign: ['host', 'x-amz-date', 'x-amz-content-sha256'],
      uriEscapePath: false,
    });
    return v.problem ?? null;
  }

  async _exchange(req, res, body) {
    const key = req.url.split('?')[0];
    const rec = { method: req.method, path: req.url, headers: { ...req.headers }, status: 0, at: Date.now() };
    this.requests.push(rec);
    let work;
    rec.signatureProblem = await this._signatureProblem(req, body).catch((e) => `cannot verify: ${e.message}`);
    if (rec.signatureProblem) {
      const xml = s3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
      work = Promise.resolve({ status: 403, headers: { 'content-type': 'application/xml' }, body: xml });
    } else {
      // Every request on a key waits for the one before it: S3 replaces an
      // object atomically, while s3rver can abort a GET that overlaps a PUT of
      // the same object (it rewrites the file in place).
      const prev = this.locks.get(key) ?? Promise.resolve();
      work = prev.then(() => (req.method === 'PUT' ? this._put(req, body) : forward(this.backendPort, req, body)));
      this.locks.set(key, work.catch(() => {}));
    }
    work.then(
      (r) => {
        rec.status = r.status;
        const h = { ...r.headers };
        delete h['transfer-encoding'];
        delete h.connection;
        res.writeHead(r.status, h).end(r.body);
      },
      (e) => {
        this._violation(`${req.method} ${req.url}: ${e.message}`);
        res.writeHead(502).end();
      },
    );
  }
}

/** s3rver on a free loopback port with bucket `bucket`, behind S3Preconditions. */
export class LocalS3 {
  static async start({ bucket = 'fleet' } = {}) {
    const s = new LocalS3();
    s.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-gw-s3-'));
    s.server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s.dir, configureBuckets: [{ name: bucket }] });
    const { port } = await s.server.run();
    s.backendPort = port;
    s.proxy = await S3Preconditions.start({ backendPort: port });
    s.bucket = bucket;
    return s;
  }

  /** What the gateway is configured with (path-style, through the proxy). */
  get endpoint() {
    return `http://127.0.0.1:${this.proxy.port}`;
  }

  async stop() {
    await this.proxy.stop();
    await this.server.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
