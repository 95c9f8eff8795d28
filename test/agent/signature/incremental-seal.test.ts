// Incremental seals of qcow2 disks: real qcow2 images, real qemu-io writes, real qemu-img, qemu-nbd
// and nbdinfo; the agent's own flow (Enforcer start check → Started → Stopped → seal) over libvirt's
// test driver. qemu-io stands in for the QEMU of a running guest: like QEMU, it writes through the
// block layer, so the image's enabled persistent bitmap records its writes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Enforcer } from '../../../agent/src/enforce/enforcer.js';
import { StartGuard } from '../../../agent/src/enforce/start-guard.js';
import { connectHypervisor, type Hypervisor } from '../../../agent/src/libvirt/hypervisor.js';
import { DomainDefinition } from '../../../agent/src/signature/domain-definition.js';
import { hashGuestDisk, type GuestDigest } from '../../../agent/src/signature/guest-disk/hasher.js';
import { readQcow2Dirty } from '../../../agent/src/signature/guest-disk/qcow2-dirty.js';
import { SEAL_BITMAP, type GuestDisks } from '../../../agent/src/signature/guest-disk/seal-trust.js';
import { HashEngine, type FileDigest } from '../../../agent/src/signature/hashing/engine.js';
import { fileDigest, isSealed, type SealedDisk } from '../../../agent/src/signature/manifest.js';
import { NodeKey } from '../../../agent/src/signature/node-key.js';
import { SignatureService } from '../../../agent/src/signature/service.js';
import { AgentStore } from '../../../agent/src/store/agent-store.js';
import { sleep } from '../../helpers/wait.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

let hv: Hypervisor;
let dir: string;
let engine: HashEngine;
let store: AgentStore;
let svc: SignatureService;
let enforcer: Enforcer;
const uuid = randomUUID();
const name = `vm-inc-${uuid.slice(0, 8)}`;
let xml: string;
let qcow: string;
let raw: string;
const sealedPasses: GuestDigest[] = [];
const hashedFiles: FileDigest[] = [];

const qemuIo = (fmt: string, path: string, ...cmds: string[]) =>
  execFileSync('qemu-io', ['-f', fmt, ...cmds.flatMap((c) => ['-c', c]), path], { stdio: 'pipe' });

function bitmaps(path: string): Array<{ name: string; flags: string[] }> {
  const info = JSON.parse(
    execFileSync('qemu-img', ['info', '--output=json', '-U', path], { encoding: 'utf8' }),
  );
  return info['format-specific']?.data?.bitmaps ?? [];
}

const vda = async (): Promise<SealedDisk> => {
  const d = (await svc.get(uuid))!.manifest.disks.find((x) => x.target === 'vda')!;
  assert.ok(isSealed(d));
  return d as SealedDisk;
};

/** The chunks the seal bitmap marks, read by the agent's own qcow2 reader. */
async function dirtyChunks(): Promise<number[] | string> {
  const fh = await open(qcow, 'r');
  try {
    const d = await readQcow2Dirty(fh, SEAL_BITMAP, MiB);
    return 'dirty' in d ? d.dirty : JSON.stringify(d);
  } finally {
    await fh.close();
  }
}

async function fullDigest(): Promise<string> {
  return fileDigest((await hashGuestDisk(qcow, { format: 'qcow2' })).digest);
}

/** The start check the libvirt hook asks for (the hook's HTTP layer aside). */
const checkStart = async () => enforcer.checkStart(uuid, new DomainDefinition(await hv.inactiveXml(uuid)));
const lifecycle = (event: string, detail: string) => enforcer.lifecycleEvent({ name, event, detail });

/** One run as the agent sees it: start check, Started, the guest writes, Stopped (→ seal). */
async function run(writes: () => unknown, opts: { verified?: boolean } = {}): Promise<GuestDigest> {
  if (opts.verified !== false) {
    const r = await checkStart();
    assert.ok(r.allowed, r.reason);
  }
  await lifecycle('Started', 'Booted');
  await writes();
  sealedPasses.length = 0;
  await lifecycle('Stopped', 'Shutdown');
  if (sealedPasses.length !== 1) {
    const why = await svc.sealDisks(uuid).then(
      () => 'sealed on a second try',
      (e: Error) => e.message,
    );
    assert.unreachable(`the seal at Stopped failed: ${why}`);
  }
  await sleep(60); // the next fast re-check must not see racy files
  return sealedPasses[0]!;
}

