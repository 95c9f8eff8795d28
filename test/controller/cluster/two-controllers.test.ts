/**
 * @store once — two controllers on one PostgreSQL (its own database in the run's cluster, or a
 * cluster of its own), in this process, over real HTTP and gRPC: one fleet whichever controller
 * serves. A token from A works on B and a logout on A ends it on B; certificates issued on both at
 * once are all committed with unique serials; a revocation on A reaches an agent connected to B
 * within 2 s; a CA rotation on B signs A's next certificate, a host CA rotation on B A's next host
 * certificate.
 */
import { test } from 'uvu';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { sharedCluster, startPostgres, type PgCluster } from '../../helpers/postgres.js';
import { startTestAgent, type TestAgent } from '../../helpers/agent.js';
import { watchTrustPushes } from '../../helpers/trust-pushes.js';
import { ControllerLink } from '../../../agent/src/controller-link.js';
import { cleanUp } from '../../helpers/cleanup.js';
import { waitFor, watchdog } from '../../helpers/wait.js';
import {
  createInstance,
  grant,
  issue,
  keygenList,
  makeUserKey,
  rawSerials,
  tempDir,
} from '../access/util.js';

watchdog(240);

let pg: PgCluster;
let ownCluster = false;
let A: TestController;
let B: TestController;
let agent: TestAgent | undefined;
let dir: { dir: string; cleanup: () => Promise<void> };

test.before(async () => {
  pg = sharedCluster() ?? ((ownCluster = true), startPostgres());
  const database = await pg.createDatabase('cluster');
  dir = await tempDir();
  // The cluster's key-encryption key, copied to every controller (here: one file both read).
  const keyEncryptionKeyFile = join(dir.dir, 'cluster.key');
  writeFileSync(keyEncryptionKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  // Started together: one initial admin, one CA, migrations applied once.
  // The periodic catch-up is slow here, so the 2 s revocation test measures the notification path.
  const config = { database, keyEncryptionKeyFile, trustSyncSeconds: 60 };
  [A, B] = await Promise.all([startTestController(config), startTestController(config)]);
  const password = A.adminPassword || B.adminPassword;
  assert.ok(password, 'one of the two made the initial admin');
  assert.ok(!(A.adminPassword && B.adminPassword), 'only one of the two made the initial admin');
  A.adminPassword = B.adminPassword = password;
});
test.after(() =>
  cleanUp({
    agent: () => agent?.stop(),
    A: () => A?.destroy(),
    B: () => B?.destroy(),
    dir: () => dir?.cleanup(),
    pg: () => (ownCluster ? pg.stop() : undefined),
  }),
);

test('a token issued by A works on B; a logout on A ends it on B', async () => {
  const login = await A.call('POST', '/authenticate?method=password', {
    body: { username: 'admin', password: A.adminPassword },
  });
  assert.is(login.status, 200, login.text);
  const token = login.body.data.token as string;
  const onB = await B.call('GET', '/current-api-session', { token });
  assert.is(onB.status, 200, onB.text);
  assert.is(onB.body.data.identity.name, 'admin');
  assert.is((await A.call('DELETE', '/current-api-session', { token })).status, 200);
  await waitFor(
    'B refuses the ended session',
    async () => (await B.call('GET', '/current-api-session', { token })).status === 401,
    {
      timeoutMs: 3000,
    },
  );
});

test('certificates issued on A and B at once: all committed, serials unique, one CA', async () => {
  const key = await makeUserKey(dir.dir, 'id_both', 'ed25519');
  const user = await A.createUser('both-user');
  const vm = await createInstance(A);
  await grant(B, vm.serverId, user.id);
  const tokenB = await B.login('both-user', user.password);
  const body = { sandbox_id: vm.serverId, public_key: key.pub };
  const replies = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      (i % 2 ? A : B).call('POST', '/v1/access/request', { token: i % 2 ? user.token : tokenB, body }),
    ),
  );
  for (const r of replies) assert.is(r.status, 200, r.text);
  const ids = replies.map((r) => r.body.certificate_id as string);
  const listed = await A.call('GET', `/v1/access/certificates?user_id=${user.id}&limit=100`, {
    token: await A.adminToken(),
  });
  assert.is(listed.status, 200, listed.text);
  const serials = rawSerials(listed.text);
  assert.is(serials.length, 40);
  assert.is(new Set(serials).size, 40);
  for (const id of ids) assert.ok(listed.text.includes(id), `certificate ${id} committed`);
  const fromA = await keygenList(dir.dir, replies[1]!.body.certificate);
  const fromB = await keygenList(dir.dir, replies[0]!.body.certificate);
  const ca = (s: string) => /Signing CA: (.*)/.exec(s)![1];
  assert.is(ca(fromA), ca(fromB));
});

test('an instance stopped through B: A refuses certificates for it within 1.5 s', async () => {
  const key = await makeUserKey(dir.dir, 'id_stop', 'ed25519');
  const vm = await createInstance(A);
  const admin = await A.adminToken();
  const body = { sandbox_id: vm.serverId, public_key: key.pub };
  assert.is((await A.call('POST', '/v1/access/request', { token: admin, body })).status, 200);
  const stopped = await B.call('PATCH', `/v1/instances/${vm.serverId}`, {
    token: await B.adminToken(),
    body: { state: 'shut off' },
  });
  assert.is(stopped.status, 200, stopped.text);
  const t0 = Date.now();
  await waitFor(
    'A to refuse',
    async () => (await A.call('POST', '/v1/access/request', { token: admin, body })).status !== 200,
    { timeoutMs: 3000, intervalMs: 50 },
  );
  assert.ok(Date.now() - t0 < 1500, `refused after ${Date.now() - t0} ms`);
});

