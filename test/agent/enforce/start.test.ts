// Issue 6: enforcement on a real libvirtd (qemu:///system, TCG). The agent runs in-process; the host's
// libvirt hook points at its unix socket, so `virsh start` goes through hook → CheckStart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TestController } from '../../helpers/controller.js';
import { flipByte, type TestAgent } from '../../helpers/agent.js';
import { virsh } from '../../helpers/libvirtd.js';
import { RFC1123 } from '../../controller/sign/util.js';
import {
  domState,
  enforcedVm,
  MiB,
  nodeAction,
  qemuVm,
  sealedAt,
  type EnforcedVm,
  type QemuVm,
} from './fixtures.js';
import { waitFor } from '../../helpers/wait.js';

let c: TestController;
let a: TestAgent;
let vm: QemuVm;
let admin: string;

let f: EnforcedVm | undefined;

test.before(async () => {
  f = await enforcedVm('vmw-start');
  ({ c, a, vm, admin } = f);
});

test.after(async () => {
  await f?.destroy();
});

/** start; on success destroy again and wait until the agent re-sealed the disk. */
async function startStop(): Promise<{ code: number; stderr: string }> {
  const before = await sealedAt(a.agent.signatures, vm.uuid);
  const r = await virsh('start', vm.uuid);
  if (r.code === 0) {
    assert.is(await domState(vm.uuid), 'running');
    await virsh('destroy', vm.uuid);
    await waitFor(
      'the seal at shutdown',
      async () => (await sealedAt(a.agent.signatures, vm.uuid)) !== before,
    );
  }
  return r;
}

/** Re-signs the instance as it is defined now (PUT /v1/sign). */
async function resign(): Promise<void> {
  const r = await c.call('PUT', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
  assert.is(r.status, 200, r.text);
}

// Each test leaves the instance as it found it: defined as at first, signed, disk as sealed, the agent
// running with the default policies, the node active.

const events = async () => {
  const r = await c.call('GET', `/v1/sign/${vm.uuid}/events`, { token: admin });
  assert.is(r.status, 200, r.text);
  return r.body.events as any[];
};

test('a minimal valid domain starts while validation is active (and is sealed at shutdown)', async () => {
  assert.ok((await a.agent.signatures.validation()).active);
  const r = await startStop();
  assert.is(r.code, 0, r.stderr);
});

test('a semantic change of the definition: virsh start fails with our one-line reason', async () => {
  await vm.define({ memoryMiB: 96 });
  try {
    const r = await virsh('start', vm.uuid);
    assert.is.not(r.code, 0);
    assert.match(
      r.stderr,
      `vmwarden: start of '${vm.name}' refused: signature check failed: definition changed`,
      r.stderr,
    );
    assert.is(await domState(vm.uuid), 'shut off');
  } finally {
    await vm.define();
  }
});

test('re-signed (PUT /v1/sign): the changed definition starts', async () => {
  await vm.define({ memoryMiB: 96 });
  try {
    await resign();
    const s = await startStop();
    assert.is(s.code, 0, s.stderr);
  } finally {
    await vm.define();
    await resign();
  }
});

/** Runs `body` with one byte of the sealed disk flipped, then flips it back. */
async function withDiskByteFlipped(offset: number, body: () => Promise<void>): Promise<void> {
  flipByte(vm.disk, offset);
  try {
    await body();
  } finally {
    flipByte(vm.disk, offset);
  }
}

test('a sealed disk changed offline (one byte): refused, naming the disk and the chunk', async () => {
  assert.ok(await sealedAt(a.agent.signatures, vm.uuid), 'sealed');
  await withDiskByteFlipped(2 * MiB + 77, async () => {
    const r = await virsh('start', vm.uuid);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, `disk vda ${vm.disk} changed in chunk 2`);
    const m = await c.call('GET', `/v1/sign/${vm.uuid}/manifest`, { token: admin });
    assert.equal(
      m.body.differences.map((d: any) => [d.component, d.target, d.chunks]),
      [['disk', 'vda', [2]]],
    );
  });
});

test('the byte restored: it starts again', async () => {
  await withDiskByteFlipped(2 * MiB + 77, async () => {
    assert.is.not((await virsh('start', vm.uuid)).code, 0);
  });
  const r = await startStop();
  assert.is(r.code, 0, r.stderr);
});

test('agent stopped while validation is active: refused, "vmwarden agent unreachable" (fail closed)', async () => {
  await a.stopAgent();
  try {
    const r = await virsh('start', vm.uuid);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, 'vmwarden agent unreachable');
    assert.match(r.stderr, 'fail closed');
  } finally {
    await a.restartAgent();
  }
});

