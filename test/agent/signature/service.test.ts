// The signature service end to end over libvirt's test driver: one Hypervisor adapter for the
// whole file (the test driver keeps its state per connection), real files, real qemu-img.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectHypervisor, type Hypervisor } from '../../../agent/src/libvirt/hypervisor.js';
import { AgentStore } from '../../../agent/src/store/agent-store.js';
import { AlreadySignedError, DomainStateError, NotFoundError } from '../../../agent/src/signature/errors.js';
import { HashEngine } from '../../../agent/src/signature/hashing/engine.js';
import { isSealed } from '../../../agent/src/signature/manifest.js';
import { NodeKey, verifyManifest } from '../../../agent/src/signature/node-key.js';
import { SignatureService, type Verdict } from '../../../agent/src/signature/service.js';
import { domainXml, flipByte, makeVmFiles, MiB, type VmFiles } from './fixtures.js';
import { sleep } from '../../helpers/wait.js';
import { attachLoop, detachAll, loopUnavailable } from '../../helpers/loop.js';

const loopSkip = loopUnavailable();

let hv: Hypervisor;
let files: VmFiles;
let dataDir: string;
let engine: HashEngine;
let store: AgentStore;
let svc: SignatureService;
const uuid = randomUUID();
let xml: string;

async function openService(): Promise<void> {
  store = await AgentStore.open(join(dataDir, 'agent.db'));
  svc = new SignatureService({
    hypervisor: hv,
    store,
    key: NodeKey.loadOrCreate(dataDir),
    engine,
    node: 'node-a',
  });
}

async function expectReject<E>(p: Promise<unknown>, cls: new (...a: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, cls);
    return e as E;
  }
  assert.unreachable(`expected ${cls.name}`);
  throw new Error('unreachable');
}

const summary = (v: Verdict) =>
  v.differences.map((d) => `${d.component}:${d.role ?? d.target ?? ''}:${d.reason ?? ''}`).join(', ');

test.before(async () => {
  hv = await connectHypervisor('test:///default');
  files = makeVmFiles();
  dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-agent-'));
  engine = new HashEngine({ workers: 2 });
  xml = domainXml(files, { name: 'vm1', uuid });
  await hv.defineXml(xml);
  await sleep(120); // files written just now would be "racy" for the fast re-check
  await openService();
});

test.after(async () => {
  detachAll(); // loop devices, also when a test failed half-way
  await store.close();
  await engine.close();
  await hv.close();
  files.remove();
  rmSync(dataDir, { recursive: true, force: true });
});

test('verify before signing is unknown', async () => {
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'unknown');
  assert.equal(v.differences, []);
});

test('sign a shut-off instance: config, boot artifacts, sealed disks', async () => {
  const rec = await svc.sign(uuid);
  assert.is(rec.serverId, uuid);
  assert.is(rec.instanceName, 'vm1');
  assert.is(rec.updatedAt, null);
  assert.is(rec.lastVerdict, 'true');
  const m = rec.manifest;
  assert.is(m.version, 1);
  assert.is(m.node, 'node-a');
  assert.match(m.config.digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(
    m.boot.map((b) => [b.role, b.path]),
    [
      ['kernel', files.kernel],
      ['initrd', files.initrd],
      ['readonly-disk', files.seed],
      ['backing-file', files.base],
    ],
  );
  assert.is(m.boot[0]!.size, MiB + 4096);
  assert.match(m.boot[0]!.digest, /^sha256-1m:[0-9a-f]{64}$/);
  assert.equal(
    m.disks.map((d) => [d.target, d.path, isSealed(d)]),
    [
      ['vda', files.overlay, true],
      ['vdb', files.data, true],
    ],
  );
  assert.is(m.unsupported, undefined);
  assert.equal(await svc.get(uuid), rec);
});

test('verify right after signing is true', async () => {
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'true', summary(v));
  assert.equal(v.differences, []);
  assert.is(v.skipped, undefined);
  assert.is((await svc.get(uuid))!.lastVerdict, 'true');
});

test('fast re-check of an unchanged instance reads no bytes, also after a restart', async () => {
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'true');
  assert.is(v.stats!.files, 6);
  assert.is(v.stats!.reused, 6);
  assert.is(v.stats!.bytesRead, 0);
  await store.close();
  await openService();
  // Nothing read again is what makes it fast; how fast is `npm run bench:hash`'s figure.
  const again = await svc.verify(uuid);
  assert.is(again.isValid, 'true');
  assert.is(again.stats!.bytesRead, 0);
  assert.is(again.stats!.reused, 6);
});

