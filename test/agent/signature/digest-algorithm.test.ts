// SHA-256 and BLAKE3 file digests: BLAKE3 chunked digests against b3sum, manifests of both
// algorithms checked offline, and a fleet switching digests keeping its older signatures valid.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectHypervisor, type Hypervisor } from '../../../agent/src/libvirt/hypervisor.js';
import { AgentStore } from '../../../agent/src/store/agent-store.js';
import { HashEngine } from '../../../agent/src/signature/hashing/engine.js';
import type { Manifest } from '../../../agent/src/signature/manifest.js';
import { NodeKey } from '../../../agent/src/signature/node-key.js';
import { verifyManifestOffline } from '../../../agent/src/signature/offline.js';
import { SignatureService } from '../../../agent/src/signature/service.js';
import { domainXml, flipByte, makeVmFiles, MiB, type VmFiles } from './fixtures.js';
import { sleep } from '../../helpers/wait.js';

/** b3sum of bytes given on stdin: the reference, independent of the agent's code. */
const b3sum = (data: Buffer) => execFileSync('b3sum', ['--no-names'], { input: data }).toString().trim();

/** The documented composition (hashing/digest.ts), every digest taken by b3sum. */
function b3Reference(data: Buffer): { digest: string; chunks: string[] } {
  const chunks: string[] = [];
  for (let o = 0; o < data.length; o += MiB) chunks.push(b3sum(data.subarray(o, o + MiB)));
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(data.length));
  return { digest: b3sum(Buffer.concat([Buffer.from(chunks.join(''), 'hex'), size])), chunks };
}

let hv: Hypervisor;
let files: VmFiles;
let dataDir: string;
let engine: HashEngine;
let store: AgentStore;
let svc: SignatureService;
const oldVm = randomUUID();
const newVm = randomUUID();

test.before(async () => {
  hv = await connectHypervisor('test:///default');
  files = makeVmFiles('vmwarden-digest-');
  dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-agent-'));
  engine = new HashEngine({ workers: 2 });
  await hv.defineXml(domainXml(files, { name: 'old-vm', uuid: oldVm }));
  await hv.defineXml(domainXml(files, { name: 'new-vm', uuid: newVm }));
  await sleep(120); // files written just now would be "racy" for the fast re-check
  store = await AgentStore.open(join(dataDir, 'agent.db'));
  svc = new SignatureService({ hypervisor: hv, store, key: NodeKey.loadOrCreate(dataDir), engine });
});

test.after(async () => {
  await store.close();
  await engine.close();
  await hv.close();
  files.remove();
  rmSync(dataDir, { recursive: true, force: true });
});

