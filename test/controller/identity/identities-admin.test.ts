/** /identities: admin management of identities, and that nobody else can use it. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { assertContract, ZITI } from '../../helpers/contract.js';
import { assertError, certLogin, issueCert, newCsr, randomUuid } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let admin: string;
let adminId: string;

const create = (body: unknown, token = admin) => c.call('POST', '/identities', { token, body });

test.before(async () => {
  c = await startTestController();
  admin = await c.adminToken();
  adminId = (await c.call('GET', '/current-identity', { token: admin })).body.data.id;
});
test.after(async () => c.destroy());

test('POST /identities → 201 with id and link; the identity can log in; GET shows it', async () => {
  const r = await create({ name: 'henry', role: 'user', password: 'henry-password' });
  assert.is(r.status, 201, r.text);
  const id = r.body.data.id;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.is(r.body.data._links.self.href, `./identities/${id}`);
  const token = await c.login('henry', 'henry-password');
  const me = await c.call('GET', '/current-identity', { token });
  assert.is(me.body.data.id, id);

  const g = await c.call('GET', `/identities/${id}`, { token: admin });
  assert.is(g.status, 200, g.text);
  assertContract(ZITI, 'currentIdentityDetailEnvelope', g.body); // same identityDetail shape
  assert.is(g.body.data.name, 'henry');
  assert.is(g.body.data.role, 'user');
  assert.is(g.body.data.disabled, false);
  assert.is(g.body.data.authenticators.updb.username, 'henry');
});

test('POST without a password creates a cert-only identity (no password login)', async () => {
  const r = await create({ name: 'agent-host-1', role: 'agent' });
  assert.is(r.status, 201, r.text);
  const cert = await issueCert(c, r.body.data.id, '/CN=agent-host-1');
  const login = await certLogin(c, cert);
  assert.is(login.status, 200, login.text);
  const g = await c.call('GET', `/identities/${r.body.data.id}`, { token: admin });
  assert.not.ok(g.body.data.authenticators.updb);
  assert.is(g.body.data.authenticators.cert.id, cert.authenticatorId);
});

test('POST: duplicate name → 409 DUPLICATE_NAME', async () => {
  assert.is((await create({ name: 'ivy-dup', role: 'user', password: 'ivy-password' })).status, 201);
  assertError(
    await create({ name: 'ivy-dup', role: 'admin', password: 'other-password' }),
    409,
    'DUPLICATE_NAME',
  );
  assertError(await create({ name: 'admin', role: 'user' }), 409, 'DUPLICATE_NAME');
});

test('POST: bad role, bad name, short password, unknown field, missing fields → 400', async () => {
  for (const body of [
    { name: 'jack-1', role: 'root' },
    { name: 'jack-1', role: 'ADMIN' },
    { name: 'abc', role: 'user' },
    { name: 'has space', role: 'user' },
    { name: '-leading-dash', role: 'user' },
    { name: 'x'.repeat(101), role: 'user' },
    { name: 'jack-1', role: 'user', password: 'abcd' },
    { name: 'jack-1', role: 'user', isAdmin: true },
    { name: 'jack-1' },
    { role: 'user' },
    { name: 42, role: 'user' },
    [],
  ]) {
    const r = await create(body);
    assertError(r, 400);
    assert.is(r.body.error.code, 'COULD_NOT_VALIDATE', JSON.stringify(body));
  }
  const unknown = await create({ name: 'jack-1', role: 'user', isAdmin: true });
  assert.is(unknown.body.error.cause.field, 'isAdmin');
  // none of them was created
  const l = await c.call('GET', `/identities?filter=${encodeURIComponent('name = "jack-1"')}`, {
    token: admin,
  });
  assert.is(l.body.meta.pagination.totalCount, 0);
});

test('GET /identities: paged with meta.pagination, filterable', async () => {
  for (let i = 0; i < 6; i++) {
    assert.is((await create({ name: `pager-${i}`, role: i % 2 ? 'agent' : 'user' })).status, 201);
  }
  const all = await c.call('GET', '/identities?limit=500', { token: admin });
  assert.is(all.status, 200, all.text);
  const total = all.body.meta.pagination.totalCount;
  assert.ok(total >= 10, String(total));
  assert.is(all.body.data.length, total);
  assert.ok(all.body.meta.filterableFields.includes('name'));

  const first = await c.call('GET', '/identities', { token: admin });
  assert.equal(first.body.meta.pagination, { limit: 10, offset: 0, totalCount: total });
  const page = await c.call('GET', '/identities?limit=2&offset=1', { token: admin });
  assert.equal(page.body.meta.pagination, { limit: 2, offset: 1, totalCount: total });
  assert.equal(
    page.body.data.map((i: { id: string }) => i.id),
    all.body.data.slice(1, 3).map((i: { id: string }) => i.id),
  );

  const f = (filter: string) =>
    c.call('GET', `/identities?limit=500&filter=${encodeURIComponent(filter)}`, { token: admin });
  const byName = await f('name = "pager-3"');
  assert.is(byName.body.data.length, 1);
  assert.is(byName.body.data[0].name, 'pager-3');
  const agents = await f('name contains "pager-" and role = "agent"');
  assert.equal(byName.status, 200);
  assert.equal(agents.body.data.map((i: { name: string }) => i.name).sort(), [
    'pager-1',
    'pager-3',
    'pager-5',
  ]);
  const sorted = await f('name contains "pager-" sort by name desc limit 2');
  assert.equal(
    sorted.body.data.map((i: { name: string }) => i.name),
    ['pager-5', 'pager-4'],
  );
  const admins = await f('isDefaultAdmin = true');
  assert.equal(
    admins.body.data.map((i: { id: string }) => i.id),
    [adminId],
  );
  assertError(await f('name ='), 400, 'INVALID_FILTER');
  assertError(await f('secret = "x"'), 400, 'INVALID_FILTER');
  assertError(await c.call('GET', '/identities?limit=501', { token: admin }), 400);
});

test('GET/PATCH/DELETE unknown id → 404; non-UUID → 400', async () => {
  const id = randomUuid();
  assertError(await c.call('GET', `/identities/${id}`, { token: admin }), 404, 'NOT_FOUND');
  assertError(await c.call('PATCH', `/identities/${id}`, { token: admin, body: { name: 'whoever' } }), 404);
  assertError(await c.call('DELETE', `/identities/${id}`, { token: admin }), 404);
  assertError(await c.call('GET', '/identities/xyz', { token: admin }), 400);
  assertError(await c.call('DELETE', '/identities/1', { token: admin }), 400);
});

test('PATCH: rename, empty patch → 400, unknown field → 400, duplicate name → 409', async () => {
  const id = (await create({ name: 'kate', role: 'user', password: 'kate-password' })).body.data.id;
  const token = await c.login('kate', 'kate-password');
  const r = await c.call('PATCH', `/identities/${id}`, { token: admin, body: { name: 'kate-renamed' } });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'empty', r.body);
  assert.is((await c.call('GET', `/identities/${id}`, { token: admin })).body.data.name, 'kate-renamed');
  // a rename does not end sessions, and the session sees the new name
  const me = await c.call('GET', '/current-identity', { token });
  assert.is(me.status, 200);
  assert.is(me.body.data.name, 'kate-renamed');

  assertError(await c.call('PATCH', `/identities/${id}`, { token: admin, body: {} }), 400);
  assertError(
    await c.call('PATCH', `/identities/${id}`, { token: admin, body: { password: 'x12345' } }),
    400,
  );
  assertError(await c.call('PATCH', `/identities/${id}`, { token: admin, body: { disabled: 'yes' } }), 400);
  assertError(await c.call('PATCH', `/identities/${id}`, { token: admin, body: { name: 'admin' } }), 409);
});

test('disable: the identity’s sessions stop working and it cannot log in (password or cert); enable again', async () => {
  const id = (await create({ name: 'liam', role: 'user', password: 'liam-password' })).body.data.id;
  const cert = await issueCert(c, id, '/CN=liam');
  const t1 = await c.login('liam', 'liam-password');
  const t2 = (await certLogin(c, cert)).body.data.token;
  const r = await c.call('PATCH', `/identities/${id}`, { token: admin, body: { disabled: true } });
  assert.is(r.status, 200, r.text);
  assertError(await c.call('GET', '/current-api-session', { token: t1 }), 401, 'UNAUTHORIZED');
  assertError(await c.call('GET', '/current-identity', { token: t2 }), 401, 'UNAUTHORIZED');
  assertError(
    await c.call('POST', '/authenticate?method=password', {
      body: { username: 'liam', password: 'liam-password' },
    }),
    401,
    'INVALID_AUTH',
  );
  assertError(await certLogin(c, cert), 401, 'INVALID_AUTH');
  assert.is((await c.call('GET', `/identities/${id}`, { token: admin })).body.data.disabled, true);

  assert.is(
    (await c.call('PATCH', `/identities/${id}`, { token: admin, body: { disabled: false } })).status,
    200,
  );
  assert.ok(await c.login('liam', 'liam-password'));
  assert.is((await certLogin(c, cert)).status, 200);
  // old sessions stay dead
  assertError(await c.call('GET', '/current-api-session', { token: t1 }), 401);
});

test('a role change ends the identity’s sessions; the new role applies at the next login', async () => {
  const id = (await create({ name: 'mona', role: 'user', password: 'mona-password' })).body.data.id;
  const t = await c.login('mona', 'mona-password');
  assertError(await c.call('GET', '/identities', { token: t }), 403);
  assert.is(
    (await c.call('PATCH', `/identities/${id}`, { token: admin, body: { role: 'admin' } })).status,
    200,
  );
  assertError(await c.call('GET', '/current-api-session', { token: t }), 401);
  const t2 = await c.login('mona', 'mona-password');
  assert.is((await c.call('GET', '/identities', { token: t2 })).status, 200);
});

test('DELETE: 200; the identity is gone, its sessions and logins stop working', async () => {
  const id = (await create({ name: 'nina', role: 'user', password: 'nina-password' })).body.data.id;
  const cert = await issueCert(c, id, '/CN=nina');
  const t = await c.login('nina', 'nina-password');
  const r = await c.call('DELETE', `/identities/${id}`, { token: admin });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'empty', r.body);
  assertError(await c.call('GET', `/identities/${id}`, { token: admin }), 404);
  assertError(await c.call('GET', '/current-api-session', { token: t }), 401);
  assertError(
    await c.call('POST', '/authenticate?method=password', {
      body: { username: 'nina', password: 'nina-password' },
    }),
    401,
  );
  assertError(await certLogin(c, cert), 401);
  assertError(await c.call('DELETE', `/identities/${id}`, { token: admin }), 404);
  // the name is free again
  assert.is((await create({ name: 'nina', role: 'user' })).status, 201);
});

test('the default admin cannot be deleted, disabled or demoted → 409', async () => {
  assertError(
    await c.call('DELETE', `/identities/${adminId}`, { token: admin }),
    409,
    'CAN_NOT_DELETE_DEFAULT_ADMIN',
  );
  assertError(
    await c.call('PATCH', `/identities/${adminId}`, { token: admin, body: { disabled: true } }),
    409,
  );
  assertError(await c.call('PATCH', `/identities/${adminId}`, { token: admin, body: { role: 'user' } }), 409);
  // still an admin, still logged in
  const me = await c.call('GET', '/current-identity', { token: admin });
  assert.is(me.status, 200);
  assert.is(me.body.data.isAdmin, true);
  assert.is(me.body.data.disabled, false);
  // another admin cannot do it either
  await create({ name: 'second-admin', role: 'admin', password: 'second-password' });
  const t = await c.login('second-admin', 'second-password');
  assertError(await c.call('DELETE', `/identities/${adminId}`, { token: t }), 409);
});

test('non-admins (user, agent) get 403 on every /identities route', async () => {
  const victim = (await create({ name: 'olga', role: 'user', password: 'olga-password' })).body.data.id;
  const user = await c.createUser('pete', 'user', 'pete-password');
  const agent = await c.createUser('quinn-agent', 'agent', 'quinn-password');
  for (const token of [user.token, agent.token]) {
    const calls = [
      c.call('POST', '/identities', {
        token,
        body: { name: 'evil-one', role: 'admin', password: 'evil-password' },
      }),
      c.call('GET', '/identities', { token }),
      c.call('GET', `/identities/${victim}`, { token }),
      c.call('GET', `/identities/${user.id}`, { token }),
      c.call('PATCH', `/identities/${victim}`, { token, body: { disabled: true } }),
      c.call('PATCH', `/identities/${user.id}`, { token, body: { role: 'admin' } }),
      c.call('DELETE', `/identities/${victim}`, { token }),
      c.call('POST', `/identities/${victim}/certificate`, { token, body: { csr: newCsr().csr } }),
    ];
    for (const r of await Promise.all(calls)) assertError(r, 403, 'FORBIDDEN');
  }
  // nothing happened
  const v = await c.call('GET', `/identities/${victim}`, { token: admin });
  assert.is(v.body.data.disabled, false);
  const evil = await c.call('GET', `/identities?filter=${encodeURIComponent('name = "evil-one"')}`, {
    token: admin,
  });
  assert.is(evil.body.meta.pagination.totalCount, 0);
  assert.is((await c.call('GET', '/current-api-session', { token: user.token })).status, 200);
  // …and without a session at all it is 401, not 403
  assertError(await c.call('GET', '/identities'), 401, 'UNAUTHORIZED');
});

test.run();
