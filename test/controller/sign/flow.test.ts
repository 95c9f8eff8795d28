// Issue 5 end to end: REST → controller → gRPC mTLS → agent (in-process, libvirt test:///default),
// with domains whose kernels, backing files and disks are real temp files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPublicKey, verify } from 'node:crypto';
import { canonicalJson } from '../../../agent/src/signature/manifest.js';
import { verifyManifest } from '../../../agent/src/signature/node-key.js';
import type { TestController } from '../../helpers/controller.js';
import {
  agentSocketClient,
  defineTestDomain,
  flipByte,
  MiB,
  unaryCall,
  type TestAgent,
  type TestDomain,
} from '../../helpers/agent.js';
import {
  assertSignShape,
  assertTaskOrder,
  httpCall,
  RFC1123,
  waitTask,
  signNode,
  type SignNode,
} from './util.js';
import { sleep } from '../../helpers/wait.js';

let c: TestController;
let a: TestAgent;
let vm: TestDomain;
let other: TestDomain;
let admin: string;

let node: SignNode | undefined;

test.before(async () => {
  node = await signNode('compute-1', ['vm-flow', 'vm-unsigned']);
  ({ c, admin, a } = node);
  [vm, other] = node.vms as [TestDomain, TestDomain];
});

test.after(async () => {
  await node?.destroy();
});

const getSign = (id = vm.uuid) => c.call('GET', `/v1/sign/${id}`, { token: admin });
const manifestOf = (id = vm.uuid) => c.call('GET', `/v1/sign/${id}/manifest`, { token: admin });
const differences = async (id = vm.uuid) => {
  const m = await manifestOf(id);
  assert.is(m.status, 200, m.text);
  return m.body.differences as any[];
};

test('the enrolled node: GET /v1/nodes/{id} shows its agent, key and validation off', async () => {
  const r = await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: admin });
  assert.is(r.status, 200, r.text);
  const n = r.body.node;
  assert.is(n.id, a.nodeId);
  assert.is(n.name, 'compute-1');
  assert.is(n.enrolled, true);
  assert.match(n.enrolled_at, RFC1123);
  assert.is(n.agent_address, a.agent.endpoints.grpc);
  assert.is(n.libvirt_uri, 'test:///default');
  assert.is(n.validation_active, false);
  assert.is(n.public_key_pem, a.agent.signatures.publicKeyPem);
  const list = await c.call('GET', '/v1/nodes', { token: admin });
  assert.equal(
    list.body.nodes.map((x: any) => x.id),
    [a.nodeId],
  );
});

test('POST /v1/sign signs the instance through its agent: is_valid "true"', async () => {
  const r = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
  assert.is(r.status, 200, r.text);
  assert.equal(Object.keys(r.body), ['sign']);
  assertSignShape(r.body.sign);
  assert.is(r.body.sign.server_id, vm.uuid);
  assert.is(r.body.sign.instance_name, 'vm-flow');
  assert.is(r.body.sign.node_id, a.nodeId);
  assert.is(r.body.sign.is_valid, 'true');
  assert.is(r.body.sign.updated_at, null);

  const g = await getSign();
  assert.is(g.status, 200, g.text);
  assertSignShape(g.body.sign);
  assert.equal(g.body.sign, r.body.sign);
  assert.equal(await differences(), []);
});

test('a semantic edit of the definition (more memory) is "false" naming config', async () => {
  await vm.redefine({ memoryKiB: 2 * 1048576 });
  const g = await getSign();
  assert.is(g.body.sign.is_valid, 'false');
  const m = await manifestOf();
  assert.is(m.body.is_valid, 'false');
  assert.match(m.body.checked_at, RFC1123);
  assert.equal(
    m.body.differences.map((d: any) => d.component),
    ['config'],
  );
  assert.is(m.body.differences[0].expected, m.body.manifest.config.digest);
  assert.is.not(m.body.differences[0].actual, m.body.differences[0].expected);
  await a.hypervisor.defineXml(vm.xml);
  assert.is((await getSign()).body.sign.is_valid, 'true');
});

test('a cosmetic edit (reformatted XML, attribute order, quotes, comment) stays "true"', async () => {
  const cosmetic = vm.xml
    .replace(/\n\s*/g, '\n          ')
    .replace("<disk type='file' device='disk'>", '<disk device="disk" type="file">')
    .replace("<target dev='vda' bus='virtio'/>", '<target bus="virtio" dev="vda"></target>')
    .replace('<vcpu>1</vcpu>', '<!-- reformatted --><vcpu>1</vcpu>');
  assert.is.not(cosmetic, vm.xml);
  await a.hypervisor.defineXml(cosmetic);
  const g = await getSign();
  assert.is(g.body.sign.is_valid, 'true', JSON.stringify(await differences()));
  await a.hypervisor.defineXml(vm.xml);
});

