// The start check's shortcut for an unchanged instance (libvirt test driver, the real hook endpoint):
// the second check of an unchanged instance is "quick" (no file read, no qemu-img) and verifies no
// baseline signature again; a changed baseline (re-sign, a manifest or signature edited in agent.db,
// another node key) is verified again, and the tampered ones are refused at start.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentEvent } from '../../../agent/src/events.js';
import { BaselineSignatureError } from '../../../agent/src/signature/errors.js';
import { RACY_WINDOW_NS } from '../../../agent/src/signature/hashing/identity.js';
import { NODE_KEY_FILE, NodeKey } from '../../../agent/src/signature/node-key.js';
import type { Verdict } from '../../../agent/src/signature/service.js';
import { AgentStore } from '../../../agent/src/store/agent-store.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import {
  defineTestDomain,
  postCheckStart,
  flipByte,
  startTestAgent,
  type TestAgent,
  type TestDomain,
} from '../../helpers/agent.js';

let c: TestController;
let a: TestAgent;
let vm: TestDomain;
const verdicts: Verdict[] = [];
const listen = () => a.agent.events.on('event', (e: AgentEvent) => e.verdict && verdicts.push(e.verdict));

test.before(async () => {
  c = await startTestController();
  a = await startTestAgent(c);
  vm = await defineTestDomain(a.hypervisor, 'vm-trust');
  await sign();
  await a.agent.signatures.setValidation(true);
  listen();
});
test.after(async () => {
  await a?.stop();
  vm?.remove();
  await c?.destroy();
});

/** What the hook sends: POST /check-start with libvirt's domain XML; the answer's first line. */
async function checkStart(): Promise<string> {
  const xml = await a.hypervisor.inactiveXml(vm.uuid);
  return (await postCheckStart(a, vm.name, xml)).trim();
}

/** Edits the stored baseline through a second connection to the agent's database. */
async function editBaseline(edit: (b: { manifest: any; signature: string }) => void): Promise<void> {
  const store = await AgentStore.open(join(a.dataDir, 'agent.db'));
  try {
    const b = (await store.getSignature(vm.uuid))!;
    const copy = { manifest: structuredClone(b.manifest), signature: b.signature };
    edit(copy);
    await store.updateManifest(vm.uuid, copy.manifest, copy.signature, new Date().toISOString(), []);
  } finally {
    await store.close();
  }
}

/**
 * Signs (sealing the qcow2 overlay writes its dirty bitmap into the image), then lets the racy window
 * pass: a file modified less than RACY_WINDOW_NS before a check is not trusted by identity, so the
 * quick path would rightly not be taken yet.
 */
async function sign(replace = false): Promise<void> {
  await a.agent.signatures.sign(vm.uuid, { replace });
  await new Promise((r) => setTimeout(r, Number(RACY_WINDOW_NS / 1_000_000n) + 20));
}

const verifications = () => a.agent.signatures.baselineVerifications;
const lastVerdict = () => verdicts[verdicts.length - 1]!;

test('an unchanged instance: the second start check is quick and verifies no signature again', async () => {
  assert.is(await checkStart(), 'allow');
  const before = verifications();
  verdicts.length = 0;
  assert.is(await checkStart(), 'allow');
  assert.is(await checkStart(), 'allow');
  assert.is(verifications(), before, 'the unchanged baseline is not verified again');
  assert.is(verdicts.length, 2);
  for (const v of verdicts) {
    assert.is(v.isValid, 'true');
    assert.equal([v.stats!.quick, v.stats!.bytesRead], [true, 0]);
  }
});

test('a seal right after the disks changed owner (libvirt at stop): the next start check is quick', async () => {
  assert.is(await checkStart(), 'allow');
  // what libvirt does when an instance stops: the disks' owners restored (ctime), then the seal
  for (const f of [vm.files.overlay, vm.files.data]) chmodSync(f, statSync(f).mode & 0o7777);
  await a.agent.signatures.sealDisks(vm.uuid);
  verdicts.length = 0;
  assert.is(await checkStart(), 'allow');
  assert.equal([lastVerdict().stats!.quick, lastVerdict().stats!.bytesRead], [true, 0]);
});

test('a changed file after a quick check: refused at once, naming it; restored: allowed', async () => {
  flipByte(vm.files.kernel, 5);
  try {
    assert.match(await checkStart(), /^refuse .*signature check failed: boot artifact kernel/);
  } finally {
    flipByte(vm.files.kernel, 5);
  }
  assert.is(await checkStart(), 'allow');
});

test('re-sign: the new baseline is verified once, then checks are quick again', async () => {
  await sign(true);
  const before = verifications();
  assert.is(await checkStart(), 'allow');
  assert.is(verifications(), before + 1);
  assert.is(await checkStart(), 'allow');
  assert.is(verifications(), before + 1);
  assert.is(lastVerdict().stats!.quick, true);
});

test('a signature edited in agent.db: verified again and refused; never re-sealed', async () => {
  await editBaseline((b) => {
    const sig = Buffer.from(b.signature, 'base64');
    sig[7] = sig[7]! ^ 1;
    b.signature = sig.toString('base64');
  });
  const before = verifications();
  assert.match(
    await checkStart(),
    /^refuse vmwarden: start of 'vm-trust' refused: signature check failed: baseline its signature does not verify with this node's key$/,
  );
  assert.is(verifications(), before + 1);
  assert.equal(lastVerdict().differences, [
    { component: 'baseline', reason: "its signature does not verify with this node's key" },
  ]);
  try {
    await a.agent.signatures.sealDisks(vm.uuid);
    assert.unreachable('sealed a tampered baseline');
  } catch (e) {
    assert.instance(e, BaselineSignatureError);
  }
  await sign(true);
  assert.is(await checkStart(), 'allow');
});

test('a tampered kernel with its new digest written into the stored manifest: refused', async () => {
  flipByte(vm.files.kernel, 9);
  try {
    const v = await a.agent.signatures.verify(vm.uuid);
    const diff = v.differences.find((d) => d.role === 'kernel')!;
    assert.ok(diff?.actual, JSON.stringify(v));
    await editBaseline((b) => {
      for (const e of b.manifest.boot) if (e.role === 'kernel') e.digest = diff.actual;
    });
    assert.match(await checkStart(), /^refuse .*baseline its signature does not verify/);
  } finally {
    flipByte(vm.files.kernel, 9);
  }
  await sign(true);
  assert.is(await checkStart(), 'allow');
});

test('another node key: every baseline is verified again and refused until re-signed', async () => {
  const other = mkdtempSync(join(tmpdir(), 'vmwarden-key-'));
  try {
    NodeKey.loadOrCreate(other);
    copyFileSync(join(other, NODE_KEY_FILE), join(a.dataDir, NODE_KEY_FILE));
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
  await a.restartAgent();
  listen();
  assert.is(verifications(), 0);
  assert.match(await checkStart(), /^refuse .*baseline its signature does not verify with this node's key$/);
  assert.is(verifications(), 1);
  await sign(true);
  assert.is(await checkStart(), 'allow');
  assert.is(verifications(), 2);
});

test.run();
