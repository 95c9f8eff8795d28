/** Optional CORS: off without `corsOrigins`; with it, preflights and answers for the listed origins only. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { loadConfig } from '../../../controller/src/config.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

const ALLOWED = 'https://console.example.org';
let on: TestController;
let off: TestController;

test.before(async () => {
  on = await startTestController({ corsOrigins: [ALLOWED, 'http://localhost:8080/'] });
  off = await startTestController();
});

test.after(async () => {
  await on?.destroy();
  await off?.destroy();
});

// What a browser sends before a cross-origin call with an auth header and a JSON body.
const preflight = (method: string, headers: string, origin = ALLOWED) => ({
  headers: {
    origin,
    'access-control-request-method': method,
    'access-control-request-headers': headers,
    'sec-fetch-mode': 'cors',
  },
});

test('preflight from an allowed origin: 204 with the exact origin, methods, headers, max-age', async () => {
  for (const path of [
    '/v1/access/request',
    '/identities',
    '/ssh_key_authenticator/ssh_keys.json',
    '/v1/sign',
  ]) {
    const r = await on.call('OPTIONS', path, preflight('POST', 'content-type,zt-session'));
    assert.is(r.status, 204, path);
    assert.is(r.headers['access-control-allow-origin'], ALLOWED);
    assert.match(r.headers['vary'] ?? '', /Origin/);
    const methods = (r.headers['access-control-allow-methods'] ?? '').split(/,\s*/);
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) assert.ok(methods.includes(m), m);
    const allowed = (r.headers['access-control-allow-headers'] ?? '').split(/,\s*/);
    for (const h of ['zt-session', 'x-auth-token', 'authorization', 'content-type'])
      assert.ok(allowed.includes(h), h);
    assert.ok(Number(r.headers['access-control-max-age']) > 0);
    assert.is(r.text, '');
  }
  // The allow-list entry had a trailing slash; browsers send the origin without one.
  const r = await on.call(
    'OPTIONS',
    '/current-identity',
    preflight('GET', 'x-auth-token', 'http://localhost:8080'),
  );
  assert.is(r.status, 204);
  assert.is(r.headers['access-control-allow-origin'], 'http://localhost:8080');
});

test('an actual cross-origin call from an allowed origin carries Allow-Origin, errors too', async () => {
  const token = await on.adminToken();
  const ok = await on.call('GET', '/v1/instances', { token, headers: { origin: ALLOWED } });
  assert.is(ok.status, 200);
  assert.is(ok.headers['access-control-allow-origin'], ALLOWED);
  assert.match(ok.headers['vary'] ?? '', /Origin/);
  const denied = await on.call('GET', '/v1/instances', { headers: { origin: ALLOWED } });
  assert.is(denied.status, 401);
  assert.is(denied.headers['access-control-allow-origin'], ALLOWED);
  assert.ok(denied.body.error, 'still the access error format');
  const login = await on.call('POST', '/authenticate?method=password', {
    body: { username: 'admin', password: on.adminPassword },
    headers: { origin: ALLOWED },
  });
  assert.is(login.status, 200);
  assert.is(login.headers['access-control-allow-origin'], ALLOWED);
});

test('a disallowed origin gets no CORS headers (preflight not answered as one)', async () => {
  const r = await on.call(
    'OPTIONS',
    '/v1/access/request',
    preflight('POST', 'zt-session', 'https://evil.example'),
  );
  assert.is.not(r.status, 204);
  assert.not.ok(r.headers['access-control-allow-origin']);
  assert.not.ok(r.headers['access-control-allow-methods']);
  const g = await on.call('GET', '/version', { headers: { origin: 'https://evil.example' } });
  assert.is(g.status, 200);
  assert.not.ok(g.headers['access-control-allow-origin']);
  // Same host, other scheme or port: another origin.
  const s = await on.call('GET', '/version', { headers: { origin: 'http://console.example.org' } });
  assert.not.ok(s.headers['access-control-allow-origin']);
});

test('CORS off by default: no headers, a preflight is not answered', async () => {
  const r = await off.call('OPTIONS', '/v1/access/request', preflight('POST', 'zt-session'));
  assert.is.not(r.status, 204);
  assert.not.ok(r.headers['access-control-allow-origin']);
  const g = await off.call('GET', '/version', { headers: { origin: ALLOWED } });
  assert.not.ok(g.headers['access-control-allow-origin']);
});

test('VMWARDEN_CORS_ORIGINS sets the list; a value that is not an origin is refused', () => {
  const cfg = loadConfig([], { VMWARDEN_CORS_ORIGINS: 'https://a.example, http://b.example:8080' });
  assert.equal(cfg.corsOrigins, ['https://a.example', 'http://b.example:8080']);
  assert.equal(loadConfig([], {}).corsOrigins, []);
  assert.throws(() => loadConfig([], { VMWARDEN_CORS_ORIGINS: 'https://a.example/app' }), /not an origin/);
  assert.throws(() => loadConfig([], { VMWARDEN_CORS_ORIGINS: '*' }), /not an origin/);
});

test.run();