test('manifest signature verifies offline and fails after tampering', async () => {
  const rec = (await svc.get(uuid))!;
  assert.ok(verifyManifest(svc.publicKeyPem, rec.manifest, rec.signature));
  const tampered = structuredClone(rec.manifest);
  tampered.config.digest = 'sha256:' + '0'.repeat(64);
  assert.not.ok(verifyManifest(svc.publicKeyPem, tampered, rec.signature));
});

test('sign twice without replace is AlreadySignedError; unknown uuid is NotFoundError', async () => {
  await expectReject(svc.sign(uuid), AlreadySignedError);
  await expectReject(svc.sign(uuid, { replace: false }), AlreadySignedError);
  const missing = randomUUID();
  await expectReject(svc.sign(missing), NotFoundError);
  await expectReject(svc.verify(missing), NotFoundError);
  await expectReject(svc.sealDisks(missing), NotFoundError);
  assert.is(await svc.get(missing), undefined);
});

test('semantic edit of the definition is false naming config; restoring it is true', async () => {
  await hv.defineXml(domainXml(files, { name: 'vm1', uuid, memoryKiB: 2097152 }));
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'false');
  assert.is(v.differences.length, 1, summary(v));
  assert.is(v.differences[0]!.component, 'config');
  assert.is(v.differences[0]!.expected, (await svc.get(uuid))!.manifest.config.digest);
  assert.is((await svc.get(uuid))!.lastVerdict, 'false');
  await hv.defineXml(xml);
  assert.is((await svc.verify(uuid)).isValid, 'true');
});

test('cosmetic edit of the definition (indentation, attribute order, quotes) stays true', async () => {
  const cosmetic = xml
    .replace(/\n\s*/g, '\n        ')
    .replace("<disk type='file' device='disk'>", '<disk device="disk" type="file">')
    .replace("<target dev='vda' bus='virtio'/>", '<target bus="virtio" dev="vda"></target>')
    .replace('<vcpu>1</vcpu>', '<!-- one cpu --><vcpu>1</vcpu>');
  assert.is.not(cosmetic, xml);
  await hv.defineXml(cosmetic);
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'true', summary(v));
  await hv.defineXml(xml);
});

test('one byte of the kernel changed is false naming boot/kernel and chunk 0', async () => {
  flipByte(files.kernel, 100);
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'false');
  assert.is(v.differences.length, 1, summary(v));
  const d = v.differences[0]!;
  assert.is(d.component, 'boot');
  assert.is(d.role, 'kernel');
  assert.is(d.path, files.kernel);
  assert.equal(d.chunks, [0]);
  assert.is.not(d.actual, d.expected);
  flipByte(files.kernel, 100);
  assert.is((await svc.verify(uuid)).isValid, 'true');
});

test('one byte of a backing file changed is false naming the backing file', async () => {
  flipByte(files.base, MiB + 10);
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'false');
  assert.is(v.differences.length, 1, summary(v));
  const d = v.differences[0]!;
  assert.is(d.component, 'boot');
  assert.is(d.role, 'backing-file');
  assert.is(d.path, files.base);
  assert.equal(d.chunks, [1]);
  flipByte(files.base, MiB + 10);
  assert.is((await svc.verify(uuid)).isValid, 'true');
});

test('a missing boot file is false naming it', async () => {
  renameSync(files.initrd, files.initrd + '.away');
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'false');
  assert.equal(v.differences, [
    {
      component: 'boot',
      role: 'initrd',
      path: files.initrd,
      expected: (await svc.get(uuid))!.manifest.boot[1]!.digest,
      reason: 'missing',
    },
  ]);
  renameSync(files.initrd + '.away', files.initrd);
  assert.is((await svc.verify(uuid)).isValid, 'true');
});

test('one byte of a sealed disk of a shut-off instance is false naming the disk and chunk 3', async () => {
  flipByte(files.data, 3 * MiB + 5);
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'false');
  assert.is(v.differences.length, 1, summary(v));
  const d = v.differences[0]!;
  assert.is(d.component, 'disk');
  assert.is(d.target, 'vdb');
  assert.is(d.path, files.data);
  assert.equal(d.chunks, [3]);
  // still named after a restart (the chunk lists of the baseline are stored)
  await store.close();
  await openService();
  const again = await svc.verify(uuid);
  assert.equal(again.differences[0]!.chunks, [3]);
});

