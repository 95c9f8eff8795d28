// Issue 6: a running instance whose boot artifact changes, on a node with tamperPolicy "shutdown":
// the change watcher's verdict "false" makes the agent destroy it, and starts are refused until the
// instance is re-signed. Real libvirtd (qemu:///system, TCG), the hook pointing at the in-process agent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TestController } from '../../helpers/controller.js';
import { flipByte } from '../../helpers/agent.js';
import { virsh } from '../../helpers/libvirtd.js';
import { domState, enforcedVm, type EnforcedVm, type QemuVm } from './fixtures.js';
import { waitFor } from '../../helpers/wait.js';

let c: TestController;
let vm: QemuVm;
let admin: string;

let f: EnforcedVm | undefined;

test.before(async () => {
  f = await enforcedVm('vmw-tamper', { vm: { loader: true }, agent: { tamperPolicy: 'shutdown' } });
  ({ c, vm, admin } = f);
});

test.after(async () => {
  await f?.destroy();
});

// One scenario, one test: each phase needs the state the previous one left (the domain destroyed by
// the policy, then refused), so they are not separate tests that would depend on their order.
test('policy shutdown: a running domain whose loader changes is destroyed, refused until re-signed, then starts', async () => {
  // 1. The loader changes under a running domain: destroyed within seconds, audited.
  const first = await virsh('start', vm.uuid);
  assert.is(first.code, 0, first.stderr);
  assert.is(await domState(vm.uuid), 'running');
  const t0 = Date.now();
  flipByte(vm.loader!, 1000);
  await waitFor('the tamper shutdown', async () => (await domState(vm.uuid)) === 'shut off', {
    timeoutMs: 15_000,
    intervalMs: 200,
  });
  const secs = (Date.now() - t0) / 1000;
  assert.ok(secs < 15, `destroyed after ${secs} s`);
  const events = await waitFor(
    'the destroyed audit record',
    async () => {
      const list = (await c.call('GET', `/v1/sign/${vm.uuid}/events`, { token: admin })).body.events as any[];
      return (
        list.some((e) => e.action === 'destroyed') &&
        list.some((e) => e.action === 'alert' && e.component === 'boot') &&
        list
      );
    },
    { timeoutMs: 5000 },
  );
  const destroyed = events.find((e) => e.action === 'destroyed');
  assert.match(destroyed.detail, 'destroyed by tamper policy');
  assert.match(destroyed.detail, `boot artifact loader ${vm.loader} changed`);
  const alert = events.find((e) => e.action === 'alert' && e.component === 'boot');
  assert.match(alert.old_digest, /^sha256/);
  assert.match(alert.new_digest, /^sha256/);
  assert.is.not(alert.new_digest, alert.old_digest);

  // 2. Refused until re-signed, even with the loader restored.
  const refused = await virsh('start', vm.uuid);
  assert.is.not(refused.code, 0);
  assert.match(refused.stderr, 'destroyed after tampering');
  assert.match(refused.stderr, `boot artifact loader ${vm.loader} changed`);
  flipByte(vm.loader!, 1000);
  const again = await virsh('start', vm.uuid);
  assert.is.not(again.code, 0);
  assert.match(again.stderr, 'destroyed after tampering');

  // 3. Re-signed (PUT /v1/sign): it starts.
  const put = await c.call('PUT', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
  assert.is(put.status, 200, put.text);
  const started = await virsh('start', vm.uuid);
  assert.is(started.code, 0, started.stderr);
  await virsh('destroy', vm.uuid);
});

test.run();
