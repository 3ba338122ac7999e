// A stand-in for Keycloak in the e2e tests: the real `oidc-provider` package
// (a certified OpenID provider) laid out the way a Keycloak realm is, so the
// gateway talks to it exactly as it would to Keycloak:
//
//   issuer     http://127.0.0.1:<port>/realms/telemetry
//   discovery  /realms/telemetry/.well-known/openid-configuration
//   token      /realms/telemetry/protocol/openid-connect/token
//   JWKS       /realms/telemetry/protocol/openid-connect/certs
//
// Client-credentials grants from the confidential clients agent-shop and
// agent-payments (see keycloak/realm-telemetry.json) return JWT access tokens
// with Keycloak's claims: aud "otlp-gateway", azp, tenant, realm_access.roles
// and typ "Bearer".
//
//   const keys = makeKeySet('a');              // RSA + EC P-256 signing keys
//   const kc = await FakeKeycloak.start({ keys });
//   const tok = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
//   await kc.restart({ keys: [b.rsa, a.rsa] }); // same port, other keys
//   kc.certsHits                                // JWKS downloads served
//   await kc.stop();
//
// The test also signs tokens itself (mintToken) with the realm's private keys,
// to control every claim and header in the attack cases.

import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

export const REALM = 'telemetry';
export const REALM_PATH = `/realms/${REALM}`;
export const AUDIENCE = 'otlp-gateway';
export const WRITER_ROLE = 'otlp-writer';
export const PATHS = {
  discovery: `${REALM_PATH}/.well-known/openid-configuration`,
  token: `${REALM_PATH}/protocol/openid-connect/token`,
  certs: `${REALM_PATH}/protocol/openid-connect/certs`,
};

/** The realm's agents: client id -> secret, tenant claim, token endpoint auth method. */
export const CLIENTS = {
  'agent-shop': { secret: 'e2e-secret-shop', tenant: 'shop', authMethod: 'client_secret_basic' },
  'agent-payments': { secret: 'e2e-secret-payments', tenant: 'payments', authMethod: 'client_secret_post' },
};

const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/**
 * A signing key made with node's crypto: {kid, alg, privateKey, publicKey
 * (KeyObjects), privateJwk, publicJwk}. type 'rsa' (2048 bit, RS256) or 'ec'
 * (P-256, ES256).
 */
export function makeKey(type, kid) {
  const { privateKey, publicKey } =
    type === 'ec'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const alg = type === 'ec' ? 'ES256' : 'RS256';
  const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, privateJwk, publicJwk };
}

/** An RSA and an EC key with kids "<name>-rsa" / "<name>-ec". */
export function makeKeySet(name) {
  return { rsa: makeKey('rsa', `${name}-rsa-${crypto.randomBytes(3).toString('hex')}`), ec: makeKey('ec', `${name}-ec-${crypto.randomBytes(3).toString('hex')}`) };
}

/**
 * Sign a JWS compact token with node's crypto. alg: RS256 | PS256 | ES256 |
 * HS256 (key = the secret, a Buffer or string) | none. header overrides/extends
 * {alg, typ: 'JWT', kid}.
 */
export function signJwt(payload, { alg = 'RS256', key, kid, header = {} } = {}) {
  const h = { alg, typ: 'JWT', ...(kid !== undefined ? { kid } : {}), ...header };
  const input = `${b64u(h)}.${b64u(payload)}`;
  let sig;
  switch (alg) {
    case 'RS256':
      sig = crypto.sign('sha256', Buffer.from(input), key);
      break;
    case 'PS256':
      sig = crypto.sign('sha256', Buffer.from(input), {
        key,
        padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32,
      });
      break;
    case 'ES256':
      sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
      break;
    case 'HS256':
      sig = crypto.createHmac('sha256', key).update(input).digest();
      break;
    case 'none':
      sig = Buffer.alloc(0);
      break;
    default:
      throw new Error(`signJwt: unsupported alg ${alg}`);
  }
  return `${input}.${sig.toString('base64url')}`;
}

