// The Keycloak stand-in of the e2e tests (tests/e2e/lib/keycloak.js: the
// real oidc-provider package laid out as a Keycloak realm) for bench/run.sh:
// starts it, obtains a client-credentials access token for agent-shop from
// its token endpoint (a real RS256-signed JWT), prints one line
//   issuer=<issuer> token=<jwt>
// on stdout and serves discovery and JWKS until SIGTERM.
import { CLIENTS, FakeKeycloak, makeKeySet } from '../tests/e2e/lib/keycloak.js';

const kc = await FakeKeycloak.start({ keys: makeKeySet('bench') });
const token = await kc.getToken('agent-shop', CLIENTS['agent-shop'].secret);
process.stdout.write(`issuer=${kc.issuer} token=${token}\n`);
const stop = async () => {
  await kc.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