test.before(async () => {
  hv = await connectHypervisor('test:///default');
  dir = mkdtempSync(join(tmpdir(), 'vmwarden-incseal-'));
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(64 * 1024));
  qcow = join(dir, 'disk.qcow2');
  raw = join(dir, 'data.raw');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow, '8G']);
  qemuIo('qcow2', qcow, 'write -P 0x11 0 4M', 'write -P 0x22 7G 2M');
  writeFileSync(raw, randomBytes(4 * MiB));
  xml = `<domain type='test'>
  <name>${name}</name><uuid>${uuid}</uuid><memory unit='KiB'>65536</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>${join(dir, 'vmlinuz')}</kernel></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${qcow}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${raw}'/><target dev='vdb' bus='virtio'/></disk>
  </devices>
</domain>`;
  await hv.defineXml(xml);
  await sleep(120);
  engine = new HashEngine({ workers: 2 });
  store = await AgentStore.open(join(dir, 'agent.db'));
  const guard = new StartGuard(hv);
  // one service over the start guard, as in the agent (daemon.ts)
  svc = new SignatureService({
    hypervisor: guard,
    store,
    key: NodeKey.loadOrCreate(dir),
    engine,
    node: 'node-inc',
    onHashed: (f) => hashedFiles.push(f),
    onGuestSealed: (_p, d) => sealedPasses.push(d),
  });
  enforcer = new Enforcer({
    signatures: svc,
    guard,
    hypervisor: hv,
    events: new EventEmitter(),
    config: { unsignedPolicy: 'refuse', tamperPolicy: 'alert', hookFailPolicy: 'closed' },
    dataDir: dir,
    socket: join(dir, 'agent.sock'),
  });
  await svc.setValidation(true);
});

