// An agent that cannot be reached, an agent that comes back, and an agent working on while the
// controller is down.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TestController } from '../../helpers/controller.js';
import {
  agentSocketClient,
  flipByte,
  unaryCall,
  type TestAgent,
  type TestDomain,
} from '../../helpers/agent.js';
import { assertSignError, assertSignShape, waitTask, signNode, type SignNode } from './util.js';

let c: TestController;
let a: TestAgent;
let vm: TestDomain;
let vm2: TestDomain;
let admin: string;

let node: SignNode | undefined;

test.before(async () => {
  node = await signNode('flaky', ['vm-a', 'vm-b']);
  ({ c, admin, a } = node);
  [vm, vm2] = node.vms as [TestDomain, TestDomain];
  const r = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
  assert.is(r.status, 200, r.text);
  assert.is(r.body.sign.is_valid, 'true');
});

test.after(async () => {
  await node?.destroy();
});

const isValid = async (id = vm.uuid) => {
  const r = await c.call('GET', `/v1/sign/${id}`, { token: await c.adminToken() });
  assert.is(r.status, 200, r.text);
  assertSignShape(r.body.sign);
  return r.body.sign.is_valid as string;
};

test('agent stopped: GET /v1/sign/{id} is "unknown", POST and PUT are 503 {"error"}', async () => {
  await a.stopAgent();
  const t0 = Date.now();
  assert.is(await isValid(), 'unknown');
  // A call that waited for its gRPC deadline would take 30 s.
  assert.ok(Date.now() - t0 < 20_000, 'an unreachable agent must not stall the request');
  assertSignError(await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm2.uuid } }), 503);
  assertSignError(await c.call('PUT', '/v1/sign', { token: admin, body: { server_id: vm.uuid } }), 503);
  const m = await c.call('GET', `/v1/sign/${vm.uuid}/manifest`, { token: admin });
  assert.is(m.status, 200, m.text);
  assert.is(m.body.is_valid, 'unknown');
  assert.equal(m.body.differences, []);
  // the listing answers from the catalogue
  const list = await c.call('GET', '/v1/sign', { token: admin });
  assert.is(list.status, 200);
  assert.equal(
    list.body.signs.map((s: any) => s.server_id),
    [vm.uuid],
  );
});

test('agent stopped: an activate task ends FAILURE with the reason, not stuck', async () => {
  const r = await c.call('POST', `/v1/sign/node/${a.nodeId}/action`, {
    token: admin,
    body: { action: 'activate' },
  });
  assert.is(r.status, 200, r.text);
  const { final } = await waitTask(c, admin, r.body.task_id);
  assert.is(final.state, 'FAILURE');
  assert.match(final.error, /unreachable/);
  assert.match(final.finished_at, /GMT$/);
  const node = (await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node;
  assert.is(node.validation_active, false);
});

test('agent restarted on the same address: "true" again (it kept its local SQLite)', async () => {
  await a.restartAgent();
  assert.is(await isValid(), 'true');
  const r = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm2.uuid } });
  assert.is(r.status, 200, r.text);
  assert.is(r.body.sign.is_valid, 'true');
});

test('agent restarted on a new port: its report moves the controller there', async () => {
  const old = a.agent.endpoints.grpc;
  await a.restartAgent({ newPort: true });
  assert.is.not(a.agent.endpoints.grpc, old);
  const node = (await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node;
  assert.is(node.agent_address, a.agent.endpoints.grpc);
  assert.is(await isValid(), 'true');
  assert.is(await isValid(vm2.uuid), 'true');
});

test('controller down: the agent still verifies over its unix socket and sees tampering', async () => {
  await c.stop();
  assert.not.ok(
    await a.agent.report().then(
      () => true,
      () => false,
    ),
  );
  const sock = agentSocketClient(a.agent.endpoints.socket);
  try {
    const ok = await unaryCall(sock, 'verifyInstance', { serverId: vm.uuid });
    assert.is(ok.isValid, 'true');
    flipByte(vm.files.kernel, 7);
    const bad = await unaryCall(sock, 'verifyInstance', { serverId: vm.uuid });
    assert.is(bad.isValid, 'false');
    assert.equal(
      bad.differences.map((d: any) => [d.component, d.role, d.path]),
      [['boot', 'kernel', vm.files.kernel]],
    );
    const sig = await unaryCall(sock, 'getSignature', { serverId: vm.uuid });
    assert.is(sig.isValid, 'false');
  } finally {
    sock.close();
  }
});

test('controller back: the verdict comes from the agent again', async () => {
  await c.start();
  assert.is(await isValid(), 'false');
  flipByte(vm.files.kernel, 7);
  assert.is(await isValid(), 'true');
});

test.run();