/** Keycloak-style access-token claims for a client of the realm, at `now` (s). */
export function keycloakClaims(issuer, clientId, { now = Math.floor(Date.now() / 1000), ttl = 300, tenant } = {}) {
  return {
    exp: now + ttl,
    iat: now,
    jti: crypto.randomUUID(),
    iss: issuer,
    aud: AUDIENCE,
    sub: crypto.randomUUID(),
    typ: 'Bearer',
    azp: clientId,
    realm_access: { roles: [WRITER_ROLE, 'default-roles-telemetry'] },
    scope: 'profile email',
    client_id: clientId,
    tenant: tenant ?? CLIENTS[clientId]?.tenant,
  };
}

export class FakeKeycloak {
  /**
   * Start on `port` (0: a free one). keys: an array of keys from makeKey (the
   * first RSA key signs the access tokens) or a makeKeySet() result.
   */
  static async start({ port = 0, keys } = {}) {
    const kc = new FakeKeycloak();
    await kc._listen(port, keys);
    return kc;
  }

  constructor() {
    this.server = null;
    this.port = 0;
    this.keys = [];
    /** Times (ms since epoch) of every JWKS download served, across restarts. */
    this.certsLog = [];
    this.discoveryHits = 0;
    this.tokenHits = 0;
  }

