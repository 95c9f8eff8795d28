/**
 * The controller's side of trust inside guests, over real gRPC with an enrolled agent's mTLS
 * credentials (no VM needed): the bundle, trust reports as GET /v1/instances/{id}/trust shows them,
 * and session reports recorded like POST /v1/access/session/start|end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ControllerLink } from '../../../agent/src/controller-link.js';
import { connectHypervisor, type Hypervisor } from '../../../agent/src/libvirt/hypervisor.js';
import { startTestAgent, type TestAgent } from '../../helpers/agent.js';
import { accessFixture, issue, type AccessFixture } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(60);

let f: AccessFixture;
let hv: Hypervisor;
let agent: TestAgent;
let link: ControllerLink;

test.before(async () => {
  f = await accessFixture('trust-user', { grant: true });
  hv = await connectHypervisor('test:///default');
  agent = await startTestAgent(f.c, { hypervisor: hv });
  link = new ControllerLink(agent.credentials);
  // An agent reports only about instances its node hosts: hand the admin-registered one to it.
  const moved = await f.c.call('PATCH', `/v1/instances/${f.vm.serverId}`, {
    token: f.admin,
    body: { node_id: agent.nodeId },
  });
  if (moved.status !== 200) throw new Error(`hand-over failed: ${moved.status} ${moved.text}`);
});
test.after(async () => {
  link?.close();
  await agent?.stop();
  await hv?.close();
  await f?.destroy();
});

const trust = async (id: string) =>
  (await f.c.call('GET', `/v1/instances/${id}/trust`, { token: f.admin })).body;
const session = async (id: string) =>
  (
    await f.c.call('GET', `/v1/access/sessions?sandbox_id=${f.vm.serverId}`, { token: f.admin })
  ).body.sessions.find((s: { session_id?: string; id?: string }) => (s.session_id ?? s.id) === id);

test('the bundle holds the trusted CA keys, the KRL and the login user', async () => {
  const b = await link.getTrustBundle();
  const cas = (await f.c.call('GET', '/v1/access/ca-pubkeys')).body.public_keys;
  assert.equal(
    b.trustedCaKeys.map((k) => k.trim()),
    cas.map((k: { public_key: string }) => k.public_key.trim()),
  );
  assert.ok(Buffer.from(b.krl).subarray(0, 6).equals(Buffer.from('SSHKRL')));
  assert.is(b.loginUser, 'vmwarden');
  assert.is(b.signatureDigest, 'sha256'); // the fleet's digest (config signatureDigest)
});

test('trust reports, transport included, are what GET /v1/instances/{id}/trust shows', async () => {
  assert.is((await trust(f.vm.serverId)).state, 'unknown');
  await link.reportTrust([
    {
      serverId: f.vm.serverId.toUpperCase(),
      state: 'installed',
      caFingerprints: ['SHA256:abc'],
      krlVersion: '7',
      lastSuccess: '2026-11-22T10:00:00.000Z',
      lastError: '',
      loginUser: 'vmwarden',
      transport: 'ssh',
    },
  ]);
  const t = await trust(f.vm.serverId);
  assert.is(t.state, 'installed');
  assert.is(t.transport, 'ssh');
  assert.is(t.krl_version, 7);
  assert.equal(t.ca_fingerprints, ['SHA256:abc']);
  assert.is(t.node_id, agent.nodeId);
  assert.is(t.last_error, null);
});

test('session reports: start, end, and an end repeated after revocation is accepted', async () => {
  const cert = await issue(f.c, f.user.token, { sandbox_id: f.vm.serverId, public_key: f.key.pub });
  const report = {
    serverId: f.vm.serverId,
    certificateId: cert.id,
    serial: cert.serial,
    sourceIp: '10.0.0.9',
  };
  const id = await link.reportSession({ ...report, event: 'start', sessionId: '', reason: '' });
  assert.match(id, /^SESS-[0-9A-F]{8}$/);
  assert.is((await session(id)).status, 'ACTIVE');
  // Revocation ends it on the controller; the agent's own report of the kill comes after.
  const del = await f.c.call('DELETE', `/v1/access/certificate/${cert.id}`, { token: f.admin });
  assert.is(del.status, 200, del.text);
  assert.is((await session(id)).status, 'REVOKED');
  assert.is(await link.reportSession({ ...report, event: 'end', sessionId: id, reason: 'revoked' }), id);
  assert.is((await session(id)).status, 'REVOKED');
  // A revoked certificate cannot start a session; unknown sessions and events are refused.
  const refused = await link
    .reportSession({ ...report, event: 'start', sessionId: '', reason: '' })
    .catch((e) => e);
  assert.instance(refused, Error);
  assert.match(refused.message, /revoked/i);
  const unknown = await link
    .reportSession({ ...report, event: 'end', sessionId: 'SESS-00000000', reason: 'logout' })
    .catch((e) => e);
  assert.match(unknown.message, /^5 NOT_FOUND: no session/);
  const odd = await link
    .reportSession({ ...report, event: 'pause' as 'end', sessionId: id, reason: '' })
    .catch((e) => e);
  assert.match(odd.message, /^3 INVALID_ARGUMENT: unknown session event pause/);
});

test.run();
