/**
 * The agent outlives libvirtd restarts: its libvirt adapter opens a new connection when the old one
 * is gone, against a real libvirtd that the test restarts and stops (its domains keep running).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connectHypervisor, type Hypervisor } from '../../../agent/src/libvirt/hypervisor.js';
import { ensureLibvirtd, QEMU_URI, restartLibvirtd, virsh } from '../../helpers/libvirtd.js';
import { startTestAgent, type TestAgent } from '../../helpers/agent.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { watchdog, sleep } from '../../helpers/wait.js';

watchdog(180);

let hv: Hypervisor;
let dom: { uuid: string; name: string } | undefined;
let c: TestController;
let agent: TestAgent;

async function stopLibvirtd(): Promise<void> {
  const pid = Number(readFileSync('/run/libvirtd.pid', 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 150 && existsSync(`/proc/${pid}`); i++) await sleep(100);
}

test.before(async () => {
  try {
    await ensureLibvirtd();
    hv = await connectHypervisor(QEMU_URI);
    const uuid = randomUUID();
    const name = `vmw-reconnect-${uuid.slice(0, 8)}`;
    // Defined only, never started: nothing to boot.
    await hv.defineXml(
      `<domain type='qemu'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>32</memory>` +
        `<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>`,
    );
    dom = { uuid, name };
    c = await startTestController();
    agent = await startTestAgent(c, { hypervisor: hv });
  } catch (err) {
    // uvu does not show errors of hooks.
    process.stderr.write(`setup failed: ${(err as Error).stack ?? err}\n`);
    throw err;
  }
});

test.after(async () => {
  await ensureLibvirtd();
  await agent?.stop().catch(() => undefined);
  if (dom) await virsh('undefine', dom.uuid);
  await hv?.close();
  await c?.destroy();
});

test('after a libvirtd restart the same adapter works again, without being told', async () => {
  assert.is((await hv.getDomain(dom!.uuid))?.name, dom!.name);
  await restartLibvirtd();
  assert.is((await hv.getDomain(dom!.uuid))?.name, dom!.name);
  assert.ok((await hv.listDomains()).some((d) => d.uuid === dom!.uuid));
  assert.match(await hv.inactiveXml(dom!.uuid), new RegExp(`<name>${dom!.name}</name>`));
});

test('while libvirtd is down calls fail clearly; once it is back they succeed', async () => {
  await stopLibvirtd();
  try {
    await hv.listDomains();
    assert.unreachable('libvirtd is stopped');
  } catch (err) {
    assert.match((err as Error).message, /libvirt at qemu:\/\/\/system is unreachable: .*libvirt-sock/);
  }
  await ensureLibvirtd();
  assert.ok((await hv.listDomains()).some((d) => d.uuid === dom!.uuid));
});

test('the agent keeps reporting its instances across a restart', async () => {
  await restartLibvirtd();
  await agent.agent.report();
  const r = await c.call('GET', `/v1/instances/${dom!.uuid}`, { token: await c.adminToken() });
  assert.is(r.status, 200, r.text);
  assert.is(r.body.instance_name, dom!.name);
  assert.is(r.body.state, 'shut off');
});

test.run();