  get certsHits() {
    return this.certsLog.length;
  }
  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }
  get issuer() {
    return `${this.origin}${REALM_PATH}`;
  }
  get tokenUrl() {
    return `${this.origin}${PATHS.token}`;
  }
  get certsUrl() {
    return `${this.origin}${PATHS.certs}`;
  }
  get discoveryUrl() {
    return `${this.origin}${PATHS.discovery}`;
  }
  get running() {
    return this.server !== null;
  }

  /** JWKS downloads served since time t (ms). */
  certsHitsSince(t) {
    return this.certsLog.filter((x) => x >= t).length;
  }

  _provider(keys) {
    const issuer = this.issuer;
    const clients = Object.entries(CLIENTS).map(([id, c]) => ({
      client_id: id,
      client_secret: c.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: c.authMethod,
    }));
    const resource = `urn:${AUDIENCE}`;
    const provider = new Provider(issuer, {
      clients,
      jwks: { keys: keys.map((k) => k.privateJwk) },
      routes: {
        token: '/protocol/openid-connect/token',
        jwks: '/protocol/openid-connect/certs',
        authorization: '/protocol/openid-connect/auth',
        userinfo: '/protocol/openid-connect/userinfo',
        end_session: '/protocol/openid-connect/logout',
        introspection: '/protocol/openid-connect/token/introspect',
        revocation: '/protocol/openid-connect/revoke',
      },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: false },
        revocation: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => resource,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: 'profile email',
            audience: AUDIENCE,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      // Keycloak's own claims on a service-account token.
      extraTokenClaims: (_ctx, token) => {
        const c = CLIENTS[token.clientId];
        if (!c) return undefined;
        return {
          typ: 'Bearer',
          azp: token.clientId,
          tenant: c.tenant,
          realm_access: { roles: [WRITER_ROLE, 'default-roles-telemetry'] },
          preferred_username: `service-account-${token.clientId}`,
        };
      },
      adapter: memoryAdapter(),
      ttl: { ClientCredentials: 300 },
      cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
      findAccount: () => undefined,
    });
    provider.on('server_error', (_ctx, err) => process.stderr.write(`oidc-provider server_error: ${err.stack}\n`));
    return provider;
  }

  async _listen(port, keys) {
    if (keys && !Array.isArray(keys)) keys = [keys.rsa, keys.ec].filter(Boolean);
    if (!keys || keys.length === 0) throw new Error('FakeKeycloak: no keys');
    this.keys = keys;
    const server = http.createServer();
    // The provider needs the issuer (with the final port) at construction.
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = server.address().port;
    const provider = this._provider(keys);
    const callback = provider.callback();
    server.on('request', (req, res) => {
      const url = req.url || '/';
      if (url === PATHS.certs || url.startsWith(`${PATHS.certs}?`)) this.certsLog.push(Date.now());
      else if (url.startsWith(PATHS.discovery)) this.discoveryHits++;
      else if (url.startsWith(PATHS.token)) this.tokenHits++;
      if (url !== REALM_PATH && !url.startsWith(`${REALM_PATH}/`) && !url.startsWith(`${REALM_PATH}?`)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"Realm does not exist"}');
        return;
      }
      // Mounted under the realm path: oidc-provider derives its URLs from
      // originalUrl minus url, as behind express' app.use(prefix, ...).
      req.originalUrl = url;
      req.url = url.slice(REALM_PATH.length) || '/';
      if (req.url[0] !== '/') req.url = `/${req.url}`;
      callback(req, res);
    });
    this.server = server;
    this.provider = provider;
  }

  /** Stop listening and drop every open connection (keep-alive ones too). */
  async stop() {
    const s = this.server;
    if (!s) return;
    this.server = null;
    await new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  /** Start again on the same port (after stop(), or now), optionally with other keys. */
  async restart({ keys } = {}) {
    await this.stop();
    const port = this.port;
    let lastErr;
    for (let i = 0; i < 50; i++) {
      try {
        await this._listen(port, keys ?? this.keys);
        return;
      } catch (e) {
        lastErr = e;
        if (e.code !== 'EADDRINUSE') throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw lastErr;
  }

  /**
   * A client-credentials access token from the token endpoint (a real HTTP
   * POST). method: 'client_secret_basic' | 'client_secret_post' (default: the
   * client's registered one). Resolves the access token; rejects with the
   * endpoint's error otherwise.
   */
  async getToken(clientId, secret, { method } = {}) {
    method = method ?? CLIENTS[clientId]?.authMethod ?? 'client_secret_basic';
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (method === 'client_secret_post') {
      body.set('client_id', clientId);
      body.set('client_secret', secret);
    } else {
      const enc = (s) => encodeURIComponent(s);
      headers.authorization = `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
    }
    const res = await postForm(this.tokenUrl, headers, body.toString());
    let json = {};
    try {
      json = JSON.parse(res.body);
    } catch {
      /* not JSON: reported below */
    }
    if (res.status !== 200 || !json.access_token) {
      const err = new Error(`token endpoint answered ${res.status}: ${JSON.stringify(json)}`);
      err.status = res.status;
      err.body = json;
      throw err;
    }
    if (String(json.token_type).toLowerCase() !== 'bearer') throw new Error(`unexpected token_type ${json.token_type}`);
    return json.access_token;
  }

  /**
   * A token signed by the test with one of the realm's keys (default: the
   * first RSA key it serves), Keycloak claims for `clientId`, then `claims`
   * merged over them (a value of undefined deletes the claim).
   */
  mintToken({ clientId = 'agent-shop', claims = {}, key, alg, header } = {}) {
    key = key ?? this.keys.find((k) => k.alg === 'RS256');
    const payload = { ...keycloakClaims(this.issuer, clientId), ...claims };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    return signJwt(payload, { alg: alg ?? key.alg, key: key.privateKey, kid: key.kid, header });
  }
}

/** POST without connection reuse (the provider restarts under the tests). */
function postForm(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers, agent: false, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** oidc-provider's storage for its artifacts (grants, tokens): a Map per provider. */
function memoryAdapter() {
  const store = new Map();
  return class {
    constructor(name) {
      this.name = name;
    }
    key(id) {
      return `${this.name}:${id}`;
    }
    async upsert(id, payload, expiresIn) {
      store.set(this.key(id), { payload, until: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    }
    async find(id) {
      const e = store.get(this.key(id));
      if (!e || e.until < Date.now()) return undefined;
      return e.payload;
    }
    async findByUid(uid) {
      for (const [k, e] of store) if (k.startsWith(`${this.name}:`) && e.payload.uid === uid) return e.payload;
      return undefined;
    }
    async findByUserCode(code) {
      for (const [k, e] of store) if (k.startsWith(`${this.name}:`) && e.payload.userCode === code) return e.payload;
      return undefined;
    }
    async consume(id) {
      const e = store.get(this.key(id));
      if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id) {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId) {
      for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
    }
  };
}

/** Decode a JWT's header and payload without verifying anything (for assertions). */
export function decodeJwt(token) {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
}
