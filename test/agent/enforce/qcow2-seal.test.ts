// A qcow2 disk under a real libvirtd (qemu:///system, TCG) with the agent enforcing through the hook:
// QEMU itself keeps the seal bitmap while the instance runs (flagged in use) and stores it when it
// closes the image; the agent's seal at Stopped reads only the chunks the running QEMU wrote and
// equals a full re-hash. The writes go through the running QEMU's own block backend of the disk
// (HMP `qemu-io -d` on the virtio device's backend), where a guest's writes arrive.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { open } from 'node:fs/promises';
import { hashGuestDisk } from '../../../agent/src/signature/guest-disk/hasher.js';
import { readQcow2Dirty } from '../../../agent/src/signature/guest-disk/qcow2-dirty.js';
import { SEAL_BITMAP } from '../../../agent/src/signature/guest-disk/seal-trust.js';
import { fileDigest, type SealedDisk } from '../../../agent/src/signature/manifest.js';
import { virsh } from '../../helpers/libvirtd.js';
import { waitFor } from '../../helpers/wait.js';
import { domState, enforcedVm, MiB, sealedAt, type EnforcedVm } from './fixtures.js';

let f: EnforcedVm | undefined;

test.before(async () => {
  f = await enforcedVm('vmw-qcow', { vm: { qcow2: true, diskMiB: 64 } });
});

test.after(async () => {
  await f?.destroy();
});

async function sealedDisk(): Promise<SealedDisk> {
  return (await f!.a.agent.signatures.get(f!.vm.uuid))!.manifest.disks[0] as SealedDisk;
}

/** What the seal bitmap says, read as the agent reads it. */
async function bitmap(): Promise<string> {
  const fh = await open(f!.vm.disk, 'r');
  try {
    const d = await readQcow2Dirty(fh, SEAL_BITMAP, MiB);
    return 'dirty' in d ? `dirty [${d.dirty.join(',')}]` : JSON.stringify(d);
  } finally {
    await fh.close();
  }
}

async function metric(series: string): Promise<number> {
  const text = await (await fetch(`http://${f!.a.agent.endpoints.metrics}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** A write through the running QEMU's backend of the guest's disk. */
async function qemuWrite(cmd: string): Promise<void> {
  const r = await virsh(
    'qemu-monitor-command',
    '--hmp',
    f!.vm.name,
    `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "${cmd}"`,
  );
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim(), '', 'no error from the monitor'); // qemu-io itself reports to QEMU's log
}

test('a verified run under libvirt: QEMU keeps the bitmap, the seal at shutdown reads what it wrote', async () => {
  const { a, vm } = f!;
  const signed = await sealedDisk();
  assert.is(signed.content, 'guest');
  assert.is(await bitmap(), 'dirty []', 'signing left a fresh bitmap');
  const incremental = await metric('vmwarden_agent_guest_seals_total{pass="incremental"}');
  const chunks = await metric('vmwarden_agent_guest_seal_chunks_hashed_total{pass="incremental"}');
  const before = await sealedAt(a.agent.signatures, vm.uuid);

  const r = await virsh('start', vm.uuid);
  assert.is(r.code, 0, r.stderr);
  await waitFor(
    'the run watched from its verified start',
    async () => (await a.agent.signatures.guest.trustOf(vm.disk))?.state === 'running',
  );
  assert.is(await bitmap(), '{"state":"inconsistent"}', 'QEMU holds the bitmap (in use) while it runs');
  await qemuWrite('write -P 0x5a 5M 1M'); // one chunk
  await qemuWrite('write -P 0x5b 40M 64k'); // into the unallocated half
  // SIGTERM: QEMU closes the image and stores its persistent bitmaps
  assert.is((await virsh('destroy', vm.uuid)).code, 0);
  await waitFor('the seal at shutdown', async () => (await sealedAt(a.agent.signatures, vm.uuid)) !== before);

  assert.is(await metric('vmwarden_agent_guest_seals_total{pass="incremental"}'), incremental + 1);
  assert.is(
    await metric('vmwarden_agent_guest_seal_chunks_hashed_total{pass="incremental"}'),
    chunks + 2,
    'only the two chunks QEMU wrote',
  );
  const sealed = await sealedDisk();
  assert.is.not(sealed.digest, signed.digest);
  const full = await hashGuestDisk(vm.disk, { format: 'qcow2' });
  assert.is(sealed.digest, fileDigest(full.digest), 'equal to a full re-hash');
  assert.is(await bitmap(), 'dirty []', 'a fresh bitmap for the next run');

  // the next start is checked against the new seal and allowed
  const again = await virsh('start', vm.uuid);
  assert.is(again.code, 0, again.stderr);
  assert.is(await domState(vm.uuid), 'running');
  const sealedBefore = await sealedAt(a.agent.signatures, vm.uuid);
  await virsh('destroy', vm.uuid);
  await waitFor(
    'the seal at shutdown',
    async () => (await sealedAt(a.agent.signatures, vm.uuid)) !== sealedBefore,
  );
  assert.is(await metric('vmwarden_agent_guest_seals_total{pass="incremental"}'), incremental + 2);
});

test.run();
