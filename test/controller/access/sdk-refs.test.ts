/**
 * What the virsh-sandbox SDK sends (JSON content type and Accept, the token in the header its
 * ApiClient was given): `sandbox_id` as the server_id or the libvirt name, `user_id` as an identity
 * id or name, in the access request and in every listing filter; the TTL policy refuses.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import {
  assertAccessError,
  createInstance,
  grant,
  makeUserKey,
  tempDir,
  type TestInstance,
  type UserKeyFiles,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let cleanup = async () => {};
let admin = '';
let alice: { id: string; token: string };
let bob: { id: string; token: string };
let web: TestInstance;
let twinA: TestInstance;
let key: UserKeyFiles;

/** The SDK's request: `ApiClient(configuration, header_name='Authorization', header_value='Bearer …')`. */
function sdk(method: string, path: string, token: string | undefined, body?: unknown) {
  const headers: Record<string, string> = {
    accept: 'application/json',
    'user-agent': 'OpenAPI-Generator/1.0.0/python',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return c.call(method, path, { headers, raw: body === undefined ? undefined : JSON.stringify(body) });
}

test.before(async () => {
  const t = await tempDir();
  cleanup = t.cleanup;
  key = await makeUserKey(t.dir, 'id_ed', 'ed25519');
  c = await startTestController();
  admin = await c.adminToken();
  alice = await c.createUser('alice-sdk');
  bob = await c.createUser('bob-sdk');
  web = await createInstance(c, { instance_name: 'web-sdk' });
  twinA = await createInstance(c, { instance_name: 'twin' });
  await createInstance(c, { instance_name: 'twin' });
  for (const who of [alice, bob]) await grant(c, web.serverId, who.id);
});

test.after(async () => {
  await c?.destroy();
  await cleanup();
});

test('sandbox_id as the libvirt name: the certificate is for that instance', async () => {
  const r = await sdk('POST', '/v1/access/request', alice.token, {
    sandbox_id: 'web-sdk',
    public_key: key.pub,
    ttl_minutes: 5,
  });
  assert.is(r.status, 200, r.text);
  const cert = await sdk('GET', `/v1/access/certificate/${r.body.certificate_id}`, alice.token);
  assert.is(cert.body.sandbox_id, web.serverId);
  assert.equal(cert.body.principals, [web.principal]);
  // The UUID in capitals (as some SDK users paste it) is the same instance.
  const upper = await sdk('POST', '/v1/access/request', alice.token, {
    sandbox_id: web.serverId.toUpperCase(),
    public_key: key.pub,
  });
  assert.is(upper.status, 200, upper.text);
});

test('a name two instances share → 409 naming the fix; an unknown one → 404', async () => {
  const twin = await sdk('POST', '/v1/access/request', admin, { sandbox_id: 'twin', public_key: key.pub });
  assertAccessError(twin, 409, /more than one instance is named twin: use its server_id/);
  const byId = await sdk('POST', '/v1/access/request', admin, {
    sandbox_id: twinA.serverId,
    public_key: key.pub,
  });
  assert.is(byId.status, 200, byId.text);
  const unknown = await sdk('POST', '/v1/access/request', admin, { sandbox_id: 'nope', public_key: key.pub });
  assertAccessError(unknown, 404, /no instance with server_id or name nope/);
  assertAccessError(await sdk('GET', '/v1/access/certificates?sandbox_id=twin', admin), 409);
});

test('user_id as a name: one’s own for anyone, others’ for admins only', async () => {
  const own = await sdk('POST', '/v1/access/request', bob.token, {
    sandbox_id: web.serverId,
    user_id: 'bob-sdk',
    public_key: key.pub,
  });
  assert.is(own.status, 200, own.text);
  const other = await sdk('POST', '/v1/access/request', bob.token, {
    sandbox_id: web.serverId,
    user_id: 'alice-sdk',
    public_key: key.pub,
  });
  assertAccessError(other, 403, /only admins/);
  const byAdmin = await sdk('POST', '/v1/access/request', admin, {
    sandbox_id: 'web-sdk',
    user_id: 'bob-sdk',
    public_key: key.pub,
  });
  assert.is(byAdmin.status, 200, byAdmin.text);
  const cert = await sdk('GET', `/v1/access/certificate/${byAdmin.body.certificate_id}`, admin);
  assert.is(cert.body.user_id, bob.id);
});

test('listing filters take names: certificates and sessions by sandbox name and user name', async () => {
  const byName = await sdk('GET', '/v1/access/certificates?sandbox_id=web-sdk&user_id=bob-sdk', admin);
  const byIds = await sdk(
    'GET',
    `/v1/access/certificates?sandbox_id=${web.serverId}&user_id=${bob.id}`,
    admin,
  );
  assert.is(byName.status, 200, byName.text);
  assert.is(byName.body.total, 2);
  assert.equal(byName.body, byIds.body);
  for (const cert of byName.body.certificates) {
    assert.is(cert.sandbox_id, web.serverId);
    assert.is(cert.user_id, bob.id);
  }
  // A user filtering by their own name sees their own; by someone else's name → 403.
  const own = await sdk('GET', '/v1/access/certificates?user_id=alice-sdk', alice.token);
  assert.is(own.status, 200, own.text);
  assert.is(own.body.total, 2);
  assertAccessError(await sdk('GET', '/v1/access/certificates?user_id=bob-sdk', alice.token), 403);
  // An unknown name matches nothing.
  const none = await sdk('GET', '/v1/access/certificates?sandbox_id=nothing-here', admin);
  assert.is(none.body.total, 0);

  const started = await sdk('POST', '/v1/access/session/start', admin, {
    certificate_id: byName.body.certificates[0].id,
    source_ip: '198.51.100.7',
  });
  assert.is(started.status, 200, started.text);
  const sessions = await sdk('GET', '/v1/access/sessions?sandbox_id=web-sdk&user_id=bob-sdk', admin);
  assert.is(sessions.status, 200, sessions.text);
  assert.equal(
    sessions.body.sessions.map((s: { id: string }) => s.id),
    [started.body.session_id],
  );
  const mine = await sdk('GET', '/v1/access/sessions?user_id=bob-sdk', bob.token);
  assert.is(mine.body.total, 1, mine.text);
  assertAccessError(await sdk('GET', '/v1/access/sessions?user_id=bob-sdk', alice.token), 403);
});

test('the TTL policy refuses (400 in the access format) instead of capping; no token → 401', async () => {
  const r = await sdk('POST', '/v1/access/request', alice.token, {
    sandbox_id: 'web-sdk',
    public_key: key.pub,
    ttl_minutes: 11,
  });
  assertAccessError(r, 400, /ttl_minutes must be a whole number of minutes between 1 and 10, got 11/);
  const anonymous = await sdk('POST', '/v1/access/request', undefined, {
    sandbox_id: 'web-sdk',
    public_key: key.pub,
  });
  assertAccessError(anonymous, 401, /send the token as zt-session, X-Auth-Token or Authorization: Bearer/);
  // The other header an SDK user may set with api_client.set_default_header.
  const xAuth = await c.call('GET', '/v1/access/certificates', {
    headers: { accept: 'application/json', 'x-auth-token': alice.token },
  });
  assert.is(xAuth.status, 200, xAuth.text);
});

test.run();
