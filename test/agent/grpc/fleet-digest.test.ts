// The fleet's file digest reaches agents through the trust bundle: pulled at the agent's start,
// applied again on every push; what an agent signed before keeps its own algorithm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectHypervisor, type Hypervisor } from '../../../agent/src/libvirt/hypervisor.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { defineTestDomain, startTestAgent, type TestAgent, type TestDomain } from '../../helpers/agent.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let hv: Hypervisor;
let agent: TestAgent;
let vm1: TestDomain;
let vm2: TestDomain;

test.before(async () => {
  c = await startTestController({ signatureDigest: 'blake3' });
  hv = await connectHypervisor('test:///default');
  vm1 = await defineTestDomain(hv, 'fleet-digest-1');
  vm2 = await defineTestDomain(hv, 'fleet-digest-2');
  // The agent's own setting is SHA-256: the controller's wins once it answered.
  agent = await startTestAgent(c, { hypervisor: hv, config: { signatureDigest: 'sha256' } });
});
test.after(async () => {
  await agent?.stop();
  vm1?.remove();
  vm2?.remove();
  await hv?.close();
  await c?.destroy();
});

test('an agent takes the controller signatureDigest at its start and signs with it', async () => {
  assert.is(agent.agent.signatures.digestAlgorithm, 'blake3');
  const rec = await agent.agent.signatures.sign(vm1.uuid);
  assert.is(rec.manifest.digestAlgorithm, 'blake3');
  assert.ok(rec.manifest.boot.every((b) => b.digest.startsWith('blake3-1m:')));
});

test('a pushed bundle switches the fleet back; the BLAKE3 baseline still verifies', async () => {
  const s = c.controller.services;
  const node = await s.nodes.get(agent.nodeId);
  await s.agents.for(node).updateTrust({ ...(await s.guestTrust.bundle()), signatureDigest: 'sha256' });
  assert.is(agent.agent.signatures.digestAlgorithm, 'sha256');
  const rec = await agent.agent.signatures.sign(vm2.uuid);
  assert.is(rec.manifest.digestAlgorithm, undefined);
  assert.is((await agent.agent.signatures.verify(vm1.uuid)).isValid, 'true');
  assert.is((await agent.agent.signatures.verify(vm2.uuid)).isValid, 'true');
});

test.run();
