import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InsecureFileError } from '../../../lib/platform/private-file.js';
import type { Manifest } from '../../../agent/src/signature/manifest.js';
import { canonicalJson } from '../../../agent/src/signature/manifest.js';
import { NodeKey, verifyManifest } from '../../../agent/src/signature/node-key.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-key-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const manifest: Manifest = {
  version: 1,
  serverId: '0b7f6a51-3c1e-4c52-9d2b-0a1e2f3c4d5e',
  instanceName: 'web-1',
  node: 'host-a',
  createdAt: '2026-01-01T00:00:00.000Z',
  config: { digest: 'sha256:' + '1'.repeat(64) },
  boot: [{ role: 'kernel', path: '/boot/vmlinuz', size: 10, digest: 'sha256-1m:' + '2'.repeat(64) }],
  disks: [{ target: 'vda', path: '/var/lib/vm/a.qcow2', state: 'in-use' }],
};

test('canonicalJson sorts keys at every level', () => {
  assert.is(
    canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } }),
    '{"a":{"d":[{"y":2,"z":1}]},"b":1}',
  );
});

test('key is created 0600 and loaded again unchanged', () => {
  const k1 = NodeKey.loadOrCreate(dir);
  assert.is(statSync(k1.path).mode & 0o777, 0o600);
  const k2 = NodeKey.loadOrCreate(dir);
  assert.is(k2.publicKeyPem, k1.publicKeyPem);
  assert.match(k1.publicKeyPem, /BEGIN PUBLIC KEY/);
  assert.match(k1.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
});

test('signature verifies offline and fails after tampering', () => {
  const key = NodeKey.loadOrCreate(dir);
  const sig = key.sign(manifest);
  assert.is(Buffer.from(sig, 'base64').length, 64);
  // key order of the object does not matter, the canonical JSON does
  const { disks, ...rest } = manifest;
  const reordered = JSON.parse(JSON.stringify({ disks, ...rest })) as Manifest;
  assert.is.not(JSON.stringify(reordered), JSON.stringify(manifest));
  assert.ok(verifyManifest(key.publicKeyPem, reordered, sig));
  assert.not.ok(verifyManifest(key.publicKeyPem, { ...manifest, instanceName: 'web-2' }, sig));
  const tampered = structuredClone(manifest);
  tampered.boot[0]!.digest = 'sha256-1m:' + '3'.repeat(64);
  assert.not.ok(verifyManifest(key.publicKeyPem, tampered, sig));
  const other = NodeKey.loadOrCreate(join(dir, 'other'));
  assert.not.ok(verifyManifest(other.publicKeyPem, manifest, sig));
  assert.not.ok(verifyManifest('not a key', manifest, sig));
  assert.not.ok(verifyManifest(key.publicKeyPem, manifest, 'AAAA'));
});

test('a group/other-readable key file is refused', () => {
  const key = NodeKey.loadOrCreate(dir);
  chmodSync(key.path, 0o644);
  assert.throws(
    () => NodeKey.loadOrCreate(dir),
    (e: unknown) => e instanceof InsecureFileError && /chmod 600/.test((e as Error).message),
  );
  chmodSync(key.path, 0o600);
  assert.is(NodeKey.loadOrCreate(dir).publicKeyPem, key.publicKeyPem);
});

test.run();
