/** POST /v1/access/session/start and /session/end: who reports, which certificates, durations. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { ManualClock } from '../../../lib/platform/clock.js';
import type { TestController } from '../../helpers/controller.js';
import {
  assertAccessError,
  assertOk,
  issue,
  type TestInstance,
  type UserKeyFiles,
  accessFixture,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

const clock = new ManualClock(new Date(Math.floor(Date.now() / 1000) * 1000));
let c: TestController;
let admin = '';
let user: { id: string; token: string };
let agent: { id: string; token: string } | undefined;
let vm: TestInstance;
let key: UserKeyFiles;
let destroy = async () => {};

test.before(async () => {
  ({ c, admin, user, vm, key, destroy } = await accessFixture('session-user', {
    grant: true,
    config: { sessionIdleSeconds: 86_400 },
    clock,
  }));
  agent = await c.createUser('agent-host-1', 'agent').catch(() => undefined);
});

test.after(() => destroy());

const newCert = (ttl = 10) =>
  issue(c, user.token, { sandbox_id: vm.serverId, public_key: key.pub, ttl_minutes: ttl });
const start = (token: string, body: unknown) => c.call('POST', '/v1/access/session/start', { token, body });
const end = (token: string, body: unknown) => c.call('POST', '/v1/access/session/end', { token, body });
const session = async (id: string) => {
  const r = await c.call('GET', `/v1/access/sessions?limit=1000`, { token: admin });
  assertOk(r, 'listSessionsResponse');
  return r.body.sessions.find((s: any) => s.id === id);
};

test('start → SESS- + 8 uppercase hex; source_ip given or the caller address; end → {message, session_id}', async () => {
  const cert = await newCert();
  const ids = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const r = await start(admin, { certificate_id: cert.id, source_ip: '198.51.100.23' });
    assertOk(r, 'sessionStartResponse');
    assert.match(r.body.session_id, /^SESS-[0-9A-F]{8}$/);
    ids.add(r.body.session_id);
  }
  assert.is(ids.size, 20);
  const first = await session([...ids][0]!);
  assert.is(first.source_ip, '198.51.100.23');
  assert.is(first.status, 'ACTIVE');
  assert.is(first.certificate_id, cert.id);
  assert.is(first.user_id, user.id);
  assert.is(first.sandbox_id, vm.serverId);
  assert.is(first.vm_id, vm.name);
  assert.is(first.vm_ip_address, '192.0.2.10');
  assert.is(first.ended_at, '');

  const noIp = await start(admin, { certificate_id: cert.id });
  assertOk(noIp, 'sessionStartResponse');
  assert.is((await session(noIp.body.session_id)).source_ip, '127.0.0.1');

  const e = await end(admin, { session_id: noIp.body.session_id, reason: 'logout' });
  assertOk(e);
  assert.equal(e.body, { message: e.body.message, session_id: noIp.body.session_id });
  assert.type(e.body.message, 'string');
  const ended = await session(noIp.body.session_id);
  assert.is(ended.status, 'ENDED');
  assert.is(ended.end_reason, 'logout');
});

test('end twice → 400; unknown session → 404', async () => {
  const cert = await newCert();
  const s = await start(admin, { certificate_id: cert.id });
  assertOk(await end(admin, { session_id: s.body.session_id }));
  assertAccessError(await end(admin, { session_id: s.body.session_id }), 400, /already ended/);
  assertAccessError(await end(admin, { session_id: 'SESS-00000000' }), 404);
});

test('start on a revoked, expired or unknown certificate → 409 / 409 / 404', async () => {
  const revoked = await newCert();
  assertOk(await c.call('DELETE', `/v1/access/certificate/${revoked.id}`, { token: admin }));
  assertAccessError(await start(admin, { certificate_id: revoked.id }), 409, /revoked/);

  const shortLived = await newCert(1);
  assertOk(await start(admin, { certificate_id: shortLived.id }));
  clock.advance(61_000);
  assertAccessError(await start(admin, { certificate_id: shortLived.id }), 409, /expired/);
  // Also once the expiry job has marked it.
  await c.controller.services.access.markExpired();
  assertAccessError(await start(admin, { certificate_id: shortLived.id }), 409, /expired/);

  assertAccessError(await start(admin, { certificate_id: randomUUID() }), 404);
});

test('plain users cannot report sessions (403); agents can', async () => {
  const cert = await newCert();
  assertAccessError(await start(user.token, { certificate_id: cert.id }), 403);
  const s = await start(admin, { certificate_id: cert.id });
  assertAccessError(await end(user.token, { session_id: s.body.session_id }), 403);
  assertAccessError(await start('', { certificate_id: cert.id }), 401);
  if (agent) {
    const a = await start(agent.token, { certificate_id: cert.id, source_ip: '10.1.2.3' });
    assertOk(a, 'sessionStartResponse');
    assertOk(await end(agent.token, { session_id: a.body.session_id }));
    // Agents see every session.
    const list = await c.call('GET', '/v1/access/sessions', { token: agent.token });
    assertOk(list, 'listSessionsResponse');
    assert.ok(list.body.total > 1);
  }
});

test('duration_seconds grows while active and is fixed at end', async () => {
  const cert = await newCert();
  const s = await start(admin, { certificate_id: cert.id });
  const id = s.body.session_id;
  assert.is((await session(id)).duration_seconds, 0);
  clock.advance(42_000);
  assert.is((await session(id)).duration_seconds, 42);
  clock.advance(48_000);
  assertOk(await end(admin, { session_id: id }));
  const ended = await session(id);
  assert.is(ended.duration_seconds, 90);
  assert.is(Date.parse(ended.ended_at) - Date.parse(ended.started_at), 90_000);
  clock.advance(600_000);
  assert.is((await session(id)).duration_seconds, 90);
});

test('a certificate that expires does not end its live session; revoking it does', async () => {
  const cert = await newCert(1);
  const s = await start(admin, { certificate_id: cert.id });
  clock.advance(120_000);
  assert.is((await session(s.body.session_id)).status, 'ACTIVE');
  const r = await c.call('DELETE', `/v1/access/certificate/${cert.id}`, { token: admin });
  assertOk(r);
  const after = await session(s.body.session_id);
  assert.is(after.status, 'REVOKED');
  assert.is(after.duration_seconds, 120);
});

test.run();
