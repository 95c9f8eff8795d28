// The controller's gRPC fleet view: ListInstances / ListSignatures / GetSignature with an admin
// API session token as `authorization: Bearer`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { verifyManifest } from '../../../agent/src/signature/node-key.js';
import type { TestController } from '../../helpers/controller.js';
import {
  controllerClient,
  grpcCode,
  unaryCall,
  type RawClient,
  type TestAgent,
  type TestDomain,
} from '../../helpers/agent.js';
import { signNode, type SignNode } from './util.js';

let c: TestController;
let a: TestAgent;
let vm: TestDomain;
let vm2: TestDomain;
let client: RawClient;
let admin: string;
let user: string;

const bearer = (token?: string) => {
  const m = new grpc.Metadata();
  if (token) m.set('authorization', `Bearer ${token}`);
  return m;
};

let node: SignNode | undefined;

test.before(async () => {
  node = await signNode('fleet-node', ['fleet-vm', 'fleet-vm2']);
  ({ c, admin, a } = node);
  [vm, vm2] = node.vms as [TestDomain, TestDomain];
  user = (await c.createUser('viewer', 'user')).token;
  const r = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
  assert.is(r.status, 200, r.text);
  client = controllerClient(c);
});

test.after(async () => {
  client?.close();
  await node?.destroy();
});

test('ListInstances with an admin token: every domain of the node, with its verdict', async () => {
  const r = await unaryCall(client, 'listInstances', { nodeId: 0, limit: 0, offset: 0 }, bearer(admin));
  const domains = await a.hypervisor.listDomains();
  assert.is(r.total, domains.length);
  assert.equal(r.instances.map((i: any) => i.serverId).sort(), domains.map((d) => d.uuid).sort());
  const mine = r.instances.find((i: any) => i.serverId === vm.uuid);
  assert.equal(mine, {
    serverId: vm.uuid,
    instanceName: 'fleet-vm',
    nodeId: a.nodeId,
    state: 'shut off',
    ipAddresses: [],
    isValid: 'true',
  });
  assert.is(r.instances.find((i: any) => i.serverId === vm2.uuid).isValid, 'unknown');
  const byNode = await unaryCall(
    client,
    'listInstances',
    { nodeId: a.nodeId, limit: 1, offset: 1 },
    bearer(admin),
  );
  assert.is(byNode.total, domains.length);
  assert.is(byNode.instances.length, 1);
  const otherNode = await unaryCall(
    client,
    'listInstances',
    { nodeId: 999, limit: 0, offset: 0 },
    bearer(admin),
  );
  assert.equal(otherNode, { instances: [], total: 0 });
});

test('ListSignatures and GetSignature with an admin token', async () => {
  const list = await unaryCall(client, 'listSignatures', { nodeId: 0, limit: 0, offset: 0 }, bearer(admin));
  assert.is(list.total, 1);
  const s = list.signatures[0];
  assert.is(s.serverId, vm.uuid);
  assert.is(s.instanceName, 'fleet-vm');
  assert.is(s.nodeId, a.nodeId);
  assert.is(s.updatedAt, '');
  assert.ok(verifyManifest(a.agent.signatures.publicKeyPem, JSON.parse(s.manifestJson), s.signature));
  const one = await unaryCall(client, 'getSignature', { serverId: vm.uuid }, bearer(admin));
  assert.is(one.id, s.id);
  assert.is(one.isValid, 'true'); // a live verdict from the agent
  assert.is(one.manifestJson, s.manifestJson);
  const none = await unaryCall(client, 'listSignatures', { nodeId: 999, limit: 0, offset: 0 }, bearer(admin));
  assert.equal(none, { signatures: [], total: 0 });
  assert.is(
    await grpcCode(unaryCall(client, 'getSignature', { serverId: randomUUID() }, bearer(admin))),
    grpc.status.NOT_FOUND,
  );
});

test('without a token: UNAUTHENTICATED; with a bad one: UNAUTHENTICATED', async () => {
  for (const token of [undefined, 'not-a-session']) {
    assert.is(
      await grpcCode(unaryCall(client, 'listInstances', {}, bearer(token))),
      grpc.status.UNAUTHENTICATED,
    );
    assert.is(
      await grpcCode(unaryCall(client, 'listSignatures', {}, bearer(token))),
      grpc.status.UNAUTHENTICATED,
    );
    assert.is(
      await grpcCode(unaryCall(client, 'getSignature', { serverId: vm.uuid }, bearer(token))),
      grpc.status.UNAUTHENTICATED,
    );
  }
});

test("with a plain user's token: PERMISSION_DENIED", async () => {
  assert.is(
    await grpcCode(unaryCall(client, 'listInstances', {}, bearer(user))),
    grpc.status.PERMISSION_DENIED,
  );
  assert.is(
    await grpcCode(unaryCall(client, 'listSignatures', {}, bearer(user))),
    grpc.status.PERMISSION_DENIED,
  );
  assert.is(
    await grpcCode(unaryCall(client, 'getSignature', { serverId: vm.uuid }, bearer(user))),
    grpc.status.PERMISSION_DENIED,
  );
});

test('GetSignature with the agent down answers "unknown", not an error', async () => {
  await a.stopAgent();
  try {
    const one = await unaryCall(client, 'getSignature', { serverId: vm.uuid }, bearer(admin));
    assert.is(one.isValid, 'unknown');
  } finally {
    await a.restartAgent();
  }
  const again = await unaryCall(client, 'getSignature', { serverId: vm.uuid }, bearer(admin));
  assert.is(again.isValid, 'true');
});

test('the standard health service answers on the same port', async () => {
  const { Health } = (await import('../../../proto/load.js')).vmwardenServices();
  const h = new Health(c.controller.endpoints.grpc!, grpc.credentials.createSsl(Buffer.from(c.caPem)), {
    'grpc.ssl_target_name_override': 'localhost',
  }) as RawClient;
  try {
    assert.equal(await unaryCall(h, 'check', { service: '' }), { status: 'SERVING' });
  } finally {
    h.close();
  }
});

test.run();
