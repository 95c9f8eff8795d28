/**
 * Disabling or deleting an identity works like a lock: every certificate it still holds is revoked
 * (KRL version bumped, serials in the KRL, listeners — the agents' push — told), its live sessions
 * end, its API sessions end, and each revocation is audited with the reason.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestController } from '../../helpers/controller.js';
import type { PublishedKrl } from '../../../controller/src/access/krl-publisher.js';
import {
  assertAccessError,
  createInstance,
  grant,
  issue,
  makeUserKey,
  run,
  tempDir,
  type TestInstance,
  type UserKeyFiles,
} from './util.js';
import { startTestController } from '../../helpers/controller.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(180);

let c: TestController;
let dir = '';
let cleanup = async () => {};
let admin = '';
let vm: TestInstance;
let key: UserKeyFiles;

test.before(async () => {
  ({ dir, cleanup } = await tempDir());
  c = await startTestController({ sessionIdleSeconds: 86_400 });
  admin = await c.adminToken();
  vm = await createInstance(c);
  key = await makeUserKey(dir, 'id_ed', 'ed25519');
});

test.after(async () => {
  await c.destroy();
  await cleanup();
});

async function krl(): Promise<{ version: number; file: string }> {
  const r = await fetch(`${c.httpBase}/v1/access/krl`, { headers: { 'zt-session': admin } });
  assert.is(r.status, 200);
  const file = join(dir, `krl-${randomUUID()}`);
  await writeFile(file, Buffer.from(await r.arrayBuffer()));
  return { version: Number(r.headers.get('x-krl-version')), file };
}

/** `ssh-keygen -Q -f krl cert` → true when it says REVOKED. */
async function revokedIn(krlFile: string, certificate: string): Promise<boolean> {
  const certFile = join(dir, `q-${randomUUID()}-cert.pub`);
  await writeFile(certFile, certificate + '\n');
  const r = await run('ssh-keygen', ['-Q', '-f', krlFile, certFile]);
  return /REVOKED/.test(r.stdout + r.stderr);
}

/** A user with a grant, `n` active certificates, one live session on the first, and an API token. */
async function userWithAccess(name: string, n: number) {
  const user = await c.createUser(name);
  await grant(c, vm.serverId, user.id);
  const certs = [];
  for (let i = 0; i < n; i++)
    certs.push(await issue(c, user.token, { sandbox_id: vm.serverId, public_key: key.pub }));
  const session = await c.call('POST', '/v1/access/session/start', {
    token: admin,
    body: { certificate_id: certs[0]!.id, source_ip: '198.51.100.7' },
  });
  assert.is(session.status, 200, session.text);
  // The user's API session works before.
  assert.is((await c.call('GET', '/current-identity', { token: user.token })).status, 200);
  return { user, certs, sessionId: session.body.session_id as string };
}

