/**
 * Guest agent commands over one connection to the real libvirtd (qemu:///system), in libvirt's RPC
 * protocol: the daemon's errors come back with their number and text, and GuestAgent maps them as it
 * maps virsh's (no domain, no guest agent channel: NoGuestAgentError). Needs root and libvirtd; runs
 * under the heavy lock. The guest agent answering is covered by e2e.test.ts (same connection).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import {
  LibvirtAgentRpc,
  LibvirtError,
  LibvirtUnavailableError,
  localSocketFor,
} from '../../../agent/src/libvirt/agent-rpc.js';
import { GuestAgent, NoGuestAgentError } from '../../../agent/src/guest/guest-agent.js';
import { ensureLibvirtd, QEMU_URI } from '../../helpers/libvirtd.js';
import { startBareDomain } from '../../helpers/guest.js';

const rpc = new LibvirtAgentRpc(localSocketFor(QEMU_URI)!, QEMU_URI);
let bare: Awaited<ReturnType<typeof startBareDomain>> | undefined;

test.before(async () => {
  await ensureLibvirtd();
  bare = await startBareDomain();
});
test.after(async () => {
  await bare?.destroy();
  rpc.close();
});

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => assert.unreachable('resolved'),
    (err: unknown) => err,
  );

test('only the local system daemon is reached directly', () => {
  assert.ok(localSocketFor('qemu:///system'));
  assert.is(localSocketFor('qemu:///session'), undefined);
  assert.is(localSocketFor('qemu+ssh://host/system'), undefined);
  assert.is(localSocketFor('test:///default'), undefined);
});

test('libvirt errors come back by number and text: no such domain, no guest agent channel', async () => {
  const missing = (await rejection(
    rpc.agentCommand(randomUUID(), '{"execute":"guest-ping"}', 2),
  )) as LibvirtError;
  assert.instance(missing, LibvirtError);
  assert.is(missing.code, 42);
  const none = (await rejection(rpc.agentCommand(bare!.uuid, '{"execute":"guest-ping"}', 2))) as LibvirtError;
  assert.instance(none, LibvirtError);
  assert.match(none.message, /guest agent/i);
  // By name too, on the same connection.
  assert.instance(await rejection(rpc.agentCommand(bare!.name, '{"execute":"guest-ping"}', 2)), LibvirtError);
});

test('GuestAgent maps them to NoGuestAgentError', async () => {
  assert.instance(await rejection(new GuestAgent(QEMU_URI, randomUUID()).ping()), NoGuestAgentError);
  assert.instance(await rejection(new GuestAgent(QEMU_URI, bare!.uuid).ping()), NoGuestAgentError);
});

test('a daemon socket that is not there: unavailable, nothing sent', async () => {
  const rpc = new LibvirtAgentRpc('/nonexistent/libvirt-sock', QEMU_URI);
  assert.instance(
    await rejection(rpc.agentCommand(bare!.uuid, '{"execute":"guest-ping"}', 2)),
    LibvirtUnavailableError,
  );
});

test.run();
