// AWS stand-ins for the e2e tests, all on loopback:
//
// Credential endpoints the gateway's backends/aws_creds.c fetches from, each
// as strict as the real one about what it is sent, each counting requests
// and handing out fresh temporary credentials (remembered in `issued`):
//   EcsEndpoint   ECS task role / EKS Pod Identity: GET with Authorization
//   ImdsEndpoint  EC2 IMDSv2: PUT a session token (TTL header), GETs need it
//   StsEndpoint   STS AssumeRoleWithWebIdentity (unsigned) and AssumeRole
//                 (SigV4-signed, verified with @smithy/signature-v4): form
//                 POST, XML reply or an <ErrorResponse>
//
// SigV4Sink: an OTLP/HTTP intake standing in for X-Ray, CloudWatch Logs or
// AMP remote write. It recomputes every request's signature with the AWS
// SDK's @smithy/signature-v4 over the bytes received (compressed, as sent)
// and the headers the Authorization header says were signed, checks the
// credential scope, the clock skew, the payload hash and the session token,
// and answers 403 with an AWS-style error on any mismatch. On top of
// HttpSink (sinks.js) it decodes the OTLP bodies, can throttle the next N
// requests (429/503 ThrottlingException, optional Retry-After) and answer a
// partial success.
//
//   const sts = await StsEndpoint.start({ roleArn, webToken, ttlS: 240 });
//   const sink = await SigV4Sink.start({ signal: 'traces', region, service: 'xray',
//                                        lookup: keyring(sts) });
//   sink.throttle(1, { status: 429, retryAfter: 1 });
//   sink.delivered('traces'), sink.violations, sts.counts.sts

import { createHash, randomBytes } from 'node:crypto';

import { SignatureV4 } from '@smithy/signature-v4';

import { NodeSha256 } from './sha256.js';
import { HttpSink, LoopbackHttpServer } from './sinks.js';

// ---------- credential endpoints ----------

const isoSeconds = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const xmlEscape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);

