// Certificates for TLS tests, made with the openssl CLI: a CA, two server
// pairs for 127.0.0.1 / localhost and a client pair, all signed by that CA.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export function openssl(dir, ...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A CA, server pairs `a` and `b` (serials 1, 2) and a client pair, in dir. */
export function makePki(dir) {
  openssl(dir, 'req', '-x509', ...EC_KEY, '-days', '1', '-subj', '/CN=e2e test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  fs.writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  const leaf = (name, cn, serial, ext) => {
    openssl(dir, 'req', '-new', ...EC_KEY, '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', serial,
      '-days', '1', '-extfile', ext, '-out', `${name}.crt`);
  };
  leaf('a', 'localhost', '1', 'server.ext');
  leaf('b', 'localhost', '2', 'server.ext');
  leaf('client', 'agent-7', '3', 'client.ext');
  const read = (f) => fs.readFileSync(path.join(dir, f));
  const fingerprint = (f) => new crypto.X509Certificate(read(f)).fingerprint256;
  return {
    dir,
    ca: read('ca.crt'),
    client: { cert: read('client.crt'), key: read('client.key') },
    fingerprint: { a: fingerprint('a.crt'), b: fingerprint('b.crt') },
    certFile: path.join(dir, 'tls.crt'),
    keyFile: path.join(dir, 'tls.key'),
    /** Put a certificate and a key (by pair name) where the listener reads them. */
    install(cert, key = cert) {
      fs.copyFileSync(path.join(dir, `${cert}.crt`), this.certFile);
      fs.copyFileSync(path.join(dir, `${key}.key`), this.keyFile);
    },
  };
}
