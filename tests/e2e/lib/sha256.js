// The hash constructor @smithy/signature-v4 takes (its `sha256` option), on
// node's crypto: SHA-256, or HMAC-SHA-256 when given a secret. Shared by the
// SigV4 verifiers (aws.js, prometheus.js) and the signer comparison test.
import { createHash, createHmac } from 'node:crypto';

export class NodeSha256 {
  constructor(secret) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data) {
    this.h.update(data);
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
  reset() {}
}
