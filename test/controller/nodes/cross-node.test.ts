/**
 * One host cannot touch another host's instances. Two agents enrolled on one controller over real
 * mTLS; node 2 then sends raw gRPC calls with its own credentials naming node 1's instance, an
 * admin-registered one, and malformed ids. Each is refused, changes nothing (checked over REST) and
 * leaves a row in GET /v1/audit. The legitimate moves work: node 1 reports the instance gone and
 * node 2 then reports it; an admin sets node_id.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  controllerClient,
  defineTestDomain,
  grpcCode,
  startTestAgent,
  unaryCall,
  type RawClient,
  type TestAgent,
  type TestDomain,
} from '../../helpers/agent.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import {
  assertAccessError,
  createInstance,
  grant,
  issue,
  makeUserKey,
  tempDir,
  type TestInstance,
  type UserKeyFiles,
} from '../access/util.js';
import { grpcError, MAX_ERROR_DETAILS } from '../../../proto/grpc-tls.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(180);

let c: TestController;
let a1: TestAgent;
let a2: TestAgent;
let n1: RawClient;
let n2: RawClient;
let admin: string;
let user: { id: string; token: string };
let key: UserKeyFiles;
let cleanup: () => Promise<void> = async () => undefined;
let vm1: TestDomain;
let manual: TestInstance;
const domains: TestDomain[] = [];

test.before(async () => {
  const dir = await tempDir('vmwarden-cross-node-');
  cleanup = dir.cleanup;
  key = await makeUserKey(dir.dir, 'id_ed', 'ed25519');
  c = await startTestController();
  admin = await c.adminToken();
  a1 = await startTestAgent(c, { name: 'node-one' });
  a2 = await startTestAgent(c, { name: 'node-two' });
  vm1 = await defineTestDomain(a1.hypervisor, 'vm-one');
  domains.push(vm1);
  await a1.hypervisor.start(vm1.uuid);
  await a1.agent.report();
  user = await c.createUser('cross-user');
  await grant(c, vm1.uuid, user.id);
  manual = await createInstance(c, { instance_name: 'admin-registered' });
  n1 = controllerClient(c, { cert: a1.credentials.cert, key: a1.credentials.key });
  n2 = controllerClient(c, { cert: a2.credentials.cert, key: a2.credentials.key });
});

test.after(async () => {
  n1?.close();
  n2?.close();
  await a1?.stop().catch(() => undefined);
  await a2?.stop().catch(() => undefined);
  await c?.destroy().catch(() => undefined);
  for (const d of domains) d.remove();
  await cleanup();
});

// ---- helpers -------------------------------------------------------------------------------------

const instance = async (id: string) => {
  const r = await c.call('GET', `/v1/instances/${id}`, { token: admin });
  assert.is(r.status, 200, r.text);
  return r.body;
};
const grants = async (id: string) =>
  (await c.call('GET', `/v1/instances/${id}/grants`, { token: admin })).body.grants.map(
    (g: { identity_id: string }) => g.identity_id,
  );
const instanceCount = async () =>
  (await c.call('GET', '/v1/instances?limit=1000', { token: admin })).body.total as number;

/** Audit rows for `action` (and every `action.*`), newest first. */
async function auditRows(action: string): Promise<any[]> {
  const r = await c.call('GET', `/v1/audit?action=${encodeURIComponent(action)}&limit=1000`, {
    token: admin,
  });
  assert.is(r.status, 200, r.text);
  return r.body.entries;
}

/** A refusal of `node` for `object` was audited (status as REST would give, detail matching). */
async function assertAudited(
  action: string,
  node: TestAgent,
  object: string,
  status: number,
  detail?: RegExp,
) {
  const rows = (await auditRows(action)).filter(
    (e) => e.object === object && e.outcome === 'failure' && e.actorName === `node-${node.nodeName}`,
  );
  assert.ok(rows.length > 0, `no ${action} audit row for ${object.slice(0, 60)}`);
  assert.is(rows[0].status, status, JSON.stringify(rows[0]));
  if (detail) assert.match(rows[0].detail, detail);
}

const report = (client: RawClient, instances: object[]) =>
  unaryCall(client, 'reportInventory', {
    instances,
    agentAddress: '',
    validationActive: false,
    libvirtUri: '',
  });

const entry = (serverId: string, name: string, ip = '10.6.6.6') => ({
  serverId,
  name,
  state: 'running',
  ipAddresses: [ip],
  signed: false,
  isValid: 'unknown',
});