test('re-sign (replace) makes the changed state the baseline: true, updatedAt set', async () => {
  const before = (await svc.get(uuid))!;
  await sleep(5);
  const rec = await svc.sign(uuid, { replace: true });
  assert.is(rec.createdAt, before.createdAt);
  assert.ok(rec.updatedAt);
  assert.is.not(rec.signature, before.signature);
  assert.ok(verifyManifest(svc.publicKeyPem, rec.manifest, rec.signature));
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'true', summary(v));
});

test('running instance: a changed disk is in use, not false', async () => {
  await hv.start(uuid);
  flipByte(files.data, 5);
  const v = await svc.verify(uuid);
  assert.is(v.isValid, 'true', summary(v));
  assert.equal(v.skipped, [
    { component: 'disk', target: 'vda', path: files.overlay, reason: 'in-use' },
    { component: 'disk', target: 'vdb', path: files.data, reason: 'in-use' },
  ]);
  await expectReject(svc.sealDisks(uuid), DomainStateError);
  await hv.destroy(uuid);
  // shut off again: the disk now differs from its seal
  const off = await svc.verify(uuid);
  assert.is(off.isValid, 'false');
  assert.equal(
    off.differences.map((d) => [d.component, d.target, d.chunks]),
    [['disk', 'vdb', [0]]],
  );
  // sealing at shutdown takes the new disk content into the baseline
  const sealed = await svc.sealDisks(uuid);
  assert.ok(sealed.updatedAt);
  assert.ok(verifyManifest(svc.publicKeyPem, sealed.manifest, sealed.signature));
  assert.is((await svc.verify(uuid)).isValid, 'true');
});

test('signing a running instance records its disks in use; sealing later covers them', async () => {
  const files2 = makeVmFiles();
  const uuid2 = randomUUID();
  try {
    await hv.defineXml(domainXml(files2, { name: 'vm2', uuid: uuid2 }));
    await hv.start(uuid2);
    const rec = await svc.sign(uuid2);
    assert.equal(rec.manifest.disks, [
      { target: 'vda', path: files2.overlay, state: 'in-use' },
      { target: 'vdb', path: files2.data, state: 'in-use' },
    ]);
    await hv.destroy(uuid2);
    const v = await svc.verify(uuid2);
    assert.is(v.isValid, 'true');
    assert.equal(
      v.skipped!.map((s) => s.reason),
      ['not-sealed', 'not-sealed'],
    );
    const sealed = await svc.sealDisks(uuid2);
    assert.ok(sealed.manifest.disks.every(isSealed));
    const after = await svc.verify(uuid2);
    assert.is(after.isValid, 'true');
    assert.is(after.skipped, undefined);
  } finally {
    files2.remove();
  }
});

test('a network disk is not inspected: the verdict is unknown with its reason, never true', async () => {
  const files3 = makeVmFiles();
  const uuid3 = randomUUID();
  try {
    const net = `
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='nbd' name='export1'><host name='10.0.0.5' port='10809'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>`;
    await hv.defineXml(domainXml(files3, { name: 'vm3', uuid: uuid3, extraDevices: net }));
    await sleep(120);
    const rec = await svc.sign(uuid3);
    const reason = 'disk vdc: network disk (nbd export1) not inspected';
    assert.equal(rec.manifest.unsupported, [reason]);
    assert.ok(!rec.manifest.disks.some((d) => d.target === 'vdc'));
    assert.is(rec.lastVerdict, 'unknown');
    const v = await svc.verify(uuid3);
    assert.is(v.isValid, 'unknown', summary(v));
    assert.equal(v.uninspected, [reason]);
    assert.equal(v.differences, []);
    assert.is((await svc.get(uuid3))!.lastVerdict, 'unknown');
    // what is inspected still counts: a changed kernel is false
    flipByte(files3.kernel, 7);
    const bad = await svc.verify(uuid3);
    assert.is(bad.isValid, 'false');
    assert.equal(bad.uninspected, [reason]);
    flipByte(files3.kernel, 7);
    assert.is((await svc.verify(uuid3)).isValid, 'unknown');
  } finally {
    files3.remove();
  }
});

