// The durability promise is stated the same way wherever it is made:
// README.md, docs/architecture.md, docs/operations.md and
// docs/configuration.md each say what an acknowledgement survives (memory
// queue: backend outages, not a crash or kill; disk queue: also kill -9,
// power loss per its fsync policy; tail-sampled spans: held in memory until
// decided and delivered), and none promises "nothing acknowledged is lost"
// without those limits. Text is compared after dropping Markdown emphasis,
// code quotes and line breaks.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { E2E_DIR } from '../lib/gateway.js';

const ROOT = path.resolve(E2E_DIR, '..', '..');
const DOCS = ['README.md', 'docs/architecture.md', 'docs/operations.md', 'docs/configuration.md'];
const norm = (t) => t.replace(/[*`]/g, '').replace(/\s+/g, ' ').toLowerCase();

const CLAIMS = [
  ['memory queue', 'a memory queue (the default) survives backend outages but not a crash or kill of the gateway'],
  ['disk queue', 'a disk queue (queue.dir) also survives kill -9, and power loss with queue.fsync: always'],
  [
    'tail sampling',
    'spans of a tail-sampled pipeline are held in memory until their trace is decided and every backend has taken it',
  ],
];

describe('durability wording', () => {
  for (const doc of DOCS) {
    it(`${doc} states what an acknowledgement survives`, () => {
      const text = norm(fs.readFileSync(path.join(ROOT, doc), 'utf8'));
      for (const [what, claim] of CLAIMS) assert.ok(text.includes(claim), `${doc}: no "${claim}" (${what})`);
      assert.doesNotMatch(text, /nothing acknowledged is lost/, `${doc}: an unqualified "nothing acknowledged is lost"`);
    });
  }
});
