import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentStore, packChunks, unpackChunks } from '../../../agent/src/store/agent-store.js';
import type { FileDigest } from '../../../agent/src/signature/hashing/engine.js';
import type { Manifest } from '../../../agent/src/signature/manifest.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-store-'));
const dbPath = join(dir, 'agent.db');
test.after(() => rmSync(dir, { recursive: true, force: true }));

const h = (c: string) => c.repeat(64);
const digest: FileDigest = {
  path: '/var/lib/vm/a.raw',
  size: 3 * 1024 * 1024,
  chunkSize: 1024 * 1024,
  digest: h('a'),
  chunks: [h('1'), h('2'), h('3')],
  identity: { dev: '2049', ino: '18446744073709551615', size: '3145728', mtimeNs: '1', ctimeNs: '2' },
  reused: false,
  stable: true,
  stats: { bytesRead: 3145728, holeChunks: 0, zeroChunks: 0, ms: 1 },
};

const manifest: Manifest = {
  version: 1,
  serverId: 'u1',
  instanceName: 'vm',
  node: 'n',
  createdAt: '2026-01-01T00:00:00.000Z',
  config: { digest: 'sha256:' + h('c') },
  boot: [],
  disks: [],
};

test('chunks pack into 32 bytes each and back', () => {
  const blob = packChunks(digest.chunks);
  assert.is(blob.length, 96);
  assert.equal(unpackChunks(blob), digest.chunks);
  assert.equal(unpackChunks(Buffer.alloc(0)), []);
});

test('digest cache survives reopening; reused results are not written', async () => {
  let store = await AgentStore.open(dbPath);
  await store.cacheDigests([digest], '2026-01-01T00:00:00.000Z');
  await store.close();
  store = await AgentStore.open(dbPath);
  const got = await store.cachedDigest(digest.path);
  // A result without an algorithm (from before BLAKE3) is SHA-256.
  const stats = { bytesRead: 0, holeChunks: 0, zeroChunks: 0, ms: 0 };
  assert.equal(got, { ...digest, algorithm: 'sha256', stats });
  await store.cacheDigests([{ ...digest, algorithm: 'blake3' }], '2026-01-01T00:00:01.000Z');
  assert.is((await store.cachedDigest(digest.path))!.algorithm, 'blake3');
  await store.cacheDigests([{ ...digest, digest: h('b'), reused: true }], 'x');
  assert.is((await store.cachedDigest(digest.path))!.digest, h('a'));
  await store.forgetDigest(digest.path);
  assert.is(await store.cachedDigest(digest.path), undefined);
  await store.close();
});

test('signatures: insert, no silent overwrite, replace, baseline files, verdicts', async () => {
  const store = await AgentStore.open(dbPath);
  const sig = {
    serverId: 'u1',
    instanceName: 'vm',
    manifest,
    signature: 'sig1',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: null,
    lastVerdict: 'true' as const,
    lastVerifiedAt: '2026-01-01T00:00:00.000Z',
  };
  assert.ok(await store.putSignature(sig, [digest], { replace: false }));
  assert.not.ok(await store.putSignature({ ...sig, signature: 'sig2' }, [], { replace: false }));
  assert.equal(await store.getSignature('u1'), sig);
  const bf = await store.baselineFile('u1', digest.path);
  assert.equal(bf, {
    path: digest.path,
    digest: h('a'),
    size: digest.size,
    chunkSize: digest.chunkSize,
    algorithm: 'sha256',
    chunks: digest.chunks,
  });
  assert.ok(
    await store.putSignature({ ...sig, signature: 'sig2', updatedAt: '2026-01-02T00:00:00.000Z' }, [], {
      replace: true,
    }),
  );
  assert.is((await store.getSignature('u1'))!.signature, 'sig2');
  assert.is(await store.baselineFile('u1', digest.path), undefined);
  await store.recordVerdict('u1', 'false', '2026-01-03T00:00:00.000Z');
  assert.is((await store.getSignature('u1'))!.lastVerdict, 'false');
  assert.is((await store.listSignatures()).length, 1);
  assert.ok(await store.deleteSignature('u1'));
  assert.is(await store.getSignature('u1'), undefined);
  await store.close();
});

test('validation state persists with its activation time', async () => {
  let store = await AgentStore.open(dbPath);
  assert.equal(await store.validation(), { active: false, since: null });
  assert.ok(await store.setValidation(true, '2026-02-01T00:00:00.000Z'));
  assert.not.ok(await store.setValidation(true, '2026-02-02T00:00:00.000Z'));
  await store.close();
  store = await AgentStore.open(dbPath);
  assert.equal(await store.validation(), { active: true, since: '2026-02-01T00:00:00.000Z' });
  assert.ok(await store.setValidation(false, '2026-02-03T00:00:00.000Z'));
  assert.equal(await store.validation(), { active: false, since: null });
  await store.close();
});

test.run();