test('one byte of the kernel changed is "false" naming boot/kernel', async () => {
  flipByte(vm.files.kernel, 100);
  try {
    assert.is((await getSign()).body.sign.is_valid, 'false');
    const d = await differences();
    assert.is(d.length, 1, JSON.stringify(d));
    assert.is(d[0].component, 'boot');
    assert.is(d[0].role, 'kernel');
    assert.is(d[0].path, vm.files.kernel);
    assert.equal(d[0].chunks, [0]);
  } finally {
    flipByte(vm.files.kernel, 100);
  }
  assert.is((await getSign()).body.sign.is_valid, 'true');
});

test('one byte of the qcow2 overlay\'s raw backing file changed is "false" naming it', async () => {
  flipByte(vm.files.base, MiB + 10);
  try {
    assert.is((await getSign()).body.sign.is_valid, 'false');
    const d = await differences();
    assert.is(d.length, 1, JSON.stringify(d));
    assert.is(d[0].component, 'boot');
    assert.is(d[0].role, 'backing-file');
    assert.is(d[0].path, vm.files.base);
    assert.equal(d[0].chunks, [1]);
  } finally {
    flipByte(vm.files.base, MiB + 10);
  }
  assert.is((await getSign()).body.sign.is_valid, 'true');
});

test('one byte of a sealed disk of the shut-off domain is "false" naming the disk and chunk', async () => {
  assert.is((await a.hypervisor.getDomain(vm.uuid))!.state, 'shut off');
  flipByte(vm.files.data, 3 * MiB + 5);
  assert.is((await getSign()).body.sign.is_valid, 'false');
  const d = await differences();
  assert.is(d.length, 1, JSON.stringify(d));
  assert.is(d[0].component, 'disk');
  assert.is(d[0].target, 'vdb');
  assert.is(d[0].path, vm.files.data);
  assert.equal(d[0].chunks, [3]);
  // the verdict is recorded in the catalogue too
  const list = await c.call('GET', '/v1/sign', { token: admin });
  assert.is(list.body.signs.find((s: any) => s.server_id === vm.uuid).is_valid, 'false');
});

