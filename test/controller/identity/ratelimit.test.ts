/** Login rate limiting: failures per username and per source address, with a sliding window. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { ManualClock } from '../../../lib/platform/clock.js';
import { assertError, certLogin, issueCert } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

const login = (c: TestController, username: string, password: string) =>
  c.call('POST', '/authenticate?method=password', { body: { username, password } });

function retryAfter(r: { headers: Record<string, string> }): number {
  const v = r.headers['retry-after'];
  assert.ok(v, 'Retry-After header present');
  assert.match(v!, /^\d+$/);
  return Number(v);
}

test('per username: after N failures even the right password gets 429 RATE_LIMITED with Retry-After', async () => {
  const clock = new ManualClock();
  const c = await startTestController(
    { loginMaxFailuresPerUsername: 3, loginMaxFailuresPerAddress: 1000, loginFailureWindowSeconds: 60 },
    clock,
  );
  try {
    await c.createUser('sam-user', 'user', 'sam-password');
    for (let i = 0; i < 3; i++) assertError(await login(c, 'sam-user', `guess-${i}`), 401, 'INVALID_AUTH');
    const blocked = await login(c, 'sam-user', 'sam-password');
    assertError(blocked, 429, 'RATE_LIMITED');
    assert.not.ok(blocked.headers['zt-session']);
    const wait = retryAfter(blocked);
    assert.ok(wait >= 1 && wait <= 60, String(wait));
    // blocked requests do not extend the block, and still 429 for wrong passwords
    assertError(await login(c, 'sam-user', 'wrong'), 429, 'RATE_LIMITED');

    // other usernames from the same address are not affected
    assert.ok(await c.login('admin', c.adminPassword));

    // Retry-After counts down with time
    clock.advance(30_000);
    const later = await login(c, 'sam-user', 'sam-password');
    assertError(later, 429);
    const wait2 = retryAfter(later);
    assert.ok(wait2 <= 31 && wait2 >= 1, String(wait2));

    // after the window, the right password works again
    clock.advance(31_000);
    const ok = await login(c, 'sam-user', 'sam-password');
    assert.is(ok.status, 200, ok.text);

    // unknown usernames are limited the same way (no user enumeration through the limiter)
    for (let i = 0; i < 3; i++) assertError(await login(c, 'ghost-user', `guess-${i}`), 401);
    assertError(await login(c, 'ghost-user', 'guess-4'), 429, 'RATE_LIMITED');

    // the limit also applies under /edge/management/v1 (one limiter, two mounts)
    for (let i = 0; i < 3; i++) assertError(await login(c, 'admin', `guess-${i}`), 401);
    const edge = await c.call('POST', '/edge/management/v1/authenticate?method=password', {
      body: { username: 'admin', password: c.adminPassword },
    });
    assertError(edge, 429, 'RATE_LIMITED');
  } finally {
    await c.destroy();
  }
});

test('per source address: failures across many usernames block every login from that address', async () => {
  const clock = new ManualClock();
  const c = await startTestController(
    { loginMaxFailuresPerUsername: 1000, loginMaxFailuresPerAddress: 4, loginFailureWindowSeconds: 120 },
    clock,
  );
  try {
    const tina = await c.createUser('tina-user', 'user', 'tina-password');
    const cert = await issueCert(c, tina.id, '/CN=tina');
    const adminToken = await c.adminToken();
    for (let i = 0; i < 4; i++) assertError(await login(c, `spray-${i}`, 'password1'), 401, 'INVALID_AUTH');

    const r = await login(c, 'admin', c.adminPassword);
    assertError(r, 429, 'RATE_LIMITED');
    const wait = retryAfter(r);
    assert.ok(wait >= 1 && wait <= 120, String(wait));
    assertError(await login(c, 'tina-user', 'tina-password'), 429);
    // certificate logins are not: wrong passwords do not lock out a certificate holder (issue 12)
    assert.is((await certLogin(c, cert)).status, 200);
    // existing sessions are not affected: the limiter guards logins only
    assert.is((await c.call('GET', '/current-api-session', { token: adminToken })).status, 200);
    assert.is((await c.call('GET', '/current-api-session', { token: tina.token })).status, 200);

    clock.advance(121_000);
    assert.is((await login(c, 'tina-user', 'tina-password')).status, 200);
    assert.is((await certLogin(c, cert)).status, 200);
  } finally {
    await c.destroy();
  }
});

test('failed certificate logins count against the address', async () => {
  const c = await startTestController({ loginMaxFailuresPerUsername: 1000, loginMaxFailuresPerAddress: 2 });
  try {
    assertError(await certLogin(c), 401, 'INVALID_AUTH');
    assertError(await c.call('POST', '/authenticate?method=cert', { body: {} }), 401);
    assertError(await login(c, 'admin', c.adminPassword), 429, 'RATE_LIMITED');
  } finally {
    await c.destroy();
  }
});

test('successful logins are never counted', async () => {
  const c = await startTestController({ loginMaxFailuresPerUsername: 2, loginMaxFailuresPerAddress: 2 });
  try {
    for (let i = 0; i < 6; i++) assert.is((await login(c, 'admin', c.adminPassword)).status, 200);
  } finally {
    await c.destroy();
  }
});

test.run();