const trustEntry = (serverId: string) => ({
  serverId,
  state: 'installed',
  caFingerprints: ['SHA256:forged'],
  krlVersion: '1',
  lastSuccess: new Date().toISOString(),
  lastError: '',
  loginUser: 'vmwarden',
  transport: 'guest-agent',
});

const sessionStart = (serverId: string, certificateId: string) => ({
  serverId,
  event: 'start',
  certificateId,
  serial: '',
  sourceIp: '10.0.0.66',
  sessionId: '',
  reason: '',
});

const refusalEvent = (serverId: string) => ({
  time: new Date().toISOString(),
  kind: 'refusal',
  serverId,
  instanceName: 'forged',
  detail: 'forged refusal',
  verdict: { serverId, isValid: 'false', checkedAt: new Date().toISOString(), differences: [] },
  state: '',
  action: 'refused',
});

const adminMetadata = () => {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${admin}`);
  return md;
};

// ---- the setup is what the tests assume ----------------------------------------------------------

test('each node hosts what its own agent reported; the same domain reported by both stays with the first', async () => {
  const one = await instance(vm1.uuid);
  assert.is(one.node_id, a1.nodeId);
  assert.is(one.instance_name, 'vm-one');
  assert.is(one.source, 'agent');
  assert.is((await instance(manual.serverId)).node_id, null);
  // test:///default defines the domain "test" in every connection: node 1 reported it first, node 2's
  // own start-up report naming it was refused for that entry (and audited), not applied.
  const builtIn = (await hostedBy(a1.nodeId)).find((i: any) => i.instance_name === 'test');
  assert.ok(builtIn, 'the built-in test domain is hosted by node 1');
  await assertAudited('agent.inventory', a2, builtIn.server_id, 403, /hosted by node/);
});

async function hostedBy(nodeId: number) {
  const r = await c.call('GET', '/v1/instances?limit=1000', { token: admin });
  return r.body.instances.filter((i: any) => i.node_id === nodeId);
}

// ---- cross-node attempts -------------------------------------------------------------------------

test("ReportInventory from node 2 naming node 1's instance: that entry refused, the rest applied", async () => {
  const before = await instance(vm1.uuid);
  const own = randomUUID();
  const ack = await report(n2, [entry(vm1.uuid, 'stolen'), entry(own, 'node-two-vm', '10.2.0.5')]);
  assert.is(ack.nodeId, a2.nodeId);
  assert.is(ack.refused.length, 1, JSON.stringify(ack));
  assert.is(ack.refused[0].serverId, vm1.uuid);
  assert.match(ack.refused[0].reason, new RegExp(`hosted by node ${a1.nodeId}`));
  assert.equal(await instance(vm1.uuid), before, 'nothing about the instance changed');
  const mine = await instance(own);
  assert.is(mine.node_id, a2.nodeId);
  assert.is(mine.ip_address, '10.2.0.5');
  await assertAudited('agent.inventory', a2, vm1.uuid, 403, /PERMISSION_DENIED: .*hosted by node/);
  // The same refusal again (an agent reports every 30 s): refused again, audited once an hour.
  const rows = async () =>
    (await auditRows('agent.inventory')).filter(
      (e) => e.object === vm1.uuid && e.actorName === `node-${a2.nodeName}`,
    ).length;
  const audited = await rows();
  const again = await report(n2, [entry(vm1.uuid, 'stolen'), entry(own, 'node-two-vm', '10.2.0.5')]);
  assert.is(again.refused.length, 1);
  assert.is(await rows(), audited);
  assert.is((await instance(vm1.uuid)).instance_name, 'vm-one');
});

test("an empty ReportInventory from node 2 deletes nothing of node 1's, nor its grants", async () => {
  const own = randomUUID();
  const hosted = await report(n2, [entry(own, 'node-two-own', '10.2.0.6')]);
  assert.is(hosted.refused.length, 0);
  const count = await instanceCount();
  const ack = await report(n2, []);
  assert.is(ack.refused.length, 0);
  const one = await instance(vm1.uuid);
  assert.is(one.node_id, a1.nodeId);
  assert.equal(await grants(vm1.uuid), [user.id]);
  assert.is((await instance(manual.serverId)).instance_name, 'admin-registered');
  // Node 2's own instance is released (node 2 said it is gone), not deleted.
  assert.is(await instanceCount(), count);
});

test('an admin-registered instance is never renamed or adopted by an agent', async () => {
  const before = await instance(manual.serverId);
  for (const [client, agent] of [
    [n2, a2],
    [n1, a1],
  ] as const) {
    const ack = await report(client, [entry(manual.serverId, 'renamed-by-agent')]);
    assert.is(ack.refused.length, 1, JSON.stringify(ack));
    assert.match(ack.refused[0].reason, /registered by an admin/);
    await assertAudited('agent.inventory', agent, manual.serverId, 403, /registered by an admin/);
  }
  assert.equal(await instance(manual.serverId), before);
  await a1.agent.report(); // node 1's real inventory again (the raw report above omitted its domains)
  assert.is((await instance(vm1.uuid)).node_id, a1.nodeId);
});

test("ReportSession from node 2 for node 1's instance, with the user's certificate: PERMISSION_DENIED", async () => {
  const cert = await issue(c, user.token, { sandbox_id: vm1.uuid, public_key: key.pub });
  const sessions = async () =>
    (await c.call('GET', `/v1/access/sessions?sandbox_id=${vm1.uuid}`, { token: admin })).body.total;
  assert.is(await sessions(), 0);
  const code = await grpcCode(unaryCall(n2, 'reportSession', sessionStart(vm1.uuid, cert.id)));
  assert.is(code, grpc.status.PERMISSION_DENIED);
  await assertAudited('agent.session', a2, vm1.uuid, 403, /not hosted by node|hosted by node/);
  // Nor in an instance node 2 does host: the certificate is bound to node 1's instance.
  const own = randomUUID();
  await report(n2, [entry(own, 'node-two-own')]);
  const bound = unaryCall(n2, 'reportSession', sessionStart(own, cert.id));
  assert.is(await grpcCode(bound), grpc.status.PERMISSION_DENIED);
  await assertAudited('agent.session', a2, own, 403, /was not issued for instance/);
  assert.is(await sessions(), 0);
  // Node 1, which hosts it, reports the same login: recorded.
  const ok = await unaryCall(n1, 'reportSession', sessionStart(vm1.uuid, cert.id));
  assert.match(ok.sessionId, /^SESS-/);
  assert.is(await sessions(), 1);
  // ...and node 2 cannot end node 1's session either.
  const end = { ...sessionStart(vm1.uuid, ''), event: 'end', sessionId: ok.sessionId, reason: 'logout' };
  assert.is(await grpcCode(unaryCall(n2, 'reportSession', end)), grpc.status.PERMISSION_DENIED);
  const end2 = { ...end, serverId: own };
  assert.is(await grpcCode(unaryCall(n2, 'reportSession', end2)), grpc.status.PERMISSION_DENIED);
  const s = (await c.call('GET', `/v1/access/sessions?sandbox_id=${vm1.uuid}`, { token: admin })).body;
  assert.is(s.sessions[0].status, 'ACTIVE');
});

test("ReportTrust from node 2 for node 1's instance: refused for that entry, the status unchanged", async () => {
  const ack = await unaryCall(n2, 'reportTrust', { guests: [trustEntry(vm1.uuid)] });
  assert.is(ack.refused.length, 1, JSON.stringify(ack));
  assert.is(ack.refused[0].serverId, vm1.uuid);
  const t = (await c.call('GET', `/v1/instances/${vm1.uuid}/trust`, { token: admin })).body;
  assert.is(t.state, 'unknown');
  await assertAudited('agent.trust', a2, vm1.uuid, 403);
  // node 1's own report is taken
  const mine = await unaryCall(n1, 'reportTrust', { guests: [trustEntry(vm1.uuid)] });
  assert.is(mine.refused.length, 0);
  const t1 = (await c.call('GET', `/v1/instances/${vm1.uuid}/trust`, { token: admin })).body;
  assert.is(t1.state, 'installed');
  assert.is(t1.node_id, a1.nodeId);
});

test("ReportEvent from node 2 for node 1's instance or an admin's: PERMISSION_DENIED, no event recorded", async () => {
  for (const id of [vm1.uuid, manual.serverId]) {
    assert.is(await grpcCode(unaryCall(n2, 'reportEvent', refusalEvent(id))), grpc.status.PERMISSION_DENIED);
    await assertAudited('agent.event', a2, id, 403);
    const events = await c.call('GET', `/v1/sign/${id}/events`, { token: admin });
    assert.is(events.status, 404, events.text);
  }
});

test('malformed server_ids and fields are refused with INVALID_ARGUMENT, stored nowhere, audited', async () => {
  const count = await instanceCount();
  const bad = ['', '../../etc/passwd', `${randomUUID()}\u0000x`, 'x'.repeat(1 << 20), `{${randomUUID()}}`];
  for (const id of bad) {
    const label = JSON.stringify(id.slice(0, 40));
    assert.is(await grpcCode(report(n2, [entry(id, 'bad')])), grpc.status.INVALID_ARGUMENT, label);
    const trust = unaryCall(n2, 'reportTrust', { guests: [trustEntry(id)] });
    assert.is(await grpcCode(trust), grpc.status.INVALID_ARGUMENT, label);
    const session = unaryCall(n2, 'reportSession', sessionStart(id, 'CERT-1'));
    assert.is(await grpcCode(session), grpc.status.INVALID_ARGUMENT, label);
    if (id) {
      const event = unaryCall(n2, 'reportEvent', refusalEvent(id));
      assert.is(await grpcCode(event), grpc.status.INVALID_ARGUMENT, label);
    }
  }
  // Other fields: name length, addresses, list sizes, duplicate entries.
  const id = randomUUID();
  const cases: Array<[string, object[]]> = [
    ['name too long', [entry(id, 'n'.repeat(256))]],
    ['empty name', [entry(id, '')]],
    ['name with a line break', [entry(id, 'a\nb')]],
    ['not an IP', [entry(id, 'ok', '999.1.1.1')]],
    ['too many addresses', [{ ...entry(id, 'ok'), ipAddresses: Array(65).fill('10.0.0.1') }]],
    ['duplicate entries', [entry(id, 'ok'), entry(id, 'ok')]],
    ['too many instances', Array.from({ length: 10_001 }, () => entry(randomUUID(), 'x'))],
  ];
  for (const [label, instances] of cases) {
    const err = await report(n2, instances).catch((e: grpc.ServiceError) => e);
    assert.is((err as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT, label);
    assert.ok((err as grpc.ServiceError).details.length <= MAX_ERROR_DETAILS, label);
  }
  const address = unaryCall(n2, 'reportInventory', { instances: [], agentAddress: 'host:99999' });
  assert.is(await grpcCode(address), grpc.status.INVALID_ARGUMENT);
  const ip = unaryCall(n2, 'reportSession', { ...sessionStart(vm1.uuid, 'CERT-1'), sourceIp: 'nope' });
  assert.is(await grpcCode(ip), grpc.status.INVALID_ARGUMENT);
  // Over the message size limit (4 MiB): refused before any handler.
  const huge = await report(n2, [entry(randomUUID(), 'x'.repeat(5 << 20))]).catch((e) => e);
  assert.is(huge.code, grpc.status.RESOURCE_EXHAUSTED, String(huge.message).slice(0, 200));
  assert.is(await instanceCount(), count, 'nothing was stored');
  // Audited with the offending value cut short, as REST refusals are.
  const rows = (await auditRows('agent')).filter(
    (e) => e.status === 400 && e.actorName === `node-${a2.nodeName}`,
  );
  assert.ok(rows.length >= bad.length * 3, `${rows.length} rows`);
  assert.ok(
    rows.some((e) => /canonical UUID, got "\.\.\/\.\.\/etc\/passwd"/.test(e.detail)),
    'the traversal id is named in a detail',
  );
  for (const e of rows) assert.ok((e.object ?? '').length <= 200 && (e.detail ?? '').length <= 500);
});

test('GetSignature with a 64 KiB+ server_id: a clear error at once, and the channel keeps answering', async () => {
  const fleet = controllerClient(c);
  try {
    for (const size of [64 * 1024 + 1, 200_000, 1 << 20]) {
      // No timing assertion: a hang shows as DEADLINE_EXCEEDED (unaryCall's 10 s deadline).
      const err = await unaryCall(
        fleet,
        'getSignature',
        { serverId: 'a'.repeat(size) },
        adminMetadata(),
      ).catch((e: grpc.ServiceError) => e);
      assert.is(err.code, grpc.status.INVALID_ARGUMENT, err.message.slice(0, 200));
      assert.match(err.details, /server_id must be a canonical UUID/);
      assert.ok(err.details.length < 200, `details of ${err.details.length} characters`);
      const next = await grpcCode(
        unaryCall(fleet, 'getSignature', { serverId: randomUUID() }, adminMetadata()),
      );
      assert.is(next, grpc.status.NOT_FOUND);
    }
  } finally {
    fleet.close();
  }
});

test('error messages are cut in one place: grpcError never sends more than MAX_ERROR_DETAILS', () => {
  const e = grpcError(grpc.status.NOT_FOUND, `no signature for server ${'é'.repeat(200_000)}`);
  assert.ok(e.details.length <= MAX_ERROR_DETAILS, `${e.details.length}`);
  assert.match(e.details, /^no signature for server é+… \(200024 characters, cut\)$/);
  assert.is(grpcError(grpc.status.NOT_FOUND, 'short').details, 'short');
});

// ---- the legitimate moves ------------------------------------------------------------------------

test('a move: node 2 is refused while node 1 is silent; once node 1 reports it gone, node 2 adopts it', async () => {
  // test:///default connections of one process share their domains: node 2's libvirt has vm-one too.
  assert.ok(
    (await a2.hypervisor.listDomains()).some((d) => d.uuid === vm1.uuid),
    'node 2 sees the domain',
  );
  // Node 1 stopped (silence is not a release): node 2's real agent still gets the entry refused.
  await a1.stopAgent();
  await a2.agent.report();
  assert.is((await instance(vm1.uuid)).node_id, a1.nodeId);
  // Node 1 reports its inventory without the instance: released, grants kept.
  const releases = (await auditRows('instance.release')).filter((e) => e.object === vm1.uuid).length;
  await report(n1, []);
  const released = await instance(vm1.uuid);
  assert.is(released.node_id, null);
  assert.is(released.state, 'unknown');
  assert.equal(await grants(vm1.uuid), [user.id]);
  const releaseRows = (await auditRows('instance.release')).filter((e) => e.object === vm1.uuid);
  assert.is(releaseRows.length, releases + 1);
  assert.is(releaseRows[0].outcome, 'success');
  assert.is(releaseRows[0].actorName, `node-${a1.nodeName}`);
  // Node 2 now reports it and hosts it, grants and all.
  await a2.agent.report();
  const adopted = await instance(vm1.uuid);
  assert.is(adopted.node_id, a2.nodeId);
  assert.is(adopted.instance_name, 'vm-one');
  assert.equal(await grants(vm1.uuid), [user.id]);
  assert.ok(
    (await auditRows('instance.adopt')).some((e) => e.object === vm1.uuid && e.outcome === 'success'),
  );
  // The old host's trust status no longer shows for it.
  assert.is((await c.call('GET', `/v1/instances/${vm1.uuid}/trust`, { token: admin })).body.state, 'unknown');
  // Now node 1 is the outsider.
  const ack = await report(n1, [entry(vm1.uuid, 'back')]);
  assert.is(ack.refused.length, 1);
  assert.match(ack.refused[0].reason, new RegExp(`hosted by node ${a2.nodeId}`));
  assert.is((await instance(vm1.uuid)).node_id, a2.nodeId);
});

test('an admin moves an instance with PATCH node_id; an unknown or invalid node_id is a 4xx', async () => {
  const patch = (id: string, body: unknown) => c.call('PATCH', `/v1/instances/${id}`, { token: admin, body });
  assertAccessError(await patch(manual.serverId, { node_id: 999_999 }), 404, /no node with id 999999/);
  assertAccessError(await patch(manual.serverId, { node_id: 0 }), 400);
  assertAccessError(await patch(manual.serverId, { node_id: 'two' }), 400);
  assertAccessError(await patch(manual.serverId, { node_id: 1.5 }), 400);
  assert.is((await instance(manual.serverId)).node_id, null);
  const r = await patch(manual.serverId, { node_id: a2.nodeId });
  assert.is(r.status, 200, r.text);
  assert.is(r.body.node_id, a2.nodeId);
  assert.ok(
    (await auditRows('instance.update')).some((e) => e.object === manual.serverId && e.outcome === 'success'),
  );
  // Handed over: node 2 may now report it (rename included); node 1 may not.
  const ack = await report(n2, [entry(manual.serverId, 'renamed-by-its-host'), entry(vm1.uuid, 'vm-one')]);
  assert.is(ack.refused.length, 0, JSON.stringify(ack));
  assert.is((await instance(manual.serverId)).instance_name, 'renamed-by-its-host');
  assert.is((await report(n1, [entry(manual.serverId, 'x')])).refused.length, 1);
  // And back to node 1 by the admin: node 2 is refused from then on.
  assert.is((await patch(manual.serverId, { node_id: a1.nodeId })).status, 200);
  assert.is((await report(n2, [entry(manual.serverId, 'y')])).refused.length, 1);
  assert.is((await instance(manual.serverId)).instance_name, 'renamed-by-its-host');
  // null: hosted by no node (an admin-registered one is then not adoptable).
  assert.is((await patch(manual.serverId, { node_id: null })).body.node_id, null);
  assert.is((await report(n1, [entry(manual.serverId, 'z')])).refused.length, 1);
});

test.run();