test('PUT /v1/sign accepts the current state: "true" again, updated_at set, id and created_at kept', async () => {
  const before = (await c.call('GET', '/v1/sign', { token: admin })).body.signs.find(
    (s: any) => s.server_id === vm.uuid,
  );
  const oldManifest = (await manifestOf()).body;
  await sleep(1000); // RFC 1123 has whole seconds
  const r = await c.call('PUT', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
  assert.is(r.status, 200, r.text);
  assert.equal(Object.keys(r.body), ['sign']);
  assertSignShape(r.body.sign);
  assert.is(r.body.sign.is_valid, 'true');
  assert.is(r.body.sign.id, before.id);
  assert.is(r.body.sign.created_at, before.created_at);
  assert.match(r.body.sign.updated_at, RFC1123);
  assert.ok(Date.parse(r.body.sign.updated_at) > Date.parse(before.created_at));
  const g = await getSign();
  assert.is(g.body.sign.is_valid, 'true');
  assert.is(g.body.sign.updated_at, r.body.sign.updated_at);
  const m = (await manifestOf()).body;
  assert.equal(m.differences, []);
  assert.is.not(m.signature, oldManifest.signature);
});

test('the manifest verifies OFFLINE with the node key from GET /v1/nodes/{id}', async () => {
  const node = (await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node;
  const m = (await manifestOf()).body;
  assert.is(m.signature_algorithm, 'ed25519');
  assert.is(m.node_public_key, node.public_key_pem);
  assert.is(m.manifest.serverId, vm.uuid);
  assert.is(m.manifest.instanceName, 'vm-flow');
  assert.is(m.manifest.node, 'compute-1');
  // plain node:crypto, nothing from the agent: Ed25519 over the canonical JSON (sorted keys)
  const key = createPublicKey(node.public_key_pem);
  assert.is(key.asymmetricKeyType, 'ed25519');
  const bytes = Buffer.from(canonicalJson(m.manifest), 'utf8');
  assert.ok(verify(null, bytes, key, Buffer.from(m.signature, 'base64')));
  assert.ok(verifyManifest(node.public_key_pem, m.manifest, m.signature));
  const tampered = structuredClone(m.manifest);
  tampered.boot[0].digest = tampered.boot[0].digest.replace(/.$/, (ch: string) => (ch === '0' ? '1' : '0'));
  assert.not.ok(verifyManifest(node.public_key_pem, tampered, m.signature));
});

test('activate: task PENDING/RUNNING → SUCCESS 100, every unsigned instance signed, node active', async () => {
  const signedBefore = (await c.call('GET', '/v1/sign', { token: admin })).body.signs.map(
    (s: any) => s.server_id,
  );
  assert.equal(signedBefore, [vm.uuid]);
  const r = await c.call('POST', `/v1/sign/node/${a.nodeId}/action`, {
    token: admin,
    body: { action: 'activate' },
  });
  assert.is(r.status, 200, r.text);
  assert.equal(r.body, { action: 'activate', node_id: a.nodeId, success: true, task_id: r.body.task_id });
  assert.match(r.body.task_id, /^[0-9a-f-]{36}$/);
  const { final, states } = await waitTask(c, admin, r.body.task_id);
  assertTaskOrder(states);
  assert.ok(states.length >= 2 && states[0] !== 'SUCCESS', `states seen: ${states.join(' → ')}`);
  assert.is(final.state, 'SUCCESS', final.error);
  assert.is(final.progress, 100);
  assert.is(final.action, 'activate');
  assert.is(final.node_id, a.nodeId);
  assert.is(final.error, null);
  assert.match(final.created_at, RFC1123);
  assert.match(final.started_at, RFC1123);
  assert.match(final.finished_at, RFC1123);

  const domains = (await a.hypervisor.listDomains()).map((d) => d.uuid).sort();
  assert.ok(domains.includes(other.uuid));
  assert.ok(domains.length >= 3); // vm-flow, vm-unsigned and the test driver's own "test"
  const signs = (await c.call('GET', '/v1/sign', { token: admin })).body.signs;
  for (const s of signs) assertSignShape(s);
  assert.equal(signs.map((s: any) => s.server_id).sort(), domains);
  const o = signs.find((s: any) => s.server_id === other.uuid);
  assert.is(o.instance_name, 'vm-unsigned');
  assert.is(o.node_id, a.nodeId);
  assert.is((await getSign(other.uuid)).body.sign.is_valid, 'true');

  const node = (await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node;
  assert.is(node.validation_active, true);
  const sock = agentSocketClient(a.agent.endpoints.socket);
  try {
    assert.is((await unaryCall(sock, 'getNodeInfo', {})).validationActive, true);
  } finally {
    sock.close();
  }
  // a fresh inventory report keeps it so
  await a.agent.report();
  assert.is(
    (await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node.validation_active,
    true,
  );
});

test("deactivate (GET with a JSON body, as the document's example): SUCCESS, node inactive", async () => {
  const r = await httpCall(c, 'GET', `/v1/sign/node/${a.nodeId}/action`, {
    token: admin,
    body: { action: 'deactivate' },
  });
  assert.is(r.status, 200, r.text);
  assert.equal(r.body, { action: 'deactivate', node_id: a.nodeId, success: true, task_id: r.body.task_id });
  const { final, states } = await waitTask(c, admin, r.body.task_id);
  assertTaskOrder(states);
  assert.is(final.state, 'SUCCESS', final.error);
  assert.is(final.progress, 100);
  const node = (await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node;
  assert.is(node.validation_active, false);
  await a.agent.report();
  assert.is(
    (await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node.validation_active,
    false,
  );
  // signatures stay
  assert.is((await getSign()).body.sign.is_valid, 'true');
});

test('a domain the agent signed at activation before the controller knew it: POST adopts that baseline', async () => {
  const late = await defineTestDomain(a.hypervisor, 'vm-late'); // not reported yet
  try {
    const r = await c.call('POST', `/v1/sign/node/${a.nodeId}/action`, {
      token: admin,
      body: { action: 'activate' },
    });
    const { final } = await waitTask(c, admin, r.body.task_id);
    assert.is(final.state, 'SUCCESS', final.error);
    // the agent holds a baseline; the catalogue has none, the inventory had no such instance
    const sock = agentSocketClient(a.agent.endpoints.socket);
    let agentSig: any;
    try {
      agentSig = await unaryCall(sock, 'getSignature', { serverId: late.uuid });
    } finally {
      sock.close();
    }
    assert.is((await getSign(late.uuid)).status, 404);
    await a.agent.report();
    const post = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: late.uuid } });
    assert.is(post.status, 200, post.text);
    assertSignShape(post.body.sign);
    assert.is(post.body.sign.instance_name, 'vm-late');
    const m = (await manifestOf(late.uuid)).body;
    assert.is(m.signature, agentSig.signature, 'the baseline signed at activation is kept, not replaced');
    assert.is((await getSign(late.uuid)).body.sign.is_valid, 'true');
    // a second POST is the usual 409
    const again = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: late.uuid } });
    assert.is(again.status, 409, again.text);
  } finally {
    late.remove();
  }
});

test.run();
