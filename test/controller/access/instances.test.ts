/** /v1/instances: the inventory access is granted on, and its grants. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { assertAccessError } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(90);

let c: TestController;
let admin = '';
let user: { id: string; token: string };
let other: { id: string; token: string };

test.before(async () => {
  c = await startTestController();
  admin = await c.adminToken();
  user = await c.createUser('inventory-user');
  other = await c.createUser('inventory-other');
});

test.after(() => c.destroy());

const body = (extra: Record<string, unknown> = {}) => ({
  server_id: randomUUID(),
  instance_name: 'web-1',
  ip_address: '192.0.2.50',
  ssh_port: 2200,
  login_user: 'debian',
  state: 'running',
  ...extra,
});

test('create → 201 with the instance and its principal; get, list, patch, delete', async () => {
  const b = body({ server_id: randomUUID().toUpperCase() });
  const id = b.server_id.toLowerCase();
  const r = await c.call('POST', '/v1/instances', { token: admin, body: b });
  assert.is(r.status, 201, r.text);
  assert.is(r.body.server_id, id);
  assert.is(r.body.instance_name, 'web-1');
  assert.is(r.body.ip_address, '192.0.2.50');
  assert.is(r.body.ssh_port, 2200);
  assert.is(r.body.login_user, 'debian');
  assert.is(r.body.state, 'running');
  assert.is(r.body.source, 'manual');
  assert.is(r.body.principal, `vm-${id}`);

  const got = await c.call('GET', `/v1/instances/${id}`, { token: admin });
  assert.is(got.status, 200, got.text);
  assert.equal(got.body, r.body);

  const list = await c.call('GET', '/v1/instances', { token: admin });
  assert.is(list.status, 200);
  assert.ok(list.body.instances.some((i: any) => i.server_id === id));
  assert.is(list.body.total, list.body.instances.length);

  const p = await c.call('PATCH', `/v1/instances/${id}`, {
    token: admin,
    body: { state: 'shut off', ip_address: '192.0.2.51', ssh_port: 22 },
  });
  assert.is(p.status, 200, p.text);
  assert.is(p.body.state, 'shut off');
  assert.is(p.body.ip_address, '192.0.2.51');
  assert.is(p.body.ssh_port, 22);
  assert.is(p.body.instance_name, 'web-1');
  assert.is((await c.call('GET', `/v1/instances/${id}`, { token: admin })).body.state, 'shut off');

  const d = await c.call('DELETE', `/v1/instances/${id}`, { token: admin });
  assert.is(d.status, 200, d.text);
  assert.is(d.body.server_id, id);
  assertAccessError(await c.call('GET', `/v1/instances/${id}`, { token: admin }), 404);
  assertAccessError(await c.call('DELETE', `/v1/instances/${id}`, { token: admin }), 404);
  assertAccessError(
    await c.call('PATCH', `/v1/instances/${id}`, { token: admin, body: { state: 'running' } }),
    404,
  );
});

test('defaults: ip_address empty, ssh_port 22', async () => {
  const b = body();
  delete (b as Record<string, unknown>).ip_address;
  delete (b as Record<string, unknown>).ssh_port;
  const r = await c.call('POST', '/v1/instances', { token: admin, body: b });
  assert.is(r.status, 201, r.text);
  assert.is(r.body.ip_address, '');
  assert.is(r.body.ssh_port, 22);
});

test('list: pagination with total', async () => {
  for (let i = 0; i < 5; i++) {
    const r = await c.call('POST', '/v1/instances', {
      token: admin,
      body: body({ instance_name: `page-${i}` }),
    });
    assert.is(r.status, 201);
  }
  const all = await c.call('GET', '/v1/instances?limit=1000', { token: admin });
  const total = all.body.total;
  assert.is(all.body.instances.length, total);
  const seen: string[] = [];
  for (let offset = 0; offset < total; offset += 2) {
    const r = await c.call('GET', `/v1/instances?limit=2&offset=${offset}`, { token: admin });
    assert.is(r.body.total, total);
    seen.push(...r.body.instances.map((i: any) => i.server_id));
  }
  assert.equal(
    seen,
    all.body.instances.map((i: any) => i.server_id),
  );
  assertAccessError(await c.call('GET', '/v1/instances?limit=0', { token: admin }), 400);
});

test('duplicate server_id → 409', async () => {
  const b = body();
  assert.is((await c.call('POST', '/v1/instances', { token: admin, body: b })).status, 201);
  assertAccessError(await c.call('POST', '/v1/instances', { token: admin, body: b }), 409, /already exists/);
  const upper = { ...b, server_id: b.server_id.toUpperCase() };
  assertAccessError(await c.call('POST', '/v1/instances', { token: admin, body: upper }), 409);
});

test('bad server_id and bad bodies → 400 in {error, code}', async () => {
  const bad: unknown[] = [
    body({ server_id: 'not-a-uuid' }),
    body({ server_id: '../../etc' }),
    body({ server_id: 12 }),
    body({ state: 'flying' }),
    body({ ssh_port: 0 }),
    body({ ssh_port: 70000 }),
    body({ ssh_port: '22' }),
    body({ login_user: 'Root; rm -rf' }),
    body({ instance_name: '' }),
    body({ extra: 1 }),
    { server_id: randomUUID() },
    {},
    [],
    null,
  ];
  for (const b of bad) {
    const r = await c.call('POST', '/v1/instances', { token: admin, body: b });
    assertAccessError(r, 400);
  }
  assertAccessError(
    await c.call('POST', '/v1/instances', {
      token: admin,
      raw: '{"server_id":',
      headers: { 'content-type': 'application/json' },
    }),
    400,
  );
  assertAccessError(await c.call('GET', '/v1/instances/not-a-uuid', { token: admin }), 400);
  assertAccessError(await c.call('DELETE', '/v1/instances/not-a-uuid', { token: admin }), 400);
  const created = await c.call('POST', '/v1/instances', { token: admin, body: body() });
  const id = created.body.server_id;
  for (const p of [{}, { server_id: randomUUID() }, { state: 'x' }, { ssh_port: -1 }, { nope: 1 }]) {
    assertAccessError(await c.call('PATCH', `/v1/instances/${id}`, { token: admin, body: p }), 400);
  }
});

test('non-admins: create/patch/delete/grants → 403; get/list only granted instances', async () => {
  const created = await c.call('POST', '/v1/instances', { token: admin, body: body() });
  const id = created.body.server_id;
  const t = user.token;
  assertAccessError(await c.call('POST', '/v1/instances', { token: t, body: body() }), 403);
  assertAccessError(
    await c.call('PATCH', `/v1/instances/${id}`, { token: t, body: { state: 'running' } }),
    403,
  );
  assertAccessError(await c.call('DELETE', `/v1/instances/${id}`, { token: t }), 403);
  assertAccessError(await c.call('GET', `/v1/instances/${id}/grants`, { token: t }), 403);
  assertAccessError(
    await c.call('POST', `/v1/instances/${id}/grants`, { token: t, body: { identity_id: user.id } }),
    403,
  );
  assertAccessError(await c.call('DELETE', `/v1/instances/${id}/grants/${user.id}`, { token: t }), 403);
  assertAccessError(await c.call('GET', `/v1/instances/${id}`, { token: t }), 403);
  const none = await c.call('GET', '/v1/instances', { token: t });
  assert.is(none.status, 200);
  assert.equal(none.body, { instances: [], total: 0 });
  assertAccessError(await c.call('GET', '/v1/instances'), 401);
  assertAccessError(await c.call('POST', '/v1/instances', { body: body() }), 401);
});

test('grants: add, list, remove; the grantee sees the instance; errors', async () => {
  const created = await c.call('POST', '/v1/instances', {
    token: admin,
    body: body({ instance_name: 'granted' }),
  });
  const id = created.body.server_id;
  const add = await c.call('POST', `/v1/instances/${id}/grants`, {
    token: admin,
    body: { identity_id: user.id },
  });
  assert.is(add.status, 201, add.text);
  assert.is(add.body.server_id, id);
  assert.is(add.body.identity_id, user.id);
  assert.type(add.body.created_at, 'string');
  // Granting twice is idempotent.
  assert.is(
    (await c.call('POST', `/v1/instances/${id}/grants`, { token: admin, body: { identity_id: user.id } }))
      .status,
    201,
  );
  const list = await c.call('GET', `/v1/instances/${id}/grants`, { token: admin });
  assert.is(list.status, 200);
  assert.is(list.body.total, 1);
  assert.is(list.body.grants[0].identity_id, user.id);

  const seen = await c.call('GET', '/v1/instances', { token: user.token });
  assert.equal(
    seen.body.instances.map((i: any) => i.server_id),
    [id],
  );
  assert.is(seen.body.total, 1);
  assert.is((await c.call('GET', `/v1/instances/${id}`, { token: user.token })).status, 200);
  assertAccessError(await c.call('GET', `/v1/instances/${id}`, { token: other.token }), 403);

  const del = await c.call('DELETE', `/v1/instances/${id}/grants/${user.id}`, { token: admin });
  assert.is(del.status, 200, del.text);
  assertAccessError(await c.call('DELETE', `/v1/instances/${id}/grants/${user.id}`, { token: admin }), 404);
  assertAccessError(await c.call('GET', `/v1/instances/${id}`, { token: user.token }), 403);
  assert.is((await c.call('GET', `/v1/instances/${id}/grants`, { token: admin })).body.total, 0);

  assertAccessError(
    await c.call('POST', `/v1/instances/${id}/grants`, { token: admin, body: { identity_id: randomUUID() } }),
    404,
  );
  assertAccessError(
    await c.call('POST', `/v1/instances/${randomUUID()}/grants`, {
      token: admin,
      body: { identity_id: user.id },
    }),
    404,
  );
  assertAccessError(
    await c.call('POST', `/v1/instances/${id}/grants`, { token: admin, body: { identity_id: 'bob' } }),
    400,
  );
  assertAccessError(await c.call('POST', `/v1/instances/${id}/grants`, { token: admin, body: {} }), 400);
  assertAccessError(await c.call('DELETE', `/v1/instances/${id}/grants/not-a-uuid`, { token: admin }), 400);
  assertAccessError(await c.call('GET', `/v1/instances/${randomUUID()}/grants`, { token: admin }), 404);

  // Deleting the instance removes its grants.
  await c.call('POST', `/v1/instances/${id}/grants`, { token: admin, body: { identity_id: user.id } });
  assert.is((await c.call('DELETE', `/v1/instances/${id}`, { token: admin })).status, 200);
  assert.equal((await c.call('GET', '/v1/instances', { token: user.token })).body.total, 0);
});

test('grant add and remove are audited: grant.add / grant.remove, object the instance, detail the identity', async () => {
  const created = await c.call('POST', '/v1/instances', {
    token: admin,
    body: body({ instance_name: 'audited' }),
  });
  const id = created.body.server_id;
  const add = await c.call('POST', `/v1/instances/${id}/grants`, {
    token: admin,
    body: { identity_id: other.id },
  });
  assert.is(add.status, 201, add.text);
  const del = await c.call('DELETE', `/v1/instances/${id}/grants/${other.id}`, { token: admin });
  assert.is(del.status, 200, del.text);
  // A refused removal (no such grant) is recorded too, as a failure.
  assertAccessError(await c.call('DELETE', `/v1/instances/${id}/grants/${other.id}`, { token: admin }), 404);

  const audit = await c.call('GET', '/v1/audit?action=grant&limit=1000', { token: admin });
  assert.is(audit.status, 200, audit.text);
  const rows = audit.body.entries.filter((e: any) => e.object === id);
  assert.equal(rows.map((e: any) => [e.action, e.outcome, e.status, e.actorName]).reverse(), [
    ['grant.add', 'success', 201, 'admin'],
    ['grant.remove', 'success', 200, 'admin'],
    ['grant.remove', 'failure', 404, 'admin'],
  ]);
  assert.is(rows[2].detail, other.id);
  assert.is(rows[1].detail, other.id);
});

test.run();