test('BLAKE3 chunk and file digests equal b3sum of each chunk, composed as documented', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-b3-'));
  try {
    // 3 MiB + 5 bytes: a random chunk, an all-zero chunk (never hashed), one starting with 300 KiB
    // of zeros (read pieces that are all zero, then data), a short tail.
    const data = Buffer.alloc(3 * MiB + 5);
    data.set(readFileSync(files.data).subarray(0, MiB), 0);
    data.set(readFileSync(files.data).subarray(MiB, 2 * MiB + 5 - 300 * 1024), 2 * MiB + 300 * 1024);
    const path = join(dir, 'f.raw');
    writeFileSync(path, data);
    const ref = b3Reference(data);
    for (const readBytes of [4096, 100_000, MiB]) {
      const e = new HashEngine({ workers: 2, algorithm: 'blake3', readBytes });
      try {
        const r = await e.hashFile(path);
        assert.is(r.algorithm, 'blake3');
        assert.equal(r.chunks, ref.chunks, `readBytes ${readBytes}`);
        assert.is(r.digest, ref.digest);
        assert.is(r.stats.zeroChunks, 1);
      } finally {
        await e.close();
      }
    }
    // The whole-file b3sum is a different thing (no chunking): the prefix in manifests tells them apart.
    assert.is.not(ref.digest, b3sum(data));
    const sha = await engine.hashFile(path, { algorithm: 'sha256' });
    assert.is.not(sha.digest, ref.digest);
    // An empty file: no chunks, the digest of the size alone.
    writeFileSync(join(dir, 'empty'), '');
    const empty = await engine.hashFile(join(dir, 'empty'), { algorithm: 'blake3' });
    assert.equal(empty.chunks, []);
    assert.is(empty.digest, b3sum(Buffer.alloc(8)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a fleet switching to BLAKE3: old SHA-256 signatures keep verifying, new ones are BLAKE3', async () => {
  assert.is(svc.digestAlgorithm, 'sha256');
  const old = await svc.sign(oldVm);
  assert.is(old.manifest.digestAlgorithm, undefined); // SHA-256 manifests look exactly as before
  assert.ok(old.manifest.boot.every((b) => b.digest.startsWith('sha256-1m:')));

  svc.setDigestAlgorithm('blake3');
  const fresh = await svc.sign(newVm);
  assert.is(fresh.manifest.digestAlgorithm, 'blake3');
  const all = [...fresh.manifest.boot, ...fresh.manifest.disks];
  assert.ok(all.every((e) => 'digest' in e && /^blake3-1m:[0-9a-f]{64}$/.test(e.digest)));

  // Same files, both baselines: each is checked with its own algorithm, from the cache or not.
  for (const full of [false, true]) {
    assert.is((await svc.verify(oldVm, { full })).isValid, 'true');
    assert.is((await svc.verify(newVm, { full })).isValid, 'true');
  }
  // A seal keeps the baseline's algorithm.
  const resealed = await svc.sealDisks(oldVm);
  assert.is(resealed.manifest.digestAlgorithm, undefined);
  assert.ok(resealed.manifest.disks.every((d) => 'digest' in d && d.digest.startsWith('sha256-1m:')));
  assert.is((await svc.verify(oldVm)).isValid, 'true');

  // Back to SHA-256: the BLAKE3 baseline still verifies.
  svc.setDigestAlgorithm('sha256');
  assert.is((await svc.verify(newVm, { full: true })).isValid, 'true');
});

test('manifests of both algorithms verify offline: signature and files', async () => {
  for (const uuid of [oldVm, newVm]) {
    const rec = (await svc.get(uuid))!;
    const v = await verifyManifestOffline(svc.publicKeyPem, rec.manifest, rec.signature, { engine });
    assert.is(v.algorithm, uuid === oldVm ? 'sha256' : 'blake3');
    assert.ok(v.signatureValid);
    assert.is(v.files.length, 6);
    assert.ok(v.valid, JSON.stringify(v.files.filter((f) => f.problem)));
  }
  // A manifest that claims BLAKE3 over SHA-256 digests is refused, whatever the files hold.
  const rec = (await svc.get(oldVm))!;
  const claimed: Manifest = { ...rec.manifest, digestAlgorithm: 'blake3' };
  const mixed = await verifyManifestOffline(svc.publicKeyPem, claimed, rec.signature, { files: false });
  assert.not.ok(mixed.signatureValid);
  assert.ok(mixed.files.every((f) => f.problem === 'digest is not a blake3 file digest'));
  assert.not.ok(mixed.valid);
});

test('a changed file is found by the service and offline, in a BLAKE3 baseline', async () => {
  flipByte(files.data, 3 * MiB + 17);
  const v = await svc.verify(newVm);
  assert.is(v.isValid, 'false');
  const disk = v.differences.find((d) => d.component === 'disk' && d.path === files.data)!;
  assert.ok(disk.actual!.startsWith('blake3-1m:'));
  assert.equal(disk.chunks, [3]);
  const rec = (await svc.get(newVm))!;
  const off = await verifyManifestOffline(svc.publicKeyPem, rec.manifest, rec.signature, { engine });
  assert.ok(off.signatureValid);
  assert.not.ok(off.valid);
  assert.equal(
    off.files.filter((f) => f.problem).map((f) => [f.path, f.problem]),
    [[files.data, 'content differs']],
  );
  // The SHA-256 baseline of the same disk sees it too.
  assert.is((await svc.verify(oldVm)).isValid, 'false');
});

test.run();
