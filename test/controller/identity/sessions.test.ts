/**
 * API sessions: token headers, GET/DELETE /current-api-session, GET /current-identity, the
 * /edge/management/v1 prefix, sliding idle expiry (ManualClock) and persistence across restarts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { assertContract, ZITI } from '../../helpers/contract.js';
import { ManualClock } from '../../../lib/platform/clock.js';
import { assertError, certLogin, issueCert } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(90);

let c: TestController;
let bob: { id: string; token: string; password: string };

test.before(async () => {
  c = await startTestController();
  bob = await c.createUser('bob-user', 'user', 'bob-password');
});
test.after(async () => c.destroy());

test('the token is accepted as zt-session, X-Auth-Token and Authorization: Bearer', async () => {
  const variants: Record<string, string>[] = [
    { 'zt-session': bob.token },
    { 'x-auth-token': bob.token },
    { authorization: `Bearer ${bob.token}` },
    { authorization: `bearer ${bob.token}` },
  ];
  for (const headers of variants) {
    const r = await c.call('GET', '/current-api-session', { headers });
    assert.is(r.status, 200, `${JSON.stringify(Object.keys(headers))}: ${r.text}`);
    assert.is(r.body.data.identityId, bob.id);
    assertContract(ZITI, 'currentApiSessionDetailEnvelope', r.body);
  }
});

test('no token → 401 UNAUTHORIZED in the envelope format', async () => {
  for (const path of [
    '/current-api-session',
    '/current-identity',
    '/current-identity/authenticators',
    '/identities',
  ]) {
    const r = await c.call('GET', path);
    assertError(r, 401, 'UNAUTHORIZED');
  }
  assertError(await c.call('DELETE', '/current-api-session'), 401, 'UNAUTHORIZED');
  // HTTP Basic is not a session token in this group
  const basic = Buffer.from('bob-user:bob-password').toString('base64');
  assertError(
    await c.call('GET', '/current-api-session', { headers: { authorization: `Basic ${basic}` } }),
    401,
    'UNAUTHORIZED',
  );
  // an empty header is no token
  assertError(await c.call('GET', '/current-api-session', { headers: { 'zt-session': '  ' } }), 401);
});

test('invalid token → 401 whichever header carries it', async () => {
  const bad = `${bob.token.slice(0, -2)}xx`;
  const variants: Record<string, string>[] = [
    { 'zt-session': bad },
    { 'x-auth-token': 'garbage' },
    { authorization: `Bearer ${bad}` },
  ];
  for (const headers of variants) {
    assertError(await c.call('GET', '/current-api-session', { headers }), 401, 'UNAUTHORIZED');
  }
});

test('GET /current-api-session describes the calling session', async () => {
  const r = await c.call('GET', '/current-api-session', { token: bob.token });
  assert.is(r.status, 200);
  const s = r.body.data;
  assert.is(s.token, bob.token);
  assert.is(s.identity.name, 'bob-user');
  assert.is(s.ipAddress, '127.0.0.1');
  assert.ok(Date.parse(s.expiresAt) > Date.now());
  assert.is(s.isMfaRequired, false);
});

test('DELETE /current-api-session ends only that session; its token is refused afterwards', async () => {
  const t1 = await c.login('bob-user', 'bob-password');
  const t2 = await c.login('bob-user', 'bob-password');
  const del = await c.call('DELETE', '/current-api-session', { token: t1 });
  assert.is(del.status, 200, del.text);
  assertContract(ZITI, 'empty', del.body);
  assertError(await c.call('GET', '/current-api-session', { token: t1 }), 401, 'UNAUTHORIZED');
  assertError(await c.call('DELETE', '/current-api-session', { token: t1 }), 401);
  const still = await c.call('GET', '/current-api-session', { token: t2 });
  assert.is(still.status, 200);
});

test('GET /current-identity: the caller, with its authenticators, in the contract shape', async () => {
  const r = await c.call('GET', '/current-identity', { token: bob.token });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'currentIdentityDetailEnvelope', r.body);
  const i = r.body.data;
  assert.is(i.id, bob.id);
  assert.is(i.name, 'bob-user');
  assert.is(i.isAdmin, false);
  assert.is(i.hasApiSession, true);
  assert.is(i.authenticators.updb.username, 'bob-user');
  assert.not.ok(i.authenticators.cert);

  const admin = await c.call('GET', '/current-identity', { token: await c.adminToken() });
  assert.is(admin.body.data.name, 'admin');
  assert.is(admin.body.data.isAdmin, true);
  assert.is(admin.body.data.isDefaultAdmin, true);
});

test('the group is also served under /edge/management/v1 with the same behaviour', async () => {
  const p = '/edge/management/v1';
  const login = await c.call('POST', `${p}/authenticate?method=password`, {
    body: { username: 'bob-user', password: 'bob-password' },
  });
  assert.is(login.status, 200, login.text);
  assertContract(ZITI, 'currentApiSessionDetailEnvelope', login.body);
  const token = login.body.data.token;
  // tokens are shared between the two mounts
  assert.is((await c.call('GET', '/current-api-session', { token })).status, 200);
  const me = await c.call('GET', `${p}/current-identity`, { token: bob.token });
  assert.is(me.status, 200);
  assert.is(me.body.data.id, bob.id);
  const list = await c.call('GET', `${p}/current-identity/authenticators`, { token });
  assert.is(list.status, 200);
  assertContract(ZITI, 'listAuthenticatorsEnvelope', list.body);
  assertError(await c.call('GET', `${p}/current-api-session`), 401, 'UNAUTHORIZED');
  assertError(await c.call('GET', `${p}/identities`, { token }), 403);
  assertError(
    await c.call('POST', `${p}/authenticate?method=password`, {
      body: { username: 'bob-user', password: 'wrong-password' },
    }),
    401,
    'INVALID_AUTH',
  );
  assertError(await c.call('GET', `${p}/current-identity/authenticators?limit=501`, { token }), 400);
  const version = await c.call('GET', `${p}/version`);
  assert.is(version.status, 200);
  const del = await c.call('DELETE', `${p}/current-api-session`, { token });
  assert.is(del.status, 200);
  assertError(await c.call('GET', '/current-api-session', { token }), 401);
  // unknown paths under the prefix get the same envelope
  assertError(await c.call('GET', `${p}/no-such-thing`, { token: bob.token }), 404);
});

test('GET /version is public', async () => {
  const r = await c.call('GET', '/version');
  assert.is(r.status, 200);
  assert.type(r.body.data.version, 'string');
});

test('idle expiry: sliding window with a ManualClock', async () => {
  const clock = new ManualClock();
  const ic = await startTestController({ sessionIdleSeconds: 60 }, clock);
  try {
    const token = await ic.login('admin', ic.adminPassword);
    const first = await ic.call('GET', '/current-api-session', { token });
    assert.is(first.status, 200);
    assert.is(first.body.data.expirationSeconds, 60);
    const firstExpiry = Date.parse(first.body.data.expiresAt);

    // activity inside the window keeps the session alive, and moves expiresAt forward
    clock.advance(45_000);
    const second = await ic.call('GET', '/current-api-session', { token });
    assert.is(second.status, 200);
    assert.is(Date.parse(second.body.data.expiresAt), firstExpiry + 45_000);
    assert.is(second.body.data.expirationSeconds, 60);
    assert.is(Date.parse(second.body.data.lastActivityAt), clock.now().getTime());

    clock.advance(45_000); // 90 s after login, 45 s after the last request
    const third = await ic.call('GET', '/current-identity', { token });
    assert.is(third.status, 200, 'sliding: still alive 90 s after login');

    // idle beyond the timeout → 401, and it stays dead
    clock.advance(60_001);
    assertError(await ic.call('GET', '/current-api-session', { token }), 401, 'UNAUTHORIZED');
    clock.advance(-120_000);
    assertError(await ic.call('GET', '/current-api-session', { token }), 401, 'UNAUTHORIZED');

    // exactly at the limit is already expired; a hair before is fine
    const t2 = await ic.login('admin', ic.adminPassword);
    clock.advance(59_999);
    assert.is((await ic.call('GET', '/current-api-session', { token: t2 })).status, 200);
    clock.advance(60_000);
    assertError(await ic.call('GET', '/current-api-session', { token: t2 }), 401);

    // the sweep removes idle sessions from the store
    const t3 = await ic.login('admin', ic.adminPassword);
    clock.advance(61_000);
    const removed = await ic.controller.services.sessions.sweep();
    assert.ok(removed >= 1, `sweep removed ${removed}`);
    assertError(await ic.call('GET', '/current-api-session', { token: t3 }), 401);
  } finally {
    await ic.destroy();
  }
});

test('restart keeps identities, authenticators and sessions (the old token still works)', async () => {
  const clock = new ManualClock();
  const rc = await startTestController({ sessionIdleSeconds: 600 }, clock);
  try {
    const carol = await rc.createUser('carol', 'user', 'carol-password');
    const cert = await issueCert(rc, carol.id, '/CN=carol');
    const adminToken = await rc.adminToken();
    clock.advance(30_000);
    assert.is((await rc.call('GET', '/current-api-session', { token: carol.token })).status, 200);
    // activity only 2 s later is kept in memory (written every few seconds), and must be flushed on stop
    clock.advance(2_000);
    const before = await rc.call('GET', '/current-api-session', { token: carol.token });
    assert.is(before.status, 200);
    assert.is.not(before.body.data.cachedLastActivityAt, before.body.data.lastActivityAt);
    const oldHttp = rc.controller.endpoints.http;

    await rc.restart();
    assert.is.not(rc.controller.endpoints.http, oldHttp);
    // no new admin password on restart
    assert.is(rc.controller.initialAdminPassword, undefined);

    const after = await rc.call('GET', '/current-api-session', { token: carol.token });
    assert.is(after.status, 200, after.text);
    assert.is(after.body.data.id, before.body.data.id);
    // the last in-memory activity survived the restart (flushed on stop)
    assert.is(after.body.data.cachedLastActivityAt, before.body.data.lastActivityAt);
    assert.is((await rc.call('GET', '/identities', { token: adminToken })).status, 200);
    assert.is((await rc.login('carol', 'carol-password')).length > 0, true);
    const byCert = await certLogin(rc, cert);
    assert.is(byCert.status, 200, byCert.text);
    assert.is(byCert.body.data.identityId, carol.id);

    // idle time keeps counting across the restart
    clock.advance(601_000);
    assertError(await rc.call('GET', '/current-api-session', { token: carol.token }), 401);
  } finally {
    await rc.destroy();
  }
});

test.run();