test.after(async () => {
  await store?.close();
  await engine?.close();
  await hv?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('signing seals the qcow2 disk over its guest content and leaves a fresh bitmap; raw disks over file bytes', async () => {
  sealedPasses.length = 0;
  const rec = await svc.sign(uuid);
  const d = await vda();
  assert.is(d.content, 'guest');
  assert.is(d.format, 'qcow2');
  assert.is(d.size, 8 * GiB);
  assert.is(d.digest, await fullDigest());
  const data = rec.manifest.disks.find((x) => x.target === 'vdb') as SealedDisk;
  assert.is(data.content, undefined);
  assert.is(data.size, 4 * MiB);
  assert.is(sealedPasses[0]!.pass.mode, 'full');
  assert.equal(bitmaps(qcow), [{ name: SEAL_BITMAP, flags: ['auto'], granularity: 65536 }]);
  await sleep(60);
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'true', JSON.stringify(v.differences));
  assert.is(v.stats!.bytesRead, 0, 'unchanged: re-checked from file identities');
});

test('a verified run writing 1 MiB: only the chunks it touched are hashed, manifest equal to a full re-hash', async () => {
  const before = (await vda()).digest;
  const pass = await run(() =>
    // 1 MiB at a chunk boundary (1 chunk) and 1 MiB straddling two chunks
    qemuIo('qcow2', qcow, 'write -P 0xab 3G 1M', 'write -P 0xcd 5632512K 1M'),
  );
  assert.is(pass.pass.mode, 'incremental', pass.pass.why);
  assert.is(pass.pass.chunksHashed, 3);
  assert.is(pass.stats.bytesRead, 3 * MiB);
  const d = await vda();
  assert.is.not(d.digest, before);
  assert.is(d.digest, await fullDigest(), 'incremental manifest == full re-hash');
  assert.equal(bitmaps(qcow), [{ name: SEAL_BITMAP, flags: ['auto'], granularity: 65536 }], 'fresh bitmap');
  assert.is(pass.bitmapReset, true, 'reset while the dirty chunks were hashed');
  assert.equal(await dirtyChunks(), [], 'the fresh bitmap is empty');
  const quick = await svc.verify(uuid);
  assert.is(quick.isValid, 'true', JSON.stringify(quick.differences));
  assert.is(quick.stats!.bytesRead, 0, "the image's identity after the reset was recorded");
  const v = await svc.verify(uuid, { full: true });
  assert.is(v.isValid, 'true', JSON.stringify(v.differences));
});

test('a seal that ends after the bitmap reset but before its commit: the next seal reads everything', async () => {
  const guest = (svc as unknown as { guest: GuestDisks }).guest; // the service's own seal steps
  const pass = await run(async () => {
    qemuIo('qcow2', qcow, 'write -P 0x3c 1G 1M');
    // the first step of a seal whose instance then starts again (no commit follows)
    const read = await guest.read(uuid, qcow, 'qcow2', 'sha256', await vda());
    assert.is(read.pass.mode, 'incremental');
    assert.is(read.bitmapReset, true);
    assert.is(await guest.trustOf(qcow), undefined, 'the trust record went before the reset');
    qemuIo('qcow2', qcow, 'write -P 0x3d 1G 1M');
  });
  assert.is(pass.pass.mode, 'full');
  assert.is((await vda()).digest, await fullDigest());
});

test('a raw disk keeps the full re-hash', async () => {
  hashedFiles.length = 0;
  await run(() => qemuIo('raw', raw, 'write -P 0x5a 1M 4k'));
  const f = hashedFiles.filter((x) => x.path === raw).pop()!; // the seal's, after the start check's
  assert.ok(f, 'raw disk hashed at the seal');
  assert.is(f.stats.bytesRead, 4 * MiB);
  const v = await svc.verify(uuid, { full: true });
  assert.is(v.isValid, 'true', JSON.stringify(v.differences));
});

test('an offline edit with the bitmap cleared: full re-hash at the start check, refused', async () => {
  qemuIo('qcow2', qcow, 'write -P 0x66 1G 4k');
  execFileSync('qemu-img', ['bitmap', '--clear', qcow, SEAL_BITMAP]);
  const r = await checkStart();
  assert.is(r.allowed, false);
  assert.match(r.reason, /disk vda .*changed in chunk 1024/);
  // the bitmap is not trusted afterwards either: the next seal reads everything
  const pass = await run(() => undefined, { verified: false });
  assert.is(pass.pass.mode, 'full');
  assert.is((await vda()).digest, await fullDigest());
});

test('a start the agent did not verify: full re-hash at the seal', async () => {
  const pass = await run(() => qemuIo('qcow2', qcow, 'write -P 0x77 2G 1M'), { verified: false });
  assert.is(pass.pass.mode, 'full');
  assert.is(pass.pass.why, 'bitmap not trusted since the last seal');
  assert.is((await vda()).digest, await fullDigest());
});

test('a missing bitmap: full re-hash (and a new bitmap)', async () => {
  const pass = await run(() => {
    qemuIo('qcow2', qcow, 'write -P 0x78 2G 1M');
    execFileSync('qemu-img', ['bitmap', '--remove', qcow, SEAL_BITMAP]);
  });
  assert.is(pass.pass.mode, 'full');
  assert.is(pass.pass.why, 'bitmap missing');
  assert.is((await vda()).digest, await fullDigest());
  assert.equal(
    bitmaps(qcow).map((b) => b.name),
    [SEAL_BITMAP],
  );
});

test('a crash leaves the bitmap in use (not stored): full re-hash', async () => {
  const pass = await run(() => {
    // qemu-io dies by SIGKILL after writing, as a crashed QEMU would: the bitmap is never stored
    assert.throws(() => qemuIo('qcow2', qcow, 'write -P 0x79 6G 1M', 'sigraise 9'));
    assert.equal(bitmaps(qcow)[0]!.flags.sort(), ['auto', 'in-use']);
  });
  assert.is(pass.pass.mode, 'full');
  assert.is(pass.pass.why, 'bitmap inconsistent');
  assert.is((await vda()).digest, await fullDigest());
});

test('the image touched while off, between seal and start: no trust for that run', async () => {
  await sleep(20);
  execFileSync('touch', [qcow]);
  const r = await checkStart(); // content unchanged: allowed after a full read
  assert.ok(r.allowed, r.reason);
  const pass = await run(() => qemuIo('qcow2', qcow, 'write -P 0x7a 4G 1M'), { verified: false });
  assert.is(pass.pass.mode, 'full');
});

test('an older manifest over file bytes still verifies; the next seal moves it to guest content', async () => {
  const old = new SignatureService({
    hypervisor: hv,
    store,
    key: NodeKey.loadOrCreate(dir),
    engine,
    node: 'node-inc',
    guestDisks: false,
  });
  await old.sign(uuid, { replace: true });
  const d = await vda();
  assert.is(d.content, undefined);
  assert.is(d.size, statSync(qcow).size);
  await sleep(60);
  assert.is((await svc.verify(uuid, { full: true })).isValid, 'true');
  await svc.sealDisks(uuid);
  assert.is((await vda()).content, 'guest');
  assert.is((await svc.verify(uuid, { full: true })).isValid, 'true');
});

test.run();