test('a block-device disk (loop device) is sealed and verified like a file disk', async () => {
  if (loopSkip) return console.log(`# block device test skipped: ${loopSkip}`);
  const files4 = makeVmFiles();
  const uuid4 = randomUUID();
  try {
    const image = join(files4.dir, 'lv.img');
    writeFileSync(image, randomBytes(3 * MiB));
    const dev = attachLoop(image);
    const block = `
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='${dev}'/>
      <target dev='vdc' bus='virtio'/>
    </disk>`;
    await hv.defineXml(domainXml(files4, { name: 'vm4', uuid: uuid4, extraDevices: block }));
    await sleep(120);
    const rec = await svc.sign(uuid4);
    assert.is(rec.manifest.unsupported, undefined);
    assert.is(rec.lastVerdict, 'true');
    const disk = rec.manifest.disks.find((d) => d.target === 'vdc')!;
    assert.ok(disk && isSealed(disk), JSON.stringify(rec.manifest.disks));
    assert.is(disk.path, dev);
    assert.is(isSealed(disk) && disk.size, 3 * MiB);

    const v = await svc.verify(uuid4);
    assert.is(v.isValid, 'true', summary(v));
    assert.is(v.uninspected, undefined);
    // the device is read at every check; the files are re-checked from their identity
    assert.is(v.stats!.bytesRead, 3 * MiB);
    assert.is(v.stats!.reused, v.stats!.files - 1);

    flipByte(dev, MiB + 3);
    const bad = await svc.verify(uuid4);
    assert.is(bad.isValid, 'false');
    assert.equal(
      bad.differences.map((d) => [d.component, d.target, d.path, d.chunks]),
      [['disk', 'vdc', dev, [1]]],
    );
    flipByte(dev, MiB + 3);
    assert.is((await svc.verify(uuid4)).isValid, 'true');

    // in use while running; changed then sealed at shutdown into the baseline
    await hv.start(uuid4);
    flipByte(dev, 5);
    const running = await svc.verify(uuid4);
    assert.is(running.isValid, 'true');
    assert.ok(running.skipped!.some((s) => s.target === 'vdc' && s.reason === 'in-use'));
    await hv.destroy(uuid4);
    assert.is((await svc.verify(uuid4)).isValid, 'false');
    await svc.sealDisks(uuid4);
    assert.is((await svc.verify(uuid4)).isValid, 'true');
  } finally {
    detachAll();
    files4.remove();
  }
});

test('signUnsigned signs every domain without a baseline, with progress', async () => {
  const progress: Array<[number, number]> = [];
  const before = (await svc.list()).length;
  const n = await svc.signUnsigned((done, total) => progress.push([done, total]));
  assert.is(n, 1); // the test driver's own running domain "test"
  assert.equal(progress, [
    [0, 1],
    [1, 1],
  ]);
  const list = await svc.list();
  assert.is(list.length, before + 1);
  const t = list.find((r) => r.instanceName === 'test')!;
  assert.equal(t.manifest.disks, [{ target: 'vda', path: '/guest/diskimage1', state: 'in-use' }]);
  assert.is(await svc.signUnsigned(), 0);
});

test('validation on/off: activation time kept, verdicts back to unknown until checked', async () => {
  assert.equal(await svc.validation(), { active: false, since: null });
  const on = await svc.setValidation(true);
  assert.ok(on.active);
  assert.ok(on.since);
  assert.is((await svc.get(uuid))!.lastVerdict, 'unknown');
  assert.equal(await svc.setValidation(true), on); // already on: since unchanged
  await svc.verify(uuid);
  assert.is((await svc.get(uuid))!.lastVerdict, 'true');
  assert.equal(await svc.setValidation(false), { active: false, since: null });
});

test('SignatureService.open creates its key and database in the data directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-open-'));
  try {
    const own = await SignatureService.open({ hypervisor: hv, dataDir: dir, node: 'node-b' });
    assert.equal(await own.list(), []);
    assert.match(own.publicKeyPem, /BEGIN PUBLIC KEY/);
    const rec = await own.sign(uuid);
    assert.is(rec.manifest.node, 'node-b');
    assert.ok(verifyManifest(own.publicKeyPem, rec.manifest, rec.signature));
    assert.not.ok(verifyManifest(svc.publicKeyPem, rec.manifest, rec.signature));
    await own.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