async function assertLockedOut(
  who: Awaited<ReturnType<typeof userWithAccess>>,
  before: number,
  pushed: PublishedKrl[],
  reason: string,
) {
  const { user, certs, sessionId } = who;
  const list = await c.call('GET', `/v1/access/certificates?user_id=${user.id}&limit=100`, { token: admin });
  assert.is(list.status, 200, list.text);
  assert.is(list.body.certificates.length, certs.length);
  for (const cert of list.body.certificates) {
    assert.is(cert.status, 'REVOKED', JSON.stringify(cert));
    assert.is(cert.revoke_reason, reason);
  }
  const after = await krl();
  assert.is(after.version, before + 1, 'one KRL version for all of them');
  for (const cert of certs) assert.ok(await revokedIn(after.file, cert.certificate), `serial ${cert.serial}`);
  // The agents' push channel heard of the new version, with every serial.
  const last = pushed.at(-1);
  assert.ok(last, 'no KRL pushed');
  assert.is(last!.version, after.version);
  const serials = new Set(last!.serials.map(String));
  for (const cert of certs) assert.ok(serials.has(cert.serial), `serial ${cert.serial} not pushed`);
  // The live session ended.
  const sessions = await c.call('GET', `/v1/access/sessions?limit=1000`, { token: admin });
  const s = sessions.body.sessions.find((x: any) => x.id === sessionId);
  assert.is(s.status, 'REVOKED', JSON.stringify(s));
  // The API session is gone.
  assert.is((await c.call('GET', '/current-identity', { token: user.token })).status, 401);
  // One audit row per certificate, with the reason.
  const audit = await c.call('GET', '/v1/audit?action=certificate.revoke&limit=1000', { token: admin });
  assert.is(audit.status, 200, audit.text);
  const rows = (audit.body.entries ?? audit.body.data ?? audit.body) as any[];
  for (const cert of certs) {
    const row = rows.find((r: any) => r.object === cert.id);
    assert.ok(row, `no audit row for ${cert.id}: ${audit.text.slice(0, 300)}`);
    assert.is(row.outcome, 'success');
    assert.match(row.detail, new RegExp(reason));
    assert.is(row.actorName ?? row.actor_name, 'admin');
  }
}

function listenKrl(): { pushed: PublishedKrl[]; stop: () => void } {
  const pushed: PublishedKrl[] = [];
  const on = (k: PublishedKrl) => pushed.push(k);
  c.controller.services.krl.events.on('krl', on);
  return { pushed, stop: () => c.controller.services.krl.events.off('krl', on) };
}

test('disabling an identity revokes its certificates, ends its sessions and its API sessions', async () => {
  const who = await userWithAccess('lock-disabled', 4);
  const before = (await krl()).version;
  const l = listenKrl();
  const r = await c.call('PATCH', `/identities/${who.user.id}`, { token: admin, body: { disabled: true } });
  l.stop();
  assert.is(r.status, 200, r.text);
  await assertLockedOut(who, before, l.pushed, 'identity-disabled');
  // An admin cannot issue for the disabled identity either.
  assertAccessError(
    await c.call('POST', '/v1/access/request', {
      token: admin,
      body: { sandbox_id: vm.serverId, user_id: who.user.id, public_key: key.pub },
    }),
    403,
    /disabled/,
  );
  // Disabled again (a retry): nothing left to revoke, the KRL stays.
  const v = (await krl()).version;
  assert.is(
    (await c.call('PATCH', `/identities/${who.user.id}`, { token: admin, body: { disabled: true } })).status,
    200,
  );
  assert.is((await krl()).version, v);
  // Enabled again: the identity can log in and be issued certificates again (the old ones stay revoked).
  assert.is(
    (await c.call('PATCH', `/identities/${who.user.id}`, { token: admin, body: { disabled: false } })).status,
    200,
  );
  const token = await c.login('lock-disabled', who.user.password);
  await issue(c, token, { sandbox_id: vm.serverId, public_key: key.pub });
});

test('deleting an identity revokes its certificates, ends its sessions and its API sessions', async () => {
  const who = await userWithAccess('lock-deleted', 3);
  const before = (await krl()).version;
  const l = listenKrl();
  const r = await c.call('DELETE', `/identities/${who.user.id}`, { token: admin });
  l.stop();
  assert.is(r.status, 200, r.text);
  await assertLockedOut(who, before, l.pushed, 'identity-deleted');
  assert.is((await c.call('GET', `/identities/${who.user.id}`, { token: admin })).status, 404);
});

test('an identity without certificates: disable and delete leave the KRL alone', async () => {
  const user = await c.createUser('lock-empty');
  const before = (await krl()).version;
  assert.is(
    (await c.call('PATCH', `/identities/${user.id}`, { token: admin, body: { disabled: true } })).status,
    200,
  );
  assert.is((await c.call('DELETE', `/identities/${user.id}`, { token: admin })).status, 200);
  assert.is((await krl()).version, before);
});

test.run();
