// The start check (libvirt hook → agent) for an instance whose verdict is "unknown" because a part
// of it is not inspected (a network disk): allowed by default (uninspectedPolicy allow), refused with
// uninspectedPolicy refuse; a difference in what was inspected refuses under either policy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AgentEvent } from '../../../agent/src/events.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import {
  defineTestDomain,
  flipByte,
  postCheckStart,
  startTestAgent,
  type TestAgent,
  type TestDomain,
} from '../../helpers/agent.js';

const NET = `
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='iscsi' name='iqn.2024-01.org.example:t1/0'><host name='san' port='3260'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>`;
const REASON = 'disk vdc: network disk (iscsi iqn.2024-01.org.example:t1/0) not inspected';

let c: TestController;
let a: TestAgent;
let gap: TestDomain;
let plain: TestDomain;
const events: AgentEvent[] = [];

test.before(async () => {
  c = await startTestController();
  a = await startTestAgent(c);
  gap = await defineTestDomain(a.hypervisor, 'vm-iscsi', { extraDevices: NET });
  plain = await defineTestDomain(a.hypervisor, 'vm-plain');
  await a.agent.signatures.sign(gap.uuid);
  await a.agent.signatures.sign(plain.uuid);
  await a.agent.signatures.setValidation(true);
});
test.after(async () => {
  await a?.stop();
  gap?.remove();
  plain?.remove();
  await c?.destroy();
});

/** What the hook script sends: POST /check-start?name=NAME with libvirt's domain XML as the body. */
async function checkStart(vm: TestDomain): Promise<string> {
  const xml = await a.hypervisor.inactiveXml(vm.uuid);
  return (await postCheckStart(a, vm.name, xml)).trim();
}

const listen = () => {
  events.length = 0;
  a.agent.events.on('event', (e: AgentEvent) => events.push(e));
};

test('default policy: allowed, and the event says the verdict is unknown and why', async () => {
  listen();
  assert.is(await checkStart(gap), 'allow');
  const e = events.find((x) => x.serverId === gap.uuid && x.action === 'allowed')!;
  assert.ok(e, JSON.stringify(events));
  assert.is(e.verdict!.isValid, 'unknown');
  assert.equal(e.verdict!.uninspected, [REASON]);
  assert.is(e.detail, `verdict unknown: not inspected: ${REASON}`);
});

test('a difference in what was inspected refuses, whatever the policy', async () => {
  flipByte(gap.files.kernel, 11);
  try {
    assert.match(await checkStart(gap), /^refuse vmwarden: .*signature check failed: boot artifact kernel/);
  } finally {
    flipByte(gap.files.kernel, 11);
  }
});

test('uninspectedPolicy refuse: refused naming what was not inspected; a fully inspected one starts', async () => {
  await a.restartAgent({ config: { uninspectedPolicy: 'refuse' } });
  listen();
  assert.is(
    await checkStart(gap),
    `refuse vmwarden: start of 'vm-iscsi' refused: signature verdict unknown: not inspected: ${REASON} (uninspectedPolicy refuse)`,
  );
  assert.ok(
    events.some((x) => x.kind === 'refusal' && x.serverId === gap.uuid),
    JSON.stringify(events),
  );
  assert.is(await checkStart(plain), 'allow');
  await a.restartAgent({ config: { uninspectedPolicy: 'allow' } });
});

test.run();