test('a revocation on A reaches the agent connected to B within 2 s', async () => {
  agent = await startTestAgent(B);
  const pushes = watchTrustPushes(B.controller.services.agents);
  // B pushes to the agents that report to it.
  await agent.agent.report();
  const key = await makeUserKey(dir.dir, 'id_rev', 'ed25519');
  const user = await A.createUser('rev-user');
  const vm = await createInstance(A);
  await grant(A, vm.serverId, user.id);
  const cert = await issue(A, user.token, { sandbox_id: vm.serverId, public_key: key.pub });
  const before = Number(
    (await A.call('GET', '/v1/access/krl', { token: await A.adminToken() })).headers['x-krl-version'],
  );
  const t0 = Date.now();
  const revoked = await A.call('DELETE', `/v1/access/certificate/${cert.id}`, {
    token: await A.adminToken(),
    body: { reason: 'cluster test' },
  });
  assert.is(revoked.status, 200, revoked.text);
  await waitFor(
    'the agent on B acknowledged the new KRL',
    () => {
      const p = pushes.get(agent!.nodeId);
      return Boolean(p && !p.error && p.krlVersion > before);
    },
    { timeoutMs: 2000, intervalMs: 10 },
  );
  const p = pushes.get(agent.nodeId)!;
  assert.ok(p.doneAt - t0 < 2000, `acknowledged ${p.doneAt - t0} ms after the revocation`);
});

test('the agent connected to B: its trust reports read the same on A, and A calls it (Sign API)', async () => {
  assert.ok(agent, 'started by the previous test');
  const admin = await A.adminToken();
  const listed = await A.call('GET', '/v1/instances?limit=100', { token: admin });
  const hosted = (listed.body.instances as Array<{ server_id: string; node_id: number | null }>).find(
    (i) => i.node_id === agent!.nodeId,
  );
  assert.ok(hosted, `an instance of the agent's node on A: ${listed.text}`);
  const link = new ControllerLink(agent.credentials);
  try {
    await link.reportTrust([
      {
        serverId: hosted.server_id,
        state: 'installed',
        caFingerprints: ['SHA256:cluster'],
        krlVersion: '3',
        lastSuccess: '2026-11-30T10:00:00.000Z',
        lastError: '',
        loginUser: 'vmwarden',
        transport: 'guest-agent',
      },
    ]);
  } finally {
    link.close();
  }
  const trust = await A.call('GET', `/v1/instances/${hosted.server_id}/trust`, { token: admin });
  assert.is(trust.status, 200, trust.text);
  assert.is(trust.body.state, 'installed');
  assert.equal(trust.body.ca_fingerprints, ['SHA256:cluster']);
  // A dials the agent that enrolled through B (the node's address and the shared internal CA).
  const signed = await A.call('POST', '/v1/sign', { token: admin, body: { server_id: hosted.server_id } });
  assert.is(signed.status, 200, signed.text);
  assert.is(signed.body.sign.server_id, hosted.server_id);
});

test("a CA rotation on B signs A's next certificate", async () => {
  const key = await makeUserKey(dir.dir, 'id_rot', 'ed25519');
  const user = await A.createUser('rot-user');
  const vm = await createInstance(A);
  await grant(A, vm.serverId, user.id);
  const rotated = await B.call('POST', '/v1/access/ca/rotate', { token: await B.adminToken(), body: {} });
  assert.is(rotated.status, 200, rotated.text);
  const newFingerprint = rotated.body.fingerprint as string;
  assert.ok(newFingerprint);
  await waitFor(
    "A's next certificate is signed by B's new key",
    async () => {
      const cert = await issue(A, user.token, { sandbox_id: vm.serverId, public_key: key.pub });
      return (await keygenList(dir.dir, cert.certificate)).includes(newFingerprint);
    },
    { timeoutMs: 2000, intervalMs: 50 },
  );
});

test('one host CA for both; a host CA rotation on B is what A publishes and signs host keys with', async () => {
  const hostCas = async (c: TestController) => (await c.call('GET', '/v1/access/host-ca-pubkeys')).body;
  assert.equal(await hostCas(A), await hostCas(B));
  assert.is((await hostCas(A)).public_keys.length, 1);
  const hostKey = await makeUserKey(dir.dir, 'host_rot', 'ed25519');
  const rotated = await B.call('POST', '/v1/access/host-ca/rotate', { token: await B.adminToken() });
  assert.is(rotated.status, 200, rotated.text);
  await waitFor(
    "A publishes and signs with B's new host CA key",
    async () => {
      if (!(await hostCas(A)).known_hosts.includes(rotated.body.public_key.split(' ')[1])) return false;
      const r = await A.call('POST', '/v1/access/host-certificate', {
        token: await A.adminToken(),
        body: { public_key: hostKey.pub, principals: ['rot.example'] },
      });
      assert.is(r.status, 200, r.text);
      return (await keygenList(dir.dir, r.body.certificate)).includes(rotated.body.fingerprint);
    },
    { timeoutMs: 2000, intervalMs: 50 },
  );
});

test.run();