/** Temporary credentials {accessKeyId, secretAccessKey, sessionToken, expiration}. */
function temporaryCredentials(prefix, n, ttlS) {
  return {
    accessKeyId: `ASIA${prefix}${String(n).padStart(16 - prefix.length, '0')}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: randomBytes(96).toString('base64'),
    expiration: new Date(Date.now() + ttlS * 1000),
  };
}

/**
 * Shared plumbing: a loopback HTTP server (sinks.js) whose
 * `_route(req, res, body)` answers; `counts` per route, `issued` keyId ->
 * credentials, `violations` for requests a real endpoint would refuse.
 * mode: 'ok' | 'error' (the endpoint's error answer for credential requests).
 */
class CredentialEndpoint extends LoopbackHttpServer {
  constructor({ name, prefix, ttlS = 3600 }) {
    super({ name });
    this.prefix = prefix;
    this.ttlS = ttlS; // lifetime of the credentials handed out from now on
    this.mode = 'ok';
    this.counts = {};
    this.issued = new Map();
    this.last = null; // the credentials issued last
  }

  _exchange(req, res, raw) {
    this._route(req, res, raw.toString('utf8'));
  }

  /** Credentials for an access key id this endpoint issued (for SigV4Sink's lookup). */
  lookup(keyId) {
    return this.issued.get(keyId);
  }

  _issue(prefix = this.prefix) {
    const c = temporaryCredentials(prefix, this.issued.size + 1, this.ttlS);
    this.issued.set(c.accessKeyId, c);
    this.last = c;
    return c;
  }

  _count(route) {
    this.counts[route] = (this.counts[route] ?? 0) + 1;
  }

  _send(res, status, body, contentType = 'application/json') {
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  _refuse(res, status, why) {
    this._violation(why);
    this._send(res, status, JSON.stringify({ code: 'Refused', message: why }));
  }
}

/**
 * ECS container credentials (also EKS Pod Identity): GET `path` with
 * `Authorization: <token>` exactly. `token` may be changed at any time (a
 * rotated token file). mode 'error': HTTP 500.
 */
export class EcsEndpoint extends CredentialEndpoint {
  constructor(opts = {}) {
    super({ name: 'ecs', prefix: 'ECS', ...opts });
    this.path = opts.path ?? '/v2/credentials/e2e-task';
    this.token = opts.token ?? null; // null: no Authorization expected
  }

  get fullUri() {
    return `${this.url}${this.path}`;
  }

  _route(req, res) {
    this._count('creds');
    if (req.method !== 'GET' || req.url !== this.path) return this._refuse(res, 404, `${req.method} ${req.url}`);
    if (this.token !== null && req.headers.authorization !== this.token) {
      return this._refuse(res, 401, `Authorization ${req.headers.authorization === undefined ? 'missing' : 'wrong'}`);
    }
    if (this.mode === 'error') return this._send(res, 500, JSON.stringify({ code: 'InternalError', message: 'agent unavailable' }));
    const c = this._issue();
    return this._send(
      res,
      200,
      JSON.stringify({
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.sessionToken,
        Expiration: isoSeconds(c.expiration),
        RoleArn: 'arn:aws:iam::123456789012:role/e2e-task',
      }),
    );
  }
}

/**
 * EC2 instance metadata, IMDSv2 only: PUT /latest/api/token with
 * X-aws-ec2-metadata-token-ttl-seconds (1..21600) returns a session token;
 * every GET must carry it in X-aws-ec2-metadata-token (else 401, as IMDS
 * does with v1 disabled). mode 'error': the role's credentials answer
 * "Code": "AssumeRoleUnauthorizedAccess".
 */
export class ImdsEndpoint extends CredentialEndpoint {
  constructor(opts = {}) {
    super({ name: 'imds', prefix: 'IMDS', ...opts });
    this.role = opts.role ?? 'e2e-instance-role';
    this.tokens = new Set();
  }

  _route(req, res) {
    const base = '/latest/meta-data/iam/security-credentials/';
    if (req.url === '/latest/api/token') {
      this._count('token');
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (req.method !== 'PUT') return this._refuse(res, 405, `${req.method} /latest/api/token`);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return this._refuse(res, 400, `token TTL header ${req.headers['x-aws-ec2-metadata-token-ttl-seconds']}`);
      const token = randomBytes(24).toString('base64');
      this.tokens.add(token);
      return this._send(res, 200, token, 'text/plain');
    }
    if (!req.url.startsWith(base)) return this._refuse(res, 404, `${req.method} ${req.url}`);
    const role = req.url.slice(base.length);
    this._count(role === '' ? 'role' : 'creds');
    if (req.method !== 'GET') return this._refuse(res, 405, `${req.method} ${req.url}`);
    if (!this.tokens.has(req.headers['x-aws-ec2-metadata-token'])) return this._refuse(res, 401, `GET ${req.url} without a valid session token`);
    if (role === '') return this._send(res, 200, this.role, 'text/plain');
    if (role !== this.role) return this._refuse(res, 404, `no role ${role}`);
    if (this.mode === 'error') {
      return this._send(res, 200, JSON.stringify({ Code: 'AssumeRoleUnauthorizedAccess', Message: 'EC2 cannot assume the role', LastUpdated: isoSeconds(new Date()) }));
    }
    const c = this._issue();
    return this._send(
      res,
      200,
      JSON.stringify(
        {
          Code: 'Success',
          LastUpdated: isoSeconds(new Date()),
          Type: 'AWS-HMAC',
          AccessKeyId: c.accessKeyId,
          SecretAccessKey: c.secretAccessKey,
          Token: c.sessionToken,
          Expiration: isoSeconds(c.expiration),
        },
        null,
        2,
      ),
    );
  }
}

/**
 * STS on / (form POSTs, Version=2011-06-15, RoleSessionName 2..64 of
 * [\w+=,.@-]):
 *
 * AssumeRoleWithWebIdentity: unsigned, RoleArn must be `roleArn`,
 * WebIdentityToken must be `webToken` (which may be changed at any time).
 * mode 'error': HTTP 400 <ErrorResponse> with errorCode / errorMessage. A
 * wrong token gets InvalidIdentityToken too, and is a violation.
 *
 * AssumeRole: SigV4-signed for `region`/sts by a key `lookup` knows (base
 * credentials; keys this endpoint issued count too, for role chaining),
 * the signature recomputed with @smithy/signature-v4 (a bad one is a 403
 * and a violation). RoleArn must be one of `roles` ({arn: {externalId?}});
 * DurationSeconds 900..43200; ExternalId must match the role's (else
 * AccessDenied, as a trust policy with sts:ExternalId answers). Issues
 * ASIAROLE... keys lasting ttlS, whatever the duration asked. mode
 * 'error': HTTP 403 AccessDenied. `assumeCalls` records every valid call:
 * {signer, roleArn, sessionName, externalId, duration}.
 */
export class StsEndpoint extends CredentialEndpoint {
  constructor(opts = {}) {
    super({ name: 'sts', prefix: 'STS', ...opts });
    this.roleArn = opts.roleArn ?? 'arn:aws:iam::123456789012:role/e2e-web-identity';
    this.webToken = opts.webToken;
    this.errorCode = opts.errorCode ?? 'InvalidIdentityToken';
    this.errorMessage = opts.errorMessage ?? 'Token is expired & refused';
    this.sessionNames = [];
    this.region = opts.region ?? 'eu-west-1';
    this.roles = opts.roles ?? {};
    this.baseLookup = opts.lookup ?? (() => undefined);
    this.assumeCalls = [];
  }

  _error(res, status, code, message) {
    this._send(
      res,
      status,
      `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>` +
        `<Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message></Error>` +
        `<RequestId>${randomBytes(8).toString('hex')}</RequestId></ErrorResponse>`,
      'text/xml',
    );
  }

  // AssumeRole needs the async signature check: the body is taken whole.
  _exchange(req, res, raw) {
    const form = new URLSearchParams(raw.toString('utf8'));
    if (form.get('Action') !== 'AssumeRole') return super._exchange(req, res, raw);
    this._assumeRole(req, res, raw, form).catch((e) => {
      this._violation(`AssumeRole handler: ${e.stack}`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  }

  async _assumeRole(req, res, raw, form) {
    this._count('assume_role');
    const ctype = (req.headers['content-type'] || '').split(';')[0].trim();
    if (req.method !== 'POST' || req.url !== '/') return this._refuse(res, 404, `${req.method} ${req.url}`);
    if (ctype !== 'application/x-www-form-urlencoded') return this._refuse(res, 400, `content-type ${ctype}`);
    const lookup = keyring({ lookup: this.baseLookup }, this);
    const auth = await verifySigV4(req, raw, { lookup, region: this.region, service: 'sts', mustSign: ['host', 'x-amz-date', 'content-type'] });
    if (auth.problem) {
      this._violation(`AssumeRole signature: ${auth.problem}`);
      return this._error(res, 403, auth.type ?? 'SignatureDoesNotMatch', auth.problem);
    }
    const arn = form.get('RoleArn') ?? '';
    const name = form.get('RoleSessionName') ?? '';
    const duration = Number(form.get('DurationSeconds') ?? '3600');
    const externalId = form.get('ExternalId');
    if (form.get('Version') !== '2011-06-15') return this._refuse(res, 400, `Version=${form.get('Version')}`);
    if (!/^[\w+=,.@-]{2,64}$/.test(name)) return this._refuse(res, 400, `RoleSessionName ${name}`);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43200) return this._refuse(res, 400, `DurationSeconds ${form.get('DurationSeconds')}`);
    if (externalId !== null && !/^[\w+=,.@:/-]{2,1224}$/.test(externalId)) return this._refuse(res, 400, `ExternalId ${externalId}`);
    const role = this.roles[arn];
    const denied = `User: arn:aws:iam::111122223333:user/${auth.accessKeyId} is not authorized to perform: sts:AssumeRole on resource: ${arn}`;
    if (role === undefined || (role.externalId ?? null) !== externalId || this.mode === 'error') return this._error(res, 403, 'AccessDenied', denied);
    this.assumeCalls.push({ signer: auth.accessKeyId, roleArn: arn, sessionName: name, externalId, duration });
    const c = this._issue('ROLE');
    c.roleArn = arn;
    return this._send(
      res,
      200,
      `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROAE2EROLE:${xmlEscape(name)}</AssumedRoleId>
      <Arn>${xmlEscape(arn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/'))}/${xmlEscape(name)}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>${c.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${xmlEscape(c.secretAccessKey)}</SecretAccessKey>
      <SessionToken>${xmlEscape(c.sessionToken)}</SessionToken>
      <Expiration>${isoSeconds(c.expiration)}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>${randomBytes(8).toString('hex')}</RequestId></ResponseMetadata>
</AssumeRoleResponse>
`,
      'text/xml',
    );
  }

  _route(req, res, body) {
    this._count('sts');
    const ctype = (req.headers['content-type'] || '').split(';')[0].trim();
    if (req.method !== 'POST' || req.url !== '/') return this._refuse(res, 404, `${req.method} ${req.url}`);
    if (ctype !== 'application/x-www-form-urlencoded') return this._refuse(res, 400, `content-type ${ctype}`);
    if (req.headers.authorization !== undefined) return this._refuse(res, 400, 'AssumeRoleWithWebIdentity must not be signed');
    const form = new URLSearchParams(body);
    const name = form.get('RoleSessionName') ?? '';
    this.sessionNames.push(name);
    if (form.get('Action') !== 'AssumeRoleWithWebIdentity' || form.get('Version') !== '2011-06-15') {
      return this._refuse(res, 400, `Action=${form.get('Action')} Version=${form.get('Version')}`);
    }
    if (form.get('RoleArn') !== this.roleArn) return this._refuse(res, 400, `RoleArn ${form.get('RoleArn')}`);
    if (!/^[\w+=,.@-]{2,64}$/.test(name)) return this._refuse(res, 400, `RoleSessionName ${name}`);
    if (form.get('WebIdentityToken') !== this.webToken) {
      this.violations.push('sts: wrong WebIdentityToken');
      return this._error(res, 400, 'InvalidIdentityToken', 'token does not match');
    }
    if (this.mode === 'error') return this._error(res, 400, this.errorCode, this.errorMessage);
    const c = this._issue();
    return this._send(
      res,
      200,
      `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:otel:gateway</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>${xmlEscape(this.roleArn)}/${xmlEscape(name)}</Arn>
      <AssumedRoleId>AROAE2E:${xmlEscape(name)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${xmlEscape(c.sessionToken)}</SessionToken>
      <SecretAccessKey>${xmlEscape(c.secretAccessKey)}</SecretAccessKey>
      <Expiration>${isoSeconds(c.expiration)}</Expiration>
      <AccessKeyId>${c.accessKeyId}</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>${randomBytes(8).toString('hex')}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`,
      'text/xml',
    );
  }
}

/**
 * A lookup(keyId) over several sources: credential objects
 * ({accessKeyId, secretAccessKey, sessionToken?}) and endpoints (their
 * issued credentials).
 */
export function keyring(...sources) {
  return (keyId) => {
    for (const s of sources) {
      if (typeof s.lookup === 'function') {
        const c = s.lookup(keyId);
        if (c) return c;
      } else if (s.accessKeyId === keyId) {
        return s;
      }
    }
    return undefined;
  };
}

// ---------- the SigV4-verifying intake ----------

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request, ?SignedHeaders=([^,\s]+), ?Signature=([0-9a-f]{64})$/;
const MAX_SKEW_MS = 5 * 60 * 1000;
const SIGNAL_PATH = { traces: '/v1/traces', logs: '/v1/logs', metrics: '/api/v1/remote_write' };

/**
 * Checks one request's SigV4 signature by recomputing it with the AWS SDK's
 * signer: {accessKeyId, signedHeaders} or {problem, type}. opts: lookup
 * (keyId -> credentials), region, service, mustSign (header names), and
 * uriEscapePath (true, as for every service but S3, which signs the path as
 * sent).
 */
export async function verifySigV4(req, raw, { lookup, region: wantRegion, service: wantService, mustSign, uriEscapePath = true }) {
  const h = req.headers;
  const m = AUTH_RE.exec(h.authorization ?? '');
  if (!m) return { problem: `missing or malformed Authorization: ${h.authorization}`, type: 'MissingAuthenticationTokenException' };
  const [, accessKeyId, date, region, service, signedList, signature] = m;
  const signed = signedList.split(';');
  const out = { accessKeyId, signedHeaders: signed };
  const fail = (problem, type) => ({ ...out, problem, type });
  const creds = lookup(accessKeyId);
  if (!creds) return fail(`The security token included in the request is invalid (unknown key ${accessKeyId})`, 'UnrecognizedClientException');
  if (creds.expiration && creds.expiration.getTime() <= Date.now()) return fail(`key ${accessKeyId} has expired`, 'ExpiredTokenException');
  if (region !== wantRegion || service !== wantService) return fail(`credential scope ${region}/${service}, expected ${wantRegion}/${wantService}`);

  const amzDate = h['x-amz-date'] ?? '';
  const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!dm) return fail(`X-Amz-Date "${amzDate}" is not YYYYMMDDTHHMMSSZ`);
  if (amzDate.slice(0, 8) !== date) return fail(`credential scope date ${date} differs from X-Amz-Date ${amzDate}`);
  const when = new Date(Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]));
  if (Math.abs(Date.now() - when.getTime()) > MAX_SKEW_MS) return fail(`Signature expired: ${amzDate} is more than 5 minutes from now`);

  if ([...signed].sort().join(';') !== signedList || new Set(signed).size !== signed.length) return fail(`SignedHeaders ${signedList} not sorted or repeated`);
  for (const name of mustSign) if (!signed.includes(name)) return fail(`${name} is not signed (SignedHeaders ${signedList})`);
  for (const name of signed) if (h[name] === undefined) return fail(`signed header ${name} was not sent`);
  const sha = h['x-amz-content-sha256'];
  if (sha !== undefined) {
    if (!signed.includes('x-amz-content-sha256')) return fail('X-Amz-Content-Sha256 sent but not signed');
    const actual = createHash('sha256').update(raw).digest('hex');
    if (sha !== actual) return fail(`X-Amz-Content-Sha256 ${sha} is not the SHA-256 of the ${raw.length} bytes received (${actual})`);
  }
  if (creds.sessionToken) {
    if (h['x-amz-security-token'] !== creds.sessionToken) return fail('X-Amz-Security-Token missing or not the session token of this key', 'UnrecognizedClientException');
    if (!signed.includes('x-amz-security-token')) return fail('X-Amz-Security-Token is not signed');
  } else if (h['x-amz-security-token'] !== undefined) {
    return fail('X-Amz-Security-Token sent with long-term credentials', 'UnrecognizedClientException');
  }

  const headers = {};
  for (const name of signed) headers[name] = h[name];
  const [path, query = ''] = req.url.split('?');
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken },
    region,
    service,
    sha256: NodeSha256,
    uriEscapePath,
    applyChecksum: false,
  });
  const mine = await signer.sign(
    {
      method: req.method,
      protocol: 'http:',
      hostname: h.host.replace(/:\d+$/, ''),
      path,
      query: Object.fromEntries(new URLSearchParams(query)),
      headers,
      body: raw,
    },
    { signingDate: when, signableHeaders: new Set(signed) },
  );
  const want = AUTH_RE.exec(mine.headers.authorization);
  if (!want || want[5] !== signedList) return fail(`recomputed SignedHeaders ${want?.[5]} differ from ${signedList}`);
  if (want[6] !== signature) {
    return fail('The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
  return out;
}

/**
 * opts: signal ('traces' | 'logs' | 'metrics'), region, service, lookup
 * (keyId -> credentials, see keyring), signedHeaders (extra header names
 * that must be signed, e.g. x-aws-log-group), plus HttpSink's (name,
 * routes, accept).
 */
export class SigV4Sink extends HttpSink {
  constructor(opts) {
    super({
      name: opts.name ?? `${opts.service}-sink`,
      routes: { [SIGNAL_PATH[opts.signal]]: opts.signal },
      ...opts,
      check: (rec) => this._checkAuth(rec),
    });
    this.region = opts.region;
    this.service = opts.service;
    this.lookup = opts.lookup;
    this.mustSign = ['host', 'x-amz-date', ...(opts.signedHeaders ?? [])];
    this._auth = null; // the verdict on the request being handled, read by _checkAuth
  }

  /** The next n requests get a throttling answer (after their signature checks out). */
  throttle(n, { status = 429, retryAfter } = {}) {
    for (let i = 0; i < n; i++) {
      this.once({ kind: 'status', status, retryAfter, json: { __type: 'ThrottlingException', message: 'Rate exceeded' } });
    }
  }

  /** The next request gets an OTLP partial success rejecting `rejected` items. */
  partial(rejected, message = 'log events rejected') {
    this.once({ kind: 'partial', rejected, message });
  }

  /** Access key ids of the requests the sink accepted, in order. */
  acceptedKeys() {
    return this.requests.filter((r) => r.outcome === 'ok' || r.outcome === 'partial').map((r) => r.accessKeyId);
  }

  // HttpSink answers synchronously; the SDK's signer is async. So verify
  // first, keep the verdict for _checkAuth, then let HttpSink decode and
  // answer in the same tick (no other request can interleave).
  _handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      let verdict;
      try {
        verdict = await this._verify(req, raw);
      } catch (e) {
        verdict = { problem: `cannot verify: ${e.message}` };
      }
      try {
        this._auth = verdict;
        this._exchange(req, res, raw);
      } catch (e) {
        this._violation(`handler error: ${e.stack}`);
        if (!res.headersSent) res.writeHead(500).end();
      } finally {
        this._auth = null;
      }
    });
  }

  _checkAuth(rec) {
    const v = this._auth;
    rec.accessKeyId = v.accessKeyId;
    rec.signedHeaders = v.signedHeaders;
    if (!v.problem) return null;
    return {
      status: 403,
      json: { __type: v.type ?? 'InvalidSignatureException', message: v.problem },
      message: v.problem,
      violation: true,
    };
  }

  /** {accessKeyId, signedHeaders} or {problem, type} for one request. */
  _verify(req, raw) {
    return verifySigV4(req, raw, this);
  }
}