test('hookFailPolicy open: with the agent down the start is allowed', async () => {
  await a.restartAgent({ config: { hookFailPolicy: 'open' } });
  await a.stopAgent();
  try {
    const r = await virsh('start', vm.uuid);
    assert.is(r.code, 0, r.stderr);
    await virsh('destroy', vm.uuid);
  } finally {
    await a.restartAgent({ config: { hookFailPolicy: 'closed' } });
    // the agent missed that shutdown: seal now, as it would have
    await a.agent.signatures.sealDisks(vm.uuid);
  }
});

test('no baseline while active: signed on the way (unsignedPolicy sign); refused with policy refuse', async () => {
  const fresh = qemuVm('vmw-unsigned');
  try {
    await fresh.define();
    assert.is(await a.agent.signatures.get(fresh.uuid), undefined);
    const r = await virsh('start', fresh.uuid);
    assert.is(r.code, 0, r.stderr);
    await virsh('destroy', fresh.uuid);
    assert.ok(await a.agent.signatures.get(fresh.uuid), 'signed at start');
    const ev = await c.call('GET', `/v1/sign/${fresh.uuid}/events`, { token: admin });
    assert.is(ev.status, 200, ev.text);
    assert.ok(
      ev.body.events.some((e: any) => e.action === 'signed'),
      ev.text,
    );

    const other = qemuVm('vmw-unsigned2');
    try {
      await a.restartAgent({ config: { unsignedPolicy: 'refuse' } });
      await other.define();
      const refused = await virsh('start', other.uuid);
      assert.is.not(refused.code, 0);
      assert.match(refused.stderr, `vmwarden: start of '${other.name}' refused: instance is not signed`);
    } finally {
      await other.remove();
      await a.restartAgent({ config: { unsignedPolicy: 'sign' } });
    }
  } finally {
    await fresh.remove();
  }
});

test('node deactivated: a tampered domain starts', async () => {
  await withDiskByteFlipped(5, async () => {
    const refused = await virsh('start', vm.uuid);
    assert.is.not(refused.code, 0);
    assert.match(refused.stderr, 'chunk 0');
    await nodeAction(c, a.nodeId, 'deactivate');
    try {
      const r = await virsh('start', vm.uuid);
      assert.is(r.code, 0, r.stderr);
    } finally {
      await virsh('destroy', vm.uuid);
    }
  });
  // seal the restored disk (the agent may have sealed the tampered one at that shutdown), then activate
  await a.agent.signatures.sealDisks(vm.uuid);
  await nodeAction(c, a.nodeId, 'activate');
});

test('GET /v1/sign/{id}/events: every verdict and refusal, RFC 1123 times, Sign API errors', async () => {
  // this test's own history: a definition refused, a disk refused in chunk 2, a start allowed
  await vm.define({ memoryMiB: 96 });
  try {
    assert.is.not((await virsh('start', vm.uuid)).code, 0);
  } finally {
    await vm.define();
  }
  await withDiskByteFlipped(2 * MiB + 77, async () => {
    assert.is.not((await virsh('start', vm.uuid)).code, 0);
  });
  assert.is((await startStop()).code, 0);
  const list = await events();
  assert.ok(list.length >= 6, JSON.stringify(list));
  for (const e of list) {
    assert.equal(Object.keys(e).sort(), [
      'action',
      'component',
      'detail',
      'new_digest',
      'old_digest',
      'time',
    ]);
    assert.match(e.time, RFC1123);
    assert.ok(['alert', 'refused', 'destroyed', 'allowed', 'signed'].includes(e.action), e.action);
  }
  const refusals = list.filter((e) => e.action === 'refused');
  const config = refusals.find((e) => e.component === 'config');
  assert.ok(config, JSON.stringify(refusals));
  assert.match(config.old_digest, /^sha256:/);
  assert.match(config.new_digest, /^sha256:/);
  assert.ok(refusals.some((e) => e.component === 'disk' && /chunk 2/.test(e.detail)));
  assert.ok(list.some((e) => e.action === 'allowed'));

  const unknown = await c.call('GET', '/v1/sign/00000000-0000-0000-0000-000000000000/events', {
    token: admin,
  });
  assert.is(unknown.status, 404);
  assert.equal(Object.keys(unknown.body), ['error']);
  const anon = await c.call('GET', `/v1/sign/${vm.uuid}/events`);
  assert.is(anon.status, 401);
  assert.equal(Object.keys(anon.body), ['error']);
});

test.run();
